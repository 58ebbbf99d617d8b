"""The method registry: ``method=`` name -> direction factory, in one explicit table.

Method names are resolved once, at the boundary, by :func:`resolve`; an
unknown name raises ``ValueError`` listing the valid ones. The table below
is the only list of names: adding a direction is a factory in its own
module plus one line here (``docs/extending.md``). Direction modules import
:mod:`jaxgd.directions.base`, never this module, so there is no import cycle
and nothing registers itself by side effect.
"""

from __future__ import annotations

from typing import Any, Callable

import optax

from . import first_order, quasi_newton
from .base import Direction as Direction
from .base import default_lr as default_lr
from .base import from_optax as from_optax
from .base import from_preconditioner as from_preconditioner
from .. import _bounded, _closure_key
from ..interop import explain as _explain
from ..protocols import SearchDirection

UNKNOWN_METHOD = "method={method!r} is not a known method; choose one of {valid}, or pass an optax.GradientTransformation"
BAD_METHOD_TYPE = (
    "method must be a method name (str), a jaxgd Direction, an object with jaxgd.protocols.SearchDirection's "
    "members or an optax.GradientTransformation, got {kind}"
)
MULTI_STEPS = " (optax.MultiSteps: pass its .gradient_transformation())"

# name -> zero-argument factory returning the same Direction object every call
# (each factory is cached, so a jitted loop keyed on it is reused).
_REGISTRY: dict[str, Callable[[], Direction]] = {
    "gd": first_order.gd,
    "momentum": first_order.momentum,
    "nesterov": first_order.nesterov,
    "adagrad": first_order.adagrad,
    "rmsprop": first_order.rmsprop,
    "adam": first_order.adam,
    "adamw": first_order.adamw,
    "bfgs": quasi_newton.bfgs_direction,
    "lbfgs": quasi_newton.lbfgs_direction,
    "cg": quasi_newton.cg_direction,
}


def names() -> list[str]:
    """The method names ``method=`` accepts, sorted.

    Returns:
      The registered names (``gd``, ``adam``, ...).
    """
    return sorted(_REGISTRY)


def resolve(method: Any) -> Direction:
    """Turn ``method`` (a name, a Direction, an object with :class:`jaxgd.protocols.SearchDirection`'s members
    or an optax transformation) into a Direction.

    Raises:
      ValueError: for an unknown name (the message lists the valid ones).
      TypeError: for anything else.
    """
    if isinstance(method, Direction):
        return method
    if isinstance(method, str):
        key = method.lower()
        if key not in _REGISTRY:
            alias = _explain.suggest_method(method)  # another library's name (sgd, L-BFGS-B)
            note = _explain.method_note(method)  # or one jaxgd has no counterpart for (Nelder-Mead, SLSQP)
            hint = f" (did you mean {alias}?)" if alias else f" ({note})" if note else ""
            raise ValueError(UNKNOWN_METHOD.format(method=method, valid=", ".join(names())) + hint)
        return _REGISTRY[key]()
    if isinstance(method, optax.GradientTransformation):
        return _from_optax_cached(method)
    if isinstance(method, SearchDirection):  # structural (protocols.py): its members, and the optional ones it has
        return Direction(**{f: getattr(method, f) for f in Direction._fields if hasattr(method, f)})
    hint = MULTI_STEPS if hasattr(method, "gradient_transformation") else ""
    raise TypeError(BAD_METHOD_TYPE.format(kind=type(method).__name__) + hint)


# Directions made from optax transformations, by the transformation's value (_closure_key.key): an
# optimizer built anew with the same numbers (optax.adam(1e-3) in a training function) gets the direction
# made from the first, and so its compiled loop (the functions of equal code and values compute the same).
_BY_VALUE = _bounded.Bounded(64)


def _from_optax_cached(tx: optax.GradientTransformation) -> Direction:
    key = _closure_key.key(tx)  # (tx itself where it cannot be keyed by value: an array or an object in a closure)
    made = _BY_VALUE.get(key)
    if made is None:
        made = _BY_VALUE[key] = from_optax(tx)
    return made
