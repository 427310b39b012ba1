"""Released video totals through Postgres (marks and prefix sums, then a walk over the tail)
equal the plain walk over every closed bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.privacy.release import bucket_after, released_sums, release_video_stats, truncate
from gateway.store import queries
from gateway.store.pools import Store
from gateway.store.queries import Granularity

START = datetime(2026, 10, 26, 20, tzinfo=UTC)  # a Monday evening: hours cross days, days cross a week
# (views, watch_ms, completed, viewers, likes, likers, unlikers, comments, commenters, shares, sharers)
hour_row = st.tuples(
    st.integers(0, 9), st.integers(0, 50_000), st.integers(0, 9), st.integers(0, 7),
    st.integers(-2, 6), st.integers(0, 4), st.integers(0, 2), st.integers(0, 6), st.integers(0, 5), st.integers(0, 6), st.integers(0, 5),
)
hours = st.dictionaries(st.integers(0, 24 * 12), hour_row, max_size=60)
_videos = iter(range(10**9))


def expected(rows: dict[int, tuple[int, ...]], k: int, floor: Granularity, cutoff: datetime) -> tuple[Any, ...]:
    grouped: dict[datetime, list[int]] = {}
    for offset, row in sorted(rows.items()):
        hour = START + timedelta(hours=offset)
        if hour >= cutoff:
            continue
        views, watch, completed, viewers, likes, likers, unlikers, comments, commenters, shares, sharers = row
        cells = grouped.setdefault(truncate(hour, floor), [0] * 10)
        for index, value in enumerate((views, watch, completed, viewers, likes, likers + unlikers, comments, commenters, shares, sharers)):
            cells[index] += value
    buckets = sorted(grouped)
    series = [grouped[bucket] for bucket in buckets]
    views = released_sums(((row[0:3], row[3]) for row in series), k, 3)
    likes = released_sums(((row[4:5], row[5]) for row in series), k, 1)
    comments = released_sums(((row[6:7], row[7]) for row in series), k, 1)
    shares = released_sums(((row[8:9], row[9]) for row in series), k, 1)

    def until(last: int) -> datetime | None:
        return bucket_after(buckets[last], floor) if last >= 0 else None

    return (*views.sums, likes.sums[0], comments.sums[0], shares.sums[0], until(views.last), until(shares.last))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=hours, k=st.integers(0, 9), floor=st.sampled_from([Granularity.HOUR, Granularity.DAY, Granularity.WEEK]), cut=st.integers(0, 24 * 13))
async def test_released_totals_equal_the_walk_over_every_bucket(
    store: Store, admin: asyncpg.Connection, rows: dict[int, tuple[int, ...]], k: int, floor: Granularity, cut: int
) -> None:
    video = f"release-{next(_videos)}"
    await admin.executemany(
        """INSERT INTO video_hourly (video_id, hour, views, watch_ms, completed_views, viewers, likes, likers, unlikers,
                                     comments, commenters, shares, sharers)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        [(video, START + timedelta(hours=offset), *row) for offset, row in rows.items()],
    )
    cutoff = truncate(START + timedelta(hours=cut), floor)
    async with store.reader.acquire() as conn:
        series = await queries.stats_series(conn, [video], floor, cutoff, k)
    if video not in series:
        assert all(START + timedelta(hours=offset) >= cutoff for offset in rows)
        return
    released = release_video_stats(series[video], k, floor)
    stats = released.stats
    got = (stats.views, stats.watch_ms, stats.completed_views, stats.likes, stats.comments, stats.shares, released.views_until, released.shares_until)
    assert got == expected(rows, k, floor, cutoff)


async def test_cached_totals_follow_any_change_to_the_data(store: Store, admin: asyncpg.Connection) -> None:
    """The loaders reuse released totals while the data before the cutoff is unchanged, and work
    them out again as soon as it changes, including a like and an unlike that cancel out."""
    from gateway.auth import Principal, PrincipalKind
    from gateway.graphql.loaders import Loaders, FingerprintCache
    from gateway.privacy.layer import PrivacyLayer
    from gateway.privacy.terms import PrivacyTerms

    video = "cached-video"
    hour = START
    rows = [(video, hour + timedelta(hours=offset), 5, 5, 5, 2) for offset in range(4)]
    await admin.executemany("INSERT INTO video_hourly (video_id, hour, views, viewers, likes, likers) VALUES ($1, $2, $3, $4, $5, $6)", rows)
    cache = FingerprintCache()
    terms = PrivacyTerms.parse({"k_threshold": 5, "granularity_floor": "HOUR", "bucket_delay_seconds": 0})
    now = START + timedelta(days=1)

    async def released() -> Any:
        loaders = Loaders(store.reader, cache)
        loaders.layer = PrivacyLayer(terms, Principal(PrincipalKind.USER, "creator"), b"k" * 32, now)
        return (await loaders.stats_of(video)).stats

    first = await released()
    assert (first.views, first.likes) == (20, 15)  # likes: 2 + 2 + 2 units complete a step after the 3rd hour
    assert await released() is first  # unchanged data: the cached totals
    # A like moved from the 4th hour to the 1st: the sums are the same, the steps are not.
    await admin.execute("UPDATE video_hourly SET likes = likes + 1 WHERE video_id = $1 AND hour = $2", video, hour)
    await admin.execute("UPDATE video_hourly SET likes = likes - 1 WHERE video_id = $1 AND hour = $2", video, hour + timedelta(hours=3))
    again = await released()
    assert again is not first and (again.views, again.likes) == (20, 16)
