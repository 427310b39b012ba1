"""The embedded Postgres: sized for bulk ingest once, when its data dir is new, and never restarted after."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest

from gateway.store.server import SHARED_BUFFERS_MB, start_embedded

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("GATEWAY_DATABASE_URL")), reason="GATEWAY_DATABASE_URL's server is not the embedded one"
)


async def settings(url: str) -> tuple[int, object]:
    """Shared buffers in MB, and when the server started."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT pg_size_bytes(current_setting('shared_buffers')) / 1048576 AS mb, pg_postmaster_start_time() AS started"
        )
        return row["mb"], row["started"]
    finally:
        await conn.close()


async def test_embedded_server_gets_its_shared_buffers(server_url: str) -> None:
    shared_buffers, _ = await settings(server_url)

    assert shared_buffers == SHARED_BUFFERS_MB
    assert SHARED_BUFFERS_MB > 128, "more than initdb's default, or the setting does nothing"


async def test_starting_a_sized_server_again_does_not_restart_it(server_url: str) -> None:
    _, started = await settings(server_url)
    socket_dir = Path(server_url.split("host=", 1)[1].split("&", 1)[0])

    again = start_embedded(socket_dir, cleanup_mode="delete")

    assert again == server_url
    assert (await settings(again))[1] == started, "a second start must not restart a server others are using"
