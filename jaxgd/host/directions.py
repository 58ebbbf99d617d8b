"""``lbfgs``, ``bfgs`` and ``cg`` on the host: their directions over flat NumPy vectors.

Each function repeats, statement for statement, the compiled direction's
``update`` (:mod:`jaxgd.directions.limited_memory`, the two-loop recursion
over L-BFGS-B's ring of pairs; :mod:`jaxgd.directions.quasi_newton`, dense
BFGS with :math:`H_0 = I` and nonlinear conjugate gradient) and ``reset``, on states of the same fields, so
that a host run's result carries a state the compiled loop resumes
(:func:`compiled_state`). ``tests/test_host_tier.py`` compares the two.

References: D. C. Liu & J. Nocedal, Math. Programming 45, 1989 (L-BFGS);
J. Nocedal & S. Wright, "Numerical Optimization", 2nd ed., 2006,
Algorithms 6.1 and 7.4, section 5.2 (CG).
"""

from __future__ import annotations

import functools

from typing import Any, NamedTuple, Optional

import numpy as np

from ..core import stall as _stall
from ..directions import limited_memory as _limited_memory
from ..directions import quasi_newton as _quasi_newton

INT32_MAX = np.iinfo(np.int32).max

# OpenBLAS runs a dot product of more than 10,000 entries on all its threads; on a loaded machine (this tier's run
# beside the fused loop's compile) they wait on each other: 1.4 ms a call against 3.5 us on one thread, a 16,000-D
# lbfgs run 129 s against 8 s. Longer vectors go as dot products of CHUNK entries, on the calling thread.
CHUNK = 8192


def dot(a: np.ndarray, b: np.ndarray) -> Any:
    """``a . b`` of two flat vectors as ``np.dot``, over :data:`CHUNK` entries a sum of chunks' dot products in
    order (the same rounding on any machine and thread count)."""
    if a.shape[0] <= CHUNK:
        return np.dot(a, b)
    total = np.dot(a[:CHUNK], b[:CHUNK])
    for i in range(CHUNK, a.shape[0], CHUNK):
        total = total + np.dot(a[i:i + CHUNK], b[i:i + CHUNK])
    return total


def norm(a: np.ndarray) -> Any:
    """``_tree.norm``: ``sqrt(a.a)``, rescaled by the largest magnitude where that is not finite
    or not normal (LAPACK ``dnrm2``'s scaling); NaN for NaN elements, Inf for Inf ones."""
    sq = dot(a, a)
    if np.isfinite(sq) and sq >= np.finfo(a.dtype).tiny:
        return np.sqrt(sq)
    return scaled_norm(a, np.max(np.abs(a)) if a.size else a.dtype.type(0))


def scaled_norm(a: np.ndarray, top: Any) -> Any:
    """``_tree.scaled_norm``: ``s * sqrt(sum((a/s)**2))`` with ``s = 2**e`` the power of two
    nearest above ``top``, the largest magnitude (exact scaling, in at least float32)."""
    w = np.promote_types(a.dtype, np.float32)
    if not np.isfinite(top):
        return top
    _, e = np.frexp(w.type(top) if top > 0 else w.type(1))
    h = int(e) // 2
    b = np.ldexp(np.ldexp(a.astype(w), -h), h - int(e))
    return np.ldexp(np.ldexp(np.sqrt(dot(b, b)), h), int(e) - h).astype(a.dtype)


def at_precision(value: Any, gnorm: Any, x: np.ndarray, grid: bool = False) -> bool:
    """``stall.at_precision``: ``||g|| max(||x||, 1) <= sqrt(eps) max(|f|, 1)``; with ``grid`` (the grid
    rule's evidence, float32 and narrower: a failed search along steepest descent whose first trial
    moved ``x`` without the fall its slope predicted) also within ``stall.GRID_FACTOR`` of it."""
    eps = np.finfo(value.dtype).eps
    scale = np.maximum(np.abs(value), 1.0) / np.maximum(np.sqrt(dot(x, x)).astype(value.dtype), 1.0)
    bound = np.sqrt(eps) * scale
    return bool(np.isfinite(value) & ((gnorm <= bound) | (grid & (gnorm <= _stall.GRID_FACTOR * bound))))


