"""PgBouncer's userlist.txt format: quoting, escapes, comments, and errors naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbsight.proxy.auth import CredentialKind, UsersFile, UsersFileError, scram_secret

SCRAM = scram_secret("pw", iterations=64)


def test_parses_entries_comments_and_escapes(tmp_path: Path) -> None:
    path = tmp_path / "userlist.txt"
    path.write_text(
        "; PgBouncer comment\n"
        "# also a comment\n"
        "\n"
        '"alice" "md5' + "0" * 32 + '"\n'
        f'  "bob"\t"{SCRAM}"   trailing fields are ignored\n'
        '"quo""te" "pa""ss word"\n'
        '"empty" ""\n'
    )
    users = UsersFile.load(path)
    assert len(users) == 4 and set(users) == {"alice", "bob", 'quo"te', "empty"}
    alice, bob, quote = users.lookup("alice"), users.lookup("bob"), users.lookup('quo"te')
    assert alice is not None and alice.kind is CredentialKind.MD5
    assert bob is not None and bob.kind is CredentialKind.SCRAM_SHA_256 and bob.secret == SCRAM
    assert quote is not None and quote.secret == 'pa"ss word'
    assert quote.kind is CredentialKind.PLAINTEXT
    assert users.lookup("nobody") is None
    assert "alice" in users and "nobody" not in users


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('"alice" "pw"\nalice pw\n', 2, "expected the user name in double quotes"),
        ('"alice" "pw"\n\n"bob" pw\n', 3, "expected the secret in double quotes"),
        ('"alice" "pw\n', 1, "secret has no closing double quote"),
        ('"alice\n', 1, "user name has no closing double quote"),
        ('"alice"\n', 1, "found end of line"),
        ('"alice""pw"\n', 1, "expected the secret"),  # "" is a quote inside the user name
        ('"alice" "pw"\n"alice" "other"\n', 2, "already listed on line 1"),
        ('"" "pw"\n', 1, "user name is empty"),
        ('"bob" "SCRAM-SHA-256$4096:broken"\n', 1, "SCRAM secret"),
    ],
)
def test_errors_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(UsersFileError) as info:
        UsersFile.parse(text, "users.txt")
    assert info.value.line == line
    assert str(info.value).startswith(f"users.txt:{line}: ")
    assert fragment in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsersFileError, match="cannot read users file"):
        UsersFile.load(tmp_path / "absent.txt")
