"""L-BFGS-B (``method="lbfgs"`` with ``bounds``) against independent references.

References: ``scipy.optimize.nnls`` (non-negative least squares),
``scipy.optimize.minimize(method="L-BFGS-B")`` (the Fortran/C L-BFGS-B 3.0
code: solutions and evaluation counts), scipy's Python ``DCSRCH`` (the
Moré-Thuente line search, step by step), dense BFGS updates in NumPy (the
compact representation) and a plain sequential NumPy transcription of the
paper's Algorithm CP (the generalised Cauchy point).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize._dcsrch import DCSRCH

import jaxgd
from jaxgd.directions import lbfgsb as lb
from jaxgd.directions import lbfgsb_cauchy as cauchy_mod
from jaxgd.directions import lbfgsb_memory as mem_mod
from jaxgd.directions import lbfgsb_search as search_mod

from conftest import slow_if

A = np.random.default_rng(1).standard_normal((20, 10))
B = np.random.default_rng(2).standard_normal(20)


def lsq(w):
    return 0.5 * jnp.sum((jnp.asarray(A) @ w - jnp.asarray(B)) ** 2)


def scipy_lbfgsb(f, x0, lower, upper, gtol=1e-5, ftol=0.0):
    """scipy's L-BFGS-B with value and gradient from jax (float64)."""
    vg = jax.jit(jax.value_and_grad(f))

    def fg(x):
        v, g = vg(jnp.asarray(x))
        return float(v), np.asarray(g)

    bounds = [(None if not np.isfinite(a) else a, None if not np.isfinite(b) else b)
              for a, b in zip(np.broadcast_to(lower, np.shape(x0)), np.broadcast_to(upper, np.shape(x0)))]
    return so.minimize(fg, np.asarray(x0, np.float64), jac=True, method="L-BFGS-B", bounds=bounds,
                       options=dict(gtol=gtol, ftol=ftol, maxiter=10_000))


# -- end to end against scipy ------------------------------------------------------------------
@pytest.mark.slow  # (~6 s: make test time; scipy L-BFGS-B comparisons stay in make test)
def test_non_negative_least_squares_matches_scipy_nnls():
    ref, _ = so.nnls(A, B)
    res = jaxgd.minimize(lsq, jnp.zeros(10), method="lbfgs", bounds=(0.0, None), gtol=1e-9, max_steps=200)
    # gtol=1e-9 lies below what a search on f = 6.6 can resolve (decreases under eps |f| vanish in
    # rounding): scipy's L-BFGS-B stops there too (ftol=0: "relative reduction of f <= 0", 20
    # iterations), and jaxgd ends in PRECISION, a success, or at GTOL if rounding lets it.
    assert res.status_enum in (jaxgd.Status.GTOL, jaxgd.Status.PRECISION) and res.success
    np.testing.assert_allclose(res.params, ref, atol=1e-8)
    active = ref == 0.0
    assert active.any() and np.all(np.asarray(res.params)[active] == 0.0)  # exactly at the bound
    assert int(res.steps) < 50


def rosen(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def box_quadratic(seed, n=12):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, n))
    h = q @ q.T / n + 0.1 * np.eye(n)
    b = 3.0 * rng.standard_normal(n)
    lower = np.where(rng.random(n) < 0.7, -1.0, -np.inf)
    upper = np.where(rng.random(n) < 0.7, 1.0, np.inf)
    x0 = np.clip(rng.standard_normal(n), lower, upper)
    return (lambda x: 0.5 * x @ jnp.asarray(h) @ x - jnp.asarray(b) @ x), x0, lower, upper


ROSEN_UPPER = np.tile([0.5, 2.0], 5)
CASES = {
    "rosenbrock, upper bounds active": (rosen, np.full(10, -1.2), np.full(10, -2.0), ROSEN_UPPER),
    "rosenbrock, one-sided": (rosen, np.tile([-1.2, 1.0], 5), np.full(10, 1.5), np.full(10, np.inf)),
    **{f"box quadratic {s}": box_quadratic(s) for s in range(3)},
}
FAST = ("rosenbrock, upper bounds active",)  # the rest: -m slow (one compile each)


@pytest.mark.parametrize("name", [slow_if(n not in FAST, n) for n in CASES])
def test_solution_and_evaluations_match_scipy_lbfgsb(name):
    f, x0, lower, upper = CASES[name]
    ref = scipy_lbfgsb(f, x0, lower, upper, gtol=1e-6)
    # scipy converged: by its projected-gradient test, or (on some machines, rounding) by a last step
    # that did not lower f, at a projected gradient just above gtol (1.18e-6 on "rosenbrock, one-sided")
    assert ref.success and ref.message.startswith("CONVERGENCE"), ref.message
    res = jaxgd.minimize(f, jnp.asarray(x0), method="lbfgs", bounds=(jnp.asarray(lower), jnp.asarray(upper)),
                         gtol=1e-6, max_steps=2000, history=False)
    assert res.status_enum is jaxgd.Status.GTOL, res.message
    np.testing.assert_allclose(res.params, ref.x, atol=1e-6)
    assert int(res.nfev) <= 1.2 * ref.nfev + 1, (int(res.nfev), ref.nfev)
    x = np.asarray(res.params)
    assert np.all(x >= lower) and np.all(x <= upper)
    # Active-set correctness: where scipy's answer sits at a bound, ours is exactly there too.
    for bound in (lower, upper):
        at = ref.x == bound
        np.testing.assert_array_equal(x[at], bound[at])


@pytest.mark.slow
def test_projected_gradient_inf_norm_is_the_stopping_measure():
    # (the same loop the jit/vmap test compiles: same fun, same option structure)
    res = jaxgd.minimize(lsq, jnp.zeros(10), method="lbfgs", bounds=(0.0, jnp.full(10, 0.3)), gtol=1e-7, history=False)
    x, g = np.asarray(res.params), A.T @ (A @ np.asarray(res.params) - B)
    pg = np.abs(np.where(g < 0, np.maximum(x - 0.3, g), np.minimum(x - 0.0, g))).max()  # scipy's projgr
    np.testing.assert_allclose(float(res.grad_norm), pg, rtol=1e-6, atol=1e-14)
    assert pg <= 1e-7


@pytest.mark.slow
def test_a_run_at_the_rounding_floor_stops_in_precision():
    """gtol below what the gradient can reach and ftol off: scipy's L-BFGS-B (ftol=0) stops at
    the first step that does not lower f ("relative reduction <= 0"); jaxgd stops after
    STALL_STEPS such steps in a row, in PRECISION at scipy's answer, instead of cycling between
    two points of equal f until max_steps (it did: 500 steps, 4,901 evaluations)."""
    c, w = np.array([np.pi, np.e, np.sqrt(2.0), 1.0 / 3.0]), np.array([1.0, 10.0, 100.0, 1000.0])
    f = lambda x: jnp.sum(jnp.asarray(w) * (x - jnp.asarray(c)) ** 2) + 1e-3 * jnp.sum(x**4)  # noqa: E731
    lower, upper = np.full(4, 0.5), np.full(4, np.inf)
    ref = scipy_lbfgsb(f, np.zeros(4), lower, upper, gtol=1e-30, ftol=0.0)
    assert ref.message.startswith("CONVERGENCE: RELATIVE REDUCTION OF F")
    res = jaxgd.minimize(f, jnp.zeros(4), method="lbfgs", bounds=(0.5, None), gtol=1e-30, max_steps=500, history=False)
    assert res.status_enum is jaxgd.Status.PRECISION and res.success
    assert int(res.steps) <= ref.nit + lb.STALL_STEPS
    np.testing.assert_allclose(np.asarray(res.params), ref.x, rtol=1e-10)


