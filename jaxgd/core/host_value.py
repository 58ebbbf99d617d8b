"""A small jaxpr's value on the host, in NumPy: nothing compiles.

A schedule's first value ``lr(0)`` is checked before anything compiles (:mod:`jaxgd.core.options`),
and JAX evaluates a function eagerly one XLA program per primitive (17 compiles for
``optax.warmup_cosine_decay_schedule``). A schedule is a few scalar operations: its jaxpr is
evaluated here with NumPy, each result cast to the dtype JAX gives it, over the primitives of
optax's schedules, jaxgd's and the usual ``jnp`` maths (:data:`_OPS`). A jaxpr with another
primitive, or whose evaluation NumPy refuses, has no value here (``None``): the caller's check
is skipped, not failed.

Example:
  >>> import jax, jax.numpy as jnp, numpy as np
  >>> from jaxgd.core import host_value
  >>> closed = jax.make_jaxpr(lambda k: 0.1 / jnp.sqrt(k + 1))(jnp.int32(0))
  >>> [round(float(v), 6) for v in host_value.value(closed, np.int32(3))]
  [0.05]
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import numpy as np
from jax.extend import core as _jex_core

__all__ = ["value"]


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``lax.div``: a float quotient, or an integer one rounded toward zero (C's, not Python's floor)."""
    if np.issubdtype(np.result_type(a, b), np.integer):
        _no_zero(b)
        return np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))
    return np.true_divide(a, b)


