"""Which release of a history a principal may see, and the time buckets of timelines.

Every principal reads the same histories (one per subject and metric, advanced
by arrival in steps of at least k new people). What differs is only which
release it may see, by two rules that any replica, any restart, applies alike:

* **Closed buckets, after a delay.** The latest release made before the end of
  the newest bucket of the principal's granularity floor that closed at least
  `delay` ago (`cutoff`): the public's moves a day at a time, an owner's an hour.
* **Steps of its own k.** A principal given a larger k than the history's sees
  only the releases at which the count of people crossed a multiple of its k
  (`gateway.store.releases`): still values of the same history.

So any two answers about a subject, to anyone, differ by whole releases or not
at all. A timeline counts activity by the release that brought it: a bucket is
the count at the last visible release made in it less the count at the last
one before it, so every bucket is a sum of whole releases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = ["Granularity", "bucket_after", "cutoff", "settled", "truncate"]


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# Releases are stamped when their arrival is applied and become visible at commit, a moment
# later; a cutoff this far in the past is behind every commit, and what it selects is final.
SETTLING = timedelta(minutes=1)


def truncate(moment: datetime, granularity: Granularity) -> datetime:
    """The start of the bucket (UTC; weeks start on Monday) that `moment` falls in."""
    moment = moment.astimezone(UTC)
    if granularity is Granularity.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity is Granularity.DAY:
        return day
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


_STEP = {Granularity.HOUR: timedelta(hours=1), Granularity.DAY: timedelta(days=1), Granularity.WEEK: timedelta(weeks=1)}


def bucket_after(start: datetime, granularity: Granularity) -> datetime:
    """The start of the bucket that follows the one starting at `start`."""
    if granularity is Granularity.MONTH:
        return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start + _STEP[granularity]


def cutoff(now: datetime, granularity: Granularity, delay: timedelta) -> datetime:
    """The end of the newest `granularity` bucket that closed at least `delay` before `now`:
    releases made at or after it are not seen."""
    return truncate(now - delay, granularity)


def settled(moment: datetime, now: datetime) -> bool:
    """Whether no release can still appear before `moment`."""
    return moment <= now - SETTLING
