"""Whole answers, kept for as long as nothing they were made from can have changed.

An answer to a query is a function of the document, operation and variables;
who asks; what the policy decided on them (the privacy terms and the
owner-only coordinates; a denial is never kept); the request's minute (every
cutoff and default range is taken from it: gateway.graphql.context); the
catalogue of published videos; and the releases it read. A release never
changes once made, and one made before a settled cutoff is final
(gateway.store.releases). So an answer is kept under a key of all of these but
the releases, with the catalogue's version (one indexed read a request, in
place of the rows: migration 0012) standing for the catalogue. It is kept only
when every release it read was final, the terms draw no noise (an app's
answer is made anew, so every draw is charged), no resolver read the store
outside the catalogue (`RequestContext.catalogue_only`), and it has no error.

A repeated dashboard then costs authentication, the policy's decision (from its
cache, logged as every decision is), one read and the bytes. Whether an answer
is kept depends on the clock, the catalogue (public), the request and whether
the same principal (for the anonymous: anyone) asked it this minute; never on
activity not yet released. A subject that gains a past by a backfill while it
had no release reaches kept answers within two minutes (a minute of this cache
after the release reader's minute: gateway.store.releases).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

import orjson
from cachetools import LRUCache

from gateway.auth import Principal
from gateway.privacy.terms import PrivacyTerms

__all__ = ["ResponseCache", "answer_key"]

# Documents and variables longer than this together are answered, not kept: a key holds them whole.
MAX_KEY_BYTES = 16 * 1024
ENTRY_OVERHEAD = 256


@dataclass(frozen=True, slots=True)
class _Kept:
    body: bytes
    size: int


def answer_key(
    query: str,
    operation_name: str | None,
    variables: dict[str, object] | None,
    principal: Principal,
    terms: PrivacyTerms,
    owner_only: frozenset[str],
    minute: datetime,
) -> tuple[Hashable, ...] | None:
    """What an answer is kept under, less the catalogue's version; None: not kept (noised terms,
    or a request too large to key)."""
    if terms.noised:
        return None
    try:
        variables_key = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    if len(query) + len(variables_key) > MAX_KEY_BYTES:
        return None
    return (query, operation_name, variables_key, principal, terms.k, terms.floor, terms.delay, owner_only, minute)


class ResponseCache:
    """Rendered answers by key and catalogue version, least recently used first out, within a
    budget of bytes."""

    def __init__(self, max_bytes: int) -> None:
        self._kept: LRUCache[tuple[Hashable, ...], _Kept] = LRUCache(max(1, max_bytes), getsizeof=lambda kept: kept.size)
        self.enabled = max_bytes > 0

    def get(self, key: tuple[Hashable, ...], version: int) -> bytes | None:
        kept = self._kept.get((*key, version))
        return None if kept is None else kept.body

    def put(self, key: tuple[Hashable, ...], version: int, body: bytes) -> None:
        size = len(body) + len(key[0]) + len(key[2]) + ENTRY_OVERHEAD  # type: ignore[arg-type]
        if self.enabled and size <= self._kept.maxsize:
            self._kept[(*key, version)] = _Kept(body, size)

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)
