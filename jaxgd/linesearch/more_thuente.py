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
  which suits conjugate gradient, whose directions carry no step scale.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

from .. import _tree
from ..core.stepsize import StepContext, StepInfo, Trial
from .._types import ArrayLike, Grads, Params
from .wolfe import (
    BAD_C2,
    _concrete,
    check_count,
    check_nonneg,
    check_open_unit,
    check_positive,
    info,
    placeholder_trial,
    tie_tolerance,
)

BAD_START = "start must be 'unit' or 'interpolate', got start={value!r}"
XTRAPL, XTRAPU, P5, P66 = 1.1, 4.0, 0.5, 0.66  # dcsrch's extrapolation and bisection constants


class MoreThuenteState(NamedTuple):
    prev_value: jax.Array  # f(theta_{k-1}), for the interpolated first trial
    started: jax.Array  # True once a step has been accepted
    since: jax.Array  # steps since f last fell by more than rounding (int32), for the stall test


def _cubic_parts(a: jax.Array, fa: jax.Array, da: jax.Array, b: jax.Array, fb: jax.Array, db: jax.Array, clip: bool) -> tuple:
    """``(theta, gamma)`` of dcstep's cubic through ``(a, fa, da)`` and ``(b, fb, db)``,
    scaled by ``s = max(|theta|, |da|, |db|)`` against overflow; ``gamma`` takes the sign
    dcstep gives it (negative when ``b > a``, i.e. ``stp > stx``)."""
    theta = 3.0 * (fa - fb) / (b - a) + da + db
    s = jnp.maximum(jnp.maximum(jnp.abs(theta), jnp.abs(da)), jnp.abs(db))
    s = jnp.where(s > 0, s, 1.0)
    disc = (theta / s) ** 2 - (da / s) * (db / s)
    gamma = s * jnp.sqrt(jnp.maximum(disc, 0.0) if clip else disc)
    return theta, gamma


def dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):  # noqa: ANN001, ANN201
    """One safeguarded step of Moré & Thuente (1994), MINPACK-2 ``dcstep``, case by case.

    Returns ``(stx, fx, dx, sty, fy, dy, stpf, brackt)``: the new interval
    (``stx`` the best point, ``sty`` the other end) and the next trial.
    """
    sgnd = dp * jnp.sign(dx)
    # case 1: higher value: the minimum is bracketed.
    th, ga = _cubic_parts(stx, fx, dx, stp, fp, dp, False)
    ga1 = jnp.where(stp < stx, -ga, ga)
    r1 = ((ga1 - dx) + th) / (((ga1 - dx) + ga1) + dp)
    stpc1 = stx + r1 * (stp - stx)
    stpq1 = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
    f1 = jnp.where(jnp.abs(stpc1 - stx) < jnp.abs(stpq1 - stx), stpc1, stpc1 + (stpq1 - stpc1) / 2.0)
    # case 2: lower value, derivatives of opposite sign: bracketed.
    ga2 = jnp.where(stp > stx, -ga, ga)
    r2 = ((ga2 - dp) + th) / (((ga2 - dp) + ga2) + dx)
    stpc2 = stp + r2 * (stx - stp)
    stpq2 = stp + (dp / (dp - dx)) * (stx - stp)
    f2 = jnp.where(jnp.abs(stpc2 - stp) > jnp.abs(stpq2 - stp), stpc2, stpq2)
    # case 3: lower value, same sign, derivative magnitude decreases.
    th3, ga3 = _cubic_parts(stx, fx, dx, stp, fp, dp, True)
    ga3 = jnp.where(stp > stx, -ga3, ga3)
    r3 = ((ga3 - dp) + th3) / ((ga3 + (dx - dp)) + ga3)
    stpc3 = jnp.where((r3 < 0) & (ga3 != 0), stp + r3 * (stx - stp), jnp.where(stp > stx, stpmax, stpmin))
    stpq3 = stpq2
    near = jnp.where(jnp.abs(stpc3 - stp) < jnp.abs(stpq3 - stp), stpc3, stpq3)
    far = jnp.where(jnp.abs(stpc3 - stp) > jnp.abs(stpq3 - stp), stpc3, stpq3)
    cap = stp + P66 * (sty - stp)
    f3_br = jnp.where(stp > stx, jnp.minimum(cap, near), jnp.maximum(cap, near))
    f3 = jnp.where(brackt, f3_br, jnp.clip(far, stpmin, stpmax))
    # case 4: lower value, same sign, derivative magnitude does not decrease.
    th4, ga4 = _cubic_parts(sty, fy, dy, stp, fp, dp, False)
    ga4 = jnp.where(stp > sty, -ga4, ga4)
    r4 = ((ga4 - dp) + th4) / (((ga4 - dp) + ga4) + dy)
    f4 = jnp.where(brackt, stp + r4 * (sty - stp), jnp.where(stp > stx, stpmax, stpmin))

    c1, c2, c3 = fp > fx, sgnd < 0, jnp.abs(dp) < jnp.abs(dx)
    stpf = jnp.where(c1, f1, jnp.where(c2, f2, jnp.where(c3, f3, f4)))
    brackt = brackt | c1 | (~c1 & c2)
    # the new interval
    sty_n = jnp.where(c1, stp, jnp.where(c2, stx, sty))
    fy_n = jnp.where(c1, fp, jnp.where(c2, fx, fy))
    dy_n = jnp.where(c1, dp, jnp.where(c2, dx, dy))
    stx_n, fx_n, dx_n = (jnp.where(c1, old, new) for old, new in ((stx, stp), (fx, fp), (dx, dp)))
    return stx_n, fx_n, dx_n, sty_n, fy_n, dy_n, stpf, brackt


