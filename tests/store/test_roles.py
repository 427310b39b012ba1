"""The database itself keeps actor ids from the reader role, and raw events from being rewritten by ingest."""

from __future__ import annotations

import asyncpg
import pytest

from gateway.store.ingest import EventWriter
from gateway.store.pools import Store

from helpers import event, ingest, records, utc


@pytest.fixture(scope="module", autouse=True)
async def stored_events(store: Store) -> None:
    """Some data (and so a partition of events) for every privilege to be tried against."""
    await ingest(
        EventWriter(store.ingest),
        [
            event("video_published", "r1", utc(2025, 3, 1, 9), actor_id="c1"),
            event("view", "r2", utc(2025, 3, 1, 10)),
            event("like", "r3", utc(2025, 3, 1, 10)),
            event("share", "r4", utc(2025, 3, 1, 10), actor_id="u2", region="DE"),
            event("follow", "r5", utc(2025, 3, 1, 11), actor_id="u3"),
            # Five viewers: a release of views, with its cells.
            *(event("view", f"r-view-{n}", utc(2025, 3, 1, 12), actor_id=f"viewer-{n}", region="FR") for n in range(5)),
        ],
    )


async def denial(pool: asyncpg.Pool, statement: str) -> str:
    """How the server answered `statement`: the SQLSTATE it refused with, or 'allowed'."""
    async with pool.acquire() as conn:
        try:
            await conn.execute(statement)
        except asyncpg.PostgresError as exc:
            return str(exc.sqlstate)
    return "allowed"


INSUFFICIENT_PRIVILEGE = asyncpg.InsufficientPrivilegeError.sqlstate  # 42501


async def private_tables(admin: asyncpg.Connection) -> list[str]:
    """events and its partitions, event_ids, the ledger of people, everything not yet released (the
    live totals and cells, events waiting for a replay), sharers' consent, and any table with an
    actor_id column."""
    rows = await admin.fetch(
        """SELECT table_name FROM information_schema.tables
           WHERE table_schema = 'public'
             AND (table_name IN ('events', 'event_ids', 'live_totals', 'live_cells', 'arrivals_pending',
                                 'consent_changes', 'consent_settings')
                  OR table_name IN (SELECT table_name FROM information_schema.columns
                                    WHERE table_schema = 'public' AND column_name = 'actor_id'))
           ORDER BY table_name"""
    )
    return [row["table_name"] for row in rows]


async def test_reader_cannot_select_any_table_that_holds_actor_ids(store: Store, admin: asyncpg.Connection) -> None:
    tables = await private_tables(admin)
    assert {"events", "event_ids", "events_2025m03", "video_people", "follow_state", "live_totals", "live_cells", "consent_changes"} <= set(tables)

    answers = {table: await denial(store.reader, f'SELECT * FROM "{table}" LIMIT 1') for table in tables}

    assert answers == dict.fromkeys(tables, INSUFFICIENT_PRIVILEGE), "gateway_reader must get 42501 on every private table"


async def test_reader_cannot_select_any_actor_id_column(store: Store, admin: asyncpg.Connection) -> None:
    rows = await admin.fetch(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'actor_id'"
    )
    tables = sorted(row["table_name"] for row in rows)
    assert {"events", "events_2025m03", "video_people", "follow_state", "arrivals_pending"} <= set(tables)

    answers = {table: await denial(store.reader, f'SELECT actor_id FROM "{table}" LIMIT 1') for table in tables}

    assert answers == dict.fromkeys(tables, INSUFFICIENT_PRIVILEGE), "gateway_reader must get 42501 on every actor_id column"


# What the reader may read: videos, and the release history.
HISTORY_TABLES = ("videos", "releases", "release_cells")


@pytest.mark.parametrize("table", [pytest.param(table, id=table) for table in HISTORY_TABLES])
async def test_reader_can_select_the_history(store: Store, table: str) -> None:
    async with store.reader.acquire() as conn:
        rows = await conn.fetch(f"SELECT * FROM {table}")

    assert rows, f"{table} should hold the rows the fixture's events were released into"


