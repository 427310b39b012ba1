"""NDJSON lines → validated event records, or the reasons each bad line was refused."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gateway.clock import utc_now
from gateway.errors import EventError, InvalidEvents
from gateway.ingest.events import FIELD_MESSAGES, TOO_FAR_AHEAD, TYPE_MESSAGES, Event, EventRecord, Window, event_adapter, to_record

__all__ = ["OldLines", "ParsedBatch", "check_lines", "parse_lines", "parse_objects"]


@dataclass
class OldLines:
    """A backfill's lines older than the lateness window about one subject (a video, or for
    follows and unfollows a creator): they may be loaded only if it has no history yet."""

    count: int = 0
    first: list[int] = field(default_factory=list)  # the first line numbers, as many as a report lists


@dataclass
class ParsedBatch:
    records: list[EventRecord] = field(default_factory=list)
    errors: list[EventError] = field(default_factory=list)
    error_count: int = 0
    bad_lines: int = 0
    # In a backfill: ("video", id) or ("creator", id) → its lines older than the lateness window.
    old: dict[tuple[str, str], OldLines] = field(default_factory=dict)

    def raise_if_invalid(self) -> None:
        if self.error_count:
            raise InvalidEvents(self.errors, self.error_count, self.bad_lines)

    def refuse(self, line_no: int, field_name: str | None, reason: str) -> None:
        """Refuses one more line, for a reason found after validation."""
        self.bad_lines += 1
        self._report(EventError(line_no, field_name, reason))

    def _refuse(self, line_no: int, exc: ValidationError) -> None:
        self.bad_lines += 1
        for detail in exc.errors(include_url=False, include_input=False):
            name = _field_name(detail)
            self._report(EventError(line_no, name, _reason(name, detail)))

    def _report(self, error: EventError) -> None:
        self.error_count += 1
        if len(self.errors) < InvalidEvents.reported_limit:
            self.errors.append(error)

def parse_lines(
    lines: Iterable[bytes | str], first_line: int = 1, *, keep: bool = True, window: Window | None = None, backfill: bool = False
) -> ParsedBatch:
    """Validate NDJSON lines; blank lines are skipped but still counted.

    `window` holds times to what may arrive now (default: at most a day ahead, no lateness
    limit). With `backfill`, a line older than the window is not refused but listed in
    `ParsedBatch.old`, for the caller to check its subject. With `keep=False` only the errors
    are kept (a validation pass over a large file).
    """
    numbered = ((line_no, line) for line_no, line in enumerate(lines, start=first_line) if line.strip())
    return _validate(numbered, event_adapter.validate_json, keep, window or Window(utc_now()), backfill)


def check_lines(lines: Iterable[bytes | str], *, window: Window | None = None, backfill: bool = False) -> ParsedBatch:
    """Validate every line, keeping only what was wrong (and, in a backfill, the old lines)."""
    return parse_lines(lines, keep=False, window=window, backfill=backfill)


def parse_objects(
    objects: Iterable[dict[str, Any]], first_line: int = 1, *, window: Window | None = None, backfill: bool = False
) -> ParsedBatch:
    """Validate already-decoded events (e.g. generated ones) exactly as lines are."""
    return _validate(enumerate(objects, start=first_line), event_adapter.validate_python, True, window or Window(utc_now()), backfill)


def _validate(numbered: Iterable[tuple[int, Any]], validate: Callable[[Any], Event], keep: bool, window: Window, backfill: bool) -> ParsedBatch:
    batch, latest, earliest = ParsedBatch(), window.latest, window.earliest
    for line_no, item in numbered:
        try:
            event = validate(item)
        except ValidationError as exc:
            batch._refuse(line_no, exc)
            continue
        # Before to_record: converting a time near year 9999 to UTC can overflow.
        occurred = event["occurred_at"]
        if occurred > latest:
            batch.refuse(line_no, "occurred_at", TOO_FAR_AHEAD)
            continue
        if earliest is not None and occurred < earliest:
            if not backfill:
                batch.refuse(line_no, "occurred_at", window.too_late())
                continue
            video_id = event.get("video_id")
            subject = ("video", video_id) if isinstance(video_id, str) else ("creator", event["creator_id"])
            old = batch.old.setdefault(subject, OldLines())
            old.count += 1
            if len(old.first) < InvalidEvents.reported_limit:
                old.first.append(line_no)
        if keep:
            batch.records.append(to_record(event))
    return batch


# pydantic's error types for a line that is valid JSON but not an object.
NOT_AN_OBJECT = frozenset({"json_type", "dict_type", "model_type", "model_attributes_type"})


def _field_name(detail: Any) -> str | None:
    loc = [str(part) for part in detail["loc"]]
    if detail["type"] in NOT_AN_OBJECT or detail["type"] == "json_invalid":
        return None
    if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return "type"
    # The first element is the discriminator's tag (e.g. "share"); the rest is the field.
    return ".".join(loc[1:]) or None


def _reason(field: str | None, detail: Any) -> str:
    if (field, detail["type"]) in FIELD_MESSAGES:
        return FIELD_MESSAGES[field, detail["type"]]
    if detail["type"] in TYPE_MESSAGES:
        return TYPE_MESSAGES[detail["type"]]
    if detail["type"] == "json_invalid":
        return f"not valid JSON: {detail['ctx']['error']}"
    if detail["type"] in NOT_AN_OBJECT:
        return "not a JSON object"
    if detail["type"] == "union_tag_not_found":
        return "field required"
    if detail["type"] == "union_tag_invalid":
        return f"must be one of {detail['ctx']['expected_tags']}"
    if detail["type"] == "extra_forbidden":
        return "not a field of this event type"
    message: str = detail["msg"]
    return message.removeprefix("Value error, ")
