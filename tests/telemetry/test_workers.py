"""A scrape of one worker answers for all of them (gateway.telemetry.workers); the real
supervisor is tests/test_workers.py's. Slots here are taken in one process: flock(2) locks of
separate opens conflict as those of separate processes do."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.workers import WorkerSlot, all_workers_registry


def worker_registry(requests: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("gateway_things", "Things done.", ["kind"], registry=registry)
    counter.labels("a").inc(requests)
    return registry


def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    families = list(text_string_to_metric_families(text))
    names = [family.name for family in families]
    assert len(names) == len(set(names)), f"a family told twice: {names}"
    return {(sample.name, sample.labels.get("worker", "")): sample.value for family in families for sample in family.samples
            if sample.name == "gateway_things_total"}


def test_slots_are_numbered_from_zero_and_a_freed_number_is_taken_again(tmp_path: Path) -> None:
    first, second = WorkerSlot(tmp_path), WorkerSlot(tmp_path)
    assert (first.number, second.number) == (0, 1)
    first.close()
    third = WorkerSlot(tmp_path)
    assert third.number == 0
    second.close()
    third.close()


def test_a_scrape_serves_its_own_figures_now_and_the_others_as_they_last_published(tmp_path: Path) -> None:
    mine, theirs = worker_registry(2), worker_registry(5)
    answering, other = WorkerSlot(tmp_path), WorkerSlot(tmp_path)
    other.publish(theirs)
    served = all_workers_registry(mine, answering)
    assert samples(served) == {("gateway_things_total", "0"): 2, ("gateway_things_total", "1"): 5}

    Counter("gateway_more", "More.", registry=mine).inc()  # a family only one worker has
    assert samples(served)[("gateway_things_total", "0")] == 2
    assert "gateway_more_total{worker=\"0\"} 1.0" in generate_latest(served).decode()

    theirs_counter = worker_registry(0)  # the other worker's figures move only when it publishes
    assert samples(served)[("gateway_things_total", "1")] == 5
    other.publish(theirs_counter)
    assert samples(served)[("gateway_things_total", "1")] == 0
    answering.close()
    other.close()


def test_a_worker_that_ended_drops_out_even_if_its_figures_are_left(tmp_path: Path) -> None:
    answering, ended = WorkerSlot(tmp_path), WorkerSlot(tmp_path)
    ended.publish(worker_registry(7))
    figures = (tmp_path / "slot-1.prom").read_bytes()
    ended.close()  # as the kernel lets go of a killed worker's lock (it would not remove its file)
    (tmp_path / "slot-1.prom").write_bytes(figures)
    assert samples(all_workers_registry(worker_registry(1), answering)) == {("gateway_things_total", "0"): 1}
    answering.close()
