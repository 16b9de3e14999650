#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 transformers==5.24.0 safetensors==0.8.0 timm==1.0.31 numpy==2.4.6
#   (the versions installed when the fixtures were generated; other versions may
#    name checkpoint keys differently or interpolate position embeddings differently)
"""Generate the reference fixtures for the DinoModel Swift tests.

Run from the repository root:

    python Scripts/make_fixtures.py

It (re)writes `Tests/DinoModelTests/Fixtures/`: every case folder it produces is
deleted and written again; other files in Fixtures are left alone.  Everything
runs on the CPU in float32 with fixed seeds, so two runs give identical bytes
(for a given torch / transformers / timm version); it takes ~15 s, mostly imports.

Each case folder `Fixtures/<case>/` holds

* the checkpoint, laid out like a Hugging Face hub folder:
  `config.json` + `model.safetensors` exactly as `save_pretrained` writes them
  (or the sharded `model.safetensors.index.json` + `model-0000X-of-0000N.safetensors`),
  or, for the `*_meta` / `*_timm` cases, the same weights renamed to the original
  Meta DINOv2 / timm key names and written with `safetensors.torch.save_file`
  (next to the same `config.json` as the Hugging Face case);
* `reference.safetensors`: the float32 input `pixel_values` and the outputs of
  the Hugging Face model (`last_hidden_state`, `pooler_output`, `hidden_states.<k>`,
  `attentions.<i>`, `logits`), of the matching Hugging Face `*Backbone`
  (`feature_maps.<stage>`) and, where a timm twin exists, of timm's
  `get_intermediate_layers` (`intermediate.*`, see `timm_intermediates`);
* `reference.json`: metadata (model class, input shape, backbone settings, the
  max |value| of every stored tensor, the key naming of the checkpoint, ...).

`Fixtures/interpolation/` holds only reference tensors for the bicubic position
embedding resampling (antialiased, plain, and Meta's scale-factor-with-offset).

Weights are not HF's initialisation: every parameter is overwritten with seeded
random values (see `randomize_`), so biases, register tokens, mask token and layer
scales are all non-trivial.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # includes the (slow) torch / transformers / timm imports

import copy
import json
import math
import os
import shutil
import sys
import zlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

import transformers  # noqa: E402
from transformers import (  # noqa: E402
    Dinov2Backbone,
    Dinov2Config,
    Dinov2ForImageClassification,
    Dinov2Model,
    Dinov2WithRegistersBackbone,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersForImageClassification,
    Dinov2WithRegistersModel,
)

import timm  # noqa: E402
from timm.models.vision_transformer import VisionTransformer  # noqa: E402

try:
    transformers.utils.logging.disable_progress_bar()
except AttributeError:  # pragma: no cover - older/newer transformers
    pass

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "Tests" / "DinoModelTests" / "Fixtures"

MAX_FILE_BYTES = 1_500_000  # hard limit per file
FILE_BUDGET = 1_450_000  # above this the attentions go to attentions.safetensors
MAX_TOTAL_BYTES = 14_000_000
TIMM_TOLERANCE = 1e-4
SHARD_SIZE = "150KB"  # 3 shards for the reg4 checkpoint (~0.36 MB)

torch.set_num_threads(1)  # same summation order on every machine
torch.use_deterministic_algorithms(True)


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    name: str
    family: str  # "reg" (Dinov2WithRegisters*) or "dinov2" (plain Dinov2*)
    input_hw: tuple[int, int]
    hidden: int = 32
    layers: int = 2
    heads: int = 2
    patch: int = 14
    image_size: int = 56
    registers: int = 0
    swiglu: bool = False
    layerscale: float = 1.0
    batch: int = 1
    out_indices: list[int] | None = None
    out_features: list[str] | None = None
    apply_layernorm: bool = True
    reshape: bool = True
    labels: list[str] | None = None  # classification head when set
    timm_twin: str | None = None  # name of the timm-named copy, if any
    meta_twin: str | None = None  # name of the Meta-named copy, if any
    variants: list[str] = field(default_factory=list)  # f16 / bf16 / sharded copies
    store_attentions: bool = True

    @property
    def seed(self) -> int:
        return zlib.crc32(self.name.encode()) & 0x7FFFFFFF

    @property
    def grid(self) -> tuple[int, int]:
        return self.input_hw[0] // self.patch, self.input_hw[1] // self.patch

    @property
    def checkpoint_grid(self) -> int:
        return self.image_size // self.patch


CASES = [
    Case("reg4_downsample", "reg", (224, 224), registers=4, image_size=518, out_indices=[1, 2],
         timm_twin="reg4_timm", meta_twin="reg4_meta", variants=["reg4_f16", "reg4_bf16", "reg4_sharded"]),
    # Its attentions (1 MB) are left out to keep the fixture set small; the plain-dinov2 attention
    # is covered by dinov2_upsample_swiglu and dinov2_classifier.
    Case("reg0_dinov2_downsample", "dinov2", (224, 224), image_size=518, out_features=["stem", "stage2"],
         store_attentions=False),
    Case("reg1_nointerp", "reg", (56, 56), registers=1, image_size=56, out_indices=[2], apply_layernorm=False),
    Case("reg8_swiglu_nonsquare", "reg", (42, 70), registers=8, swiglu=True, hidden=48, heads=3, image_size=28,
         reshape=False, out_indices=[1, 2], meta_twin="reg8_swiglu_meta"),
    Case("patch16_layerscale", "reg", (48, 80), patch=16, registers=4, layerscale=0.1, layers=3, heads=4,
         image_size=64, timm_twin="patch16_timm"),
    Case("same_count_nonsquare", "reg", (28, 112), registers=4, image_size=56),
    Case("dinov2_upsample_swiglu", "dinov2", (126, 84), swiglu=True, image_size=56),
    Case("batch2_classifier", "reg", (70, 56), registers=4, image_size=56, batch=2,
         labels=["cat", "dog", "bird", "fish", "horse"]),
    Case("dinov2_classifier", "dinov2", (56, 56), image_size=56, labels=["apple", "banana", "cherry"]),
]


# --------------------------------------------------------------------------- models


def make_config(case: Case):
    common = dict(
        hidden_size=case.hidden,
        num_hidden_layers=case.layers,
        num_attention_heads=case.heads,
        patch_size=case.patch,
        image_size=case.image_size,
        use_swiglu_ffn=case.swiglu,
        layerscale_value=case.layerscale,
        apply_layernorm=case.apply_layernorm,
        reshape_hidden_states=case.reshape,
        attn_implementation="eager",
    )
    if case.out_indices is not None:
        common["out_indices"] = case.out_indices
    if case.out_features is not None:
        common["out_features"] = case.out_features
    if case.labels is not None:
        common["id2label"] = {i: n for i, n in enumerate(case.labels)}
        common["label2id"] = {n: i for i, n in enumerate(case.labels)}
    if case.family == "reg":
        return Dinov2WithRegistersConfig(num_register_tokens=case.registers, **common)
    return Dinov2Config(**common)


def model_classes(case: Case):
    """(model class, backbone class, attribute holding the base model or None)."""
    if case.family == "reg":
        if case.labels:
            return Dinov2WithRegistersForImageClassification, Dinov2WithRegistersBackbone, "dinov2_with_registers"
        return Dinov2WithRegistersModel, Dinov2WithRegistersBackbone, None
    if case.labels:
        return Dinov2ForImageClassification, Dinov2Backbone, "dinov2"
    return Dinov2Model, Dinov2Backbone, None


def randomize_(model: nn.Module, seed: int) -> None:
    """Overwrite every parameter with seeded random values, chosen by parameter name.

    linear / conv weights ~ N(0, 1/sqrt(fan_in)), biases ~ N(0, 0.1),
    LayerNorm weight ~ 1 + N(0, 0.1) and bias ~ N(0, 0.1),
    layer scale ~ U(0.05, 1.0), CLS / register / mask tokens and position embeddings ~ N(0, 1).
    """
    gen = torch.Generator().manual_seed(seed)
    token_names = ("cls_token", "mask_token", "register_tokens", "position_embeddings")
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            leaf = name.rsplit(".", 1)[-1]
            owner = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
            if leaf in token_names:
                value = torch.randn(p.shape, generator=gen)
            elif leaf == "lambda1":
                value = 0.05 + 0.95 * torch.rand(p.shape, generator=gen)
            elif "norm" in owner:  # norm1, norm2, layernorm
                value = torch.randn(p.shape, generator=gen) * 0.1
                if leaf == "weight":
                    value += 1.0
            elif leaf == "weight":
                fan_in = p[0].numel()
                value = torch.randn(p.shape, generator=gen) / math.sqrt(fan_in)
            elif leaf == "bias":
                value = torch.randn(p.shape, generator=gen) * 0.1
            else:
                raise ValueError(f"don't know how to randomize {name}")
            p.copy_(value.to(p.dtype))


def build_model(case: Case):
    torch.manual_seed(case.seed)
    config = make_config(case)
    cls, _, _ = model_classes(case)
    model = cls(config).eval()
    randomize_(model, case.seed)
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    return model


def base_of(model, case: Case):
    attr = model_classes(case)[2]
    return getattr(model, attr) if attr else model


def make_input(case: Case) -> torch.Tensor:
    gen = torch.Generator().manual_seed(case.seed + 1)
    h, w = case.input_hw
    return torch.randn((case.batch, 3, h, w), generator=gen)


# --------------------------------------------------------------------------- references


def hf_reference(model, case: Case, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the HF model and of the HF backbone built from the same config and weights."""
    ref: dict[str, torch.Tensor] = {"pixel_values": pixel_values}
    base = base_of(model, case)
    with torch.no_grad():
        out = base(pixel_values, output_hidden_states=True, output_attentions=True)
        L = case.layers
        assert len(out.hidden_states) == L + 1, len(out.hidden_states)
        assert len(out.attentions) == L, len(out.attentions)
        ref["last_hidden_state"] = out.last_hidden_state
        ref["pooler_output"] = out.pooler_output
        for k, h in enumerate(out.hidden_states):
            ref[f"hidden_states.{k}"] = h
        for i, a in enumerate(out.attentions):
            ref[f"attentions.{i}"] = a
        if case.labels:
            full = model(pixel_values, output_hidden_states=True)
            assert torch.equal(full.hidden_states[-1], out.hidden_states[-1])
            ref["logits"] = full.logits

        backbone_cls = model_classes(case)[1]
        backbone = backbone_cls(model.config).eval()
        backbone.load_state_dict(base.state_dict(), strict=True)
        bout = backbone(pixel_values)
        assert list(backbone.out_features) == list(model.config.out_features)
        for stage, fmap in zip(backbone.out_features, bout.feature_maps):
            ref[f"feature_maps.{stage}"] = fmap
    return ref


