"""Strict, deterministic test environment (STYLE.md principle 15), and the
helpers tests share (``from conftest import ...``): dtype checks, the batteries'
quadratic, ``slow_if`` for a parametrize case that belongs to make slow, and
the checkpoint tests' helpers.

What is slow: `make test` is kept near 8 minutes on a 2-core machine, so a test
or case that takes more than about 5 s there (nearly all of it compiling) is
marked ``slow`` where its module keeps a cheaper test of the same capability in
`make test` (another method, tier or dtype of the same check, or a smaller
check); so are most tests that start another Python process (the demo, the
compile cache's commands) and most examples on real data. CI (``.ci/run``)
runs both sets, so every test runs there.

float64 is on so that reference comparisons are exact to 1e-10. The
configuration users run (JAX's default: x64 off, float32 everywhere) is
tested by the ``x64_off`` fixture and the ``precision`` fixture, which runs a
test once in float64 and once in float32 with x64 off (``jax.enable_x64``,
a context manager in jax 0.10 and 0.11). Rank promotion raises, so a silent
broadcast is a test failure.

XLA:CPU compiles with its classic emitters (``--xla_cpu_use_fusion_emitters=
false`` added to ``XLA_FLAGS`` before the backend starts): compiling is ~70 %
of the suite's time, and they compile each kernel 2-2.5x faster with the same
bits (the whole suite passes unchanged either way). jaxgd itself compiles a
small problem's loop with them (:mod:`jaxgd.core.compile`); the other path,
JAX's default fusion emitters, is the reference of ``test_compile_options.py``,
which asks for it per program. ``JAXGD_TEST_XLA_DEFAULTS=1`` runs the suite
with JAX's defaults.

``minimize`` runs every eager call in the fused loop here (``jaxgd.host.tier.DEFAULT =
"compiled"``): the host tier's first calls would otherwise differ from the compiled run in the
last bits, and its background compiles would land in the middle of tests that count compiles.
``tests/test_host_tier.py`` tests the tiers themselves, each call with its ``tier=``.

Hypothesis is derandomized for the whole suite (the ``jaxgd`` profile, loaded
before any test module is imported, so every ``@settings`` inherits it): the
same examples on every run and every machine, and no example database.
"""

import os
import zlib
from typing import Any, Iterator, NamedTuple

CLASSIC_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
if os.environ.get("JAXGD_TEST_XLA_DEFAULTS") != "1" and "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + CLASSIC_EMITTERS).strip()

import jax  # noqa: E402 (XLA_FLAGS first)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings as _hypothesis_settings  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

import jaxgd.host.tier  # noqa: E402

jaxgd.host.tier.DEFAULT = "compiled"
# Dtype promotion stays "standard": optax itself mixes Python floats with int32
# step counts (optax.tree.bias_correction), which "strict" rejects.

_hypothesis_settings.register_profile("jaxgd", derandomize=True, database=None, deadline=None, print_blob=True)
_hypothesis_settings.load_profile("jaxgd")


class Precision(NamedTuple):
    """One floating-point configuration: the dtype, and tolerances that belong to it."""

    dtype: Any
    eps: float  # machine epsilon of ``dtype``
    rtol: float  # for comparing a converged answer with a float64 reference
    gtol: float  # a gradient-norm tolerance the dtype can reach on O(1) problems


FLOAT64 = Precision(jnp.float64, float(np.finfo(np.float64).eps), 1e-8, 1e-9)
FLOAT32 = Precision(jnp.float32, float(np.finfo(np.float32).eps), 2e-4, 1e-4)


@pytest.fixture
def x64_off():
    """Run the test with JAX's default configuration: x64 off, so arrays are float32."""
    with jax.enable_x64(False):
        assert jnp.asarray(1.0).dtype == jnp.float32 and jnp.zeros(2).dtype == jnp.float32
        yield


@pytest.fixture(params=["float64", "float32"])
def precision(request: pytest.FixtureRequest):
    """The test once in float64 (x64 on) and once in float32 with x64 off."""
    if request.param == "float64":
        yield FLOAT64
        return
    with jax.enable_x64(False):
        assert jnp.asarray(1.0).dtype == jnp.float32
        yield FLOAT32


def float_leaves_are(tree: Any, dtype: Any) -> bool:
    """Every floating leaf of ``tree`` has ``dtype`` (no silent float64 from a float32
    input, no float32 drop from a float64 one), and there is at least one.

    A leaf's own ``dtype`` is read, not ``jnp.result_type``, which with x64 off
    reports a float64 array (NumPy, or the shape of one traced with x64 on) as float32.
    """
    dtypes = [x.dtype if hasattr(x, "dtype") else jnp.result_type(x) for x in jax.tree_util.tree_leaves(tree)]
    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]  # (PRNG key dtypes are not)
    return bool(floats) and all(d == dtype for d in floats)


COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@pytest.fixture
def compiles() -> Iterator[list]:
    """The XLA compiles during a test, one entry each (JAX's compile monitor)."""
    seen: list = []

    def listener(event: str, duration: float, **kw: Any) -> None:
        if event == COMPILE_EVENT:
            seen.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    yield seen
    jax.monitoring.unregister_event_duration_listener(listener)


def slow_if(condition: bool, *values: Any, id: Any = None) -> Any:
    """One parametrize case, marked ``slow`` (make slow, run by CI) when ``condition`` holds."""
    return pytest.param(*values, id=id, marks=[pytest.mark.slow] if condition else [])


