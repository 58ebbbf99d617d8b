"""Caches keyed on user functions: weakly keyed and bounded.

A cache that holds a user's loss function strongly keeps it alive, and with
it every array the function captured: a sweep that builds a new closure per
call would keep them all. Here each user function owns its entries through a
``weakref.WeakKeyDictionary``: when the function is dropped, its entries
(and its compiled programs, see :func:`jit_per_function`) go with it. The
values never refer to the function (that would make the weak key strong).

A callable that cannot be weakly referenced (rare: most objects can) falls
back to a small module-level LRU of its own, bounded by ``maxsize``; so does
an unhashable one (an Equinox module with an array field, an ``eq=True``
dataclass), keyed by identity there (:class:`jaxgd._closure_key.ById`).
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Callable, Hashable, Optional

from . import compile as _compile
from .. import _bounded
from .._closure_key import ById


_MISSING = object()


class PerFunction:
    """``cache.get(fn, key, make)``: ``make()`` once per ``(fn, key)``; weak in ``fn``.

    At most ``maxsize`` keys are kept per function (the oldest first out),
    and at most ``maxsize`` functions that cannot be weakly referenced.
    """

    def __init__(self, maxsize: int = 64) -> None:
        self.maxsize = maxsize
        self._weak: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._strong = _bounded.Bounded(maxsize)

    def _entries(self, fn: Any) -> _bounded.Bounded:
        try:
            entries = self._weak.get(fn)
            if entries is None:
                entries = self._weak[fn] = _bounded.Bounded(self.maxsize)
            return entries
        except TypeError:  # not weakly referenceable, or unhashable
            fn = _strong_key(fn)
            entries = self._strong.get(fn)
            if entries is None:
                entries = self._strong[fn] = _bounded.Bounded(self.maxsize)
            return entries

    def get(self, fn: Any, key: Hashable, make: Callable[[], Any]) -> Any:
        entries = self._entries(fn)
        value = entries.get(key, _MISSING)
        if value is _MISSING:  # (made outside an except clause: an error in make() carries no KeyError before it)
            value = make()
            self.put(fn, key, value)
        return value

    def lookup(self, fn: Any, key: Hashable) -> Any:
        """The value kept for ``(fn, key)``, or None (nothing is made)."""
        try:
            entries = self._weak.get(fn)
        except TypeError:  # not weakly referenceable, or unhashable
            entries = self._strong.get(_strong_key(fn))
        return None if entries is None else entries.get(key)

    def put(self, fn: Any, key: Hashable, value: Any) -> None:
        """Keep ``value`` for ``(fn, key)`` (the oldest key of ``fn`` out beyond ``maxsize``)."""
        entries = self._entries(fn)
        entries[key] = value

    def __len__(self) -> int:
        return len(self._weak) + len(self._strong)


def _strong_key(fn: Any) -> Hashable:
    """``fn``, or :class:`jaxgd._closure_key.ById` of it where it cannot be hashed (its fields may be arrays;
    held strongly, as every ``_strong`` entry's is)."""
    try:
        hash(fn)
        return fn
    except TypeError:
        return ById(fn)


_JITS = PerFunction(maxsize=16)


def per_function(owner: Any, name: str, make: Callable[[], Any]) -> Any:
    """``make()`` once per user function ``owner`` and ``name`` (weak in ``owner``).

    ``make``'s value must not refer to ``owner`` (that would keep it alive).
    """
    return _JITS.get(owner, name, make)


def jit_per_function(owner: Any, name: str, fn: Callable, wrap: Optional[Callable[[Callable], Callable]] = None) -> Callable:
    """``wrap(fn)`` made once per user function ``owner``; by default
    :func:`jaxgd.core.compile.jit`, with the parameters second (``(solver, x0, ...)``).

    ``fn`` is jaxgd's own (module-level) function that runs ``owner``;
    ``name`` tells apart several such per owner.
    """

    def make() -> Callable:
        # A distinct function object per owner: jax's tracing caches are keyed
        # weakly on the traced function, so dropping the owner drops its
        # programs and the constants its closures captured.
        @functools.wraps(fn)
        def compiled(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        return _compile.jit(compiled, params_at=1) if wrap is None else wrap(compiled)

    return _JITS.get(owner, name, make)
