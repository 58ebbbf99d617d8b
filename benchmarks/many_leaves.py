"""L. Parameter trees of many leaves: GD and Adam per step, and the first call, by leaf count.

A Flax or Equinox model of 20-100 layers is a tree of 40-200 arrays. The same
10,000 parameters (float32) are split into 1, 10 or 40 equal leaves (a leaf count that does not divide
10,000 drops the remainder) of a
diagonal quadratic ``0.5 sum_i a_i (x_i - 1)^2`` (one term per leaf), and each
run takes ``--steps`` steps (``gtol=0``):

- ``jaxgd.minimize`` with history on;
- optax's update in a hand-fused ``lax.fori_loop`` under one ``jax.jit`` (the
  loop a user writes; gradient only).

A user review in session 57 found jaxgd's per-step cost growing with the
square of the leaf count (40 leaves: 42x the hand loop, where one leaf is
11x): XLA fused the step's accept flag, a chain over all leaves, into each
leaf's select (``jaxgd._tree.shared`` now computes it once).

    python -m benchmarks --only L         python -m benchmarks --only L --d 1,10,40,100
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _util as U

TITLE = "Parameter trees of many leaves: 10,000 float32 parameters split into L leaves"
LR = {"gd": 1e-2, "adam": 1e-2}
SIZE = 10_000


def contenders(method: str, leaves: int, steps: int) -> dict[str, Callable[[], Any]]:
    """The zero-argument callables to time: jaxgd and the hand-fused optax loop."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    import jaxgd

    m = SIZE // leaves
    a = jnp.asarray(np.random.default_rng(0).uniform(0.5, 2.0, leaves * m), jnp.float32)

    def loss(p: list, a: jax.Array) -> jax.Array:
        return 0.5 * sum(jnp.sum(a[i * m:(i + 1) * m] * (v - 1.0) ** 2) for i, v in enumerate(p))

    x0 = [jnp.zeros(m, jnp.float32) for _ in range(leaves)]
    opt = optax.sgd(LR[method]) if method == "gd" else optax.adam(LR[method])

    @jax.jit
    def fused(p: list, a: jax.Array) -> list:
        def body(i: Any, c: Any) -> Any:
            p, s = c
            u, s = opt.update(jax.grad(loss)(p, a), s, p)
            return optax.apply_updates(p, u), s

        return lax.fori_loop(0, steps, body, (p, opt.init(p)))[0]

    return {
        "jaxgd.minimize, history on": lambda: jaxgd.minimize(
            loss, x0, (a,), method=method, lr=LR[method], max_steps=steps, gtol=0.0, progress=False),
        "hand-fused optax fori_loop": lambda: fused(x0, a),
    }


def run_one(method: str, leaves: int, opts: Any) -> U.Report:
    fns = contenders(method, leaves, opts.steps)
    t = U.measure(fns, opts.repeats)
    ours, ref = t["jaxgd.minimize, history on"], t["hand-fused optax fori_loop"]
    rows = [
        [name, U.fmt_time(tm.median), U.fmt_us(tm.median / opts.steps), U.fmt_ratio(tm.median / ref.median),
         U.fmt_time(tm.first), f"{tm.spread:.0%}"]
        for name, tm in t.items()
    ]
    report = U.Report(
        key="L",
        title=f"{TITLE}: {method.upper()}, L={leaves}, {opts.steps:,} steps",
        columns=["contender", "median", "µs/step", "× hand loop", "first call", "spread"],
        rows=rows,
        label=f"{method.upper()} L={leaves}",
    )
    report.notes = [
        f"jaxgd / hand loop per step {ours.median / ref.median:.2f}×; first call {ours.first:.2f} s against "
        f"{ref.first:.2f} s. Compare the rows of one method across L: the per-step ratio should not grow with L."
    ]
    return report


def run(opts: Any) -> list[U.Report]:
    sizes = U.parse_sizes(opts.d, [1, 10, 40])
    return [run_one(method, leaves, opts) for method in ("gd", "adam") for leaves in sizes]
