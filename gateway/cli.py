"""The `gateway` command."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import json
import logging
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, BinaryIO, NoReturn

import asyncpg
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text
from typer.core import TyperGroup

from gateway.auth import PrincipalKind, create_app_token, create_token
from gateway.clock import utc_now
from gateway.config import Settings
from gateway.errors import BadUserInput, InvalidEvents, NotFound, StoreUnavailable
from gateway.ingest.events import Window, is_platform_id
from gateway.ingest.ndjson import ParsedBatch, check_lines, parse_lines, parse_objects
from gateway.ingest.pipeline import IngestStopped, IngestTotals, chunked, ingest_chunks
from gateway.oauth.scopes import policy_scopes
from gateway.policy.worker import PolicyFiles, PolicyFilesError
from gateway.store.apps import authorize_app, register_app, revoke_app
from gateway.store.documents import RegisteredDocument, register_document, registered_documents
from gateway.store.erasure import derive_erasure_key
from gateway.store.failures import STORE_FAILURES
from gateway.store.history import subjects_with_history
from gateway.store.ingest import BatchResult, EventWriter
from gateway.store.migrate import migrate as apply_migrations
from gateway.store.pools import Store
from gateway.store.server import database_url, release_embedded

# Exit status: 1 for failed policy tests or checks (`gateway policy`), and these.
EXIT_BAD_INPUT = 2  # bad input or arguments (invalid events, an unknown app): nothing was stored
EXIT_BAD_CONFIGURATION = 3  # a GATEWAY_* variable the command cannot use
EXIT_STORE_UNAVAILABLE = 4  # the store unreachable, or failing part-way (an ingest names the lines it stored)

EXIT_STATUSES = (
    f"Exit status: 0 done; 1 policy tests or checks failed; {EXIT_BAD_INPUT} bad input or arguments, nothing stored; "
    f"{EXIT_BAD_CONFIGURATION} bad configuration (a GATEWAY_* variable); "
    f"{EXIT_STORE_UNAVAILABLE} the store unreachable or failing part-way (an ingest names the lines it stored)."
)

console = Console(stderr=True)


class BadConfiguration(Exception):
    """A GATEWAY_* variable that is well-formed for its type but that the command cannot use."""


def fail(message: str, status: int) -> NoReturn:
    """Tell the user what went wrong in one line (never a traceback), and exit with `status`."""
    console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(status)


def configuration_problems(exc: ValidationError) -> str:
    prefix = Settings.model_config.get("env_prefix", "")
    # No input value is echoed: GATEWAY_SECRET is one of them.
    return "; ".join(f"{prefix}{str(error['loc'][0]).upper()}: {error['msg']}" for error in exc.errors(include_url=False))


class GatewayGroup(TyperGroup):
    """The command line's boundary, as gateway.routes.errors is HTTP's: whatever a command raises
    that the user can act on is told in one line, with its exit status."""

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context, which it does not export
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            if exc.title != Settings.__name__:
                raise
            fail(f"bad configuration: {configuration_problems(exc)}", EXIT_BAD_CONFIGURATION)
        except BadConfiguration as exc:
            fail(f"bad configuration: {exc}", EXIT_BAD_CONFIGURATION)
        except StoreUnavailable as exc:
            fail(exc.message, EXIT_STORE_UNAVAILABLE)
        except IngestStopped as exc:  # `gateway ingest` says more: how to resume from the line reached
            fail(f"{exc}; running the command again is safe: events already stored are skipped", EXIT_STORE_UNAVAILABLE)
        except (BadUserInput, NotFound) as exc:
            fail(exc.message, EXIT_BAD_INPUT)


app = typer.Typer(
    cls=GatewayGroup,
    no_args_is_help=True,
    add_completion=False,
    help="privacy-gateway: engagement aggregates without a path to a sharer.",
    epilog=EXIT_STATUSES,
)
token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens.")
app.add_typer(token_app, name="token")
apps_app = typer.Typer(no_args_is_help=True, help="Third-party apps and the users who authorize them.")
app.add_typer(apps_app, name="apps")
policy_app = typer.Typer(no_args_is_help=True, help="Compliance tooling for the Rego policy.")
app.add_typer(policy_app, name="policy")
keys_app = typer.Typer(no_args_is_help=True, help="The keys that sign apps' access tokens.")
app.add_typer(keys_app, name="keys")


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"privacy-gateway {importlib.metadata.version('privacy-gateway')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """privacy-gateway: engagement aggregates without a path to a sharer."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default GATEWAY_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default GATEWAY_PORT or 8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Serving processes on the one port (default GATEWAY_WORKERS or one for each core).")
    ] = None,
) -> None:
    """Migrate the store, then serve the gateway."""
    import signal

    import uvicorn

    from gateway.app import create_app
    from gateway.serving.protocol import connection_ceiling, guarded_protocol
    from gateway.telemetry.logs import logging_config

    def stopped(signum: int, frame: object) -> None:
        raise SystemExit(0)

    settings = Settings()
    settings = settings.model_copy(update={"host": host or settings.host, "port": port or settings.port, "workers": workers or settings.workers})
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        # A partial making GuardedHttpToolsProtocol, not a class: uvicorn only calls it.
        "http": guarded_protocol(settings.header_timeout, connection_ceiling(settings.max_connections)),
        "log_config": logging_config(settings.log_format),
        "log_level": "info",
        # gateway.telemetry writes each request's line itself, with its id and how long it took.
        "access_log": False,
        # The client's address is the peer's: GATEWAY_TRUSTED_PROXIES alone says whose X-Forwarded-For
        # is believed (gateway.routes.clients), not uvicorn's own rule (which trusts 127.0.0.1).
        "proxy_headers": False,
        "timeout_graceful_shutdown": settings.shutdown_seconds,
    }
    if settings.workers > 1:
        serve_on_workers(settings, options)
        return
    # uvicorn raises the signal it shut down on again once its own handler is gone. After SIGTERM
    # the shutdown was the graceful one asked for: exit 0, as `docker stop` and systemd expect.
    signal.signal(signal.SIGTERM, stopped)
    uvicorn.run(create_app(settings), **options)


