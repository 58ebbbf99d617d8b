"""The driver of the compiled loops: while loop, history buffers, progress, finish.

A solver provides ``step`` (one iteration, stays put once stopped) and its
termination tests; the driver owns what is around it, once for every loop:

- :func:`loop`: ``lax.while_loop`` of blocks of ``solver.step`` while the
  status is ``RUNNING`` and ``count < stop`` (:func:`running`, the continue
  test of every loop); with history on, an inner loop collects a few hundred
  bytes of history rows and the outer one writes them into the preallocated
  buffers (:func:`_chunked`; out-of-range indices are dropped, so "not this
  step" costs no branch); the state is carried with its scalars packed
  (:mod:`jaxgd.core.packing`);
- :func:`report` / :func:`report_epoch`: the progress bar, fed through
  ``jax.debug.callback`` (nothing is traced when progress is off);
- :func:`finish`: mark an exhausted budget ``MAX_STEPS`` and package the
  :class:`~jaxgd.core.status.Result`;
- :func:`resize_history`: pad (NaN) or cut saved history buffers to a new
  length (resume with another ``max_steps``/``epochs``).

The batched loop (:mod:`jaxgd.core.batched`, under ``jax.vmap``) and fit's
epoch loop (:mod:`jaxgd.minibatch.loop`) use the same helpers.

Each ``while_loop`` iteration runs a block of ``K`` steps (:func:`block_size`,
the ``unroll`` option; issue 15): a stopped state stays put under
``solver.step``, so the steps after a stop inside a block are no-ops, bit for
bit.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax import lax

from .. import _tree
from . import packing as _packing
from . import progress as _progress
from . import stepsize as _stepsize
from .status import History, Result, Status


def history_length(max_steps: int, every: int) -> int:
    """Entries recorded for a run of ``max_steps`` with one entry every ``every`` steps (0: off)."""
    return max_steps // every if every else 0


STEP_BUCKET_MIN = 8  # a bucketed loop compiles for a power of two of steps, at least this


def step_bucket(n: int) -> int:
    """The power of two (at least ``STEP_BUCKET_MIN``) a loop of ``n`` steps or
    epochs is compiled for, so that another ``n`` in the bucket re-uses the
    compiled program (issue 14 item 4; the budget itself is traced)."""
    return max(STEP_BUCKET_MIN, 1 << (max(int(n), 1) - 1).bit_length())


def empty_history(length: int, dtype: Any, fields: type = History) -> Any:
    """NaN buffers of ``length`` entries, one per field of ``fields``."""
    nan = jnp.full((length,), jnp.nan, dtype=dtype)
    return fields(*(nan for _ in fields._fields))


def resize_history(history: Any, length: int, dtype: Any) -> Any:
    """Pad (NaN) or cut saved buffers to ``length`` entries."""
    empty = empty_history(length, dtype, type(history))
    return type(history)(*(jnp.concatenate([h[:length], e[h[:length].shape[0]:]]) for h, e in zip(history, empty)))


def report(count: jax.Array, loss: jax.Array, total: int, final: bool = False, status: Any = None) -> None:
    """Progress of a step loop (host callback); the final report with ``status`` says why it stopped."""
    if final and status is not None:
        jax.debug.callback(_progress.close, count, loss, total, status)
    else:
        jax.debug.callback(_progress.close if final else _progress.update, count, loss, total)


def report_epoch(
    epoch: jax.Array, total: int, train: jax.Array, ev: jax.Array, final: bool = False, status: Any = None
) -> None:
    """Progress of an epoch loop (host callback); the final report with ``status`` says why it stopped."""
    if final and status is not None:
        jax.debug.callback(_progress.close_epoch, epoch, total, train, ev, status)
    else:
        jax.debug.callback(_progress.close_epoch if final else _progress.update_epoch, epoch, total, train, ev)


# Steps per loop iteration chosen by block_size (issue 15; benchmarks/RESULTS.md).
AUTO_BLOCK_ACCELERATOR = 8  # a GPU/TPU iteration launches kernels and copies the predicate to the host


def block_size(solver: Any, state: Any) -> int:
    """``K``, the steps one iteration of :func:`loop` runs: ``solver.unroll``
    when set, otherwise chosen from the backend and the step-size rule.

    Every iteration of a ``lax.while_loop`` pays a fixed cost besides its
    work; on a GPU or TPU a kernel launch and a copy of the predicate back to
    the host (microseconds), which a block of ``K`` unrolled steps pays once
    per ``K`` steps, at ``K`` times the traced and compiled body.

    Automatic choice:

    - CPU: 1. Measured on XLA:CPU (jax 0.10.2, Rosenbrock 2-D and 100-D, GD
      and Adam, benchmarks/RESULTS.md): the per-iteration cost is already
      small (tens of ns), and a larger body is slower, not faster: XLA:CPU
      runs a body of many kernels through its thunk executor instead of
      inline (2-D GD with history: 0.027 us a step with ``K = 1``, 3.0 us
      with ``K = 2``, 2.2 us with ``K = 8``).
    - GPU/TPU: ``AUTO_BLOCK_ACCELERATOR`` steps when the step size is a
      schedule (a constant included); 1 with a line search, whose inner loop
      would be compiled ``K`` times over.

    Results do not depend on ``K`` (bit for bit, ``tests/test_blocks.py``).
    """
    if solver.unroll is not None:
        return solver.unroll
    if jax.default_backend() == "cpu":
        return 1
    return AUTO_BLOCK_ACCELERATOR if isinstance(solver.rule, _stepsize.ScheduleRule) else 1


def _entry_index(solver: Any, prev: Any, new: Any) -> jax.Array:
    """Where step ``prev -> new`` is recorded: ``new.count // every - 1``, or
    past the end (dropped) when no step was taken or ``new.count`` is not a
    multiple of ``every``."""
    every, n = solver.history_every, solver.history_length()
    k = new.count
    take = (k > prev.count) & (_tree.count_rem(k, every) == 0)
    return jnp.where(take, _tree.count_div(k, every) - 1, n)


def _steps(solver: Any, s: Any, k_steps: int, stop: Optional[Any], args: tuple) -> tuple[Any, list, list]:
    """``k_steps`` steps from ``s`` with their progress reports; returns the
    state and, with history on, each step's history index and entry.

    A state that has stopped stays put under ``solver.step`` (bit for bit), so
    the steps after a stop inside the block cost work but change nothing;
    with a ``stop`` below ``max_steps`` (one chunk of a checkpointed run)
    steps at ``count >= stop`` are masked explicitly.
    """
    index, entries = [], []
    for _ in range(k_steps):
        # one step per iteration: the loop's test guarantees a running state (see loop)
        new = solver._advance(s, args, running_known=k_steps == 1)
        if stop is not None and k_steps > 1:
            new = _tree.where(s.count < stop, new, s)
        if solver.history_length():  # 0 with history off, or max_steps < every
            index.append(_entry_index(solver, s, new))
            entries.append(jnp.stack([solver.loss(new.params, new.value), new.alpha, new.grad_norm]))
        if solver.progress_every:
            lax.cond(
                (new.count > s.count) & (_tree.count_rem(new.count, solver.progress_every) == 0),
                lambda new=new: report(new.count, solver.loss(new.params, new.value), solver.step_limit),
                lambda: None,
            )
        s = new
    return s, index, entries


# Bytes of history rows an inner loop of :func:`loop` collects before the outer loop writes
# them into the history buffers: XLA:CPU's threshold for running a loop body inline.
CHUNK_BYTES = 512


def chunk_blocks(k_steps: int, row_bytes: int) -> int:
    """Blocks of ``k_steps`` steps per inner loop of :func:`loop` (at least 1): as many
    as keep the collected history rows (``row_bytes`` each) within :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // (row_bytes * k_steps))


