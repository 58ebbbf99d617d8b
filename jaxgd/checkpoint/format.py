"""Checkpoints: save any pytree of arrays to one file and load it back, without pickle.

A checkpoint is what a run needs to continue bit for bit: for
:func:`jaxgd.minimize` and :class:`jaxgd.Solver` it is the :class:`jaxgd.Result`
(parameters, the full :class:`jaxgd.SolverState` with optimizer state, step
count and hence schedule position, and the history buffers so far); for
:func:`jaxgd.fit` it is the :class:`jaxgd.FitResult` (which also holds the
PRNG key, the epoch, the best-so-far parameters and loss and the patience
counter). The functions here know nothing about solvers: they take any
pytree, so a user's own training loop can store its state the same way.

Format: an ``.npz`` archive (``numpy.savez``, uncompressed zip) holding one
array per leaf and a JSON header (format, version, tree paths, shapes,
dtypes, user metadata) stored as a ``uint8`` array. Why this and not a
format library: the runtime dependencies are jax, numpy, optax and tqdm, and
neither orbax nor safetensors is among them; ``.npz`` read with
``numpy.load(..., allow_pickle=False)`` is numpy's documented code-free
format, every zip member carries a CRC-32 (so a flipped byte is detected),
and the zip central directory sits at the end (so a truncated file is
detected). The tree structure is never unpickled: it comes from ``like``, a
pytree the caller builds (``jax.eval_shape`` output works), and every leaf's
path, shape and dtype is checked against it.

Writes are atomic: the archive goes to a temporary file in the target's
directory, is flushed and ``fsync``-ed, then ``os.replace``-d over the
target, so a crash mid-write leaves the previous checkpoint intact. A process
killed mid-write leaves its temporary file (``.NAME.XXXXXXXX.tmp``); the
target's next successful save removes those untouched for
``STALE_TEMP_SECONDS`` (10 minutes: a younger one may be a save in progress).

Dtypes numpy cannot name natively (``bfloat16`` and the other ``ml_dtypes``)
are stored as same-width unsigned integers and viewed back on load; typed
PRNG keys (``jax.random.key``) are stored as their key data and re-wrapped
with the recorded implementation. JAX's weak types are not recorded: loaded
leaves are strongly typed (jaxgd's own states hold no weakly typed leaves).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
import zipfile
import zlib
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._types import PyTree

FORMAT = "jaxgd-checkpoint"
VERSION = 1
_HEADER = "__jaxgd_header__"
_MAX_LISTED = 5
# A temporary file of a save killed mid-write (``.NAME.XXXXXXXX.tmp`` next to the target) untouched this
# long is removed by the target's next successful save; a younger one may be another process's save in
# progress (its writes keep it recent), and is left.
STALE_TEMP_SECONDS = 600.0

BAD_PATH_TYPE = "{name} must be a str or os.PathLike, got {kind}"
NO_DIRECTORY = "{name}: directory {directory!r} does not exist"
NO_FILE = "{name}: no checkpoint file at {path!r}"
IS_DIRECTORY = "{name}: {path!r} is a directory; pass a file path (a file inside it, say)"
EMPTY_PATH = "{name} is the empty string; pass a file path"
BAD_METADATA = "metadata must be a JSON-serialisable dict, got {what}"
EMPTY_TREE = "tree must contain at least one array leaf, got {what}"
TRACED_LEAF = "tree leaf {path} is a tracer: save_checkpoint runs on the host, call it outside jax.jit/jax.vmap"
BAD_LEAF = "tree leaf {path} is a {kind}, not an array; checkpoints hold arrays only (no code, no objects)"
BAD_LEAF_DTYPE = "tree leaf {path} has dtype {dtype}, which a checkpoint cannot hold (numeric and PRNG-key arrays only)"
NARROWED = (
    "checkpoint {path!r}: leaf {leaf} is {dtype} in the file, and JAX's 64-bit mode is off: as {canonical} its "
    "values would change ({example}). Turn the mode on before loading: jax.config.update('jax_enable_x64', True)"
)
WIDE_WITH_X64_OFF = (
    "{what}: the checkpoint holds 64-bit leaves ({leaves}), written with JAX's 64-bit mode on, and the mode is "
    "off now: {expected} holds them in 32 bits. Turn the mode on before loading: "
    "jax.config.update('jax_enable_x64', True)"
)
WIDE_NOTE = (
    "(The checkpoint also holds 64-bit leaves ({leaves}), written with JAX's 64-bit mode on, which is off now: "
    "loading them needs jax.config.update('jax_enable_x64', True) as well.)"
)
# what zipfile and zlib raise on a corrupted member (a flipped byte can name an unknown zip version or
# compression method: NotImplementedError)
_READ_ERRORS = (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, zlib.error)
BAD_LIKE_LEAF = "{what} leaf {path} is a {kind}; {what} must be a pytree of arrays or jax.ShapeDtypeStruct"
NOT_READABLE = "{path!r} is not a readable jaxgd checkpoint (truncated, or not an .npz file): {error}"
NO_HEADER = "{path!r} is an .npz file but not a jaxgd checkpoint (no {header} member)"
BAD_HEADER = "{path!r}: the checkpoint header is corrupted: {error}"
BAD_VERSION = "{path!r}: checkpoint format {found!r} version {version!r} is not supported (this jaxgd reads {fmt!r} version {supported})"
BAD_MEMBER = "{path!r}: leaf {leaf} is corrupted or truncated: {error}"
STRUCTURE_DIFFERS = "{what}: tree structure differs from {expected}: {details}"
LEAF_DIFFERS = "{what}: leaves differ from {expected}: {details}"


class CheckpointError(ValueError):
    """A file that is not a readable jaxgd checkpoint: truncated, corrupted,
    not an ``.npz`` archive, or of an unknown format version."""


class TreeMismatchError(ValueError):
    """A checkpoint (or a result to resume from) whose tree structure, leaf
    shapes or dtypes differ from what was expected; the message names each
    differing leaf path with the expected and the found shape and dtype."""


# -- paths -----------------------------------------------------------------
def check_path(name: str, path: Any, *, must_exist: bool) -> str:
    """Validate a file path argument on the host; return it as ``str``.

    Raises:
      TypeError: ``path`` is not a str or ``os.PathLike``.
      ValueError: an empty path.
      FileNotFoundError: ``must_exist`` and no file is there, or the
        directory to write into does not exist.
      IsADirectoryError: not ``must_exist`` and ``path`` is a directory (the
        save at the end of a run failed there, the run's result lost).
    """
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(BAD_PATH_TYPE.format(name=name, kind=type(path).__name__))
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if path == "":
        raise ValueError(EMPTY_PATH.format(name=name))
    if must_exist:
        if not os.path.isfile(path):
            raise FileNotFoundError(NO_FILE.format(name=name, path=path))
    else:
        if os.path.isdir(path):
            raise IsADirectoryError(IS_DIRECTORY.format(name=name, path=path))
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(NO_DIRECTORY.format(name=name, directory=directory))
    return path


def _keystr(path: Any) -> str:
    return jax.tree_util.keystr(path) or "(root)"


def _is_key(dtype: Any) -> bool:
    return jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _native(dtype: np.dtype) -> bool:
    """Dtypes ``.npy`` stores without pickle: numpy's own numeric kinds."""
    return dtype.kind in "biufc" and dtype.isbuiltin == 1


# -- saving ----------------------------------------------------------------
def _encode(path: str, leaf: Any) -> tuple[np.ndarray, dict]:
    """One leaf -> (plain numpy array, header entry)."""
    if isinstance(leaf, jax.core.Tracer):
        raise TypeError(TRACED_LEAF.format(path=path))
    if isinstance(leaf, np.generic):
        leaf = np.asarray(leaf)
    elif isinstance(leaf, (bool, int, float, complex)):
        leaf = np.asarray(leaf, _number_dtype(leaf))
    if not isinstance(leaf, (jax.Array, np.ndarray)):
        raise TypeError(BAD_LEAF.format(path=path, kind=type(leaf).__name__))
    if _is_key(leaf.dtype):
        impl = str(jax.random.key_impl(leaf))
        data = np.asarray(jax.random.key_data(leaf))
        entry = {"path": path, "shape": list(leaf.shape), "dtype": str(leaf.dtype), "key_impl": impl}
        return data, entry
    arr = np.asarray(leaf)
    if arr.dtype.kind in "biufc" and not arr.dtype.isnative:  # (a byte-swapped array: stored in native order)
        arr = arr.astype(np.dtype(arr.dtype.name))
    entry = {"path": path, "shape": list(arr.shape), "dtype": arr.dtype.name}
    if _native(arr.dtype):
        return arr, entry
    if arr.dtype.kind == "V" and arr.dtype.itemsize in (1, 2, 4, 8) and arr.dtype.fields is None:
        # ml_dtypes (bfloat16, float8_*): store the bits, view them back on load.
        return arr.view(f"u{arr.dtype.itemsize}"), dict(entry, stored_as=f"uint{8 * arr.dtype.itemsize}")
    raise TypeError(BAD_LEAF_DTYPE.format(path=path, dtype=arr.dtype))


def _temp_name(base: str) -> re.Pattern:
    """The names of ``base``'s temporary files: ``tempfile.mkstemp``'s 8 random characters between
    ``.BASE.`` and ``.tmp`` (another target's, ``.BASE.x.XXXXXXXX.tmp``, has a dot there: never matched)."""
    return re.compile(re.escape(f".{base}.") + r"[a-z0-9_]{8}" + re.escape(".tmp"))


def _sweep_stale(directory: str, base: str, now: float) -> None:
    """Remove the temporary files of target ``base`` that a save killed mid-write left behind: regular
    files of that name pattern (:func:`_temp_name`) untouched for ``STALE_TEMP_SECONDS`` before ``now``
    (the modification time of the file just saved: the file server's clock, as theirs). A save in
    progress writes its file as it goes, so its modification time stays recent; one younger than
    that is left alone (another process may be writing it now). Errors are ignored (the save has
    already succeeded)."""
    pattern = _temp_name(base)
    with contextlib.suppress(OSError):
        with os.scandir(directory) as entries:
            for entry in entries:
                if not pattern.fullmatch(entry.name):
                    continue
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_TEMP_SECONDS:
                        os.unlink(entry.path)


def _atomic_write(path: str, write: Callable[[Any], None]) -> None:
    """Write through ``write(fileobj)`` into a temporary file next to ``path``,
    fsync it, then rename it over ``path`` (``os.replace`` is atomic on POSIX
    and Windows); on any failure the temporary file is removed and ``path``
    is untouched. After a successful save, the temporary files of ``path``
    that saves killed mid-write left behind are removed (:func:`_sweep_stale`)."""
    path = os.path.realpath(path)  # (through a symlink to its target: os.replace would replace the link)
    directory = os.path.dirname(path)
    base = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix="." + base + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (POSIX; directories cannot be opened on Windows).
    with contextlib.suppress(OSError, AttributeError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    # The age of a temporary file against the modification time of the file just written, not this host's
    # clock: both are the file server's (on NFS a client clock ahead would make another host's live save old).
    with contextlib.suppress(OSError):
        _sweep_stale(directory, base, os.stat(path).st_mtime)


def save_checkpoint(path: str | os.PathLike, tree: PyTree, *, metadata: Optional[dict] = None) -> str:
    """Save a pytree of arrays to ``path`` atomically, in a format that holds no code.

    ``tree`` is typically a :class:`jaxgd.Result` (what ``minimize`` writes
    with ``checkpoint_path=``), but any pytree of arrays works: a
    ``(params, opt_state, key)`` tuple, a dict, a NamedTuple. The file is an
    ``.npz`` archive with a JSON header (see the module docstring for why);
    it is written to a temporary file in the same directory, flushed,
    ``fsync``-ed and renamed over ``path``, so a crash mid-write leaves any
    previous checkpoint at ``path`` intact. The temporary file a process killed
    mid-write leaves (``.NAME.XXXXXXXX.tmp`` beside ``path``) is removed by a
    later successful save to ``path`` once it is 10 minutes old (a younger one
    may be another process's save in progress).

    Args:
      path: the file to write (no suffix is added).
      tree: a pytree whose leaves are arrays (jax or numpy, any numeric
        dtype, ``bfloat16`` and typed PRNG keys included) or Python numbers
        (stored as JAX holds them: float32 and int32 with x64 off).
      metadata: an optional JSON-serialisable dict stored in the header
        (read it back with :func:`checkpoint_info`).

    Returns:
      ``path`` as a ``str``.

    Raises:
      TypeError: ``path`` of the wrong type; a leaf that is not an array (a
        function, a string, an object array) or a tracer; non-JSON metadata.
      ValueError: a tree with no leaves.
      FileNotFoundError: the directory of ``path`` does not exist.
      IsADirectoryError: ``path`` is a directory.

    Example:
      >>> import os, tempfile, jax.numpy as jnp, jaxgd
      >>> p = os.path.join(tempfile.mkdtemp(), "state.ckpt")
      >>> _ = jaxgd.save_checkpoint(p, {"w": jnp.arange(3.0), "step": jnp.asarray(7)})
      >>> int(jaxgd.load_checkpoint(p, like={"w": jnp.zeros(3), "step": jnp.asarray(0)})["step"])
      7
    """
    path = check_path("path", path, must_exist=False)
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(BAD_METADATA.format(what=type(metadata).__name__))
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    if not pairs:
        raise ValueError(EMPTY_TREE.format(what=f"a pytree with no leaves ({treedef})"))
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for i, (p, leaf) in enumerate(pairs):
        arr, entry = _encode(_keystr(p), leaf)
        entry["member"] = f"leaf_{i:05d}"
        arrays[entry["member"]] = arr
        entries.append(entry)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "treedef": str(treedef),
        "leaves": entries,
        "metadata": metadata or {},
    }
    try:
        blob = json.dumps(header, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(BAD_METADATA.format(what=f"{metadata!r} ({e})")) from None
    arrays[_HEADER] = np.frombuffer(blob, dtype=np.uint8)
    _atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


# -- loading ---------------------------------------------------------------
class _Archive:
    """An open checkpoint: the parsed header and lazy access to the leaves."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "rb")  # noqa: SIM115  (closed by close(), also on every error below)
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise

    def _open(self) -> None:
        path = self.path
        head = self._file.read(6)
        self._file.seek(0)
        if not head.startswith((b"PK", b"\x93NUMPY")):  # neither a zip archive (.npz) nor an .npy array
            # (np.load would try a pickle next and say the file "contains pickled data")
            what = "the file is empty" if not head else f"its first bytes {head!r} are not an .npz archive's (PK...)"
            raise CheckpointError(NOT_READABLE.format(path=path, error=what))
        try:
            self._npz = np.load(self._file, allow_pickle=False)
        except _READ_ERRORS as e:
            raise CheckpointError(NOT_READABLE.format(path=path, error=e)) from None
        if not isinstance(self._npz, np.lib.npyio.NpzFile):
            raise CheckpointError(NOT_READABLE.format(path=path, error="a single .npy array, not an archive"))
        if _HEADER not in self._npz.files:
            raise CheckpointError(NO_HEADER.format(path=path, header=_HEADER))
        try:
            raw = self._npz[_HEADER]
            header = json.loads(raw.tobytes().decode("utf-8"))
            fmt, version, leaves = header["format"], header["version"], header["leaves"]
            for e in leaves:
                e["path"], e["member"], e["dtype"], e["shape"] = (
                    str(e["path"]), str(e["member"]), str(e["dtype"]), tuple(int(n) for n in e["shape"])
                )
        except Exception as e:  # any malformation of the header: report it as corruption
            raise CheckpointError(BAD_HEADER.format(path=path, error=f"{type(e).__name__}: {e}")) from None
        if fmt != FORMAT or version != VERSION:
            raise CheckpointError(BAD_VERSION.format(path=path, found=fmt, version=version, fmt=FORMAT, supported=VERSION))
        self.header = header
        self.leaves: list[dict] = leaves

    def close(self) -> None:
        if hasattr(self, "_npz") and hasattr(self._npz, "close"):
            self._npz.close()
        self._file.close()

    def read(self, entry: dict) -> Any:
        """Read one leaf, check it against its header entry, decode it."""
        try:
            arr = self._npz[entry["member"]]
        except (*_READ_ERRORS, KeyError) as e:
            raise CheckpointError(BAD_MEMBER.format(path=self.path, leaf=entry["path"], error=e)) from None
        if "key_impl" in entry:
            try:
                key = jax.random.wrap_key_data(jax.device_put(arr), impl=entry["key_impl"])
            except Exception as e:
                raise CheckpointError(BAD_MEMBER.format(path=self.path, leaf=entry["path"], error=e)) from None
            got = (tuple(key.shape), str(key.dtype))
            value = key
        else:
            if "stored_as" in entry:
                arr = arr.view(jnp.dtype(entry["dtype"]))
            got = (tuple(arr.shape), arr.dtype.name)
            value = arr
        if got != (entry["shape"], entry["dtype"]):
            error = f"header says shape {entry['shape']} dtype {entry['dtype']}, data has shape {got[0]} dtype {got[1]}"
            raise CheckpointError(BAD_MEMBER.format(path=self.path, leaf=entry["path"], error=error))
        return value


def _number_dtype(leaf: Any) -> np.dtype:
    """A Python number's dtype as JAX holds it (float32 and int32 with x64 off): saved as float64, a
    Python float was a leaf a load with x64 off refuses, and save-then-load in one process failed."""
    return jax.dtypes.canonicalize_dtype(np.asarray(leaf).dtype)


def _spec(leaf: Any) -> tuple[tuple[int, ...], str]:
    dtype = getattr(leaf, "dtype", None)
    dtype = _number_dtype(leaf) if dtype is None else dtype
    name = str(dtype) if _is_key(dtype) else np.dtype(dtype).name
    return tuple(np.shape(leaf)), name


def describe(tree: PyTree, *, what: str = "like") -> list[tuple[str, tuple[int, ...], str]]:
    """``[(path, shape, dtype name), ...]`` for every leaf of ``tree`` (works on tracers).

    Raises:
      TypeError: a leaf that has no shape and dtype (a function, a string).
    """
    out = []
    for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        ok = hasattr(leaf, "shape") and hasattr(leaf, "dtype") or isinstance(leaf, (bool, int, float, complex, np.generic))
        if not ok:
            raise TypeError(BAD_LIKE_LEAF.format(what=what, path=_keystr(p), kind=type(leaf).__name__))
        out.append((_keystr(p), *_spec(leaf)))
    return out


def compare(
    expected: Sequence[tuple[str, tuple[int, ...], str]],
    found: Sequence[tuple[str, tuple[int, ...], str]],
    *,
    what: str,
    expected_name: str = "like",
    note: str = "",
) -> None:
    """Raise :class:`TreeMismatchError` naming each leaf where ``found`` differs
    from ``expected`` (leaf paths, then shapes and dtypes; when the paths differ,
    the shapes and dtypes of the leaves both have are named too: a float32 run's
    state has leaves a float64 run's lacks, and the dtype is the real difference).

    ``what`` names the thing being checked in the message (a file, or the
    ``resume`` argument); ``expected_name`` names the reference; ``note``, where
    given, ends the message (where the found tree came from, what to do).
    """
    end = f". {note}" if note else ""
    exp_paths = [p for p, _, _ in expected]
    got_paths = [p for p, _, _ in found]
    diffs = _leaf_diffs(expected, found)
    if exp_paths != got_paths:
        missing = [p for p in exp_paths if p not in set(got_paths)]
        extra = [p for p in got_paths if p not in set(exp_paths)]
        parts = []
        if missing:
            parts.append(f"missing leaves {_listed(missing)} (expected by {expected_name})")
        if extra:
            parts.append(f"unexpected leaves {_listed(extra)} (not in {expected_name})")
        if not parts:
            parts.append(f"same leaves in a different order: expected {_listed(exp_paths)}, found {_listed(got_paths)}")
        parts.append(f"{len(exp_paths)} leaves expected, {len(got_paths)} found")
        parts.extend(_first(diffs))
        details = "; ".join(parts)
        raise TreeMismatchError(STRUCTURE_DIFFERS.format(what=what, expected=expected_name, details=details) + end)
    if diffs:
        details = "; ".join(_first(diffs))
        raise TreeMismatchError(LEAF_DIFFERS.format(what=what, expected=expected_name, details=details) + end)


def _leaf_diffs(
    expected: Sequence[tuple[str, tuple[int, ...], str]], found: Sequence[tuple[str, tuple[int, ...], str]]
) -> list[str]:
    """``"leaf P: expected shape S dtype D, found ..."`` for each path both have whose shape or dtype differ."""
    got = {p: (s, d) for p, s, d in found}
    return [
        f"leaf {p}: expected shape {es} dtype {ed}, found shape {got[p][0]} dtype {got[p][1]}"
        for p, es, ed in expected
        if p in got and (es, ed) != got[p]
    ]


def _first(diffs: list[str]) -> list[str]:
    """At most ``_MAX_LISTED`` of ``diffs``, and how many more there are."""
    more = [f"and {len(diffs) - _MAX_LISTED} more"] if len(diffs) > _MAX_LISTED else []
    return diffs[:_MAX_LISTED] + more


def _listed(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:_MAX_LISTED])
    return shown + (f", ... ({len(paths) - _MAX_LISTED} more)" if len(paths) > _MAX_LISTED else "")


def _to_device(value: Any, sharding: Any = None, where: Optional[tuple[str, str]] = None) -> jax.Array:
    """A loaded leaf onto the device (``device_put``: ``jnp.asarray`` would
    compile a small program per new shape). With JAX's 64-bit mode off a 64-bit leaf becomes 32-bit:
    where that changes a value, ``CheckpointError`` (``where``: the file and the leaf, for the message)."""
    if isinstance(value, jax.Array) and sharding is None:
        return value
    canonical = jax.dtypes.canonicalize_dtype(value.dtype) if isinstance(value, np.ndarray) else None
    if canonical is not None and canonical != value.dtype and value.size:
        with np.errstate(over="ignore", invalid="ignore"):
            back = value.astype(canonical).astype(value.dtype)
        changed = ~((back == value) | (np.isnan(back) & np.isnan(value)) if value.dtype.kind in "fc" else back == value)
        if changed.any():
            i = tuple(int(k) for k in np.argwhere(changed)[0])
            example = f"{value[i].item()!r} would load as {back[i].item()!r}"
            path, leaf = where or ("?", "?")
            raise CheckpointError(NARROWED.format(path=path, leaf=leaf, dtype=value.dtype, canonical=canonical,
                                                  example=example))
    return jax.device_put(value, sharding)


def _narrowed(name: str) -> bool:
    """JAX's current mode holds the dtype ``name`` in fewer bits (float64 as float32 with x64 off)."""
    try:
        dtype = jnp.dtype(name)
    except TypeError:  # a PRNG key's dtype (key<fry>)
        return False
    return jax.dtypes.canonicalize_dtype(dtype) != dtype


def _check_wide(
    expected: Sequence[tuple[str, tuple[int, ...], str]], found: Sequence[tuple[str, tuple[int, ...], str]],
    what: str, expected_name: str,
) -> None:
    """With JAX's 64-bit mode off, a file holding 64-bit leaves (float64, int64, ...) where the width is the
    difference: say so first. That is where every leaf both trees have agrees in shape and in dtype up to
    the width JAX's mode holds it in, some leaf differs in width, and the file has no leaf the expected
    tree lacks (a float32 run's state has leaves a float64 one's lacks, ``.state.stall``: named first, the
    real cause came last). Any other difference: :func:`compare`'s message, with the 64-bit mode noted."""
    wide = [(p, d) for p, _, d in found if _narrowed(d)]  # (canonicalize_dtype narrows with the mode off only)
    if not wide:
        return
    leaves = ", ".join(f"{p} is {d}" for p, d in wide[:_MAX_LISTED])
    leaves += f", and {len(wide) - _MAX_LISTED} more" if len(wide) > _MAX_LISTED else ""
    got = {p: (s, d) for p, s, d in found}
    both = [(p, s, d) for p, s, d in expected if p in got]
    width_only = all(
        s == got[p][0] and (d == got[p][1] or (_narrowed(got[p][1]) and jnp.dtype(d) == _canonical(got[p][1])))
        for p, s, d in both
    )
    narrowed = any(d != got[p][1] for p, _, d in both)
    extra = set(got) - {p for p, _, _ in expected}
    if width_only and narrowed and not extra:
        raise TreeMismatchError(WIDE_WITH_X64_OFF.format(what=what, leaves=leaves, expected=expected_name))
    compare(expected, found, what=what, note=WIDE_NOTE.format(leaves=leaves))


def _canonical(name: str) -> Any:
    return jax.dtypes.canonicalize_dtype(jnp.dtype(name))


def _open(path: Any, name: str) -> _Archive:
    return _Archive(check_path(name, path, must_exist=True))


def checkpoint_info(path: str | os.PathLike) -> dict:
    """Read a checkpoint's header only: format, version, metadata and leaves.

    Args:
      path: the checkpoint file.

    Returns:
      A dict with ``format``, ``version``, ``metadata`` (what
      :func:`save_checkpoint` was given; ``minimize`` records the method,
      step count and status) and ``leaves``: a list of
      ``{"path", "shape", "dtype"}``.

    Raises:
      TypeError: ``path`` of the wrong type.
      FileNotFoundError: no file at ``path``.
      CheckpointError: the file is not a readable jaxgd checkpoint.
    """
    archive = _open(path, "path")
    try:
        h = archive.header
        leaves = [{"path": e["path"], "shape": e["shape"], "dtype": e["dtype"]} for e in archive.leaves]
        return {"format": h["format"], "version": h["version"], "metadata": h.get("metadata", {}), "leaves": leaves}
    finally:
        archive.close()


def load_checkpoint(path: str | os.PathLike, like: PyTree = None) -> PyTree:
    """Load a checkpoint written by :func:`save_checkpoint`; never runs code.

    ``like`` gives the expected pytree: its structure is used to rebuild the
    tree (nothing is unpickled), and each leaf's path, shape and dtype must
    match the file. Build it from the objects you would have anyway: the
    ``x0``/solver of the run (``jax.eval_shape(solver.run, x0)`` for a
    ``Result`` of ``Solver.run``; a ``minimize`` ``Result`` holds history rows for
    the steps it took only, so its ``like`` is a ``Result`` of the same shapes, the
    one saved, say), or the tree you saved. Loaded leaves are JAX arrays; a
    ``like`` leaf that carries a sharding (a ``jax.Array`` or a
    ``jax.ShapeDtypeStruct(..., sharding=...)``) puts the loaded leaf there.

    To continue a ``minimize`` run, pass the path as ``minimize(...,
    resume=path)``, which builds ``like`` itself.

    Args:
      path: the checkpoint file.
      like: the expected pytree (arrays or ``jax.ShapeDtypeStruct``), or
        None to get a flat ``{leaf path: array}`` dict (for inspection).

    Returns:
      The pytree with ``like``'s structure (or the flat dict).

    Raises:
      TypeError: ``path`` of the wrong type, or a ``like`` leaf that is not
        array-like.
      FileNotFoundError: no file at ``path``.
      CheckpointError: truncated, corrupted or not a jaxgd checkpoint.
      TreeMismatchError: the file's tree differs from ``like``; the message
        names each differing leaf path, expected vs found.
    """
    return load(path, like, name="path")


def load(path: Any, like: PyTree, *, name: str) -> PyTree:
    """:func:`load_checkpoint`, with ``name`` the argument named in errors."""
    archive = _open(path, name)
    try:
        if like is None:
            return {e["path"]: _to_device(archive.read(e), None, (archive.path, e["path"])) for e in archive.leaves}
        like_leaves, treedef = jax.tree_util.tree_flatten(like)
        expected = describe(like)
        found = [(e["path"], e["shape"], e["dtype"]) for e in archive.leaves]
        what = f"{name}: checkpoint {archive.path!r}"
        if expected != found:
            _check_wide(expected, found, what, "like" if name == "path" else "the state this call starts from")
        compare(expected, found, what=what)
        out = []
        for entry, ref in zip(archive.leaves, like_leaves):
            sharding = getattr(ref, "sharding", None)
            if isinstance(ref, jax.core.Tracer):
                sharding = None
            out.append(_to_device(archive.read(entry), sharding, (archive.path, entry["path"])))
        return jax.tree_util.tree_unflatten(treedef, out)
    finally:
        archive.close()
