"""Options that had no test, each against an independent reference (named per test).

``Backtracking(approx_rtol=)``, ``directions.bfgs(scale_init=False)``,
``check_grad(precision=, seed=)``, ``accelerated=`` on a smooth loss,
``fit(patience=)`` without eval data, ``minimize`` under ``vmap`` with
``has_aux``/``progress``/``l1``/``bounds``, and a checkpoint saved with x64
on and loaded with it off. (``Polyak(scale=, max_step=)`` is in
test_tolerances.py; the mesh-divisibility error and a non-default
``data_axis`` are in test_fit_mesh.py, which needs several host devices.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import linesearch as ls
from jaxgd.core.stepsize import StepContext, Trial


# -- Backtracking(approx_rtol=) ------------------------------------------------------------
BIG = 1e8  # f = BIG + |x - 1|^2 / 2: near x = 1 every change of f is below one ulp of BIG


def offset_quadratic(x):
    return BIG + 0.5 * jnp.sum((x - 1.0) ** 2)


def np_backtracking(x, d, c1, shrink, initial, max_iter, approx_rtol):
    """Armijo backtracking as documented, NumPy float64: accept the first trial with
    F(x+) - F(x) <= c1 Delta, or, when F(x+) - F(x) <= eps |F(x)| (a change drowned in
    rounding), with the trapezoid estimate (g + g+)'(x+ - x)/2 <= c1 Delta (Hager & Zhang eq. 4.1)."""
    f = lambda z: BIG + 0.5 * np.sum((z - 1.0) ** 2)  # noqa: E731
    g = lambda z: z - 1.0  # noqa: E731
    fx, gx = f(x), g(x)
    for i in range(max_iter + 1):
        alpha = initial * shrink**i
        xp = x + alpha * d
        delta, change = gx @ (xp - x), f(xp) - fx
        armijo = change <= c1 * delta
        approx = approx_rtol is not None and change <= approx_rtol * abs(fx) and 0.5 * (gx + g(xp)) @ (xp - x) <= c1 * delta
        if armijo or approx:
            return alpha
    return None


def backtracking_step(rule, x, d):
    xj, dj = jnp.asarray(x), jnp.asarray(d)
    value, grad = jax.value_and_grad(offset_quadratic)(xj)

    def evaluate(alpha):
        p = xj + alpha * dj
        v, g = jax.value_and_grad(offset_quadratic)(p)
        return Trial(p, v, g, None)

    ctx = StepContext(jnp.asarray(0, jnp.int32), xj, value, grad, dj, jnp.vdot(grad, dj), evaluate, lambda a: offset_quadratic(xj + a * dj))
    alpha, trial, _, info = rule.step(rule.init(xj, value, grad), ctx)
    return float(alpha), np.asarray(trial.params), bool(info.failed)


@pytest.mark.parametrize("approx_rtol", [None, 1e-12, 1e-3])
@pytest.mark.parametrize("e", [1e-5, 0.5], ids=["drowned", "resolved"])
def test_backtracking_approx_rtol_against_a_numpy_search(approx_rtol, e):
    """From x = 1 + e along d = -e, first trial 3 (an overshoot: f rises by 1.5 e^2):
    near the minimiser (e = 1e-5) that rise and every later change drown in one ulp of
    1e8, the plain Armijo test rejects every trial, and the approximate condition
    rejects 3 and accepts 1.5; far from it (e = 0.5) the plain test decides."""
    x = np.array([1.0 + e, 1.0 - 2 * e])
    d = -(x - 1.0)
    eps = 64 * np.finfo(np.float64).eps if approx_rtol is None else approx_rtol
    expected = np_backtracking(x, d, 1e-4, 0.5, 3.0, 30, eps)
    plain = np_backtracking(x, d, 1e-4, 0.5, 3.0, 30, None)
    if e < 1e-3:
        assert plain is None and expected == 1.5
    else:
        assert plain == expected == 1.5
    alpha, params, failed = backtracking_step(ls.Backtracking(initial=3.0, shrink=0.5, approx_rtol=approx_rtol), x, d)
    assert alpha == expected and not failed
    np.testing.assert_array_equal(params, x + expected * d)


