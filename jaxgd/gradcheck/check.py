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
import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["GradCheck", "LeafCheck", "check_grad", "format_table"]

PyTree = Any

MSG_FUN_NOT_CALLABLE = "fun must be callable, fun(params, *args) -> scalar; got {type_name}"
MSG_REF_NOT_CALLABLE = "reference must be callable, reference(x, *args) -> gradient pytree, or None; got {type_name}"
MSG_ARGS_NOT_TUPLE = "args must be a tuple (or list) of extra arguments to fun; got {type_name}"
MSG_X_EMPTY = "x has no array leaves: nothing to check"
MSG_X_NOT_FLOAT = "every leaf of x must be a real floating-point array; leaf {path} has dtype {dtype}"
MSG_X_TRACER = "check_grad runs on the host and needs concrete x; leaf {path} is a tracer (call it outside jit/vmap)"
MSG_FUN_NOT_SCALAR = "fun must return a real scalar; it returned shape {shape} and dtype {dtype}"
MSG_REF_STRUCTURE = (
    "reference(x, *args) returned a pytree whose structure differs from x: "
    "missing leaves {missing}, unexpected leaves {extra}; expected {expected}, got {got}"
)
MSG_REF_SHAPE = "reference gradient for leaf {path} has shape {got}; expected {expected} (the shape of that leaf of x)"
MSG_REF_NOT_NUMERIC = "reference gradient for leaf {path} is not a real numeric array: {value!r}"
MSG_BAD_TOL = "{name}={value!r} must be a finite number >= 0"
MSG_BAD_EPS = "eps={value!r} must be a finite number > 0"
MSG_BAD_DIRECTIONS = "directions={value!r} must be None or a positive integer"

#: Default central-difference step scale: cbrt(machine epsilon of float64) ~ 6.1e-6,
#: which balances truncation error O(h^2) against rounding error O(eps/h).
DEFAULT_EPS: float = float(np.finfo(np.float64).eps ** (1.0 / 3.0))
#: Default (rtol, atol) by the dtype the JAX gradient is computed in. Comparisons
#: between the reference and finite differences (both float64) use the float64 pair.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-6, 1e-9),
    "float32": (1e-3, 1e-5),
    "float16": (3e-2, 1e-2),
    "bfloat16": (3e-2, 1e-2),
}
#: A float64 evaluation of fun is trusted to this many ulps of |f|; the resulting
#: rounding noise of a central difference, FD_NOISE_ULPS·eps64·|f|/h, is added to
#: the tolerance of every comparison with finite differences.
FD_NOISE_ULPS: float = 100.0
#: Perturbed points evaluated per compiled (vmapped) call of fun.
FD_CHUNK: int = 64

_EPS64 = float(np.finfo(np.float64).eps)


class LeafCheck(NamedTuple):
    """One row of a :class:`GradCheck`: one leaf, one pair of gradients.

    Attributes:
        path: the leaf's key path (``jax.tree_util.keystr``), ``"x"`` for a bare array.
        comparison: ``"jax~ref"``, ``"jax~fd"`` or ``"ref~fd"``.
        max_abs_err: largest ``|a - b|`` over the leaf's coordinates (or directions).
        max_rel_err: largest ``|a - b| / max(|a|, |b|)`` (0 where both are 0).
        worst_index: index of the coordinate (or ``(k,)`` of the direction) closest
            to failing, i.e. with the largest ``|a - b| / tolerance``.
        worst_values: ``(a, b)`` at ``worst_index``.
        score: largest ``|a - b| / tolerance``; the row passes when it is <= 1.
        directional: whether the row compares directional derivatives ``vᵀg``.
        passed: ``|a - b| <= atol + rtol·max(|a|, |b|) (+ FD noise)`` everywhere.
    """

    path: str
    comparison: str
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple[int, ...]
    worst_values: tuple[float, float]
    score: float
    directional: bool
    passed: bool

    @property
    def worst(self) -> str:
        """``worst_index`` for people: ``"(2, 1)"``, ``"()"`` or ``"v3"`` for direction 3."""
        if self.directional:
            return f"v{self.worst_index[0]}"
        return "(" + ", ".join(map(str, self.worst_index)) + ("," if len(self.worst_index) == 1 else "") + ")"


