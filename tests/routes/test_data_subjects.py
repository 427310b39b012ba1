"""A data subject's erasure over HTTP (`Mutation.eraseUser`, compliance only, as gateway_eraser), and
retention in `gateway serve`: what was released is served as before either way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.store.apps import authorize_app, register_app
from gateway.store.history import ARRIVAL_LOCK

from harness import FIELD_TEST_TERMS, Gateway, authorization, policies_with, running_gateway, statements_on

COMPLIANCE = Principal(PrincipalKind.COMPLIANCE, "dpo-1")
ERASE = """mutation Erase($user: ID!, $reason: String) {
  eraseUser(userId: $user, reason: $reason) { erasureId erasedAt erasedBy repeated eventsErased appGrantsRevoked }
}"""
MY_SHARES = "{ me { shares { videoId channel } } }"
VIEWS = '{{ video(id: "{video}") {{ stats {{ views shares }} }} }}'


@pytest.fixture(scope="module")
async def gateway(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    # Every arrival makes a release (k 0, no delay): what was released is what is served at once.
    policy_dir = policies_with(tmp_path_factory.mktemp("policies"), FIELD_TEST_TERMS)
    async with running_gateway(database_url, policy_dir=policy_dir, app_grant_ttl=0, retention_days=30) as running:
        yield running


def happened(gateway: Gateway, days_ago: float = 0) -> str:
    return (gateway.clock() - timedelta(days=days_ago, minutes=5)).isoformat()


def published(gateway: Gateway, video: str, creator: str, days_ago: float = 0) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "type": "video_published", "occurred_at": happened(gateway, days_ago),
            "video_id": video, "creator_id": creator, "actor_id": creator}


def shared(gateway: Gateway, video: str, creator: str, actor: str, days_ago: float = 0) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "type": "share", "occurred_at": happened(gateway, days_ago), "video_id": video,
            "creator_id": creator, "actor_id": actor, "channel": "whatsapp"}


def viewed(gateway: Gateway, video: str, creator: str, actor: str, days_ago: float = 0) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "type": "view", "occurred_at": happened(gateway, days_ago), "video_id": video,
            "creator_id": creator, "actor_id": actor, "watch_ms": 5000}


async def erase(gateway: Gateway, user: str, *, principal: Principal = COMPLIANCE, reason: str | None = None) -> httpx.Response:
    return await gateway.graphql(ERASE, {"user": user, "reason": reason}, principal=principal)


async def served_views(gateway: Gateway, video: str) -> dict[str, Any]:
    response = await gateway.graphql(VIEWS.format(video=video))
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    stats: dict[str, Any] = response.json()["data"]["video"]["stats"]
    return stats


async def test_compliance_erases_a_person_and_what_was_released_is_served_as_before(gateway: Gateway, admin: asyncpg.Connection) -> None:
    # Two days ago, as it happened: released then, and served to the public since (its cutoff is a day boundary).
    await gateway.play([
        published(gateway, "vid-e1", "creator-e1", days_ago=2),
        shared(gateway, "vid-e1", "creator-e1", "person-e1", days_ago=2),
        viewed(gateway, "vid-e1", "creator-e1", "person-e1", days_ago=2),
        viewed(gateway, "vid-e1", "creator-e1", "someone-e1", days_ago=2),
    ])
    before = await served_views(gateway, "vid-e1")
    person = Principal(PrincipalKind.USER, "person-e1")
    assert (await gateway.graphql(MY_SHARES, principal=person)).json()["data"]["me"]["shares"] == [{"videoId": "vid-e1", "channel": "whatsapp"}]

    async with statements_on(gateway.store.eraser) as statements:
        response = await erase(gateway, "person-e1", reason="asked by e-mail")

    assert response.status_code == 200, response.text
    receipt = response.json()["data"]["eraseUser"]
    assert receipt == {**receipt, "erasedBy": "compliance:dpo-1", "repeated": False, "eventsErased": 2, "appGrantsRevoked": 0}
    assert any("DELETE FROM events" in statement for statement in statements), "erasure runs as gateway_eraser"
    assert (await gateway.graphql(MY_SHARES, principal=person)).json()["data"]["me"]["shares"] == []
    assert await served_views(gateway, "vid-e1") == before == {"views": 2, "shares": 1}
    assert await admin.fetchval("SELECT erased_by FROM erasures WHERE erasure_id = $1", uuid.UUID(receipt["erasureId"])) == "compliance:dpo-1"


async def test_erasing_again_answers_with_the_first_receipt(gateway: Gateway) -> None:
    await gateway.ingest([viewed(gateway, "vid-e2", "creator-e2", "person-e2")])
    first = (await erase(gateway, "person-e2")).json()["data"]["eraseUser"]

    again = (await erase(gateway, "person-e2")).json()["data"]["eraseUser"]

    assert again == {**first, "repeated": True, "eventsErased": 0}


async def test_an_erased_persons_app_tokens_stop_working(gateway: Gateway, admin: asyncpg.Connection) -> None:
    app_id = await register_app(admin, "Acme")
    await authorize_app(admin, app_id, "person-e3", ["activity"])
    app = Principal(PrincipalKind.APP, "person-e3", frozenset({"activity"}), app_id=app_id)
    assert (await gateway.graphql("{ me { id } }", principal=app)).status_code == 200

    receipt = (await erase(gateway, "person-e3")).json()["data"]["eraseUser"]

    assert receipt["appGrantsRevoked"] == 1
    assert (await gateway.graphql("{ me { id } }", principal=app)).status_code == 401


@pytest.mark.parametrize(
    "principal",
    [
        pytest.param(ANONYMOUS, id="anonymous"),
        pytest.param(Principal(PrincipalKind.USER, "person-e4"), id="the-person-themself"),
        pytest.param(Principal(PrincipalKind.APP, "person-e4", frozenset({"stats", "insights", "activity"})), id="app"),
        pytest.param(Principal(PrincipalKind.SERVICE, "ingest-bot"), id="service"),
    ],
)
async def test_only_compliance_may_erase(gateway: Gateway, admin: asyncpg.Connection, principal: Principal) -> None:
    await gateway.ingest([viewed(gateway, "vid-e4", "creator-e4", "person-e4")])

    response = await erase(gateway, "person-e4", principal=principal)

    errors = response.json()["errors"]
    assert response.json()["data"] is None
    assert [error["extensions"]["code"] for error in errors] == ["FORBIDDEN"] * len(errors)
    assert "Mutation.eraseUser" in {error["extensions"].get("field") for error in errors}
    assert await admin.fetchval("SELECT count(*) FROM events WHERE actor_id = 'person-e4'") >= 1


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param({"user": "not an id!"}, "is not a user id", id="not-an-id"),
        pytest.param({"user": "person-e5", "reason": "person-e5 asked by e-mail"}, "must not name the person", id="reason-names-them"),
        pytest.param({"user": "person-e5", "reason": "x" * 501}, "at most 500 characters", id="reason-too-long"),
        pytest.param({"user": "person-e5", "reason": "asked by PERSON-E5"}, "must not name the person", id="reason-names-them-in-capitals"),
        pytest.param({"user": "person-e5", "reason": "abc\u0000def"}, "no control or invisible", id="reason-with-a-nul"),
        # A red team named the person past the check with an invisible space, or in full-width letters.
        pytest.param({"user": "person-e5", "reason": "asked by person-\u200be5"}, "no control or invisible", id="reason-with-a-zero-width-space"),
        pytest.param({"user": "person-e5", "reason": "asked by ｐｅｒｓｏｎ－ｅ５"}, "must not name the person", id="reason-names-them-in-full-width"),
        pytest.param({"user": "x" * 10_000}, "is not a user id", id="huge-id-not-echoed"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_erased(gateway: Gateway, admin: asyncpg.Connection, variables: dict[str, Any], message: str) -> None:
    await gateway.ingest([viewed(gateway, "vid-e5", "creator-e5", "person-e5")])
    records = await admin.fetchval("SELECT count(*) FROM erasures")

    response = await gateway.graphql(ERASE, variables, principal=COMPLIANCE)

    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and message in error["message"]
    assert len(error["message"]) < 300, "what was sent is not echoed at length"
    assert await admin.fetchval("SELECT count(*) FROM events WHERE actor_id = 'person-e5'") >= 1
    assert await admin.fetchval("SELECT count(*) FROM erasures") == records


async def test_an_erasure_cannot_be_sent_with_get(gateway: Gateway) -> None:
    response = await gateway.http.get(
        "/graphql", params={"query": 'mutation { eraseUser(userId: "person-e6") { erasureId } }'}, headers=authorization(COMPLIANCE)
    )

    assert response.status_code == 405


async def test_the_daily_retention_drops_old_months_and_their_releases_are_still_served(gateway: Gateway, admin: asyncpg.Connection) -> None:
    old = 100
    await gateway.backfill([
        published(gateway, "vid-old", "creator-old", days_ago=old),
        *(viewed(gateway, "vid-old", "creator-old", f"viewer-old-{n}", days_ago=old) for n in range(4)),
    ])
    month = await admin.fetchval("SELECT tableoid::regclass::text FROM events WHERE video_id = 'vid-old' LIMIT 1")
    before = await served_views(gateway, "vid-old")

    await gateway.state["retention"].run_once()

    assert await admin.fetchval("SELECT to_regclass($1) IS NULL", month), f"{month} is past retention"
    assert await admin.fetchval("SELECT count(*) FROM events WHERE video_id = 'vid-old'") == 0
    assert await served_views(gateway, "vid-old") == before == {"views": 4, "shares": 0}
    scraped = await gateway.scrape()
    assert "gateway_retention_partitions_dropped_total 1.0" in scraped
    last_run = next(line for line in scraped.splitlines() if line.startswith("gateway_retention_last_run_timestamp_seconds "))
    assert float(last_run.split()[1]) == pytest.approx(gateway.clock().timestamp())


async def test_an_erasure_leaves_no_request_in_the_decision_log_that_names_the_person(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """A red team found the decision log naming the erased: their own requests, and the eraseUser
    request's userId, whose time matched the erasure record's (which keeps only a keyed digest)."""
    await gateway.ingest([viewed(gateway, "vid-e9", "creator-e9", "person-e9")])
    person = Principal(PrincipalKind.USER, "person-e9")
    assert (await gateway.graphql(MY_SHARES, principal=person)).status_code == 200
    await gateway.state["decision_log"].flush()
    assert await admin.fetchval("SELECT count(*) FROM decision_log WHERE principal->>'id' = 'person-e9'") >= 1

    response = await erase(gateway, "person-e9")
    await gateway.state["decision_log"].flush()

    assert "errors" not in response.json(), response.text
    assert await admin.fetchval("SELECT count(*) FROM decision_log WHERE principal->>'id' = 'person-e9'") == 0
    assert await admin.fetchval("SELECT count(*) FROM decision_bodies WHERE body::text LIKE '%person-e9%'") == 0
    assert await admin.fetchval("SELECT count(*) FROM decision_log WHERE principal->>'kind' = 'compliance'") >= 1, "compliance's own requests stay"


async def test_a_request_made_before_an_erasure_and_written_after_it_is_left_out(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """The decision log's writer lingers (and retries after a failure): a red team saw the person's
    last request written after their erasure, beside it. It is left out: the writer checks its
    batch against the erasures, under the lock an erasure takes first."""
    await gateway.ingest([viewed(gateway, "vid-e10", "creator-e10", "person-e10")])
    writer = gateway.state["decision_log"]
    async with writer._writing:  # noqa: SLF001 - hold the writer, as a lingering batch does
        assert (await gateway.graphql(MY_SHARES, principal=Principal(PrincipalKind.USER, "person-e10"))).status_code == 200
        response = await erase(gateway, "person-e10", reason="asked by e-mail")
        assert "errors" not in response.json(), response.text
    await writer.flush()

    assert await admin.fetchval("SELECT count(*) FROM decision_log WHERE principal->>'id' = 'person-e10'") == 0
    assert writer.dropped_erased >= 1
    assert 'gateway_decision_log_records_total{outcome="erased"}' in await gateway.scrape()
    assert await admin.fetchval("SELECT count(*) FROM decision_bodies WHERE body::text LIKE '%asked by e-mail%'") == 0, "the reason is withheld too"


async def test_a_request_held_by_the_log_writer_through_a_repeated_erasure_is_left_out(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """A red team: erased, asked again, then erased again while the log's writer still held that
    request. The second erasure found nothing (its receipt is the first's) and the request, later
    than the first erasure, was written after it."""
    person = Principal(PrincipalKind.USER, "person-e12")
    first = (await erase(gateway, "person-e12")).json()["data"]["eraseUser"]
    writer = gateway.state["decision_log"]
    async with writer._writing:  # noqa: SLF001 - hold the writer, as a lingering batch does
        assert (await gateway.graphql('{ video(id: "vid-only-e12") { stats { views } } }', principal=person)).status_code == 200
        again = (await erase(gateway, "person-e12")).json()["data"]["eraseUser"]
    await writer.flush()

    assert again["repeated"] and again["erasureId"] == first["erasureId"]
    assert await admin.fetchval("SELECT count(*) FROM decision_log WHERE principal->>'id' = 'person-e12'") == 0
    assert await admin.fetchval("SELECT count(*) FROM decision_bodies WHERE body::text LIKE '%vid-only-e12%'") == 0


async def test_an_erasure_takes_out_the_logged_questions_only_the_person_asked(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """A logged question holds the request's arguments (which video they looked at). An erasure
    used to leave those of the person's requests behind, named by no row. Bodies another request
    names stay, and one asked again later is written again, in whichever process asks."""
    only_theirs = '{ video(id: "vid-only-e11") { stats { views } } }'
    person, other = Principal(PrincipalKind.USER, "person-e11"), Principal(PrincipalKind.USER, "other-e11")
    for principal, query in ((person, only_theirs), (person, MY_SHARES), (other, MY_SHARES)):
        assert (await gateway.graphql(query, principal=principal)).status_code == 200
    await gateway.state["decision_log"].flush()
    named = "SELECT count(*) FROM decision_bodies WHERE body::text LIKE '%vid-only-e11%'"
    assert await admin.fetchval(named) == 1

    assert "errors" not in (await erase(gateway, "person-e11")).json()

    assert await admin.fetchval(named) == 0
    readable = """SELECT count(*) FROM decision_log l JOIN decision_bodies q ON q.digest = l.question
                  JOIN decision_bodies r ON r.digest = l.result WHERE l.principal->>'id' = $1"""
    assert await admin.fetchval(readable, "other-e11") == 1, "the question another person asked too stays"
    assert (await gateway.graphql(only_theirs, principal=other)).status_code == 200
    await gateway.state["decision_log"].flush()
    assert await admin.fetchval(readable, "other-e11") == 2, "a question asked again is written again"
    assert await admin.fetchval("SELECT count(*) FROM decision_log l WHERE NOT EXISTS (SELECT FROM decision_bodies b WHERE b.digest = l.question)") == 0


async def test_what_the_person_asked_while_the_erasure_waited_for_its_locks_is_left_out(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """A red team found requests the person made while the erasure waited behind ingest kept in the
    decision log: they came after the erasure's transaction began (its old stamp), before its commit."""
    await gateway.ingest([viewed(gateway, "vid-e12", "creator-e12", "person-e12")])
    person = Principal(PrincipalKind.USER, "person-e12")
    await admin.execute("SELECT pg_advisory_lock($1)", ARRIVAL_LOCK)  # as a long ingest batch holds it
    try:
        erasing = asyncio.create_task(erase(gateway, "person-e12"))
        await wait_until_blocked(admin, "gateway:gateway_eraser")
        assert (await gateway.graphql(MY_SHARES, principal=person)).status_code == 200
    finally:
        await admin.execute("SELECT pg_advisory_unlock($1)", ARRIVAL_LOCK)
    assert "errors" not in (await erasing).json()
    await gateway.state["decision_log"].flush()

    assert await admin.fetchval("SELECT count(*) FROM decision_log WHERE principal->>'id' = 'person-e12'") == 0


async def wait_until_blocked(admin: asyncpg.Connection, application: str) -> None:
    """Until a connection of `application` waits for a lock (asks again each time the store answers)."""
    async with asyncio.timeout(60):
        while not await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", application
        ):
            await asyncio.sleep(0.01)


async def test_an_access_request_exports_the_persons_own_requests_and_nobody_elses(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """The decision log holds what the person asked (erasure takes it as theirs): the export gives it."""
    from gateway.store.erasure import derive_erasure_key, subject_key
    from gateway.store.personal_data import export_person
    from conftest import SECRET

    asked = '{ video(id: "vid-asked-e13") { stats { views } } }'
    assert (await gateway.graphql(asked, principal=Principal(PrincipalKind.USER, "person-e13"))).status_code == 200
    assert (await gateway.graphql(MY_SHARES, principal=Principal(PrincipalKind.USER, "other-e13"))).status_code == 200
    await gateway.state["decision_log"].flush()

    exported = await export_person(admin, "person-e13", subject_key(derive_erasure_key(SECRET), "person-e13"), gateway.clock())

    requests = exported["policy_decisions"]
    assert [request["principal"]["id"] for request in requests] == ["person-e13"]
    assert "vid-asked-e13" in str(requests[0]["question"])
