#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 transformers==5.24.0 safetensors==0.8.0 numpy==2.4.6 pillow==13.0.0
# requires: facebookresearch/dinov2 at commit b8931f7bf91576930313be2c6d6af376033b35f0
#   (its `dinov2/` package is the reference for the depth heads; pass the checkout with --dinov2)
"""Reference fixtures for the DinoDepth Swift tests (and the `dino depth` end-to-end tests).

Run from the repository root:

    python Scripts/make_depth_fixtures.py --dinov2 /path/to/dinov2-checkout

It rewrites `Tests/DinoDepthTests/Fixtures/` (float32, CPU, fixed seeds; about 2.7 MB, 30 s):

* `backbone/`: a tiny random DINOv2 (`DinoVisionTransformer` of the dinov2 repository: 12
  blocks of width 16, patch 14, trained size 56, no registers) in the original Meta key names,
  with an HF-style `config.json` (`model_type` `dinov2`).
* `heads/`: random dinov2 depth heads built with the dinov2 repository's own `BNHead` /
  `DPTHead` exactly as `dinov2/hub/depthers.py` builds them (except `channels` of the DPT
  head: 16 instead of 256, to keep the file small). Each is written twice: as the released
  `.pth` layout (`{"meta", "state_dict": {"decode_head.*"}, "optimizer"}`, as mmcv saves
  it) and as `.safetensors` with the depth range in `__metadata__`. The linear4 head also has
  the mmcv `_config.py` beside it, the place the released heads keep their depth range, and the
  DPT `.pth` keeps the config text in its `meta` (as mmcv runs may).
* `heads.safetensors`: inputs `<size>.pixels` and, per head, `<head>.<size>.head` (the decode
  head's output before clamping) and `<head>.<size>.depth` (`encode_decode`: clamped and
  resized to the input), plus `photo.<head>.depth` for the CLI (see below).
* `depth_anything/`, `depth_anything_metric/`: tiny random HF `DepthAnythingForDepthEstimation`
  folders (`save_pretrained`) and `depth_anything.safetensors` with their `predicted_depth`
  at the same sizes and `post_processed` (the HF image processor's bicubic resize).
* `processor.json`: HF `DPTImageProcessor` output sizes for Depth Anything's settings.
* `eval/`: ground truth (16-bit PNG in millimetres, written by Pillow), predictions (`.npy`)
  and `metrics.json`, the metrics computed with numpy following the dinov2 / Monocular Depth
  Estimation Toolbox evaluation (per image, masked, then the mean over images).
* `png/`: 8- and 16-bit grey PNGs written by Pillow and their values as `.npy`.

The photo references run Examples/images/coffee.png through Pillow's bicubic resize and the
reference model, then keep every 10th row and column of the map at the photo's size.
"""
import argparse
import json
import math
import shutil
import sys
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "DinoDepthTests" / "Fixtures"
PHOTO = ROOT / "Examples" / "images" / "coffee.png"
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

EMBED, DEPTH, HEADS, IMG = 16, 12, 2, 56
# Input sizes (height, width): a square batch of two and a non-square grid with an odd height.
SIZES = {"square": (2, 84, 84), "wide": (1, 70, 112)}
PHOTO_SIZE = (84, 126)  # coffee.png is 600x400: the same aspect ratio, a 6 x 9 patch grid


def randomize_(module: torch.nn.Module, generator: torch.Generator, scale: float = 0.3) -> None:
    """Overwrites every parameter with seeded normal values (biases included)."""
    for name, p in module.named_parameters():
        fan_in = p[0].numel() if p.dim() > 1 else 1
        std = scale / math.sqrt(fan_in) if p.dim() > 1 else scale
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=generator) * std)


def shift_final_bias_(model, layer: torch.nn.Conv2d, x: torch.Tensor) -> None:
    """Moves the last convolution's bias so that about 80% of its outputs are positive: random
    weights otherwise leave a final ReLU all zero, and the comparison would test nothing."""
    captured = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    model(x)
    handle.remove()
    with torch.no_grad():
        layer.bias -= torch.quantile(captured[0].flatten(), 0.2)


