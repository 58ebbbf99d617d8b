"""The typed extension points (``jaxgd.protocols``) and the import graph.

Every registered direction, every step-size rule in ``jaxgd.linesearch`` and
the schedule wrapper, and the proximal operator satisfy their Protocol; the
package's module-level imports form no cycle (the registry is explicit: no
direction module imports it, nothing registers itself by side effect).
"""

from __future__ import annotations

import ast
import inspect
import pathlib

import optax
import pytest

import jaxgd
from jaxgd import linesearch, protocols
from jaxgd.core.stepsize import as_rule
from jaxgd.directions import registry
from jaxgd.prox.operators import Prox

PACKAGE = pathlib.Path(jaxgd.__file__).parent


def _rule_classes():
    return [getattr(linesearch, n) for n in linesearch.__all__
            if inspect.isclass(getattr(linesearch, n)) and hasattr(getattr(linesearch, n), "step")]


@pytest.mark.parametrize("method", jaxgd.methods())
def test_every_registered_direction_is_a_search_direction(method):
    assert isinstance(registry.resolve(method), protocols.SearchDirection)


def test_an_optax_transformation_becomes_a_search_direction():
    assert isinstance(registry.resolve(optax.adam(1e-3)), protocols.SearchDirection)


@pytest.mark.parametrize("cls", _rule_classes(), ids=lambda c: c.__name__)
def test_every_rule_is_a_step_size_rule(cls):
    assert isinstance(cls(), protocols.StepSizeRule)


def test_schedules_become_step_size_rules():
    for lr in (0.1, jaxgd.schedules.step_decay(0.1, 10), optax.cosine_decay_schedule(0.1, 100)):
        assert isinstance(as_rule(lr), protocols.StepSizeRule)


def test_prox_is_a_proximal_operator():
    assert isinstance(Prox(l1=0.1), protocols.ProximalOperator)
    assert not isinstance(0.1, protocols.ProximalOperator)


