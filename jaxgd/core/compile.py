"""jaxgd's ``jax.jit``: its own compiled programs, built with the XLA options that suit them.

Every program jaxgd compiles itself (``minimize``'s loop, ``fit``'s epochs,
the checkpointed chunks) goes through :func:`jit`. On XLA:CPU these programs
are mostly many small kernels over scalars and short vectors (the loop's
tests, the line search's interval arithmetic, the history rows), and XLA's
MLIR fusion emitters spend 10-17 ms compiling each kernel, whatever its size.
XLA's classic emitters (``xla_cpu_use_fusion_emitters=False``) compile the
same kernels 2-2.5x faster, with the same iterates to rounding; bit for bit
where checked for a loop of one step per iteration (gd, adam, momentum,
lbfgs, bfgs, cg at 10-D; the whole suite passes either way), but not
everywhere (below): 10-D Rosenbrock, float64, XLA compile of the fused loop
``lbfgs`` 1.45 -> 0.65 s, ``bfgs`` 1.84 -> 0.82 s, ``gd`` 0.35 -> 0.24 s
(issue 14; run times in ``benchmarks/RESULTS.md``).

They cost run time on large arrays, where the fusion emitters vectorise
and split a kernel across threads better: measured here (float64, 40 steps,
run of the compiled loop, classic / fusion emitters) ``bfgs`` 0.99 at 10-D,
1.04 at 30-D, 1.10-1.13 at 60-100-D, 1.28 at 400-D (its n x n matrix),
``lbfgs`` 1.02 at 100-D, 1.13 at 1,000-D; ``gd`` and ``adam`` at 100-D 0.85-1.0.
They also make the bits depend on how the loop body is cut into kernels: a
block of ``K > 1`` unrolled steps (``unroll=``, ``jaxgd.core.driver``)
rounds differently from ``K = 1`` under them (``lbfgs`` with a line search on
4-D Rosenbrock), where the fusion emitters give the same bits for every
``K`` (``tests/test_blocks.py``). So a loop of blocks compiles with JAX's
defaults (:func:`same_bits`). Even with ``K = 1`` the two emitters can round
differently (session 14, extended Rosenbrock, ``lbfgs``: at 100-D float64 the
last bits of the history and the L-BFGS memory; at 1,000-D float32 the same 35
steps ending with another status and 4 more evaluations): a run's bits depend
on which emitters compiled it, as on the XLA version.

And jaxgd uses them only for a *small* problem, one whose parameters hold at
most :data:`SMALL` numbers in all (the data may be large: the loss's own
arrays are few and run as well either way), where the compile is nearly all
of a one-off solve; a larger problem compiles as JAX would. For ``bfgs``,
``cg`` and L-BFGS-B (``lbfgs`` with ``bounds``) the limit is higher
(:data:`QUASI_NEWTON_SMALL`, a few thousand): their programs are mostly the
line search's scalar logic and reductions, which the classic emitters run as
fast (L-BFGS-B and ``cg`` faster; float64 bits checked equal at 1,000-4,000
parameters). Unconstrained ``lbfgs`` stops at 512: on an AMD EPYC (sessions
14-15) the classic emitters ran it 1.15-1.31x slower at 600-4,000 parameters
(its two-loop recursion's dot products), against 0.1-0.5 s more of compile
with the fusion emitters; its direction is now in compact form (above 512
parameters since session 46, above 16 since session 47), which they still run
1.10-1.15x slower at 1,000-4,000 parameters, for 0.25 s less compile (session
46, ``benchmarks/RESULTS.md``):
repeated calls keep the faster loop, and a one-off call runs on the host tier.

JAX accepts compiler options on a top-level ``jax.jit`` only, so a function
from :func:`jit` holds two: one with the options, called for a small problem
when no trace is active (an ordinary call from a script), and a plain one,
called otherwise: inside another jit (jaxgd's own, or the user's, whose
program is compiled with the user's options), under ``vmap``/``grad``, or
for a large problem or a loop of blocks. They trace the same program. On
other backends, or where this XLA does not know an option (it says so at
the first compile, which then runs plain, as every later one does), both
are the plain one. A jit that only ever runs nested inside another is a
plain ``jax.jit``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax

from .combinations import base_name

# XLA:CPU options of jaxgd's top-level programs (jax.jit(compiler_options=...), parsed like XLA_FLAGS).
CPU_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}
SMALL = 256  # the most parameters (numbers, over all leaves) of a problem compiled with CPU_OPTIONS
# ... for the quasi-Newton methods, whose programs the classic emitters run as fast at larger sizes
# (benchmarks/RESULTS.md, session 11: classic / fusion run time at 1,000-4,000 parameters, float64,
# extended Rosenbrock, one process: lbfgs 0.97-1.01, lbfgs with bounds 0.86-0.87, cg 0.82, bfgs 1.02-1.03
# at 1,000-2,000; fused-loop compile 0.4-1.1 s shorter; the same float64 bits there), and not the first-order ones
# (adam 1.15-1.17 and momentum 1.12 at 1,000-2,000 parameters). Unconstrained lbfgs stops at 512
# (session 15, AMD EPYC, one process, classic / fusion run time: 1.06 at 400-D, 1.15 at 600-D,
# 1.31 at 1,000-D, 1.17 at 4,000-D float64, 1.30 at 1,000-D float32, where the fused-loop compile
# is 0.1-0.5 s longer with the fusion emitters; its two-loop recursion's dot products); lbfgs with
# bounds (L-BFGS-B, "lbfgs-b" here), cg (0.83 at 1,000-D) and bfgs (1.05) keep the classic emitters. Session 46
# (Zen 4, lbfgs's compact form above 512 parameters): classic / fusion 1.10 at 1,000-D, 1.15 at 2,000-D, 1.14 at
# 4,000-D float64, XLA compile 1.05-1.09 -> 0.80-0.85 s; the limit stays.
QUASI_NEWTON_SMALL = {"lbfgs": 512, "lbfgs-b": 4096, "cg": 4096, "bfgs": 2048}


def without_debug_nans(fn: Callable) -> Callable:
    """``fn`` (``minimize``, ``fit``) run with ``jax_debug_nans`` off where a user turned it on: jaxgd's loop
    holds NaNs by design (a trial step's loss that is not finite, backed off; the history rows a run does not
    reach), which the flag read as the user's NaN in every compiled run; a NaN the loss gives at an iterate
    ends the run ``NONFINITE`` with the last finite point, where the flag then finds its source."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if jax.config.jax_debug_nans:
            with jax.debug_nans(False):
                return fn(*args, **kwargs)
        return fn(*args, **kwargs)

    wrapped.__defaults__, wrapped.__kwdefaults__ = fn.__defaults__, fn.__kwdefaults__  # (wraps copies neither)
    return wrapped