# -- directions.bfgs(scale_init=...) ---------------------------------------------------------
def np_bfgs_h(pairs, n, scale_init):
    """Nocedal & Wright eq. 6.17 from H0 = I, or H0 = (y's / y'y) I before the first update (eq. 6.20)."""
    h = np.eye(n)
    for i, (s, y) in enumerate(pairs):
        if scale_init and i == 0:
            h = (y @ s) / (y @ y) * np.eye(n)
        rho = 1.0 / (y @ s)
        v = np.eye(n) - rho * np.outer(y, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    return h


def rosen(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.mark.parametrize("scale_init", [False, True])
def test_bfgs_direction_matches_numpy_inverse_hessian_updates(scale_init):
    """d_k = (x_{k+1} - x_k) / alpha_k equals -H_k g_k, with H_k rebuilt in NumPy from the
    run's own pairs (s_i, y_i) (on Rosenbrock 4-D every pair has s'y > 0 under strong Wolfe)."""
    solver = jaxgd.Solver(rosen, jaxgd.directions.bfgs(scale_init=scale_init), gtol=0.0)
    step = jax.jit(solver.step)
    state = solver.init(jnp.asarray([-1.2, 1.0, -0.5, 0.8]))
    xs, gs = [np.asarray(state.params)], [np.asarray(state.grad)]
    for k in range(8):
        state = step(state)
        d = (np.asarray(state.params) - xs[-1]) / float(state.alpha)
        pairs = [(xs[i + 1] - xs[i], gs[i + 1] - gs[i]) for i in range(k)]
        expected = -np_bfgs_h(pairs, 4, scale_init) @ gs[-1]
        np.testing.assert_allclose(d, expected, rtol=1e-6, atol=1e-9 * np.abs(d).max())
        xs.append(np.asarray(state.params))
        gs.append(np.asarray(state.grad))
    assert all((xs[i + 1] - xs[i]) @ (gs[i + 1] - gs[i]) > 0 for i in range(8))


# -- check_grad(precision=, seed=) ---------------------------------------------------------
def test_check_grad_runs_jax_grad_at_the_requested_matmul_precision():
    """Reference: JAX's own config value, read while ``fun`` is traced for ``jax.grad``
    (the host-side shape check traces it once more, outside the context)."""
    x = jnp.asarray(np.arange(4.0).reshape(2, 2))
    for precision in ("float32", "highest", None):
        seen = []

        def fun(x):
            seen.append(jax.config.jax_default_matmul_precision)
            return jnp.sum(x @ x)

        report = jaxgd.check_grad(fun, x, precision=precision)
        assert report.passed
        if precision is None:
            assert seen and set(seen) == {None}, seen
        else:
            assert precision in seen and set(seen) <= {None, precision}, (precision, seen)


def test_check_grad_seed_draws_the_documented_numpy_directions():
    """For f(x) = c'x every directional row compares v'c with its finite difference;
    reference: the unit directions of ``np.random.default_rng(seed).standard_normal``."""
    c = np.linspace(-1.0, 2.0, 6)
    fun = lambda x: jnp.dot(jnp.asarray(c), x)  # noqa: E731
    x = jnp.zeros(6)
    got = {}
    for seed in (0, 1, 7):
        report = jaxgd.check_grad(fun, x, directions=3, seed=seed)
        assert report.passed and report.directions == 3
        (row,) = [r for r in report.rows if r.comparison == "jax~fd"]
        v = np.random.default_rng(seed).standard_normal((3, 6))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        np.testing.assert_allclose(row.worst_values[0], (v @ c)[row.worst_index[0]], rtol=1e-12)
        got[seed] = row.worst_values
        assert jaxgd.check_grad(fun, x, directions=3, seed=seed).rows == report.rows  # same seed, same report
    assert len(set(got.values())) == 3


# -- accelerated= without l1 or bounds ---------------------------------------------------------
H = np.diag([1.0, 4.0, 10.0]) + 0.2
BV = np.array([1.0, -1.0, 0.5])


def quad(x):
    return 0.5 * x @ jnp.asarray(H, x.dtype) @ x - jnp.asarray(BV, x.dtype) @ x


def test_accelerated_on_a_smooth_loss_is_nesterov_fista_in_numpy():
    """Reference: Beck & Teboulle's FISTA (2009, eqs. 4.1-4.3) with prox = identity,
    i.e. Nesterov's accelerated gradient, with O'Donoghue & Candes's gradient restart (2015,
    section 3.2: t = 1 where the step opposes the momentum, (y - x_new).(x_new - x) > 0), as a NumPy loop."""
    lr, n = 1.0 / np.linalg.eigvalsh(H).max(), 30
    x = x_prev = np.zeros(3)
    t, restarts = 1.0, 0
    for k in range(n):
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = x + (t - 1.0) / t_next * (x - x_prev) if k > 0 else x
        x_prev, x = x, y - lr * (H @ y - BV)
        t = t_next if k > 0 else t
        if (y - x) @ (x - x_prev) > 0:
            t, restarts = 1.0, restarts + 1
    assert restarts > 0
    res = jaxgd.minimize(quad, jnp.zeros(3), lr=lr, accelerated=True, max_steps=n, gtol=0.0)
    np.testing.assert_allclose(np.asarray(res.params), x, rtol=1e-10, atol=1e-12)
    plain = jaxgd.minimize(quad, jnp.zeros(3), lr=lr, max_steps=n, gtol=0.0)
    x_star = np.linalg.solve(H, BV)
    assert np.linalg.norm(np.asarray(res.params) - x_star) < np.linalg.norm(np.asarray(plain.params) - x_star)


# -- fit(patience=) without eval data -------------------------------------------------------------
@pytest.mark.slow
def test_fit_patience_without_eval_data_monitors_the_training_loss():
    """Reference: the run without patience (same key): its per-epoch training losses
    decide, in a NumPy loop, when ``patience`` epochs without a strict improvement have
    passed; the best parameters are those of a run stopped after the best epoch."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    data = (X, X @ np.array([1.0, -2.0, 0.5]) + 0.5 * rng.normal(size=40))
    fun = lambda w, b: jnp.mean((b[0] @ w - b[1]) ** 2)  # noqa: E731
    kw = dict(batch_size=5, key=jax.random.key(0), method="gd", lr=0.15, progress=False)
    full = jaxgd.fit(fun, jnp.zeros(3), data, epochs=40, **kw)
    losses = np.asarray(full.history.train_loss)
    patience, best, wait, stop, best_epoch = 2, np.inf, 0, None, 0
    for epoch, value in enumerate(losses, start=1):
        if value < best:
            best, wait, best_epoch = value, 0, epoch
        else:
            wait += 1
        if wait >= patience:
            stop = epoch
            break
    assert stop is not None and stop < 40, "the reference must stop early for the test to mean anything"
    res = jaxgd.fit(fun, jnp.zeros(3), data, epochs=40, patience=patience, **kw)
    assert res.status_enum is jaxgd.FitStatus.PATIENCE
    assert (int(res.epochs), int(res.best_epoch)) == (stop, best_epoch)
    np.testing.assert_array_equal(np.asarray(res.history.train_loss), losses[:stop])
    assert float(res.best_loss) == best
    upto_best = jaxgd.fit(fun, jnp.zeros(3), data, epochs=best_epoch, **kw)
    np.testing.assert_array_equal(np.asarray(res.params), np.asarray(upto_best.params))
    np.testing.assert_array_equal(np.asarray(res.best_params), np.asarray(upto_best.params))


# -- minimize under vmap with has_aux, progress, l1, bounds ----------------------------------------
LRS = (0.05, 0.1, 0.2)


def aux_quad(x):
    return quad(x), {"norm": jnp.linalg.norm(x)}


@pytest.mark.parametrize(
    "kw",
    [dict(fun=aux_quad, has_aux=True), dict(l1=0.3), dict(bounds=(0.0, 0.4)), dict(l1=0.1, bounds=(-0.2, None), accelerated=True)],
    ids=["has_aux", "l1", "bounds", "l1+bounds+accelerated"],
)
def test_minimize_under_vmap_equals_one_call_per_lr(kw):
    """Reference: the same runs one at a time, outside vmap."""
    kw = dict(kw)
    fun = kw.pop("fun", quad)
    run = lambda lr: jaxgd.minimize(fun, jnp.zeros(3), lr=lr, max_steps=40, gtol=1e-10, history=False, **kw)  # noqa: E731
    batched = jax.vmap(run)(jnp.asarray(LRS))
    for i, lr in enumerate(LRS):
        one = run(lr)
        np.testing.assert_allclose(np.asarray(batched.params[i]), np.asarray(one.params), rtol=1e-12, atol=1e-14)
        assert int(batched.steps[i]) == int(one.steps) and int(batched.status[i]) == int(one.status)
        if kw.get("has_aux"):
            np.testing.assert_allclose(float(batched.state.aux["norm"][i]), float(one.state.aux["norm"]), rtol=1e-12)


def test_minimize_under_vmap_with_a_progress_bar(capfd):
    """Reference: the runs one at a time; the bar must not change the numbers."""
    run = lambda lr: jaxgd.minimize(quad, jnp.zeros(3), lr=lr, max_steps=30, gtol=0.0, progress=10, history=False)  # noqa: E731
    batched = jax.vmap(run)(jnp.asarray(LRS))
    capfd.readouterr()
    for i, lr in enumerate(LRS):
        one = jaxgd.minimize(quad, jnp.zeros(3), lr=lr, max_steps=30, gtol=0.0, history=False)
        np.testing.assert_allclose(np.asarray(batched.params[i]), np.asarray(one.params), rtol=1e-12, atol=1e-14)


# -- a checkpoint saved with x64 on, loaded with it off ---------------------------------------------
def test_checkpoint_saved_in_float64_and_loaded_with_x64_off(tmp_path, compiles):
    """With x64 off, a float64 checkpoint does not silently become float32: loading it
    into a float32 tree names each leaf (found float64, expected float32), and
    ``minimize(resume=)`` refuses it the same way, before compiling anything."""
    path = tmp_path / "run.ckpt"
    res = jaxgd.minimize(quad, jnp.zeros(3), lr=0.1, max_steps=5, checkpoint_path=path, checkpoint_every=5)
    assert res.params.dtype == jnp.float64 and path.exists()
    raw = jaxgd.load_checkpoint(path)  # x64 on: the exact bits come back
    np.testing.assert_array_equal(np.asarray(raw[".params"] if ".params" in raw else next(iter(raw.values()))).dtype, np.float64)
    jaxgd.save_checkpoint(tmp_path / "f64.ckpt", {"x": jnp.zeros(3), "y": jnp.ones(2)})  # x64 on: float64
    with jax.enable_x64(False):
        like = {"x": jax.ShapeDtypeStruct((3,), jnp.float32)}
        jaxgd.save_checkpoint(tmp_path / "f32.ckpt", {"x": jnp.zeros(3)})
        assert jaxgd.load_checkpoint(tmp_path / "f32.ckpt", like)["x"].dtype == jnp.float32
        like2 = {"x": jax.ShapeDtypeStruct((3,), jnp.float32), "y": jax.ShapeDtypeStruct((2,), jnp.float32)}
        with pytest.raises(jaxgd.TreeMismatchError, match=r"(?s)\['x'\].*float64.*\['y'\].*float64"):  # each leaf named
            jaxgd.load_checkpoint(tmp_path / "f64.ckpt", like2)
        before = len(compiles)
        with pytest.raises(jaxgd.TreeMismatchError, match="float64"):
            jaxgd.minimize(lambda x: quad(x), jnp.zeros(3), lr=0.1, max_steps=10, resume=path)  # a new function
        assert len(compiles) == before  # refused before anything compiled
    with jax.enable_x64(True):
        again = jaxgd.minimize(quad, jnp.zeros(3), lr=0.1, max_steps=10, resume=path)
        assert again.params.dtype == jnp.float64 and int(again.steps) == 10
