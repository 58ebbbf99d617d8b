"""A. Loop overhead: 10,000 steps of GD and Adam on Rosenbrock (float32).

jaxgd (history on and off, progress off, ``gtol=0`` so every step runs)
against the loops a user would write:

- the whole loop hand-fused in one jitted ``lax.fori_loop`` (gradient only);
- the same fused loop also recording loss and gradient norm every step (the
  work ``history=True`` does: the like-for-like baseline);
- a Python loop calling a jitted optax step (fewer steps; µs/step);
- NumPy with a hand-written gradient (fewer steps; µs/step);
- ``optimistix.minimise`` with ``GradientDescent`` / ``OptaxMinimiser(adam)``,
  jitted, ``rtol=atol=0`` so it runs all steps.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _util as U

TITLE = "Loop overhead: Rosenbrock, float32, GD and Adam"
LR = {"gd": 2e-4, "adam": 1e-3}
SAME_WORK = "hand-fused while_loop doing minimize's per-step work (tests, last good point, history): the floor"


def _numpy_loop(method: str, x0: np.ndarray, lr: float, steps: int) -> Callable[[], np.ndarray]:
    def gd() -> np.ndarray:
        x = x0.copy()
        for _ in range(steps):
            _, g = U.rosenbrock_np(x)
            x -= np.float32(lr) * g
        return x

    def adam() -> np.ndarray:  # optax.adam's defaults, by hand
        b1, b2, eps = np.float32(0.9), np.float32(0.999), np.float32(1e-8)
        x = x0.copy()
        m = np.zeros_like(x)
        v = np.zeros_like(x)
        for k in range(1, steps + 1):
            _, g = U.rosenbrock_np(x)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            mhat = m / (1 - b1**k)
            vhat = v / (1 - b2**k)
            x -= np.float32(lr) * mhat / (np.sqrt(vhat) + eps)
        return x

    return gd if method == "gd" else adam


def contenders(method: str, d: int, steps: int, py_steps: int) -> tuple[dict[str, Callable[[], Any]], dict[str, int]]:
    """The zero-argument callables to time and the steps each one runs."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    import jaxgd

    lr = LR[method]
    x0_np = U.rosenbrock_start(d, np.float32)
    x0 = jnp.asarray(x0_np)
    opt = optax.sgd(lr) if method == "gd" else optax.adam(lr)
    grad = jax.grad(U.rosenbrock)
    vg = jax.value_and_grad(U.rosenbrock)

    @jax.jit
    def fused(x: jax.Array) -> jax.Array:
        def body(i: Any, c: Any) -> Any:
            x, s = c
            u, s = opt.update(grad(x), s, x)
            return optax.apply_updates(x, u), s

        return lax.fori_loop(0, steps, body, (x, opt.init(x)))[0]

    @jax.jit
    def fused_history(x: jax.Array) -> Any:
        def body(i: Any, c: Any) -> Any:
            x, s, hl, hg = c
            v, g = vg(x)
            u, s = opt.update(g, s, x)
            return optax.apply_updates(x, u), s, hl.at[i].set(v), hg.at[i].set(jnp.sqrt(jnp.sum(g * g)))

        z = jnp.zeros(steps, x.dtype)
        return lax.fori_loop(0, steps, body, (x, opt.init(x), z, z))

    def opt_step(x: jax.Array, s: Any, g: Any) -> Any:
        u, s = opt.update(g, s, x)
        return optax.apply_updates(x, u), s

    @jax.jit
    def same_work(x: jax.Array) -> Any:  # minimize's per-step work by hand (U.same_work): the floor
        return U.same_work(vg, x, opt_step, opt.init(x), steps, lr, dynamic_exit=True)

    @jax.jit
    def optax_step(x: jax.Array, s: Any) -> Any:
        u, s = opt.update(grad(x), s, x)
        return optax.apply_updates(x, u), s

    def python_loop() -> jax.Array:
        x, s = x0, opt.init(x0)
        for _ in range(py_steps):
            x, s = optax_step(x, s)
        return x

    def jaxgd_run(history: bool) -> Callable[[], Any]:
        return lambda: jaxgd.minimize(
            U.rosenbrock, x0, method=method, lr=lr, max_steps=steps, gtol=0.0, history=history, progress=False
        )

    fns: dict[str, Callable[[], Any]] = {
        "jaxgd, history on": jaxgd_run(True),
        "jaxgd, history off": jaxgd_run(False),
        "hand-fused lax.fori_loop (gradient only)": lambda: fused(x0),
        "hand-fused fori_loop + loss & grad-norm history": lambda: fused_history(x0),
        SAME_WORK: lambda: same_work(x0),
        "Python loop over a jitted optax step": python_loop,
        "NumPy, hand-written gradient": _numpy_loop(method, x0_np, lr, py_steps),
    }
    steps_of = {k: steps for k in fns}
    steps_of["Python loop over a jitted optax step"] = py_steps
    steps_of["NumPy, hand-written gradient"] = py_steps
    if U.have("optimistix"):
        import optimistix as optx

        solver = (
            optx.GradientDescent(learning_rate=lr, rtol=0.0, atol=0.0)
            if method == "gd"
            else optx.OptaxMinimiser(optax.adam(lr), rtol=0.0, atol=0.0)
        )

        @jax.jit
        def optx_run(x: jax.Array) -> Any:
            sol = optx.minimise(lambda y, _: U.rosenbrock(y), solver, x, max_steps=steps, throw=False)
            return sol.value, sol.stats["num_steps"]

        name = f"optimistix.minimise({'GradientDescent' if method == 'gd' else 'OptaxMinimiser(adam)'}), jitted"
        fns[name] = lambda: optx_run(x0)
        steps_of[name] = steps
    return fns, steps_of


