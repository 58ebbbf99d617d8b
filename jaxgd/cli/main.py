"""The ``jaxgd`` command: ``demo`` and ``check``.

Every sub-command works from an installed wheel. The benchmark suite needs
the baselines and the ``benchmarks/`` folder of a source checkout, so it is
run from there (``make bench`` or ``python -m benchmarks``), not from here.
"""

from __future__ import annotations

import argparse
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the ``jaxgd`` command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="jaxgd", description="Fast, trustworthy minimisation of JAX losses.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="fit the built-in problems; print a table and write a loss-curve PNG")
    demo.add_argument("--out", default="out", help="folder for the PNG (default: out)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    demo.add_argument("--quick", action="store_true", help="the synthetic problems only (no real data sets)")

    check = sub.add_parser("check", help="cross-check every built-in gradient: JAX vs NumPy vs finite differences")
    from . import check as _check_cmd

    _check_cmd.add_arguments(check)

    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(out=args.out, progress=not args.no_progress, quick=args.quick)
    return int(_check_cmd.run(args))
