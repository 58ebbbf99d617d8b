"""The floor of benchmark C (``benchmarks._util.lbfgs_floor_loop``): a minimal L-BFGS loop.

Issue 13 item 5's speed-up over scipy is bounded by what one L-BFGS step costs in a compiled
loop; the benchmark measures that with a hand-written loop, which must therefore be L-BFGS and
converge like it. References: the closed-form minimum of extended Rosenbrock (all ones) and
scipy's L-BFGS-B (its iteration count from the same start), and a NumPy two-loop recursion
(Nocedal & Wright, Algorithm 7.4) for the first steps' iterates.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _util as U  # noqa: E402


@pytest.mark.parametrize("d", [2, 100])
def test_floor_loop_reaches_the_closed_form_minimum_in_l_bfgs_b_iterations(d: int) -> None:
    """Reference: x* = 1 (closed form); scipy L-BFGS-B's iterations from the same start."""
    x0 = U.rosenbrock_start(d, np.float64)
    x, k = U.lbfgs_floor_loop(U.ext_rosenbrock, 1_000)(jnp.asarray(x0), 1e-5)
    x = np.asarray(x)
    _, g = U.ext_rosenbrock_np(x)
    assert np.linalg.norm(g) <= 1e-5
    np.testing.assert_allclose(x, np.ones(d), atol=1e-5)
    scipy_iters = so.minimize(U.ext_rosenbrock_np, x0, jac=True, method="L-BFGS-B").nit
    assert scipy_iters / 2 <= int(k) <= 2 * scipy_iters


def _numpy_lbfgs(x: np.ndarray, steps: int, m: int = 10) -> np.ndarray:
    """The same method in NumPy: two-loop recursion, Armijo halving from a unit step."""
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    f, g = U.ext_rosenbrock_np(x)
    for _ in range(steps):
        q, alphas = g.copy(), []
        for s, y in reversed(pairs):  # newest first
            a = (s @ q) / (s @ y)
            q -= a * y
            alphas.append(a)
        gamma = (pairs[-1][0] @ pairs[-1][1]) / (pairs[-1][1] @ pairs[-1][1]) if pairs else 1 / np.linalg.norm(g)
        r = gamma * q
        for (s, y), a in zip(pairs, reversed(alphas)):  # oldest first
            r += (a - (y @ r) / (s @ y)) * s
        d, t = -r, 1.0
        fn, gn = U.ext_rosenbrock_np(x + d)
        while fn > f + 1e-4 * t * (g @ d):
            t *= 0.5
            fn, gn = U.ext_rosenbrock_np(x + t * d)
        s, y = t * d, gn - g
        if s @ y > 0:
            pairs = (pairs + [(s, y)])[-m:]
        x, f, g = x + t * d, fn, gn
    return x


@pytest.mark.parametrize("steps", [1, 3, 12])
def test_floor_loop_iterates_match_a_numpy_two_loop_recursion(steps: int) -> None:
    """Reference: the two-loop recursion and Armijo halving in NumPy, step for step (12 steps:
    the memory of 10 pairs has wrapped)."""
    x0 = U.rosenbrock_start(6, np.float64)
    x, k = U.lbfgs_floor_loop(U.ext_rosenbrock, steps)(jnp.asarray(x0), 0.0)
    assert int(k) == steps
    np.testing.assert_allclose(np.asarray(x), _numpy_lbfgs(x0, steps), rtol=1e-10, atol=1e-12)
