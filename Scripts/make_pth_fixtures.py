#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 safetensors==0.8.0 numpy==2.4.6 transformers==5.24.0
#   (the versions installed when the fixtures were generated; other torch versions may
#    write other archive members or pickle opcodes)
"""Generate the `torch.save` fixtures for the Swift `TorchCheckpoint` tests.

Run from the repository root:

    python Scripts/make_pth_fixtures.py

It (re)writes `Tests/DinoTensorTests/Fixtures/pth/` (the folder is emptied first). Everything
is seeded and zip timestamps are fixed, so two runs give identical bytes for a given torch
version; the whole set stays under 1.5 MB.

Valid checkpoints (each written by `torch.save` itself, except `deflated.pth`, which is a
copy re-compressed with Python's zipfile, and read back with `torch.load(weights_only=True)`):

* `flat_f32.pth`       flat dict of float32 tensors: matrix, cube, vector, scalar, empty, and
                       special values (inf, nan, -0, subnormal)
* `dtypes.pth`         float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool, and
                       uint16 (which torch >= 2.3 writes through `_rebuild_tensor_v3`)
* `nested.pth`         nested dicts, a list of tensors, plain values beside them, a Parameter
                       with an attribute (`_rebuild_parameter_with_state`)
* `module_state.pth`   `state_dict(keep_vars=True)` of a small `nn.Module` (an OrderedDict with
                       `_metadata`, `nn.Parameter`s, BatchNorm buffers and `num_batches_tracked`)
* `views.pth`          non-contiguous views sharing storages: transpose, slices with offsets,
                       steps, `expand` (stride 0), a negative view, a float16 transpose
* `segmentation_head.pth` the layout of the released DINOv2 segmentation heads (mmcv style:
                       `{"meta": {...}, "state_dict": {"decode_head.conv_seg.weight", ...}}`)
* `protocol4.pth`      a nested dict saved with `pickle_protocol=4` (FRAME, MEMOIZE, STACK_GLOBAL)
* `deflated.pth`       `nested.pth` with every member DEFLATE-compressed
* `backbone_reg4_meta.pth` the Meta-named tiny DINOv2-with-registers backbone of
                       `Tests/DinoModelTests/Fixtures/reg4_meta/model.safetensors`, as an
                       OrderedDict (its expected tensors are that safetensors file)
* `backbone_dim64_swiglu.pth` a Meta-named plain DINOv2 with head width 64 (hidden 128,
                       2 blocks, SwiGLU, patch 4, 4 x 4 position grid), for configuration
                       inference; its large weights are `expand`ed rows so the file stays small;
                       `backbone_dim64_swiglu.reference.safetensors` holds the `pixel_values` and
                       `last_hidden_state` of HF transformers' `Dinov2Model` with those weights at
                       16 x 16 and 8 x 12 px

For each valid file except the two backbones, `<name>.expected.safetensors` holds the tensors
`torch.load` returned, converted to float32 and made contiguous, under the names the Swift
reader gives them with `root: .whole` (dict keys joined with ".", list items by index).

Hostile or malformed files (each checked to be refused by `torch.load(weights_only=True)`,
except the legacy file, which torch still reads):

* `truncated.pth`        the first half of `flat_f32.pth`
* `global_os_system.pth` a pickle calling `os.system` through GLOBAL + REDUCE
* `unknown_opcode.pth`   a pickle using the INST opcode
* `legacy.pth`           `_use_new_zipfile_serialization=False`
* `missing_storage.pth`  a checkpoint whose `data/0` member was removed
* `view_too_large.pth`   a tensor of 10 elements over a storage of 4
* `big_endian.pth`       a checkpoint whose `byteorder` says `big`

`deflate/<name>.deflate` are raw DEFLATE streams made by zlib with various levels and
strategies (stored, fixed and dynamic blocks, runs, long distances); `deflate/manifest.txt`
lists each stream's decompressed size and CRC-32.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import random
import shutil
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "DinoTensorTests" / "Fixtures" / "pth"
REG4_META = ROOT / "Tests" / "DinoModelTests" / "Fixtures" / "reg4_meta" / "model.safetensors"
MAX_TOTAL_BYTES = 1_500_000
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

torch.set_num_threads(1)


# --------------------------------------------------------------------------- helpers


def flatten(obj, prefix=""):
    """Tensors by the names the Swift reader gives them (root: .whole)."""
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(obj, (list, tuple)) and holds_tensor(obj):
        for i, value in enumerate(obj):
            out.update(flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    return out


def holds_tensor(obj) -> bool:
    if isinstance(obj, torch.Tensor):
        return True
    if isinstance(obj, dict):
        return any(holds_tensor(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(holds_tensor(v) for v in obj)
    return False


def save_valid(name: str, obj, expected: bool = True, protocol: int = 2) -> Path:
    path = OUT / f"{name}.pth"
    torch.save(obj, path, pickle_protocol=protocol)
    # torch's weights-only unpickler knows no FRAME opcode; the files here are our own.
    loaded = torch.load(path, weights_only=protocol == 2)
    check_same(flatten(obj), flatten(loaded), name)
    if expected:
        write_expected(name, loaded)
    return path


def write_expected(name: str, loaded) -> None:
    tensors = {k: v.detach().resolve_neg().to(torch.float32).contiguous().clone() for k, v in flatten(loaded).items()}
    save_file(tensors, str(OUT / f"{name}.expected.safetensors"))


def check_same(a: dict, b: dict, name: str) -> None:
    assert list(a) == list(b), f"{name}: names differ"
    for key in a:
        x, y = a[key], b[key]
        assert x.shape == y.shape and x.dtype == y.dtype, f"{name}/{key}: shape or dtype differs"
        assert x.stride() == y.stride(), f"{name}/{key}: stride {x.stride()} became {y.stride()}"
        assert torch.equal(as_float(x).nan_to_num(7.0), as_float(y).nan_to_num(7.0)), f"{name}/{key}"


def as_float(t: torch.Tensor) -> torch.Tensor:
    return t.detach().resolve_neg().reshape(-1).to(torch.float32)


def write_zip(path: Path, members: list[tuple[str, bytes]], compression=zipfile.ZIP_STORED) -> None:
    """A zip with fixed timestamps, members in the given order."""
    with zipfile.ZipFile(path, "w") as z:
        for member, data in members:
            info = zipfile.ZipInfo(member, date_time=ZIP_TIME)
            info.compress_type = compression
            z.writestr(info, data, compress_type=compression, compresslevel=9 if compression else None)


def members_of(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(info.filename, z.read(info.filename)) for info in z.infolist()]


def torch_like_archive(path: Path, pickle_bytes: bytes, storages: dict[str, bytes], byteorder: bytes = b"little") -> None:
    """The member layout torch.save writes, around a hand-made pickle."""
    archive = path.stem
    members = [(f"{archive}/data.pkl", pickle_bytes), (f"{archive}/byteorder", byteorder)]
    members += [(f"{archive}/data/{key}", data) for key, data in storages.items()]
    members += [(f"{archive}/version", b"3\n")]
    write_zip(path, members)


def expect_refused(path: Path) -> None:
    try:
        torch.load(path, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any refusal will do
        print(f"  {path.name}: torch refuses it too ({type(error).__name__})")
        return
    sys.exit(f"{path.name}: torch.load accepted a file meant to be malformed")


class StorageStub:
    """Stands for a storage in a hand-made pickle; pickled as torch's persistent id."""

    def __init__(self, key: str, storage_type, numel: int):
        self.key, self.storage_type, self.numel = key, storage_type, numel


