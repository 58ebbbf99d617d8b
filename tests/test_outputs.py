"""Outputs packed into one word vector (jaxgd/core/outputs.py): every leaf back, bit for bit.

Reference: the tree that went in (its leaves' bits, dtypes and shapes), and for ``minimize``
the same solver run by ``Solver.run`` under a plain ``jax.jit``, whose outputs are not packed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.core import minimize_run, outputs


def _bits(x):
    x = np.asarray(x)
    return x.view(np.dtype(f"u{x.dtype.itemsize}")) if x.dtype.kind in "fi" else x


def _same(back, tree):
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(tree)
    for b, t in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(tree)):
        assert np.asarray(b).dtype == np.asarray(t).dtype and np.shape(b) == np.shape(t)
        np.testing.assert_array_equal(_bits(b), _bits(t))


def _tree():
    nan_payload = np.array([0x7FC00123], np.uint32).view(np.float32)[0]  # a NaN with a payload
    return {
        "f32": jnp.array([1.5, -0.0, np.float32(1e-45), nan_payload, np.inf], jnp.float32),  # -0, a subnormal
        "s32": jnp.float32(-2.5),
        "f64": jnp.array([np.pi, -np.finfo(np.float64).max, 5e-324]),
        "s64": jnp.float64(np.e),
        "i32": jnp.array([np.iinfo(np.int32).min, -1, np.iinfo(np.int32).max], jnp.int32),
        "n32": jnp.int32(7),
        "m": jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3),
        "keep": jnp.ones(2, jnp.float32),
        "big": jnp.zeros(outputs.SMALL + 1, jnp.float32),
        "hist": jnp.zeros((3, outputs.SMALL), jnp.float32),
        "half": jnp.float16(0.5),
        "flag": jnp.bool_(True),
        "flags": jnp.array([False, True, True]),
        "empty": jnp.zeros((0,), jnp.float32),
    }


def _keep(path):
    return path[0].key == "keep"


def _always(path):
    return path[0].key == "hist"


def test_pack_and_unpack_on_the_host_give_every_leaf_back_bit_for_bit():
    tree = _tree()
    packed = jax.jit(lambda t: outputs.pack(t, _keep, _always))(tree)
    kept, words, layout = packed
    # kept as they are: the leaf keep names, one over SMALL numbers, a float16; the history is
    # packed whatever its size; one uint32 vector for the rest (float64s two words each, bools one)
    assert len(kept) == 3 and words.dtype == jnp.uint32
    assert words.size == 5 + 1 + 2 * (3 + 1) + 3 + 1 + 6 + 3 * outputs.SMALL + 1 + 3
    back = outputs.unpack(kept, words, layout)
    _same(back, tree)
    # on the host the packed leaves are NumPy (a 0-d leaf a NumPy scalar), the kept ones jax.Arrays
    assert isinstance(back["s32"], np.float32) and isinstance(back["n32"], np.int32)
    assert isinstance(back["flag"], np.bool_)
    assert isinstance(back["f64"], np.ndarray) and isinstance(back["keep"], jax.Array)


def test_unpack_under_a_trace_gives_the_same_leaves():
    tree = _tree()
    back = jax.jit(lambda t: outputs.unpack(*outputs.pack(t, _keep, _always)))(tree)
    _same(back, tree)


def test_a_tree_with_nothing_to_pack_is_handed_back_whole():
    tree = {"keep": jnp.ones(2), "half": jnp.float16(1.0)}
    kept, words, layout = jax.jit(lambda t: outputs.pack(t, _keep))(tree)
    assert words.size == 0 and len(kept) == 2
    _same(outputs.unpack(kept, words, layout), tree)


@pytest.mark.parametrize("method", ["gd", "lbfgs", "bfgs"])
def test_minimize_hands_back_the_parameters_and_one_vector(method):
    # the eager run's outputs (jaxgd.core.minimize_run.run_flat): the parameters and the packed vector;
    # reference: Solver.run under a plain jax.jit (its Result not packed), leaf for leaf
    def loss(x):
        return jnp.sum((x - 3.0) ** 2) + 0.1 * jnp.sum(x ** 4)

    x0 = jnp.linspace(-1.0, 1.0, 6)
    res = jaxgd.minimize(loss, x0, method=method, max_steps=30)
    res = jaxgd.minimize(loss, x0, method=method, max_steps=30)  # the repeated call's path
    repeat = next(iter(minimize_run.REPEATS._entries(loss).values()))
    out = repeat.call(repeat.structure, repeat.leaves, x0, ())
    assert len(jax.tree_util.tree_leaves(out)) == 2
    solver = jaxgd.Solver(loss, method, max_steps=30)
    ref = jax.jit(lambda s, x: s.run(x))(solver, x0)
    for name in ("params", "loss", "grad_norm", "steps", "status", "nfev", "ngev"):
        np.testing.assert_array_equal(np.asarray(getattr(res, name)), np.asarray(getattr(ref, name)))
    n = int(res.steps)
    for a, b in zip(res.history, ref.history):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[:n])
    _same(res.state, ref.state)
    assert isinstance(res.params, jax.Array) and isinstance(res.loss, np.generic)


def test_minimize_keeps_a_users_aux_as_jax_arrays():
    def loss(x):
        return jnp.sum((x - 1.0) ** 2), {"residual": x - 1.0}

    res = jaxgd.minimize(loss, jnp.zeros(3), has_aux=True, method="lbfgs")
    assert isinstance(res.aux["residual"], jax.Array) and isinstance(res.state.aux["residual"], jax.Array)
    np.testing.assert_allclose(np.asarray(res.aux["residual"]), 0.0, atol=1e-6)
