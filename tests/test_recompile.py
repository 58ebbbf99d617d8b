"""No recompiles a user would not expect (issue 14 item 4), counted with JAX's
compile monitor ("/jax/core/compile/backend_compile_duration" events).

Reference for the results: the same call compiled afresh (a run of fewer
epochs is bit for bit the first rows of a longer one with the same key).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from conftest import slow_if

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


# A schedule built anew with the same numbers (optax's closures, the only form of PyTorch's
# CosineAnnealingLR / OneCycleLR; built inside a training function or a sweep) compiled the loop
# again on every call, 0.4-2 s each: the compiled loop was keyed by the closure object. It is now
# keyed by the closure's code and the values it closes over (jaxgd._closure_key). Reference for the
# learning rates: the optax schedule evaluated directly, at each step's count.
_OPTAX_SCHEDULES = {
    "cosine_decay": lambda v: optax.cosine_decay_schedule(v, 20),
    "warmup_cosine_decay": lambda v: optax.warmup_cosine_decay_schedule(0.0, v, 5, 20),
    "cosine_onecycle": lambda v: optax.cosine_onecycle_schedule(20, v),
}


def _lrs(schedule: Any, counts: Any) -> np.ndarray:
    """``schedule`` at each count, given as the loop gives it (an int32 scalar: optax's onecycle then
    computes in float32, so the tests compare to float32's precision: XLA's fused loop and this eager
    evaluation round an ulp apart)."""
    return np.array([float(schedule(jnp.asarray(k, jnp.int32))) for k in counts])


@pytest.mark.parametrize("name", [slow_if(n != "cosine_decay", n, id=n) for n in sorted(_OPTAX_SCHEDULES)])
def test_minimize_fresh_optax_schedule_with_equal_numbers_compiles_once(compiles: list, name: str) -> None:
    make = _OPTAX_SCHEDULES[name]
    run = lambda lr: jaxgd.minimize(_quad, jnp.zeros(3), method="momentum", lr=lr, max_steps=12)  # noqa: E731
    first = run(make(0.0371))
    before = len(compiles)
    again = run(make(0.0371))
    assert len(compiles) == before, f"a fresh {name} schedule with equal numbers compiled again"
    np.testing.assert_array_equal(np.asarray(again.params), np.asarray(first.params))
    other = run(make(0.0213))
    assert len(compiles) > before, "different numbers must compile their own loop"
    for res, v in ((again, 0.0371), (other, 0.0213)):
        lr = np.asarray(res.history.lr)
        np.testing.assert_allclose(lr, _lrs(make(v), range(lr.size)), rtol=1e-6, atol=1e-12)
    assert not np.allclose(np.asarray(other.history.lr), np.asarray(again.history.lr))


@pytest.mark.parametrize("name", [slow_if(n != "cosine_decay", n, id=n) for n in sorted(_OPTAX_SCHEDULES)])
def test_fit_fresh_optax_schedule_with_equal_numbers_compiles_once(compiles: list, name: str) -> None:
    make = _OPTAX_SCHEDULES[name]
    first = _fit(lr=make(0.0372), method="momentum", eval_data=_data(16, seed=1))
    before = len(compiles)
    again = _fit(lr=make(0.0372), method="momentum", eval_data=_data(16, seed=1))
    assert len(compiles) == before, f"a fresh {name} schedule with equal numbers compiled fit again"
    np.testing.assert_array_equal(np.asarray(again.params), np.asarray(first.params))
    other = _fit(lr=make(0.0214), method="momentum", eval_data=_data(16, seed=1))
    assert len(compiles) > before
    last_steps = 4 * np.arange(1, 4) - 1  # 32 examples in batches of 8: the epochs' last counts 3, 7, 11
    for res, v in ((again, 0.0372), (other, 0.0214)):
        np.testing.assert_allclose(np.asarray(res.history.lr), _lrs(make(v), last_steps), rtol=1e-6, atol=1e-12)


def test_fresh_per_epoch_partial_and_solver_with_equal_numbers_compile_once(compiles: list) -> None:
    """per_epoch's wrapped closure, a functools.partial of numbers, and a jitted run of a fresh Solver."""
    per = lambda: jaxgd.schedules.per_epoch(optax.cosine_decay_schedule(0.0373, 5), 4)  # noqa: E731
    part = lambda: functools.partial(_linear_decay, 0.0373, end=0.001)  # noqa: E731
    for make in (per, part):
        jaxgd.minimize(_quad, jnp.zeros(3), method="momentum", lr=make(), max_steps=12)
        before = len(compiles)
        res = jaxgd.minimize(_quad, jnp.zeros(3), method="momentum", lr=make(), max_steps=12)
        assert len(compiles) == before
        lr = np.asarray(res.history.lr)
        np.testing.assert_allclose(lr, _lrs(make(), range(lr.size)), rtol=1e-12)
    run = jax.jit(lambda s, x: s.run(x))
    solver = lambda: jaxgd.Solver(_quad, "momentum", optax.cosine_decay_schedule(0.0373, 20), max_steps=8)  # noqa: E731
    run(solver(), jnp.zeros(3))
    before = len(compiles)
    run(solver(), jnp.zeros(3))
    assert len(compiles) == before, "jax.jit(solver.run) of a fresh Solver with an equal schedule compiled"


