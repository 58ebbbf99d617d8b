"""Learning-rate schedules: ``count -> lr`` functions usable as ``lr=``.

optax's schedules are re-exported unchanged. They are closures, so their
numbers are baked into a compiled loop: the loop is compiled once per closure
code and numbers, so a schedule built anew with the same numbers (inside a
training function, each run of a sweep) re-uses the loop, while new numbers
compile it again. A closure of your own (a lambda, a ``functools.partial``) is
keyed the same way by the numbers, strings, tuples and functions it closes
over and the module globals it names; one that closes over an array of more
than one element or another object is compiled once per closure object. The
four schedules PyTorch users know and optax lacks are written here as
NamedTuple pytrees: their numbers are leaves, so a new ``init_value`` or
``gamma`` re-uses the compiled loop and ``jax.vmap`` can sweep them. Every
schedule is written with array maths on a possibly traced ``count`` (no
Python ``if``), so it works under ``jax.jit``.

Example:
  >>> import jaxgd
  >>> sched = jaxgd.schedules.step_decay(0.1, step_size=10, gamma=0.5)
  >>> [round(float(sched(k)), 6) for k in (0, 9, 10, 25)]
  [0.1, 0.1, 0.05, 0.025]
"""

from __future__ import annotations

import operator
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from optax import (  # noqa: F401  (re-exported)
    constant_schedule as constant_schedule,
    cosine_decay_schedule as cosine_decay_schedule,
    cosine_onecycle_schedule as cosine_onecycle_schedule,
    exponential_decay as exponential_decay,
    join_schedules as join_schedules,
    linear_onecycle_schedule as linear_onecycle_schedule,
    linear_schedule as linear_schedule,
    piecewise_constant_schedule as piecewise_constant_schedule,
    piecewise_interpolate_schedule as piecewise_interpolate_schedule,
    polynomial_schedule as polynomial_schedule,
    sgdr_schedule as sgdr_schedule,
    warmup_constant_schedule as warmup_constant_schedule,
    warmup_cosine_decay_schedule as warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule as warmup_exponential_decay_schedule,
)

from . import _tree, _validate
from ._types import ArrayLike, Schedule

__all__ = [
    "StepDecay",
    "MultiStepDecay",
    "InverseTimeDecay",
    "CyclicTriangular",
    "PerEpoch",
    "step_decay",
    "multistep_decay",
    "inverse_time_decay",
    "cyclic_triangular",
    "per_epoch",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]


def _count(count: ArrayLike) -> jax.Array:
    """The step count as the default float dtype (int32 / int would give float32)."""
    return jnp.asarray(count).astype(jnp.result_type(float))


BAD_NUMBER = _validate.BAD_NUMBER
NOT_POSITIVE = "{name} must be > 0 and finite, got {name}={value!r}"
NEGATIVE = "{name} must be >= 0, got {name}={value!r}"
BAD_MILESTONES = "milestones must be a sequence of integers, got milestones={value!r}"
BAD_BOUNDS = "max_lr must be >= base_lr, got base_lr={base!r}, max_lr={top!r}"
BAD_STEPS = (
    "{name} must be > 0 and an integer (a number of steps: a Python or NumPy int, or an integer scalar array), "
    "got {name}={value!r}"
)


# Host checks follow jaxgd._validate's policy: one real number (or a real
# scalar array) per argument; concrete values checked, tracers pass. The
# factories keep the value as given (an int stays an int leaf).
def _check_positive(name: str, value: ArrayLike) -> None:
    """A concrete value must be > 0 and finite (NaN fails); tracers pass."""
    _validate.positive(name, value, NOT_POSITIVE)


def _check_nonneg(name: str, value: ArrayLike) -> None:
    """A concrete value must be >= 0 and finite (NaN fails); tracers pass."""
    _validate.nonneg(name, value, NEGATIVE)


def _check_steps(name: str, value: ArrayLike) -> None:
    """A number of steps: a positive Python/NumPy int or integer scalar array (a bool or a float,
    ``2.5`` or ``10.0``, fails); an integer tracer passes."""
    _validate.count(name, value, 1, BAD_STEPS)


