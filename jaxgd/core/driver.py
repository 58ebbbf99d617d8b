"""The driver of the compiled loops: while loop, history buffers, progress, finish.

A solver provides ``step`` (one iteration, stays put once stopped) and its
termination tests; the driver owns what is around it, once for every loop:

- :func:`loop`: ``lax.while_loop`` of ``solver.step`` while the status is
  ``RUNNING`` and ``count < stop``, one history record and one progress
  report per iteration;
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

A block of ``K`` steps per iteration (issue 15) fits here: the body would
run ``K`` masked ``step`` calls (a stopped state stays put, so the steps after
a stop are no-ops, bit for bit) and one :func:`record` per block.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from jax import lax

from . import progress as _progress
from .status import History, Result, Status


def history_length(max_steps: int, every: int) -> int:
    """Entries recorded for a run of ``max_steps`` with one entry every ``every`` steps (0: off)."""
    return max_steps // every if every else 0


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


def _record_step(solver: Any, history: History, prev_count: jax.Array, state: Any) -> History:
    every, n = solver.history_every, solver.history_length()
    k = state.count
    take = (k > prev_count) & (k % every == 0)
    index = jnp.where(take, k // every - 1, n)  # n is out of bounds: dropped
    return record(history, index, (solver.loss(state.params, state.value), state.alpha, state.grad_norm))


def loop(
    solver: Any, state: Any, history: History, *args: Any, stop: Optional[Any] = None, close_progress: bool = True
) -> tuple[Any, History]:
    """Run ``solver.step`` until a test fires or ``state.count`` reaches ``stop``
    (``solver.max_steps`` by default; may be traced)."""
    stop = solver.max_steps if stop is None else stop

    def cond(carry: tuple) -> jax.Array:
        s, _ = carry
        return (s.status == Status.RUNNING) & (s.count < stop)

    def body(carry: tuple) -> tuple:
        s, h = carry
        new = solver.step(s, *args)
        if solver.history_length():  # 0 with history off, or max_steps < every
            h = _record_step(solver, h, s.count, new)
        if solver.progress_every:
            lax.cond(
                new.count % solver.progress_every == 0,
                lambda: report(new.count, solver.loss(new.params, new.value), solver.max_steps),
                lambda: None,
            )
        return new, h

    state, history = lax.while_loop(cond, body, (state, history))
    if solver.progress_every and close_progress:
        report(state.count, solver.loss(state.params, state.value), solver.max_steps, final=True, status=state.status)
    return state, history


def finish(solver: Any, state: Any, history: History) -> Result:
    """Mark an exhausted step budget (``MAX_STEPS``) and package the :class:`Result`."""
    status = jnp.where(
        (state.status == Status.RUNNING) & (state.count >= solver.max_steps), Status.MAX_STEPS, state.status
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
