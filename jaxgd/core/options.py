"""The solver options, written once, and their host validation: defaults and documentation for
``minimize``, ``Solver`` and ``fit``.

Each public function keeps an explicit signature (for readers, IDEs and
``inspect``), but its defaults are read from :data:`OPTIONS` and its
docstring's entries for these options are filled in from it by
:func:`document` (a ``{options:name,name}`` placeholder), so the three cannot
drift; ``tests/test_options.py`` checks the signatures against the table.
:func:`check_keywords` is the one "unexpected keyword" error.
"""

from __future__ import annotations

import difflib
import inspect
import math
import textwrap
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _tree, _validate
from .. import schedules as _schedules
from ..directions import lbfgsb as _lbfgsb
from ..directions import registry as _directions
from ..interop import explain as _explain
from ..prox.operators import Prox, check_bounds
from . import cache as _cache
from . import combinations as _combinations
from . import host_value as _host_value
from . import stepsize as _stepsize


class Option(NamedTuple):
    default: Any
    doc: str


OPTIONS: dict[str, Option] = {
    "method": Option("gd", (
        "a method name (see :func:`jaxgd.methods`: ``gd``, ``momentum``, ``nesterov``, ``adagrad``, "
        "``rmsprop``, ``adam``, ``adamw``, ``bfgs``, ``lbfgs``, ``cg``), a ``jaxgd.Direction``, or any "
        "``optax.GradientTransformation`` (used as is, with step size 1 unless ``lr`` says otherwise)."
    )),
    "lr": Option(None, (
        "step size: a float, a schedule ``count -> lr`` (optax's or ``jaxgd.schedules``') or a "
        "``jaxgd.linesearch`` rule. Default: the method's own (``1e-3`` for first-order methods, "
        "``1.0`` for an optax transformation, which holds its own learning rate). A float must be > 0; a "
        "schedule's first value ``lr(0)`` (the step count starts at 0) must be finite and >= 0 (0 starts a "
        "warmup), checked before the run unless it closes over a traced value; its later values are traced "
        "and not checked (a NaN stops the run as ``NONFINITE``; a negative value steps uphill, as in optax)."
    )),
    "max_steps": Option(1000, "the step limit (0 returns ``x0``). It sizes the history buffers, allocated before the run: three numbers per recorded step, the count rounded up to a power of two in an eager call (24 bytes a step in float64: ``max_steps=10**8`` with ``history=True`` is a 3.2 GB buffer), so a very long limit wants ``history=k`` or ``history=False`` (more than 2**25 rows is refused; a Result and a checkpoint file keep the rows of the steps run only); a call outside ``jit``/``vmap`` compiles for the next power of two (at least 8) with the limit traced, so a new ``max_steps`` in the same bucket re-uses the compiled loop."),
    "gtol": Option(1e-6, (
        "stop when the stationarity measure is <= gtol: the gradient 2-norm, or with ``l1``/``bounds`` "
        "the norm of the gradient mapping ``x - prox(x - grad)``."
    )),
    "gtol_norm": Option(None, (
        "the norm of that measure, for ``gtol``, ``Result.grad_norm`` and the history: ``2`` (the "
        "2-norm) or ``inf`` (``math.inf``: the largest magnitude, scipy's BFGS and CG default ``norm`` "
        "and L-BFGS-B's ``pgtol``). ``None`` (default): the 2-norm, except for L-BFGS-B "
        "(``lbfgs`` + ``bounds``), whose ``gtol`` tests the infinity norm as scipy's does."
    )),
    "ftol": Option(0.0, (
        "stop when ``|f_k - f_{k+1}| <= ftol * max(|f_k|, |f_{k+1}|, 1)`` (scipy L-BFGS-B's test); 0 disables it "
        "(also a traced 0, as a lane of a ``vmap``). A step of size 0 (a schedule's warmup from ``lr`` 0) is not "
        "tested, nor a first step that leaves f unchanged."
    )),
    "xtol": Option(0.0, (
        "stop when ``||theta_{k+1} - theta_k|| <= xtol``; 0 disables it. As ``ftol``, not tested on a step of "
        "size 0 or a first step that does not move."
    )),
    "l1": Option(0.0, (
        "L1 weight, applied as a proximal (soft-thresholding) step after each step (ISTA with ``gd``, "
        "FISTA with ``accelerated``): a number, or a pytree shaped like the parameters (0 or ``None`` leaves a "
        "leaf unpenalised, e.g. ``{'w': 0.1, 'b': None}`` for an unpenalised intercept). Of the named methods "
        "only ``gd`` accepts a non-zero ``l1``; the others (momentum, adaptive, quasi-Newton, ``cg``) raise "
        "``ValueError``, since their step's fixed points are not the L1 problem's solution; so do the "
        "searches ``MoreThuente``, ``StrongWolfe`` and ``Exact`` as ``lr`` (they search the smooth part only; "
        "``Backtracking`` tests ``f + h``). With ``clip`` below the smooth gradient's norm at the solution, the "
        "clipped step solves the problem for a larger weight (``l1 ||g|| / clip``): keep ``clip`` above it. An "
        "optax transformation as ``method`` refuses a non-zero ``l1`` (its steps have their own size, so the "
        "threshold would be off by its learning rate); a custom ``Direction`` is used as given. A proximal "
        "gradient's speed depends on the columns' scales (coordinate descent's, scikit-learn's, hardly does): "
        "standardise the data (docs/api/statistics.md)."
    )),
    "l2": Option(0.0, (
        "L2 weight: the penalty ``l2/2 ||theta||^2`` added to the loss, or for ``adamw`` decoupled "
        "weight decay ``d -= l2 * theta`` (as ``optax.adamw``; the default 0 decays nothing, so ``adamw`` "
        "without ``l2`` is ``adam``, where ``optax.adamw`` decays by 1e-4 and torch's ``AdamW`` by 1e-2 unless "
        "told otherwise); a number or a pytree shaped like the "
        "parameters (0 or ``None`` leaves a leaf unpenalised). With ``l1`` it makes the elastic net."
    )),
    "clip": Option(None, (
        "clip the gradient to this global 2-norm before the direction (None: no clipping). The gradient clipped "
        "is the total's, ``l2``'s penalty included (except ``adamw``'s decoupled decay; optax's ``chain(add_decayed_weights(l2), "
        "clip_by_global_norm(clip), ...)``; torch's ``clip_grad_norm_`` before ``SGD(weight_decay=l2)`` clips the "
        "loss's gradient alone)."
    )),
    "bounds": Option(None, (
        "``(lower, upper)`` box constraints applied by projection after each step (projected gradient "
        "with ``gd``). Each side is ``None`` (unbounded), a number, or a pytree with the structure of the "
        "parameters (``-inf``/``inf`` for free entries; ``None`` in it leaves that leaf or subtree free, as "
        "scipy's per-variable ``None``); ``(0, None)`` is non-negativity; a ``scipy.optimize.Bounds`` is read as "
        "``(lb, ub)`` (scipy's list of per-variable pairs is refused with its translation). The start is "
        "projected into the box (as scipy's L-BFGS-B does). With ``method=\"lbfgs\"`` the run is true "
        "L-BFGS-B instead (generalised Cauchy point, subspace minimisation, its own projected More-Thuente "
        "search; Byrd, Lu, Nocedal & Zhu 1995; so ``lr`` and ``clip`` are refused with it), whose ``gtol`` "
        "tests the projected gradient's infinity norm, as scipy's ``pgtol``. Refused with "
        "``bfgs`` and ``cg``, whose projected steps are not a bound-constrained method."
    )),
    "accelerated": Option(False, (
        "FISTA momentum (Beck & Teboulle 2009) on the proximal step: each step starts from the "
        "extrapolated point ``y_k = x_k + (t_{k-1} - 1)/t_k (x_k - x_{k-1})`` (with ``bounds``, projected into "
        "the box: the loss is never evaluated outside it), at the cost of one more gradient there. In ``minimize`` and "
        "``Solver`` the momentum restarts (``t = 1``) after a step that opposes it, "
        "``(y_k - x_{k+1}) . (x_{k+1} - x_k) > 0`` (O'Donoghue & Candes 2015's gradient scheme): a linear rate on a "
        "strongly convex loss, where plain FISTA oscillates (``fit``'s minibatch steps keep plain FISTA). "
        "For ``gd`` (with ``l1``/``bounds`` and a constant ``lr`` <= 1/L, a schedule, or "
        "``Backtracking(c1=0.5)``, Beck & Teboulle's test; not monotone); refused with every other registered "
        "method, an optax transformation, and with step-size rules whose steps may exceed 1/L (the other searches, ``BarzilaiBorwein``, "
        "``Polyak``, ``Backtracking`` with ``c1 < 0.5`` or ``increase``): they diverged or stalled with it."
    )),
    "history": Option(True, (
        "record loss, step size and gradient norm every step (True), every k steps (an int) or not at all (False)."
    )),
    "progress": Option(False, (
        "show a progress bar (True) updated from inside the compiled loop, or every k steps (an int, "
        "``minimize``/``Solver`` only). Off by default everywhere."
    )),
    "has_aux": Option(False, "``fun`` returns ``(loss, aux)``; ``Result.aux`` holds the aux."),
    "unroll": Option(None, (
        "steps per iteration of the compiled loop (a positive int), or None to choose from the backend "
        "and the step size (1 on a CPU; on an accelerator 8 with a schedule, 1 with a line search). Results are bit for bit the same "
        "for every value ``K > 1``, and as ``K = 1`` for a large problem (over 256 parameters for a first-order "
        "method, 512-4,096 for the quasi-Newton ones); on a CPU a smaller problem's loop of single steps compiles with XLA's classic emitters (faster to compile), which can round "
        "its last bits differently from a block's (in float32: 1 ulp of the parameters, the history's last digits); "
        "larger blocks pay the loop's per-iteration cost less often and compile longer, faster than "
        "K grows (XLA:CPU, 2 cores, adam on 4 float32 parameters: K = 1 0.5 s, 4 2.0 s, 8 4.7 s, 16 24 s): past 8 "
        "a block rarely pays for its compile; above 64 it is refused."
    )),
}

