"""Cold start under load: the creator dashboard query for 60 s at 64 and 256 connections against a freshly started `gateway serve`.

Run: .venv/bin/python bench/coldstart.py [--connections 64 256] [--seconds 60] [--events N]

Uses GATEWAY_DATABASE_URL's server, or a throwaway embedded Postgres. One run:
1. builds one data set of N demo events as bench/dashboard.py does (its
   build_dataset: a backfill through the real ingest path, then the history
   replayed); every video of it, each with a token of its creator (the owner),
   is one request: bench/dashboard.py's DASHBOARD query over the last 30 days;
2. for each connection count, starts a new `.venv/bin/gateway serve` process
   (the shipped policies with no rate limit the load reaches, the bench's
   database and secret): empty caches,
   the policy loaded afresh by new worker processes. uvicorn accepts connections
   once the app's startup (migrations checked, pools opened, policy workers
   loaded) is done; the port is polled every 10 ms and the load starts at the
   first accepted connection: that many keep-alive HTTP/1.1 clients (raw asyncio
   streams, in this process) taking the videos' requests in turn for the given
   seconds. The server is stopped after each run;
3. prints, per run: requests, req/s, p50/p99/max latency, errors by HTTP status
   and error code (a status other than 200, or a body with `errors`, counts; 503s
   apart, with when they came), the RSS of the server process and of its policy
   worker processes before the load (as the port opens), after it, and the peak
   of samples taken each second; CPU shares (server, policy workers, Postgres,
   this load generator, and other processes on the machine, to tell a disturbed
   run); then the ratio of req/s at the most connections to the fewest.

Exits 1 if any request failed. The data set is built once: the second server
starts cold, but Postgres has the data set in its buffers from the first run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# bench/dashboard.py's data set, request and process helpers; importing it first also takes this folder off sys.path (see there).
from dashboard import (  # isort: skip
    DASHBOARD,
    HOST,
    ROOT,
    SPAN,
    Dataset,
    Server,
    build_dataset,
    cpu_seconds,
    database_server,
    free_port,
    percentile,
    raw_request,
    run_stoppably,
    stop_server,
    tear_down,
    unthrottled_policies,
)

import asyncpg  # noqa: E402
import psutil  # type: ignore[import-untyped]  # noqa: E402  # comes with pgserver
import uvloop  # noqa: E402

from gateway.auth import PrincipalKind, create_token  # noqa: E402

GATEWAY = ROOT / ".venv" / "bin" / "gateway"
MIB = 1024 * 1024
STARTUP_TIMEOUT = 120.0


# ---------------------------------------------------------------------------------------------------------------------
# Requests


async def video_owners(url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT video_id, creator_id FROM videos ORDER BY video_id")
    finally:
        await conn.close()
    return [(row["video_id"], row["creator_id"]) for row in rows]


def owner_requests(owners: list[tuple[str, str]], port: int, secret: str, start: datetime, end: datetime) -> list[bytes]:
    """One raw request a video: the dashboard of that video, asked by its creator."""
    requests = []
    for video_id, creator_id in owners:
        token = create_token(secret, PrincipalKind.USER, creator_id, ttl_seconds=24 * 3600)
        payload = {"query": DASHBOARD, "operationName": "Dashboard",
                   "variables": {"id": video_id, "from": start.isoformat(), "to": end.isoformat()}}
        requests.append(raw_request("/graphql", port, token, json.dumps(payload, separators=(",", ":")).encode()))
    return requests


# ---------------------------------------------------------------------------------------------------------------------
# Memory


@dataclass
class Memory:
    """RSS in bytes of one process: when the load starts, when it ends, and the most seen in between."""

    before: int = 0
    after: int = 0
    peak: int = 0

    def see(self, rss: int) -> None:
        self.peak = max(self.peak, rss)


def rss_of(pid: int) -> tuple[int, dict[int, int]]:
    """The RSS of the process and of each of its child processes (the policy workers), by pid."""
    process = psutil.Process(pid)
    children: dict[int, int] = {}
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children[child.pid] = child.memory_info().rss
    return process.memory_info().rss, children


@dataclass
class MemoryWatch:
    pid: int
    server: Memory = field(default_factory=Memory)
    workers: dict[int, Memory] = field(default_factory=dict)
    # Total RSS of the workers alive at each sample (at most their peaks' sum).
    workers_total: Memory = field(default_factory=Memory)

    def sample(self, moment: str = "") -> None:
        with contextlib.suppress(psutil.Error):
            server, children = rss_of(self.pid)
            self.server.see(server)
            self.workers_total.see(sum(children.values()))
            for pid, rss in children.items():
                self.workers.setdefault(pid, Memory(before=rss if moment == "before" else 0)).see(rss)
            if moment == "before":
                self.server.before, self.workers_total.before = server, sum(children.values())
            elif moment == "after":
                self.server.after, self.workers_total.after = server, sum(children.values())
                for pid, memory in self.workers.items():
                    memory.after = children.get(pid, 0)


def mib(size: int) -> str:
    return f"{size / MIB:6.1f} MiB" if size else "     —    "


# ---------------------------------------------------------------------------------------------------------------------
# The load


@dataclass
class Tally:
    started: float = 0.0  # perf_counter at the first accepted connection
    latencies: list[int] = field(default_factory=list)  # ns, answers without error
    slowest: int = 0  # ns, any answer
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    # Seconds into the load of the first and the last of each kind of error.
    error_span: dict[str, tuple[float, float]] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)
    answered: collections.Counter[int] = field(default_factory=collections.Counter)  # answers by second of the load
    first_answer: float | None = None

    def failed(self, kind: str, sample: str) -> None:
        at = time.perf_counter() - self.started
        self.errors[kind] += 1
        self.error_span[kind] = (self.error_span.get(kind, (at, at))[0], at)
        self.samples.setdefault(kind, sample[:300])

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


def failure(status: int, body: bytes) -> str | None:
    """What is wrong with an answer, as "<status> <codes>", or None when nothing is."""
    if status == 200 and b'"errors"' not in body:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return f"{status} (no JSON body)"
    codes = {str((error.get("extensions") or {}).get("code")) for error in answer.get("errors") or []}
    if isinstance(answer.get("error"), dict):  # a refusal before GraphQL (gateway.routes.errors)
        codes.add(str(answer["error"].get("code")))
    return f"{status} {'+'.join(sorted(codes)) or '(no code)'}"


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    length = 0
    while (line := await reader.readline()) != b"\r\n":
        if not line:
            raise ConnectionResetError("the server closed the connection mid-answer")
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return int(status_line.split(b" ", 2)[1]), await reader.readexactly(length)


async def client(port: int, requests: Iterator[bytes], until: float, tally: Tally) -> None:
    """Sends request after request on one keep-alive connection until `until`; a broken connection
    counts as an error and is opened again."""
    while time.perf_counter() < until:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError as exc:
            tally.failed(f"connect {type(exc).__name__}", str(exc))
            await asyncio.sleep(0.1)
            continue
        try:
            while time.perf_counter() < until:
                sent = time.perf_counter_ns()
                writer.write(next(requests))
                status, body = await read_answer(reader)
                took = time.perf_counter_ns() - sent
                tally.slowest = max(tally.slowest, took)
                tally.answered[int(time.perf_counter() - tally.started)] += 1
                if tally.first_answer is None:
                    tally.first_answer = time.perf_counter() - tally.started
                if (wrong := failure(status, body)) is None:
                    tally.latencies.append(took)
                else:
                    tally.failed(wrong, body.decode(errors="replace"))
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            tally.failed(f"connection {type(exc).__name__}", str(exc))
        finally:
            writer.close()


async def accepting(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Returns as soon as the port accepts a connection."""
    deadline = time.perf_counter() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gateway serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"gateway serve did not accept connections within {STARTUP_TIMEOUT:.0f} s") from None
            await asyncio.sleep(0.01)
            continue
        writer.close()
        return


