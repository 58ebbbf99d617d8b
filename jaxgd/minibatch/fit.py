"""``fit``: minibatch (stochastic) training over a data set in one compiled run.

This module validates the arguments on the host and places the data; the
run itself is ``_fit_loop`` (one ``jax.jit`` call: a ``lax.while_loop`` over
epochs, a ``lax.scan`` over each epoch's batches), or ``_fit_resume`` when
the run is checkpointed or resumed. Minibatching is data layout, not control
flow (STYLE.md principle 14).

The update is :class:`jaxgd.Solver`'s, taken once per minibatch: the
gradient (clipped to ``clip``), a direction from the registry, the step size
of a time-only schedule. A minibatch step evaluates the loss once, on the
batch it moves with, so line searches (which need exact losses of one fixed
objective) are refused.
"""

from __future__ import annotations

import enum
import inspect
import math
import os
from collections.abc import Iterator
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..directions import registry as _directions

from . import loop as _fit_loop

from . import resume as _fit_resume

from ..core import cache as _cache
from ..core import compile as _compile
from ..core import loss_check as _loss_check

from ..core import options as _options
from ..core.options import default as _D

from ..core import minimize as _minimize
from ..core import minimize_run as _minimize_run

from ..core import progress as _progress

from ..core import stepsize as _stepsize

from .. import _mesh, _tree, _validate
from ..interop import explain as _explain
from ..interop import models as _models
from .loop import Config, FitHistory, FitResult, FitState, FitStatus
from ..core.solver import Solver
from ..linesearch import ReduceOnPlateau
from ..schedules import PerEpoch
from .._types import ArrayLike, LossFn, Params, PRNGKey

__all__ = ["FitHistory", "FitResult", "FitState", "FitStatus", "Remainder", "fit"]

UNKNOWN_KWARG = _options.UNKNOWN_KWARG
LINE_SEARCH = (
    "lr={lr!r} is a step-size rule that reads the loss or gradient along the run (a line search needs exact loss "
    "evaluations of one objective; Barzilai-Borwein and Polyak compare consecutive steps' gradients or losses); "
    "fit takes one noisy minibatch gradient per step: pass a float or a schedule (count -> lr, e.g. "
    "jaxgd.schedules.per_epoch(...)) as lr"
)
# The way to PyTorch's ReduceLROnPlateau in fit (checked: the resumed run is the uninterrupted run of a
# piecewise-constant schedule, tests/test_fit_resume.py).
LOWER_LR_AND_RESUME = (
    "for PyTorch's ReduceLROnPlateau (a cut once the epoch's loss stops improving), run some epochs, r = fit(..., "
    "lr=lr0, epochs=k), look at r.history (train_loss, eval_loss), then go on with a lower rate: fit(fun, r.params, "
    "data, ..., lr=lr0 * 0.1, epochs=k + m, resume=r), which keeps the optimizer state (momentum, Adam's moments, "
    "the step count); patience= stops the run early"
)
PLATEAU_RULE = (
    "lr={lr!r} cuts the step size when the loss of each step stops improving, which fit's steps cannot tell: each "
    "step's loss is of another minibatch (noise, not a plateau); " + LOWER_LR_AND_RESUME
)
OPTAX_LR = (
    "lr must be a float or a schedule (count -> lr), got an optax transformation ({kind}): an optimizer goes in "
    "method= (method=optax.adam(1e-3), say), and optax.contrib.reduce_on_plateau needs the loss passed to its "
    "update, which fit does not do; " + LOWER_LR_AND_RESUME
)
DEFAULT_LINE_SEARCH = (
    "method={method!r} defaults to a line search, which fit cannot use; pass lr= "
    "(a float or a schedule)"
)
BAD_DATA = "{name} must be a pytree of arrays with a leading (example) axis; {what}"
NOT_AN_ARRAY = (
    "{where} is a {kind}, not an array: fit takes the whole data set as arrays (e.g. data=(X, y) with X of "
    "shape (n, ...)) and draws the minibatches itself; concatenate an iterator's or DataLoader's batches first"
)
LISTED = " (a Python list is a pytree of its items to JAX: pass np.asarray(the list) for one array)"
MISMATCH = (
    "{name} leaves must share the leading (example) axis; got {first} with {n0} examples "
    "and {other} with {n1}"
)
BAD_BATCH = (
    "batch_size must be a positive integer no larger than the number of examples ({n}) (or any positive integer "
    "with remainder=Remainder.MASK: one padded batch), got batch_size={batch_size!r}"
)
BAD_EPOCHS = "epochs must be a positive integer, got epochs={epochs!r}"
TOO_MUCH_HISTORY = (
    "epochs={epochs!r} records one history row per epoch, allocated before the run (4 numbers each: {gb:.1f} GB "
    "in float64); at most {limit:,} epochs a call: run fewer, and go on with fit(..., resume=result)"
)
TOO_MANY_EPOCHS = (
    "epochs={epochs!r} with {batches} batches an epoch is {steps} steps, more than the step counter (an int32) "
    "holds: at most {limit} steps"
)
BAD_PATIENCE = "patience must be None or a positive integer, got patience={patience!r}"
BAD_REMAINDER = "remainder must be a jaxgd.Remainder ({valid}), got remainder={remainder!r}"
BAD_KEY_TYPE = (
    "key must be a PRNG key, jax.random.key(seed) or jax.random.PRNGKey(seed), got key={key!r}"
)
BAD_KEY = "key must be a single PRNG key (a typed key of shape () or a uint32 array of shape (2,)), got {what}"
NOT_SCALAR = "{name} must return a real {kind} scalar{how}; got {what}"
FIT_PAIR = (
    ". fit has no has_aux: its loss returns the loss alone. A model state the loss updates (a Flax Linen "
    "BatchNorm's batch_stats from apply(..., mutable=[...])) cannot be carried by fit; run jaxgd's step in your "
    "own loop, jaxgd.as_optax(method, lr) as the optimizer, carrying the state (docs/api/models.md); minimize "
    "takes has_aux=True (full batch)"
)
EVAL_UNDER_MASK = (
    "eval_fun is called as eval_fun(params, eval_data), also under remainder=Remainder.MASK (fit's default "
    "eval, eval_fun left out, calls fun(params, eval_data, ones)): leave eval_fun out to evaluate fun, or pass "
    "a function of (params, eval_data)"
)
MASK_SIGNATURE = (
    "with remainder=Remainder.MASK, fun is called as fun(params, batch, weights) and must return "
    "the weighted mean sum(weights * losses) / sum(weights); calling it failed: {err}"
)
NEEDS_EVAL = "{name} is evaluated on eval_data, but eval_data is None"
PER_EPOCH_STEPS = (
    "lr=per_epoch(schedule, steps_per_epoch={given}) advances its schedule every {given} steps, but fit takes {steps} "
    "steps an epoch here ({how}); pass steps_per_epoch={steps}"
)
NOT_CALLABLE = "{name} must be callable, got {kind}"
BAD_MESH = "mesh must be a jax.sharding.Mesh, got {kind}"
BAD_AXIS = "data_axis={axis!r} is not an axis of the mesh; its axes are {axes}"
BAD_AXIS_TYPE = "data_axis must be a mesh axis name (a str), got data_axis={axis!r}"
MESH_DIVIDE = "batch_size must be divisible by the {size} devices of mesh axis {axis!r}, got batch_size={batch_size!r}"
BAD_PROGRESS = "progress must be a bool, got progress={progress!r}"
BAD_LOSS_KEY = (
    "loss_key must be a bool (True: fun is called as fun(params, batch, key) with a PRNG key that differs every "
    "optimizer step, for dropout masks or data augmentation; False, the default: fun(params, batch)), got "
    "loss_key={loss_key!r}{how}"
)
LOSS_KEY_HINT = (
    "; with loss_key=True fun also takes the step's PRNG key, as its last argument: def fun(params, batch, key) "
    "(def fun(params, batch, weights, key) with remainder=Remainder.MASK), or leave loss_key out for a loss "
    "without randomness"
)
MASK_KEY_HINT = (
    "; for a loss of (params, batch, weights, key) that draws random numbers (dropout masks, augmentation), pass "
    "loss_key=True (a new key every optimizer step)"
)
LOSS_KEY_EVAL = (
    "with loss_key=True and eval_data, fit's default eval_fun calls {call} without a key (evaluation is "
    "deterministic), but fun{sig} needs one: pass eval_fun=a function of (params, eval_data) without randomness "
    "(dropout off), or give fun's key a default (key=None) meaning evaluation"
)



