"""Anonymous shares in the release machinery, and the store's side of consent (migration 0018).

A share is anonymous when its event says so, or when its sharer's share setting was on when it was
made, as the audit of changes records it. It counts in its video's share total and people, and in
the channel cell 'undisclosed' instead of its channel's; the ledger keeps no channel for it. Which shares are anonymous depends on when they
were made, never on when they arrive, are replayed or backfilled, nor on changes made after them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from gateway.store import consent
from gateway.store.consent import Setting
from gateway.store.ingest import EventWriter
from gateway.store.pools import Store

from helpers import assert_history_is_sound, assert_live_state_matches_events, event, ingest, records, truncate_all, utc

NOON = utc(2025, 5, 14, 12)


class Clock:
    """The writer's clock: what the test last set."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def clean(admin: asyncpg.Connection) -> None:
    await truncate_all(admin)


async def change(store: Store, user_id: str, on: bool, at: datetime, *, setting: Setting = Setting.ANONYMOUS_SHARES, creator_id: str | None = None) -> bool:
    async with store.private.acquire() as conn:
        return await consent.record_change(conn, user_id, setting, creator_id, on, lambda: at, "user")


def share(event_id: str, actor: str, at: datetime, *, video: str = "v1", channel: str = "whatsapp", **fields: Any) -> dict[str, Any]:
    return event("share", event_id, at, video_id=video, actor_id=actor, channel=channel, region="DE", age_band="25-34", **fields)


async def share_cells(admin: asyncpg.Connection, video: str = "v1") -> dict[str, tuple[int, int]]:
    rows = await admin.fetch(
        "SELECT value, events, people FROM live_cells WHERE subject_id = $1 AND metric = 's' AND dimension = 'c'", video
    )
    return {row["value"]: (row["events"], row["people"]) for row in rows}


async def share_total(admin: asyncpg.Connection, video: str = "v1") -> tuple[int, int]:
    row = await admin.fetchrow("SELECT events, people FROM live_totals WHERE subject_id = $1 AND metric = 's'", video)
    return row["events"], row["people"]


@pytest.mark.usefixtures("clean")
async def test_a_share_its_event_calls_anonymous_counts_in_the_total_and_as_undisclosed(store: Store, admin: asyncpg.Connection) -> None:
    await ingest(EventWriter(store.ingest), [
        share("s1", "u1", NOON, anonymous=True),
        share("s2", "u2", NOON),
        share("s3", "u2", NOON, channel="sms", anonymous=True),
    ])

    assert await share_total(admin) == (3, 2)
    # Counted by people, as every channel cell is: u1 and u2 shared anonymously.
    assert await share_cells(admin) == {"whatsapp": (1, 1), "undisclosed": (2, 2)}
    # The ledger knows u1 shared, and nothing else of that share: no channel, region or age band.
    ledger = await admin.fetch("SELECT actor_id, region, age_band, channel::text FROM video_people WHERE metric = 's' ORDER BY 1, 4")
    assert [tuple(row) for row in ledger] == [("u1", "unknown", "unknown", None), ("u2", "DE", "25-34", "whatsapp"), ("u2", "unknown", "unknown", None)]
    await assert_live_state_matches_events(admin)


@pytest.mark.usefixtures("clean")
async def test_the_setting_in_force_when_a_share_was_made_decides_it(store: Store, admin: asyncpg.Connection) -> None:
    clock = Clock(NOON + timedelta(hours=1))
    writer = EventWriter(store.ingest, clock)
    await change(store, "u1", True, NOON)
    await change(store, "u1", False, NOON + timedelta(hours=2))

    # Both arrive after the setting was turned on; one was made before.
    await ingest(writer, [share("before", "u1", NOON - timedelta(minutes=10)), share("while-on", "u1", NOON + timedelta(minutes=10), channel="sms")])
    clock.now = NOON + timedelta(hours=3)
    await ingest(writer, [share("after-off", "u1", NOON + timedelta(hours=2, minutes=30), channel="email")])

    assert await share_total(admin) == (3, 1)
    assert await share_cells(admin) == {"whatsapp": (1, 1), "email": (1, 1), "undisclosed": (1, 1)}
    await assert_live_state_matches_events(admin)


@pytest.mark.usefixtures("clean")
async def test_a_share_stamped_ahead_of_the_clock_takes_the_setting_at_its_arrival(store: Store, admin: asyncpg.Connection) -> None:
    """A change recorded later but stamped before the share's time cannot reach back: the share was
    decided when it arrived."""
    clock = Clock(NOON)
    await ingest(EventWriter(store.ingest, clock), [share("ahead", "u1", NOON + timedelta(hours=6))])
    await change(store, "u1", True, NOON + timedelta(hours=1))

    assert await share_cells(admin) == {"whatsapp": (1, 1)}
    async with store.ingest.acquire() as conn:
        assert await conn.fetchval("SELECT anonymous_shares_at('u1', $1)", NOON + timedelta(hours=6)) is True


