"""What an installed wheel offers works, and the repository points nowhere outside itself.

The slow test builds a non-editable install of this checkout into a temporary
folder (``pip install --no-deps --target``; pip builds the wheel), then runs
the installed ``jaxgd`` script from another folder: ``--help`` for the
command and every sub-command, and ``jaxgd check`` (every built-in gradient,
JAX vs NumPy vs finite differences). The benchmark suite is not part of the
wheel: it runs from the checkout (``make bench``, ``python -m benchmarks``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jaxgd.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent


def _subcommands() -> list[str]:
    """The sub-commands ``jaxgd --help`` lists (argparse's ``{a,b}``)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli_main.main(["--help"])
    return re.search(r"\{([\w,]+)\}", out.getvalue()).group(1).split(",")


def test_the_cli_offers_demo_check_and_cache_only():
    assert _subcommands() == ["demo", "check", "cache"]


@pytest.mark.parametrize("command", [[], ["demo"], ["check"], ["cache"]], ids=lambda c: " ".join(c) or "jaxgd")
def test_every_subcommand_answers_help(command):
    assert not command or command[0] in _subcommands()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        cli_main.main([*command, "--help"])
    assert exit_.value.code == 0 and out.getvalue().startswith("usage: jaxgd")


def test_bench_is_not_a_command_of_the_installed_cli():
    with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as exit_:
        cli_main.main(["bench"])
    assert exit_.value.code == 2 and "invalid choice: 'bench'" in err.getvalue()


def test_benchmarks_run_as_a_module_from_the_checkout():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("usage: python -m benchmarks") and "--only" in out.stdout


def _text_files() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in tracked if f.endswith((".md", ".py", ".toml", ".cfg", ".txt", ".sh", ".yml", ".yaml")) or f == "Makefile"]


def test_nothing_in_the_repository_points_outside_it():
    # A path that climbs out of the checkout (README once sent readers to a design page one folder up).
    bad = [(p.relative_to(ROOT), m.group(0)) for p in _text_files() if p.exists()
           for m in re.finditer(r"\.\./(?:\.\./)*shared/[\w./-]*|/work/\w+", p.read_text(errors="replace"))]
    assert bad == []


def test_readme_links_resolve_inside_the_repository():
    text = (ROOT / "README.md").read_text()
    links = [t for t in re.findall(r"\]\(([^)#\s]+)\)", text) if not re.match(r"[a-z]+:", t)]
    assert links, "README has no relative links"
    outside = [t for t in links if not (ROOT / t).resolve().is_relative_to(ROOT)]
    assert outside == []


@pytest.mark.slow
def test_installed_wheel_offers_only_working_commands(tmp_path):
    """Non-editable install into a temporary folder; every command runs from another folder (about 40 s)."""
    src, target, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    for name in ("jaxgd", "pyproject.toml", "README.md"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    elsewhere.mkdir()
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-3000:]
    script = target / "bin" / "jaxgd"
    assert script.exists() and not (target / "benchmarks").exists()
    env = dict(os.environ, PYTHONPATH=str(target), OPENBLAS_NUM_THREADS="1", JAXGD_CACHE_DIR=str(tmp_path / "cc"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)

    where = subprocess.run([sys.executable, "-c", "import jaxgd; print(jaxgd.__file__)"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr
    top = run("--help")
    assert top.returncode == 0, top.stderr[-2000:]
    commands = re.search(r"\{([\w,]+)\}", top.stdout).group(1).split(",")
    assert commands == ["demo", "check", "cache"]
    for command in commands:
        out = run(command, "--help")
        assert out.returncode == 0 and out.stdout.startswith(f"usage: jaxgd {command}"), out.stderr[-2000:]
    check = run("check")
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert "all gradients agree" in check.stdout
    assert run("bench").returncode == 2  # not offered: argparse rejects it
