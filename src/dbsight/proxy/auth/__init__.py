"""Authentication for the proxy, sans-IO: SCRAM-SHA-256 (both sides), md5, cleartext.

In pooled mode the proxy authenticates clients itself and logs in to the server with its own
backend credentials:

- ``ClientAuthExchange`` authenticates a client against a ``Credential`` from a ``UsersFile``
  (PgBouncer's userlist.txt format) or from the ``AuthQuery`` result; it produces ``R`` message
  payloads and consumes the client's ``p`` message bodies.
- ``UpstreamLogin`` answers the server's ``R`` requests with ``p`` message bodies.
- ``ScramServer`` / ``ScramClient`` are the two SCRAM state machines underneath, compatible with
  PostgreSQL's (secrets in pg_authid's format; ``scram_secret`` makes one from a password).

Everything works on payload bytes and ``(type byte, payload)`` pairs; framing is the codec's.
Failures raise ``AuthenticationFailed`` carrying the SQLSTATE to answer with (28P01 wrong
password or unknown user, 08P01 malformed message: ``MalformedAuthMessage``).
"""

from ._auth_query import DEFAULT_AUTH_QUERY, AuthQuery, AuthQueryError, credential_from_row
from ._client_exchange import AuthMethod, ClientAuthExchange, choose_method
from ._credential import Credential, CredentialKind
from ._errors import (
    INVALID_AUTHORIZATION,
    INVALID_PASSWORD,
    PROTOCOL_VIOLATION,
    AuthenticationFailed,
    MalformedAuthMessage,
)
from ._md5 import is_md5_secret, md5_password, md5_salted, md5_secret
from ._payloads import (
    AUTH_CLEARTEXT,
    AUTH_MD5,
    AUTH_OK,
    AUTH_SASL,
    AUTH_SASL_CONTINUE,
    AUTH_SASL_FINAL,
    password_message,
    read_authentication,
    read_mechanisms,
    read_password,
    read_sasl_initial_response,
    sasl_initial_response,
    sasl_response,
)
from ._saslprep import saslprep
from ._scram import MECHANISM, ScramSecret, scram_secret
from ._scram_client import ScramClient
from ._scram_server import ScramServer
from ._upstream_login import UpstreamLogin
from ._users_file import UsersFile, UsersFileError

__all__ = [
    "AUTH_CLEARTEXT",
    "AUTH_MD5",
    "AUTH_OK",
    "AUTH_SASL",
    "AUTH_SASL_CONTINUE",
    "AUTH_SASL_FINAL",
    "DEFAULT_AUTH_QUERY",
    "INVALID_AUTHORIZATION",
    "INVALID_PASSWORD",
    "MECHANISM",
    "PROTOCOL_VIOLATION",
    "AuthMethod",
    "AuthQuery",
    "AuthQueryError",
    "AuthenticationFailed",
    "ClientAuthExchange",
    "Credential",
    "CredentialKind",
    "MalformedAuthMessage",
    "ScramClient",
    "ScramSecret",
    "ScramServer",
    "UpstreamLogin",
    "UsersFile",
    "UsersFileError",
    "choose_method",
    "credential_from_row",
    "is_md5_secret",
    "md5_password",
    "md5_salted",
    "md5_secret",
    "password_message",
    "read_authentication",
    "read_mechanisms",
    "read_password",
    "read_sasl_initial_response",
    "sasl_initial_response",
    "sasl_response",
    "saslprep",
    "scram_secret",
]
