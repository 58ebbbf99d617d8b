"""One battery of invariants over every step-size rule in ``jaxgd.linesearch``
(STYLE.md principle 12; ``test_common.py`` does the same for methods).

``RULES_UNDER_TEST`` is read from ``jaxgd.linesearch.__all__`` (every class
that satisfies ``jaxgd.protocols.StepSizeRule``), so a rule added there joins
the battery without editing this file; ``KWARGS`` may give it arguments that
make it converge on the test problem. Each rule must: converge on a convex
quadratic (reference: the closed form ``A^{-1} b`` via ``np.linalg.solve``,
in float64 NumPy whatever the dtype under test); keep a stable loop carry
(same tree, shapes, dtypes); keep float32 and float64; give the same answer
jitted and eager (reference: the same solver run op by op under
``jax.disable_jit``); not retrace for a new value of a hyperparameter (a leaf
of the rule).

Every check runs twice (the ``precision`` fixture of conftest.py): in float64
with x64 on, and in float32 with x64 off -- JAX's default, what most users
run -- with tolerances derived from each dtype's machine epsilon.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd import linesearch, protocols

from conftest import QUAD_A as A, QUAD_B as B, QUAD_TRACES as TRACES, Precision, assert_bitwise, assert_same_first_steps, float_leaves_are, quad
from conftest import quad_x0 as x0

SOLUTION = np.linalg.solve(A, B)
F_STAR = float(-0.5 * B @ SOLUTION)  # the minimum value 1/2 x'Ax - b'x at x = A^{-1} b
LAMBDA_MIN, LAMBDA_MAX = (float(v) for v in np.linalg.eigvalsh(A)[[0, -1]])  # 0.91, 3.21
# The size of the terms summed to evaluate the loss near x*: its rounding error is a few eps times this.
F_TERMS = float(0.5 * np.abs(SOLUTION) @ np.abs(A) @ np.abs(SOLUTION) + np.abs(B) @ np.abs(SOLUTION))
# Rules that decide the step from loss values alone (Brent's bracket; Polyak's f - f*): near x* a
# gradient step lowers f by about ||g||^2 / (2 L), which drowns in the rounding of f (eps |f*|) once
# ||g|| < sqrt(2 L eps |f*|) -- 5e-8 in float64, 1.2e-3 in float32, in either dtype far above an
# eps-sized gtol. Measured: Exact fails its search at ||g|| = 3.9e-8 / 1.0e-3 and Polyak stops moving at
# 3.1e-8 / 5.0e-4 (its f - f* rounds to <= 0: a zero step). They get twice that floor as gtol.
VALUE_LIMITED = {"Exact", "Polyak"}


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


def gtol_for(cls, precision: Precision) -> float:
    """The gradient-norm tolerance ``cls`` can reach in ``precision.dtype`` (see ``VALUE_LIMITED``)."""
    if cls.__name__ in VALUE_LIMITED:
        return 2.0 * float(np.sqrt(2.0 * LAMBDA_MAX * precision.eps * abs(F_STAR)))
    return precision.gtol


def test_the_battery_sees_every_rule():
    names = {c.__name__ for c in RULES_UNDER_TEST}
    assert {"Backtracking", "StrongWolfe", "Exact", "BarzilaiBorwein", "Polyak", "ReduceOnPlateau"} <= names


def converge(rule, cls, precision):
    """test_converges_on_quadratic's run (``rule`` a ``cls`` with any leaf values): the
    jit-vs-eager and no-retrace checks make the same call, so they re-use its compiled loop."""
    return jaxgd.minimize(quad, x0(precision.dtype), method="gd", lr=rule, max_steps=1000, gtol=gtol_for(cls, precision))


@pytest.mark.parametrize("cls", RULES_UNDER_TEST, ids=ids)
def test_converges_on_quadratic(cls, precision):
    """Reference: the closed-form minimiser A^{-1} b and minimum -b'A^{-1}b/2 (NumPy, float64).

    A run stopped by gtol has ||x - x*|| <= ||g|| / lambda_min(A) < 1.1 gtol and
    f - f* <= ||g||^2 / (2 lambda_min), plus the rounding of f itself (a few eps of its terms).
    """
    gtol = gtol_for(cls, precision)
    res = converge(make(cls), cls, precision)
    assert res.status_enum.name == "GTOL", res.message
    assert float_leaves_are((res.params, res.loss, res.grad_norm, res.history), precision.dtype)
    np.testing.assert_allclose(flat(res.params), SOLUTION, rtol=0, atol=2 * gtol)
    f_tol = gtol**2 / (2 * LAMBDA_MIN) + 6 * precision.eps * F_TERMS
    np.testing.assert_allclose(float(res.loss), F_STAR, rtol=0, atol=f_tol)


def _states(cls, dtype):
    """Three loop carries (init, and two steps) from a start of ``dtype``, as shapes, dtypes
    and weak types: ``jax.eval_shape`` traces each step as ``jit`` would, without compiling."""
    solver = jaxgd.Solver(quad, "gd", make(cls), gtol=0.0)
    s0 = jax.eval_shape(solver.init, x0(dtype))
    s1 = jax.eval_shape(solver.step, s0)
    return s0, s1, jax.eval_shape(solver.step, s1)


def _assert_stable(states, dtype):
    s0, s1, s2 = states
    spec = lambda s: jax.tree_util.tree_map(lambda x: (x.shape, x.dtype, x.weak_type), s)  # noqa: E731
    assert jax.tree_util.tree_structure(s0) == jax.tree_util.tree_structure(s2)
    assert spec(s0) == spec(s1) == spec(s2)
    # every float in the carry (params, value, grad, alpha, the rule's state) has the start's dtype
    assert float_leaves_are(s2, dtype), spec(s2)


@pytest.mark.parametrize("cls", RULES_UNDER_TEST, ids=ids)
def test_stable_carry_and_dtype(cls, precision):
    _assert_stable(_states(cls, precision.dtype), precision.dtype)
    if precision.dtype == jnp.float32:
        # and float32 stays float32 where float64 exists (x64 on): no hyperparameter promotes it
        with jax.enable_x64(True):
            _assert_stable(_states(cls, jnp.float32), jnp.float32)


@pytest.mark.parametrize("cls", RULES_UNDER_TEST, ids=ids)
def test_jit_equals_eager(cls, precision):
    """Reference: the same solver run op by op with jax.disable_jit, for its first two steps.

    The compiled side is test_converges_on_quadratic's ``minimize`` call (its loop, re-used
    when that test ran first in this process); the two runs' histories must agree step by step.
    """
    solver = jaxgd.Solver(quad, "gd", make(cls), max_steps=2, gtol=0.0)
    with jax.disable_jit():
        eager = solver.run(x0(precision.dtype))
    jitted = converge(make(cls), cls, precision)
    # XLA may fuse and reorder a jitted loop's arithmetic: agreement to a few hundred ulps. Exact's
    # step minimises phi(alpha) by values alone, which fixes it only to ~sqrt(eps) relative (phi is
    # flat to rounding within sqrt(2 eps |f| / phi'') of its minimiser): an ulp of difference in f
    # moves Brent's answer by up to that (measured in float32: 1.2e-4 relative, sqrt(eps) = 3.5e-4).
    rtol = 4 * np.sqrt(precision.eps) if cls.__name__ == "Exact" else 500 * precision.eps
    tol = dict(rtol=rtol, atol=100 * precision.eps)
    assert_same_first_steps(jitted, eager, precision.dtype, **tol)
    assert float_leaves_are((jitted.params, eager.params), precision.dtype)


def _with_new_value(rule):
    """The same rule with its first finite float hyperparameter scaled by 0.9 (a new leaf value)."""
    leaves, treedef = jax.tree_util.tree_flatten(rule)
    i = next(i for i, v in enumerate(leaves) if isinstance(v, float) and np.isfinite(v) and v != 0.0)
    leaves[i] = leaves[i] * 0.9
    return jax.tree_util.tree_unflatten(treedef, leaves), i


@pytest.mark.parametrize("cls", RULES_UNDER_TEST, ids=ids)
def test_new_hyperparameter_value_does_not_retrace(cls, precision):
    """The second call does not trace the loss. The call is test_converges_on_quadratic's (:func:`converge`), so
    the first one re-uses its compiled loop when that test ran first in this process (``quad``
    counts every trace). Reference for the second call: the new value compiled afresh (another
    loss function): the same steps and bits, so the re-used loop read the new value."""
    rule = make(cls)
    first = converge(rule, cls, precision)
    n = len(TRACES)
    other, i = _with_new_value(rule)
    second = converge(other, cls, precision)
    assert n > 0 and len(TRACES) == n, f"leaf {i} of {cls.__name__}: a new value retraced"
    assert int(first.steps) > 0 and int(second.steps) > 0
    assert float_leaves_are((first.params, second.params), precision.dtype)
    fresh = jaxgd.minimize(lambda x: quad(x), x0(precision.dtype), method="gd", lr=other, max_steps=1000,
                           gtol=gtol_for(cls, precision))
    assert int(fresh.steps) == int(second.steps) and int(fresh.status) == int(second.status)
    assert_bitwise(fresh.params, second.params)