SOLVER_OPTIONS = (
    "max_steps", "gtol", "gtol_norm", "ftol", "xtol", "l1", "l2", "clip", "history", "progress", "has_aux", "bounds", "accelerated", "unroll",
)


def default(name: str) -> Any:
    return OPTIONS[name].default


def entries(names: str, indent: int = 6) -> str:
    """The ``Args:`` entries of the comma-separated option ``names``."""
    out = []
    for name in (n.strip() for n in names.split(",")):
        body = textwrap.wrap(f"{name}: {OPTIONS[name].doc}", width=92 - indent)
        out.append(" " * indent + body[0])
        out.extend(" " * (indent + 2) + line for line in body[1:])
    return "\n".join(out)


def expand(doc: str) -> str:
    """``doc`` with each ``{options:a,b,c}`` line replaced by those options' entries
    (at that line's indent); the docs build (docs/api/griffe_roles.py) uses it too."""
    lines = []
    for line in doc.split("\n"):
        stripped = line.strip()
        if stripped.startswith("{options:") and stripped.endswith("}"):
            lines.append(entries(stripped[len("{options:"):-1], indent=len(line) - len(line.lstrip())))
        else:
            lines.append(line)
    return "\n".join(lines)


def document(fn: Callable) -> Callable:
    """Fill each ``{options:a,b,c}`` line of ``fn.__doc__`` with those options' entries."""
    fn.__doc__ = expand(fn.__doc__ or "")
    return fn


