"""How /graphql refuses: unknown ids, bad arguments, bad tokens, documents over the limits, GET for
non-queries, bodies that are not GraphQL requests, typos (never answered with a suggestion), and
errors nobody expected (masked, with a request id)."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import time
import tracemalloc
from typing import Any

import asyncpg
import graphql
import httpx
import jwt
import pytest
import strawberry

from gateway.auth import ISSUER, Principal, PrincipalKind, create_token
from gateway.graphql.context import Context, RequestContext
from gateway.graphql.execution import ValueListExecutionContext
from gateway.graphql.schema import Query, build_schema
from gateway.graphql.video import Video
from gateway.privacy.disclosure import Disclosure
from gateway.privacy.terms import PrivacyTerms
from gateway.store.releases import ReleaseReader

from harness import APP_SECRET, FIELD_TEST_TERMS, Gateway, authorization, field_test_privacy, running_gateway

CREATOR = "creator-err"
VIDEO = "video-err"
OWNER = Principal(PrincipalKind.USER, CREATOR)
# A user who viewed the video: the policy lets users ask for its details, the resolvers refuse them.
VIEWER = Principal(PrincipalKind.USER, "viewer-e1")
PUBLIC_QUERY = '{ video(id: "video-err") { id stats { views } } }'


@pytest.fixture(scope="module", autouse=True)
async def platform(gateway: Gateway) -> None:
    common = {"video_id": VIDEO, "creator_id": CREATOR}
    await gateway.backfill([
        {"event_id": "err-1", "type": "video_published", "occurred_at": "2025-03-01T09:00:00Z", **common, "actor_id": CREATOR},
        {"event_id": "err-2", "type": "view", "occurred_at": "2025-03-01T10:00:00Z", **common, "actor_id": "viewer-e1", "watch_ms": 1000},
        {"event_id": "err-3", "type": "share", "occurred_at": "2025-03-01T10:05:00Z", **common, "actor_id": "viewer-e1", "channel": "sms"},
    ])


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


# --- Unknown ids ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("query", "root", "message"),
    [
        pytest.param('{ video(id: "no-such-video") { id } }', "video", "no video 'no-such-video'", id="video"),
        pytest.param('{ creator(id: "no-such-creator") { id } }', "creator", "no creator 'no-such-creator'", id="creator"),
    ],
)
async def test_unknown_id_is_null_and_not_found(gateway: Gateway, query: str, root: str, message: str) -> None:
    response = await gateway.graphql(query, principal=OWNER)

    assert response.status_code == 200
    assert response.json() == {
        "data": {root: None},
        "errors": [{"message": message, "extensions": {"code": "NOT_FOUND"}, "locations": [{"line": 1, "column": 3}], "path": [root]}],
        "extensions": {"privacy": field_test_privacy("HOUR")},
    }


@pytest.mark.parametrize(
    "video_id",
    [
        pytest.param("a\u0000b", id="nul"),
        pytest.param("x" * 5000, id="very-long"),
        pytest.param("white space", id="whitespace"),
    ],
)
async def test_id_no_stored_id_can_look_like_is_not_found_and_still_logged(gateway: Gateway, video_id: str) -> None:
    query = "query($id: ID!) { video(id: $id) { id } }"
    log = gateway.state["decision_log"]
    dropped = log.dropped
    response = await gateway.graphql(query, {"id": video_id})
    await log.flush()

    assert response.status_code == 200
    assert response.json()["data"] == {"video": None}
    assert codes(response) == ["NOT_FOUND"]
    # The decision about it reached the log: a strange argument never holds the log back.
    assert log.dropped == dropped
    async with gateway.state["store"].private.acquire() as conn:
        logged = await conn.fetchval(
            """SELECT count(*) FROM decision_log l JOIN decision_bodies q ON q.digest = l.question
               WHERE strpos(q.body::text, $1) > 0""",
            json.dumps(video_id)[1:-1],
        )
    assert logged == 1


# --- Bad arguments -------------------------------------------------------------------------------

TIMELINE = 'query($g: Granularity!, $from: DateTime, $to: DateTime) { video(id: "video-err") { shareTimeline(granularity: $g, from: $from, to: $to) { from } } }'
GROWTH = 'query($g: Granularity!, $from: DateTime, $to: DateTime) { creator(id: "creator-err") { followerGrowth(granularity: $g, from: $from, to: $to) { from } } }'
VIDEOS = 'query($first: Int!, $after: String) { creator(id: "creator-err") { videos(first: $first, after: $after) { edges { cursor } } } }'


def cursor_of(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


@pytest.mark.parametrize(
    ("query", "variables", "path"),
    [
        pytest.param(TIMELINE, {"g": "DAY", "from": "2025-03-02T00:00:00Z", "to": "2025-03-01T00:00:00Z"}, ["video", "shareTimeline"], id="from-after-to"),
        pytest.param(TIMELINE, {"g": "DAY", "from": "2025-03-01T00:00:00Z", "to": "2025-03-01T00:00:00Z"}, ["video", "shareTimeline"], id="from-equals-to"),
        pytest.param(TIMELINE, {"g": "HOUR", "from": "2025-01-01T00:00:00Z", "to": "2025-02-01T00:00:01Z"}, ["video", "shareTimeline"], id="hours-over-31-days"),
        pytest.param(TIMELINE, {"g": "DAY", "from": "2023-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"}, ["video", "shareTimeline"], id="days-over-731-days"),
        pytest.param(TIMELINE, {"g": "WEEK", "from": "2015-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, ["video", "shareTimeline"], id="weeks-over-520"),
        pytest.param(TIMELINE, {"g": "DAY", "from": "2025-03-01T00:00:00", "to": "2025-03-02T00:00:00Z"}, ["video", "shareTimeline"], id="from-without-zone"),
        pytest.param(GROWTH, {"g": "DAY", "from": "2025-03-02T00:00:00Z", "to": "2025-03-01T00:00:00Z"}, ["creator", "followerGrowth"], id="follower-growth-from-after-to"),
        pytest.param(GROWTH, {"g": "MONTH", "from": "2010-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, ["creator", "followerGrowth"], id="months-over-3660-days"),
        pytest.param(GROWTH, {"g": "MONTH", "from": "9999-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}, ["creator", "followerGrowth"], id="year-9999"),
        pytest.param(TIMELINE, {"g": "DAY", "from": "0001-01-01T00:00:00Z", "to": "0001-01-30T00:00:00Z"}, ["video", "shareTimeline"], id="year-1"),
        pytest.param(VIDEOS, {"first": 0}, ["creator", "videos"], id="first-zero"),
        pytest.param(VIDEOS, {"first": -1}, ["creator", "videos"], id="first-negative"),
        pytest.param(VIDEOS, {"first": 101}, ["creator", "videos"], id="first-over-100"),
        pytest.param(VIDEOS, {"first": 1, "after": "not-a-cursor"}, ["creator", "videos"], id="after-not-a-cursor"),
        pytest.param(VIDEOS, {"first": 1, "after": cursor_of("published_at", "soon", VIDEO)}, ["creator", "videos"], id="after-with-text-sort-key"),
        pytest.param("{ me { shares(first: 0) { videoId } } }", None, ["me", "shares"], id="me-shares-first-zero"),
        pytest.param("{ me { likes(first: 501) { videoId } } }", None, ["me", "likes"], id="me-likes-first-over-500"),
        pytest.param("{ me { follows(first: -5) { creatorId } } }", None, ["me", "follows"], id="me-follows-first-negative"),
    ],
)
async def test_bad_argument_is_bad_user_input(gateway: Gateway, query: str, variables: dict[str, Any] | None, path: list[str]) -> None:
    response = await gateway.graphql(query, variables, principal=OWNER)

    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert (error["extensions"], error["path"]) == ({"code": "BAD_USER_INPUT"}, path)
    # A refused timeline is null on its own; a non-null field (a connection, a list) nulls its parent.
    nullable = path[1] in ("shareTimeline", "viewTimeline", "followerGrowth")
    assert response.json()["data"] == ({path[0]: {path[1]: None}} if nullable else {path[0]: None})


@pytest.mark.parametrize(
    ("granularity", "start", "end", "count"),
    [
        pytest.param("HOUR", "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z", 31 * 24, id="hours-31-days"),
        pytest.param("DAY", "2023-01-01T00:00:00Z", "2025-01-01T00:00:00Z", 731, id="days-731"),
    ],
)
async def test_range_at_the_limit_is_answered(gateway: Gateway, granularity: str, start: str, end: str, count: int) -> None:
    query = TIMELINE.replace("{ from }", "{ buckets { count } }")

    response = await gateway.graphql(query, {"g": granularity, "from": start, "to": end}, principal=OWNER)

    assert "errors" not in response.json()
    assert len(response.json()["data"]["video"]["shareTimeline"]["buckets"]) == count


async def test_cursor_with_a_sort_key_beyond_float_is_bad_user_input(gateway: Gateway) -> None:
    response = await gateway.graphql(VIDEOS, {"first": 1, "after": cursor_of("published_at", 10**400, VIDEO)})

    assert codes(response) == ["BAD_USER_INPUT"]


async def test_to_so_early_that_the_default_from_is_out_of_range_is_bad_user_input(gateway: Gateway) -> None:
    response = await gateway.graphql(TIMELINE, {"g": "DAY", "to": "0001-01-02T00:00:00Z"}, principal=OWNER)

    assert codes(response) == ["BAD_USER_INPUT"]


async def test_refused_detail_beside_a_shared_load_is_answered(gateway: Gateway) -> None:
    # `a` and `b` share the stats load; `a`'s shareChannels is refused at run time (the policy allows it
    # to users, on their own videos only). The API's details are nullable, so the refusal nulls no
    # parent and cancels nothing: the test below is the one that reaches the cancellation.
    query = """{ a: video(id: "video-err") { stats { views } shareChannels { buckets { key } } }
                 b: video(id: "video-err") { stats { views } } }"""

    try:
        response = await gateway.graphql(query, principal=VIEWER)
    except asyncio.CancelledError as exc:
        raise AssertionError("the request died with CancelledError") from exc

    assert response.status_code == 200
    assert response.json()["data"] == {"a": {"stats": {"views": 1}, "shareChannels": None}, "b": {"stats": {"views": 1}}}
    assert [(e["extensions"], e["path"]) for e in response.json()["errors"]] == [
        ({"code": "FORBIDDEN", "field": "Video.shareChannels"}, ["a", "shareChannels"])
    ]


@strawberry.type
class DetailedVideo:
    """A video with one detail that, unlike the API's, is non-null: refusing it nulls the whole object,
    so graphql-core abandons and cancels its sibling `video`, which awaits loads shared with the request."""

    owner_id: strawberry.Private[str]
    video: Video

    @strawberry.field
    async def detail(self, info: Context) -> int:
        return 0


@strawberry.type
class QueryWithADetailedVideo(Query):
    @strawberry.field
    async def detailed_video(self, info: Context, id: strawberry.ID) -> DetailedVideo | None:
        row = await info.context.video(str(id))
        assert row is not None
        return DetailedVideo(owner_id=row.creator_id, video=Video.of(row))


async def test_load_shared_with_a_field_refused_at_run_time_is_not_cancelled(gateway: Gateway) -> None:
    schema = strawberry.Schema(query=QueryWithADetailedVideo, execution_context_class=ValueListExecutionContext)
    query = """{ a: detailedVideo(id: "video-err") { video { stats { views } } detail }
                 b: video(id: "video-err") { stats { views } } }"""
    reader = ReleaseReader(gateway.store.reader)
    context = RequestContext(principal=VIEWER, pools=gateway.store, reader=reader, request_id="shared-load")
    # No policy guard runs in this schema: what it would set is set here, the detail owner-only.
    terms = PrivacyTerms.parse({**FIELD_TEST_TERMS, "granularity_floor": "HOUR"})
    context.disclosure = Disclosure(terms, reader, b"k" * 32, context.now)
    context.owner_only = frozenset({"DetailedVideo.detail"})

    try:
        result = await schema.execute(query, context_value=context)
    except asyncio.CancelledError as exc:
        raise AssertionError("the request died with CancelledError, which an ASGI server answers with HTTP 500") from exc

    assert result.data == {"a": None, "b": {"stats": {"views": 1}}}
    assert [(error.path, getattr(error.original_error, "field", None)) for error in result.errors or []] == [
        (["a", "detail"], "DetailedVideo.detail")
    ]


# --- Tokens --------------------------------------------------------------------------------------

def signed(claims: dict[str, Any]) -> str:
    """A token signed with the app's secret: a valid user token, but for `claims`."""
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "sub": CREATOR, "kind": "user", "iat": now, "exp": now + 300, **claims}, APP_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda: "Bearer not-a-jwt", id="malformed"),
        pytest.param(lambda: f"Bearer {signed({'iat': int(time.time()) - 120, 'exp': int(time.time()) - 60})}", id="expired"),
        pytest.param(lambda: f"Bearer {create_token('another-secret-' + 'x' * 32, PrincipalKind.USER, CREATOR, 60)}", id="wrong-secret"),
        pytest.param(lambda: f"Bearer {signed({'exp': None})}", id="exp-null"),
        pytest.param(lambda: f"Bearer {jwt.encode({'iss': ISSUER, 'sub': CREATOR, 'kind': 'user', 'iat': int(time.time())}, APP_SECRET)}", id="no-exp"),
        pytest.param(lambda: f"Bearer {signed({'kind': 'root'})}", id="unknown-kind"),
        pytest.param(lambda: f"Bearer {signed({'kind': 'anonymous'})}", id="anonymous-kind"),
        pytest.param(lambda: f"Bearer {signed({'iss': 'someone-else'})}", id="other-issuer"),
        pytest.param(lambda: f"Basic {create_token(APP_SECRET, PrincipalKind.USER, CREATOR, 60)}", id="wrong-scheme"),
        pytest.param(lambda: "Bearer ", id="empty-bearer"),
    ],
)
@pytest.mark.parametrize(
    "query",
    [
        pytest.param(PUBLIC_QUERY, id="valid-document"),
        # Authentication comes first: a broken document behind a bad token is still a 401, not a parse error.
        pytest.param("{ video(id: ", id="broken-document"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_bad_token_is_401_and_nothing_runs(gateway: Gateway, method: str, query: str, header: Any) -> None:
    headers = {"Authorization": header()}

    if method == "POST":
        response = await gateway.http.post("/graphql", json={"query": query}, headers=headers)
    else:
        response = await gateway.http.get("/graphql", params={"query": query}, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert list(body) == ["errors"]
    assert [error["extensions"] for error in body["errors"]] == [{"code": "UNAUTHENTICATED"}]


# --- Limits --------------------------------------------------------------------------------------

def ids(count: int) -> str:
    """A document of exactly 10 + count lexical tokens: { video ( id : "video-err" ) { id*count } }."""
    return '{ video(id: "video-err") { ' + "id " * count + "} }"


def aliases(count: int) -> str:
    return "{ " + " ".join(f'v{n}: video(id: "video-err") {{ id }}' for n in range(count)) + " }"


VIDEO_FIELDS = "id creatorId publishedAt stats { views likes comments shares likeRatio engagementRate averageWatchSeconds completionRate }"


def fields(count: int) -> str:
    """A document of exactly `count` response paths (13 under each aliased video, the rest __typename)."""
    videos, rest = divmod(count, 13)
    selections = [f'v{n}: video(id: "video-err") {{ {VIDEO_FIELDS} }}' for n in range(videos)]
    selections += ["__typename"] + [f"t{n}: __typename" for n in range(rest - 1)]
    return "{ " + " ".join(selections) + " }"


def fragments_spread_over_and_over() -> str:
    spreads = [f"fragment {name} on Query {{ {f'...{following} ' * 9}}}" for name, following in zip("abcdefghi", "bcdefghij")]
    return "{ ...a } " + " ".join(spreads) + f' fragment j on Query {{ video(id: "video-err") {{ {VIDEO_FIELDS} }} }}'


def nested(depth: int) -> str:
    """Fields nested `depth` deep (no schema has them; the limit is checked on the document)."""
    return "{ " + " { ".join(f"f{n}" for n in range(depth)) + " }" * depth


def nested_through_fragments(depth: int) -> str:
    """The same depth, reached by each level spreading the next level's fragment."""
    fragments = [f"fragment l{n} on Query {{ f{n} {{ ...l{n + 1} }} }}" for n in range(depth - 1)]
    return "{ ...l0 } " + " ".join(fragments) + f" fragment l{depth - 1} on Query {{ f{depth - 1} }}"


def commented(count: int) -> str:
    return "#\n" * count + PUBLIC_QUERY


def padded(length: int) -> str:
    return PUBLIC_QUERY + " " * (length - len(PUBLIC_QUERY))


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(ids(1990), id="2000-tokens"),
        pytest.param(aliases(30), id="30-aliases"),
        pytest.param(fields(300), id="300-fields"),
        # Nine fragments each spreading the next nine times: 9^9 spreads of one selection, walked once.
        pytest.param(fragments_spread_over_and_over(), id="fragments-spread-over-and-over"),
        pytest.param(graphql.get_introspection_query(descriptions=True, specified_by_url=True, input_value_deprecation=True), id="introspection"),
        pytest.param(commented(100), id="100-comments"),
        pytest.param(padded(20_000), id="20000-characters"),
        pytest.param(nested(10), id="depth-10"),
        pytest.param(nested_through_fragments(10), id="depth-10-through-fragments"),
    ],
)
async def test_document_within_the_limits_is_not_too_complex(gateway: Gateway, document: str) -> None:
    response = await gateway.graphql(document)

    assert response.status_code == 200
    assert "QUERY_TOO_COMPLEX" not in [error["extensions"]["code"] for error in response.json().get("errors", [])]


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(ids(1991), id="2001-tokens"),
        pytest.param(aliases(31), id="31-aliases"),
        pytest.param(fields(301), id="301-fields"),
        pytest.param("{ " + " ".join(f'c{n}: creator(id: "creator-err") {{ totals {{ views }} videos(first: 100) {{ edges {{ node {{ {VIDEO_FIELDS} }} }} }} }}' for n in range(20)) + " }", id="20-aliased-creators"),
        pytest.param(commented(101), id="101-comments"),
        pytest.param(padded(20_001), id="20001-characters"),
        pytest.param(nested(11), id="depth-11"),
        pytest.param(nested_through_fragments(11), id="depth-11-through-fragments"),
    ],
)
async def test_document_over_a_limit_is_too_complex(gateway: Gateway, document: str) -> None:
    response = await gateway.graphql(document)

    assert response.status_code == 200
    assert list(response.json()) == ["errors"]  # refused before the policy decided: no `extensions.privacy`
    assert "QUERY_TOO_COMPLEX" in codes(response)