@dataclasses.dataclass(frozen=True)
class GradCheck:
    """The report of :func:`check_grad`; ``bool(report)`` is the verdict.

    Attributes:
        rows: one :class:`LeafCheck` per leaf and compared pair.
        dtype: dtype(s) of ``x``, in which ``jax.grad`` was computed.
        eps: finite-difference step scale.
        rtol, atol: tolerances for comparisons involving the JAX gradient.
        rtol64, atol64: tolerances for the reference-vs-FD comparison (float64).
        directions: number of random directions per leaf, or ``None`` (full FD).
    """

    rows: tuple[LeafCheck, ...]
    dtype: str
    eps: float
    rtol: float
    atol: float
    rtol64: float
    atol64: float
    directions: int | None

    @property
    def passed(self) -> bool:
        """Whether every row passed."""
        return all(row.passed for row in self.rows)

    @property
    def failures(self) -> tuple[LeafCheck, ...]:
        """The rows that failed."""
        return tuple(row for row in self.rows if not row.passed)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mode = f"{self.directions} random directions per leaf" if self.directions else "every coordinate"
        head = (
            f"gradient check: {'PASS' if self.passed else 'FAIL'}  (x {self.dtype}; central differences in "
            f"float64 over {mode}, eps={self.eps:.2g}; rtol={self.rtol:.2g}, atol={self.atol:.2g}"
            + ("" if (self.rtol, self.atol) == (self.rtol64, self.atol64) else f"; ref~fd rtol={self.rtol64:.2g}, atol={self.atol64:.2g}")
            + ")"
        )
        return head + "\n" + format_table(ROW_HEADERS, [row_cells(r) for r in self.rows])


ROW_HEADERS: tuple[str, ...] = ("leaf", "compare", "max abs err", "max rel err", "err/tol", "worst", "a", "b", "verdict")


def row_cells(row: LeafCheck) -> list[str]:
    """The table cells of one :class:`LeafCheck` (in :data:`ROW_HEADERS` order)."""
    a, b = row.worst_values
    return [
        row.path,
        row.comparison,
        f"{row.max_abs_err:.2e}",
        f"{row.max_rel_err:.2e}",
        f"{row.score:.2g}",
        row.worst,
        f"{a:.6g}",
        f"{b:.6g}",
        "PASS" if row.passed else "FAIL",
    ]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned plain-text table with a dashed rule under the header.

    Args:
        headers: column titles.
        rows: the cells, each row as long as ``headers``.

    Returns:
        The table as one string (no trailing newline).

    Raises:
        ValueError: a row of the wrong length.
    """
    for r in rows:
        if len(r) != len(headers):
            raise ValueError(f"row {list(r)!r} has {len(r)} cells; expected {len(headers)}")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- validation


def _default_tol(dtypes: Sequence[np.dtype]) -> tuple[float, float]:
    """The loosest default (rtol, atol) among the dtypes of x's leaves."""
    pairs = [DEFAULT_TOLERANCES.get(np.dtype(dt).name, DEFAULT_TOLERANCES["float16"]) for dt in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _check_number(name: str, value: float | None, *, positive: bool = False) -> None:
    if value is None:
        return
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise ValueError(MSG_BAD_EPS.format(value=value) if positive else MSG_BAD_TOL.format(name=name, value=value))


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
        if isinstance(a, (jax.Array, np.ndarray, np.generic, float)):
            a = np.asarray(a)
            return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a
        return a

    return jax.tree_util.tree_map(cast, tree)


@contextlib.contextmanager
def _x64() -> Iterator[None]:
    """Temporarily enable JAX's x64 mode (``jax.enable_x64`` on newer JAX, the
    ``jax.experimental`` context manager on older releases)."""
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # pragma: no cover - only on old JAX
        from jax.experimental import enable_x64 as enable  # type: ignore[attr-defined,no-redef]
        with enable():
            yield
        return
    with enable(True):
        yield


# --------------------------------------------------------------------------- comparison


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
    tol = atol + rtol * scale + noise
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
    )


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _eval_batch(
    fun: Callable[..., jax.Array], treedef: Any, shapes: tuple[tuple[int, ...], ...], points: jax.Array, *args: Any
) -> jax.Array:
    """fun at each row of ``points`` (flat float64 parameter vectors), vmapped.

    ``fun``, the tree structure and the leaf shapes are static, so repeated checks
    of the same function at the same shapes re-use one compiled program.
    """

    def one(v: jax.Array) -> jax.Array:
        leaves, start = [], 0
        for shape in shapes:
            size = math.prod(shape)
            leaves.append(v[start : start + size].reshape(shape))
            start += size
        return fun(jax.tree_util.tree_unflatten(treedef, leaves), *args)

    return jax.vmap(one)(points)


