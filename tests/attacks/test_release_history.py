"""The ten mechanisms of issue 10, tried as the attacks they were, against the release history.

Against the earlier design each answer was derived on request from occurrence-time buckets,
separately per principal, granularity and range; these attacks read one person's activity out of
it. Now every number is a value of one release history per (subject, metric), advanced by arrival
in releases of at least k people new to the metric, and principals differ only in which release
they see. Most tests are twin worlds that differ only in what the attacker wants to learn; the
history itself is read from the `releases` table to check that every served number is one of its
values. (Mechanism 8, noise per quantity, is in test_averaging.py.)

Times are fixed in 2031 (a Tuesday, April 8th, is day 0), whatever day the suite runs: the clock
is the test's, and events arrive as they happen (`Gateway.play`) or at the moment it shows.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.attacks.world import World, app_for, ask, battery, differences, iso, release_values, same_answers

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.ingest.events import AGE_BANDS
from gateway.privacy.metrics import CHANNELS
from gateway.privacy.release import Granularity, bucket_after
from harness import Gateway, authorization, statements_on

DAY0 = datetime(2031, 4, 8, tzinfo=UTC)
K = 5
STRANGER = Principal(PrincipalKind.USER, "stranger-signed-in")
SERVICE = Principal(PrincipalKind.SERVICE, "ingest-bot")
TOTALS = """query($video: ID!, $creator: ID!) { video(id: $video) { stats { views likes comments shares } }
    creator(id: $creator) { totals { views likes comments shares followers } } }"""
STATS_FIELDS = {"views": "v", "likes": "l", "comments": "c", "shares": "s"}


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment `day` days after day 0, at the given time of day."""
    return DAY0 + timedelta(days=day, hours=hour, minutes=minute)


def variables(world: World) -> dict[str, Any]:
    return {"video": world.video(), "creator": world.creator}


def engage(world: World, prefix: str, count: int, when: datetime) -> None:
    """`count` new people who each view, like, comment on and share the video, one every 20 seconds."""
    for i in range(count):
        person, moment = world.actor(f"{prefix}{i}"), when + timedelta(seconds=20 * i)
        world.view(person, moment, region="DE", age_band="25-34")
        world.like(person, moment + timedelta(seconds=2))
        world.comment(person, moment + timedelta(seconds=4), "nice")
        world.share(person, moment + timedelta(seconds=6), region="DE")


def buckets(body: dict[str, Any], *path: str) -> dict[str, int]:
    """A timeline of an answer, by `path` from `data`, as bucket start → count (no bucket may be suppressed)."""
    node: Any = body["data"]
    for key in path:
        node = node[key]
    assert not any(bucket["suppressed"] for bucket in node["buckets"]), path
    return {bucket["start"]: bucket["count"] for bucket in node["buckets"]}


def nonzero(timeline: dict[str, int]) -> dict[str, int]:
    return {start: count for start, count in timeline.items() if count}


async def post_events(gateway: Gateway, events: list[dict[str, Any]]) -> httpx.Response:
    """POST /events as the platform's ingest service, at the moment the gateway's clock shows."""
    body = b"".join(json.dumps(event).encode() + b"\n" for event in events)
    headers = {"Content-Type": "application/x-ndjson", **authorization(SERVICE)}
    return await gateway.http.post("/events", content=body, headers=headers)


# 1. Principals on different schedules --------------------------------------------------------


