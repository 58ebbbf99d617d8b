"""End-to-end tests of ``jaxgd.minimize`` and ``jaxgd.Solver`` (issue 2).

Each test names its independent reference: a closed-form recurrence in NumPy,
optax's own transformations in a plain Python loop, or a hand computation.
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
import optax
import pytest

import jaxgd
from jaxgd import Status
from jaxgd.core import minimize as _minimize
from jaxgd.core import solver as _solver


def quad_problem(d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(d, d))
    a = m @ m.T + d * np.eye(d)
    b = rng.normal(size=d)
    fun = lambda x, a, b: 0.5 * x @ a @ x - b @ x  # noqa: E731
    return fun, a, b


def test_gd_iterates_match_closed_form_recurrence():
    """Reference: x_{k+1} = x_k - lr (A x_k - b), computed in NumPy float64."""
    fun, a, b = quad_problem()
    lr = 0.05
    solver = jaxgd.Solver(fun, "gd", lr, gtol=0.0)
    state = solver.init(jnp.zeros(4), a, b)
    x = np.zeros(4)
    step = jax.jit(solver.step)
    for _ in range(20):
        state = step(state, a, b)
        x = x - lr * (a @ x - b)
        np.testing.assert_allclose(np.asarray(state.params), x, rtol=1e-12, atol=1e-12)
    res = jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=lr, max_steps=20, gtol=0.0)
    np.testing.assert_allclose(np.asarray(res.params), x, rtol=1e-12, atol=1e-12)
    assert int(res.steps) == 20 and res.status_enum is Status.MAX_STEPS and not res.success


OPTAX_TWINS = {
    "gd": lambda lr, wd: optax.sgd(lr),
    "momentum": lambda lr, wd: optax.sgd(lr, momentum=0.9),
    "nesterov": lambda lr, wd: optax.sgd(lr, momentum=0.9, nesterov=True),
    "adagrad": lambda lr, wd: optax.adagrad(lr),
    "rmsprop": lambda lr, wd: optax.rmsprop(lr),
    "adam": lambda lr, wd: optax.adam(lr),
    "adamw": lambda lr, wd: optax.adamw(lr, weight_decay=wd),
}


@pytest.mark.parametrize("method", sorted(OPTAX_TWINS))
def test_each_direction_matches_optax_python_loop(method):
    """Reference: optax's own optimizer, driven by a plain Python loop, 50 steps."""
    fun, a, b = quad_problem(seed=1)
    lr, wd = 0.03, 0.1 if method == "adamw" else 0.0
    tx = OPTAX_TWINS[method](lr, wd)
    x = {"w": jnp.ones(4), "v": jnp.full((2,), 0.5)}
    loss = lambda p: fun(p["w"], a, b) + jnp.sum((p["v"] - 2.0) ** 2)  # noqa: E731
    opt_state = tx.init(x)
    p = x
    grad = jax.jit(jax.grad(loss))  # (compiled once: eagerly, jax.grad traced the loss again at each of the 50 steps)
    for _ in range(50):
        g = grad(p)
        u, opt_state = tx.update(g, opt_state, p)
        p = optax.apply_updates(p, u)
    res = jaxgd.minimize(loss, x, method=method, lr=lr, l2=wd, max_steps=50, gtol=0.0)
    for k in p:
        np.testing.assert_allclose(np.asarray(res.params[k]), np.asarray(p[k]), rtol=1e-10, atol=1e-12)


def test_user_optax_transform_is_used_unchanged():
    """Reference: optax.adam(0.05) in a Python loop; the step size defaults to 1."""
    fun, a, b = quad_problem(seed=2)
    tx = optax.adam(0.05)
    p, s = jnp.zeros(4), tx.init(jnp.zeros(4))
    for _ in range(30):
        u, s = tx.update(jax.grad(fun)(p, a, b), s, p)
        p = optax.apply_updates(p, u)
    res = jaxgd.minimize(fun, jnp.zeros(4), (a, b), method=tx, max_steps=30, gtol=0.0)
    np.testing.assert_allclose(np.asarray(res.params), np.asarray(p), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(res.history.lr), 1.0)


