"""Built-in test problems: each loss in JAX and NumPy, with a hand-written gradient.

A :class:`Problem` bundles one loss written twice from a single formula (once
over :mod:`jax.numpy`, once over :mod:`numpy`), its gradient derived by hand and
written out in NumPy (never autodiff), a starting point, the data, and the
known minimiser where one exists. Tests, benchmarks, examples and the
``jaxgd check`` command all use these.

Every formula is written once over an array module ``xp`` (``numpy`` or
``jax.numpy``), so the JAX loss and the NumPy loss cannot drift apart; the
NumPy gradient sits next to it as an independent, hand-derived formula that
:func:`jaxgd.check_grad` cross-checks against ``jax.grad`` and against
finite differences.

Data come from a seeded NumPy generator (``numpy.random.default_rng(seed)``)
or from the user's own ``X, y``. ``dtype`` sets the dtype of ``x0``, of the
solution and of the floating-point data; integer class labels stay ``int32``.
It defaults to ``float64`` when JAX's x64 mode is on and ``float32``
otherwise. The NumPy functions always compute in ``float64``.

``Problem.fun`` calls one jitted program per formula (and class count ``k``)
in which float hyperparameters (``l2``, ``c``) are traced values, so building
a problem again with new data, seed or penalty re-uses the compiled program for
inputs of the same shapes.
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

__all__ = [
    "PROBLEM_NAMES",
    "Problem",
    "all_problems",
    "is_quadratic_norm_minimiser",
    "linear_regression",
    "logistic_regression",
    "mlp",
    "quadratic_norm",
    "rosenbrock",
    "softmax_regression",
]

PyTree = Any

MSG_DTYPE_NOT_FLOAT = "dtype={dtype!r} is not a floating-point dtype; use jnp.float32 or jnp.float64"
MSG_FLOAT64_NEEDS_X64 = (
    "dtype=float64 needs JAX's x64 mode: call jax.config.update('jax_enable_x64', True) "
    "or build the problem inside `with jax.enable_x64(True):`"
)
MSG_POSITIVE = "{name}={value!r} must be a positive integer"
MSG_NONNEGATIVE = "{name}={value!r} must be a non-negative number"
MSG_XY_BOTH = "pass both X and y or neither; got X={x} and y={y}"
MSG_X_SHAPE = "X must be a 2-D array (n, d); got shape {shape}"
MSG_Y_SHAPE = "y must be a 1-D array of length n={n}; got shape {shape}"
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
    if dt == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(MSG_FLOAT64_NEEDS_X64)
    return dt


def _check_positive(**kwargs: int) -> None:
    for name, value in kwargs.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(MSG_POSITIVE.format(name=name, value=value))


def _check_nonnegative(**kwargs: float) -> None:
    for name, value in kwargs.items():
        if not np.isfinite(value) or value < 0:
            raise ValueError(MSG_NONNEGATIVE.format(name=name, value=value))


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
    if y_np.shape != (X_np.shape[0],):
        raise ValueError(MSG_Y_SHAPE.format(n=X_np.shape[0], shape=y_np.shape))
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


# --------------------------------------------------------------------------- quadratic_norm


def _quadratic_norm_loss(xp: ModuleType, x: Any, *, c: float) -> Any:
    r = xp.sum(x * x) - c
    return r * r


def _np_quadratic_norm_grad(x: np.ndarray, *, c: float) -> np.ndarray:
    return 4.0 * x * (np.sum(x * x) - c)


def quadratic_norm(d: int = 2, *, c: float = 10.0, seed: int = 0, dtype: DTypeLike | None = None) -> Problem:
    """The source article's quartic ``(x·x − 10)²`` in ``d`` dimensions.

    .. math::

        f(x) = (x^\\top x - c)^2, \\qquad \\nabla f(x) = 4\\,x\\,(x^\\top x - c),

    with :math:`c` = ``c`` (10 in the article). Every point of the sphere
    :math:`x^\\top x = c` is a minimiser with value 0, so ``solution`` is
    ``None`` and ``value_at_solution`` is ``0.0``; use
    :func:`is_quadratic_norm_minimiser` to test a point. The origin is a local
    maximum (a stationary point that is not a minimiser). The article gave the
    gradient as ``2·(x·x)``, which is wrong; ``jaxgd check --article`` shows it.

    Reference: the jaxgd source article (README section "The article's gradients, checked").

    Args:
        d: dimension of ``x``.
        c: squared radius of the sphere of minimisers (must be >= 0).
        seed: seed of the NumPy generator drawing ``x0`` uniformly in [-3, 3]^d.
        dtype: floating dtype of ``x0`` (default: float64 under x64, else float32).

    Returns:
        The :class:`Problem`; ``args`` is empty.

    Raises:
        ValueError: ``d`` not a positive integer, ``c`` negative, or a bad ``dtype``.
    """
    _check_positive(d=d)
    _check_nonnegative(c=c)
    dt = _resolve_dtype(dtype)
    x0 = np.random.default_rng(seed).uniform(-3.0, 3.0, size=d)

    return _make("quadratic_norm", _quadratic_norm_loss, _np_quadratic_norm_grad, {"c": float(c)}, x0, (), None, 0.0, dt)


def is_quadratic_norm_minimiser(x: ArrayLike, *, c: float = 10.0, rtol: float = 1e-6) -> bool:
    """Whether ``x`` minimises :func:`quadratic_norm`, i.e. lies on the sphere ``x·x = c``.

    .. math::

        |x^\\top x - c| \\le \\mathrm{rtol} \\cdot c

    Reference: see :func:`quadratic_norm`.

    Args:
        x: the point (any shape; it is flattened).
        c: squared radius used by the problem.
        rtol: relative tolerance on ``x·x``.

    Returns:
        ``True`` when ``x`` is on the sphere within ``rtol``.

    Raises:
        ValueError: ``c`` or ``rtol`` negative.
        TypeError: ``x`` is not a real array.
    """
    _check_nonnegative(c=c, rtol=rtol)
    try:
        x_np = np.asarray(x, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"x must be a real array, got x={x!r}") from None
    return bool(abs(x_np @ x_np - c) <= rtol * c)


# --------------------------------------------------------------------------- linear regression


def _linear_loss(xp: ModuleType, params: dict[str, Any], X: Any, y: Any) -> Any:
    r = X @ params["w"] - y
    if "b" in params:
        r = r + params["b"]
    return 0.5 * xp.mean(r * r)


def _np_linear_grad(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    r = X @ params["w"] - y
    if "b" in params:
        r = r + params["b"]
        return {"b": np.mean(r), "w": X.T @ r / X.shape[0]}
    return {"w": X.T @ r / X.shape[0]}


def linear_regression(
    n: int = 50,
    d: int = 3,
    *,
    X: ArrayLike | None = None,
    y: ArrayLike | None = None,
    fit_intercept: bool = True,
    noise: float = 0.1,
    seed: int = 0,
    dtype: DTypeLike | None = None,
) -> Problem:
    """Least squares: the mean squared error of a linear model.

    .. math::

        f(w, b) = \\frac{1}{2n} \\lVert X w + b\\mathbf{1} - y \\rVert^2, \\qquad
        \\nabla_w f = \\frac{1}{n} X^\\top r, \\quad \\nabla_b f = \\frac{1}{n}\\mathbf{1}^\\top r,
        \\quad r = X w + b\\mathbf{1} - y,

    where :math:`X` is ``X`` (``n × d``) and :math:`y` is ``y``. Without
    ``fit_intercept`` there is no :math:`b`. Params are ``{"w": (d,), "b": ()}``
    (``{"w": (d,)}`` without intercept). The solution is computed by
    ``numpy.linalg.lstsq`` on ``[X, 1]`` (minimum-norm when ``X`` is rank
    deficient). Synthetic data: ``X ~ N(0, 1)``, ``y = X w* + b* + noise·N(0, 1)``.

    Reference: T. Hastie, R. Tibshirani, J. Friedman, *The Elements of
    Statistical Learning*, 2nd ed., Springer 2009, §3.2.

    Args:
        n: number of samples (ignored when ``X`` is given).
        d: number of features (ignored when ``X`` is given).
        X: the user's design matrix ``(n, d)``; pass together with ``y``.
        y: the user's targets ``(n,)``.
        fit_intercept: whether to fit the intercept ``b``.
        noise: standard deviation of the synthetic noise.
        seed: seed of the NumPy generator for the data and ``x0``.
        dtype: floating dtype (default: float64 under x64, else float32).

    Returns:
        The :class:`Problem`, ``args = (X, y)``, with ``solution`` and ``value_at_solution``.

    Raises:
        ValueError: bad sizes, ``noise`` negative, only one of ``X``/``y``, bad shapes, bad ``dtype``.
    """
    _check_positive(n=n, d=d)
    _check_nonnegative(noise=noise)
    dt = _resolve_dtype(dtype)
    rng = np.random.default_rng(seed)
    data = _user_data(X, y)
    if data is None:
        X_np = rng.standard_normal((n, d))
        y_np = X_np @ rng.standard_normal(d) + rng.standard_normal() + noise * rng.standard_normal(n)
    else:
        X_np, y_np = data[0], data[1].astype(np.float64)
    # Round the data to the problem dtype first, so the solution is exact for it.
    X_np, y_np = X_np.astype(dt).astype(np.float64), y_np.astype(dt).astype(np.float64)
    d = X_np.shape[1]
    A = np.hstack([X_np, np.ones((X_np.shape[0], 1))]) if fit_intercept else X_np
    coef = np.linalg.lstsq(A, y_np, rcond=None)[0]
    solution = {"b": coef[-1], "w": coef[:-1]} if fit_intercept else {"w": coef}
    x0 = {"b": np.zeros(()), "w": 0.1 * rng.standard_normal(d)} if fit_intercept else {"w": 0.1 * rng.standard_normal(d)}
    value = float(_linear_loss(np, solution, X_np, y_np))
    return _make("linear_regression", _linear_loss, _np_linear_grad, {}, x0, (X_np, y_np), solution, value, dt)


# --------------------------------------------------------------------------- logistic regression


def _logistic_loss(xp: ModuleType, params: dict[str, Any], X: Any, y: Any, *, l2: float) -> Any:
    z = X @ params["w"] + params["b"]
    return xp.mean(xp.logaddexp(0.0, z) - y * z) + 0.5 * l2 * xp.sum(params["w"] * params["w"])


def _np_logistic_grad(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, *, l2: float) -> dict[str, np.ndarray]:
    e = _np_sigmoid(X @ params["w"] + params["b"]) - y
    return {"b": np.mean(e), "w": X.T @ e / X.shape[0] + l2 * params["w"]}


def logistic_regression(
    n: int = 60,
    d: int = 3,
    *,
    X: ArrayLike | None = None,
    y: ArrayLike | None = None,
    l2: float = 1e-2,
    seed: int = 0,
    dtype: DTypeLike | None = None,
) -> Problem:
    """Binary logistic regression: mean log-loss with an L2 penalty on the weights.

    .. math::

        f(w, b) = \\frac{1}{n}\\sum_i \\big[\\log(1 + e^{z_i}) - y_i z_i\\big]
                  + \\frac{\\lambda}{2}\\lVert w\\rVert^2, \\quad z = X w + b\\mathbf{1},

        \\nabla_w f = \\frac{1}{n} X^\\top(\\sigma(z) - y) + \\lambda w, \\quad
        \\nabla_b f = \\frac{1}{n}\\mathbf{1}^\\top(\\sigma(z) - y),

    with labels :math:`y_i \\in \\{0, 1\\}` (``y``) and :math:`\\lambda` = ``l2``
    (the intercept is not penalised). :math:`\\log(1 + e^{z})` is computed as
    ``logaddexp(0, z)`` and :math:`\\sigma(z) = e^{-\\log(1 + e^{-z})}`, so logits
    of ±1e4 give finite losses and gradients. Params are ``{"w": (d,), "b": ()}``.
    No closed-form solution (``solution=None``). Synthetic data: ``X ~ N(0, 1)``,
    ``y ~ Bernoulli(σ(X w* + b*))``.

    Reference: C. M. Bishop, *Pattern Recognition and Machine Learning*,
    Springer 2006, §4.3.2; M. Mächler, "Accurately computing log(1 − exp(−|a|))",
    CRAN Rmpfr vignette, 2012 (stable log(1 + eˣ)).

    Args:
        n: number of samples (ignored when ``X`` is given).
        d: number of features (ignored when ``X`` is given).
        X: the user's features ``(n, d)``; pass together with ``y``.
        y: the user's labels ``(n,)`` in {0, 1}.
        l2: L2 penalty weight on ``w`` (a penalty in the loss, not weight decay).
        seed: seed of the NumPy generator for the data and ``x0``.
        dtype: floating dtype (default: float64 under x64, else float32).

    Returns:
        The :class:`Problem`, ``args = (X, y)`` with ``y`` as floats 0./1.

    Raises:
        ValueError: bad sizes, ``l2`` negative, labels not in {0, 1}, bad shapes, bad ``dtype``.
    """
    _check_positive(n=n, d=d)
    _check_nonnegative(l2=l2)
    dt = _resolve_dtype(dtype)
    rng = np.random.default_rng(seed)
    data = _user_data(X, y)
    if data is None:
        X_np = rng.standard_normal((n, d))
        y_np = (rng.uniform(size=n) < _np_sigmoid(X_np @ rng.standard_normal(d) + 0.5)).astype(np.float64)
    else:
        X_np, y_np = data
        if not np.all((y_np == 0) | (y_np == 1)):
            raise ValueError(MSG_Y_BINARY.format(values=np.unique(y_np)[:10]))
        y_np = y_np.astype(np.float64)
    d = X_np.shape[1]

    x0 = {"b": np.zeros(()), "w": 0.1 * rng.standard_normal(d)}
    return _make("logistic_regression", _logistic_loss, _np_logistic_grad, {"l2": float(l2)}, x0, (X_np, y_np), None, None, dt)


# --------------------------------------------------------------------------- softmax regression


def _softmax_loss(xp: ModuleType, params: dict[str, Any], X: Any, y: Any, *, k: int, l2: float) -> Any:
    Z = X @ params["W"] + params["b"][None, :]
    ce = -xp.mean(xp.sum(_one_hot(xp, y, k, Z.dtype) * _log_softmax(xp, Z), axis=1))
    return ce + 0.5 * l2 * xp.sum(params["W"] * params["W"])


def _np_softmax_grad(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, *, k: int, l2: float
) -> dict[str, np.ndarray]:
    E = (_np_softmax(X @ params["W"] + params["b"][None, :]) - _one_hot(np, y, k, np.float64)) / X.shape[0]
    return {"W": X.T @ E + l2 * params["W"], "b": E.sum(axis=0)}


def softmax_regression(
    n: int = 60,
    d: int = 3,
    k: int = 4,
    *,
    X: ArrayLike | None = None,
    y: ArrayLike | None = None,
    l2: float = 1e-2,
    seed: int = 0,
    dtype: DTypeLike | None = None,
) -> Problem:
    """Multiclass (softmax) logistic regression with an L2 penalty on the weights.

    .. math::

        f(W, b) = -\\frac{1}{n}\\sum_i \\log \\operatorname{softmax}(z_i)_{y_i}
                  + \\frac{\\lambda}{2}\\lVert W\\rVert_F^2, \\quad Z = X W + \\mathbf{1} b^\\top,

        \\nabla_W f = \\frac{1}{n} X^\\top (P - Y) + \\lambda W, \\quad
        \\nabla_b f = \\frac{1}{n} (P - Y)^\\top \\mathbf{1},

    where :math:`P = \\operatorname{softmax}(Z)` row-wise, :math:`Y` the one-hot
    labels ``y`` and :math:`\\lambda` = ``l2``. The log-softmax subtracts the row
    maximum before exponentiating (log-sum-exp trick), so it never overflows.
    Params are ``{"W": (d, k), "b": (k,)}``; ``solution=None``. Synthetic data:
    ``X ~ N(0, 1)``, labels drawn from ``softmax(X W*)``.

    Reference: C. M. Bishop, *Pattern Recognition and Machine Learning*,
    Springer 2006, §4.3.4.

    Args:
        n: number of samples (ignored when ``X`` is given).
        d: number of features (ignored when ``X`` is given).
        k: number of classes.
        X: the user's features ``(n, d)``; pass together with ``y``.
        y: the user's integer labels ``(n,)`` in ``[0, k)``.
        l2: L2 penalty weight on ``W`` (a penalty in the loss, not weight decay).
        seed: seed of the NumPy generator for the data and ``x0``.
        dtype: floating dtype (default: float64 under x64, else float32).

    Returns:
        The :class:`Problem`, ``args = (X, y)`` with ``y`` as ``int32`` labels.

    Raises:
        ValueError: bad sizes, ``l2`` negative, labels outside ``[0, k)``, bad shapes, bad ``dtype``.
    """
    _check_positive(n=n, d=d, k=k)
    _check_nonnegative(l2=l2)
    dt = _resolve_dtype(dtype)
    rng = np.random.default_rng(seed)
    X_np, y_np = _class_data(rng, X, y, n, d, k)
    d = X_np.shape[1]

    x0 = {"W": 0.1 * rng.standard_normal((d, k)), "b": np.zeros(k)}
    hyper = {"k": int(k), "l2": float(l2)}
    return _make("softmax_regression", _softmax_loss, _np_softmax_grad, hyper, x0, (X_np, y_np), None, None, dt)


def _class_data(
    rng: np.random.Generator, X: ArrayLike | None, y: ArrayLike | None, n: int, d: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The user's ``(X, labels)`` checked against ``k``, or synthetic softmax data."""
    data = _user_data(X, y)
    if data is None:
        X_np = rng.standard_normal((n, d))
        P = _np_softmax(X_np @ rng.standard_normal((d, k)))
        y_np = (rng.uniform(size=(n, 1)) > np.cumsum(P, axis=1)).sum(axis=1).clip(0, k - 1)
        return X_np, y_np.astype(np.int32)
    X_np, y_np = data
    if not (np.issubdtype(y_np.dtype, np.integer) or np.all(y_np == np.round(y_np))) or (
        y_np.size and (y_np.min() < 0 or y_np.max() >= k)
    ):
        raise ValueError(MSG_Y_CLASSES.format(k=k, values=np.unique(y_np)[:10]))
    return X_np, y_np.astype(np.int32)