@pytest.mark.slow
def test_ftol_stops_like_scipy():
    f, x0, lower, upper = CASES["rosenbrock, upper bounds active"]
    ref = scipy_lbfgsb(f, x0, lower, upper, gtol=0.0, ftol=1e-6)
    res = jaxgd.minimize(f, jnp.asarray(x0), method="lbfgs", bounds=(jnp.asarray(lower), jnp.asarray(upper)),
                         gtol=0.0, ftol=1e-6, max_steps=2000)
    assert res.status_enum is jaxgd.Status.FTOL
    assert abs(int(res.steps) - ref.nit) <= 2 and abs(float(res.loss) - ref.fun) <= 1e-5


@pytest.mark.slow
def test_pytree_params_with_pytree_bounds_match_scipy():
    def f(p):
        return jnp.sum((p["a"] - 2.0) ** 2) + jnp.sum((p["b"] + 1.0) ** 2) + 0.5 * jnp.sum(p["a"]) * jnp.sum(p["b"])

    x0 = {"a": jnp.zeros(3), "b": jnp.zeros((2, 2))}
    lower = {"a": 0.0, "b": -0.5}
    upper = {"a": jnp.array([1.0, 3.0, jnp.inf]), "b": 0.0}
    res = jaxgd.minimize(f, x0, method="lbfgs", bounds=(lower, upper), gtol=1e-9, history=False)
    flat = lambda x: f({"a": x[:3], "b": x[3:].reshape(2, 2)})  # noqa: E731
    lo = np.r_[np.zeros(3), np.full(4, -0.5)]
    hi = np.r_[1.0, 3.0, np.inf, np.zeros(4)]
    ref = scipy_lbfgsb(flat, np.zeros(7), lo, hi, gtol=1e-9)
    assert res.status_enum is jaxgd.Status.GTOL
    np.testing.assert_allclose(np.r_[res.params["a"], np.ravel(res.params["b"])], ref.x, atol=1e-7)
    assert res.params["b"].shape == (2, 2)


@pytest.mark.slow  # ~15 s of compiling (jit, eager and vmap of L-BFGS-B); make slow, run by CI
def test_under_jit_equals_eager_and_vmap_over_bound_values():
    run = lambda hi: jaxgd.minimize(lsq, jnp.zeros(10), method="lbfgs", bounds=(0.0, hi), gtol=1e-7, history=False)  # noqa: E731
    eager = run(jnp.full(10, 0.3))
    jitted = jax.jit(run)(jnp.full(10, 0.3))
    np.testing.assert_array_equal(jitted.params, eager.params)
    assert int(jitted.nfev) == int(eager.nfev)
    his = jnp.stack([jnp.full(10, 0.1), jnp.full(10, 0.3), jnp.full(10, 10.0)])
    batched = jax.vmap(run)(his)
    for i, hi in enumerate(his):
        ref = scipy_lbfgsb(lsq, np.zeros(10), np.zeros(10), np.asarray(hi), gtol=1e-7)
        np.testing.assert_allclose(batched.params[i], ref.x, atol=1e-6)
        assert int(batched.status[i]) == jaxgd.Status.GTOL


