"""Tracker: many narrow questions whose answers, summed and subtracted from a wide one, would
give back a small cell.

The small cell: one share in one hour, among hours with many sharers. The tracker asks the
hourly timeline one hour at a time, then in windows of every width, and subtracts. Which
buckets are suppressed is decided over the video's whole life, never per question, so every
narrow answer shows each bucket exactly as the wide one does: summing narrow answers gives
nothing the wide answer did not. At best the tracker learns the visible hours' counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.attacks.world import World, days_ago, differences, iso, same_answers

from harness import Gateway

QUERY = """query($video: ID!, $from: DateTime!, $to: DateTime!) { video(id: $video) {
    shareTimeline(granularity: HOUR, from: $from, to: $to) { buckets { start count suppressed } } } }"""
START = days_ago(4, 9)
HOURS = 6


def busy_video(world: World, target_hour: int | None) -> None:
    """Six busy hours, each with its own crowd of sharers (6 to 11), and the target's one share."""
    world.publish(START - timedelta(hours=1))
    for hour in range(HOURS):
        world.crowd(f"h{hour}-", 6 + hour, START + timedelta(hours=hour), shares=True, spacing=timedelta(seconds=30))
    if target_hour is not None:
        target = world.actor("target")
        world.view(target, START + timedelta(hours=target_hour, minutes=50))
        world.share(target, START + timedelta(hours=target_hour, minutes=52), channel="email")


async def timeline(gateway: Gateway, world: World, start: Any, end: Any) -> dict[str, int | None]:
    response = await gateway.graphql(QUERY, {"video": world.video(), "from": iso(start), "to": iso(end)}, principal=world.owner)
    body = response.json()
    assert "errors" not in body, body
    return {bucket["start"]: bucket["count"] for bucket in body["data"]["video"]["shareTimeline"]["buckets"]}


async def every_window(gateway: Gateway, world: World) -> dict[str, dict[str, int | None]]:
    return {
        f"{first}..{last}": await timeline(gateway, world, START + timedelta(hours=first), START + timedelta(hours=last))
        for first in range(-2, HOURS + 2)
        for last in range(first + 1, HOURS + 3)
    }


async def test_narrow_answers_agree_with_the_wide_one_bucket_by_bucket(gateway: Gateway) -> None:
    world = World("tracked")
    busy_video(world, target_hour=HOURS + 1)  # alone in the hour after the busy ones
    await gateway.play(world.take())
    wide = await timeline(gateway, world, START - timedelta(hours=2), START + timedelta(hours=HOURS + 3))
    for window, answer in (await every_window(gateway, world)).items():
        assert all(wide[start] == count for start, count in answer.items()), window
    # The target's hour is suppressed among the empty ones, and the smallest busy hour with them,
    # in every answer.
    assert wide[(START + timedelta(hours=HOURS + 1)).isoformat()] is None
    assert [count for count in wide.values() if count is not None] == [7, 8, 9, 10, 11]


async def test_the_complement_of_a_lone_small_bucket_stays_hidden_in_narrow_answers(gateway: Gateway) -> None:
    """With one suppressed hour in the video's whole life, the smallest busy hour is suppressed with
    it. Asked alone, that busy hour stays suppressed; otherwise total minus the rest would give the
    small hour back."""
    world = World("complement")
    world.publish(START)
    for hour in range(HOURS):
        world.crowd(f"h{hour}-", 6 + hour, START + timedelta(hours=hour), shares=True, spacing=timedelta(seconds=30))
    target = world.actor("target")
    world.view(target, START + timedelta(hours=2, minutes=50))
    # Alone in its hour, right after the busy hours; then busier hours go on every hour until the cutoff.
    world.share(target, START + timedelta(hours=HOURS, minutes=5))
    served_until = days_ago(0) + timedelta(hours=datetime.now(UTC).hour - 1)
    hour = HOURS + 1
    while START + timedelta(hours=hour) < served_until:
        world.crowd(f"tail{hour}-", 12, START + timedelta(hours=hour), shares=True, spacing=timedelta(minutes=4))
        hour += 1
    await gateway.play(world.take())
    wide = await timeline(gateway, world, START, START + timedelta(hours=HOURS + 2))
    assert wide[(START + timedelta(hours=HOURS)).isoformat()] is None  # the target's hour
    assert wide[START.isoformat()] is None  # its complement: the smallest busy hour (6 sharers)
    for first in range(HOURS + 1):
        narrow = await timeline(gateway, world, START + timedelta(hours=first), START + timedelta(hours=first + 1))
        assert narrow == {(START + timedelta(hours=first)).isoformat(): wide[(START + timedelta(hours=first)).isoformat()]}


async def test_every_window_is_the_same_whether_or_not_the_target_shared(gateway: Gateway) -> None:
    tracked, untouched = World("tracked-twin"), World("untouched-twin")
    busy_video(tracked, target_hour=HOURS + 1)
    busy_video(untouched, target_hour=None)
    await gateway.play(tracked.take() + untouched.take())
    first = await every_window(gateway, tracked)
    second = await every_window(gateway, untouched)
    assert same_answers([(tracked, first), (untouched, second)]), differences((tracked, first), (untouched, second))


async def test_a_busy_day_does_not_give_back_its_one_quiet_hour(gateway: Gateway) -> None:
    """Linked granularities: a day's count (DAY timeline) minus its visible hours (HOUR timeline)
    would be the one suppressed hour of that day. The hour's smallest busy sibling is suppressed
    with it, so the difference is a sum over two hours."""
    world = World("linked")
    day = days_ago(6)
    world.publish(days_ago(40))
    for before in range(40, 0, -1):  # every other day is busy enough to be served too
        if before != 6:
            world.crowd(f"d{before}-", 6, days_ago(before, 12), shares=True)
    quiet = 13
    for hour in range(24):
        if hour == quiet:
            target = world.actor("target")
            world.view(target, day + timedelta(hours=hour, minutes=10))
            world.share(target, day + timedelta(hours=hour, minutes=11))
        else:
            world.crowd(f"h{hour}-", 6 + hour % 5, day + timedelta(hours=hour), shares=True, spacing=timedelta(minutes=2))
    await gateway.play(world.take())
    query = """query($video: ID!, $from: DateTime!, $to: DateTime!) { video(id: $video) {
        hours: shareTimeline(granularity: HOUR, from: $from, to: $to) { buckets { start count } }
        days: shareTimeline(granularity: DAY, from: $from, to: $to) { buckets { start count } } } }"""
    response = await gateway.graphql(query, {"video": world.video(), "from": iso(day), "to": iso(day + timedelta(days=1))}, principal=world.owner)
    video = response.json()["data"]["video"]
    (day_bucket,) = video["days"]["buckets"]
    assert day_bucket["count"] == 1 + sum(6 + hour % 5 for hour in range(24) if hour != quiet)  # the day is served
    hidden = [bucket["start"] for bucket in video["hours"]["buckets"] if bucket["count"] is None]
    assert (day + timedelta(hours=quiet)).isoformat() in hidden
    assert len(hidden) == 2  # the quiet hour, and the smallest busy one with it
    remainder = day_bucket["count"] - sum(bucket["count"] for bucket in video["hours"]["buckets"] if bucket["count"] is not None)
    assert remainder == 1 + 6  # two hours' worth: the quiet hour's share cannot be told apart