@pytest.mark.parametrize(
    ("document", "limit"),
    [pytest.param(ids(1991), "2000 tokens", id="2001-tokens"), pytest.param(commented(101), "100 comments", id="101-comments")],
)
async def test_document_over_a_parser_limit_is_refused_unparsed(gateway: Gateway, document: str, limit: str) -> None:
    # Whatever its code (QUERY_TOO_COMPLEX is the xfail above), the parser aborts and nothing runs.
    response = await gateway.graphql(document)

    [error] = response.json()["errors"]
    assert list(response.json()) == ["errors"]
    assert limit in error["message"]


async def test_document_at_the_limits_is_answered(gateway: Gateway) -> None:
    response = await gateway.graphql(aliases(30))

    assert response.json() == {"data": {f"v{n}": {"id": VIDEO} for n in range(30)}, "extensions": {"privacy": field_test_privacy("DAY")}}


# --- GET, and bodies that are no GraphQL request ----------------------------------------------

async def test_get_with_a_query_is_answered(gateway: Gateway) -> None:
    query = "query($id: ID!) { video(id: $id) { id stats { views shares } } }"

    response = await gateway.http.get("/graphql", params={"query": query, "variables": json.dumps({"id": VIDEO})})

    assert response.status_code == 200
    assert response.json() == {
        "data": {"video": {"id": VIDEO, "stats": {"views": 1, "shares": 1}}},
        "extensions": {"privacy": field_test_privacy("DAY")},
    }


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"query": "mutation { video }"}, id="mutation"),
        pytest.param({"query": "subscription { video }"}, id="subscription"),
        pytest.param({"query": "query q { video(id: \"video-err\") { id } } mutation m { video }", "operationName": "m"}, id="named-mutation"),
        pytest.param({"query": PUBLIC_QUERY, "operationName": "nonexistent"}, id="unknown-operation"),
    ],
)
async def test_get_with_anything_but_a_query_is_405(gateway: Gateway, params: dict[str, str]) -> None:
    response = await gateway.http.get("/graphql", params=params)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert codes(response) == ["BAD_USER_INPUT"]
    assert list(response.json()) == ["errors"]  # refused before the policy decided: no `extensions.privacy`


