"""Statement kinds from leading keywords, for texts no parser describes.

Used for statements sqlglot keeps as raw text and for texts too large to
parse; never for deciding ``read_only``.
"""

from __future__ import annotations

import re
from typing import Final

from ._info import Operation, most_significant

KEYWORD_OPS: Final[dict[str, Operation]] = {
    "SELECT": "select", "WITH": "select", "VALUES": "select", "TABLE": "select",
    "INSERT": "insert", "REPLACE": "insert", "LOAD": "insert", "COPY": "insert",
    "UPDATE": "update", "MERGE": "update", "DELETE": "delete",
    "CREATE": "ddl", "ALTER": "ddl", "DROP": "ddl", "TRUNCATE": "ddl", "GRANT": "ddl",
    "REVOKE": "ddl", "RENAME": "ddl", "COMMENT": "ddl", "REINDEX": "ddl",
    "BEGIN": "tx", "START": "tx", "COMMIT": "tx", "END": "tx", "ROLLBACK": "tx",
    "SAVEPOINT": "tx", "RELEASE": "tx", "XA": "tx", "ABORT": "tx",
}  # fmt: skip

_FIRST_WORD: Final = re.compile(r"[(\s]*([A-Za-z_]+)")


def first_words(key: str) -> list[str]:
    """The first keyword (upper case) of each statement of a masked key."""
    words = []
    for chunk in key.split(";"):
        chunk = chunk.strip()
        if chunk:
            m = _FIRST_WORD.match(chunk)
            words.append(m.group(1).upper() if m else "")
    return words


def keyword_operation(key: str) -> Operation:
    """The most significant operation named by the statements' first keywords."""
    return most_significant([KEYWORD_OPS.get(w, "other") for w in first_words(key)])
