"""Smoke test of the CUTEst benchmark module (benchmarks/cutest*.py) on 3 problems.

The full suite is benchmark G of ``make bench``, not part of ``make test``.
References: the closed-form Rosenbrock function (problem loading), scipy's
L-BFGS-B (the solves), a ``custom_vjp`` counter of forward passes (the
evaluation counts), hand-computed performance ratios (the profile maths).
Skips when sif2jax is not installed.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(importlib.util.find_spec("sif2jax") is None, reason="sif2jax is not installed")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def test_load_one_problem_without_importing_the_package():
    from benchmarks import cutest_problems as P

    had = "sif2jax" in sys.modules
    cat = P.catalogue("unconstrained")
    assert len(cat) > 150 and cat["ROSENBR"] == "rosenbr"
    assert len(P.catalogue("bounded")) > 60
    p = P.load("unconstrained", "ROSENBR")
    assert p.n == 2
    if not had:  # the stand-in packages are gone again; the heavy __init__ never ran
        assert "sif2jax" not in sys.modules and "sif2jax.cutest" not in sys.modules
    import jax

    with jax.enable_x64(True):
        x0 = p.x0()
        assert x0.dtype == np.float64
        y = np.array([-1.2, 1.0])
        closed_form = 100 * (y[1] - y[0] ** 2) ** 2 + (1 - y[0]) ** 2  # 24.2
        assert float(p.objective()(x0)) == pytest.approx(closed_form, rel=1e-15)
    with pytest.raises(KeyError, match="NOPROBLEM"):
        P.load("unconstrained", "NOPROBLEM")


def test_solved_rule_and_performance_ratios():
    from benchmarks import cutest_report as R

    def rec(f, nfev):
        return {"f": f, "nfev": nfev, "run_s": 1.0, "first_s": 1.0, "status": "-", "n": 2, "iters": 1}

    table = {
        "A": {"a": rec(0.0, 10), "b": rec(5e-9, 20), "c": rec(2e-8, 5)},  # floor: 1e-6 * 1e-2 = 1e-8
        "B": {"a": rec(100.0, 40), "b": rec(100.0 + 5e-5, 10), "c": rec(math.nan, 1)},  # relative 1e-6: 1e-4
    }
    R.mark_solved(table)
    assert [table["A"][s]["solved"] for s in "abc"] == [True, True, False]
    assert [table["B"][s]["solved"] for s in "abc"] == [True, True, False]
    r = R.ratios(table, ["a", "b", "c"], "nfev")
    np.testing.assert_array_equal(r, [[1.0, 2.0, np.inf], [4.0, 1.0, np.inf]])
    np.testing.assert_array_equal(R.rho(r, 1.0, 2), [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(R.rho(r, 4.0, 2), [1.0, 1.0, 0.0])


def rec(f: float, status: str) -> dict:
    """A record with final value ``f`` and ``status`` (the rest fixed)."""
    return {"f": f, "nfev": 10, "run_s": 1.0, "first_s": 1.0, "status": status, "n": 3, "iters": 1}


def test_failures_say_where_the_reference_did_not_converge():
    """A problem that scipy "solves" by the final-value rule while stopping at its iteration limit
    (status 1) is listed as a jaxgd failure, marked; one where scipy converged (status 0) is not marked."""
    from benchmarks import cutest_report as R

    table = {
        "LIMIT": {"jaxgd lbfgs": rec(785.0, "MAX_STEPS"), "scipy L-BFGS-B": rec(784.6, "1")},
        "LOCAL": {"jaxgd lbfgs": rec(1.106, "GTOL"), "scipy L-BFGS-B": rec(1.022, "0")},
        "BOTH": {"jaxgd lbfgs": rec(0.0, "GTOL"), "scipy L-BFGS-B": rec(0.0, "0")},
    }
    R.mark_solved(table)
    (line,) = R.failures(table, {"jaxgd lbfgs": "scipy L-BFGS-B", "scipy L-BFGS-B": None})
    assert line.startswith("- jaxgd lbfgs fails 2 that scipy L-BFGS-B solves (1 where scipy L-BFGS-B reported convergence)")
    assert "LIMIT (n=3, MAX_STEPS, f=785 vs 784.6; scipy L-BFGS-B did not converge either: status 1)" in line
    assert "LOCAL (n=3, GTOL, f=1.106 vs 1.022)" in line and "BOTH" not in line
    assert [R.converged({"status": s}) for s in ("GTOL", "PRECISION", "MAX_STEPS", "0", "1", "-")] == [
        True, True, False, True, False, None]


def test_false_failures_are_solved_runs_with_a_failure_status():
    """Reference: the definition (issue 13 item 3). A run at the best value that reports
    LINESEARCH_FAILED, STALLED or scipy's status 2 is a false failure; an iteration limit
    (MAX_STEPS, scipy's 1), a success or a run that did not reach the best value is not."""
    from benchmarks import cutest_report as R

    table = {
        "P1": {"a": rec(0.1, "LINESEARCH_FAILED"), "b": rec(0.1, "2")},
        "P2": {"a": rec(0.2, "STALLED"), "b": rec(0.2, "1")},
        "P3": {"a": rec(0.3, "MAX_STEPS"), "b": rec(0.3, "0")},
        "P4": {"a": rec(0.5, "LINESEARCH_FAILED"), "b": rec(0.4, "0")},
        "P5": {"a": rec(0.5, "PRECISION"), "b": rec(0.5, "0")},
    }
    R.mark_solved(table)
    line_a, line_b = R.false_failures(table, ["a", "b"])
    assert line_a == "- a: 2 false failures (solved, but a failure status): P1 (LINESEARCH_FAILED), P2 (STALLED)"
    assert line_b == "- b: 1 false failures (solved, but a failure status): P1 (2)"


def test_suite_on_three_problems(tmp_path):
    """jaxgd lbfgs and scipy L-BFGS-B on 3 problems: jaxgd reaches scipy's
    value; the optax loop's and jaxgd's evaluation counts match a forward-pass counter."""
    import jax

    from benchmarks import cutest
    from benchmarks import cutest_problems as P
    from benchmarks import cutest_solvers as S

    args = cutest.parser().parse_args(
        ["--suite", "unconstrained", "--quick", "--repeats", "1", "--limit", "5", "--out", str(tmp_path),
         "--solvers", "jaxgd lbfgs,scipy L-BFGS-B"]
    )
    with jax.enable_x64(True):
        reports = cutest.main_args(args)
        recs = cutest.read_records(tmp_path / "records_unconstrained.jsonl")
        assert {r["problem"] for r in recs} == set(cutest.QUICK["unconstrained"]) and len(recs) == 6
        by = {(r["problem"], r["solver"]): r for r in recs}
        for name in cutest.QUICK["unconstrained"]:
            ref = by[(name, "scipy L-BFGS-B")]
            assert ref["f"] < 1e-8, ref
            mine = by[(name, "jaxgd lbfgs")]
            assert mine["f"] <= ref["f"] + 1e-8 and mine["first_s"] > 0 and mine["nfev"] > 0, (name, mine)
        # the optax loop's own count (zoom line-search steps + 1) against a counter of forward passes
        p = P.load("unconstrained", "BEALE")
        counts = {"f": 0, "g": 0}
        x, _, nfev, _, _ = S.MAKERS["optax lbfgs"](S.counting(p.objective(), counts), p.x0(), None, 5.0)()
        jax.effects_barrier()
        assert nfev == counts["f"] > 5 and float(p.objective()(x)) < 1e-8
        # and jaxgd's Result.nfev, which the suite reports, against the same counter
        counts = {"f": 0, "g": 0}
        _, _, nfev, _, _ = S.MAKERS["jaxgd lbfgs"](S.counting(p.objective(), counts), p.x0(), None, 5.0)()
        jax.effects_barrier()
        assert nfev == counts["f"] == by[("BEALE", "jaxgd lbfgs")]["nfev"]
    text = (tmp_path / "tables_unconstrained.md").read_text()
    assert "jaxgd lbfgs" in text and "3/3" in text
    assert reports[0].rows and reports[1].title.startswith("One-off solve")
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "profile_unconstrained_nfev.png").stat().st_size > 1000
