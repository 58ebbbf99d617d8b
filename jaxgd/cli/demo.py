"""``jaxgd demo``: fit the built-in problems with several methods and schedules.

Prints a table (problem, method, schedule, steps, final loss, gradient norm,
times, status), under it each real-data row's check against its trusted
reference, and writes a loss-curve PNG whose path it prints. Times: the
first call as a script makes it (``lbfgs``/``bfgs``: the host tier, which
compiles only ``value_and_grad``; the others: compile + run), then the fused
loop's compile and its run, apart.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import numpy as np
import optax

from .. import problems

from .. import schedules
from ..directions.registry import names as method_names
from ..core.minimize import minimize
from ..core.solver import Solver
from ..host import tier as _host_tier
from ..core.status import Result


class Row(NamedTuple):
    problem: str
    method: str
    schedule: str
    steps: str
    loss: Optional[float]  # None: the row did not run (shown as "-")
    grad_norm: str
    first_s: str
    compile_s: str
    run_s: str
    status: str
    reference: str = ""  # a real-data row's check against its trusted reference (a note under the table)


class Run(NamedTuple):
    method: str
    schedule: str
    lr: Any
    max_steps: int


def synthetic_runs() -> list[tuple[Any, list[Run]]]:
    """The first demo: the source article's quadratic and a least-squares fit."""
    quad = problems.quadratic_norm(d=5, seed=0)
    lin = problems.linear_regression(n=500, d=8, seed=0)
    quad_runs = [
        Run("gd", "constant 1e-3", 1e-3, 2000),
        Run("gd", "exponential_decay", optax.exponential_decay(5e-3, 200, 0.5), 2000),
        Run("momentum", "constant 1e-3", 1e-3, 2000),
        Run("adam", "cosine_decay", optax.cosine_decay_schedule(0.1, 2000), 2000),
        Run("bfgs", "Moré-Thuente", None, 200),
    ]
    lin_runs = [
        Run("gd", "constant 0.1", 0.1, 2000),
        Run("nesterov", "step_decay", schedules.step_decay(0.05, 500, 0.5), 2000),
        Run("adam", "constant 0.05", 0.05, 2000),
        Run("rmsprop", "cyclic_triangular", schedules.cyclic_triangular(1e-3, 1e-2, 100), 2000),
        Run("lbfgs", "Moré-Thuente", None, 200),
    ]
    return [(quad, quad_runs), (lin, lin_runs)]


def _timed(fn: Callable[[], Result]) -> tuple[Result, float]:
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t0


def fit_rows(problem: Any, runs: list[Run], progress: bool) -> tuple[list[Row], dict[str, np.ndarray]]:
    """Run each method on ``problem``; return table rows and loss curves."""
    rows, curves = [], {}
    available = set(method_names())
    for r in runs:
        if r.method not in available:
            continue
        call = lambda bar, tier=None: minimize(  # noqa: E731
            problem.fun, problem.x0, problem.args, method=r.method, lr=r.lr, max_steps=r.max_steps,
            gtol=1e-6, progress=bar, tier=tier,
        )
        if progress:  # show the run; its bar makes it a different compiled loop, so it is not timed
            call(True)
        # minimize's default: a first lbfgs/bfgs call runs on the host tier (jaxgd.host), the others compile
        solver = Solver(problem.fun, r.method, r.lr, max_steps=r.max_steps, gtol=1e-6)
        on_host = _host_tier.unsupported(solver, problem.x0) is None and _host_tier.prefers_host(solver, problem.x0)
        first, t_first = _timed(lambda: call(False))
        if on_host:  # the fused loop: compile + run, then the cached compiled loop
            _, t_compile = _timed(lambda: call(False, "compiled"))
        again, t_run = _timed(lambda: call(False, "compiled"))
        compile_s = max((t_compile if on_host else t_first) - t_run, 0.0)
        rows.append(
            Row(problem.name, r.method, r.schedule, str(int(again.steps)), float(again.loss),
                f"{float(again.grad_norm):.2e}", f"{t_first:.3f}" + (" (host)" if on_host else ""),
                f"{compile_s:.2f}", f"{t_run:.4f}", again.status_enum.name)
        )
        curves[f"{r.method} ({r.schedule})"] = np.asarray(again.history.loss)
    return rows, curves


