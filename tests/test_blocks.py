"""K steps per loop iteration (issue 15): the block size ``unroll`` changes nothing.

Reference: the same run with ``unroll=1`` (one step per ``while_loop``
iteration, the loop every other test checks against scipy/optax/NumPy). Every
result field (params, loss, steps, status, nfev/ngev, history, the final
state) must be bit for bit equal, whatever ``K`` and wherever the run stops
inside a block.

Under JAX's default XLA:CPU emitters, the ones a loop of blocks gets
(``jaxgd.core.compile``: ``unroll`` > 1 compiles as JAX would; ``unroll`` = 1
gives the same bits under both, ``test_compile_options.py``). The classic
emitters the rest of the suite compiles with round a block of unrolled steps
differently, so this module is skipped under them; ``make test`` and ``make
slow`` run it in a second pytest call with ``JAXGD_TEST_XLA_DEFAULTS=1``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CLASSIC_EMITTERS, assert_bitwise

import jaxgd
from jaxgd.core import driver as _driver

if CLASSIC_EMITTERS in os.environ.get("XLA_FLAGS", ""):
    pytest.skip("runs under JAX's default XLA emitters: JAXGD_TEST_XLA_DEFAULTS=1 (make test does)", allow_module_level=True)


def rosen(x: jax.Array) -> jax.Array:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


X0 = jnp.array([-1.2, 1.0, -0.5, 0.8])


def _same(fun: Any, x0: Any, ks: tuple = (3,), **kw: Any) -> jaxgd.Result:
    ref = jaxgd.minimize(fun, x0, unroll=1, **kw)
    for k in ks:
        assert_bitwise(jaxgd.minimize(fun, x0, unroll=k, **kw), ref)
    return ref


CASES = [
    dict(method="gd", lr=1e-3),
    pytest.param(dict(method="momentum", lr=1e-3), marks=pytest.mark.slow),  # adam and gd stay (make slow: ~2.5 s)
    dict(method="adam", lr=1e-2),
    dict(method="gd", lr=jaxgd.schedules.exponential_decay(1e-3, 10, 0.9)),
    dict(method="gd", lr=jaxgd.linesearch.Backtracking()),
    pytest.param(dict(method="gd", lr=jaxgd.linesearch.BarzilaiBorwein()), marks=pytest.mark.slow),  # Backtracking stays
    # slow (make slow, run by CI): K copies of a line search compile for 15-20 s each
    pytest.param(dict(method="bfgs"), marks=pytest.mark.slow),
    pytest.param(dict(method="lbfgs"), marks=pytest.mark.slow),
    pytest.param(dict(method="cg"), marks=pytest.mark.slow),
    pytest.param(dict(method="lbfgs", lr=jaxgd.linesearch.StrongWolfe()), marks=pytest.mark.slow),
    dict(method="gd", lr=1e-3, l1=0.01, accelerated=True),
    dict(method="gd", lr=1e-3, bounds=(-1.0, 0.9)),
]


@pytest.mark.parametrize("case", CASES)
def test_methods_and_line_searches_bit_for_bit(case: dict) -> None:
    ref = _same(rosen, X0, max_steps=37, gtol=0.0, **case)
    assert int(ref.steps) > 0


def test_a_stop_inside_a_block() -> None:
    """gtol fires at a step that is not a multiple of K; later steps of the block are masked."""
    quad = lambda x: 0.5 * jnp.sum(jnp.arange(1.0, 5.0) * x**2)  # noqa: E731
    ref = _same(quad, jnp.ones(4), ks=(4, 5), method="gd", lr=0.2, max_steps=500, gtol=1e-3)
    assert ref.status_enum == jaxgd.Status.GTOL
    assert int(ref.steps) % 4 and int(ref.steps) % 5 and int(ref.steps) < 500


@pytest.mark.slow  # K = 3 and 4 copies of lbfgs's line search: about 40 s of compiling
def test_a_stop_inside_a_block_with_a_line_search() -> None:
    ref = _same(rosen, X0, ks=(3, 4), method="lbfgs", max_steps=200, ftol=1e-9)
    assert ref.status_enum in (jaxgd.Status.FTOL, jaxgd.Status.GTOL) and int(ref.steps) % 3


def test_nonfinite_inside_a_block() -> None:
    """A loss that turns NaN past x = 2: the step is refused and the last finite iterate kept."""
    loss = lambda x: jnp.where(x[0] > 2.0, jnp.nan, -jnp.sum(x))  # noqa: E731
    ref = _same(loss, jnp.zeros(2), ks=(4,), method="gd", lr=0.3, max_steps=100, gtol=0.0)
    assert ref.status_enum == jaxgd.Status.NONFINITE
    assert int(ref.steps) == 6 and float(ref.params[0]) <= 2.0  # 7 steps of 0.3 overshoot 2


def test_history_every_k() -> None:
    for every in (2, 3):
        ref = _same(rosen, X0, ks=(4,), method="adam", lr=1e-2, max_steps=41, gtol=0.0, history=every)
        assert ref.history.loss.shape == (41 // every,) and np.isfinite(ref.history.loss).all()


def test_max_steps_not_a_multiple_of_k() -> None:
    # K = 16 > max_steps: the first block already ends the run (50 unrolled steps compiled for ~50 s)
    ref = _same(rosen, X0, ks=(4, 16), method="gd", lr=1e-3, max_steps=13, gtol=0.0)
    assert int(ref.steps) == 13 and ref.status_enum == jaxgd.Status.MAX_STEPS


@pytest.mark.slow  # ~9 s: three unrolled programs plus the checkpointed chunks; make slow, run by CI
def test_checkpoints_landing_mid_block(tmp_path: Any) -> None:
    """Checkpoints every 5 steps with K = 4: chunks end inside blocks; same run, and a resume from one."""
    kw = dict(method="adam", lr=1e-2, max_steps=23, gtol=0.0)
    ref = jaxgd.minimize(rosen, X0, unroll=1, **kw)
    path = tmp_path / "run.ckpt"
    assert_bitwise(jaxgd.minimize(rosen, X0, unroll=4, checkpoint_every=5, checkpoint_path=path, **kw), ref)
    mid = jaxgd.minimize(rosen, X0, unroll=1, **{**kw, "max_steps": 10})
    assert_bitwise(jaxgd.minimize(rosen, X0, unroll=3, resume=mid, **kw), ref)
    solver = jaxgd.Solver(rosen, "adam", 1e-2, max_steps=23, gtol=0.0, unroll=4)
    chunked = solver.resume(solver.resume(solver.start(X0), stop=7), stop=18)
    full = jaxgd.Solver(rosen, "adam", 1e-2, max_steps=23, gtol=0.0, unroll=1).run(X0)
    assert int(chunked.steps) == 18
    assert_bitwise(solver.resume(chunked), full)


def test_under_vmap() -> None:
    """vmap over learning rates: Solver.run (plain vmap of the driver's loop) and minimize (the batched loop)."""
    lrs = jnp.array([1e-4, 1e-3, 3e-3, 0.3])  # 0.3 diverges: NONFINITE early

    def run(k: int) -> Any:
        return jax.vmap(lambda lr: jaxgd.Solver(rosen, "gd", lr, max_steps=29, gtol=1e-2, unroll=k).run(X0))(lrs)

    ref = run(1)
    assert set(np.asarray(ref.status).tolist()) >= {int(jaxgd.Status.NONFINITE), int(jaxgd.Status.MAX_STEPS)}
    assert_bitwise(run(3), ref)
    def vmin(k: int) -> Any:
        return jax.vmap(lambda lr: jaxgd.minimize(rosen, X0, method="gd", lr=lr, max_steps=29, gtol=1e-2, unroll=k))(lrs)

    assert_bitwise(vmin(3), vmin(1))
    vm = vmin(3)
    for i, lr in enumerate(lrs):  # each run alone: same steps and status, params to rounding (vectorised maths)
        one = jaxgd.minimize(rosen, X0, method="gd", lr=lr, max_steps=29, gtol=1e-2, unroll=1)
        np.testing.assert_allclose(np.asarray(vm.params[i]), np.asarray(one.params), rtol=1e-14)
        assert int(vm.steps[i]) == int(one.steps) and int(vm.status[i]) == int(one.status)


def test_automatic_block_size_is_documented_and_cpu_is_one() -> None:
    solver = jaxgd.Solver(rosen, "gd", 1e-3)
    state = solver.init(X0)
    assert _driver.block_size(solver, state) == (1 if jax.default_backend() == "cpu" else _driver.AUTO_BLOCK_ACCELERATOR)
    assert _driver.block_size(jaxgd.Solver(rosen, "gd", 1e-3, unroll=6), state) == 6
    assert "backend" in jaxgd.minimize.__doc__.split("unroll:")[1][:200]
