"""Opaque pagination cursors: a JSON list of the last row's sort key, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.errors import BadUserInput

__all__ = ["decode", "encode"]

Position = TypeVar("Position")


def encode(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


def decode(cursor: str, position: Callable[[list[Any]], Position], refusal: str) -> Position:
    """`position` turns the decoded parts into a sort key, raising ValueError (or TypeError) for
    anything a cursor of this connection cannot hold; every failure is `refusal` as bad input."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(parts, list):
            raise ValueError(cursor)
        return position(parts)
    except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
        raise BadUserInput(refusal) from exc
