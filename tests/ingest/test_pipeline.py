"""Which lines of a file are stored while its batches commit in any order."""

from __future__ import annotations

import pytest

from gateway.ingest.pipeline import StoredLines, chunked


@pytest.mark.parametrize(
    ("batches", "through"),
    [
        pytest.param([], 0, id="none"),
        pytest.param([(1, 10)], 10, id="first"),
        pytest.param([(11, 20)], 0, id="second-alone"),
        pytest.param([(11, 20), (1, 10)], 20, id="second-then-first"),
        pytest.param([(1, 10), (21, 30)], 10, id="gap"),
        pytest.param([(21, 30), (11, 20), (1, 10)], 30, id="reversed"),
    ],
)
def test_stored_lines_run_from_the_first_line_to_the_first_gap(batches: list[tuple[int, int]], through: int) -> None:
    stored = StoredLines(first=1)

    for first, last in batches:
        stored.add(first, last)

    assert stored.through == through


def test_stored_lines_of_a_file_read_from_a_later_line() -> None:
    stored = StoredLines(first=501)
    assert stored.through == 500

    stored.add(501, 510)

    assert stored.through == 510


def test_chunks_carry_their_first_line_blank_lines_included() -> None:
    assert list(chunked(["a", "", "b", "c", ""], 2)) == [(1, ["a", ""]), (3, ["b", "c"]), (5, [""])]
