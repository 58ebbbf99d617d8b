"""Shared pieces of the benchmark suite: timing, reports, machine header, problems.

Timing rules (issue 6): every timed call ends in ``block_until_ready``; each
contender's first call (trace + compile + run) is timed on its own and
reported apart; then the contenders of one table run *interleaved*, repeat
after repeat, so a change in machine load hits all of them alike, and each
table shows the median over the repeats (at least 5).
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

MIN_REPEATS = 5


def _compiled_tier() -> None:
    """The benchmarks time jaxgd's fused loop: ``minimize`` calls that do not say run it
    (``tier="compiled"``); the host tier's rows (I, G's first calls) pass ``tier=`` themselves."""
    import jaxgd.host.tier

    jaxgd.host.tier.DEFAULT = "compiled"


_compiled_tier()


# -- timing ---------------------------------------------------------------
def block(tree: Any) -> Any:
    """Wait for every JAX array in ``tree`` (NumPy and Python values pass through)."""
    import jax

    for leaf in jax.tree_util.tree_leaves(tree):
        wait = getattr(leaf, "block_until_ready", None)
        if wait is not None:
            wait()
    return tree


@dataclass
class Timing:
    """Wall times of one contender: the first call and the timed repeats (seconds)."""

    first: float
    times: list[float] = field(default_factory=list)
    value: Any = None  # what the last call returned
    limited: bool = False  # fewer repeats than asked: the first call alone exceeded the time budget

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """(max - min) / median over the repeats: how noisy this row was."""
        return (max(self.times) - min(self.times)) / self.median if self.median > 0 else 0.0

    @property
    def compile(self) -> float:
        """First call minus a steady call: trace + compile (+ one-off transfers)."""
        return max(self.first - self.median, 0.0) if not self.limited else float("nan")

    def note(self) -> str:
        """'' normally; says how many runs a time-limited contender got."""
        return f" ({len(self.times)} run{'s' if len(self.times) > 1 else ''}: over the time budget)" if self.limited else ""


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = block(fn())
    return time.perf_counter() - t0, out


def measure(
    contenders: dict[str, Callable[[], Any]], repeats: int, inner: int = 1, budget: Optional[float] = None
) -> dict[str, Timing]:
    """Time each zero-argument callable: one first call, then ``repeats``
    interleaved rounds, in a new (seeded) order each round. With ``inner > 1`` each sample is the mean of that many
    back-to-back calls (for calls of a few microseconds). With ``budget``
    (seconds), a contender whose first call times ``repeats`` exceeds it gets
    only the repeats that fit (none: its first call is its time), and says so."""
    repeats = max(repeats, MIN_REPEATS)
    out: dict[str, Timing] = {}
    allowed: dict[str, int] = {}
    for name, fn in contenders.items():
        first, value = timed(fn)
        out[name] = Timing(first=first, value=value)
        allowed[name] = repeats
        if budget is not None and first * repeats > budget:
            allowed[name] = int(budget // max(first, 1e-9))
            out[name].limited = True
            if allowed[name] == 0:
                out[name].times.append(first)
    shuffle = np.random.default_rng(0)
    for r in range(repeats):
        # a new (seeded) order each round: a contender run right after a Python-bound one pays
        # for waking XLA's thread pool (benchmarks/RESULTS.md, session 15: 2.63 against 1.75 ms)
        names = list(contenders)  # (any hashable names: D's are tuples)
        for i in shuffle.permutation(len(names)):
            name = names[i]
            fn = contenders[name]
            if r >= allowed[name]:
                continue
            if inner == 1:
                dt, value = timed(fn)
            else:
                t0 = time.perf_counter()
                for _ in range(inner):
                    value = fn()
                block(value)
                dt = (time.perf_counter() - t0) / inner
            out[name].times.append(dt)
            out[name].value = value
    return out


# -- formatting -------------------------------------------------------------
def fmt_time(seconds: float) -> str:
    """A duration with a unit that keeps 3 significant digits."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def fmt_us(seconds: float) -> str:
    """Microseconds with 3 significant digits (per-step and per-call costs)."""
    us = seconds * 1e6
    return f"{us:.3g}" if us < 1000 else f"{us:,.0f}"


def fmt_ratio(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}×" if x < 1000 else f"{x:,.0f}×"


def fmt_float(x: Any, digits: int = 6) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return f"{v:.{digits}g}"