async def test_post_with_a_mutation_is_refused_by_validation(gateway: Gateway) -> None:
    response = await gateway.graphql("mutation { video }")

    assert response.status_code == 200
    assert codes(response) == ["GRAPHQL_VALIDATION_FAILED"]
    assert list(response.json()) == ["errors"]  # refused before the policy decided: no `extensions.privacy`


async def test_body_over_the_limit_is_413_unread(gateway: Gateway) -> None:
    limit = gateway.state["settings"].max_body
    body = b'{"query": "{ __typename }", "variables": {"pad": "' + b"x" * limit + b'"}}'

    response = await gateway.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_undeclared_variables_are_ignored_whatever_they_hold(gateway: Gateway) -> None:
    response = await gateway.http.post(
        "/graphql", json={"query": "{ __typename }", "variables": {"big": 10**40, "other": "x" * 1000}}
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"__typename": "Query"}


async def test_an_integer_beyond_64_bits_is_read_as_sent(gateway: Gateway) -> None:
    """orjson would read it as a float (1.2345678901234568e+29); the json module keeps every digit."""
    body = b'{"query": "query ($s: String!) { creator(id: \\"c1\\") { audienceActivity(timeZone: $s) { timeZone } } }", "variables": {"s": 123456789012345678901234567890}}'
    response = await gateway.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})

    assert codes(response) == ["BAD_USER_INPUT"]
    assert "123456789012345678901234567890" in response.json()["errors"][0]["message"], response.text


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b"{ video(id: 1) { id } }", "application/json", id="graphql-text-as-json"),
        pytest.param(b'{"query": "{ video', "application/json", id="truncated-json"),
        pytest.param(b"\xff\xfe{}", "application/json", id="not-utf8"),
        pytest.param(b"", "application/json", id="empty"),
        pytest.param(b'["{ video(id: \\"video-err\\") { id } }"]', "application/json", id="array"),
        pytest.param(b'{"variables": {}}', "application/json", id="no-query"),
        pytest.param(b'{"query": "   "}', "application/json", id="blank-query"),
        pytest.param(b'{"query": 42}', "application/json", id="query-not-a-string"),
        pytest.param(b'{"query": "{ video(id: \\"v\\") { id } }", "variables": [1]}', "application/json", id="variables-not-an-object"),
        pytest.param(b'{"query": "{ video(id: \\"v\\") { id } }", "operationName": 7}', "application/json", id="operation-name-not-a-string"),
        pytest.param(b'{"query": "{ video(id: \\"v\\") { id } }"}', "text/plain", id="not-json-media-type"),
        pytest.param(b'{"query": "{ __typename }", "variables": {"to": NaN}}', "application/json", id="variables-with-nan"),
        pytest.param(b'{"query": "{ __typename }", "variables": {"n": -Infinity}}', "application/json", id="variables-with-infinity"),
        pytest.param(b'{"query": "{ __typename }", "variables": {"n": 1e400}}', "application/json", id="variables-with-1e400"),
        pytest.param(b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "application/json", id="variables-nested-100000-deep"),
        pytest.param(b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 9 + b"]" * 9 + b"}}", "application/json", id="variables-nested-9-deep"),
        pytest.param(b'{"query": "{ __typename }", "variables": {"a": "' + b"x" * 17_000 + b'"}}', "application/json", id="variables-over-16-kb"),
    ],
)
async def test_post_body_that_is_no_graphql_request_is_400(gateway: Gateway, content: bytes, content_type: str) -> None:
    response = await gateway.http.post("/graphql", content=content, headers={"Content-Type": content_type})

    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]
    assert list(response.json()) == ["errors"]  # refused before the policy decided: no `extensions.privacy`


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no-query"),
        pytest.param({"query": PUBLIC_QUERY, "variables": "{not json"}, id="variables-not-json"),
    ],
)
async def test_get_that_is_no_graphql_request_is_400(gateway: Gateway, params: dict[str, str]) -> None:
    response = await gateway.http.get("/graphql", params=params)

    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]


