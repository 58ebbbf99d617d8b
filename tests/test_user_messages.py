"""What a user sees (issue 16 item 5): the finished progress bar, printed statuses, the CLI's help,
the message of a run stopped at step 0, and errors that name the argument.

References: the run's own ``Result``/``FitResult`` (steps, status) for what the
bar must say; Python's ``enum.Enum`` printing for ``Status``; argparse's help
text; the first-step loss computed by hand (NaN) for the step-0 message. The
bad inputs themselves are rows of tests/test_bad_inputs.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.core.status import FIT_NONFINITE_FIRST, NONFINITE_AT_START, NONFINITE_GRADIENT_AT_START, message_at

X = np.random.default_rng(0).normal(size=(20, 3))
Y = X @ np.array([1.0, -1.0, 0.5])


def mse(w: jax.Array, batch: tuple) -> jax.Array:
    x, y = batch
    return jnp.mean((x @ w - y) ** 2)


def last_bar(err: str) -> str:
    """The last state of the progress bar in captured stderr (tqdm redraws with \\r)."""
    return [line for line in err.replace("\r", "\n").split("\n") if line.strip()][-1]


def test_progress_bar_ends_where_minimize_converged(capsys: pytest.CaptureFixture) -> None:
    res = jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(3), lr=0.1, max_steps=1000, progress=True)
    n = int(res.steps)
    assert res.status_enum is jaxgd.Status.GTOL and 0 < n < 1000
    bar = last_bar(capsys.readouterr().err)
    assert bar.startswith(f"converged: gtol at step {n}: 100%"), bar
    assert f"{n}/{n}" in bar, bar


def test_progress_bar_says_max_steps(capsys: pytest.CaptureFixture) -> None:
    res = jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(3), lr=1e-3, max_steps=20, progress=True)
    assert res.status_enum is jaxgd.Status.MAX_STEPS
    bar = last_bar(capsys.readouterr().err)
    assert bar.startswith("stopped: max_steps at step 20: 100%") and "20/20" in bar, bar


def test_progress_bar_names_every_status(capsys: pytest.CaptureFixture, x64_off: None) -> None:
    """Every Status has a reason on the bar (PRECISION and STALLED read "status 9"/"status 10")."""
    from jaxgd.core.progress import reason

    for status in jaxgd.Status:
        if status is not jaxgd.Status.RUNNING:
            assert "status" not in reason(status, 5, 10, "step"), status
    res = jaxgd.minimize(lambda x: jnp.sum((x - 3.0) ** 2), jnp.ones(2), lr=0.1, progress=True, history=False)
    assert res.status_enum is jaxgd.Status.PRECISION  # float32: gtol=1e-6 is below the rounding of f near x = 3
    assert last_bar(capsys.readouterr().err).startswith(f"converged: at precision at step {int(res.steps)}: 100%")


def test_progress_bar_under_vmap_follows_the_runs_still_running(capsys: pytest.CaptureFixture) -> None:
    """Under vmap the bar waited at the first run to stop (its count, the batch's minimum) and
    ended there; it follows the least advanced run still running and ends at the last one's
    step, counting the runs by reason."""
    res = jax.vmap(lambda lr: jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(2), lr=lr, progress=True))(
        jnp.array([0.01, 0.3]))
    steps = [int(k) for k in res.steps]
    assert steps[1] < steps[0] < 1000
    bar = last_bar(capsys.readouterr().err)
    assert bar.startswith("2 runs, ") and f"by step {steps[0]}: 100%" in bar and f"{steps[0]}/{steps[0]}" in bar, bar
    for status in res.status_enum:
        assert f"1 {reason_of(status)}" in bar or f"2 {reason_of(status)}" in bar, bar


def test_progress_bar_under_vmap_names_runs_that_ran_out_of_steps(capsys: pytest.CaptureFixture) -> None:
    """Reference: the runs' own statuses (MAX_STEPS for lr = 1e-3 in 20 steps, GTOL for lr = 0.5: one step
    lands on the minimum of (x - 1)^2). A run whose budget ran out is still RUNNING inside the loop; the
    finished bar named it "status 0" under vmap (a user review, session 53) where a single run's says max_steps."""
    res = jax.vmap(lambda lr: jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(2), method="gd", lr=lr,
                                             max_steps=20, progress=True))(jnp.array([1e-3, 0.5]))
    assert list(res.status_enum) == [jaxgd.Status.MAX_STEPS, jaxgd.Status.GTOL]
    bar = last_bar(capsys.readouterr().err)
    assert "1 stopped: max_steps" in bar and "1 converged: gtol" in bar and "status 0" not in bar, bar


def reason_of(status: jaxgd.Status) -> str:
    from jaxgd.core.progress import reason

    return reason(status, 1, 2, "step").rsplit(" at step", 1)[0]


@pytest.mark.slow
def test_progress_bar_of_fit_says_why(capsys: pytest.CaptureFixture) -> None:
    key = jax.random.PRNGKey(0)
    res = jaxgd.fit(mse, jnp.zeros(3), (X, Y), batch_size=10, epochs=3, key=key, lr=0.1, progress=True)
    assert res.status_enum is jaxgd.FitStatus.EPOCHS
    assert last_bar(capsys.readouterr().err).startswith("completed at epoch 3: 100%")
    res = jaxgd.fit(mse, jnp.zeros(3), (X, Y), batch_size=10, epochs=50, key=key, lr=0.3, patience=1,
                    eval_data=(X[:5] + 10.0, Y[:5]), progress=True)
    e = int(res.epochs)
    assert res.status_enum is jaxgd.FitStatus.PATIENCE and e < 50
    bar = last_bar(capsys.readouterr().err)
    assert bar.startswith(f"stopped early: patience at epoch {e}: 100%") and f"{e}/{e}" in bar, bar


