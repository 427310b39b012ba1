"""GraphQL errors as the client sees them: every error carries a code; unexpected ones are masked.

This is the one place GraphQL errors are shaped. A resolver raises a
`GatewayError`; graphql-core wraps it; here it becomes `{message, path,
extensions: {code, …}}`. Anything else is logged with the request id and
answered as "Unexpected error.".
"""

from __future__ import annotations

import logging
import re
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from gateway.errors import GatewayError
from gateway.store.failures import STORE_FAILURES, store_unavailable

__all__ = ["MASKED_MESSAGE", "format_error", "gateway_error_of", "strip_suggestions"]

log = logging.getLogger(__name__)

MASKED_MESSAGE = "Unexpected error."
# graphql-core appends suggestions to some messages (variables' enum values among them).
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def strip_suggestions(message: str) -> str:
    return SUGGESTION.sub("", message)


def gateway_error_of(error: GraphQLError) -> GatewayError | None:
    """The gateway's error behind `error`: the one a resolver raised, or STORE_UNAVAILABLE for the
    store failing under it (gateway.store.failures); None for anything else."""
    original = error.original_error
    if isinstance(original, GatewayError):
        return original
    if isinstance(original, STORE_FAILURES):
        return store_unavailable()
    return None


def format_error(error: GraphQLError, request_id: str, uncoded: str = "GRAPHQL_VALIDATION_FAILED") -> dict[str, Any]:
    """The client's view of `error`; `uncoded` is the code of graphql-core's own refusals in this phase
    (validation, or the coercion of variables at execution)."""
    original = gateway_error_of(error) or error.original_error
    if isinstance(original, GraphQLError):
        # graphql-core wraps its own refusals (e.g. a variable's bad enum value); they are the client's.
        original = None
    extensions: dict[str, Any]
    if isinstance(original, GatewayError):
        message = original.message
        extensions = {"code": original.code, **original.extensions()}
    elif original is None:
        message = strip_suggestions(error.message)
        code = (error.extensions or {}).get("code")
        if code is None:
            code = "GRAPHQL_PARSE_FAILED" if isinstance(error, GraphQLSyntaxError) else uncoded
        extensions = {"code": code}
    else:
        log.error("unexpected error in request %s at %s", request_id, error.path, exc_info=original)
        message = MASKED_MESSAGE
        extensions = {"code": "INTERNAL", "requestId": request_id}
    formatted: dict[str, Any] = {"message": message, "extensions": extensions}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = error.path
    return formatted
