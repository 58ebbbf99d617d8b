"""Invariants behind the performance fixes of issue 6 (benchmarks/RESULTS.md).

- the one-reduction finiteness test (``sum(g*g + 0*p)``) flags exactly what
  the elementwise test flags;
- a repeated ``minimize`` call neither re-traces nor compiles, also when the
  run stops at a step count not seen before (history trimming on the host);
- the compiled run returns each array once and ``minimize`` still hands back
  a complete ``Result``, also under ``jit`` and ``vmap``;
- under ``vmap``, ``minimize``'s own batched loop (``_batched.py``) gives
  bit for bit what plain ``vmap`` of the while loop gives: early stops,
  NONFINITE, history every k steps, other methods, batched ``x0``, nested vmap.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.core import batched as _batched
from jaxgd.core import solver as _solver


@pytest.mark.parametrize(
    "params, value, grad, finite",
    [
        ([1.0, -2.0], 1.0, [3.0, 4.0], True),
        ([np.inf, 1.0], 1.0, [0.0, 0.0], False),  # value and gradient finite, params not
        ([np.nan, 1.0], 1.0, [0.0, 0.0], False),
        ([1.0, 1.0], 1.0, [np.inf, 0.0], False),
        ([1.0, 1.0], 1.0, [np.nan, 0.0], False),
        ([1.0, 1.0], np.nan, [3.0, 4.0], False),
        ([1.0, 1.0], 1.0, [1e30, 0.0], True),  # the squared norm overflows float32: still finite
    ],
)
def test_measure_flags_exactly_the_nonfinite(params, value, grad, finite):
    s = _solver.Solver(lambda x: jnp.sum(x), "gd", 0.1)
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    gnorm, ok = jax.jit(s._measure)(f32(params), f32(value), f32(grad))
    assert bool(ok) == finite
    if finite:  # the true norm (float64 reference, cast): no overflow even when the square overflows float32
        expected = np.float32(np.linalg.norm(np.asarray(grad, np.float64)))
        np.testing.assert_allclose(gnorm, expected, rtol=1e-6)


def test_nonfinite_params_stop_the_run_with_the_last_finite_ones():
    # value 0 and gradient 1 at finite x, value and gradient 0 at -inf: only
    # the iterate itself (-3e38 - 3e38 overflows float32) is non-finite.
    def fun(x):
        return jnp.sum(jnp.where(jnp.isfinite(x), x - jax.lax.stop_gradient(x), 0.0))

    x0 = jnp.asarray([-3e38], jnp.float32)
    res = jaxgd.minimize(fun, x0, lr=3e38, max_steps=10, gtol=0.0)
    assert res.status_enum == jaxgd.Status.NONFINITE
    np.testing.assert_array_equal(res.params, x0)


def test_repeated_calls_do_not_trace_or_compile_even_for_new_step_counts():
    traces = []

    def loss(x):
        traces.append(1)
        return jnp.sum((x - 3.0) ** 2)

    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, *a, **k: compiles.append(name) if name == "/jax/core/compile/backend_compile_duration" else None
    )
    x0 = jnp.zeros(3, jnp.float32)
    first = jaxgd.minimize(loss, x0, lr=0.1, max_steps=200, gtol=1e-3)
    n_traces, n_compiles = len(traces), len(compiles)
    steps = {int(first.steps)}
    for lr in (0.05, 0.2, 0.3, 0.01):  # a new lr: a new step count, same compiled loop
        res = jaxgd.minimize(loss, x0, lr=lr, max_steps=200, gtol=1e-3)
        steps.add(int(res.steps))
        assert len(res.history.loss) == int(res.steps)
        assert isinstance(res.history.loss, np.ndarray)
    assert len(steps) > 3
    assert len(traces) == n_traces
    assert len(compiles) == n_compiles


@pytest.mark.parametrize("wrap", ["plain", "jit", "vmap"])
def test_result_is_complete_when_copies_are_returned_once(wrap):
    loss = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    x0 = jnp.zeros(3, jnp.float32)
    call = lambda lr: jaxgd.minimize(loss, x0, lr=lr, max_steps=20, gtol=0.0)  # noqa: E731
    if wrap == "plain":
        res = call(0.1)
        assert res.params is res.state.params and res.steps is res.state.count
    elif wrap == "jit":
        res = jax.jit(call)(0.1)
    else:
        res = jax.vmap(call)(jnp.asarray([0.1, 0.2], jnp.float32))
    # Reference: the same 20 gd steps in NumPy float32, x <- x - lr * 2 (x - 3), from x0 = 0.
    lrs = np.float32([0.1, 0.2]) if wrap == "vmap" else np.float32([0.1])
    x = np.zeros((len(lrs), 3), np.float32)
    for _ in range(20):
        x = x - lrs[:, None] * (np.float32(2) * (x - np.float32(3)))
    ref = dict(
        params=x, loss=np.sum((x - 3) ** 2, axis=1), grad_norm=np.linalg.norm(2 * (x - 3), axis=1),
        steps=20, nfev=21, ngev=21, status=int(jaxgd.Status.MAX_STEPS),
    )
    if wrap != "vmap":
        ref = {k: (v[0] if np.ndim(v) else v) for k, v in ref.items()}
    for name, want in ref.items():
        got = getattr(res, name)
        assert got is not None, name
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=1e-5, atol=1e-6, err_msg=name)
    # the state carries the same numbers as the result's own fields
    np.testing.assert_allclose(np.asarray(res.state.params), ref["params"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(res.state.value), ref["loss"], rtol=1e-5, atol=1e-6)


def _quad(x):
    return jnp.sum((x - 1.0) ** 2 * jnp.arange(1, x.shape[0] + 1))


def _assert_same(a, b, rtol=0.0):
    """Bit for bit (rtol=0), or to rtol with the same NaN pattern and the same integers."""

    def same(x, y, msg=""):
        if rtol:
            np.testing.assert_allclose(x, y, rtol=rtol, err_msg=msg)
        else:
            np.testing.assert_array_equal(x, y, err_msg=msg)

    for name in ("params", "loss", "grad_norm", "steps", "status", "nfev", "ngev"):
        same(getattr(a, name), getattr(b, name), name)
    for name in a.history._fields:
        same(getattr(a.history, name), getattr(b.history, name), name)
    for x, y in zip(jax.tree_util.tree_leaves(a.state), jax.tree_util.tree_leaves(b.state)):
        same(x, y)


# lr 0.01-0.15 converge at different steps; 0.3-0.6 diverge (NONFINITE)
LRS = jnp.asarray([0.01, 0.02, 0.05, 0.1, 0.15, 0.3, 0.34, 0.6], jnp.float32)


@pytest.mark.parametrize(
    "kw",
    [
        dict(max_steps=500, gtol=1e-3),
        dict(max_steps=500, gtol=1e-3, history=5),
        # (make slow: two more compiled pairs, ~3 s each)
        pytest.param(dict(max_steps=500, gtol=1e-3, method="momentum", history=2), marks=pytest.mark.slow),
        pytest.param(dict(max_steps=400, gtol=1e-4, ftol=1e-9, history=False), marks=pytest.mark.slow),
        # one chunk of 37 steps (a prime below 2 x 32; make slow: 500 and 97 cover the tiled and spare paths)
        pytest.param(dict(max_steps=37, gtol=0.0, method="adam"), marks=pytest.mark.slow),
        dict(max_steps=97, gtol=0.0, method="adam", history=2),  # 48 entries of 97 steps: a spare chunk
        dict(max_steps=0),
    ],
)
def test_batched_loop_equals_plain_vmap(kw):
    x0 = jnp.zeros(6, jnp.float32)
    ours = jax.jit(jax.vmap(lambda lr: jaxgd.minimize(_quad, x0, lr=lr, **kw)))(LRS)
    plain = jax.jit(jax.vmap(lambda lr: _solver.Solver(_quad, lr=lr, **kw).run(x0)))(LRS)
    _assert_same(ours, plain)
    if kw.get("gtol"):
        assert len(set(np.asarray(ours.steps).tolist())) > 4  # the runs stopped at different steps


def test_batched_loop_over_x0_and_nested_vmap():
    x0s = jnp.linspace(-1.0, 2.0, 12, dtype=jnp.float32).reshape(2, 3, 2)
    kw = dict(lr=0.05, max_steps=300, gtol=1e-3, history=3)
    ours = jax.jit(jax.vmap(jax.vmap(lambda x: jaxgd.minimize(_quad, x, **kw))))(x0s)
    plain = jax.jit(jax.vmap(jax.vmap(lambda x: _solver.Solver(_quad, **kw).run(x))))(x0s)
    _assert_same(ours, plain, rtol=1e-6)  # nested batching may fuse a sum differently: last-bit differences
    assert ours.history.loss.shape == (2, 3, 100)


def _loop_carries(jaxpr):
    """(primitive, carried avals) of every while loop and scan in ``jaxpr`` and the jaxprs it calls."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while":
            yield "while", [v.aval for v in eqn.invars[eqn.params["cond_nconsts"] + eqn.params["body_nconsts"]:]]
        if eqn.primitive.name == "scan":
            first = eqn.params["num_consts"]
            yield "scan", [v.aval for v in eqn.invars[first:first + eqn.params["num_carry"]]]
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr's jaxpr
                if hasattr(sub, "eqns"):
                    yield from _loop_carries(sub)


