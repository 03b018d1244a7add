"""Where dbsight's settings come from: ``DBSIGHT_*`` variables of the environment and of ./.env.

Only names with the prefix are read, in any letter case: the rest of an application's ``.env``
(``DATABASE_URL``, ``SECRET_KEY``...) is none of dbsight's business, and its values are
never kept, validated or shown. The environment wins over the file, and an empty value counts
as unset. A ``DBSIGHT_`` name that is no setting (a typo, or a setting of another dbsight
version) is ignored with a warning on the ``dbsight`` logger, once per process, naming the
closest setting; the names other parts of dbsight read (`OTHER_VARIABLES`) are left alone.
"""

from __future__ import annotations

import difflib
import io
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

ENV_PREFIX = "DBSIGHT_"
ENV_FILE = ".env"
ENVIRONMENT = "the environment"

# Read elsewhere, not settings: the CLI's admin token, the embedded servers, the demo
# service, the test fixtures.
OTHER_VARIABLES = frozenset({
    "DBSIGHT_PG_BINDIR", "DBSIGHT_EMBEDDED_DIR", "DBSIGHT_AUDIT_DSN",
    "DBSIGHT_PURE_PYTHON",  # read at import by dbsight._compiled
    "DBSIGHT_BUILD_EXTENSIONS",  # read by setup.py at build time
})
OTHER_PREFIXES = ("DBSIGHT_DEMO_", "DBSIGHT_TEST_")

logger = logging.getLogger("dbsight")
_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Variable:
    """One ``DBSIGHT_`` variable: its name as written, its value, and where it was found."""

    name: str
    value: str
    origin: str  # ENVIRONMENT, or the path of the .env file

    def __str__(self) -> str:
        return f"{self.name} in {self.origin}"


def variable_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def read_variables(fields: Iterable[str], env_file: Path = Path(ENV_FILE)) -> dict[str, Variable]:
    """The variable of each field that has a non-empty one, by field name; warns about the
    ``DBSIGHT_`` names that are no field."""
    by_name = {variable_name(field): field for field in fields}
    found: dict[str, Variable] = {}
    unknown: list[Variable] = []
    # The file first, so that the environment overrides it.
    for variable in (*_prefixed_in_file(env_file), *_prefixed_in_environment()):
        field = by_name.get(variable.name.upper())
        if field is not None:
            if variable.value:
                found[field] = variable
        elif not _read_elsewhere(variable.name.upper()):
            unknown.append(variable)
    for variable in unknown:
        _report_unknown(variable, by_name)
    return found


def _prefixed_in_environment() -> list[Variable]:
    return [
        Variable(name, value, ENVIRONMENT)
        for name, value in os.environ.items()
        if name.upper().startswith(ENV_PREFIX)
    ]


def _prefixed_in_file(path: Path) -> list[Variable]:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return []
    except OSError as exc:
        _warn_once(str(path), "cannot read %s (%s): the DBSIGHT_ settings in it are not applied",
                   path, exc.strerror or type(exc).__name__)
        return []
    # Undecodable bytes elsewhere in the application's file must not stop dbsight.
    text = data.decode("utf-8", errors="replace")
    origin = str(path.resolve())
    return [
        Variable(name, value or "", origin)
        for name, value in dotenv_values(stream=io.StringIO(text)).items()
        if name.upper().startswith(ENV_PREFIX)
    ]


def _read_elsewhere(name: str) -> bool:
    return name in OTHER_VARIABLES or name.startswith(OTHER_PREFIXES)


def _report_unknown(variable: Variable, by_name: dict[str, str]) -> None:
    close = difflib.get_close_matches(variable.name.upper(), by_name, n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else ""
    _warn_once(
        variable.name,
        "%s is not a dbsight setting: ignored%s",
        variable,
        hint,
    )


def _warn_once(key: str, message: str, *args: object) -> None:
    with _reported_lock:
        if (key, message) in _reported:
            return
        _reported.add((key, message))
    logger.warning(message, *args)
