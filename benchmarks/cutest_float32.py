"""K. A float32 audit on CUTEst: do jaxgd's statuses tell the truth in float32? (issue 13 item 3)

    python -m benchmarks.cutest_float32 [--tier host|compiled] [--methods lbfgs,bfgs] [--max-n 200]
        [--suite unconstrained|bounded] [--problems A,B] [--jobs 2] [--out out/cutest_float32]
        [--compare OLD_RECORDS.jsonl]
    python -m benchmarks --only K [--quick] [--out DIR]

Every unconstrained problem of sif2jax with at most ``--max-n`` variables (default 200; the large
ones are left out) is solved in processes with x64 off in float32 by each of ``--methods`` on
``--tier``, and by jaxgd ``lbfgs`` and ``bfgs`` in float64 (host tier). The stopping rules are
the CUTEst benchmark's (``cutest_solvers``: ``gtol=1e-5``, ``lbfgs`` with ``gtol_norm=inf``,
``max_steps=1000``), the other options jaxgd's defaults: the audit asks what a user running
float32, JAX's default dtype, is told. ``--suite bounded``: sif2jax's bound-constrained problems
instead, with ``lbfgs`` only (L-BFGS-B; ``bfgs`` and ``cg`` refuse bounds), the float64 reference
``lbfgs`` too.

Every run's ``f`` is the loss at its final point evaluated in float64 (a float32 loss's own value can
be off by more than the margin below). A problem's *best value* is the lowest ``f`` any of its runs
reached, float64 ones included. A float32 run is *at the best value* when
``f <= best + 1e-4 max(|best|, 1)`` (the margin leaves room for a point that is the answer to
float32's precision). With the status's ``success`` that makes four classes:

- *at best*: a success at the best value (the answer, and the status says so);
- *false success*: a success above it (``PRECISION`` or ``GTOL`` where a lower value exists);
- *false failure*: a failure status at the best value (``LINESEARCH_FAILED``, ``STALLED``,
  ``MAX_STEPS`` at the answer);
- *failure*: a failure status above it.

(``MAX_STEPS`` at the best value counts as a false failure here, unlike in benchmark G's list of
false failures, which leaves iteration limits out because scipy's count as its failures too: a
float32 run that reached the answer and then ran to ``max_steps`` is the issue's first example.)

Records go to ``OUT/records.jsonl`` (one line per run); ``--compare`` reads an older records file
(another commit's) and lists the float32 runs whose status or value changed, with both classes.
This is the audit sessions 38-43 measured their float32 changes with (a script then), each final
point now evaluated in float64 (benchmarks/RESULTS.md, session 44).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Optional

MARGIN = 1e-4  # at the best value: f <= best + MARGIN max(|best|, 1)
REFERENCE_METHODS = ("lbfgs", "bfgs")  # float64, host tier: the reference values
BOUNDED_METHODS = ("lbfgs",)  # --suite bounded: L-BFGS-B (bfgs and cg refuse bounds)
CLASSES = ("at best", "false success", "false failure", "failure")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cutest_float32", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tier", default="host", choices=["host", "compiled"], help="the float32 runs' tier (host)")
    p.add_argument("--methods", default="lbfgs,bfgs", help="float32 methods (lbfgs,bfgs; cg also runs)")
    p.add_argument("--max-n", type=int, default=200, help="largest problem size run (default 200)")
    p.add_argument("--suite", default="unconstrained", choices=["unconstrained", "bounded"],
                   help="sif2jax's unconstrained problems (default) or its bound-constrained ones (lbfgs only)")
    p.add_argument("--problems", default=None, help="comma-separated problem names (default: all up to --max-n)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes per dtype (default 2)")
    p.add_argument("--out", default="out/cutest_float32", help="folder for the records and the table")
    p.add_argument("--compare", default=None, help="an older records.jsonl: list the runs that changed")
    p.add_argument("--quick", action="store_true", help="3 problems: ROSENBR, MISRA1ALS, PALMER3C (bounded: BOX2, "
                   "HATFLDA, PALMER1A)")
    p.add_argument("--finals", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker", nargs=3, metavar=("DTYPE", "PART", "PARTS"), help=argparse.SUPPRESS)
    return p


def _solve(prob: Any, method: str, dtype: str, tier: str) -> dict:
    """One jaxgd run of ``method`` on ``prob`` in ``dtype`` (this process's x64 setting matches it), as
    benchmark G's contender makes it (``cutest_solvers.MAKERS``: its stopping rules), on ``tier``; a
    float32 run's record keeps its final point (``x``), for :func:`worker`'s float64 pass."""
    import jax.numpy as jnp
    import numpy as np

    import jaxgd

    from . import cutest_solvers as S

    x0 = jnp.asarray(prob.instance.y0, getattr(jnp, dtype))
    bounds = None if prob.kind != "bounded" else tuple(jnp.asarray(b, x0.dtype) for b in prob.instance.bounds)
    S.FIRST_TIER["tier"] = tier  # (the contender's first call, the one made here, runs on this tier)
    t0 = time.perf_counter()
    try:
        f = prob.objective()
        x, steps, nfev, ngev, status = S.MAKERS[f"jaxgd {method}"](f, x0, bounds, math.inf)()
        out = {"status": status, "success": jaxgd.Status[status].success, "f": float(f(x)), "nfev": nfev,
               "ngev": ngev, "steps": steps}
        if dtype != "float64":
            out["x"] = np.asarray(x, np.float64).tolist()
    except Exception as e:  # a crash is a failure, recorded as such
        out = {"status": f"ERROR {type(e).__name__}: {str(e)[:200]}", "success": False, "f": math.nan,
               "nfev": 0, "steps": 0}
    out.update(problem=prob.name, n=prob.n, suite=prob.kind, method=method, dtype=dtype, tier=tier,
               seconds=round(time.perf_counter() - t0, 3))
    return out


def worker(dtype: str, part: int, parts: int, args: Any) -> None:
    """Solve this part's problems in ``dtype``; one JSON line per run on stdout. The float64 pass also
    takes the float32 records of its problems (``--finals``) and adds ``f64``, the loss at each final
    point evaluated in float64: a float32 loss's own value can be off by more than the audit's margin
    (sif2jax's ARGLINB: float32 reads 98.9 where no point is below 99.6)."""
    import warnings

    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    # (sif2jax asks for float64 starts and constants; with x64 off JAX warns once per problem and truncates)
    warnings.filterwarnings("ignore", message="Explicitly requested dtype float64")
    import jax.numpy as jnp

    from . import cutest_problems as P

    finals: dict[str, list[dict]] = {}
    for r in read(Path(args.finals)) if args.finals else []:
        finals.setdefault(r["problem"], []).append(r)
    methods = REFERENCE_METHODS if dtype == "float64" else tuple(args.methods.split(","))
    if args.suite == "bounded":
        methods = tuple(m for m in methods if m in BOUNDED_METHODS)
    tier = "host" if dtype == "float64" else args.tier
    for i, prob in enumerate(P.select(args.suite, args.max_n, _names(args), large=False)):
        if i % parts != part:
            continue
        for m in methods:
            rec = _solve(prob, m, dtype, tier)
            rec["f64"] = rec["f"] if dtype == "float64" else math.nan
            print(json.dumps(rec), flush=True)
        for rec in finals.get(prob.name, []):
            x = rec.pop("x", None)
            rec["f64"] = math.nan if x is None else float(prob.objective()(jnp.asarray(x, jnp.float64)))
            print(json.dumps(rec), flush=True)


def _names(args: Any) -> Optional[list[str]]:
    if args.quick:
        return ["BOX2", "HATFLDA", "PALMER1A"] if args.suite == "bounded" else ["ROSENBR", "MISRA1ALS", "PALMER3C"]
    return [s.strip() for s in args.problems.split(",") if s.strip()] if args.problems else None


def measure(args: Any, path: Path) -> list[dict]:
    """Run the workers (float32, then float64 with the float32 finals; ``--jobs`` processes each) and
    collect their records."""
    base = [sys.executable, "-m", "benchmarks.cutest_float32", "--tier", args.tier, "--methods", args.methods,
            "--max-n", str(args.max_n), "--suite", args.suite] + (["--quick"] if args.quick else []) + (
            ["--problems", args.problems] if args.problems else [])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    root = Path(__file__).resolve().parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    finals = path.with_name("finals_float32.jsonl")
    records: list[dict] = []
    for dtype in ("float32", "float64"):
        extra = ["--finals", str(finals.resolve())] if dtype == "float64" else []
        procs = [subprocess.Popen(base + extra + ["--worker", dtype, str(k), str(args.jobs)], cwd=root, env=env,
                                  stdout=subprocess.PIPE, text=True) for k in range(args.jobs)]
        records = []
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode:
                raise RuntimeError(f"a {dtype} worker failed (exit {proc.returncode})")
            records += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if dtype == "float32":
            finals.write_text("".join(json.dumps(r) + "\n" for r in records))
    finals.unlink()
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def value(record: dict) -> float:
    """A run's final loss in float64: ``f64`` (the float64 pass's), or ``f`` in a record without it."""
    return record.get("f64", record["f"])


def best_values(records: Iterable[dict]) -> dict[str, float]:
    """Problem -> the lowest finite :func:`value` any of its runs reached (NaN where none is finite)."""
    best: dict[str, float] = {}
    for r in records:
        f = value(r)
        if math.isfinite(f) and not f > best.get(r["problem"], math.inf):
            best[r["problem"]] = f
        best.setdefault(r["problem"], math.nan)
    return best


def classify(record: dict, best: float) -> str:
    """The run's class (one of ``CLASSES``) against the problem's best value."""
    f = value(record)
    near = math.isfinite(f) and math.isfinite(best) and f <= best + MARGIN * max(abs(best), 1.0)
    if record["success"]:
        return "at best" if near else "false success"
    return "false failure" if near else "failure"


TITLE = "float32 CUTEst audit: jaxgd's statuses against the best value any run found"


def report(records: list[dict], best: dict[str, float], tier: str, suite: str = "unconstrained") -> Any:
    """The class counts and evaluations per (dtype, tier, method), the false ones by name, and the target
    (float32: no false success, no false failure)."""
    from . import _util as U

    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["dtype"], r["tier"], r["method"]), []).append(r)
    label = f"float32 audit, {tier} tier" + (", bounded" if suite == "bounded" else "")
    rep = U.Report(key="K", title=TITLE, label=label,
                   columns=["dtype, tier, method", "runs", *CLASSES, "evaluations"])
    false = 0
    for key in sorted(groups, reverse=True):
        runs = sorted(groups[key], key=lambda r: r["problem"])
        cls = [classify(r, best[r["problem"]]) for r in runs]
        rep.rows.append([", ".join(key), str(len(runs)), *(str(cls.count(c)) for c in CLASSES),
                         f"{sum(r['nfev'] for r in runs):,}"])
        for c in CLASSES[1:3] if key[0] != "float64" else ():  # (the float32 runs' false ones, by name)
            hit = [f"{r['problem']} {r['status']} {value(r):.6g} (best {best[r['problem']]:.6g})"
                   for r, k in zip(runs, cls) if k == c]
            if hit:
                false += len(hit)
                rep.notes.append(f"- {', '.join(key)}, {c}: " + "; ".join(hit))
    errors = [f"{r['problem']} {r['dtype']} {r['method']}" for r in records if r["status"].startswith("ERROR")]
    if errors:  # (a crash is jaxgd's failure too, and says nothing of the statuses)
        rep.notes.append(f"- {len(errors)} runs raised: " + "; ".join(errors[:20]))
    rep.targets.append(U.Target("float32: no false success and no false failure (issue 13 item 3)",
                                false == 0 and not errors if records else None,
                                f"{false} runs" + (f", {len(errors)} errors" if errors else "")))
    rep.notes.append(f"At the best value: f <= best + {MARGIN:g} max(|best|, 1), f each run's final point's loss "
                     "evaluated in float64; best: the lowest f of any run, float64 "
                     f"({'lbfgs' if suite == 'bounded' else 'lbfgs, bfgs'}, host tier) included. "
                     "gtol 1e-5 (lbfgs: inf-norm), max_steps 1000.")
    return rep


