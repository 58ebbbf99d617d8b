"""scipy's second line search (``line_search_wolfe2``): bracketing, then zoom, one trial at a time.

scipy's BFGS and CG search with Moré-Thuente first (``line_search_wolfe1``, MINPACK-2's
``dcsrch``) and, when that search fails or CG rejects its step, run this one from the same
point (``_line_search_wolfe12``). :class:`~jaxgd.linesearch.more_thuente.MoreThuente` with
``fallback=True`` does the same; this module is the search's pure core, written once over
scalars with an ``xp`` of operations (``jax.numpy`` in the compiled loop, NumPy scalar
operations on the host tier, :mod:`jaxgd.host.search`), as :mod:`jaxgd.linesearch.dcsrch` is.

The algorithm (Nocedal & Wright, Algorithms 3.5 and 3.6, as scipy writes them): the
bracketing phase tries :math:`\\alpha_1` (the caller's first trial) and doubles it (up to
``amax``) until a trial breaks sufficient decrease, does not improve on the previous one, or
has a non-negative slope; the zoom phase then shrinks the bracket with the minimiser of the
cubic through :math:`\\phi(\\alpha_{lo}), \\phi'(\\alpha_{lo}), \\phi(\\alpha_{hi})` and the
previous end (kept when at least 20 % of the bracket from its ends), else the quadratic's
(10 %), else bisection. A trial is accepted when it meets the strong Wolfe conditions and the
caller's acceptance test (``ok``: CG's sufficient descent). The bracketing phase gives up after
10 doublings by taking the last trial (scipy's ``for ... else``), the zoom phase fails after 11
trials. A NaN or Inf value or slope counts as :math:`+\\infty` (too long), which scipy's search
has no rule for: the interpolants then do not exist and the next trial bisects.

Reference: J. Nocedal & S. Wright, "Numerical Optimization", 2nd ed., 2006, Algorithms 3.5
and 3.6 and section 3.5 (interpolation); scipy's ``scipy/optimize/_linesearch.py``
(``scalar_search_wolfe2``, ``_zoom``, ``_cubicmin``, ``_quadmin``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

DELTA1, DELTA2 = 0.2, 0.1  # the cubic's and the quadratic's margins, as fractions of the bracket
MAX_DOUBLINGS = 10  # scipy's maxiter of the bracketing phase (scalar_search_wolfe2)
MAX_ZOOM = 10  # and of the zoom phase (_zoom: it fails when its count passes this)


class Zoom(NamedTuple):
    """The search between two trials: the bracketing or zoom phase, its count, and its points."""

    zooming: Any  # bool: the zoom phase
    i: Any  # int32: doublings so far (bracketing), zoom trials so far (zoom)
    a_lo: Any  # bracketing: the previous trial (0 at first); zoom: the end with the lower value
    f_lo: Any
    d_lo: Any
    a_hi: Any  # zoom: the other end
    f_hi: Any
    a_rec: Any  # zoom: the end replaced last (the cubic's third point)
    f_rec: Any


def start(f0: Any, g0: Any, xp: Any = jnp) -> Zoom:
    """The state before the first trial: the previous point is :math:`(0, \\phi(0), \\phi'(0))`."""
    zero = xp.zeros_like(f0)
    return Zoom(xp.asarray(False), xp.asarray(0, xp.int32), zero, f0, g0, zero, f0, zero, f0)


def cubicmin(a: Any, fa: Any, fpa: Any, b: Any, fb: Any, c: Any, fc: Any, xp: Any = jnp) -> Any:
    """The minimiser of the cubic through ``(a, fa)`` with slope ``fpa``, ``(b, fb)`` and
    ``(c, fc)``; NaN where scipy's ``_cubicmin`` returns None (a division by zero, an overflow
    or a negative radical on the way, or a non-finite result: each shows in ``A``, ``B``, the
    radical or the result)."""
    C = fpa
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    r0, r1 = fb - fa - C * db, fc - fa - C * dc
    A = (dc**2 * r0 - db**2 * r1) / denom
    B = (-(dc**3) * r0 + db**3 * r1) / denom
    radical = B * B - 3 * A * C
    xmin = a + (-B + xp.sqrt(xp.maximum(radical, 0.0))) / (3 * A)
    fine = xp.isfinite(denom) & xp.isfinite(A) & xp.isfinite(B) & (A != 0) & (radical >= 0) & xp.isfinite(xmin)
    return xp.where(fine, xmin, xp.nan)


def quadmin(a: Any, fa: Any, fpa: Any, b: Any, fb: Any, xp: Any = jnp) -> Any:
    """The minimiser of the quadratic through ``(a, fa)`` with slope ``fpa`` and ``(b, fb)``; NaN
    where scipy's ``_quadmin`` returns None."""
    db = b - a
    B = (fb - fa - fpa * db) / (db * db)
    xmin = a - fpa / (2.0 * B)
    return xp.where(xp.isfinite(B) & (B != 0) & xp.isfinite(xmin), xmin, xp.nan)