def photo_pixels(height: int, width: int) -> torch.Tensor:
    """coffee.png resized with Pillow's bicubic filter and normalised: `[1, 3, H, W]`."""
    image = Image.open(PHOTO).convert("RGB").resize((width, height), Image.BICUBIC)
    x = (np.asarray(image, dtype=np.float32) / np.float32(255) - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def build_backbone(dinov2) -> torch.nn.Module:
    from dinov2.models.vision_transformer import DinoVisionTransformer

    g = torch.Generator().manual_seed(0)
    model = DinoVisionTransformer(
        img_size=IMG, patch_size=14, embed_dim=EMBED, depth=DEPTH, num_heads=HEADS, mlp_ratio=4,
        init_values=1.0, block_chunks=0, num_register_tokens=0,
        interpolate_antialias=False, interpolate_offset=0.1).eval()
    randomize_(model, g, scale=0.5)
    folder = OUT / "backbone"
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    config = {
        "model_type": "dinov2", "architectures": ["Dinov2Model"], "hidden_size": EMBED,
        "num_hidden_layers": DEPTH, "num_attention_heads": HEADS, "mlp_ratio": 4, "hidden_act": "gelu",
        "layer_norm_eps": 1e-6, "image_size": IMG, "patch_size": 14, "num_channels": 3, "qkv_bias": True,
        "layerscale_value": 1.0, "use_swiglu_ffn": False,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return model


def build_heads(dinov2):
    """The three head kinds as dinov2/hub/depthers.py wires them, with their datasets' ranges."""
    from dinov2.hub.depth import BNHead, DPTHead

    # ref: dinov2/hub/depthers.py _get_depth_range: NYU (0.001, 10), KITTI (0.001, 80).
    # (_make_dinov2_linear_depth_head itself ignores the range and passes 0.001 / 80; the
    # released mmcv configs give the dataset's range, which is what the heads were trained with.)
    heads = OrderedDict()
    g = torch.Generator().manual_seed(1)
    for name, layers, dataset, max_depth in [("nyu_linear", 1, "nyu", 10.0), ("kitti_linear4", 4, "kitti", 80.0)]:
        head = BNHead(
            classify=True, n_bins=256, bins_strategy="UD", norm_strategy="linear", upsample=4,
            in_channels=[EMBED] * layers, in_index=list(range(layers)), input_transform="resize_concat",
            channels=EMBED * layers * 2, align_corners=False, min_depth=0.001, max_depth=max_depth,
            loss_decode=()).eval()
        blocks = [DEPTH - 1] if layers == 1 else [2, 5, 8, 11]
        randomize_(head, g)
        with torch.no_grad():
            # Random logits average out over 256 bins (every pixel near mid-range); a ramp over
            # the bins along one feature direction makes the depth follow the features.
            direction = torch.randn(head.conv_depth.in_channels, generator=g)
            ramp = torch.linspace(-1, 1, head.n_bins)
            head.conv_depth.weight += (ramp[:, None] * direction[None, :] / direction.norm() * 3)[:, :, None, None]
        heads[name] = (head, blocks, dataset)
    head = DPTHead(
        in_channels=[EMBED] * 4, channels=16, embed_dims=EMBED,
        post_process_channels=[EMBED // 2 ** (3 - i) for i in range(4)], readout_type="project",
        min_depth=0.001, max_depth=10.0, loss_decode=()).eval()
    # Gain a little above 1 per layer: the activations keep their spread through eleven convolutions.
    randomize_(head, g, scale=1.15)
    heads["nyu_dpt"] = (head, [2, 5, 8, 11], "nyu")
    return heads


def depther(backbone, head, blocks):
    from functools import partial

    from dinov2.hub.depth import DepthEncoderDecoder

    model = DepthEncoderDecoder(backbone=backbone, decode_head=head).eval()
    # ref: dinov2/hub/depthers.py: the backbone's forward is get_intermediate_layers.
    model.backbone.forward = partial(backbone.get_intermediate_layers, n=blocks, reshape=True,
                                     return_class_token=True, norm=False)
    return model


def write_head_files(name, head, blocks, dataset):
    folder = OUT / "heads"
    folder.mkdir(exist_ok=True)
    state = OrderedDict((f"decode_head.{k}", v.detach().clone()) for k, v in head.state_dict().items())
    stem = f"dinov2_vitt14_{name}"
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / f"{stem}_head.safetensors"), metadata={
        "min_depth": repr(head.min_depth), "max_depth": repr(float(head.max_depth)), "dataset": dataset,
        "out_indices": json.dumps(blocks)})
    # The mmcv checkpoint layout: meta (strings, numbers, a nested dict), the state dict, and
    # AdamW's state, whose tensors are not weights (kept only for the small linear head).
    checkpoint = {
        "meta": {"mmcv_version": "1.7.1", "time": "Fri Jun  2 10:00:00 2023", "iter": 38400,
                 "hook_msgs": {"best_score": 0.1, "last_ckpt": "/checkpoint/iter_38400.pth"}},
        "state_dict": state,
    }
    if name == "nyu_dpt":
        # mmcv runs that set checkpoint_config.meta keep the config's text in the checkpoint.
        checkpoint["meta"]["config"] = (
            "model = dict(\n    backbone=dict(type='DinoVisionTransformer', out_indices=[2, 5, 8, 11]),\n"
            "    decode_head=dict(type='DPTHead', min_depth=0.001, max_depth=10, readout_type='project'))\n")
    if name == "nyu_linear":
        checkpoint["optimizer"] = {
            "state": {i: {"step": torch.tensor(38400.0), "exp_avg": torch.zeros_like(v), "exp_avg_sq": torch.ones_like(v)}
                      for i, v in enumerate(state.values())},
            "param_groups": [{"lr": 1e-8, "betas": (0.9, 0.999), "weight_decay": 0.01, "params": list(range(len(state)))}],
        }
    torch.save(checkpoint, folder / f"{stem}_head.pth")
    if name == "kitti_linear4":
        # The part of a released `_config.py` that matters here, in mmcv's pretty_text format.
        (folder / f"{stem}_config.py").write_text(
            "dataset_type = 'KITTIDataset'\n"
            "data = dict(test=dict(type='KITTIDataset', min_depth=0.001, max_depth=80))\n"
            "model = dict(\n    type='DepthEncoderDecoder',\n    backbone=dict(\n"
            "        type='DinoVisionTransformer',\n        final_norm=False,\n        output_cls_token=True,\n"
            f"        out_indices={blocks}),\n    decode_head=dict(\n        type='BNHead',\n"
            "        min_depth=0.001,\n        max_depth=80,\n        classify=True,\n        n_bins=256,\n"
            "        bins_strategy='UD',\n        norm_strategy='linear',\n        upsample=4,\n"
            f"        in_channels={[EMBED] * 4},\n        channels={EMBED * 8},\n        align_corners=False),\n"
            "    test_cfg=dict(mode='whole'))\n")


def make_dinov2_heads(dinov2, reference):
    backbone = build_backbone(dinov2)
    g = torch.Generator().manual_seed(2)
    for size, (b, h, w) in SIZES.items():
        reference[f"{size}.pixels"] = torch.randn(b, 3, h, w, generator=g)
    reference["photo.pixels"] = photo_pixels(*PHOTO_SIZE)
    for name, (head, blocks, dataset) in build_heads(dinov2).items():
        model = depther(backbone, head, blocks)
        if name.endswith("dpt"):
            shift_final_bias_(lambda x: model.encode_decode(x, None), head.conv_depth.head[4], reference["square.pixels"])
        write_head_files(name, head, blocks, dataset)
        for size in SIZES:
            x = reference[f"{size}.pixels"]
            reference[f"{name}.{size}.head"] = model.decode_head(model.extract_feat(x), None)
            reference[f"{name}.{size}.depth"] = model.encode_decode(x, None, rescale=True)
        depth = model.encode_decode(reference["photo.pixels"], None, rescale=True, size=(400, 600))
        reference[f"photo.{name}.depth"] = depth[:, :, ::10, ::10]


def make_depth_anything(reference):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor, Dinov2Config

    g = torch.Generator().manual_seed(3)
    for folder, kind, max_depth in [("depth_anything", "relative", 1), ("depth_anything_metric", "metric", 20)]:
        backbone = Dinov2Config(hidden_size=EMBED, num_hidden_layers=4, num_attention_heads=HEADS, mlp_ratio=4,
                                image_size=IMG, patch_size=14, out_indices=[1, 2, 3, 4], apply_layernorm=True,
                                reshape_hidden_states=False)
        config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=EMBED,
                                     neck_hidden_sizes=[4, 8, 16, 16], fusion_hidden_size=16, head_hidden_size=8,
                                     depth_estimation_type=kind, max_depth=max_depth)
        model = DepthAnythingForDepthEstimation(config).eval()
        randomize_(model.backbone, g)
        randomize_(model.neck, g, scale=1.6)
        randomize_(model.head, g, scale=1.6)
        if kind == "relative":
            shift_final_bias_(lambda x: model(pixel_values=x), model.head.conv3, reference["square.pixels"])
        else:
            # Pre-sigmoid values of a few units: the sigmoid is neither saturated nor a step.
            captured = []
            handle = model.head.conv3.register_forward_hook(lambda _m, _i, out: captured.append(out))
            model(pixel_values=reference["square.pixels"])
            handle.remove()
            with torch.no_grad():
                scale = 3 / captured[0].std()
                model.head.conv3.weight *= scale
                model.head.conv3.bias.copy_((model.head.conv3.bias - captured[0].mean()) * scale)
        model.save_pretrained(OUT / folder)
        processor = DPTImageProcessor(do_resize=True, size={"height": 518, "width": 518}, keep_aspect_ratio=True,
                                      ensure_multiple_of=14, resample=Image.BICUBIC, do_rescale=True,
                                      rescale_factor=1 / 255, do_normalize=True, image_mean=MEAN.tolist(),
                                      image_std=STD.tolist(), do_pad=False)
        processor.save_pretrained(OUT / folder)
        for size in SIZES:
            x = reference[f"{size}.pixels"]
            out = model(pixel_values=x).predicted_depth
            reference[f"{folder}.{size}.depth"] = out
            post = processor.post_process_depth_estimation(
                SimpleNamespace(predicted_depth=out), target_sizes=[(50, 75)] * out.shape[0])
            reference[f"{folder}.{size}.post_processed"] = torch.stack([p["predicted_depth"] for p in post])
        # The photo at Depth Anything's processor size, computed with HF's own size rule.
        from transformers.models.dpt.image_processing_dpt import get_resize_output_image_size

        size = get_resize_output_image_size(torch.zeros(3, 400, 600), (518, 518), True, 14)
        out = model(pixel_values=photo_pixels(size.height, size.width)).predicted_depth
        post = F.interpolate(out[:, None], size=(400, 600), mode="bicubic", align_corners=False)
        reference[f"photo.{folder}.depth"] = post[:, :, ::10, ::10]

    from transformers.models.dpt.image_processing_dpt import get_resize_output_image_size

    sizes = []
    for width, height in [(600, 400), (512, 512), (451, 300), (640, 427), (200, 100), (100, 300), (1000, 800),
                          (518, 518), (35, 21), (3000, 4000)]:
        s = get_resize_output_image_size(torch.zeros(3, height, width), (518, 518), True, 14)
        sizes.append({"width": width, "height": height, "resized_width": s.width, "resized_height": s.height})
    (OUT / "processor.json").write_text(json.dumps(sizes, indent=1) + "\n")


