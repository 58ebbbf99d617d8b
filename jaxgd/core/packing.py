"""Loop carries with their scalars packed: one vector per dtype instead of one buffer per scalar.

XLA:CPU gives every loop-carried buffer that a body updates a kernel of its
own (or a copy), and a solver's state carries many scalars (value, gradient
norm, step size, counters, status, the stall window; a line search's interval
and flags). Carried as one vector per dtype, the body's scalar updates are
computed by one kernel a dtype: the same arithmetic, fewer kernels a step
(benchmarks/RESULTS.md, session 12: GD 100-D float32 0.85 -> 0.54 us a step,
the vmapped sweep D 0.85x; same bits).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
from jax import lax

# A switch for measuring the packed carries against plain ones (benchmarks, tests); on in use.
PACK = True
# The most scalars in one packed vector. XLA:CPU fuses a concatenation of at most 8 operands
# into the kernel that computes them (cpu_instruction_fusion.cc, kMaxConcatenateArguments); a
# longer one is a copy of its own after one kernel per operand: a Moré-Thuente trial's 12 float
# scalars cost 13 kernels packed in one vector, 2 packed in vectors of 8 and 4 (benchmarks/RESULTS.md,
# session 17).
MAX_PACK = 8


class Packing:
    """The loop carry with the scalar leaves of a tree packed into one vector per dtype
    (``ndim=1``: the leaves of shape ``(runs,)``, into one ``(k, runs)`` array per dtype).

    A while loop's carried scalars (the state's value, gradient norm, step size,
    counters, status, ...) are each its own buffer, so XLA:CPU updates each with a
    kernel of its own every step; packed, the body's scalar updates write one
    vector per dtype (of at most :data:`MAX_PACK` scalars: several for more).
    ``pack``/``unpack`` are slices and a concatenation, fused into the kernels
    that read and compute them; weakly typed scalars stay apart.
    """

    def __init__(self, tree: Any, ndim: int = 0) -> None:
        leaves, self.treedef = jax.tree_util.tree_flatten(tree)
        groups: dict = {}
        for i, x in enumerate(leaves):
            # (ndim=1 under the batched loop: a per-run scalar has the run axis)
            if jnp.ndim(x) == ndim and jnp.size(x) and not getattr(x, "weak_type", False):
                groups.setdefault((jnp.result_type(x), jnp.shape(x)), []).append(i)
        # vectors of at most MAX_PACK scalars a dtype (a lone leftover is carried as it is)
        chunks = [(key, idx[k : k + MAX_PACK]) for key, idx in groups.items() for k in range(0, len(idx), MAX_PACK)]
        self.groups = [(key, idx) for key, idx in chunks if len(idx) > 1]
        packed = {i for _, idx in self.groups for i in idx}
        self.rest = [i for i in range(len(leaves)) if i not in packed]

    def pack(self, tree: Any) -> tuple:
        leaves = jax.tree_util.tree_leaves(tree)
        return [leaves[i] for i in self.rest], [jnp.stack([leaves[i] for i in idx]) for _, idx in self.groups]

    def unpack(self, carry: tuple) -> Any:
        rest, vectors = carry
        leaves: list = [None] * (len(self.rest) + sum(len(idx) for _, idx in self.groups))
        for i, x in zip(self.rest, rest):
            leaves[i] = x
        for (_, idx), v in zip(self.groups, vectors):
            for k, i in enumerate(idx):
                leaves[i] = v[k]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def codec(tree: Any, ndim: int = 0) -> tuple[Callable, Callable]:
    """``(pack, unpack)`` for carries shaped like ``tree`` (:class:`Packing`); the
    identity pair when :data:`PACK` is off."""
    if not PACK:
        return (lambda t: t), (lambda c: c)
    pk = Packing(tree, ndim)
    return pk.pack, pk.unpack


# The flags of the enclosing only_while blocks (trace time), per thread: every packed_while this thread traces
# inside runs only while the innermost one holds (a module-wide list let jaxgd's background compile thread, or a
# user's thread, trace another program's loop with this trace's flag: UnexpectedTracerError, that loss's
# compiled tier broken for the process).
_LOCAL = threading.local()


def _active() -> list:
    """This thread's stack of :func:`only_while` flags."""
    stack = getattr(_LOCAL, "stack", None)
    if stack is None:
        stack = _LOCAL.stack = []
    return stack


@contextlib.contextmanager
def only_while(active: Any) -> Iterator[None]:
    """Inside the block, every :func:`packed_while` traced (a line search's loop, L-BFGS-B's retry) runs only
    where ``active`` (a traced bool) holds: zero iterations elsewhere, its result the loop's initial carry.
    A step that may be stopped (``Solver.step``, a vmapped lane, a masked step in a block) is traced inside
    one, with ``active`` its ``running`` flag: under ``jax.vmap`` a loop runs while any lane's condition holds,
    and a lane that had stopped at its answer ran a failing search of up to 20 evaluations every step for
    the batch (8 Gaussian-process restarts under ``vmap``, ``bfgs``: 10,984 batched evaluations where the
    lanes alone needed 487). Where ``active`` is True the loop is the one it was. Nested blocks: the innermost
    flag alone (a loop traced there runs inside the outer block's step, which runs only where the outer flag
    holds). The flags are this thread's: another thread's traces do not see them."""
    stack = _active()
    stack.append(active)
    try:
        yield
    finally:
        stack.pop()


def packed_while(cond: Callable, body: Callable, carry: Any) -> Any:
    """``lax.while_loop(cond, body, carry)`` with the carry's scalars packed (:class:`Packing`); inside
    :func:`only_while`, only while its flag holds."""
    pack, unpack = codec(carry)
    stack = _active()
    if stack:
        active, test = stack[-1], cond
        cond = lambda c: active & test(c)  # noqa: E731
    return unpack(lax.while_loop(lambda c: cond(unpack(c)), lambda c: pack(body(unpack(c))), pack(carry)))
