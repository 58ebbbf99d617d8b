"""Strict, deterministic test environment (STYLE.md principle 15), and the
helpers the checkpoint tests share (``from conftest import ...``).

float64 is on so that reference comparisons are exact to 1e-10; float32
behaviour is tested with explicit float32 inputs. Rank promotion raises, so a
silent broadcast is a test failure.
"""

from typing import Any

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
# Dtype promotion stays "standard": optax itself mixes Python floats with int32
# step counts (optax.tree.bias_correction), which "strict" rejects.


def assert_bitwise(a: Any, b: Any) -> None:
    """Same structure, dtypes and bits in every leaf (NaN == NaN)."""
    la, ta = jax.tree_util.tree_flatten_with_path(a)
    lb, tb = jax.tree_util.tree_flatten_with_path(b)
    assert ta == tb
    for (path, x), (_, y) in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, jax.tree_util.keystr(path)
        assert x.tobytes() == y.tobytes(), f"{jax.tree_util.keystr(path)}: {x} != {y}"


class Crash(Exception):
    """Stands in for the process dying right after a checkpoint was written."""


@pytest.fixture
def crash_after(monkeypatch: pytest.MonkeyPatch):
    """``crash_after(n)``: the n-th checkpoint write succeeds, then the run dies."""
    from jaxgd.checkpoint import format as _checkpoint  # after the config above

    calls = {"n": 0}

    def arm(n: int) -> dict:
        real = _checkpoint.save_checkpoint

        def save(*a: Any, **k: Any) -> str:
            out = real(*a, **k)
            calls["n"] += 1
            if calls["n"] == n:
                raise Crash
            return out

        monkeypatch.setattr(_checkpoint, "save_checkpoint", save)
        return calls

    return arm
