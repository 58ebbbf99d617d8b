"""Private pytree arithmetic and the pytree-object helpers the solver is built from.

The arithmetic is a thin layer over ``jax.tree_util``; everything is pure and
preserves each leaf's dtype (the loop carry must keep its types, STYLE.md
principle 7).
"""

from __future__ import annotations

import functools
import inspect
import operator
import types
import weakref

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import _closure_key
from ._types import PyTree

tmap = jax.tree_util.tree_map
leaves = jax.tree_util.tree_leaves


LANES = 8  # partial sums a long reduction keeps (_reduce_last)
LONG = 256  # elements from which a reduction runs as LANES partial ones
HUGE = 2**15  # ... up to here: from here one plain reduction each (XLA:CPU's own vectorised pass, no slices)


def _reduce_last(x: jax.Array, op: Callable[..., jax.Array], reduce: Callable[..., jax.Array]) -> jax.Array:
    """``reduce(x, axis=-1)`` for an associative ``op``, over :data:`LANES` interleaved parts.

    XLA:CPU emits a reduction as one chain of dependent scalar operations (about 0.45 ns an
    element for a float64 sum, whatever its form: ``jnp.sum``, ``vdot``, a reshape reduced over
    either axis); ``LANES`` contiguous slices combined by ``op`` first are one vectorised loop,
    and the chain that is left is ``LANES`` times shorter: a 1,000-element dot 0.47 -> 0.24 µs,
    10,000 elements 4.6 -> 2.1 µs, the largest magnitude of 1,000 (a NaN-propagating max)
    1.5 -> 0.42 µs (benchmarks/RESULTS.md, session 23). A sum is the same to rounding, in
    another order (as a BLAS ``ddot`` orders it differently from a loop); a max, min or
    all is exact. Rows shorter than :data:`LONG` keep the plain reduction, and so do rows of
    :data:`HUGE` elements or more: there XLA:CPU reduces a row in a vectorised pass of its own,
    while each of the parts became a copy (float32, one loop step: 65,536 elements 34 -> 80 µs,
    a million 0.2 -> 0.57 ms, benchmarks/RESULTS.md, session 59).
    """
    n = x.shape[-1]
    m = n // LANES
    if n < LONG or n >= HUGE:
        return reduce(x, axis=-1)
    part = x[..., :m]
    for j in range(1, LANES):
        part = op(part, x[..., j * m:(j + 1) * m])
    out = reduce(part, axis=-1)
    return out if n == LANES * m else op(out, reduce(x[..., LANES * m:], axis=-1))


def _max0(x: jax.Array, axis: int) -> jax.Array:
    """``max(x, axis)`` with 0 for no elements (the magnitudes' maximum)."""
    return jnp.max(x, axis=axis, initial=0.0)


def _sum(x: jax.Array) -> jax.Array:
    """The sum of every element of ``x`` (:func:`_reduce_last` over the flattened array)."""
    return _reduce_last(x.ravel(), jnp.add, jnp.sum)


def _at_least_32(x: jax.Array) -> jax.Array:
    """``x`` in ``promote_types(dtype, float32)``: float32 for a half-precision float (float16,
    bfloat16), else ``x`` itself (no conversion in the program)."""
    x = jnp.asarray(x)
    w = jnp.promote_types(x.dtype, jnp.float32)
    return x if x.dtype == w else x.astype(w)


def at_least_32(a: PyTree) -> PyTree:
    """Every half-precision leaf of ``a`` in float32 (sums of their products stay in range), the
    others as they are."""
    return tmap(_at_least_32, a)


def vdot(a: PyTree, b: PyTree) -> jax.Array:
    """Real inner product ``sum_i <a_i, b_i>`` over all leaves; half-precision leaves are
    multiplied and summed in float32 (float16's range ends at 65504: the slope ``<g, -g>`` of a
    gradient of norm 256 overflowed it), so their product is float32."""
    parts = []
    for x, y in zip(leaves(a), leaves(b)):
        x, y = _at_least_32(x), _at_least_32(y)
        parts.append(_sum(x * y) if jnp.size(x) >= LONG and not jnp.iscomplexobj(x) else jnp.vdot(x, y))
    return sum(parts[1:], parts[0])


def sq_norm(a: PyTree) -> jax.Array:
    """Squared global 2-norm over all leaves; half-precision leaves squared and summed in
    float32, as :func:`vdot`."""
    parts = [_sum(jnp.square(_at_least_32(x))) for x in leaves(a)]
    return sum(parts[1:], parts[0])


