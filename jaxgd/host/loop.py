"""The host run: :meth:`jaxgd.Solver.run` for ``lbfgs``/``bfgs``/``cg`` with a Moré-Thuente search, in Python.

The loop, the step's tests and statuses are those of :mod:`jaxgd.core.solver`
and :mod:`jaxgd.core.driver` (one step per iteration, ``Solver._advance``'s
order: direction, search, stationarity measure, ``gtol``/``ftol``/``xtol``,
failure and non-finite statuses, the stall and precision rules of
:mod:`jaxgd.core.stall`, L-BFGS-B's restart after a failed search, a step not
taken keeps the last good point; the progress bar's reports), over flat NumPy vectors; the loss and its
gradient come from one jitted ``value_and_grad`` of the flattened parameters
(:func:`flat_value_and_grad`), the only program this run compiles. The
:class:`jaxgd.Result` it returns has the compiled run's fields, types and
state (device arrays for the parameters and the direction's state, NumPy
scalars for the state's scalars), so :meth:`jaxgd.Solver.resume` continues it.

Same iterates as the compiled loop to the rounding of its reductions (a dot
product summed in another order), which can change a step count where a test
is met by a hair: ``tests/test_host_tier.py``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ..core import cache as _cache
from ..core import compile as _compile
from ..core import progress as _progress
from ..core import probe as _probe
from ..core import stall as _stall
from ..core import stepsize as _stepsize
from ..linesearch import wolfe as _wolfe
from ..core.solver import SolverState
from ..core.status import History, Result, Status, tolerance_status
from . import directions as _directions
from . import lbfgsb as _lbfgsb
from . import search as _search
from .directions import at_precision, dot
from ..directions.lbfgsb import LbfgsbSearch

# The host run's history rows allocated at first (doubled as a run needs more, up to max_steps' rows).
HISTORY_ROWS = 256

RUNNING, GTOL, FTOL, XTOL = int(Status.RUNNING), int(Status.GTOL), int(Status.FTOL), int(Status.XTOL)
FAILED, NONFINITE, PRECISION, STALLED = (
    int(Status.LINESEARCH_FAILED), int(Status.NONFINITE), int(Status.PRECISION), int(Status.STALLED)
)


class Layout:
    """How a pytree of same-dtype arrays maps to one flat vector and back."""

    __slots__ = ("treedef", "shapes", "sizes", "dtype", "key")

    def __init__(self, leaves: list, treedef: Any) -> None:
        self.treedef, self.shapes = treedef, tuple(np.shape(x) for x in leaves)
        self.sizes = tuple(int(np.prod(s)) for s in self.shapes)
        self.dtype = np.dtype(leaves[0].dtype)
        self.key = (treedef, self.shapes, self.dtype.name)

    def __eq__(self, other: Any) -> bool:  # a static argument of the jitted value_and_grad
        return isinstance(other, Layout) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def split(self, flat: Any, lead: tuple = ()) -> list:
        """The leaves of ``flat`` (``lead + (n,)``), each ``lead + shape``; NumPy or traced."""
        out, at = [], 0
        for shape, size in zip(self.shapes, self.sizes):
            out.append(flat[..., at:at + size].reshape(lead + shape))
            at += size
        return out

    def tree(self, flat: np.ndarray, lead: tuple = ()) -> Any:
        """The pytree of NumPy arrays holding ``flat``'s values (each its own contiguous copy)."""
        return jax.tree_util.tree_unflatten(self.treedef, [np.array(x) for x in self.split(flat, lead)])


def _vg_flat(structure: Any, layout: Layout, leaves: list, x: jax.Array, args: tuple) -> tuple:
    """``(value, flat gradient, aux)`` of the solver's objective at the flat ``x`` (traced)."""
    solver = jax.tree_util.tree_unflatten(structure, leaves)
    params = jax.tree_util.tree_unflatten(layout.treedef, layout.split(x))
    value, grad, aux = solver.value_and_grad(params, *args)
    flat = jnp.concatenate([jnp.ravel(g).astype(x.dtype) for g in jax.tree_util.tree_leaves(grad)])
    return value, flat, aux


