"""Every field of the API against the hand-built platform of fixture_platform.py, for each kind of principal.

The numbers below are counted by hand from fixture_platform.EVENTS (the comments there sum them up),
never by running SQL. Who sees what, under compliance's policy (policies/):
- anonymous and every user see a video's id, creator, publication time and public counts, and a
  creator's totals and videos;
- users may ask for the rest about a video or creator, but it is their own data only: the resolver
  refuses another user's at run time (that field null and FORBIDDEN, the rest of the data served),
  and the creator sees it all;
- `me` is a user's own activity (apps acting for a user are tested in tests/policy/test_guard.py);
- the service principal is ingest-only.
A field the policy does not grant the principal refuses the whole operation before any resolver
runs: `data: null`, and one FORBIDDEN per denied field, at its response path, naming its coordinate,
with the policy's reason as the message.
The policy here is the shipped one with its thresholds off (harness.FIELD_TEST_TERMS): no k, no
delay, so every closed bucket is served and nothing is suppressed but the pooled OTHER region.
Breakdowns list their whole domain, and timelines whole buckets only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.ingest.events import AGE_BANDS
from gateway.privacy.metrics import CHANNEL_KEYS

from answers import answer, refusals
from fixture_platform import (
    ADA,
    ADA_FIRST,
    ADA_SECOND,
    BO,
    BO_ONLY,
    EVENTS,
    FOLLOWER,
    LIKER,
    SHARER,
    UNFOLLOWER,
    VIDEO_OWNER,
    VIEWER,
    VIEWER_FR,
)
from harness import Gateway, field_test_privacy

OWNER_ADA = Principal(PrincipalKind.USER, ADA)
OWNER_BO = Principal(PrincipalKind.USER, BO)
SERVICE = Principal(PrincipalKind.SERVICE, "ingest-bot")
# An app with the insights scope, acting for ADA or for BO. Its counts are noised (its obligations
# carry ε even under the field-test terms), so what it is served is checked, never how much.
APP_FOR_ADA = Principal(PrincipalKind.APP, ADA, frozenset({"insights"}), app_id="app-fields")
APP_FOR_BO = Principal(PrincipalKind.APP, BO, frozenset({"insights"}), app_id="app-fields")

USERS = [
    pytest.param(OWNER_ADA, id="creator-ada"),
    pytest.param(OWNER_BO, id="creator-bo"),
    pytest.param(Principal(PrincipalKind.USER, VIEWER), id="viewer"),
]
# Everyone the policy lets read public counts.
READERS = [pytest.param(ANONYMOUS, id="anonymous"), *USERS]
VIDEOS = [pytest.param(video, id=video) for video in (ADA_FIRST, ADA_SECOND, BO_ONLY)]


def is_owner(principal: Principal, video: str) -> bool:
    """The creator, or an app acting for them."""
    return principal.kind in (PrincipalKind.USER, PrincipalKind.APP) and principal.id == VIDEO_OWNER[video]


# Every user but ADA: the policy lets them ask about ADA_FIRST's details (and ADA's), the resolver refuses.
OTHER_USERS_THAN_ADA = [p for p in USERS if p.values[0] != OWNER_ADA]
# Every (user, video) but the owner's.
OTHER_USERS_OF = [
    pytest.param(p.values[0], v.values[0], id=f"{p.id}-{v.id}") for p in USERS for v in VIDEOS if not is_owner(p.values[0], v.values[0])
]


@pytest.fixture(scope="module", autouse=True)
async def platform(gateway: Gateway) -> None:
    assert await gateway.backfill(EVENTS) > 0


def iso(day: int, hour: int = 0, minute: int = 0, *, month: int = 3) -> str:
    """A time of 2025 as the API writes it."""
    return f"2025-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00+00:00"


def buckets(first: str, step: timedelta, counts: list[int]) -> list[dict[str, Any]]:
    """A dense series of unsuppressed buckets, `step` apart from `first`."""
    start = datetime.fromisoformat(first)
    return [{"start": (start + n * step).isoformat(), "count": count, "suppressed": False} for n, count in enumerate(counts)]


def cells(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"key": key, "count": count, "suppressed": False} for key, count in pairs]


def zeros(*keys: str) -> list[dict[str, Any]]:
    """Empty cells of a breakdown's domain: listed (visible, under no k) after the others, in key order."""
    return cells(*[(key, 0) for key in keys])


# Regions below k are pooled into one suppressed cell, present even when it pools nothing.
OTHER_REGIONS = {"key": "OTHER", "count": None, "suppressed": True}

# The shipped policy's granularity floor per principal kind, as `extensions.privacy` reports it.
FLOOR = {PrincipalKind.ANONYMOUS: "DAY", PrincipalKind.USER: "HOUR", PrincipalKind.SERVICE: "DAY", PrincipalKind.COMPLIANCE: "DAY"}


def privacy_report(principal: Principal, suppressed_cells: int = 0) -> dict[str, Any]:
    return field_test_privacy(FLOOR[principal.kind], suppressed_cells)


def denied_by_policy(response: httpx.Response, principal: Principal) -> list[tuple[str, str | None, list[str | int] | None]]:
    """(code, extensions.field, path) of each error of an operation the policy refused as a whole:
    `data` is null (no resolver ran), each message is the policy's reason, which names the field, and
    the decision's terms are reported all the same (nothing was released under them)."""
    body = response.json()
    assert response.status_code == 200 and sorted(body) == ["data", "errors", "extensions"] and body["data"] is None, response.text
    assert body["extensions"] == {"privacy": privacy_report(principal)}
    for error in body["errors"]:
        assert error["extensions"]["field"] in error["message"], error
    return refusals(response)


