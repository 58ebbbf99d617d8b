"""Subprocess helper for tests/test_multihost.py: ``fit`` and ``minimize`` over two processes.

``python tests/multihost_check.py OUT.npz single`` runs the reference: one
process, one device, the whole data set, no mesh.

``python tests/multihost_check.py OUT.npz worker PORT PROCESS_ID`` is one of
two processes joined by ``jax.distributed.initialize`` over a coordinator on
``127.0.0.1:PORT`` (loopback only). Each process has one CPU device and holds
only its half of the rows; ``jax.make_array_from_process_local_data`` makes
the global, row-sharded arrays that ``fit`` (``mesh=``) and a full-batch
``minimize`` consume. CPU collectives go over gloo. Every process writes the
parameters it sees (they are replicated) to ``OUT.npz``; the test compares
them with the reference.
"""

import sys

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

N, D, H = 64, 4, 6  # rows divide evenly over two processes and over the batch


def loss_fit(p, batch):
    r = jnp.tanh(batch["x"] @ p["w1"]) @ p["w2"] - batch["y"]
    return jnp.mean(r**2)


def loss_min(w, x, y):
    """Full-batch least squares with a small ridge: a sum over the sharded rows."""
    return jnp.mean((x @ w - y) ** 2) + 1e-3 * jnp.sum(w**2)


def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D))
    y = np.sin(x[:, 0]) + 0.1 * rng.normal(size=N)
    params = {"w1": rng.normal(size=(D, H)) / np.sqrt(D), "w2": rng.normal(size=(H,)) / np.sqrt(H)}
    return {"x": x, "y": y}, params


def run(data, params, mesh):
    import jaxgd

    fitted = jaxgd.fit(loss_fit, params, data, batch_size=16, epochs=3, key=jax.random.key(1),
                       method="adam", lr=1e-2, mesh=mesh, progress=False)
    res = jaxgd.minimize(loss_min, np.zeros(D), (data["x"], data["y"]), method="lbfgs", max_steps=50, progress=False)
    out = {f"fit_{k}": np.asarray(v) for k, v in fitted.params.items()}
    out.update(fit_loss=np.asarray(fitted.history.train_loss), min_params=np.asarray(res.params),
               min_loss=np.asarray(res.loss), min_steps=np.asarray(res.steps), min_status=np.asarray(res.status))
    return out, fitted


def main() -> int:
    out_path, mode = sys.argv[1], sys.argv[2]
    data, params = problem()
    if mode == "single":
        np.savez(out_path, devices=1, **run(data, params, None)[0])
        return 0
    port, pid = int(sys.argv[3]), int(sys.argv[4])
    # gloo is jax 0.10's default for CPU collectives (it accepts "gloo", "mpi", "megascale"); said
    # explicitly so that a later default cannot turn this into a test of something else.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=60)
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    assert jax.process_count() == 2 and jax.device_count() == 2 and jax.local_device_count() == 1
    # Auto axes: XLA's sharding propagation places the reductions over the rows. (With the
    # Explicit axes that jax.make_mesh gives by default, `x @ w` over sharded rows is refused
    # as ambiguous unless the loss names an out_sharding.)
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
    rows = NamedSharding(mesh, P("data"))
    half = slice(pid * N // 2, (pid + 1) * N // 2)
    # Only this process's rows ever reach jax: the global arrays are assembled from halves.
    local = {k: v[half] for k, v in data.items()}
    sharded = {k: jax.make_array_from_process_local_data(rows, v, (N,) + v.shape[1:]) for k, v in local.items()}
    assert not sharded["x"].is_fully_addressable
    assert sharded["x"].addressable_shards[0].data.shape == (N // 2, D)
    result, fitted = run(sharded, params, mesh)
    # The parameters come back on both processes' devices, replicated.
    leaves = jax.tree_util.tree_leaves(fitted.params)
    assert all(len(v.sharding.device_set) == 2 and v.sharding.is_fully_replicated for v in leaves)
    np.savez(out_path, devices=jax.device_count(), processes=jax.process_count(), **result)
    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
