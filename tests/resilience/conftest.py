"""Real processes for the resilience suite: `gateway serve` as an operator starts it, a Postgres
of the suite's own that a test may kill, and clients that count what they were answered."""

from __future__ import annotations

import asyncio
import tempfile
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from gateway.auth import ANONYMOUS, Principal, PrincipalKind

from conftest import SECRET

INGEST = Principal(PrincipalKind.SERVICE, "ingest-bot")
OPERATOR = Principal(PrincipalKind.SERVICE, "prometheus")


def authorization(principal: Principal) -> dict[str, str]:
    from gateway.auth import create_token

    if principal.kind is PrincipalKind.ANONYMOUS:
        return {}
    assert principal.id is not None
    return {"Authorization": f"Bearer {create_token(SECRET, principal.kind, principal.id, ttl_seconds=3600)}"}


def event(event_id: str, kind: str, video: str, actor: str, **extra: Any) -> dict[str, Any]:
    occurred = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"event_id": event_id, "type": kind, "occurred_at": occurred, "video_id": video, "creator_id": "creator-r", "actor_id": actor, **extra}


async def post_events(http: httpx.AsyncClient, events: list[dict[str, Any]]) -> httpx.Response:
    import orjson

    body = b"\n".join(orjson.dumps(each) for each in events)
    return await http.post("/events", content=body, headers={"content-type": "application/x-ndjson", **authorization(INGEST)})


async def graphql(http: httpx.AsyncClient, query: str, principal: Principal = ANONYMOUS, **body: Any) -> httpx.Response:
    return await http.post("/graphql", json={"query": query, **body}, headers=authorization(principal))


def codes(response: httpx.Response) -> list[str]:
    """The error codes of a /graphql or /events answer (none for a clean one)."""
    try:
        body = response.json()
    except ValueError:
        return [f"not JSON: {response.text[:80]}"]
    if isinstance(body.get("error"), dict):
        return [body["error"]["code"]]
    return [error.get("extensions", {}).get("code", "UNCODED") for error in body.get("errors") or []]


async def evaluations(http: httpx.AsyncClient) -> float:
    """How many times the server asked its policy engine (the evaluation histogram's count)."""
    from prometheus_client.parser import text_string_to_metric_families

    scrape = await http.get("/metrics", headers=authorization(OPERATOR))
    assert scrape.status_code == 200, scrape.text
    for family in text_string_to_metric_families(scrape.text):
        for sample in family.samples:
            if sample.name == "gateway_policy_evaluation_seconds_count":
                return float(sample.value)
    raise AssertionError("no gateway_policy_evaluation_seconds_count in /metrics")


async def until(condition: Any, seconds: float, what: str) -> None:
    """Waits for `condition()` to hold, checking every 50 ms, at most `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


class KillablePostgres:
    """A Postgres of the suite's own (pgserver's binaries), whose postmaster a test may kill -9
    and start again on the same data and socket."""

    def __init__(self, pgdata: Path) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            import pgserver

            self.server = pgserver.get_server(pgdata, cleanup_mode="delete")
        self.url: str = self.server.get_uri()

    def kill(self) -> None:
        postmaster = psutil.Process(self.server.get_postmaster_info().pid)
        backends = postmaster.children()
        postmaster.kill()
        postmaster.wait(30)
        # The backends notice their postmaster is gone and exit; a new one may start only then.
        psutil.wait_procs(backends, timeout=30)

    def processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(self.server.get_postmaster_info().pid)
        return [postmaster, *postmaster.children()]

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()

    def close(self) -> None:
        self.server.cleanup()


@pytest.fixture(scope="module")
def killable_postgres() -> Iterator[KillablePostgres]:
    pgdata = Path(tempfile.mkdtemp(prefix="gateway-resilience-pg-"))
    pgdata.chmod(0o755)  # the embedded server runs as its own system user when we are root
    postgres = KillablePostgres(pgdata)
    yield postgres
    postgres.close()
