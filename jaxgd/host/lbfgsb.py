"""L-BFGS-B on the host: :func:`jaxgd.directions.lbfgsb.step` over flat NumPy vectors.

``method="lbfgs"`` with ``bounds`` runs L-BFGS-B's step (:mod:`jaxgd.directions.lbfgsb`).
Its arithmetic is written once for both tiers: the generalised Cauchy point and the
subspace step (:mod:`jaxgd.directions.lbfgsb_cauchy`), the compact memory
(:mod:`jaxgd.directions.lbfgsb_memory`) and the projected search
(:mod:`jaxgd.directions.lbfgsb_search`) take ``xp``, here NumPy (and the search's
NumPy scalar operations, :data:`jaxgd.host.search.OPS`). This module repeats what
the compiled step does around them, statement for statement: the restart from
:math:`B = I` after a failed search, the pair's curvature test and the diagonal's
update, and the precision rule for a failed search (:func:`jaxgd.core.stall.adjust_status`'s
norm test and grid rule); the termination tests and the floor counts are the compiled
step's own (:func:`jaxgd.directions.lbfgsb.termination`). :func:`jaxgd.host.loop.run`
calls :func:`start` and :func:`step` in its loop.

Same iterates as the compiled loop to the rounding of its reductions:
``tests/test_host_tier.py``.

References: R. H. Byrd, P. Lu, J. Nocedal & C. Zhu, SIAM J. Sci. Comput. 16(5), 1995;
C. Zhu, R. H. Byrd, P. Lu & J. Nocedal, ACM TOMS 23(4), 1997; J. L. Morales & J. Nocedal,
ACM TOMS 38(1), 2011.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from ..core import stall as _stall
from ..core import stepsize as _stepsize
from ..core.status import Status
from ..directions import lbfgsb as _lbfgsb
from ..directions import lbfgsb_memory as _memory
from ..directions import lbfgsb_search as _search
from ..directions import limited_memory as _limited_memory
from . import directions as _directions
from .search import OPS

RUNNING, GTOL = int(Status.RUNNING), int(Status.GTOL)
FAILED, NONFINITE, PRECISION = int(Status.LINESEARCH_FAILED), int(Status.NONFINITE), int(Status.PRECISION)


class Box(NamedTuple):
    """A run's constants: the flat bounds, what the first step's start depends on, and the solver's
    and search's numbers in the parameters' dtype."""

    lower: np.ndarray
    upper: np.ndarray
    boxed: bool  # every variable has two finite bounds
    constrained: bool  # some variable has a finite bound
    tols: tuple  # (gtol, ftol, xtol), None where off
    search: tuple  # dcsrch's (ftol, gtol, xtol): the rule's (c1, c2, xtol)
    spread: Any  # the lbfgs scaling's diagonal spread (None: theta I)
    narrow: bool  # float32: the search records the grid rule's evidence


class Counts(NamedTuple):
    """The rule's state (``LbfgsbSearch.init``): steps in a row that did not lower f, and the
    solver's stall window over f and the projected gradient's norm."""

    flat: int
    window: _stall.Window


def box(solver: Any, x0: Any, dtype: np.dtype) -> Box:
    """The run's constants for ``solver`` and parameters like ``x0``."""
    lower, upper = _lbfgsb.flat_bounds(solver.prox, x0, dtype, np)
    finite_l, finite_u = np.isfinite(lower), np.isfinite(upper)
    scalar = lambda v: None if v is None else np.asarray(v, dtype)[()]  # noqa: E731
    rule = solver.rule
    return Box(lower, upper, bool(np.all(finite_l & finite_u)), bool(np.any(finite_l | finite_u)),
               tuple(scalar(v) for v in (solver.gtol, solver.ftol, solver.xtol)),
               tuple(scalar(v) for v in (rule.c1, rule.c2, rule.xtol)), _limited_memory.spread_of(rule.scaling),
               _stepsize.narrow(dtype))


def start(solver: Any, b: Box, x: np.ndarray, value: Any, g: np.ndarray, finite: bool) -> tuple:
    """``lbfgsb.init`` after ``Solver.init``: ``(projected gradient norm, status, memory, counts)``."""
    gnorm = _lbfgsb.projected_grad_norm(x, g, b.lower, b.upper, solver.gtol_norm, np, _directions.norm).astype(value.dtype)
    status = NONFINITE if not finite else GTOL if gnorm <= b.tols[0] else RUNNING
    mem = _memory.empty(x.size, solver.rule.memory_size, x.dtype, np)
    window = _stall.Window(value, np.asarray(np.inf, value.dtype)[()], np.int32(0))
    return gnorm, status, mem, Counts(np.int32(0), window)