def keywords(fn: Callable) -> tuple[str, ...]:
    """The keyword-only parameter names of ``fn``."""
    return tuple(p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY)


UNKNOWN_KWARG = "{fn}() got unexpected keyword argument(s) {names}{hint}; valid keywords: {valid}"


def check_keywords(fn: str, unknown: dict, valid: tuple[str, ...]) -> None:
    """Raise the one "unexpected keyword" ``TypeError`` (with close matches) when ``unknown`` is not empty."""
    if not unknown:
        return
    names = sorted(unknown)
    noted = {n: _explain.keyword_note(n, valid) for n in names}
    notes = [f"{n}: {note}" for n, note in noted.items() if note]
    names_left = [n for n, note in noted.items() if not note]
    alias = {n: _explain.suggest_keyword(n, valid) for n in names_left}  # (another library's name for a jaxgd keyword)
    close = [f"{alias[n]}, jaxgd's name for {n}" if alias[n]
             else next(iter(difflib.get_close_matches(n, valid, n=1)), None) for n in names_left]
    close = [m for m in close if m]
    hint = (f" (did you mean {', '.join(close)}?)" if close else "") + "".join(f" ({note})" for note in notes)
    raise TypeError(UNKNOWN_KWARG.format(fn=fn, names=", ".join(names), hint=hint, valid=", ".join(valid)))


