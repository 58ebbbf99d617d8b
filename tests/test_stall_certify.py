"""A 16-bit stop at the answer is a PRECISION success: a float32 Newton check (jaxgd.core.stall).

In float16 and bfloat16 the norm test misreads a point at the answer (the gradient's rounding scales
with the loss's intermediate terms), so searches, Barzilai-Borwein and Polyak's rule ended there with
a failure status. ``probe.newton_certifies`` takes the loss in float32 at the point, builds the Hessian
by gradient differences and calls the point a minimiser to precision where the Hessian is resolved
positive definite and the Newton step predicts a fall the 16-bit loss cannot show, or stays within a
few ulps. References: NumPy's float64 least squares and linear solve, NumPy's Cholesky, the closed-form
Hessian of Rosenbrock's function, and a count of the loss's evaluations taken on the host
(``jax.debug.callback``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import linesearch
from jaxgd.core import probe, stall
from jaxgd.core.solver import Solver

from conftest import slow_if

RNG = np.random.default_rng(0)
A = RNG.normal(size=(50, 4))
X_TRUE = np.array([30.0, -20.0, 10.0, 5.0])  # exact in bfloat16
B = A @ X_TRUE


def lstsq(dtype):
    a, b = jnp.asarray(A, dtype), jnp.asarray(B, dtype)
    return lambda x: 0.5 * jnp.mean((a @ x - b) ** 2)


C = np.array([10.0, 100.0, 1000.0, 30.0])


def coupled(x):
    """``sum c (x - 1)^2 + sum x_i x_{i+1}``: minimiser ``numpy.linalg.solve(H, 2c)``."""
    return jnp.sum(jnp.asarray(C, x.dtype) * (x - 1) ** 2) + jnp.sum(x[1:] * x[:-1])


H_COUPLED = np.diag(2 * C) + np.diag(np.ones(3), 1) + np.diag(np.ones(3), -1)


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


# each ended at the bfloat16 answer with a failure status before the check (LINESEARCH_FAILED,
# STALLED, LINESEARCH_FAILED, MAX_STEPS, MAX_STEPS; benchmarks/RESULTS.md, session 41)
RULES = {
    "Backtracking": linesearch.Backtracking,
    "StrongWolfe": linesearch.StrongWolfe,
    "Exact": linesearch.Exact,
    "BarzilaiBorwein": linesearch.BarzilaiBorwein,
    "Polyak": lambda: linesearch.Polyak(f_star=0.0),
}


@pytest.mark.parametrize("rule", [slow_if(name not in ("Backtracking", "BarzilaiBorwein"), name) for name in RULES])
def test_bfloat16_least_squares_at_its_answer_is_a_precision_success(rule, x64_off):
    res = jaxgd.minimize(lstsq(jnp.bfloat16), jnp.zeros(4, jnp.bfloat16), method="gd", lr=RULES[rule](), max_steps=3000)
    assert res.status_enum is jaxgd.Status.PRECISION, res.message
    # reference: NumPy's float64 least squares, to bfloat16's ulp at |x| = 30 (0.125)
    ref = np.linalg.lstsq(A, B, rcond=None)[0]
    np.testing.assert_allclose(np.asarray(res.params, np.float64), ref, atol=0.125)


def test_float16_barzilai_borwein_at_the_coupled_quadratics_answer_is_a_precision_success(x64_off):
    # it ran to max_steps there before (its window filled at a gradient 4x the norm test's bound)
    res = jaxgd.minimize(coupled, jnp.zeros(4, jnp.float16), method="gd", lr=linesearch.BarzilaiBorwein(),
                         max_steps=3000)
    assert res.status_enum is jaxgd.Status.PRECISION, res.message
    # reference: numpy.linalg.solve, to a few float16 ulps at |x| ~ 1 (4.9e-4 each)
    np.testing.assert_allclose(np.asarray(res.params, np.float64), np.linalg.solve(H_COUPLED, 2 * C), atol=0.01)


def certify(fun, x, due=True):
    """``(certified, evaluations)`` at ``x`` (``fun`` taken in float32)."""
    vg32 = jax.value_and_grad(fun)
    return jax.jit(probe.newton_certifies, static_argnums=0)(vg32, x, fun(x), jnp.asarray(due))


def test_newton_certifies_the_grid_point_at_a_minimiser_and_counts_its_evaluations(x64_off):
    x = jnp.asarray(np.linalg.solve(H_COUPLED, 2 * C), jnp.bfloat16)  # the closed form, rounded to the grid
    sure, spent = certify(coupled, x)
    assert bool(sure) and [int(v) for v in spent] == [5, 5]  # n + 1 float32 gradients
    # not due: nothing runs
    sure, spent = certify(coupled, x, due=False)
    assert not bool(sure) and [int(v) for v in spent] == [0, 0]


def test_newton_certifies_no_point_away_from_a_minimiser(x64_off):
    # a slope: the coupled quadratic 0.3 from its minimiser (the Newton step predicts a visible fall)
    off = jnp.asarray(np.linalg.solve(H_COUPLED, 2 * C) + 0.3, jnp.bfloat16)
    assert not bool(certify(coupled, off)[0])
    # a Rosenbrock valley point where float32 differences cannot resolve the Hessian: closed form
    # [[1200 x^2 - 400 y + 2, -400 x], [-400 x, 200]] has eigenvalues ~795 and ~-0.4 at (0.863, 0.754)
    valley = jnp.asarray([0.863281, 0.753906], jnp.bfloat16)
    x, y = (float(v) for v in np.asarray(valley, np.float64))
    hess = np.array([[1200 * x * x - 400 * y + 2, -400 * x], [-400 * x, 200.0]])
    assert np.linalg.eigvalsh(hess)[0] < 0
    assert not bool(certify(rosenbrock, valley)[0])
    # a saddle: f = x0^2 - x1^2 at 0
    assert not bool(certify(lambda v: v[0] ** 2 - v[1] ** 2, jnp.zeros(2, jnp.bfloat16))[0])


def test_newton_certifies_nothing_above_its_size_and_runs_per_lane_under_vmap(x64_off):
    big = jnp.zeros(probe.CERTIFY_SIZE + 1, jnp.bfloat16)
    sure, spent = certify(lambda v: jnp.sum(v**2), big)
    assert not bool(sure) and [int(v) for v in spent] == [0, 0]
    at = jnp.asarray(np.linalg.solve(H_COUPLED, 2 * C), jnp.bfloat16)
    xs = jnp.stack([at, at + 0.3])
    vg32 = jax.value_and_grad(coupled)
    sure, spent = jax.jit(jax.vmap(lambda x, due: probe.newton_certifies(vg32, x, coupled(x), due)))(
        xs, jnp.asarray([True, False]))
    # reference: the points one by one (the second not due: no evaluations)
    assert [bool(v) for v in sure] == [bool(certify(coupled, at)[0]), False]
    assert [int(v) for v in spent[:, 0]] == [5, 0]


def test_small_cholesky_and_solve_against_numpy():
    m = RNG.normal(size=(6, 6))
    spd = m @ m.T + 0.1 * np.eye(6)
    b = RNG.normal(size=6)
    factor = jax.jit(probe.small_cholesky)(jnp.asarray(spd))
    # reference: numpy.linalg.cholesky and numpy.linalg.solve
    np.testing.assert_allclose(np.asarray(factor), np.linalg.cholesky(spd), rtol=1e-10, atol=1e-12)
    solved = probe.small_cho_solve(factor, jnp.asarray(b))
    np.testing.assert_allclose(np.asarray(solved), np.linalg.solve(spd, b), rtol=1e-8)
    # not positive definite: NaN in the factor (numpy.linalg.cholesky raises there)
    indefinite = spd - (np.linalg.eigvalsh(spd)[0] + 1.0) * np.eye(6)
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(indefinite)
    assert not np.all(np.isfinite(np.asarray(probe.small_cholesky(jnp.asarray(indefinite)))))


def test_the_checks_evaluations_are_counted_in_nfev(x64_off):
    calls = []
    a, b = jnp.asarray(A, jnp.bfloat16), jnp.asarray(B, jnp.bfloat16)

    def fun(x):
        jax.debug.callback(lambda: calls.append(1))
        return 0.5 * jnp.mean((a @ x - b) ** 2)

    res = jaxgd.minimize(fun, jnp.zeros(4, jnp.bfloat16), method="gd", lr=linesearch.Backtracking(), max_steps=200)
    jax.effects_barrier()
    assert res.status_enum is jaxgd.Status.PRECISION, res.message
    # reference: the evaluations counted on the host (the check's n + 1 = 5 float32 gradients among them)
    assert int(res.nfev) == len(calls)


def test_a_loss_that_cannot_take_float32_parameters_gets_no_check(x64_off):
    a, b = jnp.asarray(A, jnp.bfloat16), jnp.asarray(B, jnp.bfloat16)
    # lax.sub refuses mixed dtypes (a TypeError at float32 parameters), a cast keeps the loss in 16 bits:
    # the float32 check is not traced, and the run goes as before it
    fixed = lambda x: 0.5 * jnp.mean(jax.lax.sub(a @ x, b) ** 2)  # noqa: E731
    cast = lambda x: 0.5 * jnp.mean((a @ x.astype(jnp.bfloat16) - b) ** 2)  # noqa: E731
    promoting = lambda x: 0.5 * jnp.mean((a @ x - b) ** 2)  # noqa: E731

    def checked(x):  # a loss that checks its input's dtype
        assert x.dtype == jnp.bfloat16
        return promoting(x)

    x0 = jnp.zeros(4, jnp.bfloat16)
    for fun in (fixed, cast, checked):
        assert not Solver(fun, "gd", lr=linesearch.Backtracking())._float32_objective(x0, ())
    assert Solver(promoting, "gd", lr=linesearch.Backtracking())._float32_objective(x0, ())
    res = jaxgd.minimize(fixed, jnp.zeros(4, jnp.bfloat16), method="gd", lr=linesearch.Backtracking(), max_steps=3000)
    # reference: the same loss written with jnp, which gets the check, ends PRECISION at the same point
    ref = jaxgd.minimize(promoting, jnp.zeros(4, jnp.bfloat16), method="gd", lr=linesearch.Backtracking(),
                         max_steps=3000)
    assert ref.status_enum is jaxgd.Status.PRECISION
    assert res.status_enum is jaxgd.Status.LINESEARCH_FAILED, res.message
    np.testing.assert_array_equal(np.asarray(res.params, np.float32), np.asarray(ref.params, np.float32))


def test_which_runs_take_the_check():
    traced = jnp.asarray(True)
    assert stall.certifies(linesearch.Backtracking(), jnp.bfloat16, False, traced)
    assert stall.certifies(linesearch.MoreThuente(), jnp.float16, False, False)  # (tracks its stalls)
    schedule = jaxgd.Solver(lambda x: jnp.sum(x**2), "gd", lr=0.1).rule
    assert not stall.certifies(schedule, jnp.bfloat16, False, False)  # a schedule: the branch-free window test
    assert not stall.certifies(linesearch.Backtracking(), jnp.float32, False, traced)
    assert not stall.certifies(linesearch.Backtracking(), jnp.bfloat16, True, traced)  # a proximal term
