"""What the gateway records of each HTTP request: its id (for every log line made while it is
handled, and in the response's `X-Request-Id`), its latency by route and operation type, and one
access log line.

A pure ASGI middleware: Starlette's BaseHTTPMiddleware would cost every request a task and a
stream of its own, on a path that serves thousands a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from urllib.parse import quote

from prometheus_client import Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.telemetry.request_ids import HEADER, REQUEST_ID, new_request_id, sane_request_id

__all__ = ["OPERATION_TYPE", "OPERATION_TYPES", "RequestTelemetry"]

# The key of the request's state (`request.state.operation_type`) a route sets to the GraphQL
# operation type it serves; only these values are labels, any other counts as "none".
OPERATION_TYPE = "operation_type"
OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})
NO_OPERATION = "none"
# The route label of a path that is none of the app's.
OTHER_ROUTE = "other"

access_log = logging.getLogger("gateway.access")


class RequestTelemetry:
    def __init__(self, app: ASGIApp, *, routes: Iterable[str], latency: Histogram) -> None:
        self.app = app
        self.routes = frozenset(routes)
        self.latency = latency
        self._timers: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path, headers = scope["path"], scope["headers"]
        request_id = sane_request_id(next((value for name, value in headers if name == HEADER), None))
        if request_id is None:
            request_id = new_request_id()
            # The app reads the id the log lines and the response carry from the header, as if sent.
            scope["headers"] = [*(header for header in headers if header[0] != HEADER), (HEADER, request_id.encode())]
        state = scope.setdefault("state", {})
        status = 500  # unless a response starts: the app failed before it answered

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = path if path in self.routes else OTHER_ROUTE
            operation = state.get(OPERATION_TYPE)
            if operation not in OPERATION_TYPES:
                operation = NO_OPERATION
            self._timer(route, operation).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(scope, path, status, elapsed, route, operation)
        # Left set when the app raised: the server logs the error next, in this request's task.
        REQUEST_ID.reset(token)

    def _timer(self, route: str, operation: str) -> Histogram:
        timer = self._timers.get((route, operation))
        if timer is None:
            timer = self._timers[(route, operation)] = self.latency.labels(route, operation)
        return timer


def _log_access(scope: Scope, path: str, status: int, elapsed: float, route: str, operation: str) -> None:
    client = scope["client"][0] if scope.get("client") else "-"
    # Percent-encoded again: decoded, a path may hold a line break, and forge a line of a text log.
    method, path, milliseconds = scope["method"], quote(path), elapsed * 1000
    access_log.info(
        "%s %s %s %d %.1fms",
        client,
        method,
        path,
        status,
        milliseconds,
        extra={"client": client, "method": method, "path": path, "status": status, "duration_ms": round(milliseconds, 3), "route": route, "operation": operation},
    )
