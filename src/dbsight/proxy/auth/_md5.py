"""PostgreSQL's md5 password scheme: the stored hash and the salted response on the wire.

Stored (pg_authid, users files): ``"md5" + md5(password + user)`` in hex. Sent by the client
for AuthenticationMD5Password: ``"md5" + md5(stored_hex + salt)`` in hex. The proxy needs both:
to answer a server that asks for md5, and to check a client against an md5 hash it stores.
"""

from __future__ import annotations

import hashlib
import re

MD5_PREFIX = "md5"
SALT_LEN = 4
_MD5_SECRET = re.compile(r"md5[0-9a-f]{32}")


def is_md5_secret(secret: str) -> bool:
    """Whether ``secret`` is an md5 hash as PostgreSQL stores it ("md5" + 32 lowercase hex)."""
    return _MD5_SECRET.fullmatch(secret) is not None


def _utf8(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


def md5_secret(user: str | bytes, password: str | bytes) -> str:
    """What PostgreSQL stores for ``password`` under md5: "md5" + md5(password + user)."""
    return MD5_PREFIX + hashlib.md5(_utf8(password) + _utf8(user)).hexdigest()


def md5_salted(secret: str, salt: bytes) -> bytes:
    """The response a client sends for an md5 ``secret`` (as stored) and the server's salt."""
    if not is_md5_secret(secret):
        raise ValueError("not an md5 secret (expected 'md5' followed by 32 hex digits)")
    if len(salt) != SALT_LEN:
        raise ValueError(f"an md5 salt is {SALT_LEN} bytes, got {len(salt)}")
    return (MD5_PREFIX + hashlib.md5(secret[3:].encode("ascii") + salt).hexdigest()).encode("ascii")


def md5_password(user: str | bytes, password: str | bytes, salt: bytes) -> bytes:
    """The password message body's string (without NUL) libpq sends for md5 authentication."""
    return md5_salted(md5_secret(user, password), salt)