# --- Typos: never a suggestion ---------------------------------------------------------------

# (query, variables, the name a suggestion would give, whether graphql-core left alone suggests it).
# graphql-core suggests no directive names today; that case guards against it starting to.
TYPOS = [
    pytest.param('{ video(id: "video-err") { creatorld } }', None, "creatorId", True, id="field"),
    pytest.param('{ creator(id: "creator-err") { totals { folowers } } }', None, "followers", True, id="field-of-nested-type"),
    pytest.param('{ video(id: "video-err") { shareTimeline(granularty: DAY) { from } } }', None, "granularity", True, id="argument-name"),
    pytest.param('fragment f on Vidoe { id } { video(id: "video-err") { ...f } }', None, "Video", True, id="type-in-fragment"),
    pytest.param('{ video(id: "video-err") { shareTimeline(granularity: WEKE) { from } } }', None, "WEEK", True, id="enum-literal"),
    pytest.param('{ creator(id: "creator-err") { videos(orderBy: SHARE) { edges { cursor } } } }', None, "SHARES", True, id="enum-literal-prefix"),
    pytest.param('query($g: Granularity!) { video(id: "video-err") { shareTimeline(granularity: $g) { from } } }', {"g": "MONHT"}, "MONTH", True,
                 id="enum-in-variables"),
    pytest.param('query($g: Granularty) { video(id: "video-err") { id } }', None, "Granularity", True, id="variable-type"),
    pytest.param('{ video(id: "video-err") @inclde(if: true) { id } }', None, "include", False, id="directive"),
]


