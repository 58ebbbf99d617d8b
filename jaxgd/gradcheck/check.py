"""check_grad: ``jax.grad`` vs a hand-written NumPy gradient vs float64 finite differences.

Three gradients of the same loss are compared leaf by leaf:

* ``jax``: ``jax.grad(fun)(x, *args)``, in ``x``'s own dtype (what the user gets);
* ``ref``: ``reference(x, *args)``, a hand-written gradient, called with float64
  NumPy copies of ``x`` and of the floating-point ``args``;
* ``fd``: central finite differences of ``fun`` evaluated in float64 (inside
  ``jax.enable_x64``), whatever dtype the user works in.

The verdict is per leaf and per pair; the report is a :class:`GradCheck`.
"""


from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .finite_diff import DEFAULT_EPS as DEFAULT_EPS
from .finite_diff import DEFAULT_TOLERANCES as DEFAULT_TOLERANCES
from .finite_diff import FD_CHUNK as FD_CHUNK
from .finite_diff import FD_NOISE_ULPS as FD_NOISE_ULPS
from .finite_diff import _eval_batch, fd_coordinates, fd_directions
from .inputs import _default_tol, _to_float64, _validate_reference, _x64, check_inputs
from ..core import loss_check as _loss_check
from ..interop import models as _models
from .inputs import MSG_FUN_NOT_CALLABLE as MSG_FUN_NOT_CALLABLE
from .inputs import MSG_REF_NOT_CALLABLE as MSG_REF_NOT_CALLABLE
from .inputs import MSG_ARGS_NOT_TUPLE as MSG_ARGS_NOT_TUPLE
from .inputs import MSG_X_EMPTY as MSG_X_EMPTY
from .inputs import MSG_X_NOT_FLOAT as MSG_X_NOT_FLOAT
from .inputs import MSG_X_BFLOAT16 as MSG_X_BFLOAT16
from .inputs import MSG_X_TRACER as MSG_X_TRACER
from .inputs import MSG_FUN_NOT_SCALAR as MSG_FUN_NOT_SCALAR
from .inputs import MSG_REF_STRUCTURE as MSG_REF_STRUCTURE
from .inputs import MSG_REF_SHAPE as MSG_REF_SHAPE
from .inputs import MSG_REF_NOT_NUMERIC as MSG_REF_NOT_NUMERIC
from .inputs import MSG_BAD_TOL as MSG_BAD_TOL
from .inputs import MSG_BAD_EPS as MSG_BAD_EPS
from .inputs import MSG_BAD_DIRECTIONS as MSG_BAD_DIRECTIONS
from .inputs import MSG_BAD_SEED as MSG_BAD_SEED
from .inputs import MSG_SEED_TRACER as MSG_SEED_TRACER
from .inputs import MSG_BAD_PRECISION as MSG_BAD_PRECISION
from .inputs import MATMUL_PRECISIONS as MATMUL_PRECISIONS
from .report import ROW_HEADERS as ROW_HEADERS
from .report import GradCheck as GradCheck
from .report import LeafCheck as LeafCheck
from .report import format_table as format_table
from .report import row_cells as row_cells

__all__ = ["GradCheck", "LeafCheck", "check_grad", "format_table"]

PyTree = Any

#: the largest share of a pair's magnitude max(|a|, |b|) that rounding noise (finite differences', or
#: ``jax.grad``'s own in float32 and narrower) may excuse
NOISE_SHARE = 0.5

#: pairs with ``jax`` excuse this many times ``jax.grad``'s measured rounding (its difference from the same
#: ``jax.grad`` in float64): the float64 copies of float32 inputs are the inputs rounded, not the exact ones
ROUNDING_FACTOR = 2.0


