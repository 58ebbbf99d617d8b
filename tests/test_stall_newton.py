"""A float32 quasi-Newton PRECISION verdict also needs a Newton probe that finds no fall (jaxgd.core.stall).

Where the Hessian's condition number is near 1e11 (polynomial least squares, sif2jax's PALMER*C),
the float32 gradient's rounding hides its components along the small eigenvalues: ``-g`` and
``-x^2 g`` show no fall far from the minimiser, and the verdict called such a point ``PRECISION``.
``probe.newton_direction`` (truncated CG on ``H d = g``, ``H v`` by gradient differences) finds a
Newton direction along which ``f`` falls by more than ``probe.newton_fall``; then the verdict does not
stand, on both tiers. References: ``numpy.linalg.lstsq`` (the least-squares minimum),
``numpy.linalg.solve`` (the Newton direction of a quadratic), and counts of the loss's evaluations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.core import probe, stall
from jaxgd.host import loop as host_loop
from conftest import probe_trials_at_a_minimum, slow_if

# PALMER3C (M. Palmer, via CUTEst / sif2jax): y = sum_j a_j x^(2j), j = 0..7, 23 observations.
PALMER_X = np.array([-1.658063, -1.570796, -1.396263, -1.221730, -1.047198, -0.872665, -0.766531, -0.698132,
                     -0.523599, -0.349066, -0.174533, 0.0, 0.174533, 0.349066, 0.523599, 0.698132, 0.766531,
                     0.872665, 1.047198, 1.221730, 1.396263, 1.570796, 1.658063])
PALMER_Y = np.array([64.87939, 50.46046, 28.2034, 13.4575, 4.6547, 0.59447, 0.0, 0.2177, 2.3029, 5.5191, 8.5519,
                     9.8919, 8.5519, 5.5191, 2.3029, 0.2177, 0.0, 0.59447, 4.6547, 13.4575, 28.2034, 50.46046,
                     64.87939])
POWERS = np.stack([PALMER_X ** (2 * j) for j in range(8)], axis=1)


def palmer3c(a):
    """The sum of squared residuals as sif2jax writes it (powers of x^2 by products, data in float64;
    the solver takes the float64 loss of float32 ``a`` in float32)."""
    x2 = jnp.asarray(PALMER_X) ** 2
    powers = [jnp.ones_like(x2), x2]
    for _ in range(6):
        powers.append(powers[-1] * x2)
    predicted = a[0]
    for j in range(1, 8):  # (left to right, as sif2jax sums)
        predicted = predicted + a[j] * powers[j]
    return jnp.sum((predicted - jnp.asarray(PALMER_Y)) ** 2)


def lstsq_minimum():
    coef = np.linalg.lstsq(POWERS, PALMER_Y, rcond=None)[0]
    return float(np.sum((POWERS @ coef - PALMER_Y) ** 2))


@pytest.mark.parametrize("tier", ["host", "compiled"])
def test_float32_palmer3c_is_a_success_only_at_the_least_squares_minimum(tier):
    """Reference: numpy.linalg.lstsq's minimum (0.0195). From a = 1, float32 lbfgs stopped at f = 0.107
    with the verdict PRECISION, a success: neither -g nor -x^2 g shows a fall there, a Newton direction
    does. Now a run is a success exactly where it reached the minimum (here it ends LINESEARCH_FAILED:
    cond(H) is 3e11; bfgs runs to max_steps at 0.021)."""
    res = jaxgd.minimize(palmer3c, jnp.ones(8, jnp.float32), method="lbfgs", tier=tier, gtol=1e-5)
    assert res.params.dtype == jnp.float32 and np.isfinite(float(res.loss))
    best = lstsq_minimum()
    assert bool(res.success) == (float(res.loss) <= best * (1 + 1e-3)), (res.status_enum, float(res.loss), best)


def spd(n, cond, seed):
    """A symmetric positive definite matrix with eigenvalues from 1 to ``cond`` (NumPy)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return (q * np.geomspace(1.0, cond, n)) @ q.T