# The column each table is keyed by first (for an UPDATE that would change nothing).
KEY_OF = {"videos": "video_id", "releases": "subject_id", "release_cells": "subject_id"}
WRITES = {
    "insert": "INSERT INTO {table} DEFAULT VALUES",
    "update": "UPDATE {table} SET {key} = {key}",
    "delete": "DELETE FROM {table}",
    "truncate": "TRUNCATE {table}",
}


@pytest.mark.parametrize(
    ("table", "write"),
    [pytest.param(table, write, id=f"{write}-{table}") for table in HISTORY_TABLES for write in WRITES],
)
async def test_reader_cannot_write_the_history(store: Store, admin: asyncpg.Connection, table: str, write: str) -> None:
    before = await admin.fetch(f"SELECT * FROM {table}")

    answer = await denial(store.reader, WRITES[write].format(table=table, key=KEY_OF[table]))

    assert answer == INSUFFICIENT_PRIVILEGE
    assert await admin.fetch(f"SELECT * FROM {table}") == before


async def test_reader_cannot_create_event_partitions(store: Store) -> None:
    assert await denial(store.reader, "SELECT ensure_events_partition('2030-01-01')") == INSUFFICIENT_PRIVILEGE


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("DELETE FROM {table}", id="delete"),
        pytest.param("UPDATE {table} SET actor_id = 'someone-else'", id="update"),
        pytest.param("TRUNCATE {table}", id="truncate"),
    ],
)
async def test_ingest_cannot_rewrite_events_or_their_partitions(store: Store, admin: asyncpg.Connection, statement: str) -> None:
    partitions = await admin.fetch("SELECT inhrelid::regclass::text AS name FROM pg_inherits WHERE inhparent = 'events'::regclass")
    tables = ["events", *sorted(row["name"] for row in partitions)]
    assert len(tables) > 1, "the fixture's events should have created a partition"
    before = await admin.fetchval("SELECT count(*) FROM events")

    answers = {table: await denial(store.ingest, statement.format(table=table)) for table in tables}

    assert answers == dict.fromkeys(tables, INSUFFICIENT_PRIVILEGE), "gateway_ingest must not rewrite raw events"
    assert await admin.fetchval("SELECT count(*) FROM events") == before


OAUTH_TABLES = ["oauth_token_families", "oauth_codes", "oauth_refresh_tokens"]


@pytest.mark.parametrize("table", ["apps", "app_authorizations", "app_documents", "privacy_spend", *OAUTH_TABLES])
@pytest.mark.parametrize("pool_name", ["reader", "private", "ingest"])
async def test_no_pool_role_can_touch_apps_grants_documents_or_the_budget_ledger(store: Store, pool_name: str, table: str) -> None:
    """Apps, grants and registered documents are the CLI's (owner connection); the budget ledger is spend_epsilon()'s."""
    pool = getattr(store, pool_name)
    answers = {verb: await denial(pool, statement) for verb, statement in {
        "select": f"SELECT * FROM {table} LIMIT 1",
        "delete": f"DELETE FROM {table}",
    }.items()}
    assert answers == {"select": INSUFFICIENT_PRIVILEGE, "delete": INSUFFICIENT_PRIVILEGE}


async def test_the_reader_may_call_only_the_functions_meant_for_it(store: Store) -> None:
    answers = {
        "spend_epsilon": await denial(store.reader, "SELECT * FROM spend_epsilon('a', 'u', current_date, '{}', '{}', 1)"),
        "app_grant": await denial(store.reader, "SELECT * FROM app_grant('a', 'u')"),
        "token_family_revoked": await denial(store.reader, "SELECT token_family_revoked(gen_random_uuid())"),
        "app_document": await denial(store.reader, "SELECT app_document('a', 'hash')"),
        "ensure_events_partition": await denial(store.reader, "SELECT ensure_events_partition(now())"),
        "apply_arrival": await denial(store.reader, "SELECT prepare_arrivals(); SELECT apply_arrival(now())"),
        "consented_sharers": await denial(store.reader, "SELECT * FROM consented_sharers('v1', 'c1', NULL, 10)"),
        "anonymous_shares_at": await denial(store.reader, "SELECT anonymous_shares_at('u1', now())"),
    }
    assert answers == {
        "spend_epsilon": "allowed",
        "app_grant": "allowed",
        "token_family_revoked": "allowed",
        "app_document": "allowed",
        "ensure_events_partition": INSUFFICIENT_PRIVILEGE,
        "apply_arrival": INSUFFICIENT_PRIVILEGE,
        "consented_sharers": "allowed",
        "anonymous_shares_at": INSUFFICIENT_PRIVILEGE,
    }


