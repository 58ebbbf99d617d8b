"""First-order directions built on optax's unit-learning-rate transformations.

Each factory takes no argument and is cached, so a name always yields the
same :class:`~jaxgd.Direction` object and a compiled loop keyed on it is
re-used. They are listed by name in :mod:`jaxgd.directions.registry`.
"""

from __future__ import annotations

import functools

import optax

from .base import Direction, from_preconditioner


@functools.lru_cache(maxsize=None)
def gd() -> Direction:
    """Steepest descent, ``d = -g``."""
    return from_preconditioner("gd", optax.identity(), keeps_nonfinite=True)


@functools.lru_cache(maxsize=None)
def momentum() -> Direction:
    """Heavy ball as in ``optax.sgd`` / ``torch.optim.SGD``: ``v = 0.9 v + g``, ``d = -v``."""
    return from_preconditioner("momentum", optax.trace(decay=0.9, nesterov=False), keeps_nonfinite=True)


@functools.lru_cache(maxsize=None)
def nesterov() -> Direction:
    """Nesterov momentum (``optax.trace(decay=0.9, nesterov=True)``)."""
    return from_preconditioner("nesterov", optax.trace(decay=0.9, nesterov=True), keeps_nonfinite=True)


@functools.lru_cache(maxsize=None)
def adagrad() -> Direction:
    """AdaGrad with ``optax.adagrad``'s defaults."""
    return from_preconditioner("adagrad", optax.scale_by_rss(initial_accumulator_value=0.1, eps=1e-7), keeps_nonfinite=True)


@functools.lru_cache(maxsize=None)
def rmsprop() -> Direction:
    """RMSProp with ``optax.rmsprop``'s defaults."""
    return from_preconditioner("rmsprop", optax.scale_by_rms(decay=0.9, eps=1e-8), keeps_nonfinite=True)


@functools.lru_cache(maxsize=None)
def adam() -> Direction:
    """Adam (``optax.scale_by_adam``)."""
    return from_preconditioner("adam", optax.scale_by_adam(), keeps_nonfinite=True)


@functools.lru_cache(maxsize=None)
def adamw() -> Direction:
    """AdamW: ``optax.adamw = chain(scale_by_adam, add_decayed_weights(l2), scale_by_lr)``;
    the solver adds the decay (a traced ``l2``) to the direction."""
    return from_preconditioner("adamw", optax.scale_by_adam(), decoupled_l2=True, keeps_nonfinite=True)
