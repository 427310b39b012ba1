"""A bounded LRU of policy decisions, keyed so that a reload or another principal never hits."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["DecisionCache"]

Entry = TypeVar("Entry")


class _Entries(Generic[Entry]):
    """Entries in least-recently-used order, within a count and a weight (bytes held, roughly)."""

    def __init__(self, max_entries: int, max_bytes: int | None, weigh: Callable[[Hashable, Entry], int]) -> None:
        self.max_entries, self.max_bytes, self._weigh = max_entries, max_bytes, weigh
        self._items: OrderedDict[Hashable, tuple[Entry, int]] = OrderedDict()
        self.nbytes = 0

    def get(self, key: Hashable) -> Entry | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Hashable, entry: Entry) -> None:
        weight = self._weigh(key, entry)
        if self.max_bytes is not None and weight > self.max_bytes:
            return  # one entry bigger than the whole cache is not kept (it would evict everything)
        previous = self._items.pop(key, None)
        if previous is not None:
            self.nbytes -= previous[1]
        self._items[key] = (entry, weight)
        self.nbytes += weight
        while len(self._items) > self.max_entries or (self.max_bytes is not None and self.nbytes > self.max_bytes):
            self.nbytes -= self._items.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._items)


class DecisionCache(Generic[Entry]):
    """Decisions by key; the key starts with the policy revision, so a reload invalidates them all.

    Bounded by `max_entries` and, when given, by `max_bytes` as `weigh(key, entry)` estimates
    them: a key holds a whole question (up to 16 KB of variables), so counting entries alone
    would not bound memory."""

    def __init__(
        self, max_entries: int = 4096, max_bytes: int | None = None, weigh: Callable[[Hashable, Entry], int] = lambda key, entry: 1
    ) -> None:
        self.max_entries = max_entries
        self._bounds = (max_entries, max_bytes, weigh)
        self._entries: _Entries[Entry] = _Entries(*self._bounds)
        self._revision: str | None = None
        # Decisions made under a revision before it went in force (warming): they become the
        # cache's entries when that revision is first asked for.
        self._staged: _Entries[Entry] = _Entries(*self._bounds)
        self._staged_revision: str | None = None
        self.hits = 0
        self.misses = 0

    def get(self, revision: str, key: Hashable) -> Entry | None:
        if revision != self._revision:
            # A new policy is in force: nothing decided under the old one may be served.
            self._entries = self._staged if revision == self._staged_revision else _Entries(*self._bounds)
            self._revision = revision
            self._staged, self._staged_revision = _Entries(*self._bounds), None
        decision = self._entries.get(key)
        if decision is None:
            self.misses += 1
            return None
        self.hits += 1
        return decision

    def put(self, revision: str, key: Hashable, decision: Entry) -> None:
        if revision != self._revision:
            return  # decided under a policy that has since been replaced
        self._entries.put(key, decision)

    def stage(self, revision: str, key: Hashable, decision: Entry) -> None:
        """Keeps a decision made under `revision` before it is in force, for when it is."""
        if revision == self._revision:
            self.put(revision, key, decision)
            return
        if revision != self._staged_revision:
            self._staged, self._staged_revision = _Entries(*self._bounds), revision
        self._staged.put(key, decision)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """What the entries in force weigh (their count when no weight was given)."""
        return self._entries.nbytes

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0