def _compare(
    path: str,
    name: str,
    a: np.ndarray,
    b: np.ndarray,
    rtol: float,
    atol: float,
    noise: np.ndarray | float,
    directional: bool,
) -> LeafCheck:
    """Compare two same-shape float64 arrays coordinate-wise into one row."""
    if a.size == 0:
        return LeafCheck(path, name, 0.0, 0.0, (), (0.0, 0.0), 0.0, directional, True)
    diff = np.abs(a - b)
    scale = np.maximum(np.abs(a), np.abs(b))
    # the rounding noise excuses at most NOISE_SHARE of the values themselves: where it is larger (a loss
    # with a large constant part, 1e10 + |x|^2 / 2) a gradient of 0 against differences of 3 passed
    capped = noise > NOISE_SHARE * scale  # (rounding the values cannot rise above: nothing tested there)
    tol = atol + rtol * scale + np.minimum(noise, NOISE_SHARE * scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(diff == 0, 0.0, diff / scale)
        ratio = np.where(diff == 0, 0.0, diff / tol)
    # NaN/inf anywhere fails; it is also what the reader should see as "worst".
    bad = ~np.isfinite(a) | ~np.isfinite(b)
    ratio = np.where(bad, np.inf, ratio)
    worst = np.unravel_index(int(np.argmax(ratio)), a.shape)
    score = float(ratio[worst])
    return LeafCheck(
        path,
        name,
        float(np.max(np.where(bad, np.inf, diff))),
        float(np.max(np.where(bad, np.inf, rel))),
        tuple(int(i) for i in worst),
        (float(a[worst]), float(b[worst])),
        score,
        directional,
        score <= 1.0,
        bool(np.broadcast_to(capped, a.shape)[worst]) and score > 1.0,
    )


@functools.partial(jax.jit, static_argnums=0)
def _jit_value_and_grad(fun: Callable[..., jax.Array], x: PyTree, *args: Any) -> tuple:
    return jax.value_and_grad(fun)(x, *args)


FUN_NOT_FINITE = (
    "fun(x) is {value}: check_grad compares derivatives at x, where the loss must be finite (a log or sqrt of a "
    "negative number, 0/0, an overflow there); move x into the loss's domain"
)


def check_grad(
    fun: Callable[..., Any],
    x: PyTree,
    args: tuple[Any, ...] | list[Any] = (),
    *,
    reference: Callable[..., PyTree] | None = None,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    directions: int | None = None,
    seed: int = 0,
    precision: str | None = "highest",
) -> GradCheck:
    """Check ``jax.grad(fun)`` against a hand-written gradient and float64 finite differences.

    For every leaf of ``x`` it compares, coordinate by coordinate, the pairs
    ``jax~ref`` (``jax.grad(fun)(x, *args)`` vs ``reference(x, *args)``),
    ``jax~fd`` and ``ref~fd``, where ``fd`` is the central difference

    .. math::

        \\mathrm{fd}_i = \\frac{f(x + h_i e_i) - f(x - h_i e_i)}{2 h_i}, \\qquad
        h_i = \\varepsilon \\max(1, |x_i|),

    evaluated in float64 (inside ``jax.enable_x64``) even when ``x`` is float32,
    with :math:`\\varepsilon` = ``eps`` (default :math:`\\sqrt[3]{\\epsilon_{64}}
    \\approx 6.1\\times10^{-6}`, which balances the :math:`O(h^2)` truncation error
    against the :math:`O(\\epsilon/h)` rounding error). A ``fun`` that computes in float32
    whatever it is given (a cast inside, a Flax layer's ``dtype=jnp.float32``) returns float32 there:
    its differences then take float32's step :math:`\\sqrt[3]{\\epsilon_{32}}`, noise and ``ref~fd``
    tolerances (``GradCheck.fd_dtype``), rather than a float64 step below its resolution. With ``directions=k`` it
    instead draws, per leaf, ``k`` random unit vectors :math:`v` (seeded by
    ``seed``) and compares :math:`v^\\top g` with
    :math:`(f(x + h v) - f(x - h v)) / 2h`, :math:`h = \\varepsilon \\max(1, \\max_i |x_i|)`:
    ``2k`` evaluations per leaf instead of two per coordinate, for large leaves.

    A pair :math:`(a, b)` passes where
    :math:`|a - b| \\le \\mathrm{atol} + \\mathrm{rtol}\\max(|a|, |b|) + \\nu`,
    with :math:`\\nu = 0` for ``jax~ref`` and, against finite differences, the
    rounding noise :math:`\\nu_i` = ``FD_NOISE_ULPS`` (4) :math:`\\cdot\\,\\epsilon_{64}
    \\max|f(x \\pm h_i e_i)| / h_i` (100 ulps of its dtype for a ``fun`` that computes in float32 or
    narrower), at most half of :math:`\\max(|a|, |b|)`: where rounding
    dominates the differences (a loss with a large constant part) a pair that differs by as
    much as its own size fails (subtract the constant, or raise ``eps``) rather than passing
    a gradient the differences cannot test; the table marks such a failure ``FAIL*``
    (``LeafCheck.unresolved``: near a stationary point of a loss with large terms it tests nothing,
    check at a point away from the minimum). For a leaf narrower than float64 the pairs with
    ``jax`` also excuse ``jax.grad``'s own rounding, measured: ``ROUNDING_FACTOR`` (2) times
    :math:`|g - g_{64}|`, with :math:`g_{64}` the same ``jax.grad(fun)`` at float64 copies of ``x``
    and ``args`` (a float32 sum of squares whose residuals cancel terms of 1e3 has a gradient
    0.5% off the exact one), within the same cap of half :math:`\\max(|a|, |b|)`; a formula that is
    wrong in float64 too still fails. Defaults for ``rtol``/``atol`` follow the
    dtype ``jax.grad`` ran in, leaf by leaf (float64 ``1e-6``/``1e-9``,
    float32 ``1e-3``/``1e-5``; the report's ``rtol``/``atol`` are the loosest
    over the leaves); ``ref~fd`` is all float64 and uses the float64
    defaults unless ``rtol``/``atol`` are given, in which case they apply to all pairs.

    All input errors are raised on the host before anything is compiled (the
    reference is called, and ``fun`` traced by ``jax.eval_shape``, first).
    ``fun`` must be jit- and vmap-compatible: differences are evaluated in
    fixed-size vmapped batches, compiled once per ``fun`` and input shapes.
    The float32 defaults match ``torch.autograd.gradcheck``'s (``rtol=1e-3``,
    ``atol=1e-5``). ``jax.grad`` runs under ``jax.default_matmul_precision(precision)``:
    by default "highest", because on GPUs a float32 matrix product otherwise
    runs in TF32 (10 mantissa bits), whose ~1e-3 relative error is rounding,
    not a wrong formula (seen on an H200: softmax/MLP gradients off by 4e-3).
    ``precision=None`` checks the platform's default instead.

    Reference: J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed.,
    Springer 2006, §8.1 (finite-difference derivative approximations).

    Args:
        fun: the JAX loss, ``fun(x, *args) -> scalar``.
        x: the point, a pytree of real floating-point arrays; or a Flax NNX or
            Equinox model, whose trained arrays are checked (``nnx.Param`` leaves,
            an Equinox module's float arrays; batch statistics, RNG counters and
            integer fields held fixed, as ``jaxgd.minimize`` and ``jaxgd.fit``
            train it), with ``reference(model, *args)`` returning their gradient
            (as those arrays, or as a model of the same structure).
        args: extra arguments to ``fun`` (and ``reference``). The differences are taken
            with JAX's float64 mode on: a ``fun`` that draws random numbers from a key in
            ``args`` without a ``dtype`` would draw other numbers there (float64 ones), and is
            refused (``ValueError``); pass ``dtype=`` to ``jax.random``.
        reference: optional hand-written gradient ``reference(x, *args)`` returning
            a pytree of the structure and shapes of ``x``; it receives float64
            NumPy copies of ``x`` and of the floating-point leaves of ``args``.
        eps: finite-difference step scale (default ``eps64 ** (1/3)``, about ``6.1e-6``).
        rtol: relative tolerance (default by dtype, see above).
        atol: absolute tolerance (default by dtype, see above).
        directions: ``None`` for every coordinate, or ``k`` random directions per leaf.
        seed: seed of the NumPy generator drawing the directions, a non-negative
            integer (checked even when ``directions`` is None).
        precision: the matrix-product precision ``jax.grad`` runs at: a string
            ``jax.default_matmul_precision`` accepts ("default", "high", "highest", "bfloat16", "tensorfloat32", "float32",
            or a ``jax.lax.DotAlgorithmPreset`` name such as "F32_F32_F32"), or
            None for the platform default.

    Returns:
        A :class:`GradCheck`; ``bool(report)`` is the verdict and ``str(report)`` a table.

    Examples:
        >>> import jax.numpy as jnp
        >>> f = lambda x: (x @ x - 10.0) ** 2
        >>> x = jnp.array([1.0, 2.0])
        >>> bool(check_grad(f, x, reference=lambda x: 4 * x * (x @ x - 10)))
        True
        >>> report = check_grad(f, x, reference=lambda x: 2 * (x @ x) * x / x)
        >>> [(row.comparison, row.passed) for row in report.rows]
        [('jax~ref', False), ('jax~fd', True), ('ref~fd', False)]

    Raises:
        TypeError: ``fun`` or ``reference`` not callable, ``args`` not a tuple (or list),
            a non-floating, bfloat16 or traced leaf in ``x``, a traced ``seed``, a
            ``precision`` that is neither None nor a string.
        ValueError: bad ``eps``/``rtol``/``atol``/``directions``; a ``fun`` drawing random
            numbers without a ``dtype`` from a key in ``args`` (float64 mode draws others); a ``seed`` that
            is not a non-negative integer (a bool, a float, a negative number, an
            array that is not an integer scalar); a ``precision`` string that
            ``jax.default_matmul_precision`` refuses; an empty ``x`` or a leaf of size 0, ``fun`` not
            returning a scalar, or a reference gradient of the wrong structure or
            shape (the message names the leaf and both shapes); an ``x`` leaf with NaN or Inf, an ``eps``
            outside [2.2e-16, 1), more ``directions`` than the largest leaf has entries (and over 1,024); ``fun(x)`` not
            finite (after the gradient's compile).
    """
    parts = _models.split(x) if callable(fun) and (reference is None or callable(reference)) else None
    if parts is not None:  # a Flax NNX / Equinox model: its trained arrays, as minimize and fit train them
        model_args = (parts.rest, *(args if isinstance(args, (tuple, list)) else (args,)))
        return check_grad(parts.loss(fun), parts.params, model_args, reference=_model_reference(reference, parts),
                          eps=eps, rtol=rtol, atol=atol, directions=directions, seed=seed, precision=precision)
    fun, x, args, paths, treedef = check_inputs(fun, x, args, reference, eps, rtol, atol, directions, seed, precision)
    _loss_check.check_loss(fun, x, tuple(args), False)  # (a loop reverse mode cannot pass: named, nothing compiled)
    _check_draws(fun, x, tuple(args))  # (float64 mode drawing other numbers: named, nothing compiled)
    seed = int(seed)
    x64_tree, args64 = _to_float64(x), _to_float64(args)
    ref = None if reference is None else _validate_reference(reference(x64_tree, *args64), x)
    dtypes = [leaf.dtype for leaf in jax.tree_util.tree_leaves(x)]
    # Each leaf at its own dtype's defaults (a float32 leaf beside a float16 one took float16's, 30x looser);
    # the report's rtol/atol are the loosest of them.
    per_leaf = [(d[0] if rtol is None else float(rtol), d[1] if atol is None else float(atol))
                for d in map(_default_tol, dtypes)]
    tol_jax = (max(t[0] for t in per_leaf), max(t[1] for t in per_leaf))
    # a fun that computes in float32 whatever it is given (a cast, a Flax layer's dtype=float32): its
    # differences are float32's, at float32's step, noise and tolerances (float64's gave err/tol 990)
    fd_dtype = _fd_dtype(fun, x64_tree, args64)
    tol_ref = tuple(DEFAULT_TOLERANCES[fd_dtype.name][i] if t is None else float(t) for i, t in enumerate((rtol, atol)))
    if eps is None:
        eps = DEFAULT_EPS if fd_dtype == np.float64 else float(np.finfo(fd_dtype).eps) ** (1 / 3)
    eps = float(eps)

    with (jax.default_matmul_precision(precision) if precision is not None else contextlib.nullcontext()):
        value, grad = _jit_value_and_grad(fun, x, *args)
        if not np.isfinite(np.asarray(value)):  # (the differences read NaN: a FAIL that blamed the gradient)
            raise ValueError(FUN_NOT_FINITE.format(value=float(value)))
        g_jax = [np.asarray(g, dtype=np.float64) for g in jax.tree_util.tree_leaves(grad)]
        rounding = _grad_rounding(fun, x64_tree, args64, g_jax, dtypes)
    leaves64 = jax.tree_util.tree_leaves(x64_tree)
    z = np.concatenate([leaf.ravel() for leaf in leaves64])
    offsets = np.cumsum([0] + [leaf.size for leaf in leaves64])
    f_eps = float(np.finfo(fd_dtype).eps)
    fd = _finite_differences(fun, treedef, leaves64, args64, z, eps, offsets, directions, seed, f_eps)
    rows = _compare_leaves(paths, offsets, g_jax, ref, fd, per_leaf, tol_ref, directions, rounding)
    dtype_names = sorted({np.dtype(dt).name for dt in dtypes})
    return GradCheck(tuple(rows), "/".join(dtype_names), eps, *tol_jax, *tol_ref, directions, len(set(per_leaf)) > 1,
                     fd_dtype.name)


def _model_reference(reference: Callable[..., PyTree] | None, parts: Any) -> Callable[..., PyTree] | None:
    """A model's ``reference(model, *args)`` as ``reference(params, rest, *args)``: the model rebuilt from
    its trained arrays, and a gradient handed back as a model (an Equinox module) as its trained arrays."""
    if reference is None:
        return None

    def on_params(params: PyTree, rest: PyTree, *args: Any) -> PyTree:
        grad = reference(_models.rebuild(parts.kind, parts.static, params, rest), *args)
        as_model = _models.split(grad)
        return grad if as_model is None else as_model.params

    return on_params


def _on_device(args64: tuple) -> tuple:
    """The float64 NumPy copies of ``args`` as JAX arrays (call inside ``_x64()``; other leaves as they are)."""
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a) if isinstance(a, np.ndarray) else a, args64)


