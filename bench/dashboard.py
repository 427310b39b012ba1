"""GraphQL overhead: a creator's dashboard query under uvicorn, against a bare Starlette endpoint doing the same data work.

Run: .venv/bin/python bench/dashboard.py [--events N] [--scale-events M] [--duration S] [--rounds R] [--query dashboard|insights]

Uses GATEWAY_DATABASE_URL's server, or a throwaway embedded Postgres. One run:
1. loads N demo events (gateway.demo.DemoPlatform, 4 weeks) into a fresh
   database as `gateway demo-data` does: a backfill through the real ingest
   path (EventWriter.hold), then the history built in order of occurrence
   (EventWriter.replay); the load time includes the replay. The most shared
   video and its creator are the dashboard's subject;
2. serves the real app (create_app, uvicorn with uvloop + httptools, one
   worker) twice: as shipped, keeping whole answers (`graphql`), and with
   GATEWAY_RESPONSE_CACHE_MB=0, making every answer anew (`anew`); and, in
   another process, a bare Starlette endpoint that does the
   same data work with no authentication, no GraphQL and no policy: the same
   video lookup (gateway.store.queries) on the same kind of pool
   (Store.reader), the same privacy service (gateway.privacy.disclosure.
   Disclosure over a gateway.store.releases.ReleaseReader, a creator's terms:
   gateway.graphql.policy_guard.BASELINE_TERMS), answering the same JSON;
   checks once that the answers (data and extensions.privacy) are equal;
3. drives each server in turn from another process (32 keep-alive HTTP/1.1
   clients on raw asyncio streams): a warm-up, then a fixed duration; rounds
   alternate graphql, anew, bare, graphql, … and the best round of each counts.
   Every request is the same creator's dashboard, so `graphql` serves it kept
   after the first request of each minute: the figure of a repeated dashboard;
   `anew` is the figure of one asked for the first time.

With --query insights, the graphql and anew servers are measured twice over in the same rounds:
with the dashboard query above and with its variant that asks for the insights of issue 15 as
well (reach, retention, comment sentiment, share surges; the creator's audience activity), and
the report gives the variant's p50 over the dashboard's (the bare endpoint does the dashboard
query's work only). The variant is checked against the gateway's schema before anything is
loaded: a field the schema lacks stops the run, naming it.

Targets: GraphQL (both) >= 0.5 of the bare endpoint's requests/s; with --query insights, the
variant's p50 <= 1.3x the dashboard's (the issue: "within the same latency as today"); with
--scale-events M, p50 at M events <= 1.3x p50 at N events (both data sets
are measured in the same interleaved rounds). The machine is shared and
noisy: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and its files (policy.py, privacy.py, …)
# would shadow modules of the same name for everything imported below.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from gateway.auth import PrincipalKind, create_token  # noqa: E402
from gateway.clock import utc_now  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.demo import DemoPlatform  # noqa: E402
from gateway.ingest.events import Window  # noqa: E402
from gateway.ingest.ndjson import parse_objects  # noqa: E402
from gateway.ingest.pipeline import IngestTotals, chunked, ingest_chunks  # noqa: E402
from gateway.store.ingest import BatchResult, EventWriter  # noqa: E402
from gateway.store.migrate import migrate  # noqa: E402
from gateway.store.pools import Store  # noqa: E402
from gateway.store.server import ensure_database, start_embedded  # noqa: E402

ROOT = _HERE.parent
HOST = "127.0.0.1"
BATCH = 10_000
SEED = 42
# HS256 wants >= 32 bytes. On a server of your own (GATEWAY_DATABASE_URL) GATEWAY_SECRET is used when set,
# because migrate() gives the cluster-wide roles passwords derived from the secret.
BENCH_SECRET = "bench-graphql-secret-not-for-production-0123456789"
SPAN = timedelta(days=30)
# The gateway as served (whole answers kept: gateway.graphql.responses), the gateway making every
# answer anew (GATEWAY_RESPONSE_CACHE_MB=0), and the bare endpoint.
KINDS = ("graphql", "anew", "bare")

DASHBOARD = (
    "query Dashboard($id: ID!, $from: DateTime!, $to: DateTime!) { video(id: $id) { id "
    "stats { views likes comments shares likeRatio engagementRate } "
    "shareTimeline(granularity: DAY, from: $from, to: $to) { buckets { start count suppressed } } "
    "shareChannels { buckets { key count suppressed } } } }"
)
# The dashboard with the insights of issue 15 (the agreed shapes), as the dashboard page asks for them.
INSIGHTS = (
    "query Insights($id: ID!, $creator: ID!, $from: DateTime!, $to: DateTime!) { video(id: $id) { id "
    "stats { views likes comments shares reach likeRatio engagementRate } "
    "shareTimeline(granularity: DAY, from: $from, to: $to) { buckets { start count suppressed } } "
    "shareChannels { buckets { key count suppressed } } "
    "retention { points { percent share suppressed } } "
    "commentSentiment { buckets { key count suppressed } } "
    "shareSurges { releasedAt factor sharesPerHour } } "
    "creator(id: $creator) { audienceActivity(timeZone: \"UTC\") { timeZone cells { dayOfWeek hour viewers suppressed } } } }"
)
QUERIES = {"dashboard": DASHBOARD, "insights": INSIGHTS}


def check_against_schema(query: str) -> None:
    """Stops the run before anything is loaded, naming what is missing, if the gateway's schema
    cannot answer `query` (a variant edited out of step with the schema)."""
    import graphql

    from gateway.graphql.schema import build_schema

    problems = graphql.validate(graphql.build_schema(build_schema().as_str()), graphql.parse(query))
    if problems:
        raise SystemExit("the gateway's schema cannot answer the query:\n" + "\n".join(f"  {problem.message}" for problem in problems))



# ---------------------------------------------------------------------------------------------------------------------
# Data sets


@dataclass
class Dataset:
    label: str
    events: int
    name: str
    url: str
    video_id: str = ""
    creator_id: str = ""
    shares: int = 0
    load_seconds: float = 0.0


def label_of(events: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if events >= size and events % (size // 10) == 0:
            return f"{events / size:g}{unit}"
    return f"{events:,}"


async def execute_naming(url: str, template: str, *names: str) -> None:
    """Runs `template` (a statement with a `%I` for each of `names`) with the names quoted by
    Postgres's own format(): DDL takes no parameters."""
    conn = await asyncpg.connect(url)
    try:
        placeholders = "".join(f", ${n}::text" for n in range(1, len(names) + 1))
        await conn.execute(await conn.fetchval(f"SELECT format(${len(names) + 1}::text{placeholders})", *names, template))
    finally:
        await conn.close()


