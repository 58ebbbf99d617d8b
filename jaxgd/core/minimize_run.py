"""``minimize``'s compiled run: the validated solver per options, the jits per loss function.

- :func:`get_plan`: ``Solver(fun, method, lr, **options)`` validated once per
  loss function and hashable options (weakly in the function), in a
  :class:`Plan` that also keeps, for an eager call, the bucketed solver's
  leaves and tree structure (flattened once) and the jit that takes them;
- :func:`run`: the run under one ``jax.jit`` per loss function and adjoint
  mode (:mod:`jaxgd.core.adjoint`); eagerly through :func:`run_flat`;
- the result fields that copy state fields leave the compiled run once
  (:func:`drop_copies`/:func:`fill_copies`) and :func:`trim_history` cuts
  the history to the steps taken, on the host.

Everything here is the per-call host cost of ``minimize`` (benchmarks E).
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.extend.core as _jex_core
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from . import adjoint as _adjoint
from . import batched as _batched
from . import cache as _cache
from . import compile as _compile
from . import driver as _driver
from . import implicit as _implicit
from . import options as _options
from . import stall as _stall
from .. import _closure_key, _tree
from ..host import tier as _host_tier
from .solver import Solver, SolverState
from .status import History, Result
from .._types import Params


class Plan:
    """A validated :class:`Solver` for one set of options, and what an eager
    call re-uses: the leaves and tree structure of its bucketed copy and the
    compiled run that takes them (made on first use).

    A cached plan (one per loss function and hashable options) is shared by
    every repeated call, so nothing here is rebuilt per call.
    """

    __slots__ = ("solver", "_eager", "host_why")

    def __init__(self, solver: Solver) -> None:
        self.solver, self._eager = solver, None
        self.host_why: Any = _host_tier.UNKNOWN  # why the host loop does not run this solver (None: it does)

    def eager(self) -> "_Eager":
        """The eager run (:class:`_Eager`), made once per x64 mode: ``call(structure, leaves, x0,
        args)`` is ``solver.bucketed().run(x0, *args)`` under the per-function jit (see
        :func:`run_flat`).

        The leaves (the hyperparameters: Python floats, NumPy scalars) are put
        on the device once, so a call does not convert them again: a Python
        float argument costs a jitted call ~6 us (benchmarks E; the
        abstract value, a weakly typed scalar, is the same, so is the
        program). A device copy has the float width of the x64 mode it was
        made in, so it is remade when the mode changes.
        """
        x64 = bool(jax.config.jax_enable_x64)
        if self._eager is None or self._eager.x64 != x64:
            bucketed = self.solver.bucketed()
            leaves, structure = jax.tree_util.tree_flatten(bucketed)
            leaves = [jax.device_put(leaf) for leaf in leaves]
            run = _cache.jit_per_function(bucketed.fun, "minimize-flat", run_flat, _jit_static_structure)
            limit = _compile.classic_limit(bucketed)
            self._eager = _Eager(functools.partial(run.call, limit), structure, leaves, x64, run, limit)
        return self._eager

    def repeat(self, x0: Params, args: tuple) -> "Repeat":
        """The :class:`Repeat` of an eager call with ``x0``'s and ``args``' signature (after a call
        that ran the compiled loop: its jit is the one :func:`jaxgd.core.compile.jit` chose)."""
        e = self.eager()
        return Repeat(e.run.chosen(e.limit, (e.structure, e.leaves, x0, args)), e.structure, e.leaves,
                      self.solver.history_every)

    def precompile(self, x0: Params, args: tuple) -> None:
        """XLA-compile, without running, the program :meth:`eager`'s run calls for ``x0``, ``args``."""
        e = self.eager()
        e.run.precompile(e.limit, e.structure, e.leaves, x0, args)


class _Eager(NamedTuple):
    """A plan's eager run: the jit's call for its problem size, the bucketed solver's structure and
    device leaves (made in x64 mode ``x64``), the per-function jit and the classic-emitter limit."""

    call: Any
    structure: Any
    leaves: list
    x64: bool
    run: Any
    limit: int


def get_plan(fun: Any, method: Any, lr: Any, options: tuple) -> Plan:
    """``Solver(fun, method, lr, **options)`` (``options``: the values of
    ``SOLVER_OPTIONS`` in order) in a :class:`Plan`, cached when every option is hashable.

    A Solver is immutable, so a repeated ``minimize`` call with the same
    options re-uses the validated one (about 10-25 us a call, benchmarks E)
    with ``fun`` put in (:meth:`Solver.with_fun`). The cache holds no user
    loss function (it would keep alive everything the function captured); its
    key holds each value's type too: ``history=True`` and ``history=1`` are
    equal in Python but mean different things.
    """
    # a closure lr (an optax schedule) or an optax method by its code and values (_tree.Static): one built anew
    # with the same numbers finds the plan, and so the compiled run, of the first (whose program computes the same)
    key = (by_value(method), type(lr), by_value(lr), options, tuple(map(type, options)))
    # built every time: an array or an unhashable schedule; or a rule holding a tracer (cached, it would outlive
    # its trace: a leak)
    if not _hashable(key) or _held_tracers(method, lr):
        return Plan(Solver(fun, method, lr, **dict(zip(_options.SOLVER_OPTIONS, options))))
    return _PLANS.get(fun, key, lambda: Plan(_solver_cached(key).with_fun(fun, strong=False)))


