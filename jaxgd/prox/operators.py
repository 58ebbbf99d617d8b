"""Proximal steps: the regulariser with no gradient, applied after each move.

``theta_{k+1} = prox_{alpha_k h}(theta_k + alpha_k d_k)``. With ``d = -grad``
this is proximal gradient descent: ISTA for the L1 norm, projected gradient
for box bounds, and FISTA with the solver's ``accelerated=True``.

``h`` is ``l1 * ||theta||_1`` plus the indicator of the box
``lower <= theta <= upper``. Both are separable, so their joint proximal
map is elementwise: soft-threshold, then clip (for a convex function of one
variable, the minimiser over an interval is the projection of the
unconstrained minimiser).

Elastic net: ``l2`` stays a smooth penalty ``l2/2 ||theta||^2`` added to the
loss by the solver (its gradient ``l2 theta`` is exact and cheap), so
``l1`` + ``l2`` minimise the elastic-net objective; the joint proximal map
``soft(v, alpha l1) / (1 + alpha l2)`` (:func:`elastic_net_prox`) gives the
same minimiser and is provided for users who build their own steps.

References: A. Beck & M. Teboulle, "A Fast Iterative Shrinkage-Thresholding
Algorithm for Linear Inverse Problems", SIAM J. Imaging Sciences 2(1), 2009
(ISTA, eq. 1.4; soft-thresholding, eq. 1.5; FISTA, section 4); N. Parikh &
S. Boyd, "Proximal Algorithms", Foundations and Trends in Optimization
1(3), 2014, chapter 6 (soft-thresholding and the elastic net in section 6.5;
projection onto a box among the polyhedra of section 6.2).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree, _validate
from .._types import Grads, Params

BAD_BOUNDS = "bounds must be a pair (lower, upper), each None, a number or a pytree like x0; got bounds={value!r}"
BAD_BOUNDS_TREE = (
    "bounds: {side} must be None, a number, or a pytree with the structure of the parameters (x0; as_optax's "
    "params) whose leaves broadcast to theirs (None in it: no bound on that part); got {side} with structure "
    "{got} for parameters with structure {want}"
)
NONE_HINT = " (None inside an array: write -inf or inf for an unbounded variable)"
COMPLEX_BOUNDS = (
    "bounds: {side} holds a complex number ({value!r}); bounds are real, as the parameters are (a complex "
    "parameter is refused too: split it into its real and imaginary parts, each with its own bounds)"
)
BAD_BOUNDS_ORDER = "bounds: lower must be <= upper everywhere (and not NaN); {detail}"
SCIPY_PAIRS_HINT = (
    " (scipy's per-variable list [(min, max), ...] is written bounds=(lower, upper) here: "
    "bounds=(np.array(mins), np.array(maxs)) with -inf/inf where a side is free, or a scipy.optimize.Bounds)"
)


def _numbers_or_none(seq: Any) -> bool:
    """A list or tuple of Python/NumPy numbers and ``None`` (not arrays)."""
    return isinstance(seq, (tuple, list)) and all(v is None or isinstance(v, (int, float, np.number)) for v in seq)


def _scipy_pairs(bounds: Any) -> bool:
    """True for scipy's per-variable bounds: a list or tuple of ``(min, max)`` pairs of numbers or ``None``."""
    return isinstance(bounds, (tuple, list)) and len(bounds) > 0 and all(
        _numbers_or_none(b) and len(b) == 2 for b in bounds)


def soft_threshold(x: jax.Array, t: Any) -> jax.Array:
    """``sign(x) * max(|x| - t, 0)``, the proximal map of ``t * |x|``; ``x`` itself where ``t`` is 0 (the same
    value, and the identity's derivative at ``x = 0``, where the formula's reads 0: an unrolled derivative
    through an unpenalised coordinate at 0 read 0)."""
    t = jnp.asarray(t, x.dtype)
    return jnp.where(t > 0, jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0).astype(x.dtype), x)