def toolbox_metrics(gt, pred, min_depth, max_depth, crop):
    """Per-image metrics as the Monocular Depth Estimation Toolbox computes them (float64)."""
    valid = (gt > min_depth) & (gt < max_depth)
    h, w = gt.shape
    if crop != "none":
        mask = np.zeros_like(valid)
        if crop == "garg":
            mask[int(0.40810811 * h):int(0.99189189 * h), int(0.03594771 * w):int(0.96405229 * w)] = True
        elif crop == "kitti-eigen":
            mask[int(0.3324324 * h):int(0.91351351 * h), int(0.0359477 * w):int(0.96405229 * w)] = True
        else:
            mask[45:471, 41:601] = True
        valid &= mask
    g, p = gt[valid], np.clip(pred[valid], min_depth, max_depth)
    if g.size == 0:
        return None
    thresh = np.maximum(g / p, p / g)
    err = np.log(p) - np.log(g)
    silog = np.sqrt(np.mean(err ** 2) - np.mean(err) ** 2) * 100
    return {
        "a1": (thresh < 1.25).mean(), "a2": (thresh < 1.25 ** 2).mean(), "a3": (thresh < 1.25 ** 3).mean(),
        "abs_rel": np.mean(np.abs(g - p) / g), "sq_rel": np.mean((g - p) ** 2 / g),
        "rmse": np.sqrt(np.mean((g - p) ** 2)), "rmse_log": np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2)),
        "log_10": np.mean(np.abs(np.log10(g) - np.log10(p))), "silog": 0.0 if np.isnan(silog) else silog,
        "pixels": int(g.size),
    }


