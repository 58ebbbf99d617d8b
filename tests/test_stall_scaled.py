"""A quasi-Newton PRECISION verdict needs a probe along -x^2 g that finds no fall (jaxgd.core.stall).

The model's test and the restart's failed retry along ``-g`` say that two directions showed no fall
of ``f``; that happens far from a minimiser of a badly scaled problem (in float32 more often). Such a verdict is
``PRECISION`` only where also ``probe.probe_descent(..., scaled=True)`` finds no fall along ``-x^2 g``
(steepest descent in ``log |x|``), on both tiers.
References: NIST StRD's certified values for Misra1a and MGH10, NumPy's ``x^2 g``, and a count of the loss's
evaluations taken on the host.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.core import probe
from conftest import probe_trials_at_a_minimum

# NIST StRD, Misra1a (lower difficulty): y = b1 (1 - exp(-b2 x)); start 1 is b = (500, 1e-4).
MISRA_X = np.array([77.6, 114.9, 141.1, 190.8, 239.9, 289.0, 332.8, 378.4, 434.8, 477.3, 536.8, 593.1, 689.1, 760.0])
MISRA_Y = np.array([10.07, 14.73, 17.94, 23.93, 29.61, 35.18, 40.02, 44.82, 50.76, 55.05, 61.01, 66.40, 75.47, 81.78])
CERTIFIED_B = np.array([2.3894212918e02, 5.5015643181e-04])
CERTIFIED_SSR = 1.2455138894e-01


def misra1a(dtype):
    x, y = jnp.asarray(MISRA_X, dtype), jnp.asarray(MISRA_Y, dtype)
    return lambda b: jnp.sum((b[0] * (1.0 - jnp.exp(-b[1] * x)) - y) ** 2)


def near_certified(res, rtol):
    b = np.asarray(res.params, np.float64)
    return abs(float(res.loss) - CERTIFIED_SSR) <= rtol * CERTIFIED_SSR and np.allclose(b, CERTIFIED_B, rtol=rtol)


@pytest.mark.parametrize("tier", ["host", "compiled"])
@pytest.mark.parametrize("method", ["lbfgs", "bfgs"])
def test_float32_misra1a_is_a_success_only_at_the_certified_answer(method, tier):
    """Reference: NIST's certified values. From start 1 (b1 = 500, b2 = 1e-4, six orders apart)
    float32 lbfgs learnt only b2's curvature: its step in b1 (7e-14) rounded away and the step along
    -g that b1 needs overshot b2's minimiser, so both searches failed at f = 19.5 (the answer: 0.125)
    and the restart's rule called that point PRECISION, a success. There a step along -x^2 g finds
    the fall. Now a run is a success exactly where it reached the certified answer (the compiled bfgs
    run does; lbfgs and the host bfgs run fail, honestly)."""
    res = jaxgd.minimize(misra1a(jnp.float32), jnp.asarray([500.0, 1e-4], jnp.float32), method=method, tier=tier)
    assert res.params.dtype == jnp.float32
    assert np.isfinite(float(res.loss))
    assert bool(res.success) == near_certified(res, 1e-3), (res.status_enum, float(res.loss), res.params)


@pytest.mark.parametrize("method", ["lbfgs", "bfgs"])
def test_float64_misra1a_reaches_the_certified_answer(method):
    """Reference: NIST's certified values (the float64 probe goes up from the shortest step: none falls there)."""
    res = jaxgd.minimize(misra1a(jnp.float64), jnp.asarray([500.0, 1e-4]), method=method, tier="compiled")
    assert bool(res.success) and near_certified(res, 1e-7)


STUCK = np.array([500.0, 2.4223111e-04], np.float32)  # where float32 lbfgs stopped (f = 19.5)


def test_scaled_direction_is_x_squared_times_g_on_a_pytree():
    """Reference: NumPy's x^2 g per entry, over a pytree with a nested float32 leaf and a bfloat16 one
    (computed in float32)."""
    rng = np.random.default_rng(3)
    g = {"a": rng.normal(size=(3, 2)).astype(np.float32), "b": [jnp.asarray(rng.normal(size=4), jnp.bfloat16)]}
    x = {"a": 100 * rng.normal(size=(3, 2)).astype(np.float32), "b": [jnp.asarray(rng.normal(size=4), jnp.bfloat16)]}
    d = probe.scaled_direction(jax.tree.map(jnp.asarray, x), jax.tree.map(jnp.asarray, g))
    np.testing.assert_allclose(np.asarray(d["a"]), x["a"] ** 2 * g["a"], rtol=1e-6)
    assert d["b"][0].dtype == jnp.float32
    xb, gb = np.asarray(x["b"][0], np.float32), np.asarray(g["b"][0], np.float32)
    np.testing.assert_allclose(np.asarray(d["b"][0]), xb**2 * gb, rtol=1e-6)