def denied(*fields: tuple[str, str]) -> list[tuple[str, str | None, list[str | int] | None]]:
    """The refusals denied_by_policy returns for (coordinate, response path with dots) in document order."""
    return [("FORBIDDEN", coordinate, path.split(".")) for coordinate, path in fields]


# --- Video: id, creator, publication time and public counts -----------------------------------

PUBLIC_VIDEO = {
    ADA_FIRST: {"id": ADA_FIRST, "creatorId": ADA, "publishedAt": iso(3, 10),
                "stats": {"views": 7, "likes": 2, "comments": 3, "shares": 5}},
    ADA_SECOND: {"id": ADA_SECOND, "creatorId": ADA, "publishedAt": iso(12, 8),
                 "stats": {"views": 2, "likes": 1, "comments": 0, "shares": 4}},
    BO_ONLY: {"id": BO_ONLY, "creatorId": BO, "publishedAt": iso(5, 15),
              "stats": {"views": 1, "likes": 0, "comments": 1, "shares": 1}},
}
PUBLIC_VIDEO_QUERY = "query($id: ID!) { video(id: $id) { id creatorId publishedAt stats { views likes comments shares } } }"
PUBLIC_STATS_DENIED = [(f"VideoStats.{field}", f"video.stats.{field}") for field in ("views", "likes", "comments", "shares")]


@pytest.mark.parametrize("video", VIDEOS)
@pytest.mark.parametrize("principal", READERS)
async def test_video_public_fields_are_the_same_for_anonymous_and_every_user(gateway: Gateway, principal: Principal, video: str) -> None:
    response = await gateway.graphql(PUBLIC_VIDEO_QUERY, {"id": video}, principal=principal)

    assert answer(response) == {"video": PUBLIC_VIDEO[video]}


@pytest.mark.parametrize("video", VIDEOS)
async def test_video_public_fields_are_refused_to_the_service(gateway: Gateway, video: str) -> None:
    response = await gateway.graphql(PUBLIC_VIDEO_QUERY, {"id": video}, principal=SERVICE)

    assert denied_by_policy(response, SERVICE) == denied(
        ("Query.video", "video"),
        ("Video.id", "video.id"),
        ("Video.creatorId", "video.creatorId"),
        ("Video.publishedAt", "video.publishedAt"),
        ("Video.stats", "video.stats"),
        *PUBLIC_STATS_DENIED,
    )


# --- VideoStats: the owner's four ratios --------------------------------------------------------

ALL_STATS_QUERY = """query($id: ID!) { video(id: $id) { stats {
    views likes comments shares likeRatio engagementRate averageWatchSeconds completionRate } } }"""
OWNER_STATS = {
    # likes / views; (likes + comments + shares) / views; watch seconds / views; completed / views
    ADA_FIRST: {"likeRatio": 2 / 7, "engagementRate": 10 / 7, "averageWatchSeconds": 18.0, "completionRate": 4 / 7},
    ADA_SECOND: {"likeRatio": 0.5, "engagementRate": 2.5, "averageWatchSeconds": 5.0, "completionRate": 0.0},
    BO_ONLY: {"likeRatio": 0.0, "engagementRate": 2.0, "averageWatchSeconds": 12.0, "completionRate": 1.0},
}
OWNER_ONLY_STATS = ("likeRatio", "engagementRate", "averageWatchSeconds", "completionRate")


@pytest.mark.parametrize("video", VIDEOS)
async def test_video_stats_owner_sees_all_eight(gateway: Gateway, video: str) -> None:
    owner = Principal(PrincipalKind.USER, VIDEO_OWNER[video])

    stats = answer(await gateway.graphql(ALL_STATS_QUERY, {"id": video}, principal=owner))["video"]["stats"]

    assert stats == {**PUBLIC_VIDEO[video]["stats"], **OWNER_STATS[video]}


@pytest.mark.parametrize(("principal", "video"), OTHER_USERS_OF)
async def test_video_stats_ratios_are_refused_at_run_time_to_other_users(gateway: Gateway, principal: Principal, video: str) -> None:
    response = await gateway.graphql(ALL_STATS_QUERY, {"id": video}, principal=principal)

    assert refusals(response) == [
        ("FORBIDDEN", f"VideoStats.{field}", ["video", "stats", field]) for field in OWNER_ONLY_STATS
    ]
    assert response.json()["data"] == {
        "video": {"stats": {**PUBLIC_VIDEO[video]["stats"], **dict.fromkeys(OWNER_ONLY_STATS)}}
    }


RATIOS_DENIED = [(f"VideoStats.{field}", f"video.stats.{field}") for field in OWNER_ONLY_STATS]


@pytest.mark.parametrize("video", VIDEOS)
@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        pytest.param(ANONYMOUS, denied(*RATIOS_DENIED), id="anonymous"),
        pytest.param(SERVICE, denied(("Query.video", "video"), ("Video.stats", "video.stats"), *PUBLIC_STATS_DENIED, *RATIOS_DENIED),
                     id="service"),
    ],
)
async def test_video_stats_ratios_refuse_the_whole_operation_to_anonymous_and_the_service(
    gateway: Gateway, principal: Principal, expected: list[Any], video: str
) -> None:
    response = await gateway.graphql(ALL_STATS_QUERY, {"id": video}, principal=principal)

    assert denied_by_policy(response, principal) == expected


