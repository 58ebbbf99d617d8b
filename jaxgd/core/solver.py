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

import functools
import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..checkpoint import format as _checkpoint

from ..directions import registry as _directions

from . import progress as _progress

from . import stepsize as _stepsize

from . import stall as _stall  # issue 13 hook

from .. import _tree
from ..prox.operators import Prox, check_bounds, fista_extrapolate, fista_init
from .status import History, Result, Status, empty_history
from .._types import ArrayLike, Grads, LossFn, Params, PyTree

NOT_CALLABLE = "fun must be callable, got {kind}"
BAD_LR = "lr must be > 0 and finite, got lr={lr!r}"
BAD_LR_TYPE = "lr must be a float, a schedule (callable step -> lr) or a jaxgd.linesearch rule, got {kind}"
BAD_MAX_STEPS = "max_steps must be a non-negative integer, got max_steps={value!r}"
BAD_TOL = "{name} must be a non-negative number, got {name}={value!r}"
BAD_PENALTY = "{name} must be a non-negative finite number, got {name}={value!r}"
BAD_CLIP = "clip must be None or a positive number, got clip={value!r}"
BAD_SCHEDULE = "lr as a schedule must map a step count to a real scalar, lr(count) -> float; {what}"
BAD_RESUME_TYPE = "{name} must be a jaxgd.Result (from minimize, Solver.run or load_checkpoint), got {kind}"
BAD_RESUME_HISTORY = "{name}.history.{field} must be a 1-d array of dtype {expected}, got shape {shape} dtype {dtype}"
BAD_FLAG_EVERY = "{name} must be a bool or a positive integer (every k steps), got {name}={value!r}"


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