def by_value(x: Any) -> Any:
    """``x`` in a :class:`jaxgd._tree.Static` where it is keyed by its code and values (a closure, partial or
    bound method ``lr``, an optax transformation ``method``: :func:`jaxgd._closure_key.keyed`), else ``x``."""
    return _tree.Static(x) if _closure_key.keyed(x) else x


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _held_tracers(method: Any, lr: Any) -> bool:
    """Whether a method or step-size rule object may hold a tracer: one with a tracer leaf
    (``Backtracking(shrink=s)`` under ``jax.jit``), or any object other than a method's name
    made under a trace (an optax transformation closes over its values, unseen). Such a plan is
    not cached: the cache kept the tracer alive after its trace (``jax.checking_leaks`` raised)."""
    if isinstance(method, str) and (lr is None or isinstance(lr, (int, float))):
        return False
    return _compile.tracing() or not _tree.is_concrete((method, lr))


def cached_solver(fun: Any, method: Any, lr: Any, **options: Any) -> Solver:
    """``Solver(fun, method, lr, **options)`` through :func:`get_plan`'s cache
    (options not given take their defaults)."""
    unknown = set(options) - set(_options.SOLVER_OPTIONS)
    if unknown:
        raise TypeError(f"unknown Solver option(s) {sorted(unknown)}")
    values = tuple(options[n] if n in options else _options.default(n) for n in _options.SOLVER_OPTIONS)
    return get_plan(fun, method, lr, values).solver


def _placeholder(params: Any, *args: Any) -> Any:  # the cached solvers' fun, replaced by with_fun
    raise AssertionError("placeholder loss called")


# fun -> {options: the Plan for fun}, weakly in fun; the cached Solver holds
# fun weakly too (its entry lives only while fun does).
_PLANS = _cache.PerFunction(maxsize=16)
SOLVER_OPTION_VALUES = operator.itemgetter(*_options.SOLVER_OPTIONS)


@functools.lru_cache(maxsize=256)
def _solver_cached(key: tuple) -> Solver:
    method, _, lr, options, _ = key
    method, lr = (x.value if isinstance(x, _tree.Static) else x for x in (method, lr))
    return Solver(_placeholder, method, lr, **dict(zip(_options.SOLVER_OPTIONS, options)))


# Result fields that Solver.finish copies from the final state. The compiled
# run returns each such array once (as part of ``state``) and ``run`` puts it
# back on the host: every output of a jitted call costs a few microseconds
# to hand back, and these were 7 of 19 (benchmarks E).
_COPIED_FROM_STATE = (
    ("params", "params"), ("loss", "value"), ("grad_norm", "grad_norm"), ("steps", "count"),
    ("status", "status"), ("nfev", "nfev"), ("ngev", "ngev"), ("aux", "aux"),
)


# Per Result field, the state field it copies (None: not a copy).
_STATE_FIELD = tuple(dict(_COPIED_FROM_STATE).get(f) for f in Result._fields)


def drop_copies(result: Result) -> Result:
    """Inside jit: None for each field that is the very same value as its state field."""
    same = {f: None for f, s in _COPIED_FROM_STATE if getattr(result, f) is getattr(result.state, s)}
    return result._replace(**same)


def fill_copies(result: Result) -> Result:
    """Undo :func:`drop_copies` (the output structure records which fields were dropped)."""
    return Result._make(_filled(result, result.state))


def _filled(result: Result, state: Any) -> list:
    """``result``'s fields, each dropped copy (None) read from ``state``."""
    return [v if v is not None or s is None else getattr(state, s) for v, s in zip(result, _STATE_FIELD)]


# Under jax.vmap the run goes through _batched.run_batched: plain vmap of the
# while loop copied the history buffers at every step (benchmarks D).
def run_dropped(solver: Solver, x0: Params, args: tuple) -> Result:
    return drop_copies(solver.run(x0, *args))


def jit_vmappable(fn: Any) -> Any:
    # Always called inside the adjoint runner's jit: nested, so jax.jit (no compiler options).
    return jax.jit(_batched.vmappable(fn, drop_copies))


