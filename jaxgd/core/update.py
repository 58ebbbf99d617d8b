"""The one update step: clip -> direction -> decoupled decay -> alpha * d -> prox.

Every loop in jaxgd moves its parameters through :func:`update`:
:meth:`jaxgd.Solver.step` (hence ``minimize``, its batched variant and the
hand-driven loop) and ``fit``'s minibatch step. The step is DESIGN.md's

.. math::
   d_k = \\mathrm{direction}(\\mathrm{clip}(g_k)) - \\lambda\\,\\theta_k
         \\,[\\text{decoupled}],\\qquad
   \\alpha_k = \\mathrm{rule}(k, \\ldots),\\qquad
   \\theta_{k+1} = \\mathrm{prox}_{\\alpha_k h}(\\theta_k + \\alpha_k d_k)

(Beck & Teboulle, SIAM J. Imaging Sci. 2009, eq. 1.4 for the proximal step;
Loshchilov & Hutter, ICLR 2019, for decoupled weight decay).

:func:`update` is a pure function of ``(grads, state, params)`` plus the
optional ``value``/``value_fn`` extras that line searches need, the shape
of an ``optax.GradientTransformationExtraArgs`` update. What it needs of the
method is an :class:`UpdateParts`: a direction, a step-size rule, a
:class:`jaxgd.prox.operators.Prox`, the L2 weight and the clip norm
(:class:`jaxgd.Solver` is one).

Non-finite policy (one for every loop): a step whose outcome is not finite
is not taken; the caller keeps its last finite iterate and reports
``Status.NONFINITE`` (:func:`keep_if`).
"""

from __future__ import annotations

import inspect

from typing import Any, Callable, NamedTuple, Optional, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._types import Grads, Params, PyTree
from ..prox import operators as _prox
from . import stepsize as _stepsize


class UpdateParts(Protocol):
    """What :func:`update` needs of a method (a :class:`jaxgd.Solver` is one)."""

    direction: Any  # a jaxgd.Direction: init(params), update(g, state, params, **extra)
    rule: Any  # a step-size rule: init(params, value, grad), step(state, ctx)
    prox: Any  # a Prox: apply(params, alpha), change(new, old), l1
    l2: Any  # None, or the L2 weight (decoupled when direction.decoupled_l2)
    clip: Any  # None, or the global-norm clip threshold


class UpdateState(NamedTuple):
    """The update's own state: the step count and the direction's and rule's states."""

    count: jax.Array
    direction_state: PyTree
    rule_state: PyTree


BAD_DIRECTION_UPDATE = (
    "method={name!r}: a Direction's update(grad, state, params, *, value, value_fn) must return a pair "
    "(d, state), got {got}"
)
BAD_DIRECTION_D = (
    "method={name!r}: a Direction's update must return d shaped like params (the step is params + alpha * d); "
    "got d {got} for params {want}"
)
BAD_STATE = (
    "{who}: its state must keep the structure, shapes and dtypes init gave it (a loop carry); "
    "got {got} after a step, from {want}"
)
BAD_DIRECTION_KEYWORDS = (
    "method={name!r}: a Direction's update is called as update(grad, state, params, *, value, value_fn); "
    "it does not take {missing} (add the keyword, or **kwargs)"
)
BAD_RULE_ALPHA = "lr (a {kind}): a step-size rule's alpha must be a scalar, got shape {shape}"
BAD_RULE_STEP = (
    "lr (a {kind}): a step-size rule's step(state, ctx) must return (alpha, trial, state, info), trial the "
    "jaxgd.linesearch.Trial of ctx.evaluate(alpha) and info a jaxgd.linesearch.StepInfo, got {got}"
)


def _specs(tree: Any) -> Any:
    """``tree``'s structure with each leaf's (shape, dtype), for the contract checks (trace time)."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jax.tree_util.tree_structure(tree), [(tuple(jnp.shape(x)), jnp.result_type(x)) for x in leaves]


def _describe(tree: Any) -> str:
    """A pytree's structure and leaf shapes and dtypes, for an error."""
    treedef, leaves = _specs(tree)
    return f"{treedef} with leaves {[f'{np.dtype(d).name}{list(sh)}' for sh, d in leaves]}"


def _check_state(who: str, new: Any, old: Any) -> None:
    """(trace time) a user's Direction or rule must hand back its state as it got it (a loop carry)."""
    if _specs(new) != _specs(old):
        raise TypeError(BAD_STATE.format(who=who, got=_describe(new), want=_describe(old)))


def _check_keywords(name: str, update: Callable) -> None:
    """(trace time) a user's update must take the keywords ``value`` and ``value_fn`` (a plain ``TypeError``
    from the call said only "unexpected keyword argument")."""
    try:
        params = inspect.signature(update).parameters
    except (TypeError, ValueError):  # (a builtin or C function: the call says it)
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    missing = [k for k in ("value", "value_fn") if k not in params]
    if missing:
        raise TypeError(BAD_DIRECTION_KEYWORDS.format(name=name, missing=" and ".join(missing)))


