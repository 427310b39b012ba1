"""`POST /events` end to end: the real app, its lifespan, and the module's own Postgres database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from gateway.auth import ISSUER, PrincipalKind, create_app_token, create_token
from gateway.policy.worker import PolicyFiles

from harness import APP_SECRET, TestClock, roomy_policies, running_gateway

MAX_INGEST_BYTES = 64 * 1024
NDJSON = {"Content-Type": "application/x-ndjson"}
AT = "2025-06-01T12:{minute:02d}:00Z"


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app, its lifespan run as a server runs it, on 2025-06-01 just after the
    hour the events here occur in (well inside the lateness window)."""
    clock = TestClock(datetime(2025, 6, 1, 13, tzinfo=UTC))
    async with running_gateway(database_url, clock=clock, max_ingest_bytes=MAX_INGEST_BYTES) as gateway:
        yield gateway.http


def token(kind: PrincipalKind, subject: str = "ingest-bot") -> str:
    if kind is PrincipalKind.APP:
        # An app acting for user `subject`, with every scope a user can grant: still no ingest.
        return create_app_token(APP_SECRET, "app-1", subject, ["activity", "insights", "stats"], ttl_seconds=300)
    return create_token(APP_SECRET, kind, subject, ttl_seconds=300)


def service_headers(**extra: str) -> dict[str, str]:
    return {**NDJSON, "Authorization": f"Bearer {token(PrincipalKind.SERVICE)}", **extra}


def ndjson(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(event).encode() + b"\n" for event in events)


def video_events(video_id: str, creator_id: str = "u1") -> list[dict[str, Any]]:
    """A published video with two viewers (three views), a like, a share and a follow of its creator."""
    common = {"video_id": video_id, "creator_id": creator_id}
    return [
        {"event_id": f"{video_id}-pub", "type": "video_published", "occurred_at": AT.format(minute=0), **common, "actor_id": creator_id},
        {"event_id": f"{video_id}-view-1", "type": "view", "occurred_at": AT.format(minute=5), **common, "actor_id": "u2",
         "watch_ms": 4000, "completed": True, "region": "DE", "age_band": "18-24"},
        {"event_id": f"{video_id}-view-2", "type": "view", "occurred_at": AT.format(minute=6), **common, "actor_id": "u3",
         "watch_ms": 1000, "region": "FR", "age_band": "25-34"},
        {"event_id": f"{video_id}-view-3", "type": "view", "occurred_at": AT.format(minute=7), **common, "actor_id": "u2", "watch_ms": 500},
        {"event_id": f"{video_id}-like", "type": "like", "occurred_at": AT.format(minute=8), **common, "actor_id": "u2"},
        {"event_id": f"{video_id}-share", "type": "share", "occurred_at": AT.format(minute=9), **common, "actor_id": "u3",
         "channel": "whatsapp", "region": "FR"},
        {"event_id": f"{video_id}-follow", "type": "follow", "occurred_at": AT.format(minute=10), "creator_id": creator_id, "actor_id": "u3"},
    ]


async def stored_ids(admin: asyncpg.Connection, prefix: str) -> list[str]:
    rows = await admin.fetch("SELECT event_id FROM events WHERE event_id LIKE $1 || '%' ORDER BY event_id", prefix)
    return [row["event_id"] for row in rows]