def runner(fun: Any, adjoint: str) -> Any:
    """The jitted ``(solver, x0, args) -> Result`` (copies dropped) for ``adjoint``,
    one per loss function (weakly, :func:`jaxgd.core.cache.per_function`)."""

    def make() -> Any:
        plain = _cache.jit_per_function(fun, "minimize", run_dropped, jit_vmappable)
        return _adjoint.runner(adjoint, plain, drop_copies)

    return _cache.per_function(fun, "minimize-" + adjoint, make)


def run_flat(structure: Any, leaves: list, x0: Params, args: tuple) -> tuple:
    """The eager run: the solver given as its tree ``structure`` (static) and
    ``leaves``, then ``adjoint="implicit"``'s runner, traced inline (the same
    program); its result with the state's scalars packed (:func:`pack_scalars`).

    A cached solver's leaves and structure are computed once (:class:`Plan`),
    so a repeated call does not flatten the Solver pytree again (three Python
    flatten functions and a treedef of Python objects to compare, ~8 us a
    call; benchmarks E).
    """
    solver = jax.tree_util.tree_unflatten(structure, leaves)
    result = runner(solver.fun, "implicit")(solver, x0, args)
    if not solver.history_length():  # no rows: nothing to hand back (eager_result makes the empty history)
        result = result._replace(history=None)
    elif len({h.dtype for h in result.history}) == 1:
        # One (fields, rows) buffer to hand back and copy to the host instead
        # of three (:func:`trim_history` takes it apart): ~5 us a call.
        result = result._replace(history=jnp.stack(result.history))
    return pack_scalars(result)


# The state's scalar fields, by kind: the floats all have the loss's dtype
# (Solver casts them), the counters are int32. Handed back as two vectors.
_FLOATS, _INTS = ("value", "grad_norm", "alpha"), ("count", "status", "nfev", "ngev")
_WINDOW_FLOATS, _WINDOW_INTS = ("best_value", "best_grad_norm"), ("since",)


def _scalars(state: Any) -> tuple[list, list]:
    floats = [getattr(state, f) for f in _FLOATS]
    ints = [getattr(state, f) for f in _INTS]
    if isinstance(state.stall, _stall.Window):
        floats += [getattr(state.stall, f) for f in _WINDOW_FLOATS]
        ints += [getattr(state.stall, f) for f in _WINDOW_INTS]
    elif _is_flag(state.stall):  # a quasi-Newton restart's vouch flag, in the loss's dtype
        floats.append(state.stall)
    return floats, ints


def _is_flag(stall: Any) -> bool:
    """Whether ``SolverState.stall`` is stall.adjust_status's flag (a 0-d array), not a Window or () (tuples)."""
    return not isinstance(stall, tuple)


def pack_scalars(result: Result) -> tuple:
    """Inside jit: ``(result, floats, ints)`` with the state's scalar fields
    (:data:`_FLOATS`, :data:`_INTS`, the stall window's or flag) set to None and their
    values in two vectors, or ``(result, None, None)`` where their dtypes
    differ. Every output of a jitted call costs about 2 us to hand back
    (benchmarks E): ten scalars cost more than the loop's work."""
    state = result.state
    floats, ints = _scalars(state)
    if len({jnp.result_type(v) for v in floats}) != 1 or len({jnp.result_type(v) for v in ints}) != 1:
        return result, None, None
    cleared = state._replace(**{f: None for f in _FLOATS + _INTS})
    if isinstance(state.stall, _stall.Window):
        cleared = cleared._replace(stall=_stall.Window(None, None, None))
    elif _is_flag(state.stall):  # (None: packed, after the state's floats)
        cleared = cleared._replace(stall=None)
    return result._replace(state=cleared), jnp.stack(floats), jnp.stack(ints)


def unpack_scalars(packed: tuple) -> Result:
    """On the host: undo :func:`pack_scalars`; the scalars come back as NumPy
    scalars (one host copy of each vector, none on CPU); under a trace (the
    eager run called with concrete inputs inside a user's jit) as slices."""
    result, floats, ints = packed
    if floats is None:
        return result
    if not isinstance(floats, jax.core.Tracer):  # (concrete inputs inside a user's trace take this path too)
        floats, ints = np.asarray(floats), np.asarray(ints)
    return result._replace(state=_unpacked_state(result.state, floats, ints))


def _unpacked_state(state: Any, floats: Any, ints: Any) -> Any:
    """``state`` with its packed scalar fields (None) read from the two vectors."""
    values = list(state)
    for k, i in _FLOAT_AT:
        values[i] = floats[k]
    for k, i in _INT_AT:
        values[i] = ints[k]
    if type(state.stall) is _stall.Window:  # the window's scalars follow the state's own (see _scalars)
        values[_STALL_AT] = _stall.Window._make([(floats if f else ints)[k] for f, k in _WINDOW_AT])
    elif state.stall is None:  # the vouch flag, packed after the state's floats (see _scalars)
        values[_STALL_AT] = floats[len(_FLOATS)]
    return type(state)._make(values)