@dataclass
class Target:
    """One target line under a table: ``met`` is True, False or None (not measured)."""

    text: str
    met: Optional[bool]
    detail: str = ""

    def line(self) -> str:
        mark = {True: "MET", False: "MISSED", None: "NOT MEASURED"}[self.met]
        return f"- target: {self.text}: **{mark}**" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Report:
    """One benchmark's result: a markdown table plus notes and target lines."""

    key: str
    title: str
    columns: list[str]
    label: str = ""  # a short name for the summary (the configuration)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    skipped: Optional[str] = None  # a reason: the benchmark did not run
    failed: bool = False  # it did not run because it raised or its process died (--strict: exit 1)

    def markdown(self) -> str:
        out = [f"### {self.key}. {self.title}", ""]
        if self.skipped:
            out += [f"{'FAILED' if self.failed else 'SKIPPED'}: {self.skipped}", ""]
            return "\n".join(out)
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "|".join("---" for _ in self.columns) + "|")
        for row in self.rows:
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        out += [t.line() for t in self.targets]
        if self.targets:
            out.append("")
        out += [f"{n}" for n in self.notes]
        if self.notes:
            out.append("")
        return "\n".join(out)

    def summary(self) -> dict:
        return {
            "key": self.key,
            "title": self.label or self.title,
            "skipped": self.skipped,
            "failed": self.failed,
            "targets": [{"text": t.text, "met": t.met, "detail": t.detail} for t in self.targets],
        }


def skipped(key: str, title: str, reason: str, failed: bool = False) -> Report:
    """A benchmark that did not run: ``failed`` where it raised or its process died (``--strict`` exits 1), not where
    something it needs is missing."""
    return Report(key=key, title=title, columns=[], skipped=reason, label=title, failed=failed)


# -- the machine ------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str:
    try:
        mod = __import__(name)
    except Exception:
        return "not installed"
    return str(getattr(mod, "__version__", "?"))


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "?"
    except Exception:
        return "?"


def header(mode: str) -> str:
    """Date, machine, versions and process settings, as markdown."""
    import jax

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    devs = jax.devices()
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    lines = [
        "## jaxgd benchmarks",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores ({affinity} usable), "
        f"{platform.system()} {platform.release()}, load average {load} at start",
        f"- jax backend: {jax.default_backend()}, devices: {', '.join(str(d.device_kind) for d in devs)} ×{len(devs)}",
        f"- versions: python {platform.python_version()}, jax {_version('jax')}, jaxlib {_version('jaxlib')}, "
        f"optax {_version('optax')}, numpy {_version('numpy')}, scipy {_version('scipy')}, "
        f"optimistix {_version('optimistix')}, jaxgd {_version('jaxgd')} (git {git_commit()})",
        f"- OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '(unset)')}; {mode}",
        "- times are medians over the repeats; contenders of a table run interleaved in one process; "
        "'first call' = trace + compile + one run, reported apart; 'spread' = (max − min)/median of the repeats",
        "",
    ]
    return "\n".join(lines)


def have(module: str) -> bool:
    try:
        __import__(module)
        return True
    except Exception:
        return False


def x64_context() -> Any:
    """A context manager enabling float64 (restores the previous setting)."""
    import contextlib

    import jax

    state = getattr(jax, "enable_x64", None)
    if state is not None:
        try:
            return state(True)
        except TypeError:
            pass

    @contextlib.contextmanager
    def manual():
        old = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
        try:
            yield
        finally:
            jax.config.update("jax_enable_x64", old)

    return manual()