def serve_on_workers(settings: Settings, options: dict[str, Any]) -> None:
    """`serve` on GATEWAY_WORKERS processes (gateway.serving.workers), once the supervisor has done
    what happens once per deployment; its failures to reach the store are told as any command's."""
    import logging.config

    from gateway.oauth.keys import KeyRingError
    from gateway.serving.workers import prepare_deployment, serve_workers

    logging.config.dictConfig(options["log_config"])  # the supervisor's lines take the workers' shape

    async def prepared() -> Settings:
        async with reaching_the_store(settings):
            return await prepare_deployment(settings)

    try:
        try:
            ready = asyncio.run(prepared())
        except KeyRingError as exc:
            raise BadConfiguration(f"the signing keys in {settings.data_dir}: {exc}") from exc
        status = serve_workers(ready, settings.workers, **options)
    finally:
        release_embedded(settings)
    raise typer.Exit(status)


@app.command()
def migrate() -> None:
    """Apply pending schema migrations (safe to run twice or from two processes)."""

    async def run() -> list[str]:
        settings = Settings()
        async with reaching_the_store(settings):
            return await apply_migrations(await database_url(settings), settings.signing_secret())

    applied = asyncio.run(run())
    console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


# Connecting can fail past the network too: no such database, or a login refused.
CANNOT_CONNECT = (*STORE_FAILURES, asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError)


@asynccontextmanager
async def reaching_the_store(settings: Settings) -> AsyncIterator[None]:
    """Translates a failure to connect to the store, which the user fixes in the configuration
    or by starting the server, into the gateway's terms."""
    where = "GATEWAY_DATABASE_URL" if settings.database_url else f"the embedded Postgres in {settings.data_dir}"
    try:
        yield
    except ValueError as exc:  # asyncpg's reading of the URL (its ClientConfigurationError is one too)
        if not settings.database_url:
            raise
        raise BadConfiguration(f"GATEWAY_DATABASE_URL is not a Postgres URL: {exc}") from exc
    except CANNOT_CONNECT as exc:
        raise StoreUnavailable(f"cannot reach the store ({where}): {type(exc).__name__}: {exc}") from exc


async def migrated_database(settings: Settings) -> str:
    """The admin URL of the gateway's database, once every migration is applied."""
    url = await database_url(settings)
    await apply_migrations(url, settings.signing_secret())
    return url


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """The pools, over a migrated store: for commands that work as one of the pools' roles."""
    async with reaching_the_store(settings):
        store = await Store.open(await migrated_database(settings), settings.signing_secret())
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def open_writer(settings: Settings) -> AsyncIterator[tuple[Store, EventWriter]]:
    async with open_store(settings) as store:
        yield store, EventWriter(store.ingest, erasure_key=derive_erasure_key(settings.signing_secret()))


