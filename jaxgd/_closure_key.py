"""A closure's key by value: its code and the numbers it closes over.

A schedule that is a closure (optax's ``cosine_decay_schedule(0.01, 100)``, a
lambda, a ``functools.partial``) rides in a solver's static part
(``_tree.Static``), and a compiled loop is keyed by that part. Keyed by the
function object, a schedule built anew with the same numbers (in a training
function, a sweep) compiled the loop again on every call (0.5 s each).

A program traced from a closure bakes in what the closure reads: its cells,
its default arguments and the module globals its code names. Two closures
with equal code whose cells, defaults and named globals hold equal values
therefore trace the same program, and :func:`key` makes them one key:

- by value: None, bools, ints, floats (by their bits: ``-0.0`` is not
  ``0.0``), complex numbers, strings, bytes, NumPy and concrete JAX scalars
  (dtype, weak type and bits), and tuples, lists, dicts and NamedTuples of
  these; a function or ``functools.partial`` held or named there (a module
  function the schedule calls), recursively;
- by identity: modules, classes and callables of the libraries a schedule
  is written with (``jnp``, ``jnp.maximum``, ``math.cos``): their code and
  state are not the user's numbers, and are not looked into.

A function reached again on its own path (a recursive one, or a module
function whose name an attribute read shares: optax's ``trace`` and its
``state.trace``) is keyed there by identity. Anything else (an array of more
than one element, a tracer, an object of the user's, whose fields may change
between two calls, more than :data:`_MAX_VALUES` values) makes the whole closure
keyed by identity, as before: safe, compiled once per object. The values
are read once, when a function's key is first made: a function object
re-used after a value it reaches changed keeps its first key, as it kept
its first compiled program before; a closure made after the change gets
its own key.
"""

from __future__ import annotations

import functools
import types
import weakref
from typing import Any, Hashable, Optional

import jax
import numpy as np


# Modules whose objects (modules, classes, callables) are keyed by identity.
_LIBRARIES = frozenset({"builtins", "math", "cmath", "operator", "functools", "numpy", "jax", "jaxlib", "optax",
                        "jaxgd"})
_MAX_VALUES = 2000  # values one key may look at (optax's warmup_cosine_decay_schedule: 25)
_SCALAR_KINDS = frozenset("biufc")
_NOT_MADE = object()
_BY_IDENTITY = None  # the memo's entry for a function keyed by identity (never the function: a weak key)


class _Unkeyable(Exception):
    """Raised inside :func:`_key` for a value it cannot key by value."""


class ValueKey:
    """A closure's key by value (its parts hashed once); equal only to another such key with equal parts."""

    __slots__ = ("parts", "_hash")

    def __init__(self, parts: tuple) -> None:
        self.parts, self._hash = parts, hash(parts)

    def __eq__(self, other: object) -> bool:
        return self is other or (
            type(other) is ValueKey and other._hash == self._hash and other.parts == self.parts
        )

    def __hash__(self) -> int:
        return self._hash


_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # fn -> its ValueKey or _BY_IDENTITY


def key(fn: Any) -> Hashable:
    """``fn``'s :class:`ValueKey` for a Python function or ``functools.partial`` that can be keyed by value
    (see the module doc), else ``fn`` itself (compared by its own ``==``, identity for a function).

    Made once per function object (weakly memoised): a cached call pays a dictionary look-up.
    """
    if type(fn) is not types.FunctionType and type(fn) is not functools.partial:
        return fn
    try:
        found = _KEYS.get(fn, _NOT_MADE)
    except TypeError:  # pragma: no cover - functions and partials are weakly referenceable
        return fn
    if found is not _NOT_MADE:
        return fn if found is _BY_IDENTITY else found
    made = value_key(fn)
    _KEYS[fn] = _BY_IDENTITY if made is None else made
    return fn if made is None else made


def value_key(value: Any) -> Optional[ValueKey]:
    """``value``'s key by value for any value the walk below can key (a tuple of functions, as an optax
    ``GradientTransformation`` is: ``optax.adam(1e-3)`` built anew keys equal to the first), else None.
    Not memoised (a tuple cannot be weakly referenced): the walk runs on every call."""
    try:
        return ValueKey(_Walk().key(value))
    except (_Unkeyable, TypeError, ValueError, RuntimeError, RecursionError):  # (TypeError: an unhashable part;
        return None                                                          # RuntimeError: a deleted array)


