"""Logging in to the real server with the backend credentials (pooled mode), sans-IO.

    login = UpstreamLogin("app", "secret")
    for each ``R`` message from the server:
        reply = login.receive(payload)          # (b"p", body) to send, or None
        if login.done: break                    # AuthenticationOk received

Answers cleartext, md5 and SCRAM-SHA-256 requests. A SCRAM exchange must finish with a server
signature that checks out before AuthenticationOk is believed: a server (or a man in the middle)
that skips it has not proved it knows the password's secret.
"""

from __future__ import annotations

from ._errors import INVALID_AUTHORIZATION, AuthenticationFailed, MalformedAuthMessage
from ._md5 import md5_password
from ._payloads import (
    AUTH_CLEARTEXT,
    AUTH_MD5,
    AUTH_OK,
    AUTH_SASL,
    AUTH_SASL_CONTINUE,
    AUTH_SASL_FINAL,
    Message,
    password_message,
    read_authentication,
    read_mechanisms,
    sasl_initial_response,
    sasl_response,
)
from ._scram import MECHANISM, NonceFactory
from ._scram_client import ScramClient

_METHOD_NAMES = {2: "Kerberos V5", 6: "SCM credentials", 7: "GSSAPI", 8: "GSSAPI", 9: "SSPI"}


class UpstreamLogin:
    """One login to the server as ``user``; see the module docstring."""

    def __init__(
        self, user: str, password: str | None, *, nonce_factory: NonceFactory | None = None
    ) -> None:
        self.user = user
        self._password = password
        self._nonce_factory = nonce_factory
        self._scram: ScramClient | None = None
        self._done = False

    @property
    def done(self) -> bool:
        """True once the server sent AuthenticationOk."""
        return self._done

    def receive(self, payload: bytes) -> Message | None:
        """Consume an ``R`` payload from the server; returns the ``p`` message to answer with."""
        if self._done:
            raise MalformedAuthMessage(
                "unexpected authentication request", detail="already authenticated"
            )
        code, data = read_authentication(payload)
        if code == AUTH_OK:
            if self._scram is not None and not self._scram.verified:
                raise AuthenticationFailed(
                    "server sent AuthenticationOk before completing the SCRAM exchange",
                    INVALID_AUTHORIZATION,
                )
            self._done = True
            return None
        if code == AUTH_CLEARTEXT:
            return password_message(self._need_password().encode("utf-8"))
        if code == AUTH_MD5:
            if len(data) != 4:
                raise MalformedAuthMessage(
                    "invalid authentication request", detail="md5 salt is not 4 bytes"
                )
            return password_message(md5_password(self.user, self._need_password(), data))
        if code == AUTH_SASL:
            return self._start_sasl(read_mechanisms(data))
        if code == AUTH_SASL_CONTINUE:
            return sasl_response(self._sasl_client("AuthenticationSASLContinue").client_final(data))
        if code == AUTH_SASL_FINAL:
            self._sasl_client("AuthenticationSASLFinal").verify(data)
            return None
        name = _METHOD_NAMES.get(code, f"request code {code}")
        raise AuthenticationFailed(
            f"the server asks for {name} authentication, which the proxy does not support",
            INVALID_AUTHORIZATION,
        )

    def _need_password(self) -> str:
        if self._password is None:
            raise AuthenticationFailed(
                f'the server asks for a password for user "{self.user}" and none is configured',
                INVALID_AUTHORIZATION,
            )
        return self._password

    def _start_sasl(self, mechanisms: list[str]) -> Message:
        if self._scram is not None:
            raise MalformedAuthMessage(
                "unexpected authentication request", detail="a second AuthenticationSASL"
            )
        if MECHANISM not in mechanisms:
            raise AuthenticationFailed(
                f"none of the server's SASL mechanisms are supported: {', '.join(mechanisms)}",
                INVALID_AUTHORIZATION,
            )
        self._scram = ScramClient(self._need_password(), nonce_factory=self._nonce_factory)
        return sasl_initial_response(MECHANISM, self._scram.client_first())

    def _sasl_client(self, what: str) -> ScramClient:
        if self._scram is None:
            raise MalformedAuthMessage(
                "unexpected authentication request", detail=f"{what} before AuthenticationSASL"
            )
        return self._scram
