"""Sharers' consent through the API: `me { settings }`, the mutations that change it, and
Video.consentedSharers, against the hand-built platform of fixture_platform.py.

A change is the user's own (never an app's, nor anyone else's), is appended to the audit table
(`consent_changes`) with when and by whom, and a change to what is already set records nothing.
Video.consentedSharers is off in the shipped policy; switched on for users (owner-only), it lists
to a video's creator the sharers whose consent toward them stands when the request is made.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from gateway.auth import ANONYMOUS, Principal, PrincipalKind

from answers import answer, refusals
from fixture_platform import ADA, ADA_FIRST, ADA_SECOND, BO, BO_ONLY, EVENTS, SHARER, SHARER_NO_REGION, VIEWER, VIEWER_FR
from harness import Gateway, authorization, policies_granting

ME_SETTINGS = "{ me { settings { anonymousShares visibleTo { creatorId since } } } }"
SET_SHARES = "mutation($on: Boolean!) { setShareSettings(anonymous: $on) { anonymousShares } }"
SET_VISIBLE = "mutation($creator: ID!, $visible: Boolean!) { setVisibleTo(creatorId: $creator, visible: $visible) { visibleTo { creatorId since } } }"
SHARERS = "query($video: ID!, $first: Int! = 50, $after: ID) { video(id: $video) { id consentedSharers(first: $first, after: $after) } }"

_users = itertools.count(1)


def new_user() -> Principal:
    """A user of this module's own, with no consent recorded yet."""
    return Principal(PrincipalKind.USER, f"consenting-user-{next(_users)}")


def user(user_id: str) -> Principal:
    return Principal(PrincipalKind.USER, user_id)


@pytest.fixture(scope="module", autouse=True)
async def platform(gateway: Gateway) -> None:
    assert await gateway.backfill(EVENTS) > 0


async def set_shares(gateway: Gateway, principal: Principal, on: bool) -> bool:
    data = answer(await gateway.graphql(SET_SHARES, {"on": on}, principal=principal))
    anonymous: bool = data["setShareSettings"]["anonymousShares"]
    return anonymous


async def set_visible(gateway: Gateway, principal: Principal, creator: str, visible: bool) -> list[dict[str, str]]:
    data = answer(await gateway.graphql(SET_VISIBLE, {"creator": creator, "visible": visible}, principal=principal))
    visible_to: list[dict[str, str]] = data["setVisibleTo"]["visibleTo"]
    return visible_to


async def audit(admin: asyncpg.Connection, user_id: str) -> list[tuple[Any, ...]]:
    rows = await admin.fetch(
        """SELECT setting::text, creator_id, value, changed_at, changed_by FROM consent_changes
           WHERE user_id = $1 ORDER BY change_id""",
        user_id,
    )
    return [tuple(row) for row in rows]


# --- me { settings } and the mutations ---------------------------------------------------------


async def test_settings_are_off_until_the_user_changes_them(gateway: Gateway) -> None:
    data = answer(await gateway.graphql(ME_SETTINGS, principal=new_user()))

    assert data == {"me": {"settings": {"anonymousShares": False, "visibleTo": []}}}


async def test_set_share_settings_appends_every_change_and_the_latest_stands(gateway: Gateway, admin: asyncpg.Connection) -> None:
    someone = new_user()
    start = gateway.clock.now - timedelta(hours=3)
    for hours, on in enumerate((True, False, True)):
        with gateway.clock.at(start + timedelta(hours=hours)):
            assert await set_shares(gateway, someone, on) is on

    assert answer(await gateway.graphql(ME_SETTINGS, principal=someone))["me"]["settings"]["anonymousShares"] is True
    assert await audit(admin, str(someone.id)) == [
        ("anonymous_shares", None, on, start + timedelta(hours=hours), "user") for hours, on in enumerate((True, False, True))
    ]


async def test_a_change_to_what_is_set_records_nothing(gateway: Gateway, admin: asyncpg.Connection) -> None:
    someone = new_user()

    assert await set_shares(gateway, someone, False) is False  # off already: no change
    assert await set_shares(gateway, someone, True) is True
    assert await set_shares(gateway, someone, True) is True
    assert await set_visible(gateway, someone, BO, False) == []

    assert [row[:3] for row in await audit(admin, str(someone.id))] == [("anonymous_shares", None, True)]


async def test_set_visible_to_lists_creators_newest_first_and_a_withdrawal_leaves_the_others(gateway: Gateway, admin: asyncpg.Connection) -> None:
    someone = new_user()
    first, second = gateway.clock.now - timedelta(minutes=30), gateway.clock.now - timedelta(minutes=20)
    with gateway.clock.at(first):
        await set_visible(gateway, someone, ADA, True)
    with gateway.clock.at(second):
        listed = await set_visible(gateway, someone, BO, True)
    assert listed == [{"creatorId": BO, "since": second.isoformat()}, {"creatorId": ADA, "since": first.isoformat()}]

    assert await set_visible(gateway, someone, ADA, False) == [{"creatorId": BO, "since": second.isoformat()}]
    assert [row[:3] for row in await audit(admin, str(someone.id))] == [
        ("visible_to", ADA, True), ("visible_to", BO, True), ("visible_to", ADA, False)
    ]


