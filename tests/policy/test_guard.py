"""The policy guard end to end: requests over HTTP to the app with its lifespan running, decided by
the embedded engine (over a copy of policies/ this module may edit) or by the OPA-server engine
(against the OPA stand-in, whose knobs make it slow, failing or incomplete)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import gateway.policy.opa as opa_engine
from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.policy.decider import DecisionRecord
from gateway.policy.decision import ENTRYPOINT
from gateway.policy.embedded import EmbeddedEngine
from gateway.store.decision_log import DecisionLogWriter

from fixture_platform import ADA, ADA_FIRST, BO, EVENTS, SHARER
from harness import Gateway, authorization, running_gateway, statements_on

from .opa_standin import Mode, OpaStandin, Received

POLICIES = Path(__file__).parents[2] / "policies"
POLICY_DATA = json.loads((POLICIES / "data.json").read_text())
# Generous for the embedded engine (timeouts are tested against the stand-in); tight for the OPA one.
EMBEDDED_TIMEOUT = 2.0
OPA_TIMEOUT = 0.5
OPA_DELAY = 1.5

CREATOR = Principal(PrincipalKind.USER, ADA)
OTHER_CREATOR = Principal(PrincipalKind.USER, BO)
SHARING_USER = Principal(PrincipalKind.USER, SHARER)
AUDITOR = Principal(PrincipalKind.COMPLIANCE, "auditor-1")
INGEST = Principal(PrincipalKind.SERVICE, "ingest")


def app_principal(*scopes: str, acting_for: str = SHARER) -> Principal:
    """App `app-7` acting for a user (SHARER unless told), with the scopes that user granted it."""
    return Principal(PrincipalKind.APP, acting_for, frozenset(scopes), app_id="app-7")


# --- the apps ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped policy, for the tests that edit it."""
    target = tmp_path_factory.mktemp("policy") / "policies"
    shutil.copytree(POLICIES, target)
    return target


@pytest.fixture(scope="module")
async def gateway(database_url: str, policy_dir: Path) -> AsyncIterator[Gateway]:
    """The app deciding with the embedded engine, over the GraphQL tests' platform."""
    async with running_gateway(database_url, policy_dir=policy_dir, policy_timeout=EMBEDDED_TIMEOUT) as started:
        await started.backfill(EVENTS)
        yield started


@pytest.fixture(scope="module")
async def opa_gateway(database_url: str, opa_server: OpaStandin) -> AsyncIterator[Gateway]:
    """The app deciding with the OPA-server engine, against the stand-in."""
    async with running_gateway(database_url, opa_url=opa_server.url, policy_timeout=OPA_TIMEOUT) as started:
        yield started


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def opa_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The clock the OPA engine's revision rotates by: still, unless a test moves it."""
    clock = Clock()
    monkeypatch.setattr(opa_engine, "time", SimpleNamespace(monotonic=clock))
    return clock


# --- asking --------------------------------------------------------------------------------------


async def ask(gateway: Gateway, query: str, variables: dict[str, Any] | None = None, principal: Principal = ANONYMOUS) -> httpx.Response:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return await gateway.http.post("/graphql", json=body, headers=authorization(principal))


def refusals(response: httpx.Response) -> dict[str, str]:
    """The refused fields of a refused operation, as {response path: coordinate}."""
    body = response.json()
    assert response.status_code == 200, body
    assert body["data"] is None, body
    assert {error["extensions"]["code"] for error in body["errors"]} == {"FORBIDDEN"}, body
    return {".".join(error["path"]): error["extensions"]["field"] for error in body["errors"]}


def answer(response: httpx.Response) -> Any:
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


def unavailable(response: httpx.Response) -> str:
    """The message of a request refused because the policy could not decide it."""
    body = response.json()
    assert response.status_code == 503, body
    assert body["data"] is None, body
    assert "extensions" not in body, body  # no decision, so no terms to report
    [error] = body["errors"]
    assert error["extensions"]["code"] == "POLICY_UNAVAILABLE", body
    message: str = error["message"]
    return message


def resolver_pools(gateway: Gateway) -> tuple[asyncpg.Pool, asyncpg.Pool]:
    """The pools resolvers read through (the ingest pool also carries the decision log's writes)."""
    return gateway.store.reader, gateway.store.private


