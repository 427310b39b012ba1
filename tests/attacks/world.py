"""Building the attack scenarios: events through the real ingest path, twin worlds, and the
questions a curious creator (or app) asks.

A scenario is usually played in twin worlds that differ only in what the attacker wants to
learn (did this friend share? from which region did the one viewer watch?). Each world has
its own creator and video, with the same times. When the creator's answers in the twin worlds
are the same (ids aside), what the attacker wants to learn is not in them: at best they guess.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from harness import Gateway

__all__ = ["World", "app_for", "ask", "battery", "counted", "days_ago", "differences", "iso", "release_values", "same_answers"]

_worlds = itertools.count(1)


def days_ago(days: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A moment `days` whole days before today (UTC), at the given time of day."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days) + timedelta(hours=hour, minutes=minute, seconds=second)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class World:
    """One creator with videos, and the events of a scenario about them."""

    def __init__(self, name: str) -> None:
        number = next(_worlds)
        self.name = name
        self.creator = f"creator-{name}-{number}"
        self.owner = Principal(PrincipalKind.USER, self.creator)
        self.events: list[dict[str, Any]] = []
        self._number = number

    def video(self, index: int = 0) -> str:
        return f"video-{self.name}-{self._number}-{index}"

    def actor(self, name: str) -> str:
        return f"{name}-{self.name}-{self._number}"

    def _event(self, type_: str, when: datetime, actor: str, video: str | None, **fields: Any) -> dict[str, Any]:
        event = {"event_id": uuid.uuid4().hex, "type": type_, "occurred_at": iso(when), "creator_id": self.creator, "actor_id": actor, **fields}
        if video is not None:
            event["video_id"] = video
        event = {key: value for key, value in event.items() if value is not None}
        self.events.append(event)
        return event

    def publish(self, when: datetime, index: int = 0) -> None:
        self._event("video_published", when, self.creator, self.video(index))

    def view(self, actor: str, when: datetime, index: int = 0, *, region: str | None = None, age_band: str | None = None,
             watch_ms: int = 10_000, completed: bool = False) -> None:
        self._event("view", when, actor, self.video(index), watch_ms=watch_ms, completed=completed, region=region, age_band=age_band)

    def share(self, actor: str, when: datetime, index: int = 0, *, channel: str = "whatsapp", region: str | None = None,
              anonymous: bool | None = None) -> None:
        self._event("share", when, actor, self.video(index), channel=channel, region=region, anonymous=anonymous)

    def comment(self, actor: str, when: datetime, text: str, index: int = 0) -> None:
        self._event("comment", when, actor, self.video(index), text=text)

    def like(self, actor: str, when: datetime, index: int = 0) -> None:
        self._event("like", when, actor, self.video(index))

    def follow(self, actor: str, when: datetime, *, following: bool = True) -> None:
        """`actor` follows (or, with following=False, unfollows) the world's creator."""
        self._event("follow" if following else "unfollow", when, actor, None)

    def crowd(self, prefix: str, count: int, when: datetime, index: int = 0, *, shares: bool = False, channel: str = "whatsapp",
              region: str | None = "DE", age_band: str | None = "25-34", spacing: timedelta = timedelta(seconds=20)) -> list[str]:
        """`count` distinct people who view (and share) the video, one every `spacing` from `when`."""
        people = [self.actor(f"{prefix}{i}") for i in range(count)]
        for i, person in enumerate(people):
            moment = when + spacing * i
            self.view(person, moment, index, region=region, age_band=age_band)
            if shares:
                self.share(person, moment + timedelta(seconds=5), index, channel=channel, region=region)
        return people

    def take(self) -> list[dict[str, Any]]:
        """The events not yet ingested."""
        events, self.events = self.events, []
        return events


def app_for(user: str, app_id: str, scopes: frozenset[str] = frozenset({"stats", "insights"})) -> Principal:
    """An app acting on behalf of `user`."""
    return Principal(PrincipalKind.APP, user, scopes, app_id=app_id)


async def ask(gateway: Gateway, query: str, variables: dict[str, Any] | None = None, principal: Principal = ANONYMOUS) -> dict[str, Any]:
    """The answer to `query` as `principal`, which must be served whole (200, no errors)."""
    response = await gateway.graphql(query, variables, principal=principal)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


async def release_values(admin: asyncpg.Connection, subject: str, metric: str) -> dict[int, int]:
    """The history of `metric` (a store code: v, l, c, s, f) of `subject`: each release's count → its people."""
    rows = await admin.fetch('SELECT events, people FROM releases WHERE subject_id = $1 AND metric = $2::text::"char" ORDER BY seq', subject, metric)
    return {row["events"]: row["people"] for row in rows}


def battery(start: datetime, end: datetime) -> str:
    """Everything a creator can ask about one video and themselves, at every granularity they may."""
    timeline = "{ from to buckets { start count suppressed } }"
    cells = "{ buckets { key count suppressed } }"
    window = f'from: "{iso(start)}", to: "{iso(end)}"'
    return f"""
    query Everything($video: ID!, $creator: ID!) {{
      video(id: $video) {{
        stats {{ views likes comments shares likeRatio engagementRate averageWatchSeconds completionRate }}
        shareChannels {cells}
        regions: audience(dimension: REGION) {cells}
        ageBands: audience(dimension: AGE_BAND) {cells}
        sharesByHour: shareTimeline(granularity: HOUR, {window}) {timeline}
        sharesByDay: shareTimeline(granularity: DAY, {window}) {timeline}
        sharesByWeek: shareTimeline(granularity: WEEK) {timeline}
        sharesByMonth: shareTimeline(granularity: MONTH) {timeline}
        viewsByHour: viewTimeline(granularity: HOUR, {window}) {timeline}
        viewsByDay: viewTimeline(granularity: DAY, {window}) {timeline}
      }}
      creator(id: $creator) {{
        totals {{ videos views likes comments shares followers }}
        followerGrowth(granularity: DAY) {timeline}
      }}
    }}
    """


def counted(body: Any) -> Any:
    """An answer without its timelines' empty buckets and range ends: what answers given at different
    moments must agree on when nothing was released between them (a later moment serves more closed
    buckets, empty ones)."""
    if isinstance(body, list):
        return [counted(item) for item in body if not (isinstance(item, dict) and item.keys() >= {"start", "count"} and item["count"] == 0)]
    if isinstance(body, dict):
        return {key: counted(value) for key, value in body.items() if not (key in ("from", "to") and "buckets" in body)}
    return body


def same_answers(answers: Iterable[tuple[World, dict[str, Any]]]) -> bool:
    """Whether the answers, with each world's own ids blanked out, are the same."""
    seen = set()
    for world, body in answers:
        text = json.dumps(body, sort_keys=True)
        text = text.replace(world.creator, "<creator>")
        for index in range(20):
            text = text.replace(world.video(index), f"<video-{index}>")
        seen.add(text)
    return len(seen) == 1


def differences(first: tuple[World, dict[str, Any]], second: tuple[World, dict[str, Any]]) -> list[str]:
    """Where two answers differ (ids blanked out), for failure messages."""

    def normal(world: World, body: dict[str, Any]) -> Any:
        text = json.dumps(body).replace(world.creator, "<creator>")
        for index in range(20):
            text = text.replace(world.video(index), f"<video-{index}>")
        return json.loads(text)

    found: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{path}.{key}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{index}]")
        elif a != b:
            found.append(f"{path}: {a!r} != {b!r}")

    walk(normal(*first), normal(*second), "")
    return found