def timm_intermediates(vit: VisionTransformer, pixel_values: torch.Tensor, layers: int) -> dict[str, torch.Tensor]:
    """Reference keys produced with timm 1.0.31's
    `get_intermediate_layers(x, n, reshape, return_prefix_tokens, norm, attn_mask)`:

    intermediate.last2.<j>      get_intermediate_layers(x, n=2, reshape=True, norm=True)[j]
                                  -> [B, C, h, w], the last two blocks, final norm applied
    intermediate.idx.<j>        get_intermediate_layers(x, n=[0, L-1], reshape=False, norm=False)[j]
                                  -> [B, h*w, C], blocks 0 and L-1, raw, prefix tokens removed
    intermediate.cls.map.0      get_intermediate_layers(x, n=1, reshape=True, return_prefix_tokens=True,
    intermediate.cls.token.0                            norm=True)[0] = (map [B, C, h, w], prefix [B, 1+r, C]);
                                  cls.token.0 = prefix[:, 0] (the CLS row) -> [B, C]
    """
    ref = {}
    with torch.no_grad():
        for j, t in enumerate(vit.get_intermediate_layers(pixel_values, n=2, reshape=True, norm=True)):
            ref[f"intermediate.last2.{j}"] = t
        for j, t in enumerate(vit.get_intermediate_layers(pixel_values, n=[0, layers - 1], reshape=False, norm=False)):
            ref[f"intermediate.idx.{j}"] = t
        (fmap, prefix), = vit.get_intermediate_layers(pixel_values, n=1, reshape=True, return_prefix_tokens=True,
                                                      norm=True)
        ref["intermediate.cls.map.0"] = fmap
        ref["intermediate.cls.token.0"] = prefix[:, 0]
    return ref


