"""Implicit differentiation of a solve: tangents of the solution by the implicit function theorem.

The solve runs on ``lax.stop_gradient`` of its inputs, so JAX never tries to
differentiate the ``while_loop``; its outputs then pass through
:func:`attach`, a ``jax.custom_jvp`` that is the identity on values (so a
solve nobody differentiates compiles and runs as before) and whose JVP rule
gives the tangent of the solution :math:`x^*(\\theta)`:

- smooth problems, :math:`\\nabla_x F(x^*; \\theta) = 0` with :math:`F` the
  loss plus the ``l2`` penalty and :math:`\\theta` = (``args``, ``l2``):

  .. math:: H\\,\\dot x = -\\partial_\\theta \\nabla_x F(x^*;\\theta)[\\dot\\theta],
            \\qquad H = \\nabla^2_{xx} F(x^*;\\theta);

- with ``l1=`` or ``bounds=``, the proximal-gradient fixed point
  :math:`x^* = \\mathrm{prox}_{\\eta h}(x^* - \\eta \\nabla_x F(x^*;\\theta))`.
  The prox is elementwise with Jacobian :math:`\\mathrm{diag}(m)`, ``m`` = 1
  on the free set ``S`` (nonzero coordinates for ``l1``, strictly inside the
  box for ``bounds``) and 0 elsewhere, and
  :math:`\\partial\\,\\mathrm{soft}(v, \\eta l_1)/\\partial l_1 = -\\eta\\,\\mathrm{sign}(v)`
  on ``S``. Differentiating the fixed point and dividing by :math:`\\eta`:

  .. math:: H_{SS}\\,\\dot x_S = -\\big(\\partial_\\theta \\nabla_x F[\\dot\\theta]
            + \\mathrm{sign}(x^*)\\,\\dot l_1\\big)_S, \\qquad \\dot x_{\\bar S} = 0,

  independent of :math:`\\eta` (Bertrand et al., "Implicit differentiation of
  Lasso-type models for hyperparameter optimization", ICML 2020, eq. 9;
  Blondel et al., "Efficient and Modular Implicit Differentiation",
  NeurIPS 2022, section 2.1). A coordinate at a bound moves with it: on the
  active set ``A`` (at ``lower`` or ``upper``), :math:`\\dot x_A` is that
  bound's tangent, and the free coordinates answer it through the Hessian,
  :math:`H_{SS}\\dot x_S = -(\\ldots)_S - H_{SA}\\dot x_A` (the projection's
  derivative in its bounds; strict complementarity assumed, as for the free
  set).

Both are solved matrix-free as the symmetric system
:math:`(M H M + I - M)\\dot x = M r` (``M = diag(m)``; ``M = I`` for smooth
problems) by conjugate gradients, ``jax.scipy.sparse.linalg.cg``, whose
Hessian-vector products are ``jax.jvp`` of ``jax.grad``. ``cg`` is a
``lax.custom_linear_solve`` with ``symmetric=True``, so the tangent is linear
and transposable: reverse mode (``grad``/``vjp``/``jacrev``) comes from JAX's
transposition of this JVP, and forward mode (``jvp``/``jacfwd``) directly.
The tangent of ``aux`` follows by the chain rule at :math:`(x^*, \\theta)`; the loss's by the envelope theorem
(Danskin), :math:`\\dot L = \\partial_\\theta L(x^*; \\theta)[\\dot\\theta]` plus, off the free set, its gradient
times a bound's tangent (with ``l1`` the smooth value's tangent keeps :math:`\\nabla F \\cdot \\dot x`, since
:math:`\\nabla F = -l_1\\,\\mathrm{sign}(x^*)` on the support), so a solve for :math:`\\dot x` that fails leaves
the loss's derivative finite. Inside the rule :math:`x^*` passes through :func:`attach`
again, so that an outer derivative (second order) sees :math:`x^*` move with
:math:`\\theta`; a conjugate-gradient solve that fails (a Hessian that is not
positive definite, or too ill-conditioned for its iteration cap) gives NaN.

The derivative with respect to ``x0``, ``lr``, the tolerances and ``clip``
is zero: the solution is taken to depend on them not at all.
"""

