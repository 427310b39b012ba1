"""Revocations reach every serving process at their commit.

A process keeps what it looked up of apps' grants and token families for a while
(gateway.auth.AppGrants, GATEWAY_APP_GRANT_TTL). The store sends a notice on
`gateway_revocations` whenever a grant or a token family changes (migration 0025):
`gateway apps revoke`, an app's own revocation, a scope withdrawn, an erasure. Each
process listens on a connection of its own and forgets all it kept: revocations are
rare, and a lookup after one costs a single indexed read per (app, user).

A notice sent while a process is not listening is lost, so it forgets on every
(re)connection too; while the connection is down, the TTL is what bounds a stale grant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from gateway.store.migrate import role_password

__all__ = ["CHANNEL", "listen_for_revocations"]

log = logging.getLogger(__name__)

CHANNEL = "gateway_revocations"
# Seconds between attempts to listen again, and between checks that the connection is alive
# (a connection the network dropped without a word is noticed by the check, not by a notice).
RETRY_SECONDS = 1.0
CHECK_SECONDS = 15.0
ROLE = "gateway_reader"


async def listen_for_revocations(url: str, secret: str, forget: Callable[[], None], listening: asyncio.Event | None = None) -> None:
    """Calls `forget` at each notice, and whenever it (re)starts listening; runs until cancelled.
    `listening` is set while a connection listens (tests wait on it)."""
    while True:
        try:
            conn = await asyncpg.connect(
                url, user=ROLE, password=role_password(secret, ROLE), server_settings={"application_name": "gateway:revocations"}, timeout=10
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("cannot listen for revocations (%s); grants are trusted for their TTL until then", type(exc).__name__)
            await asyncio.sleep(RETRY_SECONDS)
            continue
        try:
            await _listen(conn, forget, listening)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("stopped listening for revocations (%s); listening again", type(exc).__name__)
        finally:
            if listening is not None:
                listening.clear()
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)
        forget()
        await asyncio.sleep(RETRY_SECONDS)


async def _listen(conn: asyncpg.Connection, forget: Callable[[], None], listening: asyncio.Event | None) -> None:
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _conn: lost.set())
    await conn.add_listener(CHANNEL, lambda *_notice: forget())
    forget()  # what was kept before now may have missed a notice
    if listening is not None:
        listening.set()
    while not lost.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lost.wait(), CHECK_SECONDS)
            return
        await conn.execute("SELECT 1", timeout=CHECK_SECONDS)
