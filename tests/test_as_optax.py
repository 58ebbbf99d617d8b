"""jaxgd.as_optax: jaxgd's step inside a plain optax loop and inside ``nnx.Optimizer``.

Reference: ``jaxgd.Solver``'s ``init``/``step`` (the loop ``minimize`` runs),
taken step by step from the same start; the optax loop must land on the same
iterates (float64, 1e-12), for each step-size rule and with ``l1=``. The
final iterate is also checked against ``jaxgd.minimize(max_steps=K)``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.interop.optax_export import NEEDS_EXTRA, AsOptaxState

from conftest import slow_if

A = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.5]])
B = jnp.array([1.0, -1.0, 0.5])
X0 = {"w": jnp.array([2.0, -3.0]), "b": jnp.array([1.5])}


def loss(p: Any) -> jax.Array:
    x = jnp.concatenate([p["w"], p["b"]])
    return 0.5 * x @ A @ x - B @ x + 0.1 * jnp.sum(x**4)


K = 6
RULES = {
    "backtracking": lambda: jaxgd.linesearch.Backtracking(),
    "strong_wolfe": lambda: jaxgd.linesearch.StrongWolfe(),
    "barzilai_borwein": lambda: jaxgd.linesearch.BarzilaiBorwein(),
    "polyak": lambda: jaxgd.linesearch.Polyak(),
    "schedule": lambda: jaxgd.schedules.step_decay(0.1, 3, 0.5),
    "optax_schedule": lambda: optax.exponential_decay(0.1, 3, 0.5),
    "constant": lambda: 0.05,
}


def solver_iterates(method: Any, lr: Any, k: int = K, x0: Any = X0, **kw: Any) -> list:
    """The reference: the params after each of ``k`` steps of minimize's Solver (its step
    jitted once: an eager step re-compiles each line search's loop at every call)."""
    solver = jaxgd.Solver(loss, method, lr, gtol=0.0, max_steps=k, **kw)
    step = jax.jit(solver.step)
    state, out = solver.init(x0), []
    for _ in range(k):
        state = step(state)
        assert int(state.status) in (jaxgd.Status.RUNNING, jaxgd.Status.MAX_STEPS)
        out.append(state.params)
    return out


def optax_iterates(
    tx: optax.GradientTransformationExtraArgs, k: int = K, jit: bool = True, x0: Any = X0
) -> tuple[list, Any]:
    """A user's optax loop, with ``value_and_grad_from_state`` re-using the last evaluation."""
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(p: Any, state: Any) -> tuple:
        value, grad = value_and_grad(p, state=state)
        updates, state = tx.update(grad, state, p, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(p, updates), state

    step = jax.jit(step) if jit else step
    p, state, out = x0, tx.init(x0), []
    for _ in range(k):
        p, state = step(p, state)
        out.append(p)
    return out, state


def assert_close(got: list, want: list, atol: float = 1e-12) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(w), f"step {i + 1}"
        for leaf_g, leaf_w in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(w)):
            np.testing.assert_allclose(np.asarray(leaf_g), np.asarray(leaf_w), rtol=0, atol=atol, err_msg=f"step {i + 1}")


# Every rule without l1, and l1 with a line search and with a constant, in make test; l1 with the
# other rules (one compiled step, optax loop and minimize loop each, ~4 s a case) in make slow.
L1_IN_MAKE_TEST = {"backtracking", "constant"}
L1_REFUSED = {"strong_wolfe"}  # (a search of the smooth part only: refused with l1, jaxgd.core.combinations)
STEP_FOR_STEP = [
    slow_if(bool(l1) and rule not in L1_IN_MAKE_TEST, rule, l1)
    for rule in RULES
    for l1 in (0.0, 0.3)
    if not (l1 and rule in L1_REFUSED)
]


