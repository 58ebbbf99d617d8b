"""``minimize``: validate on the host, then run the solver's loop under one cached jit.

Host-side checks run before anything compiles. Checks that only need shapes
and dtypes (a real scalar loss through ``jax.eval_shape``, float leaves) are
cached per (function, input structure), so a repeated call pays neither
``eval_shape`` nor re-tracing; checks that need values (finite ``x0``, a
positive ``lr``) are skipped for tracers, so ``minimize`` works under
``jax.jit`` and ``jax.vmap``.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Optional

import jax

from . import adjoint as _adjoint  # adjoint hook (issue 12)

from . import compile as _compile

from . import options as _options
from .options import default as _D

from . import progress as _progress
from . import minimize_run as _run

from ..checkpoint import resume as _resume
from ..host import tier as _host_tier
from ..interop import models as _models

from .. import _mesh, _tree
from . import solver as _solver
from .loss_check import check_loss
from .x0_check import NONFINITE_X0, X0_OVERFLOWS, _as_params, _finite, as_params  # noqa: F401 (fit's, minimize's)
from .status import Result
from .._types import ArrayLike, LossFn, Params

UNKNOWN_KWARG = _options.UNKNOWN_KWARG
ARGS_NOT_TRACEABLE = (
    "args{path} is a {kind}: minimize traces every leaf of args as an array (for jit, vmap and the adjoint), so "
    "a leaf must be an array or a Python number; close over a static value instead: "
    "functools.partial(fun, {name}=...) or a closure (lambda params, *args: fun(params, ..., {name}=...))"
)


def check_args(args: tuple) -> None:
    """Raise ``TypeError`` (:data:`ARGS_NOT_TRACEABLE`, naming the leaf's path) for a leaf of ``args`` that is
    neither an array nor a Python number (a string, a function, another object): ``minimize`` traces every leaf.
    (``Solver``, stepped eagerly, passes such leaves as they are.)"""
    for path, leaf in jax.tree_util.tree_flatten_with_path(args)[0]:
        if not (_tree.is_array(leaf) or isinstance(leaf, (bool, int, float, complex))
                or hasattr(leaf, "__jax_array__")):
            key = getattr(path[-1], "key", getattr(path[-1], "name", None)) if path else None
            raise TypeError(ARGS_NOT_TRACEABLE.format(
                path=jax.tree_util.keystr(path), kind=type(leaf).__name__,
                name=key if isinstance(key, str) and key.isidentifier() else "value"))


@_compile.without_debug_nans
@_options.document
def minimize(
    fun: LossFn,
    x0: Params,
    args: Any = (),
    *,
    method: Any = _D("method"),
    lr: Any = _D("lr"),
    max_steps: int = _D("max_steps"),
    gtol: ArrayLike = _D("gtol"),
    gtol_norm: Optional[float] = _D("gtol_norm"),
    ftol: ArrayLike = _D("ftol"),
    xtol: ArrayLike = _D("xtol"),
    l1: ArrayLike = _D("l1"),
    l2: ArrayLike = _D("l2"),
    clip: Optional[ArrayLike] = _D("clip"),
    history: bool | int = _D("history"),
    progress: bool | int = _D("progress"),
    has_aux: bool = _D("has_aux"),
    checkpoint_every: Optional[int] = None,
    checkpoint_path: Optional[str | os.PathLike] = None,
    resume: Any = None,
    bounds: Any = _D("bounds"),
    accelerated: bool = _D("accelerated"),
    adjoint: str = "implicit",
    unroll: Optional[int] = _D("unroll"),
    tier: Optional[str] = None,
    **unknown: Any,
) -> Result:
    """Minimise ``fun(params, *args)`` from ``x0`` in one jit-compiled loop.

    Each step moves along a direction ``d_k`` (``method``) by a step size
    ``alpha_k`` (``lr``: constant, schedule or line search), then applies the
    proximal step of any non-smooth penalty:

    .. math::
       \\theta_{k+1} = \\mathrm{prox}_{\\alpha_k h}(\\theta_k + \\alpha_k d_k),
       \\qquad d_k = \\mathrm{direction}(\\nabla f(\\theta_k)).

    With ``method="gd"`` this is gradient descent (Cauchy, 1847), or ISTA with
    ``l1`` (Beck & Teboulle, SIAM J. Imaging Sci. 2009). The loop stops at
    the first of: gradient norm (``gtol_norm``) <= ``gtol``; relative loss change <= ``ftol``;
    step length <= ``xtol``; ``max_steps``; a non-finite loss or gradient
    (``Status.NONFINITE``, returning the last finite iterate).

    Hyperparameter values (``lr``, tolerances, ``l1``, ``l2``, ``clip``) are
    traced: a new value re-uses the compiled loop, and ``jax.vmap`` over them
    works. ``minimize`` may itself be called under ``jax.jit``/``jax.vmap``.

    Args:
      fun: the loss, ``fun(params, *args) -> scalar`` (``(scalar, aux)``
        with ``has_aux=True``); keep the same function object across calls
        to re-use the compiled loop.
      x0: the starting point, any pytree of real floating arrays; the result
        keeps its structure and dtypes, as JAX holds them (a NumPy float64
        ``x0`` runs, and comes back, in float32 unless ``jax_enable_x64`` is on).
      args: extra arguments passed to ``fun`` (a tuple; a single non-tuple
        value is wrapped), a pytree whose every leaf is traced: arrays and
        Python numbers (a traced scalar: no slice bound, shape or ``if``);
        a static value (a string, a function) goes in ``fun``'s closure,
        ``functools.partial(fun, mode="lp")``.
      {options:method,lr,max_steps,gtol,gtol_norm,ftol,xtol,l1,l2,clip,history,progress,has_aux,unroll}
      checkpoint_every: save a checkpoint every this many steps: the compiled
        loop runs in chunks of ``checkpoint_every`` steps (one compiled
        chunk, re-used) and the :class:`jaxgd.Result` so far is written to
        ``checkpoint_path`` after each, atomically
        (:func:`jaxgd.save_checkpoint`). Each save copies the state to the
        host, so pick a period of seconds to minutes, not single steps.
      checkpoint_path: the checkpoint file. Alone (without
        ``checkpoint_every``) the final result is written once at the end.
      resume: continue a run instead of starting at ``x0``: a checkpoint path
        (written with ``checkpoint_path``) or a :class:`jaxgd.Result` from an
        earlier call. ``x0`` then only gives the expected structure, shapes
        and dtypes, and a mismatch raises. Pass the same ``fun``, ``args``
        and options as the interrupted run, in the same 64-bit mode (a float32
        run rounds otherwise with JAX's x64 mode on than off): the result is then bit for bit
        the one an uninterrupted run of the compiled loop gives (params, loss,
        history, status, steps). A file records ``method``, ``lr``, ``l1``,
        ``l2``, ``clip``, ``bounds``, ``accelerated`` and ``history``, and a
        call with other values is refused (naming each); tolerances and
        ``max_steps`` may differ. A ``Result``'s settings are not checked, so
        ``minimize(fun, r.params, ..., lr=lower, resume=r)`` goes on from ``r``'s
        solver state (momentum, moments or curvature pairs, step count) with
        another ``lr`` on purpose. Runs with checkpoints or ``resume`` always
        run it, where ``tier="auto"``'s first call of ``lbfgs``, ``bfgs`` or
        ``cg`` runs on the host tier, whose iterates can part from it by
        rounding (see ``tier``; ``tier="compiled"`` for the same bits).
        ``max_steps`` may be raised to extend a finished run, and a ``GTOL``
        stop continues under a tighter ``gtol``; an ``FTOL`` or ``XTOL`` stop
        continues only with that test off (``ftol=0``/``xtol=0``: the last
        step's change is not kept to test a tighter value against).
      {options:bounds,accelerated}
      adjoint: how ``jax.grad``/``jvp``/``jacfwd``/``jacrev`` differentiate
        the result (forward and reverse mode, under ``jit`` and ``vmap``;
        nothing changes when nobody differentiates).
        ``"implicit"`` (default): derivatives of ``params``, ``loss`` and
        ``aux`` with respect to ``args``, ``l1``/``l2`` and ``bounds`` by the
        implicit function theorem at the returned point (``grad f = 0``, or
        the proximal fixed point on the support/free set with
        ``l1``/``bounds``; a coordinate at a bound moves with that bound;
        one at a bound, or at 0 under ``l1``, with a zero gradient there is a
        point where the solution is not differentiable: the derivative is then
        one of the one-sided ones, which depends on where the iterate landed,
        as ``adjoint="unroll"``'s does on ``lr``),
        solved by conjugate gradients on Hessian-vector products; zero with
        respect to ``x0``, ``lr``, tolerances and ``clip``, and
        for ``grad_norm``, ``history`` and the other ``state`` fields.
        Differentiable values reach ``fun`` through ``args`` or through its
        closure (under a transformation, the values ``fun`` captures are
        passed to the loop as arguments, so ``jax.grad``/``jax.vmap`` over a
        captured value work as over ``args``). If the run did not converge (``status`` is not a
        success) the derivative is still the implicit-function formula
        evaluated at the returned point: it is the derivative of the exact
        solution only to first order in the remaining gradient norm, and
        meaningless far from a minimiser; where the Hessian is not positive
        definite there (a saddle, a non-convex problem), or conjugate
        gradients cannot solve its system to the square root of their
        tolerance, the derivative is NaN, never a wrong number (reverse
        mode solves once per output entry: an entry whose solve never meets
        the negative curvature is finite, the implicit-function value). Higher
        derivatives (``jax.hessian``, ``grad`` of ``grad``) differentiate
        the formula with the solution's own derivative, except in reverse mode
        inside ``lax.scan``/``lax.map`` where the solve's arguments come from the
        scanned values: there JAX's partial evaluation of the scan body runs the
        solve in place of its derivative rule, and the second derivative reads 0
        (``jax.jacfwd(jax.jacfwd(f))``, a ``lax.fori_loop`` or a Python loop give
        the formula's value; so does ``adjoint="unroll"``). A loss defined inside a traced function (a lambda
        in a ``lax.scan`` body) is held by jaxgd for its derivative, the last 64 such; a traced program
        with more solves of such losses fails with "'NoneType' object is not callable": define the loss
        outside. ``adamw`` with ``l2`` (decoupled decay)
        is refused when differentiated. ``"unroll"``: the exact derivative of
        the iterate computed, through every step that ran, also with respect
        to ``x0`` and ``lr`` (a float, a jaxgd schedule's numbers, or the
        values an optax schedule closes over); the loop then always runs
        ``max_steps`` scan steps (skipped once stopped) with
        ``sqrt(max_steps)`` checkpoints (``jax.checkpoint``), and a step-size
        rule with an inner ``while_loop`` (``Backtracking``, ``StrongWolfe``,
        ``Exact`` and ``MoreThuente``, the default of ``bfgs``/``lbfgs``/``cg``; the
        non-finite back-off of ``BarzilaiBorwein``, ``Polyak`` and
        ``ReduceOnPlateau``) is refused: pass a float or a schedule.
        Runs with ``checkpoint_every``/``checkpoint_path``/``resume`` are not
        differentiable.
      tier: where an eager call's iterations run (issue 14). ``"auto"`` (the
        default; None): the first call of a problem (this ``fun``, these
        options, ``x0``'s and ``args``' shapes and dtypes) with
        ``method="lbfgs"`` or ``"cg"`` (at most 20,000 parameters) or
        ``"bfgs"`` (at most 400), their default line search (``lbfgs`` also
        with ``bounds``, L-BFGS-B, at most 5,000) and no ``l1``/``l2``/``clip`` runs its steps from
        Python over NumPy, calling one jitted ``value_and_grad`` (the only
        XLA compile it waits for, as scipy's solvers do); the problem's
        second call queues the fused loop's compile on a background thread,
        and the calls after that compile run the fused loop (a one-off solve
        compiles nothing more, and its script exits at once). The same
        iterates to rounding (XLA:CPU flushes subnormal numbers to zero,
        NumPy keeps them), the same :class:`jaxgd.Result` (its ``state``
        resumes in either tier); near float32's rounding floor, on a loss
        with kinks, or on an ill-conditioned problem (float64 too: a long
        nonlinear-CG run on Rosenbrock, a badly scaled fit), rounding can
        part the two and they may stop steps apart (10-D Rosenbrock ``cg``:
        324 host steps, 422 compiled, both ``GTOL``) or with another status
        (``GTOL``, ``PRECISION``, or a failed search at the answer).
        ``"compiled"``: always the fused loop (the first call waits for its
        compile). ``"host"``: always the host loop (refused, ``ValueError``,
        for a call it cannot run: another method or rule, ``l1``, ``l2``,
        ``clip``, mixed dtypes). Under
        ``jit``/``vmap``/``grad`` and with checkpoints the loop is compiled.

    Returns:
      A :class:`jaxgd.Result`: ``params``, ``loss``, ``grad_norm``,
      ``steps``, ``status``, ``history`` (trimmed to the steps taken, on the
      host), ``state``, ``nfev``, ``ngev``, ``aux``; ``.success`` and
      ``.message`` on the host.

    Raises:
      TypeError: ``fun`` not callable; a loss that is not a real scalar;
        integer/complex ``x0``; a :class:`jaxgd.SolverState` or :class:`jaxgd.Result` as ``x0``
        (pass its ``params``); a leaf of ``args`` that is neither an array nor
        a Python number (names its path); an unknown keyword; a wrong-kind argument.
      ValueError: an ``adjoint`` other than ``"implicit"``/``"unroll"``, or
        ``adjoint="unroll"`` with a line search; empty or non-finite ``x0``, or one past the range of the dtype
        JAX runs it in (a float64 NumPy 1e308 without x64); ``lr`` <= 0 or NaN, or a schedule
        whose ``lr(0)`` is negative or not finite; negative
        ``max_steps``, tolerance or penalty; an unknown ``method``;
        ``checkpoint_every`` <= 0 or without ``checkpoint_path``; a
        ``resume`` checkpoint written with another method or other settings
        (``lr``, ``l1``, ``l2``, ``clip``, ``bounds``, ``accelerated``,
        ``history``), or a ``resume`` already
        more than ``max_steps`` steps in; ``checkpoint_path`` or
        ``resume`` under ``jax.jit``/``vmap``/``grad`` (traced inputs, or a
        traced value ``fun`` closes over); bad ``bounds`` (not a
        pair, ``lower > upper``, structure unlike ``x0``, or scipy's
        per-variable pairs and ``(lower, upper)`` both fitting a list ``x0``
        of two numbers); ``tier="host"`` for a call the host loop cannot run.
      FileNotFoundError: a ``resume`` file that does not exist, or a
        ``checkpoint_path`` whose directory does not exist.
      jaxgd.CheckpointError: a truncated or corrupted ``resume`` file.
      jaxgd.TreeMismatchError: a ``resume`` state whose structure, shapes
        or dtypes differ from ``x0``'s and the method's (names the leaf); a
        ``resume`` file of float64 leaves with JAX's 64-bit mode off.

    Example:
      >>> import jax.numpy as jnp, jaxgd
      >>> res = jaxgd.minimize(lambda x: jnp.sum((x - 3.0) ** 2), jnp.zeros(2),
      ...                      lr=0.5, max_steps=100)
      >>> print(res.status_enum.name, int(res.steps), res.params)
      GTOL 1 [3. 3.]
    """
    args = args if isinstance(args, tuple) else (args,)
    repeat_key = None
    if not unknown and checkpoint_every is None and checkpoint_path is None and resume is None:
        # a repeat of a call that ran the compiled loop: straight to it (jaxgd.core.minimize_run.Repeat)
        # (the tier a call that names none runs is the default's at the time: part of the key)
        options = (method, lr, max_steps, gtol, gtol_norm, ftol, xtol, l1, l2, clip, history, progress, has_aux,
                   bounds, accelerated, unroll)  # _REPEAT_OPTIONS' order (tested)
        tier_key = tier if tier is not None else (None, _host_tier.DEFAULT)
        repeat_key, leaves, convert = _run.repeat_key(options, adjoint, tier_key, x0, args)
        repeat = _run.lookup(fun, repeat_key)
        if repeat is not None and convert:  # NumPy leaves: converted and checked as the whole path does
            return repeat(_as_params(x0)[0], args)
        if repeat is not None and all(map(_finite, leaves)):
            return repeat(x0, args)
    given = {k: v for k, v in locals().items() if k in _PARAMETERS}  # the caller's arguments by name
    _options.check_keywords("minimize", unknown, _KEYWORDS)
    check_args(args)
    _solver.check_x0_not_a_run(x0, "", ", or continue the run with minimize(fun, result.params, resume=result)")
    adjoint = _adjoint.check(adjoint)  # adjoint hook (issue 12)
    tier = _host_tier.check(tier)
    parts = _models.split(x0)
    if parts is not None:  # a Flax NNX / Equinox model: train its float arrays, hand back a model
        return _models.minimize_model(minimize, parts, given)
    home = _mesh.explicit_home(x0, args, resume)
    if home is not None:  # a mesh with Explicit axes: the run on its Auto view (jaxgd._mesh)
        return _mesh.run_on_auto_view(home, minimize, given, ("x0", "args", "resume"))
    plan = _run.get_plan(fun, method, lr, _run.SOLVER_OPTION_VALUES(given))
    solver = plan.solver
    every, path = _resume.check_checkpoint_args(checkpoint_every, checkpoint_path)
    resume = _resume.check_resume(resume)
    params, concrete = _as_params(x0)
    if path is not None or resume is not None:
        _resume.check_concrete(path, {"x0": params, "args": args, "hyperparameters (lr, tolerances, l1, l2, clip)": solver},
                               resume=resume)
        if _run.closes_over_tracers(solver, params, args):  # a value captured under grad/vmap (traces fun once)
            _resume.check_concrete(path, {"values fun closes over": True}, resume=resume)
    if tier == "host":
        eager = _run.eager(adjoint, concrete and _tree.is_concrete(args), solver)
        _host_tier.check_host(solver, params, eager, path, resume)
    if solver.progress_every:
        _progress.reset()
    solver.check_params(params)
    loss_dtype = check_loss(fun, params, args, has_aux, x0)
    if tier == "host":
        _host_tier.check_host_loss(params, loss_dtype)
    if resume is None and path is None:  # adjoint hook (issue 12): the run for this adjoint mode
        tree = (solver, params, args)
        _adjoint.check_solver(adjoint, solver, params, args, _run.differentiated(tree), _run.forward_mode(tree))
        inline = _compile.tracing() and _run.check_optax_closure(solver, params, adjoint)  # (an optax method's vmapped closure)
        solver, args, lifted = _run.lift_closure(solver, params, args)
        concrete = concrete and not lifted and (not args or _tree.is_concrete(args))
        result = _run.run(solver, params, args, adjoint, None if lifted else plan, concrete, tier,
                          None if lifted else repeat_key, inline=inline)
    else:
        result = _resume.run(solver, params, args, resume=resume, every=every, path=path)
    return _run.trim_history(result, solver.history_every)


_KEYWORDS = _options.keywords(minimize)
_REPEAT_OPTIONS = ("method", "lr", *_options.SOLVER_OPTIONS)  # the options a repeated call is keyed by, in order
_PARAMETERS = frozenset(inspect.signature(minimize).parameters)
