"""The store's answer version (gateway.store.queries.answer_version), read once for many requests.

Every request that may be served a kept answer reads the version first (gateway.graphql.responses).
Under load, that was a pool checkout and a round trip each, a fifth of a worker's time on a kept
dashboard and most of Postgres's. Here one read is under way at a time, and the requests that ask
while it is share the next one, which begins as soon as it ends: a request is never given a read
that began before it asked, so a backfill committed before it asked is always seen, as when each
request read the version itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from gateway.store import queries

__all__ = ["AnswerVersion"]

Version = tuple[int, int]


class AnswerVersion:
    def __init__(self, pool: asyncpg.Pool, read: Callable[[asyncpg.Pool], Awaitable[Version]] | None = None) -> None:
        self._pool = pool
        self._read = read or _read_version
        self._running: asyncio.Task[Version] | None = None
        # The read the requests that asked while `_running` was under way will share.
        self._next: asyncio.Future[Version] | None = None
        self.reads = 0  # since start: round trips made

    async def current(self) -> Version:
        """The version as of a read that began after this call; the store's errors as they come."""
        if self._running is None:
            flight: asyncio.Future[Version] = self._start()
        else:
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
                self._next.add_done_callback(_retrieve)  # every waiter may have gone
            flight = self._next
        # Shared: one waiter giving up (its client left) must not cancel the others' read.
        return await asyncio.shield(flight)

    def _start(self) -> asyncio.Task[Version]:
        self.reads += 1
        task = asyncio.ensure_future(self._read(self._pool))
        self._running = task
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[Version]) -> None:
        _retrieve(task)
        self._running = None
        waiting, self._next = self._next, None
        if waiting is not None:
            self._start().add_done_callback(lambda done: _pass_on(done, waiting))


async def _read_version(pool: asyncpg.Pool) -> Version:
    async with pool.acquire() as conn:
        return await queries.answer_version(conn)


def _pass_on(done: asyncio.Future[Version], to: asyncio.Future[Version]) -> None:
    if to.done():
        return
    if done.cancelled():
        to.cancel()
    elif (error := done.exception()) is not None:
        to.set_exception(error)
    else:
        to.set_result(done.result())


def _retrieve(future: asyncio.Future[Version]) -> None:
    if not future.cancelled():
        future.exception()
