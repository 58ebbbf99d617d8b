"""L-BFGS-B's line search: Moré-Thuente (MINPACK-2 ``dcsrch``) on ``[0, stpmax]``.

A pure, jittable transcription of ``dcsrch`` and ``dcstep`` as L-BFGS-B's
``lnsrlb`` calls them (``ftol = 1e-3``, ``gtol = 0.9``, ``xtol = 0.1``,
``stpmin = 0``, ``stpmax`` the largest feasible step along the direction,
at most 20 evaluations). It finds :math:`\\alpha` with

.. math::
   \\phi(\\alpha) \\le \\phi(0) + c_1 \\alpha \\phi'(0), \\qquad
   |\\phi'(\\alpha)| \\le c_2 |\\phi'(0)|,

by safeguarded cubic and quadratic interpolation on an interval of
uncertainty, and stops with a warning (the point is still taken, as in
``lnsrlb``) when rounding errors prevent progress, the interval is below
``xtol``, or ``stpmax`` satisfies the sufficient-decrease test.

A non-finite trial (which ``dcsrch`` does not handle) halves the step
towards the best point and caps ``stpmax`` there.

Reference: J. J. Moré & D. J. Thuente, "Line search algorithms with
guaranteed sufficient decrease", ACM TOMS 20(3), 1994; MINPACK-2
``dcsrch.f``/``dcstep.f`` (Argonne, 1993).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

_P5, _P66, _XTRAPL, _XTRAPU = 0.5, 0.66, 1.1, 4.0


class MTState(NamedTuple):
    """``dcsrch``'s saved state (``isave``/``dsave``)."""

    brackt: jax.Array
    stage: jax.Array  # 1 or 2
    finit: jax.Array
    ginit: jax.Array
    gtest: jax.Array
    stx: jax.Array
    fx: jax.Array
    gx: jax.Array
    sty: jax.Array
    fy: jax.Array
    gy: jax.Array
    stmin: jax.Array
    stmax: jax.Array
    width: jax.Array
    width1: jax.Array
    stpmax: jax.Array


def start(f0: jax.Array, g0: jax.Array, stp: jax.Array, stpmax: jax.Array, ftol: Any) -> MTState:
    """``dcsrch`` with ``task = 'START'`` (``g0 < 0`` is the caller's to check)."""
    zero = jnp.zeros_like(f0)
    width = stpmax
    return MTState(
        brackt=jnp.asarray(False),
        stage=jnp.asarray(1, jnp.int32),
        finit=f0,
        ginit=g0,
        gtest=ftol * g0,
        stx=zero,
        fx=f0,
        gx=g0,
        sty=zero,
        fy=f0,
        gy=g0,
        stmin=zero,
        stmax=stp + _XTRAPU * stp,
        width=width,
        width1=width / _P5,
        stpmax=stpmax,
    )


def _cubic_gamma(theta: jax.Array, da: jax.Array, db: jax.Array, clamp: bool) -> jax.Array:
    s = jnp.maximum(jnp.maximum(jnp.abs(theta), jnp.abs(da)), jnp.abs(db))
    s = jnp.where(s > 0, s, 1.0)
    q = (theta / s) ** 2 - (da / s) * (db / s)
    return s * jnp.sqrt(jnp.maximum(q, 0.0) if clamp else q)


def dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):  # noqa: ANN001, ANN201
    """MINPACK-2 ``dcstep``: the safeguarded step and the updated interval.

    Returns ``(stx, fx, dx, sty, fy, dy, stp, brackt)``; the four cases of
    Moré & Thuente (1994, section 4) are all computed and one is selected.
    """
    sgnd = dp * jnp.sign(dx)
    # Case 1: a higher function value; the minimum is bracketed.
    theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
    gamma = _cubic_gamma(theta, dx, dp, False)
    gamma = jnp.where(stp < stx, -gamma, gamma)
    r = ((gamma - dx) + theta) / (((gamma - dx) + gamma) + dp)
    stpc = stx + r * (stp - stx)
    stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
    f1 = jnp.where(jnp.abs(stpc - stx) < jnp.abs(stpq - stx), stpc, stpc + (stpq - stpc) / 2.0)
    # Case 2: a lower value and derivatives of opposite sign.
    gamma = _cubic_gamma(theta, dx, dp, False)
    gamma = jnp.where(stp > stx, -gamma, gamma)
    r = ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dx)
    stpc = stp + r * (stx - stp)
    stpq = stp + (dp / (dp - dx)) * (stx - stp)
    f2 = jnp.where(jnp.abs(stpc - stp) > jnp.abs(stpq - stp), stpc, stpq)
    # Case 3: a lower value, same sign, and the derivative decreases in magnitude.
    gamma = _cubic_gamma(theta, dx, dp, True)
    gamma = jnp.where(stp > stx, -gamma, gamma)
    r = ((gamma - dp) + theta) / ((gamma + (dx - dp)) + gamma)
    stpc = jnp.where((r < 0) & (gamma != 0), stp + r * (stx - stp), jnp.where(stp > stx, stpmax, stpmin))
    stpq = stp + (dp / (dp - dx)) * (stx - stp)
    near = jnp.where(jnp.abs(stpc - stp) < jnp.abs(stpq - stp), stpc, stpq)
    near = jnp.where(stp > stx, jnp.minimum(stp + _P66 * (sty - stp), near), jnp.maximum(stp + _P66 * (sty - stp), near))
    far = jnp.where(jnp.abs(stpc - stp) > jnp.abs(stpq - stp), stpc, stpq)
    far = jnp.maximum(stpmin, jnp.minimum(stpmax, far))
    f3 = jnp.where(brackt, near, far)
    # Case 4: a lower value, same sign, and the derivative does not decrease.
    theta4 = 3.0 * (fp - fy) / (sty - stp) + dy + dp
    gamma = _cubic_gamma(theta4, dy, dp, False)
    gamma = jnp.where(stp > sty, -gamma, gamma)
    r = ((gamma - dp) + theta4) / (((gamma - dp) + gamma) + dy)
    f4 = jnp.where(brackt, stp + r * (sty - stp), jnp.where(stp > stx, stpmax, stpmin))

    case1, case2, case3 = fp > fx, sgnd < 0, jnp.abs(dp) < jnp.abs(dx)
    stpf = jnp.where(case1, f1, jnp.where(case2, f2, jnp.where(case3, f3, f4)))
    brackt = brackt | case1 | (~case1 & case2)
    # Update the interval that contains a minimiser.
    sty_n = jnp.where(case1, stp, jnp.where(case2, stx, sty))
    fy_n = jnp.where(case1, fp, jnp.where(case2, fx, fy))
    dy_n = jnp.where(case1, dp, jnp.where(case2, dx, dy))
    stx_n, fx_n, dx_n = (jnp.where(case1, a, b) for a, b in ((stx, stp), (fx, fp), (dx, dp)))
    return stx_n, fx_n, dx_n, sty_n, fy_n, dy_n, stpf, brackt


