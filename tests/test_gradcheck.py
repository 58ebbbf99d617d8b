"""Tests of jaxgd.gradcheck.check.check_grad.

Independent references, named in each test:
- a gradient derived by hand and written in NumPy (``_hand_grad``) for the
  three-leaf test function ``_fun``;
- a deliberately wrong ``jax.custom_jvp`` rule, to show that the
  finite-difference comparison catches a wrong ``jax.grad``;
- the problems' own hand-written gradients (``jaxgd.problems``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxgd.gradcheck import check as _gradcheck
from jaxgd import problems as P
from jaxgd.gradcheck.check import GradCheck, check_grad

LEAVES = ("a", "B", "c")
SHAPES = {"a": (3,), "B": (2, 2), "c": ()}


def _fun(p: dict, t: jax.Array) -> jax.Array:
    """f = sum(a^3)/3 + t.a + c * sum(sin B) + exp(c)."""
    return jnp.sum(p["a"] ** 3) / 3.0 + t @ p["a"] + p["c"] * jnp.sum(jnp.sin(p["B"])) + jnp.exp(p["c"])


def _hand_grad(p: dict, t: np.ndarray) -> dict:
    """Gradient of ``_fun`` derived by hand (the independent reference)."""
    return {
        "a": p["a"] ** 2 + t,
        "B": p["c"] * np.cos(p["B"]),
        "c": np.sum(np.sin(p["B"])) + np.exp(p["c"]),
    }


def _point(seed: int, dtype: type = np.float64) -> tuple[dict, tuple]:
    rng = np.random.default_rng(seed)
    x = {k: jnp.asarray(rng.uniform(0.5, 1.5, SHAPES[k]) * rng.choice([-1, 1], SHAPES[k]), dtype=dtype) for k in LEAVES}
    return x, (jnp.asarray(rng.uniform(-1, 1, 3), dtype=dtype),)


def _perturbed(leaf: str, index: tuple[int, ...], rel: float = 1e-3):
    """The hand-written gradient with one component of ``leaf`` off by ``rel`` (relative)."""

    def ref(p: dict, t: np.ndarray) -> dict:
        g = _hand_grad(p, t)
        g[leaf] = np.array(g[leaf], dtype=np.float64, copy=True)
        g[leaf][index] *= 1.0 + rel
        return g

    return ref


def _failed(report: GradCheck) -> set[tuple[str, str]]:
    return {(r.path, r.comparison) for r in report.failures}


# ----------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correct_reference_passes(dtype):
    """Reference: the hand-written NumPy gradient ``_hand_grad``, in float32 and float64 inputs."""
    x, args = _point(0, dtype)
    report = check_grad(_fun, x, args, reference=_hand_grad)
    assert report and report.passed and not report.failures
    assert {(r.path, r.comparison) for r in report.rows} == {
        (f"['{k}']", c) for k in LEAVES for c in ("jax~ref", "jax~fd", "ref~fd")
    }
    assert report.dtype == np.dtype(dtype).name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), leaf=st.sampled_from(LEAVES), data=st.data(), sign=st.sampled_from([-1.0, 1.0]))
def test_perturbed_reference_fails_in_its_leaf(seed, leaf, data, sign):
    """Reference: ``_hand_grad`` with one component off by 1e-3 (relative), in each leaf of a dict.

    The perturbed leaf, and only it, fails jax~ref and ref~fd; jax~fd still passes.
    """
    x, args = _point(seed)
    index = tuple(data.draw(st.integers(0, n - 1)) for n in SHAPES[leaf])
    report = check_grad(_fun, x, args, reference=_perturbed(leaf, index, sign * 1e-3))
    assert not report and not bool(report)
    assert _failed(report) == {(f"['{leaf}']", "jax~ref"), (f"['{leaf}']", "ref~fd")}
    worst = next(r for r in report.failures if r.comparison == "jax~ref")
    assert worst.worst_index == index and worst.score > 1.0
    assert worst.max_rel_err == pytest.approx(1e-3, rel=1e-2)


@pytest.mark.parametrize("leaf", LEAVES)
def test_directional_mode_catches_the_perturbation(leaf):
    """Reference: ``_hand_grad`` off by 1e-3 (relative) in one component; compared along
    random directions v, vᵀ(ref) disagrees with the central difference of f along v."""
    x, args = _point(1)
    index = (1,) * len(SHAPES[leaf])
    report = check_grad(_fun, x, args, reference=_perturbed(leaf, index), directions=6)
    assert not report
    failed = _failed(report)
    assert (f"['{leaf}']", "ref~fd") in failed
    assert all(path == f"['{leaf}']" for path, _ in failed)
    row = next(r for r in report.rows if r.path == f"['{leaf}']" and r.comparison == "ref~fd")
    assert row.directional and row.worst.startswith("v")
    # and with the correct reference the directional mode passes
    assert check_grad(_fun, x, args, reference=_hand_grad, directions=6)


def test_directional_mode_on_a_large_leaf():
    """Reference: the hand-written gradient of sum(log cosh(x)) + 0.5 x.Ax, tanh(x) + Ax,
    on 1000 parameters (full differences would need 2000 evaluations)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((1000, 1000)) / 1000
    A = A + A.T
    x = jnp.asarray(rng.standard_normal(1000))

    def f(x, A):
        return jnp.sum(jnp.log(jnp.cosh(x))) + 0.5 * x @ A @ x

    good = check_grad(f, x, (jnp.asarray(A),), reference=lambda x, A: np.tanh(x) + A @ x, directions=4)
    bad = check_grad(f, x, (jnp.asarray(A),), reference=lambda x, A: np.tanh(x) + 1.001 * (A @ x), directions=4)
    assert good and not bad
    assert ("x", "ref~fd") in _failed(bad)


