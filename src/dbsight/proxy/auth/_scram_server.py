"""The server side of SCRAM-SHA-256, as PostgreSQL runs it (sans-IO).

    server = ScramServer(credential_secret)              # or ScramServer.from_password(...)
    server_first = server.first(client_first)            # SASLInitialResponse data -> SASLContinue
    server_final = server.final(client_final)            # SASLResponse data -> SASLFinal

``final`` raises ``AuthenticationFailed`` (28P01) for a wrong proof and ``MalformedAuthMessage``
(08P01) for a malformed message or a nonce that is not the one agreed, with PostgreSQL's texts.
Like PostgreSQL, the username inside client-first is read and ignored (the startup packet's
user is the one being authenticated), and an exchange for a user without a usable secret runs
to the end against a mock secret (``ScramServer.mock``) so that timing and messages do not
reveal which users exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import Enum

from ._errors import AuthenticationFailed, MalformedAuthMessage
from ._scram import (
    DEFAULT_ITERATIONS,
    DEFAULT_SALT_LEN,
    KEY_LEN,
    MECHANISM,
    AttributeReader,
    NonceFactory,
    ScramSecret,
    b64decode,
    b64encode,
    hmac_sha256,
    is_printable_nonce,
    random_nonce,
    xor,
)

FEATURE_NOT_SUPPORTED = "0A000"

# Per-process key for mock salts: the same unknown user gets the same salt every time (as a
# real one would) without the salt saying anything about whether the user exists.
_MOCK_KEY = secrets.token_bytes(32)


class _Stage(Enum):
    FIRST = "first"
    FINAL = "final"
    DONE = "done"
    FAILED = "failed"


class ScramServer:
    """One SCRAM-SHA-256 exchange, server side; see the module docstring.

    Arguments:
        secret: the user's stored secret (``ScramSecret`` or PostgreSQL's text format).
        user: the user being authenticated (the startup packet's), for error messages.
        nonce_factory: makes the server nonce (default: 18 random bytes, base64); tests inject
            RFC 7677's.
        doomed: run the exchange but fail at the end whatever the proof (mock authentication).
    """

    mechanism = MECHANISM

    def __init__(
        self,
        secret: ScramSecret | str,
        *,
        user: str = "",
        nonce_factory: NonceFactory | None = None,
        doomed: bool = False,
        doomed_reason: str = "",
    ) -> None:
        self.secret = secret if isinstance(secret, ScramSecret) else ScramSecret.parse(secret)
        self.user = user
        self._nonce_factory = nonce_factory or random_nonce
        self._doomed = doomed
        self._doomed_reason = doomed_reason or "mock authentication"
        self._stage = _Stage.FIRST
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""

    @classmethod
    def from_password(
        cls,
        password: str | bytes,
        *,
        iterations: int = DEFAULT_ITERATIONS,
        salt: bytes | None = None,
        user: str = "",
        nonce_factory: NonceFactory | None = None,
    ) -> ScramServer:
        """An exchange against a secret derived from a plaintext password."""
        secret = ScramSecret.from_password(password, iterations, salt)
        return cls(secret, user=user, nonce_factory=nonce_factory)

    @classmethod
    def mock(
        cls,
        user: str,
        *,
        reason: str = "user does not exist or has no SCRAM secret",
        iterations: int = DEFAULT_ITERATIONS,
        nonce_factory: NonceFactory | None = None,
    ) -> ScramServer:
        """An exchange that looks real to the client and always fails with 28P01 at the end."""
        salt = hmac.new(_MOCK_KEY, user.encode("utf-8", "surrogateescape"), hashlib.sha256)
        mock_secret = ScramSecret(
            iterations, salt.digest()[:DEFAULT_SALT_LEN], bytes(KEY_LEN), bytes(KEY_LEN)
        )
        return cls(
            mock_secret, user=user, nonce_factory=nonce_factory, doomed=True, doomed_reason=reason
        )

    @property
    def done(self) -> bool:
        """True once ``final`` has accepted the client's proof."""
        return self._stage is _Stage.DONE

    def first(self, client_first: bytes) -> bytes:
        """Read client-first-message; return server-first-message."""
        self._require(_Stage.FIRST, "client-first-message")
        try:
            self._read_client_first(client_first)
        except AuthenticationFailed:
            self._stage = _Stage.FAILED
            raise
        server_nonce = self._nonce_factory()
        if not is_printable_nonce(server_nonce):
            raise ValueError(f"server nonce {server_nonce!r} has characters SCRAM forbids")
        self._nonce += server_nonce
        self._server_first = (
            f"r={self._nonce},s={b64encode(self.secret.salt)},i={self.secret.iterations}"
        )
        self._stage = _Stage.FINAL
        return self._server_first.encode("ascii")

    def final(self, client_final: bytes) -> bytes:
        """Read client-final-message and check its proof; return server-final-message."""
        self._require(_Stage.FINAL, "client-final-message")
        try:
            without_proof, proof = self._read_client_final(client_final)
            auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode(
                "latin-1"
            )
            matches = self._proof_matches(auth_message, proof)  # computed even when doomed
            if self._doomed:
                raise AuthenticationFailed.for_user(self.user, self._doomed_reason)
            if not matches:
                raise AuthenticationFailed.for_user(self.user, "SCRAM proof does not match")
        except AuthenticationFailed:
            self._stage = _Stage.FAILED
            raise
        self._stage = _Stage.DONE
        signature = hmac_sha256(self.secret.server_key, auth_message)
        return f"v={b64encode(signature)}".encode("ascii")

    # ------------------------------------------------------------------ internals

    def _require(self, stage: _Stage, what: str) -> None:
        if self._stage is not stage:
            current = self._stage
            self._stage = _Stage.FAILED
            raise MalformedAuthMessage(
                "malformed SCRAM message",
                detail=f"unexpected {what}: the exchange is at stage {current.value!r}",
            )

    def _read_client_first(self, message: bytes) -> None:
        reader = AttributeReader(message, "client-first-message")
        flag = reader.peek()
        if flag == "p":
            raise MalformedAuthMessage(
                "malformed SCRAM message",
                detail=(
                    "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM "
                    "message includes channel binding data."
                ),
            )
        if flag not in ("n", "y"):
            # 'y': the client could bind but thinks we cannot; true, as no -PLUS is offered.
            raise reader.error(f"unexpected channel-binding flag {flag!r}")
        reader.pos = 1
        reader.expect_comma()
        if reader.peek() == "a":
            raise AuthenticationFailed(
                "client uses authorization identity, but it is not supported", FEATURE_NOT_SUPPORTED
            )
        reader.expect_comma()
        self._gs2_header = reader.text[: reader.pos]
        self._client_first_bare = reader.text[reader.pos :]
        if reader.peek() == "m":
            raise AuthenticationFailed(
                "client requires an unsupported SCRAM extension", FEATURE_NOT_SUPPORTED
            )
        reader.read("n")  # the username: PostgreSQL uses the startup packet's instead
        nonce = reader.read("r")
        if not is_printable_nonce(nonce):
            raise reader.error("non-printable characters in SCRAM nonce")
        while not reader.at_end:
            reader.read_any()  # optional extensions, ignored as PostgreSQL does
        self._nonce = nonce

    def _read_client_final(self, message: bytes) -> tuple[str, bytes]:
        reader = AttributeReader(message, "client-final-message")
        binding = reader.read("c")
        if binding != b64encode(self._gs2_header.encode("latin-1")):
            raise reader.error("unexpected SCRAM channel-binding attribute in client-final-message")
        nonce = reader.read("r")
        while True:
            start = reader.pos
            if reader.at_end:
                raise reader.error("could not find proof in client-final-message")
            name, value = reader.read_any()
            if name == "p":
                break
        if not reader.at_end:
            raise reader.error("garbage found at the end of client-final-message")
        try:
            proof = b64decode(value)
        except ValueError:
            raise reader.error("malformed proof in client-final-message") from None
        if len(proof) != KEY_LEN:
            raise reader.error("malformed proof in client-final-message")
        if not hmac.compare_digest(nonce.encode("latin-1"), self._nonce.encode("latin-1")):
            raise MalformedAuthMessage("invalid SCRAM response", detail="Nonce does not match.")
        return reader.text[: start - 1], proof

    def _proof_matches(self, auth_message: bytes, proof: bytes) -> bool:
        signature = hmac_sha256(self.secret.stored_key, auth_message)
        client_key = xor(proof, signature)
        return hmac.compare_digest(hashlib.sha256(client_key).digest(), self.secret.stored_key)