class StepDecay(NamedTuple):
    """``init_value * gamma ** floor(count / step_size)`` (PyTorch ``StepLR``).

    The floor is an integer division of the integer count (exact at any count: in float32 a count
    past ``2**24`` divided as a float rounded, and ``step_decay(1.0, 20_000_001, 0.5)`` read 0.5 at
    step 20,000,000).
    """

    init_value: ArrayLike
    step_size: ArrayLike
    gamma: ArrayLike

    def __call__(self, count: ArrayLike) -> jax.Array:
        k = jnp.floor_divide(jnp.asarray(count), self.step_size)
        return self.init_value * jnp.power(self.gamma, _count(k))


class MultiStepDecay(NamedTuple):
    """``init_value * gamma ** #{m in milestones : count >= m}`` (PyTorch ``MultiStepLR``)."""

    init_value: ArrayLike
    milestones: tuple
    gamma: ArrayLike

    def __call__(self, count: ArrayLike) -> jax.Array:
        if not self.milestones:
            return self.init_value * jnp.ones_like(jnp.asarray(count), dtype=float)
        passed = jnp.asarray(count) >= jnp.stack([jnp.asarray(m) for m in self.milestones])
        return self.init_value * jnp.power(self.gamma, jnp.sum(passed))


class InverseTimeDecay(NamedTuple):
    """``init_value / (1 + decay_rate * t)``, ``t = count / decay_steps`` (floored when staircase: an integer
    division of the count by an integer ``decay_steps``, exact at any count, as :class:`StepDecay`'s)."""

    init_value: ArrayLike
    decay_rate: ArrayLike
    decay_steps: ArrayLike
    staircase: bool = False

    def __call__(self, count: ArrayLike) -> jax.Array:
        if self.staircase:
            t = _count(jnp.floor_divide(jnp.asarray(count), self.decay_steps))
        else:
            t = _count(count) / self.decay_steps
        return self.init_value / (1.0 + self.decay_rate * t)


# ``staircase`` changes the formula, so it must be static: keep it out of the leaves.
jax.tree_util.register_pytree_node(
    InverseTimeDecay,
    lambda s: ((s.init_value, s.decay_rate, s.decay_steps), s.staircase),
    lambda staircase, c: InverseTimeDecay(*c, staircase=staircase),
)


class CyclicTriangular(NamedTuple):
    """PyTorch ``CyclicLR(mode="triangular")``: a triangle wave between the two bounds.

    ``cycle = floor(1 + count / (2 * step_size_up))``,
    ``x = |count / step_size_up - 2 cycle + 1|``,
    ``lr = base_lr + (max_lr - base_lr) * max(0, 1 - x)``.

    Evaluated as ``x = |count mod (2 step_size_up) - step_size_up| / step_size_up`` (the same
    number): the remainder of an integer count by an integer ``step_size_up`` is exact at any count
    (in float32 ``count / step_size_up`` past ``2**24`` rounded, and the wave stood still).
    """

    base_lr: ArrayLike
    max_lr: ArrayLike
    step_size_up: ArrayLike

    def __call__(self, count: ArrayLike) -> jax.Array:
        n = self.step_size_up
        x = _count(jnp.abs(jnp.remainder(jnp.asarray(count), 2 * n) - n)) / n
        return self.base_lr + (self.max_lr - self.base_lr) * jnp.maximum(0.0, 1.0 - x)


