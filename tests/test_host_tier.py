"""The host tier (issue 14 item 1): a first ``minimize`` call run from Python over NumPy.

Reference: the compiled fused loop (``tier="compiled"``) on the same call. The host
loop repeats its steps over flat NumPy vectors, so the two agree to the rounding of
their reductions: on every problem here the same status, steps, evaluations and
history length, parameters and losses to a relative 1e-6 (float64; 1e-3 float32).
``tier="auto"`` is checked for what it promises: the first call runs on the host and
compiles one program (``value_and_grad``), the second queues the fused loop's compile
in the background, and once it has compiled, a call runs it (bit for bit
``tier="compiled"``, no compile); a script exiting during that compile exits cleanly.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
import textwrap
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from conftest import slow_if
from jaxgd.core import minimize_run
from jaxgd.host import loop as host_loop
from jaxgd.host import tier as host_tier

# -- problems: (loss, x0, args, options) -------------------------------------------------------
def rosen(x: jax.Array) -> jax.Array:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def least_squares(p: dict, a: jax.Array, y: jax.Array) -> jax.Array:
    r = a @ p["w"] + p["b"][None, :] - y
    return 0.5 * jnp.sum(r * r) + 0.01 * jnp.sum(p["w"] ** 4)


def with_aux(x: jax.Array) -> tuple:
    return jnp.sum((x - 1.0) ** 2 * jnp.arange(1.0, x.size + 1)) + jnp.sum(jnp.cos(x)), {"norm": jnp.linalg.norm(x)}


def kink(x: jax.Array) -> jax.Array:  # |x - 3| + 0.1 ||x||^2: not smooth at the answer (a stall or precision stop)
    return jnp.sum(jnp.abs(x - 3.0)) + 0.1 * jnp.sum(x * x)


def unbounded(x: jax.Array) -> jax.Array:  # -exp(-x): no minimum (a failure, or non-finite)
    return -jnp.sum(jnp.exp(-x))


def steep(x: jax.Array) -> jax.Array:  # exp grows past float range along the first direction: non-finite trials
    return jnp.sum(jnp.exp(3.0 * x) - 4.0 * x) + 0.5 * jnp.sum(x * x)


def _ls_data() -> tuple:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 3))
    return jnp.asarray(a), jnp.asarray(a @ np.array([[1.0, -1.0], [0.5, 2.0], [-1.5, 0.3]]) + 0.1 * rng.normal(size=(20, 2)))


CASES: dict[str, tuple[Callable, Callable[[], Any], Callable[[], tuple], dict]] = {
    "rosenbrock 2-D": (rosen, lambda: jnp.asarray([-1.2, 1.0]), tuple, {}),
    "rosenbrock 10-D": (rosen, lambda: jnp.asarray(np.tile([-1.2, 1.0], 5)), tuple, {}),
    "least squares, pytree, args": (least_squares, lambda: {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}, _ls_data, {}),
    "has_aux": (with_aux, lambda: jnp.zeros(4), tuple, {"has_aux": True}),
    "start at the minimum": (rosen, lambda: jnp.ones(3), tuple, {}),
    "max_steps 4, history every 2": (rosen, lambda: jnp.asarray([-1.2, 1.0, 0.5]), tuple, {"max_steps": 4, "history": 2}),
    "max_steps 0": (rosen, lambda: jnp.asarray([-1.2, 1.0]), tuple, {"max_steps": 0}),
    "ftol": (rosen, lambda: jnp.asarray([-1.2, 1.0]), tuple, {"ftol": 1e-4}),
    "xtol": (rosen, lambda: jnp.asarray([-1.2, 1.0]), tuple, {"xtol": 1e-3}),
    "gtol_norm inf": (rosen, lambda: jnp.asarray(np.tile([-1.2, 1.0], 3)), tuple, {"gtol_norm": float("inf"), "gtol": 1e-5}),
    "history off": (rosen, lambda: jnp.asarray([-1.2, 1.0]), tuple, {"history": False}),
    "non-finite trials": (steep, lambda: jnp.asarray([2.0, -1.0]), tuple, {}),
    "nan at the start": (lambda x: jnp.sum(jnp.log(x)), lambda: jnp.asarray([-1.0, 1.0]), tuple, {}),
}
# Where the runs may part: at a kink every trial near the answer is a coin toss of rounding, and
# past 1e307 XLA:CPU flushes subnormal numbers to zero (1 / ||g|| = 1e-308 becomes 0) where NumPy
# keeps them. There both must end the same way in kind, with a finite last point.
EDGE_CASES = {
    "non-smooth: stall or precision": (kink, lambda: jnp.zeros(3), tuple, {}),
    "unbounded below (past 1e307)": (unbounded, lambda: jnp.zeros(2), tuple, {"max_steps": 200}),
}
METHODS = ["lbfgs", "bfgs", "cg", "lbfgs(memory_size=3)", "cg(hs)"]
# make test runs lbfgs, bfgs and cg on every case; the short memory (a ring that wraps) and
# Hestenes-Stiefel CG (restarted every n steps) run in make slow
METHOD_PARAMS = [slow_if(m in ("lbfgs(memory_size=3)", "cg(hs)"), m, id=m) for m in METHODS]


def _method(name: str) -> Any:
    return {"lbfgs(memory_size=3)": jaxgd.directions.lbfgs(memory_size=3), "cg(hs)": jaxgd.directions.cg("hs")}.get(name, name)


@functools.lru_cache(maxsize=None)
def _both(case: str, method: str) -> tuple[jaxgd.Result, jaxgd.Result]:
    """Both tiers' results on one case (made once: the statuses test reads them again)."""
    fun, x0, args, options = {**CASES, **EDGE_CASES}[case]
    kw = {"method": _method(method), **options}
    host = jaxgd.minimize(fun, x0(), args(), tier="host", **kw)
    compiled = jaxgd.minimize(fun, x0(), args(), tier="compiled", **kw)
    return host, compiled


