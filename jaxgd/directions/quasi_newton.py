"""Curvature-aware directions: dense BFGS, L-BFGS and nonlinear conjugate gradient.

Each is a :class:`jaxgd.Direction`. Its ``update`` runs at step ``k`` with
the current parameters and gradient and the state left by step ``k - 1``;
the state stores the previous parameters and gradient, so the curvature pair
:math:`s = \\theta_k - \\theta_{k-1}`, :math:`y = g_k - g_{k-1}` is formed
there. States keep fixed shapes and dtypes (a loop carry). The default step
size of each is the Moré-Thuente line search with the constants and first
trial of the scipy method it matches: scipy's BFGS for ``bfgs``, L-BFGS-B's
for ``lbfgs`` (:mod:`jaxgd.directions.limited_memory`), scipy's CG for ``cg``.
The searches of ``bfgs`` and ``cg`` run scipy's second line search
(``line_search_wolfe2``, ``jaxgd/linesearch/zoom.py``) after a Moré-Thuente
search that fails, meets a NaN/Inf trial or ends at a step ``cg`` rejects (its
``accepts``: Gilbert & Nocedal's sufficient descent, scipy CG's test), as
scipy's ``_line_search_wolfe12`` does; L-BFGS-B has no second search.
Each has a ``reset``: a line search that fails with curvature information in
the state (H != I, pairs in memory, a conjugate direction) is retried once from
the same point along steepest descent, L-BFGS-B's restart; only a search that
fails along -g ends the run (scipy's BFGS and CG stop at the first failure).

The factories are cached: equal arguments give the same ``Direction``
object, so a compiled loop keyed on it is re-used.
"""

from __future__ import annotations

import enum
import functools
import math
import numbers
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .. import _tree
from . import limited_memory as _limited_memory
from .base import Direction, Made
from ..linesearch.more_thuente import MoreThuente
from .._types import Grads, Params

SUFFICIENT_DESCENT = 0.01  # scipy CG's sigma_3 (Gilbert & Nocedal 1992's sufficient descent condition)
BAD_VARIANT = "variant={value!r} is not a conjugate-gradient variant; choose one of {valid}"
BAD_MEMORY = "memory_size must be a positive integer, got memory_size={value!r}"
BAD_SCALING = "scaling must be 'auto', 'diagonal' or 'scalar', got scaling={value!r}"
BAD_RESTART = "restart_every must be None or a positive integer, got restart_every={value!r}"


def bfgs_lr() -> MoreThuente:
    """The default step size of ``bfgs``: Moré-Thuente, ``c1=1e-4``, ``c2=0.9``, the
    interpolated first trial capped at 1 and the zoom search after a failed one (scipy's
    BFGS: ``line_search_wolfe1`` with ``old_old_fval``, then ``line_search_wolfe2``). With :math:`H_0 = I` this is scipy's BFGS step for step; the unit
    first trial and a scaled :math:`H_0` missed 15 of the 130 unconstrained CUTEst problems
    of sif2jax that scipy's BFGS solves (benchmarks/RESULTS.md, session 9)."""
    return MoreThuente(c1=1e-4, c2=0.9, start="interpolate", fallback=True)


def cg_lr() -> MoreThuente:
    """The default step size of ``cg``: Moré-Thuente, ``c1=1e-4``, ``c2=0.4``, the
    interpolated first trial and the zoom search after a failed search or a step without
    sufficient descent (scipy's CG: ``old_old_fval``, ``c2=0.4``, ``_line_search_wolfe12``);
    in float32 the first trial no shorter than a step that moves x (``min_move``)."""
    return MoreThuente(c1=1e-4, c2=0.4, start="interpolate", fallback=True, min_move=True)


# -- dense BFGS --------------------------------------------------------------------
class BFGSState(NamedTuple):
    count: jax.Array  # steps seen (int32)
    updates: jax.Array  # curvature pairs used so far (int32)
    inv_hessian: jax.Array  # H_k, (n, n)
    params: jax.Array  # theta_{k-1}, flat
    grad: jax.Array  # g_{k-1}, flat


