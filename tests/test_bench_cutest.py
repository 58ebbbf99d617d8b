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
from typing import Any

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


def test_unbounded_problem_left_out_and_crashes_left_out_of_medians():
    """EG1 (sif2jax's port without CUTEst's bounds) is unbounded below: f(t, 0, -2t) = -t^2 (closed
    form), so the final-value rule would crown whichever run diverged furthest. It is left out of the
    suite (run only where named) and out of older records' tables; a crashed run's NaN time is left
    out of a median (the cell was blank)."""
    import jax

    from benchmarks import cutest_problems as P
    from benchmarks import cutest_report as R

    assert "EG1" in P.EXCLUDED["unconstrained"] and "EG1" in P.catalogue("unconstrained")
    eg1 = P.load("unconstrained", "EG1")
    with jax.enable_x64(True):
        for t in (10.0, 1e3):
            assert float(eg1.objective()(np.array([t, 0.0, -2 * t]))) == pytest.approx(-t * t, rel=1e-12)
    assert [p.name for p in P.select("unconstrained", 3, ["EG1"])] == ["EG1"]  # named: run
    base = {"n": 3, "nfev": 10, "iters": 5, "run_s": 1e-3, "status": "GTOL", "suite": "unconstrained"}
    recs = [dict(base, problem=p, solver=s, f=0.0, first_s=0.1) for p in ("EG1", "A", "B", "C") for s in "ab"]
    recs.append(dict(base, problem="D", solver="a", f=math.nan, first_s=math.nan, status="ERROR x"))
    recs.append(dict(base, problem="D", solver="b", f=0.0, first_s=0.1))
    table = R.complete(recs, ["a", "b"])
    assert list(table) == ["A", "B", "C", "D"]
    R.mark_solved(table)
    row = R.summary_rows(table, {"a": None, "b": None})[0]
    assert row[1] == "3/4" and row[-1] == "100 ms"


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
    (MAX_STEPS, scipy's 1, optimistix's 7: nonlinear_max_steps_reached, the driver's TIME_LIMIT), a success or a run that did not reach the best value is not."""
    from benchmarks import cutest_report as R

    table = {
        "P1": {"a": rec(0.1, "LINESEARCH_FAILED"), "b": rec(0.1, "2")},
        "P2": {"a": rec(0.2, "STALLED"), "b": rec(0.2, "1")},
        "P3": {"a": rec(0.3, "MAX_STEPS"), "b": rec(0.3, "0")},
        "P4": {"a": rec(0.5, "LINESEARCH_FAILED"), "b": rec(0.4, "0")},
        "P5": {"a": rec(0.5, "PRECISION"), "b": rec(0.5, "0")},
        "P6": {"a": rec(0.6, "7"), "b": rec(0.6, "TIME_LIMIT")},  # optimistix's nonlinear_max_steps_reached; scipy timed out
    }
    R.mark_solved(table)
    line_a, line_b = R.false_failures(table, ["a", "b"])
    assert line_a == "- a: 2 false failures (solved, but a failure status): P1 (LINESEARCH_FAILED), P2 (STALLED)"
    assert line_b == "- b: 1 false failures (solved, but a failure status): P1 (2)"


def test_timed_runs_that_differ_from_the_scored_first_call_are_listed():
    """Reference: the definition. A jaxgd run whose timed (compiled) runs took other evaluations or another status
    than its scored first call is listed with both; scipy's runs and records without the timed fields are not."""
    from benchmarks import cutest_report as R

    def timed(f: float, nfev: int, status: str, t_nfev: Any, t_status: Any) -> dict:
        return dict(rec(f, status), nfev=nfev, timed_nfev=t_nfev, timed_status=t_status)

    table = {
        "P1": {"jaxgd a": timed(0.1, 10, "GTOL", 10, "GTOL"), "b": timed(0.1, 5, "0", 6, "0")},
        "P2": {"jaxgd a": timed(0.2, 10, "GTOL", 12, "GTOL"), "b": rec(0.2, "0")},
        "P3": {"jaxgd a": timed(0.3, 10, "GTOL", 10, "PRECISION"), "b": rec(0.3, "0")},
        "P4": {"jaxgd a": rec(0.4, "GTOL"), "b": rec(0.4, "0")},
    }
    assert R.timed_differs(table, ["jaxgd a", "b"]) == [
        "- jaxgd a: 2 problems whose timed runs differ from the scored first call: P2 (10 GTOL vs 12 GTOL), "
        "P3 (10 GTOL vs 10 PRECISION)"]


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
        # the timed runs' evaluations and status are recorded beside the scored first call's, and compared
        for name in cutest.QUICK["unconstrained"]:
            mine = by[(name, "jaxgd lbfgs")]
            assert mine["timed_nfev"] is not None and mine["timed_status"] is not None, mine
    text = (tmp_path / "tables_unconstrained.md").read_text()
    assert "jaxgd lbfgs" in text and "3/3" in text
    assert "- jaxgd lbfgs: " in text and "problems whose timed runs differ from the scored first call" in text
    assert reports[0].rows and reports[1].title.startswith("One-off solve")
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "profile_unconstrained_nfev.png").stat().st_size > 1000


