"""``jaxgd.as_optax``: jaxgd's step (direction x step size x proximal step) as an optax transformation.

The transformation runs :func:`jaxgd.core.update.update`, the very function
``minimize``'s loop and ``fit`` call, inside a user's own training loop
(a plain optax loop, ``nnx.Optimizer``, an Equinox loop). Its ``update``
takes ``value``, ``grad`` and ``value_fn`` as keyword arguments, like
``optax.lbfgs``, and its state exposes ``value`` and ``grad`` (the loss and
gradient at the point it moved to), so ``optax.value_and_grad_from_state``
re-uses a line search's last evaluation instead of computing it again.

What differs from ``minimize`` is only what a loop around the step owns:
there are no termination tests, no history and no progress bar (the loop
is the user's), and ``x0`` is not projected into ``bounds`` (start inside).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from .. import _tree, _validate
from .._types import ArrayLike, Params, PyTree
from ..core import loss_check as _loss_check
from ..core import options as _options
from ..core import stepsize as _stepsize
from ..core import update as _update
from ..core.options import default as _D
from ..core.status import Status
from . import models as _models
from ..directions.lbfgsb import LbfgsbSearch
from ..prox.operators import checked_weights, l2_penalty

NEEDS_EXTRA = (
    "as_optax(lr={rule}).update needs {missing}: the loss at params (value=) and the loss as a "
    "function of params (value_fn=), passed as keywords as for optax.lbfgs, e.g. "
    "value, grad = optax.value_and_grad_from_state(loss)(params, state=state); "
    "tx.update(grad, state, params, value=value, grad=grad, value_fn=loss)"
)
NEEDS_PARAMS = "as_optax(...).update needs params (the current parameters), got params=None"
NOT_OUR_STATE = (
    "as_optax(...).update: state must be the state this transformation's init returned (an AsOptaxState), "
    "got {got}: a state from another optimizer (optax.adam's init) does not carry as_optax's fields"
)
OTHER_STATE = (
    "as_optax(...).update: state holds another transformation's {what} state ({found}, where this one, method "
    "{method!r} with {rule}, keeps {expected}): pass the state this transformation's own init returned "
    "(another jaxgd method's as_optax state, or one made by as_optax with other settings, does not fit)"
)
VALUE_NOT_SCALAR = (
    "as_optax(...).update: value must be the loss at params, a real scalar; got shape {shape} (a loss per "
    "example: pass its mean or sum, the number value_fn returns)"
)
VALUE_FN_NOT_SCALAR = "as_optax(...).update: value_fn must return the loss alone, a real scalar; it returned {got}"
VALUE_FN_PAIR = " (a loss returning (loss, aux): pass value_fn=lambda p: loss(p)[0])"
VALUE_FN_ARRAY = " (a loss per example: return its mean or sum)"
UPDATES_NOT_LIKE_PARAMS = (
    "as_optax(...).update: updates (the gradient of the loss at params) must be shaped like params: {detail}"
)
MASKED_SEARCH = (
    "as_optax(lr={rule}) under optax.multi_transform or optax.masked (params holds optax.MaskedNode) cannot "
    "take its steps: its rule evaluates the loss at trial points of all the parameters, which value_fn cannot "
    "be called at here. Use a float or schedule lr for a masked part, or one as_optax over all the "
    "parameters (or jaxgd.minimize) for a line search, Barzilai-Borwein, Polyak or lbfgs/bfgs/cg"
)
MASKED_VALUE_FN = (
    "as_optax(...).update got value_fn, but params holds optax.MaskedNode (as_optax under optax.multi_transform "
    "or optax.masked): value_fn cannot be evaluated at part of the parameters. There, use a float or schedule "
    "lr and pass no value_fn; for a line search, Barzilai-Borwein, Polyak or lbfgs/bfgs/cg, use one as_optax "
    "over all the parameters (or jaxgd.minimize)"
)
NO_ACCELERATED = "as_optax does not take accelerated=; FISTA momentum needs the loop's previous iterate (use minimize)"
NO_LBFGSB = (
    "as_optax cannot run method='lbfgs' with bounds=: that is L-BFGS-B, whose step (generalised Cauchy point, "
    "subspace minimisation, projected search over the flattened parameters) lives in jaxgd's own loop. Use "
    "jaxgd.minimize or jaxgd.Solver for L-BFGS-B, or a first-order method (gd, adam, ...) with lr= and bounds="
)


@jax.tree_util.register_pytree_node_class
class Inner:
    """A state nested inside :class:`AsOptaxState`, flattened to its leaves.

    ``optax.value_and_grad_from_state`` looks for the one field named
    ``value``/``grad`` in every NamedTuple of the state; the rules' own states
    have such fields (``BBState.grad``), so they are kept out of its sight.
    """

    __slots__ = ("leaves", "treedef")

    def __init__(self, tree: PyTree) -> None:
        self.leaves, self.treedef = jax.tree_util.tree_flatten(tree)

    @property
    def tree(self) -> PyTree:
        return jax.tree_util.tree_unflatten(self.treedef, self.leaves)

    def tree_flatten(self) -> tuple[list, Any]:
        # The children are the leaves as stored (a library that maps the state's
        # leaves, as nnx.Optimizer does, gets back what it put in).
        return list(self.leaves), self.treedef

    @classmethod
    def tree_unflatten(cls, treedef: Any, leaves: Any) -> "Inner":
        new = object.__new__(cls)
        new.leaves, new.treedef = list(leaves), treedef
        return new

    def __repr__(self) -> str:
        return f"Inner({self.tree!r})"


def _register_flax() -> None:
    """Let ``flax.serialization`` (``to_bytes``/``from_bytes``, a ``TrainState``) walk :class:`Inner` as it walks
    a pytree, where Flax is imported (``TypeError: can not serialize 'Inner' object`` before); jaxgd does
    not import Flax itself."""
    global _FLAX_REGISTERED
    serialization = sys.modules.get("flax.serialization")
    if serialization is None or _FLAX_REGISTERED:
        return

    def to_state(inner: Inner) -> dict:
        return {str(i): serialization.to_state_dict(leaf) for i, leaf in enumerate(inner.leaves)}

    def from_state(target: Inner, state: dict) -> Inner:
        leaves = [serialization.from_state_dict(leaf, state[str(i)]) for i, leaf in enumerate(target.leaves)]
        return Inner.tree_unflatten(target.treedef, leaves)

    serialization.register_serialization_state(Inner, to_state, from_state, override=True)
    _FLAX_REGISTERED = True


_FLAX_REGISTERED = False


class AsOptaxState(NamedTuple):
    """The transformation's state (a pytree; a stable ``scan``/``while_loop`` carry).

    Attributes:
      count: steps taken (``int32``; a step that was not taken does not count).
      direction_state: the direction's state (Adam's moments, the L-BFGS
        memory...) in an :class:`Inner`.
      rule_state: the step-size rule's state in an :class:`Inner`.
      value: the loss (``value_fn``, without the ``l2`` penalty) at the
        parameters the last update moved to; ``inf`` when it was not evaluated
        (a schedule without ``value_fn``), so that
        ``optax.value_and_grad_from_state`` evaluates it afresh.
      grad: its gradient (zeros when not evaluated).
      status: :class:`jaxgd.Status` of the last update: ``RUNNING``,
        ``NONFINITE`` (the step was not taken: zero updates),
        ``LINESEARCH_FAILED`` (ditto) or ``INVALID_ARGUMENT`` (a traced
        ``lr``, ``clip``, ``l2``, ``l1`` or bound out of range; ditto).
    """

    count: jax.Array
    direction_state: Inner
    rule_state: Inner
    value: jax.Array
    grad: PyTree
    status: jax.Array


class _Parts(NamedTuple):
    """The :class:`jaxgd.core.update.UpdateParts` of the transformation."""

    direction: Any
    rule: Any
    prox: Any
    l2: Any
    clip: Any


def _no_loss(params: Any, *args: Any) -> Any:  # solver_fields wants a callable; the user's loop owns the loss
    raise AssertionError("as_optax holds no loss function")


def _pure(tree: PyTree) -> PyTree:
    """The arrays of a parameter pytree: ``nnx.Optimizer`` calls ``init`` with
    ``nnx.Param`` variables around them, ``update`` with the bare arrays."""
    nnx = sys.modules.get("flax.nnx")  # never imported here: only a Flax user can have passed one
    return tree if nnx is None else nnx.as_pure(tree)


def _value_dtype(params: Params) -> Any:
    """The dtype the state keeps the loss in: the parameters', at least float32 (a float32 loss of half-precision
    parameters, mixed precision, kept in float16 let a Backtracking run's loss rise; optax's value_and_grad_from_state
    refused the float32 loss against a bfloat16 state; a 16-bit loss is exact in float32)."""
    return jnp.promote_types(jnp.result_type(*jax.tree_util.tree_leaves(params)), jnp.float32)


def _penalised(parts: _Parts, value_fn: Callable[[Params], jax.Array]) -> Callable:
    """``p -> (value + l2 penalty, its gradient, (value, grad))`` of the smooth objective (minimize's objective)."""

    def value_and_grad(p: Params) -> tuple[jax.Array, PyTree, tuple]:
        raw_value, raw_grad = jax.value_and_grad(value_fn)(p)
        value, grad = _add_l2(parts, p, jnp.asarray(raw_value), raw_grad)
        return value, grad, (raw_value, raw_grad)

    return value_and_grad


def _add_l2(parts: _Parts, params: Params, value: jax.Array, grad: PyTree) -> tuple[jax.Array, PyTree]:
    """The L2 penalty ``l2/2 ||p||^2`` added to a loss and its gradient (not for decoupled decay)."""
    if parts.l2 is None or parts.direction.decoupled_l2:
        return value, grad
    pen, pen_grad = jax.value_and_grad(lambda p: l2_penalty(parts.l2, p))(params)
    return value + pen.astype(value.dtype), _tree.cast_like(jax.tree_util.tree_map(jnp.add, grad, pen_grad), grad)


def _check_state_kind(parts: _Parts, state: AsOptaxState, params: Params) -> None:
    """Raise :data:`OTHER_STATE` where ``state`` holds another transformation's direction or rule state (another
    jaxgd method's init: an ``AsOptaxState`` all the same, whose fields the step then failed to read)."""
    expected = jax.eval_shape(lambda p: _init(parts, p), params)
    for what, got, want in (("direction", state.direction_state, expected.direction_state),
                            ("step-size rule", state.rule_state, expected.rule_state)):
        if got.treedef != want.treedef:
            raise TypeError(OTHER_STATE.format(what=what, found=_state_name(got.treedef),
                                               expected=_state_name(want.treedef), method=parts.direction.name,
                                               rule=type(parts.rule).__name__))


def _state_name(treedef: Any) -> str:
    """A state's type name from its tree structure (``LbfgsState``), else the structure itself."""
    if treedef == jax.tree_util.tree_structure(()):
        return "no state, ()"  # (a constant lr's rule: ScheduleRule keeps none)
    data = treedef.node_data()
    return getattr(data[0], "__name__", str(treedef)) if data else str(treedef)


def _init(parts: _Parts, params: Params) -> AsOptaxState:
    given, params = params, _pure(params)
    _validate.params("params", params)  # minimize's policy: a non-empty pytree of real float arrays
    parts.prox.check(params)
    if parts.l2 is not None:
        checked_weights(parts.l2, params, "l2")
    dtype = _value_dtype(params)
    value, grad = jnp.asarray(jnp.inf, dtype), _tree.tmap(jnp.zeros_like, params)
    return AsOptaxState(
        count=jnp.asarray(0, jnp.int32),
        direction_state=Inner(parts.direction.init(params)),
        rule_state=Inner(parts.rule.init(params, value, grad)),  # replaced at the first update (needs the loss)
        value=value,
        grad=_like(grad, given),  # (the caller's structure: optax.value_and_grad_from_state reads it)
        status=jnp.asarray(Status.RUNNING, jnp.int32),
    )


VALUE_FN_FAILED = (
    "as_optax(...).update: value_fn(params), called with the params given to update, failed ({kind}: {err}); "
    "value_fn must be the loss as a function of those params, in their structure{hint}"
)
VALUE_FN_EQX = (
    ": params is an Equinox partition here (eqx.partition's or eqx.filter's, None at the module's functions "
    "and other non-trained fields), so pass value_fn=lambda p: loss(eqx.combine(p, static)) with "
    "params, static = eqx.partition(model, eqx.is_inexact_array)"
)


def _check_value_fn(value_fn: Callable, params: Params) -> None:
    """Call ``value_fn`` on ``params`` through ``jax.eval_shape`` (at trace time, nothing computed): a loss
    of the whole model given an Equinox partition raised a bare "'NoneType' object is not callable"."""
    try:
        out = jax.eval_shape(value_fn, params)
    except (TypeError, AttributeError) as err:
        hint = VALUE_FN_EQX if _models.kind(params) == "eqx" else ""
        raise TypeError(VALUE_FN_FAILED.format(kind=type(err).__name__, err=err, hint=hint)) from err
    if not _loss_check.real_scalar(out):
        got = (f"a {type(out).__name__} of {len(out)}" if isinstance(out, (tuple, list)) else
               f"shape {tuple(out.shape)}, dtype {out.dtype}" if hasattr(out, "shape") else type(out).__name__)
        pair = isinstance(out, (tuple, list))
        raise TypeError(VALUE_FN_NOT_SCALAR.format(got=got) + (VALUE_FN_PAIR if pair else VALUE_FN_ARRAY))


def _check_updates(updates: PyTree, params: Params) -> None:
    """``updates`` (the gradient) in ``params``' structure, leaf by leaf of its shape (an
    ``optax.MaskedNode`` where ``params`` has one): "add got incompatible shapes" said neither."""
    masked = lambda v: isinstance(v, optax.MaskedNode)  # noqa: E731
    got, want = (jax.tree_util.tree_flatten_with_path(t, is_leaf=masked) for t in (updates, params))
    if got[1] != want[1]:
        detail = f"its structure is {got[1]}, params' {want[1]}"
        raise ValueError(UPDATES_NOT_LIKE_PARAMS.format(detail=detail))
    for (path, u), (_, p) in zip(got[0], want[0]):
        if not masked(p) and jnp.shape(u) != jnp.shape(p):
            detail = f"leaf {_tree.leaf_path(path)} has shape {tuple(jnp.shape(u))}, params' {tuple(jnp.shape(p))}"
            raise ValueError(UPDATES_NOT_LIKE_PARAMS.format(detail=detail))


def _like(tree: PyTree, template: PyTree) -> PyTree:
    """``tree``'s arrays in ``template``'s structure (``nnx.Param`` variables around them, or none)."""
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), jax.tree_util.tree_leaves(tree))


