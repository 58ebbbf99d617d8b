"""Option-and-method combinations refused up front: one table, one check.

A proximal step ``prox(theta + alpha d)``, FISTA's extrapolation and a
projection into a box each assume something about the direction ``d``; with
a direction that breaks the assumption the run ends somewhere that is not
the answer of the problem the options describe, often with no error. Those
combinations are refused on the host, before anything compiles, with a
message that says why and what to use instead.

Each entry of :data:`REFUSED` was measured (float64, the method's default
``lr`` unless said; the message quotes the result):

- ``l1`` with every registered method but ``gd``: the fixed points of the
  proximal step are not the L1 problem's solutions (against scikit-learn's
  ``Lasso``; ``tests/test_stall.py``). FISTA = ISTA + extrapolation; Beck &
  Teboulle (2009), eq. 1.4 and section 4.
- ``accelerated`` with every registered method but ``gd``: FISTA accelerates
  the gradient step of size <= 1/L (Beck & Teboulle 2009), not a curvature,
  momentum or adaptive step.
- ``bounds`` with ``bfgs`` and ``cg``: a projection after a step whose
  direction mixes coordinates is not a bound-constrained method (Bertsekas
  1982, "Projected Newton methods for optimization problems with simple
  constraints", SIAM J. Control Optim. 20(2): its fixed points need not be
  the box's KKT points).
- ``l1`` with the searches ``MoreThuente``, ``StrongWolfe`` and ``Exact`` (:data:`RULES_REFUSED`):
  they search the smooth part only, so their steps ignore the L1 term.
- ``accelerated`` with a rule whose steps may exceed ``1/L`` (those searches,
  ``BarzilaiBorwein``, ``Polyak``) or ``Backtracking`` with ``c1 < 0.5`` or
  ``increase=``: FISTA's extrapolation of such steps diverges; ``c1 = 0.5``
  is Beck & Teboulle's quadratic upper-bound test (2009, section 4).
- ``lr`` and ``clip`` with ``lbfgs`` and ``bounds``: ``lbfgs`` with bounds
  is L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995), which takes its own steps;
  another rule, or a clipped gradient, would project an L-BFGS step instead,
  for the reason above.

- ``l1`` and ``accelerated`` with an optax transformation as ``method``: its
  step size is its own (jaxgd's step is 1), so the proximal step's threshold
  ``alpha * l1`` is ``l1`` where the gradient step is ``lr`` times the update:
  ``optax.sgd(0.1)`` with ``l1=0.05`` ended at the ``l1=0.5`` answer, and
  ``optax.adam(0.1)`` with ``l1=0.5`` at zero (session 58); FISTA's
  extrapolation assumes a plain gradient step, which jaxgd cannot see inside
  the transformation.

A user's own :class:`~jaxgd.directions.Direction` is the user's call: only the
registered methods' names are looked up.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from .. import _tree


def base_name(direction_name: str) -> str:
    """The method's name without its settings: ``"lbfgs(scaling='scalar')"`` -> ``"lbfgs"``."""
    return direction_name.split("(")[0]


