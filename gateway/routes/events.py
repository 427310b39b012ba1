"""`POST /events`: an NDJSON batch of platform events from a service principal, stored in one transaction."""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth import authenticate_service
from gateway.errors import BadUserInput, UnsupportedMediaType
from gateway.ingest.events import Window
from gateway.ingest.ndjson import parse_lines
from gateway.routes.bodies import read_body

__all__ = ["NDJSON_MEDIA_TYPES", "post_events"]

NDJSON_MEDIA_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/json-lines"})


async def post_events(request: Request) -> Response:
    settings = request.state.settings
    authenticate_service(request.headers.get("authorization"), request.state.secret, "ingest")

    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in NDJSON_MEDIA_TYPES:
        raise UnsupportedMediaType(f"Content-Type must be application/x-ndjson, not {media_type or 'missing'!r}")

    body = await read_body(request, settings.max_ingest_bytes, "send smaller batches")
    window = Window(request.state.clock(), settings.lateness)
    batch = await run_in_threadpool(functools.partial(parse_lines, body.split(b"\n"), window=window))
    batch.raise_if_invalid()
    if not batch.records:
        raise BadUserInput("the body holds no events")
    result = await request.state.writer.write(batch.records)
    return JSONResponse({"received": result.received, "inserted": result.inserted, "duplicates": result.duplicates, "erased": result.erased})
