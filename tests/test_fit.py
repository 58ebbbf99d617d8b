"""Tests for jaxgd.fit (minibatch training).

Independent references, named in each test:
- a hand-written optax loop over the same batches in the same order
  (``_optax_loop``: plain Python, one ``optax`` update per batch);
- NumPy arithmetic on the recorded history (early stopping, schedules);
- the unsharded run, for the data-parallel run (in a subprocess with four
  host devices, ``tests/fit_sharded_check.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.minibatch import fit as _fit
from jaxgd.minibatch.fit import FitStatus, Remainder, fit

from conftest import slow_if

N, D = 53, 3
_rng = np.random.default_rng(0)
X = _rng.normal(size=(N, D))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * _rng.normal(size=N)
DATA = {"x": X, "y": Y}
P0 = {"w": jnp.zeros(D), "b": jnp.zeros(())}
KEY = jax.random.key(42)
TRACES: list = []
# One configuration shared by several tests, so that they share one compiled run
# (each new static configuration costs a compile of a few seconds on CI).
STD = dict(batch_size=8, epochs=3, method="adam", lr=0.05, progress=False)


def mse(p, batch):
    TRACES.append(1)  # counts traces: a cached compiled run never calls it
    r = batch["x"] @ p["w"] + p["b"] - batch["y"]
    return jnp.mean(r**2)


def mse_weighted(p, batch, w):
    r = batch["x"] @ p["w"] + p["b"] - batch["y"]
    return jnp.sum(w * r**2) / jnp.sum(w)


def _optax_loop(loss, params, data, batch_size, epochs, key, tx, *, l2=0.0, clip=None, keep_last=False):
    """The reference: a plain Python loop, one optax update per batch, batches in fit's order."""
    n = len(data["y"])
    penalized = lambda p, b: loss(p, b) + 0.5 * l2 * sum(jnp.sum(v**2) for v in jax.tree_util.tree_leaves(p))  # noqa: E731
    grad = jax.jit(jax.grad(penalized))
    state = tx.init(params)
    for epoch in range(epochs):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), n))
        starts = range(0, n if keep_last else n - n % batch_size, batch_size)
        for s in starts:
            idx = perm[s : s + batch_size]
            g = grad(params, {k: v[idx] for k, v in data.items()})
            if clip is not None:
                g, _ = optax.clip_by_global_norm(clip).update(g, optax.EmptyState())
            u, state = tx.update(g, state, params)
            params = optax.apply_updates(params, u)
    return params


def _close(a, b, tol):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


