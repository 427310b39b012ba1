"""Closed buckets after a delay, and totals that grow in steps of k."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy.release import bucket_after, cutoff, released_sums, truncate
from gateway.store.queries import Granularity

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


def test_totals_wait_for_k_units() -> None:
    rows = [((1,), 1), ((2,), 1), ((1,), 1), ((1,), 1), ((5,), 1), ((1,), 1)]
    assert released_sums(rows[:4], 5, 1).sums == [0]
    released = released_sums(rows, 5, 1)
    assert (released.sums, released.last) == ([10], 4)


series = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 6)), max_size=40)


@given(series, st.integers(1, 8), st.integers(0, 40), st.integers(0, 40))
def test_two_answers_differ_by_k_units_or_not_at_all(rows: list[tuple[int, int]], k: int, first: int, second: int) -> None:
    """Asked at two times (the closed buckets then being two prefixes of the series), the released
    totals are equal, or what lies between them holds at least k units."""
    early, late = sorted((first, second))
    data = [((count,), units) for count, units in rows]
    before = released_sums(data[:early], k, 1)
    after = released_sums(data[:late], k, 1)
    assert after.last >= before.last
    assert after.sums[0] >= before.sums[0] or any(count < 0 for count, _ in rows)
    if after.last != before.last:
        assert sum(units for _, units in data[before.last + 1 : after.last + 1]) >= k
        assert after.sums[0] - before.sums[0] == sum(row[0][0] for row in data[before.last + 1 : after.last + 1])
    else:
        assert after.sums == before.sums
