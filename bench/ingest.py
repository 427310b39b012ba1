"""Ingest throughput: NDJSON → validation → COPY + release history, against a raw COPY of the same rows.

Run: .venv/bin/python bench/ingest.py [--events N]
Uses GATEWAY_DATABASE_URL's server, or a throwaway embedded Postgres. Every
load runs in one process, each into its own fresh database, side by side, so
the ratios are what matter on a shared, noisy machine. Target: >= 50,000
events/s through ingest and >= 0.4 of raw COPY.

The events are a DemoPlatform week ending when they are generated, inside the
lateness window, so they go the live way: checked against that window (one
`Window` at the moment they were generated, as `gateway ingest` takes one when
it starts) and each batch arriving now (`EventWriter.write`).

Three loads of the same events:
- ingest: the real path (`gateway ingest`'s), validation, dedupe, events, and
  the batch applied to the release history (`apply_arrival()` under the
  arrival lock);
- ingest without history: the same path with the history step (the arrival
  lock and `SELECT apply_arrival(...)`) patched out in this process only, i.e.
  what validating and idempotently appending cost;
- raw COPY of the already-validated rows into an unindexed table.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from gateway.config import Settings
from gateway.demo import DemoPlatform
from gateway.ingest.events import EVENT_COLUMNS, EventRecord, Window
from gateway.ingest.ndjson import parse_lines
from gateway.ingest.pipeline import chunked, ingest_chunks
from gateway.store.history import ARRIVAL_LOCK
from gateway.store.ingest import EventWriter
from gateway.store.migrate import migrate
from gateway.store.pools import Store
from gateway.store.server import ensure_database, start_embedded

BATCH = 10_000
SECRET = "bench-secret"
# The history step of EventWriter.write, what `without_history` leaves out: statement → its
# arguments (None: any).
HISTORY_STEP = {"SELECT pg_advisory_xact_lock($1)": (ARRIVAL_LOCK,), "SELECT apply_arrival($1)": None}


def ndjson_lines(events: int, now: datetime) -> list[bytes]:
    """A week of events ending at `now`: all of it may arrive now (the lateness window is a week)."""
    platform = DemoPlatform(users=max(100, events // 50), videos=max(10, events // 300), events=events, seed=42,
                            weeks=1, end=now)
    return [json.dumps(event, default=datetime.isoformat).encode() for event in platform.generate()]


@asynccontextmanager
async def fresh_database(server: str, label: str) -> AsyncIterator[str]:
    name = f"gateway_bench_{label}_{os.getpid()}"
    admin = await asyncpg.connect(server)
    drop = await admin.fetchval("SELECT format('DROP DATABASE IF EXISTS %I', $1::text)", name)
    await admin.execute(drop)
    try:
        url = await ensure_database(server, name)
        await migrate(url, SECRET)
        yield url
    finally:
        await admin.execute(drop)
        await admin.close()


async def ingest(url: str, lines: list[bytes], window: Window) -> tuple[float, float]:
    """Seconds of wall clock and of this process's CPU for the ingest path."""
    store = await Store.open(url, SECRET)
    try:
        parse = functools.partial(parse_lines, window=window)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = await ingest_chunks(EventWriter(store.ingest).write, chunked(lines, BATCH), parse)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        assert result.inserted == len(lines), result
    finally:
        await store.close()
    return seconds, cpu


@contextmanager
def without_history() -> Iterator[None]:
    """In this process only, asyncpg skips the two statements of the history step: a batch is
    stored (deduplicated, appended to events) and committed, and never applied to the history.
    Fails when they were not met, e.g. after the gateway renamed them."""
    execute = asyncpg.Connection.execute
    skipped = 0

    async def skipping(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> str:
        nonlocal skipped
        if query in HISTORY_STEP and HISTORY_STEP[query] in (None, args):
            skipped += 1
            return "SELECT 1"
        status: str = await execute(self, query, *args, **kwargs)
        return status

    asyncpg.Connection.execute = skipping
    try:
        yield
    finally:
        asyncpg.Connection.execute = execute
    assert skipped, "the history step was not found: see HISTORY_STEP"


async def raw_copy(url: str, records: list[EventRecord]) -> float:
    conn = await asyncpg.connect(url)
    try:
        # Same columns and types as events; no keys, indexes, checks or partitions.
        await conn.execute("CREATE TABLE raw_events AS SELECT " + ", ".join(EVENT_COLUMNS) + " FROM events WITH NO DATA")
        started = time.perf_counter()
        for start in range(0, len(records), BATCH):
            await conn.copy_records_to_table("raw_events", records=records[start : start + BATCH], columns=EVENT_COLUMNS)
        seconds = time.perf_counter() - started
        assert await conn.fetchval("SELECT count(*) FROM raw_events") == len(records)
    finally:
        await conn.close()
    return seconds


async def main(events: int) -> None:
    server = os.environ.get("GATEWAY_DATABASE_URL")
    if not server:
        pgdata = Path(tempfile.mkdtemp(prefix="gateway-bench-pg-"))
        pgdata.chmod(0o755)
        server = start_embedded(pgdata, cleanup_mode="delete")

    print(f"generating {events:,} events …", flush=True)
    now = datetime.now(UTC)
    window = Window(now, Settings().lateness)
    lines = ndjson_lines(events, now)
    records = parse_lines(lines).records

    async with fresh_database(server, "ingest") as url:
        ingest_seconds, client_cpu = await ingest(url, lines, window)
    with without_history():
        async with fresh_database(server, "floor") as url:
            floor_seconds, _ = await ingest(url, lines, window)
    async with fresh_database(server, "copy") as url:
        copy_seconds = await raw_copy(url, records)

    ingest_rate, floor_rate, copy_rate = events / ingest_seconds, events / floor_seconds, events / copy_seconds
    print(f"ingest path (validate + COPY + history):  {ingest_rate:>10,.0f} events/s  ({ingest_seconds:.1f} s)")
    print(f"  of which client CPU (parse, validate, encode): {client_cpu / events * 1e6:.1f} µs/event")
    print(f"ingest path without history:              {floor_rate:>10,.0f} events/s  ({floor_seconds:.1f} s)")
    print(f"raw COPY, unindexed, no history:          {copy_rate:>10,.0f} events/s  ({copy_seconds:.1f} s)")
    print(f"ratio ingest / raw COPY:                  {ingest_rate / copy_rate:>10.2f}   (target >= 0.40; >= 50,000 events/s)")
    print(f"ratio ingest without history / raw COPY:  {floor_rate / copy_rate:>10.2f}")
    print(f"ratio ingest / ingest without history:    {ingest_rate / floor_rate:>10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().events))
