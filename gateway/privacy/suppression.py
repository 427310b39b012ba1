"""k-threshold suppression of breakdown cells, within one release.

A cell backed by fewer than k distinct actors is served as `count: null, suppressed: true`, and so
is an empty one: otherwise "suppressed" would mean "one to k-1 actors", which is itself a presence.
Whenever a cell is suppressed while the total is visible elsewhere, the total less the visible cells
is the sum of the suppressed ones: alone, that would give back the one small cell among empty ones.
The smallest visible cell is therefore suppressed with them (complementary suppression), so that sum
always includes at least k people.

The smallest alone is not enough: it holds at least k, and, being the smallest, no more than the
smallest cell still served. Where those are close the small cells are pinned down: with five sharers
on each of nine channels and one sharing anonymously, the total less the eight channels served less
the hidden one (5, between k and 5) was exactly the one anonymous share. So a second cell goes with
them, the first served one by key: nothing bounds it above but the total (chosen by size, it would
bound the others again), and whatever the small cells hold, the world where they hold nobody and
their activity is in that cell is served alike. Nor can the owner tell the small cells' activity
from that cell's.

That the complements are taken does not depend on the small cells' values (empty cells count as
suppressed too), so which cells are served says nothing about them.

The order of what is served never depends on a suppressed cell's size:
visible cells come first, largest first; suppressed cells follow in key order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Cell", "suppress"]


@dataclass(frozen=True, slots=True)
class Cell:
    key: str
    count: int | None  # None when suppressed
    actors: int  # distinct people behind it

    @property
    def suppressed(self) -> bool:
        return self.count is None


def suppress(buckets: Sequence[Cell], k: int, *, pool_key: str | None = None) -> list[Cell]:
    """`buckets` (every count known), in their order, with each one below `k` distinct actors suppressed, plus
    complementary suppression (the total is taken to be visible): when any cell is suppressed,
    the smallest visible one is too, and then the first visible one by key.

    With `pool_key` (a breakdown over a domain too large to list, such as regions), suppressed
    cells are not listed by key: they are served as one suppressed `pool_key` cell, always
    present, which counts as a suppressed cell for complementary suppression whenever there is a
    threshold: the complements always join it, so whether the pool holds anything does not show
    either."""
    hidden = {index for index, bucket in enumerate(buckets) if bucket.actors < k}
    shown = [index for index in range(len(buckets)) if index not in hidden]

    def hide(index: int) -> None:
        hidden.add(index)
        shown.remove(index)

    # The pool is always there as one suppressed cell; listed, empty cells are suppressed too.
    if k > 0 and shown and (hidden or pool_key is not None):
        hide(min(shown, key=lambda index: (buckets[index].count or 0, buckets[index].actors, str(buckets[index].key))))
        if shown:
            hide(min(shown, key=lambda index: str(buckets[index].key)))
    if pool_key is None:
        return [Cell(bucket.key, None if index in hidden else bucket.count, bucket.actors) for index, bucket in enumerate(buckets)]
    shown_cells = [Cell(bucket.key, bucket.count, bucket.actors) for index, bucket in enumerate(buckets) if index not in hidden]
    return [*shown_cells, Cell(pool_key, None, sum(buckets[index].actors for index in hidden))]