def elastic_net_prox(x: jax.Array, alpha: Any, l1: Any, l2: Any) -> jax.Array:
    """The proximal map of :math:`\\alpha(l_1\\|x\\|_1 + \\tfrac{l_2}{2}\\|x\\|^2)`.

    .. math:: \\mathrm{prox}(v) = \\frac{\\mathrm{soft}(v, \\alpha l_1)}{1 + \\alpha l_2}

    Reference: Parikh & Boyd, "Proximal Algorithms", 2014, section 6.5 (elastic net).

    Args:
      x: the point :math:`v`.
      alpha: the step :math:`\\alpha`.
      l1: the L1 weight.
      l2: the L2 weight.

    Returns:
      The proximal point, with ``x``'s dtype.
    """
    return (soft_threshold(x, alpha * l1) / (1 + jnp.asarray(alpha * l2, x.dtype))).astype(x.dtype)


def _is_none(v: Any) -> bool:
    return v is None


def _is_leaf(v: Any) -> bool:
    leaves = jax.tree_util.tree_leaves(v)
    return len(leaves) == 1 and leaves[0] is v


def _none_over_subtrees(value: Any, params: Params) -> Any:
    """``value`` with each ``None`` that stands where ``params`` has a subtree spread over that
    subtree's leaves (``{"a": None}`` for ``{"a": {"w": ..., "b": ...}}``: ``None`` at both); a
    ``value`` that is not a prefix of ``params`` as it is (the caller's structure test names it)."""
    try:
        return jax.tree_util.tree_map(
            lambda v, sub: jax.tree_util.tree_map(lambda _: None, sub) if v is None else v,
            value, params, is_leaf=_is_none)
    except (ValueError, TypeError):
        return value


def _leaves_like(value: Any, params: Params, message: str, show_leaf_shape: bool, none_leaves: bool = False,
                 **fields: str) -> list:
    """One value per leaf of ``params``: a scalar for every leaf, or a pytree like ``params``.

    The one check behind bounds and penalty weights: a pytree ``value`` must
    have ``params``' structure, and each of its leaves must broadcast to the
    matching leaf of ``params``.

    Args:
      value: a scalar (one leaf, 0-d) or a pytree shaped like ``params``.
      params: the parameters.
      message: the error template; gets ``got`` and ``want`` (the two tree
        structures) and ``fields``.
      show_leaf_shape: on a leaf that does not broadcast, add the parameter
        leaf's shape to ``want``.
      none_leaves: ``None`` in ``value`` stands for every leaf of ``params`` below
        it and is returned for each of them (bounds: no bound there).
      **fields: the rest of ``message``'s fields (the argument's name).

    Raises:
      ValueError: ``message``, when the structure or a leaf's shape does not fit.
    """
    p_leaves, p_def = jax.tree_util.tree_flatten(params)
    if _tree.is_scalar(value):
        return [value] * len(p_leaves)
    if none_leaves:
        # read up to params' leaves: a None where params hold None (an empty subtree) has no leaf to
        # bound (flattened with is_leaf it was one more leaf than params have, always refused)
        v_def = jax.tree_util.tree_structure(value, is_leaf=_is_none)
        try:
            v_leaves = p_def.flatten_up_to(_none_over_subtrees(value, params))
        except (ValueError, TypeError):
            raise ValueError(message.format(got=v_def, want=p_def, **fields)) from None
        if not all(v is None or _is_leaf(v) for v in v_leaves):
            raise ValueError(message.format(got=v_def, want=p_def, **fields))
    else:
        v_leaves, v_def = jax.tree_util.tree_flatten(value)
        if v_def != p_def:
            raise ValueError(message.format(got=v_def, want=p_def, **fields))
    for v, p in zip(v_leaves, p_leaves):
        if v is None:
            continue
        try:
            ok = np.broadcast_shapes(jnp.shape(v), jnp.shape(p)) == jnp.shape(p)
        except ValueError:
            ok = False
        if not ok:
            want = f"{p_def} (leaf shape {jnp.shape(p)})" if show_leaf_shape else p_def
            raise ValueError(message.format(got=f"{v_def} (a leaf of shape {jnp.shape(v)})", want=want, **fields))
    return v_leaves