def test_max_steps_zero_returns_x0():
    x0 = {"a": jnp.arange(3.0), "b": jnp.ones((2, 2))}
    res = jaxgd.minimize(lambda p: jnp.sum(p["a"] ** 2) + jnp.sum(p["b"] ** 2), x0, max_steps=0)
    assert int(res.steps) == 0 and res.status_enum is Status.MAX_STEPS
    for k in x0:
        np.testing.assert_array_equal(np.asarray(res.params[k]), np.asarray(x0[k]))
    assert res.history.loss.shape == (0,)


def test_gtol_converges_with_status_and_message():
    """Reference: the closed-form minimiser A^{-1} b (np.linalg.solve)."""
    fun, a, b = quad_problem()
    res = jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=0.05, max_steps=5000, gtol=1e-10)
    assert res.status_enum is Status.GTOL and res.success
    assert res.message == Status.GTOL.message
    assert float(res.grad_norm) <= 1e-10
    np.testing.assert_allclose(np.asarray(res.params), np.linalg.solve(a, b), rtol=1e-9)


def test_ftol_and_xtol_stop_the_loop():
    fun, a, b = quad_problem()
    r1 = jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=0.05, max_steps=5000, gtol=0.0, ftol=1e-8)
    assert r1.status_enum is Status.FTOL
    h = np.asarray(r1.history.loss)
    f_prev, f_last = (h[-2], h[-1]) if len(h) > 1 else (None, None)
    assert abs(f_prev - f_last) <= 1e-8 * max(abs(f_prev), abs(f_last), 1.0)
    r2 = jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=0.05, max_steps=5000, gtol=0.0, xtol=1e-9)
    assert r2.status_enum is Status.XTOL and int(r2.steps) < 5000


@pytest.mark.parametrize("gtol_norm", [None, np.inf], ids=["2-norm", "inf-norm"])
def test_nonfinite_stops_with_last_finite_params(gtol_norm):
    """f = x^2/2 - log x: with lr=1.5 from 0.5 the second step lands at x < 0,
    where log is NaN. Reference: the same recurrence replayed in NumPy. The
    infinity-norm measure has its own one-reduction finiteness test."""
    fun = lambda x: jnp.sum(0.5 * x**2 - jnp.log(x))  # noqa: E731
    x, lr, finite_steps = np.array([0.5]), 1.5, 0
    while True:
        nxt = x - lr * (x - 1 / x)
        if not np.all(nxt > 0):
            break
        x, finite_steps = nxt, finite_steps + 1
    assert finite_steps == 1
    res = jaxgd.minimize(fun, jnp.array([0.5]), lr=lr, max_steps=100, gtol_norm=gtol_norm)
    assert res.status_enum is Status.NONFINITE and not res.success
    assert int(res.steps) == finite_steps
    np.testing.assert_allclose(np.asarray(res.params), x, rtol=1e-12)
    assert np.isfinite(float(res.loss))
    assert "NaN or Inf" in res.message


def test_nonfinite_at_x0_takes_no_step():
    res = jaxgd.minimize(lambda x: jnp.sum(jnp.log(x - 1.0)), jnp.array([0.5]), lr=0.1)
    assert res.status_enum is Status.NONFINITE and int(res.steps) == 0


def test_history_is_trimmed_and_consistent():
    """Reference: the loss and gradient norm recomputed in NumPy from each replayed iterate."""
    fun, a, b = quad_problem()
    lr = 0.05
    res = jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=lr, max_steps=30, gtol=0.0)
    x, losses, gnorms = np.zeros(4), [], []
    for _ in range(30):
        x = x - lr * (a @ x - b)
        losses.append(0.5 * x @ a @ x - b @ x)
        gnorms.append(np.linalg.norm(a @ x - b))
    np.testing.assert_allclose(np.asarray(res.history.loss), losses, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(res.history.grad_norm), gnorms, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(res.history.lr), lr)
    every = jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=lr, max_steps=30, gtol=0.0, history=10)
    np.testing.assert_allclose(np.asarray(every.history.loss), np.asarray(losses)[9::10], rtol=1e-12)
    for _ in range(2):  # the first call and a repeated one (minimize_run.Repeat): NumPy either way, as with history on
        off = jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=lr, max_steps=30, gtol=0.0, history=False)
        assert all(type(h) is np.ndarray and h.shape == (0,) and h.dtype == np.float64 for h in off.history)
        assert all(type(h) is np.ndarray for h in res.history)
        np.testing.assert_array_equal(np.asarray(off.params), np.asarray(res.params))


