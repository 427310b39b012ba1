"""k-threshold suppression of breakdown cells, within one release.

A cell backed by fewer than k distinct actors is served as `count: null,
suppressed: true`, and so is an empty one: otherwise "suppressed" would mean
"one to k-1 actors", which is itself a presence. Whenever a cell is
suppressed while the total is visible elsewhere, the total less the visible cells
is the sum of the suppressed ones: alone, that would give back the one small cell
among empty ones. The smallest visible cell is therefore suppressed with them
(complementary suppression), so that sum always includes at least k people. That
the complement is taken does not depend on the small cells' values (empty cells
count as suppressed too), so which cells are served says nothing about them.

A breakdown whose total also counts activity in no cell (anonymous shares, which count in a
video's shares and in no channel) has that remainder as one more suppressed cell, always there,
whether or not anyone is in it: the smallest visible cell is always suppressed with it, so the
total less the visible cells never gives back how many shares were anonymous.

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


def suppress(buckets: Sequence[Cell], k: int, *, pool_key: str | None = None, remainder: bool = False) -> list[Cell]:
    """`buckets` (every count known), in their order, with each one below `k` distinct actors suppressed, plus
    complementary suppression (the total is taken to be visible): when any cell is suppressed,
    the smallest visible one is too.

    With `pool_key` (a breakdown over a domain too large to list, such as regions), suppressed
    cells are not listed by key: they are served as one suppressed `pool_key` cell, always
    present, which counts as the one suppressed cell for complementary suppression whenever there
    is a threshold: the smallest listed cell always joins it, so whether the pool holds anything
    does not show either.

    With `remainder`, the total also counts what is in no cell: that remainder, unlisted, counts as
    a suppressed cell whenever there is a threshold, as the pool does."""
    hidden = {index for index, bucket in enumerate(buckets) if bucket.actors < k}
    shown = [index for index in range(len(buckets)) if index not in hidden]

    def hide_smallest() -> None:
        smallest = min(shown, key=lambda index: (buckets[index].count or 0, buckets[index].actors, str(buckets[index].key)))
        hidden.add(smallest)
        shown.remove(smallest)

    # The pool and the remainder are always there as suppressed cells; listed, empty cells are suppressed too.
    if k > 0 and shown and (hidden or pool_key is not None or remainder):
        hide_smallest()
    if pool_key is None:
        return [Cell(bucket.key, None if index in hidden else bucket.count, bucket.actors) for index, bucket in enumerate(buckets)]
    shown_cells = [Cell(bucket.key, bucket.count, bucket.actors) for index, bucket in enumerate(buckets) if index not in hidden]
    return [*shown_cells, Cell(pool_key, None, sum(buckets[index].actors for index in hidden))]