AMBIGUOUS_PAIRS = (
    "bounds={bounds!r} for an x0 of two numbers in a {kind} can be read two ways: here as (lower, upper), by scipy "
    "as one (min, max) pair per variable. Write it so that only one reading fits: bounds=(np.array(lowers), "
    "np.array(uppers)) or a scipy.optimize.Bounds, with x0 an array"
)


def _ambiguous_pairs(lower: Any, upper: Any, params: Params) -> bool:
    """True where ``(lower, upper)`` and scipy's per-variable pairs both fit ``params`` and a list says
    scipy: each side two numbers (or None) in a list or tuple, ``params`` a list or tuple of two
    scalars, and a side or ``params`` a list (scipy's ``x0=[0.5, 0.5]``, ``bounds=[[0, 1], [2, 3]]``
    was solved over the box [0, 2] x [1, 3]). Tuples throughout are jaxgd's pytree form."""
    if not (_numbers_or_none(lower) and _numbers_or_none(upper) and len(lower) == len(upper) == 2):
        return False
    if not (isinstance(params, (tuple, list)) and len(params) == 2
            and all(np.ndim(p) == 0 and not isinstance(p, (tuple, list, dict)) for p in params)):
        return False
    return any(isinstance(t, list) for t in (lower, upper, params))


def _bound_leaves(bound: Any, params: Params, side: str) -> Optional[list]:
    """One bound per leaf of ``params`` (a scalar broadcasts to every leaf); ``None`` for no bound
    (the whole side, or a leaf where the pytree ``bound`` holds ``None`` at it or above it).

    Raises:
      ValueError: a pytree bound whose structure or leaf shapes do not fit ``params``.
    """
    if bound is None:
        return None
    try:
        return _leaves_like(bound, params, BAD_BOUNDS_TREE, show_leaf_shape=True, none_leaves=True, side=side)
    except ValueError as e:
        # a side written as a tuple of numbers for an array x0: scipy's pairs of a 2-variable problem
        if _numbers_or_none(bound) and _tree.is_single_leaf(params):
            raise ValueError(str(e) + SCIPY_PAIRS_HINT) from None
        raise


def _as_bound(value: Any) -> Any:
    """A bound's numbers as floats; with x64 off, a Python number past float32's range as the
    infinity it is in float32 (JAX's cast of it to float32 warned "overflow encountered in cast")."""
    if value is None:
        return None
    return _tree.tmap(lambda v: _float32_range(_tree.as_float_if_number(v)), value)


def _float32_range(v: Any) -> Any:
    if isinstance(v, float) and not jax.config.jax_enable_x64 and abs(v) > float(np.finfo(np.float32).max):
        return float(np.copysign(np.inf, v))
    return v