class TensorStub:
    """Pickles as torch pickles a tensor: `_rebuild_tensor_v2(storage, offset, size, stride, ...)`."""

    def __init__(self, storage: StorageStub, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        args = (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args)


class StubPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageStub):
            return ("storage", obj.storage_type, obj.key, "cpu", obj.numel)
        return None


def stub_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    StubPickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


# --------------------------------------------------------------------------- valid files


def flat_f32() -> None:
    g = torch.Generator().manual_seed(1)
    special = torch.tensor([float("inf"), -float("inf"), float("nan"), -0.0, 1e-45, 3.4e38, -1.5e-40, 1.0])
    save_valid("flat_f32", {
        "matrix": torch.randn(3, 4, generator=g),
        "cube": torch.randn(2, 3, 4, generator=g),
        "vector": torch.randn(5, generator=g),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "special": special,
    })


def dtypes() -> None:
    g = torch.Generator().manual_seed(2)
    save_valid("dtypes", {
        "f16": (torch.randn(4, 3, generator=g) * 100).half(),
        "f16_special": torch.tensor([65504.0, -65504.0, 6e-8, float("inf"), float("nan"), -0.0], dtype=torch.float16),
        "bf16": (torch.randn(7, generator=g) * 1e5).bfloat16(),
        "f64": torch.tensor([1 / 3, -2.5e-300, 1e300, 16777217.0], dtype=torch.float64),
        "i64": torch.tensor([0, -1, 16777217, 2**40 + 3, -(2**62)], dtype=torch.int64),
        "i32": torch.tensor([[-2**31, 2**31 - 1], [5, -6]], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767, 3], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "u16": torch.tensor([0, 65535, 1234], dtype=torch.int32).to(torch.uint16),
    })