def _linear_decay(start: float, count: Any, end: float) -> Any:
    return start + (end - start) * jnp.minimum(count / 10.0, 1.0)


class _Config:
    def __init__(self, lr: float) -> None:
        self.lr = lr


_GLOBAL_LR = 0.0375


def _from_global() -> Any:
    return lambda count: _GLOBAL_LR * jnp.ones(())


def test_closure_over_an_object_or_array_stays_keyed_by_identity(compiles: list, monkeypatch: Any) -> None:
    """What cannot be keyed by value compiles per closure object, as before: an object of the user's (its
    fields may change between calls: a closure over the same object, re-made after a change, must see it)
    and an array of more than one element. A module global the code names is keyed by its value."""
    cfg = _Config(0.0374)
    sched = lambda: (lambda count: cfg.lr * jnp.ones(()))  # noqa: E731
    run = lambda lr: jaxgd.minimize(_quad, jnp.zeros(3), method="momentum", lr=lr, max_steps=5)  # noqa: E731
    run(sched())
    cfg.lr = 0.0124
    before = len(compiles)
    res = run(sched())
    assert len(compiles) > before, "a closure over an object was keyed by value"
    np.testing.assert_allclose(np.asarray(res.history.lr), 0.0124, rtol=1e-12)  # reference: cfg.lr now

    arr = jnp.asarray([0.0374, 0.0124])
    over_array = lambda: (lambda count: arr[count % 2])  # noqa: E731
    run(over_array())
    before = len(compiles)
    res = run(over_array())
    assert len(compiles) > before, "a closure over an array was keyed by value"
    np.testing.assert_allclose(np.asarray(res.history.lr), [0.0374, 0.0124, 0.0374, 0.0124, 0.0374], rtol=1e-12)

    run(_from_global())
    monkeypatch.setitem(globals(), "_GLOBAL_LR", 0.0126)
    res = run(_from_global())
    np.testing.assert_allclose(np.asarray(res.history.lr), 0.0126, rtol=1e-12)  # reference: the global now


def test_closure_key_by_value_and_by_identity() -> None:
    """The key's unit cases: numbers by type and bits; objects and arrays by identity."""
    from jaxgd import _closure_key

    def make(v: Any) -> Any:
        return lambda count: v

    key = _closure_key.key
    assert key(make(0.5)) == key(make(0.5)) and hash(key(make(0.5))) == hash(key(make(0.5)))
    assert key(make(0.5)) != key(make(0.25))
    assert len({key(make(v)) for v in (1, 1.0, True, 0.0, -0.0, np.float32(1), np.float64(1))}) == 7
    assert key(make(jnp.float32(0.5))) == key(make(jnp.float32(0.5))) != key(make(jnp.float64(0.5)))
    assert key(make((0.1, [2, None], {"a": "s"}))) == key(make((0.1, [2, None], {"a": "s"})))
    assert key(make(optax.cosine_decay_schedule(0.1, 10))) == key(make(optax.cosine_decay_schedule(0.1, 10)))
    for unkeyable in (jnp.ones(2), np.ones(2), _Config(0.1), object()):
        f = make(unkeyable)
        assert key(f) is f
    assert key(optax.exponential_decay(0.1, 10, 0.5, end_value=0.01)) == key(
        optax.exponential_decay(0.1, 10, 0.5, end_value=0.01))  # (jnp.maximum in a cell, and an empty cell)
    assert key(0.1) == 0.1 and key(_quad) != key(_rosen)