def check_bounds(bounds: Any) -> tuple[Any, Any]:
    """Validate ``bounds=(lower, upper)`` on the host; returns ``(lower, upper)``.

    Concrete values are checked for ``lower <= upper`` (NaN rejected) where
    their shapes broadcast against each other; tracers pass unchecked. A pytree
    side may hold ``None`` (no bound on that part of ``x0``: the solver reads it as
    ``-inf``/``inf`` there).

    A ``scipy.optimize.Bounds`` is read as ``(lb, ub)`` (its ``-inf``/``inf``
    for a free side are this function's too).

    Raises:
      ValueError: not a pair (with a hint for scipy's list of per-variable
        pairs), or ``lower > upper`` somewhere.
    """
    if bounds is None:
        return None, None
    if not isinstance(bounds, (tuple, list)) and hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        # scipy.optimize.Bounds; its scalar sides, held as arrays of one element (Bounds(0, 1).lb is array([0])),
        # as the numbers given: a dict x0 refused "lower with structure PyTreeDef(*)"
        bounds = tuple(np.asarray(b).reshape(()) if np.size(b) == 1 else b for b in (bounds.lb, bounds.ub))
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        hint = SCIPY_PAIRS_HINT if _scipy_pairs(bounds) else ""
        raise ValueError(BAD_BOUNDS.format(value=bounds) + hint)
    lower, upper = (_as_bound(b) for b in bounds)
    for side, b in (("lower", lower), ("upper", upper)):
        if b is not None and _tree.is_concrete(b):
            for leaf in _tree.leaves(b):
                arr = np.asarray(leaf)
                if np.iscomplexobj(arr):  # (NumPy's comparisons and casts drop the imaginary part, with a warning)
                    flat = arr.ravel()
                    shown = flat[np.argmax(flat.imag != 0)] if flat.size else arr  # (one with an imaginary part)
                    raise ValueError(COMPLEX_BOUNDS.format(side=side, value=complex(shown) if flat.size else arr))
                if not np.issubdtype(arr.dtype, np.number) or np.isnan(arr).any():
                    hint = NONE_HINT if arr.dtype == object else ""  # (scipy's None inside an array)
                    raise ValueError(BAD_BOUNDS_ORDER.format(detail=f"{side} holds NaN or a non-number{hint}"))
    if lower is not None and upper is not None and _tree.is_concrete((lower, upper)):
        lo_single, hi_single = _tree.is_single_leaf(lower), _tree.is_single_leaf(upper)
        # (a None in a side keeps its place: the sides' leaves pair up where their structures match)
        lo_leaves, hi_leaves = (jax.tree_util.tree_leaves(b, is_leaf=_is_none) for b in (lower, upper))
        if lo_single:
            lo_leaves = lo_leaves * len(hi_leaves)
        if hi_single:
            hi_leaves = hi_leaves * len(lo_leaves)
        if len(lo_leaves) == len(hi_leaves):
            for lo, hi in zip(lo_leaves, hi_leaves):
                if lo is None or hi is None:
                    continue
                lo, hi = np.asarray(lo), np.asarray(hi)
                try:
                    bad = bool(np.any(lo > hi))
                except ValueError:  # shapes checked against x0 later
                    continue
                if bad:
                    raise ValueError(BAD_BOUNDS_ORDER.format(detail=_order_detail(lo, hi)))
    return lower, upper


def _order_detail(lo: np.ndarray, hi: np.ndarray) -> str:
    """Where ``lower > upper``: the sides themselves when small, else the first such index and its values (a
    900-entry box printed 9,000 characters and no index)."""
    if lo.size <= 8 and hi.size <= 8:
        return f"got lower={lo!r}, upper={hi!r}"
    lo_b, hi_b = np.broadcast_arrays(lo, hi)
    where = np.argwhere(lo_b > hi_b)
    at = tuple(int(i) for i in where[0])
    return (f"lower > upper at {len(where)} of {lo_b.size} entries, first at index {at if len(at) != 1 else at[0]}: "
            f"lower={lo_b[at]!r}, upper={hi_b[at]!r}")


BAD_WEIGHT_TREE = (
    "{name} must be a number or a pytree with the structure of the parameters whose leaves broadcast "
    "to theirs (0 or None leaves a leaf unpenalised); got {name} with structure {got} for parameters with structure {want}"
)


def box_gradient(x: Any, g: Any, lower: Any, upper: Any, xp: Any = jnp) -> Any:
    """The projected gradient :math:`x - P_{[l, u]}(x - g)` of one array, L-BFGS-B's ``projgr``: ``g``
    itself on a coordinate whose bound is farther than ``|g|`` (``x - (x - g)`` rounds to 0 there
    once ``|g|`` is below half ``x``'s spacing, a false stationary point: f = -x from x = 1e17), the
    distance ``x - l`` or ``x - u`` to the bound ``g`` points at otherwise (``lower``/``upper``:
    numbers, arrays or ``None`` for no bound; ``xp``: ``jax.numpy`` or NumPy)."""
    out = g
    if lower is not None:
        out = xp.where(g > 0, xp.minimum(x - lower, g), out)
    if upper is not None:
        out = xp.where(g < 0, xp.maximum(x - upper, g), out)
    return out


