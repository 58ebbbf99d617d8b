"""Several hosts: ``fit`` and a full-batch ``minimize`` over two processes joined by
``jax.distributed.initialize`` equal one process.

Reference: the same calls in a single process on one device with the whole data
set and no mesh (``tests/multihost_check.py single``). The two workers talk over a
coordinator on 127.0.0.1 (loopback only) with CPU collectives over gloo; each holds
only its half of the rows (``jax.make_array_from_process_local_data``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(ROOT, "tests", "multihost_check.py")
TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device per process
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def _launch(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, HELPER, *args], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT)[0])
    finally:
        for p in procs:  # a worker left waiting for its peer must not outlive the test
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-4000:]
    return logs


@pytest.mark.slow  # 15-35 s: two coordinated processes (make slow, run by CI)
def test_two_processes_equal_one(tmp_path):
    ref_path, paths = str(tmp_path / "ref.npz"), [str(tmp_path / f"w{i}.npz") for i in range(2)]
    port = str(_free_port())
    _finish([_launch([ref_path, "single"])])
    _finish([_launch([paths[i], "worker", port, str(i)]) for i in range(2)])
    ref = np.load(ref_path)
    for path in paths:
        got = np.load(path)
        assert int(got["processes"]) == 2 and int(got["devices"]) == 2
        # Same number of steps and the same stopping reason as the single process...
        assert int(got["min_steps"]) == int(ref["min_steps"]) and int(got["min_status"]) == int(ref["min_status"])
        assert got["fit_loss"].shape == ref["fit_loss"].shape == (3,)
        # ...and the same numbers up to the order of the cross-process sums.
        for name in ref.files:
            if name in ("devices", "min_steps", "min_status"):
                continue
            np.testing.assert_allclose(got[name], ref[name], rtol=1e-10, atol=1e-12, err_msg=name)
    # Both processes see the same replicated parameters, bit for bit.
    w0, w1 = np.load(paths[0]), np.load(paths[1])
    for name in w0.files:
        assert w0[name].tobytes() == w1[name].tobytes(), name
