"""Explicit-axis meshes seen as Auto ones: jaxgd's loops on the user's devices, handed back on the user's mesh.

``jax.make_mesh`` makes Explicit axes by default, and ``jax.set_mesh`` turns
on JAX's sharding-in-types mode, where every operation on an array sharded
over an Explicit axis must say how its result is sharded. jaxgd's loops
(the minibatch gather of ``fit``, the history rows, optax's state) leave that
to XLA's sharding propagation, which needs Auto axes: on an Explicit mesh
they failed with JAX's errors about code the user cannot change. So a
top-level ``minimize``/``fit`` call that meets an Explicit mesh (its inputs',
``fit``'s ``mesh=``, or the one in context) runs on the *Auto view* of that
mesh: the same devices, axis names and layouts, every axis Auto (relabelling
an array moves no data). The arrays it returns are relabelled back onto the
user's mesh, so that the user's own Explicit-mode code can use them.

Under a transformation (the user's ``jax.jit`` in Explicit mode) nothing is
relabelled: the inputs are tracers whose types carry their shardings.
``minimize`` runs there; ``fit``, whose minibatch gather needs its data's
placement, refuses data sharded over Explicit axes and ``mesh=`` under an
Explicit mesh in context (:func:`check_traced_fit`), naming the way out.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional

import jax
from jax.sharding import AxisType, Mesh, NamedSharding

from ._types import PyTree


def is_explicit(mesh: Any) -> bool:
    """True when ``mesh`` (concrete or abstract) has an Explicit axis."""
    return any(t == AxisType.Explicit for t in getattr(mesh, "axis_types", ()))


def auto_view(mesh: Mesh) -> Mesh:
    """The same devices and axis names with every axis in Auto mode."""
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def _context_mesh() -> Optional[Mesh]:
    """The concrete mesh ``jax.set_mesh`` put in context, where it has an Explicit axis."""
    if not is_explicit(jax.sharding.get_abstract_mesh()):  # (the usual case: no mesh in context, ~0.5 us)
        return None
    mesh = jax.sharding.get_mesh()
    return mesh if is_explicit(mesh) else None


def explicit_home(*trees: Any) -> Optional[Mesh]:
    """The Explicit mesh a top-level call must run on the Auto view of: the one in context, else
    the first met among ``trees``' concrete arrays' shardings and the meshes they hold; None
    under a transformation or where there is none."""
    from .core.compile import tracing

    if tracing():
        return None
    home = _context_mesh()
    if home is not None:
        return home
    for leaf in jax.tree_util.tree_leaves(trees, is_leaf=lambda x: isinstance(x, Mesh)):
        if isinstance(leaf, Mesh):
            if is_explicit(leaf):
                return leaf
        elif isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer):
            sharding = leaf.sharding
            if isinstance(sharding, NamedSharding) and is_explicit(sharding.mesh):
                return sharding.mesh
    return None


TRACED_EXPLICIT = (
    "{what} under a transformation (jax.jit, jax.vmap, ...) in JAX's Explicit sharding mode: fit's minibatch "
    "gather cannot be placed there. Call fit outside jax.jit (it compiles its own loop, and runs an Explicit mesh "
    "on its Auto view), or use a mesh with Auto axes (jax.make_mesh(..., axis_types=(AxisType.Auto, ...)))"
)


def check_traced_fit(mesh: Any, data: Any, eval_data: Any) -> None:
    """Under a transformation: refuse ``mesh=`` while ``jax.set_mesh`` holds an Explicit mesh, and
    ``data``/``eval_data`` traced with a sharding over an Explicit axis (JAX's sharding-type errors
    from fit's own indexing, before)."""
    from .core.compile import tracing

    if not tracing():
        return
    if mesh is not None and is_explicit(jax.sharding.get_abstract_mesh()):
        raise ValueError(TRACED_EXPLICIT.format(what="mesh= with a mesh of Explicit axes in context (jax.set_mesh)"))
    for name, tree in (("data", data), ("eval_data", eval_data)):
        for leaf in jax.tree_util.tree_leaves(tree):
            if isinstance(leaf, jax.core.Tracer) and _explicitly_sharded(leaf):
                raise ValueError(TRACED_EXPLICIT.format(what=f"{name} sharded over a mesh's Explicit axes"))


def _explicitly_sharded(x: Any) -> bool:
    """True when traced ``x``'s type splits it over an Explicit mesh axis."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    if sharding is None or not is_explicit(sharding.mesh):
        return False
    explicit = {n for n, t in zip(sharding.mesh.axis_names, sharding.mesh.axis_types) if t == AxisType.Explicit}
    named = set()
    for entry in sharding.spec:
        named.update(entry if isinstance(entry, tuple) else (() if entry is None else (entry,)))
    return bool(named & explicit)


def relabel(tree: PyTree, src: Any, dst: Mesh) -> PyTree:
    """``tree`` with every concrete array sharded over mesh ``src`` (and a ``Mesh`` equal to it)
    put on ``dst`` (the same devices: no data moves), with the same partition spec."""

    def one(x: Any) -> Any:
        if isinstance(x, Mesh):
            return dst if x == src else x
        if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
            sharding = x.sharding
            if isinstance(sharding, NamedSharding) and sharding.mesh == src:
                return jax.device_put(x, NamedSharding(dst, sharding.spec))
        return x

    return jax.tree_util.tree_map(one, tree, is_leaf=lambda x: isinstance(x, Mesh))


@contextlib.contextmanager
def _in_context(mesh: Mesh) -> Iterator[None]:
    """``mesh`` in context where the user put one there (``jax.set_mesh``), else nothing."""
    if jax.sharding.get_abstract_mesh().empty:
        yield
        return
    with jax.set_mesh(mesh):
        yield


def run_on_auto_view(home: Mesh, fn: Callable[..., Any], given: dict, names: tuple) -> Any:
    """``fn(**given)`` (``given["unknown"]``: the caller's unknown keywords) with the arrays and meshes
    of ``given[name]`` for each of ``names`` on the Auto view of ``home``, and in its context where a
    mesh is in context; the arrays of the result on the Auto view put back on ``home``."""
    view = auto_view(home)
    kwargs = {k: v for k, v in given.items() if k != "unknown"}
    for name in names:
        kwargs[name] = relabel(kwargs[name], home, view)
    with _in_context(view):
        out = fn(**kwargs, **given.get("unknown", {}))
    return relabel(out, view, home)
