"""Whole answers kept (gateway.graphql.responses), over HTTP under the shipped policy: a kept answer
is served only while nothing it was made from can have changed, activity not yet released drops
nothing, and no answer is kept that must be made anew (a principal's own rows, an app's noise)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from graphql import GraphQLObjectType

from gateway.auth import ANONYMOUS, Principal, PrincipalKind, create_app_token
from gateway.clock import to_minute
from gateway.graphql.policy_guard import BASELINE_TERMS
from gateway.graphql.responses import KEPT_COORDINATES, MAX_KEY_BYTES, ResponseCache, answer_digest, answer_minute
from gateway.graphql.schema import build_schema
from gateway.ingest.events import Window
from gateway.ingest.ndjson import parse_objects
from gateway.privacy.terms import PrivacyTerms
from gateway.store.apps import authorize_app, register_app, revoke_app

from harness import APP_SECRET, Gateway, policies_with, running_gateway, statements_on

CREATOR = "creator-kept"
VIDEO = "video-kept-1"
OWNER = Principal(PrincipalKind.USER, CREATOR)
STRANGER = Principal(PrincipalKind.USER, "user-stranger")
SHARER = Principal(PrincipalKind.USER, "sharer-00")
APP = Principal(PrincipalKind.APP, CREATOR, frozenset({"insights"}), app_id="app-kept")
# Noon of a day: the owner's cutoff (the last closed hour, less an hour) and the public's (the last day) are final.
NOW = to_minute(datetime.now(UTC)).replace(hour=12, minute=0) - timedelta(days=1)
PAST = NOW - timedelta(days=3)

DASHBOARD = """query($id: ID!) { video(id: $id) { id stats { views shares } shareChannels { buckets { key count suppressed } } } }"""
PUBLIC = """query($id: ID!) { video(id: $id) { stats { views shares } } }"""
VIDEOS = """query($id: ID!) { creator(id: $id) { videos(first: 50) { edges { node { id } } } } }"""
MY_SHARES = "{ me { shares { videoId channel } } }"


def at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def published(video: str, moment: datetime) -> dict[str, Any]:
    return {"event_id": f"{video}-pub", "type": "video_published", "occurred_at": at(moment), "video_id": video, "creator_id": CREATOR, "actor_id": CREATOR}


def shares(people: list[str], moment: datetime, video: str = VIDEO) -> list[dict[str, Any]]:
    return [
        {"event_id": f"{video}-share-{person}-{moment:%j%H%M}", "type": "share", "occurred_at": at(moment), "video_id": video,
         "creator_id": CREATOR, "actor_id": person, "channel": "whatsapp"}
        for person in people
    ]


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url) as started:
        with started.clock.at(NOW):
            await started.backfill([published(VIDEO, PAST), *shares([f"sharer-{n:02d}" for n in range(12)], PAST + timedelta(hours=1))])
        yield started


async def ask(gateway: Gateway, query: str, variables: dict[str, Any] | None = None, principal: Principal = ANONYMOUS) -> tuple[dict[str, Any], list[str]]:
    """The answer, and the statements the reader pool was sent for it."""
    async with statements_on(gateway.store.reader) as sent:
        response = await gateway.graphql(query, variables, principal=principal)
    assert response.status_code == 200, response.text
    return response.json(), sent


async def test_activity_not_yet_released_drops_no_kept_answer(gateway: Gateway) -> None:
    with gateway.clock.at(NOW):
        first, _ = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)
        await gateway.ingest(shares(["pending-1", "pending-2"], NOW))  # fewer than k: no release
        again, sent = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)

    assert first["data"]["video"]["stats"]["shares"] == 12
    assert again == first
    assert sent == ["SELECT version, history_epoch FROM catalog_version"]  # the answer kept: as cheap, so as fast, as before


async def test_a_release_is_served_once_the_principal_may_see_it(gateway: Gateway) -> None:
    arrived = NOW + timedelta(minutes=5)
    with gateway.clock.at(arrived):
        before, _ = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)
        await gateway.ingest(shares([f"joiner-{n}" for n in range(5)], arrived))
        same_minute, _ = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)
    with gateway.clock.at(arrived + timedelta(hours=2)):
        later, _ = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)

    assert same_minute == before  # made after the owner's cutoff: not theirs to see yet, kept or not
    assert later["data"]["video"]["stats"]["shares"] > before["data"]["video"]["stats"]["shares"]


async def test_a_published_video_is_listed_in_the_same_minute(gateway: Gateway, admin: asyncpg.Connection) -> None:
    moment = NOW + timedelta(minutes=20)
    with gateway.clock.at(moment):
        listed, _ = await ask(gateway, VIDEOS, {"id": CREATOR})
        await gateway.ingest([published("video-kept-2", moment)])
        relisted, _ = await ask(gateway, VIDEOS, {"id": CREATOR})

    ids = [edge["node"]["id"] for edge in relisted["data"]["creator"]["videos"]["edges"]]
    assert [edge["node"]["id"] for edge in listed["data"]["creator"]["videos"]["edges"]] == [VIDEO]
    assert ids == ["video-kept-2", VIDEO]


async def test_the_catalogue_version_moves_with_published_videos_only(gateway: Gateway, admin: asyncpg.Connection) -> None:
    moment = NOW + timedelta(minutes=30)
    version = await admin.fetchval("SELECT version FROM catalog_version")
    with gateway.clock.at(moment):
        # A view of a video not published yet records the video; that must not show anywhere.
        await gateway.ingest([{"event_id": "early-view", "type": "view", "occurred_at": at(moment), "video_id": "video-kept-3",
                               "creator_id": CREATOR, "actor_id": "early-viewer", "watch_ms": 1000}])
        unmoved = await admin.fetchval("SELECT version FROM catalog_version")
        await gateway.ingest([published("video-kept-3", moment)])
    assert unmoved == version
    assert await admin.fetchval("SELECT version FROM catalog_version") > version


async def test_a_principals_own_rows_are_read_anew(gateway: Gateway) -> None:
    moment = NOW + timedelta(minutes=40)
    with gateway.clock.at(moment):
        mine, _ = await ask(gateway, MY_SHARES, principal=SHARER)
        await gateway.ingest(shares(["sharer-00"], moment, video="video-kept-2"))
        again, _ = await ask(gateway, MY_SHARES, principal=SHARER)

    assert len(again["data"]["me"]["shares"]) == len(mine["data"]["me"]["shares"]) + 1


async def test_an_owners_kept_answer_is_not_anyone_elses(gateway: Gateway) -> None:
    with gateway.clock.at(NOW + timedelta(minutes=50)):
        owners, _ = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)
        strangers, _ = await ask(gateway, DASHBOARD, {"id": VIDEO}, STRANGER)

    assert owners["data"]["video"]["shareChannels"] is not None
    assert strangers["data"]["video"]["shareChannels"] is None
    assert [error["extensions"]["code"] for error in strangers["errors"]] == ["FORBIDDEN"]


async def test_a_kept_answer_lasts_until_the_askers_own_minute_turns(gateway: Gateway) -> None:
    start = answer_minute(NOW + timedelta(minutes=45), OWNER, BASELINE_TERMS)
    assert start.second == 26  # the owner's minutes begin at :26, so the clock's :00 falls within the one asked in
    gateway.forget_kept_answers()
    with gateway.clock.at(start):
        made, _ = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)
    with gateway.clock.at(start + timedelta(seconds=59, microseconds=999_999)):
        kept, read_for_kept = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)
    with gateway.clock.at(start + timedelta(minutes=1)):
        anew, read_anew = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)

    assert made == kept == anew
    assert read_for_kept == ["SELECT version, history_epoch FROM catalog_version"]
    assert len(read_anew) > 1, "its minute turned: made anew"


async def test_an_apps_answers_are_made_anew(gateway: Gateway) -> None:
    responses = gateway.state["responses"]
    responses.clear()
    with gateway.clock.at(NOW + timedelta(minutes=55)):
        for query in (PUBLIC, DASHBOARD):
            answer, _ = await ask(gateway, query, {"id": VIDEO}, APP)
            assert "errors" not in answer, answer
    assert len(responses) == 0  # every draw is charged, every time


async def test_a_backfill_still_replaying_reaches_answers_kept_before_it_ends(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """Asked while a backfill is part-way through (its first hour applied, the next held back by a
    row lock), then after it finished: the second answer counts every hour, although the first
    was made from releases before a cutoff already final."""
    video = "video-kept-backfilled"
    hours = [PAST + timedelta(hours=n) for n in range(3)]
    events = [published(video, PAST), *(event for n, hour in enumerate(hours) for event in shares([f"filler-{n}-{i}" for i in range(5)], hour, video))]
    first_applied = asyncio.Event()

    def progress(done: int, total: int) -> None:
        if done == 1:
            first_applied.set()

    with gateway.clock.at(NOW + timedelta(minutes=58)):
        batch = parse_objects(events, window=Window(gateway.clock(), gateway.state["settings"].lateness), backfill=True)
        await gateway.writer.hold(batch.records)
        async with admin.transaction():
            await admin.execute(
                "SELECT FROM arrivals_pending WHERE video_id = $1 AND arrival > (SELECT min(arrival) FROM arrivals_pending) FOR UPDATE", video
            )
            replaying = asyncio.create_task(gateway.writer.replay(progress))
            await first_applied.wait()
            part_way, _ = await ask(gateway, PUBLIC, {"id": video}, OWNER)
        await replaying
        finished, _ = await ask(gateway, PUBLIC, {"id": video}, OWNER)

    assert part_way["data"]["video"]["stats"]["shares"] == 5
    assert finished["data"]["video"]["stats"]["shares"] == 15


def test_kept_answers_stay_within_their_bytes() -> None:
    cache = ResponseCache(max_bytes=40_000)
    for number in range(100):
        digest = answer_digest("{ a }", None, {"n": number}, BASELINE_TERMS, frozenset(), "r", (0, 0))
        assert digest is not None
        cache.put(ANONYMOUS, NOW, digest, b"x" * 500)
    assert cache.bytes <= cache.max_principal_bytes == 10_000  # one principal: a quarter of the cache
    assert cache.get(ANONYMOUS, NOW, digest) == b"x" * 500
    assert cache.get(ANONYMOUS, NOW + timedelta(minutes=1), digest) is None  # another minute: made anew


def test_no_principal_evicts_anothers_answers() -> None:
    """Four clients filling their shares, then a fifth: the owner's answer stays, the flooders'
    last answers are the ones not kept, and the owner's next answer is not kept either rather than
    evicting anyone's (an eviction would be an observable trace of another's request)."""
    cache = ResponseCache(max_bytes=40_000)
    owners = answer_digest("{ dashboard }", None, None, BASELINE_TERMS, frozenset({"Video.shareChannels"}), "r", (0, 0))
    assert owners is not None
    cache.put(OWNER, NOW, owners, b"o" * 1_000)
    flooders = [ANONYMOUS, STRANGER, SHARER, APP]
    for flooder in flooders:
        for number in range(1_000):
            cache.put(flooder, NOW, number.to_bytes(32, "big"), b"a" * 1_000)
    kept_by = {flooder: [cache.get(flooder, NOW, number.to_bytes(32, "big")) is not None for number in range(1_000)] for flooder in flooders}

    cache.put(OWNER, NOW, b"n" * 32, b"o" * 1_000)

    assert cache.get(OWNER, NOW, owners) == b"o" * 1_000
    assert cache.bytes <= cache.max_bytes
    assert {flooder: [cache.get(flooder, NOW, number.to_bytes(32, "big")) is not None for number in range(1_000)] for flooder in flooders} == kept_by


def test_a_principals_new_minute_drops_its_last_ones_answers_and_no_one_elses() -> None:
    cache = ResponseCache(max_bytes=40_000)
    cache.put(ANONYMOUS, NOW, b"q" * 32, b"{}")
    cache.put(OWNER, NOW + timedelta(seconds=17), b"r" * 32, b"{}")
    cache.put(ANONYMOUS, NOW + timedelta(minutes=1), b"s" * 32, b"{}")

    assert cache.get(ANONYMOUS, NOW, b"q" * 32) is None
    assert cache.get(ANONYMOUS, NOW + timedelta(minutes=1), b"s" * 32) == b"{}"
    assert cache.get(OWNER, NOW + timedelta(seconds=17), b"r" * 32) == b"{}", "another principal's minute has not turned"
    cache.put(ANONYMOUS, NOW, b"q" * 32, b"{}")  # a request of the minute gone keeps nothing
    assert len(cache) == 2


def test_a_full_cache_makes_room_from_principals_whose_minute_has_passed_only() -> None:
    """Five principals of 8 answers each (a quarter of the cache is 8 of these): the last ones to
    ask find it full, and room is made by dropping the answers of the one whose minute has ended,
    not of the one whose minute began 50 s before theirs."""
    cache = ResponseCache(max_bytes=40_000)
    gone, current = Principal(PrincipalKind.USER, "gone"), Principal(PrincipalKind.USER, "current")
    minutes = {gone: NOW, current: NOW + timedelta(seconds=50), STRANGER: NOW + timedelta(minutes=1), SHARER: NOW + timedelta(minutes=1),
               OWNER: NOW + timedelta(minutes=1, seconds=10)}
    for principal, minute in minutes.items():
        for number in range(8):
            cache.put(principal, minute, number.to_bytes(32, "big"), b"a" * 1_000)

    kept = {principal: sum(cache.get(principal, minute, number.to_bytes(32, "big")) is not None for number in range(8)) for principal, minute in minutes.items()}
    assert kept == {gone: 0, current: 8, STRANGER: 8, SHARER: 8, OWNER: 8}
    assert cache.bytes <= cache.max_bytes


def test_each_principal_is_answered_at_its_own_minute() -> None:
    """The minutes of many principals turn at seconds spread over the minute, each always at the
    same second; an answer with noise or a budget turns at :00."""
    arrived = NOW + timedelta(minutes=3, seconds=25, microseconds=5)
    users = [Principal(PrincipalKind.USER, f"user-{n}") for n in range(300)]
    minutes = [answer_minute(arrived, user, BASELINE_TERMS) for user in users]
    noised = PrivacyTerms.parse({"k_threshold": 50, "granularity_floor": "DAY", "bucket_delay_seconds": 0, "epsilon": {"shares": 0.5}})
    budgeted = PrivacyTerms.parse({"k_threshold": 50, "granularity_floor": "DAY", "bucket_delay_seconds": 0, "epsilon_budget_per_day": 3})

    assert all(minute <= arrived < minute + timedelta(minutes=1) and minute.microsecond == 0 for minute in minutes)
    assert len({minute.second for minute in minutes}) >= 50
    assert [answer_minute(arrived + timedelta(minutes=7), user, BASELINE_TERMS) for user in users] == [minute + timedelta(minutes=7) for minute in minutes]
    assert answer_minute(arrived, APP, noised) == answer_minute(arrived, OWNER, budgeted) == to_minute(arrived)


def test_what_is_not_kept() -> None:
    noised = PrivacyTerms.parse({"k_threshold": 50, "granularity_floor": "DAY", "bucket_delay_seconds": 0, "epsilon": {"shares": 0.5}})
    assert answer_digest("{ a }", None, None, noised, frozenset(), "r", (0, 0)) is None
    assert answer_digest("{ a }", None, {"pad": "x" * MAX_KEY_BYTES}, BASELINE_TERMS, frozenset(), "r", (0, 0)) is None
    assert answer_digest("{ a }", None, {"pad": "😀" * (MAX_KEY_BYTES // 3)}, BASELINE_TERMS, frozenset(), "r", (0, 0)) is None  # bytes, not characters
    assert ResponseCache(max_bytes=0).enabled is False


async def test_a_timeline_beyond_the_cutoff_reads_no_release(gateway: Gateway) -> None:
    """`from` after the owner's cutoff: no bucket has closed, and no release made after the cutoff
    is read (not even as the count a first bucket would start from)."""
    query = 'query($id: ID!, $from: DateTime!) { video(id: $id) { shareTimeline(granularity: HOUR, from: $from) { from to buckets { start } } } }'
    gateway.forget_kept_answers()
    with gateway.clock.at(NOW):
        answer, sent = await ask(gateway, query, {"id": VIDEO, "from": at(NOW - timedelta(minutes=30))}, OWNER)

    assert answer["data"]["video"]["shareTimeline"]["buckets"] == []
    assert not [statement for statement in sent if "FROM releases" in statement], sent


async def test_concurrent_questions_about_different_ids_each_get_their_own_answer(gateway: Gateway) -> None:
    """Many clients at once, each asking about a different video (all but one unknown), while
    activity arrives: every unknown id is NOT_FOUND and the known one is answered, however the
    single-flight decisions, kept answers and release reads interleave (a red-team load once saw
    two unknown ids answered without an error; this pins what must hold)."""
    query = "query($id: ID!) { video(id: $id) { id stats { views } } }"
    ids = [VIDEO if n % 50 == 0 else f"video-unknown-{n}" for n in range(400)]

    async def arriving() -> None:
        for batch in range(10):
            await gateway.ingest([
                {"event_id": f"concurrent-view-{batch}-{n}", "type": "view", "occurred_at": at(gateway.clock()), "video_id": VIDEO,
                 "creator_id": CREATOR, "actor_id": f"viewer-c{batch}-{n}", "watch_ms": 1000}
                for n in range(5)
            ])

    answers, _ = await asyncio.gather(
        asyncio.gather(*(gateway.graphql(query, {"id": video}) for video in ids)), arriving()
    )

    for video, answer in zip(ids, answers, strict=True):
        body = answer.json()
        if video == VIDEO:
            assert "errors" not in body and body["data"]["video"]["id"] == VIDEO, body
        else:
            assert body["data"] == {"video": None} and [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"], (video, body)


# -- what is kept, and what still decides a request that has a kept answer ------------------------


def counts(gateway: Gateway) -> tuple[int, int]:
    """Answers served kept, and looked for but made anew, so far."""
    responses: ResponseCache = gateway.state["responses"]
    return responses.hits, responses.misses


async def test_a_repeated_dashboard_is_served_kept_within_its_minute(gateway: Gateway) -> None:
    moment = NOW + timedelta(hours=1, minutes=2)
    gateway.forget_kept_answers()
    with gateway.clock.at(moment):
        first, _ = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)
        before = counts(gateway)
        again, sent = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)
        after = counts(gateway)
    with gateway.clock.at(moment + timedelta(minutes=1)):
        next_minute, _ = await ask(gateway, DASHBOARD, {"id": VIDEO}, OWNER)

    assert again == first and after == (before[0] + 1, before[1])
    assert sent == ["SELECT version, history_epoch FROM catalog_version"]
    assert next_minute == first and counts(gateway) == (after[0], after[1] + 1)  # the cutoffs may have moved: made anew


async def test_principals_never_share_a_kept_answer(gateway: Gateway) -> None:
    """The same document and variables asked by the public, the owner, another owner and a
    stranger: each is made for who asks (the first of each a miss), then kept for that one only."""
    other_owner = Principal(PrincipalKind.USER, "creator-other")
    gateway.forget_kept_answers()
    with gateway.clock.at(NOW + timedelta(hours=1, minutes=10)):
        for principal in (ANONYMOUS, OWNER, other_owner, STRANGER):
            hits, misses = counts(gateway)
            await ask(gateway, PUBLIC, {"id": VIDEO}, principal)
            assert counts(gateway) == (hits, misses + 1), principal
        for principal in (ANONYMOUS, OWNER, other_owner, STRANGER):
            hits, misses = counts(gateway)
            await ask(gateway, PUBLIC, {"id": VIDEO}, principal)
            assert counts(gateway) == (hits + 1, misses), principal


async def test_a_mutation_is_never_kept(gateway: Gateway) -> None:
    mutation = "mutation($on: Boolean!) { setShareSettings(anonymous: $on) { anonymousShares } }"
    responses: ResponseCache = gateway.state["responses"]
    with gateway.clock.at(NOW + timedelta(hours=1, minutes=20)):
        kept, looked_up = len(responses), counts(gateway)
        answers = [(await ask(gateway, mutation, {"on": on}, SHARER))[0] for on in (True, False, True)]

    assert [answer["data"]["setShareSettings"]["anonymousShares"] for answer in answers] == [True, False, True]
    assert len(responses) == kept and counts(gateway) == looked_up


async def test_fields_not_listed_as_kept_are_made_anew(gateway: Gateway) -> None:
    """`consentedSharers` reads consent rows a sharer may withdraw at any moment: not listed, so
    the dashboard that asks for it is not even looked for among kept answers."""
    query = "query($id: ID!) { video(id: $id) { stats { shares } consentedSharers } }"
    with gateway.clock.at(NOW + timedelta(hours=1, minutes=25)):
        looked_up = counts(gateway)
        for _ in range(2):
            await ask(gateway, query, {"id": VIDEO}, OWNER)

    assert counts(gateway) == looked_up


def test_every_kept_coordinate_is_the_schemas_and_none_is_private() -> None:
    schema = build_schema()._schema
    coordinates = {
        f"{name}.{field}"
        for name, type_ in schema.type_map.items()
        if isinstance(type_, GraphQLObjectType) and not name.startswith("__")
        for field in (*type_.fields, "__typename")
    }
    assert KEPT_COORDINATES <= coordinates, KEPT_COORDINATES - coordinates
    assert not {"Query.me", "Query.decisionLog", "Video.consentedSharers"} & KEPT_COORDINATES
    assert not {coordinate for coordinate in KEPT_COORDINATES if coordinate.startswith(("Mutation.", "Me.", "PolicyDecision"))}


async def test_a_policy_reload_drops_kept_answers_within_the_minute(database_url: str, tmp_path: Path) -> None:
    """Kept under one revision, asked again in the same minute after a reload: made anew, under the
    new policy's terms (a k larger than anyone who shared: no release crossed a multiple of it)."""
    policies = policies_with(tmp_path / "policies", {})
    async with running_gateway(database_url, policy_dir=policies) as reloading:
        with reloading.clock.at(NOW + timedelta(hours=2)):
            first, _ = await ask(reloading, PUBLIC, {"id": VIDEO}, OWNER)
            await ask(reloading, PUBLIC, {"id": VIDEO}, OWNER)
            kept = counts(reloading)
            policies_with(policies, {"k_threshold": 1000})
            await reloading.policy_in_force()
            reloaded, _ = await ask(reloading, PUBLIC, {"id": VIDEO}, OWNER)

            (policies / "gateway" / "reload_marker.rego").write_text("package gateway.reload_marker\n\nmarker := true\n")
            await reloading.policy_in_force()  # a revision that decides alike: still not served from before it
            hits, misses = counts(reloading)
            await ask(reloading, PUBLIC, {"id": VIDEO}, OWNER)

    assert kept[0] == 1
    assert first["data"]["video"]["stats"]["shares"] >= 12
    assert reloaded["data"]["video"]["stats"]["shares"] == 0
    assert counts(reloading) == (hits, misses + 1)


