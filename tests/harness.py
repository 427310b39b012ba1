"""The tests' one way to run the gateway: the real app with its lifespan running over a module's own
database, a clock the test sets, and HTTP clients of it as any principal.

`running_gateway` is the factory every test folder's fixture uses. Time is the test's: activity
can arrive over simulated days (`Gateway.play`) in seconds, since the release history follows
arrival, and answers are given at whatever moment the clock shows.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asyncpg.connection import LoggedQuery
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from gateway.app import create_app
from gateway.auth import ANONYMOUS, Principal, PrincipalKind, create_app_token, create_token
from gateway.config import Settings
from gateway.ingest.events import Window
from gateway.ingest.ndjson import parse_objects
from gateway.policy.worker import PolicyFiles
from gateway.store.ingest import BatchResult, EventWriter
from gateway.store.migrate import migrate
from gateway.store.pools import Store

__all__ = [
    "APP_SECRET",
    "FIELD_TEST_TERMS",
    "ROOMY_RATE_LIMIT",
    "SHIPPED_POLICIES",
    "Gateway",
    "TestClock",
    "authorization",
    "field_test_privacy",
    "policies_granting",
    "policies_with",
    "roomy_policies",
    "running_gateway",
    "serve",
    "statements_on",
]

SHIPPED_POLICIES = Path(__file__).parents[1] / "policies"

# The field tests check what each field computes from a hand-counted fixture of a few people,
# so they run under the shipped policy with its thresholds off: no k (every arrival makes a
# release), no delay after a bucket closes. What the thresholds do is tested in tests/privacy
# and tests/attacks, under the shipped terms.
FIELD_TEST_TERMS = {"k_threshold": 0, "bucket_delay_seconds": 0}


def field_test_privacy(floor: str, suppressed_cells: int = 0) -> dict[str, Any]:
    """`extensions.privacy` of an answer under FIELD_TEST_TERMS to a principal without noise."""
    return {"k": 0, "granularityFloor": floor, "suppressedCells": suppressed_cells, "noised": False, "epsilonSpent": 0.0, "budgetLeft": None}


# The app signs with a secret long enough for HS256 (PyJWT warns, an error here, below 32 bytes).
APP_SECRET = "graphql-tests-app-secret-" + "0123456789abcdef" * 2


class TestClock:
    """The gateway's clock in a test: it shows what the test last set (the real time to begin with)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    @contextlib.contextmanager
    def at(self, moment: datetime) -> Any:
        """The clock shows `moment` inside the block, and what it showed before after it."""
        before, self.now = self.now, moment
        try:
            yield
        finally:
            self.now = before


@dataclass
class Gateway:
    """The app, its lifespan state (its store), a client that sends the app requests as a principal,
    and the clock the app reads."""

    app: Starlette
    state: dict[str, Any]
    http: httpx.AsyncClient
    clock: TestClock = field(default_factory=TestClock)

    @property
    def store(self) -> Store:
        store: Store = self.state["store"]
        return store

    @property
    def writer(self) -> EventWriter:
        writer: EventWriter = self.state["writer"]
        return writer

    async def policy_in_force(self) -> None:
        """Puts the policy files as they are now in force, as the engine's watcher does within a
        second of a change (whether the watcher got there first or not)."""
        engine = self.state["engine"]
        await engine.reload()
        assert engine.revision == PolicyFiles.read(engine.policy_dir).revision, engine.last_error

    def forget_kept_answers(self) -> None:
        """Lets go of what the app keeps because it can no longer change (the release reader's
        answers and whole responses): for a test that makes arrivals in the past of a question it
        already asked, which a real clock never does."""
        self.state["releases"].clear()
        self.state["responses"].clear()

    async def ingest(self, events: Iterable[dict[str, Any]]) -> BatchResult:
        """Events arriving now (the clock's now), as `POST /events` takes them: validated against
        the lateness window, then one batch through the app's writer, which makes the releases
        they complete."""
        batch = parse_objects(events, window=Window(self.clock(), self.state["settings"].lateness))
        batch.raise_if_invalid()
        return await self.writer.write(batch.records)

    async def backfill(self, events: Iterable[dict[str, Any]]) -> int:
        """Events of any age for subjects with no history yet, as `gateway ingest --backfill` loads
        them: stored, then applied in order of occurrence (each at the end of its hour). Returns
        the releases made."""
        batch = parse_objects(events, window=Window(self.clock(), self.state["settings"].lateness), backfill=True)
        batch.raise_if_invalid()
        await self.writer.hold(batch.records)
        return await self.writer.replay()

    async def play(self, events: Iterable[dict[str, Any]]) -> None:
        """Events arriving as they happen: each hour's events as one arrival at the end of that hour
        (at the clock's now for the hour now running), oldest first. The clock is back where it was
        afterwards."""
        by_hour: dict[datetime, list[dict[str, Any]]] = {}
        for event in events:
            occurred = datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00"))
            by_hour.setdefault(occurred.replace(minute=0, second=0, microsecond=0), []).append(event)
        for hour in sorted(by_hour):
            arrival = min(hour + timedelta(hours=1) - timedelta(microseconds=1), self.clock())
            with self.clock.at(arrival):
                await self.ingest(by_hour[hour])

    async def graphql(self, query: str, variables: dict[str, Any] | None = None, *, principal: Principal = ANONYMOUS) -> httpx.Response:
        """POST /graphql as `principal` (a bearer token signed with the app's secret, none for anonymous)."""
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.http.post("/graphql", json=body, headers=authorization(principal))

    def from_address(self, address: str) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        """Another client of the app, whose requests come from `address` (the app's own client's
        come from 127.0.0.1)."""
        return serve(self.app, self.state, address=address)

    async def scrape(self) -> str:
        """GET /metrics as an operator does: with a `service` token."""
        response = await self.http.get("/metrics", headers=authorization(OPERATOR))
        assert response.status_code == 200, response.text
        return response.text