# -- equals a hand-written optax loop -------------------------------------
def test_adam_equals_optax_loop():
    """Reference: optax.adam(0.05) stepped by hand over fit's batches (DROP skips n % 8)."""
    res = fit(mse, P0, DATA, key=KEY, **STD)
    ref = _optax_loop(mse, P0, DATA, 8, 3, KEY, optax.adam(0.05))
    assert int(res.steps) == 3 * (N // 8) and res.status_enum is FitStatus.EPOCHS
    _close(res.params, ref, 1e-6)


@pytest.mark.slow
def test_momentum_schedule_clip_l2_equals_optax_loop():
    """Reference: optax.sgd(per-epoch schedule, momentum=0.9) after clipping the penalised gradient."""
    spe = N // 10
    epoch_sched = optax.exponential_decay(0.05, transition_steps=1, decay_rate=0.5)
    key = jax.random.PRNGKey(5)  # a legacy uint32 key works the same way
    res = fit(
        mse, P0, DATA, batch_size=10, epochs=3, key=key, method="momentum",
        lr=jaxgd.schedules.per_epoch(epoch_sched, spe), clip=1.0, l2=0.1, progress=False,
    )
    step_sched = lambda k: epoch_sched(k // spe)  # noqa: E731
    ref = _optax_loop(mse, P0, DATA, 10, 3, key, optax.sgd(step_sched, momentum=0.9), l2=0.1, clip=1.0)
    _close(res.params, ref, 1e-6)
    # the history records the per-epoch learning rate (reference: the schedule by hand)
    np.testing.assert_allclose(res.history.lr, [0.05, 0.025, 0.0125])


def test_mask_equals_partial_last_batch():
    """Reference: optax.sgd over fit's batches *including* the short last one (plain mean)."""
    res = fit(
        mse_weighted, P0, DATA, batch_size=10, epochs=3, key=KEY, method="gd", lr=0.1,
        remainder=Remainder.MASK, eval_data=DATA, progress=False,
    )
    ref = _optax_loop(mse, P0, DATA, 10, 3, KEY, optax.sgd(0.1), keep_last=True)
    assert int(res.steps) == 3 * 6
    _close(res.params, ref, 1e-6)
    # the default eval_fun is fun with unit weights (reference: the plain mean)
    np.testing.assert_allclose(res.history.eval_loss[-1], mse(res.params, DATA), rtol=1e-12)



@pytest.mark.parametrize("batch_size", [slow_if(True, N, id="n"), pytest.param(N + 3, id="n+3"), slow_if(True, 3 * N, id="3n")])
def test_mask_with_a_batch_larger_than_the_data_is_full_batch_gradient_descent(batch_size):
    """A batch_size above n was refused even with MASK, where PyTorch's DataLoader (drop_last=False) gives one
    batch of n (a user review, session 58): now one batch of the n examples, padded with zero weights.
    Reference: full-batch gradient descent on the mean loss, written in NumPy."""
    res = fit(mse_weighted, P0, DATA, batch_size=batch_size, epochs=4, key=KEY, method="gd", lr=0.05,
              remainder=Remainder.MASK, progress=False)
    x, y, p = np.asarray(DATA["x"]), np.asarray(DATA["y"]), {k: np.asarray(v) for k, v in P0.items()}
    for _ in range(4):
        r = x @ p["w"] + p["b"] - y
        p = {"w": p["w"] - 0.05 * 2 * x.T @ r / len(y), "b": p["b"] - 0.05 * 2 * np.mean(r)}
    assert int(res.steps) == 4
    _close(res.params, p, 1e-10)


def test_optax_transformation_as_method_in_float32():
    """Reference: the same optax optimizer stepped by hand (fit uses its updates with lr=1)."""
    tx = optax.rmsprop(0.01)
    p32 = jax.tree_util.tree_map(lambda v: v.astype(jnp.float32), P0)
    d32 = {k: v.astype(np.float32) for k, v in DATA.items()}
    res = fit(mse, p32, d32, batch_size=16, epochs=2, key=KEY, method=tx, progress=False)
    assert all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(res.params))
    assert res.history.train_loss.dtype == jnp.float32
    _close(res.params, _optax_loop(mse, p32, d32, 16, 2, KEY, tx), 1e-5)


# -- determinism ----------------------------------------------------------
def test_same_key_bit_identical_and_different_key_differs():
    a = fit(mse, P0, DATA, key=KEY, **STD)
    b = fit(mse, P0, DATA, key=jax.random.key(42), **STD)
    c = fit(mse, P0, DATA, key=jax.random.key(7), **STD)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
    assert not np.array_equal(np.asarray(a.params["w"]), np.asarray(c.params["w"]))


def test_new_lr_does_not_recompile():
    fit(mse, P0, DATA, key=KEY, **STD)
    first = len(TRACES)
    r2 = fit(mse, P0, DATA, key=jax.random.key(1), **{**STD, "lr": 0.02})
    r3 = fit(mse, P0, DATA, key=KEY, **{**STD, "lr": jnp.asarray(0.03)})
    assert len(TRACES) == first  # neither a new lr nor a new key traced fun again
    assert not np.array_equal(np.asarray(r2.params["w"]), np.asarray(r3.params["w"]))


# -- evaluation, early stopping ------------------------------------------
def _toward_ten(m, x):
    return jnp.mean((m - x) ** 2)


def _distance_to_three(m, x):
    return (m - 3.0) ** 2


def test_early_stopping_restores_best_params():
    """Reference: the recorded eval history (NumPy argmin) and the same run without patience."""
    x = 10.0 + np.linspace(-1, 1, 40)
    kw = dict(batch_size=10, epochs=30, key=KEY, method="gd", lr=0.02, eval_data=x, eval_fun=_distance_to_three,
              progress=False)
    res = fit(_toward_ten, jnp.zeros(()), x, patience=3, **kw)
    ev = np.asarray(res.history.eval_loss)
    best = int(np.argmin(ev))
    assert res.status_enum is FitStatus.PATIENCE and res.success
    assert int(res.best_epoch) == best + 1 and int(res.epochs) == best + 1 + 3
    assert float(res.best_loss) == ev[best]
    assert float(res.params) == float(res.best_params)
    np.testing.assert_allclose(float(_distance_to_three(res.params, x)), ev[best], rtol=1e-12)
    # without patience: all epochs on the same trajectory, the final (worse) params returned,
    # and the best ones, kept aside, are those early stopping restored
    full = fit(_toward_ten, jnp.zeros(()), x, **kw)
    assert full.status_enum is FitStatus.EPOCHS and int(full.epochs) == 30 and len(full.history.eval_loss) == 30
    np.testing.assert_allclose(full.history.eval_loss[: len(ev)], ev, rtol=1e-12)
    np.testing.assert_allclose(float(full.best_params), float(res.params), rtol=1e-12)
    assert float(_distance_to_three(full.params, x)) > float(full.best_loss)



@pytest.mark.parametrize("bad", [pytest.param(-np.inf, id="-inf"), slow_if(True, np.nan, id="nan")])
def test_a_non_finite_eval_loss_is_never_the_best_epoch(bad):
    """An eval loss of -inf passed `monitored < best_loss` (NaN and +inf did not): its epoch, rolled back as
    NONFINITE, became best_epoch with best_loss -inf, and best_params the rolled-back point, the worst kept epoch
    (a user review, session 58). Reference: Keras's EarlyStopping rule (a non-finite value is never an
    improvement): the best epoch is the argmin of the finite eval losses recorded. A resume of the run, with the
    same eval_data, is refused by no "ran without eval_data" (every eval loss non-finite read as no eval_data)."""
    x = 10.0 + np.linspace(-1, 1, 40)
    ev = lambda m, d: jnp.where(m > 2.0, bad, (m - 1.0) ** 2)  # noqa: E731
    kw = dict(batch_size=10, epochs=40, key=KEY, method="gd", lr=0.02, eval_data=x, eval_fun=ev, patience=30,
              progress=False)
    res = fit(_toward_ten, jnp.zeros(()), x, **kw)
    rows = np.asarray(res.history.eval_loss)
    assert res.status_enum is FitStatus.NONFINITE and not np.isfinite(rows[-1])
    best = int(np.nanargmin(np.where(np.isfinite(rows), rows, np.nan)))
    assert int(res.best_epoch) == best + 1 and float(res.best_loss) == rows[best]
    np.testing.assert_allclose(float(ev(res.best_params, x)), rows[best], rtol=1e-12)
    always_bad = fit(_toward_ten, jnp.zeros(()), x, **{**kw, "eval_fun": lambda m, d: m * bad})
    assert int(always_bad.best_epoch) == 0
    again = fit(_toward_ten, jnp.zeros(()), x, **{**kw, "eval_fun": lambda m, d: m * bad}, resume=always_bad)
    assert again.status_enum is FitStatus.NONFINITE and int(again.epochs) == int(always_bad.epochs)


def test_metric_and_progress_bar(capsys):
    """Reference: the metric and eval loss recomputed on the returned parameters."""
    metric = _mean_abs_error
    res = fit(mse, P0, DATA, key=KEY, eval_data=DATA, metric=metric, **{**STD, "progress": True})
    assert res.history.metric.shape == (3,)
    np.testing.assert_allclose(res.history.metric[-1], metric(res.params, DATA), rtol=1e-12)
    np.testing.assert_allclose(res.history.eval_loss[-1], mse(res.params, DATA), rtol=1e-12)
    err = capsys.readouterr().err
    assert "jaxgd.fit" in err and "epoch" in err and "loss=" in err and "eval=" in err


def _mean_abs_error(p, d):
    return jnp.mean(jnp.abs(d["x"] @ p["w"] + p["b"] - d["y"]))


def test_nonfinite_step_is_not_taken():
    """log(m) leaves its domain after a large step: the run stops with finite params."""
    loss = lambda m, x: jnp.mean((jnp.log(m) - x) ** 2)  # noqa: E731
    x = np.zeros(8)
    res = fit(loss, jnp.asarray(2.0), x, batch_size=4, epochs=5, key=KEY, method="gd", lr=10.0, progress=False)
    assert res.status_enum is FitStatus.NONFINITE and not res.success
    # the first step leaves the domain (m = 2 - 10 log 2 < 0); the second sees NaN and steps back
    assert float(res.params) == 2.0 and int(res.steps) == 0
    assert "NaN or Inf" in res.message


def _nan_above(m, x):  # gd walks a from 2 towards 10; the loss is NaN once a > 2.5
    value = jnp.mean((m["a"] - 10.0 + 0.1 * x) ** 2) + jnp.sum(m["b"] ** 2)
    return jnp.where(m["a"] > 2.5, jnp.nan, value)


def _linear(m, x):  # finite loss and gradient; the step at the batch holding 1e300 overflows
    return jnp.mean(m["a"] * x) + jnp.sum(m["b"] ** 2)


@jax.custom_jvp
def _nan_slope(a):  # the identity, whose derivative is NaN above 2.5
    return a


@_nan_slope.defjvp
def _nan_slope_jvp(primals, tangents):
    (a,), (da,) = primals, tangents
    return a, jnp.where(a > 2.5, jnp.nan, 1.0) * da


def _nan_grad_above(m, x):  # a finite loss everywhere, whose gradient is NaN once a > 2.5
    return jnp.mean((_nan_slope(m["a"]) - 10.0 + 0.1 * x) ** 2) + jnp.sum(m["b"] ** 2)


_FIRST_ORDER = ["gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"]


@pytest.mark.parametrize(
    "case",
    ["plain", "nan_mid_epoch", "overflow", "clip_l2_nesterov", "fista_l1", "mask_patience", "bounds_gd"]
    # a NaN gradient under each first-order method, with clip and l1, and in an optax sgd: gd in
    # make test, the others in make slow
    + [slow_if(m != "gd", f"nan_grad_{m}", id=f"nan_grad_{m}") for m in _FIRST_ORDER]
    + [slow_if(True, "nan_grad_clip_l1", id="nan_grad_clip_l1"), slow_if(True, "nan_grad_optax_sgd", id="nan_grad_optax_sgd")],
)
def test_fast_epochs_equal_exact_epochs(case, monkeypatch):
    """Reference: fit's exact epoch loop (every step's rollback selects; the loop run under
    jit/vmap). A top-level fit runs each epoch without them first and again exactly only when a
    step in it was not finite: every leaf of the result must be bit for bit the exact loop's,
    in epochs that went well, in the epoch where a step failed (rolled back mid-epoch) and after."""
    x = np.linspace(-1.0, 1.0, 24)
    big = x.copy()
    big[13] = 1e300
    m0 = {"a": jnp.asarray(2.0), "b": jnp.asarray([0.5, -0.25])}
    kw = dict(batch_size=5, epochs=4, key=KEY, progress=False)
    cases = {
        "plain": (mse, P0, DATA, dict(STD, key=KEY, epochs=4)),
        "nan_mid_epoch": (_nan_above, m0, x, dict(kw, method="gd", lr=0.0055)),
        "overflow": (_linear, m0, big, dict(kw, method="gd", lr=1e10)),
        "clip_l2_nesterov": (mse, P0, DATA, dict(kw, method="nesterov", lr=0.05, clip=0.5, l2=0.1)),
        "fista_l1": (mse, P0, DATA, dict(kw, method="gd", lr=0.05, l1=0.05, accelerated=True)),
        "mask_patience": (
            mse_weighted, P0, DATA,
            dict(kw, method="adam", lr=0.3, remainder=Remainder.MASK, eval_data=DATA, patience=1, epochs=8),
        ),
        "bounds_gd": (mse, P0, DATA, dict(kw, method="gd", lr=0.2, bounds=(-0.5, 0.5))),
        # the loss stays finite where the gradient is NaN: a fast epoch tested once at its end
        # (loop.tested_per_epoch) must find the step the exact loop rolls back
        **{f"nan_grad_{m}": (_nan_grad_above, m0, x, dict(kw, method=m, lr=0.0055 if m == "gd" else 0.2,
                                                           **({"l2": 0.01} if m == "adamw" else {})))
           for m in _FIRST_ORDER},
        "nan_grad_clip_l1": (_nan_grad_above, m0, x, dict(kw, method="gd", lr=0.0055, clip=50.0, l1=0.01)),
        "nan_grad_optax_sgd": (_nan_grad_above, m0, x, dict(kw, method=optax.sgd(0.0055), lr=1.0)),
    }
    loss, p0, data, opts = cases[case]
    fast = fit(loss, p0, data, **opts)
    monkeypatch.setattr(_fit._fit_loop, "FAST_EPOCHS", False)
    exact = fit(loss, p0, data, **opts)
    leaves = jax.tree_util.tree_leaves
    assert len(leaves(fast)) == len(leaves(exact))
    for a, b in zip(leaves(fast), leaves(exact)):
        assert np.asarray(a).dtype == np.asarray(b).dtype
        assert np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True), case
    if case == "nan_mid_epoch":  # 4 steps an epoch; a > 2.5 after step 6, so step 7 (epoch 2's third) meets
        # the NaN and steps back to the point before step 6
        assert fast.status_enum is FitStatus.NONFINITE and int(fast.epochs) == 2 and int(fast.steps) == 5
    if case == "overflow":
        assert fast.status_enum is FitStatus.NONFINITE and np.isfinite(float(fast.params["a"]))
    if case.startswith("nan_grad"):  # a reaches 2.5 before the last epoch: the rollback is in the run
        assert fast.status_enum is FitStatus.NONFINITE and 0 < float(fast.params["a"]) <= 2.5, case


