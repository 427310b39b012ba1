"""Streams many batches into the store: parsing the next batch overlaps with writing the previous ones."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.ingest.events import EventRecord
from gateway.ingest.ndjson import ParsedBatch
from gateway.store.ingest import BatchResult

__all__ = ["IngestTotals", "chunked", "ingest_chunks"]

Item = TypeVar("Item")


def chunked(items: Iterable[Item], size: int, first_line: int = 1) -> Iterator[tuple[int, list[Item]]]:
    """`items` in lists of `size`, each with the line number of its first item."""
    iterator = iter(items)
    line = first_line
    while chunk := list(itertools.islice(iterator, size)):
        yield line, chunk
        line += len(chunk)


@dataclass
class IngestTotals:
    received: int = 0
    inserted: int = 0

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


async def ingest_chunks(
    write: Callable[[list[EventRecord]], Coroutine[Any, Any, BatchResult]],
    chunks: Iterable[tuple[int, list[Item]]],
    parse: Callable[[list[Item], int], ParsedBatch],
    *,
    in_flight: int = 3,
    on_batch: Callable[[BatchResult], None] = lambda result: None,
) -> IngestTotals:
    """Parse each `(first_line, items)` chunk and `write` it as one batch (an `EventWriter`'s
    `write`, or its `hold` in a backfill).

    Chunks are read and parsed in a worker thread so the event loop keeps the
    writes in flight; at most `in_flight` batches are being written at once.
    Three keep both cores busy: one batch being stored, the one before it
    applied to the release history (one at a time), the next one being parsed.
    A chunk with a bad line raises `InvalidEvents`; batches already written stay.
    """
    totals = IngestTotals()
    source: Iterator[tuple[int, list[Item]]] = iter(chunks)
    pending: set[asyncio.Task[BatchResult]] = set()

    def next_batch() -> ParsedBatch | None:
        chunk = next(source, None)
        return None if chunk is None else parse(chunk[1], chunk[0])

    def collect(done: set[asyncio.Task[BatchResult]]) -> None:
        for task in done:
            result = task.result()
            totals.received += result.received
            totals.inserted += result.inserted
            on_batch(result)

    try:
        while (batch := await asyncio.to_thread(next_batch)) is not None:
            batch.raise_if_invalid()
            pending.add(asyncio.create_task(write(batch.records)))
            if len(pending) >= in_flight:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                collect(done)
        if pending:
            done, pending = await asyncio.wait(pending)
            collect(done)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    return totals
