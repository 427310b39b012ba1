"""The gateway against what a user would pick instead: PostGraphile 4 over the same release rows, and the bare endpoint.

Run: .venv/bin/python bench/peers.py [--events N] [--workers N] [--videos V] [--rounds R] [--quick] [--profile DIR]

One run, on one store and one machine (GATEWAY_DATABASE_URL's server, or a
throwaway embedded Postgres; the data set and the load generator are
bench/dashboard.py's):
1. loads N demo events (default 1.5M) through the real ingest path; the V
   most-shared videos (default 50) are the dashboards asked for, each by its
   creator (an owner token);
2. serves, at 1 worker and at --workers (default: the number of cores):
   - `gateway`: `gateway serve` as shipped (policy decides every request,
     privacy layer, whole answers kept), with `--workers N` when the command
     has that option (else 1 worker, and it says so);
   - `gateway-anew`: the same with GATEWAY_RESPONSE_CACHE_MB=0 (every answer made anew);
   - `bare`: bench/dashboard.py's Starlette+asyncpg endpoint doing the same
     privacy work with no auth, GraphQL or policy (N processes on one port);
   - `floor`: a uvicorn app (the bare endpoint's server, N processes) that
     reads every dashboard request and answers one fixed answer (with the
     fields the answer check reads), doing no work: the tail this machine adds to any server under this load,
     against which the others' p99 - p50 reads (on a 2-core machine that also
     runs Postgres and the clients, 2 saturating workers add several ms to p99
     whatever they run);
   - `postgraphile`: PostGraphile 4 (`npm install postgraphile@4` into
     bench/.peers/, once; skipped, with a message, when `node` is missing)
     reflecting views of the release tables (schema `peers`: the videos, the
     releases, each subject's last release per day, its latest cell per
     channel) as a role that can read those views only. Its dashboard query
     asks the video, its latest release of each count, 30 daily share counts
     and its channel cells: the rows the gateway's answer is made from, with
     no privacy at all;
3. checks each answers its dashboard, then runs interleaved rounds (every
   server in turn, R times), each with the other peers' servers stopped
   (SIGSTOP) until it ends, so whatever an idle server still does after its
   own round (timers; V8 shrinking PostGraphile's heaps) is not measured in the
   next peer's round (--share-machine keeps them running), waiting before each
   for the machine to be idle (at most --idle-wait seconds; a round that started on a busy
   machine is marked `*`), 32 keep-alive clients each going through the V requests in turn,
   sent by wrk (`apt-get install wrk`; one C thread, a few percent of a core) or,
   with --loadgen python or without wrk, by bench/dashboard.py's asyncio clients
   (a Python process that takes most of a core of this 2-core machine and adds
   its own scheduling to the latencies it measures);
4. prints, per peer and worker count, the best round's req/s, p50, p99, p99/p50
   and p99 - p50, and each / PostGraphile at equal workers.

Targets (issue 16): gateway >= 1.0x PostGraphile at 1 and N workers; p99 <= 2x
p50 at 32 connections. The machine is shared and noisy: read the ratios.
--quick: a small store and short rounds, to see it run end to end.
--profile DIR: py-spy samples the 1-worker gateway (kept and anew) through its
first round and prints where the time went (DIR keeps the raw stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]  # as bench/dashboard.py does

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402  # comes with pgserver

from gateway.auth import PrincipalKind, create_token  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_dashboard", _HERE / "dashboard.py")
assert _spec is not None and _spec.loader is not None
dashboard = importlib.util.module_from_spec(_spec)
sys.modules["bench_dashboard"] = dashboard
_spec.loader.exec_module(dashboard)

ROOT = _HERE.parent
PEERS_DIR = _HERE / ".peers"  # PostGraphile's install (git-ignored)
POSTGRAPHILE = PEERS_DIR / "node_modules" / "postgraphile" / "cli.js"
PEERS_ROLE = "gateway_bench_peers"
PEERS_PASSWORD = "bench-peers-not-for-production"
KINDS = ("gateway", "gateway-anew", "bare", "floor", "postgraphile")

# The rows the gateway's dashboard is made from, as views PostGraphile reflects (no privacy: the
# latest releases, not the ones a principal may see; every cell, suppressed or not). Columns keep
# their types ("char" is a String to PostGraphile), so its conditions use the tables' primary keys;
# smart comments make each a relation of the video, so the dashboard is one root field, which
# PostGraphile 4 answers in one SQL statement.
PEERS_SCHEMA = """
CREATE SCHEMA peers;
CREATE VIEW peers.videos AS
    SELECT video_id, creator_id, published_at FROM public.videos WHERE published_at IS NOT NULL;
