"""Retention as served: the share of a video's viewers still watching at each tenth of it, from its depth cells.

Each viewer of a video with a known duration sits in one depth cell of the release history: the
furthest tenth of the video that their longest view reached (`0` … `90`, and `100`: to the end;
migration 0023). The cells are disjoint, so they are a breakdown like any other and are suppressed
as one (gateway.privacy.suppression: below k, with complements). The share still watching at p %
is the viewers in the cells from p on, over all the viewers of the release; it is served only where
it follows from what a breakdown of those cells would serve: either every cell from p on is
served (their sum), or every cell before p is (the total less their sum). Otherwise the point is
suppressed: served, it would give away a sum of suppressed cells that the complements protect only
as a whole.

One person moves the depth cells only as a viewer moves between them (a longer view), and that
reaches a served value only with a release of k new viewers, like every cell. A person's watch
fraction is coarsened to tenths and capped at the whole video, and their longest single view, not
their total watch time, places them: watching again and again takes nobody further than the end.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.privacy.suppression import Cell

__all__ = ["retention_points"]


def retention_points(cells: Sequence[Cell], viewers: int) -> list[tuple[int, float | None]]:
    """(percent, share still watching) at 10 %, 20 % … 100 %, from the depth `cells` as served (in
    order from `000` to `100`, suppressed ones with no count) over the release's `viewers`; a share
    is None where it is suppressed, and wherever there are no viewers."""
    points: list[tuple[int, float | None]] = []
    for index in range(1, len(cells)):
        reached, short = cells[index:], cells[:index]
        still: int | None = None
        if viewers > 0 and all(cell.count is not None for cell in reached):
            still = sum(cell.count or 0 for cell in reached)
        elif viewers > 0 and all(cell.count is not None for cell in short):
            still = viewers - sum(cell.count or 0 for cell in short)
        share = None if still is None else min(1.0, max(0.0, still / viewers))
        points.append((int(cells[index].key), share))
    return points