# After any decided operation of an app, refused ones included, the route charges the app's ε budget
# through the reader pool (nothing, when nothing noisy was released) and reads back what is left for
# `extensions.privacy.budgetLeft`; asyncpg introspects the call's array types on a fresh connection.
# Not resolvers: the budget ledger, the app grant checked at authentication, asyncpg's own introspection.
NOT_FROM_RESOLVERS = ("spend_epsilon(", "app_grant(", "typeinfo_tree", "current_setting('jit')", "set_config('jit'")


def from_resolvers(sent: list[str]) -> list[str]:
    """The statements of `sent` that resolvers sent."""
    return [statement for statement in sent if not any(marker in statement for marker in NOT_FROM_RESOLVERS)]


async def cache_counts(gateway: Gateway) -> dict[str, float]:
    """The decision cache's hits and misses, as GET /metrics exports them."""
    return {
        sample.labels["cache"]: sample.value
        for family in text_string_to_metric_families(await gateway.scrape())
        for sample in family.samples
        if sample.name == "gateway_policy_decisions_total"
    }


async def cache_outcome(gateway: Gateway, query: str, principal: Principal = ANONYMOUS) -> tuple[str, httpx.Response]:
    """Whether the decision cache answered the decision about one request's fields ("hit") or the
    engine did ("miss"). (Each request is also decided with no fields, for the principal's rate
    limit: decided here first, so that the request finds it in the cache.)"""
    await gateway.state["decider"].obligations(principal)
    before = await cache_counts(gateway)
    response = await ask(gateway, query, principal=principal)
    after = await cache_counts(gateway)
    delta = {outcome: after[outcome] - before[outcome] for outcome in ("hit", "miss")}
    delta["hit"] -= 1  # the rate limit's
    assert sorted(delta.values()) == [0, 1], delta
    return ("hit" if delta["hit"] else "miss"), response


def field_questions(standin: OpaStandin) -> list[Received]:
    """What the OPA server was asked about fields: not the questions of no fields a request's rate
    limit is asked with (once per principal kind and scopes, and revision)."""
    return [received for received in standin.received if received.body["input"]["fields"]]


# --- every field is decided, however it is reached ------------------------------------------------

TIMELINE_REFUSED = {
    "video.shareTimeline": "Video.shareTimeline",
    "video.shareTimeline.buckets": "Timeline.buckets",
    "video.shareTimeline.buckets.count": "TimeBucket.count",
}


@pytest.mark.parametrize(
    ("query", "variables", "refused"),
    [
        pytest.param(
            "query($id: ID!) { video(id: $id) { id ...Timeline } } fragment Timeline on Video { shareTimeline { buckets { count } } }",
            {"id": ADA_FIRST},
            TIMELINE_REFUSED,
            id="fragment",
        ),
        pytest.param(
            "query($id: ID!) { video(id: $id) { id shares: shareTimeline { buckets { count } } } }",
            {"id": ADA_FIRST},
            {"video.shares": "Video.shareTimeline", "video.shares.buckets": "Timeline.buckets", "video.shares.buckets.count": "TimeBucket.count"},
            id="alias",
        ),
        pytest.param(
            "query($id: ID!) { video(id: $id) { id ... on Video { shareTimeline { buckets { count } } } } }",
            {"id": ADA_FIRST},
            TIMELINE_REFUSED,
            id="inline-fragment",
        ),
        pytest.param(
            "query($id: ID!, $v: Boolean!) { video(id: $id) { id shareTimeline @include(if: $v) { buckets { count } } } }",
            {"id": ADA_FIRST, "v": True},
            TIMELINE_REFUSED,
            id="include-variable",
        ),
        pytest.param(
            "query($id: ID!, $v: Boolean!) { video(id: $id) { id ... @skip(if: $v) { shareTimeline { buckets { count } } } } }",
            {"id": ADA_FIRST, "v": False},
            TIMELINE_REFUSED,
            id="skip-variable-on-inline-fragment",
        ),
    ],
)
async def test_owner_only_field_is_refused_to_anonymous_however_it_is_reached(
    gateway: Gateway, query: str, variables: dict[str, Any], refused: dict[str, str]
) -> None:
    async with statements_on(*resolver_pools(gateway)) as sent:
        response = await ask(gateway, query, variables)

    assert refusals(response) == refused
    assert sent == []