# -- host validation of the options (each helper takes the argument's name) ----------
NOT_CALLABLE = "fun must be callable, got {kind}"
BAD_LR = "lr must be > 0 and finite, got lr={lr!r}"
BAD_LR_ARRAY = "lr must be > 0 and finite, a real scalar (a float or a 0-d floating array), got an array of shape {shape} and dtype {dtype}"
BAD_LR_TYPE = "lr must be a float, a schedule (callable step -> lr) or a jaxgd.linesearch rule, got {kind}"
BAD_LR_CLASS = "lr must be a step-size rule object, got the class {name}: call it, lr={name}()"
LR_NOT_A_PYTREE = (
    "lr is a step-size rule (init and step) of class {kind}, which is not a registered JAX pytree: the solver "
    "carries the rule's numbers into its compiled loop as arrays. Register the class with its numbers as data "
    "leaves (jax.tree_util.register_dataclass or register_pytree_node_class; see jaxgd.protocols.StepSizeRule)"
)
BAD_MAX_STEPS = "max_steps must be a non-negative integer, got max_steps={value!r}"
MAX_STEPS_LIMIT = 2**31 - 1  # the step counters are int32
TOO_MANY_STEPS = "max_steps must be at most 2**31 - 1 = {limit} (the step counter is an int32), got max_steps={value!r}"
# History rows a run may record (each 3 numbers, allocated before the run): 2**25 is 805 MB in float64. Beyond
# it a run of 2 steps with max_steps=10**8 took 6-12 s, and 10**9 ran out of memory (XLA's RESOURCE_EXHAUSTED,
# 25.8 GB) or did not return.
MAX_HISTORY_ROWS = 2**25
TOO_MUCH_HISTORY = (
    "max_steps={steps} with history={history!r} records up to {rows:,} history rows, allocated before the run "
    "(3 numbers each: {gb:.1f} GB in float64); at most {limit:,}: pass history=k to record every k-th step, "
    "or history=False"
)
BAD_TOL = "{name} must be a non-negative number, got {name}={value!r}"
BAD_PENALTY = "{name} must be a non-negative finite number, got {name}={value!r}"
BAD_PENALTY_ENTRY = "{name} must be a non-negative finite number, got {name}={shown}"  # (an array's bad entry)
BAD_CLIP = "clip must be None or a positive number, got clip={value!r}"
BAD_SCHEDULE = "lr as a schedule must map a step count to a real scalar, lr(count) -> float; {what}"
BAD_FIRST_LR = "lr as a schedule must give a finite step size >= 0 at the first step, count 0, got lr(0)={value}: {fix}"
FIRST_LR_NOT_FINITE = "the step count starts at 0 (e.g. lambda k: 0.1 / jnp.sqrt(k + 1), not 0.1 / jnp.sqrt(k))"
FIRST_LR_NEGATIVE = "a negative step size moves up the gradient, raising the loss (give the rate's magnitude)"
BAD_FLAG_EVERY = _validate.BAD_EVERY  # "{name} must be a bool or a positive integer (every k steps), ..."
BAD_GTOL_NORM = "gtol_norm must be None, 2 or inf (math.inf or numpy.inf), got gtol_norm={value!r}"
BAD_UNROLL = "unroll must be None (automatic) or a positive integer (steps per loop iteration), got unroll={value!r}"
# A block of K steps is K copies of the step in the program: XLA's compile grows faster than K (adam on 4
# parameters: K = 16 24 s; 20 275 s on a loaded 2-core machine; 1e12 never ended)
MAX_UNROLL = 64
BIG_UNROLL = (
    "unroll={value!r} is more than jaxgd takes ({most}): a block of K steps is K copies of the step in the compiled "
    "program, and XLA's compile time grows faster than K (adam on 4 parameters: K = 8 4.7 s, 16 24 s); past 8 a "
    "block rarely pays for its compile"
)