def _never() -> bool:  # pragma: no cover - a JAX without the test: never pass options
    return False


try:  # JAX's own test for "no trace is active"
    from jax._src.core import trace_state_clean as _trace_state_clean
except ImportError:  # pragma: no cover
    _trace_state_clean = _never


def tracing() -> bool:
    """True under a JAX transformation (``jit``, ``vmap``, ``grad``, ...): a value a function
    closes over may then be a tracer (True too where this JAX lacks the test)."""
    return not _trace_state_clean()


def same_bits(solver: Any) -> bool:
    """True when ``solver``'s loop runs one step per iteration (``unroll`` unset or 1: the
    CPU default): the classic emitters are used only there, so that a run's bits do not
    depend on its block size (see the module doc)."""
    return getattr(solver, "unroll", None) in (None, 1)


def classic_limit(solver: Any) -> int:
    """The most parameters for which a top-level program of ``solver`` compiles with
    :data:`CPU_OPTIONS`: 0 for a loop of blocks (:func:`same_bits`), :data:`QUASI_NEWTON_SMALL`
    for ``bfgs``/``lbfgs``/``cg`` (L-BFGS-B its own), else :data:`SMALL`."""
    if not same_bits(solver):
        return 0
    name = base_name(getattr(getattr(solver, "direction", None), "name", ""))
    if name == "lbfgs" and _is_lbfgsb(solver):
        name = "lbfgs-b"
    return QUASI_NEWTON_SMALL.get(name, SMALL)


def _is_lbfgsb(solver: Any) -> bool:
    """True when ``solver`` runs L-BFGS-B (``lbfgs`` with ``bounds``: its own search rule)."""
    from ..directions import lbfgsb  # (imported here: the directions import this module's users)

    return isinstance(getattr(solver, "rule", None), lbfgsb.LbfgsbSearch)


