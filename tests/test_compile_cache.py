"""The persistent compilation cache (jaxgd.enable_compilation_cache and the CLI).

Reference: JAX's own cache-hit and cache-miss events
(``/jax/compilation_cache/cache_hits`` / ``cache_misses``), counted in fresh
processes, so nothing here depends on timing or on what this worker compiled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp
counts = {"hits": 0, "misses": 0}
def listen(event, **kw):
    if event == "/jax/compilation_cache/cache_hits": counts["hits"] += 1
    if event == "/jax/compilation_cache/cache_misses": counts["misses"] += 1
jax.monitoring.register_event_listener(listen)
import jaxgd
info = jaxgd.enable_compilation_cache(sys.argv[1])
f = lambda x: jnp.sum((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2)
r = jaxgd.minimize(f, jnp.zeros(4), method="lbfgs", max_steps=100)
after = jaxgd.compilation_cache_info()
print(json.dumps({**counts, "steps": int(r.steps), "loss": float(r.loss), "enabled": info.enabled,
                  "path": info.path, "entries": after.entries, "size": after.size_bytes}))
"""


def _run(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_compiles_nothing(tmp_path: Path) -> None:
    folder = str(tmp_path / "cc")
    first = _run(SCRIPT, folder)
    assert first["enabled"] and first["path"] == folder
    assert first["misses"] > 0 and first["hits"] == 0
    assert first["entries"] == first["misses"] and first["size"] > 0
    second = _run(SCRIPT, folder)
    assert second["misses"] == 0, "the second process compiled something again"
    assert second["hits"] == first["misses"]
    assert (second["steps"], second["loss"]) == (first["steps"], first["loss"])  # same executable, same answer


@pytest.mark.slow
def test_clear_removes_only_cache_entries(tmp_path: Path) -> None:
    folder = tmp_path / "cc"
    _run(SCRIPT, str(folder))
    (folder / "notes.txt").write_text("keep me")
    size = sum(p.stat().st_size for p in folder.iterdir() if p.name.endswith("-cache"))
    code = "import sys, jaxgd; print(jaxgd.clear_compilation_cache(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout) == size > 0
    left = sorted(p.name for p in folder.iterdir())
    assert "notes.txt" in left and not [n for n in left if n.endswith(("-cache", "-atime"))], left


@pytest.mark.slow
def test_cli_cache_shows_the_folder_and_clears_it(tmp_path: Path) -> None:
    folder = tmp_path / "cc"
    _run(SCRIPT, str(folder))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAXGD_CACHE_DIR": str(folder)}
    (folder / "x-cache").write_bytes(b"12")  # an entry without its access-time file (JAX's default writes none)
    before = sorted(p.name for p in folder.iterdir())
    show = subprocess.run([sys.executable, "-m", "jaxgd", "cache"], capture_output=True, text=True, env=env, check=True)
    assert str(folder) in show.stdout and "compilation cache folder" in show.stdout
    assert " 0 entries" not in show.stdout
    assert sorted(p.name for p in folder.iterdir()) == before  # (showing turned the cache on and stamped entries)
    subprocess.run([sys.executable, "-m", "jaxgd", "cache", "--clear"], capture_output=True, text=True, env=env, check=True)
    assert not [p for p in folder.iterdir() if p.name.endswith("-cache")]


def test_default_path_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from jaxgd import _compile_cache

    monkeypatch.setenv("JAXGD_CACHE_DIR", str(tmp_path / "a"))
    assert _compile_cache.default_path() == str(tmp_path / "a")
    monkeypatch.delenv("JAXGD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _compile_cache.default_path() == os.path.join(str(tmp_path / "xdg"), "jaxgd", "xla")


@pytest.fixture
def no_folder_set() -> Any:
    """No cache folder set in this process for the test (the default then stands for it); the worker's
    setting, where another test set one, restored after. Nothing compiles meanwhile."""
    import jax

    old = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    jax.config.update("jax_compilation_cache_dir", old)


def test_a_default_folder_that_is_a_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_folder_set: Any
                                                     ) -> None:
    """$JAXGD_CACHE_DIR naming a file: enable_compilation_cache() raises as for path=file (it returned "on"
    and JAX warned at every compile), and `jaxgd cache` / `jaxgd demo` exit 2 with the message (a traceback)."""
    import jaxgd
    from jaxgd.cli.main import main

    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("JAXGD_CACHE_DIR", str(afile))
    with pytest.raises(ValueError, match=r"is a file \(the default folder, from \$JAXGD_CACHE_DIR\)"):
        jaxgd.enable_compilation_cache()
    for argv in (["cache"], ["cache", "--clear"], ["demo", "--quick"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2


def test_info_shows_the_default_folder_before_any_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          no_folder_set: Any) -> None:
    """With no folder set, compilation_cache_info names the folder clear_compilation_cache() empties (the
    default) and counts its entries (it said "(no folder), 0 entries"); the cache stays off."""
    import jaxgd

    folder = tmp_path / "cc"
    folder.mkdir()
    (folder / "k-cache").write_bytes(b"1234")
    monkeypatch.setenv("JAXGD_CACHE_DIR", str(folder))
    info = jaxgd.compilation_cache_info()
    assert (info.path, info.entries, info.size_bytes, info.enabled) == (str(folder), 1, 4, False)
    assert jaxgd.clear_compilation_cache() == 4


def test_max_size_takes_any_integer_type() -> None:
    """np.int64 is an integer like int (it was refused); bools and floats are not."""
    import numpy as np

    from jaxgd import _compile_cache

    assert _compile_cache._check_max_size(np.int64(2**30)) == 2**30 and _compile_cache._check_max_size(-1) == -1
    for bad in (True, np.bool_(True), 0, -2, 1.5, np.float64(3.0)):
        with pytest.raises(ValueError, match="max_size must be a positive integer"):
            _compile_cache._check_max_size(bad)


def test_demo_refuses_an_out_that_is_a_file_before_running(tmp_path: Path) -> None:
    """`jaxgd demo --out FILE` stops at once with exit 2 (it ran every fit, then raised FileExistsError)."""
    from jaxgd.cli.main import main

    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--quick", "--no-compile-cache", "--out", str(afile)])
    assert stop.value.code == 2


FIT_SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp
counts = {"hits": 0, "misses": 0, "requests": 0}
def listen(event, **kw):
    if event == "/jax/compilation_cache/cache_hits": counts["hits"] += 1
    if event == "/jax/compilation_cache/cache_misses": counts["misses"] += 1
    if event == "/jax/compilation_cache/compile_requests_use_cache": counts["requests"] += 1
jax.monitoring.register_event_listener(listen)
import jaxgd
jaxgd.enable_compilation_cache(sys.argv[1])
def mse(p, b):
    X, y = b
    return jnp.mean((X @ p - y) ** 2)
X = jnp.linspace(0, 1, 200).reshape(100, 2); y = jnp.ones(100)
r = jaxgd.fit(mse, jnp.zeros(2), (X, y), batch_size=10, epochs=3, key=jax.random.key(0), lr=0.1)
print(json.dumps({**counts, "loss": float(r.history.train_loss[-1])}))
"""


@pytest.mark.slow
def test_a_second_process_compiles_no_fit_loop(tmp_path: Path) -> None:
    """fit's loop carried its progress bar's host callback (switched off by a traced flag) even with
    progress=False, and JAX writes no program with a callback: every process compiled it again, 1.8-2 s of a
    2.4 s first call (a user review in session 57). Reference: JAX's cache events in a second process (a
    program JAX will not write counts as neither a hit nor a miss: every request must be a hit)."""
    folder = str(tmp_path / "cc")
    first = _run(FIT_SCRIPT, folder)
    assert first["misses"] == first["requests"] > 0
    second = _run(FIT_SCRIPT, folder)
    assert second["hits"] == second["requests"] == first["requests"], "the second process compiled something again"
    assert second["loss"] == first["loss"]


@pytest.mark.slow
def test_a_folder_written_without_a_size_limit_keeps_caching_under_one(tmp_path: Path) -> None:
    """Entries written with no size limit (JAX's default, or max_size=-1) have no access-time files; JAX's
    eviction under a limit then failed on every new entry (FileNotFoundError) and nothing more was cached
    while the info said "on" (a user review in session 57). Reference: the folder's entries, counted."""
    folder = str(tmp_path / "cc")
    unlimited = SCRIPT.replace("enable_compilation_cache(sys.argv[1])", "enable_compilation_cache(sys.argv[1], max_size=-1)")
    first = _run(unlimited, folder)
    assert first["entries"] > 0 and not list((tmp_path / "cc").glob("*-atime"))
    other = SCRIPT.replace("jnp.zeros(4)", "jnp.zeros(6)")  # new programs to write under the default limit
    second = _run(other, folder)
    assert second["entries"] > first["entries"], "nothing new was cached"
    assert len(list((tmp_path / "cc").glob("*-atime"))) == second["entries"]


def test_a_folder_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    """A path under a file was accepted ("on") and JAX then warned once, naming an unrelated program, and
    cached nothing (a user review in session 57). Reference: the file system (a folder cannot live in a file)."""
    import jaxgd

    blocker = tmp_path / "a file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="can create and write to"):
        jaxgd.enable_compilation_cache(blocker / "cc")


def test_small_size_limits_read_in_their_own_unit() -> None:
    """A 1,000-byte limit printed as "(0 MiB limit)". Reference: the byte counts, by hand."""
    from jaxgd._compile_cache import CacheInfo

    assert str(CacheInfo("/c", True, 2, 1536, 1000)) == "compilation cache on: /c, 2 entries, 1.5 KiB (1000 B limit)"
    assert "0 entries, 0 B (2.0 GiB limit)" in str(CacheInfo("/c", False, 0, 0, 2 * 1024**3))
    assert "1 entry," in str(CacheInfo("/c", False, 1, 0, -1))


def test_a_folder_under_home_written_with_a_tilde(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Reference: the shell's (and os.path.expanduser's) reading of '~'. enable_compilation_cache('~/jx') made a
    folder named '~' in the working directory; it is the home folder's 'jx'."""
    from jaxgd import _compile_cache

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert _compile_cache._check_path("~/jx") == str(tmp_path / "jx")
    assert _compile_cache._check_path(Path("~") / "jx") == str(tmp_path / "jx")