def eager_result(packed: tuple, every: Optional[int] = None) -> Result:
    """On the host, from :func:`run_flat`'s output: ``fill_copies(unpack_scalars(packed))``,
    its history trimmed as :func:`trim_history` does for a history period ``every`` (None:
    left as it is), built as one Result (each NamedTuple built costs microseconds of a
    repeated call, benchmarks E)."""
    result, floats, ints = packed
    if floats is None or isinstance(floats, jax.core.Tracer):  # see unpack_scalars
        result = fill_copies(unpack_scalars(packed))
        if result.history is None and isinstance(result.loss, jax.core.Tracer):  # (traced: empty arrays)
            result = result._replace(history=_driver.empty_history(0, result.state.value.dtype))
        elif result.history is None:  # (concrete: NumPy's, as an eager Result's)
            result = result._replace(history=_no_history(np.dtype(jnp.result_type(result.loss))))
        return result if every is None else trim_history(result, every)
    state = _unpacked_state(result.state, np.asarray(floats), np.asarray(ints))
    fields = _filled(result, state)
    fields[_RESULT_STATE_AT] = state
    if fields[_RESULT_HISTORY_AT] is None:  # no rows (history off, or max_steps < the period): empty
        fields[_RESULT_HISTORY_AT] = _no_history(state.value.dtype)
    elif every:
        fields[_RESULT_HISTORY_AT] = _trimmed(fields[_RESULT_HISTORY_AT], int(state.count) // every)
    return Result._make(fields)


@functools.cache
def _no_history(dtype: Any) -> History:
    """The history of an eager run with ``history=False``: three empty read-only NumPy arrays."""
    empty = np.empty(0, dtype)
    empty.flags.writeable = False
    return History(empty, empty, empty)


# (place in the vector, place in the state) of each packed scalar
_FLOAT_AT = tuple((k, SolverState._fields.index(f)) for k, f in enumerate(_FLOATS))
_INT_AT = tuple((k, SolverState._fields.index(f)) for k, f in enumerate(_INTS))
_STALL_AT = SolverState._fields.index("stall")
# per Window field: (a float?, its place in the vector)
_WINDOW_AT = tuple(
    (True, len(_FLOATS) + _WINDOW_FLOATS.index(f)) if f in _WINDOW_FLOATS else (False, len(_INTS) + _WINDOW_INTS.index(f))
    for f in _stall.Window._fields
)
_RESULT_STATE_AT = Result._fields.index("state")


def _jit_static_structure(fn: Any) -> Any:
    return _compile.jit(fn, params_at=2, solver_at=None, static_argnums=0)


def lift_closure(solver: Solver, x0: Params, args: tuple) -> tuple[Solver, tuple, bool]:
    """``(solver, args, lifted)``: under a transformation, the solver of a loss that takes
    the tracers its closure holds (a ``jax.vmap``-ed or differentiated value captured by a
    ``lambda``) as trailing ``args``, so that the batched loop (``custom_vmap``, which
    refuses closed-over batched values) and the implicit adjoint (``custom_jvp``, which
    cannot differentiate them) see them as arguments; else unchanged. At the top level
    (no transformation) a closure holds no tracer and nothing is traced.

    The loss is traced once (``jax.make_jaxpr``); every constant of its jaxpr that is a
    tracer becomes an argument (``jax.closure_convert`` lifts only values that may carry
    a derivative, not ``vmap``'s).
    """
    if not _compile.tracing():
        return solver, args, False
    solver, schedule_lifted = _lift_schedule(solver)
    closed, lift, out_shape = _traced_consts(solver.fun, x0, *args)
    if not any(lift):
        return solver, args, schedule_lifted
    n_args, out_tree = len(args), jax.tree_util.tree_structure(out_shape)

    def lifted(params: Params, *rest: Any) -> Any:
        flat = jax.tree_util.tree_leaves((params, *rest[:n_args]))
        return jax.tree_util.tree_unflatten(out_tree, _refilled(closed, lift, rest[n_args:])(*flat))

    return solver.with_fun(lifted), (*args, *(c for c, up in zip(closed.consts, lift) if up)), True


OPTAX_TRACED = (
    "method={name!r}: this optax transformation closes over a value traced by jax.grad or jax.jvp "
    "(optax.adam(lr) built from a differentiated lr): the implicit adjoint cannot pass it into its loop, and "
    "its derivative there would be 0. Use adjoint='unroll' (the steps differentiated as they ran), or give the "
    "value to jaxgd: method='adam', lr=lr (jaxgd's methods take traced hyperparameters: lr, l2, clip, a "
    "schedule's numbers)"
)


def check_optax_closure(solver: Solver, x0: Params, adjoint: str) -> bool:
    """An optax transformation as ``method`` whose functions close over tracers (``jax.jit``'s are
    fine): ``True`` where one is ``jax.vmap``'s (the run then goes through plain ``jax.vmap`` of its
    loop, :func:`run`, not the batched loop, whose ``custom_vmap`` failed on it with JAX's bare
    ``AssertionError``); a ``jax.grad``/``jvp`` one is refused under the implicit adjoint (its
    ``custom_jvp`` failed with a linearization error), and fine with ``adjoint="unroll"``.

    The direction's ``init`` and ``update`` are traced once at ``x0`` (``jax.make_jaxpr``): the
    tracers are the constants of that jaxpr, wherever they are held (a closure's cell, an object's
    attribute, a pytree)."""
    direction = solver.direction
    if getattr(direction.update, "optax_transformation", None) is None:
        return False

    def one_update(params: Params) -> Any:  # (optax.lbfgs's extra arguments: a value and a value_fn of no closure)
        value_fn = lambda p: sum(jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(p))  # noqa: E731
        return direction.update(params, direction.init(params), params, value=value_fn(params), value_fn=value_fn)

    closed, lift, _ = _traced_consts(one_update, x0)
    found = [type(c).__name__ for c, up in zip(closed.consts, lift) if up]
    if adjoint != "unroll" and any(k not in UNDIFFERENTIATED for k in found):
        raise ValueError(OPTAX_TRACED.format(name=solver.direction.name))
    return "BatchTracer" in found


def closes_over_tracers(solver: Solver, x0: Params, args: tuple) -> bool:
    """True when the loss or a schedule ``lr`` closes over a tracer (a value captured under
    ``jax.grad``/``vmap``): what :func:`lift_closure` would lift, without building the solver."""
    if not _compile.tracing():
        return False
    traced = _traced_schedule(solver)
    return (traced is not None and any(traced[1])) or any(_traced_consts(solver.fun, x0, *args)[1])


# The kinds of tracer a traced constant may be that differentiate nothing: jax.jit's and jax.vmap's.
UNDIFFERENTIATED = ("DynamicJaxprTracer", "BatchTracer")


# The kinds of tracer that differentiate: jax.jvp's (jacfwd's) and jax.grad's (linearize's).
DIFFERENTIATING = ("JVPTracer", "LinearizeTracer")


def differentiated(tree: Any, kinds: tuple[str, ...] = DIFFERENTIATING) -> bool:
    """True when a leaf of ``tree`` is a tracer of ``jax.grad``/``jvp`` (``kinds``, :data:`DIFFERENTIATING`: a
    ``shard_map``'s, jit's or vmap's is not). For the implicit adjoint's early check only, which its rule
    makes again whatever this says; :func:`differentiated_consts` keeps the cautious reading."""
    return any(isinstance(leaf, jax.core.Tracer) and type(leaf).__name__ in kinds
               for leaf in jax.tree_util.tree_leaves(tree))


def forward_mode(tree: Any) -> bool:
    """True when a leaf of ``tree`` is ``jax.jvp``'s (``jax.jacfwd``'s) tracer: with JAX's direct
    linearize (its default), ``jax.grad`` traces with another."""
    return bool(jax.config.jax_use_direct_linearize) and differentiated(tree, ("JVPTracer",))


def differentiated_consts(fn: Callable, *example: Any) -> bool:
    """True when ``fn``, traced once at ``example`` (arrays or ``jax.ShapeDtypeStruct``), holds a tracer of
    ``jax.grad``/``jvp`` among its constants (a value it closes over, differentiated), not jit's or vmap's."""
    closed, lift, _ = _traced_consts(fn, *example)
    return any(type(c).__name__ not in UNDIFFERENTIATED for c, up in zip(closed.consts, lift) if up)


def _traced_consts(fn: Callable, *example: Any) -> tuple[Any, tuple, Any]:
    """``(closed jaxpr, which of its constants are tracers, output shape)`` of ``fn`` traced
    once at ``example`` (``jax.make_jaxpr``)."""
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*example)
    return closed, tuple(isinstance(c, jax.core.Tracer) for c in closed.consts), out_shape


