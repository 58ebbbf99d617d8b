"""float32 with x64 off (JAX's default): a run that reaches the answer says so.

Users run JAX with x64 off. There, a default ``gtol=1e-6`` on the absolute
gradient norm can lie below what float32 can resolve: the gradient of a
sum of squares at its minimiser is a difference of O(|A| |r|) terms, each
rounded to ~6e-8 relative, so a run can sit at the right answer for ever and
report ``MAX_STEPS``. This file pins the contract from the user's side: every
registered method, on a plain sum-of-squares loss in float32, with the
default tolerances (``gtol``, ``ftol``, ``xtol``) and the method's default
step-size rule where it has one, reaches the answer (reference: NumPy's
float64 ``lstsq``/closed form) and then ends with a success status.

The first-order methods (no line search) end in ``PRECISION`` through the
solver's stall window (``jaxgd.core.stall``: no new lowest loss or gradient
norm for ``WINDOW`` steps at a point stationary to precision); the
quasi-Newton methods through Moré-Thuente's stall count. Before the window
(main at c99f15e) the seven first-order runs on ``lstsq`` sat at the answer
until ``MAX_STEPS``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.directions import registry as _directions

RNG = np.random.default_rng(0)
A_LS = RNG.normal(size=(30, 5))
Y_LS = A_LS @ RNG.normal(size=5) + 0.3 * RNG.normal(size=30)
T_SHIFT = np.linspace(-1.0, 2.0, 7)

# reference minimisers, float64 NumPy
ANSWER = {"lstsq": np.linalg.lstsq(A_LS, Y_LS, rcond=None)[0], "shift": T_SHIFT}
SIZE = {"lstsq": 5, "shift": 7}

# Step sizes for the methods whose default is a constant 1e-3 (too small to
# reach the answer in the budget); the others keep their default rule.
# Largest Hessian eigenvalue: 93 (lstsq), 2 (shift).
LR = {
    "lstsq": {"gd": 0.01, "momentum": 0.005, "nesterov": 0.005, "adagrad": 0.5, "adam": 0.05, "adamw": 0.05, "rmsprop": 1e-3},
    "shift": {"gd": 0.3, "momentum": 0.1, "nesterov": 0.1, "adagrad": 1.0, "adam": 0.05, "adamw": 0.05, "rmsprop": 1e-3},
}
MAX_STEPS = 3000

# On the zero-residual "shift" loss every method reaches gtol = 1e-6. On least
# squares with a residual (the curve-fit case of issue 17) every one sits at the
# answer with ||g|| ~ 1.4e-6 to 4e-6 > gtol (the float32 rounding floor of
# 2 A'(Ax - y)), whatever its step rule, and must say PRECISION.


class WrongStatus(AssertionError):
    """At the answer, but not a success status."""


def loss(problem: str):
    if problem == "lstsq":
        a, y = jnp.asarray(A_LS, jnp.float32), jnp.asarray(Y_LS, jnp.float32)
        return lambda x: jnp.sum((a @ x - y) ** 2)
    t = jnp.asarray(T_SHIFT, jnp.float32)
    return lambda x: jnp.sum((x - t) ** 2)


def lr_for(problem: str, method: str):
    if callable(_directions.resolve(method).default_lr):
        return None  # the method's own line search
    if method == "rmsprop":  # constant-lr RMSProp hovers at O(lr): halve it every 150 steps
        return optax.exponential_decay(0.02, transition_steps=150, decay_rate=0.5)
    return LR[problem][method]


def cases():
    for problem in ("shift", "lstsq"):
        for method in jaxgd.methods():
            yield pytest.param(problem, method, id=f"{problem}-{method}")


@pytest.mark.alternate("problem")  # (every problem in make slow)
@pytest.mark.parametrize("problem,method", list(cases()))
def test_float32_default_run_at_the_answer_reports_success(problem, method, x64_off):
    res = jaxgd.minimize(loss(problem), jnp.zeros(SIZE[problem]), method=method, lr=lr_for(problem, method), max_steps=MAX_STEPS, history=False)
    assert res.params.dtype == jnp.float32 and res.loss.dtype == jnp.float32
    x_star = ANSWER[problem]
    # "reached the answer": within float32 resolution of the float64 minimiser, scaled by |x*|
    np.testing.assert_allclose(np.asarray(res.params, np.float64), x_star, rtol=0, atol=1e-4 * (1 + np.abs(x_star).max()))
    if not res.success:
        raise WrongStatus(f"{method}: at the answer after {int(res.steps)} steps but {res.status_enum.name} ({res.message})")
    # and the success it names is the true one: gtol met on "shift", float32's floor on "lstsq"
    if problem == "shift":
        assert res.status_enum is jaxgd.Status.GTOL and float(res.grad_norm) <= 1e-6
    else:
        assert res.status_enum is jaxgd.Status.PRECISION and float(res.grad_norm) > 1e-6
        assert "precision of float32" in res.message
        assert int(res.steps) < MAX_STEPS  # it stopped before the budget ran out


def test_x64_off_really_runs_in_float32(x64_off):
    """The fixture's premise: with x64 off a float64 request is float32 and the solver state stays float32."""
    assert jnp.zeros(3).dtype == jnp.float32 and jnp.asarray(np.ones(3)).dtype == jnp.float32
    res = jaxgd.minimize(loss("shift"), jnp.zeros(7), method="gd", lr=0.3, max_steps=5, gtol=0.0)
    leaves = [res.params, res.loss, res.grad_norm, res.state.value, res.state.grad, res.state.alpha]
    assert all(x.dtype == jnp.float32 for x in leaves)
