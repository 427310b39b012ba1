"""Per-request dataloaders: every video, stats and channel lookup of one request is one SQL statement.

Stats and channels are read as the privacy layer will release them: closed
floor buckets before the request's cutoff, totals in steps of k
(gateway.privacy.release). The layer is known once the policy has decided,
before any resolver runs.
"""

from __future__ import annotations

import asyncio
from cachetools import LRUCache
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from strawberry.dataloader import DataLoader

from gateway.errors import PolicyUnavailable
from gateway.privacy.layer import PrivacyLayer
from gateway.privacy.release import ReleasedStats, release_video_stats
from gateway.store import queries
from gateway.store.queries import Bucket, Granularity, VideoRow, VideoStatsRow

__all__ = ["FingerprintCache", "Loaders"]

Value = TypeVar("Value")

NOTHING_RELEASED = ReleasedStats(VideoStatsRow(), None, None)


class FingerprintCache:
    """Values worked out from a subject's data before a cutoff (released totals, a timeline's
    buckets), kept with the fingerprint of that data (`queries.stats_fingerprints`). A cutoff
    moves once a floor bucket, so a dashboard polling a video asks the cheap fingerprint and
    reuses the work; any event stored before the cutoff changes the fingerprint, and the value
    is worked out again."""

    SIZE = 50_000

    def __init__(self) -> None:
        self._entries: LRUCache[tuple[Hashable, ...], tuple[tuple[int, ...], Any]] = LRUCache(self.SIZE)

    def get(self, key: tuple[Hashable, ...], fingerprint: tuple[int, ...]) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[0] != fingerprint:
            return None
        return entry[1]

    def clear(self) -> None:
        self._entries.clear()

    def put(self, key: tuple[Hashable, ...], fingerprint: tuple[int, ...], value: Any) -> None:
        self._entries[key] = (fingerprint, value)


class Loaders:
    def __init__(self, reader: asyncpg.Pool, cache: FingerprintCache | None = None) -> None:
        self._reader = reader
        self._cache = cache or FingerprintCache()
        self.layer: PrivacyLayer | None = None  # set by the policy guard
        no_video: VideoRow | None = None
        self.video: DataLoader[str, VideoRow | None] = DataLoader(self._batch(queries.videos_by_id, no_video))
        no_fingerprint: tuple[int, ...] | None = None
        self.fingerprint: DataLoader[str, tuple[int, ...] | None] = DataLoader(self._batch(self._fingerprints, no_fingerprint))
        self.stats: DataLoader[str, ReleasedStats] = DataLoader(self._released_stats)
        self.channels: DataLoader[str, list[Bucket]] = DataLoader(self._released_channels)

    # A loaded value is shared by every field that asked for it. When graphql-core
    # abandons one of those fields (a sibling's error nulled its parent) it cancels
    # what that field awaits; the shield keeps that from cancelling the shared load.
    def video_of(self, video_id: str) -> Awaitable[VideoRow | None]:
        return asyncio.shield(self.video.load(video_id))

    def stats_of(self, video_id: str) -> Awaitable[ReleasedStats]:
        return asyncio.shield(self.stats.load(video_id))

    def channels_of(self, video_id: str) -> Awaitable[list[Bucket]]:
        return asyncio.shield(self.channels.load(video_id))

    async def timeline_of(self, metric: str, video_id: str, granularity: Granularity, until: datetime) -> list[Bucket]:
        """`queries.timeline` (it reads the ledger to count distinct people), reused while the video's data is unchanged."""

        async def read(conn: asyncpg.Connection) -> list[Bucket]:
            return await queries.timeline(conn, metric, video_id, granularity, until)

        return await self._fingerprinted(("timeline", metric, video_id, granularity, until), video_id, read)

    async def audience_of(self, video_id: str, dimension: str, until: datetime) -> list[Bucket]:
        """`queries.audience` (it reads the ledger), reused while the video's data is unchanged."""

        async def read(conn: asyncpg.Connection) -> list[Bucket]:
            return await queries.audience(conn, video_id, dimension, until)

        return await self._fingerprinted(("audience", video_id, dimension, until), video_id, read)

    async def _fingerprinted(
        self, key: tuple[Hashable, ...], video_id: str, read: Callable[[asyncpg.Connection], Awaitable[list[Bucket]]]
    ) -> list[Bucket]:
        """`read`'s value, cached with the fingerprint of the video's data before the request's cutoff.
        Every `until` a resolver reads to is at or before that cutoff, so an unchanged fingerprint
        means unchanged data for it."""
        fingerprint = await asyncio.shield(self.fingerprint.load(video_id))
        if fingerprint is None:
            return []
        cached: list[Bucket] | None = self._cache.get(key, fingerprint)
        if cached is not None:
            return cached
        async with self._reader.acquire() as conn:
            value = await read(conn)
        self._cache.put(key, fingerprint, value)
        return value

    def require_layer(self) -> PrivacyLayer:
        """The request's privacy layer; a request without one is refused, never served."""
        if self.layer is None:
            raise PolicyUnavailable("no privacy terms for this request")  # never serve without them
        return self.layer

    async def _fingerprints(self, conn: asyncpg.Connection, video_ids: Sequence[str]) -> dict[str, tuple[int, ...]]:
        return await queries.stats_fingerprints(conn, video_ids, self.require_layer().cutoff)

    async def _released_stats(self, video_ids: list[str]) -> list[ReleasedStats]:
        layer = self.require_layer()
        floor, k, cutoff = layer.terms.floor, layer.k, layer.cutoff
        loaded = await self.fingerprint.load_many(video_ids)
        fingerprints = {video_id: fingerprint for video_id, fingerprint in zip(video_ids, loaded, strict=True) if fingerprint is not None}
        found: dict[str, ReleasedStats] = {}
        missing = []
        for video_id, fingerprint in fingerprints.items():
            cached: ReleasedStats | None = self._cache.get(("stats", video_id, floor, k, cutoff), fingerprint)
            if cached is None:
                missing.append(video_id)
            else:
                found[video_id] = cached
        if missing:
            async with self._reader.acquire() as conn:
                series = await queries.stats_series(conn, missing, floor, cutoff, k)
            for video_id in missing:
                if video_id in series:
                    found[video_id] = released = release_video_stats(series[video_id], k, floor)
                    self._cache.put(("stats", video_id, floor, k, cutoff), fingerprints[video_id], released)
        return [found.get(video_id, NOTHING_RELEASED) for video_id in video_ids]

    async def _released_channels(self, video_ids: list[str]) -> list[list[Bucket]]:
        # Channels count the hours whose shares the totals released; the stats load says which.
        released = await self.stats.load_many(video_ids)
        until = {video_id: stats.shares_until for video_id, stats in zip(video_ids, released, strict=True) if stats.shares_until}
        if not until:
            return [[] for _ in video_ids]
        async with self._reader.acquire() as conn:
            found = await queries.channels_released(conn, until)
        return [found.get(video_id, []) for video_id in video_ids]

    def _batch(
        self,
        query: Callable[[asyncpg.Connection, Sequence[str]], Awaitable[Mapping[str, Value]]],
        missing: Value,
    ) -> Callable[[list[str]], Awaitable[list[Value]]]:
        async def load(keys: list[str]) -> list[Value]:
            async with self._reader.acquire() as conn:
                found = await query(conn, keys)
            return [found.get(key, missing) for key in keys]

        return load
