"""The solver loop under ``jax.vmap``: a batched loop that never copies the history.

Plain ``jax.vmap`` of a ``lax.while_loop`` whose predicate depends on the
batched values (each run's status) selects *every* loop-carried buffer
between its old and new value at every step. For the history buffers
(runs x max_steps, three of them) that is a full copy per step: a
256-run x 2,000-step sweep ran slower than 256 sequential calls
(benchmarks/RESULTS.md, D).

:func:`vmappable` wraps a function of ``(solver, x0, args)`` running
``solver.run`` with ``jax.custom_batching.custom_vmap``: unbatched calls run
the function unchanged; under ``vmap`` :func:`run_batched` runs instead:

- an outer ``while_loop`` over chunks of ``K`` steps whose predicate, "any
  run still running", is unbatched;
- inside, a ``lax.scan`` of ``K`` steps of the vmapped step; a run
  that has stopped keeps its state (``Solver.step`` leaves a stopped state as
  it is: no select here), and each step's history entry is a scan output,
  written in place;
- after each chunk, its entries are written into the history with one
  ``dynamic_update_slice`` at an unbatched offset; the chunk length is
  chosen so that chunks tile the history where they can (:func:`chunking`),
  else a spare chunk of entries is cut off at the end.

Every run starts at step 0 and a running run takes every step, so a running
run's step count equals the shared iteration counter and the history entry
of step ``k`` lands where the plain loop puts it. Results are those of the
plain vmapped loop (``tests/test_performance.py``); at most ``K - 1`` masked
steps run after the last run has stopped.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from . import driver as _driver
from . import packing as _packing
from .status import History, Status

STEPS_PER_CHUNK = 32  # K, rounded up to a multiple of history_every


def chunking(n: int, every: int, max_steps: int) -> tuple[int, int]:
    """``(entries per chunk, spare entries)`` of the batched loop's history, ``n`` entries one
    every ``every`` of ``max_steps`` steps: a chunk of about :data:`STEPS_PER_CHUNK` steps.

    Where chunks can tile the history exactly (``max_steps = n * every`` and a divisor of ``n``
    between half (or ``n``) and twice the entries of :data:`STEPS_PER_CHUNK` steps, the nearest
    taken) no chunk writes past the end. Else one spare chunk of NaN keeps every chunk's write
    in bounds and is cut off at the end: a copy of each history buffer, which made a 256-run x
    2,000-step sweep 1.05x as long (benchmarks/RESULTS.md, D, session 29)."""
    if not n:
        return 0, 0
    target = max(1, -(-STEPS_PER_CHUNK // every))
    if max_steps == n * every:
        fits = [k for k in range(max(1, min(target // 2, n)), 2 * target + 1) if n % k == 0]
        if fits:
            return min(fits, key=lambda k: (abs(k - target), -k)), 0
    return target, target


def _axes(batched: Any) -> Any:
    """``vmap``'s ``in_axes`` for an input whose leaves ``batched`` flags: as short a prefix as the flags allow
    (``None`` for a subtree with no batched leaf, ``0`` for one with only batched leaves): a tree of ``None``s
    rebuilt as a ``jax.experimental.sparse.BCOO`` in ``args`` was no prefix vmap accepts."""
    flags = jax.tree_util.tree_leaves(batched)
    if not any(flags):
        return None
    if all(flags):
        return 0
    if isinstance(batched, tuple) and hasattr(batched, "_fields"):  # (a NamedTuple)
        return type(batched)(*(_axes(b) for b in batched))
    if type(batched) in (tuple, list):
        return type(batched)(_axes(b) for b in batched)
    if type(batched) is dict:  # (an OrderedDict or defaultdict: leaf by leaf below, its own type kept)
        return {k: _axes(v) for k, v in batched.items()}
    return jax.tree_util.tree_map(lambda b: 0 if b else None, batched)


def run_batched(axis_size: int, in_batched: list, solver: Any, x0: Any, args: tuple, package: Callable) -> Any:
    """``vmap(lambda s, x, a: package(s.run(x, *a)))`` without per-step buffer copies."""
    s_ax, x_ax, a_ax = (_axes(b) for b in in_batched)
    # vmap's out_axes=0 gives every state leaf the run axis, batched inputs or not
    state = jax.vmap(lambda s, x, a: s.init(x, *a), in_axes=(s_ax, x_ax, a_ax), axis_size=axis_size)(solver, x0, args)
    # (Solver.step without its check of the state: init built it)
    vstep = jax.vmap(lambda s, st, a: s._advance(st, a, running_known=False), in_axes=(s_ax, 0, a_ax))
    vloss = jax.vmap(lambda s, st: s.loss(st.params, st.value), in_axes=(s_ax, 0))
    every, n = solver.history_every, solver.history_length()
    per_chunk, spare = chunking(n, every, solver.max_steps)  # history entries per chunk
    k_steps = per_chunk * every if n else STEPS_PER_CHUNK
    dtype = state.value.dtype
    hist = History(*(jnp.full((axis_size, n + spare), jnp.nan, dtype) for _ in range(3)))

    def running(st: Any) -> jax.Array:
        return _driver.running(st.status, st.count, solver.step_limit)

    def shown_count(st: Any) -> jax.Array:
        """The bar's step: the least advanced run still running (once all stopped, the last to stop)."""
        live = running(st)
        waiting = jnp.min(jnp.where(live, st.count, jnp.iinfo(st.count.dtype).max))
        return jnp.where(jnp.any(live), waiting, jnp.max(st.count))

    # the runs' scalars (value, counters, status, ...) carried as one (k, runs) array per dtype
    pack, unpack = _packing.codec(state, ndim=1)

    def one_step(c: Any, _: Any) -> tuple[Any, Any]:
        # Solver.step keeps a stopped run's state (its one change: RUNNING -> MAX_STEPS at the
        # step limit, which finish makes anyway), so no select per step here
        st = unpack(c)
        new = vstep(solver, st, args)
        if not n:
            return pack(new), None
        took = new.count > st.count
        # the three fields stacked: one (3, runs) row a step to write, not three
        entry = jnp.stack([e.astype(dtype) for e in (vloss(solver, new), new.alpha, new.grad_norm)])
        return pack(new), jnp.where(took, entry, jnp.nan)

    def chunk(carry: tuple) -> tuple:
        c, h, it = carry
        c, ys = lax.scan(one_step, c, None, length=k_steps)
        if n:  # the entries of steps it + every, it + 2 every, ... (scan rows every-1, 2 every-1, ...)
            rows = ys[every - 1 :: every]  # (entries, 3, runs)
            h = History(*(lax.dynamic_update_slice(b, rows[:, i].T, (jnp.zeros_like(it), it // every)) for i, b in enumerate(h)))
        if solver.progress_every:
            st = unpack(c)
            _driver.report(shown_count(st), jnp.min(vloss(solver, st)), solver.step_limit)
        return c, h, it + k_steps

    def more(carry: tuple) -> jax.Array:
        c, _, it = carry
        return jnp.any(running(unpack(c))) & (it < solver.max_steps)

    c, hist, _ = lax.while_loop(more, chunk, (pack(state), hist, jnp.asarray(0, jnp.int32)))
    state = unpack(c)
    if solver.progress_every:
        _driver.report(jnp.max(state.count), jnp.min(vloss(solver, state)), solver.step_limit, final=True,
                       status=jnp.where(running(state), Status.MAX_STEPS, state.status))
    if spare:
        hist = History(*(b[:, :n] for b in hist))
    out = jax.vmap(lambda s, st, h: package(s.finish(st, h)), in_axes=(s_ax, 0, 0))(solver, state, hist)
    return out, jax.tree_util.tree_map(lambda _: True, out)


def vmappable(fun: Callable, package: Callable) -> Callable:
    """``fun(solver, x0, args) = package(solver.run(x0, *args))``, with :func:`run_batched` as its vmap rule."""
    wrapped = jax.custom_batching.custom_vmap(fun)

    @wrapped.def_vmap
    def rule(axis_size: int, in_batched: list, solver: Any, x0: Any, args: tuple) -> Any:
        return run_batched(axis_size, in_batched, solver, x0, args, package)

    return wrapped
