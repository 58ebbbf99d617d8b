"""L-BFGS over a ring of curvature pairs, as L-BFGS-B keeps them.

:math:`d_k = -H_k g_k`, with :math:`H_k` the BFGS update of
:math:`H^0_k = \\gamma_k I` by the last ``m`` kept pairs
:math:`s_i = x_{i+1} - x_i`, :math:`y_i = g_{i+1} - g_i`: up to
:data:`TWO_LOOP_MAX` parameters by the two-loop recursion (Nocedal & Wright,
Algorithm 7.4, two ``lax.scan`` loops over the ring in the order of
``optax.scale_by_lbfgs``, whose arithmetic this repeats), above it by the
compact representation of the same :math:`H_k` (:func:`compact_product`:
four products of the ring with a vector, where the loops run ``2m`` dependent
kernels). Where optax keeps every pair, this memory keeps, as the L-BFGS-B
code does (``matupd``):

- a pair enters only when :math:`s^\\top y > \\epsilon\\,\\max(-g^\\top s, 0)`
  and :math:`s^\\top y > 0` (:math:`g` the gradient it started from,
  :math:`\\epsilon` the dtype's machine epsilon): a pair of non-positive
  curvature would make :math:`H` indefinite (and :math:`d` no descent
  direction), and a step not taken (:math:`s = 0`) carries none;
- :math:`H^0_k` (``scaling``): ``"scalar"``, :math:`\\gamma_k I` with
  :math:`\\gamma_k = s^\\top y / y^\\top y` of the newest kept pair (Nocedal &
  Wright eq. 7.20; L-BFGS-B's :math:`\\theta = 1/\\gamma_k`); ``"diagonal"``,
  :math:`c_k D_k` with :math:`D_k` a diagonal every kept pair updates
  (:func:`diagonal_update`: Gilbert & Lemaréchal's diagonal BFGS update,
  M1QN3's scaling), so that parameters of very different scales each get
  their own, and :math:`c_k` Oren-Spedicato's factor for the newest pair;
  ``"auto"`` (the default), the diagonal while :math:`D_k`'s entries spread
  over more than a factor :data:`SPREAD` (1,000), the scalar otherwise (a
  well-scaled problem keeps L-BFGS-B's steps); with no pair, L-BFGS-B's steepest-descent
  step (``lnsrlb``): :math:`1/\\|g\\|` at the first point (a first trial
  step of length 1; optax's :math:`\\min(1, 1/\\|g\\|)` is shorter where
  :math:`\\|g\\| < 1`), else :math:`1` (:math:`\\theta = 1` after a restart
  or while no pair has been kept);
- :func:`reset` forgets every pair (:math:`H = \\gamma I`): the solver calls it
  when a line search fails with pairs in memory and retries from the same
  point along -g (a unit trial, as L-BFGS-B), failing for good only when a
  search fails with an empty memory (L-BFGS-B's ``lnsrlb``/``mainlb``
  restart).

The default step size is L-BFGS-B's line search: Moré-Thuente with
``c1 = 1e-3``, ``c2 = 0.9``, ``xtol = 0.1`` and at most 20 evaluations
(``lnsrlb``'s constants), from a unit first trial. With ``scaling="scalar"``
and ``gtol_norm=inf`` (L-BFGS-B's test) it takes scipy's L-BFGS-B steps on
Rosenbrock and needs as many evaluations as scipy's L-BFGS-B on the 130
unconstrained CUTEst problems of sif2jax (1.00 in geometric mean; the runs
that differ part by rounding); ``"auto"`` takes the same steps on 80 of them,
solves 127 (``"scalar"`` 115, scipy 107) and needs about 0.86 of scipy's
evaluations over all (a tenth on the badly scaled GAUSS*LS fits;
benchmarks/RESULTS.md, session 20). The threshold is a judgment from that
suite: 10 or 100 also lower the evaluations but lose L-BFGS-B's steps on
chained Rosenbrock (8-44 % more evaluations at 30-100 parameters), where the
diagonal spreads over two orders of magnitude; 10,000 gains less (0.90). The
diagonal costs 3 kernels a step (a 1,000-D step's loop body: 90 -> 93 thunks),
5-20 % of a 1,000-D Rosenbrock iteration (its entries' divisions, their
extremes and :math:`y^\top D y`; benchmarks/RESULTS.md, session 27) and ~0.15 s
of compile, also where it is not used.

References: D. C. Liu & J. Nocedal, "On the limited memory BFGS method for
large scale optimization", Math. Programming 45, 1989; R. H. Byrd, P. Lu,
J. Nocedal & C. Zhu, "A limited memory algorithm for bound constrained
optimization", SIAM J. Sci. Comput. 16(5), 1995; C. Zhu, R. H. Byrd, P. Lu &
J. Nocedal, "Algorithm 778: L-BFGS-B", ACM TOMS 23(4), 1997; J. Nocedal &
S. Wright, "Numerical Optimization", 2nd ed., 2006, section 7.2; R. H. Byrd, J. Nocedal &
R. B. Schnabel, "Representations of quasi-Newton matrices and their use in limited memory
methods", Math. Programming 63, 1994 (the compact form); J. C. Gilbert
& C. Lemaréchal, "Some numerical experiments with variable-storage quasi-Newton
algorithms", Math. Programming 45, 1989.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import _tree
from ..linesearch.more_thuente import MoreThuente
from .._types import Grads, Params, PyTree
from .base import Direction, Made


class LBFGSState(NamedTuple):
    """The memory: a ring of ``m`` slots; empty slots have ``rho = 0`` and take no part."""

    count: jax.Array  # steps seen (int32)
    head: jax.Array  # the slot the next kept pair goes to (int32): the oldest pair's once the ring is full
    held: jax.Array  # pairs in memory, at most m (int32; 0 after a reset)
    params: Params  # x_{k-1}
    grad: Grads  # g_{k-1}
    s: PyTree  # per leaf (m, *shape)
    y: PyTree  # per leaf (m, *shape)
    rho: jax.Array  # (m,): 1 / s.y per slot, 0 for an empty slot
    gamma: jax.Array  # s.y / y.y of the newest kept pair
    diag: Params  # the diagonal D every kept pair updates (ones and unused with scaling="scalar")
    diag_scale: jax.Array  # H0 = diag_scale * D when > 0 (set at the newest kept pair), else gamma I
    rinv: Optional[jax.Array] = None  # (m, m): R^-1 by slot (compact_product), above TWO_LOOP_MAX parameters only


def lbfgsb_lr() -> MoreThuente:
    """The default step size of ``lbfgs``: L-BFGS-B's line search (``lnsrlb``: Moré-Thuente,
    ``c1=1e-3``, ``c2=0.9``, ``xtol=0.1``, at most 20 evaluations; unit first trial)."""
    return MoreThuente(c1=1e-3, c2=0.9, xtol=0.1, max_iter=20, start="unit")


def _row(mem: PyTree, i: jax.Array) -> PyTree:
    return _tree.tmap(lambda a: a[i], mem)


def first_scale(gnorm: Any) -> Any:
    """L-BFGS-B's first ``H0 = I / ||g||``, at least the smallest normal number of ``gnorm``'s
    type: ``1 / ||g||`` is subnormal for ``||g|| >= 2**126`` in float32, and XLA:CPU flushes a
    subnormal to 0 (a zero first direction), where NumPy keeps it (both tiers call this)."""
    xp = np if isinstance(gnorm, (np.ndarray, np.generic)) else jnp
    return xp.maximum(1.0 / gnorm, xp.finfo(gnorm.dtype).tiny).astype(gnorm.dtype)


def two_loop(g: Grads, state: LBFGSState, h0: Callable[[PyTree], PyTree]) -> Grads:
    """:math:`H g` by the two-loop recursion over the ring, oldest pair first (Algorithm 7.4), from
    :math:`H^0` given as its product ``h0(q)``."""
    m = state.rho.shape[0]
    order = _tree.count_rem(state.head + jnp.arange(m, dtype=state.head.dtype), m)

    def newest_first(q: PyTree, i: jax.Array) -> tuple[PyTree, jax.Array]:
        a = state.rho[i] * _tree.vdot(_row(state.s, i), q)
        return _tree.add_scaled(q, -a, _row(state.y, i)), a

    q, alphas = lax.scan(newest_first, g, order, reverse=True)
    r = h0(q)

    def oldest_first(r: PyTree, ia: tuple[jax.Array, jax.Array]) -> tuple[PyTree, None]:
        i, a = ia
        b = state.rho[i] * _tree.vdot(_row(state.y, i), r)
        return _tree.add_scaled(r, a - b, _row(state.s, i)), None

    r, _ = lax.scan(oldest_first, r, (order, alphas))
    return r


def _rows_dot(mem: PyTree, v: PyTree) -> jax.Array:
    """``(m,)``: each row of the ring ``mem`` (leaves ``(m, *shape)``) dotted with ``v`` (one
    matrix-vector product per leaf; half-precision leaves in float32, as :func:`jaxgd._tree.vdot`)."""
    parts = [jnp.tensordot(_tree.at_least_32(r), _tree.at_least_32(x), axes=jnp.ndim(x))
             for r, x in zip(_tree.leaves(mem), _tree.leaves(v))]
    return sum(parts[1:], parts[0])


def _combine(c: jax.Array, mem: PyTree, like: PyTree) -> PyTree:
    """``sum_i c_i mem_i`` over the ring's rows, in the dtypes of ``like``'s leaves."""
    return _tree.tmap(lambda r, x: jnp.tensordot(c, _tree.at_least_32(r), axes=1).astype(x.dtype), mem, like)


def compact_product(g: Grads, state: LBFGSState, h0: Callable[[PyTree], PyTree]) -> Grads:
    """:math:`H g` by the compact representation of the same matrix the two-loop recursion applies
    (Byrd, Nocedal & Schnabel 1994, eq. 3.1; L-BFGS-B's form):

    .. math:: H = H^0 + [S \\;\\; H^0 Y]
              \\begin{bmatrix} R^{-\\top}(D + Y^\\top H^0 Y) R^{-1} & -R^{-\\top} \\\\ -R^{-1} & 0 \\end{bmatrix}
              [S \\;\\; H^0 Y]^\\top,

    :math:`S, Y` the held pairs oldest first, :math:`R` the upper triangle of :math:`S^\\top Y`
    (:math:`R_{ij} = s_i^\\top y_j`, pair :math:`i` no newer than :math:`j`), :math:`D` its
    diagonal. With :math:`u = R^{-1} S^\\top g` and :math:`w = Y u`,

    .. math:: H g = S\\, R^{-\\top}\\big(D u + Y^\\top H^0 (w - g)\\big) - H^0 (w - g):

    four products of the ``(m, n)`` ring with a vector and two of ``state.rinv``
    (:math:`R^{-1}` kept by :func:`push`, indexed by slot, zero in the rows and columns of empty
    slots) with an ``m``-vector, where the two loops run ``2m`` dependent dot products and
    updates. Above :data:`TWO_LOOP_MAX` parameters XLA:CPU runs each of those as kernels of its
    own (about 130 a step at ``m = 10``, half of a 1,000-D L-BFGS step's), and this form takes
    1,000-D Rosenbrock's direction from 14 to 7 µs (benchmarks/RESULTS.md, session 46) and a 100-D
    step about 15 % less time (session 47). The same :math:`H` to rounding.

    Reference: R. H. Byrd, J. Nocedal & R. B. Schnabel, "Representations of quasi-Newton matrices
    and their use in limited memory methods", Math. Programming 63, 1994.
    """
    rinv = state.rinv
    held = state.rho != 0
    rho = state.rho.astype(rinv.dtype)
    diag_sy = jnp.where(held, 1.0 / jnp.where(held, rho, 1.0), 0.0)  # D: s_i'y_i of the held pairs
    wide = _tree.at_least_32(g)  # (a half-precision g: every vector in float32 until the result)
    u = rinv @ _rows_dot(state.s, wide).astype(rinv.dtype)
    hw_hg = _tree.sub(h0(_combine(u, state.y, wide)), h0(wide))  # H0 (w - g): Y'H0 w - Y'H0 g in one product
    top = (diag_sy * u + _rows_dot(state.y, hw_hg).astype(rinv.dtype)) @ rinv
    return _tree.tmap(lambda a, b, x: (a - b).astype(x.dtype), _combine(top, state.s, wide), hw_hg, g)


def push_inverse(rinv: jax.Array, ring: PyTree, rho: jax.Array, slot: jax.Array, y: PyTree, take: jax.Array,
                 rho_new: jax.Array) -> jax.Array:
    """:math:`R^{-1}` after the pair ``(s, y)`` enters ``slot`` of the ring of ``s`` (``take``; else
    ``rinv``; ``ring`` with ``s`` in place, ``rho`` before): the pair the slot held (the oldest,
    or none) leaves, by deleting its row and column
    (for an upper triangular :math:`R`, the inverse of :math:`R` without its first row and column
    is :math:`R^{-1}` without them), and the new pair adds a last column :math:`c = S^\\top y`
    over the pairs still held and a diagonal :math:`s^\\top y = 1/\\rho`:

    .. math:: \\begin{bmatrix} R & c \\\\ 0 & 1/\\rho \\end{bmatrix}^{-1}
              = \\begin{bmatrix} R^{-1} & -\\rho R^{-1} c \\\\ 0 & \\rho \\end{bmatrix}.
    """
    m = rinv.shape[0]
    others = jnp.arange(m) != slot
    kept = others[:, None] & others[None, :]
    base = jnp.where(kept, rinv, 0.0)
    c = jnp.where(others & (rho != 0), _rows_dot(ring, y).astype(rinv.dtype), 0.0)
    column = jnp.where(others, -rho_new * (base @ c), rho_new)
    new = jnp.where(jnp.arange(m)[None, :] == slot, column[:, None], base)
    return jnp.where(take, new, rinv)


def inverse_by_slot(s: np.ndarray, y: np.ndarray, rho: np.ndarray, head: int, held: int) -> np.ndarray:
    """``rinv`` (:func:`compact_product`) for a ring given as NumPy ``(m, n)`` rows (the host
    tier's, which runs the two-loop recursion and keeps none): :math:`R^{-1}` of the ``held`` pairs
    before ``head``, oldest first, its diagonal :math:`1/\\rho` as :func:`push_inverse` has it,
    placed by slot; zeros elsewhere; in float32 for a half-precision ring."""
    m = rho.shape[0]
    order = [(head - held + k) % m for k in range(held)]
    wide = np.promote_types(rho.dtype, np.float32)
    out = np.zeros((m, m), wide)
    if held:
        r = np.triu(s[order].astype(wide) @ y[order].astype(wide).T)
        r[np.diag_indices(held)] = 1.0 / rho[order].astype(wide)
        out[np.ix_(order, order)] = np.linalg.inv(r)
    return out


def push(state: LBFGSState, s: PyTree, y: PyTree, take: jax.Array, sy: jax.Array, yy: jax.Array) -> LBFGSState:
    """The memory with ``(s, y)`` in slot ``head`` when ``take`` (else unchanged).

    Each buffer changes in one row, written in place (a select over the whole
    ``(m, n)`` buffer would copy it every step).
    """
    m = state.rho.shape[0]
    slot = state.head
    put = lambda mem, v: _tree.tmap(  # noqa: E731
        lambda a, b: a.at[slot].set(jnp.where(take, b.astype(a.dtype), a[slot])), mem, v
    )
    safe_sy = jnp.where(take, sy, 1.0)  # a pair not taken never divides (NaN-free reverse mode, issue 12)
    step = take.astype(jnp.int32)
    ring = None
    if state.rinv is not None:  # (from the new ring: the old one read after its update in place was copied)
        ring = put(state.s, s)
        rinv = push_inverse(state.rinv, ring, state.rho, slot, y, take, (1.0 / safe_sy).astype(state.rinv.dtype))
        state = state._replace(rinv=rinv)
    return state._replace(
        head=_tree.count_rem(state.head + step, m),
        held=jnp.minimum(state.held + step, m),
        s=put(state.s, s) if ring is None else ring,
        y=put(state.y, y),
        rho=state.rho.at[slot].set(jnp.where(take, 1.0 / safe_sy, state.rho[slot]).astype(state.rho.dtype)),
        gamma=jnp.where(take, safe_sy / jnp.where(take, yy, 1.0), state.gamma).astype(state.gamma.dtype),
    )


def diagonal_update(diag: PyTree, scale: jax.Array, s: PyTree, y: PyTree, take: jax.Array, sy: jax.Array, yy: jax.Array,
                    gamma: jax.Array, sums: tuple, start: jax.Array, spread: float) -> tuple[PyTree, jax.Array]:
    """``(D, c)`` after the pair ``(s, y)`` when ``take`` (else ``(diag, scale)``): the diagonal
    :math:`D` every kept pair updates and the factor of :math:`H^0 = c D` (0: use
    :math:`\\gamma I`). ``gamma``: :math:`s^\\top y / y^\\top y` of this pair (:func:`push`'s, when
    ``take``). ``sums``: ``(y'Dy, s'D^{-1}s, s's)`` for the old :math:`D` (:func:`pair_sums`; not
    used at ``start``, where :math:`D` is whatever a :func:`reset` left).

    :math:`D` is Gilbert & Lemaréchal's diagonal update (M1QN3's diagonal scaling): with
    :math:`B = D^{-1}` the diagonal Hessian model, scale it by Oren-Spedicato's
    :math:`\\tau = y^\\top D y / s^\\top y` and take the diagonal of its BFGS update,

    .. math:: \\frac{1}{D^+_i} = \\frac{y^\\top D y}{s^\\top y\\, D_i} (1 - w_i) + \\frac{y_i^2}{s^\\top y},
              \\qquad w_i = \\frac{s_i^2 / D_i}{s^\\top D^{-1} s} \\in [0, 1],

    positive whenever :math:`s^\\top y > 0` (the diagonal of a positive definite matrix; here
    :math:`1 - w_i` is kept at least :math:`\\epsilon`, so rounding cannot make it zero). The
    first pair (``start``: none held, after the start or a reset) updates
    :math:`D = (s^\\top y / y^\\top y) I`; where :math:`D^+` is not finite (an overflow),
    :math:`D = (s^\\top y / y^\\top y) I`. :math:`c = s^\\top y / y^\\top D^+ y`
    (Oren-Spedicato's factor for the newest pair: :math:`y^\\top H^0 y = s^\\top y`, as
    :math:`\\gamma I` has; for :math:`D = \\delta I`, :math:`c D = \\gamma I`) where the entries of
    :math:`D^+` spread over more than a factor ``spread``, else 0. Every division is guarded,
    so a pair not taken leaves no NaN in a derivative (``adjoint="unroll"``).

    Reference: J. C. Gilbert & C. Lemaréchal, "Some numerical experiments with variable-storage
    quasi-Newton algorithms", Math. Programming 45, 1989 (section 4, the diagonal update).
    """
    dyy, dinsy, ss = sums
    safe_sy = jnp.where(take, sy, 1.0)
    dyy = jnp.where(start, gamma * yy, dyy)  # from D = gamma I at the first pair
    dinsy = jnp.where(start, ss / gamma, dinsy)
    safe_dinsy = jnp.where(take & (dinsy > 0), dinsy, 1.0)
    tau = dyy / safe_sy

    def entry(d: jax.Array, si: jax.Array, yi: jax.Array) -> jax.Array:
        like = d
        d, si, yi = map(_tree.at_least_32, (d, si, yi))  # (16 bits: float16's y_i^2 overflowed at |y_i| > 256)
        d0 = jnp.where(start, gamma.astype(d.dtype), d)
        wi = si * si / d0 / safe_dinsy  # (s_i^2 / D_i) / s'D^-1 s
        b = tau / d0 * jnp.maximum(1.0 - wi, jnp.finfo(d.dtype).eps) + yi * yi / safe_sy
        return (1.0 / jnp.where(b > 0, b, 1.0)).astype(like.dtype)  # (b = 0 only for a pair not taken, y = 0)

    # computed once: XLA would fuse the entries' four divisions into each of their three users
    new = lax.optimization_barrier(_tree.tmap(entry, diag, s, y))
    top, low = _tree.max_min(new)  # (a NaN propagates: not fine)
    fine = take & jnp.isfinite(top)
    (ydy,) = _tree.sums(_tree.tmap(lambda n, v: n * v * v, *map(_tree.at_least_32, (new, y))))  # (as pair_sums)
    new = _tree.tmap(lambda d, n: jnp.where(fine, n, jnp.where(take, gamma.astype(d.dtype), d)), diag, new)
    wide = fine & (top > spread * low) & (ydy > 0)
    c = jnp.where(wide, safe_sy / jnp.where(wide, ydy, 1.0), 0.0)
    return new, jnp.where(take, c, scale).astype(scale.dtype)


def pair_sums(s: PyTree, y: PyTree, g: PyTree, diag: PyTree) -> tuple:
    """``(s'y, y'y, -g's, (y'Dy, s'D^{-1}s, s's))`` as one reduction (:func:`jaxgd._tree.sums`);
    half-precision leaves multiplied and summed in float32, as :func:`jaxgd._tree.vdot`."""
    s, y, g, diag = (_tree.at_least_32(t) for t in (s, y, g, diag))
    mul = lambda a, b: _tree.tmap(jnp.multiply, a, b)  # noqa: E731
    sy, yy, descent, dyy, dinsy, ss = _tree.sums(
        mul(s, y), mul(y, y), _tree.tmap(lambda gi, si: -gi * si, g, s), _tree.tmap(lambda d, v: d * v * v, diag, y),
        _tree.tmap(lambda si, d: si * si / d, s, diag), mul(s, s))
    return sy, yy, descent, (dyy, dinsy, ss)


def reset(state: LBFGSState) -> tuple[LBFGSState, jax.Array]:
    """``(the memory with no pair, whether it held any)``: L-BFGS-B's restart after a failed search."""
    rinv = None if state.rinv is None else jnp.zeros_like(state.rinv)
    return state._replace(held=jnp.zeros_like(state.held), rho=jnp.zeros_like(state.rho), rinv=rinv), state.held > 0


SCALINGS = ("auto", "diagonal", "scalar")  # H0 of the two-loop recursion; the first is the default
SPREAD = 1e3  # "auto": the diagonal H0 once its entries spread over more than this factor (session 20)
# The most parameters (numbers over all leaves) whose H g the two-loop recursion computes; larger problems
# use compact_product. Measured in one process, fused loop (session 47, benchmarks/RESULTS.md): on the CUTEst
# suite's problems of 49-512 variables the compact form's step takes 0.74-0.81x the two-loop's time (geometric
# means), on extended Rosenbrock 0.85-0.94x at 24-100 variables and the same at 8-20; the two-loop's is 0.83x on
# the suite's problems of at most 8 variables. (Session 46 had 512: where lbfgs also leaves XLA:CPU's classic
# emitters, core.compile.)
TWO_LOOP_MAX = 16


def compact_form(params: Any) -> bool:
    """Whether :func:`lbfgs`'s direction for ``params`` (a pytree, or the host's flat vector) is
    computed in compact form (:func:`compact_product`): more than :data:`TWO_LOOP_MAX` numbers."""
    return _tree.size(params) > TWO_LOOP_MAX


def spread_of(scaling: str) -> Optional[float]:
    """The factor beyond which ``scaling`` uses the diagonal (None: never, ``"scalar"``)."""
    return {"auto": SPREAD, "diagonal": 0.0, "scalar": None}[scaling]


@functools.lru_cache(maxsize=None)
def lbfgs(memory_size: int, scaling: str = "auto") -> Direction:
    """The L-BFGS :class:`Direction` with ``memory_size`` pairs and :math:`H^0` by ``scaling``
    (one of :data:`SCALINGS`; both validated by the caller): ``"scalar"`` :math:`\\gamma I`;
    ``"diagonal"`` :math:`c D` (:func:`diagonal_update`); ``"auto"`` :math:`c D` where the
    entries of :math:`D` spread over more than a factor :data:`SPREAD`, else :math:`\\gamma I`."""
    m, spread = memory_size, spread_of(scaling)

    def init(params: Params) -> LBFGSState:
        dtype = jnp.result_type(*_tree.leaves(params))
        zero = jnp.asarray(0, jnp.int32)
        zeros = _tree.tmap(jnp.zeros_like, params)
        ring = _tree.tmap(lambda x: jnp.zeros((m,) + jnp.shape(x), jnp.result_type(x)), params)
        ones = _tree.tmap(jnp.ones_like, params)
        rinv = jnp.zeros((m, m), jnp.promote_types(dtype, jnp.float32)) if compact_form(params) else None  # (half: float32)
        return LBFGSState(zero, zero, zero, zeros, zeros, ring, ring, jnp.zeros((m,), dtype), jnp.ones((), dtype), ones,
                          jnp.zeros((), dtype), rinv)

    def update(grad: Grads, state: LBFGSState, params: Params, value: Any = None, value_fn: Any = None) -> tuple[Grads, LBFGSState]:
        g = _tree.cast_like(grad, params)
        s, y = _tree.sub(params, state.params), _tree.sub(g, state.grad)
        if spread is None:
            sy, yy, descent = _tree.vdot(s, y), _tree.sq_norm(y), -_tree.vdot(state.grad, s)
        else:  # the diagonal's sums with these, in one reduction
            sy, yy, descent, sums = pair_sums(s, y, state.grad, state.diag)
        eps = jnp.finfo(state.rho.dtype).eps
        take = (state.count > 0) & (sy > 0) & (sy > eps * descent) & jnp.isfinite(sy) & jnp.isfinite(yy)
        new = push(state, s, y, take, sy, yy)._replace(
            count=jnp.minimum(state.count, jnp.iinfo(jnp.int32).max - 1) + 1, params=params, grad=g
        )
        if spread is not None:
            d, c = diagonal_update(state.diag, state.diag_scale, s, y, take, sy, yy, new.gamma, sums, state.held == 0, spread)
            new = new._replace(diag=d, diag_scale=c)
        # with no pair held, L-BFGS-B's H0: I / ||g|| at the first point, I later (the norm computed
        # only then: a reduction over the parameters saved on every other step)
        gamma = lax.cond(
            new.held > 0, lambda: new.gamma,
            lambda: jnp.where(state.count == 0, first_scale(_tree.norm(g)), 1.0).astype(new.gamma.dtype),
        )
        product = two_loop if new.rinv is None else compact_product
        if spread is None:
            return _tree.neg(product(g, new, lambda q: _tree.scale(gamma, q))), new
        use = (new.held > 0) & (new.diag_scale > 0)
        h0 = _tree.tmap(lambda d: jnp.where(use, new.diag_scale.astype(d.dtype) * d, gamma.astype(d.dtype)), new.diag)
        return _tree.neg(product(g, new, lambda q: _tree.tmap(lambda d, x: (d * x).astype(x.dtype), h0, q))), new

    options = ([f"memory_size={memory_size}"] if memory_size != 10 else []) + ([f"scaling={scaling!r}"] if scaling != "auto" else [])
    name = f"lbfgs({', '.join(options)})" if options else "lbfgs"
    return _MADE.record(Direction(name, init, update, lbfgsb_lr, reset=reset, quasi_newton=True), (memory_size, scaling))


_MADE = Made()


def memory_size(direction: Any) -> Optional[int]:
    """The memory size of a direction :func:`lbfgs` made, else None (L-BFGS-B, :mod:`jaxgd.host`)."""
    made = _MADE.settings(direction)
    return None if made is None else made[0]


def scaling(direction: Any) -> Optional[str]:
    """The ``scaling`` of a direction :func:`lbfgs` made, else None (:mod:`jaxgd.host`)."""
    made = _MADE.settings(direction)
    return None if made is None else made[1]
