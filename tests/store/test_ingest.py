"""A batch is stored whole or not at all, exactly once, whatever else is being ingested at the same time."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from gateway.errors import BadUserInput, InvalidEvents
from gateway.ingest.events import EVENT_COLUMNS, EventRecord
from gateway.ingest.ndjson import ParsedBatch, parse_lines, parse_objects
from gateway.ingest.pipeline import IngestStopped, chunked, ingest_chunks
from gateway.store.ingest import BatchResult, EventWriter
from gateway.store.pools import Store

from helpers import assert_history_is_sound, assert_live_state_matches_events, event, ingest, records, snapshot, truncate_all, utc

NOON = utc(2025, 5, 14, 12)


@pytest.fixture
async def writer(store: Store, admin: asyncpg.Connection) -> EventWriter:
    """A writer onto a clean slate."""
    await truncate_all(admin)
    return EventWriter(store.ingest)


async def stored_earlier(writer: EventWriter) -> None:
    """Data already in the store, so that "nothing changed" is not the same as "still empty"."""
    await ingest(
        writer,
        [
            event("video_published", "old-1", NOON - timedelta(days=1), actor_id="c1"),
            event("view", "old-2", NOON, region="DE"),
            event("share", "old-3", NOON, actor_id="u2", channel="x"),
            event("follow", "old-4", NOON, actor_id="u3"),
        ],
    )


def lines(*events: dict[str, Any]) -> list[str]:
    return [json.dumps(body) for body in events]


def as_record(body: dict[str, Any], **raw: Any) -> tuple[Any, ...]:
    """A valid event's record with some columns overwritten: what a writer could be handed by mistake."""
    record = dict(zip(EVENT_COLUMNS, records([body])[0]))
    return tuple((record | raw)[column] for column in EVENT_COLUMNS)


@pytest.mark.parametrize(
    "bad_line",
    [
        pytest.param('{"event_id": "n3", "type": "view"', id="not-json"),
        pytest.param(json.dumps(event("share", "n3", NOON, channel="myspace")), id="unknown-channel"),
        pytest.param(json.dumps(event("follow", "n3", NOON, creator_id="u1", actor_id="u1")), id="self-follow"),
    ],
)
async def test_batch_with_one_bad_line_stores_nothing(writer: EventWriter, admin: asyncpg.Connection, bad_line: str) -> None:
    await stored_earlier(writer)
    before = await snapshot(admin)
    batch = [*lines(event("view", "n1", NOON), event("like", "n2", NOON)), bad_line, *lines(event("comment", "n4", NOON))]

    with pytest.raises(InvalidEvents) as refused:
        await ingest_chunks(writer, [(1, batch)], parse_lines)

    assert refused.value.total == 1
    assert [error.line for error in refused.value.errors] == [3]
    assert await snapshot(admin) == before


@pytest.mark.parametrize(
    "violation",
    [
        pytest.param({"watch_ms": -1}, id="negative-watch-time"),
        pytest.param({"type": "like", "watch_ms": None, "completed": None, "channel": "sms"}, id="like-with-channel"),
        pytest.param({"video_id": None}, id="view-without-video"),
    ],
)
async def test_batch_failing_in_the_database_stores_nothing(
    writer: EventWriter, admin: asyncpg.Connection, violation: dict[str, Any]
) -> None:
    await stored_earlier(writer)
    before = await snapshot(admin)
    first = [event("view", "m1", NOON), event("share", "m2", NOON, channel="email"), event("follow", "m3", NOON, actor_id="u4")]
    rest = [event("like", "m5", NOON), event("comment", "m6", NOON + timedelta(hours=1))]
    bad = as_record(event("view", "m4", NOON, actor_id="u9"), **violation)

    with pytest.raises(BadUserInput) as refused:
        await writer.write([*records(first), bad, *records(rest)])

    assert isinstance(refused.value.__cause__, asyncpg.CheckViolationError)

    assert await snapshot(admin) == before
    # Not even the event_id ledger kept them: the good events are new when they come again.
    assert await ingest(writer, first + rest) == BatchResult(received=5, inserted=5)