# --- Timelines ----------------------------------------------------------------------------------

HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(weeks=1)
TIMELINE_QUERY = """query($id: ID!, $g: Granularity!, $from: DateTime, $to: DateTime) {
    video(id: $id) { %s(granularity: $g, from: $from, to: $to) { granularity from to buckets { start count suppressed } } } }"""


@pytest.mark.parametrize(
    ("field", "video", "granularity", "start", "end", "expected"),
    [
        # ADA_FIRST's shares: 3rd 10:55; 4th 09:40, 09:45; 6th 18:20; 10th 20:05.
        pytest.param("shareTimeline", ADA_FIRST, "HOUR", iso(4, 8), iso(4, 12), buckets(iso(4, 8), HOUR, [0, 2, 0, 0]), id="shares-hour"),
        pytest.param("shareTimeline", ADA_FIRST, "DAY", iso(2), iso(8), buckets(iso(2), DAY, [0, 1, 2, 0, 1, 0]), id="shares-day"),
        pytest.param("shareTimeline", ADA_FIRST, "WEEK", iso(3), iso(24), buckets(iso(3), WEEK, [4, 1, 0]), id="shares-week"),
        pytest.param("shareTimeline", ADA_FIRST, "MONTH", iso(1, month=2), iso(1, month=5),
                     [{"start": iso(1, month=m), "count": c, "suppressed": False} for m, c in ((2, 0), (3, 5), (4, 0))], id="shares-month"),
        pytest.param("shareTimeline", ADA_SECOND, "DAY", iso(12), iso(15), buckets(iso(12), DAY, [0, 2, 2]), id="second-video-shares-day"),
        pytest.param("shareTimeline", BO_ONLY, "HOUR", iso(5, 15), iso(5, 18), buckets(iso(5, 15), HOUR, [0, 1, 0]), id="other-creator-shares-hour"),
        # ADA_FIRST's views: 3rd 10:15, 10:40, 11:05; 4th 09:00, 09:30, 12:00; 10th 20:00.
        pytest.param("viewTimeline", ADA_FIRST, "HOUR", iso(3, 9), iso(3, 13), buckets(iso(3, 9), HOUR, [0, 2, 1, 0]), id="views-hour"),
        pytest.param("viewTimeline", ADA_FIRST, "DAY", iso(2), iso(8), buckets(iso(2), DAY, [0, 3, 3, 0, 0, 0]), id="views-day"),
        pytest.param("viewTimeline", ADA_FIRST, "WEEK", iso(3), iso(24), buckets(iso(3), WEEK, [6, 1, 0]), id="views-week"),
        pytest.param("viewTimeline", ADA_FIRST, "DAY", iso(20), iso(23), buckets(iso(20), DAY, [0, 0, 0]), id="views-none-in-range"),
    ],
)
async def test_video_timeline_owner_sees_dense_buckets(
    gateway: Gateway, field: str, video: str, granularity: str, start: str, end: str, expected: list[dict[str, Any]]
) -> None:
    owner = Principal(PrincipalKind.USER, VIDEO_OWNER[video])
    variables = {"id": video, "g": granularity, "from": start, "to": end}

    timeline = answer(await gateway.graphql(TIMELINE_QUERY % field, variables, principal=owner))["video"][field]

    assert timeline == {"granularity": granularity, "from": start, "to": end, "buckets": expected}


@pytest.mark.parametrize(
    ("granularity", "start", "end", "served_from", "served_to", "counts"),
    [
        # ADA_FIRST's shares: 3rd 10:55; 4th 09:40, 09:45; 6th 18:20.
        pytest.param("DAY", iso(4, 9, 42), iso(6), iso(4), iso(6), [2, 0], id="from-widened-to-its-bucket"),
        pytest.param("DAY", iso(3), iso(6, 18, 30), iso(3), iso(6), [1, 2, 0], id="partial-last-bucket-left-out"),
        pytest.param("HOUR", iso(4, 8, 30), iso(4, 9, 50), iso(4, 8), iso(4, 9), [0], id="partial-hours-at-both-ends"),
        # No whole bucket in the range: an empty timeline, not an error.
        pytest.param("DAY", iso(4, 9), iso(4, 10), iso(4), iso(4), [], id="within-one-bucket"),
    ],
)
async def test_video_timeline_serves_whole_buckets_and_reports_the_served_range(
    gateway: Gateway, granularity: str, start: str, end: str, served_from: str, served_to: str, counts: list[int]
) -> None:
    variables = {"id": ADA_FIRST, "g": granularity, "from": start, "to": end}

    timeline = answer(await gateway.graphql(TIMELINE_QUERY % "shareTimeline", variables, principal=OWNER_ADA))["video"]["shareTimeline"]

    step = {"HOUR": HOUR, "DAY": DAY}[granularity]
    assert timeline == {"granularity": granularity, "from": served_from, "to": served_to, "buckets": buckets(served_from, step, counts)}


async def test_video_timeline_ends_at_the_newest_closed_bucket(gateway: Gateway) -> None:
    # Under the field-test terms (no delay) the newest bucket served is the last one that closed: a
    # `to` in the future is cut to the start of the current month, the one still filling.
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - DAY).replace(day=1)
    months_ago = [(last_month - DAY).replace(day=1), last_month]
    variables = {"id": ADA_FIRST, "g": "MONTH", "from": months_ago[0].isoformat(), "to": (this_month + timedelta(days=40)).isoformat()}

    timeline = answer(await gateway.graphql(TIMELINE_QUERY % "shareTimeline", variables, principal=OWNER_ADA))["video"]["shareTimeline"]

    assert (timeline["from"], timeline["to"]) == (months_ago[0].isoformat(), this_month.isoformat())
    assert timeline["buckets"] == [{"start": month.isoformat(), "count": 0, "suppressed": False} for month in months_ago]


