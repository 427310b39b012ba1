"""One request's privacy layer: the policy's terms applied to every aggregate a resolver serves.

Resolvers hand it what they read from the rollups; it hands back what may be
released (suppressed cells, closed and delayed buckets, totals in steps of k,
noise for the principals whose obligations carry ε), keeps the tally that
becomes `extensions.privacy`, and records each noisy release for the budget.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any, cast

import orjson

from gateway.auth import Principal
from gateway.privacy.noise import noisy_count
from gateway.privacy.release import bucket_after, buckets_between, cutoff, truncate
from gateway.privacy.suppression import Cell, suppress
from gateway.privacy.terms import PrivacyTerms
from gateway.store.queries import Bucket, Granularity

__all__ = ["PrivacyLayer", "PrivacyTotals"]

# The coarser buckets a timeline bucket nests in (a week does not nest in a month).
NESTS_IN = {
    Granularity.HOUR: (Granularity.DAY,),
    Granularity.DAY: (Granularity.WEEK, Granularity.MONTH),
    Granularity.WEEK: (),
    Granularity.MONTH: (),
}


class PrivacyLayer:
    def __init__(
        self, terms: PrivacyTerms, principal: Principal, noise_key: bytes, now: datetime, requested: frozenset[str] | None = None
    ) -> None:
        self.terms = terms
        # The `Type.field` coordinates the operation asks for (None: unknown, take it to be all).
        self.requested = requested
        self._principal = principal
        self._noise_key = noise_key
        self.now = now
        # Data at or after this instant is not served: the newest floor bucket closed `delay` ago ends here.
        self.cutoff = self.served_until(terms.floor)
        self.suppressed_cells = 0
        self.noised = False
        # Noisy releases of this request: digest of (question, data) → ε it costs.
        self.releases: dict[bytes, Fraction] = {}
        self.epsilon_spent: Fraction = Fraction(0)
        # Noised cells already worked out in this request (a video's stats and its channels share them).
        self._noised_breakdowns: dict[tuple[str, str, str, str | None, bool], list[Cell]] = {}
        self.budget_left: Fraction | None = None

    @property
    def k(self) -> int:
        return self.terms.k

    # -- time -------------------------------------------------------------------------------

    def served_range(self, granularity: Granularity, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """[start, end) widened to whole `granularity` buckets at the start and cut to whole, closed,
        delayed buckets at the end: overlapping ranges share their buckets, and no bucket is partial."""
        start = truncate(start, granularity)
        return start, max(start, min(truncate(end, granularity), self.served_until(granularity)))

    def served_until(self, granularity: Granularity) -> datetime:
        """The end of the newest `granularity` bucket that closed at least the delay ago."""
        return cutoff(self.now, granularity, self.terms.delay)

    # -- cells ------------------------------------------------------------------------------

    def timeline(
        self,
        metric: str,
        subject: str,
        lifetime: Sequence[Bucket],
        granularity: Granularity,
        start: datetime,
        end: datetime,
        *,
        clamp: bool = True,
    ) -> list[Cell]:
        """The buckets of [start, end) (a served range), densely, from `lifetime`: the subject's
        non-empty buckets up to `served_until`, oldest first.

        Which buckets are suppressed is decided over the whole lifetime, not the range asked
        for: were it decided per range, a narrow range could show a bucket that a wide one
        suppresses as the complement of a small one, and the two together would give the
        small one back (a tracker). See `_complements` for the rest."""
        k = self.terms.k
        found = {bucket.key: bucket for bucket in lifetime}
        complements = self._complements(lifetime, granularity)
        cells = []
        moment = start
        while moment < end:
            bucket = found.get(moment, Bucket(moment, 0, 0))
            shown = bucket.actors >= k and bucket.key not in complements
            cells.append(Cell(moment, bucket.count if shown else None, bucket.actors))
            moment = bucket_after(moment, granularity)
        self.suppressed_cells += sum(1 for cell in cells if cell.count is None)
        return self._noised(metric, subject, granularity.value, cells, clamp)

    def _complements(self, lifetime: Sequence[Bucket], granularity: Granularity) -> frozenset[datetime]:
        """The visible buckets of `lifetime` suppressed as complements. A group of buckets whose sum
        can be known (the whole lifetime, against its total; each coarser bucket the timeline
        nests in, a day of hours, a week or a month of days, against the coarser timeline) that
        holds any suppressed bucket, empty ones included, has its smallest visible bucket
        suppressed too: the group's sum less the visible buckets then always includes at least k
        people. Whether a group takes a complement depends only on how many of its buckets are
        visible, never on the small ones' values, so the pattern of what is served tells nothing.
        """
        if self.terms.k == 0 or not lifetime:
            return frozenset()
        return _complements(tuple(lifetime), granularity, self.served_until(granularity), self.terms.k)

    def cells(
        self,
        metric: str,
        subject: str,
        buckets: Sequence[Bucket],
        *,
        scope: str,
        pool_key: str | None = None,
        clamp: bool = True,
        tally: bool = True,
    ) -> list[Cell]:
        """A breakdown's `buckets` as they may be served: k-suppressed (with complementary
        suppression; pooled into one `pool_key` cell when given) and, for principals with ε for
        `metric`, noised, as one noisy release. `scope` names the kind of cell ("channel",
        "region"…) for the PRF."""
        # A breakdown is one dataloader value per request: a video's stats and its channels ask for
        # the same cells, which are suppressed and noised once.
        memo = (metric, subject, scope, pool_key, clamp)
        cells = self._noised_breakdowns.get(memo)
        if cells is None:
            cells = self._noised_breakdowns[memo] = self._noised(
                metric, subject, scope, suppress(buckets, self.terms.k, pool_key=pool_key), clamp
            )
        if tally:
            self.suppressed_cells += sum(1 for cell in cells if cell.count is None)
        return cells

    def _noised(self, metric: str, subject: str, scope: str, cells: list[Cell], clamp: bool) -> list[Cell]:
        epsilon = self.terms.epsilon.get(metric)
        visible = tuple((str(cell.key), cell.count) for cell in cells if cell.count is not None)
        if epsilon is None or not visible:
            return cells
        self.noised = True
        digest, noisy = _noised_cells(self._noise_key, self._principal.app_id, epsilon, metric, subject, scope, visible, clamp)
        self.releases[digest] = epsilon
        answers = iter(noisy)
        return [cell if cell.count is None else Cell(cell.key, next(answers), cell.actors) for cell in cells]

    def asks_for(self, *coordinates: str) -> bool:
        """Whether the operation asks for any of `coordinates`: a noisy release is only made
        (and charged) for what is asked."""
        return self.requested is None or not self.requested.isdisjoint(coordinates)

    def count(self, metric: str, subject: str, value: int, *, clamp: bool = True) -> int:
        """A released total: noised (one release) when the principal's terms carry ε for `metric`."""
        epsilon = self.terms.epsilon.get(metric)
        if epsilon is None:
            return value
        self.noised = True
        digest, noisy = _noised_total(self._noise_key, self._principal.app_id, epsilon, metric, subject, value, clamp)
        self.releases[digest] = epsilon
        return noisy

    # -- report -----------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """`extensions.privacy` of the response."""
        return {
            "k": self.terms.k,
            "granularityFloor": self.terms.floor.name,
            "suppressedCells": self.suppressed_cells,
            "noised": self.noised,
            "epsilonSpent": float(self.epsilon_spent),
            "budgetLeft": None if self.budget_left is None else float(self.budget_left),
        }


