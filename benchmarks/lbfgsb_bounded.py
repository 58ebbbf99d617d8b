"""L-BFGS-B against scipy's on sif2jax's bound-constrained CUTEst problems (float64).

Contenders, on the same problems, from the same starting points, with the
same stopping rule (scipy's L-BFGS-B defaults: projected-gradient inf-norm
``<= 1e-5``, relative reduction of f ``<= 2.22e-9``, 15,000 iterations, 10
pairs, 20 evaluations per line search):

- jaxgd ``minimize(method="lbfgs", bounds=problem.bounds, gtol=1e-5,
  ftol=2.22e-9)`` (its L-BFGS-B step);
- ``scipy.optimize.minimize(method="L-BFGS-B")`` with value and gradient
  from one jitted ``jax.value_and_grad`` (``jac=True``).

A problem counts as solved by a contender when its final f is within a
relative 1e-6 (``|f - f_best| <= 1e-6 max(1, |f_best|)``) of the best f
either found. Evaluations are value-and-gradient calls (``Result.nfev``,
scipy's ``nfev``). Problem modules are imported one by one (importing
``sif2jax`` whole builds a large constrained problem at import time).

Run: ``python -m benchmarks.lbfgsb_bounded [--max-n 100] [--only NAME,...]``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import re
import sys
import time
import types
from typing import Any

import numpy as np

GTOL, FTOL, MAX_STEPS = 1e-5, 2.220446049250313e-09, 15_000


def bounded_problems(max_n: int, only: tuple[str, ...] = ()) -> list[Any]:
    """sif2jax's bounded-minimisation problems with at most ``max_n`` variables."""
    spec = importlib.util.find_spec("sif2jax")
    if spec is None:
        raise SystemExit("sif2jax is not installed (pip install -e '.[bench]')")
    root = os.path.dirname(spec.origin)
    here = os.path.join(root, "cutest", "_bounded_minimisation")
    for pkg, path in (("sif2jax", root), ("sif2jax.cutest", os.path.join(root, "cutest")), ("sif2jax.cutest._bounded_minimisation", here)):
        if pkg not in sys.modules:  # bare packages: skip the heavy __init__ files
            mod = types.ModuleType(pkg)
            mod.__path__ = [path]
            sys.modules[pkg] = mod
    with open(os.path.join(here, "__init__.py")) as f:
        names = re.findall(r"^from \.(\w+) import", f.read(), re.M)  # the problems sif2jax lists (not the commented-out ones)
    out = []
    for name in names:
        mod = importlib.import_module(f"sif2jax.cutest._bounded_minimisation.{name}")
        for cls_name, cls in vars(mod).items():
            if isinstance(cls, type) and cls.__module__ == mod.__name__ and cls_name.isupper():
                if only and cls_name not in only:
                    continue
                problem = cls()
                if problem.y0.size <= max_n:
                    out.append(problem)
    return sorted(out, key=lambda p: (p.y0.size, p.name))


def run_jaxgd(problem: Any) -> dict:
    import jax.numpy as jnp

    import jaxgd

    lower, upper = problem.bounds
    fun = lambda x: problem.objective(x, problem.args)  # noqa: E731
    t = time.perf_counter()
    res = jaxgd.minimize(fun, jnp.asarray(problem.y0, jnp.float64), method="lbfgs", bounds=(lower, upper),
                         gtol=GTOL, ftol=FTOL, max_steps=MAX_STEPS, history=False)
    f = float(res.loss)
    return dict(f=f, nfev=int(res.nfev), nit=int(res.steps), status=res.status_enum.name, time=time.perf_counter() - t)


def run_scipy(problem: Any) -> dict:
    import jax
    import jax.numpy as jnp
    import scipy.optimize as so

    lower, upper = (np.asarray(b, np.float64) for b in problem.bounds)
    vg = jax.jit(jax.value_and_grad(lambda x: problem.objective(x, problem.args)))

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = vg(jnp.asarray(x))
        return float(v), np.asarray(g, np.float64)

    bounds = [(None if not np.isfinite(a) else a, None if not np.isfinite(b) else b) for a, b in zip(lower, upper)]
    t = time.perf_counter()
    res = so.minimize(fg, np.asarray(problem.y0, np.float64), jac=True, method="L-BFGS-B", bounds=bounds,
                      options=dict(gtol=GTOL, ftol=FTOL, maxiter=MAX_STEPS, maxfun=10 * MAX_STEPS))
    return dict(f=float(res.fun), nfev=int(res.nfev), nit=int(res.nit), status=str(res.message)[:40], time=time.perf_counter() - t)


def solved(f: float, best: float) -> bool:
    return math.isfinite(f) and abs(f - best) <= 1e-6 * max(1.0, abs(best))


def main(argv: list[str] | None = None) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-n", type=int, default=100)
    ap.add_argument("--only", default="")
    a = ap.parse_args(argv)
    only = tuple(s.strip().upper() for s in a.only.split(",") if s.strip())
    problems = bounded_problems(a.max_n, only)
    print("| problem | n | jaxgd f | nfev | scipy f | nfev | ratio | jaxgd status | scipy message |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios, both, j_only, s_only, neither = [], 0, [], [], []
    for p in problems:
        try:
            j = run_jaxgd(p)
        except Exception as e:  # a problem that does not trace: report it, keep going
            j = dict(f=math.nan, nfev=0, nit=0, status=f"error {type(e).__name__}", time=0.0)
        s = run_scipy(p)
        best = min(v for v in (j["f"], s["f"]) if math.isfinite(v)) if math.isfinite(j["f"]) or math.isfinite(s["f"]) else math.nan
        js, ss = solved(j["f"], best), solved(s["f"], best)
        ratio = j["nfev"] / s["nfev"] if js and ss else math.nan
        if js and ss:
            both += 1
            ratios.append(ratio)
        elif js:
            j_only.append(p.name)
        elif ss:
            s_only.append(p.name)
        else:
            neither.append(p.name)
        print(f"| {p.name} | {p.y0.size} | {j['f']:.10g} | {j['nfev']} | {s['f']:.10g} | {s['nfev']} | "
              f"{ratio:.2f} | {j['status']} | {s['status']} |", flush=True)
    gm = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else math.nan
    fewer = sum(r <= 1.0 for r in ratios)
    print(f"\nproblems: {len(problems)}; both solve {both}; jaxgd only {len(j_only)} {j_only}; "
          f"scipy only {len(s_only)} {s_only}; neither {len(neither)} {neither}")
    print(f"jaxgd solves {both + len(j_only)}, scipy solves {both + len(s_only)}; where both solve: geometric mean "
          f"jaxgd/scipy evaluations {gm:.3f}, jaxgd needs no more on {fewer}/{len(ratios)}")


if __name__ == "__main__":
    main()