@pytest.mark.alternate("l1")  # (every l1 in make slow)
@pytest.mark.parametrize("rule, l1", STEP_FOR_STEP)
def test_optax_loop_equals_minimize_step_for_step(rule: str, l1: float) -> None:
    want = solver_iterates("gd", RULES[rule](), l1=l1)
    got, state = optax_iterates(jaxgd.as_optax("gd", lr=RULES[rule](), l1=l1), jit=(rule, l1) != ("backtracking", 0.0))  # one eager
    assert_close(got, want)
    res = jaxgd.minimize(loss, X0, method="gd", lr=RULES[rule](), l1=l1, gtol=0.0, max_steps=K)
    # An optax schedule computes in float32 (its numbers are Python floats, the count int32);
    # Solver.step and as_optax agree to 1e-12 above, minimize's compiled loop only to float32.
    assert_close([got[-1]], [res.params], atol=1e-8 if rule == "optax_schedule" else 1e-12)
    # The state holds the loss and gradient at the last iterate (what value_and_grad_from_state re-uses).
    assert isinstance(state, AsOptaxState) and int(state.status) == jaxgd.Status.RUNNING and int(state.count) == K
    np.testing.assert_allclose(float(state.value), float(loss(got[-1])), rtol=1e-13)
    for g, r in zip(jax.tree_util.tree_leaves(state.grad), jax.tree_util.tree_leaves(jax.grad(loss)(got[-1]))):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "method, kw",
    [
        ("adam", dict(lr=0.05, l2=0.1, clip=1.0)),
        ("adamw", dict(lr=0.05, l2=0.1)),
        pytest.param("lbfgs", dict(lr=jaxgd.linesearch.StrongWolfe()), marks=pytest.mark.slow),  # 8 s; make slow
        ("momentum", dict(lr=0.02, bounds=(-1.8, 1.8))),
        ("gd", dict(lr=0.02, bounds=(-1.8, 1.8), l1={"w": 0.1, "b": 0.0})),  # l1 only with gd (jaxgd.core.stall)
    ],
)
def test_other_directions_penalties_and_bounds(method: str, kw: dict) -> None:
    kw = dict(kw)
    lr = kw.pop("lr")
    """Reference: the Solver with the same options (l2 as a penalty on value_fn, decoupled for adamw)."""
    x0_inside = jax.tree_util.tree_map(lambda v: jnp.clip(v, -1.8, 1.8), X0)  # minimize projects x0; start inside
    got = optax_iterates(jaxgd.as_optax(method, lr, **kw), x0=x0_inside)[0]
    assert_close(got, solver_iterates(method, lr, x0=x0_inside, **kw))


def test_schedule_without_value_fn_needs_no_evaluation() -> None:
    """A time-only lr needs neither value nor value_fn: plain gradient descent, vs a NumPy loop."""
    tx = jaxgd.as_optax("gd", lr=0.05)
    p, state = X0, tx.init(X0)
    ref = {k: np.asarray(v) for k, v in X0.items()}
    for _ in range(5):
        updates, state = tx.update(jax.grad(loss)(p), state, p)
        p = optax.apply_updates(p, updates)
        g = jax.grad(loss)(ref)
        ref = {k: ref[k] - 0.05 * np.asarray(g[k]) for k in ref}
    assert_close([p], [ref], atol=1e-14)
    assert float(state.value) == np.inf  # not evaluated: value_and_grad_from_state computes it afresh


def test_state_aware_rule_without_value_fn_raises() -> None:
    tx = jaxgd.as_optax("gd", lr=jaxgd.linesearch.Backtracking())
    state = tx.init(X0)
    with pytest.raises(TypeError) as err:
        tx.update(jax.grad(loss)(X0), state, X0)
    assert str(err.value) == NEEDS_EXTRA.format(rule="Backtracking", missing="value and value_fn")


def test_nonfinite_step_is_not_taken() -> None:
    """The non-finite policy of minimize: a step into NaN is not taken (zero updates), status NONFINITE."""

    def cliff(x: jax.Array) -> jax.Array:
        return jnp.where(x[0] > 1.0, jnp.nan, jnp.sum((x - 5.0) ** 2))

    x = jnp.array([0.9, 0.0])
    tx = jaxgd.as_optax("gd", lr=0.5)
    state = tx.init(x)
    value, grad = jax.value_and_grad(cliff)(x)
    updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=cliff)
    np.testing.assert_array_equal(np.asarray(updates), 0.0)
    assert int(state.status) == jaxgd.Status.NONFINITE and int(state.count) == 0
    assert float(state.value) == float(value)  # the loss where the loop still is
    res = jaxgd.minimize(cliff, x, lr=0.5, max_steps=3)
    assert res.status_enum is jaxgd.Status.NONFINITE
    np.testing.assert_array_equal(np.asarray(res.params), np.asarray(x + updates))


