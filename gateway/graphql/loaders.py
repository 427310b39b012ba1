"""Per-request dataloaders: every video, stats and channel lookup of one request is one SQL statement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import asyncpg
from strawberry.dataloader import DataLoader

from gateway.store import queries
from gateway.store.queries import Bucket, VideoRow, VideoStatsRow

__all__ = ["Loaders"]

Value = TypeVar("Value")


class Loaders:
    def __init__(self, reader: asyncpg.Pool) -> None:
        self._reader = reader
        no_video: VideoRow | None = None
        self.video: DataLoader[str, VideoRow | None] = DataLoader(self._batch(queries.videos_by_id, no_video))
        self.stats: DataLoader[str, VideoStatsRow] = DataLoader(self._batch(queries.stats_by_video, VideoStatsRow()))
        no_channels: list[Bucket] = []
        self.channels: DataLoader[str, list[Bucket]] = DataLoader(self._batch(queries.channels_by_video, no_channels))

    # A loaded value is shared by every field that asked for it. When graphql-core
    # abandons one of those fields (a sibling's error nulled its parent) it cancels
    # what that field awaits; the shield keeps that from cancelling the shared load.
    def video_of(self, video_id: str) -> Awaitable[VideoRow | None]:
        return asyncio.shield(self.video.load(video_id))

    def stats_of(self, video_id: str) -> Awaitable[VideoStatsRow]:
        return asyncio.shield(self.stats.load(video_id))

    def channels_of(self, video_id: str) -> Awaitable[list[Bucket]]:
        return asyncio.shield(self.channels.load(video_id))

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
