"""The benchmark runner's verdict (``python -m benchmarks --strict``): exit 1 when a target is missed or a benchmark
fails. Reference: the runner's documented contract (``--help``): a benchmark that raises, or whose process dies, is a
failure, not a skip; a benchmark skipped for something it needs (sif2jax, scikit-learn) is not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _util as U  # noqa: E402
from benchmarks import run as R  # noqa: E402


def test_summary_counts_a_failed_benchmark_as_missed_and_a_skipped_one_not() -> None:
    met = U.Report(key="A", title="a", columns=["x"], targets=[U.Target("fast", True)])
    missing = U.skipped("G", "g", "sif2jax is not installed")
    text, ok = R.summarize([met.summary(), missing.summary()])
    assert ok and "skipped (sif2jax is not installed)" in text
    failed = U.skipped("C", "c", "failed with ValueError: no", failed=True)
    text, ok = R.summarize([met.summary(), failed.summary()])
    assert not ok and "**FAILED** (failed with ValueError: no)" in text
    assert "FAILED: failed with ValueError" in failed.markdown()


@pytest.mark.slow
def test_strict_exits_1_when_a_benchmark_raises(capsys) -> None:
    """Benchmark C at an odd size (extended Rosenbrock needs an even one) raises: ``--strict`` exits 1 (it exited 0,
    the benchmark listed as skipped); without ``--strict`` the run still exits 0."""
    assert R.main(["--only", "C", "--d", "3", "--inline", "--strict"]) == 1
    assert "**FAILED**" in capsys.readouterr().out
    assert R.main(["--only", "C", "--d", "3", "--inline"]) == 0