def test_history_untrimmed_under_jit_pads_with_nan():
    fun, a, b = quad_problem()
    res = jax.jit(lambda x: jaxgd.minimize(fun, x, (a, b), lr=0.05, max_steps=50, gtol=1e-3))(jnp.zeros(4))
    n = int(res.steps)
    assert 0 < n < 50 and res.history.loss.shape == (50,)
    assert np.all(np.isfinite(np.asarray(res.history.loss[:n])))
    assert np.all(np.isnan(np.asarray(res.history.loss[n:])))
    assert res.status_enum is Status.GTOL


@pytest.mark.parametrize("history", [False, pytest.param(20, marks=pytest.mark.slow)])  # (no row within max_steps)
def test_grad_through_a_run_without_history(history):
    """jax.grad of a run with history=False (or no row within max_steps) failed converting the traced loss to
    NumPy for its empty history (a review, session 61). Reference: gd on 0.5 ||x - a||^2 by hand: the
    minimiser is a (the implicit adjoint: derivative 1 per entry), and x_10 = a + (x0 - a) 0.9^10 (unrolled:
    1 - 0.9^10)."""
    fun = lambda x, a: 0.5 * jnp.sum((x - a) ** 2)  # noqa: E731
    for adjoint, want in (("implicit", 1.0), ("unroll", 1.0 - 0.9**10)):
        grad = jax.grad(lambda a: jnp.sum(jaxgd.minimize(fun, jnp.zeros(3), (a,), lr=0.1, max_steps=10, gtol=0.0,
                                                         history=history, adjoint=adjoint).params))(jnp.ones(3))
        np.testing.assert_allclose(np.asarray(grad), want, rtol=1e-10)


def test_has_aux_returns_aux_at_final_params():
    def fun(x):
        r = x - jnp.array([1.0, 2.0])
        return jnp.sum(r**2), {"residual": r}

    res = jaxgd.minimize(fun, jnp.zeros(2), lr=0.1, max_steps=20, gtol=0.0, has_aux=True)
    np.testing.assert_allclose(np.asarray(res.aux["residual"]), np.asarray(res.params) - [1.0, 2.0])


def test_clip_by_global_norm_matches_optax():
    """Reference: optax.chain(clip_by_global_norm, sgd) in a Python loop."""
    fun = lambda x: jnp.sum((x - 10.0) ** 2)  # noqa: E731
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1))
    p, s = jnp.zeros(3), tx.init(jnp.zeros(3))
    for _ in range(15):
        u, s = tx.update(jax.grad(fun)(p), s, p)
        p = optax.apply_updates(p, u)
    res = jaxgd.minimize(fun, jnp.zeros(3), lr=0.1, clip=1.0, max_steps=15, gtol=0.0)
    np.testing.assert_allclose(np.asarray(res.params), np.asarray(p), rtol=1e-12)


def test_l2_penalty_matches_closed_form():
    """Reference: ridge solution (A + l2 I)^{-1} b."""
    fun, a, b = quad_problem()
    res = jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=0.05, l2=0.7, max_steps=5000, gtol=1e-11)
    np.testing.assert_allclose(np.asarray(res.params), np.linalg.solve(a + 0.7 * np.eye(4), b), rtol=1e-9)