async def test_field_excluded_by_include_is_not_asked_about(gateway: Gateway) -> None:
    query = "query($id: ID!, $v: Boolean!) { video(id: $id) { id shareTimeline @include(if: $v) { buckets { count } } } }"

    response = await ask(gateway, query, {"id": ADA_FIRST, "v": False})

    assert answer(response) == {"video": {"id": ADA_FIRST}}


async def test_owner_only_field_reached_through_a_fragment_is_served_to_its_owner(gateway: Gateway) -> None:
    query = (
        "query($id: ID!) { video(id: $id) { ...Timeline } }"
        ' fragment Timeline on Video { daily: shareTimeline(from: "2025-03-01T00:00:00Z", to: "2025-03-05T00:00:00Z") { buckets { count } } }'
    )

    response = await ask(gateway, query, {"id": ADA_FIRST}, principal=CREATOR)

    assert answer(response)["video"]["daily"]["buckets"]


async def test_owner_only_field_is_refused_to_another_creator_by_the_resolver(gateway: Gateway) -> None:
    response = await ask(gateway, "query($id: ID!) { video(id: $id) { shareTimeline { buckets { count } } } }", {"id": ADA_FIRST}, OTHER_CREATOR)

    body = response.json()
    assert body["data"] == {"video": {"shareTimeline": None}}
    assert [(error["extensions"]["code"], error["extensions"]["field"]) for error in body["errors"]] == [("FORBIDDEN", "Video.shareTimeline")]


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param({}, id="missing"),
        pytest.param({"id": ADA_FIRST, "g": "SECOND"}, id="bad-enum"),
        pytest.param({"id": ADA_FIRST, "g": None}, id="null-for-a-defaulted-non-null-argument"),
    ],
)
async def test_bad_variables_are_refused_before_the_policy_is_asked(gateway: Gateway, variables: dict[str, Any]) -> None:
    query = "query($id: ID!, $g: Granularity = DAY) { video(id: $id) { shareTimeline(granularity: $g) { granularity } } }"
    before = await cache_counts(gateway)

    async with statements_on(*resolver_pools(gateway)) as sent:
        response = await ask(gateway, query, variables, principal=CREATOR)

    body = response.json()
    assert "data" not in body  # a request error: nothing was executed
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
    assert "extensions" not in body  # no decision, so no terms to report
    after = await cache_counts(gateway)
    assert sum(after.values()) == sum(before.values()) + 1  # the rate limit's decision alone
    assert sent == []


# --- introspection, as policies/data.json has it per principal kind --------------------------------

INTROSPECTION = [
    pytest.param("{ __typename }", "typename", "Query.__typename", id="typename"),
    pytest.param("{ __schema { queryType { name } } }", "schema", "Query.__schema", id="schema"),
    pytest.param('{ __type(name: "Video") { name } }', "schema", "Query.__type", id="type"),
]
KINDS = [
    pytest.param(ANONYMOUS, id="anonymous"),
    pytest.param(CREATOR, id="user"),
    pytest.param(app_principal("stats"), id="app"),
    pytest.param(AUDITOR, id="compliance"),
    pytest.param(INGEST, id="service"),
]


@pytest.mark.parametrize(("query", "introspection_class", "coordinate"), INTROSPECTION)
@pytest.mark.parametrize("principal", KINDS)
async def test_introspection_is_decided_by_policy(
    gateway: Gateway, principal: Principal, query: str, introspection_class: str, coordinate: str
) -> None:
    allowed = POLICY_DATA["access"]["principals"][principal.kind.value]["introspection"][introspection_class]

    response = await ask(gateway, query, principal=principal)

    if allowed:
        assert coordinate.split(".")[1] in answer(response)
    else:
        assert coordinate in refusals(response).values()


def obligation(kind: PrincipalKind, name: str) -> Any:
    """The shipped policy's obligation `name` for principals of `kind`."""
    obligations = POLICY_DATA["obligations"]
    return obligations["principals"].get(kind.value, {}).get(name, obligations["defaults"][name])


