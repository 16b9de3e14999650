#!/usr/bin/env python3
# requires: python>=3.11
# requires: numpy==2.4.6 pillow==13.0.0 scikit-image==0.26.0 torch==2.15.0 torchvision==0.29.2
# requires: transformers==5.24.0 safetensors==0.8.0
#   (the versions installed when the fixtures were generated: another Pillow / libjpeg-turbo
#    decodes JPEGs slightly differently, another scikit-image may ship other photo files,
#    another transformers / torchvision may resize differently)
"""Generate the image fixtures for the DinoImage Swift tests, and the example photos.

Run from the repository root (about 12 s on 2 cores, mostly the torch / transformers imports
and processor set-up):

    pip install scikit-image==0.26.0      # once; the other packages are those of make_fixtures.py
    python Scripts/make_image_fixtures.py [--full]

Everything is deterministic (fixed crops, no randomness; float32 on the CPU), so two runs with
the versions above write identical bytes.  The script deletes and rewrites

* `Examples/images/`: five photos copied byte for byte from scikit-image's bundled data
  (`astronaut.png`, `coffee.png`, `chelsea.png`, `rocket.jpg`, `camera.png`; each file's
  SHA-256 is checked against scikit-image's registry) and `LICENSE.md`, which quotes
  scikit-image's docstrings about their source, author and licence;
* `Tests/DinoImageTests/Fixtures/formats/`: decoder inputs made from a 4:3 crop of
  `chelsea.png` resized to 72x54 (not 96x72, to keep the fixtures under their 5 MB budget).
  Every valid file `<name>` comes with `<name>.rgb.npy`, the RGB pixels a decoder should
  produce (uint8, [H, W, 3], C order); broken files have none.  The 16-bit
  PNGs are written by this script (Pillow cannot write 16-bit RGB), the rest by Pillow.
  `formats/manifest.json` lists every file: kind (valid / broken), expected shape, whether
  the expectation is exact, and a note;
* `Tests/DinoImageTests/Fixtures/preprocess/`: parity references for the Hugging Face image
  processor of the released `facebook/dinov2-with-registers-*` checkpoints:
  - `preprocessor_config.json`, as `BitImageProcessor(...).save_pretrained` writes it;
  - `classification.<photo>.safetensors` (astronaut, coffee, rocket, camera):
    `pixel_values_fast` F32 [1, 3, 224, 224] from the default processor (in transformers 5.x
    `AutoImageProcessor` returns the torchvision backend, `BitImageProcessor`; the old
    `use_fast=True`), plus the PIL backend's output (`BitImageProcessorPil`, the old
    `use_fast=False`) stored sparsely as its difference to `pixel_values_fast` in grey
    levels: `slow_minus_fast_index` I32 [N] (flat indices into [1, 3, 224, 224]) and
    `slow_minus_fast_levels` I8 [N].  Both outputs are exactly (level / 255 - mean) / std
    with integer levels; everywhere else they differ only by float rounding
    (see `preprocess/manifest.json`).  `--full` also stores the PIL backend's output densely
    as `pixel_values`, which makes each file 1.2 MB (over the 1 MB per-file budget);
  - `resize.<photo>.png` (lossless): PIL `resize((W, H), BICUBIC)` of the RGB image to short side 224
    and long side round(long * 224 / short / 14) * 14; `resize_up.chelsea.png`: 300x451 ->
    448x672 (uint8 [H, W, 3]);
  - `model.astronaut.safetensors`: `last_hidden_state`, `pooler_output` and `attentions.1`
    (last layer) of the random-weight `Tests/DinoModelTests/Fixtures/reg4_downsample` model
    (eager attention) on `classification.astronaut.safetensors:pixel_values_fast`
    (`--full` also copies that input in as `pixel_values`; the file is then 1.2 MB);
  - `classifier.astronaut.safetensors`: `logits` [1, 5] of
    `Tests/DinoModelTests/Fixtures/batch2_classifier` on the same pixel values;
  - `manifest.json`: target sizes, processor classes, how the two backends differ, and
    the contents of every file.

* `Tests/DinoImageTests/Fixtures/resize/`: PIL `resize((W, H), BICUBIC)` of photo crops and
  whole photos to sizes that need each of the two orders Pillow 13 runs its passes in (vertical
  first when the height shrinks by more than twice as many pixels as the width), including the
  boundary, and to `--size` shapes that change the aspect ratio; each case is checked to come out
  of the order named, and differs from the other order. `resize/manifest.json` lists them.

The model outputs depend on the random-weight checkpoints that `Scripts/make_fixtures.py`
writes: rerun this script after those change.  Without `--full` every file is under 1 MB and
the fixtures folder under 5 MB; the sizes are printed at the end (with a warning if not).
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse
import hashlib
import inspect
import json
import os
import re
import shutil
import struct
import sys
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import PIL
from PIL import Image, ImageOps, features

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "Examples" / "images"
FIXTURES = ROOT / "Tests" / "DinoImageTests" / "Fixtures"
FORMATS = FIXTURES / "formats"
PREPROCESS = FIXTURES / "preprocess"
RESIZE = FIXTURES / "resize"
MODEL_FIXTURES = ROOT / "Tests" / "DinoModelTests" / "Fixtures"

PHOTOS = {  # file name -> skimage.data function whose docstring describes it
    "astronaut.png": "astronaut",
    "coffee.png": "coffee",
    "chelsea.png": "chelsea",
    "rocket.jpg": "rocket",
    "camera.png": "camera",
}
PREPROCESS_PHOTOS = ["astronaut.png", "coffee.png", "rocket.jpg", "camera.png"]

PROCESSOR_KWARGS = dict(
    do_resize=True,
    size={"shortest_edge": 256},
    resample=3,  # PIL.Image.BICUBIC
    do_center_crop=True,
    crop_size={"height": 224, "width": 224},
    do_rescale=True,
    rescale_factor=1 / 255,
    do_normalize=True,
    image_mean=[0.485, 0.456, 0.406],
    image_std=[0.229, 0.224, 0.225],
    do_convert_rgb=True,
)

MB = 1_000_000
FILE_BUDGET = 1 * MB
TOTAL_BUDGET = 5 * MB

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:5.1f}s] {message}", flush=True)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_rgb_npy(path: Path, array: np.ndarray) -> None:
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3, array.shape
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------
# 1. Examples/images
# ----------------------------------------------------------------------------------------------


def docstring_quote(func) -> str:
    """The docstring of a skimage.data loader without its `Returns` section."""
    doc = inspect.getdoc(func) or ""
    doc = re.sub(r"\nReturns\n-------\n.*?(?=\n\S[^\n]*\n-{3,}\n|\n\.\. |\Z)", "\n", doc, flags=re.S)
    return re.sub(r"\n{3,}", "\n\n", doc).strip()


def make_examples() -> Path:
    import skimage
    import skimage.data
    from skimage.data import _registry

    data_dir = Path(skimage.data.__file__).parent
    fresh_dir(EXAMPLES)
    lines = [
        "# Example photos",
        "",
        "These five photos are copied unmodified from the sample data bundled with",
        f"[scikit-image](https://scikit-image.org) {skimage.__version__} (the files",
        "`skimage/data/<name>` inside its wheel) by `Scripts/make_image_fixtures.py`, which",
        "checks each file's SHA-256 against scikit-image's data registry.",
        "The source, author and licence of each are as scikit-image states them in the",
        "docstrings of the loaders in `skimage/data/_fetchers.py`, quoted below.",
        "",
        "| file | size | source URL | author | licence |",
        "|---|---|---|---|---|",
    ]
    table = {
        "astronaut.png": ("NASA (NASA Great Images database)", "public domain (\"No known copyright restrictions, released into the public domain.\")"),
        "coffee.png": ("Rachel Michetti (courtesy of Pikolo Espresso Bar)", "CC0 (\"No copyright restrictions.  CC0 by the photographer (Rachel Michetti).\")"),
        "chelsea.png": ("Stefan van der Walt", "CC0 (\"No copyright restrictions.  CC0 by the photographer (Stefan van der Walt).\")"),
        "rocket.jpg": ("SpaceX", "public domain (\"The image was captured by SpaceX and released in the public domain\")"),
        "camera.png": ("Lav Varshney", "CC0 (\"No copyright restrictions. CC0 by the photographer (Lav Varshney).\")"),
    }
    sections = []
    for name, func_name in PHOTOS.items():
        src = data_dir / name
        key = f"data/{name}"
        expected_hash = _registry.registry[key]
        actual_hash = sha256(src)
        if actual_hash != expected_hash:
            raise SystemExit(f"{src}: SHA-256 {actual_hash} differs from scikit-image's registry {expected_hash}")
        shutil.copyfile(src, EXAMPLES / name)
        with Image.open(src) as im:
            size = f"{im.width}x{im.height} {im.mode}"
        repo_url = _registry.registry_urls.get(key, "")
        author, licence = table[name]
        quote = docstring_quote(getattr(skimage.data, func_name))
        urls = re.findall(r"<(https?://[^>]+)>", quote)
        source = urls[0] if urls else f"{repo_url} (scikit-image's data repository; the docstring names no other source)"
        lines.append(f"| `{name}` | {size} | {source} | {author} | {licence} |")
        sections += [
            "",
            f"## `{name}`",
            "",
            f"- URLs in the docstring: {', '.join(urls) if urls else 'none'}",
            f"- scikit-image data repository: {repo_url}",
            f"- SHA-256: `{actual_hash}`",
            f"- Docstring of `skimage.data.{func_name}` (scikit-image {skimage.__version__}):",
            "",
        ]
        sections += [("> " + line).rstrip() for line in quote.splitlines()]
    lines += sections
    (EXAMPLES / "LICENSE.md").write_text("\n".join(lines) + "\n")
    log(f"Examples/images: {len(PHOTOS)} photos from scikit-image {skimage.__version__}")
    return data_dir


# ----------------------------------------------------------------------------------------------
# 2. formats/
# ----------------------------------------------------------------------------------------------


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_ihdr(width: int, height: int, bit_depth: int, color_type: int) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))


def write_png16(path: Path, samples: np.ndarray) -> None:
    """A 16-bit PNG (grey [H, W] or RGB [H, W, 3]), every row with the Sub filter."""
    assert samples.dtype == np.uint16
    height, width = samples.shape[:2]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    color_type = {1: 0, 3: 2}[channels]
    bpp = 2 * channels
    raw = samples.astype(">u2").reshape(height, width * channels).view(np.uint8).reshape(height, width * bpp)
    sub = raw.copy()
    sub[:, bpp:] = raw[:, bpp:] - raw[:, :-bpp]  # uint8 arithmetic wraps mod 256, as PNG wants
    rows = np.concatenate([np.full((height, 1), 1, np.uint8), sub], axis=1)  # filter type 1 = Sub
    path.write_bytes(
        PNG_SIGNATURE
        + png_ihdr(width, height, 16, color_type)
        + png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + png_chunk(b"IEND", b"")
    )


def read_png16(path: Path) -> np.ndarray:
    """Independent check of write_png16: parses the chunks and undoes the Sub filter."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(tag + body) & 0xFFFFFFFF
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color_type = header[:4]
    assert depth == 16
    channels = {0: 1, 2: 3}[color_type]
    bpp = 2 * channels
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * bpp)
    assert (rows[:, 0] == 1).all()
    raw = rows[:, 1:].astype(np.int64)
    for x in range(bpp, raw.shape[1]):
        raw[:, x] = (raw[:, x] + raw[:, x - bpp]) % 256
    samples = raw.astype(np.uint8).reshape(height, width * channels, 2)
    values = (samples[..., 0].astype(np.uint16) << 8) | samples[..., 1]
    return values.reshape(height, width) if channels == 1 else values.reshape(height, width, 3)


