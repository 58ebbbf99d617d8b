"""I. First call: a one-off solve from a fresh process, where its time goes, and the cache (issue 14).

Extended Rosenbrock (``_util.ext_rosenbrock``, start (-1.2, 1, ...)) per
method (``lbfgs``, ``bfgs`` with their defaults; ``gd``, ``adam`` for 1,000
steps), size and dtype. Every number comes from a FRESH Python process
(``python -m benchmarks.first_call --worker SPEC``, one JSON line back); the
table shows the median over ``--procs`` processes. In each process the
imports, JAX's backend start-up and ``x0`` come first, untimed; then:

- **first call**: ``jaxgd.minimize`` once, trace + lower + XLA compile + run,
  ended by ``block_until_ready`` (``tier="compiled"``: the fused loop; and,
  for ``lbfgs``/``bfgs``, in processes of their own, minimize's default
  ``tier="auto"``, the host tier, compared with scipy); wall and CPU time (all threads). Where it
  goes, from ``jax.monitoring`` duration events during that call:
  ``/jax/core/compile/jaxpr_trace_duration`` (trace),
  ``.../jaxpr_to_mlir_module_duration`` (lower) and
  ``.../backend_compile_duration`` (XLA compile; the *fused loop* is the
  longest one); the rest is the run and jaxgd's host work;
- **second call**: the same call again (the compiled loop, cached);
- **scipy** (``lbfgs`` → L-BFGS-B, ``bfgs`` → BFGS, defaults): the first
  ``scipy.optimize.minimize`` call with a ``jax.jit``-compiled
  ``value_and_grad`` (``jac=True``), its compile included; both final losses
  are evaluated in float64 NumPy (the same answer check). A scipy solve
  still running after ``--budget`` seconds (default 120; scipy's BFGS
  updates its dense inverse Hessian with n×n matrix products, and needs
  about 1,800 iterations at 1,000-D) is stopped through its callback,
  reported as stopped, and not repeated;
- **optax** (``lbfgs`` rows): optax's ``lbfgs`` in a hand-written
  ``lax.while_loop`` to the same ``gtol``, its first call in processes of its
  own: what XLA's compile of the same algorithm's loop costs here;
- **cache on, 2nd process**: one process turns jaxgd's persistent
  compilation cache on (``jaxgd.enable_compilation_cache(folder)``, a fresh
  temporary folder), solves once and so fills it; then each measuring
  process makes the same call and times its first call. The filling process
  also dumps the lowered StableHLO (``jax_dump_ir_to``, untimed) for the op
  count: ``stablehlo.*`` ops in the fused loop's module text;
- **where the fused loop's XLA compile goes** (issue 14 item 2): the filling
  process runs its call under ``jax.profiler.trace`` and reads XLA:CPU's own
  trace events inside the fused loop's compile (:func:`compile_breakdown`):
  the HLO passes, the LLVM code generation of the module, and the kernels
  compiled one by one through XLA's fusion emitters (which jaxgd chooses per
  program: ``lbfgs`` above 512 parameters, ``bfgs`` above 2,048; otherwise XLA's
  classic emitters), their number and their time summed over threads.

Processes run one after the other, the kinds interleaved (jaxgd, scipy,
cache) so that a change in machine load hits them alike.

    python -m benchmarks --only I [--quick] [--procs 5] [--methods lbfgs,bfgs] [--d 10,1000] [--dtypes float64]
                                  [--budget 120]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import _util as U

TITLE = "First call from a fresh process: where it goes, vs scipy, with the persistent cache (issue 14)"
ROOT = Path(__file__).resolve().parent.parent
EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}
CACHE_HIT = "/jax/compilation_cache/cache_hits"
OPTIONS = {"lbfgs": {}, "bfgs": {}, "gd": {"lr": 2e-4, "max_steps": 1000}, "adam": {"lr": 1e-3, "max_steps": 1000}}
SCIPY = {"lbfgs": "L-BFGS-B", "bfgs": "BFGS"}
OPTAX_GTOL = 1e-6  # jaxgd's default gtol (2-norm), for the optax loop's stopping test
COMPILE_TARGET, COMPILE_GOAL = 0.5, 0.3  # issue 14 item 2 (seconds)
OP = re.compile(r"(?<![#!\w.])stablehlo\.[a-z_]+")


# XLA:CPU's trace events (jaxlib 0.10) inside a program's compile: its whole span, then its parts
COMPILE_EVENT = "PjRtCpuClient::Compile"
HLO_PASSES, CODEGEN, FUSION = "HLO passes", "JitCompiler::Compile", "FusionCompiler::Compile"


def compile_breakdown(events: list[dict]) -> dict[str, float]:
    """Where the longest XLA compile in a profiler trace went, in seconds.

    ``events``: Chrome-trace complete events (``ph == "X"``; ``ts``/``dur`` in µs). The longest
    :data:`COMPILE_EVENT` is the fused loop's compile; of the events that lie within its span (any
    thread): ``hlo_passes``, the sum of those named ``HLO passes ...`` (XLA's pass pipelines);
    ``codegen``, the LLVM compile of the module (:data:`CODEGEN`); ``kernels`` and ``kernels_s``, the
    number of kernels compiled through the fusion emitters (:data:`FUSION`) and their time summed over
    the threads that compile them in parallel. All zero (and ``compile`` 0) where the trace has no
    compile event (another backend or jaxlib).
    """
    spans = [e for e in events if e.get("ph") == "X" and e.get("name") == COMPILE_EVENT]
    out = {"compile": 0.0, "hlo_passes": 0.0, "codegen": 0.0, "kernels": 0, "kernels_s": 0.0}
    if not spans:
        return out
    top = max(spans, key=lambda e: e["dur"])
    t0, t1 = top["ts"], top["ts"] + top["dur"]
    inside = [e for e in events if e.get("ph") == "X" and t0 <= e["ts"] and e["ts"] + e["dur"] <= t1]
    out["compile"] = top["dur"] / 1e6
    out["hlo_passes"] = sum(e["dur"] for e in inside if e["name"].startswith(HLO_PASSES)) / 1e6
    out["codegen"] = sum(e["dur"] for e in inside if e["name"] == CODEGEN) / 1e6
    kernels = [e["dur"] for e in inside if e["name"] == FUSION]
    out["kernels"], out["kernels_s"] = len(kernels), sum(kernels) / 1e6
    return out


def _trace_events(folder: str) -> list[dict]:
    """The complete events of the one trace ``jax.profiler.trace(folder)`` wrote."""
    import gzip

    files = sorted(Path(folder).rglob("*.trace.json.gz"))
    if not files:
        return []
    with gzip.open(files[-1], "rt") as fh:
        return [e for e in json.load(fh).get("traceEvents", []) if e.get("ph") == "X"]


# -- one fresh process ------------------------------------------------------
def worker(spec: dict) -> dict:
    """Measure one first call (and second call) in this process; ``spec`` says which."""
    import jax

    if spec["dtype"] == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import jaxgd

    method, dtype = spec["method"], np.dtype(spec["dtype"])
    x0_np = U.rosenbrock_start(spec["d"], dtype)
    if spec["kind"] == "scipy":
        import scipy.optimize as so

        vg = jax.jit(jax.value_and_grad(U.ext_rosenbrock))  # compiled at its first call, inside the timing

        def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
            v, g = vg(x.astype(dtype))
            return float(v), np.asarray(g, np.float64)

        start = [0.0]

        def stop(xk: np.ndarray) -> None:
            if time.perf_counter() - start[0] > spec["limit"]:
                raise StopIteration  # scipy ends the solve and returns its last iterate

        def solve() -> Any:
            start[0] = time.perf_counter()
            return so.minimize(fg, x0_np.astype(np.float64), jac=True, method=SCIPY[method], callback=stop)

        params = lambda r: r.x  # noqa: E731
        jax.devices()  # the backend starts before the timing, as for jaxgd's x0
    elif spec["kind"] == "optax":  # the baseline for the fused loop's compile: optax's lbfgs in a while_loop
        x0 = jnp.asarray(x0_np)
        loop = U.optax_lbfgs_loop(U.ext_rosenbrock, 10_000)

        def solve() -> Any:
            return jax.block_until_ready(loop(x0, OPTAX_GTOL))

        params = lambda r: r[0]  # noqa: E731
    else:
        x0 = jnp.asarray(x0_np)

        tier = spec.get("tier", "compiled")  # "auto": minimize's default (lbfgs, bfgs: the host tier)

        def solve() -> Any:
            return jaxgd.minimize(U.ext_rosenbrock, x0, method=method, progress=False, tier=tier, **OPTIONS[method])

        params = lambda r: r.params  # noqa: E731
    if spec.get("cache_dir"):
        jaxgd.enable_compilation_cache(spec["cache_dir"])  # jaxgd's documented switch
    else:
        jaxgd.disable_compilation_cache()  # no cache a user's environment may have configured
    if spec.get("dump_dir"):
        jax.config.update("jax_dump_ir_to", spec["dump_dir"])
        jax.config.update("jax_include_debug_info_in_dumps", False)

    times = {name: 0.0 for name in EVENTS.values()}
    compiles: list[float] = []
    hits = [0]

    def on_duration(event: str, duration: float, **_: Any) -> None:
        if event in EVENTS:
            times[EVENTS[event]] += duration
            if EVENTS[event] == "compile":
                compiles.append(duration)

    def on_event(event: str, **_: Any) -> None:
        hits[0] += event == CACHE_HIT

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    c0 = time.process_time()
    if spec.get("profile_dir"):  # (the filling process: its timings are not used)
        with jax.profiler.trace(spec["profile_dir"]):
            first, res = U.timed(solve)
    else:
        first, res = U.timed(solve)
    first_cpu = time.process_time() - c0
    breakdown, loop_compile, n_compiles, n_hits = dict(times), max(compiles, default=0.0), len(compiles), hits[0]
    stopped = spec["kind"] == "scipy" and first > spec["limit"]
    second, res = (math.nan, res) if stopped else U.timed(solve)
    out = {
        "first": first, "first_cpu": first_cpu, "second": second, **breakdown, "loop_compile": loop_compile,
        "rest": first - sum(breakdown.values()), "compiles": n_compiles, "cache_hits": n_hits,
        "f": U.ext_rosenbrock_np(np.asarray(params(res), np.float64))[0],
        "steps": {"scipy": lambda: int(res.nit), "optax": lambda: int(res[1])}.get(spec["kind"], lambda: int(res.steps))(),
        "status": {"scipy": lambda: str(res.message), "optax": lambda: "-"}.get(spec["kind"], lambda: res.status_enum.name)(),
        "stopped": stopped,
    }
    if spec.get("dump_dir"):
        out["ops"] = max((len(OP.findall(p.read_text())) for p in Path(spec["dump_dir"]).rglob("*.mlir")), default=0)
    if spec.get("profile_dir"):
        out["xla"] = compile_breakdown(_trace_events(spec["profile_dir"]))
    return out


def spawn(spec: dict) -> dict:
    """Run :func:`worker` in a fresh Python process; its JSON line back."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_DUMP_IR"))}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    cmd = [sys.executable, "-m", "benchmarks.first_call", "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {spec} exited with code {proc.returncode}: {proc.stderr[-2000:]}")
    out = json.loads(lines[-1])
    cache = " (cache on)" if spec.get("cache_dir") else ""
    what = f"{spec['kind']}{cache} {spec['method']} {spec['d']}-D {spec['dtype']}"
    print(f"I: {what}: first call {U.fmt_time(out['first'])}", file=sys.stderr, flush=True)  # progress
    return out


