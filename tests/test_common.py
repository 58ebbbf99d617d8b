"""One battery of invariants over every registered method (STYLE.md principle 12).

``METHODS_UNDER_TEST`` is read from the registry, so a method added later
(bfgs, lbfgs, cg, ...) joins the battery without editing this file. Each
method must: converge on a convex quadratic (reference: np.linalg.solve);
keep a stable loop carry; preserve float32 and float64; accept a schedule;
give the same answer jitted and eager; not retrace for a new lr.

Every check runs twice (the ``precision`` fixture of conftest.py): in float64
with x64 on, and in float32 with x64 off -- JAX's default, the configuration
most users run -- with tolerances that belong to each dtype.
"""

from __future__ import annotations

import numpy as np
import jax
import pytest

import jaxgd
from jaxgd.directions import registry as _directions

from conftest import QUAD_A as A, QUAD_B as B, QUAD_TRACES as TRACES, assert_same_first_steps, float_leaves_are, quad
from conftest import quad_x0 as x0

METHODS_UNDER_TEST = jaxgd.methods()
# Step sizes that make each first-order method converge on the test quadratic;
# methods whose default step size is a rule (line search) use their default.
LR = {"gd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.5, "rmsprop": 0.001, "adam": 0.05, "adamw": 0.05}


def lr_for(method: str):
    if callable(_directions.resolve(method).default_lr):
        return None
    return LR.get(method, 0.05)


def converge(method, precision, lr=None):
    """test_converges_on_quadratic's run: the jit-vs-eager and no-retrace checks make the same
    call (``lr`` aside, a leaf), so they re-use its compiled loop."""
    return jaxgd.minimize(quad, x0(precision.dtype), method=method, lr=lr_for(method) if lr is None else lr,
                          max_steps=5000, gtol=precision.gtol)


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
def test_converges_on_quadratic(method, precision):
    """Reference: the closed-form minimiser A^{-1} b (NumPy, float64).

    The smallest eigenvalue of A is > 0.8, so ||x - x*|| <= ||g|| / 0.8: a
    run stopped by gtol is within 2 gtol of the answer, in either dtype.
    """
    res = converge(method, precision)
    sol = np.linalg.solve(A, B)
    got = np.concatenate([np.asarray(res.params["w"]), [float(res.params["b"])]])
    assert float_leaves_are(res.params, precision.dtype)
    if method == "rmsprop":  # its normalised steps hover at O(lr) around the minimiser
        np.testing.assert_allclose(got, sol, atol=5e-3)
        return
    assert res.status_enum is jaxgd.Status.GTOL, res.message
    np.testing.assert_allclose(got, sol, rtol=0, atol=2 * precision.gtol)


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
def test_stable_carry_and_dtype(method, precision):
    """The loop carry after init and two steps has one structure, shapes, dtypes and weak
    types (what ``lax.while_loop`` requires). ``jax.eval_shape`` traces each step as
    ``jit`` would, without compiling it."""
    dtype = precision.dtype
    solver = jaxgd.Solver(quad, method, lr_for(method), gtol=0.0)
    s0 = jax.eval_shape(solver.init, x0(dtype))
    s1 = jax.eval_shape(solver.step, s0)
    s2 = jax.eval_shape(solver.step, s1)
    spec = lambda s: jax.tree_util.tree_map(lambda x: (x.shape, x.dtype, x.weak_type), s)  # noqa: E731
    assert jax.tree_util.tree_structure(s0) == jax.tree_util.tree_structure(s2)
    assert spec(s0) == spec(s1) == spec(s2)
    assert s2.params["w"].dtype == dtype and s2.value.dtype == dtype
    assert float_leaves_are((s2.params, s2.value, s2.grad, s2.grad_norm, s2.alpha), dtype)


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
def test_accepts_schedule(method, precision):
    if lr_for(method) is None:
        pytest.skip("method's default step size is a line search")
    sched = jaxgd.schedules.inverse_time_decay(lr_for(method), 0.01)
    res = jaxgd.minimize(quad, x0(precision.dtype), method=method, lr=sched, max_steps=30, gtol=0.0)
    # reference: the schedule's closed form lr0 / (1 + 0.01 k), in float64 NumPy
    expected = [lr_for(method) / (1.0 + 0.01 * k) for k in range(30)]
    np.testing.assert_allclose(np.asarray(res.history.lr), expected, rtol=4 * precision.eps)
    assert res.history.lr.dtype == precision.dtype


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
def test_jit_equals_eager(method, precision):
    """Reference: the same solver run op by op with jax.disable_jit, for its first steps.

    The compiled side is test_converges_on_quadratic's ``minimize`` call (its loop, re-used
    when that test ran first in this process); the two runs' histories must agree step by step.
    """
    # Line searches run op by op under disable_jit: 3 steps keep that affordable.
    steps = 8 if lr_for(method) is not None else 3
    solver = jaxgd.Solver(quad, method, lr_for(method), max_steps=steps, gtol=0.0)
    with jax.disable_jit():
        eager = solver.run(x0(precision.dtype))
    jitted = converge(method, precision)
    # XLA may fuse and reorder a jitted loop's arithmetic: agreement to a few hundred ulps.
    assert_same_first_steps(jitted, eager, precision.dtype, rtol=500 * precision.eps, atol=100 * precision.eps)


@pytest.mark.parametrize("method", METHODS_UNDER_TEST)
def test_new_lr_does_not_retrace(method, precision):
    """A new lr re-uses the compiled loop: the second call does not trace the loss. The
    call is test_converges_on_quadratic's (:func:`converge`), so the first one re-uses its
    loop too when that test ran first in this process (``quad`` counts every trace)."""
    if lr_for(method) is None:
        pytest.skip("method's default step size is a line search")
    first = converge(method, precision, lr=0.01)
    n = len(TRACES)
    second = converge(method, precision, lr=0.02)
    assert n > 0 and len(TRACES) == n
    assert int(first.steps) > 0 and int(second.steps) > 0 and float(first.history.lr[0]) != float(second.history.lr[0])
