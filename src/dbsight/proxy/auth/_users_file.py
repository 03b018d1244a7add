"""PgBouncer's auth_file (userlist.txt): ``"user" "secret"`` per line.

Format, as PgBouncer reads it: each entry is two double-quoted fields separated by white
space; a ``"`` inside a field is written ``""``; anything after the second field is ignored;
blank lines are skipped, and so are lines starting with ``;`` (PgBouncer) or ``#``. The secret
is a SCRAM secret, an md5 hash or a plaintext password (see ``Credential.from_secret``).

Unlike PgBouncer, which stops reading at the first broken line and keeps what it has, a broken
line or a user listed twice is an error naming the file and the line: a silently shortened user
list is an outage that is hard to find.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from ._credential import Credential

_COMMENT_STARTS = (";", "#")


class UsersFileError(ValueError):
    """A users file that cannot be read; ``line`` is 1-based (0 for the whole file)."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


def _quoted_field(line: str, pos: int, what: str) -> tuple[str, int]:
    """Read a ``"..."`` field starting at ``pos``; returns its value and the position after it."""
    if pos >= len(line) or line[pos] != '"':
        found = repr(line[pos]) if pos < len(line) else "end of line"
        raise ValueError(f"expected the {what} in double quotes, found {found}")
    chars: list[str] = []
    pos += 1
    while True:
        end = line.find('"', pos)
        if end < 0:
            raise ValueError(f"the {what} has no closing double quote")
        chars.append(line[pos:end])
        if line.startswith('"', end + 1):  # "" is an escaped quote
            chars.append('"')
            pos = end + 2
            continue
        return "".join(chars), end + 1


def parse_line(line: str) -> tuple[str, str] | None:
    """``(user, secret)`` of one line, or None for a blank or comment line."""
    stripped = line.strip()
    if not stripped or stripped.startswith(_COMMENT_STARTS):
        return None
    pos = len(line) - len(line.lstrip())
    user, pos = _quoted_field(line, pos, "user name")
    if not user:
        raise ValueError("the user name is empty")
    after_user = pos
    while pos < len(line) and line[pos].isspace():
        pos += 1
    if pos == after_user and pos < len(line):
        raise ValueError("expected white space between the user name and the secret")
    secret, _ = _quoted_field(line, pos, "secret")
    return user, secret


class UsersFile:
    """The credentials of a users file, by user name."""

    def __init__(self, credentials: Mapping[str, Credential], source: str = "<users>") -> None:
        self._credentials = dict(credentials)
        self.source = source

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> UsersFile:
        """Read and parse ``path``; ``UsersFileError`` names the line of any mistake."""
        source = os.fspath(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsersFileError(source, 0, f"cannot read users file: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise UsersFileError(source, 0, f"users file is not valid UTF-8: {exc}") from exc
        return cls.parse(text, source)

    @classmethod
    def parse(cls, text: str, source: str = "<users>") -> UsersFile:
        credentials: dict[str, Credential] = {}
        first_seen: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                entry = parse_line(line)
                if entry is None:
                    continue
                user, secret = entry
                credential = Credential.from_secret(user, secret, strict=True)
            except ValueError as exc:
                raise UsersFileError(source, number, str(exc)) from None
            if user in first_seen:
                raise UsersFileError(
                    source, number, f"user {user!r} is already listed on line {first_seen[user]}"
                )
            first_seen[user] = number
            credentials[user] = credential
        return cls(credentials, source)

    def lookup(self, user: str) -> Credential | None:
        return self._credentials.get(user)

    def __contains__(self, user: object) -> bool:
        return user in self._credentials

    def __len__(self) -> int:
        return len(self._credentials)

    def __iter__(self) -> Iterator[str]:
        return iter(self._credentials)

    def __repr__(self) -> str:
        return f"<UsersFile {self.source} users={len(self._credentials)}>"
