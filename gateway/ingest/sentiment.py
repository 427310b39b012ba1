"""A comment's sentiment class, computed once at ingest: the one function any classifier sits behind.

Only the class is kept with the comment (positive, neutral or negative), never a score: a class is
what the breakdown of commenters counts, and no finer figure of anyone's text is stored.

VADER (vaderSentiment 3.3.2, its lexicon shipped in the wheel: nothing is downloaded) is a lexicon
and rules tuned on English social-media text: it reads emoji, capitals, "!!!" and "but", and it is
fast on a comment's length (tens of microseconds for a short one, under a millisecond at 500
characters, in the thread that parses a batch, never on the event loop), but its cost grows with
the square of the length: 5,000 characters took 50–70 ms, and a red team's batch of 2,000 such
comments 80 s. So it reads the first READ_CHARACTERS of a comment, which is what sets its tone on
a short-video platform, and a batch costs at most about a millisecond a comment.
It is English-first: text in another language mostly scores neutral. A stronger model, multilingual
or fine-tuned, replaces `classify` alone (same text in, same three classes out); comments stored
before the change keep the class they were given.
"""

from __future__ import annotations

import functools
from enum import StrEnum

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

__all__ = ["Sentiment", "classify"]


class Sentiment(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


# How much of a comment is read (see above).
READ_CHARACTERS = 500
# VADER's own thresholds on its compound score (−1 … 1).
POSITIVE_FROM = 0.05
NEGATIVE_FROM = -0.05


@functools.cache
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def classify(text: str) -> Sentiment:
    """The sentiment class of a comment's text (its first READ_CHARACTERS): compound ≥ 0.05
    positive, ≤ −0.05 negative, else neutral."""
    compound = _analyzer().polarity_scores(text[:READ_CHARACTERS])["compound"]
    if compound >= POSITIVE_FROM:
        return Sentiment.POSITIVE
    if compound <= NEGATIVE_FROM:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL
