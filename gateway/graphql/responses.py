"""Whole answers, kept for as long as nothing they were made from can have changed.

An answer to a query is a function of the document, operation and variables;
who asks; what the policy decided on them (the policy's revision, the privacy
terms and the owner-only coordinates; a denial is never kept); the request's minute (every
cutoff and default range is taken from it: gateway.graphql.context); the
catalogue of published videos; and the releases it read. A release never
changes once made, and one made before a settled cutoff is final
(gateway.store.releases) unless a backfill is giving its subject a past. So
an answer is kept under a digest of all of these but the releases and the
minute, with the store's answer version (the catalogue's version and the
history's epoch, migration 0012, read once for all the requests that asked while
the previous read was under way: gateway.store.answer_version) standing for the
catalogue and for backfills. It is kept only when every release it read was
final, the terms draw no noise (an app's answer is made anew, so every draw is
charged), every field it asked for is one whose resolver is known to read
nothing else (`KEPT_COORDINATES`: opt-in, so a new field is answered anew until
someone has checked what it reads and listed it), no resolver read the store
outside the catalogue all the same (`RequestContext.catalogue_only`), and it
has no error. The policy still decides every request before a kept answer is
looked up, and the rate limit and an app's grant are checked before that.

A principal's answers are kept for its minute. Each principal's minutes begin
at a second of their own (`answer_minute`): when every principal's minute
turned at :00, every kept answer was made anew at once, and at 2 workers on 2
cores that was a stall of 50 ms a worker each minute (the requests slower than
p99 in any 8 s that held a minute's turn). The first answer a principal keeps
in a new minute drops its last minute's, which no request can hit again. Each
principal has its own share of the bytes and evicts only its own answers to
stay within it; when the whole cache is full, the answers of principals whose
minute has passed (none can be hit again) are dropped, and if it is still full
a new answer is not kept rather than another principal's evicted. So no
principal's coming and going can be read off another's evictions.

Whether an answer is kept depends on the clock, the catalogue (public),
backfills, the request and whether the same principal asked it this minute:
for the anonymous, whether anyone did. A kept answer comes faster, so an
anonymous client can tell that someone else asked the same public question
this minute (as the policy's decision cache and the release reader's kept
answers tell, more faintly, that someone asked recently); nothing about the
activity counted. Activity not yet released changes nothing here.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from gateway.auth import Principal
from gateway.clock import to_minute
from gateway.privacy.terms import PrivacyTerms

__all__ = ["KEPT_COORDINATES", "ResponseCache", "answer_digest", "answer_minute", "keepable"]

# Documents and variables longer than this together are answered, not kept.
MAX_KEY_BYTES = 16 * 1024
# What an entry costs besides its body: its digest, and its slots in two dictionaries.
ENTRY_OVERHEAD = 200
# The share of the cache one principal may hold.
PRINCIPAL_SHARE = 4

# The fields whose resolvers read only the catalogue of published videos (RequestContext's
# catalogue methods) and releases through the privacy service, so that an answer made of them is
# what gateway.store.catalog_version and the settled cutoffs say it is. Not here, and so never
# kept: Query.me (a principal's own rows), Query.decisionLog (private, growing), Video.
# consentedSharers (consent rows, withdrawn at any time), Mutation.* and introspection.
_KEPT_FIELDS = {
    "Query": ("video", "creator"),
    "Video": ("id", "creatorId", "publishedAt", "stats", "shareTimeline", "viewTimeline", "shareChannels", "audience",
              "retention", "commentSentiment", "shareSurges"),
    "VideoStats": ("views", "likes", "comments", "shares", "reach", "averageWatchSeconds", "likeRatio", "engagementRate", "completionRate"),
    # Issue 15's insights: releases through the privacy service, the video's duration from the
    # catalogue (a duration that arrives later updates the video's row, and so the catalogue's
    # version), a time zone's offset at the request's minute.
    "Retention": ("points",),
    "RetentionPoint": ("percent", "share", "suppressed"),
    "ShareSurge": ("releasedAt", "factor", "sharesPerHour"),
    "AudienceActivity": ("timeZone", "cells"),
    "ActivityCell": ("dayOfWeek", "hour", "viewers", "suppressed"),
    "Timeline": ("granularity", "from", "to", "buckets"),
    "TimeBucket": ("start", "count", "suppressed"),
    "Breakdown": ("buckets",),
    "BreakdownBucket": ("key", "count", "suppressed"),
    "Creator": ("id", "totals", "videos", "followerGrowth", "audienceActivity"),
    "CreatorTotals": ("videos", "views", "likes", "comments", "shares", "followers", "reach"),
    "VideoConnection": ("edges", "pageInfo"),
    "VideoEdge": ("cursor", "node"),
    "PageInfo": ("hasNextPage", "endCursor"),
}
# (`__typename` only names the type it is asked on.)
KEPT_COORDINATES = frozenset(f"{type_name}.{name}" for type_name, names in _KEPT_FIELDS.items() for name in (*names, "__typename"))


def keepable(coordinates: frozenset[str]) -> bool:
    """Whether an answer to an operation asking for `coordinates` (every `Type.field` in it) may be kept."""
    return coordinates <= KEPT_COORDINATES


def answer_minute(arrived: datetime, principal: Principal, terms: PrivacyTerms) -> datetime:
    """The time a request that `arrived` is answered at: the start of its asker's minute. A
    principal's minutes begin at a second of its own, from a digest of who it is (the same in
    every process), so that the answers of many principals do not all turn at once. An answer that
    is never kept (noised) or charged to a daily budget is answered at the start of the clock's
    minute, :00, so that its budget's day begins at midnight."""
    if terms.noised or terms.budget_per_day is not None:
        return to_minute(arrived)
    who = hashlib.blake2b(f"{principal.kind.value}\0{principal.id or ''}\0{principal.app_id or ''}".encode(), digest_size=8).digest()
    return to_minute(arrived, timedelta(seconds=int.from_bytes(who, "big") % 60))


