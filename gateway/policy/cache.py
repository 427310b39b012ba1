"""A bounded LRU of policy decisions, keyed so that a reload or another principal never hits."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["DecisionCache"]

Entry = TypeVar("Entry")


class DecisionCache(Generic[Entry]):
    """Decisions by key; the key starts with the policy revision, so a reload invalidates them all."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._revision: str | None = None
        # Decisions made under a revision before it went in force (warming): they become the
        # cache's entries when that revision is first asked for.
        self._staged: OrderedDict[Hashable, Entry] = OrderedDict()
        self._staged_revision: str | None = None
        self.hits = 0
        self.misses = 0

    def get(self, revision: str, key: Hashable) -> Entry | None:
        if revision != self._revision:
            # A new policy is in force: nothing decided under the old one may be served.
            self._entries = self._staged if revision == self._staged_revision else OrderedDict()
            self._revision = revision
            self._staged, self._staged_revision = OrderedDict(), None
        decision = self._entries.get(key)
        if decision is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return decision

    def put(self, revision: str, key: Hashable, decision: Entry) -> None:
        if revision != self._revision:
            return  # decided under a policy that has since been replaced
        self._entries[key] = decision
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def stage(self, revision: str, key: Hashable, decision: Entry) -> None:
        """Keeps a decision made under `revision` before it is in force, for when it is."""
        if revision == self._revision:
            self.put(revision, key, decision)
            return
        if revision != self._staged_revision:
            self._staged, self._staged_revision = OrderedDict(), revision
        self._staged[key] = decision
        while len(self._staged) > self.max_entries:
            self._staged.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0
