"""What the per-statement path asks of the runtime: the monotonic clock (the one
`time.perf_counter` and `time.monotonic` read on Linux), a context variable's value, a
text's digits zeroed (its key in a shape cache) or compared with another's but for them, a
message spliced from a client's (a Bind with its statement renamed), a slice of bytes,
whether some bytes hold a ``/*`` comment's start, a statement's or portal's name as text,
a send and a receive on a socket that never block, a socket watched by an epoll for its
receiver and the receivers of the sockets it finds ready, and a double appended to an array
of them.

Compiled modules cimport the ``.pxd`` next to this file instead: there the clock is one
``clock_gettime``, the context variable one ``PyContextVar_Get``, the zeroing and the
comparison one loop over the bytes, the splice and the slice one allocation each, the look
for ``/*`` one ``memchr`` per slash, a name one hash and one comparison with a name decoded
before (no decoding again), the send one ``send(2)``, the receive one ``recv(2)`` into a
buffer of the module's (copied into the bytes returned), the epoll given the receiver
itself with the socket (``epoll_ctl``) and asked with one ``epoll_wait`` that gives the
receivers back (no descriptor made into an int and looked up), the double stored in the
array's buffer (grown as its ``append`` grows it), with no Python call; the results are the
same (the clock's seconds are computed as CPython computes them). This module is what the
same sources use as Python.
"""

from __future__ import annotations

import os
import select
from array import array
from contextvars import ContextVar
from time import monotonic, perf_counter
from typing import Any

__all__ = [
    "address", "commented", "context_value", "message_with", "monotonic", "name_text",
    "perf_counter",
    "ready", "recv", "same_shape", "send", "sliced", "watch", "zeroed",
]  # fmt: skip

_ZEROS = bytes.maketrans(b"123456789", b"000000000")


def context_value(var: ContextVar[Any]) -> Any:
    """``var.get()``: its value, else its default, else None."""
    try:
        return var.get()
    except LookupError:
        return None


def address(obj: object) -> int:
    """Where ``obj`` lives: ``id(obj)`` (compiled, the pointer itself, no int made)."""
    return id(obj)


def zeroed(text: bytes) -> bytes:
    """``text`` with every digit turned into ``0``."""
    return text.translate(_ZEROS)


def same_shape(a: bytes, b: bytes) -> bool:
    """Whether ``a`` and ``b`` differ in their digits alone (their `zeroed` texts are equal)."""
    return len(a) == len(b) and a.translate(_ZEROS) == b.translate(_ZEROS)


def message_with(
    t: int, buf: bytes, start: int, j: int, middle: bytes, k: int, end: int
) -> bytes:
    """The protocol message of type ``t`` whose body is ``buf[start:j] + middle +
    buf[k:end]`` (the caller has checked ``start <= j <= k <= end <= len(buf)``)."""
    length = 4 + (j - start) + len(middle) + (end - k)
    return b"".join((bytes((t,)), length.to_bytes(4, "big"), buf[start:j], middle, buf[k:end]))


def sliced(buf: bytes, start: int, end: int) -> bytes:
    """``buf[start:end]``, for ``start >= 0`` and ``end >= 0``."""
    return buf[start:end]


def commented(buf: bytes, start: int, end: int) -> bool:
    """Whether ``buf[start:end]`` holds ``/*`` (for ``start >= 0`` and ``end >= 0``)."""
    return buf.find(b"/*", start, end) >= 0


def name_text(buf: bytes, start: int, end: int) -> str:
    """``buf[start:end]`` (a statement's or a portal's name) as text, undecodable bytes kept
    as surrogates (``surrogateescape``)."""
    return buf[start:end].decode("utf-8", "surrogateescape")


def send(fd: int, data: bytes) -> int:
    """Write ``data`` to the non-blocking socket ``fd``: how many bytes went (0: none could,
    its buffer is full), -1 on an error (left for the socket's transport to find again)."""
    try:
        return os.write(fd, data)
    except (BlockingIOError, InterruptedError):
        return 0
    except OSError:
        return -1


RECV_SIZE = 262144  # (uvloop's read buffer's size too)


def recv(fd: int) -> bytes | None:
    """Read what the non-blocking socket ``fd`` holds, up to `RECV_SIZE` bytes: None when
    nothing is there yet; ``b""`` at the end of its stream or on an error (left for the
    socket's transport to find again)."""
    try:
        return os.read(fd, RECV_SIZE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def watch(epoll: Any, epfd: int, fd: int, receiver: object) -> None:
    """``fd`` watched for reading by ``epoll`` (a `select.epoll` whose descriptor is
    ``epfd``) for ``receiver``."""
    epoll.register(fd, select.EPOLLIN)


def ready(epoll: Any, epfd: int, receivers: dict[int, Any]) -> list[Any]:
    """The receivers (``receivers``, by descriptor) of the sockets ``epoll`` finds readable
    now, without waiting (at most 64)."""
    return [receivers[fd] for fd, _ in epoll.poll(0, 64)]


# ``values.append(value)`` for an ``array("d")``: its method itself, called with no Python
# frame in between (a caller's load of the array and this append stay one step for threads)
append_double = array.append