COMMENT ON VIEW peers.videos IS E'@primaryKey video_id';
CREATE VIEW peers.releases AS
    SELECT subject_id, metric, made_at, seq, events FROM public.releases;
CREATE VIEW peers.daily_releases AS
    SELECT DISTINCT ON (subject_id, metric, date_trunc('day', made_at, 'UTC'))
           subject_id, metric, date_trunc('day', made_at, 'UTC') AS day, events
    FROM public.releases ORDER BY subject_id, metric, date_trunc('day', made_at, 'UTC') DESC, made_at DESC;
CREATE VIEW peers.latest_cells AS
    SELECT DISTINCT ON (subject_id, metric, dimension, value) subject_id, metric, dimension, value, events, people
    FROM public.release_cells ORDER BY subject_id, metric, dimension, value, seq DESC;
COMMENT ON VIEW peers.releases IS E'@foreignKey (subject_id) references peers.videos (video_id)';
COMMENT ON VIEW peers.daily_releases IS E'@foreignKey (subject_id) references peers.videos (video_id)';
COMMENT ON VIEW peers.latest_cells IS E'@foreignKey (subject_id) references peers.videos (video_id)';
"""

# The video, its latest release of each count, its last release of each of the 30 latest days with
# one, and its latest channel cells.
POSTGRAPHILE_DASHBOARD = "query Dashboard($id: String!) { video: videoByVideoId(videoId: $id) { videoId creatorId publishedAt " + " ".join(
    f'{name}: releasesBySubjectId(condition: {{metric: "{code}"}}, orderBy: MADE_AT_DESC, first: 1) {{ nodes {{ events }} }}'
    for name, code in (("views", "v"), ("likes", "l"), ("comments", "c"), ("shares", "s"))
) + (
    ' shareTimeline: dailyReleasesBySubjectId(condition: {metric: "s"}, orderBy: DAY_DESC, first: 30) { nodes { day events } }'
    ' shareChannels: latestCellsBySubjectId(condition: {metric: "s", dimension: "c"}) { nodes { value events people } } } }'
)


# ---------------------------------------------------------------------------------------------------------------------
# Servers


def gateway_has_workers() -> bool:
    """Whether `gateway serve` takes --workers (issue 16, item 1)."""
    done = subprocess.run([str(Path(sys.executable).parent / "gateway"), "serve", "--help"], capture_output=True, text=True, check=False)
    return "--workers" in done.stdout


def bare_app() -> Any:
    return dashboard.bare_app(os.environ["GATEWAY_DATABASE_URL"], os.environ["GATEWAY_SECRET"])


def floor_app() -> Any:
    """Answers every POST /graphql with one fixed answer carrying the fields `describe` reads, having
    read the request: a server that does no work, so its tail is the machine's and the server
    stack's alone."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    buckets = [{"label": f"b{n}", "count": n} for n in range(30)]
    answer = json.dumps({"data": {"video": {
        "stats": {"views": 0, "likes": 0, "comments": 0, "shares": 0},
        "shareTimeline": {"buckets": buckets},
        "shareChannels": {"buckets": buckets[:10]},
    }}}, separators=(",", ":")).encode()

    async def graphql(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)])


SERVED_APPS = {"_bare": bare_app, "_floor": floor_app}


