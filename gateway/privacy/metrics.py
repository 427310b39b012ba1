"""The table of metrics: what the release history holds for each, and how its breakdowns are served.

Adding a metric or a breakdown dimension touches this table, a migration (the
store's `metric_dimensions` and what `apply_arrival()` counts) and the schema's
fields; the privacy service (gateway.privacy.disclosure) serves every entry
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.ingest.events import AGE_BANDS, Channel
from gateway.ingest.sentiment import Sentiment

__all__ = [
    "AUDIENCE",
    "CHANNELS",
    "CHANNEL_KEYS",
    "COMMENTS",
    "DEPTH_KEYS",
    "FOLLOWERS",
    "HOUR_OF_WEEK_KEYS",
    "LIKES",
    "SENTIMENT_KEYS",
    "SHARES",
    "UNDISCLOSED",
    "VIEWS",
    "Dimension",
    "Metric",
]


@dataclass(frozen=True)
class Dimension:
    """A breakdown of a metric's releases into cells.

    name     what the schema calls it ("channel", "region", …)
    code     its code in the store (`release_cells.dimension`)
    counts   what a served cell counts: "events" (e.g. shares) or "people" (distinct viewers)
    domain   every key, listed whether or not anyone is in it (None: listed only when shown)
    pool     the key cells below k are pooled under, for a domain too large to list
    noise    the ε key of the policy's obligations that noises this breakdown's cells
    """

    name: str
    code: str
    counts: str
    domain: tuple[str, ...] | None = None
    pool: str | None = None
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
# Anonymous shares (migration 0018) are a channel cell of their own: counted, suppressed and noised
# as every channel is, so one tells no more than a share on a channel does.
UNDISCLOSED = "undisclosed"
CHANNEL_KEYS = (*CHANNELS, UNDISCLOSED)
AGE_BAND_KEYS = (*AGE_BANDS, "unknown")
# The furthest tenth of a video a viewer's longest view reached, in percent, three digits so that
# keys sort as depths do (migration 0023).
DEPTH_KEYS = tuple(f"{percent:03d}" for percent in range(0, 101, 10))
SENTIMENT_KEYS = tuple(sentiment.value for sentiment in Sentiment)
# Hours of the week in UTC: 0 is Monday 00:00–01:00, 167 Sunday 23:00–24:00.
HOUR_OF_WEEK_KEYS = tuple(str(hour) for hour in range(7 * 24))

VIEWS = Metric(
    "views",
    "v",
    dimensions=(
        Dimension("region", "r", counts="people", pool="OTHER", noise="viewers"),
        Dimension("age_band", "a", counts="people", domain=AGE_BAND_KEYS, noise="viewers"),
        # Views watched to the end or not, each cell with the viewers who watched such a view: a
        # completion rate is served only when both hold k or more (gateway.privacy.disclosure).
        Dimension("completion", "w", counts="events", domain=("completed", "not_completed"), noise="completed_views"),
        # Viewers by the furthest tenth their longest view reached: retention (gateway.privacy.retention).
        Dimension("depth", "d", counts="people", domain=DEPTH_KEYS, noise="viewers"),
    ),
)
LIKES = Metric("likes", "l", net=True)
# Commenters (people, not comments) by their comments' sentiment class.
COMMENTS = Metric("comments", "c", dimensions=(Dimension("sentiment", "s", counts="people", domain=SENTIMENT_KEYS, noise="commenters"),))
SHARES = Metric("shares", "s", dimensions=(Dimension("channel", "c", counts="events", domain=CHANNEL_KEYS, noise="shares"),))
FOLLOWERS = Metric("followers", "f", net=True)
# A creator's audience: distinct viewers across their videos (reach), by hour of the week.
AUDIENCE = Metric("audience", "a", dimensions=(Dimension("hour", "h", counts="people", domain=HOUR_OF_WEEK_KEYS, noise="viewers"),))