RANDOM_WITHOUT_DTYPE = (
    "check_grad cannot check this fun: it draws random numbers from a key in args in a dtype that JAX's float64 "
    "mode widens (jax.random.normal(key, shape) without a dtype, or with x's dtype, which that mode makes float64; "
    "randint's default int), and the finite differences, taken in that mode, would draw other numbers there: "
    "another function, whose differences say nothing of this gradient. Draw in a fixed dtype: "
    "dtype=jnp.float32 (or jnp.int32 for randint); jax.random.bernoulli(key, p, shape) as "
    "jax.random.uniform(key, shape, dtype=jnp.float32) < p"
)


def _random_bits(jaxpr: Any) -> list:
    """The bit widths of the random draws in ``jaxpr``, sorted."""
    return sorted(eqn.params["bit_width"] for eqn in _loss_check.equations(jaxpr, "random_bits"))


def _check_draws(fun: Callable[..., Any], x: PyTree, args: tuple) -> None:
    """Refuse a ``fun`` that draws random numbers of other widths in float64 mode (where the differences are
    taken) than at ``x`` and ``args`` themselves: ``jax.random`` without a ``dtype``, ``x`` narrower than
    float64. Two ``jax.make_jaxpr`` traces (float64 copies as shapes: nothing moves or compiles).

    Raises:
      ValueError: :data:`RANDOM_WITHOUT_DTYPE`.
    """
    drawn = _random_bits(jax.make_jaxpr(fun)(x, *args).jaxpr)
    if not drawn:
        return

    def wide(v: Any) -> Any:
        floating = hasattr(v, "shape") and jnp.issubdtype(getattr(v, "dtype", None), jnp.floating)
        return jax.ShapeDtypeStruct(np.shape(v), np.float64) if floating else v

    with _x64():
        if _random_bits(jax.make_jaxpr(fun)(*jax.tree_util.tree_map(wide, (x, *args))).jaxpr) != drawn:
            raise ValueError(RANDOM_WITHOUT_DTYPE)


