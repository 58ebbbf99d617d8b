"""bfgs, lbfgs and cg directions against scipy.optimize, plain NumPy loops and theory."""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so

import jaxgd
from jaxgd import directions
from jaxgd import linesearch as ls
from jaxgd.directions.registry import resolve

from conftest import float_leaves_are, slow_if

GTOL = 1e-8


def rosen(x: jax.Array) -> jax.Array:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def classic_x0(n: int) -> np.ndarray:
    """(-1.2, 1, -1.2, 1, ...): Moré, Garbow & Hillstrom, ACM TOMS 7(1), 1981, problem 21."""
    x0 = np.ones(n)
    x0[0::2] = -1.2
    return x0


def scipy_iterations(method: str, x0: np.ndarray) -> tuple[int, float, so.OptimizeResult]:
    """Iterations scipy needs to reach ||grad||_2 <= GTOL (its own count, ``nit``,
    truncated at the first iterate below the tolerance), and its final loss."""
    norms = []
    opts = dict(gtol=1e-14, maxiter=20_000)
    if method == "L-BFGS-B":
        opts.update(ftol=0.0, maxcor=10)
    res = so.minimize(so.rosen, x0, jac=so.rosen_der, method=method, options=opts,
                      callback=lambda xk: norms.append(np.linalg.norm(so.rosen_der(xk))))
    hit = [k + 1 for k, g in enumerate(norms) if g <= GTOL]
    return (hit[0] if hit else res.nit), float(res.fun), res


SLOW = pytest.mark.slow
# 10-D in make test; 2-D and 100-D in make slow (> 10 s on the shared 2-core box, compilation included)
CASES = [
    slow_if(n != 10, n, m, id=f"{m[0]}-{n}d")
    for n in (2, 10, 100)
    for m in (("bfgs", "BFGS"), ("lbfgs", "L-BFGS-B"))
]


@pytest.mark.parametrize("n,methods", CASES)
def test_rosenbrock_in_at_most_1_5x_scipys_iterations(n, methods):
    ours, theirs = methods
    x0 = classic_x0(n)
    res = jaxgd.minimize(rosen, jnp.asarray(x0), method=ours, max_steps=5000, gtol=GTOL, history=False)
    nit, f_scipy, _ = scipy_iterations(theirs, x0)
    assert res.status_enum is jaxgd.Status.GTOL, res.message
    assert float(res.grad_norm) <= GTOL
    assert int(res.steps) <= 1.5 * nit, (int(res.steps), nit)
    assert float(res.loss) <= f_scipy + 1e-10  # the same minimum, or a lower one
    assert int(res.nfev) == int(res.ngev) >= int(res.steps)


def spd(n: int, cond: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.logspace(0, np.log10(cond), n)) @ q.T, rng.standard_normal(n)


@pytest.mark.parametrize("method", [
    pytest.param("bfgs", id="bfgs"),
    pytest.param("cg", id="cg-pr+"),
    # the other variants' formulas are checked step by step below; their runs are slow-marked
    pytest.param(directions.cg("fr"), id="cg-fr", marks=SLOW),
    pytest.param(directions.cg("hs"), id="cg-hs", marks=SLOW),
    pytest.param(directions.cg("dy"), id="cg-dy", marks=SLOW),
])
def test_quadratic_termination_with_exact_line_search(method):
    # Theory: with exact line searches, BFGS and every nonlinear CG variant reduce to
    # conjugate directions on a strictly convex quadratic and stop in at most n steps
    # (Nocedal & Wright, Theorem 5.2 and section 6.1 / Dixon 1972).
    n = 6
    a, b = spd(n, 100.0, 0)
    f = lambda x: 0.5 * x @ jnp.asarray(a) @ x - jnp.asarray(b) @ x  # noqa: E731
    res = jaxgd.minimize(f, jnp.zeros(n), method=method, lr=ls.Exact(), max_steps=50, gtol=1e-8, history=False)
    assert res.status_enum is jaxgd.Status.GTOL
    assert int(res.steps) <= n
    np.testing.assert_allclose(res.params, np.linalg.solve(a, b), rtol=1e-8)


# -- plain NumPy references, step by step -------------------------------------------------
def np_bfgs_directions(xs, gs):
    """Nocedal & Wright Alg. 6.1 with eq. 6.17 and the eq. 6.20 scaling, in NumPy."""
    h, out = np.eye(len(xs[0])), []
    for k, (x, g) in enumerate(zip(xs, gs)):
        if k > 0:
            s, y = x - xs[k - 1], g - gs[k - 1]
            if k == 1:
                h = (s @ y) / (y @ y) * np.eye(len(x))
            rho = 1.0 / (y @ s)
            i = np.eye(len(x))
            h = (i - rho * np.outer(s, y)) @ h @ (i - rho * np.outer(y, s)) + rho * np.outer(s, s)
        out.append(-h @ g)
    return out


def np_cg_directions(gs, variant, restart):
    out = []
    for k, g in enumerate(gs):
        if k % restart == 0:
            d = -g
        else:
            gp, dp = gs[k - 1], out[-1]
            y = g - gp
            beta = {"fr": g @ g / (gp @ gp), "pr+": max(g @ y / (gp @ gp), 0.0),
                    "hs": g @ y / (dp @ y), "dy": g @ g / (dp @ y)}[variant]
            d = -g + beta * dp
            if g @ d >= 0:
                d = -g
        out.append(d)
    return out