def test_tested_per_epoch_only_where_a_step_cannot_hide_a_non_finite_gradient():
    """fit's fast epochs test finiteness once, at their end, only for directions that keep a
    non-finite gradient non-finite, without a box or an added penalty (loop.tested_per_epoch)."""
    from jaxgd.minibatch import loop as _loop

    cfg = _loop.Config(n=8, batch_size=4, n_batches=2, epochs=1, mask=False, eval_fun=None, eval_weights=0,
                       metric=None, early_stop=False, progress=False, mesh=None, data_axis="batch",
                       dtype="float32", key_impl=None, fast_epochs=True)
    solver = lambda method, **kw: jaxgd.Solver(mse, method, 0.1, **kw)  # noqa: E731
    assert all(_loop.tested_per_epoch(solver(m), cfg) for m in _FIRST_ORDER)
    assert _loop.tested_per_epoch(solver("adamw", l2=0.1), cfg)  # decoupled decay: not a penalty
    assert _loop.tested_per_epoch(solver("gd", l1=0.1, clip=1.0), cfg)
    assert not _loop.tested_per_epoch(solver("adam"), cfg._replace(fast_epochs=False))
    assert not _loop.tested_per_epoch(solver("adam", l2=0.1), cfg)
    assert not _loop.tested_per_epoch(solver("gd", bounds=(0.0, None)), cfg)
    assert not _loop.tested_per_epoch(jaxgd.Solver(mse, optax.adam(0.1), 1.0), cfg)


