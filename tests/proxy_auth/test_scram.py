"""SCRAM-SHA-256, both sides: RFC 7677's vector, round trips, and every way to get it wrong."""

from __future__ import annotations

import base64

import pytest

from dbsight.proxy.auth import (
    AuthenticationFailed,
    MalformedAuthMessage,
    ScramClient,
    ScramSecret,
    ScramServer,
    saslprep,
    scram_secret,
)

# RFC 7677, section 3.
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
NONCE = RFC_CLIENT_NONCE + RFC_SERVER_NONCE


def rfc_server() -> ScramServer:
    return ScramServer.from_password(
        "pencil", salt=RFC_SALT, user="user", nonce_factory=lambda: RFC_SERVER_NONCE
    )


def rfc_client(password: str = "pencil") -> ScramClient:
    return ScramClient(password, username="user", nonce_factory=lambda: RFC_CLIENT_NONCE)


def test_server_side_reproduces_rfc7677_vector() -> None:
    server = rfc_server()
    assert server.first(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert server.final(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    assert server.done


def test_client_side_reproduces_rfc7677_vector() -> None:
    client = rfc_client()
    assert client.client_first() == RFC_CLIENT_FIRST
    assert client.client_final(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    client.verify(RFC_SERVER_FINAL)
    assert client.verified


def test_secret_round_trips_in_postgres_format() -> None:
    text = scram_secret("pencil", salt=RFC_SALT)
    assert text.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")
    secret = ScramSecret.parse(text)
    assert str(secret) == text
    assert secret.matches_password("pencil")
    assert not secret.matches_password("pencils")
    server = ScramServer(text, user="user", nonce_factory=lambda: RFC_SERVER_NONCE)
    server.first(RFC_CLIENT_FIRST)
    assert server.final(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL


def test_random_salt_and_nonces_still_round_trip() -> None:
    assert scram_secret("x") != scram_secret("x")  # random salt
    server = ScramServer(scram_secret("s3cret", iterations=100), user="alice")
    client = ScramClient("s3cret")  # empty username, as libpq sends it
    server_first = server.first(client.client_first())
    client.verify(server.final(client.client_final(server_first)))
    assert client.verified and server.done


@pytest.mark.parametrize(
    "text",
    [
        "md5abc",
        "SCRAM-SHA-256$4096:c2FsdA==",
        "SCRAM-SHA-256$0:c2FsdA==$" + "A" * 44 + ":" + "A" * 44,
        "SCRAM-SHA-256$x:c2FsdA==$" + "A" * 44 + ":" + "A" * 44,
        "SCRAM-SHA-256$4096:@@@$" + "A" * 44 + ":" + "A" * 44,
        "SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:c2hvcnQ=",
    ],
)
def test_malformed_secret_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        ScramSecret.parse(text)


def test_wrong_password_is_28p01_with_postgres_message() -> None:
    server = rfc_server()
    client = rfc_client("pencils")
    server.first(client.client_first())
    with pytest.raises(AuthenticationFailed) as info:
        server.final(client.client_final(RFC_SERVER_FIRST))
    assert info.value.sqlstate == "28P01"
    assert info.value.message == 'password authentication failed for user "user"'
    assert not server.done


def test_nonce_mismatch_is_a_protocol_violation() -> None:
    server = rfc_server()
    server.first(RFC_CLIENT_FIRST)
    tampered = RFC_CLIENT_FINAL.replace(b"hNlF$k0", b"hNlF$k1")
    with pytest.raises(MalformedAuthMessage) as info:
        server.final(tampered)
    assert info.value.sqlstate == "08P01"
    assert "Nonce does not match" in str(info.value)


@pytest.mark.parametrize(
    "client_first",
    [
        b"",
        b"x,,n=user,r=abc",  # unknown channel-binding flag
        b"p=tls-server-end-point,,n=user,r=abc",  # channel binding without -PLUS
        b"n,n=user,r=abc",  # missing authzid field
        b"n,,r=abc",  # missing username
        b"n,,n=user",  # missing nonce
        b"n,,n=user,r=",  # empty nonce
        b"n,,n=user,r=a b",  # non-printable nonce
        b"n,,n=user,r=abc,!!",  # not an attribute
    ],
)
def test_malformed_client_first_is_08p01(client_first: bytes) -> None:
    with pytest.raises(MalformedAuthMessage) as info:
        rfc_server().first(client_first)
    assert info.value.sqlstate == "08P01"


@pytest.mark.parametrize("client_first", [b"n,a=admin,n=user,r=abc", b"n,,m=ext,n=user,r=abc"])
def test_authzid_and_mandatory_extensions_are_not_supported(client_first: bytes) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        rfc_server().first(client_first)
    assert info.value.sqlstate == "0A000"


def test_y_flag_is_accepted_and_must_be_echoed() -> None:
    """'y': the client could bind but we offer no -PLUS; its c= must then be base64('y,,')."""
    server = ScramServer(scram_secret("pw", iterations=64), user="u")
    first = server.first(b"y,,n=,r=clientnonce")
    nonce = first.split(b",")[0][2:]
    with pytest.raises(MalformedAuthMessage, match="channel-binding"):
        server.final(b"c=biws,r=" + nonce + b",p=" + base64.b64encode(bytes(32)))


@pytest.mark.parametrize(
    "client_final",
    [
        b"",
        b"r=" + NONCE.encode() + b",p=AAAA",  # no c=
        b"c=biws,r=" + NONCE.encode(),  # no proof
        b"c=biws,r=" + NONCE.encode() + b",p=not base64!",
        b"c=biws,r=" + NONCE.encode() + b",p=AAAA",  # proof of the wrong length
        RFC_CLIENT_FINAL + b",x=trailing",  # garbage after the proof
        RFC_CLIENT_FINAL.replace(b"c=biws", b"c=eSws"),  # binding flag differs from first
    ],
)
def test_malformed_client_final_is_08p01(client_final: bytes) -> None:
    server = rfc_server()
    server.first(RFC_CLIENT_FIRST)
    with pytest.raises(MalformedAuthMessage) as info:
        server.final(client_final)
    assert info.value.sqlstate == "08P01"


def test_extensions_before_the_proof_are_ignored_but_signed() -> None:
    server = ScramServer(scram_secret("pw", iterations=64), user="u")
    client = ScramClient("pw", nonce_factory=lambda: "abc")
    server_first = server.first(client.client_first() + b",x=ext")
    with pytest.raises(AuthenticationFailed):
        # The client signed a client-first without ",x=ext": the AuthMessages differ.
        server.final(client.client_final(server_first))


def test_messages_out_of_order_are_08p01() -> None:
    server = rfc_server()
    with pytest.raises(MalformedAuthMessage):
        server.final(RFC_CLIENT_FINAL)
    server = rfc_server()
    server.first(RFC_CLIENT_FIRST)
    with pytest.raises(MalformedAuthMessage):
        server.first(RFC_CLIENT_FIRST)


def test_mock_exchange_looks_real_and_always_fails() -> None:
    mock = ScramServer.mock("ghost", nonce_factory=lambda: RFC_SERVER_NONCE)
    again = ScramServer.mock("ghost")
    assert mock.secret.salt == again.secret.salt  # stable per user, like a real salt
    assert mock.secret.salt != ScramServer.mock("other").secret.salt
    server_first = mock.first(RFC_CLIENT_FIRST)
    assert server_first.startswith(b"r=" + NONCE.encode() + b",s=")
    with pytest.raises(AuthenticationFailed) as info:
        mock.final(rfc_client().client_final(server_first))
    assert info.value.sqlstate == "28P01"
    assert info.value.message == 'password authentication failed for user "ghost"'


def test_client_rejects_a_server_without_the_secret() -> None:
    client = rfc_client()
    client.client_final(RFC_SERVER_FIRST)
    forged = b"v=" + base64.b64encode(bytes(32))
    with pytest.raises(AuthenticationFailed, match="server signature") as info:
        client.verify(forged)
    assert info.value.sqlstate == "28000"
    assert not client.verified


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  # does not extend our nonce
        b"r=" + RFC_CLIENT_NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  # no server part
        b"r=" + NONCE.encode() + b",s=***,i=4096",
        b"r=" + NONCE.encode() + b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=zero",
        b"r=" + NONCE.encode() + b",i=4096",
    ],
)
def test_client_rejects_malformed_server_first(server_first: bytes) -> None:
    with pytest.raises(MalformedAuthMessage):
        rfc_client().client_final(server_first)


def test_client_reports_server_error_attribute() -> None:
    client = rfc_client()
    client.client_final(RFC_SERVER_FIRST)
    with pytest.raises(AuthenticationFailed, match="invalid-proof"):
        client.verify(b"e=invalid-proof")


@pytest.mark.parametrize(
    ("password", "prepared"),
    [
        ("user", b"user"),  # ASCII is used as it is
        ("I\u00adX", b"IX"),  # RFC 4013: soft hyphen mapped to nothing
        ("\u00aa", b"a"),  # NFKC
        ("\u2168", b"IX"),  # NFKC
        ("a\u2003b", b"a b"),  # non-ASCII space -> space
        ("\u0007\u00e9", "\u0007\u00e9".encode()),  # prohibited: PostgreSQL uses it raw
        ("\u0627\u0031", "\u0627\u0031".encode()),  # bidi rule broken: raw
        (b"\xff\xfe", b"\xff\xfe"),  # not UTF-8: raw
    ],
)
def test_saslprep_matches_postgresql(password: str | bytes, prepared: bytes) -> None:
    assert saslprep(password) == prepared


def test_non_ascii_passwords_are_prepared_before_hashing() -> None:
    secret = scram_secret("I\u00adX", iterations=64)
    assert ScramSecret.parse(secret).matches_password("IX")
    server = ScramServer(secret, user="u")
    client = ScramClient("\u2168")  # NFKC turns it into "IX" too
    client.verify(server.final(client.client_final(server.first(client.client_first()))))
