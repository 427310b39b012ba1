"""Each request's id: the client's `X-Request-Id` when it is a sane token, a fresh one otherwise.

The id is held in a context variable for the request's task (and the tasks it starts), so that
every log record made while the request is handled can carry it (`gateway.telemetry.logs`).
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

__all__ = ["HEADER", "NO_REQUEST", "REQUEST_ID", "current_request_id", "new_request_id", "sane_request_id"]

HEADER = b"x-request-id"
# What a log record carries when no request is being handled (start-up, shutdown, background work).
NO_REQUEST = "-"
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)

# An id a client chooses goes into log lines and a response header: short, and nothing but
# characters that need no quoting in either.
_SANE = re.compile(rb"[A-Za-z0-9._-]{1,128}")


def sane_request_id(sent: bytes | None) -> str | None:
    """The id the client sent (`X-Request-Id`), if it sent a sane one."""
    if sent is not None and _SANE.fullmatch(sent):
        return sent.decode("ascii")
    return None


def new_request_id() -> str:
    # 128 random bits as 32 hex digits, as uuid4().hex has them, for a tenth of its cost.
    return os.urandom(16).hex()


def current_request_id() -> str:
    """The id of the request being handled, or NO_REQUEST."""
    return REQUEST_ID.get()
