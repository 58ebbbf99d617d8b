"""Checkpoint and resume for jaxgd.fit: a resumed run is bit for bit the uninterrupted one.

The reference for "resume" is the run that was never interrupted: every leaf
of the two :class:`jaxgd.FitResult` objects (params, best params, best loss
and epoch, patience counter, step count, PRNG key, optimizer state, history)
must be bit-identical, dtypes included. A crash is simulated by letting the
n-th checkpoint write succeed and then raising (``crash_after`` in conftest).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from conftest import Crash, assert_bitwise
from jaxgd.checkpoint import format as _checkpoint
from jaxgd.checkpoint.format import checkpoint_info, load_checkpoint

# One problem, written once, run here and in a fresh process (exec'd there).
PROBLEM = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    N, D = 37, 3
    _rng = np.random.default_rng(0)
    X = _rng.normal(size=(N, D))
    DATA = {"x": X, "y": X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * _rng.normal(size=N)}
    P0 = {"w": jnp.zeros(D), "b": jnp.zeros(())}

    def mse(p, batch):
        r = batch["x"] @ p["w"] + p["b"] - batch["y"]
        return jnp.mean(r ** 2)

    def mse_weighted(p, batch, w):
        r = batch["x"] @ p["w"] + p["b"] - batch["y"]
        return jnp.sum(w * r ** 2) / jnp.sum(w)

    def mae(p, d):
        return jnp.mean(jnp.abs(d["x"] @ p["w"] + p["b"] - d["y"]))
    """
)
_NS: dict = {}
exec(PROBLEM, _NS)
mse, mse_weighted, mae, DATA, P0 = (_NS[k] for k in ("mse", "mse_weighted", "mae", "DATA", "P0"))
EVAL = {k: v[:12] for k, v in DATA.items()}

CASES = {
    # Adam with an optax schedule, evaluation, a metric, early stopping armed (not reached).
    "adam-schedule-eval-patience": dict(
        fun=mse, method="adam", lr=optax.exponential_decay(0.05, 9, 0.5), eval_data=EVAL, metric=mae, patience=50,
        key=jax.random.key(3),
    ),
    # Momentum, a per-epoch jaxgd schedule, the masked remainder, clipping, L2, a raw uint32 key.
    "momentum-mask-clip-l2": dict(
        fun=mse_weighted, method="momentum", lr=jaxgd.schedules.per_epoch(jaxgd.schedules.step_decay(0.05, 3, 0.5), 4),
        remainder=jaxgd.Remainder.MASK, clip=1.0, l2=0.01, key=jax.random.PRNGKey(5),
    ),
}


def _fit(case: dict, **kw) -> jaxgd.FitResult:
    case = {"batch_size": 10, "epochs": 9, "progress": False, **case, **kw}
    return jaxgd.fit(case.pop("fun"), P0, DATA, **case)


@pytest.mark.alternate("case")
@pytest.mark.parametrize("case", list(CASES))
def test_resume_after_crash_is_bit_for_bit(case: str, tmp_path, crash_after, monkeypatch) -> None:
    path = tmp_path / "fit.ckpt"
    uninterrupted = _fit(CASES[case])
    assert uninterrupted.status_enum is jaxgd.FitStatus.EPOCHS and int(uninterrupted.epochs) == 9

    # The same run, checkpointed every 2 epochs, is unchanged.
    assert_bitwise(_fit(CASES[case], checkpoint_every=2, checkpoint_path=path), uninterrupted)

    # Dies after its 2nd checkpoint (epoch 4), then resumes from the file.
    crash_after(2)
    with pytest.raises(Crash):
        _fit(CASES[case], checkpoint_every=2, checkpoint_path=path)
    monkeypatch.undo()
    meta = checkpoint_info(path)["metadata"]
    assert meta["kind"] == "jaxgd.fit" and meta["epochs"] == 4 and meta["status"] == "RUNNING"
    resumed = _fit(CASES[case], resume=path, checkpoint_every=2, checkpoint_path=path)
    assert_bitwise(resumed, uninterrupted)
    assert checkpoint_info(path)["metadata"]["epochs"] == 9


