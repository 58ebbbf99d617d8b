"""Which tier runs a ``minimize`` call: the host loop now, or the fused loop (issue 14 item 1).

``tier="auto"`` (the default): a problem (a loss function and the compiled program it
would run: the options' structure, and the shapes and dtypes of the option values, ``x0``
and ``args``) that the host tier supports
(:func:`unsupported`) runs on the host (:mod:`jaxgd.host.loop`, compiling only
``value_and_grad``); its second call queues the fused loop's XLA compile on one
background thread, and the calls after that compile run the fused loop. ``"host"``: always the host
loop (an error where it is not supported). ``"compiled"``: always the fused
loop (the first call waits for its compile), as before this tier existed.
Methods: ``lbfgs``, ``bfgs``, ``cg`` (any memory, variant or restart period)
with a :class:`~jaxgd.linesearch.MoreThuente` search, and ``lbfgs`` with ``bounds``
(L-BFGS-B, :mod:`jaxgd.host.lbfgsb`).

Only eager calls choose (concrete ``x0``, ``args`` and hyperparameters, the
implicit adjoint, no checkpoint): under ``jit``/``vmap``/``grad`` the loop is
part of the caller's program.
"""

from __future__ import annotations

import atexit
import queue
import threading
from typing import Any, Callable, Optional

import jax
import numpy as np

from .. import _tree
from ..core import cache as _cache
from ..core import compile as _compile
from ..core.combinations import base_name
from ..directions.lbfgsb import LbfgsbSearch
from ..linesearch.more_thuente import MoreThuente
from . import directions as _directions
from . import loop as _loop

TIERS = ("auto", "host", "compiled")
BAD_TIER = "tier must be one of {valid}, got tier={value!r}"
NOT_ON_HOST = (
    "tier='host' cannot run this call: {why}. The host loop runs method='lbfgs', 'bfgs' or 'cg' with a MoreThuente "
    "line search (their default lr; lbfgs also with bounds), without l1, l2, clip or accelerated, "
    "on float32 or float64 "
    "parameters of one dtype, called outside jit/vmap/grad and without checkpoints; use tier='auto' or 'compiled'"
)
UNKNOWN = object()  # Plan.host_why before it is known
# The tier of a call that does not say (tests and benchmarks that time the fused loop set "compiled").
DEFAULT = "auto"


def check(tier: Any) -> str:
    """``tier`` validated (None: :data:`DEFAULT`).

    Raises:
      ValueError: ``tier`` is not one of :data:`TIERS`.
    """
    if tier is None:
        return DEFAULT
    if not isinstance(tier, str) or tier not in TIERS:
        raise ValueError(BAD_TIER.format(valid=", ".join(map(repr, TIERS)), value=tier))
    return tier


def unsupported_solver(solver: Any) -> Optional[str]:
    """None when the host loop runs ``solver``'s method and options; else what it does not run."""
    if _directions.host_direction(solver.direction) is None:
        return f"method={solver.direction.name!r}"
    for name, on in (("l1", solver.prox.l1 is not None), ("l2", solver.l2 is not None),
                     ("clip", solver.clip is not None), ("accelerated", solver.accelerated)):
        if on:
            return f"{name} is set"
    # (bounds: only lbfgs's L-BFGS-B rule runs with them; bfgs, cg and lbfgs with another lr are refused with bounds)
    if not isinstance(solver.rule, (MoreThuente, LbfgsbSearch)):
        return f"lr={solver.rule!r}"
    return None


def _unsupported_x0(x0: Any) -> Optional[str]:
    dtypes = {np.dtype(x.dtype) for x in jax.tree_util.tree_leaves(x0)}
    if len(dtypes) != 1 or dtypes.pop() not in (np.dtype(np.float32), np.dtype(np.float64)):
        return "x0's leaves are not all float32 or all float64"
    return None


def unsupported(solver: Any, x0: Any) -> Optional[str]:
    """None when the host loop runs ``solver`` from ``x0``; else what it does not run."""
    return unsupported_solver(solver) or _unsupported_x0(x0)