async def test_a_users_changes_are_stamped_in_the_order_they_were_made(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """A replica whose clock is behind still records a change after the one before it: the latest
    stamp is the setting in force, and "as of a moment" reads the stamps."""
    someone = new_user()
    later = gateway.clock.now
    with gateway.clock.at(later):
        await set_shares(gateway, someone, True)
    with gateway.clock.at(later - timedelta(minutes=5)):
        assert await set_shares(gateway, someone, False) is False

    stamps = [row[3] for row in await audit(admin, str(someone.id))]
    assert stamps == [later, later + timedelta(microseconds=1)]
    assert answer(await gateway.graphql(ME_SETTINGS, principal=someone))["me"]["settings"]["anonymousShares"] is False


async def waiting_on_an_advisory_lock(admin: asyncpg.Connection) -> None:
    """Returns once another session of this database waits for an advisory lock."""
    async with asyncio.timeout(30):
        while not await admin.fetchval(
            """SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                              WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()
                                AND l.pid <> pg_backend_pid())"""
        ):
            await asyncio.sleep(0.01)


async def test_a_change_is_stamped_once_the_users_lock_is_held(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """The red team's F3: the stamp was read before the change took the user's lock (held here as
    another change of theirs would hold it, on another replica), so a change that waited was stamped
    before it could be made, and committed later. It is stamped in its own transaction, once the
    lock is held."""
    someone = new_user()
    began = gateway.clock.now
    with gateway.clock.at(began):
        async with admin.transaction():
            await admin.execute("SELECT pg_advisory_xact_lock(hashtextextended('consent of ' || $1, 0))", someone.id)
            change = asyncio.create_task(gateway.graphql(SET_SHARES, {"on": True}, principal=someone))
            await waiting_on_an_advisory_lock(admin)
            gateway.clock.now = began + timedelta(minutes=1)  # the lock is let go of a minute later
        assert answer(await change) == {"setShareSettings": {"anonymousShares": True}}

    assert [row[3] for row in await audit(admin, str(someone.id))] == [began + timedelta(minutes=1)]


@pytest.mark.parametrize(
    "creator",
    [
        pytest.param("has space", id="space"),
        pytest.param("", id="empty"),
        pytest.param("u" * 200, id="too-long"),
        pytest.param("self", id="oneself"),
    ],
)
async def test_set_visible_to_refuses_what_names_no_other_user(gateway: Gateway, admin: asyncpg.Connection, creator: str) -> None:
    someone = new_user()
    creator_id = str(someone.id) if creator == "self" else creator

    response = await gateway.graphql(SET_VISIBLE, {"creator": creator_id, "visible": True}, principal=someone)

    assert refusals(response) == [("BAD_USER_INPUT", None, ["setVisibleTo"])]
    assert response.json()["data"] is None
    assert await audit(admin, str(someone.id)) == []


CONSENT_FIELDS = [
    ("Mutation.setShareSettings", "setShareSettings"),
    ("ConsentSettings.anonymousShares", "setShareSettings.anonymousShares"),
]


@pytest.mark.parametrize(
    "principal",
    [
        pytest.param(ANONYMOUS, id="anonymous"),
        pytest.param(Principal(PrincipalKind.APP, "app-user", frozenset({"stats", "insights", "activity"}), app_id="app-consent"), id="app"),
        pytest.param(Principal(PrincipalKind.COMPLIANCE, "auditor"), id="compliance"),
        pytest.param(Principal(PrincipalKind.SERVICE, "ingest-bot"), id="service"),
    ],
)
async def test_consent_is_changed_by_users_only(gateway: Gateway, admin: asyncpg.Connection, principal: Principal) -> None:
    response = await gateway.graphql(SET_SHARES, {"on": True}, principal=principal)

    assert response.json()["data"] is None
    assert refusals(response) == [("FORBIDDEN", coordinate, path.split(".")) for coordinate, path in CONSENT_FIELDS]
    assert await admin.fetchval("SELECT count(*) FROM consent_changes WHERE user_id = 'app-user'") == 0


async def test_an_app_may_not_change_consent_even_where_a_policy_lets_it_ask(gateway: Gateway, admin: asyncpg.Connection) -> None:
    policy_dir = gateway.state["engine"].policy_dir
    shipped = (policy_dir / "data.json").read_text()
    data = json.loads(shipped)
    data["access"]["principals"]["app"]["scopes"]["activity"].append("own_settings")
    (policy_dir / "data.json").write_text(json.dumps(data))
    await gateway.policy_in_force()
    try:
        app = Principal(PrincipalKind.APP, "app-acting-user", frozenset({"activity"}), app_id="app-consent")
        response = await gateway.graphql(SET_SHARES, {"on": True}, principal=app)
    finally:
        (policy_dir / "data.json").write_text(shipped)
        await gateway.policy_in_force()

    assert refusals(response) == [("FORBIDDEN", "Mutation.setShareSettings", ["setShareSettings"])]
    assert response.json()["errors"][0]["message"] == "consent is changed by the user themselves"
    assert await audit(admin, "app-acting-user") == []


async def test_a_mutation_is_not_run_by_get(gateway: Gateway, admin: asyncpg.Connection) -> None:
    someone = new_user()

    response = await gateway.http.get(
        "/graphql", params={"query": "mutation { setShareSettings(anonymous: true) { anonymousShares } }"},
        headers=authorization(someone),
    )

    assert response.status_code == 405
    assert await audit(admin, str(someone.id)) == []


async def test_a_mutation_and_the_settings_it_changed_are_never_answered_from_kept_answers(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """On, off and on again within one minute (the clock stands still): each runs, and each read
    after it sees it."""
    someone = new_user()
    for on in (True, False, True):
        assert await set_shares(gateway, someone, on) is on
        assert answer(await gateway.graphql(ME_SETTINGS, principal=someone))["me"]["settings"]["anonymousShares"] is on

    assert [row[2] for row in await audit(admin, str(someone.id))] == [True, False, True]


async def test_each_user_reads_their_own_settings_only(gateway: Gateway) -> None:
    one, other = new_user(), new_user()
    await set_shares(gateway, one, True)
    await set_visible(gateway, one, ADA, True)

    assert answer(await gateway.graphql(ME_SETTINGS, principal=other)) == {"me": {"settings": {"anonymousShares": False, "visibleTo": []}}}
    assert answer(await gateway.graphql(ME_SETTINGS, principal=one))["me"]["settings"]["anonymousShares"] is True


# --- Video.consentedSharers -----------------------------------------------------------------------


async def test_consented_sharers_are_refused_under_the_shipped_policy(gateway: Gateway) -> None:
    await set_visible(gateway, user(SHARER), ADA, True)

    response = await gateway.graphql(SHARERS, {"video": ADA_FIRST}, principal=user(ADA))

    assert response.json()["data"] is None
    assert refusals(response) == [("FORBIDDEN", "Video.consentedSharers", ["video", "consentedSharers"])]
    assert SHARER not in response.text
    await set_visible(gateway, user(SHARER), ADA, False)


@pytest.fixture
async def sharers_listed(gateway: Gateway) -> AsyncIterator[None]:
    """Compliance grants users Video.consentedSharers (owner-only, as the shipped data says of its
    group) while the test runs; the shipped grants are in force again after it."""
    policy_dir = gateway.state["engine"].policy_dir
    shipped = (policy_dir / "data.json").read_text()
    policies_granting(policy_dir, "user", "consented_sharers")
    await gateway.policy_in_force()
    try:
        yield
    finally:
        (policy_dir / "data.json").write_text(shipped)
        await gateway.policy_in_force()
        for sharer in (SHARER, SHARER_NO_REGION, VIEWER, VIEWER_FR):
            for creator in (ADA, BO):
                await set_visible(gateway, user(sharer), creator, False)


async def sharers_of(gateway: Gateway, video: str, principal: Principal, **page: Any) -> list[str]:
    data = answer(await gateway.graphql(SHARERS, {"video": video, **page}, principal=principal))
    sharers: list[str] = data["video"]["consentedSharers"]
    return sharers


@pytest.mark.usefixtures("sharers_listed")
async def test_the_creator_sees_exactly_the_sharers_who_consented_to_them(gateway: Gateway) -> None:
    await set_visible(gateway, user(SHARER), ADA, True)  # shared ADA_FIRST and ADA_SECOND
    await set_visible(gateway, user(VIEWER), ADA, True)  # consented, but shared none of ADA's videos
    await set_visible(gateway, user(SHARER_NO_REGION), BO, True)  # shared ADA_FIRST, consented to BO only
    # VIEWER_FR shared ADA_FIRST and consented to nobody.

    assert await sharers_of(gateway, ADA_FIRST, user(ADA)) == [SHARER]
    assert await sharers_of(gateway, ADA_SECOND, user(ADA)) == [SHARER]
    assert await sharers_of(gateway, BO_ONLY, user(BO)) == []  # SHARER shared it, but consented to ADA only


@pytest.mark.usefixtures("sharers_listed")
async def test_a_withdrawal_applies_from_the_next_request(gateway: Gateway) -> None:
    """Within one minute (the clock stands still): nothing kept answers the next request."""
    await set_visible(gateway, user(VIEWER_FR), ADA, True)
    assert await sharers_of(gateway, ADA_FIRST, user(ADA)) == [VIEWER_FR]

    await set_visible(gateway, user(VIEWER_FR), ADA, False)

    assert await sharers_of(gateway, ADA_FIRST, user(ADA)) == []


@pytest.mark.usefixtures("sharers_listed")
async def test_consented_sharers_are_refused_to_anyone_but_the_creator(gateway: Gateway) -> None:
    await set_visible(gateway, user(SHARER), ADA, True)

    response = await gateway.graphql(SHARERS, {"video": ADA_FIRST}, principal=user(BO))

    assert refusals(response) == [("FORBIDDEN", "Video.consentedSharers", ["video", "consentedSharers"])]
    assert response.json()["data"] == {"video": {"id": ADA_FIRST, "consentedSharers": None}}
    assert SHARER not in response.text


@pytest.mark.usefixtures("sharers_listed")
async def test_consented_sharers_come_in_pages_of_ids_in_order(gateway: Gateway) -> None:
    for sharer in (VIEWER_FR, SHARER, SHARER_NO_REGION):
        await set_visible(gateway, user(sharer), ADA, True)
    everyone = sorted((VIEWER_FR, SHARER, SHARER_NO_REGION))

    first_page = await sharers_of(gateway, ADA_FIRST, user(ADA), first=2)
    rest = await sharers_of(gateway, ADA_FIRST, user(ADA), first=2, after=first_page[-1])

    assert (first_page, rest) == (everyone[:2], everyone[2:])


@pytest.mark.parametrize(
    "page",
    [pytest.param({"first": 0}, id="first-0"), pytest.param({"first": 101}, id="first-101"), pytest.param({"after": "not an id"}, id="after")],
)
@pytest.mark.usefixtures("sharers_listed")
async def test_consented_sharers_refuse_a_page_out_of_bounds(gateway: Gateway, page: dict[str, Any]) -> None:
    response = await gateway.graphql(SHARERS, {"video": ADA_FIRST, **page}, principal=user(ADA))

    assert refusals(response) == [("BAD_USER_INPUT", None, ["video", "consentedSharers"])]


@pytest.mark.usefixtures("sharers_listed")
async def test_a_sharer_is_listed_for_shares_that_were_not_anonymous_only(gateway: Gateway) -> None:
    """Consent to be shown does not undo a share made anonymously (its event said so, or the
    sharer's setting was on): only a share counted in a channel lists its sharer."""
    flagged, by_setting, plain = new_user(), new_user(), new_user()
    await set_shares(gateway, by_setting, True)
    moment = gateway.clock.now.isoformat()
    await gateway.ingest([
        {"event_id": f"consent-share-{person.id}", "type": "share", "occurred_at": moment, "video_id": ADA_SECOND,
         "creator_id": ADA, "actor_id": person.id, "channel": "whatsapp", "anonymous": person is flagged}
        for person in (flagged, by_setting, plain)
    ])
    for person in (flagged, by_setting, plain):
        await set_visible(gateway, person, ADA, True)

    assert await sharers_of(gateway, ADA_SECOND, user(ADA)) == [plain.id]


@pytest.mark.usefixtures("sharers_listed")
async def test_an_app_is_never_told_consented_sharers_even_where_a_policy_grants_it(gateway: Gateway) -> None:
    """The red team's F4: a policy that granted the group to an app scope let an app acting for the
    creator read who shared their videos (its principal passes the owner-only rule). Consent is to
    be shown to the creator, not to an app: the field refuses every principal but a user, whatever
    the policy says, as the mutations do."""
    policy_dir = gateway.state["engine"].policy_dir
    data = json.loads((policy_dir / "data.json").read_text())
    data["access"]["principals"]["app"]["scopes"]["insights"].append("consented_sharers")
    (policy_dir / "data.json").write_text(json.dumps(data))
    await gateway.policy_in_force()  # the fixture puts the shipped policy back in force
    await set_visible(gateway, user(SHARER), ADA, True)
    app = Principal(PrincipalKind.APP, ADA, frozenset({"insights"}), app_id="app-consented-sharers")

    response = await gateway.graphql(SHARERS, {"video": ADA_FIRST}, principal=app)

    assert refusals(response) == [("FORBIDDEN", "Video.consentedSharers", ["video", "consentedSharers"])]
    assert response.json()["data"] == {"video": {"id": ADA_FIRST, "consentedSharers": None}}
    assert SHARER not in response.text
    assert await sharers_of(gateway, ADA_FIRST, user(ADA)) == [SHARER]  # the creator still is