def _scaled_fit(seed, n):
    """A bounded least-squares fit whose columns are scaled over four orders of magnitude, every
    third coefficient >= 0: ``(a, b, lower, lsq_linear's BVLS answer)``."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((3 * n, n)) / np.logspace(-2, 2, n)
    b = rng.standard_normal(3 * n)
    lower = np.where(np.arange(n) % 3 == 0, 0.0, -np.inf)
    return a, b, lower, so.lsq_linear(a, b, bounds=(lower, np.inf), method="bvls", tol=1e-14)


@pytest.mark.slow
def test_badly_scaled_bounded_fit_uses_the_diagonal_b0():
    """Reference: scipy.optimize.lsq_linear (method="bvls", an active-set solver of bounded least
    squares). Columns scaled over four orders of magnitude, every third coefficient >= 0: with
    the default scaling ("auto") L-BFGS-B's B0 is the diagonal lbfgs learns, and the run reaches
    the BVLS answer (the same active set, exactly on its bounds) in about 150 evaluations;
    with scaling="scalar" (B0 = theta I, scipy L-BFGS-B's) it has not after 1,000 steps (scipy's
    own L-BFGS-B needs about 5,400 evaluations and stops 0.5 away, relative)."""
    n = 30
    a, b, lower, ref = _scaled_fit(0, n)
    ref = ref.x

    def f(x):
        return 0.5 * jnp.sum((a @ x - b) ** 2)

    def run(scaling):
        how = jaxgd.directions.lbfgs(scaling=scaling)
        return jaxgd.minimize(f, jnp.zeros(n), method=how, bounds=(jnp.asarray(lower), None), gtol=1e-8, max_steps=1000)

    auto, scalar = run("auto"), run("scalar")
    x = np.asarray(auto.params)
    assert auto.success and int(auto.nfev) <= 300, (auto.status, int(auto.nfev))
    np.testing.assert_allclose(x, ref, rtol=0, atol=1e-8 * np.abs(ref).max())
    assert np.array_equal(x == lower, ref == lower) and (ref == lower).sum() >= 3
    assert not scalar.success and np.abs(np.asarray(scalar.params) - ref).max() > 1e-3 * np.abs(ref).max()


@pytest.mark.slow
def test_float32_cycle_at_the_answer_ends_in_precision():
    """Reference: scipy.optimize.lsq_linear (BVLS) in float64. A float32 bounded fit with columns
    scaled over four orders of magnitude (the diagonal B0 in use) reaches the answer within a few
    hundred evaluations, then (on the machine this was found on) alternated between two points one
    ulp of f apart, every step accepted and every other one a decrease, so the count of steps that
    did not lower f never reached STALL_STEPS: 3,000 steps and 23,646 evaluations to MAX_STEPS.
    The stall window (no new low of f or of the projected gradient's norm for 100 steps) ends it in
    PRECISION at the lower point, at the answer to float32 precision."""
    n = 10
    a, b, lower, ref = _scaled_fit(1, n)
    a32, b32 = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)

    def f(x):
        return 0.5 * jnp.sum((a32 @ x - b32) ** 2)

    res = jaxgd.minimize(f, jnp.zeros(n, jnp.float32), method="lbfgs", bounds=(jnp.asarray(lower, jnp.float32), None),
                         max_steps=3000)
    assert res.success and int(res.nfev) <= 1000, (res.status, int(res.nfev))
    assert abs(float(res.loss) / ref.cost - 1) <= 1e-6
    np.testing.assert_allclose(np.asarray(res.params), ref.x, rtol=0, atol=1e-6 * np.abs(ref.x).max())


@pytest.mark.slow
def test_float32_run_ends_in_success():
    res = jaxgd.minimize(lambda w: lsq(w.astype(jnp.float64)).astype(jnp.float32), jnp.zeros(10, jnp.float32),
                         method="lbfgs", bounds=(0.0, None), gtol=1e-4)
    assert res.params.dtype == jnp.float32 and res.success, res.message
    np.testing.assert_allclose(res.params, so.nnls(A, B)[0], atol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.slow
def test_half_precision_run_reaches_nnls_answer(dtype):
    """Reference: scipy.optimize.nnls in float64. A float16 or bfloat16 run raised JAX's "Unsupported
    dtype" from LAPACK's Cholesky (the memory's middle matrix): it is factored in float32 now. The loss
    is taken in float32 (a half-precision sum of 20 squares loses the answer), the steps in the half type."""
    a, b = jnp.asarray(A, jnp.float32), jnp.asarray(B, jnp.float32)
    f = lambda w: 0.5 * jnp.sum((a @ w.astype(jnp.float32) - b) ** 2).astype(w.dtype)  # noqa: E731
    res = jaxgd.minimize(f, jnp.zeros(10, dtype), method="lbfgs", bounds=(0.0, None), tier="compiled")
    assert res.params.dtype == jnp.dtype(dtype) and np.isfinite(float(res.loss))
    ref = so.nnls(A, B)[0]
    np.testing.assert_allclose(np.asarray(res.params, np.float64), ref, atol=0.05 if dtype == "float16" else 0.2)


def test_dispatch_lbfgs_with_bounds_is_lbfgsb():
    assert isinstance(jaxgd.Solver(lsq, method="lbfgs", bounds=(0.0, None)).rule, lb.LbfgsbSearch)
    assert jaxgd.Solver(lsq, method="lbfgs", bounds=(0.0, None)).rule.memory_size == 10
    configured = jaxgd.Solver(lsq, method=jaxgd.directions.lbfgs(memory_size=4, scaling="scalar"), bounds=(0.0, None))
    assert isinstance(configured.rule, lb.LbfgsbSearch) and configured.rule.memory_size == 4
    assert not isinstance(jaxgd.Solver(lsq, method="lbfgs").rule, lb.LbfgsbSearch)
    assert not isinstance(jaxgd.Solver(lsq, method="lbfgs", lr=0.1, bounds=(None, None)).rule, lb.LbfgsbSearch)
    assert not isinstance(jaxgd.Solver(lsq, method="gd", bounds=(0.0, None)).rule, lb.LbfgsbSearch)
    with pytest.raises(ValueError, match="l1"):  # quasi-Newton methods refuse l1 (jaxgd.core.combinations)
        jaxgd.Solver(lsq, method="lbfgs", l1=0.1, bounds=(0.0, None))
    with pytest.raises(ValueError, match="bounds= cannot be combined with method='bfgs'"):
        jaxgd.Solver(lsq, method="bfgs", bounds=(0.0, None))


# What a projected L-BFGS step did instead of L-BFGS-B (session 30, float64; 2-D and 10-D Rosenbrock in
# the boxes [-0.5, 0.8] and [1.5, 3] and the NNLS above, against scipy's L-BFGS-B): MoreThuente() and
# clip=100 ended LINESEARCH_FAILED in 5 of 5 runs each, 1e-7 to 1e-2 away; lr=1e-3 ran to MAX_STEPS in 4 of
# 5; StrongWolfe() took 55,000-600,000 evaluations, Backtracking() 437-3,135, where L-BFGS-B took 4-40.
@pytest.mark.parametrize("option", [dict(lr=0.1), dict(lr=jaxgd.linesearch.MoreThuente()),
                                    dict(lr=jaxgd.schedules.constant_schedule(0.1)), dict(clip=100.0)],
                         ids=["float", "rule", "schedule", "clip"])
def test_another_lr_or_clip_with_lbfgs_and_bounds_is_refused_up_front(option):
    """Every entry point refuses the projection path for lbfgs + bounds on the host, naming the
    option, lbfgs and what to use; without bounds the same options are accepted."""
    name = next(iter(option))
    data = jnp.zeros((4, 1))
    calls = [lambda: jaxgd.Solver(lsq, "lbfgs", bounds=(0.0, None), **option),
             lambda: jaxgd.minimize(lsq, jnp.zeros(10), method="lbfgs", bounds=(0.0, 1.0), **option)]
    if name == "lr" and not isinstance(option["lr"], jaxgd.linesearch.MoreThuente):  # (fit takes no line search)
        calls += [lambda: jaxgd.fit(lambda p, b: lsq(p) + 0.0 * jnp.sum(b), jnp.zeros(10), data, batch_size=2,
                                    epochs=1, key=jax.random.PRNGKey(0), method="lbfgs", bounds=(0.0, None), **option),
                  lambda: jaxgd.as_optax("lbfgs", option["lr"], bounds=(0.0, None))]
    for call in calls:
        with pytest.raises(ValueError, match=f"{name}=.* cannot be combined with method='lbfgs' and bounds=") as err:
            call()
        assert f"Leave {name} unset for L-BFGS-B" in str(err.value)
    jaxgd.Solver(lsq, "lbfgs", **option)


def test_as_optax_refuses_lbfgsb():
    """L-BFGS-B's step lives in the solver loop: as_optax("lbfgs", bounds=) is refused when built
    (before, it built and raised AttributeError at the first update)."""
    with pytest.raises(ValueError, match="as_optax cannot run method='lbfgs' with bounds="):
        jaxgd.as_optax("lbfgs", bounds=(0.0, None))
    jaxgd.as_optax("lbfgs")


@pytest.mark.slow
def test_step_keeps_the_carry_structure():
    solver = jaxgd.Solver(lsq, method="lbfgs", bounds=(0.0, None))
    state = solver.init(jnp.zeros(10))
    new = jax.jit(solver.step)(state)
    same = lambda t: jax.tree_util.tree_map(lambda x: (jnp.shape(x), jnp.result_type(x)), t)  # noqa: E731
    assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(state)
    assert same(new) == same(state)


# -- the pieces --------------------------------------------------------------------------------
def test_compact_representation_equals_dense_bfgs_updates():
    """B = theta I - W M W^T equals BFGS updates of B0 = theta I with the kept pairs (BNS 1994, Thm 2.3)."""
    rng = np.random.default_rng(0)
    n, m = 6, 3
    mem = mem_mod.empty(n, m, jnp.float64)
    pairs = []
    for _ in range(5):
        s = rng.standard_normal(n)
        y = s + 0.3 * rng.standard_normal(n)
        pairs.append((s, y))
        mem = jax.jit(mem_mod.push)(mem, jnp.asarray(s), jnp.asarray(y), jnp.asarray(True))
    theta = pairs[-1][1] @ pairs[-1][1] / (pairs[-1][0] @ pairs[-1][1])
    dense = theta * np.eye(n)
    for s, y in pairs[-m:]:
        bs = dense @ s
        dense = dense - np.outer(bs, bs) / (s @ bs) + np.outer(y, y) / (y @ s)
    np.testing.assert_allclose(jax.jit(mem_mod.dense_b)(mem), dense, rtol=1e-10, atol=1e-10)


def _diagonal_memory(rng, n, m, pairs=5):
    """A memory of ``pairs`` random pairs (the last ``m`` kept) with a diagonal D spread over 1e4
    and its factor c set, and the dense reference: BFGS updates of B0 = (c D)^{-1} by the kept pairs."""
    mem = mem_mod.empty(n, m, jnp.float64)
    scale = np.logspace(-2, 2, n)
    kept = []
    for _ in range(pairs):
        s = rng.standard_normal(n) * scale
        y = s / scale**2 * rng.uniform(0.5, 2.0, n)
        kept.append((s, y))
        mem = jax.jit(mem_mod.push)(mem, jnp.asarray(s), jnp.asarray(y), jnp.asarray(True))
    d = scale**2 * rng.uniform(0.8, 1.25, n)
    c = 0.7
    mem = mem._replace(diag=jnp.asarray(d), diag_scale=jnp.asarray(c))
    dense = np.diag(1.0 / (c * d))
    for s, y in kept[-m:]:
        bs = dense @ s
        dense = dense - np.outer(bs, bs) / (s @ bs) + np.outer(y, y) / (y @ s)
    return mem, dense


def test_scaled_memory_is_bfgs_from_a_diagonal_b0():
    """Reference: dense BFGS updates of B0 = (c D)^{-1} (NumPy). The memory seen in the variables
    x / sigma (sigma = sqrt(D)) is that matrix there: diag(1/sigma) B~ diag(1/sigma) = B; with no
    diagonal in use (c = 0, or no pair held) the view is the memory itself, bit for bit."""
    mem, dense = _diagonal_memory(np.random.default_rng(3), 7, 3)
    view, sigma = jax.jit(mem_mod.scaled)(mem)
    np.testing.assert_allclose(sigma, np.sqrt(np.asarray(mem.diag)), rtol=1e-15)
    b = np.asarray(jax.jit(mem_mod.dense_b)(view)) / np.outer(sigma, sigma)
    np.testing.assert_allclose(b, dense, rtol=1e-9, atol=1e-9 * np.abs(dense).max())
    for off in (mem._replace(diag_scale=jnp.zeros(())), mem_mod.reset(mem)):
        same, ones = jax.jit(mem_mod.scaled)(off)
        assert np.all(np.asarray(ones) == 1.0)
        for a, b in zip(jax.tree_util.tree_leaves(same), jax.tree_util.tree_leaves(off)):
            assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("xp", ["jax", "numpy"])
def test_search_point_with_a_diagonal_b0_is_the_dense_one(xp):
    """Reference: with the dense B of BFGS updates from B0 = (c D)^{-1} (NumPy), algorithm CP
    walked breakpoint by breakpoint (np_cauchy) and the Newton step over the variables free
    there, z_F = xcp_F - (B_FF)^{-1} (g + B (xcp - x))_F (BLNZ 1995, section 5, the subspace
    problem without its box, which this setup keeps inactive). search_point computes them in the
    scaled variables, jitted or with NumPy (the host tier's); the point must be the same, and
    exactly on its bounds where CP put it. Three problems (seeds) a case, in one test: their shapes are
    alike, one compile serves all three."""
    for seed in range(3):
        _check_search_point(seed, xp)


def _check_search_point(seed, xp):
    rng = np.random.default_rng(seed)
    n, m = 8, 3
    mem, dense = _diagonal_memory(rng, n, m)
    scale = np.logspace(-2, 2, n)
    x = rng.standard_normal(n) * scale
    g = dense @ (rng.standard_normal(n) * scale)
    # one variable near a bound -g pushes it onto, one at such a bound; the others free within wide bounds
    lo, hi = x - 1e6 * scale, x + 1e6 * scale
    for i, gap in ((1, 1e-3), (5, 0.0)):
        (hi if g[i] < 0 else lo)[i] = x[i] - gap * scale[i] * np.sign(g[i])
    xcp = np_cauchy(x, g, lo, hi, dense)
    free = (xcp > lo) & (xcp < hi)
    assert (~free).sum() >= 1
    r = (g + dense @ (xcp - x))[free]
    z_ref = xcp.copy()
    z_ref[free] -= np.linalg.solve(dense[np.ix_(free, free)], r)
    assert np.all((z_ref > lo) & (z_ref < hi) | ~free)
    if xp == "numpy":
        with np.errstate(all="ignore"):  # (as the host loop runs it: masked divisions by zero, as in XLA)
            z, _ = lb.search_point(x, g, lo, hi, type(mem)(*(np.asarray(v) for v in mem)), True, np)
        assert isinstance(z, np.ndarray) and z.dtype == np.float64
    else:
        z, _ = jax.jit(lb.search_point, static_argnums=5)(
            jnp.asarray(x), jnp.asarray(g), jnp.asarray(lo), jnp.asarray(hi), mem, True)
    z = np.asarray(z)
    np.testing.assert_allclose(z, z_ref, rtol=1e-7, atol=1e-9 * np.abs(x).max(), err_msg=f"seed {seed}")
    assert np.array_equal(z[~free], xcp[~free]), seed  # at their bounds exactly


def np_cauchy(x, g, lo, hi, b):
    """Algorithm CP (BLNZ 1995) walked breakpoint by breakpoint with a dense B (the reference)."""
    t = np.where(g < 0, (x - hi) / g, np.where(g > 0, (x - lo) / g, np.inf))
    d = np.where(t == 0, 0.0, -g)
    z = np.zeros_like(x)
    t_old = 0.0
    for t_next in sorted(set(t[(t > 0) & np.isfinite(t)])) + [np.inf]:
        if not d.any():  # every variable has reached its bound
            return x + z
        f1 = g @ d + d @ b @ z
        f2 = d @ b @ d
        dtm = -f1 / f2
        if dtm < t_next - t_old:
            return x + z + max(dtm, 0.0) * d
        z = z + (t_next - t_old) * d
        d = np.where(t <= t_next, 0.0, d)
        t_old = t_next
    return x + z


@pytest.mark.parametrize("tier, walk, stages", [
    ("compiled", 0, ()), ("compiled", 2, ()), ("compiled", 100, ()), ("numpy", None, ()),
    ("compiled", 0, (2,)), ("compiled", 1, (3, 6)), ("compiled", 0, (9,)),
])
def test_cauchy_point_matches_sequential_algorithm_cp(walk, stages, tier, monkeypatch):
    """The Cauchy point (reference: np_cauchy, Algorithm CP walked with a dense B). Compiled, by the
    walk over the first lbfgsb_cauchy.WALK breakpoints, then the segments of the first k breakpoints
    for each k of first_sizes (lax.top_k), else every segment at once from the sorted ones: walk=0
    always the sorted form, 100 always the walk, 2 the walk and then the sorted form (each case passes
    4 breakpoints); stages (2,): the first two breakpoints' segments do not hold the point (the
    segment after the second ends at a breakpoint not sorted: taken as endless, it gave a wrong
    point), then the sorted form; (3, 6): the second stage finds it; (9,): every breakpoint sorted by
    top_k. On NumPy (the host tier's step) the sorted form. Four problems (seeds) a case, in one
    test: the seeds' shapes are alike, so one compile of a walk serves all four."""
    if walk is not None:  # (9 variables: below WALK_FROM, where the walk is not used otherwise)
        monkeypatch.setattr(cauchy_mod, "WALK", walk)
        monkeypatch.setattr(cauchy_mod, "WALK_FROM", 0)
        monkeypatch.setattr(cauchy_mod, "first_sizes", lambda n: stages)
    fresh = jax.jit(lambda *a: cauchy_mod.cauchy(*a))  # (a new trace: WALK is read when tracing)
    for seed in range(4):
        _check_cauchy_point(seed, tier, fresh)


def _check_cauchy_point(seed, tier, fresh):
    rng = np.random.default_rng(seed)
    n, m = 9, 3
    mem = mem_mod.empty(n, m, jnp.float64)
    for _ in range(m):
        s = rng.standard_normal(n)
        mem = jax.jit(mem_mod.push)(mem, jnp.asarray(s), jnp.asarray(s * rng.uniform(0.5, 2.0, n)), jnp.asarray(True))
    lo, hi = -rng.uniform(0.1, 1.0, n), rng.uniform(0.1, 1.0, n)
    hi[0] = np.inf
    x = rng.uniform(lo, np.minimum(hi, 1.0))
    x[1] = lo[1]
    g = 3.0 * rng.standard_normal(n)
    w, big_m, ok = jax.jit(mem_mod.compact)(mem)
    assert bool(ok)
    if tier == "compiled":
        xcp, c, _ = fresh(jnp.asarray(x), jnp.asarray(g), jnp.asarray(lo), jnp.asarray(hi), w, big_m, mem.theta)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # (as the host loop runs it)
            xcp, c, _ = cauchy_mod.cauchy(x, g, lo, hi, np.asarray(w), np.asarray(big_m), np.asarray(mem.theta), np)
    ref = np_cauchy(x, g, lo, hi, np.asarray(jax.jit(mem_mod.dense_b)(mem)))
    np.testing.assert_allclose(xcp, ref, atol=1e-12, err_msg=f"seed {seed}")
    np.testing.assert_allclose(c, np.asarray(w).T @ (ref - x), atol=1e-10, err_msg=f"seed {seed}")


def test_top_k_stage_keeps_float32_digits():
    """A diff review (session 64): the top_k stage first took segment j's ||d_j||^2 and W^T d_j as totals less
    prefix sums, which cancel where most variables are held at a bound: in float32 its Cauchy point moved 5.7e-4
    in a unit box. Reference: the sorted form in float64 on the same problem (90 % of 4,096 variables held at 0);
    the stage's float32 point is as close to it as the float32 sorted form's (3e-8 here)."""
    rng = np.random.default_rng(1)
    n, m = 4096, 2
    x, g = rng.uniform(0.05, 0.95, n), rng.normal(size=n)
    held = rng.permutation(n)[: int(0.9 * n)]
    x[held], g[held] = 0.0, np.abs(g[held]) + 0.1
    w, big_m = rng.normal(size=(n, 2 * m)) * 0.3 / np.sqrt(n), np.eye(2 * m) * 0.5
    args = lambda dt: [jnp.asarray(v, dt) for v in (x, g, np.zeros(n), np.ones(n), w, big_m, 0.05)]  # noqa: E731
    ref = np.asarray(jax.jit(cauchy_mod._sorted)(*args(jnp.float64))[0])
    found, (xcp, _, free) = jax.jit(cauchy_mod._first, static_argnums=7)(*args(jnp.float32), 1024)
    sorted32 = jax.jit(cauchy_mod._sorted)(*args(jnp.float32))
    assert bool(found) and np.array_equal(np.asarray(free), np.asarray(sorted32[2]))
    err, err_sorted = np.abs(np.asarray(xcp, np.float64) - ref).max(), np.abs(np.asarray(sorted32[0], np.float64) - ref).max()
    assert err <= 2 * err_sorted + 1e-7, (err, err_sorted)


@pytest.mark.parametrize("xp", ["numpy", "jax"])
def test_cauchy_point_of_the_scaled_model_has_the_unscaled_bits(xp):
    """cauchy scales g, theta and M by a power of two where |g| > 1 (float32 overflowed at a curvature of
    1e16); reference: the same sorted form on the model as given, bit for bit (and np_cauchy above). Three
    models (seeds) a case, in one test: their shapes are alike, one compile of each function serves all three."""
    for seed in range(3):
        _check_scaled_cauchy_point(seed, xp)


def _check_scaled_cauchy_point(seed, xp):
    rng = np.random.default_rng(seed)
    n, m = 9, 3
    mem = mem_mod.empty(n, m, jnp.float64)
    for _ in range(m):
        s = rng.standard_normal(n)
        mem = jax.jit(mem_mod.push)(mem, jnp.asarray(s), jnp.asarray(300.0 * s * rng.uniform(0.5, 2.0, n)), jnp.asarray(True))
    lo, hi = -rng.uniform(0.1, 1.0, n), rng.uniform(0.1, 1.0, n)
    x, g = rng.uniform(lo, hi), 5e3 * rng.standard_normal(n)
    w, big_m, _ = jax.jit(mem_mod.compact)(mem)
    args = (x, g, lo, hi, np.asarray(w), np.asarray(big_m), np.asarray(mem.theta))
    if xp == "numpy":
        with np.errstate(divide="ignore", invalid="ignore"):
            got, want = cauchy_mod.cauchy(*args, np), cauchy_mod._sorted(*args, np)
    else:
        args = tuple(jnp.asarray(a) for a in args)
        got, want = jax.jit(cauchy_mod.cauchy)(*args), jax.jit(cauchy_mod._sorted)(*args)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b, err_msg=f"seed {seed}")
    np.testing.assert_allclose(got[0], np_cauchy(x, g, lo, hi, np.asarray(jax.jit(mem_mod.dense_b)(mem))), atol=1e-9,
                               err_msg=f"seed {seed}")


def steep_quadratic(x):
    return 1e16 * jnp.sum((x - 1.3) ** 2)


@pytest.mark.parametrize("tier", ["host", "compiled"])
def test_float32_steep_quadratic_reaches_its_answer(tier):
    # reference (closed form): x* = 1.3, f* = 0 for f = 1e16 ||x - 1.3||^2 in a box that does not bind.
    # theta ||g||^2 (2e16 times 8e24) overflowed the float32 Cauchy point: the host tier's search failed
    # and, read from projgr's norm (capped at the far bound's distance), ended PRECISION at loss 2e8
    # (both boxes in one test: the bounds are the compiled loop's inputs, one float32 compile serves both)
    for box in (1e4, 1e7):
        res = jaxgd.minimize(steep_quadratic, jnp.zeros(3, jnp.float32), method="lbfgs", bounds=(-box, box), tier=tier)
        assert res.status_enum is jaxgd.Status.GTOL, (box, res.message)
        np.testing.assert_array_equal(res.params, np.full(3, np.float32(1.3)), err_msg=f"box {box}")


def test_precision_rule_reads_the_gradient_a_step_can_follow():
    # reference: NumPy transcriptions. projgr (the gtol measure) caps a coordinate's gradient at its
    # distance to the bound; the precision rule's norm leaves out only coordinates held at a bound
    x = np.array([1.3, 0.0, 5.0, 2.0])
    g = np.array([-1.6e12, 3.0, -2.0, 1e-20])
    lo, hi = np.array([-1e4, 0.0, -np.inf, 0.0]), np.array([1e4, 1.0, 5.0, np.inf])
    projgr = np.where(g < 0, np.maximum(x - hi, g), np.minimum(x - lo, g))
    free = np.where(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)), 0.0, g)
    for xp, args in (("jax", tuple(jnp.asarray(a) for a in (x, g, lo, hi))), ("numpy", (x, g, lo, hi))):
        kw = {} if xp == "jax" else dict(xp=np, norm=np.linalg.norm)
        assert float(lb.projected_grad_norm(*args, **kw)) == np.abs(projgr).max() == 1e4 - 1.3
        assert float(lb.free_grad_norm(*args, **kw)) == np.abs(free).max() == 1.6e12


