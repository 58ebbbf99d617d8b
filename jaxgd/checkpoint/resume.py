"""Checkpointed and resumed runs of :func:`jaxgd.minimize`.

A plain ``minimize`` call runs ``Solver.run`` under one jit. With
``checkpoint_every``/``checkpoint_path`` or ``resume`` it runs the same loop
in chunks instead: ``Solver.start`` once, then ``Solver.resume(result,
stop=k)`` under one cached jit whose ``stop`` is traced (so every chunk
re-uses one compiled program), writing the :class:`jaxgd.Result` so far to
disk after each chunk with :func:`jaxgd.save_checkpoint`. A chunk boundary
only moves the loop's carry out of and back into ``lax.while_loop``; the
steps themselves are the same compiled computation, so the result is bit for
bit the uninterrupted one (tests/test_checkpoint.py, on CPU; the same chunked
loop with a host round trip between chunks was also bit-identical to one
uninterrupted loop on an H100 with jax 0.11.2, float32 and float64).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

from . import format as _checkpoint

from ..core import progress as _progress

from .. import _tree
from ..core import cache as _cache
from ..core import stepsize as _stepsize
from ..core.solver import Solver, SolverState
from ..core.driver import empty_history
from ..core import minimize_run as _minimize_run
from ..core.status import Result, Status, recorded_rows
from .._types import Params

BAD_CHECKPOINT_EVERY = "checkpoint_every must be None or a positive integer ({unit} between checkpoints), got checkpoint_every={value!r}"
CHECKPOINT_NEEDS_PATH = "checkpoint_every={value!r} needs checkpoint_path= (the file to write)"
CHECKPOINT_TRACED = (
    "{name} cannot be used while {fn} runs under jax.jit, jax.vmap or jax.grad "
    "({what} are tracers): checkpoint and resume outside the transformation"
)
BAD_RESUME = "resume must be None, a {result} or a checkpoint path (str or os.PathLike), got {kind}"
# jaxgd.load_checkpoint(path) without like= hands back a flat {leaf path: array} dict to inspect: no run's
# structure and none of the settings the file records (which resume=path checks).
RESUME_DICT = (
    "resume must be None, a {result} or a checkpoint path (str or os.PathLike), got a dict: "
    "jaxgd.load_checkpoint(path) returns the file's leaves as a flat {{leaf path: array}} dict to inspect, "
    "without the run's structure or the settings the file records; pass the path itself, resume=path (checked "
    "against this call's settings)"
)
RESUME_KIND = "resume: {path!r} is a {found} checkpoint, not a {expected} one"
RESUME_DIFFERS = (
    "resume: checkpoint {path!r} was written with {found}, but this call has {expected}. A resumed run goes on with "
    "the settings it was saved with ({free} may change); to go on with other settings on purpose: {how}"
)
RESTART_MINIMIZE = (
    "r = minimize(..., max_steps={done}, resume=path) with the file's settings hands back the run as it stands, "
    "then minimize(fun, r.params, ..., resume=r) with the new ones goes on from there with its solver state "
    "(momentum, moments or curvature pairs, and the step count: a schedule goes on where it was; a Result's "
    "settings are not checked), or minimize(fun, r.params, ...) without resume= starts "
    "afresh (another method needs that)"
)
RESTART_FIT = (
    "r = fit(..., epochs={done}, resume=path) with the file's settings hands back the run as it stands, "
    "then fit(fun, r.params, data, ..., resume=r) with the new ones goes on from there with its optimizer state "
    "(momentum or Adam's moments, and the step count: a schedule goes on where it was; a FitResult's "
    "settings are not checked), or fit(fun, r.params, data, ...) without resume= starts afresh "
    "(another method needs that)"
)
RESUME_PAST_LIMIT = "resume: the {source} has already run {done} {unit}, more than this call's {name}={limit}"
RESUME_HISTORY = (
    "resume: the resume result's history holds {rows} recorded rows for its {steps} steps, where this call's "
    "history={every!r} records {expected}: resume with the history setting of the run it continues"
)
KIND = "jaxgd.minimize"


def _start_impl(solver: Solver, x0: Params, args: tuple) -> Result:
    return solver.start(x0, *args)


def _continue_impl(solver: Solver, result: Result, args: tuple, stop: Optional[jax.Array]) -> Result:
    return solver.resume(result, *args, stop=stop)


def _start(solver: Solver, x0: Params, args: tuple) -> Result:
    """``solver.start`` under a ``jax.jit`` cached per loss function (weakly)."""
    return _cache.jit_per_function(solver.fun, "start", _start_impl)(solver, x0, args)


def _continue(solver: Solver, result: Result, args: tuple, stop: Optional[jax.Array]) -> Result:
    """``solver.resume`` under a ``jax.jit`` cached per loss function (weakly)."""
    return _cache.jit_per_function(solver.fun, "continue", _continue_impl)(solver, result, args, stop)


# -- host-side checks (before anything compiles) ------------------------------------
def check_checkpoint_args(every: Any, path: Any, *, unit: str = "steps") -> tuple[Optional[int], Optional[str]]:
    """Validate ``checkpoint_every`` (counted in ``unit``) and ``checkpoint_path``;
    return them normalised."""
    if every is not None:
        if isinstance(every, (bool, np.bool_)) or not isinstance(every, (int, np.integer)):
            raise TypeError(BAD_CHECKPOINT_EVERY.format(unit=unit, value=every))
        if every <= 0:
            raise ValueError(BAD_CHECKPOINT_EVERY.format(unit=unit, value=every))
        if path is None:
            raise ValueError(CHECKPOINT_NEEDS_PATH.format(value=every))
        every = int(every)
    if path is not None:
        path = _checkpoint.check_path("checkpoint_path", path, must_exist=False)
    return every, path


def check_resume(resume: Any, result_type: type = Result, result_name: str = "jaxgd.Result") -> Any:
    """Validate ``resume``'s kind (a ``result_type`` or an existing file)."""
    if resume is None or isinstance(resume, result_type):
        return resume
    if isinstance(resume, (str, os.PathLike)):
        return _checkpoint.check_path("resume", resume, must_exist=True)
    if isinstance(resume, dict):
        raise TypeError(RESUME_DICT.format(result=result_name))
    raise TypeError(BAD_RESUME.format(result=result_name, kind=type(resume).__name__))