def _refilled(closed: Any, lift: tuple, values: Any) -> Callable:
    """``closed``'s jaxpr as a function, its constants where ``lift`` is True taken from ``values``
    (in order; the lifted tracers, or the leaves that replaced them)."""
    values = iter(values)
    consts = [next(values) if up else c for c, up in zip(closed.consts, lift)]
    return _jex_core.jaxpr_as_fun(_jex_core.ClosedJaxpr(closed.jaxpr, consts))


@jax.tree_util.register_pytree_node_class
class _LiftedSchedule:
    """A schedule ``count -> lr`` whose closure held tracers, as a pytree: its jaxpr (static), of
    ``(count, *args)``, with the tracers (``consts``) and the schedule's own leaves (``args``, a
    pytree schedule's numbers: :func:`schedule_closure`) as data leaves, so that
    ``stop_gradient``, ``vmap`` and the unrolled adjoint reach them as they reach a float ``lr``."""

    def __init__(self, closed: Any, lift: tuple, consts: tuple, args: tuple) -> None:
        self.closed, self.lift, self.consts, self.args = closed, lift, consts, args

    def __call__(self, count: Any) -> Any:
        (out,) = _refilled(self.closed, self.lift, self.consts)(count, *self.args)
        return out

    def tree_flatten(self) -> tuple:
        return (self.consts, self.args), (_tree.Static(self.closed), self.lift)

    @classmethod
    def tree_unflatten(cls, aux: tuple, leaves: tuple) -> "_LiftedSchedule":
        return cls(aux[0].value, aux[1], tuple(leaves[0]), tuple(leaves[1]))


