"""L-BFGS-B's limited memory: the compact representation ``B = theta I - W M W^T``.

The last ``m`` curvature pairs :math:`s_i = x_{i+1} - x_i`,
:math:`y_i = g_{i+1} - g_i` are kept oldest first in fixed ``(m, n)``
buffers (a loop carry of constant shape); the first ``m - col`` rows are
unused and masked. With :math:`S = [s_i]`, :math:`Y = [y_i]` (columns),
:math:`D = \\mathrm{diag}(s_i^\\top y_i)` and :math:`L` the strictly lower
triangle of :math:`S^\\top Y`, the L-BFGS matrix is

.. math::
   B = \\theta I - W M W^\\top,\\quad W = [\\,Y \\;\\; \\theta S\\,],\\quad
   M = \\begin{bmatrix} -D & L^\\top \\\\ L & \\theta S^\\top S \\end{bmatrix}^{-1}.

:math:`M` is formed by blocks from the Cholesky factor of
:math:`T = \\theta S^\\top S + L D^{-1} L^\\top` (positive definite while
every kept pair has :math:`s^\\top y > 0`), as the L-BFGS-B code does in
``formt``. :math:`S^\\top Y` and :math:`S^\\top S` are updated by one row and
column per step (``O(mn)``), never recomputed.

Every function takes ``xp``: ``jax.numpy`` (the compiled step), or ``numpy`` for a memory of
NumPy arrays (the host tier's step, :mod:`jaxgd.host.lbfgsb`; a failed Cholesky factor is NaN there
too).

Reference: R. H. Byrd, J. Nocedal & R. B. Schnabel, "Representations of
quasi-Newton matrices and their use in limited memory methods", Math.
Programming 63, 1994, Theorem 2.3 and eq. 3.5; Byrd, Lu, Nocedal & Zhu,
"A limited memory algorithm for bound constrained optimization", SIAM J.
Sci. Comput. 16(5), 1995, section 3.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve

from .. import _tree


class Memory(NamedTuple):
    """The curvature pairs, oldest first; rows ``< m - col`` are unused."""

    s: jax.Array  # (m, n)
    y: jax.Array  # (m, n)
    sy: jax.Array  # (m, m): sy[i, j] = s_i . y_j
    ss: jax.Array  # (m, m): ss[i, j] = s_i . s_j
    col: jax.Array  # int32: number of pairs held
    theta: jax.Array  # the scaling y.y / s.y of the newest pair (1 when empty)
    diag: jax.Array  # (n,): the diagonal D every kept pair updates (lbfgs's scaling="auto"/"diagonal"; ones otherwise)
    diag_scale: jax.Array  # > 0 where B0 = D^{-1} / diag_scale is used (scaled), 0 for theta I


def empty(n: int, m: int, dtype: jnp.dtype, xp: Any = jnp) -> Memory:
    """An empty memory for ``n`` variables and ``m`` pairs."""
    z = xp.zeros((m, n), dtype)
    zm = xp.zeros((m, m), dtype)
    return Memory(z, z, zm, zm, xp.asarray(0, xp.int32), xp.ones((), dtype), xp.ones((n,), dtype), xp.zeros((), dtype))


def reset(mem: Memory, xp: Any = jnp) -> Memory:
    """Forget every pair (``B = I``), as L-BFGS-B does after a failed line search."""
    return mem._replace(col=xp.zeros_like(mem.col), theta=xp.ones_like(mem.theta),
                        diag_scale=xp.zeros_like(mem.diag_scale))


def valid(mem: Memory, xp: Any = jnp) -> jax.Array:
    """``(m,)`` bool: which rows hold a pair."""
    m = mem.s.shape[0]
    return xp.arange(m) >= m - mem.col


def push(mem: Memory, s: jax.Array, y: jax.Array, take: jax.Array, xp: Any = jnp) -> Memory:
    """Append the pair ``(s, y)`` (dropping the oldest when full) when ``take``.

    ``theta`` becomes :math:`y^\\top y / s^\\top y` (BLNZ 1995, eq. 3.2 / the
    code's ``matupd``). The caller decides ``take`` (the curvature test).
    """
    put, roll = _tree.put, lambda a: xp.roll(a, -1, axis=0)  # noqa: E731
    s_new = put(roll(mem.s), -1, s)
    y_new = put(roll(mem.y), -1, y)
    sy = xp.roll(mem.sy, (-1, -1), axis=(0, 1))
    ss = xp.roll(mem.ss, (-1, -1), axis=(0, 1))
    sy = put(put(sy, (-1, slice(None)), y_new @ s), (slice(None), -1), s_new @ y)
    s_col = s_new @ s
    ss = put(put(ss, (-1, slice(None)), s_col), (slice(None), -1), s_col)
    m = mem.s.shape[0]
    new = mem._replace(
        s=s_new, y=y_new, sy=sy, ss=ss, col=xp.minimum(mem.col + 1, m).astype(mem.col.dtype),
        theta=(xp.dot(y, y) / xp.dot(s, y)).astype(mem.theta.dtype),
    )
    return _tree.pick(take, new, mem)


def scaled(mem: Memory, xp: Any = jnp) -> tuple[Memory, jax.Array]:
    """``(memory, sigma)``: the memory in the variables :math:`\\tilde x = x / \\sigma` where a
    diagonal :math:`B_0` is in use, else ``(mem, ones)`` (the same arrays, the same bits).

    With :math:`D` the diagonal every kept pair updates (``diag``, Gilbert & Lemaréchal's
    update as ``lbfgs``'s ``scaling`` keeps it) and :math:`c` its factor (``diag_scale > 0``
    while the memory holds a pair and :math:`D` is used), L-BFGS-B's matrix from
    :math:`B_0 = (c D)^{-1}` instead of :math:`\\theta I` is, in the variables
    :math:`\\tilde x_i = x_i / \\sigma_i` with :math:`\\sigma = \\sqrt{D}`, the compact matrix
    :math:`\\tilde\\theta I - \\tilde W \\tilde M \\tilde W^\\top` of the pairs
    :math:`\\tilde s = s / \\sigma`, :math:`\\tilde y = \\sigma y` with
    :math:`\\tilde\\theta = 1 / c = \\tilde y^\\top \\tilde y / s^\\top y` of the newest pair:
    a box stays a box (:math:`\\tilde l = l / \\sigma`), :math:`S^\\top Y` is unchanged and only
    :math:`\\tilde S^\\top \\tilde S = S^\\top D^{-1} S` is formed again (``O(m^2 n)``), so the
    Cauchy point and the subspace step run unchanged on :math:`\\tilde x`,
    :math:`\\tilde g = \\sigma g` and the scaled bounds.
    """
    use = (mem.col > 0) & (mem.diag_scale > 0)
    sigma = xp.where(use, xp.sqrt(mem.diag), 1.0)
    s, y = mem.s / sigma[None, :], mem.y * sigma[None, :]
    view = mem._replace(s=s, y=y, ss=s @ s.T, theta=1.0 / xp.where(use, mem.diag_scale, 1.0))
    return _tree.pick(use, view, mem), sigma


def compact(mem: Memory, xp: Any = jnp) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(W, M, ok)``: the compact representation of the memory's ``B``.

    Unused rows give zero columns of ``W`` (``(n, 2m)``) and decoupled
    blocks of ``M`` (``(2m, 2m)``), so every product with them vanishes.
    ``ok`` is False when :math:`T` is not numerically positive definite
    (the caller then restarts from ``B = I``, as the L-BFGS-B code does).
    """
    m = mem.s.shape[0]
    dtype = mem.s.dtype
    v = valid(mem, xp)
    vv = v[:, None] & v[None, :]
    eye = xp.eye(m, dtype=dtype)
    d = xp.where(v, xp.diagonal(mem.sy), 1.0)
    d_inv = xp.where(v, 1.0 / d, 0.0)
    low = xp.where(vv & (xp.arange(m)[:, None] > xp.arange(m)[None, :]), mem.sy, 0.0)
    ss = xp.where(vv, mem.ss, eye)
    theta = mem.theta
    low_dinv = low * d_inv[None, :]  # L D^{-1}
    t = theta * ss + low_dinv @ low.T
    t_inv = _solve(_cholesky(t, xp), eye, dtype, xp)
    m12 = low_dinv.T @ t_inv  # D^{-1} L^T T^{-1}
    m11 = -xp.diag(d_inv) + m12 @ low_dinv
    big_m = xp.block([[m11, m12], [m12.T, t_inv]])
    w = xp.concatenate([xp.where(v[:, None], mem.y, 0.0).T, theta * xp.where(v[:, None], mem.s, 0.0).T], axis=1)
    ok = xp.all(xp.isfinite(big_m)) & xp.all(xp.isfinite(w))
    return w, big_m, ok


def _cholesky(a: jax.Array, xp: Any = jnp) -> jax.Array:
    """The lower Cholesky factor of the symmetric positive definite ``a`` (NaN where it is not); a
    half-precision ``a`` is factored in float32: LAPACK has no float16 or bfloat16 routines (an
    L-BFGS-B run in either type raised JAX's "Unsupported dtype"). Other dtypes as they are."""
    if xp is not jnp:  # (NumPy raises where JAX's factor is NaN; the host tier runs float32 and float64)
        try:
            return xp.linalg.cholesky(a)
        except xp.linalg.LinAlgError:
            return xp.full_like(a, xp.nan)
    return jnp.linalg.cholesky(a.astype(jnp.float32) if jnp.finfo(a.dtype).bits < 32 else a)


def _solve(factor: jax.Array, b: jax.Array, dtype: Any, xp: Any = jnp) -> jax.Array:
    """``a^{-1} b`` from :func:`_cholesky`'s factor of ``a``, in ``dtype`` (``a``'s)."""
    if xp is not jnp:  # (two triangular solves, by NumPy's general solver: 2m x 2m at most)
        if not xp.isfinite(factor).all():
            return xp.full(b.shape, xp.nan, dtype)
        return xp.linalg.solve(factor.T, xp.linalg.solve(factor, b))
    if factor.dtype == dtype:  # (float32 and float64: the program as it was)
        return cho_solve((factor, True), b)
    return cho_solve((factor, True), b.astype(factor.dtype)).astype(dtype)


def _unused(v: jax.Array, dtype: Any, xp: Any) -> jax.Array:
    """1 at the unused pairs, 0 at the others, in ``dtype`` (NumPy has no weak types: its
    ``where(v, 0.0, 1.0)`` is float64, which made a float32 host run's step float64)."""
    return jnp.where(v, 0.0, 1.0) if xp is jnp else (~v).astype(dtype)


def solve_reduced(mem: Memory, free: jax.Array, u: jax.Array, xp: Any = jnp) -> jax.Array:
    """``N^{-1} u`` for the middle matrix of the reduced inverse, by blocks (the code's ``formk``).

    With :math:`Z` the free variables and :math:`A` the others, the
    Sherman-Morrison-Woodbury form of :math:`(Z^\\top B Z)^{-1}` needs
    :math:`N = M^{-1} - \\tfrac1\\theta W^\\top Z Z^\\top W`, which is

    .. math::
       N = \\begin{bmatrix} -P & C^\\top \\\\ C & Q \\end{bmatrix},\\quad
       P = D + \\tfrac1\\theta Y^\\top Z Z^\\top Y,\\quad
       C = L_A - R_Z,\\quad Q = \\theta S^\\top A A^\\top S

    (:math:`L_A` the strictly lower triangle of :math:`S^\\top A A^\\top Y`,
    :math:`R_Z` the upper triangle with the diagonal of
    :math:`S^\\top Z Z^\\top Y`). Every block is formed from the pairs
    restricted to its variables (no difference of nearly equal products) and
    ``N`` is solved through the Cholesky factors of :math:`P` and of the Schur
    complement :math:`Q + C P^{-1} C^\\top`, both positive definite (BLNZ
    1995, section 5.1; Zhu et al. 1997, ``formk``). Forming :math:`M`
    explicitly and solving :math:`I - \\tfrac1\\theta M W^\\top Z Z^\\top W` instead
    lost most digits on ill-conditioned memories (sif2jax's KOEBHELB: the
    subspace step of the jitted and the eager program pointed opposite ways).

    Args:
      mem: the memory.
      free: ``(n,)`` bool, the variables free at the Cauchy point.
      u: ``(2m,)``, a vector in :math:`W`'s column space (``W^T r``).

    Returns:
      ``(2m,)``: :math:`N^{-1} u`, zero in the unused pairs' entries (NaN when a
      factor is not positive definite: the caller then keeps the Cauchy point).
    """
    m = mem.s.shape[0]
    v = valid(mem, xp)
    s, y = xp.where(v[:, None], mem.s, 0.0), xp.where(v[:, None], mem.y, 0.0)
    sz, yz = xp.where(free[None, :], s, 0.0), xp.where(free[None, :], y, 0.0)
    sa, ya = s - sz, y - yz
    theta = mem.theta
    p = xp.diag(xp.where(v, xp.diagonal(mem.sy), 1.0)) + (yz @ yz.T) / theta
    strictly_lower = xp.arange(m)[:, None] > xp.arange(m)[None, :]
    c = xp.where(strictly_lower, sa @ ya.T, 0.0) - xp.where(strictly_lower, 0.0, sz @ yz.T)
    q = theta * (sa @ sa.T) + xp.diag(_unused(v, u.dtype, xp))
    u1, u2 = u[:m], u[m:]
    solved = _solve(_cholesky(p, xp), xp.concatenate([c.T, u1[:, None]], axis=1), u.dtype, xp)
    p_inv_ct, p_inv_u1 = solved[:, :m], solved[:, m]  # one solve with both right-hand sides
    js = _cholesky(q + c @ p_inv_ct, xp)
    b = _solve(js, u2 + c @ p_inv_u1, u.dtype, xp)
    a = p_inv_ct @ b - p_inv_u1
    return xp.concatenate([a, b])


def dense_b(mem: Memory) -> jax.Array:
    """The dense ``B = theta I - W M W^T`` (``(n, n)``; for tests on small problems)."""
    w, big_m, _ = compact(mem)
    n = mem.s.shape[1]
    return mem.theta * jnp.eye(n, dtype=w.dtype) - w @ big_m @ w.T
