"""``jaxgd check``: cross-check every built-in problem's gradient.

For each problem of :func:`jaxgd.problems.all_problems` and each of several
seeded random points, :func:`jaxgd.check_grad` compares ``jax.grad`` with the
hand-written NumPy gradient and with float64 central differences. The command
prints one summary row per problem and pair of gradients and exits non-zero on
any mismatch. ``--article`` also checks the two gradients the source article
wrote by hand, beside the correct ones (README section "The article's gradients, checked").

The CLI dispatcher calls :func:`add_arguments` and :func:`run`; :func:`main`
runs the subcommand on its own (tests, ``python -m jaxgd.cli.check``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import problems
from ..gradcheck.check import GradCheck, LeafCheck, _x64, check_grad, format_table

__all__ = ["add_arguments", "main", "run"]

DESCRIPTION = (
    "Cross-check the gradient of every built-in problem: jax.grad vs the hand-written NumPy "
    "gradient vs central finite differences in float64, at several seeded random points. "
    "Exit status 0 when every check passes, 1 otherwise."
)
ARTICLE_HELP = (
    "also check the source article's hand-written gradients: d/dx (x.x - 10)^2 given as 2*(x.x), and "
    "d/dtheta (y - x.theta)^2 given as 2(x - y*x^T), each beside the correct formula. The article's "
    "formulas are expected to FAIL and the correct ones to PASS; with --article the exit status is 0 "
    "when every built-in problem passes and every article row meets its expectation, 1 otherwise."
)
MSG_POSITIVE = "{name} must be a positive integer; got {value}"

SUMMARY_HEADERS = ("problem", "compare", "checks", "max abs err", "max rel err", "err/tol", "worst at", "verdict")
ARTICLE_HEADERS = ("loss", "gradient", "source", "points failed", "max rel err", "ref at worst", "fd at worst", "verdict", "expected")


class ArticleCase(NamedTuple):
    """One hand-written gradient from the article, or its correction."""

    loss: str
    gradient: str
    source: str  # "article" or "correct"
    fun: Callable[..., jax.Array]
    reference: Callable[..., Any]
    points: Callable[[np.random.Generator], tuple[Any, tuple[Any, ...]]]
    expect_pass: bool


MSG_NONNEG = "{name} must be a non-negative integer; got {value}"


def _integer(text: str, least: int, message: str) -> int:
    """An argparse ``type``: ``text`` as an ``int`` of at least ``least``, else argparse's usage error
    (exit status 2, as for any bad argument) with ``message``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(message.format(name="value", value=repr(text))) from None
    if value < least:
        raise argparse.ArgumentTypeError(message.format(name="value", value=value))
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1, MSG_POSITIVE)


