"""Caches keyed on user functions are weak (jaxgd.core.cache): a dropped loss
closure and the arrays it captured are freed after ``minimize`` and ``fit``.

Reference: ``weakref.ref`` to each captured 2 MB array, dead after
``gc.collect()`` (the behaviour of plain ``jax.jit`` on a closure).
"""

from __future__ import annotations

import dataclasses
import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.core import cache as _cache


def _closure(i: int) -> tuple:
    big = jnp.asarray(np.full(250_000, float(i)))  # 2 MB of float64

    def loss(p: jax.Array, batch: tuple = None) -> jax.Array:
        if batch is None:
            return jnp.sum((p - big[:3]) ** 2)
        X, y = batch
        return jnp.mean((X @ p - y) ** 2) + 0.0 * big[0]

    return loss, weakref.ref(big)


@pytest.mark.parametrize(
    "how",
    ["minimize", pytest.param("fit", marks=pytest.mark.slow), pytest.param("minimize_checkpointed", marks=pytest.mark.slow), pytest.param("fit_eval", marks=pytest.mark.slow)],
)
def test_dropped_loss_closures_are_garbage_collected(how: str, tmp_path) -> None:
    X, y = jnp.ones((8, 3)), jnp.ones(8)
    refs = []
    # Any strong reference in a cache (an LRU of any size included) keeps at least the
    # last closure alive, so three are enough; each compiles its own loop.
    for i in range(3):
        loss, ref = _closure(i)
        if how == "minimize":
            jaxgd.minimize(loss, jnp.zeros(3), lr=0.1, max_steps=3)
        elif how == "minimize_checkpointed":
            jaxgd.minimize(loss, jnp.zeros(3), lr=0.1, max_steps=4, checkpoint_every=2, checkpoint_path=tmp_path / "c.ckpt")
        else:
            extra = dict(eval_data=(X, y)) if how == "fit_eval" else {}
            jaxgd.fit(loss, jnp.zeros(3), (X, y), batch_size=4, epochs=2, key=jax.random.key(0), progress=False, **extra)
        refs.append(ref)
        del loss
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


def test_per_function_cache_is_bounded_and_weak() -> None:
    cache = _cache.PerFunction(maxsize=3)

    def f() -> None:
        pass

    for k in range(10):
        assert cache.get(f, k, lambda k=k: k * 2) == k * 2
    assert len(cache._entries(f)) == 3 and cache.get(f, 9, lambda: None) == 18
    del f
    gc.collect()
    assert len(cache) == 0


@dataclasses.dataclass
class _Ridge:
    """A loss object with an array field: ``eq=True`` makes it unhashable, as an Equinox module with an
    array field is (its hash hashes the arrays)."""

    lam: jax.Array

    def __call__(self, x: jax.Array) -> jax.Array:
        return 0.5 * jnp.sum((_A @ x - 1.0) ** 2) + 0.5 * self.lam * jnp.sum(x**2)


_A = jnp.asarray(np.random.default_rng(10).normal(size=(30, 5)))


def _ridge(lam: float) -> np.ndarray:
    a = np.asarray(_A)
    return np.linalg.solve(a.T @ a + lam * np.eye(5), a.sum(0))


def test_an_unhashable_loss_object_is_cached_by_identity_and_differentiable() -> None:
    """Reference: ridge regression's closed form x* = (A'A + lam I)^-1 A'1 and its derivative in lam,
    -(A'A + lam I)^-1 x*. It raised "unhashable type" from the per-function cache."""
    assert _ridge(0.7).shape == (5,)
    with pytest.raises(TypeError):
        hash(_Ridge(jnp.asarray(0.7)))
    res = jaxgd.minimize(_Ridge(jnp.asarray(0.7)), jnp.zeros(5), method="lbfgs", gtol=1e-10)
    np.testing.assert_allclose(res.params, _ridge(0.7), atol=1e-8)
    a = np.asarray(_A)
    want = -np.linalg.solve(a.T @ a + 0.7 * np.eye(5), _ridge(0.7)).sum()
    got = jax.grad(lambda lam: jnp.sum(jaxgd.minimize(_Ridge(lam), jnp.zeros(5), method="lbfgs", gtol=1e-10).params))(0.7)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("rule", ["Backtracking", pytest.param("Polyak", marks=pytest.mark.slow)])
def test_a_rule_made_from_a_traced_value_is_not_cached(rule: str) -> None:
    """Backtracking(shrink=s) or Polyak(f_star=s) under jax.jit: the plan cache kept the rule, and its tracer,
    after the trace (jax.checking_leaks raised; a user review in session 57). Reference: JAX's own leak check,
    and the same run with the value concrete."""
    make = {"Backtracking": lambda s: jaxgd.linesearch.Backtracking(shrink=s),
            "Polyak": lambda s: jaxgd.linesearch.Polyak(f_star=s)}[rule]

    def f(x: jax.Array) -> jax.Array:
        return jnp.sum((x - 1.0) ** 2) * 1.25

    def run(s: jax.Array) -> jax.Array:
        return jaxgd.minimize(f, jnp.zeros(2), method="gd", lr=make(s), max_steps=20).loss

    with jax.checking_leaks():
        traced = jax.jit(run)(0.5)
    assert float(traced) == float(run(0.5))
