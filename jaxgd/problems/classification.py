"""Multiclass problems: softmax regression and a small MLP whose gradient is backprop written by hand in NumPy."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import _validate
from .base import (
    MSG_CLASSES,
    MSG_X_SHAPE,
    MSG_SIZES,
    MSG_Y_CLASSES,
    Problem,
    _check_nonnegative,
    _rng,
    _check_positive,
    _log_softmax,
    _make,
    _np_softmax,
    _one_hot,
    _resolve_dtype,
    _user_data,
)

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
        ValueError: bad sizes or ``seed``, ``k < 2``, ``l2`` negative, labels outside ``[0, k)``, bad shapes, bad ``dtype``.
    """
    _check_positive(n=n, d=d)
    _validate.count("k", k, 2, MSG_CLASSES)
    _check_nonnegative(l2=l2)
    dt = _resolve_dtype(dtype)
    rng = _rng(seed)
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
        ValueError: bad ``sizes``/``n``/``seed``, ``l2`` negative, bad labels or shapes, bad ``dtype``.
    """
    sizes = tuple(sizes)
    if len(sizes) < 3 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(MSG_SIZES.format(sizes=sizes))
    _check_positive(n=n)
    _check_nonnegative(l2=l2)
    dt = _resolve_dtype(dtype)
    k = sizes[-1]
    rng = _rng(seed)

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
