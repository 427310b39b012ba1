"""Share surges: the releases whose shares per hour stand far above the video's own running median.

Read from the share releases a principal may see and nothing else, at the
principal's granularity floor, as a timeline is (gateway.privacy.release):

* **Points.** In each floor bucket (an hour for the creator, a day for an app)
  in which a visible release was made, the last one: its count of shares and
  of sharers, stamped with the bucket's start. A release's own moment is the
  arrival that completed it; served to the minute it would line up with a
  comment, so no finer time than the floor is ever read.
* **Shares per hour** of a point: the shares it adds to the point before it,
  over the hours between the two buckets' starts (at least one bucket, so never
  a rate over a fraction of an hour). The first point has no rate: nothing
  before it says when its shares came.
* **Running median** of a point: the median of the rates of every point
  before it. Until `MIN_PRECEDING_RATES` of them exist, a median says too
  little about the video's own pace, and no point is a surge.
* **A surge**: a point whose rate exceeds the policy's factor
  (`share_surge_factor`) times its running median, served with its rate and
  the ratio of the two. A point that adds fewer than k sharers (a principal with
  a larger k than the history's sees releases at multiples of its k, which may
  lie closer) is never served as a surge, though its rate joins the median.

Every point is a value of the history, so a surge appears, moves or goes only
with whole releases of at least k new sharers. Arithmetic is exact (fractions):
whether a rate exceeds the factor times a median never hangs on rounding.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from itertools import pairwise

__all__ = ["MIN_PRECEDING_RATES", "Point", "Surge", "share_surges"]

MIN_PRECEDING_RATES = 3

_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, slots=True)
class Point:
    """The last visible release in a floor bucket: the bucket's start, the shares and the sharers."""

    start: datetime
    shares: int
    sharers: int


@dataclass(frozen=True, slots=True)
class Surge:
    released_at: datetime  # the start of the floor bucket the release was made in
    factor: Fraction  # shares per hour over the running median
    shares_per_hour: Fraction


def share_surges(points: Sequence[Point], factor: Fraction, k: int) -> list[Surge]:
    """The surges among `points` (oldest first, one a bucket), oldest first."""
    surges = []
    rates: list[Fraction] = []  # the rates so far, in order of size
    for before, point in pairwise(points):
        hours = Fraction(int((point.start - before.start).total_seconds()), _SECONDS_PER_HOUR)
        rate = (point.shares - before.shares) / hours
        if len(rates) >= MIN_PRECEDING_RATES:
            median = _median(rates)
            if median > 0 and rate > factor * median and point.sharers - before.sharers >= k:
                surges.append(Surge(point.start, rate / median, rate))
        bisect.insort(rates, rate)
    return surges


def _median(ordered: list[Fraction]) -> Fraction:
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
