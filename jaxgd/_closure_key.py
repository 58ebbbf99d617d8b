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
``state.trace``) is keyed there by identity. A bound method is keyed by its
function, its object (by identity) and the object's attributes (``lr=sched.lr``:
the object's numbers changed, the key changes). Anything else (an array of more than one element,
a tracer, any other object of the user's, more than :data:`_MAX_VALUES`
values, a function of the user's that reads names it does not spell out:
``globals()``, ``getattr``, ``eval``) makes the whole closure keyed by
identity, as before: compiled once per object.

A key that read a module global of the user's or an object's attributes is
*volatile*: those may change between two calls (a notebook's ``LR = 0.3``),
so it is made again at every call (a closure re-used after the change gets
the new values' key, and its program is traced with them: a key memoised
once had a fresh closure of the old values run the program traced from the
new ones). Other keys read only the closure's own cells and defaults and the
libraries' code, and are made once per function object. A cell rebound
(``nonlocal``), a list in a cell changed in place, or ``__defaults__``
assigned after a closure's first call is not seen: such a closure keeps its
first key.
"""

from __future__ import annotations

import functools
import types
import weakref
from typing import Any, Hashable, Optional

import jax
import numpy as np

from . import _bounded


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
    """A closure's key by value (its parts hashed once); equal only to another such key with equal parts.
    ``volatile``: it read values that may change between calls (a module global, an object's attributes;
    not part of the comparison)."""

    __slots__ = ("parts", "_hash", "volatile")

    def __init__(self, parts: tuple, volatile: bool = False) -> None:
        self.parts, self._hash, self.volatile = parts, hash(parts), volatile

    def __eq__(self, other: object) -> bool:
        return self is other or (
            type(other) is ValueKey and other._hash == self._hash and other.parts == self.parts
        )

    def __hash__(self) -> int:
        return self._hash


_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # fn -> its ValueKey or _BY_IDENTITY


KEYED = (types.FunctionType, functools.partial, types.MethodType)  # the callables :func:`key` keys by value


def keyed(x: Any) -> bool:
    """Whether :func:`key` may key ``x`` by value: a callable of :data:`KEYED`, or a NamedTuple of them (an
    optax ``GradientTransformation``)."""
    t = type(x)
    return t in KEYED or (isinstance(x, tuple) and hasattr(t, "_fields") and bool(x)
                          and all(type(f) in KEYED for f in x))


def key(fn: Any) -> Hashable:
    """``fn``'s :class:`ValueKey` where :func:`keyed` and it can be keyed by value (see the module doc),
    else ``fn`` itself (compared by its own ``==``, identity for a function).

    Made once per object unless volatile (a function weakly memoised; a transformation in a bounded memo
    that holds it): a cached call pays a dictionary look-up.
    """
    if not keyed(fn):
        return fn
    if type(fn) is types.MethodType:  # (a new object at each attribute read: nothing to memoise on)
        made = value_key(fn)
        return fn if made is None else made
    memo, at = (_KEYS, fn) if type(fn) in KEYED else (_TUPLE_KEYS, (type(fn), fn))  # (a tuple: with its type)
    found = memo.get(at, _NOT_MADE)
    if found is not _NOT_MADE:
        return fn if found is _BY_IDENTITY else found
    made = value_key(fn)
    if made is None or not made.volatile:
        memo[at] = _BY_IDENTITY if made is None else made
    return fn if made is None else made


_TUPLE_KEYS = _bounded.Bounded(64)  # (type, transformation) -> key, the newest 64


def value_key(value: Any) -> Optional[ValueKey]:
    """``value``'s key by value for any value the walk below can key (a tuple of functions, as an optax
    ``GradientTransformation`` is: ``optax.adam(1e-3)`` built anew keys equal to the first), else None.
    Not memoised (a tuple cannot be weakly referenced): the walk runs on every call."""
    walk = _Walk()
    try:
        return ValueKey(walk.key(value), walk.volatile)
    except (_Unkeyable, TypeError, ValueError, RuntimeError, RecursionError):  # (TypeError: an unhashable part;
        return None                                                          # RuntimeError: a deleted array)


class _Walk:
    """One key's walk over the values a function reaches: at most :data:`_MAX_VALUES` of them (a
    long table, or module functions that name many others, is keyed by identity instead), and no
    function twice on one path (a recursive function: by identity)."""

    def __init__(self) -> None:
        self.left, self.path, self.volatile = _MAX_VALUES, set(), False

    def key(self, v: Any) -> Any:
        """The hashable by-value form of ``v``, or :class:`_Unkeyable`."""
        self.left -= 1
        if self.left < 0:
            raise _Unkeyable
        scalar = scalar_key(v)
        if scalar is not None:
            return scalar
        t = type(v)
        if t is tuple or t is list or (isinstance(v, tuple) and hasattr(t, "_fields")):
            return (t, tuple([self.key(x) for x in v]))
        if t is dict:
            return (t, tuple([(self.key(k), self.key(x)) for k, x in v.items()]))
        if isinstance(v, np.ndarray):
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
        if t is types.MethodType:  # a bound method: its function, and its object's attributes (volatile)
            return (t, self.key(v.__func__), self._object(v.__self__))
        if _from_library(v):
            return v
        raise _Unkeyable

    def _object(self, obj: Any) -> Any:
        """A bound method's object: a library's by identity; the user's by identity and its attributes (what
        its class or other methods read is not looked into, so another object never shares the key)."""
        if _from_library(obj):
            return obj
        attrs = getattr(obj, "__dict__", None)
        if type(attrs) is not dict or hasattr(type(obj), "__slots__"):
            raise _Unkeyable
        self.volatile = True
        return (type(obj), ById(obj), self.key(attrs))

    def _function(self, fn: types.FunctionType) -> tuple:
        """A function's code, defaults, cells and the module globals its code names, by value."""
        cells = tuple([self._cell(c) for c in fn.__closure__ or ()])
        g = fn.__globals__
        names = _global_names(fn.__code__)
        if not _library_name(g.get("__name__")):  # the user's: its globals may change between calls
            if _DYNAMIC.intersection(names):  # names read by a string (globals()["lr"]): not seen here
                raise _Unkeyable
            # (a module it names, jnp or math, stays put; a number, a function or an object may be rebound)
            self.volatile = self.volatile or any(n in g and not isinstance(g[n], types.ModuleType) for n in names)
        named = tuple([(n, self.key(g[n])) for n in names if n in g])
        return (fn.__code__, self.key(fn.__defaults__), self.key(fn.__kwdefaults__), cells, named)

    def _cell(self, cell: Any) -> Any:
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell (assigned after the closure was made, as optax's unused clip_fn)
            return _EMPTY_CELL_KEY
        return self.key(contents)


class ById:
    """An object as a key, equal only to itself (whatever its own ``==``, and hashable or not), held
    alive with the key (a bound method's object here; an unhashable loss in :mod:`jaxgd.core.cache`)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return type(other) is ById and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


def scalar_key(v: Any) -> Optional[tuple]:
    """``v``'s key by value where it is None, a bool, int, str, bytes, float (by its bits: ``-0.0`` is not
    ``0.0``), complex or NumPy scalar (dtype and bits), with its type (``1``, ``1.0`` and ``True`` differ); else
    None."""
    t = type(v)
    if v is None or t is bool or t is int or t is str or t is bytes:
        return (t, v)
    if t is float:
        return (t, v.hex())
    if t is complex:
        return (t, v.real.hex(), v.imag.hex())
    if isinstance(v, np.generic) and v.dtype.kind in _SCALAR_KINDS:
        return (t, v.dtype.str, v.tobytes())
    return None


# Names through which code reads a variable it does not spell out (not followed by the walk).
_DYNAMIC = frozenset({"globals", "vars", "locals", "eval", "exec", "getattr", "__import__"})

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
    return _library_name(where)


def _library_name(where: Any) -> bool:
    """Whether module name ``where`` is one of :data:`_LIBRARIES` or in one."""
    return isinstance(where, str) and where.partition(".")[0] in _LIBRARIES