# --- Breakdowns ---------------------------------------------------------------------------------

CHANNELS_QUERY = "query($id: ID!) { video(id: $id) { shareChannels { buckets { key count suppressed } } } }"
AUDIENCE_QUERY = "query($id: ID!, $d: AudienceDimension!) { video(id: $id) { audience(dimension: $d) { buckets { key count suppressed } } } }"


@pytest.mark.parametrize(
    ("video", "expected"),
    [
        # Every channel is listed, the ones nobody shared on as zeros, and `undisclosed` (anonymous shares: none here).
        pytest.param(ADA_FIRST, cells(("whatsapp", 3), ("copy_link", 1), ("email", 1))
                     + zeros("direct_message", "facebook", "instagram", "other", "sms", "undisclosed", "x"), id=ADA_FIRST),
        pytest.param(ADA_SECOND, cells(("sms", 3), ("direct_message", 1))
                     + zeros("copy_link", "email", "facebook", "instagram", "other", "undisclosed", "whatsapp", "x"), id=ADA_SECOND),
        pytest.param(BO_ONLY, cells(("x", 1))
                     + zeros("copy_link", "direct_message", "email", "facebook", "instagram", "other", "sms", "undisclosed", "whatsapp"), id=BO_ONLY),
    ],
)
async def test_share_channels_owner_sees_shares_per_channel_most_first(gateway: Gateway, video: str, expected: list[dict[str, Any]]) -> None:
    owner = Principal(PrincipalKind.USER, VIDEO_OWNER[video])

    response = await gateway.graphql(CHANNELS_QUERY, {"id": video}, principal=owner)

    assert answer(response) == {"video": {"shareChannels": {"buckets": expected}}}
    assert sorted(cell["key"] for cell in expected) == sorted(CHANNEL_KEYS)
    assert response.json()["extensions"] == {"privacy": privacy_report(owner)}


@pytest.mark.parametrize(
    ("video", "dimension", "expected"),
    [
        # Distinct viewers: VIEWER viewed twice from DE and counts once; SHARER's share from IT is no viewer;
        # SHARER_NO_REGION's view had no region, VIEWER_FR's no age band.
        # Every age band is listed, the empty ones as zeros; regions are the ones seen, and the pooled OTHER.
        pytest.param(ADA_FIRST, "REGION", [*cells(("DE", 3), ("FR", 1), ("US", 1), ("unknown", 1)), OTHER_REGIONS], id="first-region"),
        pytest.param(ADA_FIRST, "AGE_BAND", cells(("18-24", 2), ("25-34", 1), ("35-44", 1), ("45-54", 1), ("unknown", 1))
                     + zeros("13-17", "55-64", "65+"), id="first-age-band"),
        pytest.param(ADA_SECOND, "REGION", [*cells(("DE", 1), ("FR", 1)), OTHER_REGIONS], id="second-region"),
        pytest.param(ADA_SECOND, "AGE_BAND", cells(("18-24", 1), ("unknown", 1))
                     + zeros("13-17", "25-34", "35-44", "45-54", "55-64", "65+"), id="second-age-band"),
        pytest.param(BO_ONLY, "REGION", [*cells(("DE", 1)), OTHER_REGIONS], id="other-creator-region"),
    ],
)
async def test_audience_owner_sees_distinct_viewers_per_cell(
    gateway: Gateway, video: str, dimension: str, expected: list[dict[str, Any]]
) -> None:
    owner = Principal(PrincipalKind.USER, VIDEO_OWNER[video])

    response = await gateway.graphql(AUDIENCE_QUERY, {"id": video, "d": dimension}, principal=owner)

    assert answer(response) == {"video": {"audience": {"buckets": expected}}}
    if dimension == "AGE_BAND":
        assert sorted(cell["key"] for cell in expected) == sorted((*AGE_BANDS, "unknown"))
    # The pooled OTHER cell is the one suppressed cell a region breakdown always reports.
    assert response.json()["extensions"] == {"privacy": privacy_report(owner, suppressed_cells=1 if dimension == "REGION" else 0)}


# --- Refusals of the owner's video fields ------------------------------------------------------

def timeline_denied(parent: str, path: str) -> list[tuple[str, str]]:
    """A timeline's coordinates as TIMELINE_QUERY and FOLLOWER_GROWTH_QUERY select them: the field at
    `path`, its granularity, from, to and buckets, and each bucket's start, count and suppressed."""
    field = path.split(".")[-1]
    return [
        (f"{parent}.{field}", path),
        *[(f"Timeline.{name}", f"{path}.{name}") for name in ("granularity", "from", "to", "buckets")],
        *[(f"TimeBucket.{name}", f"{path}.buckets.{name}") for name in ("start", "count", "suppressed")],
    ]


def breakdown_denied(field: str) -> list[tuple[str, str]]:
    """A breakdown's coordinates as CHANNELS_QUERY and AUDIENCE_QUERY select them."""
    return [
        (f"Video.{field}", f"video.{field}"),
        ("Breakdown.buckets", f"video.{field}.buckets"),
        *[(f"BreakdownBucket.{name}", f"video.{field}.buckets.{name}") for name in ("key", "count", "suppressed")],
    ]