def test_status_prints_its_name(capsys: pytest.CaptureFixture) -> None:
    """As README.md shows, and as a plain ``enum.Enum`` prints; it is still the integer code."""
    res = jaxgd.minimize(lambda x: jnp.sum((x - 3.0) ** 2), jnp.zeros(2), lr=0.5, max_steps=100)
    print(res.status_enum)
    print(f"{jaxgd.FitStatus.EPOCHS}")
    assert capsys.readouterr().out == "Status.GTOL\nFitStatus.EPOCHS\n"
    assert res.status_enum == 1 and int(jaxgd.Status.NONFINITE) == 5 and repr(jaxgd.Status.GTOL) == "<Status.GTOL: 1>"
    # a numeric format spec formats the code, as a plain IntEnum's (it raised "Unknown format code 'd'"; a user
    # review, session 58); a string spec the name
    s, f = jaxgd.Status.GTOL, jaxgd.FitStatus.EPOCHS
    assert (f"{s:d}", f"{s:3d}", f"{s:.1f}", f"{f:02d}", f"{s:>12}") == ("1", "  1", "1.0", "07", " Status.GTOL")


def test_demo_help_calls_out_a_folder(capsys: pytest.CaptureFixture) -> None:
    from jaxgd.cli.main import main

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "--out DIR" in out and "folder" in out


def test_nan_in_the_data_at_step_zero_says_params_are_the_start() -> None:
    bad = X.copy()
    bad[0, 0] = np.nan
    assert not np.isfinite(float(mse(jnp.zeros(3), (bad, Y))))  # the loss at the start is already NaN
    res = jaxgd.minimize(lambda w, x, y: mse(w, (x, y)), jnp.zeros(3), (bad, Y), max_steps=5)
    assert res.status_enum is jaxgd.Status.NONFINITE and int(res.steps) == 0
    assert res.message == NONFINITE_AT_START and "last ones whose loss" not in res.message
    np.testing.assert_array_equal(np.asarray(res.params), 0.0)
    fres = jaxgd.fit(mse, jnp.zeros(3), (bad, Y), batch_size=20, epochs=2, key=jax.random.PRNGKey(0), lr=0.1)
    assert fres.status_enum is jaxgd.FitStatus.NONFINITE and int(fres.steps) == 0
    # (fit's steps count the steps kept: 0 is also a first step rolled back, which the text names too)
    assert fres.message == FIT_NONFINITE_FIRST and "starting ones, unchanged" in fres.message
    # A run that stopped later keeps the usual message (its params were finite once).
    assert message_at(jaxgd.Status.NONFINITE, 3) == jaxgd.Status.NONFINITE.message


def test_a_nan_masked_out_of_the_loss_but_not_its_gradient_is_named_at_step_zero() -> None:
    """A missing observation masked with jnp.where on the term: the loss at x0 is finite (NumPy's nansum is the
    reference), its gradient NaN (the branch not taken still divides by the NaN). The message said "the loss or
    gradient ... is already NaN", and the user, finding the loss finite, was misled (a state-space review,
    session 62); now it names the gradient and the fix, which then runs (GTOL, the NumPy least-squares answer)."""
    y = np.array([1.0, np.nan, 3.0, 4.0])
    seen = ~np.isnan(y)

    def masked_terms(w, y):  # the trap: the NaN enters the arithmetic, the where drops it from the value only
        return jnp.sum(jnp.where(seen, (w - y) ** 2, 0.0))

    assert np.isfinite(np.nansum((0.0 - y) ** 2))
    res = jaxgd.minimize(masked_terms, jnp.zeros(()), (y,), method="lbfgs")
    assert res.status_enum is jaxgd.Status.NONFINITE and int(res.steps) == 0 and np.isfinite(float(res.loss))
    assert res.message == NONFINITE_GRADIENT_AT_START != NONFINITE_AT_START
    lanes = jax.vmap(lambda w: jaxgd.minimize(masked_terms, w, (y,), method="lbfgs"))(jnp.zeros(2))
    assert list(lanes.message) == [NONFINITE_GRADIENT_AT_START] * 2
    fixed = jaxgd.minimize(lambda w, y: jnp.sum(jnp.where(seen, (w - jnp.where(seen, y, 0.0)) ** 2, 0.0)),
                           jnp.zeros(()), (y,), method="lbfgs")
    assert fixed.status_enum is jaxgd.Status.GTOL
    np.testing.assert_allclose(float(fixed.params), np.nanmean(y), rtol=1e-8)


