"""The table of metrics: what the release history holds for each, and how its breakdowns are served.

Adding a metric or a breakdown dimension touches this table, a migration (the
store's `metric_dimensions` and what `apply_arrival()` counts) and the schema's
fields; the privacy service (gateway.privacy.disclosure) serves every entry
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ingest.events import AGE_BANDS, Channel

__all__ = ["COMMENTS", "FOLLOWERS", "LIKES", "SHARES", "VIEWS", "Dimension", "Metric"]


@dataclass(frozen=True)
class Dimension:
    """A breakdown of a metric's releases into cells.

    name     what the schema calls it ("channel", "region", …)
    code     its code in the store (`release_cells.dimension`)
    counts   what a served cell counts: "events" (e.g. shares) or "people" (distinct viewers)
    domain   every key, listed whether or not anyone is in it (None: listed only when shown)
    pool     the key cells below k are pooled under, for a domain too large to list
    partial  the metric's total counts activity in no cell of it too (anonymous shares, migration
             0018): that remainder is suppressed as a cell of its own (gateway.privacy.suppression)
    noise    the ε key of the policy's obligations that noises this breakdown's cells
    """

    name: str
    code: str
    counts: str
    domain: tuple[str, ...] | None = None
    pool: str | None = None
    partial: bool = False
    noise: str | None = None


@dataclass(frozen=True)
class Metric:
    """A metric of a video (or, for followers, of a creator): `code` in the store; `net` counts may
    go below zero (likes net of unlikes, follows net of unfollows), others are clamped at zero when
    noised."""

    name: str
    code: str
    dimensions: tuple[Dimension, ...] = ()
    net: bool = False

    def dimension(self, name: str) -> Dimension:
        return next(dimension for dimension in self.dimensions if dimension.name == name)


CHANNELS = tuple(channel.value for channel in Channel)
AGE_BAND_KEYS = (*AGE_BANDS, "unknown")

VIEWS = Metric(
    "views",
    "v",
    dimensions=(
        Dimension("region", "r", counts="people", pool="OTHER", noise="viewers"),
        Dimension("age_band", "a", counts="people", domain=AGE_BAND_KEYS, noise="viewers"),
        # Views watched to the end or not, each cell with the viewers who watched such a view: a
        # completion rate is served only when both hold k or more (gateway.privacy.disclosure).
        Dimension("completion", "w", counts="events", domain=("completed", "not_completed"), noise="completed_views"),
    ),
)
LIKES = Metric("likes", "l", net=True)
COMMENTS = Metric("comments", "c")
# An anonymous share counts in the video's shares and in no channel.
SHARES = Metric("shares", "s", dimensions=(Dimension("channel", "c", counts="events", domain=CHANNELS, partial=True, noise="shares"),))
FOLLOWERS = Metric("followers", "f", net=True)
