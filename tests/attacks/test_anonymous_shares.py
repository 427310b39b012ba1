"""Anonymous shares and the setting that makes them, as a curious creator sees them.

A sharer may turn anonymous sharing on: the shares they make while it is on count in the video's
total and, in its channel breakdown, in the cell `undisclosed` rather than their channel's. These
must hold for everyone who asks:

* Turning it on and off changes no released number: a sharer who toggles it between their shares
  leaves every answer as it would have been had they never touched it. (A change moves no share
  made before it, and takes none made after it is undone.)
* An anonymous share is in the totals and in no channel's cell: every cell the history stores is
  as if the share had not been made, but for `undisclosed`. Whether the platform's event said
  `anonymous` or the sharer's setting made it so, the answers are the same.
* What the owner sees of an anonymous share is what they would see of a share on a channel: the
  channels served never pin down how many shared anonymously while fewer than k did (the red
  team's F1).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import asyncpg

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.privacy.metrics import CHANNELS
from gateway.privacy.noise import noisy_count
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
    by the platform, not made at all, or made plainly. Anonymous, it is in the total and the
    `undisclosed` cell, which holds fewer than k people and is served as the empty one is."""
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
        undisclosed = [(1, "undisclosed", 1, 1)]  # the one release's cell: one share, one person
        assert await stored_cells(admin, played[how][0]) == sorted(await stored_cells(admin, played["absent"][0]) + undisclosed), how
    # The totals the public and apps read count the share, however it was made.
    for name in ("public", "app"):
        assert same_answers([(played[how][0], played[how][1][name]) for how in ("setting", "flagged", "plain")]), name
    # The plain share is counted in its channel: the history stores the email cell in that world only.
    assert [cell[1] for cell in await stored_cells(admin, played["plain"][0])] == ["email", "sms", "whatsapp"]


def released_together(name: str, per_channel: dict[str, int], anonymous: int) -> World:
    """A video whose sharers all arrive in one hour (one release): `per_channel[c]` people share on
    channel c, `anonymous` more share with the event's flag; one person, `the-one`, is left to the test."""
    world = World(name)
    world.publish(days_ago(3, 8))
    moment = days_ago(3, 10)
    for channel, people in per_channel.items():
        for index in range(people):
            world.share(world.actor(f"{channel}-{index}"), moment, channel=channel)
    for index in range(anonymous):
        world.share(world.actor(f"anonymous-{index}"), moment, channel="sms", anonymous=True)
    return world


async def choices(gateway: Gateway, per_channel: dict[str, int], anonymous: int, name: str) -> dict[str | None, tuple[World, dict[str, Any]]]:
    """The owner's answers in twin worlds that differ only in how `the-one` shared: anonymously
    (None) or on each channel."""
    played: dict[str | None, tuple[World, dict[str, Any]]] = {}
    for choice in (None, *CHANNELS):
        world = released_together(f"{name}-{choice or 'anonymous'}", per_channel, anonymous)
        world.share(world.actor("the-one"), days_ago(3, 10, 30), channel=choice or "email", anonymous=choice is None or None)
        await gateway.play(world.take())
        body = await ask(gateway, QUESTIONS, variables(world), world.owner)
        played[choice] = (world, body["data"])
    return played


def alike_to_the_owner(played: dict[str | None, tuple[World, dict[str, Any]]]) -> list[str]:
    """The channels whose world the owner cannot tell from the one where `the-one` shared anonymously."""
    return [choice for choice in CHANNELS if same_answers([played[None], played[choice]])]


async def test_the_channels_do_not_tell_how_many_shared_anonymously(gateway: Gateway) -> None:
    """The red team's F1: five sharers in each of the nine channels and one more sharing anonymously,
    released together (46 people). When the anonymous shares were a remainder, always suppressed with
    the smallest channel, the total (46) less the eight channels served (40) less the hidden channel
    (at least k = 5 people, and no more than the smallest served, 5) was exactly 1: the owner learnt
    how many shared anonymously, and in which release. Now the anonymous shares are a cell of their
    own, and a suppressed cell takes the smallest channel with it and the first by key, which nothing
    bounds: the owner's answers are those of a world where that person shared on a channel instead
    (direct_message, the first by key), so they say neither how many nor whether anyone shared
    anonymously."""
    played = await choices(gateway, dict.fromkeys(CHANNELS, 5), 0, "f1")

    assert alike_to_the_owner(played), differences(played[None], played["direct_message"])
    _, answer = played[None]
    assert answer["video"]["stats"]["shares"] == 46
    assert [bucket["count"] for bucket in answer["video"]["sharesByHour"]["buckets"] if bucket["count"]] == [46]


async def test_an_anonymous_share_differs_from_a_channel_only_as_two_channels_do(gateway: Gateway) -> None:
    """Twin worlds: one person, released together with 36 others, shares anonymously, or on one channel
    or another; two others shared anonymously too, so the anonymous cell holds fewer than k people either
    way. Every answer but the channel breakdown is the same in all of them, and the breakdown of the
    anonymous world is the breakdown of a world where the person chose a channel: what the owner sees
    of one anonymous share is what they see of one share on a channel, never that it was anonymous."""
    played = await choices(gateway, {"whatsapp": 14, "sms": 8, "x": 6, "copy_link": 5, "email": 1}, 2, "organic")

    def without_channels(choice: str | None) -> tuple[World, dict[str, Any]]:
        world, answer = played[choice]
        return world, {**answer, "video": {key: value for key, value in answer["video"].items() if key != "shareChannels"}}

    for choice in CHANNELS:
        assert same_answers([without_channels(None), without_channels(choice)]), (choice, differences(without_channels(None), without_channels(choice)))
    assert alike_to_the_owner(played), [differences(played[None], played[choice]) for choice in CHANNELS]
    assert played[None][1]["video"]["stats"]["shares"] == 37


async def test_an_app_is_told_the_undisclosed_cell_as_any_channel_noised(gateway: Gateway) -> None:
    """Once k people (an app's k, 50) shared anonymously, the cell is served to an app as a channel
    is: noised by the one draw of its quantity (the same for every app), never exact."""
    world = released_together("app-noise", {"whatsapp": 60, "copy_link": 55, "email": 52}, 65)
    await gateway.play(world.take())
    query = "query($v: ID!) { video(id: $v) { shareChannels { buckets { key count suppressed } } } }"

    async def cells(principal: Principal) -> tuple[dict[str, int | None], dict[str, Any]]:
        body = await ask(gateway, query, {"v": world.video()}, principal)
        return {cell["key"]: cell["count"] for cell in body["data"]["video"]["shareChannels"]["buckets"]}, body["extensions"]["privacy"]

    owner, _ = await cells(world.owner)
    first, privacy = await cells(app_for(world.creator, "app-undisclosed-1"))
    second, _ = await cells(app_for(world.creator, "app-undisclosed-2"))

    assert owner["undisclosed"] == 65 and owner["whatsapp"] == 60
    assert privacy["noised"] is True and privacy["k"] == 50
    # email (the smallest) and copy_link (the first by key) are the empty channels' complements.
    assert first == second
    assert sorted(key for key, count in first.items() if count is not None) == ["undisclosed", "whatsapp"]
    noise_key, epsilon = gateway.state["noise_key"], Fraction(privacy["epsilonSpent"])
    assert first["undisclosed"] == max(0, noisy_count(noise_key, epsilon, 65, world.video(), "s", "c", "undisclosed"))
    assert first["whatsapp"] == max(0, noisy_count(noise_key, epsilon, 60, world.video(), "s", "c", "whatsapp"))
