"""The solver: direction x step size x proximal step inside one jitted loop.

:class:`Solver` is a small frozen pytree: its numeric hyperparameters (the
step-size rule's numbers, tolerances, penalty weights, clip norm) are leaves,
traced by ``jit`` and sweepable by ``vmap``; the loss function, the direction
and the loop's shape (``max_steps``, history, progress) are static. ``init``,
``step`` and ``run`` are pure and jittable. :func:`jaxgd.minimize` validates
its inputs on the host and calls ``run`` under a cached ``jax.jit``.

Each step (DESIGN.md):

.. math::
   d_k = \\mathrm{direction}(\\mathrm{clip}(g_k)),\\quad
   \\alpha_k = \\mathrm{rule}(k, \\ldots),\\quad
   \\theta_{k+1} = \\mathrm{prox}_{\\alpha_k h}(\\theta_k + \\alpha_k d_k)

followed by one ``value_and_grad`` at :math:`\\theta_{k+1}` (a line search
hands back its own last evaluation instead), the termination tests and a
non-finite guard that keeps the last finite iterate.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..checkpoint import format as _checkpoint
from . import cache as _cache
from . import compile as _compile
from . import driver as _driver
from . import packing as _packing
from . import options as _options
from .options import default as _D
from .options import (  # noqa: F401  (the messages, re-exported where tests and users found them)
    BAD_CLIP, BAD_FLAG_EVERY, BAD_LR, BAD_LR_TYPE, BAD_MAX_STEPS, BAD_PENALTY, BAD_SCHEDULE, BAD_TOL, NOT_CALLABLE,
)
from . import update as _update
from . import x0_check as _x0_check
from ..directions import lbfgsb as _lbfgsb  # L-BFGS-B hook
from ..directions import first_order as _first_order
from ..directions import registry as _registry
from .update import clip_by_global_norm  # noqa: F401  (re-exported: older imports)

from . import probe as _probe
from . import stall as _stall  # issue 13 hook
from . import loss_check as _loss_check

from .. import _tree, _validate
from ..interop import models as _models
from . import stepsize as _stepsize
from ..prox.operators import checked_weights as _prox_weights
from ..prox.operators import fista_extrapolate, fista_init, fista_restart, l2_penalty
from .status import History, Result, Status, tolerance_status
from .._types import ArrayLike, Grads, LossFn, Params, PyTree

BAD_RESUME_TYPE = "{name} must be a jaxgd.Result (from minimize, Solver.run or load_checkpoint), got {kind}"
BAD_RESUME_HISTORY = "{name}.history.{field} must be a 1-d array of dtype {expected}, got shape {shape} dtype {dtype}"
BAD_STATE_TYPE = "state must be a jaxgd.SolverState (from Solver.init or Solver.step), got {kind}{hint}"
STATE_IS_PARAMS = "; to start from parameters x0, step from solver.init(x0)"
STATE_IS_RESULT = "; pass result.state, or continue the run with solver.resume(result)"
X0_IS_A_STATE = "x0 is a jaxgd.{kind}, not parameters: pass {name}.params to start at its point{cont}"
STATE_MADE_BY = "{name}.direction_state is {found}, {origin} (this solver's method {method!r} builds {expected})"
STATE_FROM_ELSEWHERE = "{name} comes from a solver of other options"
STATE_BATCHED = ("{name} is a batch of states (its scalar fields have a leading axis, as jax.vmap(solver.init) "
                 "makes them): step it with jax.vmap(solver.step)")
STATE_AUX = ("{name} differs from what this solver builds in its aux only: aux is the loss's auxiliary output at the "
             "state's point, computed with that step's args, and its shape follows theirs (a smaller last batch?); "
             "step with args of the shapes the state was made with, or return an aux whose shape does not depend "
             "on them")
SWITCH_HINT = ": to switch solvers, start this one from the old run's parameters, {how}"
LOSS_GONE = (
    "this Solver's loss function no longer exists: a Solver's tree holds its loss weakly (so that JAX's caches "
    "do not keep it alive), and one that came out of jax.jit/jax.vmap (Solver(lambda ..., ...) built inside "
    "the transformed function) outlived a loss defined there; define the loss outside the transformation "
    "(and keep a reference to it), or build the Solver outside and pass its hyperparameters in"
)
BAD_RESET = "method={name!r}: a Direction's reset(state) must return a pair (state, had_memory), got {got}"


class SolverState(NamedTuple):
    """The loop carry: everything needed to take the next step (a pytree).

    ``value`` is the smooth objective (loss plus any L2 penalty) at
    ``params``; ``grad`` its gradient; ``grad_norm`` the stationarity measure;
    ``alpha`` the last step size; ``status`` a :class:`Status` code.
    """

    params: Params
    value: jax.Array
    grad: Grads
    aux: Any
    grad_norm: jax.Array
    count: jax.Array
    direction_state: PyTree
    rule_state: PyTree
    status: jax.Array
    nfev: jax.Array
    ngev: jax.Array
    alpha: jax.Array
    accel: PyTree = ()  # FISTA's (t, previous iterate) when accelerated
    # stall.Window when the rule tracks no stalls itself; for a quasi-Newton direction with a restart
    # under a rule that does (Moré-Thuente), the flag stall.adjust_status hands to the next step
    stall: PyTree = ()


def _eager(solver: Any, tree: Any) -> bool:
    """Whether :meth:`Solver.step` / :meth:`Solver.init` run at the top level on concrete arrays (no trace
    active, no tracer in the solver, every leaf of ``tree`` an array): then they call their compiled versions
    (one compile per loss function and structure, as ``jax.jit(solver.step)``; arguments that are not
    arrays, a Python number a loss may use as a shape, keep the eager path)."""
    if _compile.tracing() or not solver.is_concrete():
        return False
    return all(isinstance(v, (jax.Array, np.ndarray)) for v in jax.tree_util.tree_leaves(tree))


def _step_compiled(solver: Any, state: Any, *args: Any) -> Any:
    return solver._advance(state, args, running_known=False)


def _init_compiled(solver: Any, params: Any, *args: Any) -> Any:
    return solver._first_state(params, args)


# the hyperparameters Solver.traced_valid tests where they are traced
_TRACED_CHECKS = ("gtol", "ftol", "xtol", "l2", "clip", "rule")


@_options.document
@_tree.pytree_class(
    data=("rule", "prox", "gtol", "ftol", "xtol", "l2", "clip", "limit"),
    meta=("fun_ref", "direction", "max_steps", "gtol_norm", "history_every", "progress_every", "has_aux", "accelerated", "unroll",
          "checked"),
)
class Solver:
    """A minimiser in pieces: ``init``, ``step`` and ``run``, pure and jittable.

    ``Solver(fun, method, lr, ...)`` takes the same options as
    :func:`jaxgd.minimize` and validates them on construction. The instance is
    a pytree: ``jax.jit(lambda s, x: s.run(x))(solver, x0)`` compiles once
    per structure, and new hyperparameter values re-use the compiled loop.
    ``start`` and ``resume(result, stop=...)`` run the same loop in chunks
    and continue a saved :class:`jaxgd.Result` bit for bit (see
    :func:`jaxgd.save_checkpoint`).

    Args:
      fun: ``fun(params, *args) -> scalar`` (``(scalar, aux)`` with ``has_aux``).
      {options:method,lr,max_steps,gtol,gtol_norm,ftol,xtol,l1,l2,bounds,accelerated,clip,history,progress,has_aux,unroll}

    Raises:
      TypeError: ``fun`` not callable, ``method`` or ``lr`` of the wrong kind.
      ValueError: a bad value (names the argument and what was expected);
        ``bounds`` not a pair, ``lower > upper``, or (in ``init``/``run``)
        a bound whose pytree structure does not fit ``x0``.
    """

    def __init__(
        self,
        fun: LossFn,
        method: Any = _D("method"),
        lr: Any = _D("lr"),
        *,
        max_steps: int = _D("max_steps"),
        gtol: ArrayLike = _D("gtol"),
        gtol_norm: Optional[float] = _D("gtol_norm"),
        ftol: ArrayLike = _D("ftol"),
        xtol: ArrayLike = _D("xtol"),
        l1: ArrayLike = _D("l1"),
        l2: ArrayLike = _D("l2"),
        clip: Optional[ArrayLike] = _D("clip"),
        history: bool | int = _D("history"),
        progress: bool | int = _D("progress"),
        has_aux: bool = _D("has_aux"),
        bounds: Any = _D("bounds"),
        accelerated: bool = _D("accelerated"),
        unroll: Optional[int] = _D("unroll"),
        **unknown: Any,
    ) -> None:
        _options.check_keywords("Solver", unknown, _SOLVER_KEYWORDS)
        fields = _options.solver_fields(
            fun, method, lr, max_steps=max_steps, gtol=gtol, ftol=ftol, xtol=xtol, l1=l1, l2=l2, clip=clip,
            history=history, progress=progress, has_aux=has_aux, bounds=bounds, accelerated=accelerated,
            unroll=unroll, gtol_norm=gtol_norm,
        )
        for k, v in fields.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "limit", None)
        # (static) every hyperparameter was concrete, so the host checked it: the run tests none (traced_valid)
        object.__setattr__(self, "checked", _tree.is_concrete(tuple(fields[k] for k in _TRACED_CHECKS)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Solver is immutable; build a new one")

    @property
    def fun(self) -> LossFn:
        """The loss function (the tree definition holds it weakly: a solver does not keep its loss alive)."""
        fun = self.__dict__.get("_fun")
        return self.fun_ref() if fun is None else fun

    def _unflattened(self) -> None:  # keep the function alive as long as this copy
        object.__setattr__(self, "_fun", self.fun_ref())

    def with_fun(self, fun: LossFn, strong: bool = True) -> "Solver":
        """The same validated solver with another loss function (held weakly
        only with ``strong=False``, for caches keyed weakly on ``fun``)."""
        if not callable(fun):
            raise TypeError(NOT_CALLABLE.format(kind=type(fun).__name__))
        new = object.__new__(Solver)
        d = new.__dict__
        d.update(self.__dict__)
        d.pop("step", None)  # the bound step belongs to self (bound_once)
        d.pop("_bucketed", None)  # holds self's function
        d.pop("_checked_states", None)  # step's verdicts: another function (or rule, with_rule) builds another state
        d["fun_ref"], d["_fun"] = _tree.FunRef(fun), (fun if strong else None)
        return new

    def with_rule(self, rule: Any) -> "Solver":
        """The same validated solver with another step-size rule (a schedule's closure lifted into
        leaves, :mod:`jaxgd.core.minimize_run`)."""
        new = self.with_fun(self.fun)
        new.__dict__["rule"] = rule
        new.__dict__.pop("_concrete", None)  # the new rule's leaves may be tracers
        return new

    @property
    def step_limit(self) -> Any:
        """The step budget the loop stops at: ``max_steps``, or the traced
        ``limit`` of a :meth:`bucketed` solver."""
        return self.max_steps if self.limit is None else self.limit

    def bucketed(self) -> "Solver":
        """The same solver compiled for a bucket of step counts (issue 14 item 4).

        ``max_steps`` (static: it sizes the history buffers) becomes the next
        power of two (at least ``STEP_BUCKET_MIN``) and the actual budget a
        traced ``limit``, so every ``max_steps`` in the bucket re-uses one
        compiled loop; the extra history rows stay NaN (``minimize`` trims
        the history to the steps taken). The iterates are those of the
        unbucketed solver, bit for bit: the loop stops at ``limit``.
        """
        new = self.__dict__.get("_bucketed")  # made once per solver (minimize re-uses cached solvers)
        if new is None:
            new = object.__new__(Solver)
            d = new.__dict__
            d.update(self.__dict__)
            d.pop("step", None)  # the bound step belongs to self (bound_once)
            d["max_steps"], d["limit"] = _driver.step_bucket(self.max_steps), np.int32(self.max_steps)
            self.__dict__["_bucketed"] = new
        return new

    def is_concrete(self) -> bool:
        """True when no hyperparameter is a tracer (remembered: a Solver is immutable)."""
        concrete = self.__dict__.get("_concrete")
        if concrete is None:
            concrete = self.__dict__["_concrete"] = _tree.is_concrete(self)
        return concrete

    def __repr__(self) -> str:
        """The loss, method, step size and every option off its default (two solvers of other ``l1``, ``bounds``
        or tolerances printed alike; a user review, session 58)."""
        schedule = getattr(self.rule, "schedule", None)
        step = f", lr={_shown(schedule)}" if isinstance(self.rule, _stepsize.ScheduleRule) else f", rule={self.rule!r}"
        method = repr(self.direction.name)
        if getattr(self.direction.update, "optax_transformation", None) is not None:  # (its own learning rate)
            method, step = "<an optax transformation>", "" if step == ", lr=1.0" else step
        options = {"max_steps": self.max_steps, "gtol": self.gtol if _shown(self.gtol) != "1e-06" else None,
                   "ftol": self.ftol, "xtol": self.xtol, "l1": self.prox.l1, "l2": self.l2, "clip": self.clip,
                   "bounds": (self.prox.lower, self.prox.upper) if self.prox.bounded else None,
                   "accelerated": self.accelerated or None}
        shown = "".join(f", {k}={_shown(v)}" for k, v in options.items() if v is not None)
        return f"Solver(fun={getattr(self.fun, '__name__', self.fun)!r}, method={method}{step}{shown})"

    def check_params(self, params: Params) -> None:
        """Raise ``ValueError`` when ``bounds``, ``l1`` or ``l2`` (as pytrees) do not fit ``params``,
        or a concrete ``lr``, ``clip``, ``l1``, ``l2`` or bound overflows a leaf's dtype, or a number of the
        step-size rule (a search's ``initial``, Polyak's ``f_star``, a schedule's) overflows the rule's dtype."""
        self.prox.check(params)
        if self.l2 is not None:
            _prox_weights(self.l2, params, "l2")
        n = len(_tree.leaves(params))
        lr = getattr(self.rule, "schedule", None)  # a constant lr (ScheduleRule of a number)
        for name, value in (("clip", self.clip), ("lr", lr if _tree.is_scalar(lr) else None)):
            _validate.in_dtypes(name, [value] * n, params)
        _check_rule_numbers(self.rule, params)

    # -- the objective ----------------------------------------------------
    def objective(self, params: Params, *args: Any) -> tuple[jax.Array, Any]:
        """``(smooth objective, aux)``: the loss plus the L2 penalty when it is one.

        A float64 loss of float32 parameters (x64 on, a float32 ``x0`` or model, float64 data)
        is taken in float32: the steps cannot resolve more than float32, and the precision and
        stall rules (:mod:`jaxgd.core.stall`) read the precision from the loss's dtype (without the
        cast a float32 run at its answer went on to ``max_steps``, or ended ``LINESEARCH_FAILED``,
        as a float64 one). A float32 loss of half-precision parameters stays float32 (mixed
        precision: the loss is wider on purpose)."""
        out = self.fun(params, *args)
        if not self.has_aux and isinstance(out, (tuple, list)):  # (trace time; jnp.asarray of a pair said "shape (2,)")
            raise TypeError(_loss_check.tuple_message(out))
        loss, aux = out if self.has_aux else (out, None)
        loss = jnp.asarray(loss)
        if loss.dtype == jnp.float64 and jnp.result_type(*_tree.leaves(params)) == jnp.float32:  # (float leaves: check_params)
            loss = loss.astype(jnp.float32)
        if self.l2 is not None and not self.direction.decoupled_l2:
            loss = loss + l2_penalty(self.l2, params).astype(loss.dtype)
        return loss, aux

    def value_and_grad(self, params: Params, *args: Any) -> tuple[jax.Array, Grads, Any]:
        (value, aux), grad = jax.value_and_grad(self.objective, has_aux=True)(params, *args)
        return value, grad, aux

    def loss(self, params: Params, value: jax.Array) -> jax.Array:
        """The reported loss: smooth value plus the proximal term (``l1``'s; a box adds nothing, and
        with bounds alone the loss is the value itself: a NumPy scalar in an eager ``Result``, as without)."""
        if self.prox.l1 is None:
            return value
        return value + self.prox.value(params).astype(value.dtype)

    def _measure(self, params: Params, value: jax.Array, grad: Grads, safe: bool = True) -> tuple[jax.Array, jax.Array]:
        """``(stationarity measure, all finite)`` at a new iterate, in few kernels.

        Without a proximal term one fused pass over ``grad`` and ``params``
        (:func:`jaxgd._tree.sq_norm_checked`) gives the gradient norm, without
        overflow, and proves every element of both finite; no branch. On XLA:CPU
        every reduction and every conditional is a kernel or more per step, and
        the kernel count decides whether a loop body runs sequentially or on the
        thread pool: replacing three reductions (norm, finiteness of grad and of
        params) by one took Rosenbrock 10-D, history on, from 1.49 to 0.069 us a
        step; dropping the ``lax.cond`` that took an exact branch where the
        squared norm overflowed made GD float32 steps 0.86-0.96x as long at
        16-100-D and its loop one kernel up to 8 parameters with history on (9
        off), 4-7x faster there (benchmarks/RESULTS.md, session 26).
        ``safe=False`` (a line search's trial, tested against ``gtol`` only)
        takes ``sqrt(sum(g*g + 0*p))`` alone: a squared norm that overflowed
        reads Inf there, not below ``gtol``.
        """
        if self.prox.active:
            gnorm = self.prox.stationarity(params, grad, self.gtol_norm).astype(value.dtype)
            return gnorm, jnp.isfinite(value) & _tree.all_finite(grad) & _tree.all_finite(params)
        if self.gtol_norm != 2:  # the infinity norm: one reduction, NaN unless grad and params are finite
            top = _tree.max_abs_nan_if(grad, params)
            return top.astype(value.dtype), jnp.isfinite(value) & jnp.isfinite(top)
        if not safe:
            sq = _tree.sq_norm_nan_if(grad, params)
            return jnp.sqrt(sq).astype(value.dtype), jnp.isfinite(value) & jnp.isfinite(sq)
        gnorm, finite = _tree.sq_norm_checked(grad, params)
        return gnorm.astype(value.dtype), jnp.isfinite(value) & finite

    def _windowed(self, dtype: Any) -> bool:
        """The solver keeps a stall window (jaxgd.core.stall) for a run in ``dtype``: the rule
        tracks no stalls, ``dtype`` is narrower than float64, and it is not L-BFGS-B."""
        return _stall.tracks_window(self.rule, dtype) and not isinstance(self.rule, _lbfgsb.LbfgsbSearch)

    def _grid(self, info: Any, had_memory: Any) -> Any:
        """The grid rule's evidence (:func:`jaxgd.core.stall.adjust_status`'s ``grid``): the search's
        ``StepInfo.unseen`` where it searched along ``-g``: a direction with a restart and no memory
        now, or steepest descent (``gd``) without a proximal term; None where there is none
        (float64 searches, and rules that do not record it)."""
        unseen = getattr(info, "unseen", None)
        if unseen is None:
            return None
        if had_memory is not None:
            return unseen & ~had_memory
        return unseen if self.direction is _first_order.gd() and not self.prox.active else None

    def _float32_objective(self, params: Params, args: tuple) -> bool:
        """The objective of float32 parameters traces to a float32 value (trace time only): a loss
        written with ``jax.numpy`` promotes a half-precision one's data; one of fixed-dtype ``lax`` calls
        (a TypeError), a check of its input's dtype or its own casts to 16 bits does not, and gets no float32 check
        (:func:`jaxgd.core.stall.certifies`)."""
        p32 = _tree.tmap(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.float32), params)
        try:
            out = jax.eval_shape(lambda p: self.objective(p, *args)[0], p32)
        except Exception:  # noqa: BLE001 (whatever the loss raises at another dtype: it gets no check)
            return False
        return out.dtype == jnp.float32

    def _vouches(self) -> bool:
        """The state carries :func:`jaxgd.core.stall.adjust_status`'s flag from a failed quasi-Newton
        search to the restart's retry along -g: a quasi-Newton direction with a ``reset``, under
        a rule that tracks its stalls (and records its unit trials: Moré-Thuente), not L-BFGS-B."""
        return (self.direction.quasi_newton and self.direction.reset is not None and hasattr(self.rule, "stalled")
                and not isinstance(self.rule, _lbfgsb.LbfgsbSearch))

    # -- the pieces -------------------------------------------------------
    def init(self, x0: Params, *args: Any) -> SolverState:
        """Evaluate ``x0`` (projected into ``bounds``) and build the first state (one ``value_and_grad``;
        its stationarity measure and finiteness test are every step's, :meth:`_measure`). Called at the top
        level on arrays, the evaluation runs compiled, as :meth:`step` does (the first gradient rounded as
        ``minimize``'s loop rounds it).

        Raises:
          TypeError: a leaf of ``x0`` that is not a real floating array (as ``minimize``); a
            :class:`SolverState` or :class:`jaxgd.Result` as ``x0`` (pass its ``params``); a
            Flax NNX model holding state besides ``nnx.Param``, or an Equinox module with leaves
            that are not float arrays (``minimize`` and ``fit`` split a model; ``Solver`` takes
            the trained arrays); a loss that is not a real floating scalar (``minimize``'s check,
            through ``jax.eval_shape``: a tuple without ``has_aux``, no pair with it, another shape,
            an integer dtype), or a ``fun`` whose tracing failed (named with the arguments' shapes).
          ValueError: an empty ``x0`` or a leaf of size 0; a concrete leaf with NaN or Inf, or past the range of
            the dtype JAX runs it in (as ``minimize``); ``bounds``, ``l1`` or ``l2`` pytrees
            that do not fit ``x0``.
        """
        self._check_fun_alive()
        check_x0_not_a_run(
            x0, ", or continue it with solver.step(state)", ", or continue it with solver.resume(result)")
        _models.check_solver_x0(x0)  # (a model minimize and fit would split)
        leaves, treedef, dtypes = _validate.params("x0", x0)  # minimize's policy: non-empty, real float arrays
        self.check_params(x0)  # before anything runs on the device
        # as minimize: strongly typed; a concrete leaf not finite, or past its dtype's range, refused (it ran, and a
        # NaN x0 ended NONFINITE after compiling the run)
        params = treedef.unflatten([_x0_check.checked_leaf(v, d, "x0", x0, i)
                                    for i, (v, d) in enumerate(zip(leaves, dtypes))])
        # minimize's loss check (cached per input structure), on x0's shapes and dtypes as minimize converts them:
        # before jnp.asarray, which compiles a small program for a Python number
        like = [jax.ShapeDtypeStruct(np.shape(v), jax.dtypes.canonicalize_dtype(d)) for v, d in zip(leaves, dtypes)]
        _loss_check.check_loss(self.fun, treedef.unflatten(like), args, self.has_aux, x0, static_args=True)
        if _eager(self, (params, args)):  # (op by op, every operation compiled a program of its own)
            return _cache.jit_per_function(self.fun, "Solver.init", _init_compiled)(self, params, *args)
        return self._first_state(params, args)

    def _first_state(self, params: Params, args: tuple) -> SolverState:
        """:meth:`init`'s state at ``params`` (validated, as arrays)."""
        params, valid = self.first_point(params)
        value, grad, aux = self.value_and_grad(params, *args)
        gnorm, finite = self._measure(params, value, grad)
        status = jnp.where(
            ~finite, Status.NONFINITE, jnp.where(gnorm <= self.gtol, Status.GTOL, Status.RUNNING)
        ).astype(jnp.int32)
        one = jnp.asarray(1, jnp.int32)
        state = SolverState(
            params=params,
            value=value,
            grad=grad,
            aux=aux,
            grad_norm=gnorm,
            count=jnp.asarray(0, jnp.int32),
            direction_state=self.direction.init(params),
            rule_state=self.rule.init(params, value, grad),
            status=status,
            nfev=one,
            ngev=one,
            alpha=jnp.zeros((), value.dtype),
            accel=fista_init(params, value.dtype) if self.accelerated else (),
            stall=(_stall.window_init(self.loss(params, value), gnorm) if self._windowed(value.dtype)
                   else jnp.asarray(_stall.VOUCH_NONE, value.dtype) if self._vouches() else ()),
        )
        if isinstance(self.rule, _lbfgsb.LbfgsbSearch):  # L-BFGS-B hook
            state = _lbfgsb.init(self, state)
        if valid is not None:  # a traced argument out of range: the run stops before its first step
            state = state._replace(status=jnp.where(valid, state.status, Status.INVALID_ARGUMENT).astype(jnp.int32))
        return state

    def first_point(self, params: Params) -> tuple[Params, Optional[jax.Array]]:
        """A run's first point and whether its traced arguments are in range: ``Prox.start`` (``params``
        projected into the box, or left as given where a traced bound or ``l1`` is out of range) and
        :meth:`traced_valid`, joined (``None``: everything was checked on the host). :meth:`init` and
        fit's first state: ``Status.INVALID_ARGUMENT`` where the verdict is False."""
        params, valid = self.prox.start(params)
        return params, _tree.all_of(valid, self.traced_valid())

    def traced_valid(self) -> Optional[jax.Array]:
        """Whether the hyperparameters the host could not check (tracers, under ``jit``/``vmap``) are in
        range: a constant ``lr`` > 0 and finite, ``clip`` > 0, ``l2`` >= 0, ``gtol``/``ftol``/``xtol`` >= 0
        (NaN is out of range). ``None`` where every one is concrete (the program gets no test); the bounds
        and ``l1`` are :meth:`jaxgd.prox.operators.Prox.traced_valid`'s. Read by :meth:`init` and fit's
        first state: ``Status.INVALID_ARGUMENT``, no step (a lane of ``jax.vmap`` with ``lr=-0.1`` climbed
        to 1.4e10 and ended ``MAX_STEPS``)."""
        if self.checked:
            return None
        return _update.traced_valid(self, (self.gtol, self.ftol, self.xtol))

    @_tree.bound_once
    def step(self, state: SolverState, *args: Any) -> SolverState:
        """One step from ``state``; a non-finite or failed step is not taken,
        and a state that has stopped (any status but RUNNING, or ``count`` at
        ``max_steps``, which then reads ``MAX_STEPS``: the step that reaches
        ``max_steps`` leaves it ``RUNNING``, the next call marks it) is returned
        unchanged. A stopped state stays stopped whatever this solver's
        tolerances or ``max_steps``: :meth:`resume` reopens a stop they no longer
        grant; in a loop of your own, ``state._replace(status=jnp.int32(0))``.

        A step not taken keeps the parameters, loss, gradient, step count and the
        step-size rule's state (the evaluations it spent are counted in ``nfev``
        and ``ngev``); the direction's state advances anyway (a quasi-Newton
        memory records the current point, whose update depends on that point
        only; an adaptive method's moments and count have taken in the
        gradient once, and a retry would take it in again: ``as_optax`` keeps
        them, as ``optax.apply_if_finite`` does, but a stopped run here never
        retries), so that rolling back never copies a quasi-Newton
        memory (L-BFGS, extended Rosenbrock 1,000-D: a run 13 % faster by median, 32 % by
        minimum; benchmarks/RESULTS.md). A direction with a ``reset`` (``lbfgs``, ``bfgs``, ``cg``)
        turns a failed line search with curvature information in its state into a reset state
        and a running one: the next step retries from the same point (L-BFGS-B's restart).

        ``solver.step`` is the same object at every access, so
        ``jax.jit(solver.step)`` written inside a Python loop compiles once. Called at the top level
        on arrays (no ``jax.jit`` of yours), it runs its own compiled step, one compile per loss
        function and structure of ``(state, args)`` (XLA:CPU's faster-compiling emitters for a small
        problem): a Python loop of steps costs microseconds a step after the first (op by op, an
        ``lbfgs`` or ``bfgs`` step compiled its line search's loops anew every call: 2.7 s a step
        at 4-D). ``args`` holding a Python number (a shape, a class count) keep the eager path.

        ``args`` are the loss's extra arguments for this step's evaluations: the step moves
        along the direction from ``state.grad``, the gradient :meth:`init` or the previous
        step evaluated with *its* ``args``, and evaluates the new point with these. A
        new minibatch each call is therefore SGD one batch late; minibatches are
        :func:`jaxgd.fit`'s job (or :func:`jaxgd.as_optax` in your loop).

        The returned state has the same tree structure, shapes and dtypes as
        ``state`` (it is a ``while_loop`` carry).

        Raises:
          TypeError: ``state`` is not a :class:`SolverState` (parameters: step from
            :meth:`init`'s state; a :class:`jaxgd.Result`: its ``state``, or :meth:`resume`).
          TreeMismatchError: ``state`` differs in structure, shapes or dtypes from the state
            this solver builds at ``state.params`` (:meth:`check_resumable`'s test: a state of
            another method or other options); the message names the method whose state it holds
            where its direction state tells, and how to switch: ``solver.init(state.params)``.
            Checked before anything is traced, once per structure, shapes and dtypes of ``(state, args)``.
        """
        self._check_step_state(state, args)
        if _eager(self, (state, args)):  # (op by op, every call compiled the line search's loops anew)
            return _cache.jit_per_function(self.fun, "Solver.step", _step_compiled)(self, state, *args)
        return self._advance(state, args, running_known=False)

    def _check_fun_alive(self) -> None:
        """Raise where the loss this solver's tree definition held weakly is gone (:data:`LOSS_GONE`)."""
        if self.fun is None:
            raise TypeError(LOSS_GONE)

    def _check_step_state(self, state: Any, args: tuple) -> None:
        """:meth:`step`'s test of its ``state`` (:meth:`_check_state`), remembered per tree structure, shapes
        and dtypes of ``(state, args)``: a repeated call pays a flatten and a set lookup (about 12 us; an eager
        step costs 10 ms, a jitted one runs this at trace time only)."""
        self._check_fun_alive()
        if not isinstance(state, SolverState):
            hint = STATE_IS_RESULT if isinstance(state, Result) else STATE_IS_PARAMS
            raise TypeError(BAD_STATE_TYPE.format(kind=type(state).__name__, hint=hint))
        leaves, treedef = jax.tree_util.tree_flatten((state, args))
        key = (treedef, tuple(_signature_of(v) for v in leaves))  # (shapes too: an lbfgs memory
        seen = self.__dict__.setdefault("_checked_states", set())  # of another size passed after a good state)
        try:
            if key in seen:
                return
        except TypeError:  # (an unhashable static part in args' tree: checked every time)
            key = None
        self._check_state(state, args, "state", "solver.init(state.params)")
        if key is not None:
            if len(seen) >= 64:
                seen.clear()
            seen.add(key)

    @staticmethod
    def _only_running(running: jax.Array, running_known: bool) -> Any:
        """The step's searches run only where the state runs (:func:`jaxgd.core.packing.only_while`): a
        stopped lane of ``jax.vmap`` (or a masked step of a block) evaluates nothing; unchanged where the
        caller guarantees a running state."""
        return contextlib.nullcontext() if running_known else _packing.only_while(running)

    def _advance(self, state: SolverState, args: tuple, running_known: bool) -> SolverState:
        """:meth:`step`; ``running_known=True`` when the caller guarantees a
        running state (status RUNNING, ``count`` below the step limit: the
        driver's loop of one step per iteration), which drops the select that
        keeps a stopped state's direction state in place."""
        if isinstance(self.rule, _lbfgsb.LbfgsbSearch):  # L-BFGS-B hook
            running = (state.status == Status.RUNNING) & (state.count < self.step_limit)
            stopped = jnp.where(state.status == Status.RUNNING, Status.MAX_STEPS, state.status).astype(jnp.int32)
            with self._only_running(running, running_known):
                moved = _lbfgsb.step(self, state, *args)
            return _tree.where(running, moved, state._replace(status=stopped))
        params, value, grad = state.params, state.value, state.grad
        accel, extra = state.accel, jnp.asarray(0, jnp.int32)
        # A state that has stopped (a test fired, max_steps reached) stays put.
        running = (state.status == Status.RUNNING) & (state.count < self.step_limit)
        if self.accelerated:  # FISTA: step from y_k = x_k + beta (x_k - x_{k-1})
            params, beta, accel = fista_extrapolate(state.accel, params, self.prox.project)
            value, grad, _ = lax.cond(
                beta > 0, lambda: self.value_and_grad(params, *args), lambda: (value, grad, state.aux)
            )
            value, grad = jnp.asarray(value).astype(state.value.dtype), _tree.cast_like(grad, state.grad)
            extra = (beta > 0).astype(jnp.int32)
        value_fn = lambda p: self.objective(p, *args)[0]  # noqa: E731
        ustate = _update.UpdateState(state.count, state.direction_state, state.rule_state)
        with self._only_running(running, running_known):
            trial, ustate, alpha, info = _update.update(
                self, grad, ustate, params, value=value, value_fn=value_fn,
                value_and_grad=lambda p: self.value_and_grad(p, *args),
                converged=lambda t: self._measure(t.params, jnp.asarray(t.value).astype(value.dtype), t.grad, False)[0] <= self.gtol,
            )
        dstate, rstate = ustate.direction_state, ustate.rule_state
        alpha = jnp.asarray(alpha).astype(value.dtype)
        new_value = jnp.asarray(trial.value).astype(value.dtype)
        new_grad = _tree.cast_like(trial.grad, grad)
        new_params = _tree.cast_like(trial.params, params)
        if self.accelerated:  # (params is y_k here)
            accel = fista_restart(accel, params, new_params, state.params)
        gnorm, finite = self._measure(new_params, new_value, new_grad)
        failed = jnp.asarray(info.failed)
        accept = _tree.shared(finite & ~failed & running, params)  # (not recomputed in each leaf's select)
        status = jnp.where(gnorm <= self.gtol, Status.GTOL, Status.RUNNING)
        if self.ftol is not None or self.xtol is not None:
            f_old, f_new = (self.loss(state.params, state.value), self.loss(new_params, new_value)) if (
                self.ftol is not None) else (None, None)
            status = tolerance_status(status, self.ftol, self.xtol, f_old, f_new,
                                      lambda: _tree.norm(_tree.sub(new_params, state.params)), alpha, state.count == 0)
        status = jnp.where(failed, Status.LINESEARCH_FAILED, jnp.where(~finite, Status.NONFINITE, status))
        # -- issue 13 hook (jaxgd/core/stall.py): precision-limited convergence and stalls --
        window = _stall.window_update(state.stall, self.loss(new_params, new_value), gnorm) if self._windowed(value.dtype) else None
        fresh, had_memory = self._reset(dstate) if self.direction.reset is not None else (None, None)
        model = None  # a quasi-Newton model's test (core/stall.py), where the rule recorded its unit trial
        if had_memory is not None and info.unit_sq_grad is not None and self._vouches():
            model = (jnp.asarray(info.slope).astype(value.dtype), had_memory, info.unit_sq_grad, grad,
                     jnp.asarray(info.unit_slope).astype(value.dtype), jnp.asarray(info.located).astype(value.dtype),
                     jnp.asarray(0 if info.noise is None else info.noise).astype(value.dtype), state.stall)
        # the grid rule (float32 searches record StepInfo.unseen): a search along -g (no memory, or gd)
        grid = self._grid(info, had_memory)
        probe = None  # a probe along -g before a window rule's PRECISION (jaxgd.core.stall.probes)
        stall_verdict = _stall.probes_stall(self.direction, self.rule, value.dtype, self.prox.active)  # (cg)
        # (f, g) for the probes and the 16-bit check, traced only where one is called
        value_and_grad = lambda p: self.value_and_grad(p, *args)[:2]  # noqa: E731
        # (called in adjust_status's rare branch, with the point it tests: the gradient is picked there too)
        along_g = lambda due, at, f: _probe.values_only(  # noqa: E731
            _probe.probe_descent(value_fn, at, f, _tree.where(failed, grad, new_grad), due & running))
        retry = None  # (float64 cg) a failed search along -g is a verdict too (jaxgd.core.stall.probes_retry)
        if window is not None and _stall.probes(self.rule, value.dtype, self.prox.active, info.failed):
            probe = along_g
        elif _stall.probes_retry(self.direction, self.rule, value.dtype, self.prox.active):
            retry = ~had_memory
            noise = jnp.asarray(0 if info.noise is None else info.noise).astype(value.dtype)
            probe = lambda due, at, f: _probe.retry_verdict(  # noqa: E731
                value_fn, value_and_grad, at, f, grad, noise, due & running)
        elif model is not None or stall_verdict:  # a quasi-Newton verdict's probes (-x^2 g; in float32, Newton)
            up = (jnp.asarray(0 if info.noise is None else info.noise).astype(value.dtype)
                  if _stall.probes_upward(value.dtype) else None)  # (float64: the trials go up, one at an answer)
            probe = lambda due, at, f: _probe.probe_verdict(  # noqa: E731
                value_fn, value_and_grad, at, f, grad, due & running, rise=up)
        elif (_stall.probes_stop(self.rule, value.dtype, self.prox.active)
              and not isinstance(self.rule, _lbfgsb.LbfgsbSearch)):
            probe = along_g  # (16 bits: a MoreThuente stop of gd or cg)
        certify = None  # (16 bits) a stop's float32 Newton check (jaxgd.core.probe.newton_certifies)
        if (_stall.certifies(self.rule, value.dtype, self.prox.active, info.failed)
                and self._float32_objective(params, args)):
            certify = lambda due, at, f: _probe.newton_certifies(value_and_grad, at, f, due & running)  # noqa: E731
        status = _stall.adjust_status(
            self.rule, rstate, status, info.failed, (state.value, state.grad_norm, state.params),
            (new_value, gnorm, new_params), window, self.gtol, model, grid, probe, certify, stall_verdict, retry,
        )
        probed = None
        if probe is not None or certify is not None:
            status, probed = status
        if model is not None:
            status, window = status  # (the flag for the next step, carried where a window would be)
        if self.direction.reset is not None:  # L-BFGS-B's restart: a failed search with a memory retries without it
            retry = (status == Status.LINESEARCH_FAILED) & had_memory
            if model is not None:  # and so does a stall that vouched for the point (jaxgd.core.stall)
                retry = retry | ((status == Status.STALLED) & had_memory & (window != _stall.VOUCH_NONE))
            retry = _tree.shared(retry, params)
            dstate, status = _tree.where(retry, fresh, dstate), jnp.where(retry, Status.RUNNING, status)
        stopped = jnp.where(state.status == Status.RUNNING, Status.MAX_STEPS, state.status)
        status = jnp.where(running, status, stopped)
        nfev = jnp.asarray(info.nfev, jnp.int32) + extra
        if probed is not None:  # the probes' evaluations (values, gradients)
            nfev = nfev + probed[0]
        nfev = jnp.where(running, nfev, 0)
        ngev = jnp.asarray(info.ngev, jnp.int32) + extra
        if probed is not None:
            ngev = ngev + probed[1]
        spent = nfev, jnp.where(running, ngev, 0)

        candidate = SolverState(
            params=new_params,
            value=new_value,
            grad=new_grad,
            aux=trial.aux,
            grad_norm=gnorm,
            count=state.count + 1,
            direction_state=dstate,
            rule_state=rstate,
            status=state.status,
            nfev=state.nfev,
            ngev=state.ngev,
            alpha=alpha,
            accel=accel,
            stall=state.stall if window is None else window,
        )
        # The direction state is not rolled back on a step not taken (see step): only a
        # stopped state keeps its own, and in the driver's loop the state is running.
        kept = _tree.where(accept, candidate._replace(direction_state=None), state._replace(direction_state=None))
        if running_known:
            kept = kept._replace(direction_state=dstate)
        else:
            # ``running``, spelled through the step's outcome (= accept | running & ~accept): a predicate
            # known only after the step keeps XLA from merging this select into the direction's own
            # kernels, which rounded a loop of blocks differently from a loop of one step (test_blocks.py)
            live = accept | (running & (failed | ~finite))
            kept = kept._replace(direction_state=_tree.where(live, dstate, state.direction_state))
        if model is not None:  # the flag goes on whether or not the step was taken (it follows a failure);
            # a stopped state keeps its own, as the host tier's last one does
            kept = kept._replace(stall=window if running_known else jnp.where(running, window, state.stall))
        return kept._replace(
            status=status.astype(jnp.int32),
            nfev=state.nfev + spent[0],
            ngev=state.ngev + spent[1],
            alpha=jnp.where(accept, alpha, state.alpha),
        )

    # -- the loop (jaxgd.core.driver) ---------------------------------------
    def history_length(self) -> int:
        return _driver.history_length(self.max_steps, self.history_every)

    def empty_history(self, state: SolverState) -> History:
        return _driver.empty_history(self.history_length(), state.value.dtype)

    def loop(
        self,
        state: SolverState,
        history: History,
        *args: Any,
        stop: Optional[ArrayLike] = None,
        close_progress: bool = True,
    ) -> tuple[SolverState, History]:
        """Run steps until a test fires or ``state.count`` reaches ``stop``
        (``max_steps`` by default; may be traced), in one compiled loop.
        ``close_progress=False`` leaves the progress bar open for a following chunk."""
        return _driver.loop(self, state, history, *args, stop=stop, close_progress=close_progress)

    def finish(self, state: SolverState, history: History) -> Result:
        """Mark an exhausted step budget and package the :class:`Result`."""
        return _driver.finish(self, state, history)

    def run(self, x0: Params, *args: Any) -> Result:
        """``init`` then steps until a termination test fires; returns a :class:`Result`.

        Call it under ``jax.jit`` (``jax.jit(solver.run)``, compiled once per shapes), or use
        :func:`jaxgd.minimize`, which caches the compiled loop: called eagerly, every call traces
        and compiles its loops again (about 1.3 s a call for a 1,000-D ``lbfgs``), and ``init``'s first
        evaluation runs op by op, which can round otherwise than the compiled program (a float32
        ``bfgs`` on 4-D Rosenbrock: 33 steps eagerly, 32 under ``jit`` and in ``minimize``).

        Derivatives: ``run`` is a ``lax.while_loop``, so ``jax.jvp``/``jax.jacfwd`` differentiate its
        iterations as they ran (neither adjoint), and reverse mode (``jax.grad``) raises JAX's
        while-loop error. To differentiate a solution, call :func:`jaxgd.minimize` with
        ``adjoint="implicit"`` (the default under ``jax.grad``) or ``adjoint="unroll"``."""
        state = self.init(x0, *args)
        state, history = self.loop(state, self.empty_history(state), *args)
        return self.finish(state, history)

    def start(self, x0: Params, *args: Any) -> Result:
        """``init`` packaged as a :class:`Result` at step 0, ready for :meth:`resume` (under ``jax.jit``
        for the bits of the compiled run: see :meth:`run`)."""
        state = self.init(x0, *args)
        return self.finish(state, self.empty_history(state))

    def resume(self, result: Result, *args: Any, stop: Optional[ArrayLike] = None) -> Result:
        """Continue the run saved in ``result``: bit for bit the run that never stopped.

        ``result`` comes from :meth:`run`, :meth:`start`, :meth:`resume`,
        :func:`jaxgd.minimize` or :func:`jaxgd.load_checkpoint`; only its
        ``state`` and ``history`` are used (a trimmed history is padded back).
        A run that stopped at ``max_steps`` continues up to this solver's
        ``max_steps`` (raise it to extend a run); a converged one stays put
        unless this solver's tolerances no longer grant its stop (a ``GTOL``
        stop above this ``gtol``, an ``FTOL``/``XTOL`` stop with this ``ftol``/``xtol``
        off, 0), when it continues too.
        With ``stop`` (may be traced), steps end once ``state.count`` reaches
        it and the progress bar stays open: one chunk of a checkpointed run.
        The solver must be built with the same options as the saved run's
        (``max_steps`` may differ), in the same 64-bit mode, for the continuation
        to be bit for bit.

        Raises:
          TypeError: ``result`` is not a :class:`jaxgd.Result`.
          TreeMismatchError: ``result.state`` differs in structure, shapes or
            dtypes from the state this solver builds (another method, other
            parameters); the message names the differing leaves.
        """
        state = self.check_resumable(result, *args)
        state = state._replace(status=self._reopened(state))
        history = self._sized_history(result.history, state)
        state, history = self.loop(state, history, *args, stop=stop, close_progress=stop is None)
        return self.finish(state, history)

    def _reset(self, dstate: PyTree) -> tuple[PyTree, Any]:
        """The direction's ``reset(state) -> (state, had_memory)``, its contract checked at trace time (a user's
        reset returning the state alone gave "too many values to unpack")."""
        out = self.direction.reset(dstate)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(BAD_RESET.format(name=self.direction.name, got=_update._shape_of(out)))
        return out

    def _reopened(self, state: SolverState) -> jax.Array:
        """The status a resumed run continues from: ``RUNNING`` after a ``MAX_STEPS`` stop, and after a
        convergence stop this solver's tolerances no longer grant (a ``GTOL`` stop whose gradient measure
        exceeds this ``gtol``; an ``FTOL``/``XTOL`` stop where this solver's ``ftol``/``xtol`` is None:
        a run converged at ``gtol=1e-2`` resumed with ``gtol=1e-6`` came back a ``GTOL`` success at
        ``|g|`` = 5e-3); any other status as it is (the same options: bit for bit the run that never stopped)."""
        status = state.status
        reopen = (status == Status.MAX_STEPS) | ((status == Status.GTOL) & (state.grad_norm > self.gtol))
        for code, tol in ((Status.FTOL, self.ftol), (Status.XTOL, self.xtol)):
            if tol is None:
                reopen = reopen | (status == code)
            else:  # (a traced 0, a vmapped lane's, is off too)
                reopen = reopen | ((status == code) & (tol <= 0))
        return jnp.where(reopen, Status.RUNNING, status).astype(jnp.int32)

    def check_resumable(self, result: Any, *args: Any, name: str = "result", how: Optional[str] = None) -> SolverState:
        """Check (shapes and dtypes only, so also under ``jit``) that ``result``
        holds a state this solver can continue; return that state. ``how``: the
        message's advice for starting afresh (``solver.run(result.params)``)."""
        if not isinstance(result, Result) or not isinstance(result.state, SolverState):
            raise TypeError(BAD_RESUME_TYPE.format(name=name, kind=type(result).__name__))
        self._check_state(result.state, args, f"{name}.state", how or f"solver.run({name}.params)")
        dtype = jnp.result_type(result.state.value)
        for field, h in zip(History._fields, result.history):
            if jnp.ndim(h) != 1 or jnp.result_type(h) != dtype:
                raise _checkpoint.TreeMismatchError(
                    BAD_RESUME_HISTORY.format(name=name, field=field, shape=jnp.shape(h), dtype=jnp.result_type(h), expected=dtype)
                )
        return result.state

    def _check_state(self, state: SolverState, args: tuple, name: str, how: str) -> None:
        """Raise ``TreeMismatchError`` where ``state`` differs in tree structure, shapes or dtypes from the
        state this solver builds at ``state.params`` (:meth:`init` through ``jax.eval_shape``): the test of
        :meth:`step` and :meth:`resume`. The message names ``name`` and the differing leaves, the method whose
        direction state ``state`` holds, and ``how`` to start this solver afresh."""
        params = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), state.params)
        expected = jax.eval_shape(lambda p: self.init(p, *args), params)
        built, found = _checkpoint.describe(expected), _checkpoint.describe(state, what=name)
        if built == found:
            return
        made, ours = state.direction_state, expected.direction_state
        if jnp.ndim(state.count) > 0:  # (a state of jax.vmap(solver.init): the advice below would start afresh)
            _checkpoint.compare(built, found, what=f"{name} (method {self.direction.name!r})",
                                expected_name="the state this solver builds", note=STATE_BATCHED.format(name=name))
        if jax.tree_util.tree_structure(made) == jax.tree_util.tree_structure(ours):
            note = STATE_FROM_ELSEWHERE.format(name=name)
            if _differs_in_aux_only(state, expected):
                _checkpoint.compare(built, found, what=f"{name} (method {self.direction.name!r})",
                                    expected_name="the state this solver builds", note=STATE_AUX.format(name=name))
        else:  # another method's: the registered methods whose direction state has that structure
            structure = jax.tree_util.tree_structure(made)
            methods = [repr(m) for m in _registry.names()
                       if jax.tree_util.tree_structure(jax.eval_shape(_registry.resolve(m).init, params)) == structure]
            origin = f"the state of method {' or '.join(methods)}" if methods else "another method's state"
            note = STATE_MADE_BY.format(name=name, found=type(made).__name__, origin=origin, method=self.direction.name,
                                        expected=type(ours).__name__)
        _checkpoint.compare(built, found, what=f"{name} (method {self.direction.name!r})",
                            expected_name="the state this solver builds", note=note + SWITCH_HINT.format(how=how))

    def _sized_history(self, history: History, state: SolverState) -> History:
        """Pad (NaN) or cut a saved history to this solver's buffer length."""
        return _driver.resize_history(History(*history), self.history_length(), state.value.dtype)


RULE_NUMBER_OVERFLOWS = (
    "lr={rule}'s {field}={value!r} overflows {dtype}, the dtype the step-size rule runs in for these parameters "
    "(its largest finite number is {most:.4g}): it would be Inf in the run"
)


def _check_rule_numbers(rule: Any, params: Params) -> None:
    """Raise :data:`RULE_NUMBER_OVERFLOWS` where a concrete number of the step-size rule (a search's
    ``initial``, Polyak's ``f_star``, a jaxgd schedule's ``init_value``) is finite but past the largest number of
    the dtype the rule runs in (float64 where a leaf is, else float32: the searches and adaptive rules of 16-bit
    parameters run in float32). A search's ``initial=1e308`` with float32 parameters ended LINESEARCH_FAILED."""
    if isinstance(rule, _stepsize.ScheduleRule):
        if _tree.is_scalar(rule.schedule):
            return  # (a constant lr: check_params' own test names it as lr)
        rule = rule.schedule  # (a jaxgd schedule, named as the user wrote it)
    wide = any(jnp.result_type(v) == jnp.float64 for v in _tree.leaves(params))
    dtype = np.dtype(np.float64 if wide else np.float32)
    most = float(np.finfo(dtype).max)
    for field, value in _named_numbers(rule):
        if math.isfinite(float(value)) and abs(float(value)) > most:
            raise ValueError(RULE_NUMBER_OVERFLOWS.format(rule=type(rule).__name__, field=field, value=value,
                                                          dtype=dtype.name, most=most))


def _named_numbers(obj: Any, prefix: str = "", depth: int = 3) -> Any:
    """``(dotted field name, number)`` for the Python and NumPy real numbers among ``obj``'s named fields (a
    jaxgd pytree class's, a NamedTuple's: a rule, the schedule it holds), ``depth`` levels down."""
    names = getattr(type(obj), "_tree_fields", None) or getattr(obj, "_fields", None)
    if not names or depth == 0:
        return
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_)):
            yield prefix + name, value
        elif getattr(type(value), "_tree_fields", None) or hasattr(value, "_fields"):
            yield from _named_numbers(value, prefix + name + ".", depth - 1)