from __future__ import annotations

import collections

from typing import Any

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jax import lax

from .. import _bounded, _tree
from . import loss_check as _loss_check
from .._types import Params
from ..prox.operators import _bound_leaves, weight_leaves

DECOUPLED_L2 = (
    "adjoint='implicit' cannot differentiate method={method!r} with l2: decoupled weight decay "
    "has no objective whose minimiser the solve returns; use method='adam' (l2 is then a penalty) "
    "or adjoint='unroll'"
)

# The conjugate-gradient solve of the linear system: relative residual
# CG_RTOL_SCALE * sqrt(eps) (1.5e-10 in float64, 3.5e-6 in float32), at most
# max(CG_MIN_ITER, CG_ITER_PER_DIM * n) iterations for n parameters (rounding makes CG need more
# than n on an ill-conditioned Hessian: at 200 parameters 2n iterations left the tangent 47 % off at
# condition 1e6, 50n gave 2e-9 at 1e6 and 3e-7 at 1e8). A solve that ends with a relative residual
# above the square root of its target (1.2e-5 in float64, 1.9e-3 in float32: the iteration cap, or a
# Hessian not positive definite, a saddle) returns NaN, never a wrong tangent.
CG_RTOL_SCALE = 1e-2
CG_MIN_ITER = 100
CG_ITER_PER_DIM = 50


def _cg_options(x: Params) -> tuple[float, int]:
    leaves = _tree.leaves(x)
    eps = float(jnp.finfo(jnp.result_type(*leaves)).eps)
    n = _tree.size(leaves)
    return CG_RTOL_SCALE * eps ** 0.5, max(CG_MIN_ITER, CG_ITER_PER_DIM * n)


def free_mask(solver: Any, x: Params) -> Any:
    """``m``: 1.0 on the free set (where the prox's Jacobian is the identity), 0.0 elsewhere.

    Nonzero coordinates (or of ``l1`` weight 0) when ``l1`` is on; strictly inside the box when
    ``bounds`` is set (the bounds are read back as the projections of
    ``-inf`` and ``+inf``); ``None`` for a smooth problem (every coordinate free).
    """
    prox = solver.prox
    if not prox.active:
        return None
    free = _tree.tmap(lambda v: jnp.ones(v.shape, bool), x)
    if prox.l1 is not None:  # (a coordinate of weight 0 is free at 0 too: its prox is the identity)
        leaves, treedef = jax.tree_util.tree_flatten(x)
        weights = weight_leaves(prox.l1, x, "l1")
        unweighted = treedef.unflatten([jnp.asarray(w, v.dtype) == 0 for v, w in zip(leaves, weights)])
        free = _tree.tmap(lambda f, v, u: f & ((v != 0) | u), free, x, unweighted)
    if prox.bounded:
        lo = prox.project(_tree.tmap(lambda v: jnp.full(v.shape, -jnp.inf, v.dtype), x))
        hi = prox.project(_tree.tmap(lambda v: jnp.full(v.shape, jnp.inf, v.dtype), x))
        free = _tree.tmap(lambda f, v, a, b: f & (v > a) & (v < b), free, x, lo, hi)
    return _tree.tmap(lambda f, v: f.astype(v.dtype), free, x)


def _masked(mask: Any, v: Params) -> Params:
    return v if mask is None else _tree.tmap(lambda m, a: m * a, mask, v)


