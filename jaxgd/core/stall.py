"""Stops for runs that can make no more progress: precision-limited convergence and stalls.

A line search near a minimiser can run out of digits before ``gtol`` is
met: in float32 a sum-of-squares loss cannot be evaluated to better than
about 1e-7 of its size, so an absolute ``gtol=1e-6`` may be out of reach.
Without these stops such a run either fails its line search at the answer
(``LINESEARCH_FAILED``, a false failure) or keeps accepting steps that do
not lower ``f`` until ``max_steps``. Two rules, applied in
:meth:`jaxgd.Solver.step` through :func:`adjust_status` (one hook):

- **stationary to precision** (:func:`at_precision`): the point is
  stationary to the precision ``f`` can be evaluated at when
  :math:`\\|g\\| \\max(\\|x\\|, 1) \\le \\sqrt{\\epsilon} \\max(|f|, 1)`
  (:math:`\\epsilon` the dtype's machine epsilon): a step that lowers
  :math:`f` to first order by a relative :math:`\\sqrt\\epsilon` (the most
  a quasi-Newton step at such a point can) changes it by less than the
  rounding of a typical evaluation. A line search that fails there, or a
  stall there, ends in :attr:`Status.PRECISION`, a success, like scipy's
  "Desired error not necessarily achieved due to precision loss" (but only
  when the point really is stationary to precision).
- **the model at precision** (:func:`model_at_precision`; quasi-Newton
  directions, ``Direction.quasi_newton``, with a curvature memory): the
  search that failed or stalled started along ``d = -H g``, whose quadratic
  model predicts a decrease of :math:`|g^\\top d|/2` (half the squared Newton
  decrement, Boyd & Vandenberghe, "Convex Optimization", 2004, section
  9.5.1, with the quasi-Newton ``H``). When the search's unit first trial
  confirmed the model (the gradient there at most half as large:
  ``StepInfo.unit_sq_grad``, :func:`model_decrease`; across a kink it does not shrink) and the
  predicted decrease is at most :math:`\\epsilon^{3/4}|f|`, the run ends in
  :attr:`Status.PRECISION` too. The rounding of a sum of squares of small
  residuals of large data is about :math:`\\epsilon \\|y\\| \\|r\\|`, hundreds
  of epsilons of ``f``, above the searches' tie tolerance: the threshold
  allows a rounding up to :math:`\\epsilon^{-1/4}` (8,200 in float64, 54 in
  float32) times :math:`\\epsilon |f|`. (With :math:`\\sqrt{\\epsilon}|f|`,
  sif2jax's PENALTY3 stopped ``bfgs`` 3.6e-4 of ``|f|`` above its minimum, at
  a model decrease of :math:`2.7 \\times 10^{-9}|f|`; the answers it should
  stop at sit below :math:`3 \\times 10^{-13}|f|`.) Unlike the
  norm test this one does not depend on the parameters' scales: NIST's
  Misra1a (sif2jax's MISRA1ALS), whose two parameters differ by six orders
  of magnitude, has a gradient of 6e-4 at its answer and a model decrease
  of 1e-18 there (scipy's L-BFGS-B stops at that point with success: its
  ``factr`` test sees no decrease).
- **the restart's confirmation** (quasi-Newton directions with a restart, under
  :class:`jaxgd.linesearch.MoreThuente`; :func:`adjust_status`'s ``vouched``
  flag, carried in ``SolverState.stall``): a search that failed or stalled with a
  memory *vouches* for the point where its model predicts at most scipy
  L-BFGS-B's relative-reduction test, ``factr * eps * |f|`` (``factr = 1e7``,
  the default): *strongly* where the unit trial still descended (the line's
  secant through the slopes at 0 and 1 puts its minimiser beyond the unit step,
  :func:`line_decrease`) or did not move ``x`` at all, *weakly* where the unit
  trial passed the line's minimiser (:func:`overshoot_decrease`; so does a step
  across a kink). The run then goes on along ``-g`` from there without the
  memory (L-BFGS-B's restart, which a stall that vouched now takes too); if that
  search fails or stalls as well, after a strong vouch, or after a weak one where
  it located its own line's minimiser (a trial whose slope is at most 1/100 of
  the first: ``StepInfo.located``, the decrease to it at most
  :math:`t |g^\\top d|`) within :math:`\\epsilon^{3/4}|f|`, two directions found
  nothing above ``f``'s rounding: :attr:`Status.PRECISION`. On the 130
  unconstrained CUTEst problems this turns 8 of ``lbfgs``'s 10 false failures
  (PALMER1C/1D/3C/4C and ARGLINB after a failed search; LUKSAN12LS after a stall,
  and LUKSAN13LS and VIBRBEAM, which the restart lets go on to ``GTOL``) and 2 of
  ``bfgs``'s 3 (ARGLINB; EDENSCH, on to ``GTOL``) into successes and calls no run a
  success that did not reach the best value; without the retry's confirmation, MISRA1CLS/1DLS stopped
  early 4.7 and 1.1 (relative) above their minima (benchmarks/RESULTS.md,
  session 21). A kink is not at precision: there the unit trial passes the
  minimiser and the search along ``-g`` locates nothing (its slope jumps). (In
  float32, under a search that interpolates its first trial, the float32 probes
  decide that retry instead: :func:`restart_test`.)
- **f's own evaluation error** (``StepInfo.noise``): where a loss is a
  difference of large terms its value carries an error far above the dtype's
  rounding while its gradient stays accurate (sif2jax's LSC2LS, whose circle
  fit runs off to a radius of 1e9: ``f`` = 13.33 evaluates to within ~7e-7 of
  itself; PENALTY3: ~2e-7 of ``|f|`` = 1e-3). A search sees that error as a
  change of ``f`` at a trial that the trial's slopes cannot explain, more than
  ``NOISE_RATIO = 100`` times :math:`t (|\\phi'(0)| + |\\phi'(t)|)` (the mean
  value theorem's bound along a line whose slope is monotone; a kink stays
  within it, a smooth function's rounding changes ``f`` by an epsilon of
  ``|f|``, which the ``factr`` test covers anyway). A failed or stalled
  quasi-Newton search whose measured error covers its line's decrease
  (:func:`within_noise`) vouches strongly, one covering only the quadratic
  model's :math:`|g^\\top d|/2` weakly, and the weak vouch's retry along
  ``-g`` is confirmed by a located decrease within the error it measured
  (:func:`located_within`): then no trial of either search could show a
  decrease above the error, and the run ends in :attr:`Status.PRECISION`
  (LSC2LS, KIRBY2LS, PENALTY3; session 22).
- **the grid rule** (float32 and narrower; directions with a restart, under
  :class:`jaxgd.linesearch.MoreThuente`, and ``gd`` without a proximal term under
  ``MoreThuente``, ``StrongWolfe`` or ``Backtracking``, whose float32 searches record
  ``StepInfo.unseen``): a float32 gradient carries an error of ``eps`` times
  the size of the loss's intermediate terms, which can exceed the norm test's
  bound (extended Rosenbrock at its answer: ``||g||`` ~ 1e-4 of rounding from
  its ``100 (x_{i+1} - x_i^2)^2`` terms, 1 to 4 times the bound). Where a
  search along ``-g`` (after a restart, or ``gd``'s) fails, or ``gd``'s last
  search fills the :class:`Window` below, and its first trial (for ``cg``
  no shorter than a step that moves ``x`` by an ulp) moved ``x`` without the fall of
  ``f`` the gradient predicted beyond the tie tolerance (or, where it predicted less,
  passed the line's minimiser: the line's whole fall is within the tie tolerance,
  float16 at its answer), the gradient is
  rounding at the scale of the dtype's grid: with the norm test met within
  :data:`GRID_FACTOR` (16) the run ends in :attr:`Status.PRECISION`. A kink or
  a wrong gradient shows the same unseen fall, but with a gradient hundreds of
  times the bound: those stay failures (benchmarks/RESULTS.md, session 32; on
  float32 least squares with ``gd`` and a line search, where a stall or failure
  at the answer was ``MAX_STEPS`` or ``LINESEARCH_FAILED``: session 35).
- **stall**: a step-size rule that tracks progress (``rule.stalled(state)``,
  :class:`jaxgd.linesearch.MoreThuente`) reports that ``f`` has not
  decreased by more than rounding for ``stall_window`` steps. Away from a
  stationary point that is :attr:`Status.STALLED`, a failure whose message
  points at non-smooth losses (``|x|`` terms belong in ``l1=``).
- **window** (every other rule: schedules, constants, Backtracking, Barzilai-
  Borwein, ...; a :class:`Window` in ``SolverState.stall``; in float32 and
  narrower dtypes only, see :func:`tracks_window`): neither the loss
  nor the stationarity measure has reached a new lowest value for
  :data:`WINDOW` steps. At a point stationary to precision that is
  :attr:`Status.PRECISION` (a first-order method in float32 sits at a
  least-squares answer whose gradient cannot be evaluated below about
  ``eps * ||A|| ||residual||``, above an absolute ``gtol=1e-6``); so it is
  where the grid rule's evidence (``StepInfo.unseen``, which ``Backtracking``
  and ``StrongWolfe`` record too, for ``gd``) comes with the norm test met
  within :data:`GRID_FACTOR`. Elsewhere a line search (:func:`searches`:
  ``Backtracking``, ``StrongWolfe``, ``Exact``), whose every step lowers ``f``
  or ties it, has stalled: :attr:`Status.STALLED` (gradient descent on
  ``|x - 3| + 0.1 ||x||^2`` in float32 ran to ``max_steps`` at ``x = 3``);
  so has a rule that reports it has done all it does against a lack of progress
  (``rule.exhausted(state)``: ``ReduceOnPlateau`` after two cuts of its rate with no
  improvement between them; in float16 one cut its rate to 0 at 7 ulps from a
  least-squares answer and sat there until ``max_steps``, benchmarks/RESULTS.md,
  session 42); under any other rule the run goes on (a schedule that has not settled yet,
  an oscillation), as it always did. Off when ``gtol`` is 0: the user asked for every step.
  A converging run sets a new lowest gradient norm or loss every few steps;
  at the rounding floor new lows are records of noise, ever rarer.
- **the probe** (window rules whose step can fail, without a proximal term,
  :func:`probes`: the adaptive rules, and in float16 and bfloat16 the searches;
  not schedules): the norm test alone passes a point that is far from stationary
  where ``sqrt(eps)`` is coarse (0.03, 0.09 in 16 bits: a bfloat16 ``Polyak()``
  run that sat near ``x0`` ended ``PRECISION`` 30 units from its least-squares
  answer; ``ReduceOnPlateau`` on a wrong gradient, 0.8 from the minimiser) or
  ``||x*||`` large (float32 ``Polyak()`` and ``ReduceOnPlateau`` at ``x0`` of a
  quadratic centred at 1e4). A full window
  (checked once every :data:`WINDOW` steps) or a failed search that meets the norm
  test is ``PRECISION`` only where also :func:`probe_descent` finds no fall of
  ``f`` along ``-g`` beyond its rounding (at most :data:`PROBES` values; counted
  in ``nfev``). On the runs measured it turned no success at an answer into a
  failure; it does not mend the 16-bit false failures at an answer (the norm
  test's floor ``max(|f|, 1)`` misreads a gradient whose rounding scales with the
  loss's intermediate terms: benchmarks/RESULTS.md, session 37).

- **the scaled probe** (float32 and narrower; quasi-Newton directions with a restart, under
  :class:`jaxgd.linesearch.MoreThuente`: :func:`probes_scaled`): the model's test and the restart's
  failed retry say that two directions showed no fall of ``f``, not that the point is stationary.
  On a badly scaled problem in float32 both can show none far from a minimiser (NIST's Misra1a from
  its start: ``lbfgs`` ended ``PRECISION`` at ``f`` = 19.5 of 0.125). Where such a verdict would stop
  the run and the norm test does not, :func:`probe_descent` also tries steps along ``-x^2 g``, which
  move every parameter by the same relative amount; the run is ``PRECISION`` only where none shows a
  fall (evaluations in ``nfev``). On sif2jax's unconstrained problems, float32 ``lbfgs``: false
  successes 25 → 15, no success lost (benchmarks/RESULTS.md, session 38). In float16 and bfloat16
  (:data:`NORM_VETO_BITS`) the probe checks the norm test's ``PRECISION`` too, and so does one along
  ``-g`` for ``gd`` and ``cg`` under ``MoreThuente`` (:func:`probes_stop`): there ``sqrt(eps)`` is 0.03
  or 0.09 and the test's floor ``max(|f|, 1)`` passes a small loss far from its minimiser (least squares
  scaled by 1e-2: float16 ``bfgs`` ended ``PRECISION`` at ``f`` = 0.011, 13 units from the answer;
  benchmarks/RESULTS.md, session 42).
- **the Newton probe** (float32 only: :func:`probes_newton`; after the scaled probe found no fall):
  where the Hessian's condition number is 1e11 (sif2jax's PALMER*C, polynomial least squares) the
  float32 gradient's rounding hides its components along the small eigenvalues, so no first-order
  direction shows a fall far from the minimiser; a Newton direction does. :func:`newton_direction`
  runs at most :data:`NEWTON_STEPS` conjugate-gradient steps on ``H d = g`` with ``H v`` from
  gradient differences (forward-over-reverse cannot differentiate a loss that holds a ``custom_vjp``
  solve, such as a nested ``minimize``), and :func:`probe_descent` tries steps along ``-d``; a fall
  counts only above :data:`NEWTON_FALL` ``sqrt(eps) max(|f|, 1)`` (:func:`newton_fall`), the scale
  of the norm test (at a point whose ``f`` may still fall by less the float32 run cannot resolve it
  and the verdict stands). A fall vetoes the verdict: the run goes on or, after the restart's
  retry, ends ``LINESEARCH_FAILED`` with its last point, an honest failure where it was a false
  success. Gradient evaluations in ``ngev`` and ``nfev`` (benchmarks/RESULTS.md, session 40).
- **a ``cg`` stall** (float32 and float64: :func:`probes_stall`): ``cg`` has no quasi-Newton model to
  vouch for a point, and at answers its search's stall count (steps without a fall beyond rounding) ended
  runs ``STALLED``. There the stall is a verdict that the two probes above decide (in float64:
  :func:`line_veto`, then the scaled probe in float64): ``PRECISION`` where none finds a fall
  (benchmarks/RESULTS.md, sessions 49 and 50). In float64 so is a failed ``cg`` search along ``-g``
  (:func:`probes_retry`: the retry after a failed search, or a step without memory), where a gradient of
  rounding predicts a fall that ``f``'s rounding hides (sif2jax's ARGLINB at its closed-form minimum:
  ``|g|`` = 0.13 from terms of 1e6), where the line along ``-g`` shows no kink and no fall above ``f``'s
  rounding either (:func:`line_veto`): a kink's minimiser shows no fall to the probes, and its slope's jump
  keeps the failure and its hint at ``l1=``.
- **the 16-bit certificate** (float16 and bfloat16, at most :data:`CERTIFY_SIZE` parameters, a rule
  that can fail or stall: :func:`certifies`): the norm test misreads a 16-bit answer, whose gradient's
  rounding scales with the loss's terms (bfloat16 least squares at its exact answer: 11.5 times the
  bound), so searches, Barzilai-Borwein and Polyak's rule ended there ``LINESEARCH_FAILED``, ``STALLED``
  or ``MAX_STEPS``. Where the rules above let such a stop or full window go on,
  :func:`newton_certifies` takes the loss in float32 at the point: a Hessian by gradient differences
  resolved positive definite and a Newton step that predicts a fall within ``f``'s rounding, or stays
  within a few ulps of ``x``, make it ``PRECISION`` (``n + 1`` gradients in ``nfev`` and ``ngev``;
  benchmarks/RESULTS.md, session 41).

A genuine failure (``f`` unbounded below, no descent far from a minimum)
does not meet the precision test and keeps its failure status.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from .. import _tree
from .status import Status
from .stepsize import shortest_move
from ..linesearch import wolfe as _wolfe
from .._types import Params

def at_precision(value: jax.Array, grad_norm: jax.Array, params: Params, factor: float = 1.0) -> jax.Array:
    """True when ``grad_norm * max(||x||, 1) <= factor * sqrt(eps) * max(|f|, 1)`` (see the module
    doc; ``factor`` > 1: the grid rule's wider test, :data:`GRID_FACTOR`).

    Written as a ratio so that neither side overflows for huge ``f`` or gradients.
    ``||x||`` is the plain square root of a sum of squares: where that overflows
    (``inf``) the test is False, the safe answer, and the step carries no second
    rescaling branch.
    """
    dtype = jnp.result_type(value)
    eps = jnp.finfo(dtype).eps
    xnorm = jnp.sqrt(_tree.sq_norm(params)).astype(dtype)
    scale = jnp.maximum(jnp.abs(value), 1.0) / jnp.maximum(xnorm, 1.0)
    finite = jnp.isfinite(value)
    root = jnp.sqrt(eps) if factor == 1.0 else factor * jnp.sqrt(eps)  # (the plain test's program as it was)
    return finite & (grad_norm <= root * scale)


# The grid rule's widening of the norm test: a float32 gradient carries an error of eps times the
# size of the loss's intermediate terms, not of f (extended Rosenbrock at its answer: |g| ~ 1e-4 of
# pure rounding from its 100 (x_{i+1} - x_i^2)^2 terms, 1 to 4 times the test's threshold there);
# 16 (four bits) covers that where the search has shown the gradient to be rounding (StepInfo.unseen),
# and stays far below a kink's |g| (thousands of times the threshold; benchmarks/RESULTS.md, session 32).
GRID_FACTOR = 16.0

# The model is confirmed when the gradient at its minimiser (the unit first trial) is at most half
# as large as here: ||g(1)||^2 <= CONFIRM_SHRINK ||g||^2.
CONFIRM_SHRINK = 0.25


def model_decrease(slope: Any, had_memory: Any, unit_sq_grad: Any, sq_grad: Any, xp: Any = jnp) -> Any:
    """The decrease ``|g.d|/2`` a quasi-Newton model predicted for a step along ``d`` from a point
    with squared gradient norm ``sq_grad`` and slope ``g.d``, where the model is confirmed: the
    direction had a curvature memory (``had_memory``) and the gradient at the search's unit first
    trial (``unit_sq_grad``, ``StepInfo``'s; NaN when there was none) is at most half as large;
    ``inf`` elsewhere. ``xp``: ``jnp`` (the compiled step) or ``np`` (the host tier)."""
    confirmed = had_memory & xp.isfinite(sq_grad) & (unit_sq_grad <= CONFIRM_SHRINK * sq_grad)
    return xp.where(confirmed, 0.5 * xp.abs(slope), xp.inf)


def line_decrease(slope: Any, unit_slope: Any, xp: Any = jnp) -> Any:
    """The decrease along ``d`` that the line's own secant model predicts where the search's unit
    first trial still descends: with :math:`\\phi(t) = f(x + t d)`, ``slope`` :math:`= \\phi'(0)`
    and ``unit_slope`` :math:`= \\phi'(1)` (``StepInfo.unit_slope``; NaN when there was no unit
    first trial), where :math:`\\phi'(0) < \\phi'(1) < 0` the curvature
    :math:`c = \\phi'(1) - \\phi'(0)` puts the line's minimiser beyond the unit step, at
    :math:`t^* = |\\phi'(0)| / c > 1`, and the decrease to it at :math:`\\phi'(0)^2 / 2c`
    (more than the quadratic model's :math:`|\\phi'(0)|/2`: the model was too cautious); ``inf``
    elsewhere (the unit step passed the minimiser, as across a kink, or no curvature)."""
    curv = unit_slope - slope
    beyond = (unit_slope < 0) & (curv > 0)  # (False for NaN)
    safe = xp.where(beyond, curv, 1.0)
    line = xp.where(beyond, xp.maximum(0.5 * xp.abs(slope), slope * slope / (2 * safe)), xp.inf)
    # the same slope at the unit trial, bit for bit: x + d rounded to x (a step below the resolution
    # of x), where the quadratic model's decrease is all there is to go by
    return xp.where((unit_slope == slope) & (slope < 0), 0.5 * xp.abs(slope), line)


def overshoot_decrease(slope: Any, unit_slope: Any, xp: Any = jnp) -> Any:
    """The quadratic model's decrease ``|slope|/2`` where the line's secant says nothing better: the
    search's unit first trial passed the line's minimiser (:math:`\\phi'(0) < 0 \\le \\phi'(1)`: the
    model's step was too long, the line's minimum is less), or there was no unit first trial
    (``unit_slope`` NaN: ``bfgs``'s first trial is scipy's interpolated one); ``inf`` where
    :math:`\\phi'(0) \\ge 0`. Across a kink the slope changes sign too, so this vouches only
    weakly (:data:`VOUCH_WEAK`)."""
    return xp.where((slope < 0) & ((unit_slope >= 0) | xp.isnan(unit_slope)), 0.5 * xp.abs(slope), xp.inf)


# SolverState.stall's flag for a quasi-Newton direction with a restart (stall.adjust_status): the
# failed search before vouched for the point not at all, weakly (overshoot_decrease) or strongly
# (line_decrease, model_decrease). Carried in the loss's dtype, so that it packs with the state's
# other floats (jaxgd.core.packing: as an int32 it made a ninth int and a kernel more a step).
VOUCH_NONE, VOUCH_WEAK, VOUCH_STRONG = 0, 1, 2

# A failed quasi-Newton search vouches for the point when its model predicts at most this much of |f|
# (scipy L-BFGS-B's default relative-reduction stop, factr = 1e7, in machine epsilons); the restart's
# search along -g must then fail too (stall.adjust_status).
VOUCH_FACTR = 1e7


def vouches(value: Any, line: Any, xp: Any = jnp) -> Any:
    """True when the decrease ``line`` (:func:`line_decrease`, or a confirmed model's) is at most
    ``VOUCH_FACTR * eps * |f|``; False for NaN or Inf."""
    dtype = xp.result_type(value)
    # the factor as a Python float (float16's 1e7 eps, 9,766, overflowed in its own type at trace time)
    return xp.isfinite(value) & (line <= VOUCH_FACTR * float(xp.finfo(dtype).eps) * xp.abs(value))


def within_noise(noise: Any, decrease: Any) -> Any:
    """True when ``f``'s own evaluation error, as a search measured it (``noise``,
    ``StepInfo.noise``: a change of ``f`` at a trial that moved ``x`` and that the trial's slopes
    cannot explain), is at least ``decrease``: no trial could show that decrease above the error.
    False without a measurement (``noise`` 0) or for a NaN/Inf ``decrease``."""
    return (noise > 0) & (noise >= decrease)


def located_within(value: Any, located: Any, noise: Any, xp: Any = jnp) -> Any:
    """True when a search along ``-g`` located its line's minimiser (``StepInfo.located``, the
    decrease to it) within ``f``'s rounding (:func:`model_at_precision`) or within the error of
    ``f``'s evaluation the same search measured (:func:`within_noise`): the confirmation of a weak
    vouch (:func:`adjust_status`)."""
    return model_at_precision(value, located, xp) | within_noise(noise, located)


def restart_test(value: Any, slope: Any, had_memory: Any, decrease: Any, unit_slope: Any, located: Any, noise: Any,
                 vouched: Any, xp: Any = jnp, interpolates: bool = False) -> tuple[Any, Any]:
    """The restart's rule (see the module doc) after a search that failed or stalled from ``f`` =
    ``value`` along a direction with slope ``g.d`` = ``slope``: ``(retry_failed, vouch)``.

    ``retry_failed``: this was the restart's search along ``-g`` (no memory, ``had_memory``
    False) after a quasi-Newton one that vouched (``vouched``, the flag of the step before)
    strongly, or weakly where this one located its line's minimiser within rounding or within
    the error it measured (:func:`located_within`). ``vouch``: with a memory, :data:`VOUCH_STRONG`
    where the confirmed model's ``decrease`` (:func:`model_decrease`) or the line's
    (:func:`line_decrease`) is within the ``factr`` test (:func:`vouches`) or the line's within
    the measured error ``noise`` (:func:`within_noise`); :data:`VOUCH_WEAK` where the overshoot's
    (:func:`overshoot_decrease`) is within the test, or the quadratic model's ``|g.d|/2`` within
    the error (the unit trial's slope is itself in it); else :data:`VOUCH_NONE`.

    In float32 (:func:`probes_newton`) under a search that ``interpolates`` its first trial
    (:func:`interpolates`: ``bfgs``'s), the failed retry after a weak vouch is ``retry_failed`` whether or
    not it located anything: every float32 verdict is probed (:func:`probe_verdict`, along ``-x^2 g``,
    then a Newton-CG direction), and those probes decide. Such a retry's first trial is scipy's
    interpolated one, rarely near the line's minimiser, which at a float32 answer lies at a step whose
    decrease is below ``f``'s rounding: the retry fails without locating it. (``bfgs`` ended
    ``LINESEARCH_FAILED`` at the float32 answers of sif2jax's ARGLINB, LUKSAN15-17LS and QING, where its
    failed search had no unit first trial, and of NIST's Rat42 and Rat43, GAUSS3 and BENNETT5, where its unit
    first trial overshot; ``lbfgs``, with a unit first trial, ended ``PRECISION``: benchmarks/RESULTS.md,
    sessions 43 and 49.)
    The one copy: the compiled step (:func:`adjust_status`, ``xp=jnp``) and the host tier
    (``jaxgd/host/loop.py``, ``xp=np``; pass ``had_memory`` as a NumPy bool).
    """
    no_memory, was_strong, was_weak = ~had_memory, vouched == VOUCH_STRONG, vouched == VOUCH_WEAK
    if not (interpolates and probes_newton(jnp.result_type(value))):  # (float32 under bfgs's start: the probes decide)
        was_weak = was_weak & located_within(value, located, noise, xp)
    retry_failed = no_memory & (was_strong | was_weak)
    line, over = line_decrease(slope, unit_slope, xp), overshoot_decrease(slope, unit_slope, xp)
    strong = vouches(value, xp.minimum(decrease, line), xp) | within_noise(noise, xp.minimum(line, over))
    weak = vouches(value, over, xp) | within_noise(noise, xp.where(slope < 0, 0.5 * xp.abs(slope), xp.inf))
    vouch = xp.where(strong, VOUCH_STRONG, xp.where(weak, VOUCH_WEAK, VOUCH_NONE))
    return retry_failed, xp.where(had_memory, vouch, VOUCH_NONE)


def interpolates(rule: Any) -> bool:
    """True for a search whose first trial is scipy's interpolated one, not the unit step
    (``MoreThuente(start="interpolate")``: ``bfgs``'s and ``cg``'s default; :func:`restart_test`)."""
    return getattr(rule, "start", None) == "interpolate"


def model_at_precision(value: Any, model: Any, xp: Any = jnp) -> Any:
    """True when a quasi-Newton model's predicted decrease ``model`` (:func:`model_decrease`) is
    at most ``eps ** 0.75 * |f|`` (see the module doc); False for ``model`` NaN or Inf."""
    dtype = xp.result_type(value)
    return xp.isfinite(value) & (model <= xp.finfo(dtype).eps ** 0.75 * xp.abs(value))


# Steps without a new lowest loss or stationarity measure before a run at a
# point stationary to precision stops (the window rule above).
WINDOW = 100


class Window(NamedTuple):
    """Progress of a run whose step-size rule does not track stalls itself."""

    best_value: jax.Array  # lowest loss so far
    best_grad_norm: jax.Array  # lowest stationarity measure so far
    since: jax.Array  # steps since either last fell (int32)


def tracks_window(rule: Any, dtype: Any) -> bool:
    """True when the solver keeps a :class:`Window` for ``rule`` in ``dtype``: the rule has no
    ``stalled`` of its own, and ``dtype`` is narrower than float64.

    In float64 the rounding floor of a gradient (about ``eps ||A|| ||r||`` for least squares)
    lies some ten orders of magnitude below the default ``gtol``, and the window is not traced:
    it cost XLA:CPU about 0.25 s more compile per program (gd 10-D: 0.32 -> 0.57 s) and split the
    step into more kernels (Adam 2-D with history: 0.12 -> 6.8 us a step, before the driver
    wrote history from an outer loop), measured 2026-11-30 (benchmarks/RESULTS.md, session 5).
    """
    return not hasattr(rule, "stalled") and jnp.finfo(dtype).bits < 64


def searches(rule: Any) -> bool:
    """True for a line search that tracks no stalls itself (``Backtracking``, ``StrongWolfe``,
    ``Exact``: a class attribute ``searches = True``): every step it takes lowers ``f`` or ties it,
    so a full :class:`Window` is a stall (:func:`adjust_status`)."""
    return bool(getattr(rule, "searches", False)) and not hasattr(rule, "stalled")


def gave_up(rule: Any, rule_state: Any) -> Any:
    """Whether a full :class:`Window` under ``rule`` is a stall: always for a line search
    (:func:`searches`), where the rule says it has done all it does against a lack of progress
    (``rule.exhausted(state)``: ``ReduceOnPlateau``), never (``False``, nothing traced) otherwise."""
    if searches(rule):
        return True
    return jnp.asarray(rule.exhausted(rule_state)) if hasattr(rule, "exhausted") else False


def window_init(value: jax.Array, grad_norm: jax.Array) -> Window:
    return Window(value, grad_norm, jnp.asarray(0, jnp.int32))


def window_update(window: Window, value: jax.Array, grad_norm: jax.Array, xp: Any = jnp) -> Window:
    """The window after a step to a point with loss ``value`` and measure ``grad_norm`` (``xp``:
    ``jax.numpy``, or the host tier's NumPy scalar operations)."""
    lower_f, lower_g = value < window.best_value, grad_norm < window.best_grad_norm
    return Window(
        xp.where(lower_f, value, window.best_value),
        xp.where(lower_g, grad_norm, window.best_grad_norm),
        int32(xp.where(lower_f | lower_g, 0, window.since + 1), xp),
    )


def int32(v: Any, xp: Any = jnp) -> Any:
    """``v`` as an int32 (a JAX array cast, or a NumPy scalar on the host)."""
    return v.astype(jnp.int32) if xp is jnp else np.int32(v)


# A window rule's probe (:func:`probe_descent`): at most this many steps along -g, each a quarter
# of the one before (4^19 ~ 3e11 from the first, max(|f|, 1) / ||g||^2, down to where it moves x by ulps).
PROBES = 20
# ... and a fall counts only at a step over this many times stepsize.shortest_move (one that moves some
# entry of x by more than PROBE_ULPS eps |x_i|): a search that stopped an ulp or two from a least-squares
# answer (f ~ 1e-6, which the next grid point halves) is at the dtype's precision.
PROBE_ULPS = 4.0


def probes(rule: Any, dtype: Any, proximal: bool, failed: Any = True) -> bool:
    """True where the solver checks a failed step or a full window with :func:`probe_descent`: a
    window rule whose step can fail (``failed``, the step's ``StepInfo.failed``, is traced: Polyak,
    Barzilai-Borwein, ReduceOnPlateau, and in float16 and bfloat16 the searches Backtracking,
    StrongWolfe and Exact), no proximal term (the probe runs along ``-g``).

    A schedule's step never fails: it takes :func:`adjust_status`'s branch-free test, where a probe's
    while loop cost a bfloat16 schedule 8x its step time (2-D and 100-D); left open there: a float32
    step of 1e-12 on a quadratic centred at 1e4 shows no fall of ``f`` for 100 steps and ends
    ``PRECISION`` at ``x0``, a 16-bit constant step on a wrong gradient 0.8 from the minimiser. The
    float32 searches keep their programs: on 105 float32 least-squares runs the probe changed no
    search's status, and it added 0.2-0.4 s to the compile of ``gd`` with ``Backtracking`` or
    ``StrongWolfe`` (a second copy of the loss).

    In 16 bits neither the plain norm test nor the grid rule's evidence tells a stationary point:
    ``sqrt(eps)`` is 0.03 in float16 and 0.09 in bfloat16, so the plain test passes the start of a
    quadratic whose minimiser lies more than ``2 / sqrt(eps)`` away (a bfloat16 ``Polyak()`` run that sat
    near ``x0`` was a ``PRECISION`` success 30 units from the answer). In float32 ``sqrt(eps)`` = 3.5e-4
    passes the start of a quadratic whose minimiser is over 6,000 away (``Polyak()`` and
    ``ReduceOnPlateau`` at ``x0``, minimiser at 1e4: ``PRECISION``)."""
    if not tracks_window(rule, dtype) or proximal or _never(failed):
        return False
    return jnp.finfo(dtype).bits <= 16 or not searches(rule)


def probes_stop(rule: Any, dtype: Any, proximal: bool) -> bool:
    """True where a failed search or stall of a rule with its own stall count (``MoreThuente``: ``gd``,
    ``cg``) without a quasi-Newton model is ``PRECISION`` by the norm test only where
    :func:`probe_descent` along ``-g`` finds no fall of ``f`` either: 16 bits (:data:`NORM_VETO_BITS`),
    no proximal term. (float16 ``cg`` on least squares scaled by 1e-2 stopped ``PRECISION`` at ``f`` =
    3.5e-4, 2 units from the answer, where ``f`` falls to 0 along the segment to it.)"""
    return hasattr(rule, "stalled") and jnp.finfo(dtype).bits <= NORM_VETO_BITS and not proximal


def scaled_direction(params: Params, grad: Params) -> Params:
    """``x_i^2 g_i`` per entry (``-`` of it is the probe's direction where ``scaled``, :func:`probe_descent`):
    steepest descent in the variables ``log |x_i|``, which moves every parameter by the same relative
    amount to first order; half-precision leaves in float32."""
    return _tree.tmap(lambda g, x: g * x * x, _tree.at_least_32(grad), _tree.at_least_32(params))


def probe_start(value: Any, slope: Any, xp: Any = jnp) -> Any:
    """The probe's first step, ``max(|f|, 1) / |g^T d|`` (the step whose predicted fall is the whole
    loss; ``slope`` :math:`= g^\\top d > 0` for the direction ``-d``), 1 where the slope is not positive."""
    return xp.maximum(xp.abs(value), 1.0) / xp.where(slope > 0, slope, 1.0)


def probe_falls(f: Any, f0: Any, t: Any, slope: Any, tie: Any, least: Any, xp: Any = jnp) -> Any:
    """A probe's trial at step ``t`` shows a fall: finite, below ``f0`` by more than half its
    prediction ``t g^T d`` and more than ``tie`` (the searches' tie tolerance), at a step longer than
    ``least`` (:data:`PROBE_ULPS` times :func:`shortest_move`). The test of both tiers."""
    return xp.isfinite(f) & (f < f0 - xp.maximum(0.5 * t * slope, tie)) & probe_counts(t, least)


def probe_counts(t: Any, least: Any) -> Any:
    """A probe's trial at step ``t`` can count (:func:`probe_falls`): longer than ``least``. Where one
    cannot, no later one can (each a quarter of the one before): the probes stop there, on both tiers."""
    return t > least


# A quasi-Newton stop that the norm test alone calls PRECISION is probed too at this width and narrower:
# sqrt(eps) (0.03 in float16) and the norm test's floor max(|f|, 1) passed float16 bfgs on least squares
# scaled by 1e-2 at f = 0.011, 13 units from the answer, where f falls to 0 along the segment to it.
NORM_VETO_BITS = 16


def probes_stall(direction: Any, rule: Any, dtype: Any, proximal: bool) -> bool:
    """True where a stall (the rule's own count: :class:`jaxgd.linesearch.MoreThuente`'s steps without a
    fall beyond rounding) of a direction with a restart but no quasi-Newton model (``cg``) is, in float32
    and float64 and without a proximal term, a verdict of ``PRECISION`` that :func:`probe_verdict` decides
    (:func:`adjust_status`'s ``stall_verdict``): no fall along ``-x^2 g`` nor, in float32, along a Newton-CG
    direction (in float64 :func:`retry_verdict` decides it: the line along ``-g``, then ``-x^2 g``). Float32
    ``cg`` stalled at the float32 answers of NIST's exponential and
    Misra-type fits (sif2jax's CHWIRUT1LS, MGH17SLS, OSBORNEB, LUKSAN12/13/15LS, PALMER5D; a·exp(-bt)+c to
    100 points: 3 runs in 12), where ``lbfgs`` and ``bfgs`` end ``PRECISION``; float64 ``cg`` at the
    answers of GAUSS2LS, RAT43LS (NIST's Gauss2 and Rat43) and LUKSAN12/13LS, where the probes, in float64,
    find no fall either; at VESUVIOULS, 1e-5 of ``|f|`` above its minimum, they find one and the run stays
    ``STALLED`` (benchmarks/RESULTS.md, sessions 49 and 50). No model vouches for a ``cg`` point, so its
    failed searches stay failures (as verdicts the probes let five wrong float32 points through, and in
    float64 a kink's minimiser, where ``LINESEARCH_FAILED`` says the loss may not be smooth)."""
    return (direction.reset is not None and not direction.quasi_newton and hasattr(rule, "stalled") and not proximal
            and jnp.finfo(dtype).bits >= 32)


def probes_scaled(dtype: Any) -> bool:
    """True where the solver checks a quasi-Newton verdict of ``PRECISION`` (:func:`model_at_precision`,
    :func:`restart_test`'s failed retry) with :func:`probe_descent` along ``-x^2 g`` (``scaled``): float32
    and narrower (float64 programs are as they were).

    The verdicts ask whether two directions showed a fall of ``f``, not whether the point is stationary.
    In float32 both can show none far from a minimiser of a badly scaled problem: from NIST Misra1a's
    start, ``b = (500, 1e-4)``, L-BFGS's first pairs learn the small parameter's curvature only, its
    direction's step in the large one (7e-14) rounds away, and the step along ``-g`` that the large one
    needs overshoots the small one's minimiser: float32 ``lbfgs`` ended ``PRECISION`` at ``f`` = 19.5 of
    0.125. A step along ``-x^2 g`` moves every parameter by the same relative amount to first order: there
    ``f`` falls (Misra1a: the probe's seventh trial moves ``b1`` by 0.07, ``b2`` not at all, and lowers
    ``f`` by 0.004, 27 times the searches' tie tolerance); at a minimiser to precision it cannot.
    (A bound on :math:`\\sum_i |g_i x_i|` instead, the same test without evaluations, read up to 96,000
    times ``sqrt(eps) |f|`` at answers where terms cancel, sif2jax's ARGLINB: benchmarks/RESULTS.md,
    session 38.)"""
    return jnp.finfo(dtype).bits < 64


def probe_descent(value_fn: Any, params: Params, value: jax.Array, grad: Params, due: jax.Array,
                  scaled: bool = False, rise: Any = None) -> tuple[jax.Array, jax.Array]:
    """Whether ``f`` still falls along ``-g`` from ``params`` (a window rule's evidence against
    ``PRECISION``, :func:`probes`), or along ``-x^2 g`` where ``scaled`` (:func:`scaled_direction`: a
    float32 quasi-Newton verdict's, :func:`adjust_status`), and the evaluations spent; nothing runs
    unless ``due``.

    With ``d`` the direction's ``g`` or ``x^2 g``, tries ``t_k = t_0 4^{-k}`` (``k <`` :data:`PROBES`;
    ``t_0 = max(|f|, 1) / g^T d``, the step whose predicted fall is the whole loss) and stops at the
    first trial with Armijo's decrease for ``c_1 = 1/2``, beyond ``f``'s rounding:
    ``f(x - t d) < f - max(t g^T d / 2, tol)`` (``tol`` the searches' tie tolerance, 64 eps ``|f|``, 4
    in 16 bits: one trial in twenty at an answer must not read ``f``'s evaluation error as a fall), at
    a step that moves ``x`` by more than a few ulps (:data:`PROBE_ULPS`; :func:`probe_falls`).
    At a point stationary to the grid no trial passes (a step too short to move ``x`` leaves ``f``
    as it is; a longer one rises), and the trials stop at the first step no longer than that least
    move, which no later one could pass either (:func:`probe_counts`; a 16-bit quasi-Newton run at its
    answer: about 11 evaluations instead of 20); a genuine slope passes at ``t`` near ``1 / L``, where a
    quadratic falls by at least half its prediction. A while loop: under ``jax.vmap`` it runs only while a lane
    is due. Scalars in float32 (float64 for a float64 loss: :func:`probe_dtype`); each trial point computed
    in that dtype and rounded to ``params``'s.

    Where ``rise`` is given (a float64 ``cg`` verdict's probe, :func:`retry_verdict`: the error of ``f``'s
    evaluation a search measured) the same steps are tried going up, from the shortest that counts
    (:func:`probe_bottom`) to ``t_0``, and the trials stop at the first that rises above ``f`` by more than
    ``max(tol, rise)`` (:func:`probe_rises`). Along a quadratic ``f - t s + q t^2 / 2`` the test passes for
    ``t`` below about ``s / q`` and every trial past ``2 s / q`` rises: both orders find a fall at the same
    steps, and at a point stationary to ``f``'s rounding, where the shortest step already rises, the upward
    trials spend one evaluation where the downward ones spend :data:`PROBES` (a float64 ``cg`` verdict cost
    19-22 evaluations, scipy's CG none: benchmarks/RESULTS.md, sessions 50 and 51).
    """
    f32 = probe_dtype(jnp.result_type(value))
    f0 = jnp.asarray(value).astype(f32)
    d = scaled_direction(params, grad) if scaled else grad
    ss = _tree.vdot(grad, d).astype(f32)
    tie = _wolfe.tie_tolerance(None, value).astype(f32)  # the searches' tie tolerance (64 eps |f|, 4 in 16 bits)
    t0 = probe_start(f0, ss)
    least = PROBE_ULPS * shortest_move(params, d, jnp.result_type(value)).astype(f32)
    if rise is not None:
        return _probe_upward(value_fn, params, f0, d, ss, tie, t0, least, jnp.asarray(rise).astype(f32), due)

    def cond(c: tuple) -> jax.Array:
        k, t, found = c
        return due & (ss > 0) & jnp.isfinite(ss) & ~found & (k < PROBES) & probe_counts(t, least)

    def body(c: tuple) -> tuple:
        k, t, _ = c
        f = _probe_value(value_fn, params, d, t, f32)
        found = probe_falls(f, f0, t, ss, tie, least)
        return k + 1, t * 0.25, found

    k, _, found = lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), t0, jnp.asarray(False)))
    return found, k


