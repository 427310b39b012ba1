"""The pools hand a connection given back to the request that has waited longest.

asyncio's queue (which asyncpg's pool hands connections out through) wakes a waiter and leaves the
connection in the queue; whoever asks before the waiter runs takes it, and the waiter goes to the
back of the line. Under 32 clients on 10 connections that put a quarter of the gateway's answers a
whole turn of the event loop behind the rest (p99 over 4x p50, bench/peers.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import asyncpg
import pytest

from gateway.store.pools import HandingQueue, Store, open_pool

from conftest import SECRET

# Generous: the machine may be busy; nothing here waits on purpose except the timeout test.
PATIENCE = 30.0


class Holder(str):
    """What the queue holds (asyncpg's connection holder), as far as the queue looks at it."""

    def is_connected(self) -> bool:
        return True


def step(coroutine: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
    """Runs `coroutine` as far as it goes without waiting: (True, its result) when it finished,
    (False, None) when it had to wait (it is then closed)."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return True, finished.value
    coroutine.close()
    return False, None


async def test_a_connection_given_back_goes_to_the_waiter_and_not_to_whoever_asks_next() -> None:
    queue = HandingQueue(maxsize=2)
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # its first step: the queue is empty, so it waits
    assert not waiter.done()

    queue.put_nowait(Holder("connection"))
    # Someone asks before the waiter has run again (a new request in the same turn of the loop).
    took, _ = step(queue.get())
    assert not took, "the newcomer took the connection the waiter was woken for"
    assert await asyncio.wait_for(waiter, PATIENCE) == "connection"


async def test_asyncios_own_queue_lets_a_newcomer_cut_in() -> None:
    """What HandingQueue is for: with asyncio's LifoQueue, the same sequence serves the newcomer."""
    queue: asyncio.LifoQueue[str] = asyncio.LifoQueue(maxsize=2)
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(Holder("connection"))
    took, value = step(queue.get())
    assert took and value == "connection"
    waiter.cancel()


async def test_nobody_cuts_in_while_others_wait_even_when_a_connection_is_free() -> None:
    queue = HandingQueue(maxsize=2)
    first = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(Holder("one"))  # handed to `first`
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(Holder("two"))  # handed to `second`, which asked before the newcomer below
    took, _ = step(queue.get())
    assert not took
    assert [await first, await second] == ["one", "two"]


async def test_a_waiter_cancelled_after_it_was_handed_a_connection_passes_it_on() -> None:
    queue = HandingQueue(maxsize=2)
    first = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(Holder("connection"))  # handed to `first` ...
    first.cancel()  # ... which is cancelled (its request timed out) before it could take it
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, PATIENCE) == "connection"
    assert queue.empty()


async def test_a_waiter_cancelled_with_nobody_behind_it_leaves_the_connection_in_the_queue() -> None:
    queue = HandingQueue(maxsize=2)
    first = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(Holder("connection"))
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert queue.get_nowait() == "connection"


async def test_the_store_pools_hand_connections_over_in_turn(store: Store) -> None:
    for pool in (store.ingest, store.reader, store.private, store.oauth, store.eraser):
        assert isinstance(pool._queue, HandingQueue)


async def test_a_request_that_gave_up_waiting_does_not_take_the_connection_with_it(database_url: str) -> None:
    """The pool's own acquire timeout (a serving process's) ends the wait; the connection given back
    afterwards goes to the next request, not to the one that left the line."""
    pool = await open_pool(database_url, SECRET, "gateway_reader", min_size=1, max_size=1, acquire_timeout=0.05)
    try:
        held = await pool.acquire()
        with pytest.raises(TimeoutError):
            await pool.acquire()
        await pool.release(held)
        conn = await pool.acquire(timeout=PATIENCE)
        try:
            assert await conn.fetchval("SELECT current_user") == "gateway_reader"
        finally:
            await pool.release(conn)
    finally:
        await pool.close()


async def test_the_pool_still_prefers_a_live_connection(database_url: str, admin: asyncpg.Connection) -> None:
    """asyncpg's own queue hands out the connected holder (min_size) before the unconnected ones;
    ours keeps that: the first request is served without a new connection being made."""
    name = "gateway-pools-test-live"

    async def connections() -> int:
        count: int = await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name)
        return count

    pool = await open_pool(database_url, SECRET, "gateway_reader", {"application_name": name}, min_size=1, max_size=3)
    try:
        assert await connections() == 1
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
            assert await connections() == 1
    finally:
        await pool.close()


def test_asyncpg_is_the_version_the_queue_was_written_against() -> None:
    """HandingQueue subclasses asyncpg's private queue of connections (and WaitingPool replaces it
    after asyncpg's _initialize): a new asyncpg must pass this module before pyproject's bound moves."""
    assert asyncpg.__version__.startswith("0.32.")
