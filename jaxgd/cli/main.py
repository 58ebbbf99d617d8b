"""The ``jaxgd`` command: ``demo``, ``check`` and ``bench``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional


def _bench(argv: list[str]) -> int:
    """Run ``benchmarks.run.main`` from the source checkout the package lives in."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / "run.py").exists():
        print("jaxgd bench: the benchmarks/ folder of a source checkout is needed", file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.run import main as bench_main

    return int(bench_main(argv) or 0)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the ``jaxgd`` command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="jaxgd", description="Fast, trustworthy minimisation of JAX losses.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="fit the built-in problems; print a table and write a loss-curve PNG")
    demo.add_argument(
        "--out", default="out", metavar="DIR", help="folder to write loss_curves.png into (default: out)"
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    demo.add_argument("--quick", action="store_true", help="the synthetic problems only (no real data sets)")

    check = sub.add_parser("check", help="cross-check every built-in gradient: JAX vs NumPy vs finite differences")
    from . import check as _check_cmd

    _check_cmd.add_arguments(check)

    sub.add_parser("bench", help="run the benchmark suite (arguments after 'bench' go to it)", add_help=False)

    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        return _bench(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(out=args.out, progress=not args.no_progress, quick=args.quick)
    return int(_check_cmd.run(args))