def _probe_upward(value_fn: Any, params: Params, f0: Any, d: Params, ss: Any, tie: Any, top: Any, least: Any,
                  rise: Any, due: jax.Array) -> tuple[jax.Array, jax.Array]:
    """:func:`probe_descent`'s trials going up (``rise`` given): the downward trials' steps in reverse, from
    :func:`probe_bottom` to ``top`` (``t_0``) by factors of 4, stopping at a fall (:func:`probe_falls`) or a
    rise (:func:`probe_rises`)."""
    ceiling = jnp.maximum(tie, rise)

    def cond(c: tuple) -> jax.Array:
        k, t, found, rose = c
        return due & (ss > 0) & jnp.isfinite(ss) & ~found & ~rose & (t <= top)

    def body(c: tuple) -> tuple:
        k, t, _, _ = c
        f = _probe_value(value_fn, params, d, t, f0.dtype)
        return k + 1, t * 4.0, probe_falls(f, f0, t, ss, tie, least), probe_rises(f, f0, ceiling)

    k, _, found, _ = lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), probe_bottom(top, least),
                                                 jnp.asarray(False), jnp.asarray(False)))
    return found, k


def _probe_value(value_fn: Any, params: Params, d: Params, t: Any, dtype: Any) -> jax.Array:
    """``f(x - t d)`` in ``dtype``, the trial point computed in at least float32 and rounded to ``params``'s
    dtype: one trial of :func:`probe_descent`, either way."""
    trial = _tree.rounded(_tree.cast_like(_tree.add_scaled(_tree.at_least_32(params), -t, d), params))
    return jnp.asarray(value_fn(trial)).astype(dtype)