def test_a_finite_start_whose_first_step_is_not_finite_keeps_the_general_message() -> None:
    """Reference: the loss at x0 (NumPy), finite; gd's first step x - lr g = [2, 5] - [2.5, 2.8] has
    a negative entry, where log is NaN. The run stops at step 0 with x0, but the starting point was
    fine: the message must not say it was already NaN (audit, session 30). Also per lane under vmap."""
    def f(x: jax.Array) -> jax.Array:
        return jnp.sum(-jnp.log(x) + 3 * x)

    x0 = np.array([2.0, 5.0])
    assert np.isfinite(np.sum(-np.log(x0) + 3 * x0)) and np.any(x0 - 1.0 * (3 - 1 / x0) < 0)
    res = jaxgd.minimize(f, jnp.asarray(x0), method="gd", lr=1.0)
    assert res.status_enum is jaxgd.Status.NONFINITE and int(res.steps) == 0
    assert res.message == jaxgd.Status.NONFINITE.message != NONFINITE_AT_START
    lanes = jax.vmap(lambda x: jaxgd.minimize(f, x, method="gd", lr=1.0))(jnp.asarray([x0, [-1.0, 1.0]]))
    assert list(lanes.message) == [jaxgd.Status.NONFINITE.message, NONFINITE_AT_START]


def test_fit_whose_first_step_was_rolled_back_does_not_say_the_start_was_nan() -> None:
    """Reference: the loss at m = 0 by hand, mean((0 - x)^2) over x = 0..7 = 17.5 (finite); gd with
    lr = 10 steps to m = 0 - 10 * mean(2 (0 - x)) = 70, where the loss is NaN (m > 10). One minibatch an
    epoch: epoch 1 keeps the step (its loss, 17.5, was finite), epoch 2's loss at 70 is NaN, the step
    is rolled back, and no step is kept. The start was finite: the message must not say it was NaN
    (a user review, session 53: it said "the loss ... at the starting params is already NaN")."""
    x = jnp.arange(8.0)

    def loss(m: jax.Array, xb: jax.Array) -> jax.Array:
        return jnp.mean((m - xb) ** 2) + jnp.where(m > 10.0, jnp.nan, 0.0)

    assert np.mean((0.0 - np.arange(8.0)) ** 2) == 17.5
    res = jaxgd.fit(loss, jnp.zeros(()), x, batch_size=8, epochs=3, key=jax.random.key(0), method="gd", lr=10.0)
    assert res.status_enum is jaxgd.FitStatus.NONFINITE and int(res.steps) == 0 and int(res.epochs) == 2
    assert float(res.history.train_loss[0]) == 17.5 and float(res.params) == 0.0
    assert res.message == jaxgd.FitStatus.NONFINITE.message
    assert res.message != NONFINITE_AT_START and res.message != FIT_NONFINITE_FIRST


def test_fit_whose_eval_loss_is_nan_stops_nonfinite_with_the_epochs_start() -> None:
    """Reference: the loss by hand at m = 0 (17.5) and at m = 70, where it is NaN (m > 10); gd with lr = 10
    steps from 0 to 70 in the one minibatch of epoch 1. The steps' test sees only finite losses, but the
    eval loss at 70 is NaN: the run must not end EPOCHS (success) with params whose loss is NaN (a user
    review, session 53), with or without patience: NONFINITE, the epoch rolled back to m = 0."""
    x = jnp.arange(8.0)

    def loss(m: jax.Array, xb: jax.Array) -> jax.Array:
        return jnp.mean((m - xb) ** 2) + jnp.where(m > 10.0, jnp.nan, 0.0)

    assert float(loss(jnp.asarray(0.0), x)) == 17.5 and np.isnan(float(loss(jnp.asarray(70.0), x)))
    for extra in ({}, {"patience": 2}):
        res = jaxgd.fit(loss, jnp.zeros(()), x, batch_size=8, epochs=3, key=jax.random.key(0), method="gd", lr=10.0,
                        eval_data=x, **extra)
        assert res.status_enum is jaxgd.FitStatus.NONFINITE and not res.success, extra
        assert float(res.params) == 0.0 and int(res.steps) == 0 and int(res.epochs) == 1
        assert np.isnan(float(res.history.eval_loss[0])) and "eval loss" in res.message
    # the same data through a finite eval loss: the run goes on (the rollback is the eval's alone)
    ok = jaxgd.fit(loss, jnp.zeros(()), x, batch_size=8, epochs=3, key=jax.random.key(0), method="gd", lr=0.1, eval_data=x)
    assert ok.status_enum is jaxgd.FitStatus.EPOCHS and int(ok.steps) == 3


def test_vmapped_fit_result_reports_per_run() -> None:
    """Reference: the same fits run one by one (their status, success and message). Under ``jax.vmap``
    a FitResult's host properties read per run, as Result's do (they raised TypeError: session 53)."""
    lrs = jnp.asarray([0.05, 0.1])
    run = lambda lr: jaxgd.fit(mse, jnp.zeros(3), (X, Y), batch_size=10, epochs=3, key=jax.random.key(0), lr=lr)  # noqa: E731
    batched = jax.vmap(run)(lrs)
    one = [run(float(lr)) for lr in lrs]
    assert list(batched.status_enum) == [r.status_enum for r in one] == [jaxgd.FitStatus.EPOCHS] * 2
    assert list(batched.success) == [r.success for r in one] == [True, True]
    assert list(batched.message) == [r.message for r in one]
    assert "EPOCHS" in repr(batched)


def test_args_shape_error_chains_jax_error() -> None:
    with pytest.raises(TypeError) as err:
        jaxgd.minimize(lambda x, a: jnp.sum(a @ x), jnp.zeros(3), (np.ones((4, 2)),))
    assert "x0=float64[3], args[0]=float64[4, 2]" in str(err.value)
    assert "dot_general" in str(err.value.__cause__)  # JAX's own message, chained


