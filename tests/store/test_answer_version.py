"""Requests share reads of the answer version, and never one that began before they asked."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from gateway.store import queries
from gateway.store.answer_version import AnswerVersion, Version
from gateway.store.ingest import EventWriter
from gateway.store.pools import Store

from helpers import event, ingest, utc

PATIENCE = 30.0


async def read_now(pool: asyncpg.Pool) -> Version:
    async with pool.acquire() as conn:
        return await queries.answer_version(conn)


async def test_requests_asking_at_once_share_reads(store: Store) -> None:
    versions = AnswerVersion(store.reader)
    answers = await asyncio.wait_for(asyncio.gather(*(versions.current() for _ in range(50))), PATIENCE)
    assert len(set(answers)) == 1
    assert answers[0] == await read_now(store.reader)
    # The first asker's read, and one more shared by the 49 who asked while it was under way.
    assert versions.reads == 2


async def test_a_request_that_asks_after_a_commit_sees_it_even_while_an_older_read_is_under_way(store: Store) -> None:
    snapshot_taken, let_go = asyncio.Event(), asyncio.Event()

    async def slow_read(pool: asyncpg.Pool) -> Version:
        read = await read_now(pool)  # the read's snapshot is taken here ...
        snapshot_taken.set()
        await let_go.wait()  # ... and its answer is late
        return read

    versions = AnswerVersion(store.reader, slow_read)
    first = asyncio.create_task(versions.current())
    await asyncio.wait_for(snapshot_taken.wait(), PATIENCE)
    before = await read_now(store.reader)

    # A video published (the catalogue's version moves) while the first read is under way.
    await ingest(EventWriter(store.ingest), [event("video_published", "answer-version-video", utc(2025, 3, 1, 9), actor_id="c1")])
    after = await read_now(store.reader)
    assert after != before

    second = asyncio.create_task(versions.current())
    let_go.set()
    assert await asyncio.wait_for(first, PATIENCE) == before
    assert await asyncio.wait_for(second, PATIENCE) == after


async def test_a_failed_read_fails_those_sharing_it_and_the_next_is_made_afresh(store: Store) -> None:
    started, let_go = asyncio.Event(), asyncio.Event()
    reads = 0

    async def second_read_fails(pool: asyncpg.Pool) -> Version:
        nonlocal reads
        reads += 1
        if reads == 1:
            started.set()
            await let_go.wait()
        elif reads == 2:
            raise ConnectionResetError("the store went away")
        return await read_now(pool)

    versions = AnswerVersion(store.reader, second_read_fails)
    first = asyncio.create_task(versions.current())
    await asyncio.wait_for(started.wait(), PATIENCE)
    # Both ask while the first read is under way: they share the next one, which fails.
    sharing = [asyncio.create_task(versions.current()) for _ in range(2)]
    let_go.set()
    expected = await read_now(store.reader)
    assert await asyncio.wait_for(first, PATIENCE) == expected
    for each in sharing:
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(each, PATIENCE)
    assert await asyncio.wait_for(versions.current(), PATIENCE) == expected
    assert reads == 3


async def test_a_request_that_gives_up_does_not_cancel_the_read_others_wait_for(store: Store) -> None:
    started, let_go = asyncio.Event(), asyncio.Event()
    begun: list[asyncio.Task[Any]] = []

    async def gated(pool: asyncpg.Pool) -> Version:
        current = asyncio.current_task()
        assert current is not None
        begun.append(current)
        started.set()
        await let_go.wait()
        return await read_now(pool)

    versions = AnswerVersion(store.reader, gated)
    first = asyncio.create_task(versions.current())
    await asyncio.wait_for(started.wait(), PATIENCE)
    # Both ask while the first read is under way: they share the next one.
    leaving = asyncio.create_task(versions.current())
    staying = asyncio.create_task(versions.current())
    await asyncio.sleep(0)  # both are waiting now
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    let_go.set()
    expected = await read_now(store.reader)
    assert await asyncio.wait_for(first, PATIENCE) == expected
    assert await asyncio.wait_for(staying, PATIENCE) == expected
    assert versions.reads == 2
    assert not any(read.cancelled() for read in begun)