async def test_the_rate_limit_counts_requests_answered_kept(database_url: str, tmp_path: Path) -> None:
    policies = policies_with(tmp_path / "policies", {"rate_limit": {"requests_per_minute": 3}})
    async with running_gateway(database_url, policy_dir=policies) as limited:
        with limited.clock.at(NOW + timedelta(hours=2, minutes=5)):
            responses = [await limited.graphql(PUBLIC, {"id": VIDEO}, principal=OWNER) for _ in range(4)]
            hits = counts(limited)[0]

    assert [response.status_code for response in responses] == [200, 200, 200, 429]
    assert hits == 2
    assert responses[3].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_revoked_grant_is_refused_although_its_answer_is_kept(database_url: str, admin: asyncpg.Connection, tmp_path: Path) -> None:
    """An app the policy gives no noise (so its answers are kept): once the user revokes it, the
    token is refused before any kept answer is looked for."""
    policies = policies_with(tmp_path / "policies", {"epsilon": {}, "epsilon_budget_per_day": None})
    app_id = await register_app(admin, "Kept Answers")
    generation = await authorize_app(admin, app_id, CREATOR, ["insights"])
    token = create_app_token(APP_SECRET, app_id, CREATOR, ["insights"], ttl_seconds=300, generation=generation)
    body = {"query": PUBLIC, "variables": {"id": VIDEO}}
    async with running_gateway(database_url, policy_dir=policies, app_grant_ttl=0) as granted:
        with granted.clock.at(NOW + timedelta(hours=2, minutes=10)):
            answers = [await granted.http.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"}) for _ in range(2)]
            kept = counts(granted)
            await revoke_app(admin, app_id, CREATOR)
            refused = await granted.http.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})

    assert [answer.status_code for answer in answers] == [200, 200] and answers[0].json() == answers[1].json()
    assert kept == (1, 1)
    assert refused.status_code == 401 and refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert counts(granted) == kept


