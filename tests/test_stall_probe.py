"""A window rule's PRECISION success needs a probe along -g that finds no fall (jaxgd.core.stall).

In float16 and bfloat16 the norm test's ``sqrt(eps)`` (0.03, 0.09) lets the start of a quadratic
pass it, in float32 (3.5e-4) a start far enough from the minimiser; a full window or a failed step
under an adaptive rule (in 16 bits also under a search; never under a schedule) is then checked by
``probe.probe_descent``.
References: NumPy's float64 least squares, the closed-form minimiser of a quadratic, and a count
of the loss's evaluations taken on the host (``jax.debug.callback``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import linesearch
from jaxgd.core import probe, stall
from conftest import probe_trials_at_a_minimum

RNG = np.random.default_rng(0)
A = RNG.normal(size=(50, 4))
X_TRUE = np.array([30.0, -20.0, 10.0, 5.0])  # far from x0 = 0: sqrt(eps) |f| / ||g|| at x0 is 1.6 in bfloat16
B = A @ X_TRUE


def lstsq(dtype, scale=1.0):
    a, b = jnp.asarray(scale * A, dtype), jnp.asarray(scale * B, dtype)
    return lambda x: 0.5 * jnp.mean((a @ x - b) ** 2)


def wrong_gradient():
    """``sum (x - 1)^2`` whose custom gradient is wrong (zero at x = 1/6, not at the minimiser x = 1)."""

    @jax.custom_vjp
    def f(x):
        return jnp.sum((x - 1.0) ** 2)

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * (0.6 * (x - 1.0) + 0.5),))
    return f


# (problem, rule, reference minimiser): each of these ended PRECISION far from its minimiser before
# the probe in bfloat16, most in float16 too (Polyak() 30 units from the answer; ReduceOnPlateau on the
# wrong gradient at x = 0.16; the least squares scaled by 1e-2, f = 0.06 at x0, with the searches at or
# near x0).
CASES = [
    ("lstsq", lambda: linesearch.Polyak(), X_TRUE),
    ("wrong", lambda: linesearch.ReduceOnPlateau(0.1), np.ones(4)),
    ("small", lambda: linesearch.Backtracking(), X_TRUE),
    ("small", lambda: linesearch.Exact(), X_TRUE),
]


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bfloat16", "float16"])
@pytest.mark.parametrize("problem,rule,answer", CASES, ids=["lstsq-Polyak", "wrong-plateau", "small-Backtracking", "small-Exact"])
def test_a_16_bit_precision_success_is_at_the_answer(problem, rule, answer, dtype):
    fun = {"lstsq": lambda: lstsq(dtype), "small": lambda: lstsq(dtype, 1e-2), "wrong": wrong_gradient}[problem]()
    res = jaxgd.minimize(fun, jnp.zeros(4, dtype), method="gd", lr=rule(), max_steps=1000)
    assert res.params.dtype == dtype
    # reference: NumPy's float64 least squares (X_TRUE solves it exactly) or the closed form x = 1
    err = np.abs(np.asarray(res.params, np.float64) - answer).max()
    assert not res.success and err > 0.5, (res.status_enum, err)  # it is far from the answer, and says so


@pytest.mark.parametrize("rule", [lambda: linesearch.Polyak(f_star=0.0), lambda: linesearch.BarzilaiBorwein(), lambda: 1.0],
                         ids=["Polyak-f_star", "BB", "constant"])
def test_float16_least_squares_at_its_answer_is_still_a_precision_success(rule):
    res = jaxgd.minimize(lstsq(jnp.float16), jnp.zeros(4, jnp.float16), method="gd", lr=rule(), max_steps=3000)
    assert res.status_enum is jaxgd.Status.PRECISION, res.message
    # reference: the float64 answer, to float16's resolution at |x| = 30 (an ulp is 0.016)
    np.testing.assert_allclose(np.asarray(res.params, np.float64), X_TRUE, atol=0.05)


def test_the_probes_evaluations_are_counted_in_nfev():
    calls = []
    a, b = jnp.asarray(A, jnp.bfloat16), jnp.asarray(B, jnp.bfloat16)

    def fun(x):
        jax.debug.callback(lambda: calls.append(1))
        return 0.5 * jnp.mean((a @ x - b) ** 2)

    res = jaxgd.minimize(fun, jnp.zeros(4, jnp.bfloat16), method="gd", lr=linesearch.Polyak(), max_steps=450, history=False)
    jax.effects_barrier()
    # reference: the evaluations counted on the host; one a step, one at x0, the rest the probes'
    assert int(res.nfev) == len(calls)
    assert int(res.nfev) > int(res.steps) + 1


@pytest.mark.slow
def test_probe_descent_finds_a_slope_far_away_and_none_at_the_answer():
    fun = lstsq(jnp.bfloat16)
    far = jnp.zeros(4, jnp.bfloat16)
    at = jnp.asarray(X_TRUE, jnp.bfloat16)  # exact in bfloat16: the float64 answer itself
    ks = []
    for x, expect in [(far, True), (at, False)]:
        f, g = jax.value_and_grad(fun)(x)
        found, k = jax.jit(probe.probe_descent, static_argnums=0)(fun, x, f, g, jnp.asarray(True))
        ks.append(int(k))
        assert bool(found) is expect
        # far away the first trials fall; at the answer (16 bits) the trials run down to the first one
        # no longer than the least move: counted here in a plain loop over t_0 4^-k (session 42)
        longer = probe_trials_at_a_minimum(f, g, g, x, jnp.bfloat16)
        assert 1 <= int(k) < probe.PROBES if expect else (int(k) == longer and 1 <= longer < probe.PROBES)
        # not due: no evaluation at all
        found, k = probe.probe_descent(fun, x, f, g, jnp.asarray(False))
        assert not bool(found) and int(k) == 0
    # under vmap the loop runs per lane: a far lane and a lane at the answer, as one by one
    xs = jnp.stack([far, at])
    fs, gs = jax.vmap(jax.value_and_grad(fun))(xs)
    found, k = jax.vmap(lambda x, f, g: probe.probe_descent(fun, x, f, g, jnp.asarray(True)))(xs, fs, gs)
    assert [bool(v) for v in found] == [True, False] and [int(v) for v in k] == ks


def test_vmapped_16_bit_runs_equal_the_runs_one_by_one():
    fun = lstsq(jnp.bfloat16)
    lrs = jnp.asarray([0.05, 0.5], jnp.float32)
    run = lambda lr: jaxgd.minimize(fun, jnp.zeros(4, jnp.bfloat16), method="gd", lr=lr, max_steps=600, history=False)  # noqa: E731
    batched = jax.jit(jax.vmap(run))(lrs)
    for i, lr in enumerate([0.05, 0.5]):
        one = run(lr)
        assert int(batched.status[i]) == int(one.status) and int(batched.steps[i]) == int(one.steps)
        assert int(batched.nfev[i]) == int(one.nfev)
        np.testing.assert_array_equal(np.asarray(batched.params[i], np.float32), np.asarray(one.params, np.float32))


@pytest.mark.slow
def test_a_search_that_stops_an_ulp_or_two_from_the_answer_stays_a_precision_success():
    # f ~ 1e-6 there, and the next grid point towards the answer halves it: a fall the probe does not
    # count (probe.PROBE_ULPS); Barzilai-Borwein and StrongWolfe in float16, A scaled by 0.1 and 0.01
    for rule, scale, dtype in [(linesearch.BarzilaiBorwein(), 0.1, jnp.float16), (linesearch.StrongWolfe(), 1e-2, jnp.bfloat16)]:
        res = jaxgd.minimize(lstsq(dtype, scale), jnp.zeros(4, dtype), method="gd", lr=rule, max_steps=3000)
        assert res.status_enum is jaxgd.Status.PRECISION, (rule, res.message)
        # reference: the float64 answer, to two of the dtype's ulps at |x| = 30
        ulp = 30 * float(jnp.finfo(dtype).eps)
        np.testing.assert_allclose(np.asarray(res.params, np.float64), X_TRUE, atol=2 * ulp)


@pytest.mark.parametrize("rule", [lambda: linesearch.Polyak(), lambda: linesearch.ReduceOnPlateau(1e-6)], ids=["Polyak", "plateau"])
def test_float32_adaptive_rule_that_sat_at_x0_is_not_a_precision_success(rule, x64_off):
    # 1/2 sum_i i (x_i - 1e4)^2 from 0: f = 5e8, whose ulp (32) hides Polyak's 0.01 and the plateau's
    # 1e-6 steps; at x0 ||g|| max(||x||, 1) / |f| = 1.1e-4 is under float32's sqrt(eps) = 3.5e-4
    fun = lambda x: 0.5 * jnp.sum((x - 1e4) ** 2 * jnp.arange(1, 5))  # noqa: E731
    res = jaxgd.minimize(fun, jnp.zeros(4), method="gd", lr=rule(), max_steps=1000)
    assert res.params.dtype == jnp.float32
    # reference: the closed-form minimiser x = 1e4, some 1e4 away
    assert np.abs(np.asarray(res.params, np.float64) - 1e4).max() > 1e3
    # Polyak's run goes on; the plateau's rule cut its rate twice without a fall: a stall (exhausted)
    expected = jaxgd.Status.STALLED if hasattr(rule(), "exhausted") else jaxgd.Status.MAX_STEPS
    assert not res.success and res.status_enum is expected, res.message


def test_schedules_and_float32_searches_keep_their_program_without_a_probe():
    # the probe is traced for the adaptive rules and the 16-bit searches; not for a schedule, whose step
    # never fails (the most common program, benchmark A's), nor a float32 search; float64 never (no window)
    traced = jnp.asarray(True)  # a StepInfo.failed that is not a constant False: a step that can fail
    assert stall.probes(linesearch.Polyak(), jnp.float32, False, traced) and stall.probes(linesearch.BarzilaiBorwein(), jnp.float32, False, traced)
    assert not stall.probes(linesearch.Backtracking(), jnp.float32, False, traced)
    assert stall.probes(linesearch.Backtracking(), jnp.float16, False, traced)
    schedule = jaxgd.Solver(lambda x: jnp.sum(x**2), "gd", lr=0.1).rule
    assert not stall.probes(schedule, jnp.float32, False, False) and not stall.probes(schedule, jnp.bfloat16, False, False)
    assert not stall.probes(linesearch.Polyak(), jnp.float64, False, traced)
    assert not stall.probes(linesearch.Polyak(), jnp.float32, True, traced)  # (a proximal term: the probe runs along -g)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_a_plateau_whose_rate_fell_to_nothing_stops_stalled(dtype):
    # random least squares (40 x 3): the rule cuts its rate to 0 some ulps from the answer, where a probe
    # along -g still finds a fall; the run sat there until max_steps (3,000 steps). Now, once the rule
    # is exhausted (two cuts, no improvement) a full window is a stall: a failure, and the point it had.
    r = np.random.default_rng(0)
    a = r.normal(size=(40, 3))
    b = a @ (3 * r.normal(size=3)) + 0.3 * r.normal(size=40)
    ad, bd = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
    fun = lambda v: 0.5 * jnp.mean((ad @ v - bd) ** 2)  # noqa: E731
    rule = linesearch.ReduceOnPlateau(0.1)
    res = jaxgd.minimize(fun, jnp.zeros(3, dtype), method="gd", lr=rule, max_steps=3000)
    assert res.status_enum is jaxgd.Status.STALLED and not res.success, res.message
    assert "ReduceOnPlateau: see min_lr" in res.message  # (the message names this cause too)
    assert res.steps <= 400 and res.nfev <= 450, (res.steps, res.nfev)
    # reference: the same run with the stops off (gtol=0: all 3,000 steps) ends at the same point
    full = jaxgd.minimize(fun, jnp.zeros(3, dtype), method="gd", lr=rule, max_steps=3000, gtol=0.0)
    assert full.status_enum is jaxgd.Status.MAX_STEPS
    np.testing.assert_array_equal(np.asarray(res.params), np.asarray(full.params))
    # ... some ulps from NumPy's float64 least-squares answer
    answer = np.linalg.lstsq(a, b, rcond=None)[0]
    err = np.abs(np.asarray(res.params, np.float64) - answer).max()
    assert err <= 16 * float(jnp.finfo(dtype).eps) * np.abs(answer).max()


def test_a_plateau_held_at_its_min_lr_goes_on(x64_off):
    # float32 |x - 3| + 0.1 ||x||^2 (minimum 2.7 at x = 3, the closed form): the rule cuts 0.1 -> 1e-3 and
    # holds there; 100 steps without a new low come early, but the run still falls from 2.78 to 2.7009
    # (a stop there would lose that): a rate held at a positive min_lr is not exhausted.
    fun = lambda x: jnp.sum(jnp.abs(x - 3.0)) + 0.1 * jnp.sum(x**2)  # noqa: E731
    rule = linesearch.ReduceOnPlateau(0.1, min_lr=1e-3)
    res = jaxgd.minimize(fun, jnp.zeros(3), method="gd", lr=rule, max_steps=5000)
    assert res.status_enum is jaxgd.Status.MAX_STEPS and float(res.loss) < 2.702, (res.message, float(res.loss))
    # without the floor the rate falls to nothing and the same window is a stall, with the point it had
    res = jaxgd.minimize(fun, jnp.zeros(3), method="gd", lr=linesearch.ReduceOnPlateau(0.1), max_steps=5000)
    assert res.status_enum is jaxgd.Status.STALLED and res.steps < 500, (res.message, res.steps)


@pytest.mark.alternate("dtype")  # (both dtypes of each method in make slow)
@pytest.mark.parametrize("method", ["bfgs", "cg", "lbfgs"])
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
def test_a_16_bit_more_thuente_stop_that_the_norm_test_passes_is_probed(method, dtype):
    # least squares scaled by 1e-2 (zero residual at X_TRUE): float16 bfgs stopped PRECISION at f = 0.011,
    # 13 units from the answer, cg at f = 3.5e-4, 2 units away; the norm test's sqrt(eps) max(|f|, 1) = 0.03
    # passed them, and f falls to 0 along the segment to X_TRUE. A probe along -x^2 g (bfgs, lbfgs) or -g
    # (cg) now finds that fall: an honest failure where the search can go no further, a success at the answer.
    res = jaxgd.minimize(lstsq(dtype, 1e-2), jnp.zeros(4, dtype), method=method, max_steps=3000)
    # reference: the closed-form answer X_TRUE (b = A X_TRUE), to 4 of the dtype's ulps at |x| = 30 (eps 30 = 2 ulps)
    near = np.abs(np.asarray(res.params, np.float64) - X_TRUE).max() <= 2 * 30 * float(jnp.finfo(dtype).eps)
    assert res.success == near, (res.message, np.asarray(res.params, np.float64))
    if method != "lbfgs":
        assert not res.success  # (bfgs and cg stop early here: the cases above)
    else:
        assert res.success  # (lbfgs reaches the answer: the probe costs evaluations, not the success)
