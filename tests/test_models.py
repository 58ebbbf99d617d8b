"""Flax NNX and Equinox models passed where params go (jaxgd.interop.models).

References: numpy.linalg.lstsq for the fitted linear maps; the same solve
written by hand with ``eqx.partition``/``eqx.combine`` or
``nnx.split``/``nnx.merge`` (the boilerplate this feature removes), which must
give the very same numbers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
LSTSQ = np.linalg.lstsq(np.c_[X, np.ones(len(X))], Y, rcond=None)[0]


def _compiles() -> dict:
    count = {"n": 0}

    def listen(event: str, duration: float, **kw: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            count["n"] += 1

    jax.monitoring.register_event_duration_secs_listener(listen)
    return count


# -- Equinox -----------------------------------------------------------------------------------------
eqx = pytest.importorskip("equinox")


class Affine(eqx.Module):
    """A linear model with a non-array field (the activation) and an integer array."""

    w: jax.Array
    b: jax.Array
    act: Any
    calls: jax.Array  # an integer array: not trained, held fixed

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.act(x @ self.w + self.b)


def identity(z: jax.Array) -> jax.Array:
    return z


def affine(seed: float = 0.0, act: Any = identity) -> Affine:
    return Affine(jnp.full(3, seed), jnp.zeros(()), act, jnp.arange(2))


def eqx_loss(model: Affine, X: Any, y: Any) -> jax.Array:
    return jnp.mean((model(X) - y) ** 2)


@pytest.mark.slow
def test_equinox_model_in_minimize_matches_lstsq_and_the_manual_partition() -> None:
    res = jaxgd.minimize(eqx_loss, affine(), (X, Y), method="lbfgs", max_steps=200, gtol=1e-10)
    assert isinstance(res.params, Affine) and res.success
    np.testing.assert_allclose(np.r_[res.params.w, res.params.b], LSTSQ, rtol=1e-7, atol=1e-9)
    assert res.params.calls.tolist() == [0, 1]  # the integer array came back untouched
    # the boilerplate it replaces: partition by hand, combine inside the loss
    params, static = eqx.partition(affine(), eqx.is_inexact_array)
    manual = jaxgd.minimize(lambda p, X, y: eqx_loss(eqx.combine(p, static), X, y), params, (X, Y),
                            method="lbfgs", max_steps=200, gtol=1e-10)
    assert np.array_equal(manual.params.w, res.params.w) and int(manual.steps) == int(res.steps)


def test_a_new_model_of_the_same_structure_reuses_the_compiled_loop() -> None:
    jaxgd.minimize(eqx_loss, affine(0.0), (X, Y), method="gd", lr=0.1, max_steps=50)
    count = _compiles()
    res = jaxgd.minimize(eqx_loss, affine(1.0), (X, Y), method="gd", lr=0.1, max_steps=50)
    assert count["n"] == 0, "a second model of the same structure compiled again"
    assert isinstance(res.params, Affine)
    jaxgd.minimize(eqx_loss, affine(1.0, act=lambda z: z), (X, Y), method="gd", lr=0.1, max_steps=50)
    assert count["n"] > 0, "another activation function must not re-use the loop compiled for the first"


@pytest.mark.slow
def test_equinox_model_under_jit_and_resume() -> None:
    run = eqx.filter_jit(lambda y: jaxgd.minimize(eqx_loss, affine(), (X, y), method="bfgs", max_steps=100, gtol=1e-10).params)
    out = run(jnp.asarray(Y))
    np.testing.assert_allclose(np.r_[out.w, out.b], LSTSQ, rtol=1e-7, atol=1e-9)
    first = jaxgd.minimize(eqx_loss, affine(), (X, Y), method="gd", lr=0.1, max_steps=20)
    more = jaxgd.minimize(eqx_loss, affine(), (X, Y), method="gd", lr=0.1, max_steps=60, resume=first)
    whole = jaxgd.minimize(eqx_loss, affine(), (X, Y), method="gd", lr=0.1, max_steps=60)
    assert np.array_equal(more.params.w, whole.params.w) and isinstance(more.params, Affine)


@pytest.mark.slow  # ~7 s; Equinox in minimize runs in make test
def test_equinox_mlp_in_fit_matches_the_manual_partition() -> None:
    mlp = eqx.nn.MLP(3, 1, width_size=8, depth=1, activation=jnp.tanh, key=jax.random.key(0), dtype=jnp.float64)
    loss = lambda m, batch: jnp.mean((jax.vmap(m)(batch[0])[:, 0] - batch[1]) ** 2)  # noqa: E731
    kw = dict(batch_size=16, epochs=5, key=jax.random.key(1), method="adam", lr=1e-2, progress=False)
    res = jaxgd.fit(loss, mlp, (X, Y), **kw)
    assert isinstance(res.params, eqx.nn.MLP) and isinstance(res.best_params, eqx.nn.MLP)
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    manual = jaxgd.fit(lambda p, b: loss(eqx.combine(p, static), b), params, (X, Y), **kw)
    ours, theirs = jax.tree_util.tree_leaves(eqx.filter(res.params, eqx.is_array)), jax.tree_util.tree_leaves(manual.params)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert np.array_equal(a, b)


# -- Flax NNX ----------------------------------------------------------------------------------------
def _nnx():
    return pytest.importorskip("flax.nnx")


def _net(nnx: Any) -> Any:
    class Net(nnx.Module):
        def __init__(self, rngs: Any) -> None:
            self.lin = nnx.Linear(3, 1, rngs=rngs, param_dtype=jnp.float64)
            self.bn = nnx.BatchNorm(3, rngs=rngs, use_running_average=True, param_dtype=jnp.float64)

        def __call__(self, x: jax.Array) -> jax.Array:
            return self.lin(x)[:, 0]

    return Net(nnx.Rngs(0))


def nnx_loss(model: Any, X: Any, y: Any) -> jax.Array:
    return jnp.mean((model(X) - y) ** 2)


@pytest.mark.slow  # ~8 s; test_as_optax.py's NNX optimizer runs in make test
def test_nnx_module_in_minimize_matches_lstsq_and_keeps_its_state() -> None:
    nnx = _nnx()
    net = _net(nnx)
    res = jaxgd.minimize(nnx_loss, net, (X, Y), method="lbfgs", max_steps=200, gtol=1e-10)
    assert type(res.params) is type(net) and res.success
    np.testing.assert_allclose(np.r_[res.params.lin.kernel[...][:, 0], res.params.lin.bias[...]], LSTSQ, rtol=1e-7, atol=1e-9)
    # non-Param state (BatchNorm statistics, BatchNorm's own scale/bias are Params) untouched
    assert np.array_equal(res.params.bn.mean[...], net.bn.mean[...])
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)
    manual = jaxgd.minimize(lambda p, r, X, y: nnx_loss(nnx.merge(graphdef, p, r), X, y), params, (rest, X, Y),
                            method="lbfgs", max_steps=200, gtol=1e-10)
    assert np.array_equal(manual.params["lin"]["kernel"][...], res.params.lin.kernel[...])


def test_nnx_module_in_fit() -> None:
    nnx = _nnx()
    net = _net(nnx)
    loss = lambda m, batch: nnx_loss(m, *batch)  # noqa: E731
    res = jaxgd.fit(loss, net, (X, Y), batch_size=16, epochs=300, key=jax.random.key(0), method="adam", lr=0.05,
                    progress=False, eval_data=(X, Y), metric=loss)
    assert type(res.params) is type(net)
    np.testing.assert_allclose(np.r_[res.params.lin.kernel[...][:, 0], res.params.lin.bias[...]], LSTSQ, atol=1e-4)


def _dropout_net(nnx: Any) -> Any:
    class DropNet(nnx.Module):
        def __init__(self, rngs: Any) -> None:
            self.lin = nnx.Linear(3, 1, rngs=rngs, param_dtype=jnp.float64)
            self.drop = nnx.Dropout(0.5, rngs=rngs)  # holds an RNG stream: a typed key among the model's arrays

        def __call__(self, x: jax.Array) -> jax.Array:
            return self.lin(self.drop(x))[:, 0]

    return DropNet(nnx.Rngs(0, dropout=1))


def test_nnx_model_with_an_rng_stream_trains_in_eval_mode_and_train_mode_is_explained() -> None:
    """Reference: numpy's least squares (LSTSQ): in eval mode dropout is the identity, so minimize must
    reach the linear fit; a typed PRNG key among the model's arrays crashed minimize's repeat-call key
    (AttributeError: no weak_type; a user review, session 53). In train mode the forward pass updates
    the model's RNG counts, which jaxgd holds fixed: a ValueError that says so and what to do, where a
    bare flax TraceContextError surfaced."""
    nnx = _nnx()
    net = _dropout_net(nnx)
    with pytest.raises(ValueError, match=r"changes its own state.*model\.eval\(\)"):
        jaxgd.minimize(nnx_loss, net, (X, Y), method="lbfgs", max_steps=5)
    with pytest.raises(ValueError, match="changes its own state"):
        jaxgd.fit(lambda m, b: nnx_loss(m, *b), net, (X, Y), batch_size=16, epochs=1, key=jax.random.key(0), progress=False)
    net.eval()
    res = jaxgd.minimize(nnx_loss, net, (X, Y), method="lbfgs", max_steps=200, gtol=1e-10)
    assert type(res.params) is type(net) and res.success
    np.testing.assert_allclose(np.r_[res.params.lin.kernel[...][:, 0], res.params.lin.bias[...]], LSTSQ, rtol=1e-7, atol=1e-9)


def test_plain_pytrees_are_not_touched() -> None:
    from jaxgd.interop import models

    assert models.split({"w": jnp.zeros(3)}) is None
    assert models.split(eqx.nn.Linear(2, 1, key=jax.random.key(0))) is None  # only float arrays: a pytree already


@pytest.mark.slow
def test_dropped_model_losses_are_garbage_collected() -> None:
    """jaxgd's caches are weak in user functions (tests/test_caches.py); the model wrapper keeps that."""
    import gc
    import weakref

    refs = []
    for i in range(3):  # any strong reference keeps at least the last one alive
        big = jnp.full(250_000, float(i))  # 2 MB captured by the closure

        def loss(model: Affine, X: Any, y: Any, big: jax.Array = big) -> jax.Array:
            return eqx_loss(model, X, y) + 0.0 * big[0]

        jaxgd.minimize(loss, affine(), (X, Y), method="gd", lr=0.1, max_steps=3)
        refs.append(weakref.ref(loss))
        del loss, big
    gc.collect()
    assert [r() for r in refs] == [None] * 3


