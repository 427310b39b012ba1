"""Properties of the release history, for random event streams, over HTTP against the real app and
store under the shipped policy.

A stream is a few videos of one or two creators, a pool of people and crowds, doing random things
(view, like, unlike, comment, share, follow, unfollow) that arrive in random batches at increasing
times over a few days, each event stamped a little before its arrival. Every example has ids of its
own, so examples share the module's database without meeting.

What the properties pin down (issue 10):
(a) one person's activity, appended as the latest arrival, changes no answer to anyone (public,
    stranger, owner, the owner's app) until k - 1 other people new to the metric have joined it;
(b) every total served to anyone is the value of its subject's history at the release the
    principal's terms select, and a creator's totals are sums of their videos' such values;
(c) every timeline bucket, at every granularity, is the difference of the history's values at two
    releases, and a whole-life timeline sums to the total served at the same cutoff.

The expected values are read from the `releases` table and the terms from the shipped policy's
data.json (which release a principal sees: the latest made before the end of the newest bucket of
its granularity floor that closed `delay` ago; with a k larger than the history's, only releases
at which the count of people crossed a multiple of it).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.graphql.responses import answer_minute
from gateway.privacy.terms import PrivacyTerms
from harness import SHIPPED_POLICIES, Gateway, TestClock, running_gateway

# A Friday: streams run over the end of a week (Monday the 31st) and of a month (April 1st).
START = datetime(2031, 3, 28, 9, tzinfo=UTC)
# Every timeline is asked from before any activity: it covers the subject's whole life.
LIFE_START = START - timedelta(days=2)

GRANULARITIES = ("HOUR", "DAY", "WEEK", "MONTH")
VIDEO_KINDS = ("view", "like", "unlike", "comment", "share")
FOLLOW_KINDS = ("follow", "unfollow")
# What people do, the timelines' metrics (views, shares, follows) more often.
KINDS = ("view", "view", "like", "unlike", "comment", "share", "share", "follow", "follow", "unfollow")
METRIC_OF = {"view": "v", "like": "l", "unlike": "l", "comment": "c", "share": "s", "follow": "f", "unfollow": "f"}
# VideoStats' public counts and CreatorTotals' sums: field → metric code.
VIDEO_METRICS = {"views": "v", "likes": "l", "comments": "c", "shares": "s"}
# Timelines: response alias stem → (field, metric code).
VIDEO_TIMELINES = {"shares": ("shareTimeline", "s"), "views": ("viewTimeline", "v")}
CREATOR_TIMELINES = {"followers": ("followerGrowth", "f")}
REGIONS = (None, "DE", "FR", "BR")
AGE_BANDS = (None, "18-24", "35-44")
CHANNELS = ("whatsapp", "x", "email", "copy_link")
ACTORS = 12  # the pool of people who act at random

_examples = itertools.count(1)


# --- time, terms and the history -----------------------------------------------------------------


def bucket_start(moment: datetime, granularity: str) -> datetime:
    """The start of the UTC bucket `moment` is in (weeks start on Monday)."""
    if granularity == "HOUR":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "DAY":
        return day
    if granularity == "WEEK":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_bucket(start: datetime, granularity: str) -> datetime:
    if granularity == "MONTH":
        return (start + timedelta(days=32)).replace(day=1)
    return start + {"HOUR": timedelta(hours=1), "DAY": timedelta(days=1), "WEEK": timedelta(weeks=1)}[granularity]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Terms:
    """What the shipped policy gives a kind of principal: its k, granularity floor and delay."""

    k: int
    floor: str
    delay: timedelta
    # The same terms as the gateway reads them: whether its answers are kept decides the minute a
    # principal is answered at (gateway.graphql.responses.answer_minute).
    read: PrivacyTerms

    def cutoff(self, principal: Principal, now: datetime) -> datetime:
        """Releases made at or after this are not seen by `principal` asking at `now`: taken from
        the start of its own minute, which begins at a second of its own."""
        return bucket_start(answer_minute(now, principal, self.read) - self.delay, self.floor)

    @property
    def granularities(self) -> tuple[str, ...]:
        return GRANULARITIES[GRANULARITIES.index(self.floor) :]


def shipped_terms(kind: PrincipalKind) -> Terms:
    obligations = json.loads((SHIPPED_POLICIES / "data.json").read_text())["obligations"]
    terms = {**obligations["defaults"], **obligations["principals"].get(kind.value, {})}
    return Terms(terms["k_threshold"], terms["granularity_floor"], timedelta(seconds=terms["bucket_delay_seconds"]), PrivacyTerms.parse(terms))


TERMS = {kind: shipped_terms(kind) for kind in (PrincipalKind.ANONYMOUS, PrincipalKind.USER, PrincipalKind.APP)}


@dataclass(frozen=True)
class History:
    """The `releases` rows of an example's subjects: (subject, metric) → rows oldest first."""

    rows: dict[tuple[str, str], list[asyncpg.Record]]

    @classmethod
    async def read(cls, admin: asyncpg.Connection, subjects: list[str]) -> History:
        found = await admin.fetch(
            "SELECT subject_id, metric::text AS metric, made_at, people, prev_people, events FROM releases"
            " WHERE subject_id = ANY($1::text[]) ORDER BY made_at",
            subjects,
        )
        rows: dict[tuple[str, str], list[asyncpg.Record]] = {}
        for row in found:
            rows.setdefault((row["subject_id"], row["metric"]), []).append(row)
        return cls(rows)

    def value(self, subject: str, metric: str, before: datetime, k: int) -> int:
        """The count at the latest release made before `before` that a principal with `k` sees
        (one at which the people crossed a multiple of k); 0 when there is none."""
        seen = [
            row["events"]
            for row in self.rows.get((subject, metric), [])
            if row["made_at"] < before and row["people"] // k > row["prev_people"] // k
        ]
        return seen[-1] if seen else 0