def _assert_same_run(host: jaxgd.Result, compiled: jaxgd.Result, rtol: float, history_rtol: float = 1e-3, types: bool = True) -> None:
    """The same ending, counts and answer; the histories to ``history_rtol``, normwise (the two runs'
    rounding differs in the last bits of a dot product, and an ill-conditioned problem amplifies
    that along the path: up to 3e-4 relative in Rosenbrock 10-D's losses; near the answer a
    gradient norm of 1e-5 that is mostly rounding differs by 10 %)."""
    assert host.status_enum == compiled.status_enum, (host, compiled)
    assert (int(host.steps), int(host.nfev), int(host.ngev)) == (int(compiled.steps), int(compiled.nfev), int(compiled.ngev))
    assert jax.tree_util.tree_structure(host.params) == jax.tree_util.tree_structure(compiled.params)
    for h, c in zip(jax.tree_util.tree_leaves(host.params), jax.tree_util.tree_leaves(compiled.params)):
        assert isinstance(h, jax.Array) and h.dtype == c.dtype and h.shape == c.shape
        np.testing.assert_allclose(np.asarray(h), np.asarray(c), rtol=rtol, atol=rtol * 1e-3)
    scale = max(abs(float(compiled.loss)), 1.0)
    assert abs(float(host.loss) - float(compiled.loss)) <= rtol * scale or (np.isnan(host.loss) and np.isnan(compiled.loss))
    norms = np.asarray(compiled.history.grad_norm)
    searched = norms >= np.sqrt(np.finfo(norms.dtype).eps) * np.max(norms, initial=0.0)
    for field in host.history._fields:
        h, c = np.asarray(getattr(host.history, field)), np.asarray(getattr(compiled.history, field))
        assert h.shape == c.shape and h.dtype == c.dtype, field
        if field == "lr":  # a step chosen where the gradient is above rounding (the last ones interpolate noise)
            h, c = h[searched], c[searched]
        scale = np.max(np.abs(c), initial=0.0)  # normwise: a row's error against the field's largest value
        np.testing.assert_allclose(h, c, rtol=history_rtol, atol=history_rtol * scale, err_msg=field)
    if not types:
        return
    # the same kinds of values (NumPy scalars for the scalars, jax arrays for the state's arrays)
    for field in ("loss", "grad_norm", "steps", "status", "nfev", "ngev"):
        assert type(getattr(host, field)) is type(getattr(compiled, field)), field
    assert jax.tree_util.tree_structure(host.state) == jax.tree_util.tree_structure(compiled.state)
    for h, c in zip(jax.tree_util.tree_leaves(host.state), jax.tree_util.tree_leaves(compiled.state)):
        assert (np.shape(h), jnp.result_type(h)) == (np.shape(c), jnp.result_type(c))
    # the quasi-Newton restart's vouch flag (state.stall): a NumPy scalar from both (the compiled run's
    # was a jax.Array: not packed with the state's other scalars)
    assert isinstance(host.state.stall, np.generic) == isinstance(compiled.state.stall, np.generic)


# make test: the cases that reach each status and feature once, each with lbfgs, bfgs or cg in
# turn (a checkerboard, every method on half of them); every pair (and the short memory) in make slow
SLOW_CASES = {"rosenbrock 2-D", "max_steps 0", "xtol", "gtol_norm inf", "history off"}
_FAST = [c for c in CASES if c not in SLOW_CASES]
PAIR_PARAMS = [
    slow_if(c in SLOW_CASES or m in ("lbfgs(memory_size=3)", "cg(hs)") or (_FAST.index(c) + j) % 2 == 1, c, m, id=f"{c}-{m}")
    for c in CASES for j, m in enumerate(METHODS)
]


@pytest.mark.parametrize("case,method", PAIR_PARAMS)
def test_host_run_is_the_compiled_run(case: str, method: str) -> None:
    """Reference: the fused loop (tier='compiled') on the same call. Nonlinear CG's path is
    chaotic on Rosenbrock (a difference in the last bit grows tenfold every ~4 steps: 1e-16 at
    step 5, 1e-7 at step 40, the runs end at 324 and 422 steps): for cg the same ending and
    answer, and the first 6 steps to 1e-7."""
    host, compiled = _both(case, method)
    if not method.startswith("cg"):
        _assert_same_run(host, compiled, 1e-6)
        return
    assert host.status_enum == compiled.status_enum, (host, compiled)
    for h, c in zip(jax.tree_util.tree_leaves(host.params), jax.tree_util.tree_leaves(compiled.params)):
        np.testing.assert_allclose(np.asarray(h), np.asarray(c), rtol=1e-5, atol=1e-5)
    k = min(6, int(host.steps), int(compiled.steps))
    for field in host.history._fields:
        h, c = np.asarray(getattr(host.history, field))[:k], np.asarray(getattr(compiled.history, field))[:k]
        np.testing.assert_allclose(h, c, rtol=1e-7, atol=1e-12, err_msg=field)


@pytest.mark.alternate("method")  # (every method in make slow)
@pytest.mark.parametrize("method", METHOD_PARAMS)
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_edge_cases_end_alike(case: str, method: str) -> None:
    """Reference: the fused loop. Both succeed or both fail, at a finite point; on the
    non-smooth problem both reach the same answer."""
    host, compiled = _both(case, method)
    assert host.success == compiled.success, (host, compiled)
    assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree_util.tree_leaves(host.params))
    if case.startswith("non-smooth"):
        np.testing.assert_allclose(np.asarray(host.params), np.asarray(compiled.params), atol=1e-6)


