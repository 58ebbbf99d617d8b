"""A repeated ``minimize`` call goes straight to the compiled run (jaxgd.core.minimize_run.Repeat).

Reference: the same call through minimize's whole path (every check, the plan, the tier), on a
second loss function object with the same body, in the same process: every leaf of the Result
bit for bit, its types and dtypes. And what the whole path refuses, a repeated call refuses too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from conftest import slow_if
from jaxgd.core import minimize_run as _run


def _rosen(x, scale=1.0):
    return scale * jnp.sum(100.0 * (x["b"] - x["a"] ** 2) ** 2 + (1.0 - x["a"]) ** 2)


def _twin(fn):
    """A new function object with ``fn``'s code (its own caches: the whole path every call)."""
    return lambda *a: fn(*a)


X0 = {"a": jnp.full(3, -1.2, jnp.float32), "b": jnp.ones(3, jnp.float32)}

CASES = {
    "gd": dict(method="gd", lr=1e-3, max_steps=40),
    "adam_history_off": dict(method="adam", lr=0.05, max_steps=30, history=False),
    "lbfgs_compiled": dict(method="lbfgs", max_steps=30, tier="compiled"),
    "bfgs_history_every": dict(method="bfgs", max_steps=30, history=3, tier="compiled"),
    "gd_l1_bounds": dict(method="gd", lr=1e-3, max_steps=20, l1=0.01, bounds=(-1.0, 1.5)),
}


def _same(a, b) -> None:
    la, lb = jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves_with_path(b)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for (path, x), (_, y) in zip(la, lb):
        assert type(x) is type(y), jax.tree_util.keystr(path)
        assert np.asarray(x).dtype == np.asarray(y).dtype, jax.tree_util.keystr(path)
        assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True), jax.tree_util.keystr(path)


# (lbfgs_compiled in make slow: bfgs_history_every runs the same quasi-Newton path)
@pytest.mark.parametrize("case", [slow_if(c == "lbfgs_compiled", c, id=c) for c in sorted(CASES)])
def test_repeated_call_equals_the_whole_path(case):
    opts = CASES[case]
    fun = _twin(_rosen)
    first = jaxgd.minimize(fun, X0, (2.0,), **opts)
    keys = list(_run.REPEATS._entries(fun))
    assert len(keys) == 1  # the first call registered its repeat
    repeated = jaxgd.minimize(fun, X0, (2.0,), **opts)
    assert list(_run.REPEATS._entries(fun)) == keys
    whole = jaxgd.minimize(_twin(_rosen), X0, (2.0,), **opts)  # a new function: the whole path
    _same(repeated, whole)
    _same(first, whole)
    assert repeated.success == whole.success and repeated.message == whole.message


def test_a_repeat_runs_new_values_of_the_same_signature():
    """New x0 values, new args values: the compiled run with them (not a stale result)."""
    fun = _twin(_rosen)
    jaxgd.minimize(fun, X0, (2.0,), method="gd", lr=1e-3, max_steps=5)
    x1 = {"a": jnp.full(3, 0.5, jnp.float32), "b": jnp.full(3, 0.2, jnp.float32)}
    _same(jaxgd.minimize(fun, x1, (3.0,), method="gd", lr=1e-3, max_steps=5),
          jaxgd.minimize(_twin(_rosen), x1, (3.0,), method="gd", lr=1e-3, max_steps=5))
    # another option value is another key (and another result)
    a = jaxgd.minimize(fun, X0, (2.0,), method="gd", lr=2e-3, max_steps=5)
    _same(a, jaxgd.minimize(_twin(_rosen), X0, (2.0,), method="gd", lr=2e-3, max_steps=5))
    assert len(_run.REPEATS._entries(fun)) == 2


def test_a_repeat_still_refuses_a_non_finite_x0_and_unknown_keywords():
    fun = _twin(_rosen)
    jaxgd.minimize(fun, X0, (2.0,), method="gd", lr=1e-3, max_steps=5)
    bad = {"a": X0["a"].at[1].set(jnp.nan), "b": X0["b"]}
    with pytest.raises(ValueError, match=r"x0 leaf \['a'\] contains NaN or Inf"):
        jaxgd.minimize(fun, bad, (2.0,), method="gd", lr=1e-3, max_steps=5)
    with pytest.raises(TypeError, match="unexpected keyword"):
        jaxgd.minimize(fun, X0, (2.0,), method="gd", lr=1e-3, max_steps=5, max_iter=3)