# The most parameters for which tier="auto" runs a problem on the host: beyond them a step's
# NumPy work outweighs the fused loop's compile (bfgs: its dense n x n update, ~10 passes over H
# a step; 1,000-D extended Rosenbrock, 1,000 steps: 9.2 s on the host against 1.9 s compile
# included; benchmarks/RESULTS.md, session 13). L-BFGS-B ("lbfgs+bounds"): its host step is
# 1.7 ms at 1,000-D and 13.6 ms at 10,000-D, the fused loop's 0.6 and 4.4 ms after a compile of
# 1.9 and 2.9 s (bounded extended Rosenbrock, session 45): the host wins up to some 300 steps at
# 10,000-D, 1,700 at 1,000-D. tier="host" runs any size.
AUTO_MAX_SIZE = {"bfgs": 400, "lbfgs": 20_000, "cg": 20_000, "lbfgs+bounds": 5_000}


def prefers_host(solver: Any, x0: Any) -> bool:
    """For ``tier="auto"``: the problem is small enough for the host tier (:data:`AUTO_MAX_SIZE`), and its
    ``x0`` on one device."""
    name = "lbfgs+bounds" if isinstance(solver.rule, LbfgsbSearch) else base_name(solver.direction.name)
    return _tree.size(x0) <= AUTO_MAX_SIZE.get(name, 0) and not _on_several_devices(x0)


def _on_several_devices(x0: Any) -> bool:
    """Whether a leaf of ``x0`` lives on more than one device (sharded or replicated): the host loop would hand
    the result back on one device, dropping the placement the fused loop keeps (and a later resume with the
    sharded data then failed on incompatible devices)."""
    return any(map(_tree.on_several_devices, jax.tree_util.tree_leaves(x0)))


def check_host(solver: Any, x0: Any, eager: bool, path: Any = None, resume: Any = None) -> None:
    """Raise where ``tier="host"`` cannot run this call on the host (before anything is traced).

    Raises:
      ValueError: names ``tier`` and what the call has that the host loop does not run (a
        method, line search or option; a traced ``x0``/``args``/hyperparameter or
        ``adjoint="unroll"``, whose loop is compiled; a checkpoint or a resumed run).
    """
    why = unsupported(solver, x0)
    if why is None and (not eager or _compile.tracing()):
        why = "the call is traced (under jit/vmap/grad/eval_shape, or x0, args or a hyperparameter is a tracer), or adjoint='unroll'"
    if why is None and (path is not None or resume is not None):
        why = "checkpoint_path or resume is set"
    if why is not None:
        raise ValueError(NOT_ON_HOST.format(why=why))


def check_host_loss(x0: Any, loss_dtype: Any) -> None:
    """Raise where ``tier="host"`` meets a loss narrower than ``x0``'s leaves (a float32 loss of float64
    parameters: the host loop runs in one dtype, and the call went to the compiled loop, silently; a
    float64 loss of float32 parameters is taken in float32, ``Solver.objective``, and runs).

    Raises:
      ValueError: names ``tier``, the loss's dtype and ``x0``'s.
    """
    dtype = np.dtype(jax.tree_util.tree_leaves(x0)[0].dtype)
    if np.dtype(loss_dtype).itemsize < dtype.itemsize:
        raise ValueError(NOT_ON_HOST.format(why=f"fun returns a {np.dtype(loss_dtype).name} loss from {dtype.name} x0 "
                                                f"(the host loop evaluates the loss in x0's dtype)"))


def _signature(x0: Any, args: tuple) -> tuple:
    """What a compiled program is specialised to: shapes, dtypes, weak types, structure, x64 mode."""
    leaves, treedef = jax.tree_util.tree_flatten((x0, args))
    return treedef, tuple((np.shape(v), str(getattr(v, "dtype", type(v))), bool(getattr(v, "weak_type", False))) for v in leaves), bool(
        jax.config.jax_enable_x64
    )


# -- the background compiles --------------------------------------------------------------------
# One daemon thread runs the queued compiles, one at a time. At exit the queue is dropped and
# the compile in flight is waited for: a daemon thread that returns from XLA into Python while
# the interpreter shuts down is killed inside jaxlib's C++ frames, which aborts the process
# ("FATAL: exception not rethrown", seen in a benchmark worker).
_JOBS: "queue.Queue[Callable[[], None]]" = queue.Queue()
_WORKER: list = []
_PENDING = [0]
_LOCK = threading.Condition()
# Set at exit: no compile is queued from then on (other daemon threads still calling minimize refilled the queue
# as it was drained, and the exit waited up to 10 minutes; a user review in session 57).
_CLOSED = [False]