async def test_principals_totals_differ_by_whole_releases(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """Mechanism 1: the public's totals stepped over days, a user's over hours, an app's over days
    with k = 50, so the public's `stats.shares` minus a signed-in stranger's was one person's share
    (likewise views, likes, comments and `Creator.totals`). Now, at every moment, every total served
    to the public, a stranger, the owner and the owner's app is the count of some release of the
    history (or 0), any two differ by 0 or by a release of at least k new people, and the answers
    are the same whether or not one more person viewed, liked, commented on and shared the video
    in the morning."""
    moments = [at(-2, 12), at(0, 9, 30), at(0, 10, 30), at(0, 11, 30), at(0, 13, 30), at(1, 2), at(1, 12, 30)]
    worlds = []
    for name, victim in (("schedules-victim", True), ("schedules-none", False)):
        world = World(name)
        world.publish(at(-5, 8))
        engage(world, "crowd", 52, at(-2, 10))  # 52 people: a release the app (k = 50) sees as well
        engage(world, "morning", 6, at(0, 9))  # 6 more: a release users see an hour after the hour
        if victim:
            engage(world, "victim", 1, at(0, 11, 15))  # alone: no release
        with gateway.clock.at(moments[-1]):
            await gateway.play(world.take())
        worlds.append(world)
    shares_seen = {}
    for moment in moments:
        answers: dict[str, list[tuple[World, dict[str, Any]]]] = {}
        with gateway.clock.at(moment):
            for world in worlds:
                for name, principal in principals_of(world).items():
                    answers.setdefault(name, []).append((world, await ask(gateway, TOTALS, variables(world), principal)))
        for name, pair in answers.items():
            assert same_answers(pair), (moment, name, differences(*pair))
        shares_seen[moment] = {name: pair[0][1]["data"]["video"]["stats"]["shares"] for name, pair in answers.items()}
        for world_index, world in enumerate(worlds):
            served = [pair[world_index][1]["data"] for pair in answers.values()]
            for field, metric in STATS_FIELDS.items():
                history = {0: 0, **await release_values(admin, world.video(), metric)}
                for data in served:
                    assert data["video"]["stats"][field] in history, (moment, field, data, history)
                    assert data["creator"]["totals"][field] == data["video"]["stats"][field], (moment, field)
                    assert data["creator"]["totals"]["followers"] == 0
                people = sorted({history[data["video"]["stats"][field]] for data in served})
                assert all(later - earlier >= K for earlier, later in itertools.pairwise(people)), (moment, field, people)
    # Hand-counted, at 13:30 on day 0: users see the morning's release, the public and the app not yet;
    # after the day boundary the public does, and the app (which sees multiples of 50) still not.
    assert shares_seen[at(0, 13, 30)] == {"public": 52, "stranger": 58, "owner": 58, "app": 52}
    assert shares_seen[at(1, 2)] == {"public": 58, "stranger": 58, "owner": 58, "app": 52}


def principals_of(world: World) -> dict[str, Principal]:
    """Who asks about a world's video: the public, a signed-in stranger, its owner, the owner's app."""
    return {"public": ANONYMOUS, "stranger": STRANGER, "owner": world.owner, "app": app_for(world.creator, "app-of-the-owner")}


# 2, 3. Complements and linked granularities around a lone share --------------------------------

LONE_DAY = datetime(2031, 3, 31, 14, 10, tzinfo=UTC)  # a Monday, the last day of March
JOINED_HOUR = datetime(2031, 4, 2, 10, tzinfo=UTC)  # a Wednesday: four more sharers arrive


async def lone_share_twins(gateway: Gateway, name: str, until: datetime) -> list[World]:
    """Twin worlds: ten people share a video on March 27th; four more on April 2nd, and the victim
    either alone on March 31st or with the four. Either way the history has two releases: ten
    sharers, then five (the victim among them, in the hour the four arrived)."""
    worlds = []
    for alone in (True, False):
        world = World(f"{name}-{'alone' if alone else 'joined'}")
        world.publish(datetime(2031, 3, 20, 8, tzinfo=UTC))
        world.crowd("early", 10, datetime(2031, 3, 27, 10, tzinfo=UTC), shares=True)
        victim, when = world.actor("victim"), LONE_DAY if alone else JOINED_HOUR + timedelta(minutes=40)
        world.view(victim, when - timedelta(minutes=1), region="DE", age_band="25-34")
        world.share(victim, when, region="DE")
        world.crowd("joined", 4, JOINED_HOUR, shares=True)
        with gateway.clock.at(until):
            await gateway.play(world.take())
        worlds.append(world)
    return worlds


async def test_timeline_total_less_its_buckets_is_whole_releases(gateway: Gateway) -> None:
    """Mechanism 2: the complement of a suppressed bucket was chosen over the video's whole life, so
    it could fall after the release point: the total less the visible buckets then isolated a lone
    sharer's day. Now no bucket is suppressed, every bucket is a sum of whole releases, and the
    total less a whole-life timeline is the releases made since the timeline's last closed bucket:
    0 or the release of five, never one share. The owner's answers are the same whether the victim
    shared alone on March 31st or with the others on April 2nd."""
    query = """query($video: ID!, $from: DateTime!) { video(id: $video) { stats { shares }
        days: shareTimeline(granularity: DAY, from: $from) { buckets { start count suppressed } }
        hours: shareTimeline(granularity: HOUR) { buckets { start count suppressed } } } }"""
    remainders = {
        datetime(2031, 3, 31, 16, 30, tzinfo=UTC): 0,
        datetime(2031, 4, 1, 9, tzinfo=UTC): 0,
        datetime(2031, 4, 2, 12, 30, tzinfo=UTC): 5,  # the release of five, made today: not in a closed day
        datetime(2031, 4, 3, 9, tzinfo=UTC): 0,
    }
    worlds = await lone_share_twins(gateway, "complement", max(remainders))
    for moment, remainder in remainders.items():
        with gateway.clock.at(moment):
            pair = [(world, await ask(gateway, query, {"video": world.video(), "from": "2031-03-20T00:00:00Z"}, world.owner)) for world in worlds]
        assert same_answers(pair), (moment, differences(*pair))
        body = pair[0][1]
        days = buckets(body, "video", "days")
        assert body["data"]["video"]["stats"]["shares"] - sum(days.values()) == remainder, moment
        assert days.get(LONE_DAY.replace(hour=0, minute=0).isoformat(), 0) == 0
        assert set(nonzero(buckets(body, "video", "hours")).values()) <= {10, 5}, moment


async def test_week_and_month_buckets_never_solve_for_a_day(gateway: Gateway) -> None:
    """Mechanism 3: a month less its visible days isolated one suppressed day, then the week
    straddling the month's end isolated the next. Now every week and month bucket is the sum of its
    days (all counted by release, none suppressed), so no combination of them says more than the
    days do, and the days show the victim's share only in the release that brought it: the answers
    are the same whether the victim shared alone on Monday March 31st or with others on April 2nd."""
    query = """query($video: ID!) { video(id: $video) {
        days: shareTimeline(granularity: DAY, from: "2031-02-01T00:00:00Z") { buckets { start count suppressed } }
        weeks: shareTimeline(granularity: WEEK, from: "2031-02-03T00:00:00Z") { buckets { start count suppressed } }
        months: shareTimeline(granularity: MONTH, from: "2031-02-01T00:00:00Z") { buckets { start count suppressed } } } }"""
    now = datetime(2031, 5, 2, 12, tzinfo=UTC)
    worlds = await lone_share_twins(gateway, "linked", now)
    with gateway.clock.at(now):
        pair = [(world, await ask(gateway, query, {"video": world.video()}, world.owner)) for world in worlds]
    assert same_answers(pair), differences(*pair)
    body = pair[0][1]
    days = {datetime.fromisoformat(start): count for start, count in buckets(body, "video", "days").items()}
    for group, granularity in (("weeks", Granularity.WEEK), ("months", Granularity.MONTH)):
        for start, count in buckets(body, "video", group).items():
            first = datetime.fromisoformat(start)
            assert count == sum(n for day, n in days.items() if first <= day < bucket_after(first, granularity)), (group, start)
    assert nonzero(buckets(body, "video", "days")) == {"2031-03-27T00:00:00+00:00": 10, "2031-04-02T00:00:00+00:00": 5}
    assert nonzero(buckets(body, "video", "weeks")) == {"2031-03-24T00:00:00+00:00": 10, "2031-03-31T00:00:00+00:00": 5}
    assert nonzero(buckets(body, "video", "months")) == {"2031-03-01T00:00:00+00:00": 10, "2031-04-01T00:00:00+00:00": 5}


# 4. The video's earliest activity ---------------------------------------------------------------


async def test_buckets_do_not_depend_on_the_earliest_activity(gateway: Gateway) -> None:
    """Mechanism 4: which bucket was suppressed depended on the video's earliest activity of any
    kind, so one view weeks earlier flipped a share week from served to suppressed. Now twin worlds
    with and without one early view get the same share answers at every granularity, and their
    view timelines count in the same buckets (the early viewer joins the first release of views)."""
    share_timelines = "".join(
        f"shares{g}: shareTimeline(granularity: {g}{args}) {{ buckets {{ start count suppressed }} }}\n"
        for g, args in (("HOUR", ', from: "2031-03-24T00:00:00Z", to: "2031-04-08T00:00:00Z"'), ("DAY", ""), ("WEEK", ""), ("MONTH", ""))
    )
    query = f"""query($video: ID!) {{ video(id: $video) {{ stats {{ shares }} shareChannels {{ buckets {{ key count suppressed }} }}
        {share_timelines}
        viewsDAY: viewTimeline(granularity: DAY) {{ buckets {{ start count suppressed }} }}
        viewsWEEK: viewTimeline(granularity: WEEK) {{ buckets {{ start count suppressed }} }} }} }}"""
    now = datetime(2031, 4, 10, 12, tzinfo=UTC)
    answers = []
    for early in (True, False):
        world = World(f"earliest-{early}")
        world.publish(datetime(2031, 3, 1, 8, tzinfo=UTC))
        if early:
            world.view(world.actor("early"), datetime(2031, 3, 3, 12, tzinfo=UTC), region="DE", age_band="25-34")
        world.crowd("first", 6, datetime(2031, 3, 26, 10, tzinfo=UTC), shares=True)
        world.crowd("second", 5, datetime(2031, 3, 31, 10, tzinfo=UTC), shares=True, channel="x")
        world.crowd("third", 5, datetime(2031, 4, 3, 15, tzinfo=UTC), shares=True)
        with gateway.clock.at(now):
            await gateway.play(world.take())
            body = await ask(gateway, query, {"video": world.video()}, world.owner)
        views = {name: body["data"]["video"].pop(name) for name in ("viewsDAY", "viewsWEEK")}
        answers.append((world, body, views))
    assert same_answers([(world, body) for world, body, _ in answers]), differences(*[(world, body) for world, body, _ in answers])
    for name in ("viewsDAY", "viewsWEEK"):
        with_early, without = (nonzero(buckets({"data": views}, name)) for _, _, views in answers)
        assert with_early.keys() == without.keys(), name
        assert sum(with_early.values()) == sum(without.values()) + 1, name
    assert nonzero(buckets(answers[0][1], "video", "sharesWEEK")) == {"2031-03-24T00:00:00+00:00": 6, "2031-03-31T00:00:00+00:00": 10}


# 5. Followers count people ----------------------------------------------------------------------


def puppet_flips(world: World, first_day: int) -> None:
    """A sock puppet follows the creator, unfollows the next day, and so on: five days, ending followed."""
    puppet = world.actor("puppet")
    for day in range(5):
        world.follow(puppet, at(first_day + day, 11), following=day % 2 == 0)


FOLLOWERS = """query($creator: ID!) { creator(id: $creator) { totals { followers }
    days: followerGrowth(granularity: DAY) { buckets { start count suppressed } }
    hours: followerGrowth(granularity: HOUR, from: "2031-04-01T00:00:00Z") { buckets { start count suppressed } } } }"""


async def test_followers_a_sock_puppet_cannot_test_whether_the_victim_followed(gateway: Gateway) -> None:
    """Mechanism 5: followers were counted in person-days, so one account following and unfollowing
    on four days plus the victim's follow made a visible bucket of 5, and four without it stayed
    hidden. Now followers count people: the puppet is one, the victim two, and the creator's
    follower answers are the same whether or not the victim followed."""
    pair = []
    for followed in (True, False):
        world = World(f"puppet-{followed}")
        world.publish(at(-10, 8))
        puppet_flips(world, -6)
        if followed:
            world.follow(world.actor("victim"), at(-3, 15))
        with gateway.clock.at(at(0, 12)):
            await gateway.play(world.take())
            body = await ask(gateway, FOLLOWERS, {"creator": world.creator}, world.owner)
            public = await ask(gateway, "query($c: ID!) { creator(id: $c) { totals { followers } } }", {"c": world.creator})
        assert body["data"]["creator"]["totals"]["followers"] == public["data"]["creator"]["totals"]["followers"] == 0
        assert not nonzero(buckets(body, "creator", "days")) and not nonzero(buckets(body, "creator", "hours"))
        pair.append((world, body))
    assert same_answers(pair), differences(*pair)


async def test_followers_one_account_flipping_on_five_days_is_one_person(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """Five days of one account's follows and unfollows are one person, counted by their net effect:
    with four others they make a release of five people and five followers, in the hour the fourth
    other arrived. The puppet unfollowing afterwards changes nothing until a new release."""
    world = World("flipper")
    world.publish(at(-10, 8))
    puppet_flips(world, -6)
    for i in range(4):
        world.follow(world.actor(f"fan{i}"), at(-1, 10, 5 * i))
    with gateway.clock.at(at(0, 12)):
        await gateway.play(world.take())
        body = await ask(gateway, FOLLOWERS, {"creator": world.creator}, world.owner)
    assert await release_values(admin, world.creator, "f") == {5: 5}
    assert body["data"]["creator"]["totals"]["followers"] == 5
    assert nonzero(buckets(body, "creator", "days")) == {at(-1).isoformat(): 5}
    assert nonzero(buckets(body, "creator", "hours")) == {at(-1, 10).isoformat(): 5}
    world.follow(world.actor("puppet"), at(0, 12, 30), following=False)
    with gateway.clock.at(at(0, 12, 35)):
        await gateway.ingest(world.take())
    with gateway.clock.at(at(1, 12)):
        later = await ask(gateway, FOLLOWERS, {"creator": world.creator}, world.owner)
    assert later["data"]["creator"]["totals"]["followers"] == 5
    assert sum(buckets(later, "creator", "days").values()) == 5
    assert await release_values(admin, world.creator, "f") == {5: 5}


# 6. Late events ---------------------------------------------------------------------------------


async def test_late_share_changes_no_answer_until_a_new_release(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """Mechanism 6: a share stamped inside an already-served hour moved that hour, its channel, the
    region and age band cells and the totals by one, for anyone polling. Now it waits for a release
    like any other: until one, the public, a stranger, the owner and the owner's app get the same
    answers as in a twin world without it; once four more sharers arrive, it is counted in the hour
    of their release, and the hour it was stamped in keeps its count."""
    # Everything each principal may ask (the app's noised cells aside: their draws are the world's own).
    asked = {
        "public": TOTALS,
        "stranger": TOTALS,
        "owner": battery(at(-1), at(2)),
        "app": """query($video: ID!, $creator: ID!) { video(id: $video) { stats { views likes comments shares }
            shareTimeline(granularity: DAY, from: "2031-04-01T00:00:00Z") { buckets { start count suppressed } } }
            creator(id: $creator) { totals { views shares } } }""",
    }
    late_arrival = at(0, 13, 40)
    worlds = []
    for late in (True, False):
        world = World(f"late-{late}")
        world.publish(at(-2, 8))
        world.crowd("crowd", 52, at(0, 10), shares=True, spacing=timedelta(seconds=10))  # 52: the app sees it too
        with gateway.clock.at(at(0, 13, 30)):
            await gateway.play(world.take())
        if late:
            latecomer = world.actor("latecomer")
            world.view(latecomer, at(0, 10, 29), region="FR", age_band="45-54")
            world.share(latecomer, at(0, 10, 30), channel="email", region="FR")
            with gateway.clock.at(late_arrival):
                await gateway.ingest(world.take())
        worlds.append(world)
    for moment in (at(0, 13, 45), at(0, 16, 30), at(1, 2), at(1, 9)):
        with gateway.clock.at(moment):
            for name, query in asked.items():
                pair = [(world, await ask(gateway, query, variables(world), principals_of(world)[name])) for world in worlds]
                assert same_answers(pair), (moment, name, differences(*pair))
    assert await release_values(admin, worlds[0].video(), "s") == {52: 52}

    # Four more sharers arrive the next morning: a release of five, the late share among them.
    world = worlds[0]
    world.crowd("next", 4, at(1, 9, 40), shares=True)
    with gateway.clock.at(at(1, 9, 50)):
        await gateway.ingest(world.take())
    with gateway.clock.at(at(1, 12)):
        body = await ask(gateway, asked["owner"], variables(world), world.owner)
    made = await admin.fetchval("SELECT max(made_at) FROM releases WHERE subject_id = $1 AND metric = 's'", world.video())
    assert made == at(1, 9, 50)
    assert body["data"]["video"]["stats"]["shares"] == 57
    assert nonzero(buckets(body, "video", "sharesByHour")) == {at(0, 10).isoformat(): 52, at(1, 9).isoformat(): 5}


# 7. Backdating ----------------------------------------------------------------------------------


async def test_backdated_puppets_cannot_complete_a_past_release(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """Mechanism 7: ingest accepted any past `occurred_at`, so k - 1 sock puppets dropped into a past
    hour completed a step around a victim's old share there. Now `POST /events` refuses an event
    older than the lateness window (7 days) with a 400 naming its line and field, and storing
    nothing; puppets stamped into the victim's hour within the window arrive now, and the release
    they complete is made now and counted in the hour it was made, not the victim's. (That four
    puppets can make a release around one real share is what no k can stop: README.)"""
    world = World("backdated")
    world.publish(at(-10, 8))
    world.crowd("early", 10, at(-5, 10), shares=True)
    victim = world.actor("victim")
    world.view(victim, at(-3, 10, 19))
    world.share(victim, at(-3, 10, 20))
    now = at(0, 13, 10)
    with gateway.clock.at(now):
        await gateway.play(world.take())
    for i in range(K - 1):
        world.view(world.actor(f"puppet{i}"), at(-8, 10, 30))
        world.share(world.actor(f"puppet{i}"), at(-8, 10, 31))
    stale = world.take()
    with gateway.clock.at(now):
        refused = await post_events(gateway, stale)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "BAD_USER_INPUT" and error["total"] == len(stale)
    assert [(line["line"], line["field"]) for line in error["lines"]] == [(n, "occurred_at") for n in range(1, len(stale) + 1)]
    assert all("lateness window" in line["reason"] for line in error["lines"])
    assert await admin.fetchval("SELECT count(*) FROM events WHERE event_id = ANY($1::text[])", [e["event_id"] for e in stale]) == 0

    for event in stale:  # the same puppets, stamped in the victim's hour, inside the window
        event["occurred_at"] = iso(at(-3, 10, 30))
    with gateway.clock.at(now):
        accepted = await post_events(gateway, stale)
    assert accepted.status_code == 200, accepted.text
    made = await admin.fetch("SELECT made_at, people FROM releases WHERE subject_id = $1 AND metric = 's' ORDER BY seq", world.video())
    assert [(row["made_at"], row["people"]) for row in made] == [(at(-5, 10) + timedelta(hours=1, microseconds=-1), 10), (now, 15)]
    query = """query($video: ID!) { video(id: $video) {
        hours: shareTimeline(granularity: HOUR, from: "2031-04-05T00:00:00Z", to: "2031-04-09T00:00:00Z") { buckets { start count suppressed } }
        days: shareTimeline(granularity: DAY, from: "2031-04-01T00:00:00Z") { buckets { start count suppressed } } } }"""
    with gateway.clock.at(at(1, 3)):
        body = await ask(gateway, query, {"video": world.video()}, world.owner)
    assert nonzero(buckets(body, "video", "hours")) == {at(0, 13).isoformat(): 5}
    assert nonzero(buckets(body, "video", "days")) == {at(-5).isoformat(): 10, at(0).isoformat(): 5}


# 7b. A backfill over activity that has already arrived ---------------------------------------------


async def test_backfill_cannot_carry_pending_live_activity_into_the_past(gateway: Gateway, admin: asyncpg.Connection) -> None:
    """Found by red-teaming: a video with live activity but no release yet may still be backfilled.
    Replayed at the old time, its release also took in the live shares pending since minutes
    before, and was stamped weeks back: behind every cutoff, public at once. Now a subject with any
    activity takes its backfill as arriving now: minutes later the twin worlds (the victim shared
    five minutes ago, or not) answer alike, and a release the backfilled share completes is stamped
    when it arrived, never on its old day."""
    now = at(0, 12, 30)
    worlds = []
    for name, victim in (("backfill-victim", True), ("backfill-none", False)):
        world = World(name)
        with gateway.clock.at(now):
            world.publish(at(-6, 8))
            for i in range(3):
                world.share(world.actor(f"friend{i}"), now - timedelta(minutes=20 + i))
            if victim:
                world.share(world.actor("victim"), now - timedelta(minutes=5), channel="sms")
            await gateway.ingest(world.take())
            world.share(world.actor("old"), at(-5, 9))
            await gateway.backfill(world.take())
        worlds.append(world)
    as_owner = """query($video: ID!, $from: DateTime!, $to: DateTime!) { video(id: $video) { stats { shares }
        shareTimeline(granularity: DAY, from: $from, to: $to) { buckets { start count } } } }"""
    as_public = "query($video: ID!) { video(id: $video) { stats { shares } } }"
    with gateway.clock.at(now + timedelta(minutes=2)):
        for owner in (False, True):
            answers = []
            for world in worlds:
                if owner:
                    body = await ask(gateway, as_owner, {"video": world.video(), "from": iso(at(-7)), "to": iso(now)}, world.owner)
                else:
                    body = await ask(gateway, as_public, {"video": world.video()})
                answers.append((world, body))
            assert same_answers(answers), differences(*answers)
            assert answers[0][1]["data"]["video"]["stats"]["shares"] == 0
    made = await admin.fetch("SELECT made_at, people FROM releases WHERE subject_id = $1 AND metric = 's'", worlds[0].video())
    assert [tuple(row) for row in made] == [(now, 5)]  # the victim, three friends and the backfilled share: now


async def test_backfill_lands_the_same_whether_or_not_anyone_acted_live_before(gateway: Gateway) -> None:
    """Found by red-teaming the running server: a backfill of a video (or a creator's followers)
    that had any live activity was made to arrive now instead of in its past, so whether one
    person had viewed (or followed) before showed in where twenty backfilled viewers landed.
    Now the unreleased live activity is applied again after the backfill, and the backfill's
    history is the same in the twin worlds."""
    now = at(0, 12, 30)
    worlds = []
    for name, victim in (("landing-victim", True), ("landing-none", False)):
        world = World(name)
        with gateway.clock.at(now):
            world.publish(at(-6, 8))
            await gateway.ingest(world.take())
            if victim:
                world.view(world.actor("victim"), now - timedelta(minutes=5))
                world.follow(world.actor("victim"), now - timedelta(minutes=4))
                await gateway.ingest(world.take())
            for i in range(20):
                person = world.actor(f"imported{i}")
                world.view(person, at(-3, 10, i))
                world.share(person, at(-3, 10, 30 + i))
                world.follow(person, at(-3, 11, i))
            await gateway.backfill(world.take())
        worlds.append(world)
    query = """query($video: ID!, $creator: ID!) { video(id: $video) { stats { views shares } }
        creator(id: $creator) { totals { followers } } }"""
    with gateway.clock.at(now + timedelta(days=1, hours=2)):
        for principal in (ANONYMOUS, None):
            answers = [(world, await ask(gateway, query, variables(world), principal or world.owner)) for world in worlds]
            assert same_answers(answers), differences(*answers)
            assert answers[0][1]["data"]["video"]["stats"] == {"views": 20, "shares": 20}


# 9. Timing --------------------------------------------------------------------------------------

# Everything the owner can ask about one video. (A whole battery's reads are batched across the
# video and creator subtrees as the resolvers happen to meet: how many batches varies from run to
# run, whatever the data. One subject's fields resolve in a fixed order.)
VIDEO_QUESTIONS = """query($video: ID!) { video(id: $video) { stats { views likes comments shares completionRate }
    shareChannels { buckets { key count suppressed } }
    regions: audience(dimension: REGION) { buckets { key count suppressed } }
    ageBands: audience(dimension: AGE_BAND) { buckets { key count suppressed } }
    shareTimeline(granularity: HOUR, from: "2031-04-04T00:00:00Z") { buckets { start count suppressed } }
    viewTimeline(granularity: DAY, from: "2031-04-01T00:00:00Z") { buckets { start count suppressed } } } }"""


async def test_timing_a_pending_event_costs_no_statement(gateway: Gateway) -> None:
    """Mechanism 9: an event stored in a closed hour invalidated cached answers, so the next request
    was about four times slower, which told that something had landed. Now answers are read from
    stored releases: a video with an unreleased share costs the same statements as its twin
    without, asked for the first time, and after a share lands in a closed, served hour the next
    answer is the same and costs what asking again cost before it landed."""
    now = at(0, 12, 30)
    worlds = []
    for pending in (True, False):
        world = World(f"timing-{pending}")
        world.publish(at(-3, 8))
        world.crowd("crowd", 12, at(-2, 10), shares=True)
        if pending:
            world.share(world.actor("quiet"), at(-2, 11, 30), channel="sms")
        with gateway.clock.at(now):
            await gateway.play(world.take())
        worlds.append(world)
    with gateway.clock.at(now):
        cold = []
        for world in worlds:
            async with statements_on(gateway.store.reader) as statements:
                answer = await ask(gateway, VIDEO_QUESTIONS, {"video": world.video()}, world.owner)
            cold.append((world, answer, statements))
        assert same_answers([(world, answer) for world, answer, _ in cold])
        # The same statements (sibling fields resolve concurrently: in whatever order).
        assert sorted(cold[0][2]) == sorted(cold[1][2]) and cold[0][2]

        world = worlds[1]
        questions = battery(at(-4), at(0))
        await ask(gateway, questions, variables(world), world.owner)
        async with statements_on(gateway.store.reader) as before:
            first = await ask(gateway, questions, variables(world), world.owner)
        world.share(world.actor("landing"), at(0, 10, 5), channel="sms")  # stamped in a closed, served hour
        await gateway.ingest(world.take())
        async with statements_on(gateway.store.reader) as after:
            second = await ask(gateway, questions, variables(world), world.owner)
    assert second == first
    assert sorted(after) == sorted(before)


# 10. /metrics ------------------------------------------------------------------------------------


async def test_metrics_need_a_service_token(gateway: Gateway) -> None:
    """Mechanism 10, first half: `/metrics` was public. Now anyone without a token is refused 401,
    a user (or anyone but the service) 403, and the service is served."""
    assert (await gateway.http.get("/metrics")).status_code == 401
    assert (await gateway.http.get("/metrics", headers=authorization(STRANGER))).status_code == 403
    assert (await gateway.http.get("/metrics", headers=authorization(app_for("stranger-signed-in", "app-metrics")))).status_code == 403
    assert (await gateway.http.get("/metrics", headers=authorization(SERVICE))).status_code == 200


async def counters(gateway: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every counter and gauge /metrics serves, once the decision log has written what it holds."""
    await gateway.state["decision_log"].flush()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await gateway.scrape())
        for sample in family.samples
        if family.name != "gateway_policy_cache_hit_ratio"  # a ratio of two of the counters
        and not family.name.startswith(("process_", "python_"))  # the process's CPU time, memory, files
        and not sample.name.endswith(("_bucket", "_sum", "_created"))  # how long things took (how many: _count)
    }


async def test_metrics_do_not_move_with_what_an_answer_contained(gateway: Gateway) -> None:
    """Mechanism 10, second half: a creator's private hourly timeline moved a suppressed-cells
    counter by how many of its hours were hidden. Now the same question about a video with three
    viewers (nearly every cell suppressed) and about one with k or more people in every channel and
    age band (only the pool of regions, which its one region joins, suppressed, the empty channel of
    anonymous shares with the smallest channel and the first by key, and the completion rate: none
    of its viewers finished the video) moves every counter alike."""
    small, large, warm = World("metrics-small"), World("metrics-large"), World("metrics-warm")
    small.crowd("friend", 3, at(-2, 10), shares=True)
    warm.crowd("fan", 6, at(-2, 10), shares=True)
    bands = [*AGE_BANDS, None]
    for index, channel in enumerate(CHANNELS):
        large.crowd(f"{channel}-", K, at(-2, 10, 5 * index), shares=True, channel=channel, age_band=bands[index % len(bands)])
    questions = battery(at(-4), at(0))
    moved, suppressed = [], []
    with gateway.clock.at(at(0, 12)):
        for world in (small, large, warm):
            world.publish(at(-3, 8))
            await gateway.play(world.take())
        await ask(gateway, questions, variables(warm), warm.owner)  # the first question: caches warmed
        for world in (small, large):
            before = await counters(gateway)
            body = await ask(gateway, questions, variables(world), world.owner)
            after = await counters(gateway)
            suppressed.append(body["extensions"]["privacy"]["suppressedCells"])
            moved.append({name: after[name] - before.get(name, 0) for name in after})
    assert suppressed == [19, 5]  # the small video has no views released: no rate to withhold
    assert moved[0] == moved[1]
    assert not any("suppress" in name or "noise" in name or "epsilon" in name for name, _ in moved[0])
