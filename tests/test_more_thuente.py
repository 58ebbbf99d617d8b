"""MoreThuente (issue 13): the same trials as MINPACK-2's dcsrch in scipy, and scipy's CG counts.

References: scipy.optimize._linesearch.scalar_search_wolfe1 (scipy's port of
MINPACK-2 dcsrch) on the test functions of Moré & Thuente (1994), section 5;
scipy.optimize.minimize(method="CG") on scipy's own max-entropy problem.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize._linesearch import scalar_search_wolfe1

import jaxgd
from jaxgd import linesearch as ls
from jaxgd.core.stepsize import StepContext, Trial
from jaxgd.linesearch.more_thuente import MoreThuenteState
from conftest import slow_if


class _x64:
    def __enter__(self):
        self.old = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)

    def __exit__(self, *exc):
        jax.config.update("jax_enable_x64", self.old)


# Moré & Thuente (1994), section 5: (phi, c1, c2) with phi(alpha) for alpha >= 0.
def phi1(a):
    return -a / (a**2 + 2.0)


def phi2(a):
    return (a + 0.004) ** 5 - 2.0 * (a + 0.004) ** 4


def phi3(a):
    beta = 0.01
    base = jnp.where(a <= 1 - beta, 1 - a, jnp.where(a >= 1 + beta, a - 1, (a - 1) ** 2 / (2 * beta) + beta / 2))
    return base + 2 * (1 - beta) / (39 * math.pi) * jnp.sin(39 * math.pi * a / 2)


# (the paper takes c1 = c2 = 0.1 for phi2 and phi3; we require c1 < c2 and use 0.05)
CASES = [(phi1, 1e-3, 0.1), (phi2, 0.05, 0.1), (phi3, 0.05, 0.1)]
STARTS = [1e-3, 1e-1, 10.0, 1e3]


def our_search(phi, c1, c2, start):
    """One MoreThuente search along d = start from x = 0 (unit first trial): (alpha * start, nfev)."""
    alpha, nfev, failed = _search(phi, c1, c2, jnp.asarray(start))
    return float(alpha) * start, int(nfev), bool(failed)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _search(phi, c1, c2, start):
    """The search, compiled once per function and constants (``start`` is traced)."""
    f = lambda x: phi(x[0])  # noqa: E731
    x = jnp.zeros(1)
    d = jnp.full(1, start)
    value, grad = jax.value_and_grad(f)(x)

    def evaluate(alpha):
        p = x + alpha * d
        v, g = jax.value_and_grad(f)(p)
        return Trial(p, v, g, None)

    ctx = StepContext(jnp.asarray(1, jnp.int32), x, value, grad, d, jnp.vdot(grad, d), evaluate, lambda a: f(x + a * d))
    rule = ls.MoreThuente(c1=c1, c2=c2, xtol=1e-14, approx_rtol=0.0, max_iter=100)
    state = MoreThuenteState(value, jnp.asarray(True), jnp.asarray(0, jnp.int32))
    alpha, _, _, info = rule.step(state, ctx)
    return alpha, info.nfev, info.failed


def scipy_search(phi, c1, c2, start):
    """scipy's dcsrch on phi(start * a), first trial a = 1: (the step in alpha, evaluations)."""
    calls = []
    f = lambda a: float(phi(jnp.asarray(start * a)))  # noqa: E731
    df = lambda a: float(start * jax.grad(phi)(jnp.asarray(start * a)))  # noqa: E731

    def counted(a):
        calls.append(a)
        return f(a)

    a, _, _ = scalar_search_wolfe1(counted, df, phi0=f(0.0), derphi0=df(0.0), c1=c1, c2=c2, amax=1e10, amin=0.0, xtol=1e-14)
    return None if a is None else a * start, len(calls)


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_trials_match_scipy_dcsrch_on_the_more_thuente_functions(case, start):
    with _x64():
        phi, c1, c2 = CASES[case]
        ours, nfev, failed = our_search(phi, c1, c2, start)
        ref, ref_nfev = scipy_search(phi, c1, c2, start)
    assert ref is not None and not failed
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    assert nfev == ref_nfev
    # and the accepted step meets the strong Wolfe conditions (closed-form check)
    g = jax.grad(phi)
    assert float(phi(ours)) <= float(phi(0.0)) + c1 * ours * float(g(0.0)) + 1e-15
    assert abs(float(g(ours))) <= c2 * abs(float(g(0.0))) + 1e-15


