"""The contenders of the CUTEst benchmark (helper of ``cutest.py``).

Each contender is ``make(f, x0, bounds) -> call``: ``f`` is the problem's
objective (a fresh Python function object per contender, so no compiled code
is shared between contenders), ``call()`` runs one whole solve and returns
``(x, iterations, nfev, ngev, status)``. The first ``call()`` is the
first-call time (trace + compile + run; for scipy it includes the
``jax.jit`` compile of the ``value_and_grad`` it calls; for jaxgd ``bfgs`` and
``lbfgs`` it is ``minimize``'s default, the host tier, which compiles only its
``value_and_grad``), later calls the run time (jaxgd: ``tier="compiled"``, the
fused loop, compiled untimed by ``call.warm`` before them).

Matched stopping rules (``GTOL``, ``MAX_ITER``):

- jaxgd ``bfgs``/``cg``: ``gtol=GTOL`` on the gradient 2-norm,
  ``max_steps=MAX_ITER``, other options default (``ftol = xtol = 0``);
- scipy BFGS and CG: ``gtol=GTOL`` with ``norm=2`` (the 2-norm),
  ``maxiter=MAX_ITER``;
- scipy L-BFGS-B: ``pgtol=GTOL`` on the projected gradient's *inf*-norm (it
  has no 2-norm option), ``ftol=0`` (factr = 0: no stop on a small relative
  decrease, like jaxgd, but a stop at a step that does not lower f at all,
  which jaxgd has no option for: its ``ftol=0`` turns the test off; sif2jax's
  DIAGIQB, scipy 17 steps and 27 evaluations, jaxgd 18 and 28),
  ``maxiter=MAX_ITER``, ``maxfun`` unlimited in practice;
- jaxgd ``lbfgs`` (compared with L-BFGS-B): ``gtol=GTOL`` with
  ``gtol_norm=inf``, L-BFGS-B's test (on the projected gradient with
  ``bounds``, jaxgd's default there), ``max_steps=MAX_ITER``, ``ftol = xtol = 0``;
  ``jaxgd lbfgs-scalar`` the same with ``jaxgd.directions.lbfgs(scaling="scalar")``
  (L-BFGS-B's scalar :math:`H^0` throughout; the default, ``"auto"``, turns diagonal on badly scaled problems);
- optax ``lbfgs()`` (zoom line search) in a hand-written, jitted
  ``lax.while_loop`` until the gradient's inf-norm is ``<= GTOL`` (L-BFGS-B's
  test again) or ``MAX_ITER`` steps;
- optimistix ``BFGS``/``LBFGS`` (``optx.minimise``, jitted): no gradient test
  exists there; ``rtol = atol = 1e-8`` (Cauchy test on changes of y and f),
  ``max_steps=MAX_ITER``.

Evaluations: jaxgd reports ``Result.nfev``/``ngev``; scipy its ``nfev``
(one ``value_and_grad`` per evaluation); the optax loop sums the zoom line
search's ``num_linesearch_steps`` (+1 for the start); optimistix is counted
in an extra, untimed run through a ``custom_vjp`` objective whose forward and
backward passes call ``jax.debug.callback`` (``counting``). "Evaluations" in
the tables are loss evaluations, a ``value_and_grad`` counting one.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

import numpy as np

from .quasi_newton import counting  # forward/backward passes counted (one copy, shared with C)

GTOL = 1e-5
MAX_ITER = 1000
FIRST_TIER = {"tier": "auto"}  # jaxgd's first call: minimize's default ("compiled": the fused loop's first call)
OPTX_TOL = 1e-8

# solver name -> (family, the scipy solver it is compared with)
UNCONSTRAINED = {
    "jaxgd bfgs": "scipy BFGS",
    "jaxgd lbfgs": "scipy L-BFGS-B",
    "jaxgd lbfgs-scalar": "scipy L-BFGS-B",
    "jaxgd cg": "scipy CG",
    "scipy BFGS": None,
    "scipy L-BFGS-B": None,
    "scipy CG": None,
    "optax lbfgs": "scipy L-BFGS-B",
    "optimistix BFGS": "scipy BFGS",
    "optimistix LBFGS": "scipy L-BFGS-B",
}
BOUNDED = {"jaxgd lbfgs": "scipy L-BFGS-B", "jaxgd lbfgs-scalar": "scipy L-BFGS-B", "scipy L-BFGS-B": None}

Call = Callable[[], tuple[Any, int, int, int, str]]


def _jaxgd(method: str) -> Callable[..., Call]:
    def make(f: Callable, x0: Any, bounds: Any, limit: float) -> Call:
        import jaxgd

        fun = lambda y: f(y)  # noqa: E731  (a new function object: nothing compiled is shared)
        kw = {} if bounds is None else {"bounds": bounds}
        how: Any = method
        if method == "lbfgs-scalar":  # L-BFGS-B's scalar H0
            how = jaxgd.directions.lbfgs(scaling="scalar")
        if method.startswith("lbfgs"):  # L-BFGS-B's stopping test (its pgtol is an inf-norm)
            kw["gtol_norm"] = math.inf

        tier = [FIRST_TIER["tier"]]  # the first call as a script makes it (lbfgs/bfgs: the host tier), the rest compiled

        def call() -> tuple[Any, int, int, int, str]:
            r = jaxgd.minimize(fun, x0, method=how, gtol=GTOL, max_steps=MAX_ITER, progress=False, tier=tier[0], **kw)
            tier[0] = "compiled"
            return r.params, int(r.steps), int(r.nfev), int(r.ngev), r.status_enum.name

        call.warm = call  # untimed, before the warm runs: the fused loop's compile
        return call

    return make


def _scipy(method: str) -> Callable[..., Call]:
    def make(f: Callable, x0: Any, bounds: Any, limit: float) -> Call:
        import jax
        from scipy.optimize import minimize as sp_minimize

        x0n = np.asarray(x0, np.float64)
        state: dict[str, Any] = {}
        opts: dict[str, Any] = {"maxiter": MAX_ITER}
        if method == "L-BFGS-B":
            opts.update(gtol=GTOL, ftol=0.0, maxfun=100 * MAX_ITER)
        else:
            opts.update(gtol=GTOL, norm=2)
        sp_bounds = None
        if bounds is not None:
            sp_bounds = list(zip(np.asarray(bounds[0], np.float64), np.asarray(bounds[1], np.float64)))

        def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
            v, g = state["vg"](x)
            return float(v), np.asarray(g, np.float64)

        def call() -> tuple[Any, int, int, int, str]:
            if "vg" not in state:  # the first call pays for jitting value_and_grad
                state["vg"] = jax.jit(jax.value_and_grad(lambda y: f(y)))
            t0 = time.perf_counter()

            def stop(intermediate_result: Any) -> None:
                if time.perf_counter() - t0 > limit:
                    raise StopIteration

            r = sp_minimize(fg, x0n, jac=True, method=method, bounds=sp_bounds, options=opts, callback=stop)
            status = "TIME_LIMIT" if time.perf_counter() - t0 > limit and not r.success else str(r.status)
            return r.x, int(r.nit), int(r.nfev), int(getattr(r, "njev", r.nfev)), status

        return call

    return make


def _optax_lbfgs(f: Callable, x0: Any, bounds: Any, limit: float) -> Call:
    import jax
    import jax.numpy as jnp
    import optax
    from jax import lax

    fun = lambda y: f(y)  # noqa: E731
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(fun)

    @jax.jit
    def solve(x: Any) -> Any:
        def step(c: Any) -> Any:
            x, s, evals = c
            v, g = vg(x, state=s)
            u, s = opt.update(g, s, x, value=v, grad=g, value_fn=fun)
            steps = optax.tree.get(s, "num_linesearch_steps").astype(jnp.int32)
            return optax.apply_updates(x, u), s, evals + steps

        def cond(c: Any) -> Any:
            _, s, _ = c
            k = optax.tree.get(s, "count")
            return (k == 0) | ((k < MAX_ITER) & (optax.tree.norm(optax.tree.get(s, "grad"), ord=jnp.inf) > GTOL))

        x, s, evals = lax.while_loop(cond, step, (x, opt.init(x), jnp.asarray(1, jnp.int32)))
        return x, optax.tree.get(s, "count"), evals

    def call() -> tuple[Any, int, int, int, str]:
        x, k, evals = solve(x0)
        return x, int(k), int(evals), int(evals), "-"

    return call


def _optimistix(name: str) -> Callable[..., Call]:
    def make(f: Callable, x0: Any, bounds: Any, limit: float) -> Call:
        import jax
        import optimistix as optx

        solver = getattr(optx, name)(rtol=OPTX_TOL, atol=OPTX_TOL)

        def build(fun: Callable) -> Callable:
            @jax.jit
            def solve(x: Any) -> Any:
                sol = optx.minimise(lambda y, _: fun(y), solver, x, max_steps=MAX_ITER, throw=False)
                return sol.value, sol.stats["num_steps"], sol.result._value

            return solve

        solve = build(lambda y: f(y))
        counts = {"f": 0, "g": 0}
        counted = build(counting(f, counts))

        def call() -> tuple[Any, int, int, int, str]:
            x, k, res = solve(x0)
            return x, int(k), counts["f"], counts["g"], str(int(res))

        def count() -> None:  # an extra, untimed run through the counted objective
            counted(x0)[0].block_until_ready()
            jax.effects_barrier()

        call.count = count  # type: ignore[attr-defined]
        return call

    return make


MAKERS: dict[str, Callable[..., Call]] = {
    "jaxgd bfgs": _jaxgd("bfgs"),
    "jaxgd lbfgs": _jaxgd("lbfgs"),
    "jaxgd lbfgs-scalar": _jaxgd("lbfgs-scalar"),
    "jaxgd cg": _jaxgd("cg"),
    "scipy BFGS": _scipy("BFGS"),
    "scipy L-BFGS-B": _scipy("L-BFGS-B"),
    "scipy CG": _scipy("CG"),
    "optax lbfgs": _optax_lbfgs,
    "optimistix BFGS": _optimistix("BFGS"),
    "optimistix LBFGS": _optimistix("LBFGS"),
}


def _block(x: Any) -> Any:
    import jax

    return jax.block_until_ready(x)


def run_one(name: str, f: Callable, x0: Any, bounds: Any, limit: float, repeats: int = 3) -> dict:
    """Solve once cold (first-call time), then up to ``repeats`` times warm
    (median run time), within about ``limit`` seconds of warm runs. Returns
    the record: x, iterations, evaluations, status, first_s, run_s, and
    first_cpu_s: the first call's CPU time (all threads of this process),
    which a busy shared machine inflates far less than the wall time."""
    call = MAKERS[name](f, x0, bounds, limit)
    t0, c0 = time.perf_counter(), time.process_time()
    x, nit, nfev, ngev, status = call()
    _block(x)
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    count = getattr(call, "count", None)
    if count is not None:  # evaluations from a counted run (after the timed first call)
        count()
        x, nit, nfev, ngev, status = call()
    warm = getattr(call, "warm", None)
    if warm is not None:  # a compile the warm runs must not time (jaxgd: the fused loop after a host-tier first call)
        _block(warm()[0])
    times: list[float] = []
    spent = 0.0
    timed = None
    while len(times) < repeats and spent < limit:
        t0 = time.perf_counter()
        timed = call()
        _block(timed[0])
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return {
        "x": np.asarray(x, np.float64), "iters": nit, "nfev": nfev, "ngev": ngev, "status": status,
        "first_s": first, "first_cpu_s": first_cpu, "run_s": float(np.median(times)) if times else float("nan"), "runs": len(times),
        # what the timed runs did (jaxgd: the compiled tier after a host-tier first call, whose evaluations are scored)
        "timed_nfev": None if timed is None else timed[2], "timed_status": None if timed is None else timed[4],
    }


def finish(rec: dict, vg: Callable, bounds: Optional[tuple[Any, Any]]) -> dict:
    """Add final f and the (projected) gradient inf-norm at the returned point
    (``vg``: the problem's jitted ``value_and_grad``)."""
    x = rec.pop("x")
    v, g = vg(x)
    g = np.asarray(g, np.float64)
    infeasible = 0.0
    if bounds is not None:
        lo, hi = (np.asarray(b, np.float64) for b in bounds)
        infeasible = float(max(np.max(lo - x, initial=0.0), np.max(x - hi, initial=0.0)))
        g = x - np.clip(x - g, lo, hi)
    rec.update(f=float(v), gnorm_inf=float(np.max(np.abs(g), initial=0.0)), infeasible=infeasible)
    return rec
