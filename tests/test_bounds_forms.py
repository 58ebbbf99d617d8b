"""``bounds=`` in the forms a scipy user writes: ``None`` inside a pytree side (no bound on that part of
``x0``), a ``scipy.optimize.Bounds``, and scipy's per-variable list (refused, with the translation).

References: the documented spelling (``(lower, upper)`` with ``-inf``/``inf`` for a free entry: the same
run, bit for bit, on every path that reads bounds), scipy's L-BFGS-B with per-variable ``None``
(``bounds=[(0, None), (None, None), ...]``, its own convention) and closed-form minimisers of
separable quadratics (each coordinate clipped into its interval).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so

import jaxgd
from jaxgd.prox.operators import check_bounds

TARGET = {"a": np.array([-1.0, 2.0]), "b": np.array([3.0, -4.0])}


def quad(p):
    return sum(jnp.sum((p[k] - TARGET[k]) ** 2) for k in TARGET)


def x0():
    return {"a": jnp.full(2, 0.5), "b": jnp.full(2, 0.5)}


def same_run(r1, r2) -> None:
    for k in TARGET:
        np.testing.assert_array_equal(np.asarray(r1.params[k]), np.asarray(r2.params[k]))
    assert r1.status_enum is r2.status_enum and int(r1.steps) == int(r2.steps) and int(r1.nfev) == int(r2.nfev)


@pytest.mark.parametrize("method, tier", [("lbfgs", "compiled"), ("lbfgs", "host"), ("gd", None)])
def test_none_leaf_is_the_infinite_bound(method, tier):
    """Reference: the same bounds with -inf/inf written where None stands (the documented spelling);
    and the closed form: a >= 0 clips TARGET["a"] to (0, 2), b <= 1 clips TARGET["b"] to (1, -4)."""
    kw = dict(method=method, max_steps=500, **({"tier": tier} if tier else {}))
    kw.update({"lr": 0.25} if method == "gd" else {})
    with_none = jaxgd.minimize(quad, x0(), bounds=({"a": 0.0, "b": None}, {"a": None, "b": 1.0}), **kw)
    with_inf = jaxgd.minimize(quad, x0(), bounds=({"a": 0.0, "b": -np.inf}, {"a": np.inf, "b": 1.0}), **kw)
    same_run(with_none, with_inf)
    np.testing.assert_allclose(np.asarray(with_none.params["a"]), [0.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(with_none.params["b"]), [1.0, -4.0], atol=1e-6)
    assert with_none.success


def test_none_over_a_subtree_bounds_none_of_its_leaves():
    """A None where x0 has a subtree leaves every leaf below it free. Reference: -inf at each of
    them (the same run) and the closed form."""
    target = {"layer": {"w": np.array([-2.0, 1.0]), "b": np.array(-3.0)}, "c": np.array([-1.0, 4.0])}
    pairs = lambda p: zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(target))  # noqa: E731
    f = lambda p: sum(jnp.sum((u - v) ** 2) for u, v in pairs(p))  # noqa: E731
    start = jax.tree_util.tree_map(lambda v: jnp.zeros_like(jnp.asarray(v)), target)
    r1 = jaxgd.minimize(f, start, method="lbfgs", bounds=({"layer": None, "c": 0.0}, None), tier="compiled")
    r2 = jaxgd.minimize(f, start, method="lbfgs", bounds=({"layer": {"w": -np.inf, "b": -np.inf}, "c": 0.0}, None),
                        tier="compiled")
    for u, v in zip(jax.tree_util.tree_leaves(r1.params), jax.tree_util.tree_leaves(r2.params)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    np.testing.assert_allclose(np.asarray(r1.params["layer"]["w"]), [-2.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(r1.params["c"]), [0.0, 4.0], atol=1e-6)


def test_matches_scipy_l_bfgs_b_with_per_variable_none():
    """Reference: scipy's L-BFGS-B, whose per-variable bounds use None for a free side."""
    rng = np.random.default_rng(3)
    A, y = rng.standard_normal((30, 4)), rng.standard_normal(30)
    Aj, yj = jnp.asarray(A), jnp.asarray(y)
    f = lambda p: 0.5 * jnp.sum((Aj @ jnp.concatenate([p["u"], p["v"]]) - yj) ** 2)  # noqa: E731
    res = jaxgd.minimize(f, {"u": jnp.zeros(2), "v": jnp.zeros(2)}, method="lbfgs",
                         bounds=({"u": 0.0, "v": None}, {"u": None, "v": 0.1}), gtol=1e-9)
    g = lambda x: (float(0.5 * np.sum((A @ x - y) ** 2)), A.T @ (A @ x - y))  # noqa: E731
    ref = so.minimize(g, np.zeros(4), jac=True, method="L-BFGS-B",
                      bounds=[(0, None), (0, None), (None, 0.1), (None, 0.1)], options={"gtol": 1e-12, "ftol": 0})
    got = np.concatenate([np.asarray(res.params["u"]), np.asarray(res.params["v"])])
    np.testing.assert_allclose(got, ref.x, atol=1e-7)


def test_a_side_of_nones_runs_l_bfgs_b_without_a_bound():
    """All None: L-BFGS-B with every side infinite. Reference: the same with -inf written out."""
    r1 = jaxgd.minimize(quad, x0(), method="lbfgs", bounds=({"a": None, "b": None}, None), tier="compiled")
    r2 = jaxgd.minimize(quad, x0(), method="lbfgs", bounds=(-np.inf, None), tier="compiled")
    same_run(r1, r2)
    for k in TARGET:
        np.testing.assert_allclose(np.asarray(r1.params[k]), TARGET[k], atol=1e-6)


