"""The driver of the compiled loops: while loop, history buffers, progress, finish.

A solver provides ``step`` (one iteration, stays put once stopped) and its
termination tests; the driver owns what is around it, once for every loop:

- :func:`loop`: ``lax.while_loop`` of blocks of ``solver.step`` while the
  status is ``RUNNING`` and ``count < stop`` (:func:`running`, the continue
  test of every loop), one history write per block;
- :func:`record`: write one history entry into preallocated buffers
  (out-of-range indices are dropped, so "not this step" costs no branch);
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
bit, and the history is written once per block.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from jax import lax

from .. import _tree
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


def record(history: Any, index: jax.Array, entry: tuple) -> Any:
    """``history[field][index] = entry[field]`` for each field; an index past the end is dropped."""
    return type(history)(*(h.at[index].set(e, mode="drop") for h, e in zip(history, entry)))


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
    take = (k > prev.count) & (k % every == 0)
    return jnp.where(take, k // every - 1, n)


def _block(solver: Any, k_steps: int, stop: Optional[Any], args: tuple) -> Any:
    """The loop body: ``k_steps`` steps, one history write, progress per step.

    A state that has stopped stays put under ``solver.step`` (bit for bit), so
    the steps after a stop inside the block cost work but change nothing;
    with a ``stop`` below ``max_steps`` (one chunk of a checkpointed run)
    steps at ``count >= stop`` are masked explicitly.
    """
    n = solver.history_length()

    def body(carry: tuple) -> tuple:
        s, h = carry
        index, entries = [], []
        for _ in range(k_steps):
            new = solver.step(s, *args)
            if stop is not None and k_steps > 1:
                new = _tree.where(s.count < stop, new, s)
            if n:  # 0 with history off, or max_steps < every
                index.append(_entry_index(solver, s, new))
                entries.append((solver.loss(new.params, new.value), new.alpha, new.grad_norm))
            if solver.progress_every:
                lax.cond(
                    (new.count > s.count) & (new.count % solver.progress_every == 0),
                    lambda new=new: report(new.count, solver.loss(new.params, new.value), solver.step_limit),
                    lambda: None,
                )
            s = new
        if n:
            index = jnp.stack(index)
            h = record(h, index, tuple(jnp.stack(e) for e in zip(*entries)))
        return s, h

    return body


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
    limit = solver.step_limit if stop is None else stop

    def cond(carry: tuple) -> jax.Array:
        s, _ = carry
        return running(s.status, s.count, limit)

    body = _block(solver, block_size(solver, state), stop, args)
    state, history = lax.while_loop(cond, body, (state, history))
    if solver.progress_every and close_progress:
        report(state.count, solver.loss(state.params, state.value), solver.step_limit, final=True, status=state.status)
    return state, history


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
