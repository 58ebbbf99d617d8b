"""The report of :func:`jaxgd.check_grad`: one :class:`LeafCheck` row per leaf and
pair of gradients, gathered in a :class:`GradCheck` that prints as a table."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["GradCheck", "LeafCheck", "ROW_HEADERS", "format_table", "row_cells"]


class LeafCheck(NamedTuple):
    """One row of a :class:`GradCheck`: one leaf, one pair of gradients.

    Attributes:
        path: the leaf's key path (``jax.tree_util.keystr``), ``"x"`` for a bare array.
        comparison: ``"jax~ref"``, ``"jax~fd"`` or ``"ref~fd"``.
        max_abs_err: largest ``|a - b|`` over the leaf's coordinates (or directions).
        max_rel_err: largest ``|a - b| / max(|a|, |b|)`` (0 where both are 0).
        worst_index: index of the coordinate (or ``(k,)`` of the direction) closest
            to failing, i.e. with the largest ``|a - b| / tolerance``.
        worst_values: ``(a, b)`` at ``worst_index``.
        score: largest ``|a - b| / tolerance``; the row passes when it is <= 1.
        directional: whether the row compares directional derivatives ``vᵀg``.
        passed: ``|a - b| <= atol + rtol·max(|a|, |b|) (+ FD noise)`` everywhere.
        unresolved: a failed row whose worst pair is smaller than the rounding noise (the differences',
            or ``jax.grad``'s in float32: above half of ``max(|a|, |b|)``, all it may excuse): at a
            stationary point of a loss with large terms the pair tests nothing there (``FAIL*`` in the table).
    """

    path: str
    comparison: str
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple[int, ...]
    worst_values: tuple[float, float]
    score: float
    directional: bool
    passed: bool
    unresolved: bool = False

    @property
    def worst(self) -> str:
        """``worst_index`` for people: ``"(2, 1)"``, ``"()"`` or ``"v3"`` for direction 3."""
        if self.directional:
            return f"v{self.worst_index[0]}"
        return "(" + ", ".join(map(str, self.worst_index)) + ("," if len(self.worst_index) == 1 else "") + ")"


@dataclasses.dataclass(frozen=True, repr=False)
class GradCheck:
    """The report of :func:`check_grad`; ``bool(report)`` is the verdict.

    Attributes:
        rows: one row (a ``NamedTuple``) per leaf and compared pair.
        dtype: dtype(s) of ``x``, in which ``jax.grad`` was computed.
        eps: finite-difference step scale.
        rtol, atol: tolerances for comparisons involving the JAX gradient (by default each
            leaf's dtype's; here the loosest over the leaves).
        rtol64, atol64: tolerances for the reference-vs-FD comparison (``fd_dtype``'s).
        directions: number of random directions per leaf, or ``None`` (full FD).
        by_leaf: True where the leaves were compared at different tolerances (their dtypes'
            defaults); ``rtol``/``atol`` are then the loosest.
        fd_dtype: the dtype of the finite differences: float64, or the narrower dtype ``fun``
            computes in whatever it is given (its step, noise and ``ref~fd`` tolerances then that dtype's).
    """

    rows: tuple[LeafCheck, ...]
    dtype: str
    eps: float
    rtol: float
    atol: float
    rtol64: float
    atol64: float
    directions: int | None
    by_leaf: bool = False
    fd_dtype: str = "float64"

    @property
    def passed(self) -> bool:
        """Whether every row passed."""
        return all(row.passed for row in self.rows)

    @property
    def failures(self) -> tuple[LeafCheck, ...]:
        """The rows that failed."""
        return tuple(row for row in self.rows if not row.passed)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:  # the table, in a REPL or notebook too (the dataclass dump was ~1 kB a row)
        return str(self)

    def __str__(self) -> str:
        mode = f"{self.directions} random directions per leaf" if self.directions else "every coordinate"
        fd = self.fd_dtype + ("" if self.fd_dtype == "float64" else " (fun computes in it)")
        head = (
            f"gradient check: {'PASS' if self.passed else 'FAIL'}  (x {self.dtype}; central differences in "
            f"{fd} over {mode}, eps={self.eps:.2g}; {'by leaf dtype, at most ' if self.by_leaf else ''}"
            f"rtol={self.rtol:.2g}, atol={self.atol:.2g}"
            + ("" if (self.rtol, self.atol) == (self.rtol64, self.atol64) else f"; ref~fd rtol={self.rtol64:.2g}, atol={self.atol64:.2g}")
            + ")"
        )
        table = head + "\n" + format_table(ROW_HEADERS, [row_cells(r) for r in self.rows])
        return table + ("\n" + UNRESOLVED if any(r.unresolved for r in self.rows) else "")


UNRESOLVED = (
    "FAIL*: the values compared are below the rounding noise of the finite differences (or of jax.grad in x's "
    "dtype), as near a stationary point of a loss with large terms: such a pair tests nothing; check the "
    "gradient at a point away from the minimum."
)

ROW_HEADERS: tuple[str, ...] = ("leaf", "compare", "max abs err", "max rel err", "err/tol", "worst", "a", "b", "verdict")


def row_cells(row: LeafCheck) -> list[str]:
    """The table cells of one :class:`LeafCheck` (in :data:`ROW_HEADERS` order)."""
    a, b = row.worst_values
    return [
        row.path,
        row.comparison,
        f"{row.max_abs_err:.2e}",
        f"{row.max_rel_err:.2e}",
        f"{row.score:.2g}",
        row.worst,
        f"{a:.6g}",
        f"{b:.6g}",
        "PASS" if row.passed else "FAIL*" if row.unresolved else "FAIL",
    ]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned plain-text table with a dashed rule under the header.

    Args:
        headers: column titles.
        rows: the cells, each row as long as ``headers``.

    Returns:
        The table as one string (no trailing newline).

    Raises:
        ValueError: a row of the wrong length.
    """
    for r in rows:
        if len(r) != len(headers):
            raise ValueError(f"row {list(r)!r} has {len(r)} cells; expected {len(headers)}")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
