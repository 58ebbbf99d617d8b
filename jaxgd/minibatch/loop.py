"""The compiled epoch loop of :func:`jaxgd.fit`, and the types it returns.

The loop's carry is the :class:`FitResult` itself: ``start`` builds the one
for epoch 0, ``loop`` runs epochs (up to an optional, traced ``stop``) inside
one ``lax.while_loop``, and ``run`` is both under one ``jax.jit``. Each epoch
shuffles with ``jax.random.permutation(fold_in(key, epoch), n)``, reshapes the
permuted indices to ``(n_batches, batch_size)`` and ``lax.scan``-s over the
batches, then evaluates, tracks the best parameters and writes one history
row. Since the carry is a complete resume point and the epoch body is the
same compiled computation however the epochs are split into calls, a run
split into chunks (checkpointed between them) is bit for bit the run in one
piece.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..core import progress as _progress

from .. import _compile_cache, _tree
from ..core import cache as _cache
from ..core import compile as _compile
from ..core import driver as _driver
from ..core import update as _update
from ..core.solver import Solver
from ..interop import models as _models
from ..prox.operators import fista_extrapolate, fista_init, l2_penalty
from ..core.status import FitStatus, fit_message_at, per_run, status_of, success_of, summary_message
from .._types import Params, PyTree

class FitHistory(NamedTuple):
    """One row per epoch run (trimmed on the host; under ``jit``/``vmap`` a row per epoch of the
    compiled bucket, ``epochs`` rounded up to a power of two, NaN where not run or not recorded).

    Attributes:
      train_loss: the mean minibatch loss ``fun`` over the epoch, each taken at
        the parameters before its step (the running training loss; penalties
        not included). ``loss`` is the same array, the name ``History`` uses.
      eval_loss: ``eval_fun(params, eval_data)`` after the epoch.
      metric: ``metric(params, eval_data)`` after the epoch.
      lr: the step size of the epoch's last step.
    """

    train_loss: jax.Array
    eval_loss: jax.Array
    metric: jax.Array
    lr: jax.Array

    @property
    def loss(self) -> jax.Array:
        """:attr:`train_loss` under the name :class:`jaxgd.History` uses."""
        return self.train_loss


class FitState(NamedTuple):
    """What the run carries from epoch to epoch besides the best-so-far and the
    history; with them (a :class:`FitResult`) it is a complete resume point.

    Attributes:
      params: the last iterate (``FitResult.params`` is the best one under
        ``patience``).
      prev: the iterate before the last step taken, where a step that meets a
        NaN/Inf loss or gradient rolls back to.
      direction_state: the direction's (optimizer's) state.
      count: optimizer steps taken (the position schedules see).
      epoch: epochs run.
      wait: epochs since the monitored loss last improved.
      key: the run's PRNG key as its raw ``uint32`` key data (epoch ``e``
        shuffles with ``fold_in(key, e)``; with ``loss_key``, step ``s``'s loss
        gets ``fold_in(fold_in(key, 0xFFFFFFFF), s)``), so that every leaf of a
        ``FitResult`` converts to a NumPy array.
      accel: FISTA's ``(t, previous iterate)`` with ``accelerated=True``, else ``()``.
    """

    params: Params
    prev: Params
    direction_state: PyTree
    count: jax.Array
    epoch: jax.Array
    wait: jax.Array
    key: jax.Array
    accel: PyTree = ()  # FISTA's (t, previous iterate) with accelerated=True


class FitResult(NamedTuple):
    """What :func:`fit` returns (a pytree).

    Attributes:
      params: the final parameters; with ``patience``, the best ones (restored).
      best_params: the parameters after the epoch with the lowest monitored
        loss (eval loss with ``eval_data``, else the training loss).
      best_epoch: that epoch, counted from 1 (0: no epoch had a finite loss).
      best_loss: the monitored loss of that epoch: the eval loss at ``best_params``; without
        ``eval_data``, the epoch's training loss (the mean of its minibatch losses, each taken
        before its step), not the loss at ``best_params`` itself.
      epochs: the number of epochs run (one whose eval loss was not finite, rolled back, included).
      steps: the number of optimizer steps kept (a step rolled back after a non-finite minibatch
        loss is not counted, nor are the steps of an epoch rolled back).
      status: a :class:`FitStatus` code (``status_enum`` on the host).
      history: a :class:`FitHistory`, one row per epoch run.
      state: the final state (the last iterate, the optimizer's state, the step and epoch counts). A ``FitResult`` is everything a
        run needs to go on: ``fit(..., resume=result)`` continues it bit for
        bit, and it is what ``checkpoint_path`` files hold. (After a ``NONFINITE`` stop's rollback the
        iterate and count are the last good ones, while the optimizer's state is that after the step
        the rollback undid: keeping the one before would copy it every step; such a run does not resume.)
    """

    params: Params
    best_params: Params
    best_epoch: jax.Array
    best_loss: jax.Array
    epochs: jax.Array
    steps: jax.Array
    status: jax.Array
    history: FitHistory
    state: FitState

    @property
    def loss(self) -> jax.Array:
        """The last epoch's training loss (``history.loss[-1]``; NaN before any epoch),
        as ``Result.loss`` is the loss at the end of a ``minimize`` run."""
        h = self.history.loss
        last = jnp.maximum(jnp.asarray(self.epochs) - 1, 0)
        # (each run's own row under vmap: jnp.take with batched epochs took every run's row of every run)
        at = jnp.take_along_axis(h, last[..., None], axis=-1, mode="clip")[..., 0]
        return jnp.where(jnp.asarray(self.epochs) > 0, at, jnp.nan)

    @property
    def status_enum(self) -> Any:
        """``status`` as a :class:`FitStatus` (an object array of them when batched, under ``vmap``)."""
        return status_of(self.status, FitStatus)

    @property
    def success(self) -> Any:
        """True when the run ended by completing its epochs or by early stopping (host only)."""
        return success_of(self.status_enum)

    @property
    def message(self) -> Any:
        """A human sentence saying why the run stopped (host only)."""
        s = self.status_enum
        h = np.asarray(self.history.train_loss)
        first = h[..., 0] if h.shape[-1] else np.full(h.shape[:-1], np.nan)
        return per_run(fit_message_at, s, np.asarray(self.steps), first)

    def __repr__(self) -> str:
        try:
            return (
                f"FitResult(status={self.status_enum!r}, success={self.success}, epochs={np.asarray(self.epochs)}, "
                f"steps={np.asarray(self.steps)}, best_epoch={np.asarray(self.best_epoch)}, "
                f"best_loss={np.asarray(self.best_loss)!s}{summary_message(self)})"
            )
        except Exception:  # traced
            return f"FitResult(params={self.params!r}, status={self.status!r})"


class _SameAsFun:
    """``Config.eval_fun`` when it is the training loss itself (held by the solver, weakly in caches)."""

    def __repr__(self) -> str:
        return "SAME_AS_FUN"


SAME_AS_FUN = _SameAsFun()

# fit(loss_key=True): the loss's keys are fold_in(fold_in(key, LOSS_KEY_STREAM), step); the shuffles use
# fold_in(key, epoch) with epoch an int32 >= 0, which never reaches 2**32 - 1, so the two streams do not meet
# (split(key)[1] would have: it is fold_in(key, 1), epoch 1's shuffle key)
LOSS_KEY_STREAM = 0xFFFFFFFF

# fit's top-level calls run their epochs fast first (Config.fast_epochs; False: every epoch exact,
# as under jit/vmap; the tests compare the two)
FAST_EPOCHS = True


class Config(NamedTuple):
    """The static shape of a run: changing any of these recompiles."""

    n: int
    batch_size: int
    n_batches: int
    epochs: int
    mask: bool
    eval_fun: Optional[Callable]
    eval_weights: int  # > 0: call eval_fun(params, eval_data, ones(eval_weights))
    metric: Optional[Callable]
    early_stop: bool
    progress: bool
    mesh: Any
    data_axis: str
    dtype: str
    key_impl: Optional[str]  # a typed key's implementation; None: a raw uint32 key
    fast_epochs: bool = False  # an epoch's steps without the rollback selects, run again exactly if one was not finite
    loss_key: bool = False  # fun takes a per-step PRNG key as its last argument (step_key)




# -- the progress bar (host side: jaxgd._progress) ---------------------------
def _last_row(cfg: Config, r: FitResult, total: Any = None) -> tuple:
    last = jnp.maximum(r.epochs - 1, 0)
    return r.epochs, cfg.epochs if total is None else total, r.history.loss[last], r.history.eval_loss[last]


def close_progress(cfg: Config, result: FitResult) -> None:
    """Close the progress bar from the host (after a run split into chunks)."""
    if cfg.progress:
        _progress.close_epoch(*(np.asarray(x) for x in _last_row(cfg, result)), np.asarray(result.status))


# -- the compiled run ------------------------------------------------------
def _constrain(tree: Any, cfg: Config, spec: Any) -> Any:
    if cfg.mesh is None:
        return tree
    from jax.sharding import NamedSharding

    return lax.with_sharding_constraint(tree, NamedSharding(cfg.mesh, spec))


def _pack(
    cfg: Config, state: FitState, status: jax.Array, best_params: Params, best_loss: jax.Array,
    best_epoch: jax.Array, history: FitHistory,
) -> FitResult:
    return FitResult(
        params=best_params if cfg.early_stop else state.params,
        best_params=best_params,
        best_epoch=best_epoch,
        best_loss=best_loss,
        epochs=state.epoch,
        steps=state.count,
        status=status,
        history=history,
        state=state,
    )


def start(solver: Solver, cfg: Config, params: Params, key: jax.Array) -> FitResult:
    """The carry before the first epoch (a history buffer of ``cfg.epochs`` rows);
    ``key`` is the key data (``jax.random.key_data`` of a typed key)."""
    from jax.sharding import PartitionSpec as P

    params, valid = solver.first_point(params)  # a traced argument out of range: no epoch runs (None: checked)
    params = _constrain(params, cfg, P())
    status = jnp.asarray(FitStatus.RUNNING, jnp.int32)
    if valid is not None:
        status = jnp.where(valid, status, FitStatus.INVALID_ARGUMENT).astype(jnp.int32)
    dtype = jnp.dtype(cfg.dtype)
    nan = jnp.full((cfg.epochs,), jnp.nan, dtype)
    zero = jnp.asarray(0, jnp.int32)
    accel = fista_init(params, dtype) if solver.accelerated else ()
    state = FitState(params, params, solver.direction.init(params), zero, zero, zero, key, accel)
    return _pack(
        cfg, state, status, params, jnp.full((), jnp.inf, dtype), zero,
        FitHistory(nan, nan, nan, nan),
    )


def tested_per_epoch(solver: Solver, cfg: Config) -> bool:
    """Whether a fast epoch (``cfg.fast_epochs``) tests finiteness once, at its end, instead of at every step.

    True for a built-in first-order direction (one that is not finite wherever the gradient is
    not: ``Direction.keeps_nonfinite``) without a box (whose projection can make an Inf finite)
    or an ``l2`` penalty added to the loss (a total that overflows where the loss does not). A
    non-finite gradient then gives a non-finite point, and a non-finite point stays non-finite
    (``p + alpha d`` and soft-thresholding keep NaN and Inf), so "every loss of the epoch and its
    last point are finite" holds exactly when every step was: the epoch runs again exactly
    otherwise. A sum is finite only when all its terms are (one that overflows only runs the
    epoch again). The per-step tests cost ``fit`` 8-11 % against a hand-written optax loop
    (benchmarks F, session 14).
    """
    return bool(cfg.fast_epochs) and not _penalised(solver) and not solver.prox.bounded \
        and getattr(solver.direction, "keeps_nonfinite", False) is True


def _penalised(solver: Solver) -> bool:
    """Whether the loss fit differentiates has ``l2``'s penalty added (not decoupled decay)."""
    return solver.l2 is not None and not solver.direction.decoupled_l2


def model_inputs(solver: Solver, cfg: Config) -> tuple[Solver, Config, Optional[PyTree]]:
    """``fit`` on a Flax NNX / Equinox model: its functions (bound to the model's fixed arrays,
    :class:`jaxgd.interop.models.BoundModelFun`) as their interned loss, the compiled loop's key, and
    those arrays, an input of the loop (``rest``), so that a fresh model of the same shapes re-uses the
    loop; ``rest`` None for anything else (nothing changed)."""
    rest = _models.bound_rest(solver.fun)
    if rest is None:
        return solver, cfg, None
    solver = solver.with_fun(_models.unbind(solver.fun))
    return solver, cfg._replace(eval_fun=_models.unbind(cfg.eval_fun), metric=_models.unbind(cfg.metric)), rest


def _with_rest(solver: Solver, cfg: Config, rest: Optional[PyTree]) -> tuple[Solver, Config]:
    """Inverse of :func:`model_inputs` inside the loop, with ``rest`` traced."""
    if rest is None:
        return solver, cfg
    solver = solver.with_fun(_models.rebind(solver.fun, rest))
    return solver, cfg._replace(eval_fun=_models.rebind(cfg.eval_fun, rest), metric=_models.rebind(cfg.metric, rest))


def loop(
    solver: Solver, cfg: Config, result: FitResult, data: Any, eval_data: Any, patience: Any,
    stop: Optional[jax.Array] = None, n_epochs: Any = None, show: Any = None, rest: Optional[PyTree] = None,
) -> FitResult:
    """Run epochs from ``result`` until the run stops or ``stop`` epochs have run.

    A result that stopped only because its epochs ran out (``EPOCHS``) goes
    on when ``cfg.epochs`` is larger: that is how a finished run is extended.
    ``n_epochs`` (traced; default ``cfg.epochs``, then the history's row
    capacity) is the run's epoch count, and ``show`` (traced; default on)
    switches the progress bar of a loop compiled with ``cfg.progress``: see
    :func:`loop_jit`, which compiles once per bucket of epochs. ``rest``: a
    model's fixed arrays (:func:`model_inputs`).
    """
    from jax.sharding import PartitionSpec as P

    solver, cfg = _with_rest(solver, cfg, rest)

    epochs = cfg.epochs if n_epochs is None else n_epochs

    n, b, nb = cfg.n, cfg.batch_size, cfg.n_batches
    dtype = jnp.dtype(cfg.dtype)
    penalty = _penalised(solver)
    replicated, by_example = P(), P(cfg.data_axis)

    if cfg.loss_key:  # the loss's key stream (LOSS_KEY_STREAM), fixed for the run: the carry's key never changes
        raw = result.state.key
        stream = jax.random.fold_in(raw if cfg.key_impl is None else jax.random.wrap_key_data(raw, impl=cfg.key_impl),
                                    LOSS_KEY_STREAM)

    def objective(p: Params, batch: Any, w: Any, k: Any = None) -> tuple[jax.Array, jax.Array]:
        extra = (() if w is None else (w,)) + (() if k is None else (k,))
        loss = jnp.asarray(solver.fun(p, batch, *extra))
        total = loss + l2_penalty(solver.l2, p).astype(loss.dtype) if penalty else loss
        return total, loss

    def step(carry: tuple, xs: Any, exact: bool = True) -> tuple[tuple, jax.Array]:
        p, prev, dstate, count, bad, accel = carry
        idx, w = xs if cfg.mask else (xs, None)
        batch = _constrain(_tree.tmap(lambda x: x[idx], data), cfg, by_example)
        w = None if w is None else _constrain(w, cfg, by_example)
        at, new_accel = p, accel
        if solver.accelerated:  # FISTA: the minibatch gradient at y = p + beta (p - p_prev)
            at, _, new_accel = fista_extrapolate(accel, p, solver.prox.project)
        k = jax.random.fold_in(stream, count) if cfg.loss_key else None  # the step's key
        (total, loss), grad = jax.value_and_grad(objective, has_aux=True)(at, batch, w, k)
        value_fn = lambda q: objective(q, batch, w, k)[0]  # noqa: E731
        ustate = _update.UpdateState(count, dstate, ())
        trial, ustate, _, _ = _update.update(solver, grad, ustate, at, value=total, value_fn=value_fn)
        new, new_dstate = trial.params, ustate.direction_state
        if not exact and epoch_test:  # every step taken, tested once at the epoch's end (run_steps)
            return (_constrain(new, cfg, replicated), carry[0], new_dstate, count + 1, bad, new_accel), loss.astype(dtype)
        # The non-finite policy of jaxgd.core.update: a step is taken only when
        # the loss and gradient it starts from, and its result, are finite; a
        # non-finite loss or gradient at p steps back to prev, whose were finite.
        grad_finite, both_finite = _tree.all_finite_pair(grad, new)
        finite_here = jnp.isfinite(total) & grad_finite
        if not exact:  # every step taken: the epoch runs again exactly if one was not ok (run_steps)
            ok = finite_here & both_finite
            p = _constrain(new, cfg, replicated)
            return (p, carry[0], new_dstate, count + 1, bad | ~ok, new_accel), loss.astype(dtype)
        ok = _tree.shared(~bad & finite_here & both_finite, p)  # (computed once for a many-leaf tree's selects)
        back = _tree.shared(~bad & ~finite_here & (count > 0), p)
        # prev first, then p from the new prev (equal to the old one whenever
        # ``back``): p's select then reads the new prev rather than the old one,
        # so XLA can update both in place without copying them every step
        # (selecting both from the old pair is a swap, which needs copies).
        prev = _update.keep_if(ok, p, prev)
        p = _update.keep_if(ok, new, _update.keep_if(back, prev, p))
        p = _constrain(p, cfg, replicated)
        dstate = _update.keep_if(ok, new_dstate, dstate)
        if solver.accelerated:
            accel = _update.keep_if(ok, new_accel, accel)
        count = count + ok.astype(count.dtype) - back.astype(count.dtype)
        return (p, prev, dstate, count, bad | ~ok, accel), loss.astype(dtype)

    def run_steps(init: tuple, xs: Any) -> tuple[tuple, jax.Array]:
        # With cfg.fast_epochs the epoch's steps first run without the rollback selects (in the
        # steps of an epoch where every loss, gradient and new point is finite, ``ok`` is True
        # throughout and the selects keep nothing: the same values); only when a step was not ok
        # does the epoch run again from its start with them. The selects and their copies cost
        # fit ~20 % against a hand-written optax loop on two cores (benchmarks/RESULTS.md, F).
        if not cfg.fast_epochs:
            return lax.scan(step, init, xs)
        fast = lax.scan(functools.partial(step, exact=False), init, xs)
        if epoch_test:  # one test for the epoch: its losses and its last point (tested_per_epoch)
            (p, prev, dstate, count, _, accel), losses = fast
            sums = [jnp.sum(x) for x in _tree.leaves(p)] + [jnp.sum(losses)]
            fast = (p, prev, dstate, count, ~jnp.isfinite(sum(sums[1:], sums[0])), accel), losses
        return lax.cond(fast[0][4], lambda: lax.scan(step, init, xs), lambda: fast)

    epoch_test = tested_per_epoch(solver, cfg)

    if cfg.mask:
        weights = (jnp.arange(nb * b) < n).astype(dtype).reshape(nb, b)
        counts = weights.sum(axis=1)

    def evaluate(p: Params) -> tuple[jax.Array, jax.Array]:
        nan = jnp.full((), jnp.nan, dtype)
        if cfg.eval_fun is None:
            return nan, nan
        eval_fun = solver.fun if cfg.eval_fun is SAME_AS_FUN else cfg.eval_fun
        if cfg.eval_weights:
            ev = eval_fun(p, eval_data, jnp.ones((cfg.eval_weights,), dtype))
        else:
            ev = eval_fun(p, eval_data)
        m = nan if cfg.metric is None else jnp.asarray(cfg.metric(p, eval_data)).astype(dtype)
        return jnp.asarray(ev).astype(dtype), m

    def body(r: FitResult) -> FitResult:
        c = r.state
        key = c.key if cfg.key_impl is None else jax.random.wrap_key_data(c.key, impl=cfg.key_impl)
        perm = jax.random.permutation(jax.random.fold_in(key, c.epoch), n)
        pad = nb * b - n  # (MASK: the last batch's padding, weighted 0; a batch_size above n pads past perm's end)
        idx = (jnp.concatenate([perm, perm[:pad] if pad <= n else jnp.resize(perm, pad)]) if cfg.mask
               else perm[: nb * b]).reshape(nb, b)
        xs = (idx, weights) if cfg.mask else idx
        init = (c.params, c.prev, c.direction_state, c.count, jnp.asarray(False), c.accel)
        (p, prev, dstate, count, bad, accel), losses = run_steps(init, xs)
        train = jnp.sum(losses * counts) / n if cfg.mask else jnp.mean(losses)
        ev, m = evaluate(p)
        if cfg.eval_fun is not None:
            # a non-finite eval loss where the epoch ended: that point is not one to hand back, and the epoch
            # is rolled back (its steps uncounted), as a non-finite minibatch loss rolls back its step
            off = ~bad & ~jnp.isfinite(ev)
            kept = (c.params, c.prev, c.direction_state, c.count, c.accel)
            back = _tree.shared(~off, p)
            p, prev, dstate, count, accel = _update.keep_if(back, (p, prev, dstate, count, accel), kept)
            bad = bad | off
        monitored = ev if cfg.eval_fun is not None else train
        improved = (monitored < r.best_loss) & jnp.isfinite(monitored)  # (NaN and -inf: no improvement, as in Keras)
        epoch = c.epoch + 1
        wait = jnp.where(improved, 0, c.wait + 1)
        status = jnp.where(epoch >= epochs, FitStatus.EPOCHS, FitStatus.RUNNING)
        if cfg.early_stop:
            status = jnp.where(wait >= patience, FitStatus.PATIENCE, status)
        status = jnp.where(bad, FitStatus.NONFINITE, status).astype(jnp.int32)
        lr = jnp.asarray(_update.schedule_value(solver, jnp.maximum(count - 1, 0))).astype(dtype)
        h, row = r.history, c.epoch
        history = FitHistory(
            h.train_loss.at[row].set(train), h.eval_loss.at[row].set(ev), h.metric.at[row].set(m), h.lr.at[row].set(lr)
        )
        if cfg.progress:
            _report(show, lambda: _driver.report_epoch(epoch, epochs, train, ev))
        return _pack(
            cfg,
            FitState(p, prev, dstate, count, epoch, wait, c.key, accel),
            status,
            best_params=_tree.where(improved, p, r.best_params),
            best_loss=jnp.where(improved, monitored, r.best_loss),
            best_epoch=jnp.where(improved, epoch, r.best_epoch),
            history=history,
        )

    more = (result.status == FitStatus.EPOCHS) & (result.epochs < epochs)
    result = result._replace(status=jnp.where(more, FitStatus.RUNNING, result.status).astype(jnp.int32))

    return lax.while_loop(lambda r: _driver.running(r.status, r.epochs, stop), body, result)


def _report(show: Any, callback: Callable[[], None]) -> None:
    """``callback()`` (a progress report), under ``lax.cond`` when ``show`` is a traced flag."""
    if show is None:
        callback()
    else:
        lax.cond(show, callback, lambda: None)


def run(
    solver: Solver, cfg: Config, params: Params, data: Any, eval_data: Any, key: jax.Array, patience: Any,
    n_epochs: Any = None, show: Any = None, rest: Optional[PyTree] = None,
) -> FitResult:
    """A whole run: ``start``, then ``loop`` to the end."""
    result = loop(solver, cfg, start(solver, cfg, params, key), data, eval_data, patience, None, n_epochs, show, rest)
    if cfg.progress:
        _report(show, lambda: _driver.report_epoch(*_last_row(cfg, result, n_epochs), final=True, status=result.status))
    return result


def _jit_cfg(fn: Callable) -> Callable:
    return _compile.jit(fn, params_at=2, static_argnames=("cfg",))


def _compiled_cfg(cfg: Config) -> tuple[Config, Any, Any]:
    """The static config the loop compiles for and the traced ``(epochs, show)``:
    history rows for a bucket of epochs (:func:`jaxgd.core.driver.step_bucket`,
    so that a new ``epochs`` re-uses the compiled loop; the host trims the rows
    to the epochs run), progress compiled in and switched by the flag ``show``.

    While the persistent compilation cache is on, the bar is compiled in only when asked (``show``
    None): JAX writes no program with a host callback to disk, and the loop with the bar switched off
    by the flag was compiled again in every process (1.8-2 s of a 2.4 s first call)."""
    epochs = np.asarray(cfg.epochs, np.int32)
    if _compile_cache.persisting():
        return cfg._replace(epochs=_driver.step_bucket(cfg.epochs)), epochs, None
    return cfg._replace(epochs=_driver.step_bucket(cfg.epochs), progress=True), epochs, np.asarray(cfg.progress)


def _fit_rows(result: FitResult, rows: int) -> FitResult:
    """Pad (NaN) a result's history to the compiled loop's rows (a restored or chunked run)."""
    if result.history.train_loss.shape[-1] == rows:
        return result
    h = result.history
    return result._replace(history=_driver.resize_history(h, rows, h.train_loss.dtype))


def run_jit(solver: Solver, cfg: Config, params: Params, data: Any, eval_data: Any, key: jax.Array, patience: Any,
            rest: Optional[PyTree] = None) -> FitResult:
    """:func:`run` under a ``jax.jit`` cached per loss function (weakly,
    :mod:`jaxgd.core.cache`), compiled once per bucket of ``epochs`` and
    for both ``progress`` settings (once per setting while the persistent cache is on)."""
    ccfg, epochs, show = _compiled_cfg(cfg)
    fn = _cache.jit_per_function(solver.fun, "fit.run", run, _jit_cfg)
    return fn(solver, ccfg, params, data, eval_data, key, patience, epochs, show, rest)


def start_jit(solver: Solver, cfg: Config, *args: Any) -> FitResult:
    ccfg, _, _ = _compiled_cfg(cfg)
    return _cache.jit_per_function(solver.fun, "fit.start", start, _jit_cfg)(solver, ccfg, *args)


def loop_jit(
    solver: Solver, cfg: Config, result: FitResult, data: Any, eval_data: Any, patience: Any, stop: Any = None,
    rest: Optional[PyTree] = None,
) -> FitResult:
    ccfg, epochs, show = _compiled_cfg(cfg)
    fn = _cache.jit_per_function(solver.fun, "fit.loop", loop, _jit_cfg)
    return fn(solver, ccfg, _fit_rows(result, ccfg.epochs), data, eval_data, patience, stop, epochs, show, rest)