@pytest.mark.parametrize(("point", "falls"), [(STUCK, True), (CERTIFIED_B.astype(np.float32), False)])
def test_the_scaled_probe_finds_misra1as_fall_and_none_at_its_answer_on_both_tiers(point, falls):
    """Reference: NIST's certified answer (no fall there in float32) and the stuck point (the
    seventh trial moves b1 by 0.07 and lowers f by 0.004: a fall); the evaluations counted on the
    host. The compiled probe and the host tier's take the same trials."""
    from jaxgd.host import loop as host_loop

    f = misra1a(jnp.float32)
    calls = []

    def counted(b):
        jax.debug.callback(lambda: calls.append(1))
        return f(b)

    x = jnp.asarray(point)
    value, g = jax.value_and_grad(f)(x)
    found, k = jax.jit(lambda x, v, g: probe.probe_descent(counted, x, v, g, jnp.asarray(True), scaled=True))(x, value, g)
    jax.effects_barrier()
    assert bool(found) == falls and int(k) == len(calls)
    if falls:
        assert int(k) < probe.PROBES
    else:  # at the answer the trials stop at the first one no longer than the least move: a plain loop's count
        trials = probe_trials_at_a_minimum(value, g, probe.scaled_direction(x, g), x, jnp.float32)
        assert int(k) == trials and 1 <= trials < probe.PROBES

    vg = jax.jit(jax.value_and_grad(f))
    host_found, host_k = host_loop._probe_scaled(lambda y: (*vg(y), None), np.asarray(point), np.float32(value), np.asarray(g))
    assert (host_found, host_k) == (bool(found), int(k))


# NIST StRD, MGH10 (Meyer, higher difficulty): y = b1 exp(b2 / (x + b3)); start 1 is b = (2, 4e5, 2.5e4).
MGH10_X = np.arange(50.0, 126.0, 5.0)
MGH10_Y = np.array([34780.0, 28610.0, 23650.0, 19630.0, 16370.0, 13720.0, 11540.0, 9744.0, 8261.0, 7030.0, 6005.0,
                    5147.0, 4427.0, 3820.0, 3307.0, 2872.0])
MGH10_B = np.array([5.6096364710e-03, 6.1813463463e03, 3.4522363462e02])
MGH10_SSR = 8.7945855171e01


def _mgh10(b):
    return jnp.sum((b[0] * jnp.exp(b[1] / (MGH10_X + b[2])) - MGH10_Y) ** 2)


@pytest.mark.parametrize("tier", ["host", pytest.param("compiled", marks=pytest.mark.slow)])
def test_float64_mgh10_is_a_success_only_at_the_certified_answer(tier):
    """Reference: NIST's certified values. From start 1 float64 lbfgs crawled into MGH10's valley to b1 =
    2.3e-48, where its gradient is 5e46, f = 1.5e6 (certified: 87.9), and both its searches failed: the
    restart's rule called that PRECISION, a success (a curve_fit user's review, session 61). There a step
    along -x^2 g finds the fall: the run ends LINESEARCH_FAILED. From start 2 it reaches the certified answer
    and ends PRECISION (the probe's upward trials find none there)."""
    far = jaxgd.minimize(_mgh10, jnp.asarray([2.0, 4e5, 2.5e4]), method="lbfgs", max_steps=5000, tier=tier)
    assert not far.success and far.status_enum == jaxgd.Status.LINESEARCH_FAILED
    assert float(far.loss) > 1e4 * MGH10_SSR and np.isfinite(np.asarray(far.params)).all()
    near = jaxgd.minimize(_mgh10, jnp.asarray([0.02, 4000.0, 250.0]), method="lbfgs", max_steps=5000, tier=tier)
    assert near.success, near.message
    np.testing.assert_allclose(float(near.loss), MGH10_SSR, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(near.params), MGH10_B, rtol=1e-5)
