#!/usr/bin/env python3
# requires: python>=3.11 (standard library only)
"""The bad-input corpus of Tests/DinoCLITests/BadInputs: malformed files of every format the
project reads, each of which must give a typed error naming the file, a non-zero exit code
from the CLI, and no half-written output.

Run from the repository root:  python Scripts/make_bad_inputs.py
The .pth cases are copies of the hostile / malformed archives written by
Scripts/make_pth_fixtures.py (torch is not needed here). `manifest.json` lists every file with
its format, what is wrong with it, and a word its error message must contain.
"""
import hashlib
import json
import shutil
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "DinoCLITests" / "BadInputs"
PTH = ROOT / "Tests" / "DinoTensorTests" / "Fixtures" / "pth"
GOOD_CONFIG = json.loads((ROOT / "Tests" / "DinoModelTests" / "Fixtures" / "reg1_nointerp" / "config.json").read_text())
manifest = []


def add(folder: str, name: str, data: bytes, problem: str, expect: str) -> None:
    path = OUT / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    manifest.append({"format": folder, "file": f"{folder}/{name}", "problem": problem, "message_contains": expect})


def safetensors(header, data=b"", declared=None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text) if declared is None else declared) + text + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def png(width, height, chunks=None, body=None) -> bytes:
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if body is not None:
        out += chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")
    return out