def _done_one() -> None:
    with _LOCK:
        _PENDING[0] -= 1
        _LOCK.notify_all()


def _work() -> None:
    while True:
        job = _JOBS.get()
        try:
            job()
        except Exception:  # noqa: BLE001  (a failed compile: the job recorded the problem "host", see run)
            pass
        finally:
            _done_one()


def _submit(job: Callable[[], None]) -> bool:
    """Queue ``job``; False (nothing queued) once the interpreter is exiting."""
    with _LOCK:
        if _CLOSED[0]:
            return False
        _PENDING[0] += 1
        if not _WORKER:
            t = threading.Thread(target=_work, name="jaxgd-compile", daemon=True)
            t.start()
            _WORKER.append(t)
        _JOBS.put(job)  # (under the lock: the exit's drain cannot run between the check and the put)
    return True


def wait(timeout: Optional[float] = None) -> bool:
    """Block until every queued background compile has finished; False on timeout."""
    with _LOCK:
        return _LOCK.wait_for(lambda: _PENDING[0] == 0, timeout)


@atexit.register
def _drain() -> None:
    """At exit: queue no more, drop the queued compiles, wait for the one in flight (see above)."""
    with _LOCK:
        _CLOSED[0] = True
    while True:
        try:
            _JOBS.get_nowait()
        except queue.Empty:
            break
        _done_one()
    wait(timeout=600.0)


def _records(fun: Any) -> dict:
    """The tier records of the programs that run ``fun`` (weak in ``fun``)."""
    return _cache.per_function(fun, "host-tiers", dict)


def run(tier: str, plan: Any, solver: Any, x0: Any, args: tuple, structure: Any, leaves: list) -> Any:
    """The host run's :class:`jaxgd.Result` for this call, or None when the fused loop runs it.

    With ``tier="auto"`` a problem (the compiled program the call would run: the loss function, the
    bucketed solver's ``structure``, and the :func:`_signature` of its ``leaves``, ``x0`` and ``args``)
    runs on the host until its fused loop has compiled; the compile is queued at its second call. A
    one-off solve (most scripts) then compiles nothing more than ``value_and_grad`` and exits at once; a
    repeated one moves to the fused loop about a second later. :func:`_records` keeps, per loss function
    and program, ``"once"``, ``"compiling"``, ``"compiled"`` or ``"host"`` (its background compile
    raised: every later call runs on the host, which works, rather than compile again in the foreground
    and raise there): shared by every call that runs that program, whatever its option values (a sweep
    over ``gtol``, bounds given as arrays: a record kept per set of options began empty for each, and
    every call ran on the host).
    """
    if tier == "compiled" or _compile.tracing():  # under a user's jit/eval_shape (inputs concrete): compiled
        return None
    if plan.host_why is UNKNOWN:  # the method and options: once per plan (a repeated gd call pays a lookup)
        plan.host_why = unsupported_solver(solver)
    if plan.host_why is not None or _unsupported_x0(x0) is not None or (tier == "auto" and not prefers_host(solver, x0)):
        return None
    records, key = _records(solver.fun), (structure, _signature((leaves, x0), args))
    seen = records.get(key)
    if tier == "auto" and seen == "compiled":
        return None
    result = _loop.run(solver, x0, args, structure, leaves)
    if result is None:  # a loss of another dtype than x0: the fused loop
        return None
    if tier != "auto":
        return result
    with _LOCK:  # (read and set at once: threads solving one problem queued a compile each)
        seen = records.get(key)
        if seen is None:
            records[key] = "once"
        elif seen == "once":
            records[key] = "compiling"
    if seen == "once":
        x64 = bool(jax.config.jax_enable_x64)  # the caller's mode (a jax.enable_x64 context is per thread)

        def job() -> None:
            try:
                with jax.enable_x64(x64):
                    plan.precompile(x0, args)
            except Exception:
                records[key] = "host"  # (tier="compiled" raises the error in the caller's thread)
                raise
            records[key] = "compiled"

        if not _submit(job):
            records[key] = "once"
    return result