def _fd_dtype(fun: Callable[..., Any], x64: PyTree, args64: tuple) -> np.dtype:
    """The dtype ``fun`` returns at float64 copies of ``x`` and ``args`` (``jax.eval_shape`` under x64):
    float64, or a narrower float where ``fun`` computes in it whatever it is given."""
    with _x64():
        jargs = _on_device(args64)
        out = jax.eval_shape(fun, jax.tree_util.tree_map(jnp.asarray, x64), *jargs)
    dtype = np.dtype(out.dtype)
    # (jnp.issubdtype: bfloat16 is NumPy kind "V", and was differenced in float64, below its resolution)
    narrower = jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 8 and dtype.name in DEFAULT_TOLERANCES
    return dtype if narrower else np.dtype(np.float64)


def _grad_rounding(fun: Callable[..., Any], x64: PyTree, args64: tuple, g_jax: list[np.ndarray],
                   dtypes: list) -> list[np.ndarray] | None:
    """Per leaf, ``jax.grad``'s own rounding where ``x`` is narrower than float64: ``|g - g64|``, with
    ``g64`` the same ``jax.grad(fun)`` at float64 copies of ``x`` and ``args`` (the float32 gradient of a
    sum of squares whose residuals cancel terms of 1e3 is 0.5% off the exact one: rounding, not a wrong
    formula). None where every leaf is float64, or where ``fun`` has no float64 gradient."""
    if all(np.dtype(d) == np.float64 for d in dtypes):
        return None
    try:
        with _x64():
            jargs = _on_device(args64)
            x64_arrays = jax.tree_util.tree_map(jnp.asarray, x64)
            g64 = jax.tree_util.tree_leaves(_jit_value_and_grad(fun, x64_arrays, *jargs)[1])
            with np.errstate(invalid="ignore", over="ignore"):  # (inf - inf: a NaN allowance, no allowance)
                return [np.abs(g - np.asarray(h, np.float64)) for g, h in zip(g_jax, g64)]
    except Exception:  # (a loss only float32 can trace: no allowance, the check as it was)
        return None


