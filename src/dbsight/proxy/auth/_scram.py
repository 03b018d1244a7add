"""SCRAM-SHA-256 (RFC 5802, RFC 7677) primitives shared by the server and the client side.

The stored secret is PostgreSQL's pg_authid format,
``SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>``, so a secret read
from the server, written in a users file or made by ``scram_secret`` are interchangeable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ._errors import MalformedAuthMessage
from ._saslprep import saslprep

MECHANISM = "SCRAM-SHA-256"
#: Advertised only with channel binding (tls-server-end-point), which is not implemented.
MECHANISM_PLUS = "SCRAM-SHA-256-PLUS"
SECRET_PREFIX = "SCRAM-SHA-256$"
DEFAULT_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)
DEFAULT_SALT_LEN = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN
RAW_NONCE_LEN = 18  # PostgreSQL's SCRAM_RAW_NONCE_LEN: base64 of it is 24 characters
KEY_LEN = 32  # SHA-256 output

NonceFactory = Callable[[], str]


def random_nonce() -> str:
    """A fresh nonce as PostgreSQL and libpq make one: base64 of 18 random bytes."""
    return base64.b64encode(secrets.token_bytes(RAW_NONCE_LEN)).decode("ascii")


def b64decode(value: str | bytes) -> bytes:
    """Strict base64 (no stray characters), raising ``binascii.Error`` otherwise."""
    return base64.b64decode(value, validate=True)


def b64encode(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def salted_password(password: str | bytes, salt: bytes, iterations: int) -> bytes:
    """Hi(Normalize(password), salt, i): PBKDF2-HMAC-SHA-256 of the SASLprep'd password."""
    return hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations, KEY_LEN)


def client_key(salted: bytes) -> bytes:
    return hmac_sha256(salted, b"Client Key")


def server_key(salted: bytes) -> bytes:
    return hmac_sha256(salted, b"Server Key")


def xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def is_printable_nonce(nonce: str) -> bool:
    """RFC 5802 ``printable``: 0x21-0x7E except ','; PostgreSQL refuses anything else."""
    return bool(nonce) and all(0x21 <= ord(ch) <= 0x7E and ch != "," for ch in nonce)


@dataclass(frozen=True, slots=True)
class ScramSecret:
    """What a server stores for SCRAM-SHA-256: enough to verify a client, not to be one."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def parse(cls, text: str) -> ScramSecret:
        """Read PostgreSQL's format; ``ValueError`` naming the part that is wrong."""
        if not text.startswith(SECRET_PREFIX):
            raise ValueError(f"a SCRAM secret starts with {SECRET_PREFIX!r}")
        head, sep, keys = text[len(SECRET_PREFIX) :].partition("$")
        iterations_text, sep2, salt_text = head.partition(":")
        stored_text, sep3, server_text = keys.partition(":")
        if not (sep and sep2 and sep3):
            raise ValueError(
                "a SCRAM secret is SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
            )
        if not iterations_text.isdigit() or int(iterations_text) < 1:
            raise ValueError(f"SCRAM iteration count {iterations_text!r} is not a positive integer")
        try:
            salt = b64decode(salt_text)
            stored_key = b64decode(stored_text)
            server_key_ = b64decode(server_text)
        except (binascii.Error, ValueError):
            raise ValueError("SCRAM secret has a salt or key that is not valid base64") from None
        if not salt:
            raise ValueError("SCRAM secret has an empty salt")
        if len(stored_key) != KEY_LEN or len(server_key_) != KEY_LEN:
            raise ValueError(f"SCRAM secret keys must be {KEY_LEN} bytes (SHA-256)")
        return cls(int(iterations_text), salt, stored_key, server_key_)

    @classmethod
    def from_password(
        cls,
        password: str | bytes,
        iterations: int = DEFAULT_ITERATIONS,
        salt: bytes | None = None,
    ) -> ScramSecret:
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        salt = secrets.token_bytes(DEFAULT_SALT_LEN) if salt is None else bytes(salt)
        if not salt:
            raise ValueError("salt must not be empty")
        salted = salted_password(password, salt, iterations)
        stored = hashlib.sha256(client_key(salted)).digest()
        return cls(iterations, salt, stored, server_key(salted))

    def matches_password(self, password: str | bytes) -> bool:
        """Whether ``password`` is the one this secret was made from (constant-time compare)."""
        salted = salted_password(password, self.salt, self.iterations)
        return hmac.compare_digest(server_key(salted), self.server_key)

    def __str__(self) -> str:
        return (
            f"{SECRET_PREFIX}{self.iterations}:{b64encode(self.salt)}"
            f"${b64encode(self.stored_key)}:{b64encode(self.server_key)}"
        )

    def __repr__(self) -> str:
        return f"ScramSecret(iterations={self.iterations}, salt={b64encode(self.salt)!r}, ...)"


def scram_secret(
    password: str | bytes, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL would store in pg_authid for ``password``."""
    return str(ScramSecret.from_password(password, iterations, salt))


class AttributeReader:
    """Reads a SCRAM message's ``name=value`` attributes in order, as PostgreSQL does.

    The message is decoded as latin-1 so that any bytes survive the round trip into the
    AuthMessage that both sides sign.
    """

    def __init__(self, message: bytes, what: str) -> None:
        self.text = message.decode("latin-1")
        self.pos = 0
        self.what = what

    def error(self, detail: str) -> MalformedAuthMessage:
        return MalformedAuthMessage("malformed SCRAM message", detail=f"{self.what}: {detail}")

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect_comma(self) -> None:
        if self.peek() != ",":
            raise self.error(f"expected ',' at offset {self.pos}")
        self.pos += 1

    def read(self, name: str) -> str:
        """The value of attribute ``name``, which must come next; consumes a trailing ','."""
        if not self.text.startswith(f"{name}=", self.pos):
            raise self.error(f"expected attribute {name!r} at offset {self.pos}")
        return self._value(self.pos + 2)

    def read_any(self) -> tuple[str, str]:
        """The next attribute, whatever its name (an extension), as ``(name, value)``."""
        name = self.peek()
        if not (name.isascii() and name.isalpha()) or not self.text.startswith("=", self.pos + 1):
            raise self.error(f"expected an attribute at offset {self.pos}")
        return name, self._value(self.pos + 2)

    def _value(self, start: int) -> str:
        end = self.text.find(",", start)
        if end < 0:
            end = len(self.text)
            self.pos = end
        else:
            self.pos = end + 1
        return self.text[start:end]