# --------------------------------------------------------------------------- MLP


def _mlp_logits(xp: ModuleType, layers: list[dict[str, Any]], X: Any) -> Any:
    h = X
    for layer in layers[:-1]:
        h = xp.tanh(h @ layer["W"] + layer["b"][None, :])
    return h @ layers[-1]["W"] + layers[-1]["b"][None, :]


def _mlp_loss(xp: ModuleType, layers: list[dict[str, Any]], X: Any, y: Any, *, k: int, l2: float) -> Any:
    Z = _mlp_logits(xp, layers, X)
    ce = -xp.mean(xp.sum(_one_hot(xp, y, k, Z.dtype) * _log_softmax(xp, Z), axis=1))
    return ce + 0.5 * l2 * sum(xp.sum(layer["W"] * layer["W"]) for layer in layers)


def _np_mlp_grad(
    layers: list[dict[str, np.ndarray]], X: np.ndarray, y: np.ndarray, *, k: int, l2: float
) -> list[dict[str, np.ndarray]]:
    """Backpropagation, written out by hand."""
    hs = [X]  # forward pass, keeping every activation
    for layer in layers[:-1]:
        hs.append(np.tanh(hs[-1] @ layer["W"] + layer["b"][None, :]))
    Z = hs[-1] @ layers[-1]["W"] + layers[-1]["b"][None, :]
    delta = (_np_softmax(Z) - _one_hot(np, y, k, np.float64)) / X.shape[0]
    grads: list[dict[str, np.ndarray]] = []
    for ell in range(len(layers) - 1, -1, -1):  # backward pass
        grads.append({"W": hs[ell].T @ delta + l2 * layers[ell]["W"], "b": delta.sum(axis=0)})
        if ell > 0:
            delta = (delta @ layers[ell]["W"].T) * (1.0 - hs[ell] ** 2)
    return grads[::-1]