def _f32(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v, jnp.float32), tree)


@pytest.mark.alternate("method")
@pytest.mark.parametrize("method", ["lbfgs", "bfgs"])
@pytest.mark.parametrize("case", ["least squares, pytree, args", pytest.param("rosenbrock 10-D", marks=pytest.mark.slow)])
def test_float32_host_run_is_the_compiled_run(case: str, method: str, x64_off: Any) -> None:
    """float32 (x64 off, JAX's default). Reference: the fused loop. float32 rounding parts the
    two paths near the answer (a gradient norm of 1e-3 differs in its third digit between two
    summation orders): both succeed within 6 steps of each other at the same answer (bfgs on the
    least-squares case: 16 and 21 steps on an Intel Xeon, session 22; within 3 on AMD EPYCs)."""
    fun, x0, args, options = CASES[case]
    host = jaxgd.minimize(fun, _f32(x0()), _f32(args()), tier="host", method=method, **options)
    compiled = jaxgd.minimize(fun, _f32(x0()), _f32(args()), tier="compiled", method=method, **options)
    assert host.loss.dtype == np.float32 and all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(host.params))
    assert host.success and compiled.success and abs(int(host.steps) - int(compiled.steps)) <= 6, (host, compiled)
    for h, c in zip(jax.tree_util.tree_leaves(host.params), jax.tree_util.tree_leaves(compiled.params)):
        np.testing.assert_allclose(np.asarray(h), np.asarray(c), atol=2e-3)
    assert abs(float(host.loss) - float(compiled.loss)) <= 1e-5 * max(abs(float(compiled.loss)), 1.0)


@pytest.mark.slow
def test_the_statuses_cover_every_ending() -> None:
    """The problem set reaches the statuses the host loop writes (so the comparisons above test them)."""
    seen = {_both(case, m)[0].status_enum.name for case in {**CASES, **EDGE_CASES} for m in ("lbfgs", "bfgs")}
    assert {"GTOL", "MAX_STEPS", "FTOL", "XTOL", "NONFINITE"} <= seen, seen
    assert seen & {"PRECISION", "STALLED", "LINESEARCH_FAILED"}, seen


def test_progress_bar_from_the_host_loop(capsys: pytest.CaptureFixture) -> None:
    """progress=True runs on the host too: the bar ends where the compiled loop's does, saying why."""
    x0 = jnp.asarray(np.tile([-1.2, 1.0], 3))
    host = jaxgd.minimize(rosen, x0, method="lbfgs", progress=True, tier="host")
    host_bar = capsys.readouterr().err
    compiled = jaxgd.minimize(rosen, x0, method="lbfgs", progress=True, tier="compiled")
    compiled_bar = capsys.readouterr().err
    _assert_same_run(host, compiled, 1e-6)
    ending = f"converged: gtol at step {int(compiled.steps)}"
    assert ending in host_bar and ending in compiled_bar, (host_bar[-300:], compiled_bar[-300:])


