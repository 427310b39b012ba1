"""The shapes every aggregate is served in: timelines, breakdowns, pages."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.privacy.disclosure import Series
from gateway.privacy.release import Granularity
from gateway.privacy.suppression import Cell

__all__ = ["Breakdown", "BreakdownBucket", "PageInfo", "TimeBucket", "Timeline", "breakdown", "timeline"]

# The privacy service's enum, exposed as is: resolvers pass the argument straight on.
strawberry.enum(Granularity, description="The width of a timeline bucket (UTC).")


@strawberry.type(
    description="One time bucket: what the releases made in it brought. Never suppressed (a bucket is a sum "
    "of whole releases of at least k people); `suppressed` is always false."
)
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


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def timeline(granularity: Granularity, series: Series) -> Timeline:
    buckets = [TimeBucket(start=start, count=count, suppressed=False) for start, count in series.buckets]
    return Timeline(granularity=granularity, start=series.start, end=series.end, buckets=buckets)


def breakdown(cells: list[Cell]) -> Breakdown:
    """Visible cells first, largest first; suppressed cells after, in key order (never by their size)."""
    ranked = sorted(cells, key=lambda cell: (cell.suppressed, -(cell.count or 0), cell.key))
    return Breakdown(buckets=[BreakdownBucket(key=cell.key, count=cell.count, suppressed=cell.suppressed) for cell in ranked])