def test_optax_transformation_keeps_its_own_learning_rate() -> None:
    """An optax transformation with lr=1.0 (the default step) or a line search is accepted."""
    import optax

    f = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    a = jaxgd.minimize(f, jnp.zeros(2), method=optax.sgd(0.1), max_steps=3, gtol=0.0)
    b = jaxgd.minimize(f, jnp.zeros(2), method=optax.sgd(0.1), lr=1.0, max_steps=3, gtol=0.0)
    np.testing.assert_array_equal(np.asarray(a.params), np.asarray(b.params))
    np.testing.assert_allclose(np.asarray(a.params), 1.0 - 0.8**3, rtol=1e-12)  # x_k = 1 - (1 - 0.2)^k
    jaxgd.minimize(f, jnp.zeros(2), method=optax.sgd(0.1), lr=jaxgd.linesearch.Backtracking(), max_steps=2)


def test_printed_result_says_success_and_why_as_scipys_optimizeresult_does() -> None:
    """print(res) shows what scipy's OptimizeResult prints (success, message, nfev), not only the status:
    a NONFINITE run printed only loss=nan. Reference: the Result's own properties."""
    res = jaxgd.minimize(lambda x: jnp.sum(jnp.log(x)), jnp.zeros(2), method="lbfgs")
    text = repr(res)
    assert f"success={res.success}" in text and f"message={res.message!r}" in text and f"nfev={int(res.nfev)}" in text
    batched = jax.vmap(lambda c: jaxgd.minimize(lambda x: jnp.sum((x - c) ** 2), jnp.zeros(2), lr=0.1))(jnp.arange(2.0))
    assert "success=[ True  True]" in repr(batched) and "message=" not in repr(batched)  # (one message per run: its property)


def test_a_float32_stop_at_the_answer_of_large_targets_says_why(x64_off: None) -> None:
    """y = 3000 x + 1000 + noise in float32: gd with Backtracking reaches the float64 least-squares answer
    (reference: numpy.linalg.lstsq) to float32 accuracy, but its gradient there is rounding from the
    residuals' large terms (13x the precision test's bound), so the search fails there. Its message said
    only "not smooth ... unbounded ... wrong gradient"; it now names this case and what to do."""
    rng = np.random.default_rng(0)
    X = np.linspace(0, 1, 1000)[:, None]
    y = 3000 * X[:, 0] + 1000 + 10 * rng.standard_normal(1000)
    A = np.c_[X, np.ones(1000)]
    ref = np.linalg.lstsq(A, y, rcond=None)[0]

    def loss(p, X, y):
        return jnp.mean((X @ p["w"] + p["b"] - y) ** 2)

    x0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
    r = jaxgd.minimize(loss, x0, (jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)), method="gd",
                       lr=jaxgd.linesearch.Backtracking(), max_steps=2000)
    p = np.r_[np.asarray(r.params["w"], np.float64), float(r.params["b"])]
    assert np.linalg.norm(p - ref) / np.linalg.norm(ref) < 1e-5
    assert r.status_enum in (jaxgd.Status.LINESEARCH_FAILED, jaxgd.Status.STALLED), r.status_enum
    assert "centre and scale the data, or compare with a float64 run" in r.message


def test_the_unrolled_adjoints_bar_ends_where_the_run_stopped(capsys: pytest.CaptureFixture) -> None:
    """adjoint="unroll" left the bar at "jaxgd: 7%| 69/1000", as if the run had crashed, where the loop's bar
    says "converged: gtol at step 69: 100%" (a user review in session 57). Reference: the run's own Result. A
    run stopped before its first step reads "0step", not "0%| 0/1"; a finished bar draws its last line once."""
    f = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    res = jaxgd.minimize(f, jnp.zeros(3), lr=0.1, max_steps=1000, progress=True, adjoint="unroll")
    n = int(res.steps)
    assert res.status_enum is jaxgd.Status.GTOL and 0 < n < 1000
    err = capsys.readouterr().err
    assert last_bar(err).startswith(f"converged: gtol at step {n}: 100%"), err
    assert err.count(f"converged: gtol at step {n}") == 1, err
    res = jaxgd.minimize(f, jnp.ones(3), lr=0.1, max_steps=1000, progress=True)
    assert int(res.steps) == 0 and res.status_enum is jaxgd.Status.GTOL
    assert last_bar(capsys.readouterr().err).startswith("converged: gtol at step 0: 0step"), err


def test_status_texts_fit_the_run_they_describe(x64_off: None) -> None:
    """A user review in session 57. Status.PRECISION.message printed its template's "{dtype}"; minimize's
    NONFINITE spoke of fit's minibatches and not of the usual cause; a float64 run's failed search carried the
    float32 rounding hint; MAX_STEPS did not say how to go on. Reference: the Result's own dtype and status."""
    assert "{" not in jaxgd.Status.PRECISION.message and "the loss's dtype" in jaxgd.Status.PRECISION.message
    assert all("{" not in s.message for s in jaxgd.Status) and all("{" not in s.message for s in jaxgd.FitStatus)
    assert "minibatch" not in jaxgd.Status.NONFINITE.message and "smaller lr" in jaxgd.Status.NONFINITE.message
    assert "minibatch" in jaxgd.FitStatus.NONFINITE.message
    assert message_at(jaxgd.Status.LINESEARCH_FAILED, 5, "float64").endswith("(bounds=, a jitter or floor in the loss), "
                                                                             "or run in float64.")
    assert "In float32" not in message_at(jaxgd.Status.LINESEARCH_FAILED, 5, "float64")
    # (a GP review, session 64: a float32 Cholesky failing at 58 of 85 trials read as a non-smooth loss)
    assert "NaN or Inf at the trial steps" in jaxgd.Status.LINESEARCH_FAILED.message
    assert "In float32" in message_at(jaxgd.Status.LINESEARCH_FAILED, 5, "float32")
    assert message_at(jaxgd.Status.STALLED, 5, "bfloat16").startswith("Stalled: the loss did not decrease")
    res = jaxgd.minimize(lambda x: jnp.sum((x - 0.1) ** 2), jnp.zeros(2), lr=0.1, max_steps=3)
    assert res.status_enum is jaxgd.Status.MAX_STEPS and "resume=" in res.message


