"""The client side of SCRAM-SHA-256 (sans-IO): how the proxy logs in to the real server.

    client = ScramClient(password)
    send(client.client_first())                     # SASLInitialResponse data
    send(client.client_final(server_first))         # SASLResponse data
    client.verify(server_final)                     # the server proved it knows the secret

Messages are checked as libpq checks them: the server's nonce must extend ours, and its final
signature must match, else the "server" does not hold the password's secret.
"""

from __future__ import annotations

import hashlib
import hmac

from ._errors import INVALID_AUTHORIZATION, AuthenticationFailed, MalformedAuthMessage
from ._scram import (
    KEY_LEN,
    AttributeReader,
    NonceFactory,
    b64decode,
    b64encode,
    client_key,
    hmac_sha256,
    is_printable_nonce,
    random_nonce,
    salted_password,
    server_key,
    xor,
)

_GS2_HEADER = "n,,"  # no channel binding, no authorization identity


def _escape_username(user: str) -> str:
    return user.replace("=", "=3D").replace(",", "=2C")


class ScramClient:
    """One SCRAM-SHA-256 exchange, client side; see the module docstring.

    ``username`` defaults to empty, as libpq sends it: PostgreSQL takes the user from the
    startup packet. ``nonce_factory`` is injectable for RFC 7677's test vector.
    """

    def __init__(
        self,
        password: str | bytes,
        *,
        username: str = "",
        nonce_factory: NonceFactory | None = None,
    ) -> None:
        self._password = password
        self._nonce = (nonce_factory or random_nonce)()
        if not is_printable_nonce(self._nonce):
            raise ValueError(f"client nonce {self._nonce!r} has characters SCRAM forbids")
        self._first_bare = f"n={_escape_username(username)},r={self._nonce}"
        self._expected_signature: bytes | None = None
        self._verified = False

    @property
    def verified(self) -> bool:
        """True once the server's final signature has been checked."""
        return self._verified

    def client_first(self) -> bytes:
        return (_GS2_HEADER + self._first_bare).encode("utf-8")

    def client_final(self, server_first: bytes) -> bytes:
        """Read server-first-message; return client-final-message with our proof."""
        if self._expected_signature is not None:
            raise MalformedAuthMessage(
                "malformed SCRAM message", detail="a second server-first-message"
            )
        reader = AttributeReader(server_first, "server-first-message")
        if reader.peek() == "m":
            raise reader.error("server requires an unsupported SCRAM extension")
        nonce = reader.read("r")
        if not nonce.startswith(self._nonce) or len(nonce) <= len(self._nonce):
            raise MalformedAuthMessage("invalid SCRAM response", detail="nonce mismatch")
        if not is_printable_nonce(nonce):
            raise reader.error("non-printable characters in SCRAM nonce")
        try:
            salt = b64decode(reader.read("s"))
        except ValueError:
            raise reader.error("malformed SCRAM salt") from None
        iterations_text = reader.read("i")
        if not iterations_text.isdigit() or int(iterations_text) < 1:
            raise reader.error(f"invalid SCRAM iteration count {iterations_text!r}")
        while not reader.at_end:
            reader.read_any()
        salted = salted_password(self._password, salt, int(iterations_text))
        key = client_key(salted)
        without_proof = f"c={b64encode(_GS2_HEADER.encode('ascii'))},r={nonce}"
        auth_message = b",".join(
            (self._first_bare.encode("utf-8"), bytes(server_first), without_proof.encode("latin-1"))
        )
        signature = hmac_sha256(hashlib.sha256(key).digest(), auth_message)
        self._expected_signature = hmac_sha256(server_key(salted), auth_message)
        proof = xor(key, signature)
        return f"{without_proof},p={b64encode(proof)}".encode("latin-1")

    def verify(self, server_final: bytes) -> None:
        """Check server-final-message; raises ``AuthenticationFailed`` when it does not match."""
        if self._expected_signature is None:
            raise MalformedAuthMessage(
                "malformed SCRAM message", detail="server-final-message before server-first-message"
            )
        reader = AttributeReader(server_final, "server-final-message")
        if reader.peek() == "e":
            raise AuthenticationFailed(
                f"error received from server in SCRAM exchange: {reader.read('e')}",
                INVALID_AUTHORIZATION,
            )
        try:
            signature = b64decode(reader.read("v"))
        except ValueError:
            raise reader.error("malformed server signature") from None
        if not reader.at_end or len(signature) != KEY_LEN:
            raise reader.error("malformed server signature")
        if not hmac.compare_digest(signature, self._expected_signature):
            raise AuthenticationFailed(
                "incorrect server signature: the server does not hold this password's secret",
                INVALID_AUTHORIZATION,
            )
        self._verified = True