def bfgs_update(h: jax.Array, s: jax.Array, y: jax.Array, identity: Any = False) -> jax.Array:
    """``(I - rho s y^T) H (I - rho y s^T) + rho s s^T`` with ``rho = 1 / y^T s``, in O(n^2);
    from ``H = I`` where ``identity`` (a traced flag: ``h`` is then not read)."""
    rho = 1.0 / jnp.dot(y, s)
    hy = jnp.where(identity, y, h @ y)
    base = jnp.where(identity, jnp.eye(h.shape[0], dtype=h.dtype), h)
    return base - rho * (jnp.outer(s, hy) + jnp.outer(hy, s)) + (rho * rho * jnp.dot(y, hy) + rho) * jnp.outer(s, s)


def bfgs_direction(scale_init: bool = False) -> Direction:
    """Dense BFGS: :math:`d_k = -H_k g_k` with the inverse-Hessian update

    .. math::
       H_{k+1} = (I - \\rho_k s_k y_k^\\top) H_k (I - \\rho_k y_k s_k^\\top)
       + \\rho_k s_k s_k^\\top, \\qquad \\rho_k = \\frac{1}{y_k^\\top s_k},

    skipped when :math:`y_k^\\top s_k \\le \\epsilon \\|s_k\\|\\|y_k\\|`
    (:math:`\\epsilon` the dtype's machine epsilon) or when the pair is not
    finite. :math:`H_0 = I`, as scipy's BFGS; with ``scale_init`` it is
    replaced, just before the first update, by :math:`(y^\\top s / y^\\top y) I`
    (Nocedal & Wright's recommendation, which solved fewer of sif2jax's CUTEst
    problems with scipy's line search). The parameters are flattened
    (``jax.flatten_util.ravel_pytree``), so the state holds an
    :math:`n \\times n` matrix: use ``lbfgs`` for large :math:`n`.

    Reference: J. Nocedal & S. Wright, "Numerical Optimization", 2nd ed.,
    2006, Algorithm 6.1, eq. 6.17 (update) and eq. 6.20 (initial scaling).

    Args:
      scale_init: rescale :math:`H_0` by eq. 6.20 (static).

    Returns:
      A :class:`jaxgd.Direction` named ``"bfgs"`` whose default step size is
      a strong Wolfe line search (:func:`bfgs_lr`; the same object for the same argument).
    """
    return _bfgs(bool(scale_init))


@functools.lru_cache(maxsize=None)
def _bfgs(scale_init: bool) -> Direction:
    def init(params: Params) -> BFGSState:
        flat, _ = ravel_pytree(params)
        n = flat.shape[0]
        zero = jnp.asarray(0, jnp.int32)
        return BFGSState(zero, zero, jnp.eye(n, dtype=flat.dtype), jnp.zeros_like(flat), jnp.zeros_like(flat))

    def update(grad: Grads, state: BFGSState, params: Params, value: Any = None, value_fn: Any = None) -> tuple[Grads, BFGSState]:
        x, unravel = ravel_pytree(params)
        g, _ = ravel_pytree(_tree.cast_like(grad, params))
        s, y = x - state.params, g - state.grad
        sy = jnp.dot(s, y)
        eps = jnp.finfo(x.dtype).eps
        good = (state.count > 0) & (sy > eps * jnp.linalg.norm(s) * jnp.linalg.norm(y)) & jnp.isfinite(sy)
        # updates < 0: reset (H = I), kept as a flag so that a reset selects no n x n matrix;
        # the identity is built inside the kernels that read H (elementwise, and h @ y below)
        fresh = state.updates < 0
        eye = jnp.eye(x.shape[0], dtype=x.dtype)
        h, identity = state.inv_hessian, fresh
        if scale_init:  # eq. 6.20, just before the first update (and the first after a reset)
            h, identity = jnp.where(state.updates <= 0, (sy / jnp.dot(y, y)) * eye, h), False
        # A discarded update gets a harmless pair (adjoint, issue 12): 1 / s^T y = inf at s = 0
        # would make the reverse-mode derivative through the jnp.where below 0 * inf = NaN.
        h_new = bfgs_update(h, jnp.where(good, s, 1.0), jnp.where(good, y, 1.0), identity)
        h0 = jnp.where(fresh, eye, state.inv_hessian)
        h = jnp.where(good & _tree.all_finite(h_new), h_new, h0).astype(x.dtype)
        d = -(h @ g)
        new = BFGSState(
            jnp.minimum(state.count, jnp.iinfo(jnp.int32).max - 1) + 1,
            jnp.minimum(jnp.maximum(state.updates, 0), jnp.iinfo(jnp.int32).max - 1) + good.astype(jnp.int32),
            h,
            x,
            g,
        )
        return unravel(d.astype(x.dtype)), new

    def reset(state: BFGSState) -> tuple[BFGSState, jax.Array]:
        """``(H = I, whether any update had been made)``: after a failed search the solver
        retries from the same point along steepest descent (L-BFGS-B's restart). The state
        marks it (``updates = -1``) and the next update starts from the identity."""
        return state._replace(updates=jnp.full_like(state.updates, -1)), state.updates > 0

    return Direction("bfgs(scale_init=True)" if scale_init else "bfgs", init, update, bfgs_lr, reset=reset, quasi_newton=True)


