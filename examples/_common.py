"""Shared plumbing for the examples: the command line and the printed report.

Not part of jaxgd. Each example defines ``run(quick, out) -> dict`` (its
numbers, for the test suite) and calls :func:`main` under ``__main__``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

try:  # the public names
    from jaxgd import Remainder, fit
except ImportError:  # a checkout whose jaxgd/__init__.py does not export them yet
    from jaxgd._fit import Remainder, fit

__all__ = ["Remainder", "fit", "main", "report"]


def report(title: str, rows: list[tuple[str, Any]]) -> None:
    """Print ``title`` and aligned ``name: value`` rows."""
    print(title)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"  {name:<{width}}  {text}")


def main(run: Callable[..., dict], description: str) -> dict:
    """Parse ``--quick`` / ``--out`` (``JAXGD_QUICK=1`` also means quick) and call ``run``."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", default=os.environ.get("JAXGD_QUICK", "") not in ("", "0"),
        help="fewer epochs, for the test suite (still meets the stated comparison)",
    )
    parser.add_argument("--out", default="out", help="folder for the plot (default: out/)")
    args = parser.parse_args()
    return run(quick=args.quick, out=args.out)
