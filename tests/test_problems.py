"""Tests of jaxgd.problems.

Independent references, named in each test:
- ``_numpy_central_diff``: central differences of the NumPy loss, in plain NumPy
  float64 (independent of JAX and of ``check_grad``);
- scikit-learn (``LinearRegression``, ``LogisticRegression``) and
  ``scipy.linalg.lstsq`` / ``scipy.optimize.minimize`` for the minimisers;
- closed-form values computed by hand in the test.
"""

from __future__ import annotations

import inspect
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression, LogisticRegression

import jaxgd
from jaxgd import problems as P

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**16)
l2s = st.sampled_from([0.0, 1e-3, 0.1, 1.0])
# Shapes are drawn from small sets: every new shape costs JAX an op-by-op compile
# (~1 s per example on a 2-core box), while seeds, data and penalties vary freely.
ns = st.sampled_from([1, 7])
ds = st.sampled_from([1, 3])
ks = st.sampled_from([3])

# One strategy per factory: random sizes, seeds and penalties, float64.
FAMILIES = {
    "quadratic_norm": st.builds(lambda d, s: P.quadratic_norm(d, seed=s), st.integers(1, 4), seeds),
    "linear_regression": st.builds(
        lambda n, d, fi, s: P.linear_regression(n, d, fit_intercept=fi, seed=s), ns, ds, st.booleans(), seeds
    ),
    "logistic_regression": st.builds(lambda n, d, l2, s: P.logistic_regression(n, d, l2=l2, seed=s), ns, ds, l2s, seeds),
    "softmax_regression": st.builds(
        lambda n, d, k, l2, s: P.softmax_regression(n, d, k, l2=l2, seed=s), ns, ds, ks, l2s, seeds
    ),
    "mlp": st.builds(
        lambda sizes, n, l2, s: P.mlp(sizes, n=n, l2=l2, seed=s),
        st.sampled_from([(3, 3, 2), (3, 1, 3, 2)]),
        st.just(7),
        l2s,
        seeds,
    ),
    "rosenbrock": st.builds(lambda d: P.rosenbrock(d), st.integers(2, 5)),
}


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(leaf, dtype=np.float64) for leaf in jax.tree_util.tree_leaves(tree)]


def _perturb(x0, seed: int, scale: float):
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a) + scale * rng.standard_normal(a.shape)), x0)


