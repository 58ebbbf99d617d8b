"""One battery of invariants over every step-size rule in ``jaxgd.linesearch``
(STYLE.md principle 12; ``test_common.py`` does the same for methods).

``RULES_UNDER_TEST`` is read from ``jaxgd.linesearch.__all__`` (every class
that satisfies ``jaxgd.protocols.StepSizeRule``), so a rule added there joins
the battery without editing this file; ``KWARGS`` may give it arguments that
make it converge on the test problem. Each rule must: converge on a convex
quadratic (reference: the closed form ``A^{-1} b`` via ``np.linalg.solve``);
keep a stable loop carry (same tree, shapes, dtypes); keep float32 and
float64; give the same answer jitted and eager (reference: the same solver
run op by op under ``jax.disable_jit``); not retrace for a new value of a
hyperparameter (a leaf of the rule).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import linesearch, protocols

A = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])
B = np.array([1.0, -2.0, 0.5])
SOLUTION = np.linalg.solve(A, B)
F_STAR = float(-0.5 * B @ SOLUTION)  # the minimum value 1/2 x'Ax - b'x at x = A^{-1} b


def quad(p):
    x = jnp.concatenate([p["w"], p["b"][None]])
    a, b = jnp.asarray(A, x.dtype), jnp.asarray(B, x.dtype)
    return 0.5 * x @ a @ x - b @ x


def x0(dtype=jnp.float64):
    return {"w": jnp.zeros(2, dtype), "b": jnp.asarray(0.0, dtype)}


def _rules() -> list[type]:
    out = []
    for name in linesearch.__all__:
        obj = getattr(linesearch, name)
        if inspect.isclass(obj) and callable(getattr(obj, "step", None)) and isinstance(obj(), protocols.StepSizeRule):
            out.append(obj)
    return out


RULES_UNDER_TEST = _rules()
# Arguments under which a rule converges on the quadratic with method="gd"
# (the defaults of the others do): a starting step for the ones that only adapt
# it, the known optimal value for Polyak, and no relative-improvement threshold
# for ReduceOnPlateau (near the minimum every improvement is relatively tiny).
KWARGS = {"ReduceOnPlateau": dict(initial=0.3, rtol=0.0), "BarzilaiBorwein": dict(initial=0.1), "Polyak": dict(f_star=F_STAR)}
ids = lambda c: c.__name__  # noqa: E731


def make(cls):
    return cls(**KWARGS.get(cls.__name__, {}))


def flat(params) -> np.ndarray:
    return np.concatenate([np.asarray(params["w"]), [float(params["b"])]])


def test_the_battery_sees_every_rule():
    names = {c.__name__ for c in RULES_UNDER_TEST}
    assert {"Backtracking", "StrongWolfe", "Exact", "BarzilaiBorwein", "Polyak", "ReduceOnPlateau"} <= names


@pytest.mark.parametrize("cls", RULES_UNDER_TEST, ids=ids)
def test_converges_on_quadratic(cls):
    """Reference: the closed-form minimiser A^{-1} b."""
    res = jaxgd.minimize(quad, x0(), method="gd", lr=make(cls), max_steps=1000, gtol=1e-7)
    assert res.status_enum.name == "GTOL", res.message
    np.testing.assert_allclose(flat(res.params), SOLUTION, atol=1e-6)
    np.testing.assert_allclose(float(res.loss), F_STAR, rtol=1e-11)


@pytest.mark.parametrize("cls", RULES_UNDER_TEST, ids=ids)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_stable_carry_and_dtype(cls, dtype):
    solver = jaxgd.Solver(quad, "gd", make(cls), gtol=0.0)
    step = jax.jit(solver.step)
    s0 = solver.init(x0(dtype))
    s1 = step(s0)
    s2 = step(s1)
    spec = lambda s: jax.tree_util.tree_map(lambda x: (jnp.shape(x), jnp.result_type(x)), s)  # noqa: E731
    assert jax.tree_util.tree_structure(s0) == jax.tree_util.tree_structure(s2)
    assert spec(s0) == spec(s1) == spec(s2)
    assert s2.params["w"].dtype == dtype and s2.value.dtype == dtype and s2.alpha.dtype == dtype


@pytest.mark.parametrize("cls", RULES_UNDER_TEST, ids=ids)
def test_jit_equals_eager(cls):
    """Reference: the same solver run op by op with jax.disable_jit."""
    solver = jaxgd.Solver(quad, "gd", make(cls), max_steps=2, gtol=0.0)
    with jax.disable_jit():
        eager = solver.run(x0())
    jitted = jax.jit(lambda s, x: s.run(x))(solver, x0())
    np.testing.assert_allclose(flat(jitted.params), flat(eager.params), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.asarray(jitted.history.lr), np.asarray(eager.history.lr), rtol=1e-10)


def _with_new_value(rule):
    """The same rule with its first finite float hyperparameter scaled by 0.9 (a new leaf value)."""
    leaves, treedef = jax.tree_util.tree_flatten(rule)
    i = next(i for i, v in enumerate(leaves) if isinstance(v, float) and np.isfinite(v) and v != 0.0)
    leaves[i] = leaves[i] * 0.9
    return jax.tree_util.tree_unflatten(treedef, leaves), i


@pytest.mark.parametrize("cls", RULES_UNDER_TEST, ids=ids)
def test_new_hyperparameter_value_does_not_retrace(cls):
    traces = []

    def fun(p):
        traces.append(1)
        return quad(p)

    rule = make(cls)
    first = jaxgd.minimize(fun, x0(), method="gd", lr=rule, max_steps=3, gtol=0.0)
    n = len(traces)
    other, i = _with_new_value(rule)
    second = jaxgd.minimize(fun, x0(), method="gd", lr=other, max_steps=3, gtol=0.0)
    assert len(traces) == n, f"leaf {i} of {cls.__name__}: a new value retraced"
    assert int(first.steps) == int(second.steps) == 3