def zoom_trial(z: Zoom, xp: Any = jnp) -> Any:
    """The next zoom trial (``_zoom``'s loop head): the cubic's minimiser (after the first), else
    the quadratic's, else the bracket's midpoint."""
    dalpha = z.a_hi - z.a_lo
    lo, hi = xp.minimum(z.a_lo, z.a_hi), xp.maximum(z.a_lo, z.a_hi)
    cchk, qchk = DELTA1 * dalpha, DELTA2 * dalpha  # (negative when a_hi < a_lo, as in scipy)
    cubic = cubicmin(z.a_lo, z.f_lo, z.d_lo, z.a_hi, z.f_hi, z.a_rec, z.f_rec, xp)
    cubic_ok = (z.i > 0) & xp.isfinite(cubic) & ~(cubic > hi - cchk) & ~(cubic < lo + cchk)
    quad = quadmin(z.a_lo, z.f_lo, z.d_lo, z.a_hi, z.f_hi, xp)
    quad_ok = xp.isfinite(quad) & ~(quad > hi - qchk) & ~(quad < lo + qchk)
    return xp.where(cubic_ok, cubic, xp.where(quad_ok, quad, z.a_lo + 0.5 * dalpha))


def update(z: Zoom, a: Any, f: Any, g: Any, ok: Any, f0: Any, g0: Any, c1: Any, c2: Any, amax: Any, xp: Any = jnp) -> tuple:
    """After the trial ``a`` with value ``f``, slope ``g`` and acceptance ``ok``:
    ``(state, next trial, found, failed)``. Non-finite ``f`` or ``g`` count as ``+inf``."""
    inf = xp.asarray(xp.inf, xp.result_type(f))
    finite = xp.isfinite(f) & xp.isfinite(g)
    f, g = xp.where(finite, f, inf), xp.where(finite, g, inf)
    armijo_broken = f > f0 + c1 * a * g0
    curvature = xp.abs(g) <= -c2 * g0
    # -- bracketing (scalar_search_wolfe2's loop) --
    last = z.i >= MAX_DOUBLINGS  # the trial after the 10th doubling: taken as it is (the loop's else)
    high = armijo_broken | ((f >= z.f_lo) & (z.i > 0))
    b_found = ~last & ~high & curvature & ok
    back = ~last & ~high & ~b_found & (g >= 0)
    enter = ~last & (high | back)  # zoom(prev, a) after a high trial, zoom(a, prev) after a slope >= 0
    # -- zoom (_zoom's loop body) --
    too_long = armijo_broken | (f >= z.f_lo)
    z_found = ~too_long & curvature & ok
    flip = ~too_long & ~z_found & (g * (z.a_hi - z.a_lo) >= 0)
    z_failed = ~z_found & (z.i + 1 > MAX_ZOOM)
    # the zoom phase's new ends: too long -> hi = a (rec = old hi); flip -> hi = old lo, lo = a
    # (rec = old hi); else lo = a (rec = old lo)
    zr_a = xp.where(too_long | flip, z.a_hi, z.a_lo)
    zr_f = xp.where(too_long | flip, z.f_hi, z.f_lo)
    zh_a = xp.where(too_long, a, xp.where(flip, z.a_lo, z.a_hi))
    zh_f = xp.where(too_long, f, xp.where(flip, z.f_lo, z.f_hi))
    zl_a, zl_f, zl_d = xp.where(too_long, z.a_lo, a), xp.where(too_long, z.f_lo, f), xp.where(too_long, z.d_lo, g)
    # entering the zoom phase: lo/hi from the bracketing pair, rec = (0, phi(0)), count 0
    el_a, el_f, el_d = xp.where(high, z.a_lo, a), xp.where(high, z.f_lo, f), xp.where(high, z.d_lo, g)
    eh_a, eh_f = xp.where(high, a, z.a_lo), xp.where(high, f, z.f_lo)
    zero = xp.zeros_like(f0)
    sel = lambda zv, ev, bv: xp.where(z.zooming, zv, xp.where(enter, ev, bv))  # noqa: E731
    new = Zoom(
        z.zooming | enter,
        xp.where(z.zooming, z.i + 1, xp.where(enter, 0, z.i + 1)),
        sel(zl_a, el_a, a), sel(zl_f, el_f, f), sel(zl_d, el_d, g),
        sel(zh_a, eh_a, z.a_hi), sel(zh_f, eh_f, z.f_hi),
        sel(zr_a, zero, z.a_rec), sel(zr_f, f0, z.f_rec),
    )
    found = xp.where(z.zooming, z_found, b_found | (last & finite))
    failed = xp.where(z.zooming, z_failed, last & ~finite)
    nxt = xp.where(new.zooming, zoom_trial(new, xp), xp.minimum(2 * a, amax))
    return new, nxt, found, failed
