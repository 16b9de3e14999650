#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 transformers==5.24.0 safetensors==0.8.0 numpy==2.4.6
# requires: onnx==1.23.2 onnxruntime==1.32.0 onnxscript==0.7.2 (onnx_ir==1.1.0)
#   (the versions this script was written and tested with; onnxscript is needed by
#    the dynamo-based `torch.onnx.export`, the only exporter that can translate the
#    antialiased bicubic position-embedding resampling that DINOv2 uses when it stays
#    in the graph; the TorchScript exporter runs on the graph with that table frozen)
"""Compare the speed of the Swift DINOv2-with-registers port against PyTorch and ONNX Runtime.

Run from the repository root after building the Swift benchmark binary:

    swift build -c release
    python Scripts/bench_reference.py                                  # vits14-reg and vitb14-reg, 224 px, batch 1
    python Scripts/bench_reference.py --configs vitl14-reg:518:1 --runs 30 --json /tmp/bench.json

Everything runs on the CPU in float32.

Configs
-------
`--configs` is a comma separated list of `name:size:batch`, where `name` is one of
`vits14-reg`, `vitb14-reg`, `vitl14-reg`, `dinov3-vits16`, `dinov3-vitb16` (see `ARCHS`),
`size` is the square input side H = W in pixels (a multiple of the patch, 14 or 16) and
`batch` the batch size B.

Weights
-------
For every model name a `Dinov2WithRegistersModel` (or `DINOv3ViTModel`) with seeded random weights (HF
initialisation, plus small noise on biases, norms, layer scales and the special
tokens so that nothing is degenerate) is written once with `save_pretrained` to
`<cache>/<name>/` (default cache `/tmp/dino-bench-cache`).  An existing folder with a
`config.json` is reused.  PyTorch loads that folder with `from_pretrained` (SDPA
attention), ONNX Runtime runs ONNX exports of it (static input shape, single output
`last_hidden_state`), and the Swift binary is pointed at the same folder, so all
implementations compute the same function.  Before timing, each ONNX Runtime output
is compared with PyTorch's `last_hidden_state` and the max abs diff printed.

ONNX Runtime runs two exports, both timed in the same rounds:

* `ort`: the export a deployment engineer would make for a fixed size, and the faster
  one: the position table interpolated once to this size and frozen into the graph as
  a constant, then the TorchScript exporter (`dynamo=False`, opset 17); cached as
  `<cache>/<name>/model_<size>_b<batch>_frozen_ts17.onnx`.  The ratios and targets
  are against this one.
* `ort_dynamo` (unless `--no-ort-dynamo`): the dynamo exporter with the antialiased
  bicubic interpolation left in the graph (`--opset`, default 20), cached as
  `<cache>/<name>/model_<size>_b<batch>.onnx`; much slower at 518 px, where that
  interpolation runs on every pass.

Timing protocol
---------------
Each implementation is warmed up first (`--warmup` forward passes for PyTorch and
ONNX Runtime; one discarded invocation of the Swift binary).  Then the `--runs`
timed forward passes of each implementation are split over `--rounds` rounds
(default 5) and interleaved in time:

    for each round:
        PyTorch:      runs/rounds forward passes, each timed with time.perf_counter
        ONNX Runtime: runs/rounds forward passes, each timed with time.perf_counter
        Swift:        one invocation of the binary, which times runs/rounds passes itself

so slow drifts of the machine (thermal, other load) hit all three alike.  Between
the blocks the script sleeps `--settle` seconds so that spinning worker threads of
the previous implementation go idle before the next one starts.

The Swift binary is run as (one line, values filled in)

    dino bench --model <cache>/<name> --size <size> --batch <B> --runs <n> --warmup 1 --threads <threads> --json

and, as a fourth implementation in the same rounds (unless `--no-bf16`), with
`--precision bf16` added: the same model with its linear-layer weights rounded to
bfloat16.  After the timing, one `dino bench --precision bf16 --accuracy` run
compares every output of the bf16 model with the fp32 model's (cosine similarity
and largest absolute error per output group: feature maps, last hidden state,
pooler output, hidden states, attentions).

and must print one JSON object on stdout (the last line of stdout that parses as a
JSON object is used; logs should go to stderr):

    {"median_ms": ..., "min_ms": ..., "gflops": ..., "peak_rss_mb": ..., "runs_ms": [...]}

Only `runs_ms` (the n per-pass wall times, model loading and its own warm-up
excluded) is required; it is what the median/min below are computed from, so process
start and model load are never counted.  The warm-up invocation uses
`--runs 1 --warmup <warmup>`.  The binary defaults to `.build/release/dino` under the
repository root; if it does not exist the Swift columns are skipped.

Report
------
Per config: median and min ms of each implementation, GFLOP/s (analytic FLOPs of the
forward pass, see `forward_flops`, divided by the median time), and the median
ratios Swift/ORT and Swift/PyTorch (> 1 means Swift is slower).  The peak RSS of the
Python process (ru_maxrss, cumulative over the configs run so far) and of the Swift
binary (as it reports it) are recorded for information.  `--json OUT` also writes
all of it, including every single timing, as JSON.

With the Swift binary, `dino bench --gemm-rate` (three processes, each figure's median)
also measures the largest GEMM's rate and the FMA peak of the same threads (independent
FMAs with no loads on the vectors of the kernels `dino` chose: AVX-512 where the CPU has
it, else AVX2; on AVX-512 the AVX2 peak is recorded beside it).  Each implementation's
forward rate is printed as a share of that peak, and so is the rate each of issue 23's
targets (`TARGETS`) would need at this run's medians.  The CPU `dino` ran on (CPUID's
brand string, family, model) and the kernels it chose are recorded with every config.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SWIFT_BENCH = REPO_ROOT / ".build" / "release" / "dino"
DEFAULT_CACHE = Path("/tmp/dino-bench-cache")
DEFAULT_CONFIGS = "vits14-reg:224:1,vits14-reg:518:1,vitb14-reg:224:1,vitb14-reg:518:1,vits14-reg:224:8"
DEFAULT_HIGHRES = "vits14-reg:1036:1"

# Issue 23's latency targets on AVX-512 CPUs, (Swift/ORT, Swift/PyTorch) at most, by config label.
TARGETS = {
    "vits14-reg:224:1": (0.8, 0.7),
    "vits14-reg:518:1": (0.7, 0.7),
    "vitb14-reg:224:1": (0.8, 0.7),
    "vitb14-reg:518:1": (0.7, 0.8),
    "vits14-reg:224:8": (0.8, 0.7),
}

# The opset of the TorchScript export (the fixed-size one with the position table frozen).
TORCHSCRIPT_OPSET = 17

# `dino bench --gemm-rate` processes per config (see bench_config).
GEMM_RATE_PROCESSES = 3

PATCH = 14
REGISTERS = 4
MLP_RATIO = 4


@dataclass(frozen=True)
class Arch:
    hidden: int
    layers: int
    heads: int
    # "dinov2" (Dinov2WithRegistersModel) or "dinov3" (DINOv3ViTModel: RoPE, no position table).
    family: str = "dinov2"
    patch: int = PATCH
    registers: int = REGISTERS


ARCHS = {
    "vits14-reg": Arch(hidden=384, layers=12, heads=6),
    "vitb14-reg": Arch(hidden=768, layers=12, heads=12),
    "vitl14-reg": Arch(hidden=1024, layers=24, heads=16),
    "dinov3-vits16": Arch(hidden=384, layers=12, heads=6, family="dinov3", patch=16),
    "dinov3-vitb16": Arch(hidden=768, layers=12, heads=12, family="dinov3", patch=16),
}


@dataclass(frozen=True)
class BenchConfig:
    name: str
    size: int
    batch: int

    @property
    def arch(self) -> Arch:
        return ARCHS[self.name]

    @property
    def label(self) -> str:
        return f"{self.name}:{self.size}:{self.batch}"

    @property
    def tokens(self) -> int:
        return 1 + self.arch.registers + (self.size // self.arch.patch) ** 2


def parse_configs(text: str) -> list[BenchConfig]:
    configs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            name, size, batch = item.split(":")
            config = BenchConfig(name, int(size), int(batch))
        except ValueError:
            raise SystemExit(f"bad config {item!r}: expected name:size:batch, e.g. vits14-reg:224:1")
        if name not in ARCHS:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(ARCHS)}")
        if config.size <= 0 or config.size % config.arch.patch:
            raise SystemExit(f"size {config.size} in {item!r} must be a positive multiple of {config.arch.patch}")
        if config.batch <= 0:
            raise SystemExit(f"batch in {item!r} must be positive")
        configs.append(config)
    if not configs:
        raise SystemExit("no configs given")
    return configs


def seed_of(text: str) -> int:
    """A stable seed per string (Python's hash() is salted per process)."""
    return zlib.crc32(text.encode())


# ---------------------------------------------------------------------------
# FLOPs


def forward_flops(config: BenchConfig) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass over the whole batch.

    Counts the GEMMs (patch embedding, per layer QKV, output projection and the two
    MLP matrices) and the two attention matmuls (Q K^T and P V); norms, softmax,
    GELU, residuals and the position-embedding resampling are ignored.
    """
    arch, batch, tokens = config.arch, config.batch, config.tokens
    d = arch.hidden
    head_dim = d // arch.heads
    patches = (config.size // arch.patch) ** 2

    def gemm(m: int, n: int, k: int) -> float:
        return 2.0 * m * n * k

    rows = batch * tokens
    patch_embed = gemm(batch * patches, d, 3 * arch.patch * arch.patch)
    per_layer = (
        gemm(rows, 3 * d, d)  # QKV
        + gemm(rows, d, d)  # attention output projection
        + gemm(rows, MLP_RATIO * d, d)  # fc1
        + gemm(rows, d, MLP_RATIO * d)  # fc2
        + 2 * 2.0 * batch * arch.heads * tokens * tokens * head_dim  # Q K^T and P V
    )
    return patch_embed + arch.layers * per_layer


# ---------------------------------------------------------------------------
# Model folder


def make_hf_config(arch: Arch):
    from transformers import DINOv3ViTConfig, Dinov2WithRegistersConfig

    if arch.family == "dinov3":
        return DINOv3ViTConfig(
            hidden_size=arch.hidden, num_hidden_layers=arch.layers, num_attention_heads=arch.heads,
            intermediate_size=MLP_RATIO * arch.hidden, hidden_act="gelu", patch_size=arch.patch,
            num_register_tokens=arch.registers, layerscale_value=1.0, layer_norm_eps=1e-5)
    return Dinov2WithRegistersConfig(
        hidden_size=arch.hidden,
        num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads,
        mlp_ratio=MLP_RATIO,
        hidden_act="gelu",
        image_size=518,
        patch_size=PATCH,
        num_channels=3,
        num_register_tokens=REGISTERS,
        qkv_bias=True,
        layerscale_value=1.0,
        use_swiglu_ffn=False,
        layer_norm_eps=1e-6,
    )


@torch.no_grad()
def perturb_(model: torch.nn.Module, seed: int) -> None:
    """Give every parameter that HF initialises to a constant some seeded noise.

    HF init leaves biases and register / mask tokens at zero and norms / layer
    scales at one; the benchmark should not run on such special values.
    """
    gen = torch.Generator().manual_seed(seed)

    def noise(p: torch.Tensor, std: float) -> torch.Tensor:
        return torch.randn(p.shape, generator=gen, dtype=p.dtype) * std

    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "bias":
            p.add_(noise(p, 0.02))
        elif leaf in ("register_tokens", "mask_token", "cls_token"):
            p.add_(noise(p, 0.02))
        elif leaf == "lambda1":  # layer scale
            p.mul_(0.1).add_(noise(p, 0.01))
        elif "norm" in name and leaf == "weight":
            p.add_(noise(p, 0.05))


def ensure_model_dir(config: BenchConfig, cache: Path) -> Path:
    directory = cache / config.name
    if (directory / "config.json").is_file():
        print(f"  weights: reusing {directory}")
        return directory
    from transformers import AutoModel

    print(f"  weights: creating random-weight {config.name} in {directory}")
    torch.manual_seed(seed_of(config.name))
    model = AutoModel.from_config(make_hf_config(config.arch)).eval()
    perturb_(model, seed_of(config.name) + 1)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    del model
    gc.collect()
    return directory


def load_torch_model(directory: Path):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(directory, attn_implementation="sdpa", dtype=torch.float32)
    return model.eval()


def make_input(config: BenchConfig) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed_of(config.label))
    return torch.randn(config.batch, 3, config.size, config.size, generator=gen, dtype=torch.float32)


# ---------------------------------------------------------------------------
# ONNX


class LastHiddenState(torch.nn.Module):
    """Exposes only `last_hidden_state`, so the ONNX graph has a single output."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).last_hidden_state


def onnx_path(config: BenchConfig, directory: Path, frozen: bool) -> Path:
    suffix = f"_frozen_ts{TORCHSCRIPT_OPSET}" if frozen else ""
    return directory / f"model_{config.size}_b{config.batch}{suffix}.onnx"


@torch.no_grad()
def freeze_position_table(model, pixel_values: torch.Tensor):
    """`model` with its position table interpolated once to the size of `pixel_values` and held as a
    buffer, so that an export at that size carries the table as a constant instead of the
    interpolation. The same function at this size: the output is checked against PyTorch's.
    DINOv3 has no table (its rotations follow the input size, traced as constants at a fixed size)."""
    embeddings = model.embeddings
    if not hasattr(embeddings, "interpolate_pos_encoding"):
        return model
    height, width = pixel_values.shape[-2:]
    tokens = embeddings.patch_embeddings(pixel_values[:1])
    table = embeddings.interpolate_pos_encoding(tokens, height, width).detach().clone()
    embeddings.register_buffer("frozen_position_table", table, persistent=False)
    embeddings.interpolate_pos_encoding = lambda _embeddings, _height, _width: embeddings.frozen_position_table
    return model


def ensure_onnx(config: BenchConfig, model, pixel_values: torch.Tensor, directory: Path, opset: int, frozen: bool) -> Path:
    path = onnx_path(config, directory, frozen)
    if path.is_file():
        print(f"  onnx:    reusing {path.name}")
        return path
    how = (f"position table frozen, TorchScript exporter (dynamo=False), opset {TORCHSCRIPT_OPSET}" if frozen
           else f"dynamo=True, opset {opset}")
    print(f"  onnx:    exporting {path.name} (torch.onnx.export, {how}) ...", flush=True)
    start = time.perf_counter()
    try:
        common = {"input_names": ["pixel_values"], "output_names": ["last_hidden_state"]}
        with torch.no_grad():
            if frozen:
                export_model = freeze_position_table(load_torch_model(directory), pixel_values)
                torch.onnx.export(LastHiddenState(export_model).eval(), (pixel_values,), str(path), **common,
                                  opset_version=TORCHSCRIPT_OPSET, dynamo=False, do_constant_folding=True)
            else:
                torch.onnx.export(LastHiddenState(model).eval(), (pixel_values,), str(path), **common, opset_version=opset,
                                  dynamo=True, external_data=True, optimize=True, verbose=False)
    except BaseException:
        for leftover in (path, path.with_name(path.name + ".data")):
            leftover.unlink(missing_ok=True)
        raise
    print(f"  onnx:    exported in {time.perf_counter() - start:.1f} s")
    return path


def make_ort_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------
# Runners: each has warm(n) and timed(n) -> list of ms


class TorchRunner:
    name = "pytorch"

    def __init__(self, model, pixel_values: torch.Tensor):
        self.model = model
        self.pixel_values = pixel_values

    def forward(self) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(pixel_values=self.pixel_values).last_hidden_state

    def warm(self, n: int) -> None:
        for _ in range(n):
            self.forward()

    def timed(self, n: int) -> list[float]:
        times = []
        with torch.inference_mode():
            for _ in range(n):
                start = time.perf_counter()
                self.model(pixel_values=self.pixel_values)
                times.append((time.perf_counter() - start) * 1e3)
        return times


class OrtRunner:
    def __init__(self, session, pixel_values: np.ndarray, name: str = "ort"):
        self.name = name
        self.session = session
        self.feed = {"pixel_values": pixel_values}

    def forward(self) -> np.ndarray:
        return self.session.run(["last_hidden_state"], self.feed)[0]

    def warm(self, n: int) -> None:
        for _ in range(n):
            self.forward()

    def timed(self, n: int) -> list[float]:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            self.session.run(["last_hidden_state"], self.feed)
            times.append((time.perf_counter() - start) * 1e3)
        return times


class SwiftError(RuntimeError):
    pass


class SwiftRunner:
    """Runs the Swift benchmark binary; it reports its own per-pass timings."""

    name = "swift"

    def __init__(self, binary: Path, config: BenchConfig, directory: Path, threads: int, timeout: float,
                 precision: str = "fp32"):
        self.binary = binary
        self.precision = precision
        self.name = "swift" if precision == "fp32" else f"swift_{precision}"
        self.config = config
        self.directory = directory
        self.threads = threads
        self.timeout = timeout
        self.reports: list[dict] = []  # every JSON object the binary printed

    def command(self, runs: int, warmup: int) -> list[str]:
        return [
            str(self.binary), "bench",
            "--model", str(self.directory),
            "--precision", self.precision,
            "--size", str(self.config.size),
            "--batch", str(self.config.batch),
            "--runs", str(runs),
            "--warmup", str(warmup),
            "--threads", str(self.threads),
            "--json",
        ]  # fmt: skip

    def invoke(self, runs: int, warmup: int) -> dict:
        cmd = self.command(runs, warmup)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise SwiftError(f"timed out after {self.timeout:.0f} s: {' '.join(cmd)}")
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
            raise SwiftError(f"exit code {proc.returncode}: {' '.join(cmd)}\n{tail}")
        report = None
        for line in reversed(proc.stdout.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    report = json.loads(line)
                    break
                except json.JSONDecodeError:
                    continue
        if report is None:
            try:  # maybe pretty-printed over several lines
                report = json.loads(proc.stdout)
            except json.JSONDecodeError:
                raise SwiftError(f"no JSON object on stdout of: {' '.join(cmd)}\n{proc.stdout[-2000:]}")
        runs_ms = report.get("runs_ms")
        if not isinstance(runs_ms, list) or not runs_ms:
            raise SwiftError(f"JSON without a non-empty 'runs_ms' list: {report}")
        if len(runs_ms) != runs:
            print(f"  note: swift printed {len(runs_ms)} timings, asked for {runs}")
        self.reports.append(report)
        return report

    def warm(self, n: int) -> None:
        self.invoke(runs=1, warmup=max(n, 0))

    def timed(self, n: int) -> list[float]:
        return [float(t) for t in self.invoke(runs=n, warmup=1)["runs_ms"]]

    def invoke_extra(self, extra: list[str], runs: int, warmup: int) -> dict:
        """invoke() with extra flags (e.g. --gemm-rate)."""
        saved = self.command
        self.command = lambda runs, warmup: saved(runs, warmup) + extra
        try:
            return self.invoke(runs=runs, warmup=warmup)
        finally:
            self.command = saved


# ---------------------------------------------------------------------------
# Benchmark


def split_runs(runs: int, rounds: int) -> list[int]:
    rounds = max(1, min(rounds, runs))
    base, extra = divmod(runs, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


def summarize(times: list[float], flops: float) -> dict:
    median = statistics.median(times)
    return {
        "median_ms": median,
        "min_ms": min(times),
        "mean_ms": statistics.fmean(times),
        "stdev_ms": statistics.stdev(times) if len(times) > 1 else 0.0,
        "gflops": flops / (median * 1e-3) / 1e9,
        "runs_ms": times,
    }


def own_peak_rss_mb() -> float:
    """This process's peak RSS from /proc (VmHWM). Unlike ru_maxrss it starts afresh at exec, so a
    probe started from this (large) process does not inherit the parent's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    return python_peak_rss_mb()


def python_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def rss_probe(config: BenchConfig, args, runs: int = 1) -> dict | None:
    """Peak RSS in MB of a fresh Python process that loads the model and runs `runs` forward passes
    (`--probe` mode of this script); also prints the probe's median latency."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", config.label, "--cache", str(args.cache),
           "--threads", str(args.threads), "--runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  PyTorch probe failed: {proc.stderr.strip()[-500:]}")
        return None
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def probe_main(label: str, cache: Path, threads: int, runs: int) -> int:
    """One job in this process: load, `runs` forward passes, print peak RSS and the median time."""
    torch.set_num_threads(threads)
    config = parse_configs(label)[0]
    model = load_torch_model(ensure_model_dir(config, cache))
    pixel_values = make_input(config)
    times = []
    with torch.inference_mode():
        for _ in range(runs):
            start = time.perf_counter()
            model(pixel_values=pixel_values)
            times.append((time.perf_counter() - start) * 1e3)
    print(json.dumps({"peak_rss_mb": own_peak_rss_mb(), "median_ms": statistics.median(times)}))
    return 0


def highres_section(label: str, args, swift_binary: Path | None) -> dict:
    """The high-resolution job: latency and peak RSS of one forward pass each, fresh processes."""
    config = parse_configs(label)[0]
    print(f"\n=== high resolution {config.label} ({config.tokens} tokens) ===")
    directory = ensure_model_dir(config, args.cache)
    out: dict = {"config": config.label, "tokens": config.tokens}
    probe = rss_probe(config, args, runs=2)
    if probe:
        out["pytorch"] = probe
        print(f"  PyTorch: median {probe['median_ms']:.0f} ms, peak RSS {probe['peak_rss_mb']:.0f} MB")
    if swift_binary is not None:
        try:
            report = SwiftRunner(swift_binary, config, directory, args.threads, args.swift_timeout).invoke(runs=2, warmup=0)
            out["swift"] = {"median_ms": report["median_ms"], "peak_rss_mb": report["peak_rss_mb"]}
            print(f"  Swift:   median {report['median_ms']:.0f} ms, peak RSS {report['peak_rss_mb']:.0f} MB")
        except SwiftError as err:
            print(f"  Swift failed: {err}")
    return out


PYTHON_FEATURES_SCRIPT = """
import sys, torch
from PIL import Image
from safetensors.torch import save_file
from transformers import BitImageProcessor, Dinov2WithRegistersModel
torch.set_num_threads(int(sys.argv[4]))
processor = BitImageProcessor(size={"height": 224, "width": 224}, do_center_crop=False, resample=3)
model = Dinov2WithRegistersModel.from_pretrained(sys.argv[1]).eval()
pixels = processor(Image.open(sys.argv[2]).convert("RGB"), return_tensors="pt")["pixel_values"]
with torch.inference_mode():
    out = model(pixel_values=pixels)
save_file({"last_hidden_state": out.last_hidden_state.clone(), "pooler_output": out.pooler_output.clone()}, sys.argv[3])
"""


def whole_process_section(args, swift_binary: Path | None, runs: int = 5) -> dict:
    """`dino features` on one 224 px image, start to file written, against the same job in Python."""
    config = parse_configs("vits14-reg:224:1")[0]
    directory = ensure_model_dir(config, args.cache)
    image = REPO_ROOT / "Examples" / "images" / "coffee.png"
    dino = swift_binary.parent / "dino" if swift_binary is not None else None
    print(f"\n=== whole process: features of one 224 px image ({image.name}), {runs} runs each ===")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "features.py"
        script.write_text(PYTHON_FEATURES_SCRIPT)
        def wall(cmd: list[str]) -> float:
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            return (time.perf_counter() - start) * 1e3
        python_cmd = [sys.executable, str(script), str(directory), str(image), str(Path(tmp) / "py.safetensors"), str(args.threads)]
        out: dict = {}
        times_py = [wall(python_cmd) for _ in range(runs)]
        out["python_ms"] = statistics.median(times_py)
        if dino is not None and dino.is_file():
            swift_cmd = [str(dino), "features", "--model", str(directory), str(image), "--size", "224x224",
                         "--output-dir", str(Path(tmp) / "swift"), "--threads", str(args.threads)]
            times_swift = [wall(swift_cmd) for _ in range(runs)]
            out["swift_ms"] = statistics.median(times_swift)
            out["ratio"] = out["swift_ms"] / out["python_ms"]
            print(f"  Python script {out['python_ms']:.0f} ms, dino features {out['swift_ms']:.0f} ms ({out['ratio']:.2f}x)")
        else:
            print(f"  Python script {out['python_ms']:.0f} ms; `dino` not built")
    return out


def bench_config(config: BenchConfig, args, swift_binary: Path | None) -> dict:
    print(f"\n=== {config.label}  (hidden {config.arch.hidden}, {config.arch.layers} layers, "
          f"{config.arch.heads} heads, {config.tokens} tokens) ===")  # fmt: skip
    flops = forward_flops(config)
    result: dict = {
        "config": config.label,
        "model": config.name,
        "size": config.size,
        "batch": config.batch,
        "tokens": config.tokens,
        "gflop_per_image": flops / config.batch / 1e9,
        "gflop_per_forward": flops / 1e9,
    }
    print(f"  forward: {result['gflop_per_image']:.3f} GFLOP per image, {result['gflop_per_forward']:.3f} per batch")

    directory = ensure_model_dir(config, args.cache)
    result["model_dir"] = str(directory)
    model = load_torch_model(directory)
    pixel_values = make_input(config)
    runners = [TorchRunner(model, pixel_values)]
    reference = runners[0].forward().numpy()
    scale = float(np.max(np.abs(reference)))
    result["pytorch_max_abs"] = scale
    exports = [("ort", True)] + ([] if args.no_ort_dynamo else [("ort_dynamo", False)])
    for name, frozen in exports:
        path = ensure_onnx(config, model, pixel_values, directory, args.opset, frozen)
        result[f"{name}_onnx_path"] = str(path)
        runner = OrtRunner(make_ort_session(path, args.threads), pixel_values.numpy(), name)
        # Correctness: ORT vs PyTorch.
        onnx_out = runner.forward()
        if onnx_out.shape != reference.shape:
            raise SystemExit(f"{name} output shape {onnx_out.shape} != PyTorch {reference.shape}")
        diff = float(np.max(np.abs(onnx_out - reference)))
        result[f"{name}_vs_pytorch_max_abs_diff"] = diff
        print(f"  check:   {name} vs PyTorch last_hidden_state max abs diff {diff:.3e} (max |value| {scale:.3f})")
        if not math.isfinite(diff) or diff > 1e-2 * max(scale, 1.0):
            print(f"  WARNING: {name} and PyTorch disagree more than expected")
        runners.append(runner)

    swift = None
    if swift_binary is not None:
        swift = SwiftRunner(swift_binary, config, directory, args.threads, args.swift_timeout)
        print("  swift:   " + " ".join(swift.command(runs=split_runs(args.runs, args.rounds)[0], warmup=1)))
        runners.append(swift)
        if not args.no_bf16:
            runners.append(SwiftRunner(swift_binary, config, directory, args.threads, args.swift_timeout, precision="bf16"))

    # Warm-up.
    for runner in list(runners):
        try:
            runner.warm(args.warmup)
        except SwiftError as err:
            print(f"  {runner.name} warm-up failed, skipping it: {err}")
            runners.remove(runner)
            result[f"{runner.name}_error"] = str(err)
        time.sleep(args.settle)

    # Interleaved rounds.
    times: dict[str, list[float]] = {runner.name: [] for runner in runners}
    per_round = split_runs(args.runs, args.rounds)
    for index, n in enumerate(per_round):
        for runner in list(runners):
            try:
                times[runner.name] += runner.timed(n)
            except SwiftError as err:
                print(f"  {runner.name} failed in round {index + 1}, dropping it: {err}")
                runners.remove(runner)
                times.pop(runner.name, None)
                result[f"{runner.name}_error"] = str(err)
            time.sleep(args.settle)
        status = "  ".join(f"{name} {statistics.median(t[-n:]):.2f}" for name, t in times.items() if t)
        print(f"  round {index + 1}/{len(per_round)} ({n} runs each), medians ms: {status}")

    result["impls"] = {name: summarize(t, flops) for name, t in times.items() if t}
    for runner in runners:
        if isinstance(runner, SwiftRunner) and runner.name in result["impls"]:
            reported_rss = [r["peak_rss_mb"] for r in runner.reports if isinstance(r.get("peak_rss_mb"), (int, float))]
            reported_gflops = [r["gflops"] for r in runner.reports if isinstance(r.get("gflops"), (int, float))]
            result["impls"][runner.name]["peak_rss_mb"] = max(reported_rss) if reported_rss else None
            result["impls"][runner.name]["reported_gflops"] = statistics.median(reported_gflops) if reported_gflops else None
            result["impls"][runner.name]["reports"] = runner.reports
            machine = {k: runner.reports[-1][k] for k in ("cpu", "cpu_family", "cpu_model", "isa", "avx512_bf16", "amx")
                       if runner.reports and k in runner.reports[-1]}
            if machine:
                result["dino_machine"] = machine
    impls = result["impls"]
    ratios = {}
    for mine in ("swift", "swift_bf16"):
        for other in ("ort", "ort_dynamo", "pytorch", "swift"):
            if mine in impls and other in impls and other != mine:
                ratios[f"{mine}/{other}"] = impls[mine]["median_ms"] / impls[other]["median_ms"]
    result["ratios_median"] = ratios
    result["python_peak_rss_mb"] = python_peak_rss_mb()

    # Peak memory of the same job in a fresh process each (load the model, one forward pass).
    probe = rss_probe(config, args)
    result["pytorch_job_peak_rss_mb"] = probe["peak_rss_mb"] if probe else None
    if swift_binary is not None and "swift" in impls:
        gemm = SwiftRunner(swift_binary, config, directory, args.threads, args.swift_timeout)
        try:
            # Three processes, each field's median: one measurement can fall into one of the
            # VM's slow spells (about a second), which halves the FMA peak and the GEMM rates.
            reports = [gemm.invoke_extra(["--gemm-rate"], runs=1, warmup=0) for _ in range(GEMM_RATE_PROCESSES)]
            keys = [k for k in reports[0] if k.startswith(("gemm_", "fma_peak_")) and all(k in r for r in reports)]
            report = {k: statistics.median(r[k] for r in reports) for k in keys}
            best = max(report.get(k, 0.0) for k in ("gemm_gflops", "gemm_gflops_openblas", "gemm_gflops_packed"))
            result["gemm"] = {k: report[k] for k in report if k.startswith("gemm_")}
            result["gemm"]["forward_fraction_of_best_gemm"] = impls["swift"]["gflops"] / best if best > 0 else None
            result["gemm"]["processes"] = [{k: r[k] for k in keys} for r in reports]
            peak = report.get("fma_peak_gflops")
            if peak:
                result["fma_peak"] = fma_peak_section(result, peak, best)
            job = SwiftRunner(swift_binary, config, directory, args.threads, args.swift_timeout).invoke(runs=1, warmup=0)
            result["swift_job_peak_rss_mb"] = job.get("peak_rss_mb")
        except SwiftError as err:
            print(f"  swift GEMM-rate / RSS run failed: {err}")
    if swift_binary is not None and "swift_bf16" in impls:
        accuracy = SwiftRunner(swift_binary, config, directory, args.threads, args.swift_timeout, precision="bf16")
        try:
            report = accuracy.invoke_extra(["--accuracy"], runs=1, warmup=0)
            result["bf16_accuracy"] = {k: report[k] for k in report if k.startswith(("cosine_min_", "max_abs_error_"))}
            result["bf16_accuracy"]["per_output"] = report.get("accuracy")
            result["swift_bf16_job_peak_rss_mb"] = report.get("peak_rss_mb")
        except SwiftError as err:
            print(f"  swift bf16 accuracy run failed: {err}")

    print_table(result)

    del runners, model
    gc.collect()
    return result


def fma_peak_section(result: dict, peak: float, best_gemm: float) -> dict:
    """Each implementation's forward rate, the best GEMM rate and each target's required rate as
    fractions of the FMA peak the `dino` binary measured on the same threads (the FMA loop of the
    kernels it chose: AVX-512 or AVX2, no loads)."""
    impls, flops = result["impls"], result["gflop_per_forward"]
    out: dict = {"gflops": peak, "best_gemm_fraction": best_gemm / peak}
    out["forward_fraction"] = {name: impls[name]["gflops"] / peak for name in impls}
    targets = TARGETS.get(result["config"])
    if targets:
        needs = {}
        for other, bound in zip(("ort", "pytorch"), targets):
            if other in impls:
                ms = bound * impls[other]["median_ms"]
                needs[other] = {"bound": bound, "ms": ms, "gflops": flops / ms * 1e3,
                                "fraction_of_peak": flops / ms * 1e3 / peak}
        out["targets_need"] = needs
    return out


def print_table(result: dict) -> None:
    labels = {"pytorch": "PyTorch (sdpa)", "ort": "ORT (frozen)", "ort_dynamo": "ORT (dynamo)", "swift": "Swift",
              "swift_bf16": "Swift bf16"}
    impls = result["impls"]
    print(f"\n  {result['config']}  ({result['gflop_per_image']:.3f} GFLOP/image)")
    print(f"  {'implementation':<16}{'median ms':>11}{'min ms':>10}{'GFLOP/s':>10}{'runs':>6}")
    for name in ("pytorch", "ort", "ort_dynamo", "swift", "swift_bf16"):
        if name in impls:
            s = impls[name]
            print(f"  {labels[name]:<16}{s['median_ms']:>11.2f}{s['min_ms']:>10.2f}{s['gflops']:>10.1f}"
                  f"{len(s['runs_ms']):>6}")  # fmt: skip
        else:
            print(f"  {labels[name]:<16}{'-':>11}{'-':>10}{'-':>10}{'-':>6}")
    for key, value in result["ratios_median"].items():
        print(f"  {key.replace('swift', 'Swift').replace('/ort_dynamo', '/ORT dynamo').replace('/ort', '/ORT').replace('pytorch', 'PyTorch')} (median): "
              f"{value:.2f}x")  # fmt: skip
    probe, job = result.get("pytorch_job_peak_rss_mb"), result.get("swift_job_peak_rss_mb")
    if probe and job:
        print(f"  peak RSS, same job in a fresh process: PyTorch {probe:.0f} MB, Swift {job:.0f} MB ({job / probe:.2f}x)")
    job16 = result.get("swift_bf16_job_peak_rss_mb")
    if probe and job16:
        print(f"  peak RSS, Swift bf16: {job16:.0f} MB ({job16 / probe:.2f}x PyTorch)")
    accuracy = result.get("bf16_accuracy")
    if accuracy:
        groups = ("feature_maps", "last_hidden_state", "pooler_output", "hidden_states", "attentions")
        print("  bf16 vs fp32: " + ", ".join(
            f"{g} cos {accuracy.get('cosine_min_' + g, float('nan')):.6f} max|err| {accuracy.get('max_abs_error_' + g, float('nan')):.2e}"
            for g in groups))
    gemm = result.get("gemm")
    if gemm and gemm.get("forward_fraction_of_best_gemm"):
        print(f"  largest GEMM {gemm['gemm_m']:.0f}x{gemm['gemm_n']:.0f}x{gemm['gemm_k']:.0f}: "
              f"{gemm['gemm_gflops']:.1f} GFLOP/s OpenBLAS row split, {gemm['gemm_gflops_openblas']:.1f} OpenBLAS "
              f"threads, {gemm.get('gemm_gflops_packed', float('nan')):.1f} packed kernel; "
              f"the forward pass runs at {100 * gemm['forward_fraction_of_best_gemm']:.0f}% of the best")
    peak = result.get("fma_peak")
    if peak:
        shares = ", ".join(f"{labels[name]} {100 * share:.0f}%" for name, share in peak["forward_fraction"].items())
        isa = (result.get("dino_machine") or {}).get("isa", "?")
        print(f"  FMA peak ({isa} FMAs, no loads, same threads): {peak['gflops']:.1f} GFLOP/s; forward passes at "
              f"{shares} of it; best GEMM {100 * peak['best_gemm_fraction']:.0f}%")  # fmt: skip
        for other, need in peak.get("targets_need", {}).items():
            print(f"  Swift/{'ORT' if other == 'ort' else 'PyTorch'} <= {need['bound']}: needs {need['ms']:.1f} ms, "
                  f"{need['gflops']:.1f} GFLOP/s = {100 * need['fraction_of_peak']:.0f}% of the FMA peak")  # fmt: skip


# ---------------------------------------------------------------------------
# Machine / versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpuinfo_field(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == key:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    wanted = ("avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile",
              "amx_bf16")
    flags = set((cpuinfo_field("flags") or "").split())
    return {
        "cpu": cpu_model(),
        "cpu_family": cpuinfo_field("cpu family"),
        "cpu_model": cpuinfo_field("model"),
        "cpu_flags": [flag for flag in wanted if flag in flags],
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for package in ("torch", "transformers", "safetensors", "numpy", "onnx", "onnxruntime", "onnxscript", "onnx_ir"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"name:size:batch,... (default {DEFAULT_CONFIGS})")
    parser.add_argument("--runs", type=int, default=20, help="timed forward passes per implementation (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up passes per implementation (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds the runs are split into (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="compute threads for every implementation (default 2)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"weights/ONNX cache (default {DEFAULT_CACHE})")
    parser.add_argument("--swift-bench", type=Path, default=None,
                        help=f"the `dino` binary (default {DEFAULT_SWIFT_BENCH.relative_to(REPO_ROOT)} "
                             "under the repo root, if it exists)")  # fmt: skip
    parser.add_argument("--no-swift", action="store_true", help="do not run the Swift binary")
    parser.add_argument("--no-bf16", action="store_true", help="do not run the Swift bf16 column")
    parser.add_argument("--swift-timeout", type=float, default=1800.0, help="seconds per Swift invocation")
    parser.add_argument("--settle", type=float, default=0.2, help="pause in s between implementation blocks")
    parser.add_argument("--opset", type=int, default=20, help="ONNX opset for the dynamo export (default 20)")
    parser.add_argument("--no-ort-dynamo", action="store_true", help="do not run the dynamo export's ORT column")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write all results to OUT")
    parser.add_argument("--highres", default=DEFAULT_HIGHRES, help=f"high-resolution job, '' to skip (default {DEFAULT_HIGHRES})")
    parser.add_argument("--no-whole-process", action="store_true", help="skip the whole-process `dino features` comparison")
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0 or args.rounds < 1 or args.threads < 1:
        parser.error("--runs, --rounds, --threads must be >= 1 and --warmup >= 0")
    if args.probe:
        return probe_main(args.probe, args.cache, args.threads, args.runs)
    configs = parse_configs(args.configs)

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    swift_binary: Path | None = None
    if args.no_swift:
        print("note: --no-swift given, Swift is not run")
    else:
        candidate = args.swift_bench if args.swift_bench is not None else DEFAULT_SWIFT_BENCH
        if candidate.is_file() and os.access(candidate, os.X_OK):
            swift_binary = Path(os.path.abspath(candidate))
        else:
            print(f"note: Swift binary {candidate} not found (run `swift build -c release`); skipping Swift")

    machine, vers = machine_info(), versions()
    print(f"machine: {machine['cpu']} (family {machine['cpu_family']}, model {machine['cpu_model']}; "
          f"{' '.join(machine['cpu_flags'])}), {machine['logical_cores']} logical cores "
          f"({machine['usable_cores']} usable), {machine['platform']}")  # fmt: skip
    print("versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if v is not None))
    print(f"settings: threads {args.threads}, runs {args.runs} in {min(args.rounds, args.runs)} rounds, "
          f"warmup {args.warmup}, float32, cache {args.cache}, swift {swift_binary or '-'}")  # fmt: skip

    results = [bench_config(config, args, swift_binary) for config in configs]
    highres = highres_section(args.highres, args, swift_binary) if args.highres else None
    whole = None if args.no_whole_process else whole_process_section(args, swift_binary)

    if len(results) > 1:
        print("\n=== summary (median ms) ===")
        print(f"  {'config':<20}{'PyTorch':>9}{'ORT':>9}{'ORT dyn':>9}{'Swift':>9}{'/ORT':>7}{'/PT':>7}"
              f"{'bf16':>9}{'fp32/bf16':>10}{'%GEMM':>7}{'%pk':>6}{'PT tgt %pk':>11}")
        for r in results:
            cell = lambda name: f"{r['impls'][name]['median_ms']:>9.1f}" if name in r["impls"] else f"{'-':>9}"
            ratio = lambda key, w: f"{r['ratios_median'][key]:>{w}.2f}" if key in r["ratios_median"] else f"{'-':>{w}}"
            speedup = r["ratios_median"].get("swift_bf16/swift")
            peak = r.get("fma_peak") or {}
            share = peak.get("forward_fraction", {}).get("swift")
            need = peak.get("targets_need", {}).get("pytorch", {}).get("fraction_of_peak")
            gemm = (r.get("gemm") or {}).get("forward_fraction_of_best_gemm")
            percent = lambda value, w: f"{100 * value:>{w}.0f}" if value is not None else f"{'-':>{w}}"
            print(f"  {r['config']:<20}{cell('pytorch')}{cell('ort')}{cell('ort_dynamo')}{cell('swift')}"
                  f"{ratio('swift/ort', 7)}{ratio('swift/pytorch', 7)}{cell('swift_bf16')}"
                  f"{(f'{1 / speedup:>10.2f}' if speedup else f'{chr(45):>10}')}"
                  f"{percent(gemm, 7)}{percent(share, 6)}{percent(need, 11)}")  # fmt: skip
        print("  ORT: the frozen fixed-size export (ratios against it); fp32/bf16: bf16's speed-up; %GEMM: the")
        print("  forward's share of the best sgemm rate on the largest GEMM; %pk: share of the FMA peak;")
        print("  PT tgt: the Swift/PyTorch target's rate at PyTorch's median, as a share of the FMA peak")

    if args.json is not None:
        document = {
            "machine": machine,
            "versions": vers,
            "settings": {
                "threads": args.threads,
                "runs": args.runs,
                "warmup": args.warmup,
                "rounds": min(args.rounds, args.runs),
                "settle_s": args.settle,
                "opset": args.opset,
                "onnx_exporters": {
                    "ort": f"position table frozen, torch.onnx.export(dynamo=False, opset_version={TORCHSCRIPT_OPSET})",
                    "ort_dynamo": f"torch.onnx.export(dynamo=True, opset_version={args.opset})",
                },
                "cache": str(args.cache),
                "swift_bench": str(swift_binary) if swift_binary else None,
            },
            "results": results,
            "highres": highres,
            "whole_process": whole,
            "python_peak_rss_mb": python_peak_rss_mb(),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