@pytest.mark.parametrize("method", ["bfgs", "lbfgs"])
@pytest.mark.slow
def test_a_failed_search_with_a_memory_retries_without_it_as_minimize_does(method: str) -> None:
    """minimize's restart (L-BFGS-B's): a failed search with a curvature memory is not taken and
    the next step starts afresh from the same point. Reference: Solver.step driven by hand, step for
    step up to and past the first restart; then the closed-form minimiser of |x - c|_1 + 0.01 |x|^2,
    x = c (0 is in the subdifferential, |0.02 c| < 1). Before, as_optax kept the failing memory and
    returned zero updates with LINESEARCH_FAILED for ever (bfgs from update 6, 0.57 above the minimum)."""
    c = jnp.array([1.0, -2.0, 0.5])

    def kinked(x: jax.Array) -> jax.Array:
        return jnp.sum(jnp.abs(x - c)) + 0.01 * jnp.sum(x**2)

    x0 = jnp.full(3, 3.0)
    tx = jaxgd.as_optax(method)
    value_and_grad = optax.value_and_grad_from_state(kinked)

    @jax.jit
    def update(x: jax.Array, state: Any) -> tuple:
        value, grad = value_and_grad(x, state=state)
        updates, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=kinked)
        return optax.apply_updates(x, updates), state

    solver = jaxgd.Solver(kinked, method, gtol=0.0, max_steps=100)
    step = jax.jit(solver.step)
    ref, x, state, restarted = solver.init(x0), x0, tx.init(x0), None
    for k in range(40):  # to the first restart and one step after it (later, the kinks part the two by rounding)
        count = int(ref.count)
        ref, (x, state) = step(ref), update(x, state)
        assert int(state.status) == int(ref.status) == jaxgd.Status.RUNNING
        np.testing.assert_allclose(np.asarray(x), np.asarray(ref.params), rtol=0, atol=1e-12)
        if restarted is not None:
            break
        if int(ref.count) == count:  # the restart: no step taken, the run goes on
            restarted = k
    assert restarted is not None and int(ref.count) == restarted + 1
    for _ in range(60):
        x, state = update(x, state)
    np.testing.assert_allclose(np.asarray(x), np.asarray(c), atol=1e-6)