def _params_of(value: Any) -> np.ndarray:
    if hasattr(value, "params"):  # a jaxgd Result
        return np.asarray(value.params)
    if isinstance(value, tuple):  # (x, ...) from fused_history / optimistix
        return np.asarray(value[0])
    return np.asarray(value)


def _steps_run(name: str, value: Any, planned: int) -> int:
    if hasattr(value, "steps"):
        return int(value.steps)
    if name == SAME_WORK:
        return int(value[6])
    if name.startswith("optimistix"):
        return int(value[1])
    return planned


def run_one(method: str, d: int, opts: Any) -> U.Report:
    steps, py_steps = opts.steps, opts.py_steps
    fns, steps_of = contenders(method, d, steps, py_steps)
    t = U.measure(fns, opts.repeats)
    per_step = {}
    rows = []
    for name, tm in t.items():
        n = _steps_run(name, tm.value, steps_of[name])
        per_step[name] = tm.median / max(n, 1)
    ref = per_step["hand-fused lax.fori_loop (gradient only)"]
    ref_h = per_step["hand-fused fori_loop + loss & grad-norm history"]
    for name, tm in t.items():
        n = _steps_run(name, tm.value, steps_of[name])
        f = U.rosenbrock_np(_params_of(tm.value).astype(np.float64))[0]
        rows.append([
            name, f"{n:,}", U.fmt_time(tm.median), U.fmt_us(per_step[name]),
            U.fmt_ratio(per_step[name] / ref), U.fmt_ratio(per_step[name] / ref_h),
            U.fmt_time(tm.compile), U.fmt_float(f, 7), f"{tm.spread:.0%}",
        ])
    ours = per_step["jaxgd, history on"]
    floor = per_step[SAME_WORK]
    py = per_step["Python loop over a jitted optax step"]
    report = U.Report(
        key="A",
        title=f"{TITLE}: {method.upper()}, {d}-D, lr={LR[method]:g}, {steps:,} steps",
        columns=["contender", "steps", "median", "µs/step", "× fused", "× fused+history", "first-call extra",
                 "final f", "spread"],
        rows=rows,
        label=f"{method.upper()} {d}-D",
    )
    report.targets = [
        U.Target(
            "issue 15: jaxgd (history on) ≤ 1.3× the gradient-only hand-fused loop (goal 1.1×)",
            ours <= 1.3 * ref, f"{ours / ref:.2f}×",
        ),
        U.Target(
            "issue 15: jaxgd (history on) ≤ 1.1× the hand-fused loop recording the same history (loss & grad norm)",
            ours <= 1.1 * ref_h, f"{ours / ref_h:.2f}×",
        ),
        U.Target(
            "issue 6: jaxgd (history on) ≥ 100× faster per step than a Python loop over a jitted optax step",
            py >= 100 * ours, f"{py / ours:,.0f}× faster",
        ),
    ]
    report.notes = [
        "'× fused' and '× fused+history' compare µs/step with the two hand-fused loops; the Python-loop and "
        f"NumPy rows run {py_steps:,} steps. jaxgd computes the loss, gradient norm and a finiteness test every "
        "step even with history off (termination tests and NONFINITE); the gradient-only loop does none of that.",
        f"The floor of the same work (issue 15: a hand-written loop doing minimize's per-step work, "
        f"benchmarks._util.same_work): jaxgd history on / it {ours / floor:.2f}×; it / the gradient-only loop "
        f"{floor / ref:.2f}×.",
    ]
    return report


def run(opts: Any) -> list[U.Report]:
    dims = U.parse_sizes(opts.d, [2, 100])
    return [run_one(method, d, opts) for method in ("gd", "adam") for d in dims]
