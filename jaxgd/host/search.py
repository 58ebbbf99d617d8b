"""The Moré-Thuente line search on the host: :class:`jaxgd.linesearch.MoreThuente`'s step over NumPy scalars.

The interval arithmetic is the compiled search's own (:mod:`jaxgd.linesearch.dcsrch`,
called with :data:`OPS`, NumPy scalar operations in place of ``jax.numpy``); what
this module repeats is ``MoreThuente.step``'s loop around it, statement for
statement, so that a host run takes the compiled run's trials (to the rounding
of its reductions). ``tests/test_host_tier.py`` compares the two on a problem set.

Reference: J. J. Moré & D. J. Thuente, ACM TOMS 20(3), 1994 (MINPACK-2 ``dcsrch``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from ..linesearch import dcsrch as _dcsrch
from ..linesearch import zoom as _zoom
from . import directions as _directions
from ..linesearch import wolfe as _wolfe
from ..linesearch import more_thuente as _more_thuente
from ..linesearch.more_thuente import MoreThuenteState
from ..core import stepsize as _stepsize

INT32_MAX = np.iinfo(np.int32).max


def _nan_or(a: Any, b: Any, take_a: bool) -> Any:
    """``a`` if ``take_a`` else ``b``, but a NaN operand wins (``jnp.maximum``/``minimum``'s rule)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if take_a else b


class _Ops:
    """What :mod:`jaxgd.linesearch.dcsrch` calls of ``jax.numpy``, for NumPy scalars of one dtype.

    Written with comparisons instead of NumPy's ufuncs (a ufunc call on a scalar costs ~1 us,
    dcstep makes ~60): ``where`` selects in Python, ``maximum``/``minimum`` return NaN when
    either operand is NaN (as ``jnp.maximum``), ``sign`` keeps 0 and NaN, ``clip`` is
    ``jnp.clip``'s ``min(max(x, lo), hi)``; arithmetic stays NumPy's (division by zero gives
    Inf or NaN, as in XLA)."""

    sqrt = np.sqrt

    @staticmethod
    def abs(x: Any) -> Any:
        return abs(x)

    @staticmethod
    def maximum(a: Any, b: Any) -> Any:
        return _nan_or(a, b, a >= b)

    @staticmethod
    def minimum(a: Any, b: Any) -> Any:
        return _nan_or(a, b, a <= b)

    @staticmethod
    def sign(x: Any) -> Any:
        return type(x)(1) if x > 0 else type(x)(-1) if x < 0 else x

    @staticmethod
    def where(cond: Any, a: Any, b: Any) -> Any:
        return a if cond else b

    @staticmethod
    def clip(x: Any, lo: Any, hi: Any) -> Any:
        return _Ops.minimum(_Ops.maximum(x, lo), hi)

    @staticmethod
    def zeros_like(x: Any) -> Any:
        return type(x)(0)

    @staticmethod
    def asarray(x: Any) -> Any:
        return np.bool_(x)

    @staticmethod
    def isfinite(x: Any) -> Any:
        return np.bool_(math.isfinite(x))


OPS = _Ops()


class Trial(NamedTuple):
    """An evaluated point on the host: flat parameters, value, flat gradient, aux (a device value)."""

    x: np.ndarray
    value: Any
    grad: np.ndarray
    aux: Any


class Context(NamedTuple):
    """What the search sees (:class:`jaxgd.core.stepsize.StepContext`, on flat NumPy vectors)."""

    x: np.ndarray
    value: Any
    grad: np.ndarray
    direction: np.ndarray
    slope: Any
    evaluate: Callable[[Any], Trial]
    accept: Any = None  # Trial -> bool (StepContext.accept), or None


def _scalar(v: Any, dtype: Any) -> Any:
    return np.asarray(v, dtype)[()]


def init(value: Any, grad: np.ndarray) -> MoreThuenteState:
    """``MoreThuente.init``: :math:`f_{-1} = f_0 + \\|g_0\\|/2`."""
    return MoreThuenteState(value + (0.5 * _directions.norm(grad)).astype(value.dtype), np.bool_(False), np.int32(0))


def first_trial(initial: Any, interpolate_always: bool, state: MoreThuenteState, ctx: Context, min_move: bool = False) -> Any:
    """``MoreThuente.first_trial``: ``wolfe.interpolated_step`` capped by ``initial`` (a scalar of
    the value's dtype), every step with ``start="interpolate"``, else until a step was accepted;
    ``min_move``: the rule's floor, in float32 and narrower types."""
    if state.started and not interpolate_always:
        first = initial
    else:
        guess = 1.01 * 2.0 * (ctx.value - state.prev_value) / ctx.slope
        first = _Ops.minimum(initial, guess) if (math.isfinite(guess) and guess > 0) else initial
    if interpolate_always and min_move and _stepsize.narrow(first.dtype):
        first = _more_thuente.first_move(first, _stepsize.shortest_move(ctx.x, ctx.direction, first.dtype), initial, _Ops)
    return first


class Search:
    """A :class:`jaxgd.linesearch.MoreThuente`'s constants in one dtype, made once per run."""

    __slots__ = ("rule", "dtype", "c1", "c2", "xtol", "stpmax", "rtol", "max_iter", "cast", "placeholder", "initial", "always",
                 "narrow")

    def __init__(self, rule: Any, dtype: Any, x: np.ndarray) -> None:
        self.rule, self.dtype = rule, dtype
        self.initial, self.always = _scalar(rule.initial, dtype), rule.start == "interpolate"
        self.c1, self.c2, self.xtol = _scalar(rule.c1, dtype), _scalar(rule.c2, dtype), _scalar(rule.xtol, dtype)
        self.stpmax = _scalar(_more_thuente.step_cap(dtype), dtype)
        self.rtol = _wolfe.approx_eps(dtype) * np.finfo(dtype).eps if rule.approx_rtol is None else rule.approx_rtol
        self.max_iter = int(rule.max_iter)
        self.cast = dtype != np.float64  # a Python float (weak, as in jax) met only float64 scalars: nothing to round
        self.narrow = _stepsize.narrow(dtype)
        zeros = np.zeros_like(x)
        self.placeholder = Trial(zeros, dtype.type(0), zeros, None)  # the compiled search's placeholder trial

    def step(self, state: MoreThuenteState, ctx: Context) -> tuple[Any, Trial, MoreThuenteState, tuple]:
        """One search: ``(alpha, accepted trial, new state, (nfev, ngev, failed, (unit_sq_grad, unit_slope, located,
        noise, unseen)))``, as ``MoreThuente.step``."""
        dtype, c1, c2, xtol, stpmax = self.dtype, self.c1, self.c2, self.xtol, self.stpmax
        f0, g0 = ctx.value, ctx.slope.astype(dtype)
        gtest = c1 * g0
        tie_tol = (self.rtol * abs(f0)).astype(dtype)
        stp = first_trial(self.initial, self.always, state, ctx, self.rule.min_move)
        iv = _dcsrch.start(f0, g0, stp, stpmax, OPS)
        best = self.placeholder
        i, stage2, converged, hit, unit_sq_grad = 0, np.bool_(False), np.bool_(False), False, dtype.type(np.nan)
        unit_slope, located, noise = dtype.type(np.nan), dtype.type(np.inf), dtype.type(0)
        unseen = False  # MoreThuente's StepInfo.unseen (float32 and narrower; False in float64, where it is None)
        done = not (g0 < 0)  # not a descent direction (or NaN slope): fail without evaluating
        isfinite, interpolate, safeguard, P5 = math.isfinite, _dcsrch.interpolate, _dcsrch.safeguard, _dcsrch.P5
        decreased = _dcsrch.decreased
        while not done:
            t = ctx.evaluate(stp)
            f = t.value.astype(dtype)
            g = _directions.dot(t.grad, ctx.direction).astype(dtype)
            # (a NaN or Inf gradient element makes the slope g, a sum of products with it, NaN or Inf)
            fin = isfinite(f) and isfinite(g)
            hit = hit or not fin
            if i == 0 and stp == 1 and fin:  # MoreThuente's StepInfo.unit_sq_grad (a finite unit trial)
                unit_sq_grad = _directions.dot(t.grad, t.grad).astype(dtype)
                unit_slope = g
            if fin and g0 + abs(g) / _more_thuente.LOCATE <= 0:  # StepInfo.located (MoreThuente._body's test)
                located = min(located, stp)
            if fin and abs(f - f0) > _more_thuente.NOISE_RATIO * stp * (abs(g) - g0):  # StepInfo.noise
                noise = max(noise, abs(f - f0))
            ftest = f0 + stp * gtest
            converged = fin and abs(g) <= -c2 * g0 and bool(decreased(f, ftest, f0, tie_tol))
            stage2 = stage2 or (fin and f <= ftest and g >= OPS.minimum(c1, c2) * g0)
            fx_before, gx_before, stx_before = iv.fx, iv.gx, iv.stx
            new, nxt = interpolate(iv, stp, f, g, np.bool_(stage2), ftest, gtest, OPS)
            if not fin:  # a non-finite trial is too long: it becomes sty, the next trial bisects
                inf = dtype.type(np.inf)
                new = new._replace(brackt=np.bool_(True), stx=iv.stx, fx=iv.fx, gx=iv.gx, sty=stp, fy=inf, gy=inf)
                nxt = iv.stx + P5 * (stp - iv.stx)
            nxt, iv, outside, narrow = safeguard(new, nxt, stpmax, xtol, OPS)
            nxt_finite = isfinite(nxt)
            stuck = fin and iv.brackt and (not nxt_finite or outside) and iv.stx > 0
            if not nxt_finite or (outside and iv.stx <= 0):
                nxt = iv.stx + P5 * (stp - iv.stx)
            if converged or (fin and iv.stx == stp):
                best = t
            at_start = (t.x == ctx.x).all()
            if i == 0 and self.narrow:  # StepInfo.unseen: the first trial moved x, f did not fall as its slope said
                unseen = bool(_stepsize.unseen_at(np.bool_(True), fin, at_start, f, f0, g, g0, stp, tie_tol))
            again = fin and bool(_dcsrch.repeats_best(f, g, stx_before, fx_before, gx_before))
            done = converged or stuck or narrow or at_start or again or i + 1 >= self.max_iter or stp >= stpmax
            done = done or (not fin and self.rule.fallback)
            if self.cast:
                iv = _dcsrch.Interval(*(v if isinstance(v, np.bool_) else dtype.type(v) for v in iv))
            i += 1
            stp = dtype.type(stp if converged else nxt)
        ok = bool(converged or (iv.stx > 0 and iv.fx < f0))
        alpha = stp if converged else iv.stx
        if self.rule.fallback:  # MoreThuente.step's: scipy's zoom search after a failed or rejected search
            accepted = True if ctx.accept is None else bool(ctx.accept(best))
            if g0 < 0 and not (converged and not hit and accepted):
                # (MoreThuente.step's seed: the first search's only trial, not finite or its best, answers the first)
                seed = i == 1 and (hit or best is t)
                first = first_trial(self.initial, self.always, state, ctx, self.rule.min_move)
                za, zt, found, n = self.zoom(ctx, f0, g0, first, (hit, best, accepted) if seed else None)
                i += n
                if found:
                    alpha, best, ok = za, zt, True
                else:  # the first search's outcome stands: a point that lowered f, or an accepted Wolfe step
                    ok = bool((iv.stx > 0 and iv.fx < f0) or (converged and accepted))
        progress, prev = _more_thuente.stall_update(ok, best.value.astype(dtype), f0, tie_tol, dtype.type(state.prev_value),
                                                    state.started, not self.always, OPS)
        progress = bool(progress)
        since = np.int32(0 if progress else min(int(state.since), INT32_MAX - 1) + 1)
        new_state = MoreThuenteState(prev, np.bool_(state.started or ok), since)
        return dtype.type(alpha), best, new_state, (i, i, not ok, (unit_sq_grad, unit_slope, dtype.type(located * abs(g0)),
                                                                   dtype.type(noise), unseen))

    def zoom(self, ctx: Context, f0: Any, g0: Any, a: Any, seed: Optional[tuple]) -> tuple[Any, Trial, bool, int]:
        """``MoreThuente._zoom``: ``(alpha, trial, found, evaluations)`` (:mod:`jaxgd.linesearch.zoom` over NumPy);
        ``seed``: ``(hit, trial, accepted)``, the first search's only trial, at ``a`` (not finite where ``hit``: read
        as Inf, which no acceptance makes a find), and the acceptance test's verdict on it (on the placeholder
        where ``hit``, as the compiled zoom's)."""
        dtype, z, best, n = self.dtype, _zoom.start(f0, g0, np), self.placeholder, 0
        inf = dtype.type(np.inf)
        while True:
            if seed is not None:  # the first iteration: scipy's cache answers the trial (MoreThuente._zoom's cached)
                hit, t, ok = seed
                seed = None
                f, g = (inf, inf) if hit else (t.value.astype(dtype),
                                               _directions.dot(t.grad, ctx.direction).astype(dtype))
            else:
                t = ctx.evaluate(a)
                n += 1
                ok = True if ctx.accept is None else bool(ctx.accept(t))
                f, g = t.value.astype(dtype), _directions.dot(t.grad, ctx.direction).astype(dtype)
            z, nxt, found, failed = _zoom.update(z, a, f, g, np.bool_(ok), f0, g0, self.c1, self.c2, self.stpmax, np)
            if found:
                return a, t, True, n
            if failed:
                return a, best, False, n
            a = dtype.type(nxt)