def test_printed_losses_are_the_dtypes_own_digits(x64_off: None) -> None:
    """A float32 loss of 0.1 printed as loss=0.10000000149011612 (the float64 widening of its value; a user
    review in session 57). Reference: NumPy's own printing of the float32 value."""
    res = jaxgd.minimize(lambda x: jnp.sum(x**2) + 0.1, jnp.zeros(2), lr=0.1)
    assert res.loss.dtype == np.float32 and "loss=0.1," in repr(res), repr(res)
    fres = jaxgd.fit(lambda w, b: mse(w, b) + 0.1, jnp.zeros(3), (X.astype(np.float32), Y.astype(np.float32)),
                     batch_size=20, epochs=1, key=jax.random.key(0), method="gd", lr=1e-30)
    assert f"best_loss={np.asarray(fres.best_loss)!s}," in repr(fres) and "0000000" not in repr(fres), repr(fres)


def test_a_refused_combination_is_not_shown_after_a_cache_miss() -> None:
    """The first call with a refused option set printed "KeyError: ('adam', <class 'NoneType'>, None, (1000, ..."
    and "During handling of the above exception" before the ValueError that names the problem (the solver was
    made inside the cache's except clause; a user review in session 57). Reference: Python's exception chain."""
    with pytest.raises(ValueError, match="cannot be combined with method='adam'") as info:
        jaxgd.minimize(lambda x: jnp.sum(x**2) * 1.5, jnp.ones(2), method="adam", l1=0.25)
    assert info.value.__context__ is None and info.value.__cause__ is None


def _keyword_calls() -> dict:
    """Each public function called with a loss and keywords of a user's (the keyword-note tests)."""
    f = lambda p, *a: jnp.sum(p**2)  # noqa: E731
    return {
        "minimize": lambda **kw: jaxgd.minimize(f, jnp.zeros(2), **kw),
        "Solver": lambda **kw: jaxgd.Solver(f, **kw),
        "fit": lambda **kw: jaxgd.fit(f, jnp.zeros(2), jnp.zeros((4, 1)), batch_size=2, epochs=1,
                                      key=jax.random.key(0), **kw),
        "as_optax": lambda **kw: jaxgd.as_optax(**kw),
    }


@pytest.mark.parametrize("name", ["minimize", "Solver", "fit", "as_optax"])
def test_a_keyword_suggestion_is_a_keyword_of_the_function_called(name: str) -> None:
    """Another library's spelling (scipy's maxiter and tol, PyTorch's seed and max_epochs) got "did you mean X"
    with an X the function does not take: fit(maxiter=) suggested max_steps (fit counts epochs), as_optax(tol=)
    gtol, minimize(seed=) key (a user review, session 58). Reference: the function's own signature
    (inspect.signature): every suggested keyword is one of its keywords, and fit's maxiter is epochs."""
    import inspect

    from jaxgd.interop.explain import KEYWORD_ALIASES

    calls = _keyword_calls()
    target = {"minimize": jaxgd.minimize, "Solver": jaxgd.Solver, "fit": jaxgd.fit, "as_optax": jaxgd.as_optax}[name]
    valid = set(inspect.signature(target).parameters)
    suggested = {}
    for spelling in KEYWORD_ALIASES:
        with pytest.raises(TypeError, match="unexpected keyword") as err:
            calls[name](**{spelling: 1})
        text = str(err.value)
        if "did you mean " in text:
            suggested[spelling] = text.split("did you mean ")[1].split(",")[0]
            assert suggested[spelling] in valid, (spelling, text)
    if name == "fit":
        assert suggested["maxiter"] == "epochs" and suggested["seed"] == "key"
    if name == "minimize":
        assert suggested["maxiter"] == "max_steps" and "seed" not in suggested


def test_a_solvers_repr_shows_every_option_off_its_default() -> None:
    """Two solvers of other l1, bounds, clip and tolerances printed alike, and an optax transformation's
    solver read "lr=1.0" (a user review, session 58). Reference: the options given."""
    import optax

    f = lambda x: jnp.sum(x**2)  # noqa: E731
    plain = repr(jaxgd.Solver(f, "gd", 0.1))
    assert plain == "Solver(fun='<lambda>', method='gd', lr=0.1, max_steps=1000)"
    full = repr(jaxgd.Solver(f, "gd", 0.1, l1=0.5, bounds=(0.0, 0.2), clip=1.0, gtol=0.0, ftol=1e-3))
    assert full == ("Solver(fun='<lambda>', method='gd', lr=0.1, max_steps=1000, gtol=0.0, ftol=0.001, l1=0.5, "
                    "clip=1.0, bounds=(0.0, 0.2))")
    assert repr(jaxgd.Solver(f, optax.adam(1e-3))) == "Solver(fun='<lambda>', method=<an optax transformation>, max_steps=1000)"