@pytest.mark.parametrize("n", [5, 30])
def test_newton_direction_solves_a_quadratics_newton_system_on_both_tiers(n):
    """Reference: numpy.linalg.solve(A, g) for f = x'Ax/2 - b'x (gradient differences are exact on a
    quadratic up to rounding). At n = 5 CG solves it in 5 steps; at n = 30 it stops at
    probe.NEWTON_STEPS, where the direction still descends and lowers the model."""
    a = spd(n, 100.0, n)
    b = np.random.default_rng(n + 1).normal(size=n)
    f = lambda x: 0.5 * x @ (jnp.asarray(a, jnp.float32) @ x) - jnp.asarray(b, jnp.float32) @ x  # noqa: E731
    x = jnp.zeros(n, jnp.float32)
    vg = jax.jit(jax.value_and_grad(f))  # (compiled once: eagerly each op of f and its gradient compiled apart)
    _, g = vg(x)
    d, k = jax.jit(lambda x, g: probe.newton_direction(jax.value_and_grad(f), x, g, jnp.asarray(True)))(x, g)
    host_d, host_k = host_loop._newton_direction(lambda y: (*vg(y), None), np.asarray(x), np.asarray(g))
    assert int(k) == host_k == min(n, probe.NEWTON_STEPS)
    np.testing.assert_allclose(np.asarray(d), host_d, rtol=1e-2, atol=1e-3 * np.abs(host_d).max())  # (float32 CG: rounding grows)
    newton = np.linalg.solve(a, np.asarray(g, np.float64))
    if n <= probe.NEWTON_STEPS:
        np.testing.assert_allclose(host_d, newton, rtol=2e-3, atol=2e-3 * np.abs(newton).max())
    else:  # truncated: a descent direction whose model value lies between 0 and the Newton step's
        gd = float(np.dot(np.asarray(g, np.float64), host_d))
        model = -gd + 0.5 * host_d @ a @ host_d
        assert gd > 0 and -0.5 * newton @ np.asarray(g, np.float64) <= model < 0


def test_newton_direction_takes_steepest_descent_at_negative_curvature_and_nothing_when_not_due():
    """Reference: the gradient itself (Steihaug's choice at negative curvature on the first CG step,
    f = -|x|^2 + x'c, a concave quadratic), and zeros with no evaluation when ``due`` is False."""
    c = jnp.asarray([1.0, -2.0, 0.5], jnp.float32)
    f = lambda x: -jnp.sum(x * x) + x @ c  # noqa: E731
    x = jnp.asarray([0.3, 0.1, -0.2], jnp.float32)
    g = jax.grad(f)(x)
    # (one compiled program for both values of ``due``, a traced argument as in the fused loop: run eagerly, each
    # call compiled its while loop and every op again)
    newton = jax.jit(lambda x, g, due: probe.newton_direction(jax.value_and_grad(f), x, g, due))
    d, k = newton(x, g, jnp.asarray(True))
    np.testing.assert_array_equal(np.asarray(d), np.asarray(g))
    assert int(k) == 1
    vg = jax.jit(jax.value_and_grad(f))
    host_d, host_k = host_loop._newton_direction(lambda y: (*vg(y), None), np.asarray(x), np.asarray(g))
    np.testing.assert_array_equal(host_d, np.asarray(g))
    assert host_k == 1
    d, k = newton(x, g, jnp.asarray(False))
    assert int(k) == 0 and not np.any(np.asarray(d))


def test_newton_fall_is_half_sqrt_eps_of_the_loss_floored_at_one():
    """Reference: the closed form NEWTON_FALL * sqrt(eps) * max(|f|, 1) in float32."""
    eps = np.finfo(np.float32).eps
    for f in (0.25, 3.0, -40.0):
        want = probe.NEWTON_FALL * np.sqrt(eps) * max(abs(f), 1.0)
        assert np.isclose(float(probe.newton_fall(jnp.float32(f))), want, rtol=1e-6)
        assert np.isclose(float(probe.newton_fall(np.float32(f), np)), want, rtol=1e-6)