def _update_variables(parts: _Parts, updates: PyTree, state: AsOptaxState, params: Optional[Params], extra: dict):
    """:func:`_update_fn` where Flax NNX is loaded: parameters and gradients given as an ``nnx.State``
    of ``nnx.Param`` (``nnx.split``'s, in a plain optax loop) run as their bare arrays; the updates
    come back in the structure of the ``updates`` given, the state's gradient in its own, and
    ``value_fn`` is called with the caller's structure. (``nnx.Optimizer`` passes bare arrays: nothing
    changes there.)"""
    value_fn = extra.get("value_fn")
    if value_fn is not None and params is not None:
        extra = {**extra, "value_fn": lambda p: value_fn(_like(p, params))}
    pure = None if params is None else _pure(params)
    step, new_state = _update_fn(parts, _pure(updates), state._replace(grad=_pure(state.grad)), pure, **extra)
    return _like(step, updates), new_state._replace(grad=_like(new_state.grad, state.grad))


def _update_fn(
    parts: _Parts, updates: PyTree, state: AsOptaxState, params: Optional[Params] = None, *,
    value: Optional[ArrayLike] = None, grad: Any = None, value_fn: Optional[Callable] = None, **extra: Any,
) -> tuple[PyTree, AsOptaxState]:
    """One jaxgd step from ``params``; ``updates`` is the gradient of ``value_fn`` there."""
    del grad, extra  # ``updates`` is the gradient (optax's convention); other extras are not ours
    if params is None:
        raise ValueError(NEEDS_PARAMS)
    time_only = isinstance(parts.rule, _stepsize.ScheduleRule)
    masked = any(isinstance(v, optax.MaskedNode) for v in jax.tree_util.tree_leaves(
        params, is_leaf=lambda v: isinstance(v, optax.MaskedNode)))
    if masked and value_fn is not None:
        raise ValueError(MASKED_VALUE_FN)
    if masked and not time_only:
        raise ValueError(MASKED_SEARCH.format(rule=type(parts.rule).__name__))
    _check_updates(updates, params)
    if value is not None and jnp.ndim(value) != 0:
        raise TypeError(VALUE_NOT_SCALAR.format(shape=tuple(jnp.shape(value))))
    if value_fn is not None:
        _check_value_fn(value_fn, params)
    params = _tree.tmap(jnp.asarray, params)  # (a Python float leaf, as optax's transformations take it)
    missing = [n for n, v in (("value", value), ("value_fn", value_fn)) if v is None]
    if missing and not time_only:
        raise TypeError(NEEDS_EXTRA.format(rule=type(parts.rule).__name__, missing=" and ".join(missing)))
    dtype = state.value.dtype
    raw_value = jnp.asarray(jnp.inf if value is None else value).astype(dtype)
    raw_grad = _tree.cast_like(updates, params)
    total_value, total_grad = _add_l2(parts, params, raw_value, raw_grad)
    evaluate = None if value_fn is None else _penalised(parts, value_fn)
    total_fn = None if evaluate is None else (lambda p: evaluate(p)[0])
    try:
        # The rule's first state needs the loss at the first iterate (minimize's init).
        first = parts.rule.init(params, total_value, total_grad)
        old_rule = state.rule_state.tree
        rule_state = _tree.where(state.count == 0, _tree.cast_like(first, old_rule), old_rule)
        ustate = _update.UpdateState(state.count, state.direction_state.tree, rule_state)
        trial, ustate, _, info = _update.update(
            parts, total_grad, ustate, params, value=total_value, value_fn=total_fn, value_and_grad=evaluate
        )
    except (AttributeError, TypeError, ValueError):  # (the checks below only once a step failed: no cost per step)
        _check_state_kind(parts, state, params)
        raise
    new_params = _tree.cast_like(trial.params, params)
    finite = _tree.all_finite(new_params)
    if evaluate is None:
        new_value, new_grad = jnp.asarray(jnp.inf, dtype), _tree.tmap(jnp.zeros_like, params)
    else:
        new_value, new_grad = jnp.asarray(trial.aux[0]).astype(dtype), _tree.cast_like(trial.aux[1], params)
        finite = finite & jnp.isfinite(trial.value) & _tree.all_finite(trial.grad)
    failed = jnp.asarray(info.failed)
    # A traced hyperparameter out of range (optax.inject_hyperparams' lr=-0.01, a vmapped clip=-1: the loss
    # climbed with status RUNNING): no step, INVALID_ARGUMENT, as Solver.init's test makes a run's first status
    valid = _tree.all_of(_update.traced_valid(parts), parts.prox.traced_valid(params))  # (None: all checked)
    ok = finite & ~failed if valid is None else finite & ~failed & valid
    accept = _tree.shared(ok, params)  # (computed once, not in each leaf's select)
    status = jnp.where(failed, Status.LINESEARCH_FAILED, jnp.where(finite, Status.RUNNING, Status.NONFINITE))
    kept_direction = state.direction_state
    if parts.direction.reset is not None:
        # minimize's restart (Solver.step; L-BFGS-B's): a failed search with a curvature memory is not
        # taken, and the next update retries from the same point without the memory (status RUNNING)
        fresh, had_memory = parts.direction.reset(ustate.direction_state)
        retry = failed & had_memory if valid is None else failed & had_memory & valid
        status = jnp.where(retry, Status.RUNNING, status)
        kept_direction = _tree.where(retry, Inner(fresh), kept_direction)
    if valid is not None:
        status = jnp.where(valid, status, Status.INVALID_ARGUMENT)
    taken = AsOptaxState(
        ustate.count, Inner(ustate.direction_state), Inner(ustate.rule_state), new_value, new_grad, state.status
    )
    kept = AsOptaxState(state.count, kept_direction, state.rule_state, raw_value, raw_grad, state.status)
    new_state = _update.keep_if(accept, taken, kept)._replace(status=status.astype(jnp.int32))
    step = _update.keep_if(accept, _tree.sub(new_params, params), _tree.tmap(jnp.zeros_like, params))
    return step, new_state


