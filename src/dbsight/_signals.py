"""SIGTERM (``kill``, a container stopping, a service manager) ends a command the way Ctrl-C
does: one ``KeyboardInterrupt`` path that cleans up and exits with the command's own status,
instead of the default action, which kills the process without a word or any cleanup."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``KeyboardInterrupt`` in the main thread."""

    def interrupt(signum: int, frame: object) -> None:
        if callable(signal.getsignal(signal.SIGINT)):
            # Python's handler, or asyncio's, which first cancels the running task
            signal.raise_signal(signal.SIGINT)
        else:  # SIGINT ignored (a background job of a script): interrupt all the same
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