@pytest.mark.parametrize("at_minimum", [False, True])
def test_probe_verdict_finds_palmer3cs_fall_and_none_at_its_minimum_on_both_tiers(at_minimum):
    """Reference: the lstsq minimum (rounded to float32: no Newton fall above newton_fall there) and
    the point float32 lbfgs stopped at before (-x^2 g shows no fall, a Newton direction one of about
    2e-4); the evaluations counted with callbacks, the same on the host."""
    if at_minimum:
        point = np.linalg.lstsq(POWERS, PALMER_Y, rcond=None)[0].astype(np.float32)
    else:
        point = np.asarray(jaxgd.minimize(palmer3c, jnp.ones(8, jnp.float32), method="lbfgs", tier="host", gtol=1e-5,
                                          max_steps=100).params)
    f = lambda a: palmer3c(a).astype(jnp.float32)  # noqa: E731
    calls = []

    def counted(a):
        jax.debug.callback(lambda: calls.append(1))
        return jax.value_and_grad(f)(a)

    x = jnp.asarray(point)
    vg = jax.jit(jax.value_and_grad(f))  # (compiled once: eagerly each op of f and its gradient compiled apart)
    value, g = vg(x)
    found, spent = jax.jit(lambda x, v, g: probe.probe_verdict(f, counted, x, v, g, jnp.asarray(True)))(x, value, g)
    jax.effects_barrier()
    assert bool(found) == (not at_minimum)
    assert int(spent[0]) == len(calls) and 0 < int(spent[1]) <= min(8, probe.NEWTON_STEPS)
    if at_minimum:  # no fall, no Newton trials: the -x^2 g trials down to the least move, and the CG steps
        trials = probe_trials_at_a_minimum(value, g, probe.scaled_direction(x, g), x, jnp.float32)
        assert int(spent[0]) - int(spent[1]) == trials < probe.PROBES
    host = host_loop._probe_verdict(lambda y: (*vg(y), None), np.asarray(point), np.float32(value), np.asarray(g))
    assert host == (bool(found), int(spent[0]), int(spent[1]))


@pytest.mark.slow  # (~5 s: make test time)
def test_probe_verdict_under_vmap_matches_each_point():
    """Reference: the unbatched probe at each point (PALMER3C's minimum and a point 1 % off it in a0):
    under jax.vmap the loop runs until every lane is done, each lane's result its own."""
    best = np.linalg.lstsq(POWERS, PALMER_Y, rcond=None)[0]
    points = jnp.asarray(np.stack([best, best * np.r_[1.01, np.ones(7)]]), jnp.float32)
    f = lambda a: palmer3c(a).astype(jnp.float32)  # noqa: E731
    vg = jax.value_and_grad(f)
    values, grads = jax.vmap(vg)(points)
    run = lambda x, v, g: probe.probe_verdict(f, vg, x, v, g, jnp.asarray(True))  # noqa: E731
    found, spent = jax.jit(jax.vmap(run))(points, values, grads)
    for i in range(2):
        one_found, one_spent = jax.jit(run)(points[i], values[i], grads[i])
        assert bool(found[i]) == bool(one_found) and np.array_equal(np.asarray(spent[i]), np.asarray(one_spent))
    assert not bool(found[0]) and bool(found[1])


def qing(x):
    """sif2jax's QING: sum_i (x_i^2 - i)^2, minimised at x_i = sqrt(i) (f = 0)."""
    i = jnp.arange(1, x.shape[0] + 1, dtype=x.dtype)
    return jnp.sum((x * x - i) ** 2)


@pytest.mark.parametrize("tier", ["host", slow_if(True, "compiled")])  # (compiled ~7 s: in make slow)
def test_float32_bfgs_at_qings_answer_is_a_precision_success(tier):
    """Reference: the closed form x_i = sqrt(i). bfgs's first trial is scipy's interpolated one, so its
    failed search at the float32 answer vouched only weakly (no unit first trial) and the retry along -g
    located nothing: LINESEARCH_FAILED 2e-7 from sqrt(i) before; now the probes (probe_verdict) find no
    fall there and the run is a PRECISION success, on both tiers. A loss unbounded below stays a failure."""
    res = jaxgd.minimize(qing, jnp.ones(30, jnp.float32), method="bfgs", tier=tier)
    assert res.status_enum is jaxgd.Status.PRECISION and res.success, res.message
    np.testing.assert_allclose(np.asarray(res.params, np.float64), np.sqrt(np.arange(1, 31)), atol=1e-6)
    down = jaxgd.minimize(lambda x: -jnp.exp(-x[0]), jnp.zeros(1, jnp.float32), method="bfgs", tier=tier)
    assert down.status_enum is jaxgd.Status.LINESEARCH_FAILED and np.isfinite(float(down.params[0]))


