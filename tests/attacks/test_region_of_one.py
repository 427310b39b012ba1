"""Region of one: a single viewer watches from a rare region (Iceland), among many from Germany,
France and the United States.

The audience is read at a release of the video's views (made once k new viewers have arrived).
Regions below k are not listed; they are pooled into one suppressed OTHER cell that is always
there, and the smallest listed region (France) and the first by key (Germany) always join it, so
the listing is the same whether the rare viewer exists and wherever they watched from. At best the
creator learns the regions with k viewers or more.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.attacks.world import World, days_ago, differences, same_answers

from harness import Gateway

AUDIENCE = """query($video: ID!) { video(id: $video) {
    regions: audience(dimension: REGION) { buckets { key count suppressed } }
    ageBands: audience(dimension: AGE_BAND) { buckets { key count suppressed } } } }"""


async def play(gateway: Gateway, rare_region: str | None) -> tuple[World, dict[str, Any]]:
    world = World(f"region-{rare_region}")
    world.publish(days_ago(6, 8))
    world.crowd("de", 30, days_ago(5, 10), region="DE", age_band="25-34", spacing=timedelta(seconds=30))
    world.crowd("fr", 12, days_ago(5, 12), region="FR", age_band="18-24", spacing=timedelta(seconds=30))
    world.crowd("us", 20, days_ago(5, 13), region="US", age_band="18-24", spacing=timedelta(seconds=30))
    if rare_region is not None:
        world.view(world.actor("rare"), days_ago(5, 14), region=rare_region)
    world.crowd("more", 5, days_ago(4, 9), region="US", age_band="25-34")  # a step of k after the rare viewer
    await gateway.play(world.take())
    response = await gateway.graphql(AUDIENCE, {"video": world.video()}, principal=world.owner)
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return world, body


async def test_the_rare_viewer_shows_neither_presence_nor_region(gateway: Gateway) -> None:
    iceland, norway, nobody = await play(gateway, "IS"), await play(gateway, "NO"), await play(gateway, None)
    assert same_answers([iceland, norway, nobody]), differences(iceland, nobody)
    regions = iceland[1]["data"]["video"]["regions"]["buckets"]
    assert regions == [{"key": "US", "count": 25, "suppressed": False}, {"key": "OTHER", "count": None, "suppressed": True}]


async def test_the_audience_follows_new_steps_of_viewers(gateway: Gateway) -> None:
    """Five more viewers arriving after the first answer make a release: the audience moves on to it
    once the hour of its arrival has closed and an hour has passed, not before."""
    world, body = await play(gateway, None)
    assert body["data"]["video"]["regions"]["buckets"][0] == {"key": "US", "count": 25, "suppressed": False}
    arrival = gateway.clock.now + timedelta(hours=1)
    world.crowd("later", 5, arrival - timedelta(minutes=5), region="US", age_band="25-34")  # a release of k more viewers
    with gateway.clock.at(arrival):
        await gateway.ingest(world.take())
    for hours, expected in ((0, 25), (1, 25), (2, 30)):
        with gateway.clock.at(arrival + timedelta(hours=hours)):
            response = await gateway.graphql(AUDIENCE, {"video": world.video()}, principal=world.owner)
        assert response.json()["data"]["video"]["regions"]["buckets"][0] == {"key": "US", "count": expected, "suppressed": False}, hours
