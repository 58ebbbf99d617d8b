"""A Flax NNX / Equinox model's fixed arrays in ``fit``'s compiled loop (jaxgd.interop.models).

``fit`` trains a model's float arrays and holds the rest (BatchNorm's running statistics, an integer
field) fixed. Those arrays are an input of the compiled loop, as ``minimize`` passes them in ``args``:
a fresh model of the same shapes and dtypes re-uses the loop, and its own fixed arrays are used, not
the first model's baked in as constants (a user review, session 60: two compiles of 2-3 s per ``fit``
call for every fresh model).

Reference: a hand-written optax loop (``optax.adam`` over the batches ``fit`` draws,
``jax.random.permutation(fold_in(key, epoch), n)`` cut into consecutive batches), on the model split
by hand (``nnx.split``/``nnx.merge``, ``eqx.partition``/``eqx.combine``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd

RNG = np.random.default_rng(3)
X = RNG.normal(size=(48, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
KW = dict(batch_size=16, epochs=3, key=jax.random.key(5), method="adam", lr=0.05, progress=False)


def _optax_loop(loss: Callable, params: Any) -> Any:
    """``fit``'s run with ``KW``, written as a plain optax loop."""
    tx = optax.adam(KW["lr"])
    state = tx.init(params)
    n, b = len(X), KW["batch_size"]
    grad = jax.jit(jax.grad(loss))
    for epoch in range(KW["epochs"]):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(KW["key"], epoch), n))
        for i in range(n // b):
            idx = perm[i * b:(i + 1) * b]
            updates, state = tx.update(grad(params, (X[idx], Y[idx])), state, params)
            params = optax.apply_updates(params, updates)
    return params


def _fresh_model_reuses_the_loop(compiles: list, make: Callable[[int], Any], loss: Callable, split: Callable,
                                  merge: Callable):
    """``fit`` on ``make(0)``, then on ``make(1)`` (other values, same shapes): no compile, and the
    second model's own fixed arrays in the run (the reference loop uses them)."""
    jaxgd.fit(loss, make(0), (X, Y), **KW)
    model = make(1)
    before = len(compiles)
    res = jaxgd.fit(loss, model, (X, Y), **KW)
    assert len(compiles) == before, "a fresh model of the same shapes compiled fit's loop again"
    params, rest = split(model)
    ref = _optax_loop(lambda p, batch: loss(merge(p, rest), batch), params)
    got, fixed = split(res.params)
    for a, r in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-12)
    for a, r in zip(jax.tree_util.tree_leaves(fixed), jax.tree_util.tree_leaves(rest)):
        assert np.array_equal(a, r)  # the fixed arrays came back unchanged
    return res


@pytest.mark.slow  # ~5 s; the Equinox case runs in make test
def test_fit_reuses_its_loop_for_a_fresh_nnx_model_with_batch_statistics(compiles: list) -> None:
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, seed: int) -> None:
            rngs = nnx.Rngs(seed)
            self.bn = nnx.BatchNorm(3, rngs=rngs, param_dtype=jnp.float64)
            self.lin = nnx.Linear(3, 1, rngs=rngs, param_dtype=jnp.float64)

        def __call__(self, x: jax.Array) -> jax.Array:
            return self.lin(self.bn(x))[:, 0]

    def make(seed: int) -> Any:
        net = Net(seed)
        net.bn.mean[...] = jnp.full(3, 0.5 * seed)  # running statistics that differ between the models
        net.bn.var[...] = jnp.full(3, 1.0 + seed)
        net.eval()
        return net

    loss = lambda m, batch: jnp.mean((m(batch[0]) - batch[1]) ** 2)  # noqa: E731
    graphdef = nnx.graphdef(make(0))
    split = lambda m: nnx.split(m, nnx.Param, ...)[1:]  # noqa: E731
    merge = lambda p, r: nnx.merge(graphdef, p, r)  # noqa: E731
    res = _fresh_model_reuses_the_loop(compiles, make, loss, split, merge)
    assert type(res.params).__name__ == "Net" and np.array_equal(res.params.bn.var[...], np.full(3, 2.0))