def _rosenbrock(y: jax.Array) -> jax.Array:
    return jnp.sum(100.0 * (y[1:] - y[:-1] ** 2) ** 2 + (1.0 - y[:-1]) ** 2)


def test_optimistix_tolerances_point_at_gtol_and_say_what_ftol_means() -> None:
    """optimistix's rtol/atol were hinted as ftol/gtol ("did you mean ftol, jaxgd's name for rtol"), but its one
    Cauchy test on y and f is not scipy's one-step ftol: following the hint stopped lbfgs on 10-D Rosenbrock early
    (a review, session 59). Reference: the options' own documentation (gtol's default, ftol's formula); the runs
    that show what the message says are test_ftol_stops_far_from_the_minimum_where_gtol_does_not."""
    for spelling in ("rtol", "atol"):
        with pytest.raises(TypeError) as info:
            jaxgd.minimize(_rosenbrock, jnp.zeros(3), **{spelling: 1e-6})
        text = str(info.value)
        assert "did you mean" not in text and "ftol, jaxgd's name" not in text, text
        assert "set gtol= (stop when the gradient norm is <= gtol; default 1e-6)" in text, text
        assert "ftol= is scipy's (stop when one step changes f by <= ftol * max(|f|, 1)" in text, text
        assert "can stop on one slow step far from the minimum" in text, text
    assert jaxgd.minimize.__kwdefaults__["gtol"] == 1e-6 and jaxgd.minimize.__kwdefaults__["ftol"] == 0.0
    assert "|f_k - f_{k+1}| <= ftol * max(|f_k|, |f_{k+1}|, 1)" in jaxgd.minimize.__doc__


@pytest.mark.slow  # ~6 s under load: two lbfgs runs on 10-D Rosenbrock
def test_ftol_stops_far_from_the_minimum_where_gtol_does_not() -> None:
    """What the rtol/atol note says (the optimistix review's runs, session 59). Reference: the closed-form minimum
    f* = 0 at (1, ..., 1): ftol=1e-6 stops (FTOL) with the gradient norm still above 1e-3; gtol alone reaches it."""
    y0 = jnp.array([-1.2, 1.0] * 5)
    early = jaxgd.minimize(_rosenbrock, y0, method="lbfgs", ftol=1e-6, max_steps=5000)
    assert early.status_enum is jaxgd.Status.FTOL and float(early.grad_norm) > 1e-3
    full = jaxgd.minimize(_rosenbrock, y0, method="lbfgs", max_steps=5000)
    assert full.status_enum is jaxgd.Status.GTOL and float(full.loss) < 1e-12
    np.testing.assert_allclose(np.asarray(full.params), np.ones(10), atol=1e-6)


class ImplicitAdjoint:  # optimistix's adjoint objects, by name (optimistix is not a test dependency)
    pass


class RecursiveCheckpointAdjoint:
    pass


def test_optimistix_throw_tags_and_adjoints_get_jaxgd_counterparts() -> None:
    """optimistix's throw=, tags= and adjoint objects got a bare error (a review, session 59). Reference: jaxgd's
    own terms: a failed run returns (status MAX_STEPS, success False) and never raises; adjoint="implicit" is the
    implicit function theorem at the solution (optimistix's ImplicitAdjoint), "unroll" differentiates the
    checkpointed loop step by step (its RecursiveCheckpointAdjoint)."""
    f = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    with pytest.raises(TypeError, match=r"throw: nothing to pass: jaxgd never raises on a failed run"):
        jaxgd.minimize(f, jnp.zeros(2), throw=False)
    failed = jaxgd.minimize(f, jnp.zeros(2), method="gd", lr=1e-3, max_steps=2)  # what the note says to check
    assert failed.status_enum is jaxgd.Status.MAX_STEPS and not failed.success
    with pytest.raises(TypeError, match=r"tags: optimistix's tags \(lineax structure tags\) have no counterpart"):
        jaxgd.Solver(f, tags=frozenset())
    adjoints = [(ImplicitAdjoint(), "implicit"), (RecursiveCheckpointAdjoint, "unroll")]
    try:
        import optimistix as optx
    except ImportError:
        pass
    else:
        adjoints += [(optx.ImplicitAdjoint(), "implicit"), (optx.RecursiveCheckpointAdjoint(), "unroll")]
    for value, mode in adjoints:
        name = (value if isinstance(value, type) else type(value)).__name__
        with pytest.raises(ValueError, match="adjoint must be one of") as info:
            jaxgd.minimize(f, jnp.zeros(2), adjoint=value)
        assert str(info.value).endswith(f"(optimistix's {name}() is adjoint={mode!r})"), str(info.value)
    with pytest.raises(ValueError) as info:
        jaxgd.minimize(f, jnp.zeros(2), adjoint="reverse")
    assert "optimistix" not in str(info.value)