def _lift_schedule(solver: Solver) -> tuple[Solver, bool]:
    """``(solver, lifted)``: a schedule ``lr`` that closes over tracers (an optax schedule built
    from a value under ``jax.grad``/``vmap``, as ``lr`` or inside ``per_epoch``) rebuilt as a
    :class:`_LiftedSchedule`, whose tracers are leaves of the solver: the implicit adjoint's
    ``stop_gradient`` then reaches them (its derivative in ``lr`` is zero, as documented) and the
    unrolled one differentiates them."""
    traced = _traced_schedule(solver)
    if traced is None:
        return solver, False
    closed, lift, args = traced
    if not any(lift) or len(closed.out_avals) != 1:
        return solver, False
    consts = tuple(c for c, up in zip(closed.consts, lift) if up)
    kept = _jex_core.ClosedJaxpr(closed.jaxpr, [None if up else c for c, up in zip(closed.consts, lift)])  # no tracer kept
    return solver.with_rule(type(solver.rule)(_LiftedSchedule(kept, lift, consts, args))), True


def schedule_closure(schedule: Any) -> Optional[tuple[Callable, tuple]]:
    """``(fn, args)`` with ``fn(count, *args) == schedule(count)`` for a schedule ``lr`` that holds a
    callable in a static part, which may close over tracers: an optax schedule or a lambda
    (``_tree.Static``), or a pytree schedule holding one (``per_epoch(optax_schedule, n)``), whose
    own leaves are ``args``; so that tracing ``fn`` at ``args`` shows only the closures' tracers
    among its constants. None for a float, a rule, or a pytree schedule of numbers alone (a jaxgd
    schedule: its numbers are the solver's leaves already)."""
    if isinstance(schedule, _tree.Static):
        return (schedule.value, ()) if callable(schedule.value) else None
    if schedule is None or not callable(schedule):
        return None
    parts = jax.tree_util.tree_leaves(schedule, is_leaf=lambda x: isinstance(x, _tree.Static))
    if not any(isinstance(p, _tree.Static) and callable(p.value) for p in parts):
        return None
    args, treedef = jax.tree_util.tree_flatten(schedule)
    return (lambda count, *leaves: jax.tree_util.tree_unflatten(treedef, leaves)(count)), tuple(args)


def _traced_schedule(solver: Solver) -> Optional[tuple[Any, tuple, tuple]]:
    """``(closed jaxpr of (count, *args), which constants are tracers, args)`` of a schedule ``lr``
    traced at step 0 (:func:`schedule_closure`), or None where ``lr`` holds no callable closure."""
    found = schedule_closure(getattr(solver.rule, "schedule", None))
    if found is None:
        return None
    fn, args = found
    return (*_traced_consts(fn, jnp.zeros((), jnp.int32), *args)[:2], args)


def eager(adjoint: str, concrete: bool, solver: Solver) -> bool:
    """True for a call :func:`run` makes eagerly (the bucketed jit, and the host tier's choice):
    the implicit adjoint, concrete ``x0``/``args`` (``concrete``) and hyperparameters."""
    return adjoint == "implicit" and concrete and solver.is_concrete()


