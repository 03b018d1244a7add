"""A client's server settings when the proxy holds the server connections: what each pooled
connection must have while it serves that client.

A pool's connections log in with the pool's own startup parameters (user, database,
application_name ``dbsight-proxy``), whoever asks: one pool per database and user. What a
client's startup asks for — TimeZone, DateStyle, client_encoding, application_name,
extra_float_digits, search_path, the ``-c name=value`` of ``options``... — is its wanted
settings (`wanted_settings`). Before a unit of the client runs on a connection whose settings
differ, one Query brings them in line (`prelude`: ``RESET`` what the connection has and the
client does not, ``SET`` the rest, each value meaning what it means as a startup parameter);
its answers are the proxy's, never the client's. This is PgBouncer's
``track_extra_parameters``, for every parameter. A reset (RESET ALL, DISCARD ALL) brings a
connection back to the pool's own settings.

Changes a client makes with SET are kept from one transaction to the next for the parameters
the server reports (ParameterStatus) and a client may set: TimeZone, DateStyle, IntervalStyle,
client_encoding, standard_conforming_strings, application_name (and search_path, which
PostgreSQL 18 reports): the client saw the new value, so its next units get it wherever they
run (`CARRIED`). Any other SET outside a transaction block lasts, in transaction mode, to the
end of its transaction; `ClientSettings.statement` tells such a statement, so the client can be
told once (`SETTINGS_NOTICE`).

RESET, RESET ALL, DISCARD ALL and ``SET ... TO DEFAULT`` bring a setting back to its value
at connection start, which for the client is its startup value and for the pooled connection
the pool's: the client's settings go back to its startup values, the connection is known to
have lost what the proxy set, and a ParameterStatus the server reports for such a reset (the
pool's value) is followed by one with the client's own value, before the ReadyForQuery, so
the client's view stays its startup's (`ClientSettings`). Until the unit ends the server
session has the pool's value, as PgBouncer's would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from . import protocol as p
from ._backend import BackendConnection
from ._client_fields import SettingsFields
from ._session_state import literal
from ._setting_statements import maybe_sets, setting_statements

# Reported parameters a client may SET, carried from one server connection to the next.
CARRIED = frozenset((
    "application_name", "client_encoding", "datestyle", "intervalstyle", "timezone",
    "standard_conforming_strings", "search_path",
))
_NOT_SETTINGS = frozenset(("user", "database"))

# (field codes: S/V severity, C SQLSTATE, M message, D detail, H hint)
SETTINGS_NOTICE = p.encode(p.NoticeResponse({
    "S": "WARNING",
    "V": "WARNING",
    "C": "01000",
    "M": (
        "dbsight proxy: in transaction pooling, session settings last only until the end of"
        " the transaction"
    ),
    "D": (
        "Each transaction may run on another server connection, and a connection is reset"
        " before another client gets it: a SET without LOCAL, or set_config(..., false),"
        " outside a transaction block is gone at the next transaction. Kept for the session:"
        " the connection's startup parameters, and TimeZone, DateStyle, IntervalStyle,"
        " client_encoding, standard_conforming_strings and application_name."
    ),
    "H": (
        "Use SET LOCAL inside a transaction, pass the setting at connect time"
        " (options=-c name=value), or use pool_mode = session. Said once per session."
    ),
}))


class StartupSettingsError(Exception):
    """A startup parameter the proxy cannot give the client on pooled connections."""

    def __init__(self, message: str, sqlstate: str = "08P01") -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate


def wanted_settings(parameters: Mapping[str, str]) -> dict[str, str]:
    """The settings a client's startup parameters ask for: lower-case name -> value, with
    ``options``' ``-c name=value`` / ``--name=value`` expanded (a parameter of its own wins
    over ``options``, as in PostgreSQL), and ``application_name`` always (empty when not
    given, as the client's own session would show it). Raises `StartupSettingsError`."""
    from_options: dict[str, str] = {}
    settings: dict[str, str] = {}
    for name, value in parameters.items():
        key = name.lower()
        if key in _NOT_SETTINGS or key.startswith("_pq_."):  # protocol options: not settings
            continue
        if key == "options":
            from_options = options_settings(value)
        elif key == "replication":
            raise StartupSettingsError(
                "dbsight proxy: replication connections cannot use the proxy's server"
                " connections; connect to the server directly",
                "0A000",
            )
        else:
            settings[key] = value
    settings = {**from_options, **settings}
    settings.setdefault("application_name", "")
    for name in _NAME_LISTS & settings.keys():
        if name_list(settings[name]) is None:
            raise StartupSettingsError(f'invalid list syntax in parameter "{name}"', "22023")
    return settings


def options_settings(options: str) -> dict[str, str]:
    """The settings in a startup ``options`` string (``-c name=value``, ``-cname=value``,
    ``--name=value``; backslash escapes a space); anything else is refused, as the server
    connections are shared."""
    words = _split_options(options)
    settings: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "-c":
            if i == len(words):
                raise StartupSettingsError("dbsight proxy: -c in options needs name=value")
            pair = words[i]
            i += 1
        elif word.startswith(("-c", "--")):  # -cname=value, --name=value
            pair = word[2:]
        else:
            raise StartupSettingsError(
                f"dbsight proxy: unsupported startup option {word!r}: only -c name=value"
                " settings can be given to pooled server connections",
                "0A000",
            )
        name, equals, value = pair.partition("=")
        if not equals or not name:
            given = f"-c {pair}" if word == "-c" else word
            raise StartupSettingsError(f"dbsight proxy: option {given} needs name=value")
        settings[name.replace("-", "_").lower()] = value
    return settings


def _split_options(options: str) -> list[str]:
    """``options`` split at whitespace, as PostgreSQL does (``\\`` escapes the next
    character)."""
    words: list[str] = []
    current: list[str] = []
    escaped = False
    for char in options:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


def prelude(have: Mapping[str, str], want: Mapping[str, str]) -> list[str]:
    """The statements (one Query each) that bring a server connection whose settings are
    ``have`` to ``want`` (none when they agree); the proxy swallows their answers. Text that
    is not ASCII is read as UTF-8 whatever client_encoding the connection has: a first Query
    says so, and client_encoding is then set (or reset) again."""
    resets = [name for name in have if name not in want]
    sets = [(name, value) for name, value in want.items() if have.get(name) != value]
    if not resets and not sets:
        return []
    text = _settings_query(resets, sets)
    if text.isascii():
        return [text]
    if "client_encoding" in want:
        sets = [item for item in sets if item[0] != "client_encoding"]
        sets.append(("client_encoding", want["client_encoding"]))
    elif "client_encoding" not in resets:
        resets.append("client_encoding")
    return ["SET client_encoding TO 'UTF8'", _settings_query(resets, sets)]


def _settings_query(resets: list[str], sets: list[tuple[str, str]]) -> str:
    # SET, not set_config(): a Query whose answer has no DataRow (the relay forwards rows
    # without looking at them)
    statements = [f"RESET {_identifier(name)}" for name in resets]
    statements.extend(
        f"SET {_identifier(name)} TO {_value(name, value)}" for name, value in sets
    )
    return "; ".join(statements)


def _identifier(name: str) -> str:
    """A setting's name in SQL: each dotted part quoted (``"app"."tenant"``)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def _value(name: str, value: str) -> str:
    """``value`` as SET's argument, meaning what it means as a startup parameter: a literal,
    or for a list of names (search_path) one literal per name, as SET quotes each."""
    if name in _NAME_LISTS:
        names = name_list(value)
        if names:
            return ", ".join(literal(item) for item in names)
    return literal(value)


# Settings whose value is a list of names, which SET quotes one by one (GUC_LIST_QUOTE).
_NAME_LISTS = frozenset((
    "search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries",
))


def name_list(value: str) -> list[str] | None:
    """The names in a list setting's text as PostgreSQL reads it (SplitIdentifierString:
    comma-separated, double quotes keep case and commas, other names are lower-cased); None
    when the text is not such a list."""
    names: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i].isspace():
            i += 1
        if i == n:
            return names if not names else None  # "" is the empty list; "a," is not a list
        if value[i] == '"':
            chars: list[str] = []
            i += 1
            while True:
                end = value.find('"', i)
                if end < 0:
                    return None
                chars.append(value[i:end])
                i = end + 1
                if i < n and value[i] == '"':  # a doubled quote
                    chars.append('"')
                    i += 1
                    continue
                break
            name = "".join(chars)
        else:
            start = i
            while i < n and value[i] != "," and not value[i].isspace():
                i += 1
            name = value[start:i].lower()
        if not name:
            return None
        names.append(name)
        while i < n and value[i].isspace():
            i += 1
        if i == n:
            return names
        if value[i] != ",":
            return None
        i += 1


class HasSettings(Protocol):
    """A server connection, as far as settings go (`BackendConnection`)."""

    settings: Mapping[str, str]


class ClientSettings(SettingsFields):
    """One client's settings over its session (see the module docstring).

    ``wanted`` (a `SettingsFields`'): what a primary connection must have for it (a new
    mapping each time it changes: a connection holding this very object has them all);
    ``on_replicas``: the same with what its session SET on its own connection (session mode,
    `session_changed`).
    """

    __slots__ = ("startup", "on_replicas", "session", "carried", "_told",
                 "_reset_all", "_resets", "_set_after", "warned")

    def __init__(self, startup: Mapping[str, str]) -> None:
        super().__init__(startup)
        self.startup: Mapping[str, str] = startup
        self.on_replicas: Mapping[str, str] = startup
        self.session: Mapping[str, str] = {}
        self.carried: frozenset[str] = frozenset()
        self._told: dict[str, str] = {}  # reported at login (the server's spelling), by key
        # what the client's statements in flight reset (answers report the pool's values)
        self._reset_all = False
        self._resets: set[str] = set()
        self._set_after: set[str] = set()  # ... and set again after a RESET ALL
        self.warned = False  # SETTINGS_NOTICE was sent

    def logged_in(self, parameters: Mapping[str, str]) -> None:
        """``parameters``: the ParameterStatus values the client got at login."""
        self._told = {name.lower(): value for name, value in parameters.items()}
        self.carried = CARRIED & self._told.keys()

    def answer_settings(self) -> dict[str, str]:
        """The settings that shape an answer's bytes (a result cache key's), not its name."""
        return {k: v for k, v in self.on_replicas.items() if k != "application_name"}

    def session_changed(self, settings: Mapping[str, str]) -> None:
        """What the client's session SET on its own connection (session mode), as read from
        the server (lower-case names): replica connections get it too."""
        self.session = dict(settings)
        self._merge()

    def _merge(self) -> None:
        self.on_replicas = {**self.wanted, **self.session} if self.session else self.wanted

    def _want(self, key: str, value: str | None) -> None:
        wanted = dict(self.wanted)
        if value is None:
            wanted.pop(key, None)
        else:
            wanted[key] = value
        self.wanted = wanted
        self._merge()

    # -- its server connections and statements --------------------------------------------
    def give(self, conn: HasSettings, primary: bool) -> list[bytes]:
        """The Query messages that give ``conn`` (a primary's, or a replica's) the client's
        settings ahead of its unit, none when it has them; ``conn.settings`` then says it
        has them (the proxy drops the answers)."""
        want = self.wanted if primary else self.on_replicas
        if conn.settings is want:
            return []
        queries = prelude(conn.settings, want)
        conn.settings = want
        return [p.encode(p.Query(sql)) for sql in queries]

    def statement(self, conn: HasSettings, sql: str, in_block: bool, warn: bool) -> bytes:
        """A statement the client sends on ``conn`` (``in_block``: inside its transaction
        block); returns `SETTINGS_NOTICE` (once, and when ``warn``: transaction mode) if it
        sets what transaction pooling loses — a SET without LOCAL (or SET SESSION
        CHARACTERISTICS, or set_config(..., false)) of a parameter not carried, outside a
        transaction block (a BEGIN earlier in the same text counts). What a RESET in it takes
        back is no longer on ``conn``."""
        if not maybe_sets(sql):
            return b""
        have = conn.settings
        lost = False
        for kind, name, local in setting_statements(sql):
            if kind == "begin":
                in_block = True
            elif kind == "end":  # the transaction's RESETs may be undone: judged afresh
                in_block = False
                self.cycle_ended()
            elif kind == "set":
                lost = lost or (not in_block and not local and name not in self.carried)
                self._resets.discard(name)
                if self._reset_all:
                    self._set_after.add(name)
            elif name == "*":  # RESET ALL, DISCARD ALL
                self._reset_all = True
                self._resets.clear()
                self._set_after.clear()
                if self.wanted != self.startup:
                    self.wanted = self.startup
                    self._merge()
                have = _NOTHING
            else:  # RESET name, SET name TO DEFAULT
                self._resets.add(name)
                self._set_after.discard(name)
                if self.wanted.get(name) != self.startup.get(name):
                    self._want(name, self.startup.get(name))
                if name in have:
                    have = {k: v for k, v in have.items() if k != name}
        conn.settings = have
        if lost and warn and not self.warned:
            self.warned = True
            return SETTINGS_NOTICE
        return b""

    def cycle_ended(self) -> None:
        """The client's requests so far are answered (its transaction ended)."""
        if not (self._reset_all or self._resets):
            return
        self._reset_all = False
        self._resets.clear()
        self._set_after.clear()

    def parameter(self, conn: HasSettings | None, name: str, value: str) -> bytes:
        """The server reports ``name`` = ``value`` to the client (ParameterStatus), from
        ``conn``: a carried parameter's value is the client's from now on (and ``conn``'s),
        unless a RESET of the client's reported the pool's value: then the ParameterStatus to
        send after it (the client's own)."""
        key = name.lower()
        if key not in self.carried:
            return b""
        if key in self._resets or (self._reset_all and key not in self._set_after):
            told = self._told.get(key)
            return p.parameter_status(name, told) if told is not None and told != value else b""
        before = self.wanted
        if before.get(key) != value:
            self._want(key, value)
            if conn is not None and conn.settings is before:  # it has the new value too
                conn.settings = self.wanted
        return b""


_NOTHING: Mapping[str, str] = {}


async def learn_parameters(conn: BackendConnection, settings: Mapping[str, str]) -> dict[str, str]:
    """Give ``conn`` ``settings`` and read the values the server reports (ParameterStatus)
    for a session that has them: what a client with these settings is told at login."""
    for sql in prelude(conn.settings, settings):
        await conn.execute(sql)
    conn.settings = settings
    names = sorted(conn.parameters)  # those the server reports, from its login
    if not names:
        return {}
    results = await conn.execute(
        "SELECT " + ", ".join(f"current_setting({literal(name)})" for name in names)
    )
    return dict(zip(names, (value or "" for value in results[-1].rows[0])))