# (id, query, variables, the detail's coordinate, what the policy denies anonymous: the detail and all under it)
DETAILS = [
    ("shareTimeline", TIMELINE_QUERY % "shareTimeline", {"g": "DAY", "from": iso(2), "to": iso(8)}, "Video.shareTimeline",
     timeline_denied("Video", "video.shareTimeline")),
    ("viewTimeline", TIMELINE_QUERY % "viewTimeline", {"g": "HOUR", "from": iso(3), "to": iso(4)}, "Video.viewTimeline",
     timeline_denied("Video", "video.viewTimeline")),
    ("shareChannels", CHANNELS_QUERY, {}, "Video.shareChannels", breakdown_denied("shareChannels")),
    ("audience-region", AUDIENCE_QUERY, {"d": "REGION"}, "Video.audience", breakdown_denied("audience")),
    ("audience-age-band", AUDIENCE_QUERY, {"d": "AGE_BAND"}, "Video.audience", breakdown_denied("audience")),
]
VIDEO_DETAILS = [pytest.param(query, variables, coordinate, id=name) for name, query, variables, coordinate, _ in DETAILS]
VIDEO_DETAILS_DENIED = [pytest.param(query, variables, fields, id=name) for name, query, variables, _, fields in DETAILS]


@pytest.mark.parametrize(("query", "variables", "coordinate"), VIDEO_DETAILS)
@pytest.mark.parametrize("principal", OTHER_USERS_THAN_ADA)
async def test_video_details_are_refused_at_run_time_to_other_users(
    gateway: Gateway, principal: Principal, query: str, variables: dict[str, Any], coordinate: str
) -> None:
    field = coordinate.split(".")[1]

    response = await gateway.graphql(query, {"id": ADA_FIRST, **variables}, principal=principal)

    assert refusals(response) == [("FORBIDDEN", coordinate, ["video", field])]
    assert response.json()["data"] == {"video": {field: None}}


@pytest.mark.parametrize(("query", "variables", "denied_to_anonymous"), VIDEO_DETAILS_DENIED)
@pytest.mark.parametrize(
    ("principal", "also_denied"),
    [pytest.param(ANONYMOUS, [], id="anonymous"), pytest.param(SERVICE, [("Query.video", "video")], id="service")],
)
async def test_video_details_refuse_the_whole_operation_to_anonymous_and_the_service(
    gateway: Gateway,
    principal: Principal,
    also_denied: list[tuple[str, str]],
    query: str,
    variables: dict[str, Any],
    denied_to_anonymous: list[tuple[str, str]],
) -> None:
    response = await gateway.graphql(query, {"id": ADA_FIRST, **variables}, principal=principal)

    assert denied_by_policy(response, principal) == denied(*also_denied, *denied_to_anonymous)


# The same details at an app's granularity floor, DAY: the policy refuses it an HOUR timeline.
APP_VIDEO_DETAILS = [
    pytest.param(query, {**variables, "g": "DAY"} if "g" in variables else variables, coordinate, id=name)
    for name, query, variables, coordinate, _ in DETAILS
]


@pytest.mark.parametrize(("query", "variables", "coordinate"), APP_VIDEO_DETAILS)
async def test_video_details_are_served_to_an_app_acting_for_the_creator_breakdowns_noised(
    gateway: Gateway, query: str, variables: dict[str, Any], coordinate: str
) -> None:
    """Breakdown cells are what the public cannot read exactly: the app's carry noise. A timeline
    is the released counts by release, the same history the public's counts come from: exact,
    and (under these terms, with no k) the creator's own."""
    field = coordinate.split(".")[1]

    response = await gateway.graphql(query, {"id": ADA_FIRST, **variables}, principal=APP_FOR_ADA)

    served = answer(response)["video"][field]
    assert served is not None
    if field.endswith("Timeline"):
        assert response.json()["extensions"]["privacy"]["noised"] is False
        as_creator = await gateway.graphql(query, {"id": ADA_FIRST, **variables}, principal=OWNER_ADA)
        assert served == answer(as_creator)["video"][field]
    else:
        assert response.json()["extensions"]["privacy"]["noised"] is True


@pytest.mark.parametrize(("query", "variables", "coordinate"), APP_VIDEO_DETAILS)
async def test_video_details_are_refused_at_run_time_to_an_app_acting_for_another_user(
    gateway: Gateway, query: str, variables: dict[str, Any], coordinate: str
) -> None:
    field = coordinate.split(".")[1]

    response = await gateway.graphql(query, {"id": ADA_FIRST, **variables}, principal=APP_FOR_BO)

    assert refusals(response) == [("FORBIDDEN", coordinate, ["video", field])]
    assert response.json()["data"] == {"video": {field: None}}


async def test_average_watch_seconds_is_null_for_an_app_acting_for_the_creator(gateway: Gateway) -> None:
    # Where counts are noised watch time is not served at all: the policy gives it no ε of its own.
    response = await gateway.graphql(ALL_STATS_QUERY, {"id": ADA_FIRST}, principal=APP_FOR_ADA)

    assert answer(response)["video"]["stats"]["averageWatchSeconds"] is None
    assert response.json()["extensions"]["privacy"]["noised"] is True


DETAIL_BESIDE_PUBLIC_FIELDS = "query($id: ID!) { video(id: $id) { id stats { views } shareChannels { buckets { key count } } } }"


