"""MINPACK-2's ``dcstep`` and one ``dcsrch`` update of the interval of uncertainty.

The pure core of the Moré-Thuente line search, shared by the
:class:`~jaxgd.linesearch.more_thuente.MoreThuente` step-size rule and
L-BFGS-B's projected search (:mod:`jaxgd.directions.lbfgsb_search`). After
an evaluation :math:`(\\phi(\\alpha), \\phi'(\\alpha))` at the trial
:math:`\\alpha`, :func:`interpolate` runs ``dcstep`` (on the modified function
:math:`\\psi(\\alpha) = \\phi(\\alpha) - \\phi(0) - c_1 \\alpha \\phi'(0)` in
stage 1 when :math:`\\phi` fell below :math:`\\phi(\\alpha_x)` but not below
the sufficient-decrease line) and :func:`safeguard` bisects a slowly
shrinking interval, sets the next extrapolation range and clips the next
trial to :math:`[0, \\alpha_{\\max}]`.

The callers keep what differs: when stage 2 begins, the stopping tests,
what a non-finite trial does, and which point is returned.

Reference: J. J. Moré & D. J. Thuente, "Line search algorithms with
guaranteed sufficient decrease", ACM TOMS 20(3), 1994; MINPACK-2
``dcsrch.f``/``dcstep.f`` (Argonne, 1993); scipy's ``_dcsrch.py``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

XTRAPL, XTRAPU, P5, P66 = 1.1, 4.0, 0.5, 0.66  # dcsrch's extrapolation and bisection constants


class Interval(NamedTuple):
    """``dcsrch``'s interval of uncertainty: ``stx`` the best point, ``sty`` the other end."""

    brackt: jax.Array  # True once a minimiser is bracketed
    stx: jax.Array
    fx: jax.Array
    gx: jax.Array
    sty: jax.Array
    fy: jax.Array
    gy: jax.Array
    stmin: jax.Array  # the range allowed for the next trial
    stmax: jax.Array
    width: jax.Array  # the interval width one and two updates ago
    width1: jax.Array


def start(f0: jax.Array, g0: jax.Array, stp: jax.Array, stpmax: jax.Array, xp: Any = jnp) -> Interval:
    """The interval at ``task = 'START'``: both ends at 0, next trial in ``[0, stp + 4 stp]``."""
    zero = xp.zeros_like(f0)
    return Interval(xp.asarray(False), zero, f0, g0, zero, f0, g0, zero, stp + XTRAPU * stp, stpmax, stpmax / P5)


def _cubic_parts(
    a: jax.Array, fa: jax.Array, da: jax.Array, b: jax.Array, fb: jax.Array, db: jax.Array, clip: bool, xp: Any = jnp
) -> tuple:
    """``(theta, gamma)`` of dcstep's cubic through ``(a, fa, da)`` and ``(b, fb, db)``,
    scaled by ``s = max(|theta|, |da|, |db|)`` against overflow; ``gamma`` takes the sign
    dcstep gives it (negative when ``b > a``, i.e. ``stp > stx``)."""
    theta = 3.0 * (fa - fb) / (b - a) + da + db
    s = xp.maximum(xp.maximum(xp.abs(theta), xp.abs(da)), xp.abs(db))
    s = xp.where(s > 0, s, 1.0)
    disc = (theta / s) ** 2 - (da / s) * (db / s)
    gamma = s * xp.sqrt(xp.maximum(disc, 0.0) if clip else disc)
    return theta, gamma


def dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax, xp=jnp):  # noqa: ANN001, ANN201
    """One safeguarded step of Moré & Thuente (1994), MINPACK-2 ``dcstep``, case by case.

    The four cases of section 4 are all computed and one is selected.
    Returns ``(stx, fx, dx, sty, fy, dy, stpf, brackt)``: the new interval
    (``stx`` the best point, ``sty`` the other end) and the next trial.
    """
    sgnd = dp * xp.sign(dx)
    # case 1: higher value: the minimum is bracketed.
    th, ga = _cubic_parts(stx, fx, dx, stp, fp, dp, False, xp)
    ga1 = xp.where(stp < stx, -ga, ga)
    r1 = ((ga1 - dx) + th) / (((ga1 - dx) + ga1) + dp)
    stpc1 = stx + r1 * (stp - stx)
    stpq1 = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
    f1 = xp.where(xp.abs(stpc1 - stx) < xp.abs(stpq1 - stx), stpc1, stpc1 + (stpq1 - stpc1) / 2.0)
    # case 2: lower value, derivatives of opposite sign: bracketed.
    ga2 = xp.where(stp > stx, -ga, ga)
    r2 = ((ga2 - dp) + th) / (((ga2 - dp) + ga2) + dx)
    stpc2 = stp + r2 * (stx - stp)
    stpq2 = stp + (dp / (dp - dx)) * (stx - stp)
    f2 = xp.where(xp.abs(stpc2 - stp) > xp.abs(stpq2 - stp), stpc2, stpq2)
    # case 3: lower value, same sign, derivative magnitude decreases.
    th3, ga3 = _cubic_parts(stx, fx, dx, stp, fp, dp, True, xp)
    ga3 = xp.where(stp > stx, -ga3, ga3)
    r3 = ((ga3 - dp) + th3) / ((ga3 + (dx - dp)) + ga3)
    stpc3 = xp.where((r3 < 0) & (ga3 != 0), stp + r3 * (stx - stp), xp.where(stp > stx, stpmax, stpmin))
    stpq3 = stpq2
    near = xp.where(xp.abs(stpc3 - stp) < xp.abs(stpq3 - stp), stpc3, stpq3)
    far = xp.where(xp.abs(stpc3 - stp) > xp.abs(stpq3 - stp), stpc3, stpq3)
    cap = stp + P66 * (sty - stp)
    f3_br = xp.where(stp > stx, xp.minimum(cap, near), xp.maximum(cap, near))
    f3 = xp.where(brackt, f3_br, xp.clip(far, stpmin, stpmax))
    # case 4: lower value, same sign, derivative magnitude does not decrease.
    th4, ga4 = _cubic_parts(sty, fy, dy, stp, fp, dp, False, xp)
    ga4 = xp.where(stp > sty, -ga4, ga4)
    r4 = ((ga4 - dp) + th4) / (((ga4 - dp) + ga4) + dy)
    f4 = xp.where(brackt, stp + r4 * (sty - stp), xp.where(stp > stx, stpmax, stpmin))

    c1, c2, c3 = fp > fx, sgnd < 0, xp.abs(dp) < xp.abs(dx)
    stpf = xp.where(c1, f1, xp.where(c2, f2, xp.where(c3, f3, f4)))
    brackt = brackt | c1 | (~c1 & c2)
    # the new interval
    sty_n = xp.where(c1, stp, xp.where(c2, stx, sty))
    fy_n = xp.where(c1, fp, xp.where(c2, fx, fy))
    dy_n = xp.where(c1, dp, xp.where(c2, dx, dy))
    stx_n, fx_n, dx_n = (xp.where(c1, old, new) for old, new in ((stx, stp), (fx, fp), (dx, dp)))
    return stx_n, fx_n, dx_n, sty_n, fy_n, dy_n, stpf, brackt


def interpolate(
    iv: Interval, stp: jax.Array, f: jax.Array, g: jax.Array, stage2: jax.Array, ftest: jax.Array, gtest: jax.Array,
    xp: Any = jnp,
) -> tuple[Interval, jax.Array]:
    """``dcstep`` after an evaluation ``(f, g)`` at ``stp``: ``(interval, next trial)``.

    In stage 1 (``stage2`` False), when ``fx >= f > ftest = phi(0) + stp gtest``,
    the step is taken on :math:`\\psi` (every value shifted by ``alpha gtest``,
    every slope by ``gtest``) and shifted back. ``stmin``/``stmax``/``width``
    are left for :func:`safeguard`.
    """
    shift = xp.where(~stage2 & (f <= iv.fx) & (f > ftest), gtest, 0.0)
    stx, fx, gx, sty, fy, gy, nxt, brackt = dcstep(
        iv.stx, iv.fx - iv.stx * shift, iv.gx - shift, iv.sty, iv.fy - iv.sty * shift, iv.gy - shift,
        stp, f - stp * shift, g - shift, iv.brackt, iv.stmin, iv.stmax, xp,
    )
    new = iv._replace(brackt=brackt, stx=stx, fx=fx + stx * shift, gx=gx + shift, sty=sty, fy=fy + sty * shift, gy=gy + shift)
    return new, nxt


