"""The `gateway` command against the module's database, and the demo platform it loads."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import json
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest
from typer.testing import CliRunner, Result

from gateway.auth import Principal, PrincipalKind, authenticate
from gateway.cli import app
from gateway.demo import DemoPlatform
from gateway.ingest.ndjson import parse_objects
from gateway.store.migrate import migrations

from conftest import SECRET, TEMPLATE, drop_database, fresh_database, with_database

POLICY_DIR = Path(__file__).parent.parent / "policies"
# Long enough for HS256: PyJWT warns (an error here) on a key under 32 bytes.
TOKEN_SECRET = "cli-tests-token-secret-" + "0123456789abcdef" * 2
# Two hours ago, well inside the lateness window: these events arrive as live ones.
RECENT_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
AT = RECENT_HOUR.strftime("%Y-%m-%dT%H:") + "{minute:02d}:00Z"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"GATEWAY_DATABASE_URL": database_url, "GATEWAY_SECRET": SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
async def empty_store_env(server_url: str, template_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """Like `env`, but naming a migrated database of this test's own that holds no events."""
    name, url = await fresh_database(server_url, TEMPLATE)
    yield {"GATEWAY_DATABASE_URL": url, "GATEWAY_SECRET": SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    await drop_database(server_url, name)


async def gateway(*args: str, env: dict[str, str], stdin: bytes | None = None) -> Result:
    # The commands call asyncio.run(); they run in a thread of their own, outside the test's event loop.
    def invoke() -> Result:
        return CliRunner().invoke(app, list(args), input=stdin, env=env)

    return await asyncio.to_thread(invoke)


def said(result: Result) -> str:
    """What the command told its user (stderr), with rich's line wrapping undone."""
    return " ".join(result.stderr.split())


def failed_in_one_line(result: Result, status: int) -> str:
    """The line saying why a command failed (its last, after any progress bar), once it is checked
    that the command exited with `status` rather than a traceback."""
    assert result.exit_code == status, result.output
    assert isinstance(result.exception, SystemExit), "a traceback, not an exit"
    assert "Traceback" not in result.output
    return result.stderr.strip().splitlines()[-1]


def events(prefix: str, count: int) -> list[dict[str, Any]]:
    published = {"event_id": f"{prefix}-pub", "type": "video_published", "occurred_at": AT.format(minute=0),
                 "video_id": f"{prefix}-v", "creator_id": "u1", "actor_id": "u1"}
    views = [
        {"event_id": f"{prefix}-view-{n}", "type": "view", "occurred_at": AT.format(minute=n % 60), "video_id": f"{prefix}-v",
         "creator_id": "u1", "actor_id": f"u{n + 2}", "watch_ms": 1000 * n, "region": "DE"}
        for n in range(1, count)
    ]
    return [published, *views]


def ndjson_file(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


async def stored(admin: asyncpg.Connection, prefix: str) -> int:
    count: int = await admin.fetchval("SELECT count(*) FROM events WHERE event_id LIKE $1 || '%'", prefix)
    return count


async def test_ingest_file_stores_its_events_and_prints_totals(
    env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path
) -> None:
    path = ndjson_file(tmp_path / "good.ndjson", events("cli-good", 5))

    result = await gateway("ingest", str(path), env=env)

    assert result.exit_code == 0, result.output
    assert "stored 5 new events (0 already present)" in said(result)
    assert await stored(admin, "cli-good-") == 5
    assert await admin.fetchval("SELECT events FROM live_totals WHERE subject_id = 'cli-good-v' AND metric = 'v'") == 4


async def test_ingest_same_file_twice_stores_it_once(env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path) -> None:
    path = ndjson_file(tmp_path / "twice.ndjson", events("cli-twice", 3))
    first = await gateway("ingest", str(path), env=env)

    again = await gateway("ingest", str(path), env=env)

    assert "stored 3 new events (0 already present)" in said(first)
    assert again.exit_code == 0, again.output
    assert "stored 0 new events (3 already present)" in said(again)
    assert await stored(admin, "cli-twice-") == 3


def nul_comment(view: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": f"{view['event_id']}-comment", "type": "comment", "occurred_at": view["occurred_at"], "video_id": view["video_id"],
            "creator_id": "u1", "actor_id": "u2", "text": "a\u0000b"}


@pytest.mark.parametrize(
    ("prefix", "count", "bad_lines", "variables", "expected"),
    [
        pytest.param("cli-bad", 5, {3: lambda line: {**line, "region": "XX"}}, {},
                     ["1 invalid event line(s)", "line 3, field region: must be an ISO 3166-1 alpha-2 country code"], id="bad-line-3"),
        pytest.param("cli-late", 40, {35: lambda line: {**line, "watch_ms": -1}}, {"GATEWAY_INGEST_BATCH_SIZE": "10"},
                     ["line 35, field watch_ms"], id="bad-line-in-a-later-batch"),
        # Postgres text cannot hold NUL: unless the check pass refuses what the store would, the
        # batches before the bad one (50,000 events here) are stored by the time it is met.
        pytest.param("cli-nul", 70_001, {55_555: nul_comment}, {},
                     ["1 invalid event line(s)", "line 55555, field text: must not contain a NUL character (\\u0000)"], id="nul-in-a-comment-of-70001-lines"),
        pytest.param("cli-types", 4, {2: lambda line: {**line, "occurred_at": int(RECENT_HOUR.timestamp())}, 4: lambda line: {**line, "watch_ms": "5"}}, {},
                     ["2 invalid event line(s)", "line 2, field occurred_at: must be an RFC 3339 date-time string",
                      "line 4, field watch_ms: must be a JSON integer"], id="values-of-another-json-type"),
    ],
)
async def test_ingest_file_with_a_bad_line_exits_2_and_stores_nothing(
    env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path, prefix: str, count: int,
    bad_lines: dict[int, Callable[[dict[str, Any]], dict[str, Any]]], variables: dict[str, str], expected: list[str],
) -> None:
    lines = events(prefix, count)
    for line_no, spoil in bad_lines.items():
        lines[line_no - 1] = spoil(lines[line_no - 1])
    path = ndjson_file(tmp_path / "bad.ndjson", lines)

    result = await gateway("ingest", str(path), env={**env, **variables})

    assert result.exit_code == 2, result.output
    for told in expected:
        assert told in said(result)
    assert await stored(admin, f"{prefix}-") == 0


# Ends the connection of whoever inserts the event id given, as an administrator ending it would.
CUT_OFF_AT = """
CREATE FUNCTION cut_off() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_terminate_backend(pg_backend_pid());
    RETURN NEW;
END
$$;
CREATE TRIGGER cut_off BEFORE INSERT ON event_ids FOR EACH ROW WHEN (NEW.event_id = '{event_id}') EXECUTE FUNCTION cut_off();
"""


async def test_ingest_store_failing_part_way_names_the_lines_stored_and_resuming_from_there_stores_the_rest(
    empty_store_env: dict[str, str], tmp_path: Path
) -> None:
    lines = events("cli-cut", 40)
    path = ndjson_file(tmp_path / "cut.ndjson", lines)
    env = {**empty_store_env, "GATEWAY_INGEST_BATCH_SIZE": "10"}
    conn = await asyncpg.connect(env["GATEWAY_DATABASE_URL"])
    try:
        await conn.execute(CUT_OFF_AT.format(event_id=lines[24]["event_id"]))  # line 25, in the third batch

        result = await gateway("ingest", str(path), env=env)

        report = failed_in_one_line(result, 4)
        assert report.startswith("ingest stopped at lines 21–30: the event store is unreachable")
        assert f"Lines 1–20 are stored; to resume from line 21: tail -n +21 {path} | gateway ingest -" in report
        stored_ids = {row["event_id"] for row in await conn.fetch("SELECT event_id FROM events")}
        assert {line["event_id"] for line in lines[:20]} <= stored_ids
        assert not {line["event_id"] for line in lines[20:30]} & stored_ids

        await conn.execute("DROP TRIGGER cut_off ON event_ids")
        resumed = await gateway("ingest", "-", env=env, stdin=b"".join(json.dumps(line).encode() + b"\n" for line in lines[20:]))

        assert resumed.exit_code == 0, resumed.output
        assert await conn.fetchval("SELECT count(*) FROM events") == 40
        assert await conn.fetchval("SELECT events FROM live_totals WHERE subject_id = 'cli-cut-v' AND metric = 'v'") == 39
    finally:
        await conn.close()


async def test_demo_data_store_failing_part_way_says_what_is_stored_in_one_line(empty_store_env: dict[str, str]) -> None:
    env = {**empty_store_env, "GATEWAY_INGEST_BATCH_SIZE": "10"}
    conn = await asyncpg.connect(env["GATEWAY_DATABASE_URL"])
    try:
        await conn.execute(CUT_OFF_AT.format(event_id="demo-31-25"))

        result = await gateway("demo-data", "--users", "20", "--videos", "5", "--events", "40", "--seed", "31", env=env)

        report = failed_in_one_line(result, 4)
        assert report.startswith("lines 21–30 could not be stored (the event store is unreachable")
        assert "); lines 1–20 are stored; running the command again is safe" in report
        assert await conn.fetchval("SELECT count(*) FROM event_ids WHERE event_id = 'demo-31-25'") == 0
    finally:
        await conn.close()


async def test_ingest_many_bad_lines_lists_100_and_counts_the_rest(
    env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path
) -> None:
    path = ndjson_file(tmp_path / "many.ndjson", [{**line, "region": "de"} for line in events("cli-many", 130)])

    result = await gateway("ingest", str(path), env=env)

    assert result.exit_code == 2
    assert "130 invalid event line(s)" in said(result)
    assert "line 100, field region" in said(result)
    assert "line 101," not in said(result)
    assert "… and 30 more" in said(result)
    assert await stored(admin, "cli-many-") == 0


async def test_ingest_from_stdin_stores_its_events(env: dict[str, str], admin: asyncpg.Connection) -> None:
    body = "".join(json.dumps(line) + "\n" for line in events("cli-stdin", 4)).encode()

    result = await gateway("ingest", "-", env=env, stdin=body)

    assert result.exit_code == 0, result.output
    assert "stored 4 new events (0 already present)" in said(result)
    assert await stored(admin, "cli-stdin-") == 4


async def test_ingest_from_stdin_with_bad_line_exits_2(env: dict[str, str], admin: asyncpg.Connection) -> None:
    body = b"".join(json.dumps(line).encode() + b"\n" for line in events("cli-stdin-bad", 2)) + b"{not json\n"

    result = await gateway("ingest", "-", env=env, stdin=body)

    assert result.exit_code == 2
    assert "line 3: not valid JSON" in said(result)
    assert await stored(admin, "cli-stdin-bad-") == 0


async def test_ingest_missing_file_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    result = await gateway("ingest", str(tmp_path / "absent.ndjson"), env=env)

    assert result.exit_code == 2
    assert "no such file" in said(result)


LAST_SUMMER = "2025-07-01T{hour:02d}:{minute:02d}:00Z"


def old_video(prefix: str, viewers_by_hour: dict[int, int]) -> list[dict[str, Any]]:
    """A video published on 2025-07-01 at 08:00 and, in each hour given, that many new viewers."""
    video = f"{prefix}-v"
    lines = [{"event_id": f"{prefix}-pub", "type": "video_published", "occurred_at": LAST_SUMMER.format(hour=8, minute=0),
              "video_id": video, "creator_id": "u1", "actor_id": "u1"}]
    for hour, viewers in viewers_by_hour.items():
        lines += [{"event_id": f"{prefix}-view-{hour}-{n}", "type": "view", "occurred_at": LAST_SUMMER.format(hour=hour, minute=n),
                   "video_id": video, "creator_id": "u1", "actor_id": f"{prefix}-viewer-{hour}-{n}", "watch_ms": 1000}
                  for n in range(viewers)]
    return lines


async def test_ingest_refuses_an_event_older_than_the_lateness_window(
    env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path
) -> None:
    lines = events("cli-old", 3)
    lines[1] = {**lines[1], "occurred_at": LAST_SUMMER.format(hour=9, minute=0)}

    result = await gateway("ingest", str(ndjson_file(tmp_path / "old.ndjson", lines)), env=env)

    assert result.exit_code == 2
    assert "line 2, field occurred_at: must not be more than 7 days in the past (the lateness window)" in said(result)
    assert "--backfill" in said(result)
    assert await stored(admin, "cli-old-") == 0


async def test_ingest_backfill_makes_a_new_videos_history_in_order_of_occurrence(
    env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path
) -> None:
    """Five new viewers at 09:00, five at 10:00, two at 11:00: a release at the end of each of the
    first two hours (as if those viewers had arrived then), the last two held back."""
    path = ndjson_file(tmp_path / "history.ndjson", old_video("cli-backfill", {9: 5, 10: 5, 11: 2}))

    result = await gateway("ingest", "--backfill", str(path), env=env)

    assert result.exit_code == 0, result.output
    # And as many of the creator's audience, the same viewers (migration 0023).
    assert "made 4 releases of the backfilled history" in said(result)
    rows = await admin.fetch("SELECT made_at, people, events FROM releases WHERE subject_id = 'cli-backfill-v' AND metric = 'v' ORDER BY seq")
    assert [(row["made_at"].hour, row["people"], row["events"]) for row in rows] == [(9, 5, 5), (10, 10, 10)]
    assert all(row["made_at"].date().isoformat() == "2025-07-01" for row in rows)
    assert await admin.fetchval("SELECT count(*) FROM arrivals_pending") == 0


async def test_ingest_backfill_refuses_old_events_about_a_video_that_has_a_history(
    env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path
) -> None:
    first = await gateway("ingest", "--backfill", str(ndjson_file(tmp_path / "first.ndjson", old_video("cli-rewrite", {9: 5}))), env=env)
    assert first.exit_code == 0, first.output
    before = await stored(admin, "cli-rewrite-")
    later = old_video("cli-rewrite", {7: 6})[1:]  # six more viewers, in an hour before the release

    result = await gateway("ingest", "--backfill", str(ndjson_file(tmp_path / "later.ndjson", later)), env=env)

    assert result.exit_code == 2
    assert "line 1, field occurred_at: video cli-rewrite-v already has a release history" in said(result)
    assert "6 invalid event line(s)" in said(result)
    assert await stored(admin, "cli-rewrite-") == before


async def test_demo_data_stores_the_events_asked_for_and_is_idempotent(env: dict[str, str], admin: asyncpg.Connection) -> None:
    args = ("demo-data", "--users", "50", "--videos", "10", "--events", "2000", "--seed", "7")

    first = await gateway(*args, env=env)
    count_after_first = await stored(admin, "demo-7-")
    again = await gateway(*args, env=env)

    assert first.exit_code == 0, first.output
    assert "stored 2,000 new events (0 already present)" in said(first)
    assert count_after_first == 2000
    assert await admin.fetchval("SELECT count(*) FROM videos WHERE video_id ~ '^v([1-9]|10)$'") == 10
    assert again.exit_code == 0, again.output
    assert "stored 0 new events (2,000 already present)" in said(again)
    assert await stored(admin, "demo-7-") == 2000


async def test_demo_data_if_empty_does_nothing_on_a_store_with_data(env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path) -> None:
    await gateway("ingest", str(ndjson_file(tmp_path / "some.ndjson", events("cli-some", 2))), env=env)
    before = await admin.fetchval("SELECT count(*) FROM events")

    result = await gateway("demo-data", "--users", "20", "--videos", "5", "--events", "100", "--seed", "8", "--if-empty", env=env)

    assert result.exit_code == 0, result.output
    assert "the store already holds data; demo data not loaded" in said(result)
    assert await stored(admin, "demo-8-") == 0
    assert await admin.fetchval("SELECT count(*) FROM events") == before


async def test_demo_data_if_empty_loads_an_empty_store(empty_store_env: dict[str, str]) -> None:
    result = await gateway("demo-data", "--users", "20", "--videos", "5", "--events", "100", "--seed", "9", "--if-empty", env=empty_store_env)

    assert result.exit_code == 0, result.output
    assert "stored 100 new events (0 already present)" in said(result)
    conn = await asyncpg.connect(empty_store_env["GATEWAY_DATABASE_URL"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE event_id LIKE 'demo-9-%'") == 100
    finally:
        await conn.close()


async def test_demo_data_if_empty_does_nothing_on_a_store_with_only_follows(empty_store_env: dict[str, str], tmp_path: Path) -> None:
    follow = {"event_id": "cli-follow-1", "type": "follow", "occurred_at": AT.format(minute=0), "creator_id": "u1", "actor_id": "u2"}
    ingested = await gateway("ingest", str(ndjson_file(tmp_path / "follow.ndjson", [follow])), env=empty_store_env)
    assert ingested.exit_code == 0, ingested.output

    result = await gateway("demo-data", "--users", "20", "--videos", "5", "--events", "100", "--seed", "9", "--if-empty", env=empty_store_env)

    assert "the store already holds data; demo data not loaded" in said(result)


async def test_demo_data_with_fewer_events_than_videos_exits_2(env: dict[str, str], admin: asyncpg.Connection) -> None:
    result = await gateway("demo-data", "--users", "20", "--videos", "50", "--events", "10", "--seed", "10", env=env)

    assert result.exit_code == 2
    assert "--events must be at least --videos" in said(result)
    assert await stored(admin, "demo-10-") == 0


async def test_migrate_applies_every_migration_then_none(server_url: str, tmp_path: Path) -> None:
    name, url = await fresh_database(server_url, None)
    env = {"GATEWAY_DATABASE_URL": url, "GATEWAY_SECRET": SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    try:
        first = await gateway("migrate", env=env)
        again = await gateway("migrate", env=env)
    finally:
        await drop_database(server_url, name)

    assert first.exit_code == 0, first.output
    assert f"applied: {', '.join(f'{m.version:04d}_{m.name}' for m in migrations())}" in said(first)
    assert again.exit_code == 0, again.output
    assert "schema is up to date" in said(again)


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        pytest.param("service", "ingest-bot", id="service"),
        pytest.param("user", "u42", id="user"),
        pytest.param("compliance", "dpo", id="compliance"),
    ],
)
async def test_token_create_prints_a_token_that_authenticates(kind: str, subject: str, tmp_path: Path) -> None:
    env = {"GATEWAY_SECRET": TOKEN_SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")}

    result = await gateway("token", "create", "--kind", kind, "--subject", subject, env=env)

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert authenticate(f"Bearer {token}", TOKEN_SECRET) == Principal(PrincipalKind(kind), subject)


def test_token_create_help_offers_only_the_kinds_it_accepts() -> None:
    result = CliRunner().invoke(app, ["token", "create", "--help"])

    assert result.exit_code == 0
    assert "[user|compliance|service]" in result.stdout.replace("<", "[").replace(">", "]")
    assert "anonymous" not in result.stdout
    assert "|app" not in result.stdout and "app|" not in result.stdout


async def test_token_create_ttl_sets_the_expiry(tmp_path: Path) -> None:
    env = {"GATEWAY_SECRET": TOKEN_SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")}

    result = await gateway("token", "create", "--kind", "service", "--subject", "ingest-bot", "--ttl", "120", env=env)

    claims = jwt.decode(result.stdout.strip(), TOKEN_SECRET, algorithms=["HS256"], options={"verify_iss": False})
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--kind", "app", "--subject", "a1"), id="app"),
        pytest.param(("--kind", "anonymous", "--subject", "a1"), id="anonymous"),
        pytest.param(("--kind", "admin", "--subject", "a1"), id="unknown-kind"),
        pytest.param(("--kind", "service", "--subject", "bot", "--ttl", "0"), id="zero-ttl"),
        pytest.param(("--kind", "service"), id="no-subject"),
    ],
)
async def test_token_create_refuses_and_exits_2(args: tuple[str, ...], tmp_path: Path) -> None:
    env = {"GATEWAY_SECRET": TOKEN_SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")}

    result = await gateway("token", "create", *args, env=env)

    assert result.exit_code == 2
    assert result.stdout == ""


# Third-party apps: registered, then authorized by a user for some scopes.


@pytest.fixture
def apps_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "GATEWAY_POLICY_DIR": str(POLICY_DIR)}


async def created_app(apps_env: dict[str, str], name: str) -> str:
    result = await gateway("apps", "create", "--name", name, env=apps_env)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


async def test_apps_create_prints_an_id_that_is_stored(apps_env: dict[str, str], admin: asyncpg.Connection) -> None:
    app_id = await created_app(apps_env, "Acme Insights")

    assert re.fullmatch(r"app_[0-9a-f]{16}", app_id)
    assert await admin.fetchval("SELECT name FROM apps WHERE app_id = $1", app_id) == "Acme Insights"


async def test_apps_create_migrates_a_fresh_database_first(server_url: str, tmp_path: Path) -> None:
    name, url = await fresh_database(server_url, None)
    try:
        app_id = await created_app({"GATEWAY_DATABASE_URL": url, "GATEWAY_SECRET": SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")}, "First")
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT name FROM apps WHERE app_id = $1", app_id) == "First"
        finally:
            await conn.close()
    finally:
        await drop_database(server_url, name)


async def test_apps_create_gives_each_app_its_own_id(apps_env: dict[str, str]) -> None:
    assert await created_app(apps_env, "Same Name") != await created_app(apps_env, "Same Name")


async def test_apps_create_with_empty_name_exits_2(apps_env: dict[str, str], admin: asyncpg.Connection) -> None:
    before = await admin.fetchval("SELECT count(*) FROM apps")

    result = await gateway("apps", "create", "--name", " ", env=apps_env)

    assert result.exit_code == 2
    assert "--name must not be empty" in said(result)
    assert result.stdout == ""
    assert await admin.fetchval("SELECT count(*) FROM apps") == before


async def test_apps_create_with_redirect_uris_prints_a_client_secret_kept_only_as_a_hash(
    apps_env: dict[str, str], admin: asyncpg.Connection
) -> None:
    result = await gateway(
        "apps", "create", "--name", "Acme", "--redirect-uri", "https://acme.example/cb", "--redirect-uri", "http://localhost:3000/cb", env=apps_env
    )
    printed = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    row = await admin.fetchrow("SELECT client_type, secret_sha256, redirect_uris FROM apps WHERE app_id = $1", printed["client_id"])

    assert result.exit_code == 0, result.output
    assert "shown this once" in said(result)
    assert row["client_type"] == "confidential"
    assert row["secret_sha256"] == hashlib.sha256(printed["client_secret"].encode()).digest()
    assert printed["client_secret"].encode() not in json.dumps([dict(r) for r in await admin.fetch("SELECT app_id, name, redirect_uris FROM apps")]).encode()
    assert row["redirect_uris"] == ["https://acme.example/cb", "http://localhost:3000/cb"]


async def test_apps_create_public_client_has_no_secret(apps_env: dict[str, str], admin: asyncpg.Connection) -> None:
    result = await gateway("apps", "create", "--name", "Pocket", "--redirect-uri", "http://127.0.0.1:8123/cb", "--public", env=apps_env)
    client_id = result.stdout.strip().removeprefix("client_id: ")

    assert result.exit_code == 0, result.output
    assert "client_secret" not in result.stdout
    assert tuple(await admin.fetchrow("SELECT client_type, secret_sha256 FROM apps WHERE app_id = $1", client_id)) == ("public", None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--redirect-uri", "http://acme.example/cb"), "must use https", id="plain-http-elsewhere"),
        pytest.param(("--redirect-uri", "https://acme.example/cb#x"), "must not have a fragment", id="fragment"),
        pytest.param(("--redirect-uri", "/cb"), "absolute https:// URI", id="relative"),
        pytest.param(("--redirect-uri", "javascript:alert(1)"), "absolute https:// URI", id="javascript"),
        pytest.param(("--public",), "--public needs at least one --redirect-uri", id="public-without-uri"),
        pytest.param(("--redirect-uri", "https://acme.example/cb\nSet-Cookie: x=1"), "no spaces or control characters", id="newline"),
        pytest.param(("--redirect-uri", " https://acme.example/cb"), "no spaces or control characters", id="leading-space"),
    ],
)
async def test_apps_create_refuses_bad_redirect_uris_and_stores_nothing(
    apps_env: dict[str, str], admin: asyncpg.Connection, args: tuple[str, ...], message: str
) -> None:
    before = await admin.fetchval("SELECT count(*) FROM apps")

    result = await gateway("apps", "create", "--name", "Acme", *args, env=apps_env)

    assert result.exit_code == 2
    assert message in said(result)
    assert await admin.fetchval("SELECT count(*) FROM apps") == before


async def test_keys_rotate_keeps_the_old_key_for_verification_and_signs_with_the_new(tmp_path: Path) -> None:
    env = {"GATEWAY_SECRET": TOKEN_SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")}

    first = await gateway("keys", "rotate", env=env)
    second = await gateway("keys", "rotate", env=env)
    kept = json.loads((tmp_path / "data" / "keys.json").read_text())["keys"]
    mode = (tmp_path / "data" / "keys.json").stat().st_mode & 0o777

    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert first.stdout.strip() != second.stdout.strip()
    signing = [key["jwk"]["kid"] for key in kept if key["retired_at"] is None]
    assert signing == [second.stdout.strip()]
    assert first.stdout.strip() in {key["jwk"]["kid"] for key in kept}, "a retired key stays until its tokens expire"
    assert mode == 0o600


async def test_keys_rotate_refuses_a_key_file_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keys.json").write_text("not json")

    result = await gateway("keys", "rotate", env={"GATEWAY_SECRET": TOKEN_SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")})

    assert result.exit_code == 3
    assert "not JSON" in said(result)
    assert (tmp_path / "data" / "keys.json").read_text() == "not json", "nothing is overwritten"


async def test_apps_authorize_prints_a_token_that_acts_for_the_user_with_the_granted_scopes(
    apps_env: dict[str, str], admin: asyncpg.Connection
) -> None:
    app_id = await created_app(apps_env, "Acme Insights")

    result = await gateway("apps", "authorize", "--app", app_id, "--user", "u42", "--scopes", "stats,insights", env=apps_env)

    assert result.exit_code == 0, result.output
    principal = authenticate(f"Bearer {result.stdout.strip()}", SECRET)
    assert principal == Principal(PrincipalKind.APP, "u42", frozenset({"stats", "insights"}), app_id=app_id)
    stored_scopes = await admin.fetchval("SELECT scopes FROM app_authorizations WHERE app_id = $1 AND user_id = 'u42'", app_id)
    assert stored_scopes == ["insights", "stats"]


async def test_apps_authorize_again_replaces_the_scopes(apps_env: dict[str, str], admin: asyncpg.Connection) -> None:
    app_id = await created_app(apps_env, "Acme Insights")
    await gateway("apps", "authorize", "--app", app_id, "--user", "u7", "--scopes", "stats,insights", env=apps_env)

    again = await gateway("apps", "authorize", "--app", app_id, "--user", "u7", "--scopes", "activity", env=apps_env)

    assert again.exit_code == 0, again.output
    assert authenticate(f"Bearer {again.stdout.strip()}", SECRET).scopes == frozenset({"activity"})
    rows = await admin.fetch("SELECT scopes FROM app_authorizations WHERE app_id = $1", app_id)
    assert [row["scopes"] for row in rows] == [["activity"]]


@pytest.mark.parametrize(
    ("ttl_args", "seconds"),
    [pytest.param((), 30 * 24 * 3600, id="default-30-days"), pytest.param(("--ttl", "120"), 120, id="ttl")],
)
async def test_apps_authorize_sets_the_token_expiry(apps_env: dict[str, str], ttl_args: tuple[str, ...], seconds: int) -> None:
    app_id = await created_app(apps_env, "Acme Insights")

    result = await gateway("apps", "authorize", "--app", app_id, "--user", "u42", "--scopes", "stats", *ttl_args, env=apps_env)

    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"], options={"verify_iss": False})
    assert claims["exp"] - claims["iat"] == seconds


@pytest.mark.parametrize(
    ("app_id", "user_id", "scopes", "reason"),
    [
        pytest.param("app_0000000000000000", "u42", "stats", "no such app: app_0000000000000000", id="unknown-app"),
        pytest.param(None, "u42", "stats,sharers", "unknown scope(s): sharers", id="unknown-scope"),
        pytest.param(None, "u42", "", "--scopes must name at least one scope", id="empty-scopes"),
        pytest.param(None, "u42", " , ", "--scopes must name at least one scope", id="blank-scopes"),
        pytest.param(None, "u 42", "stats", "--user 'u 42' is not a user id", id="bad-user-id"),
    ],
)
async def test_apps_authorize_refuses_and_stores_nothing(
    apps_env: dict[str, str], admin: asyncpg.Connection, app_id: str | None, user_id: str, scopes: str, reason: str
) -> None:
    app_id = app_id or await created_app(apps_env, "Refused")
    before = await admin.fetchval("SELECT count(*) FROM app_authorizations")

    result = await gateway("apps", "authorize", "--app", app_id, "--user", user_id, "--scopes", scopes, env=apps_env)

    assert result.exit_code == 2
    assert reason in said(result)
    assert result.stdout == ""
    assert await admin.fetchval("SELECT count(*) FROM app_authorizations") == before


async def test_apps_revoke_empties_the_grant_and_the_next_token_is_of_a_new_generation(
    apps_env: dict[str, str], admin: asyncpg.Connection
) -> None:
    app_id = await created_app(apps_env, "Acme Insights")
    first = await gateway("apps", "authorize", "--app", app_id, "--user", "u42", "--scopes", "stats", env=apps_env)

    revoked = await gateway("apps", "revoke", "--app", app_id, "--user", "u42", env=apps_env)
    again = await gateway("apps", "authorize", "--app", app_id, "--user", "u42", "--scopes", "stats", env=apps_env)

    assert revoked.exit_code == 0, revoked.output
    assert f"u42 no longer authorizes {app_id}" in said(revoked)
    generations = [authenticate(f"Bearer {result.stdout.strip()}", SECRET).grant_generation for result in (first, again)]
    assert generations == [0, 1]
    row = await admin.fetchrow("SELECT scopes, generation, revoked_at FROM app_authorizations WHERE app_id = $1", app_id)
    assert (row["scopes"], row["generation"], row["revoked_at"] is not None) == (["stats"], 1, True)


async def test_apps_revoke_of_a_grant_never_given_exits_2(apps_env: dict[str, str]) -> None:
    app_id = await created_app(apps_env, "Acme Insights")

    result = await gateway("apps", "revoke", "--app", app_id, "--user", "u42", env=apps_env)

    assert result.exit_code == 2
    assert f"u42 has not authorized {app_id}" in said(result)


# Documents registered for an app: checked against the schema, named by the hash of their exact text.

COUNTS_DOCUMENT = (
    "query VideoCounts($id: ID!) { video(id: $id) { id stats { views likes } } }\r\n"
    "query CreatorTotals($id: ID!) { creator(id: $id) { ...Totals } }\r\n"
    "fragment Totals on Creator { totals { videos views } }\r\n"
)


async def registered_rows(admin: asyncpg.Connection, app_id: str) -> list[asyncpg.Record]:
    return await admin.fetch("SELECT sha256, document, operation_names FROM app_documents WHERE app_id = $1", app_id)


async def test_apps_documents_add_prints_the_hash_of_the_files_exact_text_and_stores_it(
    apps_env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path
) -> None:
    app_id = await created_app(apps_env, "Acme Insights")
    path = tmp_path / "counts.graphql"
    path.write_bytes(COUNTS_DOCUMENT.encode())

    result = await gateway("apps", "documents", "add", "--app", app_id, str(path), env=apps_env)

    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(COUNTS_DOCUMENT.encode()).hexdigest()  # line endings and all
    assert result.stdout == f"{digest}\n"
    assert f"registered for {app_id}: VideoCounts, CreatorTotals" in said(result)
    assert [tuple(row) for row in await registered_rows(admin, app_id)] == [(digest, COUNTS_DOCUMENT, ["VideoCounts", "CreatorTotals"])]


async def test_apps_documents_add_again_changes_nothing(apps_env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path) -> None:
    app_id = await created_app(apps_env, "Acme Insights")
    path = tmp_path / "anonymous.graphql"
    path.write_text("{ __typename }")
    first = await gateway("apps", "documents", "add", "--app", app_id, str(path), env=apps_env)
    before = await registered_rows(admin, app_id)

    again = await gateway("apps", "documents", "add", "--app", app_id, str(path), env=apps_env)

    assert again.exit_code == 0, again.output
    assert again.stdout == first.stdout
    assert f"already registered for {app_id}: one anonymous operation" in said(again)
    assert await registered_rows(admin, app_id) == before
    assert len(before) == 1


@pytest.mark.parametrize(
    ("content", "app_id", "reason"),
    [
        pytest.param(b"query Broken { video(id: ", None, "the document does not parse: line 1, column 26: Syntax Error", id="does-not-parse"),
        pytest.param(
            b"query Sharers { video(id: \"v1\") { sharerIds } }",
            None,
            "the document does not validate against the schema: line 1, column 35: Cannot query field 'sharerIds' on type 'Video'.",
            id="does-not-validate",
        ),
        pytest.param(b"query A { __typename }\nquery A { __typename }", None, "There can be only one operation named 'A'.", id="two-operations-one-name"),
        pytest.param(b"\xff\xfe{ __typename }", None, "as UTF-8 text", id="not-utf-8"),
        pytest.param(b"{ __typename }", "app_nobody_created", "no such app: app_nobody_created", id="unknown-app"),
        pytest.param(None, None, "no such file", id="missing-file"),
    ],
)
async def test_apps_documents_add_refuses_and_stores_nothing(
    apps_env: dict[str, str], admin: asyncpg.Connection, tmp_path: Path, content: bytes | None, app_id: str | None, reason: str
) -> None:
    app_id = app_id or await created_app(apps_env, "Refused")
    path = tmp_path / "document.graphql"
    if content is not None:
        path.write_bytes(content)
    before = await admin.fetchval("SELECT count(*) FROM app_documents")

    result = await gateway("apps", "documents", "add", "--app", app_id, str(path), env=apps_env)

    assert reason in failed_in_one_line(result, 2)
    assert result.stdout == ""
    assert await admin.fetchval("SELECT count(*) FROM app_documents") == before


async def test_apps_documents_list_names_each_document_and_its_operations(apps_env: dict[str, str], tmp_path: Path) -> None:
    app_id = await created_app(apps_env, "Acme Insights")
    (tmp_path / "counts.graphql").write_bytes(COUNTS_DOCUMENT.encode())
    (tmp_path / "anonymous.graphql").write_text("{ __typename }")
    added = [await gateway("apps", "documents", "add", "--app", app_id, str(tmp_path / name), env=apps_env) for name in ("counts.graphql", "anonymous.graphql")]

    listed = await gateway("apps", "documents", "list", "--app", app_id, env=apps_env)

    assert listed.exit_code == 0, listed.output
    rows = [line.split("  ") for line in listed.stdout.splitlines()]
    assert [(row[0], row[-1]) for row in rows] == [(added[0].stdout.strip(), "VideoCounts,CreatorTotals"), (added[1].stdout.strip(), "-")]


async def test_apps_documents_list_of_an_unknown_app_exits_2(apps_env: dict[str, str]) -> None:
    result = await gateway("apps", "documents", "list", "--app", "app_nobody_created", env=apps_env)

    assert "no such app: app_nobody_created" in failed_in_one_line(result, 2)


# The demo platform itself: pure, deterministic, and valid by construction.

END = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def platform_events() -> list[dict[str, Any]]:
    return list(DemoPlatform(users=200, videos=40, events=20_000, seed=7, end=END).generate())


def test_demo_platform_same_seed_and_end_gives_identical_events(platform_events: list[dict[str, Any]]) -> None:
    again = list(DemoPlatform(users=200, videos=40, events=20_000, seed=7, end=END).generate())
    other_seed = list(DemoPlatform(users=200, videos=40, events=20_000, seed=8, end=END).generate())

    assert again == platform_events
    assert other_seed != platform_events


def test_demo_platform_gives_the_events_asked_for_with_unique_ids(platform_events: list[dict[str, Any]]) -> None:
    published = [event["video_id"] for event in platform_events if event["type"] == "video_published"]

    assert len(platform_events) == 20_000
    assert len({event["event_id"] for event in platform_events}) == 20_000
    assert sorted(published) == sorted(f"v{n}" for n in range(1, 41))


def test_demo_platform_every_event_validates(platform_events: list[dict[str, Any]]) -> None:
    batch = parse_objects(platform_events)

    assert batch.errors == []
    assert len(batch.records) == 20_000
    assert {record[1] for record in batch.records} == {"video_published", "view", "like", "unlike", "comment", "share", "follow", "unfollow"}


def test_demo_platform_has_small_audience_videos(platform_events: list[dict[str, Any]]) -> None:
    viewers: dict[str, set[str]] = {}
    for event in platform_events:
        if event["type"] == "view":
            viewers.setdefault(event["video_id"], set()).add(event["actor_id"])

    small = sorted(video for video, actors in viewers.items() if len(actors) <= 5)
    assert small
    assert all(2 <= len(viewers[video]) for video in small)
    assert max(len(actors) for actors in viewers.values()) > 100


@pytest.mark.parametrize(
    ("undo", "do", "target"),
    [pytest.param("unlike", "like", "video_id", id="unlike"), pytest.param("unfollow", "follow", "creator_id", id="unfollow")],
)
def test_demo_platform_undoes_only_what_the_same_actor_did_before(
    platform_events: list[dict[str, Any]], undo: str, do: str, target: str
) -> None:
    # In time order (generation order breaks ties), an actor's undos never outnumber their dos on the same target.
    standing: Counter[tuple[str, str]] = Counter()
    undone = 0
    for _, event in sorted(enumerate(platform_events), key=lambda numbered: (numbered[1]["occurred_at"], numbered[0])):
        if event["type"] not in (do, undo):
            continue
        key = (event[target], event["actor_id"])
        if event["type"] == do:
            standing[key] += 1
            continue
        undone += 1
        assert standing[key] > 0, f"{event['event_id']} undoes a {do} that {event['actor_id']} had not made"
        standing[key] -= 1

    assert undone > 0


def test_demo_platform_events_fall_in_its_window(platform_events: list[dict[str, Any]]) -> None:
    start = min(event["occurred_at"] for event in platform_events)

    assert start >= datetime(2025, 12, 4, tzinfo=UTC)
    assert all(event["occurred_at"] < END for event in platform_events)


def test_demo_platform_small_audience_shares_fall_before_end() -> None:
    late = [event for event in DemoPlatform(users=50, videos=10, events=100, seed=25, end=END).generate() if event["occurred_at"] >= END]

    assert late == []



# Configuration the commands cannot use: one line saying what is wrong, and a documented status.

UNREACHABLE = "postgresql://gateway@127.0.0.1:1/gateway"


@pytest.mark.parametrize(
    ("variables", "args", "status", "expected"),
    [
        pytest.param({"GATEWAY_PORT": "abc"}, ("migrate",), 3, "bad configuration: GATEWAY_PORT: Input should be a valid integer", id="port-not-a-number"),
        pytest.param({"GATEWAY_PORT": "abc"}, ("serve",), 3, "bad configuration: GATEWAY_PORT: Input should be a valid integer", id="serve"),
        pytest.param({"GATEWAY_SECRET": "too-short"}, ("token", "create", "--kind", "user", "--subject", "u1"), 3,
                     "bad configuration: GATEWAY_SECRET: String should have at least 32 characters", id="secret-too-short"),
        pytest.param({"GATEWAY_LOG_FORMAT": "xml", "GATEWAY_LATENESS_DAYS": "-1"}, ("migrate",), 3,
                     "bad configuration: GATEWAY_LOG_FORMAT: Input should be 'text' or 'json'; GATEWAY_LATENESS_DAYS: Input should be greater than or equal to 0",
                     id="two-at-once"),
        pytest.param({"GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8, 10.0.0.300"}, ("serve",), 3,
                     "bad configuration: GATEWAY_TRUSTED_PROXIES: Value error, '10.0.0.300' is not an IP address or network", id="proxy-not-an-address"),
        pytest.param({"GATEWAY_TRUSTED_PROXIES": "10.0.0.1/8"}, ("serve",), 3,
                     "bad configuration: GATEWAY_TRUSTED_PROXIES: Value error, '10.0.0.1/8' is not an IP address or network (10.0.0.1/8 has host bits set)",
                     id="proxy-network-with-host-bits"),
        pytest.param({"GATEWAY_RATE_LIMIT_STORAGE": "memcached://127.0.0.1:11211"}, ("serve",), 3,
                     "bad configuration: GATEWAY_RATE_LIMIT_STORAGE: Value error, 'memcached://127.0.0.1:11211' is not a rate limit storage the gateway can use",
                     id="storage-without-its-client"),
        pytest.param({"GATEWAY_RATE_LIMIT_STORAGE": "nowhere://limiter:too-short@127.0.0.1:1"}, ("serve",), 3,
                     "bad configuration: GATEWAY_RATE_LIMIT_STORAGE: Value error, 'nowhere://limiter:***@127.0.0.1:1' is not a rate limit storage "
                     "the gateway can use: unknown storage scheme : async+nowhere://limiter:***@127.0.0.1:1", id="storage-unknown-password-not-echoed"),
        pytest.param({"GATEWAY_DATABASE_URL": "not-a-url"}, ("migrate",), 3, "bad configuration: GATEWAY_DATABASE_URL is not a Postgres URL", id="url-not-a-url"),
        pytest.param({"GATEWAY_DATABASE_URL": "postgresql://127.0.0.1:port/gateway"}, ("apps", "create", "--name", "Acme"), 3,
                     "bad configuration: GATEWAY_DATABASE_URL is not a Postgres URL", id="url-port-not-a-number"),
        pytest.param({"GATEWAY_DATABASE_URL": UNREACHABLE}, ("migrate",), 4, "cannot reach the store (GATEWAY_DATABASE_URL): ConnectionRefusedError", id="unreachable-migrate"),
        pytest.param({"GATEWAY_DATABASE_URL": UNREACHABLE}, ("ingest", "-"), 4, "cannot reach the store (GATEWAY_DATABASE_URL)", id="unreachable-ingest"),
        pytest.param({"GATEWAY_DATABASE_URL": UNREACHABLE}, ("demo-data",), 4, "cannot reach the store (GATEWAY_DATABASE_URL)", id="unreachable-demo-data"),
        pytest.param({"GATEWAY_DATABASE_URL": UNREACHABLE}, ("apps", "revoke", "--app", "a1", "--user", "u1"), 4,
                     "cannot reach the store (GATEWAY_DATABASE_URL)", id="unreachable-apps"),
    ],
)
async def test_command_with_configuration_it_cannot_use_says_so_in_one_line(
    variables: dict[str, str], args: tuple[str, ...], status: int, expected: str, tmp_path: Path
) -> None:
    env = {"GATEWAY_SECRET": TOKEN_SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data"), **variables}

    result = await gateway(*args, env=env, stdin=json.dumps(events("cli-config", 1)[0]).encode())

    assert failed_in_one_line(result, status).startswith(expected)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "too-short" not in result.output, "a secret is never echoed"
    assert result.stdout == ""


async def test_command_naming_a_database_that_does_not_exist_says_so_in_one_line(server_url: str, tmp_path: Path) -> None:
    env = {"GATEWAY_DATABASE_URL": with_database(server_url, "gateway_no_such_database"), "GATEWAY_SECRET": SECRET, "GATEWAY_DATA_DIR": str(tmp_path)}

    result = await gateway("migrate", env=env)

    line = failed_in_one_line(result, 4)
    assert result.stderr.strip() == line
    assert line.startswith("cannot reach the store (GATEWAY_DATABASE_URL): InvalidCatalogNameError")
    assert "gateway_no_such_database" in line


async def test_installed_command_with_bad_configuration_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "gateway"
    env = {"PATH": str(command.parent), "GATEWAY_PORT": "abc", "GATEWAY_DATA_DIR": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        str(command), "migrate", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 3
    assert stdout == b""
    assert stderr.decode().splitlines() == ["bad configuration: GATEWAY_PORT: Input should be a valid integer, unable to parse string as an integer"]


def test_help_documents_the_exit_statuses() -> None:
    result = CliRunner().invoke(app, ["--help"])

    assert result.exit_code == 0
    told = " ".join(result.stdout.replace("│", " ").split())
    assert "2 bad input or arguments, nothing stored; 3 bad configuration (a GATEWAY_* variable); 4 the store unreachable" in told


def test_version_is_the_installed_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.stdout.strip() == f"privacy-gateway {importlib.metadata.version('privacy-gateway')}"


# A data subject's rights: access (export-user) and erasure (erase-user); retention of raw events.


def activity_of(prefix: str, person: str) -> list[dict[str, Any]]:
    """A published video with a view and a share by `person` and a view by someone else."""
    video = f"{prefix}-v"
    return [
        {"event_id": f"{prefix}-pub", "type": "video_published", "occurred_at": AT.format(minute=0), "video_id": video, "creator_id": "u1", "actor_id": "u1"},
        {"event_id": f"{prefix}-view", "type": "view", "occurred_at": AT.format(minute=1), "video_id": video, "creator_id": "u1", "actor_id": person, "watch_ms": 900},
        {"event_id": f"{prefix}-share", "type": "share", "occurred_at": AT.format(minute=2), "video_id": video, "creator_id": "u1", "actor_id": person, "channel": "sms"},
        {"event_id": f"{prefix}-other", "type": "view", "occurred_at": AT.format(minute=3), "video_id": video, "creator_id": "u1", "actor_id": f"{person}-friend", "watch_ms": 1},
    ]


async def ingested(env: dict[str, str], tmp_path: Path, lines: list[dict[str, Any]], *flags: str) -> None:
    result = await gateway("ingest", *flags, str(ndjson_file(tmp_path / f"{lines[0]['event_id']}.ndjson", lines)), env=env)
    assert result.exit_code == 0, result.output


async def test_export_user_prints_the_persons_own_data_as_json(env: dict[str, str], tmp_path: Path) -> None:
    await ingested(env, tmp_path, activity_of("cli-export", "cli-exported"))

    result = await gateway("export-user", "cli-exported", env=env)

    assert result.exit_code == 0, result.output
    exported = json.loads(result.stdout)
    assert [(e["event_id"], e["type"]) for e in exported["events"]] == [("cli-export-view", "view"), ("cli-export-share", "share")]
    assert exported["activity"]["shares"] == [{"video_id": "cli-export-v", "channel": "sms", "shared_at": AT.format(minute=2).replace("Z", "+00:00")}]
    assert (exported["user_id"], exported["app_grants"], exported["erasures"]) == ("cli-exported", [], [])
    assert "exported 2 events and 0 app grants of cli-exported" in said(result)


async def test_export_user_to_a_file_keeps_it_from_other_users(env: dict[str, str], tmp_path: Path) -> None:
    await ingested(env, tmp_path, activity_of("cli-export-file", "cli-exported-file"))
    target = tmp_path / "export.json"

    result = await gateway("export-user", "cli-exported-file", "--output", str(target), env=env)

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert len(json.loads(target.read_text())["events"]) == 2
    assert target.stat().st_mode & 0o777 == 0o600


async def test_erase_user_erases_once_and_says_so_when_asked_again(env: dict[str, str], tmp_path: Path, admin: asyncpg.Connection) -> None:
    await ingested(env, tmp_path, activity_of("cli-erase", "cli-erased"))

    first = await gateway("erase-user", "cli-erased", "--reason", "asked in writing", "--by", "dpo", env=env)
    again = await gateway("erase-user", "cli-erased", env=env)

    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    assert "erased cli-erased: 2 events, 0 app grants revoked" in said(first)
    assert first.stdout == again.stdout and len(first.stdout.strip()) == 36
    assert "cli-erased was erased already, on" in said(again)
    assert await admin.fetchval("SELECT count(*) FROM events WHERE actor_id = 'cli-erased'") == 0
    assert await admin.fetchval("SELECT count(*) FROM events WHERE event_id = 'cli-erase-other'") == 1
    record = await admin.fetchrow("SELECT erased_by, reason FROM erasures WHERE erasure_id = $1::uuid", first.stdout.strip())
    assert tuple(record) == ("dpo", "asked in writing")
    exported = json.loads((await gateway("export-user", "cli-erased", env=env)).stdout)
    assert exported["events"] == [] and [e["erasure_id"] for e in exported["erasures"]] == [first.stdout.strip()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["erase-user", "not an id"], "'not an id' is not a user id", id="erase-bad-id"),
        pytest.param(["erase-user", "cli-named", "--reason", "cli-named asked"], "`reason` must not name the person", id="reason-names-them"),
        pytest.param(["export-user", "not/an/id"], "'not/an/id' is not a user id", id="export-bad-id"),
        pytest.param(["retention", "--older-than", "6"], "retention must keep at least 7 days of events", id="retention-inside-lateness"),
    ],
)
async def test_data_subject_commands_refuse_bad_arguments_with_exit_2(
    env: dict[str, str], admin: asyncpg.Connection, args: list[str], message: str
) -> None:
    erasures = await admin.fetchval("SELECT count(*) FROM erasures")

    result = await gateway(*args, env=env)

    assert message in failed_in_one_line(result, 2)
    assert result.stdout == ""
    assert await admin.fetchval("SELECT count(*) FROM erasures") == erasures


async def test_retention_drops_months_of_raw_events_past_the_cutoff(env: dict[str, str], tmp_path: Path, admin: asyncpg.Connection) -> None:
    long_ago = (RECENT_HOUR - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = [{"event_id": f"cli-old-{n}", "type": "view", "occurred_at": long_ago, "video_id": "cli-old-v", "creator_id": "u1",
            "actor_id": f"cli-old-u{n}", "watch_ms": 1} for n in range(5)]
    await ingested(env, tmp_path, old, "--backfill")
    month = await admin.fetchval("SELECT tableoid::regclass::text FROM events WHERE event_id = 'cli-old-0'")
    releases = await admin.fetch("SELECT * FROM releases WHERE subject_id = 'cli-old-v'")

    result = await gateway("retention", "--older-than", "30", env=env)

    assert result.exit_code == 0, result.output
    dropped = said(result).split("dropped ", 1)[1].split("; kept", 1)[0]
    assert month in dropped.split(", ")
    assert await admin.fetchval("SELECT to_regclass($1)", month) is None
    assert releases and await admin.fetch("SELECT * FROM releases WHERE subject_id = 'cli-old-v'") == releases


async def test_retention_days_inside_the_lateness_window_are_bad_configuration(env: dict[str, str]) -> None:
    result = await gateway("migrate", env={**env, "GATEWAY_RETENTION_DAYS": "3"})

    assert "bad configuration: GATEWAY_RETENTION_DAYS: Value error, must be at least GATEWAY_LATENESS_DAYS (7)" in failed_in_one_line(result, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("erase-user", "u77", "--by", "U77"), "must not name the person", id="by-names-them"),
        pytest.param(("retention", "--older-than", "100000000"), "36500", id="retention-beyond-any-date"),
    ],
)
async def test_data_subject_commands_refuse_what_would_name_the_person_or_overflow(env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    result = await gateway(*args, env=env)

    assert result.exit_code == 2, result.output
    assert message in said(result) or message in result.output