def test_wrong_jax_gradient_is_caught_by_finite_differences():
    """Reference: central differences of the function itself; the custom_jvp below is wrong
    (it says d/dx sin = 1.001 cos), so jax~fd fails while the correct NumPy reference passes ref~fd."""

    @jax.custom_jvp
    def wrong_sin(x):
        return jnp.sin(x)

    @wrong_sin.defjvp
    def _(primals, tangents):
        (x,), (dx,) = primals, tangents
        return jnp.sin(x), 1.001 * jnp.cos(x) * dx

    x = jnp.asarray([0.3, -1.2, 2.0])
    report = check_grad(lambda x: jnp.sum(wrong_sin(x)), x, reference=lambda x: np.cos(x))
    assert _failed(report) == {("x", "jax~ref"), ("x", "jax~fd")}


def test_without_reference_only_jax_vs_fd():
    """Reference: central differences only (no hand-written gradient)."""
    x, args = _point(2)
    report = check_grad(_fun, x, args)
    assert report and {r.comparison for r in report.rows} == {"jax~fd"}


def test_nonfinite_gradient_fails():
    """Reference: ``np.full(nan)``: a NaN in the reference can never pass."""
    x = jnp.asarray([1.0, 2.0])
    report = check_grad(lambda x: jnp.sum(x**2), x, reference=lambda x: np.array([2.0, np.nan]))
    assert not report
    assert next(r for r in report.failures if r.comparison == "jax~ref").worst_index == (1,)


def test_fd_is_float64_under_x32_mode():
    """Reference: ``_hand_grad`` in float64. With x64 off and float32 inputs, the ref~fd
    agreement is at float64 accuracy (< 1e-8), so differences were taken in float64."""
    with jax.enable_x64(False):
        x, args = _point(3, np.float32)
        assert x["a"].dtype == jnp.float32
        report = check_grad(_fun, x, args, reference=_hand_grad)
    assert report
    assert max(r.max_rel_err for r in report.rows if r.comparison == "ref~fd") < 1e-8
    assert max(r.max_rel_err for r in report.rows if r.comparison == "jax~ref") < 1e-5


@pytest.mark.parametrize("name", P.PROBLEM_NAMES)
def test_builtin_problems_pass_in_float32(name):
    """Reference: each problem's hand-written NumPy gradient (``Problem.np_grad``); float64
    is covered by tests/test_check_cmd.py (``main([])``) and tests/test_problems.py."""
    problem = next(p for p in P.all_problems(dtype=np.float32) if p.name == name)
    report = check_grad(problem.fun, problem.x0, problem.args, reference=problem.np_grad)
    assert report, str(report)


# ----------------------------------------------------------------------------- report