def test_fit_reuses_its_loop_for_a_fresh_equinox_model_with_an_integer_array(compiles: list) -> None:
    eqx = pytest.importorskip("equinox")

    class Scaled(eqx.Module):
        w: jax.Array
        b: jax.Array
        scale: jax.Array  # an integer array: held fixed
        act: Callable

        def __call__(self, x: jax.Array) -> jax.Array:
            return self.act(x @ self.w + self.b) * self.scale

    def make(seed: int) -> Any:
        return Scaled(jnp.full(3, 0.1 * seed), jnp.zeros(()), jnp.asarray(seed + 1), jnp.tanh)

    loss = lambda m, batch: jnp.mean((m(batch[0]) - batch[1]) ** 2)  # noqa: E731
    split = lambda m: eqx.partition(m, eqx.is_inexact_array)  # noqa: E731
    merge = eqx.combine
    res = _fresh_model_reuses_the_loop(compiles, make, loss, split, merge)
    assert isinstance(res.params, Scaled) and int(res.params.scale) == 2


@pytest.mark.slow  # ~4 s; the message's check runs in test_models.py's dropout test too
def test_train_mode_message_points_at_as_optax_whose_recipe_trains_batchnorm() -> None:
    """The ModelStateError for a BatchNorm/Dropout model in train mode told to call model.eval(), which
    trains another model (BatchNorm frozen at its initial statistics, dropout off): it now says so and
    points at jaxgd.as_optax in nnx.Optimizer. Reference for that recipe: the same loop with
    optax.adam, whose parameters and batch statistics the as_optax loop must match."""
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self) -> None:
            rngs = nnx.Rngs(0, dropout=1)
            # (float32: BatchNorm's statistics are float32; no bias before BatchNorm, whose gradient is rounding
            # noise there that Adam's normalisation would amplify differently in two equal loops)
            self.lin = nnx.Linear(3, 4, use_bias=False, rngs=rngs)
            self.bn = nnx.BatchNorm(4, rngs=rngs)
            self.drop = nnx.Dropout(0.2, rngs=rngs)
            self.out = nnx.Linear(4, 1, rngs=rngs)

        def __call__(self, x: jax.Array) -> jax.Array:
            return self.out(self.drop(jax.nn.relu(self.bn(self.lin(x)))))[:, 0]

    loss = lambda m, batch: jnp.mean((m(batch[0]) - batch[1]) ** 2)  # noqa: E731
    x32, y32 = X.astype(np.float32), Y.astype(np.float32)
    with pytest.raises(ValueError, match=r"nnx\.Optimizer\(model, jaxgd\.as_optax.*initial running statistics"):
        jaxgd.fit(loss, Net(), (x32, y32), **KW)

    def train(tx: Any) -> Any:
        model = Net()
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

        @nnx.jit
        def step(model: Any, optimizer: Any) -> jax.Array:
            value, grads = nnx.value_and_grad(loss)(model, (x32, y32))
            optimizer.update(model, grads)
            return value

        losses = [float(step(model, optimizer)) for _ in range(20)]
        return model, losses

    ours, our_losses = train(jaxgd.as_optax("adam", 0.05))
    ref, ref_losses = train(optax.adam(0.05))
    assert our_losses[-1] < 0.5 * our_losses[0]
    np.testing.assert_allclose(our_losses, ref_losses, rtol=1e-5)
    assert not np.allclose(ours.bn.mean[...], 0.0)  # the batch statistics were updated
    trained = lambda m: jax.tree_util.tree_leaves((nnx.state(m, nnx.Param), nnx.state(m, nnx.BatchStat)))  # noqa: E731
    for a, r in zip(trained(ours), trained(ref)):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # ~10 s
def test_the_models_page_recipes_run() -> None:
    """docs/api/models.md's code blocks (freezing part of an NNX or Equinox model, BatchNorm in train mode
    with as_optax, Dropout with fit(loss_key=True), a Linen BatchNorm in a TrainState) run in order, with
    their own asserts. Reference: the frozen arrays unchanged, the loss lower than at the start, the running
    statistics moved."""
    pytest.importorskip("flax.nnx")
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "api" / "models.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(blocks) == 5
    namespace: dict = {}
    exec(compile("\n".join(blocks), "docs/api/models.md", "exec"), namespace)