# scipy/optimize/tests/test_optimize.py, CheckOptimize: the max-entropy problem (Berger et al. 1996).
F = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 1], [1, 0, 0], [1, 0, 0]], float)
K = np.array([1.0, 0.3, 0.5])
SOLUTION = np.array([0.0, -0.524869316, 0.487525860])


def maxent(x):
    log_pdot = jnp.asarray(F) @ x
    return jax.scipy.special.logsumexp(log_pdot) - jnp.asarray(K) @ x


def test_cg_on_scipys_max_entropy_problem_needs_no_more_evaluations_than_scipy():
    with _x64():
        vg = jax.jit(jax.value_and_grad(maxent))
        ref = so.minimize(lambda x: tuple(np.asarray(v) for v in vg(jnp.asarray(x))), np.zeros(3), jac=True, method="CG")
        res = jaxgd.minimize(maxent, jnp.zeros(3), method="cg", gtol=1e-5, history=False)
        assert ref.success and res.success
        # f does not depend on x[0] (F's first column is constant and K[0] = 1): compare x[1:]
        np.testing.assert_allclose(float(res.loss), ref.fun, rtol=1e-9)
        np.testing.assert_allclose(np.asarray(res.params)[1:], SOLUTION[1:], atol=1e-4)
        assert int(res.nfev) <= ref.nfev, (int(res.nfev), ref.nfev)
        assert int(res.nfev) < 24  # the StrongWolfe default needed 24 (issue 13)


@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
def test_quasi_newton_on_rosenbrock_needs_no_more_evaluations_than_scipy(method):
    with _x64():
        f = lambda x: 100.0 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2  # noqa: E731
        vg = jax.jit(jax.value_and_grad(f))
        x0 = np.array([-1.2, 1.0])
        ref = so.minimize(lambda x: tuple(np.asarray(v) for v in vg(jnp.asarray(x))), x0, jac=True,
                          method={"bfgs": "BFGS", "lbfgs": "L-BFGS-B"}[method])
        res = jaxgd.minimize(f, jnp.asarray(x0), method=method, gtol=1e-5, history=False)
        assert res.status_enum is jaxgd.Status.GTOL
        np.testing.assert_allclose(res.params, [1.0, 1.0], rtol=1e-5)
        assert int(res.nfev) <= 1.1 * ref.nfev, (int(res.nfev), ref.nfev)


@pytest.mark.parametrize("make,name", [
    (lambda: ls.MoreThuente(c1=0.0), "c1"),
    (lambda: ls.MoreThuente(c1=0.5, c2=0.4), "c2"),
    (lambda: ls.MoreThuente(xtol=-1.0), "xtol"),
    (lambda: ls.MoreThuente(initial=0.0), "initial"),
    (lambda: ls.MoreThuente(max_iter=0), "max_iter"),
    (lambda: ls.MoreThuente(start="cubic"), "start"),
    (lambda: ls.MoreThuente(stall_window=0), "stall_window"),
])
def test_bad_more_thuente_arguments_raise_naming_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.slow
def test_new_more_thuente_values_do_not_retrace_and_vmap_over_c1():
    with _x64():
        traces = []

        def f(x):
            traces.append(1)
            return jnp.sum((x - 2.0) ** 2) + jnp.sum(jnp.cos(x))

        x0 = jnp.zeros(3)
        run = jax.jit(lambda s, x: s.run(x))
        a = run(jaxgd.Solver(f, "lbfgs", lr=ls.MoreThuente(c1=1e-4), history=False), x0)
        n = len(traces)
        b = run(jaxgd.Solver(f, "lbfgs", lr=ls.MoreThuente(c1=1e-3), history=False), x0)
        assert len(traces) == n
        np.testing.assert_allclose(a.params, b.params, rtol=1e-8)
        batched = jax.vmap(lambda c1: jaxgd.Solver(f, "lbfgs", lr=ls.MoreThuente(c1=c1), history=False).run(x0))(
            jnp.array([1e-4, 1e-3])
        )
        np.testing.assert_allclose(batched.params, np.stack([a.params, b.params]), rtol=1e-8)


