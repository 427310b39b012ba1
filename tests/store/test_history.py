"""Whatever order, batching and duplication events arrive in, the live state equals a recount over
`events`, and every release history is a sequence of whole steps of k new people."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.store.ingest import EventWriter
from gateway.store.pools import Store

from helpers import assert_history_is_sound, assert_live_state_matches_events, event, ingest, truncate_all, utc

# A small id space, so that events collide in cells and actors repeat within them.
CREATOR_OF = {"v1": "c1", "v2": "c1", "v3": "c2"}
CREATORS = ("c1", "c2")
ACTORS = ("u1", "u2", "u3")
# Hours across three months: a very old one, and both sides of a month boundary.
HOURS = (utc(2001, 2, 28, 23), utc(2025, 6, 30, 23), utc(2025, 7, 1, 0), utc(2025, 7, 1, 5))
# Offsets the platform may write timestamps in; buckets are UTC whatever the offset.
OFFSETS = tuple(timezone(timedelta(minutes=minutes)) for minutes in (0, 120, -300, 330))

TYPES = ("video_published", "view", "like", "unlike", "comment", "share", "follow", "unfollow")
region = st.sampled_from([None, "DE", "FR"])
age_band = st.sampled_from([None, "18-24", "65+"])


@st.composite
def burst(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few events (without ids) of one actor about one video or creator within one hour.

    Drawing events in bursts makes an actor meet the same hour again and again through
    other types, regions, age bands and channels: where a distinct count could go wrong.
    """
    actor_id = draw(st.sampled_from(ACTORS))
    video_id = draw(st.sampled_from(sorted(CREATOR_OF)))
    followed = draw(st.sampled_from(CREATORS))
    hour = draw(st.sampled_from(HOURS))
    events = []
    for kind in draw(st.lists(st.sampled_from(TYPES), min_size=2, max_size=6)):
        at = (hour + timedelta(seconds=draw(st.integers(0, 3599)))).astimezone(draw(st.sampled_from(OFFSETS)))
        fields: dict[str, Any] = {"actor_id": actor_id, "region": draw(region), "age_band": draw(age_band)}
        if kind == "view":
            fields |= {"watch_ms": draw(st.integers(0, 200_000)), "completed": draw(st.booleans())}  # some past the cap of 180 s
        elif kind == "share":
            fields |= {"channel": draw(st.sampled_from(["whatsapp", "x", "email"])), "anonymous": draw(st.booleans())}
        elif kind == "comment":
            fields |= {"text": draw(st.sampled_from(["wow", "part 2 please"]))}
        if kind in ("follow", "unfollow"):
            events.append(event(kind, "", at, creator_id=followed, **fields))
        else:
            events.append(event(kind, "", at, video_id=video_id, creator_id=CREATOR_OF[video_id], **fields))
    return events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Distinct events, and the batches they arrive in: shuffled, some re-sent whole, cut anywhere."""
    bursts = draw(st.lists(burst(), min_size=6, max_size=16))
    events = [dict(body, event_id=f"e{n}") for n, body in enumerate(body for drawn in bursts for body in drawn)]
    resent = draw(st.lists(st.sampled_from(events), max_size=10))
    sends = draw(st.permutations(events + resent))
    cuts = sorted(draw(st.lists(st.integers(0, len(sends)), min_size=1, max_size=5)))
    return events, [sends[start:end] for start, end in zip([0, *cuts], [*cuts, len(sends)])]


async def test_the_reader_sees_videos_and_the_release_history_only(admin: asyncpg.Connection) -> None:
    readable = await admin.fetch(
        "SELECT table_name FROM information_schema.role_table_grants WHERE grantee = 'gateway_reader' AND privilege_type = 'SELECT'"
    )
    assert {row["table_name"] for row in readable} == {"videos", "catalog_version", "releases", "release_cells"}


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delivery=deliveries())
async def test_live_state_is_a_recount_and_history_whole_steps_whatever_the_delivery(
    store: Store, admin: asyncpg.Connection, delivery: tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]
) -> None:
    events, batches = delivery
    await truncate_all(admin)
    writer = EventWriter(store.ingest)

    inserted = 0
    for batch in batches:
        inserted += (await ingest(writer, batch)).inserted

    stored_ids = {row["event_id"] for row in await admin.fetch("SELECT event_id FROM events")}
    assert await admin.fetchval("SELECT count(*) FROM events") == len(events)
    assert stored_ids == {body["event_id"] for body in events}
    assert inserted == len(events)
    await assert_live_state_matches_events(admin)
    await assert_history_is_sound(admin)
