"""`Creator.audienceActivity(timeZone:)` given names that are not time zones.

Every bad name must be refused as the client's mistake (BAD_USER_INPUT), never reported as an outage.
zoneinfo raises OSError, not ZoneInfoNotFoundError or ValueError, for a name that is a directory of
the tz database ("Europe", "America/Argentina") or longer than a file name may be ("a" * 300);
gateway.graphql.audience.week_hour_shift catches only the latter two, and the GraphQL boundary
(gateway.graphql.errors) takes any OSError for the store failing: the client is told
STORE_UNAVAILABLE, "try again shortly", for a typo. Found over HTTP against `gateway serve`
(red team, issue 15). Fixed: a name is looked up only if it is one of zoneinfo's zones, and the
refusal quotes at most its first 40 characters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.attacks.world import World

from harness import Gateway

NOW = datetime(2031, 4, 8, 12, 30, tzinfo=UTC)
QUESTION = "query($creator: ID!, $zone: String!) { creator(id: $creator) { audienceActivity(timeZone: $zone) { timeZone } } }"


@pytest.mark.parametrize("zone", ["Europe", "America/Argentina", "a" * 300, "Europe/" + "x" * 300, "é" * 200])
async def test_a_name_that_is_no_time_zone_is_bad_user_input(gateway: Gateway, zone: str) -> None:
    world = World("bad-zone")
    world.publish(NOW - timedelta(days=3))
    with gateway.clock.at(NOW):
        await gateway.play(world.take())
        response = await gateway.graphql(QUESTION, {"creator": world.creator, "zone": zone}, principal=world.owner)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"creator": {"audienceActivity": None}}
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
    assert len(body["errors"][0]["message"]) < 200, "the refusal does not repeat a long name back"
