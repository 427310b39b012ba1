"""Small audience: three friends watch a video, one of them shares it.

The creator asks every breakdown and every timeline they may, at every granularity. At best
they learn that three people watched, which they knew; whether anyone shared, and who, is
not in any answer: the answers are the same whether friend 2 shared, friend 3 shared, or
nobody did.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.attacks.world import World, battery, days_ago, release_values, same_answers

from harness import Gateway

PUBLISHED = days_ago(6, 9)
QUESTIONS = battery(days_ago(8), days_ago(0))


async def play(gateway: Gateway, sharer: int | None) -> tuple[World, dict[str, Any]]:
    world = World(f"friends{sharer}")
    world.publish(PUBLISHED)
    friends = [world.actor(f"friend{i}") for i in (1, 2, 3)]
    for i, friend in enumerate(friends):
        world.view(friend, PUBLISHED.replace(hour=10 + i), region="IS", age_band="18-24")
    if sharer is not None:
        world.share(friends[sharer - 1], PUBLISHED.replace(hour=12, minute=7), channel="whatsapp", region="IS")
    await gateway.play(world.take())
    response = await gateway.graphql(QUESTIONS, {"video": world.video(), "creator": world.creator}, principal=world.owner)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return world, body


async def test_nobody_can_be_told_apart_from_any_one_friend(gateway: Gateway) -> None:
    worlds = [await play(gateway, sharer) for sharer in (2, 3, None)]
    assert same_answers(worlds)


async def test_every_share_figure_is_withheld(gateway: Gateway) -> None:
    _, body = await play(gateway, 2)
    video = body["data"]["video"]
    assert video["stats"]["shares"] == 0  # one sharer is not a step of k = 5
    assert all(cell["suppressed"] and cell["count"] is None for cell in video["shareChannels"]["buckets"])
    # No release of shares: every bucket of every timeline counts nothing, and none is suppressed.
    for timeline in ("sharesByHour", "sharesByDay", "sharesByWeek", "sharesByMonth"):
        assert {(bucket["count"], bucket["suppressed"]) for bucket in video[timeline]["buckets"]} == {(0, False)}, timeline
    # Three viewers are below k too: not even the region they share is listed.
    assert video["regions"]["buckets"] == [{"key": "OTHER", "count": None, "suppressed": True}]
    privacy = body["extensions"]["privacy"]
    assert privacy["k"] == 5 and privacy["granularityFloor"] == "HOUR" and privacy["suppressedCells"] > 0
    assert privacy["noised"] is False


async def test_one_friend_sharing_in_five_hours_is_one_person_in_every_bucket(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """Hourly distinct counts summed over a day would count this friend five times: a DAY or WEEK
    bucket, and a step of the total, would show the shares of one person. Releases are made by
    people new to the video's shares (the ledger): one friend's five shares make none."""
    world = World("five-hours")
    world.publish(PUBLISHED)
    friends = [world.actor(f"friend{i}") for i in (1, 2, 3)]
    for i, friend in enumerate(friends):
        world.view(friend, PUBLISHED.replace(hour=10 + i), region="IS", age_band="18-24")
    for hour in range(5):
        world.share(friends[1], PUBLISHED.replace(hour=13 + hour, minute=5))
    await gateway.play(world.take())
    response = await gateway.graphql(QUESTIONS, {"video": world.video(), "creator": world.creator}, principal=world.owner)
    video = response.json()["data"]["video"]
    for timeline in ("sharesByHour", "sharesByDay", "sharesByWeek", "sharesByMonth"):
        assert {bucket["count"] for bucket in video[timeline]["buckets"]} == {0}, timeline
    assert video["stats"]["shares"] == 0
    assert all(cell["count"] is None for cell in video["shareChannels"]["buckets"])
    assert await release_values(admin, world.video(), "s") == {}
