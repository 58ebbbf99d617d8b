"""Stopping tests and adaptive step sizes against their definitions, re-run in NumPy.

References, named per test:
- ``xtol``/``ftol``: the definitions in ``jaxgd.Solver``'s docstring
  (``||theta_{k+1} - theta_k|| <= xtol``;
  ``|f_k - f_{k+1}| <= ftol max(|f_k|, |f_{k+1}|, 1)``), evaluated in NumPy on
  the iterates -- a plain NumPy gradient-descent loop, or the same method's
  iterates recorded step by step -- to find the first step where the test
  holds. The run must stop exactly there: neither earlier nor later.
- Barzilai-Borwein: a NumPy BB1/BB2 loop (Barzilai & Borwein 1988, eqs. 5, 6).
- Polyak with a known f*: a NumPy loop of alpha = min((f - f*) / (c ||g||^2), alpha_max).
- Reduce-on-plateau: a NumPy gradient-descent loop with PyTorch's
  ReduceLROnPlateau bookkeeping (threshold relative to |best|).
- L-BFGS: Nocedal & Wright, "Numerical Optimization", 2nd ed., Algorithm 7.4
  (the two-loop recursion), H0 = (s'y / y'y) I (eq. 7.20), written here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import linesearch as ls
from jaxgd.core.status import Status

# f(x) = 1/2 x'Hx - b'x + c: eigenvalues 1..10, minimum value f* known in closed form.
H = np.diag(np.linspace(1.0, 10.0, 6)) + 0.1 * np.ones((6, 6))
BV = np.linspace(-1.0, 1.5, 6)
C0 = 3.0
X_STAR = np.linalg.solve(H, BV)
F_STAR = float(0.5 * X_STAR @ H @ X_STAR - BV @ X_STAR + C0)
X0 = np.full(6, 2.0)


def quad(x):
    return 0.5 * x @ jnp.asarray(H) @ x - jnp.asarray(BV) @ x + C0


def np_f(x):
    return float(0.5 * x @ H @ x - BV @ x + C0)


def np_g(x):
    return H @ x - BV


def np_gd(lr, n):
    """Plain NumPy gradient descent: the iterates x_0..x_n."""
    xs = [X0.copy()]
    for _ in range(n):
        xs.append(xs[-1] - lr * np_g(xs[-1]))
    return xs


def first_step(holds, n):
    """The first k in 1..n with holds(k) True (the step after which the test fires)."""
    return next(k for k in range(1, n + 1) if holds(k))


def assert_margin(values, k, tol, rel=1e-6):
    """The criterion is not borderline at the decisive steps (rounding cannot flip it)."""
    for j in (k - 1, k):
        if j >= 1:
            assert abs(values[j] - tol) > rel * tol, (j, values[j], tol)


# -- xtol and ftol against their definitions -------------------------------------------
@pytest.mark.parametrize("xtol", [1e-3, 1e-6])
def test_xtol_stops_at_the_first_step_shorter_than_xtol_numpy_gd(xtol):
    lr, n = 0.05, 2000
    xs = np_gd(lr, n)
    step = [np.nan] + [float(np.linalg.norm(xs[k] - xs[k - 1])) for k in range(1, n + 1)]
    k = first_step(lambda j: step[j] <= xtol, n)
    assert_margin(step, k, xtol)
    res = jaxgd.minimize(quad, jnp.asarray(X0), lr=lr, max_steps=n, gtol=0.0, xtol=xtol)
    assert res.status_enum is Status.XTOL
    assert int(res.steps) == k, f"stopped after {int(res.steps)} steps, the definition holds first after {k}"
    np.testing.assert_allclose(np.asarray(res.params), xs[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ftol", [1e-4, 1e-9])
@pytest.mark.parametrize("shift", [0.0, 0.01 - F_STAR], ids=["f*=2.29", "f*=0.01"])
def test_ftol_stops_at_the_first_small_relative_change_numpy_gd(ftol, shift):
    """With f* = 0.01 the floor max(|f_k|, |f_{k+1}|, 1) = 1 decides, not |f|."""
    lr, n = 0.05, 2000
    xs = np_gd(lr, n)
    f = [np_f(x) + shift for x in xs]
    rel = [np.nan] + [abs(f[k - 1] - f[k]) / max(abs(f[k - 1]), abs(f[k]), 1.0) for k in range(1, n + 1)]
    k = first_step(lambda j: rel[j] <= ftol, n)
    assert_margin(rel, k, ftol, rel=1e-4)
    res = jaxgd.minimize(lambda x: quad(x) + shift, jnp.asarray(X0), lr=lr, max_steps=n, gtol=0.0, ftol=ftol)
    assert res.status_enum is Status.FTOL
    assert int(res.steps) == k, f"stopped after {int(res.steps)} steps, the definition holds first after {k}"
    np.testing.assert_allclose(np.asarray(res.history.loss), f[1 : k + 1], rtol=1e-12)



@pytest.mark.parametrize("option", ["ftol", "xtol"])
def test_a_warmup_from_lr_zero_is_not_convergence_numpy_gd(option):
    """A schedule starting at 0 (optax's warmup_cosine_decay_schedule(init_value=0.0, ...)) makes the first steps
    zero: the ftol/xtol tests held literally and the run ended FTOL/XTOL, "converged", at x0 (a user review,
    session 58). Reference: the definitions evaluated on a NumPy gd loop with the same schedule, over the steps
    of non-zero size: the run stops at the first such step where the test holds."""
    lr, n, warm, tol = 0.05, 2000, 3, {"ftol": 1e-9, "xtol": 1e-6}[option]
    rate = lambda k: np.where(k < warm, 0.0, lr)  # noqa: E731
    xs = [X0.copy()]
    for k in range(n):
        xs.append(xs[-1] - float(rate(k)) * np_g(xs[-1]))
    if option == "ftol":
        f = [np_f(x) for x in xs]
        size = [np.nan] + [abs(f[k - 1] - f[k]) / max(abs(f[k - 1]), abs(f[k]), 1.0) for k in range(1, n + 1)]
    else:
        size = [np.nan] + [float(np.linalg.norm(xs[k] - xs[k - 1])) for k in range(1, n + 1)]
    k = first_step(lambda j: j > warm and size[j] <= tol, n)
    res = jaxgd.minimize(quad, jnp.asarray(X0), lr=lambda c: jnp.where(c < warm, 0.0, lr), max_steps=n, gtol=0.0,
                         **{option: tol})
    assert res.status_enum is Status[option.upper()] and int(res.steps) == k, (res.status_enum, int(res.steps), k)
    np.testing.assert_allclose(np.asarray(res.params), xs[k], rtol=1e-10)


@pytest.mark.parametrize("option", ["ftol", "xtol"])
def test_a_traced_zero_tolerance_is_off_as_a_concrete_zero_is(option):
    """The docs: 0 disables the test. A concrete 0 did; a traced 0 (a lane of a vmap over tolerances) kept
    `<= 0`, so a step that rounded to no change (of 1e8 + ||x||^2 in float32; of x = 1e4 by 2e-4) stopped the
    lane (a user review, session 58). Reference: the same runs with concrete tolerances, lane by lane."""
    f = lambda x: (1e8 if option == "ftol" else 0.0) + jnp.sum((x - 1.0) ** 2)  # noqa: E731
    x0 = jnp.full(3, 0.0 if option == "ftol" else 1e4, jnp.float32)
    tol, lr = {"ftol": (1e-12, 0.1), "xtol": (1e-3, 1e-8)}[option]
    run = lambda t: jaxgd.minimize(f, x0, lr=lr, max_steps=50, gtol=0.0, **{option: t})  # noqa: E731
    lanes = jax.vmap(run)(jnp.asarray([0.0, tol], jnp.float32))
    for i, t in enumerate((0.0, tol)):
        alone = run(t)
        assert int(lanes.state.status[i]) == int(alone.state.status), (i, lanes.state.status, alone.status_enum)
        assert int(lanes.state.count[i]) == int(alone.state.count)
    assert int(lanes.state.status[0]) == Status.MAX_STEPS

# -- gtol in the chosen norm ---------------------------------------------------------------
INF_NORM = lambda v: float(np.max(np.abs(v)))  # noqa: E731
TWO_NORM = lambda v: float(np.linalg.norm(v))  # noqa: E731


def test_gtol_norm_stops_at_the_first_small_gradient_in_that_norm_numpy_gd():
    """Reference: a NumPy gradient-descent loop; the run stops at the first iterate whose
    gradient 2-norm (default, ``gtol_norm=2``) or largest magnitude (``gtol_norm=inf``,
    scipy's ``norm=inf``) is <= gtol, and ``grad_norm``/the history report that norm."""
    lr, n, gtol = 0.05, 2000, 3.0  # early, where the two norms of the gradient still differ
    xs = np_gd(lr, n)
    stops = {}
    for gtol_norm, norm in ((None, TWO_NORM), (2, TWO_NORM), (np.inf, INF_NORM)):
        measure = [norm(np_g(x)) for x in xs]
        k = first_step(lambda j: measure[j] <= gtol, n)
        assert_margin(measure, k, gtol)
        res = jaxgd.minimize(quad, jnp.asarray(X0), lr=lr, max_steps=n, gtol=gtol, gtol_norm=gtol_norm)
        assert res.status_enum is Status.GTOL and int(res.steps) == k, (gtol_norm, int(res.steps), k)
        np.testing.assert_allclose(float(res.grad_norm), measure[k], rtol=1e-10)
        np.testing.assert_allclose(np.asarray(res.history.grad_norm), measure[1 : k + 1], rtol=1e-10)
        stops[gtol_norm] = k
    assert stops[np.inf] < stops[2] == stops[None]  # the norms disagree here: the test can tell them apart


@pytest.mark.parametrize("kw", [{"bounds": (0.0, None)}, {"l1": 0.3}], ids=["bounds", "l1"])
def test_gtol_norm_inf_on_the_gradient_mapping_numpy_proximal_gd(kw):
    """Reference: NumPy proximal gradient descent (a clip for bounds, soft-thresholding for
    l1); the measure is the largest magnitude of the unit-step gradient mapping
    ``x - prox(x - g)`` (Beck 2017, Theorem 10.7)."""
    lr, n, gtol = 0.05, 2000, 1e-5
    if "bounds" in kw:
        prox = lambda z, a: np.maximum(z, 0.0)  # noqa: E731
    else:
        prox = lambda z, a: np.sign(z) * np.maximum(np.abs(z) - a * kw["l1"], 0.0)  # noqa: E731
    xs = [np.maximum(X0, 0.0) if "bounds" in kw else X0.copy()]
    for _ in range(n):
        xs.append(prox(xs[-1] - lr * np_g(xs[-1]), lr))
    measure = [INF_NORM(x - prox(x - np_g(x), 1.0)) for x in xs]
    k = first_step(lambda j: measure[j] <= gtol, n)
    assert_margin(measure, k, gtol)
    res = jaxgd.minimize(quad, jnp.asarray(X0), lr=lr, max_steps=n, gtol=gtol, gtol_norm=np.inf, **kw)
    assert res.status_enum is Status.GTOL and int(res.steps) == k
    np.testing.assert_allclose(np.asarray(res.params), xs[k], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(res.grad_norm), measure[k], rtol=1e-8)


@pytest.mark.slow
def test_lbfgsb_tests_the_projected_gradient_in_the_chosen_norm():
    """L-BFGS-B (lbfgs + bounds) tests the projected gradient's infinity norm by default
    (scipy's pgtol), its 2-norm with gtol_norm=2. Reference: the projected gradient
    x - clip(x - g, lower, upper) in NumPy at the returned point."""
    bounds = (0.0, 0.4)
    out = {}
    for gtol_norm in (None, np.inf, 2):
        res = jaxgd.minimize(quad, jnp.asarray(X0), method="lbfgs", bounds=bounds, gtol=1e-7, gtol_norm=gtol_norm)
        assert res.status_enum is Status.GTOL
        x = np.asarray(res.params)
        pg = x - np.clip(x - np_g(x), *bounds)
        norm = TWO_NORM if gtol_norm == 2 else INF_NORM
        np.testing.assert_allclose(float(res.grad_norm), norm(pg), rtol=1e-8, atol=1e-300)
        assert norm(pg) <= 1e-7
        out[gtol_norm] = int(res.steps)
    assert out[None] == out[np.inf] <= out[2]


def recorded_iterates(method, n, **kw):
    """The method's own iterates x_0..x_n and values, one jitted step at a time (no stopping test)."""
    solver = jaxgd.Solver(quad, method, gtol=0.0, **kw)
    step = jax.jit(solver.step)
    state = solver.init(jnp.asarray(X0))
    xs, fs = [np.asarray(state.params)], [float(state.value)]
    for _ in range(n):
        state = step(state)
        xs.append(np.asarray(state.params))
        fs.append(float(state.value))
    return xs, fs


@pytest.mark.parametrize("method,kw", [pytest.param("lbfgs", {}, marks=pytest.mark.slow), ("adam", {"lr": 0.1}), ("nesterov", {"lr": 0.02})])
def test_xtol_and_ftol_on_a_methods_own_iterates(method, kw):
    """The same definitions, evaluated in NumPy on the method's recorded iterates."""
    n = 40
    xs, fs = recorded_iterates(method, n, **kw)
    step = [np.nan] + [float(np.linalg.norm(xs[k] - xs[k - 1])) for k in range(1, n + 1)]
    rel = [np.nan] + [abs(fs[k - 1] - fs[k]) / max(abs(fs[k - 1]), abs(fs[k]), 1.0) for k in range(1, n + 1)]
    # tolerances half-way (geometrically) between a recorded value and the least one before it,
    # at a step that sets a new low (no borderline case): the first such step from the sixth on,
    # else from the second (adam's and nesterov's relative decrease is not monotone)
    kx = 6
    xtol = float(np.sqrt(step[kx] * min(step[1:kx])))
    lows = [j for j in range(2, n + 1) if rel[j] < min(rel[1:j])]
    assert lows, "no step lowers the relative decrease: nothing to place ftol at"
    kf = next((j for j in lows if j >= kx), lows[0])
    ftol = float(np.sqrt(rel[kf] * min(rel[1:kf])))
    k = first_step(lambda j: step[j] <= xtol, n)
    res = jaxgd.minimize(quad, jnp.asarray(X0), method=method, max_steps=n, gtol=0.0, xtol=xtol, **kw)
    assert (res.status_enum, int(res.steps)) == (Status.XTOL, k)
    np.testing.assert_allclose(np.asarray(res.params), xs[k], rtol=1e-12)
    k = first_step(lambda j: rel[j] <= ftol, n)
    assert k == kf
    res = jaxgd.minimize(quad, jnp.asarray(X0), method=method, max_steps=n, gtol=0.0, ftol=ftol, **kw)
    assert (res.status_enum, int(res.steps)) == (Status.FTOL, k)
    np.testing.assert_allclose(np.asarray(res.params), xs[k], rtol=1e-12)


# -- Barzilai-Borwein, Polyak, reduce-on-plateau: NumPy loops --------------------------
def np_bb(formula, initial, n, lo=1e-10, hi=1e10):
    x, g = X0.copy(), np_g(X0)
    x_prev = g_prev = None
    alpha, alphas = initial, []
    for _ in range(n):
        if x_prev is not None:
            s, y = x - x_prev, g - g_prev
            sy = s @ y
            q = (s @ s) / sy if formula == 1 else sy / (y @ y)
            if sy > 0 and np.isfinite(q):
                alpha = q
        alpha = min(max(alpha, lo), hi)
        alphas.append(alpha)
        x_prev, g_prev = x, g
        x = x - alpha * g
        g = np_g(x)
    return np.array(alphas), x


@pytest.mark.parametrize("formula", [1, 2])
def test_barzilai_borwein_matches_a_numpy_bb_loop_on_a_quadratic(formula):
    n = 25
    alphas, x = np_bb(formula, 0.01, n)
    res = jaxgd.minimize(quad, jnp.asarray(X0), lr=ls.BarzilaiBorwein(initial=0.01, formula=formula), max_steps=n, gtol=0.0)
    np.testing.assert_allclose(np.asarray(res.history.lr), alphas, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(res.params), x, rtol=1e-8, atol=1e-10)
    # and the expected outcome: BB reaches the minimiser of a 10-conditioned quadratic
    done = jaxgd.minimize(quad, jnp.asarray(X0), lr=ls.BarzilaiBorwein(initial=0.01, formula=formula), max_steps=500, gtol=1e-10)
    assert done.status_enum is Status.GTOL
    np.testing.assert_allclose(np.asarray(done.params), X_STAR, rtol=1e-9)


def np_polyak(f_star, scale, max_step, n):
    x, alphas = X0.copy(), []
    for _ in range(n):
        g = np_g(x)
        alpha = min(max((np_f(x) - f_star) / (scale * (g @ g)), 0.0), max_step)
        alphas.append(alpha)
        x = x - alpha * g
    return np.array(alphas), x


@pytest.mark.parametrize("scale,max_step", [(1.0, np.inf), (2.0, 0.15), (0.7, 0.05)])
def test_polyak_with_known_f_star_matches_a_numpy_loop(scale, max_step):
    n = 20  # f - f* cancels as f -> f*: rounding in alpha grows ~ eps |f| / (f - f*)
    alphas, x = np_polyak(F_STAR, scale, max_step, n)
    rule = ls.Polyak(f_star=F_STAR, scale=scale, max_step=max_step)
    res = jaxgd.minimize(quad, jnp.asarray(X0), lr=rule, max_steps=n, gtol=0.0)
    np.testing.assert_allclose(np.asarray(res.history.lr), alphas, rtol=1e-7)
    np.testing.assert_allclose(np.asarray(res.params), x, rtol=1e-7, atol=1e-10)
    if max_step < np.inf:
        assert np.any(alphas == max_step), "the cap is exercised"


def test_polyak_with_known_f_star_reaches_f_star():
    """Expected outcome: with the exact f*, Polyak's step converges (Polyak 1987, 5.3) to f*."""
    res = jaxgd.minimize(quad, jnp.asarray(X0), lr=ls.Polyak(f_star=F_STAR), max_steps=3000, gtol=1e-6)
    assert res.status_enum is Status.GTOL
    np.testing.assert_allclose(float(res.loss), F_STAR, rtol=1e-11)
    np.testing.assert_allclose(np.asarray(res.params), X_STAR, rtol=0, atol=2e-6)  # |x - x*| <= |g| / lambda_min


def np_plateau_gd(initial, factor, patience, cooldown, rtol, atol, min_lr, n):
    x = X0.copy()
    lr, best, bad, cool, lrs = initial, np_f(x), 0, 0, []
    for _ in range(n):
        lrs.append(lr)
        x = x - lr * np_g(x)
        v = np_f(x)
        if v < best - rtol * abs(best) - atol:
            best, bad = v, 0
        else:
            bad += 1
        if cool > 0:
            cool, bad = cool - 1, 0
        if bad > patience:
            lr, cool, bad = max(lr * factor, min_lr), cooldown, 0
    return np.array(lrs), x


def test_reduce_on_plateau_matches_a_numpy_gd_loop_and_converges():
    """lr=0.5 and 0.25 are past 2/L (L ~ 10.3): the loss grows until the rate is cut, twice,
    then GD converges (with rtol = atol = 0 every decrease counts, so a stable rate is never cut again)."""
    kw = dict(initial=0.5, factor=0.5, patience=2, cooldown=1, rtol=0.0, atol=0.0, min_lr=1e-3)
    n = 60
    lrs, x = np_plateau_gd(n=n, **kw)
    assert len(set(lrs)) >= 3, "the reference cuts the rate at least twice"
    res = jaxgd.minimize(quad, jnp.asarray(X0), lr=ls.ReduceOnPlateau(**kw), max_steps=n, gtol=0.0)
    np.testing.assert_allclose(np.asarray(res.history.lr), lrs, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(res.params), x, rtol=1e-9, atol=1e-12)
    # gtol above the float64 floor of f: closer in, f stops decreasing in its last bits,
    # those steps count as bad and the rate is cut to min_lr (the rule working as specified)
    done = jaxgd.minimize(quad, jnp.asarray(X0), lr=ls.ReduceOnPlateau(**kw), max_steps=2000, gtol=1e-6)
    assert done.status_enum is Status.GTOL
    np.testing.assert_allclose(np.asarray(done.params), X_STAR, rtol=0, atol=2e-6)


# -- L-BFGS direction: Nocedal & Wright Algorithm 7.4 -----------------------------------
def two_loop(g, pairs):
    """-H_k g by the two-loop recursion (N&W Alg. 7.4), H_k^0 = (s'y / y'y) I (eq. 7.20)."""
    q = g.copy()
    alphas = []
    for s, y in reversed(pairs):
        rho = 1.0 / (y @ s)
        a = rho * (s @ q)
        alphas.append(a)
        q = q - a * y
    s, y = pairs[-1]
    r = (s @ y) / (y @ y) * q
    for (s, y), a in zip(pairs, reversed(alphas)):
        rho = 1.0 / (y @ s)
        b = rho * (y @ r)
        r = r + s * (a - b)
    return -r


def rosen(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.mark.parametrize("memory", [3, 10])
def test_lbfgs_direction_matches_a_numpy_two_loop_recursion(memory):
    """Each step's direction d_k = (x_{k+1} - x_k) / alpha_k equals N&W Alg. 7.4 on the
    last ``memory`` pairs (s_i, y_i) of the same run, on 6-D Rosenbrock (s'y > 0 under strong Wolfe),
    from H0 = (s'y / y'y) I (scaling="scalar"; the diagonal H0 against a dense NumPy reference:
    tests/test_quasi_newton.py)."""
    solver = jaxgd.Solver(rosen, jaxgd.directions.lbfgs(memory, scaling="scalar"), gtol=0.0)
    step = jax.jit(solver.step)
    state = solver.init(jnp.asarray(np.array([-1.2, 1.0, -0.5, 0.8, 1.1, 0.3])))
    xs, gs, checked = [np.asarray(state.params)], [np.asarray(state.grad)], 0
    for k in range(14):
        state = step(state)
        assert int(state.status) == Status.RUNNING
        x_new, alpha = np.asarray(state.params), float(state.alpha)
        d = (x_new - xs[-1]) / alpha
        if k > 0:  # the first direction is the scaled gradient; from then on the recursion
            pairs = [(xs[i + 1] - xs[i], gs[i + 1] - gs[i]) for i in range(max(0, k - memory), k)]
            np.testing.assert_allclose(d, two_loop(gs[-1], pairs), rtol=1e-6, atol=1e-9 * np.abs(d).max())
            checked += 1
        xs.append(x_new)
        gs.append(np.asarray(state.grad))
    assert checked == 13 and (memory == 10 or checked > memory)


@pytest.mark.parametrize("option", ["ftol", "xtol"])
def test_the_host_tier_tests_ftol_and_xtol_as_the_compiled_loop(option, x64_off):
    """The host tier kept the old ftol/xtol test (a first step that changed nothing stopped it), so tier='auto'
    answered a problem's first two calls otherwise than its later ones (a review of this session's diff).
    Reference: the compiled loop, status, steps and loss (one shared test, jaxgd.core.status.tolerance_status)."""
    f = lambda x: 1e4 + jnp.sum((x - 3.0) ** 4 + 0.1 * (x - 3.0) ** 2)  # noqa: E731
    x0 = jnp.asarray([3.01, 2.99, 3.02], jnp.float32)
    runs = [jaxgd.minimize(f, x0, method="lbfgs", gtol=0.0, max_steps=50, tier=tier, **{option: 1e-12})
            for tier in ("host", "compiled")]
    assert [(r.status_enum, int(r.steps)) for r in runs[:1]] == [(r.status_enum, int(r.steps)) for r in runs[1:]]
    np.testing.assert_allclose(float(runs[0].loss), float(runs[1].loss), rtol=1e-6)


@pytest.mark.slow
def test_a_traced_zero_ftol_is_off_for_lbfgsb_and_in_a_resume(x64_off):
    """L-BFGS-B's own termination and the resume's reopening read a traced ftol of 0 as on: a jitted run stopped
    FTOL at step 16 where ftol=0 ends PRECISION at 39, and a resume under jit left an FTOL stop closed (a review
    of this session's diff). Reference: the same calls with a concrete 0."""
    rng = np.random.default_rng(0)
    a, y = jnp.asarray(rng.normal(size=(40, 20)), jnp.float32), jnp.asarray(rng.normal(size=40), jnp.float32)
    f = lambda x: 0.5 * jnp.sum((a @ x - y) ** 2)  # noqa: E731
    kw = dict(method="lbfgs", bounds=(-0.1, 0.1), gtol=0.0, max_steps=3000)
    x0 = jnp.zeros(20, jnp.float32)
    concrete = jax.jit(jaxgd.Solver(f, **kw, ftol=0.0).run)(x0)
    traced = jax.jit(lambda t, x: jaxgd.Solver(f, **kw, ftol=t).run(x))(jnp.float32(0.0), x0)
    assert (int(traced.status), int(traced.steps)) == (int(concrete.status), int(concrete.steps))
    g = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    stopped = jaxgd.Solver(g, "gd", 0.01, ftol=1e-2, max_steps=200).run(jnp.zeros(3))
    assert stopped.status_enum is Status.FTOL
    resumed = [jax.jit(lambda t, r: jaxgd.Solver(g, "gd", 0.01, ftol=t, max_steps=200).resume(r))(t, stopped)
               for t in (jnp.float32(0.0),)] + [jaxgd.Solver(g, "gd", 0.01, ftol=0.0, max_steps=200).resume(stopped)]
    assert [int(r.steps) for r in resumed] == [200, 200]