async def pending(admin: asyncpg.Connection, subject: str, metric: str) -> tuple[int, int, int]:
    """(people new since the last release, that release's seq, the live count) of a metric."""
    row = await admin.fetchrow(
        "SELECT people - released_people, released_seq, events FROM live_totals WHERE subject_id = $1 AND metric = $2::text::\"char\"",
        subject,
        metric,
    )
    return (0, 0, 0) if row is None else (row[0], row[1], row[2])


# --- streams -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Act:
    """One event of a stream, without ids: `target` indexes the videos (the creators for follows)."""

    kind: str
    actor: str
    target: int
    region: str | None
    age_band: str | None
    channel: str
    completed: bool
    lead: timedelta  # how long before its arrival it occurred


@dataclass(frozen=True)
class Arrival:
    gap: timedelta  # after the previous arrival (the first: after START)
    acts: tuple[Act, ...]
    ask: timedelta | None  # ask everything this long after the arrival (before the next one)


@dataclass(frozen=True)
class Stream:
    owners: tuple[int, ...]  # each video's creator (an index)
    arrivals: tuple[Arrival, ...]


@st.composite
def acts(draw: st.DrawFn, videos: int, creators: int, actor: str | None = None) -> Act:
    """One thing done by `actor` (else someone of the pool) to a video or creator."""
    kind = draw(st.sampled_from(KINDS))
    return Act(
        kind=kind,
        actor=actor or f"a{draw(st.integers(0, ACTORS - 1))}",
        target=draw(st.integers(0, (creators if kind in FOLLOW_KINDS else videos) - 1)),
        region=draw(st.sampled_from(REGIONS)),
        age_band=draw(st.sampled_from(AGE_BANDS)),
        channel=draw(st.sampled_from(CHANNELS)),
        completed=draw(st.booleans()),
        lead=timedelta(seconds=draw(st.integers(0, 3 * 3600))),
    )


@st.composite
def crowd(draw: st.DrawFn, videos: int, creators: int) -> list[Act]:
    """Up to 60 people of a larger pool doing one thing to one subject: enough, now and then, to
    cross a multiple of an app's k."""
    first, size = draw(st.integers(0, 40)), draw(st.integers(1, 8) | st.integers(45, 60))
    model = draw(acts(videos, creators))
    return [replace(model, actor=f"crowd{first + index}", lead=timedelta(seconds=index)) for index in range(size)]


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    creators = draw(st.integers(1, 2))
    owners = (*range(creators), *draw(st.lists(st.integers(0, creators - 1), max_size=3 - creators)))
    gaps = draw(st.lists(st.integers(1, 30 * 60), min_size=2, max_size=6))
    arrivals = []
    for index, gap in enumerate(gaps):
        chosen = draw(st.lists(acts(len(owners), creators), min_size=1, max_size=16))
        crowded = draw(st.one_of(st.just([]), crowd(len(owners), creators)))
        # Asked before the next arrival; after the last, up to three days later.
        until_next = gaps[index + 1] if index + 1 < len(gaps) else 3 * 24 * 60
        ask = draw(st.none() | st.integers(0, until_next - 1).map(lambda minutes: timedelta(minutes=minutes)))
        if index + 1 == len(gaps) and ask is None:
            ask = timedelta(minutes=draw(st.integers(0, until_next - 1)))
        arrivals.append(Arrival(timedelta(minutes=gap), (*chosen, *crowded), ask))
    return Stream(owners, tuple(arrivals))