def _rem(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``lax.rem``: the remainder with the dividend's sign (C's ``fmod``)."""
    if np.issubdtype(np.result_type(a, b), np.integer):
        _no_zero(b)
    return np.fmod(a, b)


def _no_zero(b: np.ndarray) -> None:
    """An integer division by 0 (XLA gives -1, NumPy 0 and a warning): no value here."""
    if np.any(np.asarray(b) == 0):
        raise _NoValue("integer division by zero")


def _convert(x: np.ndarray, new_dtype: Any, **_: Any) -> np.ndarray:
    """``lax.convert_element_type``; a non-finite float to an integer (XLA saturates, NumPy does not): no value."""
    x = np.asarray(x)
    if np.issubdtype(new_dtype, np.integer) and np.issubdtype(x.dtype, np.inexact) and not np.all(np.isfinite(x)):
        raise _NoValue("a non-finite float converted to an integer")
    return x.astype(new_dtype)


def _round(x: np.ndarray, rounding_method: Any = 0, **_: Any) -> np.ndarray:
    """``lax.round``: half away from zero (method 0) or to even (1); exact (``|x| + 0.5`` rounded first)."""
    if int(rounding_method) == 1:
        return np.round(x)
    t = np.trunc(x)
    return np.where(np.abs(x - t) >= 0.5, t + np.sign(x), t).astype(np.result_type(x))


def _broadcast_in_dim(x: np.ndarray, shape: tuple, broadcast_dimensions: tuple, **_: Any) -> np.ndarray:
    kept = [1] * len(shape)
    for axis, d in enumerate(broadcast_dimensions):
        kept[d] = np.shape(x)[axis]
    return np.broadcast_to(np.reshape(x, kept), shape)


def _cumulative(op: Callable) -> Callable:
    def run(x: np.ndarray, axis: int, reverse: bool, **_: Any) -> np.ndarray:
        return np.flip(op(np.flip(x, axis), axis=axis), axis) if reverse else op(x, axis=axis)
    return run


def _dot_general(a: np.ndarray, b: np.ndarray, dimension_numbers: tuple, **_: Any) -> np.ndarray:
    (contract_a, contract_b), (batch_a, batch_b) = dimension_numbers
    if batch_a or batch_b:
        raise NotImplementedError("dot_general over batch dimensions")
    return np.tensordot(a, b, axes=(tuple(contract_a), tuple(contract_b)))


def _iota(dtype: Any, shape: tuple, dimension: int, **_: Any) -> np.ndarray:
    along = np.arange(shape[dimension], dtype=dtype).reshape([-1 if i == dimension else 1 for i in range(len(shape))])
    return np.broadcast_to(along, shape)


def _dynamic_slice(x: np.ndarray, *starts: np.ndarray, slice_sizes: tuple, **_: Any) -> np.ndarray:
    """``lax.dynamic_slice``: each start clamped so the slice lies inside ``x``."""
    at = [min(max(int(s), 0), n - size) for s, n, size in zip(starts, np.shape(x), slice_sizes)]
    return x[tuple(slice(a, a + size) for a, size in zip(at, slice_sizes))]


def _reduce(op: Callable) -> Callable:
    return lambda x, axes, **_: op(x, axis=tuple(axes))


def _elementwise(op: Callable) -> Callable:
    return lambda *xs, **_: op(*xs)


# primitive name -> fn(*operands, **params)
_OPS: dict[str, Callable] = {
    **{name: _elementwise(op) for name, op in {
        "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _div, "rem": _rem, "pow": np.power,
        "max": np.maximum, "min": np.minimum, "neg": np.negative, "abs": np.abs, "sign": np.sign,
        "floor": np.floor, "ceil": np.ceil, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x),
        "cbrt": np.cbrt, "square": np.square, "exp": np.exp, "exp2": np.exp2, "log": np.log, "log1p": np.log1p,
        "expm1": np.expm1, "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
        "atan": np.arctan, "atan2": np.arctan2, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
        "logistic": lambda x: 1 / (1 + np.exp(-x)), "is_finite": np.isfinite,
        "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "eq": np.equal,
        "ne": np.not_equal, "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor, "not": np.invert,
        "clamp": lambda lo, x, hi: np.minimum(np.maximum(x, lo), hi),
        "select_n": lambda which, *cases: np.choose(np.asarray(which, np.int64), cases),
        "copy": lambda x: x, "copy_p": lambda x: x,
    }.items()},
    "convert_element_type": _convert,
    "integer_pow": lambda x, y, **_: np.power(x, y),
    "round": _round,
    "reduce_sum": _reduce(np.sum), "reduce_prod": _reduce(np.prod), "reduce_max": _reduce(np.max),
    "reduce_min": _reduce(np.min), "reduce_and": _reduce(np.all), "reduce_or": _reduce(np.any),
    "argmax": lambda x, axes, **_: np.argmax(x, axis=axes[0]),
    "argmin": lambda x, axes, **_: np.argmin(x, axis=axes[0]),
    "cumsum": _cumulative(np.cumsum), "cumprod": _cumulative(np.cumprod),
    "cummax": _cumulative(np.maximum.accumulate), "cummin": _cumulative(np.minimum.accumulate),
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": lambda x, new_sizes, **_: np.reshape(x, new_sizes),
    "squeeze": lambda x, dimensions, **_: np.squeeze(x, axis=tuple(dimensions)),
    "expand_dims": lambda x, dimensions, **_: np.expand_dims(x, tuple(dimensions)),
    "concatenate": lambda *xs, dimension, **_: np.concatenate(xs, axis=dimension),
    "stack": lambda *xs, axis, **_: np.stack(xs, axis=axis),
    "slice": lambda x, start_indices, limit_indices, strides=None, **_: x[tuple(
        slice(a, b, s) for a, b, s in zip(start_indices, limit_indices, strides or (1,) * len(start_indices)))],
    "dynamic_slice": _dynamic_slice,
    "dot_general": _dot_general,
    "iota": _iota,
}
# primitives that call an inner jaxpr on their operands, and the parameter that holds it
_CALLS = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr", "checkpoint": "jaxpr", "remat": "jaxpr",
          "remat2": "jaxpr"}


class _NoValue(Exception):
    """A primitive this module does not evaluate."""


def value(closed: Any, *args: Any) -> Optional[list]:
    """The outputs of ``closed`` (a ``ClosedJaxpr``, as ``jax.make_jaxpr`` gives) at ``args``, as NumPy arrays
    of the dtypes of its outputs; ``None`` where it holds a primitive not in :data:`_OPS` or a tracer among
    its constants, or where NumPy refuses an operation. Nothing is compiled.

    Args:
      closed: the jaxpr and its constants.
      args: one NumPy value per input of the jaxpr.

    Returns:
      A list of NumPy arrays (one per output), or ``None``.
    """
    if any(isinstance(c, jax.core.Tracer) for c in closed.consts):
        return None
    try:
        with np.errstate(all="ignore"):
            return _run(closed.jaxpr, [np.asarray(c) for c in closed.consts], [np.asarray(a) for a in args])
    except Exception:  # noqa: BLE001  (a primitive it lacks, or one NumPy refuses: no value, the check skipped)
        return None


def _run(jaxpr: Any, consts: list, args: list) -> list:
    env: dict = {}

    def read(v: Any) -> np.ndarray:
        # (a literal in its aval's dtype: a Python float met by float32 values is float32, not float64)
        return np.asarray(v.val, dtype=v.aval.dtype) if isinstance(v, _jex_core.Literal) else env[v]

    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        name, operands = eqn.primitive.name, [read(v) for v in eqn.invars]
        if name in _CALLS:
            inner = eqn.params[_CALLS[name]]
            if isinstance(inner, _jex_core.ClosedJaxpr):
                outs = _run(inner.jaxpr, [np.asarray(c) for c in inner.consts], operands)
            else:
                outs = _run(inner, [], operands)
        elif name in _OPS:
            out = _OPS[name](*operands, **eqn.params)
            outs = [out] if not eqn.primitive.multiple_results else list(out)
        else:
            raise _NoValue(name)
        for var, out in zip(eqn.outvars, outs):
            env[var] = np.asarray(out).astype(var.aval.dtype, copy=False)
    return [read(v) for v in jaxpr.outvars]
