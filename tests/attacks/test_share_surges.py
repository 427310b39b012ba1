"""Share surges as twin worlds: did the creator's friend share the video in the hour it surged?

A surge says when shares came faster than usual. Were it read from raw shares, one person's share in
a quiet hour could tip that hour over the factor, or move its rate, and tell the creator that someone
shared just then (and a comment at that minute would say who). It is read from the releases the
creator sees (gateway.privacy.surges), so in twin worlds that differ only in the victim's share,
every answer the creator can get, surges included, is the same until k - 1 others join the victim
in a release; then the release, and the surge it makes, are theirs together.

Times are fixed in 2031, as in test_release_history.py: the clock is the test's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.attacks.world import World, ask, battery, differences, same_answers

from harness import Gateway

K = 5  # the creator's k, as shipped
BASELINE = datetime(2031, 7, 7, 6, tzinfo=UTC)
# Five new sharers every four hours: 1.25 shares an hour, three rates before the surge hour.
BASELINE_HOURS = (0, 4, 8, 12)
SURGE_HOUR = BASELINE + timedelta(hours=13)
# Answers come after the surge hour's bucket has closed an hour ago (the shipped delay).
NOW = SURGE_HOUR + timedelta(hours=3)
SURGES = "query($video: ID!) { video(id: $video) { shareSurges { releasedAt factor sharesPerHour } } }"


def twins(name: str, others: int) -> tuple[World, World]:
    """The same baseline of sharers; in the surge hour `others` people share, and in the first world
    the victim too."""
    worlds = World(f"{name}-victim"), World(f"{name}-without")
    for world in worlds:
        world.publish(BASELINE - timedelta(days=2))
        for hour in BASELINE_HOURS:
            for i in range(K):
                world.share(world.actor(f"baseline{hour}-{i}"), BASELINE + timedelta(hours=hour, minutes=5 * i))
        for i in range(others):
            world.share(world.actor(f"other{i}"), SURGE_HOUR + timedelta(minutes=10 + 5 * i))
    victim_world = worlds[0]
    victim_world.share(victim_world.actor("victim"), SURGE_HOUR + timedelta(minutes=3))
    return worlds


async def told(gateway: Gateway, world: World) -> dict[str, Any]:
    variables = {"video": world.video(), "creator": world.creator}
    everything = await ask(gateway, battery(BASELINE - timedelta(days=3), NOW), variables, world.owner)
    surges = await ask(gateway, SURGES, {"video": world.video()}, world.owner)
    return {"everything": everything, "surges": surges}


async def played(gateway: Gateway, worlds: tuple[World, World]) -> list[dict[str, Any]]:
    with gateway.clock.at(NOW):
        for world in worlds:
            await gateway.play(world.take())
        return [await told(gateway, world) for world in worlds]


@pytest.mark.parametrize("others", [pytest.param(others, id=f"{others}-others") for others in range(K - 1)])
async def test_one_share_in_a_quiet_hour_changes_no_answer(gateway: Gateway, others: int) -> None:
    worlds = twins(f"surge-quiet{others}", others)

    answers = await played(gateway, worlds)

    for asked in ("everything", "surges"):
        pair = [(world, answer[asked]) for world, answer in zip(worlds, answers, strict=True)]
        assert same_answers(pair), (asked, differences(*pair))
    assert answers[0]["surges"] == {"data": {"video": {"shareSurges": []}}, "extensions": answers[0]["surges"]["extensions"]}


async def test_a_surge_is_told_once_k_minus_one_others_share_with_the_victim(gateway: Gateway) -> None:
    worlds = twins("surge-joined", K - 1)

    answers = await played(gateway, worlds)

    # With the victim, five new sharers in one hour: a release, at 5 an hour over a median of 1.25.
    assert answers[0]["surges"]["data"]["video"]["shareSurges"] == [
        {"releasedAt": SURGE_HOUR.isoformat(), "factor": 4.0, "sharesPerHour": 5.0}
    ]
    assert answers[1]["surges"]["data"]["video"]["shareSurges"] == []
