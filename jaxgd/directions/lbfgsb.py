"""L-BFGS-B: limited-memory BFGS with bounds, one compiled step of the solver's loop.

``jaxgd.minimize(fun, x0, method="lbfgs", bounds=(lower, upper))`` runs
this step instead of "an unconstrained L-BFGS step, then a projection"
(which another ``lr`` or ``clip`` would be: they are refused with it). Each iteration, on the flattened parameters
(``jax.flatten_util.ravel_pytree``):

1. the compact limited-memory matrix :math:`B = \\theta I - W M W^\\top`
   (:mod:`~jaxgd.directions.lbfgsb_memory`); with the ``lbfgs`` direction's
   ``scaling="auto"`` (the default) or ``"diagonal"``, from :math:`B_0 = (c D)^{-1}`
   instead of :math:`\\theta I` where the diagonal :math:`D` the pairs update is in use
   (as without bounds: its entries spread over more than 1,000x), which is L-BFGS-B's
   matrix in the variables :math:`x_i / \\sqrt{D_i}`: steps 1-2 run there, on the scaled box;
2. the generalised Cauchy point along the projected steepest-descent path
   and the subspace minimisation over the variables free there, with the
   3.0 projection (:mod:`~jaxgd.directions.lbfgsb_cauchy`), giving a
   feasible point :math:`z` and the direction :math:`d = z - x`;
3. a Moré-Thuente line search along :math:`d` with the step capped so that
   :math:`x + \\alpha d` stays in the box, starting from :math:`\\alpha = 1`
   (at the first iteration :math:`\\min(1/\\|d\\|, 1)` unless every variable
   has two bounds), as the code's ``lnsrlb`` does
   (:mod:`~jaxgd.directions.lbfgsb_search`);
4. the pair :math:`(s, y)` enters the memory when
   :math:`s^\\top y > \\epsilon\\,(-g^\\top s)`.

A line search that fails (no descent direction, 20 evaluations without
an acceptable step, or an accepted step that leaves :math:`x` where it was)
restarts the iteration from :math:`B = I`; failing again stops the run with
``Status.LINESEARCH_FAILED`` at the last accepted point, or ``Status.PRECISION`` where that point
is stationary to the precision ``f`` is evaluated at (:func:`jaxgd.core.stall.at_precision`; in
float32 and narrower also within its ``GRID_FACTOR`` where the failed search's first trial moved
:math:`x` without the fall its slope predicted: the grid rule, ``SearchResult.unseen``).
``gtol`` tests the infinity norm of the projected gradient
:math:`x - P(x - g)` (scipy's ``pgtol``; ``Result.grad_norm`` holds it, or its
2-norm with ``gtol_norm=2``), and ``ftol`` scipy's relative reduction
:math:`(f_k - f_{k+1}) / \\max(|f_k|, |f_{k+1}|, 1)`; with ``ftol`` off,
:data:`STALL_STEPS` steps in a row that do not lower :math:`f` (a step back down to within
:data:`FLOOR_ULPS` epsilons above its lowest value is none), or 100 steps without a
new low of :math:`f` or of the projected gradient's norm (ending at a step back at
:math:`f`'s low), end the run in ``Status.PRECISION`` (at :math:`f`'s rounding floor the
search's warnings accept steps that do not lower :math:`f`, or raise it by an ulp, and
the run would cycle until ``max_steps``).

References: R. H. Byrd, P. Lu, J. Nocedal & C. Zhu, "A limited memory
algorithm for bound constrained optimization", SIAM J. Sci. Comput. 16(5),
1995; C. Zhu, R. H. Byrd, P. Lu & J. Nocedal, "Algorithm 778: L-BFGS-B",
ACM TOMS 23(4), 1997; J. L. Morales & J. Nocedal, "Remark on Algorithm 778",
ACM TOMS 38(1), 2011 (L-BFGS-B 3.0, the code scipy wraps).
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from .. import _tree
from ..core import packing as _packing
from ..core import stall as _stall
from ..core import stepsize as _stepsize
from ..core.status import Status
from ..linesearch.more_thuente import step_cap
from ..prox import operators as _prox
from ..prox.operators import _bound_leaves
from . import lbfgsb_cauchy as _cauchy
from . import limited_memory as _limited_memory
from . import lbfgsb_memory as _memory
from . import lbfgsb_search as _search
from .lbfgsb_memory import Memory
from .._types import Params

STALL_STEPS = 10  # steps in a row without a fall of f (floor_counts) that end a run with ftol off (PRECISION)
FLOOR_ULPS = 4  # a step back down to within this many epsilons above the lowest f (relative) is no fall


@_tree.pytree_class(data=("c1", "c2", "xtol"), meta=("memory_size", "maxls", "scaling"))
class LbfgsbSearch:
    """The step-size rule of L-BFGS-B: its projected Moré-Thuente line search.

    Installed by :class:`jaxgd.Solver` for ``method="lbfgs"`` with ``bounds``
    and no ``lr``; the solver then runs :func:`step` instead of its generic
    step. ``c1``, ``c2`` and ``xtol`` are ``dcsrch``'s ``ftol``, ``gtol``
    and ``xtol`` (L-BFGS-B's values, traced leaves); ``memory_size`` (the
    number of pairs, static) and ``maxls`` (evaluations per search, static)
    are scipy's ``maxcor`` and ``maxls``; ``scaling`` (static) is the
    ``lbfgs`` direction's: ``"scalar"`` keeps L-BFGS-B's :math:`B_0 = \\theta I`,
    ``"diagonal"`` and ``"auto"`` use the diagonal :math:`B_0` as
    :func:`jaxgd.directions.lbfgs` describes (:func:`search_point`).
    """

    __slots__ = ("c1", "c2", "xtol", "memory_size", "maxls", "scaling")

    def __init__(self, memory_size: int = 10, c1: Any = 1e-3, c2: Any = 0.9, xtol: Any = 0.1, maxls: int = 20,
                 scaling: str = "auto") -> None:
        for k, v in dict(c1=c1, c2=c2, xtol=xtol, memory_size=int(memory_size), maxls=int(maxls), scaling=scaling).items():
            object.__setattr__(self, k, v)

    def init(self, params: Params, value: jax.Array, grad: Any) -> tuple[jax.Array, _stall.Window]:
        """``(steps in a row that did not lower f (int32), the solver's stall window over f and the
        projected gradient's norm)``; the memory rides in the direction state."""
        value = jnp.asarray(value)
        return jnp.zeros((), jnp.int32), _stall.window_init(value, jnp.full((), jnp.inf, value.dtype))

    def __repr__(self) -> str:
        return f"LbfgsbSearch(memory_size={self.memory_size}, maxls={self.maxls}, scaling={self.scaling!r})"


def rule_for(direction: Any, bounded: bool) -> Optional[LbfgsbSearch]:
    """The L-BFGS-B rule when the solver should run L-BFGS-B, else None.

    That is: the built-in ``lbfgs`` direction with some bound given (the
    options L-BFGS-B has no place for, ``l1``, ``clip``, ``accelerated`` or
    another ``lr``, are refused with it: :mod:`jaxgd.core.combinations`).
    """
    m = _limited_memory.memory_size(direction)
    if m is None or not bounded:
        return None
    return LbfgsbSearch(memory_size=m, scaling=_limited_memory.scaling(direction))


def flat_bounds(prox: Any, params: Params, dtype: Any, xp: Any = jnp) -> tuple[jax.Array, jax.Array]:
    """``(lower, upper)`` as flat ``(n,)`` arrays in the order of ``ravel_pytree`` (``xp``: ``jax.numpy``
    or ``numpy``)."""
    leaves = _tree.leaves(params)

    def side(bound: Any, name: str, fill: float) -> jax.Array:
        per_leaf = _bound_leaves(bound, params, name) or [None] * len(leaves)  # (None: no bound there)
        parts = [xp.broadcast_to(xp.asarray(fill if b is None else b, dtype), xp.shape(p)).ravel()
                 for b, p in zip(per_leaf, leaves)]
        return xp.concatenate(parts) if parts else xp.zeros((0,), dtype)

    return side(prox.lower, "lower", -xp.inf), side(prox.upper, "upper", xp.inf)


def projected_grad_norm(x: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, ord: float = jnp.inf,
                        xp: Any = jnp, norm: Any = _tree.norm) -> jax.Array:
    """:math:`\\|x - P(x - g)\\|_\\infty`, L-BFGS-B's ``sbgnrm`` (``projgr``), from ``g`` itself
    (:func:`jaxgd.prox.operators.box_gradient`); its 2-norm with ``ord=2`` (``norm``: the host tier
    passes its own, with ``xp`` NumPy)."""
    return _vector_norm(_prox.box_gradient(x, g, lower, upper, xp), ord, xp, norm)


def free_grad_norm(x: jax.Array, g: jax.Array, lower: jax.Array, upper: jax.Array, ord: float = jnp.inf,
                   xp: Any = jnp, norm: Any = _tree.norm) -> jax.Array:
    """The norm of ``g`` over the coordinates a step can move (:func:`jaxgd.prox.operators.free_gradient`):
    the precision rule's measure. ``projgr``'s, capped by the distance to a bound however far, let a
    float32 point 1e12 of gradient from its answer pass as stationary to precision."""
    return _vector_norm(_prox.free_gradient(x, g, lower, upper, xp), ord, xp, norm)


def _vector_norm(v: jax.Array, ord: float, xp: Any, norm: Any) -> jax.Array:
    if xp is not jnp:
        return norm(v) if ord == 2 else xp.max(xp.abs(v), initial=0)
    return norm(v) if ord == 2 else _tree.max_abs(v)


# lnsrlb's ``big``: L-BFGS-B's longest step where no bound limits it (scipy's L-BFGS-B, the Fortran code)
LNSRLB_BIG = 1e10


def max_step(x: jax.Array, d: jax.Array, lower: jax.Array, upper: jax.Array, xp: Any = jnp) -> jax.Array:
    """The largest :math:`\\alpha \\le 10^{10}` with :math:`x + \\alpha d` in the box (``lnsrlb``)."""
    ratio = xp.where(d < 0, (lower - x) / d, xp.where(d > 0, (upper - x) / d, xp.inf))
    # lnsrlb's ``big`` (1e10) is MINPACK-2's stpmax: step_cap, at most x's largest number (float16's 1e10
    # overflowed in the cast at trace time)
    most = step_cap(x.dtype, LNSRLB_BIG)
    return xp.minimum(xp.min(xp.maximum(ratio, 0.0), initial=xp.inf), most).astype(x.dtype)


def first_trial(x: jax.Array, d: jax.Array, lower: jax.Array, upper: jax.Array, first: Any, boxed: Any,
                constrained: Any, xp: Any = jnp, norm: Any = jnp.linalg.norm) -> tuple:
    """``(stp, stpmax)``: the search's first trial and longest step along ``d`` (``lnsrlb``). At the
    first iteration of a problem with a finite bound the search stays within the unit step, and where
    some variable is not boxed it starts from :math:`1/\\|d\\|` (a step of length 1); later from 1, up
    to the longest step in the box (:func:`max_step`). In ``x``'s dtype; both tiers (``xp``, ``norm``:
    NumPy's on the host, with Python or NumPy bools)."""
    one = xp.ones((), x.dtype)
    stpmax = _tree.pick(xp.logical_and(first, constrained), one, max_step(x, d, lower, upper, xp))
    stp = _tree.pick(xp.logical_and(first, xp.logical_not(boxed)), (one / norm(d)).astype(x.dtype), one)
    return xp.minimum(stp, stpmax)[()], xp.asarray(stpmax)[()]


def init(solver: Any, state: Any) -> Any:
    """Adjust the solver's first state: an empty memory and the projected-gradient test."""
    x, _ = ravel_pytree(state.params)
    g = ravel_pytree(state.grad)[0].astype(x.dtype)
    lower, upper = flat_bounds(solver.prox, state.params, x.dtype)
    gnorm = projected_grad_norm(x, g, lower, upper, solver.gtol_norm).astype(state.value.dtype)
    status = jnp.where(
        state.status == Status.NONFINITE, Status.NONFINITE, jnp.where(gnorm <= solver.gtol, Status.GTOL, Status.RUNNING)
    ).astype(jnp.int32)
    mem = _memory.empty(x.shape[0], solver.rule.memory_size, x.dtype)
    return state._replace(direction_state=mem, grad_norm=gnorm, status=status)


def search_point(x, g, lower, upper, mem: Memory, scaled: bool, xp: Any = jnp):  # noqa: ANN001, ANN201
    """Cauchy point and subspace minimisation: ``(z, memory used)``.

    ``scaled`` (static): with a diagonal :math:`B_0` in use, both run in the variables
    :math:`x / \\sigma` (:func:`jaxgd.directions.lbfgsb_memory.scaled`) and ``z`` is mapped
    back, a coordinate at a bound or unmoved there taken exactly from ``lower``, ``upper`` or ``x``.
    ``xp``: ``jax.numpy``, or ``numpy`` (the host tier's step, :mod:`jaxgd.host.lbfgsb`).
    """
    view, sigma = _memory.scaled(mem, xp) if scaled else (mem, None)
    w, big_m, ok = _memory.compact(view, xp)
    mem = _tree.pick(ok, mem, _memory.reset(mem, xp))
    view = _tree.pick(ok, view, mem)
    w, big_m = xp.where(ok, w, 0.0), xp.where(ok, big_m, 0.0)
    if scaled:
        sigma = xp.where(ok, sigma, 1.0)
        x_s, g_s, lower_s, upper_s = x / sigma, g * sigma, lower / sigma, upper / sigma
    else:
        x_s, g_s, lower_s, upper_s = x, g, lower, upper
    xcp, c, free = _cauchy.cauchy(x_s, g_s, lower_s, upper_s, w, big_m, view.theta, xp)
    solve = lambda u: _memory.solve_reduced(view, free, u, xp)  # noqa: E731
    z = _cauchy.subspace(x_s, g_s, lower_s, upper_s, xcp, c, free, w, big_m, view.theta, view.col > 0, solve, xp)
    if scaled:
        z = xp.where(z == x_s, x, xp.where(z <= lower_s, lower, xp.where(z >= upper_s, upper, z * sigma)))
    return z, mem


def step(solver: Any, state: Any, *args: Any) -> Any:
    """One L-BFGS-B iteration from the solver state ``state``; same structure out.

    Args:
      solver: the :class:`jaxgd.Solver` (its ``rule`` an :class:`LbfgsbSearch`).
      state: the current ``SolverState`` (``direction_state`` a :class:`Memory`).
      *args: extra arguments of the loss.

    Returns:
      The next ``SolverState``: moved to the accepted point, or unchanged
      with ``Status.LINESEARCH_FAILED`` / ``Status.NONFINITE``.
    """
    rule = solver.rule
    x, unravel = ravel_pytree(state.params)
    dtype = x.dtype
    g = ravel_pytree(state.grad)[0].astype(dtype)
    lower, upper = flat_bounds(solver.prox, state.params, dtype)
    f0 = state.value
    first = state.count == 0
    boxed = jnp.all(jnp.isfinite(lower) & jnp.isfinite(upper))
    constrained = jnp.any(jnp.isfinite(lower) | jnp.isfinite(upper))
    start_trial = (x, f0, g, state.aux)

    spread = _limited_memory.spread_of(rule.scaling)
    narrow = _stepsize.narrow(f0.dtype)  # (float32 and narrower: the search records the grid rule's evidence)
    no_evidence = jnp.asarray(False) if narrow else None

    def attempt(mem: Memory):  # noqa: ANN202
        z, mem = search_point(x, g, lower, upper, mem, spread is not None)
        d = z - x
        gd = jnp.dot(g, d).astype(f0.dtype)
        stp, stpmax = first_trial(x, d, lower, upper, first, boxed, constrained)
        stp, stpmax = stp.astype(f0.dtype), stpmax.astype(f0.dtype)

        def evaluate(alpha: jax.Array):  # noqa: ANN202
            xt = jnp.where(alpha == 1, z, x + alpha.astype(dtype) * d)
            xt = _tree.rounded(jnp.clip(xt, lower, upper))
            v, gr, aux = solver.value_and_grad(unravel(xt), *args)
            gf = ravel_pytree(gr)[0].astype(dtype)
            v = jnp.asarray(v).astype(f0.dtype)
            return (xt, v, gf, aux), v, jnp.dot(gf, d).astype(f0.dtype)

        def run() -> _search.SearchResult:
            moves_at = (0.5 * _stepsize.shortest_move(x, d, dtype)).astype(f0.dtype) if narrow else None
            return _search.search(evaluate, start_trial, f0, gd, stp, stpmax, rule.c1, rule.c2, rule.xtol, rule.maxls,
                                  moves_at=moves_at)

        def refuse() -> _search.SearchResult:
            zero = jnp.zeros((), jnp.int32)
            return _search.SearchResult(start_trial, jnp.zeros((), f0.dtype), zero, jnp.asarray(True), no_evidence)

        return lax.cond((gd < 0) & jnp.isfinite(gd), run, refuse), mem

    def body(carry):  # noqa: ANN001, ANN202
        mem, _, nfev, _ = carry
        res, mem = attempt(mem)
        # A search that "succeeds" without moving x (a step below x's rounding, or clipped back
        # onto it) is a failure too: taken, it left every later iteration at the same point, a
        # search each, until max_steps (sif2jax's PALMER2: 16,761 evaluations where scipy needs 33).
        res = res._replace(failed=res.failed | _tree.all_equal(res.trial[0], x))
        again = res.failed & (mem.col > 0)  # restart from B = I, as mainlb does
        return _tree.where(again, _memory.reset(mem), mem), res, nfev + res.nfev, again

    empty_res = _search.SearchResult(start_trial, jnp.zeros((), f0.dtype), jnp.zeros((), jnp.int32), jnp.asarray(True),
                                     no_evidence)
    carry = (state.direction_state, empty_res, jnp.zeros((), jnp.int32), jnp.asarray(True))
    mem, res, nfev, _ = _packing.packed_while(lambda c: c[3], body, carry)
    return _finish(solver, state, x, g, lower, upper, unravel, mem, res, nfev, spread)


def floor_counts(rule_state: Any, accept: Any, new_value: Any, value: Any, grad_norm: Any, ftol_off: Any,
                 xp: Any = jnp) -> tuple:
    """``(flat, window, cycled)``: the rule's counts after a step from ``value`` to ``new_value``
    (projected gradient norm ``grad_norm`` there) and, with ``ftol`` off, whether the window ended
    the run (a full stall window ending at a step back at f's low; see :func:`_finish`; ``False`` with
    ``ftol`` on). The run is at f's floor where ``flat >= STALL_STEPS`` or ``cycled``. Both tiers
    (``xp``: the host's NumPy scalar operations)."""
    flat0, window0 = rule_state
    # (a step down from above the run's lowest f to within FLOOR_ULPS epsilons of it, or to it, is no fall:
    # cycles of 2 and 3 steps an ulp or two up and back down lowered f every other step and never counted,
    # while the gradient norm's new lows kept the window open; float32 AR(1) fits went on 100-230 steps at
    # their answers, a vmapped batch of 200 at the pace of its slowest lane. A new low counts however small
    # (a slow descent under a large constant part of f, 1e12 + 1e-3 g(x) in float64, went on to GTOL), and
    # so does a fall to a value further up: a slow float32 run that climbs and falls back for up to 26 steps
    # between new lows, PALMER7E, goes on)
    best = window0.best_value
    back = (new_value >= best) & (new_value - best <= FLOOR_ULPS * jnp.finfo(jnp.result_type(best)).eps * xp.abs(best))
    fell = accept & (new_value < value) & ~back
    flat = _stall.int32(xp.where(fell, 0, xp.minimum(flat0, STALL_STEPS) + 1), xp)
    window = _stall.window_update(window0, new_value, grad_norm, xp)
    if ftol_off is False:  # (ftol_off: True, False, or a flag, for a traced ftol that may be 0)
        return flat, window, False
    cycled = (window.since >= _stall.WINDOW) & ((new_value <= window0.best_value) | (window.since > 2 * _stall.WINDOW))
    return flat, window, cycled if ftol_off is True else cycled & ftol_off


def _finish(solver, state, x, g, lower, upper, unravel, mem, res, nfev, spread):  # noqa: ANN001, ANN202
    """Update the memory (and its diagonal, with ``spread`` not None), run the termination
    tests and build the next state."""
    xn, fn, gn, aux = res.trial
    finite = jnp.isfinite(fn) & jnp.all(jnp.isfinite(gn))
    accept = ~res.failed & finite
    s, y = xn - x, gn - g
    if spread is None:
        sy, gs, yy = jnp.dot(s, y), -jnp.dot(g, s), jnp.dot(y, y)
    else:  # the diagonal's sums with these, in one reduction
        sy, yy, gs, sums = _limited_memory.pair_sums(s, y, g, mem.diag)
    take = accept & (sy > jnp.finfo(x.dtype).eps * gs) & jnp.isfinite(yy)
    if spread is not None:
        take = take & (sy > 0)
        gamma = jnp.where(take, sy, 1.0) / jnp.where(take, yy, 1.0)
        diag, scale = _limited_memory.diagonal_update(mem.diag, mem.diag_scale, s, y, take, sy, yy, gamma, sums,
                                                      mem.col == 0, spread)
    mem = _memory.push(mem, s, y, take)
    if spread is not None:
        mem = mem._replace(diag=diag, diag_scale=scale)

    gnorm = projected_grad_norm(xn, gn, lower, upper, solver.gtol_norm).astype(state.value.dtype)
    status, flat, window = termination((solver.gtol, solver.ftol, solver.xtol), state.rule_state, accept, res.failed,
                                       finite, state.value, fn, gnorm, s)
    new_params = _tree.cast_like(unravel(xn), state.params)
    # A search that failed with no memory left to forget, at a point stationary to the precision f
    # is evaluated at: PRECISION, a success, by Solver.step's hook (its test runs only on failure).
    # In float32 and narrower also the grid rule: the failed search ran along the projected steepest descent
    # (the memory was forgotten first) and its first trial moved x without the fall its slope predicted
    # (res.unseen): the norm test within GRID_FACTOR.
    ftype = state.value.dtype
    free_norm = lambda a, b: lambda: free_grad_norm(a, b, lower, upper, solver.gtol_norm).astype(ftype)  # noqa: E731
    status = _stall.adjust_status(
        solver.rule, flat, status, res.failed, (state.value, free_norm(x, g), state.params),
        (fn, free_norm(xn, gn), new_params),
        None, solver.gtol, grid=res.unseen,
    )

    moved = state._replace(
        params=new_params,
        value=fn,
        grad=_tree.cast_like(unravel(gn), state.grad),
        aux=aux,
        grad_norm=gnorm,
        count=state.count + 1,
        alpha=res.stp.astype(state.alpha.dtype),
    )
    kept = _tree.where(accept, moved, state)
    return kept._replace(
        rule_state=(flat, window),
        direction_state=mem,
        status=status.astype(jnp.int32),
        nfev=state.nfev + nfev,
        ngev=state.ngev + nfev,
    )


def termination(tols: tuple, rule_state: Any, accept: Any, failed: Any, finite: Any, f_old: Any, f_new: Any,
                grad_norm: Any, s: Any, xp: Any = jnp, norm: Any = jnp.linalg.norm) -> tuple:
    """``(status, flat, window)`` after a step from ``f_old`` to ``f_new`` (projected gradient norm
    ``grad_norm`` there, ``s`` the step), before the precision rule for a failed search: ``gtol``,
    ``ftol`` (scipy's relative reduction) and ``xtol`` from ``tols``, the floor counts
    (:func:`floor_counts`) with ``ftol`` off, then ``LINESEARCH_FAILED`` and ``NONFINITE``. Both tiers
    (``xp``: the host's NumPy scalar operations, ``norm`` its vector norm; the flags NumPy bools).
    """
    gtol, ftol, xtol = tols
    status = xp.where(grad_norm <= gtol, Status.GTOL, Status.RUNNING)
    off = True if ftol is None else ftol <= 0  # (a traced 0, a vmapped lane's, is off as None is)
    if ftol is not None:
        scale = xp.maximum(xp.maximum(xp.abs(f_old), xp.abs(f_new)), 1.0)
        small = (f_old - f_new <= ftol * scale) & (ftol > 0)
        status = xp.where((status == Status.RUNNING) & small, Status.FTOL, status)
    # With ftol off, two counts end a run in PRECISION where f's rounding floor would have it cycle
    # until max_steps (the search's warnings and its approximate Wolfe test accept steps there that
    # do not lower f, or raise it by an ulp): STALL_STEPS steps in a row that did not lower f
    # (between points of equal f, or an ulp up and back down to f's low), and the solver's stall window:
    # WINDOW steps without a new low of f or of the projected gradient's norm, ending at a step back at f's low (or WINDOW steps
    # later): a 2-cycle one ulp up and back down (a float32 bounded fit, diagonal B0: 23,646
    # evaluations for 3,000 steps at its answer). scipy stops at the first step that does not lower
    # f (its ftol=0 test is "reduction <= 0"), which stopped a float32 least-squares run short of
    # its answer here.
    # (A step not accepted ends the run: the window's count after it is never read.)
    flat, window, cycled = floor_counts(rule_state, accept, f_new, f_old, grad_norm, off, xp)
    if off is not False:  # (ftol on: no such stop; a traced ftol: in its lanes at 0 only)
        floor = (flat >= STALL_STEPS) | cycled
        status = xp.where((status == Status.RUNNING) & (floor if off is True else floor & off), Status.PRECISION, status)
    if xtol is not None:
        status = xp.where((status == Status.RUNNING) & (norm(s) <= xtol) & (xtol > 0), Status.XTOL, status)
    status = xp.where(failed, Status.LINESEARCH_FAILED, xp.where(~finite, Status.NONFINITE, status))
    return status, flat, window