@dataclass(frozen=True)
class Activity:
    """One person's activity: a few things done to one video (or one creator: follows)."""

    kinds: tuple[str, ...]
    target: int
    region: str | None
    channel: str


@st.composite
def activities(draw: st.DrawFn) -> Activity:
    kinds = draw(st.sampled_from((VIDEO_KINDS, FOLLOW_KINDS)))
    return Activity(
        kinds=tuple(draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3))),
        target=draw(st.integers(0, 2)),  # taken modulo the videos (creators) there are
        region=draw(st.sampled_from(REGIONS)),
        channel=draw(st.sampled_from(CHANNELS)),
    )


# --- an example's world and its questions --------------------------------------------------------

TIMELINE = "{ from to buckets { start count suppressed } }"
CELLS = "{ buckets { key count suppressed } }"
PUBLIC_VIDEO = "query($video: ID!) { video(id: $video) { stats { views likes comments shares } } }"
RANKING = "videos(orderBy: SHARES, first: 10) { edges { cursor node { id stats { shares } } } }"
PUBLIC_CREATOR = f"query($creator: ID!) {{ creator(id: $creator) {{ totals {{ videos views likes comments shares followers }} {RANKING} }} }}"


def timelines(fields: dict[str, tuple[str, str]], terms: Terms) -> str:
    return " ".join(
        f"{stem}{granularity}: {field}(granularity: {granularity}, from: $from, to: $to) {TIMELINE}"
        for stem, (field, _) in fields.items()
        for granularity in terms.granularities
    )


def owner_video_query(terms: Terms, cells: bool) -> str:
    """Everything an owner (or their app) may ask about a video; `cells`: the breakdowns and the
    completion rate too (for apps, noised: they spend the ε budget)."""
    stats = "views likes comments shares likeRatio engagementRate averageWatchSeconds" + (" completionRate" if cells else "")
    breakdowns = (
        f"shareChannels {CELLS} regions: audience(dimension: REGION) {CELLS} ageBands: audience(dimension: AGE_BAND) {CELLS}" if cells else ""
    )
    return (
        "query($video: ID!, $from: DateTime!, $to: DateTime!) { video(id: $video) {"
        f" stats {{ {stats} }} {breakdowns} {timelines(VIDEO_TIMELINES, terms)} }} }}"
    )


def owner_creator_query(terms: Terms) -> str:
    return (
        "query($creator: ID!, $from: DateTime!, $to: DateTime!) { creator(id: $creator) {"
        f" totals {{ videos views likes comments shares followers }} {RANKING} {timelines(CREATOR_TIMELINES, terms)} }} }}"
    )


def terms_of(principal: Principal) -> Terms:
    return TERMS[principal.kind]


# (principal's label, subject) → the answer's data and its privacy report (less the budget's figures,
# which tell what this request spent, not what it was told).
Answers = dict[tuple[str, str], dict[str, Any]]