def held(x: Any, d: Any, lower: Any, upper: Any) -> Any:
    """Where ``x`` is at a bound and a move along ``d`` leaves the box (``lower``/``upper``: ``None`` for
    no bound; False where neither side has one)."""
    out_low = (x <= lower) & (d < 0) if lower is not None else False
    out_up = (x >= upper) & (d > 0) if upper is not None else False
    return out_low | out_up


def free_gradient(x: Any, g: Any, lower: Any, upper: Any, xp: Any = jnp) -> Any:
    """``g`` with 0 where ``x`` is at a bound and ``-g`` points out of the box (:func:`held`): the
    gradient a step can follow (the precision rule's measure; :func:`box_gradient` is capped by the
    distance to a bound however far)."""
    return xp.where(held(x, -g, lower, upper), xp.zeros((), g.dtype), g)


def weight_leaves(weight: Any, params: Params, name: str, shaped: bool = True) -> list:
    """One penalty weight per leaf of ``params``: a scalar for all, or a pytree like ``params``; with
    ``shaped``, a weight of lower rank than its leaf (a row's weights for a matrix) broadcast to the leaf's
    shape (under ``jax_numpy_rank_promotion='raise'`` the implicit promotion raised).

    Raises:
      ValueError: a pytree ``weight`` (named ``name``) that does not fit ``params``.
    """
    ws = _leaves_like(weight, params, BAD_WEIGHT_TREE, show_leaf_shape=False, name=name)
    if not shaped:
        return ws
    return [_shaped(w, p) for w, p in zip(ws, jax.tree_util.tree_leaves(params))]


def _shaped(w: Any, p: Any) -> Any:
    """``w`` broadcast to ``p``'s shape where its rank is lower but not 0 (NumPy's view for a NumPy weight)."""
    if not 0 < np.ndim(w) < np.ndim(p):
        return w
    return np.broadcast_to(w, np.shape(p)) if isinstance(w, np.ndarray) else jnp.broadcast_to(w, jnp.shape(p))


def checked_weights(weight: Any, params: Params, name: str) -> list:
    """:func:`weight_leaves`, each weight also finite in its leaf's dtype (the host check).

    Raises:
      ValueError: ``weight`` does not fit ``params``, or overflows a leaf's dtype.
    """
    ws = weight_leaves(weight, params, name, shaped=False)
    _validate.in_dtypes(name, ws, params)
    return ws


def l2_penalty(l2: Any, params: Params) -> jax.Array:
    """``sum_i l2_i / 2 ||theta_i||^2`` over the leaves (``l2`` a number or a pytree like ``params``)."""
    if _tree.is_scalar(l2):
        return 0.5 * l2 * _tree.sq_norm(params)
    parts = [0.5 * jnp.sum(w * jnp.square(x)) for w, x in zip(weight_leaves(l2, params, "l2"), _tree.leaves(params))]
    return sum(parts[1:], parts[0])


def decay(d: Params, l2: Any, params: Params) -> Params:
    """Decoupled weight decay ``d - l2 * theta``, leafwise for a pytree ``l2``."""
    if _tree.is_scalar(l2):
        return _tree.add_scaled(d, -l2, params)
    leaves, treedef = jax.tree_util.tree_flatten(d)
    ws, ps = weight_leaves(l2, params, "l2"), _tree.leaves(params)
    return jax.tree_util.tree_unflatten(treedef, [x - (w * p).astype(x.dtype) for x, w, p in zip(leaves, ws, ps)])


