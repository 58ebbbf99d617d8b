"""Exact line search: bracket, then Brent's method, inside the jitted loop.

The jit-side twin of ``scipy.optimize.minimize_scalar(method="brent")``
applied to :math:`\\phi(\\alpha) = f(\\mathrm{prox}(\\theta + \\alpha d))`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .. import _tree
from .wolfe import check_count, check_greater, check_positive, info, trial_ok
from ..core import packing as _packing
from ..core.stepsize import StepContext, StepInfo, Trial
from .._types import ArrayLike, Grads, Params

GOLDEN = 1.618033988749895  # (1 + sqrt 5) / 2
CGOLD = 0.3819660112501051  # 2 - GOLDEN: the golden-section fraction
MINTOL = 1e-11  # scipy's ``Brent._mintol``


class ExactState(NamedTuple):
    alpha: jax.Array  # the last accepted step: the first trial of the next bracket


def _inf_if_nan(v: jax.Array) -> jax.Array:
    return jnp.where(jnp.isfinite(v), v, jnp.inf)


def bracket(phi: Any, f0: jax.Array, alpha0: jax.Array, max_iter: Any) -> tuple:
    """Find ``0 <= a < b < c`` with ``phi(b) < phi(a)`` and ``phi(b) <= phi(c)``.

    From :math:`\\alpha_0`: if :math:`\\phi(\\alpha_0) < \\phi(0)` grow by the golden
    ratio (``b + GOLDEN (b - a)``, as ``scipy.optimize.bracket``) until the value
    rises; otherwise shrink towards 0 by ``CGOLD`` until it falls below
    :math:`\\phi(0)`. NaN/Inf values count as +Inf (too far).

    Returns:
      ``(a, b, c, fb, closed, evaluations)``: ``closed`` is False when the cap
      was reached first (then ``b`` is the best point seen).
    """
    fb = _inf_if_nan(phi(alpha0))
    growing = fb < f0
    zero = jnp.zeros_like(alpha0)
    # growing: (a, b, c) = (0, alpha0, -); shrinking: c = alpha0, b searched below it.
    init = (jnp.asarray(1, jnp.int32), zero, alpha0, alpha0, fb, growing, jnp.asarray(False))

    def cond(s: tuple) -> jax.Array:
        i, *_, closed = s
        return ~closed & (i < max_iter)

    def body(s: tuple) -> tuple:
        i, a, b, c, fb, growing, _ = s
        x = jnp.where(growing, b + GOLDEN * (b - a), c * CGOLD)
        fx = _inf_if_nan(phi(x))
        # growing: the value rose -> c = x closes the bracket; else shift (a, b) <- (b, x)
        # shrinking: fx < f0 -> b = x closes it (a = 0, c = old c); else c = x and go on
        rose = fx >= fb
        fell = fx < f0
        closed = jnp.where(growing, rose, fell)
        a_new = jnp.where(growing & ~rose, b, a)
        b_new = jnp.where(growing, jnp.where(rose, b, x), jnp.where(fell, x, b))
        fb_new = jnp.where(growing, jnp.where(rose, fb, fx), jnp.where(fell, fx, fb))
        c_new = jnp.where(growing, jnp.where(rose, x, c), jnp.where(fell, c, x))
        return i + 1, a_new, b_new, c_new, fb_new, growing, closed

    i, a, b, c, fb, growing, closed = _packing.packed_while(cond, body, init)
    return a, b, c, fb, closed & (fb < f0), i


def brent(phi: Any, a: jax.Array, b: jax.Array, c: jax.Array, fb: jax.Array, xtol: Any, max_iter: Any) -> tuple:
    """Brent's minimisation on the bracket ``(a, b, c)`` (``fb = phi(b)``).

    A line-for-line port of ``scipy.optimize._optimize.Brent.optimize``
    (golden section with parabolic steps), written with ``jnp.where``.

    Returns:
      ``(x, fx, evaluations)``.
    """
    lo, hi = jnp.minimum(a, c), jnp.maximum(a, c)
    z = jnp.zeros_like(b)
    # x best, w second best, v previous w; deltax the step before last; rat the last step
    init = (jnp.asarray(0, jnp.int32), lo, hi, b, b, b, fb, fb, fb, z, z)

    def tols(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        tol1 = xtol * jnp.abs(x) + MINTOL
        return tol1, 2.0 * tol1

    def cond(s: tuple) -> jax.Array:
        i, lo, hi, x = s[:4]
        _, tol2 = tols(x)
        converged = jnp.abs(x - 0.5 * (lo + hi)) < (tol2 - 0.5 * (hi - lo))
        return ~converged & (i < max_iter)

    def body(s: tuple) -> tuple:
        i, lo, hi, x, w, v, fx, fw, fv, deltax, rat = s
        tol1, tol2 = tols(x)
        xmid = 0.5 * (lo + hi)
        golden_dx = jnp.where(x >= xmid, lo - x, hi - x)
        # parabolic fit through x, w, v
        tmp1 = (x - w) * (fx - fv)
        tmp2 = (x - v) * (fx - fw)
        p = (x - v) * tmp2 - (x - w) * tmp1
        q = 2.0 * (tmp2 - tmp1)
        p = jnp.where(q > 0.0, -p, p)
        q = jnp.abs(q)
        parab_ok = (p > q * (lo - x)) & (p < q * (hi - x)) & (jnp.abs(p) < jnp.abs(0.5 * q * deltax))
        try_parab = jnp.abs(deltax) > tol1
        use_parab = try_parab & parab_ok
        prat = p / jnp.where(q == 0.0, 1.0, q)
        u_p = x + prat
        near_end = ((u_p - lo) < tol2) | ((hi - u_p) < tol2)
        prat = jnp.where(near_end, jnp.where(xmid - x >= 0, tol1, -tol1), prat)
        new_deltax = jnp.where(use_parab, rat, golden_dx)  # scipy: deltax = rat before a parabolic step
        new_rat = jnp.where(use_parab, prat, CGOLD * golden_dx)
        u = jnp.where(jnp.abs(new_rat) < tol1, x + jnp.where(new_rat >= 0, tol1, -tol1), x + new_rat)
        fu = _inf_if_nan(phi(u))
        worse = fu > fx
        # worse: shrink the bracket on u's side, maybe update w, v
        lo_w = jnp.where(u < x, u, lo)
        hi_w = jnp.where(u < x, hi, u)
        upd_w = (fu <= fw) | (w == x)
        upd_v = ~upd_w & ((fu <= fv) | (v == x) | (v == w))
        # better: u becomes x
        lo_b = jnp.where(u >= x, x, lo)
        hi_b = jnp.where(u >= x, hi, x)
        return (
            i + 1,
            jnp.where(worse, lo_w, lo_b),
            jnp.where(worse, hi_w, hi_b),
            jnp.where(worse, x, u),
            jnp.where(worse, jnp.where(upd_w, u, w), x),
            jnp.where(worse, jnp.where(upd_w, w, jnp.where(upd_v, u, v)), w),
            jnp.where(worse, fx, fu),
            jnp.where(worse, jnp.where(upd_w, fu, fw), fx),
            jnp.where(worse, jnp.where(upd_w, fw, jnp.where(upd_v, fu, fv)), fw),
            new_deltax,
            new_rat,
        )

    i, _, _, x, _, _, fx, *_ = _packing.packed_while(cond, body, init)
    return x, fx, i


@_tree.pytree_class(data=("initial", "xtol", "max_bracket", "max_iter"), meta=())
@_tree.repr_from_init
class Exact:
    """Exact line search: minimise :math:`\\phi(\\alpha) = f(\\mathrm{prox}(\\theta + \\alpha d))` over :math:`\\alpha > 0`.

    1. Bracket: from the last accepted step (``initial`` at first), grow by
       the golden ratio while :math:`\\phi` falls, or shrink towards 0 until
       :math:`\\phi(b) < \\phi(0)`, giving :math:`a < b < c` with
       :math:`\\phi(b) < \\phi(a)`, :math:`\\phi(b) \\le \\phi(c)`.
    2. Brent's method on :math:`[a, c]`: golden-section search accelerated by
       parabolic interpolation, stopped when the bracket is smaller than
       :math:`2(\\text{xtol}\\,|\\alpha| + 10^{-11})` around the best point,
       exactly as ``scipy.optimize.brent`` (``tol`` = ``xtol``).
    3. One ``ctx.evaluate`` at the chosen :math:`\\alpha` (value and gradient).

    All other evaluations are value-only (``ctx.value_at``): ``StepInfo``
    reports ``nfev`` = every evaluation and ``ngev`` = 1. NaN/Inf values
    count as +Inf, so the bracket closes before them. On an unbounded
    direction (the bracket never closes within ``max_bracket`` trials) the
    best point seen is taken; the search fails only when no trial is below
    :math:`\\phi(0)` (for instance when ``d`` is not a descent direction).

    With ``l1``, :math:`\\phi` is the smooth part only (not :math:`f + h`);
    for composite objectives use ``Backtracking`` or a constant step.

    References: R. P. Brent, "Algorithms for Minimization without
    Derivatives", Prentice-Hall, 1973, chapter 5 (procedure ``localmin``);
    W. H. Press et al., "Numerical Recipes", 3rd ed., 2007, sections 10.1
    (bracketing, ``mnbrak``) and 10.3 (``brent``); SciPy's ``Brent`` class.

    Args:
      initial: the first trial step of the first bracket (> 0).
      xtol: Brent's relative tolerance on :math:`\\alpha` (scipy's ``tol``).
        The default 1e-6 is looser than scipy's 1.48e-8 on purpose: values
        alone locate a minimiser only to about :math:`\\sqrt{\\epsilon}`
        relative, and probes that close to it compare rounding noise, which
        can move :math:`\\alpha` off the exact parabolic step (on a
        quadratic, 1e-6 returns the exact step to ~1e-15, 1.48e-8 only to ~1e-8).
      max_bracket: the most evaluations spent bracketing.
      max_iter: the most Brent iterations (one evaluation each).

    Raises:
      ValueError: a concrete argument out of range.
    """

    searches = True  # jaxgd.core.stall.searches: a full stall window is a stall

    def __init__(self, initial: ArrayLike = 1.0, xtol: ArrayLike = 1e-6, max_bracket: int = 50, max_iter: int = 100) -> None:
        _tree.set_fields(
            self,
            initial=check_positive("initial", initial),
            xtol=check_greater("xtol", xtol, 0.0),
            max_bracket=check_count("max_bracket", max_bracket),
            max_iter=check_count("max_iter", max_iter),
        )

    def init(self, params: Params, value: jax.Array, grad: Grads) -> ExactState:
        """The first state: the first bracket starts at ``initial``."""
        return ExactState(jnp.asarray(self.initial, value.dtype))

    def step(self, state: ExactState, ctx: StepContext) -> tuple[jax.Array, Trial, ExactState, StepInfo]:
        """One search from ``ctx``: ``(alpha, trial at alpha, new state, StepInfo)``."""
        dtype = ctx.value.dtype
        f0 = ctx.value

        def phi(alpha: jax.Array) -> jax.Array:
            return jnp.asarray(ctx.value_at(alpha)).astype(dtype)

        a, b, c, fb, closed, n_bracket = bracket(phi, f0, state.alpha.astype(dtype), self.max_bracket)
        x, _, n_brent = lax.cond(
            closed,
            lambda: brent(phi, a, b, c, fb, jnp.asarray(self.xtol, dtype), self.max_iter),
            lambda: (b, fb, jnp.asarray(0, jnp.int32)),
        )
        trial = ctx.evaluate(x)
        ok = trial_ok(trial) & (trial.value < f0)
        new = ExactState(jnp.where(ok, x, state.alpha).astype(dtype))
        return x, trial, new, info(n_bracket + n_brent + 1, 1, ~ok)
