"""Renders `GatewayError`s (and anything unexpected) as JSON; the only place HTTP errors are shaped."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import GatewayError, InvalidEvents
from gateway.telemetry.request_ids import current_request_id

__all__ = ["EXCEPTION_HANDLERS"]

log = logging.getLogger(__name__)


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if isinstance(exc, InvalidEvents):
        error["total"] = exc.total
        error["bad_lines"] = exc.bad_lines
        error["lines"] = [{"line": e.line, "field": e.field, "reason": e.reason} for e in exc.errors]
    return JSONResponse({"error": error}, status_code=exc.status_code, headers=exc.headers())


async def unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = current_request_id()
    log.exception("unexpected error (request %s)", request_id, exc_info=exc)
    return JSONResponse(
        {"error": {"code": "INTERNAL", "message": "Unexpected error.", "request_id": request_id}},
        status_code=500,
        headers={"X-Request-Id": request_id},
    )


# Starlette's own refusals (no such route, a method a route does not take), coded like ours.
HTTP_CODES = {404: "NOT_FOUND"}


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "BAD_USER_INPUT")
    return JSONResponse({"error": {"code": code, "message": exc.detail}}, status_code=exc.status_code, headers=exc.headers)


EXCEPTION_HANDLERS = {GatewayError: gateway_error, HTTPException: http_error, Exception: unexpected_error}
