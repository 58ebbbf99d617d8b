"""Checkpoints: round trips, bit-for-bit resume, atomic writes, no code on load.

The reference for "resume" is the run that was never interrupted: every leaf
of the two :class:`jaxgd.Result` objects (params, loss, history, status,
steps, the whole solver state) must be bit-identical, dtypes included.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.checkpoint import format as _checkpoint
from conftest import Crash, assert_bitwise
from jaxgd.checkpoint.format import CheckpointError, TreeMismatchError, checkpoint_info, load_checkpoint, save_checkpoint

# One problem, written once, run here and in a fresh process (exec'd there).
PROBLEM = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    A = jnp.asarray(np.random.default_rng(0).normal(size=(6, 3)))
    B = jnp.asarray(np.random.default_rng(1).normal(size=(2, 2)), jnp.float32)

    def loss(p, A, B):
        r = A @ p["w"] - 1.0
        q = B @ p["v"][0]
        return jnp.sum(r * r) + 0.1 * jnp.sum(jnp.cos(p["w"])) + jnp.sum(q * q).astype(r.dtype) + p["v"][1] ** 2

    X0 = {"w": jnp.zeros(3), "v": (jnp.ones(2, jnp.float32), jnp.asarray(0.5))}
    """
)
_NS: dict = {}
exec(PROBLEM, _NS)
loss, A, B, X0 = _NS["loss"], _NS["A"], _NS["B"], _NS["X0"]
ARGS = (A, B)

CASES = {
    "gd-jaxgd-schedule-l1": dict(method="gd", lr=jaxgd.schedules.step_decay(0.02, 9, 0.5), l1=0.01),
    "adam-optax-schedule-history2": dict(method="adam", lr=optax.exponential_decay(0.05, 7, 0.5), history=2),
}


# -- resume: bit for bit ---------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_resume_after_crash_is_bit_for_bit(case: str, tmp_path, crash_after, monkeypatch) -> None:
    kw = dict(CASES[case], max_steps=40, gtol=0.0)
    path = tmp_path / "run.ckpt"
    uninterrupted = jaxgd.minimize(loss, X0, ARGS, **kw)
    assert uninterrupted.status_enum == jaxgd.Status.MAX_STEPS and int(uninterrupted.steps) == 40

    # The same run with checkpoints every 7 steps is unchanged.
    assert_bitwise(jaxgd.minimize(loss, X0, ARGS, checkpoint_every=7, checkpoint_path=path, **kw), uninterrupted)

    # Dies after the 3rd checkpoint (step 21), then resumes from the file.
    crash_after(3)
    with pytest.raises(Crash):
        jaxgd.minimize(loss, X0, ARGS, checkpoint_every=7, checkpoint_path=path, **kw)
    monkeypatch.undo()
    info = checkpoint_info(path)
    assert info["metadata"]["steps"] == 21 and info["metadata"]["status"] == "RUNNING"
    resumed = jaxgd.minimize(loss, X0, ARGS, resume=path, checkpoint_every=7, checkpoint_path=path, **kw)
    assert_bitwise(resumed, uninterrupted)
    assert checkpoint_info(path)["metadata"]["steps"] == 40


@pytest.mark.slow
def test_extend_a_finished_run_from_its_result() -> None:
    kw = dict(method="momentum", lr=optax.cosine_decay_schedule(0.01, 60), gtol=0.0)
    longer = jaxgd.minimize(loss, X0, ARGS, max_steps=60, **kw)
    first = jaxgd.minimize(loss, X0, ARGS, max_steps=25, **kw)
    assert first.status_enum == jaxgd.Status.MAX_STEPS and first.history.loss.shape == (25,)
    assert_bitwise(jaxgd.minimize(loss, X0, ARGS, max_steps=60, resume=first, **kw), longer)


@pytest.mark.slow  # (~6 s: make test time)
def test_lbfgs_compact_form_resumes_from_a_file_bit_for_bit(tmp_path) -> None:
    """Above limited_memory.TWO_LOOP_MAX parameters lbfgs's state holds R^-1 (its compact form):
    a 600-D run saved after 12 steps (its ring full and wrapped) and resumed from the file ends
    with the bits of the run that never stopped (reference: one uninterrupted run)."""
    def extended_rosen(x: jax.Array) -> jax.Array:
        return jnp.sum(100.0 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)

    x0 = jnp.asarray(np.tile([-1.2, 1.0], 300))
    kw = dict(method="lbfgs", tier="compiled")
    whole = jaxgd.minimize(extended_rosen, x0, max_steps=200, **kw)
    part = jaxgd.minimize(extended_rosen, x0, max_steps=12, **kw)
    assert part.state.direction_state.rinv.shape == (10, 10) and int(part.state.direction_state.count) > 10
    save_checkpoint(tmp_path / "lbfgs.ckpt", part)
    resumed = jaxgd.minimize(extended_rosen, x0, max_steps=200, resume=tmp_path / "lbfgs.ckpt", **kw)
    assert whole.status_enum == jaxgd.Status.GTOL
    assert_bitwise(resumed, whole)


