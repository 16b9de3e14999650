#!/usr/bin/env python3
# requires: python>=3.11
# requires: torch==2.15.0 safetensors==0.8.0
"""Reference outputs of the PyTorch layers the dense heads use, for Tests/DinoLayersTests.

Run from the repository root:  python Scripts/make_layer_fixtures.py
Writes Tests/DinoLayersTests/Fixtures/layers.safetensors (deterministic, float32): for every case
`<case>.input`, the layer's parameters `<case>.weight` / `.bias` / BatchNorm statistics, and
`<case>.output` computed by torch.nn / torch.nn.functional.
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "Tests" / "DinoLayersTests" / "Fixtures" / "layers.safetensors"


def main() -> None:
    torch.manual_seed(0)
    ref = {}

    def put(name, **tensors):
        for key, value in tensors.items():
            ref[f"{name}.{key}"] = value.detach().float().contiguous().clone()

    # Convolutions: (name, in, out, kernel, stride, padding, input H, W)
    for name, cin, cout, k, s, p, h, w in [
        ("conv1x1", 6, 5, 1, 1, 0, 7, 9),
        ("conv3x3", 4, 6, 3, 1, 1, 8, 11),
        ("conv3x3_stride2", 5, 3, 3, 2, 1, 9, 10),
        ("conv4x4_stride4", 3, 4, 4, 4, 0, 8, 12),
    ]:
        conv = torch.nn.Conv2d(cin, cout, k, stride=s, padding=p)
        x = torch.randn(2, cin, h, w)
        put(name, input=x, weight=conv.weight, bias=conv.bias, output=conv(x),
            params=torch.tensor([k, s, p], dtype=torch.float32))

    for name, cin, cout, k, s, p, op, h, w in [
        ("deconv4x4_stride4", 4, 3, 4, 4, 0, 0, 3, 5),
        ("deconv2x2_stride2", 5, 6, 2, 2, 0, 0, 4, 3),
        ("deconv3x3_stride2_pad1", 3, 2, 3, 2, 1, 1, 4, 5),
    ]:
        deconv = torch.nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, output_padding=op)
        x = torch.randn(2, cin, h, w)
        put(name, input=x, weight=deconv.weight, bias=deconv.bias, output=deconv(x),
            params=torch.tensor([k, s, p, op], dtype=torch.float32))

    bn = torch.nn.BatchNorm2d(5, eps=1e-5).eval()
    with torch.no_grad():
        bn.weight.copy_(torch.randn(5))
        bn.bias.copy_(torch.randn(5))
        bn.running_mean.copy_(torch.randn(5))
        bn.running_var.copy_(torch.rand(5) + 0.5)
    x = torch.randn(2, 5, 4, 6)
    put("batchnorm", input=x, weight=bn.weight, bias=bn.bias, running_mean=bn.running_mean,
        running_var=bn.running_var, output=bn(x))

    linear = torch.nn.Linear(7, 4)
    x = torch.randn(3, 5, 7)
    put("linear", input=x, weight=linear.weight, bias=linear.bias, output=linear(x))

    x = torch.randn(2, 3, 5, 7)
    for name, size, align in [
        ("bilinear_up4", (20, 28), False),
        ("bilinear_up2_align", (10, 14), True),
        ("bilinear_odd", (13, 4), False),
        ("bilinear_odd_align", (9, 17), True),
        ("bilinear_down", (3, 2), False),
    ]:
        put(name, input=x, output=F.interpolate(x, size=size, mode="bilinear", align_corners=align))

    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file(ref, str(OUT))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(ref)} tensors)")


if __name__ == "__main__":
    with torch.no_grad():
        main()