def _real_scalar(name: str, value: Any, message: str, positive: bool = False, finite: bool = False) -> Any:
    """Validate a number, or a real scalar array (concrete values checked,
    tracers pass), that must be >= 0 (or > 0, or finite too); return it
    (numbers as floats).

    Raises:
      TypeError: not a number or array, or a bool/complex one.
      ValueError: a negative (non-positive) or NaN value, or a non-scalar array.
    """
    value = _tree.as_float_if_number(value)

    def ok(v: float) -> bool:  # NaN fails every comparison
        return (v > 0 if positive else v >= 0) and (math.isfinite(v) or not finite)

    if isinstance(value, float):
        if not ok(value):
            raise ValueError(message.format(name=name, value=value))
        return value
    dtype = getattr(value, "dtype", None)
    if dtype is None or not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise TypeError(message.format(name=name, value=value))
    if jnp.shape(value) != ():
        raise ValueError(message.format(name=name, value=value) + f" (a scalar, got shape {jnp.shape(value)})")
    if _tree.is_concrete(value) and not ok(float(value)):
        raise ValueError(message.format(name=name, value=value))
    return value


def _nonneg(name: str, value: Any, message: str = BAD_TOL) -> Any:
    """Validate a concrete non-negative number; tracers pass unchecked."""
    return _real_scalar(name, value, message)


def _penalty(name: str, value: Any) -> Any:
    """A penalty weight: a non-negative finite number, or a pytree of them
    shaped like the parameters (checked against them in ``init``); a ``None``
    leaf of the pytree is 0 there (no penalty, as ``None`` in ``bounds`` is no bound)."""
    if _tree.is_scalar(value):
        return _real_scalar(name, value, BAD_PENALTY, finite=True)
    if value is not None:
        value = jax.tree_util.tree_map(lambda v: 0.0 if v is None else v, value, is_leaf=lambda v: v is None)
    leaves, treedef = jax.tree_util.tree_flatten(value)
    if not leaves:
        raise TypeError(BAD_PENALTY.format(name=name, value=value))
    checked = []
    for leaf in leaves:
        leaf = _tree.as_float_if_number(leaf)
        if not isinstance(leaf, float):
            dtype = getattr(leaf, "dtype", None)
            if dtype is None or not jnp.issubdtype(dtype, jnp.floating) and not jnp.issubdtype(dtype, jnp.integer):
                raise TypeError(BAD_PENALTY.format(name=name, value=value))
            if _tree.is_concrete(leaf):
                arr = np.asarray(leaf)
                ok = np.isfinite(arr) & (arr >= 0)
                if not ok.all():  # (the first bad entry, not the whole weight: 900 entries printed 6,000 characters)
                    at = tuple(int(i) for i in np.argwhere(~ok)[0])
                    shown = (f"an array of shape {arr.shape} holding {arr[at]!r} at index {at}" if arr.ndim
                             else repr(arr[()]))
                    raise ValueError(BAD_PENALTY_ENTRY.format(name=name, shown=shown))
        elif not (leaf >= 0 and math.isfinite(leaf)):
            raise ValueError(BAD_PENALTY.format(name=name, value=value))
        checked.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, checked)


def _off_if_zero(value: Any) -> Any:
    """A concrete zero switches a term off statically (``None``); otherwise traced."""
    return None if isinstance(value, float) and value == 0.0 else value


def _check_lr(lr: Any) -> Any:
    if isinstance(lr, type):  # a rule's class has init and step too (unbound): a missing ()
        raise TypeError(BAD_LR_CLASS.format(name=lr.__name__))
    if _stepsize.is_rule(lr):
        leaves = jax.tree_util.tree_leaves(lr)
        if len(leaves) == 1 and leaves[0] is lr:  # not a registered pytree: a leaf itself
            raise TypeError(LR_NOT_A_PYTREE.format(kind=type(lr).__name__))
        return lr
    if callable(lr):
        _check_schedule(lr)
        return lr
    lr = _tree.as_float_if_number(lr)
    if isinstance(lr, float):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(BAD_LR.format(lr=lr))
        return lr
    if hasattr(lr, "dtype") and hasattr(lr, "shape"):
        if not jnp.issubdtype(lr.dtype, jnp.floating) or lr.shape != ():
            raise ValueError(BAD_LR_ARRAY.format(shape=tuple(lr.shape), dtype=lr.dtype))
        if _tree.is_concrete(lr):
            v = float(lr)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(BAD_LR.format(lr=lr))
        return lr
    raise TypeError(BAD_LR_TYPE.format(kind=type(lr).__name__))