def check_metadata(path: str, meta: dict, kind: str, expected: Sequence[tuple[str, str, Any]]) -> None:
    """Refuse a checkpoint written by another kind of run, or with other
    settings: ``expected`` holds ``(argument name, metadata key, this call's value)``;
    the message names every setting that differs. A key the file lacks is not
    checked (a file written before jaxgd recorded that setting)."""
    found = meta.get("kind", kind)
    if found != kind:
        raise ValueError(RESUME_KIND.format(path=path, found=found, expected=kind))
    differ = [(name, meta[key], value) for name, key, value in expected if key in meta and meta[key] != value]
    if differ:
        fit = kind == "jaxgd.fit"
        restart, free = (RESTART_FIT, "epochs and patience") if fit else (RESTART_MINIMIZE, "tolerances and max_steps")
        done = meta.get("epochs" if fit else "steps", "<the steps it ran>")
        raise ValueError(RESUME_DIFFERS.format(
            path=path, found=", ".join(f"{name}={got!r}" for name, got, _ in differ),
            expected=", ".join(f"{name}={value!r}" for name, _, value in differ), free=free,
            how=restart.format(done=done),
        ))


# -- the settings a checkpoint records ------------------------------------------------
_MAX_SETTING = 200  # characters of a setting's description a checkpoint holds (a longer one: its digest)
_MAX_DEPTH = 4  # nesting of a step-size rule's settings spelled out


def iteration_settings(solver: Solver) -> list[tuple[str, str, Any]]:
    """The options that change a run's iterates, as :func:`check_metadata`'s ``(argument, key, value)``:
    ``lr`` (a number; a schedule or step-size rule by its class or function name and its numbers),
    ``l1``, ``l2`` (also ``adamw``'s weight decay), ``clip``, ``bounds`` and ``accelerated``
    (``method`` and ``history`` are the callers'). Tolerances, ``gtol_norm``, the step or epoch
    budget, ``progress`` and ``unroll`` are not among them: a resumed run may change those."""
    rule = solver.rule
    lr = rule.schedule if isinstance(rule, _stepsize.ScheduleRule) else rule
    prox = solver.prox
    # (no bound is an infinite one: the same iterates)
    bounds = [setting_value(-math.inf if prox.lower is None else prox.lower),
              setting_value(math.inf if prox.upper is None else prox.upper)] if prox.bounded else None
    return [
        ("lr", "lr", setting_value(lr)),
        ("l1", "l1", setting_value(0.0 if prox.l1 is None else prox.l1)),
        ("l2", "l2", setting_value(0.0 if solver.l2 is None else solver.l2)),
        ("clip", "clip", setting_value(solver.clip)),
        ("bounds", "bounds", bounds),
        ("accelerated", "accelerated", bool(solver.accelerated)),
    ]