def mlp(
    sizes: Sequence[int] = (3, 8, 4),
    *,
    n: int = 40,
    X: ArrayLike | None = None,
    y: ArrayLike | None = None,
    l2: float = 0.0,
    seed: int = 0,
    dtype: DTypeLike | None = None,
) -> Problem:
    """A multilayer perceptron (tanh hidden layers) with softmax cross-entropy.

    .. math::

        h_0 = X, \\quad h_\\ell = \\tanh(h_{\\ell-1} W_\\ell + \\mathbf{1} b_\\ell^\\top)
        \\ (\\ell < L), \\quad Z = h_{L-1} W_L + \\mathbf{1} b_L^\\top,

        f = -\\frac{1}{n}\\sum_i \\log \\operatorname{softmax}(z_i)_{y_i}
            + \\frac{\\lambda}{2}\\sum_\\ell \\lVert W_\\ell \\rVert_F^2.

    The NumPy gradient is backpropagation written out by hand:
    :math:`\\delta_L = (P - Y)/n`, :math:`\\nabla W_\\ell = h_{\\ell-1}^\\top \\delta_\\ell + \\lambda W_\\ell`,
    :math:`\\nabla b_\\ell = \\delta_\\ell^\\top \\mathbf{1}`,
    :math:`\\delta_{\\ell-1} = (\\delta_\\ell W_\\ell^\\top) \\odot (1 - h_{\\ell-1}^2)`.
    ``sizes = (d, h_1, ..., k)`` gives the layer widths: ``(d, h, k)`` has one
    hidden layer, ``(d, h1, h2, k)`` two. Params are a list of
    ``{"W": (m_in, m_out), "b": (m_out,)}`` dicts, one per layer, initialised
    ``W ~ N(0, 1/m_in)``, ``b ~ 0.1·N(0, 1)``. ``solution=None``. Synthetic
    labels come from a random teacher network of the same shape.

    Reference: D. E. Rumelhart, G. E. Hinton, R. J. Williams, "Learning
    representations by back-propagating errors", *Nature* 323, 533–536, 1986;
    I. Goodfellow, Y. Bengio, A. Courville, *Deep Learning*, MIT Press 2016, §6.5.

    Args:
        sizes: layer widths ``(d, hidden..., k)``, at least 3 entries.
        n: number of samples (ignored when ``X`` is given).
        X: the user's features ``(n, d)`` (``d`` must equal ``sizes[0]``); pass with ``y``.
        y: the user's integer labels ``(n,)`` in ``[0, sizes[-1])``.
        l2: L2 penalty weight on all weight matrices (not on biases).
        seed: seed of the NumPy generator for the data and ``x0``.
        dtype: floating dtype (default: float64 under x64, else float32).

    Returns:
        The :class:`Problem`, ``args = (X, y)`` with ``y`` as ``int32`` labels.

    Raises:
        ValueError: bad ``sizes``/``n``, ``l2`` negative, bad labels or shapes, bad ``dtype``.
    """
    sizes = tuple(sizes)
    if len(sizes) < 3 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(MSG_SIZES.format(sizes=sizes))
    _check_positive(n=n)
    _check_nonnegative(l2=l2)
    dt = _resolve_dtype(dtype)
    k = sizes[-1]
    rng = np.random.default_rng(seed)

    def init() -> list[dict[str, np.ndarray]]:
        return [
            {"W": rng.standard_normal((a, b)) / np.sqrt(a), "b": 0.1 * rng.standard_normal(b)}
            for a, b in zip(sizes[:-1], sizes[1:])
        ]

    if X is None and y is None:
        X_np = rng.standard_normal((n, sizes[0]))
        teacher = init()
        y_np = np.argmax(_mlp_logits(np, teacher, X_np) * 3.0 + rng.gumbel(size=(n, k)), axis=1).astype(np.int32)
    else:
        X_np, y_np = _class_data(rng, X, y, n, sizes[0], k)
        if X_np.shape[1] != sizes[0]:
            raise ValueError(MSG_X_SHAPE.format(shape=X_np.shape) + f" with d = sizes[0] = {sizes[0]}")

    return _make("mlp", _mlp_loss, _np_mlp_grad, {"k": int(k), "l2": float(l2)}, init(), (X_np, y_np), None, None, dt)


