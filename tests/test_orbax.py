"""Orbax checkpoints of a ``minimize`` Result and a ``fit`` result.

A run saved mid-way with orbax-checkpoint (``StandardCheckpointer`` and
``PyTreeCheckpointer``), restored into the structure ``jax.eval_shape`` gives,
and resumed, must equal the uninterrupted run bit for bit.

References: the uninterrupted run in the same process (bit for bit), and the
tree that was saved (the restore gives back every leaf, dtype and bit).
Skipped when orbax-checkpoint is not installed (it is in the ``test`` extra).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ocp = pytest.importorskip("orbax.checkpoint")

import jaxgd  # noqa: E402
from conftest import assert_bitwise  # noqa: E402

CHECKPOINTERS = ["standard", "pytree"]


def save_restore(kind: str, path: Any, tree: Any, abstract: Any) -> Any:
    """Save ``tree`` to the folder ``path`` with orbax and restore it as ``abstract`` says."""
    if kind == "standard":
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(path, tree)
            ckptr.wait_until_finished()
        with ocp.StandardCheckpointer() as ckptr:
            return ckptr.restore(path, abstract)
    ckptr = ocp.PyTreeCheckpointer()
    ckptr.save(path, tree)
    restore_args = ocp.checkpoint_utils.construct_restore_args(abstract)
    return ckptr.restore(path, args=ocp.args.PyTreeRestore(item=abstract, restore_args=restore_args))


def loss(p, x, y):
    r = jnp.tanh(x @ p["w"] + p["b"]) - y
    return jnp.mean(r**2) + 1e-2 * jnp.sum(p["w"] ** 2)


def _data(n: int = 48, d: int = 3) -> tuple:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    return x, np.tanh(x @ rng.normal(size=d)) + 0.05 * rng.normal(size=n)


X0 = {"w": jnp.zeros(3), "b": jnp.zeros(())}


SOLVER = jaxgd.Solver(loss, "lbfgs", max_steps=25, gtol=0.0)
_run = jax.jit(lambda s, x0, x, y: s.run(x0, x, y))
_start = jax.jit(lambda s, x0, x, y: s.start(x0, x, y))
_resume = jax.jit(lambda s, r, x, y, stop: s.resume(r, x, y, stop=stop))
_finish = jax.jit(lambda s, r, x, y: s.resume(r, x, y))


@pytest.fixture(scope="module")
def solver_runs() -> tuple:
    x, y = _data()
    whole = _run(SOLVER, X0, x, y)
    part = _resume(SOLVER, _start(SOLVER, X0, x, y), x, y, 9)
    return whole, part


# Each checkpointer costs about 2 s of CPU per save-restore: both run for fit, one each for the others.
@pytest.mark.parametrize("kind", ["standard"])
@pytest.mark.slow
def test_solver_result_saved_mid_run_resumes_bitwise(kind, tmp_path, solver_runs):
    """Reference: ``Solver.run`` without interruption."""
    x, y = _data()
    whole, part = solver_runs
    assert int(part.steps) == 9 and int(part.status) == int(jaxgd.Status.RUNNING)
    # The template is what start() would build: no run needed, only shapes and dtypes.
    abstract = jax.eval_shape(SOLVER.start, X0, x, y)
    back = save_restore(kind, tmp_path / "mid", part, abstract)
    assert isinstance(back, jaxgd.Result) and isinstance(back.state, jaxgd.SolverState)
    assert_bitwise(back, part)
    resumed = _finish(SOLVER, back, x, y)
    assert int(resumed.steps) == int(whole.steps) > 9
    assert_bitwise(resumed, whole)


MIN_KW = dict(method="bfgs", gtol=0.0, progress=False)


@pytest.fixture(scope="module")
def minimize_runs() -> tuple:
    x, y = _data()
    return jaxgd.minimize(loss, X0, (x, y), max_steps=20, **MIN_KW), jaxgd.minimize(loss, X0, (x, y), max_steps=6, **MIN_KW)


@pytest.mark.parametrize("kind", ["pytree"])
@pytest.mark.slow
def test_minimize_result_resumes_bitwise(kind, tmp_path, minimize_runs):
    """Reference: ``minimize`` with the larger ``max_steps`` run in one go."""
    x, y = _data()
    whole, part = minimize_runs
    abstract = jax.eval_shape(functools.partial(jaxgd.minimize, loss, X0, (x, y), max_steps=6, **MIN_KW))
    back = save_restore(kind, tmp_path / "min", part, abstract)
    assert_bitwise(back, part)
    resumed = jaxgd.minimize(loss, X0, (x, y), max_steps=20, resume=back, **MIN_KW)
    assert int(resumed.steps) == 20
    assert_bitwise(resumed, whole)


def _fit_loss(p, batch):
    return loss(p, batch["x"], batch["y"])


def _fit_problem() -> tuple:
    x, y = _data(64)
    data, eval_data = {"x": x[:48], "y": y[:48]}, {"x": x[48:], "y": y[48:]}
    kw = dict(batch_size=8, key=jax.random.key(5), method="adam", lr=3e-2, eval_data=eval_data,
              patience=50, progress=False)
    return data, kw


@pytest.fixture(scope="module")
def fit_runs() -> tuple:
    data, kw = _fit_problem()
    return jaxgd.fit(_fit_loss, X0, data, epochs=5, **kw), jaxgd.fit(_fit_loss, X0, data, epochs=2, **kw)


@pytest.mark.parametrize("kind", CHECKPOINTERS)
def test_fit_result_resumes_bitwise(kind, tmp_path, fit_runs):
    """Reference: ``fit`` over all epochs without interruption (early stopping's
    best parameters, patience counter, PRNG key and history all carried)."""
    data, kw = _fit_problem()
    whole, part = fit_runs
    abstract = jax.eval_shape(lambda: jaxgd.fit(_fit_loss, X0, data, epochs=2, **kw))
    back = save_restore(kind, tmp_path / "fit", part, abstract)
    assert isinstance(back, jaxgd.FitResult)
    assert_bitwise(back, part)
    resumed = jaxgd.fit(_fit_loss, X0, data, epochs=5, resume=back, **kw)
    assert int(resumed.epochs) == 5
    assert_bitwise(resumed, whole)