@_tree.pytree_class(data=("l1", "lower", "upper"), meta=("checked",))
class Prox:
    """The non-smooth part ``h(theta) = l1 ||theta||_1 + I[lower <= theta <= upper]``.

    ``None`` for ``l1``, ``lower`` or ``upper`` switches that part off
    statically (the loop carries no cost); a number, even a traced one,
    switches it on. ``lower``/``upper`` are numbers (for every entry) or
    pytrees shaped like the parameters (``-inf``/``inf`` for free entries; ``None`` in
    such a pytree frees the leaves at or below it). ``checked`` (static): every
    value was concrete when the ``Prox`` was built, so the host checked it
    (``check_bounds``, the ``l1`` check); a ``Prox`` built from traced values
    (``minimize`` under ``jit``/``vmap``) tests them in the run (:meth:`traced_valid`).
    """

    __slots__ = ("l1", "lower", "upper", "checked")

    def __init__(self, l1: Any = None, lower: Any = None, upper: Any = None) -> None:
        object.__setattr__(self, "l1", l1)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "checked", all(v is None or _tree.is_concrete(v) for v in (l1, lower, upper)))

    @property
    def active(self) -> bool:
        return self.l1 is not None or self.bounded

    @property
    def bounded(self) -> bool:
        return self.lower is not None or self.upper is not None

    def check(self, params: Params) -> None:
        """Raise ``ValueError`` (naming ``bounds`` or ``l1``) when a bound or weight does not fit ``params``."""
        if self.l1 is not None:
            checked_weights(self.l1, params, "l1")
        if _ambiguous_pairs(self.lower, self.upper, params):
            bounds = [list(self.lower), list(self.upper)]
            raise ValueError(AMBIGUOUS_PAIRS.format(bounds=bounds, kind=type(params).__name__))
        for side, bound in (("lower", self.lower), ("upper", self.upper)):
            if bound is not None:
                _validate.in_dtypes(side, _bound_leaves(bound, params, side), params, side)

    def traced_valid(self, params: Params) -> Optional[jax.Array]:
        """Whether ``l1`` and the bounds are in range where the host could not check them (not
        :attr:`checked`): every bound ``lower <= upper`` and not NaN, every ``l1`` weight ``>= 0``.
        ``None`` for a checked ``Prox`` (the program gets no test); a traced bool otherwise, which
        the run's first status reads (``Status.INVALID_ARGUMENT``)."""
        if self.checked:
            return None
        ok = jnp.asarray(True)
        if self.l1 is not None:
            for v in _tree.leaves(self.l1):
                ok = ok & jnp.all(jnp.asarray(v) >= 0)
        if self.bounded:
            leaves = _tree.leaves(params)
            lo = _bound_leaves(self.lower, params, "lower") or [None] * len(leaves)
            hi = _bound_leaves(self.upper, params, "upper") or [None] * len(leaves)
            for a, b in zip(lo, hi):
                if a is not None:
                    ok = ok & ~jnp.any(jnp.isnan(jnp.asarray(a)))
                if b is not None:
                    ok = ok & ~jnp.any(jnp.isnan(jnp.asarray(b)))
                if a is not None and b is not None:
                    ok = ok & jnp.all(jnp.asarray(a) <= jnp.asarray(b))
        return ok

    def start(self, params: Params) -> tuple[Params, Optional[jax.Array]]:
        """A run's first point and :meth:`traced_valid`'s verdict: ``params`` projected into the box, or
        left as given where a traced ``l1`` or bound is out of range (the run then stops before its first
        step, ``Status.INVALID_ARGUMENT``: ``Solver.init``, fit's ``start``); the verdict is ``None`` for a
        checked ``Prox``."""
        valid = self.traced_valid(params)
        projected = self.project(params)
        return (projected if valid is None else _tree.where(valid, projected, params)), valid

    def project(self, params: Params) -> Params:
        """Clip ``params`` into the box (identity without bounds)."""
        if not self.bounded:
            return params
        leaves, treedef, lo, hi = self.box_leaves(params)
        out = []
        for x, a, b in zip(leaves, lo, hi):
            if a is not None:
                x = jnp.maximum(x, a)
            if b is not None:
                x = jnp.minimum(x, b)
            out.append(x)
        return jax.tree_util.tree_unflatten(treedef, out)

    def free_direction(self, params: Params, d: Params) -> Params:
        """``d`` with 0 where ``params`` is at a bound and ``d`` points out of the box (:func:`held`): the
        move :meth:`apply` makes from ``params`` along ``d``, to first order (StepContext.slope_at)."""
        leaves, treedef, lo, hi = self.box_leaves(params)
        out = [jnp.where(held(x, v, a, b), jnp.zeros((), v.dtype), v)
               for x, v, a, b in zip(leaves, _tree.leaves(d), lo, hi)]
        return jax.tree_util.tree_unflatten(treedef, out)

    def box_leaves(self, params: Params) -> tuple[list, Any, list, list]:
        """``(leaves, treedef, lower, upper)``: ``params``' leaves and each one's bounds as arrays of
        its dtype (``None``: no bound on that side)."""
        leaves, treedef = jax.tree_util.tree_flatten(params)
        lo = _bound_leaves(self.lower, params, "lower") or [None] * len(leaves)
        hi = _bound_leaves(self.upper, params, "upper") or [None] * len(leaves)
        as_dtype = lambda v, x: None if v is None else jnp.asarray(v, x.dtype)  # noqa: E731
        return (leaves, treedef, [as_dtype(a, x) for a, x in zip(lo, leaves)],
                [as_dtype(b, x) for b, x in zip(hi, leaves)])

    def apply(self, params: Params, alpha: jax.Array) -> Params:
        """``prox_{alpha h}``: soft-threshold by ``alpha * l1``, then project."""
        if self.l1 is not None:
            leaves, treedef = jax.tree_util.tree_flatten(params)
            ws = weight_leaves(self.l1, params, "l1")
            params = jax.tree_util.tree_unflatten(treedef, [soft_threshold(x, alpha * w) for x, w in zip(leaves, ws)])
        return self.project(params)

    def value(self, params: Params) -> jax.Array:
        """``h(theta)`` for a feasible ``theta``, added to the reported loss (the box adds 0)."""
        if self.l1 is None:
            return jnp.asarray(0.0)
        if _tree.is_scalar(self.l1):
            return self.l1 * sum(jnp.sum(jnp.abs(x)) for x in _tree.leaves(params))
        ws = weight_leaves(self.l1, params, "l1")
        return sum(jnp.sum(w * jnp.abs(x)) for w, x in zip(ws, _tree.leaves(params)))

    def change(self, new: Params, old: Params) -> jax.Array:
        """``h(new) - h(old)`` summed from elementwise differences (accurate for tiny changes)."""
        if self.l1 is None:
            return jnp.asarray(0.0)
        if _tree.is_scalar(self.l1):
            parts = [jnp.sum(jnp.abs(a) - jnp.abs(b)) for a, b in zip(_tree.leaves(new), _tree.leaves(old))]
            return self.l1 * sum(parts[1:], parts[0])
        ws = weight_leaves(self.l1, new, "l1")
        parts = [jnp.sum(w * (jnp.abs(a) - jnp.abs(b))) for w, a, b in zip(ws, _tree.leaves(new), _tree.leaves(old))]
        return sum(parts[1:], parts[0])

    def stationarity(self, params: Params, grad: Grads, ord: float = 2.0) -> jax.Array:
        """The norm that must vanish at a minimiser (the 2-norm, or with ``ord=inf`` the largest magnitude).

        Without a proximal term, ``||grad||``; with one, the norm of the
        unit-step gradient mapping ``theta - prox_h(theta - grad)``, which is
        zero exactly at the minimisers of ``f + h`` (Beck, "First-Order Methods
        in Optimization", SIAM 2017, Theorem 10.7). With bounds only, it is
        the projected-gradient norm ``||theta - P(theta - grad)||``.
        """
        norm = _tree.norm if ord == 2 else _tree.max_abs
        if not self.active:
            return norm(grad)
        if self.l1 is None:  # the box alone: from g itself (box_gradient), as L-BFGS-B's projgr
            leaves, treedef, lo, hi = self.box_leaves(params)
            pg = [box_gradient(x, gr, a, b) for x, gr, a, b in zip(leaves, _tree.leaves(grad), lo, hi)]
            return norm(jax.tree_util.tree_unflatten(treedef, pg))
        moved = self.apply(_tree.add_scaled(params, -1.0, grad), jnp.asarray(1.0))
        return norm(_tree.sub(params, moved))