def test_l1_ista_matches_soft_threshold_closed_form():
    """Reference: for f = 0.5||x - c||^2 + l1||x||_1 the minimiser is soft(c, l1)."""
    c = np.array([3.0, -0.2, 0.5, -2.0])
    res = jaxgd.minimize(lambda x: 0.5 * jnp.sum((x - c) ** 2), jnp.zeros(4), lr=0.5, l1=0.4, max_steps=500, gtol=1e-12)
    np.testing.assert_allclose(np.asarray(res.params), np.sign(c) * np.maximum(np.abs(c) - 0.4, 0), atol=1e-9)
    assert res.success


@pytest.mark.alternate("dtype")  # (every dtype in make slow)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("method", ["gd", "adam", "momentum"])
def test_dtype_preserved(dtype, method):
    x0 = {"w": jnp.ones((3,), dtype), "b": jnp.zeros((), dtype)}
    res = jaxgd.minimize(lambda p: jnp.sum((p["w"] - 2) ** 2) + p["b"] ** 2, x0, method=method, lr=0.1, max_steps=10)
    for k in x0:
        assert res.params[k].dtype == dtype
    assert res.loss.dtype == dtype and res.history.loss.dtype == dtype


def test_result_from_inside_jit_equals_eager():
    fun, a, b = quad_problem()
    run = lambda x, lr: jaxgd.minimize(fun, x, (a, b), lr=lr, max_steps=40, gtol=0.0)  # noqa: E731
    eager = run(jnp.zeros(4), 0.05)
    jitted = jax.jit(run)(jnp.zeros(4), 0.05)
    np.testing.assert_allclose(np.asarray(jitted.params), np.asarray(eager.params), rtol=1e-12)
    assert int(jitted.status) == int(eager.status)


@pytest.mark.slow
def test_solver_run_with_jit_disabled_equals_jitted():
    """Reference: the same loop executed op by op (jax.disable_jit)."""
    fun, a, b = quad_problem()
    solver = jaxgd.Solver(fun, "momentum", 0.02, max_steps=15, gtol=0.0)
    with jax.disable_jit():
        eager = solver.run(jnp.zeros(4), a, b)
    jitted = jax.jit(lambda s, x: s.run(x, a, b))(solver, jnp.zeros(4))
    np.testing.assert_allclose(np.asarray(jitted.params), np.asarray(eager.params), rtol=1e-12)


def test_new_lr_and_tolerances_do_not_retrace():
    traces = []

    def fun(x):
        traces.append(1)
        return jnp.sum((x - 1.0) ** 2)

    x0 = jnp.zeros(3)
    jaxgd.minimize(fun, x0, lr=0.1, max_steps=20)
    n = len(traces)
    for lr, gtol, l2 in [(0.2, 1e-7, 0.0), (0.05, 1e-3, 0.0), (0.3, 1e-9, 0.0)]:
        jaxgd.minimize(fun, x0, lr=lr, max_steps=20, gtol=gtol, l2=l2)
    assert len(traces) == n, "a new hyperparameter value recompiled the loop"
    jaxgd.minimize(fun, x0, lr=0.1, max_steps=20, l2=0.1)  # switching L2 on compiles once
    m = len(traces)
    jaxgd.minimize(fun, x0, lr=0.1, max_steps=20, l2=0.3)
    assert len(traces) == m
    sched = jaxgd.schedules.step_decay(0.1, 5, 0.5)
    jaxgd.minimize(fun, x0, lr=sched, max_steps=20)
    m = len(traces)
    jaxgd.minimize(fun, x0, lr=jaxgd.schedules.step_decay(0.3, 7, 0.9), max_steps=20)
    assert len(traces) == m, "a jaxgd schedule's new numbers recompiled the loop"


def test_vmap_over_learning_rates_equals_separate_runs():
    fun, a, b = quad_problem()
    lrs = jnp.linspace(0.005, 0.1, 32)
    batched = jax.vmap(lambda lr: jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=lr, max_steps=60, gtol=1e-6))(lrs)
    for i in (0, 7, 31):
        single = jaxgd.minimize(fun, jnp.zeros(4), (a, b), lr=float(lrs[i]), max_steps=60, gtol=1e-6)
        np.testing.assert_allclose(np.asarray(batched.params[i]), np.asarray(single.params), rtol=1e-12)
        assert int(batched.steps[i]) == int(single.steps)
        assert int(batched.status[i]) == int(single.status)
    assert batched.success.shape == (32,)


