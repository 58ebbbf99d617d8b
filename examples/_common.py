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
    from jaxgd.minibatch.fit import Remainder, fit

__all__ = ["Remainder", "classifier", "fit", "main", "report"]


def classifier(logits: Callable[[Any, Any], Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(loss, accuracy)`` over ``batch = (x, y)`` for a model ``logits(params, x)``.

    ``loss`` is the mean softmax cross-entropy, ``accuracy`` the fraction of
    argmax predictions equal to the integer labels ``y``.
    """
    import jax
    import jax.numpy as jnp

    def loss(params: Any, batch: Any) -> Any:
        x, y = batch
        logp = jax.nn.log_softmax(logits(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def accuracy(params: Any, batch: Any) -> Any:
        x, y = batch
        return jnp.mean(jnp.argmax(logits(params, x), axis=1) == y)

    return loss, accuracy


def report(title: str, rows: list[tuple[str, Any]]) -> None:
    """Print ``title`` and aligned ``name: value`` rows."""
    print(title)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"  {name:<{width}}  {text}")


def main(run: Callable[..., dict], description: str) -> dict:
    """Parse ``--quick`` / ``--out`` (``JAXGD_QUICK=1`` also means quick) and call ``run``.

    An ``--out`` that is a file (or lies under one) stops here, with ``jaxgd demo``'s
    message and exit code 2, not after the training when the plot is written.
    """
    from jaxgd.cli.main import out_folder

    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", default=os.environ.get("JAXGD_QUICK", "") not in ("", "0"),
        help="fewer epochs, for the test suite (still meets the stated comparison)",
    )
    parser.add_argument("--out", default="out", type=out_folder, help="folder for the plot (default: out/)")
    args = parser.parse_args()
    return run(quick=args.quick, out=args.out)
