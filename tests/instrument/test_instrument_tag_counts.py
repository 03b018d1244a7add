"""The command tags' counts kept for the hot path (`TAG_COUNTS`): the same rows as
`tag_rows` works out, only tags with a count, and never more than its bound."""

from __future__ import annotations

from dbsight.instrument import _common
from dbsight.instrument._common import TAG_COUNTS, tag_rows


def test_a_known_tag_gives_the_count_tag_rows_gives() -> None:
    TAG_COUNTS.clear()
    cases = [
        (b"SELECT 5", 5, 5), (b"UPDATE 3", 0, 3), ("INSERT 0 1", 0, 1), (b"SELECT 0", 0, 0),
        (b"BEGIN", 0, None), (b"SHOW", 2, 2), (None, 1, 1), (None, 0, None), ("CREATE TABLE", 0, None),
    ]  # fmt: skip
    for status, returned, rows in cases:
        assert tag_rows(status, returned) == rows
    # only the tags that carry a count are kept: the others depend on the rows returned
    assert TAG_COUNTS == {b"SELECT 5": 5, b"UPDATE 3": 3, "INSERT 0 1": 1, b"SELECT 0": 0}
    for status, returned, rows in cases:
        known = TAG_COUNTS.get(status)
        assert (known if known is not None else tag_rows(status, returned)) == rows


def test_the_kept_tags_are_bounded() -> None:
    TAG_COUNTS.clear()
    for n in range(_common._MAX_TAG_COUNTS * 2 + 10):
        assert tag_rows(f"UPDATE {n}".encode(), 0) == n
        assert len(TAG_COUNTS) <= _common._MAX_TAG_COUNTS
    assert TAG_COUNTS.get(f"UPDATE {_common._MAX_TAG_COUNTS * 2 + 9}".encode()) == (
        _common._MAX_TAG_COUNTS * 2 + 9
    )