@pytest.mark.parametrize("dtype, x0, lower", [("float64", 1e17, 0.0), ("float32", 0.0, -10.0)])
def test_unbounded_below_in_a_half_open_box_is_no_success(dtype, x0, lower):
    # f = -sum(x) has no minimum on x >= lower (scipy's L-BFGS-B: ABNORMAL); its projected gradient is -1
    # everywhere, where x - clip(x - g) rounded to 0 once x passed 2^54 (2^24 in float32): GTOL
    res = jaxgd.minimize(lambda x: -jnp.sum(x), jnp.full(2, x0, dtype), method="lbfgs", bounds=(lower, None),
                         max_steps=200)
    assert not res.success and res.status_enum is not jaxgd.Status.GTOL
    assert float(res.grad_norm) == 1.0


def test_more_thuente_steps_match_scipy_dcsrch():
    """The same trial steps as scipy's Python DCSRCH (MINPACK-2) on a 1-D function."""
    phi = lambda a: (a - 3.0) ** 4 - 2.0 * a  # noqa: E731
    dphi = lambda a: 4.0 * (a - 3.0) ** 3 - 2.0  # noqa: E731
    trials = []
    ref = DCSRCH(lambda a: trials.append(a) or phi(a), dphi, ftol=1e-3, gtol=0.9, xtol=0.1, stpmin=0.0, stpmax=1e10)
    stp_ref, *_ = ref(0.01, phi0=phi(0.0), derphi0=dphi(0.0), maxiter=20)
    ms = search_mod.start(jnp.asarray(phi(0.0)), jnp.asarray(dphi(0.0)), jnp.asarray(0.01), jnp.asarray(1e10), 1e-3)
    stp, ours = jnp.asarray(0.01), []
    for _ in range(20):
        ours.append(float(stp))
        stp, ms, stop, _ = search_mod.dcsrch(ms, stp, jnp.asarray(phi(float(stp))), jnp.asarray(dphi(float(stp))), 0.9, 0.1)
        if bool(stop):
            break
    assert len(ours) > 2
    np.testing.assert_allclose(ours, trials[: len(ours)], rtol=1e-12)
    assert float(stp) == pytest.approx(stp_ref, rel=1e-12)


