"""Erasing a person removes their rows and their unreleased part of the live totals, keeps every
release, and lets their later activity count as a new person's, whatever is being ingested meanwhile."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from gateway.store.apps import authorize_app, register_app
from gateway.store.erasure import ErasureReceipt, derive_erasure_key, erase_person, subject_key
from gateway.store.ingest import EventWriter
from gateway.store.pools import Store

from conftest import SECRET
from helpers import FROM_SCRATCH, assert_history_is_sound, event, ingest, records, snapshot, truncate_all, utc

KEY = derive_erasure_key(SECRET)
NOON = utc(2025, 5, 14, 12)
PERSON = "p1"


class Clock:
    """Arrivals a second apart, so that each batch is stamped after the one before."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


_ids = itertools.count()


def fresh_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def views(video: str, actors: Iterable[str], at: datetime = NOON, **fields: Any) -> list[dict[str, Any]]:
    return [event("view", fresh_id("view"), at, video_id=video, actor_id=actor, **fields) for actor in actors]


def shares(video: str, actors: Iterable[str], at: datetime = NOON, channel: str = "whatsapp") -> list[dict[str, Any]]:
    return [event("share", fresh_id("share"), at, video_id=video, actor_id=actor, channel=channel) for actor in actors]


def follows(creator: str, actors: Iterable[str], at: datetime = NOON) -> list[dict[str, Any]]:
    return [event("follow", fresh_id("follow"), at, creator_id=creator, actor_id=actor) for actor in actors]


@pytest.fixture
async def writer(store: Store, admin: asyncpg.Connection) -> EventWriter:
    await truncate_all(admin)
    return EventWriter(store.ingest, Clock(NOON + timedelta(hours=1)))


async def erase(store: Store, person: str = PERSON, reason: str | None = None) -> ErasureReceipt:
    async with store.eraser.acquire() as conn:
        return await erase_person(conn, person, key=subject_key(KEY, person), erased_by="compliance:dpo", reason=reason)


TEN_HOURS = 10 * 3600 * 1000  # of watch time: one viewer counts up to the cap, three minutes (migration 0015)


async def released_and_unreleased(writer: EventWriter) -> None:
    """The person is counted in a release of video `a`'s views and shares and of creator `c2`'s
    followers (with four others each: k is 5), and has viewed `a` again since, from another region;
    they are among three viewers of `b` (no release), like `b`, viewed it twice (once left playing
    for ten hours and watched to the end, once not finished), and are the one follower of `c3`."""
    others = [f"o{n}" for n in range(1, 5)]
    await ingest(writer, [
        *views("a", [PERSON, *others], region="DE"),
        *shares("a", [PERSON, *others]),
        *follows("c2", [PERSON, *(f"f{n}" for n in range(1, 5))]),
    ])
    await ingest(writer, [
        *views("a", [PERSON], region="FR", watch_ms=TEN_HOURS, completed=True),
        *views("b", [PERSON], region="FR", age_band="18-24", watch_ms=TEN_HOURS, completed=True),
        *views("b", [PERSON], region="FR", age_band="18-24", completed=False),
        *views("b", ["o5", "o6"], region="DE"),
        event("like", fresh_id("like"), NOON, video_id="b", actor_id=PERSON),
        *follows("c3", [PERSON]),
    ])


# -- what a recount says the live state should be ------------------------------------------------

SUMMED = {"live_totals": 2, "live_cells": 4}  # how many key columns lead each table's rows


async def recount(admin: asyncpg.Connection, which: str = "TRUE") -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
    """The live totals and cells recomputed (tests/store/helpers.FROM_SCRATCH) over the stored events
    that satisfy `which`: a temporary `events` hides the real one for the length of the recount."""
    counts: dict[str, dict[tuple[Any, ...], tuple[int, ...]]] = {}
    async with admin.transaction():
        await admin.execute(f"CREATE TEMP TABLE events ON COMMIT DROP AS SELECT * FROM public.events WHERE {which}")
        for table, keys in SUMMED.items():
            rows = await admin.fetch(FROM_SCRATCH[table][1])
            counts[table] = {tuple(row)[:keys]: tuple(row)[keys:] for row in rows}
    return counts