def step_decay(init_value: ArrayLike, step_size: int, gamma: ArrayLike = 0.1) -> StepDecay:
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps.

    .. math:: \\eta_k = \\eta_0 \\, \\gamma^{\\lfloor k / N \\rfloor}

    with :math:`\\eta_0` = ``init_value`` and :math:`N` = ``step_size``.
    Reference: PyTorch ``torch.optim.lr_scheduler.StepLR``.

    Args:
      init_value: the initial learning rate.
      step_size: decay every this many steps: a positive integer (a Python or NumPy int, or an
        integer scalar array).
      gamma: the multiplicative factor.

    Returns:
      A :class:`StepDecay` schedule (a pytree; ``sched(count) -> lr``).

    Raises:
      ValueError: if a concrete ``init_value`` or ``gamma`` is not > 0, or ``step_size`` is not a
        positive integer (``2.5`` and ``10.0`` are refused).
      TypeError: if ``init_value`` or ``gamma`` is not a real number or a real scalar array
        (a non-scalar array raises ValueError).
    """
    _check_positive("init_value", init_value)
    _check_steps("step_size", step_size)
    _check_positive("gamma", gamma)
    return StepDecay(init_value, step_size, gamma)


def multistep_decay(
    init_value: ArrayLike, milestones: Sequence[int], gamma: ArrayLike = 0.1
) -> MultiStepDecay:
    """Multiply the learning rate by ``gamma`` at each of the given milestones.

    .. math:: \\eta_k = \\eta_0 \\, \\gamma^{|\\{m \\in M : k \\ge m\\}|}

    Reference: PyTorch ``torch.optim.lr_scheduler.MultiStepLR``.

    Args:
      init_value: the initial learning rate.
      milestones: increasing step counts at which to decay.
      gamma: the multiplicative factor.

    Returns:
      A :class:`MultiStepDecay` schedule.

    Raises:
      ValueError: if ``milestones`` is not increasing, or ``init_value`` or
        ``gamma`` is not > 0.
      TypeError: if ``milestones`` is not a sequence of integers, or a
        number is not real.
    """
    _check_positive("init_value", init_value)
    _check_positive("gamma", gamma)
    if isinstance(milestones, (str, bytes)):
        raise TypeError(BAD_MILESTONES.format(value=milestones))
    try:
        raw = tuple(milestones)  # (once: a generator gives its items once)
        if any(isinstance(m, (bool, np.bool_)) for m in raw):  # (True read as step 1)
            raise TypeError
        ms = tuple(operator.index(m) for m in raw)
    except TypeError:
        raise TypeError(BAD_MILESTONES.format(value=milestones)) from None
    if any(b <= a for a, b in zip(ms, ms[1:])) or any(m < 0 for m in ms):
        raise ValueError(f"milestones must be non-negative and increasing, got {milestones=}")
    if ms and ms[-1] > np.iinfo(np.int32).max:  # (step counts are int32: a larger one overflowed, unnamed)
        raise ValueError(f"milestones must be step counts below 2**31 (int32), got {milestones=}")
    return MultiStepDecay(init_value, ms, gamma)


def inverse_time_decay(
    init_value: ArrayLike, decay_rate: ArrayLike, decay_steps: ArrayLike = 1, staircase: bool = False
) -> InverseTimeDecay:
    """Inverse-time decay, the classic ``1/t`` step size of stochastic approximation.

    .. math:: \\eta_k = \\frac{\\eta_0}{1 + r \\, k / s}

    with :math:`r` = ``decay_rate``, :math:`s` = ``decay_steps``
    (:math:`\\lfloor k/s \\rfloor` when ``staircase``). Reference: Robbins &
    Monro, "A Stochastic Approximation Method", 1951; TensorFlow's
    ``InverseTimeDecay``.

    Args:
      init_value: the initial learning rate.
      decay_rate: :math:`r` (>= 0).
      decay_steps: :math:`s` (> 0).
      staircase: decay in discrete jumps every ``decay_steps`` steps.

    Returns:
      An :class:`InverseTimeDecay` schedule.

    Raises:
      ValueError: if a concrete ``init_value`` or ``decay_steps`` is not > 0,
        or ``decay_rate`` is negative.
      TypeError: if one is not a real number or a real scalar array
        (a non-scalar array raises ValueError).
    """
    _check_positive("init_value", init_value)
    _check_nonneg("decay_rate", decay_rate)
    _check_positive("decay_steps", decay_steps)
    staircase = _validate.flag("staircase", staircase)
    return InverseTimeDecay(init_value, decay_rate, decay_steps, bool(staircase))


def cyclic_triangular(base_lr: ArrayLike, max_lr: ArrayLike, step_size_up: ArrayLike) -> CyclicTriangular:
    """The triangular cyclical learning rate.

    .. math::
       c = \\lfloor 1 + k / (2 N) \\rfloor,\\quad x = |k/N - 2c + 1|,\\quad
       \\eta_k = \\eta_{lo} + (\\eta_{hi} - \\eta_{lo}) \\max(0, 1 - x)

    with :math:`N` = ``step_size_up``. Reference: L. N. Smith, "Cyclical
    Learning Rates for Training Neural Networks", WACV 2017 (triangular
    policy); PyTorch ``CyclicLR``.

    Args:
      base_lr: the lower bound :math:`\\eta_{lo}` (>= 0: 0 is allowed, as in PyTorch's
        ``CyclicLR``).
      max_lr: the upper bound :math:`\\eta_{hi}` (> 0 and >= ``base_lr``).
      step_size_up: steps from the lower to the upper bound (> 0).

    Returns:
      A :class:`CyclicTriangular` schedule.

    Raises:
      ValueError: if a concrete ``base_lr`` is negative, ``max_lr`` or ``step_size_up`` is not > 0,
        or ``max_lr`` < ``base_lr``.
      TypeError: if one is not a real number or a real scalar array
        (a non-scalar array raises ValueError).
    """
    _check_nonneg("base_lr", base_lr)
    _check_positive("max_lr", max_lr)
    _check_positive("step_size_up", step_size_up)
    lo, hi = _validate.value_of("base_lr", base_lr), _validate.value_of("max_lr", max_lr)
    if lo is not None and hi is not None and not hi >= lo:
        raise ValueError(BAD_BOUNDS.format(base=base_lr, top=max_lr))
    return CyclicTriangular(base_lr, max_lr, step_size_up)


class PerEpoch(NamedTuple):
    """``schedule(count // steps_per_epoch)``: an epoch schedule driven by the step count.

    ``schedule`` is a jaxgd schedule (a pytree whose numbers are leaves) or any
    other callable wrapped as static (an optax schedule, a lambda).
    """

    schedule: object
    steps_per_epoch: ArrayLike

    def __call__(self, count: ArrayLike) -> jax.Array:
        inner = self.schedule
        fn = inner.value if isinstance(inner, _tree.Static) else inner
        return jnp.asarray(fn(jnp.floor_divide(jnp.asarray(count), self.steps_per_epoch)))


def per_epoch(schedule: Schedule, steps_per_epoch: int) -> PerEpoch:
    """Turn a schedule over *epochs* into one over optimizer steps.

    Every step-size schedule in jaxgd counts optimizer steps (one per
    minibatch in :func:`jaxgd.fit`). ``per_epoch`` holds the learning rate
    constant within an epoch and advances ``schedule`` once per epoch, as
    PyTorch's epoch-level ``scheduler.step()`` does:

    .. math:: \\eta_k = s(\\lfloor k / E \\rfloor)

    with :math:`s` = ``schedule`` and :math:`E` = ``steps_per_epoch``. In
    :func:`jaxgd.fit`, ``E = n // batch_size`` with ``Remainder.DROP`` and
    ``ceil(n / batch_size)`` with ``Remainder.MASK`` (``n`` examples).

    Args:
      schedule: ``epoch -> lr``: a jaxgd schedule (its numbers stay traced
        leaves), an optax schedule or any callable.
      steps_per_epoch: optimizer steps per epoch: a positive integer (a Python or NumPy int, or
        an integer scalar array).

    Returns:
      A :class:`PerEpoch` schedule (a pytree; ``sched(count) -> lr``).

    Raises:
      TypeError: if ``schedule`` is not callable.
      ValueError: if ``steps_per_epoch`` is not a positive integer (``2.5`` is refused).

    Example:
      >>> import jaxgd
      >>> sched = jaxgd.schedules.per_epoch(jaxgd.schedules.step_decay(0.1, 1, 0.5), steps_per_epoch=3)
      >>> [round(float(sched(k)), 6) for k in (0, 2, 3, 6)]
      [0.1, 0.1, 0.05, 0.025]
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be callable (epoch -> lr), got {type(schedule).__name__}")
    _check_steps("steps_per_epoch", steps_per_epoch)
    leaves = jax.tree_util.tree_leaves(schedule)
    if len(leaves) == 1 and leaves[0] is schedule:  # a closure: ride in the static part
        schedule = _tree.Static(schedule)
    return PerEpoch(schedule, steps_per_epoch)