def test_a_trial_at_the_current_point_ends_the_search():
    """At x = 1e16 (float64 spacing 2) a step of alpha * d with |d| = 1e-3 and alpha <= 1 lands on x
    itself: the first trial evaluates the current point, which says nothing new, and the search
    ends there (failed: no trial lowered f) instead of shrinking alpha until max_iter. Reference:
    the point arithmetic, x + alpha d == x, checked here."""
    with _x64():
        x = jnp.full(2, 1e16)
        d = jnp.full(2, -1e-3)
        assert bool(jnp.all(x + 1.0 * d == x))
        f = lambda p: jnp.sum((p - 3.0) ** 2) * 1e-32  # noqa: E731  (a descent direction at x)
        value, grad = jax.value_and_grad(f)(x)
        calls = []

        def evaluate(alpha):
            p = x + alpha * d
            jax.debug.callback(lambda: calls.append(1))
            v, g = jax.value_and_grad(f)(p)
            return Trial(p, v, g, None)

        ctx = StepContext(jnp.asarray(1, jnp.int32), x, value, grad, d, jnp.vdot(grad, d), evaluate, lambda a: f(x + a * d))
        state = MoreThuenteState(value, jnp.asarray(True), jnp.asarray(0, jnp.int32))
        assert float(ctx.slope) < 0
        alpha, _, _, info = ls.MoreThuente(max_iter=30).step(state, ctx)
        jax.effects_barrier()
        assert bool(info.failed) and int(info.nfev) == 1 and len(calls) == 1


@pytest.mark.alternate("tier")  # (every tier in make slow)
@pytest.mark.parametrize("tier", ["host", "compiled"])
def test_a_trial_that_repeats_the_best_one_ends_the_search(tier):
    """A line f(t) = -t with a jump of 1e6 (invisible to the gradient: stop_gradient) at t = 0.3,
    from x = 1e8 (float64 spacing 1.5e-8) along d = 1: once a trial below the jump is the best,
    dcstep's cubic through the jump lands a hair past it, below the rounding of x, and the next
    trial is the best point again, with its value and slope bit for bit. The search ends there
    with that point (8 evaluations; before session 22 it went on to max_iter = 30, evaluating
    such repeats every other trial). Reference: the point arithmetic (the last two trials are the
    same float) and the host tier's trials against the compiled search's count and step."""
    from jaxgd.host import search as host_search

    with _x64():
        f = lambda v: -(v[0] - 1e8) + jax.lax.stop_gradient(jnp.where(v[0] >= 1e8 + 0.3, 1e6, 0.0))  # noqa: E731
        vg = jax.value_and_grad(f)
        rule = ls.MoreThuente()
        x, d = jnp.array([1e8]), jnp.array([1.0])
        value, g = vg(x)
        state = rule.init(x, value, g)._replace(started=jnp.asarray(True))  # a unit first trial
        if tier == "host":
            xn, dn, points = np.asarray(x), np.asarray(d), []

            def evaluate(t):
                p = xn + t * dn
                points.append(float(p[0]))
                v, gt = vg(jnp.asarray(p))
                return host_search.Trial(p, np.asarray(v)[()], np.asarray(gt), None)

            hctx = host_search.Context(xn, np.asarray(value)[()], np.asarray(g), dn, np.dot(np.asarray(g), dn), evaluate)
            with np.errstate(all="ignore"):
                alpha, _, _, (nfev, _, failed, _) = host_search.Search(rule, np.dtype(np.float64), xn).step(
                    type(state)(*(np.asarray(v)[()] for v in state)), hctx)
            assert points[-1] == points[-2] and len(set(points)) == len(points) - 1  # one repeat, the last
        else:
            def run(x, d):  # x and d as arguments: closure constants let XLA fold x + t d - 1e8 into t
                ctx = StepContext(jnp.asarray(1, jnp.int32), x, value, g, d, jnp.vdot(g, d),
                                  lambda t: Trial(x + t * d, *vg(x + t * d), None), lambda t: f(x + t * d), unit_grad=True)
                return rule.step(state, ctx)

            alpha, _, _, info = jax.jit(run)(x, d)
            nfev, failed = info.nfev, info.failed
        assert int(nfev) == 8 and not bool(failed)
        np.testing.assert_allclose(float(alpha), 0.25000030208329554, rtol=1e-15)