def _check_schedule(lr: Callable[..., Any]) -> None:
    """A schedule must map a step count to a real scalar, and its first value ``lr(0)`` must be finite
    and >= 0 (0 is a warmup's start). Traced once (``jax.make_jaxpr``) and ``lr(0)`` evaluated in
    NumPy (:func:`jaxgd.core.host_value.value`): nothing compiles. Cached per hashable schedule, weakly.
    Schedules holding tracers (leaves, or in a closure: ``lr(0)`` is not known) pass. jaxgd's own schedules of
    numbers hold ``lr(0)`` as a leaf, read without a trace (one with ``jnp`` array leaves, a sweep's, is not
    hashable: tracing it every call cost 130-200 us)."""
    if not _tree.is_concrete(lr):
        return
    if isinstance(lr, _NUMERIC_SCHEDULES):  # lr(0) is a leaf: no trace (the class may be built without its factory)
        first = lr.base_lr if isinstance(lr, _schedules.CyclicTriangular) else lr.init_value
        _check_first_value(np.asarray(first))
        return
    try:
        hash(lr)
    except TypeError:  # a schedule with array leaves: check every time
        return _check_schedule_uncached(lr)
    _check_schedule_cached(lr)


def _check_schedule_uncached(lr: Callable[..., Any]) -> None:
    try:
        closed, out = jax.make_jaxpr(lambda count: lr(count), return_shape=True)(jax.ShapeDtypeStruct((), jnp.int32))
    except Exception as e:  # the schedule's own error, reported against lr
        raise TypeError(BAD_SCHEDULE.format(what=f"calling it raised {type(e).__name__}: {e}")) from e
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    real = dtype is not None and (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer))
    if not (isinstance(out, (int, float)) and not isinstance(out, bool)) and (shape != () or not real):
        raise TypeError(BAD_SCHEDULE.format(what=f"it returned {out!r}"))
    first = _host_value.value(closed, np.int32(0))  # None: a tracer in a closure, or a primitive it lacks
    if first is not None:
        _check_first_value(first[0])


def _check_first_value(first: np.ndarray) -> None:
    """Refuse a schedule's first value ``lr(0)`` that is not finite or is negative (0 starts a warmup)."""
    v = float(first)
    if not (math.isfinite(v) and v >= 0):  # (the value printed in its dtype: -0.1, not -0.10000000149011612)
        fix = FIRST_LR_NOT_FINITE if not math.isfinite(v) else FIRST_LR_NEGATIVE
        raise ValueError(BAD_FIRST_LR.format(value=str(first[()]), fix=fix))


_SCHEDULES = _cache.PerFunction(maxsize=8)  # schedule -> {(): None}, weakly in the schedule
# jaxgd's schedules of numbers (not per_epoch, which wraps any callable): a scalar out, lr(0) one of their leaves
_NUMERIC_SCHEDULES = (_schedules.StepDecay, _schedules.MultiStepDecay, _schedules.InverseTimeDecay,
                       _schedules.CyclicTriangular)


def _check_schedule_cached(lr: Callable[..., Any]) -> None:
    _SCHEDULES.get(lr, (), lambda: _check_schedule_uncached(lr))


OPTAX_LR = (
    "lr={lr!r} with an optax transformation as method: the transformation already holds its own "
    "learning rate (jaxgd's step size is 1 for it), and lr would multiply it. Put the learning rate in "
    "the transformation (e.g. optax.adam(learning_rate)), chain a factor (optax.chain(tx, optax.scale(c))), "
    "or pass a jaxgd.linesearch rule as lr to search along its updates"
)


def _default_lr_checked(name: str, lr: Any, user_lr: Any) -> Any:
    """:func:`_check_lr`, saying where a bad ``lr`` came from when the caller gave none: the method's
    ``default_lr`` (a user's Direction with ``default_lr=-0.1`` was told "lr must be > 0", an ``lr`` it never
    passed)."""
    try:
        return _check_lr(lr)
    except (TypeError, ValueError) as err:
        if user_lr is not None:
            raise
        raise type(err)(f"{err} (no lr was given: this is method={name!r}'s default_lr)") from err


def _check_lr_with_optax(method: Any, lr: Any) -> None:
    """An optax transformation's step size is 1 (DESIGN.md) unless a step-size rule is asked for:
    a float or schedule ``lr`` (other than 1) would silently multiply its own learning rate."""
    if lr is None or _stepsize.is_rule(lr) or not isinstance(method, optax.GradientTransformation):
        return
    if isinstance(lr, (int, float)) and not isinstance(lr, bool) and float(lr) == 1.0:
        return
    raise ValueError(OPTAX_LR.format(lr=lr))


