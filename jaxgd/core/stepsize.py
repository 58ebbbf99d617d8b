"""Step-size rules: the ``alpha_k`` of ``theta' = theta_k + alpha_k d_k``.

A rule is a pytree object (numeric hyperparameters are leaves, so a new value
never recompiles and ``jax.vmap`` can sweep it) with two pure methods:

- ``init(params, value, grad) -> state``;
- ``step(state, ctx) -> (alpha, trial, state, info)`` where ``ctx`` is a
  :class:`StepContext` and ``trial`` the :class:`Trial` accepted at
  ``alpha`` (its value and gradient are handed back to the loop, so a line
  search's last evaluation is never repeated).

Time-only schedules (a float, a jaxgd schedule pytree or any ``count -> lr``
callable, optax's included) become a :class:`ScheduleRule` in exactly one
place, :func:`as_rule`. State-aware rules (line searches, Barzilai-Borwein,
Polyak, reduce-on-plateau) live in ``jaxgd.linesearch``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._types import Grads, Params


class Trial(NamedTuple):
    """An evaluated candidate iterate: ``params = prox(theta + alpha d, alpha)``."""

    params: Params
    value: jax.Array
    grad: Grads
    aux: Any


class StepInfo(NamedTuple):
    """What a rule reports about one step."""

    nfev: jax.Array  # loss evaluations spent
    ngev: jax.Array  # gradient evaluations spent
    failed: jax.Array  # True when no acceptable step was found
    slope: Any = None  # <grad, d> the step started from: filled by jaxgd.core.update, not by the rule
    # the squared gradient norm at the first trial when that was a finite unit step (the quadratic model's
    # minimiser for a quasi-Newton direction), NaN otherwise; None from a rule that does not record it
    unit_sq_grad: Any = None
    # the slope <grad, d> at that unit first trial, NaN otherwise (None likewise)
    unit_slope: Any = None
    # the least t |<grad, d>| over the trials t whose slope is at most 1/100 of the first one's (a
    # trial at the line's minimiser, to that precision; the decrease to it is at most this along a
    # line where f is convex), inf without one (None likewise)
    located: Any = None
    # the largest change of f at a trial that moved x which the trial's slopes cannot explain (more than
    # NOISE_RATIO t (|phi'(0)| + |phi'(t)|): the error of f's own evaluation there), 0 without one (None likewise)
    noise: Any = None
    # (float32 and narrower) the first trial moved x and f did not fall below f0 minus the tie
    # tolerance, though t |<grad, d>| predicted more, or though the trial passed the line's minimiser
    # (its slope >= 0: a line whose slope rises falls by at most t |<grad, d>| before it): the
    # gradient does not describe f at the scale of the dtype's grid, or the line's whole fall is within
    # f's rounding (jaxgd.core.stall's grid rule); None from a rule that does not record it
    unseen: Any = None


class StepContext(NamedTuple):
    """What a step-size rule sees at step ``count``.

    Attributes:
      count: the step index ``k`` (``int32``, from 0).
      params, value, grad: the current iterate, its objective value and
        gradient (penalties included, before clipping).
      direction: the search direction ``d``.
      slope: the directional derivative ``<grad, d>``, in :func:`search_dtype` of
        ``value``'s dtype (float32 for a float16 loss, whose range it can leave).
      evaluate: ``alpha -> Trial``: move to ``prox(params + alpha d)`` and
        evaluate value and gradient there (one ``value_and_grad`` call).
      value_at: ``alpha -> value``: the objective alone at the same point
        (for searches that need no gradient).
      penalty_change: ``(new, old) -> h(new) - h(old)`` for the non-smooth
        term of the proximal step (``h = l1 ||theta||_1``), summed from
        elementwise differences so that it stays accurate when the change is
        tiny; ``None`` when there is no such term (the box indicator is 0 at
        every point a step produces). A search on the full objective adds it
        to the change in ``value``.
      accept: ``Trial -> bool``: whether the direction accepts a step to this
        trial (``cg``: the next direction is a sufficient descent direction,
        or the trial already meets ``gtol``); ``None`` when it accepts any.
        :class:`~jaxgd.linesearch.MoreThuente` with ``fallback=True`` tests
        it; other rules may ignore it.
      slope_at: ``Trial -> slope``: the derivative of
        :math:`\\alpha \\mapsto f(\\mathrm{prox}(\\theta + \\alpha d))` at a trial (from the right),
        where ``bounds`` hold some entries: :math:`\\langle g, d \\rangle` over the entries that still
        move (``slope`` is the same at ``params``); ``None`` without bounds. A rule that reads a
        trial's slope calls :func:`trial_slope`.
    """

    count: jax.Array
    params: Params
    value: jax.Array
    grad: Grads
    direction: Grads
    slope: jax.Array
    evaluate: Callable[[jax.Array], Trial]
    value_at: Callable[[jax.Array], jax.Array]
    penalty_change: Optional[Callable[[Params, Params], jax.Array]] = None
    accept: Optional[Callable[["Trial"], jax.Array]] = None
    # (static) record StepInfo.unit_sq_grad: set by core.update for a quasi-Newton direction, whose
    # precision rule reads it; other directions leave the search's loop without that work
    unit_grad: bool = False
    # Trial -> the slope of alpha -> f(prox(params + alpha d)) at the trial, from the right, where bounds
    # stop some entries of the move: <grad, d> over the entries the box does not hold (trial_slope);
    # None: <grad, d>. A search reading <grad, d> there fitted a line to a kinked path (gd with bounds and
    # MoreThuente ended STALLED at x = [0, 13.3] on sum((x - c)^2), c = [-2, 7], x >= 0)
    slope_at: Optional[Callable[["Trial"], jax.Array]] = None


def trial_slope(ctx: StepContext, t: Trial) -> jax.Array:
    """A trial's slope along the search's path: ``ctx.slope_at(t)`` where bounds can stop the move,
    else :math:`\\langle g_t, d \\rangle` (see :class:`StepContext`)."""
    return _tree.vdot(t.grad, ctx.direction) if ctx.slope_at is None else ctx.slope_at(t)


def half_precision(dtype: Any) -> bool:
    """True for a 16-bit float (float16, bfloat16): a loss whose searches take a tie tolerance of a
    few epsilons and tell trials apart by how far they moved ``x`` (``jaxgd.linesearch``)."""
    return jnp.finfo(dtype).bits <= 16


def narrow(dtype: Any) -> bool:
    """A value dtype narrower than float64, where a search records ``StepInfo.unseen``
    (``MoreThuente``, ``StrongWolfe``, ``Backtracking``) and ``MoreThuente`` with ``min_move``
    floors its interpolated first trial at a step that moves ``x`` (float64 programs stay as
    they are)."""
    return jnp.finfo(dtype).bits < 64


def shortest_move(x: Any, d: Any, dtype: Any) -> Any:
    """``eps / max_i(|d_i| / |x_i|)``: a step that moves some entry of ``x`` by ``eps |x_i|``, at
    least one ulp (``eps`` of ``dtype``; ``|x_i|`` floored at its smallest normal number, so that
    an entry at 0 gives a step near 0: any step moves it). A shorter trial moves no entry of ``x``
    by a whole ulp and mostly rounds back to ``x``: in float32, ``cg``'s interpolated first trial
    (eq. 3.60) near Rosenbrock's minimum moved ``x`` by 5e-9 where one ulp is 6e-8, and every search
    failed there (benchmarks/RESULTS.md, session 32). ``x``, ``d``: pytrees of arrays (or NumPy
    vectors: the host tier's search calls this with the same arithmetic)."""
    xp = np if isinstance(x, np.ndarray) else jnp
    eps, tiny = float(jnp.finfo(dtype).eps), float(jnp.finfo(dtype).tiny)
    with np.errstate(over="ignore", divide="ignore"):  # a huge ratio: the floor is 0; d = 0: inf (NumPy would warn)
        tops = [xp.max(xp.abs(di).astype(dtype) / xp.maximum(xp.abs(xi).astype(dtype), tiny))
                for xi, di in zip(_tree.leaves(x), _tree.leaves(d))]
        top = functools.reduce(xp.maximum, tops)
        return (xp.asarray(eps, dtype) / top).astype(dtype)


def unseen_at(first: Any, fin: Any, at_start: Any, f: Any, f0: Any, g: Any, g0: Any, stp: Any, tie_tol: Any) -> Any:
    """``StepInfo.unseen`` from a trial that is the search's ``first`` at step ``stp`` (value ``f``, slope ``g``;
    ``f0``, ``g0`` at 0): it is finite and moved ``x``, ``f`` did not fall below ``f0`` minus
    ``tie_tol``, and the slope predicted more (``stp |g0| > tie_tol``) or the trial passed the
    line's minimiser (``g >= 0``: a line whose slope rises falls by at most ``stp |g0|``). JAX or
    NumPy booleans (the host tier's search passes ``np.bool_``)."""
    return first & fin & ~at_start & ~(f < f0 - tie_tol) & ((stp * -g0 > tie_tol) | (g >= 0))


def first_unseen(ctx: "StepContext", stp: Any, f: Any, g: Any, f0: Any, g0: Any, tie_tol: Any) -> Any:
    """:func:`unseen_at` for a search's first trial at step ``stp`` (value ``f``, slope ``g``; ``f0``,
    ``g0`` at 0, all of ``stp``'s dtype), where whether it moved ``x`` is told from the step rather
    than by comparing the trial with ``x`` (that reduction, made at every trial of ``StrongWolfe``'s
    loop, made gd's small steps 1.6x slower on XLA:CPU): a step over half of :func:`shortest_move`
    moves some entry by more than half an ulp; a shorter one counts as one that did not
    (``Backtracking``, ``StrongWolfe``)."""
    moved = stp > 0.5 * shortest_move(ctx.params, ctx.direction, ctx.value.dtype).astype(stp.dtype)
    return unseen_at(True, jnp.isfinite(f) & jnp.isfinite(g), ~moved, f, f0, g, g0, stp, tie_tol)


def search_dtype(dtype: Any) -> Any:
    """The dtype a search's scalars (values, slopes, steps) are computed in for a loss of
    ``dtype``: float32 for float16, whose range ends at 65504 (the first slope ``<g, -g>`` of
    ``bfgs`` and ``cg`` overflowed it once ``||g|| > 256``: the search failed at ``x0``), else
    ``dtype`` itself (bfloat16 has float32's range). The trials' values stay the loss's: cast
    to it, they are exact."""
    return jnp.dtype(jnp.float32) if jnp.dtype(dtype) == jnp.float16 else jnp.dtype(dtype)


def rule_dtype(dtype: Any) -> Any:
    """The dtype an adaptive rule's scalars (its step, the values it keeps, its quotients) are
    computed in for a loss of ``dtype``: float32 for float16 and bfloat16, else ``dtype``. Polyak's
    quotient ``(f - f*) / ||g||^2`` overflowed float16 at ``||g|| > 256`` (a zero step, every
    step), and its running target ``min f - 0.01`` rounded back to ``min f`` in bfloat16 (a zero
    step again: the run sat at ``x0`` and the window called it converged); Barzilai-Borwein's
    ``s's`` underflows float16 below 6e-8."""
    return jnp.dtype(jnp.float32) if half_precision(dtype) else jnp.dtype(dtype)


def one_eval_info(failed: Any = False) -> StepInfo:
    # a constant False stays a NumPy constant: the solver then traces no failure handling (stall.adjust_status)
    failed = np.bool_(failed) if isinstance(failed, (bool, np.bool_)) else jnp.asarray(failed)
    return StepInfo(jnp.asarray(1, jnp.int32), jnp.asarray(1, jnp.int32), failed)


@_tree.pytree_class(data=("schedule",), meta=())
class ScheduleRule:
    """``alpha_k = schedule(k)``: a constant, a jaxgd schedule or any callable."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: Any) -> None:
        object.__setattr__(self, "schedule", schedule)

    def lr(self, count: jax.Array) -> jax.Array:
        s = self.schedule
        if isinstance(s, _tree.Static):
            return jnp.asarray(s.value(count))
        if callable(s):
            return jnp.asarray(s(count))
        return jnp.asarray(s)

    def init(self, params: Params, value: jax.Array, grad: Grads) -> tuple:
        return ()

    def step(self, state: tuple, ctx: StepContext) -> tuple[jax.Array, Trial, tuple, StepInfo]:
        alpha = self.lr(ctx.count)
        if callable(self.schedule) or isinstance(self.schedule, _tree.Static):
            # a schedule gone negative mid-run (a linear decay past zero; only lr(0) is checked before the run)
            # climbed (a loss of 5.8e5 from 0.23): a step of 0 instead. Not a failure: optax.linear_schedule(a, 0, n)
            # compiled reads -2.6e-9 a at its end (XLA's rounding), which a NaN step made NONFINITE
            alpha = jnp.maximum(alpha, jnp.zeros((), alpha.dtype))  # (NaN stays NaN: NONFINITE, as before)
        return alpha, ctx.evaluate(alpha), state, one_eval_info()

    def __repr__(self) -> str:
        return f"ScheduleRule({self.schedule!r})"


def is_rule(obj: Any) -> bool:
    """True for state-aware step-size rules (anything with ``init`` and ``step``)."""
    return callable(getattr(obj, "init", None)) and callable(getattr(obj, "step", None))


def _is_pytree_callable(obj: Any) -> bool:
    """A callable whose numbers are pytree leaves (a jaxgd schedule)."""
    leaves, _ = jax.tree_util.tree_flatten(obj)
    return not (len(leaves) == 1 and leaves[0] is obj)


def as_rule(lr: Any) -> Any:
    """Convert ``lr=`` (float, schedule or rule) into a step-size rule, once.

    A float stays a traced leaf; a jaxgd schedule keeps its numbers as leaves;
    any other callable (an optax schedule, a lambda) rides in the static part.
    """
    if is_rule(lr):
        return lr
    lr = _tree.as_float_if_number(lr)
    if callable(lr) and not _is_pytree_callable(lr):
        return ScheduleRule(_tree.Static(lr))
    return ScheduleRule(lr)