async def drop_database(server_url: str, name: str) -> None:
    await execute_naming(server_url, "DROP DATABASE IF EXISTS %I WITH (FORCE)", name)


async def build_dataset(server_url: str, events: int, secret: str, end: datetime) -> Dataset:
    name = f"gateway_bench_graphql_{os.getpid()}_{events}"
    await drop_database(server_url, name)
    dataset = Dataset(label_of(events), events, name, await ensure_database(server_url, name))
    await migrate(dataset.url, secret)
    users, videos = max(100, events // 50), max(10, events // 300)
    print(f"[{dataset.label}] loading {events:,} events ({users:,} users, {videos:,} videos) through ingest as a backfill …",
          flush=True)
    platform = DemoPlatform(users=users, videos=videos, events=events, seed=SEED, end=end)

    started = last_report = time.perf_counter()
    loaded = 0

    def progress(result: BatchResult) -> None:
        nonlocal loaded, last_report
        loaded += result.received
        now = time.perf_counter()
        if now - last_report >= 10 and loaded < events:
            last_report = now
            rate = loaded / (now - started)
            print(f"  {loaded:>12,} / {events:,} events ({loaded / events:4.0%})  {rate:,.0f} events/s  "
                  f"eta {(events - loaded) / rate:.0f} s", flush=True)

    store = await Store.open(dataset.url, secret)
    try:
        totals, replay_seconds = await backfill(store, platform.generate(), BATCH, on_batch=progress)
    finally:
        await store.close()
    dataset.load_seconds = time.perf_counter() - started
    assert totals.received == events, totals

    conn = await asyncpg.connect(dataset.url)
    try:
        # Leave nothing for autovacuum or a checkpoint to do while we measure.
        vacuum_started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CHECKPOINT")
        vacuum_seconds = time.perf_counter() - vacuum_started
        dataset.video_id, dataset.creator_id, dataset.shares = await most_shared(conn)
    finally:
        await conn.close()
    print(f"[{dataset.label}] loaded in {dataset.load_seconds:.1f} s ({events / dataset.load_seconds:,.0f} events/s, "
          f"of which the replay into the history {replay_seconds:.1f} s; vacuum+checkpoint {vacuum_seconds:.1f} s); "
          f"subject: video {dataset.video_id} by {dataset.creator_id}, {dataset.shares:,} shares", flush=True)
    return dataset


async def backfill(store: Store, events: Iterable[dict[str, Any]], batch: int,
                   on_batch: Callable[[BatchResult], None] = lambda result: None) -> tuple[IngestTotals, float]:
    """Loads generated events as `gateway demo-data` does: the demo's weeks reach further back than
    the lateness window, so they are held as a backfill, then replayed into the history in order of
    occurrence. Returns what was held and the seconds the replay took."""
    writer = EventWriter(store.ingest)
    parse = functools.partial(parse_objects, window=Window(utc_now(), Settings().lateness), backfill=True)
    totals = await ingest_chunks(writer.hold, chunked(events, batch), parse, on_batch=on_batch)
    started = time.perf_counter()
    await writer.replay()
    return totals, time.perf_counter() - started


async def most_shared(conn: asyncpg.Connection) -> tuple[str, str, int]:
    """The video with the most shares arrived (the owner's connection reads the live totals), its
    creator, and that count."""
    row = await conn.fetchrow(
        """SELECT v.video_id, v.creator_id, t.events AS shares
           FROM live_totals t JOIN videos v ON v.video_id = t.subject_id
           WHERE t.metric = 's' ORDER BY t.events DESC, v.video_id LIMIT 1"""
    )
    return row["video_id"], row["creator_id"], row["shares"]


# ---------------------------------------------------------------------------------------------------------------------
# The bare endpoint (runs in its own process: `dashboard.py _bare --port P`, GATEWAY_DATABASE_URL / GATEWAY_SECRET from env)


def bare_app(url: str, secret: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from gateway.auth import Principal
    from gateway.graphql.policy_guard import BASELINE_TERMS
    from gateway.graphql.ranges import time_range
    from gateway.graphql.shapes import breakdown
    from gateway.graphql.video import ratio
    from gateway.privacy.budget import BudgetLedger
    from gateway.privacy.disclosure import Disclosure
    from gateway.privacy.metrics import SHARES
    from gateway.privacy.noise import derive_noise_key
    from gateway.privacy.release import Granularity
    from gateway.store import queries
    from gateway.store.releases import ReleaseReader

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        store = await Store.open(url, secret)
        try:
            yield {
                "reader": store.reader,
                "releases": ReleaseReader(store.reader),
                "noise_key": derive_noise_key(secret),
                "budget": BudgetLedger(store.reader),
            }
        finally:
            await store.close()

    async def dashboard(request: Request) -> Response:
        # No authentication, no GraphQL, no policy: the creator's terms (BASELINE_TERMS) applied by the same
        # privacy service over the same release reader (and its kept answers) as the app's. As the resolvers
        # do, stats, the timeline and the channels are asked for concurrently after the video lookup, so the
        # service's loaders batch the releases they read into one statement.
        body = json.loads(await request.body())
        video_id = body["id"]
        now = datetime.now(UTC)
        async with request.state.reader.acquire() as conn:
            row = (await queries.videos_by_id(conn, [video_id])).get(video_id)
        if row is None:
            return JSONResponse({"data": {"video": None}})
        principal = Principal(PrincipalKind.USER, row.creator_id)
        disclosure = Disclosure(BASELINE_TERMS, request.state.releases, request.state.noise_key, now)
        granularity = Granularity.DAY
        start, end = time_range(granularity, datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"]), now)
        totals, series, cells = await asyncio.gather(
            disclosure.video_totals(video_id),
            disclosure.timeline(video_id, SHARES, granularity, start, end),
            disclosure.breakdown(video_id, SHARES, "channel"),
        )
        await request.state.budget.charge(disclosure, principal)
        video = {
            "id": row.video_id,
            "stats": {
                "views": totals.views,
                "likes": totals.likes,
                "comments": totals.comments,
                "shares": totals.shares,
                "likeRatio": ratio(totals.likes, totals.views),
                "engagementRate": ratio(totals.likes + totals.comments + totals.shares, totals.views),
            },
            "shareTimeline": {"buckets": [{"start": moment.isoformat(), "count": count, "suppressed": False}
                                          for moment, count in series.buckets]},
            "shareChannels": {"buckets": [{"key": b.key, "count": b.count, "suppressed": b.suppressed}
                                          for b in breakdown(cells).buckets]},
        }
        return JSONResponse({"data": {"video": video}, "extensions": {"privacy": disclosure.report()}})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/dashboard", dashboard, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )


def serve(which: str, port: int) -> None:
    import uvicorn

    if which == "graphql":
        from gateway.app import create_app
        from gateway.config import Settings

        app = create_app(Settings())  # GATEWAY_DATABASE_URL and GATEWAY_SECRET from the environment
    else:
        app = bare_app(os.environ["GATEWAY_DATABASE_URL"], os.environ["GATEWAY_SECRET"])
    uvicorn.run(app, host=HOST, port=port, loop="uvloop", http="httptools", workers=1, access_log=False, log_level="warning")


# ---------------------------------------------------------------------------------------------------------------------
# The load generator (runs in its own process: `dashboard.py _load …`; prints one JSON line)


def percentile(ordered: list[int], q: float) -> float:
    """Nearest rank, in milliseconds, of latencies in nanoseconds."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] / 1e6


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process in `pids` with all of its descendants (a server's workers, Postgres's
    backends), by the pid it was asked for."""
    import psutil  # type: ignore[import-untyped]  # comes with pgserver

    found: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            for each in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = each.cpu_times()
                    # With what its exited children used (a Postgres backend that closed, counted
                    # by the postmaster once reaped): the figure only grows.
                    found[pid] = found.get(pid, 0.0) + times.user + times.system + times.children_user + times.children_system
    return found


def cpu_delta(before: dict[int, float], after: dict[int, float], pid: int) -> float:
    return after.get(pid, 0.0) - before.get(pid, 0.0)


def machine_cpu() -> dict[int, tuple[str, float]]:
    """The name and CPU seconds so far of every process on the machine, kernel threads included, by pid."""
    import psutil  # type: ignore[import-untyped]  # comes with pgserver

    found: dict[int, tuple[str, float]] = {}
    for each in psutil.process_iter(["name", "cpu_times"]):
        times = each.info["cpu_times"]
        if times is not None:
            found[each.pid] = (each.info["name"] or "?", times.user + times.system)
    return found


def others_cpu(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], pids: list[int]) -> dict[str, float]:
    """CPU seconds the machine's other processes used between two `machine_cpu` snapshots, by name
    (a kernel worker's changes with its work: the pid is what is compared): all but `pids`, their
    descendants, and this process's (the load generator)."""
    import psutil  # type: ignore[import-untyped]  # comes with pgserver

    ours = {os.getpid(), *pids}
    for pid in [os.getpid(), *pids]:
        with contextlib.suppress(psutil.Error):
            ours.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    used: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        spent = seconds - before.get(pid, (name, 0.0))[1]
        if pid not in ours and spent > 0:
            name = name.split("-", 1)[0] if name.startswith("kworker/") else name
            used[name] = used.get(name, 0.0) + spent
    return used


async def drive(port: int, requests: list[bytes], concurrency: int, warmup: float, duration: float,
                server_pid: int, postgres_pid: int | None) -> dict[str, Any]:
    WARMUP, MEASURE, STOP = 0, 1, 2
    phase = WARMUP
    latencies: list[int] = []
    errors: list[str] = []

    async def client(offset: int) -> None:
        # Each client goes through the requests in turn, starting at its own.
        reader, writer = await asyncio.open_connection(HOST, port)
        sent = offset
        try:
            while phase != STOP:
                counted = phase == MEASURE
                started = time.perf_counter_ns()
                writer.write(requests[sent % len(requests)])
                sent += 1
                head = await reader.readuntil(b"\r\n\r\n")
                lowered = head.lower()
                at = lowered.index(b"\r\ncontent-length:") + 17
                body = await reader.readexactly(int(lowered[at : lowered.index(b"\r\n", at)]))
                finished = time.perf_counter_ns()
                if not head.startswith(b"HTTP/1.1 200 ") or b'"errors"' in body:
                    if len(errors) < 5:
                        errors.append((head.split(b"\r\n", 1)[0] + b" " + body[:300]).decode(errors="replace"))
                    else:
                        errors.append("")
                elif counted and phase == MEASURE:
                    latencies.append(finished - started)
        finally:
            writer.close()

    tasks = [asyncio.create_task(client(offset)) for offset in range(concurrency)]
    watched = [server_pid] + ([postgres_pid] if postgres_pid else [])
    try:
        await asyncio.sleep(warmup)
        for task in tasks:
            if task.done():
                task.result()  # a client that failed to connect or read fails the run
        cpu_before, own_before = cpu_seconds(watched), time.process_time()
        started = time.perf_counter()
        phase = MEASURE
        await asyncio.sleep(duration)
        phase = STOP
        elapsed = time.perf_counter() - started
        cpu_after, own_after = cpu_seconds(watched), time.process_time()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    finally:
        for task in tasks:
            task.cancel()
    server_cpu = cpu_delta(cpu_before, cpu_after, server_pid)
    postgres_cpu = cpu_delta(cpu_before, cpu_after, postgres_pid) if postgres_pid else 0.0
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "errors": len(errors),
        "error_samples": [e for e in errors if e][:3],
        "cpu_loadgen": (own_after - own_before) / elapsed,
        "cpu_server": server_cpu / elapsed,
        "cpu_postgres": postgres_cpu / elapsed if postgres_pid else None,
    }


def load_main(argv: list[str]) -> None:
    import uvloop

    parser = argparse.ArgumentParser(prog="dashboard.py _load")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--request-file", type=Path, required=True, action="append", help="raw HTTP requests, sent in turn")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--warmup", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--postgres-pid", type=int)
    args = parser.parse_args(argv)
    result = uvloop.run(drive(args.port, [path.read_bytes() for path in args.request_file], args.concurrency, args.warmup, args.duration,
                              args.server_pid, args.postgres_pid))
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# The orchestrator


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    kind: str  # one of KINDS
    dataset: Dataset
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    label: str | None = None  # what it is called in figures (default: its kind)
    request: Path = field(default=Path())
    query: str = "dashboard"  # one of QUERIES (the bare endpoint: the dashboard's work)

    @property
    def name(self) -> str:
        query = "" if self.query == "dashboard" else f"/{self.query}"
        return f"{self.label or self.kind}{query} {self.dataset.label}"

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"


def unthrottled_policies(target: Path) -> Path:
    """A copy of the shipped policies in `target` with a rate limit no load reaches: one client
    sends thousands of requests a minute as one creator, and the figures are of answers, not 429s."""
    shutil.copytree(ROOT / "policies", target, ignore=shutil.ignore_patterns("*_test.rego"))  # their tests pin the shipped limits
    data = json.loads((target / "data.json").read_text())
    for terms in (data["obligations"]["defaults"], *data["obligations"]["principals"].values()):
        terms["rate_limit"] = {"requests_per_minute": 1_000_000_000}
        terms.pop("rate_limit_by_scope", None)
    (target / "data.json").write_text(json.dumps(data))
    return target


def start_server(kind: str, dataset: Dataset, secret: str, workdir: Path, *, command: str | None = None,
                 script: Path = Path(__file__).resolve(), env: dict[str, str] | None = None, query: str = "dashboard") -> Server:
    """Runs `script _<command> --port P` (this file's `_graphql` or `_bare` by default; `command`
    defaults to `kind`) with `env` added to ours, to be asked `query`."""
    port = free_port()
    argv = [sys.executable, str(script), f"_{command or kind}", "--port", str(port)]
    server = launch(kind, dataset, argv, port, workdir, {"GATEWAY_DATABASE_URL": dataset.url, "GATEWAY_SECRET": secret,
                                                        "GATEWAY_DATA_DIR": str(workdir / "data"),
                                                        "GATEWAY_POLICY_DIR": str(workdir / "policies"), **(env or {})},
                    log_as=f"{kind}-{query}")
    server.query = query
    return server


def launch(kind: str, dataset: Dataset, argv: list[str], port: int, workdir: Path, env: dict[str, str], name: str | None = None,
           log_as: str | None = None) -> Server:
    """Runs `argv` (a server that will listen on `port`) in a session of its own, with `env` added to
    ours and its output in a log of the work directory (named `log_as`, default its name)."""
    log = workdir / f"{log_as or name or kind}-{dataset.label}.log".replace(" ", "-")
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Server(kind, dataset, port, process, log, label=name)


def wait_ready(server: Server, timeout: float = 90.0, probe: Callable[[Server], bool] | None = None) -> None:
    """Until `probe(server)` (default: its /healthz answers 200) is true; fails when the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} server exited with {server.process.returncode}:\n{server.log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if probe(server) if probe else httpx.get(f"{server.base}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} server did not answer within {timeout:.0f} s:\n{server.log.read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    """Stops the server, then whatever of its session (its workers) outlived it."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.process.pid, signal.SIGKILL)  # its own session (start_new_session): its group id is its pid


def raw_request(path: str, port: int, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def prepare(server: Server, secret: str, start: datetime, end: datetime, workdir: Path) -> dict[str, Any]:
    """Writes the server's raw request to a file, sends it once and returns the response's data and privacy report."""
    dataset = server.dataset
    token = create_token(secret, PrincipalKind.USER, dataset.creator_id, ttl_seconds=24 * 3600)
    if server.kind != "bare":
        path = "/graphql"
        variables = {"id": dataset.video_id, "from": start.isoformat(), "to": end.isoformat()}
        if server.query == "insights":
            variables["creator"] = dataset.creator_id
        payload = {"query": QUERIES[server.query], "operationName": server.query.capitalize(), "variables": variables}
    else:
        path = "/dashboard"
        payload = {"id": dataset.video_id, "from": start.isoformat(), "to": end.isoformat()}
    body = json.dumps(payload, separators=(",", ":")).encode()
    server.request = workdir / f"request-{server.kind}-{server.query}-{dataset.label}.http"
    server.request.write_bytes(raw_request(path, server.port, token, body))
    response = httpx.post(f"{server.base}{path}", content=body, timeout=30,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    answer = response.json()
    if response.status_code != 200 or answer.get("errors"):
        raise RuntimeError(f"{server.name} answered {response.status_code}: {response.text[:2000]}")
    return {"data": answer["data"], "privacy": answer.get("extensions", {}).get("privacy")}


# wrk's script: its thread's connections send the raw requests in turn (one counter for all of
# them), count answers that are not a 200 without "errors", and `done` prints the figures as one
# JSON line.
WRK_SCRIPT = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  requests, bad, sample = {}, 0, ""
  for i, path in ipairs(args) do local f = assert(io.open(path, "rb")); requests[i] = f:read("*a"); f:close() end
  sent = 0
end
function request() sent = sent + 1; return requests[sent % #requests + 1] end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    bad = bad + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 300) end
  end
end
function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, thread in ipairs(threads) do bad = bad + thread:get("bad"); if sample == "" then sample = thread:get("sample") end end
  local e = summary.errors
  io.write(string.format('{"requests":%d,"micros":%d,"p50":%d,"p99":%d,"bad":%d,"socket_errors":%d,"sample":%q}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect + e.read + e.write + e.timeout, sample))
end
"""


def run_wrk(server: Server, args: argparse.Namespace, postgres_pid: int | None, warmup: float, duration: float,
            requests: list[Path]) -> dict[str, Any]:
    """Drives `server` with wrk (C, one thread, `args.concurrency` keep-alive connections): a warm-up run,
    then the measured one, with the servers' and wrk's CPU counted over the measured run only."""
    import resource

    script = server.log.parent / "wrk-requests.lua"
    script.write_text(WRK_SCRIPT)

    def wrk(seconds: float) -> tuple[dict[str, Any], float]:
        command = ["wrk", "-t1", f"-c{args.concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(script),
                   server.base, "--", *map(str, requests)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, capture_output=True, timeout=seconds + 120, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0 or not done.stdout.strip().endswith(b"}"):
            raise RuntimeError(f"wrk against {server.name} failed:\n{done.stdout.decode()[-2000:]}{done.stderr.decode()[-2000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return json.loads(done.stdout.decode().strip().splitlines()[-1]), cpu

    wrk(warmup)
    watched = [server.process.pid] + ([postgres_pid] if postgres_pid else [])
    cpu_before, machine_before = cpu_seconds(watched), machine_cpu()
    figures, own = wrk(duration)
    cpu_after, machine_after = cpu_seconds(watched), machine_cpu()
    others = others_cpu(machine_before, machine_after, watched)
    elapsed = figures["micros"] / 1e6
    if figures["bad"] or figures["socket_errors"]:
        raise RuntimeError(f"{server.name}: {figures['bad']} failed answers and {figures['socket_errors']} socket errors, "
                           f"e.g. {figures['sample']!r}")
    return {
        "requests": figures["requests"],
        "seconds": elapsed,
        "rps": figures["requests"] / elapsed,
        "p50": figures["p50"] / 1e3,
        "p99": figures["p99"] / 1e3,
        "errors": 0,
        "error_samples": [],
        "cpu_loadgen": own / elapsed,
        "cpu_server": cpu_delta(cpu_before, cpu_after, server.process.pid) / elapsed,
        "cpu_postgres": cpu_delta(cpu_before, cpu_after, postgres_pid) / elapsed if postgres_pid else None,
        # What else ran: kernel threads and other processes take a core from the server for
        # milliseconds at a time, which shows in the tail (bench/peers.py's table).
        "cpu_others": sum(others.values()) / elapsed,
        "others_top": sorted(((seconds / elapsed, name) for name, seconds in others.items()), reverse=True)[:3],
    }


def run_load(server: Server, args: argparse.Namespace, postgres_pid: int | None, warmup: float, duration: float,
             requests: list[Path] | None = None) -> dict[str, Any]:
    """Drives `server` from another process with `requests` (default: the server's one request), in turn:
    with wrk when `args.loadgen` says so, else with this file's asyncio clients."""
    if getattr(args, "loadgen", "python") == "wrk":
        return run_wrk(server, args, postgres_pid, warmup, duration, requests or [server.request])
    command = [sys.executable, str(Path(__file__).resolve()), "_load", "--port", str(server.port),
               "--concurrency", str(args.concurrency), "--warmup", str(warmup), "--duration", str(duration),
               "--server-pid", str(server.process.pid)]
    for request in requests or [server.request]:
        command += ["--request-file", str(request)]
    if postgres_pid:
        command += ["--postgres-pid", str(postgres_pid)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=warmup + duration + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load generator against {server.name} failed:\n{done.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{server.name}: {result['errors']} failed requests, e.g. {result['error_samples']}")
    return result


def cpu_note(result: dict[str, Any]) -> str:
    note = f"cpu: loadgen {result['cpu_loadgen']:4.0%}  server {result['cpu_server']:4.0%}"
    if result["cpu_postgres"] is not None:
        note += f"  postgres {result['cpu_postgres']:4.0%}"
    if result.get("cpu_others") is not None:
        top = ", ".join(f"{name} {share:.1%}" for share, name in result["others_top"] if share >= 0.001)
        note += f"  others {result['cpu_others']:4.1%}" + (f" ({top})" if top else "")
    return note


def describe(answer: dict[str, Any]) -> str:
    video = answer["data"]["video"]
    stats = video["stats"]
    return (f"views {stats['views']:,} likes {stats['likes']:,} comments {stats['comments']:,} shares {stats['shares']:,}; "
            f"{len(video['shareTimeline']['buckets'])} daily buckets "
            f"({sum(b['count'] or 0 for b in video['shareTimeline']['buckets']):,} shares in visible buckets); "
            f"{len(video['shareChannels']['buckets'])} channels; {answer['privacy']['suppressedCells']} cells suppressed")


def describe_insights(answer: dict[str, Any]) -> str:
    video, creator = answer["data"]["video"], answer["data"]["creator"]
    retention = video["retention"]
    activity = creator["audienceActivity"]
    shown = sum(1 for cell in activity["cells"] if not cell["suppressed"]) if activity else 0
    return (f"reach {video['stats']['reach']}; retention {'null' if retention is None else len(retention['points'])} points; "
            f"{len(video['commentSentiment']['buckets'])} sentiment classes; {len(video['shareSurges'])} share surges; "
            f"audience activity {shown} of {len(activity['cells']) if activity else 0} cells shown; "
            f"{answer['privacy']['suppressedCells']} cells suppressed")


def database_server() -> tuple[str, str, int | None]:
    """The Postgres server to load into (GATEWAY_DATABASE_URL's, or a throwaway embedded one), the secret
    to use with it, and the embedded server's pid (None for a server of your own)."""
    server_url = os.environ.get("GATEWAY_DATABASE_URL")
    if server_url:
        secret = os.environ.get("GATEWAY_SECRET") or BENCH_SECRET
        if len(secret) < 32:
            raise SystemExit("GATEWAY_SECRET must be at least 32 characters")
        return server_url, secret, None
    pgdata = Path(tempfile.mkdtemp(prefix="gateway-bench-pg-"))
    pgdata.chmod(0o755)  # the embedded server runs as its own system user when we are root
    # It stops and removes its directory when this process exits (cleanup_mode="delete").
    server_url = start_embedded(pgdata, cleanup_mode="delete")
    return server_url, BENCH_SECRET, int((pgdata / "postmaster.pid").read_text().split()[0])


def orchestrate(args: argparse.Namespace) -> None:
    # platformdirs warns (at pgserver's exit handler too) when XDG_RUNTIME_DIR is unset; pgserver copes.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-graphql-"))
    unthrottled_policies(workdir / "policies")
    server_url, secret, postgres_pid = database_server()

    # DemoPlatform's window ends at the top of the current hour, so the last 30 days hold its 4 weeks of data;
    # every request names the same explicit [from, to) so both servers count the same buckets.
    now = datetime.now(UTC).replace(microsecond=0)
    data_end = now.replace(minute=0, second=0)
    range_end = now
    range_start = range_end - SPAN

    datasets: list[Dataset] = []
    servers: list[Server] = []
    try:
        sizes = [args.events] + ([args.scale_events] if args.scale_events else [])
        for events in sizes:
            datasets.append(asyncio.run(build_dataset(server_url, events, secret, data_end)))

        queries = ["dashboard"] + (["insights"] if args.query == "insights" else [])
        for dataset in datasets:
            for query in queries:
                for kind in KINDS if query == "dashboard" else ("graphql", "anew"):
                    servers.append(start_server(kind, dataset, secret, workdir, command="graphql" if kind == "anew" else kind,
                                                env={"GATEWAY_RESPONSE_CACHE_MB": "0"} if kind == "anew" else None, query=query))
        for server in servers:
            wait_ready(server)
        print(f"servers up: {', '.join(f'{s.name} on :{s.port} (pid {s.process.pid})' for s in servers)}", flush=True)

        for dataset in datasets:
            answers = {server.kind: prepare(server, secret, range_start, range_end, workdir)
                       for server in servers if server.dataset is dataset and server.query == "dashboard"}
            if answers["graphql"] != answers["bare"] or answers["anew"] != answers["bare"]:
                raise RuntimeError(f"[{dataset.label}] answers differ:\n" + "\n".join(f"{kind}: {json.dumps(answer)[:3000]}"
                                                                                  for kind, answer in answers.items()))
            print(f"[{dataset.label}] graphql (kept and anew) and bare answers (data and extensions.privacy) are equal: "
                  f"{describe(answers['bare'])}", flush=True)
            insights = {server.kind: prepare(server, secret, range_start, range_end, workdir)
                        for server in servers if server.dataset is dataset and server.query == "insights"}
            if insights:
                if insights["graphql"] != insights["anew"]:
                    raise RuntimeError(f"[{dataset.label}] insights answers differ:\n" + "\n".join(
                        f"{kind}: {json.dumps(answer)[:3000]}" for kind, answer in insights.items()))
                print(f"[{dataset.label}] insights answers (kept and anew) are equal: {describe_insights(insights['graphql'])}", flush=True)

        print(f"\n{args.rounds} round(s) per server, {args.concurrency} clients, warm-up {args.warmup:g} s, "
              f"measured {args.duration:g} s each", flush=True)
        results: dict[str, list[dict[str, Any]]] = {server.name: [] for server in servers}
        for round_no in range(1, args.rounds + 1):
            for server in servers:
                result = run_load(server, args, postgres_pid, args.warmup, args.duration)
                results[server.name].append(result)
                print(f"  round {round_no}  {server.name:<14} {result['rps']:>8,.0f} req/s  p50 {result['p50']:7.2f} ms  "
                      f"p99 {result['p99']:7.2f} ms  ({result['requests']:,} requests; {cpu_note(result)})", flush=True)

        # How fast can the load generator go? /healthz of the bare server is about the cheapest request there is.
        ceiling_server = next(s for s in servers if s.kind == "bare")
        ceiling_request = workdir / "request-healthz.http"
        ceiling_request.write_bytes(f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{ceiling_server.port}\r\n\r\n".encode())
        saved, ceiling_server.request = ceiling_server.request, ceiling_request
        ceiling = run_load(ceiling_server, args, postgres_pid, 0.5, min(3.0, args.duration))
        ceiling_server.request = saved

        best = {name: max(runs, key=lambda r: r["rps"]) for name, runs in results.items()}
        print("\nbest round of each (by req/s):")
        print(f"  {'':<14} {'req/s':>8}  {'p50 ms':>8}  {'p99 ms':>8}")
        for name, result in best.items():
            print(f"  {name:<14} {result['rps']:>8,.0f}  {result['p50']:>8.2f}  {result['p99']:>8.2f}   ({cpu_note(result)})")
        busiest = max((r for runs in results.values() for r in runs), key=lambda r: r["cpu_loadgen"])
        print(f"  load generator: at most {busiest['cpu_loadgen']:.0%} of a core during the rounds; against /healthz "
              f"it drives {ceiling['rps']:,.0f} req/s at {ceiling['cpu_loadgen']:.0%} of a core, so it is not the bottleneck")
        for dataset in datasets:
            under = best[f"bare {dataset.label}"]
            for kind in ("graphql", "anew"):
                over = best[f"{kind} {dataset.label}"]
                ratio = over["rps"] / under["rps"]
                verdict = "ok" if ratio >= 0.5 else "BELOW TARGET"
                print(f"[{dataset.label}] ratio {kind} / bare req/s: {ratio:.2f}  (target >= 0.50: {verdict}); "
                      f"p50 {kind} / bare: {over['p50'] / under['p50']:.2f}")
                variant = best.get(f"{kind}/insights {dataset.label}")
                if variant is not None:
                    growth = variant["p50"] / over["p50"]
                    print(f"[{dataset.label}] p50 {kind} insights / dashboard: {growth:.2f}  "
                          f"(target <= 1.30: {'ok' if growth <= 1.3 else 'ABOVE TARGET'})")
        if len(datasets) == 2:
            small, big = datasets
            for kind in KINDS:
                growth = best[f"{kind} {big.label}"]["p50"] / best[f"{kind} {small.label}"]["p50"]
                target = f"  (target <= 1.30: {'ok' if growth <= 1.3 else 'ABOVE TARGET'})" if kind != "bare" else ""
                print(f"[scale] {kind} p50 at {big.label} / p50 at {small.label}: {growth:.2f}{target}")
    finally:
        tear_down(servers, datasets, server_url, workdir)


def tear_down(servers: list[Server], datasets: list[Dataset], server_url: str, workdir: Path) -> None:
    """Stops the servers, drops the data sets on a server of your own (an embedded one goes with its
    directory), and removes the work directory."""
    for server in servers:
        stop_server(server)
    if os.environ.get("GATEWAY_DATABASE_URL"):
        for dataset in datasets:
            with contextlib.suppress(Exception):
                asyncio.run(drop_database(server_url, dataset.name))
    shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_graphql", "_bare"):
        port_parser = argparse.ArgumentParser(prog=f"dashboard.py {sys.argv[1]}")
        port_parser.add_argument("--port", type=int, required=True)
        serve(sys.argv[1][1:], port_parser.parse_args(sys.argv[2:]).port)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_load":
        load_main(sys.argv[2:])
        return

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events in the data set (default 10,000)")
    parser.add_argument("--scale-events", type=int, default=None,
                        help="also measure on a second data set of this many events (e.g. 5,000,000) and compare p50")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent keep-alive clients (default 32)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per round (default 2)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per round (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per server, alternating (default 2)")
    parser.add_argument("--query", choices=sorted(QUERIES), default="dashboard",
                        help="dashboard (default): the creator's dashboard query; insights: that query and its variant "
                             "with issue 15's insights as well, measured side by side")
    args = parser.parse_args()
    if args.scale_events is not None and args.scale_events <= args.events:
        parser.error("--scale-events must be larger than --events")
    if args.query == "insights":
        check_against_schema(INSIGHTS)

    run_stoppably(orchestrate, args)


def run_stoppably(run: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> None:
    """`run(args)`, with a SIGTERM (or a closed terminal) unwinding like Ctrl-C, so that the
    finally blocks stop the servers."""

    def unwind(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, unwind)
    signal.signal(signal.SIGHUP, unwind)
    try:
        run(args)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
