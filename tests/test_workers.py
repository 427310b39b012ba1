"""`gateway serve --workers N` as an operator runs it: N serving processes on one port under one
supervisor, every one of them answering, a dead one replaced, all of them (and what they started)
gone after SIGTERM.

Which worker answers a connection is the kernel's choice (they share one listening socket). To
ask a given worker, the others are stopped (SIGSTOP) for the one request: only it can accept."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import PrincipalKind, create_token
from gateway.policy.worker import PolicyFiles
from gateway.serving import balance
from gateway.serving.workers import (
    CONNECTIONS_PER_WORKER,
    POOLED_PER_WORKER,
    SHARED_PREFIX,
    STARTUP_FAILURE,
    sweep_abandoned,
    warn_of_too_few_connections,
)
from gateway.store.pools import Store

from harness import policies_with
from conftest import SECRET
from processes import GATEWAY, Served, free_port, serving

pytestmark = pytest.mark.timeout(600)

EXIT_SECONDS = 60
STARTED = "Application startup complete."
PATIENCE = 60.0


def serving_workers(served: Served) -> list[psutil.Process]:
    """The supervisor's serving processes (uvicorn spawns them through multiprocessing)."""
    children = psutil.Process(served.pid).children()
    return [child for child in children if "multiprocessing.spawn" in " ".join(child.cmdline())]


def lines_saying(served: Served, text: str) -> list[str]:
    return [line for line in served.lines if text in line]


@contextlib.contextmanager
def only(worker: psutil.Process, workers: list[psutil.Process]) -> Iterator[None]:
    """While the block runs, `worker` is the only one of `workers` that can accept a connection."""
    others = [other for other in workers if other.pid != worker.pid]
    for other in others:
        other.suspend()
    try:
        yield
    finally:
        for other in others:
            other.resume()


async def answer_of(served: Served, worker: psutil.Process, workers: list[psutil.Process], path: str) -> httpx.Response:
    """`GET path`, on a connection of its own, answered by `worker`."""
    with only(worker, workers):
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
            return await http.get(path)


@contextlib.asynccontextmanager
async def supervised(database_url: str | None, directory: Path, workers: int, **settings: str) -> AsyncIterator[Served]:
    """`gateway serve` on `workers` processes, once every one has started. Whatever it started is
    killed afterwards if it is still there (a test that failed half-way leaves no process behind)."""
    started: list[psutil.Process] = []
    async with serving(database_url, directory, workers=str(workers), **settings) as served:
        try:
            await served.said(STARTED, times=workers)
            started = psutil.Process(served.pid).children(recursive=True)
            yield served
        finally:
            for process in started:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()


async def stopped_cleanly(served: Served) -> None:
    """SIGTERM to the supervisor: it exits 0, and every process under it is gone."""
    descendants = psutil.Process(served.pid).children(recursive=True)
    assert descendants
    served.process.send_signal(signal.SIGTERM)
    assert await served.process.wait() == 0, "\n".join(served.lines[-20:])
    _, alive = psutil.wait_procs(descendants, timeout=EXIT_SECONDS)
    assert alive == [], f"orphans: {[process.pid for process in alive]}"
    assert not list(Path(tempfile.gettempdir()).glob(f"{SHARED_PREFIX}{served.pid}-*")), "its workers' directory is removed"


async def test_every_worker_answers_on_the_one_port_and_sigterm_stops_them_all() -> None:
    """Over the embedded Postgres, which the supervisor starts once for all workers and stops
    when it exits."""
    directory = Path(tempfile.mkdtemp(prefix="gateway-serve-embedded-"))
    directory.chmod(0o755)  # the embedded server runs as its own system user when we are root
    try:
        async with supervised(None, directory, workers=2) as served:
            postmaster = psutil.Process(int((directory / "data" / "pgdata" / "postmaster.pid").read_text().split()[0]))
            workers = serving_workers(served)
            assert len(workers) == 2
            answers = {worker.pid: await answer_of(served, worker, workers, "/readyz") for worker in workers}
            assert {pid: answer.status_code for pid, answer in answers.items()} == {worker.pid: 200 for worker in workers}
            assert len(lines_saying(served, "embedded postgres running in")) == 1, "started once, by the supervisor"
            assert len(lines_saying(served, "applied migration 0001_events")) == 1, "migrated once, by the supervisor"

            await stopped_cleanly(served)
            _, alive = psutil.wait_procs([postmaster], timeout=EXIT_SECONDS)
            assert alive == [], "the embedded Postgres stops with the supervisor"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def test_a_killed_worker_is_replaced_and_leaves_nothing_behind(database_url: str, tmp_path: Path) -> None:
    async with supervised(database_url, tmp_path, workers=2) as served:
        victim, survivor = serving_workers(served)
        its_policy_workers = victim.children(recursive=True)
        assert its_policy_workers, "each worker runs its own policy workers"

        victim.kill()
        await served.said(STARTED, times=3)

        workers = serving_workers(served)
        assert len(workers) == 2
        assert survivor in workers and victim not in workers
        (replacement,) = [worker for worker in workers if worker != survivor]
        answer = await answer_of(served, replacement, workers, "/readyz")
        assert answer.status_code == 200, answer.text
        _, alive = psutil.wait_procs(its_policy_workers, timeout=EXIT_SECONDS)
        assert alive == [], "a dead worker's policy workers end with it"

        await stopped_cleanly(served)


