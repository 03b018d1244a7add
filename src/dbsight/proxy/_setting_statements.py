"""What a SQL text does to a session's settings, statement by statement, read with the
server's own parser (pglast): SET and RESET (``SET LOCAL`` told apart), ``set_config()``
calls, DISCARD ALL, and the transaction control around them. `ClientSettings` keeps a
client's settings with it; `maybe_sets` spares the parse for the texts that cannot matter.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

from pglast.parser import parse_sql_json

_BEGIN_KINDS = frozenset(("TRANS_STMT_BEGIN", "TRANS_STMT_START"))
_END_KINDS = frozenset(("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK", "TRANS_STMT_PREPARE"))


@functools.lru_cache(maxsize=4096)
def maybe_sets(sql: str) -> bool:
    """A cheap look (once per text) before a text is parsed: one of its statements starts
    with SET, RESET, DISCARD or transaction control, or it calls set_config."""
    return _MAYBE_SETS.search(sql) is not None


def maybe_sets_in(buf: bytes, start: int, end: int) -> bool:
    """`maybe_sets` for the text at ``buf[start:end]`` (a Query's), without decoding it."""
    return (
        _FIRST_WORD.match(buf, start, end) is not None
        or _LATER_WORD.search(buf, start, end) is not None
        or _SET_CONFIG.search(buf, start, end) is not None
    )


# What the server skips before a statement's first word: blanks, ``-- line`` comments and
# ``/* block */`` comments (matched atomically: none is given back to find a word inside it).
# A nested block comment is not skipped, and the word patterns take its ``/*`` as a maybe.
BLANKS = r"(?>(?:\s+|--[^\n]*(?:\n|\Z)|/\*(?:[^*/]|\*(?!/)|/(?!\*))*\*/)*)"
_WORDS = r"(?:set|reset|discard|begin|start|commit|end|rollback|abort|prepare)\b"
_MAYBE_SETS = re.compile(rf"(?i)(?:^|;){BLANKS}(?:{_WORDS}|/\*)|set_config")
_FIRST_WORD = re.compile(rf"(?i){BLANKS}(?:{_WORDS}|/\*)".encode())
# (two searches, each starting at a plain byte that re finds fast, rather than one through
# the case-folded alternation: this runs for every Query in transaction mode)
_LATER_WORD = re.compile(rf";{BLANKS}(?:(?i:{_WORDS})|/\*)".encode())
_SET_CONFIG = re.compile(rb"_(?i:config)(?<=(?i:set_config))")


@functools.lru_cache(maxsize=512)
def setting_statements(sql: str) -> tuple[tuple[str, str, bool], ...]:
    """What a text does to session settings, statement by statement: ("begin"|"end", "",
    False) for transaction control, ("set", name, local) for a setting (name "" when not a
    constant), ("reset", name, False) for a reset (name "*": RESET ALL, DISCARD ALL); empty
    when the text does not parse."""
    try:
        tree = json.loads(parse_sql_json(sql))
    except Exception:  # noqa: BLE001 (any parse failure: the server will say what is wrong)
        return ()
    found: list[tuple[str, str, bool]] = []
    for raw in tree.get("stmts") or ():
        stmt = raw.get("stmt") or {}
        for tag, body in stmt.items():
            if tag == "TransactionStmt":
                kind = body.get("kind")
                if kind in _BEGIN_KINDS:
                    found.append(("begin", "", False))
                elif kind in _END_KINDS:
                    found.append(("end", "", False))
            elif tag == "VariableSetStmt":
                setting = _variable_set(body)
                if setting is not None:
                    found.append(setting)
            elif tag == "DiscardStmt":
                if body.get("target") == "DISCARD_ALL":
                    found.append(("reset", "*", False))
            else:
                found.extend(_set_config_calls(body))
    return tuple(found)


def _variable_set(body: dict[str, Any]) -> tuple[str, str, bool] | None:
    kind = body.get("kind")
    name = str(body.get("name", "")).lower()
    if kind in ("VAR_SET_VALUE", "VAR_SET_CURRENT"):
        return ("set", name, bool(body.get("is_local")))
    if kind == "VAR_SET_MULTI" and name == "session characteristics":
        return ("set", name, False)
    if kind in ("VAR_RESET", "VAR_SET_DEFAULT"):
        return ("reset", name, False)
    if kind == "VAR_RESET_ALL":
        return ("reset", "*", False)
    return None  # SET TRANSACTION: this transaction's only


def _set_config_calls(tree: Any) -> Iterator[tuple[str, str, bool]]:
    """``set_config(name, value, is_local)`` calls anywhere in ``tree``; is_local counts as
    true unless it is the constant false."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))  # (in the text's order)
            continue
        if not isinstance(node, dict):
            continue
        call = node.get("FuncCall")
        if isinstance(call, dict):
            names = [part.get("String", {}).get("sval") for part in call.get("funcname", ())]
            args = call.get("args") or []
            qualified = names[:-1] in ([], ["pg_catalog"])
            if names[-1:] == ["set_config"] and qualified and len(args) == 3:
                yield ("set", _text(args[0]).lower(), not _false(args[2]))
        stack.extend(reversed(node.values()))


def _text(node: Any) -> str:
    """A string constant's value; "" for anything else (a parameter, an expression)."""
    const = node.get("A_Const") if isinstance(node, dict) else None
    if isinstance(const, dict) and isinstance(const.get("sval"), dict):
        return str(const["sval"].get("sval", ""))
    return ""


def _false(node: Any) -> bool:
    """Whether an argument is the constant false (``false``, ``'f'``, ``'off'``...)."""
    const = node.get("A_Const") if isinstance(node, dict) else None
    if not isinstance(const, dict):
        return False
    if isinstance(const.get("boolval"), dict):
        return not const["boolval"].get("boolval")
    return _text(node).lower() in ("f", "false", "off", "no", "n", "0")
