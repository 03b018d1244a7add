"""`StatementEffects`: what a pooled client's statement on its way to the server changes in
what the proxy keeps of the client's session.

- In session mode with replicas or a result cache, the custom settings it may set
  (`_session_state.custom_settings`): the proxy reads them back after the unit (`Lease`).
- The client's settings (`ClientSettings.statement`): in transaction mode, the first SET
  that will not outlive its transaction gets the client a warning, before the ReadyForQuery.
- ``DEALLOCATE ALL`` or ``DISCARD ALL`` (`clears_statements`): every statement of the
  connection goes (`ServerStatements.cleared`).

The session calls `StatementEffects.sent` for each Query and Execute it relays (each Parse
too while custom settings are watched). No sockets here.
"""

from __future__ import annotations

from typing import Protocol

from .. import _hot
from ..sql import _shapes
from ._backend import BackendConnection
from ._client_settings import ClientSettings
from ._exchange import Exchange
from ._session_state import custom_settings
from ._setting_statements import maybe_sets, maybe_sets_in, setting_statements
from ._statement_names import ServerStatements, clears_statements
from ._units import EXECUTE, PARSE, cstring

_IDLE = ord("I")

_EXECUTE, _PARSE = EXECUTE, PARSE  # (C integers when compiled: compared with no object)


class HeldSession(Protocol):
    """What the proxy keeps of the client's server session (`Lease`)."""

    custom: set[str]  # the custom settings its statements may have set
    begun: bool  # a BEGIN the proxy answered ahead went to the server


class StatementEffects:
    """One logged-in client's statements as they change its session (see the module
    docstring); ``watch_custom``: session mode reads custom settings back; ``sticky``:
    session mode (no warning for a SET, which outlives the transaction there)."""

    __slots__ = ("held", "server_statements", "settings", "settings_said", "sticky", "watch_custom")

    def __init__(
        self, settings: ClientSettings, held: HeldSession, server_statements: ServerStatements,
        *, watch_custom: bool, sticky: bool,
    ) -> None:
        self.settings = settings
        self.held = held
        self.server_statements = server_statements
        self.watch_custom = watch_custom
        self.sticky = sticky
        # a statement went to ``settings.statement`` since `settings_read` last said so: only
        # then may the client's settings hold a RESET for the cycle's end to forget
        self.settings_said = False

    def settings_read(self) -> bool:
        """Whether a statement went to ``settings.statement`` since the last time this was
        asked (the relay's cycle end then has the settings forget what it reset)."""
        said = self.settings_said
        self.settings_said = False
        return said

    def sent(
        self, conn: BackendConnection | None, exchange: Exchange, t: int, buf: bytes,
        start: int, end: int,
    ) -> None:
        """The Query, Execute or Parse at ``buf[start:end]`` goes to ``conn``."""
        assert conn is not None  # (past the session's `_gate`)
        if self.watch_custom and t != _EXECUTE:
            self.held.custom.update(custom_settings(buf, start + 5, end))
            if t == _PARSE:
                return
        sql: str | None = None  # (the text, when it may set something)
        flags = 0
        if t == _EXECUTE:
            # (the unnamed portal, most clients' only one, without a call)
            portal = (
                "" if start + 5 < end and buf[start + 5] == 0 else cstring(buf, start + 5, end)[0]
            )
            sql = exchange.portals.get(portal)
            if sql is None:
                return
            flags = text_flags(sql)
            if not flags:  # (most statements: nothing to read)
                return
        else:
            # the text and its key, read once: the exchange looks its shape up by them too
            global _last_text, _last_flags
            text = exchange.query_text = _hot.sliced(buf, start + 5, end - 1)
            if _last_text is not None and _hot.same_shape(text, _last_text):
                # the key of the text before: its flags, and no key made, hashed, looked up
                flags = _last_flags
                exchange.query_key = None
            else:
                key = exchange.query_key = _shapes.zeroed(text)
                flags = query_flags(buf, start + 5, end, key)
                _last_text = text
                _last_flags = flags
            if flags & _COMMENT:
                exchange.query_comment = True
                flags &= ~_COMMENT
            else:
                exchange.query_comment = False
            if not flags:  # (most statements: nothing to read)
                return
            if flags & _SETS:
                sql = text.decode("utf-8", "replace")
        if sql is not None and flags & _SETS:
            in_block = exchange.status != _IDLE or self.held.begun
            self.settings_said = True
            said = self.settings.statement(conn, sql, in_block, not self.sticky)
            if said:
                exchange.before_ready += said
        elif flags & _TRANSACTION:  # BEGIN, COMMIT: what `settings.statement` would do
            self.settings_said = True
            settings = self.settings
            if flags & _ENDS and (settings._reset_all or settings._resets):
                settings.cycle_ended()  # (its own test, inline: no Python call mostly)
        if flags & _CLEARS:
            self.server_statements.cleared(conn, exchange)