def real_row(r: dict) -> Row:
    """A table row from one of ``demo_real.real_data_rows``'s rows (a skipped row: its status, "-" elsewhere)."""
    if r["status"].startswith("skipped"):
        return Row(r["problem"], "-", "-", "-", None, "-", "-", "-", "-", r["status"])
    quality = f"acc {r['accuracy']:.3f}" if r.get("accuracy") is not None else (
        f"{r['grad_norm']:.2e}" if r.get("grad_norm") is not None else "-")
    loss = float(r["loss"]) if r.get("loss") is not None else float("nan")
    return Row(r["problem"], r["method"], r["schedule"], r.get("budget") or f"{r['epochs']} epochs", loss, quality,
               "-", "-", f"{r['time']:.2f}*", r["status"], r.get("reference") or "")


def real_rows(progress: bool) -> tuple[list[Row], dict[str, np.ndarray]]:
    """The real-data fits (``jaxgd.fit`` on data sets shipped with scikit-learn; skipped rows without it)."""
    from .demo_real import curves, real_data_rows

    raw = real_data_rows(progress)
    return [real_row(r) for r in raw], curves(raw)


def format_table(rows: list[Any]) -> str:
    """A markdown table of demo rows."""
    head = ["problem", "method", "schedule", "steps", "final loss", "grad norm / acc", "first call s", "compile s",
            "run s", "status"]
    body = [
        [r.problem, r.method, r.schedule, r.steps, "-" if r.loss is None else f"{r.loss:.6g}", r.grad_norm, r.first_s,
         r.compile_s, r.run_s, r.status]
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def format_references(rows: list[Any]) -> str:
    """The rows' checks against their trusted references, one line each ("" when no row has one)."""
    checked = [r for r in rows if r.reference]
    if not checked:
        return ""
    width = max(len(r.problem) for r in checked)
    return "\n".join(["checked against a trusted reference:",
                      *(f"  {r.problem:<{width}}  {r.reference}" for r in checked)])


def save_curves(panels: dict[str, dict[str, np.ndarray]], path: str) -> Optional[str]:
    """One log-scale panel of loss curves per problem; returns the path (None without matplotlib).

    Synthetic problems show ``loss - best loss`` per step; the real-data panel
    shows the per-epoch training loss of each fit and, for the hypergradient row
    (an outer ``minimize``), its validation loss per step.
    """
    from .. import plot

    try:
        fig, axes = plot.subplots(1, len(panels), figsize=(6 * len(panels), 4.5))
    except ImportError as e:
        print(f"no PNG: {e}")
        return None
    for ax, (name, curves) in zip(np.atleast_1d(axes), panels.items()):
        if name == REAL:
            # (fit rows: training loss per epoch; the l2-by-hypergradient row: validation loss per outer step)
            plot.compare(curves, ax, title="real data: loss per epoch (fit) or step (hypergradient)")
            ax.set_xlabel("epoch or step")
            continue
        floor = min((np.nanmin(c) for c in curves.values() if len(c)), default=0.0)
        plot.compare({k: np.maximum(c - floor, 1e-16) for k, c in curves.items()}, ax, title=name)
        ax.set_ylabel("loss - best loss")
    return str(plot.save(fig, path))


REAL = "real data"


def run_demo(out: str = "out", progress: bool = True, quick: bool = False) -> int:
    """The ``jaxgd demo`` command; returns the exit code."""
    all_rows, panels = [], {}
    for problem, runs in synthetic_runs():
        rows, curves = fit_rows(problem, runs, progress)
        all_rows += rows
        panels[problem.name] = curves
    if not quick:
        rows, curves = real_rows(progress)
        all_rows += rows
        if curves:
            panels[REAL] = curves
    print()
    print(format_table(all_rows))
    if any(r.run_s.endswith("*") for r in all_rows):  # (the real-data rows that ran)
        print("* real-data rows: jaxgd.fit minibatch training (the l2-by-hypergradient row: an outer "
              "jaxgd.minimize over log l2), time includes compilation")
    references = format_references(all_rows)
    if references:
        print("\n" + references)
    path = save_curves(panels, os.path.join(out, "loss_curves.png"))
    if path:
        print(f"\nloss curves written to {path}")
    return 0
