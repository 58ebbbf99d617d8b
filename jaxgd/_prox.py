"""Proximal steps: the regulariser with no gradient, applied after each move.

``theta_{k+1} = prox_{alpha_k h}(theta_k + alpha_k d_k)``. With ``d = -grad``
this is proximal gradient descent (ISTA for the L1 norm).

Reference: A. Beck & M. Teboulle, "A Fast Iterative Shrinkage-Thresholding
Algorithm for Linear Inverse Problems", SIAM J. Imaging Sciences 2(1), 2009
(ISTA, eq. 1.4; soft-thresholding, eq. 1.5); N. Parikh & S. Boyd,
"Proximal Algorithms", 2014, section 6.5.2.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from . import _tree
from ._types import Grads, Params


def soft_threshold(x: jax.Array, t: Any) -> jax.Array:
    """``sign(x) * max(|x| - t, 0)``, the proximal map of ``t * |x|``."""
    t = jnp.asarray(t, x.dtype)
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0).astype(x.dtype)


@_tree.pytree_class(data=("l1",), meta=())
class Prox:
    """The non-smooth part ``h(theta) = l1 * ||theta||_1`` and its proximal map.

    ``l1=None`` means no proximal term (static, so the loop carries no cost);
    a number, even a traced one, switches it on.
    """

    __slots__ = ("l1",)

    def __init__(self, l1: Any = None) -> None:
        object.__setattr__(self, "l1", l1)

    @property
    def active(self) -> bool:
        return self.l1 is not None

    def apply(self, params: Params, alpha: jax.Array) -> Params:
        if not self.active:
            return params
        return _tree.tmap(lambda x: soft_threshold(x, alpha * self.l1), params)

    def value(self, params: Params) -> jax.Array:
        """``h(theta)``, added to the reported loss."""
        if not self.active:
            return jnp.asarray(0.0)
        return self.l1 * sum(jnp.sum(jnp.abs(x)) for x in _tree.leaves(params))

    def stationarity(self, params: Params, grad: Grads) -> jax.Array:
        """The norm that must vanish at a minimiser.

        Without a proximal term, ``||grad||``; with one, the norm of the
        unit-step gradient mapping ``theta - prox_h(theta - grad)``, which is
        zero exactly at the minimisers of ``f + h`` (Beck, "First-Order Methods
        in Optimization", SIAM 2017, Theorem 10.7).
        """
        if not self.active:
            return _tree.norm(grad)
        moved = self.apply(_tree.add_scaled(params, -1.0, grad), jnp.asarray(1.0))
        return _tree.norm(_tree.sub(params, moved))
