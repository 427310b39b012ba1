"""A page of videos costs the same number of SQL statements whatever its size: dataloaders batch the
per-video lookups. Statements are counted with asyncpg's query loggers on every connection of the
reader pool the app's lifespan opened; asyncpg's own type introspection, which a connection runs once
the first time it meets a type without a built-in codec (timestamptz[]), is not the gateway's."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.auth import ANONYMOUS, Principal, PrincipalKind

from harness import Gateway, statements_on

FEW, MANY = "creator-five", "creator-fifty"
VIDEO_COUNT = {FEW: 5, MANY: 50}


def video_events(creator: str, number: int) -> list[dict[str, Any]]:
    """A published video with one view, one like and one share."""
    video = f"{creator}-video-{number:02d}"
    common = {"video_id": video, "creator_id": creator, "actor_id": f"fan-{number:02d}"}
    day = f"2025-03-{1 + number % 28:02d}"
    return [
        {"event_id": f"{video}-pub", "type": "video_published", "occurred_at": f"{day}T08:00:00Z", **common, "actor_id": creator},
        {"event_id": f"{video}-view", "type": "view", "occurred_at": f"{day}T09:00:00Z", **common, "watch_ms": 1000},
        {"event_id": f"{video}-like", "type": "like", "occurred_at": f"{day}T09:01:00Z", **common},
        {"event_id": f"{video}-share", "type": "share", "occurred_at": f"{day}T09:02:00Z", **common, "channel": "sms"},
    ]


@pytest.fixture(autouse=True)
def mid_hour(gateway: Gateway) -> Any:
    """Releases are kept only once their cutoff has settled, a minute after the hour it falls on:
    with the clock frozen in an hour's first minute (the module's gateway started then) each
    request read them anew, one statement more than counted. Asked at half past, it never is."""
    with gateway.clock.at(gateway.clock().replace(minute=30, second=0, microsecond=0)):
        yield


@pytest.fixture(scope="module", autouse=True)
async def platform(gateway: Gateway) -> None:
    await gateway.backfill([event for creator, count in VIDEO_COUNT.items() for n in range(count) for event in video_events(creator, n)])


PAGE = """query($id: ID!) { creator(id: $id) { videos(first: 50) {
    edges { node { id stats { views likes comments shares } } } } } }"""
PAGE_WITH_CHANNELS = """query($id: ID!) { creator(id: $id) { videos(first: 50) {
    edges { node { id stats { views likes comments shares } shareChannels { buckets { key count } } } } } } }"""


@pytest.mark.parametrize("creator", [pytest.param(FEW, id="5-videos"), pytest.param(MANY, id="50-videos")])
@pytest.mark.parametrize(
    ("query", "as_owner", "statements"),
    [
        # The catalogue's version, creator_exists, creator_videos (which primes the video loader),
        # and one batch of the releases the totals are read from.
        pytest.param(PAGE, False, 4, id="stats"),
        # ... and one batch of channels, for the owner (a release's cells are kept once read).
        pytest.param(PAGE_WITH_CHANNELS, True, 5, id="stats-and-channels"),
    ],
)
async def test_page_of_videos_costs_constant_statements(
    gateway: Gateway, creator: str, query: str, as_owner: bool, statements: int
) -> None:
    asking = Principal(PrincipalKind.USER, creator) if as_owner else ANONYMOUS
    gateway.state["releases"].clear()

    gateway.state["responses"].clear()

    # Then with the releases kept (the answer dropped): the catalogue's version and the two video
    # lookups. Then with the answer kept: the catalogue's version only.
    for kept, count in (("nothing", statements), ("releases", 3), ("the answer", 1)):
        if kept == "releases":
            gateway.state["responses"].clear()
        async with statements_on(gateway.store.reader) as sent:
            response = await gateway.graphql(query, {"id": creator}, principal=asking)

        edges = response.json()["data"]["creator"]["videos"]["edges"]
        assert len(edges) == VIDEO_COUNT[creator]
        assert {str(edge["node"]["stats"]) for edge in edges} == {str({"views": 1, "likes": 1, "comments": 0, "shares": 1})}
        assert len(sent) == count, (kept, sent)


@pytest.mark.parametrize("count", [3, 30])
async def test_aliased_videos_cost_constant_statements(gateway: Gateway, count: int) -> None:
    query = "{ " + " ".join(f'v{n}: video(id: "{MANY}-video-{n:02d}") {{ stats {{ views }} }}' for n in range(count)) + " }"
    gateway.state["releases"].clear()
    gateway.state["responses"].clear()

    # The catalogue's version, one batch of videos and one of releases; then, the answer kept, the version only.
    for statements in (3, 1):
        async with statements_on(gateway.store.reader) as sent:
            response = await gateway.graphql(query)

        assert sorted(response.json()) == ["data", "extensions"]  # no errors; extensions.privacy is tested in test_fields.py
        assert response.json()["data"] == {f"v{n}": {"stats": {"views": 1}} for n in range(count)}
        assert len(sent) == statements, sent
