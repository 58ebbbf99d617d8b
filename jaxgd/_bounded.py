"""A mapping that keeps its newest keys: the bounded caches keyed on user objects share it."""

from __future__ import annotations

import collections
from typing import Any, Hashable


class Bounded(collections.OrderedDict):
    """An ``OrderedDict`` of at most ``size`` keys: setting a key beyond that drops the oldest
    (first inserted, or least recently moved to the end with ``move_to_end``)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: Hashable, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self.size:
            self.popitem(last=False)
