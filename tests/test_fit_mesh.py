"""``fit(mesh=, data_axis=)`` on two host devices (a subprocess: the device count is
fixed when JAX starts): a batch the mesh axis does not divide is refused before
anything compiles, with the message naming ``batch_size``, the axis and its size;
and a mesh whose data axis has another name than "data" (a 2-D mesh, the batch
split along ``data_axis="batch"``) gives the one-device result (the reference).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np
import jaxgd
from jaxgd.minibatch import fit as _fit

assert jax.device_count() == 2, jax.devices()
compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda e, d, **k: compiles.append(e) if e == "/jax/core/compile/backend_compile_duration" else None)
rng = np.random.default_rng(0)
X = rng.normal(size=(24, 3))
data = {"x": X, "y": X @ np.array([1.0, -1.0, 0.5])}
fun = lambda w, b: jnp.mean((b["x"] @ w - b["y"]) ** 2)
kw = dict(epochs=2, key=jax.random.key(0), method="adam", lr=0.05, progress=False)
mesh = jax.make_mesh((1, 2), ("model", "batch"))
x0 = jnp.zeros(3)
jax.clear_caches(); compiles.clear()
try:
    jaxgd.fit(fun, x0, data, batch_size=3, mesh=mesh, data_axis="batch", **kw)
    raise SystemExit("no error for batch_size=3 on a 2-device axis")
except ValueError as err:
    assert str(err) == _fit.MESH_DIVIDE.format(size=2, axis="batch", batch_size=3), str(err)
    assert "batch_size" in str(err)
assert compiles == [], compiles
single = jaxgd.fit(fun, jnp.zeros(3), data, batch_size=4, **kw)
split = jaxgd.fit(fun, jnp.zeros(3), data, batch_size=4, mesh=mesh, data_axis="batch", **kw)
err = float(np.max(np.abs(np.asarray(single.params) - np.asarray(split.params))))
assert err < 1e-12, err
np.testing.assert_allclose(np.asarray(split.history.train_loss), np.asarray(single.history.train_loss), rtol=1e-12)
print("ok", err)
"""


@pytest.mark.slow
def test_mesh_divisibility_error_and_a_non_default_data_axis():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert out.stdout.startswith("ok")