def solution_tangent(solver: Any, x: Params, args: tuple, dsolver: Any, dargs: tuple) -> Params:
    """``dx*``, the tangent of the solution, for input tangents ``(dsolver, dargs)``.

    Args:
      solver: the :class:`jaxgd.Solver` (its ``fun``, ``l2``, ``prox.l1`` enter).
      x: the returned solution ``x*``.
      args: the loss's extra arguments.
      dsolver: the solver's tangent (only ``l2`` and ``prox.l1`` are read).
      dargs: the tangent of ``args``.

    Returns:
      ``dx*`` with ``x``'s structure, zero outside the free set.
    """
    grad_x = jax.grad(lambda p, s, a: s.objective(p, *a)[0])
    _, mixed = jax.jvp(lambda s, a: grad_x(x, s, a), (solver, args), (dsolver, dargs))
    rhs = _tree.neg(mixed)
    mask = free_mask(solver, x)
    if solver.prox.l1 is not None:  # d soft(v, eta l1) / d l1 = -eta sign(v) on the support
        dl1 = dsolver.prox.l1  # a number, or a pytree with x's structure (per-leaf weights)
        if jax.tree_util.tree_structure(dl1) != jax.tree_util.tree_structure(x):
            dl1 = _tree.tmap(lambda v: dl1, x)
        rhs = _tree.tmap(lambda r, v, d: r - jnp.sign(v) * jnp.asarray(d, v.dtype), rhs, x, dl1)
    held = bound_tangent(solver.prox, dsolver.prox, x) if solver.prox.bounded else None
    if held is not None:  # the free coordinates answer the active ones' move: - H_SA dx_A
        rhs = _tree.sub(rhs, _tree.cast_like(jax.jvp(lambda p: grad_x(p, solver, args), (x,), (held,))[1], rhs))
    rhs = _masked(mask, rhs)

    def hvp(v: Params) -> Params:
        hv = jax.jvp(lambda p: grad_x(p, solver, args), (x,), (_masked(mask, v),))[1]
        hv = _tree.cast_like(_masked(mask, hv), v)
        if mask is None:
            return hv
        return _tree.tmap(lambda h, m, a: h + (1 - m) * a, hv, mask, v)

    tol, maxiter = _cg_options(x)
    solve = lambda matvec, b: conjugate_gradient(matvec, b, tol, maxiter)  # noqa: E731
    # one flat vector: JAX transposes custom_linear_solve only where every leaf of its right-hand
    # side depends on the input tangent, and a leaf the tangent does not reach (a parameter the
    # differentiated input does not enter, an unpenalised intercept) is a constant zero
    flat_rhs, unravel = jax.flatten_util.ravel_pytree(rhs)
    flat_hvp = lambda v: jax.flatten_util.ravel_pytree(hvp(unravel(v)))[0]  # noqa: E731
    dx = unravel(lax.custom_linear_solve(flat_hvp, flat_rhs, solve=solve, symmetric=True))
    if held is not None:
        dx = _tree.tmap(jnp.add, dx, _tree.cast_like(held, dx))
    return _tree.cast_like(dx, x)


def fixed_tangent(solver: Any, x: Params, dx: Params) -> Params:
    """``dx`` off the free set (:func:`free_mask`: a bound's tangent, 0 at a zero of ``l1``), 0 on it; every entry 0
    for a smooth problem. NaN entries of ``dx`` on the free set do not pass."""
    mask = free_mask(solver, x)
    if mask is None:
        return _tree.tmap(jnp.zeros_like, dx)
    return _tree.tmap(lambda m, d: jnp.where(m > 0, jnp.zeros_like(d), d), mask, dx)


def bound_tangent(prox: Any, dprox: Any, x: Params) -> Params:
    """``dx*`` on the active set: where ``x`` sits at its lower (upper) bound, that bound's tangent
    (``dprox.lower``/``upper``, numbers or pytrees like ``x``), 0 elsewhere."""
    leaves, treedef, lo, hi = prox.box_leaves(x)
    sides = []
    for bound, dbound, name in ((lo, dprox.lower, "lower"), (hi, dprox.upper, "upper")):
        d = _bound_leaves(dbound, x, name) if dbound is not None else None
        sides.append(d or [None] * len(leaves))
    out = []
    for v, a, b, da, db in zip(leaves, lo, hi, *sides):
        t = jnp.zeros_like(v)
        if a is not None and da is not None:
            t = jnp.where(v <= a, jnp.asarray(da, v.dtype), t)
        if b is not None and db is not None:
            t = jnp.where(v >= b, jnp.asarray(db, v.dtype), t)
        out.append(t)
    return jax.tree_util.tree_unflatten(treedef, out)


