"""Password hashing with Argon2id (argon2-cffi).

Hashes carry their parameters (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``), so raising
the cost later leaves old hashes verifiable; ``needs_rehash`` says when a stored hash was
made with other parameters, and ``verify_and_update`` hands back its replacement at the one
moment the plain password is known: a successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2 import exceptions as argon2_errors

# argon2-cffi's defaults (RFC 9106's low-memory profile): t=3, m=64 MiB, p=4
DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_COST_KIB = 65536
DEFAULT_PARALLELISM = 4


class InvalidPasswordHash(ValueError):
    """A stored hash that is not an Argon2 hash (corrupt or from another scheme): a data
    problem to fix, not a wrong password."""


class PasswordHashing:
    """Hash and verify passwords; one instance per parameter set, thread-safe."""

    def __init__(
        self,
        *,
        time_cost: int = DEFAULT_TIME_COST,
        memory_cost_kib: int = DEFAULT_MEMORY_COST_KIB,
        parallelism: int = DEFAULT_PARALLELISM,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
        )

    def hash(self, password: str) -> str:
        """A new salted hash of ``password`` (refused when empty)."""
        if not isinstance(password, str) or not password:
            raise ValueError("a password must be a non-empty string")
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; ``InvalidPasswordHash`` when the
        stored hash cannot be read."""
        if not isinstance(password, str):
            return False
        try:
            return self._hasher.verify(stored_hash, password)
        except argon2_errors.VerifyMismatchError:
            return False
        except argon2_errors.InvalidHashError as exc:
            raise InvalidPasswordHash("the stored password hash is not an Argon2 hash") from exc
        except argon2_errors.VerificationError:
            # a well-formed hash whose check fails otherwise (e.g. decoding): no match
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters than this instance's."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (argon2_errors.InvalidHashError, ValueError) as exc:
            raise InvalidPasswordHash("the stored password hash is not an Argon2 hash") from exc

    def verify_and_update(self, stored_hash: str, password: str) -> tuple[bool, str | None]:
        """(matches, new hash to store or None): a rehash only after a successful verify."""
        if not self.verify(stored_hash, password):
            return False, None
        return True, self.hash(password) if self.needs_rehash(stored_hash) else None