CONSENT_ROW = "INSERT INTO consent_changes (user_id, setting, value, changed_at, changed_by) VALUES ('u1', 'anonymous_shares', true, now(), 'user')"


@pytest.mark.parametrize(
    ("pool_name", "statement", "answer"),
    [
        pytest.param("ingest", "SELECT * FROM consent_changes LIMIT 1", "allowed", id="ingest-reads-share-settings"),
        pytest.param("ingest", CONSENT_ROW, INSUFFICIENT_PRIVILEGE, id="ingest-appends"),
        pytest.param("ingest", "UPDATE consent_changes SET value = false", INSUFFICIENT_PRIVILEGE, id="ingest-updates"),
        pytest.param("ingest", "DELETE FROM consent_changes", INSUFFICIENT_PRIVILEGE, id="ingest-deletes"),
        pytest.param("private", "UPDATE consent_changes SET value = false", INSUFFICIENT_PRIVILEGE, id="private-updates"),
        pytest.param("private", "TRUNCATE consent_changes", INSUFFICIENT_PRIVILEGE, id="private-truncates"),
        # Bound to the principal named by gateway.actor_id: unset, it may append for nobody.
        pytest.param("private", CONSENT_ROW, INSUFFICIENT_PRIVILEGE, id="private-appends-for-another"),
        pytest.param("private", "BEGIN; SELECT set_config('gateway.actor_id', 'u1', true); " + CONSENT_ROW + "; ROLLBACK",
                     "allowed", id="private-appends-its-own"),
    ],
)
async def test_the_consent_audit_is_appended_by_its_user_only_and_rewritten_by_no_pool(
    store: Store, pool_name: str, statement: str, answer: str
) -> None:
    assert await denial(getattr(store, pool_name), statement) == answer


@pytest.mark.parametrize(
    ("statement", "answer"),
    [
        pytest.param("SELECT app_id, name, redirect_uris, secret_sha256 FROM apps LIMIT 1", "allowed", id="read-clients"),
        pytest.param("UPDATE apps SET name = name", INSUFFICIENT_PRIVILEGE, id="rename-clients"),
        pytest.param("DELETE FROM apps", INSUFFICIENT_PRIVILEGE, id="delete-clients"),
        pytest.param("SELECT * FROM app_authorizations LIMIT 1", "allowed", id="read-grants"),
        pytest.param("DELETE FROM app_authorizations", INSUFFICIENT_PRIVILEGE, id="delete-grants"),
        pytest.param("SELECT * FROM oauth_refresh_tokens LIMIT 1", "allowed", id="read-refresh-tokens"),
        pytest.param("DELETE FROM oauth_refresh_tokens", INSUFFICIENT_PRIVILEGE, id="delete-refresh-tokens"),
        pytest.param("DELETE FROM oauth_token_families", INSUFFICIENT_PRIVILEGE, id="delete-families"),
        pytest.param("SELECT * FROM events LIMIT 1", INSUFFICIENT_PRIVILEGE, id="events"),
        pytest.param("SELECT * FROM video_people LIMIT 1", INSUFFICIENT_PRIVILEGE, id="ledger-of-people"),
        pytest.param("SELECT * FROM privacy_spend LIMIT 1", INSUFFICIENT_PRIVILEGE, id="budget-ledger"),
        pytest.param("SELECT * FROM videos LIMIT 1", INSUFFICIENT_PRIVILEGE, id="history"),
    ],
)
async def test_the_oauth_role_reads_clients_and_keeps_codes_and_tokens_and_nothing_else(store: Store, statement: str, answer: str) -> None:
    assert await denial(store.oauth, statement) == answer


