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
    show = subprocess.run([sys.executable, "-m", "jaxgd", "cache"], capture_output=True, text=True, env=env, check=True)
    assert str(folder) in show.stdout and "compilation cache on" in show.stdout
    assert " 0 entries" not in show.stdout
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
