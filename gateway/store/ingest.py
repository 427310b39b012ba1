"""Set-based ingest: a batch is COPYed into a staging table, stored, and applied with one statement per rollup."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from gateway.errors import BadUserInput, StoreUnavailable
from gateway.ingest.events import EVENT_COLUMNS, EventRecord

__all__ = ["BatchResult", "EventWriter", "prepare_connection"]

log = logging.getLogger(__name__)

# A batch is stored (deduplicated, appended to events) before it takes the rollup
# lock, then applied to the rollups under it: one batch's storing overlaps the
# previous batch's rollups.
STORE_BATCH = (Path(__file__).parent / "store_batch.sql").read_text()
APPLY_BATCH = (Path(__file__).parent / "apply_batch.sql").read_text()

# Per-connection staging tables; ON COMMIT DELETE ROWS empties them after every batch.
STAGING_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
    event_id text COLLATE "C", type text, occurred_at timestamptz, video_id text COLLATE "C",
    creator_id text COLLATE "C", actor_id text COLLATE "C", channel text, region text COLLATE "C",
    age_band text COLLATE "C", watch_ms integer,
    completed boolean, text text, anonymous boolean
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_fresh (LIKE ingest_staging) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_cells (
    video_id text COLLATE "C", actor_id text COLLATE "C", metric "char", hour timestamptz,
    region text COLLATE "C", age_band text COLLATE "C", channel share_channel,
    events bigint, watch_ms bigint, completed_views bigint, new_in_hour boolean, new_in_hour_channel boolean, new_in_channel boolean,
    new_in_region boolean, new_in_age_band boolean, known boolean
) ON COMMIT DELETE ROWS;
"""

# A batch that deadlocks with a concurrent one (or loses a serialization race) is retried whole.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_ATTEMPTS = 5


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """Pool `init` for the ingest pool: creates the connection's staging tables."""
    await conn.execute("SET client_min_messages = warning;" + STAGING_TABLES)


@dataclass(frozen=True)
class BatchResult:
    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


class EventWriter:
    """Writes validated event batches through the `gateway_ingest` pool, one transaction each."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._months: set[tuple[int, int]] = set()

    async def write(self, records: list[EventRecord]) -> BatchResult:
        unique = list({record[0]: record for record in reversed(records)}.values())
        await self._ensure_partitions(unique)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.copy_records_to_table("ingest_staging", records=unique, columns=EVENT_COLUMNS)
                    await conn.execute(STORE_BATCH)
                    await conn.execute(APPLY_BATCH)
                    inserted: int = await conn.fetchval("SELECT count(*) FROM ingest_fresh")
                return BatchResult(received=len(records), inserted=inserted)
            except RETRYABLE as exc:
                if attempt == MAX_ATTEMPTS:
                    raise StoreUnavailable(f"ingest batch kept conflicting with concurrent batches: {exc}") from exc
                log.info("ingest batch retried after %s (attempt %d)", type(exc).__name__, attempt)
            except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
                # Validation keeps these out; if one slips through, the whole batch is refused as input.
                raise BadUserInput(f"the store refused the batch: {exc}") from exc
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                raise StoreUnavailable(f"the event store is unreachable: {exc}") from exc
        raise AssertionError("unreachable")

    async def _ensure_partitions(self, records: list[EventRecord]) -> None:
        # Records carry UTC times, so (year, month) names the partition; a set of
        # tuples costs a tenth of building a datetime per record.
        months = {(r[2].year, r[2].month) for r in records} - self._months
        if not months:
            return
        async with self._pool.acquire() as conn:
            for year, month in sorted(months):
                await conn.execute("SELECT ensure_events_partition($1)", datetime(year, month, 1, tzinfo=UTC))
        self._months |= months