class Remainder(enum.Enum):
    """What :func:`fit` does with the last ``n % batch_size`` examples of an epoch.

    ``DROP``: leave them out of this epoch (a different subset each epoch,
    since every epoch reshuffles); every batch is full and ``fun(params,
    batch)`` is called as usual. ``MASK``: pad the last batch to
    ``batch_size`` with examples that carry weight 0, and call
    ``fun(params, batch, weights)``; ``fun`` must return the weighted mean
    ``sum(w_i * loss_i) / sum(w_i)``, so every example counts once per epoch.
    With ``loss_key=True`` the step's PRNG key comes last in either call.
    """

    DROP = "drop"
    MASK = "mask"


# -- host-side validation ----------------------------------------------------
def _num_examples(name: str, data: Any) -> int:
    pairs = jax.tree_util.tree_leaves_with_path(data)
    if not pairs:
        raise ValueError(BAD_DATA.format(name=name, what=f"got a pytree with no leaves ({data!r})"))
    n0, first = None, None
    for path, leaf in pairs:
        where = lambda: f"{name}{_tree.leaf_path(path)}"  # noqa: E731  (formatted for a message only)
        if not hasattr(leaf, "shape") and not isinstance(leaf, (bool, int, float, complex)):
            what = NOT_AN_ARRAY.format(where=f"leaf {where()}", kind=type(leaf).__name__)
            raise ValueError(BAD_DATA.format(name=name, what=what))
        dtype = getattr(leaf, "dtype", None)
        if isinstance(dtype, np.dtype) and dtype.kind in "OSUMm":  # (strings, objects, dates: JAX named neither)
            what = f"leaf {where()} has dtype {dtype}, which JAX cannot hold: encode it as numbers first"
            raise ValueError(BAD_DATA.format(name=name, what=what))
        shape = np.shape(leaf)
        if len(shape) == 0:
            listed = _in_a_list(data, path)
            what = f"leaf {where()} is a scalar" + (LISTED if listed else "")
            raise ValueError(BAD_DATA.format(name=name, what=what))
        if n0 is None:
            n0, first = shape[0], path
        elif shape[0] != n0:
            first = f"{name}{_tree.leaf_path(first)}"
            raise ValueError(MISMATCH.format(name=name, first=first, n0=n0, other=where(), n1=shape[0]))
    if n0 == 0:
        raise ValueError(BAD_DATA.format(name=name, what=f"{name}{_tree.leaf_path(first)} has no examples"))
    return int(n0)


def _in_a_list(data: Any, path: tuple) -> bool:
    """Whether the leaf at ``path`` in ``data`` is an item of a Python list (a tuple is a container of arrays)."""
    parent = data
    for key in path[:-1]:
        if isinstance(key, jax.tree_util.SequenceKey):
            parent = parent[key.idx]
        elif isinstance(key, jax.tree_util.DictKey):
            parent = parent[key.key]
        else:
            parent = getattr(parent, getattr(key, "name", ""), None)
    return isinstance(parent, list) and bool(path) and isinstance(path[-1], jax.tree_util.SequenceKey)


