"""Set-based ingest: a batch is COPYed into a staging table, stored, and applied to the release history as one arrival."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from gateway.clock import Clock, utc_now
from gateway.errors import BadUserInput, StoreUnavailable
from gateway.ingest.events import EVENT_COLUMNS, EventRecord
from gateway.store.erasure import subject_key
from gateway.store.failures import STORE_FAILURES
from gateway.store.history import ARRIVAL_LOCK, ERASURE_LOCK
from gateway.store.replay import replay_pending

__all__ = ["BatchResult", "EventWriter", "prepare_connection"]

log = logging.getLogger(__name__)

ACTOR = EVENT_COLUMNS.index("actor_id")

# A batch is stored (deduplicated, appended to events) before it takes the arrival lock, then
# applied to the history under it (apply_arrival(), migration 0011): one batch's storing
# overlaps the previous batch's arrival.
STORE_BATCH = (Path(__file__).parent / "store_batch.sql").read_text()
# A backfilled event counts as arriving at the end of the hour it occurred in (never later than
# now), so the history a backfill builds places its releases where the activity happened.
HOLD_FOR_REPLAY = """
INSERT INTO arrivals_pending (event_id, type, occurred_at, video_id, creator_id, actor_id, channel, region,
                              age_band, watch_ms, completed, text, anonymous, duration_ms, sentiment, arrival)
SELECT event_id, type, occurred_at, video_id, creator_id, actor_id, channel, region, age_band,
       watch_ms, completed, text, anonymous, duration_ms, sentiment,
       least(date_trunc('hour', occurred_at, 'UTC') + interval '1 hour' - interval '1 microsecond', $1)
FROM ingest_fresh
"""

# A batch that deadlocks with a concurrent one (or loses a serialization race) is retried whole.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_ATTEMPTS = 5


def unreachable(exc: BaseException) -> StoreUnavailable:
    """The store's failure as clients are told of it: what kind, not the driver's words (which
    name hosts, sockets and internals); those go to the log."""
    log.warning("the event store failed: %s: %s", type(exc).__name__, exc)
    return StoreUnavailable(f"the event store is unreachable ({type(exc).__name__})")


async def prepare_connection(conn: asyncpg.Connection) -> None:
    """Pool `init` for the ingest pool: creates the connection's staging tables."""
    await conn.execute("SELECT prepare_arrivals()")


@dataclass(frozen=True)
class BatchResult:
    received: int
    inserted: int
    # Events of an erased person that occurred before their erasure: the erasure covered them.
    erased: int = 0

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted - self.erased


class EventWriter:
    """Writes validated event batches through the `gateway_ingest` pool, one transaction each.

    `write` applies a batch as arriving now (`clock()`): the events join the live totals and
    make whatever releases they complete. `hold` only stores a batch, for `replay` to apply
    later in order of occurrence (a backfill of subjects with no history yet)."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock = utc_now, erasure_key: bytes | None = None) -> None:
        """`erasure_key` (gateway.store.erasure.derive_erasure_key): with it, the events an erased
        person made before their erasure are not stored when they arrive late."""
        self._pool = pool
        self._clock = clock
        self._erasure_key = erasure_key
        self._months: set[tuple[int, int]] = set()
        # Since start, for /metrics: batches committed, the events they carried and those new to the store.
        self.batches = 0
        self.events_received = 0
        self.events_inserted = 0

    async def write(self, records: list[EventRecord]) -> BatchResult:
        return await self._store(records, hold=False)

    async def hold(self, records: list[EventRecord]) -> BatchResult:
        return await self._store(records, hold=True)

    async def replay(self, progress: Callable[[int, int], None] = lambda done, total: None) -> int:
        """Applies every held event to the history, in order of arrival (gateway.store.replay);
        returns the releases made. `progress(done, total)` hears of each arrival applied."""
        try:
            async with self._pool.acquire() as conn:
                return await replay_pending(conn, self._clock, progress)
        except STORE_FAILURES as exc:
            raise unreachable(exc) from exc

    async def _store(self, records: list[EventRecord], *, hold: bool) -> BatchResult:
        unique = list({record[0]: record for record in reversed(records)}.values())
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                # Inside the try: the store gone by the time a batch names a new month is an outage too.
                await self._ensure_partitions(unique)
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.copy_records_to_table("ingest_staging", records=unique, columns=EVENT_COLUMNS)
                    erased = 0
                    if self._erasure_key is not None:
                        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", ERASURE_LOCK)
                        erased = await self._leave_out_erased(conn, unique)
                    received_at = self._clock()
                    await conn.execute(STORE_BATCH, received_at)
                    inserted: int = await conn.fetchval("SELECT count(*) FROM ingest_fresh")
                    if hold:
                        await conn.execute(HOLD_FOR_REPLAY, received_at)
                    elif inserted:
                        await conn.execute("SELECT pg_advisory_xact_lock($1)", ARRIVAL_LOCK)
                        # Read under the lock: arrivals are stamped in the order they are applied.
                        await conn.execute("SELECT apply_arrival($1)", self._clock())
                self.batches += 1
                self.events_received += len(records)
                self.events_inserted += inserted
                return BatchResult(received=len(records), inserted=inserted, erased=erased)
            except RETRYABLE as exc:
                if attempt == MAX_ATTEMPTS:
                    raise StoreUnavailable(f"ingest batch kept conflicting with concurrent batches: {exc}") from exc
                log.info("ingest batch retried after %s (attempt %d)", type(exc).__name__, attempt)
            except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
                # Validation keeps these out; if one slips through, the whole batch is refused as input.
                raise BadUserInput(f"the store refused the batch: {exc}") from exc
            except STORE_FAILURES as exc:
                raise unreachable(exc) from exc
        raise AssertionError("unreachable")

    async def _leave_out_erased(self, conn: asyncpg.Connection, records: list[EventRecord]) -> int:
        """Takes out of the staged batch what erased people did before their erasure; returns how
        many events that was. One indexed lookup a batch, by the keyed hashes of its actors."""
        assert self._erasure_key is not None
        actors = {actor for record in records if isinstance(actor := record[ACTOR], str)}
        if not actors:
            return 0
        keys = {subject_key(self._erasure_key, actor): actor for actor in actors}
        erased = await conn.fetch("SELECT subject_key, erased_at FROM erased_subjects($1)", list(keys))
        if not erased:
            return 0
        status = await conn.execute(
            """DELETE FROM ingest_staging s USING unnest($1::text[], $2::timestamptz[]) AS e (actor_id, erased_at)
               WHERE s.actor_id = e.actor_id AND s.occurred_at <= e.erased_at""",
            [keys[bytes(row["subject_key"])] for row in erased],
            [row["erased_at"] for row in erased],
        )
        return int(status.split()[-1])

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