def probe_bottom(top: Any, least: Any, xp: Any = jnp) -> Any:
    """An upward probe's first step: the shortest of the downward trials' steps ``t_0 4^{-k}``, ``k <``
    :data:`PROBES` (``top`` is ``t_0``), that can count (:func:`probe_counts`), or ``t_0``. Each is ``t_0``
    times a power of 4: the same steps bit for bit, on both tiers (``xp``: ``jax.numpy``, or NumPy scalars)."""
    more = lambda t: ~probe_counts(t, least) & (t < top)  # noqa: E731
    t = top * 0.25 ** (PROBES - 1)
    if xp is jnp:
        return lax.while_loop(more, lambda t: t * 4.0, t)
    while more(t):
        t = t * 4.0
    return t


def probe_rises(f: Any, f0: Any, ceiling: Any) -> Any:
    """An upward probe's trial rises: ``f`` is not below ``f0 + ceiling`` (``max(tie, rise)``, NaN included).
    Along a line whose curvature is positive every longer trial rises further, so the trials stop there. Both
    tiers."""
    return ~(f < f0 + ceiling)


# The Newton probe (:func:`newton_direction`): at most this many conjugate-gradient steps on H d = g ...
NEWTON_STEPS = 20
# ... and a fall along -d counts only above this many sqrt(eps) max(|f|, 1) (:func:`newton_fall`).
NEWTON_FALL = 0.5