def serve_forked(port: int, workers: int, make_app: Callable[[], Any]) -> None:
    """`make_app()` in `workers` processes on one socket (forked before any event loop exists; each
    builds its own app: the bare endpoint its own pools)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((dashboard.HOST, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            config = uvicorn.Config(make_app(), loop="uvloop", http="httptools", access_log=False, log_level="warning")
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        children.append(pid)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        os.waitpid(child, 0)


def start(kind: str, workers: int, dataset: Any, secret: str, workdir: Path, *, gateway_workers: bool, peers_url: str) -> Any:
    port = dashboard.free_port()
    name = f"{kind} x{workers}"
    common = {"GATEWAY_DATABASE_URL": dataset.url, "GATEWAY_SECRET": secret, "GATEWAY_DATA_DIR": str(workdir / "data"),
              "GATEWAY_POLICY_DIR": str(workdir / "policies")}
    if kind in ("gateway", "gateway-anew"):
        argv = [str(Path(sys.executable).parent / "gateway"), "serve", "--port", str(port)]
        if gateway_workers:
            argv += ["--workers", str(workers)]
        env = {**common, "GATEWAY_LOG_FORMAT": "json", **({"GATEWAY_RESPONSE_CACHE_MB": "0"} if kind == "gateway-anew" else {})}
    elif kind in ("bare", "floor"):
        argv = [sys.executable, str(Path(__file__).resolve()), f"_{kind}", "--port", str(port), "--workers", str(workers)]
        env = common
    else:
        argv = ["node", str(POSTGRAPHILE), "--connection", peers_url, "--schema", "peers", "--host", dashboard.HOST,
                "--port", str(port), "--disable-default-mutations", "--disable-graphiql", "--disable-query-log",
                "--no-setof-functions-contain-nulls"]
        if workers > 1:
            argv += ["--cluster-workers", str(workers)]
        env = {}
    return dashboard.launch(kind, dataset, argv, port, workdir, env, name=name)


def postgraphile_ready(server: Any) -> bool:
    return httpx.post(f"{server.base}/graphql", json={"query": "{ __typename }"}, timeout=1.0).status_code == 200


def install_postgraphile() -> str | None:
    """Installs PostGraphile 4 into bench/.peers once; the reason it cannot run, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node (or npm) is not installed: PostGraphile is skipped"
    if not POSTGRAPHILE.exists():
        PEERS_DIR.mkdir(exist_ok=True)
        print(f"installing postgraphile@4 into {PEERS_DIR} …", flush=True)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PEERS_DIR), "postgraphile@4"],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not POSTGRAPHILE.exists():
            return f"npm install postgraphile@4 failed: PostGraphile is skipped\n{done.stderr[-2000:]}"
    return None


async def expose_release_rows(dataset_url: str, role: str) -> str:
    """Creates the views PostGraphile serves and a role that may read them only; returns its URL."""
    conn = await asyncpg.connect(dataset_url)
    try:
        await conn.execute(PEERS_SCHEMA)
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(await conn.fetchval("SELECT format('%s ROLE %I LOGIN PASSWORD %L', $1::text, $2::text, $3::text)", verb, role, PEERS_PASSWORD))
        await conn.execute(await conn.fetchval("SELECT format('GRANT USAGE ON SCHEMA peers TO %I', $1::text)", role))
        await conn.execute(await conn.fetchval("SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA peers TO %I', $1::text)", role))
    finally:
        await conn.close()
    # The data set's address, as this role: node-postgres reads a Unix socket's directory from `?host=`.
    parts = urllib.parse.urlsplit(dataset_url)
    host = parts.hostname or "localhost"
    netloc = f"{role}:{PEERS_PASSWORD}@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(("postgres", netloc, parts.path, parts.query, ""))


async def drop_role(server_url: str, role: str) -> None:
    await dashboard.execute_naming(server_url, "DROP ROLE IF EXISTS %I", role)


async def most_shared_videos(dataset_url: str, count: int) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dataset_url)
    try:
        rows = await conn.fetch(
            """SELECT v.video_id, v.creator_id FROM live_totals t JOIN videos v ON v.video_id = t.subject_id
               WHERE t.metric = 's' AND v.published_at IS NOT NULL ORDER BY t.events DESC, v.video_id LIMIT $1""",
            count,
        )
    finally:
        await conn.close()
    return [(row[0], row[1]) for row in rows]


# ---------------------------------------------------------------------------------------------------------------------
# Requests


