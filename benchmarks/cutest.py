"""G. A peer benchmark on CUTEst problems (``sif2jax``'s pure-JAX ports), float64.

    python -m benchmarks.cutest [--max-n 200] [--problems A,B] [--solvers ...]
        [--suite unconstrained,bounded] [--limit 20] [--out out/cutest] [--quick]
    python -m benchmarks --only G [--quick] [--out DIR]

Unconstrained suite: every unconstrained problem of sif2jax with at most
``--max-n`` variables (default 200) at its default size and start, plus a few
large ones (``cutest_problems.LARGE``); contenders jaxgd ``bfgs``, ``lbfgs``,
``cg``; scipy BFGS, L-BFGS-B, CG (``jac=True`` with a jitted
``jax.value_and_grad``); ``optax.lbfgs`` in a hand-written ``lax.while_loop``;
optimistix ``BFGS`` and ``LBFGS``. Bounded suite: sif2jax's bound-constrained
problems, jaxgd ``lbfgs`` with ``bounds=`` against scipy's L-BFGS-B. The
stopping rules (gradient norm <= 1e-5: the 2-norm, or L-BFGS-B's inf-norm for the L-BFGS
family; at most 1,000 iterations; and where
a contender cannot match that) and how evaluations are counted are in
``cutest_solvers``; what "solved" means and the profiles in ``cutest_report``.

Each (problem, solver) runs once cold (the *first-call* time: trace +
compile + run; for scipy the ``jax.jit`` of its ``value_and_grad`` is
included, which is issue 14's one-off comparison) and then up to 3 times warm
(the median is the *run* time). ``--limit`` seconds bound the warm repeats
and stop a scipy solve (via its callback); a compiled JAX loop cannot be
interrupted, ``MAX_ITER`` bounds it. Every record is appended to
``OUT/records_<suite>.jsonl`` as it is made (``--resume`` skips the ones
there; ``--report-only`` rebuilds the tables and profiles from them).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any, Optional

from . import _util as U
from . import cutest_problems as P
from . import cutest_report as R
from . import cutest_solvers as S

TITLE = "CUTEst (sif2jax) problems, float64, vs scipy / optax / optimistix"
QUICK = {"unconstrained": ["BEALE", "BROWNBS", "ROSENBR"], "bounded": ["BOX2", "HATFLDA", "HS1"]}
SUITES = {"unconstrained": S.UNCONSTRAINED, "bounded": S.BOUNDED}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cutest", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-n", type=int, default=200, help="largest problem size run (default 200)")
    p.add_argument("--problems", default=None, help="comma-separated problem names (default: all up to --max-n)")
    p.add_argument("--solvers", default=None, help="comma-separated solver names (default: all of the suite)")
    p.add_argument("--suite", default="unconstrained,bounded", help="unconstrained, bounded or both")
    p.add_argument("--limit", type=float, default=20.0, help="seconds of warm repeats per solve; stops scipy (20)")
    p.add_argument("--repeats", type=int, default=3, help="warm runs per solve (median; default 3)")
    p.add_argument("--out", default="out/cutest", help="folder for records, tables and profiles (out/cutest)")
    p.add_argument("--quick", action="store_true", help="3 problems per suite: " + "; ".join(map(",".join, QUICK.values())))
    p.add_argument("--no-large", action="store_true", help="skip the few large problems")
    p.add_argument("--shuffle", type=int, default=None, metavar="SEED",
                   help="run the problems in a seeded random order (a cut-short run is then a fair sample)")
    p.add_argument("--reverse", action="store_true",
                   help="run the problems in reverse order (a second process with --resume meets the first halfway)")
    p.add_argument("--first-tier", default="auto", choices=["auto", "compiled"],
                   help="jaxgd's first call: minimize's default tier (auto: bfgs/lbfgs on the host) or the fused loop")
    p.add_argument("--resume", action="store_true", help="skip (problem, solver) pairs already in the records")
    p.add_argument("--report-only", action="store_true", help="only rebuild tables and profiles from the records")
    return p


def _names(text: Optional[str]) -> Optional[list[str]]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def solvers_of(suite: str, wanted: Optional[list[str]]) -> dict[str, Optional[str]]:
    """The suite's solvers (name -> scipy counterpart), filtered by ``wanted``;
    a counterpart left out is dropped from the comparison."""
    allowed = SUITES[suite]
    if wanted:
        bad = [w for w in wanted if w not in S.MAKERS]
        if bad:
            raise SystemExit(f"cutest: unknown solver(s) {bad}; choose from {list(S.MAKERS)}")
        allowed = {k: v for k, v in allowed.items() if k in wanted}
    return {k: (v if v in allowed else None) for k, v in allowed.items()}


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def measure(suite: str, problems: list[P.Problem], solvers: list[str], args: Any, path: Path) -> None:
    """Run every (problem, solver) pair; append each record to ``path``
    (with ``--resume``: the pairs not in it yet, re-read before each problem)."""
    import jax

    done = {(r["problem"], r["solver"]) for r in read_records(path)} if args.resume else set()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not args.resume and path.exists():
        path.unlink()
    for i, prob in enumerate(problems):
        if args.resume:  # another process may be filling the same records
            done = {(r["problem"], r["solver"]) for r in read_records(path)}
        f, x0, bounds = prob.objective(), prob.x0(), prob.bounds()
        vg = jax.jit(jax.value_and_grad(f))
        line = []
        for s in solvers:
            if (prob.name, s) in done:
                continue
            t0 = time.perf_counter()
            try:
                rec = S.finish(S.run_one(s, f, x0, bounds, args.limit, args.repeats), vg, bounds)
            except Exception as e:  # a crash is a failed solve, recorded as such
                rec = {"f": math.nan, "gnorm_inf": math.nan, "iters": 0, "nfev": 0, "ngev": 0, "runs": 0,
                       "status": f"ERROR {type(e).__name__}: {str(e)[:200]}", "first_s": math.nan, "run_s": math.nan}
            rec.update(problem=prob.name, n=prob.n, solver=s, suite=suite, wall_s=time.perf_counter() - t0)
            with path.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            line.append(f"{s.split()[-1]}:{rec['nfev']}")
        print(f"[{suite} {i + 1}/{len(problems)}] {prob.name} n={prob.n} " + " ".join(line), file=sys.stderr, flush=True)


def report(suite: str, solvers: dict[str, Optional[str]], path: Path, out: Path) -> tuple[str, list[U.Report]]:
    """Tables (markdown) and profiles (PNG) of one suite from its records."""
    table = R.complete(read_records(path), list(solvers))
    R.mark_solved(table)
    key = "G"
    reports = [U.Report(key=key, title=f"{TITLE}: {suite}, {len(table)} problems", columns=R.SUMMARY_COLUMNS,
                        rows=R.summary_rows(table, solvers), label=f"CUTEst {suite}")]
    pngs = []
    for metric, what in R.METRICS.items():
        png = R.profile(table, list(solvers), metric, out / f"profile_{suite}_{metric}.png",
                        f"CUTEst {suite} ({len(table)} problems): performance profile, {what}")
        if png:
            pngs.append(png.name)
    reports[0].notes += R.failures(table, solvers)
    reports[0].notes += R.false_failures(table, list(solvers))
    reports[0].notes += R.timed_differs(table, list(solvers))
    reports[0].notes.append("profiles: " + (", ".join(str(out / p) for p in pngs) or "none (no matplotlib)"))
    first = R.first_call_rows(table, solvers)
    if first:
        reports.append(U.Report(key=key, title=f"One-off solve (first call, fresh compile) vs scipy: {suite}",
                                columns=R.FIRST_CALL_COLUMNS, rows=first, label=f"CUTEst {suite} first call"))
    reports[0].targets = targets(table, solvers)
    text = "\n".join(r.markdown() for r in reports)
    (out / f"tables_{suite}.md").write_text(text)
    return text, reports


def targets(table: dict, solvers: dict[str, Optional[str]]) -> list[U.Target]:
    """Issue 13's targets: jaxgd solves what scipy solves, geometric-mean evaluations <= 1.0."""
    out = []
    for s, ref in solvers.items():
        if not (s.startswith("jaxgd") and ref):
            continue
        both = [(d[s]["nfev"], d[ref]["nfev"]) for d in table.values() if d[s]["solved"] and d[ref]["solved"]]
        missed = sum(1 for d in table.values() if d[ref]["solved"] and not d[s]["solved"])
        g = R._gmean([a / b for a, b in both if b > 0])
        out.append(U.Target(f"{s} solves every problem {ref} solves", missed == 0 if table else None, f"{missed} missed"))
        out.append(U.Target(f"{s} / {ref} evaluations, geometric mean <= 1.0", (g <= 1.0) if both else None, f"{g:.3g}"))
    return out


