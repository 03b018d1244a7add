"""`ObservableRepository`: every public method of a repository object, observed.

    repo = dbsight.ObservableRepository(UserRepository(session))
    await repo.get(1)        # observed as "UserRepository.get"

The proxy forwards every attribute (get, set and delete) to the wrapped object. A public
method (a callable attribute whose name does not start with ``_``, sync or async) comes back
wrapped as if decorated with ``@db_observer(f"{name}.{method}")``; anything else passes
through untouched. ``isinstance(repo, UserRepository)`` holds (``__class__`` reports the
wrapped object's class) and the wrapped object is ``repo.__wrapped__``.
"""

from __future__ import annotations

from typing import Any

from ._decorator import db_observer

_OWN = frozenset(
    ("_ObservableRepository__inner", "_ObservableRepository__name", "_ObservableRepository__cache")
)


class ObservableRepository:
    __slots__ = ("__inner", "__name", "__cache")

    def __init__(self, inner: Any, name: str | None = None) -> None:
        object.__setattr__(self, "_ObservableRepository__inner", inner)
        object.__setattr__(self, "_ObservableRepository__name", name or type(inner).__name__)
        # method name -> (the inner's attribute, its observed wrapper)
        object.__setattr__(self, "_ObservableRepository__cache", {})

    @property
    def __wrapped__(self) -> Any:
        return self.__inner

    @property
    def inner(self) -> Any:
        return self.__inner

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(proxy, InnerClass) holds
        return type(self.__inner)

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self.__inner, attr)
        if attr.startswith("_") or not callable(value) or isinstance(value, type):
            return value
        cached = self.__cache.get(attr)
        if cached is not None and cached[0] == value:
            return cached[1]
        wrapped = db_observer(f"{self.__name}.{attr}")(value)
        self.__cache[attr] = (value, wrapped)
        return wrapped

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr in _OWN:
            object.__setattr__(self, attr, value)
        else:
            setattr(self.__inner, attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self.__inner, attr)

    def __dir__(self) -> list[str]:
        return dir(self.__inner)

    def __repr__(self) -> str:
        return f"<ObservableRepository {self.__name} of {self.__inner!r}>"