def pil_rgb(path: Path, transpose_exif: bool = False) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        if transpose_exif:
            im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def make_formats(data_dir: Path) -> None:
    fresh_dir(FORMATS)
    with Image.open(data_dir / "chelsea.png") as chelsea:
        chelsea = chelsea.convert("RGB")
    crop_box = (25, 0, 425, 300)  # centred 4:3 window of the 451x300 photo
    size = (72, 54)  # 4:3; neither side a multiple of 16, so JPEG MCUs are partial on both edges
    cropped = chelsea.crop(crop_box)
    base_img = cropped.resize(size, Image.LANCZOS)
    base = np.asarray(base_img, dtype=np.uint8).copy()
    height, width = base.shape[:2]
    # The same crop resized in float, for the 16-bit files (so their low bytes carry information).
    crop_f = np.asarray(cropped, dtype=np.float32)
    base_f = np.stack(
        [
            np.asarray(Image.frombytes("F", cropped.size, np.ascontiguousarray(crop_f[..., c]).tobytes()).resize(size, Image.LANCZOS))
            for c in range(3)
        ],
        axis=-1,
    )

    files: list[dict] = []

    def valid(name: str, expected: np.ndarray, exact: bool, note: str, **extra) -> None:
        """exact: every correct decoder must give these pixels (lossless files); else PIL's decode of a JPEG."""
        assert expected.shape == (height, width, 3), (name, expected.shape)
        save_rgb_npy(FORMATS / f"{name}.rgb.npy", expected)
        if name != "gray16.png":  # PIL clips 16-bit grey instead of shifting (recorded in the manifest)
            decoded = pil_rgb(FORMATS / name, transpose_exif=name.startswith("exif_"))
            assert np.array_equal(decoded, expected), f"PIL does not decode {name} to its expectation"
        entry = {"name": name, "kind": "valid", "expected": f"{name}.rgb.npy", "shape": list(expected.shape), "exact": exact}
        entry.update(extra)
        entry["note"] = note
        files.append(entry)

    def broken(name: str, note: str) -> None:
        try:
            with Image.open(FORMATS / name) as im:
                im.load()
        except Exception as error:  # noqa: BLE001 - any failure is what we want
            pil_error = f"{type(error).__name__}: {error}".replace(str(FORMATS / name), name)
        else:
            raise AssertionError(f"PIL decoded the broken file {name}")
        files.append({"name": name, "kind": "broken", "expected": None, "shape": None, "exact": None, "pil_error": pil_error, "note": note})

    # -- lossless 8-bit
    base_img.save(FORMATS / "rgb.png", optimize=False)
    valid("rgb.png", base, True, "8-bit RGB PNG (colour type 2).")

    gray_img = base_img.convert("L")
    gray_img.save(FORMATS / "gray.png")
    gray = np.asarray(gray_img)
    valid("gray.png", np.repeat(gray[..., None], 3, axis=2), True, "8-bit greyscale PNG (colour type 0); expected: grey replicated to R, G and B.")

    yy, xx = np.mgrid[0:height, 0:width]
    alpha = np.round(255 * (xx / (width - 1) + yy / (height - 1)) / 2).astype(np.uint8)  # 0 top-left .. 255 bottom-right
    rgba = np.concatenate([base, alpha[..., None]], axis=2)
    Image.frombytes("RGBA", size, rgba.tobytes()).save(FORMATS / "rgba.png")
    valid(
        "rgba.png",
        base,
        True,
        "8-bit RGBA PNG with a diagonal alpha gradient from 0 (top-left) to 255 (bottom-right); expected: the stored R, G, B "
        "with alpha dropped, not composited or premultiplied (as PIL convert('RGB') does). "
        "Pixels with alpha 0 still carry their colour.",
        alpha_range=[int(alpha.min()), int(alpha.max())],
    )

    # -- 16-bit (written by write_png16: Pillow cannot write 16-bit RGB)
    lum = base_f @ np.array([0.299, 0.587, 0.114], np.float32)
    lo, hi = float(lum.min()), float(lum.max())
    gray16 = np.round((lum - lo) / (hi - lo) * 65535).astype(np.uint16)
    write_png16(FORMATS / "gray16.png", gray16)
    assert np.array_equal(read_png16(FORMATS / "gray16.png"), gray16)
    with Image.open(FORMATS / "gray16.png") as im:
        assert im.mode == "I;16", im.mode
        assert np.array_equal(np.asarray(im), gray16), "PIL reads gray16.png differently"
        pil_gray16_rgb = np.asarray(im.convert("RGB"))
    expected = np.repeat((gray16 >> 8).astype(np.uint8)[..., None], 3, axis=2)
    valid(
        "gray16.png",
        expected,
        True,
        "16-bit greyscale PNG (colour type 0), values span 0..65535 with informative low bytes; expected: v >> 8 replicated. "
        "Note: PIL opens it as mode I;16 and convert('RGB') CLIPS to 255 instead of "
        "shifting, so it is not the reference here.",
        value_range=[int(gray16.min()), int(gray16.max())],
        pil_convert_rgb_matches=bool(np.array_equal(pil_gray16_rgb, expected)),
        samples_where_rounded_v_over_257_differs=int((np.round(gray16 / 257).astype(np.int64) != (gray16 >> 8)).sum()),
    )

    lo, hi = float(base_f.min()), float(base_f.max())
    rgb16 = np.round((base_f - lo) / (hi - lo) * 65535).astype(np.uint16)
    write_png16(FORMATS / "rgb16.png", rgb16)
    assert np.array_equal(read_png16(FORMATS / "rgb16.png"), rgb16)
    expected = (rgb16 >> 8).astype(np.uint8)
    valid(
        "rgb16.png",
        expected,
        True,
        "16-bit RGB PNG (colour type 2, Sub filter), values span 0..65535 with informative low bytes; expected: v >> 8 per "
        "channel (PIL decodes it to exactly this; a decoder that rounds v / 257 differs by one level on some pixels).",
        value_range=[int(rgb16.min()), int(rgb16.max())],
        samples_where_rounded_v_over_257_differs=int((np.round(rgb16 / 257).astype(np.int64) != (rgb16 >> 8)).sum()),
    )

    palette_img = base_img.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette_img.save(FORMATS / "palette.png")
    with Image.open(FORMATS / "palette.png") as im:
        assert im.mode == "P"
    valid("palette.png", pil_rgb(FORMATS / "palette.png"), True, "8-bit palette PNG (mode P, colour type 3, 64 colours, no transparency); expected: the palette colours.")

    # -- lossy JPEG
    base_img.save(FORMATS / "photo.jpg", quality=95)
    with Image.open(FORMATS / "photo.jpg") as im:
        from PIL import JpegImagePlugin

        sampling = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(JpegImagePlugin.get_sampling(im), "?")
    valid(
        "photo.jpg",
        pil_rgb(FORMATS / "photo.jpg"),
        False,
        f"Baseline JPEG, quality 95, chroma subsampling {sampling}; expected: PIL's decode (libjpeg-turbo "
        f"{features.version('libjpeg_turbo')}, islow DCT, fancy upsampling). JPEG: decoders may differ by a few grey levels.",
        chroma_subsampling=sampling,
    )

    # -- other lossless containers
    base_img.save(FORMATS / "photo.webp", lossless=True, quality=100, method=6)
    valid("photo.webp", base, True, "Lossless WebP (VP8L); expected: the exact pixels.")
    base_img.save(FORMATS / "photo.bmp")
    valid("photo.bmp", base, True, "24-bit BMP (BI_RGB, bottom-up rows); expected: the exact pixels.")
    base_img.save(FORMATS / "photo.tiff", compression="raw")
    with Image.open(FORMATS / "photo.tiff") as im:
        assert im.tag_v2.get(259) == 1, "TIFF is compressed"
    valid("photo.tiff", base, True, "Uncompressed TIFF (Compression = 1, RGB, 8 bits per sample, little-endian); expected: the exact pixels.")

    # -- EXIF orientation
    upright = base.copy()
    upright[0:16, 0:16] = (255, 0, 0)  # red square, top-left
    upright[0:8, 24:64] = (0, 0, 255)  # blue bar along the top edge, right of it
    upright_img = Image.frombytes("RGB", size, upright.tobytes())
    for orientation, stored_img, how in (
        (6, upright_img.transpose(Image.Transpose.ROTATE_90), f"stored rotated 90 degrees counter-clockwise ({height} wide, {width} high)"),
        (3, upright_img.transpose(Image.Transpose.ROTATE_180), "stored rotated 180 degrees"),
    ):
        name = f"exif_rotate{orientation}.jpg"
        exif = Image.Exif()
        exif[0x0112] = orientation  # Orientation
        stored_img.save(FORMATS / name, quality=95, exif=exif.tobytes())
        with Image.open(FORMATS / name) as im:
            assert im.getexif().get(0x0112) == orientation
            stored_shape = [im.height, im.width, 3]
        expected = pil_rgb(FORMATS / name, transpose_exif=True)
        assert expected.shape == (height, width, 3), expected.shape
        red = expected[2:14, 2:14].astype(int).mean(axis=(0, 1))
        blue = expected[1:7, 28:60].astype(int).mean(axis=(0, 1))
        assert red[0] > 200 and red[1] < 60 and red[2] < 60, red
        assert blue[2] > 200 and blue[0] < 60 and blue[1] < 60, blue
        valid(
            name,
            expected,
            False,
            f"JPEG (quality 95) with EXIF Orientation = {orientation}, pixel data {how}; expected: ImageOps.exif_transpose, "
            f"i.e. upright and {width} wide x {height} high, with a pure red 16x16 square in the top-left corner and a blue 40x8 bar "
            "along the top edge (x 24..63). A decoder that ignores the tag returns the stored orientation. JPEG: decoders "
            "may differ by a few grey levels.",
            exif_orientation=orientation,
            stored_shape=stored_shape,
        )

    # -- CMYK JPEG, with a real K channel
    rgb = base.astype(np.float64)
    k = 255 - rgb.max(axis=2)
    denom = np.where(k < 255, 255 - k, 1)
    cmy = np.where((k < 255)[..., None], (255 - rgb - k[..., None]) * 255 / denom[..., None], 0)
    cmyk = np.round(np.concatenate([cmy, k[..., None]], axis=2)).clip(0, 255).astype(np.uint8)
    Image.frombytes("CMYK", size, cmyk.tobytes()).save(FORMATS / "cmyk.jpg", quality=95)
    with Image.open(FORMATS / "cmyk.jpg") as im:
        assert im.mode == "CMYK", im.mode
        adobe = "adobe" in im.info
    expected = pil_rgb(FORMATS / "cmyk.jpg")
    valid(
        "cmyk.jpg",
        expected,
        False,
        "4-component CMYK JPEG (quality 95"
        + (", Adobe APP14 marker, inverted CMYK as Photoshop writes it" if adobe else "")
        + "), K = 255 - max(R, G, B); expected: PIL's convert('RGB'), the naive "
        "R = round((255 - C) * (255 - K) / 255) formula on the decoded (Adobe-inverted back) values, with no ICC profile. Decoders / colour managers may differ a lot; "
        "JPEG: decoders may differ by a few grey levels.",
        adobe_marker=adobe,
        max_abs_diff_to_source_rgb=int(np.abs(expected.astype(int) - base.astype(int)).max()),
    )

    # -- broken files
    jpg = (FORMATS / "photo.jpg").read_bytes()
    (FORMATS / "truncated.jpg").write_bytes(jpg[: int(len(jpg) * 0.6)])
    broken("truncated.jpg", f"The first 60% ({int(len(jpg) * 0.6)} of {len(jpg)} bytes) of photo.jpg: no EOI, scan data cut. Must fail, not return a partly grey image.")
    png = (FORMATS / "rgb.png").read_bytes()
    (FORMATS / "truncated.png").write_bytes(png[: int(len(png) * 0.6)])
    broken("truncated.png", f"The first 60% ({int(len(png) * 0.6)} of {len(png)} bytes) of rgb.png: IDAT cut, no IEND.")
    (FORMATS / "not_an_image.jpg").write_text(
        "This is not a JPEG file.\nIt is plain text with a .jpg extension,\nso a decoder must reject it by its content.\n"
    )
    broken("not_an_image.jpg", "Three lines of ASCII text with a .jpg extension.")
    (FORMATS / "empty.png").write_bytes(b"")
    broken("empty.png", "0 bytes.")
    (FORMATS / "header_only.png").write_bytes(PNG_SIGNATURE + png_ihdr(100_000, 100_000, 8, 2))
    broken(
        "header_only.png",
        "PNG signature + a valid IHDR (CRC correct) claiming 100000 x 100000 8-bit RGB (30 GB decoded), then nothing: "
        "no IDAT, no IEND. A decoder must fail quickly without allocating the claimed size.",
    )

    for entry in files:
        entry["bytes"] = (FORMATS / entry["name"]).stat().st_size
    write_json(
        FORMATS / "manifest.json",
        {
            "description": "Decoder inputs. For each valid file, <name>.rgb.npy holds the expected decoded RGB "
            "(uint8, [H, W, 3], C order). 'exact': true for lossless files, whose expected pixels every correct decoder "
            "must reproduce (16-bit: v >> 8); false for JPEGs, whose expectation is PIL's decode (libjpeg-turbo) and "
            "which other decoders may miss by a few grey levels. PIL decodes every valid file to its expectation "
            "except gray16.png (see its note); PIL fails on every broken file (pil_error).",
            "source": {
                "image": "Examples/images/chelsea.png (scikit-image chelsea.png, 451x300)",
                "crop_box_xyxy": list(crop_box),
                "resized_to_wh": list(size),
                "resample": "PIL LANCZOS (uint8 for 8-bit files; float32 per channel for the 16-bit files)",
            },
            "generator": {
                "script": "Scripts/make_image_fixtures.py",
                "pillow": PIL.__version__,
                "libjpeg_turbo": features.version("libjpeg_turbo"),
                "libwebp": features.version("webp"),
                "zlib": features.version("zlib"),
                "numpy": np.__version__,
            },
            "files": files,
        },
    )
    log(f"formats: {len(files)} files")