def _imports() -> dict[str, set[str]]:
    """Module -> the jaxgd modules it imports at module level (relative imports)."""
    graph: dict[str, set[str]] = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        parts = parts[:-1] if is_pkg else parts
        pkg = parts if is_pkg else parts[:-1]
        deps: set[str] = set()
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
                deps |= {f"{base}.{a.name}" for a in node.names} if node.module is None else {base}
        graph[".".join(parts)] = deps
    return {m: {d for d in deps if d in graph} for m, deps in graph.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (a list of modules), or [] (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str]:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        state[m] = 2
        stack.pop()
        return []

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return []


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    graph = _imports()
    assert "jaxgd.directions.quasi_newton" in graph and graph["jaxgd.directions.registry"]
    assert _cycle(graph) == []


def test_no_direction_module_imports_the_registry():
    graph = _imports()
    users = [m for m, deps in graph.items() if "jaxgd.directions.registry" in deps and m.startswith("jaxgd.directions")]
    assert users == []


def test_the_step_size_recipe_in_docs_extending_works():
    """The example rule of docs/extending.md runs; reference: the closed form A^{-1} b
    and, for the first step, alpha = radius / ||g_0|| (gd's direction is -g)."""
    import re

    import jax.numpy as jnp
    import numpy as np

    text = (PACKAGE.parent / "docs" / "extending.md").read_text()
    namespace: dict = {}
    exec(re.search(r"```python\n(.*?)```", text, re.S).group(1), namespace)  # noqa: S102
    rule = namespace["CappedStep"](radius=0.1, max_step=0.3)
    assert isinstance(rule, protocols.StepSizeRule)
    a, b = np.array([[3.0, 0.5], [0.5, 1.0]]), np.array([1.0, -2.0])
    fun = lambda x: 0.5 * x @ jnp.asarray(a) @ x - jnp.asarray(b) @ x  # noqa: E731
    res = jaxgd.minimize(fun, jnp.zeros(2), lr=rule, max_steps=500, gtol=1e-9)
    np.testing.assert_allclose(np.asarray(res.params), np.linalg.solve(a, b), atol=1e-8)
    np.testing.assert_allclose(float(res.history.lr[0]), 0.1 / np.linalg.norm(b), rtol=1e-12)
    with pytest.raises(ValueError, match="radius must be > 0"):
        namespace["CappedStep"](radius=0.0)


# -- a user's extension that breaks the contract: an error naming it at trace time (audit, session 30) --
def test_a_direction_or_rule_returning_the_wrong_shape_is_named() -> None:
    """Reference: the contracts (protocols.SearchDirection.update -> (d, state); StepSizeRule.step ->
    (alpha, trial, state, info)). Before, Python's "too many values to unpack" or an AttributeError
    on None came out of jaxgd's internals."""
    import jax
    import jax.numpy as jnp

    from jaxgd import _tree

    f = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    bare = jaxgd.Direction("bare", lambda p: (), lambda g, s, p, value=None, value_fn=None: jax.tree_util.tree_map(jnp.negative, g))
    with pytest.raises(TypeError, match=r"method='bare': a Direction's update\(.*\) must return a pair \(d, state\)"):
        jaxgd.minimize(f, jnp.zeros(3), method=bare, lr=0.1)

    @_tree.pytree_class(data=(), meta=("arity",))
    class Short:
        def __init__(self, arity: int) -> None:
            _tree.set_fields(self, arity=arity)

        def init(self, params, value, grad):  # noqa: ANN001, ANN201
            return ()

        def step(self, state, ctx):  # noqa: ANN001, ANN201
            alpha = jnp.asarray(0.1, ctx.value.dtype)
            out = (alpha, ctx.evaluate(alpha), state, linesearch.StepInfo(1, 1, jnp.asarray(False)))
            return out[: self.arity] if self.arity < 4 else out[:3] + (None,)

    for arity in (3, 4):  # three items; info None
        with pytest.raises(TypeError, match=r"lr \(a Short\): a step-size rule's step\(state, ctx\) must return"):
            jaxgd.minimize(f, jnp.zeros(3), lr=Short(arity))


def test_a_broken_direction_or_rule_contract_is_named() -> None:
    """Reference: the contracts (protocols.SearchDirection: d shaped like params, a state of fixed structure,
    shapes and dtypes, update(..., *, value, value_fn), reset -> (state, had_memory); StepSizeRule: a scalar
    alpha, a fixed state). Before, JAX's dot_general / while_loop carry / stacking errors or Python's "too
    many values to unpack" came out of jaxgd's internals, naming neither the Direction nor the rule."""
    import jax
    import jax.numpy as jnp

    f = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    D = jaxgd.Direction
    neg = lambda g: jax.tree_util.tree_map(jnp.negative, g)  # noqa: E731
    directions = [
        (D("short", lambda p: (), lambda g, s, p, **k: (-g[:2], s)), "must return d shaped like params"),
        (D("grow", lambda p: jnp.zeros(0), lambda g, s, p, **k: (-g, jnp.concatenate([s, g[:1]]))),
         "method='grow': its state must keep the structure, shapes and dtypes init gave it"),
        (D("nokw", lambda p: (), lambda g, s, p: (neg(g), s)), "it does not take value and value_fn"),
    ]
    for method, message in directions:
        with pytest.raises(TypeError, match=message):
            jaxgd.minimize(f, jnp.zeros(3), method=method, lr=0.1, max_steps=3)
    rst = D("rst", lambda p: jnp.zeros(3), lambda g, s, p, **k: (neg(g), s), reset=lambda s: s)
    with pytest.raises(TypeError, match=r"method='rst': a Direction's reset\(state\) must return a pair"):
        jaxgd.minimize(f, jnp.zeros(3), method=rst, lr=linesearch.Backtracking(), max_steps=3)
    with pytest.raises(ValueError, match="no lr was given: this is method='dlr''s default_lr"):
        jaxgd.minimize(f, jnp.zeros(3), method=D("dlr", lambda p: (), lambda g, s, p, **k: (neg(g), s), default_lr=-0.1))

    from jaxgd import _tree

    @_tree.pytree_class(data=(), meta=("bad",))
    class Odd:
        def __init__(self, bad: str) -> None:
            _tree.set_fields(self, bad=bad)

        def init(self, params, value, grad):  # noqa: ANN001, ANN201
            return jnp.asarray(0, jnp.int32)

        def step(self, state, ctx):  # noqa: ANN001, ANN201
            alpha = jnp.full(3, 0.1, ctx.value.dtype) if self.bad == "alpha" else jnp.asarray(0.1, ctx.value.dtype)
            state = state + ctx.value if self.bad == "state" else state
            return alpha, ctx.evaluate(alpha), state, linesearch.StepInfo(1, 1, jnp.asarray(False))

    with pytest.raises(TypeError, match=r"lr \(a Odd\): a step-size rule's alpha must be a scalar, got shape \(3,\)"):
        jaxgd.minimize(f, jnp.zeros(3), lr=Odd("alpha"), max_steps=3)
    with pytest.raises(TypeError, match=r"lr \(a Odd\): its state must keep .*'float64\[\]'\] after a step, from .*'int32\[\]'"):
        jaxgd.minimize(f, jnp.zeros(3), lr=Odd("state"), max_steps=3)


def test_an_object_with_the_search_direction_members_is_a_method() -> None:
    """protocols.py: "a class satisfies one by having the members"; minimize refused a frozen dataclass with
    SearchDirection's members (only a jaxgd.Direction passed). Reference: the built-in gd with the same lr."""
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np

    @dataclasses.dataclass(frozen=True)
    class MyGD:
        name: str = "mygd"
        default_lr: float = 0.1
        decoupled_l2: bool = False
        reset: object = None

        def init(self, params):  # noqa: ANN001, ANN201
            return ()

        def update(self, grad, state, params, *, value=None, value_fn=None):  # noqa: ANN001, ANN201
            return jax.tree_util.tree_map(jnp.negative, grad), state

    assert isinstance(MyGD(), protocols.SearchDirection)
    f = lambda x: jnp.sum((x - 3.0) ** 2)  # noqa: E731
    mine = jaxgd.minimize(f, jnp.zeros(3), method=MyGD(), max_steps=20)
    gd = jaxgd.minimize(f, jnp.zeros(3), method="gd", lr=0.1, max_steps=20)
    np.testing.assert_array_equal(mine.params, gd.params)
