"""The narrow reader of the release history (reader pool): which release a principal may see, and its values.

A release never changes once made, and releases are made at arrival, so what a
cutoff in the past selects is settled once that cutoff is behind every commit:
such answers are kept, and nothing that arrives live later (released or not)
invalidates them. Only a backfill makes releases in the past
(gateway.store.replay); each arrival it applies there moves the history's epoch
(migration 0012), and what was kept under an older epoch is let go
(`at_epoch`: from each request's read of it, or every few seconds while
nothing reads it). An answer that found no release is kept for a minute only. Nothing here reads the live totals or the ledger: an answer
costs the same whether or not unreleased activity exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from cachetools import LRUCache, TTLCache

from gateway.clock import Clock, utc_now
from gateway.store import queries
from gateway.store.failures import STORE_FAILURES

__all__ = ["Release", "ReleaseReader", "StoredCell"]

logger = logging.getLogger("gateway.store")


@dataclass(frozen=True, slots=True)
class Release:
    """One release of a metric of a subject: its cumulative values."""

    seq: int
    events: int  # the metric's count
    people: int  # the distinct people behind it (a video's viewers: its reach)
    # The sum over viewers of each one's watch time up to `watch_cap_ms` (views; 0 for other
    # metrics). None: made before watch time was capped per viewer (migration 0015).
    watch_capped_ms: int | None
    watch_cap_ms: int | None


@dataclass(frozen=True, slots=True)
class StoredCell:
    """A breakdown cell as of a release."""

    dimension: str
    value: str
    events: int
    people: int


# A principal with step K sees the releases at which the count of people crossed a multiple of K
# (every release when K is 0).
_CROSSES_STEP = "($4::bigint = 0 OR r.people / $4::bigint > r.prev_people / $4::bigint)"

_VISIBLE = f"""
SELECT q.subject_id, q.metric, r.seq, r.events, r.people, r.watch_capped_ms, r.watch_cap_ms
FROM unnest($1::text[], $2::text[]) AS q (subject_id, metric)
CROSS JOIN LATERAL (
    SELECT r.seq, r.events, r.people, r.watch_capped_ms, r.watch_cap_ms
    FROM releases r
    WHERE r.subject_id = q.subject_id AND r.metric = q.metric::"char" AND r.made_at < $3 AND {_CROSSES_STEP}
    ORDER BY r.made_at DESC
    LIMIT 1
) r
"""

# The count at the last visible release before $5 (bucket NULL), then, per $6 bucket of [$5, $3)
# in which a visible release was made, the count at the last one.
_SERIES = f"""
(SELECT NULL::timestamptz, r.events FROM releases r
 WHERE r.subject_id = $1 AND r.metric = $2::text::"char" AND r.made_at < $5 AND {_CROSSES_STEP}
 ORDER BY r.made_at DESC LIMIT 1)
UNION ALL
(SELECT DISTINCT ON (1) date_trunc($6, r.made_at, 'UTC'), r.events FROM releases r
 WHERE r.subject_id = $1 AND r.metric = $2::text::"char" AND r.made_at >= $5 AND r.made_at < $3 AND {_CROSSES_STEP}
 ORDER BY 1, r.made_at DESC)
"""

# Per $5 bucket in which a visible release was made before $3, the count and the people at the last one.
_POINTS = f"""
SELECT DISTINCT ON (1) date_trunc($5, r.made_at, 'UTC'), r.events, r.people FROM releases r
WHERE r.subject_id = $1 AND r.metric = $2::text::"char" AND r.made_at < $3 AND {_CROSSES_STEP}
ORDER BY 1, r.made_at DESC
"""

# Per (subject, metric, release), every cell's row with the greatest seq up to that release.
_CELLS = """
SELECT DISTINCT ON (q.subject_id, q.metric, c.dimension, c.value)
       q.subject_id, q.metric, q.seq, c.dimension::text, c.value, c.events, c.people