@asynccontextmanager
async def open_owner(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the database's owner, for the tables no pool role may touch (apps)."""
    async with reaching_the_store(settings):
        conn = await asyncpg.connect(await migrated_database(settings))
    try:
        yield conn
    finally:
        await conn.close()


class PerSecond(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:>9,.0f} {self.unit}/s")


def progress_bar(unit: str = "events") -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        PerSecond(unit),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=4,
    )


def report_invalid(exc: InvalidEvents) -> None:
    console.print(f"[red]{exc.message}[/red]")
    for error in exc.errors:
        console.print(f"  {error}")
    if exc.total > len(exc.errors):
        console.print(f"  … and {exc.total - len(exc.errors)} more")


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="NDJSON events, one per line; '-' reads standard input.")],
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill",
            help="Load history older than the lateness window, for videos and creators with no release history yet: "
            "their releases are made in order of occurrence, as if each event had arrived at the end of its hour.",
        ),
    ] = False,
) -> None:
    """Validate every line of an NDJSON file, then store it; a file with any bad line stores nothing (exit 2).

    Should the store fail part-way (exit 4), the lines already stored are named: storing again from the next one is safe."""
    settings = Settings()
    window = Window(utc_now(), settings.lateness)
    with _open_source(source) as path:
        with path.open("rb") as lines:
            total = sum(1 for _ in lines)
        # Pass 1 checks every line so that a bad file stores nothing; pass 2 writes.
        with path.open("rb") as lines:
            checked = check_lines(lines, window=window, backfill=backfill)
        if checked.old:
            asyncio.run(refuse_history_rewrites(settings, checked))
        try:
            checked.raise_if_invalid()
        except InvalidEvents as exc:
            report_invalid(exc)
            raise typer.Exit(EXIT_BAD_INPUT) from exc

        async def run() -> IngestTotals:
            async with open_writer(settings) as (_, writer):
                with progress_bar() as progress, path.open("rb") as lines:
                    task = progress.add_task("ingesting", total=total)

                    def advance(result: BatchResult) -> None:
                        progress.advance(task, result.received)

                    parse = functools.partial(parse_lines, window=window, backfill=backfill)
                    totals = await ingest_chunks(
                        writer.hold if backfill else writer.write, chunked(lines, settings.ingest_batch_size), parse, on_batch=advance
                    )
                if backfill:
                    console.print(f"made {await replay_with_progress(writer):,} releases of the backfilled history")
                return totals

        try:
            totals = asyncio.run(run())
        except IngestStopped as exc:
            fail(stopped_report(source, backfill, exc), EXIT_STORE_UNAVAILABLE)
    console.print(f"stored {totals.inserted:,} new events ({totals.duplicates:,} already present)")


def stopped_report(source: str, backfill: bool, stopped: IngestStopped) -> str:
    """One line: why the store failed, which lines are stored, and how to go on from there."""
    first, through = stopped.stored.first, stopped.stored.through
    command = f"gateway ingest{' --backfill' if backfill else ''}"
    failed = f"ingest stopped at lines {stopped.failed[0]:,}–{stopped.failed[1]:,}: {stopped.cause.message}."
    if through < first:
        return f"{failed} No line is known to be stored: run `{command}` again (events already stored are skipped)."
    resume = f"tail -n +{through + 1} {source} | {command} -" if source != "-" else f"send the input again from line {through + 1:,} to `{command} -`"
    return f"{failed} Lines {first:,}–{through:,} are stored; to resume from line {through + 1:,}: {resume} (events already stored are skipped)."


