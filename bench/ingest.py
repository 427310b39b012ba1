"""Ingest throughput: NDJSON → validation → COPY + rollups, against a raw COPY of the same rows.

Run: .venv/bin/python bench/ingest.py [--events N]
Uses GATEWAY_DATABASE_URL's server, or a throwaway embedded Postgres. Both
loads run in one process on one fresh database, side by side, so the ratio is
what matters on a shared, noisy machine. Target: >= 50,000 events/s through
ingest and >= 0.4 of raw COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from gateway.demo import DemoPlatform
from gateway.ingest.events import EVENT_COLUMNS
from gateway.ingest.ndjson import parse_lines
from gateway.ingest.pipeline import chunked, ingest_chunks
from gateway.store.ingest import EventWriter
from gateway.store.migrate import migrate
from gateway.store.pools import Store
from gateway.store.server import ensure_database, start_embedded

BATCH = 10_000
SECRET = "bench-secret"


def ndjson_lines(events: int) -> list[bytes]:
    platform = DemoPlatform(users=max(100, events // 50), videos=max(10, events // 300), events=events, seed=42,
                            end=datetime(2026, 11, 27, tzinfo=UTC))
    return [json.dumps(event, default=datetime.isoformat).encode() for event in platform.generate()]


async def main(events: int) -> None:
    server = os.environ.get("GATEWAY_DATABASE_URL")
    if not server:
        pgdata = Path(tempfile.mkdtemp(prefix="gateway-bench-pg-"))
        pgdata.chmod(0o755)
        server = start_embedded(pgdata, cleanup_mode="delete")
    admin = await asyncpg.connect(server)
    name = f"gateway_bench_{os.getpid()}"
    await admin.execute(await admin.fetchval("SELECT format('DROP DATABASE IF EXISTS %I', $1::text)", name))
    await admin.close()
    url = await ensure_database(server, name)
    await migrate(url, SECRET)
    store = await Store.open(url, SECRET)

    print(f"generating {events:,} events …", flush=True)
    lines = ndjson_lines(events)
    records = parse_lines(lines).records

    started = time.perf_counter()
    totals = ingest_chunks(EventWriter(store.ingest), chunked(lines, BATCH), parse_lines, in_flight=int(os.environ.get("IN_FLIGHT", 2)))
    result = await totals
    ingest_seconds = time.perf_counter() - started
    assert result.inserted == len(lines), result

    await store.close()
    conn = await asyncpg.connect(url)
    # Same columns and types as events; no keys, indexes, checks or partitions.
    await conn.execute("CREATE TABLE raw_events AS SELECT " + ", ".join(EVENT_COLUMNS) + " FROM events WITH NO DATA")
    started = time.perf_counter()
    for start in range(0, len(records), BATCH):
        await conn.copy_records_to_table("raw_events", records=records[start : start + BATCH], columns=EVENT_COLUMNS)
    copy_seconds = time.perf_counter() - started
    assert await conn.fetchval("SELECT count(*) FROM raw_events") == len(records)
    await conn.close()

    ingest_rate, copy_rate = events / ingest_seconds, events / copy_seconds
    print(f"ingest path (validate + COPY + rollups): {ingest_rate:>10,.0f} events/s  ({ingest_seconds:.1f} s)")
    print(f"raw COPY, unindexed, no rollups:         {copy_rate:>10,.0f} events/s  ({copy_seconds:.1f} s)")
    print(f"ratio ingest / raw COPY:                 {ingest_rate / copy_rate:>10.2f}   (target >= 0.40; >= 50,000 events/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().events))