class PrivacyTotals:
    """What the privacy layer did across requests, for /metrics."""

    def __init__(self) -> None:
        self.responses = 0
        self.suppressed_cells = 0
        self.noised_responses = 0

    def record(self, layer: PrivacyLayer) -> None:
        self.responses += 1
        self.suppressed_cells += layer.suppressed_cells
        self.noised_responses += layer.noised


def _release_digest(noise_key: bytes, app_id: str | None, *question: Any) -> bytes:
    """Identifies a noisy release (the question and the data it was answered from) for the budget."""
    return hmac.new(noise_key, orjson.dumps([app_id, *question]), hashlib.sha256).digest()


# A pure function of the lifetime and the terms; a dashboard polls the same (cached) lifetime.
@functools.lru_cache(maxsize=4_096)
def _complements(lifetime: tuple[Bucket, ...], granularity: Granularity, until: datetime, k: int) -> frozenset[datetime]:
    """See `PrivacyLayer._complements`."""
    starts = [cast(datetime, bucket.key) for bucket in lifetime]  # a timeline's keys are bucket starts
    first = starts[0]
    visible = {start: bucket for start, bucket in zip(starts, lifetime, strict=True) if bucket.actors >= k}
    # Each group: how many buckets it spans, and its visible members.
    groups: list[tuple[int, list[datetime]]] = [(buckets_between(first, until, granularity), list(visible))]
    for parent in NESTS_IN[granularity]:
        members: dict[datetime, list[datetime]] = {}
        for start in visible:
            members.setdefault(truncate(start, parent), []).append(start)
        for parent_start, starts_inside in members.items():
            span = buckets_between(max(parent_start, first), min(bucket_after(parent_start, parent), until), granularity)
            groups.append((span, starts_inside))
    # One pass: a complement taken for one group never undoes another group's.
    complements: set[datetime] = set()
    for span, keys in groups:
        if keys and span > len(keys) and not complements.intersection(keys):
            complements.add(min(keys, key=lambda key: (visible[key].count, visible[key].actors, key)))
    return frozenset(complements)


@functools.lru_cache(maxsize=65_536)
def _noised_total(
    noise_key: bytes, app_id: str | None, epsilon: Fraction, metric: str, subject: str, value: int, clamp: bool
) -> tuple[bytes, int]:
    """The release digest of a total and its noisy value."""
    digest = _release_digest(noise_key, app_id, "total", metric, subject, value)
    return digest, _clamped(noisy_count(noise_key, epsilon, value, metric, subject, "total", app_id), clamp)


# The noise of a timeline or breakdown is a pure function of its inputs; a dashboard polled by an
# app asks the same ones over and over, so the whole list is kept, not just each draw.
@functools.lru_cache(maxsize=8_192)
def _noised_cells(
    noise_key: bytes,
    app_id: str | None,
    epsilon: Fraction,
    metric: str,
    subject: str,
    scope: str,
    visible: tuple[tuple[str, int], ...],
    clamp: bool,
) -> tuple[bytes, tuple[int, ...]]:
    """The release digest of `visible` cells and their noisy counts, in order."""
    digest = _release_digest(noise_key, app_id, "cells", metric, subject, scope, [list(cell) for cell in visible])
    noisy = (noisy_count(noise_key, epsilon, count, metric, subject, f"{scope}:{key}", app_id) for key, count in visible)
    return digest, tuple(_clamped(answer, clamp) for answer in noisy)


def _clamped(answer: int, clamp: bool) -> int:
    """A noisy count, at least 0 unless it may go negative (a net count such as likes)."""
    return max(0, answer) if clamp else answer
