"""A backfill gives a subject with no release a past: answers show it within a minute of its being
built, even where the gateway had already answered that there was nothing (a replica keeps "no
release" for a minute only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness import Gateway, TestClock, running_gateway

NOW = datetime(2031, 3, 20, 12, tzinfo=UTC)
VIEWS = "query($v: ID!) { video(id: $v) { stats { views } } }"


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url, clock=TestClock(NOW)) as started:
        yield started


def view(n: int, at: datetime) -> dict[str, Any]:
    return {"event_id": f"backfilled-view-{n}", "type": "view", "occurred_at": at.isoformat(), "video_id": "v-backfilled",
            "creator_id": "c-backfilled", "actor_id": f"viewer-{n}", "watch_ms": 1000}


async def test_backfill_reaches_answers_given_before_it(gateway: Gateway) -> None:
    published = {"event_id": "backfilled-pub", "type": "video_published", "occurred_at": (NOW - timedelta(hours=3)).isoformat(),
                 "video_id": "v-backfilled", "creator_id": "c-backfilled", "actor_id": "c-backfilled"}
    await gateway.ingest([published])
    before = await gateway.graphql(VIEWS, {"v": "v-backfilled"})
    assert before.json()["data"]["video"]["stats"]["views"] == 0

    # One release of the video's views, one of its creator's audience (migration 0023).
    assert await gateway.backfill([view(n, NOW - timedelta(days=20)) for n in range(8)]) == 2

    with gateway.clock.at(NOW + timedelta(seconds=61)):
        after = await gateway.graphql(VIEWS, {"v": "v-backfilled"})
    assert after.json()["data"]["video"]["stats"]["views"] == 8
