"""E. Per-call overhead of ``jaxgd.minimize`` on a 10-step problem, after the first call.

The problem is tiny (``sum((x - 3)^2)``, 10-D float32, 10 GD steps, ``gtol=0``)
so the time is almost all overhead. ``jaxgd.minimize`` (history on and off)
is compared with a cached jitted function doing the same 10 steps (the
compiled work, called the way a user calls a jitted function), with
``jax.jit(solver.run)`` on a prebuilt ``jaxgd.Solver`` (jaxgd's loop without
``minimize``'s host work), with an empty jitted function (the dispatch floor)
and with ``optimistix.minimise`` called directly; and minimize's own compiled run called
alone, as a repeated call calls it (``jaxgd.core.minimize_run.Repeat``), which splits a call
into its compiled run and minimize's host work. Every call is blocked on before the next; each
sample is the mean of ``--calls`` calls.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from . import _util as U

TITLE = "Per-call overhead of jaxgd.minimize (10 steps, 10-D, after the first call)"
LR = 0.1


def quad(x: Any) -> Any:
    import jax.numpy as jnp

    return jnp.sum((x - 3.0) ** 2)


def run(opts: Any) -> list[U.Report]:
    import jax
    import jax.numpy as jnp
    from jax import lax

    import jaxgd

    steps = opts.steps
    same = f"cached jitted function, same {steps} steps (the compiled work)"
    x0 = jnp.zeros(10, jnp.float32)
    vg = jax.value_and_grad(quad)

    @jax.jit
    def cached(x: Any, lr: Any) -> Any:
        def body(i: Any, c: Any) -> Any:
            x, _ = c
            v, g = vg(x)
            return x - lr * g, v

        return lax.fori_loop(0, steps, body, (x, jnp.zeros((), x.dtype)))

    solver = jaxgd.Solver(quad, "gd", LR, max_steps=steps, gtol=0.0)
    solver_run = jax.jit(lambda s, x: s.run(x))
    noop = jax.jit(lambda x: x)

    def blocked(fn: Callable[[], Any]) -> Callable[[], Any]:
        return lambda: U.block(fn())

    fns: dict[str, Callable[[], Any]] = {
        "jaxgd.minimize, history on": blocked(lambda: jaxgd.minimize(quad, x0, lr=LR, max_steps=steps, gtol=0.0)),
        "jaxgd.minimize, history off": blocked(
            lambda: jaxgd.minimize(quad, x0, lr=LR, max_steps=steps, gtol=0.0, history=False)
        ),
        same: blocked(lambda: cached(x0, LR)),
        "jax.jit(solver.run) on a prebuilt jaxgd.Solver": blocked(lambda: solver_run(solver, x0)),
        "empty jitted function (dispatch floor)": blocked(lambda: noop(x0)),
    }
    if U.have("optimistix"):
        import optimistix as optx

        gd = optx.GradientDescent(learning_rate=LR, rtol=0.0, atol=0.0)

        def optx_fn(y: Any, _: Any) -> Any:  # one function object: optimistix caches its compiled loop
            return quad(y)

        fns["optimistix.minimise(GradientDescent), not jitted"] = blocked(
            lambda: optx.minimise(optx_fn, gd, x0, max_steps=steps, throw=False).value
        )
    # minimize's own compiled run, called as a repeated minimize call calls it (its jit, blocked on):
    # what minimize adds on the host is the difference (jaxgd.core.minimize_run.Repeat)
    # (registered by the history-on row's first call, which U.measure makes before this row's)
    from jaxgd.core import minimize_run as _run

    def alone() -> Any:
        repeat = next(iter(_run.REPEATS._entries(quad).values()))
        return repeat.call(repeat.structure, repeat.leaves, x0, ())

    fns["minimize's compiled run alone (history on; its jit, no host work)"] = blocked(alone)
    # what waiting on a Result costs the harness itself (U.block walks its leaves): the rows above
    # pay it after every call, the cached function's row waits on a pair
    # (its Result made once, at this row's first call: after the history-on row's, whose first call it is not)
    done = functools.cache(lambda: jaxgd.minimize(quad, x0, lr=LR, max_steps=steps, gtol=0.0))
    fns["waiting on a finished Result (the harness's U.block, no call)"] = lambda: U.block(done())
    t = U.measure(fns, opts.repeats, inner=opts.calls)
    ref = t[same].median
    rows = []
    for name, tm in t.items():
        rows.append([name, U.fmt_us(tm.median), U.fmt_us(tm.median - ref), U.fmt_ratio(tm.median / ref),
                     U.fmt_time(tm.first), f"{tm.spread:.0%}"])
    over = {k: t[k].median - ref for k in ("jaxgd.minimize, history on", "jaxgd.minimize, history off")}
    res = t["jaxgd.minimize, history on"].value
    report = U.Report(
        key="E",
        title=TITLE.replace("10 steps", f"{steps} steps"),
        columns=["contender", "µs per call", "µs over the compiled work", "× compiled work", "first call", "spread"],
        rows=rows,
        label="minimize per-call overhead",
    )
    report.targets = [
        U.Target("issue 15: a repeated call (history on) costs ≤ 50 µs over the compiled work",
                 over["jaxgd.minimize, history on"] <= 50e-6, f"{over['jaxgd.minimize, history on'] * 1e6:.0f} µs"),
    ] + [
        U.Target(f"issue 6: a repeated call ({k.split(', ')[1]}) costs ≤ 150 µs over the compiled work", v <= 150e-6,
                 f"{v * 1e6:.0f} µs")
        for k, v in over.items()
    ]
    report.notes = [
        f"{opts.calls} blocked calls per sample; result check: {int(res.steps)} steps, loss {float(res.loss):.4g}, "
        f"history length {len(np.asarray(res.history.loss))}."
    ]
    alone_t = t["minimize's compiled run alone (history on; its jit, no host work)"]
    wait = t["waiting on a finished Result (the harness's U.block, no call)"].median
    host = t["jaxgd.minimize, history on"].median - alone_t.median - wait
    report.notes.append(
        f"Where a repeated call's time goes (history on): its compiled run {alone_t.median * 1e6:.0f} µs "
        f"(the jit's dispatch, the program, its 5 outputs) against the hand loop's {ref * 1e6:.0f} µs; "
        f"minimize's host work {host * 1e6:.0f} µs (the repeat's key and lookup, the finite-x0 check, "
        f"building the Result from the outputs); the harness's wait on the Result's leaves {wait * 1e6:.0f} µs "
        "(counted in the call's time above, as every row's wait on its outputs is)."
    )
    return [report]
