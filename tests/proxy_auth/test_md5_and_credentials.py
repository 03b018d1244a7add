"""md5 hashing as PostgreSQL does it, and reading a credential's kind from its secret."""

from __future__ import annotations

import pytest

from dbsight.proxy.auth import (
    Credential,
    CredentialKind,
    is_md5_secret,
    md5_password,
    md5_salted,
    md5_secret,
    scram_secret,
)

# Computed with coreutils: echo -n penciluser | md5sum, then md5sum of that hex + \x01\x02\x03\x04.
PENCIL_USER_MD5 = "md520c46e3762c864548e296b33c3406aa9"
PENCIL_USER_SALTED = b"md54376eb6913b38f9aaff38dc7cf19ca76"
SALT = b"\x01\x02\x03\x04"


def test_md5_secret_and_response_match_known_values() -> None:
    assert md5_secret("user", "pencil") == PENCIL_USER_MD5
    assert md5_salted(PENCIL_USER_MD5, SALT) == PENCIL_USER_SALTED
    assert md5_password("user", "pencil", SALT) == PENCIL_USER_SALTED


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (PENCIL_USER_MD5, True),
        (PENCIL_USER_MD5.upper(), False),  # PostgreSQL writes lowercase hex only
        (PENCIL_USER_MD5[:-1], False),
        ("md5" + "g" * 32, False),
    ],
)
def test_md5_secret_shape(secret: str, expected: bool) -> None:
    assert is_md5_secret(secret) is expected


def test_md5_salted_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        md5_salted("plaintext", SALT)
    with pytest.raises(ValueError):
        md5_salted(PENCIL_USER_MD5, b"\x01")


def test_credential_kinds_and_password_checks() -> None:
    scram = Credential.from_secret("user", scram_secret("pencil", iterations=64))
    md5 = Credential.from_secret("user", PENCIL_USER_MD5)
    plain = Credential.from_secret("user", "pencil")
    assert (scram.kind, md5.kind, plain.kind) == (
        CredentialKind.SCRAM_SHA_256,
        CredentialKind.MD5,
        CredentialKind.PLAINTEXT,
    )
    for credential in (scram, md5, plain):
        assert credential.matches_password(b"pencil")
        assert not credential.matches_password(b"pencil!")
        assert "pencil" not in repr(credential) and "md520c" not in repr(credential)
    assert plain.md5_secret() == PENCIL_USER_MD5
    assert plain.scram_secret() is plain.scram_secret()  # derived once
    assert not md5.allows_scram
    with pytest.raises(ValueError):
        scram.md5_secret()


def test_broken_scram_secret_is_plaintext_unless_strict() -> None:
    broken = "SCRAM-SHA-256$4096:nope"
    assert Credential.from_secret("u", broken).kind is CredentialKind.PLAINTEXT
    with pytest.raises(ValueError):
        Credential.from_secret("u", broken, strict=True)