def conjugate_gradient(matvec: Any, b: Params, rtol: float, maxiter: int) -> Params:
    """Solve ``matvec(x) = b`` for a symmetric positive definite operator, from ``x = 0``.

    Hestenes & Stiefel's conjugate gradients (Nocedal & Wright, "Numerical
    Optimization", 2nd ed., 2006, Algorithm 5.2), stopping when
    ``||r|| <= rtol ||b||`` or after ``maxiter`` iterations, or when the
    curvature ``p^T A p`` is not positive (the operator is not positive
    definite along ``p``). Where the residual left is above
    ``sqrt(rtol) ||b||`` the result is NaN: an inaccurate tangent is never
    returned as if it were one.

    Its starting point is built inside, from ``b``'s shapes: closing over a
    value derived from the tangent ``b`` (as ``jax.scipy.sparse.linalg.cg``'s
    default ``x0`` does) makes ``lax.custom_linear_solve`` untransposable.
    """
    x = _tree.tmap(jnp.zeros_like, b)
    bb = _tree.sq_norm(b)
    stop = (rtol * rtol) * bb

    def cond(c: tuple) -> jax.Array:
        _, r, _, rr, k, ok = c
        return (rr > stop) & (k < maxiter) & ok

    def body(c: tuple) -> tuple:
        x, r, p, rr, k, _ = c
        ap = matvec(p)
        pap = _tree.vdot(p, ap)
        ok = pap > 0
        a = jnp.where(ok, rr / jnp.where(ok, pap, 1.0), 0.0)
        x = _tree.add_scaled(x, a, p)
        r = _tree.add_scaled(r, -a, ap)
        rr_new = _tree.sq_norm(r)
        p = _tree.add_scaled(r, rr_new / jnp.where(rr > 0, rr, 1.0), p)
        return x, r, p, rr_new, k + 1, ok

    x, _, _, rr, _, _ = lax.while_loop(cond, body, (x, b, b, bb, jnp.asarray(0, jnp.int32), jnp.asarray(True)))
    failed = ~(rr <= rtol * bb)  # ||r|| > sqrt(rtol) ||b|| (a NaN compares False: failed)
    return _tree.tmap(lambda v: jnp.where(failed, jnp.nan, v).astype(v.dtype), x)


# The loss functions of the last 64 runs traced under a user's transformation, held strongly (a bounded few: a
# traced program with more solves whose losses are defined inside it can lose the first ones' before JAX runs their
# rules, as every one was lost before):
# attach's rule runs when JAX differentiates the traced program, which for a ``lax.scan`` body is after the
# body's trace, and a solver holds its loss weakly (jaxgd._tree.FunRef): a loss written as a lambda in the body
# was gone by then ("'NoneType' object is not callable"; a user review in session 57). Held in the traced
# program itself, it leaked every eager run's loss through the per-function caches.
RECENT_LOSSES: collections.deque = collections.deque(maxlen=64)


def keep_alive(fun: Any) -> None:
    """Hold ``fun`` strongly among :data:`RECENT_LOSSES` (a run traced under a user's transformation)."""
    if not RECENT_LOSSES or RECENT_LOSSES[-1] is not fun:
        RECENT_LOSSES.append(fun)


NOT_FORWARD = (
    "adjoint='implicit' cannot differentiate this solve: its derivative takes Hessian-vector products of the "
    "loss fun in forward mode (jax.jvp of jax.grad), and fun calls a jax.custom_vjp function (as "
    "jax.experimental.ode.odeint does), which has no forward mode; use adjoint='unroll' (with a float lr or a "
    "schedule: the steps reverse-differentiated, through the custom_vjp's own rule)"
)


_FORWARD = _bounded.Bounded(256)  # structure keys of (solver, x, args) -> the check passed (the last 256)


def check_forward(solver: Any, x0: Params, args: tuple) -> None:
    """Refuse, before the solve, a loss that forward mode cannot get through (a ``jax.custom_vjp``
    inside): one Hessian-vector product traced (``jax.make_jaxpr``, nothing compiles), where JAX stages
    the custom_vjp's forward-mode tangent as a ``custom_lin`` that refuses to run. Once per structure
    (``minimize``'s early check and the rule, under ``jax.grad``, share it).

    Raises:
      ValueError: :data:`NOT_FORWARD`, naming ``adjoint='unroll'`` instead.
    """
    def hvp(s: Any, x: Params, a: tuple) -> Params:
        return jax.jvp(lambda p: jax.grad(lambda q: s.objective(q, *a)[0])(p), (x,), (x,))[1]

    if not _forward_passes(_FORWARD, hvp, solver, x0, args):
        raise ValueError(NOT_FORWARD)


