"""Checkpointed and resumed runs of :func:`jaxgd.fit`.

A plain ``fit`` call is one ``jax.jit`` of the whole epoch loop. With
``checkpoint_path`` (and ``checkpoint_every`` epochs) or ``resume`` it runs
the same loop in chunks instead: the start (or the :class:`jaxgd.FitResult`
to resume from) once, then ``_fit_loop.loop(result, stop=e)`` under one
cached jit whose ``stop`` is traced (so every chunk re-uses one compiled
program), writing the ``FitResult`` so far with
:func:`jaxgd.save_checkpoint` after each chunk, from the host. The
``FitResult`` is the loop's whole carry: parameters (last, previous and
best), optimizer state, step count (hence schedule position), epoch, PRNG
key, best loss and epoch, patience counter, status and history. A chunk
boundary only moves that carry out of and back into ``lax.while_loop``, so a
resumed run is bit for bit the uninterrupted one (tests/test_fit_resume.py).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import jax
import numpy as np

from ..checkpoint import format as _checkpoint

from . import loop as _fit_loop

from ..checkpoint import resume as _resume
from ..core import driver as _driver

from .. import _tree
from .loop import Config, FitHistory, FitResult, FitState, FitStatus
from ..core.solver import Solver
from .._types import Params

KIND = "jaxgd.fit"
BAD_STATE = "resume must be a jaxgd.FitResult from fit, got a FitResult whose state is a {kind}"
KEY_DIFFERS = (
    "resume: the {source} was written with key data {found}, but this call's key has key data {expected}; "
    "a resumed run must shuffle the same way: pass the original key"
)
MONITOR_DIFFERS = (
    "resume: the {source} ran {before} eval_data (its best_params, best_loss and patience count follow "
    "the {loss} loss), but this call has {now}: pass the same eval_data as the run being resumed"
)


def check_args(every: Any, path: Any, resume: Any, inputs: dict) -> tuple[Optional[int], Optional[str], Any]:
    """Validate ``checkpoint_every`` (in epochs), ``checkpoint_path`` and
    ``resume`` on the host (``inputs``: fit's array arguments by name, which
    must not be tracers when checkpointing); return them normalised."""
    every, path = _resume.check_checkpoint_args(every, path, unit="epochs")
    resume = _resume.check_resume(resume, FitResult, "jaxgd.FitResult")
    _resume.check_concrete(path, inputs, fn="fit", resume=resume)
    return every, path, resume


def _settings(solver: Solver, cfg: Config) -> list[tuple[str, str, Any]]:
    """What must match for a checkpoint to continue this call's run."""
    return [
        ("method", "method", solver.direction.name),
        ("batch_size", "batch_size", cfg.batch_size),
        ("data (number of examples)", "examples", cfg.n),
        ("remainder", "remainder", "mask" if cfg.mask else "drop"),
        # a raw uint32 key is the default implementation's key data
        ("key (its implementation)", "key_impl", cfg.key_impl or jax.config.jax_default_prng_impl),
        ("eval_data (monitored loss)", "monitor", "eval" if cfg.eval_fun is not None else "train"),
        ("loss_key", "loss_key", bool(cfg.loss_key)),
        *_resume.iteration_settings(solver),
    ]


def _check_monitor(cfg: Config, result: FitResult, source: str) -> None:
    """A FitResult does not record whether its run had eval_data: read it off
    the history (an eval loss in some epoch run, or no best epoch although a
    training loss was finite: every eval loss was NaN), and refuse a switch,
    which would compare eval losses with a best training loss (or the reverse)."""
    if not _tree.is_concrete(result) or int(result.epochs) == 0:
        return
    done = int(result.epochs)
    ran = bool(np.isfinite(np.asarray(result.history.train_loss)[:done]).any())
    had = bool(np.isfinite(np.asarray(result.history.eval_loss)[:done]).any()) or (ran and int(result.best_epoch) == 0)
    has = cfg.eval_fun is not None
    if ran and had != has:
        raise ValueError(MONITOR_DIFFERS.format(
            source=source, before="with" if had else "without", loss="eval" if had else "training",
            now="eval_data" if has else "no eval_data",
        ))