# NIST StRD's Rat42 (Ratkowsky's sigmoid, "higher difficulty"; sif2jax's RAT42LS): y = b1 / (1 + exp(b2 - b3 x)).
RAT42_X = np.array([9, 14, 21, 28, 42, 57, 63, 70, 79], np.float32)
RAT42_Y = np.array([8.93, 10.8, 18.59, 22.33, 39.35, 56.11, 61.73, 64.62, 67.08], np.float32)
RAT42_CERTIFIED = np.array([7.2462237576e01, 2.6180768402e00, 6.7359200066e-02])  # NIST's certified values
RAT42_RSS = 8.0565229338  # ... and residual sum of squares


def rat42(b):
    return jnp.sum((b[0] / (1 + jnp.exp(b[1] - b[2] * RAT42_X)) - RAT42_Y) ** 2)


@pytest.mark.parametrize("tier", ["host", slow_if(True, "compiled")])  # (compiled ~4 s each: in make slow)
@pytest.mark.parametrize("start", [(100.0, 1.0, 0.1), (75.0, 2.5, 0.07)])  # NIST's start 1, and one near the answer
def test_float32_bfgs_at_rat42s_answer_is_a_precision_success(tier, start):
    """Reference: NIST's certified parameters and residual sum of squares for Rat42. At the float32 answer
    bfgs's failed search (a unit first trial that overshot: stall.VOUCH_WEAK) was followed by a retry along
    -g that failed too without locating its line's minimiser, a step below f's rounding: LINESEARCH_FAILED
    (success False) at the certified answer, on both tiers, from either start. Under bfgs's interpolated first
    trial such a retry is now a float32 verdict, which the probes (probe_verdict) confirm: PRECISION."""
    res = jaxgd.minimize(rat42, jnp.asarray(start, jnp.float32), method="bfgs", tier=tier)
    assert res.status_enum is jaxgd.Status.PRECISION and res.success, res.message
    np.testing.assert_allclose(np.asarray(res.params, np.float64), RAT42_CERTIFIED, rtol=2e-6)
    np.testing.assert_allclose(float(res.loss), RAT42_RSS, rtol=1e-6)


def test_a_weak_vouchs_failed_retry_is_a_float32_verdict_under_an_interpolated_start():
    """Reference: the definitions. A failed quasi-Newton search whose model's decrease |g.d|/2 passes only
    the weak tests (no unit first trial, unit_slope NaN, or a unit trial that overshot) vouches weakly in
    every dtype and under either start. The retry along -g that follows and fails, locating nothing, is a
    verdict (which the float32 probes then decide) in float32 under a search that interpolates its first
    trial (bfgs's) only; in float64 (whose programs are as they were) and under a unit start (lbfgs) it is
    one where it located its line's minimiser within rounding, and a strong vouch's always."""
    for dtype in (np.float32, np.float64):
        f, slope, nan, inf, zero = dtype(10.0), dtype(-1e-10), dtype(np.nan), dtype(np.inf), dtype(0)
        for interpolates in (True, False):
            for unit_slope in (nan, dtype(1.0)):
                retry, vouch = stall.restart_test(f, slope, np.bool_(True), inf, unit_slope, inf, zero, 0, np,
                                                  interpolates)
                assert not retry and int(vouch) == stall.VOUCH_WEAK
            retry, vouch = stall.restart_test(f, slope, np.bool_(False), inf, nan, inf, zero, stall.VOUCH_WEAK, np,
                                              interpolates)
            assert bool(retry) == (dtype == np.float32 and interpolates) and int(vouch) == stall.VOUCH_NONE
            located = dtype(1e-12)  # the line's minimiser located within f's rounding: a verdict everywhere
            retry, _ = stall.restart_test(f, slope, np.bool_(False), inf, nan, located, zero, stall.VOUCH_WEAK, np,
                                          interpolates)
            assert retry
            for vouched in (stall.VOUCH_STRONG, stall.VOUCH_NONE):
                retry, _ = stall.restart_test(f, slope, np.bool_(False), inf, nan, inf, zero, vouched, np, interpolates)
                assert bool(retry) == (vouched == stall.VOUCH_STRONG)