def plus(*recounts: dict[str, dict[tuple[Any, ...], tuple[int, ...]]]) -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
    total: dict[str, dict[tuple[Any, ...], tuple[int, ...]]] = {table: {} for table in SUMMED}
    for counted in recounts:
        for table, rows in counted.items():
            for key, values in rows.items():
                before = total[table].get(key, (0,) * len(values))
                total[table][key] = tuple(a + b for a, b in zip(before, values))
    return total


async def live_state(admin: asyncpg.Connection) -> dict[str, dict[tuple[Any, ...], tuple[int, ...]]]:
    return {
        table: {tuple(row)[:keys]: tuple(row)[keys:] for row in await admin.fetch(FROM_SCRATCH[table][0])}
        for table, keys in SUMMED.items()
    }


RELEASED_PART = f"actor_id = '{PERSON}' AND (video_id = 'a' OR (video_id IS NULL AND creator_id = 'c2'))"


async def test_the_ledger_records_the_arrival_that_brought_each_row(writer: EventWriter, admin: asyncpg.Connection) -> None:
    await ingest(writer, [*views("a", [f"o{n}" for n in range(5)]), *follows("c2", [f"o{n}" for n in range(5)])])
    await ingest(writer, [*views("a", ["o5"]), *follows("c2", ["o5"])])

    released = {row[0]: row[1] for row in await admin.fetch("SELECT subject_id, released_arrival FROM live_totals")}
    ledger = await admin.fetch("SELECT 'a', actor_id, arrival FROM video_people UNION ALL SELECT 'c2', actor_id, arrival FROM follow_state")
    arrivals = {(row[0], row[1]): row[2] for row in ledger}
    assert released["a"] == released["c2"] > 0
    assert arrivals == {
        **{(subject, f"o{n}"): released["a"] for subject in ("a", "c2") for n in range(5)},
        ("a", "o5"): released["a"] + 1,
        ("c2", "o5"): released["a"] + 1,
    }


# -- what goes, what stays -------------------------------------------------------------------------


