"""Fuzzing ``minimize`` with random pytrees, for every method in ``jaxgd.methods()``.

Random nested dict / list / tuple trees of 0-d and small float32 and float64
leaves go through a few steps of every registered method (read at collection
time, so methods added later are fuzzed too), at step sizes from tame to
divergent. Whatever happens, the run must not crash, must keep the tree's
structure, shapes and dtypes, must return finite parameters (the last finite
iterate), and must end with a finite loss or ``Status.NONFINITE``.

Hypothesis is seeded by the method's name: the same examples every run
(STYLE.md principle 15), different ones for each method. Each new tree
structure compiles a new loop, so the example counts are small; the ``slow``
variant runs many more.
"""

from __future__ import annotations

import zlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jaxgd

SHAPES = [(), (1,), (3,), (2, 2)]


def _leaf(dtype: Any) -> st.SearchStrategy:
    width = 32 if dtype == np.float32 else 64
    elements = st.floats(-3.0, 3.0, width=width, allow_nan=False, allow_infinity=False)
    return st.sampled_from(SHAPES).flatmap(lambda shape: hnp.arrays(dtype, shape, elements=elements))


LEAVES = st.one_of(_leaf(np.float32), _leaf(np.float64))
KEYS = st.sampled_from(["a", "b", "w", "bias"])
TREES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3),
        st.lists(children, min_size=1, max_size=3).map(tuple),
        st.dictionaries(KEYS, children, min_size=1, max_size=3),
    ),
    max_leaves=5,
)
LRS = st.sampled_from([1e-3, 0.1, 3.0])  # 3.0 makes gd on the quartic diverge


def loss(params: Any) -> jax.Array:
    """A smooth bowl with a quartic wall: finite minimum, fast divergence at large steps."""
    terms = [jnp.sum((x - 1.0) ** 2) + 0.25 * jnp.sum(x**4) for x in jax.tree_util.tree_leaves(params)]
    return sum(terms[1:], terms[0])


def check_run(tree: Any, method: str, lr: float) -> None:
    x0 = jax.tree_util.tree_map(jnp.asarray, tree)
    res = jaxgd.minimize(loss, x0, method=method, lr=lr, max_steps=8)
    assert jax.tree_util.tree_structure(res.params) == jax.tree_util.tree_structure(x0)
    for a, b in zip(jax.tree_util.tree_leaves(res.params), jax.tree_util.tree_leaves(x0)):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.all(np.isfinite(np.asarray(a))), "NaN/Inf params returned"
    status = res.status_enum
    assert status in set(jaxgd.Status) - {jaxgd.Status.RUNNING}
    assert np.isfinite(res.loss) or status == jaxgd.Status.NONFINITE
    assert 0 <= int(res.steps) <= 8 and res.history.loss.shape == (int(res.steps),)


def fuzz(method: str, examples: int) -> None:
    """Run ``examples`` hypothesis examples for ``method``, seeded by its name:
    reproducible, and different trees for different methods."""

    @seed(zlib.crc32(method.encode()))
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(tree=TREES, lr=LRS)
    def run(tree: Any, lr: float) -> None:
        check_run(tree, method, lr)

    run()


@pytest.mark.parametrize("method", jaxgd.methods())
def test_fuzz_every_method(method: str) -> None:
    fuzz(method, examples=2)  # 40 in make slow (test_fuzz_every_method_long)


@pytest.mark.slow
@pytest.mark.parametrize("method", jaxgd.methods())
def test_fuzz_every_method_long(method: str) -> None:
    fuzz(method, examples=40)


def test_divergence_is_reported_not_returned() -> None:
    """The fuzz's NONFINITE branch, pinned down: gd at lr=3 on the quartic."""
    x0 = {"a": jnp.full((3,), 2.0, jnp.float32), "b": (jnp.asarray(0.5),)}
    res = jaxgd.minimize(loss, x0, method="gd", lr=3.0, max_steps=8)
    assert res.status_enum == jaxgd.Status.NONFINITE
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree_util.tree_leaves(res.params))
    assert res.params["a"].dtype == jnp.float32 and res.params["b"][0].dtype == jnp.float64


@pytest.mark.parametrize("history", [True, 3, False])
def test_zero_and_few_steps_with_any_history(history: Any) -> None:
    """Edge cases the fuzz would rarely draw: ``max_steps=0`` returns ``x0``
    (an empty history buffer must not break the loop), and a history period
    longer than the run records nothing."""
    x0 = {"a": jnp.asarray(0.5, jnp.float32), "b": [jnp.ones(2)]}
    none = jaxgd.minimize(loss, x0, max_steps=0, history=history)
    assert none.status_enum == jaxgd.Status.MAX_STEPS and int(none.steps) == 0
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(none.params), jax.tree_util.tree_leaves(x0)))
    two = jaxgd.minimize(loss, x0, max_steps=2, history=history)
    assert int(two.steps) == 2 and two.history.loss.shape == ((2,) if history is True else (0,))