def test_order_check_pairs_leaves_in_place():
    """None keeps its place: lower {"a": 0, "b": None} and upper {"a": None, "b": -1} are a valid box
    (before, the two sides' leaves were paired as [0] and [-1] and read as lower > upper); a real
    lower > upper is still refused."""
    lower, upper = check_bounds(({"a": 0.0, "b": None}, {"a": None, "b": -1.0}))
    assert lower == {"a": 0.0, "b": None} and upper == {"a": None, "b": -1.0}
    with pytest.raises(ValueError, match="lower must be <= upper"):
        check_bounds(({"a": 0.0, "b": 2.0}, {"a": None, "b": -1.0}))


@pytest.mark.parametrize("tier", ["compiled", "host"])
def test_scipy_bounds_object_is_its_lb_ub(tier):
    """Reference: the same run with (lb, ub) written out; the closed form clip(TARGET, lb, ub)."""
    lb, ub = np.array([0.0, -np.inf, -1.0]), np.array([np.inf, 0.5, 1.0])
    f = lambda x: jnp.sum((x - jnp.asarray([-1.0, 2.0, 3.0])) ** 2)  # noqa: E731
    r1 = jaxgd.minimize(f, jnp.zeros(3), method="lbfgs", bounds=so.Bounds(lb, ub), tier=tier)
    r2 = jaxgd.minimize(f, jnp.zeros(3), method="lbfgs", bounds=(lb, ub), tier=tier)
    np.testing.assert_array_equal(np.asarray(r1.params), np.asarray(r2.params))
    assert r1.status_enum is r2.status_enum and int(r1.nfev) == int(r2.nfev)
    np.testing.assert_allclose(np.asarray(r1.params), np.clip([-1.0, 2.0, 3.0], lb, ub), atol=1e-6)


def test_scipy_bounds_of_two_numbers_bound_a_pytree():
    """A geometry review (session 64): scipy.optimize.Bounds(0, 1) keeps each side as a one-element array, which
    a dict x0 refused as a side of the wrong structure. Reference: the pair of numbers (0.0, 1.0), and the
    closed form clip(target, 0, 1)."""
    x0 = {"a": jnp.zeros(3), "b": jnp.zeros(2)}
    f = lambda p: jnp.sum((p["a"] - 2.0) ** 2) + jnp.sum((p["b"] + 2.0) ** 2)  # noqa: E731
    r1 = jaxgd.minimize(f, x0, method="lbfgs", bounds=so.Bounds(0, 1))
    r2 = jaxgd.minimize(f, x0, method="lbfgs", bounds=(0.0, 1.0))
    for k, want in (("a", 1.0), ("b", 0.0)):
        np.testing.assert_array_equal(np.asarray(r1.params[k]), np.asarray(r2.params[k]))
        np.testing.assert_allclose(np.asarray(r1.params[k]), want, atol=1e-6)


@pytest.mark.parametrize("bounds", [[(0, None)] * 3, [(0.0, 1.0), (None, 2.0)], ((0, 1), (0, 1))])
def test_scipy_per_variable_list_is_refused_with_its_translation(bounds):
    """scipy's [(min, max), ...]: of 3 pairs not a (lower, upper) pair at all; of 2 pairs a pair of
    tuples that are not shaped like the array x0. Either way the message shows jaxgd's spelling."""
    f = lambda x: jnp.sum(x ** 2)  # noqa: E731
    with pytest.raises(ValueError, match=r"scipy's per-variable list .* bounds=\(np.array\(mins\), np.array\(maxs\)\)"):
        jaxgd.minimize(f, jnp.zeros(3), method="lbfgs", bounds=bounds)


def test_a_tuple_side_for_a_tuple_x0_is_no_scipy_list():
    """A tuple x0 of two scalars takes a side written as a tuple of two numbers (jaxgd's pytree
    form, no hint); reference: the closed form."""
    f = lambda p: (p[0] - 3.0) ** 2 + (p[1] + 3.0) ** 2  # noqa: E731
    r = jaxgd.minimize(f, (jnp.asarray(0.0), jnp.asarray(0.0)), method="lbfgs", bounds=((0.0, -1.0), (1.0, None)))
    np.testing.assert_allclose([float(r.params[0]), float(r.params[1])], [1.0, -1.0], atol=1e-6)


def test_scipy_pairs_for_a_list_of_two_numbers_are_refused_as_ambiguous():
    """x0=[0.5, 0.5] with bounds=[[0, 1], [2, 3]]: scipy's reading is one (min, max) pair per variable
    (scipy.optimize.minimize's answer (1, 2) on this loss, the reference), jaxgd's (lower, upper); it
    was solved silently over the box [0, 2] x [1, 3] (x = (2, 1), GTOL). Refused, naming both readings;
    with arrays, only one reading fits and the answer is scipy's."""
    so = pytest.importorskip("scipy.optimize")
    f = lambda p: (p[0] - 3.0) ** 2 + p[1] ** 2  # noqa: E731
    want = so.minimize(lambda p: (p[0] - 3.0) ** 2 + p[1] ** 2, [0.5, 0.5], method="L-BFGS-B",
                       bounds=[[0, 1], [2, 3]]).x
    with pytest.raises(ValueError, match=r"can be read two ways: here as \(lower, upper\), by scipy as one"):
        jaxgd.minimize(f, [0.5, 0.5], method="lbfgs", bounds=[[0.0, 1.0], [2.0, 3.0]])
    r = jaxgd.minimize(f, jnp.asarray([0.5, 0.5]), method="lbfgs", bounds=(np.array([0.0, 2.0]), np.array([1.0, 3.0])))
    np.testing.assert_allclose(np.asarray(r.params), want, atol=1e-6)
