"""A creator's audience as released: retention of a video, and viewers by hour of the week in a time zone.

Resolvers ask the privacy service for cells already suppressed (gateway.privacy.disclosure) and
only shape them. The hour-of-week cells are kept in UTC; a time zone relabels them, moving each
whole cell by the zone's offset at the time of the request, so every zone is served the same
cells, suppressed alike.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import strawberry

from gateway.errors import BadUserInput
from gateway.privacy.suppression import Cell

__all__ = ["NO_DURATION", "ActivityCell", "AudienceActivity", "Retention", "RetentionPoint", "activity", "retention", "week_hour_shift"]

HOURS_A_WEEK = 7 * 24


@strawberry.type(description="The share of the viewers still watching at one tenth of the video.")
class RetentionPoint:
    percent: int = strawberry.field(description="How far into the video: 10, 20, … 100 (per cent of its duration).")
    share: float | None = strawberry.field(
        description="The share of the video's viewers whose longest view reached this point; null when suppressed."
    )
    suppressed: bool


@strawberry.type(
    description="Viewers still watching at each tenth of the video, from the release the principal sees. Each viewer "
    "counts once, by their longest view; points that would tell fewer than k viewers apart are suppressed."
)
class Retention:
    points: list[RetentionPoint]


@strawberry.type(description="Distinct viewers in one hour of the week; `viewers` is null when suppressed.")
class ActivityCell:
    day_of_week: int = strawberry.field(description="ISO day of the week in the time zone: 1 = Monday … 7 = Sunday.")
    hour: int = strawberry.field(description="Hour of the day in the time zone, 0–23.")
    viewers: int | None
    suppressed: bool


@strawberry.type(
    description="The creator's distinct viewers by hour of the week, across all their videos, as released: 168 cells, "
    "always all present, each below k suppressed (with complements)."
)
class AudienceActivity:
    time_zone: str
    cells: list[ActivityCell]


# Why a video has no retention: it is null, with this error at its path (the rest of the answer is served).
NO_DURATION = "this video's retention is not known: it was published without `duration_ms`"


def retention(points: list[tuple[int, float | None]]) -> Retention:
    return Retention(points=[RetentionPoint(percent=percent, share=share, suppressed=share is None) for percent, share in points])


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def week_hour_shift(time_zone: str, now: datetime) -> int:
    """The zone's offset from UTC at `now` in whole hours: a UTC hour is labelled
    with the local hour its middle falls in (India's +5:30 moves cells by 6 hours, a cell 00:00–01:00
    UTC being 05:30–06:30 there). A refused name is BAD_USER_INPUT."""
    # Only a name the tz database lists is opened: zoneinfo raises OSError for a directory of it
    # ("Europe") or an over-long name, which the GraphQL boundary would take for the store failing.
    if time_zone not in _zone_names():
        shown = time_zone if len(time_zone) <= 40 else time_zone[:40] + "…"
        raise BadUserInput(f"`timeZone` must be an IANA time zone name, e.g. Europe/Berlin; {shown!r} is not one")
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise BadUserInput(f"`timeZone` {time_zone!r} cannot be read from the tz database") from exc
    offset = now.astimezone(zone).utcoffset() or timedelta(0)
    return (int(offset.total_seconds()) + 1800) // 3600


def activity(time_zone: str, cells: list[Cell], shift: int) -> AudienceActivity:
    """The UTC hour-of-week `cells` (keys 0 … 167), each moved `shift` hours, Monday 0:00 first."""
    served: list[ActivityCell] = []
    for cell in cells:
        local = (int(cell.key) + shift) % HOURS_A_WEEK
        served.append(ActivityCell(day_of_week=local // 24 + 1, hour=local % 24, viewers=cell.count, suppressed=cell.suppressed))
    served.sort(key=lambda cell: (cell.day_of_week, cell.hour))
    return AudienceActivity(time_zone=time_zone, cells=served)