def _path(n=5, k=6):
    """A fixed sequence of points and gradients of a convex quadratic (a descent path)."""
    a, b = spd(n, 30.0, 1)
    xs = [np.zeros(n)]
    for _ in range(k - 1):
        g = a @ xs[-1] - b
        xs.append(xs[-1] - 0.02 * g)
    return xs, [a @ x - b for x in xs]


def _run_direction(direction, xs, gs):
    update = jax.jit(lambda g, s, x: direction.update(g, s, x))
    state, out = direction.init(jnp.asarray(xs[0])), []
    for x, g in zip(xs, gs):
        d, state = update(jnp.asarray(g), state, jnp.asarray(x))
        out.append(np.asarray(d))
    return out


def test_bfgs_directions_match_a_plain_numpy_bfgs():
    xs, gs = _path()
    np.testing.assert_allclose(_run_direction(directions.bfgs(), xs, gs), np_bfgs_directions(xs, gs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", ["fr", "pr+", "hs", "dy"])
def test_cg_directions_match_the_formulas(variant):
    xs, gs = _path(k=7)
    got = _run_direction(directions.cg(variant, restart_every=4), xs, gs)
    np.testing.assert_allclose(got, np_cg_directions(gs, variant, restart=4), rtol=1e-10, atol=1e-12)


def test_lbfgs_is_optax_scale_by_lbfgs():
    import optax

    xs, gs = _path()
    tx = optax.scale_by_lbfgs(memory_size=3)
    update = jax.jit(tx.update)
    state, want = tx.init(jnp.asarray(xs[0])), []
    for x, g in zip(xs, gs):
        u, state = update(jnp.asarray(g), state, jnp.asarray(x))
        want.append(-np.asarray(u))
    np.testing.assert_allclose(_run_direction(directions.lbfgs(3), xs, gs), want, rtol=1e-12)


# -- the registry, factories, carries ------------------------------------------------------
def test_factories_return_the_same_objects_as_the_registry():
    assert directions.bfgs() is directions.bfgs(scale_init=True) is resolve("bfgs")
    assert directions.lbfgs() is directions.lbfgs(10) is resolve("lbfgs")
    assert directions.cg() is directions.cg("PR+") is directions.cg(directions.CGVariant.POLAK_RIBIERE_PLUS) is resolve("cg")
    assert directions.cg("fr") is not directions.cg("dy")
    assert {"bfgs", "lbfgs", "cg"} <= set(jaxgd.methods())


def test_default_step_sizes_are_more_thuente():
    # issue 13: MINPACK-2's search as scipy uses it; unit start for quasi-Newton, scipy's CG start and c2.
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    for method, c2, start in (("bfgs", 0.9, "unit"), ("lbfgs", 0.9, "unit"), ("cg", 0.4, "interpolate")):
        rule = jaxgd.Solver(f, method).rule
        assert isinstance(rule, ls.MoreThuente) and rule.c2 == c2 and rule.start == start


@pytest.mark.parametrize("make,match", [
    (lambda: directions.cg("steepest"), "variant"),
    (lambda: directions.cg("fr", restart_every=0), "restart_every"),
    (lambda: directions.lbfgs(0), "memory_size"),
])
def test_bad_factory_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("method", ["bfgs", "lbfgs", "cg"])
def test_direction_state_is_a_stable_carry(method, dtype):
    direction = resolve(method)
    params = {"w": jnp.ones((2, 3), dtype), "b": jnp.zeros(3, dtype)}
    grad = jax.tree_util.tree_map(lambda x: x + 0.5, params)
    state = direction.init(params)
    d, new = jax.eval_shape(lambda g, s, p: direction.update(g, s, p), grad, state, params)
    spec = lambda t: jax.tree_util.tree_map(lambda v: (jnp.shape(v), jnp.result_type(v)), t)  # noqa: E731
    assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(state)
    assert spec(new) == spec(state)
    assert spec(d) == spec(params)
    # every float of the state in the parameters' dtype: float32 stays float32 with x64 on
    assert float_leaves_are(new, dtype), spec(new)


TRACES: collections.Counter = collections.Counter()


def counted(p):
    TRACES["n"] += 1
    return jnp.sum((p["w"] - 1.0) ** 2) + jnp.sum(jnp.cos(p["b"]))


def test_pytree_params_and_no_retrace_for_new_line_search_values():
    x0 = {"w": jnp.zeros((2, 2)), "b": jnp.array([0.5, 2.5])}
    first = jaxgd.minimize(counted, x0, method="bfgs", gtol=1e-10, history=False)
    traces = TRACES["n"]
    second = jaxgd.minimize(counted, x0, method="bfgs", lr=ls.MoreThuente(c1=1e-3, c2=0.5), gtol=1e-10, history=False)
    assert TRACES["n"] == traces
    for res in (first, second):
        assert res.status_enum is jaxgd.Status.GTOL
        np.testing.assert_allclose(res.params["w"], 1.0, rtol=1e-9)
        np.testing.assert_allclose(res.params["b"], np.pi, rtol=1e-9)
