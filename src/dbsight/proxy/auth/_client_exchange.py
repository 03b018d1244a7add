"""Authenticating a client of the proxy (pooled mode): the server side of the exchange.

    exchange = ClientAuthExchange("alice", users.lookup("alice"))
    send(exchange.start())                      # [(b"R", AuthenticationSASL ...)]
    while not exchange.done:
        send(exchange.receive(p_message_body))  # raises AuthenticationFailed on failure
    # the last messages sent end with AuthenticationOk

The method follows PostgreSQL's pg_hba semantics (and PgBouncer's auth_type):

- ``None`` (default): SCRAM-SHA-256 when the credential allows it, md5 for an md5 hash;
- ``"scram-sha-256"``: SCRAM only; an md5 hash cannot pass (the exchange runs, then fails);
- ``"md5"``: md5, except that a SCRAM secret is checked with SCRAM (md5 cannot use it);
- ``"password"``: a cleartext password, checked against whatever is stored.

An unknown user (credential None) gets the same exchange as a real one, ending in the same
28P01 error, so that probing cannot tell which users exist.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from enum import StrEnum

from ._credential import Credential, CredentialKind
from ._errors import AuthenticationFailed, MalformedAuthMessage
from ._md5 import SALT_LEN, md5_salted
from ._payloads import (
    AUTH_CLEARTEXT,
    AUTH_MD5,
    AUTH_OK,
    AUTH_SASL_CONTINUE,
    AUTH_SASL_FINAL,
    Message,
    authentication,
    authentication_sasl,
    read_password,
    read_sasl_initial_response,
)
from ._scram import MECHANISM, NonceFactory
from ._scram_server import ScramServer


class AuthMethod(StrEnum):
    SCRAM_SHA_256 = "scram-sha-256"
    MD5 = "md5"
    PASSWORD = "password"


def choose_method(credential: Credential | None, configured: AuthMethod | None) -> AuthMethod:
    """The request to send for ``credential`` under the ``configured`` method (see module doc)."""
    if configured is AuthMethod.PASSWORD:
        return AuthMethod.PASSWORD
    if configured is AuthMethod.SCRAM_SHA_256:
        return AuthMethod.SCRAM_SHA_256
    kind = credential.kind if credential is not None else None
    if kind is CredentialKind.SCRAM_SHA_256:
        return AuthMethod.SCRAM_SHA_256
    if kind is CredentialKind.MD5 or configured is AuthMethod.MD5:
        return AuthMethod.MD5
    return AuthMethod.SCRAM_SHA_256


class ClientAuthExchange:
    """One client's password authentication, sans-IO; see the module docstring.

    ``nonce_factory`` and ``salt_factory`` (4-byte md5 salt) are injectable for tests.
    """

    def __init__(
        self,
        user: str,
        credential: Credential | None,
        *,
        method: AuthMethod | str | None = None,
        nonce_factory: NonceFactory | None = None,
        salt_factory: Callable[[], bytes] | None = None,
    ) -> None:
        self.user = user
        self.credential = credential
        self.method = choose_method(credential, None if method is None else AuthMethod(method))
        self._nonce_factory = nonce_factory
        self._salt_factory = salt_factory or (lambda: secrets.token_bytes(SALT_LEN))
        self._salt = b""
        self._scram: ScramServer | None = None
        self._sasl_step = 0  # 0: SASLInitialResponse next, 1: client-first, 2: client-final
        self._started = False
        self._done = False
        self._failed = False

    @property
    def done(self) -> bool:
        """True once the client is authenticated (AuthenticationOk has been produced)."""
        return self._done

    def start(self) -> list[Message]:
        """The authentication request to send first."""
        if self._started:
            raise RuntimeError("ClientAuthExchange.start() called twice")
        self._started = True
        if self.method is AuthMethod.SCRAM_SHA_256:
            self._scram = self._scram_server()
            return [authentication_sasl((MECHANISM,))]
        if self.method is AuthMethod.MD5:
            self._salt = self._salt_factory()
            if len(self._salt) != SALT_LEN:
                raise ValueError(f"md5 salt must be {SALT_LEN} bytes")
            return [authentication(AUTH_MD5, self._salt)]
        return [authentication(AUTH_CLEARTEXT)]

    def receive(self, payload: bytes) -> list[Message]:
        """Consume the body of the client's ``p`` message; returns what to send back."""
        if not self._started:
            raise RuntimeError("ClientAuthExchange.receive() before start()")
        if self._done or self._failed:
            raise MalformedAuthMessage(
                "unexpected password message", detail="the authentication exchange has ended"
            )
        try:
            if self.method is AuthMethod.SCRAM_SHA_256:
                return self._receive_sasl(payload)
            return self._receive_password(read_password(payload))
        except AuthenticationFailed:
            self._failed = True
            raise

    # ------------------------------------------------------------------ internals

    def _fail(self, detail: str) -> AuthenticationFailed:
        return AuthenticationFailed.for_user(self.user, detail)

    def _succeed(self) -> Message:
        self._done = True
        return authentication(AUTH_OK)

    def _scram_server(self) -> ScramServer:
        credential = self.credential
        if credential is None:
            return ScramServer.mock(
                self.user,
                reason=f'Role "{self.user}" does not exist.',
                nonce_factory=self._nonce_factory,
            )
        if not credential.allows_scram:
            return ScramServer.mock(
                self.user,
                reason=f'User "{self.user}" does not have a valid SCRAM secret.',
                nonce_factory=self._nonce_factory,
            )
        return ScramServer(
            credential.scram_secret(), user=self.user, nonce_factory=self._nonce_factory
        )

    def _receive_sasl(self, payload: bytes) -> list[Message]:
        scram = self._scram
        assert scram is not None
        if self._sasl_step == 0:
            mechanism, data = read_sasl_initial_response(payload)
            if mechanism != MECHANISM:
                raise MalformedAuthMessage(
                    "client selected an invalid SASL authentication mechanism",
                    detail=f"mechanism {mechanism!r}",
                )
            if data is None:
                # No initial response: an empty challenge asks for client-first next.
                self._sasl_step = 1
                return [authentication(AUTH_SASL_CONTINUE)]
            payload = data
        if self._sasl_step < 2:
            self._sasl_step = 2
            return [authentication(AUTH_SASL_CONTINUE, scram.first(payload))]
        server_final = scram.final(payload)
        return [authentication(AUTH_SASL_FINAL, server_final), self._succeed()]

    def _receive_password(self, password: bytes) -> list[Message]:
        credential = self.credential
        if not password:
            raise self._fail("empty password returned by client")
        if credential is None:
            raise self._fail(f'Role "{self.user}" does not exist.')
        if self.method is AuthMethod.MD5:  # never chosen for a SCRAM secret
            expected = md5_salted(credential.md5_secret(), self._salt)
            if not hmac.compare_digest(password, expected):
                raise self._fail("md5 password does not match")
        elif not credential.matches_password(password):
            raise self._fail("password does not match")
        return [self._succeed()]