def _shape_of(out: Any) -> str:
    """What a user's function returned, for an error: the types of a tuple's items."""
    if isinstance(out, tuple):
        return f"a {len(out)}-tuple of ({', '.join(type(o).__name__ for o in out)})"
    return f"a {type(out).__name__}"


def clip_by_global_norm(grad: Grads, max_norm: jax.Array) -> Grads:
    """Scale ``grad`` so that its global norm is at most ``max_norm``.

    The same rule as ``optax.clip_by_global_norm``, with a traced threshold.
    """
    g_norm = _tree.norm(grad)
    factor = jnp.where(g_norm > max_norm, max_norm / jnp.where(g_norm > 0, g_norm, 1.0), 1.0)
    return _tree.scale(factor, grad)


def init(parts: UpdateParts, params: Params, value: jax.Array, grad: Grads) -> UpdateState:
    """The state before the first step (count 0)."""
    return UpdateState(
        jnp.asarray(0, jnp.int32), parts.direction.init(params), parts.rule.init(params, value, grad)
    )


def direction(
    parts: UpdateParts, grads: Grads, direction_state: PyTree, params: Params, *, value: Any = None,
    value_fn: Optional[Callable] = None,
) -> tuple[Grads, PyTree]:
    """``d = direction(clip(grads)) - l2 * params`` (decay only when decoupled), cast to ``params``' dtypes."""
    g = grads if parts.clip is None else clip_by_global_norm(grads, parts.clip)
    _check_keywords(parts.direction.name, parts.direction.update)
    out = parts.direction.update(g, direction_state, params, value=value, value_fn=value_fn)
    if not (isinstance(out, tuple) and len(out) == 2):  # (trace time: a user's Direction)
        raise TypeError(BAD_DIRECTION_UPDATE.format(name=parts.direction.name, got=_shape_of(out)))
    d, dstate = out
    d_spec, p_spec = _specs(d), _specs(params)
    if d_spec[0] != p_spec[0] or [sh for sh, _ in d_spec[1]] != [sh for sh, _ in p_spec[1]]:
        raise TypeError(BAD_DIRECTION_D.format(name=parts.direction.name, got=_describe(d), want=_describe(params)))
    _check_state(f"method={parts.direction.name!r}", dstate, direction_state)
    if parts.l2 is not None and parts.direction.decoupled_l2:
        d = _prox.decay(d, parts.l2, params)
    return _tree.cast_like(d, params), dstate


def _accept(accepts: Callable, grads: Grads, d: Grads, converged: Optional[Callable]) -> Callable[[_stepsize.Trial], jax.Array]:
    """``ctx.accept``: the direction's test of a trial, or the solver's stopping test there."""

    def accept(t: _stepsize.Trial) -> jax.Array:
        ok = jnp.asarray(accepts(_tree.cast_like(t.grad, grads), grads, d))
        return ok if converged is None else ok | converged(t)

    return accept


def move(parts: UpdateParts, params: Params, d: Grads, alpha: jax.Array) -> Params:
    """``prox_{alpha h}(params + alpha d)`` (in bfloat16 rounded for certain: :func:`jaxgd._tree.rounded`)."""
    return _tree.rounded(parts.prox.apply(_tree.add_scaled(params, alpha, d), alpha))