@pytest.mark.parametrize(
    "text",
    [pytest.param("a\x00b", id="nul"), pytest.param("\x00", id="only-nul")],
)
async def test_text_the_store_cannot_hold_is_refused_by_validation_as_the_store_refuses_it(
    writer: EventWriter, admin: asyncpg.Connection, text: str
) -> None:
    """Validation and the store agree: what the store would refuse never reaches it, so a file is
    refused whole by the check pass rather than part-way by the store."""
    before = await snapshot(admin)
    body = event("comment", "t1", NOON, text=text)

    with pytest.raises(BadUserInput) as refused:
        await writer.write([as_record(event("comment", "t1", NOON), text=text)])

    assert isinstance(refused.value.__cause__, asyncpg.DataError)
    assert [(error.line, error.field) for error in parse_objects([body]).errors] == [(1, "text")]
    assert await snapshot(admin) == before


async def test_any_text_validation_accepts_the_store_holds(writer: EventWriter, admin: asyncpg.Connection) -> None:
    texts = ["\x01\x1f\x7f", "line\nbreak\ttab", "🎬 ✓ ü", "\u200b\ufeff", "x" * 5000]

    await ingest(writer, [event("comment", f"t{n}", NOON, actor_id=f"u{n}", text=text) for n, text in enumerate(texts)])

    rows = await admin.fetch("SELECT text FROM events WHERE type = 'comment' ORDER BY event_id")
    assert [row["text"] for row in rows] == texts


async def test_batch_the_store_refuses_after_others_were_stored_stops_naming_the_lines_stored(
    writer: EventWriter, admin: asyncpg.Connection
) -> None:
    bodies = [event("view", f"p{n:02d}", NOON, actor_id=f"u{n}") for n in range(1, 41)]
    rows = records(bodies)
    rows[24] = as_record(bodies[24], watch_ms=-1)  # line 25: a batch the store refuses, in the third batch

    def already_parsed(chunk: list[EventRecord], first_line: int) -> ParsedBatch:
        return ParsedBatch(records=chunk)

    with pytest.raises(IngestStopped) as stopped:
        await ingest_chunks(writer.write, chunked(rows, 10), already_parsed)

    assert (stopped.value.stored.first, stopped.value.stored.through, stopped.value.failed) == (1, 20, (21, 30))
    assert isinstance(stopped.value.cause, BadUserInput)
    assert stopped.value.__cause__ is stopped.value.cause
    stored_ids = {row["event_id"] for row in await admin.fetch("SELECT event_id FROM events")}
    assert {f"p{n:02d}" for n in range(1, 21)} <= stored_ids
    assert not {f"p{n:02d}" for n in range(21, 31)} & stored_ids
    assert stopped.value.totals.inserted == len(stored_ids)


async def test_retried_batch_changes_nothing(writer: EventWriter, admin: asyncpg.Connection) -> None:
    batch = [
        event("video_published", "r1", NOON, actor_id="c1"),
        event("view", "r2", NOON, region="FR", age_band="25-34", completed=True),
        event("like", "r3", NOON),
        event("share", "r4", NOON, actor_id="u2"),
        event("follow", "r5", NOON, actor_id="u2"),
    ]
    assert await ingest(writer, batch) == BatchResult(received=5, inserted=5)
    after_first = await snapshot(admin)

    retried = await ingest(writer, batch)

    assert retried == BatchResult(received=5, inserted=0)
    assert retried.duplicates == 5
    assert await snapshot(admin) == after_first


