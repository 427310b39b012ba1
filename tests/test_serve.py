"""`gateway serve` as an operator runs it: a real server process, its log lines, and SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from gateway.auth import PrincipalKind, create_token

from conftest import SECRET
from processes import START_SECONDS, start_serve

EXIT_SECONDS = 60


@dataclass
class Server:
    process: asyncio.subprocess.Process
    url: str
    port: int
    lines: list[dict[str, Any]] = field(default_factory=list)

    async def logged(self, wanted: Callable[[dict[str, Any]], bool], seconds: float = START_SECONDS) -> dict[str, Any]:
        """The first log line (read so far or next) that is `wanted`; every line must be JSON."""
        for line in self.lines:
            if wanted(line):
                return line
        assert self.process.stderr is not None
        async with asyncio.timeout(seconds):
            while True:
                raw = await self.process.stderr.readline()
                assert raw, f"the server ended before the line was logged; it said: {self.lines[-5:]}"
                self.lines.append(json.loads(raw))
                if wanted(self.lines[-1]):
                    return self.lines[-1]

    async def stopped(self) -> int:
        """Waits for the process to exit, reading the rest of its lines; its exit status."""
        assert self.process.stderr is not None
        async with asyncio.timeout(EXIT_SECONDS):
            rest = await self.process.stderr.read()
            self.lines.extend(json.loads(raw) for raw in rest.splitlines())
            return await self.process.wait()


def message(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: line["message"] == text


@contextlib.asynccontextmanager
async def serving(database_url: str, tmp_path: Path, **settings: str) -> AsyncIterator[Server]:
    """`gateway serve` over the module's database, logging JSON, once it listens."""
    process, port = await start_serve(database_url, tmp_path, **{"log_format": "json", **settings})
    server = Server(process, f"http://127.0.0.1:{port}", port)
    try:
        await server.logged(lambda line: line["message"].startswith("Uvicorn running on"))
        yield server
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def batch_awaited(server: Server, size: int, request_id: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection whose `POST /events` of a `size`-byte body is in flight: the route waits for the
    body, which the test has not sent (the server says "100 Continue" once the route asks for it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    token = create_token(SECRET, PrincipalKind.SERVICE, "ingest-bot", ttl_seconds=300)
    writer.write(
        b"POST /events HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-ndjson\r\nExpect: 100-continue\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: {size}\r\nX-Request-Id: {request_id}\r\n\r\n".encode()
    )
    await writer.drain()
    async with asyncio.timeout(START_SECONDS):
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    return reader, writer


async def test_serve_logs_json_lines_each_with_its_request_id(database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            health = await http.get("/healthz", headers={"X-Request-Id": "probe-7"})
            answer = await http.post("/graphql", json={"query": '{ video(id: "v-logged") { id } }'})
        generated = answer.headers["x-request-id"]
        accesses = {
            line["request_id"]: line
            for line in [
                await server.logged(lambda line: line.get("request_id") == "probe-7"),
                await server.logged(lambda line: line.get("request_id") == generated),
            ]
        }
        server.process.send_signal(signal.SIGTERM)
        assert await server.stopped() == 0
    assert health.headers["x-request-id"] == "probe-7"
    assert {(line["logger"], line["method"], line["path"], line["status"]) for line in accesses.values()} == {
        ("gateway.access", "GET", "/healthz", 200),
        ("gateway.access", "POST", "/graphql", 200),
    }
    # The server's own lines (uvicorn's, the gateway's) are JSON too, made outside any request.
    outside = {line["message"] for line in server.lines if line["request_id"] == "-"}
    assert {"Application startup complete.", "Shutting down", "Application shutdown complete."} <= outside


async def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(database_url: str, tmp_path: Path) -> None:
    """A batch whose body is still on its way when SIGTERM arrives is stored and answered; then the
    server exits with status 0."""
    occurred = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {"event_id": "in-flight-pub", "type": "video_published", "occurred_at": occurred,
             "video_id": "v-in-flight", "creator_id": "c-in-flight", "actor_id": "c-in-flight"}
    body = json.dumps(event).encode() + b"\n"
    async with serving(database_url, tmp_path) as server:
        reader, writer = await batch_awaited(server, len(body), "in-flight-1")
        server.process.send_signal(signal.SIGTERM)
        await server.logged(message("Shutting down"))
        writer.write(body)
        await writer.drain()
        async with asyncio.timeout(START_SECONDS):
            response = await reader.read()  # to the end: the server closes the connection once it has answered
        writer.close()
        assert await server.stopped() == 0
    head, _, answer = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nx-request-id: in-flight-1" in head.lower()
    assert json.loads(answer) == {"received": 1, "inserted": 1, "duplicates": 0, "erased": 0}
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE event_id = 'in-flight-pub'") == 1
    finally:
        await conn.close()
    (access,) = [line for line in server.lines if line["logger"] == "gateway.access"]
    assert (access["request_id"], access["status"]) == ("in-flight-1", 200)


async def test_sigterm_cuts_a_request_still_running_after_the_grace_period(database_url: str, tmp_path: Path) -> None:
    """A client that never sends the body it announced holds its request for GATEWAY_SHUTDOWN_SECONDS
    at most (not the 10 minutes its body may take here): then the server gives up on it and exits 0."""
    async with serving(database_url, tmp_path, shutdown_seconds="1", body_timeout="600") as server:
        _, writer = await batch_awaited(server, 100, "never-sent")
        server.process.send_signal(signal.SIGTERM)
        assert await server.stopped() == 0  # within EXIT_SECONDS, where the body could have taken 600
        writer.close()