FROM unnest($1::text[], $2::text[], $3::integer[]) AS q (subject_id, metric, seq)
JOIN release_cells c ON c.subject_id = q.subject_id AND c.metric = q.metric::"char" AND c.seq <= q.seq
ORDER BY q.subject_id, q.metric, c.dimension, c.value, c.seq DESC
"""


class ReleaseReader:
    """Reads releases through one pool, keeping what can no longer change."""

    CACHE_SIZE = 100_000
    ABSENT_SECONDS = 60.0

    def __init__(self, pool: asyncpg.Pool, clock: Clock = utc_now) -> None:
        self._pool = pool
        self._kept: LRUCache[Hashable, Any] = LRUCache(self.CACHE_SIZE)
        # Settled questions that found no release, each for ABSENT_SECONDS of the clock.
        self._absent: TTLCache[Hashable, bool] = TTLCache(self.CACHE_SIZE, self.ABSENT_SECONDS, timer=lambda: clock().timestamp())
        # Kept answers are keyed by the epoch they were read under: a read in flight across a move
        # keeps nothing a later request can hit.
        self._epoch = 0

    def clear(self) -> None:
        self._kept.clear()
        self._absent.clear()

    @property
    def epoch(self) -> int:
        """The history's epoch as last read: take it before reading what a derivation is made of."""
        return self._epoch

    def derived(self, epoch: int, key: tuple[Hashable, ...]) -> Any | None:
        """What `remember` kept under `key` for releases read under `epoch` (None: nothing). For
        values derived from releases alone, which never change once made (a breakdown's cells as
        suppressed at one release and k): a request then does not derive them again."""
        return self._kept.get(("derived", epoch, *key)) if epoch == self._epoch else None

    def remember(self, epoch: int, key: tuple[Hashable, ...], value: Any) -> None:
        if epoch == self._epoch:
            self._kept[("derived", epoch, *key)] = value

    def at_epoch(self, epoch: int) -> None:
        """The history's epoch as just read: a backfill moved it, so what was kept may lack releases.
        (Only forward: a request that read it before another saw it move must not move it back.)"""
        if epoch > self._epoch:
            self.clear()
            self._epoch = epoch

    async def follow_epoch(self, interval: float) -> None:
        """Reads the history's epoch every `interval` seconds (for a server that keeps no whole
        answers, whose requests do not read it), until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                async with self._pool.acquire() as conn:
                    self.at_epoch((await queries.answer_version(conn))[1])
            except STORE_FAILURES as exc:
                logger.warning("the history's epoch could not be read (%s); trying again", exc)

    async def visible(
        self, keys: Sequence[tuple[str, str]], before: datetime, step: int, *, settled: bool
    ) -> dict[tuple[str, str], Release]:
        """For each (subject, metric code), the latest release made before `before` that a
        principal with `step` may see; absent when there is none. `settled`: no release can
        still be made before `before`, so the answer is kept."""
        found: dict[tuple[str, str], Release] = {}
        missing = []
        epoch = self._epoch
        for key in keys:
            question = ("visible", *key, before, step, epoch)
            kept = self._kept.get(question) if settled else None
            if kept is not None:
                found[key] = kept
            elif not (settled and question in self._absent):
                missing.append(key)
        if not missing:
            return found
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_VISIBLE, [key[0] for key in missing], [key[1] for key in missing], before, step)
        read = {(row[0], row[1]): Release(*row[2:]) for row in rows}
        for key in missing:
            release = read.get(key)
            if release is not None:
                found[key] = release
            if settled:
                if release is None:
                    self._absent[("visible", *key, before, step, epoch)] = True
                else:
                    self._kept[("visible", *key, before, step, epoch)] = release
        return found

    async def series(
        self, subject: str, metric: str, granularity: str, start: datetime, end: datetime, step: int, *, settled: bool
    ) -> tuple[int, Mapping[datetime, int]]:
        """The metric's count at the last visible release before `start` (0: none), and for each
        `granularity` bucket of [start, end) in which a visible release was made, the count at the
        last one. (A busy subject makes hundreds of releases a month; a timeline reads one row a bucket.)"""
        key = ("series", subject, metric, granularity, start, end, step, self._epoch)
        kept = self._kept.get(key) if settled else None
        if kept is not None:
            return kept  # type: ignore[no-any-return]
        if settled and key in self._absent:
            return 0, {}
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_SERIES, subject, metric, end, step, start, granularity)
        baseline = rows[0][1] if rows and rows[0][0] is None else 0
        answer = (baseline, {row[0]: row[1] for row in rows if row[0] is not None})
        if settled and rows:
            self._kept[key] = answer
        elif settled:
            self._absent[key] = True
        return answer

    async def points(self, subject: str, metric: str, granularity: str, before: datetime, step: int) -> tuple[tuple[datetime, int, int], ...]:
        """For each `granularity` bucket in which a visible release was made before `before`,
        oldest first: its start, and the count and the people at the last such release in it. Not
        kept here: what is derived from them is (gateway.privacy.disclosure.share_surges)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_POINTS, subject, metric, before, step, granularity)
        return tuple((row[0], row[1], row[2]) for row in rows)

    async def cells(self, keys: Sequence[tuple[str, str, int]]) -> dict[tuple[str, str, int], tuple[StoredCell, ...]]:
        """For each (subject, metric code, release seq), every breakdown cell as of that release (a
        release never changes: kept)."""
        found: dict[tuple[str, str, int], tuple[StoredCell, ...]] = {}
        missing = []
        for key in keys:
            kept = self._kept.get(("cells", *key))
            if kept is None:
                missing.append(key)
            else:
                found[key] = kept
        if not missing:
            return found
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_CELLS, [key[0] for key in missing], [key[1] for key in missing], [key[2] for key in missing])
        read: dict[tuple[str, str, int], list[StoredCell]] = {key: [] for key in missing}
        for row in rows:
            read[(row[0], row[1], row[2])].append(StoredCell(*row[3:]))
        for key, cells in read.items():
            found[key] = self._kept[("cells", *key)] = tuple(cells)
        return found