# _SETS: the text may set what the client's settings keep (`ClientSettings.statement` reads
# it); _TRANSACTION: it is transaction control and nothing else (no set, reset or
# set_config), _ENDS: one of its statements ends a transaction (COMMIT, ROLLBACK, END);
# _COMMENT: it has a /* comment (the exchange then reads a sqlcommenter comment: `_open`)
_SETS, _CLEARS, _TRANSACTION, _ENDS, _COMMENT = 1, 2, 4, 8, 16
_CONTROL = frozenset(("begin", "end"))
_FLAGS_MAX = 4096
_flags: dict[bytes, int] = {}
_text_flags: dict[str, int] = {}
# The Query text whose flags were looked up last, and those flags: the next text that
# differs from it in its digits alone has the same key, so the same flags (`sent`)
_last_text: bytes | None = None
_last_flags = 0


def text_flags(sql: str) -> int:
    """What an Execute's text (a prepared statement's: the same text object each time it
    runs) may do to the session: ``_SETS``, or ``_TRANSACTION`` and ``_ENDS`` (as a Query's,
    `query_flags`), remembered by the text."""
    flags = _text_flags.get(sql)
    if flags is None:
        flags = settings_flags(sql) if maybe_sets(sql) else 0
        if len(_text_flags) >= _FLAGS_MAX:
            _text_flags.clear()
        _text_flags[sql] = flags
    return flags


def settings_flags(sql: str) -> int:
    """``_SETS`` when `setting_statements` finds more than transaction control in ``sql``,
    ``_TRANSACTION`` (and ``_ENDS`` when one of them ends a transaction) when it finds that
    alone, 0 when it finds nothing (a comment, a word in a literal)."""
    kinds = {kind for kind, _, _ in setting_statements(sql)}
    if not kinds:
        return 0
    if kinds <= _CONTROL:
        return _TRANSACTION | (_ENDS if "end" in kinds else 0)
    return _SETS


def query_flags(buf: bytes, start: int, end: int, key: bytes | None = None) -> int:
    """What the Query text at ``buf[start:end]`` (NUL included) may do to the session:
    ``_SETS`` (`maybe_sets_in`, and `setting_statements` finds more than transaction
    control), ``_TRANSACTION`` and ``_ENDS`` (it finds transaction control only: BEGIN and
    COMMIT, each statement of a client's explicit transactions, skip the settings' reading),
    ``_CLEARS`` (`clears_statements`). Remembered by the text with its digits zeroed
    (``key``, when the caller has made it), which change none of these (a client inlining its
    values sends a new text for nearly every statement)."""
    if key is None:
        key = _shapes.zeroed(buf[start : end - 1])
    flags = _flags.get(key)
    if flags is None:
        flags = _CLEARS if clears_statements(buf, start, end) else 0
        if _hot.commented(buf, start, end - 1):  # (as in the text: digits are not / or *)
            flags |= _COMMENT
        if maybe_sets_in(buf, start, end - 1):
            flags |= settings_flags(buf[start : end - 1].decode("utf-8", "replace"))
        if len(_flags) >= _FLAGS_MAX:
            _flags.clear()
        _flags[key] = flags
    return flags