@pytest.mark.slow  # a fresh process (~8 s); test_checkpoint.py's runs in make test
def test_resume_in_a_fresh_process_is_bit_for_bit(tmp_path, crash_after, monkeypatch) -> None:
    kw = dict(batch_size=8, epochs=6, method="nesterov", lr=0.02, progress=False)
    path, out = tmp_path / "fit.ckpt", tmp_path / "resumed.ckpt"
    uninterrupted = jaxgd.fit(mse, P0, DATA, key=jax.random.key(11), **kw)
    crash_after(1)
    with pytest.raises(Crash):
        jaxgd.fit(mse, P0, DATA, key=jax.random.key(11), checkpoint_every=3, checkpoint_path=path, **kw)
    monkeypatch.undo()
    script = PROBLEM + textwrap.dedent(
        f"""
        import jaxgd
        from jaxgd.checkpoint.format import save_checkpoint
        res = jaxgd.fit(mse, P0, DATA, key=jax.random.key(11), resume={str(path)!r}, **{kw!r})
        save_checkpoint({str(out)!r}, res)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    like = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), uninterrupted)
    assert_bitwise(load_checkpoint(out, like), uninterrupted)


def _toward_ten(m, x):
    return jnp.mean((m - x) ** 2)


def _distance_to_three(m, x):
    return (m - 3.0) ** 2 + 0.0 * jnp.mean(x)


@pytest.mark.slow
def test_early_stopping_state_survives_a_resume(tmp_path, crash_after, monkeypatch) -> None:
    """The best params, best loss and patience counter come back from the file: the
    resumed run stops at the same epoch as the uninterrupted one (reference), with
    the best parameters restored."""
    x = 10.0 + np.linspace(-1, 1, 40)
    kw = dict(batch_size=10, epochs=30, key=jax.random.key(0), method="gd", lr=0.02, eval_data=x,
              eval_fun=_distance_to_three, patience=3, progress=False)
    uninterrupted = jaxgd.fit(_toward_ten, jnp.zeros(()), x, **kw)
    assert uninterrupted.status_enum is jaxgd.FitStatus.PATIENCE
    stop, best = int(uninterrupted.epochs), int(uninterrupted.best_epoch)
    # crash two epochs after the best one: the patience counter (2) is what is saved
    crash_after(best + 2)
    with pytest.raises(Crash):
        jaxgd.fit(_toward_ten, jnp.zeros(()), x, checkpoint_every=1, checkpoint_path=tmp_path / "f", **kw)
    monkeypatch.undo()
    assert checkpoint_info(tmp_path / "f")["metadata"]["epochs"] == best + 2 < stop
    resumed = jaxgd.fit(_toward_ten, jnp.zeros(()), x, resume=tmp_path / "f", **kw)
    assert_bitwise(resumed, uninterrupted)
    assert int(resumed.state.wait) == 3 and float(resumed.params) == float(resumed.best_params)


def _log_barrier(m, x):
    # NaN once m > 5.5; otherwise the mean squared distance to x (the barrier adds 0).
    return jnp.mean((m - x) ** 2) + 0.0 * jnp.log(5.5 - m)


def test_rollback_across_a_checkpoint(tmp_path, crash_after, monkeypatch) -> None:
    """gd on mean((m - 10)^2) with lr 0.05 gives m_k = 10 (1 - 0.9^k) (the closed form):
    m_7 = 5.22 and m_8 = 5.70, past the barrier at 5.5. With 2 steps per epoch, step 9
    (the first of epoch 5) meets the NaN and rolls back to m_7, the iterate before the
    last step of epoch 4: that previous iterate must come back from the checkpoint."""
    x = np.full(8, 10.0)
    kw = dict(batch_size=4, epochs=8, key=jax.random.key(0), method="gd", lr=0.05, progress=False)
    uninterrupted = jaxgd.fit(_log_barrier, jnp.asarray(0.0), x, **kw)
    assert uninterrupted.status_enum is jaxgd.FitStatus.NONFINITE and int(uninterrupted.epochs) == 5
    assert int(uninterrupted.steps) == 7
    np.testing.assert_allclose(float(uninterrupted.params), 10 * (1 - 0.9**7), rtol=1e-12)
    crash_after(4)
    with pytest.raises(Crash):
        jaxgd.fit(_log_barrier, jnp.asarray(0.0), x, checkpoint_every=1, checkpoint_path=tmp_path / "f", **kw)
    monkeypatch.undo()
    assert_bitwise(jaxgd.fit(_log_barrier, jnp.asarray(0.0), x, resume=tmp_path / "f", **kw), uninterrupted)


@pytest.mark.slow
def test_extend_a_finished_run_from_its_result() -> None:
    """fit(epochs=4) then fit(epochs=10, resume=that result) is fit(epochs=10)."""
    case = CASES["adam-schedule-eval-patience"]
    longer = _fit(case, epochs=10)
    first = _fit(case, epochs=4)
    assert first.status_enum is jaxgd.FitStatus.EPOCHS and first.history.train_loss.shape == (4,)
    assert_bitwise(_fit(case, epochs=10, resume=first), longer)
    # and resuming the finished run with the same epochs changes nothing
    assert_bitwise(_fit(case, epochs=4, resume=first), first)


def test_checkpoints_are_written_every_k_epochs_and_at_a_stop(tmp_path, monkeypatch) -> None:
    saved = []
    real = _checkpoint.save_checkpoint
    monkeypatch.setattr(_checkpoint, "save_checkpoint", lambda p, t, **k: (saved.append(int(t.epochs)), real(p, t, **k))[1])
    x = 10.0 + np.linspace(-1, 1, 40)
    kw = dict(batch_size=10, epochs=30, key=jax.random.key(0), method="gd", lr=0.02, eval_data=x,
              eval_fun=_distance_to_three, patience=3, progress=False)
    res = jaxgd.fit(_toward_ten, jnp.zeros(()), x, checkpoint_every=4, checkpoint_path=tmp_path / "f", **kw)
    stop = int(res.epochs)
    assert res.status_enum is jaxgd.FitStatus.PATIENCE and stop < 30
    assert saved == list(range(4, stop, 4)) + [stop]
    # checkpoint_path alone: one write, at the end; the file holds the whole result
    saved.clear()
    jaxgd.fit(_toward_ten, jnp.zeros(()), x, checkpoint_path=tmp_path / "g", **kw)
    assert saved == [stop]
    like = jax.eval_shape(lambda: jaxgd.fit(_toward_ten, jnp.zeros(()), x, **kw))
    loaded = load_checkpoint(tmp_path / "g", like)
    assert_bitwise(loaded._replace(history=jax.tree_util.tree_map(lambda h: h[:stop], loaded.history)), res)


def test_progress_bar_of_a_resumed_run(tmp_path, capsys) -> None:
    case = CASES["adam-schedule-eval-patience"]
    first = _fit(case, epochs=3)
    _fit(case, epochs=5, resume=first, checkpoint_path=tmp_path / "f", progress=True)
    err = capsys.readouterr().err
    assert "jaxgd.fit" in err and "5/5" in err and "eval=" in err


def test_a_crashed_run_leaves_no_stale_progress_bar(tmp_path, crash_after, monkeypatch, capsys) -> None:
    """A run that dies mid-way (here after its first checkpoint) must not leave its bar
    to the next run: that one starts a fresh bar counting its own epochs."""
    case = CASES["adam-schedule-eval-patience"]
    crash_after(1)
    with pytest.raises(Crash):
        _fit(case, epochs=6, checkpoint_every=2, checkpoint_path=tmp_path / "f", progress=True)
    monkeypatch.undo()
    capsys.readouterr()
    _fit(case, epochs=3, progress=True)
    err = capsys.readouterr().err  # the stale bar is closed first (its last line, 2/6), then a new one
    new_bar = err[err.index("0/3"):]
    assert "3/3" in new_bar and "/6" not in new_bar


def test_resume_with_another_lr_or_clip_is_refused(tmp_path) -> None:
    """A fit file written with lr=0.05 resumed with lr=0.2 (or with clip) ran on silently: not the run it
    continued (the same settings resume bit for bit: test_resume_after_crash_is_bit_for_bit). Reference:
    the settings given to the run that wrote the file; each other one is refused by name with the file's
    and the call's value, and the message says how to go on with new settings on purpose."""
    path = tmp_path / "fit.ckpt"
    kw = dict(fun=mse, method="momentum", lr=0.05, key=jax.random.key(1))
    _fit(kw, epochs=2, checkpoint_path=path)
    meta = checkpoint_info(path)["metadata"]
    assert (meta["lr"], meta["clip"], meta["epochs"]) == (0.05, None, 2)
    with pytest.raises(ValueError, match=r"was written with lr=0.05, but this call has lr=0.2\. .*epochs=2, resume=path"):
        _fit(dict(kw, lr=0.2), epochs=4, resume=path)
    with pytest.raises(ValueError, match=r"was written with clip=None, but this call has clip=1.0"):
        _fit(dict(kw, clip=1.0), epochs=4, resume=path)


def test_reduce_on_plateau_is_refused_with_the_way_that_keeps_the_optimizer_state() -> None:
    """PyTorch's ReduceLROnPlateau in fit: lr=ReduceOnPlateau was refused as "a line search" pointing at per_epoch
    (there is no per-epoch plateau rule), lr=optax.contrib.reduce_on_plateau() got a bare TypeError (a PyTorch
    user's review, session 60). Reference: the way out both messages give, lowering lr with resume=r, is the
    uninterrupted run of a piecewise-constant schedule (test_a_lower_lr_with_resume_is_the_step_schedules_run);
    both are refused before anything compiles (tests/test_bad_inputs.py)."""
    kw = dict(fun=mse, method="momentum", key=jax.random.key(1))
    with pytest.raises(ValueError, match=r"cuts the step size when the loss of each step stops improving.*"
                                         r"fit\(fun, r.params, data, \.\.\., lr=lr0 \* 0.1, epochs=k \+ m, resume=r\), "
                                         r"which keeps the optimizer state") as info:
        _fit(dict(kw, lr=jaxgd.linesearch.ReduceOnPlateau(0.05)), epochs=4)
    assert "line search" not in str(info.value) and "per_epoch" not in str(info.value)
    with pytest.raises(TypeError, match=r"lr must be a float or a schedule \(count -> lr\), got an optax "
                                        r"transformation .*optax.contrib.reduce_on_plateau needs the loss .*resume=r"):
        _fit(dict(kw, lr=optax.contrib.reduce_on_plateau()), epochs=4)


@pytest.mark.slow  # ~15 s under load: six fits and a checkpoint
@pytest.mark.parametrize("method", ["momentum", "adam"])
def test_a_lower_lr_with_resume_is_the_step_schedules_run(method: str, tmp_path) -> None:
    """A checkpoint file resumed with a lower lr was told to start afresh from r.params (momentum and Adam's
    moments lost), though resume=r with a new lr keeps them (a PyTorch user's review, session 60). Reference: the
    uninterrupted run of the piecewise-constant schedule (0.05 for 2 epochs of 3 steps, then 0.005), which the
    run the messages describe (2 epochs at 0.05, then resume=r at 0.005, from a FitResult or from the file as it
    stands) equals bit for bit."""
    kw = dict(fun=mse, method=method, key=jax.random.key(1))
    steps = 2 * (len(DATA["y"]) // 10)
    whole = _fit(dict(kw, lr=optax.piecewise_constant_schedule(0.05, {steps: 0.1})), epochs=4)
    first = _fit(dict(kw, lr=0.05), epochs=2)
    lowered = _fit(dict(kw, lr=0.05 * 0.1), epochs=4, resume=first)  # (the schedule's product, to the bit)
    np.testing.assert_allclose(lowered.history.lr, [0.05, 0.05, 0.005, 0.005])
    assert_bitwise(lowered.params, whole.params)
    assert_bitwise(lowered.state, whole.state)
    # From a file: refused with a new lr; the way out the message gives is the same run.
    path = tmp_path / "fit.ckpt"
    _fit(dict(kw, lr=0.05), epochs=2, checkpoint_path=path)
    with pytest.raises(ValueError, match=r"then fit\(fun, r.params, data, \.\.\., resume=r\) with the new ones goes "
                                         r"on from there with its optimizer state"):
        _fit(dict(kw, lr=0.005), epochs=4, resume=path)
    as_it_stands = _fit(dict(kw, lr=0.05), epochs=2, resume=path)
    assert_bitwise(_fit(dict(kw, lr=0.05 * 0.1), epochs=4, resume=as_it_stands).state, whole.state)
