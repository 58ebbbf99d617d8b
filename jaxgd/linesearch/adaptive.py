"""Adaptive step sizes with one evaluation per step: Barzilai-Borwein, Polyak, reduce-on-plateau.

None of these searches: each computes :math:`\\alpha_k` from what it has
seen, then evaluates once. If that single trial is NaN/Inf, the step is
halved until it is finite (``evaluate_finite``, at most ``NAN_BACKOFF``
times, each evaluation counted); the rule never reports ``failed`` for a
finite trial. Numbers are pytree leaves (no recompilation for new values).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from .. import _tree, _validate
from .wolfe import check_count, check_finite, check_nonneg, check_open_unit, check_positive, evaluate_finite, info
from ..core.stepsize import StepContext, StepInfo, Trial, rule_dtype
from .._types import ArrayLike, Grads, Params

BAD_FORMULA = "formula must be 1 (BB1 = s's / s'y) or 2 (BB2 = s'y / y'y), got formula={value!r}"
BAD_RANGE = "min_step must be <= max_step, got min_step={lo!r}, max_step={hi!r}"


# -- Barzilai-Borwein ----------------------------------------------------------
class BBState(NamedTuple):
    params: Params  # theta_{k-1}
    grad: Grads  # g_{k-1}
    alpha: jax.Array  # alpha_{k-1}
    started: jax.Array  # False before the first step


@_tree.pytree_class(data=("initial", "min_step", "max_step"), meta=("formula",))
@_tree.repr_from_init
class BarzilaiBorwein:
    """Barzilai-Borwein (spectral) step sizes.

    With :math:`s = \\theta_k - \\theta_{k-1}` and :math:`y = g_k - g_{k-1}`:

    .. math::
       \\alpha^{BB1}_k = \\frac{s^\\top s}{s^\\top y}, \\qquad
       \\alpha^{BB2}_k = \\frac{s^\\top y}{y^\\top y},

    clipped to ``[min_step, max_step]``. The first step is ``initial`` (clipped
    to the same interval); when
    :math:`s^\\top y \\le 0` (no positive curvature along :math:`s`) or the
    quotient is not finite, the previous step is kept. The method is
    non-monotone (no line search); with ``bounds`` or ``l1`` it is the
    spectral projected gradient step without its non-monotone safeguard.

    References: J. Barzilai & J. M. Borwein, "Two-point step size gradient
    methods", IMA J. Numer. Anal. 8(1), 1988, eqs. (5) and (6); M. Raydan,
    "The Barzilai and Borwein gradient method for the large scale
    unconstrained minimization problem", SIAM J. Optim. 7(1), 1997
    (the safeguard interval).

    Args:
      initial: the first step (> 0).
      formula: 1 for BB1 (long step), 2 for BB2 (short step); static.
      min_step: lower safeguard (> 0). The default, ``1e-30``, bounds no
        step a loss's scale asks for: Raydan's ``1e-10`` is above the stable
        step ``2 / L`` of a loss with curvature ``L > 2e10`` (``1e10 x^2``),
        where every clipped step overshot and the run diverged.
      max_step: upper safeguard (>= min_step; default ``1e30``).

    Raises:
      ValueError: a bad ``formula`` or a concrete value out of range.
    """

    def __init__(self, initial: ArrayLike = 1e-3, formula: int = 1, min_step: ArrayLike = 1e-30, max_step: ArrayLike = 1e30) -> None:
        if formula not in (1, 2) or isinstance(formula, bool):
            raise ValueError(BAD_FORMULA.format(value=formula))
        lo, hi = check_positive("min_step", min_step), check_positive("max_step", max_step, allow_inf=True)
        lo_value, hi_value = _validate.value_of("min_step", lo), _validate.value_of("max_step", hi)
        if lo_value is not None and hi_value is not None and lo_value > hi_value:  # (numbers or concrete arrays)
            raise ValueError(BAD_RANGE.format(lo=lo, hi=hi))
        _tree.set_fields(self, initial=check_positive("initial", initial), formula=int(formula), min_step=lo, max_step=hi)

    def init(self, params: Params, value: jax.Array, grad: Grads) -> BBState:
        """The first state: no previous iterate yet (the first step is ``initial``)."""
        return BBState(params, grad, jnp.asarray(self.initial, rule_dtype(value.dtype)), jnp.asarray(False))

    def step(self, state: BBState, ctx: StepContext) -> tuple[jax.Array, Trial, BBState, StepInfo]:
        """One step: ``(alpha, trial at alpha, new state, StepInfo)``."""
        dtype = rule_dtype(ctx.value.dtype)
        s = _tree.sub(ctx.params, state.params)
        y = _tree.sub(ctx.grad, state.grad)
        sy = _tree.vdot(s, y).astype(dtype)
        if self.formula == 1:
            quotient = _tree.sq_norm(s).astype(dtype) / sy
        else:
            quotient = sy / _tree.sq_norm(y).astype(dtype)
        usable = state.started & (sy > 0) & jnp.isfinite(quotient)
        alpha = jnp.where(usable, quotient, state.alpha)
        alpha = jnp.clip(alpha, self.min_step, self.max_step).astype(dtype)
        alpha, trial, n = evaluate_finite(ctx, alpha)
        new = BBState(ctx.params, ctx.grad, alpha.astype(dtype), jnp.asarray(True))
        return alpha, trial, new, info(n, n, False)


# -- Polyak ----------------------------------------------------------------------
class PolyakState(NamedTuple):
    best: jax.Array  # the lowest value seen (for the running estimate of f*)


@_tree.pytree_class(data=("f_star", "delta", "scale", "max_step"), meta=())
@_tree.repr_from_init
class Polyak:
    """Polyak's step size, with a known optimal value or a running estimate of it.

    .. math::
       \\alpha_k = \\min\\Bigl(\\frac{f(\\theta_k) - f^\\star}{c \\, (-\\nabla f(\\theta_k)^\\top d_k)},
       \\ \\alpha_{\\max}\\Bigr),

    which for :math:`d = -g` is the classic :math:`(f - f^\\star)/\\|g\\|^2`
    (:math:`c` = ``scale``, :math:`\\alpha_{\\max}` = ``max_step``). With
    ``f_star=None`` the target is the running level
    :math:`f^\\star_k = \\min_{j \\le k} f(\\theta_j) - \\delta` (``delta``),
    Polyak's and Nedic & Bertsekas' adaptive-level variant with a constant
    :math:`\\delta`. A negative quotient (a target above the current value)
    gives a zero step; a direction that is not a descent direction
    (``slope >= 0``) makes the step fail.

    References: B. T. Polyak, "Introduction to Optimization", 1987,
    section 5.3 (eq. 5.3.2 and the adaptive target); A. Nedic & D. Bertsekas,
    "Convergence rate of incremental subgradient algorithms", 2001
    (target level); N. Loizou et al., "Stochastic Polyak step-size for SGD",
    AISTATS 2021 (the scale ``c`` and the cap, SPSmax).

    Args:
      f_star: the optimal value, or ``None`` for the running estimate
        (static choice: ``None`` versus a number).
      delta: the offset below the best value seen (> 0; estimate only).
      scale: :math:`c` (> 0).
      max_step: :math:`\\alpha_{\\max}` (> 0; may be ``inf``).

    Raises:
      ValueError: a concrete value out of range.
    """

    def __init__(self, f_star: Optional[ArrayLike] = None, delta: ArrayLike = 1e-2, scale: ArrayLike = 1.0, max_step: ArrayLike = float("inf")) -> None:
        _tree.set_fields(
            self,
            f_star=None if f_star is None else check_finite("f_star", f_star),
            delta=check_positive("delta", delta),
            scale=check_positive("scale", scale),
            max_step=check_positive("max_step", max_step, allow_inf=True),
        )

    def init(self, params: Params, value: jax.Array, grad: Grads) -> PolyakState:
        """The first state: the best value seen is ``f(theta_0)``."""
        return PolyakState(value.astype(rule_dtype(value.dtype)))

    def step(self, state: PolyakState, ctx: StepContext) -> tuple[jax.Array, Trial, PolyakState, StepInfo]:
        """One step: ``(alpha, trial at alpha, new state, StepInfo)``."""
        dtype = rule_dtype(ctx.value.dtype)
        target = state.best - self.delta if self.f_star is None else jnp.asarray(self.f_star, dtype)
        decrease = -ctx.slope.astype(dtype)
        descent = decrease > 0
        quotient = (ctx.value.astype(dtype) - target) / (self.scale * jnp.where(descent, decrease, 1.0))
        alpha = jnp.where(descent & jnp.isfinite(quotient), jnp.clip(quotient, 0.0, self.max_step), 0.0).astype(dtype)
        alpha, trial, n = evaluate_finite(ctx, alpha)
        f = trial.value.astype(dtype)
        best = jnp.where(f < state.best, f, state.best).astype(dtype)
        return alpha, trial, PolyakState(best), info(n, n, ~descent)


# -- reduce on plateau -------------------------------------------------------------
# Cuts of the rate with no improvement between them after which a full window is a stall
# (ReduceOnPlateau.exhausted): the rule has reacted twice, and f has not moved.
EXHAUSTED_CUTS = 2


class PlateauState(NamedTuple):
    lr: jax.Array  # the current step size
    best: jax.Array  # the best value seen
    bad: jax.Array  # steps without improvement (int32)
    cooldown: jax.Array  # steps left in the cooldown (int32)
    cuts: Any = 0  # reductions (a cut, or the rate held at its floor) since f last improved (int32)


@_tree.pytree_class(data=("initial", "factor", "patience", "cooldown", "rtol", "atol", "min_lr"), meta=())
@_tree.repr_from_init
class ReduceOnPlateau:
    """Cut the step size when the loss stops improving (PyTorch ``ReduceLROnPlateau``).

    After each step the new value :math:`f` counts as an improvement when

    .. math:: f < f_{best} - \\text{rtol}\\,|f_{best}| - \\text{atol},

    a threshold relative to :math:`|f_{best}|`, so it is correct for negative
    losses (PyTorch's ``mode="min", threshold_mode="rel"`` uses
    :math:`f_{best}(1 - \\text{rtol})`, which for :math:`f_{best} < 0` lies
    *above* :math:`f_{best}`). After more than ``patience`` steps without
    improvement, :math:`\\alpha \\leftarrow \\max(\\text{factor}\\,\\alpha,
    \\text{min\\_lr})` and ``cooldown`` steps follow during which bad steps
    are not counted. :math:`f_{best}` starts at :math:`f(\\theta_0)`.

    In float32 and narrower the solver stops a run that cannot progress
    (:meth:`exhausted`): after :data:`EXHAUSTED_CUTS` cuts with no improvement
    between them (a rate held at a positive ``min_lr`` goes on), 100 steps with
    no new low of ``f`` or of the gradient norm end it, ``Status.PRECISION`` at
    a point stationary to precision and ``Status.STALLED`` elsewhere (a rate
    cut to nothing: in float16, a least squares run whose rate fell to 0 sat 7
    ulps from its answer until ``max_steps``).

    References: PyTorch ``torch.optim.lr_scheduler.ReduceLROnPlateau``;
    ``optax.contrib.reduce_on_plateau``.

    Args:
      initial: the first step size (> 0).
      factor: the reduction factor, in (0, 1).
      patience: steps without improvement tolerated before a reduction (>= 0).
      cooldown: steps after a reduction during which bad steps are not counted (>= 0).
      rtol: relative improvement threshold (>= 0).
      atol: absolute improvement threshold (>= 0).
      min_lr: the step size never goes below this (>= 0).

    Raises:
      ValueError: a concrete value out of range.
    """

    def __init__(
        self,
        initial: ArrayLike = 1e-3,
        factor: ArrayLike = 0.1,
        patience: int = 10,
        cooldown: int = 0,
        rtol: ArrayLike = 1e-4,
        atol: ArrayLike = 0.0,
        min_lr: ArrayLike = 0.0,
    ) -> None:
        _tree.set_fields(
            self,
            initial=check_positive("initial", initial),
            factor=check_open_unit("factor", factor),
            patience=check_count("patience", patience, 0),
            cooldown=check_count("cooldown", cooldown, 0),
            rtol=check_nonneg("rtol", rtol),
            atol=check_nonneg("atol", atol),
            min_lr=check_nonneg("min_lr", min_lr),
        )

    def init(self, params: Params, value: jax.Array, grad: Grads) -> PlateauState:
        """The first state: ``lr = initial``, ``best = f(theta_0)``, no bad steps, no cooldown."""
        zero = jnp.asarray(0, jnp.int32)
        dtype = rule_dtype(value.dtype)
        return PlateauState(jnp.asarray(self.initial, dtype), value.astype(dtype), zero, zero, zero)

    def step(self, state: PlateauState, ctx: StepContext) -> tuple[jax.Array, Trial, PlateauState, StepInfo]:
        """One step at the current rate, then the plateau bookkeeping."""
        dtype = rule_dtype(ctx.value.dtype)
        alpha, trial, n = evaluate_finite(ctx, state.lr)
        lr = jnp.minimum(state.lr, alpha)  # a NaN back-off also lowers the rate
        f = trial.value.astype(dtype)
        improved = f < state.best - self.rtol * jnp.abs(state.best) - self.atol
        best = jnp.where(improved, f, state.best).astype(dtype)
        bad = jnp.where(improved, 0, state.bad + 1)
        cooling = state.cooldown > 0
        cooldown = jnp.where(cooling, state.cooldown - 1, state.cooldown)
        bad = jnp.where(cooling, 0, bad)
        reduce = bad > self.patience
        # max(lr * factor, min_lr), never above lr (torch's ReduceLROnPlateau only ever lowers the rate)
        lr = jnp.where(reduce, jnp.minimum(lr, jnp.maximum(lr * self.factor, self.min_lr)), lr).astype(dtype)
        cooldown = jnp.where(reduce, self.cooldown, cooldown).astype(jnp.int32)
        bad = jnp.where(reduce, 0, bad).astype(jnp.int32)
        cuts = jnp.where(improved, 0, state.cuts + reduce).astype(jnp.int32)
        return alpha, trial, PlateauState(lr, best, bad, cooldown, cuts), info(n, n, False)

    def exhausted(self, state: PlateauState) -> jax.Array:
        """True once the rate was cut :data:`EXHAUSTED_CUTS` times since ``f`` last improved, unless it
        is held at a positive ``min_lr``: the rule has done what it does against a lack of progress,
        and the solver's full window (no new low of ``f`` or of the gradient norm for 100 steps) is
        then a stall (:class:`jaxgd.Status`). A rate held at ``min_lr`` goes on, as asked (float32
        ``|x - 3| + 0.1 ||x||^2`` at ``min_lr=1e-3`` still fell from 2.78 to 2.7009 over 5,000 steps
        after such a window)."""
        held = (self.min_lr > 0) & (state.lr <= self.min_lr)
        return (state.cuts >= EXHAUSTED_CUTS) & ~held