@pytest.mark.parametrize("c, m, p", [(1.0, 1.2, 2), (20.0, 1.1, 4), (50.0, 1.3, 3)])
def test_search_does_not_evaluate_its_last_point_again(c, m, p):
    """Reference: scipy's Python DCSRCH (MINPACK-2) with scipy's cache of the last point (its
    ``ScalarFunction``, through which L-BFGS-B evaluates): when dcsrch sends the search back to its
    best step and that is the trial just evaluated, the repeated request costs no evaluation. A
    line that steepens into a wall at ``m`` inside ``[0, stpmax]``: the search brackets, narrows
    below ``xtol`` and ends with a warning at its best trial."""
    phi = lambda a: -a - c * a**2 + 1e4 * jnp.maximum(a - m, 0.0) ** p  # noqa: E731
    dphi = jax.grad(phi)
    distinct = []

    def cached(a):
        if not distinct or distinct[-1] != a:
            distinct.append(a)
        return float(phi(a))

    stpmax = 1.4626
    ref = DCSRCH(cached, lambda a: float(dphi(a)), ftol=1e-3, gtol=0.9, xtol=0.1, stpmin=0.0, stpmax=stpmax)
    _, _, _, task = ref(1.0, phi0=float(phi(0.0)), derphi0=float(dphi(0.0)), maxiter=30)
    assert task.startswith(b"WARNING"), task
    k = len(distinct)

    ev = lambda s: (s, phi(s), dphi(s))  # noqa: E731
    # (the budget a traced argument: one compile for the three budgets; the search compares it, nfev < maxls, as
    # it does L-BFGS-B's static one)
    searched = jax.jit(lambda maxls: search_mod.search(
        ev, jnp.zeros(()), phi(0.0), dphi(0.0), jnp.asarray(1.0), jnp.asarray(stpmax), 1e-3, 0.9, 0.1, maxls))

    def run(maxls):
        return searched(jnp.asarray(maxls, jnp.int32))

    res = run(20)
    assert not bool(res.failed) and int(res.nfev) == k, (int(res.nfev), k)
    assert float(res.stp) == pytest.approx(distinct[-1], rel=1e-12)
    # L-BFGS-B's budget counts requests (lnsrlb's iback): the repeated request is the (k+1)-th
    assert bool(run(k).failed)
    again = run(k + 1)
    assert not bool(again.failed) and int(again.nfev) == k