def setting_value(value: Any) -> Any:
    """``value`` (an option, concrete) as a JSON value that is the same in every process: None, a bool or
    string as it is, a number as a float (``"inf"``/``"-inf"``: JSON has no infinity), anything else a
    description (:func:`_described`: class or function names and numbers, an array by its digest; never a
    ``repr``, which may hold a memory address).

    Floating values are taken in float32 (:data:`SETTING_DTYPE`), and an array or a tree of numbers whose
    elements are all one number is that number: spellings of one setting that give the same iterates compare
    equal (``0.1``, ``jnp.float32(0.1)``, ``jnp.asarray(0.1)`` with 64-bit mode on or off, ``bounds=(0.0, 1.0)``
    and the same bounds as arrays, ``l2=0.1`` and ``{"w": 0.1, "b": 0.1}``); settings that differ by less than
    float32's precision are not told apart."""
    value = value.value if isinstance(value, _tree.Static) else value
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    number = _number(value)
    if number is None:
        number = _number(_uniform(value))
    return number if number is not None else _described(value, 0)


SETTING_DTYPE = np.float32  # floating settings are recorded and compared at this precision


def _uniform(value: Any) -> Any:
    """The one number every element of an array or of a tree of numbers and arrays holds (in float32); else None."""
    leaves = jax.tree_util.tree_leaves(value)
    if not leaves or not all(_number(x) is not None or (hasattr(x, "shape") and hasattr(x, "dtype")) for x in leaves):
        return None
    try:
        flat = np.concatenate([np.asarray(x, SETTING_DTYPE).ravel() for x in leaves])
    except (TypeError, ValueError):
        return None
    if flat.size == 0 or not (np.all(flat == flat[0]) or np.all(np.isnan(flat))):
        return None
    return flat[0]


def _number(value: Any) -> Any:
    """A real number (Python, NumPy or a 0-d array) as an int or a float in float32's precision
    (:data:`SETTING_DTYPE`; ``"inf"``, ``"-inf"`` or ``"nan"``); else None."""
    if isinstance(value, (bool, np.bool_)) or not (
        isinstance(value, (int, float, np.integer, np.floating))
        or (hasattr(value, "dtype") and np.shape(value) == () and np.dtype(value.dtype).kind in "iuf")
    ):
        return None
    arr = np.asarray(value)
    if arr.dtype.kind in "iu":
        return int(arr)
    v = float(str(arr.astype(SETTING_DTYPE)[()]))  # (the float32's shortest decimal: 0.6, not 0.6000000238)
    return v if math.isfinite(v) else str(v)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def _described(value: Any, depth: int) -> str:
    """A deterministic description of an option that is not a number: ``Kind(field=..., ...)`` for a
    pytree (a jaxgd rule or schedule by its fields' names, a dict by its keys), an array's dtype, shape
    and digest, a function's qualified name (its body cannot be compared); a long one by its digest."""
    value = value.value if isinstance(value, _tree.Static) else value
    if value is None or isinstance(value, (str, bool, np.bool_)):
        return repr(value if not isinstance(value, np.bool_) else bool(value))
    number = _number(value)
    if number is not None:
        return repr(number)
    kind = type(value).__qualname__
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # an array (floating: its float32 values)
        arr = np.asarray(value)
        arr = np.ascontiguousarray(arr.astype(SETTING_DTYPE) if arr.dtype.kind == "f" else arr)
        return f"{arr.dtype.name}{list(arr.shape)} {_digest(arr.tobytes())}"
    fields = getattr(type(value), "_tree_fields", None)
    if depth >= _MAX_DEPTH:
        return kind
    if fields is not None:  # (jaxgd.core.stepsize's rules, jaxgd.linesearch: data and static fields by name)
        parts = [f"{name}={_described(getattr(value, name), depth + 1)}" for name in fields]
    else:
        children = jax.tree_util.tree_flatten_with_path(value, is_leaf=lambda x: x is not value)[0]
        if len(children) == 1 and children[0][1] is value:  # a leaf that is no array: a function, an object
            return getattr(value, "__qualname__", kind)
        parts = [_label(path[0]) + _described(child, depth + 1) for path, child in children]
    text = f"{kind}({', '.join(parts)})"
    return text if len(text) <= _MAX_SETTING else f"{kind}({_digest(text.encode())})"


