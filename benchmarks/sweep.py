"""D. A learning-rate sweep: ``jax.vmap`` over ``jaxgd.minimize`` vs sequential calls.

Chained Rosenbrock (d-D, float32) from the classic start, GD, ``runs``
learning rates log-spaced in [1e-5, 2e-4], ``steps`` steps each (``gtol=0``),
history on. The vmapped sweep is ``jax.jit(jax.vmap(one))`` with ``one(lr) =
jaxgd.minimize(loss, x0, lr=lr, ...)``: ``lr`` is a traced leaf, so the
whole sweep is one compiled program. The sequential sweep calls
``jaxgd.minimize`` once per learning rate (a Python float, so every call
after the first re-uses the compiled loop); with ``--seq-runs`` fewer than
``runs`` calls are timed and the per-run cost is extrapolated.

Two hand-fused vmapped ``fori_loop`` rows give the scale: GD alone (no
tests, no history: the ceiling issue 15's D target divides by), and GD with
the tests every ``minimize`` step makes and its history, written the direct
way (the floor of the same work on this backend; issue 15 asks for it where
a target is out of reach).

The compiled rows are timed interleaved with each other and the sequential
calls apart (a compiled sweep right after Python-level calls reads slower:
XLA's thread pool wakes up). Traces are counted twice: a counter in the loss function (Python executions
of the loss: each trace of a jaxgd loop runs it for the shape check, ``init``
and the loop body) and a counter in ``one`` (traces of the vmapped program).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _util as U

TITLE = "Learning-rate sweep: vmap over jaxgd.minimize vs sequential calls"


def run(opts: Any) -> list[U.Report]:
    import jax
    import jax.numpy as jnp

    import jaxgd

    d = U.parse_sizes(opts.d, [10])[0]
    runs, steps = opts.runs, opts.steps
    seq_runs = min(opts.seq_runs or runs, runs)
    lrs_np = np.logspace(-5, np.log10(2e-4), runs).astype(np.float32)
    lrs = jnp.asarray(lrs_np)
    x0 = jnp.asarray(U.rosenbrock_start(d, np.float32))
    loss_traces = [0]
    program_traces = [0]

    def loss(x: Any) -> Any:
        loss_traces[0] += 1
        return U.rosenbrock(x)

    def minimize(lr: Any, history: bool) -> Any:
        return jaxgd.minimize(loss, x0, lr=lr, max_steps=steps, gtol=0.0, history=history, progress=False)

    def one(lr: Any) -> Any:  # the default: history on
        program_traces[0] += 1
        return minimize(lr, True)

    sweeps = {True: jax.jit(jax.vmap(one)), False: jax.jit(jax.vmap(lambda lr: minimize(lr, False)))}

    def fused_one(lr: Any) -> Any:  # the ceiling: GD only, no tests, no history
        return jax.lax.fori_loop(0, steps, lambda i, x: x - lr * jax.grad(U.rosenbrock)(x), x0)

    fused = jax.jit(jax.vmap(fused_one))

    def same_work_one(lr: Any) -> Any:  # the floor of the same work (U.same_work), GD
        return U.same_work(jax.value_and_grad(U.rosenbrock), x0, lambda x, s, g: (x - lr * g, s), (), steps, lr,
                           dynamic_exit=False)

    same_work = jax.jit(jax.vmap(same_work_one))

    def sequential(history: bool) -> Callable[[], list]:
        return lambda: [minimize(float(lr), history) for lr in lrs_np[:seq_runs]]

    # first calls of the default path, with the trace counts around them
    first_v, vres = U.timed(lambda: sweeps[True](lrs))
    traces_v_first, prog_v_first = loss_traces[0], program_traces[0]
    first_s, _ = U.timed(lambda: minimize(float(lrs_np[0]), True))
    traces_s_first = loss_traces[0] - traces_v_first
    U.block(sweeps[False](lrs))
    U.block(minimize(float(lrs_np[0]), False))
    before = (loss_traces[0], program_traces[0])
    names = {
        ("vmap", True): f"jax.jit(jax.vmap(minimize)), {runs} runs at once, history on (default)",
        ("seq", True): f"{seq_runs} sequential jaxgd.minimize calls, history on",
        ("vmap", False): f"jax.jit(jax.vmap(minimize)), {runs} runs at once, history off",
        ("seq", False): f"{seq_runs} sequential jaxgd.minimize calls, history off",
    }
    fns: dict[Any, Callable[[], Any]] = {}
    for h in (True, False):
        fns[("vmap", h)] = lambda h=h: sweeps[h](lrs)
        fns[("seq", h)] = sequential(h)
    fns["fused"] = lambda: fused(lrs)
    fns["same"] = lambda: same_work(lrs)
    # the compiled sweeps interleaved with each other, the Python-level sequential calls apart: run next to those,
    # a vmapped minimize (kernels scheduled on XLA's thread pool) read 1.39x slower at the median, the one-kernel
    # GD loop 1.15x, with the same least times (benchmarks/RESULTS.md, session 52)
    seq = lambda k: isinstance(k, tuple) and k[0] == "seq"  # noqa: E731
    t = U.measure({k: f for k, f in fns.items() if not seq(k)}, opts.repeats)
    t.update(U.measure({k: f for k, f in fns.items() if seq(k)}, opts.repeats))
    retraces_loss, retraces_prog = loss_traces[0] - before[0], program_traces[0] - before[1]
    # the same answers: vmapped run i == sequential call i
    vparams = np.asarray(vres.params)
    diffs = [float(np.max(np.abs(vparams[i] - np.asarray(r.params)))) for i, r in enumerate(t[("seq", True)].value)]
    per = {k: t[k].median / (seq_runs if k[0] == "seq" else runs) for k in names}
    rows = []
    for k, name in names.items():
        h = k[1]
        if k[0] == "vmap":
            ratio = U.fmt_ratio(per[("seq", h)] / per[k]) + " faster than sequential"
            traces = f"{traces_v_first} (program traces: {prog_v_first})" if h else ""
        else:
            ratio = ""
            traces = f"{traces_s_first} on the first call" if h else ""
            if seq_runs < runs:
                name += f" (of {runs}; per-run cost extrapolated)"
        extra = "—"
        if k == ("vmap", True):
            extra = U.fmt_time(first_v - t[k].median)
        elif k == ("seq", True):
            extra = U.fmt_time(first_s - per[k])
        rows.append([name, f"{seq_runs if k[0] == 'seq' else runs:,}", U.fmt_time(t[k].median), U.fmt_us(per[k]),
                     ratio, extra, traces, f"{t[k].spread:.0%}"])
    rows.append(["hand-fused vmapped fori_loop (GD only: no tests, no history), for scale", f"{runs:,}",
                 U.fmt_time(t["fused"].median), U.fmt_us(t["fused"].median / runs),
                 U.fmt_ratio(per[("seq", True)] / (t["fused"].median / runs)) + " faster than sequential (history on)",
                 U.fmt_time(t["fused"].compile), "", f"{t['fused'].spread:.0%}"])
    rows.append(["hand-fused vmapped fori_loop with minimize's per-step tests and history (the floor of the same work)",
                 f"{runs:,}", U.fmt_time(t["same"].median), U.fmt_us(t["same"].median / runs),
                 f"jaxgd history on / this: {t[('vmap', True)].median / t['same'].median:.2f}×; "
                 f"this / GD only: {t['same'].median / t['fused'].median:.2f}×",
                 U.fmt_time(t["same"].compile), "", f"{t['same'].spread:.0%}"])
    status = np.asarray(vres.status)
    report = U.Report(
        key="D",
        title=f"{TITLE}: {runs} learning rates × {steps:,} steps, Rosenbrock {d}-D, float32",
        columns=["contender", "runs timed", "median", "µs per run", "vmap speed-up", "first-call extra",
                 "loss-function traces", "spread"],
        rows=rows,
        label=f"sweep {runs} x {steps}",
    )
    one_trace = prog_v_first == 1 and retraces_prog == 0 and retraces_loss == 0
    on = per[("seq", True)] / per[("vmap", True)]
    off = per[("seq", False)] / per[("vmap", False)]
    fused_run = t["fused"].median / runs
    report.targets = [
        U.Target("issue 15: jax.jit(jax.vmap(minimize)) (history on) ≤ 3× the hand-fused vmapped fori_loop (goal 1.5×)",
                 per[("vmap", True)] <= 3 * fused_run,
                 f"{per[('vmap', True)] / fused_run:.2f}×; history off {per[('vmap', False)] / fused_run:.2f}×"),
        U.Target("issue 6: vmap ≥ 20× faster per run than sequential calls (history on, the default)", on >= 20,
                 f"{on:.1f}×; history off {off:.1f}×"),
        U.Target(
            "exactly one trace of the vmapped sweep; no retrace on repeated sweeps or sequential calls after the first",
            one_trace,
            f"program traces {prog_v_first}, later loss traces {retraces_loss}, later program traces {retraces_prog}",
        ),
    ]
    report.notes = [
        f"After the first calls, {opts.repeats} timed repeats of every row ran {retraces_loss} further loss traces. "
        f"Runs by status: {dict(zip(*np.unique([jaxgd.Status(int(s)).name for s in status], return_counts=True)))}; "
        f"largest |vmapped − sequential| parameter difference over the {len(diffs)} compared runs: {max(diffs):.3g}.",
        "A first call executes the loss a few times in Python while tracing (the shape check, init and the loop "
        "body; under vmap also the batched loop's init and step); a re-used compiled loop executes it 0 times.",
        "Under vmap, minimize runs its own batched loop (jaxgd/_batched.py): plain vmap of the while loop selected "
        "every loop-carried buffer each step, copying the runs × max_steps history buffers at every step.",
        "The compiled rows are timed interleaved with each other, the sequential rows in a round of their own (same "
        "process): a compiled sweep run right after Python-level calls pays for waking XLA's thread pool.",
    ]
    return [report]
