"""The loss's output check, shared by ``minimize`` and ``Solver.init``/``run``: one message per mistake.

``fun`` must return a real floating scalar (``(scalar, aux)`` with
``has_aux=True``). :func:`check_loss` traces it once through
``jax.eval_shape`` (shapes only, nothing compiled) and remembers the verdict
per (function, input structure), so a repeated call costs a lookup; a failure
while tracing is re-raised naming the arguments and their shapes (a Python
list ``x0`` gets a hint). :func:`tuple_message` is the text for a tuple
returned without ``has_aux``, also raised by ``Solver.objective`` at trace time
(a ``Solver.step`` from a state made elsewhere never calls ``init``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp

from .. import _tree
from . import cache as _cache
from ..interop import explain as _explain
from .._types import LossFn, Params

LOSS_IS_A_PAIR = (
    "fun must return a real scalar loss; got a {kind} of {n} (a pair (loss, aux)? pass has_aux=True; a pair "
    "(loss, gradient), scipy's jac=True form? return the loss alone: jaxgd takes the gradient with jax.grad)"
)
LOSS_IS_A_1_TUPLE = ("fun must return a real scalar loss; got a tuple of length 1 (a trailing comma, "
                     "`return loss,`? drop the comma)")
LOSS_IS_A_TUPLE = ("fun must return a real scalar loss; got a {kind} of length {n} (with has_aux=True fun returns "
                   "a pair (loss, aux): put everything but the loss in one aux, e.g. (loss, (a, b)))")
NOT_SCALAR = "fun must return a real scalar loss{aux}; got {what}"
BAD_AUX = "with has_aux=True, fun must return a pair (loss, aux); got {what}"


def tuple_message(out: tuple | list) -> str:
    """The message for a tuple or list ``fun`` returned without ``has_aux``: a pair (``has_aux`` forgotten),
    a 1-tuple (a stray trailing comma) or another length."""
    kind, n = type(out).__name__, len(out)
    if n == 2:
        return LOSS_IS_A_PAIR.format(kind=kind, n=n)
    if n == 1 and isinstance(out, tuple):
        return LOSS_IS_A_1_TUPLE
    return LOSS_IS_A_TUPLE.format(kind=kind, n=n)


_LOSS_CHECKED = _cache.PerFunction(maxsize=64)  # fun -> {(has_aux, specs): the loss dtype}, weakly in fun


def check_loss(fun: LossFn, params: Params, args: tuple, has_aux: bool, given: Any = None,
               static_args: bool = False) -> Any:
    """Check through ``jax.eval_shape`` that ``fun`` returns a real scalar (cached); return its dtype.

    ``given`` is ``x0`` as the caller passed it (a Python list gets a hint). ``static_args``: the leaves of
    ``args`` that are not arrays (a Python int used as a shape, a string, a function) are passed as they are,
    not traced (``Solver``, whose eager steps pass them so; ``minimize`` traces every argument).

    Raises:
      TypeError: the loss is not a real floating scalar, a tuple without ``has_aux``, or aux is
        missing; JAX's TypeError while tracing ``fun`` (ValueError, IndexError: theirs), re-raised
        naming the arguments' shapes.
    """
    from .minimize_run import spec  # (here: minimize_run imports the solver, which imports this module)

    try:  # (the values of args' non-array leaves too where they pass untraced: a mode string decides the output)
        static = tuple(v for v in jax.tree_util.tree_leaves(args) if not _tree.is_array(v)) if static_args else ()
        key = (has_aux, spec(params), spec(args), static)
        hash((fun, key))
    except TypeError:  # unhashable function or args: check every time
        return _check_loss(fun, params, args, has_aux, given, static_args)
    return _LOSS_CHECKED.get(fun, key,
                             lambda: _check_loss(fun, params, args, has_aux, given, static_args))


def _arrays_traced(fun: LossFn, args: tuple) -> tuple[LossFn, tuple]:
    """``(call, arrays)``: ``call(params, *arrays)`` is ``fun(params, *args)`` with ``args``' array leaves
    passed (traced) and its other leaves closed over as they are."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    is_array = [_tree.is_array(leaf) for leaf in leaves]
    if all(is_array):
        return fun, args

    def call(params: Params, *arrays: Any) -> Any:
        given = iter(arrays)
        return fun(params, *treedef.unflatten([next(given) if a else leaf for leaf, a in zip(leaves, is_array)]))

    return call, tuple(leaf for leaf, a in zip(leaves, is_array) if a)