# -- L-BFGS ---------------------------------------------------------------------------------
class LBFGS(NamedTuple):
    """``LBFGSState`` on the host: ``s``, ``y`` as ``(m, n)`` rows of flat vectors."""

    count: int
    head: int
    held: int
    params: np.ndarray
    grad: np.ndarray
    s: np.ndarray
    y: np.ndarray
    rho: np.ndarray
    gamma: Any
    diag: np.ndarray
    diag_scale: Any


def lbfgs_init(x: np.ndarray, m: int) -> LBFGS:
    zeros = np.zeros_like(x)
    ring = np.zeros((m, x.size), x.dtype)
    return LBFGS(0, 0, 0, zeros, zeros, ring, ring.copy(), np.zeros(m, x.dtype), x.dtype.type(1), np.ones_like(x),
                 x.dtype.type(0))


def lbfgs_update(spread: Optional[float]) -> Any:
    """``limited_memory.lbfgs(m, scaling).update``; ``spread``: the scaling's (None: ``"scalar"``,
    no diagonal)."""
    return functools.partial(_lbfgs_update, spread)


def _lbfgs_update(spread: Optional[float], g: np.ndarray, state: LBFGS, x: np.ndarray) -> tuple[np.ndarray, LBFGS]:
    """Take the pair ``(x - x_prev, g - g_prev)`` under L-BFGS-B's rules (with a ``spread``, update
    the diagonal and its factor), then :math:`d = -H g` by the two-loop recursion."""
    s, y = x - state.params, g - state.grad
    sy, yy, descent = dot(s, y), dot(y, y), -dot(state.grad, s)
    eps = np.finfo(state.rho.dtype).eps
    take = state.count > 0 and sy > 0 and sy > eps * descent and np.isfinite(sy) and np.isfinite(yy)
    head, held, gamma, diag, scale = state.head, state.held, state.gamma, state.diag, state.diag_scale
    m = state.rho.shape[0]
    if take and spread is not None:
        diag, scale = diagonal_update(diag, s, y, sy, yy, held == 0, spread)
    if take:  # push (the ring's rows are written in place: this state is the loop's own)
        state.s[head], state.y[head] = s, y
        state.rho[head] = (1.0 / sy).astype(state.rho.dtype)
        gamma = (sy / yy).astype(state.rho.dtype)
        head, held = (head + 1) % m, min(held + 1, m)
    new = LBFGS(min(state.count, INT32_MAX - 1) + 1, head, held, x, g, state.s, state.y, state.rho, gamma, diag, scale)
    if held == 0:
        gamma = (_limited_memory.first_scale(norm(g)) if state.count == 0 else np.ones((), state.rho.dtype)).astype(state.rho.dtype)  # L-BFGS-B's
    return -two_loop(g, new, (scale * diag).astype(diag.dtype) if held > 0 and scale > 0 else gamma), new


def diagonal_update(d: np.ndarray, s: np.ndarray, y: np.ndarray, sy: Any, yy: Any, start: bool, spread: float) -> tuple:
    """``limited_memory.diagonal_update`` for a pair that is taken: ``(D, c)``, Gilbert &
    Lemaréchal's diagonal (from :math:`(s^\\top y / y^\\top y) I` at ``start``; that scalar where
    it overflows) and the factor of :math:`H^0 = c D` (0 where its entries spread over at most a
    factor ``spread``)."""
    gamma = (sy / yy).astype(d.dtype)
    d0 = np.full_like(d, gamma) if start else d
    dyy = dot(d0 * y, y)
    dinsy = dot(s / d0, s)
    w = (s * s / d0) / (dinsy if dinsy > 0 else np.ones((), d.dtype))
    with np.errstate(all="ignore"):
        new = (1.0 / (dyy / sy / d0 * np.maximum(1.0 - w, np.finfo(d.dtype).eps) + y * y / sy)).astype(d.dtype)
    top, low = new.max(), new.min()
    if not np.isfinite(top):
        return np.full_like(d, gamma), d.dtype.type(0)
    ydy = dot(new * y, y)
    wide = top > spread * low and ydy > 0
    return new, (sy / ydy).astype(d.dtype) if wide else d.dtype.type(0)