def flat_value_and_grad(solver: Any, structure: Any, leaves: list, layout: Layout, args: tuple, x: np.ndarray) -> Callable:
    """``x -> (value, flat gradient, aux)`` on the host (NumPy in, NumPy scalar and array out):
    one jit per loss function (weakly), solver structure and layout, with both bound (a static
    argument is hashed at every call: a Solver's tree structure costs ~10 us), compiled with
    :mod:`jaxgd.core.compile`'s options."""

    def make() -> Any:
        return _compile.jit(functools.partial(_vg_flat, structure, layout, leaves), params_at=0, solver_at=None)

    jitted = _cache.per_function(solver.fun, ("host-value-and-grad", structure, layout), make)
    call = jitted.chosen(_compile.classic_limit(solver), (x, args))
    asarray = np.asarray

    def vg(x: np.ndarray) -> tuple:
        value, grad, aux = call(x, args)
        return asarray(value)[()], asarray(grad), aux

    return vg


def _measure(x: np.ndarray, value: Any, g: np.ndarray, inf_norm: bool) -> tuple[Any, bool]:
    """``Solver._measure`` without a proximal term: ``(stationarity measure, all finite)``."""
    if inf_norm:
        top = np.max(np.abs(g) + 0 * x, initial=0)
        return top.astype(value.dtype), bool(np.isfinite(value) & np.isfinite(top))
    sq = dot(g, g)
    if np.isfinite(sq) and np.isfinite(x).all():
        return np.sqrt(sq).astype(value.dtype), bool(np.isfinite(value))
    top = np.max(np.abs(g) + 0 * x, initial=0)
    return _directions.scaled_norm(g, top).astype(value.dtype), bool(np.isfinite(value) & np.isfinite(top))


def _probe_scaled(vg: Callable, x: np.ndarray, value: Any, g: np.ndarray, d: Optional[np.ndarray] = None,
                  least_fall: Any = None, rise: Any = None) -> tuple[bool, int]:
    """:func:`jaxgd.core.probe.probe_descent` along ``-x^2 g`` (``scaled``) on the host, or along ``-d``
    with a fall above ``least_fall`` and no least step (``probe_verdict``'s Newton trials): ``(found,
    evaluations)``; the same trials (going up where ``rise`` is given), scalars in float32 (float64 for a
    float64 loss), each trial point rounded to ``x``'s dtype."""
    f32, dtype = np.dtype(_probe.probe_dtype(x.dtype)).type, x.dtype
    x32 = x.astype(f32)
    d = g.astype(f32) * x32 * x32 if d is None else d.astype(f32)
    ss, f0 = dot(g.astype(f32), d), f32(value)
    tie = f32(_wolfe.tie_tolerance(None, np.asarray(value, dtype)))  # (the searches' tie tolerance)
    if least_fall is not None:
        tie = max(tie, f32(least_fall))
    t = f32(_probe.probe_start(f0, ss, np))
    least = f32(_probe.PROBE_ULPS * _stepsize.shortest_move(x, d, dtype)) if least_fall is None else f32(0)
    k, up = 0, rise is not None  # (upward: the same steps from the shortest that counts to t, to a fall or a rise)
    if up:
        top, t = t, f32(_probe.probe_bottom(t, least, np))
        ceiling = np.maximum(tie, f32(rise))
    while ss > 0 and np.isfinite(ss) and (t <= top if up else k < _probe.PROBES and _probe.probe_counts(t, least)):
        f = f32(vg((x32 - t * d).astype(dtype))[0])
        k += 1
        if _probe.probe_falls(f, f0, t, ss, tie, least, np):
            return True, k
        if up and _probe.probe_rises(f, f0, ceiling):
            return False, k
        t = f32(t * (4.0 if up else 0.25))
    return False, k


def _newton_direction(vg: Callable, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, int]:
    """:func:`jaxgd.core.probe.newton_direction` on the host: ``(d, gradient evaluations)``; the same
    conjugate-gradient steps in float32, each ``H v`` from the gradient at ``x + h v`` rounded to ``x``'s dtype."""
    f32, dtype = np.float32, x.dtype
    x32, g32 = x.astype(f32), g.astype(f32)
    d, r, p, rs = np.zeros_like(g32), g32, g32, dot(g32, g32)
    tol = np.finfo(f32).eps ** 2 * rs  # (the compiled loop's test)
    k = 0
    while k < min(_probe.NEWTON_STEPS, x.size) and rs > tol:
        h = f32(_probe.hessian_step(x32, p, np))
        hp = (vg((x32 + h * p).astype(dtype))[1].astype(f32) - g32) / h
        k += 1
        curv = dot(p, hp)
        if not (curv > 0 and np.isfinite(curv)):  # negative curvature: stop (steepest descent at the first)
            return (g32 if k == 1 else d), k
        a = rs / curv
        d, r = d + a * p, r - a * hp
        rs_next = dot(r, r)
        p, rs = r + (rs_next / rs) * p, rs_next
    return d, k