def running(status: jax.Array, count: jax.Array, limit: Optional[Any] = None) -> jax.Array:
    """Whether a compiled loop goes on: the run's ``status`` is ``RUNNING`` and
    its counter (steps, epochs) is below ``limit`` (may be traced; ``None``:
    no limit). The one continue test of :func:`loop`, the batched loop (per
    run) and fit's epoch loop."""
    going = status == Status.RUNNING
    return going if limit is None else going & (count < limit)


def loop(
    solver: Any, state: Any, history: History, *args: Any, stop: Optional[Any] = None, close_progress: bool = True
) -> tuple[Any, History]:
    """Run ``solver.step`` until a test fires or ``state.count`` reaches ``stop``
    (``solver.step_limit`` by default; may be traced), :func:`block_size` steps
    per ``while_loop`` iteration; the result does not depend on the block size."""
    # (a chunk's stop never lets a step run at or past the step limit: the body's state is running)
    limit = solver.step_limit if stop is None else jnp.minimum(stop, solver.step_limit)
    k_steps = block_size(solver, state)
    if solver.history_length():
        state, history = _chunked(solver, state, history, k_steps, limit, stop, args)
    else:
        state = _packing.packed_while(
            lambda s: running(s.status, s.count, limit), lambda s: _steps(solver, s, k_steps, stop, args)[0], state
        )
    if solver.progress_every and close_progress:
        report(state.count, solver.loss(state.params, state.value), solver.step_limit, final=True, status=state.status)
    return state, history


