"""Which worker sheds a connection (gateway.serving.balance), with workers' entries made in one
process: the real workers' spread is tests/test_workers.py's."""

from __future__ import annotations

from pathlib import Path

from gateway.serving.balance import STALE_SECONDS, ConnectionShares


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def workers(tmp_path: Path, clock: Clock, *numbers: int) -> list[ConnectionShares]:
    made = [ConnectionShares(tmp_path, number, clock) for number in numbers]
    for each in made:
        each.refresh()  # each finds the others
    return made


def test_a_worker_over_its_share_and_one_sheds_until_it_is_not(tmp_path: Path) -> None:
    clock = Clock()
    fuller, other = workers(tmp_path, clock, 0, 1)
    fuller.holds(20)
    other.holds(12)
    assert not other.one_should_leave()
    shed = 0
    while fuller.one_should_leave():
        shed += 1
    # Its share and one: ceil(32 / 2) + 1 = 17 (those leaving still count in the total: they will
    # connect again), so it sheds 3.
    assert shed == 3
    assert fuller.leaving == 3
    fuller.left()
    fuller.holds(19)  # one closed: it no longer counts as leaving, nor as held
    assert fuller.leaving == 2 and not fuller.one_should_leave()


def test_numbers_past_n_take_part_as_any_other(tmp_path: Path) -> None:
    """After SIGHUP, the workers may be numbered 2 and 0: 16 each is balanced, 28 and 4 is not."""
    clock = Clock()
    replaced, kept = workers(tmp_path, clock, 2, 0)
    replaced.holds(16)
    kept.holds(16)
    assert not replaced.one_should_leave() and not kept.one_should_leave()
    kept.holds(28)
    replaced.holds(4)
    assert kept.one_should_leave()
    assert not replaced.one_should_leave()


def test_a_worker_that_stopped_saying_it_runs_is_left_out(tmp_path: Path) -> None:
    clock = Clock()
    alone, gone = workers(tmp_path, clock, 0, 1)
    alone.holds(10)
    gone.holds(0)
    assert alone.one_should_leave()  # 10 > ceil(10 / 2) + 1
    alone.left()
    clock.now += STALE_SECONDS + 1
    alone.refresh()  # the other did not refresh: it died, or is wedged
    assert not alone.one_should_leave(), "alone, it closes nothing"


def test_a_worker_that_ended_leaves_no_count_behind(tmp_path: Path) -> None:
    clock = Clock()
    first, second = workers(tmp_path, clock, 0, 1)
    first.holds(30)
    first.close()
    second.holds(6)
    second.refresh()
    assert not second.one_should_leave(), "the closed worker's entry says it is not running"
    replacement = ConnectionShares(tmp_path, 0, clock)
    second.refresh()
    # The replacement starts from none (not the 30 of the worker it replaces): 6 against 0 sheds.
    assert second.one_should_leave()
    replacement.close()
    second.close()
