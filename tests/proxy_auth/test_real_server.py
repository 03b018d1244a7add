"""The auth building blocks against a real PostgreSQL and real clients.

- secrets PostgreSQL stores (pg_authid, read with the auth query) work in ``ScramServer`` and
  are what ``scram_secret`` / ``md5_secret`` compute;
- ``UpstreamLogin`` logs in to a real server whose pg_hba.conf demands scram-sha-256, md5 or
  password (a private cluster of this module: the shared test clusters trust everyone);
- real clients (libpq through psycopg, asyncpg) log in to a stand-in server on loopback that
  authenticates them with ``ClientAuthExchange``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator

import asyncpg
import psycopg
import pytest
from proxy_auth_wire import (
    GSSENC_REQUEST,
    SSL_REQUEST,
    error_fields,
    error_response,
    frame,
    parse_startup,
    read_message,
    startup_message,
)
from psycopg import sql

from dbsight.proxy.auth import (
    AuthenticationFailed,
    AuthQuery,
    ClientAuthExchange,
    Credential,
    CredentialKind,
    ScramClient,
    ScramServer,
    UpstreamLogin,
    UsersFile,
    md5_secret,
    read_authentication,
    scram_secret,
)
from dbsight.testing import unique_name
from dbsight.testing._password_cluster import create_role, password_cluster

SCRAM_PASSWORD = "p\u00e4ss w\u00f6rd"  # non-ASCII: SASLprep must agree with PostgreSQL's
MD5_PASSWORD = "md5 secret"


async def fetch_credential(dsn: str, user: str) -> Credential | None:
    query = AuthQuery()
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(query.sql, user)
    finally:
        await conn.close()
    return query.credential(user, [tuple(row) for row in rows])


def drop_role(dsn: str, name: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def roles(pg_admin_dsn: str) -> Iterator[dict[str, str]]:
    """A SCRAM role and an md5 role on the session's server, dropped afterwards."""
    names = {"scram": unique_name("dbsight_auth_"), "md5": unique_name("dbsight_auth_")}
    try:
        create_role(pg_admin_dsn, names["scram"], SCRAM_PASSWORD, "scram-sha-256")
        create_role(pg_admin_dsn, names["md5"], MD5_PASSWORD, "md5")
        yield names
    finally:
        for name in names.values():
            drop_role(pg_admin_dsn, name)


async def test_scram_secret_from_pg_authid_accepts_scram_client(
    pg_admin_dsn: str, roles: dict[str, str]
) -> None:
    user = roles["scram"]
    credential = await fetch_credential(pg_admin_dsn, user)
    assert credential is not None and credential.kind is CredentialKind.SCRAM_SHA_256
    stored = credential.scram_secret()
    # Same password, salt and iterations: byte for byte what PostgreSQL stored.
    assert scram_secret(SCRAM_PASSWORD, stored.iterations, stored.salt) == credential.secret

    server = ScramServer(credential.secret, user=user)
    client = ScramClient(SCRAM_PASSWORD)
    client.verify(server.final(client.client_final(server.first(client.client_first()))))
    assert server.done and client.verified

    server = ScramServer(credential.secret, user=user)
    wrong = ScramClient("pass word")
    server_first = server.first(wrong.client_first())
    with pytest.raises(AuthenticationFailed) as info:
        server.final(wrong.client_final(server_first))
    assert info.value.sqlstate == "28P01"


async def test_md5_secret_from_pg_authid_is_md5_secret(
    pg_admin_dsn: str, roles: dict[str, str]
) -> None:
    user = roles["md5"]
    credential = await fetch_credential(pg_admin_dsn, user)
    assert credential is not None and credential.kind is CredentialKind.MD5
    assert credential.secret == md5_secret(user, MD5_PASSWORD)
    assert await fetch_credential(pg_admin_dsn, unique_name("dbsight_nobody_")) is None


# ------------------------------------------------------------------ logging in upstream

HBA_ROLES = {
    "dbsight_auth_scram": ("scram-sha-256", "scram-sha-256", SCRAM_PASSWORD),
    "dbsight_auth_md5": ("md5", "md5", MD5_PASSWORD),
    "dbsight_auth_cleartext": ("scram-sha-256", "password", "clear text"),
}


def login(port: int, user: str, password: str | None) -> tuple[list[int], dict[str, str] | None]:
    """Log in with ``UpstreamLogin`` over a raw socket: (request codes seen, error fields)."""
    codes: list[int] = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(startup_message(user=user, database="postgres"))
        upstream = UpstreamLogin(user, password)
        while True:
            type_, payload = read_message(sock)
            if type_ == b"R":
                codes.append(read_authentication(payload)[0])
                reply = upstream.receive(payload)
                if reply is not None:
                    sock.sendall(frame(*reply))
            elif type_ == b"E":
                return codes, error_fields(payload)
            elif type_ == b"Z":
                assert upstream.done
                sock.sendall(frame(b"X", b""))
                return codes, None


@pytest.fixture(scope="module")
def hba_port() -> Iterator[int]:
    """A private cluster whose pg_hba.conf demands passwords from the HBA_ROLES."""
    with password_cluster(HBA_ROLES, name="dbsight-auth-test") as cluster:
        yield cluster.port


