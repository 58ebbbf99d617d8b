"""Determinism: the same inputs give the same bits, whatever is observed.

Two runs with the same inputs are bit-identical for every method; so are runs
that differ only in what they record or show (history every step, every k
steps or not at all; the progress bar on or off) and runs with
checkpoints on or off. Only the history buffers themselves may differ, since
they are what ``history=`` changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd

from conftest import slow_if

ROOT = Path(__file__).resolve().parent.parent
A = jnp.asarray(np.random.default_rng(7).normal(size=(8, 4)))
Y = jnp.asarray(np.random.default_rng(8).normal(size=(8,)))


def loss(p: Any, A: jax.Array, y: jax.Array) -> jax.Array:
    r = A @ p["w"] + p["b"][0] - y
    return jnp.mean(r * r) + 0.05 * jnp.sum(p["w"] ** 4) + jnp.sum(p["b"][1] ** 2).astype(r.dtype)


X0 = {"w": jnp.zeros(4), "b": (jnp.asarray(0.3), jnp.ones(2, jnp.float32))}


def bits(tree: Any) -> list[tuple[str, str, bytes]]:
    return [
        (jax.tree_util.keystr(p), str(np.asarray(x).dtype), np.asarray(x).tobytes())
        for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def without_history(res: jaxgd.Result) -> jaxgd.Result:
    return res._replace(history=None)


def fresh_loss() -> Any:
    """A new function object with the same maths: a new trace and a new compile (no cache hit)."""
    return lambda p, a, y: loss(p, a, y)


def digest(tree: Any) -> str:
    return hashlib.sha256(repr(bits(tree)).encode()).hexdigest()


# One method of each family in make test (plain, momentum, adaptive, quasi-Newton, CG); the others
# (two compiles each, ~3-6 s) in make slow.
FRESH_COMPILE_IN_MAKE_TEST = {"gd", "momentum", "adam", "bfgs", "cg"}


@pytest.mark.parametrize("method", [slow_if(m not in FRESH_COMPILE_IN_MAKE_TEST, m) for m in jaxgd.methods()])
def test_a_fresh_compile_after_other_work_gives_the_same_bits(method: str) -> None:
    """The same problem, traced and compiled again after a run on other data, gives
    the same bits: no state leaks from one run into the next (module caches,
    reused buffers, a global counter), and the compiled program depends only on
    the problem. The run in between must differ, or it proves nothing."""
    kw = dict(method=method, lr=0.01, max_steps=25, gtol=0.0)
    fun = fresh_loss()
    first = jaxgd.minimize(fun, X0, (A, Y), **kw)
    other = jaxgd.minimize(fun, X0, (2.0 * A, -Y), **kw)  # the same compiled loop, other data
    again = jaxgd.minimize(fresh_loss(), X0, (A, Y), **kw)  # traced and compiled again
    assert bits(first) == bits(again)
    assert bits(other.params) != bits(first.params)


SUBPROCESS = """
import hashlib, sys
import jax
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
sys.path.insert(0, {tests!r})
import jaxgd, test_determinism as t
for m in jaxgd.methods():
    print(m, t.digest(jaxgd.minimize(t.loss, t.X0, (t.A, t.Y), method=m, lr=0.01, max_steps=25, gtol=0.0)))
"""


@pytest.mark.slow  # 25-55 s: a second Python process compiling every run again (make slow, run by CI)
def test_another_process_gives_the_same_bits() -> None:
    """Reference: the same runs in a separate Python process with a different hash
    seed (set and dict-of-str orderings change) and its own compilation cache."""
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    code = SUBPROCESS.format(tests=str(ROOT / "tests"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    theirs = dict(line.split() for line in out.stdout.splitlines() if line.strip())
    ours = {m: digest(jaxgd.minimize(loss, X0, (A, Y), method=m, lr=0.01, max_steps=25, gtol=0.0)) for m in jaxgd.methods()}
    assert theirs == ours


@pytest.mark.slow  # ~7 s of compiling every history/progress combination; make slow, run by CI
def test_history_and_progress_do_not_change_the_result(capsys: pytest.CaptureFixture, tmp_path) -> None:
    # One configuration that exercises a schedule, clipping, a proximal step and state carried
    # between steps (FISTA's extrapolation), each variant compiling its own loop, so one is what
    # the time budget allows. l1 needs method="gd" (jaxgd.core.stall refuses it with adam).
    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.05, 5, 40)
    kw = dict(method="gd", lr=schedule, clip=0.5, l1=1e-3, accelerated=True, max_steps=40, gtol=0.0)
    base = jaxgd.minimize(loss, X0, (A, Y), history=True, progress=False, **kw)
    assert capsys.readouterr().err == ""
    variants = {
        "history=False": jaxgd.minimize(loss, X0, (A, Y), history=False, **kw),
        "history=3": jaxgd.minimize(loss, X0, (A, Y), history=3, **kw),
        "progress=True": jaxgd.minimize(loss, X0, (A, Y), progress=True, **kw),
        "checkpoints": jaxgd.minimize(loss, X0, (A, Y), checkpoint_every=9, checkpoint_path=tmp_path / "c", progress=4, **kw),
    }
    assert "jaxgd" in capsys.readouterr().err  # the bars were drawn (on stderr)
    for name, res in variants.items():
        assert bits(without_history(res)) == bits(without_history(base)), name
    assert bits(variants["progress=True"].history) == bits(base.history)
    assert bits(variants["checkpoints"].history) == bits(base.history)
    n = int(base.steps)
    assert variants["history=False"].history.loss.shape == (0,)
    assert bits(variants["history=3"].history) == bits(jax.tree_util.tree_map(lambda h: h[2 : (n // 3) * 3 : 3], base.history))


@pytest.mark.slow
def test_fit_progress_and_checkpoints_do_not_change_the_result(capsys: pytest.CaptureFixture, tmp_path) -> None:
    """jaxgd.fit: the same key gives the same bits with the progress bar on or off
    and with checkpoints every epoch (the reference is the plain run)."""
    rng = np.random.default_rng(9)
    data = (rng.normal(size=(30, 4)), rng.normal(size=30))
    fun = lambda p, b: loss(p, b[0], b[1])  # noqa: E731
    kw = dict(batch_size=8, epochs=4, key=jax.random.key(1), method="rmsprop", lr=0.01, eval_data=data, patience=9)
    base = jaxgd.fit(fun, X0, data, progress=False, **kw)
    assert capsys.readouterr().err == ""
    bar = jaxgd.fit(fun, X0, data, progress=True, **kw)
    assert "jaxgd.fit" in capsys.readouterr().err
    ckpt = jaxgd.fit(fun, X0, data, progress=False, checkpoint_every=1, checkpoint_path=tmp_path / "f", **kw)
    assert bits(bar) == bits(base) and bits(ckpt) == bits(base)