async def test_workers_end_with_a_supervisor_killed_outright(database_url: str, tmp_path: Path) -> None:
    async with supervised(database_url, tmp_path, workers=2) as served:
        descendants = psutil.Process(served.pid).children(recursive=True)
        assert len(serving_workers(served)) == 2
        (shared,) = Path(tempfile.gettempdir()).glob(f"{SHARED_PREFIX}{served.pid}-*")
        sweep_abandoned()
        assert shared.is_dir(), "a running supervisor's directory is left alone"

        served.process.kill()
        await served.process.wait()

        _, alive = psutil.wait_procs(descendants, timeout=EXIT_SECONDS)
        assert alive == [], f"orphans: {[process.pid for process in alive]}"
        # Its directory is left behind; the next supervisor to start removes it.
        assert shared.is_dir()
        sweep_abandoned()
        assert not shared.exists()


async def test_a_policy_change_reaches_every_worker(database_url: str, tmp_path: Path) -> None:
    policies = policies_with(tmp_path / "policies", {})
    async with supervised(database_url, tmp_path, workers=2, policy_dir=policies) as served:
        workers = serving_workers(served)
        before = PolicyFiles.read(policies).revision
        policies_with(policies, {"rate_limit": {"requests_per_minute": 999_999}})
        after = PolicyFiles.read(policies).revision
        assert after != before

        await served.said(f"policy {after[:12]} in force", times=2)

        for worker in workers:
            answer = await answer_of(served, worker, workers, "/readyz")
            assert answer.json()["policy"]["revision"] == after
        await stopped_cleanly(served)


async def scrape(served: Served) -> dict[tuple[str, str], float]:
    """GET /metrics as an operator, on a connection of its own: /readyz requests counted, by the
    `worker` label of the figures, and the same for every other family's first sample."""
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        operator = create_token(SECRET, PrincipalKind.SERVICE, "prometheus", ttl_seconds=300)
        answer = await http.get("/metrics", headers={"Authorization": f"Bearer {operator}"})
    assert answer.status_code == 200, answer.text
    counted: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "gateway_request_duration_seconds_count" and sample.labels["route"] == "/readyz":
                counted[("readyz", sample.labels["worker"])] = sample.value
            elif sample.name == "process_start_time_seconds":
                counted[("started", sample.labels["worker"])] = sample.value
    return counted


async def scraped_until(served: Served, wanted: Callable[[dict[tuple[str, str], float]], bool]) -> dict[tuple[str, str], float]:
    """Scrapes until `wanted` holds of what a scrape says (another worker's figures are at most
    gateway.telemetry.workers.PUBLISH_SECONDS old), for at most PATIENCE seconds."""
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while True:
        counted = await scrape(served)
        if wanted(counted):
            return counted
        assert asyncio.get_running_loop().time() < deadline, f"never: {counted}"
        await asyncio.sleep(0.2)


def published_readyz(figures: Path) -> float:
    """/readyz requests counted in a worker's published figures."""
    for family in text_string_to_metric_families(figures.read_text()):
        for sample in family.samples:
            if sample.name == "gateway_request_duration_seconds_count" and sample.labels["route"] == "/readyz":
                return sample.value
    return 0


def readyz_by_worker(counted: dict[tuple[str, str], float]) -> dict[str, float]:
    return {worker: value for (what, worker), value in counted.items() if what == "readyz"}