def test_chains_with_optax_and_state_is_a_stable_carry() -> None:
    """Inside lax.scan (the state is a carry), chained after optax's own clip."""
    tx = optax.chain(optax.clip_by_global_norm(1e9), jaxgd.as_optax("gd", lr=jaxgd.linesearch.Backtracking()))
    value_and_grad = optax.value_and_grad_from_state(loss)

    def body(carry: tuple, _: Any) -> tuple:
        p, s = carry
        v, g = value_and_grad(p, state=s)
        u, s = tx.update(g, s, p, value=v, grad=g, value_fn=loss)
        return (optax.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(body, (X0, tx.init(X0)), length=K)
    assert_close([p], [solver_iterates("gd", jaxgd.linesearch.Backtracking())[-1]])


def test_inject_hyperparams_runs_as_optax_as_it_runs_optax_adam() -> None:
    """optax.inject_hyperparams over as_optax (reference: the same over optax.adam, bit for bit): the
    signature optax reads has no catch-all, which it passed back as unknown={} (a TypeError)."""
    tx = optax.inject_hyperparams(jaxgd.as_optax, static_args=("method",))(method="adam", lr=0.1)
    ref = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    p, q, s, r = X0, X0, tx.init(X0), ref.init(X0)
    for k in range(4):
        if k == 2:  # a new rate mid-run, as a schedule or a user would set it
            s.hyperparams["lr"], r.hyperparams["learning_rate"] = jnp.asarray(0.05), jnp.asarray(0.05)
        u, s = tx.update(jax.grad(loss)(p), s, p)
        v, r = ref.update(jax.grad(loss)(q), r, q)
        p, q = optax.apply_updates(p, u), optax.apply_updates(q, v)
    for k in X0:
        np.testing.assert_array_equal(p[k], q[k])


def test_a_python_float_leaf_updates_as_optax_adam_does() -> None:
    """A Python float leaf (accepted by init, minimize and optax.adam) in an eager update (reference: optax.adam)."""
    p0 = {"a": 0.5, "b": jnp.zeros(2)}
    g = jax.grad(lambda p: (p["a"] - 1.0) ** 2 + jnp.sum((p["b"] - 1.0) ** 2))(p0)
    tx, ref = jaxgd.as_optax("adam", lr=0.1), optax.adam(0.1)
    u, _ = tx.update(g, tx.init(p0), p0)
    v, _ = ref.update(g, ref.init(p0), p0)
    for k in p0:
        np.testing.assert_allclose(u[k], v[k], rtol=1e-6)


def test_value_fn_under_multi_transform_is_refused_with_the_reason() -> None:
    """Under optax.multi_transform the params update sees hold optax.MaskedNode: value_fn cannot be
    evaluated there (optax.lbfgs fails the same way, with a bare TypeError); a float lr without
    value_fn runs and equals optax.sgd on its part (reference)."""
    labels = {"w": "ls", "b": "ad"}
    bad = optax.multi_transform({"ls": jaxgd.as_optax("gd", lr=jaxgd.linesearch.Backtracking()), "ad": optax.adam(0.1)},
                                labels)
    value, grad = jax.value_and_grad(loss)(X0)
    with pytest.raises(ValueError, match=r"value_fn.*MaskedNode.*multi_transform"):
        bad.update(grad, bad.init(X0), X0, value=value, grad=grad, value_fn=loss)
    good = optax.multi_transform({"ls": jaxgd.as_optax("gd", lr=0.1), "ad": optax.adam(0.1)}, labels)
    ref = optax.multi_transform({"ls": optax.sgd(0.1), "ad": optax.adam(0.1)}, labels)
    u, _ = good.update(grad, good.init(X0), X0)
    v, _ = ref.update(grad, ref.init(X0), X0)
    for k in X0:
        np.testing.assert_allclose(u[k], v[k], rtol=1e-12)


# -- Flax NNX -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "rule, l1",
    # (barzilai_borwein, ~6 s, in make slow as of session 42: polyak and a schedule keep an adaptive rule and l1 here)
    [slow_if(True, "backtracking", 0.2), slow_if(True, "strong_wolfe", 0.0), slow_if(True, "barzilai_borwein", 0.2),
     ("polyak", 0.0), ("schedule", 0.2)],
)
def test_nnx_optimizer_equals_minimize(rule: str, l1: float) -> None:
    """``nnx.Optimizer(model, jaxgd.as_optax(...), wrt=nnx.Param)`` vs the Solver on the same parameter state."""
    nnx = pytest.importorskip("flax.nnx")
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.normal(size=(32, 3))), jnp.asarray(rng.normal(size=(32, 2)))
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0), param_dtype=jnp.float64, dtype=jnp.float64)
    graphdef, p0 = nnx.split(model, nnx.Param)

    def loss_model(m: Any) -> jax.Array:
        return jnp.mean((m(x) - y) ** 2) + 0.05 * jnp.sum(m.kernel[...] ** 4)

    def loss_pure(p: Any) -> jax.Array:  # the same loss as a function of the (pure) parameter state
        return loss_model(nnx.merge(graphdef, p))

    pure0 = nnx.as_pure(p0)
    solver = jaxgd.Solver(loss_pure, "gd", RULES[rule](), l1=l1, gtol=0.0, max_steps=K)
    s, want, step = solver.init(pure0), [], jax.jit(solver.step)
    for _ in range(K):
        s = step(s)
        want.append(s.params)

    optimizer = nnx.Optimizer(model, jaxgd.as_optax("gd", lr=RULES[rule](), l1=l1), wrt=nnx.Param)

    @nnx.jit
    def train_step(model: Any, optimizer: Any) -> None:
        value, grads = nnx.value_and_grad(loss_model)(model)
        optimizer.update(model, grads, value=value, grad=grads, value_fn=loss_pure)

    got = []
    for _ in range(K):
        train_step(model, optimizer)
        got.append(nnx.as_pure(nnx.state(model, nnx.Param)))
    assert_close(got, want)