class Example:
    """One example's creators, videos and people, with ids of its own."""

    def __init__(self, owners: tuple[int, ...]) -> None:
        self.prefix = f"hp{next(_examples)}"
        self.creators = [f"{self.prefix}-c{index}" for index in range(max(owners) + 1)]
        self.videos = [f"{self.prefix}-v{index}" for index in range(len(owners))]
        self.owner_of = {video: self.creators[owner] for video, owner in zip(self.videos, owners, strict=True)}
        self.principals: list[tuple[str, Principal]] = [
            ("anonymous", ANONYMOUS),
            ("stranger", Principal(PrincipalKind.USER, f"{self.prefix}-stranger")),
        ]
        for creator in self.creators:
            self.principals.append((f"owner {creator}", Principal(PrincipalKind.USER, creator)))
            self.principals.append(
                (f"app of {creator}", Principal(PrincipalKind.APP, creator, frozenset({"stats", "insights"}), app_id=f"{self.prefix}-app"))
            )
        self._ids = itertools.count()

    @property
    def subjects(self) -> list[str]:
        return [*self.videos, *self.creators]

    def videos_of(self, creator: str) -> list[str]:
        return [video for video in self.videos if self.owner_of[video] == creator]

    def subject(self, kind: str, target: int) -> str:
        """What an act of `kind` at `target` is about: a video, or for follows a creator."""
        return self.creators[target % len(self.creators)] if kind in FOLLOW_KINDS else self.videos[target % len(self.videos)]

    def event(self, act: Act, arrival: datetime) -> dict[str, Any]:
        subject = self.subject(act.kind, act.target)
        body: dict[str, Any] = {
            "event_id": f"{self.prefix}-e{next(self._ids)}",
            "type": act.kind,
            "occurred_at": iso(arrival - act.lead),
            "creator_id": subject if act.kind in FOLLOW_KINDS else self.owner_of[subject],
            "actor_id": f"{self.prefix}-{act.actor}",
            "region": act.region,
            "age_band": act.age_band,
        }
        if act.kind not in FOLLOW_KINDS:
            body["video_id"] = subject
        if act.kind == "view":
            body |= {"watch_ms": 15_000, "completed": act.completed}
        elif act.kind == "comment":
            body["text"] = "nice"
        elif act.kind == "share":
            body["channel"] = act.channel
        return {key: value for key, value in body.items() if value is not None}

    def activity(self, activity: Activity, people: list[str], arrival: datetime) -> list[dict[str, Any]]:
        """`activity` done by each of `people`, a minute before `arrival`."""
        return [
            self.event(Act(kind, person, activity.target, activity.region, None, activity.channel, True, timedelta(minutes=1)), arrival)
            for person in people
            for kind in activity.kinds
        ]

    def published(self) -> list[dict[str, Any]]:
        return [
            {"event_id": f"{self.prefix}-e{next(self._ids)}", "type": "video_published", "occurred_at": iso(START - timedelta(hours=1)),
             "video_id": video, "creator_id": creator, "actor_id": creator}
            for video, creator in self.owner_of.items()
        ]

    def owns(self, principal: Principal, subject: str) -> bool:
        owner = self.owner_of.get(subject, subject)
        return principal.kind in (PrincipalKind.USER, PrincipalKind.APP) and principal.id == owner

    def question(self, principal: Principal, subject: str, moment: datetime, *, cells: bool) -> tuple[str, dict[str, Any]]:
        """What `principal` asks about `subject`: everything it may (whole-life timelines at every
        granularity its floor allows, for the owner and their app), else the public counts."""
        is_video = subject in self.owner_of
        variables: dict[str, Any] = {"video" if is_video else "creator": subject}
        if not self.owns(principal, subject):
            return (PUBLIC_VIDEO if is_video else PUBLIC_CREATOR), variables
        variables |= {"from": iso(LIFE_START), "to": iso(moment + timedelta(days=1))}
        terms = terms_of(principal)
        return (owner_video_query(terms, cells) if is_video else owner_creator_query(terms)), variables

    async def ask_everything(self, gateway: Gateway, moment: datetime, *, cells: bool) -> Answers:
        """Every principal's questions about every subject, answered at `moment`."""

        async def ask(principal: Principal, subject: str) -> dict[str, Any]:
            query, variables = self.question(principal, subject, moment, cells=cells)
            response = await gateway.graphql(query, variables, principal=principal)
            assert response.status_code == 200, response.text
            body = response.json()
            assert "errors" not in body, body["errors"]
            report = {key: value for key, value in body["extensions"]["privacy"].items() if key not in ("epsilonSpent", "budgetLeft")}
            return {"data": body["data"], "privacy": report}

        # One at a time, as a client would: the embedded policy engine takes one question at a time.
        with gateway.clock.at(moment):
            return {(label, subject): await ask(principal, subject) for label, principal in self.principals for subject in self.subjects}

    async def play(self, gateway: Gateway, stream: Stream, asked: Callable[[datetime], Awaitable[None]] | None = None) -> datetime:
        """The stream's arrivals at their times (`asked` at each of its moments to ask); returns
        the time of the last arrival."""
        at = START
        for number, arrival in enumerate(stream.arrivals):
            at += arrival.gap
            events = [self.event(act, at) for act in arrival.acts]
            with gateway.clock.at(at):
                await gateway.ingest([*self.published(), *events] if number == 0 else events)
            if asked is not None and arrival.ask is not None:
                await asked(at + arrival.ask)
        return at