def _check_not_iterators(**given: Any) -> None:
    """Refuse a generator or iterator of batches (JAX would warn that it flattens one as a leaf)."""
    for name, value in given.items():
        if isinstance(value, Iterator):
            what = NOT_AN_ARRAY.format(where=name, kind=type(value).__name__)
            raise ValueError(BAD_DATA.format(name=name, what=what))


def _positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def _check_key(key: Any) -> None:
    dtype = getattr(key, "dtype", None)
    if dtype is None or not hasattr(key, "shape"):
        raise TypeError(BAD_KEY_TYPE.format(key=key))
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(BAD_KEY.format(what=f"a key array of shape {key.shape}"))
    elif dtype != np.uint32 or tuple(key.shape) != (2,):
        raise ValueError(BAD_KEY.format(what=f"an array of dtype {dtype} and shape {tuple(key.shape)}"))


def _key_impl(key: Any) -> Optional[str]:
    """A typed key's implementation name (None for a raw ``uint32`` key)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return str(jax.random.key_impl(key))
    return None


def _spec(tree: Any, batch: Optional[int] = None) -> Any:
    """Shape/dtype structs of ``tree``, with the leading axis replaced by ``batch``."""

    def one(x: Any) -> jax.ShapeDtypeStruct:
        shape = tuple(np.shape(x))
        dtype = jnp.result_type(x) if hasattr(x, "dtype") else jnp.asarray(x).dtype
        return jax.ShapeDtypeStruct(shape if batch is None else (batch,) + shape[1:], dtype)

    return jax.tree_util.tree_map(one, tree)


def _scalar_dtype_uncached(fn: Callable, name: str, how: str, treedef: Any, specs: tuple, call_error: str,
                           call: str, data_name: str) -> str:
    args = jax.tree_util.tree_unflatten(treedef, specs)
    arg_names = ("params", data_name)
    try:
        closed, out = jax.make_jaxpr(fn, return_shape=True)(*args)
    except TypeError as err:
        if not call_error:
            raise _explain.call_failed(call, dict(zip(arg_names, args)), err) from err
        raise TypeError(call_error.format(err=err)) from err
    except ValueError as err:
        raise _explain.call_failed(call, dict(zip(arg_names, args)), err) from err
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    # a metric is recorded (cast to the history's dtype): a count of correct predictions (int32) or a bool is one;
    # fun and eval_fun are differentiated or monitored: a floating scalar
    kinds = (jnp.floating, jnp.integer, jnp.bool_) if name == "metric" else (jnp.floating,)
    if shape != () or dtype is None or not any(jnp.issubdtype(dtype, k) for k in kinds):
        what = f"shape {shape} and dtype {dtype}" if shape is not None else repr(out)
        kind = "(floating, integer or bool)" if name == "metric" else "floating-point"
        pair = name == "fun" and isinstance(out, (tuple, list))
        raise TypeError(NOT_SCALAR.format(name=name, kind=kind, how=how, what=what) + (FIT_PAIR if pair else ""))
    if name == "fun":  # (a loop in it that reverse mode cannot pass: named, nothing compiled)
        _loss_check.check_reverse(fn, closed, *args)
    return str(dtype)


_SCALAR_CHECKED = _cache.PerFunction(maxsize=64)  # fn -> {specs: dtype}, weakly in fn


def _scalar_dtype(fn: Callable, name: str, how: str, *args: Any, call_error: str = "", call: str = "",
                  data_name: str = "batch") -> str:
    """Check through ``jax.eval_shape`` (cached per structure) that ``fn(*args)``
    is a real scalar; a failing call raises ``call_error`` (when given) with the
    original error, else names the call (``call``; ``"{name}(params, batch)"`` by default)."""
    specs, treedef = jax.tree_util.tree_flatten(args)
    key = (name, how, treedef, tuple(specs), call_error, call or f"{name}(params, batch)", data_name)
    try:
        hash((fn, key))
    except TypeError:  # an unhashable function: check every time
        return _scalar_dtype_uncached(fn, *key)
    return _SCALAR_CHECKED.get(fn, key, lambda: _scalar_dtype_uncached(fn, *key))


def _check_callable(name: str, fn: Any) -> None:
    if fn is not None and not callable(fn):
        raise TypeError(NOT_CALLABLE.format(name=name, kind=type(fn).__name__))




def _place(cfg: Config, params: Params, data: Any, eval_data: Any, key: PRNGKey, rest: Any) -> tuple:
    """Put the inputs on the mesh: parameters, key and a model's fixed arrays ``rest`` replicated, examples split."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh, axis = cfg.mesh, cfg.data_axis
    replicated = NamedSharding(mesh, P())
    size = mesh.shape[axis]

    def split(tree: Any) -> Any:
        if tree is None:
            return None
        even = all(np.shape(x)[0] % size == 0 for x in jax.tree_util.tree_leaves(tree))
        return jax.device_put(tree, NamedSharding(mesh, P(axis)) if even else replicated)

    return (jax.device_put(params, replicated), split(data), split(eval_data), jax.device_put(key, replicated),
            jax.device_put(rest, replicated))