def _shown(value: Any) -> str:
    """An option's value in :meth:`Solver.__repr__`: a number as itself, an array by its shape, a traced
    value as such, a schedule by its name, a pair or tree by its parts."""
    if isinstance(value, _tree.Static):
        value = value.value
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    if isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, jax.core.Tracer):
        return "<traced>"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return repr(np.asarray(value)[()].item()) if value.shape == () else f"<array {value.shape} {value.dtype}>"
    if callable(value) and not hasattr(value, "_fields"):
        return getattr(value, "__name__", type(value).__name__)
    return repr(value)


def _signature_of(leaf: Any) -> Any:
    """What :meth:`Solver.step`'s state check depends on in a leaf of ``(state, args)``: an array's shape and dtype,
    a float's type (a new hyperparameter value each step is no new check), anything else itself (an int may be
    a size, a string a mode)."""
    if _tree.is_array(leaf):
        return leaf.shape, leaf.dtype
    return type(leaf) if isinstance(leaf, (float, complex)) else leaf


def _differs_in_aux_only(state: SolverState, expected: Any) -> bool:
    """True where ``state`` and ``expected`` (shapes) have one tree structure and differ in ``aux`` leaves only."""
    if jax.tree_util.tree_structure(state) != jax.tree_util.tree_structure(expected):
        return False
    pairs = zip(jax.tree_util.tree_leaves_with_path(state), jax.tree_util.tree_leaves(expected))
    differ = [path for (path, a), b in pairs if jnp.shape(a) != b.shape or jnp.result_type(a) != b.dtype]
    return bool(differ) and all(getattr(path[0], "name", None) == "aux" for path in differ)


def check_x0_not_a_run(x0: Any, state_hint: str, result_hint: str) -> None:
    """Raise ``TypeError`` (:data:`X0_IS_A_STATE`) where ``x0`` is a :class:`SolverState` or a
    :class:`jaxgd.Result` (``Solver.init`` and ``minimize``: its int32 count was named as the leaf to
    cast); the hints end the message (how the caller continues a state, a result)."""
    for kind, name, hint in ((SolverState, "state", state_hint), (Result, "result", result_hint)):
        if isinstance(x0, kind):
            raise TypeError(X0_IS_A_STATE.format(kind=kind.__name__, name=name, cont=hint))


_SOLVER_KEYWORDS = ("method", "lr") + _options.keywords(Solver.__init__)