# -- FISTA ---------------------------------------------------------------------------
class FistaState(NamedTuple):
    """The acceleration carry: ``t_k`` and the previous iterate ``theta_{k-1}``."""

    t: jax.Array
    prev: Params


def fista_init(params: Params, dtype: Any) -> FistaState:
    """``t_0 = 0`` (so that ``t_1 = 1``) and ``theta_{-1} = theta_0``."""
    return FistaState(jnp.zeros((), dtype), params)


def fista_extrapolate(state: FistaState, params: Params, project: Callable[[Params], Params] = lambda p: p,
                      ) -> tuple[Params, jax.Array, FistaState]:
    """Beck & Teboulle's momentum step (FISTA, eqs. 4.2-4.3).

    .. math::
       t_{k+1} = \\frac{1 + \\sqrt{1 + 4 t_k^2}}{2},\\qquad
       y_{k+1} = \\theta_k + \\frac{t_k - 1}{t_{k+1}} (\\theta_k - \\theta_{k-1}),

    with the paper's :math:`y_1 = \\theta_0`, :math:`t_1 = 1` (here :math:`t_0 = 0`,
    so the first two steps have no momentum, as in the paper). ``project``: the box's
    projection (:meth:`Prox.project`), applied to ``y`` so that the loss is never
    evaluated outside the box (a loss undefined there, ``sqrt(x)`` over ``x >= 0``,
    ended ``NONFINITE``); the identity without bounds (the same program).

    Returns:
      ``(y, beta, new_state)`` with ``beta = max((t_k - 1) / t_{k+1}, 0)``.
    """
    t_next = (1.0 + jnp.sqrt(1.0 + 4.0 * state.t * state.t)) / 2.0
    beta = jnp.maximum((state.t - 1.0) / t_next, 0.0)
    y = project(_tree.add_scaled(params, beta, _tree.sub(params, state.prev)))
    return y, beta, FistaState(t_next.astype(state.t.dtype), params)