# -- the public function ---------------------------------------------------
@_compile.without_debug_nans
@_options.document
def fit(
    fun: LossFn,
    params: Params,
    data: Any,
    *,
    batch_size: int,
    epochs: int,
    key: PRNGKey,
    loss_key: bool = False,
    method: Any = "adam",
    lr: Any = None,
    eval_data: Any = None,
    eval_fun: Optional[Callable] = None,
    metric: Optional[Callable] = None,
    patience: Optional[int] = None,
    remainder: Remainder = Remainder.DROP,
    mesh: Any = None,
    data_axis: str = "data",
    progress: bool = _D("progress"),
    clip: Optional[ArrayLike] = _D("clip"),
    l1: ArrayLike = _D("l1"),
    l2: ArrayLike = _D("l2"),
    bounds: Any = _D("bounds"),
    accelerated: bool = _D("accelerated"),
    checkpoint_every: Optional[int] = None,
    checkpoint_path: Optional[str | os.PathLike] = None,
    resume: Any = None,
    **unknown: Any,
) -> FitResult:
    """Train ``params`` on minibatches of ``data``, every epoch in one jit-compiled run.

    Each epoch draws the permutation ``pi = jax.random.permutation(
    fold_in(key, epoch), n)`` of the ``n`` examples (epoch counted from 0),
    cuts it into consecutive batches :math:`B_1, \\ldots, B_m` of
    ``batch_size`` and takes one step per batch:

    .. math::
       g_k = \\mathrm{clip}\\Big(\\nabla_\\theta \\Big[\\tfrac{1}{|B_k|}
       \\sum_{i \\in B_k} \\ell(\\theta_k; x_i) + \\tfrac{\\lambda}{2}
       \\lVert\\theta_k\\rVert^2\\Big]\\Big),\\quad
       \\theta_{k+1} = \\theta_k + \\alpha_k\\, \\mathrm{direction}(g_k)

    with :math:`\\alpha_k` = ``lr`` at optimizer step :math:`k`,
    :math:`\\lambda` = ``l2`` and :math:`h` the ``l1`` norm and ``bounds``
    (the update ``minimize`` makes). With ``method="gd"`` this is minibatch
    stochastic gradient descent (Robbins & Monro, "A Stochastic Approximation
    Method", Ann. Math. Stat. 1951; Bottou, Curtis & Nocedal, "Optimization
    Methods for Large-Scale Machine Learning", SIAM Review 2018, Algorithm
    4.1, without replacement per epoch). After each epoch the model is
    evaluated on ``eval_data``; ``patience`` stops the run once the monitored
    loss (``eval_fun`` on ``eval_data``, else the epoch's training loss) has
    not improved for ``patience`` epochs and restores the best parameters
    (Prechelt, "Early Stopping -- But When?", 1998).

    With ``loss_key=True`` the loss also gets a PRNG key, ``fun(params,
    batch, k_s)``, a new one at every optimizer step :math:`s` (counted
    over the whole run from 0, as schedules count it; a resumed run goes on
    counting), for dropout masks, data augmentation or noise injection:

    .. math::
       k_s = \\mathtt{fold\\_in}(\\mathtt{fold\\_in}(\\mathit{key}, 2^{32} - 1), s)

    that is ``jax.random.fold_in(jax.random.fold_in(key, 0xFFFFFFFF),
    step)``, of the same kind as ``key`` (typed or a raw ``uint32`` pair).
    The shuffles are those of a run without it (epoch ``e`` folds in ``e <
    2**31``, so the two streams never meet). A hand-written loop reproduces
    the run by drawing both. Evaluation is deterministic: ``eval_fun`` and
    ``metric`` get no key.

    The run is deterministic: the same ``key`` gives bit-identical results.
    Hyperparameter values (``lr`` and a jaxgd schedule's numbers, ``l2``,
    ``clip``) are traced, so a new value re-uses the compiled run (and they
    may be traced themselves, under ``jax.jit``/``jax.vmap``), and so does a
    new ``patience`` (a Python int, passed to the run as data) or ``epochs``
    in the same power-of-two bucket (the history's length); ``batch_size``,
    ``epochs``, ``patience``, the data shapes and the functions must be
    concrete. A NaN/Inf minibatch loss, gradient or update ends the run
    (``FitStatus.NONFINITE``) with the last parameters whose minibatch loss
    and gradient were finite, never NaN parameters. So does a NaN/Inf eval
    loss (``eval_fun`` on ``eval_data``) after an epoch: that epoch is rolled
    back (the parameters it started from are returned, its steps are not
    counted; its history row shows the loss). The training loss is evaluated
    at the points the steps start from, so without ``eval_data`` the point the
    last step reaches is tested only for finite parameters.

    Data parallelism: with ``mesh=`` (a ``jax.sharding.Mesh``), every batch
    is split along ``data_axis`` over the mesh's devices and the parameters
    and optimizer state are replicated; XLA inserts the gradient all-reduce.
    ``batch_size`` must be divisible by the axis size. On several hosts, call
    ``jax.distributed.initialize()`` first in every process, build the mesh
    over all devices (``jax.make_mesh((jax.device_count(),), ("data",))``),
    and call ``fit`` in every process with the same arguments: the full
    ``data`` (or global ``jax.Array``s built with
    ``jax.make_array_from_process_local_data``) and the same ``key``.
    A mesh of Explicit axes (``jax.make_mesh``'s default; given as ``mesh``,
    holding ``data``, or put in context by ``jax.set_mesh``) runs on its Auto
    view (the same devices and layouts, XLA placing the collectives), and
    the arrays come back on the given mesh. Under ``jax.jit`` in JAX's
    Explicit mode, ``mesh=`` and data sharded over Explicit axes are refused:
    call ``fit`` outside the jit.

    Args:
      fun: the minibatch loss ``fun(params, batch) -> scalar``, a mean over
        the batch's examples; with ``Remainder.MASK``,
        ``fun(params, batch, weights) -> sum(weights * losses) / sum(weights)``;
        with ``loss_key``, the step's PRNG key as the last argument.
        Keep the same function object across calls to re-use the compiled run.
      params: the initial parameters, a pytree of real floating arrays.
      data: a pytree of arrays sharing the leading (example) axis, e.g.
        ``(X, y)`` or ``{"x": X, "y": y}``; a batch has the same structure.
      batch_size: examples per optimizer step, ``1 <= batch_size <= n``; with
        ``Remainder.MASK`` any ``batch_size >= 1`` (one larger than ``n`` is one
        batch of the ``n`` examples, padded with zero weights: PyTorch's
        ``DataLoader`` gives one batch of ``n``).
      epochs: the number of passes over the data (>= 1).
      key: a PRNG key, ``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``:
        the shuffles, and with ``loss_key`` the loss's keys.
      loss_key: a bool; True: call ``fun(params, batch, key)`` (``fun(params,
        batch, weights, key)`` with ``Remainder.MASK``) with the step's key
        :math:`k_s` above, for a loss that draws random numbers (dropout:
        ``eqx.nn.Dropout(p)(x, key=key)``, or ``nnx.Dropout(p)(x,
        rngs=nnx.Rngs(dropout=key))`` in a Flax NNX model). The default
        ``eval_fun`` (``fun`` itself) is then called without a key: give
        ``fun``'s key a default (``key=None``, dropout off) or pass
        ``eval_fun``.
      method: a method name (see :func:`jaxgd.methods`), a
        ``jaxgd.Direction`` or an ``optax.GradientTransformation``.
      lr: a float or a schedule ``step -> lr`` over optimizer steps (an optax
        schedule, a ``jaxgd.schedules`` one, or
        ``jaxgd.schedules.per_epoch(epoch_schedule, steps_per_epoch)``, whose
        ``steps_per_epoch`` must be fit's steps an epoch: ``n // batch_size``
        with ``Remainder.DROP``, ``ceil(n / batch_size)`` with ``Remainder.MASK``).
        Default 1e-3 (1.0 for an optax transformation). Line searches and
        other state-aware rules are refused. PyTorch's ``ReduceLROnPlateau``:
        continue a result ``r`` with a lower rate, ``fit(fun, r.params, data,
        ..., lr=lower, resume=r)``, which keeps the optimizer state.
      eval_data: held-out data, evaluated in one call after every epoch.
      eval_fun: ``eval_fun(params, eval_data) -> scalar``; default ``fun``
        (called with unit weights under ``Remainder.MASK``).
      metric: ``metric(params, eval_data) -> scalar`` recorded per epoch (an
        accuracy, say); it does not steer early stopping (to stop on a
        higher-is-better score, pass it negated as ``eval_fun``:
        ``eval_fun=lambda p, d: -accuracy(p, d)``, a float).
      patience: stop after this many epochs without improvement of the
        monitored loss (``eval_fun`` on ``eval_data``, else the epoch's
        training loss), and return the best parameters (None: run all
        epochs). An improvement is a finite loss strictly below the best
        so far: Keras's ``EarlyStopping(patience=patience, mode="min",
        min_delta=0, restore_best_weights=True)``, whose ``patience=0``
        (its default) stops as ``patience=1`` does here. The count of
        epochs without improvement carries over a resume, so a resumed run
        with a smaller ``patience`` can stop after one epoch.
      remainder: a :class:`Remainder`: ``DROP`` (default) or ``MASK``.
      mesh: a ``jax.sharding.Mesh`` for data parallelism (None: one device).
      data_axis: the mesh axis that splits the batch.
      {options:progress,clip,l1,l2,bounds,accelerated}
        In ``fit`` the penalties apply to each minibatch step, ``progress``
        is a bool (a bar over epochs with the training and eval loss), and
        with ``accelerated`` the epoch's training loss is taken at the
        extrapolated points (with a constant ``lr`` or a schedule: ``fit``
        takes no line search, so ``lbfgs`` with ``bounds``, L-BFGS-B, does
        not apply either).
      checkpoint_every: save a checkpoint every this many epochs: the compiled
        epoch loop runs in chunks of ``checkpoint_every`` epochs (one
        compiled program for every chunk) and the :class:`FitResult` so far
        (parameters, best parameters and loss, optimizer state, step count,
        epoch, PRNG key, patience counter, history) is written to
        ``checkpoint_path`` after each, atomically
        (:func:`jaxgd.save_checkpoint`), and again at an early stop.
      checkpoint_path: the checkpoint file. Alone (without
        ``checkpoint_every``) the final result is written once at the end.
      resume: continue a run instead of starting at ``params``: a checkpoint
        path (written with ``checkpoint_path``) or a :class:`FitResult`;
        ``epochs`` may be larger (extending a run that ended ``EPOCHS``; one stopped by
        ``patience`` or ``NONFINITE`` stays stopped, whatever ``epochs`` and ``patience``). With the same
        arguments, in the same 64-bit mode (a float32 run rounds otherwise with JAX's x64 mode on than off),
        the result is bit for bit the one of a run that was never
        interrupted. A file must match this call's ``method``, ``lr``, ``l1``, ``l2``, ``clip``,
        ``bounds``, ``accelerated``, ``loss_key``,
        ``batch_size``, ``remainder``, number of examples, ``key`` (data and
        implementation) and whether ``eval_data`` is given (a file written before jaxgd recorded a
        setting is not checked for it); a ``FitResult``
        is checked for its state's structure, shapes and dtypes (against
        ``params`` and ``method``), its key data and ``eval_data`` only, so
        it can be continued deliberately with other settings (another batch
        size, or a lower ``lr`` with the optimizer state kept: PyTorch's
        ``ReduceLROnPlateau`` by hand), which is then not the uninterrupted run. A
        dict from ``jaxgd.load_checkpoint(path)`` is refused: pass the path.

    Returns:
      A :class:`FitResult`: ``params``, ``best_params``, ``best_epoch``,
      ``best_loss``, ``epochs``, ``steps``, ``status`` (``status_enum``,
      ``success`` and ``message`` on the host), ``history`` (a
      :class:`FitHistory` trimmed to the epochs run) and ``state``. Under
      ``jax.jit``/``jax.vmap`` nothing can be trimmed: the history has a row
      per epoch of ``epochs`` rounded up to a power of two (the compiled
      bucket), NaN past the epochs each run ran: read ``result.epochs``.

    Raises:
      TypeError: ``fun``/``eval_fun``/``metric`` not callable or not returning
        a real scalar; ``fun`` whose signature cannot take fit's call (two arguments; three with
        ``loss_key`` or ``Remainder.MASK``, four with both), or, with ``loss_key`` and ``eval_data`` but no
        ``eval_fun``, that needs the key; a ``loss_key`` that is not a bool;
        a ``key`` that is not a key array, a bad ``remainder``, ``mesh``,
        ``data_axis`` or ``method``;
        integer ``params``; an optax transformation as ``lr``; a ``resume`` that is neither a ``FitResult`` nor
        a path; an unknown keyword.
      ValueError: mismatched leading axes in ``data``/``eval_data``;
        a key array of the wrong dtype or shape; ``batch_size`` <= 0, or > n
        without ``Remainder.MASK``; ``epochs`` < 1; ``patience`` < 1; ``lr``
        <= 0 or a ``jaxgd.linesearch`` rule, or a schedule whose ``lr(0)`` is negative or
        not finite; ``eval_fun``/``metric`` without ``eval_data``;
        a ``data_axis`` not in the mesh or not dividing ``batch_size``;
        ``checkpoint_every`` <= 0 or without ``checkpoint_path``; an ``lr``
        ``per_epoch(schedule, steps_per_epoch)`` whose concrete ``steps_per_epoch``
        is not fit's steps an epoch; a
        ``resume`` checkpoint of another kind of run, method, ``lr``, ``l1``, ``l2``,
        ``clip``, ``bounds``, ``accelerated``, ``loss_key``, batch size,
        remainder, number of examples or key, or with more epochs run than
        ``epochs``; a ``resume`` run with ``eval_data`` resumed without it
        (or the reverse); ``checkpoint_path`` under ``jax.jit``/``jax.vmap``;
        under ``jax.jit`` in Explicit mode, ``mesh`` (a mesh of Explicit axes
        in context) or ``data`` sharded over Explicit axes.
      FileNotFoundError: a ``resume`` file that does not exist, or a
        ``checkpoint_path`` whose directory does not exist.
      jaxgd.CheckpointError: a truncated or corrupted ``resume`` file.
      jaxgd.TreeMismatchError: a ``resume`` state whose structure, shapes or
        dtypes differ from the state ``params`` and ``method`` start from; a
        ``resume`` file of float64 leaves with JAX's 64-bit mode off.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgd
      >>> x = jnp.arange(8.0)
      >>> res = jaxgd.fit(lambda m, xb: jnp.mean((m - xb) ** 2), jnp.zeros(()), x,
      ...                 batch_size=8, epochs=50, key=jax.random.key(0),
      ...                 method="gd", lr=0.25, progress=False)
      >>> print(res.status_enum.name, int(res.steps), round(float(res.params), 4))
      EPOCHS 50 3.5
    """
    _options.check_keywords("fit", unknown, _KEYWORDS)
    _check_not_iterators(data=data, eval_data=eval_data)
    _check_loss_key(fun, loss_key, remainder, eval_data is not None and eval_fun is None)
    parts = _models.split(params)
    if parts is not None:  # a Flax NNX / Equinox model: train its float arrays, hand back models
        return _models.fit_model(fit, parts, locals())
    _mesh.check_traced_fit(mesh, data, eval_data)
    home = _mesh.explicit_home(params, data, eval_data, key, mesh, resume)
    if home is not None:  # a mesh with Explicit axes: the run on its Auto view (jaxgd._mesh)
        given = {k: v for k, v in locals().items() if k in _PARAMETERS}
        return _mesh.run_on_auto_view(home, fit, given, ("params", "data", "eval_data", "key", "mesh", "resume"))
    if isinstance(lr, ReduceOnPlateau):
        raise ValueError(PLATEAU_RULE.format(lr=lr))
    if _stepsize.is_rule(lr):
        raise ValueError(LINE_SEARCH.format(lr=lr))
    if isinstance(lr, optax.GradientTransformation):
        raise TypeError(OPTAX_LR.format(kind=type(lr).__name__))
    if lr is None and _stepsize.is_rule(_directions.default_lr(_directions.resolve(method))):
        raise ValueError(DEFAULT_LINE_SEARCH.format(method=method))
    solver = Solver(
        fun, method, lr, max_steps=0, l1=l1, l2=l2, clip=clip, history=False, bounds=bounds, accelerated=accelerated
    )
    params = _minimize.as_params(params, "params")
    solver.check_params(params)

    n = _num_examples("data", data)
    if not isinstance(remainder, Remainder):
        valid = ", ".join(f"Remainder.{r.name}" for r in Remainder)
        raise TypeError(BAD_REMAINDER.format(valid=valid, remainder=remainder))
    if not _positive_int(batch_size) or (batch_size > n and remainder is not Remainder.MASK):
        raise ValueError(BAD_BATCH.format(n=n, batch_size=batch_size))
    if not _positive_int(epochs):
        raise ValueError(BAD_EPOCHS.format(epochs=epochs) + _validate.static_note(epochs))
    batches = -(-n // batch_size)
    if int(epochs) * batches > _options.MAX_STEPS_LIMIT:
        raise ValueError(TOO_MANY_EPOCHS.format(epochs=epochs, batches=batches, steps=int(epochs) * batches,
                                                limit=_options.MAX_STEPS_LIMIT))
    if int(epochs) > _options.MAX_HISTORY_ROWS:  # (epochs=10**9 of one batch: 32 GB of rows before the run)
        raise ValueError(TOO_MUCH_HISTORY.format(epochs=epochs, gb=32 * int(epochs) / 1e9,
                                                 limit=_options.MAX_HISTORY_ROWS))
    _check_key(key)
    if patience is not None and not _positive_int(patience):
        raise ValueError(BAD_PATIENCE.format(patience=patience) + _validate.static_note(patience))
    if not isinstance(progress, bool):
        raise TypeError(BAD_PROGRESS.format(progress=progress))
    _check_callable("eval_fun", eval_fun)
    _check_callable("metric", metric)
    inputs = {"params": params, "data": data, "key": key, "eval_data": eval_data, "lr, l2 or clip": solver, "patience": patience}
    every, path, resume = _fit_resume.check_args(checkpoint_every, checkpoint_path, resume, inputs)
    if eval_data is None:
        for name, fn in (("eval_fun", eval_fun), ("metric", metric)):
            if fn is not None:
                raise ValueError(NEEDS_EVAL.format(name=name))
    if not isinstance(data_axis, str):  # checked with or without a mesh
        raise TypeError(BAD_AXIS_TYPE.format(axis=data_axis))
    if mesh is not None:
        from jax.sharding import Mesh

        if not isinstance(mesh, Mesh):
            raise TypeError(BAD_MESH.format(kind=type(mesh).__name__))
        if data_axis not in mesh.axis_names:
            raise ValueError(BAD_AXIS.format(axis=data_axis, axes=tuple(mesh.axis_names)))
        size = mesh.shape[data_axis]
        if batch_size % size:
            raise ValueError(MESH_DIVIDE.format(size=size, axis=data_axis, batch_size=batch_size))
        mesh = _mesh.auto_view(mesh)

    mask = remainder is Remainder.MASK
    n_batches = math.ceil(n / batch_size) if mask else n // batch_size
    _check_per_epoch(solver, n, int(batch_size), n_batches, mask)
    p_spec = _spec(params)
    weights = (jax.ShapeDtypeStruct((batch_size,), _params_dtype(p_spec)),) if mask else ()
    how = " (the weighted mean over the batch)" if mask else ""
    keys = (jax.ShapeDtypeStruct(np.shape(key), key.dtype),) if loss_key else ()
    call = _fun_call(mask, loss_key)
    call_error = MASK_SIGNATURE.replace("fun(params, batch, weights)", call) if mask else ""
    dtype = _scalar_dtype(fun, "fun", how, p_spec, _spec(data, batch_size), *weights, *keys, call_error=call_error,
                          call=call)
    eval_weights, ev_args = 0, ()
    if eval_data is not None:
        n_eval = _num_examples("eval_data", eval_data)
        default = eval_fun is None
        if default:
            eval_fun, eval_weights = fun, (n_eval if mask else 0)
        ev_args = (jax.ShapeDtypeStruct((n_eval,), dtype),) if eval_weights else ()
        call = ("fun(params, eval_data" + (", ones)" if mask else ")") + " (the default eval_fun)" if default
                else "eval_fun(params, eval_data)")
        mask_hint = "" if default or not mask else EVAL_UNDER_MASK
        _scalar_dtype(eval_fun, "eval_fun", "", p_spec, _spec(eval_data), *ev_args, call=call,
                      data_name="eval_data", call_error=mask_hint and mask_hint + "; calling it failed: {err}")
        if eval_fun is fun:  # the static config must not hold the loss (jaxgd.core.cache)
            eval_fun = _fit_loop.SAME_AS_FUN
        if metric is not None:
            _scalar_dtype(metric, "metric", "", p_spec, _spec(eval_data), call="metric(params, eval_data)",
                          data_name="eval_data")
    if _compile.tracing():
        _check_closures(fun, (p_spec, _spec(data, batch_size), *weights, *keys), eval_fun, metric, eval_data, p_spec,
                        ev_args, solver)

    cfg = Config(
        n=n,
        batch_size=int(batch_size),
        n_batches=n_batches,
        epochs=int(epochs),
        mask=mask,
        eval_fun=eval_fun,
        eval_weights=eval_weights,
        metric=metric,
        early_stop=patience is not None,
        progress=progress,
        mesh=mesh,
        data_axis=data_axis,
        dtype=dtype,
        key_impl=_key_impl(key),
        # Under jit/vmap the exact epochs only: under vmap the epoch's redo condition would be
        # batched, and lax.cond would then run both scans on every run.
        fast_epochs=_fit_loop.FAST_EPOCHS and not _compile.tracing(),
        loss_key=loss_key,
    )
    if cfg.key_impl is not None:
        key = jax.random.key_data(key)
    # a model's fixed arrays (its batch statistics, integer fields): an input of the compiled loop, not constants
    solver, cfg, rest = _fit_loop.model_inputs(solver, cfg)
    if mesh is not None:
        params, data, eval_data, key, rest = _place(cfg, params, data, eval_data, key, rest)
    pat = None if patience is None else jnp.asarray(patience, jnp.int32)
    if progress:
        _progress.reset()
    if resume is None and path is None:
        inputs = (solver, params, data, eval_data, key, pat, rest)
        if _tree.is_concrete(inputs):  # nothing traced, so nothing differentiated: no guard (it costs a trace)
            result = _fit_loop.run_jit(solver, cfg, *inputs[1:])
        else:  # under a transformation: jax.grad/jvp through the run says what to use instead
            result = _explain.not_differentiable(
                lambda *a: _fit_loop.run_jit(a[0], cfg, *a[1:]), "jaxgd.fit", "params, data, eval_data or lr/l1/l2"
            )(*inputs)
    else:
        result = _fit_resume.run(
            solver, cfg, params, data, eval_data, key, pat, resume=resume, every=every, path=path, rest=rest
        )
    return _trim(result)


def _check_closures(fun: Callable, specs: tuple, eval_fun: Any, metric: Any, eval_data: Any, p_spec: Any,
                    ev_args: tuple, solver: Solver) -> None:
    """Under ``jax.grad``/``jvp``: a value ``fun``, ``eval_fun``, ``metric`` or a schedule ``lr`` (an optax
    schedule, as ``lr`` or inside ``per_epoch``) closes over, differentiated, is refused as fit's inputs are
    (:func:`jaxgd.interop.explain.not_differentiable`'s ``custom_jvp`` cannot see a closure's tracer: JAX's
    ``TracerArrayConversionError`` or ``UnexpectedTracerError`` came instead)."""
    what = "a value the loss closes over"
    checks = [(fun, specs, what)]
    if eval_data is not None:
        if eval_fun is not _fit_loop.SAME_AS_FUN:
            checks.append((eval_fun, (p_spec, _spec(eval_data), *ev_args), what))
        if metric is not None:
            checks.append((metric, (p_spec, _spec(eval_data)), what))
    closure = _minimize_run.schedule_closure(getattr(solver.rule, "schedule", None))
    if closure is not None:
        fn, args = closure
        checks.append((fn, (jax.ShapeDtypeStruct((), jnp.int32), *args), "a value the schedule lr closes over"))
    for fn, example, what in checks:
        if _minimize_run.differentiated_consts(fn, *example):
            raise TypeError(_explain.NOT_DIFFERENTIABLE.format(name="jaxgd.fit", what=what))


def _check_loss_key(fun: Any, loss_key: Any, remainder: Any, default_eval: bool) -> None:
    """``loss_key`` a bool, and ``fun``'s signature able to take the call fit makes (``params, batch``, then
    ``weights`` with ``Remainder.MASK``, then ``key`` with ``loss_key``), and the default eval's call (no key)."""
    if not isinstance(loss_key, bool):
        how = "" if not isinstance(loss_key, jax.Array) else " (a traced or array flag changes fun's call: pass a bool)"
        raise TypeError(BAD_LOSS_KEY.format(loss_key=loss_key, how=how))
    if not callable(fun):
        return
    mask = remainder is Remainder.MASK
    if loss_key:
        call = _fun_call(mask, True) + " with key the step's PRNG key"
        _explain.check_signature(fun, "fit(loss_key=True)", call, 4 if mask else 3, LOSS_KEY_HINT)
        if default_eval and not _explain.can_call(fun, 3 if mask else 2):
            call = "fun(params, eval_data, ones)" if mask else "fun(params, eval_data)"
            raise TypeError(LOSS_KEY_EVAL.format(call=call, sig=inspect.signature(fun)))
    elif not mask:  # the masked call's signature has its own check (MASK_SIGNATURE), but for a forgotten loss_key
        _explain.check_signature(fun, "fit", "fun(params, batch) with batch a slice of data", 2, _explain.fit_hint)
    elif _explain.can_call(fun, 4) and not _explain.can_call(fun, 3):
        _explain.check_signature(fun, "fit", "fun(params, batch, weights) (remainder=Remainder.MASK)", 3,
                                 MASK_KEY_HINT)


def _fun_call(mask: bool, loss_key: bool) -> str:
    """The call fit makes of ``fun``, as messages spell it: ``fun(params, batch[, weights][, key])``."""
    return "fun(params, batch" + (", weights" if mask else "") + (", key)" if loss_key else ")")


def _check_per_epoch(solver: Solver, n: int, batch_size: int, n_batches: int, mask: bool) -> None:
    """An ``lr=per_epoch(schedule, steps_per_epoch)`` must advance ``schedule`` once per epoch of this run: a
    concrete ``steps_per_epoch`` other than its ``n_batches`` steps an epoch (11 examples in batches of 4 are 2
    steps with ``Remainder.DROP``, 3 with ``MASK``) ran another schedule, silently. A traced one passes."""
    schedule = getattr(solver.rule, "schedule", None)
    if not isinstance(schedule, PerEpoch):
        return
    given = _validate.value_of("steps_per_epoch", schedule.steps_per_epoch)
    if given is None or given == n_batches:
        return
    how = (f"ceil(n / batch_size) = ceil({n} / {batch_size}) with Remainder.MASK" if mask else
           f"n // batch_size = {n} // {batch_size} with Remainder.DROP")
    raise ValueError(PER_EPOCH_STEPS.format(given=int(given), steps=n_batches, how=how))


_KEYWORDS = _options.keywords(fit)
_PARAMETERS = frozenset(inspect.signature(fit).parameters)


def _params_dtype(spec: Any) -> Any:
    """The floating dtype of the parameters (of their first leaf)."""
    return jax.tree_util.tree_leaves(spec)[0].dtype


def _trim(result: FitResult) -> FitResult:
    """Cut the history to the epochs run (host only; under an outer jit the
    rows not run stay NaN). The rows are cut as NumPy arrays, as
    ``minimize``'s are: slicing a ``jax.Array`` compiles a program for every
    new length (a new ``epochs`` would compile again)."""
    if not _tree.is_concrete(result.epochs):
        return result
    e = int(result.epochs)
    h = result.history
    return result._replace(history=FitHistory(*(_minimize_run.rows_kept(np.asarray(x), e) for x in h)))
