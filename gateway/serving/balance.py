"""Keep-alive connections spread evenly over `gateway serve --workers N`.

The workers accept from one listening socket, and whichever wakes first takes what is waiting: 32
clients connecting at once were split 20 and 12 (bench/peers.py, on 2 cores). A connection keeps
its worker for its life, so the busier worker's clients waited two-thirds longer than the other's,
and that, not the work, was the gateway's p99 at 2 workers (2.3x its p50; 1.4x when split 14/18).

Each worker writes how many connections it holds into its entry of a small file its supervisor
shares with the workers (mapped into memory: an update is a store, not a system call). A worker
holding more than its share (the workers' total over N, and one more) answers the next request on
one of its connections with `Connection: close`, as HTTP/1.1 allows; the client opens another,
which whichever worker is free to accept first takes. A connection is only closed after an answer,
never while a request is in flight.
"""

from __future__ import annotations

import math
import mmap
import os
from pathlib import Path

__all__ = ["ConnectionShares", "install", "shares"]

# The most workers the file has entries for (a worker numbered beyond it does not take part).
MOST_WORKERS = 1024
ENTRY = 4  # bytes: a little-endian unsigned count
FILE_NAME = "connections"


class ConnectionShares:
    """This worker's entry among its supervisor's workers' connection counts."""

    def __init__(self, directory: Path, number: int, workers: int) -> None:
        self.number, self.workers = number, workers
        descriptor = os.open(directory / FILE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(descriptor).st_size < MOST_WORKERS * ENTRY:
                os.ftruncate(descriptor, MOST_WORKERS * ENTRY)  # zeros; growing it again changes nothing
            self._counts = mmap.mmap(descriptor, MOST_WORKERS * ENTRY)
        finally:
            os.close(descriptor)
        self._view = memoryview(self._counts).cast("I")
        self._open = 0
        # Connections told to close after their answer: counted as gone already, or every request
        # in flight on an over-full worker would see it over its share and close its connection.
        self.leaving = 0
        self._write()  # a worker started in a dead one's place: the count there is not ours

    def holds(self, connections: int) -> None:
        self._open = connections
        self._write()

    def one_should_leave(self) -> bool:
        """Whether this worker holds more connections than its share and one more; if so, one
        more is counted as leaving (the caller closes it after its answer, then calls `left`)."""
        if self.number >= MOST_WORKERS or self.workers < 2:
            return False
        counts = self._view[: max(self.workers, self.number + 1)]
        if counts[self.number] <= math.ceil(sum(counts) / self.workers) + 1:
            return False
        self.leaving += 1
        self._write()
        return True

    def left(self) -> None:
        self.leaving -= 1
        self._write()

    def _write(self) -> None:
        if self.number < MOST_WORKERS:
            self._view[self.number] = max(0, self._open - self.leaving)

    def close(self) -> None:
        self._open = self.leaving = 0
        self._write()
        self._view.release()
        self._counts.close()


_installed: ConnectionShares | None = None


def install(shared: ConnectionShares | None) -> None:
    """Makes `shared` what this process's connections count into (None: no longer)."""
    global _installed
    _installed = shared


def shares() -> ConnectionShares | None:
    """This process's entry, when it is one of several workers."""
    return _installed