@pytest.mark.parametrize(
    "principal",
    [
        pytest.param(ANONYMOUS, id="anonymous"),
        pytest.param(CREATOR, id="user"),
        pytest.param(app_principal("stats", acting_for="user-of-a-reported-app"), id="app"),
        pytest.param(AUDITOR, id="compliance"),
        pytest.param(INGEST, id="service"),
    ],
)
async def test_decided_operation_reports_the_decisions_privacy_terms(gateway: Gateway, principal: Principal) -> None:
    # Allowed to some kinds, refused to others: either way the policy decided, under its obligations.
    response = await ask(gateway, "{ __typename }", principal=principal)

    assert response.json()["extensions"] == {"privacy": {
        "k": obligation(principal.kind, "k_threshold"),
        "granularityFloor": obligation(principal.kind, "granularity_floor"),
        "suppressedCells": 0,
        "noised": False,
        "epsilonSpent": 0.0,
        # An app's user has the day's whole budget (nothing here spends it); other kinds have none.
        "budgetLeft": obligation(principal.kind, "epsilon_budget_per_day"),
    }}


def test_introspection_policy_differs_between_kinds() -> None:
    # Otherwise the test above would not show that the policy, not the gateway, decides.
    settings = {kind: access["introspection"]["schema"] for kind, access in POLICY_DATA["access"]["principals"].items()}

    assert set(settings.values()) == {True, False}


# --- fields that bear an identity ------------------------------------------------------------------

ME = "{ me { id shares { videoId channel } } }"
DECISION_LOG = "{ decisionLog(first: 1) { edges { node { decisionId input } } } }"


@pytest.mark.parametrize(
    "principal",
    [
        pytest.param(ANONYMOUS, id="anonymous"),
        pytest.param(INGEST, id="service"),
        pytest.param(AUDITOR, id="compliance"),
        pytest.param(app_principal("stats", "insights"), id="app-without-activity"),
    ],
)
async def test_me_is_refused_to_all_but_users_and_apps_granted_activity(gateway: Gateway, principal: Principal) -> None:
    async with statements_on(*resolver_pools(gateway)) as sent:
        response = await ask(gateway, ME, principal=principal)

    assert refusals(response)["me"] == "Query.me"
    assert from_resolvers(sent) == []


async def test_me_answers_with_the_users_own_shares(gateway: Gateway) -> None:
    principal = SHARING_USER
    response = await ask(gateway, ME, principal=principal)

    me = answer(response)["me"]
    own_shares = [event for event in EVENTS if event["type"] == "share" and event["actor_id"] == SHARER]
    assert me["id"] == SHARER
    assert sorted(share["channel"] for share in me["shares"]) == sorted(event["channel"] for event in own_shares)
    # A user's own rows are no aggregate: nothing is noised, no ε is spent.
    privacy = response.json()["extensions"]["privacy"]
    assert (privacy["noised"], privacy["epsilonSpent"]) == (False, 0.0)


async def test_an_app_with_activity_may_not_read_its_users_shares(gateway: Gateway) -> None:
    """An app gathering `activity` from many users would learn who shares each creator's videos
    (anonymous shares too): a user's shares are theirs alone (group own_shares)."""
    async with statements_on(*resolver_pools(gateway)) as sent:
        response = await ask(gateway, ME, principal=app_principal("activity", acting_for=SHARER))

    assert refusals(response)["me.shares"] == "Me.shares"
    assert from_resolvers(sent) == []


@pytest.mark.parametrize(
    "principal",
    [
        pytest.param(ANONYMOUS, id="anonymous"),
        pytest.param(CREATOR, id="user"),
        pytest.param(INGEST, id="service"),
        pytest.param(app_principal("stats", "insights", "activity"), id="app"),
    ],
)
async def test_decision_log_is_refused_to_all_but_compliance(gateway: Gateway, principal: Principal) -> None:
    async with statements_on(*resolver_pools(gateway)) as sent:
        response = await ask(gateway, DECISION_LOG, principal=principal)

    assert refusals(response)["decisionLog"] == "Query.decisionLog"
    assert from_resolvers(sent) == []


async def test_decision_log_answers_compliance(gateway: Gateway) -> None:
    await ask(gateway, "{ __typename }")
    await caught_up(gateway)

    edges = answer(await ask(gateway, DECISION_LOG, principal=AUDITOR))["decisionLog"]["edges"]

    assert len(edges) == 1


# --- no resolver runs when a field is refused ------------------------------------------------------


