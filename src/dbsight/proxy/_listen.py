"""The proxy's listening sockets: clients (``listen``) and the admin port (``admin``).

A socket that cannot be had (the port is taken, the address is not this machine's, a port
below 1024 without the privilege) is a `ListenError` whose message is the one line the
command prints: which address, for what, and why.
"""

from __future__ import annotations

import errno
import os
import socket

_HINTS = {
    errno.EADDRINUSE: "another process holds the port; choose another with {option}",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's",
    errno.EACCES: "ports below 1024 need privileges; choose another with {option}",
}


class ListenError(Exception):
    """The proxy cannot listen where it was asked to; ``str()`` says where and why."""

    def __init__(self, message: str, address: tuple[str, int]) -> None:
        super().__init__(message)
        self.address = address


def address_text(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_error(exc: OSError, host: str, port: int, what: str, option: str) -> ListenError:
    """``exc`` (from binding ``host:port`` for ``what``) as a one-line `ListenError`;
    ``option`` is the setting that chose the address (``--listen``)."""
    code = exc.errno
    reason = os.strerror(code).lower() if code else (exc.strerror or str(exc))
    if isinstance(exc, socket.gaierror):
        reason = f"cannot resolve {host!r} ({exc.strerror})"
    hint = _HINTS.get(code or 0)
    if hint and not isinstance(exc, socket.gaierror):
        reason = f"{reason} ({hint.format(option=option)})"
    return ListenError(
        f"dbsight proxy: cannot listen for {what} on {address_text(host, port)}: {reason}",
        (host, port),
    )


def bind_socket(host: str, port: int, what: str, option: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (port 0: a free one); raises
    `ListenError`."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise listen_error(exc, host, port, what, option) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise listen_error(exc, host, port, what, option) from None
    return sock