def run(
    solver: Solver, x0: Params, args: tuple, adjoint: str = "implicit", plan: Optional[Plan] = None,
    concrete: Optional[bool] = None, tier: str = "compiled", repeat_key: Optional[tuple] = None,
    inline: bool = False,
) -> Result:
    """``solver.run(x0, *args)`` under one ``jax.jit`` cached per loss function (weakly),
    differentiable as ``adjoint`` says (:mod:`jaxgd.core.adjoint`).

    ``plan`` (the solver's :class:`Plan`) and ``concrete`` (``x0`` and
    ``args`` hold no tracer) are what the caller already knows. ``tier``:
    ``minimize``'s (:mod:`jaxgd.host.tier`); an eager call may run on the host.
    ``repeat_key`` (:func:`repeat_key`): an eager call that runs the compiled
    loop without a progress bar registers its :class:`Repeat` under it. ``inline``: the run traced in
    place, for plain ``jax.vmap`` to batch (:func:`check_optax_closure`).
    """
    if inline:
        return fill_copies(_adjoint.run(adjoint, run_dropped, drop_copies, solver, x0, args))
    if concrete is None:
        concrete = _tree.is_concrete((x0, args))
    if eager(adjoint, concrete, solver):
        # Called eagerly: compile for a bucket of max_steps (issue 14 item 4);
        # under a user's jit/vmap the result keeps its exact history length.
        plan = Plan(solver) if plan is None else plan
        e = plan.eager()
        if tier != "compiled":  # the first call of a problem may run on the host (jaxgd.host.tier)
            result = _host_tier.run(tier, plan, solver, x0, args, e.structure, e.leaves)
            if result is not None:
                return result
        result = eager_result(e.call(e.structure, e.leaves, x0, args))
        if not solver.progress_every:
            register(solver.fun, repeat_key, lambda: plan.repeat(x0, args))
        return result
    if adjoint == "implicit":  # (its derivative rule may run after this trace: a scan body's)
        _implicit.keep_alive(solver.fun)
    return fill_copies(runner(solver.fun, adjoint)(solver, x0, args))