class _Walk:
    """One key's walk over the values a function reaches: at most :data:`_MAX_VALUES` of them (a
    long table, or module functions that name many others, is keyed by identity instead), and no
    function twice on one path (a recursive function: by identity)."""

    def __init__(self) -> None:
        self.left, self.path = _MAX_VALUES, set()

    def key(self, v: Any) -> Any:
        """The hashable by-value form of ``v``, or :class:`_Unkeyable`."""
        self.left -= 1
        if self.left < 0:
            raise _Unkeyable
        t = type(v)
        if v is None or t is bool or t is int or t is str or t is bytes:
            return (t, v)
        if t is float:
            return (t, v.hex())
        if t is complex:
            return (t, v.real.hex(), v.imag.hex())
        if t is tuple or t is list or (isinstance(v, tuple) and hasattr(t, "_fields")):
            return (t, tuple([self.key(x) for x in v]))
        if t is dict:
            return (t, tuple([(self.key(k), self.key(x)) for k, x in v.items()]))
        if isinstance(v, (np.generic, np.ndarray)):
            if v.shape != () or v.dtype.kind not in _SCALAR_KINDS:
                raise _Unkeyable
            return (t, v.dtype.str, v.tobytes())
        if isinstance(v, jax.Array):
            if isinstance(v, jax.core.Tracer) or v.shape != () or v.dtype.kind not in _SCALAR_KINDS:
                raise _Unkeyable
            return ("jax.Array", v.dtype.str, bool(v.weak_type), np.asarray(v).tobytes())
        if t is types.FunctionType or t is functools.partial:
            if v.__dict__:  # (attributes set on it, as functools.wraps's __wrapped__)
                raise _Unkeyable
            if id(v) in self.path:  # reached again on its own path: a recursive function, or a global named like
                return ("again", v)  # an attribute its code reads (optax.trace's state.trace): by identity, safe
            self.path.add(id(v))
            try:
                return self._function(v) if t is types.FunctionType else (
                    t, self.key(v.func), self.key(v.args), self.key(v.keywords))
            finally:
                self.path.discard(id(v))
        if _from_library(v):
            return v
        raise _Unkeyable

    def _function(self, fn: types.FunctionType) -> tuple:
        """A function's code, defaults, cells and the module globals its code names, by value."""
        cells = tuple([self._cell(c) for c in fn.__closure__ or ()])
        g = fn.__globals__
        named = tuple([(n, self.key(g[n])) for n in _global_names(fn.__code__) if n in g])
        return (fn.__code__, self.key(fn.__defaults__), self.key(fn.__kwdefaults__), cells, named)

    def _cell(self, cell: Any) -> Any:
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell (assigned after the closure was made, as optax's unused clip_fn)
            return _EMPTY_CELL_KEY
        return self.key(contents)


_EMPTY_CELL_KEY = ("cell", "empty")  # (equal to no other key: theirs start with a type, a code or a library object)


@functools.lru_cache(maxsize=512)
def _global_names(code: types.CodeType) -> tuple:
    """The names ``code`` (and the code nested in it) may read as globals (and attributes: a superset)."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names.update(_global_names(c))
    return tuple(sorted(names))


def _from_library(v: Any) -> bool:
    """A module, class, or callable of one of :data:`_LIBRARIES` (not bound to an object of the user's)."""
    if isinstance(v, types.ModuleType):
        where = v.__name__
    elif isinstance(v, type):
        where = v.__module__
    elif isinstance(v, (types.BuiltinFunctionType, types.MethodWrapperType)):
        owner = getattr(v, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):
            return False
        where = getattr(v, "__module__", None) or "builtins"
    elif callable(v) and not isinstance(v, (types.MethodType, functools.partial)):
        where = type(v).__module__
    else:
        return False
    return isinstance(where, str) and where.partition(".")[0] in _LIBRARIES