def _metadata(solver: Solver, cfg: Config, result: FitResult) -> dict:
    settings = {key: value for _, key, value in _settings(solver, cfg)}
    counters = {"epochs": int(result.epochs), "steps": int(result.steps)}
    return _resume.metadata(KIND, settings, counters, FitStatus(int(result.status)))


def _initial(solver: Solver, cfg: Config, params: Params, key: jax.Array, rows: int) -> FitResult:
    """The FitResult at epoch 0 (``loop.start``) with ``rows`` history rows."""
    return _fit_loop.start(solver, cfg._replace(epochs=rows), params, key)


def _resize(cfg: Config, result: FitResult, source: str) -> FitResult:
    """Pad (NaN) or cut the history to ``cfg.epochs`` rows, so every chunk
    has the same shapes; refuse a run that is already past ``cfg.epochs``."""
    _resume.check_not_past(source, result.epochs, cfg.epochs, "epochs", "epochs")

    history = FitHistory(*result.history)
    return result._replace(history=_driver.resize_history(history, cfg.epochs, history.loss.dtype))


def restore(solver: Solver, cfg: Config, params: Params, key: jax.Array, resume: Any) -> FitResult:
    """The FitResult to continue from (given, or loaded from a file), checked
    against the state this call would start from and against its key.

    Raises:
      TypeError: a FitResult whose state is not a FitState.
      ValueError: a checkpoint of another kind of run, method, batch size,
        number of examples or remainder; another key; more epochs run than
        ``cfg.epochs``.
      jaxgd.CheckpointError, jaxgd.TreeMismatchError: from loading.
    """
    like = _resume.template(functools.partial(_initial, solver, cfg), params, key)
    if isinstance(resume, FitResult):
        if not isinstance(resume.state, FitState):
            raise TypeError(BAD_STATE.format(kind=type(resume.state).__name__))
        rows = _resume.history_rows(np.shape(resume.history.train_loss), cfg.epochs)
        _checkpoint.compare(
            _checkpoint.describe(like(rows)), _checkpoint.describe(resume, what="resume"),
            what="resume", expected_name="the state this fit call starts from",
        )
        source = "resume result"
        _check_monitor(cfg, resume, source)
    else:
        source = f"checkpoint {resume!r}"
        resume = _resume.load_resume(resume, KIND, _settings(solver, cfg), "train_loss", cfg.epochs, like)
    if _tree.is_concrete((resume.state.key, key)):
        found, expected = np.asarray(resume.state.key), np.asarray(key)
        if not np.array_equal(found, expected):
            raise ValueError(KEY_DIFFERS.format(source=source, found=found.tolist(), expected=expected.tolist()))
    return _resize(cfg, resume, source)


def run(
    solver: Solver, cfg: Config, params: Params, data: Any, eval_data: Any, key: jax.Array, patience: Any, *,
    resume: Any, every: Optional[int], path: Optional[str], rest: Any = None,
) -> FitResult:
    """Start (or restore), then run to the end: in one piece, or in chunks of
    ``every`` epochs with a checkpoint written to ``path`` after each (``rest``: a
    model's fixed arrays, :func:`jaxgd.minibatch.loop.model_inputs`)."""
    if resume is None:
        result = _fit_loop.start_jit(solver, cfg, params, key)
    else:
        result = restore(solver, cfg, params, key, resume)
        if cfg.mesh is not None:
            from jax.sharding import NamedSharding
            from jax.sharding import PartitionSpec as P

            result = jax.device_put(result, NamedSharding(cfg.mesh, P()))
    if path is None:
        result = _fit_loop.loop_jit(solver, cfg, result, data, eval_data, patience, rest=rest)
        _fit_loop.close_progress(cfg, result)
        return result
    return _resume.in_chunks(
        result, every or cfg.epochs, cfg.epochs,
        going=lambda r: int(r.status) in (FitStatus.RUNNING, FitStatus.EPOCHS),
        done=lambda r: int(r.epochs),
        advance=lambda r, stop: _fit_loop.loop_jit(solver, cfg, r, data, eval_data, patience, stop, rest),
        save=lambda r: _checkpoint.save_checkpoint(path, r, metadata=_metadata(solver, cfg, r)),
        close=lambda r: _fit_loop.close_progress(cfg, r),
    )
