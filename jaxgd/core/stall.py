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
- **the probes** (:mod:`jaxgd.core.probe`, whose docstring says when each runs and what it found):
  evaluations of ``f`` along ``-g``, ``-x^2 g`` or a Newton-CG direction, and in 16 bits a float32 Newton
  certificate, that decide whether a verdict above is ``PRECISION`` or stays a failure; the predicates
  here (:func:`probes`, :func:`probes_stop`, :func:`probes_stall`, :func:`probes_retry`,
  :func:`certifies`) say which stops they decide.

A genuine failure (``f`` unbounded below, no descent far from a minimum)
does not meet the precision test and keeps its failure status.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import _tree
from .status import Status
from . import probe as _probe
from .stepsize import shortest_move
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
    if sum(jnp.size(x) for x in _tree.leaves(params)) >= _tree.HUGE:
        # many parameters: ||x|| (a pass over them) only where the test can pass, max(||x||, 1) >= 1: the
        # same answer (a / b <= a for b >= 1, rounded), a branch where each step carried the pass
        root = jnp.sqrt(eps) if factor == 1.0 else factor * jnp.sqrt(eps)
        maybe = jnp.isfinite(value) & (grad_norm <= root * jnp.maximum(jnp.abs(value), 1.0))
        xnorm = lax.cond(maybe, lambda: jnp.sqrt(_tree.sq_norm(params)).astype(dtype), lambda: jnp.ones((), dtype))
        return maybe & (grad_norm <= root * (jnp.maximum(jnp.abs(value), 1.0) / jnp.maximum(xnorm, 1.0)))
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
    ``VOUCH_FACTR * eps * max(|f|, 1)`` (scipy L-BFGS-B's ``factr`` test, floor included: a loss whose
    minimum is 0 has no relative rounding to go by near it); False for NaN or Inf."""
    dtype = xp.result_type(value)
    # the factor as a Python float (float16's 1e7 eps, 9,766, overflowed in its own type at trace time)
    return xp.isfinite(value) & (line <= VOUCH_FACTR * float(xp.finfo(dtype).eps) * xp.maximum(xp.abs(value), 1.0))


def within_noise(noise: Any, decrease: Any) -> Any:
    """True when ``f``'s own evaluation error, as a search measured it (``noise``,
    ``StepInfo.noise``: a change of ``f`` at a trial that moved ``x`` and that the trial's slopes
    cannot explain), is at least ``decrease``: no trial could show that decrease above the error.
    False without a measurement (``noise`` 0) or for a NaN/Inf ``decrease``."""
    return (noise > 0) & (noise >= decrease)


def resolved(slope: Any, unit_slope: Any, sq_grad: Any, move: Any, xp: Any = jnp) -> Any:
    """True when a search along ``d`` parallel to ``-g`` (``slope`` :math:`= \\phi'(0)`, ``unit_slope``
    :math:`= \\phi'(1)` at its unit first trial, ``StepInfo.unit_slope``) puts the line's minimiser,
    by the secant of its slopes (:math:`t^* = |\\phi'(0)| / (\\phi'(1) - \\phi'(0))`), within one ulp
    of ``x``: the step :math:`t^* d = t^* c (-g)`, :math:`c = |\\phi'(0)| / \\|g\\|^2`
    (``sq_grad``), is at most ``move`` along ``-g`` (:func:`jaxgd.core.stepsize.shortest_move` of
    ``g``: no entry of ``x`` moves by a whole ulp). A loss with minimum 0 scaled up (Rosenbrock times
    1e8) has a gradient of rounding, 1e-5, at ``x`` within 4 ulps of its answer, where ``f`` (5e-22)
    is no guide: the line's minimiser lies at 8e-17 along ``-g`` and every trial there rounds to ``x``
    (the scale review, session 59). Across a kink the unit trial's slope jumps over the whole unit
    step, and the secant puts :math:`t^*` near half of it, far above an ulp. False for NaN."""
    curv = unit_slope - slope
    ok = (slope < 0) & (curv > 0) & (sq_grad > 0)
    t = xp.abs(slope) / xp.where(ok, curv, 1.0) * (xp.abs(slope) / xp.where(ok, sq_grad, 1.0))
    return ok & (t <= move)


def located_within(value: Any, located: Any, noise: Any, xp: Any = jnp) -> Any:
    """True when a search along ``-g`` located its line's minimiser (``StepInfo.located``, the
    decrease to it) within ``f``'s rounding (:func:`model_at_precision`) or within the error of
    ``f``'s evaluation the same search measured (:func:`within_noise`): the confirmation of a weak
    vouch (:func:`adjust_status`)."""
    return model_at_precision(value, located, xp) | within_noise(noise, located)


def restart_test(value: Any, slope: Any, had_memory: Any, decrease: Any, unit_slope: Any, located: Any, noise: Any,
                 vouched: Any, xp: Any = jnp, interpolates: bool = False, at_ulp: Any = False) -> tuple[Any, Any]:
    """The restart's rule (see the module doc) after a search that failed or stalled from ``f`` =
    ``value`` along a direction with slope ``g.d`` = ``slope``: ``(retry_failed, vouch)``.

    ``retry_failed``: this was the restart's search along ``-g`` (no memory, ``had_memory``
    False) after a quasi-Newton one that vouched (``vouched``, the flag of the step before)
    strongly, or weakly where this one located its line's minimiser within rounding or within
    the error it measured (:func:`located_within`), or its slopes put that minimiser within an
    ulp of ``x`` (``at_ulp``, :func:`resolved`). ``vouch``: with a memory, :data:`VOUCH_STRONG`
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
    if not (interpolates and _probe.probes_newton(jnp.result_type(value))):  # (float32 under bfgs's start: the probes decide)
        was_weak = was_weak & (located_within(value, located, noise, xp) | at_ulp)
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


def probes_upward(dtype: Any) -> bool:
    """True where a quasi-Newton verdict's probe along ``-x^2 g`` tries its steps going up (:func:`jaxgd.core.probe.
    probe_descent`'s ``rise``, the error of ``f`` the search measured), as a float64 ``cg`` verdict's does: one
    evaluation at an answer, where the downward trials spend 20 (float64; in float32 and narrower the trials
    keep their downward order, which their Newton probe and the 16-bit certificate were measured with)."""
    return jnp.finfo(dtype).bits == 64


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
        (every dtype: a quasi-Newton direction's), along ``-x^2 g`` from the current iterate: run
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
            sq_grad = _tree.vdot(grad, grad).astype(unit_sq_grad.dtype)
            decrease = model_decrease(slope, had_memory, unit_sq_grad, sq_grad)
            at_ulp = resolved(slope, unit_slope, sq_grad, shortest_move(old[2], grad, jnp.result_type(old[0])))
            retry_failed, vouch = restart_test(old[0], slope, had_memory, decrease, unit_slope, located, noise, vouched,
                                               interpolates=interpolates(rule), at_ulp=at_ulp)
            if not counted:
                return norm_test | model_at_precision(old[0], decrease) | retry_failed, vouch.astype(none.dtype)
            verdict = model_at_precision(old[0], decrease) | retry_failed
            # the verdict stands where f shows no fall along -x^2 g either (with a model, counted means a
            # probe: certify is 16-bit only, where every verdict is probed);
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