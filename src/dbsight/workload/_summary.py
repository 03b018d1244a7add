"""A workload from a running dbsight's ``/metrics/summary``: an instrumented service (the
endpoints its middleware or `dbsight.web.Endpoints` serves) or the proxy's admin port.

The summary's statements are asked for by total time, up to `SUMMARY_LIMIT` of them (the
most a summary lists). Calls, total time, p95, rows, errors and routes come as the service
counted them; the window is that of its statistics (first to last time a statement was
seen). A summary holds normalized statements only: no samples.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from http.client import HTTPException
from typing import Any, Final, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._errors import WorkloadError
from ._filter import UTILITY, is_utility
from ._model import Workload, WorkloadStatement

__all__ = ["SUMMARY_LIMIT", "from_summary", "summary_url"]

SUMMARY_PATH: Final = "/metrics/summary"
SUMMARY_LIMIT: Final = 500  # the most /metrics/summary lists (web._reports.MAX_SUMMARY_TOP)
# Of an answer that is not a summary, this much goes into the message.
_EXCERPT: Final = 120


def summary_url(url: str, limit: int = SUMMARY_LIMIT) -> str:
    """The summary URL of ``url``: a service's or admin port's base URL (``/metrics/summary``
    is appended) or the summary URL itself; ``limit`` and ``order_by=total_time`` are added
    unless the URL sets them."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise WorkloadError(
            f"{url!r} is not an http:// or https:// URL of a dbsight service or proxy admin port"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(SUMMARY_PATH):
        path += SUMMARY_PATH
    query = dict(parse_qsl(parts.query))
    query.setdefault("limit", str(limit))
    query.setdefault("order_by", "total_time")
    return urlunsplit(parts._replace(path=path, query=urlencode(query), fragment=""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # The token is for the address the user gave; a redirect is reported, not followed.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def fetch_summary(url: str, *, token: str | None = None, timeout_s: float = 10.0) -> dict[str, Any]:
    """The ``/metrics/summary`` document of ``url`` (see `summary_url`), checked to be one."""
    target = summary_url(url)
    request = urllib.request.Request(
        target, headers={"Accept": "application/json", "User-Agent": "dbsight-workload"}
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            body = response.read()
            content_type = response.headers.get("content-type") or "no content type"
    except urllib.error.HTTPError as exc:
        _http_error(target, exc)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise WorkloadError(f"no answer from {target} within {timeout_s:g}s") from None
        raise WorkloadError(f"cannot connect to {target}: {_reason(reason)}") from None
    except TimeoutError:
        raise WorkloadError(f"no answer from {target} within {timeout_s:g}s") from None
    except (OSError, HTTPException) as exc:
        raise WorkloadError(f"request to {target} failed: {_reason(exc)}") from None
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WorkloadError(
            f"{target} did not answer JSON ({content_type}): {_excerpt(body)!r}"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("top"), list):
        raise WorkloadError(f"{target} did not answer a dbsight summary (no list of statements)")
    return document


def _http_error(url: str, exc: urllib.error.HTTPError) -> NoReturn:
    status = f"{exc.code} {exc.reason}".strip()
    with exc:
        body = exc.read() if exc.fp is not None else b""
    if exc.code in (401, 403):
        message = f"{url} answered {status}: a token is required or was refused"
    elif exc.code == 404:
        message = f"{url} answered {status}: is it a dbsight service or the proxy's admin port?"
    elif 300 <= exc.code < 400:
        where = exc.headers.get("location") if exc.headers is not None else None
        message = f"{url} answered {status}" + (f" to {where}: use that URL" if where else "")
    else:
        excerpt = _excerpt(body)
        message = f"{url} answered {status}" + (f": {excerpt}" if excerpt else "")
    raise WorkloadError(message) from None


def _excerpt(body: bytes) -> str:
    text = " ".join(body[: _EXCERPT * 4].decode("utf-8", "replace").split())
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def from_summary(url: str, *, token: str | None = None, timeout_s: float = 10.0) -> Workload:
    """The workload a running dbsight reports at ``url`` (see the module docstring); its
    PostgreSQL statements only. `WorkloadError` when it cannot be read."""
    return workload_of_summary(fetch_summary(url, token=token, timeout_s=timeout_s))


def workload_of_summary(document: Mapping[str, Any]) -> Workload:
    """The workload of a ``/metrics/summary`` document already read."""
    skipped: dict[str, int] = {}
    first, last = math.inf, -math.inf
    statements: list[WorkloadStatement] = []
    for entry in document.get("top") or ():
        statement = _statement(entry)
        if statement is None:
            raise WorkloadError("the summary lists a statement without fingerprint or calls")
        system = entry.get("system") or "postgresql"
        if system not in ("postgresql", "postgres"):
            skipped["other_systems"] = skipped.get("other_systems", 0) + 1
            continue
        if is_utility(statement.operation, statement.normalized):
            skipped[UTILITY] = skipped.get(UTILITY, 0) + statement.calls
            continue
        seen = [_float(entry.get(key)) for key in ("first_seen", "last_seen")]
        if seen[0] is not None:
            first = min(first, seen[0])
        if seen[1] is not None:
            last = max(last, seen[1])
        statements.append(statement)
    window = last - first if last > first else None
    workload = Workload.of(statements, window)
    workload.skipped = skipped
    return workload


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _statement(entry: Any) -> WorkloadStatement | None:
    if not isinstance(entry, dict):
        return None
    fingerprint, calls = entry.get("fingerprint"), entry.get("calls")
    if not isinstance(fingerprint, str) or not isinstance(calls, int):
        return None
    rows = entry.get("rows")
    routes = entry.get("routes") or {}
    return WorkloadStatement(
        fingerprint=fingerprint,
        normalized=str(entry.get("normalized") or ""),
        operation=str(entry.get("operation") or "other"),
        tables=tuple(str(t) for t in entry.get("tables") or ()),
        calls=calls,
        total_time_s=_float(entry.get("total_time_s")) or 0.0,
        p95_s=_float(entry.get("p95_s")),
        rows=rows if isinstance(rows, int) and not isinstance(rows, bool) else None,
        errors=int(entry.get("errors") or 0),
        routes={str(r): int(c) for r, c in routes.items()} if isinstance(routes, dict) else {},
        sources=("summary",),
        instrumented=True,
    )
