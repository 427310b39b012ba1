"""What makes an NDJSON event line valid, and how a refused line is reported (line, field, reason)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.errors import EventError, InvalidEvents
from gateway.ingest.events import EVENT_COLUMNS
from gateway.ingest.ndjson import check_lines, parse_lines, parse_objects

AT = "2025-06-01T12:00:00Z"
AT_UTC = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

# One valid event of every type, with every optional field it may carry.
EVENTS: dict[str, dict[str, Any]] = {
    "video_published": {
        "event_id": "e-pub", "type": "video_published", "occurred_at": AT, "video_id": "v1", "creator_id": "u1", "actor_id": "u1",
        "duration_ms": 45_000,
    },
    "view": {
        "event_id": "e-view", "type": "view", "occurred_at": AT, "video_id": "v1", "creator_id": "u1", "actor_id": "u2",
        "watch_ms": 1500, "completed": True, "region": "DE", "age_band": "18-24",
    },
    "like": {"event_id": "e-like", "type": "like", "occurred_at": AT, "video_id": "v1", "creator_id": "u1", "actor_id": "u2"},
    "unlike": {"event_id": "e-unlike", "type": "unlike", "occurred_at": AT, "video_id": "v1", "creator_id": "u1", "actor_id": "u2"},
    "comment": {"event_id": "e-comment", "type": "comment", "occurred_at": AT, "video_id": "v1", "creator_id": "u1", "actor_id": "u2", "text": "so good"},
    "share": {
        "event_id": "e-share", "type": "share", "occurred_at": AT, "video_id": "v1", "creator_id": "u1", "actor_id": "u2",
        "channel": "whatsapp", "anonymous": True, "region": "BR", "age_band": "65+",
    },
    "follow": {"event_id": "e-follow", "type": "follow", "occurred_at": AT, "creator_id": "u1", "actor_id": "u2"},
    "unfollow": {"event_id": "e-unfollow", "type": "unfollow", "occurred_at": AT, "creator_id": "u1", "actor_id": "u2", "video_id": None},
}

# Fields without which an event of the type is refused ("type" itself is covered separately).
REQUIRED = {
    "video_published": ("event_id", "occurred_at", "video_id", "creator_id", "actor_id"),
    "view": ("event_id", "occurred_at", "video_id", "creator_id", "actor_id", "watch_ms"),
    "like": ("event_id", "occurred_at", "video_id", "creator_id", "actor_id"),
    "unlike": ("event_id", "occurred_at", "video_id", "creator_id", "actor_id"),
    "comment": ("event_id", "occurred_at", "video_id", "creator_id", "actor_id", "text"),
    "share": ("event_id", "occurred_at", "video_id", "creator_id", "actor_id", "channel"),
    "follow": ("event_id", "occurred_at", "creator_id", "actor_id"),
    "unfollow": ("event_id", "occurred_at", "creator_id", "actor_id"),
}

OPTIONAL = {
    "video_published": ("duration_ms",),
    "view": ("completed", "region", "age_band"),
    "share": ("anonymous", "region", "age_band"),
    "unfollow": ("video_id",),
}


def event(kind: str, **changes: Any) -> dict[str, Any]:
    return {**EVENTS[kind], **changes}


def without(kind: str, name: str) -> dict[str, Any]:
    return {key: value for key, value in EVENTS[kind].items() if key != name}


def line(obj: Any) -> str:
    return json.dumps(obj)


def refusals(*lines: str | bytes) -> list[EventError]:
    batch = parse_lines(lines)
    assert batch.records == [], "a refused line must not yield a record"
    return batch.errors


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        pytest.param("video_published", ("e-pub", "video_published", AT_UTC, "v1", "u1", "u1", None, None, None, None, None, None, None, 45_000, None), id="video_published"),
        pytest.param("view", ("e-view", "view", AT_UTC, "v1", "u1", "u2", None, "DE", "18-24", 1500, True, None, None, None, None), id="view"),
        pytest.param("like", ("e-like", "like", AT_UTC, "v1", "u1", "u2", None, None, None, None, None, None, None, None, None), id="like"),
        pytest.param("unlike", ("e-unlike", "unlike", AT_UTC, "v1", "u1", "u2", None, None, None, None, None, None, None, None, None), id="unlike"),
        pytest.param("comment", ("e-comment", "comment", AT_UTC, "v1", "u1", "u2", None, None, None, None, None, "so good", None, None, "positive"), id="comment"),
        pytest.param("share", ("e-share", "share", AT_UTC, "v1", "u1", "u2", "whatsapp", "BR", "65+", None, None, None, True, None, None), id="share"),
        pytest.param("follow", ("e-follow", "follow", AT_UTC, None, "u1", "u2", None, None, None, None, None, None, None, None, None), id="follow"),
        pytest.param("unfollow", ("e-unfollow", "unfollow", AT_UTC, None, "u1", "u2", None, None, None, None, None, None, None, None, None), id="unfollow"),
    ],
)
def test_valid_event_becomes_record_in_column_order(kind: str, expected: tuple[Any, ...]) -> None:
    batch = parse_lines([line(EVENTS[kind])])

    assert batch.errors == []
    assert batch.error_count == 0
    assert batch.records == [expected]
    assert len(batch.records[0]) == len(EVENT_COLUMNS)


@pytest.mark.parametrize(
    ("kind", "name", "default"),
    [
        pytest.param("view", "completed", False, id="view-completed-false"),
        pytest.param("view", "region", None, id="view-region-none"),
        pytest.param("view", "age_band", None, id="view-age_band-none"),
        pytest.param("share", "anonymous", False, id="share-anonymous-false"),
        pytest.param("share", "region", None, id="share-region-none"),
        pytest.param("share", "age_band", None, id="share-age_band-none"),
        pytest.param("unfollow", "video_id", None, id="unfollow-video_id-none"),
    ],
)
def test_optional_field_may_be_omitted_and_takes_its_default(kind: str, name: str, default: Any) -> None:
    assert name in OPTIONAL[kind]
    batch = parse_lines([line(without(kind, name))])

    assert batch.errors == []
    (record,) = batch.records
    assert record[EVENT_COLUMNS.index(name)] == default


@pytest.mark.parametrize(
    ("kind", "name"),
    [pytest.param(kind, name, id=f"{kind}-{name}") for kind, names in REQUIRED.items() for name in names],
)
def test_event_without_required_field_is_refused(kind: str, name: str) -> None:
    assert refusals(line(without(kind, name))) == [EventError(1, name, "Field required")]


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        pytest.param(without("share", "type"), "field required", id="missing"),
        pytest.param(event("share", type="repost"), "must be one of", id="unknown"),
        pytest.param(event("share", type="Share"), "must be one of", id="wrong-case"),
        pytest.param(event("share", type=None), "must be one of", id="null"),
    ],
)
def test_event_type_must_be_a_known_type(obj: dict[str, Any], reason: str) -> None:
    (error,) = refusals(line(obj))

    assert (error.line, error.field) == (1, "type")
    assert error.reason.startswith(reason)


@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        pytest.param("2025-06-01T12:00:00", "must be an RFC 3339 date-time string", id="no-zone"),
        pytest.param("2025-06-01 12:00", "must be an RFC 3339 date-time string", id="no-zone-no-seconds"),
        pytest.param("1999-12-31T23:59:59Z", "must not be before 2000-01-01", id="before-2000"),
        pytest.param("2000-01-01T00:30:00+01:00", "must not be before 2000-01-01", id="before-2000-in-utc"),
        pytest.param((datetime.now(UTC) + timedelta(days=2)).isoformat(), "must not be more than a day in the future", id="two-days-ahead"),
        pytest.param("9999-12-31T23:00:00-05:00", "must not be more than a day in the future", id="past-year-9999-in-utc"),
        pytest.param("yesterday", "must be an RFC 3339 date-time string", id="not-a-time"),
        pytest.param("2025-13-01T12:00:00Z", "Input should be a valid datetime", id="month-13"),
    ],
)
def test_occurred_at_must_be_zoned_and_plausible(occurred_at: str, reason: str) -> None:
    (error,) = refusals(line(event("like", occurred_at=occurred_at)))

    assert (error.line, error.field) == (1, "occurred_at")
    assert error.reason.startswith(reason)


@pytest.mark.parametrize(
    "occurred_at",
    [
        pytest.param(1748779200, id="unix-time-number"),
        pytest.param(1748779200.5, id="unix-time-fraction"),
        pytest.param("1748779200", id="unix-time-string"),
        pytest.param("2025-06-01 12:00:00Z", id="space-for-t"),
        pytest.param("2025-06-01T12:00Z", id="no-seconds"),
        pytest.param("2025-06-01T12:00:00+0200", id="offset-without-colon"),
        pytest.param("2025-06-01T12:00:00+02", id="offset-hours-only"),
        pytest.param("2025-06-01", id="date-only"),
        pytest.param(" 2025-06-01T12:00:00Z", id="leading-space"),
        pytest.param(None, id="null"),
    ],
)
def test_occurred_at_that_is_not_an_rfc_3339_string_is_refused(occurred_at: Any) -> None:
    assert refusals(line(event("like", occurred_at=occurred_at))) == [
        EventError(1, "occurred_at", "must be an RFC 3339 date-time string with an offset, e.g. 2026-11-27T12:00:00Z")
    ]


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        pytest.param("2025-06-01t12:00:00z", AT_UTC, id="lower-case-t-and-z"),
        pytest.param("2025-06-01T14:00:00+02:00", AT_UTC, id="offset-east"),
        pytest.param("2025-06-01T07:00:00-05:00", AT_UTC, id="offset-west"),
        pytest.param("2025-06-01T12:00:00.250Z", AT_UTC + timedelta(milliseconds=250), id="fraction"),
    ],
)
def test_occurred_at_with_offset_is_stored_in_utc(occurred_at: str, expected: datetime) -> None:
    (record,) = parse_lines([line(event("like", occurred_at=occurred_at))]).records
    stored = record[EVENT_COLUMNS.index("occurred_at")]

    assert isinstance(stored, datetime)
    assert stored == expected
    assert stored.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "channel",
    [
        pytest.param("tiktok", id="unknown"),
        pytest.param("WhatsApp", id="wrong-case"),
        pytest.param("", id="empty"),
        pytest.param(None, id="null"),
    ],
)
def test_share_channel_outside_the_enum_is_refused(channel: str | None) -> None:
    (error,) = refusals(line(event("share", channel=channel)))

    assert (error.line, error.field) == (1, "channel")
    assert "'whatsapp'" in error.reason


@pytest.mark.parametrize("channel", ["copy_link", "direct_message", "whatsapp", "facebook", "x", "instagram", "email", "sms", "other"])
def test_share_channel_in_the_enum_is_accepted(channel: str) -> None:
    (record,) = parse_lines([line(event("share", channel=channel))]).records

    assert record[EVENT_COLUMNS.index("channel")] == channel


@pytest.mark.parametrize(
    "region",
    [
        pytest.param("XX", id="unassigned"),
        pytest.param("de", id="lower-case"),
        pytest.param("DEU", id="alpha-3"),
        pytest.param("EU", id="not-a-country"),
        pytest.param("", id="empty"),
    ],
)
def test_region_not_iso_alpha2_is_refused(region: str) -> None:
    assert refusals(line(event("view", region=region))) == [
        EventError(1, "region", "must be an ISO 3166-1 alpha-2 country code, e.g. DE")
    ]


@pytest.mark.parametrize("region", ["DE", "US", "IS", "TV"])
def test_region_iso_alpha2_is_accepted(region: str) -> None:
    (record,) = parse_lines([line(event("view", region=region))]).records

    assert record[EVENT_COLUMNS.index("region")] == region


@pytest.mark.parametrize(
    "age_band",
    [pytest.param("18-25", id="not-a-band"), pytest.param("65", id="open-band-without-plus"), pytest.param(18, id="number")],
)
def test_age_band_outside_the_bands_is_refused(age_band: Any) -> None:
    (error,) = refusals(line(event("view", age_band=age_band)))

    assert (error.line, error.field) == (1, "age_band")


@pytest.mark.parametrize(
    ("watch_ms", "reason"),
    [
        pytest.param(-1, "Input should be greater than or equal to 0", id="negative"),
        pytest.param(24 * 3600 * 1000 + 1, "Input should be less than or equal to 86400000", id="over-a-day"),
        pytest.param(1.5, "must be a JSON integer", id="fraction"),
        pytest.param(None, "must be a JSON integer", id="null"),
    ],
)
def test_view_watch_ms_out_of_range_is_refused(watch_ms: Any, reason: str) -> None:
    (error,) = refusals(line(event("view", watch_ms=watch_ms)))

    assert (error.line, error.field) == (1, "watch_ms")
    assert error.reason.startswith(reason)


@pytest.mark.parametrize(
    ("kind", "name", "value", "reason"),
    [
        pytest.param("view", "watch_ms", "5", "must be a JSON integer, not a string, a boolean or a number with a fraction", id="watch_ms-string"),
        pytest.param("view", "watch_ms", True, "must be a JSON integer, not a string, a boolean or a number with a fraction", id="watch_ms-true"),
        pytest.param("view", "watch_ms", 5.0, "must be a JSON integer, not a string, a boolean or a number with a fraction", id="watch_ms-float"),
        pytest.param("view", "completed", 1, "must be true or false", id="completed-one"),
        pytest.param("view", "completed", "true", "must be true or false", id="completed-string"),
        pytest.param("share", "anonymous", 0, "must be true or false", id="anonymous-zero"),
        pytest.param("comment", "text", 5, "must be a JSON string", id="text-number"),
        pytest.param("comment", "text", ["so", "good"], "must be a JSON string", id="text-array"),
        pytest.param("like", "event_id", 42, "must be a JSON string", id="event_id-number"),
    ],
)
def test_value_of_another_json_type_is_refused_not_converted(kind: str, name: str, value: Any, reason: str) -> None:
    assert refusals(line(event(kind, **{name: value}))) == [EventError(1, name, reason)]


@pytest.mark.parametrize("watch_ms", [pytest.param(0, id="zero"), pytest.param(24 * 3600 * 1000, id="a-whole-day")])
def test_view_watch_ms_at_the_bounds_is_accepted(watch_ms: int) -> None:
    (record,) = parse_lines([line(event("view", watch_ms=watch_ms))]).records

    assert record[EVENT_COLUMNS.index("watch_ms")] == watch_ms


@pytest.mark.parametrize("kind", ["follow", "unfollow"])
def test_follow_with_video_id_is_refused(kind: str) -> None:
    assert refusals(line(event(kind, video_id="v1"))) == [EventError(1, "video_id", "Input should be null")]


@pytest.mark.parametrize("kind", ["follow", "unfollow"])
def test_follow_of_oneself_is_refused(kind: str) -> None:
    assert refusals(line(event(kind, actor_id="u1", creator_id="u1"))) == [
        EventError(1, None, "actor_id must differ from creator_id: a user cannot follow themselves")
    ]


@pytest.mark.parametrize(
    ("obj", "name"),
    [
        pytest.param(event("share", sharer_name="Alice"), "sharer_name", id="unknown-field"),
        pytest.param(event("like", channel="whatsapp"), "channel", id="share-field-on-like"),
        pytest.param(event("view", text="hi"), "text", id="comment-field-on-view"),
        pytest.param(event("follow", watch_ms=10), "watch_ms", id="view-field-on-follow"),
        pytest.param(event("comment", ingested_at=AT), "ingested_at", id="store-column"),
    ],
)
def test_unknown_field_is_refused(obj: dict[str, Any], name: str) -> None:
    assert refusals(line(obj)) == [EventError(1, name, "not a field of this event type")]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("event_id", "", id="empty-event_id"),
        pytest.param("event_id", "e 1", id="space-in-event_id"),
        pytest.param("actor_id", "u2\n", id="newline-in-actor_id"),
        pytest.param("creator_id", "x" * 129, id="creator_id-too-long"),
        pytest.param("video_id", "-v1", id="video_id-leading-dash"),
        pytest.param("actor_id", 42, id="numeric-actor_id"),
    ],
)
def test_id_that_is_not_a_short_opaque_string_is_refused(name: str, value: Any) -> None:
    (error,) = refusals(line(event("like", **{name: value})))

    assert (error.line, error.field) == (1, name)


@pytest.mark.parametrize(
    "text",
    [pytest.param("", id="empty"), pytest.param("x" * 5001, id="over-5000-chars")],
)
def test_comment_text_must_be_1_to_5000_characters(text: str) -> None:
    (error,) = refusals(line(event("comment", text=text)))

    assert (error.line, error.field) == (1, "text")


@pytest.mark.parametrize(
    "text",
    [pytest.param("a\u0000b", id="inside"), pytest.param("\u0000", id="alone"), pytest.param("ok\u0000", id="at-the-end")],
)
def test_comment_text_with_a_nul_character_is_refused_as_the_store_would(text: str) -> None:
    assert refusals(line(event("comment", text=text))) == [
        EventError(1, "text", "must not contain a NUL character (\\u0000): the store cannot hold one")
    ]


@pytest.mark.parametrize(
    "text",
    [pytest.param("line one\nline two", id="newline"), pytest.param("\u0001\u007f", id="other-control"), pytest.param("🎬 ✓", id="emoji")],
)
def test_comment_text_with_any_other_character_is_accepted(text: str) -> None:
    (record,) = parse_lines([line(event("comment", text=text))]).records

    assert record[EVENT_COLUMNS.index("text")] == text


def test_comment_text_with_a_lone_surrogate_is_not_valid_json() -> None:
    (error,) = refusals('{"text": "\\ud800"}')

    assert (error.line, error.field) == (1, None)
    assert error.reason.startswith("not valid JSON: ")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("{", id="truncated"),
        pytest.param("{'event_id': 'e1'}", id="single-quotes"),
        pytest.param("share v1 whatsapp", id="plain-text"),
        pytest.param('{"event_id": "e1",}', id="trailing-comma"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
    ],
)
def test_invalid_json_is_refused_without_a_field(raw: str | bytes) -> None:
    (error,) = refusals(raw)

    assert (error.line, error.field) == (1, None)
    assert error.reason.startswith("not valid JSON: ")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("[1, 2]", id="array"),
        pytest.param(f"[{line(EVENTS['like'])}]", id="array-of-an-event"),
        pytest.param("42", id="number"),
        pytest.param('"share"', id="string"),
        pytest.param("null", id="null"),
    ],
)
def test_json_that_is_not_an_object_is_refused_without_a_field(raw: str) -> None:
    (error,) = refusals(raw)

    assert (error.line, error.field) == (1, None)
    assert "object" in error.reason


def test_json_that_is_not_an_object_is_named_as_such() -> None:
    assert refusals("[1, 2]") == [EventError(1, None, "not a JSON object")]


def test_blank_lines_are_skipped_but_still_counted() -> None:
    lines = [line(EVENTS["like"]), "", "   ", "\t\r", line(event("like", event_id="e-2", region="XX")), line(EVENTS["follow"])]

    batch = parse_lines(lines)

    assert [record[0] for record in batch.records] == ["e-like", "e-follow"]
    assert batch.errors == [EventError(5, "region", "must be an ISO 3166-1 alpha-2 country code, e.g. DE")]


def test_line_numbers_start_at_first_line() -> None:
    batch = parse_lines([line(EVENTS["like"]), "{"], first_line=10_001)

    assert [error.line for error in batch.errors] == [10_002]


def test_crlf_line_endings_are_accepted() -> None:
    batch = parse_lines([(line(EVENTS["like"]) + "\r").encode(), (line(EVENTS["share"]) + "\r").encode()])

    assert batch.errors == []
    assert [record[0] for record in batch.records] == ["e-like", "e-share"]


def test_every_bad_field_of_a_line_is_reported() -> None:
    obj = event("view", watch_ms=-5, region="de", surprise=1)

    errors = refusals(line(obj))

    assert sorted((error.line, error.field) for error in errors) == [(1, "region"), (1, "surprise"), (1, "watch_ms")]


def test_good_lines_of_a_batch_with_bad_ones_are_kept_but_the_batch_refuses() -> None:
    batch = parse_lines([line(EVENTS["like"]), "{", line(EVENTS["share"])])

    assert len(batch.records) == 2
    with pytest.raises(InvalidEvents) as refused:
        batch.raise_if_invalid()
    assert refused.value.total == 1
    assert refused.value.errors == batch.errors


def test_valid_batch_does_not_raise() -> None:
    batch = parse_lines([line(obj) for obj in EVENTS.values()])

    batch.raise_if_invalid()
    assert len(batch.records) == len(EVENTS)


def test_error_report_lists_the_first_100_but_total_counts_all() -> None:
    lines = [line(event("like", event_id=f"e-{n}", region="XX")) for n in range(1, 151)]
    lines.insert(50, line(EVENTS["share"]))

    batch = parse_lines(lines)

    assert batch.error_count == 150
    assert len(batch.errors) == 100
    assert [error.line for error in batch.errors] == [*range(1, 51), *range(52, 102)]
    with pytest.raises(InvalidEvents) as refused:
        batch.raise_if_invalid()
    assert refused.value.total == 150
    assert refused.value.errors == batch.errors
    assert refused.value.code == "BAD_USER_INPUT"
    assert refused.value.status_code == 400


def test_invalid_events_caps_a_longer_error_list_at_100() -> None:
    errors = [EventError(n, "region", "bad") for n in range(1, 201)]

    refused = InvalidEvents(errors, 200, 200)

    assert refused.errors == errors[:100]
    assert refused.total == 200
    assert refused.bad_lines == 200


def test_check_lines_reports_errors_and_keeps_no_records() -> None:
    batch = check_lines([line(EVENTS["like"]), "", "{"])

    assert batch.records == []
    assert [(error.line, error.field) for error in batch.errors] == [(3, None)]


def test_parse_objects_validates_decoded_events_as_lines_are() -> None:
    objects = [
        {**EVENTS["like"], "occurred_at": AT_UTC},
        {**EVENTS["follow"], "occurred_at": datetime(2025, 6, 1, 12, 0)},
        {**EVENTS["share"], "channel": "tiktok"},
        {**EVENTS["view"], "watch_ms": "1500"},
        {**EVENTS["unlike"], "occurred_at": 1748779200},
        {**EVENTS["comment"], "text": "a\x00b"},
        EVENTS["unfollow"],
    ]

    batch = parse_objects(objects)

    assert [record[0] for record in batch.records] == ["e-like", "e-unfollow"]
    assert [(error.line, error.field) for error in batch.errors] == [(2, "occurred_at"), (3, "channel"), (4, "watch_ms"), (5, "occurred_at"), (6, "text")]


def test_clock_check_holds_for_generated_events_and_for_a_check_only_pass() -> None:
    ahead = datetime.now(UTC) + timedelta(days=2)
    expected = [EventError(2, "occurred_at", "must not be more than a day in the future")]

    generated = parse_objects([EVENTS["like"], {**EVENTS["share"], "occurred_at": ahead}])
    checked = check_lines([line(EVENTS["like"]), line(event("share", occurred_at=ahead.isoformat()))])

    assert (generated.errors, [record[0] for record in generated.records]) == (expected, ["e-like"])
    assert (checked.errors, checked.records, checked.bad_lines) == (expected, [], 1)


@pytest.mark.parametrize(
    "duration_ms",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(24 * 3600 * 1000 + 1, id="longer-than-a-day"),
        pytest.param("45000", id="string"),
        pytest.param(45.5, id="fraction"),
    ],
)
def test_a_video_duration_must_be_a_positive_whole_number_of_ms_up_to_a_day(duration_ms: Any) -> None:
    (error,) = refusals(line(event("video_published", duration_ms=duration_ms)))
    assert error.field == "duration_ms"


def test_a_duration_belongs_to_video_published_only() -> None:
    (error,) = refusals(line(event("view", duration_ms=45_000)))
    assert error.field == "duration_ms" and error.reason == "not a field of this event type"
