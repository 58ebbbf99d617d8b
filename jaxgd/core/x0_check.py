"""The starting point's host checks (``minimize``'s ``x0``, ``Solver.init``'s, ``fit``'s ``params``): every concrete
leaf finite, and finite in the dtype JAX runs it in (a float64 NumPy leaf runs in float32 unless x64 is on), before
anything compiles."""

from __future__ import annotations

import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _bounded, _tree, _validate
from .._types import Params

NONFINITE_X0 = "{name} leaf {path} contains NaN or Inf"
X0_OVERFLOWS = (
    "{name} leaf {path} overflows {dtype}, the dtype JAX gives it (a float64 NumPy array runs in float32 unless "
    "jax_enable_x64 is on): its largest magnitude {big:.4g} is past {dtype}'s {most:.4g}; scale the problem, or "
    "enable x64 (jax.config.update('jax_enable_x64', True))"
)


def _finite(leaf: Any) -> bool:
    """Whether a concrete leaf is all finite, checked on the host.

    An accelerator array on one device is copied to the host for the check: a
    device-side reduction would compile a small program (per shape) before the
    bad input is reported. A leaf on several devices (sharded or replicated) is
    reduced where it lives instead (``_all_finite``, compiled once per shape):
    one spread over several processes cannot be gathered. A ``jax.Array`` is
    immutable, so a verdict of "finite" is remembered for the array object (a
    weak reference, the last 64): a repeated call with the same ``x0`` skips
    the check and the copy (5-30 us a leaf here, benchmarks E).
    """
    is_jax = isinstance(leaf, jax.Array)
    if is_jax:
        ref = _FINITE.get(id(leaf))
        if ref is not None and ref() is leaf:
            return True
    if _tree.on_several_devices(leaf):
        # sharded or replicated over several devices: reduced where it lives (one small program per shape), not
        # gathered to the host (an array spread over several processes cannot be, and a large one should not be)
        ok = bool(_all_finite(leaf))
    else:
        ok = bool(np.isfinite(np.asarray(leaf)).all())
    if ok and is_jax:
        _FINITE[id(leaf)] = weakref.ref(leaf)
    return ok


_FINITE = _bounded.Bounded(64)  # id(array) -> weakref(array) of the last 64 arrays found finite
_all_finite = jax.jit(lambda a: jnp.isfinite(a).all())


def _check_narrowed(host: np.ndarray, dtype: Any, name: str, x0: Any, i: int) -> None:
    """Raise :data:`X0_OVERFLOWS` where the finite ``host`` leaf overflows ``dtype`` (a float64 1e308 in float32:
    ``params`` came back Inf, status ``NONFINITE``)."""
    if np.issubdtype(dtype, np.floating) and host.size and np.isfinite(host).all():
        most = float(np.finfo(dtype).max)
        big = float(np.max(np.abs(host)))
        if big > most:
            raise ValueError(X0_OVERFLOWS.format(name=name, path=_tree.leaf_path_at(x0, i), dtype=np.dtype(dtype).name,
                                                 big=big, most=most))


def as_params(x0: Any, name: str = "x0") -> Params:
    """Convert ``x0``'s leaves to arrays and check that they are real floats
    (errors call the argument ``name``).

    Raises:
      ValueError: an empty ``x0`` or a non-finite concrete leaf.
      TypeError: an integer, boolean or complex leaf.
    """
    return _as_params(x0, name)[0]


def _as_params(x0: Any, name: str = "x0") -> tuple[Params, bool]:
    """:func:`as_params`, and whether every leaf is concrete (no tracer)."""
    leaves, treedef, dtypes = _validate.params(name, x0)
    out, concrete = [], True
    for i, (leaf, dtype) in enumerate(zip(leaves, dtypes)):
        arr = checked_leaf(leaf, dtype, name, x0, i)
        concrete = concrete and not isinstance(arr, jax.core.Tracer)
        out.append(arr)
    return jax.tree_util.tree_unflatten(treedef, out), concrete


def checked_leaf(leaf: Any, dtype: Any, name: str, tree: Any, i: int) -> Any:
    """``tree``'s ``i``-th leaf as a strongly typed array of ``dtype`` (``_tree.strong_leaf``), refused where it is
    concrete and not finite, or finite and past the largest number of the dtype JAX gives it (errors call the
    argument ``name``)."""
    narrow = jax.dtypes.canonicalize_dtype(dtype)
    if not isinstance(leaf, jax.Array) and narrow != dtype:  # (a float64 NumPy leaf with x64 off: float32)
        _check_narrowed(np.asarray(leaf, dtype), narrow, name, tree, i)
    arr, host = _tree.strong_leaf(leaf, dtype)  # (strongly typed, always; a host copy is checked on the host)
    # (under a trace, jit's or eval_shape's, device_put gives a tracer: a NumPy or weak leaf is still
    # checked on the host; a weak jax.Array leaf was put through np.asarray of the tracer, an error)
    traced = isinstance(arr, jax.core.Tracer)
    if (host is not None or not traced) and not _finite(arr if host is None else host):
        raise ValueError(NONFINITE_X0.format(name=name, path=_tree.leaf_path_at(tree, i)))
    return arr