def audit_rec(problem: str, f: float, status: str, dtype: str = "float32", method: str = "lbfgs") -> dict:
    """A float32-audit record (benchmarks/cutest_float32.py) with final value ``f`` and ``status``."""
    from jaxgd import Status

    return {"problem": problem, "n": 2, "method": method, "dtype": dtype, "tier": "host", "status": status,
            "success": Status[status].success, "f": f, "nfev": 10, "steps": 3, "seconds": 0.1}


def test_float32_audit_classes():
    """Reference: the audit's definition, by hand. The best value is the lowest f of any run (float64 included);
    at it means within 1e-4 max(|best|, 1); a success there is "at best", above it a false success; a failure
    status there (MAX_STEPS included: the run reached the answer and reported failure) a false failure."""
    from benchmarks import cutest_float32 as A

    records = [
        audit_rec("P", 1.0, "GTOL", "float64"), audit_rec("P", 1.00009, "PRECISION"),  # 9e-5 <= 1e-4: at best
        audit_rec("P", 1.00011, "PRECISION", method="bfgs"),  # 1.1e-4 above: a false success
        audit_rec("Q", -500.0, "LINESEARCH_FAILED"), audit_rec("Q", -499.96, "MAX_STEPS", method="bfgs"),  # 0.04 < 0.05
        audit_rec("Q", -499.9, "MAX_STEPS", "float64"), audit_rec("R", math.nan, "NONFINITE"),
    ]
    best = A.best_values(records)
    assert best["P"] == 1.0 and best["Q"] == -500.0 and math.isnan(best["R"])
    assert [A.classify(r, best[r["problem"]]) for r in records] == [
        "at best", "at best", "false success", "false failure", "false failure", "failure", "failure"]
    rep = A.report(records, best, "host")
    assert rep.rows == [["float64, host, lbfgs", "2", "1", "0", "0", "1", "20"],
                        ["float32, host, lbfgs", "3", "1", "0", "1", "1", "30"],
                        ["float32, host, bfgs", "2", "0", "1", "1", "0", "20"]]
    assert rep.targets[0].met is False and rep.targets[0].detail == "3 runs"
    # a float32 loss can read below every true value (ARGLINB: 98.9 where the minimum is 99.625): f64 decides
    low = [audit_rec("A", 99.625, "GTOL", "float64") | {"f64": 99.625},
           audit_rec("A", 98.9, "PRECISION") | {"f64": 99.63}, audit_rec("A", 98.8, "PRECISION") | {"f64": 99.9}]
    assert A.best_values(low) == {"A": 99.625}
    assert [A.classify(r, 99.625) for r in low] == ["at best", "at best", "false success"]
    # --compare: one float32 run changed (Q, lbfgs: a false failure became a success at the best value)
    newer = [dict(r) for r in records]
    newer[3].update(status="PRECISION", success=True)
    text = A.compare(newer, records)
    assert "| float32, host, lbfgs | 1 -> 2 | 0 -> 0 | 1 -> 0 | 1 -> 1 | 30 -> 30 |" in text
    assert text.endswith("- float32, host, lbfgs, Q: LINESEARCH_FAILED -500 (false failure, 10) -> "
                         "PRECISION -500 (at best, 10)")


def test_float32_audit_runs_both_dtypes(tmp_path):
    """The audit's workers on one problem: float32 runs with x64 off, then float64 references in x64 processes,
    which also evaluate the float32 runs' final points in float64; reference: Rosenbrock's closed-form minimum, 0."""
    from benchmarks import cutest_float32 as A

    args = A.parser().parse_args(["--problems", "ROSENBR", "--jobs", "1", "--out", str(tmp_path)])
    (rep,) = A.run_args(args)
    recs = A.read(tmp_path / "records.jsonl")
    assert sorted((r["dtype"], r["method"]) for r in recs) == [
        ("float32", "bfgs"), ("float32", "lbfgs"), ("float64", "bfgs"), ("float64", "lbfgs")]
    for r in recs:
        assert r["success"] and r["f"] < (1e-10 if r["dtype"] == "float64" else 1e-6), r
        assert "x" not in r and 0 <= r["f64"] < (1e-10 if r["dtype"] == "float64" else 1e-6), r  # (float64's value)
    assert [row[2] for row in rep.rows] == ["1", "1", "1", "1"] and rep.targets[0].met is True


@pytest.mark.slow  # (~4 s; the unconstrained audit stays in make test)
def test_float32_audit_bounded_suite(tmp_path):
    """--suite bounded: lbfgs (L-BFGS-B) only, with the problem's bounds, in both dtypes; reference: HS1
    (Rosenbrock with x2 >= -1.5, the bound inactive at the closed-form minimum, 0 at (1, 1))."""
    from benchmarks import cutest_float32 as A

    args = A.parser().parse_args(["--suite", "bounded", "--problems", "HS1", "--jobs", "1", "--out", str(tmp_path)])
    (rep,) = A.run_args(args)
    recs = A.read(tmp_path / "records.jsonl")
    assert sorted((r["dtype"], r["method"], r["suite"]) for r in recs) == [
        ("float32", "lbfgs", "bounded"), ("float64", "lbfgs", "bounded")]
    for r in recs:
        assert r["success"] and 0 <= r["f64"] < (1e-10 if r["dtype"] == "float64" else 1e-6), r
    assert "bounded" in rep.label and rep.targets[0].met is True