def test_host_history_rows_grow_as_the_run_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host loop allocated max_steps' history rows before running (120 MB at max_steps=10**7 for a
    10-step run); it now starts small and doubles. Reference: the same run with room for every row
    (HISTORY_ROWS large), every period: the same history, bit for bit."""
    x0 = jnp.asarray(np.tile([-1.2, 1.0], 3))
    for every in (True, 3):
        monkeypatch.setattr(host_loop, "HISTORY_ROWS", 10**4)
        roomy = jaxgd.minimize(rosen, x0, method="lbfgs", history=every, max_steps=10**4, tier="host")
        monkeypatch.setattr(host_loop, "HISTORY_ROWS", 2)
        grown = jaxgd.minimize(rosen, x0, method="lbfgs", history=every, max_steps=10**4, tier="host")
        assert int(grown.steps) > 8 and len(grown.history.loss) == int(grown.steps) // (1 if every is True else every)
        for a, b in zip(grown.history, roomy.history):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_host_result_resumes_in_the_fused_loop() -> None:
    """The host run's state is the compiled loop's: resuming it after 6 steps ends where one
    compiled run of the whole budget does (reference: tier='compiled' without a stop)."""
    x0 = jnp.asarray(np.tile([-1.2, 1.0], 3))
    part = jaxgd.minimize(rosen, x0, method="lbfgs", max_steps=6, tier="host")
    assert part.status_enum == jaxgd.Status.MAX_STEPS and int(part.steps) == 6
    rest = jaxgd.minimize(rosen, x0, method="lbfgs", max_steps=200, resume=part)
    whole = jaxgd.minimize(rosen, x0, method="lbfgs", max_steps=200, tier="compiled")
    _assert_same_run(rest, whole, 1e-6, types=False)


@pytest.mark.slow  # (~12 s: make test time)
def test_a_large_host_result_resumes_in_the_compact_form() -> None:
    """Above limited_memory.TWO_LOOP_MAX parameters the fused loop computes H g in compact form
    from R^-1 kept step by step (push_inverse), which the host tier, running the two-loop
    recursion, does not keep: its Result's state gets R^-1 from its ring (inverse_by_slot). At
    600-D after 12 steps (the ring of 10 full and wrapped) that R^-1 is the fused loop's own to
    rounding, and the resumed run ends where one compiled run does (reference: tier='compiled')."""
    from jaxgd.directions import limited_memory

    def extended_rosen(x: jax.Array) -> jax.Array:  # independent 2-D Rosenbrock pairs: ~35 steps at any size
        return jnp.sum(100.0 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)

    n = 600
    assert n > limited_memory.TWO_LOOP_MAX
    x0 = jnp.asarray(np.tile([-1.2, 1.0], n // 2))
    part = jaxgd.minimize(extended_rosen, x0, method="lbfgs", max_steps=12, tier="host")
    same = jaxgd.minimize(extended_rosen, x0, method="lbfgs", max_steps=12, tier="compiled")
    mine, theirs = part.state.direction_state, same.state.direction_state
    assert int(mine.held) == int(theirs.held) == 10 and int(theirs.count) > 10
    scale = np.abs(np.asarray(theirs.rinv)).max()
    np.testing.assert_allclose(np.asarray(mine.rinv), np.asarray(theirs.rinv), rtol=1e-6, atol=1e-9 * scale)
    rest = jaxgd.minimize(extended_rosen, x0, method="lbfgs", max_steps=200, resume=part)
    whole = jaxgd.minimize(extended_rosen, x0, method="lbfgs", max_steps=200, tier="compiled")
    assert whole.status_enum == jaxgd.Status.GTOL
    _assert_same_run(rest, whole, 1e-6, types=False)


def test_auto_runs_the_first_call_on_the_host_then_the_fused_loop(compiles: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """tier='auto': the first call of a problem runs on the host and compiles one program
    (value_and_grad), and nothing else; the second runs on the host too and queues the fused
    loop's compile; after it, a call runs the fused loop, bit for bit tier='compiled', and
    compiles nothing."""
    host_runs: list = []
    real = host_loop.run
    monkeypatch.setattr(host_loop, "run", lambda *a, **k: host_runs.append(1) or real(*a, **k))

    def loss(x: jax.Array) -> jax.Array:  # a new function: nothing cached for it
        return rosen(x) + 0.0

    x0 = jnp.asarray([-1.2, 1.0, 0.3, 0.8])
    host_tier.wait()
    before = len(compiles)
    first = jaxgd.minimize(loss, x0, method="bfgs", tier="auto")
    assert host_runs == [1]
    assert len(compiles) - before == 1, "the host tier compiled more than value_and_grad"
    assert host_tier.wait(timeout=120) and len(compiles) - before == 1, "a one-off call queued a compile"
    second = jaxgd.minimize(loss, x0, method="bfgs", tier="auto")
    assert host_runs == [1, 1]
    assert host_tier.wait(timeout=120)
    after_background = len(compiles)
    assert after_background > before + 1  # the second call queued the fused loop's compile
    third = jaxgd.minimize(loss, x0, method="bfgs", tier="auto")
    assert host_runs == [1, 1] and len(compiles) == after_background, "the third call did not run the compiled loop"
    reference = jaxgd.minimize(loss, x0, method="bfgs", tier="compiled")
    for a, b in zip(jax.tree_util.tree_leaves(third), jax.tree_util.tree_leaves(reference)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree_util.tree_leaves(first), jax.tree_util.tree_leaves(second)):  # the host loop: deterministic
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _assert_same_run(first, third, 1e-6)
    # another shape is another problem: its first call runs on the host again
    jaxgd.minimize(loss, jnp.asarray([-1.2, 1.0]), method="bfgs", tier="auto")
    assert host_runs == [1, 1, 1]


def test_background_compile_keeps_the_callers_x64_mode(compiles: list, x64_off: Any) -> None:
    """Inside a ``jax.enable_x64(False)`` context (per thread) the background compile is of the
    caller's program: after it, a call compiles nothing."""

    def loss(x: jax.Array) -> jax.Array:
        return rosen(x) * 1.0

    x0 = jnp.asarray([-1.2, 1.0, 0.5], jnp.float32)
    for _ in range(2):
        jaxgd.minimize(loss, x0, method="lbfgs", tier="auto")
    assert host_tier.wait(timeout=120)
    before = len(compiles)
    r = jaxgd.minimize(loss, x0, method="lbfgs", tier="auto")
    assert len(compiles) == before and r.loss.dtype == np.float32 and r.success


def test_auto_compiles_a_problem_too_large_for_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above AUTO_MAX_SIZE parameters tier='auto' runs the fused loop from the first call
    (a dense BFGS step's NumPy work outweighs the compile); tier='host' still runs any size."""
    host_runs: list = []
    real = host_loop.run
    monkeypatch.setattr(host_loop, "run", lambda *a, **k: host_runs.append(1) or real(*a, **k))
    monkeypatch.setitem(host_tier.AUTO_MAX_SIZE, "bfgs", 3)
    x0 = jnp.asarray([-1.2, 1.0, 0.3, 0.8])
    big = jaxgd.minimize(rosen, x0, method="bfgs", tier="auto")
    assert host_runs == []
    host = jaxgd.minimize(rosen, x0, method="bfgs", tier="host")
    assert host_runs == [1]
    _assert_same_run(host, big, 1e-6)


@pytest.mark.slow  # a fresh process (~5 s)
def test_exit_during_a_background_compile_is_clean(tmp_path: Any) -> None:
    """A script that exits while the fused loop compiles in the background exits with 0 (the
    compile in flight is waited for; a daemon thread killed in jaxlib's frames aborted)."""
    import subprocess
    import sys

    script = tmp_path / "s.py"
    script.write_text(
        "import jax, jax.numpy as jnp, jaxgd\n"
        "f = lambda x: jnp.sum((x[1:] - x[:-1] ** 2) ** 2 * 100 + (1 - x[:-1]) ** 2)\n"
        "for _ in range(2): r = jaxgd.minimize(f, jnp.zeros(6), method='lbfgs')\n"
        "print(r.success)\n"
    )
    for _ in range(2):
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]


