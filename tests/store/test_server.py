"""The embedded Postgres: sized for bulk ingest once, when this process creates its data dir, and
never restarted under another process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from gateway.store import server as embedded
from gateway.store.server import SHARED_BUFFERS_MB, start_embedded

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GATEWAY_DATABASE_URL")), reason="GATEWAY_DATABASE_URL's server is not the embedded one"
)

# Another process: starts the embedded server in the data dir it is given, prints its URL,
# and holds its handle until its stdin closes.
HOLDER = """
import sys
from pathlib import Path
from gateway.store.server import start_embedded
print(start_embedded(Path(sys.argv[1]), cleanup_mode="stop"), flush=True)
sys.stdin.read()
"""


async def settings(url: str) -> tuple[int, datetime]:
    """Shared buffers in MB, and when the server started."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT pg_size_bytes(current_setting('shared_buffers')) / 1048576 AS mb, pg_postmaster_start_time() AS started"
        )
        return row["mb"], row["started"]
    finally:
        await conn.close()


@pytest.fixture
def held_server() -> Iterator[tuple[Path, str]]:
    """A data dir another process created and is using, with its URL."""
    pgdata = Path(tempfile.mkdtemp(prefix="gateway-test-held-")) / "pgdata"
    pgdata.parent.chmod(0o755)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(pgdata)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        yield pgdata, holder.stdout.readline().strip()
    finally:
        ours = embedded._handles.pop(pgdata.resolve(), None)
        if ours is not None:
            ours.cleanup()
        holder.communicate("", timeout=60)  # closing stdin lets it go; the last handle stops the server


async def test_a_created_data_dir_gets_its_shared_buffers(server_url: str) -> None:
    shared_buffers, _ = await settings(server_url)

    assert shared_buffers == SHARED_BUFFERS_MB
    assert SHARED_BUFFERS_MB > 128, "more than initdb's default, or the setting does nothing"


async def test_starting_on_a_data_dir_another_process_uses_leaves_its_server_running(held_server: tuple[Path, str]) -> None:
    pgdata, url = held_server
    conn = await asyncpg.connect(url)
    try:
        _, started = await settings(url)

        assert start_embedded(pgdata, cleanup_mode="stop") == url

        assert (await settings(url))[1] == started
        assert await conn.fetchval("SELECT 1") == 1, "the other process's connection survives"
    finally:
        await conn.close()


async def test_no_restart_while_another_process_holds_a_handle(held_server: tuple[Path, str]) -> None:
    pgdata, url = held_server
    start_embedded(pgdata, cleanup_mode="stop")
    ours = embedded._handles[pgdata.resolve()]
    before = await settings(url)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedded, "SHARED_BUFFERS_MB", SHARED_BUFFERS_MB + 16)  # would call for a restart were it ours alone
        embedded._size_shared_buffers(ours)

    assert await settings(url) == before


async def test_a_data_dir_created_earlier_keeps_its_setting() -> None:
    pgdata = Path(tempfile.mkdtemp(prefix="gateway-test-earlier-")) / "pgdata"
    pgdata.parent.chmod(0o755)
    # Created by a process that has exited (and stopped its server) since.
    subprocess.run([sys.executable, "-c", HOLDER, str(pgdata)], input="", text=True, capture_output=True, check=True)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(embedded, "SHARED_BUFFERS_MB", SHARED_BUFFERS_MB + 16)  # differs: a resize would restart
            url = start_embedded(pgdata, cleanup_mode="delete")

        assert (await settings(url))[0] == SHARED_BUFFERS_MB, "only the process that creates a data dir sizes it"
    finally:
        embedded._handles.pop(pgdata.resolve()).cleanup()