def equations(jaxpr: Any, name: str) -> Iterator[Any]:
    """The equations of primitive ``name`` in ``jaxpr``, its sub-jaxprs' included."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == name:
            yield eqn
        for value in eqn.params.values():
            for item in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(item, "jaxpr", item)
                if hasattr(inner, "eqns"):
                    yield from equations(inner, name)


def stages(jaxpr: Any, name: str) -> bool:
    """Whether ``jaxpr`` holds an equation of primitive ``name``, its sub-jaxprs included."""
    return next(equations(jaxpr, name), None) is not None


def check_reverse(fn: Callable, closed: Any, *args: Any) -> None:
    """Refuse a loss whose jaxpr ``closed`` (of ``fn(*args)``, a scalar) holds a ``lax.while_loop`` that reverse
    mode cannot pass: then its gradient is traced (``jax.eval_shape``, nothing compiled), and JAX's refusal,
    which names no argument, is said again naming ``fun`` and what to write instead. A loop behind a derivative
    rule (``jax.custom_vjp``, ``lax.custom_root``) passes.

    Raises:
      ValueError: :data:`jaxgd.interop.explain.LOSS_LOOP`, JAX's error chained.
    """
    if not stages(closed.jaxpr, "while"):
        return
    try:
        jax.eval_shape(jax.grad(fn), *args)
    except ValueError as err:
        if _explain.REVERSE_LOOP not in str(err):
            raise
        raise ValueError(_explain.LOSS_LOOP) from err


# (a list given as args is one argument: only a tuple is spread over fun's parameters)
ARGS_LIST = (
    ". args[0] is a list, passed to fun as one argument (minimize spreads a tuple only): if its items are fun's "
    "arguments, pass args=(X, y) for fun(params, X, y)"
)


def real_scalar(out: Any) -> bool:
    """Whether a loss function's output (an array or its ``jax.eval_shape``) is a real floating scalar: the
    test of ``fun`` here and of ``as_optax``'s ``value_fn``."""
    dtype = getattr(out, "dtype", None)
    return getattr(out, "shape", None) == () and dtype is not None and bool(jnp.issubdtype(dtype, jnp.floating))


def _check_loss(fun: LossFn, params: Params, args: tuple, has_aux: bool, given: Any = None,
                static_args: bool = False) -> Any:
    call, traced = _arrays_traced(fun, args) if static_args else (fun, args)
    try:
        closed, out = jax.make_jaxpr(call, return_shape=True)(params, *traced)
    except (TypeError, ValueError, IndexError) as err:  # JAX's message names no argument: say which had what shape
        named = {"x0": params, **{f"args[{i}]": a for i, a in enumerate(args)}}
        failed = _explain.call_failed("fun(x0, *args)", named, err, {"x0": given})
        # (a scipy or optimistix habit, args=[X, y]: fun then misses its later parameters)
        if len(args) == 1 and isinstance(args[0], list) and "required positional argument" in str(err):
            failed = type(failed)(str(failed).rstrip(".") + ARGS_LIST)
        raise failed from err
    aux_note = " as the first element of (loss, aux)" if has_aux else ""
    if not has_aux and isinstance(out, (tuple, list)):
        raise TypeError(tuple_message(out))
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(BAD_AUX.format(what=repr(out)))
        out = out[0]
    shape, dtype = getattr(out, "shape", None), getattr(out, "dtype", None)
    if not real_scalar(out):
        what = f"shape {shape} and dtype {dtype}" if shape is not None else repr(out)
        raise TypeError(NOT_SCALAR.format(aux=aux_note, what=what))
    check_reverse(lambda p, *a: call(p, *a)[0] if has_aux else call(p, *a), closed, params, *traced)
    return dtype