async def test_no_statement_is_sent_for_a_refused_operation(gateway: Gateway) -> None:
    allowed = "query($id: ID!) { video(id: $id) { id stats { views } } }"
    refused = "query($id: ID!) { video(id: $id) { id stats { views likeRatio } } }"

    async with statements_on(*resolver_pools(gateway)) as sent_for_allowed:
        answer(await ask(gateway, allowed, {"id": ADA_FIRST}))
    async with statements_on(*resolver_pools(gateway)) as sent_for_refused:
        refusals(await ask(gateway, refused, {"id": ADA_FIRST}))

    assert sent_for_allowed, "the query loggers see the resolvers' statements"
    assert sent_for_refused == []


# --- the engine failing: no data, 503 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "delay", "message"),
    [
        pytest.param(Mode.DECIDE, OPA_DELAY, f"the OPA server did not answer within {OPA_TIMEOUT * 1000:.0f} ms", id="timeout"),
        pytest.param(Mode.FAIL, 0.0, "the OPA server failed: 500", id="error-500"),
        pytest.param(Mode.UNDEFINED, 0.0, f"the OPA server has no {ENTRYPOINT} (is the policy loaded?)", id="undefined"),
        pytest.param(Mode.DROP_PATH, 0.0, "the policy gave no decision for video.stats.views", id="missing-path"),
    ],
)
async def test_engine_failure_is_policy_unavailable(
    opa_gateway: Gateway, opa_standin: OpaStandin, opa_clock: Clock, mode: Mode, delay: float, message: str
) -> None:
    await opa_gateway.state["decider"].obligations(ANONYMOUS)  # the rate limit decided before the engine fails
    opa_standin.received.clear()
    opa_standin.mode, opa_standin.delay = mode, delay
    # A query of its own, so that no decision cached by another test answers it.
    query = f"query Failing{mode.name.title()} {{ video(id: {json.dumps(ADA_FIRST)}) {{ id stats {{ views }} }} }}"
    started = asyncio.get_running_loop().time()

    async with statements_on(*resolver_pools(opa_gateway)) as sent:
        response = await ask(opa_gateway, query)

    assert unavailable(response).startswith(message)
    assert len(opa_standin.received) == 1
    assert asyncio.get_running_loop().time() - started < OPA_DELAY
    assert sent == []


async def test_engine_recovers_after_failing(opa_gateway: Gateway, opa_standin: OpaStandin) -> None:
    query = f"query Recovering {{ video(id: {json.dumps(ADA_FIRST)}) {{ id }} }}"
    opa_standin.mode = Mode.FAIL
    unavailable(await ask(opa_gateway, query))
    # Readiness follows the server's own /health (still up here): each request fails closed on its own.
    assert (await opa_gateway.http.get("/readyz")).status_code == 200

    opa_standin.mode = Mode.DECIDE

    assert answer(await ask(opa_gateway, query)) == {"video": {"id": ADA_FIRST}}
    assert (await opa_gateway.http.get("/readyz")).status_code == 200


async def test_readyz_recovers_when_the_opa_server_does(opa_gateway: Gateway, opa_standin: OpaStandin) -> None:
    query = "query ReadyAgain { __typename }"
    opa_standin.mode = Mode.FAIL
    unavailable(await ask(opa_gateway, query))
    opa_standin.mode = Mode.DECIDE
    try:
        assert (await opa_gateway.http.get("/readyz")).status_code == 200
    finally:
        answer(await ask(opa_gateway, query))


async def test_an_opa_server_nobody_listens_for_is_unreachable_and_clients_are_not_told_where(database_url: str) -> None:
    """A dead OPA port: readiness says the server is unreachable (not that it reports itself
    unhealthy), and a client's POLICY_UNAVAILABLE names neither its host nor its port."""
    import socket

    with socket.socket() as probe:  # a port no one listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with running_gateway(database_url, opa_url=f"http://127.0.0.1:{port}") as dead:
        ready = await dead.http.get("/readyz")
        response = await ask(dead, "query DeadOpa { __typename }")

    assert ready.status_code == 503
    assert "unreachable" in ready.json()["policy"]["error"]
    assert "the OPA server failed" in unavailable(response)
    assert str(port) not in response.text and "127.0.0.1" not in response.text