def sq_norm_nan_if(a: PyTree, b: PyTree) -> jax.Array:
    """``sq_norm(a)``, made NaN when any element of ``b`` (same structure) is not finite.

    One fused reduction ``sum(a*a + 0*b)`` per leaf: ``0*b`` is exactly 0 for
    finite ``b`` and NaN for NaN or Inf, so the result equals ``sq_norm(a)``
    whenever ``b`` is finite (half-precision leaves in float32, as there).
    """
    parts = []
    for x, y in zip(leaves(a), leaves(b)):
        x = _at_least_32(x)
        parts.append(_sum(jnp.square(x) + (0 * y).astype(x.dtype)))
    return sum(parts[1:], parts[0])


def _norm_scale(dtype: Any, wide: Any) -> float:
    """:func:`sq_norm_checked`'s scale for a leaf of ``dtype`` summed in ``wide``: ``2**-(emax //
    2 + 20)`` of ``wide``, or 1 where ``dtype``'s squares cannot overflow ``wide`` (float16 in
    float32)."""
    half = jnp.finfo(wide).maxexp // 2
    return 1.0 if jnp.finfo(dtype).maxexp <= half - 20 else 2.0 ** -(half + 20)


def sq_norm_checked(a: PyTree, b: PyTree) -> tuple[jax.Array, jax.Array]:
    """``(||a||, every element of a and b finite)`` without overflow, and below :data:`HUGE` elements a leaf
    without a branch.

    Two sums over each leaf (one variadic reduction for a leaf of fewer than :data:`LONG`
    elements): ``sq = sum(a*a + 0*b)`` (that of :func:`sq_norm_nan_if`, to an ulp where XLA:CPU
    vectorises the variadic reduction its own way; finite, it proves every element finite; in
    float32 for a half-precision leaf, whose squares below float16's normal range read 0) and
    the same sum of ``a`` scaled by ``c = 2**-(emax // 2 + 20)`` (in at least float32), which
    cannot overflow for finite elements (fewer than ``2**39`` of them) and scales exactly, by a
    power of two. Where ``sq`` is finite the norm is ``sqrt(sq)``; where it overflowed and every
    scaled sum did not, every element is finite and the norm is that of the leaves' norms (each
    ``sqrt(sq)`` of the leaf, or ``sqrt(scaled) / c`` where the leaf's own overflowed: its
    elements are then so large that those the scaling underflows weigh nothing, as in LAPACK's
    ``dnrm2``), combined by their largest; a NaN or Inf element makes both of its leaf's sums
    NaN or Inf.

    It replaced a ``lax.cond`` that took an exact branch where ``sq`` was not finite: on
    XLA:CPU a conditional in a loop body costs a thunk and its branch every step, and 128 of
    the 1,024 bytes a loop may touch to be compiled as one kernel (benchmarks/RESULTS.md,
    session 26); under ``vmap`` it ran both branches. A leaf of :data:`HUGE` elements or more
    takes that branch again, for its scaled sum only: there a pass over the leaf costs far
    more than a conditional (session 59).
    """
    xs, ys = leaves(a), leaves(b)
    wide = jnp.promote_types(jnp.result_type(*xs), jnp.float32)
    sqs, norms, finite = [], [], []
    for x, y in zip(xs, ys):
        # both sums in at least float32 (a half-precision leaf's squares too: in float16 those below
        # 2.4e-4 were subnormal, flushed to 0 by XLA:CPU, and a gradient of 1e-4 read as norm 0)
        xw = _at_least_32(x)
        w = xw.dtype
        c = _norm_scale(x.dtype, w)
        plain_row = jnp.square(xw) + (0 * y).astype(w)
        if x.size == 1:
            # One element: its norm is |x|, no scaling needed. (Scaled, XLA's simplifier rewrote the
            # lone (x c)^2 as x^2 c^2, whose c^2 underflows to 0: Inf x 0 = NaN, a finite gradient of
            # 1e30 read as non-finite under jit.) p is the sum of one: the same bits.
            p = plain_row.reshape(())
            q = (jnp.abs(xw) + (0 * y).astype(w)).reshape(())
            ok = jnp.isfinite(p)
            norms.append(jnp.where(ok, jnp.sqrt(jnp.where(ok, p.astype(w), 1.0)), q).astype(wide))
            sqs.append(p)
            finite.append(jnp.isfinite(q))
            continue
        if x.size >= HUGE:
            # a pass over a large leaf costs more than a branch: the scaled sum only where the plain one
            # overflowed (where it is finite, so is the scaled one, and only its finiteness is read)
            p = jnp.sum(plain_row)
            q = jax.lax.cond(jnp.isfinite(p), lambda: p, lambda: jnp.sum(jnp.square(xw * c) + (0 * y).astype(w)))
        else:
            scaled_row = jnp.square(xw * c) + (0 * y).astype(w)
            p, q = _pair_reduce_last(plain_row.ravel(), scaled_row.ravel())  # (both rows in w, as XLA requires)
        ok = jnp.isfinite(p)
        # one square root of the sum chosen (a branch not taken would pass an Inf derivative,
        # times its zero cotangent NaN), times 1 or 1 / c: exact, a power of two
        norms.append(jnp.sqrt(jnp.where(ok, p.astype(w), q)).astype(wide) * jnp.where(ok, 1.0, 1.0 / c).astype(wide))
        sqs.append(p)
        finite.append(jnp.isfinite(q))
    sq = functools.reduce(jnp.add, sqs)
    plain = jnp.isfinite(sq)
    if len(norms) == 1:  # sqrt(sq) where it is finite
        return norms[0].astype(sq.dtype), plain | finite[0]
    # the leaves' norms, combined without overflow by the largest
    ns = [jnp.where(plain, 1.0, n) for n in norms]
    top = functools.reduce(jnp.maximum, ns)
    top = jnp.where((top > 0) & jnp.isfinite(top), top, 1.0)
    combined = top * jnp.sqrt(functools.reduce(jnp.add, [jnp.square(n / top) for n in ns]))
    norm = jnp.where(plain, jnp.sqrt(jnp.where(plain, sq, 1.0)).astype(wide), combined)
    return norm.astype(sq.dtype), plain | functools.reduce(jnp.logical_and, finite)