def test_str_report_lists_leaves_and_verdicts():
    """Reference: ``_hand_grad`` (passing) and a perturbed copy (failing)."""
    x, args = _point(4)
    good = str(check_grad(_fun, x, args, reference=_hand_grad))
    bad = str(check_grad(_fun, x, args, reference=_perturbed("B", (0, 1))))
    for text in (good, bad):
        for leaf in LEAVES:
            assert f"['{leaf}']" in text
        for header in _gradcheck.ROW_HEADERS:
            assert header in text
    assert good.startswith("gradient check: PASS") and "FAIL" not in good
    assert bad.startswith("gradient check: FAIL")
    failing = [line for line in bad.splitlines() if line.endswith("FAIL")]
    assert len(failing) == 2 and all(line.startswith("['B']") and "(0, 1)" in line for line in failing)
    # aligned: every table line has the verdict column at the same offset
    table = bad.splitlines()[1:]
    assert len({line.rindex("  ") for line in table if line.endswith(("PASS", "FAIL"))}) == 1


def test_bare_array_leaf_is_named_x():
    """Reference: the gradient 2x of x.x, written by hand."""
    report = check_grad(lambda x: x @ x, jnp.asarray([1.0, -2.0]), reference=lambda x: 2 * x)
    assert report and {r.path for r in report.rows} == {"x"}


def test_explicit_tolerances_apply_to_every_pair():
    """Reference: ``_hand_grad`` off by 1e-3, accepted with rtol=1e-2 everywhere."""
    x, args = _point(5)
    report = check_grad(_fun, x, args, reference=_perturbed("a", (0,)), rtol=1e-2)
    assert report and (report.rtol, report.rtol64) == (1e-2, 1e-2)


# ----------------------------------------------------------------------------- errors


@pytest.fixture
def no_compiled_work(monkeypatch):
    """Fail the test if check_grad reaches its compiled gradient or FD evaluation."""

    def forbidden(*args, **kwargs):
        raise AssertionError("compiled work started before validation finished")

    monkeypatch.setattr(_gradcheck, "_jit_value_and_grad", forbidden)
    monkeypatch.setattr(_gradcheck, "_eval_batch", forbidden)


def test_reference_wrong_structure(no_compiled_work):
    """Reference: ``_hand_grad`` with leaf 'c' renamed 'C'."""
    x, args = _point(0)

    def ref(p, t):
        g = _hand_grad(p, t)
        g["C"] = g.pop("c")
        return g

    with pytest.raises(ValueError) as info:
        check_grad(_fun, x, args, reference=ref)
    msg = str(info.value)
    assert msg.startswith(_gradcheck.MSG_REF_STRUCTURE.split("{")[0])
    assert "missing leaves [\"['c']\"]" in msg and "unexpected leaves [\"['C']\"]" in msg


def test_reference_wrong_shape(no_compiled_work):
    """Reference: ``_hand_grad`` with leaf 'a' returned as a column (3, 1)."""
    x, args = _point(0)

    def ref(p, t):
        g = _hand_grad(p, t)
        g["a"] = g["a"][:, None]
        return g

    with pytest.raises(ValueError) as info:
        check_grad(_fun, x, args, reference=ref)
    assert str(info.value) == _gradcheck.MSG_REF_SHAPE.format(path="['a']", got=(3, 1), expected=(3,))


def test_reference_wrong_type(no_compiled_work):
    """Reference: a gradient whose leaf is a string, not a number."""
    with pytest.raises(ValueError) as info:
        check_grad(lambda x: x @ x, jnp.ones(2), reference=lambda x: "two x")
    assert str(info.value) == _gradcheck.MSG_REF_NOT_NUMERIC.format(path="x", value="two x")