def _optax_loop(tx: Any, x0: Any, steps: int) -> np.ndarray:
    """optax's own loop: ``steps`` updates of ``tx`` on ``_quad`` from ``x0``."""
    x, state = x0, tx.init(x0)
    for _ in range(steps):
        u, state = tx.update(jax.grad(_quad)(x), state, x)
        x = optax.apply_updates(x, u)
    return np.asarray(x)


def test_minimize_and_fit_with_a_fresh_optax_method_of_equal_numbers_compile_once(compiles: list) -> None:
    """An optax optimizer built anew with the same numbers (``method=optax.adam(1e-3)`` in a training function)
    compiled the loop again every call (0.5-2 s; a PyTorch user's review, session 60): its direction is now made
    once per value (jaxgd._closure_key.value_key). Reference: optax's own loop with the same transformation;
    other numbers compile their own loop and give their own answer."""
    run = lambda tx: jaxgd.minimize(_quad, jnp.zeros(3), method=tx, max_steps=15)  # noqa: E731
    first = run(optax.adam(0.0371))
    before = len(compiles)
    again = run(optax.adam(0.0371))
    assert len(compiles) == before, "a fresh optax.adam with equal numbers compiled again"
    other = run(optax.adam(0.0213))
    assert len(compiles) > before, "different numbers must compile their own loop"
    for res, v in ((first, 0.0371), (again, 0.0371), (other, 0.0213)):
        np.testing.assert_allclose(np.asarray(res.params), _optax_loop(optax.adam(v), jnp.zeros(3), int(res.steps)),
                                   rtol=1e-12, atol=1e-15)
    _fit(method=optax.sgd(0.05, momentum=0.9), lr=None)
    before = len(compiles)
    _fit(method=optax.sgd(0.05, momentum=0.9), lr=None)
    assert len(compiles) == before, "fit with a fresh optax.sgd of equal numbers compiled again"


# A key made once per closure object (session 60) ran a fresh closure of the old values with the program
# traced from the new ones: a schedule that reads a module global, re-used on a new problem size after the
# global changed, was traced with the new value under its first key (a review, session 61). Reference for
# every run: gradient descent on 0.5 ||x||^2 by hand, x (1 - lr)^steps at a constant lr.
_SETTING = 0.1


def _setting_schedule() -> Any:
    return lambda count: _SETTING * jnp.ones(())


def _half_square(x: jax.Array) -> jax.Array:
    return 0.5 * jnp.sum(x**2)


def _gd5(lr: Any, x0: Any, **kw: Any) -> np.ndarray:
    return np.asarray(jaxgd.minimize(_half_square, x0, lr=lr, max_steps=5, gtol=0.0, **kw).params)


@pytest.mark.parametrize("how", ["lr", slow_if(True, "optax method", id="optax method")])
def test_a_closure_reading_a_global_is_keyed_by_the_global_now(monkeypatch: Any, how: str) -> None:
    make = _setting_schedule if how == "lr" else (lambda: optax.sgd(_setting_schedule()))  # noqa: E731
    run = (lambda s, x0: _gd5(s, x0)) if how == "lr" else (lambda s, x0: _gd5(None, x0, method=s))  # noqa: E731
    small, big = jnp.asarray([1.0, -2.0]), jnp.asarray([1.0, -2.0, 3.0])
    first = make()
    np.testing.assert_allclose(run(first, small), np.asarray(small) * 0.9**5, rtol=1e-12)
    monkeypatch.setitem(globals(), "_SETTING", 0.3)
    np.testing.assert_allclose(run(first, big), np.asarray(big) * 0.7**5, rtol=1e-12)  # the same object, traced now
    monkeypatch.setitem(globals(), "_SETTING", 0.1)
    np.testing.assert_allclose(run(make(), big), np.asarray(big) * 0.9**5, rtol=1e-12)  # a fresh one of 0.1


class _Decay:
    def __init__(self, base: float) -> None:
        self.base = base

    def lr(self, count: Any) -> Any:
        return self.base / (1.0 + count)


def test_a_bound_method_lr_is_keyed_by_its_objects_numbers() -> None:
    """``lr=sched.lr`` after ``sched.base`` changed ran the first program (a bound method compared by ==)."""
    x0 = jnp.asarray([1.0, -2.0])
    sched = _Decay(0.1)
    for base in (0.1, 0.5, 0.1):
        sched.base = base
        want = np.asarray(x0) * np.prod([1.0 - base / (1.0 + t) for t in range(5)])  # reference: by hand
        np.testing.assert_allclose(_gd5(sched.lr, x0), want, rtol=1e-12)


