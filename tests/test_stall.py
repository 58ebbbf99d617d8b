"""No false failures, no wasted evaluations (issue 13 item 3): jaxgd/core/stall.py.

References: scipy.optimize.curve_fit (the float32 fit), closed forms (the
minimiser x = 3 of |x - 3| + 0.1 x^2, the gradient exp(-x) of -exp(-x),
the norm 5e200 of (3e200, 4e200)), scikit-learn's Lasso (gd + l1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import curve_fit

import jaxgd
from jaxgd import _tree
from jaxgd.core import stall

T = np.linspace(0.0, 4.0, 100)
Y = 2.5 * np.exp(-1.3 * T) + 0.5 + 0.05 * np.random.default_rng(0).standard_normal(100)


def exp_fit_loss(p, t, y):
    return jnp.sum((p[0] * jnp.exp(-p[1] * t) + p[2] - y) ** 2)


@pytest.mark.parametrize("method", ["lbfgs", "bfgs"])
def test_float32_exp_fit_succeeds_at_curve_fits_answer_without_running_to_max_steps(method):
    t, y = jnp.asarray(T, jnp.float32), jnp.asarray(Y, jnp.float32)
    res = jaxgd.minimize(exp_fit_loss, jnp.ones(3, jnp.float32), (t, y), method=method, max_steps=20_000)
    ref, _ = curve_fit(lambda t, a, b, c: a * np.exp(-b * t) + c, T, Y, p0=[1.0, 1.0, 1.0])
    assert res.params.dtype == jnp.float32
    assert res.success, res.message
    assert res.status_enum in (jaxgd.Status.GTOL, jaxgd.Status.PRECISION)
    if res.status_enum is jaxgd.Status.PRECISION:
        assert "precision of float32" in res.message
    np.testing.assert_allclose(res.params, ref, rtol=2e-3)
    assert int(res.nfev) < 200  # 10,774 before issue 13


@pytest.mark.parametrize("method", ["bfgs", "lbfgs", "cg"])
def test_nonsmooth_kink_stops_quickly_at_the_minimiser_and_is_not_a_success(method):
    # f = sum |x - 3| + 0.1 ||x||^2: one-sided slopes -0.4 and 1.6 at x = 3, so x = 3 (closed form).
    f = lambda x: jnp.sum(jnp.abs(x - 3.0)) + 0.1 * jnp.sum(x**2)  # noqa: E731
    res = jaxgd.minimize(f, jnp.zeros(3), method=method, max_steps=10_000)
    np.testing.assert_allclose(res.params, 3.0, atol=1e-6)
    assert not res.success
    assert res.status_enum in (jaxgd.Status.STALLED, jaxgd.Status.LINESEARCH_FAILED)
    if res.status_enum is jaxgd.Status.STALLED:
        assert "not be smooth" in res.message and "l1=" in res.message
    assert int(res.nfev) < 1000  # 13,000-30,000 before issue 13


def test_unbounded_below_stays_a_failure_with_a_finite_point_and_an_exact_gradient_norm():
    res = jaxgd.minimize(lambda x: -jnp.exp(-x[0]), jnp.zeros(1), method="lbfgs", max_steps=500)
    assert not res.success
    assert res.status_enum in (jaxgd.Status.LINESEARCH_FAILED, jaxgd.Status.NONFINITE, jaxgd.Status.MAX_STEPS)
    x = float(res.params[0])
    assert np.isfinite(x) and np.isfinite(float(res.loss))
    # |f'(x)| = exp(-x), finite, although its square overflows
    assert np.isfinite(float(res.grad_norm))
    np.testing.assert_allclose(float(res.grad_norm), np.exp(-x), rtol=1e-12)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1.0])
def test_norm_does_not_overflow_or_underflow(scale):
    tree = {"a": jnp.asarray([3.0 * scale]), "b": jnp.asarray([[4.0 * scale]])}
    np.testing.assert_allclose(float(_tree.norm(tree)), 5.0 * scale, rtol=1e-14)
    assert float(_tree.norm({"a": jnp.zeros(3)})) == 0.0
    assert np.isnan(float(_tree.norm({"a": jnp.asarray([1.0, jnp.nan])})))
    assert float(_tree.norm({"a": jnp.asarray([1.0, jnp.inf])})) == np.inf


def test_at_precision_is_relative_to_f_and_x():
    eps = np.finfo(np.float64).eps
    x = jnp.full(4, 10.0)  # ||x|| = 20
    assert bool(stall.at_precision(jnp.asarray(1e4), jnp.asarray(0.9 * np.sqrt(eps) * 1e4 / 20), x))
    assert not bool(stall.at_precision(jnp.asarray(1e4), jnp.asarray(1.1 * np.sqrt(eps) * 1e4 / 20), x))
    assert not bool(stall.at_precision(jnp.asarray(jnp.inf), jnp.asarray(0.0), x))


@pytest.mark.parametrize("method", ["bfgs", "lbfgs", "cg"])
def test_l1_with_a_rescaled_direction_is_refused_up_front(method):
    with pytest.raises(ValueError, match=f"l1=0.1 cannot be combined with method='{method}'"):
        jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), method=method, l1=0.1)
    jaxgd.Solver(lambda x: jnp.sum(x**2), method, l1=0.0)  # l1 off is fine


def test_gd_with_l1_matches_sklearn_lasso():
    from sklearn.linear_model import Lasso

    rng = np.random.default_rng(1)
    a = rng.standard_normal((50, 10))
    b = a[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.01 * rng.standard_normal(50)
    alpha = 0.1
    ref = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(a, b).coef_
    loss = lambda w: jnp.sum((jnp.asarray(a) @ w - jnp.asarray(b)) ** 2) / (2 * 50)  # noqa: E731
    lip = np.linalg.eigvalsh(a.T @ a / 50).max()
    res = jaxgd.minimize(loss, jnp.zeros(10), method="gd", lr=1.0 / lip, l1=alpha, accelerated=True, max_steps=5000, gtol=1e-10)
    np.testing.assert_allclose(res.params, ref, atol=1e-6)
    assert (np.asarray(res.params) == 0).sum() == (ref == 0).sum()
