"""scipy's second line search (``jaxgd.linesearch.zoom``) and ``MoreThuente(fallback=True)``.

References: scipy's own ``scalar_search_wolfe2`` (``scipy/optimize/_linesearch.py``) on scalar
functions: the same accepted step and the same number of evaluations, from the shared core run
with ``jax.numpy`` and with NumPy (the host tier's); scipy's BFGS and CG on problems where their
first search (``line_search_wolfe1``) fails or CG rejects its step: the same iterations,
evaluations and answer.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize._linesearch import scalar_search_wolfe2

import jaxgd
from benchmarks._util import x64_context
from jaxgd.linesearch import zoom


def _x64():
    return x64_context()


def run_zoom(phi, dphi, a1, c1=1e-4, c2=0.9, ok=lambda a: True, xp=np, amax=1e10):
    """The search of MoreThuente._zoom / host Search.zoom over ``zoom.update``: (alpha or None, evaluations)."""
    f0, g0 = np.float64(phi(0.0)), np.float64(dphi(0.0))
    z, a, n = zoom.start(f0, g0, xp), np.float64(a1), 0
    with np.errstate(all="ignore"):  # as the host tier runs it (Inf * 0 in a selection not taken)
        return _run(phi, dphi, ok, f0, g0, z, a, n, c1, c2, amax, xp)


def _run(phi, dphi, ok, f0, g0, z, a, n, c1, c2, amax, xp):
    while True:
        n += 1
        z, nxt, found, failed = zoom.update(z, a, np.float64(phi(a)), np.float64(dphi(a)), np.bool_(ok(a)), f0, g0, c1, c2, amax, xp)
        if bool(found):
            return float(a), n
        if bool(failed):
            return None, n
        a = np.float64(nxt)


def scipy_zoom(phi, dphi, a1, c1=1e-4, c2=0.9, ok=lambda a: True):
    """scipy's scalar_search_wolfe2 from the first trial a1 (old_phi0 chosen so that it starts there),
    counting distinct points evaluated."""
    seen = set()

    def counted(fn):
        def g(a):
            seen.add(float(a))
            return fn(a)
        return g

    f0, g0 = phi(0.0), dphi(0.0)
    old = f0 - a1 * g0 / (1.01 * 2.0)  # 1.01 * 2 (f0 - old) / g0 = a1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, *_ = scalar_search_wolfe2(counted(phi), counted(dphi), f0, old, g0, c1=c1, c2=c2, amax=1e10,
                                     extra_condition=lambda a, *_: ok(a))
    return a, len(seen - {0.0})


CASES = {
    # phi, dphi, first trial
    "quadratic, bracket by doubling": (lambda a: (a - 7.3) ** 2, lambda a: 2 * (a - 7.3), 0.5),
    "quadratic, zoom down": (lambda a: (a - 0.013) ** 2, lambda a: 2 * (a - 0.013), 1.0),
    "quartic": (lambda a: (a - 0.3) ** 4 - 0.5 * a, lambda a: 4 * (a - 0.3) ** 3 - 0.5, 1.0),
    "rosenbrock-like valley": (lambda a: 100 * (0.5 * a - a * a) ** 2 + (1 - a) ** 2,
                               lambda a: 200 * (0.5 * a - a * a) * (0.5 - 2 * a) - 2 * (1 - a), 0.9),
    "steep exponential": (lambda a: np.exp(8 * a) - 20 * a, lambda a: 8 * np.exp(8 * a) - 20, 1.0),
    "oscillating": (lambda a: np.sin(5 * a) - 6 * a + a**2, lambda a: 5 * np.cos(5 * a) - 6 + 2 * a, 1.0),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("c2", [0.9, 0.4, 0.1])
def test_zoom_takes_scipys_step_with_scipys_evaluations(case, c2):
    phi, dphi, a1 = CASES[case]
    if dphi(0.0) >= 0:
        pytest.skip("not a descent direction")
    want = scipy_zoom(phi, dphi, a1, c2=c2)
    got = run_zoom(phi, dphi, a1, c2=c2)
    assert got[1] == want[1], (got, want)
    if want[0] is None:
        assert got[0] is None
    else:
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12)


@pytest.mark.parametrize("case", ["quadratic, bracket by doubling", "quartic", "oscillating"])
def test_zoom_in_jax_matches_numpy(case):
    """The shared core under jax.numpy (the compiled rule's) gives the host tier's NumPy steps."""
    phi, dphi, a1 = CASES[case]
    with _x64():
        z, a, steps = zoom.start(jnp.float64(phi(0.0)), jnp.float64(dphi(0.0))), jnp.float64(a1), []
        f0, g0 = jnp.float64(phi(0.0)), jnp.float64(dphi(0.0))
        for _ in range(25):
            z, nxt, found, failed = zoom.update(z, a, jnp.float64(phi(float(a))), jnp.float64(dphi(float(a))),
                                                jnp.asarray(True), f0, g0, 1e-4, 0.9, 1e10)
            steps.append(float(a))
            if bool(found) or bool(failed):
                break
            a = nxt
    want = run_zoom(phi, dphi, a1)
    assert len(steps) == want[1] and steps[-1] == pytest.approx(want[0], rel=1e-14)


def test_zoom_rejected_by_the_acceptance_test_looks_further():
    """An acceptance test that refuses the first Wolfe point: scipy's extra_condition."""
    phi, dphi, a1 = CASES["oscillating"]
    ok = lambda a: a > 0.6  # noqa: E731
    want = scipy_zoom(phi, dphi, a1, ok=ok)
    got = run_zoom(phi, dphi, a1, ok=ok)
    assert got[1] == want[1]
    assert (got[0] is None) == (want[0] is None)
    if want[0] is not None:
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12)