def _chunked(
    solver: Any, state: Any, history: History, k_steps: int, limit: Any, stop: Optional[Any], args: tuple
) -> tuple[Any, History]:
    """The loop with history on: an outer ``while_loop`` whose body runs an inner
    ``while_loop`` of up to ``m`` blocks (:func:`chunk_blocks`), which collects
    the history entries recorded in it, in order, in a small buffer, and then
    writes that buffer into the history at once: entries are consecutive, so
    one ``dynamic_update_slice`` at the chunk's first entry (``count // every``
    at its start) does it. The inner loop ends after ``m * k_steps`` steps,
    counted on the state's own step counter, and its buffer is not reset
    between chunks: the rows past a chunk's last entry are covered by the next
    chunk, and those of the last one by NaN, what the history holds past the
    run's last entry (no counters and no refill in the outer body, whose
    kernels run once per chunk: GD 2-D float32, 0.051 -> 0.047 us a step).

    Why two loops (issue 15 item 2, cheap history): XLA:CPU runs the kernels of
    a loop body one after another, inline, only when every buffer they touch
    holds at most 512 bytes, or the body has at most 8 kernels, or each kernel
    depends on the one before (``ThunkExecutor``); otherwise it schedules them
    on its thread pool, microseconds a step. ``max_steps``-long history
    buffers in the per-step body put it there (float32 Rosenbrock 100-D, GD
    with history: 6.2 us a step against 0.96 without); only the outer body,
    once per ``m * k_steps`` steps, touches them now. Why one slice write: a
    scatter of the chunk's rows (their indices) is a loop of one kernel per
    row on XLA:CPU (GD 2-D, one core: 0.041-0.043 -> 0.038-0.041 us a step;
    benchmarks/RESULTS.md, session 9).
    """
    fields, dtype = len(history), history[0].dtype
    m = chunk_blocks(k_steps, fields * jnp.dtype(dtype).itemsize)
    rows, n, every = m * k_steps, solver.history_length(), solver.history_every
    if n <= rows:  # the whole history fits in one chunk's buffer: one loop writes it
        return _one_chunk(solver, state, history, k_steps, limit, stop, args)
    blank = jnp.full((rows, fields), jnp.nan, dtype)
    # (entries + rows, fields): a chunk written at entry n - 1 still fits, no index is clamped
    table = jnp.concatenate([jnp.stack(history, axis=1), blank])
    zero = jnp.asarray(0, jnp.int32)

    pack, unpack = _packing.codec(state)  # the state carried packed through both loops

    def outer(carry: tuple) -> tuple:
        c, table, ent = carry
        start = unpack(c).count
        first = _tree.count_div(start, every).astype(jnp.int32)

        def inner(carry: tuple) -> tuple:
            c, ent = carry
            s, index, entries = _steps(solver, unpack(c), k_steps, stop, args)
            ent = _recorded(ent, index, entries, n, zero, first)
            return pack(s), ent

        def more(carry: tuple) -> jax.Array:
            s = unpack(carry[0])
            return running(s.status, s.count, limit) & (s.count < start + rows)

        # the chunk's rows past its last entry keep an older chunk's values: the next
        # chunk, written from that entry on, covers them, and the last one's are cut below
        c, ent = lax.while_loop(more, inner, (c, ent))
        return c, lax.dynamic_update_slice(table, ent, (first, zero)), ent

    c, table, _ = lax.while_loop(_going(unpack, limit), outer, (pack(state), table, blank))
    state = unpack(c)
    # what follows the run's last entry is NaN (the rows an older chunk left there included)
    end = jnp.minimum(_tree.count_div(state.count, every), n).astype(jnp.int32)
    table = lax.dynamic_update_slice(table, blank, (end, zero))
    return state, type(history)(*(table[:n, i] for i in range(fields)))


