"""J. XLA:CPU's one-kernel loops: the per-step cost by problem size (issue 15: where the floor is).

XLA:CPU runs a ``while`` loop in one of two ways. Its small-loop pass
(``SmallWhileLoopHoistingPass``) compiles the whole loop into one kernel when
the loop's body and condition access fewer bytes per iteration than
``xla_cpu_small_while_loop_byte_threshold`` (by XLA's cost model; 1,024 by
default) and hold no ``dot``, convolution, custom call or scatter; every other
loop runs as a loop of kernels, one per fusion, each dispatched by the thunk
runtime. The second way costs tens of nanoseconds a kernel a step, whatever the
kernel does, so the per-step cost of a small problem jumps where its loop
crosses the threshold, for a hand-written loop as for ``jaxgd.minimize``.

This table measures gradient descent on float32 Rosenbrock (history on and
off, ``--steps`` steps) from 2 to 100 parameters, and on a least-squares loss
``mean((X w - y)^2)`` (a ``dot``: never in a one-kernel loop, unless XLA rewrites
it as elementwise work), against
the hand-written loops of benchmark A (the floor of the same work,
``benchmarks._util.same_work``, and the gradient-only ``fori_loop``). "1k" marks
a program whose loop XLA compiled into one kernel (``xla_cpu_small_call`` in
its optimized HLO; for jaxgd the program ``minimize`` runs). Then the
same in a child process started with the threshold raised to 1 MiB
(``XLA_FLAGS=--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=1048576``:
an option of the whole process, read at its first compile; ``jax.jit``'s
``compiler_options`` cannot set it).

    python -m benchmarks --only J         python -m benchmarks.small_loops --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import _util as U

TITLE = "XLA:CPU's one-kernel loops: GD per step by problem size, jaxgd and the hand-written floor"
LR = 2e-4
ROSENBROCK_SIZES = (2, 4, 8, 9, 12, 16, 32, 100)
LSQ_SIZES = (8, 32)
LSQ_ROWS = 64
RAISED = 1 << 20  # the threshold of the child process, bytes
OPTION = "xla_cpu_small_while_loop_byte_threshold"
CONTENDERS = ("jaxgd, history on", "jaxgd, history off", "floor of the same work", "gradient-only fori_loop")


def _least_squares(d: int) -> tuple[Callable[[Any], Any], np.ndarray]:
    """``mean((X w - y)^2)`` with a fixed 64 x d design (a ``dot`` in the loop) and its start."""
    import jax.numpy as jnp

    rng = np.random.default_rng(d)
    X = jnp.asarray(rng.standard_normal((LSQ_ROWS, d)) / np.sqrt(d), jnp.float32)
    y = jnp.asarray(rng.standard_normal(LSQ_ROWS), jnp.float32)
    return (lambda w: jnp.mean((X @ w - y) ** 2)), np.zeros(d, np.float32)


def _one_kernel(fn: Callable[[Any], Any], x0: Any) -> bool:
    """True when XLA compiled the loop of ``jax.jit(fn)`` into one kernel."""
    import jax

    return "xla_cpu_small_call" in jax.jit(fn).lower(x0).compile().as_text()


def _jaxgd_one_kernel(loss: Callable[[Any], Any], x0: Any, steps: int, history: bool) -> bool:
    """True when XLA compiled the loop of the program ``jaxgd.minimize(loss, x0, method="gd", ...)``
    runs (its eager run, with the compiler options jaxgd chose) into one kernel."""
    from jaxgd.core import minimize_run as _run

    plan = _run.Plan(_run.cached_solver(loss, "gd", LR, max_steps=steps, gtol=0.0, history=history, progress=False))
    e = plan.eager()
    args = (e.structure, e.leaves, x0, ())
    return "xla_cpu_small_call" in e.run.chosen(e.limit, args).lower(*args).compile().as_text()


def measure(sizes: dict[str, tuple[int, ...]], steps: int, repeats: int) -> list[dict]:
    """One record per (loss, size, contender): nanoseconds a step and whether the loop is one kernel."""
    import jax
    import optax
    from jax import lax

    import jaxgd

    records = []
    for case, ds in sizes.items():
        for d in ds:
            if case == "rosenbrock":
                loss, start = U.rosenbrock, U.rosenbrock_start(d, np.float32)
            else:
                loss, start = _least_squares(d)
            x0 = jax.numpy.asarray(start)
            opt = optax.sgd(LR)
            grad, vg = jax.grad(loss), jax.value_and_grad(loss)

            def step(x: Any, s: Any, g: Any) -> Any:
                u, s = opt.update(g, s, x)
                return optax.apply_updates(x, u), s

            def fused(x: Any) -> Any:
                return lax.fori_loop(0, steps, lambda i, c: step(c[0], c[1], grad(c[0])), (x, opt.init(x)))[0]

            def floor(x: Any) -> Any:
                return U.same_work(vg, x, step, opt.init(x), steps, LR, dynamic_exit=True)[0]

            def ours(history: bool) -> Callable[[Any], Any]:
                return lambda x: jaxgd.minimize(loss, x, method="gd", lr=LR, max_steps=steps, gtol=0.0,
                                                history=history, progress=False).params

            programs = dict(zip(CONTENDERS, (ours(True), ours(False), floor, fused)))
            jitted = {name: jax.jit(fn) for name, fn in programs.items() if not name.startswith("jaxgd")}
            calls = {name: (lambda name=name: programs[name](x0)) if name.startswith("jaxgd")
                     else (lambda name=name: jitted[name](x0)) for name in programs}
            t = U.measure(calls, repeats)
            for name, fn in programs.items():
                one = (_jaxgd_one_kernel(loss, x0, steps, name == CONTENDERS[0]) if name.startswith("jaxgd")
                       else _one_kernel(fn, x0))
                records.append({"case": case, "d": d, "contender": name, "ns": t[name].median / steps * 1e9,
                                "one_kernel": one})
    return records


def _child(steps: int, repeats: int, sizes: dict) -> Optional[list[dict]]:
    """:func:`measure` in a child process whose XLA_FLAGS raise the threshold to :data:`RAISED`."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_backend_extra_options={OPTION}={RAISED}").strip()
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = [sys.executable, "-m", "benchmarks.small_loops", "--json", "--steps", str(steps), "--repeats", str(repeats),
           "--sizes", json.dumps(sizes)]
    proc = subprocess.run(cmd, env=env, cwd=str(root), capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cell(rec: Optional[dict]) -> str:
    if rec is None:
        return "n/a"
    return f"{rec['ns']:,.0f}" + (" (1k)" if rec["one_kernel"] else "")


def table(here: list[dict], raised: Optional[list[dict]]) -> list[list[str]]:
    def index(records: Optional[list[dict]]) -> dict:
        return {(r["case"], r["d"], r["contender"]): r for r in records or []}

    a, b = index(here), index(raised)
    rows = []
    for case, d in dict.fromkeys((r["case"], r["d"]) for r in here):
        row = [case, str(d)] + [_cell(a.get((case, d, c))) for c in CONTENDERS]
        ours, floor = a[(case, d, CONTENDERS[0])]["ns"], a[(case, d, CONTENDERS[2])]["ns"]
        row.append(U.fmt_ratio(ours / floor))
        for c in (CONTENDERS[0], CONTENDERS[2]):
            row.append(_cell(b.get((case, d, c))))
        hi = [b.get((case, d, c)) for c in (CONTENDERS[0], CONTENDERS[2])]
        row.append(U.fmt_ratio(hi[0]["ns"] / hi[1]["ns"]) if all(hi) else "n/a")
        rows.append(row)
    return rows


def run(opts: Any) -> list[U.Report]:
    steps = opts.steps or (2_048 if opts.quick else 16_384)
    sizes = {"rosenbrock": (2, 9, 16) if opts.quick else ROSENBROCK_SIZES, "least squares": (8,) if opts.quick else LSQ_SIZES}
    here = measure(sizes, steps, opts.repeats)
    raised = _child(steps, opts.repeats, sizes)
    report = U.Report(
        key="J",
        title=f"{TITLE}: float32, {steps:,} steps, ns a step (median)",
        columns=["loss", "parameters", *CONTENDERS, "jaxgd on / floor",
                 f"threshold {RAISED:,} B: jaxgd on", "its floor", "jaxgd on / floor"],
        rows=table(here, raised),
        label="one-kernel loops by size",
    )
    report.notes = [
        "(1k): XLA compiled that program's loop into one kernel. Left of the ratio: XLA's default "
        "threshold (1,024 bytes accessed a step); right: a child process with XLA_FLAGS raising it "
        f"({'not measured: the child failed' if raised is None else 'the whole process: every program in it'}). "
        "A loop holding a dot that XLA keeps as one is never one kernel (XLA rewrites some small products "
        "as elementwise work first).",
    ]
    return [report]


def main(argv: Optional[list[str]] = None) -> int:
    """``--json``: print this process's records as one JSON line (the child of :func:`run`)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.small_loops")
    p.add_argument("--json", action="store_true")
    p.add_argument("--steps", type=int, default=16_384)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--sizes", default=None, help="JSON {loss: [sizes]}")
    a = p.parse_args(argv)
    sizes = {k: tuple(v) for k, v in json.loads(a.sizes).items()} if a.sizes else {
        "rosenbrock": ROSENBROCK_SIZES, "least squares": LSQ_SIZES}
    records = measure(sizes, a.steps, a.repeats)
    if a.json:
        print(json.dumps(records))
    else:
        print(U.Report(key="J", title=TITLE, columns=["loss", "parameters", *CONTENDERS, "jaxgd on / floor",
                                                        "-", "-", "-"], rows=table(records, None)).markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