# -- problems ---------------------------------------------------------------
# Written here rather than taken from jaxgd.problems so that the suite runs on
# any branch; each is the textbook formula, in JAX and in NumPy with a
# hand-written gradient.
def rosenbrock(x: Any) -> Any:
    """The chained Rosenbrock function sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 (JAX)."""
    import jax.numpy as jnp

    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_np(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Chained Rosenbrock value and hand-written gradient (NumPy)."""
    a, b = x[:-1], x[1:]
    r = b - a * a
    value = float(np.sum(100.0 * r * r + (1.0 - a) ** 2))
    g = np.zeros_like(x)
    g[:-1] = -400.0 * a * r - 2.0 * (1.0 - a)
    g[1:] += 200.0 * r
    return value, g


def rosenbrock_start(d: int, dtype: Any) -> np.ndarray:
    """The classic start (-1.2, 1, -1.2, 1, ...)."""
    x = np.ones(d, dtype=dtype)
    x[::2] = -1.2
    return x


def _even_size(x: Any) -> None:
    """Extended Rosenbrock pairs x[2i] with x[2i + 1]: it is defined for an even size only."""
    if np.shape(x)[-1] % 2:
        raise ValueError(f"extended Rosenbrock needs an even number of variables; got d={np.shape(x)[-1]}")


def ext_rosenbrock(x: Any) -> Any:
    """Extended (separable) Rosenbrock, More, Garbow & Hillstrom (1981) problem 21 (JAX)."""
    import jax.numpy as jnp

    _even_size(x)
    odd, even = x[0::2], x[1::2]
    return jnp.sum(100.0 * (even - odd**2) ** 2 + (1.0 - odd) ** 2)


def ext_rosenbrock_np(x: np.ndarray) -> tuple[float, np.ndarray]:
    """Extended Rosenbrock value and hand-written gradient (NumPy)."""
    _even_size(x)
    odd, even = x[0::2], x[1::2]
    r = even - odd * odd
    value = float(np.sum(100.0 * r * r + (1.0 - odd) ** 2))
    g = np.empty_like(x)
    g[0::2] = -400.0 * odd * r - 2.0 * (1.0 - odd)
    g[1::2] = 200.0 * r
    return value, g


def same_work(vg: Callable, x0: Any, step: Callable, s0: Any, steps: int, lr: Any, dynamic_exit: bool) -> tuple:
    """The floor for ``minimize``'s step (issue 15): an update written by hand with the work every
    ``minimize`` step does besides it: the loss and gradient at the new point, its gradient norm
    and finiteness (one reduction, ``sum(g*g + 0*x)``), a run that stops (``gtol=0``: a zero
    gradient; or a non-finite point) keeps its last good point and state, the step count; and, as
    ``minimize``'s default, the loss, step size and gradient norm of every step recorded.

    ``vg``: ``value_and_grad`` of the loss; ``step(x, s, g) -> (x, s)`` the update from state
    ``s0``; ``lr`` the step size recorded. ``dynamic_exit``: a ``while_loop`` that ends when the
    run stops, as ``minimize``'s (the sequential floor, A); else a ``fori_loop`` over all ``steps``
    with the stopped runs masked (the floor under ``vmap``, D, where every run takes the same
    iterations). Returns ``(x, state, loss, grad, grad norm, running, count, history)``.
    """
    import jax
    import jax.numpy as jnp

    v0, g0 = vg(x0)

    def body(i: Any, c: tuple) -> tuple:
        x, s, v, g, gn, running, count, hist = c
        x1, s1 = step(x, s, g)
        v1, g1 = vg(x1)
        sq = jnp.sum(g1 * g1 + 0 * x1)
        take = running & jnp.isfinite(v1) & jnp.isfinite(sq)
        gn1 = jnp.sqrt(sq)
        hist = hist.at[i].set(jnp.where(take, jnp.stack([v1, jnp.asarray(lr, v1.dtype), gn1]), jnp.nan))
        keep = lambda a, b: jax.tree_util.tree_map(lambda p, q: jnp.where(take, p, q), a, b)  # noqa: E731
        running = take & (gn1 > 0.0)
        return keep(x1, x), keep(s1, s), keep(v1, v), keep(g1, g), keep(gn1, gn), running, count + take, hist

    init = (x0, s0, v0, g0, jnp.sqrt(jnp.sum(g0 * g0)), jnp.asarray(True), jnp.asarray(0, jnp.int32),
            jnp.full((steps, 3), jnp.nan, x0.dtype))
    if not dynamic_exit:
        return jax.lax.fori_loop(0, steps, body, init)
    return jax.lax.while_loop(lambda c: c[5] & (c[6] < steps), lambda c: body(c[6], c), init)


def optax_lbfgs_loop(fun: Callable, max_steps: int) -> Callable:
    """optax's ``lbfgs`` in a hand-written ``lax.while_loop`` (the issue 13 and 14 baseline), jitted:
    ``(x0, gtol) -> (x, iterations)``, stepping until the gradient's 2-norm is below ``gtol`` or
    ``max_steps`` iterations."""
    import jax
    import optax
    from jax import lax

    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(fun)

    @jax.jit
    def loop(x: Any, gtol: Any) -> tuple:
        def step(c: tuple) -> tuple:
            x, s = c
            v, g = vg(x, state=s)
            u, s = opt.update(g, s, x, value=v, grad=g, value_fn=fun)
            return optax.apply_updates(x, u), s

        def cond(c: tuple) -> Any:
            _, s = c
            k = optax.tree.get(s, "count")
            return (k == 0) | ((k < max_steps) & (optax.tree.norm(optax.tree.get(s, "grad")) >= gtol))

        x, s = lax.while_loop(cond, step, (x, opt.init(x)))
        return x, optax.tree.get(s, "count")

    return loop


def lbfgs_floor_loop(fun: Callable, max_steps: int, memory: int = 10) -> Callable:
    """The least an L-BFGS step can cost in one compiled ``lax.while_loop`` (issue 13 item 5's
    floor on this backend), jitted: ``(x0, gtol) -> (x, iterations)`` for a flat ``x0``.

    Nothing but the method: the two-loop recursion (Nocedal & Wright, Algorithm 7.4) unrolled over
    ``memory`` pairs kept newest first (static slices: no ring index), H0 = s'y / y'y, Armijo
    backtracking (c1 = 1e-4, halving) from a unit step, a pair kept when s'y > 0, and a stop at
    ``||g||_2 <= gtol`` or ``max_steps`` iterations. No Wolfe test, no restart, no statuses, no
    history, no last-good-point rollback. Of the variants tried (session 47: the ring with dynamic
    slot indices, the compact form with R^-1 from a triangular solve) it ran fastest."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    vg = jax.value_and_grad(fun)

    def direction(g: Any, s: Any, y: Any, rho: Any) -> Any:
        q, alphas = g, []
        for j in range(memory):  # newest first
            a = rho[j] * jnp.dot(s[j], q)
            q = q - a * y[j]
            alphas.append(a)
        yy = jnp.dot(y[0], y[0])
        gamma = jnp.where(rho[0] > 0, 1.0 / (rho[0] * yy), 1.0 / jnp.linalg.norm(g))  # (s'y / y'y of the newest pair)
        r = gamma * q
        for j in reversed(range(memory)):
            r = r + (alphas[j] - rho[j] * jnp.dot(y[j], r)) * s[j]
        return -r

    @jax.jit
    def loop(x0: Any, gtol: Any) -> tuple:
        f0, g0 = vg(x0)
        n = x0.shape[0]
        zeros = jnp.zeros((memory, n), x0.dtype)

        def step(c: tuple) -> tuple:
            k, x, f, g, s, y, rho = c
            d = direction(g, s, y, rho)
            slope = jnp.dot(g, d)

            def too_high(t: tuple) -> Any:
                return (t[1] > f + 1e-4 * t[0] * slope) & (t[3] < 30)

            def halve(t: tuple) -> tuple:
                alpha = 0.5 * t[0]
                fn, gn = vg(x + alpha * d)
                return alpha, fn, gn, t[3] + 1

            f1, g1 = vg(x + d)
            alpha, fn, gn, _ = lax.while_loop(too_high, halve, (jnp.ones((), x0.dtype), f1, g1, 0))
            xn = x + alpha * d
            sk, yk = xn - x, gn - g
            sy = jnp.dot(sk, yk)
            keep = sy > 0
            s = jnp.where(keep, jnp.concatenate([sk[None], s[:-1]]), s)
            y = jnp.where(keep, jnp.concatenate([yk[None], y[:-1]]), y)
            rho = jnp.where(keep, jnp.concatenate([(1.0 / jnp.where(keep, sy, 1.0))[None], rho[:-1]]), rho)
            return k + 1, xn, fn, gn, s, y, rho

        def more(c: tuple) -> Any:
            return (c[0] < max_steps) & (jnp.linalg.norm(c[3]) > gtol)

        start = (jnp.zeros((), jnp.int32), x0, f0, g0, zeros, zeros, jnp.zeros((memory,), x0.dtype))
        k, x, *_ = lax.while_loop(more, step, start)
        return x, k

    return loop


def parse_sizes(text: Optional[str], default: Sequence[int]) -> list[int]:
    if not text:
        return list(default)
    return [int(float(s)) for s in str(text).split(",") if s.strip()]


def python_tag() -> str:
    return f"{sys.executable} ({platform.python_version()})"