def _finite_differences(
    fun: Callable[..., Any], treedef: Any, leaves64: list, args64: tuple, z: np.ndarray, eps: float,
    offsets: np.ndarray, directions: int | None, seed: int, f_eps: float,
) -> tuple:
    """``(fd, noise, V)``: float64 central differences (per coordinate, or along
    ``directions`` random unit vectors per leaf, ``V``) and their rounding noise (``f_eps``: the
    epsilon of ``fun``'s values)."""
    shapes = tuple(tuple(leaf.shape) for leaf in leaves64)
    with _x64():
        jargs = _on_device(args64)

        def f_batch(points: np.ndarray) -> np.ndarray:
            return np.asarray(_eval_batch(fun, treedef, shapes, jnp.asarray(points), *jargs), dtype=np.float64)

        if directions is None:
            return (*fd_coordinates(f_batch, z, eps, f_eps), None)
        return fd_directions(f_batch, z, eps, offsets, directions, np.random.default_rng(seed), f_eps)


def _compare_leaves(
    paths: list[str], offsets: np.ndarray, g_jax: list[np.ndarray], ref: list[np.ndarray] | None,
    fd: tuple, tol_jax: list[tuple[float, float]], tol_ref: tuple[float, float], directions: int | None,
    rounding: list[np.ndarray] | None = None,
) -> list[LeafCheck]:
    """The rows ``jax~ref``, ``jax~fd`` and ``ref~fd`` of every leaf (``tol_jax``: each leaf's (rtol, atol);
    ``rounding``: each leaf's measured rounding of ``jax.grad``, :func:`_grad_rounding`, which the pairs
    with ``jax`` excuse besides)."""
    fd_all, noise, V = fd
    rows: list[LeafCheck] = []
    for i, path in enumerate(paths):
        lo, hi = offsets[i], offsets[i + 1]
        shape = g_jax[i].shape
        mu = 0.0 if rounding is None else ROUNDING_FACTOR * rounding[i]
        if directions is None:
            fd_i, nu_i = fd_all[lo:hi].reshape(shape), noise[lo:hi].reshape(shape)
            gj, gr = g_jax[i], None if ref is None else ref[i]
        else:
            fd_i, nu_i = fd_all[i], noise[i]
            gj, gr = V[i] @ g_jax[i].ravel(), None if ref is None else V[i] @ ref[i].ravel()
            mu = mu if rounding is None else np.abs(V[i]) @ mu.ravel()
        if ref is not None:
            mu_ref = 0.0 if rounding is None else ROUNDING_FACTOR * rounding[i]
            rows.append(_compare(path, "jax~ref", g_jax[i], ref[i], *tol_jax[i], mu_ref, False))
        rows.append(_compare(path, "jax~fd", gj, fd_i, *tol_jax[i], nu_i + mu, directions is not None))
        if gr is not None:
            rows.append(_compare(path, "ref~fd", gr, fd_i, *tol_ref, nu_i, directions is not None))
    return rows