async def test_refused_detail_leaves_the_public_fields_of_its_video(gateway: Gateway) -> None:
    response = await gateway.graphql(DETAIL_BESIDE_PUBLIC_FIELDS, {"id": ADA_FIRST}, principal=Principal(PrincipalKind.USER, VIEWER))

    assert refusals(response) == [("FORBIDDEN", "Video.shareChannels", ["video", "shareChannels"])]
    assert response.json()["data"] == {"video": {"id": ADA_FIRST, "stats": {"views": 7}, "shareChannels": None}}


async def test_denied_detail_withholds_the_public_fields_beside_it(gateway: Gateway) -> None:
    response = await gateway.graphql(DETAIL_BESIDE_PUBLIC_FIELDS, {"id": ADA_FIRST})

    assert denied_by_policy(response, ANONYMOUS) == denied(
        ("Video.shareChannels", "video.shareChannels"),
        ("Breakdown.buckets", "video.shareChannels.buckets"),
        ("BreakdownBucket.key", "video.shareChannels.buckets.key"),
        ("BreakdownBucket.count", "video.shareChannels.buckets.count"),
    )


async def test_denied_field_runs_no_resolver(gateway: Gateway) -> None:
    # Had `video` run, an unknown id would be NOT_FOUND; the policy's refusal comes first and alone.
    response = await gateway.graphql('{ video(id: "no-such-video") { id stats { views likeRatio } } }')

    assert denied_by_policy(response, ANONYMOUS) == denied(("VideoStats.likeRatio", "video.stats.likeRatio"))


# --- Creator: totals, videos, followerGrowth ----------------------------------------------------

TOTALS = {
    # ADA: 7 + 2 views, 2 + 1 likes, 3 + 0 comments, 5 + 4 shares, 3 follows - 1 unfollow.
    ADA: {"videos": 2, "views": 9, "likes": 3, "comments": 3, "shares": 9, "followers": 2},
    BO: {"videos": 1, "views": 1, "likes": 0, "comments": 1, "shares": 1, "followers": 2},
}


TOTALS_QUERY = "query($id: ID!) { creator(id: $id) { id totals { videos views likes comments shares followers } } }"


@pytest.mark.parametrize("creator", [pytest.param(ADA, id=ADA), pytest.param(BO, id=BO)])
@pytest.mark.parametrize("principal", READERS)
async def test_creator_totals_are_public(gateway: Gateway, principal: Principal, creator: str) -> None:
    data = answer(await gateway.graphql(TOTALS_QUERY, {"id": creator}, principal=principal))

    assert data == {"creator": {"id": creator, "totals": TOTALS[creator]}}


@pytest.mark.parametrize("creator", [pytest.param(ADA, id=ADA), pytest.param(BO, id=BO)])
async def test_creator_totals_are_refused_to_the_service(gateway: Gateway, creator: str) -> None:
    response = await gateway.graphql(TOTALS_QUERY, {"id": creator}, principal=SERVICE)

    assert denied_by_policy(response, SERVICE) == denied(
        ("Query.creator", "creator"),
        ("Creator.id", "creator.id"),
        ("Creator.totals", "creator.totals"),
        *[(f"CreatorTotals.{field}", f"creator.totals.{field}") for field in ("videos", "views", "likes", "comments", "shares", "followers")],
    )


VIDEOS_QUERY = """query($id: ID!, $first: Int!, $after: String, $order: VideoOrder!) {
    creator(id: $id) { videos(first: $first, after: $after, orderBy: $order) {
        edges { cursor node { id stats { shares } } } pageInfo { hasNextPage endCursor } } } }"""


async def videos_page(gateway: Gateway, principal: Principal, order: str, first: int, after: str | None = None) -> dict[str, Any]:
    variables = {"id": ADA, "first": first, "after": after, "order": order}
    connection: dict[str, Any] = answer(await gateway.graphql(VIDEOS_QUERY, variables, principal=principal))["creator"]["videos"]
    return connection


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # Newest first: ADA_SECOND was published on the 12th, ADA_FIRST on the 3rd.
        pytest.param("PUBLISHED_AT", [(ADA_SECOND, 4), (ADA_FIRST, 5)], id="published-at"),
        pytest.param("SHARES", [(ADA_FIRST, 5), (ADA_SECOND, 4)], id="shares"),
    ],
)
@pytest.mark.parametrize("principal", READERS)
async def test_creator_videos_in_either_order(gateway: Gateway, principal: Principal, order: str, expected: list[tuple[str, int]]) -> None:
    connection = await videos_page(gateway, principal, order, first=10)

    assert [(e["node"]["id"], e["node"]["stats"]["shares"]) for e in connection["edges"]] == expected
    assert connection["pageInfo"] == {"hasNextPage": False, "endCursor": connection["edges"][-1]["cursor"]}


@pytest.mark.parametrize("order", ["PUBLISHED_AT", "SHARES"])
async def test_creator_videos_are_refused_to_the_service(gateway: Gateway, order: str) -> None:
    response = await gateway.graphql(VIDEOS_QUERY, {"id": ADA, "first": 10, "order": order}, principal=SERVICE)

    # List items have no index in a policy path: `edges` stands for every edge.
    assert denied_by_policy(response, SERVICE) == denied(
        ("Query.creator", "creator"),
        ("Creator.videos", "creator.videos"),
        ("VideoConnection.edges", "creator.videos.edges"),
        ("VideoEdge.cursor", "creator.videos.edges.cursor"),
        ("VideoEdge.node", "creator.videos.edges.node"),
        ("Video.id", "creator.videos.edges.node.id"),
        ("Video.stats", "creator.videos.edges.node.stats"),
        ("VideoStats.shares", "creator.videos.edges.node.stats.shares"),
        ("VideoConnection.pageInfo", "creator.videos.pageInfo"),
        ("PageInfo.hasNextPage", "creator.videos.pageInfo.hasNextPage"),
        ("PageInfo.endCursor", "creator.videos.pageInfo.endCursor"),
    )