# Every privilege each pool's role holds on a table, and nothing more: a grant added anywhere must be
# added here, on purpose. Row-level security narrows some of them further (below).
PRIVILEGES: dict[str, dict[str, set[str]]] = {
    "gateway_reader": {table: {"SELECT"} for table in ("videos", "catalog_version", "releases", "release_cells")},
    "gateway_private": {
        **{table: {"SELECT"} for table in ("events", "decision_log", "decision_bodies", "consent_settings")},
        # A user's own consent changes, bound to them by row-level security: appended, never changed or deleted.
        "consent_changes": {"SELECT", "INSERT"},
    },
    "gateway_ingest": {
        "events": {"SELECT", "INSERT"},
        "event_ids": {"SELECT", "INSERT"},
        "videos": {"SELECT", "INSERT", "UPDATE"},
        "catalog_version": {"SELECT", "UPDATE"},
        "release_settings": {"SELECT", "UPDATE"},
        "metric_dimensions": {"SELECT"},
        "releases": {"SELECT", "INSERT"},
        "release_cells": {"SELECT", "INSERT"},
        **{
            table: {"SELECT", "INSERT", "UPDATE", "DELETE"}
            for table in ("video_people", "video_viewers", "creator_viewers", "follow_state", "live_totals", "live_cells", "arrivals_pending")
        },
        "decision_bodies": {"SELECT", "INSERT"},
        "decision_log": {"INSERT"},
        # Each share is applied as its sharer chose (anonymous or not) when they made it.
        "consent_changes": {"SELECT"},
    },
    "gateway_oauth": {
        "apps": {"SELECT"},
        "app_authorizations": {"SELECT", "INSERT", "UPDATE"},
        "oauth_token_families": {"SELECT", "INSERT", "UPDATE"},
        "oauth_refresh_tokens": {"SELECT", "INSERT", "UPDATE"},
        "oauth_codes": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    },
    "gateway_eraser": {
        **{
            table: {"SELECT", "DELETE"}
            for table in (
                "events", "arrivals_pending", "video_people", "video_viewers", "creator_viewers", "follow_state", "privacy_spend",
                "consent_changes",
            )
        },
        **{table: {"SELECT", "UPDATE", "DELETE"} for table in ("live_totals", "live_cells")},
        "metric_dimensions": {"SELECT"},
        "app_authorizations": {"SELECT", "UPDATE"},
        "erasures": {"SELECT", "INSERT"},
    },
}


async def test_each_pool_role_holds_exactly_the_privileges_its_work_needs(admin: asyncpg.Connection) -> None:
    rows = await admin.fetch(
        """SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants
           WHERE grantee = ANY($1::text[]) AND table_schema = 'public'""",
        list(PRIVILEGES),
    )
    held: dict[str, dict[str, set[str]]] = {role: {} for role in PRIVILEGES}
    for row in rows:
        held[row["grantee"]].setdefault(row["table_name"], set()).add(row["privilege_type"])

    assert held == PRIVILEGES


@pytest.mark.parametrize(
    ("statement", "answer"),
    [
        pytest.param("SELECT * FROM events LIMIT 1", "allowed", id="own-events"),
        pytest.param("SELECT * FROM decision_log LIMIT 1", "allowed", id="decision-log"),
        pytest.param("SELECT * FROM video_people LIMIT 1", INSUFFICIENT_PRIVILEGE, id="ledger-of-people"),
        pytest.param("SELECT * FROM follow_state LIMIT 1", INSUFFICIENT_PRIVILEGE, id="ledger-of-followers"),
        pytest.param("SELECT * FROM video_viewers LIMIT 1", INSUFFICIENT_PRIVILEGE, id="ledger-of-viewers"),
        pytest.param("DELETE FROM video_viewers", INSUFFICIENT_PRIVILEGE, id="delete-ledger-of-viewers"),
        pytest.param("SELECT * FROM event_ids LIMIT 1", INSUFFICIENT_PRIVILEGE, id="event-ids"),
        pytest.param("SELECT * FROM videos LIMIT 1", INSUFFICIENT_PRIVILEGE, id="videos"),
        pytest.param("DELETE FROM events", INSUFFICIENT_PRIVILEGE, id="delete-events"),
        pytest.param("DELETE FROM video_people", INSUFFICIENT_PRIVILEGE, id="delete-ledger"),
        pytest.param("SELECT * FROM erasures LIMIT 1", INSUFFICIENT_PRIVILEGE, id="erasures"),
    ],
)
async def test_the_private_role_reads_own_events_and_the_decision_log_and_erases_nothing(store: Store, statement: str, answer: str) -> None:
    """`me` and `decisionLog` need no more; erasure has a role of its own."""
    assert await denial(store.private, statement) == answer