def served_total(answer: dict[str, Any], metric: str) -> int:
    """The total of `metric` in an answer about its subject."""
    if metric == "f":
        return int(answer["data"]["creator"]["totals"]["followers"])
    field = next(field for field, code in VIDEO_METRICS.items() if code == metric)
    return int(answer["data"]["video"]["stats"][field])


# --- the gateway ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url, clock=TestClock(START)) as started:
        yield started


PROPERTY_SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --- (a) one person's activity -------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    stream=streams(),
    activity=activities(),
    company=st.integers(0, 4),
    joiners=st.lists(st.integers(1, 3), max_size=2),
    wait=st.integers(0, 20 * 60),
)
async def test_one_persons_latest_activity_changes_no_answer_until_k_new_people_join(
    gateway: Gateway, admin: asyncpg.Connection, stream: Stream, activity: Activity, company: int, joiners: list[int], wait: int
) -> None:
    """Everything every principal may ask (totals, creator totals and the ranking by shares, the
    owner's and their app's timelines at every granularity, share channels, audience, ratios) is
    answered identically with and without one new person's activity as the latest arrival, and
    after more people new to the metric join it, as long as fewer than k (the history's) have
    arrived since its last release; once k have, a release is made and the owner is served it.
    (`company`: people who did the same at the end of the stream, so that some are pending.)"""
    example = Example(stream.owners)
    last = await example.play(gateway, stream)
    if company:
        last += timedelta(minutes=1)
        with gateway.clock.at(last):
            await gateway.ingest(example.activity(activity, [f"company{index}" for index in range(company)], last))
    k = await admin.fetchval("SELECT k FROM release_settings")
    subject = example.subject(activity.kinds[0], activity.target)
    metrics = sorted({METRIC_OF[kind] for kind in activity.kinds})
    at_start = {metric: await pending(admin, subject, metric) for metric in metrics}

    groups = [1, *joiners]  # the person, then the others who join them
    arrivals = [last + timedelta(minutes=1 + number) for number in range(len(groups))]
    # Asked once every principal's cutoff has passed every arrival, first without them, then after
    # each (they arrive in the past of the question: the reader's kept answers are let go).
    # (A minute more: a principal's minute may have begun up to 59 s before it.)
    asked_at = bucket_start(arrivals[-1], "DAY") + timedelta(days=1) + TERMS[PrincipalKind.APP].delay + timedelta(minutes=wait + 1)
    assert all(terms_of(principal).cutoff(principal, asked_at) > arrivals[-1] for _, principal in example.principals)
    before = await example.ask_everything(gateway, asked_at, cells=True)

    added = 0
    for number, (size, at) in enumerate(zip(groups, arrivals, strict=True)):
        with gateway.clock.at(at):
            await gateway.ingest(example.activity(activity, [f"person{number}-{index}" for index in range(size)], at))
        added += size
        gateway.forget_kept_answers()
        after = await example.ask_everything(gateway, asked_at, cells=True)
        now = {metric: await pending(admin, subject, metric) for metric in metrics}
        released = [metric for metric in metrics if now[metric][1] != at_start[metric][1]]
        # A release is made exactly when k people new to the metric have arrived since the last.
        assert released == [metric for metric in metrics if at_start[metric][0] + added >= k], (at_start, added)
        if not released:
            assert after == before, f"{added} new people, {at_start} pending before"
            continue
        # The question sees what arrives: the owner is served the new release, all that is live.
        owner = next(label for label, principal in example.principals if principal.kind is PrincipalKind.USER and example.owns(principal, subject))
        assert all(served_total(after[(owner, subject)], metric) == now[metric][2] for metric in released)
        break


# --- (b) totals ----------------------------------------------------------------------------------


def check_totals(example: Example, history: History, moment: datetime, answers: Answers) -> None:
    for label, principal in example.principals:
        terms = terms_of(principal)
        cutoff = terms.cutoff(principal, moment)

        def value(subject: str, metric: str, cutoff: datetime = cutoff, k: int = terms.k) -> int:
            return history.value(subject, metric, cutoff, k)

        for video in example.videos:
            stats = answers[(label, video)]["data"]["video"]["stats"]
            served = {field: stats[field] for field in VIDEO_METRICS}
            assert served == {field: value(video, code) for field, code in VIDEO_METRICS.items()}, (label, video, moment)
        for creator in example.creators:
            data = answers[(label, creator)]["data"]["creator"]
            videos = example.videos_of(creator)
            expected = {field: sum(value(video, code) for video in videos) for field, code in VIDEO_METRICS.items()}
            assert data["totals"] == {"videos": len(videos), "followers": value(creator, "f"), **expected}, (label, creator, moment)
            ranked = [(edge["node"]["id"], edge["node"]["stats"]["shares"]) for edge in data["videos"]["edges"]]
            assert sorted(ranked) == sorted((video, value(video, "s")) for video in videos), (label, creator, moment)
            assert [shares for _, shares in ranked] == sorted((shares for _, shares in ranked), reverse=True)


