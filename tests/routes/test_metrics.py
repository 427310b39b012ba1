"""`GET /metrics` of the real app: request latency by route, policy evaluations, the engine's
timeouts and restarts, ingest, and the process's own metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import Principal, PrincipalKind

from harness import Gateway, TestClock, authorization, running_gateway

INGEST = Principal(PrincipalKind.SERVICE, "ingest-bot")
AT = "2025-06-01T12:{minute:02d}:00Z"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    """The app on 2025-06-01 just after the hour the events here occur in."""
    async with running_gateway(database_url, clock=TestClock(datetime(2025, 6, 1, 13, tzinfo=UTC))) as running:
        yield running


async def scraped(gateway: Gateway) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await gateway.scrape())
        for sample in family.samples
    }


def requests_timed(samples: Samples, route: str) -> dict[str, float]:
    """How many requests the latency histogram counted for `route`, by operation type."""
    return {
        dict(labels)["operation"]: value
        for (name, labels), value in samples.items()
        if name == "gateway_request_duration_seconds_count" and dict(labels)["route"] == route
    }


def ndjson(*events: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(event).encode() + b"\n" for event in events)


async def test_requests_are_timed_by_route(gateway: Gateway) -> None:
    before = await scraped(gateway)
    assert (await gateway.http.get("/healthz")).status_code == 200
    assert (await gateway.http.get("/videos/v1/sharers")).status_code == 404
    assert (await gateway.graphql('{ video(id: "v-none") { id } }')).status_code == 200
    after = await scraped(gateway)

    def moved(route: str) -> float:
        return sum(requests_timed(after, route).values()) - sum(requests_timed(before, route).values())

    assert (moved("/healthz"), moved("other"), moved("/graphql")) == (1, 1, 1)
    assert moved("/metrics") == 1  # the scrape before: a scrape is timed once it has answered
    assert set(requests_timed(after, "/healthz")) == {"none"}
    assert requests_timed(after, "/graphql").get("query", 0) - requests_timed(before, "/graphql").get("query", 0) == 1
    operations = {dict(labels)["operation"] for (name, labels) in after if name == "gateway_request_duration_seconds_count"}
    assert operations <= {"query", "mutation", "subscription", "none"}
    assert after[("gateway_request_duration_seconds_bucket", (("le", "+Inf"), ("operation", "none"), ("route", "/healthz")))] >= 1


async def test_policy_evaluations_are_timed_and_cache_hits_are_not(gateway: Gateway) -> None:
    query = '{ video(id: "v-evaluated") { id creatorId } }'
    evaluations = ("gateway_policy_evaluation_seconds_count", ())
    before = await scraped(gateway)
    await gateway.graphql(query)
    first = await scraped(gateway)
    await gateway.graphql(query)
    again = await scraped(gateway)
    assert first[evaluations] - before[evaluations] == 1
    assert again[evaluations] == first[evaluations]
    assert first[("gateway_policy_evaluation_seconds_sum", ())] > before[("gateway_policy_evaluation_seconds_sum", ())]
    cached = gateway.state["decider"].cache
    assert first[("gateway_policy_cache_bytes", ())] == cached.nbytes > before[("gateway_policy_cache_bytes", ())]


async def test_ingest_batches_and_events_are_counted(gateway: Gateway) -> None:
    common = {"video_id": "v-counted", "creator_id": "c-counted"}
    body = ndjson(
        {"event_id": "counted-pub", "type": "video_published", "occurred_at": AT.format(minute=0), **common, "actor_id": "c-counted"},
        {"event_id": "counted-view", "type": "view", "occurred_at": AT.format(minute=5), **common, "actor_id": "u2", "watch_ms": 900},
    )
    headers = {"Content-Type": "application/x-ndjson", **authorization(INGEST)}
    before = await scraped(gateway)
    assert (await gateway.http.post("/events", content=body, headers=headers)).json()["inserted"] == 2
    assert (await gateway.http.post("/events", content=body, headers=headers)).json()["inserted"] == 0  # a retry
    after = await scraped(gateway)
    moved = {name: after[(name, ())] - before[(name, ())] for name in (
        "gateway_ingest_batches_total", "gateway_ingest_events_received_total", "gateway_ingest_events_inserted_total"
    )}
    assert moved == {"gateway_ingest_batches_total": 2, "gateway_ingest_events_received_total": 4, "gateway_ingest_events_inserted_total": 2}
    assert requests_timed(after, "/events")["none"] - requests_timed(before, "/events").get("none", 0) == 2


async def test_process_metrics_are_served(gateway: Gateway) -> None:
    names = {name for name, _ in await scraped(gateway)}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "python_info"} <= names


async def test_policy_timeouts_and_worker_restarts_are_counted(database_url: str) -> None:
    """With no time to decide, every evaluation times out: the request fails closed, and the worker
    that gave no answer is replaced."""
    async with running_gateway(database_url, policy_timeout=1e-6) as gateway:
        engine = gateway.state["engine"]
        assert (await gateway.graphql('{ video(id: "v-timeout") { id } }')).status_code == 503
        await engine.check()  # waits for the worker's replacement
        samples = await scraped(gateway)
        assert samples[("gateway_policy_timeouts_total", ())] == engine.timeouts >= 1
        assert samples[("gateway_policy_worker_restarts_total", ())] == engine.restarts >= 1
        assert samples[("gateway_policy_evaluation_seconds_count", ())] >= 1
