"""Packed loop carries (jaxgd/core/packing.py): the same loops, bit for bit, with fewer kernels.

Reference: the plain ``lax.while_loop`` carry (``packing.PACK = False``), run on a
new loss function object so that nothing compiled is shared between the two.
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from conftest import slow_if
from jaxgd.core import packing


def _rosen(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _same_leaves(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)  # NaN equals NaN here (history past the last step)


def test_pack_unpack_round_trip_keeps_every_leaf():
    tree = {
        "f": jnp.float32(1.5), "g": jnp.float32(-2.0), "i": jnp.int32(3), "j": jnp.int32(-4),
        "b": jnp.bool_(True), "c": jnp.bool_(False), "v": jnp.arange(3.0), "lone": jnp.float16(0.5),
        "weak": jnp.asarray(2.0), "empty": jnp.zeros((0,)),
    }
    assert jnp.asarray(2.0).weak_type
    pk = packing.Packing(tree)
    rest, vectors = pk.pack(tree)
    # float32, int32 and bool scalars packed, two each; the rest (a vector, a lone float16, a weakly
    # typed scalar, an empty array) carried as they are
    assert sorted(v.shape[0] for v in vectors) == [2, 2, 2] and len(rest) == 4
    back = pk.unpack((rest, vectors))
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(tree)
    for k in tree:
        assert back[k].dtype == tree[k].dtype and back[k].shape == tree[k].shape
        np.testing.assert_array_equal(np.asarray(back[k]), np.asarray(tree[k]))
    assert back["weak"].weak_type


def test_a_dtype_packs_into_vectors_of_at_most_eight_scalars():
    # XLA:CPU fuses a concatenation of at most 8 operands into the kernel computing them
    # (cpu_instruction_fusion.cc, kMaxConcatenateArguments): 19 float32 scalars go in 8 + 8 + 3,
    # 9 bools in 8, and the ninth bool, alone, is carried as it is. Reference: the tree itself.
    tree = {"f": [jnp.float32(k) for k in range(19)], "b": [jnp.bool_(k % 2) for k in range(9)]}
    pk = packing.Packing(tree)
    rest, vectors = pk.pack(tree)
    assert packing.MAX_PACK == 8
    assert sorted(v.shape[0] for v in vectors) == [3, 8, 8, 8] and len(rest) == 1
    back = pk.unpack((rest, vectors))
    for x, y in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(tree)):
        assert x.dtype == y.dtype and x.shape == y.shape and x == y


def test_packed_while_equals_the_plain_loop():
    def cond(c):
        return c["i"] < 17

    def body(c):
        x = c["x"] * c["r"] + jnp.sin(c["v"]).sum()
        return {"i": c["i"] + 1, "x": x, "r": c["r"] * jnp.float32(0.99), "v": c["v"] + x, "ok": c["ok"] & (x > 0)}

    init = {"i": jnp.int32(0), "x": jnp.float32(0.3), "r": jnp.float32(1.1), "v": jnp.arange(4, dtype=jnp.float32),
            "ok": jnp.bool_(True)}
    _same_leaves(jax.jit(lambda c: packing.packed_while(cond, body, c))(init), jax.lax.while_loop(cond, body, init))


CASES = [
    dict(method="gd", lr=2e-4, max_steps=300, gtol=0.0),
    dict(method="adam", lr=1e-2, max_steps=300, history=7),
    dict(method="bfgs", max_steps=200),
    # ~6-9 s of compiles each:
    pytest.param(dict(method="lbfgs", max_steps=200), marks=pytest.mark.slow),
    pytest.param(dict(method="cg", max_steps=300), marks=pytest.mark.slow),
    pytest.param(dict(method="lbfgs", bounds=(-0.5, 0.8), max_steps=200), marks=pytest.mark.slow),
    dict(method="gd", lr=jaxgd.linesearch.StrongWolfe(), max_steps=100),
    dict(method="gd", lr=jaxgd.linesearch.Backtracking(), max_steps=100, history=False),
    dict(method="gd", lr=jaxgd.linesearch.Exact(), max_steps=30),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: f"{kw['method']}-{type(kw.get('lr')).__name__}-{len(kw)}" if isinstance(kw, dict) else None)
def test_packed_solver_loops_give_the_plain_loops_bits(monkeypatch, kw):
    # the driver's loop, its history chunks and the line searches' loops, packed and plain
    x0 = jnp.linspace(-1.2, 1.0, 8)
    out = {}
    for flag in (False, True):
        monkeypatch.setattr(packing, "PACK", flag)
        fun = lambda x: _rosen(x)  # noqa: E731  (a new function: its own compiled loop)
        out[flag] = jaxgd.minimize(fun, x0, **kw)
    assert int(out[True].steps) > 1
    _same_leaves(out[False], out[True])


def test_packed_batched_loop_gives_the_plain_bits(monkeypatch):
    # jax.vmap over minimize runs jaxgd.core.batched's loop, whose per-run scalars are packed:
    # runs that converge at different steps, one that overflows (NONFINITE)
    x0 = jnp.zeros(6)
    lrs = jnp.asarray([0.05, 0.1, 0.2, 0.4, 1e60])
    out = {}
    for flag in (False, True):
        monkeypatch.setattr(packing, "PACK", flag)
        fun = lambda x: jnp.sum((x - jnp.arange(6.0)) ** 2)  # noqa: E731
        out[flag] = jax.jit(jax.vmap(lambda lr: jaxgd.minimize(fun, x0, lr=lr, max_steps=150, gtol=1e-3)))(lrs)
    steps, status = np.asarray(out[True].steps), np.asarray(out[True].status)
    assert len(set(steps[:4].tolist())) == 4 and status[4] == jaxgd.Status.NONFINITE
    _same_leaves(out[False], out[True])


@pytest.mark.parametrize("method, kw", [  # (~4 s a case: bfgs in make test, the others -m slow)
    ("bfgs", {}), slow_if(True, "lbfgs", {}), slow_if(True, "cg", {}), slow_if(True, "lbfgs", {"bounds": (-2.0, 2.0)})],
    ids=["bfgs", "lbfgs", "cg", "lbfgsb"])
def test_a_stopped_lane_evaluates_nothing(method, kw):
    """Under jax.vmap a loop runs while any lane's condition holds: a lane that had stopped at its answer ran a
    failing line search every step for the batch (8 Gaussian-process restarts, bfgs: 1,373 batched evaluations
    where the slowest lane needed 128). Reference: each lane run alone (its nfev, its params to rounding); the
    batch evaluates the loss at most as often as its two lanes alone do together (a lane's evaluations inside
    the batch counted by a debug callback, which vmap calls per lane: half of them are the batch's)."""
    calls = []

    def rosen(x):
        v = _rosen(x)
        jax.debug.callback(lambda a: calls.append(1), v)
        return v

    x0s = jnp.asarray([[1.0 + 1e-4, 1.0], [-1.2, 1.0]])  # the first lane stops after a few steps
    batch = jax.vmap(lambda x: jaxgd.minimize(rosen, x, method=method, max_steps=200, **kw))(x0s)
    batched = len(calls) / 2
    alone = [jaxgd.minimize(_rosen, x, method=method, max_steps=200, tier="compiled", **kw) for x in x0s]
    for lane, single in enumerate(alone):
        assert int(batch.nfev[lane]) == int(single.nfev) and int(batch.status[lane]) == int(single.status)
        np.testing.assert_allclose(batch.params[lane], single.params, rtol=1e-10)
    assert batched <= sum(int(r.nfev) for r in alone), (batched, [int(r.nfev) for r in alone])
    assert batched >= max(int(r.nfev) for r in alone)


def test_only_while_flags_are_per_thread():
    """A diff review (session 64): the flags were one module-wide list, so a loop traced in another thread while
    a step's flag was pushed (jaxgd's background compile, a user's thread) took that trace's flag: an
    UnexpectedTracerError, and that loss's compiled tier broken for the process. Reference: the plain loop's
    count (3 iterations) in the other thread, and no iteration under a False flag here."""
    found = {}

    def other() -> None:
        try:
            found["out"] = int(jax.jit(lambda x: packing.packed_while(lambda c: c < 3, lambda c: c + 1, x))(jnp.int32(0)))
        except Exception as err:  # (reported below: pytest does not see a thread's exception)
            found["err"] = err

    def traced(flag):
        with packing.only_while(flag):
            worker = threading.Thread(target=other)
            worker.start()
            worker.join()
            return packing.packed_while(lambda c: c < 3, lambda c: c + 1, jnp.int32(0))

    assert int(jax.jit(traced)(False)) == 0 and int(jax.jit(traced)(True)) == 3
    assert found.get("out") == 3, found.get("err")
    assert packing._active() == []
