"""minimize with x0 sharded over several devices (4 CPU devices, in a subprocess: XLA_FLAGS is read at startup).

References: the single-device run's values, and x0's own sharding."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import json, os
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
jax.config.update("jax_enable_x64", True)
import jaxgd
from jaxgd.core import x0_check as M  # (the starting point's checks)
reduced = []
real = M._all_finite
M._all_finite = lambda a: reduced.append(1) or real(a)  # (the old code gathered to the host instead)
mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
rows = NamedSharding(mesh, P("data"))
rng = np.random.default_rng(0)
A, b = rng.standard_normal((64, 8)), rng.standard_normal(64)
loss = lambda w, A, b: jnp.sum((A @ w - b) ** 2) + 0.1 * jnp.sum(w ** 4)
x0 = jax.device_put(np.zeros(8), rows)
args = (jax.device_put(A, NamedSharding(mesh, P("data", None))), jax.device_put(b, rows))
first = jaxgd.minimize(loss, x0, args, method="lbfgs", tier="auto")
single = jaxgd.minimize(loss, np.zeros(8), (A, b), method="lbfgs", tier="compiled")
try:
    jaxgd.minimize(loss, jax.device_put(np.r_[np.nan, np.zeros(7)], rows), args, method="lbfgs")
    refused = None
except ValueError as err:
    refused = str(err)
second = jax.devices()[1]  # an x0 committed to a device other than the default: the host tier's answer came back on
on_second = jax.device_put(np.zeros(8), second)  # the default device (a user review, session 58)
placed = {tier: jaxgd.minimize(loss, on_second, (jax.device_put(A, second), jax.device_put(b, second)),
                               method="bfgs", tier=tier) for tier in ("host", "compiled")}
where = {tier: [sorted(d.id for d in v.devices()) for v in (r.params, r.state.grad)] for tier, r in placed.items()}
one = jax.make_mesh((1,), ("x",), axis_types=(jax.sharding.AxisType.Auto,))  # a NamedSharding of one device: the
named = jaxgd.minimize(loss, jax.device_put(np.zeros(8), NamedSharding(one, P("x"))), (A, b), method="bfgs",
                       tier="host")  # result's scalars could not take it (a review, session 58)
where["named"] = named.status_enum.name
print(json.dumps({"where": where, "same_sharding": first.params.sharding == x0.sharding,
                  "err": float(np.max(np.abs(np.asarray(first.params) - np.asarray(single.params)))),
                  "status": first.status_enum.name, "refused": refused, "reduced": len(reduced)}))
"""


@pytest.mark.slow
def test_a_sharded_x0_keeps_its_sharding_on_the_first_call_and_is_checked_where_it_lives():
    """An x0 committed to a second device comes back there from the host tier, as from the compiled loop.
    tier="auto" ran a sharded x0's first calls on the host tier, which handed the result back on one device
    (a later resume with the sharded data failed on incompatible devices); the finiteness check gathered the whole
    x0 to the host, which an array spread over several processes cannot do (a user review in session 57)."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["same_sharding"] and res["status"] == "GTOL" and res["err"] < 1e-10, res
    assert res["refused"] is not None and "contains NaN or Inf" in res["refused"] and res["reduced"] >= 2, res
    assert res["where"]["host"] == res["where"]["compiled"] == [[1], [1]], res["where"]  # (the compiled run: x0's device)
    assert res["where"]["named"] == "GTOL", res["where"]