def trim_history(result: Result, every: int) -> Result:
    """Cut the history buffers to the steps taken (host only; untrimmed under tracing).

    The trimmed history is NumPy: the buffers come to the host (no copy on
    CPU) and are sliced there. Slicing them as ``jax.Array`` cost
    three dispatched ops per call, and a new XLA compile (36-90 ms measured here) for
    every step count not seen before (benchmarks E). One ``np.asarray`` per
    buffer is the cheapest copy measured (about 1.7 us each on CPU;
    ``jax.device_get`` of the four was about 60 us).
    """
    steps, history = result.steps, result.history
    # a concrete step count: a NumPy scalar from the eager run (the usual case, tested first), or a 0-d array
    concrete = isinstance(steps, np.generic) or (not isinstance(steps, jax.core.Tracer) and np.ndim(steps) == 0)
    if every == 0 and concrete:  # (the loss may be traced where the steps are not: under jax.grad)
        return result._replace(history=_no_history(np.dtype(jnp.result_type(result.loss))))
    if every == 0 or not concrete:
        if not isinstance(history, History):  # stacked by run_flat, called under a trace
            # (concrete inputs inside a user's jit or jax.eval_shape): the rows, untrimmed
            result = result._replace(history=History._make(list(history)))
        return result
    return result._replace(history=_trimmed(history, int(steps) // every))


def _trimmed(history: Any, n: int) -> History:
    """The first ``n`` rows of one stacked buffer from :func:`run_flat`, or of a History's three: views
    where they are at least half the buffer, else copies (a view keeps the whole buffer alive, sized by
    max_steps: a 10-step run with ``max_steps=10**7`` held 200 MB per Result)."""
    if isinstance(history, History):
        return History._make([rows_kept(np.asarray(h), n) for h in history])
    rows = rows_kept(np.asarray(history), n)
    return History(rows[0], rows[1], rows[2])  # (indexing: half the cost of iterating the rows)


def rows_kept(buffer: np.ndarray, n: int) -> np.ndarray:
    """``buffer[..., :n]``, copied where ``n`` is under half its length (see :func:`_trimmed`; fit's history too)."""
    cut = buffer[..., :n]
    return cut.copy() if 2 * n < buffer.shape[-1] else cut


_RESULT_HISTORY_AT = Result._fields.index("history")


# -- repeated calls ------------------------------------------------------------------------------
# A repeated eager call (the same loss function, options and shapes as one that ran the compiled
# loop) goes from minimize's arguments straight to the compiled run: every check and choice that
# depends only on them was made at the first call, and the value checks that remain (a finite
# x0) are minimize's. What a repeated call still costs, and where: benchmarks/RESULTS.md, E.


class Repeat:
    """What a registered repeated call runs: the compiled run (the jit chosen for its
    parameters), the solver's structure and leaves, and the history period."""

    __slots__ = ("call", "structure", "leaves", "every")

    def __init__(self, call: Any, structure: Any, leaves: list, every: int) -> None:
        self.call, self.structure, self.leaves, self.every = call, structure, leaves, every

    def __call__(self, x0: Params, args: tuple) -> Result:
        return eager_result(self.call(self.structure, self.leaves, x0, args), self.every)


# fun -> {repeat_key: Repeat}, weakly in fun
REPEATS = _cache.PerFunction(maxsize=16)


def spec(tree: Any) -> tuple:
    """``tree``'s structure and its leaves' shapes and dtypes (what a compiled program is specialised to)."""
    if type(tree) is tuple and not tree:  # args=(), the usual case
        return _EMPTY_SPEC
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    # dtype objects, not str(dtype): str() costs ~8 us a leaf on every call;
    # a jax.Array's own shape, not np.shape (a Python call of its own).
    return (treedef, tuple([
        _array_spec(x) if isinstance(x, jax.Array) else (np.shape(x), getattr(x, "dtype", type(x).__name__))
        for x in leaves
    ]))


def _array_spec(x: jax.Array) -> tuple:
    """A jax.Array's shape and dtype, and its sharding where that names a mesh (an array on a mesh's
    Explicit axes runs on the mesh's Auto view, :mod:`jaxgd._mesh`, a different call)."""
    if type(x) is _ARRAY and type(x.sharding) is NamedSharding:
        return (x.shape, x.dtype, x.sharding)
    return (x.shape, x.dtype)


_EMPTY_SPEC = (jax.tree_util.tree_structure(()), ())


def repeat_key(options: tuple, adjoint: Any, tier: Any, x0: Any, args: tuple) -> tuple[Optional[tuple], Any, bool]:
    """``(key, leaves, convert)``: the key a :class:`Repeat` of this call is kept under, or None
    where none may run it; ``x0``'s leaves; whether some are NumPy arrays (minimize converts
    them, :func:`jaxgd.core.minimize.as_params`, before the run).

    ``options``: ``(method, lr, *SOLVER_OPTIONS values)`` as given. None under a trace and for
    an ``x0`` with a leaf that is neither a strongly typed ``jax.Array`` nor a NumPy array (a
    Python number: the call then takes the whole path). The key holds the options and their
    types (``history=True`` is not ``history=1``), the x64 mode, ``x0``'s structure, shapes and
    dtypes and ``args``' (:func:`spec`); a closure ``lr`` is keyed by its code and values (a
    schedule built anew with equal numbers repeats the call). It may be unhashable (an array ``lr``): looking it up
    raises ``TypeError`` then, and the call takes the whole path (:func:`lookup`).
    """
    if _compile.tracing():
        return None, (), False
    if type(x0) is _ARRAY:  # a bare jax.Array, the usual x0: no tree to flatten (benchmarks E)
        if x0.weak_type:
            return None, (), False
        leaves, signature, convert = (x0,), _array_spec(x0), False
    else:
        leaves, treedef = jax.tree_util.tree_flatten(x0)
        shapes, convert = [], False
        for x in leaves:
            if isinstance(x, jax.Array):
                if getattr(x, "weak_type", False):  # (a typed PRNG key, an NNX model's RNG stream, has none)
                    return None, leaves, False
            elif isinstance(x, np.ndarray):
                convert = True
            else:
                return None, leaves, False
            shapes.append(_array_spec(x) if type(x) is _ARRAY else (x.shape, x.dtype))
        signature = (treedef, tuple(shapes))  # (a treedef first: never equal to a bare array's)
    options = (by_value(options[0]), by_value(options[1]), *options[2:])  # (by code and values, as get_plan keys)
    key = (options, tuple(map(type, options)), adjoint, tier, jax.config.jax_enable_x64, signature, spec(args),
           jax.sharding.get_abstract_mesh())  # (the mesh jax.set_mesh put in context: jaxgd._mesh)
    return key, leaves, convert


try:  # the concrete jax.Array class (not type(jnp.zeros(())): no backend at import)
    from jax._src.array import ArrayImpl as _ARRAY
except ImportError:  # pragma: no cover - another JAX: every x0 takes the tree path
    _ARRAY = None


def lookup(fun: Any, key: Optional[tuple]) -> Optional[Repeat]:
    """The :class:`Repeat` registered for ``fun`` under ``key`` (:func:`repeat_key`), or None
    (also for a key that cannot be hashed)."""
    if key is None:
        return None
    try:
        return REPEATS.lookup(fun, key)
    except TypeError:  # an unhashable option
        return None


def register(fun: Any, key: Optional[tuple], make: Any) -> None:
    """Keep ``make()`` as the :class:`Repeat` of ``fun`` under ``key`` (nothing for None or an unhashable key)."""
    if key is None:
        return
    try:
        hash(key)
    except TypeError:
        return
    REPEATS.put(fun, key, make())
