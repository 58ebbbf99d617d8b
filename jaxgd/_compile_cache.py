"""JAX's persistent compilation cache, switched on and shown by jaxgd.

A research script usually solves a problem once, and there the XLA compile of
the fused loop dominates: 0.5-1 s against milliseconds of iterations. JAX can
keep every compiled executable on disk (its *persistent compilation cache*),
so that a second process running the same script loads the executable instead
of compiling it again. jaxgd turns it on with one call and shows where it
lives and how large it is:

>>> import jaxgd, tempfile
>>> info = jaxgd.enable_compilation_cache(tempfile.mkdtemp())
>>> info.enabled, info.entries
(True, 0)
>>> jaxgd.disable_compilation_cache().enabled
False

The cache is JAX's own (``jax_compilation_cache_dir``); jaxgd sets
three of JAX's options so that it serves small programs too:
``jax_persistent_cache_min_compile_time_secs = 0`` (JAX's default of 1 s
would skip most of jaxgd's loops), ``jax_persistent_cache_min_entry_size_bytes
= 0``, and ``jax_compilation_cache_max_size`` (least recently used entries are
evicted beyond it). The command line (``jaxgd demo``, ``jaxgd check``) turns
it on by default; ``jaxgd cache`` prints its folder and size and ``jaxgd cache
--clear`` empties it.

As JAX's documentation warns, a compilation cache is trusted code: keep it in
a folder only you can write to (the default, under your home folder, is).
"""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import NamedTuple, Optional, Union

import jax
import numpy as np
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

ENV_DIR = "JAXGD_CACHE_DIR"
DEFAULT_MAX_SIZE = 2 * 1024**3  # 2 GiB
BAD_PATH = "path must be None, a str or an os.PathLike naming a folder, got {kind}"
NOT_A_FOLDER = "path must name a folder, but {path!r} is a file{source}"
EMPTY_PATH = "path must name a folder, got an empty string (None: the default folder)"
CANNOT_MAKE = "path must name a folder this process can create and write to: {path!r} ({why})"
BAD_MAX_SIZE = "max_size must be a positive integer number of bytes or -1 (no limit), got max_size={value!r}"


class CacheInfo(NamedTuple):
    """Where the persistent compilation cache lives and what it holds.

    Attributes:
      path: the folder (``None`` when no folder is configured).
      enabled: whether JAX writes and reads compiled programs there.
      entries: the number of cached executables in the folder.
      size_bytes: their total size.
      max_size: the size beyond which JAX evicts the least recently used
        entries (``-1``: no limit).
    """

    path: Optional[str]
    enabled: bool
    entries: int
    size_bytes: int
    max_size: int

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        limit = "no limit" if self.max_size < 0 else f"{_size(self.max_size)} limit"
        where = self.path or "(no folder)"
        return f"compilation cache {state}: {where}, {_count(self.entries)}, {_size(self.size_bytes)} ({limit})"


