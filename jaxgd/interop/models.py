"""Flax NNX and Equinox models where parameters go.

``jaxgd.minimize`` and ``jaxgd.fit`` optimise a pytree of float arrays. A
model object holds more than that: an Equinox module holds activation
functions, integer sizes and maybe integer or boolean arrays; a Flax NNX
module holds a graph, non-trainable state (batch statistics, RNG keys) and
its ``nnx.Param`` variables. This module splits a model into

- ``params``: what the solver trains (Equinox: the inexact-float arrays,
  ``eqx.partition(model, eqx.is_inexact_array)``; NNX: the ``nnx.Param``
  state, ``nnx.split(model, nnx.Param, ...)``);
- ``rest``: the other arrays, held fixed and handed to the loss as data
  (``minimize``'s ``args``; an input of ``fit``'s compiled loop), never
  baked in as constants;
- the static remainder (functions, sizes, the NNX graph), which rides in a
  hashable loss wrapper so that a second call with the same model type
  re-uses the compiled loop;

and puts the model back together afterwards, so the caller gets a model of
the same type. A plain pytree passes through untouched (``split`` returns
``None``), at no cost.

Neither library is imported here unless the caller's object is one of its
modules (the check looks in ``sys.modules``), so both stay optional.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any, Callable, Hashable, NamedTuple, Optional

import jax
import numpy as np

from .. import _bounded, _closure_key
from .._types import Params, PyTree


class ModelStateError(ValueError):
    """An NNX model whose forward pass updates its own (non-``nnx.Param``) state (:data:`NNX_MUTATES`)."""


NNX_MUTATES = (
    "the NNX model changes its own state inside the loss (nnx.Dropout's RNG counts, or nnx.BatchNorm's batch "
    "statistics, in train mode): minimize and fit train the model's nnx.Param arrays and hold the rest fixed, so "
    "the loss must not update it. To train with BatchNorm and Dropout as usual (batch statistics, running "
    "averages updated, dropout on), run jaxgd's step in your own loop: optimizer = nnx.Optimizer(model, "
    "jaxgd.as_optax(method, lr), wrt=nnx.Param), then under nnx.jit loss, grads = nnx.value_and_grad(loss)(model, "
    "batch) and optimizer.update(model, grads). Calling model.eval() first lets minimize/fit run, but trains "
    "another model: BatchNorm normalises with its initial running statistics throughout (a fixed affine layer), "
    "dropout is off, and the model stays in eval mode (model.train() switches it back)"
)


class _Static:
    """A hashable stand-in for a model's static part (treedef and leaves).

    Numbers are compared by type and bits (``0.0`` and ``-0.0``, ``1`` and
    ``True`` differ: the loop is traced from the first model's fields and the
    model handed back is rebuilt from them), other hashable leaves by ``==``,
    leaves that cannot be hashed by identity, so equal static parts share a
    compiled loop and different ones never do.
    """

    __slots__ = ("value", "_key")

    def __init__(self, value: Any) -> None:
        leaves, treedef = jax.tree_util.tree_flatten(value)
        key = []
        for leaf in leaves:
            scalar = _closure_key.scalar_key(leaf)
            if scalar is not None:
                key.append(scalar)
                continue
            try:
                hash(leaf)
                key.append(("v", type(leaf), leaf))
            except TypeError:
                key.append(("id", id(leaf)))
        self.value = value
        self._key = (treedef, tuple(key))

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Static) and self._key == other._key


class ModelLoss:
    """``ModelLoss(fun, kind, static)(params, rest, *args) = fun(model, *args)``.

    ``model`` is rebuilt from ``params`` and ``rest``. Built through
    :func:`_interned`, so the same user function and static part give the
    very same object (jaxgd's compiled-loop caches are weakly keyed on the
    loss object). It refers to ``fun`` weakly, so it never keeps a dropped
    loss alive.
    """

    __slots__ = ("_fun", "kind", "static", "__weakref__")

    def __init__(self, fun: Callable[..., Any], kind: str, static: _Static) -> None:
        try:
            self._fun: Callable[[], Any] = weakref.ref(fun)
        except TypeError:  # not weakly referenceable: hold it
            self._fun = lambda: fun
        self.kind, self.static = kind, static

    @property
    def fun(self) -> Callable[..., Any]:
        return self._fun()

    def __call__(self, params: Params, rest: PyTree, *args: Any) -> Any:
        try:
            return self.fun(rebuild(self.kind, self.static, params, rest), *args)
        except Exception as err:
            # (flax.errors.TraceContextError, by name: flax is not imported here)
            if self.kind == "nnx" and type(err).__name__ == "TraceContextError":
                raise ModelStateError(NNX_MUTATES) from err
            raise

    def __hash__(self) -> int:
        return hash((self.fun, self.kind, self.static))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ModelLoss)
            and (self.fun, self.kind, self.static) == (other.fun, other.kind, other.static)
        )

    @property
    def __name__(self) -> str:  # for reprs and progress bars
        return getattr(self.fun, "__name__", "model_loss")


_INTERN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INTERN_PER_FUN = 8


def _interned(fun: Callable[..., Any], key: Hashable, make: Callable[[], Any]) -> Any:
    """``make()`` once per ``(fun, key)``, weakly keyed on ``fun`` and bounded
    (the last ``_INTERN_PER_FUN`` keys per function)."""
    try:
        table = _INTERN.get(fun)
        if table is None:
            table = _INTERN[fun] = _bounded.Bounded(_INTERN_PER_FUN)
    except TypeError:  # not weakly referenceable: no interning
        return make()
    obj = table.get(key)
    if obj is None:
        obj = table[key] = make()
    else:
        table.move_to_end(key)
    return obj


class ModelParts(NamedTuple):
    """A model split for the solver (see the module docstring)."""

    params: Params
    rest: PyTree
    kind: str
    static: _Static

    def loss(self, fun: Callable[..., Any]) -> ModelLoss:
        """``fun(model, *args)`` as ``loss(params, rest, *args)``."""
        return _interned(fun, (self.kind, self.static), lambda: ModelLoss(fun, self.kind, self.static))

    def model(self, params: Params) -> Any:
        """The model with ``params`` put back (``rest`` unchanged)."""
        return rebuild(self.kind, self.static, params, self.rest)


def kind(obj: Any) -> Optional[str]:
    """``"nnx"`` for a Flax NNX module, ``"eqx"`` for an Equinox module (a partition of one too), else None."""
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(obj, nnx.Module):
        return "nnx"
    eqx = sys.modules.get("equinox")
    if eqx is not None and isinstance(obj, eqx.Module):
        return "eqx"
    return None


def split(model: Any) -> Optional[ModelParts]:
    """Split a Flax NNX or Equinox model; ``None`` for anything else.

    An Equinox module whose leaves are all float arrays is a plain pytree
    already and is not split.

    Returns:
      :class:`ModelParts` whose ``params`` are the trainable float arrays.
    """
    if isinstance(model, (jax.Array, np.ndarray)):  # the usual x0: no module checks (benchmarks E)
        return None
    which = kind(model)
    if which == "eqx":
        import equinox as eqx

        if all(eqx.is_inexact_array(leaf) for leaf in jax.tree_util.tree_leaves(model)):
            return None  # already a pytree of float arrays: nothing to split
        params, others = eqx.partition(model, eqx.is_inexact_array)
        rest, static = eqx.partition(others, eqx.is_array)
        return ModelParts(params, rest, which, _Static(static))
    if which == "nnx":
        from flax import nnx

        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        return ModelParts(params, rest, which, _Static(graphdef))
    return None


SOLVER_MODEL = (
    "x0 is {what}, which Solver would train whole, as one pytree ({which}); Solver.init and Solver.step take "
    "the trained arrays: {how}, and write the loss of those arrays. jaxgd.minimize and jaxgd.fit split a model "
    "themselves (they train its {trained} and keep the rest)"
)


def check_solver_x0(x0: Any) -> None:
    """Refuse a model ``Solver.init`` would train whole: a Flax NNX model holding state besides
    ``nnx.Param`` (its batch statistics, RNG counts), or an Equinox module with leaves that are not
    float arrays (``minimize``/``fit`` split them, :func:`split`). An NNX model of ``nnx.Param`` only
    is a pytree of its parameters, and passes.

    Raises:
      TypeError: names what ``x0`` holds and how to split it.
    """
    parts = split(x0)
    if parts is None or (parts.kind == "nnx" and not jax.tree_util.tree_leaves(parts.rest)):
        return
    if parts.kind == "nnx":
        raise TypeError(SOLVER_MODEL.format(
            what=f"a Flax NNX model ({type(x0).__name__}) holding state besides nnx.Param",
            which="its batch statistics and RNG state would be trained too",
            how="graphdef, params = nnx.split(model, nnx.Param) (the rest: nnx.split(model, nnx.Param, ...))",
            trained="nnx.Param arrays"))
    raise TypeError(SOLVER_MODEL.format(
        what=f"an Equinox module ({type(x0).__name__}) with leaves that are not float arrays",
        which="its functions, ints and bools cannot be parameters",
        how="params, rest = eqx.partition(model, eqx.is_inexact_array), then eqx.combine(params, rest) in the loss",
        trained="float arrays"))


NNX_LEAF = (
    "{name} leaf {path} is {what} of a Flax NNX {container}, not a parameter: jaxgd.minimize and jaxgd.fit "
    "take the model itself (they train its nnx.Param arrays and hold the rest fixed); elsewhere (Solver, "
    "as_optax's init) pass the nnx.Param arrays only, graphdef, params, rest = nnx.split(model, nnx.Param, ...), "
    "with nnx.merge(graphdef, params, rest) in the loss (nnx.Optimizer(model, tx, wrt=nnx.Param) does this split)"
)
EQX_LEAF = (
    "{name} leaf {path} is {what} of an Equinox module ({module}), not a parameter: jaxgd.minimize and jaxgd.fit "
    "take the module itself (they train its float arrays and keep the rest); elsewhere (Solver, as_optax's init: "
    "tx.init(eqx.filter(model, eqx.is_inexact_array))) pass its float arrays, params, rest = "
    "eqx.partition(model, eqx.is_inexact_array), with eqx.combine(params, rest) in the loss{state}"
)
EQX_STATE = (
    "; the eqx.nn.State beside it holds BatchNorm's statistics, not parameters either: pass it through "
    "minimize's args or close over it"
)


def _containing(tree: Any, index: int, inside: Callable[[Any], bool]) -> Any:
    """The outermost node of ``tree`` for which ``inside`` holds that contains leaf ``index``, or None."""
    start = 0
    for node in jax.tree_util.tree_leaves(tree, is_leaf=inside):
        size = len(jax.tree_util.tree_leaves(node)) if inside(node) else 1
        if start <= index < start + size:
            return node if inside(node) else None
        start += size
    return None


def _what(leaf: Any) -> str:
    dtype = getattr(leaf, "dtype", None)
    if dtype is not None and isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        return f"a {dtype} array"
    name = type(leaf).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def leaf_message(name: str, tree: Any, index: int, path: str) -> Optional[str]:
    """Where the ``index``-th leaf of a parameter tree (not a float array) sits in a Flax NNX state,
    variable or module or in an Equinox module: what it is and what to pass instead; None elsewhere
    (``jaxgd._validate.params`` then says how to cast it)."""
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None:
        kinds = (nnx.State, nnx.Variable, nnx.Module)
        outer = _containing(tree, index, lambda x: isinstance(x, kinds))
        if outer is not None:
            leaf = jax.tree_util.tree_leaves(tree)[index]
            variable = _containing(outer, index - _offset(tree, outer, kinds), lambda x: isinstance(x, nnx.Variable))
            what = _what(leaf) if variable is None else f"the value ({_what(leaf)}) of an nnx.{type(variable).__name__}"
            container = "model ({})".format(type(outer).__name__) if isinstance(outer, nnx.Module) else (
                "state (nnx.State)" if isinstance(outer, nnx.State) else "variable")
            return NNX_LEAF.format(name=name, path=path, what=what, container=container)
    eqx = sys.modules.get("equinox")
    if eqx is not None:
        outer = _containing(tree, index, lambda x: isinstance(x, eqx.Module))
        if outer is not None:
            leaf = jax.tree_util.tree_leaves(tree)[index]
            has_state = any(isinstance(x, eqx.nn.State) for x in
                            jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, eqx.nn.State)))
            return EQX_LEAF.format(name=name, path=path, what=_what(leaf), module=type(outer).__name__,
                                   state=EQX_STATE if has_state else "")
    return None


def _offset(tree: Any, node: Any, kinds: tuple) -> int:
    """The index of ``node``'s first leaf among ``tree``'s leaves (``node`` one of the outermost ``kinds`` nodes)."""
    start = 0
    for x in jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, kinds)):
        if x is node:
            return start
        start += len(jax.tree_util.tree_leaves(x)) if isinstance(x, kinds) else 1
    return 0


def rebuild(kind: str, static: _Static, params: Params, rest: PyTree) -> Any:
    """Put a model back together from its parts."""
    if kind == "eqx":
        import equinox as eqx

        return eqx.combine(params, rest, static.value)
    from flax import nnx

    return nnx.merge(static.value, params, rest)


class BoundModelFun:
    """``fun(model, *args)`` as ``f(params, *args)`` with the model's ``rest`` held fixed.

    For loops whose functions take no extra argument (``fit``'s
    ``fun(params, batch)``). ``fit``'s host checks call this wrapper; its
    compiled loop takes ``rest`` as an input instead (:func:`unbind`,
    :func:`rebind`), so a fresh model of the same shapes and dtypes re-uses
    the compiled loop and the fixed arrays are never baked in as constants.
    A ``rest`` with leaves that are not arrays (:func:`traceable`) cannot be
    an input: such a wrapper is the loop's key itself, interned per the very
    ``rest`` leaves (:func:`bind`), and ``rest`` rides along as constants.
    """

    __slots__ = ("loss", "rest", "__weakref__")

    def __init__(self, loss: ModelLoss, rest: PyTree) -> None:
        self.loss, self.rest = loss, rest

    def __call__(self, params: Params, *args: Any) -> Any:
        return self.loss(params, self.rest, *args)

    @property
    def __name__(self) -> str:
        return self.loss.__name__


def traceable(rest: PyTree) -> bool:
    """Whether every leaf of ``rest`` is an array, so that it can be a compiled loop's input."""
    return all(isinstance(leaf, (jax.Array, np.ndarray, np.generic)) for leaf in jax.tree_util.tree_leaves(rest))