def test_search_ends_at_a_trial_that_repeats_the_best_one():
    """tests/test_more_thuente.py's line for L-BFGS-B's search: f(t) = -t with a jump of 1e6 at
    t = 0.3 that the gradient does not see (stop_gradient), from x = 1e8 (float64 spacing 1.5e-8)
    along d = 1. Once the best trial lies below the jump, dcstep's cubic through it lands a hair
    past the best step, below the rounding of x, and the next trial repeats the best one's value and
    slope bit for bit: the search ends there, at that point, after 8 evaluations (16 before the
    test, spent on such repeats). Reference: the point arithmetic (x + 0.25 is a float64 whose
    value f reproduces) and MoreThuente's count on the same line."""
    f = lambda v: -(v - 1e8) + jax.lax.stop_gradient(jnp.where(v >= 1e8 + 0.3, 1e6, 0.0))  # noqa: E731
    vg = jax.value_and_grad(f)

    def run(x, d):  # x and d as arguments: closure constants let XLA fold x + t d - 1e8 into t
        def ev(t):
            v, g = vg(x + t * d)
            return x + t * d, v, g * d

        v0, g0 = vg(x)
        return search_mod.search(ev, x, v0, g0 * d, jnp.asarray(1.0), jnp.asarray(1e10), 1e-3, 0.9, 0.1, 20)

    res = jax.jit(run)(jnp.asarray(1e8), jnp.asarray(1.0))
    assert not bool(res.failed) and int(res.nfev) == 8, (bool(res.failed), int(res.nfev))
    assert float(res.trial) - 1e8 < 0.3 and float(res.trial) == 1e8 + float(res.stp)


def test_search_at_the_rounding_of_f_accepts_a_flat_trial_with_curvature():
    """Reference: Hager & Zhang's approximate Wolfe conditions (SIAM J. Optim. 16(1), 2005, eq. 4.1,
    at rounding level: |f - f(0)| <= 64 eps |f(0)|). A line whose f is flat to a few ulps (rounding
    noise above f(0)) and whose slope vanishes at the unit step: MINPACK's sufficient-decrease test
    fails there by rounding; the search accepts the unit step at once. Where f rises by more than
    rounding the plain test stands (no step is accepted at the same trial)."""
    f0, g0 = 1.0e4, -1.0e-9

    def run(noise):
        ev = lambda s: (s, f0 + noise * s, g0 * (1.0 - s))  # noqa: E731
        return jax.jit(lambda: search_mod.search(
            ev, jnp.zeros(()), jnp.asarray(f0), jnp.asarray(g0), jnp.asarray(1.0), jnp.asarray(1e10), 1e-3, 0.9, 0.1, 20))()

    flat = run(4 * np.spacing(f0))  # f(1) four ulps above f(0): rounding
    assert not bool(flat.failed) and int(flat.nfev) == 1 and float(flat.stp) == 1.0
    rising = run(1e-6 * f0)  # f(1) well above f(0): not a tie
    assert int(rising.nfev) > 1 or bool(rising.failed)