def test_a_bound_method_of_another_object_never_shares_a_key() -> None:
    """Keyed by its object's attributes alone, the bound method of a fresh object whose class attribute had
    changed ran the first object's program (a review of the change, session 61): the object is in the key."""
    x0 = jnp.asarray([1.0, -2.0])

    class Scaled:
        scale = 0.1

        def lr(self, count: Any) -> Any:
            return self.scale + 0.0 * count

    for scale in (0.1, 0.4):
        Scaled.scale = scale
        np.testing.assert_allclose(_gd5(Scaled().lr, x0), np.asarray(x0) * (1.0 - scale) ** 5, rtol=1e-12)


def _helper(count: Any) -> Any:
    return 0.1 + 0.0 * count


def test_a_closure_calling_a_redefined_global_function_sees_the_new_one(monkeypatch: Any) -> None:
    """A global that holds a function may be rebound (a notebook cell run again): the key is volatile."""
    x0 = jnp.asarray([1.0, -2.0])
    sched = lambda count: _helper(count)  # noqa: E731
    np.testing.assert_allclose(_gd5(sched, x0), np.asarray(x0) * 0.9**5, rtol=1e-12)
    monkeypatch.setitem(globals(), "_helper", lambda count: 0.5 + 0.0 * count)
    np.testing.assert_allclose(_gd5(sched, x0), np.asarray(x0) * 0.5**5, rtol=1e-12)


def test_a_closure_reading_names_by_string_is_keyed_by_identity() -> None:
    """``lambda t: globals()["LR"]`` reads a global the walk cannot see: keyed by the object, each fresh one
    traced with its own value."""
    from jaxgd import _closure_key

    x0 = jnp.asarray([1.0, -2.0])
    for value in (0.1, 0.5):
        globals()["_BY_NAME"] = value
        f = lambda count: globals()["_BY_NAME"] * jnp.ones(())  # noqa: E731
        assert _closure_key.key(f) is f
        np.testing.assert_allclose(_gd5(f, x0), np.asarray(x0) * (1.0 - value) ** 5, rtol=1e-12)


def test_closure_key_volatility() -> None:
    """Keys that read a module global or an object's attributes are made again at every call; others once."""
    from jaxgd import _closure_key

    assert not _closure_key.value_key(optax.cosine_decay_schedule(0.1, 10)).volatile
    assert _closure_key.value_key(_setting_schedule()).volatile
    assert _closure_key.value_key(_Decay(0.1).lr).volatile
    f = _setting_schedule()
    before = _closure_key.key(f)
    globals()["_SETTING"] = 0.2
    try:
        assert _closure_key.key(f) != before
    finally:
        globals()["_SETTING"] = 0.1
    assert _closure_key.key(f) == before
    tx = optax.sgd(0.1)  # a transformation's memo is by type too: ExtraArgs' update is called otherwise
    other = optax.GradientTransformation(tx.init, tx.update)
    assert type(tx) is not type(other) and _closure_key.key(tx) != _closure_key.key(other)


@pytest.mark.slow  # ~3 s: three programs
def test_an_eager_quasi_newton_step_runs_compiled_and_compiles_once(compiles: list) -> None:
    """Solver.init and Solver.step called at the top level on arrays run their compiled versions: an eager
    lbfgs step ran op by op and compiled its line search's while loops anew every call (2.7 s a bfgs step at
    4-D: a scipy migrator's review, following the README's callback advice). Reference: JAX's compile
    monitor (nothing compiles after the first step), and minimize's fused loop (the same answer and steps)."""
    rosen = lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)  # noqa: E731
    solver = jaxgd.Solver(rosen, "lbfgs")
    state = solver.step(solver.init(jnp.full(4, -1.0)))
    before = len(compiles)
    while int(state.status) == int(jaxgd.Status.RUNNING):
        state = solver.step(state)
    assert len(compiles) == before, f"{len(compiles) - before} compiles in {int(state.count) - 1} eager steps"
    fused = jaxgd.minimize(rosen, jnp.full(4, -1.0), method="lbfgs", tier="compiled")
    assert int(state.count) == int(fused.steps) and int(state.status) == int(fused.status)
    np.testing.assert_allclose(np.asarray(state.params), np.asarray(fused.params), rtol=0, atol=1e-12)