def _every(name: str, value: Any) -> int:
    """``True`` -> 1, ``False`` -> 0, a positive int -> itself."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)) and value > 0:
        return int(value)
    raise ValueError(BAD_FLAG_EVERY.format(name=name, value=value))


def _real_scalar(name: str, value: Any, message: str, positive: bool = False, finite: bool = False) -> Any:
    """Validate a number, or a real scalar array (concrete values checked,
    tracers pass), that must be >= 0 (or > 0, or finite too); return it
    (numbers as floats).

    Raises:
      TypeError: not a number or array, or a bool/complex one.
      ValueError: a negative (non-positive) or NaN value, or a non-scalar array.
    """
    value = _tree.as_float_if_number(value)

    def ok(v: float) -> bool:  # NaN fails every comparison
        return (v > 0 if positive else v >= 0) and (math.isfinite(v) or not finite)

    if isinstance(value, float):
        if not ok(value):
            raise ValueError(message.format(name=name, value=value))
        return value
    dtype = getattr(value, "dtype", None)
    if dtype is None or not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise TypeError(message.format(name=name, value=value))
    if jnp.shape(value) != ():
        raise ValueError(message.format(name=name, value=value) + f" (a scalar, got shape {jnp.shape(value)})")
    if _tree.is_concrete(value) and not ok(float(value)):
        raise ValueError(message.format(name=name, value=value))
    return value


def _nonneg(name: str, value: Any, message: str = BAD_TOL) -> Any:
    """Validate a concrete non-negative number; tracers pass unchecked."""
    return _real_scalar(name, value, message)


def _off_if_zero(value: Any) -> Any:
    """A concrete zero switches a term off statically (``None``); otherwise traced."""
    return None if isinstance(value, float) and value == 0.0 else value


def _check_lr(lr: Any) -> Any:
    if _stepsize.is_rule(lr):
        return lr
    if callable(lr):
        _check_schedule(lr)
        return lr
    lr = _tree.as_float_if_number(lr)
    if isinstance(lr, float):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(BAD_LR.format(lr=lr))
        return lr
    if hasattr(lr, "dtype") and hasattr(lr, "shape"):
        if not jnp.issubdtype(lr.dtype, jnp.floating) or lr.shape != ():
            raise ValueError(BAD_LR.format(lr=lr))
        if _tree.is_concrete(lr):
            v = float(lr)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(BAD_LR.format(lr=lr))
        return lr
    raise TypeError(BAD_LR_TYPE.format(kind=type(lr).__name__))


def _check_schedule(lr: Callable[..., Any]) -> None:
    """A schedule must map a step count to a real scalar (checked through
    ``jax.eval_shape``: nothing compiles; cached per hashable schedule).
    Schedules holding tracers pass."""
    if not _tree.is_concrete(lr):
        return
    try:
        hash(lr)
    except TypeError:  # a schedule with array leaves: check every time
        return _check_schedule_uncached(lr)
    _check_schedule_cached(lr)


def _check_schedule_uncached(lr: Callable[..., Any]) -> None:
    try:
        out = jax.eval_shape(lambda count: lr(count), jax.ShapeDtypeStruct((), jnp.int32))
    except Exception as e:  # the schedule's own error, reported against lr
        raise TypeError(BAD_SCHEDULE.format(what=f"calling it raised {type(e).__name__}: {e}")) from e
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.floating) and not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(BAD_SCHEDULE.format(what=f"it returned {out!r}"))


_check_schedule_cached = functools.lru_cache(maxsize=256)(_check_schedule_uncached)


def clip_by_global_norm(grad: Grads, max_norm: jax.Array) -> Grads:
    """Scale ``grad`` so that its global norm is at most ``max_norm``.

    The same rule as ``optax.clip_by_global_norm``, with a traced threshold.
    """
    g_norm = _tree.norm(grad)
    factor = jnp.where(g_norm > max_norm, max_norm / jnp.where(g_norm > 0, g_norm, 1.0), 1.0)
    return _tree.scale(factor, grad)


@_tree.pytree_class(
    data=("rule", "prox", "gtol", "ftol", "xtol", "l2", "clip"),
    meta=("fun", "direction", "max_steps", "history_every", "progress_every", "has_aux", "accelerated"),
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
      method: a method name (see :func:`jaxgd.methods`), a
        ``jaxgd.Direction`` or any ``optax.GradientTransformation``.
      lr: step size: a float, a schedule ``count -> lr`` (optax's or
        ``jaxgd.schedules``') or a ``jaxgd.linesearch`` rule. Default: the
        method's own (``1e-3`` for first-order methods, ``1.0`` for an optax
        transformation, which holds its own learning rate).
      max_steps: the step limit (static: it sizes the history buffers).
      gtol: stop when the stationarity measure (gradient 2-norm) is <= gtol.
      ftol: stop when ``|f_k - f_{k+1}| <= ftol * max(|f_k|, |f_{k+1}|, 1)``
        (scipy L-BFGS-B's test); 0 disables it.
      xtol: stop when ``||theta_{k+1} - theta_k|| <= xtol``; 0 disables it.
      l1: L1 weight: a proximal (soft-thresholding) step, ISTA with ``gd``.
      l2: L2 weight: the penalty ``l2/2 ||theta||^2`` added to the loss, or for
        ``adamw`` decoupled weight decay ``d -= l2 * theta`` (as ``optax.adamw``).
        With ``l1`` it makes the elastic net (l2 stays a smooth penalty).
      bounds: ``(lower, upper)``: box constraints applied by projection after
        each step (projected gradient with ``gd``). Each side is ``None``
        (unbounded), a number, or a pytree with the structure of ``x0``
        (use ``-inf``/``inf`` for free entries); ``bounds=(0, None)`` is
        non-negativity. ``x0`` is projected into the box (as scipy's
        L-BFGS-B does), and ``gtol`` then tests the projected-gradient norm
        ``||x - P(x - grad)||``.
      accelerated: FISTA (Beck & Teboulle 2009): each step starts from the
        extrapolated point ``y_k = x_k + (t_{k-1} - 1)/t_k (x_k - x_{k-1})``,
        which costs one more ``value_and_grad`` per step (at ``y_k``; the
        reported loss and ``gtol`` stay at the iterate ``x_k``). Meant for
        ``gd`` with ``l1``/``bounds`` and a constant ``lr`` <= 1/L; not
        monotone.
      clip: clip the gradient to this global norm before the direction.
      history: record loss, step size and gradient norm every step (True),
        every k steps (an int) or not at all (False).
      progress: show a progress bar updated every 1% of ``max_steps`` (True)
        or every k steps (an int).
      has_aux: ``fun`` returns ``(loss, aux)``.

    Raises:
      TypeError: ``fun`` not callable, ``method`` or ``lr`` of the wrong kind.
      ValueError: a bad value (names the argument and what was expected);
        ``bounds`` not a pair, ``lower > upper``, or (in ``init``/``run``)
        a bound whose pytree structure does not fit ``x0``.
    """

    def __init__(
        self,
        fun: LossFn,
        method: Any = "gd",
        lr: Any = None,
        *,
        max_steps: int = 1000,
        gtol: ArrayLike = 1e-6,
        ftol: ArrayLike = 0.0,
        xtol: ArrayLike = 0.0,
        l1: ArrayLike = 0.0,
        l2: ArrayLike = 0.0,
        clip: Optional[ArrayLike] = None,
        history: bool | int = True,
        progress: bool | int = False,
        has_aux: bool = False,
        bounds: Any = None,
        accelerated: bool = False,
    ) -> None:
        if not callable(fun):
            raise TypeError(NOT_CALLABLE.format(kind=type(fun).__name__))
        direction = _directions.resolve(method)
        if lr is None:
            lr = _directions.default_lr(direction)
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int,)) or max_steps < 0:
            if not (isinstance(max_steps, np.integer) and max_steps >= 0):
                raise ValueError(BAD_MAX_STEPS.format(value=max_steps))
        max_steps = int(max_steps)
        gtol, ftol, xtol = (_nonneg(n, v) for n, v in (("gtol", gtol), ("ftol", ftol), ("xtol", xtol)))
        l1, l2 = (_real_scalar(n, v, BAD_PENALTY, finite=True) for n, v in (("l1", l1), ("l2", l2)))
        if clip is not None:
            clip = _real_scalar("clip", clip, BAD_CLIP, positive=True)
        history_every = _every("history", history)
        progress_every = _every("progress", progress)
        if progress_every == 1 and progress is True:
            progress_every = max(1, max_steps // 100)
        if not isinstance(has_aux, bool):
            raise TypeError(f"has_aux must be a bool, got {has_aux=}")
        if not isinstance(accelerated, bool):
            raise TypeError(f"accelerated must be a bool, got {accelerated=}")
        lower, upper = check_bounds(bounds)
        _stall.check_l1_method(direction.name, _off_if_zero(l1))  # issue 13 hook: refuse bfgs/lbfgs/cg + l1
        fields = dict(
            rule=_stepsize.as_rule(_check_lr(lr)),
            prox=Prox(_off_if_zero(l1), lower, upper),
            gtol=gtol,
            ftol=_off_if_zero(ftol),
            xtol=_off_if_zero(xtol),
            l2=_off_if_zero(l2),
            clip=clip,
            fun=fun,
            direction=direction,
            max_steps=max_steps,
            history_every=history_every,
            progress_every=progress_every,
            has_aux=has_aux,
            accelerated=accelerated,
        )
        for k, v in fields.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Solver is immutable; build a new one")

    def __repr__(self) -> str:
        return (
            f"Solver(fun={getattr(self.fun, '__name__', self.fun)!r}, method={self.direction.name!r}, "
            f"rule={self.rule!r}, max_steps={self.max_steps})"
        )

    # -- the objective ----------------------------------------------------
    def objective(self, params: Params, *args: Any) -> tuple[jax.Array, Any]:
        """``(smooth objective, aux)``: the loss plus the L2 penalty when it is one."""
        out = self.fun(params, *args)
        loss, aux = out if self.has_aux else (out, None)
        loss = jnp.asarray(loss)
        if self.l2 is not None and not self.direction.decoupled_l2:
            loss = loss + (0.5 * self.l2 * _tree.sq_norm(params)).astype(loss.dtype)
        return loss, aux

    def value_and_grad(self, params: Params, *args: Any) -> tuple[jax.Array, Grads, Any]:
        (value, aux), grad = jax.value_and_grad(self.objective, has_aux=True)(params, *args)
        return value, grad, aux

    def loss(self, params: Params, value: jax.Array) -> jax.Array:
        """The reported loss: smooth value plus the proximal term."""
        if not self.prox.active:
            return value
        return value + self.prox.value(params).astype(value.dtype)

    def _measure(self, params: Params, value: jax.Array, grad: Grads) -> tuple[jax.Array, jax.Array]:
        """``(stationarity measure, all finite)`` at a new iterate, in few kernels.

        Without a proximal term one reduction, ``sum(g*g + 0*p)``, gives the
        squared gradient norm and, when it is finite, proves every element of
        ``grad`` and ``params`` finite (``0*p`` is 0 for finite ``p`` and NaN
        otherwise). Only when it is not finite (a non-finite value, or a
        gradient whose squared norm overflows) does the exact elementwise test
        run, under ``lax.cond``. On XLA:CPU every reduction is a few separate
        kernels per step, and the kernel count decides whether a loop body
        runs sequentially or on the thread pool: replacing three reductions
        (norm, finiteness of grad and of params) by one took Rosenbrock 10-D,
        history on, from 1.49 to 0.069 us a step (benchmarks/RESULTS.md).
        """
        if self.prox.active:
            gnorm = self.prox.stationarity(params, grad).astype(value.dtype)
            return gnorm, jnp.isfinite(value) & _tree.all_finite(grad) & _tree.all_finite(params)
        sq = _tree.sq_norm_nan_if(grad, params)
        # issue 13: when sq overflows, the exact branch also rescales the norm (_tree.norm)
        exact = lambda: (_tree.all_finite(grad) & _tree.all_finite(params), _tree.norm(grad).astype(sq.dtype))  # noqa: E731
        finite, gnorm = lax.cond(jnp.isfinite(sq), lambda: (jnp.asarray(True), jnp.sqrt(sq)), exact)
        return gnorm.astype(value.dtype), jnp.isfinite(value) & finite

    # -- the pieces -------------------------------------------------------
    def init(self, x0: Params, *args: Any) -> SolverState:
        """Evaluate ``x0`` (projected into ``bounds``) and build the first state (one ``value_and_grad``)."""
        params = _tree.tmap(jnp.asarray, x0)
        self.prox.check(params)
        params = self.prox.project(params)
        value, grad, aux = self.value_and_grad(params, *args)
        gnorm = self.prox.stationarity(params, grad).astype(value.dtype)
        finite = jnp.isfinite(value) & _tree.all_finite(grad)
        status = jnp.where(
            ~finite, Status.NONFINITE, jnp.where(gnorm <= self.gtol, Status.GTOL, Status.RUNNING)
        ).astype(jnp.int32)
        one = jnp.asarray(1, jnp.int32)
        return SolverState(
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
        )

    def step(self, state: SolverState, *args: Any) -> SolverState:
        """One step from ``state``; a non-finite or failed step is not taken.

        The returned state has the same tree structure, shapes and dtypes as
        ``state`` (it is a ``while_loop`` carry).
        """
        params, value, grad = state.params, state.value, state.grad
        accel, extra = state.accel, jnp.asarray(0, jnp.int32)
        if self.accelerated:  # FISTA: step from y_k = x_k + beta (x_k - x_{k-1})
            params, beta, accel = fista_extrapolate(state.accel, params)
            value, grad, _ = lax.cond(
                beta > 0, lambda: self.value_and_grad(params, *args), lambda: (value, grad, state.aux)
            )
            value, grad = jnp.asarray(value).astype(state.value.dtype), _tree.cast_like(grad, state.grad)
            extra = (beta > 0).astype(jnp.int32)
        g = grad if self.clip is None else clip_by_global_norm(grad, self.clip)
        value_fn = lambda p: self.objective(p, *args)[0]  # noqa: E731
        d, dstate = self.direction.update(g, state.direction_state, params, value=value, value_fn=value_fn)
        if self.l2 is not None and self.direction.decoupled_l2:
            d = _tree.add_scaled(d, -self.l2, params)
        d = _tree.cast_like(d, params)

        def moved(alpha: jax.Array) -> Params:
            return self.prox.apply(_tree.add_scaled(params, alpha, d), alpha)

        def evaluate(alpha: jax.Array) -> _stepsize.Trial:
            p = moved(alpha)
            v, gr, aux = self.value_and_grad(p, *args)
            return _stepsize.Trial(p, v, gr, aux)

        ctx = _stepsize.StepContext(
            count=state.count,
            params=params,
            value=value,
            grad=grad,
            direction=d,
            slope=_tree.vdot(grad, d).astype(value.dtype),
            evaluate=evaluate,
            value_at=lambda alpha: value_fn(moved(alpha)),
            penalty_change=self.prox.change if self.prox.l1 is not None else None,
        )
        alpha, trial, rstate, info = self.rule.step(state.rule_state, ctx)
        alpha = jnp.asarray(alpha).astype(value.dtype)
        new_value = jnp.asarray(trial.value).astype(value.dtype)
        new_grad = _tree.cast_like(trial.grad, grad)
        new_params = _tree.cast_like(trial.params, params)
        gnorm, finite = self._measure(new_params, new_value, new_grad)
        failed = jnp.asarray(info.failed)
        accept = finite & ~failed
        status = jnp.where(gnorm <= self.gtol, Status.GTOL, Status.RUNNING)
        if self.ftol is not None:
            f_old, f_new = self.loss(state.params, state.value), self.loss(new_params, new_value)
            scale = jnp.maximum(jnp.maximum(jnp.abs(f_old), jnp.abs(f_new)), 1.0)
            status = jnp.where((status == Status.RUNNING) & (jnp.abs(f_old - f_new) <= self.ftol * scale), Status.FTOL, status)
        if self.xtol is not None:
            small = _tree.norm(_tree.sub(new_params, state.params)) <= self.xtol
            status = jnp.where((status == Status.RUNNING) & small, Status.XTOL, status)
        status = jnp.where(failed, Status.LINESEARCH_FAILED, jnp.where(~finite, Status.NONFINITE, status))
        # -- issue 13 hook (jaxgd/core/stall.py): precision-limited convergence and stalls --
        status = _stall.adjust_status(
            self.rule, rstate, status, failed, (state.value, state.grad_norm, state.params), (new_value, gnorm, new_params)
        )

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
        )
        kept = _tree.where(accept, candidate, state)
        return kept._replace(
            status=status.astype(jnp.int32),
            nfev=state.nfev + jnp.asarray(info.nfev, jnp.int32) + extra,
            ngev=state.ngev + jnp.asarray(info.ngev, jnp.int32) + extra,
            alpha=jnp.where(accept, alpha, state.alpha),
        )

    # -- the loop ---------------------------------------------------------
    def history_length(self) -> int:
        return self.max_steps // self.history_every if self.history_every else 0

    def empty_history(self, state: SolverState) -> History:
        return empty_history(self.history_length(), state.value.dtype)

    def _record(self, hist: History, prev_count: jax.Array, state: SolverState) -> History:
        every, n = self.history_every, self.history_length()
        k = state.count
        take = (k > prev_count) & (k % every == 0)
        idx = jnp.where(take, k // every - 1, n)  # n is out of bounds: dropped
        return History(
            hist.loss.at[idx].set(self.loss(state.params, state.value), mode="drop"),
            hist.lr.at[idx].set(state.alpha, mode="drop"),
            hist.grad_norm.at[idx].set(state.grad_norm, mode="drop"),
        )

    def _report(self, state: SolverState, final: bool) -> None:
        cb = _progress.close if final else _progress.update
        jax.debug.callback(cb, state.count, self.loss(state.params, state.value), self.max_steps)

    def loop(
        self,
        state: SolverState,
        history: History,
        *args: Any,
        stop: Optional[ArrayLike] = None,
        close_progress: bool = True,
    ) -> tuple[SolverState, History]:
        """Run steps until a test fires or ``state.count`` reaches ``stop``
        (``max_steps`` by default; may be traced). Used by ``run`` and by
        resumed runs; ``close_progress=False`` leaves the progress bar open
        for a following chunk."""
        stop = self.max_steps if stop is None else stop

        def cond(carry: tuple[SolverState, History]) -> jax.Array:
            s, _ = carry
            return (s.status == Status.RUNNING) & (s.count < stop)

        def body(carry: tuple[SolverState, History]) -> tuple[SolverState, History]:
            s, h = carry
            new = self.step(s, *args)
            if self.history_length():  # 0 with history off, or max_steps < every
                h = self._record(h, s.count, new)
            if self.progress_every:
                lax.cond(new.count % self.progress_every == 0, lambda: self._report(new, False), lambda: None)
            return new, h

        state, history = lax.while_loop(cond, body, (state, history))
        if self.progress_every and close_progress:
            self._report(state, True)
        return state, history

    def finish(self, state: SolverState, history: History) -> Result:
        """Mark an exhausted step budget and package the :class:`Result`."""
        status = jnp.where(
            (state.status == Status.RUNNING) & (state.count >= self.max_steps), Status.MAX_STEPS, state.status
        ).astype(jnp.int32)
        state = state._replace(status=status)
        return Result(
            params=state.params,
            loss=self.loss(state.params, state.value),
            grad_norm=state.grad_norm,
            steps=state.count,
            status=status,
            history=history,
            state=state,
            nfev=state.nfev,
            ngev=state.ngev,
            aux=state.aux,
        )

    def run(self, x0: Params, *args: Any) -> Result:
        """``init`` then steps until a termination test fires; returns a :class:`Result`."""
        state = self.init(x0, *args)
        state, history = self.loop(state, self.empty_history(state), *args)
        return self.finish(state, history)

    def start(self, x0: Params, *args: Any) -> Result:
        """``init`` packaged as a :class:`Result` at step 0, ready for :meth:`resume`."""
        state = self.init(x0, *args)
        return self.finish(state, self.empty_history(state))

    def resume(self, result: Result, *args: Any, stop: Optional[ArrayLike] = None) -> Result:
        """Continue the run saved in ``result``: bit for bit the run that never stopped.

        ``result`` comes from :meth:`run`, :meth:`start`, :meth:`resume`,
        :func:`jaxgd.minimize` or :func:`jaxgd.load_checkpoint`; only its
        ``state`` and ``history`` are used (a trimmed history is padded back).
        A run that stopped at ``max_steps`` continues up to this solver's
        ``max_steps`` (raise it to extend a run); a converged one stays put.
        With ``stop`` (may be traced), steps end once ``state.count`` reaches
        it and the progress bar stays open: one chunk of a checkpointed run.
        The solver must be built with the same options as the saved run's
        (``max_steps`` may differ) for the continuation to be bit for bit.

        Raises:
          TypeError: ``result`` is not a :class:`jaxgd.Result`.
          TreeMismatchError: ``result.state`` differs in structure, shapes or
            dtypes from the state this solver builds (another method, other
            parameters); the message names the differing leaves.
        """
        state = self.check_resumable(result, *args)
        status = jnp.where(state.status == Status.MAX_STEPS, Status.RUNNING, state.status)
        state = state._replace(status=status.astype(jnp.int32))
        history = self._sized_history(result.history, state)
        state, history = self.loop(state, history, *args, stop=stop, close_progress=stop is None)
        return self.finish(state, history)

    def check_resumable(self, result: Any, *args: Any, name: str = "result") -> SolverState:
        """Check (shapes and dtypes only, so also under ``jit``) that ``result``
        holds a state this solver can continue; return that state."""
        if not isinstance(result, Result) or not isinstance(result.state, SolverState):
            raise TypeError(BAD_RESUME_TYPE.format(name=name, kind=type(result).__name__))
        params = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), result.state.params)
        expected = jax.eval_shape(lambda p: self.init(p, *args), params)
        what = f"{name}.state (method {self.direction.name!r})"
        _checkpoint.compare(
            _checkpoint.describe(expected), _checkpoint.describe(result.state, what=name), what=what,
            expected_name="the state this solver builds",
        )
        dtype = jnp.result_type(result.state.value)
        for field, h in zip(History._fields, result.history):
            if jnp.ndim(h) != 1 or jnp.result_type(h) != dtype:
                raise _checkpoint.TreeMismatchError(
                    BAD_RESUME_HISTORY.format(name=name, field=field, shape=jnp.shape(h), dtype=jnp.result_type(h), expected=dtype)
                )
        return result.state

    def _sized_history(self, history: History, state: SolverState) -> History:
        """Pad (NaN) or cut a saved history to this solver's buffer length."""
        n = self.history_length()
        empty = self.empty_history(state)
        return History(*(jnp.concatenate([h[:n], e[h[:n].shape[0]:]]) for h, e in zip(history, empty)))
