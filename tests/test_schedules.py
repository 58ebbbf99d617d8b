"""``jaxgd.schedules``: ours against hand-computed values (under jit), optax's as ``lr=``."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import jax
import jax.numpy as jnp
import optax
import pytest

import jaxgd
from jaxgd import schedules as S


def jit_eval(sched, counts):
    f = jax.jit(lambda s, c: s(c))
    return [float(f(sched, jnp.asarray(c, jnp.int32))) for c in counts]


def test_step_decay_hand_computed():
    # 0.1 * 0.5 ** floor(k / 10)
    assert np.allclose(jit_eval(S.step_decay(0.1, 10, 0.5), [0, 9, 10, 19, 20, 35]), [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125])


def test_multistep_decay_hand_computed():
    # milestones 3 and 5, gamma 0.1: PyTorch MultiStepLR decays at epoch == milestone
    got = jit_eval(S.multistep_decay(1.0, [3, 5], 0.1), range(7))
    assert np.allclose(got, [1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_inverse_time_decay_hand_computed():
    assert np.allclose(jit_eval(S.inverse_time_decay(1.0, 0.5, 2), [0, 1, 2, 4]), [1, 1 / 1.25, 1 / 1.5, 1 / 2])
    assert np.allclose(jit_eval(S.inverse_time_decay(1.0, 0.5, 2, staircase=True), [0, 1, 2, 3, 4]), [1, 1, 1 / 1.5, 1 / 1.5, 0.5])


def test_cyclic_triangular_hand_computed():
    # base 0.1, max 1.0, 4 steps up: a triangle wave with period 8
    got = jit_eval(S.cyclic_triangular(0.1, 1.0, 4), range(10))
    assert np.allclose(got, [0.1, 0.325, 0.55, 0.775, 1.0, 0.775, 0.55, 0.325, 0.1, 0.325])


def test_ours_are_pytrees_with_numeric_leaves():
    for s in (S.step_decay(0.1, 10, 0.5), S.multistep_decay(1.0, [3], 0.1), S.inverse_time_decay(1.0, 0.5), S.cyclic_triangular(0.1, 1.0, 4)):
        leaves = jax.tree_util.tree_leaves(s)
        assert leaves and all(isinstance(x, (int, float)) for x in leaves)


def test_vmap_over_schedule_parameter():
    scheds = S.StepDecay(jnp.array([0.1, 0.2]), 10, 0.5)
    out = jax.vmap(lambda s: s(15), in_axes=(S.StepDecay(0, None, None),))(scheds)
    assert np.allclose(out, [0.05, 0.1])


@pytest.mark.parametrize("bad", [dict(init_value=0.0), dict(step_size=0)])
def test_step_decay_validates(bad):
    kw = dict(init_value=0.1, step_size=5, gamma=0.5) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        S.step_decay(**kw)


def _torch_step_lr(init_value, step_size, gamma, k):
    """PyTorch StepLR's closed form in Python integers: init_value * gamma ** (k // step_size)."""
    return init_value * gamma ** (k // step_size)


def _torch_cyclic_lr(base, top, n, k):
    """PyTorch CyclicLR (triangular) in exact rationals: cycle = floor(1 + k / 2n), x = |k/n - 2 cycle + 1|."""
    cycle = 1 + k // (2 * n)
    x = abs(Fraction(k, n) - 2 * cycle + 1)
    return base + (top - base) * float(max(0, 1 - x))


def test_step_decay_exact_past_float32_integers(x64_off):
    """Reference: PyTorch StepLR's closed form in Python integers. In float32 a count past 2**24 divided as a
    float rounded: 20,000,000 / 20,000,001 read 1.0 and the rate halved a step early."""
    s = S.step_decay(1.0, 20_000_001, 0.5)
    counts = [0, 20_000_000, 20_000_001, 40_000_001, 40_000_002]
    want = [_torch_step_lr(1.0, 20_000_001, 0.5, k) for k in counts]
    assert jit_eval(s, counts) == want
    assert [float(s(jnp.int32(k))) for k in counts] == want


def test_inverse_time_staircase_exact_past_float32_integers(x64_off):
    """Reference: TensorFlow's InverseTimeDecay with staircase, init / (1 + rate floor(k / steps)), in Python
    integers. The staircase's floor divided the count as a float32 (a review of this session's diff)."""
    s = S.inverse_time_decay(1.0, 1.0, 20_000_001, staircase=True)
    counts = [0, 20_000_000, 20_000_001, 40_000_002]
    want = [1.0 / (1 + k // 20_000_001) for k in counts]
    np.testing.assert_allclose(jit_eval(s, counts), want, rtol=1e-7)


def test_cyclic_triangular_exact_past_float32_integers(x64_off):
    """Reference: PyTorch CyclicLR's triangular closed form in exact rationals. In float32, count / 3 past 2**24
    rounded and the wave read base_lr at 18,000,001 (0.4 there)."""
    s = S.cyclic_triangular(0.1, 1.0, 3)
    counts = [18_000_000 + i for i in range(7)]
    np.testing.assert_allclose(jit_eval(s, counts), [_torch_cyclic_lr(0.1, 1.0, 3, k) for k in counts], rtol=1e-6)


def test_cyclic_triangular_accepts_base_lr_zero():
    """Reference: PyTorch CyclicLR's closed form (which takes base_lr=0, as optax's schedules start from 0)."""
    got = jit_eval(S.cyclic_triangular(0.0, 1.0, 3), range(8))
    np.testing.assert_allclose(got, [_torch_cyclic_lr(0.0, 1.0, 3, k) for k in range(8)], rtol=1e-12)
    with pytest.raises(ValueError, match="base_lr must be >= 0"):
        S.cyclic_triangular(-0.1, 1.0, 3)
    with pytest.raises(ValueError, match="max_lr must be > 0"):
        S.cyclic_triangular(0.0, 0.0, 3)


@pytest.mark.parametrize("build", [lambda v: S.step_decay(1.0, v), lambda v: S.per_epoch(lambda e: 0.1, v)],
                         ids=["step_decay", "per_epoch"])
def test_step_counts_must_be_integers(build):
    """A step count is an integer (PyTorch's StepLR takes an int step_size): 2.5 or 10.0 is refused by name."""
    for bad in (2.5, 10.0, np.float64(3.0), jnp.asarray(3.0), True):
        with pytest.raises(ValueError, match=r"must be > 0 and an integer \(a number of steps"):
            build(bad)
    for good in (3, np.int64(3), jnp.asarray(3, jnp.int32)):
        build(good)


def test_multistep_rejects_unsorted_milestones():
    with pytest.raises(ValueError, match="milestones"):
        S.multistep_decay(0.1, [5, 3])


SCHEDULES = {
    "optax.exponential_decay": optax.exponential_decay(0.1, 5, 0.7),
    "optax.cosine_decay_schedule": optax.cosine_decay_schedule(0.1, 20),
    "optax.warmup_cosine_decay_schedule": optax.warmup_cosine_decay_schedule(0.0, 0.1, 5, 20),
    "optax.piecewise_constant_schedule": optax.piecewise_constant_schedule(0.1, {5: 0.5, 12: 0.1}),
    "jaxgd.step_decay": S.step_decay(0.1, 4, 0.5),
    "jaxgd.multistep_decay": S.multistep_decay(0.1, [3, 9], 0.5),
    "jaxgd.inverse_time_decay": S.inverse_time_decay(0.1, 0.2),
    "jaxgd.cyclic_triangular": S.cyclic_triangular(0.01, 0.1, 3),
    "lambda": lambda k: 0.1 / (1.0 + k),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_history_lr_equals_schedule(name):
    """Reference: the schedule itself evaluated at each step count 0..n-1."""
    sched = SCHEDULES[name]
    res = jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(2), lr=sched, max_steps=20, gtol=0.0)
    np.testing.assert_allclose(np.asarray(res.history.lr), [float(sched(k)) for k in range(20)], rtol=1e-6)


def test_reexports_are_optax_objects():
    assert S.cosine_decay_schedule is optax.cosine_decay_schedule
    for name in S.__all__:
        assert hasattr(S, name)


FIRST_VALUE_SCHEDULES = {
    **SCHEDULES,
    "optax.linear_schedule from 0": optax.linear_schedule(0.0, 0.1, 100),
    "optax.sgdr_schedule": optax.sgdr_schedule([dict(init_value=0.0, peak_value=0.1, warmup_steps=5,
                                                     decay_steps=50)] * 2),
    "optax.piecewise_interpolate_schedule": optax.piecewise_interpolate_schedule("cosine", 0.1, {10: 0.5, 30: 2.0}),
    "optax.join_schedules": optax.join_schedules([optax.linear_schedule(0.0, 0.1, 10), optax.constant_schedule(0.1)],
                                                 [10]),
    "jaxgd.per_epoch(optax)": S.per_epoch(optax.cosine_decay_schedule(0.1, 10), 3),
    "jaxgd.inverse_time_decay staircase": S.inverse_time_decay(0.1, 1.0, 3, staircase=True),
    "an indexed table": lambda k: jnp.asarray([0.1, 0.2, 0.3])[jnp.minimum(k, 2)],
    # Python floats met by float32 values are float32 literals: evaluated in float64 they made lr(0) of an
    # exponential warmup -1.5e-9 and flipped a comparison (a review, session 58)
    "an exponential warmup (a weak literal)": lambda k: 0.1 - 0.1 * jnp.exp(-k / 100.0),
    "a comparison with a weak literal": lambda k: jnp.where((k + 1) * 0.1 <= 0.1, 0.1, 0.2),
    "lax.round away from zero": lambda k: 0.1 * (1.0 + jax.lax.round(k * 0.49999997)),
}


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
def test_host_value_is_jaxs_value(x64):
    """Reference: JAX's own evaluation of each schedule (the value lr(0)'s check reads, in NumPy, compiling nothing)."""
    from jaxgd.core import host_value

    with jax.enable_x64(x64):
        for name, sched in FIRST_VALUE_SCHEDULES.items():
            closed = jax.make_jaxpr(lambda c: sched(c))(jnp.int32(0))
            for k in (0, 1, 4, 9, 10, 35, 120):
                (got,), want = host_value.value(closed, np.int32(k)), np.asarray(sched(jnp.int32(k)))
                assert got.dtype == want.dtype, name
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=f"{name} at {k}")  # (exp: ulps)
        # where NumPy and XLA part (a non-finite float cast to an integer, an integer division by 0): no value
        for sched in (lambda k: 0.1 * 0.5 ** jnp.minimum((100.0 / k).astype(jnp.int32), 3),
                      lambda k: 0.1 * (1 + jax.lax.div(k, jnp.zeros_like(k)) * 2),
                      lambda k: 0.1 * (1 + jax.lax.rem(k, jnp.zeros_like(k)))):
            assert host_value.value(jax.make_jaxpr(sched)(jnp.int32(0)), np.int32(0)) is None


@pytest.mark.parametrize("lr,value,fix", [
    (lambda k: 0.1 / jnp.sqrt(k), "inf", "the step count starts at 0"),
    (lambda k: -0.1, "-0.1", "a negative step size moves up the gradient"),
    (lambda k: jnp.log(k) * 0.1, "-inf", "the step count starts at 0"),
    (S.per_epoch(lambda e: 0.1 / e, 3), "inf", "the step count starts at 0"),
], ids=["1/sqrt(k)", "negative", "log(k)", "per_epoch(1/e)"])
def test_a_schedule_whose_first_value_is_not_finite_or_negative_is_refused(lr, value, fix):
    """Reference: the schedule's closed form at count 0 (0.1/sqrt(0) = inf, log(0) = -inf). 1/sqrt(k) ended
    NONFINITE at step 0 with a message about a step size too large, and -0.1 climbed silently; now minimize,
    Solver, fit and as_optax refuse it by name before anything compiles."""
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    match = rf"got lr\(0\)={value}: {fix}"
    for call in (lambda: jaxgd.minimize(f, jnp.ones(2), lr=lr), lambda: jaxgd.Solver(f, "gd", lr),
                 lambda: jaxgd.as_optax("gd", lr),
                 lambda: jaxgd.fit(lambda p, b: jnp.mean((b - p) ** 2), jnp.zeros(()), jnp.ones(6), batch_size=3,
                                   epochs=1, key=jax.random.key(0), lr=lr)):
        with pytest.raises(ValueError, match=match):
            call()


def test_a_schedule_from_zero_or_closing_over_a_traced_value_is_not_refused():
    """lr(0) == 0 starts a warmup (optax.linear_schedule(0.0, 0.1, 100), reference: optax's own lr(0) = 0) and
    runs; a schedule closing over a traced value has no known lr(0) and is not checked (traced only, no compile)."""
    sched = optax.linear_schedule(0.0, 0.1, 100)
    assert float(sched(0)) == 0.0
    res = jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), lr=sched, max_steps=3, gtol=0.0)
    assert float(res.history.lr[0]) == 0.0 and res.status_enum is jaxgd.Status.MAX_STEPS
    run = lambda v: jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), lr=lambda k: -v, max_steps=3).loss  # noqa: E731
    out = jax.eval_shape(run, 0.1)
    assert out.shape == ()