def _label(key: Any) -> str:
    if isinstance(key, jax.tree_util.DictKey):
        return f"{key.key!r}: "
    if isinstance(key, jax.tree_util.GetAttrKey):
        return f"{key.name}="
    return ""


def check_concrete(path: Optional[str], inputs: dict, fn: str = "minimize", resume: Any = None) -> None:
    """Checkpoints are written and resumed from the host: refuse them under jit/vmap/grad.

    ``inputs`` maps argument names to values (a value ``True`` stands for "traced": the loss's
    closure); the message names the traced ones.
    """
    if path is None and resume is None:
        return
    traced = [name for name, value in inputs.items() if value is True or (value is not False and not _tree.is_concrete(value))]
    if traced:
        name = "checkpoint_path" if path is not None else "resume"
        raise ValueError(CHECKPOINT_TRACED.format(name=name, fn=fn, what=" or ".join(traced)))


# -- shared by minimize's and fit's resume ---------------------------------------------
def check_not_past(source: str, done: Any, limit: int, unit: str, name: str) -> None:
    """Refuse a run to resume that is already past this call's budget (``max_steps`` or
    ``epochs``): continuing it would hand back more steps than asked for, with a history cut
    short of them.

    Raises:
      ValueError: names ``name`` and both counts.
    """
    if _tree.is_concrete(done) and int(done) > limit:
        raise ValueError(RESUME_PAST_LIMIT.format(source=source, done=int(done), unit=unit, name=name, limit=limit))


def history_rows(shape: Sequence[int], default: int) -> int:
    """The rows of a history buffer of ``shape`` (1-d); ``default`` for any other shape."""
    return int(shape[0]) if len(shape) == 1 else default


def saved_history_length(info: dict, default: int, field: str = "loss") -> int:
    """The history buffer length stored in a checkpoint (``.history.<field>``:
    ``loss`` for a ``Result``, ``train_loss`` for a ``FitResult``); ``default`` when absent."""
    shapes = [e["shape"] for e in info["leaves"] if e["path"] == f".history.{field}"]
    return history_rows(shapes[0], default) if shapes else default


def metadata(kind: str, settings: dict, counters: dict, status: Any) -> dict:
    """A checkpoint's metadata: its kind, the settings a resumed run must match,
    the counters (steps, epochs) and the status name."""
    return {"kind": kind, **settings, **counters, "status": status.name}


def template(build: Callable[..., Any], *inputs: Any) -> Callable[[int], Any]:
    """``rows -> `` the result ``build(*inputs, rows)`` starts a run from, with
    ``rows`` history rows, as shapes and dtypes only (``jax.eval_shape``:
    nothing is computed): what a resumed result is checked against and a
    checkpoint is loaded into."""
    return lambda rows: jax.eval_shape(lambda *xs: build(*xs, rows), *inputs)


def load_resume(
    path: str, kind: str, settings: Sequence[tuple[str, str, Any]], field: str, rows: int,
    like: Callable[[int], Any],
) -> Any:
    """The result saved in the checkpoint ``path`` (``resume=`` a file), for
    minimize and fit: refused when written by another ``kind`` of run or with
    other ``settings`` (:func:`check_metadata`), then loaded into ``like(n)``
    (:func:`template`), ``n`` being the rows of the file's ``.history.<field>``
    (``rows`` when it has none).

    Raises:
      ValueError: another kind of run or other settings.
      jaxgd.CheckpointError, jaxgd.TreeMismatchError: from loading.
    """
    info = _checkpoint.checkpoint_info(path)
    check_metadata(path, info["metadata"], kind, settings)
    # The file's history buffer may be longer or shorter (another max_steps or
    # epochs): load it as it is, the caller pads or cuts it.
    n = saved_history_length(info, rows, field)
    return _checkpoint.load(path, like(n), name="resume")


# -- the run --------------------------------------------------------------------------
def _initial(solver: Solver, params: Params, args: tuple, history_length: int) -> Result:
    """The Result at step 0 (``solver.start``) with ``history_length`` history rows."""
    state = solver.init(params, *args)
    return solver.finish(state, empty_history(history_length, state.value.dtype))