@dataclass
class Run:
    connections: int
    pid: int
    startup: float  # seconds from spawning the process to its first accepted connection
    seconds: float  # of load, from the first accepted connection to the last answer
    tally: Tally
    memory: MemoryWatch
    cpu: dict[str, float]  # share of one core over the load
    log_problems: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.tally.requests / self.seconds


def cpu_used(server_pid: int, postgres_pid: int | None) -> dict[str, float]:
    """CPU seconds used so far by the server, its policy workers, Postgres (the embedded server and its
    backends), this process, and the machine as a whole ("busy")."""
    server = cpu_seconds([server_pid])
    machine = psutil.cpu_times()
    return {
        "server": server.pop(server_pid, 0.0),
        "policy workers": sum(server.values()),
        "postgres": sum(cpu_seconds([postgres_pid]).values()) if postgres_pid else 0.0,
        "load generator": time.process_time(),
        "busy": sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
    }


def cpu_shares(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Each one's share of one core between the two readings; what the machine did besides, as "other processes"."""
    used = {name: after[name] - before[name] for name in before}
    used["other processes"] = max(0.0, used.pop("busy") - sum(used.values()))
    return {name: spent / seconds for name, spent in used.items()}


async def load(server: Server, spawned: float, requests: list[bytes], connections: int, seconds: float,
               postgres_pid: int | None) -> Run:
    await accepting(server.port, server.process, server.log)
    tally = Tally(started=time.perf_counter())
    memory = MemoryWatch(server.process.pid)
    memory.sample("before")
    cpu_before = cpu_used(server.process.pid, postgres_pid)
    turns = itertools.cycle(requests)
    clients = asyncio.gather(*(client(server.port, turns, tally.started + seconds, tally) for _ in range(connections)))

    async def watch() -> None:
        while True:
            await asyncio.sleep(1.0)
            memory.sample()

    watching = asyncio.create_task(watch())
    try:
        # Requests sent before the end are answered; a server that stops answering fails the run.
        await asyncio.wait_for(clients, timeout=seconds + 60)
    finally:
        watching.cancel()
    elapsed = time.perf_counter() - tally.started
    memory.sample("after")
    cpu = cpu_shares(cpu_before, cpu_used(server.process.pid, postgres_pid), elapsed)
    return Run(connections, server.process.pid, tally.started - spawned, elapsed, tally, memory, cpu)


def start_gateway(dataset: Dataset, secret: str, workdir: Path, connections: int) -> tuple[Server, float]:
    port = free_port()
    log = workdir / f"gateway-{connections}.log"
    env = {**os.environ, "GATEWAY_DATABASE_URL": dataset.url, "GATEWAY_SECRET": secret, "GATEWAY_POLICY_DIR": str(workdir / "policies"),
           "GATEWAY_DATA_DIR": str(workdir / "data")}
    with log.open("wb") as out:
        spawned = time.perf_counter()
        process = subprocess.Popen([str(GATEWAY), "serve", "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Server("gateway", dataset, port, process, log), spawned


def log_problems(log: Path) -> list[str]:
    """The server's log lines at WARNING or above (its text format: time, level, logger, …)."""
    return [line for line in log.read_text(errors="replace").splitlines()
            if any(f" {level} " in line for level in ("WARNING", "ERROR", "CRITICAL"))]


# ---------------------------------------------------------------------------------------------------------------------
# The report


def report(run: Run) -> None:
    tally, memory = run.tally, run.memory
    ordered = sorted(tally.latencies)
    print(f"\n[{run.connections} connections] gateway serve (pid {run.pid}) accepted connections {run.startup:.2f} s "
          f"after it was spawned; load for {run.seconds:.1f} s from then; first answer {tally.first_answer or 0:.3f} s in")
    print(f"  requests {tally.requests:,}   req/s {run.rps:,.1f}   latency (answers without error) "
          f"p50 {percentile(ordered, 0.50):.1f} ms  p99 {percentile(ordered, 0.99):.1f} ms  "
          f"max {tally.slowest / 1e6:.1f} ms (any answer)")
    early = [tally.answered.get(second, 0) for second in range(5)]
    print(f"  answers in the first 5 seconds, each: {', '.join(f'{n:,}' for n in early)}")
    failed = sum(tally.errors.values())
    unavailable = sum(n for kind, n in tally.errors.items() if kind.startswith("503"))
    print(f"  errors: {failed:,}" + (f" (503: {unavailable:,})" if failed else " (503: 0)"))
    for kind, count in tally.errors.most_common():
        first, last = tally.error_span[kind]
        print(f"    {kind}: {count:,}, from {first:.2f} s to {last:.2f} s into the load; e.g. {tally.samples[kind]}")
    print(f"  RSS server              before {mib(memory.server.before)}  after {mib(memory.server.after)}  "
          f"peak {mib(memory.server.peak)}")
    for pid, worker in sorted(memory.workers.items()):
        print(f"  RSS policy worker {pid:<6} before {mib(worker.before)}  after {mib(worker.after)}  peak {mib(worker.peak)}")
    print(f"  RSS policy workers, sum before {mib(memory.workers_total.before)}  after {mib(memory.workers_total.after)}  "
          f"peak {mib(memory.workers_total.peak)}")
    print("  cpu, share of one core: " + "  ".join(f"{name} {share:.0%}" for name, share in run.cpu.items()))
    if run.log_problems:
        print(f"  server log: {len(run.log_problems)} line(s) at WARNING or above, e.g.:")
        for line in run.log_problems[:5]:
            print(f"    {line[:300]}")


# ---------------------------------------------------------------------------------------------------------------------
# The orchestrator


def orchestrate(args: argparse.Namespace) -> None:
    # platformdirs warns (at pgserver's exit handler too) when XDG_RUNTIME_DIR is unset; pgserver copes.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-coldstart-"))
    unthrottled_policies(workdir / "policies")
    server_url, secret, postgres_pid = database_server()
    now = datetime.now(UTC).replace(microsecond=0)
    datasets: list[Dataset] = []
    servers: list[Server] = []
    runs: list[Run] = []
    try:
        datasets.append(asyncio.run(build_dataset(server_url, args.events, secret, now.replace(minute=0, second=0))))
        owners = asyncio.run(video_owners(datasets[0].url))
        print(f"requests: the dashboard of each of {len(owners):,} videos, asked by its creator, in turn; "
              f"{args.seconds:g} s per run at {', '.join(map(str, args.connections))} connections", flush=True)
        for connections in args.connections:
            # Leave this process's heap (the data set's build) out of the collector's way during the load.
            gc.collect()
            gc.freeze()
            server, spawned = start_gateway(datasets[0], secret, workdir, connections)
            servers.append(server)
            requests = owner_requests(owners, server.port, secret, now - SPAN, now)
            run = uvloop.run(load(server, spawned, requests, connections, args.seconds, postgres_pid))
            stop_server(server)
            run.log_problems = log_problems(server.log)
            runs.append(run)
            report(run)
            sys.stdout.flush()
        fewest, most = min(runs, key=lambda r: r.connections), max(runs, key=lambda r: r.connections)
        if fewest is not most:
            print(f"\nratio req/s at {most.connections} / at {fewest.connections} connections: {most.rps / fewest.rps:.2f}")
    finally:
        tear_down(servers, datasets, server_url, workdir)
    failed = sum(sum(run.tally.errors.values()) for run in runs)
    if failed:
        print(f"FAILED: {failed:,} request(s) failed (see the errors above); exiting 1")
        raise SystemExit(1)
    print(f"ok: 0 errors in {sum(run.tally.requests for run in runs):,} requests")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 256],
                        help="concurrent keep-alive connections, one cold run each (default 64 256)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load per run (default 60)")
    parser.add_argument("--events", type=int, default=100_000, help="events in the data set (default 100,000)")
    args = parser.parse_args()
    if not GATEWAY.exists():
        parser.error(f"{GATEWAY} is missing: run `make install` first")
    run_stoppably(orchestrate, args)


if __name__ == "__main__":
    main()