# ----------------------------------------------------------------------------------------------
# 3. preprocess/
# ----------------------------------------------------------------------------------------------


def resize_target(width: int, height: int) -> tuple[int, int]:
    """(W, H): short side 224, long side round(long * 224 / short / 14) * 14."""
    short, long = min(width, height), max(width, height)
    new_long = round(long * 224 / short / 14) * 14
    return (new_long, 224) if width >= height else (224, new_long)


def make_preprocess(full: bool) -> None:
    import torch
    import torchvision
    import transformers
    from safetensors.torch import save_file
    from transformers import (
        AutoImageProcessor,
        BitImageProcessor,
        Dinov2WithRegistersForImageClassification,
        Dinov2WithRegistersModel,
    )

    torch.manual_seed(0)
    fresh_dir(PREPROCESS)
    BitImageProcessor(**PROCESSOR_KWARGS).save_pretrained(PREPROCESS)
    written = sorted(p.name for p in PREPROCESS.iterdir())
    assert written == ["preprocessor_config.json"], written
    config = json.loads((PREPROCESS / "preprocessor_config.json").read_text())

    default = AutoImageProcessor.from_pretrained(PREPROCESS)
    slow = AutoImageProcessor.from_pretrained(PREPROCESS, backend="pil")  # the former use_fast=False
    fast = AutoImageProcessor.from_pretrained(PREPROCESS, backend="torchvision")  # the former use_fast=True
    assert type(fast) is type(default), (type(fast), type(default))
    assert type(slow) is not type(fast)

    mean = torch.tensor(PROCESSOR_KWARGS["image_mean"]).view(1, 3, 1, 1)
    std = torch.tensor(PROCESSOR_KWARGS["image_std"]).view(1, 3, 1, 1)

    def levels(pixel_values: torch.Tensor) -> torch.Tensor:
        grey = (pixel_values.double() * std.double() + mean.double()) * 255
        rounded = grey.round()
        assert (grey - rounded).abs().max() < 1e-3, "pixel values are not whole grey levels"
        return rounded.to(torch.int64)

    files: dict[str, dict] = {}
    classification: dict[str, dict] = {}
    resize: dict[str, dict] = {}
    default_pixels: dict[str, torch.Tensor] = {}
    for name in PREPROCESS_PHOTOS:
        stem = name.rsplit(".", 1)[0]
        path = EXAMPLES / name
        with Image.open(path) as image:
            image.load()
            mode, (width, height) = image.mode, image.size
            pv_default = default(images=image, return_tensors="pt")["pixel_values"]
            pv_slow = slow(images=image, return_tensors="pt")["pixel_values"]
            pv_fast = fast(images=image, return_tensors="pt")["pixel_values"]
            rgb = image.convert("RGB")
        assert torch.equal(pv_default, pv_fast)
        assert pv_fast.shape == (1, 3, 224, 224) and pv_fast.dtype == torch.float32
        slow_levels, fast_levels = levels(pv_slow), levels(pv_fast)
        delta = (slow_levels - fast_levels).flatten()
        index = torch.nonzero(delta).flatten()
        same_level = (slow_levels == fast_levels)
        tensors = {
            "pixel_values_fast": pv_fast.contiguous(),
            "slow_minus_fast_index": index.to(torch.int32).contiguous(),
            "slow_minus_fast_levels": delta[index].to(torch.int8).contiguous(),
        }
        if full:
            tensors = {"pixel_values": pv_slow.contiguous(), **tensors}
        file_name = f"classification.{stem}.safetensors"
        save_file(tensors, str(PREPROCESS / file_name), metadata={"source": f"Examples/images/{name}"})
        default_pixels[stem] = pv_fast
        classification[stem] = {
            "file": file_name,
            "image": f"Examples/images/{name}",
            "image_mode": mode,
            "image_size_wh": [width, height],
            "resized_to_wh": list(_shortest_edge_size(width, height, 256)),
            "max_abs_diff_slow_vs_fast": float((pv_slow - pv_fast).abs().max()),
            "max_abs_diff_slow_vs_fast_grey_levels": float(
                (((pv_slow.double() - pv_fast.double()) * std.double()) * 255).abs().max()
            ),
            "values_with_different_grey_level": int(index.numel()),
            "fraction_with_different_grey_level": index.numel() / pv_fast.numel(),
            "max_abs_diff_slow_vs_fast_where_same_level": float((pv_slow - pv_fast).abs()[same_level].max()),
            "bit_identical_fraction": float((pv_slow == pv_fast).double().mean()),
        }
        files[file_name] = {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in tensors.items()}

        target = resize_target(width, height)
        resized = np.asarray(rgb.resize(target, Image.BICUBIC), dtype=np.uint8)
        # Lossless PNG keeps the references exact at a third of the .npy size.
        ref = f"resize.{stem}.png"
        Image.fromarray(resized, "RGB").save(PREPROCESS / ref, optimize=True)
        resize[ref] = {"image": f"Examples/images/{name}", "from_wh": [width, height], "to_wh": list(target), "shape": list(resized.shape)}
        files[ref] = {"array": {"dtype": "uint8", "shape": list(resized.shape)}}

    with Image.open(EXAMPLES / "chelsea.png") as image:
        image.load()
        width, height = image.size
        up = np.asarray(image.convert("RGB").resize((672, 448), Image.BICUBIC), dtype=np.uint8)
    assert (width, height) == (451, 300)
    Image.fromarray(up, "RGB").save(PREPROCESS / "resize_up.chelsea.png", optimize=True)
    resize["resize_up.chelsea.png"] = {"image": "Examples/images/chelsea.png", "from_wh": [width, height], "to_wh": [672, 448], "shape": list(up.shape)}
    files["resize_up.chelsea.png"] = {"array": {"dtype": "uint8", "shape": list(up.shape)}}
    log("preprocess: processor outputs and resize references")

    # -- model outputs on real pixels
    pixels = default_pixels["astronaut"]
    with torch.no_grad():
        model = Dinov2WithRegistersModel.from_pretrained(MODEL_FIXTURES / "reg4_downsample", attn_implementation="eager").eval()
        out = model(pixel_values=pixels, output_attentions=True)
        layers = model.config.num_hidden_layers
        tensors = {
            "last_hidden_state": out.last_hidden_state.clone(),
            "pooler_output": out.pooler_output.clone(),
            f"attentions.{layers - 1}": out.attentions[-1].clone(),
        }
        if full:
            tensors = {"pixel_values": pixels.contiguous(), **tensors}
        save_file(tensors, str(PREPROCESS / "model.astronaut.safetensors"), metadata={"input": "classification.astronaut.safetensors:pixel_values_fast"})
        files["model.astronaut.safetensors"] = {k: {"dtype": "float32", "shape": list(v.shape)} for k, v in tensors.items()}

        classifier = Dinov2WithRegistersForImageClassification.from_pretrained(MODEL_FIXTURES / "batch2_classifier", attn_implementation="eager").eval()
        logits = classifier(pixel_values=pixels).logits.contiguous()
        assert logits.shape == (1, 5)
        save_file({"logits": logits}, str(PREPROCESS / "classifier.astronaut.safetensors"), metadata={"input": "classification.astronaut.safetensors:pixel_values_fast"})
        files["classifier.astronaut.safetensors"] = {"logits": {"dtype": "float32", "shape": list(logits.shape)}}
    log("preprocess: model and classifier outputs")

    write_json(
        PREPROCESS / "manifest.json",
        {
            "description": "Parity references for the Hugging Face image processor of facebook/dinov2-with-registers-*, "
            "PIL bicubic resizing, and a random-weight model on real pixels.",
            "generator": {
                "script": "Scripts/make_image_fixtures.py",
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "pillow": PIL.__version__,
                "numpy": np.__version__,
                "full": full,
            },
            "processor": {
                "config": "preprocessor_config.json",
                "config_values": config,
                "default_class": f"{type(default).__module__}.{type(default).__name__}",
                "default_backend": "torchvision",
                "default_key": "pixel_values_fast",
                "fast_class": f"{type(fast).__module__}.{type(fast).__name__}",
                "slow_class": f"{type(slow).__module__}.{type(slow).__name__}",
                "note": "In transformers 5.x AutoImageProcessor.from_pretrained(folder) returns BitImageProcessor, the "
                "torchvision backend (formerly the 'fast' processor); the PIL backend is BitImageProcessorPil. "
                "use_fast=True/False is deprecated and means backend='torchvision'/'pil'. Both resize with bicubic to "
                "shortest edge 256 (int(256 * long / short) for the long side), centre-crop 224x224, then output "
                "(level / 255 - mean) / std in float32 where level is an integer grey level 0..255 (the torchvision "
                "backend resizes uint8 with antialias and computes (level - 255 * mean) / (255 * std)).",
            },
            "classification": {
                "keys": {
                    "pixel_values_fast": "F32 [1, 3, 224, 224]: the default (torchvision) processor's pixel_values.",
                    "slow_minus_fast_index": "I32 [N]: flat C-order indices into [1, 3, 224, 224] where the PIL "
                    "backend's grey level differs from the torchvision backend's.",
                    "slow_minus_fast_levels": "I8 [N]: PIL-backend grey level minus torchvision grey level there (+-1). "
                    "PIL-backend pixel_values = pixel_values_fast + levels / (255 * std[c]); elsewhere the two "
                    "differ only by float rounding (max_abs_diff_slow_vs_fast_where_same_level).",
                    **(
                        {"pixel_values": "F32 [1, 3, 224, 224]: the PIL backend's (use_fast=False) pixel_values."}
                        if full
                        else {}
                    ),
                },
                "photos": classification,
            },
            "resize": {
                "method": "PIL Image.resize((W, H), Image.BICUBIC) of Image.open(...).convert('RGB'); uint8 [H, W, 3]",
                "target_rule": "short side 224, long side round(long * 224 / short / 14) * 14 (Python round)",
                "files": resize,
            },
            "model": {
                "model.astronaut.safetensors": {
                    "checkpoint": "Tests/DinoModelTests/Fixtures/reg4_downsample (Dinov2WithRegistersModel, eager attention)",
                    "input": "classification.astronaut.safetensors:pixel_values_fast"
                    + (" (also stored here as pixel_values)" if full else ""),
                    "attentions": f"attentions.{layers - 1} is the last layer's attention probabilities [1, heads, 1 + 4 + 256, 1 + 4 + 256]",
                },
                "classifier.astronaut.safetensors": {
                    "checkpoint": "Tests/DinoModelTests/Fixtures/batch2_classifier (Dinov2WithRegistersForImageClassification, 5 labels)",
                    "input": "classification.astronaut.safetensors:pixel_values_fast",
                },
            },
            "files": files,
        },
    )