def _bad_precision(value: object) -> str:
    return _gradcheck.MSG_BAD_PRECISION.format(value=value, valid=", ".join(map(repr, _gradcheck.MATMUL_PRECISIONS)))


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"fun": 3}, TypeError, _gradcheck.MSG_FUN_NOT_CALLABLE.format(type_name="int")),
        ({"reference": "grad"}, TypeError, _gradcheck.MSG_REF_NOT_CALLABLE.format(type_name="str")),
        ({"args": jnp.ones(3)}, TypeError, _gradcheck.MSG_ARGS_NOT_TUPLE.format(type_name="ArrayImpl")),
        ({"x": {}}, ValueError, _gradcheck.MSG_X_EMPTY),
        ({"x": {"a": jnp.arange(3)}}, TypeError, _gradcheck.MSG_X_NOT_FLOAT.format(path="['a']", dtype="int64")),
        ({"x": {"a": jnp.ones(3, jnp.bfloat16)}}, TypeError, _gradcheck.MSG_X_BFLOAT16.format(path="['a']")),
        ({"eps": 0.0}, ValueError, _gradcheck.MSG_BAD_EPS.format(value=0.0)),
        ({"rtol": -1.0}, ValueError, _gradcheck.MSG_BAD_TOL.format(name="rtol", value=-1.0)),
        ({"atol": float("nan")}, ValueError, _gradcheck.MSG_BAD_TOL.format(name="atol", value=float("nan"))),
        ({"directions": 0}, ValueError, _gradcheck.MSG_BAD_DIRECTIONS.format(value=0)),
        ({"directions": 2.5}, ValueError, _gradcheck.MSG_BAD_DIRECTIONS.format(value=2.5)),
        ({"seed": -1}, ValueError, _gradcheck.MSG_BAD_SEED.format(value=-1)),
        ({"seed": -1, "directions": 2}, ValueError, _gradcheck.MSG_BAD_SEED.format(value=-1)),
        ({"seed": 1.0}, ValueError, _gradcheck.MSG_BAD_SEED.format(value=1.0)),
        ({"seed": True}, ValueError, _gradcheck.MSG_BAD_SEED.format(value=True)),
        ({"seed": np.array([1, 2])}, ValueError, _gradcheck.MSG_BAD_SEED.format(value=np.array([1, 2]))),
        ({"seed": None}, ValueError, _gradcheck.MSG_BAD_SEED.format(value=None)),
        ({"precision": "HIGHEST"}, ValueError, _bad_precision("HIGHEST")),
        ({"precision": ""}, ValueError, _bad_precision("")),
        ({"precision": 3}, TypeError, _bad_precision(3)),
        ({"precision": jax.lax.Precision.HIGHEST}, TypeError, _bad_precision(jax.lax.Precision.HIGHEST)),
        (
            {"fun": lambda x: x * 2.0},
            ValueError,
            _gradcheck.MSG_FUN_NOT_SCALAR.format(shape=(2,), dtype="float64"),
        ),
    ],
)
def test_bad_input_raises_before_compiling(no_compiled_work, kwargs, exc, message):
    """Reference: the module's message constants."""
    call = {"fun": lambda x: jnp.sum(x**2), "x": jnp.ones(2), "args": (), **kwargs}
    fun, x, args = call.pop("fun"), call.pop("x"), call.pop("args")
    with pytest.raises(exc) as info:
        check_grad(fun, x, args, **call)
    assert str(info.value) == message


def test_every_precision_jax_accepts_passes_validation(no_compiled_work):
    """Reference: JAX's own list, the legacy names and jax.lax.DotAlgorithmPreset's (but its DEFAULT,
    which jax.default_matmul_precision refuses). Validation only: several presets do not compile on CPU."""
    from jaxgd.gradcheck import inputs

    presets = [m.name for m in jax.lax.DotAlgorithmPreset if m.name != "DEFAULT"]
    for value in (None, *_gradcheck.MATMUL_PRECISIONS, *presets):
        inputs._check_precision(value)
    with pytest.raises(ValueError):
        inputs._check_precision("DEFAULT")


def test_integer_seeds_of_every_kind_are_accepted():
    """Reference: the same directions (same seed) drawn from a Python int, a NumPy integer and a 0-d array."""
    f = lambda x: jnp.sum(jnp.sin(x))  # noqa: E731
    x = jnp.linspace(0.0, 1.0, 4)
    rows = [check_grad(f, x, directions=2, seed=s, precision="float32").rows for s in (3, np.int64(3), np.array(3))]
    assert rows[0] == rows[1] == rows[2]


def test_traced_seed_is_rejected():
    """Reference: the message constant; the seed is used on the host."""
    with pytest.raises(TypeError) as info:
        jax.jit(lambda s: check_grad(lambda x: jnp.sum(x**2), np.ones(2), seed=s))(3)
    assert str(info.value) == _gradcheck.MSG_SEED_TRACER


def test_traced_x_is_rejected():
    """Reference: the message constant; check_grad needs concrete values."""

    @jax.jit
    def inside(x):
        check_grad(lambda x: jnp.sum(x**2), x)
        return x

    with pytest.raises(TypeError) as info:
        inside(jnp.ones(2))
    assert str(info.value) == _gradcheck.MSG_X_TRACER.format(path="x")


def test_unhashable_callable_fun():
    """Reference: the gradient 2x of x.x, written by hand, for a callable object without __hash__."""

    class Loss:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, x):
            return x @ x

    assert check_grad(Loss(), jnp.asarray([1.0, 2.0]), reference=lambda x: 2 * x)