def two_loop(g: np.ndarray, state: LBFGS, gamma: Any) -> np.ndarray:
    """:math:`H g`, newest pair first then oldest first (``limited_memory.two_loop``); empty
    slots (``rho = 0``: never filled, or forgotten by a reset) change nothing there and are skipped here."""
    m, rho, s, y = state.rho.shape[0], state.rho, state.s, state.y
    # the pairs held, oldest first: the ``held`` slots before ``head`` (the others have rho = 0)
    order = [(state.head - state.held + k) % m for k in range(state.held)]
    q, alphas = g, []
    for i in reversed(order):
        a = rho[i] * dot(s[i], q)
        q = q + (-a) * y[i]
        alphas.append(a)
    r = gamma * q  # (gamma: a scalar, or the diagonal H0 as a vector)
    for i, a in zip(order, reversed(alphas)):
        r = r + (a - rho[i] * dot(y[i], r)) * s[i]
    return r


def lbfgs_reset(state: LBFGS) -> tuple[LBFGS, bool]:
    """``limited_memory.reset``: no pair (``held = 0``, every ``rho = 0``), and whether any was held."""
    return state._replace(held=0, rho=np.zeros_like(state.rho)), state.held > 0


# -- dense BFGS -----------------------------------------------------------------------------
class BFGS(NamedTuple):
    count: int
    updates: int  # < 0 after a reset: the next update starts from H = I
    inv_hessian: np.ndarray
    params: np.ndarray
    grad: np.ndarray


def bfgs_init(x: np.ndarray) -> BFGS:
    return BFGS(0, 0, np.eye(x.size, dtype=x.dtype), np.zeros_like(x), np.zeros_like(x))


def bfgs_update(g: np.ndarray, state: BFGS, x: np.ndarray) -> tuple[np.ndarray, BFGS]:
    """``quasi_newton.bfgs_direction().update``: the inverse-Hessian update (Nocedal & Wright
    eq. 6.17) unless :math:`s^\\top y \\le \\epsilon \\|s\\|\\|y\\|`, then :math:`d = -H g`."""
    s, y = x - state.params, g - state.grad
    sy = dot(s, y)
    eps = np.finfo(x.dtype).eps
    good = state.count > 0 and sy > eps * np.sqrt(dot(s, s)) * np.sqrt(dot(y, y)) and np.isfinite(sy)
    fresh = state.updates < 0
    h = np.eye(x.size, dtype=x.dtype) if fresh else state.inv_hessian
    if good:
        rho = 1.0 / sy
        hy = h @ y
        h_new = h - rho * (np.outer(s, hy) + np.outer(hy, s)) + (rho * rho * dot(y, hy) + rho) * np.outer(s, s)
        if np.isfinite(h_new).all():
            h = h_new.astype(x.dtype)
    updates = min(max(state.updates, 0), INT32_MAX - 1) + int(good)
    return -(h @ g), BFGS(min(state.count, INT32_MAX - 1) + 1, updates, h, x, g)


def bfgs_reset(state: BFGS) -> tuple[BFGS, bool]:
    return state._replace(updates=-1), state.updates > 0


# -- nonlinear conjugate gradient -----------------------------------------------------------------
class CG(NamedTuple):
    count: int  # steps since the last restart
    grad: np.ndarray  # g_{k-1}
    direction: np.ndarray  # d_{k-1}


def cg_init(x: np.ndarray) -> CG:
    zeros = np.zeros_like(x)
    return CG(0, zeros, zeros)


def _div(a: Any, b: Any) -> Any:
    """``quasi_newton._div``: ``a / b``, ``inf`` (a restart) where ``b == 0``."""
    return a.dtype.type(np.inf) if b == 0 else a / b


def _cg_beta(variant: Any, g: np.ndarray, g_prev: np.ndarray, d_prev: np.ndarray) -> Any:
    """``quasi_newton._beta`` over NumPy."""
    V = _quasi_newton.CGVariant
    y = g - g_prev
    if variant is V.FLETCHER_REEVES:
        return _div(dot(g, g), dot(g_prev, g_prev))
    if variant is V.POLAK_RIBIERE_PLUS:
        beta = _div(dot(g, y), dot(g_prev, g_prev))
        return beta if beta != beta else max(beta, beta.dtype.type(0))  # jnp.maximum(beta, 0): NaN stays NaN
    if variant is V.HESTENES_STIEFEL:
        return _div(dot(g, y), dot(d_prev, y))
    return _div(dot(g, g), dot(d_prev, y))


