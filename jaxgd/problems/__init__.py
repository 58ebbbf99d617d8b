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

from numpy.typing import DTypeLike

from .base import MSG_DTYPE_NOT_FLOAT as MSG_DTYPE_NOT_FLOAT
from .base import MSG_FLOAT64_NEEDS_X64 as MSG_FLOAT64_NEEDS_X64
from .base import MSG_NONNEGATIVE as MSG_NONNEGATIVE
from .base import MSG_POSITIVE as MSG_POSITIVE
from .base import MSG_ROSENBROCK_D as MSG_ROSENBROCK_D
from .base import MSG_SIZES as MSG_SIZES
from .base import MSG_XY_BOTH as MSG_XY_BOTH
from .base import MSG_X_EMPTY as MSG_X_EMPTY
from .base import MSG_X_SHAPE as MSG_X_SHAPE
from .base import MSG_Y_BINARY as MSG_Y_BINARY
from .base import MSG_Y_CLASSES as MSG_Y_CLASSES
from .base import MSG_Y_SHAPE as MSG_Y_SHAPE
from .base import Problem as Problem
from .classification import mlp as mlp
from .classification import softmax_regression as softmax_regression
from .functions import is_quadratic_norm_minimiser as is_quadratic_norm_minimiser
from .functions import quadratic_norm as quadratic_norm
from .functions import rosenbrock as rosenbrock
from .regression import linear_regression as linear_regression
from .regression import logistic_regression as logistic_regression

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
        ValueError: a bad ``dtype`` or ``seed``.
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