def _pair_reduce_last(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(sum(x), sum(y))`` of two 1-D rows of one length: one variadic reduction below
    :data:`LONG` elements (a loop small enough to be one XLA:CPU kernel counts its bytes once);
    from there :func:`_reduce_last` for each, whose partial sums XLA:CPU's classic and fusion
    emitters round alike (a variadic reduction over them they did not: jaxgd.core.compile
    relies on the two agreeing); from :data:`HUGE` two plain sums (a variadic reduction of a million
    float32 pairs took 1.36 ms, two sums 0.64: benchmarks/RESULTS.md, session 59)."""
    if x.shape[-1] < LONG:
        return _row_sums(x, y)
    return _reduce_last(x, jnp.add, jnp.sum), _reduce_last(y, jnp.add, jnp.sum)


def sums(*terms: PyTree) -> jax.Array:
    """``[sum of every element of t for t in terms]`` (same structures), as one vector: one
    variadic reduction per leaf over the terms (XLA:CPU: one pass, no stacked copy; at 1,000
    elements six sums cost 1.5 µs this way, 2.4 stacked and sliced, 6.4 stacked, 6 separate ~1
    each: benchmarks/RESULTS.md, session 23); a leaf of :data:`HUGE` elements or more one plain sum
    per term (there the variadic pass was twice the separate ones: session 59)."""
    dtype = jnp.result_type(*[x for t in terms for x in leaves(t)])
    per_leaf = zip(*(leaves(t) for t in terms))
    parts = [jnp.stack(_row_sums(*(x.ravel().astype(dtype) for x in xs)) if jnp.size(xs[0]) < HUGE
                       else [jnp.sum(x.astype(dtype)) for x in xs]) for xs in per_leaf]
    return functools.reduce(jnp.add, parts)


@jax.custom_jvp
def _row_sums(*rows: jax.Array) -> tuple[jax.Array, ...]:
    """``(sum(r) for r in rows)`` (1-D rows of one length and one precision, as XLA requires) as
    one variadic ``lax.reduce``."""
    return tuple(jax.lax.reduce(rows, tuple(jnp.zeros((), r.dtype) for r in rows), _add_rows, (0,)))


def _add_rows(a: tuple, b: tuple) -> tuple:
    """:func:`_row_sums`'s reducer (at module scope: JAX caches a reduction's compiled program per reducer
    function, and one defined in the call made every eager ``Solver.init``/``step`` compile again)."""
    return tuple(p + q for p, q in zip(a, b))


@_row_sums.defjvp
def _row_sums_jvp(primals: tuple, tangents: tuple) -> tuple:
    # JAX cannot differentiate a variadic reduce (nor transpose one): the tangents, linear, are
    # plain sums, which it can (adjoint="unroll" differentiates the lbfgs step in reverse mode)
    return _row_sums(*primals), tuple(jnp.sum(t) for t in tangents)


def max_min(a: PyTree) -> tuple[jax.Array, jax.Array]:
    """``(largest, smallest)`` element over all leaves (NaN propagates), for comparisons: no
    derivative flows through them.

    One variadic ``lax.reduce`` per leaf (max and min in one pass): XLA:CPU runs it in 0.64 µs
    over 1,000 float64 elements in a loop step, where the two rows stacked and reduced as
    :data:`LANES` parts took 1.5 (their stack is a kernel of its own) and ``jnp.max`` and
    ``jnp.min`` 2.4 (benchmarks/RESULTS.md, session 27)."""

    def one(x: jax.Array) -> tuple:
        x = jax.lax.stop_gradient(x).ravel()  # (JAX has no derivative of a variadic reduce)
        inf = jnp.asarray(jnp.inf, x.dtype)
        return tuple(jax.lax.reduce((x, x), (-inf, inf), _max_min_pair, (0,)))

    return functools.reduce(_max_min_pair, [one(x) for x in leaves(a)])


def _max_min_pair(p: tuple, q: tuple) -> tuple:
    """:func:`max_min`'s reducer (at module scope, as :func:`_add_rows`)."""
    return jnp.maximum(p[0], q[0]), jnp.minimum(p[1], q[1])