def test_pytree_params_nested():
    x0 = {"layer": [jnp.ones((2, 3)), (jnp.zeros(3),)], "s": jnp.asarray(0.5)}
    loss = lambda p: jnp.sum(p["layer"][0] ** 2) + jnp.sum((p["layer"][1][0] - 1) ** 2) + (p["s"] - 2) ** 2  # noqa: E731
    res = jaxgd.minimize(loss, x0, lr=0.25, max_steps=200, gtol=1e-9)
    assert jax.tree_util.tree_structure(res.params) == jax.tree_util.tree_structure(x0)
    np.testing.assert_allclose(np.asarray(res.params["layer"][1][0]), 1.0, atol=1e-8)
    np.testing.assert_allclose(float(res.params["s"]), 2.0, atol=1e-8)


def test_progress_bar_reaches_the_end(capsys):
    res = jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), lr=0.1, max_steps=50, gtol=0.0, progress=10)
    jax.effects_barrier()
    err = capsys.readouterr().err
    assert "50/50" in err and int(res.steps) == 50


# -- validation: each error names the argument, before any compiled work ----------
def _traced_fun():
    calls = []

    def fun(x):
        calls.append(1)
        return jnp.sum(x**2)

    return fun, calls


BAD = [
    (dict(fun=3), TypeError, "fun must be callable"),
    (dict(x0=jnp.array([1, 2])), TypeError, "x0 leaf"),
    (dict(x0=jnp.array([1 + 1j])), TypeError, "x0 leaf"),
    (dict(x0={}), ValueError, "x0 must contain"),
    (dict(x0=jnp.zeros((0,))), ValueError, "x0 must contain"),
    (dict(x0=jnp.array([1.0, np.nan])), ValueError, "NaN or Inf"),
    (dict(lr=0.0), ValueError, "lr must be > 0"),
    (dict(lr=-1.0), ValueError, "lr must be > 0"),
    (dict(lr=float("nan")), ValueError, "lr must be > 0"),
    (dict(lr="fast"), TypeError, "lr must be"),
    (dict(max_steps=-1), ValueError, "max_steps must be"),
    (dict(max_steps=2.5), ValueError, "max_steps must be"),
    (dict(max_steps=True), ValueError, "max_steps must be"),
    (dict(gtol=-1e-3), ValueError, "gtol must be"),
    (dict(ftol=float("nan")), ValueError, "ftol must be"),
    (dict(xtol=-1.0), ValueError, "xtol must be"),
    (dict(l1=-0.1), ValueError, "l1 must be"),
    (dict(l2=-0.1), ValueError, "l2 must be"),
    (dict(clip=0.0), ValueError, "clip must be"),
    (dict(method="sgd"), ValueError, "not a known method"),
    (dict(method=42), TypeError, "method must be"),
    (dict(history=-2), ValueError, "history must be"),
    (dict(progress=0.5), TypeError, "progress must be"),
    (dict(lrr=0.1), TypeError, "did you mean lr"),
]


@pytest.mark.parametrize("kwargs,exc,fragment", BAD, ids=[next(iter(k)) + "=" + repr(next(iter(k.values())))[:20] for k, _, _ in BAD])
def test_bad_input_raises_before_compiling(kwargs, exc, fragment):
    fun, calls = _traced_fun()
    call = dict(fun=fun, x0=jnp.ones(2))
    call.update(kwargs)
    with pytest.raises(exc, match=fragment.replace("(", r"\(")):
        jaxgd.minimize(call.pop("fun"), call.pop("x0"), **call)
    assert calls == [], "validation ran after tracing the loss"


def test_unknown_method_lists_valid_names():
    with pytest.raises(ValueError) as e:
        jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), method="adamm")
    for name in jaxgd.methods():
        assert name in str(e.value)


