"""A deterministic synthetic platform for `gateway demo-data`: users, creators, videos and weeks of engagement.

Popularity is heavy-tailed (a few videos take most views); some videos have an
audience of only a handful of viewers, the case a k-threshold exists for.
Event ids derive from the seed, so loading the same data twice stores it once.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.ingest.events import AGE_BANDS, Channel

__all__ = ["DemoPlatform"]

# Where viewers are: a few big markets and a long tail of rare ones.
REGIONS = {
    "US": 24, "BR": 10, "IN": 10, "ID": 6, "MX": 5, "DE": 5, "GB": 5, "FR": 4, "JP": 4, "TR": 3,
    "PH": 3, "VN": 3, "NG": 2, "EG": 2, "ES": 2, "IT": 2, "KR": 2, "PL": 1, "CA": 2, "AU": 1,
    "NL": 1, "SE": 0.5, "IS": 0.05, "LU": 0.05, "MT": 0.05, "FJ": 0.02, "TV": 0.01,
}
AGE_WEIGHTS = (8, 30, 28, 16, 9, 6, 3)
CHANNELS = {
    Channel.WHATSAPP: 30, Channel.COPY_LINK: 20, Channel.DIRECT_MESSAGE: 15, Channel.INSTAGRAM: 10,
    Channel.FACEBOOK: 8, Channel.X: 6, Channel.SMS: 4, Channel.EMAIL: 3, Channel.OTHER: 4,
}
# Share of engagement events by type (views dominate).
EVENT_MIX = {"view": 78.0, "like": 11.0, "comment": 3.0, "share": 5.0, "follow": 3.0}
# English comments in a realistic mix of sentiments as VADER classes them (gateway.ingest.sentiment):
# about half warm, a quarter neutral, a quarter critical.
COMMENTS = (
    "love this", "so good", "haha", "wow", "this made my day!", "great tips, thank you", "best video on this topic",
    "amazing edit", "you are so talented", "lol this is perfect",
    "who else is watching in 2026?", "just shared this", "part 2 please", "what song is this?", "first",
    "where was this filmed?", "watching from Brazil",
    "boring", "this is fake", "terrible audio, could not finish it", "worst take I have seen", "not funny at all",
)
SMALL_AUDIENCE_SHARE = 0.03  # of videos, watched by only 2–5 people
UNLIKE_RATE = 0.05
CHANNEL_VALUES = [channel.value for channel in CHANNELS]
CHANNEL_CUM_WEIGHTS = list(itertools.accumulate(CHANNELS.values()))
EVENT_KINDS = list(EVENT_MIX)
EVENT_CUM_WEIGHTS = list(itertools.accumulate(EVENT_MIX.values()))
UNFOLLOW_RATE = 0.08


@dataclass(frozen=True)
class Video:
    video_id: str
    creator_id: str
    published_at: datetime
    length_ms: int


class DemoPlatform:
    """Generates events (as the dicts a platform would send) for `events` engagement events in total."""

    def __init__(self, *, users: int, videos: int, events: int, seed: int, weeks: int = 4, end: datetime | None = None) -> None:
        if users < 2 or videos < 1 or events < videos:
            raise ValueError("need at least 2 users, 1 video, and as many events as videos")
        self.seed, self.events = seed, events
        self.rng = random.Random(seed)
        self.end = end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = self.end - timedelta(weeks=weeks)
        self.users = [f"u{n}" for n in range(1, users + 1)]
        self.region = {u: r for u, r in zip(self.users, self.rng.choices(list(REGIONS), list(REGIONS.values()), k=users))}
        self.age_band = {u: a for u, a in zip(self.users, self.rng.choices(AGE_BANDS, AGE_WEIGHTS, k=users))}
        creators = self.users[: max(1, users // 20)]
        creator_weights = [self.rng.paretovariate(1.5) for _ in creators]
        window = (self.end - self.start).total_seconds()
        self.videos = [
            Video(
                video_id=f"v{n}",
                creator_id=self.rng.choices(creators, creator_weights)[0],
                # Published at some point before the last day, so every video gets engagement.
                published_at=self.start + timedelta(seconds=self.rng.uniform(0, window * 0.95)),
                length_ms=self.rng.randint(5, 180) * 1000,
            )
            for n in range(1, videos + 1)
        ]
        small = max(1, int(videos * SMALL_AUDIENCE_SHARE)) if videos > 1 else 0
        self.small_videos = self.videos[:small]
        self.popular_videos = self.videos[small:] or self.videos
        popularity = [self.rng.paretovariate(1.1) for _ in self.popular_videos]
        self.cum_popularity = list(itertools.accumulate(popularity))
        self.last_moment = self.end - timedelta(seconds=1)
        self.likes: set[tuple[str, str]] = set()
        self.follows: set[tuple[str, str]] = set()
        self._ids = itertools.count(1)

    def generate(self) -> Iterator[dict[str, Any]]:
        yield from (self._event("video_published", v, v.creator_id, v.published_at, duration_ms=v.length_ms) for v in self.videos)
        budget = self.events - len(self.videos)
        for video in self.small_videos:
            for event in self._small_audience(video):
                if budget == 0:
                    return
                budget -= 1
                yield event
        while budget > 0:
            for event in self._engagement():
                if budget == 0:
                    return
                budget -= 1
                yield event

    def _event(self, kind: str, video: Video | None, actor: str, at: datetime, **fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": f"demo-{self.seed}-{next(self._ids)}",
            "type": kind,
            "occurred_at": at,
            "creator_id": video.creator_id if video else fields.pop("creator_id"),
            "actor_id": actor,
            "region": self.region[actor],
            "age_band": self.age_band[actor],
            **fields,
        }
        if video:
            event["video_id"] = video.video_id
        return event

    def _moment_after(self, start: datetime) -> datetime:
        # Engagement decays after publishing: exponential with a two-day mean, within the window.
        moment = start + timedelta(seconds=self.rng.expovariate(1 / (2 * 86400)))
        return moment if moment < self.last_moment else self.last_moment

    def _view(self, video: Video, actor: str, at: datetime) -> dict[str, Any]:
        watch_ms = min(int(self.rng.lognormvariate(math.log(video.length_ms * 0.5), 0.8)), video.length_ms)
        return self._event("view", video, actor, at, watch_ms=watch_ms, completed=watch_ms >= video.length_ms)

    def _small_audience(self, video: Video) -> Iterator[dict[str, Any]]:
        for actor in self.rng.sample(self.users, self.rng.randint(2, 5)):
            at = self._moment_after(video.published_at)
            yield self._view(video, actor, at)
            if self.rng.random() < 0.3:
                shared_at = min(at + timedelta(seconds=30), self.last_moment)
                yield self._event("share", video, actor, shared_at, channel=self._channel(), anonymous=False)

    def _channel(self) -> str:
        return self.rng.choices(CHANNEL_VALUES, cum_weights=CHANNEL_CUM_WEIGHTS)[0]

    def _engagement(self) -> Iterator[dict[str, Any]]:
        video = self.rng.choices(self.popular_videos, cum_weights=self.cum_popularity)[0]
        actor = self.rng.choice(self.users)
        at = self._moment_after(video.published_at)
        kind = self.rng.choices(EVENT_KINDS, cum_weights=EVENT_CUM_WEIGHTS)[0]
        if kind == "view":
            yield self._view(video, actor, at)
        elif kind == "like":
            # A user likes a video at most once, and may take it back.
            if (video.video_id, actor) in self.likes:
                return
            self.likes.add((video.video_id, actor))
            yield self._event("like", video, actor, at)
            if self.rng.random() < UNLIKE_RATE:
                yield self._event("unlike", video, actor, self._moment_after(at))
        elif kind == "comment":
            yield self._event("comment", video, actor, at, text=self.rng.choice(COMMENTS))
        elif kind == "share":
            yield self._event("share", video, actor, at, channel=self._channel(), anonymous=self.rng.random() < 0.1)
        elif actor != video.creator_id and (video.creator_id, actor) not in self.follows:
            self.follows.add((video.creator_id, actor))
            yield self._event("follow", None, actor, at, creator_id=video.creator_id)
            if self.rng.random() < UNFOLLOW_RATE:
                yield self._event("unfollow", None, actor, self._moment_after(at), creator_id=video.creator_id)
