"""The GraphQL types. No type reachable from Query outside `Me` has a field that yields a user id
other than a creator's own (`creatorId`, `Creator.id`): viewers, likers, commenters, followers and
sharers are only ever counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql.pyutils import Path
from strawberry.types import Info

from gateway.auth import PrincipalKind
from gateway.errors import BadUserInput, Forbidden
from gateway.graphql import cursors
from gateway.graphql.context import RequestContext
from gateway.graphql.ranges import time_range
from gateway.ingest.events import AGE_BANDS, Channel, is_platform_id
from gateway.privacy.layer import PrivacyLayer
from gateway.privacy.release import released_followers, truncate
from gateway.privacy.suppression import Cell
from gateway.store import queries
from gateway.store.queries import Bucket, Granularity, VideoRow, VideoStatsRow

__all__ = ["Creator", "Me", "Video"]

Context = Info[RequestContext, None]

# The domains breakdowns list in full, and the key regions below k are pooled under.
CHANNELS = tuple(channel.value for channel in Channel)
AGE_BAND_KEYS = (*AGE_BANDS, "unknown")
OTHER_REGIONS = "OTHER"


# The store's own enum, exposed as is: resolvers pass the argument straight to the queries.
strawberry.enum(Granularity, description="The width of a timeline bucket (UTC).")


@strawberry.enum
class AudienceDimension(Enum):
    REGION = "region"
    AGE_BAND = "age_band"


@strawberry.enum
class VideoOrder(Enum):
    PUBLISHED_AT = "published_at"
    SHARES = "shares"


def is_owner(info: Context, creator_id: str) -> bool:
    """The principal is the creator, or an app acting for them."""
    principal = info.context.principal
    return principal.kind in (PrincipalKind.USER, PrincipalKind.APP) and principal.id == creator_id


def privacy(info: Context) -> PrivacyLayer:
    return info.context.loaders.require_layer()


def response_path(info: Context) -> str:
    keys: list[str] = []
    path: Path | None = info.path
    while path is not None:
        if isinstance(path.key, str):
            keys.append(path.key)
        path = path.prev
    return ".".join(reversed(keys))


def require_owner(info: Context, creator_id: str, coordinate: str) -> None:
    """Details of a video or creator are for the creator alone, unless the policy says otherwise.

    The policy's `owner_only` verdict is honoured by the fields that call this (the
    details of a video or a creator); without a decision (guard off) they always check."""
    decision = info.context.decision
    verdict = decision.fields.get(response_path(info)) if decision is not None else None
    if verdict is not None and not verdict.owner_only:
        return
    if not is_owner(info, creator_id):
        raise Forbidden(f"{coordinate} is visible to the creator only", field=coordinate)


@strawberry.type(description="One time bucket; `count` is null when `suppressed`.")
class TimeBucket:
    start: datetime
    count: int | None
    suppressed: bool


@strawberry.type
class Timeline:
    granularity: Granularity
    start: datetime = strawberry.field(name="from")
    end: datetime = strawberry.field(name="to")
    buckets: list[TimeBucket]


@strawberry.type(description="One cell of a breakdown; `count` is null when `suppressed`.")
class BreakdownBucket:
    key: str
    count: int | None
    suppressed: bool


@strawberry.type
class Breakdown:
    buckets: list[BreakdownBucket]


def time_buckets(cells: list[Cell]) -> list[TimeBucket]:
    return [TimeBucket(start=cell.key, count=cell.count, suppressed=cell.count is None) for cell in cells]  # type: ignore[arg-type]


def breakdown(cells: list[Cell]) -> Breakdown:
    """Visible cells first, largest first; suppressed cells after, in key order (never by their size)."""
    ranked = sorted(cells, key=lambda cell: (cell.count is None, -(cell.count or 0), str(cell.key)))
    return Breakdown(buckets=[BreakdownBucket(key=str(cell.key), count=cell.count, suppressed=cell.count is None) for cell in ranked])


def full_domain(buckets: list[Bucket], keys: Iterable[str]) -> list[Bucket]:
    """`buckets` with an empty bucket for every key of the domain that has none: which keys
    are listed then says nothing about who was there."""
    found = {str(bucket.key): bucket for bucket in buckets}
    return [found.get(key, Bucket(key, 0, 0)) for key in keys]


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@strawberry.type(
    description="Counts of a video as released: closed buckets only, growing in steps of k distinct actors "
    "(and noised for apps). views, likes, comments and shares are public; the rest is the creator's."
)
class VideoStats:
    # Plain attributes, not resolvers: the public counts are read on every dashboard request.
    views: int
    likes: int = strawberry.field(description="Likes net of unlikes.")
    comments: int
    shares: int
    completed_views: strawberry.Private[int]
    watch_ms: strawberry.Private[int | None]  # None: not served to this principal (noised counts)
    creator_id: strawberry.Private[str]

    @classmethod
    async def of(cls, info: Context, video_id: str, creator_id: str) -> VideoStats:
        layer = privacy(info)
        row = (await info.context.loaders.stats_of(video_id)).stats

        def released(metric: str, value: int) -> int:
            # A count nothing in the operation reads is neither noised nor charged (and never served).
            return layer.count(metric, video_id, value) if layer.asks_for(*STATS_READERS[metric]) else 0

        shares = released("shares", row.shares)
        if layer.terms.noised and layer.asks_for(*STATS_READERS["shares"]):
            # The total stays consistent with the visible channels it is the sum of.
            channels = layer.cells(
                "shares", video_id, full_domain(await info.context.loaders.channels_of(video_id), CHANNELS), scope="channel", tally=False
            )
            shares = consistent_total(shares, channels)
        return cls(
            views=released("views", row.views),
            likes=released("likes", row.likes),
            comments=released("comments", row.comments),
            shares=shares,
            completed_views=released("completed_views", row.completed_views),
            watch_ms=None if layer.terms.noised else row.watch_ms,
            creator_id=creator_id,
        )

    @strawberry.field(description="Likes per view.")
    def like_ratio(self, info: Context) -> float | None:
        require_owner(info, self.creator_id, "VideoStats.likeRatio")
        return ratio(self.likes, self.views)

    @strawberry.field(description="Likes, comments and shares per view.")
    def engagement_rate(self, info: Context) -> float | None:
        require_owner(info, self.creator_id, "VideoStats.engagementRate")
        return ratio(self.likes + self.comments + self.shares, self.views)

    @strawberry.field(description="Null where counts are noised: watch time has no bounded sensitivity.")
    def average_watch_seconds(self, info: Context) -> float | None:
        require_owner(info, self.creator_id, "VideoStats.averageWatchSeconds")
        seconds = None if self.watch_ms is None else ratio(self.watch_ms, self.views)
        return None if seconds is None else seconds / 1000

    @strawberry.field(description="Share of views watched to the end.")
    def completion_rate(self, info: Context) -> float | None:
        require_owner(info, self.creator_id, "VideoStats.completionRate")
        return ratio(min(self.completed_views, self.views), self.views)


# The fields of VideoStats that read each count.
STATS_READERS = {
    "views": (
        "VideoStats.views",
        "VideoStats.likeRatio",
        "VideoStats.engagementRate",
        "VideoStats.averageWatchSeconds",
        "VideoStats.completionRate",
    ),
    "likes": ("VideoStats.likes", "VideoStats.likeRatio", "VideoStats.engagementRate"),
    "comments": ("VideoStats.comments", "VideoStats.engagementRate"),
    "shares": ("VideoStats.shares", "VideoStats.engagementRate"),
    "completed_views": ("VideoStats.completionRate",),
}


def consistent_total(total: int, parts: list[Cell]) -> int:
    """A noisy total post-processed against its noisy parts: their sum when every part is
    visible, and never less than the visible parts add up to."""
    visible = sum(cell.count for cell in parts if cell.count is not None)
    if all(cell.count is not None for cell in parts):
        return visible
    return max(total, visible)


RangeStart = Annotated[
    datetime | None, strawberry.argument(name="from", description="Inclusive start (default: a span before `to`).")
]
RangeEnd = Annotated[datetime | None, strawberry.argument(description="Exclusive end (default: now).")]


async def video_timeline(
    info: Context, metric: str, video: VideoRow, granularity: Granularity, start: datetime | None, end: datetime | None
) -> Timeline:
    require_owner(info, video.creator_id, f"Video.{metric[:-1]}Timeline")
    layer = privacy(info)
    start, end = layer.served_range(granularity, *time_range(granularity, start, end, info.context.now))
    lifetime = await info.context.loaders.timeline_of(metric, video.video_id, granularity, layer.served_until(granularity))
    cells = layer.timeline(metric, video.video_id, lifetime, granularity, start, end)
    return Timeline(granularity=granularity, start=start, end=end, buckets=time_buckets(cells))


@strawberry.type
class Video:
    id: strawberry.ID
    creator_id: strawberry.ID
    published_at: datetime | None
    row: strawberry.Private[VideoRow]

    @classmethod
    def of(cls, row: VideoRow) -> Video:
        return cls(id=strawberry.ID(row.video_id), creator_id=strawberry.ID(row.creator_id), published_at=row.published_at, row=row)

    @strawberry.field
    async def stats(self, info: Context) -> VideoStats:
        return await VideoStats.of(info, self.row.video_id, self.row.creator_id)

    @strawberry.field(description="Shares per bucket. The creator's only.")
    async def share_timeline(
        self,
        info: Context,
        granularity: Granularity = Granularity.DAY,
        from_: RangeStart = None,
        to: RangeEnd = None,
    ) -> Timeline | None:
        return await video_timeline(info, "shares", self.row, granularity, from_, to)

    @strawberry.field(description="Views per bucket. The creator's only.")
    async def view_timeline(
        self,
        info: Context,
        granularity: Granularity = Granularity.DAY,
        from_: RangeStart = None,
        to: RangeEnd = None,
    ) -> Timeline | None:
        return await video_timeline(info, "views", self.row, granularity, from_, to)

    @strawberry.field(description="Shares by channel. The creator's only.")
    async def share_channels(self, info: Context) -> Breakdown | None:
        require_owner(info, self.row.creator_id, "Video.shareChannels")
        buckets = full_domain(await info.context.loaders.channels_of(self.row.video_id), CHANNELS)
        return breakdown(privacy(info).cells("shares", self.row.video_id, buckets, scope="channel"))

    @strawberry.field(
        description="Distinct viewers by region or age band. The creator's only. Every age band is listed; "
        "regions below k are pooled into one suppressed `OTHER` cell, which is always present."
    )
    async def audience(self, info: Context, dimension: AudienceDimension) -> Breakdown | None:
        require_owner(info, self.row.creator_id, "Video.audience")
        # As of the video's released views: a viewer who just came is not in it yet.
        until = (await info.context.loaders.stats_of(self.row.video_id)).views_until
        buckets = [] if until is None else await info.context.loaders.audience_of(self.row.video_id, dimension.value, until)
        layer = privacy(info)
        if dimension is AudienceDimension.AGE_BAND:
            return breakdown(layer.cells("viewers", self.row.video_id, full_domain(buckets, AGE_BAND_KEYS), scope="age_band"))
        return breakdown(layer.cells("viewers", self.row.video_id, buckets, scope="region", pool_key=OTHER_REGIONS))


@strawberry.type
class CreatorTotals:
    videos: int
    views: int
    likes: int
    comments: int
    shares: int
    followers: int = strawberry.field(description="Follows net of unfollows.")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class VideoEdge:
    cursor: str
    node: Video


@strawberry.type
class VideoConnection:
    edges: list[VideoEdge]
    page_info: PageInfo


MAX_PAGE = 100


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
    creator_id: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.creator_id)

    @strawberry.field(
        description="Totals as released: the sums of the videos' released counts, and followers in steps of k."
    )
    async def totals(self, info: Context) -> CreatorTotals:
        layer = privacy(info)
        videos = await self._released_videos(info)
        released = [stats for _, stats in videos]
        async with info.context.store.reader.acquire() as conn:
            # Whole days only: the cutoff of an HOUR floor falls inside a day.
            follows = await queries.follower_growth(conn, self.creator_id, Granularity.DAY, truncate(layer.cutoff, Granularity.DAY))

        def total(metric: str, value: int) -> int:
            return layer.count(metric, self.creator_id, value) if layer.asks_for(f"CreatorTotals.{metric}") else 0

        return CreatorTotals(
            videos=len(videos),
            views=total("views", sum(stats.views for stats in released)),
            likes=total("likes", sum(stats.likes for stats in released)),
            comments=total("comments", sum(stats.comments for stats in released)),
            shares=total("shares", sum(stats.shares for stats in released)),
            followers=total("followers", released_followers(follows, layer.k)),
        )

    @strawberry.field(description="The creator's videos, newest first or most shared first.")
    async def videos(
        self, info: Context, first: int = 10, after: str | None = None, order_by: VideoOrder = VideoOrder.PUBLISHED_AT
    ) -> VideoConnection:
        if not 1 <= first <= MAX_PAGE:
            raise BadUserInput(f"`first` must be between 1 and {MAX_PAGE}")
        position = decode_cursor(order_by, after) if after else None
        if order_by is VideoOrder.SHARES:
            rows = await self._ranked_by_shares(info, position, first + 1)
        else:
            async with info.context.store.reader.acquire() as conn:
                rows = await queries.creator_videos(conn, self.creator_id, order_by.value, position, first + 1)
        page = rows[:first]
        for row, _ in page:
            info.context.loaders.video.prime(row.video_id, row)
        edges = [VideoEdge(cursor=encode_cursor(order_by, key, row.video_id), node=Video.of(row)) for row, key in page]
        return VideoConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None),
        )

    async def _ranked_by_shares(self, info: Context, after: tuple[float, str] | None, limit: int) -> list[tuple[VideoRow, float]]:
        """The creator's videos by released shares (what `stats.shares` shows), most first: ranking
        by the live count would show a single new share as a change of order, and put it in the cursor."""
        if privacy(info).terms.noised:
            raise Forbidden("ordering by shares would reveal exact counts under the noise; order by PUBLISHED_AT", field="Creator.videos")
        ranked = sorted(
            ((video, float(stats.shares)) for video, stats in await self._released_videos(info)),
            key=lambda pair: (pair[1], pair[0].video_id),
            reverse=True,
        )
        if after is not None:
            ranked = [pair for pair in ranked if (pair[1], pair[0].video_id) < after]
        return ranked[:limit]

    async def _released_videos(self, info: Context) -> list[tuple[VideoRow, VideoStatsRow]]:
        """The creator's videos with their released totals (through the request's stats loader)."""
        async with info.context.store.reader.acquire() as conn:
            videos = await queries.creator_video_rows(conn, self.creator_id)
        released = await info.context.loaders.stats.load_many([video.video_id for video in videos])
        return [(video, stats.stats) for video, stats in zip(videos, released, strict=True)]

    @strawberry.field(description="Net new followers per bucket (DAY at finest). The creator's only.")
    async def follower_growth(
        self,
        info: Context,
        granularity: Granularity = Granularity.DAY,
        from_: RangeStart = None,
        to: RangeEnd = None,
    ) -> Timeline | None:
        require_owner(info, self.creator_id, "Creator.followerGrowth")
        if granularity is Granularity.HOUR:
            raise BadUserInput("followerGrowth is counted per day; use DAY, WEEK or MONTH")
        layer = privacy(info)
        start, end = layer.served_range(granularity, *time_range(granularity, from_, to, info.context.now))
        async with info.context.store.reader.acquire() as conn:
            lifetime = await queries.follower_growth(conn, self.creator_id, granularity, layer.served_until(granularity))
        cells = layer.timeline("followers", self.creator_id, lifetime, granularity, start, end, clamp=False)
        return Timeline(granularity=granularity, start=start, end=end, buckets=time_buckets(cells))


@strawberry.type
class MyShare:
    video_id: strawberry.ID
    channel: str
    shared_at: datetime


@strawberry.type
class MyLike:
    video_id: strawberry.ID
    liked_at: datetime


@strawberry.type
class MyFollow:
    creator_id: strawberry.ID
    followed_at: datetime


MAX_OWN_ROWS = 500


def own_limit(first: int) -> int:
    if not 1 <= first <= MAX_OWN_ROWS:
        raise BadUserInput(f"`first` must be between 1 and {MAX_OWN_ROWS}")
    return first


@strawberry.type(description="The signed-in user's own activity. Nobody else's rows are reachable here.")
class Me:
    user_id: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.user_id)

    @strawberry.field(description="Videos you shared, newest first.")
    async def shares(self, info: Context, first: int = 50) -> list[MyShare]:
        async with info.context.store.private.acquire() as conn:
            rows = await queries.my_shares(conn, self.user_id, own_limit(first))
        return [MyShare(video_id=strawberry.ID(r["video_id"]), channel=r["channel"], shared_at=r["occurred_at"]) for r in rows]

    @strawberry.field(description="Videos you like now, most recent first.")
    async def likes(self, info: Context, first: int = 50) -> list[MyLike]:
        async with info.context.store.private.acquire() as conn:
            rows = await queries.my_likes(conn, self.user_id, own_limit(first))
        return [MyLike(video_id=strawberry.ID(r["video_id"]), liked_at=r["occurred_at"]) for r in rows]

    @strawberry.field(description="Creators you follow now, most recent first.")
    async def follows(self, info: Context, first: int = 50) -> list[MyFollow]:
        async with info.context.store.private.acquire() as conn:
            rows = await queries.my_follows(conn, self.user_id, own_limit(first))
        return [MyFollow(creator_id=strawberry.ID(r["creator_id"]), followed_at=r["occurred_at"]) for r in rows]
