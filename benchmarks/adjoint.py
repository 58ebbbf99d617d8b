"""H. Differentiating through a solve: the backward pass against the forward solve (float64).

Two problems, each the hypergradient of a validation loss with respect to
the L2 strength ``lam`` of an L2-regularised logistic regression solved by
``method="lbfgs"`` (``gtol=1e-9``):

- synthetic, 1,000-D (n = 2,000 training rows, 1,000 validation rows);
- scikit-learn's breast-cancer data (31-D with the intercept column; 60/40 split).

Contenders, timed interleaved (``_util.measure``), all under ``jax.jit``:

- ``while-loop run, no adjoint``: the compiled run exactly as ``minimize``
  ran it before ``adjoint=`` existed (``minimize_run.run_dropped``);
- ``forward solve, adjoint="implicit"``: the same run through the implicit
  wrapper (``stop_gradient`` + an identity ``custom_jvp``), nobody
  differentiating: the no-slowdown check;
- ``forward of vjp`` and ``backward (implicit)``: ``jax.vjp`` of the
  validation loss split in two jitted calls, so the backward pass (one
  conjugate-gradient solve on Hessian-vector products) is timed alone;
- ``value_and_grad (implicit)``: both in one call.

Targets: the implicit backward pass costs no more than the solve; the forward
solve through the wrapper is within 5% of the plain run.

    python -m benchmarks.adjoint [--quick]     (or: make bench ARGS="--only H")
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from typing import Any

import numpy as np

from . import _util as U

TITLE = "Backward pass vs forward solve, implicit adjoint, L-BFGS, float64"


def _data(name: str, quick: bool) -> tuple:
    if name == "breast cancer":
        from sklearn.datasets import load_breast_cancer

        x, y = load_breast_cancer(return_X_y=True)
        a = np.c_[(x - x.mean(0)) / x.std(0), np.ones(len(x))]
        order = np.random.default_rng(0).permutation(len(y))
        k = int(0.6 * len(y))
        return a[order[:k]], y[order[:k]].astype(float), a[order[k:]], y[order[k:]].astype(float)
    d = 200 if quick else 1000
    rng = np.random.default_rng(0)
    w = rng.normal(size=d) / np.sqrt(d)
    x = rng.normal(size=(3 * d, d))
    y = (x @ w + 0.5 * rng.normal(size=3 * d) > 0).astype(float)
    return x[: 2 * d], y[: 2 * d], x[2 * d :], y[2 * d :]


def hlo_ops(compiled_text: str) -> Counter:
    """The multiset of ``(result shape, opcode)`` of an optimised HLO module (names and metadata ignored)."""
    text = re.sub(r",? ?metadata=\{[^}]*\}", "", compiled_text)
    return Counter(m.group(1) + " " + m.group(2) for m in re.finditer(r"= (\S+) ([a-z][\w-]*)\(", text))


def same_program(solver: Any, params: Any, args: tuple) -> tuple[bool, int]:
    """Whether the plain run and the implicit-adjoint run compile to the same XLA ops; and how many."""
    import jax

    from jaxgd.core import adjoint as _adjoint
    from jaxgd.core import minimize_run as _r

    plain_run = jax.jit(_r.run_dropped)
    plain = hlo_ops(plain_run.lower(solver, params, args).compile().as_text())
    wrapped = _adjoint.runner("implicit", plain_run, _r.drop_copies).lower(solver, params, args).compile()
    return plain == hlo_ops(wrapped.as_text()), sum(plain.values())


def contenders(a: np.ndarray, y: np.ndarray, av: np.ndarray, yv: np.ndarray, lam: float) -> tuple[dict, Any]:
    import jax
    import jax.numpy as jnp

    import jaxgd
    from jaxgd.core import adjoint as _adjoint
    from jaxgd.core import minimize as _m
    from jaxgd.core import minimize_run as _r

    def logistic(beta: Any, a: Any, y: Any) -> Any:
        z = a @ beta
        return jnp.mean(jax.nn.softplus(z) - y * z)

    options = dict(method="lbfgs", gtol=1e-9, max_steps=2000)
    x0 = jnp.zeros(a.shape[1])
    a, y, av, yv = (jnp.asarray(v) for v in (a, y, av, yv))

    def outer(lam: Any) -> Any:
        return logistic(jaxgd.minimize(logistic, x0, (a, y), l2=lam, **options).params, av, yv)

    solver = jaxgd.Solver(logistic, l2=jnp.asarray(lam), **options)
    params, args = _m.as_params(x0), (a, y)
    plain_run = jax.jit(_r.run_dropped)
    implicit_run = _adjoint.runner("implicit", plain_run, _r.drop_copies)
    forward = jax.jit(lambda lam: jax.vjp(outer, lam))
    backward = jax.jit(lambda pullback, ct: pullback(ct))
    value_and_grad = jax.jit(jax.value_and_grad(outer))
    lam = jnp.asarray(lam)
    one = jnp.asarray(1.0)
    _, pullback = forward(lam)
    fns = {
        "while-loop run, no adjoint": lambda: plain_run(solver, params, args),
        'forward solve, adjoint="implicit"': lambda: implicit_run(solver, params, args),
        "forward of vjp (solve + residuals)": lambda: forward(lam)[0],
        "backward (implicit: CG on HVPs)": lambda: backward(pullback, one),
        "value_and_grad (implicit)": lambda: value_and_grad(lam),
    }
    return fns, (implicit_run(solver, params, args), same_program(solver, params, args))


def table(name: str, quick: bool, repeats: int) -> tuple[list[list[str]], dict]:
    a, y, av, yv = _data(name, quick)
    fns, (res, (same, n_ops)) = contenders(a, y, av, yv, lam=1e-2)
    t = U.measure(fns, repeats)
    base = t["while-loop run, no adjoint"].median
    rows = [[f"{name} ({a.shape[1]}-D, {int(res.state.count)} L-BFGS steps)", k, U.fmt_time(v.median),
             U.fmt_ratio(v.median / base), U.fmt_time(v.compile), f"{v.spread:.0%}"] for k, v in t.items()]
    ratios = {
        "backward/solve": t["backward (implicit: CG on HVPs)"].median / base,
        "wrapper/plain": t['forward solve, adjoint="implicit"'].median / base,
        "same": same,
        "ops": n_ops,
    }
    return rows, ratios


def run(opts: Any) -> list[U.Report]:
    """The H table, in float64 (this process only, or restored with ``--inline``)."""
    with U.x64_context():
        return _run(opts)


def _run(opts: Any) -> list[U.Report]:
    rows, targets = [], []
    for name in ("synthetic", "breast cancer"):
        r, ratios = table(name, opts.quick, opts.repeats)
        rows += r
        targets.append(U.Target(f"{name}: implicit backward ≤ 1× the forward solve", ratios["backward/solve"] <= 1.0,
                                f"{ratios['backward/solve']:.2f}×"))
        targets.append(U.Target(f"{name}: forward solve through the adjoint wrapper ≤ 1.05× the plain run",
                                ratios["wrapper/plain"] <= 1.05, f"{ratios['wrapper/plain']:.3f}×"))
        targets.append(U.Target(f"{name}: the wrapper compiles to the plain run's XLA ops (shape × opcode multiset)",
                                ratios["same"], f"{ratios['ops']} ops, identical: {ratios['same']}"))
    report = U.Report(key="H", title=TITLE, columns=["problem", "contender", "median", "× plain run",
                                                     "first-call extra", "spread"], rows=rows, label="adjoint")
    report.targets = targets
    report.notes = ["Hypergradient d V(beta*(lam)) / d lam of a validation logistic loss, lam = 0.01; "
                    "× plain run: median over the plain compiled while-loop run of the same solve."]
    return [report]


def main() -> None:
    p = argparse.ArgumentParser(description=TITLE)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=7)
    opts = p.parse_args()
    for report in run(opts):
        print(report.markdown())


if __name__ == "__main__":
    main()