def _shortest_edge_size(width: int, height: int, shortest: int) -> tuple[int, int]:
    """(W, H) the processors resize to before the centre crop (transformers' get_resize_output_image_size)."""
    short, long = min(width, height), max(width, height)
    new_short, new_long = shortest, int(shortest * long / short)
    return (new_long, new_short) if width >= height else (new_short, new_long)


# ----------------------------------------------------------------------------------------------
# 4. resize/
# ----------------------------------------------------------------------------------------------

# Pillow 13 chooses which of its two resize passes runs first (python-pillow/Pillow#9549):
# vertical first when the height shrinks by more than twice as many pixels as the width. The
# 8-bit intermediate image makes the order visible. (name, photo, crop box xyxy or None, (W, H)).
RESIZE_CASES = [
    # The report of issue 22: a 229 x 317 photo to --size 266x378 (width up, height down).
    ("issue_229x317_to_378x266", "astronaut.png", (100, 60, 329, 377), (378, 266)),
    ("vertical_first_115x159_to_190x133", "astronaut.png", (200, 120, 315, 279), (190, 133)),
    # 30 rows less is exactly twice 15 columns less: still horizontal first; one row more is not.
    ("boundary_horizontal_115x159_to_100x129", "astronaut.png", (200, 120, 315, 279), (100, 129)),
    ("boundary_vertical_115x159_to_100x128", "astronaut.png", (200, 120, 315, 279), (100, 128)),
    ("both_down_115x159_to_56x78", "astronaut.png", (200, 120, 315, 279), (56, 78)),
    ("both_up_115x159_to_230x318", "astronaut.png", (200, 120, 315, 279), (230, 318)),
    # --size HxW changing the aspect ratio of whole photos.
    ("size_chelsea_140x420", "chelsea.png", None, (420, 140)),
    ("size_coffee_280x210", "coffee.png", None, (210, 280)),
]