# The convex quadratic of the method and step-size-rule batteries (test_common.py,
# test_rules_battery.py): 1/2 x'Ax - b'x over {"w": (2,), "b": ()}. ``quad`` counts its calls
# in QUAD_TRACES (a traced call inside jit, or an eager one), for the no-retrace checks.
QUAD_A = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])
QUAD_B = np.array([1.0, -2.0, 0.5])
QUAD_TRACES: list = []


def run_doc_page(name: str, blocks: int) -> dict:
    """The namespace after running docs/api/``name``'s ``python`` code blocks (``blocks`` of them) in order."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "api" / name).read_text()
    code = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(code) == blocks
    ns: dict = {}
    exec(compile("\n".join(code), f"docs/api/{name}", "exec"), ns)
    return ns


def quad(p: Any) -> jax.Array:
    QUAD_TRACES.append(1)
    x = jnp.concatenate([p["w"], p["b"][None]])
    a, b = jnp.asarray(QUAD_A, x.dtype), jnp.asarray(QUAD_B, x.dtype)
    return 0.5 * x @ a @ x - b @ x


def quad_x0(dtype: Any = jnp.float64) -> dict:
    return {"w": jnp.zeros(2, dtype), "b": jnp.asarray(0.0, dtype)}


def assert_same_first_steps(jitted: Any, eager: Any, dtype: Any, **tol: float) -> int:
    """The first steps of two runs' histories (loss, gradient norm, step size) agree to
    ``tol`` and are all ``dtype``: a run compiled by ``minimize`` against the same solver run
    op by op (``jax.disable_jit``) for fewer steps. Returns the number of steps compared
    (at least 2: both runs took them)."""
    k = min(int(jitted.steps), int(eager.steps))
    assert k >= 2, (int(jitted.steps), int(eager.steps))
    for name in ("loss", "grad_norm", "lr"):
        got, want = getattr(jitted.history, name), getattr(eager.history, name)
        assert got.dtype == want.dtype == dtype, name
        np.testing.assert_allclose(np.asarray(got[:k]), np.asarray(want[:k]), err_msg=name, **tol)
    return k


def assert_bitwise(a: Any, b: Any) -> None:
    """Same structure, dtypes and bits in every leaf (NaN == NaN)."""
    la, ta = jax.tree_util.tree_flatten_with_path(a)
    lb, tb = jax.tree_util.tree_flatten_with_path(b)
    assert ta == tb
    for (path, x), (_, y) in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, jax.tree_util.keystr(path)
        assert x.tobytes() == y.tobytes(), f"{jax.tree_util.keystr(path)}: {x} != {y}"


def probe_trials_at_a_minimum(value: Any, grad: Any, d: Any, params: Any, dtype: Any) -> int:
    """How many trials a probe along ``-d`` (``probe.probe_descent``'s law) takes where none falls: a plain
    loop over ``t_0 4^{-k}`` up to the first step no longer than the least move (``PROBE_ULPS`` times the
    move of one ulp), at most ``PROBES``."""
    from jaxgd.core import probe
    from jaxgd.core.stepsize import shortest_move

    d32 = np.asarray(d, np.float32)
    t0 = float(probe.probe_start(np.float32(value), np.float32(np.dot(np.asarray(grad, np.float32), d32)), np))
    least = probe.PROBE_ULPS * float(shortest_move(params, jnp.asarray(d32), dtype))
    return next((k for k in range(probe.PROBES) if not t0 * 0.25**k > least), probe.PROBES)


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


# Alternating cases: a test marked ``@pytest.mark.alternate("name")`` (and every test of the method
# and rule batteries, for their ``precision``) runs every value of its parameter ``name`` under
# `make slow`, and one of them under `make test`: of each group of cases that differ only in
# ``name``, the one chosen by the group's other parameters (and a checksum of the test's name),
# turn by turn, so that every value of ``name`` stays in `make test` across the groups, at the cost
# of one case a group. A case already marked slow is not chosen.
ALTERNATE_PRECISION = frozenset({"test_common.py", "test_rules_battery.py"})


@pytest.hookimpl(tryfirst=True)  # before pytest's -m deselection reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    groups: dict = {}
    for item in items:
        spec, mark = getattr(item, "callspec", None), item.get_closest_marker("alternate")
        name = mark.args[0] if mark is not None else "precision" if item.path.name in ALTERNATE_PRECISION else None
        if mark is not None and (spec is None or name not in spec.params):
            raise pytest.UsageError(f"{item.nodeid}: marked alternate({name!r}) but has no parameter {name!r}")
        if name is None or spec is None or name not in spec.params:
            continue
        # (the other parameters' values: an index counts over every case of a fixture's params)
        others = repr(sorted((k, v) for k, v in spec.params.items() if k != name))
        groups.setdefault((item.path, item.originalname, name, others), []).append(item)
    for n, ((_, original, name, _), group) in enumerate(groups.items()):
        fast = sorted((i for i in group if i.get_closest_marker("slow") is None), key=lambda i: i.callspec.indices[name])
        if not fast:
            continue
        turn = (n + zlib.crc32(original.encode())) % len(fast)
        for i in fast:
            if i is not fast[turn]:
                i.add_marker(pytest.mark.slow)
