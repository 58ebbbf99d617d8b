"""``minimize(..., adjoint=...)``: how a solve is differentiated.

- ``"implicit"`` (the default): :mod:`jaxgd.core.implicit`. The solve runs as
  always (the same compiled ``while_loop``); derivatives of ``params``,
  ``loss`` and ``aux`` with respect to ``args``, ``l1``, ``l2`` and ``bounds`` come from
  the implicit function theorem at the returned point.
- ``"unroll"``: :mod:`jaxgd.core.unroll`. The loop is a checkpointed scan of
  ``max_steps`` steps, differentiated step by step, with respect to ``x0``
  and ``lr`` too.

:func:`check` validates the keyword on the host; :func:`runner` returns the
jitted run for a mode (one per mode and inner run, cached), and
:func:`check_solver` refuses, before anything compiles, what a mode cannot do.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import _bounded, _tree
from ..interop import explain as _explain
from . import compile as _compile
from . import implicit as _implicit
from . import unroll as _unroll

MODES = ("implicit", "unroll")
BAD_ADJOINT = "adjoint must be one of {valid}; got adjoint={value!r}{hint}"


def check(adjoint: Any) -> str:
    """Validate ``adjoint=`` (before anything is traced or compiled).

    Raises:
      ValueError: not one of ``"implicit"``, ``"unroll"`` (the message names ``adjoint``, and the
        string for optimistix's ``ImplicitAdjoint()`` or ``RecursiveCheckpointAdjoint()``).
    """
    if not isinstance(adjoint, str) or adjoint not in MODES:
        alias = _explain.suggest_adjoint(adjoint)  # (optimistix's adjoint objects)
        hint = f" ({alias})" if alias else ""
        raise ValueError(BAD_ADJOINT.format(valid=", ".join(repr(m) for m in MODES), value=adjoint, hint=hint))
    return adjoint


def _abstract(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda v: jax.ShapeDtypeStruct(np.shape(v), jnp.result_type(v)), tree)


_REVERSIBLE = _bounded.Bounded(256)  # structure key -> True: checked (the last 256)


def check_solver(mode: str, solver: Any, x0: Any, args: tuple, differentiated: bool = False,
                 forward: bool = False) -> None:
    """Refuse what ``mode`` cannot differentiate, on the host (nothing compiles).

    ``"unroll"`` traces one step's reverse derivative (``jax.make_jaxpr``, cached per structure)
    and refuses a step that reverse mode cannot get through (a line search's ``while_loop``), naming
    the loss, the ``lr`` rule or the ``method``. ``"implicit"``, where ``differentiated`` (a ``jax.grad``
    or ``jvp`` tracer among the inputs), traces one Hessian-vector product and refuses a loss holding a
    ``jax.custom_vjp`` (no forward mode); where ``forward`` (``jax.jvp``'s tracer), also an aux that
    forward mode cannot give (:func:`jaxgd.core.implicit.check_aux_forward`).

    Raises:
      ValueError: from :func:`jaxgd.core.unroll.check_reversible`,
        :func:`jaxgd.core.implicit.check_forward` or :func:`jaxgd.core.implicit.check_aux_forward`.
    """
    if mode == "implicit":
        if differentiated:
            _implicit.check_forward(solver, x0, args)
        if forward:
            _implicit.check_aux_forward(solver, x0, args)
        return
    key = _tree.structure_key((solver, x0, args))
    if key is not None and key in _REVERSIBLE:
        return
    _unroll.check_reversible(*_abstract((solver, x0, args)))
    if key is not None:
        _REVERSIBLE[key] = True


def run(mode: str, plain: Callable, package: Callable, solver: Any, x0: Any, args: tuple) -> Any:
    """The run for ``mode``: what :func:`runner` jits, and what ``minimize`` traces inline (not under a
    ``jax.jit`` of its own) for a solver whose direction closes over a ``jax.vmap`` tracer (an optax
    transformation built from a vmapped value), which ``jax.vmap`` then batches as any ``while_loop``."""
    if mode == "implicit":
        return _implicit.run(plain, solver, x0, args)
    return package(_unroll.run_unrolled(solver, x0, args))


def runner(mode: str, plain: Callable, package: Callable) -> Callable:
    """The jitted ``(solver, x0, args) -> Result`` for ``mode`` (``minimize``
    caches it per loss function, weakly: :func:`jaxgd.core.cache.per_function`).

    Args:
      mode: ``"implicit"`` or ``"unroll"``.
      plain: the jitted while-loop run (``_run_compiled`` of ``minimize``).
      package: drops the result fields that copy state fields (``_drop_copies``).
    """
    solve = functools.partial(run, mode, plain, package)  # (solver, x0, args) -> Result
    if mode == "implicit":
        # Reached at the top level only through minimize_run's eager run (its own compile.jit) or
        # under a trace: nested, so jax.jit (no compiler options).
        return jax.jit(solve)
    return _compile.jit(solve, params_at=1)
