"""Streams many batches into the store: parsing the next batch overlaps with writing the previous ones."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.errors import GatewayError
from gateway.ingest.events import EventRecord
from gateway.ingest.ndjson import ParsedBatch
from gateway.store.ingest import BatchResult

__all__ = ["IngestStopped", "IngestTotals", "StoredLines", "chunked", "ingest_chunks"]

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


@dataclass
class StoredLines:
    """The lines stored from the first one on, while batches commit in any order."""

    first: int
    through: int = field(init=False)  # the last line of the stored run from `first`; first - 1 while none is
    _beyond: dict[int, int] = field(default_factory=dict)  # batches stored after a gap: first line → last line

    def __post_init__(self) -> None:
        self.through = self.first - 1

    def add(self, first: int, last: int) -> None:
        self._beyond[first] = last
        while self.through + 1 in self._beyond:
            self.through = self._beyond.pop(self.through + 1)


class IngestStopped(Exception):
    """A batch could not be stored (`cause`: the store unreachable, or refusing it) after others
    may have been: lines `stored.first` to `stored.through` are stored, and storing again from
    the next line is safe, since an event already stored is skipped. Batches already being written
    were let finish, so the stored run is as long as it can be."""

    def __init__(self, cause: GatewayError, failed: tuple[int, int], stored: StoredLines, totals: IngestTotals) -> None:
        stored_run = f"lines {stored.first}–{stored.through} are stored" if stored.through >= stored.first else "no line is known to be stored"
        super().__init__(f"lines {failed[0]}–{failed[1]} could not be stored ({cause.message}); {stored_run}")
        self.cause = cause
        self.failed = failed
        self.stored = stored
        self.totals = totals


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
    A batch the store fails on raises `IngestStopped`, once the batches in flight have finished.
    """
    totals = IngestTotals()
    stored: StoredLines | None = None
    source: Iterator[tuple[int, list[Item]]] = iter(chunks)
    pending: dict[asyncio.Task[BatchResult], tuple[int, int]] = {}
    failures: list[tuple[tuple[int, int], GatewayError]] = []

    def next_chunk() -> tuple[tuple[int, int], ParsedBatch] | None:
        chunk = next(source, None)
        if chunk is None:
            return None
        first_line, items = chunk
        return (first_line, first_line + len(items) - 1), parse(items, first_line)

    def settle(done: set[asyncio.Task[BatchResult]]) -> None:
        for task in done:
            lines = pending.pop(task)
            error = task.exception()
            if isinstance(error, GatewayError):
                failures.append((lines, error))
                continue
            if error is not None:
                raise error
            result = task.result()
            totals.received += result.received
            totals.inserted += result.inserted
            assert stored is not None
            stored.add(*lines)
            on_batch(result)

    try:
        while not failures and (parsed := await asyncio.to_thread(next_chunk)) is not None:
            lines, batch = parsed
            stored = stored or StoredLines(first=lines[0])
            batch.raise_if_invalid()
            pending[asyncio.create_task(write(batch.records))] = lines
            if len(pending) >= in_flight:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                settle(done)
        if pending:
            done, _ = await asyncio.wait(pending)
            settle(done)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    if failures:
        assert stored is not None
        failed, cause = min(failures, key=lambda failure: failure[0])
        raise IngestStopped(cause, failed, stored, totals) from cause
    return totals