@pytest.mark.parametrize("tier", ["host", slow_if(True, "compiled")])  # (compiled ~4 s each: in make slow)
@pytest.mark.parametrize("seed", [0, 10])
def test_float32_cg_stall_at_an_exponential_fits_answer_is_a_precision_success(tier, seed):
    """Reference: scipy.optimize.curve_fit (float64) on the same data, issue 13's example a exp(-b t) + c
    fitted to 100 noisy points. Float32 cg ended STALLED (success False) at curve_fit's answer for these data
    (seed 0 on both tiers, seed 10 on the host): its search's stall count, with no model to vouch for the
    point. A float32 cg stall is now a verdict the probes (probe_verdict) decide: PRECISION, on both tiers."""
    from scipy.optimize import curve_fit

    rng = np.random.default_rng(seed)
    t = np.linspace(0, 4, 100).astype(np.float32)
    a, b, c = rng.uniform(1, 5), rng.uniform(0.3, 2), rng.uniform(-1, 1)
    y = (a * np.exp(-b * t) + c + 0.05 * rng.normal(size=100)).astype(np.float32)
    ref = curve_fit(lambda s, a, b, c: a * np.exp(-b * s) + c, t.astype(np.float64), y.astype(np.float64),
                    p0=[1.0, 1.0, 0.0])[0]
    res = jaxgd.minimize(lambda p: jnp.sum((p[0] * jnp.exp(-p[1] * t) + p[2] - y) ** 2),
                         jnp.asarray([1.0, 1.0, 0.0], jnp.float32), method="cg", tier=tier)
    assert res.status_enum is jaxgd.Status.PRECISION and res.success, res.message
    np.testing.assert_allclose(np.asarray(res.params, np.float64), ref, rtol=1e-4)


RAT43_X = np.arange(1.0, 16.0)
RAT43_Y = np.array([16.08, 33.83, 65.80, 97.20, 191.55, 326.20, 386.87, 520.53, 590.03, 651.92, 724.93, 699.56,
                    689.96, 637.56, 717.41])
RAT43_CERTIFIED = np.array([6.9964151270e02, 5.2771253025e00, 7.5962938329e-01, 1.2792483859e00])  # NIST's
RAT43_RSS = 8.7864049080e03  # ... and residual sum of squares


def rat43(b):
    """NIST StRD's Rat43 (sif2jax's RAT43LS): y = b1 / (1 + exp(b2 - b3 x))^(1 / b4), 15 observations."""
    return jnp.sum((b[0] / (1 + jnp.exp(b[1] - b[2] * RAT43_X)) ** (1 / b[3]) - RAT43_Y) ** 2)


@pytest.mark.parametrize("tier", ["host", slow_if(True, "compiled")])  # (compiled ~4 s: in make slow)
def test_float64_cg_stall_at_rat43s_answer_is_a_precision_success(tier):
    """Reference: NIST's certified parameters and residual sum of squares for Rat43, from NIST's start 1.
    Float64 cg reached the certified answer and ended STALLED (success False): its search's stall count, 10
    steps without a fall beyond rounding, with no model to vouch for the point (as GAUSS2LS and LUKSAN12/13LS
    did). A cg stall is now a verdict in float64 too, which the probes decide in float64: PRECISION."""
    res = jaxgd.minimize(rat43, jnp.asarray([100.0, 10.0, 1.0, 1.0]), method="cg", tier=tier, gtol=1e-5)
    assert res.params.dtype == jnp.float64
    assert res.status_enum is jaxgd.Status.PRECISION and res.success, res.message
    np.testing.assert_allclose(np.asarray(res.params), RAT43_CERTIFIED, rtol=1e-6)
    np.testing.assert_allclose(float(res.loss), RAT43_RSS, rtol=1e-10)
    assert int(res.nfev) - int(res.ngev) == 1  # (the probe's values: its upward trials' one, where all 20 were spent)