# -- the tables -------------------------------------------------------------
def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs) if runs else math.nan


def steps(runs: list[dict]) -> str:
    return f"{round(med(runs, 'steps')):,}"


def statuses(runs: list[dict]) -> str:
    return "/".join(sorted({r["status"] for r in runs}))


def spread(runs: list[dict], key: str) -> str:
    m = med(runs, key)
    return f"{(max(r[key] for r in runs) - min(r[key] for r in runs)) / m:.0%}" if runs and m > 0 else "n/a"


def close(f: float, best: float) -> bool:
    """Benchmark G's 'solved' rule: f within 1e-6·max(|f_best|, 0.01) of the best."""
    return math.isfinite(f) and f - best <= 1e-6 * max(abs(best), 0.01)


def answer(f_jaxgd: float, f_scipy: float, scipy_stopped: bool) -> tuple[str, bool]:
    """The 'same answer' cell, and whether jaxgd's answer passes: the same as
    scipy's, or (scipy stopped at the budget) at least as low."""
    best = min(f_jaxgd, f_scipy)
    if scipy_stopped:
        ok = close(f_jaxgd, best)
        return ("scipy stopped; jaxgd's f " + ("as low or lower" if ok else "HIGHER")), ok
    ok = close(f_jaxgd, best) and close(f_scipy, best)
    return ("yes" if ok else "NO"), ok