@pytest.mark.parametrize(
    ("statement", "answer"),
    [
        pytest.param("SELECT * FROM releases LIMIT 1", INSUFFICIENT_PRIVILEGE, id="history"),
        pytest.param("SELECT * FROM decision_log LIMIT 1", INSUFFICIENT_PRIVILEGE, id="decision-log"),
        pytest.param("SELECT * FROM event_ids LIMIT 1", INSUFFICIENT_PRIVILEGE, id="event-ids"),
        pytest.param("INSERT INTO events DEFAULT VALUES", INSUFFICIENT_PRIVILEGE, id="insert-events"),
        pytest.param("UPDATE erasures SET reason = 'changed'", INSUFFICIENT_PRIVILEGE, id="rewrite-erasures"),
        pytest.param("DELETE FROM erasures", INSUFFICIENT_PRIVILEGE, id="forget-erasures"),
        pytest.param("SELECT * FROM apps LIMIT 1", INSUFFICIENT_PRIVILEGE, id="apps"),
        pytest.param("SELECT ensure_events_partition(now())", INSUFFICIENT_PRIVILEGE, id="create-partitions"),
        pytest.param("SELECT * FROM drop_events_partitions_before('2000-01-01')", "allowed", id="retention"),
    ],
)
async def test_the_eraser_reaches_what_erasure_and_retention_need_and_nothing_else(store: Store, statement: str, answer: str) -> None:
    assert await denial(store.eraser, statement) == answer


# The tables that hold a person's rows, each with a person the fixture's events give a row there.
PERSON_TABLES = {"events": "u2", "arrivals_pending": "u2", "video_people": "u2", "video_viewers": "viewer-1", "follow_state": "u3"}


@pytest.fixture(scope="module")
async def held_event(store: Store) -> None:
    """An event a backfill holds, waiting for a replay, so that arrivals_pending has a row."""
    await EventWriter(store.ingest).hold(records([event("view", "r-held", utc(2025, 2, 1, 9), video_id="v-held", actor_id="u2")]))


async def rows_seen_by_the_eraser(store: Store, table: str, person: str | None) -> list[str]:
    async with store.eraser.acquire() as conn, conn.transaction():
        if person is not None:
            await conn.execute("SELECT set_config('gateway.actor_id', $1, true)", person)
        return [row[0] for row in await conn.fetch(f"SELECT DISTINCT actor_id FROM {table}")]


@pytest.mark.parametrize(("table", "person"), list(PERSON_TABLES.items()))
async def test_the_eraser_sees_nobodys_rows_until_bound_to_a_person_and_then_theirs_only(
    store: Store, admin: asyncpg.Connection, held_event: None, table: str, person: str
) -> None:
    assert await admin.fetchval(f"SELECT count(DISTINCT actor_id) FROM {table}") >= 1

    unbound = await rows_seen_by_the_eraser(store, table, None)
    bound = await rows_seen_by_the_eraser(store, table, person)

    assert unbound == []
    assert bound == [person]


async def test_the_eraser_deletes_only_the_rows_of_the_person_it_is_bound_to(store: Store, admin: asyncpg.Connection, held_event: None) -> None:
    theirs = await admin.fetchval("SELECT count(*) FROM events WHERE actor_id = 'u2'")
    async with store.eraser.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SELECT set_config('gateway.actor_id', 'u2', true)")
            status = await conn.execute("DELETE FROM events")
        finally:
            await transaction.rollback()  # other tests of this module read these rows

    assert theirs >= 2 and status == f"DELETE {theirs}"
