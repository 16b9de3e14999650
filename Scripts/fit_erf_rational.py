#!/usr/bin/env python3
# requires: python>=3.11, numpy==2.4.6, scipy==1.17.1 (the versions this was run with)
"""Fit the rational approximation of erf that the AVX2 GELU kernel uses (avx2_math.h).

    erf(z) ~ z * P(z^2) / Q(z^2)  for |z| <= ZMAX,  with Q(0) = 1,

z clamped to [-ZMAX, ZMAX] and the quotient to [-1, 1].

P has 6 coefficients and Q 6 (degree 11 over degree 10 in z). The fit minimises the
largest absolute error on [0, ZMAX] by linearised least squares (the equation
z P - erf(z) Q = 0, weighted by 1 / |Q| of the previous iterate, Sanathanan-Koerner), with
Lawson reweighting towards the minimax solution after the first iterations.

It prints the coefficients (highest power first, as the Horner loop in C uses them), the
fit error in double precision, and the worst error of GELU(x) = x/2 (1 + erf(x / sqrt 2))
over [-12, 12] in steps of 1/1024 when evaluated in float32 the way the kernel does,
relative to max(1, |GELU|) (what Tests/DinoKernelsTests checks, bound 1e-6).

    python Scripts/fit_erf_rational.py
"""
import math

import numpy as np
from scipy.special import erf

ZMAX = 3.92  # float32 erf(3.92) rounds to 1 - 6e-8: beyond it the result is +-1
P_TERMS, Q_TERMS = 6, 6


def fit(p_terms: int, q_terms: int, zmax: float, iterations: int = 60):
    z = np.linspace(0, zmax, 4000)[1:]
    s, f = z * z, erf(z)
    q_previous = np.ones_like(z)
    lawson = np.ones_like(z)
    for iteration in range(iterations):
        columns = [z * s**i for i in range(p_terms)] + [-f * s**j for j in range(1, q_terms)]
        weights = lawson / q_previous
        solution, *_ = np.linalg.lstsq(np.stack(columns, 1) * weights[:, None], f * weights, rcond=None)
        p = solution[:p_terms]
        q = np.concatenate([[1.0], solution[p_terms:]])
        big_p = sum(c * s**i for i, c in enumerate(p))
        big_q = sum(c * s**j for j, c in enumerate(q))
        error = z * big_p / big_q - f
        q_previous = np.abs(big_q)
        if iteration > 10:
            lawson = lawson * (np.abs(error) / np.abs(error).max() + 1e-3)
            lawson /= lawson.mean()
    return p, q, float(np.abs(error).max())


def gelu_float32(x: np.ndarray, p, q, zmax: float) -> np.ndarray:
    f32 = np.float32
    x = x.astype(f32)
    z = np.clip(x * f32(0.70710678118654752), f32(-zmax), f32(zmax))
    s = z * z
    big_p = f32(p[-1])
    for c in p[-2::-1]:
        big_p = big_p * s + f32(c)
    big_q = f32(q[-1])
    for c in q[-2::-1]:
        big_q = big_q * s + f32(c)
    half = f32(0.5) * x
    return half * np.clip((z * big_p) / big_q, f32(-1), f32(1)) + half


def main() -> None:
    p, q, fit_error = fit(P_TERMS, Q_TERMS, ZMAX)
    xs = np.arange(-12, 12, 1 / 1024)
    exact = 0.5 * xs * (1 + erf(xs / math.sqrt(2)))
    approx = gelu_float32(xs, p, q, ZMAX).astype(np.float64)
    relative = np.abs(approx - exact) / np.maximum(1, np.abs(exact))
    print(f"erf fit on [0, {ZMAX}]: max abs error {fit_error:.2e} (double precision)")
    print(f"GELU in float32 over [-12, 12]: worst error {relative.max():.2e} at x = {xs[relative.argmax()]:.4f}")
    print("P (highest power first):", ", ".join(f"{c:.9e}f" for c in p[::-1]))
    print("Q (highest power first):", ", ".join(f"{c:.9e}f" for c in q[::-1]))


if __name__ == "__main__":
    main()