@pytest.mark.parametrize("spelling", ["rtol", "atol", "options", "callback"])
def test_fits_keyword_notes_name_only_keywords_fit_has(spelling) -> None:
    """fit shared minimize's notes: rtol/atol told fit users to set gtol=, ftol= or xtol=, options to pass max_steps,
    callback to pass history=, none of which fit accepts (a review, session 59). Reference: fit's own signature
    (inspect): every keyword= the note names is one of fit's, and none of minimize's keywords that fit lacks is
    named; minimize's note still names gtol=."""
    import inspect
    import re

    X = jnp.ones((4, 2))
    with pytest.raises(TypeError) as info:
        jaxgd.fit(lambda w, b: jnp.mean(b @ w), jnp.zeros(2), X, batch_size=2, epochs=1, key=jax.random.PRNGKey(0),
                  **{spelling: 1e-6})
    note = str(info.value).split("; valid keywords:")[0]
    fit_keywords = set(inspect.signature(jaxgd.fit).parameters)
    assert set(re.findall(r"\b([a-z_]+)=", note)) <= fit_keywords, note
    absent = set(inspect.signature(jaxgd.minimize).parameters) - fit_keywords  # gtol, ftol, xtol, max_steps, history
    assert not set(re.findall(r"(?<![.\w])[a-z_]+\b", note)) & absent, note  # (res.history: an attribute)
    if spelling in ("rtol", "atol"):
        assert "patience=" in note and "gtol" not in note, note
        with pytest.raises(TypeError, match="set gtol="):
            jaxgd.minimize(_rosenbrock, jnp.zeros(3), **{spelling: 1e-6})


# PyTorch's torch.optim keywords with notes (a PyTorch user's review, session 60).
TORCH_SPELLINGS = ("history_size", "line_search_fn", "tolerance_grad", "tolerance_change", "max_norm", "clip_grad_norm",
                   "amsgrad", "dampening", "scheduler", "lr_scheduler")


def _keywords_to_pass(note: str) -> set:
    """The ``keyword=`` a note tells to pass to the function called: those outside any call's parentheses
    (``method=optax.sgd(lr * (1 - d), momentum=m)`` names method, not momentum); an aside in parentheses
    that holds a keyword= is read."""
    import re

    while (inner := re.sub(r"[\w.]+\([^()]*\)|\([^()=]*\)", "", note)) != note:
        note = inner
    return set(re.findall(r"(?<![\w=<>!])([a-z_]+)=(?!=)", note))


@pytest.mark.parametrize("name", ["minimize", "Solver", "fit"])
def test_torch_optim_keywords_get_notes_that_name_the_functions_own_keywords(name: str) -> None:
    """torch's LBFGS(history_size=) got "did you mean history?" (history= records the loss; the L-BFGS memory is
    jaxgd.directions.lbfgs(memory_size=)), and its line_search_fn, tolerance_grad, tolerance_change,
    clip_grad_norm_'s max_norm, Adam's amsgrad, SGD's dampening and a scheduler= a bare error (a PyTorch user's
    review, session 60). Reference: the function's own signature (inspect): each spelling gets its note, no
    "did you mean", and every keyword= the note tells to pass is one of the function's."""
    import inspect

    call = _keyword_calls()[name]
    assert _keywords_to_pass("method=optax.sgd(lr * (1 - d), momentum=m) (or gtol=1, f(x) == 0)") == {"method", "gtol"}
    target = {"minimize": jaxgd.minimize, "Solver": jaxgd.Solver, "fit": jaxgd.fit}[name]
    valid = set(inspect.signature(target).parameters)
    for spelling in TORCH_SPELLINGS:
        with pytest.raises(TypeError, match="unexpected keyword") as err:
            call(**{spelling: 1})
        text = str(err.value).split("; valid keywords:")[0]
        assert f"({spelling}: " in text and "did you mean" not in text, text
        note = text.split(f"({spelling}: ", 1)[1].removesuffix(")")
        assert _keywords_to_pass(note) <= valid, (spelling, _keywords_to_pass(note) - valid, note)
    if name == "fit":  # fit takes no line search and has no tolerances
        with pytest.raises(TypeError, match=r"fit takes no line search .*jaxgd.minimize\(fun, x0, method='lbfgs', "
                                            r"lr=jaxgd.linesearch.StrongWolfe\(\)\)"):
            call(line_search_fn="strong_wolfe")


def test_as_optax_keyword_notes_name_only_its_own_keywords() -> None:
    """as_optax shared minimize's notes: optimistix's rtol, torch's tolerance_grad, scipy's options and callback
    told it to pass gtol=, ftol=, max_steps=, history= or progress=, keywords of minimize's that as_optax, one
    optax transformation with no loop, lacks (the PyTorch review's helper, session 60). Reference: as_optax's own
    signature (inspect): every keyword= a note tells to pass is one of its keywords, and the stopping ones say
    that the user's loop decides when to stop."""
    import inspect

    valid = set(inspect.signature(jaxgd.as_optax).parameters)
    spellings = (*TORCH_SPELLINGS, "rtol", "atol", "tol", "options", "callback", "maxiter", "gtol", "max_steps", "jac",
                 "hess", "constraints", "tags")
    for spelling in spellings:
        with pytest.raises(TypeError, match="unexpected keyword") as err:
            jaxgd.as_optax(**{spelling: 1})
        text = str(err.value).split("; valid keywords:")[0]
        assert f"({spelling}: " in text, text
        note = text.split(f"({spelling}: ", 1)[1].removesuffix(")")
        assert _keywords_to_pass(note) <= valid, (spelling, _keywords_to_pass(note) - valid, note)
        if spelling in ("rtol", "tolerance_grad", "options", "callback", "gtol"):
            assert "your loop decides when to stop" in note, note


