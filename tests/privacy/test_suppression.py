"""k-threshold and complementary suppression of breakdown cells, within one release."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.privacy.suppression import Cell
from gateway.privacy.suppression import suppress


def served(buckets: list[Cell], k: int, pool_key: str | None = None, remainder: bool = False) -> list[tuple[object, int | None]]:
    return [(cell.key, cell.count) for cell in suppress(buckets, k, pool_key=pool_key, remainder=remainder)]


def test_cells_below_k_distinct_actors_are_suppressed_and_empty_ones_too() -> None:
    buckets = [Cell("whatsapp", 40, 30), Cell("x", 9, 4), Cell("email", 0, 0), Cell("sms", 7, 6), Cell("other", 3, 2)]
    # x, email and other are below k; sms, the smallest visible cell, goes with them, so the total
    # less whatsapp is the shares of at least k people, wherever they went.
    assert served(buckets, 5) == [("whatsapp", 40), ("x", None), ("email", None), ("sms", None), ("other", None)]


def test_whether_a_complement_is_taken_does_not_depend_on_the_small_cells() -> None:
    empty = [Cell("whatsapp", 40, 30), Cell("sms", 7, 6), Cell("x", 0, 0)]
    small = [Cell("whatsapp", 40, 30), Cell("sms", 7, 6), Cell("x", 1, 1)]
    assert served(empty, 5) == served(small, 5) == [("whatsapp", 40), ("sms", None), ("x", None)]


def test_the_count_does_not_decide_only_distinct_actors_do() -> None:
    # One account sharing 12 times is still one actor.
    assert served([Cell("a", 12, 1), Cell("b", 10, 10), Cell("c", 1, 1), Cell("d", 6, 6)], 5) == [
        ("a", None), ("b", 10), ("c", None), ("d", None)
    ]


def test_one_suppressed_cell_takes_the_next_smallest_with_it() -> None:
    buckets = [Cell("whatsapp", 40, 30), Cell("x", 5, 5), Cell("email", 7, 6), Cell("sms", 6, 6), Cell("dm", 4, 1)]
    # total 62 is public: alone, dm would be 62 - 40 - 5 - 7 - 6. x, the smallest, goes with it.
    assert served(buckets, 5) == [("whatsapp", 40), ("x", None), ("email", 7), ("sms", 6), ("dm", None)]


def test_ties_for_next_smallest_are_broken_by_actors_then_key() -> None:
    buckets = [Cell("a", 1, 1), Cell("c", 6, 6), Cell("b", 6, 5), Cell("d", 6, 5)]
    assert served(buckets, 5) == [("a", None), ("c", 6), ("b", None), ("d", 6)]


def test_nothing_to_hide_hides_nothing() -> None:
    buckets = [Cell("a", 10, 10), Cell("b", 5, 5)]
    assert served(buckets, 5) == [("a", 10), ("b", 5)]


def test_a_lone_cell_below_k_has_no_partner() -> None:
    assert served([Cell("a", 2, 2)], 5) == [("a", None)]


def test_pooled_cells_hide_their_keys_and_take_the_smallest_visible_with_them() -> None:
    buckets = [Cell("DE", 50, 50), Cell("IS", 1, 1), Cell("FR", 9, 9), Cell("US", 30, 30)]
    assert served(buckets, 5, pool_key="OTHER") == [("DE", 50), ("US", 30), ("OTHER", None)]


def test_the_pool_takes_the_smallest_visible_cell_even_when_nothing_is_below_k() -> None:
    # Otherwise a listed FR would say "no region below k", and a pooled one "some region below k".
    assert served([Cell("DE", 50, 50), Cell("FR", 9, 9)], 5, pool_key="OTHER") == [("DE", 50), ("OTHER", None)]


def test_without_a_threshold_the_pool_is_empty() -> None:
    assert served([Cell("DE", 50, 50), Cell("FR", 9, 9)], 0, pool_key="OTHER") == [("DE", 50), ("FR", 9), ("OTHER", None)]


def test_a_remainder_outside_every_cell_takes_the_smallest_visible_cell_with_it() -> None:
    # A share total that counts anonymous shares in no channel: with every channel visible, the total
    # less the channels would be the anonymous shares, however few; the smallest channel joins them.
    buckets = [Cell("whatsapp", 40, 30), Cell("sms", 7, 6), Cell("x", 9, 8)]
    assert served(buckets, 5, remainder=True) == [("whatsapp", 40), ("sms", None), ("x", 9)]


def test_the_remainder_is_suppressed_as_one_cell_whether_or_not_anyone_is_in_it() -> None:
    # It takes no second cell beside the ones below k: it is one more hidden cell among them.
    buckets = [Cell("whatsapp", 40, 30), Cell("sms", 7, 6), Cell("x", 2, 2)]
    assert served(buckets, 5, remainder=True) == served(buckets, 5) == [("whatsapp", 40), ("sms", None), ("x", None)]


def test_without_a_threshold_the_remainder_hides_nothing() -> None:
    assert served([Cell("whatsapp", 40, 30), Cell("sms", 7, 6)], 0, remainder=True) == [("whatsapp", 40), ("sms", 7)]


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), min_size=1, max_size=12), st.integers(1, 10))
def test_no_suppressed_cell_can_be_recomputed_from_the_total(cells: list[tuple[int, int]], k: int) -> None:
    buckets = [Cell(f"key-{index}", max(count, actors), actors) for index, (count, actors) in enumerate(cells)]
    result = suppress(buckets, k)
    hidden = [cell for cell in result if cell.count is None]
    # Every cell below k is hidden.
    assert all(cell.count is None for cell in result if cell.actors < k)
    # Total minus the visible cells is never one hidden cell, nor the activity of 1 to k-1 people,
    # unless nothing is visible at all (then it is the total, which is served anyway).
    if len(hidden) < len(result):
        assert len(hidden) != 1
        assert not 0 < sum(cell.actors for cell in hidden) < k
