"""Time ranges of timelines: defaults, and the limits a request may not pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.errors import BadUserInput
from gateway.privacy.release import Granularity

__all__ = ["DEFAULT_SPAN", "MAX_SPAN", "time_range"]

# The years a timeline may cover: the platform's, and far from the calendar's ends.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

# The range a timeline covers when the request names none.
DEFAULT_SPAN = {
    Granularity.HOUR: timedelta(hours=48),
    Granularity.DAY: timedelta(days=30),
    Granularity.WEEK: timedelta(weeks=26),
    Granularity.MONTH: timedelta(days=730),
}
# The longest range one request may ask for (about 750 buckets).
MAX_SPAN = {
    Granularity.HOUR: timedelta(days=31),
    Granularity.DAY: timedelta(days=731),
    Granularity.WEEK: timedelta(weeks=520),
    Granularity.MONTH: timedelta(days=3660),
}


def time_range(granularity: Granularity, start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The [start, end) a timeline covers; a range backwards or too long is bad input."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise BadUserInput(f"`{name}` must carry a time zone, e.g. 2026-11-01T00:00:00Z")
        if value is not None and not EARLIEST <= value < LATEST:
            raise BadUserInput(f"`{name}` must fall between {EARLIEST:%Y} and {LATEST:%Y}")
    end = end or now
    try:
        start = start or end - DEFAULT_SPAN[granularity]
    except OverflowError as exc:
        raise BadUserInput("`to` is too early for a default `from`; give `from` as well") from exc
    if start >= end:
        raise BadUserInput("`from` must be before `to`")
    if end - start > MAX_SPAN[granularity]:
        days = MAX_SPAN[granularity].days
        raise BadUserInput(f"a {granularity.name} timeline covers at most {days} days; narrow `from`/`to` or coarsen the granularity")
    return start, end
