"""The release history advances in steps of the smallest k the policy gives anyone, kept in step with
the policy in force; a principal given a larger k sees only the releases that crossed a multiple of it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.auth import Principal, PrincipalKind
from gateway.policy.embedded import EmbeddedEngine
from gateway.privacy.history_k import sync_history_k

from harness import Gateway, TestClock, policies_with, running_gateway

START = datetime(2026, 11, 2, 9, tzinfo=UTC)
VIEWS = "query($id: ID!) { video(id: $id) { stats { views } } }"


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped policy, but with k = 3 for users and the public (apps keep 50)."""
    target = policies_with(tmp_path_factory.mktemp("policies"), {})
    data_file = target / "data.json"
    data = json.loads(data_file.read_text())
    for kind in ("anonymous", "user"):
        data["obligations"]["principals"][kind]["k_threshold"] = 3
    data_file.write_text(json.dumps(data))
    return target


@pytest.fixture(scope="module")
async def gateway(database_url: str, policy_dir: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url, policy_dir=policy_dir, clock=TestClock(START)) as started:
        yield started


def viewers(video: str, first: int, count: int, at: datetime) -> list[dict[str, Any]]:
    return [
        {"event_id": f"{video}-view-{n}", "type": "view", "occurred_at": at.isoformat(), "video_id": video,
         "creator_id": "creator-k", "actor_id": f"viewer-{n}", "watch_ms": 1000}
        for n in range(first, first + count)
    ]


async def test_history_k_is_the_policys_smallest(gateway: Gateway, admin: asyncpg.Connection) -> None:
    assert await admin.fetchval("SELECT k FROM release_settings") == 3


async def test_history_k_steps_of_the_smallest_k_make_releases(gateway: Gateway, admin: asyncpg.Connection) -> None:
    await gateway.ingest(viewers("video-steps", 0, 2, START))
    await gateway.ingest(viewers("video-steps", 2, 1, START))

    people = await admin.fetch("SELECT people FROM releases WHERE subject_id = 'video-steps' AND metric = 'v' ORDER BY seq")
    assert [row["people"] for row in people] == [3]


async def test_history_k_a_larger_k_sees_only_releases_that_crossed_a_multiple_of_it(gateway: Gateway) -> None:
    """Twenty-one arrivals of three viewers each: releases at 3, 6, … 63 people. An app (k = 50) sees
    the release that crossed 50 (51 people), a creator (k = 3) the latest."""
    published = {"event_id": "video-crossing-pub", "type": "video_published", "occurred_at": START.isoformat(),
                 "video_id": "video-crossing", "creator_id": "creator-k", "actor_id": "creator-k"}
    await gateway.ingest([published])
    for arrival in range(21):
        with gateway.clock.at(START + timedelta(minutes=arrival)):
            await gateway.ingest(viewers("video-crossing", 3 * arrival, 3, START))
    app = Principal(PrincipalKind.APP, "creator-k", frozenset({"stats"}), app_id="app-k")
    owner = Principal(PrincipalKind.USER, "creator-k")

    with gateway.clock.at(START + timedelta(days=1, hours=2)):
        as_app = await gateway.graphql(VIEWS, {"id": "video-crossing"}, principal=app)
        as_owner = await gateway.graphql(VIEWS, {"id": "video-crossing"}, principal=owner)

    assert as_app.json()["data"]["video"]["stats"]["views"] == 51
    assert as_owner.json()["data"]["video"]["stats"]["views"] == 63


async def test_history_k_follows_a_new_policy(gateway: Gateway, policy_dir: Path, admin: asyncpg.Connection) -> None:
    data_file = policy_dir / "data.json"
    shipped = data_file.read_text()
    data = json.loads(shipped)
    data["obligations"]["principals"]["anonymous"]["k_threshold"] = 2
    data_file.write_text(json.dumps(data))
    engine: EmbeddedEngine = gateway.state["engine"]
    try:
        await gateway.policy_in_force()
        assert await sync_history_k(engine, gateway.store.ingest) == 2
        assert await admin.fetchval("SELECT k FROM release_settings") == 2
    finally:
        data_file.write_text(shipped)
        await gateway.policy_in_force()
        await sync_history_k(engine, gateway.store.ingest)
