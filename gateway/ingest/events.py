"""The platform's engagement events, one typed dict per event type.

The schemas are the single definition of a valid event: `POST /events`,
`gateway ingest` and `gateway demo-data` all validate through them. They are
TypedDicts, not models, and every check is a pydantic-core constraint rather
than a Python callback: validation stays in Rust, about a third of the cost
of models with validators, which is what bulk ingest is bound by. The checks
that need the clock (not more than a day ahead, not older than the lateness
window) are a `Window`'s, applied once a line has been validated.

Validation is strict, and refuses whatever the store would: a number is a JSON
integer (not a string, a boolean or a fraction), a flag a JSON boolean, a time
an RFC 3339 string, and no text holds a NUL character (Postgres text cannot).
A file is checked whole before any of it is stored, so a rule the store alone
enforced would leave part of a bad file stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from typing_extensions import NotRequired, TypedDict  # pydantic needs this TypedDict on Python < 3.12

from pydantic import AfterValidator, ConfigDict, Field, GetCoreSchemaHandler, StringConstraints, TypeAdapter
from pydantic_core import CoreSchema, core_schema

from gateway.ingest.regions import ISO_3166_ALPHA2
from gateway.ingest.sentiment import classify

__all__ = [
    "AGE_BANDS",
    "EVENT_COLUMNS",
    "FIELD_MESSAGES",
    "TOO_FAR_AHEAD",
    "TYPE_MESSAGES",
    "Channel",
    "Event",
    "EventRecord",
    "Window",
    "event_adapter",
    "is_platform_id",
    "to_record",
]


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
# Postgres text holds any character but NUL.
NO_NUL = r"^[^\x00]*$"


def is_platform_id(value: str) -> bool:
    """Whether `value` could be a stored id (anything else names nothing)."""
    return _id.fullmatch(value) is not None

# Events before the platform existed, or from a clock far ahead, are bad input.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)
TOO_FAR_AHEAD = "must not be more than a day in the future"


@dataclass(frozen=True)
class Window:
    """The `occurred_at` an event arriving at `now` may carry: at most a day ahead, and, with a
    lateness window, not older than it. A late event would join the next release like any other
    (the history follows arrival, not occurrence); the window keeps timestamps honest, and older
    history goes through a backfill, for subjects with no history yet."""

    now: datetime
    lateness: timedelta | None = None

    @property
    def latest(self) -> datetime:
        return self.now + MAX_CLOCK_SKEW

    @property
    def earliest(self) -> datetime | None:
        return None if self.lateness is None else self.now - self.lateness

    def too_late(self) -> str:
        days = self.lateness.days if self.lateness is not None else 0
        return f"must not be more than {days} days in the past (the lateness window); older history is loaded with `gateway ingest --backfill`"


# RFC 3339's date-time (section 5.6): seconds and an offset are required. pydantic's own parser
# also takes a unix time as a string ("1767225600"), a space for the T and offsets without a colon.
RFC_3339 = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
NOT_RFC_3339 = "must be an RFC 3339 date-time string with an offset, e.g. 2026-11-27T12:00:00Z"
NUL_IN_TEXT = "must not contain a NUL character (\\u0000): the store cannot hold one"


class _Rfc3339:
    """An aware time at or after EARLIEST, given as an RFC 3339 string (or, by code that generates
    events, as a datetime), checked in Rust like the rest: the string's form, then its value."""

    @staticmethod
    def __get_pydantic_core_schema__(source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        text = core_schema.custom_error_schema(
            core_schema.str_schema(pattern=RFC_3339, strict=True), custom_error_type="rfc_3339", custom_error_message=NOT_RFC_3339
        )
        # Lax, after the pattern: it parses the checked string (a strict one takes datetimes only).
        moment = core_schema.datetime_schema(tz_constraint="aware", ge=EARLIEST, strict=False)
        generated = core_schema.union_schema(
            [core_schema.datetime_schema(strict=True), text], custom_error_type="rfc_3339", custom_error_message=NOT_RFC_3339
        )
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema([text, moment]), python_schema=core_schema.chain_schema([generated, moment])
        )


OccurredAt = Annotated[datetime, _Rfc3339]
# Literals built from the one list of each, checked in Rust by set lookup; the
# type checker sees them as str.
if TYPE_CHECKING:
    Region = str
    AgeBand = str
    ChannelName = str
