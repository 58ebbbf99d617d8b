"""L-BFGS-B's line search: Moré-Thuente (MINPACK-2 ``dcsrch``) on ``[0, stpmax]``.

MINPACK-2's ``dcsrch`` as L-BFGS-B's ``lnsrlb`` calls it (``dcstep`` and the
interval update are :mod:`jaxgd.linesearch.dcsrch`'s, shared with
:class:`~jaxgd.linesearch.MoreThuente`; this module keeps ``dcsrch``'s
stage and stopping tests and the search loop), with ``ftol = 1e-3``,
``gtol = 0.9``, ``xtol = 0.1``, ``stpmin = 0``, ``stpmax`` the largest
feasible step along the direction, and at most 20 evaluations. It finds :math:`\\alpha` with

.. math::
   \\phi(\\alpha) \\le \\phi(0) + c_1 \\alpha \\phi'(0), \\qquad
   |\\phi'(\\alpha)| \\le c_2 |\\phi'(0)|,

by safeguarded cubic and quadratic interpolation on an interval of
uncertainty, and stops with a warning (the point is still taken, as in
``lnsrlb``) when rounding errors prevent progress, the interval is below
``xtol``, or ``stpmax`` satisfies the sufficient-decrease test.

A non-finite trial (which ``dcsrch`` does not handle) halves the step
towards the best point and caps ``stpmax`` there.

Two departures, both where the search has reached the rounding of f:

- a trial whose f equals :math:`\\phi(0)` to within 64 machine epsilons (4 in half
  precision) of :math:`|\\phi(0)|` and that meets the curvature condition converges
  (Hager & Zhang's approximate Wolfe conditions at rounding level, as in
  :class:`~jaxgd.linesearch.MoreThuente`): near a minimiser f's differences
  drown in rounding and the sufficient-decrease test passes or fails by
  luck. MINPACK's search then fails, L-BFGS-B resets its memory and fails
  again, 40 evaluations at a point whose next step would have met ``gtol``
  (sif2jax's PALMER1: 82 evaluations and ``LINESEARCH_FAILED``, 31 and
  ``GTOL`` with the test, as scipy's run where its f happened to fall by
  one ulp);
- where ``dcsrch`` sends the search back to its best step ``stx`` and that
  is the trial just evaluated, the search ends there instead of evaluating
  it again (the next call would end with a warning at it); scipy's
  L-BFGS-B answers that request from its cache of the last point.

Reference: J. J. Moré & D. J. Thuente, "Line search algorithms with
guaranteed sufficient decrease", ACM TOMS 20(3), 1994; MINPACK-2
``dcsrch.f``/``dcstep.f`` (Argonne, 1993); W. W. Hager & H. Zhang, SIAM
J. Optim. 16(1), 2005, eq. (4.1).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from .. import _tree
from ..core import packing as _packing
from ..core import stepsize as _stepsize
from ..linesearch import dcsrch as dcsrch_core
from ..linesearch.dcsrch import Interval, decreased, interpolate, repeats_best, safeguard
from ..linesearch.wolfe import tie_tolerance

class MTState(NamedTuple):
    """``dcsrch``'s saved state (``isave``/``dsave``): the interval and the constants of this search."""

    stage2: jax.Array  # False in stage 1
    finit: jax.Array
    ginit: jax.Array
    gtest: jax.Array
    stpmax: jax.Array
    iv: Interval
    tie: jax.Array  # |f - finit| within which f is finit to rounding (the approximate Wolfe test)


def start(f0: jax.Array, g0: jax.Array, stp: jax.Array, stpmax: jax.Array, ftol: Any, xp: Any = jnp) -> MTState:
    """``dcsrch`` with ``task = 'START'`` (``g0 < 0`` is the caller's to check)."""
    return MTState(
        xp.asarray(False), f0, g0, ftol * g0, stpmax, dcsrch_core.start(f0, g0, stp, stpmax, xp),
        tie_tolerance(None, f0, xp),
    )


def dcsrch(
    ms: MTState, stp: jax.Array, f: jax.Array, g: jax.Array, gtol: Any, xtol: Any, xp: Any = jnp
) -> tuple[jax.Array, MTState, jax.Array, jax.Array]:
    """One ``dcsrch`` call after an evaluation at ``stp`` (``phi = f``, ``phi' = g``).

    Stage 2 begins at the first trial with sufficient decrease and ``g >= 0``
    (scipy's ``DCSRCH``); the warnings are tested on the interval from the
    previous call, before the update, as in MINPACK-2.

    Returns:
      ``(stp, state, stop, back)``: the next trial step, the state, True when
      the search ends at the evaluated ``stp`` (``CONVERGENCE`` or a
      ``WARNING``; ``stp`` is then returned unchanged), and ``back``: the
      next trial is the best step ``stx`` because further progress is not
      possible (the bracketed interval is too narrow, or the new step fell
      outside it), which the next call ends with a warning.
    """
    iv = ms.iv
    ftest = ms.finit + stp * ms.gtest
    stage2 = ms.stage2 | ((f <= ftest) & (g >= 0))
    warn = (iv.brackt & ((stp <= iv.stmin) | (stp >= iv.stmax))) | (iv.brackt & (iv.stmax - iv.stmin <= xtol * iv.stmax))
    warn = warn | ((stp == ms.stpmax) & (f <= ftest) & (g <= ms.gtest))
    warn = warn | ((stp == 0) & ((f > ftest) | (g >= ms.gtest)))
    # (with Hager-Zhang's approximate Wolfe test at rounding level, see the module doc)
    conv = decreased(f, ftest, ms.finit, ms.tie) & (xp.abs(g) <= gtol * (-ms.ginit))
    stop = warn | conv

    new_iv, stp_new = interpolate(iv, stp, f, g, stage2, ftest, ms.gtest, xp)
    stp_new, new_iv, outside, narrow = safeguard(new_iv, stp_new, ms.stpmax, xtol, xp)
    back = outside | narrow
    stp_new = xp.where(back, new_iv.stx, stp_new)
    new = ms._replace(stage2=stage2, iv=new_iv)
    new = _tree.pick(stop, ms._replace(stage2=stage2), new)
    return xp.where(stop, stp, stp_new), new, stop, back & ~stop


