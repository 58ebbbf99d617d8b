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
from ..interop import explain as _explain
from .._types import Params
from .status import History, Status

NOT_REVERSIBLE = (
    "adjoint='unroll' cannot reverse-differentiate {who}: its step runs a lax.while_loop "
    "(a line search, or the non-finite back-off of BarzilaiBorwein/Polyak/ReduceOnPlateau: an inner loop "
    "of data-dependent length); use adjoint='implicit', or a float lr or a schedule (jaxgd.schedules, optax)"
)
LOSS_NOT_REVERSIBLE = (
    "adjoint='unroll' cannot reverse-differentiate the loss fun's gradient: it runs a lax.while_loop that reverse "
    "mode cannot get through; write that loop with lax.scan, or give it a derivative rule (jax.custom_vjp, "
    "lax.custom_root), or use adjoint='implicit'"
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


def _reverses(fn: Any, x0: Params, args: tuple, *rest: Any) -> bool:
    """Whether reverse mode gets through ``fn(x0, args, *rest)`` (a scalar) with respect to ``x0`` and the
    floating leaves of ``args``: JAX's own transposition, traced (``jax.make_jaxpr``: nothing compiles)."""
    leaves, tree = jax.tree_util.tree_flatten(args)
    real = [jnp.issubdtype(leaf.dtype, jnp.inexact) for leaf in leaves]

    def split(x: Params, floats: list, others: list, *r: Any) -> Any:
        f, o = iter(floats), iter(others)
        return fn(x, jax.tree_util.tree_unflatten(tree, [next(f) if k else next(o) for k in real]), *r)

    floats = [leaf for leaf, k in zip(leaves, real) if k]
    others = [leaf for leaf, k in zip(leaves, real) if not k]
    try:
        jax.make_jaxpr(jax.grad(split, argnums=(0, 1)))(x0, floats, others, *rest)
    except ValueError as err:
        if _explain.REVERSE_LOOP not in str(err):
            raise
        return False
    return True


def _total(tree: Any) -> Any:
    """One scalar that every leaf of ``tree`` reaches (what a reverse derivative is taken of)."""
    return sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in jax.tree_util.tree_leaves(tree))


def _step_reverses(solver: Any, x0: Params, args: tuple) -> bool:
    def step(x: Params, a: tuple, s: Any) -> Any:
        return _total(s._advance(s.init(x, *a), a, running_known=False).params)  # (Solver.step, unchecked)

    return _reverses(step, x0, args, solver)


def _gradient_reverses(solver: Any, x0: Params, args: tuple) -> bool:
    def slope(x: Params, a: tuple, s: Any) -> Any:
        return _total(jax.grad(lambda p: s.objective(p, *a)[0])(x))

    return _reverses(slope, x0, args, solver)


def check_reversible(solver: Any, x0: Params, args: tuple) -> None:
    """Refuse, before anything compiles, a solver whose step reverse mode cannot get through.

    One step's reverse derivative (with respect to ``x0`` and ``args``) is traced (``jax.make_jaxpr``:
    nothing compiles); JAX refuses a ``lax.while_loop`` on the way. A loop of the loss's own that reverse
    mode gets through (behind a ``jax.custom_vjp``, as ``jax.experimental.ode.odeint``'s, or
    ``lax.custom_root``) passes. Where the step is refused, the culprit is named: the loss (its gradient's
    own derivative is refused), else the ``lr`` rule (the step with a constant rule passes), else the
    ``method``.

    Raises:
      ValueError: naming the loss, the rule or the method, and what to use instead.
    """
    if _step_reverses(solver, x0, args):
        return
    if not _gradient_reverses(solver, x0, args):
        raise ValueError(LOSS_NOT_REVERSIBLE)
    from .stepsize import ScheduleRule

    plain = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(solver, is_leaf=lambda v: v is solver.rule),
        [ScheduleRule(1.0) if leaf is solver.rule else leaf
         for leaf in jax.tree_util.tree_leaves(solver, is_leaf=lambda v: v is solver.rule)],
    )
    if not _step_reverses(plain, x0, args):
        raise ValueError(NOT_REVERSIBLE.format(who=f"method={solver.direction.name!r}"))
    rule = type(solver.rule).__name__
    raise ValueError(NOT_REVERSIBLE.format(who=f"the step-size rule lr={rule} (method={solver.direction.name!r})"))