else:
    Region = Literal[tuple(sorted(ISO_3166_ALPHA2))]
    AgeBand = Literal[AGE_BANDS]
    ChannelName = Literal[tuple(channel.value for channel in Channel)]

# Reasons worded for people where pydantic's own would list a whole enumeration
# or print a timestamp: (field, pydantic error type) → reason.
FIELD_MESSAGES: dict[tuple[str | None, str], str] = {
    ("region", "literal_error"): "must be an ISO 3166-1 alpha-2 country code, e.g. DE",
    ("occurred_at", "greater_than_equal"): f"must not be before {EARLIEST.date().isoformat()}",
    ("text", "string_pattern_mismatch"): NUL_IN_TEXT,
}
# Reasons for a value of the wrong JSON type, whatever the field: pydantic's name no JSON type.
TYPE_MESSAGES: dict[str, str] = {
    "int_type": "must be a JSON integer, not a string, a boolean or a number with a fraction",
    "bool_type": "must be true or false",
    "string_type": "must be a JSON string",
}


class _Event(TypedDict):
    event_id: Id
    occurred_at: OccurredAt
    creator_id: Id
    actor_id: Id
    region: NotRequired[Region | None]
    age_band: NotRequired[AgeBand | None]


class _VideoEvent(_Event):
    video_id: Id


# A view may last up to a day (ingest's bound on watch_ms); a video is no longer.
MAX_MS = 24 * 3600 * 1000


class VideoPublished(_VideoEvent):
    type: Literal["video_published"]
    # The video's length, for its retention (absent: retention is not served for it).
    duration_ms: NotRequired[Annotated[int, Field(ge=1, le=MAX_MS)]]


class View(_VideoEvent):
    type: Literal["view"]
    watch_ms: Annotated[int, Field(ge=0, le=MAX_MS)]
    completed: NotRequired[bool]


class Like(_VideoEvent):
    type: Literal["like"]


class Unlike(_VideoEvent):
    type: Literal["unlike"]


class Comment(_VideoEvent):
    type: Literal["comment"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=5000, pattern=NO_NUL)]


class Share(_VideoEvent):
    type: Literal["share"]
    channel: ChannelName
    anonymous: NotRequired[bool]


class _FollowEvent(_Event):
    # The followed user is `creator_id`; a follow is not about a video.
    video_id: NotRequired[None]


def _not_self(event: Any) -> Any:
    if event["actor_id"] == event["creator_id"]:
        raise ValueError("actor_id must differ from creator_id: a user cannot follow themselves")
    return event


class _Follow(_FollowEvent):
    type: Literal["follow"]


class _Unfollow(_FollowEvent):
    type: Literal["unfollow"]


Follow = Annotated[_Follow, AfterValidator(_not_self)]
Unfollow = Annotated[_Unfollow, AfterValidator(_not_self)]

Event = Annotated[
    VideoPublished | View | Like | Unlike | Comment | Share | Follow | Unfollow,
    Field(discriminator="type"),
]

# Strict: no value is converted from another JSON type ("5" is not 5, 1 is not true).
event_adapter: TypeAdapter[Event] = TypeAdapter(Event, config=ConfigDict(extra="forbid", strict=True))

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
    "duration_ms",
    "sentiment",
)

EventRecord = tuple[
    str,
    str,
    datetime,
    str | None,
    str,
    str,
    str | None,
    str | None,
    str | None,
    int | None,
    bool | None,
    str | None,
    bool | None,
    int | None,
    str | None,
]


def to_record(event: Event) -> EventRecord:
    """A validated event as a row of `EVENT_COLUMNS`, its time in UTC; a comment with its sentiment
    class (gateway.ingest.sentiment), computed here, in the thread that parses the batch."""
    get: Any = event.get
    kind = event["type"]
    text = get("text")
    return (
        event["event_id"],
        kind,
        event["occurred_at"].astimezone(UTC),
        get("video_id"),
        event["creator_id"],
        event["actor_id"],
        get("channel"),
        get("region"),
        get("age_band"),
        get("watch_ms"),
        get("completed", False) if kind == "view" else None,
        text,
        get("anonymous", False) if kind == "share" else None,
        get("duration_ms"),
        classify(text).value if kind == "comment" else None,
    )
