"""Every registered method (``jaxgd.methods()``) through ``jaxgd.fit`` on a small
least-squares problem; reference: ``numpy.linalg.lstsq``.

The data are noise-free (``y = X w* + b*``), so every minibatch has the same
minimiser and stochastic methods converge to it exactly rather than to a
noise ball. First-order methods run on minibatches of 16 of the 64 examples;
methods whose default step size is a line search (bfgs, lbfgs, cg: ``fit``
refuses line searches) run full batch with a constant step, where their
curvature pairs come from one objective. A method added to the registry
joins this battery; ``LR`` may give it a step size.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.directions import registry

N, D = 64, 3
_rng = np.random.default_rng(0)
X = _rng.standard_normal((N, D))
Y = X @ np.array([1.5, -2.0, 0.5]) + 0.3
# Reference: least squares with an intercept column, by numpy.linalg.lstsq.
SOLUTION = np.linalg.lstsq(np.column_stack([X, np.ones(N)]), Y, rcond=None)[0]

# (step size, epochs, minibatch size) per method.
LR = {
    "gd": (0.5, 60, 16), "momentum": (0.1, 100, 16), "nesterov": (0.1, 100, 16), "adagrad": (0.5, 150, 16),
    "rmsprop": (0.003, 400, 16), "adam": (0.05, 150, 16), "adamw": (0.05, 150, 16),
    "bfgs": (1.0, 60, N), "lbfgs": (1.0, 60, N), "cg": (0.5, 200, N),
}
DEFAULT = (0.1, 150, 16)
# rmsprop's and adam's normalised steps hover at O(lr) around the minimiser.
ATOL = {"rmsprop": 2e-2, "adam": 1e-3, "adamw": 1e-3, "adagrad": 1e-4}


def loss(params, batch):
    x, y = batch
    r = x @ params["w"] + params["b"] - y
    return 0.5 * jnp.mean(r * r)


def settings(method: str) -> tuple[float, int, int]:
    lr, epochs, batch = LR.get(method, DEFAULT)
    if method not in LR and callable(registry.resolve(method).default_lr):
        batch = N  # a curvature method: one objective, full batch
    return lr, epochs, batch


@pytest.mark.parametrize("method", jaxgd.methods())
def test_every_method_fits_least_squares(method):
    lr, epochs, batch = settings(method)
    params = {"w": jnp.zeros(D), "b": jnp.asarray(0.0)}
    res = jaxgd.fit(loss, params, (jnp.asarray(X), jnp.asarray(Y)), batch_size=batch, epochs=epochs,
                    key=jax.random.key(0), method=method, lr=lr, progress=False)
    got = np.append(np.asarray(res.params["w"]), float(res.params["b"]))
    assert res.steps == epochs * (N // batch)
    assert np.all(np.isfinite(np.asarray(res.history.train_loss)))
    np.testing.assert_allclose(got, SOLUTION, atol=ATOL.get(method, 1e-6))