def test_a_large_constant_in_the_loss_cannot_excuse_a_zero_gradient():
    """f = off + |x|^2 / 2 with a custom gradient of 0 (wrong; closed form: x). At off = 1e10 the finite
    differences' rounding allowance (37) exceeded the gradient itself and the check passed; the allowance
    now covers at most half of the values compared. The right gradient still passes at off = 1e8."""

    def half_sq(wrong: bool):
        @jax.custom_jvp
        def f(x):
            return 0.5 * jnp.sum(x**2)

        @f.defjvp
        def jvp(p, t):
            return f(p[0]), (0.0 if wrong else 1.0) * jnp.sum(p[0] * t[0])

        return f

    x = jnp.asarray([1.0, -2.0, 3.0])
    wrong, right = half_sq(True), half_sq(False)
    assert not check_grad(lambda v: 1e10 + wrong(v), x)
    assert check_grad(lambda v: 1e8 + right(v), x)


def test_default_tolerances_are_per_leaf() -> None:
    """A float32 leaf whose gradient is 2% wrong fails beside a float16 leaf as it fails alone (it passed:
    every leaf took float16's defaults, rtol=0.03). Reference: the hand-written 2% error of the custom
    derivative; the float16 leaf's correct gradient still passes at its own defaults."""

    @jax.custom_jvp
    def cube(b: jax.Array) -> jax.Array:
        return jnp.sum(b**3)

    @cube.defjvp
    def cube_jvp(primals: tuple, tangents: tuple) -> tuple:
        (b,), (db,) = primals, tangents
        return cube(b), jnp.sum(1.02 * 3 * b**2 * db)  # 2% too large

    x = {"a": jnp.asarray([0.5, -1.0], jnp.float16), "b": jnp.asarray([1.0, 2.0], jnp.float32)}
    report = check_grad(lambda p: jnp.sum(p["a"].astype(jnp.float32) ** 2) + cube(p["b"]), x)
    verdicts = {row.path: row.passed for row in report.rows}
    assert not report and verdicts == {"['a']": True, "['b']": False}, verdicts
    assert report.by_leaf and "by leaf dtype" in str(report)