def write_requests(server: Any, videos: list[tuple[str, str]], secret: str, start: datetime, end: datetime, workdir: Path) -> list[Path]:
    """One raw request a video, as its creator (the owner) asks it; checks the first one's answer."""
    paths = []
    for n, (video_id, creator_id) in enumerate(videos):
        token = create_token(secret, PrincipalKind.USER, creator_id, ttl_seconds=24 * 3600)
        payload: dict[str, Any]
        if server.kind == "bare":
            path, payload = "/dashboard", {"id": video_id, "from": start.isoformat(), "to": end.isoformat()}
        elif server.kind == "postgraphile":
            path, payload = "/graphql", {"query": POSTGRAPHILE_DASHBOARD, "operationName": "Dashboard", "variables": {"id": video_id}}
        else:
            path = "/graphql"
            payload = {"query": dashboard.DASHBOARD, "operationName": "Dashboard",
                       "variables": {"id": video_id, "from": start.isoformat(), "to": end.isoformat()}}
        body = json.dumps(payload, separators=(",", ":")).encode()
        request = workdir / f"request-{server.name.replace(' ', '-')}-{n}.http"
        request.write_bytes(dashboard.raw_request(path, server.port, token, body))
        paths.append(request)
        if n == 0:
            response = httpx.post(f"{server.base}{path}", content=body, timeout=30,
                                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            answer = response.json()
            if response.status_code != 200 or answer.get("errors") or not answer.get("data"):
                raise RuntimeError(f"{server.name} answered {response.status_code}: {response.text[:2000]}")
            server.sample = answer["data"]
    return paths


def describe(server: Any) -> str:
    data = server.sample
    if server.kind == "postgraphile":
        video = data["video"]
        shares = video["shares"]["nodes"][0]["events"] if video["shares"]["nodes"] else 0
        return (f"shares {int(shares):,}; {len(video['shareTimeline']['nodes'])} daily rows; "
                f"{len(video['shareChannels']['nodes'])} channel cells")
    video = data["video"]
    return (f"shares {video['stats']['shares']:,}; {len(video['shareTimeline']['buckets'])} daily buckets; "
            f"{len(video['shareChannels']['buckets'])} channel cells")


# ---------------------------------------------------------------------------------------------------------------------
# Rounds


def wait_idle(busy_percent: float, most: float) -> float:
    """Waits until the machine's CPU (all cores) stays below `busy_percent` for a second, at most
    `most` seconds; returns the last second's figure."""
    deadline = time.monotonic() + most
    while True:
        busy: float = psutil.cpu_percent(interval=1.0)
        if busy < busy_percent or time.monotonic() >= deadline:
            return busy


def processes_of(server: Any) -> list[psutil.Process]:
    """The server's process and every process under it (supervisor, workers, policy workers), parents first."""
    root = psutil.Process(server.process.pid)
    return [root, *root.children(recursive=True)]


@contextlib.contextmanager
def paused(servers: list[Any]) -> Iterator[None]:
    """The other peers' servers, stopped (SIGSTOP) through another's round, so that whatever an idle
    server still does after its own round (its timers; V8 shrinking the heaps of PostGraphile's node
    processes once a load stops) lands in no one else's measurement. Parents stop before their
    children and go on after them, so a supervisor that was waiting on a worker's answer (uvicorn
    pings its workers) has it when it goes on, and never takes a paused worker for a hung one."""
    stopped: list[psutil.Process] = []
    try:
        for server in servers:
            for process in processes_of(server):
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.suspend()
                    stopped.append(process)
        yield
    finally:
        for process in reversed(stopped):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()


def profile_round(server: Any, args: argparse.Namespace, postgres_pid: int | None, requests: list[Path], out: Path) -> dict[str, Any]:
    """A round with py-spy sampling the server (and its workers) through the measured part."""
    raw = out / f"{server.name.replace(' ', '-')}.txt"
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(server.process.pid), "--subprocesses",
                            "--format", "raw", "--rate", "200", "--duration", str(int(args.warmup + args.duration)), "--output", str(raw),
                            "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        result: dict[str, Any] = dashboard.run_load(server, args, postgres_pid, args.warmup, args.duration, requests)
        return result
    finally:
        _, errors = spy.communicate(timeout=60)
        if spy.returncode != 0:
            print(f"  py-spy failed on {server.name}: {errors.decode()[-500:]}", flush=True)
        elif raw.exists():
            print(summarise_profile(raw, server.name), flush=True)


AREAS = (
    ("gateway/graphql/responses", "gateway: kept answers"),
    ("gateway/privacy", "gateway: privacy"),
    ("gateway/store", "gateway: store"),
    ("gateway/policy", "gateway: policy"),
    ("gateway/telemetry", "gateway: telemetry/logs"),
    ("gateway/", "gateway: graphql, routes, auth"),
    ("strawberry", "strawberry"),
    ("graphql/", "graphql-core"),
    ("asyncpg", "asyncpg"),
    ("uvicorn", "uvicorn"),
    ("starlette", "starlette"),
    ("logging", "logging"),
    ("asyncio", "event loop (asyncio/uvloop)"),
    ("uvloop", "event loop (asyncio/uvloop)"),
    ("orjson", "orjson"),
    ("jwt", "auth (jwt)"),
)


def area_of(frame: str) -> str:
    for marker, area in AREAS:
        if marker in frame:
            return area
    return "other"


def summarise_profile(raw: Path, name: str) -> str:
    """Shares of samples by area (the innermost frame in a known package, so time in a C call
    counts to the Python code that made it) and the top functions by own time."""
    areas: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if "(" in frame]
        if not frames:
            continue
        total += count
        known = next((frame for frame in reversed(frames) if area_of(frame) != "other"), frames[-1])
        areas[area_of(known)] += count
        leaves[frames[-1]] += count
    if not total:
        return f"  profile of {name}: no samples"
    lines = [f"  profile of {name} ({total:,} samples): by area: " + ", ".join(f"{area} {n / total:.0%}" for area, n in areas.most_common(12))]
    lines += [f"    {n / total:5.1%}  {frame[:150]}" for frame, n in leaves.most_common(12)]
    return "\n".join(lines)