def _forward_passes(memo: _bounded.Bounded, fn: Any, solver: Any, x: Params, args: tuple) -> bool:
    """Whether ``fn(solver, x, args)``, traced once (``jax.make_jaxpr``, nothing compiles), stages no
    ``custom_lin`` (a ``jax.custom_vjp``'s forward-mode tangent, which refuses to run); remembered in ``memo``
    per structure of ``(solver, x, args)``."""
    key = _tree.structure_key((solver, x, args))
    if key is not None and key in memo:
        return memo[key]
    passes = not _loss_check.stages(jax.make_jaxpr(fn)(solver, x, args).jaxpr, "custom_lin")
    if key is not None:
        memo[key] = passes
    return passes


_VALUE_FORWARD = _bounded.Bounded(256)  # structure keys of (solver, x, args): whether the value's jvp passes


def value_forward(solver: Any, x: Params, args: tuple) -> bool:
    """Whether forward mode passes the loss's value at ``x`` (False where ``fun`` applies a
    ``jax.custom_vjp`` to ``x`` or ``args``: JAX stages its tangent as a ``custom_lin`` that only reverse
    mode can run). One ``jax.make_jaxpr`` of the value's JVP (nothing compiles), once per structure."""
    def zero(v: Any) -> Any:
        return jnp.zeros_like(v) if jnp.issubdtype(jnp.result_type(v), jnp.inexact) else \
            np.zeros(jnp.shape(v), jax.dtypes.float0)

    def jvp(s: Any, p: Params, a: tuple) -> jax.Array:
        return jax.jvp(lambda q, b: s.objective(q, *b)[0], (p, a), (_tree.tmap(zero, p), _tree.tmap(zero, a)))[1]

    return _forward_passes(_VALUE_FORWARD, jvp, solver, x, args)


AUX_NOT_FORWARD = (
    "forward mode (jax.jacfwd, jax.jvp) through minimize cannot give aux's tangent: fun calls a jax.custom_vjp "
    "function on the parameters or args, which has no forward mode; use reverse mode (jax.jacrev, jax.grad), or "
    "has_aux=False (the loss value's tangent is then taken from its gradient)"
)


def check_aux_forward(solver: Any, x: Params, args: tuple) -> None:
    """Refuse, in forward mode (``minimize``'s early check; the rule cannot tell it from reverse mode's
    linearisation, which passes), a ``has_aux`` loss whose value forward mode cannot pass
    (:func:`value_forward`): the value's tangent is then its gradient's product with the tangents, and the aux
    has none.

    Raises:
      ValueError: :data:`AUX_NOT_FORWARD`.
    """
    if solver.has_aux and not value_forward(solver, x, args):
        raise ValueError(AUX_NOT_FORWARD)


def value_tangent(solver: Any, x: Params, args: tuple, tangents: tuple) -> jax.Array:
    """The loss value's tangent at ``x`` for the tangents of ``(x, solver, args)``, as its gradient's inner
    product with them (reverse mode: forward mode cannot pass a ``jax.custom_vjp`` applied to ``x`` or
    ``args``, whose gradient rule ``solution_tangent``'s Hessian-vector products go through). Integer
    leaves (``float0`` cotangents) add nothing."""
    value, pullback = jax.vjp(lambda p, s, a: s.objective(p, *a)[0], x, solver, args)
    cots = jax.tree_util.tree_leaves(pullback(jnp.ones((), value.dtype)))
    parts = [jnp.vdot(c, t).astype(value.dtype) for c, t in zip(cots, jax.tree_util.tree_leaves(tangents))
             if c.dtype != jax.dtypes.float0]
    return sum(parts[1:], parts[0]) if parts else jnp.zeros((), value.dtype)


