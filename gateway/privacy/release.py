"""What may be served of a time series, and when.

Two rules, both stateless (every replica, every restart, gives the same answer):

* **Closed buckets only, after a delay.** A bucket of the principal's granularity
  floor is served once it has closed and `delay` has passed: a share cannot be
  lined up with a comment posted a minute earlier, and no answer changes while
  its bucket is still filling.
* **Totals grow in steps of k.** Walking the closed buckets oldest first, a total
  takes in the buckets behind it only once they bring at least k units: people
  new to the video (the ledger's newcomers, `queries.stats_series`), or for
  followers, people who followed or unfollowed that day. What comes after the
  last full step is held back. Two answers to the same total asked at different
  times (yesterday's and today's count) therefore differ by the activity of at
  least k people, or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.store.queries import Bucket, Granularity, StatsSeries, VideoStatsRow

__all__ = [
    "Released",
    "ReleasedStats",
    "bucket_after",
    "buckets_between",
    "cutoff",
    "release_video_stats",
    "released_followers",
    "released_sums",
    "truncate",
]


def truncate(moment: datetime, granularity: Granularity) -> datetime:
    """The start of the bucket (UTC; weeks start on Monday) that `moment` falls in."""
    moment = moment.astimezone(UTC)
    if granularity is Granularity.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity is Granularity.DAY:
        return day
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


_STEP = {Granularity.HOUR: timedelta(hours=1), Granularity.DAY: timedelta(days=1), Granularity.WEEK: timedelta(weeks=1)}


def bucket_after(start: datetime, granularity: Granularity) -> datetime:
    """The start of the bucket that follows the one starting at `start`."""
    if granularity is Granularity.MONTH:
        return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start + _STEP[granularity]


def buckets_between(first: datetime, until: datetime, granularity: Granularity) -> int:
    """How many `granularity` buckets start at or after `first` and before `until` (both bucket starts)."""
    if until <= first:
        return 0
    if granularity is Granularity.MONTH:
        return (until.year - first.year) * 12 + until.month - first.month
    return (until - first) // _STEP[granularity]


def cutoff(now: datetime, granularity: Granularity, delay: timedelta) -> datetime:
    """The end of the newest `granularity` bucket that closed at least `delay` before `now`;
    data at or after it is not served."""
    return truncate(now - delay, granularity)


@dataclass(frozen=True)
class Released:
    """Column sums over the released buckets, and the index of the last one (-1: none released)."""

    sums: list[int]
    last: int


def released_sums(rows: Iterable[tuple[Sequence[int], int]], k: int, width: int) -> Released:
    """Column sums of `width` counts over the closed buckets `rows` (oldest first, each as
    (counts, units)) that are released in steps of at least `k` units."""
    released = [0] * width
    pending = [0] * width
    held = 0
    last = -1
    for index, (counts, units) in enumerate(rows):
        for column in range(width):
            pending[column] += counts[column]
        held += units
        if held >= k:
            for column in range(width):
                released[column] += pending[column]
                pending[column] = 0
            held = 0
            last = index
    return Released(released, last)


@dataclass(frozen=True)
class ReleasedStats:
    stats: VideoStatsRow
    # The end of the last bucket whose views (shares) are released; None: none is.
    views_until: datetime | None
    shares_until: datetime | None


def release_video_stats(series: StatsSeries, k: int, floor: Granularity) -> ReleasedStats:
    """A video's totals from its `queries.stats_series`: views with watch time and completions
    (in steps of k viewers), likes, comments and shares, each in its own steps.

    The same as `released_sums` over every closed bucket, one metric at a time: Postgres summed
    each metric up to its mark (a bucket that alone completes a step, leaving nothing held),
    and the walk goes on from there over the buckets after it."""
    views_mark, likes_mark, comments_mark, shares_mark = series.marks
    views, watch, completed, likes, comments, shares = series.prefix
    p_views = p_watch = p_completed = p_likes = p_comments = p_shares = 0  # pending
    h_views = h_likes = h_comments = h_shares = 0  # units held
    views_end, shares_end = views_mark, shares_mark  # the last bucket released
    for row in series.tail:
        bucket, r_views, r_watch, r_completed, u_views, r_likes, u_likes, r_comments, u_comments, r_shares, u_shares = row
        if views_mark is None or bucket > views_mark:
            p_views, p_watch, p_completed, h_views = p_views + r_views, p_watch + r_watch, p_completed + r_completed, h_views + u_views
            if h_views >= k:
                views, watch, completed = views + p_views, watch + p_watch, completed + p_completed
                p_views = p_watch = p_completed = h_views = 0
                views_end = bucket
        if likes_mark is None or bucket > likes_mark:
            p_likes, h_likes = p_likes + r_likes, h_likes + u_likes
            if h_likes >= k:
                likes, p_likes, h_likes = likes + p_likes, 0, 0
        if comments_mark is None or bucket > comments_mark:
            p_comments, h_comments = p_comments + r_comments, h_comments + u_comments
            if h_comments >= k:
                comments, p_comments, h_comments = comments + p_comments, 0, 0
        if shares_mark is None or bucket > shares_mark:
            p_shares, h_shares = p_shares + r_shares, h_shares + u_shares
            if h_shares >= k:
                shares, p_shares, h_shares = shares + p_shares, 0, 0
                shares_end = bucket
    stats = VideoStatsRow(views=views, likes=likes, comments=comments, shares=shares, watch_ms=watch, completed_views=completed)

    def until(last: datetime | None) -> datetime | None:
        return None if last is None else bucket_after(last, floor)

    return ReleasedStats(stats, until(views_end), until(shares_end))


def released_followers(days: Iterable[Bucket], k: int) -> int:
    """Net followers from a creator's daily `queries.follower_growth` buckets, in steps of k
    people who followed or unfollowed."""
    return released_sums((((day.count,), day.actors) for day in days), k, 1).sums[0]
