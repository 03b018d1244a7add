"""The bench's floor: bytes relayed by C code that uvloop wakes, as dbsight's relays are woken.

``bench/bare_forwarder.py`` relays through uvloop's transports, one Python call and one bytes
object per chunk; this relays through ``bench/c_relay.pyx`` (compiled with Cython when
the relay starts): the sockets in one epoll the loop watches, each ready one read and written
to its peer in C, nothing of Python's per chunk. Python accepts clients and connects them to
the server, one server connection per client. So the ratio dbsight/bare-c-relay says what
dbsight's Python work per statement costs over the least a relay on this event loop can cost,
and bare-c-relay/PgBouncer what is left for the machine and the loop. Written for the bench,
not shipped.

    python bench/bare_c_relay.py --listen 127.0.0.1:PORT --upstream HOST_OR_SOCKETDIR:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import socket
import sys
from pathlib import Path


def _relay_module():  # noqa: ANN202 - a module compiled at run time
    """``c_relay.pyx``, copied into the working directory (the bench's own) and compiled
    there."""
    import pyximport

    here = Path.cwd()
    shutil.copy(Path(__file__).with_name("c_relay.pyx"), here / "c_relay.pyx")
    sys.path.insert(0, str(here))
    pyximport.install(build_dir=str(here / "build"), language_level=3)
    import c_relay

    return c_relay


def _connect(upstream: str) -> socket.socket:
    host, port = upstream.rsplit(":", 1)
    if host.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(f"{host}/.s.PGSQL.{port}")
    else:
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


async def serve(listen: str, upstream: str) -> None:
    relay = _relay_module()
    loop = asyncio.get_running_loop()
    loop.add_reader(relay.fileno(), relay.readable)
    host, port = listen.rsplit(":", 1)
    listener = socket.create_server((host, int(port)), backlog=1024)
    listener.setblocking(False)

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setblocking(False)
            try:
                server = _connect(upstream)
            except OSError:
                client.close()
                continue
            relay.add_pair(client.detach(), server.detach())

    loop.add_reader(listener.fileno(), accept)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    loop.remove_reader(listener.fileno())
    listener.close()


def main() -> None:
    # the bench's folder is not a place to import from (its http.py would shadow the package)
    folder = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != folder]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--upstream", required=True, help="HOST:PORT or SOCKET_DIR:PORT")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # (the bench's machines have it: the figures are uvloop's)
        asyncio.run(serve(args.listen, args.upstream))
    else:
        uvloop.run(serve(args.listen, args.upstream))


if __name__ == "__main__":
    main()
