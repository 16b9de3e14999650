#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 transformers==5.24.0 safetensors==0.8.0 numpy==2.4.6 scipy==1.17.1 pillow==13.0.0
# requires: facebookresearch/dinov2 at commit b8931f7bf91576930313be2c6d6af376033b35f0
#   (the depth heads' reference, as for Scripts/make_depth_fixtures.py; pass the checkout with --dinov2)
"""DINOv3 reference fixtures for the three head families (segmentation, depth, object discovery).

Run from the repository root:

    python Scripts/make_dinov3_head_fixtures.py --dinov2 /path/to/dinov2-checkout

The heads are checked on a DINOv3 backbone against the same reference code as on DINOv2: the
reference functions are imported from `make_segmentation_fixtures.py`, `make_depth_fixtures.py`
and `make_discovery_fixtures.py` (not copied), only the backbone side differs (HF
`DINOv3ViTModel`, patch 16, RoPE, `norm` instead of `layernorm`). Those scripts' outputs are not
touched: every file written here is new and named `dinov3_*` (float32, CPU, fixed seeds; ~1 MB).

* `Tests/DinoSegmentationTests/Fixtures/dinov3_model/`: a random-weight `DINOv3ViTModel` (hidden
  32, 4 blocks, 2 heads, patch 16, 4 registers) written by `save_pretrained`; 4 blocks so the "ms"
  head exists. The discovery tests read the same folder.
* `Tests/DinoSegmentationTests/Fixtures/dinov3_head_<variant>_<H>x<W>.safetensors`: as the DINOv2
  `head_*` files (weights under the released names, `pixel_values`, `features.<i>` = final-normed
  block outputs with CLS and registers dropped, `logits_grid`, `logits`).
* `Tests/DinoDepthTests/Fixtures/dinov3_model/`: a random `DINOv3ViTModel` of 12 blocks (hidden 16,
  2 heads, patch 16, 4 registers), so that the lin4 / DPT heads' default blocks [2, 5, 8, 11]
  come from the configuration's depth; `dinov3_heads/dinov3_<head>_head.safetensors` (dinov2's
  `BNHead` / `DPTHead` built by `make_depth_fixtures.build_heads`, no `out_indices`: the blocks
  are the released ones for the backbone's depth) and `dinov3_heads.safetensors` (`<size>.pixels`,
  `<head>.<size>.head`, `<head>.<size>.depth`).
* `Tests/DinoDiscoveryTests/Fixtures/dinov3_features.safetensors` + `dinov3_reference.json`: LOST
  on the last block's keys of the segmentation folder's DINOv3 model for photos prepared as LOST
  does (padding to multiples of 16), in the layout of `reference.json`.

LOST's keys on DINOv3: LOST (valeoai/LOST) hooks the last block's `qkv` linear and reads its key
part, i.e. the keys exactly as that block's attention uses them (in DINO / DINOv2 nothing happens
between the projection and the attention). In DINOv3 the attention rotates the patch tokens' keys
by RoPE after the projection (HF `DINOv3ViTAttention`: `k_proj`, then `apply_rotary_pos_emb`), so
the keys the attention uses are the rotated ones; the reference uses those, as the library hands
them to heads (`AttentionProjections` are taken after the rotation). They are captured by wrapping
HF's `apply_rotary_pos_emb` and checked against the eager attention map HF returns. The result of
LOST on the unrotated `k_proj` output is recorded too (`unrotated` in each case), for information.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers.models.dinov3_vit.modeling_dinov3_vit as hf_dinov3  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.numpy import save_file as save_numpy  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import DINOv3ViTConfig, DINOv3ViTModel  # noqa: E402

import make_depth_fixtures as depth_ref  # noqa: E402
import make_discovery_fixtures as discovery_ref  # noqa: E402
import make_segmentation_fixtures as seg_ref  # noqa: E402
from make_fixtures import randomize_, save_hf  # noqa: E402

ROOT = SCRIPTS.parent
SEG = ROOT / "Tests" / "DinoSegmentationTests" / "Fixtures"
DEPTH = ROOT / "Tests" / "DinoDepthTests" / "Fixtures"
DISCOVERY = ROOT / "Tests" / "DinoDiscoveryTests" / "Fixtures"
PATCH = 16
MAX_TOTAL_BYTES = 3_000_000

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def build(seed: int, **overrides) -> DINOv3ViTModel:
    config = DINOv3ViTConfig(**{**dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=2,
                                        patch_size=PATCH, num_register_tokens=4, rope_theta=100.0, layer_norm_eps=1e-5),
                                **overrides})
    config._attn_implementation = "eager"  # the attention maps (the key check) come from the eager path only
    model = DINOv3ViTModel(config).eval()
    randomize_(model, seed)
    return model


def hidden_states(model, pixels: torch.Tensor) -> list[torch.Tensor]:
    """Block k's output is hidden_states[k + 1] (checked: the last one, normed, is last_hidden_state)."""
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.equal(model.norm(out.hidden_states[-1]), out.last_hidden_state)
    return list(out.hidden_states)