def test_a_non_finite_trial_counts_as_too_long():
    """phi is NaN beyond 0.5 (scipy's search has no rule for it): the zoom bisects back into the
    finite region and finds the minimiser's Wolfe point, never returning a non-finite step."""
    phi = lambda a: (a - 0.2) ** 2 if a <= 0.5 else np.nan  # noqa: E731
    dphi = lambda a: 2 * (a - 0.2) if a <= 0.5 else np.nan  # noqa: E731
    a, n = run_zoom(phi, dphi, 1.0)
    assert a is not None and a <= 0.5 and abs(dphi(a)) <= 0.9 * abs(dphi(0.0))
    assert phi(a) <= phi(0.0) + 1e-4 * a * dphi(0.0)


def test_cubicmin_and_quadmin_as_scipy():
    from scipy.optimize._linesearch import _cubicmin, _quadmin

    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b, c = np.sort(rng.uniform(0, 3, 3))
        fa, fb, fc, fpa = rng.normal(size=4)
        want = _cubicmin(a, fa, fpa, b, fb, c, fc)
        got = zoom.cubicmin(a, fa, fpa, b, fb, c, fc, np)
        assert (want is None) == bool(np.isnan(got)), (want, got)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-9)
        want = _quadmin(a, fa, fpa, b, fb)
        got = zoom.quadmin(a, fa, fpa, b, fb, np)
        assert (want is None) == bool(np.isnan(got))
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12)
    with np.errstate(all="ignore"):  # (the host tier runs so)
        assert np.isnan(zoom.cubicmin(*map(np.float64, (0.0, 1.0, -1.0, 1.0, 2.0, 1.0, 2.0)), np))  # b == c: 0 denominator
        assert np.isnan(zoom.quadmin(*map(np.float64, (0.0, 1.0, -1.0, 0.0, 2.0)), np))
        assert np.isnan(zoom.cubicmin(*map(np.float64, (0.0, 1.0, -1.0, 1e200, 2.0, 3e200, 2.0)), np))  # overflow


# -- the rule: MoreThuente(fallback=True), bfgs's and cg's default ------------------------------
def test_bfgs_and_cg_default_searches_have_the_fallback_and_lbfgs_has_not():
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    assert jaxgd.Solver(f, "bfgs").rule.fallback and jaxgd.Solver(f, "cg").rule.fallback
    assert not jaxgd.Solver(f, "lbfgs").rule.fallback  # L-BFGS-B has no second search
    assert jaxgd.directions.cg().accepts is not None and jaxgd.directions.bfgs().accepts is None


