"""A creator: totals across their videos, the videos themselves, and follower growth."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from enum import Enum
from typing import Any

import strawberry

from gateway.errors import BadUserInput
from gateway.graphql import cursors
from gateway.graphql.audience import AudienceActivity, activity, week_hour_shift
from gateway.graphql.context import Context
from gateway.graphql.shapes import PageInfo, Timeline
from gateway.graphql.video import RangeEnd, RangeStart, Video, series
from gateway.ingest.events import is_platform_id
from gateway.privacy.metrics import AUDIENCE, FOLLOWERS, SHARES
from gateway.privacy.release import Granularity
from gateway.store.queries import VideoRow

__all__ = ["Creator", "VideoOrder"]

MAX_PAGE = 100


@strawberry.enum
class VideoOrder(Enum):
    PUBLISHED_AT = "published_at"
    SHARES = "shares"


@strawberry.type
class CreatorTotals:
    videos: int
    views: int
    likes: int
    comments: int
    shares: int
    followers: int = strawberry.field(description="People following, by each one's latest follow or unfollow.")
    reach: int = strawberry.field(
        description="Distinct viewers across the creator's videos, each counted once (not the sum of the videos' "
        "reach). The creator's only."
    )
    owner_id: strawberry.Private[str]


@strawberry.type
class VideoEdge:
    cursor: str
    node: Video


@strawberry.type
class VideoConnection:
    edges: list[VideoEdge]
    page_info: PageInfo


def encode_cursor(order: VideoOrder, sort_key: float, video_id: str) -> str:
    return cursors.encode(order.value, sort_key, video_id)


def decode_cursor(order: VideoOrder, cursor: str) -> tuple[float, str]:
    def position(parts: list[Any]) -> tuple[float, str]:
        kind, sort_key, video_id = parts
        if kind != order.value or not isinstance(sort_key, int | float) or not isinstance(video_id, str) or not is_platform_id(video_id):
            raise ValueError(cursor)
        return float(sort_key), video_id

    return cursors.decode(cursor, position, "`after` is not a cursor of this ordering; pass a cursor from `pageInfo.endCursor`")


@strawberry.type
class Creator:
    owner_id: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.owner_id)

    @strawberry.field(description="Totals as released: the sums of the videos' released counts, and released followers.")
    async def totals(self, info: Context) -> CreatorTotals:
        videos = await self._videos(info)
        totals = await info.context.privacy().creator_totals(self.owner_id, [video.video_id for video in videos])
        return CreatorTotals(**asdict(totals), owner_id=self.owner_id)

    @strawberry.field(description="The creator's videos, newest first or most shared (as released) first.")
    async def videos(
        self, info: Context, first: int = 10, after: str | None = None, order_by: VideoOrder = VideoOrder.PUBLISHED_AT
    ) -> VideoConnection:
        if not 1 <= first <= MAX_PAGE:
            raise BadUserInput(f"`first` must be between 1 and {MAX_PAGE}")
        position = decode_cursor(order_by, after) if after else None
        if order_by is VideoOrder.SHARES:
            rows = await self._ranked_by_shares(info, position, first + 1)
        else:
            rows = await info.context.creator_videos(self.owner_id, order_by.value, position, first + 1)
        page = rows[:first]
        for row, _ in page:
            info.context.videos.prime(row.video_id, row)
        edges = [VideoEdge(cursor=encode_cursor(order_by, key, row.video_id), node=Video.of(row)) for row, key in page]
        return VideoConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None),
        )

    @strawberry.field(description="Followers gained net per bucket, counted by the release that brought them. The creator's only.")
    async def follower_growth(
        self, info: Context, granularity: Granularity = Granularity.DAY, from_: RangeStart = None, to: RangeEnd = None
    ) -> Timeline | None:
        return await series(info, self.owner_id, FOLLOWERS, granularity, from_, to)

    @strawberry.field(
        description="Best time to post: the creator's distinct viewers by hour of the week, across all their videos, "
        "as released; cells below k suppressed. Hours are of `timeZone` (an IANA name), moved by its offset at the "
        "time of the request. The creator's only."
    )
    async def audience_activity(self, info: Context, time_zone: str = "UTC") -> AudienceActivity | None:
        shift = week_hour_shift(time_zone, info.context.now)
        return activity(time_zone, await info.context.privacy().breakdown(self.owner_id, AUDIENCE, "hour"), shift)

    async def _videos(self, info: Context) -> list[VideoRow]:
        return await info.context.creator_video_rows(self.owner_id)

    async def _ranked_by_shares(self, info: Context, after: tuple[float, str] | None, limit: int) -> list[tuple[VideoRow, float]]:
        """The creator's videos by the shares this principal sees (`stats.shares`), most first."""
        videos = await self._videos(info)
        privacy = info.context.privacy()
        shares = await asyncio.gather(*(privacy.count(video.video_id, SHARES) for video in videos))
        ranked = sorted(
            ((video, float(count)) for video, count in zip(videos, shares, strict=True)), key=lambda pair: (pair[1], pair[0].video_id), reverse=True
        )
        if after is not None:
            ranked = [pair for pair in ranked if (pair[1], pair[0].video_id) < after]
        return ranked[:limit]
