"""A comment's sentiment class, as VADER gives it at ingest: a handful of fixed texts."""

from __future__ import annotations

import pytest

from gateway.ingest.ndjson import parse_objects
from gateway.ingest.events import EVENT_COLUMNS
from gateway.ingest.sentiment import Sentiment, classify


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("I love this, best video ever!", Sentiment.POSITIVE, id="praise"),
        pytest.param("Great tutorial, thanks so much :)", Sentiment.POSITIVE, id="thanks-and-emoticon"),
        pytest.param("This is terrible. Worst thing I have watched.", Sentiment.NEGATIVE, id="complaint"),
        pytest.param("not good at all", Sentiment.NEGATIVE, id="negated-praise"),
        pytest.param("Posted from the train.", Sentiment.NEUTRAL, id="statement"),
        pytest.param("What camera is this?", Sentiment.NEUTRAL, id="question"),
        pytest.param("Das ist wirklich schön", Sentiment.NEUTRAL, id="german-reads-neutral"),
    ],
)
def test_vader_classes_fixed_texts(text: str, expected: Sentiment) -> None:
    assert classify(text) is expected


def test_a_comment_record_carries_its_class_and_no_other_event_one() -> None:
    common = {"occurred_at": "2026-11-27T12:00:00Z", "video_id": "v1", "creator_id": "c1", "actor_id": "u2"}
    batch = parse_objects([
        {"event_id": "e1", "type": "comment", "text": "awful, I hate it", **common},
        {"event_id": "e2", "type": "like", **common},
    ])
    sentiment = EVENT_COLUMNS.index("sentiment")
    assert [record[sentiment] for record in batch.records] == ["negative", None]


def test_a_long_comment_is_classified_by_its_opening() -> None:
    """VADER's cost grows with the square of the text: only the opening is read (a red team's batch of
    5,000-character comments took 80 s)."""
    from gateway.ingest.sentiment import READ_CHARACTERS

    opening = "I love this, it is wonderful and so much fun! "
    padded = opening + "x " * ((READ_CHARACTERS - len(opening)) // 2)
    assert classify(padded + "this is awful, terrible, the worst thing ever " * 100) is Sentiment.POSITIVE
    assert classify(padded) is Sentiment.POSITIVE
