"""A video and its counts: resolvers ask the privacy service and only shape its answers."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from gateway.errors import NotFound
from gateway.graphql.audience import NO_DURATION, Retention, retention
from gateway.graphql.consent import consented_sharers
from gateway.graphql.context import Context
from gateway.graphql.ranges import time_range
from gateway.graphql.shapes import Breakdown, Timeline, breakdown, timeline
from gateway.privacy.metrics import COMMENTS, SHARES, VIEWS, Metric
from gateway.privacy.release import Granularity
from gateway.store.queries import VideoRow

__all__ = ["AudienceDimension", "RangeEnd", "RangeStart", "ShareSurge", "Video", "VideoStats", "series"]


@strawberry.enum
class AudienceDimension(Enum):
    REGION = "region"
    AGE_BAND = "age_band"


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@strawberry.type(
    description="Counts of a video as released: values of its release history, which grows in steps of at least "
    "k new people. views, likes, comments and shares are public; the rest is the creator's."
)
class VideoStats:
    # Plain attributes, not resolvers: the public counts are read on every dashboard request.
    views: int
    likes: int = strawberry.field(description="Likes net of unlikes.")
    comments: int
    shares: int
    average_watch_seconds: float | None = strawberry.field(
        description="Seconds watched per view. Each viewer's watch time counts up to a cap (3 minutes), and their sum "
        "is served in steps of k viewers at the cap: the nearest multiple of k × cap, over the views. The creator's "
        "only; null where counts are noised."
    )
    reach: int = strawberry.field(
        description="Distinct viewers: each person who viewed the video counts once, however often they watched. The "
        "creator's only."
    )
    video_id: strawberry.Private[str]
    owner_id: strawberry.Private[str]

    @strawberry.field(description="Likes per view.")
    def like_ratio(self) -> float | None:
        return ratio(self.likes, self.views)

    @strawberry.field(description="Likes, comments and shares per view.")
    def engagement_rate(self) -> float | None:
        return ratio(self.likes + self.comments + self.shares, self.views)

    @strawberry.field(
        description="Share of views watched to the end. Null (suppressed) unless k or more viewers watched a view "
        "to the end and k or more watched one they did not finish."
    )
    async def completion_rate(self, info: Context) -> float | None:
        if not self.views:
            return None  # nothing to divide by: no noise drawn, nothing charged
        completed = await info.context.privacy().completed_views(self.video_id)
        return None if completed is None else ratio(min(completed, self.views), self.views)


@strawberry.type(
    description="A release whose shares per hour exceed the video's running median (of the releases before it) by "
    "the policy's factor, with k or more new sharers behind it."
)
class ShareSurge:
    released_at: datetime = strawberry.field(
        description="The start of the bucket (the principal's granularity floor: an hour for the creator) the "
        "release was made in; never a finer time."
    )
    factor: float = strawberry.field(description="Shares per hour over the running median.")
    shares_per_hour: float = strawberry.field(
        description="The shares the release adds to the one before it, over the hours between their buckets."
    )


RangeStart = Annotated[
    datetime | None, strawberry.argument(name="from", description="Inclusive start (default: a span before `to`).")
]
RangeEnd = Annotated[datetime | None, strawberry.argument(description="Exclusive end (default: now).")]


async def series(
    info: Context, subject: str, metric: Metric, granularity: Granularity, start: datetime | None, end: datetime | None
) -> Timeline:
    """A timeline of `metric` of `subject` over the range asked for (defaults and limits: gateway.graphql.ranges)."""
    start, end = time_range(granularity, start, end, info.context.now)
    return timeline(granularity, await info.context.privacy().timeline(subject, metric, granularity, start, end))


@strawberry.type
class Video:
    id: strawberry.ID
    creator_id: strawberry.ID
    published_at: datetime | None
    owner_id: strawberry.Private[str]
    duration_ms: strawberry.Private[int | None] = None

    @classmethod
    def of(cls, row: VideoRow) -> Video:
        return cls(
            id=strawberry.ID(row.video_id),
            creator_id=strawberry.ID(row.creator_id),
            published_at=row.published_at,
            owner_id=row.creator_id,
            duration_ms=row.duration_ms,
        )

    @strawberry.field
    async def stats(self, info: Context) -> VideoStats:
        totals = await info.context.privacy().video_totals(self.id)
        return VideoStats(**asdict(totals), video_id=self.id, owner_id=self.owner_id)

    @strawberry.field(description="Shares per bucket, counted by the release that brought them. The creator's only.")
    async def share_timeline(
        self, info: Context, granularity: Granularity = Granularity.DAY, from_: RangeStart = None, to: RangeEnd = None
    ) -> Timeline | None:
        return await series(info, self.id, SHARES, granularity, from_, to)

    @strawberry.field(description="Views per bucket, counted by the release that brought them. The creator's only.")
    async def view_timeline(
        self, info: Context, granularity: Granularity = Granularity.DAY, from_: RangeStart = None, to: RangeEnd = None
    ) -> Timeline | None:
        return await series(info, self.id, VIEWS, granularity, from_, to)

    @strawberry.field(
        description="Shares by channel. The creator's only. Every channel is listed, and `undisclosed`: the shares "
        "made anonymously, whose channel is not told."
    )
    async def share_channels(self, info: Context) -> Breakdown | None:
        return breakdown(await info.context.privacy().breakdown(self.id, SHARES, "channel"))

    @strawberry.field(
        description="The releases whose shares per hour exceed the video's own running median by the policy's "
        "factor (3× as shipped), oldest first. The creator's only."
    )
    async def share_surges(self, info: Context) -> list[ShareSurge] | None:
        surges = await info.context.privacy().share_surges(self.id)
        return [
            ShareSurge(released_at=surge.released_at, factor=float(surge.factor), shares_per_hour=float(surge.shares_per_hour))
            for surge in surges
        ]

    @strawberry.field(
        description="The sharers of this video who chose to be shown to its creator (and nobody else), by user id, "
        "in order; `after` is the last id of the page before. The creator's only, where the policy serves it."
    )
    async def consented_sharers(self, info: Context, first: int = 50, after: strawberry.ID | None = None) -> list[strawberry.ID] | None:
        return await consented_sharers(info, self.id, first, after)

    @strawberry.field(
        description="Distinct viewers by region or age band. The creator's only. Every age band is listed; "
        "regions below k are pooled into one suppressed `OTHER` cell, which is always present."
    )
    async def audience(self, info: Context, dimension: AudienceDimension) -> Breakdown | None:
        return breakdown(await info.context.privacy().breakdown(self.id, VIEWS, dimension.value))

    @strawberry.field(
        description="The share of viewers still watching at 10 %, 20 % … 100 % of the video, each viewer counted once "
        "by their longest view. The creator's only. Null, with the error NOT_FOUND, for a video published without "
        "`duration_ms`."
    )
    async def retention(self, info: Context) -> Retention | None:
        if self.duration_ms is None:
            raise NotFound(NO_DURATION)
        return retention(await info.context.privacy().retention(self.id))

    @strawberry.field(
        description="Commenters by the sentiment of their comments (positive, neutral, negative: each comment classed "
        "once when it arrived, in English-first VADER), people not comments: one who wrote comments of two classes is "
        "in both. The creator's only. Every class is listed."
    )
    async def comment_sentiment(self, info: Context) -> Breakdown | None:
        return breakdown(await info.context.privacy().breakdown(self.id, COMMENTS, "sentiment"))