def orchestrate(args: argparse.Namespace) -> None:
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-peers-"))
    dashboard.unthrottled_policies(workdir / "policies")
    server_url, secret, postgres_pid = dashboard.database_server()
    skipped = install_postgraphile() if "postgraphile" in args.only else None
    kinds = [kind for kind in KINDS if (kind != "postgraphile" or skipped is None) and kind in args.only]
    gateway_workers = gateway_has_workers()
    worker_counts = sorted({1, args.workers})
    notes = [] if skipped is None else [skipped]
    if not gateway_workers and args.workers > 1:
        notes.append(f"`gateway serve` has no --workers here: the gateway's x{args.workers} rows run 1 worker")

    now = datetime.now(UTC).replace(microsecond=0)
    range_start, range_end = now - dashboard.SPAN, now
    datasets: list[Any] = []
    servers: list[Any] = []
    role_made = False
    try:
        dataset = asyncio.run(dashboard.build_dataset(server_url, args.events, secret, now.replace(minute=0, second=0)))
        datasets.append(dataset)
        videos = asyncio.run(most_shared_videos(dataset.url, args.videos))
        peers_url = asyncio.run(expose_release_rows(dataset.url, PEERS_ROLE))
        role_made = True
        results: dict[str, list[dict[str, Any]]] = {}
        profile_dir = Path(args.profile) if args.profile else None
        if profile_dir:
            profile_dir.mkdir(parents=True, exist_ok=True)
        # One worker count at a time: every server of both up at once would want more connections than
        # an embedded Postgres allows.
        for workers in worker_counts:
            group = [start(kind, workers, dataset, secret, workdir, gateway_workers=gateway_workers, peers_url=peers_url) for kind in kinds]
            servers.extend(group)
            for server in group:
                dashboard.wait_ready(server, probe=postgraphile_ready if server.kind == "postgraphile" else None)
            requests = {server.name: write_requests(server, videos, secret, range_start, range_end, workdir) for server in group}
            if workers == 1:
                for server in group:
                    print(f"  {server.kind:<13} answers: {describe(server)}", flush=True)
            print(f"\nx{workers}: {len(group)} servers, {len(videos)} dashboards (each by its creator), {args.rounds} interleaved "
                  f"round(s), {args.concurrency} clients ({args.loadgen}), warm-up {args.warmup:g} s, measured {args.duration:g} s", flush=True)
            for round_no in range(1, args.rounds + 1):
                for server in group:
                    with paused([other for other in group if other is not server] if args.pause_others else []):
                        busy = wait_idle(args.idle_percent, args.idle_wait)
                        if profile_dir is not None and round_no == 1 and workers == 1 and server.kind.startswith("gateway"):
                            result = profile_round(server, args, postgres_pid, requests[server.name], profile_dir)
                        else:
                            result = dashboard.run_load(server, args, postgres_pid, args.warmup, args.duration, requests[server.name])
                    result["busy"] = busy >= args.idle_percent
                    results.setdefault(server.name, []).append(result)
                    print(f"  round {round_no}  {server.name:<24} {result['rps']:>8,.0f} req/s  p50 {result['p50']:7.2f} ms  "
                          f"p99 {result['p99']:7.2f} ms  ({dashboard.cpu_note(result)}; machine {busy:.0f}% busy before)"
                          f"{' *' if result['busy'] else ''}", flush=True)
            for server in group:
                dashboard.stop_server(server)
        print_table(results, servers, worker_counts, notes)
    finally:
        dashboard.tear_down(servers, datasets, server_url, workdir)
        if role_made and os.environ.get("GATEWAY_DATABASE_URL"):
            with contextlib.suppress(Exception):
                asyncio.run(drop_role(server_url, PEERS_ROLE))