def make_resize_orders() -> None:
    fresh_dir(RESIZE)
    cases = []
    for name, photo, box, (width, height) in RESIZE_CASES:
        with Image.open(EXAMPLES / photo) as image:
            rgb = image.convert("RGB")
        source = rgb.crop(box) if box else rgb
        resized = source.resize((width, height), Image.BICUBIC)
        # Each pass alone is a one-axis resize; their two orders, composed.
        horizontal_first = source.resize((width, source.height), Image.BICUBIC).resize((width, height), Image.BICUBIC)
        vertical_first = source.resize((source.width, height), Image.BICUBIC).resize((width, height), Image.BICUBIC)
        result, h_first, v_first = (np.asarray(x, dtype=np.uint8) for x in (resized, horizontal_first, vertical_first))
        order = "horizontal first" if np.array_equal(result, h_first) else "vertical first" if np.array_equal(result, v_first) else None
        assert order is not None, f"{name}: Pillow's resize is neither order of its passes"
        assert not np.array_equal(h_first, v_first), f"{name}: both orders give the same pixels, so the case tests nothing"
        rule = "vertical first" if source.height - height > 0 and source.height - height > 2 * (source.width - width) else "horizontal first"
        assert order == rule, f"{name}: Pillow ran {order}, the rule says {rule}"
        resized.save(RESIZE / f"{name}.png", optimize=True)
        cases.append({
            "name": name, "file": f"{name}.png", "image": f"Examples/images/{photo}", "crop_box_xyxy": list(box) if box else None,
            "from_wh": [source.width, source.height], "to_wh": [width, height], "pass_order": order,
            "values_other_order_changes": int((h_first != v_first).sum()),
        })
    write_json(RESIZE / "manifest.json", {
        "description": "PIL Image.resize((W, H), Image.BICUBIC) of Image.open(image).convert('RGB'), cropped to crop_box_xyxy "
        "when given, stored losslessly (uint8 [H, W, 3]). Pillow runs its vertical pass first when the height shrinks by "
        "more than twice as many pixels as the width (src/libImaging/Resample.c, python-pillow/Pillow#9549); each case is "
        "checked to come out of the order named, and values_other_order_changes counts the values the other order gives "
        "differently.",
        "generator": {"script": "Scripts/make_image_fixtures.py", "pillow": PIL.__version__, "numpy": np.__version__},
        "cases": cases,
    })
    log(f"resize: {len(cases)} pass-order references")