def _probe_verdict(vg: Callable, x: np.ndarray, value: Any, g: np.ndarray, rise: Any = None) -> tuple[bool, int, int]:
    """:func:`jaxgd.core.probe.probe_verdict` on the host: ``(found, value evaluations, gradient evaluations)``."""
    found, k = _probe_scaled(vg, x, value, g, rise=rise)
    if found or not _probe.probes_newton(x.dtype):
        return found, k, 0
    d, j = _newton_direction(vg, x, g)
    fall = np.float32(_probe.newton_fall(np.asarray(value, np.float32), np))
    if not _probe.newton_predicts(dot(g.astype(np.float32), d), fall):
        return False, k + j, j
    more, m = _probe_scaled(vg, x, value, g, d, fall)
    return more, k + j + m, j


def _line_veto(vg: Callable, x: np.ndarray, value: Any, g: np.ndarray, noise: Any) -> tuple[bool, int]:
    """:func:`jaxgd.core.probe.line_veto` on the host: ``(veto, gradient evaluations)``."""
    s0 = -dot(g, g)
    steps = _probe.line_step(np.sqrt(dot(x, x)), np.sqrt(-s0), np.asarray(_probe.LINE_MOVES, x.dtype), np)
    s1, s2 = (-dot(vg(x - h * g)[1].astype(x.dtype), g) for h in steps)
    veto = _probe.line_rules_out(value, s0, s1, s2, steps, np.asarray(noise, x.dtype), np)
    return bool(veto), len(steps)


def _retry_verdict(vg: Callable, x: np.ndarray, value: Any, g: np.ndarray, noise: Any) -> tuple[bool, int, int]:
    """:func:`jaxgd.core.probe.retry_verdict` on the host: ``(found, value evaluations, gradient evaluations)``."""
    veto, k = _line_veto(vg, x, value, g, noise)
    if veto:
        return True, k, k
    found, values, gradients = _probe_verdict(vg, x, value, g, noise)
    return found, values + k, gradients + k


