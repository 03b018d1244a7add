"""A pooled client's authentication by the proxy, without sockets: the client's messages
come from a StreamReader fed here and the proxy's answers are read back as frames. A right
password is answered AuthenticationOk, a wrong one is refused (28P01) and anything but a
password message breaks the protocol. The whole login against a real server and real
clients: tests/proxy_server/test_proxy_pooled.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from dbsight.proxy import protocol as p
from dbsight.proxy._client_login import ClientLogin
from dbsight.proxy._config import ProxyConfig
from dbsight.proxy._server_pools import ServerPools
from dbsight.proxy.auth import AUTH_CLEARTEXT, AUTH_OK, read_authentication


class ClientWriter:
    """The client's socket as the login writes to it."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        pass

    def codes(self) -> list[int]:
        codes, i = [], 0
        while i < len(self.data):
            length = int.from_bytes(self.data[i + 1 : i + 5], "big")
            assert self.data[i : i + 1] == b"R"
            codes.append(read_authentication(self.data[i + 5 : i + 1 + length])[0])
            i += 1 + length
        return codes


def _login(tmp_path: Path, *sent: bytes) -> tuple[ClientLogin, ClientWriter, list[str]]:
    users = tmp_path / "userlist.txt"
    users.write_text('"alice" "pw"\n')
    config = ProxyConfig(auth_type="password", auth_file=users)
    reader = asyncio.StreamReader()
    for data in sent:
        reader.feed_data(data)
    reader.feed_eof()
    writer, refused = ClientWriter(), []

    async def refuse(sqlstate: str, message: str) -> None:
        refused.append(sqlstate)

    frontend = p.FrontendParser(max_message_size=config.max_message_size)
    frontend.feed(p.encode(p.StartupMessage({"user": "alice", "database": "appdb"})))
    assert frontend.next_frame() is not None  # (the session read it: the login follows)
    login = ClientLogin(
        config, ServerPools(config), reader, cast(asyncio.StreamWriter, writer), frontend,
        "10.0.0.7", refuse,
    )  # fmt: skip
    return login, writer, refused


def _password(password: str) -> bytes:
    body = password.encode() + b"\0"
    return b"p" + (len(body) + 4).to_bytes(4, "big") + body


async def test_the_right_password_is_answered_authentication_ok(tmp_path: Path) -> None:
    login, writer, refused = _login(tmp_path, _password("pw"))
    assert await login.authenticate("alice", "appdb")
    assert writer.codes() == [AUTH_CLEARTEXT, AUTH_OK] and refused == []


async def test_a_wrong_password_or_an_unknown_user_is_refused(tmp_path: Path) -> None:
    login, writer, refused = _login(tmp_path, _password("nope"))
    assert not await login.authenticate("alice", "appdb")
    assert writer.codes() == [AUTH_CLEARTEXT] and refused == ["28P01"]
    login, writer, refused = _login(tmp_path, _password("pw"))
    assert not await login.authenticate("bob", "appdb")
    assert refused == ["28P01"]


async def test_anything_but_a_password_message_breaks_the_protocol(tmp_path: Path) -> None:
    login, _, _ = _login(tmp_path, p.encode(p.Query("SELECT 1")))
    with pytest.raises(p.ProtocolViolation):
        await login.authenticate("alice", "appdb")


async def test_a_client_that_leaves_mid_login_ends_it(tmp_path: Path) -> None:
    login, _, _ = _login(tmp_path)
    with pytest.raises(asyncio.IncompleteReadError):
        await login.authenticate("alice", "appdb")


async def test_a_startup_without_a_user_is_refused(tmp_path: Path) -> None:
    login, writer, refused = _login(tmp_path)
    assert await login.run(None, "appdb", {}) is None
    assert refused == ["28000"] and writer.data == b""
