"""``cython``, for a module compiled with Cython's decorators where Cython is not installed:
each decorator leaves what it decorates as it is (the same source then runs as Python).
Cython is needed only to build the extensions (see `dbsight._compiled`)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

_T = TypeVar("_T")


def _unchanged(thing: _T) -> _T:
    return thing


def _freelist(size: int) -> Callable[[_T], _T]:
    return _unchanged


cython: Any = SimpleNamespace(cclass=_unchanged, freelist=_freelist)
