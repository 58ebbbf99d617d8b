"""The test environment itself (STYLE.md principle 15): every property test is
reproducible, and the x64-off fixture really gives float32."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import jax
import jax.numpy as jnp

TESTS = Path(__file__).resolve().parent


def hypothesis_tests():
    """Every module-level ``@given`` test in tests/ (test_fuzz.py seeds its nested one by name)."""
    found = []
    for path in sorted(TESTS.glob("test_*.py")):
        if "@given" not in path.read_text():
            continue
        module = importlib.import_module(path.stem)
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if getattr(fn, "is_hypothesis_test", False):
                found.append((f"{path.stem}.{name}", fn))
    return found


def test_every_hypothesis_test_is_derandomized_or_seeded():
    tests = hypothesis_tests()
    assert len(tests) >= 8, [n for n, _ in tests]  # gradcheck, problems, linesearch at least
    loose = [
        name for name, fn in tests
        if not fn._hypothesis_internal_use_settings.derandomize and getattr(fn, "_hypothesis_internal_use_seed", None) is None
    ]
    assert loose == [], f"Hypothesis tests that draw new examples on every run: {loose}"


def test_x64_off_fixture_gives_float32(x64_off):
    assert not jax.config.jax_enable_x64
    assert jnp.asarray(1.0).dtype == jnp.float32 and jnp.arange(3.0).dtype == jnp.float32


def test_x64_is_back_on_after_the_fixture():
    assert jax.config.jax_enable_x64 and jnp.asarray(1.0).dtype == jnp.float64


def test_precision_fixture_sets_the_configuration(precision):
    """float64 with x64 on, float32 with x64 off: default arrays have the fixture's dtype."""
    assert jax.config.jax_enable_x64 == (precision.dtype == jnp.float64)
    assert jnp.asarray(1.0).dtype == precision.dtype and jnp.zeros(2).dtype == precision.dtype