def dcsrch(ms: MTState, stp: jax.Array, f: jax.Array, g: jax.Array, gtol: Any, xtol: Any) -> tuple[jax.Array, MTState, jax.Array]:
    """One ``dcsrch`` call after an evaluation at ``stp`` (``phi = f``, ``phi' = g``).

    Returns:
      ``(stp, state, stop)``: the next trial step, the state, and True when
      the search ends at the evaluated ``stp`` (``CONVERGENCE`` or a
      ``WARNING``; ``stp`` is then returned unchanged).
    """
    ftest = ms.finit + stp * ms.gtest
    stage = jnp.where((ms.stage == 1) & (f <= ftest) & (g >= 0), 2, ms.stage)
    warn = (ms.brackt & ((stp <= ms.stmin) | (stp >= ms.stmax))) | (ms.brackt & (ms.stmax - ms.stmin <= xtol * ms.stmax))
    warn = warn | ((stp == ms.stpmax) & (f <= ftest) & (g <= ms.gtest))
    warn = warn | ((stp == 0) & ((f > ftest) | (g >= ms.gtest)))
    conv = (f <= ftest) & (jnp.abs(g) <= gtol * (-ms.ginit))
    stop = warn | conv

    # The modified function in stage 1 when the value fell but not enough.
    modified = (stage == 1) & (f <= ms.fx) & (f > ftest)
    shift = jnp.where(modified, ms.gtest, 0.0)
    stx, fx, gx, sty, fy, gy, stp_new, brackt = dcstep(
        ms.stx, ms.fx - ms.stx * shift, ms.gx - shift, ms.sty, ms.fy - ms.sty * shift, ms.gy - shift,
        stp, f - stp * shift, g - shift, ms.brackt, ms.stmin, ms.stmax,
    )
    fx, gx, fy, gy = fx + stx * shift, gx + shift, fy + sty * shift, gy + shift
    # Bisect when the interval does not shrink fast enough.
    bisect = brackt & (jnp.abs(sty - stx) >= _P66 * ms.width1)
    stp_new = jnp.where(bisect, stx + _P5 * (sty - stx), stp_new)
    width1 = jnp.where(brackt, ms.width, ms.width1)
    width = jnp.where(brackt, jnp.abs(sty - stx), ms.width)
    stmin = jnp.where(brackt, jnp.minimum(stx, sty), stp_new + _XTRAPL * (stp_new - stx))
    stmax = jnp.where(brackt, jnp.maximum(stx, sty), stp_new + _XTRAPU * (stp_new - stx))
    stp_new = jnp.minimum(jnp.maximum(stp_new, 0.0), ms.stpmax)
    stuck = brackt & ((stp_new <= stmin) | (stp_new >= stmax) | (stmax - stmin <= xtol * stmax))
    stp_new = jnp.where(stuck, stx, stp_new)
    new = MTState(brackt, stage, ms.finit, ms.ginit, ms.gtest, stx, fx, gx, sty, fy, gy, stmin, stmax, width, width1, ms.stpmax)
    new = jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), ms._replace(stage=stage), new)
    return jnp.where(stop, stp, stp_new), new, stop


class SearchResult(NamedTuple):
    """The accepted trial (or the start point when ``failed``) and the cost."""

    trial: Any
    stp: jax.Array
    nfev: jax.Array
    failed: jax.Array


def search(
    evaluate: Callable[[jax.Array], tuple[Any, jax.Array, jax.Array]],
    start_trial: Any,
    f0: jax.Array,
    g0: jax.Array,
    stp: jax.Array,
    stpmax: jax.Array,
    ftol: Any,
    gtol: Any,
    xtol: Any,
    maxls: int,
) -> SearchResult:
    """Run ``dcsrch`` from ``stp`` until it stops or ``maxls`` evaluations are spent.

    Args:
      evaluate: ``stp -> (trial, phi, phi')`` (one ``value_and_grad``).
      start_trial: a trial with the shapes ``evaluate`` returns (returned on failure).
      f0, g0: :math:`\\phi(0)`, :math:`\\phi'(0) < 0`.
      stp, stpmax: the first step and the largest allowed one.
      ftol, gtol, xtol: ``dcsrch``'s tolerances (:math:`c_1`, :math:`c_2`, relative interval width).
      maxls: the evaluation budget (static).

    Returns:
      A :class:`SearchResult`; ``failed`` when the budget ran out first.
    """
    ms = start(f0, g0, stp, stpmax, ftol)

    def cond(carry):  # noqa: ANN001, ANN202
        _, _, _, nfev, done, _ = carry
        return ~done & (nfev < maxls)

    def body(carry):  # noqa: ANN001, ANN202
        ms, stp, best, nfev, _, stp_done = carry
        trial, f, g = evaluate(stp)
        finite = jnp.isfinite(f) & jnp.isfinite(g)
        f_s, g_s = jnp.where(finite, f, f0), jnp.where(finite, g, g0)
        stp_next, ms_next, stop = dcsrch(ms, stp, f_s, g_s, gtol, xtol)
        # A non-finite trial: halve towards the best point and cap the step there.
        half = ms.stx + 0.5 * (stp - ms.stx)
        ms_next = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), ms_next, ms._replace(stpmax=half))
        stp_next = jnp.where(finite, stp_next, half)
        done = finite & stop
        best = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), trial, best)
        return ms_next, stp_next, best, nfev + 1, done, jnp.where(done, stp, stp_done)

    zero = jnp.asarray(0, jnp.int32)
    init = (ms, stp, start_trial, zero, jnp.asarray(False), jnp.zeros_like(stp))
    _, _, best, nfev, done, stp_done = lax.while_loop(cond, body, init)
    return SearchResult(best, stp_done, nfev, ~done)