def max_abs(a: PyTree) -> jax.Array:
    """The infinity norm: the largest magnitude over all leaves (0 for no elements; NaN if any is NaN)."""
    parts = [_reduce_last(jnp.abs(x).ravel(), jnp.maximum, _max0) for x in leaves(a)]
    return functools.reduce(jnp.maximum, parts[1:], parts[0]) if parts else jnp.asarray(0.0)


def max_abs_nan_if(a: PyTree, b: PyTree) -> jax.Array:
    """``max_abs(a)``, made NaN when any element of ``b`` (same structure) is NaN or
    infinite: one fused reduction ``max(|x| + 0*y)`` per leaf (as :func:`sq_norm_nan_if`)."""
    parts = [_reduce_last((jnp.abs(x) + (0 * y).astype(x.dtype)).ravel(), jnp.maximum, _max0) for x, y in zip(leaves(a), leaves(b))]
    return functools.reduce(jnp.maximum, parts[1:], parts[0])


def norm(a: PyTree) -> jax.Array:
    """Global 2-norm over all leaves, without overflow or underflow.

    ``sqrt(sum(x*x))`` when the sum is finite and normal; otherwise (a
    gradient of 1e200 squares to Inf, one of 1e-200 to 0) the sum of squares
    is taken after scaling by the largest magnitude, ``m * sqrt(sum((x/m)**2))``
    (the scaling of LAPACK's ``dnrm2``), under ``lax.cond`` so the common case
    costs one reduction. NaN elements give NaN; Inf elements give Inf.
    """
    sq = sq_norm(a)  # (float32 for half-precision leaves: the norm is cast back to their dtype)
    tiny = jnp.finfo(jnp.result_type(sq)).tiny
    out = jax.lax.cond(jnp.isfinite(sq) & (sq >= tiny), lambda: jnp.sqrt(sq), lambda: scaled_norm(a).astype(sq.dtype))
    return out.astype(jnp.result_type(*leaves(a)))


def scaled_norm(a: PyTree) -> jax.Array:
    """``s * sqrt(sum((x/s)**2))`` with ``s = 2**e`` the power of two nearest above the largest
    magnitude ``m`` (``m = 0`` for a zero tree gives 0), summed in at least float32.

    Dividing by a power of two is exact, so this is ``dnrm2``'s scaling by ``m`` without its
    rounding; the scale is applied as two factors ``2**-(e//2)`` and ``2**-(e - e//2)``, each
    normal, because one factor ``1/m`` is subnormal for ``m >= 2**126`` in float32 and XLA:CPU
    flushes it to zero (under ``vmap``, or in bfloat16, it rewrites ``x / m`` as ``x * (1/m)``:
    a gradient of 1e38 had norm 0). Half-precision leaves are summed in float32, whose range
    holds their squares' sums.
    """
    xs = [jnp.asarray(x) for x in leaves(a)]
    w = jnp.promote_types(jnp.result_type(*xs), jnp.float32)
    m = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x)).astype(w) if x.size else jnp.zeros((), w) for x in xs])
    # the norm is homogeneous in m: no derivative flows through it (m**2 in the chain rule
    # overflows for m > 1e154, which zeroed half of the gradient of the norm there)
    m = jax.lax.stop_gradient(m)
    e = _exponent(jnp.where((m > 0) & jnp.isfinite(m), m, 1.0))
    h = jnp.right_shift(e, 1)  # (floor(e / 2))
    two = lambda k: _power_of_two(k, w)  # noqa: E731  (2**k, exact)
    parts = [jnp.sum(jnp.square(x.astype(w) * two(-h) * two(h - e))) for x in xs]
    total = jnp.sqrt(sum(parts[1:], parts[0])) * two(h) * two(e - h)
    return jnp.where(jnp.isfinite(m), total, m)


