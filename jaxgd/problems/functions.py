"""Test functions with a closed-form minimiser set: the article's quartic ``(x·x − c)²`` and Rosenbrock."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .base import (
    MSG_ROSENBROCK_D,
    Problem,
    _check_nonnegative,
    _rng,
    _check_positive,
    _make,
    _resolve_dtype,
)

# --------------------------------------------------------------------------- quadratic_norm


NOT_REAL = "x must be a real array, got {what}"

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
        ValueError: ``d`` not a positive integer, ``c`` negative, ``seed`` not an integer >= 0, or a
            ``dtype`` other than float32/float64.
    """
    _check_positive(d=d)
    _check_nonnegative(c=c)
    dt = _resolve_dtype(dtype)
    x0 = _rng(seed).uniform(-3.0, 3.0, size=d)

    return _make("quadratic_norm", _quadratic_norm_loss, _np_quadratic_norm_grad, {"c": float(c)}, x0, (), None, 0.0, dt)


def is_quadratic_norm_minimiser(x: ArrayLike, *, c: float = 10.0, rtol: float = 1e-6) -> bool:
    """Whether ``x`` minimises :func:`quadratic_norm`, i.e. lies on the sphere ``x·x = c``.

    .. math::

        |x^\\top x - c| \\le \\mathrm{rtol} \\cdot \\max(c, 1)

    Reference: see :func:`quadratic_norm`.

    Args:
        x: the point (any shape; it is flattened).
        c: squared radius used by the problem.
        rtol: relative tolerance on ``x·x`` (relative to ``max(c, 1)``: with ``c = 0``
            the minimiser is the origin, reached only to a tolerance).

    Returns:
        ``True`` when ``x`` is on the sphere within ``rtol``.

    Raises:
        ValueError: ``c`` or ``rtol`` negative.
        TypeError: ``x`` is not a real array.
    """
    _check_nonnegative(c=c, rtol=rtol)
    if np.iscomplexobj(x):  # (float64 of it would drop the imaginary part, with a ComplexWarning)
        raise TypeError(NOT_REAL.format(what=f"x of dtype {np.asarray(x).dtype}"))
    try:
        x_np = np.asarray(x, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(NOT_REAL.format(what=f"x={x!r}")) from None
    return bool(abs(x_np @ x_np - c) <= rtol * max(c, 1.0))



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
