"""Load sif2jax's CUTEst problems one module at a time (helper of ``cutest.py``).

``import sif2jax`` runs ``sif2jax/cutest/__init__.py``, which imports every
problem and builds instances of all of them, one constrained problem taking
about 70 s here. We need only the unconstrained and bound-constrained ones,
and only some of those, so this module registers *empty* stand-ins for the
packages ``sif2jax``, ``sif2jax.cutest`` and the two problem-family packages
(each with the real ``__path__``), imports just the problem modules asked
for (their relative imports, ``from ..._problem import ...``, then resolve
through the stand-ins), and removes the stand-ins again. A later
``import sif2jax`` elsewhere in the process then runs the real package and
finds the already imported problem modules in ``sys.modules``.

Which problems exist is read from the family package's ``__init__.py``
(``from .rosenbr import ROSENBR as ROSENBR`` lines; problems sif2jax has
commented out as under review are left out), without importing it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

FAMILIES = {"unconstrained": "_unconstrained_minimisation", "bounded": "_bounded_minimisation"}

# A few larger problems (default sizes), run besides the n <= max_n ones.
LARGE = {"unconstrained": ("GENROSE", "FLETCHCR", "EDENSCH"), "bounded": ()}

# Problems left out of a suite (run only where named): suite -> name -> why.
EXCLUDED = {
    "unconstrained": {
        # f(t, 0, -2t) = -t^2: the "solved" rule would crown whichever run diverged furthest
        "EG1": "unbounded below: sif2jax's unconstrained port drops CUTEst's bounds (EG1 is classified OBR2)",
    },
    "bounded": {},
}


def available() -> bool:
    """True when the sif2jax package is installed."""
    return importlib.util.find_spec("sif2jax") is not None


def _root() -> Path:
    spec = importlib.util.find_spec("sif2jax")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("sif2jax is not installed (pip install 'jaxgd[bench]')")
    return Path(list(spec.submodule_search_locations)[0])


def catalogue(kind: str) -> dict[str, str]:
    """Problem name -> module name of one family (``kind``: unconstrained | bounded)."""
    init = _root() / "cutest" / FAMILIES[kind] / "__init__.py"
    out: dict[str, str] = {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module and not node.module.startswith("_"):
            for alias in node.names:
                out[alias.asname or alias.name] = node.module
    return out


class _Standins:
    """Context manager: empty stand-in packages for sif2jax's package chain."""

    def __init__(self, kind: str) -> None:
        root = _root()
        self.packages = {
            "sif2jax": root,
            "sif2jax.cutest": root / "cutest",
            f"sif2jax.cutest.{FAMILIES[kind]}": root / "cutest" / FAMILIES[kind],
        }
        self.added: list[str] = []

    def __enter__(self) -> "_Standins":
        for name, path in self.packages.items():
            if name in sys.modules:  # the real package is already imported: use it
                continue
            mod = types.ModuleType(name)
            mod.__path__ = [str(path)]
            mod.__package__ = name
            sys.modules[name] = mod
            self.added.append(name)
        return self

    def __exit__(self, *exc: Any) -> None:
        for name in self.added:
            sys.modules.pop(name, None)


@dataclass
class Problem:
    """One CUTEst problem: its name, size, float64 start and objective."""

    name: str
    kind: str
    n: int
    instance: Any

    def objective(self) -> Any:
        """``f(y)``: the problem's objective with its fixed ``args`` closed over."""
        inst, args = self.instance, self.instance.args

        def f(y: Any) -> Any:
            return inst.objective(y, args)

        return f

    def x0(self) -> Any:
        import jax.numpy as jnp

        return jnp.asarray(self.instance.y0, jnp.float64)

    def bounds(self) -> Optional[tuple[Any, Any]]:
        if self.kind != "bounded":
            return None
        import jax.numpy as jnp

        lo, hi = self.instance.bounds
        return jnp.asarray(lo, jnp.float64), jnp.asarray(hi, jnp.float64)


def load(kind: str, name: str) -> Problem:
    """Import one problem module and build the problem at its default size."""
    cat = catalogue(kind)
    if name not in cat:
        raise KeyError(f"{name!r} is not a sif2jax {kind} problem; known: {', '.join(sorted(cat))}")
    with _Standins(kind):
        mod = importlib.import_module(f"sif2jax.cutest.{FAMILIES[kind]}.{cat[name]}")
        inst = getattr(mod, name)()
        n = int(inst.num_variables())
    return Problem(name=name, kind=kind, n=n, instance=inst)


def select(kind: str, max_n: int, names: Optional[list[str]] = None, large: bool = True) -> Iterator[Problem]:
    """The problems of one family with ``n <= max_n`` (plus ``LARGE`` ones, less ``EXCLUDED`` ones),
    or exactly ``names``, in alphabetical order; ones that fail to build are
    reported on stderr and skipped."""
    cat = catalogue(kind)
    wanted = sorted(names) if names else sorted(set(cat) - set(EXCLUDED[kind]))
    for name in wanted:
        if names and name not in cat:
            continue
        try:
            p = load(kind, name)
        except Exception as e:  # a broken port must not stop the suite
            print(f"cutest: cannot build {name}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        if names or p.n <= max_n or (large and name in LARGE[kind]):
            yield p


def entry(key: str, title: str, parser: Any, main: Any, opts: Any, folder: str) -> list:
    """A CUTEst benchmark's entry point for ``benchmarks.run`` (G, K): its own defaults from ``parser``,
    ``--quick`` and ``--out`` (as ``OUT/folder``) from ``opts``, then ``main(args)``; a skipped report
    when sif2jax is not installed."""
    from . import _util as U

    if not available():
        return [U.skipped(key, title, "sif2jax is not installed (pip install 'jaxgd[bench]')")]
    args = parser().parse_args([])
    args.quick = bool(getattr(opts, "quick", False))
    if getattr(opts, "out", None):
        args.out = str(Path(opts.out) / folder)
    return main(args)
