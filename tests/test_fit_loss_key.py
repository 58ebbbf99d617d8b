"""``fit(..., loss_key=True)``: ``fun(params, batch, key)`` with a key that differs every optimizer step.

The documented formula is ``step_key = fold_in(fold_in(key, 0xFFFFFFFF), step)``, ``step`` the global
optimizer-step count, while epoch ``e`` still shuffles with ``permutation(fold_in(key, e), n)``. The
references: a hand-written optax + ``lax.scan`` loop that draws those shuffles and keys (a dropout loss, and
an Equinox model with ``eqx.nn.Dropout``), the uninterrupted run (a checkpointed run resumed mid-way; one
run per key under ``jax.vmap``), the ``Remainder.DROP`` run (``Remainder.MASK`` with no padding) and the
run without a mesh (a one-device mesh).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from conftest import slow_if

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * RNG.normal(size=12)
DATA = (X, Y)
KEEP = 0.8


def dropout_loss(p, batch, key):
    """Inverted dropout on the inputs: a mask drawn from ``key``."""
    x, y = batch
    mask = jax.random.bernoulli(key, KEEP, x.shape)
    return jnp.mean(((x * mask / KEEP) @ p - y) ** 2)


def hand_loop(loss, params, data, key, *, batch_size, epochs, opt):
    """optax + lax.scan: epoch e shuffles with permutation(fold_in(key, e), n); step s draws
    fold_in(fold_in(key, 0xFFFFFFFF), s) (fit's documented formulas)."""
    data = jax.tree_util.tree_map(jnp.asarray, data)
    n = jax.tree_util.tree_leaves(data)[0].shape[0]
    nb = n // batch_size
    idx = jnp.stack([jax.random.permutation(jax.random.fold_in(key, e), n)[: nb * batch_size].reshape(nb, batch_size)
                     for e in range(epochs)]).reshape(epochs * nb, batch_size)
    stream = jax.random.fold_in(key, 0xFFFFFFFF)

    def step(carry, xs):
        p, s = carry
        i, count = xs
        batch = jax.tree_util.tree_map(lambda a: a[i], data)
        g = jax.grad(loss)(p, batch, jax.random.fold_in(stream, count))
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), (idx, jnp.arange(epochs * nb)))
    return p


KW = dict(batch_size=4, epochs=3, progress=False)


def _fit(**kw):
    kw = {"key": jax.random.key(0), "loss_key": True, "method": optax.adam(0.05), **KW, **kw}
    return jaxgd.fit(kw.pop("fun", dropout_loss), kw.pop("params", jnp.zeros(3)), kw.pop("data", DATA), **kw)


@pytest.mark.parametrize("key", [slow_if(False, jax.random.key(0), id="typed"),
                                 slow_if(True, jax.random.PRNGKey(3), id="raw")])
def test_dropout_fit_is_the_hand_loop(key):
    """Reference: the optax + lax.scan loop with the documented shuffles and per-step keys."""
    res = _fit(key=key)
    want = hand_loop(dropout_loss, jnp.zeros(3), DATA, key, batch_size=4, epochs=3, opt=optax.adam(0.05))
    assert int(res.steps) == 9
    np.testing.assert_allclose(res.params, want, rtol=0, atol=1e-12)
    # the keys matter: a loss without dropout (the same mask of ones) ends elsewhere
    plain = hand_loop(lambda p, b, k: jnp.mean((b[0] @ p - b[1]) ** 2), jnp.zeros(3), DATA, key, batch_size=4,
                      epochs=3, opt=optax.adam(0.05))
    assert np.max(np.abs(np.asarray(res.params) - np.asarray(plain))) > 1e-3


def test_shuffles_unchanged_by_loss_key():
    """Reference: the run without loss_key: a loss that ignores its key takes the very same steps."""
    with_key = _fit(fun=lambda p, b, k: jnp.mean((b[0] @ p - b[1]) ** 2))
    without = _fit(fun=lambda p, b: jnp.mean((b[0] @ p - b[1]) ** 2), loss_key=False)
    np.testing.assert_array_equal(with_key.params, without.params)
    np.testing.assert_array_equal(with_key.history.train_loss, without.history.train_loss)


@pytest.mark.slow
def test_same_key_same_run_other_key_other_run():
    a, b, c = _fit(), _fit(), _fit(key=jax.random.key(1))
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(np.asarray(a.params), np.asarray(c.params))