@pytest.mark.slow  # ~6-11 s: eager updates, each with its line search
def test_nnx_split_parameters_in_a_plain_optax_loop() -> None:
    """Parameters from ``nnx.split(model, nnx.Param)`` (an nnx.State of nnx.Param variables) in a plain optax
    loop, as optax's own transformations take them: with jax.value_and_grad and with the README's
    optax.value_and_grad_from_state, as_optax("lbfgs") gives the Solver's iterates on the bare arrays
    (reference; it failed with a pytree structure error), and the updates keep the variables."""
    nnx = pytest.importorskip("flax.nnx")
    rng = np.random.default_rng(1)
    x, y = jnp.asarray(rng.normal(size=(16, 3))), jnp.asarray(rng.normal(size=(16, 1)))
    graphdef, p0 = nnx.split(nnx.Linear(3, 1, rngs=nnx.Rngs(0), param_dtype=jnp.float64), nnx.Param)
    loss = lambda p: jnp.mean((nnx.merge(graphdef, p)(x) - y) ** 2)  # noqa: E731
    solver = jaxgd.Solver(loss, "lbfgs", gtol=0.0, max_steps=3)
    s = solver.init(nnx.as_pure(p0))
    for _ in range(3):
        s = solver.step(s)
    tx = jaxgd.as_optax("lbfgs")
    from_state = optax.value_and_grad_from_state(loss)
    for read_state in (False, True):
        p, state = p0, tx.init(p0)
        for _ in range(3):
            value, grad = from_state(p, state=state) if read_state else jax.value_and_grad(loss)(p)
            updates, state = tx.update(grad, state, p, value=value, grad=grad, value_fn=loss)
            assert jax.tree_util.tree_structure(updates) == jax.tree_util.tree_structure(p0)
            p = optax.apply_updates(p, updates)
        assert_close([nnx.as_pure(p)], [s.params])


def test_inject_hyperparams_runs_in_a_jitted_step_for_every_method() -> None:
    """inject_hyperparams injects every numeric default: l1=0.0 became a traced l1, which counts as on, and a
    jitted step of adam (or momentum, lbfgs, ...) refused it (eager updates passed). Reference: optax.adam under
    inject_hyperparams, jitted, to rounding (optax's injected float32 b2 differs from its constant by ulps)."""
    tx = optax.inject_hyperparams(jaxgd.as_optax, static_args=("method",))(method="adam", lr=0.1)
    ref = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)

    @jax.jit
    def step(p, s, t):
        return tx.update(jax.grad(loss)(p), s, p), t

    p, q, s, r = X0, X0, tx.init(X0), ref.init(X0)
    for _ in range(3):
        (u, s), _ = step(p, s, 0)
        v, r = jax.jit(ref.update)(jax.grad(loss)(q), r, q)
        p, q = optax.apply_updates(p, u), optax.apply_updates(q, v)
    for k in X0:
        np.testing.assert_allclose(p[k], q[k], rtol=1e-5)
    for method in ("momentum", "lbfgs"):
        t = optax.inject_hyperparams(jaxgd.as_optax, static_args=("method",))(method=method, lr=0.01)
        st = t.init(X0)
        jax.jit(lambda p, s: t.update(jax.grad(loss)(p), s, p, value=loss(p), value_fn=loss))(X0, st)


def test_a_flax_train_state_with_the_state_serialises() -> None:
    """flax.serialization.to_bytes of a TrainState holding as_optax's state raised "can not serialize 'Inner'".
    Reference: the same round trip of optax.adam's state; every leaf back, equal."""
    serialization = pytest.importorskip("flax.serialization")
    from flax.training import train_state

    for tx in (jaxgd.as_optax("adam", 0.1), jaxgd.as_optax("lbfgs")):
        state = train_state.TrainState.create(apply_fn=None, params=X0, tx=tx)
        back = serialization.from_bytes(state, serialization.to_bytes(state))
        for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(back)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [slow_if(True, jnp.float16, id="float16"), pytest.param(jnp.bfloat16, id="bfloat16")])