@jax.custom_jvp
def attach(x: Params, value: jax.Array, aux: Any, loss: Any, solver: Any, args: tuple) -> tuple:
    """The identity on ``(x, value, aux, loss)``; its JVP is the implicit derivative.

    ``x``, ``value``, ``aux`` (and ``loss``, or ``None`` when it equals
    ``value``) are the solve's outputs, computed without derivatives;
    ``solver`` and ``args`` carry the tangents of the hyperparameters and data.
    """
    return x, value, aux, loss


@attach.defjvp
def _attach_jvp(primals: tuple, tangents: tuple) -> tuple:
    x, value, aux, loss, solver, args = primals
    dsolver, dargs = tangents[4], tangents[5]
    if solver.direction.decoupled_l2 and solver.l2 is not None:
        raise ValueError(DECOUPLED_L2.format(method=solver.direction.name))
    # x* through attach again: the identity here, but under an outer derivative (a second order:
    # jax.hessian, grad of grad) it carries x*'s own tangent, so that this rule's dependence on x*
    # is differentiated too (the solve's x alone is a constant, computed under stop_gradient)
    x = attach(x, value, aux, loss, solver, args)[0]

    def outputs(p: Params, s: Any, a: tuple) -> tuple:
        v, au = s.objective(p, *a)
        return v, au, (None if loss is None else s.loss(p, v))

    check_forward(solver, x, args)  # (a custom_vjp in fun, where minimize did not see the derivative coming)
    dx = solution_tangent(solver, x, args, dsolver, dargs)
    # The loss's tangent by the envelope theorem: its gradient in x vanishes on the free set at the solution (the
    # smooth value's without l1; value plus l1's term with it), so there x's tangent does not enter; off the free
    # set it is a bound's tangent (or 0). A failed solve for dx (NaN: a Hessian singular or indefinite there, a
    # redundant ansatz's flat minimum) then leaves the loss's derivative, which needs none of it, finite.
    still = fixed_tangent(solver, x, dx)
    value_dx = dx if solver.prox.l1 is not None else still  # (with l1 the smooth value's gradient is -l1 sign(x))
    if aux is not None or value_forward(solver, x, args):  # (reverse mode passes a custom_vjp's tangent)
        (_, _, _), (dvalue, _, dloss) = jax.jvp(outputs, (x, solver, args), (still, dsolver, dargs))
        daux = None
        if aux is not None or value_dx is dx:
            (_, _, _), (dvalue_dx, daux, _) = jax.jvp(outputs, (x, solver, args), (dx, dsolver, dargs))
            dvalue = dvalue_dx if value_dx is dx else dvalue
    else:  # a custom_vjp applied to x or args in fun: its forward mode would fail under jax.jacfwd
        dvalue_still = value_tangent(solver, x, args, (still, dsolver, dargs))
        dloss = None if loss is None else jax.jvp(lambda p, s, v: s.loss(p, v), (x, solver, value),
                                                  (still, dsolver, dvalue_still))[1]
        dvalue = value_tangent(solver, x, args, (dx, dsolver, dargs)) if value_dx is dx else dvalue_still
        daux = None
    dvalue = jnp.asarray(dvalue).astype(jnp.result_type(value))
    if loss is not None:
        dloss = jnp.asarray(dloss).astype(jnp.result_type(loss))
    return (x, value, aux, loss), (dx, dvalue, daux, dloss)


def run(run_fn: Any, solver: Any, x0: Params, args: tuple) -> Any:
    """``run_fn(solver, x0, args)`` (a :class:`jaxgd.Result` whose copies of state
    fields are ``None``), differentiable by the implicit function theorem.

    The solve sees ``lax.stop_gradient`` of every input; its ``state.params``,
    ``state.value``, ``state.aux`` and ``loss`` (when it is not ``value``)
    then go through :func:`attach`. Every other field (``grad_norm``,
    ``history``, the rest of ``state``) has derivative zero.
    """
    res = run_fn(lax.stop_gradient(solver), lax.stop_gradient(x0), lax.stop_gradient(args))
    st = res.state
    x, value, aux, loss = attach(st.params, st.value, st.aux, res.loss, solver, args)
    return res._replace(state=st._replace(params=x, value=value, aux=aux), loss=loss)
