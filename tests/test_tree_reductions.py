"""jaxgd._tree's reductions (vdot, sq_norm, sums, max_min) against exact references.

References: math.fsum over the float64 products (the correctly rounded sum) and NumPy's max/min.
Long reductions run as jaxgd._tree.LANES partial sums (another order of additions than a single
chain), so the sums agree to a few ulps of the sum of magnitudes, not bit for bit; below
jaxgd._tree.LONG elements they are the plain reductions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgd import _tree


def _tol(terms: np.ndarray, dtype) -> float:
    """A few ulps of the sum of magnitudes (any order of additions stays within n eps of it)."""
    return 4 * len(terms) * np.finfo(dtype).eps * math.fsum(np.abs(terms))


@pytest.mark.parametrize("n", [7, _tree.LONG - 1, _tree.LONG, 1000, 1003, 4099])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sums_match_fsum(n, dtype):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(dtype)
    b = (rng.standard_normal(n) * 1e3).astype(dtype)
    tree_a = {"w": jnp.asarray(a[: n // 2]), "b": jnp.asarray(a[n // 2:])}
    tree_b = {"w": jnp.asarray(b[: n // 2]), "b": jnp.asarray(b[n // 2:])}
    prod = a.astype(np.float64) * b.astype(np.float64)
    assert abs(float(_tree.vdot(tree_a, tree_b)) - math.fsum(prod)) <= _tol(prod, dtype)
    sq = a.astype(np.float64) ** 2
    assert abs(float(_tree.sq_norm(tree_a)) - math.fsum(sq)) <= _tol(sq, dtype)
    got = np.asarray(jax.jit(_tree.sums)(tree_a, tree_b, jax.tree_util.tree_map(jnp.multiply, tree_a, tree_b)))
    for g, terms in zip(got, (a.astype(np.float64), b.astype(np.float64), prod)):
        assert abs(g - math.fsum(terms)) <= _tol(terms, dtype)
    top, low = jax.jit(_tree.max_min)(tree_a)
    assert float(top) == a.max() and float(low) == a.min()


@pytest.mark.parametrize("n", [10, 1000, 1003])
def test_non_finite_elements_propagate(n):
    """A NaN anywhere makes every reduction NaN (the solvers' finiteness tests read them); an Inf
    makes the sum infinite, the max Inf."""
    x = np.ones(n, np.float32)
    for where in (0, n // 2, n - 1):
        nan, inf = x.copy(), x.copy()
        nan[where], inf[where] = np.nan, np.inf
        assert math.isnan(float(_tree.vdot(jnp.asarray(nan), jnp.asarray(x))))
        assert math.isnan(float(_tree.sums(jnp.asarray(nan))[0]))
        assert all(math.isnan(float(v)) for v in _tree.max_min(jnp.asarray(nan)))
        assert float(_tree.sq_norm(jnp.asarray(inf))) == np.inf and float(_tree.max_min(jnp.asarray(inf))[0]) == np.inf


@pytest.mark.parametrize("n", [0, 5, _tree.LONG, 1003])
def test_max_abs_and_all_equal_are_exact(n):
    """Reference: NumPy. The infinity norm (0 for no elements), with the NaN of max_abs_nan_if,
    and the all-equal test, at one differing element in each position class (head, middle, tail)."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n)
    tree = {"a": jnp.asarray(a), "b": jnp.asarray(a[: n // 3])}
    want = max(np.abs(a).max(initial=0.0), np.abs(a[: n // 3]).max(initial=0.0))
    assert float(_tree.max_abs(tree)) == want
    assert float(_tree.max_abs_nan_if(tree, tree)) == want
    assert bool(_tree.all_equal(tree, tree))
    for i in sorted({0, n // 2, n - 1}) if n else []:
        other = a.copy()
        other[i] = np.nan
        assert math.isnan(float(_tree.max_abs_nan_if({"a": jnp.asarray(a)}, {"a": jnp.asarray(other)})))
        assert math.isnan(float(_tree.max_abs({"a": jnp.asarray(other)})))
        assert not bool(_tree.all_equal({"a": jnp.asarray(a)}, {"a": jnp.asarray(other)}))


def test_sums_are_differentiable_both_ways():
    """Reference: the same sums written with jnp.sum. jax.grad (reverse, as adjoint="unroll" runs
    the lbfgs step) and jax.jvp (forward) through _tree.sums agree with them."""
    rng = np.random.default_rng(0)
    x, y = (jnp.asarray(rng.standard_normal(300)) for _ in range(2))

    def ours(x, y):
        s = _tree.sums(x * y, x * x, jnp.sin(y))
        return s[0] * s[1] + s[2]

    def plain(x, y):
        return jnp.sum(x * y) * jnp.sum(x * x) + jnp.sum(jnp.sin(y))

    for a, b in zip(jax.grad(ours, argnums=(0, 1))(x, y), jax.grad(plain, argnums=(0, 1))(x, y)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    t = (jnp.ones_like(x), jnp.asarray(rng.standard_normal(300)))
    np.testing.assert_allclose(jax.jvp(ours, (x, y), t)[1], jax.jvp(plain, (x, y), t)[1], rtol=1e-12)