def bind(fun: Optional[Callable[..., Any]], parts: ModelParts) -> Optional[BoundModelFun]:
    """``fun(model, *args)`` as ``f(params, *args)`` (``None`` stays ``None``): a new wrapper
    (:func:`unbind` gives the loop's key), or, for a ``rest`` that cannot be traced, one interned
    per the very ``rest`` leaves."""
    if fun is None:
        return None
    if traceable(parts.rest):
        return BoundModelFun(parts.loss(fun), parts.rest)
    ids = tuple(id(leaf) for leaf in jax.tree_util.tree_leaves(parts.rest))
    key = ("bound", parts.kind, parts.static, ids)
    # (the interned wrapper holds these leaves, so their ids stay theirs while it lives)
    return _interned(fun, key, lambda: BoundModelFun(parts.loss(fun), parts.rest))


def bound_rest(fun: Any) -> Optional[PyTree]:
    """The ``rest`` of a :class:`BoundModelFun` that a compiled loop takes as an input; None otherwise."""
    if isinstance(fun, BoundModelFun) and traceable(fun.rest):
        return fun.rest
    return None


def unbind(fun: Any) -> Any:
    """A :class:`BoundModelFun` whose ``rest`` can be traced, as its :class:`ModelLoss`
    (interned: the compiled loop's key); anything else unchanged."""
    return fun.loss if bound_rest(fun) is not None else fun