def cg_update(variant: Any, period: Optional[int]) -> Any:
    """``quasi_newton.cg_direction(variant, restart_every)``'s update: :math:`d = -g + \beta d_{k-1}`,
    restarted (:math:`d = -g`) at the first step, every ``period`` steps (None: never), when
    :math:`\beta` is not finite and when :math:`d` is not a descent direction."""

    def update(g: np.ndarray, state: CG, x: np.ndarray) -> tuple[np.ndarray, CG]:
        beta = _cg_beta(variant, g, state.grad, state.direction)
        restart = state.count == 0 or not np.isfinite(beta) or (period is not None and state.count % period == 0)
        d = (-g + (g.dtype.type(0) if restart else beta.astype(g.dtype)) * state.direction).astype(g.dtype)
        descent = dot(g, d) < 0
        if not descent:
            d = -g
        return d, CG(1 if (restart or not descent) else state.count + 1, g, d)

    return update


def cg_reset(state: CG) -> tuple[CG, bool]:
    return state._replace(count=0), state.count > 1


def cg_accepts(variant: Any) -> Any:
    """``quasi_newton.cg_direction(variant).accepts``: the next direction is a sufficient descent direction."""

    def accepts(new_g: np.ndarray, g: np.ndarray, d: np.ndarray) -> bool:
        beta = _cg_beta(variant, new_g, g, d)
        nxt = -new_g + (beta.astype(g.dtype) if np.isfinite(beta) else g.dtype.type(0)) * d
        return bool(dot(new_g, nxt) <= -_quasi_newton.SUFFICIENT_DESCENT * dot(new_g, new_g))

    return accepts


# -- which directions, and their states for the compiled loop ----------------------------------
class HostDirection(NamedTuple):
    init: Any
    update: Any
    reset: Any
    accepts: Any = None


def host_direction(direction: Any, n: int = 0) -> Optional[HostDirection]:
    """The host version of a compiled :class:`jaxgd.Direction` for ``n`` parameters (CG's default
    period for every variant but PR+), or None where there is none (the host tier then does not run)."""
    if direction is _quasi_newton.bfgs_direction(False):
        return HostDirection(bfgs_init, bfgs_update, bfgs_reset)
    m = _limited_memory.memory_size(direction)
    if m is not None:
        spread = _limited_memory.spread_of(_limited_memory.scaling(direction))
        return HostDirection(lambda x: lbfgs_init(x, m), lbfgs_update(spread), lbfgs_reset)
    cg = _quasi_newton.cg_settings(direction)
    if cg is not None:
        variant, restart_every = cg  # the compiled update's period rule
        period = restart_every or (None if variant is _quasi_newton.CGVariant.POLAK_RIBIERE_PLUS else n)
        return HostDirection(cg_init, cg_update(variant, period), cg_reset, cg_accepts(variant))
    return None


def compiled_state(state: Any, unravel_rows: Any, unravel: Any) -> Any:
    """The compiled direction's state (``LBFGSState``/``BFGSState``, NumPy leaves) from a host one.

    ``unravel`` maps a flat vector to the parameters' pytree, ``unravel_rows`` an ``(m, n)``
    array to a pytree of ``(m, *shape)`` leaves."""
    i32 = np.int32
    if isinstance(state, CG):
        return _quasi_newton.CGState(i32(state.count), unravel(state.grad), unravel(state.direction))
    if isinstance(state, LBFGS):
        compact = _limited_memory.compact_form(state.params)  # the compiled direction keeps R^-1
        rinv = _limited_memory.inverse_by_slot(state.s, state.y, state.rho, state.head, state.held) if compact else None
        return _limited_memory.LBFGSState(
            i32(state.count), i32(state.head), i32(state.held), unravel(state.params), unravel(state.grad),
            unravel_rows(state.s), unravel_rows(state.y), state.rho, np.asarray(state.gamma, state.rho.dtype),
            unravel(state.diag), np.asarray(state.diag_scale, state.rho.dtype), rinv,
        )
    return _quasi_newton.BFGSState(i32(state.count), i32(state.updates), state.inv_hessian, state.params, state.grad)
