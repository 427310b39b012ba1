"""The sharers who chose to be shown: what their list tells a creator about everyone else.

Here compliance has switched Video.consentedSharers on for users (owner-only), otherwise under the
shipped policy. A sharer who consents to be shown to a creator is listed to that creator; nobody
else is, and consent changes no other answer. So the list says nothing about a sharer who did not
consent: twin worlds that differ only in whether such a person shared give the same list, and twin
worlds that differ only in whether a sharer consented give the same answers everywhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from gateway.auth import Principal, PrincipalKind
from tests.attacks.world import World, ask, battery, days_ago, differences, same_answers

from harness import Gateway, policies_granting, policies_with, running_gateway

QUESTIONS = battery(days_ago(8), days_ago(0))
SHARERS = "query($video: ID!) { video(id: $video) { consentedSharers } }"
SET_VISIBLE = "mutation($creator: ID!) { setVisibleTo(creatorId: $creator, visible: true) { visibleTo { creatorId } } }"
SET_ANONYMOUS = "mutation($on: Boolean!) { setShareSettings(anonymous: $on) { anonymousShares } }"


@pytest.fixture(scope="module")
async def gateway(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    policy_dir = policies_granting(policies_with(tmp_path_factory.mktemp("policies"), {}), "user", "consented_sharers")
    async with running_gateway(database_url, policy_dir=policy_dir) as started:
        yield started


async def consent_to(gateway: Gateway, sharer: str, creator: str) -> None:
    await ask(gateway, SET_VISIBLE, {"creator": creator}, Principal(PrincipalKind.USER, sharer))


def shared_video(name: str) -> World:
    """A video shared by fifteen people over two days."""
    world = World(name)
    world.publish(days_ago(5, 8))
    world.crowd("crowd", 10, days_ago(5, 10), shares=True)
    world.crowd("more", 5, days_ago(4, 10), shares=True, channel="sms")
    return world


async def test_the_list_says_nothing_of_a_sharer_who_did_not_consent(gateway: Gateway) -> None:
    """The consenting sharer is listed alike whether the other person shared or not."""
    answers = []
    for other_shares in (True, False):
        world = shared_video(f"listed-{other_shares}")
        listed, other, elsewhere = world.actor("listed"), world.actor("other"), world.actor("elsewhere")
        world.share(listed, days_ago(5, 10, 30))
        world.share(elsewhere, days_ago(5, 10, 40))
        if other_shares:
            world.share(other, days_ago(5, 10, 50), channel="email")
        await gateway.play(world.take())
        await consent_to(gateway, listed, world.creator)
        await consent_to(gateway, elsewhere, "some-other-creator")  # consented, but to someone else
        body = await ask(gateway, SHARERS, {"video": world.video()}, world.owner)
        assert body["data"]["video"]["consentedSharers"] == [listed]
        answers.append((world, {"sharers": [sharer.replace(listed, "<listed>") for sharer in body["data"]["video"]["consentedSharers"]]}))

    assert same_answers(answers), differences(*answers)


async def test_consent_changes_no_other_answer(gateway: Gateway) -> None:
    """Twin worlds differ only in whether one sharer consented to be shown: every answer but the list
    itself is the same, to the creator and to the public."""
    played = []
    for consents in (True, False):
        world = shared_video(f"consent-{consents}")
        sharer = world.actor("sharer")
        world.share(sharer, days_ago(5, 10, 30), channel="email")
        await gateway.play(world.take())
        if consents:
            await consent_to(gateway, sharer, world.creator)
        variables = {"video": world.video(), "creator": world.creator}
        answers: dict[str, Any] = {
            "owner": await ask(gateway, QUESTIONS, variables, world.owner),
            "public": await ask(gateway, "query($video: ID!) { video(id: $video) { stats { views shares } } }", {"video": world.video()}),
        }
        listed = await ask(gateway, SHARERS, {"video": world.video()}, world.owner)
        assert listed["data"]["video"]["consentedSharers"] == ([sharer] if consents else [])
        played.append((world, answers))

    for name in ("owner", "public"):
        pair = [(world, answers[name]) for world, answers in played]
        assert same_answers(pair), (name, differences(*pair))


async def test_a_backfill_does_not_uncover_a_share_made_anonymously(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """The red team's F2. A sharer who may be shown to the creator shares anonymously, stamped two
    hours ahead, then turns anonymous sharing off; a backfill of one old share touches the video (no
    release yet), and its live events arrive again. Twin worlds, the setting turned off or left on:
    the creator is told the same, and the share stays anonymous in both (as it was decided when it
    arrived)."""
    played = []
    now = days_ago(1, 12)
    for turns_off in (True, False):
        world = World(f"rebuilt-{turns_off}")
        sharer = Principal(PrincipalKind.USER, world.actor("sharer"))
        world.publish(days_ago(2, 8))
        assert sharer.id is not None
        with gateway.clock.at(now - timedelta(hours=1)):
            await consent_to(gateway, sharer.id, world.creator)
            await ask(gateway, SET_ANONYMOUS, {"on": True}, sharer)
        world.share(sharer.id, now + timedelta(hours=2), channel="sms")
        with gateway.clock.at(now):
            await gateway.ingest(world.take())
        if turns_off:
            with gateway.clock.at(now + timedelta(minutes=30)):
                await ask(gateway, SET_ANONYMOUS, {"on": False}, sharer)
        world.share(world.actor("long-ago"), days_ago(4, 10), channel="email")
        with gateway.clock.at(now + timedelta(hours=1)):
            await gateway.backfill(world.take())
            listed = await ask(gateway, SHARERS, {"video": world.video()}, world.owner)
            answers = await ask(gateway, QUESTIONS, {"video": world.video(), "creator": world.creator}, world.owner)
        assert listed["data"]["video"]["consentedSharers"] == [], turns_off
        ledger = await admin.fetch("SELECT channel::text FROM video_people WHERE video_id = $1 AND actor_id = $2", world.video(), sharer.id)
        assert [row["channel"] for row in ledger] == [None], turns_off
        played.append((world, answers))

    assert same_answers(played), differences(*played)
