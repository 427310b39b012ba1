"""Pattern: one account shares each of ten videos within five minutes of its posting; the creator
compares the timelines of the ten videos to spot it.

Each video is also shared by others, hours later. The history releases shares only once k people
new to them have arrived, and timelines count shares by the release that brought them, so the
early share waits for, and is released with, the later ones: the creator's answers are the same
whether the account shared minutes after posting or hours later, alongside the others. At best
they learn how many shared in all.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.attacks.world import World, battery, days_ago, differences, same_answers

from harness import Gateway

VIDEOS = 10
QUESTIONS = battery(days_ago(30), days_ago(0))


def posted(index: int) -> Any:
    return days_ago(20 - index, 9)


async def play(gateway: Gateway, name: str, early: bool) -> tuple[World, list[dict[str, Any]]]:
    world = World(name)
    account = world.actor("fan")
    for index in range(VIDEOS):
        published = posted(index)
        world.publish(published, index)
        # The account: minutes after posting, or three hours later among the others.
        when = published + (timedelta(minutes=4) if early else timedelta(hours=3, minutes=2))
        world.view(account, when - timedelta(minutes=1), index, region="DE", age_band="25-34")
        world.share(account, when, index, region="DE")
        world.crowd(f"later{index}-a", 3, published + timedelta(hours=3), index, shares=True)
        world.crowd(f"later{index}-b", 3, published + timedelta(hours=26), index, shares=True)
    await gateway.play(world.take())
    bodies = []
    for index in range(VIDEOS):
        response = await gateway.graphql(QUESTIONS, {"video": world.video(index), "creator": world.creator}, principal=world.owner)
        body = response.json()
        assert "errors" not in body, body
        bodies.append(body)
    return world, bodies


async def test_the_timelines_of_ten_videos_do_not_show_the_early_sharer(gateway: Gateway) -> None:
    early_world, early = await play(gateway, "early", early=True)
    late_world, late = await play(gateway, "late", early=False)
    for index in range(VIDEOS):
        assert same_answers([(early_world, early[index]), (late_world, late[index])]), differences((early_world, early[index]), (late_world, late[index]))
    # No timeline shows a share before the hour, a day after posting, in which the seventh sharer
    # arrived: the account's early share is in that release, one of seven.
    for index, body in enumerate(early):
        for timeline in ("sharesByHour", "sharesByDay"):
            shown = {b["start"]: b["count"] for b in body["data"]["video"][timeline]["buckets"] if b["count"] or b["suppressed"]}
            released = posted(index) + timedelta(hours=26)
            start = released.replace(hour=0) if timeline == "sharesByDay" else released
            assert shown == {start.isoformat(): 7}, (index, timeline)
    # What they learn: seven people shared each video.
    assert {body["data"]["video"]["stats"]["shares"] for body in early} == {7}