def test_what_is_not_registered(tmp_path):
    """Progress bars, checkpoints, Python-number or weakly typed x0 leaves and calls under a
    trace take the whole path every time (no Repeat)."""
    fun = _twin(_rosen)
    jaxgd.minimize(fun, X0, (2.0,), method="gd", lr=1e-3, max_steps=5, progress=True)
    jaxgd.minimize(fun, X0, (2.0,), method="gd", lr=1e-3, max_steps=4, checkpoint_path=tmp_path / "c.ckpt")
    jax.jit(lambda x: jaxgd.minimize(fun, x, (2.0,), method="gd", lr=1e-3, max_steps=5).params)(X0)
    assert len(_run.REPEATS._entries(fun)) == 0
    quad = _twin(lambda x: (x - 3.0) ** 2)
    jaxgd.minimize(quad, 1.0, lr=0.1, max_steps=5)  # a Python float
    jaxgd.minimize(quad, jnp.asarray(1.0), lr=0.1, max_steps=5)  # weakly typed
    assert len(_run.REPEATS._entries(quad)) == 0


def test_numpy_leaves_are_converted_and_checked_as_the_whole_path_does():
    fun = _twin(_rosen)
    x0 = {"a": np.full(3, -1.2), "b": np.ones(3)}
    first = jaxgd.minimize(fun, x0, (2.0,), method="gd", lr=1e-3, max_steps=5)
    assert len(_run.REPEATS._entries(fun)) == 1
    _same(jaxgd.minimize(fun, x0, (2.0,), method="gd", lr=1e-3, max_steps=5), first)
    _same(first, jaxgd.minimize(_twin(_rosen), x0, (2.0,), method="gd", lr=1e-3, max_steps=5))
    x0["a"][2] = np.inf
    with pytest.raises(ValueError, match=r"x0 leaf \['a'\] contains NaN or Inf"):
        jaxgd.minimize(fun, x0, (2.0,), method="gd", lr=1e-3, max_steps=5)


def test_a_repeat_keys_on_the_x64_mode():
    quad = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    fun = _twin(quad)
    x0 = jnp.zeros(4, jnp.float32)
    jaxgd.minimize(fun, x0, lr=0.1, max_steps=5)
    with jax.enable_x64(not jax.config.jax_enable_x64):
        jaxgd.minimize(fun, x0, lr=0.1, max_steps=5)
        _same(jaxgd.minimize(fun, x0, lr=0.1, max_steps=5), jaxgd.minimize(_twin(quad), x0, lr=0.1, max_steps=5))
    assert len(_run.REPEATS._entries(fun)) == 2


@pytest.mark.slow
def test_a_repeat_keys_on_the_default_tier(monkeypatch):
    """A call that names no tier runs the default's at the time of the call (jaxgd.host.tier.DEFAULT)."""
    from jaxgd.host import tier as _tier

    fun = _twin(_rosen)
    jaxgd.minimize(fun, X0, (2.0,), method="lbfgs", max_steps=30)  # DEFAULT is "compiled" in the suite
    assert len(_run.REPEATS._entries(fun)) == 1
    monkeypatch.setattr(_tier, "DEFAULT", "host")
    host = jaxgd.minimize(fun, X0, (2.0,), method="lbfgs", max_steps=30)
    assert len(_run.REPEATS._entries(fun)) == 1  # the host tier ran it: nothing new registered
    _same(host, jaxgd.minimize(_twin(_rosen), X0, (2.0,), method="lbfgs", max_steps=30, tier="host"))


