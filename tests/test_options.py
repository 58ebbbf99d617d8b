"""The option list is written once (jaxgd.core.options): minimize, Solver and
fit take their shared options' defaults and documentation from one table.

Reference: ``inspect.signature`` of each public function against the table.
"""

from __future__ import annotations

import inspect

import pytest

import jaxgd
from jaxgd.core import options as _options

SHARED = {
    "minimize": (jaxgd.minimize, _options.SOLVER_OPTIONS + ("method", "lr")),
    "Solver": (jaxgd.Solver.__init__, _options.SOLVER_OPTIONS + ("method", "lr")),
    "fit": (jaxgd.fit, ("progress", "clip", "l1", "l2", "bounds", "accelerated")),
}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_defaults_come_from_the_table(name: str) -> None:
    fn, names = SHARED[name]
    params = inspect.signature(fn).parameters
    for option in names:
        assert option in params, (name, option)
        assert params[option].default == _options.OPTIONS[option].default, (name, option)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_docstrings_hold_the_table_entries(name: str) -> None:
    fn, names = SHARED[name]
    doc = " ".join((jaxgd.Solver.__doc__ if name == "Solver" else fn.__doc__).split())
    assert "{options:" not in doc
    for option in names:
        entry = " ".join(_options.entries(option).split())
        assert entry in doc, (name, option)


def test_one_unknown_keyword_error_names_close_matches() -> None:
    with pytest.raises(TypeError, match=r"fit\(\) got unexpected keyword argument\(s\) metod \(did you mean method\?\)"):
        jaxgd.fit(lambda p, b: p, 0.0, [1.0], batch_size=1, epochs=1, key=None, metod="gd")
    assert "accelerated" in _options.keywords(jaxgd.minimize) and "bounds" in _options.keywords(jaxgd.fit)