# --------------------------------------------------------------------------- Rosenbrock


def _rosenbrock_loss(xp: ModuleType, x: Any) -> Any:
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _np_rosenbrock_grad(x: np.ndarray) -> np.ndarray:
    t = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * t - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * t
    return g


def rosenbrock(d: int = 2, *, dtype: DTypeLike | None = None) -> Problem:
    """The Rosenbrock function in ``d`` dimensions (the chained form).

    .. math::

        f(x) = \\sum_{i=1}^{d-1} 100\\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2,

        \\frac{\\partial f}{\\partial x_j} = -400\\,x_j (x_{j+1} - x_j^2) - 2(1 - x_j)
        + 200\\,(x_j - x_{j-1}^2),

    where the first term is absent for :math:`j = d` and the last for
    :math:`j = 1`. The minimiser is :math:`x^* = (1, \\dots, 1)` with
    :math:`f(x^*) = 0`; ``x0`` is the classic :math:`(-1.2, 1, -1.2, 1, \\dots)`.

    Reference: H. H. Rosenbrock, "An automatic method for finding the greatest or
    least value of a function", *The Computer Journal* 3(3), 175–184, 1960.

    Args:
        d: dimension, at least 2.
        dtype: floating dtype (default: float64 under x64, else float32).

    Returns:
        The :class:`Problem`; ``args`` is empty.

    Raises:
        ValueError: ``d < 2`` or a bad ``dtype``.

    Examples:
        >>> import numpy as np
        >>> p = rosenbrock(2)
        >>> round(float(p.fun(p.x0)), 4), float(p.fun(p.solution))
        (24.2, 0.0)
        >>> p.np_grad(np.array([-1.2, 1.0])).round(6).tolist()
        [-215.6, -88.0]
    """
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 2:
        raise ValueError(MSG_ROSENBROCK_D.format(d=d))
    dt = _resolve_dtype(dtype)
    x0 = np.where(np.arange(d) % 2 == 0, -1.2, 1.0)
    return _make("rosenbrock", _rosenbrock_loss, _np_rosenbrock_grad, {}, x0, (), np.ones(d), 0.0, dt)