# -- validation -----------------------------------------------------------
class _FakeLineSearch:
    def init(self, *a):
        return ()

    def step(self, *a):
        raise AssertionError("never called")


def _call(**over):
    kw = dict(STD, key=KEY)
    fun, params, data = over.pop("fun", mse), over.pop("params", P0), over.pop("data", DATA)
    kw.update(over)
    return fit(fun, params, data, **kw)


@pytest.mark.parametrize(
    "over, exc, fragment",
    [
        (dict(data={"x": X, "y": Y[:-1]}), ValueError, "data leaves must share the leading (example) axis"),
        (dict(data={"x": X, "y": np.float64(1.0)}), ValueError, "is a scalar"),
        (dict(batch_size=0), ValueError, "batch_size=0"),
        (dict(batch_size=N + 1), ValueError, f"no larger than the number of examples ({N}) (or any"),
        (dict(batch_size=2.0), ValueError, "batch_size=2.0"),
        (dict(epochs=0), ValueError, "epochs=0"),
        (dict(patience=0), ValueError, "patience=0"),
        (dict(key=0), TypeError, "key must be a PRNG key"),
        (dict(key=jax.random.split(KEY, 3)), ValueError, "shape (3,)"),
        (dict(key=np.zeros(2, np.int32)), ValueError, "dtype int32"),
        (dict(remainder="drop"), TypeError, "Remainder.DROP, Remainder.MASK"),
        (dict(lr=_FakeLineSearch()), ValueError, "needs exact loss evaluations"),
        (dict(lr=-1.0), ValueError, "lr must be > 0"),
        (dict(method="sgdd"), ValueError, "not a known method"),
        (dict(fun=lambda p, b: b["x"] @ p["w"]), TypeError, "fun must return a real floating-point scalar; got shape (8,)"),
        (dict(fun=mse, remainder=Remainder.MASK), TypeError, "fun is called as fun(params, batch, weights)"),
        (
            dict(fun=lambda p, b, w: w * (b["x"] @ p["w"]), remainder=Remainder.MASK),
            TypeError,
            "fun must return a real floating-point scalar (the weighted mean over the batch); got shape (8,)",
        ),
        (dict(eval_fun=mse), ValueError, "eval_fun is evaluated on eval_data, but eval_data is None"),
        (dict(eval_data={"x": X[:5], "y": Y[:4]}), ValueError, "eval_data leaves must share"),
        (dict(eval_data=DATA, metric=lambda p, d: d["y"]), TypeError, "metric must return a real (floating, integer or bool) scalar"),
        (dict(params={"w": jnp.zeros(D, int), "b": 0.0}), TypeError, "real floating-point"),
        (dict(mesh="cpu"), TypeError, "mesh must be a jax.sharding.Mesh"),
        (dict(progress=1), TypeError, "progress=1"),
        (dict(batchsize=8), TypeError, "did you mean batch_size"),
    ],
)
def test_validation_errors(over, exc, fragment):
    with pytest.raises(exc) as info:
        _call(**over)
    assert fragment in str(info.value)