def _scipy(f, x0, method):
    vg = jax.jit(jax.value_and_grad(f))
    with np.errstate(all="ignore"), warnings.catch_warnings():  # scipy's search meets the Inf on purpose
        warnings.simplefilter("ignore")
        return so.minimize(lambda x: tuple(np.asarray(v, np.float64) for v in vg(jnp.asarray(x))), np.asarray(x0, np.float64),
                           jac=True, method=method, options={"gtol": 1e-5, "norm": 2, "maxiter": 1000})


_OSBORNE_Y = [0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751, 0.718, 0.685, 0.658,
              0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490, 0.478, 0.467, 0.457, 0.448, 0.438, 0.431,
              0.424, 0.420, 0.414, 0.411, 0.406]


def _osborne1(x):
    """Osborne 1 (Moré, Garbow & Hillstrom 1981, problem 17; sif2jax's MGH17LS, NIST's start):
    exp(-t x4) overflows to Inf along bfgs's second search direction."""
    t = 10.0 * jnp.arange(33.0)
    return jnp.sum((x[0] + x[1] * jnp.exp(-t * x[3]) + x[2] * jnp.exp(-t * x[4]) - jnp.asarray(_OSBORNE_Y)) ** 2)


@pytest.mark.parametrize("tier", ["host", "compiled"])
def test_bfgs_after_an_inf_trial_takes_scipys_steps(tier):
    """Reference: scipy's BFGS, whose Moré-Thuente search gives up at an Inf value and whose
    second search (line_search_wolfe2) bisects back: jaxgd's bfgs takes the same 21 iterations and
    33 evaluations to the same minimum (without the second search it took a cubic step into
    another basin and stopped at f = 1.106 against 1.022)."""
    with _x64():
        x0 = jnp.asarray([50.0, 150.0, -100.0, 1.0, 2.0])
        ref = _scipy(_osborne1, x0, "BFGS")
        res = jaxgd.minimize(_osborne1, x0, method="bfgs", gtol=1e-5, tier=tier)
        assert ref.success and res.status_enum is jaxgd.Status.GTOL
        assert (int(res.steps), int(res.nfev)) == (ref.nit, ref.nfev)
        np.testing.assert_allclose(float(res.loss), ref.fun, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(res.params), ref.x, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("tier", ["host", "compiled"])
def test_cg_rejects_a_step_without_sufficient_descent_as_scipy(tier):
    """Reference: scipy's CG on Rosenbrock 2-D, where its sufficient-descent test (Gilbert &
    Nocedal) rejects Moré-Thuente steps and the second search runs: jaxgd's cg takes the same 36
    iterations and 78 evaluations (30 and 68, another path, without the test)."""
    with _x64():
        f = lambda x: 100.0 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2  # noqa: E731
        x0 = jnp.asarray([-1.2, 1.0])
        ref = _scipy(f, x0, "CG")
        res = jaxgd.minimize(f, x0, method="cg", gtol=1e-5, tier=tier)
        assert ref.success and res.status_enum is jaxgd.Status.GTOL
        assert (int(res.steps), int(res.nfev)) == (ref.nit, ref.nfev)
        np.testing.assert_allclose(np.asarray(res.params), ref.x, rtol=1e-9)


@pytest.mark.parametrize("tier", ["host", "compiled"])
def test_the_second_search_reads_the_first_searchs_only_trial_as_scipys_cache_does(tier):
    """Reference: scipy's CG on CUTEst's DENSCHNA (x1^4 + (x1 + x2)^2 + (exp(x2) - 1)^2 from (1, 1)). At its
    sixth step the Moré-Thuente search's only trial meets the Wolfe conditions and the sufficient-descent test
    rejects it; the second search starts at the same step, where scipy's cache of the last point evaluated
    answers it. jaxgd's cg takes the same 12 iterations and 22 evaluations (it evaluated that point again:
    23) to the same point."""
    with _x64():
        f = lambda x: x[0] ** 4 + (x[0] + x[1]) ** 2 + (jnp.exp(x[1]) - 1.0) ** 2  # noqa: E731
        x0 = jnp.ones(2)
        ref = _scipy(f, x0, "CG")
        res = jaxgd.minimize(f, x0, method="cg", gtol=1e-5, tier=tier)
        assert ref.success and res.status_enum is jaxgd.Status.GTOL
        assert (int(res.steps), int(res.nfev)) == (ref.nit, ref.nfev) == (12, 22)
        np.testing.assert_allclose(np.asarray(res.params), ref.x, rtol=1e-6, atol=1e-12)


def test_the_direction_test_is_gilbert_nocedals_sufficient_descent():
    """cg's accepts against the formula written out in NumPy: d' = -g' + beta_PR+ d, accepted
    when g'.d' <= -0.01 |g'|^2 (scipy's descent_condition)."""
    rng = np.random.default_rng(2)
    accepts = jaxgd.directions.cg().accepts
    seen = set()
    for _ in range(200):
        g, g1, d = (rng.normal(size=4) for _ in range(3))
        d = -g + 0.3 * d
        beta = max(0.0, g1 @ (g1 - g) / (g @ g))
        want = g1 @ (-g1 + beta * d) <= -0.01 * (g1 @ g1)
        assert bool(accepts(jnp.asarray(g1), jnp.asarray(g), jnp.asarray(d))) == want
        seen.add(bool(want))
    assert seen == {True, False}


@pytest.mark.slow
def test_a_search_that_fails_both_ways_fails():
    """Moré-Thuente and the zoom both fail along an ascent-only line (NaN beyond the start): the
    search reports a failure and the solver stops at the start point, with every evaluation counted."""
    with _x64():
        here = jnp.asarray([1.0, 2.0])
        f = lambda x: jnp.where(jnp.all(x == here), jnp.sum(x**2), jnp.nan)  # noqa: E731
        for tier in ("host", "compiled"):
            res = jaxgd.minimize(f, here, method="bfgs", tier=tier)
            assert res.status_enum is jaxgd.Status.LINESEARCH_FAILED, tier
            np.testing.assert_array_equal(np.asarray(res.params), np.asarray(here))
            assert int(res.steps) == 0 and int(res.nfev) > 1


@pytest.mark.slow  # (13 s: a vmapped bfgs program's compile)
def test_under_vmap_each_run_takes_its_own_searches():
    """Reference: the same solves one by one (the compiled loop). Under ``vmap`` the fallback's
    ``lax.cond`` runs both branches; a run that needs no second search must not count one."""
    with _x64():
        starts = jnp.asarray([[50.0, 150.0, -100.0, 1.0, 2.0], [0.5, 1.5, -1.0, 0.01, 0.02]])
        solve = lambda x0: jaxgd.minimize(_osborne1, x0, method="bfgs", gtol=1e-5, max_steps=200)  # noqa: E731
        batched = jax.jit(jax.vmap(solve))(starts)
        for k in range(2):
            one = solve(starts[k])
            assert (int(batched.steps[k]), int(batched.nfev[k])) == (int(one.steps), int(one.nfev)), k
            np.testing.assert_allclose(np.asarray(batched.params[k]), np.asarray(one.params), rtol=1e-6, atol=1e-9)


@pytest.mark.slow
def test_cg_keeps_the_first_searchs_point_when_the_second_search_fails():
    """CUTEst's CLIFF (its SIF file gives the minimum 0.199786613): along the first direction the
    Moré-Thuente step is rejected by cg's descent test and the zoom search fails too, where scipy's CG
    stops (status 2, no step). jaxgd keeps the first search's point (it lowered f) and goes on to the
    minimum, the fused loop and the host tier alike."""
    with _x64():
        f = lambda x: (0.01 * x[0] - 0.03) ** 2 - x[0] + x[1] + jnp.exp(20.0 * (x[0] - x[1]))  # noqa: E731
        x0 = jnp.asarray([0.0, -1.0])
        ref = _scipy(f, x0, "CG")
        assert ref.status == 2 and ref.nit == 0
        runs = [jaxgd.minimize(f, x0, method="cg", gtol=1e-5, tier=tier) for tier in ("host", "compiled")]
        for r in runs:
            assert r.status_enum is jaxgd.Status.GTOL
            np.testing.assert_allclose(float(r.loss), 0.199786613, rtol=1e-8)
        assert [(int(r.steps), int(r.nfev)) for r in runs] == [(int(runs[0].steps), int(runs[0].nfev))] * 2