def test_float32_rounding_of_a_correct_gradient_is_excused() -> None:
    """A float32 sum of squares over 1,000 rows whose residuals cancel targets of about 1e3: jax.grad is
    0.1-1% off the exact gradient (the hand-written float64 one, the reference) by rounding alone, and
    check_grad failed it (err/tol 5) and blamed jax.grad. Its measured rounding (the same jax.grad in
    float64) is excused now; a custom derivative 1% wrong in every dtype still fails beside it."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 5)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 3.0, 0.5, -1.0]) * 1000 + 10 * rng.standard_normal(1000)).astype(np.float32)
    w_ls = np.linalg.lstsq(X.astype(np.float64), y.astype(np.float64), rcond=None)[0]
    w = jnp.asarray(w_ls + 1e-3, jnp.float32)
    exact = lambda w, X, y: 2.0 * X.T @ (X @ w - y)  # noqa: E731

    @jax.custom_jvp
    def sse(w, X, y):
        return jnp.sum((X @ w - y) ** 2)

    @sse.defjvp
    def sse_jvp(primals, tangents):
        (w, X, y), (dw, _, _) = primals, tangents
        return sse(w, X, y), 1.01 * (2.0 * (X @ w - y) @ X) @ dw  # 1% too large

    g32 = np.asarray(jax.grad(lambda w, X, y: jnp.sum((X @ w - y) ** 2))(w, jnp.asarray(X), jnp.asarray(y)), float)
    g_exact = exact(np.asarray(w, float), X.astype(float), y.astype(float))
    assert np.max(np.abs(g32 - g_exact) / np.abs(g_exact)) > 1e-3  # the float32 rounding the check must excuse
    report = check_grad(lambda w, X, y: jnp.sum((X @ w - y) ** 2), w, (X, y), reference=exact)
    assert report, str(report)
    wrong = check_grad(sse, w, (X, y), reference=exact)
    assert _failed(wrong) == {("x", "jax~ref"), ("x", "jax~fd")}, str(wrong)


def test_a_loss_that_computes_in_float32_is_differenced_in_float32() -> None:
    """loss(w) = |X w.astype(float32) - y|^2 + 100 returns float32 at float64 points: its float64-step
    differences were 0 against a gradient of -1.2 (err/tol 990), a correct gradient failed. Reference: the
    exact (hand-written, float64) gradient; a custom derivative 5% wrong still fails beside it."""
    rng = np.random.default_rng(0)
    Xn, yn = rng.standard_normal((20, 3)).astype(np.float32), rng.standard_normal(20).astype(np.float32)
    X, y = jnp.asarray(Xn), jnp.asarray(yn)  # (closed over: float32 whatever w is)
    exact = lambda w: 2.0 * Xn.astype(float).T @ (Xn.astype(float) @ w - yn)  # noqa: E731

    def cast(w):
        r = X @ w.astype(jnp.float32) - y
        return jnp.sum(r * r) + 100.0

    w = jnp.asarray([0.3, -0.2, 0.1], jnp.float32)
    report = check_grad(cast, w, reference=exact)
    assert report and report.fd_dtype == "float32" and "central differences in float32" in str(report), str(report)

    @jax.custom_jvp
    def wrong(w):
        return cast(w)

    @wrong.defjvp
    def wrong_jvp(primals, tangents):
        (w,), (dw,) = primals, tangents
        return wrong(w), 1.05 * (2.0 * (X @ w.astype(jnp.float32) - y) @ X) @ dw

    assert _failed(check_grad(wrong, w, reference=exact)) == {("x", "jax~ref"), ("x", "jax~fd")}


def test_a_gradient_twice_too_large_fails_where_the_loss_is_large():
    """jax.grad twice the true gradient (a custom_vjp) of a least-squares loss near its minimum (f = 8.9e5, g ~ 1e-3)
    passed: 100 ulps of |f| over the step excused half the pair (a user review in session 57), while float64
    central differences resolve g to a few percent. References: the closed-form gradient 2 M^T (M w - b), and
    jax.test_util.check_grads, which fails it too. A correct gradient at the same point still passes."""
    @jax.custom_vjp
    def twice(v):
        return v

    twice.defvjp(lambda v: (v, None), lambda _, g: (2.0 * g,))
    rng = np.random.default_rng(0)
    M, b = rng.standard_normal((1000, 5)), 30 * rng.standard_normal(1000)
    w = np.linalg.lstsq(M, b, rcond=None)[0] + 4e-7 * rng.standard_normal(5)
    with _gradcheck._x64():
        closed = 2 * M.T @ (M @ w - b)
        np.testing.assert_allclose(np.asarray(jax.grad(lambda v: jnp.sum((M @ v - b) ** 2))(jnp.asarray(w))), closed,
                                   rtol=1e-6)
        report = check_grad(lambda v: jnp.sum((M @ twice(v) - b) ** 2), jnp.asarray(w))
        assert not report and {r.comparison for r in report.failures} == {"jax~fd"}, str(report)
        assert check_grad(lambda v: jnp.sum((M @ v - b) ** 2), jnp.asarray(w)), "the correct gradient failed"


def test_a_float32_fun_of_a_long_sum_passes():
    """A fun computing in float32 (a cast) whose value is a sum of 10,000 tanh terms: its float32 differences carry
    many ulps of rounding, excused at 100 ulps of float32 (the float64 allowance, 4 ulps, failed it at err/tol 5.7).
    Reference: the same jax.grad, the verdict PASS with fd_dtype float32."""
    rng = np.random.default_rng(1)
    A = jnp.asarray(rng.standard_normal((10000, 5)), jnp.float32)
    report = check_grad(lambda w: jnp.sum(jnp.tanh(A @ w.astype(jnp.float32))), jnp.asarray(rng.standard_normal(5) * 0.1))
    assert report and report.fd_dtype == "float32", str(report)


def test_a_bfloat16_fun_is_differenced_in_bfloat16_and_a_typed_key_is_an_arg():
    """A fun returning bfloat16 was differenced at float64's step (NumPy reads bfloat16 as kind "V", not a float):
    every difference 0, a false FAIL; a typed PRNG key in args crashed in np.asarray (a user review in session 57).
    Reference: the verdict, and the header's dtype."""
    x = jnp.asarray([0.5, 1.5, -2.0, 0.3])
    report = check_grad(lambda v: jnp.sum(jnp.sin(v) * v).astype(jnp.bfloat16), x)
    assert report and report.fd_dtype == "bfloat16", str(report)
    noise = lambda v, k: jnp.sum((v - jax.random.normal(k, v.shape, jnp.float32)) ** 2)  # noqa: E731
    assert check_grad(noise, jnp.asarray([0.5, 1.5], jnp.float32), (jax.random.key(0),))


@jax.custom_jvp
def _scaled(v):
    return v


