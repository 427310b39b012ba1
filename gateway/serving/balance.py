"""Keep-alive connections spread evenly over `gateway serve --workers N`.

The workers accept from one listening socket, and whichever wakes first takes what is waiting: 32
clients connecting at once were split 20 and 12 (bench/peers.py, on 2 cores). A connection keeps
its worker for its life, so the busier worker's clients waited two-thirds longer than the other's,
and that, not the work, was the gateway's p99 at 2 workers (2.3x its p50; 1.4x when split 14/18).

Each worker writes how many connections it holds, and every REFRESH_SECONDS that it is alive, into
its entry of a small file its supervisor shares with the workers (mapped into memory: an update is
a store, not a system call). The workers that wrote within STALE_SECONDS are the ones running,
whatever their numbers (a worker started by SIGHUP before the one it replaces has stopped takes a
number past N). A worker holding more than its share (the running workers' connections over their
number, and one more) answers the next request on one of its connections with `Connection: close`,
as HTTP/1.1 allows; the client opens another, which whichever worker is free to accept first takes.
A worker that finds itself alone (the others stopped, or wedged) closes nothing. A connection is
only closed after an answer, never while a request is in flight, and not when the client has
already sent its next request on it (pipelined).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import mmap
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["ConnectionShares", "install", "shares"]

# The most worker numbers the file has entries for (a worker numbered beyond it does not take part).
MOST_WORKERS = 256
# Each entry: connections held, and when the worker last said it was running (CLOCK_MONOTONIC,
# one clock for every process of the machine), as native doubles.
FIELDS = 2
ENTRY_BYTES = FIELDS * 8
FILE_NAME = "connections"
REFRESH_SECONDS = 0.25
STALE_SECONDS = 3.0


class ConnectionShares:
    """This worker's entry among its supervisor's workers' connection counts."""

    def __init__(self, directory: Path, number: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.number, self.path, self._clock = number, directory / FILE_NAME, clock
        self.taking_part = number < MOST_WORKERS
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_size < MOST_WORKERS * ENTRY_BYTES:
                os.ftruncate(descriptor, MOST_WORKERS * ENTRY_BYTES)  # zeros; growing it again changes nothing
            self._file = mmap.mmap(descriptor, MOST_WORKERS * ENTRY_BYTES)
        finally:
            os.close(descriptor)
        self._view = memoryview(self._file).cast("d")
        self._open = 0
        # Connections told to close after their answer: no longer this worker's to hold (or every
        # request in flight on an over-full worker would see it over its share and close its
        # connection), but still in the workers' total until they close (they will connect again).
        self.leaving = 0
        # The entries of the workers running, as of the last refresh (this one's among them).
        self._running: tuple[int, ...] = ()
        self._write()  # a worker started in a dead one's place: the count there is not ours
        self.refresh()

    def holds(self, connections: int) -> None:
        self._open = connections
        self._write()

    def one_should_leave(self) -> bool:
        """Whether this worker holds more connections than its share and one more; if so, one
        more is counted as leaving (the caller closes it after its answer, then calls `left`)."""
        running = self._running
        if len(running) < 2:
            return False
        view = self._view
        held = self._open - self.leaving
        if held <= math.ceil(sum(view[FIELDS * number] for number in running) / len(running)) + 1:
            return False
        self.leaving += 1
        return True

    def left(self) -> None:
        self.leaving -= 1

    def refresh(self) -> None:
        """Says this worker is running, and finds which others are."""
        if not self.taking_part:
            return
        now = self._clock()
        self._view[FIELDS * self.number + 1] = now
        with contextlib.suppress(OSError):  # the file is mapped: it serves on if its name is gone
            os.utime(self.path)  # a file cleaner that goes by age (systemd-tmpfiles) leaves it be
        view = self._view
        self._running = tuple(
            number
            for number in range(MOST_WORKERS)
            if number == self.number or (beat := view[FIELDS * number + 1]) > 0 and beat >= now - STALE_SECONDS
        )

    async def keep_refreshing(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(REFRESH_SECONDS)

    def _write(self) -> None:
        if self.taking_part:
            self._view[FIELDS * self.number] = self._open

    def close(self) -> None:
        if self.taking_part:
            self._view[FIELDS * self.number] = 0
            self._view[FIELDS * self.number + 1] = 0  # not running
        self._view.release()
        self._file.close()


_installed: ConnectionShares | None = None


def install(shared: ConnectionShares | None) -> None:
    """Makes `shared` what this process's connections count into (None: no longer)."""
    global _installed
    _installed = shared


def shares() -> ConnectionShares | None:
    """This process's entry, when it is one of several workers."""
    return _installed
