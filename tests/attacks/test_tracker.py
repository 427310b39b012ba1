"""Tracker: many narrow questions whose answers, summed and subtracted from a wide one, would
give back a small cell.

The small cell: one share in one hour, among hours with many sharers. The tracker asks the
hourly timeline one hour at a time, then in windows of every width, and subtracts. A bucket
counts the shares of the releases made in it (each of at least k people new to the video's
shares), whatever the question, so every narrow answer shows each bucket exactly as the wide one
does, and the lone share is in no bucket until others arrive after it and it is released with
them. At best the tracker learns how many people each release brought.
"""

from __future__ import annotations

from datetime import timedelta
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
    # The target's share waits for k - 1 more sharers who never come: its hour shows nothing, every
    # busy hour shows its own release.
    assert wide[(START + timedelta(hours=HOURS + 1)).isoformat()] == 0
    assert [count for count in wide.values() if count] == [6, 7, 8, 9, 10, 11]
    assert not any(count is None for count in wide.values())


async def test_a_lone_hour_counts_nothing_and_its_share_counts_in_the_next_release(gateway: Gateway) -> None:
    """Against the earlier design the lone hour was suppressed and the smallest busy hour with it, a
    complement chosen over the video's whole life. The share, alone in its hour right after the busy
    ones, is now released with the twelve sharers of the hour after it: its own hour counts 0, the
    next 13 (arrival order decides that count), asked alone or among others, and the whole-life
    timeline sums to the total, leaving no remainder to attribute."""
    world = World("complement")
    world.publish(START)
    for hour in range(HOURS):
        world.crowd(f"h{hour}-", 6 + hour, START + timedelta(hours=hour), shares=True, spacing=timedelta(seconds=30))
    target = world.actor("target")
    world.view(target, START + timedelta(hours=2, minutes=50))
    world.share(target, START + timedelta(hours=HOURS, minutes=5))
    for hour in range(HOURS + 1, HOURS + 4):
        world.crowd(f"tail{hour}-", 12, START + timedelta(hours=hour), shares=True, spacing=timedelta(minutes=4))
    await gateway.play(world.take())
    wide = await timeline(gateway, world, START, START + timedelta(hours=HOURS + 2))
    assert wide[(START + timedelta(hours=HOURS)).isoformat()] == 0  # the target's hour
    assert wide[(START + timedelta(hours=HOURS + 1)).isoformat()] == 12 + 1  # the release the target's share joined
    for first in range(HOURS + 2):
        narrow = await timeline(gateway, world, START + timedelta(hours=first), START + timedelta(hours=first + 1))
        assert narrow == {(START + timedelta(hours=first)).isoformat(): wide[(START + timedelta(hours=first)).isoformat()]}
    life = await timeline(gateway, world, START - timedelta(hours=1), gateway.clock.now)
    shares = await gateway.graphql("query($v: ID!) { video(id: $v) { stats { shares } } }", {"v": world.video()}, principal=world.owner)
    assert shares.json()["data"]["video"]["stats"]["shares"] == sum(count or 0 for count in life.values()) == 1 + sum(range(6, 12)) + 3 * 12


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
    would be the one quiet hour of that day. Both count whole releases: the quiet hour's share is
    released with the next hour's sharers, and the day less its hours leaves nothing."""
    world = World("linked")
    day = days_ago(6)
    world.publish(days_ago(40))
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
        hours: shareTimeline(granularity: HOUR, from: $from, to: $to) { buckets { start count suppressed } }
        days: shareTimeline(granularity: DAY, from: $from, to: $to) { buckets { start count suppressed } } } }"""
    response = await gateway.graphql(query, {"video": world.video(), "from": iso(day), "to": iso(day + timedelta(days=1))}, principal=world.owner)
    video = response.json()["data"]["video"]
    (day_bucket,) = video["days"]["buckets"]
    assert day_bucket["count"] == 1 + sum(6 + hour % 5 for hour in range(24) if hour != quiet)  # the day is served
    hours = {bucket["start"]: bucket["count"] for bucket in video["hours"]["buckets"]}
    assert not any(bucket["suppressed"] for bucket in video["hours"]["buckets"] + video["days"]["buckets"])
    assert hours[(day + timedelta(hours=quiet)).isoformat()] == 0
    # Arrival order decides: the quiet share counts in the next hour, with its 10 sharers.
    assert hours[(day + timedelta(hours=quiet + 1)).isoformat()] == 6 + (quiet + 1) % 5 + 1
    assert day_bucket["count"] - sum(hours.values()) == 0  # nothing left to attribute to one hour