class _Carry(NamedTuple):
    i: jax.Array
    stp: jax.Array
    brackt: jax.Array
    stage2: jax.Array
    x: jax.Array  # (stx, fx, gx)
    y: jax.Array  # (sty, fy, gy)
    stmin: jax.Array
    stmax: jax.Array
    width: jax.Array
    width1: jax.Array
    best: Trial  # the trial at stx (when stx > 0), or the one that met the conditions
    converged: jax.Array
    done: jax.Array


@_tree.pytree_class(data=("c1", "c2", "xtol", "initial", "max_iter", "approx_rtol", "stall_window"), meta=("start",))
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

    Stalls: a step that lowers :math:`\\phi` by no more than the tie
    tolerance counts as no progress; after ``stall_window`` such steps in a
    row, :meth:`stalled` is True and the solver stops
    (``Status.PRECISION`` at a point stationary to precision, otherwise
    ``Status.STALLED``; see :mod:`jaxgd.core.stall`).

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
        epsilons of the dtype; 0 for the plain conditions.
      stall_window: steps without a decrease beyond rounding before the run
        stops as stalled (a positive integer).

    Raises:
      ValueError: a concrete argument out of range.
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
    ) -> None:
        c1, c2 = check_open_unit("c1", c1), check_open_unit("c2", c2)
        v1, v2 = _concrete(c1), _concrete(c2)
        if v1 is not None and v2 is not None and not v1 < v2:
            raise ValueError(BAD_C2.format(c1=c1, c2=c2))
        if start not in ("unit", "interpolate"):
            raise ValueError(BAD_START.format(value=start))
        values = dict(
            c1=c1,
            c2=c2,
            xtol=check_nonneg("xtol", xtol),
            initial=check_positive("initial", initial),
            max_iter=check_count("max_iter", max_iter),
            start=start,
            approx_rtol=None if approx_rtol is None else check_nonneg("approx_rtol", approx_rtol),
            stall_window=check_count("stall_window", stall_window),
        )
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __repr__(self) -> str:
        return (
            f"MoreThuente(c1={self.c1!r}, c2={self.c2!r}, xtol={self.xtol!r}, initial={self.initial!r}, "
            f"max_iter={self.max_iter!r}, start={self.start!r}, approx_rtol={self.approx_rtol!r}, "
            f"stall_window={self.stall_window!r})"
        )

    def init(self, params: Params, value: jax.Array, grad: Grads) -> MoreThuenteState:
        """The first state: :math:`f_{-1} = f_0 + \\|g_0\\|/2` (scipy's convention)."""
        return MoreThuenteState(
            value + (0.5 * _tree.norm(grad)).astype(value.dtype), jnp.asarray(False), jnp.asarray(0, jnp.int32)
        )

    def stalled(self, state: MoreThuenteState) -> jax.Array:
        """True after ``stall_window`` steps in a row without a decrease beyond rounding."""
        return state.since >= self.stall_window

    def first_trial(self, state: MoreThuenteState, ctx: StepContext) -> jax.Array:
        """The first step tried (see the module doc)."""
        dtype = ctx.value.dtype
        initial = jnp.asarray(self.initial, dtype)
        guess = 1.01 * 2.0 * (ctx.value - state.prev_value) / ctx.slope.astype(dtype)
        interp = jnp.where(jnp.isfinite(guess) & (guess > 0), jnp.minimum(initial, guess), initial)
        if self.start == "interpolate":
            return interp.astype(dtype)
        return jnp.where(state.started, initial, interp).astype(dtype)

    def step(self, state: MoreThuenteState, ctx: StepContext) -> tuple[jax.Array, Trial, MoreThuenteState, StepInfo]:
        """One search from ``ctx``: ``(alpha, accepted trial, new state, StepInfo)``."""
        dtype = ctx.value.dtype
        f0, g0 = ctx.value, ctx.slope.astype(dtype)
        c1, c2 = jnp.asarray(self.c1, dtype), jnp.asarray(self.c2, dtype)
        xtol = jnp.asarray(self.xtol, dtype)
        gtest = c1 * g0
        stpmax = jnp.asarray(1e10 if dtype == jnp.float64 else 1e10, dtype)
        zero = jnp.zeros((), dtype)
        tie_tol = tie_tolerance(self.approx_rtol, f0)
        stp0 = self.first_trial(state, ctx)
        ph = placeholder_trial(ctx, stp0)
        init = _Carry(
            jnp.asarray(0, jnp.int32), stp0, jnp.asarray(False), jnp.asarray(False),
            jnp.stack([zero, f0, g0]), jnp.stack([zero, f0, g0]),
            zero, stp0 + XTRAPU * stp0, stpmax, 2.0 * stpmax, ph, jnp.asarray(False),
            ~(g0 < 0),  # not a descent direction (or NaN slope): fail without evaluating
        )
        body = lambda c: self._body(c, ctx, f0, g0, gtest, c1, c2, xtol, tie_tol, stpmax)  # noqa: E731
        c = lax.while_loop(lambda c: ~c.done, body, init)
        # Converged: the trial that met the conditions. Otherwise the best point, if it lowered f.
        have_best = (c.x[0] > 0) & (c.x[1] < f0)
        alpha = jnp.where(c.converged, c.stp, c.x[0])
        trial = c.best
        ok = c.converged | have_best
        progress = ok & (trial.value.astype(dtype) < f0 - tie_tol)
        since = jnp.where(progress, 0, jnp.minimum(state.since, jnp.iinfo(jnp.int32).max - 1) + 1).astype(jnp.int32)
        new = MoreThuenteState(jnp.where(ok, f0, state.prev_value).astype(dtype), state.started | ok, since)
        return alpha.astype(dtype), trial, new, info(c.i, c.i, ~ok)

    def _body(self, c: _Carry, ctx: StepContext, f0, g0, gtest, c1, c2, xtol, tie_tol, stpmax) -> _Carry:  # noqa: ANN001
        dtype = f0.dtype
        stp = c.stp
        t = ctx.evaluate(stp)
        f = t.value.astype(dtype)
        g = _tree.vdot(t.grad, ctx.direction).astype(dtype)
        fin = jnp.isfinite(f) & jnp.isfinite(g) & _tree.all_finite(t.grad)
        ftest = f0 + stp * gtest
        curv = jnp.abs(g) <= -c2 * g0
        converged = fin & curv & ((f <= ftest) | (jnp.abs(f - f0) <= tie_tol))
        stage2 = c.stage2 | (fin & (f <= ftest) & (g >= jnp.minimum(c1, c2) * g0))
        # dcstep on psi (stage 1, when f is above the line but below fx) or on phi.
        use_psi = ~stage2 & (f <= c.x[1]) & (f > ftest)
        shift = jnp.where(use_psi, gtest, 0.0)
        fm, gm = f - stp * shift, g - shift
        xm = jnp.stack([c.x[0], c.x[1] - c.x[0] * shift, c.x[2] - shift])
        ym = jnp.stack([c.y[0], c.y[1] - c.y[0] * shift, c.y[2] - shift])
        stx, fx, gx, sty, fy, gy, nxt, brackt = dcstep(*xm, *ym, stp, fm, gm, c.brackt, c.stmin, c.stmax)
        fx, gx, fy, gy = fx + stx * shift, gx + shift, fy + sty * shift, gy + shift
        # a non-finite trial is too long: it becomes sty and the next trial bisects.
        x = jnp.where(fin, jnp.stack([stx, fx, gx]), c.x)
        y = jnp.where(fin, jnp.stack([sty, fy, gy]), jnp.stack([stp, jnp.inf, jnp.inf]).astype(dtype))
        brackt = jnp.where(fin, brackt, True)
        nxt = jnp.where(fin, nxt, c.x[0] + P5 * (stp - c.x[0]))
        width, width1 = c.width, c.width1
        shrink_slow = brackt & fin & (jnp.abs(y[0] - x[0]) >= P66 * width1)
        nxt = jnp.where(shrink_slow, x[0] + P5 * (y[0] - x[0]), nxt)
        width, width1 = jnp.where(brackt, jnp.abs(y[0] - x[0]), width), jnp.where(brackt, width, width1)
        lo, hi = jnp.minimum(x[0], y[0]), jnp.maximum(x[0], y[0])
        stmin = jnp.where(brackt, lo, nxt + XTRAPL * (nxt - x[0]))
        stmax = jnp.where(brackt, hi, nxt + XTRAPU * (nxt - x[0]))
        nxt = jnp.clip(nxt, 0.0, stpmax)
        bad = ~jnp.isfinite(nxt) | (brackt & ((nxt <= stmin) | (nxt >= stmax)))
        # MINPACK-2 stops here ("rounding errors prevent progress") and keeps stx.
        stuck = fin & bad & brackt
        nxt = jnp.where(~jnp.isfinite(nxt), x[0] + P5 * (stp - x[0]), nxt)
        narrow = stuck | (brackt & (stmax - stmin <= xtol * stmax))
        best = _tree.where(converged | (fin & (x[0] == stp)), t, c.best)
        done = converged | narrow | (c.i + 1 >= self.max_iter) | (stp >= stpmax)
        return _Carry(
            c.i + 1, jnp.where(converged, stp, nxt).astype(dtype), brackt, stage2, x.astype(dtype), y.astype(dtype),
            stmin.astype(dtype), stmax.astype(dtype), width.astype(dtype), width1.astype(dtype),
            best, converged, done,
        )