async def test_a_scrape_answers_for_every_worker_and_forgets_one_that_died(database_url: str, tmp_path: Path) -> None:
    async with supervised(database_url, tmp_path, workers=2) as served:
        first, second = workers = serving_workers(served)
        for worker, times in ((first, 3), (second, 5)):
            for _ in range(times):
                assert (await answer_of(served, worker, workers, "/readyz")).status_code == 200

        counted = await scraped_until(served, lambda counted: sorted(readyz_by_worker(counted).values()) == [3, 5])
        # Whichever worker answers, both workers' figures are in it, each under its own label, once
        # each has published them (a stopped worker publishes nothing: wait for both first).
        (shared,) = Path(tempfile.gettempdir()).glob(f"{SHARED_PREFIX}{served.pid}-*")
        deadline = asyncio.get_running_loop().time() + PATIENCE
        while sorted(published_readyz(shared / f"slot-{label}.prom") for label in ("0", "1")) != [3, 5]:
            assert asyncio.get_running_loop().time() < deadline, "the workers never published"
            await asyncio.sleep(0.2)
        for answering in workers:
            with only(answering, workers):
                assert readyz_by_worker(await scrape(served)) == readyz_by_worker(counted)
        labels = readyz_by_worker(counted)
        assert sorted(labels) == ["0", "1"]
        first_label = next(label for label, value in labels.items() if value == 3)

        first.kill()
        await served.said(STARTED, times=3)
        workers = serving_workers(served)
        # The replacement takes the dead worker's number; the dead worker's figures are gone.
        counted = await scraped_until(served, lambda counted: readyz_by_worker(counted).get(first_label) != 3
                                      and ("started", first_label) in counted)
        assert readyz_by_worker(counted).get(first_label, 0) == 0
        assert sorted({worker for (_, worker) in counted}) == ["0", "1"]
        await stopped_cleanly(served)


async def each_knows_the_other(served: Served) -> None:
    """Until every worker has looked for the others since all of them started (each does every
    gateway.serving.balance.REFRESH_SECONDS): before that, one may think itself alone and shed nothing."""
    (shared,) = Path(tempfile.gettempdir()).glob(f"{SHARED_PREFIX}{served.pid}-*")
    started = time.monotonic()  # both have said they run (in their start-up, before serving)
    deadline = started + PATIENCE
    while True:
        beats = struct.unpack_from(f"{2 * balance.FIELDS}d", (shared / balance.FILE_NAME).read_bytes())[1::balance.FIELDS]
        if all(beat > started for beat in beats):
            return
        assert time.monotonic() < deadline, f"the workers never looked again: {beats}"
        await asyncio.sleep(0.05)


def held_by(worker: psutil.Process, port: int) -> int:
    """Client connections `worker` holds open on the gateway's port."""
    return sum(1 for conn in worker.net_connections() if conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == port)


async def test_connections_spread_over_the_workers(database_url: str, tmp_path: Path) -> None:
    """A worker holding more keep-alive connections than its share and one more answers with
    `Connection: close`, and the client's next connection goes to whichever worker accepts it."""
    async with supervised(database_url, tmp_path, workers=2) as served:
        first, second = workers = serving_workers(served)
        await each_knows_the_other(served)
        port = int(served.url.rsplit(":", 1)[1])
        clients = [httpx.AsyncClient(base_url=served.url, timeout=30, limits=httpx.Limits(max_connections=1)) for _ in range(12)]
        try:
            # 12 clients while only the first worker can accept: it keeps 3 (with the second's 0,
            # its share is 2, and one more) and closes each later one after its answer.
            with only(first, workers):
                told = [(await client.get("/readyz")).headers.get("connection") for client in clients]
            assert told == [None] * 3 + ["close"] * 9
            assert (held_by(first, port), held_by(second, port)) == (3, 0)

            # All ask at once, round after round; a new connection lands on whichever worker accepts
            # first (asked one by one, the worker that just closed one is idle, and takes it again).
            for _ in range(40):
                answers = await asyncio.gather(*(client.get("/readyz") for client in clients))
                assert [answer.status_code for answer in answers] == [200] * len(clients)
                held = sorted((held_by(first, port), held_by(second, port)))
                if sum(held) == 12 and held[1] - held[0] <= 2:
                    break
            assert sum(held) == 12 and held[1] - held[0] <= 2, held

            # Balanced, nobody is told to close any more.
            for client in clients:
                assert (await client.get("/readyz")).headers.get("connection") != "close"
        finally:
            for client in clients:
                await client.aclose()
        await stopped_cleanly(served)