@pytest.mark.usefixtures("clean")
async def test_a_change_moves_no_share_made_before_it(store: Store, admin: asyncpg.Connection) -> None:
    writer = EventWriter(store.ingest, Clock(NOON + timedelta(hours=1)))
    await ingest(writer, [share("s1", "u1", NOON), share("s2", "u2", NOON, anonymous=True)])
    before = (await share_total(admin), await share_cells(admin))

    await change(store, "u1", True, NOON + timedelta(hours=1))
    await change(store, "u2", True, NOON + timedelta(hours=1))
    await change(store, "u1", False, NOON + timedelta(hours=2))

    assert (await share_total(admin), await share_cells(admin)) == before == ((2, 2), {"whatsapp": (1, 1), "undisclosed": (1, 1)})


def same_video(video: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {**body, "event_id": f"{video}-{body['event_id']}", "video_id": video}


@pytest.mark.usefixtures("clean")
async def test_a_backfill_decides_each_share_as_live_ingest_did(store: Store, admin: asyncpg.Connection) -> None:
    """By the audit, as of when each share was made: not by the setting when the backfill runs."""
    await change(store, "u1", True, NOON + timedelta(hours=1))
    await change(store, "u1", False, NOON + timedelta(hours=3))
    played = [
        share("a", "u1", NOON), share("b", "u1", NOON + timedelta(hours=1, minutes=30), channel="sms"),
        share("c", "u1", NOON + timedelta(hours=4), channel="x"), share("d", "u2", NOON + timedelta(hours=2)),
    ]
    clock = Clock(NOON)
    live = EventWriter(store.ingest, clock)
    for body in played:  # live: each as it happens
        clock.now = datetime.fromisoformat(body["occurred_at"]) + timedelta(minutes=1)
        await ingest(live, [same_video("v-live")(body)])
    await change(store, "u1", True, NOON + timedelta(days=1))  # in force when the backfill runs

    backfill = EventWriter(store.ingest, Clock(NOON + timedelta(days=2)))
    await backfill.hold(records(map(same_video("v-backfilled"), played)))
    await backfill.replay()

    assert await share_cells(admin, "v-live") == await share_cells(admin, "v-backfilled") == {"whatsapp": (2, 2), "x": (1, 1), "undisclosed": (1, 1)}
    assert await share_total(admin, "v-live") == await share_total(admin, "v-backfilled") == (4, 2)
    await assert_live_state_matches_events(admin)


async def ledger_channel(admin: asyncpg.Connection, actor: str, video: str = "v1") -> list[str | None]:
    """The channels the ledger knows `actor` shared `video` on (None: undisclosed)."""
    rows = await admin.fetch("SELECT channel::text FROM video_people WHERE video_id = $1 AND actor_id = $2 AND metric = 's'", video, actor)
    return [row["channel"] for row in rows]


@pytest.mark.parametrize(
    ("at_arrival", "at_rebuild"),
    [pytest.param(True, False, id="anonymous-then-off"), pytest.param(False, True, id="plain-then-on")],
)
@pytest.mark.usefixtures("clean")
async def test_a_rebuild_keeps_the_setting_a_share_stamped_ahead_arrived_under(
    store: Store, admin: asyncpg.Connection, at_arrival: bool, at_rebuild: bool
) -> None:
    """The red team's F2: a share stamped two hours ahead arrives live and is decided by the setting
    then; the sharer changes it; a backfill touches the video (no release yet), so its live events
    arrive again, now. They must arrive as they were decided, not by the setting at the rebuild."""
    clock = Clock(NOON)
    writer = EventWriter(store.ingest, clock)
    await change(store, "u1", at_arrival, NOON - timedelta(hours=1))
    await ingest(writer, [share("ahead", "u1", NOON + timedelta(hours=2), channel="sms")])
    decided = (await share_cells(admin), await ledger_channel(admin, "u1"))
    assert decided == (({"undisclosed": (1, 1)}, [None]) if at_arrival else ({"sms": (1, 1)}, ["sms"]))

    await change(store, "u1", at_rebuild, NOON + timedelta(minutes=30))
    clock.now = NOON + timedelta(hours=1)
    await writer.hold(records([share("old", "u2", NOON - timedelta(days=2))]))
    await writer.replay()

    assert (await share_cells(admin), await ledger_channel(admin, "u1")) == (
        {**decided[0], "whatsapp": (1, 1)}, decided[1]
    )


@pytest.mark.usefixtures("clean")
async def test_a_share_held_behind_a_replay_keeps_the_setting_at_its_arrival(store: Store, admin: asyncpg.Connection) -> None:
    """A live share about a video whose backfill is being replayed waits for it (arrivals_pending):
    it is decided when it arrives, not when the replay reaches it."""
    clock = Clock(NOON)
    writer = EventWriter(store.ingest, clock)
    await change(store, "u1", True, NOON - timedelta(hours=1))
    await writer.hold(records([share("old", "u2", NOON - timedelta(days=2))]))
    await ingest(writer, [share("ahead", "u1", NOON + timedelta(hours=2), channel="sms")])
    assert await admin.fetchval("SELECT live FROM arrivals_pending WHERE event_id = 'ahead'") is True

    await change(store, "u1", False, NOON + timedelta(minutes=30))
    clock.now = NOON + timedelta(hours=1)
    await writer.replay()

    assert await share_cells(admin) == {"whatsapp": (1, 1), "undisclosed": (1, 1)}
    assert await ledger_channel(admin, "u1") == [None]


@pytest.mark.usefixtures("clean")
async def test_shares_ingested_while_their_sharer_toggles_keep_the_setting_they_were_made_under(store: Store, admin: asyncpg.Connection) -> None:
    """Batches of shares made before the toggling began arrive while u1 turns the setting on and off
    again and again: none is anonymous; a share made after it was left on is."""
    clock = Clock(NOON + timedelta(hours=1))
    writer = EventWriter(store.ingest, clock)
    toggles = 40

    async def toggle() -> None:
        for n in range(toggles):
            await change(store, "u1", n % 2 == 0, NOON + timedelta(minutes=1 + n))

    async def share_in_batches() -> None:
        for batch in range(20):
            await ingest(writer, [share(f"b{batch}-{person}", person, NOON - timedelta(minutes=batch), video=f"v{batch % 3}")
                                  for person in ("u1", "u2", f"u-crowd-{batch}")])

    await asyncio.gather(toggle(), share_in_batches())
    await change(store, "u1", True, NOON + timedelta(hours=1))
    await ingest(writer, [share("later", "u1", NOON + timedelta(hours=1, minutes=5), video="v0", channel="sms")])

    for video in ("v0", "v1", "v2"):
        cells = await share_cells(admin, video)
        events, _ = await share_total(admin, video)
        assert cells.pop("undisclosed", None) == ((1, 1) if video == "v0" else None), (video, cells)
        assert sum(count for count, _ in cells.values()) == events - (video == "v0"), (video, cells)
        assert "sms" not in cells
    assert await admin.fetchval("SELECT count(*) FROM consent_changes WHERE user_id = 'u1'") == toggles + 1
    await assert_live_state_matches_events(admin)
    await assert_history_is_sound(admin)


# --- the audit and consented_sharers() -------------------------------------------------------------


@pytest.mark.usefixtures("clean")
async def test_nothing_rewrites_the_audit(store: Store, admin: asyncpg.Connection) -> None:
    await change(store, "u1", True, NOON)

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await admin.execute("UPDATE consent_changes SET value = false")
    assert await admin.fetchval("SELECT value FROM consent_changes WHERE user_id = 'u1'") is True


@pytest.mark.usefixtures("clean")
async def test_consented_sharers_are_listed_to_the_videos_creator_only(store: Store) -> None:
    await ingest(EventWriter(store.ingest), [
        event("video_published", "p1", NOON, actor_id="c1"),
        share("s1", "u1", NOON), share("s2", "u2", NOON), share("s3", "u3", NOON, anonymous=True),
    ])
    for user_id in ("u1", "u3"):
        await change(store, user_id, True, NOON, setting=Setting.VISIBLE_TO, creator_id="c1")
    await change(store, "u2", True, NOON, setting=Setting.VISIBLE_TO, creator_id="c2")

    async with store.reader.acquire() as conn:
        to_creator = await consent.consented_sharers(conn, "v1", "c1", None, 50)
        to_another = await consent.consented_sharers(conn, "v1", "c2", None, 50)

    assert to_creator == ["u1"]  # u2 consented to another creator; u3's share was anonymous
    assert to_another == []  # c2 is not the video's creator


@pytest.mark.usefixtures("clean")
async def test_consented_sharers_come_a_hundred_at_most(store: Store) -> None:
    sharers = [f"u{n:03d}" for n in range(101)]
    await ingest(EventWriter(store.ingest), [share(f"s-{user_id}", user_id, NOON) for user_id in sharers])
    for user_id in sharers:
        await change(store, user_id, True, NOON, setting=Setting.VISIBLE_TO, creator_id="c1")

    async with store.reader.acquire() as conn:
        rows = await conn.fetch("SELECT user_id FROM consented_sharers('v1', 'c1', NULL, 1000)")
        after = await consent.consented_sharers(conn, "v1", "c1", "u099", 50)

    assert [row["user_id"] for row in rows] == sharers[:100]
    assert after == ["u100"]
