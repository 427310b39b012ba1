"""Average watch time as served (gateway/privacy/watch_time.py): one person's capped share moves it by
one step at most, and only from within one cap of a half-step."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy.watch_time import average_watch_seconds, in_steps

CAP_MS = 180_000

caps = st.integers(1, 600_000)
ks = st.integers(1, 100)
sums = st.integers(0, 10**12)


@given(cap=caps, k=ks, others=sums, first=st.integers(0, 10**7), second=st.integers(0, 10**7))
def test_one_person_moves_the_served_steps_by_one_at_most(cap: int, k: int, others: int, first: int, second: int) -> None:
    """Twin releases whose capped sums differ only in one person's share (each up to the cap) are
    served the same number of steps, or adjacent ones, and adjacent ones only when a half-step
    lies between the two sums."""
    step = k * cap
    low, high = sorted((others + min(first, cap), others + min(second, cap)))
    fewer, more = in_steps(low, step), in_steps(high, step)
    assert more - fewer in (0, 1)
    assert fewer == math.floor(Fraction(low, step) + Fraction(1, 2))  # the nearest step, halves up, by exact arithmetic
    if more != fewer:
        assert low < Fraction(2 * fewer + 1, 2) * step <= high


@pytest.mark.parametrize(
    ("capped_ms", "step_ms", "steps"),
    [
        pytest.param(0, 900_000, 0, id="nothing"),
        pytest.param(449_999, 900_000, 0, id="below-the-half"),
        pytest.param(450_000, 900_000, 1, id="the-half-rounds-up"),
        pytest.param(1_349_999, 900_000, 1, id="below-the-next-half"),
        pytest.param(1_350_000, 900_000, 2, id="the-next-half"),
    ],
)
def test_in_steps_is_the_nearest_whole_step_halves_up(capped_ms: int, step_ms: int, steps: int) -> None:
    assert in_steps(capped_ms, step_ms) == steps


@pytest.mark.parametrize(
    ("capped_ms", "views", "k", "seconds"),
    [
        pytest.param(2_400_000, 60, 5, 45.0, id="nearest-15-minutes-over-the-views"),
        pytest.param(2_400_000, 60, 50, 0.0, id="an-apps-k-makes-steps-of-150-minutes"),
        pytest.param(126_000, 7, 0, 18.0, id="no-threshold-exact"),
        pytest.param(0, 0, 5, None, id="no-views"),
    ],
)
def test_average_watch_seconds(capped_ms: int, views: int, k: int, seconds: float | None) -> None:
    assert average_watch_seconds(capped_ms, CAP_MS, views, k) == seconds
