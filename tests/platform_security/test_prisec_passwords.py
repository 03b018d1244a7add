"""Argon2 password hashing: verify, salting, rehash when the parameters change, corrupt
hashes."""

from __future__ import annotations

import pytest

from dbsight_platform.security import InvalidPasswordHash, PasswordHashing

# small costs keep the suite fast; the defaults are argon2-cffi's
FAST = {"time_cost": 1, "memory_cost_kib": 8 * 1024, "parallelism": 1}


def test_hash_and_verify() -> None:
    hashing = PasswordHashing(**FAST)
    stored = hashing.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert hashing.verify(stored, "correct horse")
    assert not hashing.verify(stored, "correct horsE")
    assert not hashing.verify(stored, "")
    assert hashing.hash("correct horse") != stored  # salted


def test_needs_rehash_and_verify_and_update() -> None:
    old = PasswordHashing(**FAST)
    stronger = PasswordHashing(**{**FAST, "time_cost": 2})
    stored = old.hash("s3cret!")
    assert not old.needs_rehash(stored)
    assert stronger.needs_rehash(stored)
    assert stronger.verify_and_update(stored, "wrong") == (False, None)
    ok, new_hash = stronger.verify_and_update(stored, "s3cret!")
    assert ok and new_hash is not None and not stronger.needs_rehash(new_hash)
    assert stronger.verify(new_hash, "s3cret!")
    assert stronger.verify_and_update(new_hash, "s3cret!") == (True, None)


def test_corrupt_hash_and_empty_password() -> None:
    hashing = PasswordHashing(**FAST)
    with pytest.raises(InvalidPasswordHash):
        hashing.verify("$2b$12$notanargon2hash", "x")
    with pytest.raises(InvalidPasswordHash):
        hashing.needs_rehash("plaintext")
    with pytest.raises(ValueError):
        hashing.hash("")