async def replay_with_progress(writer: EventWriter) -> int:
    """Builds the held events' history, hour by hour, with a progress bar."""
    with progress_bar("hours") as progress:
        task = progress.add_task("building history", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return await writer.replay(advance)


async def refuse_history_rewrites(settings: Settings, checked: ParsedBatch) -> None:
    """Refuses a backfill's lines older than the lateness window about a video or creator that
    already has a release history: what was released cannot be given a new past."""
    videos = [subject for kind, subject in checked.old if kind == "video"]
    creators = [subject for kind, subject in checked.old if kind == "creator"]
    async with open_owner(settings) as conn:
        with_videos, with_creators = await subjects_with_history(conn, videos, creators)
    refused = [(kind, subject) for kind, subject in checked.old if subject in (with_videos if kind == "video" else with_creators)]
    for kind, subject in refused:
        old = checked.old[kind, subject]
        reason = (
            f"{kind} {subject} already has a release history, which cannot be given a new past: "
            f"only events of the last {settings.lateness_days} days may arrive for it, without --backfill"
        )
        for line_no in old.first:
            checked.refuse(line_no, "occurred_at", reason)
        checked.error_count += old.count - len(old.first)
        checked.bad_lines += old.count - len(old.first)


class _open_source:
    """The input as a file path; standard input is spooled to a temporary file first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.spool: tempfile._TemporaryFileWrapper[bytes] | None = None

    def __enter__(self) -> Path:
        if self.source != "-":
            path = Path(self.source)
            if not path.is_file():
                console.print(f"[red]no such file: {self.source}[/red]")
                raise typer.Exit(EXIT_BAD_INPUT)
            return path
        self.spool = tempfile.NamedTemporaryFile(prefix="gateway-ingest-", suffix=".ndjson")
        stdin: BinaryIO = sys.stdin.buffer
        shutil.copyfileobj(stdin, self.spool)
        self.spool.flush()
        return Path(self.spool.name)

    def __exit__(self, *exc: object) -> None:
        if self.spool is not None:
            self.spool.close()


@app.command("demo-data")
def demo_data(
    users: Annotated[int, typer.Option(min=2, help="Number of users.")] = 5_000,
    videos: Annotated[int, typer.Option(min=1, help="Number of videos.")] = 1_000,
    events: Annotated[int, typer.Option(min=1, help="Number of events in all.")] = 200_000,
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives the same platform.")] = 1,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when the store already holds events.")] = False,
) -> None:
    """Load a realistic synthetic platform through the ingest path, as a backfill: each video's and
    creator's release history is made in order of occurrence."""
    from gateway.demo import DemoPlatform

    if events < videos:
        console.print("[red]--events must be at least --videos (each video is published once)[/red]")
        raise typer.Exit(EXIT_BAD_INPUT)
    settings = Settings()

    async def run() -> IngestTotals | None:
        async with open_writer(settings) as (store, writer):
            if if_empty:
                async with store.ingest.acquire() as conn:
                    if await conn.fetchval("SELECT EXISTS (SELECT FROM event_ids)"):
                        return None
            platform = DemoPlatform(users=users, videos=videos, events=events, seed=seed)
            with progress_bar() as progress:
                task = progress.add_task("demo data", total=events)

                def advance(result: BatchResult) -> None:
                    progress.advance(task, result.received)

                parse = functools.partial(parse_objects, window=Window(utc_now(), settings.lateness), backfill=True)
                totals = await ingest_chunks(writer.hold, chunked(platform.generate(), settings.ingest_batch_size), parse, on_batch=advance)
            await replay_with_progress(writer)
            return totals

    totals = asyncio.run(run())
    if totals is None:
        console.print("the store already holds data; demo data not loaded")
    else:
        console.print(f"stored {totals.inserted:,} new events ({totals.duplicates:,} already present)")


@app.command()
def schema() -> None:
    """Print the GraphQL schema (SDL); `make schema` writes it to schema.graphql."""
    from gateway.graphql.schema import build_schema

    typer.echo(build_schema().as_str())


class TokenKind(StrEnum):
    """The principals a token is created for here: app tokens come from `gateway apps authorize`,
    and the anonymous need none."""

    USER = PrincipalKind.USER.value
    COMPLIANCE = PrincipalKind.COMPLIANCE.value
    SERVICE = PrincipalKind.SERVICE.value


@token_app.command("create")
def token_create(
    kind: Annotated[TokenKind, typer.Option(help="The kind of principal (app tokens come from 'gateway apps authorize').")],
    subject: Annotated[str, typer.Option(help="The principal's id.")],
    ttl: Annotated[int, typer.Option(min=1, help="Seconds until the token expires.")] = 3600,
) -> None:
    """Print a bearer token."""
    typer.echo(create_token(Settings().signing_secret(), PrincipalKind(kind.value), subject, ttl))


# An app token outlives a session: the user authorized the app once.
APP_TOKEN_TTL = 30 * 24 * 3600


@apps_app.command("create")
def apps_create(
    name: Annotated[str, typer.Option(help="The app's name, as its users see it on the consent page.")],
    redirect_uris: Annotated[
        list[str] | None,
        typer.Option(
            "--redirect-uri",
            help="Where the consent page sends the user back (exact match; https, or http to localhost). "
            "Repeat for several. With one, the app signs users in through OAuth.",
        ),
    ] = None,
    public: Annotated[bool, typer.Option("--public", help="A client that cannot keep a secret (a native or browser app): PKCE alone.")] = False,
) -> None:
    """Register a third-party app. Without --redirect-uri, prints its id (tokens come from
    'gateway apps authorize'); with it, prints its OAuth client id and, unless --public, its client
    secret, shown once (only a hash is kept)."""
    from gateway.oauth.clients import redirect_uri_problem
    from gateway.store.oauth import register_client

    if not name.strip():
        fail("--name must not be empty", EXIT_BAD_INPUT)
    uris = list(dict.fromkeys(redirect_uris or []))
    problems = [problem for problem in map(redirect_uri_problem, uris) if problem]
    if problems:
        fail(f"--redirect-uri: {'; '.join(problems)}", EXIT_BAD_INPUT)
    if public and not uris:
        fail("--public needs at least one --redirect-uri: a public client signs users in through OAuth", EXIT_BAD_INPUT)

    async def run() -> tuple[str, str | None]:
        async with open_owner(Settings()) as conn:
            if not uris:
                return await register_app(conn, name), None
            return await register_client(conn, name, uris, public)

    app_id, secret = asyncio.run(run())
    if not uris:
        typer.echo(app_id)
        return
    typer.echo(f"client_id: {app_id}")
    if secret is not None:
        typer.echo(f"client_secret: {secret}")
        console.print("The client secret is shown this once: only its hash is stored.")


@apps_app.command("authorize")
def apps_authorize(
    app_id: Annotated[str, typer.Option("--app", help="The app's id, from 'gateway apps create'.")],
    user_id: Annotated[str, typer.Option("--user", help="The user the app acts on behalf of.")],
    scopes: Annotated[str, typer.Option(help="The scopes the user grants, comma-separated: e.g. stats,insights.")],
    ttl: Annotated[int, typer.Option(min=1, help="Seconds until the token expires (default 30 days).")] = APP_TOKEN_TTL,
) -> None:
    """Record that a user authorized an app for some scopes (replacing any earlier grant); prints an app token."""
    granted = sorted({scope.strip() for scope in scopes.split(",") if scope.strip()})
    if not granted:
        console.print("[red]--scopes must name at least one scope[/red]")
        raise typer.Exit(EXIT_BAD_INPUT)
    if not is_platform_id(user_id):
        console.print(f"[red]--user {user_id!r} is not a user id[/red]")
        raise typer.Exit(EXIT_BAD_INPUT)
    known = policy_scopes(read_policy(None).directory)
    unknown = [scope for scope in granted if scope not in known]
    if unknown:
        console.print(f"[red]unknown scope(s): {', '.join(unknown)} (the policy defines: {', '.join(sorted(known)) or 'none'})[/red]")
        raise typer.Exit(EXIT_BAD_INPUT)
    settings = Settings()

    async def run() -> int:
        async with open_owner(settings) as conn:
            return await authorize_app(conn, app_id, user_id, granted)

    generation = asyncio.run(run())
    typer.echo(create_app_token(settings.signing_secret(), app_id, user_id, granted, ttl, generation))


@apps_app.command("revoke")
def apps_revoke(
    app_id: Annotated[str, typer.Option("--app", help="The app's id.")],
    user_id: Annotated[str, typer.Option("--user", help="The user who withdraws the app's access.")],
) -> None:
    """Withdraw every scope a user granted an app: its tokens stop working within seconds
    (re-authorizing issues a new token; the old ones stay refused)."""

    async def run() -> None:
        async with open_owner(Settings()) as conn:
            await revoke_app(conn, app_id, user_id)

    asyncio.run(run())
    console.print(f"revoked: {user_id} no longer authorizes {app_id}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key for apps' access tokens (in GATEWAY_DATA_DIR/keys.json). The old one
    keeps verifying until the tokens it signed expire, then a later rotation drops it; running
    servers sign with the new key within a second."""
    from datetime import UTC, datetime

    from gateway.oauth.keys import KeyRingError, ensure_keys, rotate_keys
    from gateway.routes.oauth import ACCESS_TOKEN_SECONDS

    settings = Settings()
    now = datetime.now(UTC)
    try:
        ensure_keys(settings.data_dir, now)
        fresh, dropped = rotate_keys(settings.data_dir, KEY_GRACE_SECONDS + ACCESS_TOKEN_SECONDS, now)
    except (KeyRingError, OSError) as exc:
        fail(f"cannot rotate the keys in {settings.data_dir}: {exc}", EXIT_BAD_CONFIGURATION)
    typer.echo(fresh.key.kid)
    console.print(f"signing with key {fresh.key.kid}; dropped {len(dropped)} key(s) whose tokens have all expired")


# Seconds a retired key is kept past the longest life of a token it signed (clocks differ).
KEY_GRACE_SECONDS = 300


documents_app = typer.Typer(
    no_args_is_help=True,
    help="GraphQL documents registered for an app: sent by hash alone, and all it may run where the policy confines it to them.",
)
apps_app.add_typer(documents_app, name="documents")


@documents_app.command("add")
def apps_documents_add(
    app_id: Annotated[str, typer.Option("--app", help="The app's id.")],
    path: Annotated[Path, typer.Argument(metavar="FILE.graphql", help="A GraphQL document: its operations and their fragments.")],
) -> None:
    """Register a GraphQL document for an app once it parses and validates against the schema;
    prints its sha256, the hash the app sends (registering it again changes nothing)."""
    from gateway.graphql.persisted import check_registrable
    from gateway.graphql.schema import build_schema

    document = read_document(path)
    operation_names = check_registrable(build_schema()._schema, document)

    async def run() -> tuple[str, bool]:
        async with open_owner(Settings()) as conn:
            return await register_document(conn, app_id, document, operation_names)

    sha256, added = asyncio.run(run())
    typer.echo(sha256)
    operations = ", ".join(operation_names) or "one anonymous operation"
    console.print(f"{'registered' if added else 'already registered'} for {app_id}: {operations}", markup=False, highlight=False)


@documents_app.command("list")
def apps_documents_list(app_id: Annotated[str, typer.Option("--app", help="The app's id.")]) -> None:
    """List the documents registered for an app: sha256, when and by whom, operations."""

    async def run() -> list[RegisteredDocument]:
        async with open_owner(Settings()) as conn:
            return await registered_documents(conn, app_id)

    for registered in asyncio.run(run()):
        operations = ",".join(registered.operation_names) or "-"
        typer.echo(f"{registered.sha256}  {registered.added_at.isoformat(timespec='seconds')}  {registered.added_by}  {operations}")


def read_document(path: Path) -> str:
    """The file's text exactly as it is (its hash is the document's name: no newline is translated)."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise BadUserInput(f"no such file: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BadUserInput(f"cannot read {path} as UTF-8 text: {exc}") from exc


PolicyDirOption = Annotated[
    Path | None, typer.Option("--policy-dir", help="The policy directory (default GATEWAY_POLICY_DIR, else policies/).")
]


def read_policy(policy_dir: Path | None) -> PolicyFiles:
    directory = policy_dir or Settings().policy_dir
    try:
        return PolicyFiles.read(directory)
    except (PolicyFilesError, OSError, UnicodeDecodeError) as exc:
        console.print(f"[red]cannot read the policy in {directory}: {exc}[/red]")
        raise typer.Exit(EXIT_BAD_INPUT) from exc


@policy_app.command("test")
def policy_test(
    policy_dir: PolicyDirOption = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds each test may take.")] = 10.0,
) -> None:
    """Run every `test_` rule of the policy's *_test.rego, each isolated: exit 1 on a failure, 2 on a parse error."""
    from gateway.policy.testing import PolicyTestResult, run_tests

    files = read_policy(policy_dir)

    def report(result: PolicyTestResult) -> None:
        if result.passed:
            typer.echo(f"PASS {result.test.name} ({result.seconds * 1000:.0f} ms)")
        else:
            typer.echo(f"FAIL {result.test.name}: {result.reason}")

    run = asyncio.run(run_tests(files, timeout=timeout, on_result=report))
    if run.load_error is not None:
        typer.echo(f"parse error: {run.load_error}")
        raise typer.Exit(EXIT_BAD_INPUT)
    failed = len(run.failures)
    typer.echo(f"{len(run.results) - failed} passed, {failed} failed ({len(run.results)} tests in {len(files.tests)} files)")
    if failed:
        raise typer.Exit(1)


@policy_app.command("check")
def policy_check(
    policy_dir: PolicyDirOption = None,
    schema_path: Annotated[Path, typer.Option("--schema", help="The schema the policy decides on.")] = Path("schema.graphql"),
) -> None:
    """Parse the policy, check every field coordinate its data names against the schema (exit 1 on a
    missing one, 2 on a parse error), and list schema fields no policy allows (a warning; a note for
    those data.json lists in groups no principal is granted, which are off on purpose)."""
    from gateway.policy.testing import check_policy

    files = read_policy(policy_dir)
    try:
        schema_sdl = schema_path.read_text(encoding="utf-8")
    except OSError as exc:
        console.print(f"[red]cannot read the schema: {exc}[/red]")
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    check = asyncio.run(check_policy(files, schema_sdl))
    if check.parse_error is not None:
        typer.echo(f"parse error: {check.parse_error}")
        raise typer.Exit(EXIT_BAD_INPUT)
    for note in check.notes:
        typer.echo(f"note: {note}")
    for warning in check.warnings:
        typer.echo(f"warning: {warning}")
    for error in check.errors:
        typer.echo(f"error: {error}")
    typer.echo(f"{len(check.errors)} error(s), {len(check.warnings)} warning(s)")
    if check.errors:
        raise typer.Exit(1)


# -- A data subject's rights: access (export-user), erasure (erase-user); retention of raw events --


def check_person(user_id: str) -> None:
    if not is_platform_id(user_id):
        fail(f"{user_id[:40]!r}{'…' if len(user_id) > 40 else ''} is not a user id", EXIT_BAD_INPUT)


def operator_name() -> str:
    """Who ran an erasure from the command line, for its record: the login name, as far as it is known."""
    import getpass

    try:
        return f"operator:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in the environment, nor a passwd entry (a container)
        return "operator"


@app.command("export-user")
def export_user(
    user_id: Annotated[str, typer.Argument(metavar="USER_ID", help="The person whose data to export.")],
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the JSON here (readable by its owner only) instead of to standard output.")
    ] = None,
) -> None:
    """Write all of a person's own data as JSON (an access request): their events of every type, their
    activity as `me` serves it, what they watched of each video, the apps they authorized and what
    those spent of their ε budget, and their erasures, if any."""
    from gateway.store.erasure import subject_key
    from gateway.store.personal_data import export_person, to_json

    check_person(user_id)
    settings = Settings()

    async def run() -> dict[str, Any]:
        async with open_owner(settings) as conn:
            key = subject_key(derive_erasure_key(settings.signing_secret()), user_id)
            try:
                return await export_person(conn, user_id, key, utc_now())
            except STORE_FAILURES as exc:
                raise StoreUnavailable(f"the store failed during the export ({type(exc).__name__}); nothing was written") from exc

    export = asyncio.run(run())
    text = to_json(export)
    if output is None:
        typer.echo(text, nl=False)
    else:
        try:
            output.touch(mode=0o600)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc}", EXIT_BAD_INPUT)
    console.print(f"exported {len(export['events']):,} events and {len(export['app_grants']):,} app grants of {user_id}")