@pytest.mark.slow
def test_the_auto_tier_registers_once_the_fused_loop_runs():
    """With tier='auto' the first calls of lbfgs run on the host (nothing registered); once the
    fused loop has compiled, its calls register and repeat it."""
    from jaxgd.host import tier as _tier

    fun = _twin(_rosen)
    opts = dict(method="lbfgs", max_steps=30, tier="auto")
    first = jaxgd.minimize(fun, X0, (2.0,), **opts)
    assert len(_run.REPEATS._entries(fun)) == 0  # the host tier ran it
    jaxgd.minimize(fun, X0, (2.0,), **opts)  # queues the fused loop's compile
    assert _tier.wait(120)
    fused = jaxgd.minimize(fun, X0, (2.0,), **opts)
    assert len(_run.REPEATS._entries(fun)) == 1
    _same(jaxgd.minimize(fun, X0, (2.0,), **opts), fused)
    _same(fused, jaxgd.minimize(_twin(_rosen), X0, (2.0,), **dict(opts, tier="compiled")))
    assert first.state.count.dtype == fused.state.count.dtype  # (the host's run: jaxgd.host's tests)


def test_a_bare_array_x0_repeats_and_keys_apart_from_a_tree_of_one():
    """A bare ``jax.Array`` x0 takes the key's fast path (no tree flattened): the repeat still equals
    the whole path, and a one-leaf tree of the same array is another key (another result type)."""
    quad = lambda x, c: sum(jnp.sum((v - c) ** 2) for v in jax.tree_util.tree_leaves(x))  # noqa: E731
    fun = _twin(quad)
    x0 = jnp.zeros(4, jnp.float32)
    jaxgd.minimize(fun, x0, (3.0,), lr=0.1, max_steps=5)
    assert len(_run.REPEATS._entries(fun)) == 1
    _same(jaxgd.minimize(fun, x0, (3.0,), lr=0.1, max_steps=5),
          jaxgd.minimize(_twin(quad), x0, (3.0,), lr=0.1, max_steps=5))
    tree = jaxgd.minimize(fun, (x0,), (3.0,), lr=0.1, max_steps=5, method="gd")
    assert isinstance(tree.params, tuple)
    assert len(_run.REPEATS._entries(fun)) == 2
    _same(jaxgd.minimize(fun, (x0,), (3.0,), lr=0.1, max_steps=5),
          jaxgd.minimize(_twin(quad), (x0,), (3.0,), lr=0.1, max_steps=5))


def test_an_unhashable_option_takes_the_whole_path_every_call():
    """An array ``lr`` cannot be part of a key: nothing registered, the same answer every call."""
    fun = _twin(_rosen)
    lr = jnp.asarray(1e-3, jnp.float32)
    first = jaxgd.minimize(fun, X0, (2.0,), method="gd", lr=lr, max_steps=5)
    again = jaxgd.minimize(fun, X0, (2.0,), method="gd", lr=lr, max_steps=5)
    assert len(_run.REPEATS._entries(fun)) == 0
    _same(first, again)


def test_the_repeat_key_lists_the_options_in_their_declared_order():
    """minimize builds the key's options tuple by hand (no dict of locals: benchmarks E); its names
    must be ``_REPEAT_OPTIONS``, in order (method, lr, then every Solver option)."""
    import inspect
    import re

    from jaxgd.core import minimize as _minimize

    source = inspect.getsource(_minimize.minimize)
    names = re.search(r"options = \(([^)]*)\)", source).group(1)
    assert tuple(n.strip() for n in names.replace("\n", " ").split(",") if n.strip()) == _minimize._REPEAT_OPTIONS


@pytest.mark.slow  # (3 s: three compiles; test_recompile.py checks the compile in make test)
def test_a_schedule_built_anew_with_equal_numbers_repeats():
    """A closure ``lr`` (an optax schedule) is keyed by its code and numbers: one built anew with the same
    numbers repeats the call (one entry), and equals the whole path; other numbers are another key."""
    import optax

    fun = _twin(_rosen)
    sched = lambda v: optax.cosine_decay_schedule(v, 10)  # noqa: E731
    jaxgd.minimize(fun, X0, (2.0,), method="momentum", lr=sched(1e-3), max_steps=5)
    again = jaxgd.minimize(fun, X0, (2.0,), method="momentum", lr=sched(1e-3), max_steps=5)
    assert len(_run.REPEATS._entries(fun)) == 1
    _same(again, jaxgd.minimize(_twin(_rosen), X0, (2.0,), method="momentum", lr=sched(1e-3), max_steps=5))
    jaxgd.minimize(fun, X0, (2.0,), method="momentum", lr=sched(2e-3), max_steps=5)
    assert len(_run.REPEATS._entries(fun)) == 2