def test_mesh_validation():
    mesh = jax.make_mesh((1,), ("batch",))
    with pytest.raises(ValueError, match=r"data_axis='data' is not an axis of the mesh; its axes are \('batch',\)"):
        _call(mesh=mesh)


def test_line_search_default_is_refused():
    direction = jaxgd.Direction("fake", lambda p: (), None, default_lr=_FakeLineSearch)
    with pytest.raises(ValueError, match="defaults to a line search, which fit cannot use; pass lr="):
        _call(method=direction, lr=None)


# -- data parallel --------------------------------------------------------
@pytest.mark.slow  # a subprocess with four host devices (~10 s); test_fit_mesh.py runs a mesh in make test
def test_sharded_equals_unsharded(tmp_path):
    """Reference: the single-device run, in a subprocess with four host devices (its files in tmp_path)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    helper = os.path.join(root, "tests", "fit_sharded_check.py")
    out = subprocess.run([sys.executable, helper, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "devices=4" in out.stdout and "all-reduce=True" in out.stdout


def test_per_epoch_schedule_helper():
    """Reference: hand-computed values of an epoch schedule stretched over steps."""
    s = jaxgd.schedules.per_epoch(jaxgd.schedules.step_decay(0.1, 1, 0.5), steps_per_epoch=3)
    got = jax.jit(jax.vmap(s))(jnp.arange(9))
    np.testing.assert_allclose(got, [0.1] * 3 + [0.05] * 3 + [0.025] * 3)
    with pytest.raises(ValueError, match="steps_per_epoch=0"):
        jaxgd.schedules.per_epoch(s, 0)
    with pytest.raises(TypeError, match="schedule must be callable"):
        jaxgd.schedules.per_epoch(0.1, 3)


def test_per_epoch_steps_must_be_fits_steps_an_epoch():
    """Reference: fit's documented steps an epoch, n // batch_size with Remainder.DROP and ceil(n / batch_size)
    with MASK (11 examples in batches of 4: 2 and 3). Another concrete steps_per_epoch ran another schedule,
    silently (per_epoch(s, 3) under DROP advanced s every 3 steps, 1.5 epochs); a traced one is not checked."""
    X = jnp.asarray(np.random.default_rng(0).normal(size=(11, 2)))
    data = (X, X @ jnp.asarray([1.0, 2.0]))
    mse = lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2)  # noqa: E731
    mse_w = lambda p, b, w: jnp.sum(w * (b[0] @ p - b[1]) ** 2) / jnp.sum(w)  # noqa: E731
    sched = optax.exponential_decay(0.1, 1, 0.5)

    def run(spe, remainder=jaxgd.Remainder.DROP):
        return jaxgd.fit(mse_w if remainder is jaxgd.Remainder.MASK else mse, jnp.zeros(2), data, batch_size=4,
                         epochs=2, key=jax.random.key(0), lr=jaxgd.schedules.per_epoch(sched, spe), remainder=remainder)

    with pytest.raises(ValueError, match=r"steps_per_epoch=3\) advances its schedule every 3 steps, but fit takes "
                       r"2 steps an epoch here \(n // batch_size = 11 // 4 with Remainder.DROP\); "
                       r"pass steps_per_epoch=2"):
        run(3)
    with pytest.raises(ValueError, match=r"fit takes 3 steps an epoch here \(ceil\(n / batch_size\) = ceil\(11 / 4\) "
                       r"with Remainder.MASK\); pass steps_per_epoch=3"):
        run(np.int64(2), jaxgd.Remainder.MASK)
    out = jax.eval_shape(lambda n: run(n).loss, jnp.int32(3))  # traced: not checked (nothing compiles here)
    assert out.shape == ()


def test_fit_result_is_a_pytree():
    res = _call()
    leaves = jax.tree_util.tree_leaves(res)
    assert all(hasattr(v, "dtype") for v in leaves)
    assert "FitResult(status=<FitStatus.EPOCHS" in repr(res)
    assert _fit.FitHistory._fields == ("train_loss", "eval_loss", "metric", "lr")


@pytest.mark.slow
def test_fused_finite_check_equals_numpy():
    """Reference: np.isfinite over every leaf. _tree.all_finite_pair (the fit loop's one
    fused check per step) must give the same two verdicts for NaN/Inf/-Inf anywhere,
    in small (concatenated) and large (reduced alone) leaves, in several dtypes."""
    from jaxgd import _tree

    rng = np.random.default_rng(0)
    for trial in range(200):
        dtype = [np.float64, np.float32, jnp.bfloat16, np.float16][trial % 4]
        shapes = [(int(rng.integers(1, 5)),), (70_000,) if trial % 5 == 0 else (3, 2), ()]
        a = [rng.normal(size=s).astype(dtype) for s in shapes]
        b = [rng.normal(size=s).astype(dtype) for s in shapes]
        for tree in (a, b):
            if rng.random() < 0.6:
                i = int(rng.integers(len(tree)))
                x = np.array(tree[i], ndmin=1).ravel()
                x[rng.integers(x.size)] = rng.choice([np.nan, np.inf, -np.inf])
                tree[i] = x.reshape(np.shape(tree[i]))
        finite_a = all(np.isfinite(np.asarray(x, np.float64)).all() for x in a)
        finite_b = all(np.isfinite(np.asarray(x, np.float64)).all() for x in b)
        grad_ok, both_ok = _tree.all_finite_pair([jnp.asarray(x) for x in a], [jnp.asarray(x) for x in b])
        assert (bool(grad_ok), bool(both_ok)) == (finite_a, finite_a and finite_b), trial


def test_loss_of_a_vmapped_fit_is_each_runs_last_epoch():
    """Runs of different lengths under vmap (patience stops them apart); reference: each run's own history row
    at its last epoch. jnp.take with the batched epoch count gave a (3, 3) outer product of every run's rows."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32) + 0.3 * rng.normal(size=48).astype(np.float32)
    run = lambda lr: jaxgd.fit(lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2), jnp.zeros(4, jnp.float32), (x, y),  # noqa: E731
                               batch_size=8, epochs=20, key=jax.random.key(1), method="adam", lr=lr, patience=2)
    res = jax.vmap(run)(jnp.asarray([0.01, 0.3, 3.0], jnp.float32))
    epochs = np.asarray(res.epochs)
    assert len(set(epochs.tolist())) > 1
    want = np.asarray(res.history.loss)[np.arange(3), epochs - 1]
    np.testing.assert_array_equal(res.loss, want)
    # as documented: a row per epoch of the bucket (20 rounded up to 32), NaN past each run's epochs
    rows = np.asarray(res.history.loss)
    assert rows.shape == (3, 32)
    for i, e in enumerate(epochs):
        assert np.isfinite(rows[i, :e]).all() and np.isnan(rows[i, e:]).all()