# --------------------------------------------------------------------------- key renaming


def hf_sd(model, case: Case) -> dict[str, torch.Tensor]:
    """In-memory state dict of the base model (q_proj/k_proj/... names, no class prefix)."""
    return {k: v.detach().clone() for k, v in base_of(model, case).state_dict().items()}


def meta_named(sd: dict[str, torch.Tensor], case: Case) -> dict[str, torch.Tensor]:
    """Rename to the original facebookresearch/dinov2 names (fused qkv, ls*.gamma, mlp.w12/w3)."""
    out = {
        "cls_token": sd["embeddings.cls_token"],
        "mask_token": sd["embeddings.mask_token"],
        "pos_embed": sd["embeddings.position_embeddings"],
        "patch_embed.proj.weight": sd["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": sd["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": sd["layernorm.weight"],
        "norm.bias": sd["layernorm.bias"],
    }
    if case.registers:
        out["register_tokens"] = sd["embeddings.register_tokens"]
    for i in range(case.layers):
        s, d = f"encoder.layer.{i}.", f"blocks.{i}."
        for n in ("norm1", "norm2"):
            for t in ("weight", "bias"):
                out[f"{d}{n}.{t}"] = sd[f"{s}{n}.{t}"]
        for t in ("weight", "bias"):
            out[f"{d}attn.qkv.{t}"] = torch.cat([sd[f"{s}attention.{p}_proj.{t}"] for p in "qkv"], 0)
            out[f"{d}attn.proj.{t}"] = sd[f"{s}attention.o_proj.{t}"]
            if case.swiglu:
                out[f"{d}mlp.w12.{t}"] = torch.cat([sd[f"{s}mlp.gate_proj.{t}"], sd[f"{s}mlp.up_proj.{t}"]], 0)
                out[f"{d}mlp.w3.{t}"] = sd[f"{s}mlp.down_proj.{t}"]
            else:
                out[f"{d}mlp.fc1.{t}"] = sd[f"{s}mlp.fc1.{t}"]
                out[f"{d}mlp.fc2.{t}"] = sd[f"{s}mlp.fc2.{t}"]
        out[f"{d}ls1.gamma"] = sd[f"{s}layer_scale1.lambda1"]
        out[f"{d}ls2.gamma"] = sd[f"{s}layer_scale2.lambda1"]
    return {k: v.contiguous() for k, v in out.items()}


def timm_named(sd: dict[str, torch.Tensor], case: Case) -> dict[str, torch.Tensor]:
    """Meta names, but timm's layout: reg_token, no mask_token, pos_embed without the CLS row,
    and the CLS position embedding folded into cls_token."""
    out = meta_named(sd, case)
    pos = out.pop("pos_embed")
    out.pop("mask_token")
    out["cls_token"] = (out["cls_token"] + pos[:, :1]).contiguous()
    out["pos_embed"] = pos[:, 1:].contiguous()
    if case.registers:
        out["reg_token"] = out.pop("register_tokens")
    return out


def build_timm(case: Case, weights: dict[str, torch.Tensor]) -> VisionTransformer:
    assert not case.swiglu, "timm twin only for the plain MLP"
    vit = VisionTransformer(
        img_size=case.image_size,
        patch_size=case.patch,
        embed_dim=case.hidden,
        depth=case.layers,
        num_heads=case.heads,
        mlp_ratio=4.0,
        qkv_bias=True,
        init_values=1.0,  # any value: creates ls1/ls2.gamma, overwritten by the loaded weights
        class_token=True,
        reg_tokens=case.registers,
        no_embed_class=True,  # pos_embed covers the patches only
        pre_norm=False,
        final_norm=True,
        dynamic_img_size=True,  # resample pos_embed (bicubic, antialias=True) to the input grid
        global_pool="token",
        num_classes=0,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        act_layer=nn.GELU,  # erf GELU, like HF's "gelu"
        weight_init="skip",
    ).eval()
    vit.load_state_dict(weights, strict=True)
    return vit


# --------------------------------------------------------------------------- writing


def tensor_max_abs(ref: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v.abs().max()) for k, v in ref.items()}


def clean_ref(ref: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in ref.items():
        v = v.detach().to(torch.float32).contiguous().clone()
        assert torch.isfinite(v).all(), f"{k} is not finite"
        out[k] = v
    return out


def serialized_size(tensors: dict[str, torch.Tensor]) -> int:
    header = 2 + sum(len(k) + 80 for k in tensors)  # generous header estimate
    return header + sum(v.numel() * v.element_size() for v in tensors.values())


def split_attentions(ref: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Move the attentions to their own file when one file would exceed the per-file budget."""
    if serialized_size(ref) <= FILE_BUDGET:
        return ref, {}
    kept = {k: v for k, v in ref.items() if not k.startswith("attentions.")}
    attentions = {k: v for k, v in ref.items() if k.startswith("attentions.")}
    assert serialized_size(kept) <= FILE_BUDGET, "reference too large even without attentions"
    assert serialized_size(attentions) <= FILE_BUDGET, "attentions too large for one file"
    return kept, attentions


def fresh_dir(name: str) -> Path:
    d = FIXTURES / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


KEEP_FROM_SAVE_PRETRAINED = ("config.json", "model.safetensors", "model.safetensors.index.json")


def save_hf(model, directory: Path, **kwargs) -> None:
    model.save_pretrained(directory, safe_serialization=True, **kwargs)
    for f in directory.iterdir():
        keep = f.name in KEEP_FROM_SAVE_PRETRAINED or (f.name.startswith("model-") and f.name.endswith(".safetensors"))
        if not keep:
            print(f"  removing {f.name} written by save_pretrained")
            f.unlink() if f.is_file() else shutil.rmtree(f)


def write_reference(directory: Path, ref: dict[str, torch.Tensor], meta: dict) -> None:
    """reference.safetensors (+ attentions.safetensors when the attentions do not fit) and reference.json."""
    ref, attentions = split_attentions(ref)
    save_file(ref, str(directory / "reference.safetensors"), metadata={"format": "pt"})
    if attentions:
        save_file(attentions, str(directory / "attentions.safetensors"), metadata={"format": "pt"})
    meta = dict(meta)
    meta["keys"] = list(ref.keys()) + list(attentions.keys())
    meta["max_abs"] = {**tensor_max_abs(ref), **tensor_max_abs(attentions)}
    (directory / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")


def write_twin_reference(directory: Path, meta: dict) -> None:
    """A copy of a case in another naming or layout shares the source case's reference outputs:
    only reference.json is written, naming the folder to read them from (`source_case`)."""
    (directory / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")


def base_meta(case: Case, model, *, name: str, naming: str, dtype: str, omitted: list[str]) -> dict:
    cfg = model.config
    return {
        "case": name,
        "model_class": type(model).__name__,
        "model_type": cfg.model_type,
        "backbone_class": model_classes(case)[1].__name__,
        "naming": naming,
        "dtype": dtype,
        "input_shape": [case.batch, 3, *case.input_hw],
        "patch_grid": list(case.grid),
        "checkpoint_grid": [case.checkpoint_grid, case.checkpoint_grid],
        "hidden_size": case.hidden,
        "num_hidden_layers": case.layers,
        "num_attention_heads": case.heads,
        "num_register_tokens": case.registers,
        "use_swiglu_ffn": case.swiglu,
        "out_features": list(cfg.out_features),
        "out_indices": list(cfg.out_indices),
        "apply_layernorm": cfg.apply_layernorm,
        "reshape_hidden_states": cfg.reshape_hidden_states,
        "num_labels": len(case.labels) if case.labels else 0,
        "seed": case.seed,
        "omitted": omitted,
    }


def check_roundtrip(cls, directory: Path, case: Case, ref: dict[str, torch.Tensor], tol: float = 0.0) -> float:
    """Reload the saved HF folder with from_pretrained (float32) and compare last_hidden_state."""
    loaded = cls.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        lhs = base_of(loaded, case)(ref["pixel_values"]).last_hidden_state
    diff = float((lhs - ref["last_hidden_state"]).abs().max())
    assert diff <= tol, f"{directory.name}: reload diff {diff}"
    return diff


# save_pretrained writes the hub's legacy names, not the in-memory module names
ON_DISK_TO_MEMORY = {
    "attention.attention.query.": "attention.q_proj.",
    "attention.attention.key.": "attention.k_proj.",
    "attention.attention.value.": "attention.v_proj.",
    "attention.output.dense.": "attention.o_proj.",
    "mlp.weights_out.": "mlp.down_proj.",
}


def check_saved_names(directory: Path, model) -> None:
    """Map the saved keys back to the in-memory names by hand and require bit-identical tensors,
    so the on-disk layout (incl. the order of gate/up inside the fused mlp.weights_in) is pinned."""
    memory = {k: v.detach() for k, v in model.state_dict().items()}
    seen = set()
    for path in sorted(directory.glob("*.safetensors")):
        if path.name == "reference.safetensors":
            continue
        with safe_open(str(path), "pt") as f:
            for key in f.keys():
                t = f.get_tensor(key)
                if ".mlp.weights_in." in key:  # fused [gate_proj; up_proj] along dim 0
                    gate, up = t.chunk(2, 0)
                    pairs = [(key.replace("weights_in", "gate_proj"), gate), (key.replace("weights_in", "up_proj"), up)]
                else:
                    name = key
                    for a, b in ON_DISK_TO_MEMORY.items():
                        name = name.replace(a, b)
                    pairs = [(name, t)]
                for name, value in pairs:
                    assert name in memory, f"{directory.name}: unexpected key {key}"
                    assert memory[name].dtype == value.dtype and torch.equal(memory[name], value), name
                    seen.add(name)
    missing = set(memory) - seen
    assert not missing, f"{directory.name}: not saved {sorted(missing)}"


def safetensors_dtypes(path: Path) -> set[str]:
    with safe_open(str(path), "pt") as f:
        return {f.get_slice(k).get_dtype() for k in f.keys()}


def safetensors_keys(directory: Path) -> list[str]:
    keys = []
    for p in sorted(directory.glob("*.safetensors")):
        if p.name == "reference.safetensors":
            continue
        with safe_open(str(p), "pt") as f:
            keys += list(f.keys())
    return sorted(keys)


# --------------------------------------------------------------------------- cases


def run_case(case: Case, report: dict) -> None:
    model = build_model(case)
    pixel_values = make_input(case)
    ref = hf_reference(model, case, pixel_values)
    lhs_max = float(ref["last_hidden_state"].abs().max())
    print(f"[{case.name}] {type(model).__name__} input {tuple(pixel_values.shape)} grid {case.grid} "
          f"seq {ref['last_hidden_state'].shape[1]} max|last_hidden_state| {lhs_max:.4f}")
    assert lhs_max < 100, "activations exploding"

    timm_diff = None
    if case.timm_twin:
        weights = timm_named(hf_sd(model, case), case)
        vit = build_timm(case, weights)
        with torch.no_grad():
            feats = vit.forward_features(pixel_values)
        timm_diff = float((feats - ref["last_hidden_state"]).abs().max())
        print(f"  timm forward_features vs HF last_hidden_state: max |diff| = {timm_diff:.3e}")
        report["timm_diffs"][case.name] = timm_diff
        assert timm_diff < TIMM_TOLERANCE, f"timm twin differs from HF by {timm_diff}"
        ref.update(timm_intermediates(vit, pixel_values, case.layers))

    omitted = []
    if not case.store_attentions:
        ref = {k: v for k, v in ref.items() if not k.startswith("attentions.")}
        omitted = ["attentions"]
    ref = clean_ref(ref)
    meta = base_meta(case, model, name=case.name, naming="hf", dtype="float32", omitted=omitted)
    if timm_diff is not None:
        meta["timm_forward_features_max_abs_diff"] = timm_diff

    d = fresh_dir(case.name)
    save_hf(model, d)
    check_saved_names(d, model)
    write_reference(d, ref, meta)
    check_roundtrip(type(model), d, case, ref)
    report["first_of_class"].setdefault(type(model).__name__, case.name)
    if case.swiglu:
        report["first_of_class"].setdefault(type(model).__name__ + " (SwiGLU)", case.name)
    report["lhs"][case.name] = lhs_max

    # renamed copies: same config.json, same reference
    for twin, naming, rename in ((case.meta_twin, "meta", meta_named), (case.timm_twin, "timm", timm_named)):
        if not twin:
            continue
        td = fresh_dir(twin)
        save_file(rename(hf_sd(model, case), case), str(td / "model.safetensors"), metadata={"format": "pt"})
        shutil.copyfile(d / "config.json", td / "config.json")
        write_twin_reference(td, {**meta, "case": twin, "naming": naming, "source_case": case.name})
        report["lhs"][twin] = lhs_max

    for variant in case.variants:
        run_variant(case, model, pixel_values, ref, meta, variant, report)


def run_variant(case: Case, model, pixel_values, ref, meta, variant: str, report: dict) -> None:
    d = fresh_dir(variant)
    if variant.endswith("_sharded"):
        save_hf(model, d, max_shard_size=SHARD_SIZE)
        shards = sorted(d.glob("model-*.safetensors"))
        assert (d / "model.safetensors.index.json").exists() and 2 <= len(shards) <= 4, shards
        check_saved_names(d, model)
        print(f"  [{variant}] {len(shards)} shards")
        write_twin_reference(d, {**meta, "case": variant, "source_case": case.name, "shards": len(shards)})
        check_roundtrip(type(model), d, case, ref)
        report["lhs"][variant] = report["lhs"][case.name]
        return

    dtype, tag = {"_f16": (torch.float16, "F16"), "_bf16": (torch.bfloat16, "BF16")}[variant[variant.rfind("_"):]]
    low = copy.deepcopy(model).to(dtype)
    save_hf(low, d)
    got = safetensors_dtypes(d / "model.safetensors")
    assert got == {tag}, f"{variant}: stored dtypes {got}"
    check_saved_names(d, low)
    rounded = copy.deepcopy(model).to(dtype).float().eval()  # float32 model holding the rounded weights
    rref = hf_reference(rounded, case, pixel_values)
    # The input is the source case's; the attentions and per-block states are covered there.
    omitted = ["pixel_values", "attentions", "hidden_states"]
    rref = clean_ref({k: v for k, v in rref.items() if not k.startswith(("attentions.", "hidden_states.", "pixel_values"))})
    lhs_max = float(rref["last_hidden_state"].abs().max())
    drift = float((rref["last_hidden_state"] - ref["last_hidden_state"]).abs().max())
    print(f"  [{variant}] stored {tag}; max|last_hidden_state| {lhs_max:.4f}; vs float32 weights {drift:.3e}")
    vmeta = base_meta(case, low, name=variant, naming="hf", dtype=str(dtype).removeprefix("torch."),
                      omitted=omitted)
    vmeta["source_case"] = case.name
    vmeta["input_from"] = case.name
    vmeta["reference_from"] = "float32 model holding the rounded weights"
    vmeta["max_abs_diff_vs_float32_weights"] = drift
    write_reference(d, rref, vmeta)
    check_roundtrip(type(model), d, case, {**rref, "pixel_values": pixel_values})
    report["lhs"][variant] = lhs_max


# --------------------------------------------------------------------------- interpolation

INTERP_TARGETS = [(16, 16), (32, 32), (37, 37), (39, 39), (78, 78), (16, 24), (39, 20), (78, 50), (5, 3)]
INTERP4_TARGETS = [(2, 8), (9, 6), (3, 5), (4, 4), (1, 1)]


def interpolation_fixture(report: dict) -> None:
    """grid [1,4,37,37] and grid4 [1,4,4,4] resampled three ways:

    aa.<h>x<w>      F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
                    (HF Dinov2WithRegisters, timm dynamic_img_size)
    plain.<h>x<w>   F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)   (HF plain Dinov2)
    offset.<h>x<w>  F.interpolate(grid, scale_factor=((h + 0.1) / M, (w + 0.1) / M), mode="bicubic",
                                  align_corners=False)   (original Meta DINOv2 without registers)
    The grid4 results use the same names prefixed with "grid4.".
    """
    gen = torch.Generator().manual_seed(20240917)
    grids = {"": torch.randn((1, 4, 37, 37), generator=gen), "grid4.": torch.randn((1, 4, 4, 4), generator=gen)}
    ref = {"grid": grids[""], "grid4": grids["grid4."]}
    sizes = {}
    for prefix, targets in (("", INTERP_TARGETS), ("grid4.", INTERP4_TARGETS)):
        g = grids[prefix]
        m = g.shape[-1]
        for h, w in targets:
            key = f"{h}x{w}"
            ref[f"{prefix}aa.{key}"] = F.interpolate(g, size=(h, w), mode="bicubic", align_corners=False,
                                                     antialias=True)
            ref[f"{prefix}plain.{key}"] = F.interpolate(g, size=(h, w), mode="bicubic", align_corners=False)
            off = F.interpolate(g, scale_factor=((h + 0.1) / m, (w + 0.1) / m), mode="bicubic",
                                align_corners=False)
            if tuple(off.shape[-2:]) != (h, w):
                print(f"  offset interpolation {m}x{m} -> {h}x{w} gives {tuple(off.shape[-2:])}")
            sizes[f"{prefix}offset.{key}"] = list(off.shape[-2:])
            ref[f"{prefix}offset.{key}"] = off
    ref = clean_ref(ref)
    d = fresh_dir("interpolation")
    write_reference(d, ref, {
        "case": "interpolation",
        "dtype": "float32",
        "targets": [list(t) for t in INTERP_TARGETS],
        "grid4_targets": [list(t) for t in INTERP4_TARGETS],
        "offset_output_sizes": sizes,
        "calls": {
            "aa": "F.interpolate(grid, size=(h, w), mode='bicubic', align_corners=False, antialias=True)",
            "plain": "F.interpolate(grid, size=(h, w), mode='bicubic', align_corners=False)",
            "offset": "F.interpolate(grid, scale_factor=((h + 0.1) / M, (w + 0.1) / M), mode='bicubic', "
                      "align_corners=False)",
        },
    })
    aa, plain = ref["aa.78x78"], ref["plain.78x78"]
    print(f"[interpolation] upsampling 37->78: max |aa - plain| = {float((aa - plain).abs().max()):.3e}; "
          f"37->16: max |aa - plain| = {float((ref['aa.16x16'] - ref['plain.16x16']).abs().max()):.3e}")
    report["lhs"]["interpolation"] = float("nan")


# --------------------------------------------------------------------------- main


def main() -> int:
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, timm {timm.__version__}")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    report = {"timm_diffs": {}, "first_of_class": {}, "lhs": {}}
    for case in CASES:
        run_case(case, report)
    interpolation_fixture(report)

    # sizes
    print()
    print(f"{'case':<26}{'files':>6}{'bytes':>12}  max|last_hidden_state|")
    total = 0
    too_big = []
    for name, lhs in report["lhs"].items():
        d = FIXTURES / name
        files = sorted(p for p in d.iterdir() if p.is_file())
        size = sum(p.stat().st_size for p in files)
        too_big += [p for p in files if p.stat().st_size > MAX_FILE_BYTES]
        total += size
        print(f"{name:<26}{len(files):>6}{size:>12}  {'-' if math.isnan(lhs) else f'{lhs:.4f}'}")
    folder_total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    print(f"{'total':<26}{'':>6}{total:>12}  (whole Fixtures folder: {folder_total} bytes)")

    print()
    for cls, name in report["first_of_class"].items():
        print(f"model.safetensors keys of {name} ({cls}):")
        for k in safetensors_keys(FIXTURES / name):
            print(f"  {k}")
    print()
    print("timm forward_features vs HF last_hidden_state:", report["timm_diffs"])
    print(f"done in {time.perf_counter() - _T0:.1f} s (including imports)")

    assert not too_big, f"files over {MAX_FILE_BYTES} bytes: {too_big}"
    assert folder_total < MAX_TOTAL_BYTES, f"Fixtures is {folder_total} bytes"
    return 0


if __name__ == "__main__":
    sys.exit(main())
