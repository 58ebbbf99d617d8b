"""Every registered method (``jaxgd.methods()``) through ``jaxgd.fit`` on a small
least-squares problem; reference: ``numpy.linalg.lstsq`` (float64 NumPy, whatever
the dtype under test).

The data are noise-free (``y = X w* + b*``), so every minibatch has the same
minimiser and stochastic methods converge to it exactly rather than to a
noise ball. First-order methods run on minibatches of 16 of the 64 examples;
methods whose default step size is a line search (bfgs, lbfgs, cg: ``fit``
refuses line searches) run full batch with a constant step, where their
curvature pairs come from one objective. A method added to the registry
joins this battery; ``LR`` may give it a step size.

Every fit runs twice (the ``precision`` fixture of conftest.py): in float64
with x64 on, and in float32 with x64 off -- JAX's default, what most users
run. A converged method must land within a few ulps of the answer in the
dtype it ran in (:func:`atol`); the few that are still converging after
their epoch budget get a dtype-independent allowance (``CONVERGING``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.directions import registry

from conftest import Precision, float_leaves_are

N, D = 64, 3
_rng = np.random.default_rng(0)
X = _rng.standard_normal((N, D))
Y = X @ np.array([1.5, -2.0, 0.5]) + 0.3
# Reference: least squares with an intercept column, by numpy.linalg.lstsq (float64).
SOLUTION = np.linalg.lstsq(np.column_stack([X, np.ones(N)]), Y, rcond=None)[0]
assert SOLUTION.dtype == np.float64

# (step size, epochs, minibatch size) per method.
LR = {
    "gd": (0.5, 60, 16), "momentum": (0.1, 100, 16), "nesterov": (0.1, 100, 16), "adagrad": (0.5, 150, 16),
    "rmsprop": (0.003, 400, 16), "adam": (0.05, 150, 16), "adamw": (0.05, 150, 16),
    "bfgs": (1.0, 60, N), "lbfgs": (1.0, 60, N), "cg": (0.5, 200, N),
}
DEFAULT = (0.1, 150, 16)
# The rounding of a converged answer: the float32 data alone move the least-squares solution by a
# few ulps (cond([X 1]) is small), the iteration's rounded gradient by a few more. Measured: at most
# 1.5 eps times max|w*| = 2.0 in either dtype (6.7e-16, 1.2e-7); the allowance is 16 eps times it
# (7.1e-15, 3.8e-6), against the 1e-6 every dtype had before.
ROUNDING_ULPS = 16
# Methods not yet at the rounding floor after their epochs (measured error in both dtypes where the
# dtype's floor is lower): rmsprop's normalised steps hover at O(lr) around the minimiser (3.7e-4,
# lr = 3e-3); momentum's 100 epochs reach 1.8e-9 and adam's 150 reach 5.6e-14 (float64).
CONVERGING = {"rmsprop": 3e-3, "momentum": 2e-8, "adam": 1e-12, "adamw": 1e-12}


def atol(method: str, precision: Precision) -> float:
    """How far from the float64 reference ``method``'s answer may be in ``precision.dtype``."""
    return max(CONVERGING.get(method, 0.0), ROUNDING_ULPS * precision.eps * float(np.max(np.abs(SOLUTION))))


def loss(params, batch):
    x, y = batch
    r = x @ params["w"] + params["b"] - y
    return 0.5 * jnp.mean(r * r)


def settings(method: str) -> tuple[float, int, int]:
    lr, epochs, batch = LR.get(method, DEFAULT)
    if method not in LR and callable(registry.resolve(method).default_lr):
        batch = N  # a curvature method: one objective, full batch
    return lr, epochs, batch


def run_fit(method: str, dtype):
    lr, epochs, batch = settings(method)
    params = {"w": jnp.zeros(D, dtype), "b": jnp.asarray(0.0, dtype)}
    data = (jnp.asarray(X, dtype), jnp.asarray(Y, dtype))
    return jaxgd.fit(loss, params, data, batch_size=batch, epochs=epochs, key=jax.random.key(0), method=method,
                     lr=lr, progress=False)


@pytest.mark.alternate("precision")  # (every precision in make slow)
@pytest.mark.parametrize("method", jaxgd.methods())
def test_every_method_fits_least_squares(method, precision):
    lr, epochs, batch = settings(method)
    res = run_fit(method, precision.dtype)
    got = np.append(np.asarray(res.params["w"]), float(res.params["b"]))
    assert res.steps == epochs * (N // batch)
    assert np.all(np.isfinite(np.asarray(res.history.train_loss)))
    # every float of the result (params, losses, history, optimizer state) in the dtype it ran in
    assert float_leaves_are(res, precision.dtype)
    np.testing.assert_allclose(got, SOLUTION, rtol=0, atol=atol(method, precision))
    if precision.dtype == jnp.float32:
        # and float32 stays float32 where float64 exists (x64 on): traced only, nothing compiled
        with jax.enable_x64(True):
            shapes = jax.eval_shape(lambda: run_fit(method, jnp.float32))
        assert float_leaves_are(shapes, jnp.float32), [
            (jax.tree_util.keystr(p), s.dtype) for p, s in jax.tree_util.tree_flatten_with_path(shapes)[0]
            if s.dtype == jnp.float64
        ]
