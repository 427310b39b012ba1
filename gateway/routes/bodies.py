"""Request bodies read within a limit: a body over it is refused (413) before or while it is read, never buffered whole."""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import BadUserInput, PayloadTooLarge

__all__ = ["read_body"]


async def read_body(request: Request, limit: int, advice: str) -> bytes:
    """The body, or PayloadTooLarge (saying `advice`) as soon as it is known to exceed `limit` bytes."""
    too_large = PayloadTooLarge(f"the body exceeds the limit of {limit} bytes; {advice}")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadUserInput("Content-Length must be a number of bytes")
        if int(declared) > limit:
            raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