def measure(method: str, d: int, dtype: str, procs: int, budget: float) -> dict[str, Any]:
    """All processes of one (method, size, dtype): jaxgd cold, scipy cold, jaxgd with the filled cache."""
    spec = {"kind": "jaxgd", "method": method, "d": d, "dtype": dtype}
    out: dict[str, Any] = {"jaxgd": [], "scipy": [], "cached": [], "host": [], "optax": []}
    with tempfile.TemporaryDirectory(prefix="jaxgd_bench_I_") as tmp:
        cache, dump, prof = os.path.join(tmp, "cache"), os.path.join(tmp, "ir"), os.path.join(tmp, "profile")
        out["fill"] = spawn({**spec, "cache_dir": cache, "dump_dir": dump, "profile_dir": prof})
        for _ in range(procs):
            out["jaxgd"].append(spawn(spec))
            if method in SCIPY:  # minimize's default tier: the host loop for lbfgs/bfgs
                out["host"].append(spawn({**spec, "tier": "auto"}))
            if method in SCIPY and not any(r["stopped"] for r in out["scipy"]):
                out["scipy"].append(spawn({**spec, "kind": "scipy", "limit": budget}))
            out["cached"].append(spawn({**spec, "cache_dir": cache}))
            if method == "lbfgs":  # the same algorithm's loop written with optax: what XLA's compile of it costs
                out["optax"].append(spawn({**spec, "kind": "optax"}))
        if method == "lbfgs":  # ... and where it goes (one profiled process)
            out["optax_where"] = spawn({**spec, "kind": "optax", "profile_dir": os.path.join(tmp, "optax_profile")})
    return out