@pytest.mark.slow
def test_checkpointed_run_equals_uninterrupted_run(tmp_path):
    kw = dict(method="lbfgs", bounds=(0.0, jnp.full(10, 0.3)), gtol=1e-7, history=False)
    full = jaxgd.minimize(lsq, jnp.zeros(10), **kw)
    chunked = jaxgd.minimize(lsq, jnp.zeros(10), checkpoint_every=3, checkpoint_path=tmp_path / "c.npz", **kw)
    np.testing.assert_array_equal(chunked.params, full.params)
    assert int(chunked.nfev) == int(full.nfev) and int(chunked.steps) == int(full.steps) > 3


@pytest.mark.slow
def test_checkpointed_run_with_the_diagonal_b0_equals_uninterrupted_run(tmp_path):
    """The memory's diagonal, its factor and the stall counts are state: a run resumed from
    checkpoints every 7 steps is the uninterrupted one bit for bit, on a fit where the diagonal is
    in use (its evaluations differ from scaling="scalar"'s)."""
    a, b, lower, _ = _scaled_fit(0, 10)

    def f(x):
        return 0.5 * jnp.sum((a @ x - b) ** 2)

    kw = dict(bounds=(jnp.asarray(lower), None), gtol=1e-8, history=False)
    full = jaxgd.minimize(f, jnp.zeros(10), method="lbfgs", **kw)
    chunked = jaxgd.minimize(f, jnp.zeros(10), method="lbfgs", checkpoint_every=7,
                             checkpoint_path=tmp_path / "c.npz", **kw)
    scalar = jaxgd.minimize(f, jnp.zeros(10), method=jaxgd.directions.lbfgs(scaling="scalar"), **kw)
    np.testing.assert_array_equal(chunked.params, full.params)
    assert int(chunked.nfev) == int(full.nfev) and int(chunked.steps) == int(full.steps) > 14
    assert int(scalar.nfev) != int(full.nfev)


# -- the subspace step on an ill-conditioned memory ---------------------------------
# The memory of sif2jax's KOEBHELB after 40 L-BFGS-B steps (3 variables, 10 pairs, oldest first;
# no bound active at x): cond(B) = 1.4e10.
KOEB_X = [9.774701911889078, -0.06605683752025958, 0.007668737700529155]
KOEB_G = [-7.648146434328449e-05, 0.03832287731141326, -0.7840397334880357]
KOEB_S = [
    [-4.491368354564429e-05, -1.0950176976054493e-05, -6.594927265575479e-07],
    [-0.00013250127470953998, -1.8482289165178134e-05, -1.1057477395061063e-06],
    [-3.701515942289291e-05, -2.4492165818651435e-06, -1.0653142350474515e-07],
    [-0.00035811866532498016, -2.861872501866425e-05, -1.6944121433654438e-06],
    [-0.001083947761685522, -5.23145329182767e-05, -3.013850049117528e-06],
    [-0.002781801575425291, -8.223936047577207e-05, -4.526551932978844e-06],
    [-0.007560561233129093, -0.00014056643321339046, -7.187550218506686e-06],
    [-0.019953695360710455, -0.00023879760879792766, -1.0819607764201399e-05],
    [-0.053158931468937354, -0.0004229412889666523, -1.5678052444776693e-05],
    [-0.14026477901724732, -0.0007729917527835722, -2.0193273894043677e-05],
]
KOEB_Y = [
    [5.929084064045049e-07, -0.00022823683679354522, 0.002579288764523791],
    [2.4191048393738953e-07, -0.00014188174221183535, 0.00039054275247818286],
    [7.434082475142313e-06, -0.002387433062674538, 0.038752670718714195],
    [-2.1036100594035102e-06, 0.0005747851185174059, -0.012334681647134242],
    [-3.931428972090773e-06, 0.0010819409746342728, -0.023005053591333847],
    [-6.017648341191715e-06, 0.0016576304214536168, -0.03532315931610314],
    [-9.88216902498834e-06, 0.002725313562700827, -0.05825007335394568],
    [-1.59907921367463e-05, 0.004420189096822423, -0.09458358246249544],
    [-2.8979140573899836e-05, 0.00811125994421035, -0.16975347828903833],
    [-7.819887714406273e-05, 0.02269414607307776, -0.4345935311099798],
]


def _long_double_solve(a, b):
    """Gaussian elimination with partial pivoting in NumPy's long double (numpy.linalg has none)."""
    a, b, k = a.copy(), b.copy(), len(b)
    for i in range(k):
        p = i + int(np.argmax(np.abs(a[i:, i])))
        a[[i, p]], b[[i, p]] = a[[p, i]], b[[p, i]]
        for j in range(i + 1, k):
            t = a[j, i] / a[i, i]
            a[j] -= t * a[i]
            b[j] -= t * b[i]
    out = np.zeros(k, dtype=a.dtype)
    for i in reversed(range(k)):
        out[i] = (b[i] - a[i, i + 1 :] @ out[i + 1 :]) / a[i, i]
    return out


@pytest.mark.parametrize("jitted", [pytest.param(False, id="eager"), True, pytest.param("numpy", id="numpy")])
@pytest.mark.slow
def test_subspace_step_on_an_ill_conditioned_memory(jitted):
    """Reference: B built by the BFGS updates of theta I with the same pairs (Byrd, Nocedal &
    Schnabel 1994, Thm 2.3: the compact form is that matrix) in long double, and the Newton step
    z = x - B^-1 g (every variable free). The step through the compact form must agree to what
    cond(B) eps allows (3e-6); it had no correct digit when M was formed and I - M W'ZZ'W / theta
    solved (the jitted and the eager programs then pointed opposite ways from x)."""
    from jaxgd.directions import lbfgsb as _lbfgsb, lbfgsb_memory as _mem

    x, g = np.asarray(KOEB_X), np.asarray(KOEB_G)
    mem = _mem.empty(3, 10, jnp.float64)
    for s, y in zip(KOEB_S, KOEB_Y):
        mem = _mem.push(mem, jnp.asarray(s), jnp.asarray(y), jnp.asarray(True))
    ld = np.longdouble
    b = np.eye(3, dtype=ld) * ld(float(mem.theta))
    for s, y in zip(np.asarray(KOEB_S, ld), np.asarray(KOEB_Y, ld)):
        bs = b @ s
        b = b - np.outer(bs, bs) / (s @ bs) + np.outer(y, y) / (y @ s)
    z_ref = x.astype(ld) - _long_double_solve(b, g.astype(ld))
    lower, upper = jnp.asarray([0.0, -np.inf, 0.001]), jnp.full(3, np.inf)
    if jitted == "numpy":  # (the host tier's arithmetic)
        np_mem = type(mem)(*(np.asarray(v) for v in mem))
        with np.errstate(all="ignore"):  # (as the host loop runs it)
            z = _lbfgsb.search_point(x, g, np.asarray(lower), np.asarray(upper), np_mem, False, np)[0]
    else:
        point = jax.jit(_lbfgsb.search_point, static_argnums=5) if jitted else _lbfgsb.search_point
        z = np.asarray(point(jnp.asarray(x), jnp.asarray(g), lower, upper, mem, False)[0])
    step_ref = np.asarray(z_ref - x.astype(ld), np.float64)
    assert np.linalg.norm(z - x - step_ref) <= 1e-5 * np.linalg.norm(step_ref)
    assert float(np.dot(g, z - x)) < 0  # a descent direction