async def test_opa_engine_sends_one_input_per_request_without_the_token(opa_gateway: Gateway, opa_standin: OpaStandin) -> None:
    query = "query OneInput($id: ID!) { a: video(id: $id) { id } b: video(id: $id) { stats { views } } }"

    answer(await ask(opa_gateway, query, {"id": ADA_FIRST}, principal=CREATOR))

    [received] = field_questions(opa_standin)
    assert received.path == ENTRYPOINT
    assert received.body["input"]["principal"] == {"kind": "user", "id": ADA, "scopes": []}
    assert received.body["input"]["operation"] == {"name": "OneInput", "type": "query", "hash": hashlib.sha256(query.encode()).hexdigest()}
    assert [field["path"] for field in received.body["input"]["fields"]] == ["a", "a.id", "b", "b.stats", "b.stats.views"]
    assert not contains_a_token(received.body)


# --- the decision cache -----------------------------------------------------------------------------


async def test_second_identical_request_is_a_cache_hit(gateway: Gateway) -> None:
    query = f"query CachedTwice {{ video(id: {json.dumps(ADA_FIRST)}) {{ id stats {{ views likeRatio }} }} }}"

    first, first_response = await cache_outcome(gateway, query, CREATOR)
    second, second_response = await cache_outcome(gateway, query, CREATOR)

    assert (first, second) == ("miss", "hit")
    assert answer(first_response) == answer(second_response)


async def test_cache_keeps_principal_kinds_and_scopes_apart(gateway: Gateway) -> None:
    query = f"query KindsApart {{ video(id: {json.dumps(ADA_FIRST)}) {{ id }} }}"
    await cache_outcome(gateway, query, app_principal("stats"))

    outcomes = [
        (await cache_outcome(gateway, query, principal))[0]
        for principal in (app_principal("stats", "insights"), ANONYMOUS, CREATOR, app_principal("stats"))
    ]

    assert outcomes == ["miss", "miss", "miss", "hit"]


async def test_embedded_cache_is_shared_by_principals_of_one_kind_when_the_policy_ignores_the_id(gateway: Gateway) -> None:
    query = f"query SharedByKind {{ video(id: {json.dumps(ADA_FIRST)}) {{ id }} }}"
    await cache_outcome(gateway, query, CREATOR)

    outcome, _ = await cache_outcome(gateway, query, OTHER_CREATOR)

    assert outcome == "hit"


async def test_opa_cache_keeps_principal_ids_apart(opa_gateway: Gateway, opa_standin: OpaStandin, opa_clock: Clock) -> None:
    # The OPA server's policy is not ours to inspect: it may read the id.
    query = f"query IdsApart {{ video(id: {json.dumps(ADA_FIRST)}) {{ id }} }}"

    outcomes = [(await cache_outcome(opa_gateway, query, principal))[0] for principal in (CREATOR, OTHER_CREATOR, CREATOR)]

    assert outcomes == ["miss", "miss", "hit"]
    assert [received.body["input"]["principal"]["id"] for received in field_questions(opa_standin)] == [ADA, OTHER_CREATOR.id]


async def test_opa_revision_rotating_invalidates_the_cache(opa_gateway: Gateway, opa_standin: OpaStandin, opa_clock: Clock) -> None:
    query = f"query Rotating {{ video(id: {json.dumps(ADA_FIRST)}) {{ id }} }}"
    await cache_outcome(opa_gateway, query)
    assert (await cache_outcome(opa_gateway, query))[0] == "hit"

    opa_clock.now += opa_engine.REVISION_SECONDS

    assert (await cache_outcome(opa_gateway, query))[0] == "miss"
    assert len(field_questions(opa_standin)) == 2


async def test_a_reload_decides_recent_questions_again_before_it_serves(gateway: Gateway, policy_dir: Path) -> None:
    query = f"query TotalVideos {{ creator(id: {json.dumps(ADA)}) {{ totals {{ videos }} }} }}"
    unasked = f"query Unasked {{ creator(id: {json.dumps(ADA)}) {{ totals {{ videos }} }} }}"
    shipped = (policy_dir / "data.json").read_text()
    without_video_totals = json.loads(shipped)
    del without_video_totals["access"]["fields"]["CreatorTotals.videos"]

    await cache_outcome(gateway, query)
    outcome, response = await cache_outcome(gateway, query)
    assert outcome == "hit" and answer(response) == {"creator": {"totals": {"videos": 2}}}
    try:
        (policy_dir / "data.json").write_text(json.dumps(without_video_totals))
        await gateway.policy_in_force()

        # Decided again under the new policy while the old one served: from the cache, and the new answer.
        outcome, response = await cache_outcome(gateway, query)
        assert outcome == "hit"
        assert refusals(response) == {"creator.totals.videos": "CreatorTotals.videos"}
        # Nothing decided under the old policy is served under the new one.
        outcome, response = await cache_outcome(gateway, unasked)
        assert outcome == "miss"
        assert refusals(response) == {"creator.totals.videos": "CreatorTotals.videos"}
    finally:
        (policy_dir / "data.json").write_text(shipped)
        await gateway.policy_in_force()

    outcome, response = await cache_outcome(gateway, query)
    assert outcome == "hit" and answer(response) == {"creator": {"totals": {"videos": 2}}}