@_scaled.defjvp
def _scaled_jvp(primals, tangents):
    return primals[0], 1.2 * tangents[0]  # a wrong chain rule: the gradient 20% off


def test_a_fun_drawing_without_a_dtype_is_refused_and_with_one_a_wrong_gradient_fails(x64_off):
    """A Monte-Carlo ELBO drawing jax.random.normal(key, shape) without a dtype: float64 mode (the finite
    differences) draws other numbers, so the rounding allowance |g - g64| measured another function and passed a
    gradient 20% off (a statistician's review, session 63). Refused, naming dtype=; with dtype=jnp.float32 the
    check passes the right gradient and fails the wrong one (reference: the chain rule scaled by 1.2)."""
    xs = jnp.asarray(np.random.default_rng(0).gamma(3.0, 2.0, 20), jnp.float32)
    p = {"m": jnp.asarray(1.0), "ls": jnp.asarray(-1.0)}

    def elbo(p, xs, key, dtype=None, wrong=False):
        eps = jax.random.normal(key, (8,)) if dtype is None else jax.random.normal(key, (8,), dtype)
        z = (_scaled(p["m"]) if wrong else p["m"]) + jnp.exp(p["ls"]) * eps
        return 0.5 * jnp.mean(jax.vmap(lambda v: jnp.sum((xs - v) ** 2))(z)) - p["ls"]

    for wrong in (False, True):
        with pytest.raises(ValueError, match=r"draws random numbers from a key in args in a dtype that JAX's float64 mode widens.*Draw in a fixed dtype"):
            check_grad(lambda p, xs, k: elbo(p, xs, k, wrong=wrong), p, (xs, jax.random.key(0)))
    assert check_grad(lambda p, xs, k: elbo(p, xs, k, jnp.float32), p, (xs, jax.random.key(0)))
    report = check_grad(lambda p, xs, k: elbo(p, xs, k, jnp.float32, True), p, (xs, jax.random.PRNGKey(0)))
    assert not report and [r.passed for r in report.rows if r.path == "['m']"] == [False], str(report)


def test_check_grad_on_a_flax_nnx_model_checks_its_params_only():
    """Reference: float64 central differences of the loss over the model's nnx.Param arrays. A model with
    BatchNorm and Dropout (eval mode) was checked whole: its batch statistics were reported as rows and its
    Dropout's uint32 RNG counter refused as a non-float leaf (a Flax NNX user's review, session 60); now its
    parameters are checked, the rest held fixed, as minimize and fit train it."""
    nnx = pytest.importorskip("flax.nnx")

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.lin = nnx.Linear(3, 1, rngs=rngs, param_dtype=jnp.float64)
            self.bn = nnx.BatchNorm(3, rngs=rngs, param_dtype=jnp.float64)
            self.do = nnx.Dropout(0.5, rngs=rngs)

        def __call__(self, x):
            return self.lin(self.do(self.bn(x)))

    model = Model(nnx.Rngs(0))
    model.eval()
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.normal(size=(8, 3))), jnp.asarray(rng.normal(size=(8, 1)))
    report = check_grad(lambda m, a, b: jnp.mean((m(a) - b) ** 2), model, (x, y))
    assert bool(report), str(report)
    checked = {row.path for row in report.rows}
    assert any("kernel" in leaf for leaf in checked) and any("lin" in leaf and "bias" in leaf for leaf in checked)
    assert not any("mean" in leaf or "var" in leaf or "count" in leaf for leaf in checked), checked


def test_check_grad_on_an_equinox_model_takes_a_reference_as_a_model():
    """Reference: the closed-form gradient of a least-squares loss of an eqx.nn.Linear, 2/n u'r and 2/n sum r
    with r = W u + b - y, returned as a model of the same structure (eqx.tree_at); the module's integer
    array and its function field are held fixed. A reference 10% off fails jax~ref."""
    eqx = pytest.importorskip("equinox")

    class Model(eqx.Module):
        lin: eqx.nn.Linear
        steps: jax.Array
        act: object

        def __call__(self, u):
            return self.act(self.lin(u))

    model = Model(eqx.nn.Linear(3, 1, key=jax.random.key(0), dtype=jnp.float64), jnp.asarray(7), lambda v: v)
    rng = np.random.default_rng(1)
    x, y = jnp.asarray(rng.normal(size=(8, 3))), jnp.asarray(rng.normal(size=(8, 1)))
    loss = lambda m, a, b: jnp.mean((jax.vmap(m)(a) - b) ** 2)  # noqa: E731

    def closed_form(m, a, b, scale=1.0):
        r = np.asarray(a) @ np.asarray(m.lin.weight).T + np.asarray(m.lin.bias) - np.asarray(b)
        grads = (scale * 2 / len(a) * r.T @ np.asarray(a), scale * 2 / len(a) * r.sum(0))
        return eqx.tree_at(lambda t: (t.lin.weight, t.lin.bias), m, grads)

    assert bool(report := check_grad(loss, model, (x, y), reference=closed_form)), str(report)
    assert {row.comparison for row in report.rows} == {"jax~ref", "jax~fd", "ref~fd"}
    wrong = check_grad(loss, model, (x, y), reference=lambda m, a, b: closed_form(m, a, b, 1.1))
    assert not bool(wrong)
    assert {row.comparison for row in wrong.rows if not row.passed} == {"jax~ref", "ref~fd"}



