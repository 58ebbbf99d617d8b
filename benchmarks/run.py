"""Run jaxgd's benchmark suite and print ratio tables (markdown).

    python -m benchmarks.run [--quick] [--only A,B] [--out DIR] [...]
    python -m benchmarks [same arguments]        make bench

Benchmarks (see each module's docstring and benchmarks/RESULTS.md):

    A  loop overhead, Rosenbrock 2-D and 100-D, GD and Adam      loop_overhead.py
    B  full-batch logistic regression + memory bandwidth         logistic.py
    C  quasi-Newton to convergence, float64, vs scipy/optax/optx quasi_newton.py
    D  vmap sweep over learning rates vs sequential calls        sweep.py
    E  per-call overhead of jaxgd.minimize                       call_overhead.py
    F  jaxgd.fit epochs/s on the digits MLP vs optax + lax.scan  fit_mlp.py
    G  CUTEst (sif2jax) peer suite vs scipy/optax/optimistix     cutest.py
       (all problems up to n = 200: over an hour on 2 busy cores;
       ``python -m benchmarks.cutest --help`` for its own options)
    H  backward pass through a solve vs the forward solve         adjoint.py
    I  first call from fresh processes: trace/lower/compile,      first_call.py
       second call, vs scipy, with the persistent cache; where
       the fused loop's XLA compile goes (passes, codegen, kernels)
    J  XLA:CPU's one-kernel loops: GD per step by problem size,  small_loops.py
       jaxgd and the hand-written floor, default and raised threshold
    K  float32 CUTEst audit: statuses against the best value      cutest_float32.py
       (host tier, every problem up to n = 200, the unconstrained
       and the bounded suite: minutes; its own options:
       ``python -m benchmarks.cutest_float32 --help``)

By default each benchmark runs in its own Python process with
``OPENBLAS_NUM_THREADS=1``: an idle OpenBLAS thread pool left by NumPy/scipy
work can take the second core from XLA on small machines, and a fresh process
also keeps float64 (benchmark C) from leaking into the others. ``--inline``
runs everything in this process instead (the header says which).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent

# key -> (module, description)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "A": ("loop_overhead", "loop overhead: 10,000 GD/Adam steps on Rosenbrock vs hand-written loops"),
    "B": ("logistic", "full-batch logistic regression, GD, effective memory bandwidth"),
    "C": ("quasi_newton", "quasi-Newton to convergence (float64) vs scipy, optax.lbfgs, optimistix"),
    "D": ("sweep", "vmap over 256 learning rates vs 256 sequential calls; traces counted"),
    "E": ("call_overhead", "per-call overhead of jaxgd.minimize vs a cached jitted function"),
    "F": ("fit_mlp", "jaxgd.fit epochs/s on the digits MLP vs optax + lax.scan"),
    "G": ("cutest", "CUTEst (sif2jax) problems: solved, evaluations, first call vs scipy/optax/optimistix"),
    "H": ("adjoint", "implicit-adjoint backward pass vs the forward solve, float64 (issue 12)"),
    "I": ("first_call", "first call from fresh processes: where it goes, vs scipy, persistent cache (issue 14)"),
    "J": ("small_loops", "XLA:CPU's one-kernel loops: GD per step by problem size vs the hand-written floor (issue 15)"),
    "K": ("cutest_float32", "float32 CUTEst audit: false successes/failures of lbfgs/bfgs, lbfgs + bounds (issue 13)"),
    "L": ("many_leaves", "parameter trees of many leaves: GD/Adam per step and first call vs optax's fused loop"),
}

# Per-benchmark defaults: (full, quick). None: the module picks.
DEFAULTS: dict[str, dict[str, tuple[Any, Any]]] = {
    "A": {"steps": (10_000, 2_000), "py_steps": (1_000, 200), "d": ("2,100", "2,100")},
    "B": {"steps": (100, 20), "py_steps": (10, 3), "n": (200_000, 20_000), "d": ("128", "128")},
    "C": {"d": ("100,1000", "100"), "budget": (120.0, 20.0)},
    "D": {"steps": (2_000, 500), "runs": (256, 32), "seq_runs": (None, None), "d": ("10", "10")},
    "E": {"steps": (10, 10), "calls": (200, 50)},
    "F": {"epochs": (50, 5)},
    "I": {"procs": (5, 2), "d": ("10,1000", "10"), "methods": ("lbfgs,bfgs,gd,adam", "lbfgs,gd"),
          "dtypes": ("float64,float32", "float64"), "budget": (120.0, 20.0)},
    "J": {"steps": (16_384, 2_048)},
    "L": {"steps": (500, 100), "d": ("1,10,40", "1,10")},
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description="jaxgd's benchmark suite: ratio tables vs the loops users write.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="benchmarks:\n" + "\n".join(f"  {k}  {d}" for k, (_, d) in BENCHMARKS.items()),
    )
    p.add_argument("--quick", action="store_true", help="smoke run: small sizes, few steps (still >= 5 repeats)")
    p.add_argument("--only", default=None, help="comma-separated benchmarks to run, e.g. A,B (default: all)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per contender (>= 5; default 7, quick 5)")
    p.add_argument("--steps", type=int, default=None, help="steps per run (A: 10,000, B: 100, D: 2,000, E: 10, J: 16,384, L: 500)")
    p.add_argument("--py-steps", type=int, default=None, help="steps of the Python-loop / NumPy baselines (A, B)")
    p.add_argument("--n", type=int, default=None, help="B: examples (rows of X), default 200,000")
    p.add_argument("--d", default=None, help="A: dimensions '2,100'; B: features (128); C: '100,1000'; D: 10; "
                   "I: '10,1000' (quick: 10); L: leaf counts '1,10,40'")
    p.add_argument("--runs", type=int, default=None, help="D: learning rates swept (default 256)")
    p.add_argument("--seq-runs", type=int, default=None,
                   help="D: sequential calls actually timed (default: all runs; fewer are extrapolated per run)")
    p.add_argument("--calls", type=int, default=None, help="E: calls per timed sample (default 200)")
    p.add_argument("--epochs", type=int, default=None, help="F: epochs per fit (default 50)")
    p.add_argument("--budget", type=float, default=None,
                   help="C: seconds of repeats one contender may take (default 120, quick 20); "
                        "a slower one gets fewer repeats and its row says so. I: seconds one scipy solve may run "
                        "(default 120, quick 20); a slower one is stopped, not repeated, and its row says so")
    p.add_argument("--procs", type=int, default=None, help="I: fresh processes per measurement (default 5, quick 2)")
    p.add_argument("--methods", default=None, help="I: methods 'lbfgs,bfgs,gd,adam' (quick: 'lbfgs,gd')")
    p.add_argument("--dtypes", default=None, help="I: 'float64,float32' (quick: 'float64')")
    p.add_argument("--out", default=None,
                   help="also write each table to OUT/bench_<key>.md, plus bench_header_<keys>.md and bench_summary_<keys>.md")
    p.add_argument("--inline", action="store_true", help="run all benchmarks in this process")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed or a benchmark fails (raises, or its process dies)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--summary-file", default=None, help=argparse.SUPPRESS)
    return p


def options_for(key: str, args: argparse.Namespace) -> argparse.Namespace:
    """The options one benchmark sees: command-line values over its defaults."""
    opts = argparse.Namespace(**vars(args))
    opts.repeats = max(5, args.repeats or (5 if args.quick else 7))
    for name, (full, quick) in DEFAULTS.get(key, {}).items():
        if getattr(args, name, None) is None:
            setattr(opts, name, quick if args.quick else full)
    for name in ("steps", "py_steps", "n", "runs", "seq_runs", "calls", "epochs", "d", "budget", "procs", "methods",
                 "dtypes"):
        if not hasattr(opts, name):
            setattr(opts, name, None)
    return opts


def selected(args: argparse.Namespace) -> list[str]:
    if not args.only:
        return list(BENCHMARKS)
    keys = [k.strip().upper() for k in args.only.split(",") if k.strip()]
    bad = [k for k in keys if k not in BENCHMARKS]
    if bad:
        raise SystemExit(f"benchmarks: unknown benchmark(s) {', '.join(bad)}; choose from {', '.join(BENCHMARKS)}")
    return keys


def run_here(key: str, args: argparse.Namespace) -> list[dict]:
    """Run one benchmark in this process; print (and write) its tables."""
    from . import _util as U

    module, _ = BENCHMARKS[key]
    mod = importlib.import_module(f"benchmarks.{module}")
    t0 = time.perf_counter()
    try:
        reports = mod.run(options_for(key, args))
    except Exception as e:  # one failing benchmark must not hide the others
        import traceback

        traceback.print_exc()
        reports = [U.skipped(key, BENCHMARKS[key][1], f"failed with {type(e).__name__}: {e}", failed=True)]
    text = "\n".join(r.markdown() for r in reports) + f"\n_{key}: {time.perf_counter() - t0:.1f} s_\n"
    print(text, flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"bench_{key}.md").write_text(text)
    return [r.summary() for r in reports]


def _forwarded(argv: list[str]) -> list[str]:
    """The command line minus what the parent alone handles."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--only", "--child", "--summary-file"):
            skip = True
            continue
        if a.startswith(("--only=", "--child=", "--summary-file=")) or a in ("--inline", "--strict"):
            continue
        out.append(a)
    return out


