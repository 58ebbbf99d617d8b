"""The solver options, written once: defaults and documentation for
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
import textwrap
from typing import Any, Callable, NamedTuple


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
        "``1.0`` for an optax transformation, which holds its own learning rate)."
    )),
    "max_steps": Option(1000, "the step limit (static: it sizes the history buffers; 0 returns ``x0``)."),
    "gtol": Option(1e-6, (
        "stop when the stationarity measure is <= gtol: the gradient 2-norm, or with ``l1``/``bounds`` "
        "the norm of the gradient mapping ``x - prox(x - grad)``."
    )),
    "ftol": Option(0.0, (
        "stop when ``|f_k - f_{k+1}| <= ftol * max(|f_k|, |f_{k+1}|, 1)`` (scipy L-BFGS-B's test); 0 disables it."
    )),
    "xtol": Option(0.0, "stop when ``||theta_{k+1} - theta_k|| <= xtol``; 0 disables it."),
    "l1": Option(0.0, (
        "L1 weight, applied as a proximal (soft-thresholding) step after each step (ISTA with ``gd``): "
        "a number, or a pytree shaped like the parameters (0 leaves a leaf unpenalised, e.g. "
        "``{'w': 0.1, 'b': 0.0}`` for an unpenalised intercept)."
    )),
    "l2": Option(0.0, (
        "L2 weight: the penalty ``l2/2 ||theta||^2`` added to the loss, or for ``adamw`` decoupled "
        "weight decay ``d -= l2 * theta`` (as ``optax.adamw``); a number or a pytree shaped like the "
        "parameters (0 leaves a leaf unpenalised). With ``l1`` it makes the elastic net."
    )),
    "clip": Option(None, "clip the gradient to this global 2-norm before the direction (None: no clipping)."),
    "bounds": Option(None, (
        "``(lower, upper)`` box constraints applied by projection after each step (projected gradient "
        "with ``gd``). Each side is ``None`` (unbounded), a number, or a pytree with the structure of the "
        "parameters (``-inf``/``inf`` for free entries); ``(0, None)`` is non-negativity. The start is "
        "projected into the box (as scipy's L-BFGS-B does)."
    )),
    "accelerated": Option(False, (
        "FISTA momentum (Beck & Teboulle 2009) on the proximal step: each step starts from the "
        "extrapolated point ``y_k = x_k + (t_{k-1} - 1)/t_k (x_k - x_{k-1})``, at the cost of one more "
        "gradient there. Meant for ``gd`` with ``l1``/``bounds`` and a constant ``lr`` <= 1/L; not monotone."
    )),
    "history": Option(True, (
        "record loss, step size and gradient norm every step (True), every k steps (an int) or not at all (False)."
    )),
    "progress": Option(False, (
        "show a progress bar (True) updated from inside the compiled loop, or every k steps (an int, "
        "``minimize``/``Solver`` only). Off by default everywhere."
    )),
    "has_aux": Option(False, "``fun`` returns ``(loss, aux)``; ``Result.aux`` holds the aux."),
}

SOLVER_OPTIONS = (
    "max_steps", "gtol", "ftol", "xtol", "l1", "l2", "clip", "history", "progress", "has_aux", "bounds", "accelerated",
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


def document(fn: Callable) -> Callable:
    """Fill each ``{options:a,b,c}`` line of ``fn.__doc__`` with those options' entries."""
    lines = []
    for line in (fn.__doc__ or "").split("\n"):
        stripped = line.strip()
        if stripped.startswith("{options:") and stripped.endswith("}"):
            lines.append(entries(stripped[len("{options:"):-1], indent=len(line) - len(line.lstrip())))
        else:
            lines.append(line)
    fn.__doc__ = "\n".join(lines)
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
    close = [m for n in names for m in difflib.get_close_matches(n, valid, n=1)]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise TypeError(UNKNOWN_KWARG.format(fn=fn, names=", ".join(names), hint=hint, valid=", ".join(valid)))