def nested():
    g = torch.Generator().manual_seed(3)
    tagged = nn.Parameter(torch.randn(2, generator=g))
    tagged.tag = "pinned"  # a Parameter with attributes pickles through _rebuild_parameter_with_state
    obj = {
        "encoder": {
            "layers": {"0": {"weight": torch.randn(2, 3, generator=g)}, "1": {"weight": torch.randn(2, 3, generator=g)}},
            "norm.weight": torch.randn(3, generator=g),
        },
        "decoder": [torch.randn(4, generator=g), torch.randn(1, 2, generator=g)],
        "step": 7,
        "lr": 0.001,
        "name": "tiny",
        "flags": (True, None),
        "history": {"loss": [0.5, 0.25], "epochs": 2},
        "tagged": tagged,
    }
    return save_valid("nested", obj)


def protocol4() -> None:
    """torch.save with pickle_protocol=4: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE."""
    g = torch.Generator().manual_seed(9)
    save_valid("protocol4", {"state_dict": {"w": torch.randn(2, 3, generator=g), "b": torch.randn(3, generator=g).half()},
                             "epoch": 3, "name": "p4"}, protocol=4)


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)


def module_state() -> None:
    torch.manual_seed(4)
    net = SmallNet()
    net.train()
    for _ in range(3):  # running statistics and num_batches_tracked = 3
        net.bn(net.conv(torch.randn(2, 2, 5, 5)))
    state = net.state_dict(keep_vars=True)  # keep_vars: parameters are saved as nn.Parameter
    assert isinstance(state["conv.weight"], nn.Parameter) and int(state["bn.num_batches_tracked"]) == 3
    save_valid("module_state", state)


def views() -> None:
    g = torch.Generator().manual_seed(5)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) + 0.5
    flat = torch.randn(20, generator=g)
    half = torch.randn(3, 5, generator=g).half()
    obj = {
        "base": base,
        "transposed": base.t(),
        "rows": base[1:3],
        "columns": base[:, 2:5],
        "stepped": base[::2, ::3],
        "offset_vector": flat[5:17],
        "offset_matrix": flat[3:15].view(3, 4).t(),
        "expanded": torch.randn(3, 1, generator=g).expand(3, 4),
        "broadcast_scalar": torch.tensor(1.25).expand(2, 2),
        "negated": torch.randn(4, generator=g)._neg_view(),
        "half_transposed": half.t(),
        "element": base[2, 3],
    }
    assert not obj["transposed"].is_contiguous() and obj["negated"].is_neg()
    save_valid("views", obj)


def segmentation_head() -> None:
    torch.manual_seed(6)
    classes, channels = 5, 8
    bn = nn.BatchNorm2d(channels)
    bn.train()
    for _ in range(2):
        bn(torch.randn(2, channels, 3, 3))
    bn_state = bn.state_dict()
    conv = nn.Conv2d(channels, classes, 1)
    state = collections.OrderedDict()
    state["decode_head.conv_seg.weight"] = conv.weight.detach()
    state["decode_head.conv_seg.bias"] = conv.bias.detach()
    for key in ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]:
        state[f"decode_head.bn.{key}"] = bn_state[key]
    meta = {
        "mmseg_version": "0.27.0",
        "config": "norm_cfg = dict(type='SyncBN', requires_grad=True)\n",
        "CLASSES": ("wall", "building", "sky", "floor", "tree"),
        "PALETTE": [[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3]],
        "epoch": 40,
        "iter": 40000,
        "seed": 0,
        "hook_msgs": {},
    }
    save_valid("segmentation_head", {"meta": meta, "state_dict": state})


