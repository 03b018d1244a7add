"""Threads run together, switching as often as the interpreter lets them: the tests of what
several threads do to one object at once."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable


def run_at_once(targets: Iterable[Callable[[], object]]) -> None:
    """Run each of ``targets`` in a thread of its own, all at once, with a switch interval
    of a microsecond (restored after), and wait for them all."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=target) for target in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
