"""jaxgd's own jit (jaxgd.core.compile): XLA:CPU options for small top-level calls only.

Reference: the same program compiled with XLA's default fusion emitters
(``compile.options`` replaced by one that asks for them, which holds even when
the suite's ``XLA_FLAGS`` turn them off (conftest), on a fresh loss function so
that nothing compiled is shared): iterates, history and statuses must be the
same bits. Which jit a call reached is observed by recording the
``compiler_options`` each ``jax.jit`` in ``jaxgd.core.compile`` is built with.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgd
from jaxgd.core import compile as _compile

from conftest import assert_bitwise, slow_if


def rosen(x: jax.Array) -> jax.Array:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list:
    """The ``compiler_options`` of every jax.jit that jaxgd.core.compile builds from now on."""
    seen: list = []
    real = jax.jit

    def recording(fn: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("compiler_options"))
        return real(fn, **kwargs)

    monkeypatch.setattr(_compile.jax, "jit", recording)
    return seen


FUSION_EMITTERS = {"xla_cpu_use_fusion_emitters": True}  # XLA:CPU's default


def with_fusion_emitters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compile, "options", lambda: FUSION_EMITTERS)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are XLA:CPU's")
def test_options_are_the_cpu_ones_on_this_xla() -> None:
    jaxgd.minimize(lambda x: jnp.sum(x**2), jnp.ones(2), max_steps=3)  # compiled with them: not refused
    assert _compile.options() == _compile.CPU_OPTIONS and not _compile._REFUSED


def assert_tuned_is_default_compile(monkeypatch: pytest.MonkeyPatch, x0: jax.Array, method: str, kw: dict) -> None:
    """The call compiled as jaxgd chooses and with XLA's default emitters (a fresh loss
    function each) give the same steps, status and bits."""
    tuned = jaxgd.minimize(lambda x: rosen(x), x0, method=method, **kw)
    with monkeypatch.context() as m:
        with_fusion_emitters(m)
        plain = jaxgd.minimize(lambda x: rosen(x), x0, method=method, **kw)
    assert int(tuned.steps) == int(plain.steps) and tuned.status == plain.status
    assert_bitwise((tuned.params, tuned.loss, tuned.grad_norm), (plain.params, plain.loss, plain.grad_norm))
    assert_bitwise(tuned.history, plain.history)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are XLA:CPU's")
# make test: gd; the quasi-Newton methods (lbfgs and bfgs with their default searches, lbfgs with StrongWolfe) in make slow
@pytest.mark.parametrize("method", [slow_if(m != "gd", m, id=m) for m in ["gd", "lbfgs", "bfgs", "lbfgs-strongwolfe"]])
def test_small_call_gives_the_bits_of_xlas_default_compile(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """10-D Rosenbrock, float64: the tuned program and XLA's default one agree bit for bit
    (lbfgs-strongwolfe: test_blocks.py's case whose unrolled blocks the classic emitters round
    differently, at 4-D; one step per iteration, as here, is the same under both)."""
    x0 = jnp.array([-1.2, 1.0] * 5)
    kw: dict = {"lr": 1e-4, "max_steps": 300} if method == "gd" else {}
    if method == "lbfgs-strongwolfe":
        method, kw, x0 = "lbfgs", {"lr": jaxgd.linesearch.StrongWolfe(), "max_steps": 37, "gtol": 0.0}, x0[:4]
    assert_tuned_is_default_compile(monkeypatch, x0, method, kw)


def test_which_jit_a_call_reaches(built: list) -> None:
    """Small and top level: the options; large, or inside a user's jit: JAX's defaults (and no error)."""
    opts = _compile.options()
    small = jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(3), max_steps=20)
    assert opts in built, built  # the tuned jit was built for the small call (empty dict off CPU)
    built.clear()
    big_x0 = jnp.zeros(_compile.SMALL + 1)
    big = jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), big_x0, max_steps=20)
    assert all(not o for o in built), built  # only plain jits
    built.clear()
    blocks = jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(3), max_steps=20, unroll=3)
    assert all(not o for o in built), built  # blocks of 3 steps: JAX's defaults (compile.same_bits)
    np.testing.assert_array_equal(blocks.params, small.params)
    built.clear()
    x0 = jnp.zeros(3)
    inner = jax.jit(lambda: jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), x0, max_steps=20).params)()
    assert all(not o for o in built), built
    np.testing.assert_array_equal(inner, small.params)  # reference: the top-level call (same bits)
    np.testing.assert_allclose(big.params, np.full(big_x0.shape, float(small.params[0])), rtol=0, atol=0)


def test_an_xla_without_the_option_compiles_as_jax_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """An option this XLA rejects: the call runs plain (reference: closed form x = 1), and no
    later program asks for options again."""
    monkeypatch.setattr(_compile, "CPU_OPTIONS", {"xla_cpu_no_such_option_for_jaxgd": True})
    monkeypatch.setattr(_compile, "_REFUSED", [])
    res = jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(2), method="lbfgs")
    np.testing.assert_allclose(res.params, 1.0, rtol=1e-8)
    assert _compile.options() == {} and "xla_cpu_no_such_option_for_jaxgd" in _compile._REFUSED[0]


def test_only_xlas_refusal_of_our_option_counts_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reference: the errors JAX itself raises (an unknown compile option; a shape error)."""
    with pytest.raises(Exception) as unknown:
        jax.jit(lambda x: x + 1, compiler_options={"xla_cpu_no_such_option_for_jaxgd": True})(1.0)
    with pytest.raises(TypeError) as shape:
        jax.jit(lambda x: x @ jnp.ones((3, 3)))(jnp.zeros(2))
    assert not _compile._is_refusal(unknown.value)  # not one of CPU_OPTIONS
    assert not _compile._is_refusal(shape.value)
    monkeypatch.setattr(_compile, "CPU_OPTIONS", {"xla_cpu_no_such_option_for_jaxgd": True})
    assert _compile._is_refusal(unknown.value)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are XLA:CPU's")
