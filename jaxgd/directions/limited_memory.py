"""L-BFGS: the two-loop recursion over a ring of curvature pairs, as L-BFGS-B keeps them.

:math:`d_k = -H_k g_k`, with :math:`H_k` the BFGS update of
:math:`H^0_k = \\gamma_k I` by the last ``m`` kept pairs
:math:`s_i = x_{i+1} - x_i`, :math:`y_i = g_{i+1} - g_i` (Nocedal & Wright,
Algorithm 7.4, two ``lax.scan`` loops over the ring in the order of
``optax.scale_by_lbfgs``, whose arithmetic this repeats). Where optax keeps
every pair, this memory keeps, as the L-BFGS-B code does (``matupd``):

- a pair enters only when :math:`s^\\top y > \\epsilon\\,\\max(-g^\\top s, 0)`
  and :math:`s^\\top y > 0` (:math:`g` the gradient it started from,
  :math:`\\epsilon` the dtype's machine epsilon): a pair of non-positive
  curvature would make :math:`H` indefinite (and :math:`d` no descent
  direction), and a step not taken (:math:`s = 0`) carries none;
- :math:`\\gamma_k = s^\\top y / y^\\top y` of the newest kept pair
  (Nocedal & Wright eq. 7.20); with no pair, L-BFGS-B's steepest-descent
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
(``lnsrlb``'s constants), from a unit first trial. With ``gtol_norm=inf``
(L-BFGS-B's test) it takes scipy's L-BFGS-B steps on Rosenbrock and needs the
same number of evaluations on 62 of the 130 unconstrained CUTEst problems of
sif2jax, 0.96 of scipy's in geometric mean (benchmarks/RESULTS.md, session 9).

References: D. C. Liu & J. Nocedal, "On the limited memory BFGS method for
large scale optimization", Math. Programming 45, 1989; R. H. Byrd, P. Lu,
J. Nocedal & C. Zhu, "A limited memory algorithm for bound constrained
optimization", SIAM J. Sci. Comput. 16(5), 1995; C. Zhu, R. H. Byrd, P. Lu &
J. Nocedal, "Algorithm 778: L-BFGS-B", ACM TOMS 23(4), 1997; J. Nocedal &
S. Wright, "Numerical Optimization", 2nd ed., 2006, section 7.2.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
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


def lbfgsb_lr() -> MoreThuente:
    """The default step size of ``lbfgs``: L-BFGS-B's line search (``lnsrlb``: Moré-Thuente,
    ``c1=1e-3``, ``c2=0.9``, ``xtol=0.1``, at most 20 evaluations; unit first trial)."""
    return MoreThuente(c1=1e-3, c2=0.9, xtol=0.1, max_iter=20, start="unit")


def _row(mem: PyTree, i: jax.Array) -> PyTree:
    return _tree.tmap(lambda a: a[i], mem)


def two_loop(g: Grads, state: LBFGSState, gamma: jax.Array) -> Grads:
    """:math:`H g` by the two-loop recursion over the ring, oldest pair first (Algorithm 7.4)."""
    m = state.rho.shape[0]
    order = (state.head + jnp.arange(m)) % m

    def newest_first(q: PyTree, i: jax.Array) -> tuple[PyTree, jax.Array]:
        a = state.rho[i] * _tree.vdot(_row(state.s, i), q)
        return _tree.add_scaled(q, -a, _row(state.y, i)), a

    q, alphas = lax.scan(newest_first, g, order, reverse=True)
    r = _tree.scale(gamma, q)

    def oldest_first(r: PyTree, ia: tuple[jax.Array, jax.Array]) -> tuple[PyTree, None]:
        i, a = ia
        b = state.rho[i] * _tree.vdot(_row(state.y, i), r)
        return _tree.add_scaled(r, a - b, _row(state.s, i)), None

    r, _ = lax.scan(oldest_first, r, (order, alphas))
    return r


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
    return state._replace(
        head=(state.head + step) % m,
        held=jnp.minimum(state.held + step, m),
        s=put(state.s, s),
        y=put(state.y, y),
        rho=state.rho.at[slot].set(jnp.where(take, 1.0 / safe_sy, state.rho[slot]).astype(state.rho.dtype)),
        gamma=jnp.where(take, safe_sy / jnp.where(take, yy, 1.0), state.gamma).astype(state.gamma.dtype),
    )


def reset(state: LBFGSState) -> tuple[LBFGSState, jax.Array]:
    """``(the memory with no pair, whether it held any)``: L-BFGS-B's restart after a failed search."""
    return state._replace(held=jnp.zeros_like(state.held), rho=jnp.zeros_like(state.rho)), state.held > 0


@functools.lru_cache(maxsize=None)
def lbfgs(memory_size: int) -> Direction:
    """The L-BFGS :class:`Direction` with ``memory_size`` pairs (validated by the caller)."""
    m = memory_size

    def init(params: Params) -> LBFGSState:
        dtype = jnp.result_type(*_tree.leaves(params))
        zero = jnp.asarray(0, jnp.int32)
        zeros = _tree.tmap(jnp.zeros_like, params)
        ring = _tree.tmap(lambda x: jnp.zeros((m,) + jnp.shape(x), jnp.result_type(x)), params)
        return LBFGSState(zero, zero, zero, zeros, zeros, ring, ring, jnp.zeros((m,), dtype), jnp.ones((), dtype))

    def update(grad: Grads, state: LBFGSState, params: Params, value: Any = None, value_fn: Any = None) -> tuple[Grads, LBFGSState]:
        g = _tree.cast_like(grad, params)
        s, y = _tree.sub(params, state.params), _tree.sub(g, state.grad)
        sy, yy, descent = _tree.vdot(s, y), _tree.sq_norm(y), -_tree.vdot(state.grad, s)
        eps = jnp.finfo(state.rho.dtype).eps
        take = (state.count > 0) & (sy > 0) & (sy > eps * descent) & jnp.isfinite(sy) & jnp.isfinite(yy)
        new = push(state, s, y, take, sy, yy)._replace(
            count=jnp.minimum(state.count, jnp.iinfo(jnp.int32).max - 1) + 1, params=params, grad=g
        )
        # with no pair held, L-BFGS-B's H0: I / ||g|| at the first point, I later (the norm computed
        # only then: a reduction over the parameters saved on every other step)
        gamma = lax.cond(
            new.held > 0, lambda: new.gamma,
            lambda: jnp.where(state.count == 0, 1.0 / lax.stop_gradient(_tree.norm(g)), 1.0).astype(new.gamma.dtype),
        )
        return _tree.neg(two_loop(g, new, gamma)), new

    name = "lbfgs" if memory_size == 10 else f"lbfgs(memory_size={memory_size})"
    return _MADE.record(Direction(name, init, update, lbfgsb_lr, reset=reset, quasi_newton=True), memory_size)


_MADE = Made()


def memory_size(direction: Any) -> Optional[int]:
    """The memory size of a direction :func:`lbfgs` made, else None (L-BFGS-B, :mod:`jaxgd.host`)."""
    return _MADE.settings(direction)
