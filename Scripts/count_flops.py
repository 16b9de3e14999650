#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 transformers==5.24.0
#   (the versions the counts were made with; the counter's formulas and HF's attention
#    dispatch may differ in others)
"""Count the FLOPs of the fixture models' forward passes with PyTorch's own FLOP counter.

Run from the repository root:

    python Scripts/count_flops.py

It writes `Tests/DinoModelTests/Fixtures/flop_counts.json`, the independent count that
`FLOPsTests` compares `VisionTransformer.forwardFLOPs` with: for every fixture folder with a
`config.json` (Hugging Face, Meta and timm names alike: the architecture is the config's),
the backbone model of its `model_type` (`Dinov2Model`, `Dinov2WithRegistersModel` or
`DINOv3ViTModel`, without a classification head, as `forwardFLOPs` counts) runs once on zeros of the fixture's input shape
under `torch.utils.flop_counter.FlopCounterMode`. Weights do not change the count.

What the counter counts: matrix products (`aten.mm`, `aten.addmm`, `aten.bmm`: 2 per
multiply-add, the bias of addmm not counted), the patch embedding's convolution (2 per
multiply-add, bias not counted) and scaled-dot-product attention (its two products, q kᵀ and
p v, as two bmm). What it does not count: LayerNorm, softmax, GELU / SiLU, residual and
LayerScale additions, the position-embedding interpolation, DINOv3's rotary embedding, the
concatenation of tokens.
`forwardFLOPs` counts the same GEMMs and leaves out the same elementwise work, so the two
totals must agree exactly; the per-operator counts are kept for the test's messages.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "Tests" / "DinoModelTests" / "Fixtures"
OUTPUT = FIXTURES / "flop_counts.json"


def backbone_model(config_path: Path) -> torch.nn.Module:
    from transformers import AutoConfig, DINOv3ViTModel, Dinov2Model, Dinov2WithRegistersModel

    config = AutoConfig.from_pretrained(config_path.parent)
    # The attention HF runs by default on the CPU: PyTorch's fused kernel, counted by its own formula.
    config._attn_implementation = "sdpa"
    model_class = {"dinov2_with_registers": Dinov2WithRegistersModel, "dinov3_vit": DINOv3ViTModel}.get(config.model_type, Dinov2Model)
    return model_class(config).eval()


def count(folder: Path) -> dict:
    reference = json.loads((folder / "reference.json").read_text())
    batch, channels, height, width = reference["input_shape"]
    model = backbone_model(folder / "config.json")
    pixels = torch.zeros(batch, channels, height, width)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(pixel_values=pixels)
    by_operator = {str(op): int(n) for op, n in counter.get_flop_counts()["Global"].items()}
    return {
        "fixture": folder.name,
        "batch": batch,
        "height": height,
        "width": width,
        "total": int(counter.get_total_flops()),
        "by_operator": dict(sorted(by_operator.items())),
    }


def main() -> None:
    torch.manual_seed(0)
    folders = sorted(p.parent for p in FIXTURES.glob("*/config.json") if (p.parent / "reference.json").is_file())
    document = {
        "generated_by": "Scripts/count_flops.py",
        "counter": "torch.utils.flop_counter.FlopCounterMode",
        "versions": {name: metadata.version(name) for name in ("torch", "transformers")},
        "counts": [count(folder) for folder in folders],
    }
    OUTPUT.write_text(json.dumps(document, indent=2) + "\n")
    for entry in document["counts"]:
        print(f"{entry['fixture']:<24} {entry['batch']}x{entry['height']}x{entry['width']}: {entry['total']:>12} "
              f"{entry['by_operator']}")  # fmt: skip
    print(f"wrote {OUTPUT.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