def print_table(results: dict[str, list[dict[str, Any]]], servers: list[Any], worker_counts: list[int], notes: list[str]) -> None:
    best = {name: max(runs, key=lambda run: run["rps"]) for name, runs in results.items() if runs}
    label = servers[0].dataset.label
    print("\nbest round of each (by req/s); ratio: req/s over PostGraphile's at the same workers")
    print(f"  {'peer':<14} {'workers':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8} {'p99-p50':>8} {'vs PostGraphile':>16}")
    for workers in worker_counts:
        reference = best.get(f"postgraphile x{workers} {label}")
        for kind in KINDS:
            result = best.get(f"{kind} x{workers} {label}")
            if result is None:
                continue
            ratio = f"{result['rps'] / reference['rps']:.2f}x" if reference and kind != "floor" else "-"
            print(f"  {kind:<14} {workers:>7} {result['rps']:>8,.0f} {result['p50']:>8.2f} {result['p99']:>8.2f} "
                  f"{result['p99'] / result['p50']:>8.2f} {result['p99'] - result['p50']:>8.2f} {ratio:>16}{' *' if result['busy'] else ''}")
    if any(result["busy"] for result in best.values()):
        print("  * the machine was busier than --idle-percent when the round began (other work was running)")
    for note in notes:
        print(f"  note: {note}")
    print("  targets: gateway >= 1.00x PostGraphile at each worker count; p99/p50 <= 2")
    print("  floor: a server that answers without doing anything; its p99 - p50 is what the machine adds under this load")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in SERVED_APPS:
        parser = argparse.ArgumentParser(prog=f"peers.py {sys.argv[1]}")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--workers", type=int, required=True)
        options = parser.parse_args(sys.argv[2:])
        serve_forked(options.port, options.workers, SERVED_APPS[sys.argv[1]])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_500_000, help="events in the data set (default 1,500,000)")
    parser.add_argument("--videos", type=int, default=50, help="dashboards asked for: the most shared videos (default 50)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="the larger worker count (default: the cores)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent keep-alive clients (default 32)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per round (default 2)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per round (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--idle-percent", type=float, default=25.0, help="the machine counts as idle below this CPU%% (default 25)")
    parser.add_argument("--idle-wait", type=float, default=30.0, help="seconds to wait at most for it before a round (default 30)")
    parser.add_argument("--share-machine", dest="pause_others", action="store_false",
                        help="keep the other peers' servers running through each round (default: stopped, SIGSTOP, until it ends)")
    parser.add_argument("--only", type=lambda text: text.split(","), default=list(KINDS), metavar="KIND,…",
                        help=f"the peers to run (default all: {','.join(KINDS)})")
    parser.add_argument("--loadgen", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python",
                        help="who sends the load: wrk (C, default when installed) or bench/dashboard.py's asyncio clients")
    parser.add_argument("--quick", action="store_true", help="a small store and short rounds: a smoke test")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the 1-worker gateway through round 1; raw stacks in DIR")
    args = parser.parse_args()
    if args.quick:
        args.events, args.videos, args.warmup, args.duration, args.rounds, args.idle_wait = 20_000, 5, 0.5, 2.0, 1, 3.0
    dashboard.run_stoppably(orchestrate, args)


if __name__ == "__main__":
    main()