def _small(tree: Any, limit: int) -> bool:
    """True when the arrays in ``tree`` hold at most ``limit`` numbers in all; for a run's result
    (a ``Result``/``FitResult``, which a checkpointed or resumed run continues from), those of its
    ``params``: the same test as the run that started from the parameters (counting the whole
    result, its memory and history, compiled the continuation with the other emitters, whose
    rounding differs: a resumed ``lbfgs`` or ``fit`` was not bit for bit the uninterrupted run)."""
    fields = getattr(tree, "_fields", ())
    if "params" in fields and "state" in fields:
        tree = tree.params
    total = 0
    for leaf in jax.tree_util.tree_leaves(tree):
        total += getattr(leaf, "size", 1)
        if total > limit:
            return False
    return True


_REFUSED: list = []  # the error text, once this XLA has refused CPU_OPTIONS


def options() -> dict[str, Any]:
    """The options for this process's default backend: :data:`CPU_OPTIONS` on a CPU,
    unless this XLA has refused them once (no such compile option), else none."""
    if _REFUSED or jax.default_backend() != "cpu":
        return {}
    return CPU_OPTIONS


def _is_refusal(err: Exception) -> bool:
    """True when ``err`` is XLA refusing one of :data:`CPU_OPTIONS` (an XLA without it)."""
    text = str(err)
    return "compile option" in text and any(name in text for name in CPU_OPTIONS)


class _Jit:
    """A top-level ``jax.jit`` with :func:`options` and a plain one for nested calls (see the module doc)."""

    __slots__ = ("plain", "_fn", "_params_at", "_solver_at", "_kwargs", "_tuned", "__wrapped__")

    def __init__(self, fn: Callable, params_at: int, solver_at: Optional[int], kwargs: dict[str, Any]) -> None:
        self.plain = jax.jit(fn, **kwargs)
        self._fn, self._params_at, self._solver_at, self._kwargs, self._tuned = fn, params_at, solver_at, kwargs, None
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        at = self._solver_at
        return self.call(SMALL if at is None else classic_limit(args[at]), *args, **kwargs)

    def chosen(self, limit: int, args: tuple) -> Any:
        """The jit :meth:`call` runs for ``args``: the one with the options, or the plain one
        (a caller that makes many calls of one shape picks it once)."""
        if not limit or not _trace_state_clean() or not _small(args[self._params_at], limit):
            return self.plain
        tuned = self._tuned
        if tuned is None:
            opts = options()
            tuned = self._tuned = jax.jit(self._fn, compiler_options=opts, **self._kwargs) if opts else self.plain
        return tuned

    def precompile(self, limit: int, *args: Any) -> None:
        """Compile, without running, the program ``call(limit, *args)`` would run (JAX's caches
        keep it: that call then starts at once). Used from a background thread (jaxgd.host.tier)."""
        self.chosen(limit, args).lower(*args).compile()

    def call(self, limit: int, *args: Any, **kwargs: Any) -> Any:
        """The call, with the options only for at most ``limit`` parameters, at the top level
        (``limit``: :func:`classic_limit` of the solver; 0: never)."""
        tuned = self.chosen(limit, args)
        if tuned is self.plain:
            return tuned(*args, **kwargs)
        try:
            return tuned(*args, **kwargs)
        except Exception as err:  # an XLA without the option: remember, and compile as JAX would
            if not _is_refusal(err):
                raise
            _REFUSED.append(str(err))
            self._tuned = self.plain
            return self.plain(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        """``lower``, ``trace``, ``eval_shape``, ...: the plain jit's (JAX's default compile)."""
        return getattr(self.plain, name)


def jit(fn: Callable, params_at: int, solver_at: Optional[int] = 0, **kwargs: Any) -> Any:
    """``jax.jit(fn, **kwargs)``, compiled with :func:`options` when called at the top level
    for a small problem: positional argument ``params_at`` (the parameters, or a tree that
    holds them) has at most :func:`classic_limit` numbers for the Solver at ``solver_at``
    (None: the caller gives the limit, through ``.call(limit, ...)``), which runs one step
    per loop iteration."""
    return _Jit(fn, params_at, solver_at, kwargs)
