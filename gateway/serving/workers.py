"""`gateway serve --workers N`: N serving processes on one port, under uvicorn's supervisor.

uvicorn's own (uvicorn.supervisors.Multiprocess) does what is needed, so it is used as it is: it
binds the socket once and hands it to each worker, a process spawned afresh (not forked: no event
loop, pool or thread crosses); it starts a worker again when one dies, or stops answering its
pings for `timeout_worker_healthcheck` seconds; on SIGTERM or SIGINT it asks every worker to stop
(each lets its requests in flight finish within GATEWAY_SHUTDOWN_SECONDS, as one process does) and
waits for them all before it exits; a worker that fails to start (its lifespan raised) stops them
all, since the next would fail the same way; SIGHUP replaces the workers one at a time.

What happens once per deployment happens in the supervisor, before any worker starts, never raced
by N of them: the development secret and the apps' signing keys are made in the data dir, the
embedded Postgres is started (the workers are handed its URL; it stops when the supervisor lets it
go), the store is migrated, and the demo is announced. Each worker then opens its own pools, policy
engine (with its own policy worker processes) and caches; what each keeps, and why that stays
correct across processes, is in the README ("Serving on every core"). The supervisor also makes a
directory the workers share while it runs, where each publishes its metrics, so that /metrics
answers for all of them (gateway.telemetry.workers).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from gateway.app import create_app
from gateway.config import Settings
from gateway.oauth.keys import KeyRing
from gateway.routes.pages import announce_demo
from gateway.store.migrate import migrate
from gateway.store.pools import Store
from gateway.store.server import database_url

__all__ = ["CONNECTIONS_PER_WORKER", "STARTUP_FAILURE", "prepare_deployment", "serve_workers", "worker_app"]

log = logging.getLogger(__name__)

# prctl(2): the signal a process gets when its parent ends.
PR_SET_PDEATHSIG = 1

# The most connections one worker holds at once: its pools' (gateway.store.pools.Store.open: ingest
# 4, reader 10, private 4, oauth 2, eraser 2; tests/test_workers.py holds it to the pools) and the
# one it hears revocations on (gateway.store.revocations).
POOLED_PER_WORKER = 22
CONNECTIONS_PER_WORKER = POOLED_PER_WORKER + 1
# The directory a supervisor shares with its workers (their metrics), in the system's temporary
# directory, is named this, its pid and a random part.
SHARED_PREFIX = "gateway-workers-"


async def prepare_deployment(settings: Settings) -> Settings:
    """Does what happens once however many workers serve; returns the settings each worker
    starts with: those given, naming the store's URL (the embedded server's, now running)."""
    secret = settings.signing_secret()
    url = await database_url(settings)
    await migrate(url, secret)
    await warn_of_too_few_connections(url, settings.workers)
    await asyncio.to_thread(KeyRing, settings.data_dir)
    if settings.demo:
        store = await Store.open(url, secret)
        try:
            await announce_demo(store.reader, secret, settings)
        finally:
            await store.close()
    return settings.model_copy(update={"database_url": url})


async def warn_of_too_few_connections(url: str, workers: int) -> None:
    """Says so at start when `workers` may want more connections than the server accepts: under
    load, requests past its limit would get 503 STORE_UNAVAILABLE (Postgres refuses the connection)."""
    conn = await asyncpg.connect(url)
    try:
        accepted = await conn.fetchval(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
        )
    finally:
        await conn.close()
    if workers * CONNECTIONS_PER_WORKER > accepted:
        log.warning(
            "%d workers may hold up to %d connections to the store, which accepts %d: under load, requests past "
            "that get 503 STORE_UNAVAILABLE. Run fewer (GATEWAY_WORKERS) or raise the server's max_connections",
            workers, workers * CONNECTIONS_PER_WORKER, accepted,
        )


def serve_workers(settings: Settings, workers: int, **options: Any) -> int:
    """Serves on `workers` processes until SIGTERM or SIGINT, each building its app from
    `settings` (as prepare_deployment returned them); `options` are uvicorn's. The exit status:
    0, or uvicorn's STARTUP_FAILURE when a worker could not start."""
    # Each worker pickles its way across: the app is a factory of module-level functions and
    # settings, as is the protocol (gateway.serving.protocol).
    sweep_abandoned()
    with tempfile.TemporaryDirectory(prefix=f"{SHARED_PREFIX}{os.getpid()}-") as shared:
        app = functools.partial(worker_app, settings, os.getpid(), Path(shared))
        config = uvicorn.Config(app, factory=True, workers=workers, **options)
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
    return STARTUP_FAILURE if any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes) else 0


def sweep_abandoned() -> None:
    """Removes the shared directories of supervisors that ended without removing theirs (killed
    outright): each is named after its supervisor's pid."""
    for path in Path(tempfile.gettempdir()).glob(f"{SHARED_PREFIX}*-*"):
        pid = path.name.removeprefix(SHARED_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not running(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's
    return True


def worker_app(settings: Settings, supervisor: int, shared: Path) -> Starlette:
    """One worker's app (built in the worker), publishing its metrics in `shared` for whichever
    worker answers a scrape. The worker is asked to stop (SIGTERM, the graceful way) when its
    supervisor ends however it ends: a supervisor killed outright (kill -9, the OOM killer) leaves
    no worker serving on, nor the policy processes each worker runs."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it ended before the line above could take effect
        os.kill(os.getpid(), signal.SIGTERM)
    return create_app(settings, worker_dir=shared)