def test_float64_probe_verdict_finds_a_fall_below_float32s_rounding():
    """Reference: the closed form of f = 1 + |x - 1|^2 / 2. At x = 1 + 1e-5 (every entry) its fall to the
    minimum, 1.5e-10, is below f's float32 rounding (6e-8) and far above float64's: a float64 loss's probes,
    in float64 (probe.probe_dtype), find a fall along -x^2 g, on both tiers; the same loss and point in float32
    show none, and neither does x = 1 + 1e-9 in float64 (a fall of 1.5e-18, below its rounding)."""
    f = lambda x: 1.0 + 0.5 * jnp.sum((x - 1.0) ** 2)  # noqa: E731
    vg = jax.jit(jax.value_and_grad(f))
    verdict = jax.jit(lambda x, v, g: probe.probe_verdict(f, jax.value_and_grad(f), x, v, g, jnp.asarray(True)))
    cases = ((jnp.full(3, 1.0 + 1e-5), True), (jnp.full(3, 1.0 + 1e-5, jnp.float32), False),
             (jnp.full(3, 1.0 + 1e-9), False))
    for point, falls in cases:
        value, g = vg(point)
        found, _ = verdict(point, value, g)
        host = host_loop._probe_verdict(lambda y: (*vg(y), None), np.asarray(point), np.asarray(value),
                                        np.asarray(g))
        assert bool(found) == host[0] == falls


def test_a_stall_is_a_verdict_for_cg_in_float32_and_float64():
    """Reference: the definitions. stall.probes_stall holds for a direction with a restart and no
    quasi-Newton model (cg) under a rule with its own stall count (MoreThuente), in float32 and float64,
    without a proximal term; not for bfgs or lbfgs (their models vouch), gd (no restart), 16-bit dtypes, or
    Backtracking (no stall count of its own). The probes' arithmetic is float32, float64 for float64."""
    from jaxgd.directions.registry import resolve
    from jaxgd.linesearch import Backtracking, MoreThuente

    cg, mt = resolve("cg"), MoreThuente()
    for dtype in (jnp.float32, jnp.float64):
        assert stall.probes_stall(cg, mt, dtype, False)
        assert not stall.probes_stall(cg, mt, dtype, True)
        assert not stall.probes_stall(cg, Backtracking(), dtype, False)
        for name in ("bfgs", "lbfgs", "gd"):
            assert not stall.probes_stall(resolve(name), mt, dtype, False)
    for dtype in (jnp.float16, jnp.bfloat16):
        assert not stall.probes_stall(cg, mt, dtype, False)
    assert [probe.probe_dtype(d) for d in (jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64)] == [
        jnp.float32, jnp.float32, jnp.float32, jnp.float64]


def arglinb(x, m=400):
    """Moré, Garbow & Hillstrom's problem 33 (rank-one linear least squares) as sif2jax's ARGLINB writes it
    (n = 200, m = 400): sum_i (sum_j i j x_j - 1)^2."""
    i = jnp.arange(1.0, m + 1)
    return jnp.sum((i * jnp.dot(jnp.arange(1.0, x.shape[0] + 1), x) - 1.0) ** 2)


@pytest.mark.parametrize("tier", ["host", slow_if(True, "compiled")])  # (compiled ~6 s: in make slow)
def test_float64_cg_failed_search_at_arglinbs_minimum_is_a_precision_success(tier):
    """Reference: the closed form of ARGLINB's minimum, m - (sum i)^2 / sum i^2 = 99.6255 (the residual's part
    off the one direction A spans). From x = 1, float64 cg reached it at step 2 and ended LINESEARCH_FAILED
    (success False) on both tiers: at the minimum the gradient is rounding (|g| of 1e-3 to 0.13 from terms of 1e6), its
    search along -g and the retry failed. A failed float64 cg search along -g is now a verdict that
    probe.retry_verdict decides: no kink or fall along -g (probe.line_veto), no fall along -x^2 g: PRECISION."""
    i = np.arange(1.0, 401)
    best = 400 - i.sum() ** 2 / (i**2).sum()
    res = jaxgd.minimize(arglinb, jnp.ones(200), method="cg", tier=tier, gtol=1e-5)
    assert res.status_enum is jaxgd.Status.PRECISION and res.success, res.message
    np.testing.assert_allclose(float(res.loss), best, rtol=1e-12)
    assert int(res.nfev) - int(res.ngev) == 1  # (the probe's values: its upward trials' one, where all 20 were spent)


