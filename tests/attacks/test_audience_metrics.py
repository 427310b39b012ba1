"""Reach, retention, comment sentiment and audience activity, played as twin worlds that differ in one
person's view, watch time or comment.

Each figure is a value of the release history (migration 0023): a video's reach is its views'
people, the creator's reach and audience activity are the history of the creator's audience, and
retention and comment sentiment are breakdowns of a release's viewers and commenters, suppressed
below k with complements. So one person changes no answer until k − 1 others join them in a
release, and then only as one of k or more new people; a breakdown cell of fewer than k is never
served. Times are fixed in 2031, as in test_watch_metrics.py: the clock is the test's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.attacks.world import World, ask, differences, same_answers

from harness import Gateway

DAY0 = datetime(2031, 4, 8, tzinfo=UTC)
NOW = DAY0 + timedelta(hours=12, minutes=30)
DURATION_MS = 60_000
# Everything the creator is told of the new figures.
QUESTIONS = """query($video: ID!, $creator: ID!) {
  video(id: $video) {
    stats { views comments reach }
    retention { points { percent share suppressed } }
    commentSentiment { buckets { key count suppressed } }
  }
  creator(id: $creator) {
    totals { views reach }
    utc: audienceActivity { cells { dayOfWeek hour viewers suppressed } }
    berlin: audienceActivity(timeZone: "Europe/Berlin") { timeZone cells { dayOfWeek hour viewers suppressed } }
  }
}"""


def released_audience(name: str) -> World:
    """A 60 s video with five viewers who watched half of it and commented warmly, three days ago:
    one release of views and one of comments."""
    world = World(name)
    world.publish(DAY0 - timedelta(days=4))
    world.events[-1]["duration_ms"] = DURATION_MS
    start = DAY0 - timedelta(days=3) + timedelta(hours=9)
    for n in range(5):
        person = world.actor(f"regular{n}")
        world.view(person, start + timedelta(minutes=n), watch_ms=30_000)
        world.comment(person, start + timedelta(minutes=n, seconds=30), "Love it, great work!")
    return world


async def told(gateway: Gateway, worlds: list[World]) -> list[dict[str, Any]]:
    """What each world's creator is told, once every world's events have arrived as they happened
    (arrivals in the past of questions already asked: what the app kept is let go)."""
    with gateway.clock.at(NOW):
        for world in worlds:
            await gateway.play(world.take())
        gateway.forget_kept_answers()
        return [await ask(gateway, QUESTIONS, {"video": world.video(), "creator": world.creator}, world.owner) for world in worlds]


def assert_alike(worlds: list[World], answers: list[dict[str, Any]]) -> None:
    pairs = list(zip(worlds, answers, strict=True))
    assert same_answers(pairs), differences(*pairs)


async def test_one_view_changes_no_answer_until_k_minus_one_others_join_its_release(gateway: Gateway) -> None:
    """The victim views the video (one world) or not (the other), at an hour of the week nobody
    else viewed in, two days ago: reach, retention and the audience's hours are the same. Once
    four others view it too, the world with the victim makes a release of five new viewers (and
    the other does not yet): only then do the answers differ."""
    worlds = [released_audience(f"one-view-{seen}") for seen in ("seen", "unseen")]
    victim_at = DAY0 - timedelta(days=2) + timedelta(hours=3, minutes=17)
    worlds[0].view(worlds[0].actor("victim"), victim_at, watch_ms=DURATION_MS)

    before = await told(gateway, worlds)
    assert_alike(worlds, before)
    assert before[0]["data"]["video"]["stats"]["reach"] == 5
    assert before[0]["data"]["creator"]["totals"]["reach"] == 5

    for world in worlds:
        for n in range(4):
            world.view(world.actor(f"late{n}"), DAY0 - timedelta(days=1) + timedelta(hours=9, minutes=n), watch_ms=30_000)
    after = await told(gateway, worlds)
    assert after[0]["data"]["video"]["stats"]["reach"] == 10
    assert after[1]["data"]["video"]["stats"]["reach"] == 5
    # The victim's hour holds one viewer: suppressed, as is every cell below five, in every zone.
    victim_hours = [cell for cell in after[0]["data"]["creator"]["utc"]["cells"] if (cell["dayOfWeek"], cell["hour"]) == (7, 3)]
    assert victim_hours == [{"dayOfWeek": 7, "hour": 3, "viewers": None, "suppressed": True}]


async def test_one_viewers_watch_time_moves_no_retention_point_even_in_a_release(gateway: Gateway) -> None:
    """The victim and three others view the video two days ago; the victim watched it to the end
    (one world) or left after six seconds (the other). Four new viewers make no release: nothing
    differs. A fifth makes one, in both worlds, and the victim's depth cell (100 % or 10 %) holds
    them alone: suppressed with its complements, it tells nothing either."""
    worlds = [released_audience(f"watch-{watched}") for watched in ("whole", "brief")]
    start = DAY0 - timedelta(days=2) + timedelta(hours=9)
    for world, watched in zip(worlds, (DURATION_MS, 6_000), strict=True):
        world.view(world.actor("victim"), start, watch_ms=watched)
        for n in range(3):
            world.view(world.actor(f"other{n}"), start + timedelta(minutes=n + 1), watch_ms=30_000)

    assert_alike(worlds, await told(gateway, worlds))

    for world in worlds:
        world.view(world.actor("fifth"), DAY0 - timedelta(days=1) + timedelta(hours=9), watch_ms=30_000)
    after = await told(gateway, worlds)
    assert_alike(worlds, after)
    assert after[0]["data"]["video"]["stats"]["reach"] == 10
    points = after[0]["data"]["video"]["retention"]["points"]
    assert [point["percent"] for point in points] == list(range(10, 101, 10))


async def test_one_comment_changes_no_answer_until_k_minus_one_others_join_its_release(gateway: Gateway) -> None:
    """The victim writes a scathing comment (one world) or none (the other): the comment count and
    the commenters' sentiment are the same. Once four others comment, neutrally, the world with
    the victim makes a release of five new commenters; even then the negative cell holds the
    victim alone, and is suppressed."""
    worlds = [released_audience(f"one-comment-{wrote}") for wrote in ("wrote", "silent")]
    worlds[0].comment(worlds[0].actor("victim"), DAY0 - timedelta(days=2) + timedelta(hours=9), "This is awful, I hate it.")

    assert_alike(worlds, await told(gateway, worlds))

    for world in worlds:
        for n in range(4):
            world.comment(world.actor(f"asker{n}"), DAY0 - timedelta(days=1) + timedelta(hours=9, minutes=n), "What song is this?")
    after = await told(gateway, worlds)
    assert after[0]["data"]["video"]["stats"]["comments"] == 10
    assert after[1]["data"]["video"]["stats"]["comments"] == 5
    sentiment = {bucket["key"]: bucket for bucket in after[0]["data"]["video"]["commentSentiment"]["buckets"]}
    assert sentiment["negative"] == {"key": "negative", "count": None, "suppressed": True}