@pytest.mark.slow
def test_exit_while_other_threads_keep_solving_does_not_wait_for_their_compiles(tmp_path: Any) -> None:
    """Daemon threads that keep solving new problems (each twice: a compile queued) while the main thread returns:
    the exit drained the queue once and waited for it to empty, which the threads kept refilling: up to 600 s (a user
    review in session 57). Queuing stops at exit now. Reference: the same script's wall time, bounded well below
    that (the process may still abort in JAX's frames as a daemon thread dies: JAX's own behaviour; not checked)."""
    import subprocess
    import sys
    import time

    script = tmp_path / "s.py"
    script.write_text(
        "import threading, time, jax.numpy as jnp, jaxgd\n"
        "KEEP = []\n"
        "def w(seed):\n"
        "    k = 0\n"
        "    while True:\n"
        "        k += 1\n"
        "        f = lambda x, k=k: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2) + k + seed\n"
        "        KEEP.append(f)\n"
        "        jaxgd.minimize(f, jnp.zeros(30), method='lbfgs'); jaxgd.minimize(f, jnp.zeros(30), method='lbfgs')\n"
        "for s in range(3):\n"
        "    threading.Thread(target=w, args=(s,), daemon=True).start()\n"
        "time.sleep(2)\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert time.perf_counter() - start < 60


def test_default_tier_is_auto_outside_the_suite() -> None:
    """The suite's conftest pins 'compiled'; the library's own default is 'auto' (None)."""
    import importlib.util
    from pathlib import Path

    import jaxgd.host.tier as t

    source = importlib.util.find_spec("jaxgd.host.tier").origin
    assert 'DEFAULT = "auto"' in Path(source).read_text()
    assert t.check(None) == t.DEFAULT and t.check("host") == "host"


def test_under_jit_auto_compiles() -> None:
    """Under a transformation the loop is part of the caller's program (no host run)."""
    out = jax.jit(lambda x: jaxgd.minimize(rosen, x, method="lbfgs", tier="auto").loss)(jnp.asarray([-1.2, 1.0]))
    assert float(out) < 1e-10


@pytest.mark.alternate("method")
@pytest.mark.parametrize("method", ["lbfgs", "cg"])
def test_under_a_trace_with_concrete_inputs_auto_compiles(method: str) -> None:
    """x0 and args concrete, the call itself traced (a jit closing over them; jax.eval_shape, as
    the Orbax recipe restores into): the host loop cannot run there (it raised
    TracerArrayConversionError); the result is the compiled tier's (reference)."""
    x0 = jnp.asarray([-1.2, 1.0])
    want = jaxgd.minimize(rosen, x0, method=method, tier="compiled")
    got = jax.jit(lambda s: jaxgd.minimize(rosen, x0, method=method).params * s)(1.0)
    # (nested in the caller's jit it compiles with JAX's default emitters: the same steps to rounding)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want.params), rtol=1e-12)
    shapes = jax.eval_shape(lambda: jaxgd.minimize(rosen, x0, method=method))
    assert shapes.params.shape == (2,) and shapes.loss.dtype == want.loss.dtype


# -- L-BFGS-B: lbfgs with bounds -----------------------------------------------------------------
def scaled_quadratic(x: jax.Array) -> jax.Array:  # curvatures over 1e4: the diagonal B0 turns on
    return jnp.sum(jnp.logspace(0.0, 4.0, x.size) * (x - 1.0) ** 2) + 0.1 * jnp.sum(x ** 4)


BOUNDED_CASES: dict[str, tuple[Callable, Callable[[], Any], Callable[[], tuple], dict]] = {
    "rosenbrock 5-D, box active": (rosen, lambda: jnp.full(5, 0.5), tuple, {"bounds": (0.0, 0.7)}),
    "one-sided upper bound, ftol": (rosen, lambda: jnp.full(4, 0.5), tuple, {"bounds": (None, 0.7), "ftol": 1e-4}),
    "one-sided lower bound, gtol_norm 2": (rosen, lambda: jnp.asarray([-1.2, 1.0, 0.8]), tuple,
                                           {"bounds": (0.9, None), "gtol_norm": 2}),
    "x0 outside the box": (rosen, lambda: jnp.asarray([-3.0, 3.0, 0.0, 5.0]), tuple, {"bounds": (-2.0, 2.0)}),
    "a fixed variable (lower == upper)": (rosen, lambda: jnp.full(4, 0.5), tuple,
                                          {"bounds": (jnp.asarray([0.5, -9.0, -9.0, -9.0]),
                                                      jnp.asarray([0.5, 9.0, 9.0, 9.0]))}),
    "pytree bounds, args": (least_squares, lambda: {"w": jnp.zeros((3, 2)), "b": jnp.zeros(2)}, _ls_data,
                            {"bounds": ({"w": -0.4, "b": -np.inf}, {"w": 1.2, "b": 0.05})}),
    "diagonal B0 (badly scaled)": (scaled_quadratic, lambda: jnp.zeros(12), tuple,
                                   {"bounds": (-1.0, 0.9), "method": jaxgd.directions.lbfgs(scaling="diagonal")}),
    "scalar B0, memory 3": (rosen, lambda: jnp.asarray(np.tile([-1.2, 1.0], 4)), tuple,
                            {"bounds": (-1.5, 1.5), "method": jaxgd.directions.lbfgs(memory_size=3, scaling="scalar")}),
    "max_steps 4, history every 2": (rosen, lambda: jnp.asarray([-1.2, 1.0, 0.5]), tuple,
                                      {"bounds": (-2.0, 2.0), "max_steps": 4, "history": 2}),
    "xtol": (rosen, lambda: jnp.asarray([-1.2, 1.0, 0.5]), tuple, {"bounds": (-2.0, 2.0), "xtol": 1e-3}),
    "non-smooth: precision": (kink, lambda: jnp.zeros(3), tuple, {"bounds": (-1.0, 5.0)}),
    "unbounded below: a failed search": (unbounded, lambda: jnp.zeros(2), tuple,
                                         {"bounds": (None, 5.0), "max_steps": 200}),
    "has_aux": (with_aux, lambda: jnp.zeros(4), tuple, {"has_aux": True, "bounds": (0.5, 3.0)}),
    "start at the minimum": (rosen, lambda: jnp.ones(3), tuple, {"bounds": (0.0, 2.0)}),
    "non-finite trials": (steep, lambda: jnp.asarray([2.0, -1.0]), tuple, {"bounds": (-1e3, 1e3)}),
    "nan at the start": (lambda x: jnp.sum(jnp.log(x)), lambda: jnp.asarray([-1.0, 1.0]), tuple,
                         {"bounds": (-2.0, 2.0)}),
}
# make test: every other case (the rest in make slow)
# (and three more of 6-7 s each, for make test's time: their endings are covered by the other fast cases)
BOUNDED_SLOW = ("diagonal B0 (badly scaled)", "max_steps 4, history every 2", "one-sided lower bound, gtol_norm 2")
BOUNDED_PARAMS = [slow_if(i % 2 == 1 or c in BOUNDED_SLOW, c, id=c) for i, c in enumerate(BOUNDED_CASES)]


def _bounded(case: str, **extra: Any) -> tuple[jaxgd.Result, jaxgd.Result]:
    fun, x0, args, options = BOUNDED_CASES[case]
    kw = {"method": "lbfgs", **options, **extra}
    host = jaxgd.minimize(fun, x0(), args(), tier="host", **kw)
    return host, jaxgd.minimize(fun, x0(), args(), tier="compiled", **kw)


def _assert_within(params: Any, bounds: tuple) -> None:
    """Every parameter inside ``bounds`` (scalars, arrays or pytrees like ``params``; None: no bound)."""

    def side(b: Any, fill: float) -> list:
        if b is None:
            b = fill
        if isinstance(b, dict):
            pairs = zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(b))
            return [np.broadcast_to(np.asarray(v), p.shape) for p, v in pairs]
        return [np.broadcast_to(np.asarray(b), p.shape) for p in jax.tree_util.tree_leaves(params)]

    for p, lo, hi in zip(jax.tree_util.tree_leaves(params), side(bounds[0], -np.inf), side(bounds[1], np.inf)):
        lo, hi = lo.astype(p.dtype), hi.astype(p.dtype)  # (a float32 run's bounds are float32's)
        assert np.all(np.asarray(p) >= lo) and np.all(np.asarray(p) <= hi), (p, lo, hi)


