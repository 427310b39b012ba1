"""The postmaster killed (kill -9) while clients read and ingest, then started again: clients get
coded 503s quickly while it is down, the gateway recovers without a restart, no acknowledged event
is lost or stored twice, and the decision log is written again."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import asyncpg
import httpx
import pytest

from gateway.auth import Principal, PrincipalKind
from gateway.store.server import ensure_database

from processes import serving

from .conftest import KillablePostgres, codes, event, graphql, post_events, until

pytestmark = pytest.mark.timeout(600)

OWNER = Principal(PrincipalKind.USER, "creator-r")
QUERY = 'query($id: ID!) { video(id: $id) { id stats { views likes } } }'


@dataclass(frozen=True)
class Outcome:
    kind: str  # "graphql" or "events"
    started: float
    seconds: float
    status: int
    codes: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return self.status == 200 and not self.codes


async def test_postmaster_killed_and_restarted_under_traffic(killable_postgres: KillablePostgres, tmp_path: Path) -> None:
    url = await ensure_database(killable_postgres.url, "resilience_outage")
    outcomes: list[Outcome] = []
    acknowledged: list[str] = []
    stop = asyncio.Event()
    numbers = itertools.count()

    async def timed(kind: str, send: asyncio.Future[httpx.Response] | object) -> httpx.Response:
        started = time.monotonic()
        response: httpx.Response = await send  # type: ignore[misc]
        outcomes.append(Outcome(kind, started, time.monotonic() - started, response.status_code, tuple(codes(response))))
        return response

    async def ingesting(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            ids = [f"outage-{next(numbers)}" for _ in range(3)]
            batch = [event(ids[0], "view", "video-r", f"viewer-{ids[0]}", watch_ms=1000), event(ids[1], "like", "video-r", f"viewer-{ids[1]}"),
                     event(ids[2], "view", "video-r", f"viewer-{ids[2]}", watch_ms=500)]
            response = await timed("events", post_events(http, batch))
            if response.status_code == 200:
                acknowledged.extend(ids)

    async def reading(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            await timed("graphql", graphql(http, QUERY, OWNER, variables={"id": "video-r"}))

    def count(kind: str, clean: bool, since: float) -> int:
        return sum(1 for o in outcomes if o.kind == kind and o.clean is clean and o.started >= since)

    async with serving(url, tmp_path) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        published = await post_events(http, [event("outage-published", "video_published", "video-r", "creator-r")])
        assert published.status_code == 200, published.text
        clients = [asyncio.create_task(ingesting(http)), asyncio.create_task(reading(http)), asyncio.create_task(reading(http))]
        try:
            await until(lambda: count("events", True, 0) >= 5 and count("graphql", True, 0) >= 5, 120, "answers before the outage")
            killed = time.monotonic()
            await asyncio.to_thread(killable_postgres.kill)
            await until(lambda: count("events", False, killed) >= 5 and count("graphql", False, killed) >= 5, 60, "refusals during the outage")
            restarted = time.monotonic()
            await asyncio.to_thread(killable_postgres.start)
            await until(lambda: count("events", True, restarted) >= 5 and count("graphql", True, restarted) >= 5, 120, "answers after the restart")
        finally:
            stop.set()
            await asyncio.gather(*clients)
        ready = await http.get("/readyz")
        assert server.process.returncode is None  # recovered without a restart
        logged = await decisions_logged_after(url, restarted)

    refused = [o for o in outcomes if not o.clean]
    # Every refusal is the store's outage, coded, and said quickly: never INTERNAL, never a 500.
    assert {(o.status, o.codes) for o in refused} <= {(503, ("STORE_UNAVAILABLE",))}, {(o.status, o.codes) for o in refused}
    during = [o for o in refused if killed + 1 <= o.started]  # requests sent once the postmaster was gone
    assert during and max(o.seconds for o in during) < 2.0, max(o.seconds for o in during)
    assert ready.status_code == 200, ready.text

    assert logged > 0, "no decision was logged after the store came back"
    admin = await asyncpg.connect(url)
    try:
        stored = await admin.fetchrow(
            "SELECT count(*) AS rows, count(DISTINCT event_id) AS ids FROM events WHERE event_id = ANY($1::text[])", acknowledged
        )
    finally:
        await admin.close()
    assert (stored["rows"], stored["ids"]) == (len(acknowledged), len(acknowledged))  # none lost, none twice


async def decisions_logged_after(url: str, moment: float) -> int:
    """Decisions in the log made after `moment` (monotonic), waiting up to a minute for the writer
    (it retries each second) to write any."""
    admin = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + 60
        while True:
            written = int(await admin.fetchval(
                "SELECT count(*) FROM decision_log WHERE timestamp > now() - make_interval(secs => $1)", time.monotonic() - moment
            ))
            if written or time.monotonic() > deadline:
                return written
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def test_a_frozen_store_gets_coded_503s_within_its_timeouts(killable_postgres: KillablePostgres, tmp_path: Path) -> None:
    """The postmaster and every backend stopped (SIGSTOP: a hung or swamped server, which cannot
    cancel anything itself): requests already holding a connection give up after the statement
    timeout and a margin, the others after the pool timeout, each with a coded 503; after SIGCONT
    the same server answers again."""
    import signal

    url = await ensure_database(killable_postgres.url, "resilience_frozen")
    async with serving(url, tmp_path, statement_timeout="1", pool_timeout="1") as server, httpx.AsyncClient(
        base_url=server.url, timeout=60
    ) as http:
        published = await post_events(http, [event("frozen-published", "video_published", "video-f", "creator-r")])
        assert published.status_code == 200, published.text
        assert (await graphql(http, QUERY, OWNER, variables={"id": "video-f"})).status_code == 200
        stopped = killable_postgres.processes()
        for process in stopped:
            process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()

            async def timed(send: Any) -> tuple[httpx.Response, float]:
                response = await send
                return response, time.monotonic() - started

            answered = await asyncio.gather(
                *(timed(graphql(http, QUERY, OWNER, variables={"id": f"video-{n}"})) for n in range(12)),
                timed(post_events(http, [event("frozen-view", "view", "video-f", "viewer-frozen", watch_ms=10)])),
                timed(http.get("/readyz")),
            )
        finally:
            for process in stopped:
                process.send_signal(signal.SIGCONT)
        recovered = await graphql(http, QUERY, OWNER, variables={"id": "video-f"})

    frozen = [response for response, _ in answered]
    assert {(answer.status_code, tuple(codes(answer))) for answer in frozen[:-1]} <= {(503, ("STORE_UNAVAILABLE",))}
    assert frozen[-1].status_code == 503  # readiness says so too
    reads = max(seconds for _, seconds in answered[:12])
    ingest = answered[12][1]
    assert reads < 8, reads  # statement timeout 1 s + margin 1 s, pool timeout 1 s: never the stall's length
    assert ingest < 25, ingest  # an ingest statement gives up after 10 s
    assert recovered.status_code == 200 and not codes(recovered), recovered.text
