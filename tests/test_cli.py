"""End-to-end tests of the command line, run as a user would (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "jaxgd", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def check_demo_output(out: subprocess.CompletedProcess, folder: Path, names: tuple[str, ...]) -> None:
    assert out.returncode == 0, out.stderr[-3000:]
    png = folder / "loss_curves.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in out.stdout
    for col in ("problem", "method", "schedule", "steps", "final loss", "status"):
        assert col in out.stdout
    for name in names:
        assert name in out.stdout


def test_demo_quick_writes_table_png_and_progress(tmp_path):
    """One run of ``python -m jaxgd demo --quick``: the table and PNG on stdout's
    side, the progress bars on stderr."""
    out = run_cli("demo", "--out", str(tmp_path), "--quick")
    check_demo_output(out, tmp_path, ("quadratic_norm", "linear_regression", "gd", "adam"))
    assert "step" in out.stderr and "100%" in out.stderr


@pytest.mark.slow
def test_full_demo_with_real_data_sets(tmp_path):
    """The default demo (real data sets included), without progress bars."""
    out = run_cli("demo", "--out", str(tmp_path), "--no-progress")
    check_demo_output(out, tmp_path, ("quadratic_norm", "linear_regression", "gd", "adam"))
    assert "100%" not in out.stderr


def test_check_through_the_real_entry_point():
    """``python -m jaxgd check`` as a user runs it. Reference: each problem's
    hand-written NumPy gradient and central differences (see test_check_cmd.py)."""
    out = run_cli("check", "--points", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "all gradients agree" in out.stdout and "MISMATCH" not in out.stdout
    assert "jax~ref" in out.stdout and "jax~fd" in out.stdout


def test_check_exit_code_2_on_a_bad_option():
    out = run_cli("check", "--points", "0")
    assert out.returncode == 2 and "usage" in out.stderr


@pytest.mark.slow  # ~40 s of CPU (every benchmark, >= 5 repeats each): CI runs it via `make slow`
def test_benchmark_driver_smoke_run_on_tiny_sizes(tmp_path):
    """``python -m benchmarks.run`` end to end, every benchmark (A-F) in one process at
    toy sizes: the driver, each module's entry point and the table writer run."""
    cmd = [
        sys.executable, "-m", "benchmarks.run", "--quick", "--inline", "--d", "2", "--steps", "20", "--py-steps", "3",
        "--n", "100", "--runs", "4", "--seq-runs", "2", "--calls", "3", "--epochs", "1", "--budget", "1",
        "--repeats", "5", "--out", str(tmp_path),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for key in "ABCDEF":
        table = tmp_path / f"bench_{key}.md"
        assert table.exists() and "|" in table.read_text(), key


def test_unknown_command_fails_with_usage():
    out = run_cli("frobnicate")
    assert out.returncode != 0 and "usage" in out.stderr