def _fit_scaled(s):
    """fit of a least squares scaled by ``s``, a value its loss closes over; the final loss."""
    X = jnp.asarray(np.random.default_rng(0).normal(size=(32, 2)))
    y = X @ jnp.asarray([1.0, 2.0])
    loss = lambda p, b: s * jnp.mean((b[0] @ p - b[1]) ** 2)  # noqa: E731
    return jaxgd.fit(loss, jnp.zeros(2), (X, y), batch_size=8, epochs=2, lr=0.1, key=jax.random.key(0)).loss


def test_differentiating_a_value_the_loss_closes_over_is_refused_by_name():
    """jax.grad / jvp / jit(grad) of fit with respect to a value its loss closes over raised JAX's
    TracerArrayConversionError or UnexpectedTracerError (fit's guard saw its inputs only); now the
    TypeError fit's inputs get, before anything compiles."""
    for transform in (jax.grad, lambda f: jax.jit(jax.grad(f)), lambda f: lambda s: jax.jvp(f, (s,), (1.0,))):
        with pytest.raises(TypeError, match="jaxgd.fit is not differentiable .* a value the loss closes over"):
            transform(_fit_scaled)(1.0)


def test_differentiating_a_value_an_optax_schedule_lr_closes_over_is_refused_by_name():
    """jax.grad / jvp of fit with respect to the value an optax schedule lr is built from (as lr, or inside
    per_epoch) raised JAX's TracerArrayConversionError in fit's _trim (the guard checked fun, eval_fun and
    metric only); reference: the TypeError a float or jaxgd schedule lr gets (fit's documented refusal)."""
    X = jnp.asarray(np.random.default_rng(0).normal(size=(12, 2)))
    y = X @ jnp.asarray([1.0, 2.0])
    loss = lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2)  # noqa: E731

    def run(lr):
        return jaxgd.fit(loss, jnp.zeros(2), (X, y), batch_size=4, epochs=2, lr=lr, key=jax.random.key(0)).loss

    for build in (lambda v: optax.exponential_decay(v, 3, 0.5),
                  lambda v: jaxgd.schedules.per_epoch(optax.exponential_decay(v, 1, 0.5), 3)):
        for transform in (jax.grad, lambda f: lambda v: jax.jvp(f, (v,), (1.0,))):
            with pytest.raises(TypeError, match="jaxgd.fit is not differentiable .* the schedule lr closes over"):
                transform(lambda v: run(build(v)))(0.1)
    with pytest.raises(TypeError, match="jaxgd.fit is not differentiable"):  # the reference
        jax.grad(lambda v: run(jaxgd.schedules.step_decay(v, 3, 0.5)))(0.1)