def _settings(solver: Solver) -> list[tuple[str, str, Any]]:
    """What must match for a checkpoint to continue this call's run."""
    return [("method", "method", solver.direction.name), ("history", "history_every", solver.history_every),
            *iteration_settings(solver)]


def _metadata(solver: Solver, result: Result) -> dict:
    settings = {key: value for _, key, value in _settings(solver)}
    settings["max_steps"] = solver.max_steps
    return metadata(KIND, settings, {"steps": int(result.steps)}, Status(int(result.status)))


def _check_history_period(result: Result, every: int) -> None:
    """A Result records no history period, but its rows tell it: a run of ``steps`` steps at period ``every``
    recorded ``steps // every`` rows (the rest, a buffer's tail, NaN). Another count means another period
    (a file's ``history_every`` is checked by name): the rows would be mixed, steps 1-3 labelled 3, 6 and 9."""
    rows = recorded_rows(result)
    steps = int(result.steps)
    expected = steps // every if every else 0
    if rows != expected:
        shown = True if every == 1 else (False if every == 0 else every)
        raise ValueError(RESUME_HISTORY.format(rows=rows, steps=steps, every=shown, expected=expected))


def restore(solver: Solver, params: Params, args: tuple, resume: Any) -> Result:
    """The Result to continue from (a Result, or loaded from a file), checked
    against ``x0`` and against the state ``solver`` builds."""
    if isinstance(resume, Result):
        if not isinstance(resume.state, SolverState):
            raise TypeError(BAD_RESUME.format(result="jaxgd.Result", kind=f"a Result whose state is a {type(resume.state).__name__}"))
        _checkpoint.compare(
            _checkpoint.describe(params), _checkpoint.describe(resume.state.params, what="resume"),
            what="resume.state.params", expected_name="x0",
        )
        solver.check_resumable(resume, *args, name="resume", how="minimize(fun, resume.params, ...) without resume=")
        result, source = resume, "resume result"
    else:
        like = template(functools.partial(_initial, solver), params, args)
        result = load_resume(resume, KIND, _settings(solver), "loss", solver.history_length(), like)
        source = f"checkpoint {resume!r}"
    check_not_past(source, result.steps, solver.max_steps, "steps", "max_steps")
    if isinstance(resume, Result):
        _check_history_period(resume, solver.history_every)
    return result


def run(solver: Solver, params: Params, args: tuple, *, resume: Any, every: Optional[int], path: Optional[str]) -> Result:
    """Start (or restore), then run to the end: in one piece, or in chunks of
    ``every`` steps with a checkpoint written to ``path`` after each."""
    if resume is None:
        result = _start(solver, params, args)
    else:
        result = restore(solver, params, args, resume)
        # Pad a trimmed history on the host, so every chunk has the same shapes (one compile). (A file keeps
        # the rows run only, minimize_run.trim_history: the buffer is sized by max_steps, 12 MB a file at 10**6.)
        result = result._replace(history=solver._sized_history(result.history, result.state))
    if path is None:
        return _continue(solver, result, args, None)
    def close(r: Result) -> None:
        if solver.progress_every:
            _progress.close(r.steps, r.loss, solver.max_steps, r.status)

    return in_chunks(
        result, every or max(solver.max_steps, 1), solver.max_steps,
        going=lambda r: int(solver._reopened(r.state)) in (Status.RUNNING, Status.MAX_STEPS),
        done=lambda r: int(r.steps),
        advance=lambda r, stop: _continue(solver, r, args, stop),
        save=lambda r: _checkpoint.save_checkpoint(
            path, _minimize_run.trim_history(r, solver.history_every), metadata=_metadata(solver, r)),
        close=close,
    )


def in_chunks(
    result: Any, every: int, total: int, *, going: Callable[[Any], bool], done: Callable[[Any], int],
    advance: Callable[[Any, np.ndarray], Any], save: Callable[[Any], Any], close: Callable[[Any], None],
) -> Any:
    """The checkpointed run, for minimize (steps) and fit (epochs): while the
    run is ``going`` and ``done(result) < total``, ``advance`` it to the next
    multiple of ``every`` (a traced ``stop``, so one compiled program serves
    every chunk) and ``save`` it; then ``close`` the progress bar. A run with
    nothing left to do is still saved once, where it stands."""
    ran = False
    while going(result) and done(result) < total:
        result = advance(result, np.asarray(min(done(result) + every, total), np.int32))
        save(result)
        ran = True
    if ran:
        close(result)
    else:
        save(result)
    return result