def deflated(source: Path) -> None:
    path = OUT / "deflated.pth"
    write_zip(path, members_of(source), compression=zipfile.ZIP_DEFLATED)
    loaded = torch.load(path, weights_only=True)
    check_same(flatten(torch.load(source, weights_only=True)), flatten(loaded), "deflated")
    write_expected("deflated", loaded)


def backbone_reg4_meta() -> None:
    weights = load_file(str(REG4_META))
    state = collections.OrderedDict((key, weights[key]) for key in weights)
    save_valid("backbone_reg4_meta", state)


def backbone_dim64_swiglu() -> None:
    """Head width 64 as in every released DINOv2: hidden 128 -> 2 heads."""
    g = torch.Generator().manual_seed(7)
    c, layers, patch, grid, channels = 128, 2, 4, 4, 3
    hidden = (int(c * 4 * 2 / 3) + 7) // 8 * 8  # SwiGLU width for mlp_ratio 4: 344

    def rows(out: int, *inner: int) -> torch.Tensor:
        # One value per output row, expanded (stride 0) over the inputs: small on disk.
        return (torch.randn(out, *([1] * len(inner)), generator=g) * 0.02).expand(out, *inner)

    def vector(n: int, scale: float = 0.02) -> torch.Tensor:
        return torch.randn(n, generator=g) * scale

    state = collections.OrderedDict()
    state["cls_token"] = vector(c).view(1, 1, c)
    state["pos_embed"] = vector((1 + grid * grid) * c).view(1, 1 + grid * grid, c)
    state["mask_token"] = torch.zeros(1, c)
    state["patch_embed.proj.weight"] = rows(c, channels, patch, patch)
    state["patch_embed.proj.bias"] = vector(c)
    for i in range(layers):
        b = f"blocks.{i}."
        state[b + "norm1.weight"] = 1 + vector(c)
        state[b + "norm1.bias"] = vector(c)
        state[b + "attn.qkv.weight"] = rows(3 * c, c)
        state[b + "attn.qkv.bias"] = vector(3 * c)
        state[b + "attn.proj.weight"] = rows(c, c)
        state[b + "attn.proj.bias"] = vector(c)
        state[b + "ls1.gamma"] = vector(c, 0.1)
        state[b + "norm2.weight"] = 1 + vector(c)
        state[b + "norm2.bias"] = vector(c)
        state[b + "mlp.w12.weight"] = rows(2 * hidden, c)
        state[b + "mlp.w12.bias"] = vector(2 * hidden)
        state[b + "mlp.w3.weight"] = rows(c, hidden)
        state[b + "mlp.w3.bias"] = vector(c)
        state[b + "ls2.gamma"] = vector(c, 0.1)
    state["norm.weight"] = 1 + vector(c)
    state["norm.bias"] = vector(c)
    save_valid("backbone_dim64_swiglu", state, expected=False)
    dim64_reference(state, c, layers, patch, grid, channels)