@_options.document
def as_optax(
    method: Any = _D("method"),
    lr: Any = _D("lr"),
    *,
    l1: Optional[ArrayLike] = None,
    l2: ArrayLike = _D("l2"),
    bounds: Any = _D("bounds"),
    clip: Optional[ArrayLike] = _D("clip"),
    **unknown: Any,
) -> optax.GradientTransformationExtraArgs:
    """jaxgd's step as an ``optax.GradientTransformationExtraArgs``, for a loop you already have.

    Each ``update`` takes one step of ``minimize``'s, through the same
    update function:

    .. math::
       d_k = \\mathrm{direction}(\\mathrm{clip}(g_k)),\\quad
       \\alpha_k = \\mathrm{rule}(k, \\ldots),\\quad
       \\theta_{k+1} = \\mathrm{prox}_{\\alpha_k h}(\\theta_k + \\alpha_k d_k)

    and returns ``updates = theta_{k+1} - theta_k``, so ``optax.apply_updates``
    lands on the iterate ``jaxgd.minimize`` would reach (step for step, to
    rounding). ``update(updates, state, params, *, value, grad, value_fn)``
    takes the gradient as ``updates`` and, as ``optax.lbfgs`` does, the loss
    at ``params`` (``value``) and the loss as a function of the parameters
    (``value_fn``): line searches, Barzilai-Borwein, Polyak and
    reduce-on-plateau need both (not under ``optax.multi_transform`` or
    ``optax.masked``, whose ``MaskedNode`` parameters ``value_fn`` cannot take); a float or schedule ``lr`` needs neither,
    but with ``value_fn`` the new point is evaluated (as in ``minimize``) and
    a non-finite loss there rejects the step. The state's ``value`` and
    ``grad`` hold that evaluation: ``optax.value_and_grad_from_state(loss)``
    re-uses it. So the transformation goes last in an ``optax.chain``: one
    after it changes the updates, the parameters land elsewhere, and the
    state's value and gradient are those of a point they never reached. One
    before it that changes the gradient (clipping) is fine with a float or
    schedule ``lr`` and a first-order method; a line search, Barzilai-Borwein,
    Polyak and ``lbfgs``/``bfgs``/``cg`` read ``value_fn``'s own gradients at
    their trials, which it never sees: give them ``clip=`` instead. Non-finite policy (as in ``minimize``): a step whose outcome
    is not finite, or a failed line search, is not taken (zero updates) and
    ``state.status`` says why; as in ``minimize``, a failed search of ``bfgs``
    or ``lbfgs`` with a curvature memory drops the memory instead, so the next
    update retries along the gradient (status ``RUNNING``). ``l2`` is a penalty on ``value_fn`` (the
    gradient passed in is that of the loss alone), decoupled decay with
    ``adamw``. Start inside ``bounds`` (``minimize`` projects ``x0``; a loop
    it does not own cannot). The numbers are baked into the transformation
    when a jitted step closes over it, as for any optax transformation.
    ``optax.inject_hyperparams(jaxgd.as_optax)`` makes ``lr``, ``l2`` and ``clip``
    hyperparameters (``l1`` defaults to None, off, which it leaves static: a traced
    ``l1`` is one that may be on, which only ``gd`` takes); such a traced value (or one
    under ``jax.jit``/``jax.vmap``) out of range, which the host cannot refuse, makes an
    update take no step with status ``INVALID_ARGUMENT``. A loss that changes every
    update (a new minibatch, a new rollout) has no value to carry over: pass ``value``
    and ``grad`` evaluated afresh on this update's data (``jax.value_and_grad``, not
    ``optax.value_and_grad_from_state``, which hands back the previous data's: a line
    search then compares two batches' losses and rejects most steps), with ``value_fn``
    on the same data; a line search on such a loss searches a noisy function, and a
    schedule ``lr`` (with ``adam`` or ``gd``) is the usual choice there. A Flax ``TrainState``
    holding the state serialises (``flax.serialization``) once Flax is imported.

    Args:
      {options:method,lr,l1,l2,bounds,clip}
        In ``as_optax`` the start is not projected into ``bounds`` (start
        inside them), ``lbfgs`` with ``bounds`` (L-BFGS-B, which needs its
        own loop) is refused, and there is no ``accelerated``.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state's ``status`` is the
      :class:`Status` of the last update: ``RUNNING``, ``NONFINITE``,
      ``LINESEARCH_FAILED`` or ``INVALID_ARGUMENT`` (those three: the step was not taken,
      zero updates). There is
      no ``gtol`` here: at an exactly stationary point (a zero gradient) a line search
      finds no step that lowers the loss and reads ``LINESEARCH_FAILED``, where
      ``minimize`` stops ``GTOL`` first; your loop's own gradient test decides.

    Raises:
      TypeError: an unknown keyword (close spellings suggested), ``method``
        or ``lr`` of the wrong kind; at ``init``, a parameter leaf that is
        not a real floating array; at ``update``, a state-aware ``lr``
        without ``value``/``value_fn``, a state that another transformation's
        ``init`` made (another optimizer's, another jaxgd method's).
      ValueError: a bad value (names the argument); at ``update``, a
        ``value_fn`` with ``optax.MaskedNode`` parameters (multi_transform); an optax transformation
        as ``method`` with a float or schedule ``lr``; at ``init``, empty
        parameters, or ``l1``, ``l2`` or ``bounds`` pytrees that do not fit
        the parameters; at
        ``update``, no ``params``; ``method="lbfgs"`` with ``bounds`` (L-BFGS-B
        runs in ``minimize``'s loop only).

    Example:
      >>> import jax.numpy as jnp, optax, jaxgd
      >>> loss = lambda x: jnp.sum((x - 3.0) ** 2)
      >>> tx = jaxgd.as_optax("gd", lr=jaxgd.linesearch.Backtracking())
      >>> x = jnp.zeros(2)
      >>> state = tx.init(x)
      >>> value_and_grad = optax.value_and_grad_from_state(loss)
      >>> for _ in range(3):
      ...     value, grad = value_and_grad(x, state=state)
      ...     updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=loss)
      ...     x = optax.apply_updates(x, updates)
      >>> print(x)
      [3. 3.]
    """
    if unknown.pop("accelerated", None):
        raise TypeError(NO_ACCELERATED)
    _options.check_keywords("as_optax", unknown, _KEYWORDS)
    defaults = {n: _D(n) for n in _options.SOLVER_OPTIONS}
    # (l1=None by default, not the options' 0.0: optax.inject_hyperparams injects every numeric default, and
    # a traced l1 counts as on, refused beside any method but gd: a jitted step of adam failed)
    l1 = _D("l1") if l1 is None else l1
    fields = _options.solver_fields(
        _no_loss, method, lr, **{**defaults, "l1": l1, "l2": l2, "bounds": bounds, "clip": clip}
    )
    _register_flax()
    if isinstance(fields["rule"], LbfgsbSearch):  # its step is the solver's hook (jaxgd.directions.lbfgsb)
        raise ValueError(NO_LBFGSB)
    parts = _Parts(fields["direction"], fields["rule"], fields["prox"], fields["l2"], fields["clip"])

    def init(params: Params) -> AsOptaxState:
        _register_flax()  # (Flax imported after as_optax was called)
        return _init(parts, params)

    def update(updates: PyTree, state: AsOptaxState, params: Optional[Params] = None, **extra: Any):
        if not isinstance(state, AsOptaxState):
            raise TypeError(NOT_OUR_STATE.format(got=type(state).__name__))
        if "flax.nnx" in sys.modules:  # (a Flax user: parameters may come as nnx.Param variables)
            return _update_variables(parts, updates, state, params, extra)
        return _update_fn(parts, updates, state, params, **extra)

    return optax.GradientTransformationExtraArgs(init, update)


_KEYWORDS = _options.keywords(as_optax) + ("method", "lr")
# The signature callers read has no catch-all: optax.inject_hyperparams binds the factory's signature
# and passed **unknown back as unknown={} (a TypeError); the catch-all stays for the pointers an unknown
# keyword gets (check_keywords)
as_optax.__signature__ = inspect.signature(as_optax).replace(parameters=[
    p for p in inspect.signature(as_optax).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD])
