"""A least-recently-used map bounded by its values' sizes in bytes, safe across threads.

The in-process memos of the search path (the chunks read from the store, the encodings of
recent questions) keep values by key within a byte budget, and drop the least recently used
beyond it. The caller says each value's size, since only it knows what a value holds.

>>> memo = SizedLRU[str, str](max_bytes=10)
>>> memo.put_many([("a", "first", 5), ("b", "second", 6)])
>>> memo.get_many(["a", "b"])
{'b': 'second'}
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from typing import Generic, TypeVar

__all__ = ["SizedLRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedLRU(Generic[K, V]):
    """Values by key, the least recently used dropped beyond ``max_bytes`` (0 keeps nothing).

    A value larger than the whole budget is not kept; putting a key again replaces its value.
    ``hits`` and ``misses`` count the keys asked for.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The bytes held now, as the callers sized them."""
        return self._bytes

    def get_many(self, keys: Sequence[K]) -> dict[K, V]:
        """The values held for ``keys`` (absent keys are left out); each becomes the most
        recently used."""
        found: dict[K, V] = {}
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is None:
                    self.misses += 1
                    continue
                self._entries.move_to_end(key)
                self.hits += 1
                found[key] = entry[0]
        return found

    def put_many(self, items: Iterable[tuple[K, V, int]]) -> None:
        """Hold these ``(key, value, size)``, dropping the least recently used beyond the
        budget."""
        if self.max_bytes <= 0:
            return
        with self._lock:
            for key, value, size in items:
                if size > self.max_bytes:
                    continue
                previous = self._entries.pop(key, None)
                if previous is not None:
                    self._bytes -= previous[1]
                self._entries[key] = (value, size)
                self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def forget(self, keys: Iterable[K] | None = None) -> None:
        """Drop ``keys`` (``None``: everything)."""
        with self._lock:
            if keys is None:
                self._entries.clear()
                self._bytes = 0
                return
            for key in keys:
                entry = self._entries.pop(key, None)
                if entry is not None:
                    self._bytes -= entry[1]
