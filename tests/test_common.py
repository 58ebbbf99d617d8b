"""One battery of invariants over every registered method (STYLE.md principle 12).

``METHODS_UNDER_TEST`` is read from the registry, so a method added later
(bfgs, lbfgs, cg, ...) joins the battery without editing this file. Each
method must: converge on a convex quadratic (reference: np.linalg.solve);
keep a stable loop carry; preserve float32 and float64; accept a schedule;
give the same answer jitted and eager; not retrace for a new lr.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
import pytest

import jaxgd
from jaxgd.directions import registry as _directions

METHODS_UNDER_TEST = jaxgd.methods()
# Step sizes that make each first-order method converge on the test quadratic;
# methods whose default step size is a rule (line search) use their default.
LR = {"gd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.5, "rmsprop": 0.001, "adam": 0.05, "adamw": 0.05}


def lr_for(method: str):
    if callable(_directions.resolve(method).default_lr):
        return None
    return LR.get(method, 0.05)


A = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])
B = np.array([1.0, -2.0, 0.5])


def quad(p):
    x = jnp.concatenate([p["w"], p["b"][None]])
    a, b = jnp.asarray(A, x.dtype), jnp.asarray(B, x.dtype)
    return 0.5 * x @ a @ x - b @ x


def x0(dtype=jnp.float64):
    return {"w": jnp.zeros(2, dtype), "b": jnp.asarray(0.0, dtype)}


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
def test_converges_on_quadratic(method):
    """Reference: the closed-form minimiser A^{-1} b."""
    res = jaxgd.minimize(quad, x0(), method=method, lr=lr_for(method), max_steps=5000, gtol=1e-6)
    sol = np.linalg.solve(A, B)
    got = np.concatenate([np.asarray(res.params["w"]), [float(res.params["b"])]])
    # rmsprop's normalised steps hover at O(lr) around the minimiser.
    np.testing.assert_allclose(got, sol, atol=5e-3 if method == "rmsprop" else 1e-4)


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_stable_carry_and_dtype(method, dtype):
    solver = jaxgd.Solver(quad, method, lr_for(method), gtol=0.0)
    s0 = solver.init(x0(dtype))
    s1 = jax.jit(solver.step)(s0)
    s2 = jax.jit(solver.step)(s1)
    spec = lambda s: jax.tree_util.tree_map(lambda x: (jnp.shape(x), jnp.result_type(x)), s)  # noqa: E731
    assert jax.tree_util.tree_structure(s0) == jax.tree_util.tree_structure(s2)
    assert spec(s0) == spec(s1) == spec(s2)
    assert s2.params["w"].dtype == dtype and s2.value.dtype == dtype


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
def test_accepts_schedule(method):
    if lr_for(method) is None:
        pytest.skip("method's default step size is a line search")
    sched = jaxgd.schedules.inverse_time_decay(lr_for(method), 0.01)
    res = jaxgd.minimize(quad, x0(), method=method, lr=sched, max_steps=30, gtol=0.0)
    np.testing.assert_allclose(np.asarray(res.history.lr), [float(sched(k)) for k in range(30)], rtol=1e-12)


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
def test_jit_equals_eager(method):
    """Reference: the same solver run op by op with jax.disable_jit."""
    # Line searches run op by op under disable_jit: 3 steps keep that affordable.
    steps = 8 if lr_for(method) is not None else 3
    solver = jaxgd.Solver(quad, method, lr_for(method), max_steps=steps, gtol=0.0)
    with jax.disable_jit():
        eager = solver.run(x0())
    jitted = jax.jit(lambda s, x: s.run(x))(solver, x0())
    for k in ("w", "b"):
        np.testing.assert_allclose(np.asarray(jitted.params[k]), np.asarray(eager.params[k]), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
def test_new_lr_does_not_retrace(method):
    if lr_for(method) is None:
        pytest.skip("method's default step size is a line search")
    traces = []

    def fun(p):
        traces.append(1)
        return quad(p)

    jaxgd.minimize(fun, x0(), method=method, lr=0.01, max_steps=10)
    n = len(traces)
    jaxgd.minimize(fun, x0(), method=method, lr=0.02, max_steps=10)
    assert len(traces) == n