@pytest.mark.parametrize(
    "fun,fragment",
    [
        (lambda x: x**2, "shape (2,)"),
        (lambda x: jnp.sum(x**2).astype(jnp.complex64), "dtype complex64"),
        (lambda x: jnp.sum(x > 0), "dtype int"),
    ],
)
def test_loss_must_be_real_scalar(fun, fragment):
    with pytest.raises(TypeError, match="fun must return a real scalar") as e:
        jaxgd.minimize(fun, jnp.ones(2))
    assert fragment in str(e.value)


def test_has_aux_requires_pair():
    with pytest.raises(TypeError, match="has_aux=True"):
        jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), has_aux=True)


def test_validation_skipped_for_tracers_under_vmap():
    """A traced lr cannot be checked on the host; it must not be an error."""
    out = jax.vmap(lambda lr: jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), lr=lr, max_steps=5).loss)(
        jnp.array([0.1, 0.2])
    )
    assert out.shape == (2,)


def test_repeated_call_skips_eval_shape(monkeypatch):
    fun = lambda x: jnp.sum(x**2)  # noqa: E731
    jaxgd.minimize(fun, jnp.ones(3), max_steps=3)
    monkeypatch.setattr(_minimize.jax, "eval_shape", lambda *a, **k: pytest.fail("eval_shape on a cache hit"))
    jaxgd.minimize(fun, jnp.ones(3) * 2, max_steps=3)


def test_errors_are_the_module_constants_formatted_with_the_bad_value():
    """The raised text is exactly the module constant filled in with what was wrong
    (so tests, docs and users can match on it), naming the argument."""
    with pytest.raises(TypeError) as err:
        jaxgd.minimize(3, jnp.ones(2))
    assert str(err.value) == _solver.NOT_CALLABLE.format(kind="int")
    with pytest.raises(ValueError) as err:
        jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), lr=-0.5)
    assert str(err.value) == _solver.BAD_LR.format(lr=-0.5) and "lr=-0.5" in str(err.value)
    with pytest.raises(TypeError) as err:
        jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), max_step=3)
    valid = ", ".join(_minimize._KEYWORDS)
    assert str(err.value) == _minimize.UNKNOWN_KWARG.format(fn="minimize", names="max_step", hint=" (did you mean max_steps?)", valid=valid)
    assert "max_steps" in _minimize._KEYWORDS


def test_concrete_x0_under_an_outer_jit():
    """Regression (found on an H200): the finiteness check of a concrete x0
    closed over by the caller's jit trace must not run inside that trace (it
    is a host check of the concrete array)."""
    x0 = jnp.ones(3)
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    out = jax.jit(jax.vmap(lambda lr: jaxgd.minimize(f, x0, lr=lr, max_steps=5).loss))(jnp.array([0.1, 0.2]))
    assert out.shape == (2,) and np.all(np.isfinite(np.asarray(out)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        jaxgd.minimize(f, jnp.array([1.0, np.nan]))


def test_concrete_inputs_under_a_trace_give_the_eager_run_untrimmed():
    """Reference: the eager call. x0 closed over in a jax.jit (or jax.eval_shape) is concrete, so the run
    is the eager one (bucketed, its history handed back stacked); under the trace the history stays a
    History of the bucket's rows, the first ``steps`` of them the eager call's (to rounding: XLA folds
    the closed-over x0 as a constant, one ulp in a gradient norm here, as on main before issue 11)."""
    fun = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    x0 = jnp.zeros(3)  # made outside the traces: concrete inside them
    eager = jaxgd.minimize(fun, x0, lr=0.1, max_steps=6, gtol=0.0)
    traced = jax.jit(lambda: jaxgd.minimize(fun, x0, lr=0.1, max_steps=6, gtol=0.0))()
    assert isinstance(traced.history, jaxgd.History) and traced.history.loss.shape == (8,)
    np.testing.assert_allclose(traced.params, eager.params, rtol=1e-14)
    for h, e in zip(traced.history, eager.history):
        np.testing.assert_allclose(np.asarray(h)[:6], e, rtol=1e-14)
    shape = jax.eval_shape(lambda: jaxgd.minimize(fun, x0, lr=0.1, max_steps=6))
    assert isinstance(shape.history, jaxgd.History) and shape.history.lr.shape == (8,)


def test_a_weakly_typed_x0_under_jit_and_eval_shape() -> None:
    """x0 = jnp.full(3, -1.0) (weakly typed, from a Python float) inside jax.jit and jax.eval_shape (the Orbax
    recipe's template), for minimize and fit: it raised TracerArrayConversionError (a device_put under the
    trace, then np.asarray of the tracer). Reference: the strongly typed x0's result."""
    f = lambda x: jnp.sum((x - 2.0) ** 2)  # noqa: E731
    weak, strong = jnp.full(3, -1.0), jnp.full(3, -1.0, jnp.float64)
    assert weak.weak_type and not strong.weak_type
    want = jaxgd.minimize(f, strong, lr=0.25, max_steps=10).params
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda: jaxgd.minimize(f, weak, lr=0.25, max_steps=10).params)()),
                                  np.asarray(want))
    shape = jax.eval_shape(lambda: jaxgd.minimize(f, weak, lr=0.25, max_steps=10))
    assert shape.params.shape == (3,) and shape.params.dtype == want.dtype
    fitted = jax.eval_shape(lambda: jaxgd.fit(lambda x, b: f(x) + 0.0 * jnp.sum(b), weak, np.zeros(4), batch_size=2,
                                              epochs=2, key=jax.random.key(0), method="gd", lr=0.1, progress=False))
    assert fitted.params.shape == (3,)


