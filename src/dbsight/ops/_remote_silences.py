"""The silences of a running instance, from outside (``dbsight alerts silence``): its
``/alerts/silences`` endpoint, read and changed with the standard library's HTTP client as
the other remote commands. Failures are `RemoteError`\\ s whose message is the user's line;
`Refused` (a 400: the server would not take the silence) is a usage error."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from ._remote import Answer, RemoteError, endpoint_url, fetch, status_error

SILENCES_PATH = "/alerts/silences"
_JSON = "application/json"


class Refused(RemoteError):
    """The instance refused the silence as invalid (400); the message says why."""


def _base(base: str) -> str:
    """The silences URL of ``base`` (a service or admin port, with any prefix)."""
    return endpoint_url(base, SILENCES_PATH)


def _document(url: str, answer: Answer, expected: tuple[int, ...]) -> dict[str, Any]:
    if answer.status == 400:
        raise Refused(str(status_error(url, answer)))
    if answer.status == 404 and url.rstrip("/").endswith(SILENCES_PATH):
        raise RemoteError(
            f"{url} answered 404: is it a dbsight service (of this version, with its summary "
            "endpoints on) or the proxy's admin port?"
        )
    if answer.status not in expected:
        raise status_error(url, answer)
    try:
        document = json.loads(answer.body)
    except ValueError as exc:
        raise RemoteError(f"{url} did not answer JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RemoteError(f"{url} did not answer a JSON object")
    return document


def add_silence(
    base: str, silence: dict[str, Any], *, token: str | None, timeout_s: float
) -> dict[str, Any]:
    """POST ``silence`` (Alertmanager's shape); the silence as the instance keeps it."""
    url = _base(base)
    answer = fetch(url, token=token, timeout_s=timeout_s, accept=_JSON, method="POST",
                   document=silence)  # fmt: skip
    return _document(url, answer, (201, 200))


def list_silences(base: str, *, token: str | None, timeout_s: float) -> list[dict[str, Any]]:
    url = _base(base)
    answer = fetch(url, token=token, timeout_s=timeout_s, accept=_JSON)
    silences = _document(url, answer, (200,)).get("silences")
    if not isinstance(silences, list):
        raise RemoteError(f"{url} did not answer a list of silences")
    return [silence for silence in silences if isinstance(silence, dict)]


def expire_silence(
    base: str, silence_id: str, *, token: str | None, timeout_s: float
) -> dict[str, Any]:
    """DELETE the silence; a `RemoteError` when the instance has no such silence in force."""
    url = _base(base) + "/" + quote(silence_id, safe="")
    answer = fetch(url, token=token, timeout_s=timeout_s, accept=_JSON, method="DELETE")
    if answer.status == 404:
        raise RemoteError(f"no silence {silence_id} in force at {_base(base)}")
    return _document(url, answer, (200,))


def matcher_text(matcher: dict[str, Any]) -> str:
    """``name="value"`` with the operator the flags say (``=~`` for a regex ...)."""
    regex, equal = bool(matcher.get("isRegex")), matcher.get("isEqual", True) is not False
    op = ("=~" if equal else "!~") if regex else ("=" if equal else "!=")
    return f'{matcher.get("name", "?")}{op}"{matcher.get("value", "")}"'