@app.command("erase-user")
def erase_user(
    user_id: Annotated[str, typer.Argument(metavar="USER_ID", help="The person to erase.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the record; it must not name the person.")] = None,
    by: Annotated[str | None, typer.Option(help="Who asks, for the record (default operator:<login name>).")] = None,
) -> None:
    """Erase a person's own data at their request, in one transaction: their events, their place in
    the ledger of people (activity of theirs that arrives later counts as a new person's), their app
    grants (revoked). Released aggregates stay. Prints the erasure's id; running it again is safe."""
    from gateway.graphql.erasure import check_reason
    from gateway.store.erasure import ErasureReceipt, erase_person, subject_key

    check_person(user_id)
    why = check_reason(reason, user_id)
    if by is not None and check_reason(by, user_id) is None:
        fail("--by must say who asks", EXIT_BAD_INPUT)
    settings = Settings()

    async def run() -> ErasureReceipt:
        async with open_store(settings) as store:
            key = subject_key(derive_erasure_key(settings.signing_secret()), user_id)
            try:
                async with store.eraser.acquire() as conn:
                    return await erase_person(conn, user_id, key=key, erased_by=by or operator_name(), reason=why)
            except STORE_FAILURES as exc:
                raise StoreUnavailable(f"the store failed during the erasure ({type(exc).__name__}); nothing was erased") from exc

    receipt = asyncio.run(run())
    typer.echo(receipt.erasure_id)
    if receipt.repeated:
        console.print(f"{user_id} was erased already, on {receipt.erased_at:%Y-%m-%d %H:%M:%S} UTC: nothing of theirs was left")
    else:
        console.print(f"erased {user_id}: {receipt.events:,} events, {receipt.app_grants:,} app grants revoked")


