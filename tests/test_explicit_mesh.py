"""Meshes with Explicit axes (``jax.make_mesh``'s default, ``jax.set_mesh``'s sharding-in-types mode): ``fit``
and ``minimize`` run on the mesh's Auto view and hand their arrays back on the user's mesh (jaxgd._mesh).

Before, each case below failed with JAX's sharding-type errors about jaxgd's own code (fit's minibatch
gather, the history rows, optax's state), or returned arrays on an Auto copy of the mesh that the user's
Explicit-mode code could not mix with its own. Reference: the same call on one device without a mesh.
A one-device mesh shows every one of these in process; tests/test_fit_mesh.py and the slow test here run
two host devices in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxgd

ROOT = Path(__file__).resolve().parent.parent
X = np.random.default_rng(0).normal(size=(24, 3))
DATA = {"x": X, "y": X @ np.array([1.0, -1.0, 0.5])}
KW = dict(batch_size=4, epochs=2, key=jax.random.key(0), method="adam", lr=0.05, progress=False)


def _loss(w: jax.Array, b: dict) -> jax.Array:
    return jnp.mean((b["x"] @ w - b["y"]) ** 2)


def _mesh() -> jax.sharding.Mesh:
    mesh = jax.make_mesh((1,), ("data",))
    if not jaxgd._mesh.is_explicit(mesh):  # pragma: no cover - a JAX whose make_mesh makes Auto axes
        pytest.skip("jax.make_mesh made Auto axes")
    return mesh


def _on(mesh: jax.sharding.Mesh, x: jax.Array) -> bool:
    """x is on the user's mesh, and the user's Explicit-mode code can use it with its own arrays."""
    mine = jax.device_put(jnp.ones(np.shape(x)), NamedSharding(mesh, P()))
    with jax.set_mesh(mesh):
        jax.jit(lambda a, b: a + b)(x, mine)
    return isinstance(x.sharding, NamedSharding) and x.sharding.mesh == mesh


def test_fit_on_explicit_data() -> None:
    """fit(data sharded over an Explicit axis) without mesh= (JAX's "Use .at[...].get(out_sharding=)" from
    fit's gather): the one-device run's parameters, handed back on the user's mesh."""
    mesh = _mesh()
    single = jaxgd.fit(_loss, jnp.zeros(3), DATA, **KW)
    res = jaxgd.fit(_loss, jnp.zeros(3), jax.device_put(DATA, NamedSharding(mesh, P("data"))), **KW)
    np.testing.assert_allclose(np.asarray(res.params), np.asarray(single.params), rtol=1e-12)
    assert _on(mesh, res.params)


@pytest.mark.slow
def test_fit_with_mesh_in_an_explicit_context() -> None:
    """fit(mesh=) inside jax.set_mesh (JAX's "Context mesh ... should match"), and outside it (the result was on
    an Auto copy of the mesh, which the user's Explicit-mode code refuses): the one-device run's parameters,
    on the user's mesh."""
    mesh = _mesh()
    single = jaxgd.fit(_loss, jnp.zeros(3), DATA, **KW)
    with jax.set_mesh(mesh):
        inside = jaxgd.fit(_loss, jnp.zeros(3), DATA, mesh=mesh, **KW)
    outside = jaxgd.fit(_loss, jnp.zeros(3), DATA, mesh=mesh, **KW)
    for res in (inside, outside):
        np.testing.assert_allclose(np.asarray(res.params), np.asarray(single.params), rtol=1e-12)
        assert _on(mesh, res.params)


def test_minimize_on_explicit_parameters_twice() -> None:
    """minimize(x0 on an Explicit mesh) failed in the history rows' update; a second call (the repeat
    path, which skips the checks) too. The one-device run's parameters, on the user's mesh."""
    mesh = _mesh()
    f = lambda w: _loss(w, DATA)  # noqa: E731
    single = jaxgd.minimize(f, jnp.zeros(3), method="adam", lr=0.05, max_steps=20)
    x0 = jax.device_put(jnp.zeros(3), NamedSharding(mesh, P()))
    for _ in range(2):
        res = jaxgd.minimize(f, x0, method="adam", lr=0.05, max_steps=20)
        np.testing.assert_allclose(np.asarray(res.params), np.asarray(single.params), rtol=1e-12)
        assert _on(mesh, res.params)


def test_fit_under_jit_in_explicit_mode_is_refused_by_name() -> None:
    """Under jax.jit, fit's gather cannot be placed on Explicit data: refused, naming the way out (it was
    JAX's sharding-type error); minimize under jax.jit in the same context runs (reference: one device)."""
    mesh = _mesh()
    sharded = jax.device_put(DATA, NamedSharding(mesh, P("data")))
    with pytest.raises(ValueError, match=r"data sharded over a mesh's Explicit axes .* Call fit outside jax.jit"):
        jax.jit(lambda d: jaxgd.fit(_loss, jnp.zeros(3), d, **KW).params)(sharded)
    with jax.set_mesh(mesh):
        with pytest.raises(ValueError, match=r"mesh= with a mesh of Explicit axes in context"):
            jax.jit(lambda lr: jaxgd.fit(_loss, jnp.zeros(3), DATA, mesh=mesh, **{**KW, "lr": lr}).params)(0.05)
        f = lambda w: _loss(w, DATA)  # noqa: E731
        got = jax.jit(lambda lr: jaxgd.minimize(f, jnp.zeros(3), method="adam", lr=lr, max_steps=20).params)(0.05)
    want = jaxgd.minimize(f, jnp.zeros(3), method="adam", lr=0.05, max_steps=20).params
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)


SCRIPT = r"""
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import jaxgd
assert jax.device_count() == 2, jax.devices()
X = np.random.default_rng(0).normal(size=(24, 3))
data = {"x": X, "y": X @ np.array([1.0, -1.0, 0.5])}
loss = lambda w, b: jnp.mean((b["x"] @ w - b["y"]) ** 2)
kw = dict(batch_size=4, epochs=2, key=jax.random.key(0), method="adam", lr=0.05, progress=False)
mesh = jax.make_mesh((2,), ("data",))
single = jaxgd.fit(loss, jnp.zeros(3), data, **kw)
with jax.set_mesh(mesh):
    inside = jaxgd.fit(loss, jnp.zeros(3), data, mesh=mesh, **kw)
alone = jaxgd.fit(loss, jnp.zeros(3), jax.device_put(data, NamedSharding(mesh, P("data"))), **kw)
for res in (inside, alone):
    assert res.params.sharding.mesh == mesh, res.params.sharding
    assert float(np.max(np.abs(np.asarray(res.params) - np.asarray(single.params)))) < 1e-12
print("ok")
"""


@pytest.mark.slow
def test_two_devices_explicit_mesh() -> None:
    """The first test's two cases on two host devices (a subprocess), against the one-device fit."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert out.stdout.startswith("ok")
