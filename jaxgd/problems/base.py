"""What every problem shares: the :class:`Problem` type, data and dtype helpers,
the message constants, and :func:`_make`, which turns one formula written over
an array module ``xp`` into the JAX loss, the NumPy loss and the problem.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike, DTypeLike


from .. import _validate

PyTree = Any

MSG_DTYPE_NOT_FLOAT = "dtype={dtype!r} is not a floating-point dtype; use jnp.float32 or jnp.float64"
MSG_FLOAT64_NEEDS_X64 = (
    "dtype=float64 needs JAX's x64 mode: call jax.config.update('jax_enable_x64', True) "
    "or build the problem inside `with jax.enable_x64(True):`"
)
MSG_POSITIVE = "{name}={value!r} must be a positive integer"
MSG_NONNEGATIVE = "{name}={value!r} must be a non-negative number"
MSG_CLASSES = "k={value!r} must be an integer >= {minimum} (the number of classes)"
MSG_SEED = "seed={value!r} must be a non-negative integer (numpy.random.default_rng's seed)"
MSG_DTYPE_PRECISION = "dtype={dtype!r} is not float32 or float64; use jnp.float32 or jnp.float64"
MSG_XY_BOTH = "pass both X and y or neither; got X={x} and y={y}"
MSG_X_SHAPE = "X must be a 2-D array (n, d); got shape {shape}"
MSG_X_EMPTY = "X must hold at least one row and one column (n >= 1, d >= 1); got shape {shape}"
MSG_Y_SHAPE = "y must be a 1-D array of length n={n}; got shape {shape}"
MSG_NOT_FINITE = "{name} must be finite; it holds {count} NaN or Inf entries (the first at index {first})"
MSG_Y_BINARY = "y must hold binary labels in {{0, 1}}; got values {values}"
MSG_Y_CLASSES = "y must hold integer class labels in [0, k={k}); got values {values}"
MSG_SIZES = "sizes={sizes!r} must list at least 3 positive layer widths (d, hidden..., k)"
MSG_ROSENBROCK_D = "d={d!r} must be an integer >= 2 for rosenbrock"


class Problem(NamedTuple):
    """A loss with everything needed to test a minimiser or a gradient.

    Attributes:
        name: short identifier, e.g. ``"logistic_regression"``.
        fun: the JAX loss, ``fun(params, *args) -> scalar``.
        np_fun: the same loss in NumPy (float64), ``np_fun(params, *args) -> float``.
        np_grad: its gradient written by hand in NumPy (float64), with the same
            pytree structure as ``params``.
        x0: starting parameters (pytree of ``jax.Array`` of the problem's dtype).
        args: the data, a tuple of ``jax.Array`` passed after ``params``.
        solution: a known minimiser (same structure as ``x0``), or ``None``.
        value_at_solution: the minimum value of the loss, or ``None`` if unknown.
    """

    name: str
    fun: Callable[..., jax.Array]
    np_fun: Callable[..., float]
    np_grad: Callable[..., PyTree]
    x0: PyTree
    args: tuple[jax.Array, ...]
    solution: PyTree | None
    value_at_solution: float | None


# --------------------------------------------------------------------------- helpers


def _resolve_dtype(dtype: DTypeLike | None) -> np.dtype:
    """The problem dtype: ``dtype``, or float64 under x64 and float32 otherwise."""
    if dtype is None:
        return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(MSG_DTYPE_NOT_FLOAT.format(dtype=dtype))
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):  # the hand-written NumPy side runs in these
        raise ValueError(MSG_DTYPE_PRECISION.format(dtype=dtype))
    if dt == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(MSG_FLOAT64_NEEDS_X64)
    return dt


def _check_positive(**kwargs: int) -> None:
    """Counts and sizes: integers >= 1 (``jaxgd._validate.count``)."""
    for name, value in kwargs.items():
        _validate.count(name, value, 1, MSG_POSITIVE)


def _rng(seed: int) -> np.random.Generator:
    """``numpy.random.default_rng(seed)`` for a checked ``seed`` (an integer >= 0)."""
    return np.random.default_rng(_validate.count("seed", seed, 0, MSG_SEED))


def _check_nonnegative(**kwargs: float) -> None:
    """Real numbers >= 0 and finite (``jaxgd._validate.nonneg``: one scalar each)."""
    for name, value in kwargs.items():
        _validate.nonneg(name, value, MSG_NONNEGATIVE)


def _to_np(tree: PyTree) -> PyTree:
    """Every leaf as a float64 NumPy array (the NumPy side always runs in float64)."""
    return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float64), tree)


def _np_data(data: Sequence[ArrayLike]) -> list[np.ndarray]:
    """Data as NumPy arrays: floating ones in float64, integer labels unchanged."""
    arrays = [np.asarray(a) for a in data]
    return [a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a for a in arrays]


def _to_jnp(tree: PyTree, dtype: np.dtype) -> PyTree:
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=dtype), tree)


def _user_data(X: ArrayLike | None, y: ArrayLike | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Validate the user's ``X, y`` (shapes only); ``None`` when both are absent."""
    if X is None and y is None:
        return None
    if X is None or y is None:
        raise ValueError(
            MSG_XY_BOTH.format(x="None" if X is None else "an array", y="None" if y is None else "an array")
        )
    X_np, y_np = np.asarray(X), np.asarray(y)
    if X_np.ndim != 2:
        raise ValueError(MSG_X_SHAPE.format(shape=X_np.shape))
    if 0 in X_np.shape:  # (the loss was a mean over no rows: NaN)
        raise ValueError(MSG_X_EMPTY.format(shape=X_np.shape))
    if y_np.shape != (X_np.shape[0],):
        raise ValueError(MSG_Y_SHAPE.format(n=X_np.shape[0], shape=y_np.shape))
    for name, a in (("X", X_np), ("y", y_np)):
        bad = ~np.isfinite(a) if a.dtype.kind in "fc" else None
        if bad is not None and bad.any():  # (lstsq raised LAPACK's "SVD did not converge"; logistic gave NaN)
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(MSG_NOT_FINITE.format(name=name, count=int(bad.sum()), first=first))
    return X_np.astype(np.float64), y_np


def _one_hot(xp: ModuleType, labels: Any, k: int, dtype: Any) -> Any:
    return (labels[:, None] == xp.arange(k)[None, :]).astype(dtype)


def _log_softmax(xp: ModuleType, Z: Any) -> Any:
    """Row-wise log-softmax with the max shift: no overflow for any finite logits."""
    m = xp.max(Z, axis=1, keepdims=True)
    return Z - m - xp.log(xp.sum(xp.exp(Z - m), axis=1, keepdims=True))


def _np_softmax(Z: np.ndarray) -> np.ndarray:
    return np.exp(_log_softmax(np, Z))


def _np_sigmoid(z: np.ndarray) -> np.ndarray:
    """sigma(z) = exp(-log(1 + exp(-z))), stable for any finite z."""
    return np.exp(-np.logaddexp(0.0, -z))


@functools.lru_cache(maxsize=256)
def _jax_loss(loss: Callable[..., Any], static: tuple[tuple[str, Any], ...]) -> Callable[..., jax.Array]:
    """The jitted JAX form of one formula, ``g(params, data, traced)``.

    Integer hyperparameters (``k``) are static; float ones (``l2``, ``c``) are
    traced values (STYLE principle 4). Cached per formula and static set, so
    problems that differ in data, seed or penalty share one compiled program per
    input shape: rebuilding a problem does not recompile.
    """
    kwargs = dict(static)

    def g(params: PyTree, data: tuple[jax.Array, ...], traced: dict[str, Any]) -> jax.Array:
        return loss(jnp, params, *data, **kwargs, **traced)

    g.__name__ = g.__qualname__ = loss.__name__.strip("_")
    return jax.jit(g)


@dataclasses.dataclass(frozen=True)
class _Loss:
    """``Problem.fun``: ``fun(params, *data)`` calls the shared jitted formula with
    this problem's float hyperparameters. Equal (and equally hashed) for equal
    hyperparameters, so jit caches keyed on the function (e.g. in check_grad) hit."""

    name: str
    g: Callable[..., jax.Array]
    traced: tuple[tuple[str, float], ...]

    def __call__(self, params: PyTree, *data: jax.Array) -> jax.Array:
        return self.g(params, data, dict(self.traced))

    @property
    def __name__(self) -> str:  # noqa: PLW3201 - read like a function's name
        return self.name


def _make(
    name: str,
    loss: Callable[..., Any],
    np_grad: Callable[..., PyTree],
    hyper: dict[str, Any],
    x0: PyTree,
    args: tuple[np.ndarray, ...],
    solution: PyTree | None,
    value_at_solution: float | None,
    dtype: np.dtype,
) -> Problem:
    """Assemble a Problem from a formula ``loss(xp, params, *args, **hyper)`` and
    a hand-written gradient ``np_grad(params, *args, **hyper)``."""
    static = tuple(sorted((k, v) for k, v in hyper.items() if isinstance(v, int)))
    traced = tuple(sorted((k, v) for k, v in hyper.items() if not isinstance(v, int)))
    fun = _Loss(name, _jax_loss(loss, static), traced)

    def np_fun(params: PyTree, *data: ArrayLike) -> float:
        return float(loss(np, _to_np(params), *_np_data(data), **hyper))

    def grad(params: PyTree, *data: ArrayLike) -> PyTree:
        return np_grad(_to_np(params), *_np_data(data), **hyper)

    np_fun.__name__ = name
    grad.__name__ = f"{name}_grad"
    jargs = tuple(
        jnp.asarray(a, dtype=dtype if np.issubdtype(a.dtype, np.floating) else np.int32) for a in args
    )
    sol = None if solution is None else _to_jnp(solution, dtype)
    return Problem(name, fun, np_fun, grad, _to_jnp(x0, dtype), jargs, sol, value_at_solution)