def test_a_history_larger_than_memory_is_refused_before_the_run():
    """max_steps=10**9 with history=True (the default) allocated 24 GB of history rows before a run that stops
    after 2 steps: XLA's RESOURCE_EXHAUSTED, or no return; 10**8 took 6-12 s. Refused by name now; the
    same limit with history=False or history=1000 runs (reference: the closed-form minimiser 1)."""
    f = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    with pytest.raises(ValueError, match="records up to 1,000,000,000 history rows"):
        jaxgd.minimize(f, jnp.zeros(2), max_steps=10**9)


@pytest.mark.slow  # (~6 s)
def test_a_huge_max_steps_runs_with_history_off_or_sparse():
    """The limit test_a_history_larger_than_memory_is_refused_before_the_run refuses with history=True runs with
    history=False or history=1000 (reference: the closed-form minimiser 1)."""
    f = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    for history in (False, 1000):
        r = jaxgd.minimize(f, jnp.zeros(2), method="lbfgs", max_steps=10**9, history=history)
        np.testing.assert_allclose(r.params, 1.0, rtol=1e-12)


# -- args: every leaf is traced (session 59) ----------------------------------------------------------------------

_XA = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]])
_YA = np.array([1.0, 2.0, 4.0])


def _lp_loss(w, args):  # a str leaf used as a static switch: what optimistix users put in args
    r = jnp.asarray(_XA) @ w - jnp.asarray(_YA)
    return jnp.sum(jnp.abs(r) ** args["p"]) if args["mode"] == "lp" else jnp.sum(r ** 2)


