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


def test_demo_writes_table_and_png(tmp_path):
    out = run_cli("demo", "--out", str(tmp_path), "--no-progress")
    assert out.returncode == 0, out.stderr[-3000:]
    png = tmp_path / "loss_curves.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in out.stdout
    for col in ("problem", "method", "schedule", "steps", "final loss", "status"):
        assert col in out.stdout
    for name in ("quadratic_norm", "linear_regression", "gd", "adam"):
        assert name in out.stdout


def test_demo_progress_bar_goes_to_stderr(tmp_path):
    out = run_cli("demo", "--out", str(tmp_path), "--quick")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "step" in out.stderr and "100%" in out.stderr


def test_unknown_command_fails_with_usage():
    out = run_cli("frobnicate")
    assert out.returncode != 0 and "usage" in out.stderr