def test_batched_chunks_tile_the_history_or_keep_a_spare_chunk():
    # reference: the loop's own arithmetic. Chunks of k = per_chunk * every steps start at 0, k, 2k, ...
    # while below max_steps; each writes per_chunk entries at start // every. Every write must land in
    # the n + spare entries, and with no spare the chunks cover exactly the n entries.
    for max_steps in range(1, 400):
        for every in (1, 2, 3, 5, 7, 40):
            n = max_steps // every
            per_chunk, spare = _batched.chunking(n, every, max_steps)
            if not n:
                assert (per_chunk, spare) == (0, 0)
                continue
            k = per_chunk * every
            chunks = -(-max_steps // k)
            assert (chunks - 1) * k // every + per_chunk <= n + spare, (max_steps, every)
            if not spare:
                assert chunks * per_chunk == n, (max_steps, every)
            assert spare in (0, per_chunk) and 1 <= per_chunk <= 2 * -(-_batched.STEPS_PER_CHUNK // every)
    assert _batched.chunking(2000, 1, 2000) == (25, 0)  # the 256-run x 2,000-step sweep (benchmarks D)
    assert _batched.chunking(97, 1, 97) == (32, 32) and _batched.chunking(33, 3, 100) == (11, 11)


@pytest.mark.slow
def test_batched_loop_copies_no_history_per_step(monkeypatch):
    # The history buffers (runs x max_steps) are carried by the loop over chunks only; the scan
    # that runs a chunk's steps carries none (its rows are scan outputs), so no step selects or
    # copies them (plain vmap of the while loop selected every carried buffer every step).
    n = 200
    x0 = jnp.zeros(6, jnp.float32)
    one = lambda lr: jaxgd.minimize(_quad, x0, lr=lr, max_steps=n, gtol=1e-3)  # noqa: E731
    carries = list(_loop_carries(jax.make_jaxpr(jax.vmap(one))(LRS).jaxpr))
    assert {kind for kind, _ in carries} == {"while", "scan"}, carries
    sized = [(kind, a.shape) for kind, avals in carries for a in avals if any(s >= n for s in a.shape)]
    assert sized and all(kind == "while" for kind, _ in sized), sized
    # and the chunk length does not change the results
    run = lambda: jax.jit(jax.vmap(one))(LRS)  # noqa: E731
    a = run()
    monkeypatch.setattr(_batched, "STEPS_PER_CHUNK", 5)
    jax.clear_caches()
    _assert_same(a, run())


def test_solver_cache_keys_on_types_and_values():
    from jaxgd.core import minimize_run as _minimize

    loss = lambda x: jnp.sum(x**2)  # noqa: E731
    a = _minimize.cached_solver(loss, "gd", 0.1, max_steps=10, progress=True)
    assert _minimize.cached_solver(loss, "gd", 0.1, max_steps=10, progress=True) is a
    b = _minimize.cached_solver(loss, "gd", 0.1, max_steps=1000, progress=1)  # == True in Python, another meaning
    c = _minimize.cached_solver(loss, "gd", 0.1, max_steps=1000, progress=True)
    assert b is not c and (b.progress_every, c.progress_every) == (1, 10)
    assert _minimize.cached_solver(loss, "gd", 0.2, max_steps=10, progress=True) is not a
    for _ in range(2):  # a bad value raises every time (nothing cached)
        with pytest.raises(ValueError, match="lr must be"):
            _minimize.cached_solver(loss, "gd", float("nan"), max_steps=10)
    lr = jnp.asarray(0.1)  # unhashable: built every time
    assert _minimize.cached_solver(loss, "gd", lr, max_steps=10) is not _minimize.cached_solver(loss, "gd", lr, max_steps=10)


def test_nonfinite_x0_raises_on_every_call_and_finite_verdicts_are_per_array():
    loss = lambda x: jnp.sum(x**2)  # noqa: E731
    bad = jnp.asarray([1.0, jnp.nan])
    for _ in range(2):
        with pytest.raises(ValueError, match="NaN or Inf"):
            jaxgd.minimize(loss, bad, max_steps=2)
    good = jnp.ones(2)
    jaxgd.minimize(loss, good, max_steps=2)
    jaxgd.minimize(loss, good, max_steps=2)  # remembered: same array object
    with pytest.raises(ValueError, match="NaN or Inf"):
        jaxgd.minimize(loss, good.at[0].set(jnp.inf), max_steps=2)  # a new array is checked
    np_x0 = np.ones(2)
    jaxgd.minimize(loss, np_x0, max_steps=2)
    np_x0[0] = np.nan  # NumPy arrays are mutable: never remembered
    with pytest.raises(ValueError, match="NaN or Inf"):
        jaxgd.minimize(loss, np_x0, max_steps=2)


def _while_carries(jaxpr, depth=0):
    """(depth, carried avals) of every while loop in ``jaxpr`` and the jaxprs it calls."""
    for eqn in jaxpr.eqns:
        inner = depth + (eqn.primitive.name == "while")
        if eqn.primitive.name == "while":
            yield depth, [v.aval for v in eqn.invars[eqn.params["cond_nconsts"] + eqn.params["body_nconsts"]:]]
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr's jaxpr
                if hasattr(sub, "eqns"):
                    yield from _while_carries(sub, inner)


@pytest.mark.parametrize("method", ["gd", "lbfgs"])
def test_history_is_written_outside_the_per_step_loop(method):
    # Issue 15 item 2 (cheap history): XLA:CPU runs a loop body's kernels inline only over
    # buffers of at most 512 bytes; a max_steps-long history buffer in the per-step body put
    # every step on its thread pool (GD 100-D float32: 6.2 -> 1.2 us a step, benchmarks A).
    # The history buffers are carried by the outermost loop only; the loop that runs the
    # steps carries the rows of one chunk (at most CHUNK_BYTES).
    from jaxgd.core import driver as _driver

    n = 5000
    solver = jaxgd.Solver(_quad, method, lr=0.01 if method == "gd" else None, max_steps=n, gtol=0.0)
    jaxpr = jax.make_jaxpr(solver.run)(jnp.zeros(6, jnp.float32)).jaxpr
    carries = list(_while_carries(jaxpr))
    history_sized = [(d, a.shape) for d, avals in carries for a in avals if a.ndim and a.shape[0] >= n]
    assert history_sized and {d for d, _ in history_sized} == {0}, history_sized
    row_bytes = 3 * 4
    chunk = [a for d, avals in carries if d == 1 for a in avals if a.ndim == 2 and a.shape[1] == 3]
    assert chunk and all(a.size * a.dtype.itemsize <= _driver.CHUNK_BYTES for a in chunk)
    assert chunk[0].shape[0] == _driver.CHUNK_BYTES // row_bytes


@pytest.mark.parametrize(
    "kw",
    [
        dict(method="gd", lr=0.05, max_steps=200, gtol=1e-4, history=3),  # stops mid-chunk; rows every 3 steps
        # a history of one chunk's rows (20 of 42): one loop writes it (driver._one_chunk); XLA computes a
        # recorded loss in another fusion of the other program: 3 of the 20 an ulp apart (params, state the same)
        dict(method="gd", lr=0.05, max_steps=40, gtol=0.0, history=2, rtol=2.4e-7),
        pytest.param(dict(method="lbfgs", max_steps=60, gtol=0.0), marks=pytest.mark.slow),  # steps not taken (search fails)
    ],
)
def test_history_chunks_do_not_change_the_results(monkeypatch, kw):
    # reference: the same solver with chunks of 1 row (every row written at its step) and with
    # history off (params, counts, status): bit for bit
    from jaxgd.core import driver as _driver

    x0 = jnp.asarray([3.0, -1.0, 0.5, 2.0], jnp.float32)
    kw = dict(kw)
    rtol = kw.pop("rtol", 0.0)
    run = lambda **extra: jax.jit(_solver.Solver(_quad, **{**kw, **extra}).run)(x0)  # noqa: E731
    default = run()
    monkeypatch.setattr(_driver, "CHUNK_BYTES", 12)  # one row per chunk
    one_row = run()
    off = run(history=False)
    _assert_same(default, one_row, rtol)
    for x, y in zip(jax.tree_util.tree_leaves(default.state), jax.tree_util.tree_leaves(one_row.state)):
        np.testing.assert_array_equal(x, y)  # (the state bit for bit whatever rtol)
    for field in ("params", "steps", "status", "nfev", "ngev"):
        np.testing.assert_array_equal(getattr(default, field), getattr(off, field), err_msg=field)
    recorded = np.asarray(default.history.loss)
    assert np.isfinite(recorded[: int(default.steps) // kw.get("history", 1)]).all()
    assert np.isnan(recorded[int(default.steps) // kw.get("history", 1):]).all()


def test_a_short_history_is_written_by_one_loop():
    # Issue 15 item 3 (per-call cost): a history of at most one chunk's rows needs no outer loop
    # (its kernels and buffers ran once a call: a repeated 10-step minimize call ~3 us less,
    # benchmarks E); a longer one keeps the two (test_history_is_written_outside_the_per_step_loop).
    from jaxgd.core import driver as _driver

    rows = _driver.CHUNK_BYTES // (3 * 4)  # float32 rows of one chunk
    for n, depths in ((rows, {0}), (rows + 1, {0, 1})):
        solver = jaxgd.Solver(_quad, "gd", lr=0.01, max_steps=n, gtol=0.0)
        jaxpr = jax.make_jaxpr(solver.run)(jnp.zeros(6, jnp.float32)).jaxpr
        steps = {d for d, avals in _while_carries(jaxpr) if any(a.shape == (6,) for a in avals)}
        assert steps == depths, (n, steps)


@pytest.mark.parametrize("dtype", [jnp.float32, "float64"])
def test_eager_run_hands_back_the_state_scalars_packed(dtype):
    # Issue 15 item 3 (per-call cost): every output of a jitted call costs ~2 us to hand back,
    # so the eager run returns the state's ten scalars as two vectors (benchmarks E); the host
    # gets NumPy scalars of the state's dtypes. Reference: the same run inside jax.jit (no packing).
    from jaxgd.core import minimize_run as _run

    if dtype == "float64" and not jax.config.jax_enable_x64:
        pytest.skip("float64 needs x64")
    loss = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    x0 = jnp.zeros(3, dtype)
    solver = _run.cached_solver(loss, "gd", 0.1, max_steps=20, gtol=0.0)
    e = _run.Plan(solver).eager()
    run, structure, leaves = e.call, e.structure, e.leaves
    outputs = jax.tree_util.tree_leaves(jax.eval_shape(lambda x: run(structure, leaves, x, ()), x0))
    assert len(outputs) <= 6, [o.shape for o in outputs]  # history, params, grad, floats, ints (+ window)
    res = jaxgd.minimize(loss, x0, lr=0.1, max_steps=20, gtol=0.0)
    traced = jax.jit(lambda x: jaxgd.minimize(loss, x, lr=0.1, max_steps=20, gtol=0.0))(x0)
    for name in ("value", "grad_norm", "alpha", "count", "status", "nfev", "ngev"):
        got, want = getattr(res.state, name), getattr(traced.state, name)
        assert isinstance(got, np.generic) and got.dtype == want.dtype, (name, type(got), got.dtype)
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert res.loss is res.state.value and res.steps is res.state.count
    # history off: no history buffers handed back (three empty outputs cost ~5 us a call); the Result's
    # history is empty, NumPy in an eager call and arrays under jit, of the loss's dtype
    e = _run.Plan(_run.cached_solver(loss, "gd", 0.1, max_steps=20, gtol=0.0, history=False)).eager()
    outputs = jax.tree_util.tree_leaves(jax.eval_shape(lambda x: e.call(e.structure, e.leaves, x, ()), x0))
    assert len(outputs) <= 4, [o.shape for o in outputs]  # params, grad, floats, ints
    off = jaxgd.minimize(loss, x0, lr=0.1, max_steps=20, gtol=0.0, history=False)
    off_traced = jax.jit(lambda x: jaxgd.minimize(loss, x, lr=0.1, max_steps=20, gtol=0.0, history=False))(x0)
    for got, want in zip(off.history, off_traced.history):
        assert isinstance(got, np.ndarray) and got.shape == want.shape == (0,) and got.dtype == want.dtype == x0.dtype


@pytest.mark.slow
def test_a_tree_of_many_leaves_computes_its_step_flag_once(monkeypatch):
    """A 16-leaf parameter tree: XLA fused the step's accept flag (the and of every leaf's finiteness, over
    the loss's sum of 16 terms) into each leaf's select, recomputing it per leaf: O(L^2) ops a step (40 leaves
    of gd: 42x a hand-written optax loop, a 6 s compile; a user review in session 57). jaxgd._tree.shared
    computes it once. References: the same run without it (SHARED_MIN_LEAVES raised), bit for bit; and the
    count of is-finite ops in the compiled program, 804 without it at 16 leaves (a linear count is ~10 a leaf)."""
    from jaxgd import _tree

    L, m = 16, 40
    a = jnp.asarray(np.random.default_rng(0).uniform(0.5, 2.0, L * m))

    def loss(p, a):
        return 0.5 * sum(jnp.sum(a[i * m:(i + 1) * m] * (v - 1.0) ** 2) for i, v in enumerate(p))

    x0 = [jnp.zeros(m) for _ in range(L)]

    def make_run():  # a new function each time: a new trace, under the constant in force then
        return jax.jit(lambda x0, a: jaxgd.Solver(loss, method="gd", lr=1e-2, max_steps=50, gtol=0.0).run(x0, a))

    text = make_run().lower(x0, a).compile().as_text()
    assert text.count("is-finite(") <= 20 * L, text.count("is-finite(")
    shared = make_run()(x0, a)
    monkeypatch.setattr(_tree, "SHARED_MIN_LEAVES", 10**6)
    plain_run = make_run()
    assert plain_run.lower(x0, a).compile().as_text().count("is-finite(") > 20 * L  # (the reference is the old program)
    plain = plain_run(x0, a)
    for x, y in zip(jax.tree_util.tree_leaves(shared), jax.tree_util.tree_leaves(plain)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_fit_with_many_leaves_computes_its_rollback_flags_once(monkeypatch):
    """fit's exact step (under jit, with l2, or with a quasi-Newton method) selects every leaf of the parameters,
    the previous point and the optimizer state with its accept and roll-back flags: XLA fused the flags' chain
    into each select, O(L^2) ops a step (40 leaves of adam: a program of 57,650 lines, 23,392 with the flags
    shared; session 58). References: the same run without jaxgd._tree.shared (SHARED_MIN_LEAVES raised), bit for
    bit, and the count of add ops in the compiled program (at 16 leaves 2,358 without it, 343 with it; 8,759 and
    632 at 32 leaves: quadratic and linear)."""
    from jaxgd import _tree

    L, m, n = 16, 20, 64
    x = jnp.asarray(np.random.default_rng(0).normal(size=(n, L)))

    p0 = [jnp.zeros(m) for _ in range(L)]

    def make_run():  # new functions each time (fit's loop is cached per loss): a new trace, under the constant then
        def loss(p, x):
            return sum(jnp.mean((x[:, i] * jnp.sum(v) - 1.0) ** 2) for i, v in enumerate(p)) / L

        return jax.jit(lambda p0, x: jaxgd.fit(loss, p0, x, batch_size=8, epochs=2, key=jax.random.key(0),
                                               method="adam", lr=1e-3, l2=1e-4).params)

    def adds(run: Any) -> int:
        return len(re.findall(r"= \S+ add\(", run.lower(p0, x).compile().as_text()))

    assert adds(make_run()) <= 40 * L, adds(make_run())
    shared = make_run()(p0, x)
    monkeypatch.setattr(_tree, "SHARED_MIN_LEAVES", 10**6)
    plain_run = make_run()
    assert adds(plain_run) > 40 * L  # (the reference: the old program)
    for a, b in zip(jax.tree_util.tree_leaves(shared), jax.tree_util.tree_leaves(plain_run(p0, x))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