def _call(fun: Callable[..., Any], *a: Any) -> Any:
    return fun(*a)


@functools.partial(jax.jit, static_argnums=0)
def _jit_grad(fun: Callable[..., jax.Array], x: PyTree, *args: Any) -> PyTree:
    return jax.grad(fun)(x, *args)


def _fd_values(
    f: Callable[[np.ndarray], np.ndarray], make_points: Callable[[int, int], np.ndarray], count: int
) -> np.ndarray:
    """``f`` at the points ``make_points(start, stop)`` for ``0 <= start < stop <= count``.

    Points are built chunk by chunk (never all at once) and padded to a fixed
    chunk size, so the batched evaluation compiles once.
    """
    out = []
    for start in range(0, count, FD_CHUNK):
        stop = min(start + FD_CHUNK, count)
        chunk = make_points(start, stop)
        if stop - start < FD_CHUNK:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], FD_CHUNK - (stop - start), axis=0)])
        out.append(f(chunk)[: stop - start])
    return np.concatenate(out) if out else np.zeros(0)


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
    against the :math:`O(\\epsilon/h)` rounding error). With ``directions=k`` it
    instead draws, per leaf, ``k`` random unit vectors :math:`v` (seeded by
    ``seed``) and compares :math:`v^\\top g` with
    :math:`(f(x + h v) - f(x - h v)) / 2h`, :math:`h = \\varepsilon \\max(1, \\max_i |x_i|)`:
    ``2k`` evaluations per leaf instead of two per coordinate, for large leaves.

    A pair :math:`(a, b)` passes where
    :math:`|a - b| \\le \\mathrm{atol} + \\mathrm{rtol}\\max(|a|, |b|) + \\nu`,
    with :math:`\\nu = 0` for ``jax~ref`` and, against finite differences, the
    rounding noise :math:`\\nu_i` = ``FD_NOISE_ULPS`` :math:`\\cdot\\,\\epsilon_{64}
    \\max|f(x \\pm h_i e_i)| / h_i`. Defaults for ``rtol``/``atol`` follow the
    dtype ``jax.grad`` ran in (:data:`DEFAULT_TOLERANCES`: float64 ``1e-6``/``1e-9``,
    float32 ``1e-3``/``1e-5``); ``ref~fd`` is all float64 and uses the float64
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
        x: the point, a pytree of real floating-point arrays.
        args: extra arguments to ``fun`` (and ``reference``).
        reference: optional hand-written gradient ``reference(x, *args)`` returning
            a pytree of the structure and shapes of ``x``; it receives float64
            NumPy copies of ``x`` and of the floating-point leaves of ``args``.
        eps: finite-difference step scale (default :data:`DEFAULT_EPS`).
        rtol: relative tolerance (default by dtype, see above).
        atol: absolute tolerance (default by dtype, see above).
        directions: ``None`` for every coordinate, or ``k`` random directions per leaf.
        seed: seed of the NumPy generator drawing the directions.
        precision: the matrix-product precision ``jax.grad`` runs at
            ("highest", "high", "default"), or None for the platform default.

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
        TypeError: ``fun`` or ``reference`` not callable, ``args`` not a tuple,
            a non-floating or traced leaf in ``x``.
        ValueError: bad ``eps``/``rtol``/``atol``/``directions``, an empty ``x``,
            ``fun`` not returning a scalar, or a reference gradient of the wrong
            structure or shape (the message names the leaf and both shapes).
    """
    # ---- host-side validation, before anything is compiled
    if not callable(fun):
        raise TypeError(MSG_FUN_NOT_CALLABLE.format(type_name=type(fun).__name__))
    if reference is not None and not callable(reference):
        raise TypeError(MSG_REF_NOT_CALLABLE.format(type_name=type(reference).__name__))
    if not isinstance(args, (tuple, list)):
        raise TypeError(MSG_ARGS_NOT_TUPLE.format(type_name=type(args).__name__))
    args = tuple(args)
    _check_number("eps", eps, positive=True)
    _check_number("rtol", rtol)
    _check_number("atol", atol)
    if directions is not None and (
        isinstance(directions, bool) or not isinstance(directions, (int, np.integer)) or directions < 1
    ):
        raise ValueError(MSG_BAD_DIRECTIONS.format(value=directions))
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(x)
    if not with_paths:
        raise ValueError(MSG_X_EMPTY)
    paths = [_leaf_name(p) for p, _ in with_paths]
    for path, (_, leaf) in zip(paths, with_paths):
        try:
            dtype = np.asarray(leaf).dtype
        except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            raise TypeError(MSG_X_TRACER.format(path=path)) from None
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(MSG_X_NOT_FLOAT.format(path=path, dtype=dtype))
    x = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(leaf) for _, leaf in with_paths])
    out = jax.eval_shape(fun, x, *args)
    if not (hasattr(out, "shape") and out.shape == () and jnp.issubdtype(out.dtype, jnp.floating)):
        raise ValueError(MSG_FUN_NOT_SCALAR.format(shape=getattr(out, "shape", None), dtype=getattr(out, "dtype", type(out).__name__)))
    try:
        hash(fun)
    except TypeError:  # an unhashable callable object: wrap it (no compile cache across calls)
        fun = functools.partial(_call, fun)
    x64_tree = _to_float64(x)
    args64 = _to_float64(args)
    ref = None if reference is None else _validate_reference(reference(x64_tree, *args64), x)

    dtypes = [leaf.dtype for leaf in jax.tree_util.tree_leaves(x)]
    d_rtol, d_atol = _default_tol(dtypes)
    rtol_j = d_rtol if rtol is None else float(rtol)
    atol_j = d_atol if atol is None else float(atol)
    rtol_r = DEFAULT_TOLERANCES["float64"][0] if rtol is None else float(rtol)
    atol_r = DEFAULT_TOLERANCES["float64"][1] if atol is None else float(atol)
    eps = DEFAULT_EPS if eps is None else float(eps)

    # ---- the three gradients
    with (jax.default_matmul_precision(precision) if precision else contextlib.nullcontext()):
        g_jax = [np.asarray(g, dtype=np.float64) for g in jax.tree_util.tree_leaves(_jit_grad(fun, x, *args))]
    leaves64 = jax.tree_util.tree_leaves(x64_tree)
    shapes = tuple(tuple(leaf.shape) for leaf in leaves64)
    z = np.concatenate([leaf.ravel() for leaf in leaves64])
    offsets = np.cumsum([0] + [leaf.size for leaf in leaves64])
    with _x64():
        jargs = jax.tree_util.tree_map(lambda a: jnp.asarray(a) if isinstance(a, np.ndarray) else a, args64)

        def f_batch(points: np.ndarray) -> np.ndarray:
            return np.asarray(_eval_batch(fun, treedef, shapes, jnp.asarray(points), *jargs), dtype=np.float64)

        if directions is None:
            fd, noise = _fd_coordinates(f_batch, z, eps)
        else:
            rng = np.random.default_rng(seed)
            fd, noise, V = _fd_directions(f_batch, z, eps, offsets, directions, rng)

    # ---- compare, leaf by leaf
    rows: list[LeafCheck] = []
    for i, path in enumerate(paths):
        lo, hi = offsets[i], offsets[i + 1]
        shape = g_jax[i].shape
        if directions is None:
            fd_i, nu_i = fd[lo:hi].reshape(shape), noise[lo:hi].reshape(shape)
            gj, gr = g_jax[i], None if ref is None else ref[i]
        else:
            fd_i, nu_i = fd[i], noise[i]
            gj, gr = V[i] @ g_jax[i].ravel(), None if ref is None else V[i] @ ref[i].ravel()
        if ref is not None:
            rows.append(_compare(path, "jax~ref", g_jax[i], ref[i], rtol_j, atol_j, 0.0, False))
        rows.append(_compare(path, "jax~fd", gj, fd_i, rtol_j, atol_j, nu_i, directions is not None))
        if gr is not None:
            rows.append(_compare(path, "ref~fd", gr, fd_i, rtol_r, atol_r, nu_i, directions is not None))
    dtype_names = sorted({np.dtype(dt).name for dt in dtypes})
    return GradCheck(tuple(rows), "/".join(dtype_names), eps, rtol_j, atol_j, rtol_r, atol_r, directions)


def _fd_coordinates(
    f: Callable[[np.ndarray], np.ndarray], z: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences along every coordinate of ``z``, and their rounding noise."""
    n = z.size
    h = eps * np.maximum(1.0, np.abs(z))
    # Exactly representable steps: (z + h) - z may differ from h by rounding.
    up, down = z + h, z - h

    def points(start: int, stop: int) -> np.ndarray:
        rows = np.repeat(z[None, :], stop - start, axis=0)
        for r, j in enumerate(range(start, stop)):
            i = j % n
            rows[r, i] = up[i] if j < n else down[i]
        return rows

    vals = _fd_values(f, points, 2 * n)
    f_plus, f_minus = vals[:n], vals[n:]
    width = up - down
    fd = (f_plus - f_minus) / width
    noise = FD_NOISE_ULPS * _EPS64 * np.maximum(np.abs(f_plus), np.abs(f_minus)) / (0.5 * width)
    return fd, noise


