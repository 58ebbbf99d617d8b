"""Linear least squares and binary logistic regression (L2), on seeded or user data."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import _validate
from .base import (
    MSG_Y_BINARY,
    Problem,
    _check_nonnegative,
    _rng,
    _check_positive,
    _make,
    _np_sigmoid,
    _resolve_dtype,
    _user_data,
)

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
        ValueError: bad sizes or ``seed``, ``noise`` negative, only one of ``X``/``y``, bad shapes, bad ``dtype``.
        TypeError: ``fit_intercept`` not a bool.
    """
    _check_positive(n=n, d=d)
    _check_nonnegative(noise=noise)
    fit_intercept = _validate.flag("fit_intercept", fit_intercept)
    dt = _resolve_dtype(dtype)
    rng = _rng(seed)
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
        ValueError: bad sizes or ``seed``, ``l2`` negative, labels not in {0, 1}, bad shapes, bad ``dtype``.
    """
    _check_positive(n=n, d=d)
    _check_nonnegative(l2=l2)
    dt = _resolve_dtype(dtype)
    rng = _rng(seed)
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
