"""k-threshold and complementary suppression of breakdown cells, within one release."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy.metrics import CHANNELS, UNDISCLOSED
from gateway.privacy.suppression import Cell
from gateway.privacy.suppression import suppress


def served(buckets: list[Cell], k: int, pool_key: str | None = None) -> list[tuple[object, int | None]]:
    return [(cell.key, cell.count) for cell in suppress(buckets, k, pool_key=pool_key)]


def test_cells_below_k_distinct_actors_are_suppressed_and_empty_ones_too() -> None:
    buckets = [Cell("whatsapp", 40, 30), Cell("x", 9, 4), Cell("email", 0, 0), Cell("sms", 7, 6), Cell("other", 3, 2), Cell("copy_link", 25, 20)]
    # x, email and other are below k; sms, the smallest visible cell, goes with them, so the total
    # less what is served is the shares of at least k people, wherever they went; and copy_link, the
    # first visible by key, so that sms's size (between k and 25) says nothing of theirs.
    assert served(buckets, 5) == [("whatsapp", 40), ("x", None), ("email", None), ("sms", None), ("other", None), ("copy_link", None)]


def test_whether_the_complements_are_taken_does_not_depend_on_the_small_cells() -> None:
    empty = [Cell("whatsapp", 40, 30), Cell("sms", 7, 6), Cell("facebook", 12, 12), Cell("x", 0, 0)]
    small = [Cell("whatsapp", 40, 30), Cell("sms", 7, 6), Cell("facebook", 12, 12), Cell("x", 1, 1)]
    assert served(empty, 5) == served(small, 5) == [("whatsapp", 40), ("sms", None), ("facebook", None), ("x", None)]


def test_the_count_does_not_decide_only_distinct_actors_do() -> None:
    # One account sharing 12 times is still one actor.
    assert served([Cell("a", 12, 1), Cell("b", 10, 10), Cell("c", 1, 1), Cell("d", 6, 6), Cell("e", 30, 30)], 5) == [
        ("a", None), ("b", None), ("c", None), ("d", None), ("e", 30)
    ]


def test_one_suppressed_cell_takes_the_smallest_and_the_first_by_key_with_it() -> None:
    buckets = [Cell("whatsapp", 40, 30), Cell("x", 5, 5), Cell("email", 7, 6), Cell("sms", 6, 6), Cell("dm", 4, 1)]
    # The total 62 is public: alone, dm would be 62 - 40 - 5 - 7 - 6. With x, the smallest, hidden
    # too, x would be between 5 and 6 (the smallest served) and dm 62 - 40 - 7 - 6 - x, 3 or 4; email
    # goes as well, and x + email is anything from 10 up.
    assert served(buckets, 5) == [("whatsapp", 40), ("x", None), ("email", None), ("sms", 6), ("dm", None)]


def test_ties_for_the_smallest_are_broken_by_actors_then_key() -> None:
    buckets = [Cell("a", 1, 1), Cell("c", 6, 6), Cell("b", 6, 5), Cell("d", 6, 5), Cell("e", 9, 9)]
    assert served(buckets, 5) == [("a", None), ("c", None), ("b", None), ("d", 6), ("e", 9)]


def test_nothing_to_hide_hides_nothing() -> None:
    buckets = [Cell("a", 10, 10), Cell("b", 5, 5)]
    assert served(buckets, 5) == [("a", 10), ("b", 5)]


def test_a_lone_cell_below_k_has_no_partner() -> None:
    assert served([Cell("a", 2, 2)], 5) == [("a", None)]


def test_a_lone_visible_cell_is_the_only_complement() -> None:
    # Nothing served is left to bound it: the total less nothing is the total.
    assert served([Cell("a", 10, 10), Cell("b", 2, 2)], 5) == [("a", None), ("b", None)]


def test_pooled_cells_hide_their_keys_and_take_the_complements_with_them() -> None:
    buckets = [Cell("DE", 50, 50), Cell("IS", 1, 1), Cell("FR", 9, 9), Cell("US", 30, 30)]
    assert served(buckets, 5, pool_key="OTHER") == [("US", 30), ("OTHER", None)]


def test_the_pool_takes_the_complements_even_when_nothing_is_below_k() -> None:
    # Otherwise a listed FR would say "no region below k", and a pooled one "some region below k".
    buckets = [Cell("DE", 50, 50), Cell("FR", 9, 9), Cell("US", 30, 30)]
    assert served(buckets, 5, pool_key="OTHER") == [("US", 30), ("OTHER", None)]


def test_without_a_threshold_the_pool_is_empty() -> None:
    assert served([Cell("DE", 50, 50), Cell("FR", 9, 9)], 0, pool_key="OTHER") == [("DE", 50), ("FR", 9), ("OTHER", None)]


def test_k_in_every_channel_does_not_pin_the_anonymous_share_down() -> None:
    """The red team's F1: five sharers on each channel and one anonymous share. With the smallest
    channel alone hidden, it held between k and the smallest served (5 and 5), and the anonymous
    cell was 46 - 40 - 5 = 1. Now the world where that share went to direct_message is served alike."""
    one_anonymous = [*(Cell(channel, 5, 5) for channel in CHANNELS), Cell(UNDISCLOSED, 1, 1)]
    people = {channel: 6 if channel == "direct_message" else 5 for channel in CHANNELS}
    on_a_channel = [*(Cell(channel, count, count) for channel, count in people.items()), Cell(UNDISCLOSED, 0, 0)]
    assert served(one_anonymous, 5) == served(on_a_channel, 5)
    assert [key for key, count in served(one_anonymous, 5) if count is None] == ["copy_link", "direct_message", UNDISCLOSED]


cells = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), min_size=1, max_size=12)


def buckets_of(drawn: list[tuple[int, int]]) -> list[Cell]:
    return [Cell(f"key-{index:02d}", max(count, actors), actors) for index, (count, actors) in enumerate(drawn)]


@given(cells, st.integers(1, 10))
def test_no_suppressed_cell_can_be_recomputed_from_the_total(drawn: list[tuple[int, int]], k: int) -> None:
    buckets = buckets_of(drawn)
    result = suppress(buckets, k)
    hidden = [cell for cell in result if cell.count is None]
    # Every cell below k is hidden.
    assert all(cell.count is None for cell in result if cell.actors < k)
    # Total minus the visible cells is never one hidden cell, nor the activity of 1 to k-1 people,
    # unless nothing is visible at all (then it is the total, which is served anyway).
    if len(hidden) < len(result):
        assert len(hidden) != 1
        assert not 0 < sum(cell.actors for cell in hidden) < k


@given(cells, st.integers(1, 10), st.booleans())
def test_the_small_cells_could_always_have_been_empty(drawn: list[tuple[int, int]], k: int, pooled: bool) -> None:
    """Whatever the cells below k hold, some hidden cell of k or more could hold it instead and the
    same is served: nothing served bounds the small cells away from nobody, nor tells them apart
    from that cell."""
    buckets = buckets_of(drawn)
    pool_key = "OTHER" if pooled else None
    answer = served(buckets, k, pool_key)
    small = [index for index, bucket in enumerate(buckets) if bucket.actors < k]
    hidden_large = [index for index, bucket in enumerate(buckets) if bucket.actors >= k and (bucket.key, bucket.count) not in answer]
    if not small or not hidden_large:
        return  # nothing small, or no cell of k or more (then every cell is hidden anyway)
    moved_count, moved_actors = sum(buckets[index].count or 0 for index in small), sum(buckets[index].actors for index in small)

    def emptied_into(target: int) -> list[Cell]:
        return [
            Cell(bucket.key, 0, 0) if index in small
            else Cell(bucket.key, (bucket.count or 0) + moved_count, bucket.actors + moved_actors) if index == target
            else bucket
            for index, bucket in enumerate(buckets)
        ]

    assert any(served(emptied_into(target), k, pool_key) == answer for target in hidden_large)
