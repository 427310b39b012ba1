"""The time as the gateway reads it: one injectable clock for ingest and for answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

# What time it is, timezone-aware. Tests pass their own to play days of arrivals in seconds.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