@pytest.mark.parametrize("case", BOUNDED_PARAMS)
def test_host_lbfgsb_is_the_compiled_lbfgsb(case: str) -> None:
    """Reference: the fused loop's L-BFGS-B (tier='compiled') on the same call: the same ending,
    steps, evaluations, state types and answer (1e-6), inside the bounds."""
    host, compiled = _bounded(case)
    if case.startswith("non-smooth"):
        # At the kink the last trials' steps are rounding: both tiers reach the answer, and which of the two
        # kink endings each reads (PRECISION, or a failed search whose message names a non-smooth loss) is
        # decided by that rounding, which differs between CPUs (NumPy's SIMD sums on the host: on a Zen 4 both
        # tiers ended PRECISION; on a Zen 3 the host's search failed at step 19, the compiled loop's at 117)
        kink_endings = {jaxgd.Status.PRECISION, jaxgd.Status.LINESEARCH_FAILED}
        assert {host.status_enum, compiled.status_enum} <= kink_endings, (host, compiled)
        for r in (host, compiled):
            assert r.success or "may not be smooth" in r.message, r.message
            np.testing.assert_allclose(np.asarray(r.params), 3.0, atol=1e-6)  # the closed form: x = 3 at the kink
    else:
        _assert_same_run(host, compiled, 1e-6)
    _assert_within(host.params, BOUNDED_CASES[case][3]["bounds"])


@pytest.mark.slow
def test_host_lbfgsb_statuses_cover_the_endings() -> None:
    """The bounded cases reach every status L-BFGS-B writes on the host (so the comparison above tests them).
    PRECISION is the kink case's on some CPUs only (Zen 4; on Zen 3 its host search fails first, see the
    comparison's note): test_float32_lbfgsb_failed_search_at_the_answer_is_precision covers the host's PRECISION
    on both tiers."""
    seen = {_bounded(c)[0].status_enum.name for c in BOUNDED_CASES}
    assert {"GTOL", "FTOL", "XTOL", "MAX_STEPS", "NONFINITE", "LINESEARCH_FAILED"} <= seen, seen


def test_float32_host_lbfgsb_is_the_compiled_lbfgsb(x64_off: Any) -> None:
    """float32 (x64 off). Reference: the fused loop's L-BFGS-B. As for the unconstrained methods,
    float32 rounding may part the paths near the answer: both succeed within 6 steps of each other
    at the same answer, inside the box."""
    fun, x0, args, options = BOUNDED_CASES["pytree bounds, args"]
    kw = {"method": "lbfgs", **options}
    host = jaxgd.minimize(fun, _f32(x0()), _f32(args()), tier="host", **kw)
    compiled = jaxgd.minimize(fun, _f32(x0()), _f32(args()), tier="compiled", **kw)
    assert host.loss.dtype == np.float32 and all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(host.params))
    # every state leaf in the compiled run's dtype (NumPy's where(v, 0.0, 1.0) is float64: it made the host's
    # float32 steps float64, x moving by 1e-11 where float32 cannot, ten such steps ending in PRECISION)
    for h, c in zip(jax.tree_util.tree_leaves(host.state), jax.tree_util.tree_leaves(compiled.state)):
        assert np.asarray(h).dtype == np.asarray(c).dtype, (h, c)  # (NumPy's dtypes: JAX's x64-off view is float32)
    assert host.success and compiled.success and abs(int(host.steps) - int(compiled.steps)) <= 6, (host, compiled)
    for h, c in zip(jax.tree_util.tree_leaves(host.params), jax.tree_util.tree_leaves(compiled.params)):
        np.testing.assert_allclose(np.asarray(h), np.asarray(c), atol=2e-3)
    _assert_within(host.params, options["bounds"])


