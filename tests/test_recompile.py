"""No recompiles a user would not expect (issue 14 item 4), counted with JAX's
compile monitor ("/jax/core/compile/backend_compile_duration" events).

Reference for the results: the same call compiled afresh (a run of fewer
epochs is bit for bit the first rows of a longer one with the same key).
"""

from __future__ import annotations

from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd

EVENT = "/jax/core/compile/backend_compile_duration"


@pytest.fixture
def compiles() -> Iterator[list]:
    seen: list = []

    def listener(event: str, duration: float, **kw: Any) -> None:
        if event == EVENT:
            seen.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    yield seen
    jax.monitoring.unregister_event_duration_listener(listener)


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


def test_minimize_new_max_steps_in_the_same_bucket_does_not_compile(compiles: list) -> None:
    """Reference: Solver.run with max_steps exactly the limit (no bucket): the same
    iterates, steps, status and evaluation counts bit for bit; the loss (and its
    history) to rounding: XLA:CPU may round the loss's 3-term sum differently
    (1 ulp, measured) in a program compiled for another step limit."""
    from conftest import assert_bitwise

    x0 = jnp.zeros(3)
    kw = dict(method="adam", lr=0.01, gtol=0.0)
    jaxgd.minimize(_quad, x0, max_steps=70, **kw)
    before = len(compiles)
    runs = {m: jaxgd.minimize(_quad, x0, max_steps=m, **kw) for m in (100, 128, 65)}
    assert len(compiles) == before, "a new max_steps (same bucket) compiled"
    for m, res in runs.items():
        ref = jaxgd.Solver(_quad, max_steps=m, **kw).run(x0)
        assert int(res.steps) == m and res.status_enum == jaxgd.Status.MAX_STEPS
        assert_bitwise((res.params, res.steps, res.status, res.nfev, res.ngev, res.state.direction_state),
                       (ref.params, ref.steps, ref.status, ref.nfev, ref.ngev, ref.state.direction_state))
        np.testing.assert_allclose(np.asarray(res.loss), np.asarray(ref.loss), rtol=1e-15)
        for h, g in zip(res.history, ref.history):
            assert np.shape(h) == np.shape(g) == (m,)
            np.testing.assert_allclose(np.asarray(h), np.asarray(g), rtol=1e-15)
    early = jaxgd.minimize(_quad, x0, max_steps=100, method="gd", lr=0.1, gtol=1e-3)
    assert early.status_enum == jaxgd.Status.GTOL and len(early.history.loss) == int(early.steps)


def test_minimize_max_steps_under_vmap_and_jit() -> None:
    """The batched loop stops at the limit too; under jit the history keeps max_steps entries."""
    lrs = jnp.array([1e-3, 1e-2])
    vm = jax.vmap(lambda lr: jaxgd.minimize(_quad, jnp.zeros(3), lr=lr, max_steps=37, gtol=0.0))(lrs)
    assert np.asarray(vm.steps).tolist() == [37, 37] and vm.history.loss.shape == (2, 37)
    jm = jax.jit(lambda x: jaxgd.minimize(_quad, x, lr=1e-2, max_steps=37, gtol=0.0))(jnp.zeros(3))
    assert int(jm.steps) == 37 and jm.history.loss.shape == (37,)
    np.testing.assert_array_equal(np.asarray(jm.params), np.asarray(vm.params[1]))


def test_minimize_limit_made_under_a_trace_is_not_kept() -> None:
    """A step limit first seen under jit, then eagerly, then under jit(vmap): no leaked tracer."""
    g = jax.jit(lambda: jaxgd.minimize(_quad, jnp.zeros(3), lr=1e-2, max_steps=41, gtol=0.0))
    traced = g()
    eager = jaxgd.minimize(_quad, jnp.zeros(3), lr=1e-2, max_steps=41, gtol=0.0)
    sweep = jax.jit(jax.vmap(lambda lr: jaxgd.minimize(_quad, jnp.zeros(3), lr=lr, max_steps=41, gtol=0.0)))
    swept = sweep(jnp.array([1e-2, 1e-3]))
    assert int(traced.steps) == int(eager.steps) == 41 and np.asarray(swept.steps).tolist() == [41, 41]
    np.testing.assert_allclose(np.asarray(eager.params), np.asarray(swept.params[0]), rtol=1e-14)
