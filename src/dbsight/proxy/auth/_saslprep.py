"""SASLprep (RFC 4013) of a password, exactly as PostgreSQL's ``pg_saslprep`` applies it.

SCRAM hashes the prepared password, so a proxy that prepared it differently from PostgreSQL
would reject a non-ASCII password that the server itself accepts (and compute secrets that do
not match pg_authid). PostgreSQL's rules: pure ASCII is used as it is; a password that is not
valid UTF-8 or that contains a prohibited character is also used as it is (not rejected).
"""

from __future__ import annotations

import stringprep
import unicodedata

_PROHIBITED = (
    stringprep.in_table_c12,  # non-ASCII space characters
    stringprep.in_table_c21_c22,  # control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-character code points
    stringprep.in_table_c5,  # surrogate codes
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties or deprecated
    stringprep.in_table_c9,  # tagging characters
    stringprep.in_table_a1,  # unassigned code points (stored strings: prohibited)
)


def _prepare(text: str) -> str | None:
    """The SASLprep'd text, or None when the text is prohibited (PostgreSQL then uses it raw)."""
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    if not mapped:
        return None
    normalized = unicodedata.normalize("NFKC", mapped)
    if any(check(ch) for ch in normalized for check in _PROHIBITED):
        return None
    if any(stringprep.in_table_d1(ch) for ch in normalized):
        # Bidirectional text: no left-to-right characters, and it starts and ends RTL.
        if any(stringprep.in_table_d2(ch) for ch in normalized):
            return None
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            return None
    return normalized


def saslprep(password: str | bytes) -> bytes:
    """The bytes SCRAM hashes for ``password`` (what PostgreSQL computes from the same input)."""
    raw = (
        password.encode("utf-8", "surrogateescape")
        if isinstance(password, str)
        else bytes(password)
    )
    if raw.isascii():
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    prepared = _prepare(text)
    return raw if prepared is None else prepared.encode("utf-8")