def patch_map(model, tokens: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Patch tokens (CLS and registers dropped) as [B, C, h, w]."""
    prefix = 1 + model.config.num_register_tokens
    b, _, hh, ww = pixels.shape
    return tokens[:, prefix:, :].reshape(b, hh // PATCH, ww // PATCH, -1).permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------- segmentation


def segmentation(model) -> dict:
    """dinov2 `get_intermediate_layers(blocks, reshape=True, norm=True)` on the DINOv3 model (its
    final norm is `model.norm`), then `make_segmentation_fixtures.head_forward` (BNHead)."""
    classes, report = 5, {}
    for variant, blocks, (batch, h, w) in [("linear", [3], (2, 48, 80)), ("ms", [0, 1, 2, 3], (1, 64, 48))]:
        name = f"dinov3_head_{variant}_{h}x{w}"
        weights = seg_ref.random_head(f"dinov3/head/{variant}", 32 * len(blocks), classes)
        pixels = torch.randn(batch, 3, h, w, generator=seg_ref.generator(name))
        states = hidden_states(model, pixels)
        with torch.no_grad():
            maps = [patch_map(model, model.norm(states[k + 1]), pixels) for k in blocks]
            grid = seg_ref.head_forward(weights, maps)
            logits = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        tensors = dict(weights)
        tensors["pixel_values"] = pixels
        tensors.update({f"features.{i}": m for i, m in enumerate(maps)})
        tensors["logits_grid"] = grid
        tensors["logits"] = logits
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(SEG / f"{name}.safetensors"),
                  metadata={"blocks": json.dumps(blocks), "variant": variant, "backbone": "dinov3_model"})
        report[name] = float(logits.abs().max())
    return report


# --------------------------------------------------------------------------- depth

DEPTH_SIZES = {"square": (2, 96, 96), "wide": (1, 80, 128)}  # 6 x 6 and 5 x 8 patches of 16


class IntermediateLayers(torch.nn.Module):
    """dinov2's `get_intermediate_layers(blocks, reshape=True, return_class_token=True,
    norm=False)` on HF hidden states: (patch map [B, C, h, w], class token [B, C]) per block."""

    def __init__(self, model, blocks):
        super().__init__()
        self.model, self.blocks = model, blocks

    def forward(self, pixels):
        states = hidden_states(self.model, pixels)
        return [(patch_map(self.model, states[k + 1], pixels), states[k + 1][:, 0]) for k in self.blocks]


def depth(dinov2) -> dict:
    from dinov2.hub.depth import DepthEncoderDecoder

    model = build(7411, hidden_size=16, intermediate_size=64, num_hidden_layers=12, num_attention_heads=2)
    directory = DEPTH / "dinov3_model"
    save_hf(model, directory)
    (DEPTH / "dinov3_heads").mkdir()
    g = torch.Generator().manual_seed(7412)
    reference = {f"{size}.pixels": torch.randn(b, 3, h, w, generator=g) for size, (b, h, w) in DEPTH_SIZES.items()}
    report = {}
    # The heads as make_depth_fixtures builds them (dinov2's BNHead / DPTHead, hidden 16), on this backbone.
    for name, (head, blocks, dataset) in depth_ref.build_heads(dinov2).items():
        # The released blocks for a 12-block backbone: the Swift side must derive them from the config.
        assert blocks == ([11] if name == "nyu_linear" else [2, 5, 8, 11]), (name, blocks)
        encoder_decoder = DepthEncoderDecoder(backbone=IntermediateLayers(model, blocks), decode_head=head).eval()
        if name.endswith("dpt"):
            depth_ref.shift_final_bias_(lambda x: encoder_decoder.encode_decode(x, None), head.conv_depth.head[4],
                                        reference["square.pixels"])
        state = {f"decode_head.{k}": v.detach().clone().contiguous() for k, v in head.state_dict().items()}
        # No out_indices: the blocks are the released ones for the backbone's depth.
        save_file(state, str(DEPTH / "dinov3_heads" / f"dinov3_{name}_head.safetensors"),
                  metadata={"min_depth": repr(head.min_depth), "max_depth": repr(float(head.max_depth)), "dataset": dataset})
        for size in DEPTH_SIZES:
            x = reference[f"{size}.pixels"]
            reference[f"{name}.{size}.head"] = encoder_decoder.decode_head(encoder_decoder.extract_feat(x), None)
            out = encoder_decoder.encode_decode(x, None, rescale=True)
            reference[f"{name}.{size}.depth"] = out
            lo, hi = head.min_depth, float(head.max_depth)
            inside = ((out > lo) & (out < hi)).float().mean().item()
            report[f"{name}.{size}"] = {"max_abs_depth": float(out.abs().max()), "fraction_inside_range": inside}
    save_file({k: v.detach().float().contiguous() for k, v in reference.items()}, str(DEPTH / "dinov3_heads.safetensors"))
    return report


# --------------------------------------------------------------------------- discovery

PHOTO_CASES = [("chelsea", "chelsea.png"), ("coffee", "coffee.png"), ("astronaut", "astronaut.png"), ("rocket", "rocket.jpg")]


def last_block_keys(model, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """The last block's keys of the patch tokens, [h * w, C]: `rotated` as the attention uses them
    (after `apply_rotary_pos_emb`) and `unrotated` (the `k_proj` output)."""
    calls = []
    original = hf_dinov3.apply_rotary_pos_emb

    def spy(q, k, cos, sin, **kwargs):
        rq, rk = original(q, k, cos, sin, **kwargs)
        calls.append((k, rq, rk))
        return rq, rk

    hf_dinov3.apply_rotary_pos_emb = spy
    try:
        with torch.no_grad():
            out = model(pixel_values=torch.from_numpy(pixels)[None], output_attentions=True)
    finally:
        hf_dinov3.apply_rotary_pos_emb = original
    assert len(calls) == model.config.num_hidden_layers
    k, rq, rk = calls[-1]  # [1, heads, T, d]
    # What was captured is what the last block's attention used.
    attention = torch.softmax(rq @ rk.transpose(-1, -2) * rq.shape[-1] ** -0.5, dim=-1)
    assert torch.allclose(attention, out.attentions[-1], atol=1e-6), float((attention - out.attentions[-1]).abs().max())
    prefix = 1 + model.config.num_register_tokens

    def flat(t):
        return t[0].transpose(0, 1).reshape(t.shape[2], -1)[prefix:].numpy().astype(np.float32)

    return {"rotated": flat(rk), "unrotated": flat(k)}


def discovery(model) -> dict:
    rng = np.random.default_rng(7421)
    tensors, cases, dropped = {}, [], []
    checkpoint = "Tests/DinoSegmentationTests/Fixtures/dinov3_model"  # relative to the repository
    for name, photo in PHOTO_CASES:
        image = Image.open(discovery_ref.PHOTOS / photo)
        pixels = discovery_ref.prepare(image, PATCH)
        grid = (pixels.shape[1] // PATCH, pixels.shape[2] // PATCH)
        keys = last_block_keys(model, pixels)
        f = keys["rotated"]
        tensors[f"{name}_dinov3.k"] = f
        result = discovery_ref.lost(f, grid, PATCH, image.size)
        ok = discovery_ref.robust(lambda x, **kw: discovery_ref.lost(x, grid, PATCH, image.size, **kw), f, result, rng)
        plain = discovery_ref.lost(keys["unrotated"], grid, PATCH, image.size)
        unrotated = {"seed": [plain["seed"] // grid[1], plain["seed"] % grid[1]], "box": plain["box"]}
        record = discovery_ref.case_record(
            f"{name}_dinov3@lost.k", checkpoint, photo, "k", "lost", {"k": 100, "bias": 0.0}, result, grid, image.size, ok,
            {"patch_size": PATCH, "margins": discovery_ref.lost_margins(result), "features": f"{name}_dinov3.k",
             "keys": "rotated by RoPE (as the attention uses them)", "unrotated": unrotated})
        (cases if ok else dropped).append(record)
    save_numpy(tensors, str(DISCOVERY / "dinov3_features.safetensors"))
    os.chmod(DISCOVERY / "dinov3_features.safetensors", 0o644)
    document = {
        "generator": "Scripts/make_dinov3_head_fixtures.py",
        "perturbation": discovery_ref.PERTURBATION, "trials": discovery_ref.TRIALS,
        "cases": cases,
        "dropped": [{"name": c["name"], "margins": c["margins"]} for c in dropped],
    }
    (DISCOVERY / "dinov3_reference.json").write_text(json.dumps(document, indent=1) + "\n")
    return {c["name"]: {"seed": c["seed"], "box": c["box"], "robust": c["robust"], "unrotated": c["unrotated"]}
            for c in cases + dropped}


def written() -> list[Path]:
    return ([p for p in SEG.glob("dinov3_*")] + [p for p in DEPTH.glob("dinov3_*")] + [p for p in DISCOVERY.glob("dinov3_*")])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dinov2", required=True, type=Path, help="checkout of facebookresearch/dinov2")
    args = parser.parse_args()
    sys.path.insert(0, str(args.dinov2.resolve()))
    import dinov2

    for p in written():  # only this script's own files
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    torch.manual_seed(0)
    model = build(7401)
    save_hf(model, SEG / "dinov3_model")
    report = {"segmentation": segmentation(model), "depth": depth(dinov2), "discovery": discovery(model)}
    print(json.dumps(report, indent=1))
    total = 0
    for p in written():
        total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    print(f"fixtures: {total} bytes")
    if total > MAX_TOTAL_BYTES:
        print(f"error: fixtures exceed {MAX_TOTAL_BYTES} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with torch.no_grad():
        raise SystemExit(main())