def dim64_reference(state: dict, c: int, layers: int, patch: int, grid: int, channels: int) -> None:
    """HF transformers' Dinov2Model with the dim64 weights (renamed from Meta's names), on the
    checkpoint's 16 x 16 px and on 8 x 12 px (HF interpolates the position grid with plain
    bicubic, `size` given; the Swift test asks for the same)."""
    from transformers import Dinov2Config, Dinov2Model

    config = Dinov2Config(
        hidden_size=c, num_hidden_layers=layers, num_attention_heads=c // 64, mlp_ratio=4, patch_size=patch,
        image_size=patch * grid, num_channels=channels, use_swiglu_ffn=True, qkv_bias=True, layer_norm_eps=1e-6,
        hidden_act="gelu", layerscale_value=1.0)
    hf = {
        "embeddings.cls_token": state["cls_token"], "embeddings.mask_token": state["mask_token"],
        "embeddings.position_embeddings": state["pos_embed"],
        "embeddings.patch_embeddings.projection.weight": state["patch_embed.proj.weight"],
        "embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
        "layernorm.weight": state["norm.weight"], "layernorm.bias": state["norm.bias"],
    }
    for i in range(layers):
        b, h = f"blocks.{i}.", f"encoder.layer.{i}."
        for part in ("norm1", "norm2"):
            hf[h + part + ".weight"], hf[h + part + ".bias"] = state[b + part + ".weight"], state[b + part + ".bias"]
        # Meta's fused qkv: rows 0..C are q, C..2C k, 2C..3C v.
        for k, name in enumerate(("query", "key", "value")):
            hf[h + f"attention.attention.{name}.weight"] = state[b + "attn.qkv.weight"][k * c:(k + 1) * c]
            hf[h + f"attention.attention.{name}.bias"] = state[b + "attn.qkv.bias"][k * c:(k + 1) * c]
        hf[h + "attention.output.dense.weight"], hf[h + "attention.output.dense.bias"] = state[b + "attn.proj.weight"], state[b + "attn.proj.bias"]
        hf[h + "layer_scale1.lambda1"], hf[h + "layer_scale2.lambda1"] = state[b + "ls1.gamma"], state[b + "ls2.gamma"]
        hf[h + "mlp.weights_in.weight"], hf[h + "mlp.weights_in.bias"] = state[b + "mlp.w12.weight"], state[b + "mlp.w12.bias"]
        hf[h + "mlp.weights_out.weight"], hf[h + "mlp.weights_out.bias"] = state[b + "mlp.w3.weight"], state[b + "mlp.w3.bias"]
    # Loaded as a hub folder, so that transformers maps the hub names to its modules itself.
    with tempfile.TemporaryDirectory() as folder:
        config.save_pretrained(folder)
        save_file({k: v.contiguous() for k, v in hf.items()}, str(Path(folder) / "model.safetensors"), metadata={"format": "pt"})
        model, info = Dinov2Model.from_pretrained(folder, attn_implementation="eager", output_loading_info=True)
    assert not any(info.values()), info
    model.eval()
    reference = {}
    for height, width in ((16, 16), (8, 12)):
        # The pattern the Swift test used before this reference existed.
        pixels = (torch.arange(3 * height * width) % 17).to(torch.float32).div(17).sub(0.5).view(1, 3, height, width)
        with torch.no_grad():
            out = model(pixel_values=pixels)
        key = f"{height}x{width}"
        reference[f"pixel_values.{key}"] = pixels.contiguous()
        reference[f"last_hidden_state.{key}"] = out.last_hidden_state.contiguous()
    save_file(reference, str(OUT / "backbone_dim64_swiglu.reference.safetensors"),
              metadata={"model": "transformers Dinov2Model (eager), weights of backbone_dim64_swiglu.pth renamed to HF names",
                        "interpolation": "HF plain bicubic (size given) for 8x12; 16x16 is the checkpoint's grid"})


# --------------------------------------------------------------------------- hostile files


