"""Which Postgres to use: `GATEWAY_DATABASE_URL`, or an embedded one started under the data dir."""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gateway.config import Settings

__all__ = ["EMBEDDED_DATABASE", "database_url", "ensure_database", "release_embedded", "start_embedded"]

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "gateway"
_handles: dict[Path, Any] = {}
EMBEDDED_TUNING = """
ALTER SYSTEM SET max_wal_size = '4GB';
ALTER SYSTEM SET checkpoint_timeout = '15min';
SELECT pg_reload_conf();
"""
# initdb's 128MB of shared buffers is smaller than the live state, the ledger of people
# and the history, and their indexes, at a million events; bulk ingest then spends its time
# evicting pages (1GB measured 13% faster at 1M events). A quarter of the
# machine's memory, at most 1GB.
SHARED_BUFFERS_MB = min(1024, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4 // 2**20)


async def database_url(settings: Settings) -> str:
    """The admin URL of the gateway's database, starting the embedded server if none is configured."""
    if settings.database_url:
        return settings.database_url
    server_url = await asyncio.to_thread(start_embedded, settings.data_dir / "pgdata")
    return await ensure_database(server_url, EMBEDDED_DATABASE)


def start_embedded(pgdata: Path, cleanup_mode: str | None = "stop") -> str:
    """Start (or reuse) the embedded Postgres in `pgdata`; returns its URL.

    With cleanup_mode "stop" the server stops when the last process using it exits.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); pgserver copes.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver  # imported lazily: only the embedded path needs it

        pgdata.mkdir(parents=True, exist_ok=True)
        created = not (pgdata / "PG_VERSION").exists()
        server = pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
        # Bulk ingest rewrites many index pages; fewer checkpoints mean fewer full-page WAL images.
        server.psql(EMBEDDED_TUNING)
        if created:
            _size_shared_buffers(server)
    _handles[pgdata.resolve()] = server
    url: str = server.get_uri()
    log.info("embedded postgres running in %s", pgdata)
    return url


def _size_shared_buffers(server: Any) -> None:
    """Give a server whose data dir was just created SHARED_BUFFERS_MB, restarting it once.

    Only when no other process has a handle on it: a restart would cut their
    connections, and their handles would keep the old postmaster's pid (so none of
    them would stop the new one at exit). The setting is then kept in the data dir;
    a data dir created otherwise keeps whatever it has."""
    from pgserver.postgres_server import pg_ctl

    with server._lock:  # pgserver's inter-process lock, held while it starts or registers a process
        others = [pid for pid in server.global_process_id_list.get() if pid != os.getpid()]
        if others:
            log.warning("embedded postgres keeps its shared_buffers: processes %s are using it", others)
            return
        server.psql(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS_MB}MB';")
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        server.ensure_postgres_running()  # starts it again and re-reads its pid for the clean-up at exit
    log.info("embedded postgres restarted with shared_buffers = %sMB", SHARED_BUFFERS_MB)


def release_embedded(settings: Settings) -> None:
    """Let go of the embedded server `settings` names, if this process started it; the last
    process to let go stops it.

    pgserver does this at exit too, but uvicorn re-raises SIGTERM after its
    graceful shutdown, which ends the process before exit handlers run.
    """
    if settings.database_url:
        return
    server = _handles.pop((settings.data_dir / "pgdata").resolve(), None)
    if server is not None:
        server.cleanup()


async def ensure_database(server_url: str, name: str, template: str | None = None) -> str:
    """Create database `name` on the server unless it exists; returns its URL."""
    conn = await asyncpg.connect(server_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be parameters; quote_ident does the quoting server-side.
            create = await conn.fetchval(
                "SELECT 'CREATE DATABASE ' || quote_ident($1) || coalesce(' TEMPLATE ' || quote_ident($2), '')",
                name,
                template,
            )
            try:
                await conn.execute(create)
            except asyncpg.DuplicateDatabaseError:
                pass  # another process created it first
    finally:
        await conn.close()
    return with_database(server_url, name)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))