def test_solver_refuses_a_model_it_would_train_whole() -> None:
    """Solver.init took an NNX model with BatchNorm as one pytree and trained its batch statistics (minimize
    keeps them, as the README says): refused, naming nnx.split; an Equinox module with a function and an
    int array gets the same kind of message (it was told to cast its function to float). Reference: the
    model's own state, unchanged; an NNX model of nnx.Param only still runs in Solver."""
    nnx = _nnx()
    net = _net(nnx)
    solver = jaxgd.Solver(nnx_loss, method="lbfgs")
    with pytest.raises(TypeError, match=r"Flax NNX model \(Net\) holding state besides nnx.Param.*nnx.split"):
        solver.init(net, X, Y)
    with pytest.raises(TypeError, match=r"Equinox module \(Affine\) with leaves that are not float arrays.*eqx.partition"):
        jaxgd.Solver(eqx_loss, method="lbfgs").init(affine(), X, Y)
    lin = nnx.Linear(3, 1, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    state = jaxgd.Solver(lambda m, x, y: jnp.mean((m(x)[:, 0] - y) ** 2), method="lbfgs").init(lin, X, Y)
    assert np.isfinite(float(state.value))


class _Signed(eqx.Module):
    """A model with a float field: ``0.0`` and ``-0.0`` are equal under ``==`` but not to ``copysign``."""

    w: jax.Array
    s: float

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w * jnp.copysign(1.0, self.s)


@pytest.mark.slow  # ~2.4 s: two lbfgs programs
def test_model_fields_equal_under_eq_but_not_in_bits_do_not_share_a_loop() -> None:
    """The static part was keyed by ``==``: a model with ``s=-0.0`` ran the loop traced from ``s=0.0`` (and was
    handed back with ``s=0.0``). Reference: least squares by NumPy, the weights' sign set by ``s``."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(16, 3))
    Y = X @ np.asarray([1.0, -2.0, 0.5])
    loss = lambda m, x, y: jnp.mean((m(x) - y) ** 2)  # noqa: E731
    w_star = np.linalg.lstsq(X, Y, rcond=None)[0]
    for s in (0.0, -0.0):
        res = jaxgd.minimize(loss, _Signed(jnp.zeros(3), s), (X, Y), method="lbfgs", max_steps=100)
        assert np.signbit(res.params.s) == np.signbit(s)
        np.testing.assert_allclose(np.asarray(res.params.w), np.copysign(1.0, s) * w_star, rtol=1e-6, atol=1e-8)