@pytest.mark.slow
def test_vmap_over_a_value_the_loss_closes_over_still_runs():
    """(The refusal above is for jax.grad/jvp only.) Reference: each lane's run alone."""
    np.testing.assert_allclose(jax.vmap(_fit_scaled)(jnp.asarray([1.0, 2.0])), [_fit_scaled(1.0), _fit_scaled(2.0)], rtol=1e-12)


def test_an_integer_metric_is_recorded():
    """metric=lambda w, d: jnp.sum(correct) (an int32 count, as Keras' and torchmetrics' counts) was refused as
    "must return a real scalar; got shape () and dtype int32". Reference: the count NumPy makes at the
    returned parameters (patience None: the last epoch's)."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X @ np.array([1.0, -1.0, 0.5]) > 0).astype(np.int32)
    loss = lambda w, b: jnp.mean(jnp.logaddexp(0.0, b[0] @ w) - b[1] * (b[0] @ w))  # noqa: E731
    metric = lambda w, d: jnp.sum(((d[0] @ w) > 0) == (d[1] == 1))  # noqa: E731
    r = jaxgd.fit(loss, jnp.zeros(3), (X, y), batch_size=10, epochs=3, lr=0.5, key=jax.random.key(0),
                  eval_data=(X, y), metric=metric)
    assert float(r.history.metric[-1]) == np.sum(((X @ np.asarray(r.params)) > 0) == (y == 1))


def test_history_rows_are_bounded_and_do_not_hold_the_buffer():
    """fit's history has one row per epoch of the bucketed epochs, allocated before the run: epochs=10**9 (early
    stopping expected) allocated 32 GB; refused by name now (bad-input table). A run stopped early by patience held
    the whole buffer through its trimmed rows (a view): copied now. Reference: the rows' own size."""
    X = jnp.asarray(np.random.default_rng(0).normal(size=(8, 2)))
    data = (X, X @ jnp.asarray([1.0, 2.0]))
    loss = lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2)  # noqa: E731
    r = jaxgd.fit(loss, jnp.zeros(2), data, batch_size=8, epochs=10**5, lr=0.1, key=jax.random.key(0),
                  eval_data=data, eval_fun=lambda p, d: jnp.asarray(1.0, p.dtype), patience=2)
    assert int(r.epochs) == 3
    for h in r.history:
        held = h if h.base is None else h.base
        assert h.shape == (3,) and held.nbytes <= 3 * h.nbytes, (h.shape, held.nbytes)
