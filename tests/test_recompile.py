"""No recompiles a user would not expect (issue 14 item 4), counted with JAX's
compile monitor ("/jax/core/compile/backend_compile_duration" events).

Reference for the results: the same call compiled afresh (a run of fewer
epochs is bit for bit the first rows of a longer one with the same key).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd

def _data(n: int = 32, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    return x, x @ np.array([1.0, -2.0, 0.5])


def _loss(w: jax.Array, batch: Any) -> jax.Array:
    x, y = batch
    return jnp.mean((x @ w - y) ** 2)


def _fit(**kw: Any) -> jaxgd.FitResult:
    kw = {"batch_size": 8, "epochs": 3, "key": jax.random.key(0), "method": "adam", "lr": 0.05, **kw}
    return jaxgd.fit(_loss, jnp.zeros(3), _data(), **kw)


def test_fit_new_epochs_in_the_same_bucket_does_not_compile(compiles: list) -> None:
    three = _fit(epochs=3)
    before = len(compiles)
    five = _fit(epochs=5)
    seven = _fit(epochs=7)
    assert len(compiles) == before, "a new epochs (same bucket) compiled"
    assert int(five.epochs) == 5 and five.history.train_loss.shape == (5,)
    assert seven.history.train_loss.shape == (7,) and five.status_enum == jaxgd.FitStatus.EPOCHS
    np.testing.assert_array_equal(np.asarray(seven.history.train_loss[:5]), np.asarray(five.history.train_loss))
    np.testing.assert_array_equal(np.asarray(five.history.train_loss[:3]), np.asarray(three.history.train_loss))


def test_fit_progress_switch_does_not_compile(compiles: list, capsys: Any) -> None:
    off = _fit(progress=False)
    before = len(compiles)
    on = _fit(progress=True)
    assert len(compiles) == before, "turning progress on compiled"
    np.testing.assert_array_equal(np.asarray(on.params), np.asarray(off.params))


def test_fit_new_eval_data_of_the_same_shapes_does_not_compile(compiles: list) -> None:
    _fit(eval_data=_data(16, seed=1))
    before = len(compiles)
    res = _fit(eval_data=_data(16, seed=2))
    assert len(compiles) == before
    assert np.isfinite(np.asarray(res.history.eval_loss)).all()


def test_fit_resume_across_epochs(tmp_path: Any) -> None:
    """Chunks (checkpoint_every) and a resumed extension give the run in one piece."""
    full = _fit(epochs=6)
    chunked = _fit(epochs=6, checkpoint_every=4, checkpoint_path=tmp_path / "f.ckpt")
    np.testing.assert_array_equal(np.asarray(chunked.params), np.asarray(full.params))
    np.testing.assert_array_equal(np.asarray(chunked.history.train_loss), np.asarray(full.history.train_loss))
    extended = _fit(epochs=6, resume=_fit(epochs=2))
    np.testing.assert_array_equal(np.asarray(extended.params), np.asarray(full.params))


def _quad(x: jax.Array) -> jax.Array:
    return jnp.sum(jnp.arange(1.0, 4.0) * (x - 1.0) ** 2)


def _rosen(x: jax.Array) -> jax.Array:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _exact(method: str, lr: Any, max_steps: int, **kw: Any) -> jaxgd.Result:
    """Reference: the same run compiled for exactly ``max_steps`` (no bucket)."""
    solver = jaxgd.Solver(_rosen, method, lr, max_steps=max_steps, **kw)
    return jax.jit(lambda s, x: s.run(x))(solver, jnp.zeros(4))


@pytest.mark.parametrize("method,lr", [("gd", 1e-3), ("adam", 1e-2), pytest.param("lbfgs", None, marks=pytest.mark.slow)])
def test_minimize_new_max_steps_in_the_same_bucket_does_not_compile(compiles: list, method: str, lr: Any) -> None:
    """max_steps 90, 100, 120, 128 share one compiled loop (bucket 128); each
    result is bit for bit the run compiled for its own max_steps."""
    got = {}
    for i, n in enumerate((100, 90, 120, 128)):
        before = len(compiles)
        got[n] = jaxgd.minimize(_rosen, jnp.zeros(4), method=method, lr=lr, max_steps=n, gtol=1e-10)
        if i:
            assert len(compiles) == before, f"max_steps={n} compiled again"
    for n, res in got.items():
        ref = _exact(method, lr, n, gtol=1e-10)
        steps = int(ref.steps)
        assert int(res.steps) == steps and int(res.status) == int(ref.status) and int(res.nfev) == int(ref.nfev)
        np.testing.assert_array_equal(np.asarray(res.params), np.asarray(ref.params))
        assert res.history.loss.shape == (steps,)
        np.testing.assert_array_equal(np.asarray(res.history.loss), np.asarray(ref.history.loss)[:steps])
    if method != "lbfgs":  # lbfgs converges (GTOL) before 90 steps
        assert [int(r.steps) for r in got.values()] == [100, 90, 120, 128]
        assert all(r.status_enum == jaxgd.Status.MAX_STEPS for r in got.values())


def test_minimize_max_steps_zero_and_small_budgets() -> None:
    """Edge of the bucket (STEP_BUCKET_MIN): 0 steps returns x0 with MAX_STEPS; 1 and 3 steps stop there."""
    for n in (0, 1, 3):
        res = jaxgd.minimize(_rosen, jnp.zeros(4), lr=1e-3, max_steps=n)
        ref = _exact("gd", 1e-3, n)
        assert int(res.steps) == n and res.status_enum == jaxgd.Status.MAX_STEPS == ref.status_enum
        np.testing.assert_array_equal(np.asarray(res.params), np.asarray(ref.params))
        assert res.history.loss.shape == (n,)


def test_minimize_under_jit_keeps_the_exact_history_length() -> None:
    """Traced inputs are not bucketed: the untrimmed history has max_steps rows, as documented."""
    res = jax.jit(lambda x: jaxgd.minimize(_rosen, x, lr=1e-3, max_steps=10))(jnp.zeros(4))
    assert res.history.loss.shape == (10,) and int(res.steps) == 10


def test_minimize_progress_reports_the_requested_budget(capsys: Any) -> None:
    """The progress bar counts to max_steps, not to the compiled bucket."""
    jaxgd.minimize(_rosen, jnp.zeros(4), lr=1e-3, max_steps=100, progress=True)
    err = capsys.readouterr().err
    assert "100/100" in err and "/128" not in err


def test_eager_solver_init_and_step_of_gd_compile_nothing_when_repeated(compiles: list) -> None:
    """The tree reductions' variadic lax.reduce took a reducer defined inside the call: JAX caches an eager
    reduction per reducer function, so every eager Solver.init and step compiled again (gd: 36-46 ms a call
    where 10 ms suffice; a review of per-call overhead, session 58). Reference: JAX's compile monitor."""
    rosen = lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)  # noqa: E731
    solver = jaxgd.Solver(rosen, "gd", 1e-4)
    state = solver.step(solver.init(jnp.zeros(10)))
    before = len(compiles)
    for _ in range(2):
        state = solver.step(solver.init(jnp.zeros(10)))
    assert len(compiles) == before, f"{len(compiles) - before} compiles in 2 repeated eager init+step calls"