def _rosenbrock_grad(y: np.ndarray) -> np.ndarray:
    """Rosenbrock's gradient in closed form (NumPy)."""
    g = np.zeros_like(y)
    g[:-1] = -400.0 * y[:-1] * (y[1:] - y[:-1] ** 2) - 2.0 * (1.0 - y[:-1])
    g[1:] += 200.0 * (y[1:] - y[:-1] ** 2)
    return g


@pytest.mark.slow  # ~4 s under load: L-BFGS with 100 pairs and a strong-Wolfe search compiles
def test_torch_lbfgs_notes_forms_run_and_stop_on_the_largest_gradient_entry() -> None:
    """What the LBFGS notes say to pass runs: memory_size=100 (torch's history_size default), StrongWolfe (its
    line_search_fn), gtol=1e-7 with gtol_norm=inf (its tolerance_grad, a test of the largest gradient entry).
    Reference: Rosenbrock's closed-form gradient (NumPy) at the answer, whose largest entry is <= 1e-7, and its
    minimum (1, ..., 1)."""
    import math

    res = jaxgd.minimize(_rosenbrock, jnp.array([-1.2, 1.0, -1.2, 1.0]), method=jaxgd.directions.lbfgs(memory_size=100),
                         lr=jaxgd.linesearch.StrongWolfe(), gtol=1e-7, gtol_norm=math.inf, max_steps=500)
    assert res.status_enum is jaxgd.Status.GTOL, res.message
    assert np.abs(_rosenbrock_grad(np.asarray(res.params))).max() <= 1e-7 * (1 + 1e-6)
    np.testing.assert_allclose(np.asarray(res.params), np.ones(4), atol=1e-6)


def test_torch_clip_and_dampening_notes_say_what_the_steps_do() -> None:
    """The clip note: jaxgd clips the loss's gradient with l2's term included, torch's clip_grad_norm_ before
    SGD's weight_decay adds it, which the note's optax chain does; the dampening note: optax.sgd(lr * (1 - d),
    momentum=m) is torch's damped SGD except for the first gradient, which torch buffers whole. Reference: NumPy
    implementations of torch's SGD (torch.optim.SGD's documented update) and clip_grad_norm_ (rescale to
    max_norm when the global 2-norm exceeds it)."""
    import optax

    from jaxgd.interop.explain import KEYWORD_NOTES

    assert "optax.chain(optax.clip_by_global_norm(max_norm), optax.add_decayed_weights(wd)" in KEYWORD_NOTES["max_norm"]
    a, x0, wd, c, lr = np.array([3.0, -1.0, 2.0]), np.array([1.0, 2.0, -4.0]), 0.5, 1.0, 0.1
    f = lambda x: jnp.sum(jnp.asarray(a) * x)  # noqa: E731  (gradient a, of norm sqrt(14) > c)
    total = a + wd * x0
    ours = jaxgd.minimize(f, jnp.asarray(x0), method="gd", lr=lr, l2=wd, clip=c, max_steps=1, gtol=0.0)
    np.testing.assert_allclose(ours.params, x0 - lr * total * min(1.0, c / np.linalg.norm(total)), rtol=1e-14)
    torch_order = x0 - lr * (a * min(1.0, c / np.linalg.norm(a)) + wd * x0)
    tx = optax.chain(optax.clip_by_global_norm(c), optax.add_decayed_weights(wd), optax.sgd(lr))
    np.testing.assert_allclose(jaxgd.minimize(f, jnp.asarray(x0), method=tx, max_steps=1, gtol=0.0).params,
                               torch_order, rtol=1e-14)
    m, d = 0.9, 0.3
    grads = np.random.default_rng(0).normal(size=(5, 3))
    tx = optax.sgd(lr * (1 - d), momentum=m)
    state, p, buf, q = tx.init(jnp.zeros(3)), jnp.zeros(3), None, np.zeros(3)
    for k, g in enumerate(grads):
        buf = g.copy() if buf is None else m * buf + (1 - d) * g  # torch: the first gradient buffered whole
        q = q - lr * buf
        u, state = tx.update(jnp.asarray(g), state, p)
        p = optax.apply_updates(p, u)
        first_share = lr * d * grads[0] * sum(m**j for j in range(k + 1))  # the first gradient's undamped part
        np.testing.assert_allclose(q, np.asarray(p) - first_share, rtol=1e-12, atol=1e-15)


def test_a_list_in_args_is_named_only_where_fun_missed_arguments() -> None:
    """A new user's review (session 64): args=[X, y] for fun(params, X, y) failed naming neither the list nor the
    tuple minimize spreads; a diff review: the hint must not blame a tuple holding a list, args=(layers,), for an
    unrelated shape error. Reference: the signature fun needs."""
    X, y = np.ones((4, 3)), np.ones(4)
    with pytest.raises(TypeError, match=r"args\[0\] is a list, passed to fun as one argument"):
        jaxgd.minimize(lambda p, a, b: jnp.sum((a @ p - b) ** 2), jnp.zeros(3), [X, y])
    with pytest.raises(TypeError) as err:
        jaxgd.minimize(lambda p, layers: jnp.sum(layers[0] @ p), jnp.zeros(2), ([X, y],))
    assert "is a list" not in str(err.value) and "dot_general" in str(err.value)
