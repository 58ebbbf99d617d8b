"""What ``Solver`` says about the inputs it is given by mistake (a user review, session 58).

- ``Solver.step`` checks its ``state`` as ``Solver.resume`` checks a result (one test,
  ``Solver._check_state``): a state of another method said "'ScaleByAdamState' object has no
  attribute 'params'", or was stepped silently under ``gd``.
- ``Solver.init``/``run``/``minimize`` given a state or a result as ``x0`` named its int32 count
  as a leaf to cast.
- ``Solver.init`` runs ``minimize``'s loss check (``jaxgd.core.loss_check``): JAX's "iteration over
  a 0-d array" or "Gradient only defined for scalar-output functions" before.
- A tuple loss of length 1 (``return loss,``) or 3 was called "a pair (loss, aux)".
- An integer ``x0`` written as a Python list or number was told to call ``x0.astype(float)``.

References: optax's own state types (``optax.scale_by_adam`` builds a ``ScaleByAdamState``),
``minimize``'s message for the same loss (the check ``Solver`` now shares), the state a step
counts (``nfev``: one evaluation per constant-lr step, the documented cost), and the advice run
as written (``eval`` of the suggested cast, then a run that converges to the closed-form answer).
The refusals are also rows of tests/test_bad_inputs.py.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd.checkpoint.format import TreeMismatchError

A = jnp.array([10.0, 20.0, 30.0])


def quad(x: jax.Array) -> jax.Array:
    return 0.5 * jnp.sum((x - A) ** 2)


@pytest.fixture(scope="module")
def adam_state() -> jaxgd.SolverState:
    solver = jaxgd.Solver(quad, "adam", 0.1)
    return solver.step(solver.init(jnp.zeros(3)))


@pytest.mark.parametrize("make", [
    pytest.param(lambda: jaxgd.Solver(quad, "lbfgs"), id="lbfgs"),
    pytest.param(lambda: jaxgd.Solver(quad, "momentum", 0.1), id="momentum"),
    pytest.param(lambda: jaxgd.Solver(quad, "gd", jaxgd.linesearch.Backtracking()), id="gd-backtracking"),
    pytest.param(lambda: jaxgd.Solver(quad, "gd", 0.1), id="gd"),  # (was stepped silently, adam's state carried)
])
def test_step_names_the_method_whose_state_it_was_given(adam_state: jaxgd.SolverState, make: Callable) -> None:
    """Switching from adam to another method by stepping adam's state: refused before the step is traced,
    naming ``state``, the method that made it (optax's ``ScaleByAdamState``) and the switch that works."""
    solver = make()
    assert type(adam_state.direction_state) is type(optax.scale_by_adam().init(jnp.zeros(3)))
    with pytest.raises(TreeMismatchError) as info:
        solver.step(adam_state)
    msg = str(info.value)
    assert msg.startswith(f"state (method {solver.direction.name!r}): tree structure differs"), msg
    assert "state.direction_state is ScaleByAdamState, the state of method 'adam' or 'adamw'" in msg, msg
    assert msg.endswith("start this one from the old run's parameters, solver.init(state.params)"), msg
    new = jax.eval_shape(solver.step, solver.init(adam_state.params))  # the advice, followed (lbfgs eagerly: 3 s)
    assert new.count.shape == () and new.params.shape == (3,)


def test_step_of_a_state_of_the_same_method_with_other_options() -> None:
    """gd's state under a constant lr has no rule state; Backtracking's holds its last step size (the
    documented state of jaxgd.linesearch.Backtracking): the same direction, so no method is named."""
    state = jaxgd.Solver(quad, "gd", 0.1).init(jnp.zeros(3))
    solver = jaxgd.Solver(quad, "gd", jaxgd.linesearch.Backtracking())
    with pytest.raises(TreeMismatchError, match=re.escape("missing leaves .rule_state.alpha")) as info:
        solver.step(state)
    assert str(info.value).endswith(". state comes from a solver of other options: to switch solvers, start this one "
                                    "from the old run's parameters, solver.init(state.params)"), str(info.value)


def test_resume_of_another_methods_result_says_how_to_switch() -> None:
    """Solver.resume runs the same check (one test): its message now names the method too."""
    result = jaxgd.Solver(quad, "adam", 0.1, max_steps=3).start(jnp.zeros(3))
    said = "result.state (method 'momentum'): tree structure differs"
    with pytest.raises(TreeMismatchError, match=re.escape(said)) as info:
        jaxgd.Solver(quad, "momentum", 0.1).resume(result)
    assert str(info.value).endswith(
        "result.state.direction_state is ScaleByAdamState, the state of method 'adam' or 'adamw' (this solver's method "
        "'momentum' builds TraceState): to switch solvers, start this one from the old run's parameters, "
        "solver.run(result.params)"), str(info.value)


def test_step_refuses_parameters_and_a_result(adam_state: jaxgd.SolverState) -> None:
    solver = jaxgd.Solver(quad, "adam", 0.1)
    said = ("state must be a jaxgd.SolverState (from Solver.init or Solver.step), got ArrayImpl; "
            "to start from parameters x0, step from solver.init(x0)")
    with pytest.raises(TypeError, match=re.escape(said)):
        solver.step(jnp.zeros(3))
    result = solver.start(jnp.zeros(3))
    said = "got Result; pass result.state, or continue the run with solver.resume(result)"
    with pytest.raises(TypeError, match=re.escape(said)):
        solver.step(result)
    assert int(solver.step(result.state).count) == 1  # the advice, followed


def test_step_checks_a_state_structure_once() -> None:
    """A repeated step called eagerly runs compiled: the Python loss runs only at a new tree structure of
    ``(state, args)`` (the check's ``jax.eval_shape`` of ``init`` and the step's trace), not at a repeat; gd
    with a constant lr evaluates once a step (its ``nfev``, the documented cost)."""
    calls = []

    def counted(x: jax.Array, *args: Any) -> jax.Array:
        calls.append(1)
        return quad(x)

    solver = jaxgd.Solver(counted, "gd", 0.1)
    state = solver.init(jnp.zeros(3))
    state = solver.step(state)  # (the first: the check traced init, the loss included)
    for args, checked in [((), False), ((), False), ((jnp.ones(2),), True), ((jnp.ones(2),), False)]:
        before, nfev = len(calls), int(state.nfev)
        state = solver.step(state, *args)
        assert int(state.nfev) - nfev == 1
        assert (len(calls) - before > 1) == checked, (args, len(calls) - before)
        if not checked:
            assert len(calls) - before == 0


def test_jitted_and_vmapped_step_check_their_state(adam_state: jaxgd.SolverState) -> None:
    """The check reads shapes and dtypes only: under jax.jit it runs once at trace time; under jax.vmap
    it sees one run's state."""
    solver = jaxgd.Solver(quad, "momentum", 0.1)
    with pytest.raises(TreeMismatchError, match="the state of method 'adam' or 'adamw'"):
        jax.jit(solver.step)(adam_state)
    states = jax.vmap(solver.init)(jnp.zeros((2, 3)))
    stepped = jax.vmap(solver.step)(states)
    np.testing.assert_allclose(np.asarray(stepped.params), np.broadcast_to(0.1 * np.asarray(A), (2, 3)), rtol=1e-12)


@pytest.mark.parametrize("call", [
    pytest.param(lambda s, st, r: s.init(st), id="init-state"),
    pytest.param(lambda s, st, r: s.run(st), id="run-state"),
    pytest.param(lambda s, st, r: s.start(r), id="start-result"),
    pytest.param(lambda s, st, r: jaxgd.minimize(quad, st), id="minimize-state"),
    pytest.param(lambda s, st, r: jaxgd.minimize(quad, r), id="minimize-result"),
])
def test_a_state_or_result_as_x0_says_pass_its_params(adam_state: jaxgd.SolverState, call: Callable) -> None:
    solver = jaxgd.Solver(quad, "adam", 0.1, max_steps=3)
    result = solver.start(jnp.zeros(3))
    said = r"^x0 is a jaxgd\.(SolverState|Result), not parameters: pass (state|result)\.params"
    with pytest.raises(TypeError, match=said) as info:
        call(solver, adam_state, result)
    assert "astype" not in str(info.value) and "int32" not in str(info.value)


def _scalar(x: jax.Array) -> jax.Array:
    return jnp.sum(x**2)


LOSSES = [  # (loss, has_aux, x0, how the old Solver.init's message began)
    pytest.param(_scalar, True, jnp.zeros(3), "iteration over a 0-d array", id="aux-missing"),
    pytest.param(lambda x: (_scalar(x), x, x), True, jnp.zeros(3), "too many values to unpack", id="aux-3-tuple"),
    pytest.param(lambda x: _scalar(x)[None], False, jnp.zeros(3), "Gradient only defined for scalar-output",
                 id="shape-1"),
    pytest.param(lambda x: jnp.sum(x).astype(jnp.int32), False, jnp.zeros(3), "grad requires real-valued outputs",
                 id="int"),
    pytest.param(quad, False, [0.0, 0.0, 0.0], "unsupported operand", id="list-x0"),
    pytest.param(lambda x: (_scalar(x),), False, jnp.zeros(3), "fun must return a real scalar loss; got a tuple of 1 (",
                 id="1-tuple"),
]


@pytest.mark.parametrize("fun, has_aux, x0, old", LOSSES)
def test_solver_checks_the_loss_as_minimize(fun: Callable, has_aux: bool, x0: Any, old: str) -> None:
    """Reference: minimize's message for the same loss and x0 (the check they now share), word for word,
    from init, run and under jax.jit."""
    with pytest.raises(TypeError) as want:
        jaxgd.minimize(fun, x0, method="gd", lr=0.1, has_aux=has_aux)
    solver = jaxgd.Solver(fun, "gd", 0.1, has_aux=has_aux)
    for call in (solver.init, solver.run, jax.jit(solver.run)):
        with pytest.raises(TypeError) as got:
            call(x0)
        assert str(got.value) == str(want.value) and not str(got.value).startswith(old), str(got.value)


@pytest.mark.parametrize("out, said", [
    pytest.param(lambda f: (f,), "got a tuple of length 1 (a trailing comma, `return loss,`? drop the comma)", id="1"),
    pytest.param(lambda f: (f, f), "got a tuple of 2 (a pair (loss, aux)? pass has_aux=True; a pair (loss, gradient), "
                                   "scipy's jac=True form? return the loss alone", id="2"),
    pytest.param(lambda f: (f, f, f), "got a tuple of length 3 (with has_aux=True fun returns a pair (loss, aux): "
                                      "put everything but the loss in one aux, e.g. (loss, (a, b)))", id="3"),
    pytest.param(lambda f: [f], "got a list of length 1 (with has_aux=True", id="list-1"),
])
def test_a_tuple_loss_says_what_it_returned(out: Callable, said: str) -> None:
    """Only a pair is "(loss, aux)?": a 1-tuple is a stray trailing comma, a 3-tuple an aux not packed
    in one element. minimize, Solver.init and a step from a state made by another solver (the
    objective's trace-time test) say the same."""
    fun = lambda x: out(quad(x))  # noqa: E731
    calls = [lambda: jaxgd.minimize(fun, jnp.zeros(3)), lambda: jaxgd.Solver(fun, "gd", 0.1).init(jnp.zeros(3))]
    good = jaxgd.Solver(quad, "gd", 0.1)
    calls.append(lambda: jaxgd.Solver(fun, "gd", 0.1).objective(good.init(jnp.zeros(3)).params))
    for call in calls:
        with pytest.raises(TypeError, match=re.escape("fun must return a real scalar loss; " + said)):
            call()


@pytest.mark.parametrize("x0, advice", [
    pytest.param([0, 0, 0], "jnp.asarray(x0, dtype=float)", id="list"),
    pytest.param(3, "jnp.asarray(x0, dtype=float)", id="int"),
    pytest.param((0, 0, 0), "jnp.asarray(x0, dtype=float)", id="tuple"),
    pytest.param(np.arange(3) * 0, "x0.astype(float)", id="numpy-int64"),
    pytest.param(jnp.zeros(3, jnp.int32), "x0.astype(float)", id="jax-int32"),
    pytest.param({"w": [0, 0, 0]}, "jax.tree.map(lambda v: jnp.asarray(v, dtype=float), x0)", id="dict"),
])
def test_an_integer_x0_is_told_a_cast_that_runs(x0: Any, advice: str) -> None:
    """Reference: the advice run as written, then minimize from the cast x0 reaches the closed-form
    minimum of sum((x - 2)^2) (x = 2 everywhere); a list or a Python int has no .astype."""
    fun = lambda x: sum(jnp.sum((v - 2.0) ** 2) for v in jax.tree.leaves(x))  # noqa: E731
    with pytest.raises(TypeError, match=re.escape(f"x0 must hold real floating-point arrays (cast it, e.g. {advice})")):
        jaxgd.minimize(fun, x0)
    cast = eval(advice, {"jnp": jnp, "jax": jax, "x0": x0})  # noqa: S307 (the message's own code)
    res = jaxgd.minimize(fun, cast, method="gd", lr=0.5)
    assert res.success and all(np.allclose(v, 2.0) for v in jax.tree.leaves(res.params))


def test_a_python_float_leaf_is_strongly_typed_as_minimize_makes_it():
    """Solver.init kept a Python float leaf weakly typed (jnp.asarray), so with bfloat16 data its loss was
    bfloat16 where minimize's (which strips weak types) was float32 (a user review, session 58). Reference:
    minimize on the same problem, documented as the Solver's loop in one call: the same dtypes and answer."""
    x = jnp.linspace(0, 1, 50).astype(jnp.bfloat16)
    y = (3.3 * x).astype(jnp.bfloat16)
    f = lambda p, x, y: jnp.mean((x * p["w"] - y) ** 2)  # noqa: E731
    with jax.enable_x64(False):
        ref = jaxgd.minimize(f, {"w": 0.0}, (x, y), method="lbfgs", tier="compiled")
        solver = jaxgd.Solver(f, "lbfgs")
        state = solver.init({"w": 0.0}, x, y)
        assert not state.params["w"].weak_type and state.value.dtype == ref.loss.dtype == jnp.float32
        got = solver.run({"w": 0.0}, x, y)
    assert got.loss.dtype == jnp.float32 and got.status_enum == ref.status_enum
    np.testing.assert_array_equal(np.asarray(got.params["w"]), np.asarray(ref.params["w"]))


def test_a_non_array_argument_is_passed_as_it_is_by_the_loss_check():
    """Solver's eager steps pass args as they are, so a loss may use one as a static value (a class count as
    a shape, a mode string, a function); the loss check added to Solver.init traced every argument and refused
    them (a review of this session's changes, session 58). Reference: the same loss with the value closed over
    (functools.partial): the same run, bit for bit."""
    import functools

    def f(w, x, k, mode, g):
        r = jax.nn.one_hot(jnp.arange(3), k) @ w - x
        return jnp.sum(g(r)) if mode == "sq" else jnp.sum(jnp.abs(r))

    x0, x = jnp.zeros(4), jnp.ones(3)
    got = jaxgd.Solver(f, "gd", 0.1, max_steps=5).run(x0, x, 4, "sq", jnp.square)
    want = jaxgd.Solver(functools.partial(f, k=4, mode="sq", g=jnp.square), "gd", 0.1, max_steps=5).run(x0, x)
    assert int(got.steps) == 5
    np.testing.assert_array_equal(np.asarray(got.params), np.asarray(want.params))
    solver = jaxgd.Solver(f, "gd", 0.1, max_steps=5)
    state = solver.step(solver.init(x0, x, 4, "sq", jnp.square), x, 4, "sq", jnp.square)
    assert int(state.count) == 1


@pytest.mark.slow  # (~4 s: make test time)
def test_a_solver_whose_loss_is_gone_says_so():
    """A Solver returned from jax.vmap/jax.jit, built there around a loss defined there, holds that loss weakly
    (its tree definition) and outlives it: its run raised "Expected a callable value, got None" from inside the
    loss check (a user review, session 58). Reference: the message names the cause and the fix; a loss kept
    alive outside works (the documented vmap sweep)."""
    import functools
    import gc

    def loss(x, c):
        return jnp.sum((x - c) ** 2)

    make = lambda lr: jaxgd.Solver(functools.partial(loss, c=2.0), "adam", lr)  # noqa: E731
    solvers = jax.vmap(make)(jnp.asarray([0.1, 0.2]))
    gc.collect()
    with pytest.raises(TypeError, match="this Solver's loss function no longer exists"):
        jax.vmap(lambda s: s.run(jnp.zeros(2)).loss)(solvers)
    kept = functools.partial(loss, c=2.0)
    alive = jax.vmap(lambda lr: jaxgd.Solver(kept, "adam", lr, max_steps=3))(jnp.asarray([0.1, 0.2]))
    assert jax.vmap(lambda s: s.run(jnp.zeros(2)).steps)(alive).tolist() == [3, 3]


def test_a_batched_state_or_an_aux_of_other_shapes_is_named_for_what_it_is():
    """Solver.step's state check called a vmapped state, and one whose per-example aux followed a smaller batch,
    "a solver of other options", advising a fresh start (a user review, session 58). Reference: the states'
    own shapes (a leading batch axis on the scalar fields; aux alone differing)."""
    f = lambda w, x, y: (jnp.sum((x @ w - y) ** 2), x @ w - y)  # noqa: E731
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.normal(size=(8, 4))), jnp.asarray(rng.normal(size=8))
    solver = jaxgd.Solver(f, "adam", 0.1, has_aux=True)
    state = solver.init(jnp.zeros(4), x, y)
    with pytest.raises(jaxgd.TreeMismatchError, match="differs from what this solver builds in its aux only"):
        solver.step(state, x[:5], y[:5])
    plain = jaxgd.Solver(lambda w: jnp.sum(w**2), "adam", 0.1)
    with pytest.raises(jaxgd.TreeMismatchError, match=r"is a batch of states .* jax.vmap\(solver.step\)"):
        plain.step(jax.vmap(plain.init)(jnp.zeros((3, 4))))


def test_a_state_of_other_shapes_is_refused_after_a_good_one():
    """step's check was remembered per tree structure only: once a good state had been stepped, a state of the
    same structure and other shapes (an L-BFGS memory of 10 pairs where this solver keeps 5) was stepped
    silently (a review of per-call overhead, session 58). Reference: the documented Raises (shapes differ)."""
    from jaxgd import directions

    f = lambda x: jnp.sum((x - 1.0) ** 2)  # noqa: E731
    five, ten = jaxgd.Solver(f, directions.lbfgs(5)), jaxgd.Solver(f, directions.lbfgs(10))
    five.step(five.init(jnp.zeros(3)))
    with pytest.raises(jaxgd.TreeMismatchError, match=r"\.direction_state\.s: expected shape \(5, 3\)"):
        five.step(ten.init(jnp.zeros(3)))