def hostile(flat: Path, nested_path: Path) -> None:
    data = flat.read_bytes()
    truncated = OUT / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    expect_refused(truncated)

    # {"weights": os.system("touch /tmp/dino_pwned")}: GLOBAL 'os system', REDUCE.
    command = b"touch /tmp/dino_pwned"
    payload = (b"\x80\x02}q\x00X\x07\x00\x00\x00weightsq\x01cos\nsystem\nq\x02"
               + b"X" + len(command).to_bytes(4, "little") + command + b"\x85R" + b"s.")
    path = OUT / "global_os_system.pth"
    torch_like_archive(path, payload, {})
    expect_refused(path)

    # INST: the protocol-0 opcode that looks up and calls a class in one step.
    path = OUT / "unknown_opcode.pth"
    torch_like_archive(path, b"\x80\x02(ibuiltins\nprint\n.", {})
    expect_refused(path)

    path = OUT / "legacy.pth"
    torch.save({"weight": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    fix_legacy_storage_key(path)

    path = OUT / "missing_storage.pth"
    write_zip(path, [(n, d) for n, d in members_of(flat) if not n.endswith("/data/0")])
    expect_refused(path)

    storage = StorageStub("0", torch.FloatStorage, 4)
    path = OUT / "view_too_large.pth"
    pickled = stub_pickle({"fine": TensorStub(storage, 0, (2, 2), (2, 1)), "too_large": TensorStub(storage, 0, (10,), (1,))})
    torch_like_archive(path, pickled, {"0": torch.arange(4, dtype=torch.float32).numpy().tobytes()})
    expect_refused(path)

    path = OUT / "big_endian.pth"
    write_zip(path, [(n, b"big" if n.endswith("/byteorder") else d) for n, d in members_of(nested_path)])


# --------------------------------------------------------------------------- DEFLATE streams


def deflate_vectors() -> None:
    folder = OUT / "deflate"
    folder.mkdir()
    rng = random.Random(8)
    words = ["storage", "tensor", "weight", "bias", "blocks", "attn", "qkv", "register", "patch", "norm", "mlp", "fc1"]
    text = " ".join(rng.choice(words) + str(rng.randrange(40)) for _ in range(3000)).encode()
    noise = bytes(rng.getrandbits(8) for _ in range(66_000))  # more than one stored block (65535)
    cases = {
        "empty": (b"", 6, zlib.Z_DEFAULT_STRATEGY),
        "fixed": (b"torch.save writes stored members. " * 30, 6, zlib.Z_FIXED),
        "stored_level0": (text[:3000], 0, zlib.Z_DEFAULT_STRATEGY),
        "incompressible": (noise, 9, zlib.Z_DEFAULT_STRATEGY),
        "text": (text, 9, zlib.Z_DEFAULT_STRATEGY),
        "runs": (b"\0" * 40_000 + b"ab" * 2_000 + bytes(range(256)) * 4, 9, zlib.Z_DEFAULT_STRATEGY),
        "huffman_only": (text[:4000], 6, zlib.Z_HUFFMAN_ONLY),
        "rle": (b"\1" * 300 + text[:2000] + b"\2" * 1000, 6, zlib.Z_RLE),
    }
    lines = []
    for name, (data, level, strategy) in cases.items():
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
        stream = compressor.compress(data) + compressor.flush()
        assert zlib.decompress(stream, -15) == data
        (folder / f"{name}.deflate").write_bytes(stream)
        lines.append(f"{name} {len(data)} {zlib.crc32(data):08x}")
    (folder / "manifest.txt").write_text("\n".join(lines) + "\n")


def fix_legacy_storage_key(path: Path) -> None:
    """The legacy format names each storage by its memory address; a fixed name of the same
    width keeps the file valid and the bytes reproducible."""
    data = path.read_bytes()
    stream = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(stream)
    keys = []

    class KeyReader(pickle.Unpickler):
        def persistent_load(self, pid):
            keys.append(pid[2])
            return None

        def find_class(self, module, name):
            return lambda *args: None  # only the storage keys are wanted; nothing is rebuilt

    KeyReader(stream).load()
    for key in set(keys):
        data = data.replace(key.encode(), ("1" + "0" * (len(key) - 1)).encode())
    path.write_bytes(data)
    assert torch.equal(torch.load(path, weights_only=True)["weight"], torch.ones(2))


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    flat_f32()
    dtypes()
    nested_path = nested()
    module_state()
    views()
    segmentation_head()
    protocol4()
    deflated(nested_path)
    backbone_reg4_meta()
    backbone_dim64_swiglu()
    hostile(OUT / "flat_f32.pth", nested_path)
    deflate_vectors()
    assert not os.path.exists("/tmp/dino_pwned")

    total = 0
    for path in sorted(p for p in OUT.rglob("*") if p.is_file()):
        size = path.stat().st_size
        total += size
        print(f"  {size:>9}  {path.relative_to(OUT)}")
    print(f"  {total:>9}  total")
    assert total <= MAX_TOTAL_BYTES, f"fixtures take {total} bytes, more than {MAX_TOTAL_BYTES}"


if __name__ == "__main__":
    main()