# -- L-BFGS (jaxgd.directions.limited_memory) -------------------------------------------
def lbfgs_direction(memory_size: int = 10, scaling: str = "auto") -> Direction:
    """L-BFGS: :math:`d_k = -H_k g_k` with :math:`H_k` from the last ``memory_size`` pairs.

    The two-loop recursion (the arithmetic of ``optax.scale_by_lbfgs``) from :math:`H_k^0`
    (``scaling``): ``"scalar"``, :math:`\\gamma_k I` with :math:`\\gamma_k = s^\\top y / y^\\top y`
    of the newest pair (Nocedal & Wright eq. 7.20; L-BFGS-B's :math:`\\theta = 1/\\gamma_k`);
    ``"diagonal"``, :math:`c_k D_k` with :math:`D_k` a diagonal every kept pair updates
    (Gilbert & Lemaréchal's diagonal BFGS update, M1QN3's scaling) and
    :math:`c_k = s^\\top y / y^\\top D_k y` of the newest pair; ``"auto"`` (the default), the
    diagonal while its entries spread over more than a factor 1,000 (a badly scaled problem:
    parameters of very different sizes, as in many curve fits), the scalar otherwise. While no
    pair is kept, L-BFGS-B's :math:`I/\\|g\\|` at the first point and :math:`I` later. Pairs are
    kept and the memory restarted after a failed line search as L-BFGS-B does; the default step
    size is L-BFGS-B's line search (:mod:`jaxgd.directions.limited_memory`). With
    ``scaling="scalar"``, and with ``"auto"`` on a problem whose diagonal stays within the factor,
    the steps are scipy L-BFGS-B's.

    References: D. C. Liu & J. Nocedal, "On the limited memory BFGS method
    for large scale optimization", Math. Programming 45, 1989; J. C. Gilbert & C.
    Lemaréchal, "Some numerical experiments with variable-storage quasi-Newton
    algorithms", Math. Programming 45, 1989; Nocedal & Wright, "Numerical
    Optimization", 2nd ed., 2006, Algorithms 7.4-7.5.

    Args:
      memory_size: number of curvature pairs kept (static; >= 1).
      scaling: ``"auto"``, ``"diagonal"`` or ``"scalar"``, the initial matrix :math:`H_k^0`.

    Returns:
      A :class:`jaxgd.Direction` (the same object for the same arguments).

    Raises:
      ValueError: ``memory_size`` not a positive integer; ``scaling`` not one of the three.
    """
    if isinstance(memory_size, bool) or not isinstance(memory_size, numbers.Integral) or memory_size < 1:
        raise ValueError(BAD_MEMORY.format(value=memory_size))
    memory_size = int(memory_size)  # (a NumPy integer too, as every count jaxgd takes)
    if not isinstance(scaling, str) or scaling not in _limited_memory.SCALINGS:
        raise ValueError(BAD_SCALING.format(value=scaling))
    return _limited_memory.lbfgs(memory_size, scaling)