def count_div(k: Any, d: Any) -> Any:
    """``k // d`` for a count ``k >= 0`` (traced) and ``d > 0`` (static or traced): ``k`` itself for a static 1,
    else ``lax.div``, which truncates (the floor for these operands) where ``//`` lowers with a sign correction."""
    return k if isinstance(d, int) and d == 1 else jax.lax.div(k, jnp.asarray(d, k.dtype))


def count_rem(k: Any, d: Any) -> Any:
    """``k % d`` for a count ``k >= 0`` (traced) and ``d > 0`` (static or traced), as :func:`count_div`: 0 for a
    static 1, else ``lax.rem``."""
    return jnp.zeros_like(k) if isinstance(d, int) and d == 1 else jax.lax.rem(k, jnp.asarray(d, k.dtype))


def _exponent(m: jax.Array) -> jax.Array:
    """``jnp.frexp``'s exponent of a finite ``m > 0`` (``m = f 2^e``, ``0.5 <= f < 1``), read from its bits
    with a few integer ops where ``jnp.frexp`` lowers to some fifty (in every program that takes a norm). A
    subnormal is scaled by ``2^p`` first (``p`` the significand's bits), as ``jnp.frexp`` does: the same
    exponent where XLA:CPU flushes the subnormal to zero."""
    info = jnp.finfo(m.dtype)
    p = info.nmant
    sub = m < info.tiny
    m = jnp.where(sub, m * (2.0 ** p), m)
    biased = jnp.right_shift(jax.lax.bitcast_convert_type(m, _bits(m.dtype)), p) & (2 * (info.maxexp - 1) + 1)
    return (biased - (info.maxexp - 2) - jnp.where(sub, p, 0)).astype(jnp.int32)


def _power_of_two(k: jax.Array, dtype: Any) -> jax.Array:
    """``2^k`` exactly in ``dtype`` (float32 or float64), built from its bits (``jnp.ldexp`` lowers to some
    thirty ops), for a normal power: ``finfo(dtype).minexp <= k < finfo(dtype).maxexp``."""
    info = jnp.finfo(dtype)
    biased = k.astype(_bits(dtype)) + (info.maxexp - 1)
    return jax.lax.bitcast_convert_type(jnp.left_shift(biased, info.nmant), info.dtype)


def all_of(*verdicts: Any) -> Any:
    """The ``&`` of the boolean ``verdicts`` that are not ``None`` (``None`` where all are)."""
    out = None
    for v in verdicts:
        if v is not None:
            out = v if out is None else out & v
    return out


def power_of_two_below(m: Any, xp: Any = jnp) -> Any:
    """The largest power of two at most ``m`` where ``m`` is finite and above 1, else 1 (a scale that
    divides exactly; ``xp``: ``jax.numpy``, or NumPy for the host tier)."""
    big = (m > 1) & xp.isfinite(m)
    if xp is not jnp:
        return xp.where(big, xp.ldexp(xp.ones((), m.dtype), xp.frexp(m)[1] - 1), 1).astype(m.dtype)
    if jnp.dtype(m.dtype) in (jnp.float32, jnp.float64):
        power = _power_of_two(_exponent(jnp.where(big, m, 1)) - 1, m.dtype)
    else:  # (16-bit: frexp/ldexp)
        power = jnp.ldexp(jnp.ones((), m.dtype), jnp.frexp(jnp.where(big, m, 1))[1] - 1)
    return jnp.where(big, power, jnp.ones((), m.dtype))


def _bits(dtype: Any) -> Any:
    """The signed integer type of ``dtype``'s width (float32 or float64), for reading its bits."""
    return jnp.int64 if jnp.dtype(dtype) == jnp.float64 else jnp.int32


def rounded(tree: PyTree) -> PyTree:
    """``tree`` with every bfloat16 leaf rounded to bfloat16 for certain.

    XLA:CPU computes bfloat16 arithmetic in float32 and, by default
    (``xla_allow_excess_precision``), drops a rounding to bfloat16 whose
    result goes straight back to float32: a trial point ``x + alpha d``
    handed to a loss that casts its parameters to float32 was evaluated
    unrounded, while the point kept was rounded, so ``Result.loss`` was not
    the loss at ``Result.params`` (and a search could fail on values no
    bfloat16 point has). ``lax.reduce_precision`` to bfloat16's 8 exponent
    and 7 mantissa bits is a rounding XLA keeps (subnormals included: they
    share float32's exponent range). float16 needs none (XLA:CPU keeps its
    roundings; ``reduce_precision`` would flush its subnormals), and other
    leaves are returned as they are (the same program).
    """
    return tmap(_rounded, tree)


