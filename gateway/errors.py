"""The gateway's exception tree and its public error codes.

    GatewayError                 code
    ├── Unauthenticated          UNAUTHENTICATED   (HTTP 401)
    ├── Forbidden                FORBIDDEN         (HTTP 403)
    ├── NotFound                 NOT_FOUND         (HTTP 404)
    ├── PersistedQueryNotFound   PERSISTED_QUERY_NOT_FOUND (HTTP 404; 200 under application/json)
    ├── BadUserInput             BAD_USER_INPUT    (HTTP 400)
    │   └── InvalidEvents        BAD_USER_INPUT    (HTTP 400, with the bad lines)
    ├── RequestTimeout           BAD_USER_INPUT    (HTTP 408: a body sent too slowly)
    ├── PayloadTooLarge          BAD_USER_INPUT    (HTTP 413)
    ├── UnsupportedMediaType     BAD_USER_INPUT    (HTTP 415)
    ├── RateLimited              RATE_LIMITED      (HTTP 429, Retry-After)
    ├── BudgetExhausted          BUDGET_EXHAUSTED  (HTTP 429, with when the budget resets)
    ├── StoreUnavailable         STORE_UNAVAILABLE (HTTP 503, Retry-After)
    └── PolicyUnavailable        POLICY_UNAVAILABLE (HTTP 503, Retry-After)

Code raises these; `gateway.routes.errors` renders them. Failures of foreign
libraries (asyncpg, PyJWT) are translated into this tree where they are caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "BadUserInput",
    "BudgetExhausted",
    "EventError",
    "Forbidden",
    "GatewayError",
    "InvalidEvents",
    "NotFound",
    "PayloadTooLarge",
    "PersistedQueryNotFound",
    "PolicyUnavailable",
    "RateLimited",
    "RequestTimeout",
    "StoreUnavailable",
    "Unauthenticated",
    "UnsupportedMediaType",
]


class GatewayError(Exception):
    code = "INTERNAL"
    status_code = 500
    # Seconds a client should wait before trying again (an outage that passes: 503).
    retry_after: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def extensions(self) -> dict[str, Any]:
        """What the error adds to `extensions` beside its code."""
        return {}

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with the error's status."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"
    status_code = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(GatewayError):
    code = "FORBIDDEN"
    status_code = 403

    def __init__(self, message: str, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the refused coordinate, e.g. "Video.shareTimeline"
        self.rule = rule  # the policy's rule that refuses a request as a whole, e.g. "obligations.registered_documents_only"

    def extensions(self) -> dict[str, Any]:
        named = {"field": self.field, "rule": self.rule}
        return {name: value for name, value in named.items() if value}


class NotFound(GatewayError):
    code = "NOT_FOUND"
    status_code = 404


class PersistedQueryNotFound(GatewayError):
    """A request named its document by hash only, and no document with that hash is known here:
    Apollo's clients send the request again with the document. The message is the one they look for."""

    code = "PERSISTED_QUERY_NOT_FOUND"
    status_code = 404

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")

    def headers(self) -> dict[str, str]:
        # Not to be kept by a cache on the way (a CDN before a GET): the next request registers the document.
        return {"Cache-Control": "private, no-cache, must-revalidate"}


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"
    status_code = 400


class RequestTimeout(GatewayError):
    """The client took too long to send its body: the connection is not held for it."""

    code = "BAD_USER_INPUT"
    status_code = 408

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}  # what is left of the body is not waited for


class PayloadTooLarge(GatewayError):
    code = "BAD_USER_INPUT"
    status_code = 413


class UnsupportedMediaType(GatewayError):
    code = "BAD_USER_INPUT"
    status_code = 415


class RateLimited(GatewayError):
    """More requests in the last minute than the policy's `rate_limit` lets the principal (or,
    signed out, its address) make."""

    code = "RATE_LIMITED"
    status_code = 429

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"rate limit of {limit} requests a minute reached; retry in {retry_after} s")
        self.limit = limit
        self.retry_after = retry_after  # when the oldest request counted leaves the window

    def extensions(self) -> dict[str, Any]:
        return {"limit": self.limit, "retryAfter": self.retry_after}


class BudgetExhausted(GatewayError):
    """An app's question would spend more ε than its user's budget has left today."""

    code = "BUDGET_EXHAUSTED"
    status_code = 429

    def __init__(self, message: str, resets_at: datetime, budget_left: float) -> None:
        super().__init__(message)
        self.resets_at = resets_at
        self.budget_left = budget_left

    def extensions(self) -> dict[str, Any]:
        return {"resetsAt": self.resets_at.isoformat(), "budgetLeft": self.budget_left}


class StoreUnavailable(GatewayError):
    code = "STORE_UNAVAILABLE"
    status_code = 503
    retry_after = 5


class PolicyUnavailable(GatewayError):
    """The policy engine erred, timed out or answered incompletely: no data is served (fail closed)."""

    code = "POLICY_UNAVAILABLE"
    status_code = 503
    retry_after = 1


@dataclass(frozen=True)
class EventError:
    """One reason one input line was refused."""

    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field {self.field}" if self.field else "")
        return f"{where}: {self.reason}"


class InvalidEvents(BadUserInput):
    """A batch had bad lines; nothing of it was stored."""

    # How many errors a report lists; the totals are always given.
    reported_limit = 100

    def __init__(self, errors: list[EventError], total: int, bad_lines: int) -> None:
        super().__init__(f"{bad_lines} invalid event line(s), {total} error(s); nothing of this batch was stored")
        self.errors = errors[: self.reported_limit]
        self.total = total
        self.bad_lines = bad_lines
