"""The Moré-Thuente line search (MINPACK-2 ``dcsrch``/``dcstep``) inside the jitted loop.

The search scipy's BFGS, CG and L-BFGS-B use, written as one ``lax.while_loop``
over ``ctx.evaluate``. It is the default step size of ``bfgs``, ``lbfgs`` and
``cg`` (:mod:`jaxgd.directions`), with two ways to pick the first trial:

- ``start="unit"``: :math:`\\alpha_0 = 1` (the quasi-Newton step; Nocedal &
  Wright section 3.5 and Algorithm 6.1), except at the first step, where no
  curvature is known yet and :math:`\\alpha_0 = \\min(1, 1.01\\,\\|g_0\\| /
  |\\phi'(0)|)` (scipy's first step, :math:`1/\\|g_0\\|` along :math:`-g_0`).
- ``start="interpolate"``: :math:`\\alpha_0 = \\min(1, 1.01 \\cdot 2
  (f_k - f_{k-1}) / \\phi'(0))` every step (Nocedal & Wright eq. 3.60;
  scipy's ``old_old_fval`` trick, with :math:`f_{-1} = f_0 + \\|g_0\\|/2`),
  which suits conjugate gradient, whose directions carry no step scale. With
  ``min_move=True`` (``cg``'s search), in float32 and narrower types, it is at
  least the step that moves some entry of :math:`\\theta` by one ulp, past 1 if
  need be: near a minimum :math:`f_k - f_{k-1}` is rounding, and a shorter trial
  rounds back to :math:`\\theta` and ends the search.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import _tree
from ..core import packing as _packing
from ..core.stepsize import (StepContext, StepInfo, Trial, half_precision, narrow, search_dtype, shortest_move,
                             trial_slope, unseen_at)
from .._types import ArrayLike, Grads, Params
from . import zoom as _zoom
from .dcsrch import P5, Interval, decreased, interpolate, repeats_best, safeguard
from .dcsrch import start as start_interval
from .wolfe import (
    check_count,
    check_flag,
    check_nonneg,
    check_positive,
    check_wolfe_constants,
    first_prev_value,
    info,
    interpolated_step,
    placeholder_trial,
    tie_tolerance,
)

BAD_START = "start must be 'unit' or 'interpolate', got start={value!r}"
BAD_MIN_MOVE = "min_move=True floors start='interpolate''s first trial; with start={start!r} it would do nothing"


class MoreThuenteState(NamedTuple):
    # f(theta_{k-1}), for the interpolated first trial; with start="unit", whose first trials after the first
    # accepted step are 1, from then on f where the stall count last restarted (its fall is measured from there:
    # a float32 LQR and a 256x256 deblurring fell by 5-40 ulps a step, each below the tie tolerance, and ended
    # PRECISION 1e-5-1e-4 above their minima)
    prev_value: jax.Array
    started: jax.Array  # True once a step has been accepted
    since: jax.Array  # steps since f last fell by more than rounding (int32), for the stall test


# Under a unit first trial (start="unit", lbfgs's search), a step that lowers f by more than this many epsilons of
# |f| (above its rounding) counts towards the stall test's fall from where its count restarted; a smaller one (a
# tie, noise at an answer) counts only past the tie tolerance. Under an interpolated first trial (bfgs, cg) a step
# counts by its own fall, as before: there the measured sum kept runs at their answers going (float32 CUTEst,
# benchmark K: bfgs on LUKSAN15LS to max_steps, 230 -> 1,942 evaluations; benchmarks/RESULTS.md, session 63).
STALL_ULPS = 4.0

def stall_update(ok: Any, value: Any, f0: Any, tie_tol: Any, prev_value: Any, started: Any, unit: bool,
                 xp: Any) -> tuple[Any, Any]:
    """``(progress, prev_value)`` after a search (:meth:`MoreThuente.step`'s, and the host tier's with ``xp`` its
    NumPy scalar ops): ``progress`` where the accepted ``value`` lies more than ``tie_tol`` below ``f0``, or, under
    a unit first trial (``unit``), fell by more than :data:`STALL_ULPS` epsilons and lies more than ``tie_tol``
    below the value where the count last restarted (``prev_value`` once ``started``: that trial reads it no more),
    which the returned ``prev_value`` then holds; otherwise ``prev_value`` is ``f0`` after an accepted step, for
    the interpolated first trial."""
    progress = ok & (value < f0 - tie_tol)
    if not unit:
        return progress, xp.where(ok, f0, prev_value)
    ref = xp.where(started, prev_value, f0)
    fell = value < f0 - STALL_ULPS * np.finfo(value.dtype).eps * xp.abs(f0)
    progress = progress | (ok & fell & (value < ref - tie_tol))
    return progress, xp.where(ok | started, xp.where(progress, value, ref), prev_value)


# A trial locates the line's minimiser when its slope is at most this fraction of the first one's
# (StepInfo.located; jaxgd.core.stall reads it).
LOCATE = 1e-2
# A trial that moved x and changed f by more than this many times what its slopes allow a smooth line
# (t (|phi'(0)| + |phi'(t)|), the mean value theorem's bound where phi' is monotone) measures the
# error of f's own evaluation (StepInfo.noise; jaxgd.core.stall reads it).
NOISE_RATIO = 100.0


# The longest step a search tries: scipy's BFGS and CG pass ``amax=1e100`` to their Moré-Thuente search
# (a variable scaled by 1e-6 needs steps of 1e12 along -g: the 1e10 of MINPACK-2's example stopped cg
# short of y* = 1e6 after 200 steps); L-BFGS-B keeps its own 1e10 (lnsrlb's ``big``: directions.lbfgsb).
SEARCH_CAP = 1e100


def step_cap(dtype: Any, big: float = SEARCH_CAP) -> float:
    """The longest step a search tries (MINPACK-2's ``stpmax``): ``big``, or ``dtype``'s largest
    number where that is less (float32: 3.4e38; float16: 65504, made in the half type, 1e10 overflowed)."""
    return min(big, float(jnp.finfo(dtype).max))


def first_move(interp: Any, move: Any, initial: Any, xp: Any) -> Any:
    """``min_move``'s first trial: eq. 3.60's ``interp`` capped at ``initial``, and no shorter than
    ``move`` (:func:`shortest_move`), even past the cap: a trial that moves no entry of ``x``
    ends the search with nothing learnt (float16 least squares at its answer: the capped unit
    trial along ``cg``'s direction rounded back to ``x`` every search, and the run ended
    ``LINESEARCH_FAILED``), where one that moves ``x`` shows whether ``f`` falls as its slope
    says (``StepInfo.unseen``); at most :func:`step_cap`. All three of ``interp``'s dtype; ``xp``:
    ``jnp``, or the host tier's NumPy scalar ops."""
    most = interp.dtype.type(step_cap(interp.dtype))
    return xp.minimum(xp.maximum(xp.minimum(interp, initial), move), most)


class _Carry(NamedTuple):
    i: jax.Array
    stp: jax.Array
    stage2: jax.Array
    iv: Interval
    best: Trial  # the trial at stx (when stx > 0), or the one that met the conditions
    converged: jax.Array
    done: jax.Array
    hit: Optional[jax.Array] = None  # with a fallback: a trial was not finite (None: not carried)
    unit_sq_grad: Optional[jax.Array] = None  # StepInfo.unit_sq_grad (None: ctx.unit_grad not asked for)
    unit_slope: Optional[jax.Array] = None  # StepInfo.unit_slope (likewise)
    located: Optional[jax.Array] = None  # the least trial step that located the minimiser (StepInfo.located / |g0|)
    noise: Optional[jax.Array] = None  # StepInfo.noise (likewise)
    unseen: Optional[jax.Array] = None  # StepInfo.unseen (None: float64, not recorded)


class _ZoomCarry(NamedTuple):
    i: jax.Array
    alpha: jax.Array
    z: _zoom.Zoom
    best: Trial
    found: jax.Array
    done: jax.Array


@_tree.pytree_class(data=("c1", "c2", "xtol", "initial", "max_iter", "approx_rtol", "stall_window"), meta=("start", "fallback", "min_move"))
@_tree.repr_from_init
class MoreThuente:
    """Line search for the strong Wolfe conditions by Moré & Thuente's algorithm.

    Finds :math:`\\alpha` with, for :math:`\\phi(\\alpha) = f(\\theta + \\alpha d)`,

    .. math::
       \\phi(\\alpha) \\le \\phi(0) + c_1 \\alpha \\phi'(0), \\qquad
       |\\phi'(\\alpha)| \\le c_2 |\\phi'(0)|,

    keeping an interval of uncertainty :math:`[\\alpha_x, \\alpha_y]` and
    choosing each trial by the safeguarded cubic/quadratic steps of
    ``dcstep``: while no point beats the sufficient-decrease line it works
    on the modified function :math:`\\psi(\\alpha) = \\phi(\\alpha) - \\phi(0)
    - c_1 \\alpha \\phi'(0)`; before the minimiser is bracketed it
    extrapolates up to :math:`\\alpha + 4(\\alpha - \\alpha_x)`; once it is,
    it bisects when the interval fails to shrink by a third. A NaN/Inf trial
    is too long: it becomes the upper end and the next trial bisects.

    Near a minimiser :math:`\\phi` differences drown in rounding: a trial
    within :math:`\\epsilon |\\phi(0)|` of :math:`\\phi(0)` either way (``approx_rtol``)
    that meets the curvature condition is accepted (Hager & Zhang's
    approximate Wolfe conditions at rounding level). When ``max_iter``
    trials pass, or the interval shrinks below ``xtol`` relative width, the
    best trial so far (:math:`\\alpha_x`) is accepted if it lowered
    :math:`\\phi`; the search fails only when no trial did. A direction that
    is not a descent direction fails at once, with no evaluation.

    Where ``ctx.unit_grad`` asks for it (a quasi-Newton direction), the squared
    gradient norm and the slope at a finite unit first trial go out in
    ``StepInfo.unit_sq_grad`` and ``StepInfo.unit_slope`` (NaN without one), and
    the least :math:`t |\\phi'(0)|` over the trials whose slope is at most
    ``1e-2`` of :math:`|\\phi'(0)|` in ``StepInfo.located`` (inf without
    one), and in ``StepInfo.noise`` the largest change of :math:`\\phi` at a trial
    that exceeds ``100.0`` times :math:`t (|\\phi'(0)| + |\\phi'(t)|)`,
    more than a smooth line with those slopes changes where its slope is
    monotone: the error of the loss's own evaluation (0 without one). The
    solver's precision rules (``Status.PRECISION``) read them. A trial whose value and slope repeat the best trial's bit for bit
    (the same point: the step differs below the rounding of :math:`\\theta`) ends
    the search, as MINPACK-2 does where rounding errors prevent progress.

    Stalls: a step that lowers :math:`f` by no more than the tie tolerance counts as
    no progress, and with ``start="unit"`` so does one that leaves it no more than
    the tie tolerance below its value where the count last restarted (steady falls
    of a few roundings a step add up, and restart it); after ``stall_window`` such steps in a
    row, :meth:`stalled` is True and the solver stops
    (``Status.PRECISION`` at a point stationary to precision, otherwise
    ``Status.STALLED``).

    With ``fallback=True`` (the default of ``bfgs`` and ``cg``) a search that
    does not meet the conditions, meets a NaN/Inf trial on the way (where
    ``dcstep`` has no rule), or ends at a step the direction rejects
    (``ctx.accept``: ``cg``'s sufficient descent of the next direction) is
    followed by scipy's second search from the same point
    (scipy's ``line_search_wolfe2``, written for JAX), as scipy's BFGS
    and CG do (``_line_search_wolfe12``); when that fails too, the first
    search's outcome stands (its best point if it lowered :math:`\\phi`, or
    its Wolfe step if the direction accepts it). Both searches start at the
    same step: where that was the first search's only trial (not finite, or
    its best), the second reads its outcome without evaluating it again, as
    scipy's cache of the last point evaluated answers it (the same
    evaluation counts as scipy's CG).

    References: J. J. Moré & D. J. Thuente, "Line search algorithms with
    guaranteed sufficient decrease", ACM TOMS 20(3), 1994 (MINPACK-2
    ``dcsrch``/``dcstep``, as used by scipy's BFGS, CG and L-BFGS-B);
    J. Nocedal & S. Wright, "Numerical Optimization", 2nd ed., 2006,
    section 3.5 (initial step) and eq. 3.60; W. W. Hager & H. Zhang, SIAM
    J. Optim. 16(1), 2005, eq. (4.1).

    Args:
      c1: sufficient-decrease constant, in (0, 1).
      c2: curvature constant, in (c1, 1): 0.9 for quasi-Newton, 0.4 for CG (scipy).
      xtol: relative width of the interval below which the search stops (>= 0).
      initial: the unit step (``start="unit"``) or the cap of the
        interpolated one (> 0).
      max_iter: the most evaluations per step.
      start: ``"unit"`` or ``"interpolate"`` (static; see the module doc).
      approx_rtol: :math:`\\epsilon` (>= 0); ``None`` for 64 machine
        epsilons of the dtype (4 in float16 and bfloat16); 0 for the plain conditions.
      stall_window: steps without a decrease beyond rounding before the run
        stops as stalled (a positive integer).
      fallback: run scipy's zoom search after a failed or rejected search
        (static; see above). It puts a second search loop, with another
        copy of the loss, into the compiled program: ``fallback=False``
        compiles faster (benchmarks/RESULTS.md, session 18) where searches
        do not fail.
      min_move: with ``start="interpolate"`` (refused with ``"unit"``), in float32 and narrower types,
        the first trial is at least the step that moves some entry of
        :math:`\\theta` by one ulp, past ``initial`` if need be (static;
        ``cg``'s default): near a minimum
        :math:`f_k - f_{k-1}` is rounding, eq. 3.60's trial rounds back to
        :math:`\\theta` and the search ends there (float32 Rosenbrock:
        ``cg`` failed 11 of 16 runs at its answer). ``bfgs`` keeps scipy's
        trial: with the floor its float32 CUTEst runs took other paths, as
        many worse as better (benchmarks/RESULTS.md, session 32).

    Raises:
      ValueError: a concrete argument out of range; ``min_move=True`` with ``start="unit"``.
    """

    def __init__(
        self,
        c1: ArrayLike = 1e-4,
        c2: ArrayLike = 0.9,
        xtol: ArrayLike = 1e-10,
        initial: ArrayLike = 1.0,
        max_iter: int = 30,
        start: str = "unit",
        approx_rtol: Optional[ArrayLike] = None,
        stall_window: int = 10,
        fallback: bool = False,
        min_move: bool = False,
    ) -> None:
        c1, c2 = check_wolfe_constants(c1, c2)
        if start not in ("unit", "interpolate"):
            raise ValueError(BAD_START.format(value=start))
        if check_flag("min_move", min_move) and start != "interpolate":
            raise ValueError(BAD_MIN_MOVE.format(start=start))
        _tree.set_fields(
            self,
            c1=c1,
            c2=c2,
            xtol=check_nonneg("xtol", xtol),
            initial=check_positive("initial", initial),
            max_iter=check_count("max_iter", max_iter),
            start=start,
            approx_rtol=None if approx_rtol is None else check_nonneg("approx_rtol", approx_rtol),
            stall_window=check_count("stall_window", stall_window),
            fallback=check_flag("fallback", fallback),
            min_move=check_flag("min_move", min_move),
        )

    def init(self, params: Params, value: jax.Array, grad: Grads) -> MoreThuenteState:
        """The first state: :math:`f_{-1} = f_0 + \\|g_0\\|/2` (scipy's convention)."""
        return MoreThuenteState(first_prev_value(value, grad), jnp.asarray(False), jnp.asarray(0, jnp.int32))

    def stalled(self, state: MoreThuenteState) -> jax.Array:
        """True after ``stall_window`` steps in a row without a decrease beyond rounding."""
        return state.since >= self.stall_window

    def first_trial(self, state: MoreThuenteState, ctx: StepContext, move: Any = None) -> jax.Array:
        """The first step tried (see the module doc); ``move``: :func:`shortest_move` of ``ctx``
        where the caller has it (computed here otherwise)."""
        interp = interpolated_step(ctx, state.prev_value, self.initial)
        if self.start != "interpolate":
            return jnp.where(state.started, jnp.asarray(self.initial, interp.dtype), interp)
        if self._floored(interp.dtype):  # no shorter than a step that moves x (float32 and narrower)
            move = shortest_move(ctx.params, ctx.direction, ctx.value.dtype) if move is None else move
            return first_move(interp, move.astype(interp.dtype), jnp.asarray(self.initial, interp.dtype), jnp)
        return interp

    def _floored(self, dtype: Any) -> bool:
        """The first trial is floored at :func:`shortest_move` (``min_move``, float32 and narrower)."""
        return self.start == "interpolate" and self.min_move and narrow(dtype)

    def step(self, state: MoreThuenteState, ctx: StepContext) -> tuple[jax.Array, Trial, MoreThuenteState, StepInfo]:
        """One search from ``ctx``: ``(alpha, accepted trial, new state, StepInfo)``."""
        dtype = search_dtype(ctx.value.dtype)
        f0, g0 = ctx.value.astype(dtype), ctx.slope.astype(dtype)
        c1, c2 = jnp.asarray(self.c1, dtype), jnp.asarray(self.c2, dtype)
        xtol = jnp.asarray(self.xtol, dtype)
        gtest = c1 * g0
        stpmax = jnp.asarray(step_cap(dtype), dtype)
        zero = jnp.zeros((), dtype)
        tie_tol = tie_tolerance(self.approx_rtol, ctx.value).astype(dtype)  # (the loss's own rounding)
        # trials farther apart than a step that moves x are different points (dcsrch.repeats_best; a 16-bit
        # loss, whose values and slopes two points can share: in float32 the test cost CUTEst searches
        # evaluations and saved no run); one shortest_move a search, shared with cg's floored first trial
        half = half_precision(ctx.value.dtype)
        move = shortest_move(ctx.params, ctx.direction, ctx.value.dtype) if half or self._floored(dtype) else None
        apart = move.astype(dtype) if half else None
        stp0 = self.first_trial(state, ctx, move)
        ph = placeholder_trial(ctx, stp0)
        init = _Carry(
            jnp.asarray(0, jnp.int32), stp0, jnp.asarray(False), start_interval(f0, g0, stp0, stpmax),
            ph, jnp.asarray(False),
            ~(g0 < 0),  # not a descent direction (or NaN slope): fail without evaluating
            jnp.asarray(False) if self.fallback else None,
            jnp.asarray(jnp.nan, dtype) if ctx.unit_grad else None,
            jnp.asarray(jnp.nan, dtype) if ctx.unit_grad else None,
            jnp.asarray(jnp.inf, dtype) if ctx.unit_grad else None,
            jnp.asarray(0, dtype) if ctx.unit_grad else None,
            jnp.asarray(False) if narrow(dtype) else None,
        )
        body = lambda c: self._body(c, ctx, f0, g0, gtest, c1, c2, xtol, tie_tol, stpmax, apart)  # noqa: E731
        c = _packing.packed_while(lambda c: ~c.done, body, init)
        # Converged: the trial that met the conditions. Otherwise the best point, if it lowered f.
        have_best = (c.iv.stx > 0) & (c.iv.fx < f0)
        alpha = jnp.where(c.converged, c.stp, c.iv.stx)
        trial = c.best
        ok = c.converged | have_best
        n = c.i
        if self.fallback:  # scipy's _line_search_wolfe12: the zoom search after a failed or rejected one
            accepted = jnp.asarray(True) if ctx.accept is None else ctx.accept(trial)
            redo = (g0 < 0) & ~(c.converged & ~c.hit & accepted)
            # the first search's only trial, at stp0, is the zoom's first: scipy's cache of the last point evaluated
            # answers it (not finite, or the search's best: converged or its interval's new end)
            seed = (c.i == 1) & (c.hit | c.converged | (c.iv.stx == stp0))
            z = lax.cond(
                redo, lambda: self._zoom(ctx, f0, g0, c1, c2, stpmax, stp0, ph, seed, c.hit, trial, redo),
                lambda: _ZoomCarry(jnp.asarray(0, jnp.int32), alpha, _zoom.start(f0, g0), ph, jnp.asarray(False), jnp.asarray(True)),
            )
            alpha, trial = jnp.where(z.found, z.alpha, alpha), _tree.where(z.found, z.best, trial)
            # else the first search's outcome stands: a point that lowered f, or an accepted Wolfe step
            ok, n = z.found | have_best | (c.converged & accepted), n + z.i
        progress, prev = stall_update(ok, trial.value.astype(dtype), f0, tie_tol, state.prev_value.astype(dtype),
                                      state.started, self.start == "unit", jnp)
        since = jnp.where(progress, 0, jnp.minimum(state.since, jnp.iinfo(jnp.int32).max - 1) + 1).astype(jnp.int32)
        new = MoreThuenteState(prev.astype(dtype), state.started | ok, since)
        return alpha.astype(dtype), trial, new, info(n, n, ~ok)._replace(
            unit_sq_grad=c.unit_sq_grad, unit_slope=c.unit_slope, located=None if c.located is None else c.located * jnp.abs(g0),
            noise=c.noise, unseen=c.unseen)

    def _zoom(self, ctx: StepContext, f0, g0, c1, c2, stpmax, stp0, ph, seed, hit, known,  # noqa: ANN001
              active) -> _ZoomCarry:
        """scipy's ``line_search_wolfe2`` from ``ctx`` (:mod:`jaxgd.linesearch.zoom`), first trial ``stp0``;
        ``seed``: that trial was the first search's only one (not finite where ``hit``, else ``known``), and
        scipy's cache of the last point evaluated answers it: the first iteration reads it instead of evaluating
        (a ``lax.cond``: one copy of the loss and of the search's update in the program); ``active``: the search
        runs (True under ``lax.cond``; under ``vmap``, where both branches run, the runs that need no second
        search start done)."""
        dtype = f0.dtype

        def body(c: _ZoomCarry) -> _ZoomCarry:
            cached = seed & (c.i == 0) & (c.z.i == 0) & ~c.z.zooming  # (the first iteration)
            t = lax.cond(cached, lambda: known, lambda: ctx.evaluate(c.alpha))
            f = jnp.where(cached & hit, jnp.inf, t.value.astype(dtype))
            g = jnp.where(cached & hit, jnp.inf, trial_slope(ctx, t).astype(dtype))
            ok = jnp.asarray(True) if ctx.accept is None else ctx.accept(t)
            z, nxt, found, failed = _zoom.update(c.z, c.alpha, f, g, ok, f0, g0, c1, c2, stpmax)
            best = _tree.where(found, t, c.best)
            return _ZoomCarry(c.i + (~cached).astype(jnp.int32), jnp.where(found, c.alpha, nxt).astype(dtype), z, best,
                              found, found | failed)

        init = _ZoomCarry(jnp.asarray(0, jnp.int32), stp0, _zoom.start(f0, g0), ph, jnp.asarray(False), ~active)
        return _packing.packed_while(lambda c: ~c.done, body, init)

    def _body(self, c: _Carry, ctx: StepContext, f0, g0, gtest, c1, c2, xtol, tie_tol, stpmax, apart) -> _Carry:  # noqa: ANN001
        dtype = f0.dtype
        stp = c.stp
        t = ctx.evaluate(stp)
        f = t.value.astype(dtype)
        g = trial_slope(ctx, t).astype(dtype)
        # (a non-finite gradient element makes the slope g, a sum of products with it, NaN or Inf:
        # a finite g is a finite gradient; L-BFGS-B's search and the host tier test the same)
        fin = jnp.isfinite(f) & jnp.isfinite(g)
        ftest = f0 + stp * gtest
        curv = jnp.abs(g) <= -c2 * g0
        converged = fin & curv & decreased(f, ftest, f0, tie_tol)
        stage2 = c.stage2 | (fin & (f <= ftest) & (g >= jnp.minimum(c1, c2) * g0))
        # dcstep (on psi in stage 1), then: a non-finite trial is too long: it becomes sty, the next trial bisects.
        iv, nxt = interpolate(c.iv, stp, f, g, stage2, ftest, gtest)
        keep = lambda a, b: jnp.where(fin, a, b)  # noqa: E731
        iv = iv._replace(
            brackt=keep(iv.brackt, True), stx=keep(iv.stx, c.iv.stx), fx=keep(iv.fx, c.iv.fx), gx=keep(iv.gx, c.iv.gx),
            sty=keep(iv.sty, stp), fy=keep(iv.fy, jnp.inf), gy=keep(iv.gy, jnp.inf),
        )
        nxt = keep(nxt, c.iv.stx + P5 * (stp - c.iv.stx))
        nxt, iv, outside, narrow = safeguard(iv, nxt, stpmax, xtol)
        # MINPACK-2 stops here ("rounding errors prevent progress") and keeps stx. Before any trial
        # has lowered psi (stx = 0: the search would fail) the next trial bisects instead, as scipy's
        # fallback search (line_search_wolfe2) would: a first trial of f = 1e38 gives no usable cubic.
        stuck = fin & iv.brackt & (~jnp.isfinite(nxt) | outside) & (iv.stx > 0)
        nxt = jnp.where(~jnp.isfinite(nxt) | (outside & (iv.stx <= 0)), iv.stx + P5 * (stp - iv.stx), nxt)
        best = _tree.where(converged | (fin & (iv.stx == stp)), t, c.best)
        hit = None if c.hit is None else c.hit | ~fin
        # A trial at the current point itself (alpha d below the rounding of every entry of
        # theta) says nothing new, and neither would a shorter one: the search ends there (the
        # best point so far if it lowered f, else a failure), where it evaluated the same point
        # over and over until max_iter (sif2jax's MISRA1CLS: 20 evaluations a search).
        at_start = _tree.all_equal(t.params, ctx.params)
        # Nor does a trial with the best trial's value and slope, bit for bit: the same point (a step that
        # differs from stx below the rounding of theta), where the search evaluated it every other trial
        # until max_iter (sif2jax's PENALTY3, bfgs: 10 evaluations of one search). MINPACK-2 stops there too
        # ("rounding errors prevent progress") when the next trial is stx itself.
        again = fin & repeats_best(f, g, c.iv.stx, c.iv.fx, c.iv.gx, stp, apart)
        done = converged | stuck | narrow | at_start | again | (c.i + 1 >= self.max_iter) | (stp >= stpmax)
        if hit is not None:  # scipy's line_search_wolfe1 gives up at a non-finite trial (its next step is NaN)
            done = done | ~fin
        iv = jax.tree_util.tree_map(lambda v: v if v.dtype == jnp.bool_ else v.astype(dtype), iv)
        unit, unit_slope, located, noise = c.unit_sq_grad, c.unit_slope, c.located, c.noise  # a quasi-Newton model's tests read
        if unit is not None:  # the gradient at its minimiser, a unit first trial, and where the line's minimiser is
            first = (c.i == 0) & (stp == 1) & fin  # (a NaN or Inf unit trial confirms no model)
            unit = jnp.where(first, _tree.vdot(t.grad, t.grad).astype(dtype), unit)
            unit_slope = jnp.where(first, g, unit_slope).astype(dtype)
            # |g| <= LOCATE |g0| (g0 < 0), spelled with g on both sides: XLA hoists a loop-invariant
            # LOCATE |g0| out of the search's loop, a kernel of its own every step
            found = fin & (g0 + jnp.abs(g) / LOCATE <= 0)
            located = jnp.where(found, jnp.minimum(located, stp), located).astype(dtype)
            # f's evaluation error: a change no smooth line with these slopes makes (StepInfo.noise; a
            # trial that did not move x changes nothing, so at_start needs no test here: its reduction
            # read twice was a kernel of its own every trial)
            change = jnp.abs(f - f0)
            noisy = fin & (change > NOISE_RATIO * stp * (jnp.abs(g) - g0))
            noise = jnp.where(noisy, jnp.maximum(noise, change), noise).astype(dtype)
        unseen = c.unseen
        if unseen is not None:  # the first trial moved x, f did not fall, the slope said it would or passed 0 (StepInfo.unseen)
            unseen = unseen | unseen_at(c.i == 0, fin, at_start, f, f0, g, g0, stp, tie_tol)
        return _Carry(c.i + 1, jnp.where(converged, stp, nxt).astype(dtype), stage2, iv, best, converged, done, hit, unit,
                      unit_slope, located, noise, unseen)