def answer_digest(
    query: str,
    operation_name: str | None,
    variables: dict[str, object] | None,
    terms: PrivacyTerms,
    owner_only: frozenset[str],
    revision: str,
    version: tuple[int, int],
) -> bytes | None:
    """What a principal's answer is kept under within a minute; None: not kept (noised terms, or a
    request too large to be worth keeping)."""
    if terms.noised:
        return None
    try:
        variables_key = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    document = query.encode()
    if len(document) + len(variables_key) > MAX_KEY_BYTES:
        return None
    decided = orjson.dumps([operation_name, revision, terms.k, terms.floor.value, terms.delay.total_seconds(), sorted(owner_only), version])
    return hashlib.sha256(b"\0".join((document, variables_key, decided))).digest()


@dataclass
class _Held:
    """One principal's answers of its minute, least recently used first, and their bytes."""

    minute: datetime
    answers: OrderedDict[bytes, bytes] = field(default_factory=OrderedDict)
    bytes: int = 0


class ResponseCache:
    """Rendered answers, by principal and digest, each principal's of its current minute only,
    within a budget of bytes that no principal may take more than a quarter of."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_principal_bytes = max_bytes // PRINCIPAL_SHARE
        self.enabled = max_bytes > 0
        self._kept: dict[Principal, _Held] = {}
        # The latest minute the answers of principals whose minute had passed were dropped for.
        self._passed_before: datetime | None = None
        self.bytes = 0
        # Since start: answers served kept, and looked for but made anew.
        self.hits = 0
        self.misses = 0

    def get(self, principal: Principal, minute: datetime, digest: bytes) -> bytes | None:
        held = self._kept.get(principal)
        if held is None or held.minute != minute or (body := held.answers.get(digest)) is None:
            self.misses += 1
            return None
        held.answers.move_to_end(digest)
        self.hits += 1
        return body

    def put(self, principal: Principal, minute: datetime, digest: bytes, body: bytes | memoryview) -> None:
        if not self.enabled:
            return
        held = self._kept.get(principal)
        if held is not None and minute != held.minute:
            if minute < held.minute:
                return  # a request of a minute already gone
            self._drop(principal)
            held = None
        size = len(body) + ENTRY_OVERHEAD
        if size > self.max_principal_bytes or (held is not None and digest in held.answers):
            return  # too large, or kept already (two requests made it at once: the same answer)
        if held is None:
            held = self._kept[principal] = _Held(minute)
        held.answers[digest] = bytes(memoryview(body))  # exactly its length (a serialiser's buffer may be larger)
        held.bytes += size
        self.bytes += size
        while held.bytes > self.max_principal_bytes:
            self._forget(principal, next(iter(held.answers)))
        if self.bytes > self.max_bytes:
            self._drop_passed(minute)
        if self.bytes > self.max_bytes:
            # Full: the answer is not kept. Evicting another principal's would let that one's
            # coming and going be read off one's own evictions.
            self._forget(principal, digest)

    def _drop_passed(self, minute: datetime) -> None:
        """Drops the answers of every principal whose minute had ended by the start of `minute`
        (a minute that has begun: every principal's began less than a minute before it)."""
        if self._passed_before is not None and minute <= self._passed_before:
            return  # looked already, for this minute or a later one
        self._passed_before = minute
        ended = minute - timedelta(minutes=1)
        for principal in [principal for principal, held in self._kept.items() if held.minute <= ended]:
            self._drop(principal)

    def _forget(self, principal: Principal, digest: bytes) -> None:
        held = self._kept[principal]
        size = len(held.answers.pop(digest)) + ENTRY_OVERHEAD
        held.bytes -= size
        self.bytes -= size
        if not held.answers:
            del self._kept[principal]

    def _drop(self, principal: Principal) -> None:
        self.bytes -= self._kept.pop(principal).bytes

    def clear(self) -> None:
        self._kept.clear()
        self._passed_before = None
        self.bytes = 0

    def __len__(self) -> int:
        return sum(len(held.answers) for held in self._kept.values())
