"""Request bodies read within a limit of size and of time: a body over the size is refused (413)
before or while it is read, never buffered whole; one that does not arrive in time gets 408."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from gateway.errors import BadUserInput, PayloadTooLarge, RequestTimeout

__all__ = ["read_body"]


async def read_body(request: Request, limit: int, advice: str) -> bytes:
    """The body, or PayloadTooLarge (saying `advice`) as soon as it is known to exceed `limit` bytes,
    or RequestTimeout when it has not all arrived within the settings' `body_timeout` seconds (a
    client that sends less than it declared, or trickles, does not hold its connection)."""
    too_large = PayloadTooLarge(f"the body exceeds the limit of {limit} bytes; {advice}")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadUserInput("Content-Length must be a number of bytes")
        if int(declared) > limit:
            raise too_large
    seconds: float = request.state.settings.body_timeout
    chunks, size = [], 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {seconds:g} s ({size} bytes came)") from None
    return b"".join(chunks)