async def test_erasure_removes_the_persons_events_ledger_rows_and_budget_and_revokes_their_grants(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    await released_and_unreleased(writer)
    await ingest(writer, views("a", ["o9"]))
    app_id = await register_app(admin, "Acme")
    await authorize_app(admin, app_id, PERSON, ["activity"])
    await authorize_app(admin, app_id, "o9", ["activity"])
    await admin.execute("INSERT INTO privacy_spend VALUES ($1, $2, current_date, '\\x01', 0.5), ($1, 'o9', current_date, '\\x01', 0.5)", app_id, PERSON)
    others_before = await admin.fetchval("SELECT count(*) FROM events WHERE actor_id <> $1", PERSON)

    receipt = await erase(store, reason="request by e-mail")

    assert receipt.events == 8 and receipt.app_grants == 1 and not receipt.repeated
    for table in ("events", "video_people", "follow_state", "arrivals_pending"):
        assert await admin.fetchval(f"SELECT count(*) FROM {table} WHERE actor_id = $1", PERSON) == 0, table
    assert await admin.fetchval("SELECT count(*) FROM privacy_spend WHERE user_id = $1", PERSON) == 0
    grants = {row["user_id"]: (row["scopes"], row["generation"]) for row in await admin.fetch("SELECT * FROM app_authorizations")}
    assert grants == {PERSON: ([], 1), "o9": (["activity"], 0)}
    assert await admin.fetchval("SELECT count(*) FROM events WHERE actor_id <> $1", PERSON) == others_before
    assert await admin.fetchval("SELECT count(*) FROM privacy_spend") == 1


async def test_the_erasure_record_says_when_and_by_whom_and_not_whose(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    await released_and_unreleased(writer)

    receipt = await erase(store, reason="request by e-mail")

    record = dict(await admin.fetchrow("SELECT * FROM erasures"))
    assert record == {
        "erasure_id": record["erasure_id"],
        "erased_at": receipt.erased_at,
        "erased_by": "compliance:dpo",
        "reason": "request by e-mail",
        "subject_key": subject_key(KEY, PERSON),
        "covers_until": None,  # until it is repeated
    }
    assert str(record["erasure_id"]) == receipt.erasure_id
    assert PERSON.encode() not in record["subject_key"]
    assert record["subject_key"] != subject_key(derive_erasure_key(SECRET + "-other"), PERSON), "keyed by the secret"


async def test_erasure_keeps_every_release_as_it_was(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    await released_and_unreleased(writer)
    before = await snapshot(admin)

    await erase(store)

    after = await snapshot(admin)
    assert before["releases"] and after["releases"] == before["releases"]
    assert before["release_cells"] and after["release_cells"] == before["release_cells"]


async def test_live_state_is_a_recount_of_what_remains_plus_the_persons_part_of_what_was_released(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    await released_and_unreleased(writer)
    released_part = await recount(admin, RELEASED_PART)

    await erase(store)

    assert await live_state(admin) == plus(await recount(admin), released_part)
    await assert_history_is_sound(admin)


async def test_what_only_the_person_brought_and_was_never_released_is_gone(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    await released_and_unreleased(writer)

    await erase(store)

    # c3's one follower, b's likes, b's viewers from 18-24 and b's completed views were theirs alone;
    # b's two other viewers left their views unfinished, watching a second each, and the capped sum
    # loses the three minutes the person's ten hours counted, no more.
    assert await admin.fetch("SELECT * FROM live_totals WHERE (subject_id, metric) IN (('c3', 'f'), ('b', 'l'))") == []
    cells = await admin.fetch("SELECT dimension::text, value, events, people FROM live_cells WHERE subject_id = 'b' ORDER BY 1, 2")
    assert [tuple(cell) for cell in cells] == [("a", "unknown", 2, 2), ("r", "DE", 2, 2), ("w", "not_completed", 2, 2)]
    assert await admin.fetchval("SELECT watch_capped_ms FROM live_totals WHERE (subject_id, metric) = ('b', 'v')") == 2_000


async def test_an_unreleased_persons_retention_sentiment_and_hours_go_with_them(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    """Migration 0023's cells: the person alone watched the timed video `d` to the end, wrote its one
    critical comment and viewed creator c4's videos at 3 a.m. on a Wednesday; nothing of `d` or of c4's audience is
    released. After the erasure the live state is the recount of the others' events alone."""
    await ingest(writer, [event("video_published", "pub-d", NOON, video_id="d", creator_id="c4", actor_id="c4", duration_ms=60_000)])
    await ingest(writer, [
        *views("d", [PERSON], at=NOON - timedelta(hours=9), watch_ms=60_000),
        *views("d", ["o1", "o2"], watch_ms=30_000),
        event("comment", fresh_id("comment"), NOON, video_id="d", creator_id="c4", actor_id=PERSON, text="This is awful."),
        event("comment", fresh_id("comment"), NOON, video_id="d", creator_id="c4", actor_id="o1", text="Love it!"),
    ])
    cells = {(row[0], row[1]) for row in await admin.fetch("SELECT dimension::text, value FROM live_cells WHERE people > 0")}
    assert {("d", "100"), ("s", "negative"), ("h", str(2 * 24 + 3))} <= cells

    await erase(store)

    assert await live_state(admin) == await recount(admin)
    cells = {(row[0], row[1]) for row in await admin.fetch("SELECT dimension::text, value FROM live_cells")}
    assert not {("d", "100"), ("s", "negative"), ("h", str(2 * 24 + 3))} & cells


async def test_erasing_again_changes_nothing_but_what_the_record_covers_and_answers_with_the_first_receipt(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    await released_and_unreleased(writer)
    first = await erase(store)
    after_first = await snapshot(admin)

    again = await erase(store)

    assert again.repeated and (again.erasure_id, again.erased_at, again.erased_by) == (first.erasure_id, first.erased_at, first.erased_by)
    assert (again.events, again.app_grants) == (0, 0)
    after_again = await snapshot(admin)
    records, records_before = after_again.pop("erasures"), after_first.pop("erasures")
    assert after_again == after_first
    # The record's last column, covers_until, moves to the repeated erasure's moment; nothing else of it.
    assert [record[:-1] for record in records] == [record[:-1] for record in records_before]
    assert records[0][-1] > first.erased_at


async def test_a_person_never_seen_is_erased_once_and_then_answered_as_erased(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    first = await erase(store, "nobody")
    again = await erase(store, "nobody")

    assert not first.repeated and first.events == 0
    assert again.repeated and again.erasure_id == first.erasure_id
    assert await admin.fetchval("SELECT count(*) FROM erasures") == 1


async def test_activity_after_an_erasure_is_a_new_persons_and_is_erased_by_a_new_request(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    await released_and_unreleased(writer)
    first = await erase(store)
    viewers = {row[0]: row[1] for row in await admin.fetch("SELECT subject_id, people FROM live_totals WHERE metric = 'v'")}

    await ingest(writer, [*views("a", [PERSON]), *views("b", [PERSON])])

    after = {row[0]: row[1] for row in await admin.fetch("SELECT subject_id, people FROM live_totals WHERE metric = 'v'")}
    # On `a` they stay counted in the release and count again; on `b` they were taken out, and count once.
    assert (viewers["a"], after["a"]) == (5, 6)
    assert (viewers["b"], after["b"]) == (2, 3)
    second = await erase(store)
    assert not second.repeated and second.erasure_id != first.erasure_id and second.events == 2
    assert await admin.fetchval("SELECT count(*) FROM erasures") == 2


async def test_no_later_release_falls_below_an_earlier_one(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    await released_and_unreleased(writer)
    await erase(store)

    await ingest(writer, [*views("a", [f"n{n}" for n in range(5)]), *views("b", [f"n{n}" for n in range(3)]), *follows("c3", ["n1", "n2"])])
    await ingest(writer, [*views("b", ["n3", "n4"]), *follows("c3", ["n3", "n4", "n5"])])

    falls = await admin.fetch(
        """SELECT subject_id, metric, seq FROM (
               SELECT subject_id, metric, seq, people < lag(people) OVER w OR events < lag(events) OVER w AS fell
               FROM releases WINDOW w AS (PARTITION BY subject_id, metric ORDER BY seq)) steps
           WHERE fell"""
    )
    assert falls == []
    made = {(row[0], row[1]): row[2] for row in await admin.fetch("SELECT subject_id, metric::text, max(seq) FROM releases GROUP BY 1, 2")}
    assert made[("a", "v")] == 2 and made[("b", "v")] == 1 and made[("c3", "f")] == 1
    await assert_history_is_sound(admin)


async def test_events_a_backfill_holds_are_erased_and_never_applied(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    await writer.hold(records([*views("h", [PERSON, "o1", "o2", "o3", "o4"], at=NOON - timedelta(days=30))]))

    receipt = await erase(store)
    await writer.replay()

    assert receipt.events == 1
    assert await admin.fetchval("SELECT count(*) FROM arrivals_pending") == 0
    assert await admin.fetchval("SELECT people FROM live_totals WHERE subject_id = 'h'") == 4
    assert await admin.fetchval("SELECT count(*) FROM releases WHERE subject_id = 'h'") == 0


# -- while ingest runs ------------------------------------------------------------------------------


async def test_erasure_while_ingest_runs_loses_no_other_persons_event_and_keeps_the_counts_whole(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    await released_and_unreleased(writer)
    released_part = await recount(admin, RELEASED_PART)
    # Others keep arriving on `a` (releases are made meanwhile), `b` (one more viewer: still short of
    # a release) and `c`, where the person acts too, before and after the erasure as it happens.
    batches = [
        [
            *views("a", [f"n{batch}-{n}" for n in range(3)]),
            *views("b", ["o7"]),
            *views("c", [f"o{8 + batch % 3}"]),
            *views("c", [PERSON], region="DE"),
            *shares("c", [PERSON]),
        ]
        for batch in range(24)
    ]
    others = {body["event_id"] for batch in batches for body in batch if body["actor_id"] != PERSON}

    async def feed(part: list[list[dict[str, Any]]]) -> None:
        for batch in part:
            await ingest(writer, batch)

    # A task group, not gather: should one of them fail, the batches still running are cancelled and
    # awaited, rather than left to meet the next test's TRUNCATE in a deadlock that hides the failure.
    async with asyncio.TaskGroup() as running:
        running.create_task(feed(batches[0::2]))
        running.create_task(feed(batches[1::2]))
        erasures = [running.create_task(erase(store)) for _ in range(2)]

    stored = {row[0] for row in await admin.fetch("SELECT event_id FROM events WHERE actor_id <> $1", PERSON)}
    assert others <= stored, "another person's event was lost"
    assert not all(erasure.result().repeated for erasure in erasures), "one of the two erasures found the person"
    left = await admin.fetch("SELECT DISTINCT video_id FROM events WHERE actor_id = $1", PERSON)
    assert {row[0] for row in left} <= {"c"}, "only what arrived after an erasure remains"
    kept, expected = await live_state(admin), plus(await recount(admin), released_part)
    # The creator's audience (metric 'a', migration 0023) is released often here (new viewers of `a`
    # keep arriving): the person's views of `c` between the two erasures may be released in it before
    # the second, which then leaves that self counted too, anonymously. One more person, at most.
    for table in kept:
        for key in [key for key in kept[table] | expected[table] if key[1] == b"a"]:
            more = kept[table].pop(key, (0, 0))[-1] - expected[table].pop(key, (0, 0))[-1]
            assert 0 <= more <= 1, (table, key, more)
    assert kept == expected
    await assert_history_is_sound(admin)


# -- twin worlds: erased, or never there --------------------------------------------------------------


def world(name: str) -> Callable[[str], str]:
    return lambda local: f"{name}-{local}"


def scenario_before(w: Callable[[str], str], person: str, *, unreleased: bool) -> list[list[dict[str, Any]]]:
    """`person` is counted in a release of `a` (views: they left it playing for ten hours and watched
    it to the end) and of `c`'s followers, then views `a` again, without finishing it; `unreleased`:
    they also view `b`, which has no release: once for ten hours, to the end, and once not."""
    return [
        [*views(w("a"), [person], region="DE", watch_ms=TEN_HOURS, completed=True),
         *views(w("a"), [w(f"o{n}") for n in range(1, 5)], region="DE"),
         *follows(w("c"), [person, *(w(f"f{n}") for n in range(1, 5))])],
        [*views(w("a"), [person], region="FR", watch_ms=30_000),
         *views(w("b"), [person] if unreleased else [], region="DE", watch_ms=TEN_HOURS, completed=True),
         *views(w("b"), [person] if unreleased else [], region="DE", completed=False),
         *views(w("b"), [w("o5"), w("o6")], region="DE")],
    ]


def scenario_after(w: Callable[[str], str]) -> list[list[dict[str, Any]]]:
    """The person (by their own id) acts again, with others, watching both videos to the end for
    two minutes or so: `b` reaches a release."""
    return [
        [*views(w("a"), [w("p")], region="FR", watch_ms=120_000, completed=True),
         *views(w("a"), [w(f"o{n}") for n in range(9, 13)], region="FR"),
         *views(w("b"), [w("p")], watch_ms=150_000, completed=True),
         *views(w("b"), [w("o7")])],
        [*views(w("b"), [w("o8")]), *follows(w("c"), [w("p")])],
    ]


async def history_of(admin: asyncpg.Connection, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """The world's releases and live state, its name taken out of the ids."""
    prefix = f"{name}-"
    tables = {
        "releases": "SELECT subject_id, metric::text, made_at, seq, people, prev_people, events, watch_capped_ms, watch_cap_ms FROM releases",
        "release_cells": "SELECT subject_id, metric::text, dimension::text, value, seq, events, people FROM release_cells",
        "live_totals": "SELECT subject_id, metric::text, people, events, watch_capped_ms, released_seq, released_people FROM live_totals",
        "live_cells": "SELECT subject_id, metric::text, dimension::text, value, events, people FROM live_cells",
    }
    return {
        table: sorted(((row[0].removeprefix(prefix), *tuple(row)[1:]) for row in await admin.fetch(query) if row[0].startswith(prefix)), key=repr)
        for table, query in tables.items()
    }


async def test_a_person_erased_and_one_who_never_was_leave_the_same_history(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    """World `e`: `e-p` is counted in releases, acts again (on `b`, unreleased), is erased, and acts
    again. World `n`: an anonymous `n-x` does what was released of `e-p` (that part stays, as
    `e-p`'s does), and `n-p`, never seen before, does what `e-p` does after the erasure. Each batch
    carries both worlds' events, so that both arrive at the same moments."""
    erased, never = world("e"), world("n")
    for batch_e, batch_n in zip(scenario_before(erased, "e-p", unreleased=True), scenario_before(never, "n-x", unreleased=False)):
        await ingest(writer, [*batch_e, *batch_n])

    await erase(store, "e-p")
    for batch_e, batch_n in zip(scenario_after(erased), scenario_after(never)):
        await ingest(writer, [*batch_e, *batch_n])

    in_e, in_n = await history_of(admin, "e"), await history_of(admin, "n")
    made = {(subject, metric, seq) for subject, metric, _, seq, *_ in in_e["releases"]}
    assert {("a", "v", 2), ("b", "v", 1), ("c", "f", 1)} <= made, "the person's later activity made releases"
    assert in_e == in_n
    # What average watch times and completion rates are served from: each viewer's watch time up to
    # three minutes, and the people and views on each side of the completion cells.
    watched = {(subject, seq): capped for subject, metric, _, seq, _, _, _, capped, _ in in_e["releases"] if metric == "v"}
    assert watched == {("a", 1): 180_000 + 4 * 1_000, ("a", 2): 180_000 + 4 * 1_000 + 120_000 + 4 * 1_000, ("b", 1): 150_000 + 4 * 1_000}
    completion = {(subject, value, seq): (events, people) for subject, _, dimension, value, seq, events, people in in_e["release_cells"] if dimension == "w"}
    assert completion == {
        ("a", "completed", 1): (1, 1), ("a", "not_completed", 1): (4, 4),
        ("a", "completed", 2): (2, 2), ("a", "not_completed", 2): (9, 9),
        ("b", "completed", 1): (1, 1), ("b", "not_completed", 1): (4, 4),
    }


async def test_erasing_someone_who_never_viewed_takes_no_watch_time_from_any_total(store: Store, writer: EventWriter, admin: asyncpg.Connection) -> None:
    """A red team found every other metric's capped watch sum at minus the cap after an erasure
    (least() ignores a NULL): a mark the reader role could read that someone unreleased was erased."""
    people = [PERSON, "o1", "o2"]  # others too: what only the person brought would go whole
    await ingest(writer, [
        *shares("w", people),
        *follows("cw", people),
        *(event("like", fresh_id("like"), NOON, video_id="w", actor_id=actor) for actor in people),
    ])

    await erase(store)

    sums = await admin.fetch("SELECT metric, watch_capped_ms FROM live_totals WHERE subject_id IN ('w', 'cw')")
    assert sums and all(row["watch_capped_ms"] == 0 for row in sums), [tuple(row) for row in sums]


async def test_erasing_an_unreleased_anonymous_sharer_leaves_the_history_of_a_world_without_them(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    """A red team found the erased person's anonymous share taken out of its event's channel cell
    (x), which never held it, instead of 'undisclosed': one share short for good, on the channel
    of a share meant to be anonymous."""
    erased, never = world("ea"), world("na")

    def released(w: Callable[[str], str]) -> list[dict[str, Any]]:
        return [*shares(w("s"), [w(f"w{n}") for n in range(6)], channel="whatsapp"), *shares(w("s"), [w(f"x{n}") for n in range(6)], channel="x")]

    await ingest(writer, [*released(erased), *released(never)])
    await ingest(writer, [event("share", fresh_id("share"), NOON, video_id=erased("s"), actor_id=PERSON, channel="x", anonymous=True)])
    await erase(store)
    await ingest(writer, [
        event
        for w in (erased, never)
        for event in (*shares(w("s"), [w(f"w{n}") for n in range(6, 9)], channel="whatsapp"), *shares(w("s"), [w(f"x{n}") for n in range(6, 11)], channel="x"))
    ])

    in_erased = await history_of(admin, "ea")
    assert ("s", "s", "c", "x", 2, 11, 11) in in_erased["release_cells"], "the channel x holds its eleven sharers"
    assert in_erased == await history_of(admin, "na")


async def test_what_an_erased_person_did_before_the_erasure_is_not_stored_when_it_arrives_late(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    """A red team found a share made while the person's anonymous setting was on, arriving after
    their erasure (which deleted the setting), applied to its channel's cell. The erasure covers
    what the person did before it: it is left out, whenever it arrives; what they do after is a new
    person's."""
    await ingest(writer, shares("late", [PERSON, "o1"]))
    receipt = await erase(store)
    with_key = EventWriter(store.ingest, Clock(receipt.erased_at + timedelta(minutes=1)), erasure_key=KEY)
    before = receipt.erased_at - timedelta(hours=2)
    after = receipt.erased_at + timedelta(seconds=30)

    late = await with_key.write(records([
        event("share", fresh_id("share"), before, video_id="late", actor_id=PERSON, channel="email"),
        event("share", fresh_id("share"), before, video_id="late", actor_id="o2", channel="email"),
        event("share", fresh_id("share"), after, video_id="late", actor_id=PERSON, channel="x"),
    ]))

    stored = await admin.fetch("SELECT actor_id, channel::text FROM events WHERE video_id = 'late' ORDER BY actor_id, channel")
    assert (late.received, late.inserted, late.erased, late.duplicates) == (3, 2, 1, 0)
    assert [tuple(row) for row in stored] == [("o1", "whatsapp"), ("o2", "email"), (PERSON, "x")]


async def test_a_repeated_erasure_covers_what_the_person_did_since_the_first_when_it_arrives_late(
    store: Store, writer: EventWriter, admin: asyncpg.Connection
) -> None:
    """A red team: erased, then a share, then erased again while that share had not arrived. The
    second erasure found nothing and gave back the first receipt, and the share, compared with
    the first erasure's time only, was stored after it. Now the repeated erasure covers it too."""
    first = await erase(store)
    again = await erase(store)
    covers_until = await admin.fetchval("SELECT covers_until FROM erasures WHERE erasure_id = $1::uuid", first.erasure_id)
    assert again.repeated and (again.erasure_id, again.erased_at) == (first.erasure_id, first.erased_at)
    assert covers_until > first.erased_at
    with_key = EventWriter(store.ingest, Clock(covers_until + timedelta(minutes=1)), erasure_key=KEY)
    between = first.erased_at + (covers_until - first.erased_at) / 2

    late = await with_key.write(records([
        event("share", fresh_id("share"), between, video_id="late-again", actor_id=PERSON, channel="email"),
        event("share", fresh_id("share"), covers_until + timedelta(seconds=30), video_id="late-again", actor_id=PERSON, channel="x"),
    ]))

    stored = await admin.fetch("SELECT channel::text FROM events WHERE video_id = 'late-again'")
    assert (late.inserted, late.erased) == (1, 1)
    assert [row[0] for row in stored] == ["x"], "what they did after the second erasure is a new person's"


async def test_an_erasure_waits_for_the_batches_that_checked_their_actors_before_it(
    store: Store, writer: EventWriter, admin: asyncpg.Connection, database_url: str
) -> None:
    """A red team stored a share an erased person made before their erasure: its batch had checked
    the erasures just before the erasure committed, and stored it just after. A batch holds
    ERASURE_LOCK shared from its check to its commit, and an erasure takes it exclusively first."""
    from gateway.store.history import ERASURE_LOCK

    await ingest(writer, views("wait", [PERSON, "o1"]))
    batch = await asyncpg.connect(database_url)
    try:
        async with batch.transaction():
            await batch.execute("SELECT pg_advisory_xact_lock_shared($1)", ERASURE_LOCK)  # a batch in flight
            erasing = asyncio.ensure_future(erase(store))
            async with asyncio.timeout(60):
                while not await admin.fetchval(
                    "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND mode = 'ExclusiveLock')"
                ):
                    await asyncio.sleep(0.01)  # polling for the erasure to queue behind the batch, bounded
            assert not erasing.done()
            assert await admin.fetchval("SELECT count(*) FROM events WHERE actor_id = $1", PERSON) == 1
        receipt = await asyncio.wait_for(erasing, 60)
    finally:
        await batch.close()

    assert receipt.events == 1
    assert await admin.fetchval("SELECT count(*) FROM events WHERE actor_id = $1", PERSON) == 0

