"""Smoke test of benchmark J (benchmarks/small_loops.py): its one-kernel test and its table.

The benchmark itself runs in ``make bench`` (``python -m benchmarks --only J``).
References: XLA's own optimized HLO (a loop of a few bytes a step is compiled into
one kernel, one over a 16 KiB vector is not, at XLA's default threshold of 1,024
bytes), jaxgd's eager program for the same solve, and hand-written records (the
table's ratios).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import small_loops as J  # noqa: E402


def _loop(x):
    return lax.fori_loop(0, 100, lambda i, v: v * 0.5 + 1.0, x)


@pytest.mark.parametrize("size, expected", [(2, True), (4096, False)])
def test_one_kernel_reads_the_compiled_program(size, expected):
    """XLA's default threshold (1,024 bytes a step): 8 bytes a step are one kernel, 16 KiB are not."""
    assert J._one_kernel(_loop, jnp.zeros(size, jnp.float32)) is expected


def test_jaxgd_program_at_two_parameters_is_one_kernel():
    """The program minimize runs for GD on 2-D Rosenbrock (history off) is one kernel; at 100-D it is not."""
    from benchmarks import _util as U

    for d, expected in ((2, True), (100, False)):
        x0 = jnp.asarray(U.rosenbrock_start(d, np.float32))
        assert J._jaxgd_one_kernel(U.rosenbrock, x0, 64, history=False) is expected


def test_jaxgd_program_with_history_at_seven_parameters_is_one_kernel():
    """GD on 7-D float32 Rosenbrock with history on (the default) is one kernel: the step tests the
    new point's norm and finiteness without a branch (a ``lax.cond`` there took 128 of the loop's
    1,024 bytes, and this program was over the threshold; benchmarks/RESULTS.md, session 26)."""
    from benchmarks import _util as U

    x0 = jnp.asarray(U.rosenbrock_start(7, np.float32))
    assert J._jaxgd_one_kernel(U.rosenbrock, x0, 64, history=True)


def test_table_ratios_and_marks():
    here = [{"case": "rosenbrock", "d": 9, "contender": c, "ns": ns, "one_kernel": k}
            for c, ns, k in zip(J.CONTENDERS, (300.0, 250.0, 50.0, 20.0), (False, False, True, True))]
    raised = [dict(r, ns=r["ns"] / 5, one_kernel=True) for r in here]
    (row,) = J.table(here, raised)
    assert row[:2] == ["rosenbrock", "9"]
    assert row[2:6] == ["300", "250", "50 (1k)", "20 (1k)"]
    assert row[6] == "6×"  # 300 / 50
    assert row[7:9] == ["60 (1k)", "10 (1k)"]
    assert row[9] == "6×"
    (row,) = J.table(here, None)  # the child failed: its columns say so
    assert row[7:] == ["n/a", "n/a", "n/a"]