def _count(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _size(n: int) -> str:
    """Bytes for people: ``2.0 GiB``, ``1.5 MiB``, ``12.0 KiB``, ``1000 B`` (a 1,000-byte limit read "0 MiB")."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    if n >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / 2**10:.1f} KiB" if n >= 2**10 else f"{n} B"


def folder_summary(path: str) -> str:
    """One line on a cache folder's entries and size, read without turning the cache on (``jaxgd cache``)."""
    files = _entries(path)
    return f"compilation cache folder: {path}, {_count(len(files))}, {_size(sum(p.stat().st_size for p in files))}"


def default_path() -> str:
    """The folder used when none is given.

    ``$JAXGD_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/jaxgd/xla``, else
    ``~/.cache/jaxgd/xla``.
    """
    env = os.environ.get(ENV_DIR)
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxgd", "xla")


def _current_path() -> str:
    """The folder in use: JAX's ``jax_compilation_cache_dir`` if set, else :func:`default_path`."""
    return jax.config.jax_compilation_cache_dir or default_path()


def _check_path(path: Union[None, str, os.PathLike]) -> str:
    """``path`` as a str (None: the folder in use); a file, the default one included, refused."""
    source = ""
    if path is None:
        path = _current_path()
        from_env = not jax.config.jax_compilation_cache_dir and os.environ.get(ENV_DIR)
        source = f" (the default folder, from ${ENV_DIR})" if from_env else " (the default folder)"
    elif not isinstance(path, (str, os.PathLike)):
        raise TypeError(BAD_PATH.format(kind=type(path).__name__))
    path = os.fspath(path)
    if not path:
        raise ValueError(EMPTY_PATH)
    if isinstance(path, str):  # ('~/cache' made a folder named '~' in the working directory)
        path = os.path.expanduser(path)
    if os.path.isfile(path):
        raise ValueError(NOT_A_FOLDER.format(path=path, source=source))
    return path


def _make_folder(path: str) -> None:
    """Create the cache folder now, so that a folder that cannot be made (a parent that is a file, no
    permission) is an error here: JAX warned once, naming an unrelated program, and cached nothing while
    :func:`compilation_cache_info` said "on"."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise ValueError(CANNOT_MAKE.format(path=path, why=err.strerror or err)) from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(CANNOT_MAKE.format(path=path, why="not writable"))


def _stamp_entries(path: str) -> None:
    """Give every entry without one the access-time file JAX's size limit needs: a folder written with no
    limit (JAX's default, ``JAX_COMPILATION_CACHE_DIR``) has none, and JAX's eviction then fails on every
    new entry with ``FileNotFoundError`` (nothing more is cached). The stamp is the entry's modification
    time, as JAX writes it (nanoseconds, 8 bytes little-endian)."""
    for entry in _entries(path):
        atime = entry.with_name(entry.name[: -len("-cache")] + "-atime")
        if not atime.exists():
            try:
                atime.write_bytes(entry.stat().st_mtime_ns.to_bytes(8, "little"))
            except OSError:  # (another process evicted it meanwhile)
                pass


def _check_max_size(max_size: int) -> int:
    """``max_size`` as an int: any integer (a NumPy one too), positive or -1."""
    try:
        size = operator.index(max_size) if not isinstance(max_size, (bool, np.bool_)) else None
    except TypeError:
        size = None
    if size is None or not (size > 0 or size == -1):
        raise ValueError(BAD_MAX_SIZE.format(value=max_size))
    return size


def enable_compilation_cache(
    path: Union[None, str, os.PathLike] = None, *, max_size: int = DEFAULT_MAX_SIZE
) -> CacheInfo:
    """Keep every compiled jaxgd loop (every JAX program) on disk for later processes.

    Call it once, at the top of a script, before the first solve: the next
    process that runs the same solve on the same shapes, dtypes and JAX version
    loads the executable instead of compiling it (measured in
    ``benchmarks/RESULTS.md``). Tracing still runs; only XLA's compile is
    saved. A program compiled before the call is not written (JAX keeps it in
    memory and does not compile it again), nor is one that calls back to
    Python: a run with ``progress=True`` (``fit`` compiles its bar in only when
    asked while the cache is on).

    Args:
      path: the cache folder (created now). Default: JAX's own
        ``jax_compilation_cache_dir`` if already set, else
        ``$JAXGD_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxgd/xla``, else ``~/.cache/jaxgd/xla``.
      max_size: bytes kept before the least recently used entries are
        evicted; ``-1`` for no limit. Default 2 GiB.

    Returns:
      A :class:`CacheInfo` for the folder now in use.

    Raises:
      TypeError: ``path`` is not a str or path.
      ValueError: ``path`` (or, for None, the default folder) names a file or is
        empty, or cannot be created or written to, or ``max_size`` is not a
        positive integer or -1.
    """
    path = _check_path(path)
    max_size = _check_max_size(max_size)
    _make_folder(path)
    if max_size != -1:
        _stamp_entries(path)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", max_size)
    _jax_cache.set_cache_dir(path)
    # JAX decides once per process whether the cache is in use (at the first
    # compile); forget that decision so the folder takes effect from now on.
    _jax_cache.reset_cache()
    return compilation_cache_info()


def disable_compilation_cache() -> CacheInfo:
    """Stop reading and writing the persistent cache in this process (files stay).

    Returns:
      A :class:`CacheInfo` with ``enabled=False``.
    """
    jax.config.update("jax_enable_compilation_cache", False)
    _jax_cache.reset_cache()
    return compilation_cache_info()


def _entries(path: Optional[str]) -> list[Path]:
    if not path or not os.path.isdir(path):
        return []
    return [p for p in Path(path).iterdir() if p.is_file() and p.name.endswith("-cache")]


def persisting() -> bool:
    """Whether compiled programs are written to a persistent cache now (jaxgd's or JAX's own settings)."""
    return bool(jax.config.jax_compilation_cache_dir) and bool(jax.config.jax_enable_compilation_cache)


def compilation_cache_info() -> CacheInfo:
    """The folder, state and size of the persistent compilation cache.

    Returns:
      A :class:`CacheInfo`; ``str(info)`` is a one-line summary. Where no folder
      is set yet, ``path`` is the one :func:`enable_compilation_cache` and
      :func:`clear_compilation_cache` would use (the default), and the entries
      are that folder's.
    """
    enabled = persisting()
    path = _current_path()
    files = _entries(path)
    return CacheInfo(
        path=path,
        enabled=enabled,
        entries=len(files),
        size_bytes=sum(p.stat().st_size for p in files),
        max_size=int(jax.config.jax_compilation_cache_max_size),
    )


def clear_compilation_cache(path: Union[None, str, os.PathLike] = None) -> int:
    """Delete the cached executables; return the number of bytes freed.

    Only JAX's cache entries (files named ``*-cache`` and their access-time
    companions) are removed, never other files in the folder.

    Args:
      path: the folder; default the one in use (else the default folder of :func:`enable_compilation_cache`).

    Returns:
      The number of bytes the deleted executables took.

    Raises:
      TypeError: ``path`` is not a str or path.
      ValueError: ``path`` (or, for None, the folder it stands for) names a file or is empty.
    """
    path = _check_path(path)
    freed = 0
    if os.path.isdir(path):
        for p in Path(path).iterdir():
            if p.is_file() and (p.name.endswith("-cache") or p.name.endswith("-atime")):
                freed += p.stat().st_size if p.name.endswith("-cache") else 0
                p.unlink()
    if jax.config.jax_compilation_cache_dir == path:
        _jax_cache.reset_cache()  # drop handles to the deleted files
    return freed