def test_half_precision_params_with_a_float32_loss_follow_the_solver(dtype: Any) -> None:
    """Mixed precision (16-bit parameters, a float32 loss): the state kept the loss in the parameters' dtype, so
    a Backtracking run's loss rose from step 4 where minimize's fell, and optax's value_and_grad_from_state (the
    README's loop) raised on the float32 loss against a 16-bit state (a user review, session 58). Reference:
    the Solver's own steps (minimize's loop), bit for bit, with the README's loop."""

    def mixed(p: Any) -> jax.Array:
        a, b = p["a"].astype(jnp.float32), p["b"].astype(jnp.float32)
        return jnp.sum((a - 1.0) ** 2) + jnp.sum((b - 2.0) ** 2) + 0.5 * jnp.sum(a**2) * b[0] + 100.0

    x0 = {"a": jnp.full(3, 0.3, dtype), "b": jnp.full(2, 0.1, dtype)}
    rule = jaxgd.linesearch.Backtracking()
    solver = jaxgd.Solver(mixed, "gd", rule, gtol=0.0, max_steps=6)
    solver_step = jax.jit(solver.step)
    state, want = solver.init(x0), []
    for _ in range(6):
        state = solver_step(state)
        want.append(state.params)
    tx, value_and_grad = jaxgd.as_optax("gd", rule), optax.value_and_grad_from_state(mixed)

    @jax.jit
    def step(p: Any, st: Any) -> tuple:
        value, grad = value_and_grad(p, state=st)
        updates, st = tx.update(grad, st, p, value=value, grad=grad, value_fn=mixed)
        return optax.apply_updates(p, updates), st

    p, st, got = x0, tx.init(x0), []
    for _ in range(6):
        p, st = step(p, st)
        got.append(p)
    assert_close(got, want, atol=0.0)
    assert st.value.dtype == jnp.float32 and float(st.value) == float(mixed(p))


def test_traced_hyperparameters_out_of_range_take_no_step():
    """A reinforcement-learning review (session 64): under jax.jit/vmap or optax.inject_hyperparams the host
    cannot check lr, clip, l2 or l1, and a negative lr climbed (1.10 -> 196.7) with status RUNNING. Reference:
    the Solver's own test of the same values (Status.INVALID_ARGUMENT, no step) and the in-range run, which
    moves; the out-of-range one returns zero updates and leaves the parameters where they were."""
    loss = lambda p: jnp.sum((p - 1.0) ** 2)  # noqa: E731
    p0 = jnp.zeros(3)

    def run(tx):
        s, p = tx.init(p0), p0
        for _ in range(3):
            v, g = jax.value_and_grad(loss)(p)
            u, s = tx.update(g, s, p, value=v, grad=g, value_fn=loss)
            p = optax.apply_updates(p, u)
        return p, s.status

    cases = [(lambda v: jaxgd.as_optax("adam", lr=v), -0.01, 0.1), (lambda v: jaxgd.as_optax("gd", lr=0.1, clip=v), -1.0, 1.0),
             (lambda v: jaxgd.as_optax("gd", lr=0.1, l2=v), -1.0, 0.1), (lambda v: jaxgd.as_optax("gd", lr=0.1, l1=v), -1.0, 0.1),
             (lambda v: jaxgd.as_optax("gd", lr=0.1, bounds=(v, 2.0)), 3.0, -1.0)]
    solver_status = jax.jit(lambda lr: jaxgd.Solver(loss, "adam", lr).run(p0).status)(-0.01)
    assert int(solver_status) == jaxgd.Status.INVALID_ARGUMENT
    for make, bad, good in cases:
        run_at = jax.jit(lambda v: run(make(v)))
        p, status = run_at(bad)
        assert int(status) == jaxgd.Status.INVALID_ARGUMENT and np.array_equal(p, p0), (bad, p, status)
        p, status = run_at(good)
        assert int(status) == jaxgd.Status.RUNNING and not np.array_equal(p, p0), (good, p, status)
    # under inject_hyperparams (the documented way to change lr mid-run), traced inside jit
    tx = optax.inject_hyperparams(lambda learning_rate: jaxgd.as_optax("adam", lr=learning_rate))(learning_rate=0.1)

    def injected(lr):
        s = tx.init(p0)
        s.hyperparams["learning_rate"] = lr
        g = jax.grad(loss)(p0)
        u, s = tx.update(g, s, p0, value=loss(p0), grad=g, value_fn=loss)
        return u, s.inner_state.status

    u, status = jax.jit(injected)(-0.01)
    assert int(status) == jaxgd.Status.INVALID_ARGUMENT and not np.any(u)
