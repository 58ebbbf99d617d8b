"""Host-side checks of arguments, by name, with one policy for every module.

Every helper takes the argument's name (it appears in the message) and,
optionally, the message template of the caller (``{name}`` and ``{value}``
are filled in), so modules keep the texts their users and tests know while
sharing one implementation. The policy:

- **Numbers.** A Python ``int``/``float``, a NumPy integer/floating scalar,
  or a real (integer or floating dtype) array of shape ``()``. Python and
  NumPy numbers come back as a Python ``float`` (a weakly typed jit argument,
  so a new value never retraces); arrays come back unchanged.
- **Wrong kind** (a bool, complex, string, ``None``, object): ``TypeError``
  with :data:`BAD_NUMBER` (or the caller's ``type_message``).
- **Wrong shape**: a real array of any shape other than ``()`` raises
  ``ValueError`` with the same message plus ``(a scalar, got shape S)``.
  This holds for tracers too: their shape is known.
- **Wrong value** (out of range, NaN): ``ValueError``. Values are checked
  only when concrete; a tracer (``minimize`` under ``jit``/``vmap``) passes,
  never raising (DESIGN.md, "The loop").
- **Counts** (iteration caps, sizes): a Python/NumPy integer or an integer
  scalar array, never a bool or a float; returned as a Python ``int``
  (tracers pass).
- **Flags**: ``bool``/``numpy.bool_`` only; "every k" flags take a bool or a
  positive integer.

Example:
  >>> from jaxgd import _validate
  >>> _validate.open_unit("c1", 1e-4)
  0.0001
  >>> _validate.open_unit("c1", 2.0)
  Traceback (most recent call last):
  ...
  ValueError: c1 must lie in (0, 1), got c1=2.0
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import _tree

BAD_NUMBER = "{name} must be a real number or a real scalar array, got {name}={value!r}"
NOT_SCALAR = " (a scalar, got shape {shape})"
BAD_FINITE = "{name} must be a finite number, got {name}={value!r}"
BAD_POSITIVE = "{name} must be > 0 and finite, got {name}={value!r}"
BAD_NONNEG = "{name} must be >= 0 and finite, got {name}={value!r}"
BAD_POSITIVE_OR_INF = "{name} must be > 0 (inf allowed), got {name}={value!r}"
BAD_NONNEG_OR_INF = "{name} must be >= 0 (inf allowed), got {name}={value!r}"
BAD_OPEN_UNIT = "{name} must lie in (0, 1), got {name}={value!r}"
BAD_GREATER = "{name} must be > {bound}, got {name}={value!r}"
BAD_AT_LEAST = "{name} must be a finite number >= {bound}, got {name}={value!r}"
BAD_COUNT = "{name} must be an integer >= {minimum}, got {name}={value!r}"
BAD_FLAG = "{name} must be a bool, got {name}={value!r}"
BAD_EVERY = "{name} must be a bool or a positive integer (every k steps), got {name}={value!r}"
EMPTY_PARAMS = "{name} must contain at least one non-empty array, got {what}"
EMPTY_LEAF = ("{name} must not hold an array of size 0 (jaxgd's loops take every leaf as parameters), got leaf "
              "{path} of shape {shape}; leave it out of {name} (pass it through args or close over it)")
BAD_PARAMS_DTYPE = ("{name} leaf {path} has dtype {dtype}; {name} must hold real floating-point arrays "
                    "(cast it, e.g. {cast})")
COMPLEX_PARAMS = ("{name} leaf {path} has dtype {dtype}; {name} must hold real floating-point arrays: optimise the "
                  "real and imaginary parts as two real leaves, e.g. {{'re': z.real, 'im': z.imag}}, and rebuild "
                  "z = p['re'] + 1j * p['im'] inside the loss (casting to float would drop the imaginary part)")
KEY_PARAMS = ("{name} leaf {path} is a PRNG key ({dtype}), not a parameter: pass it through args (or close over "
              "it) and keep {name} to the arrays trained")
NOT_A_PYTREE = ("{name} leaf {path} is a {kind}, which JAX does not know as a pytree (one opaque leaf, not an "
                "array): register the class (jax.tree_util.register_dataclass, or flax.struct.dataclass) or pass "
                "its arrays (a dict or tuple of them)")
OBJECT_ARRAY = ("{name} leaf {path} is a NumPy array of dtype object (Python objects inside: None, mixed types, "
                "ragged rows); {name} must hold real floating-point arrays: np.asarray(..., dtype=float) of its "
                "numbers")
SHAPE_ONLY = ("{name} leaf {path} is a jax.ShapeDtypeStruct, a shape and dtype with no values: pass an array "
              "(jnp.zeros(shape, dtype)) to start from")
CAST_ARRAY = "{name}.astype(float)"
CAST_PYTHON = "jnp.asarray({name}, dtype=float)"  # (a Python number or list has no .astype)
CAST_TREE = "jax.tree.map(lambda v: jnp.asarray(v, dtype=float), {name})"  # (nor has a dict)
NOT_IN_DTYPE = ("{name}={value!r} overflows {dtype}, the dtype of the parameters' leaf {path} (its largest finite "
                "number is {big:.4g}); pass a smaller {name} or parameters of a wider dtype")
BOUND_PAST_DTYPE = ("bounds: the {side} bound {value!r} leaves no {dtype} value for the parameters' leaf {path} "
                    "(the largest finite {dtype} number is {big:.4g}); pass a {fix} {side} bound or parameters of a wider dtype")

__all__ = [
    "BAD_NUMBER", "NOT_SCALAR", "count", "every", "finite", "flag", "greater", "is_tracer", "nonneg",
    "in_dtypes", "open_unit", "params", "positive", "real", "value_of",
]


def is_tracer(value: Any) -> bool:
    """True for a value being traced (inside ``jit``/``vmap``): its value cannot be checked."""
    return isinstance(value, jax.core.Tracer)


def static_note(value: Any) -> str:
    """The end of a message about an integer that sizes the compiled loop (``max_steps``, ``epochs``,
    ``patience``): where ``value`` is a tracer, that it must be a concrete Python int."""
    if not is_tracer(value):
        return ""
    return " (a concrete Python int: it is static, so it cannot be traced under jax.jit/jax.vmap)"


def _is_real_dtype(dtype: Any) -> bool:
    return dtype is not None and dtype != np.bool_ and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    )


def real(name: str, value: Any, message: str = BAD_NUMBER) -> Any:
    """Check that ``value`` is one real number; return it (Python/NumPy numbers as ``float``).

    Args:
      name: the argument's name, for the message.
      value: the argument.
      message: the caller's template (``{name}``, ``{value}``).

    Returns:
      ``float(value)`` for a Python/NumPy number, else the scalar array or tracer.

    Raises:
      TypeError: a bool, complex, string, ``None`` or other non-real value.
      ValueError: a real array whose shape is not ``()``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(message.format(name=name, value=value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if not _is_real_dtype(getattr(value, "dtype", None)) or not hasattr(value, "shape"):
        raise TypeError(message.format(name=name, value=value))
    if np.shape(value) != ():
        raise ValueError(message.format(name=name, value=value) + NOT_SCALAR.format(shape=tuple(np.shape(value))))
    return value


def value_of(name: str, value: Any, message: str = BAD_NUMBER) -> Optional[float]:
    """``float(value)`` after :func:`real`'s checks, or ``None`` for a tracer."""
    value = real(name, value, message)
    if isinstance(value, float):
        return value
    return None if is_tracer(value) else float(value)


def _check(name: str, value: Any, message: str, ok: Any, type_message: str, **extra: Any) -> Any:
    out = real(name, value, type_message)
    v = value_of(name, out, type_message)
    if v is not None and not ok(v):  # NaN fails every comparison
        raise ValueError(message.format(name=name, value=value, **extra))
    return out


def finite(name: str, value: Any, message: str = BAD_FINITE, *, type_message: str = BAD_NUMBER) -> Any:
    """A real number that is finite (not NaN or +-Inf).

    ``message`` is the template for a value out of range, ``type_message`` for
    a value of the wrong kind or shape (see :func:`real`); the other range
    helpers below take the same two.
    """
    return _check(name, value, message, math.isfinite, type_message)


def positive(name: str, value: Any, message: str = BAD_POSITIVE, *, allow_inf: bool = False, type_message: str = BAD_NUMBER) -> Any:
    """A real number ``> 0`` (and finite unless ``allow_inf``; then the default text says inf is allowed)."""
    if allow_inf and message == BAD_POSITIVE:
        message = BAD_POSITIVE_OR_INF
    return _check(name, value, message, lambda v: v > 0 and (allow_inf or math.isfinite(v)), type_message)


def nonneg(name: str, value: Any, message: str = BAD_NONNEG, *, allow_inf: bool = False, type_message: str = BAD_NUMBER) -> Any:
    """A real number ``>= 0`` (and finite unless ``allow_inf``; then the default text says inf is allowed)."""
    if allow_inf and message == BAD_NONNEG:
        message = BAD_NONNEG_OR_INF
    return _check(name, value, message, lambda v: v >= 0 and (allow_inf or math.isfinite(v)), type_message)


def open_unit(name: str, value: Any, message: str = BAD_OPEN_UNIT, *, type_message: str = BAD_NUMBER) -> Any:
    """A real number in the open interval ``(0, 1)``."""
    return _check(name, value, message, lambda v: 0.0 < v < 1.0, type_message)


def greater(name: str, value: Any, bound: float, message: str = BAD_GREATER, *, type_message: str = BAD_NUMBER) -> Any:
    """A finite real number ``> bound``."""
    return _check(name, value, message, lambda v: v > bound and math.isfinite(v), type_message, bound=bound)


def at_least(name: str, value: Any, bound: float, message: str = BAD_AT_LEAST, *, type_message: str = BAD_NUMBER) -> Any:
    """A finite real number ``>= bound``."""
    return _check(name, value, message, lambda v: v >= bound and math.isfinite(v), type_message, bound=bound)


def count(name: str, value: Any, minimum: int = 1, message: str = BAD_COUNT) -> Any:
    """An integer ``>= minimum`` (iteration caps, sizes).

    Returns:
      ``int(value)`` for a concrete value; a tracer unchanged.

    Raises:
      ValueError: a bool, a float, a non-integer, an array that is not an
        integer scalar, or a value below ``minimum``.
    """
    if is_tracer(value) and np.shape(value) == () and jnp.issubdtype(value.dtype, jnp.integer):
        return value
    integral = isinstance(value, (int, np.integer)) or (
        hasattr(value, "dtype") and np.shape(value) == () and jnp.issubdtype(value.dtype, jnp.integer)
    )
    if isinstance(value, (bool, np.bool_)) or not integral or is_tracer(value) or int(value) < minimum:
        raise ValueError(message.format(name=name, value=value, minimum=minimum))
    return int(value)


def flag(name: str, value: Any, message: str = BAD_FLAG) -> bool:
    """A ``bool`` (or ``numpy.bool_``), returned as ``bool``.

    Raises:
      TypeError: anything else (``0``/``1`` included).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(message.format(name=name, value=value))
    return bool(value)


def every(name: str, value: Any, message: str = BAD_EVERY) -> int:
    """An "every k steps" flag: ``True`` -> 1, ``False`` -> 0, a positive integer -> itself.

    Raises:
      TypeError: neither a bool nor an integer.
      ValueError: an integer < 1.
    """
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)) and value > 0:
        return int(value)
    raise (ValueError if isinstance(value, (int, np.integer)) else TypeError)(message.format(name=name, value=value))


@functools.lru_cache(maxsize=64)
def _is_float(dtype: Any) -> bool:  # jnp.issubdtype costs ~0.5 us a call; there are few dtypes
    return bool(jnp.issubdtype(dtype, jnp.floating))


def _leaf_dtype(leaf: Any) -> Any:
    """The dtype ``leaf`` has as an array (a Python number's NumPy default)."""
    if isinstance(leaf, (bool, int)) or not hasattr(leaf, "dtype") and not isinstance(leaf, float):
        return np.asarray(leaf).dtype
    return getattr(leaf, "dtype", None) or np.asarray(leaf).dtype


def params(name: str, tree: Any) -> tuple[list, Any, list]:
    """Check a parameter pytree (``x0``, fit's ``params``, an ``init``'s argument); return its
    leaves, treedef and the leaves' dtypes.

    The policy: at least one leaf, every leaf of a real floating dtype (a Python float
    counts) and of non-zero size. Tracers pass on the same terms (their dtype and shape are
    known); values are not read here.

    Raises:
      ValueError: no leaves, or a leaf of size 0 (:data:`EMPTY_PARAMS` where no leaf holds an
        array, :data:`EMPTY_LEAF` where another does).
      TypeError: an integer, boolean, complex or non-numeric leaf (:data:`BAD_PARAMS_DTYPE`).
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    if not leaves:
        raise ValueError(EMPTY_PARAMS.format(name=name, what=f"a pytree with no leaves ({tree!r})"))
    _check_linen_variables(name, tree)

    dtypes = []
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, jax.ShapeDtypeStruct):  # (float dtype, no values: float() of it failed later, unnamed)
            raise TypeError(SHAPE_ONLY.format(name=name, path=_tree.leaf_path_at(tree, i)))
        dtype = _leaf_dtype(leaf)
        try:
            is_float = _is_float(dtype)
        except TypeError:  # an unhashable dtype-like object
            is_float = bool(jnp.issubdtype(dtype, jnp.floating))
        if not is_float:
            path = _tree.leaf_path_at(tree, i)
            from .interop.models import leaf_message  # (a Flax NNX or Equinox model's leaf: what to pass instead)

            model = leaf_message(name, tree, i, path)
            if model is not None:
                raise TypeError(model)
            keys = _linen_keys(tree)
            if keys is not None and path.startswith("[") and not path.startswith("['params']"):
                raise TypeError(LINEN_LEAF.format(name=name, path=path, dtype=dtype, keys=", ".join(map(repr, keys))))
            if isinstance(leaf, np.ndarray) and leaf.dtype == np.dtype(object):
                raise TypeError(OBJECT_ARRAY.format(name=name, path=path))
            if isinstance(dtype, np.dtype) and dtype == np.dtype(object):  # (a class JAX does not know: one leaf)
                raise TypeError(NOT_A_PYTREE.format(name=name, path=path, kind=type(leaf).__name__))
            if jnp.issubdtype(dtype, jax.dtypes.prng_key):  # (no cast makes a key a parameter)
                raise TypeError(KEY_PARAMS.format(name=name, path=path, dtype=dtype))
            if jnp.issubdtype(dtype, jnp.complexfloating):  # (astype(float) would drop the imaginary part)
                raise TypeError(COMPLEX_PARAMS.format(name=name, path=path, dtype=dtype))
            raise TypeError(BAD_PARAMS_DTYPE.format(name=name, path=path, dtype=dtype, cast=_cast(name, tree)))
        if _size(leaf) == 0:
            path = _tree.leaf_path_at(tree, i)
            if any(_size(other) for other in leaves):  # (the tree has an array, just not this one)
                raise ValueError(EMPTY_LEAF.format(name=name, path=path, shape=np.shape(leaf)))
            raise ValueError(EMPTY_PARAMS.format(name=name, what=f"leaf {path} of shape {np.shape(leaf)}"))
        dtypes.append(dtype)
    return leaves, treedef, dtypes


LINEN_BATCH_STATS = (
    "{name} holds a Flax Linen model's variables with a 'batch_stats' collection ({keys}): BatchNorm's running "
    "statistics are not parameters (trained as such they never update as running averages, as apply(..., "
    "mutable=['batch_stats']) returns their update and the loss drops it, and l2 would decay them). Pass "
    "variables['params'] as {name} and keep the rest in args or the loss's closure: model.apply({{'params': p, "
    "**rest}}, x, ...). To train with BatchNorm as usual (running averages updated each batch), run jaxgd's step "
    "in your own loop: tx = jaxgd.as_optax(method, lr) as a flax TrainState's tx, the statistics carried beside "
    "it (docs/api/models.md)"
)
LINEN_LEAF = (
    "{name} leaf {path} has dtype {dtype}; {name} must hold real floating-point arrays. {name} has a 'params' "
    "entry beside others ({keys}), as a Flax Linen model's variables do: if it is one, pass variables['params'] as "
    "{name} and keep the other collections in args or the loss's closure: model.apply({{'params': p, **rest}}, x, ...)"
)


def _linen_keys(tree: Any) -> Optional[list]:
    """The top-level keys of ``tree`` where it looks like a Flax Linen model's variables (a mapping with a
    ``'params'`` collection beside others), else None."""
    if isinstance(tree, Mapping) and "params" in tree and len(tree) > 1:
        return sorted(str(k) for k in tree)
    return None


def _check_linen_variables(name: str, tree: Any) -> None:
    """Refuse a Linen model's variables holding ``batch_stats`` as parameters (:data:`LINEN_BATCH_STATS`)."""
    keys = _linen_keys(tree)
    if keys is not None and "batch_stats" in keys:
        raise ValueError(LINEN_BATCH_STATS.format(name=name, keys=", ".join(map(repr, keys))))


def _cast(name: str, tree: Any) -> str:
    """How to cast the parameter pytree ``tree`` to floats, spelled for what it is: an array (``.astype``),
    a Python number or a list/tuple of numbers (``jnp.asarray``), or another pytree (``jax.tree.map``)."""
    if hasattr(tree, "astype"):
        return CAST_ARRAY.format(name=name)
    numbers = (bool, int, float, complex)
    if isinstance(tree, numbers) or isinstance(tree, (list, tuple)) and all(isinstance(v, numbers) for v in tree):
        return CAST_PYTHON.format(name=name)
    return CAST_TREE.format(name=name)


def _size(leaf: Any) -> int:
    return leaf.size if isinstance(leaf, jax.Array) else int(np.size(leaf))


def in_dtypes(name: str, values: list, params: Any, side: str = "both") -> None:
    """Raise ``ValueError`` (:data:`NOT_IN_DTYPE`) where a concrete hyperparameter, one value per
    leaf of ``params`` (``values``, as ``prox.weight_leaves`` gives them), is finite but past the
    largest finite number of its leaf's dtype: it is used in that dtype, where it is Inf (``l1=1e39``
    with float32 parameters ended GTOL with a NaN loss). ``side``: ``"lower"`` checks only values
    above the largest, Inf included (a lower bound no point meets; :data:`BOUND_PAST_DTYPE`),
    ``"upper"`` only below its negative, ``"both"`` finite magnitudes. Tracers and ``None`` pass."""
    for i, (v, leaf) in enumerate(zip(values, jax.tree_util.tree_leaves(params))):
        if v is None or is_tracer(v) or not hasattr(leaf, "dtype") or not _is_float(leaf.dtype):
            continue
        try:
            a = np.asarray(v, np.float64)
        except (TypeError, ValueError):  # not a number: other checks name it
            continue
        big = float(jnp.finfo(leaf.dtype).max)
        over = {"lower": a > big, "upper": a < -big, "both": (np.abs(a) > big) & np.isfinite(a)}[side]
        if over.any():
            value = float(a[over].flat[0]) if a.ndim else float(a)
            fields = dict(value=value, dtype=jnp.dtype(leaf.dtype).name, path=_tree.leaf_path_at(params, i), big=big)
            if side == "both":
                raise ValueError(NOT_IN_DTYPE.format(name=name, **fields))
            raise ValueError(BOUND_PAST_DTYPE.format(side=side, fix="smaller" if side == "lower" else "larger", **fields))