@app.command()
def retention(
    older_than: Annotated[
        int, typer.Option("--older-than", metavar="DAYS", min=1, max=36_500, help="Drop the months of raw events that ended DAYS days ago or more.")
    ],
) -> None:
    """Drop raw events past retention, a month (a partition) at a time. Released aggregates stay and are
    still served; a month with events a backfill has not replayed yet is kept, and named."""
    from gateway.store.retention import describe, drop_expired_events, retention_cutoff

    settings = Settings()
    cutoff = retention_cutoff(utc_now(), older_than, settings.lateness_days)

    async def run() -> str:
        async with open_store(settings) as store:
            try:
                async with store.eraser.acquire() as conn:
                    return describe(await drop_expired_events(conn, cutoff))
            except STORE_FAILURES as exc:
                raise StoreUnavailable(f"the store failed during retention ({type(exc).__name__})") from exc

    console.print(f"events before {cutoff:%Y-%m-%d %H:%M} UTC: {asyncio.run(run())}")
# --- gateway policy preview ----------------------------------------------------------------------

# From this many distinct inputs on, the preview shows its progress.
PREVIEW_PROGRESS_FROM = 200
_DURATION = re.compile(r"(\d+)([mhdw])")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def log_window_length(text: str | timedelta) -> timedelta:
    """`30m`, `12h`, `7d`, `2w`: how far back the preview reads the decision log."""
    if isinstance(text, timedelta):  # the default
        return text
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise typer.BadParameter(f"{text!r} is not a duration such as 30m, 12h, 7d or 2w")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