def test_resume_a_converged_run_changes_nothing() -> None:
    quad = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    done = jaxgd.minimize(quad, jnp.zeros(2), lr=0.5, max_steps=50)
    assert done.status_enum == jaxgd.Status.GTOL
    assert_bitwise(jaxgd.minimize(quad, jnp.zeros(2), lr=0.5, max_steps=50, resume=done), done)


@pytest.mark.slow
def test_resume_in_a_fresh_process_is_bit_for_bit(tmp_path, crash_after, monkeypatch) -> None:
    kw = dict(method="gd", lr=0.01, max_steps=30, gtol=0.0)
    path, out = tmp_path / "run.ckpt", tmp_path / "resumed.ckpt"
    uninterrupted = jaxgd.minimize(loss, X0, ARGS, **kw)
    crash_after(2)
    with pytest.raises(Crash):
        jaxgd.minimize(loss, X0, ARGS, checkpoint_every=10, checkpoint_path=path, **kw)
    monkeypatch.undo()
    script = PROBLEM + textwrap.dedent(
        f"""
        import jaxgd
        from jaxgd.checkpoint.format import save_checkpoint
        res = jaxgd.minimize(loss, X0, (A, B), resume={str(path)!r}, **{kw!r})
        save_checkpoint({str(out)!r}, res)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    like = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), uninterrupted)
    assert_bitwise(load_checkpoint(out, like), uninterrupted)


def test_checkpoints_are_written_every_k_steps_and_at_a_stop(tmp_path, monkeypatch) -> None:
    steps = []
    real = _checkpoint.save_checkpoint
    monkeypatch.setattr(_checkpoint, "save_checkpoint", lambda p, t, **k: (steps.append(int(t.steps)), real(p, t, **k))[1])

    def quad(x: jax.Array) -> tuple[jax.Array, dict]:  # with aux: it is saved too
        return jnp.sum((x - 3.0) ** 2), {"residual": x - 3.0}

    kw = dict(lr=0.1, max_steps=200, has_aux=True)
    res = jaxgd.minimize(quad, jnp.zeros(2), checkpoint_every=25, checkpoint_path=tmp_path / "q", **kw)
    assert res.status_enum == jaxgd.Status.GTOL and 25 < int(res.steps) < 200
    assert steps[:-1] == list(range(25, 25 * len(steps), 25)) and steps[-1] == int(res.steps)
    # the file keeps the history rows of the steps run (the buffer has max_steps' rows): res is its like
    assert [e["shape"] for e in checkpoint_info(tmp_path / "q")["leaves"] if e["path"] == ".history.loss"] == [(int(res.steps),)]
    assert_bitwise(jaxgd.minimize(quad, jnp.zeros(2), **kw), load_checkpoint(tmp_path / "q", like=res))
    # checkpoint_path alone: one write, at the end.
    steps.clear()
    jaxgd.minimize(quad, jnp.zeros(2), checkpoint_path=tmp_path / "q", **kw)
    assert steps == [int(res.steps)]


def test_solver_resume_under_jit_with_a_loaded_checkpoint(tmp_path) -> None:
    solver = jaxgd.Solver(loss, "nesterov", 0.01, max_steps=30, gtol=0.0)
    full = jax.jit(lambda s, x: s.run(x, *ARGS))(solver, X0)
    part = jax.jit(lambda s, x: s.resume(s.start(x, *ARGS), *ARGS, stop=12))(solver, X0)
    assert int(part.steps) == 12 and part.status_enum == jaxgd.Status.RUNNING
    save_checkpoint(tmp_path / "s.ckpt", part)
    loaded = load_checkpoint(tmp_path / "s.ckpt", like=jax.eval_shape(lambda: solver.start(X0, *ARGS)))
    assert_bitwise(jax.jit(lambda s, r: s.resume(r, *ARGS))(solver, loaded), full)


def test_solver_resume_rejects_a_foreign_state() -> None:
    # Shapes and dtypes are all check_resumable looks at: an abstract Result will do.
    res = jax.eval_shape(lambda: jaxgd.Solver(loss, "adam", 0.01, max_steps=3).run(X0, *ARGS))
    with pytest.raises(TreeMismatchError, match=r"direction_state"):
        jaxgd.Solver(loss, "momentum", 0.01, max_steps=3).resume(res, *ARGS)
    with pytest.raises(TypeError, match="result must be a jaxgd.Result"):
        jaxgd.Solver(loss, "adam", 0.01).resume(res.state, *ARGS)


# -- the format ----------------------------------------------------------------
class Pair(NamedTuple):
    left: Any
    right: Any


def _zoo() -> dict:
    return {
        "f64": jnp.linspace(-1.0, 1.0, 5),
        "f32": jnp.arange(6, dtype=jnp.float32).reshape(2, 3),
        "f16": jnp.asarray([1.5, -2.0], jnp.float16),
        "bf16": jnp.asarray([0.1, 3.0], jnp.bfloat16),
        "ints": [jnp.asarray(7, jnp.int32), np.arange(3, dtype=np.int8), np.uint64(2**63 + 5)],
        "flags": (np.array([True, False]), jnp.zeros((0, 2))),
        "c64": jnp.asarray([1 + 2j], jnp.complex64),
        "keys": Pair(jax.random.key(3), jax.random.PRNGKey(4)),
        "nan": jnp.asarray([np.nan, np.inf, -0.0]),
        "none": None,
        "num": 2.5,
    }


def test_round_trip_any_pytree(tmp_path) -> None:
    tree = _zoo()
    save_checkpoint(tmp_path / "z", tree, metadata={"epoch": 3})
    back = load_checkpoint(tmp_path / "z", like=tree)
    typed = back["keys"].left
    assert jnp.issubdtype(typed.dtype, jax.dtypes.prng_key) and jax.random.key_impl(typed) == jax.random.key_impl(tree["keys"].left)
    unkey = lambda t: dict(t, keys=Pair(jax.random.key_data(t["keys"].left), t["keys"].right), num=np.asarray(t["num"]))  # noqa: E731
    assert_bitwise(unkey(back), unkey(tree))
    assert checkpoint_info(tmp_path / "z")["metadata"] == {"epoch": 3}
    flat = load_checkpoint(tmp_path / "z")
    assert flat["['bf16']"].dtype == jnp.bfloat16 and flat["['ints'][2]"] == np.uint64(2**63 + 5)


def test_mismatch_names_the_leaf(tmp_path) -> None:
    tree = {"a": jnp.zeros(3), "b": {"c": jnp.zeros((2, 2), jnp.float32)}}
    save_checkpoint(tmp_path / "t", tree)
    with pytest.raises(TreeMismatchError, match=r"\['b'\]\['c'\]: expected shape \(2, 3\) dtype float32, found shape \(2, 2\) dtype float32"):
        load_checkpoint(tmp_path / "t", like={"a": jnp.zeros(3), "b": {"c": jnp.zeros((2, 3), jnp.float32)}})
    with pytest.raises(TreeMismatchError, match=r"\['a'\]: expected shape \(3,\) dtype float32, found shape \(3,\) dtype float64"):
        load_checkpoint(tmp_path / "t", like={"a": jnp.zeros(3, jnp.float32), "b": {"c": jnp.zeros((2, 2), jnp.float32)}})
    with pytest.raises(TreeMismatchError, match=r"missing leaves \['d'\].*unexpected leaves \['b'\]\['c'\]"):
        load_checkpoint(tmp_path / "t", like={"a": jnp.zeros(3), "d": jnp.zeros(1)})


# -- atomic writes ---------------------------------------------------------------
@pytest.mark.parametrize("failing", ["numpy.savez", "os.fsync", "os.replace"])
def test_a_crash_mid_write_leaves_the_previous_checkpoint(failing: str, tmp_path, monkeypatch) -> None:
    path = tmp_path / "state.ckpt"
    save_checkpoint(path, {"w": jnp.arange(3.0)})
    before = path.read_bytes()

    def die(*a: Any, **k: Any) -> None:
        if failing == "numpy.savez":  # half an archive reaches the disk, then the process dies
            a[0].write(b"PK\x03\x04 partial")
        raise OSError("simulated crash")

    monkeypatch.setattr(failing, die)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(path, {"w": jnp.arange(3.0) + 100})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["state.ckpt"]  # the temporary file is gone
    assert np.array_equal(load_checkpoint(path, like={"w": jnp.zeros(3)})["w"], np.arange(3.0))


# -- damaged files: clear errors, never code -------------------------------------
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.ckpt"
    save_checkpoint(path, {"w": jnp.arange(1000.0), "b": jnp.ones(2)})
    return path


def test_truncated_file(saved) -> None:
    data = saved.read_bytes()
    for n in (0, 10, len(data) // 2, len(data) - 5):
        saved.write_bytes(data[:n])
        with pytest.raises(CheckpointError, match="not a readable jaxgd checkpoint"):
            load_checkpoint(saved, like={"w": jnp.zeros(1000), "b": jnp.zeros(2)})


def test_flipped_byte_in_a_leaf(saved) -> None:
    data = bytearray(saved.read_bytes())
    i = data.index(np.arange(1000.0)[500:501].tobytes())
    data[i] ^= 0x40
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"leaf \['w'\] is corrupted"):
        load_checkpoint(saved, like={"w": jnp.zeros(1000), "b": jnp.zeros(2)})


def test_flipped_byte_in_the_header(saved) -> None:
    data = bytearray(saved.read_bytes())
    i = data.index(b'"format"')
    data[i + 2] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="header is corrupted"):
        load_checkpoint(saved, like={"w": jnp.zeros(1000), "b": jnp.zeros(2)})


UNPICKLED: list = []


def _ran(message: str) -> None:
    UNPICKLED.append(message)


class _Payload:
    def __reduce__(self):  # unpickling this runs code: _ran("code ran")
        return (_ran, ("code ran",))


def test_a_pickled_leaf_is_refused_without_running_it(saved, tmp_path) -> None:
    header = json.loads(np.load(saved)["__jaxgd_header__"].tobytes())
    evil = tmp_path / "evil.ckpt"
    with zipfile.ZipFile(evil, "w") as z:
        with z.open("__jaxgd_header__.npy", "w") as f:
            np.lib.format.write_array(f, np.frombuffer(json.dumps(header).encode(), np.uint8))
        for e in header["leaves"]:
            with z.open(e["member"] + ".npy", "w") as f:
                np.lib.format.write_array(f, np.array([_Payload()], dtype=object), allow_pickle=True)
    assert pickle.loads(pickle.dumps(_Payload())) is None and UNPICKLED == ["code ran"]  # the payload is live
    UNPICKLED.clear()
    with pytest.raises(CheckpointError, match=r"leaf \['b'\] is corrupted"):
        load_checkpoint(evil, like={"w": jnp.zeros(1000), "b": jnp.zeros(2)})
    assert UNPICKLED == []


def test_other_files_are_not_checkpoints(tmp_path) -> None:
    (tmp_path / "text").write_text("hello")
    np.save(tmp_path / "one.npy", np.zeros(2))
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a readable jaxgd checkpoint"):
        load_checkpoint(tmp_path / "text")
    with pytest.raises(CheckpointError, match="not an archive"):
        load_checkpoint(tmp_path / "one.npy")
    with pytest.raises(CheckpointError, match="not a jaxgd checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")


def test_unknown_version(tmp_path) -> None:
    header = {"format": "jaxgd-checkpoint", "version": 99, "treedef": "", "leaves": [], "metadata": {}}
    np.savez(tmp_path / "v.npz", __jaxgd_header__=np.frombuffer(json.dumps(header).encode(), np.uint8))
    with pytest.raises(CheckpointError, match="version 99 is not supported"):
        load_checkpoint(tmp_path / "v.npz")


def test_a_64_bit_leaf_that_x64_off_would_change_is_refused(tmp_path, x64_off) -> None:
    """NumPy float64/int64 leaves (checkpoint_info: their dtypes; np.load: their values) loaded with JAX's
    64-bit mode off came back as float32/int32, silently: 2**40 + 1 as 1, 1e300 as inf. Refused now,
    naming the leaf; a 64-bit leaf whose values float32/int32 hold exactly loads as before."""
    path = str(tmp_path / "wide.ckpt")
    save_checkpoint(path, {"f": np.array([1 / 3, 1e300]), "i": np.array([2**40 + 1])})
    with pytest.raises(CheckpointError, match=r"leaf \['f'\] is float64 in the file.*jax_enable_x64"):
        load_checkpoint(path, {"f": np.zeros(2), "i": np.zeros(1, np.int64)})
    exact = str(tmp_path / "exact.ckpt")
    save_checkpoint(exact, {"f": np.array([0.5, 2.0]), "i": np.array([7])})
    got = load_checkpoint(exact)
    np.testing.assert_array_equal(got["['f']"], [0.5, 2.0])
    np.testing.assert_array_equal(got["['i']"], [7])


def test_a_byte_swapped_leaf_is_saved_in_native_order(tmp_path) -> None:
    """Reference: the same values in native order (a '>f4' array was refused as a dtype a checkpoint cannot hold)."""
    path = str(tmp_path / "swapped.ckpt")
    a = np.arange(3, dtype=">f4")
    save_checkpoint(path, {"a": a})
    np.testing.assert_array_equal(load_checkpoint(path, {"a": np.zeros(3, np.float32)})["a"], a.astype(np.float32))


def test_any_corrupted_byte_is_a_checkpoint_error(tmp_path) -> None:
    """Every one-byte corruption of a small checkpoint either loads the same tree or raises CheckpointError
    (zipfile's NotImplementedError for an unknown version or compression method passed through)."""
    path = str(tmp_path / "good.ckpt")
    tree = {"w": np.arange(4.0, dtype=np.float32), "k": np.arange(3, dtype=np.int32)}
    save_checkpoint(path, tree)
    with open(path, "rb") as f:
        raw = f.read()
    bad = str(tmp_path / "bad.ckpt")
    for i in range(len(raw)):
        with open(bad, "wb") as f:
            f.write(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
        try:
            got = load_checkpoint(bad, tree)
        except CheckpointError:
            continue
        except TreeMismatchError:  # (a flipped header byte can name another leaf or shape: told apart, not wrong data)
            continue
        for k in tree:
            np.testing.assert_array_equal(got[k], tree[k])


def test_resume_with_a_tighter_gtol_continues_lbfgs() -> None:
    """(The fast case of the test below.) Reference: the quadratic's closed-form minimiser 3."""
    quad = lambda x: jnp.sum(jnp.arange(1.0, 4.0) * (x - 3.0) ** 2)  # noqa: E731
    loose = jaxgd.minimize(quad, jnp.zeros(3), method="lbfgs", gtol=1e-2, max_steps=50, tier="compiled")
    tight = jaxgd.minimize(quad, jnp.zeros(3), method="lbfgs", gtol=1e-8, max_steps=50, tier="compiled", resume=loose)
    assert loose.status_enum == tight.status_enum == jaxgd.Status.GTOL and float(loose.grad_norm) > 1e-3
    assert float(tight.grad_norm) <= 1e-8 and int(tight.steps) > int(loose.steps)
    np.testing.assert_allclose(tight.params, 3.0, rtol=1e-8)


@pytest.mark.slow
def test_resume_with_a_tighter_tolerance_continues(tmp_path) -> None:
    """README: tolerances are taken from the resuming call. A run converged at gtol=1e-2 and resumed with
    gtol=1e-8 came back as it was, a GTOL success at |g| = 5e-3. Reference: the closed-form minimiser 3 of
    the quadratic and a fresh run at gtol=1e-8 (same status, |g| within the call's gtol); with a checkpoint
    path too (its chunks continue), and an FTOL stop resumed without ftol continues."""
    quad = lambda x: jnp.sum(jnp.arange(1.0, 4.0) * (x - 3.0) ** 2)  # noqa: E731
    x0 = jnp.zeros(3)
    for method, kw in (("gd", dict(lr=0.1)), ("lbfgs", dict(tier="compiled"))):
        loose = jaxgd.minimize(quad, x0, method=method, gtol=1e-2, max_steps=500, **kw)
        assert loose.status_enum == jaxgd.Status.GTOL and float(loose.grad_norm) > 1e-3
        fresh = jaxgd.minimize(quad, x0, method=method, gtol=1e-8, max_steps=500, **kw)
        for extra in ({}, {"checkpoint_path": tmp_path / f"{method}.ckpt"}):
            tight = jaxgd.minimize(quad, x0, method=method, gtol=1e-8, max_steps=500, resume=loose, **kw, **extra)
            assert tight.status_enum == fresh.status_enum == jaxgd.Status.GTOL, (method, extra, tight.status_enum)
            assert float(tight.grad_norm) <= 1e-8 and int(tight.steps) > int(loose.steps)
            np.testing.assert_allclose(tight.params, 3.0, rtol=1e-8)
    stopped = jaxgd.minimize(quad, x0, lr=0.1, gtol=0.0, ftol=1e-3, max_steps=500)
    assert stopped.status_enum == jaxgd.Status.FTOL
    on = jaxgd.minimize(quad, x0, lr=0.1, gtol=1e-8, max_steps=500, resume=stopped)
    assert on.status_enum == jaxgd.Status.GTOL and int(on.steps) > int(stopped.steps)


def test_resume_with_another_history_period_is_refused() -> None:
    """A Result of a history=True run resumed with history=3 had its rows for steps 1-3 labelled steps 3, 6
    and 9 (reference: the uninterrupted run's every third row); a checkpoint file refuses the same change by
    name, and a Result now does too. The same period resumes the uninterrupted run's history exactly."""
    quad = lambda x: jnp.sum(jnp.asarray([1.0, 10.0, 100.0]) * (x - 1.0) ** 2)  # noqa: E731
    kw = dict(method="gd", lr=1e-3, gtol=0.0)
    first = jaxgd.minimize(quad, jnp.zeros(3), max_steps=10, **kw)
    with pytest.raises(ValueError, match="holds 10 recorded rows for its 10 steps, where this call's history=3 records 3"):
        jaxgd.minimize(quad, jnp.zeros(3), max_steps=30, history=3, resume=first, **kw)
    whole = jaxgd.minimize(quad, jnp.zeros(3), max_steps=30, history=3, **kw)
    part = jaxgd.minimize(quad, jnp.zeros(3), max_steps=10, history=3, **kw)
    np.testing.assert_array_equal(jaxgd.minimize(quad, jnp.zeros(3), max_steps=30, history=3, resume=part, **kw).history.loss,
                                  whole.history.loss)


def test_a_result_does_not_hold_the_whole_history_buffer() -> None:
    """The history buffer has max_steps' rows (a power of two); a Result of 10 steps held it all through a
    view of its rows (200 MB at max_steps=10**7). Reference: the rows' own size."""
    quad = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    res = jaxgd.minimize(quad, jnp.zeros(2), lr=0.1, max_steps=10**5)
    assert 5 < int(res.steps) < 100
    for h in res.history:
        held = h if h.base is None else h.base
        assert h.shape == (int(res.steps),) and held.nbytes <= 3 * h.nbytes, (h.shape, held.nbytes)


def test_python_number_leaves_round_trip(tmp_path, x64_off) -> None:
    """save_checkpoint takes Python numbers; with x64 off they were stored as float64/int64, which the load
    in the same process refused. Stored as JAX holds them (float32, int32; reference: jnp.asarray)."""
    tree = {"w": jnp.ones(2), "lr": 0.1, "epoch": 3, "flag": True}
    save_checkpoint(tmp_path / "n.ckpt", tree)
    got = load_checkpoint(tmp_path / "n.ckpt", like=tree)
    for key in ("lr", "epoch", "flag"):
        assert got[key].dtype == jnp.asarray(tree[key]).dtype and got[key] == jnp.asarray(tree[key]), key


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="symlinks")
def test_saving_through_a_symlink_writes_its_target(tmp_path) -> None:
    """Reference: open(link, "wb") and numpy.savez(link) write through a link; the atomic rename replaced
    the link itself with a file, leaving the target (on another volume, say) with the old checkpoint."""
    target, link = tmp_path / "target.ckpt", tmp_path / "link.ckpt"
    save_checkpoint(target, {"w": np.zeros(2)})
    os.symlink(target, link)
    save_checkpoint(link, {"w": np.ones(2)})
    assert os.path.islink(link)
    np.testing.assert_array_equal(load_checkpoint(target)["['w']"], [1.0, 1.0])


# -- a file records the run's settings (session 59 review) ------------------------------
def _quad(x: jax.Array) -> jax.Array:
    return jnp.sum(jnp.arange(1.0, 4.0) * (x - 1.0) ** 2)


def test_resume_with_other_iteration_settings_is_refused(tmp_path) -> None:
    """A file written with lr=0.01 resumed with lr=0.05 (or another clip, l2, bounds, schedule) ran on
    silently: not the run it continued. Reference: the settings given to the run that wrote the file
    (the same ones resume it bit for bit: test_the_same_settings_resume_and_the_way_out_of_a_refusal);
    each other one is refused before anything compiles, named with the file's and the call's value."""
    path = tmp_path / "run.ckpt"
    kw = dict(method="adam", lr=0.01, gtol=0.0)
    jaxgd.minimize(_quad, jnp.zeros(3), max_steps=8, checkpoint_path=path, **kw)
    assert checkpoint_info(path)["metadata"]["lr"] == 0.01
    for other, shown in (
        (dict(lr=0.05), "was written with lr=0.01, but this call has lr=0.05"),
        (dict(clip=1.0, l2=0.1), "was written with l2=0.0, clip=None, but this call has l2=0.1, clip=1.0"),
        (dict(bounds=(0.0, None)), "was written with bounds=None, but this call has bounds=[0.0, 'inf']"),
        (dict(lr=jaxgd.schedules.step_decay(0.01, 5, 0.5)),
         "lr=0.01, but this call has lr='StepDecay(init_value=0.01, step_size=5, gamma=0.5)'"),
    ):
        with pytest.raises(ValueError, match=r"max_steps=8, resume=path\) with the file's settings") as info:
            jaxgd.minimize(_quad, jnp.zeros(3), max_steps=20, resume=path, **dict(kw, **other))
        assert shown in str(info.value), str(info.value)


def test_spellings_of_the_same_settings_resume_bit_for_bit(tmp_path) -> None:
    """Reference: the uninterrupted run with the resuming call's spelling, which the resumed one equals bit for
    bit. A float32 run's lr=0.1 resumed as jnp.float32(0.1), np.float32(0.1) or a 0-d array, bounds=(None, 0.5)
    as (-inf, 0.5) or as arrays, l2=0.1 as an array of 0.1: the same iterates (the values the run computes with),
    so none is refused (each was: a float32 scalar read 0.10000000149, an array its digest, None not -inf)."""
    x0 = jnp.zeros(3, jnp.float32)
    saved = dict(method="gd", lr=0.1, gtol=0.0, bounds=(None, 0.5), l2=0.1)
    path = tmp_path / "run.ckpt"
    jaxgd.minimize(_quad, x0, max_steps=4, checkpoint_path=path, **saved)
    for other in (dict(lr=jnp.float32(0.1)), dict(lr=np.float32(0.1)), dict(lr=jnp.asarray(0.1, jnp.float32)),
                  dict(bounds=(-jnp.inf, 0.5)), dict(bounds=(jnp.full(3, -jnp.inf), jnp.full(3, 0.5))),
                  dict(l2=jnp.full(3, 0.1))):
        kw = dict(saved, **other)
        whole = jaxgd.minimize(_quad, x0, max_steps=8, **kw)
        assert_bitwise(jaxgd.minimize(_quad, x0, max_steps=8, resume=path, **kw), whole)


@pytest.mark.slow
def test_the_same_settings_resume_and_the_way_out_of_a_refusal(tmp_path) -> None:
    """Reference: the uninterrupted run, which a file resumes to bit for bit with the settings it records
    (a tolerance may change); the way out a refusal gives (the run as it stands, max_steps at the steps it
    ran, then a new run from its params) hands back the file's parameters (its .params leaf)."""
    path = tmp_path / "run.ckpt"
    kw = dict(method="adam", lr=0.01, gtol=0.0)
    whole = jaxgd.minimize(_quad, jnp.zeros(3), max_steps=20, **kw)
    jaxgd.minimize(_quad, jnp.zeros(3), max_steps=8, checkpoint_path=path, **kw)
    assert_bitwise(jaxgd.minimize(_quad, jnp.zeros(3), max_steps=20, resume=path, **kw), whole)
    jaxgd.minimize(_quad, jnp.zeros(3), max_steps=20, resume=path, **dict(kw, gtol=1e-12))  # a tolerance may change
    steps = checkpoint_info(path)["metadata"]["steps"]
    as_it_stands = jaxgd.minimize(_quad, jnp.zeros(3), max_steps=steps, resume=path, **kw)
    np.testing.assert_array_equal(as_it_stands.params, load_checkpoint(path)[".params"])
    assert int(jaxgd.minimize(_quad, as_it_stands.params, max_steps=3, **dict(kw, lr=0.05)).steps) == 3


@pytest.mark.slow  # ~4 s: three runs and a checkpoint
def test_a_refusal_of_another_lr_gives_the_way_that_keeps_the_solver_state(tmp_path) -> None:
    """A file resumed with a lower lr was told to start afresh from r.params (momentum lost), though resume=r with
    a new lr keeps the state (a PyTorch user's review, session 60). Reference: the uninterrupted run of the
    piecewise-constant schedule (0.05 for 5 steps, then 0.01), which the run the message describes (the file's run
    as it stands, then resume=r at the new lr) equals bit for bit."""
    path = tmp_path / "run.ckpt"
    kw = dict(method="momentum", gtol=0.0)
    steps = optax.piecewise_constant_schedule(0.05, {5: 0.2})
    whole = jaxgd.minimize(_quad, jnp.zeros(3), max_steps=10, lr=steps, **kw)
    jaxgd.minimize(_quad, jnp.zeros(3), max_steps=5, lr=0.05, checkpoint_path=path, **kw)
    with pytest.raises(ValueError, match=r"then minimize\(fun, r.params, \.\.\., resume=r\) with the new ones goes on "
                                         r"from there with its solver state"):
        jaxgd.minimize(_quad, jnp.zeros(3), max_steps=10, lr=0.05 * 0.2, resume=path, **kw)
    r = jaxgd.minimize(_quad, jnp.zeros(3), max_steps=5, lr=0.05, resume=path, **kw)
    lowered = jaxgd.minimize(_quad, r.params, max_steps=10, lr=0.05 * 0.2, resume=r, **kw)
    assert_bitwise(lowered.params, whole.params)
    assert_bitwise(lowered.state.direction_state, whole.state.direction_state)
    np.testing.assert_allclose(lowered.history.lr, [0.05] * 5 + [0.01] * 5)


@pytest.mark.slow
def test_a_rule_or_l1_with_other_numbers_is_refused(tmp_path) -> None:
    """A step-size rule is recorded by its class and numbers, a per-leaf l1 by its values (reference: the
    values given); another c1, or another weight on one leaf, is named."""
    path = tmp_path / "rule.ckpt"
    x0 = {"a": jnp.zeros(2), "b": jnp.zeros(1)}
    f = lambda p: jnp.sum((p["a"] - 1.0) ** 2) + jnp.sum((p["b"] + 2.0) ** 2)  # noqa: E731
    kw = dict(method="gd", max_steps=4, l1={"a": 0.1, "b": 0.0})
    jaxgd.minimize(f, x0, lr=jaxgd.linesearch.Backtracking(c1=1e-4), checkpoint_path=path, **kw)
    assert checkpoint_info(path)["metadata"]["l1"] == "dict('a': 0.1, 'b': 0.0)"
    with pytest.raises(ValueError, match=r"lr='Backtracking\(c1=0.0001, .*lr='Backtracking\(c1=0.3, "):
        jaxgd.minimize(f, x0, lr=jaxgd.linesearch.Backtracking(c1=0.3), resume=path, **kw)
    with pytest.raises(ValueError, match=r"l1=\"dict\('a': 0.1, 'b': 0.0\)\", but this call has l1=\"dict\('a': 0.1, 'b': 0.5\)\""):
        jaxgd.minimize(f, x0, lr=jaxgd.linesearch.Backtracking(c1=1e-4), resume=path, **dict(kw, l1={"a": 0.1, "b": 0.5}))


def test_a_file_written_before_settings_were_recorded_still_resumes(tmp_path) -> None:
    """A checkpoint whose metadata holds only what jaxgd wrote before (kind, method, max_steps,
    history_every, steps, status) resumes: the settings it lacks are not checked. Reference: the
    uninterrupted run, bit for bit."""
    path = tmp_path / "old.ckpt"
    kw = dict(method="momentum", lr=0.02, gtol=0.0)
    whole = jaxgd.minimize(_quad, jnp.zeros(3), max_steps=15, **kw)
    part = jaxgd.minimize(_quad, jnp.zeros(3), max_steps=6, **kw)
    save_checkpoint(path, part, metadata={"kind": "jaxgd.minimize", "method": "momentum", "max_steps": 6,
                                          "history_every": 1, "steps": 6, "status": "MAX_STEPS"})
    assert_bitwise(jaxgd.minimize(_quad, jnp.zeros(3), max_steps=15, resume=path, **kw), whole)


def test_a_float64_file_resumed_with_x64_off_names_the_mode_first(tmp_path) -> None:
    """A float64 file resumed with x64 off said first "missing leaves .state.stall..." (a float32 run's state
    has a stall window a float64 one lacks); the real cause came later. Now the message opens with it, as
    load_checkpoint with like=None does (reference: the file's dtypes, checkpoint_info)."""
    path = tmp_path / "f64.ckpt"
    jaxgd.minimize(_quad, jnp.zeros(3), method="adam", lr=0.01, max_steps=4, checkpoint_path=path)
    assert {e["dtype"] for e in checkpoint_info(path)["leaves"] if e["path"].startswith(".params")} == {"float64"}
    with jax.enable_x64(False):
        for call in (lambda: jaxgd.minimize(_quad, jnp.zeros(3), method="adam", lr=0.01, max_steps=8, resume=path),
                     lambda: load_checkpoint(path, like=jax.eval_shape(
                         lambda: jaxgd.Solver(_quad, "adam", 0.01, max_steps=4).run(jnp.zeros(3))))):
            with pytest.raises(TreeMismatchError) as info:
                call()
            message = str(info.value)
            assert "the checkpoint holds 64-bit leaves (.params is float64" in message, message
            assert "64-bit mode on, and the mode is off now" in message and "jax_enable_x64" in message and "missing leaves" not in message


def test_the_next_save_removes_temporary_files_killed_saves_left(tmp_path) -> None:
    """A save killed mid-write (SIGKILL: no cleanup runs) leaves its temporary file, which nothing removed.
    The target's next successful save removes those older than STALE_TEMP_SECONDS. Reference: the names
    tempfile.mkstemp gives a save (the same call as save_checkpoint's); a young one (a save in progress),
    another target's, and a non-matching file stay."""
    import tempfile
    import time

    path = tmp_path / "state.ckpt"

    def left(base: str, age: float) -> str:  # a temporary file as a killed save leaves it
        fd, name = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=tmp_path)
        os.write(fd, b"PK\x03\x04 half")
        os.close(fd)
        when = time.time() - age
        os.utime(name, (when, when))
        return os.path.basename(name)

    old = _checkpoint.STALE_TEMP_SECONDS + 60
    stale = [left("state.ckpt", old), left("state.ckpt", 10 * old)]
    keep = [left("state.ckpt", 5.0), left("other.ckpt", old), left("state.ckpt.x", old)]
    (tmp_path / ".state.ckpt.notes.txt").write_text("mine")
    keep.append(".state.ckpt.notes.txt")
    save_checkpoint(path, {"w": jnp.arange(3.0)})
    assert sorted(os.listdir(tmp_path)) == sorted(["state.ckpt", *keep])
    np.testing.assert_array_equal(load_checkpoint(path)["['w']"], np.arange(3.0))
    assert stale  # (named: they were there)


def test_the_temporary_file_sweep_reads_the_file_servers_clock_not_this_hosts(tmp_path, monkeypatch) -> None:
    """On a shared file system another host's save in progress has a recent modification time by the file
    server's clock; a client whose clock runs 20 minutes ahead swept it as stale (its age was taken against
    time.time()). Reference: the modification time of the file just saved (the same server's clock), which
    the young temporary file is not STALE_TEMP_SECONDS older than; a temporary file that is, by that clock,
    still goes."""
    import tempfile
    import time

    path = tmp_path / "state.ckpt"

    def left(age: float) -> str:
        fd, name = tempfile.mkstemp(prefix=".state.ckpt.", suffix=".tmp", dir=tmp_path)
        os.close(fd)
        when = time.time() - age
        os.utime(name, (when, when))
        return os.path.basename(name)

    live = left(5.0)
    stale = left(_checkpoint.STALE_TEMP_SECONDS + 60)
    ahead = time.time() + 2 * _checkpoint.STALE_TEMP_SECONDS
    monkeypatch.setattr(time, "time", lambda: ahead)  # this host's clock, 20 minutes ahead of the server's
    save_checkpoint(path, {"w": jnp.arange(3.0)})
    assert sorted(os.listdir(tmp_path)) == sorted(["state.ckpt", live]), stale


@pytest.mark.parametrize("like, named", [
    ({"v": np.zeros(3, np.float32)}, "missing leaves ['v']"),
    ({"w": np.zeros(4, np.float32)}, "leaf ['w']: expected shape (4,)"),
])
def test_the_64_bit_message_only_where_the_width_is_the_difference(tmp_path, like, named) -> None:
    """With x64 off, a file of float64 leaves loaded into another tree said only "64-bit leaves ... written
    with 64-bit mode on", hiding the real mismatch (another leaf name, another shape) that turning the mode on
    would not fix (a review, session 59). Reference: the file's header (checkpoint_info) against like's leaves:
    the differing name or shape is named, the 64-bit mode only noted; a like that differs in width only still
    gets the 64-bit message."""
    path = tmp_path / "w.ckpt"
    save_checkpoint(path, {"w": np.zeros(3, np.float64)})
    assert jaxgd.checkpoint_info(path)["leaves"] == [{"path": "['w']", "shape": (3,), "dtype": "float64"}]
    with jax.enable_x64(False):
        with pytest.raises(TreeMismatchError) as info:
            load_checkpoint(path, like=like)
        message = str(info.value)
        assert named in message and "also holds 64-bit leaves (['w'] is float64)" in message, message
        with pytest.raises(TreeMismatchError, match="64-bit mode on, and the mode is off now"):
            load_checkpoint(path, like={"w": np.zeros(3, np.float32)})
