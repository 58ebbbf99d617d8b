"""Type aliases shared by every module (STYLE.md principle 9)."""

from __future__ import annotations

from typing import Any, Callable, Union

import jax

Params = Any
"""A pytree of floating-point arrays: the variables being optimised."""

Grads = Any
"""A pytree with the structure of :data:`Params`."""

PyTree = Any
ArrayLike = jax.typing.ArrayLike
"""A value that may be a Python number, a NumPy array or a (traced) JAX array."""

LossFn = Callable[..., Any]
"""``fun(params, *args) -> scalar`` (or ``(scalar, aux)`` with ``has_aux``)."""

Schedule = Callable[[ArrayLike], ArrayLike]
"""``count -> learning rate``; every optax schedule qualifies."""

ScalarOrSchedule = Union[float, ArrayLike, Schedule]
PRNGKey = jax.Array
