"""A short-lived program for the exit tests of the slow-query log: instrumented psycopg runs one
slow statement, and the program exits at once.

    python slow_exit_app.py DSN [--log PATH] [--dead-explain] [--uninstrument]

``--dead-explain``: the application reaches PostgreSQL through `Blackhole`, which relays its
first connection and leaves every later one (the EXPLAIN's) without an answer, as a database
that went away would. Not a test module: run as a script, and imported for `Blackhole`.
"""

from __future__ import annotations

import argparse
import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class Blackhole:
    """A TCP relay on loopback to ``host:port``: the first connection is relayed both ways,
    the later ones are accepted and never answered."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def dsn(self, dsn: str) -> str:
        parts = urlsplit(dsn)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _accept(self) -> None:
        first = True
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not first:
                self.held.append(client)  # accepted, never answered
                continue
            first = False
            server = socket.create_connection(self.upstream)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for sock in self.held:
            sock.close()


def main() -> None:
    import psycopg

    import dbsight

    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("--log")
    parser.add_argument("--dead-explain", action="store_true")
    parser.add_argument("--uninstrument", action="store_true")
    args = parser.parse_args()
    dsn = args.dsn
    if args.dead_explain:
        parts = urlsplit(dsn)
        dsn = Blackhole(parts.hostname or "127.0.0.1", parts.port or 5432).dsn(dsn)
    dbsight.configure(
        dbsight.Settings(
            slow_query_threshold_ms=100,
            slow_query_log=args.log,
            explain_timeout_ms=30_000,  # a dead database holds the EXPLAIN for long
        )
    )
    conn = psycopg.connect(dsn, autocommit=True)
    handle = dbsight.instrument(conn)
    conn.execute("SELECT pg_sleep(0.2) AS slow_exit")
    if args.uninstrument:
        handle.uninstrument()
        print("uninstrumented", flush=True)


if __name__ == "__main__":
    main()
