#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 transformers==5.24.0 safetensors==0.8.0
#   (the versions installed when the fixtures were generated)
"""Reference outputs of HF transformers' forward with `bool_masked_pos` (masked patches replaced
by the mask token) for three fixture checkpoints: DINOv2 with registers, plain DINOv2 (whose
embeddings blend rather than select) and DINOv3.

Run from the repository root after Scripts/make_fixtures.py and Scripts/make_dinov3_fixtures.py:

    python Scripts/make_mask_fixtures.py

It writes `Tests/DinoModelTests/Fixtures/masked/<case>.safetensors`: the case's own input
`pixel_values`, the mask `bool_masked_pos` `[1, h * w]` (as float32 0 / 1, and as a bool
`.npy` beside it for the command-line test) and the outputs `last_hidden_state`,
`pooler_output`, `hidden_states.<k>`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel

FIXTURES = Path(__file__).resolve().parent.parent / "Tests" / "DinoModelTests" / "Fixtures"
CASES = ["reg4_downsample", "reg0_dinov2_downsample", "dinov3_reg4"]


def main() -> None:
    out = FIXTURES / "masked"
    out.mkdir(exist_ok=True)
    for case in CASES:
        folder = FIXTURES / case
        pixels = load_file(str(folder / "reference.safetensors"))["pixel_values"]
        meta = json.loads((folder / "reference.json").read_text())
        model = AutoModel.from_pretrained(folder).eval()
        patch = model.config.patch_size
        grid = (pixels.shape[2] // patch) * (pixels.shape[3] // patch)
        generator = torch.Generator().manual_seed(len(case))
        mask = torch.rand(1, grid, generator=generator) < 0.4
        with torch.no_grad():
            output = model(pixel_values=pixels, bool_masked_pos=mask, output_hidden_states=True)
        tensors = {
            "pixel_values": pixels, "bool_masked_pos": mask.to(torch.float32),
            "last_hidden_state": output.last_hidden_state, "pooler_output": output.pooler_output,
        }
        tensors.update({f"hidden_states.{k}": h for k, h in enumerate(output.hidden_states)})
        save_file({k: v.contiguous().clone() for k, v in tensors.items()}, str(out / f"{case}.safetensors"), metadata={"format": "pt"})
        np.save(out / f"{case}.mask.npy", mask.numpy())
        print(f"{case} ({meta['model_class'] if 'model_class' in meta else model.__class__.__name__}): {int(mask.sum())} of {grid} patches masked")


if __name__ == "__main__":
    main()
