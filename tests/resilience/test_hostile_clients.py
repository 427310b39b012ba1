"""Hostile clients against a real server: memory stays bounded under distinct large inputs, and
every hostile input the red team found is refused with a 4xx and a code, costing no policy worker."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.auth import Principal, PrincipalKind

from processes import Served, serving

from .conftest import codes, event, post_events

pytestmark = pytest.mark.timeout(600)

OWNER = Principal(PrincipalKind.USER, "creator-r")
MB = 1024 * 1024


@pytest.fixture(scope="module")
async def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    async with serving(database_url, tmp_path_factory.mktemp("hostile"), body_timeout="2") as served:
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
            published = await post_events(http, [event("hostile-published", "video_published", "video-r", "creator-r")])
            assert published.status_code == 200, published.text
        yield served


async def test_distinct_megabyte_variables_leave_memory_bounded(server: Served) -> None:
    """1,000 requests each carrying a different ~1 MB variable (declared, and undeclared): the
    server's resident memory grows by less than 100 MB (it took 4.9 GB before variables were bounded)."""
    query = "query($id: ID!) { video(id: $id) { id } }"
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        await http.post("/graphql", json={"query": query, "variables": {"id": "warm-up"}})
        before = server.rss()
        statuses = set()
        for number in range(1_000):
            padding = f"{number:06d}" + "x" * (MB - 200)
            variables = {"id": padding} if number % 2 else {"id": "video-r", "undeclared": padding}
            response = await http.post("/graphql", json={"query": query, "variables": variables})
            statuses.add((response.status_code, tuple(codes(response))))
        grown = server.rss() - before

    assert statuses == {(400, ("BAD_USER_INPUT",))}
    assert grown < 100 * MB, f"grew {grown / MB:.0f} MB"


def nested(depth: int) -> str:
    return '{"query": "{ __typename }", "variables": {"a": ' + "[" * depth + "]" * depth + "}}"


HEAVY_CREATORS = "{ " + " ".join(
    f'c{n}: creator(id: "creator-r") {{ totals {{ views }} videos(first: 100) {{ edges {{ node {{ id stats {{ views likes comments shares }} }} }} }} }}'
    for n in range(20)
) + " }"

# (what, body, headers, expected status, expected codes)
HOSTILE: list[tuple[str, bytes, dict[str, str], int, tuple[str, ...]]] = [
    ("variables nested 100,000 deep", nested(100_000).encode(), {}, 400, ("BAD_USER_INPUT",)),
    (
        "a timeline in year 9999",
        json.dumps({"query": '{ video(id: "video-r") { shareTimeline(from: "9999-01-01T00:00:00Z", to: "9999-12-31T00:00:00Z") { from } } }'}).encode(),
        {"authorization": "owner"},
        200,
        ("BAD_USER_INPUT",),
    ),
    (
        "an undeclared integer of 10^40",
        json.dumps({"query": "{ __typename }", "variables": {"big": 10**40}}).encode(),
        {},
        200,
        (),
    ),
    ("an 8 MB string variable", json.dumps({"query": "query($s: String) { __typename }", "variables": {"s": "x" * 8 * MB}}).encode(), {}, 413, ("BAD_USER_INPUT",)),
    ("20 aliased creator dashboards (240 fields) are answered", json.dumps({"query": HEAVY_CREATORS}).encode(), {}, 200, ()),
    ("NaN in variables", b'{"query": "{ __typename }", "variables": {"n": NaN}}', {}, 400, ("BAD_USER_INPUT",)),
    ("a body that is not JSON", b"{", {}, 400, ("BAD_USER_INPUT",)),
]


@pytest.mark.parametrize(("what", "body", "headers", "status", "expected"), HOSTILE, ids=[case[0] for case in HOSTILE])
async def test_hostile_input_is_refused_with_a_code_and_costs_no_worker(
    server: Served, what: str, body: bytes, headers: dict[str, str], status: int, expected: tuple[str, ...]
) -> None:
    from .conftest import authorization

    workers = {worker.pid for worker in server.policy_workers()}
    sent = {"content-type": "application/json", **(authorization(OWNER) if headers.get("authorization") == "owner" else {})}
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        response = await http.post("/graphql", content=body, headers=sent)

    assert (response.status_code, tuple(codes(response))) == (status, expected), response.text[:300]
    assert {worker.pid for worker in server.policy_workers()} == workers  # no worker was killed or timed out


async def test_a_hundred_megabyte_body_is_refused_unread(server: Served) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        response = await http.post(
            "/graphql", content=b"x" * 100 * MB, headers={"content-type": "application/json"}
        )
    assert (response.status_code, tuple(codes(response))) == (413, ("BAD_USER_INPUT",))


async def test_a_body_sent_short_does_not_hold_its_connection(server: Served) -> None:
    """A client that declares 1,000 bytes more than it sends gets 408 once the body timeout (2 s
    here) has passed, and the server closes the connection (it held it over 70 s before)."""
    port = int(server.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"query": "{ __typename }"}'
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body) + 1000}\r\n\r\n".encode() + body
    )
    await writer.drain()
    started = time.monotonic()
    async with asyncio.timeout(60):
        answer = await reader.read()  # to the end: the server closes the connection
    writer.close()

    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 30


async def test_idle_and_trickling_connections_are_closed_and_capped(database_url: str, tmp_path: Path) -> None:
    """Connections that never send a request, or trickle their headers, are closed once the header
    timeout has passed, and those beyond the connection ceiling at once; meanwhile and afterwards a
    real client is answered (20,500 idle connections once exhausted the process's descriptors)."""
    async with serving(database_url, tmp_path, header_timeout="1", max_connections="40") as served:
        port = int(served.url.rsplit(":", 1)[1])
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]
        trickling = opened[:5]
        for _, writer in trickling:
            writer.write(b"GET /healthz HTTP/1.1\r\n")  # and never the rest of the headers
            await writer.drain()

        async def closed_by_server(reader: asyncio.StreamReader) -> bool:
            async with asyncio.timeout(30):
                return await reader.read() == b""  # end of stream: the server closed it

        started = time.monotonic()
        closed = await asyncio.gather(*(closed_by_server(reader) for reader, _ in opened))
        waited = time.monotonic() - started
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
            healthy = await http.get("/healthz")
        for _, writer in opened:
            writer.close()

    assert all(closed)
    assert waited < 20, waited  # the header timeout, not the client, decides
    assert healthy.status_code == 200
