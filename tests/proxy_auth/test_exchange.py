"""The sans-IO drivers: the proxy authenticating a client, and logging in upstream.

``ClientAuthExchange`` (the proxy as a server) and ``UpstreamLogin`` (the proxy as a client)
are driven against each other here; both are also checked against real PostgreSQL and real
clients in test_real_server.py.
"""

from __future__ import annotations

import pytest

from dbsight.proxy.auth import (
    AUTH_CLEARTEXT,
    AUTH_MD5,
    AUTH_OK,
    AUTH_SASL,
    AuthenticationFailed,
    AuthMethod,
    AuthQuery,
    AuthQueryError,
    ClientAuthExchange,
    Credential,
    CredentialKind,
    MalformedAuthMessage,
    ScramClient,
    UpstreamLogin,
    md5_secret,
    read_authentication,
    read_mechanisms,
    sasl_initial_response,
    scram_secret,
)

SCRAM = Credential.from_secret("alice", scram_secret("pw", iterations=64))
MD5 = Credential.from_secret("alice", md5_secret("alice", "pw"))
PLAIN = Credential.from_secret("alice", "pw")


def run(exchange: ClientAuthExchange, login: UpstreamLogin) -> list[int]:
    """Drive both sides to the end; returns the request codes the client saw."""
    codes: list[int] = []
    pending = exchange.start()
    while pending:
        reply = None
        for type_, payload in pending:
            assert type_ == b"R"
            codes.append(read_authentication(payload)[0])
            reply = login.receive(payload) or reply
        if exchange.done:
            break
        assert reply is not None and reply[0] == b"p"
        pending = exchange.receive(reply[1])
    assert exchange.done and login.done
    return codes


@pytest.mark.parametrize(
    ("credential", "method", "first_code"),
    [
        (SCRAM, None, AUTH_SASL),
        (PLAIN, None, AUTH_SASL),
        (MD5, None, AUTH_MD5),
        (PLAIN, "md5", AUTH_MD5),
        (SCRAM, "md5", AUTH_SASL),  # md5 cannot use a SCRAM secret: PostgreSQL uses SCRAM
        (SCRAM, "password", AUTH_CLEARTEXT),
        (MD5, "password", AUTH_CLEARTEXT),
        (PLAIN, "password", AUTH_CLEARTEXT),
    ],
)
def test_right_password_succeeds(
    credential: Credential, method: str | None, first_code: int
) -> None:
    codes = run(
        ClientAuthExchange("alice", credential, method=method), UpstreamLogin("alice", "pw")
    )
    assert codes[0] == first_code and codes[-1] == AUTH_OK


@pytest.mark.parametrize("credential", [SCRAM, MD5, PLAIN, None])
@pytest.mark.parametrize("method", [None, "md5", "password", "scram-sha-256"])
def test_wrong_password_or_unknown_user_fails_alike(
    credential: Credential | None, method: str | None
) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        run(ClientAuthExchange("alice", credential, method=method), UpstreamLogin("alice", "nope"))
    assert info.value.sqlstate == "28P01"
    assert info.value.message == 'password authentication failed for user "alice"'


def test_md5_hash_cannot_pass_strict_scram() -> None:
    exchange = ClientAuthExchange("alice", MD5, method=AuthMethod.SCRAM_SHA_256)
    with pytest.raises(AuthenticationFailed) as info:
        run(exchange, UpstreamLogin("alice", "pw"))
    assert "SCRAM secret" in str(info.value.detail)


def test_unknown_user_gets_a_sasl_exchange_like_a_real_one() -> None:
    exchange = ClientAuthExchange("ghost", None)
    ((type_, payload),) = exchange.start()
    code, data = read_authentication(payload)
    assert (type_, code, read_mechanisms(data)) == (b"R", AUTH_SASL, ["SCRAM-SHA-256"])


def test_sasl_initial_response_without_data_gets_an_empty_challenge() -> None:
    exchange = ClientAuthExchange("alice", SCRAM)
    exchange.start()
    ((_, payload),) = exchange.receive(sasl_initial_response("SCRAM-SHA-256", None)[1])
    assert read_authentication(payload) == (11, b"")
    client = ScramClient("pw")
    ((_, payload),) = exchange.receive(client.client_first())
    server_first = read_authentication(payload)[1]
    final, ok = exchange.receive(client.client_final(server_first))
    client.verify(read_authentication(final[1])[1])
    assert read_authentication(ok[1]) == (AUTH_OK, b"") and exchange.done


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        (None, b"SCRAM-SHA-256"),  # mechanism not NUL-terminated
        (None, b"SCRAM-SHA-256\0\0\0\0\x0an,,n=,r=x"),  # length 10, 9 bytes follow
        (None, b"SCRAM-SHA-256-PLUS\0\0\0\0\x01x"),  # a mechanism we did not offer
        ("md5", b"md5abc"),  # password message without its NUL
        ("md5", b"md5\0abc\0"),  # two strings
    ],
)
def test_malformed_client_messages_are_08p01(method: str | None, payload: bytes) -> None:
    exchange = ClientAuthExchange("alice", PLAIN, method=method)
    exchange.start()
    with pytest.raises(MalformedAuthMessage) as info:
        exchange.receive(payload)
    assert info.value.sqlstate == "08P01"
    with pytest.raises(MalformedAuthMessage, match="unexpected password message"):
        exchange.receive(payload)  # the exchange is over


def test_upstream_login_refuses_ok_before_the_server_proved_itself() -> None:
    login = UpstreamLogin("alice", "pw")
    login.receive(b"\0\0\0\x0aSCRAM-SHA-256\0\0")
    with pytest.raises(AuthenticationFailed, match="before completing"):
        login.receive(b"\0\0\0\0")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"\0\0", MalformedAuthMessage),
        (b"\0\0\0\x05\x01", MalformedAuthMessage),  # md5 salt too short
        (b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0\0", AuthenticationFailed),  # nothing we speak
        (b"\0\0\0\x0b", MalformedAuthMessage),  # SASLContinue before SASL
        (b"\0\0\0\x07", AuthenticationFailed),  # GSSAPI
    ],
)
def test_upstream_login_rejects_what_it_cannot_answer(
    payload: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        UpstreamLogin("alice", "pw").receive(payload)


def test_upstream_login_without_password() -> None:
    with pytest.raises(AuthenticationFailed, match="none is configured"):
        UpstreamLogin("alice", None).receive(b"\0\0\0\x03")
    assert UpstreamLogin("alice", None).receive(b"\0\0\0\0") is None  # trust


def test_auth_query_rows() -> None:
    query = AuthQuery()
    assert query.sql == "SELECT usename, passwd FROM pg_shadow WHERE usename = $1"
    credential = query.credential("alice", [(b"alice", md5_secret("alice", "pw").encode())])
    assert credential is not None and credential.kind is CredentialKind.MD5
    assert query.credential("alice", []) is None
    assert query.credential("alice", [("alice", None)]) is None  # role without a password
    with pytest.raises(AuthQueryError, match="2 rows"):
        query.credential("alice", [("alice", "x"), ("alice", "y")])
    with pytest.raises(AuthQueryError, match="returned user 'bob'"):
        query.credential("alice", [("bob", "x")])
    with pytest.raises(AuthQueryError, match="2 columns"):
        query.credential("alice", [("alice",)])
    with pytest.raises(ValueError, match=r"\$1"):
        AuthQuery("SELECT usename, passwd FROM pg_shadow")