# make test: lbfgs and adam; L-BFGS-B, cg and bfgs (8-11 s of compiles each) in make slow
@pytest.mark.parametrize("method", [slow_if(m in ("lbfgs-bounds", "cg", "bfgs"), m, id=m) for m in ["lbfgs", "lbfgs-bounds", "cg", "bfgs", "adam"]])
def test_the_quasi_newton_limit(method: str, built: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 parameters: bfgs, cg and L-BFGS-B (their limits, compile.QUASI_NEWTON_SMALL) compile
    with the options, and give the bits of XLA's default compile (the reference); unconstrained
    lbfgs (512) and a first-order method (SMALL) do not ask for options (their program is the
    default one: no bits to compare)."""
    n = 1000
    x0 = jnp.tile(jnp.array([-1.2, 1.0]), n // 2)
    kw: dict = {"max_steps": 25}
    if method == "lbfgs-bounds":
        method, kw = "lbfgs", {**kw, "bounds": (-2.0, jnp.tile(jnp.array([0.5, 2.0]), n // 2))}
    if method == "adam":
        kw = {**kw, "lr": 1e-3}
    classic = method in ("cg", "bfgs") or "bounds" in kw
    limits = _compile.QUASI_NEWTON_SMALL
    assert _compile.SMALL < n <= min(limits["lbfgs-b"], limits["cg"], limits["bfgs"]) and limits["lbfgs"] < n
    if classic:
        assert_tuned_is_default_compile(monkeypatch, x0, method, kw)
    else:
        jaxgd.minimize(lambda x: rosen(x), x0, method=method, **kw)
    assert built and (_compile.options() in built) is classic, built


def test_a_method_with_options_has_its_methods_limit() -> None:
    """A direction built with options (its name then carries them) gets its method's limit
    (compile.QUASI_NEWTON_SMALL), not SMALL: jaxgd.directions.lbfgs(scaling="scalar") with bounds
    compiled a 1,000-D L-BFGS-B program with the fusion emitters, 2.4-2.5 s against 1.5-1.6 s."""
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    limit = lambda method, **kw: _compile.classic_limit(jaxgd.Solver(f, method=method, **kw))  # noqa: E731
    limits, dirs = _compile.QUASI_NEWTON_SMALL, jaxgd.directions
    assert limit(dirs.lbfgs(scaling="scalar"), bounds=(0.0, None)) == limit("lbfgs", bounds=(0.0, None)) == limits["lbfgs-b"]
    assert limit(dirs.lbfgs(memory_size=5)) == limit("lbfgs") == limits["lbfgs"]
    assert limit(dirs.cg(variant="fr")) == limit("cg") == limits["cg"]
    assert limit(dirs.bfgs(scale_init=True)) == limit("bfgs") == limits["bfgs"]
    assert limit("adam") == _compile.SMALL


def test_a_run_result_is_sized_by_its_parameters() -> None:
    """_small on a Result counts its params (17 numbers), not its memory and history (thousands): the
    continuation of a run is compiled as the run was (reference: the parameter count)."""
    res = jaxgd.minimize(lambda x: jnp.sum((x - 1.0) ** 2), jnp.zeros(17), method="lbfgs", max_steps=2)
    assert _compile._small(res, 17) and not _compile._small(res, 16)
    assert sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(res)) > 512


@pytest.mark.slow
def test_a_resumed_run_compiles_as_the_run_it_continues(monkeypatch: pytest.MonkeyPatch) -> None:
    """A continuation (minimize's resume, fit's chunks) is sized by its result's parameters, as the run
    it continues: both compile with jaxgd's options, so an lbfgs run in compact form (17 parameters,
    the learnt diagonal) resumed at step 10 and a 41-parameter fit in chunks give the uninterrupted
    runs' bits (reference: those runs). The whole Result (memory, history) was counted, so the
    continuation compiled with the other emitters, whose rounding differs. The options are XLA's
    fusion emitters here (the suite's own flags turn them off), so the two emitters meet."""
    with_fusion_emitters(monkeypatch)
    a = jnp.asarray(np.random.default_rng(17).normal(size=(17, 17)))
    loss = lambda x: jnp.sum((a @ jnp.tanh(x) - 1.0) ** 2) + 0.1 * jnp.sum(x**4)  # noqa: E731
    kw = dict(method=jaxgd.directions.lbfgs(scaling="diagonal"), gtol=0)
    x0 = jnp.full(17, 0.3)
    full = jaxgd.minimize(loss, x0, max_steps=20, **kw)
    resumed = jaxgd.minimize(loss, x0, max_steps=20, resume=jaxgd.minimize(loss, x0, max_steps=10, **kw), **kw)
    assert_bitwise((resumed.params, resumed.history), (full.params, full.history))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    data = (x, np.sin(x.sum(1))[:, None])
    k = jax.random.split(jax.random.key(0), 2)
    params = {"a": jax.random.normal(k[0], (3, 8)) * 0.5, "ab": jnp.zeros(8), "b": jax.random.normal(k[1], (8, 1)) * 0.3,
              "bb": jnp.zeros(1)}

    def mlp(p: dict, batch: tuple) -> jax.Array:
        u, y = batch
        return jnp.mean((jnp.tanh(u @ p["a"] + p["ab"][None, :]) @ p["b"] + p["bb"][None, :] - y) ** 2)

    fkw = dict(batch_size=16, key=jax.random.key(1), method="adam", lr=0.01, progress=False)
    whole = jaxgd.fit(mlp, params, data, epochs=4, **fkw)
    chunks = jaxgd.fit(mlp, params, data, epochs=4, resume=jaxgd.fit(mlp, params, data, epochs=2, **fkw), **fkw)
    assert_bitwise(chunks.params, whole.params)
