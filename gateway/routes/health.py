"""Liveness and readiness probes."""

from __future__ import annotations

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["healthz", "readyz"]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the store answers and a policy is in force; a rejected policy edit is reported
    (the last good policy keeps serving, so the gateway stays ready)."""
    engine = request.state.engine
    await engine.check()
    policy = {"revision": engine.revision or None, "error": engine.last_error}
    try:
        async with request.state.store.reader.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)  # a stopped server answers nothing
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return JSONResponse({"status": "unavailable", "store": str(exc), "policy": policy}, status_code=503)
    if not engine.ready:
        return JSONResponse({"status": "unavailable", "store": "ok", "policy": policy}, status_code=503)
    return JSONResponse({"status": "ready", "store": "ok", "policy": policy})
