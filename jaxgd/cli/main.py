"""The ``jaxgd`` command: ``demo``, ``check`` and ``cache``.

Every sub-command works from an installed wheel. The benchmark suite needs
the baselines and the ``benchmarks/`` folder of a source checkout, so it is
run from there (``make bench`` or ``python -m benchmarks``), not from here.
``demo`` and ``check`` use JAX's persistent compilation cache
(:func:`jaxgd.enable_compilation_cache`) unless ``--no-compile-cache`` is given.
"""

from __future__ import annotations

import argparse
import os
from typing import Optional


def _cache(clear: bool) -> int:
    """``jaxgd cache [--clear]``: print the cache's folder and size; empty it."""
    from .. import _compile_cache

    path = _compile_cache._check_path(None)
    if clear:
        freed = _compile_cache.clear_compilation_cache(path)
        print(f"cleared {path}: {_compile_cache._size(freed)} freed")
        return 0
    print(_compile_cache.folder_summary(path))  # (read only: turning the cache on wrote its access-time files)
    return 0


def out_folder(path: str) -> str:
    """``argparse``'s ``type=`` for an output folder (``jaxgd demo --out``, the examples' ``--out``).

    Refuses, while the command line is parsed and so before any work, a path
    that is a file or lies under one (it would be found when the plot is
    written, at the end of the run); a folder that does not exist yet is made
    then.

    Raises:
      argparse.ArgumentTypeError: the path or a folder above it is a file.
    """
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.path.isdir(probe):
        return path
    if probe == os.path.abspath(path):
        raise argparse.ArgumentTypeError(f"must name a folder, but {path!r} is a file")
    raise argparse.ArgumentTypeError(f"must name a folder, but {probe!r}, above it, is a file")


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the ``jaxgd`` command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="jaxgd", description="Fast, trustworthy minimisation of JAX losses.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="fit the built-in problems; print a table and write a loss-curve PNG")
    demo.add_argument(
        "--out", default="out", type=out_folder, metavar="DIR",
        help="folder to write loss_curves.png into (default: out)",
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    demo.add_argument("--quick", action="store_true", help="the synthetic problems only (no real data sets)")

    check = sub.add_parser("check", help="cross-check every built-in gradient: JAX vs NumPy vs finite differences")
    from . import check as _check_cmd

    _check_cmd.add_arguments(check)

    cache = sub.add_parser("cache", help="show the persistent compilation cache's folder and size, or clear it")
    cache.add_argument("--clear", action="store_true", help="delete the cached executables")
    for p in (demo, check):
        p.add_argument(
            "--no-compile-cache", action="store_true",
            help="do not use the persistent compilation cache (on by default: a second run skips XLA's compile)",
        )

    args = parser.parse_args(argv)
    from .. import _compile_cache

    try:  # (a cache folder that names a file: $JAXGD_CACHE_DIR set to one)
        if args.command == "cache":
            return _cache(args.clear)
        if not args.no_compile_cache:
            _compile_cache.enable_compilation_cache()
    except ValueError as err:
        parser.error(str(err))
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(out=args.out, progress=not args.no_progress, quick=args.quick)
    return int(_check_cmd.run(args))