def align(gt, pred, min_depth, max_depth, mode):
    """Median scaling (monodepth2) or least-squares scale and shift in disparity (MiDaS)."""
    valid = (gt > min_depth) & (gt < max_depth)
    if mode == "median":
        return pred * (np.median(gt[valid]) / np.median(pred[valid]))
    target = 1.0 / gt[valid]
    a = np.stack([pred[valid], np.ones_like(target)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(a, target, rcond=None)
    disparity = np.maximum(scale * pred + shift, 1.0 / max_depth)
    return 1.0 / disparity


def make_eval():
    folder = OUT / "eval"
    for sub in ["images", "ground_truth", "predictions"]:
        (folder / sub).mkdir(parents=True)
    rng = np.random.default_rng(4)
    cases = []
    for i, (h, w) in enumerate([(30, 40), (24, 36), (32, 32)]):
        yy, xx = np.mgrid[0:h, 0:w]
        gt_mm = (1500 + 6000 * (yy / h) + 800 * np.sin(xx / 5.0) + rng.integers(0, 300, (h, w))).astype(np.uint16)
        gt_mm[rng.random((h, w)) < 0.1] = 0          # missing measurements
        gt_mm[0, :5] = 12000                         # beyond max_depth (10 m)
        Image.fromarray(gt_mm).save(folder / "ground_truth" / f"view{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / "images" / f"view{i}.png")
        # As the toolbox reads ground truth: float32 millimetres / 1000 in float32.
        gt = (gt_mm.astype(np.float32) / np.float32(1000)).astype(np.float64)
        pred = (gt_mm.astype(np.float32) / 1000 * rng.uniform(0.7, 1.3, (h, w)).astype(np.float32) + 0.2).astype(np.float32)
        pred[gt_mm == 0] = rng.uniform(0.5, 9, int((gt_mm == 0).sum())).astype(np.float32)
        np.save(folder / "predictions" / f"view{i}.depth.npy", pred)
        cases.append((f"view{i}", gt, pred.astype(np.float64)))

    results = {}
    for key, crop, mode in [("plain", "none", "none"), ("median", "none", "median"), ("disparity", "none", "scale-shift")]:
        per_image = {}
        for name, gt, pred in cases:
            p = pred if mode == "none" else align(gt, pred, 0.001, 10.0, mode)
            per_image[name] = toolbox_metrics(gt, p, 0.001, 10.0, crop)
        keys = [k for k in next(iter(per_image.values())) if k != "pixels"]
        mean = {k: float(np.nanmean([m[k] for m in per_image.values()])) for k in keys}
        results[key] = {"align": mode, "crop": crop, "min_depth": 0.001, "max_depth": 10.0,
                        "images": {n: {k: float(v) for k, v in m.items()} for n, m in per_image.items()}, "mean": mean}

    # The crops on full-size maps given by a formula the Swift test evaluates identically.
    def formula(h, w):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        gt = 0.5 + ((xx * 7 + yy * 3) % 500) / 50.0
        pred = gt * (0.8 + 0.4 * ((xx * 13 + yy * 29) % 101) / 100.0)
        # Depth maps are float32 on both sides.
        return gt.astype(np.float32).astype(np.float64), pred.astype(np.float32).astype(np.float64)

    for crop, (h, w), max_depth in [("nyu-eigen", (480, 640), 10.0), ("garg", (352, 1216), 80.0), ("kitti-eigen", (375, 1242), 80.0)]:
        gt, pred = formula(h, w)
        m = toolbox_metrics(gt, pred, 0.001, max_depth, crop)
        results[f"crop.{crop}"] = {"height": h, "width": w, "max_depth": max_depth,
                                   "metrics": {k: float(v) for k, v in m.items()}}
    (folder / "metrics.json").write_text(json.dumps(results, indent=1) + "\n")


def make_png():
    folder = OUT / "png"
    folder.mkdir()
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:37, 0:53]
    deep = ((yy * 1200 + xx * 700) % 65536).astype(np.uint16)
    deep[::7, ::5] = rng.integers(0, 65536, deep[::7, ::5].shape).astype(np.uint16)
    Image.fromarray(deep).save(folder / "gray16.png")
    np.save(folder / "gray16.npy", deep.astype(np.float32))
    grey = ((yy * 3 + xx * 5) % 256).astype(np.uint8)
    Image.fromarray(grey).save(folder / "gray8.png")
    np.save(folder / "gray8.npy", grey.astype(np.float32))
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(folder / "rgb8.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dinov2", required=True, type=Path, help="checkout of facebookresearch/dinov2")
    args = parser.parse_args()
    sys.path.insert(0, str(args.dinov2.resolve()))
    import dinov2

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    (OUT / ".keep").touch()  # the folder's placeholder in git
    torch.manual_seed(0)
    reference = OrderedDict()
    make_dinov2_heads(dinov2, reference)
    # The photo's pixels are not stored: the Swift side prepares the photo itself.
    save_file({k: v.detach().float().contiguous() for k, v in reference.items() if k != "photo.pixels"},
              str(OUT / "heads.safetensors"))
    da = OrderedDict((k, v) for k, v in reference.items() if k.endswith(".pixels"))
    make_depth_anything(da)
    save_file({k: v.detach().float().contiguous() for k, v in da.items() if not k.endswith(".pixels")},
              str(OUT / "depth_anything.safetensors"))
    make_eval()
    make_png()
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    with torch.no_grad():
        main()
