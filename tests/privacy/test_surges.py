"""Share surges from a history's points, counted by hand: rates between buckets, running medians, the factor, k."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from gateway.privacy.surges import Point, Surge, share_surges

HOUR0 = datetime(2031, 5, 1, tzinfo=UTC)


def points(*steps: tuple[int, int, int]) -> list[Point]:
    """Points from (hours after HOUR0, shares, sharers), each cumulative."""
    return [Point(HOUR0 + timedelta(hours=hours), shares, sharers) for hours, shares, sharers in steps]


# Rates 5, 5, 5 (one release an hour), then 20 shares in one hour: 20 a hour over a median of 5.
STEADY_THEN_BURST = points((0, 5, 5), (1, 10, 10), (2, 15, 15), (3, 20, 20), (4, 40, 40))


def test_burst_over_the_running_median_is_a_surge() -> None:
    assert share_surges(STEADY_THEN_BURST, Fraction(3), 5) == [Surge(HOUR0 + timedelta(hours=4), Fraction(4), Fraction(20))]


def test_rate_is_over_the_hours_between_buckets() -> None:
    # The burst's 20 shares came over 5 hours since the point before: 4 an hour, under 3 × 5.
    spread = points((0, 5, 5), (1, 10, 10), (2, 15, 15), (3, 20, 20), (8, 40, 40))
    assert share_surges(spread, Fraction(3), 5) == []


def test_median_is_of_every_rate_before_and_the_middle_pair_averaged() -> None:
    # Rates 2, 10, 4, 6 (median of the first three: 4; of four: (4 + 6) / 2 = 5), then 16 and 16.
    history = points((0, 5, 5), (5, 15, 15), (6, 25, 25), (11, 45, 45), (12, 51, 51), (13, 67, 67), (14, 83, 83))
    # 6 is not over 3 × 4; 16 is over 3 × 5; the next 16 is not over 3 × 6 (median of 2, 4, 6, 10, 16).
    assert share_surges(history, Fraction(3), 5) == [Surge(HOUR0 + timedelta(hours=13), Fraction(16, 5), Fraction(16))]


@pytest.mark.parametrize(
    ("factor", "surges"),
    [
        pytest.param(Fraction(4), 0, id="equal-to-the-factor-is-not-over-it"),
        pytest.param(Fraction(39, 10), 1, id="just-over-the-factor"),
        pytest.param(Fraction(2), 1, id="a-lower-factor"),
    ],
)
def test_factor_is_the_policys(factor: Fraction, surges: int) -> None:
    assert len(share_surges(STEADY_THEN_BURST, factor, 5)) == surges


def test_no_surge_until_three_rates_before_it() -> None:
    # Rates 5, 5, then 40: only two rates before the burst.
    early = points((0, 5, 5), (1, 10, 10), (2, 15, 15), (3, 55, 55))
    assert share_surges(early, Fraction(3), 5) == []


def test_first_point_has_no_rate() -> None:
    # 500 shares at the first point say nothing of a pace: rates 5, 5, 5 follow, no surge.
    assert share_surges(points((0, 500, 500), (1, 505, 505), (2, 510, 510), (3, 515, 515)), Fraction(3), 5) == []


def test_fewer_new_sharers_than_k_is_never_a_surge() -> None:
    # The burst adds 20 shares by 4 sharers: under k = 5 (a principal with a larger k than the
    # history's sees points closer than its k).
    few = points((0, 5, 5), (1, 10, 10), (2, 15, 15), (3, 20, 20), (4, 40, 24))
    assert share_surges(few, Fraction(3), 5) == []
    assert share_surges(few, Fraction(3), 4) == [Surge(HOUR0 + timedelta(hours=4), Fraction(4), Fraction(20))]


def test_zero_median_is_no_surge() -> None:
    flat = points((0, 5, 5), (1, 5, 5), (2, 5, 5), (3, 5, 5), (4, 25, 25))
    assert share_surges(flat, Fraction(3), 5) == []


def test_no_points_no_surges() -> None:
    assert share_surges([], Fraction(3), 5) == []
    assert share_surges(points((0, 5, 5)), Fraction(3), 5) == []
