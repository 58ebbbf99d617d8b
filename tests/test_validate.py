"""``jaxgd._validate``: one policy for numbers, arrays, tracers, counts and flags,
and the same policy seen through every module that uses it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import _validate as V

NOT_SCALAR = "(a scalar, got shape (2,))"


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.int64(2), np.array(0.5), jnp.asarray(0.5)])
def test_real_scalars_are_accepted(value):
    out = V.real("a", value)
    assert np.shape(out) == () and float(out) == float(value)
    if isinstance(value, (int, float, np.generic)):
        assert type(out) is float  # weakly typed: a new value never retraces


@pytest.mark.parametrize("value", [True, np.bool_(False), "0.5", None, 1j, np.array(1j), object(), np.array(True)])
def test_wrong_kinds_raise_type_error_naming_the_argument(value):
    with pytest.raises(TypeError, match="^c1 must be a real number or a real scalar array, got c1="):
        V.real("c1", value)


@pytest.mark.parametrize("value", [np.array([0.5, 0.5]), jnp.ones(2), np.ones((2,), np.int32)])
def test_arrays_of_another_shape_raise_value_error(value):
    for check in (V.real, V.positive, V.nonneg, V.finite, V.open_unit):
        with pytest.raises(ValueError, match=f"^c1 must be a real number.*{NOT_SCALAR.replace('(', '[(]').replace(')', '[)]')}$"):
            check("c1", value)


@pytest.mark.parametrize(
    "check,good,bad",
    [
        (V.positive, [1e-9, 3], [0.0, -1.0, np.inf, np.nan]),
        (V.nonneg, [0.0, 2.0], [-1e-9, np.inf, np.nan]),
        (V.finite, [-5.0, 0.0], [np.inf, -np.inf, np.nan]),
        (V.open_unit, [1e-9, 0.5, 1 - 1e-9], [0.0, 1.0, np.nan]),
        (lambda n, v, *a, **k: V.greater(n, v, 1.0, *a, **k), [1.5], [1.0, 0.5, np.inf, np.nan]),
    ],
)
def test_ranges(check, good, bad):
    for v in good:
        assert check("x", v) == v
    for v in bad:
        with pytest.raises(ValueError, match="^x must"):
            check("x", v)


def test_callers_message_is_used_for_the_value():
    with pytest.raises(ValueError, match=r"^lr=-1.0 is bad$"):
        V.positive("lr", -1.0, "{name}={value!r} is bad")


def test_tracers_pass_value_checks_but_not_shape_checks():
    assert jax.jit(lambda v: V.open_unit("c1", v) * 2)(5.0) == 10.0  # a traced 5.0 is not checked
    assert jax.vmap(lambda v: V.positive("lr", v))(jnp.array([-1.0, 1.0])).shape == (2,)
    with pytest.raises(ValueError, match=NOT_SCALAR.replace("(", "[(]").replace(")", "[)]")):
        jax.jit(lambda v: V.positive("lr", v))(jnp.ones(2))
    assert V.value_of("a", jnp.asarray(2.0)) == 2.0
    assert jax.jit(lambda v: V.value_of("a", v) is None)(1.0)


def test_counts():
    assert V.count("n", 3) == 3 and V.count("n", np.int32(3)) == 3 and V.count("n", jnp.asarray(3)) == 3
    assert V.count("n", 0, minimum=0) == 0
    for bad in (0, 2.0, 2.5, True, "3", None, np.array([1, 2])):
        with pytest.raises(ValueError, match="^n must be an integer >= 1"):
            V.count("n", bad)


def test_flags_and_every():
    assert V.flag("f", np.bool_(True)) is True
    with pytest.raises(TypeError, match="^f must be a bool, got f=1$"):
        V.flag("f", 1)
    assert [V.every("e", v) for v in (True, False, 3)] == [1, 0, 3]
    for bad in (0, -1):
        with pytest.raises(ValueError, match="^e must be a bool or a positive integer"):
            V.every("e", bad)
    for bad in (1.5, "2"):  # a wrong type is a TypeError, as fit's progress= was (a user review in session 57)
        with pytest.raises(TypeError, match="^e must be a bool or a positive integer"):
            V.every("e", bad)


# The policy seen through every converted module: a scalar hyperparameter given
# as an array of two valid values is refused by name (before issue 11, some
# constructors accepted it and others raised).
SAME_POLICY = [
    ("linesearch.Backtracking c1", lambda v: jaxgd.linesearch.Backtracking(c1=v), 1e-4),
    ("linesearch.StrongWolfe c2", lambda v: jaxgd.linesearch.StrongWolfe(c2=v), 0.9),
    ("linesearch.Exact xtol", lambda v: jaxgd.linesearch.Exact(xtol=v), 1e-6),
    ("linesearch.BarzilaiBorwein initial", lambda v: jaxgd.linesearch.BarzilaiBorwein(initial=v), 0.1),
    ("linesearch.Polyak f_star", lambda v: jaxgd.linesearch.Polyak(f_star=v), 0.0),
    ("linesearch.ReduceOnPlateau factor", lambda v: jaxgd.linesearch.ReduceOnPlateau(factor=v), 0.5),
    ("schedules.step_decay gamma", lambda v: jaxgd.schedules.step_decay(0.1, 10, v), 0.5),
    ("schedules.cyclic_triangular max_lr", lambda v: jaxgd.schedules.cyclic_triangular(0.1, v, 10), 1.0),
    ("problems.logistic_regression l2", lambda v: jaxgd.problems.logistic_regression(l2=v), 0.1),
    ("check_grad atol", lambda v: jaxgd.check_grad(lambda x: jnp.sum(x**2), jnp.ones(2), atol=v), 1e-9),
]


@pytest.mark.parametrize("name,build,valid", SAME_POLICY, ids=[r[0] for r in SAME_POLICY])
def test_every_module_refuses_an_array_for_a_scalar(name, build, valid):
    build(valid)  # the scalar is fine
    arg = name.split()[-1]
    with pytest.raises(ValueError, match=f"^{arg} must be a real number or a real scalar array.*" + NOT_SCALAR.replace("(", "[(]").replace(")", "[)]")):
        build(np.array([valid, valid]))
    with pytest.raises(TypeError, match=f"^{arg} must be a real number or a real scalar array"):
        build(True)