def _rounded(x: Any) -> Any:
    if jnp.result_type(x) != jnp.bfloat16:
        return x
    return jax.lax.reduce_precision(jnp.asarray(x, jnp.float32), exponent_bits=8, mantissa_bits=7).astype(jnp.bfloat16)


def add_scaled(x: PyTree, alpha: jax.Array, d: PyTree) -> PyTree:
    """``x + alpha * d`` leaf by leaf, cast back to each leaf of ``x``'s dtype."""
    return tmap(lambda xi, di: (xi + jnp.asarray(alpha, xi.dtype) * di).astype(xi.dtype), x, d)


def sub(a: PyTree, b: PyTree) -> PyTree:
    return tmap(lambda x, y: x - y, a, b)


def scale(alpha: jax.Array, a: PyTree) -> PyTree:
    return tmap(lambda x: (jnp.asarray(alpha, x.dtype) * x).astype(x.dtype), a)


def neg(a: PyTree) -> PyTree:
    return tmap(jnp.negative, a)


# Parameter trees with more leaves than this compute their step's accept flag once (:func:`shared`).
SHARED_MIN_LEAVES = 8


def shared(flag: jax.Array, tree: PyTree) -> jax.Array:
    """``flag`` (a traced bool), computed once for all its consumers where it selects between values of
    ``tree``'s shape and ``tree`` has more than :data:`SHARED_MIN_LEAVES` leaves (else ``flag`` as it is).

    XLA fuses a cheap scalar chain (the sum of a tree's per-leaf terms, the ``and`` of their
    finiteness) into every kernel that consumes it, so a select per leaf recomputes it per leaf:
    O(L^2) work a step, and compile time, for a tree of L leaves (40 leaves of gd: 138 us a step,
    42x a hand-written optax loop; a 6 s compile; a user review in session 57). XLA never
    duplicates an expensive op such as a square root: that of the flag as 0.0 or 1.0 (exact)
    is computed once, and each consumer only compares it.
    """
    if len(leaves(tree)) <= SHARED_MIN_LEAVES:
        return flag
    return jnp.sqrt(flag.astype(jnp.float32)) > 0.5


def where(cond: jax.Array, a: PyTree, b: PyTree) -> PyTree:
    """Select whole pytrees with a scalar predicate (NaN-safe: no arithmetic)."""
    return tmap(lambda x, y: jnp.where(cond, x, y), a, b)


def pick(cond: Any, a: PyTree, b: PyTree) -> PyTree:
    """:func:`where`, or ``a if cond else b`` for a host predicate (a Python or NumPy bool: code
    written once for JAX and NumPy, as the host tier's L-BFGS-B step)."""
    if isinstance(cond, (bool, np.bool_)):
        return a if cond else b
    return where(cond, a, b)


def put(a: Any, index: Any, value: Any) -> Any:
    """``a`` with ``a[index] = value``: ``a.at[index].set(value)`` for a JAX array, a written copy
    for a NumPy one."""
    if isinstance(a, np.ndarray):
        a = a.copy()
        a[index] = value
        return a
    return a.at[index].set(value)


def all_equal(a: PyTree, b: PyTree) -> jax.Array:
    """True when every element of ``a`` equals the one of ``b`` (same structure)."""
    flags = [_reduce_last((x == y).ravel(), jnp.logical_and, jnp.all) for x, y in zip(leaves(a), leaves(b))]
    return functools.reduce(jnp.logical_and, flags[1:], flags[0]) if flags else jnp.asarray(True)


def all_finite(a: PyTree) -> jax.Array:
    """True when every element of every leaf is finite."""
    flags = [jnp.all(jnp.isfinite(x)) for x in leaves(a)]
    return jnp.stack(flags).all() if flags else jnp.asarray(True)