def probes_retry(direction: Any, rule: Any, dtype: Any, proximal: bool) -> bool:
    """True where a failed search along ``-g`` (the restart's retry, or a step whose direction had no memory)
    of a direction with a restart but no quasi-Newton model (``cg``), under a rule with its own stall count
    (:class:`jaxgd.linesearch.MoreThuente`), is in float64 and without a proximal term a verdict of
    ``PRECISION`` (:func:`adjust_status`'s ``retry``) that :func:`retry_verdict` decides: the line along ``-g``
    shows no kink and no fall above ``f``'s rounding (:func:`line_veto`), and no fall along ``-x^2 g``
    (:func:`probe_verdict`, in float64); a float64 ``cg`` stall (:func:`probes_stall`) is decided so too.
    Float64 ``cg`` ended ``LINESEARCH_FAILED`` at the answers of sif2jax's ARGLINB, ARGLINC, CHWIRUT2LS
    (NIST's Chwirut2), DJTL and MISRA1DLS (NIST's Misra1d), where a gradient of rounding predicts a fall that
    ``f``'s rounding hides. At a kink's minimiser (``|x - 3| + 0.1 ||x||^2`` at 3) the probes find no fall
    either, and at DEVGLA2's point f = 0.027 (its minimum is 1e-12) the line along ``-g`` falls by 1e-15, 2.6
    times the tie tolerance, where the probes saw nothing: :func:`line_veto` keeps both failures
    (benchmarks/RESULTS.md, session 50). Float32 is left as it was: there such verdicts let five points far
    from their minima through (session 49)."""
    return probes_stall(direction, rule, dtype, proximal) and jnp.finfo(dtype).bits == 64


