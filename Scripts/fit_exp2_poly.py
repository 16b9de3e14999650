#!/usr/bin/env python3
# requires: python>=3.11, numpy==2.4.6 (the version this was run with)
"""Fit the polynomial for 2^f, f in [-1/2, 1/2], that the AVX2 softmax kernels use
(exp2_nonpositive256 in Sources/CDinoKernels/avx2_math.h).

The fit minimises the largest relative error |p(f) / 2^f - 1| on Chebyshev nodes of the
interval: weighted least squares, with each node's weight multiplied by a power of its last
error (Lawson reweighting) so that the error levels out towards the minimax solution.

It prints the coefficients (highest power first, as the Horner loop in C uses them), the
relative error in double precision, and the relative error of the float32 coefficients
evaluated in float32 by fused multiply-adds, as the kernel does, on a dense grid.

    python Scripts/fit_exp2_poly.py [--degree 5]
"""
import argparse

import numpy as np


def fit(degree: int, nodes: int = 4001, iterations: int = 60) -> np.ndarray:
    f = 0.5 * np.cos(np.linspace(0.0, np.pi, nodes))
    target = np.exp2(f)
    weight = np.ones_like(f)
    for _ in range(iterations):
        # Rows scaled by 1 / 2^f: the residual is then the relative error.
        design = np.vander(f, degree + 1) / target[:, None]
        coefficients, *_ = np.linalg.lstsq(design * weight[:, None], weight, rcond=None)
        error = np.abs(np.polyval(coefficients, f) / target - 1.0)
        weight = weight * (error / error.max()) ** 0.3 + 1e-12
    return coefficients


def float32_horner(coefficients: np.ndarray, f: np.ndarray) -> np.ndarray:
    """p(f) with float32 coefficients, each step one rounding (a fused multiply-add)."""
    c32 = coefficients.astype(np.float32).astype(np.float64)
    x = f.astype(np.float32).astype(np.float64)
    p = np.full_like(x, c32[0])
    for c in c32[1:]:
        p = (p * x + c).astype(np.float32).astype(np.float64)
    return p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degree", type=int, default=5)
    args = parser.parse_args()
    coefficients = fit(args.degree)
    grid = np.linspace(-0.5, 0.5, 200_001)
    exact = np.abs(np.polyval(coefficients, grid) / np.exp2(grid) - 1.0).max()
    single = np.abs(float32_horner(coefficients, grid) / np.exp2(grid) - 1.0).max()
    print("coefficients (highest power first):")
    print(", ".join(f"{float(np.float32(c)):.15e}f" for c in coefficients))
    print(f"relative error: {exact:.3g} in double precision, {single:.3g} in float32")


if __name__ == "__main__":
    main()