@pytest.mark.parametrize(("query", "variables", "correct", "graphql_core_suggests"), TYPOS)
async def test_typo_gets_no_suggestion(
    gateway: Gateway, query: str, variables: dict[str, Any] | None, correct: str, graphql_core_suggests: bool
) -> None:
    control = graphql.graphql_sync(build_schema()._schema, query, variable_values=variables)
    assert control.errors
    assert any("Did you mean" in e.message and correct in e.message for e in control.errors) is graphql_core_suggests

    response = await gateway.graphql(query, variables, principal=OWNER)

    assert response.status_code == 200
    assert response.json()["errors"]
    assert "Did you mean" not in response.text
    assert correct not in response.text


# --- Unexpected errors ---------------------------------------------------------------------------

QUERY_CHANNELS = '{ video(id: "video-err") { id shareChannels { buckets { key count } } } }'


async def test_unexpected_error_is_masked_and_logged_with_the_request_id(
    gateway: Gateway, admin: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    # A resolver meeting a privilege it lacks is the defence in depth working, and no answer for the client.
    await admin.execute("REVOKE SELECT ON release_cells FROM gateway_reader")
    gateway.forget_kept_answers()  # no cells or answers kept from an earlier test: they must be read
    try:
        with caplog.at_level(logging.ERROR, logger="gateway"):
            response = await gateway.http.post(
                "/graphql",
                json={"query": QUERY_CHANNELS},
                headers={"X-Request-Id": "req-masked-1", **authorization(OWNER)},
            )
    finally:
        await admin.execute("GRANT SELECT ON release_cells TO gateway_reader")

    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "req-masked-1"
    assert response.json()["errors"] == [{
        "message": "Unexpected error.",
        "extensions": {"code": "INTERNAL", "requestId": "req-masked-1"},
        "locations": [{"line": 1, "column": QUERY_CHANNELS.index("shareChannels") + 1}],
        "path": ["video", "shareChannels"],
    }]
    assert "permission" not in response.text and "release_cells" not in response.text
    [record] = [r for r in caplog.records if "req-masked-1" in r.getMessage()]
    assert record.exc_info is not None and isinstance(record.exc_info[1], asyncpg.InsufficientPrivilegeError)


@pytest.mark.parametrize(
    ("query", "operation_name"),
    [
        pytest.param("query A { __typename } query B { __typename }", "C", id="no-such-name"),
        pytest.param("query A { __typename } query B { __typename }", None, id="several-and-no-name"),
    ],
)
async def test_operation_name_that_selects_nothing_is_bad_user_input(gateway: Gateway, query: str, operation_name: str | None) -> None:
    body: dict[str, Any] = {"query": query}
    if operation_name is not None:
        body["operationName"] = operation_name
    response = await gateway.http.post("/graphql", json=body)

    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"]


async def test_distinct_large_variables_leave_nothing_behind(gateway: Gateway) -> None:
    """A client sending a different large variable each time (declared or not) grows no cache."""
    query = "query($id: ID!) { video(id: $id) { id } }"

    async def send_all() -> list[int]:
        statuses = []
        for number in range(100):
            padding = f"{number:04d}" + "x" * 900_000
            for variables in ({"id": padding}, {"id": "video-err", "undeclared": padding}):
                response = await gateway.http.post("/graphql", json={"query": query, "variables": variables})
                statuses.append(response.status_code)
        return statuses

    await send_all()  # first, so that what is allocated once (pools, compiled statements) is not counted
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        statuses = await send_all()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert set(statuses) == {400}  # variables over 16 KB, declared or not, are refused before anything keeps them
    assert grown < 5 * 1024 * 1024, grown  # 200 requests carried 180 MB


async def lost_while_waiting(admin: asyncpg.Connection, table: str, request: Any) -> httpx.Response:
    """Sends `request` while `table` is locked, and kills the gateway's connection once it waits on
    the lock (as a Postgres restart does); the response."""
    async with admin.transaction():
        await admin.execute(await admin.fetchval("SELECT format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', $1::text)", table))
        asking = asyncio.ensure_future(request)
        waiting: list[int] = []
        while not waiting and not asking.done():  # polls a condition the request sets, with no timing in it
            waiting = [row[0] for row in await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE usename = 'gateway_reader' AND wait_event_type = 'Lock' AND datname = current_database()"
            )]
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", waiting)
        response: httpx.Response = await asking
        return response


