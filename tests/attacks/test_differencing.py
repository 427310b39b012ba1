"""Differencing: ask before and after one share; ask overlapping ranges and subtract.

A share is held back until at least k-1 other people new to the video's shares arrive after it
(the history grows in releases of at least k people; the breakdowns and the audience are read at
the same release), and a timeline counts shares by the release that brought them, in whole, closed
buckets only, so two overlapping ranges share their buckets exactly. At best the creator learns
that a release of at least k sharers was made: the one share is one of at least k.

(A creator who controls k-1 accounts can make up a step around one real share: no threshold
stands against sybils. Apps, whose counts are noised, are the case where that matters most.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.attacks.world import World, ask, battery, counted, days_ago, differences, iso, same_answers

from harness import Gateway

QUESTIONS = battery(days_ago(10), days_ago(0))


async def owner_asks(gateway: Gateway, world: World, query: str = QUESTIONS, **variables: Any) -> dict[str, Any]:
    """The owner's answer to `query` about the world's video and creator."""
    return await ask(gateway, query, {"video": world.video(), "creator": world.creator, **variables}, world.owner)


RANKING = """query($video: ID!, $creator: ID!) { video(id: $video) { id }
    creator(id: $creator) { videos(orderBy: SHARES, first: 5) { edges { cursor node { id stats { shares } } } } } }"""


async def test_one_share_changes_no_answer(gateway: Gateway) -> None:
    """The target's share, and three more, arrive after the creator's first answers: no answer moves
    until a fifth sharer completes a release, at whatever time the creator asks."""
    world = World("before-after")
    world.publish(days_ago(9, 8))
    world.crowd("first", 12, days_ago(9, 10), shares=True)  # one hour of 12 sharers: released whole
    world.publish(days_ago(9, 8), 1)
    world.crowd("other", 12, days_ago(9, 11), 1, shares=True)  # a second video with as many
    with gateway.clock.at(days_ago(5, 12)):
        await gateway.play(world.take())
        before = await owner_asks(gateway, world)
        ranking = await owner_asks(gateway, world, RANKING)
    assert before["data"]["video"]["stats"]["shares"] == 12
    before = counted(before)

    async def later(hours: int) -> Any:
        """The owner's answers `hours` after the first ones, with whatever has arrived until then
        (without the empty buckets that closed meanwhile)."""
        with gateway.clock.at(days_ago(5, 12) + timedelta(hours=hours)):
            await gateway.ingest(world.take())
            return counted(await owner_asks(gateway, world))

    target = world.actor("target")
    world.view(target, days_ago(5, 12, 55), region="FR", age_band="45-54")
    world.share(target, days_ago(5, 13, 5), channel="email", region="FR")
    assert await later(2) == before
    assert await later(4) == before  # its hour closed and an hour passed: still nothing
    # Nor the ranking of the creator's videos by shares, nor its cursors (which carry the ranked count).
    with gateway.clock.at(days_ago(5, 12) + timedelta(hours=4)):
        assert await owner_asks(gateway, world, RANKING) == ranking

    # Three more sharers the next day: still short of a release.
    world.crowd("more", 3, days_ago(4, 11), shares=True, channel="email")
    assert await later(24) == before
    assert await later(27) == before

    # A fourth completes it (arriving the day after): the total moves by the five of them at once,
    # in the hour of that arrival. The email cell holds all five, but as the smallest visible channel
    # among suppressed (empty) ones it is suppressed with them, and whatsapp, the first visible by key
    # left, with it: no channel is served. The target is one of five.
    world.crowd("last", 1, days_ago(3, 11), shares=True, channel="email")
    assert await later(48) == before
    after = await later(51)
    assert after["data"]["video"]["stats"]["shares"] == 17
    channels = {cell["key"]: cell["count"] for cell in after["data"]["video"]["shareChannels"]["buckets"]}
    assert channels["whatsapp"] is None and channels["email"] is None
    hours = {bucket["start"]: bucket["count"] for bucket in after["data"]["video"]["sharesByHour"]["buckets"]}
    assert {start: count for start, count in hours.items() if count} == {days_ago(9, 10).isoformat(): 12, days_ago(3, 12).isoformat(): 5}


async def test_overlapping_ranges_subtract_to_whole_releases(gateway: Gateway) -> None:
    world = World("overlap")
    world.publish(days_ago(9, 8))
    world.crowd("steady", 6, days_ago(8, 10), shares=True)
    world.crowd("steady2", 6, days_ago(6, 10), shares=True)
    target = world.actor("target")
    world.view(target, days_ago(5, 13, 20))
    world.share(target, days_ago(5, 13, 21))
    world.crowd("joined", 4, days_ago(4, 9), shares=True)  # the four who complete the target's release
    query = """query($video: ID!, $from: DateTime!, $to: DateTime!, $g: Granularity!) { video(id: $video) {
        shareTimeline(granularity: $g, from: $from, to: $to) { from to buckets { start count suppressed } } } }"""

    async def timeline(granularity: str, start: Any, end: Any) -> dict[str, Any]:
        body = await owner_asks(gateway, world, query, **{"from": iso(start), "to": iso(end), "g": granularity})
        return {bucket["start"]: bucket["count"] for bucket in body["data"]["video"]["shareTimeline"]["buckets"]}

    with gateway.clock.at(days_ago(1, 12)):
        await gateway.play(world.take())
        # Ranges that end one minute before and one minute after the share, at both granularities.
        for granularity in ("HOUR", "DAY"):
            short = await timeline(granularity, days_ago(9), days_ago(5, 13, 20, 30))
            long = await timeline(granularity, days_ago(9), days_ago(5, 13, 22))
            assert short == long, granularity
        # Day ranges [d-1, d+1) minus [d-1, d): the day of the share, which brought no release.
        wide = await timeline("DAY", days_ago(6), days_ago(4))
        narrow = await timeline("DAY", days_ago(6), days_ago(5))
        assert {start: count for start, count in wide.items() if start not in narrow} == {days_ago(5).isoformat(): 0}
        # The share shows in the day of the release that brought it, as one of five people.
        wider = await timeline("DAY", days_ago(6), days_ago(3))
        assert {start: count for start, count in wider.items() if start not in wide} == {days_ago(4).isoformat(): 5}
        # Shifting the start by minutes changes no bucket either: buckets start where they start.
        assert await timeline("DAY", days_ago(6) + timedelta(minutes=1), days_ago(4)) == wide


async def test_one_follow_does_not_make_a_user_a_creator(gateway: Gateway) -> None:
    """Were a user without videos found once followed, `creator(id)` would say someone follows them."""
    world = World("followed")
    follower = world.actor("follower")
    world.events.append(
        {"event_id": f"follow-{world.creator}", "type": "follow", "occurred_at": iso(days_ago(3, 9)),
         "creator_id": world.creator, "actor_id": follower}
    )
    await gateway.play(world.take())
    response = await gateway.graphql('query($c: ID!) { creator(id: $c) { id } }', {"c": world.creator})
    assert response.json()["data"] == {"creator": None}
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_one_view_does_not_make_an_unpublished_video_or_its_creator_found(gateway: Gateway) -> None:
    """Ingest records a video the first time any event names it. Were an unpublished video found
    (or its creator, or counted in their totals) after one view, that would say someone watched it,
    before any release: twin worlds, viewed once and not at all, answer alike."""
    viewed, unseen = World("unpublished-viewed"), World("unpublished-unseen")
    viewed.view(viewed.actor("viewer"), days_ago(2, 9))
    await gateway.play(viewed.take())
    # One root field a query: two would fail in whichever order they happen to resolve.
    questions = [('query($v: ID!) { video(id: $v) { id publishedAt } }', "v"), ('query($c: ID!) { creator(id: $c) { totals { videos } } }', "c")]

    for query, name in questions:
        answers = []
        for world in (viewed, unseen):
            response = await gateway.graphql(query, {name: world.video() if name == "v" else world.creator})
            answers.append((world, response.json()))
        assert same_answers(answers), differences(*answers)
        assert list(answers[0][1]["data"].values()) == [None]
