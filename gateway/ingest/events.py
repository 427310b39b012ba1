"""The platform's engagement events, one pydantic model per event type.

The models are the single definition of a valid event: `POST /events`,
`gateway ingest` and `gateway demo-data` all validate through them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator

from gateway.ingest.regions import ISO_3166_ALPHA2

__all__ = ["AGE_BANDS", "EVENT_COLUMNS", "Channel", "Event", "EventRecord", "event_adapter", "is_platform_id", "to_record"]


class Channel(StrEnum):
    COPY_LINK = "copy_link"
    DIRECT_MESSAGE = "direct_message"
    WHATSAPP = "whatsapp"
    FACEBOOK = "facebook"
    X = "x"
    INSTAGRAM = "instagram"
    EMAIL = "email"
    SMS = "sms"
    OTHER = "other"


AGE_BANDS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")

# Platform ids: short opaque strings, no whitespace or control characters.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
_id = re.compile(ID_PATTERN)


def is_platform_id(value: str) -> bool:
    """Whether `value` could be a stored id (anything else names nothing)."""
    return _id.fullmatch(value) is not None

# Events before the platform existed, or from a clock far ahead, are bad input.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)


def _plausible_time(value: datetime) -> datetime:
    if value < EARLIEST:
        raise ValueError(f"must not be before {EARLIEST.date().isoformat()}")
    if value > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError("must not be more than a day in the future")
    return value.astimezone(UTC)


def _iso_region(value: str) -> str:
    if value not in ISO_3166_ALPHA2:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. DE")
    return value


OccurredAt = Annotated[AwareDatetime, AfterValidator(_plausible_time)]
Region = Annotated[str, AfterValidator(_iso_region)]
AgeBand = Literal["13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    event_id: Id
    occurred_at: OccurredAt
    creator_id: Id
    actor_id: Id
    region: Region | None = None
    age_band: AgeBand | None = None


class _VideoEvent(_Event):
    video_id: Id


class VideoPublished(_VideoEvent):
    type: Literal["video_published"]


class View(_VideoEvent):
    type: Literal["view"]
    watch_ms: Annotated[int, Field(ge=0, le=24 * 3600 * 1000)]
    completed: bool = False


class Like(_VideoEvent):
    type: Literal["like"]


class Unlike(_VideoEvent):
    type: Literal["unlike"]


class Comment(_VideoEvent):
    type: Literal["comment"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=5000)]


class Share(_VideoEvent):
    type: Literal["share"]
    channel: Channel
    anonymous: bool = False


class _FollowEvent(_Event):
    # The followed user is `creator_id`; a follow is not about a video.
    video_id: None = None

    @model_validator(mode="after")
    def _not_self(self) -> Self:
        if self.actor_id == self.creator_id:
            raise ValueError("actor_id must differ from creator_id: a user cannot follow themselves")
        return self


class Follow(_FollowEvent):
    type: Literal["follow"]


class Unfollow(_FollowEvent):
    type: Literal["unfollow"]


Event = Annotated[
    VideoPublished | View | Like | Unlike | Comment | Share | Follow | Unfollow,
    Field(discriminator="type"),
]

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)

# Column order of a stored event; `to_record` yields tuples in this order.
EVENT_COLUMNS = (
    "event_id",
    "type",
    "occurred_at",
    "video_id",
    "creator_id",
    "actor_id",
    "channel",
    "region",
    "age_band",
    "watch_ms",
    "completed",
    "text",
    "anonymous",
)

EventRecord = tuple[
    str, str, datetime, str | None, str, str, str | None, str | None, str | None, int | None, bool | None, str | None, bool | None
]


def to_record(event: Event) -> EventRecord:
    return (
        event.event_id,
        event.type,
        event.occurred_at,
        event.video_id,
        event.creator_id,
        event.actor_id,
        event.channel.value if isinstance(event, Share) else None,
        event.region,
        event.age_band,
        event.watch_ms if isinstance(event, View) else None,
        event.completed if isinstance(event, View) else None,
        event.text if isinstance(event, Comment) else None,
        event.anonymous if isinstance(event, Share) else None,
    )