def _nonneg_int(text: str) -> int:
    return _integer(text, 0, MSG_NONNEG)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``jaxgd check`` options to ``parser``.

    Args:
        parser: the (sub)parser of the ``check`` command.

    Returns:
        None; ``parser`` is modified in place.

    Raises:
        argparse.ArgumentError: if ``parser`` already defines one of the options.
    """
    parser.description = DESCRIPTION
    parser.add_argument("--article", action="store_true", help=ARTICLE_HELP)
    parser.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the data and the random points (default 0)")
    parser.add_argument(
        "--points", type=_positive_int, default=3, help="points per problem: x0 and random perturbations of it (default 3)"
    )
    parser.add_argument(
        "--directions",
        type=_positive_int,
        default=None,
        help="compare along K random directions per leaf instead of every coordinate",
    )
    parser.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="dtype of the parameters jax.grad sees in the built-in problems (finite differences are always "
        "float64, and so are --article's cases; default float64)",
    )
    parser.add_argument(
        "--problem", action="append", choices=problems.PROBLEM_NAMES, default=None, help="check only this problem (repeatable)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every leaf of every check")


def _points(x0: Any, n: int, rng: np.random.Generator) -> list[Any]:
    """``x0`` and ``n - 1`` Gaussian perturbations of it, scaled to each leaf."""

    def perturb(leaf: jax.Array) -> jax.Array:
        a = np.asarray(leaf, dtype=np.float64)
        scale = 0.5 * max(1.0, float(np.max(np.abs(a), initial=0.0)))
        return jnp.asarray(a + scale * rng.standard_normal(a.shape), dtype=leaf.dtype)

    return [x0] + [jax.tree_util.tree_map(perturb, x0) for _ in range(n - 1)]


def _summary(name: str, checks: Sequence[GradCheck]) -> list[list[str]]:
    """One row per compared pair, aggregated over points and leaves (worst row shown)."""
    by_pair: dict[str, list[tuple[int, LeafCheck]]] = {}
    for i, report in enumerate(checks):
        for row in report.rows:
            by_pair.setdefault(row.comparison, []).append((i, row))
    out = []
    for pair, rows in by_pair.items():
        i, worst = max(rows, key=lambda r: r[1].score)
        out.append(
            [
                name,
                pair,
                str(len(rows)),
                f"{max(r.max_abs_err for _, r in rows):.2e}",
                f"{max(r.max_rel_err for _, r in rows):.2e}",
                f"{worst.score:.2g}",
                f"point {i}: {worst.path} {worst.worst}",
                "PASS" if all(r.passed for _, r in rows) else "FAIL",
            ]
        )
    return out


def _article_cases() -> list[ArticleCase]:
    """The article's two hand-written gradients and their corrections."""

    def quartic(x: jax.Array) -> jax.Array:
        return (x * x - 10.0) ** 2

    def quartic_points(rng: np.random.Generator) -> tuple[Any, tuple[Any, ...]]:
        return jnp.asarray(rng.uniform(-4.0, 4.0)), ()

    def squared_error(theta: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
        return (y - x @ theta) ** 2

    def regression_points(rng: np.random.Generator) -> tuple[Any, tuple[Any, ...]]:
        theta, x = rng.standard_normal(3), rng.standard_normal(3)
        return jnp.asarray(theta), (jnp.asarray(x), jnp.asarray(rng.standard_normal()))

    return [
        ArticleCase("(x.x - 10)^2", "2*(x.x)", "article", quartic, lambda x: 2.0 * (x * x), quartic_points, False),
        ArticleCase(
            "(x.x - 10)^2", "4x(x.x - 10)", "correct", quartic, lambda x: 4.0 * x * (x * x - 10.0), quartic_points, True
        ),
        ArticleCase(
            "(y - x.theta)^2",
            "2(x - y*x^T)",
            "article",
            squared_error,
            lambda theta, x, y: 2.0 * (x - y * x),
            regression_points,
            False,
        ),
        ArticleCase(
            "(y - x.theta)^2",
            "-2x(y - x.theta)",
            "correct",
            squared_error,
            lambda theta, x, y: -2.0 * x * (y - x @ theta),
            regression_points,
            True,
        ),
    ]


def _check_article(args: argparse.Namespace) -> tuple[list[list[str]], bool]:
    """Rows of the article table, and whether every row met its expectation."""
    rows, ok = [], True
    for case in _article_cases():
        rng = np.random.default_rng(args.seed)
        reports = []
        for _ in range(args.points):
            x, fargs = case.points(rng)
            reports.append(check_grad(case.fun, x, fargs, reference=case.reference, seed=args.seed))
        ref_fd = [row for r in reports for row in r.rows if row.comparison == "ref~fd"]
        worst = max(ref_fd, key=lambda row: row.score)
        passed = all(reports)
        ok = ok and passed == case.expect_pass
        rows.append(
            [
                case.loss,
                case.gradient,
                case.source,
                f"{sum(not r for r in reports)}/{len(reports)}",
                f"{max(row.max_rel_err for row in ref_fd):.2e}",
                f"{worst.worst_values[0]:.6g}",
                f"{worst.worst_values[1]:.6g}",
                "PASS" if passed else "FAIL",
                "PASS" if case.expect_pass else "FAIL",
            ]
        )
    return rows, ok


def run(args: argparse.Namespace) -> int:
    """Run ``jaxgd check`` with parsed options; print the tables.

    Every check runs inside ``jax.enable_x64`` so that finite differences and
    the NumPy references are float64; ``--dtype float32`` makes the parameters
    (and so ``jax.grad``) float32.

    Args:
        args: the namespace produced by a parser set up with :func:`add_arguments`.

    Returns:
        The exit status: 0 when every check passes (and, with ``--article``, every
        article row meets its expectation), 1 otherwise.

    Raises:
        ValueError: a problem rejects the options (e.g. a bad seed).
    """
    dtype = np.dtype(args.dtype)
    ok = True
    with _x64():
        rows: list[list[str]] = []
        for problem in problems.all_problems(seed=args.seed, dtype=dtype):
            if args.problem and problem.name not in args.problem:
                continue
            rng = np.random.default_rng(args.seed)
            reports = [
                check_grad(
                    problem.fun, x, problem.args, reference=problem.np_grad, directions=args.directions, seed=args.seed
                )
                for x in _points(problem.x0, args.points, rng)
            ]
            ok = ok and all(reports)
            rows.extend(_summary(problem.name, reports))
            if args.verbose:
                for i, report in enumerate(reports):
                    print(f"{problem.name}, point {i}: {report}\n")
        mode = f"{args.directions} random directions per leaf" if args.directions else "every coordinate"
        print(
            f"jaxgd check: jax.grad vs hand-written NumPy gradient (ref) vs central differences in float64 (fd), "
            f"{args.points} points per problem, {mode}, parameters in {dtype.name}, seed {args.seed}"
        )
        print(format_table(SUMMARY_HEADERS, rows))
        print(f"\n{'all gradients agree' if ok else 'MISMATCH: some gradients disagree'}")
        if args.article:
            article_rows, article_ok = _check_article(args)
            print("\nThe article's hand-written gradients (ref) vs jax.grad and finite differences (fd):")
            print(format_table(ARTICLE_HEADERS, article_rows))
            print(
                "\n"
                + (
                    "as expected: the article's formulas FAIL, the corrected ones PASS"
                    if article_ok
                    else "UNEXPECTED: an article row does not match its expected verdict"
                )
            )
            ok = ok and article_ok
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` as ``jaxgd check`` options and run the command.

    Args:
        argv: the options (without the program and subcommand names); ``None``
            reads ``sys.argv[1:]``.

    Returns:
        The exit status of :func:`run`.

    Raises:
        SystemExit: on ``--help`` or invalid options (argparse's behaviour).
    """
    parser = argparse.ArgumentParser(prog="jaxgd check")
    add_arguments(parser)
    return run(parser.parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