async def test_duplicate_event_ids_within_one_batch_count_once(writer: EventWriter, admin: asyncpg.Connection) -> None:
    view = event("view", "d1", NOON, watch_ms=2_000)
    share = event("share", "d2", NOON, actor_id="u2")

    result = await ingest(writer, [view, share, view, view, share])

    assert result == BatchResult(received=5, inserted=2)
    assert await admin.fetchval("SELECT count(*) FROM events") == 2
    totals = await admin.fetch("SELECT metric, events, people, watch_capped_ms FROM live_totals ORDER BY metric")
    # 'a': the creator's audience (migration 0023).
    assert [tuple(row) for row in totals] == [(b"a", 1, 1, 0), (b"s", 1, 1, 0), (b"v", 1, 1, 2_000)]
    assert await admin.fetchval("SELECT events FROM live_cells WHERE dimension = 'c'") == 1
    await assert_live_state_matches_events(admin)
    await assert_history_is_sound(admin)


def overlapping_batches(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two batches sharing a random part of their events, in cells they both touch; one month is new to the store."""
    rng = random.Random(seed)
    new_month = utc(2010 + seed, 1 + seed, 1, 6)
    events = []
    for n in range(60):
        kind = rng.choice(["view", "like", "unlike", "comment", "share", "follow", "unfollow"])
        at = rng.choice([NOON, NOON + timedelta(minutes=70), new_month]) + timedelta(seconds=rng.randrange(3600))
        fields: dict[str, Any] = {"actor_id": rng.choice(["u1", "u2", "u3"]), "region": rng.choice([None, "DE"])}
        if kind == "share":
            fields["channel"] = rng.choice(["x", "sms"])
        events.append(event(kind, f"c{seed}-{n}", at, video_id=rng.choice(["v1", "v2"]), **fields))
    shared = rng.sample(events, rng.randrange(10, 50))
    rest = [body for body in events if body not in shared]
    cut = rng.randrange(len(rest) + 1)
    first, second = shared + rest[:cut], shared + rest[cut:]
    rng.shuffle(first)
    rng.shuffle(second)
    return first, second


@pytest.mark.parametrize("seed", [pytest.param(seed, id=f"seed-{seed}") for seed in range(6)])
async def test_concurrent_overlapping_batches_double_count_nothing(writer: EventWriter, admin: asyncpg.Connection, seed: int) -> None:
    first, second = overlapping_batches(seed)
    distinct_ids = {body["event_id"] for body in first + second}

    results = await asyncio.gather(ingest(writer, first), ingest(writer, second))

    assert sum(result.inserted for result in results) == len(distinct_ids)
    assert await admin.fetchval("SELECT count(*) FROM events") == len(distinct_ids)
    await assert_live_state_matches_events(admin)
    await assert_history_is_sound(admin)


def batches_in_shared_cells(seed: int, count: int) -> list[list[dict[str, Any]]]:
    """`count` batches with ids of their own, all by the same few people in the same few cells:
    nothing in storing them makes one wait for another (no shared id), so what keeps each
    batch's "is this person new here?" from missing another batch's answer is applying them
    one at a time (the arrival lock, gateway.store.history.ARRIVAL_LOCK)."""
    rng = random.Random(seed)
    batches = []
    for number in range(count):
        batch = []
        for n in range(rng.randrange(30, 60)):
            kind = rng.choice(["view", "view", "like", "comment", "share"])
            fields: dict[str, Any] = {"actor_id": rng.choice(["u1", "u2", "u3", "u4"]), "region": rng.choice(["DE", "FR"])}
            if kind == "share":
                fields["channel"] = rng.choice(["x", "sms"])
            at = NOON + timedelta(minutes=rng.choice([0, 70]) + rng.randrange(50))
            batch.append(event(kind, f"s{seed}-{number}-{n}", at, video_id=rng.choice(["v1", "v2"]), **fields))
        batches.append(batch)
    return batches


@pytest.mark.parametrize("seed", [pytest.param(seed, id=f"seed-{seed}") for seed in range(3)])
async def test_concurrent_batches_in_the_same_cells_count_each_person_once(
    writer: EventWriter, admin: asyncpg.Connection, seed: int
) -> None:
    batches = batches_in_shared_cells(seed, 8)

    results = await asyncio.gather(*(ingest(writer, batch) for batch in batches))

    assert sum(result.inserted for result in results) == sum(len(batch) for batch in batches)
    assert await admin.fetchval(
        """SELECT count(*) FROM (SELECT 1 FROM video_people
                                 GROUP BY video_id, actor_id, metric, region, age_band, channel
                                 HAVING count(*) > 1) AS twice"""
    ) == 0, "the ledger holds each person's cell once"
    await assert_live_state_matches_events(admin)
    await assert_history_is_sound(admin)


@pytest.mark.parametrize(
    ("occurred_at", "partition"),
    [
        pytest.param("2003-07-15T10:42:13Z", "events_2003m07", id="utc"),
        pytest.param("2003-09-01T01:30:00+02:00", "events_2003m08", id="offset-across-month-end"),
    ],
)
async def test_an_old_event_creates_its_partition_and_counts_as_it_arrives(
    writer: EventWriter, admin: asyncpg.Connection, occurred_at: str, partition: str
) -> None:
    """The writer stores whatever validation let through (the lateness window is the edges' to
    apply); an event old by its occurred_at still counts at its arrival, like any other."""
    await stored_earlier(writer)
    assert await admin.fetchval("SELECT to_regclass($1)", partition) is None

    await ingest(writer, [event("view", "late-1", occurred_at), event("follow", "late-2", occurred_at, actor_id="u7")])

    placed = await admin.fetch("SELECT event_id, tableoid::regclass::text AS partition FROM events WHERE event_id LIKE 'late-%'")
    assert {row["event_id"]: row["partition"] for row in placed} == {"late-1": partition, "late-2": partition}
    assert await admin.fetchval("SELECT events FROM live_totals WHERE subject_id = 'v1' AND metric = 'v'") == 2
    assert await admin.fetchval("SELECT events FROM live_totals WHERE subject_id = 'c1' AND metric = 'f'") == 2
    await assert_live_state_matches_events(admin)
    await assert_history_is_sound(admin)


DELIVERIES = [
    pytest.param([[0, 1]], id="one-batch"),
    pytest.param([[0], [1]], id="in-order"),
    pytest.param([[1], [0]], id="undo-delivered-first"),
]


@pytest.mark.parametrize("delivery", DELIVERIES)
async def test_unlike_after_like_nets_likes_to_zero(writer: EventWriter, admin: asyncpg.Connection, delivery: list[list[int]]) -> None:
    pair = [event("like", "l1", NOON + timedelta(minutes=5)), event("unlike", "l2", NOON + timedelta(minutes=20))]

    for batch in delivery:
        await ingest(writer, [pair[n] for n in batch])

    likes = await admin.fetchrow("SELECT events, people FROM live_totals WHERE metric = 'l'")
    assert dict(likes) == {"events": 0, "people": 1}


@pytest.mark.parametrize("delivery", DELIVERIES)
async def test_unfollow_after_follow_nets_follows_to_zero(
    writer: EventWriter, admin: asyncpg.Connection, delivery: list[list[int]]
) -> None:
    pair = [event("follow", "f1", NOON, actor_id="u5"), event("unfollow", "f2", NOON + timedelta(hours=3), actor_id="u5")]

    for batch in delivery:
        await ingest(writer, [pair[n] for n in batch])

    followers = await admin.fetchrow("SELECT events, people FROM live_totals WHERE metric = 'f'")
    assert dict(followers) == {"events": 0, "people": 1}


async def test_a_live_event_about_a_subject_being_replayed_waits_for_the_replay(writer: EventWriter, admin: asyncpg.Connection) -> None:
    """While a backfill's events are held, a live event about the same video joins them instead of
    reaching the live state: the backfilled past holds the backfill alone, and the live event is
    applied after it, at the time it is."""
    held = [event("view", f"held-{n}", NOON - timedelta(days=3), actor_id=f"old-viewer-{n}") for n in range(5)]
    await writer.hold(records(held))
    await ingest(writer, [event("view", "live-1", NOON, actor_id="live-viewer")])

    assert await admin.fetchval("SELECT count(*) FROM live_totals") == 0
    assert await admin.fetchval("SELECT live FROM arrivals_pending WHERE event_id = 'live-1'") is True

    await writer.replay()

    releases = await admin.fetch("SELECT made_at, people FROM releases WHERE subject_id = 'v1' AND metric = 'v' ORDER BY seq")
    assert [row["people"] for row in releases] == [5]
    assert releases[0]["made_at"] < NOON - timedelta(days=2)  # the backfilled hour, not now
    assert await admin.fetchval("SELECT people FROM live_totals WHERE subject_id = 'v1' AND metric = 'v'") == 6
    await assert_live_state_matches_events(admin)


async def test_a_backfill_over_live_views_with_no_release_counts_each_viewer_once(writer: EventWriter, admin: asyncpg.Connection) -> None:
    """A video with live views but no release has its live state built afresh after a backfill: its
    viewers' ledger too, so a viewer who watched live, ten hours and to the end, counts their
    watch time and completion once, capped, whatever the replay held again."""
    await ingest(writer, [event("view", "live-long", NOON, actor_id="live-viewer", watch_ms=36_000_000, completed=True)])
    held = [event("view", f"held-{n}", NOON - timedelta(days=3), actor_id=f"old-viewer-{n}", watch_ms=20_000) for n in range(5)]
    await writer.hold(records(held))

    await writer.replay()

    await assert_live_state_matches_events(admin)
    viewer = await admin.fetchrow("SELECT watch_ms, completed FROM video_viewers WHERE actor_id = 'live-viewer'")
    assert dict(viewer) == {"watch_ms": 36_000_000, "completed": True}
    assert await admin.fetchval("SELECT watch_capped_ms FROM live_totals WHERE subject_id = 'v1' AND metric = 'v'") == 180_000 + 5 * 20_000


async def test_views_that_arrived_before_the_videos_duration_join_the_depth_cells_when_it_arrives(
    writer: EventWriter, admin: asyncpg.Connection
) -> None:
    """Migration 0023: depth cells need the duration. Views arrive first (no cell), then the video's
    published event with a 60 s duration places every viewer by their longest view; a later
    published event with another duration changes nothing, and a viewer who then watches further
    moves between cells, counted once."""
    depth_cells = "SELECT value, people FROM live_cells WHERE metric = 'v' AND dimension = 'd' AND people <> 0 ORDER BY value"
    await ingest(writer, [
        event("view", "early-1", NOON, actor_id="u1", watch_ms=30_000),
        event("view", "early-2", NOON, actor_id="u1", watch_ms=50_000),
        event("view", "early-3", NOON, actor_id="u2", watch_ms=3_000),
    ])
    assert await admin.fetch(depth_cells) == []

    await ingest(writer, [event("video_published", "pub-1", NOON - timedelta(hours=1), duration_ms=60_000)])
    assert [tuple(row) for row in await admin.fetch(depth_cells)] == [("000", 1), ("080", 1)]

    await ingest(writer, [
        event("video_published", "pub-2", NOON - timedelta(hours=1), duration_ms=10_000),
        event("view", "late-1", NOON, actor_id="u2", watch_ms=60_000),
    ])
    assert await admin.fetchval("SELECT duration_ms FROM videos WHERE video_id = 'v1'") == 60_000
    assert [tuple(row) for row in await admin.fetch(depth_cells)] == [("080", 1), ("100", 1)]
    await assert_live_state_matches_events(admin)
    await assert_history_is_sound(admin)