@pytest.mark.slow
def test_vmap_over_keys_is_each_run():
    """Reference: each key's own run (the per-step keys follow each run's key under jax.vmap)."""
    keys = jax.random.split(jax.random.key(5), 2)
    batched = jax.vmap(lambda k: _fit(key=k).params)(keys)
    for i in range(2):
        np.testing.assert_allclose(batched[i], _fit(key=keys[i]).params, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_resumed_checkpoint_is_the_uninterrupted_run(tmp_path):
    """Reference: the uninterrupted run (step keys follow the global step count across a resume)."""
    path = tmp_path / "ck"
    whole = _fit(epochs=4)
    _fit(epochs=2, checkpoint_path=path)
    resumed = _fit(epochs=4, resume=path)
    np.testing.assert_array_equal(resumed.params, whole.params)
    np.testing.assert_array_equal(resumed.history.train_loss, whole.history.train_loss)
    with pytest.raises(ValueError, match="loss_key"):  # a run without the keys is another run
        _fit(fun=lambda p, b: dropout_loss(p, b, jax.random.key(0)), loss_key=False, epochs=4, resume=path)


@pytest.mark.slow
def test_mask_without_padding_is_the_drop_run():
    """Reference: Remainder.DROP, with n divisible by batch_size (every weight 1): fun(params, batch, weights, key)."""
    def masked(p, batch, w, key):
        x, y = batch
        mask = jax.random.bernoulli(key, KEEP, x.shape)
        return jnp.sum(w * ((x * mask / KEEP) @ p - y) ** 2) / jnp.sum(w)

    res = _fit(fun=masked, remainder=jaxgd.Remainder.MASK)
    np.testing.assert_allclose(res.params, _fit().params, rtol=0, atol=1e-12)


def test_eval_is_without_key():
    """eval_fun is called as eval_fun(params, eval_data) (deterministic); a fun whose key defaults to None is
    the default eval_fun, called without a key (reference: the loss without dropout at the final params)."""
    def loss(p, batch, key=None):
        x, y = batch
        if key is not None:
            x = x * jax.random.bernoulli(key, KEEP, x.shape) / KEEP
        return jnp.mean((x @ p - y) ** 2)

    res = _fit(fun=loss, eval_data=DATA)
    want = float(jnp.mean((X @ res.params - Y) ** 2))
    np.testing.assert_allclose(res.history.eval_loss[-1], want, rtol=1e-12)


@pytest.mark.slow
def test_one_device_mesh_is_the_plain_run():
    """Reference: the run without a mesh."""
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    np.testing.assert_array_equal(_fit(mesh=mesh).params, _fit().params)


def test_equinox_dropout_model_is_the_hand_loop():
    """Reference: the hand loop on eqx.partition's arrays, eqx.nn.Dropout drawing from the step's key."""
    eqx = pytest.importorskip("equinox")

    class Net(eqx.Module):
        lin: eqx.nn.Linear
        drop: eqx.nn.Dropout

        def __call__(self, x, key):
            return jax.vmap(self.lin)(self.drop(x, key=key))[:, 0]

    net = Net(eqx.nn.Linear(3, 1, key=jax.random.key(2)), eqx.nn.Dropout(0.2))

    def loss(model, batch, key):
        x, y = batch
        return jnp.mean((model(x, key) - y) ** 2)

    res = jaxgd.fit(loss, net, DATA, key=jax.random.key(0), loss_key=True, method=optax.sgd(0.05), **KW)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    want = hand_loop(lambda p, b, k: loss(eqx.combine(p, static), b, k), params, DATA, jax.random.key(0),
                     batch_size=4, epochs=3, opt=optax.sgd(0.05))
    assert isinstance(res.params, Net)
    np.testing.assert_allclose(res.params.lin.weight, want.lin.weight, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.params.lin.bias, want.lin.bias, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["rngs", "dropout_rng"])
def test_flax_spellings_point_at_loss_key(name):
    """Flax's train-step keywords for dropout keys name fit's loss_key (before anything compiles)."""
    with pytest.raises(TypeError, match=r"fit\(\.\.\., loss_key=True\)"):
        jaxgd.fit(lambda p, b: jnp.mean(b[0] @ p), jnp.zeros(3), DATA, batch_size=4, epochs=1,
                  key=jax.random.key(0), **{name: jax.random.key(1)})
