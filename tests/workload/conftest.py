"""Fixtures of the workload tests: a configured dbsight whose statistics start empty."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgi_server import serve_in_thread

import dbsight
from dbsight.core import Settings


@pytest.fixture
def configure() -> Iterator[Callable[..., Any]]:
    """``configure(**settings) -> Runtime``: dbsight configured afresh (no tracing); every
    handle uninstrumented and dbsight unconfigured afterwards."""
    from dbsight import _runtime
    from dbsight.instrument import uninstrument_all

    _runtime.reset()

    def make(**overrides: Any) -> Any:
        overrides.setdefault("tracing_enabled", False)
        return dbsight.configure(Settings(**overrides))

    yield make
    uninstrument_all()
    _runtime.reset()


@pytest.fixture
def serve() -> Callable[[Any], contextlib.AbstractContextManager[str]]:
    """``with serve(app) as url:`` an ASGI app served for real (see `serve_in_thread`)."""
    return functools.partial(serve_in_thread, lifespan="off")
