"""Reach, retention, comment sentiment and audience activity against a small hand-counted platform.

Under the shipped policy with its thresholds off (harness.FIELD_TEST_TERMS: no k, no delay), so
every number below is the hand count of EVENTS. Who may see them: the creator only (the policy's
owner-only group audience_insights); suppression under k is tested in tests/privacy and
tests/attacks.

The platform, March 2025 (2025-03-03 is a Monday):
- TIMED (60 s long): viewer-a watched to the end (depth 100 %); viewer-b 30 s, then 45 s (their
  longest: 75 %, the 70 % cell); viewer-c 5 s (0 %); viewer-d 12 s (20 %). Reach 4.
  Comments: viewer-a one positive and one negative, viewer-b a neutral question, viewer-c a
  positive one: positive 2 commenters, neutral 1, negative 1.
- UNTIMED (published without a duration): viewer-a and viewer-e. Reach 2.
- The creator's reach: a, b, c, d, e: 5 (not 4 + 2).
- Views by hour of the week (UTC): Monday 10:00 a, b (and a again on UNTIMED); Monday 11:00 c;
  Tuesday 21:00 b; Wednesday 9:00 d; Sunday 23:00 e.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.auth import ANONYMOUS, Principal, PrincipalKind

from answers import answer, refusals
from fixture_platform import at
from harness import Gateway

CREATOR = "creator-cy"
TIMED = "video-cy-timed"
UNTIMED = "video-cy-untimed"
OWNER = Principal(PrincipalKind.USER, CREATOR)
VIEWER_A = "viewer-a-51c2"


_numbers = iter(range(1, 1000))


def _event(type_: str, when: str, actor: str, video: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"aud-{next(_numbers):03d}", "type": type_, "occurred_at": when, "creator_id": CREATOR,
            "actor_id": actor, "video_id": video, **fields}


def view(video: str, actor: str, when: str, watch_ms: int) -> dict[str, Any]:
    return _event("view", when, actor, video, watch_ms=watch_ms)


EVENTS = [
    _event("video_published", at(3, 9), CREATOR, TIMED, duration_ms=60_000),
    _event("video_published", at(3, 9), CREATOR, UNTIMED),
    view(TIMED, VIEWER_A, at(3, 10, 15), 60_000),
    view(TIMED, "viewer-b", at(3, 10, 40), 30_000),
    view(UNTIMED, VIEWER_A, at(3, 10, 50), 9_000),
    view(TIMED, "viewer-c", at(3, 11, 5), 5_000),
    view(TIMED, "viewer-b", at(4, 21), 45_000),
    view(TIMED, "viewer-d", at(5, 9), 12_000),
    view(UNTIMED, "viewer-e", at(9, 23, 30), 4_000),
    _event("comment", at(3, 10, 20), VIEWER_A, TIMED, text="I love this, amazing!"),
    _event("comment", at(3, 10, 25), VIEWER_A, TIMED, text="but this part is awful"),
    _event("comment", at(3, 10, 45), "viewer-b", TIMED, text="What lens is this?"),
    _event("comment", at(3, 11, 10), "viewer-c", TIMED, text="so great"),
]


@pytest.fixture(scope="module", autouse=True)
async def platform(gateway: Gateway) -> None:
    assert await gateway.backfill(EVENTS) > 0


VIDEO_QUERY = """query($id: ID!) { video(id: $id) {
    stats { views reach }
    retention { points { percent share suppressed } }
    commentSentiment { buckets { key count suppressed } } } }"""


def points(*shares: float) -> list[dict[str, Any]]:
    return [{"percent": 10 * (n + 1), "share": share, "suppressed": False} for n, share in enumerate(shares)]


async def test_the_creator_is_told_reach_retention_and_comment_sentiment_of_a_timed_video(gateway: Gateway) -> None:
    video = answer(await gateway.graphql(VIDEO_QUERY, {"id": TIMED}, principal=OWNER))["video"]

    assert video["stats"] == {"views": 5, "reach": 4}
    # Still watching at 10 % and 20 %: a, b, d; from 30 % to 70 %: a, b; from 80 %: a.
    assert video["retention"]["points"] == points(0.75, 0.75, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25)
    assert video["commentSentiment"]["buckets"] == [
        {"key": "positive", "count": 2, "suppressed": False},
        {"key": "negative", "count": 1, "suppressed": False},
        {"key": "neutral", "count": 1, "suppressed": False},
    ]


async def test_a_video_published_without_a_duration_has_no_retention_and_says_why(gateway: Gateway) -> None:
    response = await gateway.graphql(VIDEO_QUERY, {"id": UNTIMED}, principal=OWNER)

    body = response.json()
    assert body["data"]["video"]["retention"] is None
    assert body["data"]["video"]["stats"] == {"views": 2, "reach": 2}
    assert refusals(response) == [("NOT_FOUND", None, ["video", "retention"])]
    assert "duration_ms" in body["errors"][0]["message"]


async def test_the_creators_reach_counts_each_viewer_once_across_their_videos(gateway: Gateway) -> None:
    query = "query($id: ID!) { creator(id: $id) { totals { views reach } } }"
    totals = answer(await gateway.graphql(query, {"id": CREATOR}, principal=OWNER))["creator"]["totals"]

    assert totals == {"views": 7, "reach": 5}


ACTIVITY_QUERY = """query($id: ID!, $zone: String!) { creator(id: $id) {
    audienceActivity(timeZone: $zone) { timeZone cells { dayOfWeek hour viewers suppressed } } } }"""


def busy_cells(activity: dict[str, Any]) -> dict[tuple[int, int], int]:
    return {(cell["dayOfWeek"], cell["hour"]): cell["viewers"] for cell in activity["cells"] if cell["viewers"]}


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        pytest.param("UTC", {(1, 10): 2, (1, 11): 1, (2, 21): 1, (3, 9): 1, (7, 23): 1}, id="utc"),
        # +5:30 all year: a UTC hour is labelled with the local hour its middle falls in (+6); Sunday
        # 23:00 UTC is Monday 05:00 there.
        pytest.param("Asia/Kolkata", {(1, 16): 2, (1, 17): 1, (3, 3): 1, (3, 15): 1, (1, 5): 1}, id="kolkata"),
    ],
)
async def test_audience_activity_counts_distinct_viewers_by_hour_of_the_week_in_the_zone_asked_for(
    gateway: Gateway, zone: str, expected: dict[tuple[int, int], int]
) -> None:
    activity = answer(await gateway.graphql(ACTIVITY_QUERY, {"id": CREATOR, "zone": zone}, principal=OWNER))["creator"]["audienceActivity"]

    assert activity["timeZone"] == zone
    assert [(cell["dayOfWeek"], cell["hour"]) for cell in activity["cells"]] == [(day, hour) for day in range(1, 8) for hour in range(24)]
    assert not any(cell["suppressed"] for cell in activity["cells"])
    assert busy_cells(activity) == expected


async def test_audience_activity_refuses_a_time_zone_that_is_not_an_iana_name(gateway: Gateway) -> None:
    response = await gateway.graphql(ACTIVITY_QUERY, {"id": CREATOR, "zone": "Mars/Olympus_Mons"}, principal=OWNER)

    assert refusals(response) == [("BAD_USER_INPUT", None, ["creator", "audienceActivity"])]


@pytest.mark.parametrize(
    ("query", "variables", "coordinate", "path"),
    [
        pytest.param("query($id: ID!) { video(id: $id) { stats { reach } } }", {"id": TIMED}, "VideoStats.reach", "video.stats.reach", id="video-reach"),
        pytest.param("query($id: ID!) { video(id: $id) { retention { points { share } } } }", {"id": TIMED}, "Video.retention", "video.retention", id="retention"),
        pytest.param("query($id: ID!) { video(id: $id) { commentSentiment { buckets { key } } } }", {"id": TIMED}, "Video.commentSentiment",
                     "video.commentSentiment", id="comment-sentiment"),
        pytest.param("query($id: ID!) { creator(id: $id) { totals { reach } } }", {"id": CREATOR}, "CreatorTotals.reach", "creator.totals.reach",
                     id="creator-reach"),
        pytest.param("query($id: ID!) { creator(id: $id) { audienceActivity { cells { viewers } } } }", {"id": CREATOR},
                     "Creator.audienceActivity", "creator.audienceActivity", id="audience-activity"),
    ],
)
async def test_only_the_creator_is_told_the_new_metrics(gateway: Gateway, query: str, variables: dict[str, Any], coordinate: str, path: str) -> None:
    as_viewer = await gateway.graphql(query, variables, principal=Principal(PrincipalKind.USER, VIEWER_A))
    as_public = await gateway.graphql(query, variables, principal=ANONYMOUS)

    assert refusals(as_viewer) == [("FORBIDDEN", coordinate, path.split("."))]
    assert as_public.json()["data"] is None
    # The public is refused the whole operation by the policy (its details' types with it).
    assert coordinate in [error["extensions"]["field"] for error in as_public.json()["errors"]]
