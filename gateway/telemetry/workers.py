"""Every serving process's metrics, from whichever of them answers the scrape.

With `gateway serve --workers N`, a scrape of /metrics reaches one worker. Each worker holds a
numbered slot in a directory its supervisor made: a lock on `slot-<n>.lock`, which the kernel lets
go when the process ends however it ends, so the worker started in its place takes the same number.
Every PUBLISH_SECONDS it writes what its registry says to `slot-<n>.prom`. The worker that answers a
scrape serves its own figures as they are at that moment and the others' as they last wrote them,
each sample labelled `worker="<n>"`: Prometheus sums them (`sum without (worker)`), and a worker
started again shows as a counter reset of its series, which `rate()` allows for. A slot whose lock
nobody holds belongs to a worker that ended, and its figures are left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = ["PUBLISH_SECONDS", "WorkerSlot", "all_workers_registry"]

log = logging.getLogger(__name__)

# How stale another worker's figures in a scrape may be.
PUBLISH_SECONDS = 1.0
WORKER_LABEL = "worker"


class WorkerSlot:
    """This process's numbered place among its supervisor's workers, in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        for number in itertools.count():
            descriptor = os.open(self._lock_path(number), os.O_RDWR | os.O_CREAT, 0o600)
            if _lock_soon(descriptor):
                self.number, self._lock = number, descriptor
                return
            os.close(descriptor)  # a running worker's

    def _lock_path(self, number: int) -> Path:
        return self.directory / f"slot-{number}.lock"

    def _figures_path(self, number: int) -> Path:
        return self.directory / f"slot-{number}.prom"

    def publish(self, registry: CollectorRegistry) -> None:
        path = self._figures_path(self.number)
        written = path.with_suffix(".tmp")
        written.write_bytes(generate_latest(registry))
        os.replace(written, path)  # a reader sees the last figures whole, or these whole
        os.utime(self._lock)  # a file cleaner that goes by age (systemd-tmpfiles) leaves it be

    async def keep_publishing(self, registry: CollectorRegistry, every: float = PUBLISH_SECONDS) -> None:
        failing = False
        while True:
            try:
                self.publish(registry)
            except OSError as exc:  # a full disk, the directory gone: the others see older figures
                if not failing:
                    log.warning("worker %d cannot publish its metrics to %s: %s", self.number, self.directory, exc)
                failing = True
            else:
                failing = False
            await asyncio.sleep(every)

    def others(self) -> Iterator[tuple[int, str]]:
        """(number, figures) of every other worker that is running and has published."""
        for path in self.directory.glob("slot-*.prom"):
            number = int(path.stem.removeprefix("slot-"))
            if number == self.number or not self._taken(number):
                continue
            with contextlib.suppress(OSError):  # gone as it was read, or unreadable: left out, not a failed scrape
                yield number, path.read_text()

    def _taken(self, number: int) -> bool:
        try:
            descriptor = os.open(self._lock_path(number), os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)  # lets go of the shared lock, if it was had
        return False

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._figures_path(self.number).unlink()
        os.close(self._lock)


def _lock_soon(descriptor: int, tries: int = 5, pause: float = 0.01) -> bool:
    """Whether the slot could be had. A scrape holds a running worker's lock shared for a moment
    (`_taken`): a free slot it is looking at is tried again rather than passed over."""
    for attempt in range(tries):
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt < tries - 1:
                time.sleep(pause)
    return False


class AllWorkers(Collector):
    def __init__(self, own: CollectorRegistry, slot: WorkerSlot) -> None:
        self.own, self.slot = own, slot

    def describe(self) -> list[Metric]:
        return []  # names come from the workers' figures at each scrape

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        published = [(self.slot.number, generate_latest(self.own).decode()), *self.slot.others()]
        for number, text in sorted(published):
            label_samples(merged, number, text_string_to_metric_families(text))
        yield from merged.values()


def label_samples(merged: dict[str, Metric], number: int, families: Iterable[Metric]) -> None:
    for family in families:
        into = merged.get(family.name)
        if into is None:
            into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            into.add_sample(sample.name, {**sample.labels, WORKER_LABEL: str(number)}, sample.value, sample.timestamp, sample.exemplar)


def all_workers_registry(own: CollectorRegistry, slot: WorkerSlot) -> CollectorRegistry:
    """What /metrics serves in a supervised worker: every running worker's figures, labelled."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AllWorkers(own, slot))
    return registry