def decreased(f: Any, ftest: Any, finit: Any, tie: Any) -> Any:
    """The decrease half of the convergence test: sufficient decrease (``f <= ftest``), or
    ``f`` equal to :math:`\\phi(0)` = ``finit`` to within ``tie`` (a rounding-level tolerance).

    Near a minimiser differences of f drown in rounding and the sufficient-decrease test passes
    or fails by luck; Hager & Zhang's approximate Wolfe conditions (SIAM J. Optim. 16(1), 2005,
    eq. 4.1) accept such a trial when it meets the curvature condition (the caller's half).
    Shared by :class:`~jaxgd.linesearch.MoreThuente`, L-BFGS-B's search and the host tier
    (NumPy scalars: the builtin ``abs`` and ``|`` serve both).
    """
    return (f <= ftest) | (abs(f - finit) <= tie)


def repeats_best(f: Any, g: Any, stx: Any, fx: Any, gx: Any, stp: Any = None, apart: Any = None) -> Any:
    """True where a trial's value and slope equal the best trial's (``stx > 0``) bit for bit.

    The same point to rounding (a step that differs from ``stx`` below the rounding of the
    parameters), which a search would otherwise evaluate every other trial until its budget runs
    out (sif2jax's PENALTY3). MINPACK-2 stops one rounding sooner, where the next trial would be
    ``stx`` itself ("rounding errors prevent progress"); every search here ends at such a trial
    (:class:`~jaxgd.linesearch.MoreThuente` on both tiers, L-BFGS-B's). With ``apart``
    (MoreThuente with a float16 or bfloat16 loss: the step that moves some entry of the parameters
    by an ulp, ``core.stepsize.shortest_move``), only where the trial step ``stp`` is less than ``apart``
    from ``stx``: farther trials are other points, whose value and slope can still read the same
    in a coarse type (bfloat16 ``1e-4 ||x - 1||^2`` from 0: the unit trial and the next one, five
    times longer, did, and the search ended at its start). Works on JAX and NumPy scalars alike.
    """
    same = (f == fx) & (g == gx) & (stx > 0)
    return same if apart is None else same & (abs(stp - stx) < apart)


def safeguard(
    iv: Interval, nxt: jax.Array, stpmax: jax.Array, xtol: jax.Array, xp: Any = jnp
) -> tuple[jax.Array, Interval, jax.Array, jax.Array]:
    """The rest of a ``dcsrch`` update, on the interval :func:`interpolate` returned.

    Bisects when a bracketing interval did not shrink to 0.66 of its width
    two updates ago, records the widths, sets ``[stmin, stmax]`` (the
    interval once bracketed, else the extrapolation range
    ``[nxt + 1.1 (nxt - stx), nxt + 4 (nxt - stx)]``) and clips ``nxt`` to
    ``[0, stpmax]``.

    Returns:
      ``(nxt, interval, outside, narrow)``: ``outside`` when, bracketed, the
      next trial is not inside ``(stmin, stmax)`` (rounding errors prevent
      progress); ``narrow`` when, bracketed, ``stmax - stmin <= xtol stmax``.
    """
    brackt, stx, sty = iv.brackt, iv.stx, iv.sty
    nxt = xp.where(brackt & (xp.abs(sty - stx) >= P66 * iv.width1), stx + P5 * (sty - stx), nxt)
    width1 = xp.where(brackt, iv.width, iv.width1)
    width = xp.where(brackt, xp.abs(sty - stx), iv.width)
    stmin = xp.where(brackt, xp.minimum(stx, sty), nxt + XTRAPL * (nxt - stx))
    stmax = xp.where(brackt, xp.maximum(stx, sty), nxt + XTRAPU * (nxt - stx))
    nxt = xp.clip(nxt, 0.0, stpmax)
    outside = brackt & ((nxt <= stmin) | (nxt >= stmax))
    narrow = brackt & (stmax - stmin <= xtol * stmax)
    return nxt, iv._replace(stmin=stmin, stmax=stmax, width=width, width1=width1), outside, narrow