# --------------------------------------------------------------------------- registry

#: Names of the problems returned by :func:`all_problems`, in order.
PROBLEM_NAMES: tuple[str, ...] = (
    "quadratic_norm",
    "linear_regression",
    "logistic_regression",
    "softmax_regression",
    "mlp",
    "mlp2",
    "rosenbrock",
)


def all_problems(seed: int = 0, *, dtype: DTypeLike | None = None) -> list[Problem]:
    """Every built-in problem at a small default size (for the CLI and test batteries).

    Reference: the factories above.

    Args:
        seed: seed passed to every factory that draws data.
        dtype: floating dtype (default: float64 under x64, else float32).

    Returns:
        ``[quadratic_norm, linear_regression, logistic_regression,
        softmax_regression, mlp (one hidden layer), mlp (two hidden layers),
        rosenbrock]``, named as in :data:`PROBLEM_NAMES` (the two-hidden-layer
        MLP is ``"mlp2"``).

    Raises:
        ValueError: a bad ``dtype``.
    """
    return [
        quadratic_norm(3, seed=seed, dtype=dtype),
        linear_regression(30, 3, seed=seed, dtype=dtype),
        logistic_regression(40, 3, seed=seed, dtype=dtype),
        softmax_regression(40, 3, 4, seed=seed, dtype=dtype),
        mlp((3, 6, 4), n=30, seed=seed, dtype=dtype),
        mlp((3, 5, 4, 3), n=30, l2=1e-2, seed=seed, dtype=dtype)._replace(name="mlp2"),
        rosenbrock(4, dtype=dtype),
    ]
