"""A jitted program's outputs handed back as few buffers: its small leaves packed into one word vector.

Every output buffer of a jitted call costs microseconds to hand back (XLA
allocates it, JAX wraps it in an Array, the host copies it). A solver's
result is many small leaves (the state's scalars, the gradient, a
quasi-Newton memory at small sizes, the history rows): measured on a
10-step 10-D run (benchmarks/RESULTS.md, session 31) its 5 outputs cost
the call 39-45 us where the same run handing back 2 took 24-25.

:func:`pack` (inside the jit) puts every leaf that a ``keep`` test does not
keep (the parameters, a user's ``aux``), that is no larger than
:data:`SMALL` numbers (the history always) and of a 32- or 64-bit type or
bool into one ``uint32`` vector, each leaf's bits unchanged
(``lax.bitcast_convert_type``; a bool as 0 or 1); :func:`unpack` gives the tree back, on the
host as NumPy views of one copy of that vector (a 0-d leaf as a NumPy
scalar), under a trace as ``jax.Array`` slices. The layout (which leaf lies
where) travels as a static node of the output tree: no leaf of its own.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# The most numbers in a leaf that is packed (other than the history): a larger one is an output of
# its own, which costs less than copying it into the vector.
SMALL = 1024
# Packed leaves' dtypes, by their width in 32-bit words. 64-bit ones come first in the vector,
# so that a NumPy view of theirs is aligned.
_WORDS = {np.dtype(np.float64): 2, np.dtype(np.int64): 2, np.dtype(np.float32): 1, np.dtype(np.int32): 1,
          np.dtype(np.uint32): 1, np.dtype(np.bool_): 1}
_BOOL = np.dtype(np.bool_)  # packed as 0 or 1, a word each (a bitcast needs 32 bits)


class Layout:
    """Where each packed leaf lies (a static pytree node, compared and hashed by value).

    ``treedef``: the whole tree's; ``kept``: the places (in its leaves) of the leaves handed
    back as they are; ``groups``: per dtype, ``(dtype, first word, last word + 1, scalars,
    arrays)``: that dtype's run holds the 0-d leaves at ``scalars`` (places, in order), then
    each of ``arrays`` as ``(place, shape, first element, last element + 1)``.
    """

    __slots__ = ("treedef", "kept", "groups", "_key")

    def __init__(self, treedef: Any, kept: tuple, groups: tuple) -> None:
        self.treedef, self.kept, self.groups = treedef, kept, groups
        self._key = (treedef, kept, groups)

    def __eq__(self, other: object) -> bool:
        return type(other) is Layout and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)


jax.tree_util.register_static(Layout)


def pack(tree: Any, keep: Callable[[tuple], bool], always: Callable[[tuple], bool] = lambda path: False) -> tuple:
    """Inside jit: ``(kept leaves, words, layout)`` for :func:`unpack`.

    A leaf is packed unless ``keep(path)`` (its key path, :func:`jax.tree_util.tree_flatten_with_path`),
    its dtype is not bool, 32- or 64-bit, it is weakly typed, or it has more than :data:`SMALL` numbers and
    ``always(path)`` is false.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    kept, by_dtype = [], {}
    for place, (path, leaf) in enumerate(flat):
        dtype = np.dtype(jnp.result_type(leaf))
        if (keep(path) or dtype not in _WORDS or getattr(leaf, "weak_type", False)  # (NumPy has no weak type)
                or (np.size(leaf) > SMALL and not always(path))):
            kept.append(place)
        else:
            by_dtype.setdefault(dtype, []).append((place, jnp.asarray(leaf)))
    groups, parts, word = [], [], 0
    for dtype in sorted(by_dtype, key=lambda d: -_WORDS[d]):  # 64-bit first (aligned views)
        leaves = sorted(by_dtype[dtype], key=lambda pl: pl[1].ndim != 0)  # its 0-d leaves first
        scalars = tuple(place for place, leaf in leaves if leaf.ndim == 0)
        arrays, at = [], len(scalars)
        for place, leaf in leaves[len(scalars):]:
            arrays.append((place, leaf.shape, at, at + leaf.size))
            at += leaf.size
        run = jnp.concatenate([leaf.ravel() for _, leaf in leaves])
        if dtype == _BOOL:
            bits = run.astype(jnp.uint32)
        else:
            bits = lax.bitcast_convert_type(run, jnp.uint32).ravel()  # 64-bit: two words an element
        groups.append((dtype, word, word + bits.size, scalars, tuple(arrays)))
        parts.append(bits)
        word += bits.size
    words = jnp.concatenate(parts) if parts else jnp.zeros(0, jnp.uint32)
    return [flat[place][1] for place in kept], words, Layout(treedef, tuple(kept), tuple(groups))


def unpack(kept: list, words: Any, layout: Layout) -> Any:
    """Undo :func:`pack`: on the host from one copy of ``words`` (NumPy views; a 0-d leaf as a
    NumPy scalar), under a trace as slices of ``words``."""
    leaves: list = [None] * layout.treedef.num_leaves
    for place, leaf in zip(layout.kept, kept):
        leaves[place] = leaf
    if isinstance(words, jax.core.Tracer):
        for dtype, start, stop, scalars, arrays in layout.groups:
            run = words[start:stop]
            if dtype == _BOOL:
                run = run != 0
            else:
                run = lax.bitcast_convert_type(run.reshape(-1, 2) if _WORDS[dtype] == 2 else run, dtype)
            for at, place in enumerate(scalars):
                leaves[place] = run[at]
            for place, shape, at, end in arrays:
                leaves[place] = run[at:end].reshape(shape)
    else:
        host = np.asarray(words)
        for dtype, start, stop, scalars, arrays in layout.groups:
            run = host[start:stop].astype(_BOOL) if dtype == _BOOL else host[start:stop].view(dtype)
            for place, value in zip(scalars, list(run[:len(scalars)])):  # NumPy scalars, in one pass
                leaves[place] = value
            for place, shape, at, end in arrays:
                leaves[place] = run[at:end].reshape(shape)
    return layout.treedef.unflatten(leaves)
