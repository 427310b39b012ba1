"""Retention drops whole months of raw events past the cutoff, never one an unreplayed backfill still
needs, and leaves the release history and the live state as they were."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gateway.errors import BadUserInput, StoreUnavailable
from gateway.store.erasure import derive_erasure_key, erase_person, subject_key
from gateway.store.ingest import EventWriter
from gateway.store.pools import Store
from gateway.store.retention import PartitionOutcome, drop_expired_events, retention_cutoff

from conftest import SECRET
from helpers import event, ingest, records, snapshot, truncate_all, utc


@pytest.fixture
async def writer(store: Store, admin: asyncpg.Connection) -> EventWriter:
    await truncate_all(admin)
    for partition in await partitions(admin):
        await admin.execute(f'DROP TABLE "{partition}"')
    return EventWriter(store.ingest)


async def partitions(admin: asyncpg.Connection) -> list[str]:
    rows = await admin.fetch("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass ORDER BY 1")
    return [row[0] for row in rows]


def viewers(video: str, at: datetime, count: int, prefix: str) -> list[dict[str, object]]:
    return [event("view", f"{prefix}-{n}", at, video_id=video, actor_id=f"{prefix}-u{n}") for n in range(count)]


async def retain(store: Store, cutoff: datetime) -> list[PartitionOutcome]:
    async with store.eraser.acquire() as conn:
        return await drop_expired_events(conn, cutoff)


async def test_months_past_the_cutoff_are_dropped_and_the_history_stays(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    await ingest(writer, viewers("v1", utc(2025, 1, 15), 6, "jan"))
    await ingest(writer, viewers("v1", utc(2025, 2, 10), 5, "feb"))
    await ingest(writer, viewers("v1", utc(2025, 3, 2), 3, "mar"))
    before = await snapshot(admin)

    outcomes = await retain(store, utc(2025, 3, 1))

    assert [(o.partition, o.starts, o.ends, o.dropped, o.held_events) for o in outcomes] == [
        ("events_2025m01", utc(2025, 1, 1), utc(2025, 2, 1), True, 0),
        ("events_2025m02", utc(2025, 2, 1), utc(2025, 3, 1), True, 0),
    ]
    assert await partitions(admin) == ["events_2025m03"]
    after = await snapshot(admin)
    assert [row[0] for row in after["events"]] == [f"mar-{n}" for n in range(3)]
    for table in ("releases", "release_cells", "live_totals", "live_cells", "video_people", "video_viewers", "event_ids"):
        assert after[table] == before[table], f"{table} changed"


async def test_an_event_dropped_and_sent_again_is_skipped_as_before(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    sent = viewers("v1", utc(2025, 1, 15), 2, "jan")
    await ingest(writer, sent)
    await retain(store, utc(2025, 3, 1))

    again = await ingest(EventWriter(store.ingest), sent)

    assert again.inserted == 0
    assert await admin.fetchval("SELECT count(*) FROM events") == 0


async def test_a_month_whose_events_wait_for_a_replay_is_kept_until_they_are_applied(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    await ingest(writer, viewers("v1", utc(2025, 1, 15), 2, "jan"))
    await writer.hold(records(viewers("v-backfilled", utc(2025, 2, 10), 5, "feb")))

    kept = await retain(store, utc(2025, 3, 1))
    await writer.replay()
    dropped = await retain(store, utc(2025, 3, 1))

    assert [(o.partition, o.dropped, o.held_events) for o in kept] == [("events_2025m01", True, 0), ("events_2025m02", False, 5)]
    assert [(o.partition, o.dropped) for o in dropped] == [("events_2025m02", True)]
    assert await admin.fetchval("SELECT people FROM live_totals WHERE subject_id = 'v-backfilled'") == 5
    assert await admin.fetchval("SELECT count(*) FROM releases WHERE subject_id = 'v-backfilled'") == 1


async def test_an_erasure_after_retention_takes_the_ledger_part_whole_and_leaves_dropped_views_counted(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    """Retention leaves the ledgers whole, so erasing a viewer no release has counted takes them out
    of the people, the capped watch time and the completion cells' people exactly, their dropped
    views included; the dropped views themselves stay counted, anonymously (no ledger counts one
    person's views), as retention's docstring says."""
    ten_hours = 10 * 3600 * 1000
    await ingest(writer, [
        event("view", "jan-p", utc(2025, 1, 15), video_id="v1", actor_id="p", watch_ms=ten_hours, completed=True),
        *viewers("v1", utc(2025, 1, 15), 2, "jan"),
    ])
    await ingest(writer, [event("view", "mar-p", utc(2025, 3, 2), video_id="v1", actor_id="p", watch_ms=30_000, completed=False)])
    await retain(store, utc(2025, 3, 1))

    async with store.eraser.acquire() as conn:
        receipt = await erase_person(conn, "p", key=subject_key(derive_erasure_key(SECRET), "p"), erased_by="compliance:dpo", reason=None)

    assert receipt.events == 1  # March's; January's went with its month
    totals = await admin.fetchrow("SELECT people, events, watch_capped_ms FROM live_totals WHERE subject_id = 'v1' AND metric = 'v'")
    assert tuple(totals) == (2, 3, 2 * 1_000)
    cells = await admin.fetch("SELECT value, events, people FROM live_cells WHERE subject_id = 'v1' AND dimension = 'w' ORDER BY 1")
    assert [tuple(cell) for cell in cells] == [("completed", 1, 0), ("not_completed", 2, 2)]
    assert await admin.fetchval("SELECT count(*) FROM video_viewers WHERE actor_id = 'p'") == 0


async def test_nothing_due_takes_no_lock_and_something_due_gives_up_rather_than_queue(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    await ingest(writer, viewers("v1", utc(2025, 1, 15), 1, "jan"))
    async with admin.transaction():
        await admin.fetch("SELECT * FROM events")  # a long read holds events

        nothing_due = await asyncio.wait_for(retain(store, utc(2025, 1, 1)), timeout=30)
        with pytest.raises(StoreUnavailable, match="could not be locked"):
            await asyncio.wait_for(retain(store, utc(2025, 3, 1)), timeout=30)

    assert nothing_due == []
    assert await partitions(admin) == ["events_2025m01"]


@pytest.mark.parametrize(("days", "lateness"), [pytest.param(6, 7, id="inside-the-lateness-window"), pytest.param(0, 0, id="none")])
def test_retention_inside_the_lateness_window_is_refused(days: int, lateness: int) -> None:
    with pytest.raises(BadUserInput, match="retention must keep at least"):
        retention_cutoff(datetime.now(UTC), days, lateness)


def test_retention_cuts_days_before_now() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)

    assert retention_cutoff(now, 30, 7) == now - timedelta(days=30)