def test_line_veto_tells_a_kink_and_a_fall_from_a_gradient_of_rounding_on_both_tiers():
    """Reference: the closed forms. On f = |x - 3| + 0.1 |x|^2 at x = 3 the slope along -g jumps from -|g|^2
    to +|g|^2 / 4 at any move: a kink (probe.kink_rises). On f = 1 + sum_i i (x_i - 1)^2 / 2 at x = 0 the line
    along -g falls by |g|^4 / (2 g'Hg) = 2.7 (probe.line_falls). Neither at x = 1 + 1e-9 there (a fall of 3e-18,
    below f's rounding) nor at ARGLINB's minimum (a gradient of rounding, curvature 1e12 times it): the slope
    rises in proportion to the move and the line's fall is below rounding. Two gradient evaluations where due,
    none otherwise; host and compiled agree."""
    kink = lambda x: jnp.sum(jnp.abs(x - 3.0)) + 0.1 * jnp.sum(x**2)  # noqa: E731
    quad = lambda x: 1.0 + 0.5 * jnp.sum(jnp.arange(1.0, 4.0) * (x - 1.0) ** 2)  # noqa: E731
    i = np.arange(1.0, 401)
    on_arglinb = jnp.full(200, (i.sum() / (i**2).sum()) / np.arange(1.0, 201).sum())  # (sum_j j x_j = s*)
    cases = ((kink, jnp.full(3, 3.0), True), (quad, jnp.zeros(3), True), (quad, jnp.full(3, 1.0 + 1e-9), False),
             (arglinb, on_arglinb, False))
    for f, x, want in cases:
        vg = jax.jit(jax.value_and_grad(f))
        value, g = vg(x)
        zero = jnp.zeros((), x.dtype)
        # (``due`` a traced argument, as in the fused loop: one compile a loss serves both values; run eagerly,
        # the not-due call compiled its while loop and every op again)
        veto_fn = jax.jit(lambda x, v, g, due: probe.line_veto(jax.value_and_grad(f), x, v, g, zero, due))
        veto, k = veto_fn(x, value, g, jnp.asarray(True))
        host = host_loop._line_veto(lambda y: (*vg(y), None), np.asarray(x), np.asarray(value), np.asarray(g), 0.0)
        assert bool(veto) == host[0] == want and int(k) == host[1] == len(probe.LINE_MOVES)
        veto, k = veto_fn(x, value, g, jnp.asarray(False))
        assert not bool(veto) and int(k) == 0


def test_a_failed_search_along_minus_g_is_a_verdict_for_float64_cg_only():
    """Reference: the definitions. stall.probes_retry holds for cg under MoreThuente in float64 without a
    proximal term; not in float32 (where such verdicts let points far from their minima through), not for
    bfgs/lbfgs (their models and the restart's rule decide) or gd."""
    from jaxgd.directions.registry import resolve
    from jaxgd.linesearch import MoreThuente

    cg, mt = resolve("cg"), MoreThuente()
    assert stall.probes_retry(cg, mt, jnp.float64, False)
    assert not stall.probes_retry(cg, mt, jnp.float64, True)
    for dtype in (jnp.float32, jnp.float16, jnp.bfloat16):
        assert not stall.probes_retry(cg, mt, dtype, False)
    for name in ("bfgs", "lbfgs", "gd"):
        assert not stall.probes_retry(resolve(name), mt, jnp.float64, False)


