#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 transformers==5.24.0 safetensors==0.8.0 numpy==2.4.6 pillow==13.0.0
#   (the versions installed when the fixtures were generated; another transformers may name
#    the checkpoint keys differently, another Pillow may encode the PNG/JPEG files differently)
"""Generate the reference fixtures for the DinoSegmentation Swift tests.

Run from the repository root (about 20 s on 2 cores, mostly the torch / transformers imports):

    python Scripts/make_segmentation_fixtures.py

It deletes and rewrites `Tests/DinoSegmentationTests/Fixtures/`.  Everything runs on the CPU
in float32 with fixed seeds, so two runs write the same tensors.  The reference code below is
written for these fixtures from the semantics of the upstream code (cited where it matters);
none of it is copied.

* `model/`: a random-weight `Dinov2WithRegistersModel` (hidden 32, 4 blocks, 2 heads,
  4 registers, patch 14), laid out as on the hub (`config.json` + `model.safetensors`).
  4 blocks so that the "ms" head (the last 4 blocks) exists.
* `head_<variant>_<H>x<W>.safetensors` (variant `linear`: block 3 only; `ms`: blocks 0-3):
  the head weights under the released key names (`decode_head.conv_seg.weight` [K, C, 1, 1],
  `decode_head.conv_seg.bias`, `decode_head.bn.{weight,bias,running_mean,running_var}`),
  `pixel_values` [B, 3, H, W], the head inputs `features.<i>` [B, 32, h, w] (the backbone's
  block outputs after the final LayerNorm, CLS and registers dropped: dinov2's
  `get_intermediate_layers(n, reshape=True, norm=True)`, here from HF's hidden states),
  `logits_grid` [B, K, h, w] (the head: BatchNorm in eval form, 1x1 conv) and `logits`
  [B, K, H, W] (bilinearly upsampled, align_corners=False).
* `head_resize_concat.safetensors`: the "ms" head applied to feature maps of different sizes
  (`maps.<i>`), which the head resizes to the first one's size before concatenating.
* `slide_<name>.safetensors`: `pixel_values`, the linear head weights, and `logits` of
  mmseg's `slide_inference` (crop, stride; windows summed and divided by their count), each
  window run through the backbone after centre padding to a multiple of the patch size (the
  dinov2 segmentation notebook's `CenterPadding` hook), its logits upsampled to the window.
* `train_<name>.safetensors`: one training step of the head on a tiny batch: features, labels
  (255 = ignore), the parameters before, the loss, the gradients of the conv and BatchNorm
  parameters (BatchNorm in training mode: batch statistics), the running statistics after
  the step, and the parameters and losses after two AdamW steps and after two SGD steps.
* `metrics.safetensors` + `metrics.json`: stored predictions and ground truths of three
  "images", and the per-class intersection / union / areas, IoU, accuracy, aAcc, mIoU and mAcc
  computed with numpy as mmseg's `total_intersect_and_union` + `nanmean` do, with and without
  `reduce_zero_label`.
* `labels/`: label PNGs as datasets store them (8-bit grey, palette, 1-bit grey) and ones the
  reader must refuse (16-bit grey, colour, ambiguous palette), with `expected.safetensors`.
* `voc/` and `ade/`: three-image datasets in the Pascal VOC and ADE20K layouts.
* `colours/`: a small learnable dataset in the folders layout (`images/{train,val}`,
  `masks/{train,val}`, `classes.txt`): crops of the photos in `Examples/images`, each pixel
  labelled dark / warm / cool / pale by the colour of the blurred photo.
* `head_official.pth` (+ `head_official_f16.pth`): a head saved as mmcv's `save_checkpoint`
  saves the released heads, `{"meta": {...}, "state_dict": {...}}` with
  `decode_head.bn.num_batches_tracked` (int64), in float32 and in float16;
  `head_official.safetensors` and `head_official_f16.safetensors` hold the same tensors as
  float32 for comparison.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from collections import OrderedDict
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "DinoSegmentationTests" / "Fixtures"
MAX_TOTAL_BYTES = 3_000_000
PATCH = 14
IGNORE = 255

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def seed_of(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def generator(name: str) -> torch.Generator:
    return torch.Generator().manual_seed(seed_of(name))


# --------------------------------------------------------------------------- backbone


def build_model() -> Dinov2WithRegistersModel:
    config = Dinov2WithRegistersConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, patch_size=PATCH, image_size=56,
        num_register_tokens=4, layerscale_value=1.0, attn_implementation="eager")
    model = Dinov2WithRegistersModel(config).eval()
    gen = generator("model")
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            leaf = name.rsplit(".", 1)[-1]
            owner = name.rsplit(".", 2)[-2] if "." in name else ""
            if leaf in ("cls_token", "mask_token", "register_tokens", "position_embeddings"):
                value = torch.randn(p.shape, generator=gen)
            elif leaf == "lambda1":
                value = 0.05 + 0.95 * torch.rand(p.shape, generator=gen)
            elif "norm" in owner:
                value = torch.randn(p.shape, generator=gen) * 0.1 + (1.0 if leaf == "weight" else 0.0)
            elif leaf == "weight":
                value = torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel())
            else:
                value = torch.randn(p.shape, generator=gen) * 0.1
            p.copy_(value)
    return model


def block_features(model, pixels: torch.Tensor, blocks: list[int]) -> list[torch.Tensor]:
    """dinov2 `get_intermediate_layers(blocks, reshape=True, norm=True)` from HF's hidden states:
    block k's output is hidden_states[k + 1]; the final LayerNorm is applied, CLS and registers
    dropped, patch tokens reshaped to [B, C, h, w]."""
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
    prefix = 1 + model.config.num_register_tokens
    b, _, hh, ww = pixels.shape
    h, w = hh // PATCH, ww // PATCH
    maps = []
    for k in blocks:
        tokens = model.layernorm(out.hidden_states[k + 1])[:, prefix:, :]
        maps.append(tokens.reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous())
    return maps


# --------------------------------------------------------------------------- head


def random_head(name: str, channels: int, classes: int) -> dict[str, torch.Tensor]:
    gen = generator(name)
    return {
        "decode_head.conv_seg.weight": torch.randn(classes, channels, 1, 1, generator=gen) / math.sqrt(channels),
        "decode_head.conv_seg.bias": torch.randn(classes, generator=gen) * 0.1,
        "decode_head.bn.weight": 1.0 + 0.2 * torch.randn(channels, generator=gen),
        "decode_head.bn.bias": 0.2 * torch.randn(channels, generator=gen),
        "decode_head.bn.running_mean": 0.3 * torch.randn(channels, generator=gen),
        "decode_head.bn.running_var": 0.5 + torch.rand(channels, generator=gen),
    }


def head_forward(weights: dict[str, torch.Tensor], maps: list[torch.Tensor]) -> torch.Tensor:
    """BNHead with input_transform="resize_concat": every map bilinearly resized
    (align_corners=False) to the first one's size, concatenated on channels, BatchNorm with the
    running statistics, 1x1 conv.  ref: dinov2/eval/segmentation/models/decode_heads/linear_head.py"""
    size = maps[0].shape[2:]
    x = torch.cat([F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps], dim=1)
    x = F.batch_norm(x, weights["decode_head.bn.running_mean"], weights["decode_head.bn.running_var"],
                     weights["decode_head.bn.weight"], weights["decode_head.bn.bias"], training=False, eps=1e-5)
    return F.conv2d(x, weights["decode_head.conv_seg.weight"], weights["decode_head.conv_seg.bias"])


def encode_decode(model, weights, blocks, pixels: torch.Tensor) -> torch.Tensor:
    """One window: centre pad to a multiple of the patch size (the dinov2 notebook's
    CenterPadding: left = pad // 2), backbone, head, logits upsampled to the unpadded window
    (mmseg EncoderDecoder.encode_decode resizes to img.shape[2:])."""
    _, _, h, w = pixels.shape
    ph, pw = (-h) % PATCH, (-w) % PATCH
    padded = F.pad(pixels, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    logits = head_forward(weights, block_features(model, padded, blocks))
    return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)


def slide_inference(model, weights, blocks, pixels, crop, stride, classes):
    """mmseg EncoderDecoder.slide_inference: a grid of windows, the last ones flush with the
    bottom/right edge, logits summed into place and divided by the number of windows covering
    each pixel."""
    (hc, wc), (hs, ws) = crop, stride
    b, _, h, w = pixels.shape
    rows = max(h - hc + hs - 1, 0) // hs + 1
    cols = max(w - wc + ws - 1, 0) // ws + 1
    total = torch.zeros(b, classes, h, w)
    count = torch.zeros(b, 1, h, w)
    windows = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * hs + hc, h), min(c * ws + wc, w)
            y1, x1 = max(y2 - hc, 0), max(x2 - wc, 0)
            total[:, :, y1:y2, x1:x2] += encode_decode(model, weights, blocks, pixels[:, :, y1:y2, x1:x2])
            count[:, :, y1:y2, x1:x2] += 1
            windows.append([y1, x1, y2, x2])
    assert (count > 0).all()
    return total / count, windows


# --------------------------------------------------------------------------- training step


def train_step_reference(name: str, channels: int, classes: int, grids, label_sizes, ignore_fraction: float):
    gen = generator(name)
    feats = [torch.randn(1, channels, gh, gw, generator=gen) * (0.5 + torch.rand(1, channels, 1, 1, generator=gen))
             + torch.randn(1, channels, 1, 1, generator=gen) for gh, gw in grids]
    labels = []
    for lh, lw in label_sizes:
        lab = torch.randint(0, classes, (lh, lw), generator=gen)
        lab[torch.rand(lh, lw, generator=gen) < ignore_fraction] = IGNORE
        labels.append(lab)
    params = random_head(name + "/head", channels, classes)
    momentum, eps = 0.1, 1e-5

    def loss_of(p, running):
        """BatchNorm in training mode over every position of every image of the batch (biased
        variance for normalising, unbiased for the running variance, momentum 0.1 as
        torch.nn.BatchNorm2d), 1x1 conv, bilinear upsampling to the label size, softmax cross
        entropy averaged over the non-ignored pixels of the whole batch."""
        flat = torch.cat([f.flatten(2) for f in feats], dim=2)  # [1, C, N]
        mean = flat.mean(dim=(0, 2))
        var = flat.var(dim=(0, 2), unbiased=False)
        n = flat.shape[2]
        with torch.no_grad():
            running["mean"].mul_(1 - momentum).add_(momentum * mean)
            running["var"].mul_(1 - momentum).add_(momentum * var * n / (n - 1))
        total, valid = 0.0, 0
        for f, lab in zip(feats, labels):
            x = (f - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + eps)
            x = x * p["decode_head.bn.weight"][None, :, None, None] + p["decode_head.bn.bias"][None, :, None, None]
            z = F.conv2d(x, p["decode_head.conv_seg.weight"], p["decode_head.conv_seg.bias"])
            up = F.interpolate(z, size=lab.shape, mode="bilinear", align_corners=False)
            total = total + F.cross_entropy(up, lab[None], ignore_index=IGNORE, reduction="sum")
            valid += int((lab != IGNORE).sum())
        return total / valid

    trainable = ["decode_head.conv_seg.weight", "decode_head.conv_seg.bias", "decode_head.bn.weight", "decode_head.bn.bias"]
    out: dict[str, torch.Tensor] = {}
    for i, f in enumerate(feats):
        out[f"features.{i}"] = f[0]
        out[f"labels.{i}"] = labels[i].float()
    for k, v in params.items():
        out[f"before.{k}"] = v
    p = {k: v.clone().requires_grad_(k in trainable) for k, v in params.items()}
    running = {"mean": params["decode_head.bn.running_mean"].clone(), "var": params["decode_head.bn.running_var"].clone()}
    loss = loss_of(p, running)
    loss.backward()
    out["loss"] = loss.detach().reshape(1)
    for k in trainable:
        out[f"grad.{k}"] = p[k].grad
    out["after.running_mean"] = running["mean"]
    out["after.running_var"] = running["var"]

    optimizers = {
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
    }
    for label, make in optimizers.items():
        p = {k: v.clone().requires_grad_(k in trainable) for k, v in params.items()}
        running = {"mean": params["decode_head.bn.running_mean"].clone(), "var": params["decode_head.bn.running_var"].clone()}
        opt = make([p[k] for k in trainable])
        losses = []
        for _ in range(2):
            opt.zero_grad()
            loss = loss_of(p, running)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out[f"{label}.losses"] = torch.tensor(losses)
        for k in trainable:
            out[f"{label}.{k}"] = p[k].detach()
        out[f"{label}.running_mean"] = running["mean"]
        out[f"{label}.running_var"] = running["var"]
    meta = {"channels": str(channels), "classes": str(classes), "images": str(len(feats)), "bn_momentum": str(momentum),
            "adamw": "lr=0.01 betas=(0.9,0.999) eps=1e-8 weight_decay=0.05",
            "sgd": "lr=0.1 momentum=0.9 weight_decay=1e-3"}
    return out, meta


# --------------------------------------------------------------------------- metrics


def intersect_and_union(pred: np.ndarray, label: np.ndarray, classes: int, reduce_zero_label: bool):
    """mmseg intersect_and_union: optional reduce_zero_label (0 -> ignore, others shift down by
    one), pixels whose label is the ignore index dropped, per-class histograms of the
    intersection, prediction and label; union = pred + label - intersection."""
    label = label.astype(np.int64)
    if reduce_zero_label:
        label = np.where(label == 0, IGNORE, label - 1)
        label = np.where(label == IGNORE - 1, IGNORE, label)
    keep = label != IGNORE
    p, t = pred[keep].astype(np.int64), label[keep]
    inter = p[p == t]
    bins = np.arange(classes + 1)
    ai = np.histogram(inter, bins=bins)[0].astype(np.float64)
    ap = np.histogram(p[(p >= 0) & (p < classes)], bins=bins)[0].astype(np.float64)
    al = np.histogram(t[(t >= 0) & (t < classes)], bins=bins)[0].astype(np.float64)
    return ai, ap + al - ai, ap, al


def metrics_reference(preds, labels, classes, reduce_zero_label):
    totals = [np.zeros(classes) for _ in range(4)]
    for p, t in zip(preds, labels):
        for acc, v in zip(totals, intersect_and_union(p, t, classes, reduce_zero_label)):
            acc += v
    inter, union, area_pred, area_label = totals
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
        acc = inter / area_label
    return {
        "area_intersect": inter.tolist(), "area_union": union.tolist(),
        "area_pred": area_pred.tolist(), "area_label": area_label.tolist(),
        "iou": [None if math.isnan(v) else v for v in iou],
        "acc": [None if math.isnan(v) else v for v in acc],
        "aAcc": float(inter.sum() / area_label.sum()),
        "mIoU": float(np.nanmean(iou)), "mAcc": float(np.nanmean(acc)),
    }


# --------------------------------------------------------------------------- label files


def voc_palette() -> list[int]:
    """The Pascal VOC colour map: bits of the index spread over R, G, B from the top bit down."""
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    return out


def write_label_fixtures(folder: Path) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed_of("labels"))
    expected = {}
    grey = rng.integers(0, 6, size=(9, 13)).astype(np.uint8)
    grey[0, :3] = IGNORE
    Image.fromarray(grey, mode="L").save(folder / "grey.png")
    expected["grey"] = grey
    palette_values = rng.integers(0, 21, size=(7, 11)).astype(np.uint8)
    palette_values[-1, -2:] = IGNORE
    img = Image.fromarray(palette_values, mode="P")
    img.putpalette(voc_palette())
    img.save(folder / "palette.png")
    expected["palette"] = palette_values
    bits = rng.integers(0, 2, size=(5, 12)).astype(np.uint8)
    Image.fromarray(bits * 255, mode="L").convert("1").save(folder / "bits.png")
    expected["bits"] = bits
    Image.fromarray((grey.astype("<u2") * 300)).save(folder / "grey16.png")
    colour = np.stack([grey, grey // 2, grey], axis=-1)
    Image.fromarray(colour, mode="RGB").save(folder / "colour.png")
    ambiguous = Image.fromarray(np.array([[0, 1], [2, 3]], dtype=np.uint8), mode="P")
    ambiguous.putpalette([10, 20, 30, 10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (252 * 3))
    ambiguous.save(folder / "ambiguous_palette.png")
    Image.fromarray(np.stack([grey] * 3, axis=-1), mode="RGB").save(folder / "grey_as_rgb.png")
    save_file({k: torch.from_numpy(v.astype(np.float32)) for k, v in expected.items()}, str(folder / "expected.safetensors"))


def write_voc(folder: Path) -> dict:
    rng = np.random.default_rng(seed_of("voc"))
    (folder / "JPEGImages").mkdir(parents=True)
    (folder / "SegmentationClass").mkdir()
    (folder / "ImageSets" / "Segmentation").mkdir(parents=True)
    ids = ["2007_000032", "2007_000039", "2007_000063"]
    sizes = [(42, 56), (56, 42), (42, 42)]
    for name, (h, w) in zip(ids, sizes):
        pixels = rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "JPEGImages" / f"{name}.jpg", quality=90)
        labels = rng.integers(0, 21, size=(h, w)).astype(np.uint8)
        labels[:2, :] = IGNORE
        img = Image.fromarray(labels, mode="P")
        img.putpalette(voc_palette())
        img.save(folder / "SegmentationClass" / f"{name}.png")
    (folder / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids[:2]) + "\n")
    (folder / "ImageSets" / "Segmentation" / "val.txt").write_text(ids[2] + "\n")
    return {"train": ids[:2], "val": ids[2:]}


def write_ade(folder: Path) -> dict:
    rng = np.random.default_rng(seed_of("ade"))
    names = {"training": ["ADE_train_00000001", "ADE_train_00000002"], "validation": ["ADE_val_00000001"]}
    for split, stems in names.items():
        (folder / "images" / split).mkdir(parents=True)
        (folder / "annotations" / split).mkdir(parents=True)
        for stem in stems:
            pixels = rng.integers(0, 256, size=(28, 42, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(folder / "images" / split / f"{stem}.jpg", quality=90)
            labels = rng.integers(0, 151, size=(28, 42)).astype(np.uint8)
            labels[0, 0] = 0
            labels[0, 1] = 150
            Image.fromarray(labels, mode="L").save(folder / "annotations" / split / f"{stem}.png")
    return names


COLOUR_CLASSES = ["dark", "warm", "cool", "pale"]


def colour_classes(rgb: np.ndarray) -> np.ndarray:
    """The class of each pixel of a (blurred) photo from its colour: dark (value < 0.25), pale
    (saturation <= 0.3), warm (hue in [330, 60) degrees: reds, oranges, yellows) or cool."""
    x = rgb.astype(np.float64) / 255
    high, low = x.max(-1), x.min(-1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-9), 0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    span = np.maximum(high - low, 1e-9)
    hue = np.where(high == r, ((g - b) / span) % 6, np.where(high == g, (b - r) / span + 2, (r - g) / span + 4)) * 60
    return np.where(high < 0.25, 0, np.where(saturation <= 0.3, 3, np.where((hue < 60) | (hue >= 330), 1, 2))).astype(np.uint8)


def write_colour_dataset(folder: Path) -> dict:
    """A learnable dataset from the repository's photos (Examples/images): 4 crops of each
    photo, resized to 112 x 112, labelled by `colour_classes` of the photo blurred with a
    Gaussian of radius 3 (so regions are blobs, not pixel noise); crops 0-2 of each photo
    train, crop 3 validates."""
    from PIL import ImageFilter

    rng = np.random.default_rng(seed_of("colours"))
    for split in ("train", "val"):
        (folder / "images" / split).mkdir(parents=True)
        (folder / "masks" / split).mkdir(parents=True)
    (folder / "classes.txt").write_text("\n".join(COLOUR_CLASSES) + "\n")
    counts = {"train": np.zeros(4, dtype=np.int64), "val": np.zeros(4, dtype=np.int64)}
    for photo in ["astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg"]:
        image = Image.open(ROOT / "Examples" / "images" / photo).convert("RGB")
        classes = colour_classes(np.asarray(image.filter(ImageFilter.GaussianBlur(3))))
        side = int(min(image.size) * 0.6)
        for k in range(4):
            x = int(rng.integers(0, image.size[0] - side + 1))
            y = int(rng.integers(0, image.size[1] - side + 1))
            split = "val" if k == 3 else "train"
            stem = f"{Path(photo).stem}_{k}"
            crop = image.crop((x, y, x + side, y + side)).resize((112, 112), Image.BICUBIC)
            crop.save(folder / "images" / split / f"{stem}.jpg", quality=95)
            mask = Image.fromarray(classes[y:y + side, x:x + side]).resize((112, 112), Image.NEAREST)
            mask.save(folder / "masks" / split / f"{stem}.png")
            counts[split] += np.bincount(np.asarray(mask).ravel(), minlength=4)
    return {split: {name: int(n) for name, n in zip(COLOUR_CLASSES, c)} for split, c in counts.items()}


# --------------------------------------------------------------------------- main


def main() -> int:
    if FIXTURES.exists():
        shutil.rmtree(FIXTURES)
    FIXTURES.mkdir(parents=True)
    manifest: dict = {"patch_size": PATCH, "ignore_index": IGNORE, "cases": {}}

    model = build_model()
    model.save_pretrained(FIXTURES / "model")
    for extra in ("generation_config.json",):
        (FIXTURES / "model" / extra).unlink(missing_ok=True)
    classes = 5
    variants = {"linear": [3], "ms": [0, 1, 2, 3]}

    for variant, blocks in variants.items():
        weights = random_head(f"head/{variant}", 32 * len(blocks), classes)
        for batch, (h, w) in [(2, (42, 70)), (1, (56, 56))]:
            name = f"head_{variant}_{h}x{w}"
            pixels = torch.randn(batch, 3, h, w, generator=generator(name))
            maps = block_features(model, pixels, blocks)
            with torch.no_grad():
                grid = head_forward(weights, maps)
                logits = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
            tensors = dict(weights)
            tensors["pixel_values"] = pixels
            tensors.update({f"features.{i}": m for i, m in enumerate(maps)})
            tensors["logits_grid"] = grid
            tensors["logits"] = logits
            save_file({k: v.contiguous() for k, v in tensors.items()}, str(FIXTURES / f"{name}.safetensors"),
                      metadata={"blocks": json.dumps(blocks), "variant": variant})
            manifest["cases"][name] = {"blocks": blocks, "batch": batch, "size": [h, w],
                                       "max_abs_logits": float(logits.abs().max())}

    # Feature maps of different sizes: the head resizes them to the first one's size.
    weights = random_head("head/resize_concat", 4 * 6, 3)
    gen = generator("resize_concat")
    maps = [torch.randn(1, 6, gh, gw, generator=gen) for gh, gw in [(3, 5), (6, 10), (2, 3), (3, 5)]]
    with torch.no_grad():
        grid = head_forward(weights, maps)
    tensors = dict(weights)
    tensors.update({f"maps.{i}": m for i, m in enumerate(maps)})
    tensors["logits_grid"] = grid
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(FIXTURES / "head_resize_concat.safetensors"))

    # Sliding windows over the backbone + linear head.
    weights = random_head("head/slide", 32, classes)
    for name, (h, w), crop, stride in [
        ("aligned", (56, 98), (42, 42), (28, 28)),  # windows are multiples of the patch size
        ("padded", (50, 75), (32, 32), (20, 21)),  # windows centre-padded to 42 x 42
        ("small", (28, 98), (42, 42), (28, 28)),  # the image is lower than the window
    ]:
        pixels = torch.randn(1, 3, h, w, generator=generator("slide/" + name))
        with torch.no_grad():
            logits, windows = slide_inference(model, weights, [3], pixels, crop, stride, classes)
        tensors = dict(weights)
        tensors["pixel_values"] = pixels
        tensors["logits"] = logits
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(FIXTURES / f"slide_{name}.safetensors"),
                  metadata={"crop": json.dumps(list(crop)), "stride": json.dumps(list(stride)), "blocks": "[3]"})
        manifest["cases"][f"slide_{name}"] = {"size": [h, w], "crop": list(crop), "stride": list(stride),
                                              "windows": windows, "max_abs_logits": float(logits.abs().max())}

    # Training steps.
    for name, grids, label_sizes in [
        ("same_size", [(3, 4), (3, 4)], [(42, 56), (42, 56)]),
        ("mixed_size", [(3, 4), (2, 5)], [(42, 56), (28, 70)]),
    ]:
        tensors, meta = train_step_reference("train/" + name, 6, 4, grids, label_sizes, 0.1)
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(FIXTURES / f"train_{name}.safetensors"), metadata=meta)
        manifest["cases"][f"train_{name}"] = {**meta, "loss": float(tensors["loss"][0])}

    # Metrics on stored predictions.
    rng = np.random.default_rng(seed_of("metrics"))
    metric_classes = 7
    preds, truths = [], []
    for h, w in [(9, 13), (16, 7), (5, 5)]:
        truth = rng.integers(0, 5, size=(h, w))
        truth[rng.random((h, w)) < 0.15] = IGNORE
        pred = np.where(rng.random((h, w)) < 0.6, np.where(truth == IGNORE, 0, truth), rng.integers(0, 4, size=(h, w)))
        pred[pred == 4] = 3  # class 4: in the truth, never predicted (IoU 0)
        pred[rng.random((h, w)) < 0.05] = 5  # class 5: predicted, never in the truth (IoU 0)
        preds.append(pred.astype(np.uint8))  # class 6: in neither (IoU NaN, left out of the mean)
        truths.append(truth.astype(np.uint8))
    tensors = {}
    for i, (p, t) in enumerate(zip(preds, truths)):
        tensors[f"prediction.{i}"] = torch.from_numpy(p.astype(np.float32))
        tensors[f"truth.{i}"] = torch.from_numpy(t.astype(np.float32))
    save_file(tensors, str(FIXTURES / "metrics.safetensors"))
    metrics = {
        "classes": metric_classes,
        "plain": metrics_reference(preds, truths, metric_classes, False),
        "reduce_zero_label": metrics_reference(preds, truths, metric_classes - 1, True),
    }
    (FIXTURES / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")

    write_label_fixtures(FIXTURES / "labels")
    manifest["voc"] = write_voc(FIXTURES / "voc")
    manifest["ade"] = write_ade(FIXTURES / "ade")
    manifest["colours"] = write_colour_dataset(FIXTURES / "colours")

    # A head as mmcv's save_checkpoint writes the released ones.
    weights = random_head("head/official", 32, classes)
    state = OrderedDict((k, v.clone()) for k, v in weights.items())
    state["decode_head.bn.num_batches_tracked"] = torch.tensor(40000, dtype=torch.int64)
    meta = {"mmseg_version": "0.27.0", "CLASSES": tuple(f"class{i}" for i in range(classes)),
            "PALETTE": [[i * 40, 255 - i * 40, 128] for i in range(classes)]}
    torch.save({"meta": meta, "state_dict": state}, FIXTURES / "head_official.pth")
    half = OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in state.items())
    torch.save({"meta": meta, "state_dict": half}, FIXTURES / "head_official_f16.pth")
    save_file({k: v.float().reshape(v.shape) for k, v in state.items()}, str(FIXTURES / "head_official.safetensors"))
    save_file({k: v.float() for k, v in half.items()}, str(FIXTURES / "head_official_f16.safetensors"))

    (FIXTURES / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"wrote {FIXTURES.relative_to(ROOT)}: {total / 1e6:.2f} MB")
    if total > MAX_TOTAL_BYTES:
        print(f"warning: fixtures exceed {MAX_TOTAL_BYTES / 1e6:.1f} MB")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