_ODE_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from jax.experimental.ode import odeint
import jaxgd

Y0 = np.array([0.0, 2.0])

def rhs(y, t, th):  # (one function object: odeint's trace of it is cached)
    return jnp.stack([y[1], -th[0] * y[0] - th[1] * y[1]])

def loss(p, ts, d):
    return 0.5 * jnp.sum((odeint(rhs, jnp.asarray(Y0), ts, jnp.exp(p))[:, 0] - d) ** 2)

ts = jnp.linspace(0.0, 3.0, 10)
try:
    print("PASS" if jaxgd.check_grad(loss, jnp.array([1.0, -1.0]), (ts, jnp.sin(2.0 * ts))) else "FAIL")
except TypeError as err:
    print(str(err))
"""


@pytest.mark.slow  # ~5 s: a fresh process (JAX's default, x64 off: the suite's processes run with it on)
def test_an_ode_loss_in_float32_is_checked_or_refused_by_name():
    """check_grad differences in float64 inside jax.enable_x64; with x64 off for the program (JAX's default),
    JAX 0.10 re-used odeint's trace cached in float32 there and raised "while_loop body function carry input
    and carry output must have equal types", naming nothing. Now that error is said again naming check_grad,
    x64 and what to do (a JAX without the stale trace passes the check instead). Reference: the script's own
    output in a fresh process."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _ODE_SCRIPT], capture_output=True, text=True, timeout=300)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
    assert last == "PASS" or last.startswith("check_grad: fun failed when traced again in float64"), last
    assert last == "PASS" or "jax.config.update('jax_enable_x64', True)" in last, last


def test_a_pair_below_the_rounding_noise_at_a_stationary_point_is_marked_unresolved():
    """f(x) = sum_i c_i (e^x - x) over 10,000 weights near 1,000 (f ~ 1e7): the exact gradient
    sum(c) (e^x - 1) is 0 at x = 0 (closed form), where the differences' rounding noise (~3e-4) swamps the
    values: a FAIL there tests nothing, and the table says so (FAIL*, the note; a statistician's review
    checked a gradient at its MAP and read a plain FAIL). Away from it a wrong reference (half the gradient)
    is a plain FAIL."""
    c = 1000.0 + np.random.default_rng(0).standard_normal(10_000)
    f = lambda x: jnp.sum(c * jnp.exp(x[0]) - c * x[0])  # noqa: E731
    at = check_grad(f, np.array([0.0]), reference=lambda x: np.array([np.sum(c) * np.expm1(x[0])]))
    assert not at and at.failures and all(row.unresolved for row in at.failures), str(at)
    assert "FAIL*" in str(at) and "tests nothing" in str(at)
    away = check_grad(f, np.array([0.5]), reference=lambda x: np.array([0.5 * np.sum(c) * np.expm1(x[0])]))
    assert not away and not any(row.unresolved for row in away.rows), str(away)
    assert "FAIL*" not in str(away) and [r.comparison for r in away.failures] == ["jax~ref", "ref~fd"]


def test_a_loss_not_finite_at_x_is_named_not_blamed_on_the_gradient() -> None:
    """Reference: log(-1) is NaN (closed form). At such an x both columns read NaN and the report said FAIL, as if
    the gradient were wrong; check_grad now names the loss's value at x instead."""
    with pytest.raises(ValueError, match=r"fun\(x\) is nan: check_grad compares derivatives at x"):
        check_grad(lambda x: jnp.sum(jnp.log(x)), np.array([-1.0, 2.0]))
