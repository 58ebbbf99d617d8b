"""Subprocess helper for tests/test_fit.py: data-parallel fit equals the one-device fit.

Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set by the
test) so that the CPU backend exposes four devices. Prints one summary line
and exits non-zero on a mismatch. The reference is the same ``fit`` call
without a mesh; for the resumed sharded run, the uninterrupted sharded run.
"""

import atexit
import glob
import os
import shutil
import sys
import tempfile

if len(sys.argv) > 1:
    _WORK = sys.argv[1]
else:
    _WORK = tempfile.mkdtemp(prefix="jaxgd_sharded_")
    atexit.register(shutil.rmtree, _WORK, ignore_errors=True)
# Dump the optimised HLO so that the check can see XLA's all-reduce.
_DUMP = os.path.join(_WORK, "hlo")
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={_DUMP} --xla_dump_hlo_as_text --xla_dump_hlo_module_re=.*jit_run.*"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxgd.minibatch.fit import Remainder, fit  # noqa: E402


def loss(p, batch, w):
    r = jnp.tanh(batch["x"] @ p["w1"]) @ p["w2"] - batch["y"]
    return jnp.sum(w * r**2) / jnp.sum(w)


def main() -> int:
    devices = jax.devices()
    rng = np.random.default_rng(0)
    n, d, h = 202, 5, 8
    x = rng.normal(size=(n, d))
    data = {"x": x, "y": np.sin(x[:, 0]) + 0.1 * rng.normal(size=n)}
    params = {"w1": jnp.asarray(rng.normal(size=(d, h)) / np.sqrt(d)), "w2": jnp.asarray(rng.normal(size=(h,)) / np.sqrt(h))}
    kw = dict(batch_size=32, epochs=3, key=jax.random.key(3), method="adam", lr=1e-2,
              remainder=Remainder.MASK, progress=False)
    mesh = jax.make_mesh((len(devices),), ("data",))
    single = fit(loss, params, data, **kw)
    sharded = fit(loss, params, data, mesh=mesh, **kw)
    err = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(sharded))
        if np.issubdtype(np.asarray(a).dtype, np.floating)
    )
    replicated = all(v.sharding.is_fully_replicated for v in jax.tree_util.tree_leaves(sharded.params))
    # Checkpointed every epoch, killed after the first and resumed from the file: bit for bit.
    path = os.path.join(_WORK, "fit.ckpt")
    fit(loss, params, data, mesh=mesh, checkpoint_path=path, **{**kw, "epochs": 1})
    resumed = fit(loss, params, data, mesh=mesh, resume=path, checkpoint_every=1, checkpoint_path=path, **kw)
    same = all(
        np.asarray(a).tobytes() == np.asarray(b).tobytes()
        for a, b in zip(jax.tree_util.tree_leaves(sharded), jax.tree_util.tree_leaves(resumed))
    )
    # The compiled run must contain XLA's gradient all-reduce (the batch really is split).
    dumps = glob.glob(os.path.join(_DUMP, "*jit_run*after_optimizations.txt"))
    all_reduce = any("all-reduce" in open(f).read() for f in dumps)
    print(f"devices={len(devices)} max_abs_err={err:.3e} replicated={replicated} all-reduce={all_reduce} resumed-bitwise={same}")
    return 0 if (len(devices) == 4 and err < 1e-10 and replicated and all_reduce and same) else 1


if __name__ == "__main__":
    sys.exit(main())