@pytest.mark.slow  # (~6 s: make test time)
def test_float64_cg_verdicts_under_vmap_match_each_run():
    """Reference: the unbatched runs (compiled tier) from NIST's two starts for Rat43. Under jax.vmap the float64
    cg verdict's loops (probe.line_veto's, the probe's) run only while a lane is due; each lane ends as its own
    run does: PRECISION at the certified residual sum of squares."""
    starts = jnp.asarray([[100.0, 10.0, 1.0, 1.0], [700.0, 5.0, 0.75, 1.3]])
    run = lambda x0: jaxgd.minimize(rat43, x0, method="cg", gtol=1e-5, history=False)  # noqa: E731
    batched = jax.jit(jax.vmap(run))(starts)
    for i in range(2):
        one = jaxgd.minimize(rat43, starts[i], method="cg", gtol=1e-5, history=False, tier="compiled")
        assert int(batched.status[i]) == int(one.status) == int(jaxgd.Status.PRECISION)
        np.testing.assert_allclose(float(batched.loss[i]), float(one.loss), rtol=1e-12)
        np.testing.assert_allclose(float(one.loss), RAT43_RSS, rtol=1e-10)


UPWARD_A = np.array([1.0, 3.0, 10.0])


def upward_quadratic(x):
    """f = 2 + sum_i a_i (x_i - 1)^2 / 2 (module level: the four cases below share its compiled programs)."""
    return 2.0 + 0.5 * jnp.sum(jnp.asarray(UPWARD_A) * (x - 1.0) ** 2)


UPWARD_VG = jax.jit(jax.value_and_grad(upward_quadratic))
# ``due`` and ``rise`` traced, as in the fused loop: one program for the due and the not-due call
UPWARD = jax.jit(lambda x, v, g, due, rise: probe.probe_descent(upward_quadratic, x, v, g, due, scaled=True, rise=rise))
DOWNWARD = jax.jit(lambda x, v, g: probe.probe_descent(upward_quadratic, x, v, g, jnp.asarray(True), scaled=True))


@pytest.mark.parametrize("scale, falls", [(1e-3, True), (1e-5, True), (1e-6, False), (1e-9, False)])
def test_upward_probe_finds_a_quadratics_fall_where_its_closed_form_does_on_both_tiers(scale, falls):
    """Reference: the closed form of f = 2 + sum_i a_i (x_i - 1)^2 / 2 along -x^2 g from x = 1 + scale,
    f(x - t d) = f - t s + q t^2 / 2 (s = g.d, q = d'Ad, d = x^2 g), on the probe's steps t_0 4^-k, k < 20: a
    step passes where that falls below f - max(t s / 2, tie). From x = 1 + 1e-6 the line falls by 22 times the
    tie tolerance (64 eps f), but its minimiser s / q lies below the shortest step (5.7 times it): no step
    passes. The upward trials (probe.probe_descent with ``rise``, a float64 cg verdict's) find a fall where the
    closed form does, as the downward trials do, and where it does not they stop at the first trial, which
    rises: one evaluation where the downward trials spend all probe.PROBES. Host and compiled take the same
    trials."""
    a, vg = UPWARD_A, UPWARD_VG
    x = 1.0 + scale * jnp.asarray([1.0, -0.5, 0.25])
    value, g = vg(x)
    d = np.asarray(x) ** 2 * np.asarray(g)
    s, q = float(np.dot(np.asarray(g), d)), float(np.dot(d, np.asarray(a) * d))
    tie = 64 * np.finfo(np.float64).eps * float(value)
    steps = float(value) / s * 0.25 ** np.arange(probe.PROBES)
    passes = [t * s - q * t * t / 2 > max(t * s / 2, tie) for t in steps]
    assert any(passes) == falls
    found, k = UPWARD(x, value, g, jnp.asarray(True), jnp.zeros(()))
    down, k_down = DOWNWARD(x, value, g)
    host = host_loop._probe_scaled(lambda y: (*vg(y), None), np.asarray(x), np.asarray(value), np.asarray(g),
                                   rise=0.0)
    assert bool(found) == bool(down) == host[0] == falls
    assert int(k) == host[1]
    if falls:  # (the first passing step from below: the shortest)
        assert int(k) == probe.PROBES - max(i for i, p in enumerate(passes) if p)
    else:
        assert int(k) == 1 and int(k_down) == probe.PROBES
    found, k = UPWARD(x, value, g, jnp.asarray(False), jnp.zeros(()))
    assert not bool(found) and int(k) == 0