# ----------------------------------------------------------------------------------------------


def report_sizes() -> None:
    total = 0
    over = []
    print("\nsizes:")
    for folder in (EXAMPLES, FORMATS, PREPROCESS, RESIZE):
        sub = 0
        for path in sorted(folder.iterdir()):
            size = path.stat().st_size
            sub += size
            print(f"  {size:>9,}  {path.relative_to(ROOT)}")
            if folder != EXAMPLES and size >= FILE_BUDGET:
                over.append(path.name)
        print(f"  {sub:>9,}  {folder.relative_to(ROOT)}/ (total)")
        if folder != EXAMPLES:
            total += sub
    fixtures_total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"  {fixtures_total:>9,}  {FIXTURES.relative_to(ROOT)}/ (total, budget {TOTAL_BUDGET:,})")
    if over:
        print(f"WARNING: over the {FILE_BUDGET:,}-byte per-file budget: {', '.join(over)}")
    if fixtures_total >= TOTAL_BUDGET:
        print(f"WARNING: {FIXTURES.relative_to(ROOT)} is over the {TOTAL_BUDGET:,}-byte budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--full",
        action="store_true",
        help="also store the PIL backend's pixel_values densely and the model input in model.astronaut.safetensors "
        "(files then exceed 1 MB and the folder 5 MB)",
    )
    args = parser.parse_args()
    if Path.cwd().resolve() != ROOT:
        print(f"note: writing under {ROOT}", file=sys.stderr)
    data_dir = make_examples()
    make_formats(data_dir)
    make_preprocess(args.full)
    make_resize_orders()
    report_sizes()
    log("done")


if __name__ == "__main__":
    main()