def _gtol_norm(value: Any, lbfgsb: bool) -> float:
    """``gtol_norm`` checked and resolved: ``2.0`` or ``inf`` (``None``: inf for L-BFGS-B, else 2)."""
    if value is None:
        return math.inf if lbfgsb else 2.0
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(BAD_GTOL_NORM.format(value=value))
    if float(value) not in (2.0, math.inf):
        raise ValueError(BAD_GTOL_NORM.format(value=value))
    return float(value)


def solver_fields(
    fun: Any, method: Any, lr: Any, *, max_steps: Any, gtol: Any, ftol: Any, xtol: Any, l1: Any, l2: Any,
    clip: Any, history: Any, progress: Any, has_aux: Any, bounds: Any, accelerated: Any, unroll: Any = None,
    gtol_norm: Any = None,
) -> dict:
    """Validate the options on the host; return the :class:`jaxgd.Solver`'s fields.

    Raises:
      TypeError: ``fun`` not callable, ``method`` or ``lr`` of the wrong kind.
      ValueError: a bad value (the message names the argument).
    """
    if not callable(fun):
        raise TypeError(NOT_CALLABLE.format(kind=type(fun).__name__))
    direction = _directions.resolve(method)
    _check_lr_with_optax(method, lr)
    user_lr = lr  # None: the method's default
    if lr is None:
        lr = _directions.default_lr(direction)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int,)) or max_steps < 0:
        if not (isinstance(max_steps, np.integer) and max_steps >= 0):
            raise ValueError(BAD_MAX_STEPS.format(value=max_steps) + _validate.static_note(max_steps))
    max_steps = int(max_steps)
    if max_steps > MAX_STEPS_LIMIT:
        raise ValueError(TOO_MANY_STEPS.format(limit=MAX_STEPS_LIMIT, value=max_steps))
    gtol, ftol, xtol = (_nonneg(n, v) for n, v in (("gtol", gtol), ("ftol", ftol), ("xtol", xtol)))
    l1, l2 = (_penalty(n, v) for n, v in (("l1", l1), ("l2", l2)))
    if clip is not None:
        clip = _real_scalar("clip", clip, BAD_CLIP, positive=True)
    history_every = _validate.every("history", history, BAD_FLAG_EVERY)
    if history_every and max_steps // history_every > MAX_HISTORY_ROWS:
        rows = max_steps // history_every
        raise ValueError(TOO_MUCH_HISTORY.format(steps=max_steps, history=history, rows=rows, gb=24 * rows / 1e9,
                                                 limit=MAX_HISTORY_ROWS))
    progress_every = _validate.every("progress", progress, BAD_FLAG_EVERY)
    if progress_every == 1 and progress is True:
        progress_every = max(1, max_steps // 100)
    has_aux, accelerated = _validate.flag("has_aux", has_aux), _validate.flag("accelerated", accelerated)
    lower, upper = check_bounds(bounds)
    bounded = lower is not None or upper is not None
    _combinations.check(direction.name, l1=l1, accelerated=accelerated, bounded=bounded,
                        lr=user_lr, clip=clip, optax_method=isinstance(method, optax.GradientTransformation))
    lbfgsb = _lbfgsb.rule_for(direction, bounded)  # lbfgs + bounds: L-BFGS-B (any other lr or clip refused)
    if unroll is not None:
        if isinstance(unroll, (bool, np.bool_)) or not isinstance(unroll, (int, np.integer)) or unroll < 1:
            raise ValueError(BAD_UNROLL.format(value=unroll))
        if unroll > MAX_UNROLL:
            raise ValueError(BIG_UNROLL.format(value=unroll, most=MAX_UNROLL))
        unroll = int(unroll)
    return dict(
        rule=lbfgsb if lbfgsb is not None else _stepsize.as_rule(_default_lr_checked(direction.name, lr, user_lr)),
        prox=Prox(_off_if_zero(l1), lower, upper),
        gtol=gtol,
        gtol_norm=_gtol_norm(gtol_norm, lbfgsb is not None),
        ftol=_off_if_zero(ftol),
        xtol=_off_if_zero(xtol),
        l2=_off_if_zero(l2),
        clip=clip,
        fun_ref=_tree.FunRef(fun),
        _fun=fun,
        direction=direction,
        max_steps=max_steps,
        history_every=history_every,
        progress_every=progress_every,
        has_aux=has_aux,
        accelerated=accelerated,
        unroll=unroll,
    )
