"""One request's privacy service: every number the API serves about a video or a creator comes from here.

Resolvers ask it for a total, a breakdown or a timeline and only shape the
answer. It reads the release the principal may see (gateway.privacy.release,
through gateway.store.releases), suppresses breakdown cells below the
principal's k within that release, draws the noise the principal's terms
carry, and keeps the tally that becomes `extensions.privacy` and the draws the
ε budget is charged for.

Noise is per quantity, not per question: one draw per (subject, metric,
breakdown cell, true count), keyed by the server's secret only, so every
field, app, release and day that exposes a quantity exposes the same draw. It
covers what the public cannot read exactly (breakdown cells and completed
views); totals and timelines are values of the same history the public reads,
and are served exact. The two figures that are not counts of people are held to
the same terms: completed views are a breakdown of views (served only when k or
more viewers are on each side), and watch time is capped per viewer and served
in steps of k viewers (gateway.privacy.watch_time).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

import orjson
from strawberry.dataloader import DataLoader

from gateway.privacy.metrics import AUDIENCE, COMMENTS, FOLLOWERS, LIKES, SHARES, VIEWS, Dimension, Metric
from gateway.privacy.noise import noisy_count
from gateway.privacy.release import Granularity, bucket_after, cutoff, settled, truncate
from gateway.privacy.retention import retention_points
from gateway.privacy.suppression import Cell, suppress
from gateway.privacy.surges import Point, Surge, share_surges
from gateway.privacy.terms import PrivacyTerms
from gateway.privacy.watch_time import average_watch_seconds
from gateway.store.releases import Release, ReleaseReader, StoredCell

__all__ = ["CreatorTotals", "Disclosure", "Series", "VideoTotals"]


@dataclass(frozen=True, slots=True)
class VideoTotals:
    views: int
    likes: int
    comments: int
    shares: int
    average_watch_seconds: float | None  # None: no views, counts that carry noise, or a release without a capped sum
    reach: int  # distinct viewers: the people of the views' release


@dataclass(frozen=True, slots=True)
class CreatorTotals:
    videos: int
    views: int
    likes: int
    comments: int
    shares: int
    followers: int
    reach: int  # distinct viewers across the creator's videos: the people of their audience's release


@dataclass(frozen=True, slots=True)
class Series:
    """A timeline as served: whole buckets in [start, end), each (bucket start, count)."""

    start: datetime
    end: datetime
    buckets: list[tuple[datetime, int]]


class Disclosure:
    def __init__(self, terms: PrivacyTerms, reader: ReleaseReader, noise_key: bytes, now: datetime) -> None:
        self.terms = terms
        self.now = now
        # Releases made at or after this instant are not seen.
        self.cutoff = cutoff(now, terms.floor, terms.delay)
        # Whether every release this request reads is final: made before a moment no commit can
        # still reach. (Then the answer can be kept: gateway.graphql.responses.) A timeline may
        # make `final` false later; `_settled` says only whether the cutoff itself has settled.
        self.final = self._settled = settled(self.cutoff, now)
        self._reader = reader
        self._noise_key = noise_key
        # Loaders of functions, not bound methods: a loader holding the service that holds it is a
        # cycle only the garbage collector frees (gateway.graphql.execution).
        self._releases: DataLoader[tuple[str, str], Release | None] = DataLoader(
            functools.partial(_load_releases, reader, self.cutoff, terms.k, self._settled)
        )
        self._cells: DataLoader[tuple[str, str, int], tuple[StoredCell, ...]] = DataLoader(functools.partial(_load_cells, reader))
        self.suppressed_cells = 0
        self.noised = False
        # What this request releases of noise, for the budget: a digest of each set of draws → its ε.
        self.draws: dict[bytes, Fraction] = {}
        self.epsilon_spent = Fraction(0)
        self.budget_left: Fraction | None = None

    # -- totals -----------------------------------------------------------------------------

    def release(self, subject: str, metric: Metric) -> asyncio.Future[Release | None]:
        """The release of `metric` of `subject` this principal sees (None: none yet)."""
        # Shared by every field that asks for it: graphql-core cancelling one of them (a sibling's
        # error nulled their parent) must not cancel the load the others await.
        return asyncio.shield(self._releases.load((subject, metric.code)))

    async def count(self, subject: str, metric: Metric) -> int:
        release = await self.release(subject, metric)
        return 0 if release is None else release.events

    async def video_totals(self, video_id: str) -> VideoTotals:
        views, likes, comments, shares = await asyncio.gather(*(self.release(video_id, metric) for metric in (VIEWS, LIKES, COMMENTS, SHARES)))
        return VideoTotals(
            views=_events(views),
            likes=_events(likes),
            comments=_events(comments),
            shares=_events(shares),
            average_watch_seconds=self._average_watch_seconds(views),
            reach=0 if views is None else views.people,
        )

    def _average_watch_seconds(self, views: Release | None) -> float | None:
        """Watch time per view as the principal's terms allow it (gateway.privacy.watch_time). Not
        where counts carry noise: the policy gives watch time no ε of its own."""
        if self.terms.noised or views is None or views.watch_capped_ms is None or views.watch_cap_ms is None:
            return None
        return average_watch_seconds(views.watch_capped_ms, views.watch_cap_ms, views.events, self.terms.k)

    async def creator_totals(self, creator_id: str, video_ids: Sequence[str]) -> CreatorTotals:
        metrics = (VIEWS, LIKES, COMMENTS, SHARES)
        # The creator's reach is their audience's release (migration 0023), read in the same batch: it
        # counts each viewer once across their videos, where a sum of the videos' viewers would not.
        counts, audience = await asyncio.gather(
            asyncio.gather(*(self.count(video_id, metric) for metric in metrics for video_id in video_ids), self.count(creator_id, FOLLOWERS)),
            self.release(creator_id, AUDIENCE),
        )
        views, likes, comments, shares = (sum(counts[index * len(video_ids) : (index + 1) * len(video_ids)]) for index in range(len(metrics)))
        return CreatorTotals(len(video_ids), views, likes, comments, shares, counts[-1], reach=0 if audience is None else audience.people)

    # -- breakdowns -------------------------------------------------------------------------

    async def breakdown(self, subject: str, metric: Metric, dimension_name: str) -> list[Cell]:
        """The cells of one breakdown of `metric` as of the principal's release: below k
        suppressed (with their complement against the release's total), noised where the
        principal's terms carry ε for it."""
        dimension = metric.dimension(dimension_name)
        epoch = self._reader.epoch
        release = await self.release(subject, metric)
        # One release's cells and k decide the suppressed cells: derived once, then kept (168 hours
        # of a creator's audience cost more to suppress than to serve).
        known = None if release is None else (subject, metric.code, dimension.code, release.seq, self.terms.k)
        kept: tuple[Cell, ...] | None = None if known is None else self._reader.derived(epoch, known)
        cells = None if kept is None else list(kept)
        if cells is None:
            stored = await self._stored_cells(subject, metric, dimension)
            # A domain is listed whole, empty cells included: which keys are listed says nothing about anyone.
            keys = dimension.domain if dimension.domain is not None else tuple(sorted(stored))
            cells = suppress([stored.get(key, Cell(key, 0, 0)) for key in keys], self.terms.k, pool_key=dimension.pool)
            if known is not None:
                self._reader.remember(epoch, known, tuple(cells))
        self.suppressed_cells += sum(1 for cell in cells if cell.count is None)
        return self._noised(subject, metric, dimension, cells)

    async def completed_views(self, video_id: str) -> int | None:
        """Views watched to the end, as of the principal's release, for a rate over its views.

        The views split into two cells, completed and not: a rate is the one cell against the
        release's total, so the other is its complement. Both are suppressed as a breakdown's
        are, on the release's exact counts: unless k or more viewers watched a view to the end
        and k or more watched one that they did not finish, the rate is withheld (None, counted
        in `suppressedCells`); otherwise a rate of 0, 0.2 or 1 would say what each of a few
        people did. Noised where the terms carry ε for it."""
        dimension = VIEWS.dimension("completion")
        stored = await self._stored_cells(video_id, VIEWS, dimension)
        completed, _ = suppress([stored.get(key, Cell(key, 0, 0)) for key in dimension.domain or ()], self.terms.k)
        if completed.count is None:
            self.suppressed_cells += 1
            return None
        return self._noised(video_id, VIEWS, dimension, [completed])[0].count

    async def retention(self, video_id: str) -> list[tuple[int, float | None]]:
        """The share of the video's viewers still watching at each tenth of it, as of the principal's
        release, from its depth cells suppressed as a breakdown (gateway.privacy.retention)."""
        views = await self.release(video_id, VIEWS)
        cells = await self.breakdown(video_id, VIEWS, "depth")
        return retention_points(cells, 0 if views is None else views.people)

    async def _stored_cells(self, subject: str, metric: Metric, dimension: Dimension) -> dict[str, Cell]:
        """The dimension's cells as of the principal's release, by key, counting what the dimension serves."""
        release = await self.release(subject, metric)
        if release is None:
            return {}
        cells = await asyncio.shield(self._cells.load((subject, metric.code, release.seq)))
        counts_people = dimension.counts == "people"
        return {
            cell.value: Cell(cell.value, cell.people if counts_people else cell.events, cell.people)
            for cell in cells
            if cell.dimension == dimension.code
        }

    def _noised(self, subject: str, metric: Metric, dimension: Dimension, cells: list[Cell]) -> list[Cell]:
        """`cells` with their visible counts noised, where the terms carry ε for the dimension. A
        cell's draw is keyed by what it counts (subject, metric, dimension, key) and by its true
        count: the same quantity gets the same draw from any release, field, app or day that shows
        it, and only a changed count draws again."""
        epsilon = self.terms.epsilon.get(dimension.noise) if dimension.noise else None
        visible = [cell for cell in cells if cell.count is not None]
        if epsilon is None or not visible:
            return cells
        self.noised = True
        # A breakdown's cells are disjoint counts: released together they are one set of draws, the
        # same set for as long as none of them changes.
        state = sorted(f"{cell.key}={cell.count}" for cell in visible)
        self.draws[_draw_set(self._noise_key, subject, metric.code, dimension.code, *state)] = epsilon
        noised = []
        for cell in cells:
            if cell.count is not None:
                noisy = _draw(self._noise_key, epsilon, subject, metric.code, dimension.code, str(cell.key), cell.count)
                cell = Cell(cell.key, noisy if metric.net else max(0, noisy), cell.actors)
            noised.append(cell)
        return noised

    # -- timelines --------------------------------------------------------------------------

    async def timeline(self, subject: str, metric: Metric, granularity: Granularity, start: datetime, end: datetime) -> Series:
        """`metric` per `granularity` bucket of [start, end), counted by the release that brought
        it. Only whole buckets are served: `start` goes back to its bucket's start, `end` is cut
        to the last bucket that closed before the principal's cutoff."""
        start = truncate(start, granularity)
        end = min(truncate(end, granularity), truncate(self.cutoff, granularity))
        if end <= start:
            return Series(start, start, [])  # nothing closed before the cutoff: nothing read beyond it either
        final = settled(end, self.now)
        self.final = self.final and final
        baseline, last_in_bucket = await self._reader.series(subject, metric.code, granularity.value, start, end, self.terms.k, settled=final)
        buckets = []
        moment, before = start, baseline
        while moment < end:
            value = last_in_bucket.get(moment, before)
            buckets.append((moment, value - before))
            moment, before = bucket_after(moment, granularity), value
        return Series(start, end, buckets)

    async def share_surges(self, video_id: str) -> list[Surge]:
        """The video's share surges among the releases this principal sees (gateway.privacy.surges),
        at its granularity floor. Exact, as timelines are: values of the history the public reads."""
        epoch = self._reader.epoch
        known = ("surges", video_id, self.terms.floor.value, self.cutoff, self.terms.k, self.terms.surge_factor)
        kept: tuple[Surge, ...] | None = self._reader.derived(epoch, known) if self._settled else None
        if kept is not None:
            return list(kept)
        found = await self._reader.points(video_id, SHARES.code, self.terms.floor.value, self.cutoff, self.terms.k)
        surges = share_surges([Point(*row) for row in found], self.terms.surge_factor, self.terms.k)
        if self._settled:
            self._reader.remember(epoch, known, tuple(surges))
        return surges

    # -- report -----------------------------------------------------------------------------

    def withdraw(self) -> None:
        """Nothing of the answer is released (the budget refused it): nor is what it would have held."""
        self.suppressed_cells = 0
        self.noised = False
        self.draws.clear()
        self.epsilon_spent = Fraction(0)

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


async def _load_releases(reader: ReleaseReader, cutoff: datetime, k: int, final: bool, keys: list[tuple[str, str]]) -> list[Release | None]:
    found = await reader.visible(keys, cutoff, k, settled=final)
    return [found.get(key) for key in keys]


async def _load_cells(reader: ReleaseReader, keys: list[tuple[str, str, int]]) -> list[tuple[StoredCell, ...]]:
    found = await reader.cells(keys)
    return [found[key] for key in keys]


def _events(release: Release | None) -> int:
    return 0 if release is None else release.events


def _draw_set(noise_key: bytes, *quantity: str | int) -> bytes:
    """Names a set of draws for the budget (keyed, so the ledger holds no readable subject)."""
    return hmac.new(noise_key, orjson.dumps(["draws", *quantity]), hashlib.sha256).digest()


# A draw is a pure function of the quantity it noises; dashboards ask for the same ones again and again.
@functools.lru_cache(maxsize=65_536)
def _draw(noise_key: bytes, epsilon: Fraction, subject: str, metric: str, dimension: str, key: str, count: int) -> int:
    """`count` noised by the one draw of (subject, metric, dimension, cell) at that count."""
    return noisy_count(noise_key, epsilon, count, subject, metric, dimension, key)