@PROPERTY_SETTINGS
@given(stream=streams())
async def test_served_totals_are_values_of_the_subjects_history(gateway: Gateway, admin: asyncpg.Connection, stream: Stream) -> None:
    """At any moment along a stream, every total any principal is served (a video's four public
    counts, the same counts in the creator's ranking by shares, a creator's followers) is the
    `events` of the release of that subject and metric its terms select (0 when none is visible),
    and Creator.totals sums those values over the creator's videos: so any two principals' answers
    about a subject differ by whole releases or not at all."""
    example = Example(stream.owners)

    async def asked(moment: datetime) -> None:
        answers = await example.ask_everything(gateway, moment, cells=False)
        check_totals(example, await History.read(admin, example.subjects), moment, answers)

    await example.play(gateway, stream, asked)


# --- (c) timelines -------------------------------------------------------------------------------


def check_timelines(example: Example, history: History, moment: datetime, answers: Answers) -> None:
    for label, principal in example.principals:
        terms = terms_of(principal)
        for subject in example.subjects:
            if not example.owns(principal, subject):
                continue
            is_video = subject in example.owner_of
            data = answers[(label, subject)]["data"]["video" if is_video else "creator"]
            for stem, (_, metric) in (VIDEO_TIMELINES if is_video else CREATOR_TIMELINES).items():
                for granularity in terms.granularities:
                    where = (label, subject, stem, granularity, moment)
                    served = data[f"{stem}{granularity}"]
                    start = bucket_start(LIFE_START, granularity)
                    end = min(bucket_start(moment + timedelta(days=1), granularity), bucket_start(terms.cutoff(principal, moment), granularity))
                    assert (datetime.fromisoformat(served["from"]), datetime.fromisoformat(served["to"])) == (start, end), where
                    starts = [start]
                    while next_bucket(starts[-1], granularity) < end:
                        starts.append(next_bucket(starts[-1], granularity))
                    assert [datetime.fromisoformat(bucket["start"]) for bucket in served["buckets"]] == (starts if start < end else []), where
                    assert not any(bucket["suppressed"] for bucket in served["buckets"]), where
                    # Each bucket: the value at the last release made in it less that at the last before it.
                    for bucket in served["buckets"]:
                        opened = datetime.fromisoformat(bucket["start"])
                        closed = next_bucket(opened, granularity)
                        brought = history.value(subject, metric, closed, terms.k) - history.value(subject, metric, opened, terms.k)
                        assert bucket["count"] == brought, (*where, opened)
                    # The whole life sums to the total at the timeline's end, and to every total
                    # served at that cutoff under the same k (the principal's own at its floor).
                    whole = sum(bucket["count"] for bucket in served["buckets"])
                    assert whole == history.value(subject, metric, end, terms.k), where
                    for other, asker in example.principals:
                        if terms_of(asker).k == terms.k and terms_of(asker).cutoff(asker, moment) == end:
                            assert whole == served_total(answers[(other, subject)], metric), (*where, other)


@PROPERTY_SETTINGS
@given(stream=streams())
async def test_timeline_buckets_are_whole_releases_and_sum_to_the_served_total(
    gateway: Gateway, admin: asyncpg.Connection, stream: Stream
) -> None:
    """At any moment along a stream, every bucket of the owner's and their app's share, view and
    follower timelines, at every granularity each may ask, is the difference of the history's
    `events` at two releases (the last made in the bucket, the last before it), buckets are whole
    and never suppressed, and a whole-life timeline sums to the total served at the same cutoff
    (HOUR: the owner's; DAY: the public's, and the app's own; WEEK and MONTH: whoever's cutoff
    falls on that boundary)."""
    example = Example(stream.owners)

    async def asked(moment: datetime) -> None:
        answers = await example.ask_everything(gateway, moment, cells=False)
        check_timelines(example, await History.read(admin, example.subjects), moment, answers)

    await example.play(gateway, stream, asked)
