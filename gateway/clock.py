"""The time as the gateway reads it: one injectable clock for ingest and for answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "to_minute", "utc_now"]

# What time it is, timezone-aware. Tests pass their own to play days of arrivals in seconds.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_minute(moment: datetime, phase: timedelta = timedelta(0)) -> datetime:
    """`moment` to the start of its minute, on a clock whose minutes begin `phase` (under a
    minute) past the hour's: the time an answer is given at. Every cutoff and default range of a
    request is taken from it, so one minute's answers to one request agree and can be kept
    (gateway.graphql.responses)."""
    return (moment - phase).replace(second=0, microsecond=0) + phase