class Outcome(NamedTuple):
    """One step's result (the fields of the next ``SolverState`` it changes)."""

    accept: bool
    x: np.ndarray
    value: Any
    grad: np.ndarray
    aux: Any
    grad_norm: Any
    alpha: Any
    status: int
    mem: _memory.Memory
    counts: Counts
    nfev: int


def step(solver: Any, b: Box, vg: Callable, count: int, x: np.ndarray, value: Any, g: np.ndarray, aux: Any, gnorm: Any,
         mem: _memory.Memory, counts: Counts) -> Outcome:
    """One L-BFGS-B iteration from a running state (``lbfgsb.step`` and ``_finish``)."""
    rule, dtype, f0 = solver.rule, x.dtype, value
    lower, upper, spread, narrow = b.lower, b.upper, b.spread, b.narrow
    first = count == 0
    start_trial = (x, f0, g, aux)

    def attempt(mem: _memory.Memory) -> tuple:
        z, mem = _lbfgsb.search_point(x, g, lower, upper, mem, spread is not None, np)
        d = z.astype(dtype, copy=False) - x  # (a float32 run stays float32: NumPy has no weak types)
        gd = _directions.dot(g, d).astype(dtype)
        stp, stpmax = _lbfgsb.first_trial(x, d, lower, upper, first, b.boxed, b.constrained, np, np.linalg.norm)

        def evaluate(alpha: Any) -> tuple:
            xt = np.clip(z if alpha == 1 else x + alpha * d, lower, upper)
            v, gr, aux = vg(xt)
            return (xt, v, gr, aux), v, _directions.dot(gr, d).astype(dtype)

        if gd < 0 and np.isfinite(gd):
            moves_at = dtype.type(0.5 * _stepsize.shortest_move(x, d, dtype)) if narrow else None
            return _search.search(evaluate, start_trial, f0, gd, stp, stpmax, *b.search, rule.maxls, OPS, moves_at), mem
        return _search.SearchResult(start_trial, dtype.type(0), 0, True, np.False_ if narrow else None), mem

    nfev = 0
    while True:  # a failed search restarts from B = I, as mainlb does; failing again is the step's failure
        res, mem = attempt(mem)
        # (a search that "succeeds" without moving x is a failure too: lbfgsb.step)
        failed = bool(res.failed) or np.array_equal(res.trial[0], x)
        nfev += int(res.nfev)
        if not (failed and mem.col > 0):
            break
        mem = _memory.reset(mem, np)

    xn, fn, gn, aux_n = res.trial
    finite = bool(np.isfinite(fn) and np.isfinite(gn).all())
    accept = not failed and finite
    if accept:  # (a step not taken changes no pair)
        mem = _remember(mem, x, xn, g, gn, spread)

    new_gnorm = _lbfgsb.projected_grad_norm(xn, gn, lower, upper, solver.gtol_norm, np, _directions.norm).astype(value.dtype)
    status, flat, window = _lbfgsb.termination(b.tols, counts, np.bool_(accept), np.bool_(failed), np.bool_(finite),
                                               value, fn, new_gnorm, xn - x, OPS, _directions.norm)
    status = int(status)
    # stall.adjust_status for L-BFGS-B: a failed search with no memory left to forget, at a point
    # stationary to the precision f is evaluated at (in float32 also within GRID_FACTOR where its first
    # trial moved x without the fall its slope predicted: res.unseen), is PRECISION
    if failed and status == FAILED:  # (the norm over the entries no bound holds: lbfgsb.free_grad_norm)
        free = _lbfgsb.free_grad_norm(x, g, lower, upper, solver.gtol_norm, np, _directions.norm).astype(value.dtype)
        if _directions.at_precision(value, free, x, narrow and bool(res.unseen)):
            status = PRECISION
    return Outcome(accept, xn, fn, gn, aux_n, new_gnorm, res.stp, status, mem, Counts(flat, window), nfev)


def _remember(mem: _memory.Memory, x: np.ndarray, xn: np.ndarray, g: np.ndarray, gn: np.ndarray,
              spread: Any) -> _memory.Memory:
    """The pair ``(xn - x, gn - g)`` into the memory when it passes L-BFGS-B's curvature test
    (and, with a diagonal ``spread``, :math:`s^\\top y > 0`: then the diagonal is updated too)."""
    s, y = xn - x, gn - g
    sy, gs, yy = _directions.dot(s, y), -_directions.dot(g, s), _directions.dot(y, y)
    take = bool(sy > np.finfo(x.dtype).eps * gs and np.isfinite(yy))
    if spread is None:
        return _memory.push(mem, s, y, take, np)
    take = take and sy > 0
    if not take:
        return mem
    diag, scale = _directions.diagonal_update(mem.diag, s, y, sy, yy, mem.col == 0, spread)
    return _memory.push(mem, s, y, True, np)._replace(diag=diag, diag_scale=scale)
