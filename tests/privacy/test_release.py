"""Which release a principal sees: the latest made before the end of the newest floor bucket closed a delay ago."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.privacy.release import Granularity, bucket_after, cutoff, settled, truncate

MOMENT = datetime(2026, 11, 25, 14, 37, 12, 5, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("granularity", "start"),
    [
        (Granularity.HOUR, datetime(2026, 11, 25, 14, tzinfo=UTC)),
        (Granularity.DAY, datetime(2026, 11, 25, tzinfo=UTC)),
        (Granularity.WEEK, datetime(2026, 11, 23, tzinfo=UTC)),
        (Granularity.MONTH, datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_truncate_gives_the_bucket_start(granularity: Granularity, start: datetime) -> None:
    assert truncate(MOMENT, granularity) == start
    assert truncate(start, granularity) == start
    assert start < bucket_after(start, granularity) and truncate(bucket_after(start, granularity), granularity) == bucket_after(start, granularity)


def test_month_after_december_is_january() -> None:
    assert bucket_after(datetime(2026, 12, 1, tzinfo=UTC), Granularity.MONTH) == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "granularity", "expected"),
    [
        # 14:37 less an hour is 13:37: the 12:00-13:00 hour closed more than an hour ago, 13:00-14:00 did not.
        (MOMENT, Granularity.HOUR, datetime(2026, 11, 25, 13, tzinfo=UTC)),
        (MOMENT, Granularity.DAY, datetime(2026, 11, 25, tzinfo=UTC)),
        # 00:30 less an hour is yesterday: yesterday is not served until 01:00.
        (datetime(2026, 11, 25, 0, 30, tzinfo=UTC), Granularity.DAY, datetime(2026, 11, 24, tzinfo=UTC)),
    ],
)
def test_cutoff_is_the_end_of_the_newest_bucket_closed_a_delay_ago(now: datetime, granularity: Granularity, expected: datetime) -> None:
    assert cutoff(now, granularity, timedelta(hours=1)) == expected


def test_a_cutoff_is_settled_once_every_commit_before_it_is_seen() -> None:
    assert not settled(MOMENT, MOMENT)
    assert not settled(MOMENT - timedelta(seconds=30), MOMENT)
    assert settled(MOMENT - timedelta(minutes=1), MOMENT)