def fista_restart(state: FistaState, y: Params, new: Params, old: Params) -> FistaState:
    """O'Donoghue & Candes's adaptive restart, gradient scheme ("Adaptive restart for accelerated
    gradient schemes", Found. Comput. Math. 15, 2015, section 3.2), after the step from ``y`` (``y_k``,
    :func:`fista_extrapolate`'s point) to ``new`` (``theta_{k+1}``), ``old`` being ``theta_k``:

    .. math::
       (y_k - \\theta_{k+1})^\\top (\\theta_{k+1} - \\theta_k) > 0 \\;\\Rightarrow\\; t \\leftarrow 1,

    the (generalised) gradient step disagreeing with the momentum, which then restarts: the next
    extrapolation has ``beta = 0``. On a strongly convex loss it keeps FISTA's linear rate where the
    plain scheme oscillates with a period set by the condition number (float32 lasso on scikit-learn's
    diabetes data, condition 470: plain FISTA's gradient norm rose and fell, and a 100-step window without
    a new low ended it ``PRECISION`` 7e-2 from scikit-learn's coefficients; with the restart 4e-6, in fewer
    steps). Where ``beta = 0`` the product is ``-||theta_{k+1} - theta_k||^2``: no restart.
    """
    turned = _tree.vdot(_tree.sub(y, new), _tree.sub(new, old)) > 0
    return state._replace(t=jnp.where(turned, jnp.ones_like(state.t), state.t))

