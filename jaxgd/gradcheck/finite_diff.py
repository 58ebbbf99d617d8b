"""Central finite differences in float64, in fixed-size vmapped batches.

Along every coordinate (:func:`fd_coordinates`) or along ``k`` random unit
directions per leaf (:func:`fd_directions`), each with its rounding-noise
estimate, which the comparison adds to its tolerance. Reference: J. Nocedal,
S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, section 8.1.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

#: Default central-difference step scale: cbrt(machine epsilon of float64) ~ 6.1e-6,
#: which balances truncation error O(h^2) against rounding error O(eps/h).
DEFAULT_EPS: float = float(np.finfo(np.float64).eps ** (1.0 / 3.0))
#: Default (rtol, atol) by the dtype the JAX gradient is computed in. Comparisons
#: between the reference and finite differences (both float64) use the float64 pair.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-6, 1e-9),
    "float32": (1e-3, 1e-5),
    "float16": (3e-2, 1e-2),
    "bfloat16": (3e-2, 1e-2),
}
#: A float64 evaluation of fun is trusted to this many ulps of |f|; the resulting
#: rounding noise of a central difference, FD_NOISE_ULPS·eps64·|f|/h, is added to
#: the tolerance of every comparison with finite differences. (100 until session 57: a
#: wrong gradient of half or twice the true one passed where |f| was large against the
#: gradient, 8.9e5 against 1e-3, although float64 differences resolved it to 3%.)
FD_NOISE_ULPS: float = 4.0
#: The same for a fun computing in float32 or narrower (differenced in that dtype): its sums
#: carry many ulps of their own (a float32 sum of 10,000 tanh terms: 6x 4 ulps).
FD_NOISE_ULPS_NARROW: float = 100.0
#: Perturbed points evaluated per compiled (vmapped) call of fun.
FD_CHUNK: int = 64

_EPS64 = float(np.finfo(np.float64).eps)


def noise_ulps(f_eps: float) -> float:
    """The ulps of |f| a difference in the dtype of epsilon ``f_eps`` is trusted to."""
    return FD_NOISE_ULPS if f_eps == _EPS64 else FD_NOISE_ULPS_NARROW


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _eval_batch(
    fun: Callable[..., jax.Array], treedef: Any, shapes: tuple[tuple[int, ...], ...], points: jax.Array, *args: Any
) -> jax.Array:
    """fun at each row of ``points`` (flat float64 parameter vectors), vmapped.

    ``fun``, the tree structure and the leaf shapes are static, so repeated checks
    of the same function at the same shapes re-use one compiled program.
    """

    def one(v: jax.Array) -> jax.Array:
        leaves, start = [], 0
        for shape in shapes:
            size = math.prod(shape)
            leaves.append(v[start : start + size].reshape(shape))
            start += size
        return fun(jax.tree_util.tree_unflatten(treedef, leaves), *args)

    return jax.vmap(one)(points)


def _fd_values(
    f: Callable[[np.ndarray], np.ndarray], make_points: Callable[[int, int], np.ndarray], count: int
) -> np.ndarray:
    """``f`` at the points ``make_points(start, stop)`` for ``0 <= start < stop <= count``.

    Points are built chunk by chunk (never all at once) and padded to a fixed
    chunk size, so the batched evaluation compiles once.
    """
    out = []
    for start in range(0, count, FD_CHUNK):
        stop = min(start + FD_CHUNK, count)
        chunk = make_points(start, stop)
        if stop - start < FD_CHUNK:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], FD_CHUNK - (stop - start), axis=0)])
        out.append(f(chunk)[: stop - start])
    return np.concatenate(out) if out else np.zeros(0)


def fd_coordinates(
    f: Callable[[np.ndarray], np.ndarray], z: np.ndarray, eps: float, f_eps: float = _EPS64
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences along every coordinate of ``z``, and their rounding noise (``f_eps``: the
    machine epsilon of ``f``'s values, float64's unless ``fun`` computes in a narrower dtype)."""
    n = z.size
    h = eps * np.maximum(1.0, np.abs(z))
    # Exactly representable steps: (z + h) - z may differ from h by rounding.
    up, down = z + h, z - h

    def points(start: int, stop: int) -> np.ndarray:
        rows = np.repeat(z[None, :], stop - start, axis=0)
        for r, j in enumerate(range(start, stop)):
            i = j % n
            rows[r, i] = up[i] if j < n else down[i]
        return rows

    vals = _fd_values(f, points, 2 * n)
    f_plus, f_minus = vals[:n], vals[n:]
    width = up - down
    fd = (f_plus - f_minus) / width
    noise = noise_ulps(f_eps) * f_eps * np.maximum(np.abs(f_plus), np.abs(f_minus)) / (0.5 * width)
    return fd, noise


def fd_directions(
    f: Callable[[np.ndarray], np.ndarray],
    z: np.ndarray,
    eps: float,
    offsets: np.ndarray,
    k: int,
    rng: np.random.Generator,
    f_eps: float = _EPS64,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Central differences along ``k`` random unit directions inside each leaf."""
    dirs, steps = [], []
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        V = rng.standard_normal((k, hi - lo))
        V /= np.maximum(np.linalg.norm(V, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        dirs.append(V)
        steps.append(eps * max(1.0, float(np.max(np.abs(z[lo:hi]), initial=0.0))))

    def points(start: int, stop: int) -> np.ndarray:
        rows = np.repeat(z[None, :], stop - start, axis=0)
        for r, j in enumerate(range(start, stop)):
            leaf, rest = divmod(j, 2 * k)
            sign, m = (1.0, rest) if rest < k else (-1.0, rest - k)
            lo, hi = offsets[leaf], offsets[leaf + 1]
            rows[r, lo:hi] += sign * steps[leaf] * dirs[leaf][m]
        return rows

    vals = _fd_values(f, points, 2 * k * len(dirs))
    fd, noise = [], []
    for i, h in enumerate(steps):
        v = vals[2 * k * i : 2 * k * (i + 1)]
        fd.append((v[:k] - v[k:]) / (2.0 * h))
        noise.append(noise_ulps(f_eps) * f_eps * np.maximum(np.abs(v[:k]), np.abs(v[k:])) / h)
    return fd, noise, dirs
