"""L-BFGS-B's search point: the generalised Cauchy point, then subspace minimisation.

On the quadratic model :math:`m(z) = g^\\top (z - x) + \\tfrac12 (z - x)^\\top B (z - x)`
with :math:`B = \\theta I - W M W^\\top` (:mod:`jaxgd.directions.lbfgsb_memory`):

1. :func:`cauchy`: the first local minimiser of :math:`m` along the projected
   steepest-descent path :math:`x(t) = P(x - t g)` (Byrd, Lu, Nocedal & Zhu
   1995, section 4, Algorithm CP). The path is piecewise linear with
   breakpoints :math:`t_i`. The compiled step of a problem of 64 variables or
   more walks the first few breakpoints one by one, as the Fortran does from
   its heap (most steps find the Cauchy point there); from 4,096 variables it
   then evaluates the segments of the first 1,024 breakpoints, and of the first
   ``n // 16`` (``lax.top_k``), at once; otherwise, as the
   host tier and smaller problems always do, it evaluates all segments at once: with the breakpoints sorted, the
   quantities the paper updates segment by segment are suffix and prefix sums,

   .. math::
      p_j = W^\\top d_j = \\sum_{i \\ge j} d_{b_i} w_{b_i},\\quad
      c_j = W^\\top (x(t_j) - x) = \\sum_{i < j} \\Delta t_i\\, p_i,\\quad
      \\|d_j\\|^2 = \\sum_{i \\ge j} d_{b_i}^2,

   so that on segment :math:`j` the slope and curvature are
   :math:`f'_j = -\\|d_j\\|^2 + \\theta t_j \\|d_j\\|^2 - p_j^\\top M c_j`,
   :math:`f''_j = \\theta \\|d_j\\|^2 - p_j^\\top M p_j`, and the Cauchy point
   lies in the first segment whose minimiser :math:`-f'_j / f''_j` falls
   before its end. ``O(n log n + n m^2)`` work, no sequential loop, ``O(nm)``
   memory; the walk ``O(n + m^2)`` a breakpoint (:func:`cauchy`).
2. :func:`subspace`: the direct primal method (section 5.1): minimise
   :math:`m` over the variables that are free at the Cauchy point,
   :math:`\\hat d = -\\hat B^{-1} \\hat r` with the Sherman-Morrison-Woodbury
   form of the reduced :math:`\\hat B` (eq. 5.11; its middle matrix solved by
   stable blocks, as the code's ``formk``), then, as in L-BFGS-B 3.0
   (Morales & Nocedal 2011), project the subspace minimiser onto the box and
   fall back to the truncated step only when the projected point does not
   give a descent direction.

References: R. H. Byrd, P. Lu, J. Nocedal & C. Zhu, "A limited memory
algorithm for bound constrained optimization", SIAM J. Sci. Comput. 16(5),
1995; C. Zhu, R. H. Byrd, P. Lu & J. Nocedal, "Algorithm 778: L-BFGS-B",
ACM TOMS 23(4), 1997 (routines ``cauchy`` and ``subsm``); J. L. Morales &
J. Nocedal, "Remark on Algorithm 778", ACM TOMS 38(1), 2011.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from .. import _tree


def _suffix_sum(a: jax.Array, xp: Any = jnp) -> jax.Array:
    """``out[j] = sum_{i >= j} a[i]`` for ``j = 0..len(a)`` (``out[len] = 0``)."""
    tail = xp.cumsum(a[::-1], axis=0)[::-1]
    return xp.concatenate([tail, xp.zeros_like(a[:1])], axis=0)


def _prefix_sum(a: jax.Array, xp: Any = jnp) -> jax.Array:
    """``out[j] = sum_{i < j} a[i]`` for ``j = 0..len(a)`` (``out[0] = 0``)."""
    return xp.concatenate([xp.zeros_like(a[:1]), xp.cumsum(a, axis=0)], axis=0)


def _argsort(a: jax.Array, xp: Any) -> jax.Array:
    """A stable argsort (``jnp.argsort``'s default; NumPy's is not stable unless asked)."""
    return xp.argsort(a) if xp is jnp else xp.argsort(a, kind="stable")


def _slopes(p: jax.Array, c: jax.Array, dd: jax.Array, t: jax.Array, big_m: jax.Array, theta: jax.Array,
            xp: Any) -> tuple[jax.Array, jax.Array]:
    """``(f', f'')`` of the model along segments (rows of ``p``, ``c``; or one segment) starting at
    ``t``: :math:`f' = -\\|d\\|^2 + \\theta t \\|d\\|^2 - p^\\top M c`,
    :math:`f'' = \\theta \\|d\\|^2 - p^\\top M p`."""
    mp, mc = p @ big_m, c @ big_m
    return -dd + theta * t * dd - xp.sum(p * mc, axis=-1), theta * dd - xp.sum(p * mp, axis=-1)


def _minimiser(f1: jax.Array, f2: jax.Array, f2_first: jax.Array, dd: jax.Array, eps: Any, xp: Any) -> jax.Array:
    """The model's minimiser along a segment, from its start: :math:`\\max(-f'/f'', 0)` with f''
    at least ``eps`` times the first segment's (the 3.0 code's safeguard), 0 where :math:`d = 0`."""
    f2 = xp.maximum(f2, eps * f2_first)
    return xp.where(dd > 0, xp.maximum(-f1 / xp.where(f2 > 0, f2, 1.0), 0.0), 0.0)


def _start(x: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, xp: Any) -> tuple:
    """``(held, d, breakpoints)``: the variables held at a bound (the gradient pushes out of the box
    there, or ``l == u``), the path's direction and each variable's breakpoint (``inf``: none)."""
    inf = xp.asarray(xp.inf, x.dtype)
    held = (lower == upper) | ((x <= lower) & (g >= 0)) | ((x >= upper) & (g <= 0))
    d = xp.where(held, 0.0, -g)
    brk = xp.where(d < 0, (x - lower) / -d, xp.where(d > 0, (upper - x) / d, inf))
    return held, d, xp.where(d == 0, inf, brk)


def _end(x: jax.Array, d: jax.Array, lower: jax.Array, upper: jax.Array, held: jax.Array, hit: jax.Array,
         t_star: jax.Array, c: jax.Array, xp: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(xcp, c, free)`` from the breakpoints passed (``hit``) and the Cauchy point's ``t_star``."""
    xcp = xp.where(hit, xp.where(d > 0, upper, lower), x + t_star * d)
    return xp.clip(xcp, lower, upper), c, ~held & ~hit


# Breakpoints the walk passes before the sorted form takes over (cauchy): a step that sets a few variables
# at their bounds finds its Cauchy point in a few segments; the first step from B = I often passes them all.
WALK = 8
# The fewest variables for which the compiled Cauchy point walks first. Compiled with the classic emitters
# (session 46, a step that passes no breakpoint / every one): the sorted form costs 3.8 / 3.6 us at 8
# variables, 15 / 16 at 64, 61 at 256, 140-150 at 512; the walk 2.0 / 10.4, 2.7 / 25, 4.5 / 79, 6.9 / 170: it
# saves more than it can lose from 64 on, and below it the suite's small fits (PALMER*E: 8 variables, most
# steps passing all) ran 1.3x slower.
WALK_FROM = 64


def _walk(x: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, w: jax.Array, big_m: jax.Array,
          theta: jax.Array) -> tuple:
    """The Fortran's walk along the path, one breakpoint at a time from the smallest (the first of
    equal ones: the stable sort's order), for at most :data:`WALK` of them: ``(found, (xcp, c,
    free))``, the result only where ``found``. Per segment :math:`p = W^\\top d_j`, :math:`c =
    W^\\top (x(t_j) - x)` and :math:`\\|d_j\\|^2` are updated as a breakpoint is passed
    (BLNZ 1995, Algorithm CP)."""
    xp = jnp
    held, d, brk = _start(x, g, lower, upper, xp)
    eps = xp.finfo(x.dtype).eps
    zero = xp.zeros((), x.dtype)
    p, dd = w.T @ d, xp.dot(d, d)
    c = xp.zeros_like(p)
    f2_first = _slopes(p, c, dd, zero, big_m, theta, xp)[1]

    def body(carry: tuple) -> tuple:
        k, t, p, c, dd, left, _, _ = carry
        b = xp.argmin(left)
        dtm = _minimiser(*_slopes(p, c, dd, t, big_m, theta, xp), f2_first, dd, eps, xp)
        dt = left[b] - t
        inside = dtm < dt
        last = ~xp.isfinite(left[b])  # the path's last segment: no breakpoint ends it
        stop = inside | last
        passed = (t + dt, p - d[b] * w[b], c + dt * p, dd - d[b] * d[b], left.at[b].set(xp.inf))
        t, p, c, dd, left = (xp.where(stop, now, then) for now, then in zip((t, p, c, dd, left), passed))
        return k + 1, t, p, c, dd, left, stop, xp.where(inside, dtm, 0.0)

    def more(carry: tuple) -> Any:
        return ~carry[6] & (carry[0] < WALK)

    start = (0, zero, p, c, dd, brk, xp.asarray(False), zero)
    _, t, p, c, dd, left, found, dtm = jax.lax.while_loop(more, body, start)
    hit = xp.isfinite(brk) & ~xp.isfinite(left)
    return found, _end(x, d, lower, upper, held, hit, t + dtm, c + dtm * p, xp)


def cauchy(
    x: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, w: jax.Array, big_m: jax.Array, theta: jax.Array,
    xp: Any = jnp,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The generalised Cauchy point (BLNZ 1995, Algorithm CP). Compiled, from :data:`WALK_FROM`
    variables: the walk over the first :data:`WALK` breakpoints (:func:`_walk`), then the segments
    of the first ``k`` breakpoints for each ``k`` of :func:`first_sizes` (:func:`_first`), else every
    segment at once (:func:`_sorted`); with fewer, and on NumPy (the host tier), the sorted form.
    On XLA:CPU the sorted form's argsort and prefix sums cost about 350 µs a step at 1,000
    variables, more than scipy's whole L-BFGS-B iteration, where NumPy's take tens of µs
    (benchmarks/RESULTS.md, session 46); most steps pass few breakpoints, and the walk skips them
    there (under ``vmap`` the choice is a select: both run).

    Args:
      x: the feasible iterate, ``(n,)``.
      g: the gradient at ``x``.
      lower, upper: the bounds (``-inf``/``inf`` where absent).
      w, big_m, theta: the compact representation of ``B``.
      xp: ``jax.numpy``, or ``numpy`` (the host tier's step).

    Returns:
      ``(xcp, c, free)``: the Cauchy point, :math:`c = W^\\top (x^{cp} - x)`
      and the mask of variables free at the Cauchy point (not at a bound
      reached along the path, not held at a bound by the gradient).
    """
    # The model scaled by a power of two sigma (g, theta and M over sigma: the same Cauchy point, every
    # intermediate scaled exactly, so the same bits) where |g| > 1: theta ||g||^2 and p^T M p overflowed
    # float32 at a curvature of 1e16 (f = 1e16 ||x - 1.3||^2: a path to the far bound, a failed search)
    sigma = _tree.power_of_two_below(xp.max(xp.abs(g), initial=0), xp)
    g, theta, big_m = g / sigma, theta / sigma, big_m / sigma
    n = x.shape[0]
    if xp is not jnp or n < WALK_FROM:
        return _sorted(x, g, lower, upper, w, big_m, theta, xp)
    found, walked = _walk(x, g, lower, upper, w, big_m, theta)

    def beyond(sizes: tuple[int, ...]) -> tuple:
        if not sizes:
            return _sorted(x, g, lower, upper, w, big_m, theta)
        near, first = _first(x, g, lower, upper, w, big_m, theta, sizes[0])
        return jax.lax.cond(near, lambda: first, lambda: beyond(sizes[1:]))

    return jax.lax.cond(found, lambda: walked, lambda: beyond(first_sizes(n)))


# The middle stages (_first, by lax.top_k) when the walk has not found the Cauchy point: the first FIRST
# breakpoints, then the first n // 16, each where it is at most a quarter of n. XLA:CPU's argsort is slow (19 ms
# at 65,536 variables, 94 at 262,144; NumPy's 4-20); top_k of 1,024 costs 0.6-1.2 ms there, of n // 16 3-12 ms.
# Non-negative deblurring, the steps the walk left: at 128x128 they passed 8-902 breakpoints; at 512x512 31 of 39
# found their point among the first 1,024, the other 8 among the first 14,081.
FIRST = 1024


def first_sizes(n: int) -> tuple[int, ...]:
    """The middle stages' sizes for ``n`` variables, increasing (none below ``4 * FIRST``)."""
    return tuple(sorted({k for k in (FIRST, n // 16) if FIRST <= k <= n // 4}))


def _segments(t_sorted: jax.Array, p: jax.Array, dd: jax.Array, n_brk: jax.Array, big_m: jax.Array,
              theta: jax.Array, xp: Any) -> tuple:
    """Every segment's start, :math:`c_j`, model minimiser and length at once, from the ``k`` breakpoints
    ``t_sorted`` (the first ``k`` of ``n_brk``, sorted) and the segments' ``p`` and ``||d_j||^2`` (``k + 1``
    rows): ``(t_start, c, dtm, dt, in_path)``, ``in_path`` False past the path's last breakpoint. :func:`_sorted`'s
    and :func:`_first`'s common part."""
    k = t_sorted.shape[0]
    eps = xp.finfo(t_sorted.dtype).eps
    inf = xp.asarray(xp.inf, t_sorted.dtype)
    t_start = xp.concatenate([xp.zeros((1,), t_sorted.dtype), t_sorted])
    t_end = xp.concatenate([t_sorted, inf[None]])
    seg = xp.arange(k + 1)
    in_path = seg <= n_brk
    t_start = xp.where(in_path, t_start, 0.0)
    dt = xp.where(seg < n_brk, t_end - t_start, xp.where(seg == n_brk, inf, 0.0))
    c = _prefix_sum(xp.where(seg[:k, None] < n_brk, dt[:k, None], 0.0) * p[:k], xp)  # (k+1, 2m): W^T z_j
    f1, f2 = _slopes(p, c, dd, t_start, big_m, theta, xp)
    return t_start, c, _minimiser(f1, f2, f2[0], dd, eps, xp), dt, in_path


def _first(
    x: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, w: jax.Array, big_m: jax.Array, theta: jax.Array,
    k: int,
) -> tuple:
    """:func:`_sorted`'s segments over the first ``k`` breakpoints only (``lax.top_k``: the smallest, the
    first of equal ones first, as the stable sort), the quantities of segment ``j`` as :func:`_sorted`'s
    suffix sums, over the variables left out of the ``k`` and the sorted ones from ``j`` on:
    :math:`p_j = W_R^\\top d_R + \\sum_{i \\ge j} d_{b_i} w_{b_i}`,
    :math:`\\|d_j\\|^2 = \\|d_R\\|^2 + \\sum_{i \\ge j} d_{b_i}^2` (``R`` the rest; the totals less prefix
    sums cancelled: in float32, 90 % of 4,096 variables held, the point moved 5.7e-4 in a unit box),
    :math:`c_j` the prefix sum of :math:`\\Delta t_i p_i`. ``(found, (xcp, c, free))``, the result only where
    ``found``: the Cauchy point lies on one of these segments (or every breakpoint is among them)."""
    xp = jnp
    held, d, brk = _start(x, g, lower, upper, xp)
    _, order = jax.lax.top_k(-brk, k)
    t_sorted, d_sorted = brk[order], d[order]
    n_brk = xp.sum(xp.isfinite(brk))

    rest = xp.where(xp.zeros((x.shape[0],), bool).at[order].set(True), 0.0, d)  # d outside the k sorted
    p = (w.T @ rest)[None, :] + _suffix_sum(d_sorted[:, None] * w[order], xp)  # (k+1, 2m): W^T d_j
    dd = xp.dot(rest, rest) + _suffix_sum(d_sorted * d_sorted, xp)  # (k+1,): ||d_j||^2
    t_start, c, dtm, dt, in_path = _segments(t_sorted, p, dd, n_brk, big_m, theta, xp)
    seg = xp.arange(k + 1)
    found = in_path & ((seg < k) | (n_brk <= k)) & (dtm < dt)  # segment k ends at a breakpoint not sorted
    j = xp.argmax(found)
    hit = xp.zeros((x.shape[0],), bool).at[order].set(seg[:k] < j)
    return xp.any(found), _end(x, d, lower, upper, held, hit, t_start[j] + dtm[j], c[j] + dtm[j] * p[j], xp)


def _sorted(
    x: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, w: jax.Array, big_m: jax.Array, theta: jax.Array,
    xp: Any = jnp,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """:func:`cauchy` with every segment evaluated at once, from the breakpoints sorted."""
    n = x.shape[0]
    held, d, brk = _start(x, g, lower, upper, xp)
    order = _argsort(brk, xp)
    t_sorted, d_sorted, w_sorted = brk[order], d[order], w[order]
    n_brk = xp.sum(xp.isfinite(brk))

    p = _suffix_sum(d_sorted[:, None] * w_sorted, xp)  # (n+1, 2m): W^T d_j
    dd = _suffix_sum(d_sorted * d_sorted, xp)  # (n+1,): ||d_j||^2
    t_start, c, dtm, dt, in_path = _segments(t_sorted, p, dd, n_brk, big_m, theta, xp)
    found = in_path & (dtm < dt)
    j = xp.where(xp.any(found), xp.argmax(found), n_brk)
    dtm_j = xp.where(xp.any(found), dtm[j], 0.0)
    rank = _tree.put(xp.zeros((n,), xp.int32), order, xp.arange(n, dtype=xp.int32))
    return _end(x, d, lower, upper, held, rank < j, t_start[j] + dtm_j, c[j] + dtm_j * p[j], xp)


def subspace(
    x: jax.Array,
    g: jax.Array,
    lower: jax.Array,
    upper: jax.Array,
    xcp: jax.Array,
    c: jax.Array,
    free: jax.Array,
    w: jax.Array,
    big_m: jax.Array,
    theta: jax.Array,
    use: jax.Array,
    solve_reduced: Callable[[jax.Array], jax.Array],
    xp: Any = jnp,
) -> jax.Array:
    """Minimise the model over the free variables from the Cauchy point (direct primal method).

    With :math:`Z` the free variables and the reduced gradient
    :math:`\\hat r = Z^\\top (g + \\theta (x^{cp} - x) - W M c)`,

    .. math::
       \\hat d = -\\frac{1}{\\theta}\\hat r - \\frac{1}{\\theta^2} Z^\\top W
       \\Big(I - \\frac{1}{\\theta} M W^\\top Z Z^\\top W\\Big)^{-1} M W^\\top Z \\hat r
       = -\\frac{1}{\\theta}\\hat r - \\frac{1}{\\theta^2} Z^\\top W N^{-1} W^\\top Z \\hat r

    (BLNZ 1995, eq. 5.11), with :math:`N^{-1}` applied through ``solve_reduced``. The point :math:`P(x^{cp} + \\hat d)` is taken
    when it gives a descent direction from ``x``; otherwise the step is
    truncated to the box, :math:`x^{cp} + \\alpha^* \\hat d` (Morales &
    Nocedal 2011, the 3.0 ``subsm``).

    Args:
      x, g, lower, upper: the iterate, its gradient and the bounds.
      xcp, c, free: :func:`cauchy`'s result.
      w, big_m, theta: the compact representation of ``B``.
      use: False when the memory is empty (then the Cauchy point is the
        search point, as in the code, which skips ``subsm`` when ``col = 0``).
      solve_reduced: ``u -> N^{-1} u`` for the middle matrix
        :math:`N = M^{-1} - \\tfrac1\\theta W^\\top Z Z^\\top W` of eq. 5.11, factored by
        blocks (:func:`jaxgd.directions.lbfgsb_memory.solve_reduced`; ``formk``).
      xp: ``jax.numpy``, or ``numpy`` (the host tier's step).

    Returns:
      The search point ``z`` (feasible); the search direction is ``z - x``.
    """
    dtype = x.dtype
    r = xp.where(free, g + theta * (xcp - x) - w @ (big_m @ c), 0.0)
    v = solve_reduced(w.T @ r)
    du = -r / theta - xp.where(free, w @ v, 0.0) / (theta * theta)
    du = xp.where(use & xp.all(xp.isfinite(du)), du, 0.0)

    projected = xp.clip(xcp + du, lower, upper)
    touched = xp.any(free & ((projected == lower) | (projected == upper)))
    descent = xp.dot(projected - x, g) <= 0
    # The truncated step (the 2.x code, kept by 3.0 as the fallback).
    ratio = xp.where(free & (du < 0), (lower - xcp) / du, xp.where(free & (du > 0), (upper - xcp) / du, xp.inf))
    ratio = xp.maximum(ratio, 0.0)
    ibd = xp.argmin(ratio)
    alpha = xp.minimum(1.0, ratio[ibd]).astype(dtype)
    truncated = xcp + alpha * du
    at_bound = xp.where(du[ibd] > 0, upper[ibd], lower[ibd])
    truncated = _tree.put(truncated, ibd, xp.where(alpha < 1, at_bound, truncated[ibd]))
    truncated = xp.clip(truncated, lower, upper)
    return xp.where(~touched | descent, projected, truncated)