@pytest.mark.slow
def test_float32_interpolated_first_trial_is_no_shorter_than_a_step_that_moves_x(x64_off):
    """Reference: closed forms. f = ||x - 3||^2 - 8 from x = (1, 1) (f = 0), d = -g = (4, 4), with
    f_{k-1} = 1e-12: eq. 3.60's first trial (1.01 * 2 (f_k - f_{k-1}) / phi'(0), scipy's CG and BFGS)
    is 6e-14, which moves x by 2.5e-13, under half an ulp of 1 (6e-8): the trial was x itself, and
    the search failed at a point where f falls steeply. In float32 the first trial is now at least
    eps / max|d_i / x_i| (one ulp of the entry it moves most), and the search finds the Wolfe step
    (alpha = 1/2 is the line's minimiser); the host tier's search picks the same first trial."""
    from jaxgd.host import search as host_search
    from jaxgd.linesearch.more_thuente import shortest_move

    f = lambda x: jnp.sum((x - 3.0) ** 2) - 8.0  # noqa: E731
    x = jnp.ones(2, jnp.float32)
    value, grad = jax.value_and_grad(f)(x)
    d = -grad
    evaluate = lambda a: Trial(x + a * d, *jax.value_and_grad(f)(x + a * d), None)  # noqa: E731
    ctx = StepContext(jnp.asarray(1, jnp.int32), x, value, grad, d, jnp.vdot(grad, d), evaluate, lambda a: f(x + a * d))
    state = MoreThuenteState(value + jnp.float32(1e-12), jnp.asarray(True), jnp.asarray(0, jnp.int32))
    rule = ls.MoreThuente(c1=1e-4, c2=0.4, start="interpolate", fallback=True, min_move=True)  # cg's search
    eps = float(np.finfo(np.float32).eps)
    first = rule.first_trial(state, ctx)
    assert float(first) == np.float32(eps / 4.0) == float(shortest_move(x, d, np.float32))
    assert not bool(jnp.all(x + first * d == x))
    alpha, trial, _, info = rule.step(state, ctx)
    assert not bool(info.failed) and float(trial.value) < float(value)
    np.testing.assert_allclose(float(alpha), 0.5, rtol=1e-3)
    host_ctx = host_search.Context(np.asarray(x), np.asarray(value)[()], np.asarray(grad), np.asarray(d),
                                   np.asarray(ctx.slope)[()], None)
    host_state = MoreThuenteState(np.float32(value + np.float32(1e-12)), np.bool_(True), np.int32(0))
    assert host_search.first_trial(np.float32(1.0), True, host_state, host_ctx, True) == first
    # without min_move (bfgs's search: scipy's trial) the first trial is eq. 3.60's on both tiers
    plain = ls.MoreThuente(c1=1e-4, c2=0.9, start="interpolate", fallback=True)
    assert float(plain.first_trial(state, ctx)) == float(host_search.first_trial(np.float32(1.0), True, host_state, host_ctx)) < 1e-12