def _fd_directions(
    f: Callable[[np.ndarray], np.ndarray],
    z: np.ndarray,
    eps: float,
    offsets: np.ndarray,
    k: int,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Central differences along ``k`` random unit directions inside each leaf."""
    dirs, steps = [], []
    for lo, hi in zip(offsets[:-1], offsets[1:]):
        V = rng.standard_normal((k, hi - lo))
        V /= np.maximum(np.linalg.norm(V, axis=1, keepdims=True), np.finfo(np.float64).tiny)
        dirs.append(V)
        steps.append(eps * max(1.0, float(np.max(np.abs(z[lo:hi]), initial=0.0))))

    def points(start: int, stop: int) -> np.ndarray:
        rows = np.repeat(z[None, :], stop - start, axis=0)
        for r, j in enumerate(range(start, stop)):
            leaf, rest = divmod(j, 2 * k)
            sign, m = (1.0, rest) if rest < k else (-1.0, rest - k)
            lo, hi = offsets[leaf], offsets[leaf + 1]
            rows[r, lo:hi] += sign * steps[leaf] * dirs[leaf][m]
        return rows

    vals = _fd_values(f, points, 2 * k * len(dirs))
    fd, noise = [], []
    for i, h in enumerate(steps):
        v = vals[2 * k * i : 2 * k * (i + 1)]
        fd.append((v[:k] - v[k:]) / (2.0 * h))
        noise.append(FD_NOISE_ULPS * _EPS64 * np.maximum(np.abs(v[:k]), np.abs(v[k:])) / h)
    return fd, noise, dirs
