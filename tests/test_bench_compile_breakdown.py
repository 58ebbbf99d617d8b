"""Benchmark I's breakdown of the fused loop's XLA compile (``benchmarks.first_call.compile_breakdown``).

Reference: sums worked out by hand on a small synthetic trace (the events XLA:CPU writes during a
compile: the compile's span, its pass pipelines, LLVM's codegen, kernels through the fusion
emitters on two threads), including events that must not count (another, shorter compile; events
outside the span; instant events). Then one real trace: a program compiled under
``jax.profiler.trace`` has a compile span whose parts lie inside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import first_call as I  # noqa: E402


def ev(name: str, ts: float, dur: float, tid: int = 1, ph: str = "X") -> dict:
    return {"name": name, "ts": ts, "dur": dur, "tid": tid, "pid": 1, "ph": ph}


def test_breakdown_sums_the_parts_inside_the_longest_compile() -> None:
    events = [
        ev(I.COMPILE_EVENT, 0, 100_000),  # a small program's compile first: not the loop's
        ev(I.HLO_PASSES + " through layout assignment (small)", 10, 5_000),
        ev(I.COMPILE_EVENT, 200_000, 1_000_000),  # the fused loop: 1 s
        ev(I.HLO_PASSES + " through layout assignment (jit_run_flat)", 200_100, 90_000),
        ev(I.HLO_PASSES + " after layout assignment (jit_run_flat)", 290_200, 40_000),
        ev("simplification", 200_200, 30_000),  # inside a pipeline: not counted again
        ev(I.FUSION, 400_000, 10_000, tid=2),
        ev(I.FUSION, 400_000, 12_000, tid=3),  # the other thread, at the same time
        ev(I.FUSION, 420_000, 9_000, tid=2),
        ev(I.CODEGEN, 500_000, 600_000),
        ev(I.FUSION, 1_300_000, 9_000, tid=2),  # after the span: another program's
        ev(I.FUSION, 700_000, 0, ph="i"),  # an instant event: not a complete one
    ]
    out = I.compile_breakdown(events)
    assert out["compile"] == pytest.approx(1.0)
    assert out["hlo_passes"] == pytest.approx(0.130)  # 90 + 40 ms
    assert out["codegen"] == pytest.approx(0.600)
    assert out["kernels"] == 3
    assert out["kernels_s"] == pytest.approx(0.031)  # 10 + 12 + 9 ms, summed over threads


def test_breakdown_without_a_compile_event_is_all_zero() -> None:
    out = I.compile_breakdown([ev(I.FUSION, 0, 5_000), ev("backend_compile_and_load", 0, 10_000)])
    assert out == {"compile": 0.0, "hlo_passes": 0.0, "codegen": 0.0, "kernels": 0, "kernels_s": 0.0}


def test_breakdown_of_a_real_compile_under_the_profiler(tmp_path: Path) -> None:
    """A real trace from this jaxlib: a compile span with the pass pipelines and the module's codegen
    inside it (the names this module looks for are the ones XLA:CPU writes)."""

    def loop(x: jax.Array) -> jax.Array:
        return jax.lax.fori_loop(0, 10, lambda i, y: jnp.sin(y) * 1.5 + y / (i + 1.0), x)

    with jax.profiler.trace(str(tmp_path)):
        jax.jit(loop).lower(jnp.ones(7)).compile()
    out = I.compile_breakdown(I._trace_events(str(tmp_path)))
    assert out["compile"] > 0
    assert 0 < out["hlo_passes"] < out["compile"]
    assert 0 < out["codegen"] < out["compile"]
