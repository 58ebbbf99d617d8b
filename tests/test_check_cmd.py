"""Tests of the ``jaxgd check`` subcommand (jaxgd/cli/check.py).

Independent references, named in each test: the closed-form derivatives of the
source article's two losses (``4x(x·x − 10)`` and ``−2x(y − x·θ)``), against
which the article's own formulas must fail; and each problem's hand-written
NumPy gradient, checked by ``main([])``.
"""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from jaxgd.cli import check as _check_cmd
from jaxgd import problems as P


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = _check_cmd.main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def default_run() -> tuple[int, str]:
    return _run([])


@pytest.fixture(scope="module")
def article_run() -> tuple[int, str]:
    return _run(["--article"])


def _table_rows(text: str) -> list[list[str]]:
    return [line.split("  ") for line in text.splitlines()]


def test_default_run_passes_every_problem(default_run):
    """Reference: each problem's hand-written NumPy gradient and float64 central differences."""
    code, out = default_run
    assert code == 0
    assert "all gradients agree" in out and "MISMATCH" not in out
    for name in P.PROBLEM_NAMES:
        rows = [line for line in out.splitlines() if line.startswith(name + " ")]
        assert {line.split()[1] for line in rows} == {"jax~ref", "jax~fd", "ref~fd"}, name
        assert all(line.rstrip().endswith("PASS") for line in rows), rows
    assert "FAIL" not in out


def test_article_formulas_fail_and_corrections_pass(article_run):
    """Reference: the correct derivatives 4x(x·x − 10) and −2x(y − x·θ); the article's
    2·(x·x) and 2(x − y·xᵀ) must FAIL beside them, and the exit status is then 0."""
    code, out = article_run
    assert code == 0
    assert "as expected: the article's formulas FAIL, the corrected ones PASS" in out
    section = out[out.index("The article's hand-written gradients") :]
    verdicts = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        if len(cells) == len(_check_cmd.ARTICLE_HEADERS) and cells[2] in ("article", "correct"):
            verdicts[cells[1]] = (cells[2], cells[-2], cells[-1])
    assert verdicts == {
        "2*(x.x)": ("article", "FAIL", "FAIL"),
        "4x(x.x - 10)": ("correct", "PASS", "PASS"),
        "2(x - y*x^T)": ("article", "FAIL", "FAIL"),
        "-2x(y - x.theta)": ("correct", "PASS", "PASS"),
    }
    # the built-in problems are still checked and pass
    assert "all gradients agree" in out


def test_article_exit_code_when_expectation_breaks(monkeypatch):
    """Reference: the documented --article exit policy: a 'correct' formula that fails
    (here the article's 2·(x·x) relabelled as correct) makes the exit status 1."""
    cases = _check_cmd._article_cases()
    monkeypatch.setattr(_check_cmd, "_article_cases", lambda: [cases[0]._replace(expect_pass=True)])
    code, out = _run(["--article", "--problem", "rosenbrock", "--points", "1"])
    assert code == 1 and "UNEXPECTED" in out


def test_mismatch_gives_nonzero_exit(monkeypatch):
    """Reference: a problem whose hand-written gradient is wrong by 1e-3 (relative) must fail."""
    real = P.all_problems

    def broken(seed=0, *, dtype=None):
        out = []
        for p in real(seed, dtype=dtype):
            if p.name == "rosenbrock":
                grad = p.np_grad
                p = p._replace(np_grad=lambda x, _g=grad: 1.001 * _g(x))
            out.append(p)
        return out

    monkeypatch.setattr(P, "all_problems", broken)
    code, out = _run(["--problem", "rosenbrock", "--points", "2"])
    assert code == 1
    assert "MISMATCH" in out
    rows = [line for line in out.splitlines() if line.startswith("rosenbrock ")]
    assert {line.split()[1]: line.rstrip().split()[-1] for line in rows} == {
        "jax~ref": "FAIL",
        "jax~fd": "PASS",
        "ref~fd": "FAIL",
    }


def test_options_directions_dtype_verbose():
    """Reference: the quadratic's hand-written gradient, in float32, along random directions."""
    code, out = _run(["--problem", "quadratic_norm", "--dtype", "float32", "--directions", "3", "--points", "2", "-v"])
    assert code == 0
    assert "parameters in float32" in out and "3 random directions per leaf" in out
    assert "quadratic_norm, point 1: gradient check: PASS" in out


def test_dispatcher_stand_in():
    """Reference: argparse subcommands, as the CLI dispatcher (jaxgd/cli/main.py) will use them."""
    parser = argparse.ArgumentParser(prog="jaxgd")
    sub = parser.add_subparsers(dest="command", required=True)
    _check_cmd.add_arguments(sub.add_parser("check"))
    args = parser.parse_args(["check", "--problem", "rosenbrock", "--points", "1"])
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert _check_cmd.run(args) == 0
    assert "rosenbrock" in out.getvalue()
    help_text = sub.choices["check"].format_help()
    assert "--article" in help_text and "the exit status is 0 when every built-in problem passes" in " ".join(help_text.split())


@pytest.mark.parametrize("argv", [["--points", "0"], ["--problem", "nope"], ["--dtype", "float16"], ["--seed", "-1"],
                                  ["--points", "1.5"]])
def test_bad_options_exit_2(argv):
    """Reference: argparse's usage-error convention (exit status 2; 1 means a check failed): a negative seed
    ended in numpy's traceback with status 1 (a user review, session 53), and the message names the value,
    not a function of ours."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        _check_cmd.main(argv)
    assert info.value.code == 2
    assert f"argument {argv[0]}" in err.getvalue() and "_positive_int" not in err.getvalue(), err.getvalue()
