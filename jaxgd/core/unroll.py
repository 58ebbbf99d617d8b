"""The solver loop as a reverse-differentiable scan: ``adjoint="unroll"``.

Reverse-mode differentiation through a ``lax.while_loop`` is impossible (its
trip count is data dependent), so this loop runs a fixed ``max_steps`` steps
as nested ``lax.scan``-s: an outer scan over ``ceil(max_steps / K)`` chunks,
each an inner scan of ``K = ceil(sqrt(max_steps))`` steps wrapped in
``jax.checkpoint``. The backward pass stores the state once per chunk and
recomputes a chunk's steps when it reaches it, so memory grows like
``sqrt(max_steps)`` states instead of ``max_steps``, for about one more
forward pass of compute (Griewank & Walther, "Evaluating Derivatives", 2nd
ed., SIAM 2008, chapter 12, checkpointing).

A step runs only while the run is live (status running and ``count <
max_steps``): ``lax.cond`` skips it afterwards, so results equal the
``while_loop``'s, and the derivative is that of the iterate actually
computed, through every step that ran. Under ``jax.vmap`` the ``cond``
becomes a select, so stopped runs compute (and discard) their steps.

What is differentiated: ``params``, ``loss``, ``aux`` and the state with
respect to ``x0``, ``args`` and the solver's numeric leaves (``lr`` as a float
or a jaxgd schedule's numbers, ``l1``, ``l2``, a rule's parameters). The
history and ``grad_norm`` are recorded under ``lax.stop_gradient``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from . import progress as _progress
from .. import _tree
from .._types import Params
from .status import History, Status

NOT_REVERSIBLE = (
    "adjoint='unroll' cannot reverse-differentiate {who}: its step runs a lax.while_loop "
    "(a line search, or the non-finite back-off of BarzilaiBorwein/Polyak/ReduceOnPlateau: an inner loop "
    "of data-dependent length); use adjoint='implicit', or a float lr or a schedule (jaxgd.schedules, optax)"
)


def chunk_length(max_steps: int) -> int:
    """``K = ceil(sqrt(max_steps))`` steps per checkpointed chunk (at least 1)."""
    return max(1, math.isqrt(max(max_steps - 1, 0)) + 1)


def _live(solver: Any, state: Any) -> jax.Array:
    return (state.status == Status.RUNNING) & (state.count < solver.max_steps)


def _step_live_only(solver: Any, args: tuple, live: jax.Array, state: Any) -> Any:
    """``solver.step``, differentiated only where ``live``.

    Under ``jax.vmap`` the ``lax.cond`` around it becomes a select and
    stopped runs compute a step too; a step from a converged state can have
    infinite partials (``1 / s^T y`` with ``s = 0``), and a zero cotangent
    times an infinite partial is NaN. Feeding those runs a ``stop_gradient``
    copy of their state keeps that NaN out of the derivative.
    """
    state = _tree.where(live, state, lax.stop_gradient(state))
    return solver._advance(state, args, running_known=False)  # (Solver.step without its host check of state)


def _one_step(solver: Any, args: tuple, state: Any, _: Any) -> tuple[Any, tuple]:
    live = _live(solver, state)
    new = lax.cond(live, lambda s: _step_live_only(solver, args, live, s), lambda s: s, state)
    new = new._replace(grad_norm=lax.stop_gradient(new.grad_norm))
    took = live & (new.count > state.count)
    nan = jnp.asarray(jnp.nan, new.value.dtype)
    entry = (solver.loss(new.params, new.value), new.alpha, new.grad_norm)
    entry = tuple(lax.stop_gradient(jnp.where(took, e.astype(nan.dtype), nan)) for e in entry)
    return new, entry


def run_unrolled(solver: Any, x0: Params, args: tuple) -> Any:
    """``solver.run(x0, *args)`` as checkpointed scans (see the module docstring).

    Returns:
      The :class:`jaxgd.Result` that ``solver.run`` returns: same params,
      status, steps and history.
    """
    state = solver.init(x0, *args)
    k = chunk_length(solver.max_steps)
    chunks = -(-solver.max_steps // k) if solver.max_steps else 0

    @jax.checkpoint
    def chunk(st: Any) -> tuple[Any, tuple]:
        return lax.scan(functools.partial(_one_step, solver, args), st, None, length=k)

    def outer(st: Any, _: Any) -> tuple[Any, tuple]:
        st, ys = chunk(st)
        if solver.progress_every:
            jax.debug.callback(_progress.update, st.count, lax.stop_gradient(solver.loss(st.params, st.value)), solver.max_steps)
        return st, ys

    n, every = solver.history_length(), solver.history_every
    history = solver.empty_history(state)
    if chunks:
        state, ys = lax.scan(outer, state, None, length=chunks)
        if n:
            history = History(*(y.reshape(-1)[every - 1 :: every][:n] for y in ys))
    result = solver.finish(state, history)
    if solver.progress_every:  # the bar ends where the run stopped and says why, as the loop's does
        jax.debug.callback(_progress.close, state.count, lax.stop_gradient(result.loss), solver.max_steps,
                           lax.stop_gradient(result.status))
    return result


def _has_while(jaxpr: Any) -> bool:
    """Whether a (closed) jaxpr runs a ``while`` anywhere, sub-jaxprs included."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while":
            return True
        for sub in _subjaxprs(eqn):
            if _has_while(sub):
                return True
    return False


def _subjaxprs(eqn: Any) -> list:
    out = []
    for v in eqn.params.values():
        for item in v if isinstance(v, (tuple, list)) else (v,):
            inner = getattr(item, "jaxpr", item)
            if hasattr(inner, "eqns"):
                out.append(inner)
    return out


def _step_has_while(solver: Any, x0: Params, args: tuple) -> bool:
    def step(s: Any, x: Params, a: tuple) -> Any:
        return s._advance(s.init(x, *a), a, running_known=False)  # (Solver.step, unchecked: init built the state)

    closed = jax.make_jaxpr(step)(solver, x0, args)
    return _has_while(closed.jaxpr)


def check_reversible(solver: Any, x0: Params, args: tuple) -> None:
    """Refuse, before anything compiles, a solver whose step holds a ``while_loop``.

    One step is traced (``jax.make_jaxpr``: nothing compiles). If it holds a
    ``while``, the step is traced again with the step-size rule replaced by a
    constant, to name the culprit: the ``lr`` rule or the ``method``.

    Raises:
      ValueError: naming the rule (or method) and suggesting ``adjoint='implicit'``.
    """
    if not _step_has_while(solver, x0, args):
        return
    from .stepsize import ScheduleRule

    plain = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(solver, is_leaf=lambda v: v is solver.rule),
        [ScheduleRule(1.0) if leaf is solver.rule else leaf
         for leaf in jax.tree_util.tree_leaves(solver, is_leaf=lambda v: v is solver.rule)],
    )
    if _step_has_while(plain, x0, args):
        raise ValueError(NOT_REVERSIBLE.format(who=f"method={solver.direction.name!r}"))
    rule = type(solver.rule).__name__
    raise ValueError(NOT_REVERSIBLE.format(who=f"the step-size rule lr={rule} (method={solver.direction.name!r})"))