def _one_chunk(
    solver: Any, state: Any, history: History, k_steps: int, limit: Any, stop: Optional[Any], args: tuple
) -> tuple[Any, History]:
    """:func:`_chunked` for a history of at most one chunk's rows (a short run: ``max_steps``
    up to 42 with float32's three fields): one ``while_loop`` writes each entry into the
    history itself, which stays within XLA:CPU's inline limit. The same values as the two
    loops' (entries in place, NaN past the last one), without the outer loop and its buffers
    (their kernels run once a call; benchmarks E, a repeated 10-step call)."""
    fields, dtype, n = len(history), history[0].dtype, solver.history_length()
    table = jnp.stack(history, axis=1)  # (entries, fields)
    zero = jnp.asarray(0, jnp.int32)
    pack, unpack = _packing.codec(state)

    def body(carry: tuple) -> tuple:
        c, table = carry
        s, index, entries = _steps(solver, unpack(c), k_steps, stop, args)
        table = _recorded(table, index, entries, n, zero)
        return pack(s), table

    c, table = lax.while_loop(_going(unpack, limit), body, (pack(state), table))
    state = unpack(c)
    # NaN past the run's last entry, as the two loops leave it (a history handed in with more rows)
    end = _tree.count_div(state.count, solver.history_every)
    table = jnp.where(jnp.arange(n)[:, None] < end, table, jnp.asarray(jnp.nan, dtype))
    return state, type(history)(*(table[:, i] for i in range(fields)))


def _recorded(table: jax.Array, index: list, entries: list, n: int, zero: jax.Array,
              first: Optional[jax.Array] = None) -> jax.Array:
    """``table`` (rows, fields) with the block's history entries written in: entry ``i`` at row ``i - first``
    (``i`` where ``first`` is None). Entries are consecutive; a dropped one (``i = n``) rewrites the row it
    lands on, clamped, with its own value. ``zero``: the column index, the caller's (made outside its loop)."""
    rows, fields = table.shape
    for i, e in zip(index, entries):
        at = jnp.clip(i if first is None else i - first, 0, rows - 1)
        old = lax.dynamic_slice(table, (at, zero), (1, fields))
        table = lax.dynamic_update_slice(table, jnp.where(i < n, e.astype(table.dtype)[None], old), (at, zero))
    return table


def _going(unpack: Callable, limit: Any) -> Callable:
    """The outer history loop's test on its packed carry ``(state, ...)``: :func:`running`."""

    def going(carry: tuple) -> jax.Array:
        s = unpack(carry[0])
        return running(s.status, s.count, limit)

    return going


def finish(solver: Any, state: Any, history: History, limit: Optional[Any] = None) -> Result:
    """Mark an exhausted step budget (``MAX_STEPS``: ``count`` at ``limit``,
    by default ``solver.step_limit``; may be traced) and package the :class:`Result`."""
    limit = solver.step_limit if limit is None else limit
    status = jnp.where(
        (state.status == Status.RUNNING) & (state.count >= limit), Status.MAX_STEPS, state.status
    ).astype(jnp.int32)
    state = state._replace(status=status)
    return Result(
        params=state.params,
        loss=solver.loss(state.params, state.value),
        grad_norm=state.grad_norm,
        steps=state.count,
        status=status,
        history=history,
        state=state,
        nfev=state.nfev,
        ngev=state.ngev,
        aux=state.aux,
    )
