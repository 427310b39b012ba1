"""The request telemetry middleware on a small app of its own: request ids, latency labels, access lines."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import Histogram
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.telemetry.logs import log_handler
from gateway.telemetry.middleware import RequestTelemetry
from gateway.telemetry.timings import request_latency

handler_log = logging.getLogger("gateway.tests.handler")
GENERATED = re.compile(r"[0-9a-f]{32}")


async def echo(request: Request) -> Response:
    handler_log.info("handling")
    return PlainTextResponse(request.headers["x-request-id"])


async def operation(request: Request) -> Response:
    request.state.operation_type = request.query_params["type"]
    return PlainTextResponse("ok")


async def fail(request: Request) -> Response:
    raise RuntimeError("a bug")


async def unexpected(request: Request, exc: Exception) -> Response:
    handler_log.error("unexpected error")
    return JSONResponse({"error": "unexpected"}, status_code=500)


@pytest.fixture
def latency() -> Histogram:
    return request_latency()


@pytest.fixture
async def client(latency: Histogram) -> AsyncIterator[httpx.AsyncClient]:
    routes = [Route("/echo", echo), Route("/operation", operation), Route("/fail", fail)]
    telemetry = Middleware(RequestTelemetry, routes=[route.path for route in routes], latency=latency)
    app = Starlette(routes=routes, middleware=[telemetry], exception_handlers={Exception: unexpected})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("203.0.113.9", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://telemetry") as http:
        yield http


Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def lines() -> Iterator[Lines]:
    """The JSON log lines every `gateway.*` logger has written since the test began."""
    stream = io.StringIO()
    handler = log_handler("json", stream)
    parent = logging.getLogger("gateway")
    parent.addHandler(handler)
    parent.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        parent.removeHandler(handler)
        parent.setLevel(logging.NOTSET)


def observed(latency: Histogram, route: str, operation: str) -> float:
    """How many requests `latency` timed under these labels."""
    for metric in latency.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels == {"route": route, "operation": operation}:
                return sample.value
    return 0


@pytest.mark.parametrize(
    "sent",
    [pytest.param("abc.123", id="dotted"), pytest.param("Req_id-9.Z", id="every-class"), pytest.param("x" * 128, id="128-chars")],
)
async def test_sane_request_id_is_kept_echoed_and_logged(client: httpx.AsyncClient, lines: Lines, sent: str) -> None:
    response = await client.get("/echo", headers={"X-Request-Id": sent})
    assert response.headers["x-request-id"] == sent
    assert response.text == sent  # what the app read
    assert [(line["logger"], line["request_id"]) for line in lines()] == [("gateway.tests.handler", sent), ("gateway.access", sent)]


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param("x" * 129, id="129-chars"),
        pytest.param("has space", id="space"),
        pytest.param("a;b", id="semicolon"),
        pytest.param("a\tb", id="tab"),
        pytest.param("café".encode(), id="non-ascii"),
        pytest.param("", id="empty"),
    ],
)
async def test_unusable_request_id_is_replaced_everywhere(client: httpx.AsyncClient, lines: Lines, sent: str | bytes) -> None:
    response = await client.get("/echo", headers={"X-Request-Id": sent})
    request_id = response.headers["x-request-id"]
    assert GENERATED.fullmatch(request_id)
    assert response.text == request_id
    assert {line["request_id"] for line in lines()} == {request_id}


async def test_each_request_without_an_id_gets_its_own(client: httpx.AsyncClient) -> None:
    first, second = await client.get("/echo"), await client.get("/echo")
    assert GENERATED.fullmatch(first.headers["x-request-id"]) and GENERATED.fullmatch(second.headers["x-request-id"])
    assert first.text == first.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_access_line_says_what_was_asked_and_how_it_went(client: httpx.AsyncClient, lines: Lines) -> None:
    await client.get("/operation", params={"type": "query"}, headers={"X-Request-Id": "op-1"})
    (access,) = [line for line in lines() if line["logger"] == "gateway.access"]
    assert {key: access[key] for key in ("request_id", "client", "method", "path", "status", "route", "operation")} == {
        "request_id": "op-1",
        "client": "203.0.113.9",
        "method": "GET",
        "path": "/operation",
        "status": 200,
        "route": "/operation",
        "operation": "query",
    }
    assert access["duration_ms"] > 0
    assert access["message"].startswith("203.0.113.9 GET /operation 200 ")


async def test_a_path_with_a_line_break_is_logged_encoded(client: httpx.AsyncClient, lines: Lines) -> None:
    await client.get("/echo%0Aforged")
    (access,) = [line for line in lines() if line["logger"] == "gateway.access"]
    assert access["path"] == "/echo%0Aforged"
    assert "\n" not in access["message"]


@pytest.mark.parametrize(
    ("path", "route", "operation"),
    [
        pytest.param("/operation?type=query", "/operation", "query", id="query"),
        pytest.param("/operation?type=mutation", "/operation", "mutation", id="mutation"),
        pytest.param("/operation?type=subscription", "/operation", "subscription", id="subscription"),
        pytest.param("/operation?type=Dashboard", "/operation", "none", id="an-operation-name-is-no-label"),
        pytest.param("/echo", "/echo", "none", id="no-operation"),
        pytest.param("/videos/v1/sharers", "other", "none", id="a-path-of-no-route"),
    ],
)
async def test_latency_is_labelled_from_closed_sets(client: httpx.AsyncClient, latency: Histogram, path: str, route: str, operation: str) -> None:
    await client.get(path)
    assert observed(latency, route, operation) == 1
    timed = {(sample.labels["route"], sample.labels["operation"]) for metric in latency.collect() for sample in metric.samples}
    assert timed == {(route, operation)}


async def test_a_failing_request_is_timed_logged_and_its_error_line_carries_its_id(
    client: httpx.AsyncClient, latency: Histogram, lines: Lines
) -> None:
    response = await client.get("/fail", headers={"X-Request-Id": "boom-1"})
    assert response.status_code == 500
    assert observed(latency, "/fail", "none") == 1
    by_logger = {line["logger"]: line for line in lines()}
    assert by_logger["gateway.access"]["status"] == 500
    assert by_logger["gateway.access"]["request_id"] == "boom-1"
    assert by_logger["gateway.tests.handler"]["message"] == "unexpected error"
    assert by_logger["gateway.tests.handler"]["request_id"] == "boom-1"