# --- the decision log -----------------------------------------------------------------------------

LOG_PAGE = """query Audit($from: DateTime, $denied: Boolean, $first: Int!, $after: String) {
  decisionLog(from: $from, denied: $denied, first: $first, after: $after) {
    edges { cursor node { decisionId timestamp revision path input result cacheHit denied durationMs } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def caught_up(gateway: Gateway) -> None:
    """Waits until the decision log holds every decision the app has made."""
    writer: DecisionLogWriter = gateway.state["decision_log"]
    await writer.flush()  # waits for a batch the background task is writing, too


async def read_log(gateway: Gateway, since: datetime, denied: bool | None = None, first: int = 500) -> list[dict[str, Any]]:
    """Every decision since `since`, oldest first, read as compliance page by page."""
    await caught_up(gateway)
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"from": since.isoformat(), "denied": denied, "first": first, "after": after}
        page = answer(await ask(gateway, LOG_PAGE, variables, principal=AUDITOR))["decisionLog"]
        assert len(page["edges"]) <= first
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]


def of_operations(nodes: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    return [node for node in nodes if node["input"]["operation"]["name"] in names]


def contains_a_token(document: Any) -> bool:
    text = json.dumps(document).lower()
    return "bearer" in text or "authorization" in text or "token" in text or re.search(r"ey[\w-]+\.ey[\w-]+\.", text) is not None


async def test_decision_log_records_each_decision(gateway: Gateway) -> None:
    engine: EmbeddedEngine = gateway.state["engine"]
    since = datetime.now(UTC)
    allowed = f"query LoggedAllowed {{ video(id: {json.dumps(ADA_FIRST)}) {{ id shareTimeline {{ buckets {{ count }} }} }} }}"
    refused = "query LoggedRefused { me { id } }"

    answer(await ask(gateway, allowed, principal=CREATOR))
    answer(await ask(gateway, allowed, principal=CREATOR))
    refusals(await ask(gateway, refused))
    logged = of_operations(await read_log(gateway, since), "LoggedAllowed", "LoggedRefused")

    assert [(node["input"]["operation"]["name"], node["cacheHit"], node["denied"]) for node in logged] == [
        ("LoggedAllowed", False, False),
        ("LoggedAllowed", True, False),
        ("LoggedRefused", False, True),
    ]
    assert len({uuid.UUID(node["decisionId"]) for node in logged}) == 3
    assert {node["revision"] for node in logged} == {engine.revision}
    assert {node["path"] for node in logged} == {ENTRYPOINT}
    first, _, refusal = logged
    assert first["input"]["principal"] == {"kind": "user", "id": ADA, "scopes": []}
    assert first["input"]["operation"] == {"name": "LoggedAllowed", "type": "query", "hash": hashlib.sha256(allowed.encode()).hexdigest()}
    assert [field["coordinate"] for field in first["input"]["fields"]] == [
        "Query.video",
        "Video.id",
        "Video.shareTimeline",
        "Timeline.buckets",
        "TimeBucket.count",
    ]
    assert first["result"]["fields"]["video.shareTimeline"] == {
        "allow": True,
        "owner_only": True,
        "reason": "Video.shareTimeline is allowed for user on their own data only",
    }
    assert first["result"]["obligations"]["k_threshold"] == POLICY_DATA["obligations"]["principals"]["user"]["k_threshold"]
    assert refusal["input"]["principal"] == {"kind": "anonymous", "id": None, "scopes": []}
    assert refusal["result"]["fields"]["me"] == {"allow": False, "owner_only": False, "reason": "Query.me is not allowed for anonymous"}
    assert not any(contains_a_token(node["input"]) for node in logged)


async def test_decision_log_filters_denied_decisions(gateway: Gateway) -> None:
    since = datetime.now(UTC)
    for principal in (ANONYMOUS, CREATOR):
        await ask(gateway, "query FilteredByDenial { me { id } }", principal=principal)

    denied = of_operations(await read_log(gateway, since, denied=True), "FilteredByDenial")
    allowed = of_operations(await read_log(gateway, since, denied=False), "FilteredByDenial")

    assert [(node["input"]["principal"]["kind"], node["denied"]) for node in denied] == [("anonymous", True)]
    assert [(node["input"]["principal"]["kind"], node["denied"]) for node in allowed] == [("user", False)]


async def test_decision_log_pages_follow_one_another(gateway: Gateway) -> None:
    since = datetime.now(UTC)
    for number in range(5):
        await ask(gateway, f"query Paged{number} {{ __typename }}")

    whole = await read_log(gateway, since)
    paged = await read_log(gateway, since, first=2)

    assert len(of_operations(whole, *(f"Paged{number}" for number in range(5)))) == 5
    # Each page read is itself a decision, made after `since`: compare what both reads saw.
    paged_ids = [node["decisionId"] for node in paged]
    assert paged_ids[: len(whole)] == [node["decisionId"] for node in whole]
    assert len(set(paged_ids)) == len(paged_ids)
    timestamps = [datetime.fromisoformat(node["timestamp"]) for node in paged]
    assert timestamps == sorted(timestamps)


async def test_decision_log_refuses_a_cursor_that_is_not_one(gateway: Gateway) -> None:
    response = await ask(gateway, LOG_PAGE, {"first": 1, "after": "not-a-cursor"}, principal=AUDITOR)

    body = response.json()
    assert body["data"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]


async def test_flush_writes_every_decision_made_so_far(gateway: Gateway) -> None:
    writer: DecisionLogWriter = gateway.state["decision_log"]
    await caught_up(gateway)
    written = writer.written
    pool = gateway.store.ingest
    # The background writer takes the decision off the queue, then waits for a connection.
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        await ask(gateway, "query Flushed { __typename }")
        await asyncio.sleep(0.05)
        flushing = asyncio.create_task(writer.flush())
        await asyncio.sleep(0.05)
        returned_before_writing = flushing.done()
    finally:
        for connection in held:
            await pool.release(connection)
    await flushing

    assert not returned_before_writing
    assert writer.written == written + 1


async def test_close_writes_a_batch_already_taken(gateway: Gateway, admin: asyncpg.Connection) -> None:
    pool = gateway.store.ingest
    writer = DecisionLogWriter(pool)
    writer.start()
    decision_id = str(uuid.uuid4())
    question, result = b'{"operation":{},"fields":[]}', b'{"fields":{}}'
    record = DecisionRecord(
        decision_id, datetime.now(UTC), "r1", ENTRYPOINT, b"{}", None, question, hashlib.sha256(question).digest(),
        result, hashlib.sha256(result).digest(), False, False, 1.0,
    )
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        writer.record(record)
        async with asyncio.timeout(5):
            while not writer._writing.locked():  # the background task has taken the record and waits for a connection
                await asyncio.sleep(0)
        closing = asyncio.create_task(writer.close())
        for _ in range(10):
            await asyncio.sleep(0)  # let close() start waiting for the batch in flight
        assert not closing.done()
    finally:
        for connection in held:
            await pool.release(connection)
    await closing

    assert await admin.fetchval("SELECT count(*) FROM decision_log WHERE decision_id = $1", uuid.UUID(decision_id)) == 1


@pytest.mark.parametrize(
    "after",
    [
        pytest.param(["2026-11-27T12:00:00+00:00", "not-a-uuid"], id="decision-id-not-a-uuid"),
        pytest.param(["2026-11-27T12:00:00", str(uuid.uuid4())], id="timestamp-without-zone"),
        pytest.param(["yesterday", str(uuid.uuid4())], id="timestamp-not-iso"),
        pytest.param({"at": 1}, id="not-a-list"),
    ],
)
async def test_decision_log_cursor_that_no_page_ended_on_is_bad_user_input(gateway: Gateway, after: Any) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(after).encode()).decode()
    response = await ask(gateway, LOG_PAGE, {"first": 1, "after": cursor}, principal=AUDITOR)

    assert response.status_code == 200
    assert [error["extensions"]["code"] for error in response.json()["errors"]] == ["BAD_USER_INPUT"]