@pytest.mark.slow
def test_a_host_lbfgsb_result_resumes_in_the_fused_loop() -> None:
    """The host L-BFGS-B run's state (its compact memory, the rule's counts) is the compiled
    loop's: resuming it after 6 steps ends where one compiled run of the whole budget does
    (reference: tier='compiled' without a stop)."""
    x0, bounds = jnp.asarray(np.tile([-1.2, 1.0], 3)), (-1.5, 0.9)
    part = jaxgd.minimize(rosen, x0, method="lbfgs", bounds=bounds, max_steps=6, tier="host")
    assert part.status_enum == jaxgd.Status.MAX_STEPS and int(part.steps) == 6
    rest = jaxgd.minimize(rosen, x0, method="lbfgs", bounds=bounds, max_steps=200, resume=part)
    whole = jaxgd.minimize(rosen, x0, method="lbfgs", bounds=bounds, max_steps=200, tier="compiled")
    _assert_same_run(rest, whole, 1e-6, types=False)


def test_auto_runs_a_bounded_first_call_on_the_host(compiles: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """tier='auto' with bounds (L-BFGS-B): the first call runs on the host and compiles one
    program, value_and_grad (the fused loop's compile took 1.2-2 s a problem on sif2jax's
    bounded set); reference for its answer: tier='compiled'."""
    host_runs: list = []
    real = host_loop.run
    monkeypatch.setattr(host_loop, "run", lambda *a, **k: host_runs.append(1) or real(*a, **k))

    def loss(x: jax.Array) -> jax.Array:  # a new function: nothing cached for it
        return rosen(x) - 0.0

    x0 = jnp.asarray([-1.2, 1.0, 0.3, 0.8])
    host_tier.wait()
    before = len(compiles)
    first = jaxgd.minimize(loss, x0, method="lbfgs", bounds=(-0.5, 0.8), tier="auto")
    assert host_runs == [1] and len(compiles) - before == 1, "the host tier compiled more than value_and_grad"
    # above L-BFGS-B's own size limit (AUTO_MAX_SIZE["lbfgs+bounds"], below lbfgs's): the fused loop, whatever
    # the problem's record says (the size is read first); its run is also the reference for the host's answer
    # (one compile of the fused loop serves both: tier='compiled' then runs it again, bit for bit)
    monkeypatch.setitem(host_tier.AUTO_MAX_SIZE, "lbfgs+bounds", 3)
    fused = jaxgd.minimize(loss, x0, method="lbfgs", bounds=(-0.5, 0.8), tier="auto")
    assert host_runs == [1]
    compiled = jaxgd.minimize(loss, x0, method="lbfgs", bounds=(-0.5, 0.8), tier="compiled")
    for a, b in zip(jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(compiled)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _assert_same_run(first, compiled, 1e-6)
    jaxgd.minimize(loss, x0, method="lbfgs", tier="auto")  # (without bounds: lbfgs's limit, another program)
    assert host_runs == [1, 1]


@pytest.mark.slow
def test_auto_moves_to_the_fused_loop_across_option_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep of gtol values, or bounds given as arrays (unhashable: a new Solver every call), ran every call on
    the host (0.7 s a call where the fused loop takes 0.06 s at 1,000-D): the tier's record was kept per set of
    options and began empty for each (a user review in session 57). It is kept per compiled program now.
    Reference: the count of host runs (a spy on the host loop) and tier='compiled''s answer."""
    host_runs: list = []
    real = host_loop.run
    monkeypatch.setattr(host_loop, "run", lambda *a, **k: host_runs.append(1) or real(*a, **k))

    def loss(x: jax.Array) -> jax.Array:  # a new function: nothing cached for it
        return rosen(x) * 1.0 + 0.0

    x0 = jnp.asarray([-1.2, 1.0, 0.3, 0.8])
    host_tier.wait()
    for gtol in (1e-5, 1e-6):
        jaxgd.minimize(loss, x0, method="lbfgs", gtol=gtol, tier="auto")
    assert host_runs == [1, 1] and host_tier.wait(timeout=120)
    last = jaxgd.minimize(loss, x0, method="lbfgs", gtol=1e-7, tier="auto")
    assert host_runs == [1, 1], "a new gtol ran on the host after the fused loop had compiled"
    _assert_same_run(last, jaxgd.minimize(loss, x0, method="lbfgs", gtol=1e-7, tier="compiled"), 0.0)
    bounds = (np.full(4, -0.5), np.full(4, 0.8))
    for _ in range(2):
        jaxgd.minimize(loss, x0, method="lbfgs", bounds=bounds, tier="auto")
    assert len(host_runs) == 4 and host_tier.wait(timeout=120)
    jaxgd.minimize(loss, x0, method="lbfgs", bounds=(np.full(4, -0.5), np.full(4, 0.8)), tier="auto")
    assert len(host_runs) == 4, "array bounds ran on the host after the fused loop had compiled"


@pytest.mark.slow
def test_a_failed_background_compile_keeps_the_problem_on_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """A background compile that raises (out of memory, say) leaves the problem on the host tier, which works:
    the record says "host" (it said "compiling" for ever, and the code's comment promised a foreground compile
    that raised). Reference: tier='compiled''s answer (the host loop agrees with it to rounding) and a spy on the
    host loop."""
    host_runs: list = []
    real = host_loop.run
    monkeypatch.setattr(host_loop, "run", lambda *a, **k: host_runs.append(1) or real(*a, **k))

    def broken(*args: Any) -> None:
        raise MemoryError("no room for the fused loop")

    monkeypatch.setattr(minimize_run.Plan, "precompile", broken)

    def loss(x: jax.Array) -> jax.Array:  # a new function: nothing cached for it
        return rosen(x) * 1.0 - 0.0

    x0 = jnp.asarray([-1.2, 1.0, 0.3, 0.8])
    host_tier.wait()
    for _ in range(2):
        jaxgd.minimize(loss, x0, method="bfgs", tier="auto")
    assert host_tier.wait(timeout=120)
    assert list(host_tier._records(loss).values()) == ["host"]
    third = jaxgd.minimize(loss, x0, method="bfgs", tier="auto")
    assert host_runs == [1, 1, 1] and host_tier.wait(timeout=120)
    _assert_same_run(third, jaxgd.minimize(loss, x0, method="bfgs", tier="compiled"), 1e-6)


def price4(y: jax.Array) -> jax.Array:
    """Price's function 4 as sif2jax's PRICE4B writes it: minima f = 0 at (0, 0), (2, 4) and (1.464, -2.506)."""
    x1, x2 = y
    f1 = 2.0 * x2 * x1**3 - x2**3
    f2 = 6.0 * x1 + x2 - x2**2
    return f1**2 + f2**2


@pytest.mark.parametrize("tier", ["host", "compiled"])
def test_float32_lbfgsb_failed_search_at_the_answer_is_precision(tier: str, x64_off: Any) -> None:
    """Reference: Price 4's closed-form minimum (2, 4), f = 0. Float32 L-BFGS-B reaches it in 20 steps;
    there the search along -g (the memory forgotten) fails at f's rounding, its first trial moving x
    without the fall the slope predicted, and the projected gradient 2-12x above the norm test's
    bound (it was LINESEARCH_FAILED, sif2jax's PRICE4B in benchmark K): the grid rule's PRECISION, a
    success, on both tiers (or GTOL on a CPU whose rounding lands there). Far from any answer a
    failed search stays a failure (-exp(-x) without a lower bound)."""
    bounds = (jnp.full(2, -50.0, jnp.float32), jnp.full(2, 50.0, jnp.float32))
    r = jaxgd.minimize(price4, jnp.asarray([1.0, 5.0], jnp.float32), method="lbfgs", bounds=bounds, tier=tier)
    assert r.success, r
    np.testing.assert_allclose(np.asarray(r.params), [2.0, 4.0], atol=1e-5)
    assert float(r.loss) < 1e-9
    far = jaxgd.minimize(unbounded, jnp.zeros(2, jnp.float32), method="lbfgs", bounds=(None, 5.0), max_steps=200,
                         tier=tier)
    assert far.status_enum == jaxgd.Status.LINESEARCH_FAILED, far


def test_host_dot_products_are_sums_of_chunks_on_the_calling_thread() -> None:
    """Reference: ``math.fsum`` of the products (the exact sum, rounded once). Over CHUNK entries the host tier's
    dot product is the chunks' ``np.dot``s summed in order: as accurate as one ``np.dot`` (n eps), and never run on
    OpenBLAS's thread pool (a dot product of more than 10,000 entries is: on a loaded machine 1.4 ms a call against
    3.5 us, a 16,000-D ``lbfgs`` host run 129 s against 8 s)."""
    from jaxgd.host import directions as host_directions

    rng = np.random.default_rng(0)
    for n in (3, host_directions.CHUNK, host_directions.CHUNK + 1, 2 * host_directions.CHUNK + 5, 40_000):
        for dtype in (np.float64, np.float32):
            a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
            got = host_directions.dot(a, b)
            exact = math.fsum((a.astype(np.float64) * b.astype(np.float64)).tolist())
            assert got.dtype == dtype
            assert abs(float(got) - exact) <= n * np.finfo(dtype).eps * float(np.abs(a) @ np.abs(b))
            parts = [np.dot(a[i:i + host_directions.CHUNK], b[i:i + host_directions.CHUNK])
                     for i in range(0, n, host_directions.CHUNK)]
            assert float(got) == float(functools.reduce(lambda s, t: s + t, parts))


@pytest.mark.slow
def test_host_run_is_the_same_for_any_blas_thread_count() -> None:
    """Reference: the same host-tier run in a process whose OpenBLAS runs one thread. A 12,000-D ``lbfgs`` run
    (dot products over 10,000 entries, which OpenBLAS splits over its threads, each thread count rounding its
    own way) ends at the same bits with ``OPENBLAS_NUM_THREADS`` 1 and 2: the host tier's dot products run on
    the calling thread."""
    script = textwrap.dedent(
        """
        import hashlib, jax, jax.numpy as jnp, numpy as np, jaxgd
        jax.config.update("jax_enable_x64", True)
        f = lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        r = jaxgd.minimize(f, jnp.asarray(np.tile([-1.2, 1.0], 6000)), method="lbfgs", tier="host", max_steps=40)
        print(int(r.steps), hashlib.sha256(np.asarray(r.params).tobytes()).hexdigest())
        """
    )
    runs = []
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads,
                   PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
        done = subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300, capture_output=True,
                              text=True)
        runs.append(done.stdout.split())
    assert runs[0][0] == "40" and runs[0] == runs[1], runs
