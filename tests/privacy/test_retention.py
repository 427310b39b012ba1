"""Retention points from depth cells suppressed as a breakdown: a point is served only where it follows
from the release's total and the served cells."""

from __future__ import annotations

import pytest

from gateway.privacy.metrics import DEPTH_KEYS
from gateway.privacy.retention import retention_points
from gateway.privacy.suppression import Cell, suppress

K = 5


def depth_cells(*viewers: int) -> list[Cell]:
    """The depth cells (0 %, 10 % … 100 %) holding `viewers` each, suppressed under K."""
    assert len(viewers) == len(DEPTH_KEYS)
    return suppress([Cell(key, count, count) for key, count in zip(DEPTH_KEYS, viewers, strict=True)], K)


def test_every_point_is_served_when_every_cell_holds_k_viewers() -> None:
    cells = depth_cells(*([10] * 11))

    shares = [share for _, share in retention_points(cells, 110)]

    assert shares == pytest.approx([(110 - 10 * n) / 110 for n in range(1, 11)])


def test_points_between_suppressed_cells_are_suppressed_and_the_others_follow_from_the_total() -> None:
    # Nobody stopped between 40 % and 50 % and one viewer between 50 % and 60 %: those two cells are
    # suppressed, and with them the smallest served one and the first served by key (0 %, 10 %).
    viewers = (10, 5, 20, 20, 0, 1, 9, 9, 9, 9, 50)
    cells = depth_cells(*viewers)
    total = sum(viewers)

    points = dict(retention_points(cells, total))

    assert [cell.key for cell in cells if cell.suppressed] == ["000", "010", "040", "050"]
    # Up to 50 %, suppressed cells lie on both sides of the point: it would tell a part of their sum.
    assert [points[percent] for percent in (10, 20, 30, 40, 50)] == [None] * 5
    # From 60 % on, every cell after is served: their sum.
    assert points[60] == pytest.approx((9 * 4 + 50) / total)
    assert points[100] == pytest.approx(50 / total)


def test_one_viewer_moving_within_suppressed_cells_moves_no_point() -> None:
    before = (10, 5, 20, 20, 0, 1, 9, 9, 9, 9, 50)
    after = (10, 5, 20, 20, 1, 0, 9, 9, 9, 9, 50)

    assert retention_points(depth_cells(*before), 142) == retention_points(depth_cells(*after), 142)


def test_a_point_with_every_suppressed_cell_before_it_is_the_total_less_the_served_cells() -> None:
    viewers = (1, 2, 30, 30, 30, 30, 30, 30, 30, 30, 30)
    cells = depth_cells(*viewers)

    points = dict(retention_points(cells, sum(viewers)))

    # 0 % and 10 % suppressed, and with them 20 % (the smallest served: a tie broken by key) and 30 %
    # (the first by key of those left).
    assert [cell.key for cell in cells if cell.suppressed] == ["000", "010", "020", "030"]
    assert [points[percent] for percent in (10, 20, 30)] == [None] * 3
    assert points[40] == pytest.approx(30 * 7 / sum(viewers))
    assert points[100] == pytest.approx(30 / sum(viewers))


def test_no_viewers_no_share() -> None:
    assert all(share is None for _, share in retention_points(depth_cells(*([0] * 11)), 0))
