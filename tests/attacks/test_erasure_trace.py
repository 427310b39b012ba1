"""Red team (issue 15): a person erased before their activity was released leaves a mark in the next release.

gateway.store.erasure says that where a person was not yet released, "the next release is then the
one a store that never saw them would make". Their people and events are taken out of the live
cells, but a cell that held others too keeps the `changed_arrival` their arrival gave it, so the
next release stores a row for that cell (apply_arrival copies every cell changed since the last
release) with the same counts as before: a row the twin store without them does not have. Seen
against a real `gateway serve`: the only critic's negative comment, erased before any release,
leaves `release_cells (comments, 's', 'negative', seq 2)` behind. No served answer differs (a
breakdown reads the latest row of each cell, and its values are unchanged), but the release history
keeps the trace that someone's activity in that cell arrived between the two releases and was
erased. The same holds for every dimension (regions, channels, hours of the week).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.auth import Principal, PrincipalKind
from tests.attacks.world import World

from harness import Gateway

DAY0 = datetime(2031, 5, 6, tzinfo=UTC)
NOW = DAY0 + timedelta(hours=12, minutes=30)
COMPLIANCE = Principal(PrincipalKind.COMPLIANCE, "dpo-rt15")
ERASE = "mutation Erase($user: ID!) { eraseUser(userId: $user) { appGrantsRevoked } }"
CELLS = """
SELECT c.dimension::text, c.value, c.seq, c.people, c.events
FROM release_cells c
WHERE c.subject_id = $1 AND c.metric = 'c'
ORDER BY 1, 2, 3
"""


def commented(name: str) -> World:
    """Five warm and five scathing commenters three days ago: one release of comments."""
    world = World(name)
    world.publish(DAY0 - timedelta(days=4))
    start = DAY0 - timedelta(days=3) + timedelta(hours=9)
    for n in range(5):
        world.comment(world.actor(f"fan{n}"), start + timedelta(minutes=n), "Love it, great work!")
        world.comment(world.actor(f"critic{n}"), start + timedelta(minutes=n), "This is awful, I hate it.")
    return world


async def test_an_erased_unreleased_comment_leaves_no_row_in_the_next_release(gateway: Gateway, admin: asyncpg.Connection) -> None:
    worlds = [commented(f"erased-trace-{seen}") for seen in ("erased", "never")]
    victim = worlds[0].actor("victim")
    worlds[0].comment(victim, DAY0 - timedelta(days=2) + timedelta(hours=3), "Worst video ever, I hate it.")
    with gateway.clock.at(NOW):
        for world in worlds:
            await gateway.play(world.take())
        erasure = await gateway.graphql(ERASE, {"user": victim}, principal=COMPLIANCE)
        assert erasure.status_code == 200 and "errors" not in erasure.json(), erasure.text
        for world in worlds:
            for n in range(5):
                world.comment(world.actor(f"asker{n}"), DAY0 - timedelta(days=1) + timedelta(hours=9, minutes=n), "Love it, great work!")
            await gateway.play(world.take())

    histories = [[tuple(row) for row in await admin.fetch(CELLS, world.video())] for world in worlds]
    assert max(row[2] for row in histories[1]) == 2  # both stores made the second release
    assert histories[0] == histories[1]