@pytest.mark.parametrize(
    ("order", "expected"),
    [pytest.param("PUBLISHED_AT", [ADA_SECOND, ADA_FIRST], id="published-at"), pytest.param("SHARES", [ADA_FIRST, ADA_SECOND], id="shares")],
)
async def test_creator_videos_pages_follow_end_cursor(gateway: Gateway, order: str, expected: list[str]) -> None:
    first = await videos_page(gateway, ANONYMOUS, order, first=1)
    second = await videos_page(gateway, ANONYMOUS, order, first=1, after=first["pageInfo"]["endCursor"])

    assert [e["node"]["id"] for e in first["edges"] + second["edges"]] == expected
    assert first["pageInfo"] == {"hasNextPage": True, "endCursor": first["edges"][0]["cursor"]}
    assert second["pageInfo"] == {"hasNextPage": False, "endCursor": second["edges"][0]["cursor"]}


async def test_creator_videos_after_the_last_page_is_empty(gateway: Gateway) -> None:
    last = await videos_page(gateway, ANONYMOUS, "SHARES", first=2)

    after = await videos_page(gateway, ANONYMOUS, "SHARES", first=2, after=last["pageInfo"]["endCursor"])

    assert after == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


@pytest.mark.parametrize(("made_by", "used_with"), [("PUBLISHED_AT", "SHARES"), ("SHARES", "PUBLISHED_AT")])
async def test_creator_videos_cursor_of_another_ordering_is_bad_input(gateway: Gateway, made_by: str, used_with: str) -> None:
    cursor = (await videos_page(gateway, ANONYMOUS, made_by, first=1))["pageInfo"]["endCursor"]

    response = await gateway.graphql(VIDEOS_QUERY, {"id": ADA, "first": 1, "after": cursor, "order": used_with})

    assert refusals(response) == [("BAD_USER_INPUT", None, ["creator", "videos"])]
    assert response.json()["data"] == {"creator": None}


FOLLOWER_GROWTH_QUERY = """query($id: ID!, $g: Granularity!, $from: DateTime, $to: DateTime) {
    creator(id: $id) { followerGrowth(granularity: $g, from: $from, to: $to) { granularity from to buckets { start count suppressed } } } }"""


@pytest.mark.parametrize(
    ("creator", "granularity", "start", "end", "expected"),
    [
        # ADA: +2 on the 4th, -1 on the 11th, +1 on the 12th; a week's count is net, not gross.
        pytest.param(ADA, "DAY", iso(3), iso(14), buckets(iso(3), DAY, [0, 2, 0, 0, 0, 0, 0, 0, -1, 1, 0]), id="ada-day"),
        pytest.param(ADA, "WEEK", iso(3), iso(24), buckets(iso(3), WEEK, [2, 0, 0]), id="ada-week"),
        pytest.param(ADA, "MONTH", iso(1, month=2), iso(1, month=4),
                     [{"start": iso(1, month=2), "count": 0, "suppressed": False}, {"start": iso(1), "count": 2, "suppressed": False}],
                     id="ada-month"),
        pytest.param(BO, "DAY", iso(4), iso(8), buckets(iso(4), DAY, [0, 1, 1, 0]), id="bo-day"),
        # Follows are released by arrival like everything else, so an owner may ask for hours too.
        pytest.param(ADA, "HOUR", iso(4, 9), iso(4, 13), buckets(iso(4, 9), HOUR, [0, 1, 1, 0]), id="ada-hour"),
    ],
)
async def test_follower_growth_owner_sees_net_follows_per_bucket(
    gateway: Gateway, creator: str, granularity: str, start: str, end: str, expected: list[dict[str, Any]]
) -> None:
    variables = {"id": creator, "g": granularity, "from": start, "to": end}

    data = answer(await gateway.graphql(FOLLOWER_GROWTH_QUERY, variables, principal=Principal(PrincipalKind.USER, creator)))

    assert data == {"creator": {"followerGrowth": {"granularity": granularity, "from": start, "to": end, "buckets": expected}}}


@pytest.mark.parametrize("principal", OTHER_USERS_THAN_ADA)
async def test_follower_growth_is_refused_at_run_time_to_other_users(gateway: Gateway, principal: Principal) -> None:
    response = await gateway.graphql(FOLLOWER_GROWTH_QUERY, {"id": ADA, "g": "DAY", "from": iso(3), "to": iso(14)}, principal=principal)

    assert refusals(response) == [("FORBIDDEN", "Creator.followerGrowth", ["creator", "followerGrowth"])]
    assert response.json()["data"] == {"creator": {"followerGrowth": None}}


@pytest.mark.parametrize(
    ("principal", "also_denied"),
    [pytest.param(ANONYMOUS, [], id="anonymous"), pytest.param(SERVICE, [("Query.creator", "creator")], id="service")],
)
async def test_follower_growth_refuses_the_whole_operation_to_anonymous_and_the_service(
    gateway: Gateway, principal: Principal, also_denied: list[tuple[str, str]]
) -> None:
    response = await gateway.graphql(FOLLOWER_GROWTH_QUERY, {"id": ADA, "g": "DAY", "from": iso(3), "to": iso(14)}, principal=principal)

    assert denied_by_policy(response, principal) == denied(*also_denied, *timeline_denied("Creator", "creator.followerGrowth"))


