"""Released video totals through Postgres (newcomers from the ledger, marks and prefix sums, then
a walk over the tail) equal the plain walk over every closed bucket."""

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
# One engagement: (hour offset, ledger metric, actor). Likes ('l') and unlikes ('u') share one step.
engagement = st.tuples(st.integers(0, 24 * 12), st.sampled_from("vlucs"), st.integers(0, 9))
_videos = iter(range(10**9))
GROUPS = {"views": "v", "likes": "lu", "comments": "c", "shares": "s"}


async def store_engagements(admin: asyncpg.Connection, video: str, events: list[tuple[int, str, int]]) -> None:
    """video_hourly and the distinct-actor ledger as ingest would leave them for `events`."""
    hours: dict[int, dict[str, Any]] = {}
    ledger = set()
    for offset, metric, actor in events:
        cell = hours.setdefault(offset, {"v": 0, "l": 0, "u": 0, "c": 0, "s": 0, "actors": {m: set() for m in "vlucs"}})
        cell[metric] += 1
        cell["actors"][metric].add(actor)
        ledger.add((offset, metric, actor))
    await admin.execute("INSERT INTO videos (video_id, creator_id) VALUES ($1, 'creator')", video)
    await admin.executemany(
        """INSERT INTO video_hourly (video_id, hour, views, watch_ms, completed_views, viewers, likes, likers, unlikers,
                                     comments, commenters, shares, sharers)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        [
            (video, START + timedelta(hours=offset), c["v"], 1000 * c["v"], c["v"] // 2, len(c["actors"]["v"]), c["l"] - c["u"],
             len(c["actors"]["l"]), len(c["actors"]["u"]), c["c"], len(c["actors"]["c"]), c["s"], len(c["actors"]["s"]))
            for offset, c in hours.items()
        ],
    )
    await admin.executemany(
        """INSERT INTO video_cell_actors (video_id, actor_id, metric, hour, region, age_band, channel)
           VALUES ($1, $2, $3::text::"char", $4, 'unknown', 'unknown', CASE WHEN $3::text = 's' THEN 'whatsapp'::share_channel END)""",
        [(video, f"actor-{actor}", metric, START + timedelta(hours=offset)) for offset, metric, actor in ledger],
    )


def expected(events: list[tuple[int, str, int]], k: int, floor: Granularity, cutoff: datetime) -> tuple[Any, ...]:
    """The plain walk over every closed bucket, each metric in steps of k people new to the video."""
    kept = [(START + timedelta(hours=offset), metric, actor) for offset, metric, actor in events if START + timedelta(hours=offset) < cutoff]
    buckets = sorted({truncate(hour, floor) for hour, _, _ in kept})
    first_seen = {}
    for hour, metric, actor in sorted(kept):
        group = next(name for name, metrics in GROUPS.items() if metric in metrics)
        first_seen.setdefault((group, actor), truncate(hour, floor))
    results = {}
    for group, metrics in GROUPS.items():
        rows = []
        for bucket in buckets:
            inside = [(metric, actor) for hour, metric, actor in kept if truncate(hour, floor) == bucket and metric in metrics]
            if group == "views":
                views = sum(1 for metric, _ in inside)
                counts: tuple[int, ...] = (views, 1000 * views, 0)
            elif group == "likes":
                counts = (sum(1 if metric == "l" else -1 for metric, _ in inside),)
            else:
                counts = (len(inside),)
            newcomers = sum(1 for (g, _), first in first_seen.items() if g == group and first == bucket)
            rows.append((counts, newcomers))
        results[group] = released_sums(rows, k, len(rows[0][0]) if rows else (3 if group == "views" else 1))

    def until(released: Any) -> datetime | None:
        return bucket_after(buckets[released.last], floor) if released.last >= 0 else None

    views = results["views"]
    return (views.sums[0], views.sums[1], results["likes"].sums[0], results["comments"].sums[0], results["shares"].sums[0],
            until(views), until(results["shares"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(engagement, max_size=60),
    k=st.integers(0, 6),
    floor=st.sampled_from([Granularity.HOUR, Granularity.DAY, Granularity.WEEK]),
    cut=st.integers(0, 24 * 13),
)
async def test_released_totals_equal_the_walk_over_every_bucket(
    store: Store, admin: asyncpg.Connection, events: list[tuple[int, str, int]], k: int, floor: Granularity, cut: int
) -> None:
    """Steps of k count people new to the video, once each however many hours they were active in."""
    video = f"release-{next(_videos)}"
    await store_engagements(admin, video, events)
    cutoff = truncate(START + timedelta(hours=cut), floor)
    async with store.reader.acquire() as conn:
        series = await queries.stats_series(conn, [video], floor, cutoff, k)
    if video not in series:
        assert all(START + timedelta(hours=offset) >= cutoff for offset, _, _ in events)
        return
    released = release_video_stats(series[video], k, floor)
    stats = released.stats
    got = (stats.views, stats.watch_ms, stats.likes, stats.comments, stats.shares, released.views_until, released.shares_until)
    assert got == expected(events, k, floor, cutoff)


async def test_one_person_active_in_many_hours_is_one_newcomer(store: Store, admin: asyncpg.Connection) -> None:
    await store_engagements(admin, "one-busy-sharer", [(hour, "s", 1) for hour in range(5)])
    async with store.reader.acquire() as conn:
        series = await queries.stats_series(conn, ["one-busy-sharer"], Granularity.HOUR, START + timedelta(days=1), 5)
    assert release_video_stats(series["one-busy-sharer"], 5, Granularity.HOUR).stats.shares == 0


async def test_cached_totals_follow_any_change_to_the_data(store: Store, admin: asyncpg.Connection) -> None:
    """The loaders reuse released totals while the data before the cutoff is unchanged, and work
    them out again as soon as it changes, including a like and an unlike that cancel out in sum."""
    from gateway.auth import Principal, PrincipalKind
    from gateway.graphql.loaders import FingerprintCache, Loaders
    from gateway.privacy.layer import PrivacyLayer
    from gateway.privacy.terms import PrivacyTerms

    video = "cached-video"
    hour = START
    rows = [(video, hour + timedelta(hours=offset), 5, 5, 5, 2) for offset in range(4)]
    await admin.executemany("INSERT INTO video_hourly (video_id, hour, views, viewers, likes, likers) VALUES ($1, $2, $3, $4, $5, $6)", rows)
    cache = FingerprintCache()
    terms = PrivacyTerms.parse({"k_threshold": 0, "granularity_floor": "HOUR", "bucket_delay_seconds": 0})
    now = START + timedelta(days=1)

    async def released() -> Any:
        loaders = Loaders(store.reader, cache)
        loaders.layer = PrivacyLayer(terms, Principal(PrincipalKind.USER, "creator"), b"k" * 32, now)
        return (await loaders.stats_of(video)).stats

    await admin.execute("INSERT INTO videos (video_id, creator_id) VALUES ($1, 'creator')", video)
    first = await released()
    assert (first.views, first.likes) == (20, 20)
    assert await released() is first  # unchanged data: the cached totals
    # A like moved from the 4th hour to the 1st: the sums are the same, the data is not.
    await admin.execute("UPDATE video_hourly SET likes = likes + 1 WHERE video_id = $1 AND hour = $2", video, hour)
    await admin.execute("UPDATE video_hourly SET likes = likes - 1 WHERE video_id = $1 AND hour = $2", video, hour + timedelta(hours=3))
    again = await released()
    assert again is not first and (again.views, again.likes) == (20, 20)
