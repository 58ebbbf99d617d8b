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


@pytest.mark.alternate("dtype")  # (every dtype in make slow)
@pytest.mark.parametrize("n", [7, _tree.LONG - 1, _tree.LONG, 1000, 1003, 4099, 2 * _tree.HUGE + 5])
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
        assert all(math.isnan(float(v)) for v in jax.jit(_tree.max_min)(jnp.asarray(nan)))
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


@pytest.mark.alternate("dtype")  # (every dtype in make slow)
@pytest.mark.parametrize("n", [7, _tree.LONG, 1003, 2 * _tree.HUGE + 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 1e-15, "overflow"])
def test_sq_norm_checked_is_the_norm_without_overflow(n, dtype, scale):
    """Reference: math.fsum of the float64 squares (the correctly rounded 2-norm; for elements
    whose squares overflow float64, of the elements divided by their largest magnitude, as
    LAPACK's dnrm2 scales them). Where the squares do not overflow the norm is the square root of
    sq_norm_nan_if to an ulp (its sum, in a variadic reduction that XLA:CPU vectorises its own
    way); where they do, the elements are still finite and the norm is finite and right to a few
    ulps; a NaN or Inf in either tree is flagged, and so is one in b alone."""
    rng = np.random.default_rng(n)
    big = np.sqrt(np.finfo(dtype).max) * 4  # its square overflows dtype
    s = big if scale == "overflow" else scale
    a = (rng.standard_normal(n) * s).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    tree_a = {"w": jnp.asarray(a[: n // 2]), "b": jnp.asarray(a[n // 2:])}
    tree_b = {"w": jnp.asarray(b[: n // 2]), "b": jnp.asarray(b[n // 2:])}
    norm, finite = jax.jit(_tree.sq_norm_checked)(tree_a, tree_b)
    assert bool(finite) and norm.dtype == dtype
    top = float(np.max(np.abs(a.astype(np.float64))))
    want = top * math.sqrt(math.fsum((a.astype(np.float64) / top) ** 2))
    np.testing.assert_allclose(float(norm), want, rtol=8 * np.finfo(dtype).eps * math.sqrt(n))
    sq = jax.jit(_tree.sq_norm_nan_if)(tree_a, tree_b)
    if scale == "overflow":
        assert not np.isfinite(float(sq)) and np.isfinite(float(norm))
    else:
        np.testing.assert_allclose(float(norm), float(jnp.sqrt(sq)), rtol=2 * np.finfo(dtype).eps)
    for bad in (np.nan, np.inf):
        for which in ("a", "b"):
            x, y = a.copy(), b.copy()
            (x if which == "a" else y)[n // 3] = bad
            _, ok = jax.jit(_tree.sq_norm_checked)(jnp.asarray(x), jnp.asarray(y))
            assert not bool(ok), (bad, which)


@pytest.mark.slow
def test_sq_norm_checked_is_differentiable_both_ways():
    """Reference: jnp.linalg.norm. The norm's gradient g / ||g|| in reverse and forward mode
    (adjoint="unroll" differentiates the solver's step, which measures every new point)."""
    x = jnp.asarray(np.random.default_rng(1).standard_normal(300))
    ours = lambda v: _tree.sq_norm_checked(v, v)[0]  # noqa: E731
    np.testing.assert_allclose(jax.grad(ours)(x), jax.grad(jnp.linalg.norm)(x), rtol=1e-12)
    t = jnp.ones_like(x)
    np.testing.assert_allclose(jax.jvp(ours, (x,), (t,))[1], jax.jvp(jnp.linalg.norm, (x,), (t,))[1], rtol=1e-12)


def test_sq_norm_checked_over_leaves_of_several_float_types():
    """Reference: math.fsum in float64 of the leaves' squares (a half-precision leaf's in float32,
    as sq_norm_nan_if takes it). A float16 leaf whose squares overflow float16, a float32
    one whose squares overflow float32, next to a float64 leaf: finite, the norm of all of them;
    a NaN in the float16 leaf is flagged."""
    h = np.array([300.0, -400.0], np.float16)  # 300**2 overflows float16 (max 65504)
    f = np.array([3e20, 4e20], np.float32)  # 3e20**2 overflows float32
    d = np.array([1.0, 2.0])
    tree = {"h": jnp.asarray(h), "f": jnp.asarray(f), "d": jnp.asarray(d)}
    norm, finite = jax.jit(_tree.sq_norm_checked)(tree, tree)
    want = math.sqrt(math.fsum(np.concatenate([h, f, d]).astype(np.float64) ** 2))
    assert bool(finite) and norm.dtype == np.float64
    np.testing.assert_allclose(float(norm), want, rtol=1e-6)  # float32/float16 leaves' own roundings
    small = {"h": jnp.asarray(h / 1000), "d": jnp.asarray(d)}  # no overflow: the plain sum, to an ulp
    np.testing.assert_allclose(float(jax.jit(_tree.sq_norm_checked)(small, small)[0]),
                               float(jnp.sqrt(_tree.sq_norm_nan_if(small, small))), rtol=2e-16)
    for leaves in ({"h": h}, {"h": h, "d": d * 100}):  # the float16 leaf's own overflow decides
        tree = {k: jnp.asarray(v) for k, v in leaves.items()}
        norm, finite = jax.jit(_tree.sq_norm_checked)(tree, tree)
        want = math.sqrt(math.fsum(np.concatenate(list(leaves.values())).astype(np.float64) ** 2))
        assert bool(finite)
        np.testing.assert_allclose(float(norm), want, rtol=1e-3)  # float16's rounding of its squares
    bad = {"h": jnp.asarray(np.array([np.nan, 1.0], np.float16)), "d": jnp.asarray(d)}
    assert not bool(jax.jit(_tree.sq_norm_checked)(bad, bad)[1])


@pytest.mark.parametrize("scale", [1.0, "overflow"])
def test_huge_leaf_norm_branch_eager_jit_vmap_and_grad(scale):
    """Reference: math.fsum of the float64 squares (scaled by the largest magnitude, as dnrm2). A leaf of
    jaxgd._tree.HUGE elements or more sums its scaled squares only in a branch taken where the plain sum
    overflowed: the norm and the finiteness flag are right eagerly, under jit, under vmap (where the
    branch is a select) and differentiated (x / ||x||), in float32."""
    n = _tree.HUGE + 7
    rng = np.random.default_rng(5)
    s = np.sqrt(np.finfo(np.float32).max) * 4 if scale == "overflow" else 1.0
    a = (rng.standard_normal(n) * s).astype(np.float32)
    top = float(np.max(np.abs(a.astype(np.float64))))
    want = top * math.sqrt(math.fsum((a.astype(np.float64) / top) ** 2))
    x = jnp.asarray(a)
    fn = lambda v: _tree.sq_norm_checked(v, v)  # noqa: E731
    for norm, ok in (fn(x), jax.jit(fn)(x), tuple(r[1] for r in jax.vmap(fn)(jnp.stack([x, x])))):
        assert bool(ok)
        np.testing.assert_allclose(float(norm), want, rtol=8 * np.finfo(np.float32).eps * math.sqrt(n))
    grad = jax.jit(jax.grad(lambda v: fn(v)[0]))(x)
    np.testing.assert_allclose(np.asarray(grad, np.float64), a.astype(np.float64) / want, rtol=1e-4, atol=1e-9)
    bad = a.copy()
    bad[n // 2] = np.nan
    assert not bool(jax.jit(fn)(jnp.asarray(bad))[1]) and not bool(jax.vmap(fn)(jnp.asarray(bad)[None])[1][0])


@pytest.mark.alternate("dtype")
@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16, np.float32, np.float64])
def test_norm_at_the_ends_of_the_range_eager_jit_and_vmap(dtype):
    """Reference: math.fsum in float64 of the elements' squares (Python floats do not flush). The
    global norm of a tree with its largest element near the type's largest finite number, or with
    squares that underflow, is right eagerly, under jit and under vmap, with its gradient under
    jit (x / ||x||). It read 0 under vmap and in bfloat16 for elements of 2**126 and more, and NaN
    for float16's small elements under vmap: 1/m flushed to 0, or overflowed float16."""
    fi = jnp.finfo(dtype)
    big, small = float(fi.max) / 2, float(fi.tiny) * 2 ** 10
    for top in (big, small):
        x = {"a": jnp.asarray([top, top / 4], dtype), "b": jnp.asarray([top / 8], dtype)}
        elems = np.concatenate([np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(x)])
        want = math.sqrt(math.fsum((elems / top) ** 2)) * top
        batched = jax.tree_util.tree_map(lambda v: v[None], x)
        for got in (_tree.norm(x), jax.jit(_tree.norm)(x), jax.vmap(_tree.norm)(batched)[0]):
            assert got.dtype == dtype
            np.testing.assert_allclose(float(got), want, rtol=4 * float(fi.eps))
        grad = jax.jit(jax.grad(_tree.norm))(x)
        for k in x:
            np.testing.assert_allclose(np.asarray(grad[k], np.float64), np.asarray(x[k], np.float64) / want,
                                       rtol=8 * float(fi.eps), atol=8 * float(fi.eps))


@pytest.mark.parametrize("n", [3, _tree.LONG, 1003])
@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16])
def test_half_precision_products_are_summed_in_float32(n, dtype):
    """Reference: math.fsum over the float64 products of the half-precision elements. A float16
    sum of squares passed 65,504 (Inf) once the norm passed 256, which made bfgs's and cg's first
    slope <g, -g> Inf; vdot and sq_norm now multiply and sum half-precision leaves in float32 (so
    their results are float32) and norm casts its float32 result back to the leaves' dtype."""
    rng = np.random.default_rng(n)
    a = jnp.asarray(rng.uniform(100.0, 300.0, n), dtype)  # every square past float16's range
    b = jnp.asarray(rng.uniform(-300.0, 300.0, n), dtype)
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    for got, want, terms in ((_tree.vdot(a, b), math.fsum(x * y), x * y), (_tree.sq_norm(a), math.fsum(x * x), x * x)):
        assert got.dtype == jnp.float32
        assert abs(float(got) - want) <= _tol(terms, np.float32)
    norm = _tree.norm(a)
    assert norm.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(float(norm), math.sqrt(math.fsum(x * x)), rtol=float(jnp.finfo(dtype).eps))


def test_lbfgs_pair_sums_of_float16_leaves_stay_in_range():
    """Reference: math.fsum over the float64 products. L-BFGS's memory test and diagonal read s'y,
    y'y, -g's, y'Dy, s'D^-1 s and s's from one reduction; with float16 leaves a y of 300 squared
    to Inf there (the pair was refused and the diagonal never learnt). They are float32 sums now."""
    from jaxgd.directions.limited_memory import pair_sums

    rng = np.random.default_rng(3)
    s, y, g, d = (jnp.asarray(rng.uniform(lo, hi, 5), jnp.float16) for lo, hi in ((1, 2), (300, 600), (-900, 900), (0.5, 2)))
    s64, y64, g64, d64 = (np.asarray(v, np.float64) for v in (s, y, g, d))
    sy, yy, descent, (dyy, dinsy, ss) = pair_sums(s, y, g, d)
    for got, terms in ((sy, s64 * y64), (yy, y64 * y64), (descent, -g64 * s64), (dyy, d64 * y64 * y64),
                       (dinsy, s64 * s64 / d64), (ss, s64 * s64)):
        assert got.dtype == jnp.float32 and np.isfinite(float(got))
        assert abs(float(got) - math.fsum(terms)) <= _tol(terms, np.float32)


@pytest.mark.parametrize("n", [1, 5, _tree.LONG])
def test_sq_norm_checked_of_small_float16_elements_is_not_zero(n):
    """Reference: math.fsum over the float64 squares. A float16 element below 2.4e-4 squares to a
    subnormal number, which XLA:CPU flushes to 0: a gradient of 1e-4 had norm 0, and minimize
    stopped GTOL far from the minimiser. Half-precision squares are summed in float32 now."""
    rng = np.random.default_rng(n)
    g = jnp.asarray(rng.uniform(1e-5, 2e-4, n), jnp.float16)
    norm, finite = jax.jit(_tree.sq_norm_checked)(g, g)
    x = np.asarray(g, np.float64)
    assert bool(finite)
    np.testing.assert_allclose(float(norm), math.sqrt(math.fsum(x * x)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exponent_and_power_of_two_from_bits_match_numpy(dtype):
    """Reference: NumPy's frexp and ldexp (normal numbers, every exponent), and jnp.frexp under jit for
    subnormals (XLA:CPU flushes them: NumPy's exponent is not what a compiled frexp gives). The bit
    reads that replaced jnp.frexp/jnp.ldexp in the overflow-safe norm's scaling (a smaller program)."""
    fi = np.finfo(dtype)
    rng = np.random.default_rng(3)
    ks = np.arange(fi.minexp, fi.maxexp)
    normal = (rng.uniform(1.0, 2.0, ks.size) * np.ldexp(1.0, ks)).astype(dtype)
    normal = np.concatenate([normal, [fi.tiny, fi.max, 1.0, 0.5, 0.75]]).astype(dtype)
    got = np.asarray(jax.jit(_tree._exponent)(jnp.asarray(normal)))
    np.testing.assert_array_equal(got, np.frexp(normal)[1])
    sub = np.asarray([fi.smallest_subnormal, fi.tiny / 2, fi.tiny / 1024], dtype)
    np.testing.assert_array_equal(np.asarray(jax.jit(_tree._exponent)(jnp.asarray(sub))),
                                  np.asarray(jax.jit(lambda v: jnp.frexp(v)[1])(jnp.asarray(sub))))
    powers = np.asarray(jax.jit(lambda k: _tree._power_of_two(k, dtype))(jnp.asarray(ks, jnp.int32)))
    assert powers.dtype == dtype
    np.testing.assert_array_equal(powers, np.ldexp(dtype(1), ks).astype(dtype))


def test_count_div_and_rem_match_python():
    """Reference: Python's // and % on non-negative counts, static and traced divisors, under jit and vmap."""
    ks = np.arange(0, 50, dtype=np.int32)
    for d in (1, 3, 10):
        for div, rem in ((lambda k: _tree.count_div(k, d), lambda k: _tree.count_rem(k, d)),
                         (lambda k: _tree.count_div(k, jnp.int32(d)), lambda k: _tree.count_rem(k, jnp.int32(d)))):
            np.testing.assert_array_equal(np.asarray(jax.vmap(jax.jit(div))(jnp.asarray(ks))), ks // d)
            np.testing.assert_array_equal(np.asarray(jax.vmap(jax.jit(rem))(jnp.asarray(ks))), ks % d)
