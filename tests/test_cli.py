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


@pytest.mark.slow
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


def test_demo_real_rows_without_scikit_learn(monkeypatch):
    """Without scikit-learn (the test extra; jaxgd demo runs from an installed wheel) every real-data row prints
    as skipped: real_rows read the skipped rows' method, schedule and time and raised KeyError: 'method' after
    every synthetic fit had run (a review in session 59). Reference: demo_real.PROBLEMS, one skipped row each."""
    monkeypatch.setitem(sys.modules, "sklearn", None)
    from jaxgd.cli import demo, demo_real

    rows, curves = demo.real_rows(False)
    assert curves == {} and demo.format_references(rows) == ""
    body = demo.format_table(rows).splitlines()[2:]
    assert len(body) == len(demo_real.PROBLEMS)
    for line, name in zip(body, demo_real.PROBLEMS):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == name and cells[-1] == "skipped (pip install scikit-learn)" and set(cells[1:-1]) == {"-"}


def test_demo_out_under_a_file_stops_before_running(tmp_path, capsys):
    """`jaxgd demo --out FILE/sub` stops while parsing, as `--out FILE` does (tests/test_compile_cache.py);
    it ran every fit, then raised NotADirectoryError. Reference: the file made here."""
    from jaxgd.cli.main import main

    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--quick", "--no-compile-cache", "--out", str(afile / "sub")])
    assert stop.value.code == 2
    assert f"argument --out: must name a folder, but {str(afile)!r}, above it, is a file" in capsys.readouterr().err


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
    """``python -m benchmarks.run`` end to end, every benchmark (A-F, L) in one process at
    toy sizes: the driver, each module's entry point and the table writer run."""
    cmd = [
        sys.executable, "-m", "benchmarks.run", "--quick", "--inline", "--d", "2", "--steps", "20", "--py-steps", "3",
        "--n", "100", "--runs", "4", "--seq-runs", "2", "--calls", "3", "--epochs", "1", "--budget", "1",
        "--repeats", "5", "--out", str(tmp_path),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for key in "ABCDEFL":
        table = tmp_path / f"bench_{key}.md"
        assert table.exists() and "|" in table.read_text(), key


def test_unknown_command_fails_with_usage():
    out = run_cli("frobnicate")
    assert out.returncode != 0 and "usage" in out.stderr


@pytest.mark.slow  # ~19 s of fresh processes (make slow, run by CI)
def test_first_call_benchmark_smoke_run(tmp_path):
    """Benchmark I (``python -m benchmarks --only I``) at its smallest: lbfgs,
    10-D, float64, one fresh process per measurement. Checks the three tables'
    rows and that every number in them is finite; the timings themselves are
    the benchmark's business, not this test's."""
    import math
    import re

    cmd = [sys.executable, "-m", "benchmarks", "--only", "I", "--quick", "--methods", "lbfgs", "--d", "10",
           "--dtypes", "float64", "--procs", "1", "--out", str(tmp_path)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    text = (tmp_path / "bench_I.md").read_text()
    tables = [[line.split(" | ") for line in block.splitlines() if line.startswith("| ")]
              for block in text.split("### ")[1:]]
    assert len(tables) == 3, text
    for table in tables:
        head, *rows = table
        assert len(rows) == 1 and rows[0][0] == "| lbfgs" and rows[0][1:3] == ["10", "float64"], text
        assert len(rows[0]) == len(head)
    number = re.compile(r"(-?[\d.,]+(?:e[-+]\d+)?)(?: (?:s|ms|µs|ns)|×|%)?(?: \([\d,]+(?:, [A-Z_/]+)?\))?( \|)?")
    checked = 0
    for head, row in tables:
        for name, cell in zip(head, row):
            if name.strip("| ") in ("method", "dtype", "scipy", "same answer"):
                continue
            if name.strip("| ") == "their compile, summed over threads":  # 10-D: no kernel through the fusion emitters
                assert cell.strip("| ") == "—", cell
                continue
            m = number.fullmatch(cell)
            assert m and math.isfinite(float(m.group(1).replace(",", ""))), (name, cell)
            checked += 1
    # every column but method, dtype, scipy and same answer (optax's loop's compile included)
    assert checked == 17 + 10 + 11
    first, where, vs = (dict(zip((c.strip("| ") for c in h), (c.strip("| ") for c in r))) for h, r in tables)
    assert int(first["stablehlo ops"].replace(",", "")) > 100 and int(first["cache hits"]) >= 1
    # 10-D lbfgs: XLA's classic emitters compile it all (jaxgd.core.compile); the parts lie within the compile
    assert where["kernels through the fusion emitters"] == "0"
    ms = lambda cell: float(cell.split()[0]) * {"s": 1e3, "ms": 1.0, "µs": 1e-3}[cell.split()[1]]  # noqa: E731
    assert 0 < ms(where["HLO passes"]) < ms(where["XLA compile (profiled)"])
    assert 0 < ms(where["LLVM codegen (module)"]) < ms(where["XLA compile (profiled)"])
    assert vs["scipy"] == "L-BFGS-B" and vs["same answer"] == "yes"
    # minimize's default tier answers a one-off lbfgs solve on the host: it compiles value_and_grad only
    host_ms, fused = vs["jaxgd first call (default: host tier)"], vs["fused loop: first call"]
    assert vs["its XLA compile"] != first["fused-loop compile"] and host_ms != fused
    summary = out.stdout.split("## Summary")[1]
    assert summary.count("- I (") == 2 and "not measured" not in summary