# The line's test (:func:`line_veto`): the slope along -g after moves of x by these fractions of
# max(||x||, 1) ...
LINE_MOVES = (1e-12, 1e-10)
# ... has risen by more than this fraction of |g.g| after the first, and by less than ten times that rise after
# the second (100 times as long): a jump (a kink), where a smooth slope rises in proportion to the move.
KINK_RISE = 0.5


def kink_rises(s0: Any, s1: Any, s2: Any) -> Any:
    """:func:`line_veto`'s kink test on the slopes along ``-g`` at ``x`` (``s0 = -g.g``) and after its two
    moves (``s1``, ``s2``): the first rise ``s1 - s0`` above :data:`KINK_RISE` ``|s0|`` and the second below
    ten times the first (NaN or Inf slopes: no kink). Both tiers."""
    j1, j2 = s1 - s0, s2 - s0
    return (j1 > KINK_RISE * abs(s0)) & (j2 < 10 * j1)


def line_falls(value: Any, s0: Any, s1: Any, h: Any, noise: Any, xp: Any = jnp) -> Any:
    """:func:`line_veto`'s fall test: the line along ``-g`` with the curvature the slope's rise measured,
    ``c = (s1 - s0) / h``, falls to its minimiser by ``s0^2 / (2 c)`` (``|g|^4 / (2 g^T H g)``), more than the
    searches' tie tolerance (64 eps ``|f|``) and the error of ``f``'s evaluation a search measured (``noise``);
    a curvature not positive (or NaN) falls without bound. Both tiers."""
    curv = (s1 - s0) / h
    tie = _wolfe.tie_tolerance(None, value, xp)
    return ~(curv > 0) | (0.5 * s0 * s0 / xp.where(curv > 0, curv, 1.0) > xp.maximum(tie, noise))


def line_rules_out(value: Any, s0: Any, s1: Any, s2: Any, steps: Any, noise: Any, xp: Any = jnp) -> Any:
    """:func:`line_veto`'s verdict from the slopes along ``-g`` (``s0`` at ``x``, ``s1`` and ``s2`` after the
    moves of ``steps``, :func:`line_step`'s): a kink (:func:`kink_rises`) or a fall (:func:`line_falls`, over the
    first move, ``value`` taken in the slopes' dtype). Both tiers."""
    return kink_rises(s0, s1, s2) | line_falls(xp.asarray(value).astype(s0.dtype), s0, s1, steps[0], noise, xp)


def line_step(params_norm: Any, grad_norm: Any, move: Any, xp: Any = jnp) -> Any:
    """The step ``h`` along ``-g`` that moves ``x`` by ``move max(||x||, 1)`` (:func:`line_veto`)."""
    return move * xp.maximum(params_norm, 1.0) / grad_norm