def test_float32_floored_first_trial_goes_past_the_cap_where_the_cap_moves_nothing(x64_off):
    """Reference: closed forms. f = ||x - 3||^2 at x = (3 + 2^-20, 3) along d = (-2^-24, 0): the
    capped first trial (1) moves x[0] by a quarter of its ulp (2^-22): x + d is x, and the search
    ended there having learnt nothing (float16 least squares at its answer: LINESEARCH_FAILED every
    search). The floor eps / max|d_i / x_i| = 2 x[0] (about 6) is now the first trial even past
    the cap, on both tiers; it moves x."""
    from jaxgd.host import search as host_search
    from jaxgd.linesearch.more_thuente import shortest_move

    f = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    x = jnp.asarray([3.0 + 2.0 ** -20, 3.0], jnp.float32)
    value, grad = jax.value_and_grad(f)(x)
    d = jnp.asarray([-(2.0 ** -24), 0.0], jnp.float32)
    evaluate = lambda a: Trial(x + a * d, *jax.value_and_grad(f)(x + a * d), None)  # noqa: E731
    ctx = StepContext(jnp.asarray(1, jnp.int32), x, value, grad, d, jnp.vdot(grad, d), evaluate, lambda a: f(x + a * d))
    assert bool(jnp.all(x + d == x))  # the cap's trial is x itself
    state = MoreThuenteState(value + jnp.float32(1.0), jnp.asarray(True), jnp.asarray(0, jnp.int32))
    rule = ls.MoreThuente(c1=1e-4, c2=0.4, start="interpolate", fallback=True, min_move=True)  # cg's search
    first = rule.first_trial(state, ctx)
    move = float(shortest_move(x, d, np.float32))
    eps = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(move, eps * float(x[0]) / 2.0 ** -24, rtol=1e-6)
    assert float(first) == move > 1.0
    assert not bool(jnp.all(x + first * d == x))
    host_ctx = host_search.Context(np.asarray(x), np.asarray(value)[()], np.asarray(grad), np.asarray(d),
                                   np.asarray(ctx.slope)[()], None)
    host_state = MoreThuenteState(np.float32(value + np.float32(1.0)), np.bool_(True), np.int32(0))
    assert host_search.first_trial(np.float32(1.0), True, host_state, host_ctx, True) == first


def test_repeats_best_with_apart_takes_farther_trials_for_other_points():
    """Reference: the definition. Equal value and slope bit for bit are the best trial's point only
    where the two steps are closer than ``apart`` (a step that moves x by an ulp); farther apart
    they are two points whose value and slope a coarse type rounds alike (bfloat16)."""
    from jaxgd.linesearch.dcsrch import repeats_best

    assert bool(repeats_best(1.0, -2.0, 1.0, 1.0, -2.0))  # without apart: as before
    assert bool(repeats_best(1.0, -2.0, 1.0, 1.0, -2.0, 1.5, 1.0))
    assert not bool(repeats_best(1.0, -2.0, 1.0, 1.0, -2.0, 5.0, 1.0))
    assert not bool(repeats_best(1.0, -2.0, 0.0, 1.0, -2.0, 0.5, 1.0))  # stx = 0: no best trial yet
    assert bool(repeats_best(np.float32(1.0), np.float32(-2.0), np.float32(1.0), np.float32(1.0), np.float32(-2.0),
                             np.float32(1.5), np.float32(1.0)))  # NumPy scalars, as the host tier's


@pytest.mark.parametrize("method, tier", [
    slow_if(True, "cg", "compiled"), ("cg", "host"), slow_if(True, "bfgs", "compiled")])
def test_a_step_longer_than_1e10_is_taken_as_scipys_searches_take_it(method, tier):
    """Reference: the closed-form minimiser y* = 1e6 of 0.5 s^2 ||y - y*||^2 with s = 1e-6 (a variable
    scaled by 1e-6), whose exact line search step along -g is 1 / s^2 = 1e12. scipy's BFGS and CG pass
    their Moré-Thuente search ``amax=1e100``; jaxgd capped steps at MINPACK-2's 1e10: ``cg`` ended
    MAX_STEPS here at y = 0.02 after 20 steps, ``bfgs`` took 4 steps (and ``cg`` on Rosenbrock with
    x = 1e-6 y ended MAX_STEPS where scipy's CG ends 7e-5 from y*: the scale review, session 59).
    Now ``cg`` takes the exact step at once, ``bfgs`` in its second step."""
    s, target = 1e-6, 1e6
    f = lambda y: 0.5 * s**2 * jnp.sum((y - target) ** 2)  # noqa: E731
    res = jaxgd.minimize(f, jnp.zeros(3), method=method, gtol=1e-10, max_steps=20, tier=tier)
    assert res.status_enum is jaxgd.Status.GTOL, (res.status_enum, res.params)
    assert int(res.steps) <= 2
    np.testing.assert_allclose(res.params, target, rtol=1e-12)
    assert max(np.asarray(res.history.lr)[: int(res.steps)]) > 1e10