def update(
    parts: UpdateParts,
    grads: Grads,
    state: UpdateState,
    params: Params,
    *,
    value: jax.Array,
    value_fn: Callable[[Params], jax.Array],
    value_and_grad: Optional[Callable[[Params], tuple[jax.Array, Grads, Any]]] = None,
    converged: Optional[Callable[[_stepsize.Trial], jax.Array]] = None,
) -> tuple[_stepsize.Trial, UpdateState, jax.Array, _stepsize.StepInfo]:
    """One step from ``params`` (the objective there: ``value``, ``grads``).

    Args:
      parts: the method (:class:`UpdateParts`).
      grads: the gradient of the smooth objective at ``params`` (unclipped).
      state: the :class:`UpdateState`.
      params: the current iterate.
      value: the smooth objective at ``params``.
      value_fn: ``params -> value`` of the same objective (line searches).
      value_and_grad: ``params -> (value, grad, aux)`` to evaluate each
        trial point (a deterministic loop); ``None`` for a stochastic step,
        which evaluates nothing more: the rule must then be time-only (a
        schedule), and the returned trial carries the old value and grad.
      converged: ``trial -> bool``, the solver's stopping test at a trial
        (``gtol``): a direction's acceptance test (``Direction.accepts``)
        passes such a trial, as scipy's CG does.

    Returns:
      ``(trial, state, alpha, info)``: the new iterate (with its value,
      gradient and aux when evaluated), the new state, the step size and
      the rule's :class:`~jaxgd.core.stepsize.StepInfo` with the step's slope
      :math:`\\langle g, d \\rangle` (``info.slope``).
    """
    d, dstate = direction(parts, grads, state.direction_state, params, value=value, value_fn=value_fn)

    def moved(alpha: jax.Array) -> Params:
        return move(parts, params, d, alpha)

    def evaluate(alpha: jax.Array) -> _stepsize.Trial:
        p = moved(alpha)
        if value_and_grad is None:
            return _stepsize.Trial(p, value, grads, None)
        return _stepsize.Trial(p, *value_and_grad(p))
    slope_at = None
    if parts.prox.bounded:  # the path bends where the box stops entries: its slope over the others
        def slope_at(t: _stepsize.Trial) -> jax.Array:
            return _tree.vdot(t.grad, parts.prox.free_direction(t.params, d))
    ctx = _stepsize.StepContext(
        count=state.count,
        params=params,
        value=value,
        grad=grads,
        direction=d,
        slope=(_tree.vdot(grads, d) if slope_at is None else slope_at(_stepsize.Trial(params, value, grads, None)))
        .astype(_stepsize.search_dtype(jnp.result_type(value))),  # (float32 for a float16 loss)
        evaluate=evaluate,
        value_at=lambda alpha: value_fn(moved(alpha)),
        penalty_change=parts.prox.change if parts.prox.l1 is not None else None,
        accept=None if parts.direction.accepts is None else _accept(parts.direction.accepts, grads, d, converged),
        unit_grad=parts.direction.quasi_newton,
        slope_at=slope_at,
    )
    out = parts.rule.step(state.rule_state, ctx)
    if not (isinstance(out, tuple) and len(out) == 4 and isinstance(out[1], _stepsize.Trial)
            and all(hasattr(out[3], f) for f in ("nfev", "ngev", "failed"))):  # (trace time: a user's rule)
        raise TypeError(BAD_RULE_STEP.format(kind=type(parts.rule).__name__, got=_shape_of(out)))
    alpha, trial, rstate, info = out
    if jnp.ndim(alpha) != 0:
        raise TypeError(BAD_RULE_ALPHA.format(kind=type(parts.rule).__name__, shape=tuple(jnp.shape(alpha))))
    _check_state(f"lr (a {type(parts.rule).__name__})", rstate, state.rule_state)
    # (a StepInfo again: a rule may return any tuple with StepInfo's fields)
    info = _stepsize.StepInfo(info.nfev, info.ngev, info.failed, ctx.slope, getattr(info, "unit_sq_grad", None),
                              getattr(info, "unit_slope", None), getattr(info, "located", None), getattr(info, "noise", None),
                              getattr(info, "unseen", None))
    return trial, UpdateState(state.count + 1, dstate, rstate), alpha, info


def schedule_value(parts: UpdateParts, count: jax.Array) -> jax.Array:
    """The step size a time-only rule gives at ``count`` (for history records)."""
    return parts.rule.lr(count)


def traced_valid(parts: UpdateParts, tols: tuple = ()) -> Optional[jax.Array]:
    """Whether the hyperparameters of ``parts`` the host could not check (tracers: under ``jit``/``vmap``, or
    ``optax.inject_hyperparams``) are in range: a constant ``lr`` > 0 and finite, ``clip`` > 0, ``l2`` >= 0
    and finite, each of ``tols`` >= 0 (NaN is out of range). ``None`` where every one is concrete. The
    ``Solver``'s (:meth:`jaxgd.Solver.traced_valid`) and ``as_optax``'s test; the bounds and ``l1`` are
    :meth:`jaxgd.prox.operators.Prox.traced_valid`'s."""
    tests = []

    def test(value: Any, ok: Callable[[jax.Array], jax.Array]) -> None:
        if value is not None and not _tree.is_concrete(value):
            tests.extend(jnp.all(ok(jnp.asarray(v))) for v in _tree.leaves(value))

    for tol in tols:
        test(tol, lambda v: v >= 0)
    test(parts.l2, lambda v: (v >= 0) & jnp.isfinite(v))
    test(parts.clip, lambda v: v > 0)
    rule = parts.rule
    if isinstance(rule, _stepsize.ScheduleRule) and not callable(rule.schedule) \
            and not isinstance(rule.schedule, _tree.Static):
        test(rule.schedule, lambda v: (v > 0) & jnp.isfinite(v))
    return _tree.all_of(*tests) if tests else None


def keep_if(ok: jax.Array, new: Any, old: Any) -> Any:
    """The non-finite policy: ``new`` where ``ok``, else the last good ``old`` (leafwise)."""
    return _tree.where(ok, new, old)
