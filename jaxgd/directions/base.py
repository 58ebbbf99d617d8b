"""Search directions: the ``d_k`` of ``theta' = theta_k + alpha_k d_k``.

A :class:`Direction` is a NamedTuple of two pure functions (STYLE.md
principle 1). Built-in methods wrap optax's unit-learning-rate
transformations (``scale_by_adam`` and friends), so the step size stays a
traced value outside them. A user's own ``optax.GradientTransformation`` is
accepted as it is: it already holds its learning rate, so its updates are
used as the direction and the step size defaults to 1.

This module holds the type and its two adapters; it imports no direction,
so every direction module can import it without a cycle. Names are looked
up in :mod:`jaxgd.directions.registry`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import optax

from .. import _tree
from .._types import Grads, Params, PyTree


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
      reset: ``reset(state) -> (state, had_memory)`` for a direction with a
        curvature memory (``lbfgs``): when a line search fails and
        ``had_memory`` is True, the solver keeps running from the same point
        with the reset state (L-BFGS-B's restart); None: a failed search stops
        the run.
      accepts: ``accepts(new_grad, grad, d) -> bool`` for a direction that
        tests a line search's step (``cg``: Gilbert & Nocedal's sufficient
        descent of the next direction, as scipy's CG); None: any step.
      keeps_nonfinite: True when ``d`` is not finite wherever ``grad`` is not
        (an optax preconditioner such as Adam's: ``inf / inf`` is NaN), for
        any state; ``fit`` then tests a fast epoch's finiteness once, at its
        end. False for a direction that may
        not (a user's optax optimizer, quasi-Newton memories).
      quasi_newton: True when ``d = -H g`` with ``H`` an inverse-Hessian estimate that a
        curvature memory builds (``bfgs``, ``lbfgs``): while ``reset`` reports a memory, the
        unit step minimises the quadratic model ``f + g.s + s.H^{-1}s/2``, which predicts a
        decrease of ``|g.d|/2`` (half the squared Newton decrement), and the solver's precision
        rule reads it (``Status.PRECISION``).
    """

    name: str
    init: Callable[[Params], PyTree]
    update: Callable[..., tuple[Grads, PyTree]]
    default_lr: Any = 1e-3
    decoupled_l2: bool = False
    reset: Optional[Callable[[PyTree], tuple[PyTree, Any]]] = None
    keeps_nonfinite: bool = False
    accepts: Optional[Callable[[Grads, Grads, Grads], Any]] = None
    quasi_newton: bool = False


class Made:
    """What a direction factory made: its settings, looked up by the direction object (for the
    code that runs the same rule elsewhere: :mod:`jaxgd.host`, L-BFGS-B). The factories are
    cached, so what is recorded stays alive and an object's id is not reused."""

    def __init__(self) -> None:
        self._by_id: dict = {}

    def record(self, direction: Direction, settings: Any) -> Direction:
        """Remember ``settings`` for ``direction``; return it."""
        self._by_id[id(direction)] = (direction, settings)
        return direction

    def settings(self, direction: Any) -> Any:
        """The settings recorded for this very object, else None."""
        made = self._by_id.get(id(direction))
        return made[1] if made is not None and made[0] is direction else None


def from_preconditioner(
    name: str, tx: optax.GradientTransformation, *, decoupled_l2: bool = False, default_lr: Any = 1e-3,
    keeps_nonfinite: bool = False,
) -> Direction:
    """A direction ``d = -P(g)`` from a unit-learning-rate optax transformation ``P``
    (``keeps_nonfinite``: see :class:`Direction`)."""

    def update(grad: Grads, state: PyTree, params: Params, value: Any = None, value_fn: Any = None):
        u, state = tx.update(grad, state, params)
        return _tree.neg(u), state

    return Direction(name, tx.init, update, default_lr, decoupled_l2, keeps_nonfinite=keeps_nonfinite)


OPTAX_NEEDS_VALUE_FN = (
    "the optax transformation given as method takes extra arguments (optax.lbfgs and its line search) and "
    "failed without value_fn ({err}): pass update(..., value=value, grad=grad, value_fn=loss)"
)


def from_optax(tx: optax.GradientTransformation) -> Direction:
    """A direction from a user's complete optax optimizer: its updates, unchanged.

    Transformations with extra arguments (``optax.lbfgs`` and its line search)
    receive ``value``, ``grad`` and ``value_fn`` as keyword arguments.
    """
    extra = isinstance(tx, optax.GradientTransformationExtraArgs)

    def update(grad: Grads, state: PyTree, params: Params, value: Any = None, value_fn: Any = None):
        if not extra:
            return tx.update(grad, state, params)
        try:
            return tx.update(grad, state, params, value=value, grad=grad, value_fn=value_fn)
        except TypeError as err:  # (as_optax without value_fn: optax.lbfgs raised "None is not a callable object")
            if value_fn is None:
                raise TypeError(OPTAX_NEEDS_VALUE_FN.format(err=err)) from err
            raise

    update.optax_transformation = tx  # (minimize_run.check_optax_closure reads the closures it holds)
    return Direction(getattr(tx, "__name__", "optax"), tx.init, update, 1.0, False)


def default_lr(direction: Direction) -> Optional[Any]:
    """The step size a direction uses when ``lr`` is not given."""
    d = direction.default_lr
    return d() if callable(d) else d
