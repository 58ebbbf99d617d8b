"""Line searches: backtracking Armijo and strong Wolfe (zoom), inside the jitted loop.

Each rule is a pytree object (the :class:`jaxgd.protocols.StepSizeRule` protocol): its numeric
hyperparameters (``c1``, ``c2``, factors, iteration caps) are leaves, so a
new value re-uses the compiled loop and ``jax.vmap`` can sweep them; only
the choice of strategy (a ``None`` versus a number) changes the structure.
Every trial goes through ``ctx.evaluate`` (one ``value_and_grad``), and the
accepted trial is handed back to the loop, so nothing is evaluated twice;
``StepInfo`` counts exactly the evaluations made.

A trial whose value or gradient is NaN or Inf counts as "too long": the
search backs off from it and never accepts it. A search that finds no
acceptable step reports ``failed=True`` and the solver stops with
``Status.LINESEARCH_FAILED`` at the last accepted iterate.

The exact line search lives in ``_exact.py``; Barzilai-Borwein, Polyak and
reduce-on-plateau in ``_adaptive.py``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from .. import _tree, _validate
from ..core import packing as _packing
from ..core.stepsize import (StepContext, StepInfo, Trial, first_unseen, half_precision, narrow, search_dtype,
                             trial_slope)
from .._types import ArrayLike, Grads, Params

BAD_OPEN_UNIT = "{name} must lie in (0, 1), got {name}={value!r}"
BAD_POSITIVE = "{name} must be > 0 and finite, got {name}={value!r}"
BAD_NONNEG = "{name} must be >= 0 and finite, got {name}={value!r}"
BAD_GREATER = "{name} must be > {bound}, got {name}={value!r}"
BAD_COUNT = "{name} must be {what}, got {name}={value!r}"
INT32_MAX = 2**31 - 1
BAD_C2 = "c2 must lie in (c1, 1), got c1={c1!r}, c2={c2!r}"
BAD_NUMBER = "{name} must be a real number or a real scalar array, got {name}={value!r}"
BAD_FINITE = "{name} must be None or a finite number, got {name}={value!r}"

# A non-finite trial in a single-evaluation rule is retried this many times,
# halving the step each time (``evaluate_finite``).
NAN_BACKOFF = 30
# The default tie tolerance of the searches (Backtracking, StrongWolfe, MoreThuente, L-BFGS-B's), in
# units of the dtype's machine epsilon: float32 and float64 ...
APPROX_EPS = 64
# ... and float16 and bfloat16, whose sums XLA:CPU accumulates in float32: their losses (least squares,
# logistic regression, Rosenbrock) evaluate to within 0.8-1.2 eps |f| of the exact value of the same
# parameters, where 64 eps is 6 % of |f| in float16 and half of it in bfloat16: a search accepted rises
# of f that large as ties, and a stall count saw no progress in falls of several ulps (benchmarks/RESULTS.md, session 34).
APPROX_EPS_HALF = 4


def approx_eps(dtype: Any) -> int:
    """The default tie tolerance in machine epsilons of ``dtype``: :data:`APPROX_EPS_HALF` for a
    16-bit float, else :data:`APPROX_EPS`."""
    return APPROX_EPS_HALF if half_precision(dtype) else APPROX_EPS


# -- host-side checks (jaxgd._validate's policy; tracers pass unchecked) --------
def _concrete(value: Any, name: str = "value") -> Optional[float]:
    """The value of a real number or scalar array as a float; None for a tracer.

    Raises:
      TypeError: a bool, string, None, complex or otherwise non-real value.
      ValueError: an array whose shape is not ``()``.
    """
    return _validate.value_of(name, value, BAD_NUMBER)


def check_finite(name: str, value: ArrayLike) -> Any:
    return _validate.finite(name, value, BAD_FINITE, type_message=BAD_NUMBER)


def check_open_unit(name: str, value: ArrayLike) -> Any:
    return _validate.open_unit(name, value, BAD_OPEN_UNIT, type_message=BAD_NUMBER)


def check_positive(name: str, value: ArrayLike, allow_inf: bool = False) -> Any:
    return _validate.positive(name, value, BAD_POSITIVE, allow_inf=allow_inf, type_message=BAD_NUMBER)


def check_greater(name: str, value: ArrayLike, bound: float) -> Any:
    return _validate.greater(name, value, bound, BAD_GREATER, type_message=BAD_NUMBER)


def check_at_least(name: str, value: ArrayLike, bound: float) -> Any:
    """A finite number ``>= bound`` (a tracer passes)."""
    return _validate.at_least(name, value, bound)


def check_nonneg(name: str, value: ArrayLike) -> Any:
    return _validate.nonneg(name, value, BAD_NONNEG, type_message=BAD_NUMBER)


def check_count(name: str, value: Any, minimum: int = 1) -> Any:
    """An iteration cap: an integer >= ``minimum`` and at most ``2**31 - 1`` (the loops count in
    int32: a larger cap raised NumPy's OverflowError at trace time, naming no argument), kept as
    an int leaf, or a tracer."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    count = _validate.count(name, value, minimum, BAD_COUNT.replace("{what}", what))
    if isinstance(count, int) and count > INT32_MAX:
        what = "at most 2**31 - 1 (an int32 count)"
        raise ValueError(BAD_COUNT.replace("{what}", what).format(name=name, value=value))
    return count


def check_flag(name: str, value: Any) -> bool:
    """A static switch: True or False (a NumPy bool too)."""
    return _validate.flag(name, value)


def check_wolfe_constants(c1: ArrayLike, c2: ArrayLike) -> tuple[Any, Any]:
    """The Wolfe constants: each in (0, 1) and, when both are concrete, ``c1 < c2``.

    Raises:
      ValueError: either out of (0, 1), or ``c2 <= c1`` (:data:`BAD_C2`).
    """
    c1, c2 = check_open_unit("c1", c1), check_open_unit("c2", c2)
    v1, v2 = _concrete(c1), _concrete(c2)
    if v1 is not None and v2 is not None and not v1 < v2:
        raise ValueError(BAD_C2.format(c1=c1, c2=c2))
    return c1, c2


# -- shared pieces -------------------------------------------------------------
def trial_ok(trial: Trial) -> jax.Array:
    """True when the trial's value and gradient are finite."""
    return jnp.isfinite(trial.value) & _tree.all_finite(trial.grad)


def placeholder_trial(ctx: StepContext, alpha: jax.Array) -> Trial:
    """A zero :class:`Trial` with the structure ``ctx.evaluate`` returns (no evaluation)."""
    shapes = jax.eval_shape(ctx.evaluate, alpha)
    return _tree.tmap(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def evaluate_finite(ctx: StepContext, alpha: jax.Array) -> tuple[jax.Array, Trial, jax.Array]:
    """Evaluate at ``alpha``; while the trial is not finite, halve ``alpha`` (at most
    :data:`NAN_BACKOFF` times). Returns ``(alpha, trial, evaluations)``."""
    trial = ctx.evaluate(alpha)

    def cond(c: tuple) -> jax.Array:
        i, _, t = c
        return ~trial_ok(t) & (i < NAN_BACKOFF)

    def body(c: tuple) -> tuple:
        i, a, _ = c
        a = 0.5 * a
        return i + 1, a, ctx.evaluate(a)

    i, alpha, trial = _packing.packed_while(cond, body, (jnp.asarray(0, jnp.int32), alpha, trial))
    return alpha, trial, i + 1


def tie_tolerance(rtol: Any, value: jax.Array, xp: Any = jnp) -> jax.Array:
    """``rtol * |value|``; ``rtol=None`` means :func:`approx_eps` machine epsilons (``xp``: ``jax.numpy``,
    or the host tier's NumPy operations)."""
    dtype = jnp.result_type(value)
    rtol = approx_eps(dtype) * jnp.finfo(dtype).eps if rtol is None else rtol
    return (rtol * xp.abs(value)).astype(dtype)


def info(nfev: Any, ngev: Any, failed: Any) -> StepInfo:
    return StepInfo(jnp.asarray(nfev, jnp.int32), jnp.asarray(ngev, jnp.int32), jnp.asarray(failed))


def first_prev_value(value: jax.Array, grad: Grads) -> jax.Array:
    """:math:`f_{-1} = f_0 + \\|g_0\\|/2` (scipy's ``old_old_fval``), the previous value
    before any step, for :func:`interpolated_step`; in :func:`search_dtype` of ``value``'s dtype."""
    value = value.astype(search_dtype(value.dtype))
    return value + (0.5 * _tree.norm(grad)).astype(value.dtype)


def interpolated_step(ctx: StepContext, prev_value: jax.Array, initial: ArrayLike) -> jax.Array:
    """Nocedal & Wright eq. 3.60 capped by ``initial``: :math:`\\min(\\text{initial},
    1.01 \\cdot 2 (f_k - f_{k-1}) / \\phi'(0))`, or ``initial`` when that quotient is
    not a positive finite number; in :func:`search_dtype` of ``ctx.value``'s dtype (the
    slope is cast to it first, a no-op from ``core.update``, which makes the slope in that
    dtype)."""
    dtype = search_dtype(ctx.value.dtype)
    initial = jnp.asarray(initial, dtype)
    guess = 1.01 * 2.0 * (ctx.value.astype(dtype) - prev_value) / ctx.slope.astype(dtype)
    return jnp.where(jnp.isfinite(guess) & (guess > 0), jnp.minimum(initial, guess), initial).astype(dtype)


# -- backtracking Armijo -------------------------------------------------------
class BacktrackingState(NamedTuple):
    alpha: jax.Array  # the last accepted step


@_tree.pytree_class(data=("c1", "shrink", "initial", "increase", "max_iter", "approx_rtol"), meta=())
@_tree.repr_from_init
class Backtracking:
    """Backtracking line search with the Armijo sufficient-decrease condition.

    Tries :math:`\\alpha_0, \\rho\\alpha_0, \\rho^2\\alpha_0, \\ldots` and accepts
    the first trial :math:`\\theta^+ = \\mathrm{prox}(\\theta + \\alpha d)` with

    .. math::
       F(\\theta^+) \\le F(\\theta) + c_1 \\Delta, \\qquad
       \\Delta = \\nabla f(\\theta)^\\top (\\theta^+ - \\theta) + h(\\theta^+) - h(\\theta) < 0,

    where :math:`F = f + h`, :math:`h` the ``l1`` term (0 without one),
    :math:`c_1` = ``c1`` and :math:`\\rho` = ``shrink``. Without a proximal
    term :math:`\\theta^+ - \\theta = \\alpha d` and this is Armijo's rule;
    with box bounds it is the Armijo rule along the projection arc; with
    ``l1`` it is Tseng & Yun's rule for composite objectives. A NaN/Inf
    trial is treated as too long. The first trial is ``initial`` every
    step (``increase=None``), or the previous accepted step times ``increase``.

    Near a minimiser the change in :math:`F` drowns in rounding: when
    :math:`F(\\theta^+)` is within :math:`\\epsilon |f(\\theta)|` of
    :math:`F(\\theta)` (:math:`\\epsilon` = ``approx_rtol``), the change is
    estimated from the slopes instead, by the trapezoid rule
    :math:`\\tfrac12 (\\nabla f(\\theta) + \\nabla f(\\theta^+))^\\top
    (\\theta^+ - \\theta) + h(\\theta^+) - h(\\theta) \\le c_1 \\Delta` (Hager &
    Zhang's approximate Armijo condition, exact for quadratics).

    References: L. Armijo, "Minimization of functions having Lipschitz
    continuous first partial derivatives", Pacific J. Math. 16(1), 1966;
    J. Nocedal & S. Wright, "Numerical Optimization", 2nd ed., 2006,
    Algorithm 3.1; D. Bertsekas, "Nonlinear Programming", 2nd ed., 1999,
    section 2.3.1 (Armijo rule along the projection arc); P. Tseng & S. Yun,
    "A coordinate gradient descent method for nonsmooth separable
    minimization", Math. Programming 117, 2009, eq. (9); W. W. Hager &
    H. Zhang, SIAM J. Optim. 16(1), 2005, eq. (4.1).

    Args:
      c1: sufficient-decrease constant in (0, 1).
      shrink: factor :math:`\\rho` in (0, 1) applied after each rejected trial.
      initial: the first trial step (> 0), and the step before any was accepted.
      increase: ``None`` to start every search at ``initial``; a factor
        (>= 1) to start at the previous accepted step times ``increase``.
      max_iter: the most shrinks per step (so at most ``max_iter + 1``
        evaluations); the search fails when all are rejected.
      approx_rtol: :math:`\\epsilon` (>= 0); ``None`` for 64 machine
        epsilons of the dtype (4 in float16 and bfloat16); 0 for the plain rule.

    Raises:
      ValueError: a concrete argument out of range.
    """

    searches = True  # jaxgd.core.stall.searches: a full stall window is a stall

    def __init__(
        self,
        c1: ArrayLike = 1e-4,
        shrink: ArrayLike = 0.5,
        initial: ArrayLike = 1.0,
        increase: Optional[ArrayLike] = None,
        max_iter: int = 30,
        approx_rtol: Optional[ArrayLike] = None,
    ) -> None:
        _tree.set_fields(
            self,
            c1=check_open_unit("c1", c1),
            shrink=check_open_unit("shrink", shrink),
            initial=check_positive("initial", initial),
            increase=None if increase is None else check_at_least("increase", increase, 1.0),
            max_iter=check_count("max_iter", max_iter, 0),
            approx_rtol=None if approx_rtol is None else check_nonneg("approx_rtol", approx_rtol),
        )

    def init(self, params: Params, value: jax.Array, grad: Grads) -> BacktrackingState:
        """The first state: no step accepted yet (``alpha = initial``)."""
        return BacktrackingState(jnp.asarray(self.initial, search_dtype(value.dtype)))

    def step(self, state: BacktrackingState, ctx: StepContext) -> tuple[jax.Array, Trial, BacktrackingState, StepInfo]:
        """One search from ``ctx``: ``(alpha, accepted trial, new state, StepInfo)``."""
        dtype = search_dtype(ctx.value.dtype)
        first = self.initial if self.increase is None else state.alpha * self.increase
        alpha0 = jnp.asarray(first, dtype)

        tie_tol = tie_tolerance(self.approx_rtol, ctx.value).astype(dtype)  # (the loss's own rounding)

        def ok(trial: Trial) -> jax.Array:
            step = _tree.sub(trial.params, ctx.params)
            dh = jnp.zeros((), dtype) if ctx.penalty_change is None else jnp.asarray(ctx.penalty_change(trial.params, ctx.params)).astype(dtype)
            lin = _tree.vdot(ctx.grad, step).astype(dtype)
            model = lin + dh
            change = trial.value.astype(dtype) - ctx.value.astype(dtype) + dh  # F(theta+) - F(theta)
            trapezoid = 0.5 * (lin + _tree.vdot(trial.grad, step).astype(dtype)) + dh
            armijo = change <= self.c1 * model
            # within the loss's rounding either way (a clear fall below it is Armijo's to judge: one-sided, any
            # fall passed on the trapezoid, and a non-convex line's 500x overlong step was taken)
            approx = (tie_tol > 0) & (jnp.abs(change) <= tie_tol) & (trapezoid <= self.c1 * model)  # (0: plain rule)
            return trial_ok(trial) & (model < 0) & (armijo | approx)

        def cond(c: tuple) -> jax.Array:
            i, _, _, good = c
            return ~good & (i < self.max_iter)

        def body(c: tuple) -> tuple:
            i, a, _, _ = c
            a = (a * self.shrink).astype(dtype)
            t = ctx.evaluate(a)
            return i + 1, a, t, ok(t)

        t0 = ctx.evaluate(alpha0)
        i, alpha, trial, good = _packing.packed_while(cond, body, (jnp.asarray(0, jnp.int32), alpha0, t0, ok(t0)))
        new = BacktrackingState(jnp.where(good, alpha, state.alpha).astype(dtype))
        step_info = info(i + 1, i + 1, ~good)
        if narrow(dtype):  # StepInfo.unseen: the first trial moved x without the fall its slope predicted
            f, g = t0.value.astype(dtype), trial_slope(ctx, t0).astype(dtype)
            step_info = step_info._replace(
                unseen=first_unseen(ctx, alpha0, f, g, ctx.value.astype(dtype), ctx.slope.astype(dtype), tie_tol))
        return alpha, trial, new, step_info


# -- strong Wolfe (zoom) ---------------------------------------------------------
class WolfeState(NamedTuple):
    prev_value: jax.Array  # f(theta_{k-1}), for the initial-step interpolation


def cubic_min(a: jax.Array, fa: jax.Array, ga: jax.Array, b: jax.Array, fb: jax.Array, gb: jax.Array) -> jax.Array:
    """Minimiser of the cubic through ``(a, fa, ga)`` and ``(b, fb, gb)`` (Nocedal &
    Wright eq. 3.59); NaN when it does not exist."""
    d1 = ga + gb - 3.0 * (fa - fb) / (a - b)
    d2sq = d1 * d1 - ga * gb
    d2 = jnp.sign(b - a) * jnp.sqrt(jnp.where(d2sq >= 0, d2sq, jnp.nan))
    return b - (b - a) * (gb + d2 - d1) / (gb - ga + 2.0 * d2)


def zoom_point(lo: jax.Array, f_lo: jax.Array, g_lo: jax.Array, hi: jax.Array, f_hi: jax.Array, g_hi: jax.Array) -> jax.Array:
    """The next zoom trial: the cubic minimiser, kept at least 10% of the interval inside
    ``[lo, hi]`` (clamped there); the midpoint where there is none (non-finite).

    A cubic minimiser near an end is usually right (the line's minimiser is near there): the
    midpoint taken instead cost 14 bisections on Moré and Thuente's function 2 (25 evaluations
    where scipy's ``scalar_search_wolfe2`` needs 10); clamped, every trial still cuts the
    interval by at least 10%."""
    x = cubic_min(lo, f_lo, g_lo, hi, f_hi, g_hi)
    left, right = jnp.minimum(lo, hi), jnp.maximum(lo, hi)
    margin = 0.1 * (right - left)
    return jnp.where(jnp.isfinite(x), jnp.clip(x, left + margin, right - margin), 0.5 * (lo + hi))


@_tree.pytree_class(data=("c1", "c2", "initial", "expand", "max_iter", "approx_rtol"), meta=("interpolate",))
@_tree.repr_from_init
class StrongWolfe:
    """Line search for the strong Wolfe conditions: bracketing then zoom.

    Finds :math:`\\alpha` with, for :math:`\\phi(\\alpha) = f(\\theta + \\alpha d)`,

    .. math::
       \\phi(\\alpha) \\le \\phi(0) + c_1 \\alpha \\phi'(0), \\qquad
       |\\phi'(\\alpha)| \\le c_2 |\\phi'(0)|,

    :math:`0 < c_1 < c_2 < 1` (``c1``, ``c2``). The bracketing phase tries
    :math:`\\alpha_0, \\gamma\\alpha_0, \\gamma^2\\alpha_0, \\ldots`
    (:math:`\\gamma` = ``expand``) until an interval is known to contain such
    a point; the zoom phase shrinks it with safeguarded cubic interpolation
    (the cubic minimiser kept 10% of the interval away from its ends; bisection
    where it is missing or non-finite). A NaN/Inf trial counts as too long (it becomes the upper end).
    With ``interpolate=True`` the first trial is scipy's and Nocedal &
    Wright's eq. 3.60, :math:`\\alpha_0 = \\min(\\text{initial},
    1.01 \\cdot 2 (f_k - f_{k-1}) / \\phi'(0))` (with
    :math:`f_{-1} = f_0 + \\|\\nabla f_0\\|/2` as in scipy), otherwise ``initial``.

    Near a minimiser, differences of :math:`f` drown in rounding while the
    slopes stay accurate. A trial whose value is within
    :math:`\\epsilon |\\phi(0)|` of the best so far (:math:`\\epsilon` =
    ``approx_rtol``) is a tie: the sign of its slope decides which end of
    the bracket it replaces, and it is accepted when it meets the curvature
    condition (Hager & Zhang's approximate Wolfe conditions and update
    rules, with a tolerance at rounding level rather than their 1e-6, which
    would let a quasi-Newton method accept short steps near a minimiser
    with :math:`f \\ne 0`). ``approx_rtol=0`` gives the exact Nocedal &
    Wright algorithm.

    If ``max_iter`` evaluations pass (or the bracket shrinks to rounding)
    without meeting the conditions, the current lower end of the bracket
    is accepted (it satisfies sufficient decrease, up to the tie
    tolerance); only when no trial got there does the search fail. A direction that is
    not a descent direction (``phi'(0) >= 0``) fails at once, with no evaluation.

    With ``l1`` the conditions test the smooth part :math:`f` only; for
    composite objectives use :class:`Backtracking` (which tests
    :math:`f + h`) or a constant step.

    Why not ``optax.scale_by_zoom_linesearch``: its constants are Python
    closure values (a new ``c1`` would recompile and cannot be vmapped), it
    evaluates ``value_fn`` at ``theta + alpha d`` itself, so the proximal
    step and ``has_aux`` output of the accepted point would cost one more
    ``value_and_grad`` per step, and it keeps its own copies of value and
    gradient in its state. This zoom is the same algorithm on
    ``ctx.evaluate``.

    References: J. Nocedal & S. Wright, "Numerical Optimization", 2nd ed.,
    2006, Algorithms 3.5 (line search) and 3.6 (zoom), eqs. 3.59-3.60;
    P. Wolfe, "Convergence conditions for ascent methods", SIAM Review
    11(2), 1969; W. W. Hager & H. Zhang, "A new conjugate gradient method
    with guaranteed descent and an efficient line search", SIAM J. Optim.
    16(1), 2005 (approximate Wolfe conditions, eq. 4.1).

    Args:
      c1: sufficient-decrease constant, in (0, 1).
      c2: curvature constant, in (c1, 1): 0.9 for quasi-Newton directions,
        0.1 for nonlinear conjugate gradient.
      initial: the first trial step, or its cap when ``interpolate``.
      expand: bracketing growth factor (> 1).
      max_iter: the most evaluations per step.
      interpolate: use eq. 3.60 for the first trial (static).
      approx_rtol: relative tolerance :math:`\\epsilon` of a tie (>= 0);
        ``None`` for 64 machine epsilons of the dtype (1.4e-14 in float64; 4 in float16
        and bfloat16).

    Raises:
      ValueError: a concrete argument out of range.
    """

    searches = True  # jaxgd.core.stall.searches: a full stall window is a stall

    def __init__(
        self,
        c1: ArrayLike = 1e-4,
        c2: ArrayLike = 0.9,
        initial: ArrayLike = 1.0,
        expand: ArrayLike = 2.0,
        max_iter: int = 30,
        interpolate: bool = True,
        approx_rtol: Optional[ArrayLike] = None,
    ) -> None:
        c1, c2 = check_wolfe_constants(c1, c2)
        _tree.set_fields(
            self,
            c1=c1,
            c2=c2,
            initial=check_positive("initial", initial),
            expand=check_greater("expand", expand, 1.0),
            max_iter=check_count("max_iter", max_iter),
            interpolate=check_flag("interpolate", interpolate),
            approx_rtol=None if approx_rtol is None else check_nonneg("approx_rtol", approx_rtol),
        )

    def init(self, params: Params, value: jax.Array, grad: Grads) -> WolfeState:
        """The first state: :math:`f_{-1} = f_0 + \\|g_0\\|/2` (scipy's convention)."""
        return WolfeState(first_prev_value(value, grad))

    def first_trial(self, state: WolfeState, ctx: StepContext) -> jax.Array:
        """The first step tried: ``initial``, or eq. 3.60 capped by it."""
        if not self.interpolate:
            return jnp.asarray(self.initial, search_dtype(ctx.value.dtype))
        return interpolated_step(ctx, state.prev_value, self.initial)

    def step(self, state: WolfeState, ctx: StepContext) -> tuple[jax.Array, Trial, WolfeState, StepInfo]:
        """One search from ``ctx``: ``(alpha, accepted trial, new state, StepInfo)``."""
        dtype = search_dtype(ctx.value.dtype)
        f0, s0 = ctx.value.astype(dtype), ctx.slope.astype(dtype)
        c1, c2 = jnp.asarray(self.c1, dtype), jnp.asarray(self.c2, dtype)
        zero = jnp.zeros((), dtype)
        alpha0 = self.first_trial(state, ctx)
        tiny = 10 * jnp.finfo(dtype).eps
        tie_tol = tie_tolerance(self.approx_rtol, ctx.value).astype(dtype)  # (the loss's own rounding)

        # carry: i, alpha, zooming, lo=(alpha, phi, phi'), hi=(alpha, phi, phi'), lo_trial, lo_set, done.
        # While bracketing, ``lo`` is the previous trial (0 at first), so Alg. 3.5 and 3.6 share
        # one update: a trial that breaks Armijo or does not improve on lo is "too long" and
        # becomes hi (zoom(prev, a) / hi = a); otherwise it becomes lo, and if its slope points
        # back towards the old lo (g >= 0 while bracketing; g (hi - lo) >= 0 while zooming),
        # hi takes the old lo (zoom(a, prev) / hi = lo).
        init = (
            jnp.asarray(0, jnp.int32), alpha0, jnp.asarray(False),
            jnp.stack([zero, f0, s0]), jnp.stack([zero, f0, s0]),
            placeholder_trial(ctx, alpha0), jnp.asarray(False),
            ~(s0 < 0),  # not a descent direction (or NaN slope): fail without evaluating
        ) + ((jnp.stack([f0, zero]),) if narrow(dtype) else ())

        def cond(c: tuple) -> jax.Array:
            return ~c[7]

        def body(c: tuple) -> tuple:
            i, a, zooming, lo, hi, lo_t, lo_set, _ = c[:8]
            t = ctx.evaluate(a)
            f = t.value.astype(dtype)
            g = trial_slope(ctx, t).astype(dtype)
            fin = jnp.isfinite(f) & jnp.isfinite(g)  # a finite slope g: a finite gradient (see MoreThuente)
            armijo = fin & (f <= f0 + c1 * a * s0)
            curv = fin & (jnp.abs(g) <= -c2 * s0)
            back = jnp.where(zooming, g * (hi[0] - lo[0]) >= 0, g >= 0)  # slope points back to lo
            clear = armijo & (f < lo[1])  # a clear improvement on lo
            # Near a minimiser f differences drown in rounding while slopes stay accurate: a value
            # within tie_tol of lo's is a tie, settled by the slope (Hager-Zhang).
            # (both ways: a fall below it is Armijo's; none with approx_rtol=0, the plain algorithm)
            tie = fin & ~clear & (tie_tol > 0) & (jnp.abs(f - lo[1]) <= tie_tol)
            found = curv & (clear | tie)
            too_long = ~found & jnp.where(tie, back, ~clear)
            flip = ~found & ~tie & clear & back
            point = jnp.stack([a, f, g])
            hi = jnp.where(too_long, point, jnp.where(flip, lo, hi))
            lo = jnp.where(too_long, lo, point)
            zooming = zooming | too_long | flip
            lo_t = _tree.where(too_long, lo_t, t)
            lo_set = lo_set | ~too_long
            width = jnp.abs(hi[0] - lo[0])
            stuck = zooming & (width <= tiny * jnp.maximum(jnp.abs(lo[0]), jnp.abs(hi[0])))
            nxt = jnp.where(zooming, zoom_point(*lo, *hi), a * self.expand).astype(dtype)
            done = found | stuck | (i + 1 >= self.max_iter)
            if len(c) == 8:
                return i + 1, nxt, zooming, lo, hi, lo_t, lo_set, done
            # (float32 and narrower) the first trial's value and slope, for StepInfo.unseen
            return i + 1, nxt, zooming, lo, hi, lo_t, lo_set, done, jnp.where(i == 0, point[1:], c[8])

        c = _packing.packed_while(cond, body, init)
        i, _, _, lo, _, trial, lo_set, _ = c[:8]
        new = WolfeState(jnp.where(lo_set, f0, state.prev_value).astype(dtype))
        alpha = lo[0]  # (before the info: float64's program as it was, op for op)
        step_info = info(i, i, ~lo_set)
        if narrow(dtype):  # StepInfo.unseen from the first trial's value and slope (carried out of the loop)
            step_info = step_info._replace(unseen=first_unseen(ctx, alpha0, c[8][0], c[8][1], f0, s0, tie_tol))
        return alpha, trial, new, step_info