@policy_app.command("preview")
def policy_preview(
    proposed_dir: Annotated[Path, typer.Option("--policy-dir", help="The proposed policy directory.")],
    since: Annotated[
        timedelta,
        typer.Option(parser=log_window_length, metavar="DURATION", show_default="7d", help="Replay the decisions logged this far back: 30m, 12h, 7d, 2w."),
    ] = timedelta(days=7),
    against: Annotated[
        Path | None, typer.Option("--against", help="The policy to compare with (default GATEWAY_POLICY_DIR, else policies/).")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when an obligation changes, too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the impact as JSON.")] = False,
) -> None:
    """Decide the inputs of the decision log again under a proposed policy and say what would change
    from the current one: fields whose access flips, obligations whose terms change. Exit 0 when
    nothing flips, 1 when something does (with --strict, also when an obligation changes), 2 when
    the proposed policy would be rejected on reload."""
    from gateway.policy.preview import PolicyRejected, Preview, replay, vetted_engine
    from gateway.policy.preview_report import print_preview
    from gateway.store.decision_log import log_window, logged_inputs

    settings = Settings()
    current_dir = against or settings.policy_dir
    start = utc_now() - since

    async def run() -> Preview:
        async with contextlib.AsyncExitStack() as engines:
            try:
                proposed = await engines.enter_async_context(vetted_engine(proposed_dir, workers=settings.policy_workers))
            except PolicyRejected as exc:
                fail(f"the proposed policy in {proposed_dir} would be rejected on reload: {exc}", EXIT_BAD_INPUT)
            try:
                current = await engines.enter_async_context(vetted_engine(current_dir, workers=settings.policy_workers))
            except PolicyRejected as exc:
                fail(f"the current policy in {current_dir} cannot be compared with: {exc}", EXIT_BAD_INPUT)
            keys_read = current.reads.principal | proposed.reads.principal
            # One snapshot of the log: the window's counts are those of the inputs read.
            async with open_owner(settings) as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                try:
                    window = await log_window(conn, start, keys_read)
                    inputs = logged_inputs(conn, start, keys_read)
                    if window.inputs < PREVIEW_PROGRESS_FROM:
                        impact = await replay(inputs, current, proposed, concurrency=settings.policy_workers)
                    else:
                        with progress_bar("inputs") as progress:
                            task = progress.add_task("deciding again", total=window.inputs)
                            impact = await replay(
                                inputs, current, proposed, concurrency=settings.policy_workers, decided=lambda: progress.advance(task)
                            )
                except STORE_FAILURES as exc:
                    raise StoreUnavailable(f"the store failed while the decision log was read: {type(exc).__name__}: {exc}") from exc
            return Preview(proposed_dir, proposed.revision, current_dir, current.revision, start, window, impact)

    # The engines log for a server's operators (a rejected policy, a worker restarted); here the
    # report says it, once.
    quiet = logging.NullHandler()
    logging.getLogger("gateway.policy").addHandler(quiet)
    try:
        preview = asyncio.run(run())
    finally:
        logging.getLogger("gateway.policy").removeHandler(quiet)
    if as_json:
        typer.echo(json.dumps(preview.as_document(), indent=2))
    else:
        print_preview(Console(), preview, strict)
    if preview.impact.flips or (strict and preview.impact.terms):
        raise typer.Exit(1)

