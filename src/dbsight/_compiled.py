"""Which of dbsight's modules are also built as compiled extensions, and the switch back.

The build (``setup.py``) compiles the modules listed in `HOT_MODULES` with Cython unless told
not to (``DBSIGHT_BUILD_EXTENSIONS=0`` at install time); each is the same Python source,
typed by a ``.pxd`` file next to it, so an install without the extensions works the same,
only slower. ``DBSIGHT_PURE_PYTHON=1`` in the environment makes an install that has them
import the Python sources instead (a finder put in front of the import system's), which is
how the test suite runs its protocol tests against both variants, and how to rule the
compiled code out when looking into a problem; an editable install whose hot modules were
edited since the build does the same, for all of them. `compiled_modules` says which are in
use.

This module imports nothing of dbsight's: ``setup.py`` reads it before anything is built.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

# The proxy's per-message work, each module typed for Cython by the ``.pxd`` next to it (a
# module compiled untyped runs no faster than CPython's own interpreter runs it): the one-pass
# reading of a server's usual answer, whether a statement may write (asked at a transaction's
# BEGIN and first write), the exchange (`Exchange` as an extension type), what a
# statement changes in a pooled client's session (`StatementEffects`), the client's statement
# names on shared server connections (`StatementNames`), a socket's relay mode (`LinkRelay`),
# a server connection's per-transaction fields (`ServerFields`) and a pooled client's
# (`RoutingFields`, `SettingsFields`, `SessionFields`), the server connection a pooled
# client holds (`Lease`) and its pool (`BackendPool`, and the waiters of its queue), a server's
# circuit breaker, a session's `SessionInfo` (its state set per transaction), and the relays
# that reach them in C: session mode's (`SessionRelay`) and transaction mode's usual units'
# (`PlainRelay`); the lookup of a relayed statement's analysis by its shape; then the
# per-statement observation that every instrument's statements go through: the recorder's
# queue of held statements (`LeanEnding`), the lean path's events (`LeanEvent`, whose C
# fields the others read), and the loops that fold a batch of statements into the statistics
# table, the Prometheus series and the reservoirs of the parameter sampler.
HOT_MODULES: tuple[str, ...] = (
    "dbsight.proxy._plain_answer",
    "dbsight.proxy._writes",
    "dbsight.proxy._exchange",
    "dbsight.proxy._statement_effects",
    "dbsight.proxy._statement_names",
    "dbsight.proxy._link_relay",
    "dbsight.proxy._receiver",
    "dbsight.proxy._server_fields",
    "dbsight.proxy._client_fields",
    "dbsight.proxy._pool_wait",
    "dbsight.proxy._pool",
    "dbsight.proxy._lease",
    "dbsight.proxy._breaker",
    "dbsight.proxy._plain_relay",
    "dbsight.proxy._session_relay",
    "dbsight.proxy._session_info",
    "dbsight.sql._shapes",
    "dbsight.core._held",
    "dbsight.core._lean",
    "dbsight.stats._table_fold",
    "dbsight.export._metrics_fold",
    "dbsight.stats._samples_fold",
)

PURE_PYTHON_VARIABLE = "DBSIGHT_PURE_PYTHON"


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds every hot module's ``.py`` source in place of the extension next to it."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in HOT_MODULES:
            return None
        parent = fullname.rpartition(".")[0]
        search: Any = sys.modules[parent].__path__ if parent in sys.modules else path
        for folder in search or ():
            source = os.path.join(folder, fullname.rpartition(".")[2] + ".py")
            if os.path.exists(source):
                loader = importlib.machinery.SourceFileLoader(fullname, source)
                return importlib.util.spec_from_file_location(fullname, source, loader=loader)
        return None


def _stale(source: str) -> bool:
    """Whether an extension built in the source tree next to ``source`` (the generated C
    is there too: an editable install, not a wheel's files) predates the source's change."""
    stem = source[:-3]
    if not os.path.exists(stem + ".c"):
        return False
    built = [stem + suffix for suffix in importlib.machinery.EXTENSION_SUFFIXES
             if os.path.exists(stem + suffix)]  # fmt: skip
    return bool(built) and os.path.getmtime(source) > max(os.path.getmtime(b) for b in built)


def pure_python_requested() -> bool:
    return os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0")


def edited_since_build() -> list[str]:
    """The hot modules whose source changed after its extension was built (an editable
    install)."""
    package = os.path.dirname(os.path.abspath(__file__))
    return [
        name for name in HOT_MODULES
        if _stale(os.path.join(package, *name.split(".")[1:]) + ".py")
    ]  # fmt: skip


def install() -> None:
    """Called first thing by ``dbsight/__init__``: the hot modules are imported from their
    sources with ``DBSIGHT_PURE_PYTHON`` set, and when any of them was edited since the
    build — all of them then, not that one alone: the extensions use each other's C types,
    and a module imported from its source among compiled ones that use its types fails
    their import (``KeyError: '__pyx_vtable__'``)."""
    if any(isinstance(f, _SourceFirst) for f in sys.meta_path):
        return
    if pure_python_requested() or edited_since_build():
        sys.meta_path.insert(0, _SourceFirst())


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was loaded from a compiled extension."""
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


def compiled_modules() -> list[str]:
    """The hot modules imported so far that run compiled."""
    return [
        name for name in HOT_MODULES if name in sys.modules and is_compiled(sys.modules[name])
    ]