@pytest.mark.slow
def test_a_str_leaf_of_args_is_refused_naming_its_path_and_the_closure_gives_the_inlined_answer():
    """Reference: the message (path, type, the fix), raised before the loss is traced; then the fix,
    functools.partial / a closure over the str, gives the answer of the loss with the value inlined, and both
    equal NumPy's least-squares solution (p = 2)."""
    import functools

    calls = []
    with pytest.raises(TypeError) as info:
        jaxgd.minimize(lambda w, a: calls.append(1) or _lp_loss(w, a), jnp.zeros(2), {"p": 2, "mode": "lp"},
                       method="bfgs")
    msg = str(info.value)
    assert msg.startswith("args[0]['mode'] is a str: minimize traces every leaf of args as an array")
    assert "functools.partial(fun, mode=...)" in msg and not calls
    with pytest.raises(TypeError, match=r"args\[1\] is a function"):
        jaxgd.minimize(lambda w, s, f: f(jnp.sum(w ** 2)), jnp.zeros(2), (2.0, lambda v: v))
    jaxgd.minimize(lambda w, a: jnp.sum((w - a[0]) ** 2) * a[1], jnp.zeros(2), ((1, 2.0),), max_steps=3)  # numbers

    def inlined(w, p):
        return jnp.sum(jnp.abs(jnp.asarray(_XA) @ w - jnp.asarray(_YA)) ** p)

    def by_mode(w, p, mode):
        return _lp_loss(w, {"p": p, "mode": mode})

    want = jaxgd.minimize(inlined, jnp.zeros(2), (2,), method="bfgs")  # a Python int leaf: traced, accepted
    part = jaxgd.minimize(functools.partial(by_mode, mode="lp"), jnp.zeros(2), (2,), method="bfgs")
    closure = jaxgd.minimize(lambda w, p: by_mode(w, p, "lp"), jnp.zeros(2), (2,), method="bfgs")
    np.testing.assert_allclose(part.params, want.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(closure.params, want.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(want.params, np.linalg.lstsq(_XA, _YA, rcond=None)[0], atol=1e-8)


@pytest.mark.slow  # ~3 s
def test_vmap_over_data_beside_a_sparse_bcoo_matrix_in_args():
    """jax.vmap of minimize over y with a jax.experimental.sparse.BCOO design matrix in args (unbatched): the
    batched loop's in_axes, a tree of Nones rebuilt as a BCOO, was no prefix vmap accepts (a JAX power user's
    review). Reference: the same vmapped solve with the dense matrix (BCOO.todense), lane by lane."""
    from jax.experimental import sparse

    rng = np.random.default_rng(0)
    dense = rng.standard_normal((40, 8)) * (rng.random((40, 8)) < 0.3)
    ys = jnp.asarray((rng.random((2, 40)) < 0.5).astype(float))

    def loss(w, x, y):
        z = x @ w
        return jnp.sum(jnp.logaddexp(0.0, z) - y * z) + 0.5 * jnp.sum(w ** 2)

    runs = [jax.vmap(lambda y: jaxgd.minimize(loss, jnp.zeros(8), (x, y), method="gd", lr=0.02, max_steps=300))(ys)
            for x in (sparse.BCOO.fromdense(dense), jnp.asarray(dense))]
    np.testing.assert_allclose(np.asarray(runs[0].params), np.asarray(runs[1].params), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(runs[0].status), np.asarray(runs[1].status))
    # an OrderedDict holding batched and unbatched leaves keeps its own type in the in_axes (the diff's review)
    import collections

    ordered = jax.vmap(lambda y: jaxgd.minimize(lambda w, d: loss(w, d["x"], d["y"]), jnp.zeros(8),
                                                (collections.OrderedDict(x=jnp.asarray(dense), y=y),), method="gd",
                                                lr=0.02, max_steps=300))(ys)
    np.testing.assert_array_equal(np.asarray(ordered.params), np.asarray(runs[1].params))


@pytest.mark.slow  # ~2 s: four programs
def test_minimize_and_fit_run_under_jax_debug_nans_as_without_it():
    """With jax_debug_nans on, every compiled run raised FloatingPointError on jaxgd's own NaNs (the history
    rows a run does not reach; a JAX power user's review: fit could not run at all). minimize and fit run with
    the flag off inside and leave it on. Reference: the same runs without the flag, bit for bit."""
    quad = lambda x: jnp.sum((x - jnp.arange(3.0)) ** 2)  # noqa: E731
    x, y = np.random.default_rng(0).normal(size=(32, 3)), np.ones(32)
    mse = lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2)  # noqa: E731

    def runs() -> list:
        res = jaxgd.minimize(quad, jnp.zeros(3), method="gd", lr=0.1)
        fitted = jaxgd.fit(mse, jnp.zeros(3), (x, y), batch_size=8, epochs=3, key=jax.random.key(0), lr=0.05)
        return [res.params, res.history.loss, fitted.params, fitted.history.loss]

    plain = runs()
    with jax.debug_nans(True):
        flagged = runs()
        assert jax.config.jax_debug_nans
    for a, b in zip(plain, flagged):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
