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

The twins (`TWINS`: `dinov3_reg4_meta`, `dinov3_reg4_timm`, `dinov3_swiglu_meta`,
`dinov3_swiglu_timm`) hold an HF case's weights renamed to facebookresearch/dinov3's naming
(`.pth` state dicts: fused `attn.qkv` with `LinearKMaskedBias`'s `bias_mask`, `storage_tokens`,
`rope_embed.periods`, `ls1.gamma`, `mlp.fc1` or `mlp.w1,w2,w3`, plus the training-only
`local_cls_norm`) or to timm's (`timm/models/eva.py` `*_dinov3*`: `reg_token`, `gamma_1`,
`attn.q_bias` / `attn.v_bias`, `mlp.fc1_g,fc1_x,fc2`), next to the source case's HF `config.json`;
their `reference.json` names the `source_case` whose outputs they share. The Meta files carry a
random, non-zero key third in `attn.qkv.bias`, which the mask removes, so a loader that ignores the
mask fails parity. How the renaming is checked:

- timm: the renamed weights load with `strict=True` into `timm.create_model(<variant>,
  pretrained=False, ...)` and its `forward_features` is compared with HF's `last_hidden_state`;
  timm's own `checkpoint_filter_fn`, applied to the Meta twin, must give the timm twin exactly.
- Meta: the `dinov3` package is not on PyPI, so the Meta naming is checked by running the HF
  conversion script's rules (`convert_dinov3_vit_to_hf.py`: split `qkv`, drop `bias_mask`, the key
  bias, `local_cls_norm` and `periods`, unsqueeze `mask_token`) forwards on the twin: the result must
  equal the HF state dict and load strictly into `DINOv3ViTModel`. With `DINOV3_SRC` set to a
  checkout of facebookresearch/dinov3 (never copied here), the twin is also loaded with
  `strict=True` into its `DinoVisionTransformer` and `forward_features` compared with HF's output
  (`meta_forward_features_max_abs_diff` in reference.json; the committed twins were written with
  facebookresearch/dinov3 at 6876159: 7.7e-7 and 1.1e-6).

`python Scripts/make_dinov3_fixtures.py --twins-only` rewrites only the twins, from the HF cases on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import DINOv3ViTBackbone, DINOv3ViTConfig, DINOv3ViTModel
from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTRopePositionEmbedding

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import (  # noqa: E402
    FIXTURES, clean_ref, fresh_dir, randomize_, save_hf, write_reference, write_twin_reference,
)


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


# (twin, HF case it renames, naming, timm variant whose kwargs it matches)
TWINS = [
    ("dinov3_reg4_meta", "dinov3_reg4", "meta", None),
    ("dinov3_reg4_timm", "dinov3_reg4", "timm", "vit_small_patch16_dinov3_qkvb"),
    ("dinov3_swiglu_meta", "dinov3_swiglu_nonsquare", "meta", None),
    ("dinov3_swiglu_timm", "dinov3_swiglu_nonsquare", "timm", "vit_small_plus_patch16_dinov3"),
]