async def test_follower_growth_does_not_serve_the_last_partial_day(gateway: Gateway) -> None:
    # `to` is noon on the 4th: the 4th (ADA's +2) is not a whole day of the range, so it is left out.
    variables = {"id": ADA, "g": "DAY", "from": iso(3), "to": iso(4, 12)}

    data = answer(await gateway.graphql(FOLLOWER_GROWTH_QUERY, variables, principal=OWNER_ADA))

    growth = data["creator"]["followerGrowth"]
    assert growth == {"granularity": "DAY", "from": iso(3), "to": iso(4), "buckets": buckets(iso(3), DAY, [0])}


# --- Me: a user's own rows ---------------------------------------------------------------------

ME_QUERY = "{ me { id shares { videoId channel sharedAt } likes { videoId likedAt } follows { creatorId followedAt } } }"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        # Unliked ADA_FIRST on the 5th: only ADA_SECOND is liked now. Newest first everywhere.
        pytest.param(VIEWER, {"shares": [], "likes": [{"videoId": ADA_SECOND, "likedAt": iso(12, 9, 5)}],
                              "follows": [{"creatorId": ADA, "followedAt": iso(12, 10)},
                                          {"creatorId": BO, "followedAt": iso(5, 16, 20)}]}, id="viewer"),
        pytest.param(SHARER, {"shares": [
            {"videoId": ADA_SECOND, "channel": "direct_message", "sharedAt": iso(14, 7)},
            {"videoId": ADA_SECOND, "channel": "sms", "sharedAt": iso(13, 11, 30)},
            {"videoId": ADA_SECOND, "channel": "sms", "sharedAt": iso(13, 11)},
            {"videoId": ADA_FIRST, "channel": "whatsapp", "sharedAt": iso(6, 18, 20)},
            {"videoId": BO_ONLY, "channel": "x", "sharedAt": iso(5, 16, 45)},
            {"videoId": ADA_FIRST, "channel": "copy_link", "sharedAt": iso(4, 9, 45)},
            {"videoId": ADA_FIRST, "channel": "whatsapp", "sharedAt": iso(4, 9, 40)},
        ], "likes": [], "follows": [{"creatorId": BO, "followedAt": iso(6, 10)}]}, id="sharer"),
        pytest.param(VIEWER_FR, {"shares": [{"videoId": ADA_FIRST, "channel": "whatsapp", "sharedAt": iso(3, 10, 55)}],
                                 "likes": [{"videoId": ADA_FIRST, "likedAt": iso(3, 10, 45)}], "follows": []}, id="viewer-fr"),
        # Liked BO_ONLY and took it back.
        pytest.param(LIKER, {"shares": [], "likes": [{"videoId": ADA_FIRST, "likedAt": iso(4, 9, 10)}], "follows": []}, id="liker"),
        pytest.param(FOLLOWER, {"shares": [], "likes": [], "follows": [{"creatorId": ADA, "followedAt": iso(4, 10)}]}, id="follower"),
        pytest.param(UNFOLLOWER, {"shares": [], "likes": [], "follows": []}, id="unfollower"),
        # Publishing is none of these.
        pytest.param(ADA, {"shares": [], "likes": [], "follows": []}, id="creator"),
    ],
)
async def test_me_is_the_users_own_rows_only(gateway: Gateway, user: str, expected: dict[str, Any]) -> None:
    data = answer(await gateway.graphql(ME_QUERY, principal=Principal(PrincipalKind.USER, user)))

    assert data == {"me": {"id": user, **expected}}


async def test_me_first_limits_the_rows_newest_first(gateway: Gateway) -> None:
    query = "{ me { shares(first: 2) { sharedAt } likes(first: 1) { videoId } follows(first: 1) { creatorId } } }"

    data = answer(await gateway.graphql(query, principal=Principal(PrincipalKind.USER, SHARER)))

    assert data == {"me": {"shares": [{"sharedAt": iso(14, 7)}, {"sharedAt": iso(13, 11, 30)}], "likes": [], "follows": [{"creatorId": BO}]}}


ME_DENIED = [
    ("Query.me", "me"),
    ("Me.id", "me.id"),
    ("Me.shares", "me.shares"),
    *[(f"MyShare.{field}", f"me.shares.{field}") for field in ("videoId", "channel", "sharedAt")],
    ("Me.likes", "me.likes"),
    *[(f"MyLike.{field}", f"me.likes.{field}") for field in ("videoId", "likedAt")],
    ("Me.follows", "me.follows"),
    *[(f"MyFollow.{field}", f"me.follows.{field}") for field in ("creatorId", "followedAt")],
]


@pytest.mark.parametrize(
    "principal",
    [
        pytest.param(ANONYMOUS, id="anonymous"),
        pytest.param(SERVICE, id="service"),
        pytest.param(Principal(PrincipalKind.COMPLIANCE, "auditor"), id="compliance"),
    ],
)
async def test_me_needs_a_user(gateway: Gateway, principal: Principal) -> None:
    response = await gateway.graphql(ME_QUERY, principal=principal)

    # The policy refuses before `me` runs, so anonymous gets FORBIDDEN here, not the resolver's UNAUTHENTICATED.
    assert denied_by_policy(response, principal) == denied(*ME_DENIED)
    assert [error["message"] for error in response.json()["errors"]] == [
        f"{coordinate} is not allowed for {principal.kind.value}" for coordinate, _ in ME_DENIED
    ]