def extract_output(keys) -> bytes:
    """A `dino extract` output: cls_token F32 [K, 4] (zeros) with the keys in the metadata."""
    rows = len(keys)
    header = {"__metadata__": {"keys": json.dumps(keys, separators=(",", ":"))}, "cls_token": entry("F32", [rows, 4], 0, 16 * rows)}
    return safetensors(header, bytes(16 * rows))


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    st = "safetensors"
    add(st, "length_past_end.safetensors", safetensors({}, declared=4096), "header length runs past the end", "truncated")
    add(st, "huge_header.safetensors", safetensors({}, declared=1 << 40), "header length over the 100 MB limit", "exceeds")
    add(st, "overlap.safetensors", safetensors({"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 4, 8)}, bytes(8)), "overlapping tensors", "overlap")
    add(st, "gap.safetensors", safetensors({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, bytes(12)), "gap between tensors", "gap")
    add(st, "out_of_range.safetensors", safetensors({"a": entry("F32", [4], 0, 16)}, bytes(4)), "offsets past the end", "truncated")
    add(st, "byte_count.safetensors", safetensors({"a": entry("F32", [3], 0, 8)}, bytes(8)), "shape and byte count disagree", "cannot occupy")
    add(st, "duplicate.safetensors", safetensors(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', bytes(8)), "duplicate tensor name", "duplicate")
    add(st, "non_utf8.safetensors", safetensors(b'{"\xff\xfe":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', bytes(4)), "name is not UTF-8", "UTF-8")
    add(st, "deep_nesting.safetensors", safetensors(b'{"__metadata__":' + b"[" * 300 + b"]" * 300 + b"}"), "JSON nested 300 deep", "nested")
    add(st, "unknown_dtype.safetensors", safetensors({"a": entry("Q4", [1], 0, 4)}, bytes(4)), "unknown dtype", "unsupported dtype")
    add(st, "not_object.safetensors", safetensors(b"[1,2,3]"), "header is a list", "header")
    add(st, "empty.safetensors", b"", "empty file", "truncated")
    add(st, "negative_dim.safetensors", safetensors(b'{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'), "negative dimension", "dimension")
    add(st, "trailing_bytes.safetensors", safetensors({"a": entry("F32", [1], 0, 4)}, bytes(12)), "bytes after the last tensor", "belong to no tensor")

    def config(name, problem, expect, edit=None, text=None):
        if text is None:
            value = dict(GOOD_CONFIG)
            edit(value)
            text = json.dumps(value)
        add("config", f"{name}/config.json", text.encode(), problem, expect)

    config("hidden_string", "hidden_size is a string", "hidden_size", lambda c: c.update(hidden_size="wide"))
    config("hidden_zero", "hidden_size is 0", "hidden_size", lambda c: c.update(hidden_size=0))
    config("layers_negative", "num_hidden_layers is negative", "num_hidden_layers", lambda c: c.update(num_hidden_layers=-3))
    config("heads_not_dividing", "3 heads do not divide 32", "num_attention_heads", lambda c: c.update(num_attention_heads=3))
    config("stages_disagree", "out_features and out_indices name different stages", "out_features",
           lambda c: c.update(out_features=["stage1"], out_indices=[2]))
    config("unknown_stage", "out_features names a stage that does not exist", "stage9", lambda c: c.update(out_features=["stage9"], out_indices=None))
    config("model_type", "unsupported model_type", "model_type", lambda c: c.update(model_type="vit"))
    config("duplicate_key", "a key appears twice", "duplicate", text='{"hidden_size": 32, "hidden_size": 64}')
    config("not_json", "not JSON", "invalid JSON", text="{hidden_size: 32")
    config("non_square", "image_size is not square", "image_size", lambda c: c.update(image_size=[56, 28]))
    # Extreme values: each crashed the loader or allocated from the value before a weight was read.
    config("layers_billion", "num_hidden_layers 10^9 beside a 2-block checkpoint", "num_hidden_layers",
           lambda c: c.update(num_hidden_layers=1_000_000_000, out_features=None, out_indices=None))
    config("image_size_overflow", "image_size 14 x 2^32: the position grid squared overflows", "image_size",
           lambda c: c.update(image_size=14 << 32))
    config("hidden_huge", "hidden_size 2^40", "hidden_size", lambda c: c.update(hidden_size=1 << 40, mlp_ratio=1e-9))
    config("registers_huge", "num_register_tokens 2^62", "num_register_tokens", lambda c: c.update(num_register_tokens=1 << 62))
    config("patch_huge", "patch_size 4096", "patch_size", lambda c: c.update(patch_size=4096, image_size=8192))
    config("channels_huge", "num_channels 2^31", "num_channels", lambda c: c.update(num_channels=1 << 31))

    for name, problem, expect in [
        ("truncated.pth", "zip archive cut short", "truncat"),
        ("global_os_system.pth", "pickle calls os.system", "os.system"),
        ("unknown_opcode.pth", "pickle uses an opcode torch.save never writes", "opcode"),
        ("legacy.pth", "pre-1.6 torch.save format", "legacy"),
        ("missing_storage.pth", "pickle references a storage the zip lacks", "storage"),
        ("big_endian.pth", "big-endian storages", "endian"),
        ("view_too_large.pth", "tensor view larger than its storage", "storage"),
    ]:
        add("pth", name, (PTH / name).read_bytes(), problem, expect)

    add("image", "truncated.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(200), "JPEG without its end marker", "truncated")
    add("image", "truncated.png", png(16, 16, body=bytes(16 * 49))[:-40], "PNG cut short", "corrupt")
    add("image", "zero_size.png", png(0, 0), "PNG declaring 0x0 pixels", "0x0")
    add("image", "huge_dimensions.png", png(100000, 100000), "PNG declaring 100000x100000 pixels", "exceeds the limit")
    add("image", "empty.jpg", b"", "empty file", "not an image")
    add("image", "text.jpg", b"this is not a photo\n", "text with an image extension", "not an image")
    add("image", "animation.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "GIF (no decoder in this build)", "not supported")
    add("image", "bogus.bmp", b"BM" + bytes(8) + struct.pack("<I", 54) + struct.pack("<Iii", 40, 64, 64) + bytes(8), "BMP header without pixels", "corrupt")

    add("npy", "bad_magic.npy", b"NOTNUMPY" + bytes(40), "not a .npy file", "magic")
    header = b"{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3, 14, 14), }"
    add("npy", "fortran.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(4 * 588), "Fortran-ordered array", "Fortran")
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 14, 14), }"
    add("npy", "short_data.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(100), "fewer bytes than the shape needs", "cannot occupy")

    voc = {
        "missing_bndbox": "<annotation><filename>a.jpg</filename><size><width>64</width><height>64</height><depth>3</depth></size><object><name>cat</name><difficult>0</difficult></object></annotation>",
        "missing_ymax": "<annotation><filename>a.jpg</filename><size><width>64</width><height>64</height><depth>3</depth></size><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax></bndbox></object></annotation>",
        "text_coordinate": "<annotation><filename>a.jpg</filename><size><width>64</width><height>64</height><depth>3</depth></size><object><name>cat</name><bndbox><xmin>one</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>",
        "malformed_xml": "<annotation><filename>a.jpg</filename><object><name>cat</name>",
    }
    for name, text in voc.items():
        add("voc", f"{name}.xml", text.encode(), name.replace("_", " "), "Annotations")
    # Found by Scripts/fuzz.sh: Foundation's XMLParser trapped on an element name that is not UTF-8.
    add("voc", "non_utf8_element.xml", b"<annotation><filename>a.jpg</filename><s\xff\xffize><width>64</width></s\xff\xffize></annotation>",
        "an element name that is not UTF-8", "UTF-8")
    add("coco", "missing_annotations.json", json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}]}).encode(), "no annotations list", "annotations")
    add("coco", "short_bbox.json", json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}], "annotations": [{"image_id": 1, "bbox": [1, 2, 3], "iscrowd": 0}]}).encode(), "bbox with 3 numbers", "bbox")
    add("coco", "not_json.json", b"{images: [", "not JSON", "JSON")

    # An extract manifest whose unit output leaves its folder; the test puts an exact copy of
    # that output where the ../ path points, so a reader that follows it succeeds.
    keys_output = extract_output(["a"])
    settings = {"model": "m", "model_type": "dinov2_with_registers", "hidden_size": 4, "patch_size": 14, "registers": 0,
                "preprocessing": "p", "features": [{"name": "cls_token", "width": 4}]}
    tampered = {
        "format": "dino-extract-manifest/1", "tool": "dino-extract 1.0", "shard": {"index": 0, "count": 1}, "settings": settings,
        "inputs": {"units": 1, "chunk_size": 1000, "fingerprint": "fnv1a64:0000000000000000"}, "assigned": [0], "complete": True,
        "units": [{"index": 0, "source": "files 0..<1", "output": "../outside.safetensors", "rows": 1, "expected": 1, "failures": [],
                   "bytes": len(keys_output), "sha256": hashlib.sha256(keys_output).hexdigest(), "seconds": 0.1}],
        "failed_units": [], "runs": [],
    }
    add("manifest", "output_outside.json", json.dumps(tampered).encode(), "a unit output '../outside.safetensors'", "not inside")
    (OUT / "manifest" / "outside.safetensors").write_bytes(keys_output)

    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest)} bad inputs to {OUT}")


if __name__ == "__main__":
    main()
