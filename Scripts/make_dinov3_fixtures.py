#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 transformers==5.24.0 safetensors==0.8.0 timm==1.0.31 numpy==2.4.6 torchvision==0.29.2 Pillow==13.0.0
#   (the versions installed when the fixtures were generated)
"""Generate the DINOv3 ViT reference fixtures for the DinoModel Swift tests.

Run from the repository root:

    python Scripts/make_dinov3_fixtures.py

It (re)writes `Tests/DinoModelTests/Fixtures/dinov3_*` in the layout of
`Scripts/make_fixtures.py` (whose helpers it uses): an HF hub folder written by
`save_pretrained` (`config.json`, `model.safetensors`), `reference.safetensors` with the
input `pixel_values` and the outputs of HF transformers' `DINOv3ViTModel`
(`last_hidden_state`, `pooler_output`, `hidden_states.<k>`, `attentions.<i>`) and of
`DINOv3ViTBackbone` on the same weights (`feature_maps.<stage>`), and `reference.json`.

`Fixtures/dinov3_rope/rope.safetensors` holds the reference's RoPE cos / sin tables
(`DINOv3ViTRopePositionEmbedding`) for several patch grids and head sizes, and
`Tests/DinoImageTests/Fixtures/dinov3/` the pixel values of `DINOv3ViTImageProcessor`
(torchvision backend, torchvision 0.29.2) on example photos for three settings.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import DINOv3ViTBackbone, DINOv3ViTConfig, DINOv3ViTModel
from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTRopePositionEmbedding

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import clean_ref, fresh_dir, randomize_, save_hf, write_reference  # noqa: E402


@dataclass
class Case:
    name: str
    seed: int
    height: int
    width: int
    config: dict = field(default_factory=dict)
    dtype: torch.dtype = torch.float32


BASE = dict(hidden_size=32, intermediate_size=80, num_hidden_layers=2, num_attention_heads=2, patch_size=16,
            num_register_tokens=4, rope_theta=100.0, layer_norm_eps=1e-5)

CASES = [
    # ViT-S-like: 4 registers, key without bias, GELU MLP, at 224 and at a non-square size.
    Case("dinov3_reg4", 7301, 224, 224, dict(out_features=["stage1", "stage2"])),
    # SwiGLU (use_gated_mlp, silu), no query / value bias, the last stage's norm without apply_layernorm.
    Case("dinov3_swiglu_nonsquare", 7302, 208, 320,
         dict(use_gated_mlp=True, hidden_act="silu", query_bias=False, value_bias=False, intermediate_size=64,
              apply_layernorm=False, out_features=["stem", "stage1", "stage2"])),
    # No registers, no MLP / projection biases, 3 heads of 16 channels.
    Case("dinov3_reg0", 7303, 160, 192,
         dict(num_register_tokens=0, hidden_size=48, num_attention_heads=3, mlp_bias=False, proj_bias=False,
              out_indices=[2])),
    # Half-precision file of a reg4 model: the reference runs on the rounded weights.
    Case("dinov3_f16", 7304, 224, 224, dict(out_features=["stage2"]), dtype=torch.float16),
]


def build(case: Case) -> tuple[DINOv3ViTModel, DINOv3ViTConfig]:
    config = DINOv3ViTConfig(**{**BASE, **case.config})
    config._attn_implementation = "eager"  # the attention maps are returned by the eager path only
    model = DINOv3ViTModel(config).eval()
    randomize_(model, case.seed)
    if case.dtype != torch.float32:
        # Round every parameter to the file's precision; the reference is computed in float32 on the rounded values.
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(case.dtype).to(torch.float32))
    return model, config


def run_case(case: Case) -> None:
    model, config = build(case)
    gen = torch.Generator().manual_seed(case.seed + 1)
    pixels = torch.randn(1, 3, case.height, case.width, generator=gen)
    with torch.no_grad():
        out = model(pixels, output_hidden_states=True, output_attentions=True)
        backbone = DINOv3ViTBackbone(config).eval()
        missing, unexpected = backbone.load_state_dict(model.state_dict(), strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        features = backbone(pixels)
    ref = {"pixel_values": pixels, "last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}
    ref.update({f"hidden_states.{k}": h for k, h in enumerate(out.hidden_states)})
    ref.update({f"attentions.{i}": a for i, a in enumerate(out.attentions)})
    ref.update({f"feature_maps.{s}": f for s, f in zip(backbone.out_features, features.feature_maps)})
    directory = fresh_dir(case.name)
    if case.dtype != torch.float32:
        model = model.to(case.dtype)
    save_hf(model, directory)
    # The backbone's stage selection travels in config.json, as HF writes it for a Backbone config.
    saved = json.loads((directory / "config.json").read_text())
    saved["out_features"], saved["out_indices"] = backbone.out_features, backbone.out_indices
    (directory / "config.json").write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    meta = {
        "case": case.name, "model_class": "DINOv3ViTModel", "backbone_class": "DINOv3ViTBackbone",
        "model_type": "dinov3_vit", "naming": "hf", "dtype": str(case.dtype).removeprefix("torch."),
        "input_shape": list(pixels.shape), "seed": case.seed, "out_features": list(backbone.out_features),
        "apply_layernorm": config.apply_layernorm, "num_register_tokens": config.num_register_tokens,
    }
    write_reference(directory, clean_ref(ref), meta)
    print(f"{case.name}: {len(ref)} tensors, hidden_states {len(out.hidden_states)}")


def rope_fixture() -> None:
    tables = {}
    for head_dim in (16, 32):
        config = DINOv3ViTConfig(hidden_size=head_dim * 2, num_attention_heads=2, patch_size=16)
        rope = DINOv3ViTRopePositionEmbedding(config).eval()
        for rows, columns in [(1, 1), (1, 7), (2, 3), (5, 5), (13, 20), (14, 14), (16, 16), (37, 23)]:
            cos, sin = rope(torch.zeros(1, 3, rows * 16, columns * 16))
            tables[f"cos.{head_dim}.{rows}x{columns}"] = cos.contiguous()
            tables[f"sin.{head_dim}.{rows}x{columns}"] = sin.contiguous()
    directory = fresh_dir("dinov3_rope")
    save_file(tables, str(directory / "rope.safetensors"), metadata={"format": "pt", "rope_theta": "100.0"})
    print(f"dinov3_rope: {len(tables)} tables")


PHOTOS = Path(__file__).resolve().parent.parent / "Examples" / "images"
IMAGE_FIXTURES = Path(__file__).resolve().parent.parent / "Tests" / "DinoImageTests" / "Fixtures" / "dinov3"


def processor_fixture() -> None:
    """HF DINOv3ViTImageProcessor's pixel_values for the example photos: the released settings
    (224 x 224, ImageNet statistics), the SAT-493M statistics at a non-square size, and upsampling."""
    from PIL import Image
    from transformers import DINOv3ViTImageProcessor

    import numpy as np

    variants = {
        "lvd1689m": {},
        "sat493m_256x320": {"size": {"height": 256, "width": 320}, "image_mean": [0.430, 0.411, 0.296], "image_std": [0.213, 0.156, 0.143]},
        "upsample_336x464": {"size": {"height": 336, "width": 464}},
    }
    # Upsampling is checked on chelsea (451 x 300) alone, to keep the fixture small.
    photos = {"upsample_336x464": ("chelsea.png",)}
    if IMAGE_FIXTURES.exists():
        for old in IMAGE_FIXTURES.iterdir():
            old.unlink()
    IMAGE_FIXTURES.mkdir(parents=True, exist_ok=True)
    for variant, settings in variants.items():
        processor = DINOv3ViTImageProcessor(**settings)
        config = {"image_processor_type": "DINOv3ViTImageProcessorFast", "resample": 2, **settings}
        (IMAGE_FIXTURES / f"{variant}.json").write_text(json.dumps(config, indent=2) + "\n")
        tensors = {}
        for name in photos.get(variant, ("chelsea.png", "rocket.jpg")):
            image = np.asarray(Image.open(PHOTOS / name).convert("RGB"))
            tensors[name.split(".")[0]] = processor(images=image, return_tensors="pt")["pixel_values"][0].contiguous()
        save_file(tensors, str(IMAGE_FIXTURES / f"{variant}.safetensors"), metadata={"format": "pt"})
    print(f"dinov3 processor: {len(variants)} variants")


def main() -> int:
    torch.manual_seed(0)
    for case in CASES:
        run_case(case)
    rope_fixture()
    processor_fixture()
    return 0


if __name__ == "__main__":
    sys.exit(main())