def line_veto(value_and_grad_fn: Any, params: Params, value: jax.Array, grad: Params, noise: Any,
              due: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Whether the line along ``-g`` from ``params`` rules a verdict of ``PRECISION`` out, and the gradient
    evaluations spent (two where ``due``, else none; a while loop, which under ``jax.vmap`` runs only while a
    lane is due).

    With ``s(h) = -g(x - h g)^T g`` after the moves :data:`LINE_MOVES` (``h`` by :func:`line_step`):

    - **a kink** (:func:`kink_rises`): a smooth ``f`` has ``s(h) - s(0) = h g^T H g`` to first order, a rise in
      proportion to ``h`` however large the curvature (a gradient of rounding rises 100 times over a move 100
      times as long); across a kink the slope jumps by a fixed amount at once (``|x - 3| + 0.1 ||x||^2`` at 3:
      from ``-|g|^2`` to ``+|g|^2 / 4`` over any move);
    - **a fall** (:func:`line_falls`): the quadratic along ``-g`` with the curvature of the first move falls to
      its minimiser by more than ``f``'s rounding or measured error (``noise``, ``StepInfo.noise``): a search
      could show it.

    Scalars in ``params``'s dtype (:func:`probes_retry`: float64). Reference: Nocedal & Wright, "Numerical
    Optimization", 2nd ed., section 8.1 (derivatives by differences of gradients)."""
    s0 = -_tree.vdot(grad, grad)
    x_norm, g_norm = jnp.sqrt(_tree.vdot(params, params)), jnp.sqrt(-s0)  # (plain norms: an overflow moves nothing)
    steps = line_step(x_norm, g_norm, jnp.asarray(LINE_MOVES, s0.dtype))

    def body(c: tuple) -> tuple:
        k, slopes = c
        _, g = value_and_grad_fn(_tree.rounded(_tree.add_scaled(params, -steps[k], grad)))
        return k + 1, slopes.at[k].set(-_tree.vdot(_tree.cast_like(g, grad), grad))

    k, slopes = lax.while_loop(lambda c: due & (c[0] < len(LINE_MOVES)), body,
                               (jnp.asarray(0, jnp.int32), jnp.zeros(len(LINE_MOVES), s0.dtype)))
    s1, s2 = slopes[0], slopes[1]
    return due & line_rules_out(value, s0, s1, s2, steps, noise), k


def retry_verdict(value_fn: Any, value_and_grad_fn: Any, params: Params, value: jax.Array, grad: Params,
                  noise: Any, due: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A float64 ``cg`` verdict's probes (:func:`probes_retry`): :func:`line_veto`, then where the line allows
    it :func:`probe_verdict` (``value_fn``: ``params -> f``, ``value_and_grad_fn``: ``params -> (f, g)``);
    ``(found, (value evaluations, gradient evaluations))``, ``found`` True where either vetoes the verdict
    (the line's two gradients count as values and gradients)."""
    veto, k = line_veto(value_and_grad_fn, params, value, grad, noise, due)
    found, spent = probe_verdict(value_fn, value_and_grad_fn, params, value, grad, due & ~veto, rise=noise)
    return veto | found, spent + k


def probes_newton(dtype: Any) -> bool:
    """True where a quasi-Newton verdict of ``PRECISION`` that the scaled probe let stand is also
    probed along a Newton direction (:func:`newton_direction`): float32. (In 16 bits a gradient
    difference rounds at 1e-3 of ``g``; float64 programs are as they were.)

    On sif2jax's PALMER2C/3C/8C, HEART8LS and COATING float32 ``lbfgs`` ended ``PRECISION`` 1.1 to
    7,000 times the best value, where ``-g``, ``-x^2 g`` and ``-g / diag(H)`` show no fall of the
    float32 loss at all: cond(H) is 5e7 to 9e11. Twenty CG steps with float32 gradient differences
    find falls of 1.9e-4 to 6.8e-4 of ``max(|f|, 1)`` at four of them; at 24 runs that ended at the
    best value, none at 20 and at most 1.2e-5 at the other four (benchmarks/RESULTS.md, sessions 39
    and 40)."""
    return jnp.finfo(dtype).bits == 32


def probe_dtype(dtype: Any) -> Any:
    """The arithmetic of :func:`probe_descent`'s trials (their scalars and points) for a loss in ``dtype``:
    float32, or float64 for a float64 loss, whose probes must resolve what its searches resolve (the Newton
    probe's loop, float32 only, keeps float32)."""
    return jnp.promote_types(jnp.float32, dtype)


def newton_fall(value: Any, xp: Any = jnp) -> Any:
    """The least fall of ``f`` that vetoes a verdict along a Newton direction:
    :data:`NEWTON_FALL` ``sqrt(eps) max(|f|, 1)`` (``eps`` of ``value``'s dtype), the norm test's scale."""
    eps = float(np.finfo(np.dtype(xp.result_type(value))).eps)
    return NEWTON_FALL * np.sqrt(eps) * xp.maximum(xp.abs(value), 1.0)


def newton_predicts(slope: Any, fall: Any) -> Any:
    """The Newton model's fall ``g^T d / 2`` (``slope`` :math:`= g^\\top d`) reaches ``fall``
    (:func:`newton_fall`): only then are its trials taken (on sif2jax's float32 problems trials taken
    regardless changed no status and cost 20 evaluations at each answer: float32 ``lbfgs`` 400 of its
    23,277, ``bfgs`` 240 of 32,288; benchmarks/RESULTS.md, session 40)."""
    return 0.5 * slope >= fall


def hessian_step(params: Any, v: Any, xp: Any = jnp) -> Any:
    """The gradient difference's step ``h = sqrt(eps) (1 + ||x||) / ||v||`` for ``H v ~ (g(x + h v) - g(x)) / h``
    (``x``, ``v`` flat float32 vectors, NumPy or JAX; ``eps`` float32's). Plain norms: a ``v`` past 1e19
    overflows to ``h = 0``, a curvature that is not finite, and CG stops (the overflow-safe norm's
    conditional doubled the compile of :func:`probe_verdict`'s loop)."""
    return np.float32(np.sqrt(np.finfo(np.float32).eps)) * (1 + xp.sqrt(xp.dot(params, params))) / xp.sqrt(xp.dot(v, v))


class _Probes(NamedTuple):
    """:func:`probe_verdict`'s loop carry: one evaluation of ``f`` and ``g`` an iteration, in phases;
    vectors flat, in float32."""

    phase: jax.Array  # SCALED (trials along -x^2 g), NEWTON_CG (CG steps), NEWTON (trials along -d), DONE
    k: jax.Array  # evaluations in this phase
    t: jax.Array  # the next trial's step
    slope: jax.Array  # g.d of the direction the trials follow
    found: jax.Array
    d: jax.Array  # the trials' direction; in NEWTON_CG the Newton direction being built
    r: jax.Array  # CG's residual g - H d
    p: jax.Array  # CG's search direction
    rs: jax.Array  # r.r
    values: jax.Array  # evaluations of f
    grads: jax.Array  # ... of which g was used (the CG steps)


SCALED, NEWTON_CG, NEWTON, DONE = 0, 1, 2, 3


def _flat32(tree: Any) -> tuple[jax.Array, Any]:
    """``tree`` as one flat float32 vector and the function that rebuilds a float32 tree from one (the
    Newton probe's and the 16-bit check's loops)."""
    return ravel_pytree(_tree.tmap(lambda a: a.astype(jnp.float32), tree))


def _probe_loop(value_and_grad_fn: Any, params: Params, value: jax.Array, grad: Params, due: jax.Array,
                first: int, last: int) -> _Probes:
    """:func:`probe_verdict`'s phases ``first`` to ``last`` (:data:`SCALED` to :data:`NEWTON`) as one
    while loop over flat float32 vectors: one copy of ``f`` and ``g`` in the program (XLA:CPU compiles
    each loop's body on its own: three loops over pytrees compiled in about twice the time,
    benchmarks/RESULTS.md, session 40)."""
    f32 = jnp.float32
    x, unravel = _flat32(params)
    g = _flat32(grad)[0]
    f0 = jnp.asarray(value).astype(f32)
    tie = _wolfe.tie_tolerance(None, value).astype(f32)  # the searches' tie tolerance (64 eps |f|)
    fall = newton_fall(value).astype(f32)
    steps = min(NEWTON_STEPS, x.size)
    rs0 = jnp.dot(g, g)
    tol = jnp.finfo(f32).eps ** 2 * rs0  # CG stops at a residual below eps ||g||
    cg_phase = jnp.where(rs0 > tol, NEWTON_CG, DONE) if last >= NEWTON_CG else jnp.asarray(DONE)
    zero, f0_32 = jnp.zeros_like(g), jnp.asarray(0, f32)
    if first == SCALED:
        ds = _flat32(scaled_direction(params, grad))[0]
        slope = jnp.dot(g, ds)
        go = (slope > 0) & jnp.isfinite(slope)
        least = PROBE_ULPS * shortest_move(x, ds, jnp.result_type(value)).astype(f32)  # (the Newton trials': none)
        t = probe_start(f0, slope)
        phase = jnp.where(go & probe_counts(t, least), SCALED, cg_phase)
    else:
        ds, phase, t, slope, least = zero, cg_phase, f0_32, f0_32, f0_32
    i0 = jnp.asarray(0, jnp.int32)
    start = _Probes(jnp.where(due, phase, DONE).astype(jnp.int32), i0, t, slope, jnp.asarray(False),
                    ds, g, g, rs0, i0, i0)

    def body(c: _Probes) -> _Probes:
        cg = c.phase == NEWTON_CG
        h = hessian_step(x, c.p)
        point = x + jnp.where(cg, h, -c.t) * jnp.where(cg, c.p, c.d)
        fv, gv = value_and_grad_fn(_tree.cast_like(unravel(point), params))
        k = c.k + 1
        # a trial (SCALED, NEWTON): a fall beyond half its prediction and the tie tolerance (along a
        # Newton direction, beyond newton_fall)
        along_d = c.phase == NEWTON
        shortest = jnp.where(along_d, 0.0, least)
        falls = probe_falls(jnp.asarray(fv).astype(f32), f0, c.t, c.slope,
                            jnp.where(along_d, jnp.maximum(tie, fall), tie), shortest)
        after = jnp.where(c.phase == SCALED, cg_phase, DONE)  # (after the last trial that can count)
        last_trial = (k >= PROBES) | ~probe_counts(c.t * 0.25, shortest)
        trial_phase = jnp.where(falls, DONE, jnp.where(last_trial, after, c.phase))
        # a CG step (NEWTON_CG) on H d = g, H p = (g(x + h p) - g) / h
        hp = (_flat32(gv)[0] - g) / h
        curv = jnp.dot(c.p, hp)
        bend = ~(curv > 0) | ~jnp.isfinite(curv)  # negative curvature (or none measured): stop
        a = c.rs / jnp.where(bend, 1.0, curv)
        r = c.r - a * hp
        rs = jnp.dot(r, r)
        d = jnp.where(bend, jnp.where(c.k == 0, g, c.d), c.d + a * c.p)  # (steepest descent: a first curvature <= 0)
        slope = jnp.dot(g, d)
        newton = (last >= NEWTON) & newton_predicts(slope, fall) & jnp.isfinite(slope)
        cg_next = jnp.where(bend | (k >= steps) | (rs <= tol), jnp.where(newton, NEWTON, DONE), NEWTON_CG)
        phase = jnp.where(cg, cg_next, trial_phase)
        into_cg = ~cg & (phase == NEWTON_CG)  # from SCALED: CG from d = 0
        into_newton = cg & (phase == NEWTON)
        step = cg & ~bend
        return _Probes(
            phase=phase.astype(jnp.int32),
            k=jnp.where(phase == c.phase, k, 0),
            t=jnp.where(into_newton, probe_start(f0, slope), c.t * 0.25),
            slope=jnp.where(into_newton, slope, c.slope),
            found=c.found | (~cg & falls),
            d=jnp.where(cg, d, jnp.where(into_cg, zero, c.d)),
            r=jnp.where(step, r, jnp.where(into_cg, g, c.r)),
            p=jnp.where(step, r + (rs / c.rs) * c.p, jnp.where(into_cg, g, c.p)),
            rs=jnp.where(step, rs, jnp.where(into_cg, rs0, c.rs)),
            values=c.values + 1,
            grads=c.grads + cg.astype(jnp.int32),
        )

    return lax.while_loop(lambda c: c.phase != DONE, body, start)


def newton_direction(value_and_grad_fn: Any, params: Params, grad: Params, due: jax.Array) -> tuple[Params, jax.Array]:
    """A truncated Newton direction ``d ~ H^{-1} g`` at ``params`` and the gradient evaluations spent
    (nothing runs unless ``due``; then ``d`` is 0).

    Conjugate gradients on ``H d = g`` from ``d = 0`` (Nocedal & Wright, "Numerical Optimization",
    2nd ed., Algorithm 7.1, truncated Newton-CG), at most :data:`NEWTON_STEPS` steps and ``n``,
    in float32, with ``H v = (g(x + h v) - g(x)) / h`` (:func:`hessian_step`; ``value_and_grad_fn``
    the loss's ``(f, g)``). It stops at a residual below ``eps ||g||``, or at a curvature ``v^T H v``
    that is not positive, where on the first step it takes ``d = g`` (steepest descent: Steihaug's
    choice). :func:`probe_verdict`'s second phase."""
    value = jnp.zeros((), jnp.float32)
    c = _probe_loop(value_and_grad_fn, params, value, grad, due, NEWTON_CG, NEWTON_CG)
    return ravel_pytree(_tree.at_least_32(grad))[1](c.d), c.grads


def values_only(probed: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """:func:`probe_descent`'s ``(found, evaluations)`` with the evaluations as the pair ``(values,
    gradients)`` that :func:`adjust_status`'s ``probe`` returns."""
    found, k = probed
    return found, jnp.stack([k, jnp.zeros_like(k)])


def probe_verdict(value_fn: Any, value_and_grad_fn: Any, params: Params, value: jax.Array, grad: Params,
                  due: jax.Array, rise: Any = None) -> tuple[jax.Array, jax.Array]:
    """A float32 (or narrower) quasi-Newton verdict's probes, or a ``cg`` stall's (:func:`adjust_status`):
    along ``-x^2 g`` (:func:`probe_descent`'s trials, ``scaled``, in :func:`probe_dtype`) and, in float32
    where that finds no fall (:func:`probes_newton`), along a Newton direction (:func:`newton_direction`)
    where its model predicts a fall above :func:`newton_fall` and a trial finds one (the trials' law again).
    ``value_fn``: ``params -> f`` (16 bits, float64), ``value_and_grad_fn``: ``params -> (f, g)`` (float32).
    Returns ``(found, (value evaluations, gradient evaluations))``; in float32 one while loop with one
    evaluation of ``(f, g)`` an iteration (the trials count as values, as the host tier's). (In float64, where
    only a ``cg`` verdict comes, :func:`retry_verdict`'s line test stands in for the Newton direction: the
    same verdicts on sif2jax's problems, at 0.1-0.3 s less compile; there ``rise`` sends the trials upward,
    :func:`probe_descent`.)"""
    if not probes_newton(jnp.result_type(value)):
        return values_only(probe_descent(value_fn, params, value, grad, due, scaled=True, rise=rise))
    c = _probe_loop(value_and_grad_fn, params, value, grad, due, SCALED, NEWTON)
    return c.found, jnp.stack([c.values, c.grads])


# A 16-bit stop's float32 Newton check (:func:`newton_certifies`): at most this many parameters (a
# gradient evaluation per parameter builds the Hessian) ...
CERTIFY_SIZE = 20
# ... its least eigenvalue above this many times the difference's measured error (the asymmetry of
# the difference Hessian) ...
CERTIFY_MARGIN = 4.0
# ... and the Newton step's predicted fall within this many epsilons of |f| (a 16-bit loss evaluates to
# within 0.8-1.2 eps |f| of its exact value: benchmarks/RESULTS.md, session 34), or the step within
# CERTIFY_ULPS of the 16-bit type's epsilons of every entry.
CERTIFY_FALL = 1.0
CERTIFY_ULPS = PROBE_ULPS


def certifies(rule: Any, dtype: Any, proximal: bool, failed: Any = True) -> bool:
    """True where a run's stop (a failed search, a stall) or full window that the norm test does not call
    ``PRECISION`` is checked with :func:`newton_certifies`: a loss in float16 or bfloat16, no proximal term,
    a rule whose step can fail (``failed`` traced) or that tracks its stalls. (A schedule's window takes
    :func:`adjust_status`'s branch-free test, where a conditional costs the step its one-kernel loop.)

    In 16 bits the norm test misreads a point at the answer: the gradient's rounding scales with the
    loss's intermediate terms, not with ``|f|`` (bfloat16 least squares at its exact answer: 11.5 times
    the bound), and a search, Barzilai-Borwein or Polyak's rule there ended ``LINESEARCH_FAILED``,
    ``STALLED`` or ``MAX_STEPS`` (benchmarks/RESULTS.md, sessions 34, 37 and 41). A plain widening of
    the test also passed Rosenbrock valley points, where a step of an ulp changes the gradient by more
    than its size; a float32 Newton step tells the two apart."""
    return jnp.finfo(dtype).bits <= 16 and not proximal and (hasattr(rule, "stalled") or not _never(failed))


def small_cholesky(a: jax.Array) -> jax.Array:
    """The lower Cholesky factor of a small symmetric matrix (column by column, Golub & Van Loan,
    "Matrix Computations", 4th ed., Algorithm 4.2.1), NaN where ``a`` is not positive definite. Written
    here, not ``jnp.linalg.cholesky``: XLA:CPU's LAPACK lowering costs a process's first program with it
    0.44 s of tracing (a 16-bit ``gd`` with ``Backtracking``: 0.39 -> 0.77 s, benchmarks/RESULTS.md,
    session 41)."""
    n = a.shape[0]
    rows = jnp.arange(n)

    def column(j: jax.Array, factor: jax.Array) -> jax.Array:  # (columns >= j of factor still zero)
        pivot = jnp.sqrt(a[j, j] - jnp.dot(factor[j], factor[j]))
        below = (a[:, j] - factor @ factor[j]) / pivot
        return factor.at[:, j].set(jnp.where(rows > j, below, jnp.where(rows == j, pivot, 0.0)))

    return lax.fori_loop(0, n, column, jnp.zeros_like(a))


def small_cho_solve(factor: jax.Array, b: jax.Array) -> jax.Array:
    """:math:`(L L^\\top)^{-1} b` for :func:`small_cholesky`'s factor ``L``: two substitutions."""
    n = b.shape[0]
    y = lax.fori_loop(0, n, lambda i, y: y.at[i].set((b[i] - factor[i] @ y) / factor[i, i]), jnp.zeros_like(b))

    def back(k: jax.Array, x: jax.Array) -> jax.Array:
        i = n - 1 - k
        return x.at[i].set((y[i] - factor[:, i] @ x) / factor[i, i])

    return lax.fori_loop(0, n, back, jnp.zeros_like(b))


def newton_certifies(value_and_grad32: Any, params: Params, value: jax.Array,
                     due: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Whether a 16-bit point ``params`` is a minimiser to its dtype's precision, by the loss taken in
    float32 (``value_and_grad32``: float32 parameters to ``(f, g)`` in float32), and the pair of value and
    gradient evaluations spent; nothing runs unless ``due``, nor above :data:`CERTIFY_SIZE` parameters.

    Builds the Hessian by float32 gradient differences, column ``j`` :math:`(g(x + h_j e_j) - g(x)) / h_j`
    with :math:`h_j = \\sqrt{\\epsilon} \\max(|x_j|, 1)` (``n + 1`` gradients), symmetrised; its asymmetry
    :math:`\\|H - H^\\top\\|_F` measures the differences' error. The point is certified where the least
    eigenvalue exceeds :data:`CERTIFY_MARGIN` times that error, :math:`\\mu` (a minimiser's quadratic model,
    resolved in float32: :math:`H - \\mu I` has a Cholesky factor) and the step
    :math:`d = (H - \\mu I)^{-1} g` (no shorter than Newton's) either predicts a fall :math:`g^\\top d / 2` within
    :data:`CERTIFY_FALL` eps ``|f|`` (the 16-bit loss's own rounding: it cannot show the fall) or moves no entry of
    ``x`` by more than :data:`CERTIFY_ULPS` of its 16-bit epsilons (no better point of the grid lies beyond
    rounding). Away from a minimiser the model predicts a visible fall, or ``H`` is indefinite or too
    ill-conditioned for float32 differences (a Rosenbrock valley point: eigenvalues 795 and -0.4), and
    nothing is certified. (Conjugate gradients on the same products, as :func:`newton_direction`, found
    steps 50 times too short there that looked converged.)

    Reference: Nocedal & Wright, "Numerical Optimization", 2nd ed., sections 3.3 (Newton's method) and
    8.1 (finite-difference Hessians)."""
    f32 = jnp.float32
    x, unravel = _flat32(params)
    n = x.size
    zero = jnp.zeros(2, jnp.int32)
    if n > CERTIFY_SIZE:
        return jnp.asarray(False), zero
    grad_at = lambda v: _flat32(value_and_grad32(unravel(v))[1])[0]  # noqa: E731
    h = np.float32(np.sqrt(np.finfo(np.float32).eps)) * jnp.maximum(jnp.abs(x), 1.0)
    # (while loops, not conditionals: under jax.vmap a loop runs only while some lane is due, where both
    # branches of a conditional would run at every step)

    def column(c: tuple) -> tuple:  # j = 0: g at x; j >= 1: the Hessian's column j - 1
        j, g, cols = c
        i = jnp.maximum(j - 1, 0)
        gv = grad_at(x + jnp.where(j > 0, h[i], 0.0) * jax.nn.one_hot(i, n, dtype=f32))
        g = jnp.where(j == 0, gv, g)
        cols = lax.dynamic_update_slice(cols, jnp.where(j > 0, (gv - g) / h[i], cols[i])[None], (i, jnp.zeros_like(i)))
        return j + 1, g, cols

    _, g, cols = lax.while_loop(lambda c: due & (c[0] <= n), column,
                                (jnp.asarray(0, jnp.int32), jnp.zeros(n, f32), jnp.zeros((n, n), f32)))

    def decide(c: tuple) -> tuple:
        error = jnp.sqrt(jnp.sum((cols - cols.T) ** 2))  # the differences' error, measured
        # H - margin I positive definite: its Cholesky factor is finite
        factor = small_cholesky(0.5 * (cols + cols.T) - CERTIFY_MARGIN * error * jnp.eye(n, dtype=f32))
        resolved = jnp.all(jnp.isfinite(factor))
        # the step of the shifted model: longer than Newton's, so the tests below err toward no certificate
        d = small_cho_solve(jnp.where(resolved, factor, jnp.eye(n, dtype=f32)), g)
        eps = jnp.finfo(jnp.result_type(value)).eps
        unseen = 0.5 * jnp.dot(g, d) <= CERTIFY_FALL * eps * jnp.abs(jnp.asarray(value).astype(f32))
        on_grid = jnp.all(jnp.abs(d) <= CERTIFY_ULPS * eps * jnp.abs(x))
        return jnp.asarray(True), resolved & (unseen | on_grid)

    _, certified = lax.while_loop(lambda c: due & ~c[0], decide, (jnp.asarray(False), jnp.asarray(False)))
    spent = jnp.where(due, n + 1, 0).astype(jnp.int32)
    return certified, jnp.stack([spent, spent])


def _open(status: jax.Array) -> jax.Array:
    """A status the precision rule may turn into ``PRECISION``: still running, or a failed search."""
    return (status == Status.RUNNING) | (status == Status.LINESEARCH_FAILED)


def _never(flag: Any) -> bool:
    """True when ``flag`` is known at trace time to be False (not a tracer)."""
    return not isinstance(flag, jax.core.Tracer) and not bool(np.any(np.asarray(flag)))


def adjust_status(
    rule: Any,
    rule_state: Any,
    status: jax.Array,
    failed: jax.Array,
    old: tuple[jax.Array, jax.Array, Params],
    new: tuple[jax.Array, jax.Array, Params],
    window: Optional[Window] = None,
    gtol: Any = None,
    model: Any = None,
    grid: Any = None,
    probe: Any = None,
    certify: Any = None,
    stall_verdict: bool = False,
    retry: Any = None,
) -> Any:
    """The status after the stall and precision rules (the hook in ``Solver.step``).

    Args:
      rule: the step-size rule; it tracks stalls when it has ``stalled(state)``.
      rule_state: its state after this step.
      status: the status ``Solver.step`` computed (a :class:`Status` code).
      failed: the line search found no acceptable step (the step is not taken).
      old: ``(value, grad_norm, params)`` at the current iterate (``grad_norm`` may be a function of
        no arguments, called only where the precision tests run: L-BFGS-B's free gradient's norm).
      new: the same at the trial point (the next iterate unless ``failed``).
      window: the :class:`Window` after this step, for a rule without ``stalled``
        (None: no window rule).
      gtol: the solver's ``gtol`` (the window rule is off when it is 0).
      model: a quasi-Newton direction's ``(slope, had_memory, unit_sq_grad, grad, unit_slope,
        located, noise, vouched)``: the step's ``g.d``, whether the direction had a curvature memory,
        the rule's ``StepInfo.unit_sq_grad``, the gradient here (:func:`model_decrease`,
        evaluated only in the rare branch), ``StepInfo.unit_slope`` (:func:`line_decrease`,
        :func:`overshoot_decrease`), ``StepInfo.located``, ``StepInfo.noise`` (:func:`within_noise`)
        and the flag :func:`adjust_status` returned for the step before (``SolverState.stall``);
        None: no such model.
      grid: (float32 and narrower; None otherwise) the grid rule's evidence: a search along
        steepest descent (a direction with a restart and no memory, ``gd``, or L-BFGS-B's search after
        its memory was forgotten) whose first trial moved
        ``x`` without the fall of ``f`` its slope predicted (``StepInfo.unseen``); where that
        search failed (or filled the ``window``) and the norm test holds within :data:`GRID_FACTOR`,
        ``PRECISION``.
      probe: ``(due, params, value) -> (found, evaluations)``, :func:`probe_descent` at the point
        tested (the function picks its gradient and direction; ``evaluations`` the pair of value and
        gradient evaluations, :func:`values_only`). A probing window rule's
        (:func:`probes`), along ``-g``: run where a failed step or a full window meets the
        norm test and the status could stop; the window is then tested once every :data:`WINDOW`
        steps, and a point where ``f`` still falls along ``-g`` is not ``PRECISION``. With a ``model``
        (float32 and narrower, :func:`probes_scaled`), along ``-x^2 g`` from the current iterate: run
        where the model's test or the restart's failed retry would stop the run and the norm test
        does not, which then stops it only where the probe finds no fall (in float32 also along a
        Newton direction: :func:`probe_verdict`). None otherwise.
      certify: ``(due, params, value) -> (certified, evaluations)``, :func:`newton_certifies` at the
        point tested (16 bits: :func:`certifies`): run where the rules above do not call a stop or a
        full window ``PRECISION``, no ``probe`` found a fall of ``f`` (a wrong gradient's zero certifies
        as a minimiser) and the status could stop; a certified point is ``PRECISION``.
        None otherwise.
      stall_verdict: (:func:`probes_stall`, with a ``probe`` and no ``model``) the rule's stall, where the
        search did not fail and the norm test does not hold, is ``PRECISION`` unless the ``probe``
        (:func:`probe_verdict`, from the current iterate) finds a fall of ``f``.
      retry: (:func:`probes_retry`, with ``stall_verdict``; None otherwise) whether the search was along
        ``-g`` (the direction had no memory): where it failed, a verdict as the stall is, which the
        ``probe`` (:func:`retry_verdict`) decides.

    Returns:
      ``status``, with ``LINESEARCH_FAILED``, a stall or a full window at a point
      stationary to precision (or where the quasi-Newton ``model`` is) turned into
      ``PRECISION``, and a stall elsewhere (or a line search's full window: :func:`searches`) into ``STALLED``; with a ``model``, the pair
      ``(status, vouch)``: ``vouch`` (in ``f``'s dtype) is :data:`VOUCH_STRONG` or
      :data:`VOUCH_WEAK` after a search that failed or stalled with a memory whose model
      (:func:`model_decrease`'s, :func:`line_decrease`'s or :func:`overshoot_decrease`'s)
      predicted at most ``VOUCH_FACTR * eps * |f|`` (:func:`vouches`) or at most the error of
      ``f``'s evaluation the search measured (:func:`within_noise`), else
      :data:`VOUCH_NONE`; the solver then restarts (a failed search did anyway), and the
      search along ``-g`` that fails or stalls too ends in ``PRECISION``: two directions, the
      quasi-Newton one and steepest descent, found nothing above the rounding of ``f``. With a
      ``probe`` or ``certify``, the pair ``(that, evaluations they spent)``.
    """
    own = hasattr(rule, "stalled")  # a rule with a stall count (a window is kept only for the others)
    none = jnp.asarray(VOUCH_NONE, jnp.result_type(old[0]))  # no vouch (in f's dtype)
    if not own and window is None and _never(failed):
        # a schedule in float64: it neither fails nor stalls, and tracing the test
        # anyway grew gd's compiled step by a third (issue 14)
        status = jnp.asarray(status).astype(jnp.int32)
        return status if model is None else (status, none)
    stalled = jnp.asarray(rule.stalled(rule_state)) if own else jnp.asarray(False)
    settled = (window.since >= WINDOW) & (gtol > 0) if window is not None else jnp.asarray(False)
    counted = probe is not None or certify is not None  # (evaluations spent in the rare branch)
    if probe is not None:  # (a probing rule: tested when the window fills, once every WINDOW steps)
        settled = settled & (window.since % WINDOW == 0) if window is not None else settled
    if counted:
        can_stop = _open(status)  # (a probe only where its finding decides the status)
        probed = jnp.zeros(2, jnp.int32)  # the probe's evaluations (values, gradients)
    lazy = callable(old[1])  # (a norm computed only in the rare branch below)
    value, gnorm = (jnp.where(failed, o, n) for o, n in zip(old[:2], new[:2])) if not lazy else (
        jnp.where(failed, old[0], new[0]), None)
    if window is not None and _never(failed):
        # a schedule's window: one more reduction, no branch (a lax.cond in the step cost
        # Adam 2-D 8x its step time on XLA:CPU: a conditional runs its own thunk executor)
        precise, vouch = at_precision(value, gnorm, new[2]), none
    else:
        # the test (a norm of params) runs only when a search failed, the rule stalled or the window is full
        def precise_here() -> Any:
            here = _tree.where(failed, old[2], new[2])
            gnorm_here = jnp.where(failed, old[1](), new[1]()) if lazy else gnorm
            norm_test = at_precision(value, gnorm_here, here)
            if grid is not None:
                stopped = failed if window is None else failed | settled  # (no window: the program as it was)
                norm_test = norm_test | (stopped & grid & at_precision(value, gnorm_here, here, GRID_FACTOR))
            def certified(precise: Any, k: Any, found: Any) -> tuple[Any, Any]:
                """(16 bits) a stop the rules let go on, where no probe found a fall of f either."""
                if certify is None:
                    return precise, k
                due = can_stop & ~precise
                sure, spent = certify(due if found is None else due & ~found, here, value)
                return precise | sure, k + spent

            if model is None and not counted:
                return norm_test
            if model is None:
                precise, k, found = norm_test, probed, None
                if probe is not None and stall_verdict:  # (cg) a stall is a verdict the probes decide
                    verdict = stalled & ~failed
                    if retry is not None:  # (float64 cg) and so is a failed search along -g
                        verdict = verdict | (failed & retry)
                    found, k = probe(can_stop & verdict & ~norm_test, old[2], old[0])
                    precise = norm_test | (verdict & ~found)
                elif probe is not None:
                    found, k = probe(can_stop & norm_test, here, value)
                    precise = norm_test & ~found
                return certified(precise, k, found)
            slope, had_memory, unit_sq_grad, grad, unit_slope, located, noise, vouched = model
            decrease = model_decrease(slope, had_memory, unit_sq_grad, _tree.vdot(grad, grad).astype(unit_sq_grad.dtype))
            retry_failed, vouch = restart_test(old[0], slope, had_memory, decrease, unit_slope, located, noise, vouched,
                                               interpolates=interpolates(rule))
            if not counted:
                return norm_test | model_at_precision(old[0], decrease) | retry_failed, vouch.astype(none.dtype)
            verdict = model_at_precision(old[0], decrease) | retry_failed
            # (float32 and narrower) the verdict stands where f shows no fall along -x^2 g either (with a
            # model, counted means a probe: certify is 16-bit only, where every verdict is probed, probes_scaled);
            # in 16 bits so does the norm test (NORM_VETO_BITS)
            veto = jnp.finfo(jnp.result_type(old[0])).bits <= NORM_VETO_BITS
            due = can_stop & (norm_test | verdict) if veto else can_stop & ~norm_test & verdict
            found, k = probe(due, old[2], old[0])
            precise, k = certified((norm_test | verdict) & ~found if veto else norm_test | (verdict & ~found), k, found)
            return precise, vouch.astype(none.dtype), k

        no = jnp.asarray(False)
        otherwise = (no, none) if model is not None else no
        otherwise = otherwise if not counted else (*otherwise, probed) if model is not None else (no, probed)
        precise = jax.lax.cond(failed | stalled | settled, precise_here, lambda: otherwise)
        if model is not None and counted:
            precise, vouch, probed = precise
        elif model is not None:
            precise, vouch = precise
        elif counted:
            precise, probed = precise
    status = jnp.where(_open(status) & (failed | stalled | settled) & precise, Status.PRECISION, status)
    give = gave_up(rule, rule_state) if window is not None else False
    if give is not False:  # a full window is a stall (see the module doc)
        stalled = stalled | (settled if give is True else settled & give)
    status = jnp.where((status == Status.RUNNING) & stalled, Status.STALLED, status)
    result = status.astype(jnp.int32) if model is None else (status.astype(jnp.int32), vouch)
    return result if not counted else (result, probed)