def is_off(weight: Any) -> bool:
    """A penalty switched off: None, or concrete zeros everywhere (a number or a pytree).

    A traced weight counts as on (it may be non-zero)."""
    if weight is None:
        return True
    if not _tree.is_concrete(weight):
        return False
    return all(not np.any(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(weight))


# -- the reasons, by what the direction does ---------------------------------------------------------
_L1_QUASI_NEWTON = "multiplies the gradient by a curvature (inverse-Hessian) estimate (a quasi-Newton method)"
_L1_MOMENTUM = "sums past gradients (v = 0.9 v + g, which is 10 g at a fixed point: the run solves the problem for l1/10)"
_L1_ADAPTIVE = "divides each gradient coordinate by a running gradient magnitude (an adaptive method)"
# What FISTA's pairs did (minimize, float64, default lr: a 30 x 5 least squares, or 10-D Rosenbrock; session 29).
_FISTA_QUASI_NEWTON = ("builds its curvature model from its own iterates and gradients; taken at extrapolated "
                       "points it misleads the line search (bfgs on 10-D Rosenbrock ended LINESEARCH_FAILED at "
                       "|x| ~ 6e15; lbfgs took 2.5x the evaluations)")
_FISTA_MOMENTUM = ("has momentum of its own, and the two compound (on a 5-parameter least squares momentum "
                   "diverged to 6e93, nesterov to 1e153)")
_FISTA_ADAPTIVE = ("rescales each gradient coordinate, so its step is not the gradient step of size <= 1/L that "
                   "FISTA extrapolates (on a 5-parameter least squares adam ended 7.2 and adamw 23 away from the "
                   "answer)")
# Projected bfgs/cg (session 29, default lr: 2-D and 10-D Rosenbrock in two boxes, float64 and float32, and a
# non-negative least squares): all 18 runs ended LINESEARCH_FAILED, 1e-6 to 0.14 from scipy's L-BFGS-B answer.
# Projected lbfgs (session 30, float64, the 2-D/10-D Rosenbrock boxes and the NNLS): MoreThuente() and clip=100
# ended LINESEARCH_FAILED in 5 of 5 runs each, 1e-7 to 1e-2 away; a constant lr 1e-3 ran to MAX_STEPS in 4 of 5;
# StrongWolfe() took 55,000-600,000 evaluations; Backtracking() 437-3,135 where L-BFGS-B took 4-40.
_PROJECTED_LBFGS = ("with bounds, lbfgs runs L-BFGS-B (generalised Cauchy point, subspace minimisation and its own "
                    "projected More-Thuente search), and with {option} it would project an unconstrained L-BFGS "
                    "step into the box instead, which is not a bound-constrained method (on Rosenbrock and "
                    "non-negative least squares it ended LINESEARCH_FAILED or ran out of steps, or took 10-1,000x "
                    "L-BFGS-B's evaluations)")

# option -> {registered method's base name: why the pair is refused}
REFUSED: dict[str, dict[str, str]] = {
    "l1": {
        "bfgs": _L1_QUASI_NEWTON,
        "lbfgs": _L1_QUASI_NEWTON,
        "cg": "adds a multiple of the previous direction to the gradient (conjugate gradient)",
        "momentum": _L1_MOMENTUM,
        "nesterov": _L1_MOMENTUM,
        "adagrad": _L1_ADAPTIVE,
        "rmsprop": _L1_ADAPTIVE,
        "adam": _L1_ADAPTIVE,
        "adamw": _L1_ADAPTIVE,
    },
    "accelerated": {
        "bfgs": _FISTA_QUASI_NEWTON,
        "lbfgs": _FISTA_QUASI_NEWTON,
        "cg": ("adds a multiple of the previous direction to the gradient, a momentum of its own (on a 5-parameter "
               "least squares it ended LINESEARCH_FAILED at |x| ~ 2e152)"),
        "momentum": _FISTA_MOMENTUM,
        "nesterov": _FISTA_MOMENTUM,
        "adagrad": _FISTA_ADAPTIVE,
        "rmsprop": _FISTA_ADAPTIVE,
        "adam": _FISTA_ADAPTIVE,
        "adamw": _FISTA_ADAPTIVE,
    },
    "bounds": {
        "bfgs": "multiplies the gradient by a dense inverse-Hessian estimate",
        "cg": "adds a multiple of the previous direction to the gradient",
    },
    "lr with bounds": {"lbfgs": _PROJECTED_LBFGS.format(option="a step-size rule of its own")},
    "clip with bounds": {"lbfgs": _PROJECTED_LBFGS.format(option="a clipped gradient")},
}

# Step-size rules (by class name) refused with l1 or accelerated=True (session 55, gd, float64; against
# scikit-learn's Lasso on a 60 x 12 least squares, or diverging): -> why.
_SMOOTH_SEARCH = ("searches along the smooth part of the loss only, so its steps ignore the L1 term (gd with "
                  "l1=0.3 and this search ended LINESEARCH_FAILED or ran out of steps 0.02-0.3 from the Lasso answer)")
RULES_REFUSED: dict[str, dict[str, str]] = {
    "l1": {"MoreThuente": _SMOOTH_SEARCH, "StrongWolfe": _SMOOTH_SEARCH, "Exact": _SMOOTH_SEARCH},
    "accelerated": {
        name: "takes steps that may exceed 1/L, and FISTA's extrapolation then diverges"
        for name in ("MoreThuente", "StrongWolfe", "Exact", "BarzilaiBorwein", "Polyak")
    },
}
_FISTA_BACKTRACKING = ("with c1={c1} (Armijo's test) accepts steps up to about 2/L, and FISTA's extrapolation then "
                       "diverges (a Lasso ran to |w| ~ 1e152)")
_FISTA_INCREASE = "grows the step again (increase=), where FISTA's steps must not grow"

MESSAGES: dict[str, str] = {
    "l1": (
        "l1={shown} cannot be combined with method={method!r}: l1= is a proximal (soft-thresholding) step, "
        "which solves the L1 problem only with a plain gradient direction, and {method!r} {why}; the run "
        "would end at a point that is not the L1 problem's solution. Use method='gd' (ISTA; accelerated=True "
        "for FISTA), or write the penalty into the loss if you accept a non-sparse answer"
    ),
    "accelerated": (
        "accelerated=True cannot be combined with method={method!r}: accelerated=True is FISTA's extrapolation "
        "(Beck & Teboulle 2009), an acceleration of the plain (proximal) gradient step, and {method!r} {why}. "
        "Use method='gd' with accelerated=True, or {method!r} without it"
    ),
    "bounds": (
        "bounds= cannot be combined with method={method!r}: bounds= projects each step into the box, and "
        "{method!r} {why}, so the projected iteration is not a bound-constrained {method!r} (with its default "
        "line search it failed at the box on every problem tried). Use method='lbfgs' (L-BFGS-B, with its "
        "default lr), or a first-order method (gd, adam, ...) with bounds="
    ),
    "lr with bounds": (
        "lr={shown} cannot be combined with method='lbfgs' and bounds=: {why}. Leave lr unset for "
        "L-BFGS-B (jaxgd.minimize or jaxgd.Solver), or use a first-order method (gd, adam, ...) with lr= and bounds="
    ),
    "clip with bounds": (
        "clip={shown} cannot be combined with method='lbfgs' and bounds=: {why}. Leave clip unset for "
        "L-BFGS-B, or use a first-order method (gd, adam, ...) with clip= and bounds="
    ),
    "l1 rule": (
        "l1= cannot be combined with lr={shown}: {rule} {why}. Use Backtracking() (Tseng & Yun's rule for "
        "F = f + l1 |x|), a constant lr, BarzilaiBorwein() or Polyak()"
    ),
    "l1 optax": (
        "l1={shown} cannot be combined with an optax transformation as method: l1= is a proximal "
        "(soft-thresholding) step by lr * l1 after the step, and an optax transformation takes steps of its own "
        "size (jaxgd's lr is 1 for it), so the run would solve the problem for l1 / (the transformation's learning "
        "rate) (optax.sgd(0.1) with l1=0.05 ended at the l1=0.5 answer). Use method='gd' with lr=<its learning "
        "rate> (ISTA; accelerated=True for FISTA), or write the penalty into the loss if you accept a non-sparse "
        "answer"
    ),
    "accelerated optax": (
        "accelerated=True cannot be combined with an optax transformation as method: accelerated=True is FISTA's "
        "extrapolation (Beck & Teboulle 2009) of a plain gradient step of size <= 1/L, which jaxgd cannot see "
        "inside the transformation (optax.adam(0.1) with it converged slowly). Use method='gd' with "
        "lr=<its learning rate> and accelerated=True, or the transformation without it"
    ),
    "accelerated rule": (
        "accelerated=True cannot be combined with lr={shown}: FISTA (Beck & Teboulle 2009) extrapolates proximal "
        "gradient steps of size <= 1/L, and {rule} {why}. Use a constant lr <= 1/L, a schedule, or "
        "Backtracking(c1=0.5) (Beck & Teboulle's section 4 test)"
    ),
}


def _rule_refusal(rule: Any, l1_on: bool, accelerated: bool) -> None:
    """Raise for a step-size rule refused with ``l1`` or ``accelerated`` (:data:`RULES_REFUSED`; FISTA with
    ``Backtracking`` only with ``c1 >= 0.5`` and no ``increase``)."""
    name = type(rule).__name__
    why = RULES_REFUSED["l1"].get(name) if l1_on else None
    if why is not None:
        raise ValueError(MESSAGES["l1 rule"].format(shown=repr(rule), rule=name, why=why))
    if not accelerated:
        return
    why = RULES_REFUSED["accelerated"].get(name)
    if why is None and name == "Backtracking":
        c1 = getattr(rule, "c1", 0.5)
        if _tree.is_concrete(c1) and float(c1) < 0.5:
            why = _FISTA_BACKTRACKING.format(c1=float(c1))
        elif getattr(rule, "increase", None) is not None:
            why = _FISTA_INCREASE
    if why is not None:
        raise ValueError(MESSAGES["accelerated rule"].format(shown=repr(rule), rule=name, why=why))


def check(direction_name: str, *, l1: Any, accelerated: bool, bounded: bool, lr: Any, clip: Any,
          optax_method: bool = False) -> None:
    """Raise for the first refused pair among the options given (see :data:`REFUSED`).

    Args:
      direction_name: the resolved direction's ``name``.
      optax_method: the method is the user's optax transformation (``l1`` and ``accelerated`` refused).
      l1: the ``l1`` weight (off when None or concrete zeros: ``l1=0`` suits every method).
      accelerated: ``accelerated``.
      bounded: some bound given (``bounds`` not None on at least one side).
      lr: the user's ``lr`` (None: the method's default).
      clip: ``clip`` (None: off).

    Raises:
      ValueError: names the option and the method, says why the pair does not do what it
        claims and what to use instead.
    """
    method = base_name(direction_name)
    given = {
        "l1": (not is_off(l1), l1),
        "accelerated": (bool(accelerated), accelerated),
        "bounds": (bounded, None),
        "lr with bounds": (bounded and lr is not None, lr),
        "clip with bounds": (bounded and clip is not None, clip),
    }
    for option in ("l1", "accelerated") if optax_method else ():
        on, value = given[option]
        if on:
            raise ValueError(MESSAGES[option + " optax"].format(shown=_shown(value)))
    for option, (on, value) in given.items():
        why = REFUSED[option].get(method)
        if on and why is not None:
            raise ValueError(MESSAGES[option].format(shown=_shown(value), method=method, why=why))
    if lr is not None:  # (a step-size rule, looked up by its class's name; a number or schedule passes)
        _rule_refusal(lr, given["l1"][0], bool(accelerated))


def _shown(value: Any) -> str:
    """An option's value as a message shows it."""
    return repr(value) if _tree.is_concrete(value) else "<traced>"
