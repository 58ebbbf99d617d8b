"""The one update step (jaxgd.core.update) as seen through fit and Solver.

References: scikit-learn's ``Lasso`` (coordinate descent) for ``fit(l1=)``,
``scipy.optimize.nnls`` (Lawson-Hanson) for ``fit(bounds=(0, None))``, a
hand-written NumPy ISTA loop for fit's step-by-step agreement with
``minimize``, and jax's own compile events for the hand-driven loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import nnls
from sklearn.linear_model import Lasso

import jaxgd
from jaxgd.core import update as _update


def _least_squares(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[: d // 3 + 1] = rng.normal(size=d // 3 + 1) * 2
    return X, X @ w + 0.1 * rng.normal(size=n)


def _half_mse(p: jax.Array, batch: tuple) -> jax.Array:
    X, y = batch
    return 0.5 * jnp.mean((X @ p - y) ** 2)


def _lipschitz(X: np.ndarray) -> float:
    return float(np.linalg.eigvalsh(X.T @ X / X.shape[0]).max())


@pytest.mark.parametrize("accelerated,epochs", [(False, 3000), (True, 600)])
def test_fit_l1_full_batch_matches_sklearn_lasso(accelerated: bool, epochs: int) -> None:
    """Reference: sklearn.linear_model.Lasso minimises 1/(2n)||y - Xw||^2 + alpha ||w||_1."""
    X, y = _least_squares(0, 60, 8)
    alpha = 0.1
    res = jaxgd.fit(
        _half_mse, jnp.zeros(8), (jnp.asarray(X), jnp.asarray(y)), batch_size=60, epochs=epochs,
        key=jax.random.key(0), method="gd", lr=1.0 / _lipschitz(X), l1=alpha, accelerated=accelerated,
        progress=False,
    )
    ref = Lasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=100_000).fit(X, y).coef_
    np.testing.assert_allclose(np.asarray(res.params), ref, atol=1e-8)
    assert (np.asarray(res.params) == 0).sum() == (ref == 0).sum() > 0  # exact zeros, as the prox makes


def test_fit_bounds_nonnegative_matches_scipy_nnls() -> None:
    """Reference: scipy.optimize.nnls solves min ||Ax - b|| subject to x >= 0."""
    rng = np.random.default_rng(1)
    A, b = rng.normal(size=(30, 6)), rng.normal(size=30)
    res = jaxgd.fit(
        _half_mse, jnp.ones(6), (jnp.asarray(A), jnp.asarray(b)), batch_size=30, epochs=3000,
        key=jax.random.key(0), method="gd", lr=1.0 / _lipschitz(A), bounds=(0, None), progress=False,
    )
    ref, _ = nnls(A, b)
    assert (ref == 0).any()  # the constraint is active somewhere
    np.testing.assert_allclose(np.asarray(res.params), ref, atol=1e-10)
    assert (np.asarray(res.params) >= 0).all()


def test_fit_full_batch_l1_equals_minimize_ista_and_numpy() -> None:
    """One full batch per epoch is ISTA: fit, minimize and a NumPy loop agree step for step."""
    X, y = _least_squares(2, 40, 5)
    lr, l1, steps = 1.0 / _lipschitz(X), 0.05, 25
    fitted = jaxgd.fit(
        _half_mse, jnp.zeros(5), (jnp.asarray(X), jnp.asarray(y)), batch_size=40, epochs=steps,
        key=jax.random.key(0), method="gd", lr=lr, l1=l1, progress=False,
    )
    res = jaxgd.minimize(
        lambda p: _half_mse(p, (X, y)), jnp.zeros(5), method="gd", lr=lr, l1=l1, max_steps=steps, gtol=0.0
    )
    w = np.zeros(5)
    for _ in range(steps):  # ISTA, Beck & Teboulle 2009 eq. 1.4
        v = w - lr * X.T @ (X @ w - y) / 40
        w = np.sign(v) * np.maximum(np.abs(v) - lr * l1, 0)
    np.testing.assert_allclose(np.asarray(fitted.params), w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(res.params), w, rtol=1e-12, atol=1e-14)


def test_update_is_a_pure_function_of_grads_state_params() -> None:
    """update(parts, grads, state, params) with a Solver as the parts: one GD step by hand."""
    solver = jaxgd.Solver(lambda p: jnp.sum(p**2), method="gd", lr=0.25, l1=0.1)
    params = jnp.array([1.0, -0.02, 0.5])
    grads = 2 * params
    state = _update.init(solver, params, jnp.sum(params**2), grads)
    trial, new_state, alpha, _ = _update.update(
        solver, grads, state, params, value=jnp.sum(params**2), value_fn=lambda p: jnp.sum(p**2)
    )
    v = np.asarray(params) - 0.25 * np.asarray(grads)
    expected = np.sign(v) * np.maximum(np.abs(v) - 0.25 * 0.1, 0)
    np.testing.assert_allclose(np.asarray(trial.params), expected, rtol=1e-15)
    assert float(alpha) == 0.25 and int(new_state.count) == 1


def _count_compiles():
    counter = {"n": 0}

    def listen(event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            counter["n"] += 1

    jax.monitoring.register_event_duration_secs_listener(listen)
    return counter


def test_hand_driven_jit_step_compiles_once_and_stopped_state_stays_put() -> None:
    """README's loop ``state = jax.jit(s.step)(state)``: one compile; after GTOL nothing moves."""
    counter = _count_compiles()
    s = jaxgd.Solver(lambda x: jnp.sum((x - 3.0) ** 2), lr=0.1, gtol=1e-3, max_steps=1000)
    state = s.init(jnp.zeros(3))
    assert s.step is s.step
    before = counter["n"]
    for _ in range(60):
        state = jax.jit(s.step)(state)
    assert counter["n"] - before == 1
    assert jaxgd.Status(int(state.status)) is jaxgd.Status.GTOL
    frozen = state
    for _ in range(270):
        state = jax.jit(s.step)(state)
    assert counter["n"] - before == 1
    for a, b in zip(jax.tree_util.tree_leaves(frozen), jax.tree_util.tree_leaves(state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_step_past_max_steps_stays_put_and_reads_max_steps() -> None:
    s = jaxgd.Solver(lambda x: jnp.sum((x - 3.0) ** 2), lr=0.01, gtol=0.0, max_steps=5)
    state = s.init(jnp.zeros(2))
    step = jax.jit(s.step)
    for _ in range(5):
        state = step(state)
    assert int(state.count) == 5 and jaxgd.Status(int(state.status)) is jaxgd.Status.RUNNING
    after = step(step(state))
    np.testing.assert_array_equal(np.asarray(after.params), np.asarray(state.params))
    assert int(after.count) == 5 and jaxgd.Status(int(after.status)) is jaxgd.Status.MAX_STEPS
    assert int(after.nfev) == int(state.nfev)


def test_per_leaf_l1_leaves_the_intercept_unpenalised_like_sklearn() -> None:
    """l1={"w": a, "b": 0.0}: scikit-learn's Lasso with fit_intercept=True (intercept unpenalised)."""
    X, y = _least_squares(3, 50, 4)
    y = y + 3.0
    a = 0.05
    loss = lambda p, batch: 0.5 * jnp.mean((batch[0] @ p["w"] + p["b"] - batch[1]) ** 2)  # noqa: E731
    p0 = {"w": jnp.zeros(4), "b": jnp.zeros(())}
    ref = Lasso(alpha=a, fit_intercept=True, tol=1e-14, max_iter=100_000).fit(X, y)
    Xc = np.c_[X, np.ones(50)]
    lr = 1.0 / _lipschitz(Xc)
    res = jaxgd.minimize(
        lambda p: loss(p, (X, y)), p0, method="gd", lr=lr, l1={"w": a, "b": 0.0}, max_steps=20_000, gtol=1e-12
    )
    np.testing.assert_allclose(np.asarray(res.params["w"]), ref.coef_, atol=1e-8)
    np.testing.assert_allclose(float(res.params["b"]), ref.intercept_, atol=1e-8)
    fitted = jaxgd.fit(
        loss, p0, (jnp.asarray(X), jnp.asarray(y)), batch_size=50, epochs=3000, key=jax.random.key(0),
        method="gd", lr=lr, l1={"w": a, "b": 0.0}, accelerated=True,
    )
    np.testing.assert_allclose(np.asarray(fitted.params["w"]), ref.coef_, atol=1e-8)


def test_per_leaf_l2_is_ridge_on_the_weights_only() -> None:
    """l2={"w": lam, "b": 0}: the closed-form ridge solution with an unpenalised intercept (NumPy)."""
    X, y = _least_squares(4, 40, 3)
    lam = 0.3
    loss = lambda p: 0.5 * jnp.mean((X @ p["w"] + p["b"] - y) ** 2)  # noqa: E731
    res = jaxgd.minimize(
        loss, {"w": jnp.zeros(3), "b": jnp.zeros(())}, method="lbfgs", l2={"w": lam, "b": 0.0}, gtol=1e-12,
        max_steps=500,
    )
    Xc = np.c_[X, np.ones(40)]
    reg = np.diag([lam, lam, lam, 0.0])
    ref = np.linalg.solve(Xc.T @ Xc / 40 + reg, Xc.T @ y / 40)
    np.testing.assert_allclose(np.r_[np.asarray(res.params["w"]), float(res.params["b"])], ref, rtol=1e-9)


def test_penalty_pytree_must_fit_the_params() -> None:
    with pytest.raises(ValueError, match="l1 must be a number or a pytree with the structure of the parameters"):
        jaxgd.minimize(lambda p: jnp.sum(p["w"] ** 2), {"w": jnp.ones(2)}, l1={"v": 0.1})
    with pytest.raises(ValueError, match="l2 must be a non-negative finite number"):
        jaxgd.minimize(lambda p: jnp.sum(p["w"] ** 2), {"w": jnp.ones(2)}, l2={"w": -1.0})


@pytest.mark.slow
def test_a_step_not_taken_keeps_the_point_and_records_the_direction_update() -> None:
    """L-BFGS on a loss that is NaN past x = 2 (the unit first step of a line search lands
    there, every trial of the last search too): the step that fails keeps params, loss,
    gradient, counts and the rule's state of the state before it; its direction state is the
    direction's own update at that point (reference: ``direction.update`` called by hand),
    not rolled back (rolling back copied the whole memory every step). Stepped again, the
    stopped state stays put in every leaf."""
    loss = lambda x: jnp.where(jnp.all(x < 2.0), jnp.sum((x - 3.0) ** 2 * jnp.arange(1.0, 4.0)), jnp.nan)  # noqa: E731
    s = jaxgd.Solver(loss, "lbfgs", gtol=1e-8, max_steps=50)
    step = jax.jit(s.step)
    state = s.init(jnp.zeros(3))
    while jaxgd.Status(int(state.status)) is jaxgd.Status.RUNNING:
        before, state = state, step(state)
    assert jaxgd.Status(int(state.status)) in (jaxgd.Status.LINESEARCH_FAILED, jaxgd.Status.NONFINITE), state.status
    for field in ("params", "value", "grad", "grad_norm", "count", "rule_state", "alpha"):
        for a, b in zip(jax.tree_util.tree_leaves(getattr(state, field)), jax.tree_util.tree_leaves(getattr(before, field))):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=field)
    _, want = s.direction.update(before.grad, before.direction_state, before.params, value=before.value, value_fn=loss)
    for a, b in zip(jax.tree_util.tree_leaves(state.direction_state), jax.tree_util.tree_leaves(want)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    again = step(step(state))
    for a, b in zip(jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
