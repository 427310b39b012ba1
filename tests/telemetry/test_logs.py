"""Log lines as text and as JSON, each carrying the id of the request it was made for."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway.telemetry.logs import log_handler
from gateway.telemetry.request_ids import REQUEST_ID

logger = logging.getLogger("gateway.tests.logs")


@pytest.fixture
def logged() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """What `logger` writes through a JSON and a text handler of the gateway's."""
    json_lines, text_lines = io.StringIO(), io.StringIO()
    handlers = [log_handler("json", json_lines), log_handler("text", text_lines)]
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield json_lines, text_lines
    for handler in handlers:
        logger.removeHandler(handler)


def test_json_line_carries_the_request_id_and_extra_fields(logged: tuple[io.StringIO, io.StringIO]) -> None:
    json_lines, _ = logged
    token = REQUEST_ID.set("req-42")
    try:
        logger.info("stored %d events", 3, extra={"batch": 7})
    finally:
        REQUEST_ID.reset(token)
    entry = json.loads(json_lines.getvalue())
    assert entry["message"] == "stored 3 events"
    assert entry["request_id"] == "req-42"
    assert entry["batch"] == 7
    assert (entry["level"], entry["logger"]) == ("INFO", "gateway.tests.logs")
    assert entry["time"].endswith("+00:00")


def test_line_made_outside_any_request_carries_a_dash(logged: tuple[io.StringIO, io.StringIO]) -> None:
    json_lines, text_lines = logged
    logger.info("started")
    assert json.loads(json_lines.getvalue())["request_id"] == "-"
    assert text_lines.getvalue().rstrip().endswith("gateway.tests.logs [-] started")


def test_text_line_shows_the_request_id(logged: tuple[io.StringIO, io.StringIO]) -> None:
    _, text_lines = logged
    token = REQUEST_ID.set("abc.123")
    try:
        logger.warning("slow decision")
    finally:
        REQUEST_ID.reset(token)
    assert " WARNING gateway.tests.logs [abc.123] slow decision" in text_lines.getvalue()


def test_json_line_carries_the_traceback_on_one_line(logged: tuple[io.StringIO, io.StringIO]) -> None:
    json_lines, _ = logged
    try:
        raise ValueError("the policy erred")
    except ValueError:
        logger.exception("decision failed")
    lines = json_lines.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "decision failed"
    assert entry["exception"].startswith("Traceback") and "ValueError: the policy erred" in entry["exception"]


def test_a_message_with_a_line_break_stays_one_json_line(logged: tuple[io.StringIO, io.StringIO]) -> None:
    json_lines, _ = logged
    logger.info("first\nsecond")
    assert json.loads(json_lines.getvalue())["message"] == "first\nsecond"