async def test_store_lost_mid_request_is_503_store_unavailable_then_recovered(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """The gateway's connection killed while it waits on the store (as a Postgres restart does): the
    request is refused 503 STORE_UNAVAILABLE, never INTERNAL, and the next one is answered."""
    query = '{ video(id: "video-err") { id stats { views } } }'
    # every request's first read waits here
    response = await lost_while_waiting(admin, "catalog_version", gateway.graphql(query, principal=OWNER))

    assert (response.status_code, codes(response)) == (503, ["STORE_UNAVAILABLE"])
    assert response.headers["retry-after"] == "5"
    assert "127.0.0.1" not in response.text and "5432" not in response.text
    recovered = await gateway.graphql(query, principal=OWNER)
    assert recovered.status_code == 200 and "errors" not in recovered.json(), recovered.text


async def test_a_read_past_its_statement_timeout_is_503_store_unavailable(database_url: str, admin: asyncpg.Connection) -> None:
    async with running_gateway(database_url, statement_timeout=0.5) as impatient:
        async with admin.transaction():
            await admin.execute("LOCK TABLE catalog_version IN ACCESS EXCLUSIVE MODE")  # held until Postgres cancels the read
            response = await impatient.graphql('{ video(id: "video-err") { id } }', principal=OWNER)

    assert (response.status_code, codes(response)) == (503, ["STORE_UNAVAILABLE"])
    assert response.headers["retry-after"] == "5"


async def test_a_request_that_finds_every_connection_taken_is_503_within_the_pool_timeout(database_url: str) -> None:
    """Every reader connection held (a stuck store, or a flood of slow reads): the next request waits
    at most `pool_timeout` for one, then gets 503 STORE_UNAVAILABLE with Retry-After, not a queue."""
    async with running_gateway(database_url, pool_timeout=0.5) as crowded:
        reader = crowded.store.reader
        held = [await reader.acquire() for _ in range(reader.get_max_size())]
        try:
            response = await crowded.graphql(PUBLIC_QUERY, principal=OWNER)
        finally:
            for connection in held:
                await reader.release(connection)
        recovered = await crowded.graphql(PUBLIC_QUERY, principal=OWNER)

    assert (response.status_code, codes(response)) == (503, ["STORE_UNAVAILABLE"])
    assert response.headers["retry-after"] == "5"
    assert recovered.status_code == 200 and "errors" not in recovered.json(), recovered.text


async def test_a_body_that_stops_arriving_is_408_within_the_body_timeout(database_url: str) -> None:
    """A client that declares more than it sends (or trickles) gets 408 once `body_timeout` has passed,
    and the connection is closed rather than held for the rest."""
    never = asyncio.Event()

    async def stalls() -> Any:
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        await never.wait()

    async with running_gateway(database_url, body_timeout=0.5) as impatient:
        started = time.monotonic()
        response = await impatient.http.post(
            "/graphql", content=stalls(), headers={"content-type": "application/json", "content-length": "2000", **authorization(OWNER)}
        )
        waited = time.monotonic() - started

    assert (response.status_code, codes(response)) == (408, ["BAD_USER_INPUT"])
    assert response.headers["connection"] == "close"
    assert "did not arrive within 0.5 s" in response.json()["errors"][0]["message"]
    assert waited < 30  # bounded by the body timeout, not by the client


def test_a_kept_question_weighs_at_least_what_it_holds() -> None:
    """The guard's question cache is bounded by weights; a weight must not understate the memory."""
    from gateway.graphql import policy_guard
    from gateway.policy.fields import select_operation

    schema = build_schema()._schema
    for document in (fields(300), fields(20), PUBLIC_QUERY + " " * 19_000):
        query = document + " "  # a text no other test kept
        parsed = graphql.parse(query)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            policy_guard._question(schema, query, parsed, select_operation(parsed, None), None)
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert policy_guard._weigh(query, policy_guard._questions[(id(schema), query, b"{}", None)][0]) >= held


async def test_a_lone_surrogate_is_bad_input_not_a_policy_outage(gateway: Gateway) -> None:
    """Valid JSON text, but no Unicode string: refused as the client's error (the red team got 503
    POLICY_UNAVAILABLE, an outage any client could raise at will)."""
    body = b'{"query": "query($id: ID!) { video(id: $id) { id } }", "variables": {"id": "\\udfff"}}'
    response = await gateway.http.post("/graphql", content=body, headers={"content-type": "application/json"})

    assert (response.status_code, codes(response)) == (400, ["BAD_USER_INPUT"])


async def test_a_store_lost_under_the_only_root_field_is_503_not_a_200_with_null(database_url: str, admin: asyncpg.Connection) -> None:
    """With no whole answers kept (no version read first), the store is first read by a resolver; lost
    there under the request's only root field, nothing was answered: 503, as the README promises, not
    200 with `video: null` (the red team's re-check)."""
    query = '{ video(id: "video-err") { id stats { views } } }'
    async with running_gateway(database_url, response_cache_mb=0) as uncached:
        # the resolver's first read waits here
        response = await lost_while_waiting(admin, "videos", uncached.graphql(query, principal=OWNER))

    assert (response.status_code, codes(response)) == (503, ["STORE_UNAVAILABLE"])
    assert response.headers["retry-after"] == "5"
