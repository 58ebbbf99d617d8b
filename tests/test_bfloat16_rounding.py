"""bfloat16 parameters and a float32 loss (the usual mixed-precision pattern): the loss a run reports is the
loss at the bfloat16 point it keeps (jaxgd._tree.rounded).

XLA:CPU computed the trial point x + alpha d in float32 and dropped its rounding to bfloat16 on the way
into a loss that casts to float32, while the point kept was rounded: Result.loss and history.loss were the
loss at points the run never returned (adam on Rosenbrock: 12.69 reported, 13.06 at Result.params).
Reference: the loss evaluated again at the returned parameters, and at each iterate (a run of k steps).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import linesearch


def _rosen(p: jax.Array) -> jax.Array:
    x = p.astype(jnp.float32)
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


X0 = jnp.asarray([-1.2, 1.0], jnp.bfloat16)


@pytest.mark.parametrize("method, kw", [("adam", {"lr": 0.01}), ("gd", {"lr": linesearch.Backtracking()}),
                                        pytest.param("lbfgs", {"bounds": (-2.0, 0.5)}, marks=pytest.mark.slow)])
def test_reported_loss_is_the_loss_at_the_kept_point(method: str, kw: dict) -> None:
    runs = [jaxgd.minimize(_rosen, X0, method=method, max_steps=k, **kw) for k in (1, 2, 3, 4)]
    last = runs[-1]
    assert last.params.dtype == jnp.bfloat16
    assert float(last.loss) == float(_rosen(last.params))
    at_iterates = [float(_rosen(r.params)) for r in runs]
    np.testing.assert_array_equal(np.asarray(last.history.loss, np.float32)[: int(last.steps)],
                                  np.asarray(at_iterates[: int(last.steps)], np.float32))


def test_rounding_is_exact_and_leaves_other_dtypes_alone() -> None:
    """jaxgd._tree.rounded under jax.jit: bfloat16 leaves equal a NumPy-side cast of the float32 value
    (ml_dtypes' round-to-nearest-even), subnormals kept (XLA:CPU's own arithmetic flushes them, so they
    are cast, not computed); float16/float32 leaves returned as they are."""
    from jaxgd import _tree

    x = jnp.asarray([1.0, 2.5, -3.3e38], jnp.bfloat16)
    step = jnp.asarray([2e-3, 1.7e-2, 1e36], jnp.float32)
    tiny = jnp.asarray([1e-39, 2e-40], jnp.float32)

    def moved(x: jax.Array, step: jax.Array, tiny: jax.Array) -> tuple:
        y = _tree.rounded((x.astype(jnp.float32) + step).astype(jnp.bfloat16))
        return y.astype(jnp.float32), _tree.rounded(tiny.astype(jnp.bfloat16)).astype(jnp.float32)

    got, got_tiny = jax.jit(moved)(x, step, tiny)
    want = (np.asarray(x, np.float32) + np.asarray(step)).astype(jnp.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(got), want)
    np.testing.assert_array_equal(np.asarray(got_tiny), np.asarray(tiny).astype(jnp.bfloat16).astype(np.float32))
    assert np.all(np.asarray(got_tiny) > 0)
    other = {"h": jnp.ones(2, jnp.float16), "s": jnp.ones(2, jnp.float32)}
    assert all(a is b for a, b in zip(jax.tree_util.tree_leaves(_tree.rounded(other)), jax.tree_util.tree_leaves(other)))