def meta_named(sd: dict, config: DINOv3ViTConfig, seed: int) -> dict:
    """An HF DINOv3ViTModel state dict in facebookresearch/dinov3's naming."""
    assert not config.key_bias and config.query_bias == config.value_bias, "Meta has one qkv_bias, key masked"
    c, layers = config.hidden_size, config.num_hidden_layers
    head = c // config.num_attention_heads
    gen = torch.Generator().manual_seed(seed)
    out = {
        "cls_token": sd["embeddings.cls_token"],
        "mask_token": sd["embeddings.mask_token"].reshape(1, c),
        "patch_embed.proj.weight": sd["embeddings.patch_embeddings.weight"],
        "patch_embed.proj.bias": sd["embeddings.patch_embeddings.bias"],
        # RopePositionEmbedding._init_weights with `base` (float32, as the released backbones keep it).
        "rope_embed.periods": config.rope_theta ** (2 * torch.arange(head // 4, dtype=torch.float32) / (head // 2)),
        "norm.weight": sd["norm.weight"], "norm.bias": sd["norm.bias"],
        # Training-only norm of the local crops' CLS token (untie_global_and_local_cls_norm).
        "local_cls_norm.weight": torch.randn(c, generator=gen), "local_cls_norm.bias": torch.randn(c, generator=gen),
    }
    if config.num_register_tokens:
        out["storage_tokens"] = sd["embeddings.register_tokens"]
    for i in range(layers):
        hf, mb = f"layer.{i}.", f"blocks.{i}."
        a = hf + "attention."
        out[mb + "attn.qkv.weight"] = torch.cat([sd[a + f"{p}_proj.weight"] for p in "qkv"])
        if config.query_bias:
            # A non-zero key third: LinearKMaskedBias multiplies it by the mask's zeros.
            key = torch.randn(c, generator=gen)
            out[mb + "attn.qkv.bias"] = torch.cat([sd[a + "q_proj.bias"], key, sd[a + "v_proj.bias"]])
            out[mb + "attn.qkv.bias_mask"] = torch.cat([torch.ones(c), torch.zeros(c), torch.ones(c)])
        for suffix in ("weight", "bias") if config.proj_bias else ("weight",):
            out[mb + f"attn.proj.{suffix}"] = sd[a + f"o_proj.{suffix}"]
        out[mb + "ls1.gamma"] = sd[hf + "layer_scale1.lambda1"]
        out[mb + "ls2.gamma"] = sd[hf + "layer_scale2.lambda1"]
        for n in ("norm1", "norm2"):
            out[mb + f"{n}.weight"], out[mb + f"{n}.bias"] = sd[hf + f"{n}.weight"], sd[hf + f"{n}.bias"]
        names = {"gate_proj": "w1", "up_proj": "w2", "down_proj": "w3"} if config.use_gated_mlp else {"up_proj": "fc1", "down_proj": "fc2"}
        for hf_name, meta_name in names.items():
            for suffix in ("weight", "bias") if config.mlp_bias else ("weight",):
                out[mb + f"mlp.{meta_name}.{suffix}"] = sd[hf + f"mlp.{hf_name}.{suffix}"]
    return out


def timm_named(sd: dict, config: DINOv3ViTConfig) -> dict:
    """An HF DINOv3ViTModel state dict in timm's Eva naming (as its checkpoint_filter_fn writes it)."""
    assert not config.key_bias and config.query_bias == config.value_bias, "timm has q_bias / v_bias only"
    out = {
        "cls_token": sd["embeddings.cls_token"],
        "patch_embed.proj.weight": sd["embeddings.patch_embeddings.weight"],
        "patch_embed.proj.bias": sd["embeddings.patch_embeddings.bias"],
        "norm.weight": sd["norm.weight"], "norm.bias": sd["norm.bias"],
    }
    if config.num_register_tokens:
        out["reg_token"] = sd["embeddings.register_tokens"]
    for i in range(config.num_hidden_layers):
        hf, tb = f"layer.{i}.", f"blocks.{i}."
        a = hf + "attention."
        out[tb + "attn.qkv.weight"] = torch.cat([sd[a + f"{p}_proj.weight"] for p in "qkv"])
        if config.query_bias:
            out[tb + "attn.q_bias"], out[tb + "attn.v_bias"] = sd[a + "q_proj.bias"], sd[a + "v_proj.bias"]
        for suffix in ("weight", "bias") if config.proj_bias else ("weight",):
            out[tb + f"attn.proj.{suffix}"] = sd[a + f"o_proj.{suffix}"]
        out[tb + "gamma_1"], out[tb + "gamma_2"] = sd[hf + "layer_scale1.lambda1"], sd[hf + "layer_scale2.lambda1"]
        for n in ("norm1", "norm2"):
            out[tb + f"{n}.weight"], out[tb + f"{n}.bias"] = sd[hf + f"{n}.weight"], sd[hf + f"{n}.bias"]
        names = {"gate_proj": "fc1_g", "up_proj": "fc1_x", "down_proj": "fc2"} if config.use_gated_mlp else {"up_proj": "fc1", "down_proj": "fc2"}
        for hf_name, timm_name in names.items():
            for suffix in ("weight", "bias") if config.mlp_bias else ("weight",):
                out[tb + f"mlp.{timm_name}.{suffix}"] = sd[hf + f"mlp.{hf_name}.{suffix}"]
    return out


# The renames of transformers' convert_dinov3_vit_to_hf.py (ORIGINAL_TO_CONVERTED_KEY_MAPPING), applied in order.
HF_CONVERSION_RENAMES = [
    (r"cls_token", "embeddings.cls_token"), (r"mask_token", "embeddings.mask_token"),
    (r"storage_tokens", "embeddings.register_tokens"), (r"patch_embed.proj", "embeddings.patch_embeddings"),
    (r"periods", "inv_freq"), (r"rope_embed", "rope_embeddings"),
    (r"blocks.(\d+).attn.proj", r"layer.\1.attention.o_proj"), (r"blocks.(\d+).attn.", r"layer.\1.attention."),
    (r"blocks.(\d+).ls(\d+).gamma", r"layer.\1.layer_scale\2.lambda1"),
    (r"blocks.(\d+).mlp.fc1", r"layer.\1.mlp.up_proj"), (r"blocks.(\d+).mlp.fc2", r"layer.\1.mlp.down_proj"),
    (r"blocks.(\d+).mlp", r"layer.\1.mlp"), (r"blocks.(\d+).norm", r"layer.\1.norm"),
    (r"w1", "gate_proj"), (r"w2", "up_proj"), (r"w3", "down_proj"),
]


def hf_conversion(meta_sd: dict) -> dict:
    """The HF conversion script's rules run forwards on a Meta state dict: split qkv, rename, drop
    bias_mask, the key bias, local_cls_norm and the RoPE periods, unsqueeze mask_token."""
    split = {}
    for k, v in meta_sd.items():
        if "qkv" in k:
            for part, chunk in zip(("q_proj", "k_proj", "v_proj"), torch.chunk(v, 3, dim=0)):
                split[k.replace("qkv", part)] = chunk
        else:
            split[k] = v
    out = {}
    for k, v in split.items():
        new = k
        for pattern, replacement in HF_CONVERSION_RENAMES:
            new = re.sub(pattern, replacement, new)
        if "bias_mask" in k or "attn.k_proj.bias" in k or "local_cls_norm" in k or "inv_freq" in new:
            continue
        out[new] = v.unsqueeze(1) if "embeddings.mask_token" in new else v
    return out


def meta_forward(meta_sd: dict, config: DINOv3ViTConfig, pixels: torch.Tensor) -> torch.Tensor | None:
    """facebookresearch/dinov3's DinoVisionTransformer on the Meta twin, when DINOV3_SRC points to a checkout."""
    src = os.environ.get("DINOV3_SRC")
    if not src:
        return None
    sys.path.insert(0, src)
    from dinov3.models.vision_transformer import DinoVisionTransformer

    c = config.hidden_size
    gated = config.use_gated_mlp
    # Mlp: hidden = dim * ffn_ratio; SwiGLUFFN: int(dim * ffn_ratio * 2 / 3) rounded up to 8.
    ratio = config.intermediate_size * 3 / (2 * c) if gated else config.intermediate_size / c
    model = DinoVisionTransformer(
        patch_size=config.patch_size, embed_dim=c, depth=config.num_hidden_layers, num_heads=config.num_attention_heads,
        ffn_ratio=ratio, qkv_bias=config.query_bias, proj_bias=config.proj_bias, ffn_bias=config.mlp_bias,
        layerscale_init=1.0, norm_layer="layernormbf16", ffn_layer="swiglu" if gated else "mlp",
        n_storage_tokens=config.num_register_tokens, mask_k_bias=True, untie_global_and_local_cls_norm=True,
        pos_embed_rope_base=config.rope_theta, pos_embed_rope_dtype="fp32").eval()
    assert config.layer_norm_eps == 1e-5, "layernormbf16 is Meta's eps 1e-5 LayerNorm"
    model.load_state_dict(meta_sd, strict=True)
    with torch.no_grad():
        out = model.forward_features(pixels)
    return torch.cat([out["x_norm_clstoken"][:, None], out["x_storage_tokens"], out["x_norm_patchtokens"]], dim=1)


def timm_forward(timm_sd: dict, config: DINOv3ViTConfig, variant: str, pixels: torch.Tensor) -> torch.Tensor:
    import timm

    c = config.hidden_size
    model = timm.create_model(
        variant, pretrained=False, num_classes=0, embed_dim=c, depth=config.num_hidden_layers,
        num_heads=config.num_attention_heads, mlp_ratio=config.intermediate_size / c,
        num_reg_tokens=config.num_register_tokens, rope_temperature=config.rope_theta,
        patch_size=config.patch_size).eval()
    assert model.blocks[0].norm1.eps == config.layer_norm_eps
    model.load_state_dict(timm_sd, strict=True)
    with torch.no_grad():
        return model.forward_features(pixels)


def write_twin(twin: str, source: str, naming: str, variant: str | None, seed: int) -> None:
    src = FIXTURES / source
    config = DINOv3ViTConfig.from_pretrained(src)
    sd = load_file(str(src / "model.safetensors"))
    ref = load_file(str(src / "reference.safetensors"))
    pixels, expected = ref["pixel_values"], ref["last_hidden_state"]
    scale = max(1.0, expected.abs().max().item())
    meta = {k: v for k, v in json.loads((src / "reference.json").read_text()).items() if k not in ("keys", "max_abs")}
    meta.update(case=twin, naming=naming, source_case=source)
    if naming == "meta":
        renamed = meta_named(sd, config, seed)
        converted = hf_conversion(renamed)
        assert converted.keys() == sd.keys(), (converted.keys() ^ sd.keys())
        assert all(torch.equal(converted[k], sd[k]) for k in sd), "HF conversion of the Meta twin differs"
        # transformers 5 maps the file's keys onto its module tree when loading; check nothing is left over.
        with tempfile.TemporaryDirectory() as tmp:
            config.save_pretrained(tmp)
            save_file(converted, str(Path(tmp) / "model.safetensors"), metadata={"format": "pt"})
            _, info = DINOv3ViTModel.from_pretrained(tmp, output_loading_info=True)
        assert not any(info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
        meta["hf_conversion_roundtrip"] = "exact"
        meta_out = meta_forward(renamed, config, pixels)
        if meta_out is not None:
            diff = (meta_out - expected).abs().max().item()
            assert diff <= 1e-4 * scale, f"{twin}: Meta forward_features differs by {diff}"
            meta["meta_forward_features_max_abs_diff"] = diff
    else:
        renamed = timm_named(sd, config)
        diff = (timm_forward(renamed, config, variant, pixels) - expected).abs().max().item()
        assert diff <= 1e-4 * scale, f"{twin}: timm forward_features differs by {diff}"
        meta.update(timm_variant=variant, timm_forward_features_max_abs_diff=diff)
        # timm's own conversion of the Meta naming must give exactly this file.
        from timm.models.eva import checkpoint_filter_fn
        import timm

        model = timm.create_model(variant, pretrained=False, num_classes=0, embed_dim=config.hidden_size,
                                  depth=config.num_hidden_layers, num_heads=config.num_attention_heads,
                                  mlp_ratio=config.intermediate_size / config.hidden_size,
                                  num_reg_tokens=config.num_register_tokens, patch_size=config.patch_size)
        filtered = checkpoint_filter_fn(meta_named(sd, config, seed), model)
        assert filtered.keys() == renamed.keys(), (filtered.keys() ^ renamed.keys())
        assert all(torch.equal(filtered[k], renamed[k]) for k in renamed), "timm's filter of the Meta twin differs"
        meta["timm_checkpoint_filter_fn_of_meta"] = "exact"
    directory = fresh_dir(twin)
    (directory / "config.json").write_text((src / "config.json").read_text())
    save_file({k: v.contiguous() for k, v in renamed.items()}, str(directory / "model.safetensors"), metadata={"format": "pt"})
    write_twin_reference(directory, meta)
    print(f"{twin}: {len(renamed)} tensors in {naming} naming, from {source}")


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--twins-only", action="store_true", help="rewrite only the Meta / timm twins")
    args = parser.parse_args()
    torch.manual_seed(0)
    if not args.twins_only:
        for case in CASES:
            run_case(case)
        rope_fixture()
        processor_fixture()
    for k, (twin, source, naming, variant) in enumerate(TWINS):
        write_twin(twin, source, naming, variant, seed=7400 + k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
