"""Host-side checks of :func:`jaxgd.check_grad`'s arguments, before anything is compiled,
and the float64 copies the reference and the finite differences work on."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate
from .finite_diff import DEFAULT_TOLERANCES

PyTree = Any

MSG_FUN_NOT_CALLABLE = "fun must be callable, fun(params, *args) -> scalar; got {type_name}"
MSG_REF_NOT_CALLABLE = "reference must be callable, reference(x, *args) -> gradient pytree, or None; got {type_name}"
MSG_ARGS_NOT_TUPLE = "args must be a tuple (or list) of extra arguments to fun; got {type_name}"
MSG_X_EMPTY = "x has no array leaves: nothing to check"
MSG_X_EMPTY_LEAF = "x leaf {path} has shape {shape}, no entries: nothing to check (leave it out of x)"
MSG_X_NOT_FINITE = "x{where} contains NaN or Inf: check_grad differentiates at x, where the loss must be finite"
MSG_EPS_RANGE = (
    "eps={value!r} must be a relative step between float64's eps (2.2e-16) and 1: the differences step by "
    "eps * max(1, |x|) in float64, where a smaller step leaves x unchanged and a larger one measures the loss "
    "far from x (the default, about 6.1e-6, balances truncation and rounding)"
)
MSG_TOO_MANY_DIRECTIONS = (
    "directions={value!r} is more than check_grad takes here ({most}: the largest leaf's entries, at least "
    "{floor}); each direction costs two evaluations of fun per leaf, and directions=None differences every "
    "coordinate, exact coverage"
)
MIN_DIRECTIONS_CAP = 1024  # directions up to max(this, the largest leaf's size)
MSG_X_NOT_FLOAT = "every leaf of x must be a real floating-point array; leaf {path} has dtype {dtype}"
HINT_MODEL = (
    " (a model's non-array field, as an Equinox module's activation: check its float arrays, params, rest = "
    "eqx.partition(model, eqx.is_inexact_array), with a fun that calls eqx.combine(params, rest))"
)
MSG_X_BFLOAT16 = (
    "check_grad does not take bfloat16 x (its 8-bit significand cannot hold a finite-difference step): leaf {path}; "
    "check the gradient at x cast to float32"
)
MSG_X_TRACER = "check_grad runs on the host and needs concrete x; leaf {path} is a tracer (call it outside jit/vmap)"
MSG_FUN_NOT_SCALAR = "fun must return a real scalar; it returned shape {shape} and dtype {dtype}"
HINT_AUX = " (a fun returning (loss, aux), as minimize's has_aux=True takes: check lambda x, *args: fun(x, *args)[0])"
MSG_REF_STRUCTURE = (
    "reference(x, *args) returned a pytree whose structure differs from x: "
    "missing leaves {missing}, unexpected leaves {extra}; expected {expected}, got {got}"
)
MSG_REF_SHAPE = "reference gradient for leaf {path} has shape {got}; expected {expected} (the shape of that leaf of x)"
MSG_REF_NOT_NUMERIC = "reference gradient for leaf {path} is not a real numeric array: {value!r}"
MSG_BAD_TOL = "{name}={value!r} must be a finite number >= 0"
MSG_BAD_EPS = "eps={value!r} must be a finite number > 0"
MSG_BAD_DIRECTIONS = "directions={value!r} must be None or a positive integer"
MSG_BAD_SEED = "seed={value!r} must be a non-negative integer (the seed of the NumPy generator drawing the directions)"
MSG_SEED_TRACER = "check_grad runs on the host and needs a concrete seed; seed is a tracer (call it outside jit/vmap)"
# What jax.default_matmul_precision accepts besides the names of jax.lax.DotAlgorithmPreset (jax 0.10, 0.11).
MATMUL_PRECISIONS = ("default", "high", "highest", "bfloat16", "tensorfloat32", "float32")
MSG_BAD_PRECISION = (
    "precision={value!r} must be None (the platform's default) or a matrix-product precision that "
    "jax.default_matmul_precision accepts: one of {valid}, or the name of a jax.lax.DotAlgorithmPreset "
    "such as 'F32_F32_F32'"
)


def _default_tol(dtype: np.dtype) -> tuple[float, float]:
    """The default (rtol, atol) of a leaf of ``dtype`` (an unlisted dtype: float16's)."""
    return DEFAULT_TOLERANCES.get(np.dtype(dtype).name, DEFAULT_TOLERANCES["float16"])


def _check_number(name: str, value: float | None, *, positive: bool = False) -> None:
    """``None`` or a finite real number, > 0 for ``eps``, >= 0 for the tolerances (``jaxgd._validate``)."""
    if value is not None:
        if positive:
            _validate.positive(name, value, MSG_BAD_EPS)
        else:
            _validate.nonneg(name, value, MSG_BAD_TOL)


def _check_seed(seed: Any) -> int:
    """A non-negative integer: a Python/NumPy integer or an integer 0-d array (``jaxgd._validate.count``)."""
    if _validate.is_tracer(seed):
        raise TypeError(MSG_SEED_TRACER)
    return _validate.count("seed", seed, 0, MSG_BAD_SEED)


def _check_precision(precision: Any) -> None:
    """``None`` or a string ``jax.default_matmul_precision`` accepts (asked of the installed JAX:
    entering its context only sets a flag, nothing is traced or compiled)."""
    if precision is None:
        return
    message = MSG_BAD_PRECISION.format(value=precision, valid=", ".join(map(repr, MATMUL_PRECISIONS)))
    if not isinstance(precision, str):
        raise TypeError(message)
    try:
        with jax.default_matmul_precision(precision):
            pass
    except ValueError:
        raise ValueError(message) from None


def _leaf_name(path: Any) -> str:
    return jax.tree_util.keystr(path) or "x"


def _validate_reference(ref: PyTree, x: PyTree) -> list[np.ndarray]:
    """The reference gradient's leaves as float64 arrays, or a ValueError naming the leaf."""
    x_paths = [_leaf_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(x)[0]]
    got, got_def = jax.tree_util.tree_flatten_with_path(ref)
    want_def = jax.tree_util.tree_structure(x)
    if got_def != want_def:
        got_paths = [_leaf_name(p) for p, _ in got]
        raise ValueError(
            MSG_REF_STRUCTURE.format(
                missing=[p for p in x_paths if p not in got_paths],
                extra=[p for p in got_paths if p not in x_paths],
                expected=want_def,
                got=got_def,
            )
        )
    out = []
    for path, (_, leaf), x_leaf in zip(x_paths, got, jax.tree_util.tree_leaves(x)):
        try:
            if np.iscomplexobj(leaf):  # (the cast below drops the imaginary part, with only a warning)
                raise TypeError
            arr = np.asarray(leaf, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(MSG_REF_NOT_NUMERIC.format(path=path, value=leaf)) from None
        if arr.shape != np.shape(x_leaf):
            raise ValueError(MSG_REF_SHAPE.format(path=path, got=arr.shape, expected=np.shape(x_leaf)))
        out.append(arr)
    return out


def _to_float64(tree: PyTree) -> PyTree:
    """Array leaves as NumPy arrays, floating ones in float64; other leaves untouched."""

    def cast(a: Any) -> Any:
        if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            return a  # (a typed PRNG key has no NumPy form: it stays a JAX array, as any non-float leaf)
        if isinstance(a, (jax.Array, np.ndarray, np.generic, float)):
            a = np.asarray(a)
            return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a
        return a

    return jax.tree_util.tree_map(cast, tree)


# JAX's error where a trace it cached with x64 off is re-used inside jax.enable_x64 (a while_loop's carry
# traced in float32, its body now float64: jax.experimental.ode.odeint after a float32 call)
_STALE_TRACE = "carry input and carry output must have equal types"
X64_RETRACE = (
    "check_grad: fun failed when traced again in float64 (check_grad takes its finite differences in float64, "
    "inside jax.enable_x64): a function fun calls re-used a trace JAX cached in float32, x64 being off (JAX's "
    "own caching; jax.experimental.ode.odeint does so once it has run in float32). Turn x64 on for the whole "
    "program (jax.config.update('jax_enable_x64', True), before anything runs): check_grad then takes float32 x "
    "as it is and differences float64 copies. (Or a loop in fun fixes its carry's dtype to float32, which float64 "
    "inputs then change: give the carry the inputs' dtype.)"
)


@contextlib.contextmanager
def _x64() -> Iterator[None]:
    """Temporarily enable JAX's x64 mode (``jax.enable_x64`` on newer JAX, the
    ``jax.experimental`` context manager on older releases); JAX's error from a float32
    trace its caches kept, met inside, is said again as :data:`X64_RETRACE`."""
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # pragma: no cover - only on old JAX
        from jax.experimental import enable_x64 as enable  # type: ignore[attr-defined,no-redef]
        with enable():
            yield
        return
    try:
        with enable(True):
            yield
    except TypeError as err:
        if _STALE_TRACE not in str(err) or jax.config.jax_enable_x64:
            raise
        raise TypeError(X64_RETRACE) from err


def _call(fun: Callable[..., Any], *a: Any) -> Any:
    return fun(*a)


class Inputs(NamedTuple):
    """The checked arguments: ``fun`` hashable, ``x`` as JAX arrays, ``args`` a tuple."""

    fun: Callable[..., Any]
    x: PyTree
    args: tuple[Any, ...]
    paths: list[str]
    treedef: Any


def check_inputs(
    fun: Any, x: PyTree, args: Any, reference: Any, eps: Any, rtol: Any, atol: Any, directions: Any,
    seed: Any = 0, precision: Any = None,
) -> Inputs:
    """Validate every argument of ``check_grad`` on the host (``fun`` traced by ``jax.eval_shape`` only).

    Raises:
      TypeError, ValueError: as listed in :func:`jaxgd.check_grad`.
    """
    if not callable(fun):
        raise TypeError(MSG_FUN_NOT_CALLABLE.format(type_name=type(fun).__name__))
    if reference is not None and not callable(reference):
        raise TypeError(MSG_REF_NOT_CALLABLE.format(type_name=type(reference).__name__))
    if not isinstance(args, (tuple, list)):
        raise TypeError(MSG_ARGS_NOT_TUPLE.format(type_name=type(args).__name__))
    args = tuple(args)
    _check_number("eps", eps, positive=True)
    if eps is not None and not float(np.finfo(np.float64).eps) <= float(eps) < 1.0:
        raise ValueError(MSG_EPS_RANGE.format(value=eps))
    _check_number("rtol", rtol)
    _check_number("atol", atol)
    if directions is not None:
        _validate.count("directions", directions, 1, MSG_BAD_DIRECTIONS)
    _check_seed(seed)  # even without directions: a bad seed is a bug in the call either way
    _check_precision(precision)
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(x)
    if not with_paths:
        raise ValueError(MSG_X_EMPTY)
    paths = [_leaf_name(p) for p, _ in with_paths]
    for path, (_, leaf) in zip(paths, with_paths):
        try:
            dtype = np.asarray(leaf).dtype
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            raise TypeError(MSG_X_TRACER.format(path=path)) from None
        if dtype == jnp.bfloat16:  # (a float to jnp, not to NumPy: said apart)
            raise TypeError(MSG_X_BFLOAT16.format(path=path))
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(MSG_X_NOT_FLOAT.format(path=path, dtype=dtype) + (HINT_MODEL if dtype == object else ""))
        if np.size(leaf) == 0:  # (nothing differenced: a PASS would check nothing)
            raise ValueError(MSG_X_EMPTY_LEAF.format(path=path, shape=np.shape(leaf)))
        if not np.isfinite(np.asarray(leaf)).all():  # (the differences read NaN: a FAIL that blamed the gradient)
            raise ValueError(MSG_X_NOT_FINITE.format(where="" if path == "x" else f" leaf {path}"))
    most = max(MIN_DIRECTIONS_CAP, *(int(np.size(leaf)) for _, leaf in with_paths))
    if directions is not None and directions > most:  # (10**9 directions of a 2-entry x ran for minutes)
        raise ValueError(MSG_TOO_MANY_DIRECTIONS.format(value=directions, most=most, floor=MIN_DIRECTIONS_CAP))
    x = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(leaf) for _, leaf in with_paths])
    out = jax.eval_shape(fun, x, *args)
    if not (hasattr(out, "shape") and out.shape == () and jnp.issubdtype(out.dtype, jnp.floating)):
        hint = HINT_AUX if isinstance(out, (tuple, list)) else ""
        raise ValueError(MSG_FUN_NOT_SCALAR.format(shape=getattr(out, "shape", None),
                                                   dtype=getattr(out, "dtype", type(out).__name__)) + hint)
    try:
        hash(fun)
    except TypeError:  # an unhashable callable object: wrap it (no compile cache across calls)
        fun = functools.partial(_call, fun)
    return Inputs(fun, x, args, paths, treedef)