@pytest.mark.parametrize(
    ("role", "first_code"),
    [("dbsight_auth_scram", 10), ("dbsight_auth_md5", 5), ("dbsight_auth_cleartext", 3)],
)
def test_upstream_login_to_real_server(hba_port: int, role: str, first_code: int) -> None:
    codes, error = login(hba_port, role, HBA_ROLES[role][2])
    assert error is None
    assert codes[0] == first_code and codes[-1] == 0
    if first_code == 10:
        assert codes == [10, 11, 12, 0]


@pytest.mark.parametrize("role", list(HBA_ROLES))
def test_upstream_login_with_wrong_password_gets_28p01(hba_port: int, role: str) -> None:
    _codes, error = login(hba_port, role, "not it")
    assert error is not None and error["C"] == "28P01"
    assert error["M"] == f'password authentication failed for user "{role}"'


# ------------------------------------------------------------------ real clients, our server


class StandInServer:
    """A loopback server that authenticates with ``ClientAuthExchange`` and then idles."""

    def __init__(self, users: UsersFile, method: str | None) -> None:
        self.users = users
        self.method = method
        self.failures: list[AuthenticationFailed] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack(">i", await reader.readexactly(4))
                body = await reader.readexactly(length - 4)
                if struct.unpack(">i", body[:4])[0] in (SSL_REQUEST, GSSENC_REQUEST):
                    writer.write(b"N")
                    continue
                break
            user = parse_startup(body)["user"]
            exchange = ClientAuthExchange(user, self.users.lookup(user), method=self.method)
            pending = exchange.start()
            try:
                while True:
                    writer.write(b"".join(frame(*message) for message in pending))
                    if exchange.done:
                        break
                    type_ = await reader.readexactly(1)
                    assert type_ == b"p"
                    (length,) = struct.unpack(">i", await reader.readexactly(4))
                    pending = exchange.receive(await reader.readexactly(length - 4))
            except AuthenticationFailed as exc:
                self.failures.append(exc)
                writer.write(error_response(exc.sqlstate, exc.message))
                return
            for name, value in (
                ("server_version", "15.0"),
                ("server_encoding", "UTF8"),
                ("client_encoding", "UTF8"),
                ("DateStyle", "ISO, MDY"),
                ("TimeZone", "UTC"),
                ("integer_datetimes", "on"),
                ("standard_conforming_strings", "on"),
            ):
                writer.write(frame(b"S", name.encode() + b"\0" + value.encode() + b"\0"))
            writer.write(frame(b"K", struct.pack(">ii", 4242, 1234)))
            writer.write(frame(b"Z", b"I"))
            await writer.drain()
            assert await reader.readexactly(1) == b"X"  # the clients only say goodbye
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def connect_psycopg(port: int, user: str, password: str) -> None:
    conn = await psycopg.AsyncConnection.connect(
        host="127.0.0.1", port=port, user=user, password=password, dbname="app",
        sslmode="disable", gssencmode="disable", connect_timeout=10,
    )  # fmt: skip
    await conn.close()


async def connect_asyncpg(port: int, user: str, password: str) -> None:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, user=user, password=password, database="app", ssl=False,
        timeout=10,
    )  # fmt: skip
    await conn.close(timeout=5)


CLIENTS = {"psycopg": connect_psycopg, "asyncpg": connect_asyncpg}


@pytest.fixture
async def users_from_server(pg_admin_dsn: str, roles: dict[str, str]) -> UsersFile:
    """A users file with the secrets PostgreSQL stored, plus a plaintext entry."""
    scram = await fetch_credential(pg_admin_dsn, roles["scram"])
    md5 = await fetch_credential(pg_admin_dsn, roles["md5"])
    assert scram is not None and md5 is not None
    text = (
        f'"scram" "{scram.secret}"\n"md5" "{md5_secret("md5", MD5_PASSWORD)}"\n"plain" "pl""ain"\n'
    )
    return UsersFile.parse(text)


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize(
    ("method", "user", "password"),
    [
        (None, "scram", SCRAM_PASSWORD),
        (None, "md5", MD5_PASSWORD),
        (None, "plain", 'pl"ain'),
        ("md5", "plain", 'pl"ain'),
        ("password", "scram", SCRAM_PASSWORD),
        ("password", "md5", MD5_PASSWORD),
    ],
)
async def test_real_clients_authenticate_against_client_auth_exchange(
    users_from_server: UsersFile, client: str, method: str | None, user: str, password: str
) -> None:
    stand_in = StandInServer(users_from_server, method)
    server = await asyncio.start_server(stand_in.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await CLIENTS[client](port, user, password)
        with pytest.raises((psycopg.OperationalError, asyncpg.InvalidPasswordError)) as info:
            await CLIENTS[client](port, user, password + "x")
        assert 'password authentication failed for user "' + user in str(info.value)
        with pytest.raises((psycopg.OperationalError, asyncpg.InvalidPasswordError)):
            await CLIENTS[client](port, "nobody", password)
    finally:
        server.close()
        await server.wait_closed()
    assert [failure.sqlstate for failure in stand_in.failures] == ["28P01", "28P01"]