def _ar1_noise_nll(p, y):
    """Minus the Gaussian log-likelihood of y_t = x_t + e_t, x_t = phi x_{t-1} + n_t (a Kalman filter in a scan)."""
    phi, s2e, s2n = p["phi"], p["s2e"], p["s2n"]

    def step(carry, yt):
        a, P = carry
        F = P + s2e
        v = yt - a
        K = P / F
        return (phi * (a + K * v), phi ** 2 * P * (1 - K) + s2n), jnp.log(F) + v * v / F

    _, terms = jax.lax.scan(step, (jnp.zeros_like(s2e), s2n / (1 - phi ** 2)), y)
    return 0.5 * jnp.sum(terms) + 0.5 * y.shape[0] * np.log(2 * np.pi)


@pytest.mark.slow  # ~10 s: float32 and float64 compiles of a Kalman filter
def test_a_float32_bounded_fit_stops_at_its_floor_without_a_two_cycle(x64_off):
    """Float32 L-BFGS-B on AR(1)-plus-noise likelihoods (a state-space review, session 62): at the answer the
    steps cycled an ulp or two up and back down, each down step reset the count of steps without a lower f,
    and three of the first eight series ran 117-121 steps (a vmapped batch of 200: 50x the time of ftol's stop);
    a step down to within 4 epsilons of the lowest f no longer resets it. Reference: scipy's L-BFGS-B in float64 on the same
    likelihood (its jitted value and gradient; bounds just inside: at phi = 1 its first step met a NaN, ABNORMAL),
    whose answer the float32 runs reach to 2e-3."""
    rng = np.random.default_rng(7)
    series = []
    for _ in range(8):
        x = np.zeros(200)
        x[0] = rng.normal(0, np.sqrt(1.0 / (1 - 0.81)))
        for t in range(1, 200):
            x[t] = 0.9 * x[t - 1] + rng.normal(0, 1.0)
        series.append(x + rng.normal(0, np.sqrt(0.15), 200))
    lower, upper = {"phi": -1.0, "s2e": 0.0, "s2n": 0.0}, {"phi": 1.0, "s2e": np.inf, "s2n": np.inf}
    start = {"phi": jnp.zeros(()), "s2e": jnp.ones(()), "s2n": jnp.ones(())}
    run = jax.jit(lambda y: jaxgd.minimize(_ar1_noise_nll, start, (y,), method="lbfgs", bounds=(lower, upper)))
    with jax.enable_x64(True):
        names = ("phi", "s2e", "s2n")
        vg = jax.jit(jax.value_and_grad(lambda v, y: _ar1_noise_nll(dict(zip(names, v)), y)))
    for y in series:
        res = run(jnp.asarray(y, jnp.float32))
        assert res.success and int(res.steps) < 60, (res.status_enum, int(res.steps))
        with jax.enable_x64(True):
            ref = so.minimize(lambda v: tuple(np.asarray(o, np.float64) for o in vg(v, y)), [0.0, 1.0, 1.0], jac=True,
                              method="L-BFGS-B", bounds=[(-0.999, 0.999), (1e-8, None), (1e-8, None)],
                              options=dict(ftol=1e-15, gtol=1e-10, maxiter=1000))
        np.testing.assert_allclose([float(res.params[k]) for k in names], ref.x, atol=2e-3)


@pytest.mark.slow  # ~5 s: two 50-D L-BFGS-B compiles
def test_a_slow_descent_under_a_large_constant_is_no_floor():
    """f = c + s g(x) with a large constant part: every step makes a new low of f by a few epsilons of |f|,
    a genuine descent. A first version of session 62's floor count took those for returns to the floor and
    ended float32 c = 1e2, s = 1e-4 PRECISION 4x further from the minimiser (the diff's review). Reference: the
    same solve of g alone (c = 0, s = 1, float64), whose minimiser does not depend on c and s."""
    def f(x, c, s):
        d = jnp.logspace(0, 2, x.size, dtype=x.dtype)
        return c + s * jnp.sum(d * (x - 1.0) ** 2) + s * jnp.sum(jnp.cos(3 * x))

    ref = jaxgd.minimize(f, jnp.zeros(50), (0.0, 1.0), method="lbfgs", bounds=(-3.0, 3.0), max_steps=3000).params
    c, s = np.float32(1e2), np.float32(1e-4)
    res = jaxgd.minimize(f, jnp.zeros(50, jnp.float32), (c, s), method="lbfgs", bounds=(-3.0, 3.0), max_steps=3000)
    assert res.status_enum is jaxgd.Status.GTOL
    np.testing.assert_allclose(np.asarray(res.params, np.float64), np.asarray(ref), atol=5e-4)


@pytest.mark.slow  # ~10 s: a 4,096-variable L-BFGS-B compile, and scipy's run
def test_large_non_negative_deconvolution_matches_scipy_through_the_top_k_stage(monkeypatch):
    """From 4,096 variables a step whose Cauchy point the walk does not reach looks among the first
    1,024 breakpoints (lax.top_k) before sorting them all. Reference: scipy's L-BFGS-B on the same
    float64 loss (a non-negative 1-D deconvolution whose answer holds 39 % of its variables at 0):
    the same point and value; and the stage found the Cauchy point on some steps."""
    n = 4096
    assert cauchy_mod.first_sizes(n) == (1024,) and cauchy_mod.first_sizes(65536) == (1024, 4096)
    assert cauchy_mod.first_sizes(4095) == () and cauchy_mod.first_sizes(1 << 18) == (1024, 16384)
    found = []
    first = cauchy_mod._first

    def counted(*a):
        hit, out = first(*a)
        jax.debug.callback(lambda h: found.append(bool(h)), hit)
        return hit, out

    monkeypatch.setattr(cauchy_mod, "_first", counted)
    rng = np.random.default_rng(0)
    truth = np.maximum(np.convolve(rng.standard_normal(n), np.ones(9) / 3, "same"), 0.0)
    kernel = jnp.asarray(np.exp(-np.arange(-6, 7) ** 2 / 8.0))
    y = jnp.asarray(np.convolve(truth, np.asarray(kernel), "same") + 0.01 * rng.standard_normal(n))

    def loss(x):
        return 0.5 * jnp.sum((jnp.convolve(x, kernel, mode="same") - y) ** 2) + 5e-2 * jnp.sum(x ** 2)

    ref = scipy_lbfgsb(loss, np.zeros(n), 0.0, np.inf, gtol=1e-6, ftol=1e-13)  # (112 iterations)
    res = jaxgd.minimize(loss, jnp.zeros(n), method="lbfgs", bounds=(0.0, None), gtol=1e-6, max_steps=1000,
                         history=False, tier="compiled")
    assert res.success, res.message
    assert float(res.loss) <= ref.fun * (1 + 1e-9) + 1e-12, (float(res.loss), ref.fun)
    np.testing.assert_allclose(res.params, ref.x, atol=1e-4)
    assert (ref.x == 0).mean() > 0.2 and any(found), (float((ref.x == 0).mean()), len(found))