def compare(records: list[dict], old: list[dict]) -> str:
    """The float32 runs whose status or value differ between ``old`` and ``records`` (each against its own
    best values), and the class counts before and after."""
    new_best, old_best = best_values(records), best_values(old)
    key = lambda r: (r["dtype"], r["tier"], r["method"], r["problem"])  # noqa: E731
    before = {key(r): r for r in old}
    lines, moves = [], {}
    for r in sorted(records, key=key):
        o = before.get(key(r))
        if r["dtype"] == "float64" or o is None:
            continue
        a, b = classify(o, old_best[r["problem"]]), classify(r, new_best[r["problem"]])
        group = moves.setdefault(key(r)[:3], {c: [0, 0] for c in CLASSES} | {"evaluations": [0, 0]})
        group[a][0] += 1
        group[b][1] += 1
        group["evaluations"][0] += o["nfev"]
        group["evaluations"][1] += r["nfev"]
        f, g = value(o), value(r)
        if o["status"] != r["status"] or not (f == g or math.isnan(f) and math.isnan(g)):
            lines.append(f"- {', '.join(key(r))}: {o['status']} {f:.6g} ({a}, {o['nfev']}) -> "
                         f"{r['status']} {g:.6g} ({b}, {r['nfev']})")
    head = [f"| {', '.join(k)} | " + " | ".join(f"{v[0]:,} -> {v[1]:,}" for v in g.values()) + " |"
            for k, g in moves.items()]
    return "\n".join(["| dtype, tier, method | " + " | ".join(CLASSES) + " | evaluations |",
                      "|---|" + "---|" * (len(CLASSES) + 1)] + head + [""] + (lines or ["(no run changed)"]))


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    if args.worker:
        dtype, part, parts = args.worker
        worker(dtype, int(part), int(parts), args)
        return 0
    from . import cutest_problems as P

    if not P.available():
        print("cutest_float32: sif2jax is not installed (pip install 'jaxgd[bench]'); skipped", file=sys.stderr)
        return 0
    text = run_args(args)[0].markdown()
    if args.compare:
        text += "\n\nAgainst " + args.compare + ":\n\n" + compare(read(Path(args.out) / "records.jsonl"),
                                                                   read(Path(args.compare)))
    (Path(args.out) / "table.md").write_text(text + "\n")
    print(text)
    return 0


def run_args(args: Any) -> list[Any]:
    records = measure(args, Path(args.out) / "records.jsonl")
    return [report(records, best_values(records), args.tier, args.suite)]


def _both_suites(args: Any) -> list[Any]:
    """The unconstrained suite, then the bounded one (records in ``OUT/bounded``)."""
    reports = run_args(args)
    args.suite, args.out = "bounded", str(Path(args.out) / "bounded")
    return reports + run_args(args)


def run(opts: Any) -> list[Any]:
    """Entry point of ``benchmarks.run`` (benchmark K): the host tier, every problem of both suites
    (``--quick``: 3 of each)."""
    from . import cutest_problems as P

    return P.entry("K", TITLE, parser, _both_suites, opts, "cutest_float32")


if __name__ == "__main__":
    raise SystemExit(main())