def _python_while(cond: Callable[[Any], Any], body: Callable[[Any], Any], carry: Any) -> Any:
    """``lax.while_loop`` in Python (the host tier's search)."""
    while cond(carry):
        carry = body(carry)
    return carry


class SearchResult(NamedTuple):
    """The accepted trial (or the start point when ``failed``) and the cost."""

    trial: Any
    stp: jax.Array
    nfev: jax.Array
    failed: jax.Array
    unseen: Any = None  # (float32 and narrower) the first trial moved x without the fall its slope predicted


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
    xp: Any = jnp,
    moves_at: Any = None,
) -> SearchResult:
    """Run ``dcsrch`` from ``stp`` until it stops or ``maxls`` evaluations are spent.

    Args:
      evaluate: ``stp -> (trial, phi, phi')`` (one ``value_and_grad``).
      start_trial: a trial with the shapes ``evaluate`` returns (returned on failure).
      f0, g0: :math:`\\phi(0)`, :math:`\\phi'(0) < 0`.
      stp, stpmax: the first step and the largest allowed one.
      ftol, gtol, xtol: ``dcsrch``'s tolerances (:math:`c_1`, :math:`c_2`, relative interval width).
      maxls: the evaluation budget (static).
      xp: ``jax.numpy`` (a compiled loop), or the host tier's NumPy scalar operations
        (:data:`jaxgd.host.search.OPS`: a Python loop, the same statements).
      moves_at: (float32 and narrower; None otherwise) half the shortest step that moves ``x`` by an
        ulp (:func:`jaxgd.core.stepsize.shortest_move`): the search then records ``unseen``, its first
        trial's :func:`jaxgd.core.stepsize.unseen_at`, the grid rule's evidence.

    Returns:
      A :class:`SearchResult`; ``failed`` when the budget ran out first.
    """
    ms = start(f0, g0, stp, stpmax, ftol, xp)

    def cond(carry):  # noqa: ANN001, ANN202
        _, _, _, nfev, done, _, _ = carry
        return ~done & (nfev < maxls)

    def body(carry):  # noqa: ANN001, ANN202
        ms, stp, best, nfev, _, stp_done, unseen = carry
        trial, f, g = evaluate(stp)
        finite = xp.isfinite(f) & xp.isfinite(g)
        if unseen is not None:  # (the first trial's evidence; ms holds phi(0) and its tie tolerance)
            unseen = unseen | _stepsize.unseen_at(nfev == 0, finite, ~(stp > moves_at), f, ms.finit, g, ms.ginit, stp,
                                                  ms.tie)
        f_s, g_s = xp.where(finite, f, f0), xp.where(finite, g, g0)
        stp_next, ms_next, stop, back = dcsrch(ms, stp, f_s, g_s, gtol, xtol, xp)
        # Sent back to stx when stx is this very trial: dcsrch would ask for this point again and
        # end the search there with a warning (stx is an end of the bracketing interval), so it
        # ends here, one evaluation sooner; scipy's L-BFGS-B gets that evaluation from its cache
        # of the last point (and counts none). Only where the budget allows that evaluation, as
        # L-BFGS-B's limit on evaluations a search (maxls, counted on requests) would.
        stop = stop | (back & (stp_next == stp) & (nfev + 1 < maxls))
        # A trial repeating the best one's value and slope bit for bit ends the search at it (as in
        # MoreThuente: the same point to rounding, which the search would otherwise ask for again).
        stop = stop | (finite & repeats_best(f, g, ms.iv.stx, ms.iv.fx, ms.iv.gx))
        # A non-finite trial: halve towards the best point and cap the step there.
        half = ms.iv.stx + 0.5 * (stp - ms.iv.stx)
        ms_next = _tree.pick(finite, ms_next, ms._replace(stpmax=half))
        stp_next = xp.where(finite, stp_next, half)
        done = finite & stop
        best = _tree.pick(done, trial, best)
        return ms_next, stp_next, best, nfev + 1, done, xp.where(done, stp, stp_done), unseen

    host = xp is not jnp
    zero = 0 if host else jnp.asarray(0, jnp.int32)
    init = (ms, stp, start_trial, zero, xp.asarray(False), xp.zeros_like(stp), None if moves_at is None else xp.asarray(False))
    _, _, best, nfev, done, stp_done, unseen = (_python_while if host else _packing.packed_while)(cond, body, init)
    return SearchResult(best, stp_done, nfev, ~done, unseen)
