"""Configurable search directions, usable as ``method=``.

``method="bfgs"``, ``"lbfgs"`` and ``"cg"`` use the defaults below; these
factories build the variants. Equal arguments return the same
:class:`jaxgd.Direction` object, so a compiled loop is re-used.

Example:
  >>> import jax.numpy as jnp, jaxgd
  >>> from jaxgd import directions
  >>> rosen = lambda x: jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
  >>> res = jaxgd.minimize(rosen, jnp.array([-1.2, 1.0], jnp.float32), method=directions.cg("fr"),
  ...                      max_steps=500, gtol=1e-4)
  >>> print(res.status_enum.name, jnp.round(res.params, 3))
  GTOL [1. 1.]
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .base import Direction as Direction
from .quasi_newton import BFGSState as BFGSState
from .quasi_newton import CGState as CGState
from .quasi_newton import CGVariant as CGVariant
from .quasi_newton import bfgs_direction, cg_direction, lbfgs_direction

__all__ = ["BFGSState", "CGState", "CGVariant", "Direction", "bfgs", "cg", "lbfgs"]


def bfgs(scale_init: bool = False) -> Direction:
    """Dense BFGS (Nocedal & Wright, "Numerical Optimization", 2006, Alg. 6.1, eq. 6.17).

    :math:`d_k = -H_k g_k`, :math:`H_{k+1} = (I - \\rho s y^\\top) H_k (I - \\rho y s^\\top) + \\rho s s^\\top`.

    Args:
      scale_init: replace :math:`H_0 = I` (scipy's choice, the default) by
        :math:`(y^\\top s / y^\\top y) I` just before the first update (Nocedal &
        Wright eq. 6.20).

    Returns:
      The ``"bfgs"`` :class:`Direction` (default step: Moré-Thuente strong Wolfe, ``c2=0.9``,
      scipy's interpolated first trial).

    Raises:
      TypeError: ``scale_init`` is not a bool.
    """
    if not isinstance(scale_init, (bool, np.bool_)):
        raise TypeError(f"scale_init must be a bool, got scale_init={scale_init!r}")
    return bfgs_direction(bool(scale_init))


def lbfgs(memory_size: int = 10, scaling: str = "auto") -> Direction:
    """L-BFGS with ``memory_size`` curvature pairs (optax ``scale_by_lbfgs``).

    .. math:: d_k = -H_k g_k,\\quad H_k \\text{ from the two-loop recursion over the last } m
              \\text{ pairs, from } H_k^0

    :math:`H_k^0` (``scaling``): ``"scalar"``, :math:`(s^\\top y / y^\\top y) I` of the newest
    pair, scipy L-BFGS-B's (with it ``jaxgd.minimize`` takes L-BFGS-B's steps; ``gtol_norm=inf``
    for its stopping test); ``"diagonal"``, a diagonal matrix every kept pair updates
    (Gilbert & Lemaréchal's diagonal BFGS update, as in M1QN3), scaled to the newest pair;
    ``"auto"`` (the default, ``method="lbfgs"``'s): the diagonal while its entries spread over
    more than a factor 1,000 (a badly scaled problem: parameters of very different sizes, as in
    many curve fits), the scalar otherwise. On the 130 unconstrained CUTEst problems of sif2jax
    ``"auto"`` solves 127 (``"scalar"`` 115, scipy L-BFGS-B 107), needs 0.86 of scipy's
    evaluations in geometric mean (``"scalar"`` 0.99) and takes L-BFGS-B's steps on 80 of them;
    its diagonal costs a few more kernels a step and ~0.15 s more compile. With ``bounds=`` the
    method is L-BFGS-B and ``scaling`` chooses its :math:`B_0` the same way (the diagonal runs its
    Cauchy point and subspace step in the variables :math:`x_i / \\sqrt{D_i}`, where a box stays a
    box): on sif2jax's 65 bounded problems ``"auto"`` needs 0.97 of scipy L-BFGS-B's evaluations
    in geometric mean (``"scalar"``, scipy's steps, 1.02) and solves every problem scipy solves.

    Reference: Liu & Nocedal, Math. Programming 45, 1989; Gilbert & Lemaréchal, Math.
    Programming 45, 1989; Nocedal & Wright, Alg. 7.4-7.5.

    Args:
      memory_size: :math:`m`, number of pairs kept (>= 1, static).
      scaling: ``"auto"``, ``"diagonal"`` or ``"scalar"``.

    Returns:
      A :class:`Direction` (default step: L-BFGS-B's Moré-Thuente search, unit first trial).

    Raises:
      ValueError: ``memory_size`` not a positive integer; ``scaling`` not ``"auto"``,
        ``"diagonal"`` or ``"scalar"``.
    """
    return lbfgs_direction(memory_size, scaling)


def cg(variant: Any = "pr+", restart_every: Optional[int] = None) -> Direction:
    """Nonlinear conjugate gradient :math:`d_k = -g_k + \\beta_k d_{k-1}`.

    .. math::
       \\beta^{FR} = \\frac{g_k^\\top g_k}{g_{k-1}^\\top g_{k-1}},\\ 
       \\beta^{PR+} = \\max(0, \\tfrac{g_k^\\top y_k}{g_{k-1}^\\top g_{k-1}}),\\ 
       \\beta^{HS} = \\frac{g_k^\\top y_k}{d_{k-1}^\\top y_k},\\ 
       \\beta^{DY} = \\frac{g_k^\\top g_k}{d_{k-1}^\\top y_k}

    with restarts every ``restart_every`` steps (default: none for PR+, as scipy's CG;
    :math:`n` for the others) and when :math:`d_k` is not a descent direction.
    Reference: Nocedal & Wright, "Numerical Optimization", 2006, section 5.2.

    Args:
      variant: ``"fr"``, ``"pr+"`` (default), ``"hs"`` or ``"dy"``, or a :class:`CGVariant`.
      restart_every: restart period; ``None``: no periodic restart for PR+, the number of
        parameters for the others.

    Returns:
      A :class:`Direction` (default step: Moré-Thuente as scipy's CG, ``c2=0.4``).

    Raises:
      ValueError: an unknown variant or a bad ``restart_every``.
    """
    return cg_direction(variant, restart_every)
