"""Search directions: the ``d_k`` of ``theta' = theta_k + alpha_k d_k``.

A :class:`Direction` is a NamedTuple of two pure functions (STYLE.md
principle 1). Built-in methods wrap optax's unit-learning-rate
transformations (``scale_by_adam`` and friends), so the step size stays a
traced value outside them. A user's own ``optax.GradientTransformation`` is
accepted as it is: it already holds its learning rate, so its updates are
used as the direction and the step size defaults to 1.

Method names are resolved once, at the boundary, by :func:`resolve`; an
unknown name raises ``ValueError`` listing the valid ones.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import optax

from .. import _tree
from ..interop import explain as _explain
from .._types import Grads, Params, PyTree

UNKNOWN_METHOD = "method={method!r} is not a known method; choose one of {valid}, or pass an optax.GradientTransformation"
BAD_METHOD_TYPE = "method must be a method name (str), a jaxgd Direction or an optax.GradientTransformation, got {kind}"


class Direction(NamedTuple):
    """A search-direction rule.

    Attributes:
      name: a short name used in tables and errors.
      init: ``init(params) -> state``.
      update: ``update(grad, state, params, value, value_fn) -> (d, state)``
        where ``d`` is a descent direction (the step is ``+alpha * d``).
      default_lr: the step size used when the user gives none: a float, or a
        zero-argument factory returning a step-size rule (for example a line
        search for quasi-Newton methods).
      decoupled_l2: when True, ``l2`` is decoupled weight decay added to the
        direction (AdamW) instead of a penalty added to the loss.
    """

    name: str
    init: Callable[[Params], PyTree]
    update: Callable[..., tuple[Grads, PyTree]]
    default_lr: Any = 1e-3
    decoupled_l2: bool = False


def from_preconditioner(
    name: str, tx: optax.GradientTransformation, *, decoupled_l2: bool = False, default_lr: Any = 1e-3
) -> Direction:
    """A direction ``d = -P(g)`` from a unit-learning-rate optax transformation ``P``."""

    def update(grad: Grads, state: PyTree, params: Params, value: Any = None, value_fn: Any = None):
        u, state = tx.update(grad, state, params)
        return _tree.neg(u), state

    return Direction(name, tx.init, update, default_lr, decoupled_l2)


def from_optax(tx: optax.GradientTransformation) -> Direction:
    """A direction from a user's complete optax optimizer: its updates, unchanged.

    Transformations with extra arguments (``optax.lbfgs`` and its line search)
    receive ``value``, ``grad`` and ``value_fn`` as keyword arguments.
    """
    extra = isinstance(tx, optax.GradientTransformationExtraArgs)

    def update(grad: Grads, state: PyTree, params: Params, value: Any = None, value_fn: Any = None):
        if extra:
            return tx.update(grad, state, params, value=value, grad=grad, value_fn=value_fn)
        return tx.update(grad, state, params)

    return Direction(getattr(tx, "__name__", "optax"), tx.init, update, 1.0, False)


# The registry: name -> zero-argument factory. Factories are cached, so the
# same name always yields the same Direction object and a jitted loop keyed on
# it is reused across calls.
_REGISTRY: dict[str, Callable[[], Direction]] = {}


def register(name: str) -> Callable[[Callable[[], Direction]], Callable[[], Direction]]:
    """Add a direction factory to the registry under ``name`` (cached)."""

    def deco(factory: Callable[[], Direction]) -> Callable[[], Direction]:
        cached = functools.lru_cache(maxsize=None)(factory)
        _REGISTRY[name] = cached
        return cached

    return deco


@register("gd")
def _gd() -> Direction:
    return from_preconditioner("gd", optax.identity())


@register("momentum")
def _momentum() -> Direction:
    # Heavy ball as in optax.sgd / torch.optim.SGD: v = 0.9 v + g, step -alpha v.
    return from_preconditioner("momentum", optax.trace(decay=0.9, nesterov=False))


@register("nesterov")
def _nesterov() -> Direction:
    return from_preconditioner("nesterov", optax.trace(decay=0.9, nesterov=True))


@register("adagrad")
def _adagrad() -> Direction:
    # optax.adagrad's defaults.
    return from_preconditioner("adagrad", optax.scale_by_rss(initial_accumulator_value=0.1, eps=1e-7))


@register("rmsprop")
def _rmsprop() -> Direction:
    # optax.rmsprop's defaults.
    return from_preconditioner("rmsprop", optax.scale_by_rms(decay=0.9, eps=1e-8))


@register("adam")
def _adam() -> Direction:
    return from_preconditioner("adam", optax.scale_by_adam())


@register("adamw")
def _adamw() -> Direction:
    # optax.adamw = chain(scale_by_adam, add_decayed_weights(l2), scale_by_lr):
    # the decay is added to the direction by the solver with a traced l2.
    return from_preconditioner("adamw", optax.scale_by_adam(), decoupled_l2=True)


def names() -> list[str]:
    """The method names ``method=`` accepts, sorted.

    Returns:
      The registered names (``gd``, ``adam``, ...).
    """
    return sorted(_REGISTRY)


def resolve(method: Any) -> Direction:
    """Turn ``method`` (a name, a Direction or an optax transformation) into a Direction.

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
            hint = f" (did you mean {alias}?)" if alias else ""
            raise ValueError(UNKNOWN_METHOD.format(method=method, valid=", ".join(names())) + hint)
        return _REGISTRY[key]()
    if isinstance(method, optax.GradientTransformation):
        return _from_optax_cached(method)
    raise TypeError(BAD_METHOD_TYPE.format(kind=type(method).__name__))


@functools.lru_cache(maxsize=64)
def _from_optax_cached(tx: optax.GradientTransformation) -> Direction:
    return from_optax(tx)


def default_lr(direction: Direction) -> Optional[Any]:
    """The step size a direction uses when ``lr`` is not given."""
    d = direction.default_lr
    return d() if callable(d) else d


# Curvature-aware directions (bfgs, lbfgs, cg) register themselves on import;
# importing them here makes them available wherever the registry is.
from . import quasi_newton as _quasi_newton