async def test_a_noised_answer_is_never_looked_for_nor_kept(gateway: Gateway) -> None:
    with gateway.clock.at(NOW + timedelta(hours=2, minutes=15)):
        looked_up = counts(gateway)
        answers = [(await ask(gateway, PUBLIC, {"id": VIDEO}, APP))[0] for _ in range(2)]

    assert all("errors" not in answer for answer in answers), answers
    assert counts(gateway) == looked_up


INSIGHTS = """query($id: ID!, $creator: ID!) {
  video(id: $id) { stats { reach } commentSentiment { buckets { key count suppressed } } shareSurges { releasedAt factor sharesPerHour } }
  creator(id: $creator) { totals { reach } audienceActivity(timeZone: "Asia/Kolkata") { timeZone cells { dayOfWeek hour viewers suppressed } } }
}"""


async def test_the_insights_are_kept_like_the_dashboard(gateway: Gateway) -> None:
    """Issue 15's fields read releases through the privacy service (and the catalogue's durations),
    so the insights panel's repeated query is answered kept, with only the version read. (The video
    here has no duration: its retention is an error, and an answer with one is never kept.)"""
    moment = NOW + timedelta(hours=1, minutes=3)
    gateway.forget_kept_answers()
    with gateway.clock.at(moment):
        first, _ = await ask(gateway, INSIGHTS, {"id": VIDEO, "creator": CREATOR}, OWNER)
        before = counts(gateway)
        again, sent = await ask(gateway, INSIGHTS, {"id": VIDEO, "creator": CREATOR}, OWNER)

    assert "creator" in first["data"], first
    assert again == first and counts(gateway) == (before[0] + 1, before[1])
    assert sent == ["SELECT version, history_epoch FROM catalog_version"]