async def test_post_events_stores_the_batch_and_counts_it(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    events = video_events("v-store", creator_id="c-store")

    response = await client.post("/events", content=ndjson(*events), headers=service_headers())

    assert response.status_code == 200
    assert response.json() == {"received": 7, "inserted": 7, "duplicates": 0, "erased": 0}
    assert await stored_ids(admin, "v-store-") == sorted(event["event_id"] for event in events)
    video = await admin.fetchrow("SELECT creator_id, published_at FROM videos WHERE video_id = 'v-store'")
    assert (video["creator_id"], video["published_at"].isoformat()) == ("c-store", "2025-06-01T12:00:00+00:00")
    totals = await admin.fetch(
        "SELECT metric::text, events, people, watch_capped_ms FROM live_totals WHERE subject_id IN ('v-store', 'c-store') ORDER BY metric"
    )
    # 'a': the creator's audience, the video's two viewers (migration 0023).
    assert [tuple(row) for row in totals] == [("a", 2, 2, 0), ("f", 1, 1, 0), ("l", 1, 1, 0), ("s", 1, 1, 0), ("v", 3, 2, 5500)]
    cells = await admin.fetch(
        "SELECT dimension::text, value, events, people FROM live_cells WHERE subject_id = 'v-store' AND dimension IN ('c', 'r', 'w') ORDER BY 1, 2"
    )
    # Completion counts views and their viewers: u2 finished one view and not another, u3 did not finish.
    assert [tuple(row) for row in cells] == [
        ("c", "whatsapp", 1, 1), ("r", "DE", 1, 1), ("r", "FR", 1, 1), ("r", "unknown", 1, 1),
        ("w", "completed", 1, 1), ("w", "not_completed", 2, 2),
    ]


async def test_post_events_retried_batch_stores_nothing_twice(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    body = ndjson(*video_events("v-retry"))
    first = await client.post("/events", content=body, headers=service_headers())
    counted = "SELECT array_agg((metric::text, events, people) ORDER BY metric)::text FROM live_totals WHERE subject_id = 'v-retry'"
    after_first = await admin.fetchval(counted)

    retried = await client.post("/events", content=body, headers=service_headers())

    assert first.json() == {"received": 7, "inserted": 7, "duplicates": 0, "erased": 0}
    assert retried.status_code == 200
    assert retried.json() == {"received": 7, "inserted": 0, "duplicates": 7, "erased": 0}
    assert len(await stored_ids(admin, "v-retry-")) == 7
    assert await admin.fetchval(counted) == after_first == '{"(l,1,1)","(s,1,1)","(v,3,2)"}'


async def test_post_events_duplicate_within_a_batch_is_stored_once(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    view = video_events("v-twice")[1]

    response = await client.post("/events", content=ndjson(view, view), headers=service_headers())

    assert response.json() == {"received": 2, "inserted": 1, "duplicates": 1, "erased": 0}
    assert await stored_ids(admin, "v-twice-") == ["v-twice-view-1"]
    assert await admin.fetchval("SELECT events FROM live_totals WHERE subject_id = 'v-twice' AND metric = 'v'") == 1


async def test_post_events_skips_blank_lines_and_crlf(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    events = video_events("v-blank")[:2]
    body = b"\r\n".join(json.dumps(event).encode() for event in events).replace(b"\r\n", b"\r\n\r\n   \r\n")

    response = await client.post("/events", content=body, headers=service_headers())

    assert response.json() == {"received": 2, "inserted": 2, "duplicates": 0, "erased": 0}
    assert await stored_ids(admin, "v-blank-") == ["v-blank-pub", "v-blank-view-1"]


async def test_post_events_bad_line_is_named_and_nothing_is_stored(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    events = video_events("v-bad")
    events[2] = {**events[2], "region": "XX"}

    response = await client.post("/events", content=ndjson(*events), headers=service_headers())

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BAD_USER_INPUT"
    assert error["total"] == 1
    assert error["lines"] == [{"line": 3, "field": "region", "reason": "must be an ISO 3166-1 alpha-2 country code, e.g. DE"}]
    assert await stored_ids(admin, "v-bad-") == []
    assert await admin.fetchval("SELECT count(*) FROM videos WHERE video_id = 'v-bad'") == 0


async def test_post_events_error_report_lists_100_lines_and_counts_all(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    good = video_events("v-many")[0]
    bad = [{**good, "event_id": f"v-many-{n}", "type": "like", "channel": "x"} for n in range(150)]

    response = await client.post("/events", content=ndjson(good, *bad), headers=service_headers())

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["total"] == 150
    assert [entry["line"] for entry in error["lines"]] == list(range(2, 102))
    assert {(entry["field"], entry["reason"]) for entry in error["lines"]} == {("channel", "not a field of this event type")}
    assert await stored_ids(admin, "v-many-") == []


NUL_IN_TEXT = "must not contain a NUL character (\\u0000): the store cannot hold one"
NOT_AN_INTEGER = "must be a JSON integer, not a string, a boolean or a number with a fraction"
NOT_RFC_3339 = "must be an RFC 3339 date-time string with an offset, e.g. 2026-11-27T12:00:00Z"


def comment(video_id: str, text: str) -> dict[str, Any]:
    return {"event_id": f"{video_id}-comment", "type": "comment", "occurred_at": AT.format(minute=11), "video_id": video_id,
            "creator_id": "u1", "actor_id": "u2", "text": text}


@pytest.mark.parametrize(
    ("bad_line", "field", "reason"),
    [
        pytest.param(b'{"event_id": "v-kind-x",', None, "not valid JSON: ", id="not-json"),
        pytest.param(b"[1, 2]", None, "not a JSON object", id="not-an-object"),
        pytest.param(json.dumps({"event_id": "v-kind-x", "type": "repost"}).encode(), "type", "must be one of", id="unknown-type"),
        pytest.param(json.dumps(comment("v-kind", "a\u0000b")).encode(), "text", NUL_IN_TEXT, id="nul-in-text"),
        pytest.param(json.dumps({**video_events("v-kind")[1], "watch_ms": "5"}).encode(), "watch_ms", NOT_AN_INTEGER, id="integer-as-string"),
        pytest.param(json.dumps({**video_events("v-kind")[1], "completed": 1}).encode(), "completed", "must be true or false", id="flag-as-number"),
        pytest.param(json.dumps({**video_events("v-kind")[4], "occurred_at": 1748779200}).encode(), "occurred_at", NOT_RFC_3339, id="time-as-number"),
        pytest.param(json.dumps({**video_events("v-kind")[4], "occurred_at": "2025-06-03T12:00:00Z"}).encode(), "occurred_at",
                     "must not be more than a day in the future", id="too-far-ahead"),
        pytest.param(json.dumps({**video_events("v-kind")[4], "occurred_at": "2025-05-01T12:00:00Z"}).encode(), "occurred_at",
                     "must not be more than 7 days in the past", id="too-late"),
        pytest.param(json.dumps({**video_events("v-kind")[4], "video_id": None}).encode(), "video_id", "must be a JSON string", id="null-id"),
    ],
)
async def test_post_events_names_the_line_of_every_kind_of_bad_line(
    client: httpx.AsyncClient, admin: asyncpg.Connection, bad_line: bytes, field: str | None, reason: str
) -> None:
    good = video_events("v-kind")
    body = ndjson(good[0]) + bad_line + b"\n" + ndjson(good[5])

    response = await client.post("/events", content=body, headers=service_headers())

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["total"], error["bad_lines"]) == (1, 1)
    ((line, named_field, told),) = [(entry["line"], entry["field"], entry["reason"]) for entry in error["lines"]]
    assert (line, named_field) == (2, field)
    assert told.startswith(reason)
    assert await stored_ids(admin, "v-kind-") == []


async def test_post_events_nul_in_a_comment_is_named_by_line_and_nothing_is_stored(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    events = [*video_events("v-nul"), comment("v-nul", "fine"), {**comment("v-nul", "a\u0000b"), "event_id": "v-nul-comment-2"}]

    response = await client.post("/events", content=ndjson(*events), headers=service_headers())

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BAD_USER_INPUT"
    assert error["lines"] == [{"line": 9, "field": "text", "reason": NUL_IN_TEXT}]
    assert await stored_ids(admin, "v-nul-") == []


async def test_post_events_values_of_another_json_type_are_refused_by_line(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    events = video_events("v-strict")
    events[0] = {**events[0], "occurred_at": 1748779200}
    events[2] = {**events[2], "watch_ms": "5"}

    response = await client.post("/events", content=ndjson(*events), headers=service_headers())

    assert response.status_code == 400
    assert response.json()["error"]["lines"] == [
        {"line": 1, "field": "occurred_at", "reason": NOT_RFC_3339},
        {"line": 3, "field": "watch_ms", "reason": NOT_AN_INTEGER},
    ]
    assert await stored_ids(admin, "v-strict-") == []


@pytest.mark.parametrize(
    "body",
    [pytest.param(b"", id="empty"), pytest.param(b"\n \n\r\n", id="only-blank-lines")],
)
async def test_post_events_without_events_is_bad_input(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/events", content=body, headers=service_headers())

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("video_id", "content_type"),
    [
        pytest.param("v-type-1", "application/x-ndjson", id="x-ndjson"),
        pytest.param("v-type-2", "application/jsonl", id="jsonl"),
        pytest.param("v-type-3", "application/json-lines", id="json-lines"),
        pytest.param("v-type-4", "application/x-ndjson; charset=utf-8", id="with-parameter"),
        pytest.param("v-type-5", "Application/X-NDJSON", id="mixed-case"),
    ],
)
async def test_post_events_accepts_ndjson_media_types(
    client: httpx.AsyncClient, admin: asyncpg.Connection, video_id: str, content_type: str
) -> None:
    response = await client.post("/events", content=ndjson(*video_events(video_id)), headers=service_headers(**{"Content-Type": content_type}))

    assert response.status_code == 200
    assert response.json()["inserted"] == 7
    assert len(await stored_ids(admin, f"{video_id}-")) == 7


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/json", id="json"),
        pytest.param("text/plain", id="text"),
        pytest.param("multipart/form-data; boundary=x", id="multipart"),
        pytest.param(None, id="missing"),
    ],
)
async def test_post_events_other_media_type_is_415(client: httpx.AsyncClient, admin: asyncpg.Connection, content_type: str | None) -> None:
    headers = service_headers()
    del headers["Content-Type"]
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = await client.post("/events", content=ndjson(*video_events("v-415")), headers=headers)

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"
    assert await stored_ids(admin, "v-415-") == []


async def test_post_events_body_at_the_limit_is_accepted(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    body = ndjson(*video_events("v-limit")[:2])
    body += b" " * (MAX_INGEST_BYTES - len(body))

    response = await client.post("/events", content=body, headers=service_headers())

    assert len(body) == MAX_INGEST_BYTES
    assert response.status_code == 200
    assert await stored_ids(admin, "v-limit-") == ["v-limit-pub", "v-limit-view-1"]


class ChunkedBody:
    """A request body that arrives in chunks of a quarter of the limit; counts the chunks the app has read."""

    def __init__(self, video_id: str, size: int) -> None:
        body = ndjson(*video_events(video_id))
        body += b" " * (size - len(body))
        step = MAX_INGEST_BYTES // 4
        self.chunks = [body[start : start + step] for start in range(0, size, step)]
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk


async def test_post_events_declared_length_over_the_limit_is_413_unread(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    body = ChunkedBody("v-413-declared", size=1000)

    response = await client.post("/events", content=body, headers=service_headers(**{"Content-Length": str(MAX_INGEST_BYTES + 1)}))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"
    assert str(MAX_INGEST_BYTES) in response.json()["error"]["message"]
    assert body.read == 0
    assert await stored_ids(admin, "v-413-declared-") == []


@pytest.mark.parametrize(
    ("video_id", "content_length"),
    [
        pytest.param("v-413-chunked", None, id="no-content-length"),
        pytest.param("v-413-understated", "100", id="understated-content-length"),
    ],
)
async def test_post_events_streamed_body_over_the_limit_is_413_when_it_passes_the_limit(
    client: httpx.AsyncClient, admin: asyncpg.Connection, video_id: str, content_length: str | None
) -> None:
    body = ChunkedBody(video_id, size=2 * MAX_INGEST_BYTES)
    headers = service_headers() if content_length is None else service_headers(**{"Content-Length": content_length})

    response = await client.post("/events", content=body, headers=headers)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"
    # Four chunks fill the limit exactly; the fifth passes it, and reading stops there.
    assert (body.read, len(body.chunks)) == (5, 8)
    assert await stored_ids(admin, f"{video_id}-") == []


async def test_post_events_streamed_body_at_the_limit_is_accepted(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    body = ChunkedBody("v-limit-chunked", size=MAX_INGEST_BYTES)

    response = await client.post("/events", content=body, headers=service_headers())

    assert response.status_code == 200
    assert response.json() == {"received": 7, "inserted": 7, "duplicates": 0, "erased": 0}
    assert body.read == 4


async def test_post_events_non_numeric_content_length_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/events", content=ndjson(*video_events("v-cl")), headers=service_headers(**{"Content-Length": "lots"}))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"


def expired_service_token() -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "ingest-bot", "kind": "service", "iat": now - 120, "exp": now - 60}
    return jwt.encode(claims, APP_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(lambda: "Bearer not-a-jwt", id="malformed"),
        pytest.param(lambda: f"Bearer {expired_service_token()}", id="expired"),
        pytest.param(lambda: f"Bearer {create_token('another-secret-' + 'x' * 32, PrincipalKind.SERVICE, 'bot', 60)}", id="wrong-secret"),
        pytest.param(lambda: f"Basic {token(PrincipalKind.SERVICE)}", id="wrong-scheme"),
    ],
)
async def test_post_events_with_bad_token_is_401(client: httpx.AsyncClient, admin: asyncpg.Connection, authorization: Any) -> None:
    response = await client.post("/events", content=ndjson(*video_events("v-401")), headers={**NDJSON, "Authorization": authorization()})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert await stored_ids(admin, "v-401-") == []


async def test_post_events_without_token_is_401(client: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    response = await client.post("/events", content=ndjson(*video_events("v-anon")), headers=NDJSON)

    assert await stored_ids(admin, "v-anon-") == []
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "kind",
    [pytest.param(PrincipalKind.USER, id="user"), pytest.param(PrincipalKind.COMPLIANCE, id="compliance"), pytest.param(PrincipalKind.APP, id="app")],
)
async def test_post_events_with_other_kind_of_token_is_403(client: httpx.AsyncClient, admin: asyncpg.Connection, kind: PrincipalKind) -> None:
    headers = {**NDJSON, "Authorization": f"Bearer {token(kind, 'u1')}"}

    response = await client.post("/events", content=ndjson(*video_events("v-403")), headers=headers)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert await stored_ids(admin, "v-403-") == []


async def test_healthz_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reaches_the_store_and_names_the_policy_in_force(client: httpx.AsyncClient) -> None:
    in_force = PolicyFiles.read(roomy_policies()).revision

    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "store": "ok", "policy": {"revision": in_force, "error": None}}


async def test_get_events_is_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/events", headers={"Authorization": f"Bearer {token(PrincipalKind.SERVICE)}"})

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "BAD_USER_INPUT"  # coded like every refusal, not Starlette's plain text
    assert response.headers["allow"] == "POST"


async def test_a_path_that_is_no_route_is_404_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/videos/v1/sharers")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "NOT_FOUND")
