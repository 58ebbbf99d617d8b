"""The precision probes: evaluations that decide whether a stop is ``PRECISION`` or a failure.

:mod:`jaxgd.core.stall` says which stops get a verdict and from which probe (its module docstring is the
policy); this module holds the probes themselves, each a pure function of the loss, the point and its
gradient, run inside the compiled step and (the same arithmetic, ``xp=np``) on the host tier. What each
decides, and when (the predicates named are :mod:`jaxgd.core.stall`'s):

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

- **the scaled probe** (every dtype; quasi-Newton directions with a restart, under
  :class:`jaxgd.linesearch.MoreThuente`): the model's test and the restart's
  failed retry say that two directions showed no fall of ``f``, not that the point is stationary.
  On a badly scaled problem both can show none far from a minimiser (NIST's Misra1a from its start in
  float32: ``lbfgs`` ended ``PRECISION`` at ``f`` = 19.5 of 0.125; NIST's MGH10 from its first start in
  float64: ``PRECISION`` at ``f`` = 1.5e6 of 87.9, ``b1`` = 2.3e-48 with a gradient of 5e46). Where such
  a verdict would stop the run and the norm test does not, :func:`probe_descent` also tries steps along
  ``-x^2 g``, which move every parameter by the same relative amount; the run is ``PRECISION`` only where
  none shows a fall (evaluations in ``nfev``; in float64 the trials go up from the shortest step,
  :func:`jaxgd.core.stall.probes_upward`, one at a minimiser). On sif2jax's unconstrained problems,
  float32 ``lbfgs``: false successes 25 → 15, no success lost (benchmarks/RESULTS.md, session 38); float64
  (session 61): 1-2 evaluations more on each of 21 ``PRECISION`` runs of ``lbfgs`` and ``bfgs``, no status
  changed (the downward trials' 20 made ``bfgs`` on PENALTY3 a failure at -0.0010000 of -0.00100047).
  In float16 and bfloat16
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
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from .. import _tree
from .stepsize import shortest_move
from ..linesearch import wolfe as _wolfe
from .._types import Params

# A window rule's probe (:func:`probe_descent`): at most this many steps along -g, each a quarter
# of the one before (4^19 ~ 3e11 from the first, max(|f|, 1) / ||g||^2, down to where it moves x by ulps).
PROBES = 20
# ... and a fall counts only at a step over this many times stepsize.shortest_move (one that moves some
# entry of x by more than PROBE_ULPS eps |x_i|): a search that stopped an ulp or two from a least-squares
# answer (f ~ 1e-6, which the next grid point halves) is at the dtype's precision.
PROBE_ULPS = 4.0


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


SCALED, NEWTON_CG, NEWTON, DONE = 0, 1, 2, 3


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
