"""Tables and performance profiles from the CUTEst records (helper of ``cutest.py``).

A record is one (problem, solver) solve: final ``f``, ``nfev``, ``iters``,
``run_s`` (compiled), ``first_s`` (trace + compile + run), status.

Solved: the final f is finite, the point feasible (bounded suite: no bound
violated by more than 1e-8) and ``f - f_best <= RTOL * max(|f_best|, FLOOR)``
with ``f_best`` the lowest final f any solver reached on that problem: a
relative 1e-6, an absolute 1e-8 where ``|f_best| < 0.01``. It compares final values only: a run
that stopped at its iteration limit with the lowest f counts as solved. The failure lines say where
the reference solver did not report convergence either (:func:`converged`).

Performance profiles (Dolan & Moré, Math. Program. 91, 2002): for each
solver s, rho_s(tau) is the fraction of problems that s solves with a cost at
most tau times the lowest cost of any solver on that problem (unsolved:
infinite cost); drawn against log2(tau).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

RTOL = 1e-6
FLOOR = 1e-2
FEAS_TOL = 1e-8

METRICS = {"nfev": "loss evaluations", "run_s": "run time (compiled)", "first_s": "first-call time (trace+compile+run)"}


def complete(records: list[dict], solvers: list[str]) -> dict[str, dict[str, dict]]:
    """problem -> solver -> record, for problems every solver has a record of (the problems
    ``cutest_problems.EXCLUDED`` leaves out are left out of older records too)."""
    from .cutest_problems import EXCLUDED

    by: dict[str, dict[str, dict]] = {}
    for r in records:
        if r["problem"] in EXCLUDED.get(r.get("suite", ""), {}):
            continue
        by.setdefault(r["problem"], {})[r["solver"]] = r
    return {p: d for p, d in sorted(by.items()) if all(s in d for s in solvers)}


def mark_solved(table: dict[str, dict[str, dict]]) -> None:
    """Set ``solved`` and ``f_best`` on every record."""
    for recs in table.values():
        ok = [r["f"] for r in recs.values() if math.isfinite(r["f"]) and r.get("infeasible", 0.0) <= FEAS_TOL]
        best = min(ok) if ok else math.nan
        for r in recs.values():
            r["f_best"] = best
            r["solved"] = bool(
                ok and math.isfinite(r["f"]) and r.get("infeasible", 0.0) <= FEAS_TOL
                and r["f"] - best <= RTOL * max(abs(best), FLOOR)
            )


def _gmean(xs: list[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else math.nan


def _fmt(x: float, digits: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _ms(x: float) -> str:
    return "—" if not math.isfinite(x) else (f"{x * 1e3:.3g} ms" if x < 1 else f"{x:.3g} s")


def _med(xs: list[float]) -> float:
    """The median of the finite values (a crashed run's times are NaN); NaN where none is."""
    xs = [x for x in xs if math.isfinite(x)]
    return float(np.median(xs)) if xs else math.nan


def summary_rows(table: dict, solvers: dict[str, Optional[str]]) -> list[list[str]]:
    """One row per solver: solved, evaluations, iterations, times, ratios vs its scipy counterpart."""
    rows = []
    n = len(table)
    for s, ref in solvers.items():
        mine = [d[s] for d in table.values()]
        good = [r for r in mine if r["solved"]]
        both = [(d[s], d[ref]) for d in table.values() if ref and d[s]["solved"] and d[ref]["solved"]]
        ratio = _gmean([a["nfev"] / b["nfev"] for a, b in both if b["nfev"] > 0])
        fewer = sum(a["nfev"] < b["nfev"] for a, b in both) / len(both) if both else math.nan
        t_ratio = _gmean([a["run_s"] / b["run_s"] for a, b in both])
        rows.append([
            s, f"{len(good)}/{n}", _fmt(_med([r["nfev"] for r in good])), _fmt(_med([r["iters"] for r in good])),
            ref or "—", _fmt(ratio), "—" if not both else f"{fewer:.0%}", str(len(both)) if ref else "—",
            _ms(_med([r["run_s"] for r in good])), _fmt(t_ratio), _ms(_med([r["first_s"] for r in mine])),
        ])
    return rows


SUMMARY_COLUMNS = [
    "solver", "solved", "median evals (solved)", "median iters (solved)", "vs", "evals ratio (geo. mean, both solved)",
    "fewer evals", "both solved", "median run time (solved)", "run-time ratio (geo. mean)", "median first call",
]


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else math.nan


def first_call_rows(table: dict, solvers: dict[str, Optional[str]]) -> list[list[str]]:
    """Issue 14's one-off comparison: each solver's first call (fresh compile)
    against its scipy counterpart's whole first solve, jit of value_and_grad included."""
    rows = []
    for s, ref in solvers.items():
        if not ref:
            continue
        pairs = [(d[s], d[ref]) for d in table.values() if d[s]["solved"] and d[ref]["solved"]]
        mine = [a["first_s"] for a, _ in pairs]
        theirs = [b["first_s"] for _, b in pairs]
        rows.append([
            s, ref, str(len(pairs)), _ms(_med(mine)), _ms(_pct(mine, 90)), _ms(max(mine, default=math.nan)),
            _ms(_med(theirs)), _fmt(_med(mine) / _med(theirs) if pairs else math.nan),
            _fmt(_med([a / b for a, b in zip(mine, theirs)])), f"{sum(a <= b for a, b in zip(mine, theirs))}",
            *_cpu(pairs),
        ])
    return rows


def _cpu(pairs: list[tuple[dict, dict]]) -> list[str]:
    """Median first-call CPU times (this solver, scipy) and their ratio, where recorded."""
    cpu = [(a["first_cpu_s"], b["first_cpu_s"]) for a, b in pairs if "first_cpu_s" in a and "first_cpu_s" in b]
    if not cpu:
        return ["—", "—", "—"]
    mine, theirs = _med([a for a, _ in cpu]), _med([b for _, b in cpu])
    return [f"{_ms(mine)} ({len(cpu)})", _ms(theirs), _fmt(mine / theirs)]


FIRST_CALL_COLUMNS = [
    "solver", "vs (jit of value_and_grad included)", "problems (both solved)", "median first call", "90th pct",
    "max", "scipy median first call", "ratio of medians", "median of per-problem ratios", "problems where not slower",
    "median first-call CPU (problems)", "scipy median first-call CPU", "CPU ratio",
]


def converged(record: dict) -> Optional[bool]:
    """Whether the solver itself reported convergence: a jaxgd success status (GTOL, FTOL,
    XTOL, PRECISION), scipy's or optimistix's status 0; None where the record does not say
    (optax's hand-written loop)."""
    status = str(record["status"])
    if status == "-":
        return None
    names = {"GTOL": True, "FTOL": True, "XTOL": True, "PRECISION": True}
    return names.get(status, status == "0")


def failures(table: dict, solvers: dict[str, Optional[str]], prefix: str = "jaxgd") -> list[str]:
    """Lines: the problems each ``prefix`` solver fails that its scipy counterpart solves, each
    marked where that counterpart did not report convergence either (it stopped at its
    iteration limit, say, with the lowest f of all: "solved" compares final values only)."""
    out = []
    for s, ref in solvers.items():
        if not s.startswith(prefix) or not ref:
            continue
        bad = [(p, d[s], d[ref]) for p, d in table.items() if d[ref]["solved"] and not d[s]["solved"]]
        items = ", ".join(
            f"{p} (n={r['n']}, {r['status']}, f={r['f']:.6g} vs {r['f_best']:.6g}"
            + ("" if converged(q) else f"; {ref} did not converge either: status {q['status']}") + ")"
            for p, r, q in bad
        )
        real = sum(1 for _, _, q in bad if converged(q))
        out.append(f"- {s} fails {len(bad)} that {ref} solves ({real} where {ref} reported convergence): "
                   f"{items or 'none'}")
    return out


# The statuses of an iteration or time limit: jaxgd's MAX_STEPS, the driver's TIME_LIMIT (scipy),
# "1" (scipy's maxiter or maxfun reached: BFGS, CG, L-BFGS-B; optimistix's max_steps_reached) and "7"
# (optimistix 0.1.0's nonlinear_max_steps_reached; scipy's minimizers have no status 7).
LIMITS = ("MAX_STEPS", "TIME_LIMIT", "1", "7")


def stopped_at_limit(record: dict) -> bool:
    """Whether the solver stopped at an iteration or time limit (:data:`LIMITS`)."""
    return str(record["status"]) in LIMITS


def false_failures(table: dict, solvers: list[str]) -> list[str]:
    """Lines (issue 13 item 3): per solver, the runs that reached the best value (``solved``) but
    reported a failure other than an iteration limit (:func:`stopped_at_limit`): ``LINESEARCH_FAILED``,
    ``STALLED``; scipy's status 2, "ABNORMAL_TERMINATION_IN_LNSRCH" or "precision loss": false failures."""
    out = []
    for s in solvers:
        bad = [(p, d[s]["status"]) for p, d in table.items()
               if d[s]["solved"] and converged(d[s]) is False and not stopped_at_limit(d[s])]
        out.append(f"- {s}: {len(bad)} false failures (solved, but a failure status): "
                   + (", ".join(f"{p} ({st})" for p, st in bad) or "none"))
    return out


def timed_differs(table: dict, solvers: list[str]) -> list[str]:
    """Lines: per jaxgd solver, the problems whose timed runs (the compiled tier) took other evaluations or ended
    with another status than the first call whose evaluations and status are scored (the host tier, which agrees
    to rounding): there the run time describes another run. Records without the timed fields are left out."""
    out = []
    for s in solvers:
        if not s.startswith("jaxgd"):
            continue
        differ = [(p, d[s]) for p, d in table.items() if d[s].get("timed_nfev") is not None
                  and (d[s]["timed_nfev"], d[s]["timed_status"]) != (d[s]["nfev"], d[s]["status"])]
        out.append(f"- {s}: {len(differ)} problems whose timed runs differ from the scored first call: "
                   + (", ".join(f"{p} ({r['nfev']} {r['status']} vs {r['timed_nfev']} {r['timed_status']})"
                                for p, r in differ) or "none"))
    return out


def ratios(table: dict, solvers: list[str], metric: str) -> np.ndarray:
    """Performance ratios r[p, s] = cost[p, s] / min_s cost[p, s] (inf: not
    solved), over the problems at least one solver solves."""
    cost = np.array([[d[s][metric] if d[s]["solved"] and d[s][metric] > 0 else np.inf for s in solvers]
                     for d in table.values()], dtype=float).reshape(len(table), len(solvers))
    best = cost.min(axis=1, keepdims=True) if cost.size else cost
    keep = np.isfinite(best[:, 0]) if cost.size else np.zeros(0, bool)
    return np.where(np.isfinite(cost[keep]), cost[keep] / best[keep], np.inf)


def rho(ratio: np.ndarray, tau: float, n_problems: int) -> np.ndarray:
    """Per solver: the fraction of all ``n_problems`` solved within ``tau`` × the best."""
    return (ratio <= tau).sum(axis=0) / max(n_problems, 1)


def profile(table: dict, solvers: list[str], metric: str, path: Path, title: str) -> Optional[Path]:
    """Draw one Dolan–Moré performance profile to ``path`` (PNG); None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ratio = ratios(table, solvers, metric)
    if ratio.size == 0:
        return None
    finite = ratio[np.isfinite(ratio)]
    top = max(1.0, float(np.log2(finite.max())) if finite.size else 1.0) * 1.05
    taus = np.linspace(0.0, top, 400)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    n = len(table)
    for j, s in enumerate(solvers):
        curve = [rho(ratio[:, j : j + 1], 2.0**t, n)[0] for t in taus]
        ax.step(taus, curve, where="post", label=s, lw=1.6,
                ls="-" if s.startswith("jaxgd") else "--" if s.startswith("scipy") else ":")
    ax.set_xlabel("log2(τ): within this factor of the best solver")
    ax.set_ylabel(f"fraction of the {n} problems")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(columns: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)