def _numpy_central_diff(np_fun, params, args) -> list[np.ndarray]:
    """Central differences of ``np_fun`` in NumPy float64, step cbrt(eps)·max(1, |x_i|)."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    flat = [np.asarray(leaf, dtype=np.float64) for leaf in leaves]
    out = []
    for j, leaf in enumerate(flat):
        g = np.zeros_like(leaf)
        for idx in np.ndindex(leaf.shape):
            h = np.finfo(np.float64).eps ** (1 / 3) * max(1.0, abs(leaf[idx]))
            vals = []
            for step in (h, -h):
                moved = [a.copy() for a in flat]
                moved[j][idx] += step
                vals.append(np_fun(jax.tree_util.tree_unflatten(treedef, moved), *args))
            g[idx] = (vals[0] - vals[1]) / (2 * h)
        out.append(g)
    return out


@pytest.mark.parametrize("family", list(FAMILIES))
@SETTINGS
@given(data=st.data(), point_seed=seeds)
def test_jax_numpy_and_finite_differences_agree(family, data, point_seed):
    """For random shapes, data and points (float64):
    - ``jax.grad(fun)`` equals the hand-written ``np_grad`` (rtol 1e-10), same structure;
    - ``fun`` equals ``np_fun`` (rtol 1e-12);
    - both gradients agree with ``_numpy_central_diff`` of ``np_fun`` (the independent reference).
    """
    problem = data.draw(FAMILIES[family])
    x = _perturb(problem.x0, point_seed, 0.5)
    g_jax = jax.grad(problem.fun)(x, *problem.args)
    g_np = problem.np_grad(x, *problem.args)
    assert jax.tree_util.tree_structure(g_jax) == jax.tree_util.tree_structure(g_np)
    scale = max(1.0, *(np.max(np.abs(g), initial=0.0) for g in _leaves(g_np)))
    for a, b in zip(_leaves(g_jax), _leaves(g_np)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13 * scale)
    f = problem.np_fun(x, *problem.args)
    np.testing.assert_allclose(float(problem.fun(x, *problem.args)), f, rtol=1e-12, atol=1e-14)
    fd = _numpy_central_diff(problem.np_fun, x, problem.args)
    for a, b, c in zip(_leaves(g_jax), _leaves(g_np), fd):
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-8 * max(1.0, abs(f)))
        np.testing.assert_allclose(b, c, rtol=1e-6, atol=1e-8 * max(1.0, abs(f)))


# ----------------------------------------------------------------------------- known solutions


@SETTINGS
@given(n_extra=st.integers(2, 20), d=st.integers(1, 5), fit_intercept=st.booleans(), seed=seeds)
def test_linear_regression_solution_matches_sklearn(n_extra, d, fit_intercept, seed):
    """Reference: ``sklearn.linear_model.LinearRegression`` (with intercept) and
    ``scipy.linalg.lstsq`` (without); the gradient at the solution vanishes."""
    problem = P.linear_regression(d + n_extra, d, fit_intercept=fit_intercept, seed=seed)
    X, y = (np.asarray(a) for a in problem.args)
    sol = problem.solution
    if fit_intercept:
        model = LinearRegression().fit(X, y)
        np.testing.assert_allclose(np.asarray(sol["w"]), model.coef_, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(float(sol["b"]), model.intercept_, rtol=1e-8, atol=1e-10)
    else:
        np.testing.assert_allclose(np.asarray(sol["w"]), scipy.linalg.lstsq(X, y)[0], rtol=1e-8, atol=1e-10)
        assert set(sol) == {"w"}
    assert problem.value_at_solution == pytest.approx(problem.np_fun(sol, X, y), rel=1e-12)
    for g in _leaves(problem.np_grad(sol, X, y)):
        np.testing.assert_allclose(g, 0.0, atol=1e-10)


def test_linear_regression_user_data():
    """Reference: ``numpy.linalg.lstsq`` on the user's X (with a column of ones), computed here."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([1.0, 3.0, 5.0, 7.5])
    problem = P.linear_regression(X=X, y=y)
    coef = np.linalg.lstsq(np.hstack([X, np.ones((4, 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(problem.solution["w"]), coef[:1])
    np.testing.assert_allclose(float(problem.solution["b"]), coef[1])
    assert problem.x0["w"].shape == (1,)


def _scipy_minimiser(problem: P.Problem):
    """Minimise ``np_fun`` with scipy's L-BFGS-B using the hand-written gradient."""
    leaves, treedef = jax.tree_util.tree_flatten(problem.x0)
    shapes = [np.shape(leaf) for leaf in leaves]
    bounds = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
    args = [np.asarray(a) for a in problem.args]

    def unravel(v):
        return jax.tree_util.tree_unflatten(treedef, [v[a:b].reshape(s) for a, b, s in zip(bounds, bounds[1:], shapes)])

    def fg(v):
        p = unravel(v)
        g = jax.tree_util.tree_leaves(problem.np_grad(p, *args))
        return problem.np_fun(p, *args), np.concatenate([np.ravel(leaf) for leaf in g])

    flat0 = np.concatenate([np.ravel(np.asarray(leaf)) for leaf in leaves])
    res = scipy.optimize.minimize(fg, flat0, jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15})
    return unravel(res.x)


@pytest.mark.parametrize("seed", [0, 1])
def test_logistic_regression_minimiser_matches_sklearn(seed):
    """Reference: ``sklearn.linear_model.LogisticRegression`` with C = 1/(n·l2) (same objective
    up to the factor n·l2, intercept unpenalised), against scipy's L-BFGS-B on our loss."""
    n, l2 = 80, 0.05
    problem = P.logistic_regression(n, 3, l2=l2, seed=seed)
    X, y = (np.asarray(a) for a in problem.args)
    model = LogisticRegression(C=1.0 / (n * l2), tol=1e-12, max_iter=10_000).fit(X, y)
    ours = _scipy_minimiser(problem)
    np.testing.assert_allclose(np.asarray(ours["w"]), model.coef_[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(ours["b"]), model.intercept_[0], rtol=1e-5, atol=1e-6)


def test_softmax_regression_minimiser_matches_sklearn():
    """Reference: multinomial ``sklearn.linear_model.LogisticRegression`` with C = 1/(n·l2);
    intercepts are compared after centring (softmax is invariant to a common shift)."""
    n, k, l2 = 90, 3, 0.05
    problem = P.softmax_regression(n, 2, k, l2=l2, seed=0)
    X, y = (np.asarray(a) for a in problem.args)
    model = LogisticRegression(C=1.0 / (n * l2), tol=1e-12, max_iter=10_000).fit(X, y)
    ours = _scipy_minimiser(problem)
    np.testing.assert_allclose(np.asarray(ours["W"]), model.coef_.T, rtol=1e-5, atol=1e-6)
    b = np.asarray(ours["b"])
    np.testing.assert_allclose(b - b.mean(), model.intercept_ - model.intercept_.mean(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("d", [2, 3, 7])
def test_rosenbrock_minimiser(d):
    """Reference: the known minimiser (1, ..., 1) with value 0, and the classic x0 (-1.2, 1, ...)."""
    problem = P.rosenbrock(d)
    ones = jnp.ones(d)
    np.testing.assert_array_equal(np.asarray(problem.solution), np.ones(d))
    assert problem.value_at_solution == 0.0 and float(problem.fun(ones)) == 0.0
    np.testing.assert_array_equal(np.asarray(jax.grad(problem.fun)(ones)), 0.0)
    np.testing.assert_array_equal(problem.np_grad(np.ones(d)), 0.0)
    np.testing.assert_array_equal(np.asarray(problem.x0), [(-1.2 if i % 2 == 0 else 1.0) for i in range(d)])
    # f(x0) for d = 2 is the textbook 24.2
    if d == 2:
        assert float(problem.fun(problem.x0)) == pytest.approx(24.2)


@SETTINGS
@given(d=st.integers(1, 8), seed=seeds)
def test_quadratic_norm_gradient_vanishes_on_the_sphere(d, seed):
    """Reference: the closed form; every x with x·x = 10 is a minimiser with value 0."""
    problem = P.quadratic_norm(d, seed=seed)
    x = np.random.default_rng(seed).standard_normal(d)
    x = x * np.sqrt(10.0) / np.linalg.norm(x)
    assert P.is_quadratic_norm_minimiser(x)
    assert float(problem.fun(jnp.asarray(x))) == pytest.approx(0.0, abs=1e-24)
    np.testing.assert_allclose(np.asarray(jax.grad(problem.fun)(jnp.asarray(x))), 0.0, atol=1e-12)
    np.testing.assert_allclose(problem.np_grad(x), 0.0, atol=1e-12)
    assert problem.solution is None and problem.value_at_solution == 0.0
    assert not P.is_quadratic_norm_minimiser(1.1 * x)


def test_quadratic_norm_with_c_zero_has_the_origin_as_its_minimiser():
    """Reference: c = 0 makes f = (x·x)^2, minimised at the origin only; a point near it is
    accepted to rtol (relative to max(c, 1)), where a tolerance of rtol * c = 0 accepted nothing
    but exact zeros (lbfgs's GTOL answer, loss 1e-9, was called not a minimiser)."""
    res = jaxgd.minimize(P.quadratic_norm(3, c=0.0).fun, jnp.ones(3), method="lbfgs")
    # a quartic minimum: ||g|| = 4 |x|^3 <= gtol = 1e-6 leaves |x| ~ 5e-3, x·x ~ 3e-5
    assert res.success and P.is_quadratic_norm_minimiser(res.params, c=0.0, rtol=1e-4)
    assert P.is_quadratic_norm_minimiser(np.array([1e-20, 0.0, 0.0]), c=0.0)
    assert not P.is_quadratic_norm_minimiser(np.array([0.1, 0.0, 0.0]), c=0.0)  # x·x = 1e-2 > 1e-6


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logistic_loss_finite_for_huge_logits(dtype):
    """Reference: hand computation. Logits ±1e4: loss (1e4 + 1e4 + 0)/3, gradient
    w: ((1-0)·1e4 + (0-1)·(-1e4) + 0)/3 + l2·w, b: (1 - 1 + 0)/3."""
    X, y = np.array([[1e4], [-1e4], [1e4]]), np.array([0, 1, 1])
    problem = P.logistic_regression(X=X, y=y, l2=0.0, dtype=dtype)
    params = {"b": jnp.zeros((), dtype), "w": jnp.ones(1, dtype)}
    expected_grad = {"b": 0.0, "w": [2e4 / 3]}
    for value in (problem.fun(params, *problem.args), problem.np_fun(params, *problem.args)):
        assert np.isfinite(value) and float(value) == pytest.approx(2e4 / 3, rel=1e-6)
    for g in (jax.grad(problem.fun)(params, *problem.args), problem.np_grad(params, *problem.args)):
        assert all(np.all(np.isfinite(leaf)) for leaf in _leaves(g))
        np.testing.assert_allclose(np.asarray(g["w"], dtype=np.float64), expected_grad["w"], rtol=1e-6)
        np.testing.assert_allclose(float(g["b"]), expected_grad["b"], atol=1e-6)


def test_softmax_and_mlp_finite_for_huge_logits():
    """Reference: hand computation; logits of 1e4 give loss = 1e4 - max-logit gap, finite."""
    X, y = np.array([[1e4], [-1e4]]), np.array([0, 1])
    problem = P.softmax_regression(X=X, y=y, k=2, l2=0.0)
    params = {"W": jnp.array([[1.0, -1.0]]), "b": jnp.zeros(2)}
    # row 0: logits (1e4, -1e4), label 0 -> loss 0; row 1: (-1e4, 1e4), label 1 -> 0
    assert float(problem.fun(params, *problem.args)) == pytest.approx(0.0, abs=1e-12)
    wrong = {"W": -params["W"], "b": params["b"]}
    assert float(problem.fun(wrong, *problem.args)) == pytest.approx(2e4)
    assert problem.np_fun(wrong, *problem.args) == pytest.approx(2e4)
    g = jax.grad(problem.fun)(wrong, *problem.args)
    np.testing.assert_allclose(np.asarray(g["W"]), problem.np_grad(wrong, *problem.args)["W"])
    assert np.all(np.isfinite(np.asarray(g["W"])))
    net = P.mlp((1, 2, 2), X=X, y=y)
    huge = jax.tree_util.tree_map(lambda a: 1e4 * a, net.x0)
    assert np.isfinite(float(net.fun(huge, *net.args))) and np.isfinite(net.np_fun(huge, *net.args))


# ----------------------------------------------------------------------------- dtypes and registry


def test_dtype_default_and_float32():
    """Reference: the documented dtype rule (float64 under x64, else float32)."""
    p64 = P.softmax_regression(10, 2, 3)
    assert p64.x0["W"].dtype == jnp.float64 and p64.args[0].dtype == jnp.float64
    p32 = P.softmax_regression(10, 2, 3, dtype=jnp.float32)
    assert p32.x0["W"].dtype == jnp.float32 and p32.args[0].dtype == jnp.float32
    assert p32.args[1].dtype == jnp.int32
    with jax.enable_x64(False):
        assert P.rosenbrock(3).x0.dtype == jnp.float32
        with pytest.raises(ValueError) as info:
            P.rosenbrock(3, dtype=np.float64)
        assert str(info.value) == P.MSG_FLOAT64_NEEDS_X64
    with pytest.raises(ValueError) as info:
        P.rosenbrock(3, dtype=np.int32)
    assert str(info.value) == P.MSG_DTYPE_NOT_FLOAT.format(dtype=np.int32)


def test_all_problems_registry():
    """Reference: PROBLEM_NAMES; x0 and the hand-written gradient share a structure.
    (JAX-vs-NumPy agreement of these problems: tests/test_check_cmd.py runs them all.)"""
    found = P.all_problems(seed=3)
    assert tuple(p.name for p in found) == P.PROBLEM_NAMES
    for p in found:
        assert isinstance(p, P.Problem)
        g = p.np_grad(p.x0, *p.args)
        assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(p.x0)
        assert np.isfinite(p.np_fun(p.x0, *p.args))
    assert [len(p.x0) for p in found if p.name.startswith("mlp")] == [2, 3]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: P.linear_regression(X=np.ones((3, 2))), P.MSG_XY_BOTH.format(x="an array", y="None")),
        (lambda: P.linear_regression(X=np.ones(3), y=np.ones(3)), P.MSG_X_SHAPE.format(shape=(3,))),
        (lambda: P.linear_regression(X=np.ones((3, 2)), y=np.ones(4)), P.MSG_Y_SHAPE.format(n=3, shape=(4,))),
        (lambda: P.logistic_regression(X=np.ones((2, 1)), y=np.array([0, 2])), P.MSG_Y_BINARY.format(values=np.array([0, 2]))),
        (lambda: P.softmax_regression(k=2, X=np.ones((2, 1)), y=np.array([0, 2])), P.MSG_Y_CLASSES.format(k=2, values=np.array([0, 2]))),
        (lambda: P.mlp((3, 4)), P.MSG_SIZES.format(sizes=(3, 4))),
        (lambda: P.rosenbrock(1), P.MSG_ROSENBROCK_D.format(d=1)),
        (lambda: P.quadratic_norm(0), P.MSG_POSITIVE.format(name="d", value=0)),
        (lambda: P.logistic_regression(l2=-1.0), P.MSG_NONNEGATIVE.format(name="l2", value=-1.0)),
    ],
)
def test_bad_arguments(call, message):
    """Reference: the module's message constants."""
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


FACTORIES = [P.quadratic_norm, P.linear_regression, P.logistic_regression, P.softmax_regression, P.mlp, P.rosenbrock]


@pytest.mark.parametrize("factory", [*FACTORIES, P.all_problems, P.is_quadratic_norm_minimiser])
def test_public_functions_documented_and_annotated(factory):
    """Reference: STYLE.md principle 10 (docstring sections) and 9 (annotations)."""
    doc = inspect.getdoc(factory)
    for section in ("Args:", "Returns:", "Raises:", "Reference"):
        assert section in doc, section
    if factory in FACTORIES:
        assert ".. math::" in doc
    hints = typing.get_type_hints(factory)
    assert set(inspect.signature(factory).parameters) | {"return"} == set(hints)