def run_child(key: str, argv: list[str]) -> list[dict]:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        cmd = [sys.executable, "-m", "benchmarks.run", "--child", key, "--summary-file", str(summary), *_forwarded(argv)]
        proc = subprocess.run(cmd, env=env, cwd=str(ROOT))
        if summary.exists():
            return json.loads(summary.read_text())
        from . import _util as U

        reason = f"its process exited with code {proc.returncode}"
        report = U.skipped(key, BENCHMARKS[key][1], reason, failed=True)
        print(report.markdown(), flush=True)
        return [report.summary()]


def summarize(results: list[dict]) -> tuple[str, bool]:
    lines = ["## Summary", ""]
    all_met = True
    for r in results:
        if r["skipped"]:
            all_met &= not r.get("failed", False)
            lines.append(f"- {r['key']} ({r['title']}): {'**FAILED**' if r.get('failed') else 'skipped'} ({r['skipped']})")
            continue
        for t in r["targets"]:
            mark = {True: "MET", False: "MISSED", None: "not measured"}[t["met"]]
            all_met &= t["met"] is not False
            lines.append(f"- {r['key']} ({r['title']}): {t['text']}: **{mark}**" + (f" ({t['detail']})" if t["detail"] else ""))
    return "\n".join(lines) + "\n", all_met


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point (``python -m benchmarks`` and ``python -m benchmarks.run``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.child:
        results = run_here(args.child, args)
        if args.summary_file:
            Path(args.summary_file).write_text(json.dumps(results))
        return 0

    from . import _util as U

    keys = selected(args)
    if args.inline:
        mode = "all benchmarks inline in one process"
    else:
        mode = "each benchmark in its own process, OPENBLAS_NUM_THREADS=" + os.environ.get("OPENBLAS_NUM_THREADS", "1")
    head = U.header(mode + (" (--quick: smoke-run sizes, too small to judge the targets)" if args.quick else ""))
    print(head, flush=True)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"bench_header_{''.join(keys)}.md").write_text(head)
    results: list[dict] = []
    for key in keys:
        results += run_here(key, args) if args.inline else run_child(key, argv)
    text, all_met = summarize(results)
    print(text, flush=True)
    if args.out:
        (Path(args.out) / f"bench_summary_{''.join(keys)}.md").write_text(text)
    return 1 if args.strict and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
