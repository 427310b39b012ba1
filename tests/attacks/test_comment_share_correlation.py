"""Comment/share correlation: a viewer comments "just shared this with everyone" and shares
within the minute; the creator asks the finest timeline allowed to line the share up.

Owners get hours at finest (a minute is not a granularity; apps are refused HOUR), a timeline
counts shares by the release that brought them (k people new to the video's shares at once), a
range ending mid-hour is cut to whole hours, and the newest hour is served only once it has closed
and an hour has passed. At best the creator learns what the other sharers did: the answers are the
same whether the commenter shared or not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.attacks.world import World, ask, battery, days_ago, differences, iso, same_answers

from gateway.auth import Principal, PrincipalKind
from harness import Gateway

PUBLISHED = days_ago(5, 8)
COMMENTED = days_ago(3, 14, 12, 30)
QUESTIONS = battery(days_ago(7), days_ago(0))


def background(world: World) -> str:
    """A video others share too: six people in one hour two days before, two more the day before."""
    world.publish(PUBLISHED)
    world.crowd("early", 6, days_ago(5, 10), shares=True)
    world.crowd("late", 2, days_ago(4, 16), shares=True, channel="copy_link")
    commenter = world.actor("commenter")
    world.view(commenter, COMMENTED - timedelta(minutes=3), region="DE", age_band="25-34")
    world.comment(commenter, COMMENTED, "just shared this with everyone")
    return commenter


async def answers(gateway: Gateway, world: World, query: str = QUESTIONS) -> dict[str, Any]:
    return await ask(gateway, query, {"video": world.video(), "creator": world.creator}, world.owner)


async def test_the_finest_timeline_does_not_show_whether_the_commenter_shared(gateway: Gateway) -> None:
    shared, silent = World("shared"), World("silent")
    for world in (shared, silent):
        commenter = background(world)
        if world is shared:
            world.share(commenter, COMMENTED + timedelta(seconds=40), channel="whatsapp", region="DE")
        await gateway.play(world.take())
    bodies = [(world, await answers(gateway, world)) for world in (shared, silent)]
    assert same_answers(bodies), differences(*bodies)
    # The commenter's share waits, with the two late sharers', for two more people: the only shares
    # any timeline shows are the six early ones, in the hour that released them.
    video = bodies[0][1]["data"]["video"]
    assert video["stats"]["shares"] == 6
    hours = {bucket["start"]: bucket["count"] for bucket in video["sharesByHour"]["buckets"]}
    assert hours[COMMENTED.replace(minute=0, second=0).isoformat()] == 0
    assert {start: count for start, count in hours.items() if count} == {days_ago(5, 10).isoformat(): 6}
    assert not any(bucket["suppressed"] for bucket in video["sharesByHour"]["buckets"])


async def test_a_minute_is_not_a_granularity_and_apps_may_not_ask_for_hours(gateway: Gateway) -> None:
    world = World("minute")
    background(world)
    await gateway.play(world.take())
    minute = await gateway.graphql(
        "query($v: ID!) { video(id: $v) { shareTimeline(granularity: MINUTE) { buckets { count } } } }", {"v": world.video()}, principal=world.owner
    )
    assert minute.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    app = Principal(PrincipalKind.APP, world.creator, frozenset({"insights"}), app_id="app-correlation")
    hourly = await gateway.graphql(
        "query($v: ID!) { video(id: $v) { shareTimeline(granularity: HOUR) { buckets { count } } } }", {"v": world.video()}, principal=app
    )
    error = hourly.json()["errors"][0]
    assert hourly.json()["data"] is None and error["extensions"] == {"code": "FORBIDDEN", "field": "Video.shareTimeline"}
    assert "finer than the DAY floor" in error["message"]


async def test_a_range_ending_mid_hour_is_cut_to_whole_hours(gateway: Gateway) -> None:
    world = World("midhour")
    commenter = background(world)
    world.share(commenter, COMMENTED + timedelta(seconds=40))
    await gateway.play(world.take())
    query = """query($video: ID!, $to: DateTime!) { video(id: $video) {
        shareTimeline(granularity: HOUR, from: "%s", to: $to) { to buckets { start count suppressed } } } }""" % iso(days_ago(5))
    served = []
    for to in (COMMENTED - timedelta(seconds=1), COMMENTED + timedelta(seconds=41), COMMENTED + timedelta(minutes=40)):
        response = await gateway.graphql(query, {"video": world.video(), "to": iso(to)}, principal=world.owner)
        served.append(response.json()["data"]["video"]["shareTimeline"])
    assert served[0] == served[1] == served[2]
    assert served[0]["to"] == COMMENTED.replace(minute=0, second=0).isoformat()


async def test_the_hour_of_a_fresh_share_is_not_served_yet(gateway: Gateway) -> None:
    world = World("fresh")
    background(world)
    await gateway.play(world.take())
    before = await answers(gateway, world)
    now = gateway.clock.now
    fresh = world.actor("fresh")
    world.view(fresh, now - timedelta(minutes=4), region="DE", age_band="25-34")
    world.comment(fresh, now - timedelta(minutes=2), "just shared this")
    world.share(fresh, now - timedelta(minutes=1))
    await gateway.play(world.take())
    after = await answers(gateway, world)
    # Not the view, the comment, the share, nor the audience cell the viewer joins: all are held back.
    assert after == before
    newest = max(bucket["start"] for bucket in after["data"]["video"]["sharesByHour"]["buckets"])
    served_until = datetime.fromisoformat(after["data"]["video"]["sharesByHour"]["to"])
    assert served_until <= now - timedelta(hours=1) and datetime.fromisoformat(newest) < now - timedelta(hours=2)
