"""Anonymous shares and the setting that makes them, as a curious creator sees them.

A sharer may turn anonymous sharing on: the shares they make while it is on count in the video's
total and in no breakdown. Two things must hold for everyone who asks:

* Turning it on and off changes no released number: a sharer who toggles it between their shares
  leaves every answer as it would have been had they never touched it. (A change moves no share
  made before it, and takes none made after it is undone.)
* An anonymous share is in the totals and in no channel: the video's channel breakdown, and every
  cell the history stores, are as if the share had not been made; its total counts it. Whether the
  platform's event said `anonymous` or the sharer's setting made it so, the answers are the same.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from tests.attacks.world import World, app_for, ask, battery, days_ago, differences, release_values, same_answers

from harness import Gateway

QUESTIONS = battery(days_ago(8), days_ago(0))
SET_SHARES = "mutation($on: Boolean!) { setShareSettings(anonymous: $on) { anonymousShares } }"
TOTALS = "query($video: ID!, $creator: ID!) { video(id: $video) { stats { views shares } } creator(id: $creator) { totals { shares } } }"


async def set_anonymous(gateway: Gateway, sharer: str, on: bool) -> None:
    """The sharer turns anonymous sharing on or off, at the gateway's clock's now."""
    body = await ask(gateway, SET_SHARES, {"on": on}, Principal(PrincipalKind.USER, sharer))
    assert body["data"]["setShareSettings"]["anonymousShares"] is on


def variables(world: World) -> dict[str, Any]:
    return {"video": world.video(), "creator": world.creator}


async def answers_of(gateway: Gateway, world: World) -> dict[str, dict[str, Any]]:
    """What the owner, the public and the owner's app are told (the app its exact totals: its
    breakdowns' noise is drawn per video, and each world has its own)."""
    return {
        "owner": await ask(gateway, QUESTIONS, variables(world), world.owner),
        "public": await ask(gateway, TOTALS, variables(world), ANONYMOUS),
        "app": await ask(gateway, TOTALS, variables(world), app_for(world.creator, "app-anonymous-shares")),
    }


async def test_toggling_anonymous_sharing_changes_no_released_number(gateway: Gateway, admin: asyncpg.Connection) -> None:
    played = {}
    for toggles in (True, False):
        world = World(f"toggle-{toggles}")
        sharer = world.actor("toggler")
        world.publish(days_ago(6, 8))
        world.crowd("early", 12, days_ago(6, 10), shares=True, channel="whatsapp")
        world.crowd("mid", 6, days_ago(6, 11), shares=True, channel="copy_link")
        world.share(sharer, days_ago(6, 11, 30), channel="sms")
        if toggles:  # on at 12:00, off at 13:00: no share of theirs in between
            with gateway.clock.at(days_ago(6, 12)):
                await set_anonymous(gateway, sharer, True)
            with gateway.clock.at(days_ago(6, 13)):
                await set_anonymous(gateway, sharer, False)
        world.crowd("late", 8, days_ago(6, 14), shares=True, channel="sms")
        world.share(sharer, days_ago(6, 14, 30), channel="email")
        world.crowd("next-day", 5, days_ago(5, 9), shares=True, channel="x")
        await gateway.play(world.take())
        played[toggles] = (world, await answers_of(gateway, world))

    (toggled, toggled_answers), (untouched, untouched_answers) = played[True], played[False]
    for name in toggled_answers:
        pair = [(toggled, toggled_answers[name]), (untouched, untouched_answers[name])]
        assert same_answers(pair), (name, differences(*pair))
    assert await release_values(admin, toggled.video(), "s") == await release_values(admin, untouched.video(), "s")
    assert await stored_cells(admin, toggled) == await stored_cells(admin, untouched)
    assert untouched_answers["owner"]["data"]["video"]["stats"]["shares"] == 33


async def stored_cells(admin: asyncpg.Connection, world: World) -> list[tuple[Any, ...]]:
    """Every channel cell the history stores for the world's video, release by release."""
    rows = await admin.fetch(
        """SELECT seq, value, events, people FROM release_cells
           WHERE subject_id = $1 AND metric = 's' AND dimension = 'c' ORDER BY seq, value""",
        world.video(),
    )
    return [tuple(row) for row in rows]


async def test_an_anonymous_share_is_in_the_total_and_in_no_channel(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """Four worlds differ in one person's share by email: made with the setting on, flagged anonymous
    by the platform, not made at all, or made plainly."""
    played = {}
    for how in ("setting", "flagged", "absent", "plain"):
        world = World(f"anonymous-{how}")
        sharer = world.actor("quiet")
        world.publish(days_ago(4, 8))
        world.crowd("whatsapp", 10, days_ago(4, 10), shares=True, channel="whatsapp")
        world.crowd("sms", 12, days_ago(4, 10, 5), shares=True, channel="sms")
        if how == "setting":
            with gateway.clock.at(days_ago(4, 9)):
                await set_anonymous(gateway, sharer, True)
        if how != "absent":
            world.share(sharer, days_ago(4, 10, 30), channel="email", anonymous=True if how == "flagged" else None)
        await gateway.play(world.take())
        played[how] = (world, await answers_of(gateway, world))

    def channels(how: str) -> tuple[World, Any]:
        world, answers = played[how]
        return world, answers["owner"]["data"]["video"]["shareChannels"]

    def shares(how: str) -> int:
        total: int = played[how][1]["owner"]["data"]["video"]["stats"]["shares"]
        return total

    assert same_answers([channels("setting"), channels("flagged"), channels("absent")]), differences(channels("setting"), channels("absent"))
    assert shares("setting") == shares("flagged") == shares("absent") + 1 == shares("plain") == 23
    for how in ("setting", "flagged"):
        assert await stored_cells(admin, played[how][0]) == await stored_cells(admin, played["absent"][0]), how
    # The totals the public and apps read count the share, however it was made.
    for name in ("public", "app"):
        assert same_answers([(played[how][0], played[how][1][name]) for how in ("setting", "flagged", "plain")]), name
    # The plain share is counted in its channel: the history stores the email cell in that world only.
    assert [cell[1] for cell in await stored_cells(admin, played["plain"][0])] == ["email", "sms", "whatsapp"]