def all_finite_pair(a: PyTree, b: PyTree) -> tuple[jax.Array, jax.Array]:
    """``(all_finite(a), all_finite(a) & all_finite(b))`` from one reduction.

    Every element maps to a float32 code (0 if finite; NaN for a non-finite
    element of ``a``; +Inf for one of ``b``), the codes of all leaves are
    concatenated and summed once: the sum is NaN exactly when ``a`` has a
    non-finite element and 0 exactly when neither has (no -Inf is ever added,
    so the order of the additions does not matter). The optimization barrier
    keeps XLA from splitting the sum back into one reduction per leaf (on a
    CPU each small kernel costs about as much as its work here). Leaves of
    more than ``_FUSE_MAX`` elements are summed on their own instead: copying
    a large leaf into the concatenation would cost more memory traffic than
    the kernel it saves (a large model on an accelerator).
    """
    f32 = jnp.float32
    codes = [jnp.ravel(jnp.where(jnp.isfinite(x), f32(0), f32(np.nan))) for x in leaves(a)]
    codes += [jnp.ravel(jnp.where(jnp.isfinite(x), f32(0), f32(np.inf))) for x in leaves(b)]
    if not codes:
        return jnp.asarray(True), jnp.asarray(True)
    small = [c for c in codes if c.size <= _FUSE_MAX]
    sums = [jnp.sum(c) for c in codes if c.size > _FUSE_MAX]
    if small:
        sums.append(jnp.sum(jax.lax.optimization_barrier(jnp.concatenate(small))))
    total = sum(sums[1:], sums[0])
    return ~jnp.isnan(total), total == 0


_FUSE_MAX = 1 << 16  # elements: larger leaves are checked by a reduction of their own


def cast_like(a: PyTree, like: PyTree) -> PyTree:
    """Cast each leaf of ``a`` to the dtype of the matching leaf of ``like``."""
    return tmap(lambda x, y: jnp.asarray(x).astype(jnp.result_type(y)), a, like)


def structure_key(tree: Any) -> Any:
    """``tree``'s structure with its leaves' shapes and dtypes, as a hashable key (the key of a check made once
    per structure), or None where the structure cannot be hashed."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    key = (treedef, tuple((np.shape(v), jnp.result_type(v)) for v in leaves))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def size(tree: Any) -> int:
    """The number of elements over all leaves of ``tree`` (JAX or NumPy arrays, scalars)."""
    return sum(int(np.size(x)) for x in leaves(tree))


def is_single_leaf(tree: Any) -> bool:
    """True when ``tree`` is one leaf (not a container holding one)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return len(leaves) == 1 and treedef == jax.tree_util.tree_structure(0.0)


def is_scalar(value: Any) -> bool:
    """A single 0-d leaf: one value for every entry of every parameter leaf."""
    return is_single_leaf(value) and jnp.ndim(value) == 0


def is_array(leaf: Any) -> bool:
    """True for an array-like leaf (a JAX or NumPy array or scalar, a tracer, a ``ShapeDtypeStruct``): one with a
    shape and a dtype, as a loss's traced arguments are; False for a Python number, string or function."""
    return hasattr(leaf, "shape") and hasattr(leaf, "dtype")


def strong_leaf(leaf: Any, dtype: Any) -> tuple[Any, Any]:
    """``(array, host)``: ``leaf`` as a strongly typed array of ``dtype`` (a weakly typed leaf, from a Python
    float, promotes otherwise than the same leaf loaded from a checkpoint, and takes 16-bit data's dtype), and
    the host copy made on the way (NumPy input, or a concrete weak array; else None), for a check that need not
    read the device. ``device_put``, not ``jnp.asarray``, which compiles a small program per shape; a weak
    tracer is converted in the trace. ``minimize``'s ``x0`` and ``Solver.init``'s."""
    host = None if isinstance(leaf, jax.Array) else np.asarray(leaf, dtype=dtype)
    arr = leaf if host is None else jax.device_put(host)
    if getattr(arr, "weak_type", False):
        if isinstance(arr, jax.core.Tracer):
            arr = jax.lax.convert_element_type(arr, arr.dtype)
        else:
            host = np.asarray(arr)
            arr = jax.device_put(host)
    return arr, host


def leaf_path(path: Any) -> str:
    """A leaf's key path as text (``jax.tree_util.keystr``); ``"(root)"`` for a bare leaf's empty path."""
    return jax.tree_util.keystr(path) or "(root)"


def leaf_path_at(tree: Any, i: int) -> str:
    """The path of ``tree``'s ``i``-th leaf as text (:func:`leaf_path`), for an error message."""
    return leaf_path(jax.tree_util.tree_flatten_with_path(tree)[0][i][0])


def on_several_devices(leaf: Any) -> bool:
    """Whether ``leaf`` is a ``jax.Array`` living on more than one device (sharded or replicated)."""
    return isinstance(leaf, jax.Array) and len(leaf.sharding.device_set) > 1


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds no tracer, so host-side value checks may run."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves(x))


class Static:
    """Wrap a non-array object (a closure, say) so it rides in a pytree's static part.

    Two ``Static`` wrappers are equal when their objects are, so a jitted
    function sees the same compiled trace for the same object; a closure is
    compared by its code and the values it closes over
    (:func:`jaxgd._closure_key.key`): an optax schedule built anew with the
    same numbers is equal to the first, and re-uses its compiled program (a
    program traced from a closure bakes in those values, so equal code and
    equal values trace the same program).
    """

    __slots__ = ("value", "key")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.key = _closure_key.key(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Static) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Static({self.value!r})"


