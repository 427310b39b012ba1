"""The asyncpg pools, one per database role; opened in the app's lifespan or a CLI command."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.store.ingest import prepare_connection
from gateway.store.migrate import role_password

__all__ = ["Store"]

# Seconds past the statement timeout after which the client gives up on a read itself.
READ_TIMEOUT_MARGIN = 1.0
# Seconds a statement on the ingest pool may take in a serving process (a batch, the decision log).
INGEST_COMMAND_TIMEOUT = 10.0
# Seconds an erasure's statement may take, waiting for the arrival lock behind ingest included.
ERASURE_STATEMENT_TIMEOUT = 60.0


class HandingQueue(asyncpg.pool._PoolConnectionHolderQueue):  # type: ignore[misc]
    """asyncpg's queue of connections, but a connection given back goes straight to the longest
    waiter, and nobody takes one while others wait.

    asyncio's queue wakes a waiter and leaves the connection in the queue for it; a request that
    asks in the meantime takes it, and the waiter, finding none, goes to the back of the line.
    Under load (32 clients, 10 connections) some requests lost that race again and again: the
    gateway's p99 was over 4x its p50, with about a quarter of its answers taking a whole turn of
    the event loop longer.
    """

    def put_nowait(self, item: Any) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)

    async def get(self) -> Any:
        if not self.empty() and not any(not waiter.done() for waiter in self._getters):
            return self.get_nowait()
        waiter = asyncio.get_running_loop().create_future()
        self._getters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())  # handed one, but cancelled before taking it: the next waiter's
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(waiter)
            raise


class WaitingPool(asyncpg.Pool):  # type: ignore[misc]
    """A pool whose `acquire` waits at most `acquire_timeout` seconds unless told otherwise:
    TimeoutError (a STORE_FAILURES member) rather than a request queued behind a stuck store;
    and whose waiters get connections in the order they asked (HandingQueue)."""

    def __init__(self, *args: Any, acquire_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)

    async def _initialize(self) -> None:
        await super()._initialize()
        given: asyncio.Queue[Any] = self._queue  # type: ignore[has-type]  # asyncpg is untyped
        holders = []
        while not given.empty():
            holders.append(given.get_nowait())  # the live ones first
        handing = HandingQueue(maxsize=self._maxsize)
        for holder in reversed(holders):
            handing.put_nowait(holder)  # a LIFO: the first put back comes out first
        self._queue = handing


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool `reset` that sends nothing.

    asyncpg's default reset costs a round trip on every release. The gateway
    leaves no session state behind: settings are transaction-local
    (`set_config(..., true)`), locks are transaction-scoped, there is no
    LISTEN and no cursor outside a transaction. The ingest staging tables are
    meant to outlive a checkout.
    """


async def open_pool(url: str, secret: str, role: str, settings: dict[str, str] | None = None, *,
                    acquire_timeout: float | None = None, **options: Any) -> WaitingPool:
    """A pool that logs in as `role`, with `settings` for its sessions and asyncpg's `options`."""
    opened = WaitingPool(
        url,
        user=role,
        password=role_password(secret, role),
        server_settings={"timezone": "UTC", "application_name": f"gateway:{role}", **(settings or {})},
        reset=keep_session,
        acquire_timeout=acquire_timeout,
        # A server that accepts the TCP connection but never answers (stopped, or swamped):
        # connecting gives up as soon as a request would have.
        timeout=acquire_timeout or 60.0,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        **options,
    )
    await opened
    return opened


@dataclass
class Store:
    """Pools that log in as `gateway_ingest`, `gateway_reader`, `gateway_private`,
    `gateway_oauth` (the OAuth endpoints: apps' codes and tokens) and `gateway_eraser` (a person's
    erasure, and retention)."""

    ingest: asyncpg.Pool
    reader: asyncpg.Pool
    private: asyncpg.Pool
    oauth: asyncpg.Pool
    eraser: asyncpg.Pool

    @classmethod
    async def open(
        cls,
        url: str,
        secret: str,
        *,
        max_size: int = 10,
        statement_timeout: float = 5.0,
        acquire_timeout: float | None = None,
    ) -> Store:
        """`statement_timeout`: seconds a read (reader, private) may take, waiting on locks
        included, before Postgres cancels it (the request gets STORE_UNAVAILABLE); ingest has none.
        `acquire_timeout`: seconds any use of a pool may wait for a connection, a new one's
        connecting included (None: as long as it takes, for the CLI's batch work)."""

        async def pool(role: str, settings: dict[str, str] | None = None, **options: Any) -> asyncpg.Pool:
            return await open_pool(url, secret, role, settings, acquire_timeout=acquire_timeout, **options)

        reads = {"statement_timeout": str(max(1, round(statement_timeout * 1000)))}
        # Postgres cancels a slow read itself; a server that is stopped or swamped cannot, so the
        # client gives up a little later (TimeoutError: STORE_UNAVAILABLE). Ingest batches may take
        # longer; a serving process (one with an acquire timeout) still does not wait for ever.
        read_timeout = statement_timeout + READ_TIMEOUT_MARGIN
        ingest_timeout = INGEST_COMMAND_TIMEOUT if acquire_timeout is not None else None
        ingest = await pool("gateway_ingest", min_size=1, max_size=4, init=prepare_connection, command_timeout=ingest_timeout)
        reader = await pool("gateway_reader", reads, min_size=2, max_size=max_size, command_timeout=read_timeout)
        private = await pool("gateway_private", reads, min_size=1, max_size=4, command_timeout=read_timeout)
        # Apps' sign-ins are rare next to reads: a connection is opened when one is asked for.
        oauth = await pool("gateway_oauth", reads, min_size=0, max_size=2, command_timeout=read_timeout)
        # Erasures and retention are rarer still; an erasure waits its turn behind ingest batches.
        erasing = {"statement_timeout": str(round(ERASURE_STATEMENT_TIMEOUT * 1000))}
        eraser = await pool("gateway_eraser", erasing, min_size=0, max_size=2, command_timeout=ERASURE_STATEMENT_TIMEOUT + READ_TIMEOUT_MARGIN)
        return cls(ingest=ingest, reader=reader, private=private, oauth=oauth, eraser=eraser)

    async def close(self) -> None:
        for pool in (self.ingest, self.reader, self.private, self.oauth, self.eraser):
            await pool.close()
