"""`SessionRelay`: session mode's relay, one server connection for the client's session.

The client's bytes go to the server as they arrive, once framed (a message cut by a read
waits for its rest) and told to the session's `Exchange`; the server's go to the client as
they arrive, then to the exchange, which matches them to what was asked and records each
statement — the client never waits on that. A client message that breaks the protocol ends
the session (after what came before it went on); a failure of the observation (not of the
relay) stops observing the session (`ClientSession._stop_observing`) and the relay goes on.
Cython compiles this module with the types of its ``.pxd`` (see `dbsight._compiled`); this
source is the fallback.
"""

from __future__ import annotations

import struct
from typing import Any

from .. import _hot
from . import protocol as p
from ._client_frames import CLIENT_TABLE, COPY_DATA, frame_error
from ._exchange import Exchange, TrackingLost
from ._link_relay import Sender

_CLIENT = CLIENT_TABLE
_COPY_DATA = COPY_DATA  # (a C integer when compiled: compared with no object)


class SessionRelay:
    """The relay of one session-mode client (see the module docstring)."""

    def __init__(
        self, session: Any, exchange: Exchange | None, client: Any, server: Any, max_size: int
    ) -> None:
        self.session = session  # a `ClientSession`: its ending and its observation's
        self.exchange = exchange  # None: not observing
        self.client = Sender(client)  # (their transports, written through `Sender`)
        self.server = Sender(server)
        self.max_size = max_size
        self.buffer = b""  # the start of a client message not yet whole

    def client_data(self, data: bytes) -> None:
        """The client's bytes: its whole messages to the server, each told to the exchange."""
        buf = self.buffer + data if self.buffer else data
        n, i = len(buf), 0
        at = _hot.perf_counter()
        exchange = self.exchange
        max_size = self.max_size
        try:
            while n - i >= 5:
                t = buf[i]
                length = (buf[i + 1] << 24) | (buf[i + 2] << 16) | (buf[i + 3] << 8) | buf[i + 4]
                if not _CLIENT[t] or length < 4 or length > max_size:
                    if length >= 0x80000000:  # (an int32 on the wire: said as negative)
                        length -= 0x100000000
                    raise frame_error(buf, i, length, max_size) or p.ProtocolViolation("bad frame")
                end = i + 1 + length
                if end > n:
                    break
                if exchange is not None and t != _COPY_DATA:
                    try:
                        exchange.request(t, buf, i + 5, end, at)
                    except ValueError as exc:  # a body that is not what its type says
                        raise p.ProtocolViolation(
                            f"malformed message of type {bytes([t])!r}: {exc}"
                        ) from None
                    except Exception as exc:  # noqa: BLE001 - the observation's, never the relay's
                        self.stop_observing("client message", exc)
                        exchange = None
                i = end
        except p.ProtocolError as exc:
            if i:
                self.server.write(buf[:i])
            self.session._violation(exc)
            return
        self.buffer = buf[i:] if i < n else b""
        if i:
            self.server.write(buf if i == n else buf[:i])

    def server_data(self, data: bytes) -> None:
        """The server's bytes: to the client as they are, then to the exchange."""
        self.client.write(data)  # as received: the client never waits on parsing
        exchange = self.exchange
        if exchange is None:
            return
        try:
            exchange.answers(data)
        except (TrackingLost, ValueError, struct.error) as exc:
            self.stop_observing("server stream", exc)
            return
        except Exception as exc:  # noqa: BLE001 - the observation's failure, never the relay's
            self.stop_observing("server message", exc)
            return
        session = self.session
        if session._shutting_down and exchange.at_rest:
            session._end_for_shutdown()

    def stop_observing(self, where: str, exc: BaseException) -> None:
        """The observation failed: the relay goes on without it."""
        self.exchange = None
        self.session._stop_observing(where, exc)