def run(solver: Any, x0: Any, args: tuple, structure: Any, leaves: list) -> Optional[Result]:
    """``solver.run(x0, *args)`` on the host (see the module doc); None when the loss's value
    has another dtype than the parameters (the caller then runs the compiled loop).

    ``structure``/``leaves``: the (bucketed) solver flattened, as the compiled eager run takes it.
    """
    x_leaves, treedef = jax.tree_util.tree_flatten(x0)
    layout = Layout(x_leaves, treedef)
    dtype = layout.dtype
    x = np.concatenate([np.asarray(v).ravel() for v in x_leaves]).astype(dtype, copy=False)
    vg = flat_value_and_grad(solver, structure, leaves, layout, args, x)
    box = _lbfgsb.box(solver, x0, dtype) if isinstance(solver.rule, LbfgsbSearch) else None
    if box is not None:  # Solver.init: x0 projected into the bounds
        x = np.clip(x, box.lower, box.upper)
    direction = _directions.host_direction(solver.direction, x.size)
    rule, inf_norm = solver.rule, solver.gtol_norm != 2
    quasi_newton = solver.direction.quasi_newton
    stall_probe = _stall.probes_stall(solver.direction, rule, dtype, solver.prox.active)  # (cg: float32, float64)
    retry_probe = _stall.probes_retry(solver.direction, rule, dtype, solver.prox.active)  # (cg: float64)
    wide = _stall.probes_upward(dtype)  # (float64: a quasi-Newton verdict's -x^2 g trials go up, one at an answer)
    search = _search.Search(rule, dtype, x) if box is None else None
    with np.errstate(all="ignore"):
        value, g, aux = vg(x)
        if value.dtype != dtype or g.dtype != dtype:
            return None
        gtol = np.asarray(solver.gtol, dtype)[()]
        ftol = None if solver.ftol is None else np.asarray(solver.ftol, dtype)[()]
        xtol = None if solver.xtol is None else np.asarray(solver.xtol, dtype)[()]
        gnorm = (np.max(np.abs(g), initial=0) if inf_norm else _directions.norm(g)).astype(dtype)
        finite = np.isfinite(value) and np.isfinite(g).all()
        status = NONFINITE if not finite else GTOL if gnorm <= gtol else RUNNING
        dstate, rstate = direction.init(x), _search.init(value, g)
        if box is not None:
            gnorm, status, dstate, rstate = _lbfgsb.start(solver, box, x, value, g, finite)
        count, nfev, ngev, alpha = 0, 1, 1, dtype.type(0)
        every, n_rows = solver.history_every, solver.history_length()
        # grown as rows come (max_steps=10**7 allocated 120 MB before a 10-step run); minimize keeps the
        # rows run, and a resume pads them back to the buffer's length
        rows = np.full((3, min(n_rows, HISTORY_ROWS)), np.nan, dtype)

        def record() -> None:
            """A step taken: its history row and progress report (the driver's)."""
            nonlocal rows
            if every and count % every == 0 and count // every <= n_rows:
                if count // every > rows.shape[1]:
                    wider = np.full((3, min(n_rows, 2 * rows.shape[1])), np.nan, dtype)
                    wider[:, :rows.shape[1]] = rows
                    rows = wider
                rows[:, count // every - 1] = (value, alpha, gnorm)
            if solver.progress_every and count % solver.progress_every == 0:
                _progress.update(count, value, solver.max_steps)

        def along(x: np.ndarray, d: np.ndarray) -> Callable[[Any], _search.Trial]:
            """``ctx.evaluate``: ``alpha -> Trial`` at ``x + alpha d``."""

            def evaluate(a: Any) -> _search.Trial:
                xt = (x + a.astype(dtype) * d).astype(dtype, copy=False)
                return _search.Trial(xt, *vg(xt))

            return evaluate

        def accepts_at(g: np.ndarray, d: np.ndarray) -> Optional[Callable[[_search.Trial], bool]]:
            """``ctx.accept`` (core/update.py's): the direction's test, or gtol met at the trial."""
            if direction.accepts is None:
                return None
            return lambda t: direction.accepts(t.grad, g, d) or _measure(t.x, t.value.astype(dtype), t.grad, inf_norm)[0] <= gtol

        vouched = _stall.VOUCH_NONE
        while status == RUNNING and count < solver.max_steps:
            if box is not None:  # L-BFGS-B (Solver.step's hook)
                o = _lbfgsb.step(solver, box, vg, count, x, value, g, aux, gnorm, dstate, rstate)
                dstate, rstate, status, nfev, ngev = o.mem, o.counts, o.status, nfev + o.nfev, ngev + o.nfev
                if o.accept:
                    x, value, g, aux, gnorm, alpha = o.x, o.value, o.grad, o.aux, o.grad_norm, o.alpha
                    count += 1
                    record()
                continue
            d, dnew = direction.update(g, dstate, x)
            d = d.astype(dtype, copy=False)
            ctx = _search.Context(x, value, g, d, dot(g, d).astype(dtype), along(x, d), accepts_at(g, d))
            a, trial, rnew, (fev, gev, failed, (unit_sq_grad, unit_slope, located, noise, unseen)) = search.step(rstate, ctx)
            new_value = trial.value.astype(dtype)
            new_gnorm, finite = _measure(trial.x, new_value, trial.grad, inf_norm)
            accept = finite and not failed
            st = GTOL if new_gnorm <= gtol else RUNNING
            if (ftol is not None or xtol is not None) and st == RUNNING:
                st = int(tolerance_status(st, ftol, xtol, value, new_value, lambda: _directions.norm(trial.x - x), a,
                                          count == 0, np))
            st = FAILED if failed else NONFINITE if not finite else st
            stalled = rnew.since >= rule.stall_window
            fresh, had_memory = direction.reset(dnew) if (failed or stalled) else (None, False)
            vouch = _stall.VOUCH_NONE  # stall.adjust_status's flag for the next step (SolverState.stall)
            if failed or stalled:
                sq = dot(g, g)
                decrease = (_stall.model_decrease(ctx.slope, had_memory, unit_sq_grad, sq, np) if quasi_newton
                            else np.inf)
                retry_failed = False
                if quasi_newton:  # the restart's rule (stall.restart_test, the compiled step's own)
                    move = _stepsize.shortest_move(x, g, np.result_type(value))
                    at_ulp = _stall.resolved(ctx.slope, unit_slope, sq, move, np)
                    retry_failed, vouch = _stall.restart_test(
                        value, ctx.slope, np.bool_(had_memory), decrease, unit_slope, located, noise, vouched, np,
                        _stall.interpolates(rule), at_ulp)
                    retry_failed, vouch = bool(retry_failed), int(vouch)
                if st in (RUNNING, FAILED):
                    old = (value, gnorm, x) if failed else (new_value, new_gnorm, trial.x)
                    # the norm test, or stall.adjust_status's grid rule (float32 and narrower): a failed search along -g
                    precise = at_precision(*old, bool(failed and unseen and not had_memory))
                    verdict = bool(_stall.model_at_precision(value, decrease, np)) or retry_failed
                    due = verdict and quasi_newton  # (adjust_status's probes, and its
                    due = due or (stall_probe and stalled and not failed)  # stall_verdict: a cg stall, and its
                    due = due or (retry_probe and failed and not had_memory)  # retry: a float64 cg search along -g)
                    if due and not precise:
                        found, probed, gradients = (
                            _retry_verdict(vg, x, value, g, noise) if retry_probe
                            else _probe_verdict(vg, x, value, g, (0.0 if noise is None else noise) if wide else None))
                        verdict, fev, gev = not found, fev + probed, gev + gradients
                    st = PRECISION if precise or verdict else st
            vouched = vouch
            st = STALLED if (st == RUNNING and stalled) else st
            if st == STALLED and had_memory and vouch != _stall.VOUCH_NONE:  # a stall that vouched: the restart
                dnew, st = fresh, RUNNING
            if st == FAILED:
                if had_memory:  # L-BFGS-B's restart: retry from here without the memory
                    dnew, st = fresh, RUNNING
            dstate, status, nfev, ngev = dnew, st, nfev + fev, ngev + gev
            if accept:
                x, value, g, aux, gnorm, rstate, alpha = trial.x, new_value, trial.grad, trial.aux, new_gnorm, rnew, a
                count += 1
                record()
    if solver.progress_every:
        _progress.close(count, value, solver.max_steps, status)
    if status == RUNNING and count >= solver.max_steps:
        status = int(Status.MAX_STEPS)
    return _result(solver, layout, x, value, g, aux, gnorm, count, dstate, rstate, status, nfev, ngev, alpha, rows,
                   vouched, home=_home(x_leaves))


def _home(x_leaves: list) -> Any:
    """The device an ``x0`` committed to one device lives on, where the compiled run's arrays come back (None:
    the default device; the result's scalars and other ranks cannot take a leaf's own ``NamedSharding``)."""
    for v in x_leaves:
        if isinstance(v, jax.Array) and v.committed and len(v.devices()) == 1:
            return jax.sharding.SingleDeviceSharding(next(iter(v.devices())))
    return None


def _result(solver: Any, layout: Layout, x, value, g, aux, gnorm, count, dstate, rstate, status, nfev, ngev, alpha, rows,  # noqa: ANN001
            vouched: int = 0, home: Any = None) -> Result:
    """The :class:`jaxgd.Result` the compiled eager run would return, from the host state: device
    arrays for the parameters, the gradient and the rule's and direction's states (put on the
    device in one call: ~35 us an array, against ~85 us one by one), NumPy scalars for the rest.
    ``home``: the sharding of an ``x0`` committed to a device, where the compiled run's arrays come
    back (the default device otherwise; the answer to an ``x0`` on a second GPU came back on the first)."""
    if isinstance(rstate, _lbfgsb.Counts):  # L-BFGS-B: its memory of flat vectors, the rule's counts as a tuple
        direction_state = dstate
        rule_state = (np.asarray(rstate.flat, np.int32), _stall.Window(*(np.asarray(v) for v in rstate.window)))
    else:
        m = dstate.s.shape[0] if isinstance(dstate, _directions.LBFGS) else 0
        direction_state = _directions.compiled_state(dstate, lambda r: layout.tree(r, (m,)), layout.tree)
        rule_state = type(rstate)(*(np.asarray(v) for v in rstate))
    on_device = jax.device_put((layout.tree(x), layout.tree(g), direction_state, rule_state), home)
    params, grad, direction_state, rule_state = on_device
    i32 = np.int32
    state = SolverState(
        params=params, value=value, grad=grad, aux=aux, grad_norm=gnorm, count=i32(count),
        direction_state=direction_state, rule_state=rule_state, status=i32(status), nfev=i32(nfev), ngev=i32(ngev),
        alpha=alpha, stall=np.asarray(vouched, np.result_type(value))[()] if solver._vouches() else (),
    )
    return Result(params, value, gnorm, state.count, state.status, History(*rows), state, state.nfev, state.ngev, aux)