def main_args(args: Any) -> list[U.Report]:
    import jax

    jax.config.update("jax_enable_x64", True)
    S.FIRST_TIER["tier"] = getattr(args, "first_tier", "auto")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reports: list[U.Report] = []
    for suite in [s.strip() for s in args.suite.split(",") if s.strip()]:
        if suite not in SUITES:
            raise SystemExit(f"cutest: unknown suite {suite!r}; choose from {list(SUITES)}")
        solvers = solvers_of(suite, _names(args.solvers))
        path = out / f"records_{suite}.jsonl"
        if not args.report_only:
            names = QUICK[suite] if args.quick else _names(args.problems)
            probs = list(P.select(suite, args.max_n, names, large=not (args.no_large or args.quick)))
            if args.shuffle is not None:
                random.Random(args.shuffle).shuffle(probs)
            if args.reverse:
                probs.reverse()
            print(f"cutest {suite}: {len(probs)} problems x {len(solvers)} solvers", file=sys.stderr, flush=True)
            measure(suite, probs, list(solvers), args, path)
        text, reps = report(suite, solvers, path, out)
        print(text, flush=True)
        reports += reps
    return reports


def run(opts: Any) -> list[U.Report]:
    """Entry point of ``benchmarks.run`` (benchmark G)."""
    return P.entry("G", TITLE, parser, main_args, opts, "cutest")


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    if not P.available():
        print("cutest: sif2jax is not installed (pip install 'jaxgd[bench]')", file=sys.stderr)
        return 2
    print(U.header("CUTEst suite in one process"), flush=True)
    main_args(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
