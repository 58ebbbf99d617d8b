"""The API reference covers the public API, and every docstring example runs.

- Every name in ``jaxgd.__all__`` has a ``::: jaxgd.NAME`` directive on a page
  under docs/api/ (so mkdocstrings renders it; ``make docs`` builds the pages
  with warnings as errors, and CI runs it).
- Every docstring with a ``>>>`` example, on every public object and its
  methods, is one that doctest collects when tests/test_api.py runs
  ``doctest.testmod`` over each module (doctest skips an object whose
  ``__module__`` names a module that does not hold it, such as a function a
  factory in another module made). The package's own
  docstring runs here too (test_api.py walks the submodules only).
- The griffe extension that turns the docstrings' reST into Markdown for the
  pages, against hand-written expected text.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import pkgutil
import re
import sys

import pytest

import jaxgd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API = os.path.join(ROOT, "docs", "api")


def _directives() -> set[str]:
    found = set()
    for name in os.listdir(API):
        if name.endswith(".md"):
            with open(os.path.join(API, name)) as f:
                found |= set(re.findall(r"^::: (jaxgd(?:\.\w+)*)\s*$", f.read(), re.M))
    return found


def test_every_public_name_has_a_reference_entry():
    directives = _directives()
    missing = sorted(n for n in jaxgd.__all__ if f"jaxgd.{n}" not in directives)
    assert not missing, f"add `::: jaxgd.NAME` to a page in docs/api/ for: {missing}"
    stale = sorted(d for d in directives if not hasattr(jaxgd, d.split(".")[1]))
    assert not stale, f"docs/api/ names objects jaxgd does not export: {stale}"


def _public_objects():
    """(qualified name, object) for every public name, module member and method."""
    for name in jaxgd.__all__:
        obj = getattr(jaxgd, name)
        yield f"jaxgd.{name}", obj
        members = [(k, getattr(obj, k)) for k in getattr(obj, "__all__", [])] if inspect.ismodule(obj) else []
        for k, v in members:
            yield f"jaxgd.{name}.{k}", v
        for qual, o in [(f"jaxgd.{name}", obj)] + [(f"jaxgd.{name}.{k}", v) for k, v in members]:
            if inspect.isclass(o) and o.__module__.startswith("jaxgd"):
                for attr, v in vars(o).items():
                    v = v.fget if isinstance(v, property) else getattr(v, "__func__", v)
                    yield f"{qual}.{attr}", v


def _collected_docstrings() -> set[str]:
    names = ["jaxgd"] + [m.name for m in pkgutil.walk_packages(jaxgd.__path__, "jaxgd.") if not m.name.endswith("__main__")]
    found = set()
    for name in names:
        for test in doctest.DocTestFinder().find(importlib.import_module(name)):
            if test.examples:
                found.add(test.docstring)
    return found


def test_every_docstring_example_is_collected_by_doctest():
    collected = _collected_docstrings()
    missed = sorted(
        qual for qual, obj in _public_objects()
        if getattr(obj, "__module__", "") and str(getattr(obj, "__module__", "")).startswith("jaxgd")
        and isinstance(getattr(obj, "__doc__", None), str) and ">>>" in obj.__doc__ and obj.__doc__ not in collected
    )
    assert not missed, f"docstring examples doctest never runs: {missed}"
    assert len(collected) >= 10  # the examples that exist today: the walk above did find them


def test_rest_to_markdown():
    """Reference: the Markdown written out by hand for each reST construct."""
    pytest.importorskip("griffe")
    sys.path.insert(0, API)
    try:
        from griffe_roles import rewrite
    finally:
        sys.path.remove(API)
    assert rewrite("see :func:`jaxgd.fit` and :class:`Status`") == "see [`jaxgd.fit`][jaxgd.fit] and `Status`"
    assert rewrite(":meth:`jaxgd.Solver.resume`") == "[`jaxgd.Solver.resume`][jaxgd.Solver.resume]"
    assert rewrite(":func:`jaxgd._quasi_newton.bfgs_direction`") == "`jaxgd._quasi_newton.bfgs_direction`"
    assert rewrite("with :math:`h = \\epsilon`.") == "with $h = \\epsilon$."
    assert rewrite("  .. math:: a = b\n") == "  $$\n  a = b\n  $$\n\n"
    assert rewrite("x\n\n  .. math::\n\n      a = b\n      c\n\n  after\n") == "x\n\n  $$\n  a = b\n  c\n  $$\n\n  after\n"
    assert rewrite("Example:\n  >>> 1\n  1\n") == "Examples:\n  >>> 1\n  1\n"


def _markdown_pages() -> list[str]:
    pages = [os.path.join(ROOT, "README.md")]
    for folder, _, names in os.walk(os.path.join(ROOT, "docs")):
        pages += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".md")]
    return pages


def _bare_reference_links(text: str) -> list[str]:
    """Text outside code that Markdown reads as a reference link ``[text][id]``
    (a leaf path like ['a']['b']), which ``mkdocs build --strict`` refuses when no
    such id exists. Code blocks, code spans and escaped brackets are skipped."""
    text = re.sub(r"^( *)(```|~~~).*?^\1\2", "", text, flags=re.M | re.S)
    text = re.sub(r"(`+).*?\1", "", text, flags=re.S)
    text = text.replace("\\[", "").replace("\\]", "")
    return [m.group(0) for m in re.finditer(r"\[[^\[\]\n]*\]\[[^\[\]\n]*\]", text)]


def test_no_page_holds_a_bare_reference_link():
    """The check ``make docs`` makes in strict mode (mkdocs-autorefs: 'Could not
    find cross-reference target'), here so that ``make test`` fails first."""
    assert _bare_reference_links("a ['x']['y'] b") == ["['x']['y']"]
    assert not _bare_reference_links("`['x']['y']` \\['x'\\]\\['y'\\]\n```\n['x']['y']\n```\n")
    found = {}
    for page in _markdown_pages():
        with open(page) as f:
            found[os.path.relpath(page, ROOT)] = _bare_reference_links(f.read())
    for qual, obj in _public_objects():  # mkdocstrings renders these on the API pages
        if isinstance(getattr(obj, "__doc__", None), str):
            found[qual] = _bare_reference_links(obj.__doc__)
    found = {page: links for page, links in found.items() if links}
    assert not found, f"escape the brackets or put them in code: {found}"