# -- nonlinear conjugate gradient ------------------------------------------------------
class CGVariant(enum.Enum):
    """The formula for :math:`\\beta_k` (value: the accepted name)."""

    FLETCHER_REEVES = "fr"
    POLAK_RIBIERE_PLUS = "pr+"
    HESTENES_STIEFEL = "hs"
    DAI_YUAN = "dy"


_VARIANT_NAMES = {
    "fr": CGVariant.FLETCHER_REEVES,
    "fletcher-reeves": CGVariant.FLETCHER_REEVES,
    "pr+": CGVariant.POLAK_RIBIERE_PLUS,
    "prp+": CGVariant.POLAK_RIBIERE_PLUS,
    "polak-ribiere+": CGVariant.POLAK_RIBIERE_PLUS,
    "hs": CGVariant.HESTENES_STIEFEL,
    "hestenes-stiefel": CGVariant.HESTENES_STIEFEL,
    "dy": CGVariant.DAI_YUAN,
    "dai-yuan": CGVariant.DAI_YUAN,
}


class CGState(NamedTuple):
    count: jax.Array  # steps since the last restart (int32)
    grad: Grads  # g_{k-1}
    direction: Grads  # d_{k-1}


def _div(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a / b``, and ``inf`` (a restart) where ``b == 0``, without dividing by zero:
    a zero cotangent times an infinite partial would make reverse-mode
    derivatives NaN (adjoint="unroll", issue 12)."""
    zero = b == 0
    return jnp.where(zero, jnp.inf, a / jnp.where(zero, 1.0, b))


def _beta(variant: CGVariant, g: Grads, g_prev: Grads, d_prev: Grads) -> jax.Array:
    y = _tree.sub(g, g_prev)
    if variant is CGVariant.FLETCHER_REEVES:
        return _div(_tree.sq_norm(g), _tree.sq_norm(g_prev))
    if variant is CGVariant.POLAK_RIBIERE_PLUS:
        return jnp.maximum(_div(_tree.vdot(g, y), _tree.sq_norm(g_prev)), 0.0)
    if variant is CGVariant.HESTENES_STIEFEL:
        return _div(_tree.vdot(g, y), _tree.vdot(d_prev, y))
    return _div(_tree.sq_norm(g), _tree.vdot(d_prev, y))


def _size(params: Params) -> int:
    return sum(math.prod(jnp.shape(x)) for x in _tree.leaves(params))


@functools.lru_cache(maxsize=None)
def _cg(variant: CGVariant, restart_every: Optional[int]) -> Direction:
    def init(params: Params) -> CGState:
        zeros = _tree.tmap(jnp.zeros_like, params)
        return CGState(jnp.asarray(0, jnp.int32), zeros, zeros)

    def update(grad: Grads, state: CGState, params: Params, value: Any = None, value_fn: Any = None) -> tuple[Grads, CGState]:
        g = _tree.cast_like(grad, params)
        beta = _beta(variant, g, state.grad, state.direction)
        restart = (state.count == 0) | ~jnp.isfinite(beta)
        n = restart_every or (None if variant is CGVariant.POLAK_RIBIERE_PLUS else _size(params))
        if n is not None:
            restart = restart | (state.count % n == 0)
        beta = jnp.where(restart, 0.0, beta)
        d = _tree.add_scaled(_tree.neg(g), beta, state.direction)
        descent = _tree.vdot(g, d) < 0
        restart = restart | ~descent
        d = _tree.where(descent, d, _tree.neg(g))
        count = jnp.where(restart, 1, state.count + 1).astype(jnp.int32)
        return d, CGState(count, g, d)

    def reset(state: CGState) -> tuple[CGState, jax.Array]:
        """``(a restart, whether the last direction was not already -g)``: after a failed
        search the solver retries from the same point along steepest descent."""
        return state._replace(count=jnp.zeros_like(state.count)), state.count > 1

    def accepts(new_grad: Grads, grad: Grads, d: Grads) -> jax.Array:
        """scipy's CG's test of a step (Gilbert & Nocedal's sufficient descent, sigma_3 = 0.01):
        the next direction d' = -g' + beta d (beta = 0 where not finite) has g'.d' <= -0.01 ||g'||^2."""
        beta = _beta(variant, new_grad, grad, d)
        nxt = _tree.add_scaled(_tree.neg(new_grad), jnp.where(jnp.isfinite(beta), beta, 0.0), d)
        return _tree.vdot(new_grad, nxt) <= -SUFFICIENT_DESCENT * _tree.sq_norm(new_grad)

    # the name carries every setting (a checkpoint is refused for another name)
    settings = variant.value + ("" if restart_every is None else f", restart_every={restart_every}")
    name = "cg" if (variant, restart_every) == (CGVariant.POLAK_RIBIERE_PLUS, None) else f"cg({settings})"
    return _CG_MADE.record(Direction(name, init, update, cg_lr, reset=reset, accepts=accepts), (variant, restart_every))


_CG_MADE = Made()


def cg_settings(direction: Any) -> Optional[tuple[CGVariant, Optional[int]]]:
    """``(variant, restart_every)`` of a direction :func:`cg_direction` made, else None
    (the host tier, :mod:`jaxgd.host`, runs the same rule)."""
    return _CG_MADE.settings(direction)


def cg_direction(variant: Any = "pr+", restart_every: Optional[int] = None) -> Direction:
    """Nonlinear conjugate gradient: :math:`d_k = -g_k + \\beta_k d_{k-1}`.

    With :math:`y_k = g_k - g_{k-1}`:

    .. math::
       \\beta^{FR} = \\frac{g_k^\\top g_k}{g_{k-1}^\\top g_{k-1}},\\quad
       \\beta^{PR+} = \\max\\Bigl(0, \\frac{g_k^\\top y_k}{g_{k-1}^\\top g_{k-1}}\\Bigr),\\quad
       \\beta^{HS} = \\frac{g_k^\\top y_k}{d_{k-1}^\\top y_k},\\quad
       \\beta^{DY} = \\frac{g_k^\\top g_k}{d_{k-1}^\\top y_k}.

    Restarts (:math:`d_k = -g_k`) at the first step, every ``restart_every``
    steps, when :math:`\\beta_k` is not finite, and whenever :math:`d_k` is not
    a descent direction (:math:`g_k^\\top d_k \\ge 0`). By default (``None``)
    PR+ has no periodic restart, as scipy's CG (its :math:`\\beta \\ge 0`
    restarts by itself; restarting every :math:`n` steps made a 2-variable
    problem steepest descent every other step, and sif2jax's MARATOSB was not
    solved in 1,000 steps), and the other variants restart
    every :math:`n` steps (the number of parameters).

    References: R. Fletcher & C. M. Reeves, Computer J. 7(2), 1964;
    E. Polak & G. Ribiere, 1969, with Powell's non-negative truncation
    (M. J. D. Powell, 1986; Gilbert & Nocedal, SIAM J. Optim. 2(1), 1992);
    M. R. Hestenes & E. Stiefel, J. Res. NBS 49(6), 1952; Y. H. Dai &
    Y. Yuan, SIAM J. Optim. 10(1), 1999; Nocedal & Wright, "Numerical
    Optimization", 2nd ed., 2006, section 5.2 (eqs. 5.41-5.49).

    Args:
      variant: ``"fr"``, ``"pr+"``, ``"hs"``, ``"dy"`` (or a :class:`CGVariant`).
      restart_every: restart period (static); ``None``: none for PR+, :math:`n` for the others.

    Returns:
      A :class:`jaxgd.Direction` (the same object for equal arguments).

    Raises:
      ValueError: an unknown variant or a bad ``restart_every``.
    """
    if isinstance(variant, CGVariant):
        v = variant
    elif isinstance(variant, str) and variant.lower() in _VARIANT_NAMES:
        v = _VARIANT_NAMES[variant.lower()]
    else:
        raise ValueError(BAD_VARIANT.format(value=variant, valid=", ".join(repr(m.value) for m in CGVariant)))
    if restart_every is not None and (
        isinstance(restart_every, bool) or not isinstance(restart_every, numbers.Integral) or restart_every < 1
    ):
        raise ValueError(BAD_RESTART.format(value=restart_every))
    return _cg(v, None if restart_every is None else int(restart_every))