def test_a_schedule_gone_negative_mid_run_takes_steps_of_zero() -> None:
    """Reference: gradient descent by hand in NumPy on (x - 1)^2, lr_k = 0.1 - 0.01 k. The steps k = 0..10 have
    lr >= 0; from k = 11 the schedule is negative and each step would climb (the run went on to a loss of 5.8e5):
    they are steps of 0, and the run ends at the hand iterate of step 11. A linear decay to 0, which XLA rounds a
    little below 0 at its end (-2.6e-9 in float32), runs on as optax's own loop does (it read NONFINITE when a negative
    step was refused)."""
    x = np.array([0.5, -0.5])
    for k in range(11):
        x = x - (0.1 - 0.01 * k) * 2 * (x - 1.0)
    sched = lambda k: 0.1 - 0.01 * k  # noqa: E731
    r = jaxgd.minimize(lambda p: jnp.sum((p - 1.0) ** 2), jnp.asarray([0.5, -0.5]), lr=sched, max_steps=40)
    assert r.status_enum == jaxgd.Status.MAX_STEPS and int(r.steps) == 40, r
    np.testing.assert_allclose(np.asarray(r.params), x, rtol=1e-12)
    decay = optax.linear_schedule(0.1, 0.0, 60)
    loss = lambda p: jnp.sum((p - 1.0) ** 2)  # noqa: E731
    with jax.enable_x64(False):  # (float32: there the compiled schedule ends below 0)
        r = jaxgd.minimize(loss, jnp.zeros(3), method="gd", lr=decay, max_steps=80, gtol=0.0)
        opt, p = optax.sgd(decay), jnp.zeros(3)
        state = opt.init(p)
        for _ in range(80):
            updates, state = opt.update(jax.grad(loss)(p), state, p)
            p = optax.apply_updates(p, updates)
    assert r.status_enum == jaxgd.Status.MAX_STEPS and int(r.steps) == 80, r
    np.testing.assert_allclose(np.asarray(r.params), np.asarray(p), rtol=1e-6)


@pytest.mark.slow
def test_a_schedule_gone_negative_mid_fit_takes_steps_of_zero() -> None:
    """Reference: the test above, in fit (which climbed to a loss of 897): the loss at the end is the lowest."""
    sched = lambda k: 0.1 - 0.01 * k  # noqa: E731
    data = (np.ones((4, 1)), np.ones(4))
    fitted = jaxgd.fit(lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2), jnp.zeros(1), data, batch_size=4, epochs=40,
                       method="gd", lr=sched, key=jax.random.PRNGKey(0))
    p = 0.0
    for k in range(11):  # (one batch an epoch: step k is epoch k's)
        p = p - (0.1 - 0.01 * k) * 2 * (p - 1.0)
    assert fitted.status == jaxgd.FitStatus.EPOCHS, fitted
    np.testing.assert_allclose(float(np.asarray(fitted.params)[0]), p, rtol=1e-6)