def run(opts: Any) -> list[U.Report]:
    methods = [m.strip() for m in (getattr(opts, "methods", None) or "lbfgs,bfgs,gd,adam").split(",") if m.strip()]
    bad = [m for m in methods if m not in OPTIONS]
    if bad:
        raise ValueError(f"--methods: unknown {bad}; choose from {list(OPTIONS)}")
    dims = U.parse_sizes(getattr(opts, "d", None), [10, 1000])
    dtypes = [t.strip() for t in (getattr(opts, "dtypes", None) or "float64,float32").split(",") if t.strip()]
    procs = max(1, int(getattr(opts, "procs", None) or 5))
    budget = float(getattr(opts, "budget", None) or 120.0)
    data = {(m, d, t): measure(m, d, t, procs, budget) for t in dtypes for d in dims for m in methods}
    if getattr(opts, "out", None):  # every process's numbers, for a later look
        Path(opts.out).mkdir(parents=True, exist_ok=True)
        records = [{"method": m, "d": d, "dtype": t, **r} for (m, d, t), r in data.items()]
        (Path(opts.out) / "bench_I_records.json").write_text(json.dumps(records, indent=1))

    first = U.Report(
        key="I", title=f"{TITLE}: jaxgd, median of {procs} fresh process{'es' if procs > 1 else ''}",
        columns=["method", "size", "dtype", "first call", "spread", "first call CPU", "trace", "lower",
                 "XLA compile (all)", "fused-loop compile", "run + host", "second call", "stablehlo ops",
                 "steps", "final f", "cache on, 2nd process: first call", "its XLA compile/load", "cache hits",
                 "optax lbfgs loop: XLA compile (steps)"],
        label="first call, jaxgd",
    )
    vs = U.Report(
        key="I", title=f"One-off solve vs scipy (jax.jit of value_and_grad included), median of {procs} "
                       f"fresh process{'es' if procs > 1 else ''}",
        columns=["method", "size", "dtype", "jaxgd first call (default: host tier)", "scipy", "scipy first call",
                 "jaxgd / scipy", "its XLA compile", "jaxgd second call (host)", "fused loop: first call", "fused / scipy",
                 "scipy second call", "jaxgd final f (steps, status)", "scipy final f (iters)", "same answer"],
        label="first call vs scipy",
    )
    where = U.Report(
        key="I", title="Where the fused loop's XLA compile goes (XLA:CPU's trace events, one profiled process)",
        columns=["method", "size", "dtype", "XLA compile (profiled)", "HLO passes", "LLVM codegen (module)",
                 "kernels through the fusion emitters", "their compile, summed over threads", "stablehlo ops",
                 "optax lbfgs loop: XLA compile (profiled)", "its HLO passes", "its LLVM codegen", "its kernels"],
        label="fused-loop compile, where",
    )
    for (m, d, t), r in data.items():
        j, c = r["jaxgd"], r["cached"]
        x, o = r["fill"]["xla"], r.get("optax_where", {}).get("xla")
        where.rows.append([
            m, f"{d:,}", t, U.fmt_time(x["compile"]), U.fmt_time(x["hlo_passes"]), U.fmt_time(x["codegen"]),
            f"{x['kernels']:,}", U.fmt_time(x["kernels_s"]) if x["kernels"] else "—", f"{r['fill']['ops']:,}",
            *([U.fmt_time(o["compile"]), U.fmt_time(o["hlo_passes"]), U.fmt_time(o["codegen"]), f"{o['kernels']:,}"]
              if o else ["—"] * 4),
        ])
        first.rows.append([
            m, f"{d:,}", t, U.fmt_time(med(j, "first")), spread(j, "first"), U.fmt_time(med(j, "first_cpu")),
            U.fmt_time(med(j, "trace")), U.fmt_time(med(j, "lower")), U.fmt_time(med(j, "compile")),
            U.fmt_time(med(j, "loop_compile")), U.fmt_time(med(j, "rest")), U.fmt_time(med(j, "second")),
            f"{r['fill']['ops']:,}", steps(j), U.fmt_float(med(j, "f"), 4),
            U.fmt_time(med(c, "first")), U.fmt_time(med(c, "compile")), f"{min(x['cache_hits'] for x in c)}",
            f"{U.fmt_time(med(r['optax'], 'loop_compile'))} ({steps(r['optax'])})" if r["optax"] else "—",
        ])
        if r["scipy"]:
            s = r["scipy"]
            stopped = any(x["stopped"] for x in s)
            n = f"{len(s)} process{'es' if len(s) > 1 else ''}"
            note = f" (stopped at the {budget:g} s budget; {n})" if stopped else ""
            h = r["host"]
            vs.rows.append([
                m, f"{d:,}", t, U.fmt_time(med(h, "first")), SCIPY[m] + note,
                ("≥ " if stopped else "") + U.fmt_time(med(s, "first")),
                ("≤ " if stopped else "") + U.fmt_ratio(med(h, "first") / med(s, "first")),
                U.fmt_time(med(h, "compile")), U.fmt_time(med(h, "second")),
                U.fmt_time(med(j, "first")), ("≤ " if stopped else "") + U.fmt_ratio(med(j, "first") / med(s, "first")),
                U.fmt_time(med(s, "second")),
                f"{U.fmt_float(med(h, 'f'), 4)} ({steps(h)}, {statuses(h)})",
                f"{U.fmt_float(med(s, 'f'), 4)} ({steps(s)})",
                answer(med(h, "f"), med(s, "f"), stopped)[0],
            ])
    for m in (x for x in ("lbfgs", "bfgs") if x in methods):
        for d in (x for x in (10, 1000) if x in dims):
            rs = {t: data[(m, d, t)] for t in dtypes}
            loop = {t: med(r["jaxgd"], "loop_compile") for t, r in rs.items()}
            floor = {t: med(r["optax"], "loop_compile") for t, r in rs.items() if r["optax"]}
            first.targets.append(U.Target(
                f"{m} {d:,}-D: fused-loop XLA compile ≤ {COMPILE_TARGET} s (goal {COMPILE_GOAL} s), fresh process",
                all(v <= COMPILE_TARGET for v in loop.values()),
                "; ".join(f"{U.fmt_time(v)} {t}" + (f" (optax's lbfgs loop: {U.fmt_time(floor[t])})" if t in floor else "")
                          for t, v in loop.items()),
            ))
            ratio = {t: med(r["host"], "first") / med(r["scipy"], "first") for t, r in rs.items()}
            stop = {t: any(x["stopped"] for x in r["scipy"]) for t, r in rs.items()}
            same = {t: answer(med(r["host"], "f"), med(r["scipy"], "f"), stop[t])[1] for t, r in rs.items()}
            vs.targets.append(U.Target(
                f"{m} {d:,}-D: first call ≤ scipy {SCIPY[m]}'s (jit of value_and_grad included), same answer",
                all(ratio[t] <= 1.0 and same[t] for t in rs),
                "; ".join(f"{'≤ ' if stop[t] else ''}{U.fmt_ratio(ratio[t])} {t}"
                          f"{' (scipy stopped)' if stop[t] else ''}{'' if same[t] else ', jaxgd answer worse'}"
                          for t in rs),
            ))
    first.notes = [
        "first call = trace + lower + XLA compile + run (imports, backend start-up and x0 excluded), wall time; "
        "'first call CPU' = the process's CPU time over it (all threads). trace / lower / XLA compile: sums of "
        "jax.monitoring's jaxpr_trace / jaxpr_to_mlir_module / backend_compile duration events during the first "
        "call (every program it compiles); 'fused-loop compile' = the longest backend compile (the solver's loop); "
        "'run + host' = first call − trace − lower − XLA compile (per process); steps: median over the "
        "processes. 'stablehlo ops' = stablehlo.* ops in the lowered text of the fused loop's module. Cache "
        "columns: a process with jaxgd.enable_compilation_cache(folder) after one process filled that folder; "
        "its 'XLA compile' is the cache load. spread = (max − min)/median of the first calls over the processes. "
        "'optax lbfgs loop': optax.lbfgs() in a hand-written lax.while_loop to the same gtol (1e-6, 2-norm), "
        "first call in fresh processes of its own: XLA's compile of the same algorithm's smallest loop, the "
        "baseline for issue 14 item 2's target (the issue measured 0.53 s for it at 10-D).",
        "gd: lr=2e-4, adam: lr=1e-3, both max_steps=1000 (all steps run); lbfgs, bfgs: jaxgd's defaults.",
    ]
    vs.notes = [
        "jaxgd first call: minimize's default (tier='auto'), which runs a problem's first lbfgs/bfgs calls on the "
        "host tier (jaxgd.host: the steps in Python over NumPy, one jitted value_and_grad, its XLA compile in the "
        "next column) up to its size limits (bfgs 400 parameters, lbfgs 20,000: above them the default is the "
        "fused loop); 'fused loop: first call' is tier='compiled' (trace + compile of the whole loop, + run).",
        "scipy.optimize.minimize(fg, x0, jac=True, method=...) with defaults; fg calls jax.jit(value_and_grad), "
        "compiled inside the timed first call. Final f: extended Rosenbrock in float64 NumPy at each answer; "
        "same answer: both within 1e-6·max(|f_best|, 0.01) of the lower one (a stopped scipy: jaxgd's within it). "
        f"A scipy solve still running after {budget:g} s (--budget) is stopped by its callback, not repeated, and its "
        "second call not made (n/a): its first call reads 'at least'. Issue 14 item 1 asks this comparison on the "
        "CUTEst suite (benchmark G); here it is one problem family.",
    ]
    where.notes = [
        "One process per row (the one that fills the cache; its own timings are not used) runs its first call "
        "under jax.profiler.trace; the columns are XLA:CPU's trace events inside the longest "
        f"{COMPILE_EVENT} (the fused loop's compile): '{HLO_PASSES} ...' summed, {CODEGEN} (LLVM on the whole "
        f"module), and {FUSION} (one kernel through XLA's fusion emitters, which jaxgd chooses per program: "
        "lbfgs above 512 parameters, bfgs above 2,048; '—' where the classic emitters compile it all), counted "
        "and summed over the threads that run them in parallel (so "
        "the parts need not add up to the compile). The profiler slows the compile a little. The optax columns "
        "(lbfgs rows): the same for optax.lbfgs() in a hand-written lax.while_loop (XLA's default emitters), "
        "one profiled process of its own.",
    ]
    return [first, where, vs]


def main(argv: Optional[list[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.first_call")
    p.add_argument("--worker", required=True, help="a JSON spec: measure in this process, print one JSON line")
    a = p.parse_args(argv)
    print(json.dumps(worker(json.loads(a.worker))), flush=True)


if __name__ == "__main__":
    main()
