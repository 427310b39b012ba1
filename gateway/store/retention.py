"""Retention of raw events: `gateway retention --older-than DAYS`, and with GATEWAY_RETENTION_DAYS a
daily job of `gateway serve`.

Events are partitioned by the month they occurred in (migration 0001); a month's partition is
dropped whole once it ends DAYS days ago or more (drop_events_partitions_before, migration 0016).
The release history is kept: it never reads raw events. Every stored event has reached the live
totals releases are made from, unless it still waits in arrivals_pending (a backfill not yet
replayed): a month holding such an event is kept, and told. DAYS may not be fewer than the
lateness window, so that no live event can still arrive in a month that is dropped.

What else goes with the raw events: a person's activity of those months under `me` and in an
export. Two things read raw events again, and then do without the dropped ones, changing nothing
released: an erasure takes a person's events out of the counts no release has counted them in
(their events already dropped stay there, as anonymous counts; the person themselves, their
capped watch time and their place in the completion cells go whole, as the ledgers, which
retention leaves alone, hold them), and a backfill of a video or creator with live activity but
no release builds that unreleased state again from the events still stored. Event ids stay in
event_ids: an event dropped and sent again is skipped as a duplicate, as before.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from gateway.clock import Clock
from gateway.errors import BadUserInput, StoreUnavailable
from gateway.store.failures import STORE_FAILURES

__all__ = ["DailyRetention", "PartitionOutcome", "describe", "drop_expired_events", "retention_cutoff"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionOutcome:
    """A month of events past the cutoff: dropped, or kept because `held_events` wait for a replay."""

    partition: str
    starts: datetime
    ends: datetime
    dropped: bool
    held_events: int


def retention_cutoff(now: datetime, days: int, lateness_days: int) -> datetime:
    """Where retention cuts: `days` before `now`; BadUserInput when that is inside the lateness window."""
    if days < max(1, lateness_days):
        raise BadUserInput(
            f"retention must keep at least {max(1, lateness_days)} days of events: events up to "
            f"GATEWAY_LATENESS_DAYS ({lateness_days}) old may still arrive"
        )
    return now - timedelta(days=days)


async def drop_expired_events(conn: asyncpg.Connection, cutoff: datetime) -> list[PartitionOutcome]:
    """Drops every month of events ending at or before `cutoff` that no held event needs, over a
    `gateway_eraser` connection; returns each month considered. StoreUnavailable when events could
    not be locked in time (a long transaction reads or writes them) or the store failed."""
    try:
        rows = await conn.fetch("SELECT * FROM drop_events_partitions_before($1)", cutoff)
    except asyncpg.LockNotAvailableError as exc:
        raise StoreUnavailable("events are in use by a long transaction and could not be locked; try again later") from exc
    except STORE_FAILURES as exc:
        raise StoreUnavailable(f"the store failed while dropping old events ({type(exc).__name__})") from exc
    return [PartitionOutcome(row["partition_name"], row["starts"], row["ends"], row["dropped"], row["held_events"]) for row in rows]


def describe(outcomes: list[PartitionOutcome]) -> str:
    """One line for the log and the command line."""
    dropped = [outcome.partition for outcome in outcomes if outcome.dropped]
    kept = [f"{outcome.partition} ({outcome.held_events:,} events wait for a replay)" for outcome in outcomes if not outcome.dropped]
    said = f"dropped {', '.join(dropped)}" if dropped else "dropped nothing"
    return said + (f"; kept {', '.join(kept)}" if kept else "")


# A run that could not reach the store, or not lock events in time (55P03), is tried again this soon.
RETRY_AFTER = timedelta(hours=1)


class DailyRetention:
    """`gateway serve`'s retention job (GATEWAY_RETENTION_DAYS): a run at start, then one a day.
    Every serving process runs it; drop_events_partitions_before locks events first, so runs that
    meet find the months dropped already. Counts runs and months dropped, for /metrics."""

    def __init__(self, pool: asyncpg.Pool, days: int, lateness_days: int, clock: Clock, every: timedelta = timedelta(days=1)) -> None:
        self._pool = pool
        self._clock = clock
        self._every = every
        self.days = days
        self._lateness_days = lateness_days
        self.runs = 0
        self.failures = 0
        self.partitions_dropped = 0
        self.last_run: datetime | None = None

    async def run_once(self) -> list[PartitionOutcome]:
        now = self._clock()
        cutoff = retention_cutoff(now, self.days, self._lateness_days)
        try:
            async with self._pool.acquire() as conn:
                outcomes = await drop_expired_events(conn, cutoff)
        except STORE_FAILURES as exc:  # connecting
            raise StoreUnavailable(f"the store is unreachable ({type(exc).__name__})") from exc
        self.runs += 1
        self.last_run = now
        self.partitions_dropped += sum(outcome.dropped for outcome in outcomes)
        log.info("retention of events older than %d days (before %s): %s", self.days, cutoff.isoformat(), describe(outcomes))
        return outcomes

    async def run_forever(self) -> None:
        while True:
            wait = self._every
            try:
                await self.run_once()
            except StoreUnavailable as exc:
                self.failures += 1
                wait = RETRY_AFTER
                log.warning("retention of events did not run (%s); trying again in %s", exc, wait)
            except Exception:
                # Whatever else goes wrong, the job outlives it: the next run may not meet it.
                self.failures += 1
                wait = RETRY_AFTER
                log.exception("retention of events failed; trying again in %s", wait)
            await asyncio.sleep(wait.total_seconds())