OPERATOR = Principal(PrincipalKind.SERVICE, "prometheus")


def authorization(principal: Principal) -> dict[str, str]:
    if principal.kind is PrincipalKind.ANONYMOUS:
        return {}
    assert principal.id is not None
    if principal.kind is PrincipalKind.APP:
        app_id = principal.app_id or "app-tests"
        token = create_app_token(APP_SECRET, app_id, principal.id, sorted(principal.scopes) or ["stats"], ttl_seconds=300)
    else:
        token = create_token(APP_SECRET, principal.kind, principal.id, ttl_seconds=300, scopes=principal.scopes)
    return {"Authorization": f"Bearer {token}"}


# A rate limit no test comes near. Tests that are not about rate limits run under it (the shipped
# policy's figures let a module's app serve 120 signed-out requests a minute); tests/routes/
# test_rate_limits.py runs under figures of its own, and the shipped ones are pinned by the Rego tests.
ROOMY_RATE_LIMIT = {"requests_per_minute": 1_000_000}


def policies_with(target: Path, terms: dict[str, Any]) -> Path:
    """A copy of the shipped policies in `target` whose obligations set `terms` for every principal
    kind, and ROOMY_RATE_LIMIT unless `terms` set a rate_limit."""
    # The shipped Rego tests pin the shipped figures; a policy with other figures goes without them.
    shutil.copytree(SHIPPED_POLICIES, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*_test.rego"))
    data_file = target / "data.json"
    data = json.loads(data_file.read_text())
    obligations = data["obligations"]
    terms = {"rate_limit": ROOMY_RATE_LIMIT, **terms}
    obligations["defaults"].update(terms)
    for overrides in obligations["principals"].values():
        overrides.update(terms)
        if terms["rate_limit"] is ROOMY_RATE_LIMIT:
            overrides.pop("rate_limit_by_scope", None)
    data_file.write_text(json.dumps(data, indent=2))
    return target


@functools.cache
def roomy_policies() -> Path:
    """The shipped policies under ROOMY_RATE_LIMIT, made once a run: the gateway's policy in tests
    unless one says otherwise."""
    target = Path(tempfile.mkdtemp(prefix="gateway-test-policies-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    return policies_with(target, {})


def policies_granting(policies: Path, kind: str, group: str) -> Path:
    """`policies` (a copy of a policy directory) with `group` granted to principal kind `kind` as well,
    as compliance would switch a field group on."""
    data_file = policies / "data.json"
    data = json.loads(data_file.read_text())
    data["access"]["principals"][kind]["groups"].append(group)
    data_file.write_text(json.dumps(data, indent=2))
    return policies


@contextlib.asynccontextmanager
async def serve(app: Starlette, state: dict[str, Any], *, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` whose requests see the lifespan `state`, and come from `address`."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        # As an ASGI server does: each request's scope carries a copy of the lifespan state.
        await app({**scope, "state": dict(state)}, receive, send)

    transport = httpx.ASGITransport(app=asgi, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


# What asyncpg sends to introspect a type: the lookup itself, and JIT switched off around it.
ASYNCPG_INTROSPECTION = ("typeinfo_tree", "current_setting('jit')", "set_config('jit'")


@contextlib.asynccontextmanager
async def statements_on(*pools: asyncpg.Pool) -> AsyncIterator[list[str]]:
    """The statements the gateway sends on any connection of `pools` while the block runs (asyncpg's
    own type introspection aside)."""
    statements: list[str] = []

    def log(record: LoggedQuery) -> None:
        if not any(marker in record.query for marker in ASYNCPG_INTROSPECTION):
            statements.append(record.query)

    async def each_connection(pool: asyncpg.Pool, change: Callable[[asyncpg.Connection], None]) -> None:
        # Check out every connection the pool may hold (it opens the missing ones), so every one logs.
        connections = [await pool.acquire() for _ in range(pool.get_max_size())]
        for connection in connections:
            change(connection)
            await pool.release(connection)

    for pool in pools:
        await each_connection(pool, lambda connection: connection.add_query_logger(log))
    try:
        yield statements
        # asyncpg hands records to loggers with loop.call_soon: let the ones queued so far run.
        flushed = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(flushed.set_result, None)
        await flushed
    finally:
        for pool in pools:
            await each_connection(pool, lambda connection: connection.remove_query_logger(log))


@contextlib.asynccontextmanager
async def running_gateway(
    database_url: str, *, policy_dir: Path | None = None, clock: TestClock | None = None, **settings: Any
) -> AsyncIterator[Gateway]:
    """The app over `database_url`, its lifespan run as a server runs it, deciding with the embedded
    engine over `policy_dir` (the shipped policies under ROOMY_RATE_LIMIT unless given); `settings`
    are further Settings fields."""
    clock = clock or TestClock()
    policy_dir = policy_dir or roomy_policies()
    # The data dir holds the OAuth signing keys: each gateway its own, never the checkout's .gateway.
    settings.setdefault("data_dir", Path(tempfile.mkdtemp(prefix="gateway-test-data-")))
    app = create_app(Settings(database_url=database_url, secret=APP_SECRET, policy_dir=policy_dir, **settings), clock=clock)
    try:
        async with app.router.lifespan_context(app) as state:
            async with serve(app, dict(state or {})) as http:
                yield Gateway(app=app, state=dict(state or {}), http=http, clock=clock)
    finally:
        # The lifespan's migrate sets role passwords (on servers that ask for them) from its secret; give them back.
        from conftest import SECRET

        await migrate(database_url, SECRET)