async def test_a_request_pipelined_behind_a_closing_answer_is_answered(database_url: str, tmp_path: Path) -> None:
    """The close moves to the last request the client sent: an answer that says close ends the
    connection, and a request queued behind it would go unanswered."""
    async with supervised(database_url, tmp_path, workers=2) as served:
        first, _ = workers = serving_workers(served)
        await each_knows_the_other(served)
        host, port = served.url.removeprefix("http://").rsplit(":", 1)
        readyz = f"GET /readyz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        streams = []
        try:
            with only(first, workers):
                # Connections to the first worker, one request each, until it is over its share
                # and one (beside the other's connections) and says so: the next connection is too.
                for _ in range(16):
                    reader, writer = await asyncio.open_connection(host, int(port))
                    streams.append(writer)
                    writer.write(readyz)
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)
                    await asyncio.wait_for(reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])), PATIENCE)
                    if b"connection: close" in head.lower():
                        break
                else:
                    raise AssertionError("the first worker never shed a connection")
                reader, writer = await asyncio.open_connection(host, int(port))
                streams.append(writer)
                writer.write(readyz + readyz)  # two requests in one write: the second pipelined
                answers = await asyncio.wait_for(reader.read(), PATIENCE)  # to the end: the server closes
        finally:
            for writer in streams:
                writer.close()
        heads = [part.split(b"\r\n\r\n", 1)[0].lower() for part in answers.split(b"HTTP/1.1 ")[1:]]
        assert [head.split(b" ", 1)[0] for head in heads] == [b"200", b"200"], answers
        assert [b"connection: close" in head for head in heads] == [False, True]
        await stopped_cleanly(served)


# The supervisor over a store its workers cannot reach (its preparation skipped): no worker starts.
UNSTARTABLE = """
import sys
from gateway.config import Settings
from gateway.serving.workers import serve_workers
from gateway.telemetry.logs import logging_config
settings = Settings(database_url="postgresql://gateway@127.0.0.1:1/gateway", workers=2, pool_timeout=5)
sys.exit(serve_workers(settings, 2, host="127.0.0.1", port=int(sys.argv[1]), log_config=logging_config("text"), log_level="info"))
"""


async def test_a_worker_that_cannot_start_stops_them_all(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_SECRET": SECRET, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", UNSTARTABLE, str(free_port()), env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    reading = asyncio.create_task(process.stderr.read())
    children: set[psutil.Process] = set()
    async with asyncio.timeout(EXIT_SECONDS):
        while process.returncode is None:
            # The workers it starts, as they come: none may outlive it.
            with contextlib.suppress(psutil.NoSuchProcess):
                children |= set(psutil.Process(process.pid).children(recursive=True))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await process.wait()
        said = (await reading).decode()

    assert process.returncode == STARTUP_FAILURE, said
    assert "Application startup failed" in said
    assert "failed to start, stopping the parent process" in said
    _, alive = psutil.wait_procs(children, timeout=EXIT_SECONDS)
    assert alive == []


@pytest.mark.parametrize(
    ("arguments", "variables", "status", "expected"),
    [
        pytest.param(["--workers", "0"], {}, 2, "Invalid value for '--workers': Input should be greater than or equal to 1", id="flag-zero"),
        pytest.param([], {"GATEWAY_WORKERS": "0"}, 3, "bad configuration: GATEWAY_WORKERS: Input should be greater than or equal to 1", id="variable-zero"),
        pytest.param([], {"GATEWAY_WORKERS": "all"}, 3, "bad configuration: GATEWAY_WORKERS: Input should be a valid integer", id="variable-not-a-number"),
        pytest.param([], {"GATEWAY_WORKERS": "2", "GATEWAY_DATABASE_URL": "postgresql://gateway@127.0.0.1:1/gateway"}, 4,
                     "cannot reach the store (GATEWAY_DATABASE_URL)", id="store-unreachable"),
    ],
)
async def test_workers_it_cannot_run_are_said_in_one_line(
    arguments: list[str], variables: dict[str, str], status: int, expected: str, tmp_path: Path
) -> None:
    """Before any worker starts: nothing is left running."""
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "data"), **variables}
    if "GATEWAY_DATABASE_URL" not in variables:
        env.pop("GATEWAY_DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        str(GATEWAY), "serve", *arguments, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(EXIT_SECONDS):
        stdout, stderr = await process.communicate()
    said = " ".join(stderr.decode().split())
    assert process.returncode == status, said
    assert expected in said
    assert "Traceback" not in said


async def test_connections_per_worker_is_what_a_worker_s_pools_may_hold(store: Store) -> None:
    pools = [getattr(store, field.name) for field in dataclasses.fields(store)]
    assert sum(pool.get_max_size() for pool in pools) == POOLED_PER_WORKER == CONNECTIONS_PER_WORKER - 1  # and the revocations' one


async def test_more_workers_than_the_store_has_connections_for_is_said_at_start(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        accepted = await conn.fetchval("SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int")
    finally:
        await conn.close()
    fitting = accepted // CONNECTIONS_PER_WORKER

    with caplog.at_level(logging.WARNING, logger="gateway.serving.workers"):
        await warn_of_too_few_connections(database_url, fitting)
        assert caplog.messages == []
        await warn_of_too_few_connections(database_url, fitting + 1)

    (warning,) = caplog.messages
    wanted = (fitting + 1) * CONNECTIONS_PER_WORKER
    assert warning.startswith(f"{fitting + 1} workers may hold up to {wanted} connections to the store, which accepts {accepted}")