def rebind(fun: Any, rest: PyTree) -> Any:
    """Inverse of :func:`unbind`, with ``rest`` (traced, inside the compiled loop)."""
    return BoundModelFun(fun, rest) if isinstance(fun, ModelLoss) else fun


def strip(result: Any, fields: tuple[str, ...]) -> Any:
    """A ``Result``/``FitResult`` passed as ``resume=`` whose ``fields`` hold
    models, with the models replaced by their trained arrays (what the
    solver's state holds); anything else unchanged."""
    if not hasattr(result, "_replace") or not all(hasattr(result, f) for f in fields):
        return result
    out = {}
    for f in fields:
        parts = split(getattr(result, f))
        if parts is not None:
            out[f] = parts.params
    return result._replace(**out) if out else result


_NOT_OPTIONS = ("fun", "x0", "params", "args", "data", "unknown", "parts", "given")


def minimize_model(minimize: Callable[..., Any], parts: ModelParts, given: dict) -> Any:
    """``minimize`` on a model's trained arrays (``given``: the caller's
    arguments by name); the result's ``params`` is a model again."""
    options = {k: v for k, v in given.items() if k not in _NOT_OPTIONS}
    options["resume"] = strip(options.get("resume"), ("params",))
    args = given["args"] if isinstance(given["args"], tuple) else (given["args"],)
    res = minimize(parts.loss(given["fun"]), parts.params, (parts.rest, *args), **options)
    return res._replace(params=parts.model(res.params))


def fit_model(fit: Callable[..., Any], parts: ModelParts, given: dict) -> Any:
    """``fit`` on a model's trained arrays, its functions bound to the model
    (``given``: the caller's arguments by name); ``params`` and
    ``best_params`` come back as models."""
    options = {k: v for k, v in given.items() if k not in _NOT_OPTIONS}
    options["resume"] = strip(options.get("resume"), ("params", "best_params"))
    bound: dict = {}  # one wrapper per function (an eval_fun that is fun is fun's wrapper)

    def once(f: Optional[Callable[..., Any]]) -> Optional[BoundModelFun]:
        if f is not None and id(f) not in bound:
            bound[id(f)] = bind(f, parts)
        return None if f is None else bound[id(f)]

    fun = once(given["fun"])
    options["eval_fun"] = once(options.get("eval_fun"))
    options["metric"] = once(options.get("metric"))
    res = fit(fun, parts.params, given["data"], **options)
    return res._replace(params=parts.model(res.params), best_params=parts.model(res.best_params))