# The wrapper itself is the node's static data (it is immutable): the tree structure then compares
# and hashes it by its key, and unflattening hands back the same wrapper (no key made again).
jax.tree_util.register_pytree_node(Static, lambda s: ((), s), lambda s, _: s)


def _fields_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """``obj -> tuple(getattr(obj, n) for n in names)``, done by ``operator.attrgetter``."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        get = operator.attrgetter(names[0])
        return lambda obj: (get(obj),)
    return lambda obj: ()


def pytree_class(data: tuple[str, ...], meta: tuple[str, ...]) -> Callable[[type], type]:
    """Register a class as a pytree: ``data`` attributes are leaves, ``meta`` static.

    Unflattening bypasses ``__init__`` (JAX may unflatten with placeholder
    leaves), so constructors are free to validate their arguments.
    """

    def register(cls: type) -> type:
        # operator.attrgetter reads the fields in C: jax calls flatten on every
        # jitted call that takes the object (a Solver: three objects, ~3 us
        # of Python a call with a generator per tuple, benchmarks E).
        get_data, get_meta = _fields_getter(data), _fields_getter(meta)

        def flatten(obj: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
            return get_data(obj), get_meta(obj)

        hook = getattr(cls, "_unflattened", None)

        def unflatten(aux: tuple[Any, ...], children: tuple[Any, ...]) -> Any:
            obj = object.__new__(cls)
            for n, v in zip(meta, aux):
                object.__setattr__(obj, n, v)
            for n, v in zip(data, children):
                object.__setattr__(obj, n, v)
            if hook is not None:
                hook(obj)
            return obj

        jax.tree_util.register_pytree_node(cls, flatten, unflatten)
        cls._tree_fields = (*data, *meta)  # (by name: a checkpoint records a step-size rule's settings with them)
        return cls

    return register


def set_fields(obj: Any, **values: Any) -> None:
    """Set a pytree object's attributes from its constructor's checked values
    (through ``object.__setattr__``, as :func:`pytree_class`'s unflatten does)."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


def repr_from_init(cls: type) -> type:
    """Class decorator: ``repr`` is ``Name(a=..., b=...)`` over ``__init__``'s arguments, in order.

    The name and the arguments are read once, from the decorated class, so
    a subclass prints as its parent did; each argument is read back as the
    attribute of the same name.
    """
    names = tuple(inspect.signature(cls.__init__).parameters)[1:]
    prefix = cls.__name__

    def __repr__(self: Any) -> str:
        return f"{prefix}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"

    __repr__.__qualname__ = f"{cls.__qualname__}.__repr__"
    cls.__repr__ = __repr__
    return cls


class FunRef:
    """A user function as pytree metadata, held weakly.

    Tree definitions end up in jax's global tracing caches; a function held
    there strongly (with every array it captured) would never be freed. Two
    ``FunRef`` are equal when they refer to the same live object. An object
    that cannot be weakly referenced is held strongly.
    """

    __slots__ = ("_ref", "_strong", "_hash", "__weakref__")

    def __init__(self, fn: Any) -> None:
        try:
            self._ref, self._strong = weakref.ref(fn), None
        except TypeError:
            self._ref, self._strong = None, fn
        self._hash = hash(("FunRef", id(fn)))

    def __call__(self) -> Any:
        return self._strong if self._ref is None else self._ref()

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, FunRef):
            return NotImplemented
        fn = self()
        return fn is not None and fn is other()

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"FunRef({self()!r})"


class bound_once:
    """A method whose bound object is made once per instance and then re-used.

    ``jax.jit`` finds its compiled code through the function object (held by
    a weak reference); a plain bound method is a new object at every
    attribute access, so ``jax.jit(obj.method)`` in a loop would trace and
    compile again each time. The bound method is stored in the instance's
    ``__dict__`` (which shadows this non-data descriptor afterwards).
    """

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__wrapped__ = fn

    def __set_name__(self, owner: type, name: str) -> None:
        self.__name__ = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self.fn
        bound = types.MethodType(self.fn, obj)
        obj.__dict__[self.__name__] = bound
        return bound


def as_float_if_number(x: Any) -> Any:
    """A concrete Python/NumPy real number becomes a Python float (a weakly typed
    jit argument, so a new value never retraces); arrays and tracers pass through."""
    if isinstance(x, (bool, np.bool_)):
        return x
    if isinstance(x, (int, float, np.integer, np.floating)):
        return float(x)
    return x
