"""Reading a running instance's endpoints from outside: ``/metrics`` filtered by family and
``/health/ready`` as a verdict, for ``dbsight metrics --url`` and ``dbsight health --url``.

The standard library's HTTP client on purpose: a readiness probe in a slim container should
not need an extra package. Every failure is one `RemoteError` whose message is the line the
user sees (the address, the status, the token), never a traceback.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

METRICS_PATH = "/metrics"
READY_PATH = "/health/ready"


class RemoteError(Exception):
    """The endpoint could not be read; ``str()`` is the one line for the user."""


class UsageError(ValueError):
    """A bad argument (the URL, the pattern): the command exits 2."""


def endpoint_url(base: str, path: str) -> str:
    """``base`` (a service's or the admin port's base URL, with any path prefix its endpoints
    are mounted under) joined with ``path``, unless it already ends with it."""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--url must be an http:// or https:// URL (got {base!r})")
    if parts.query or parts.fragment:
        raise UsageError(f"--url must not have a query or fragment (got {base!r})")
    root = base.rstrip("/")
    return root if root.endswith(path) else root + path


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str


def fetch(
    url: str,
    *,
    token: str | None,
    timeout_s: float,
    accept: str,
    method: str = "GET",
    document: Any = None,
) -> Answer:
    """``method`` (GET) ``url``, with ``document`` as a JSON body when given; an HTTP error
    status is an `Answer` too (the caller decides), a connection failure is a `RemoteError`.
    Redirects are not followed: the token is for the address the user gave."""
    headers = {"Accept": accept, "User-Agent": "dbsight-cli"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if document is not None:
        data = json.dumps(document).encode()
        headers["Content-Type"] = "application/json"
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return Answer(
                response.status, response.read(), response.headers.get("content-type", "")
            )
    except urllib.error.HTTPError as exc:
        body = exc.read() if exc.fp is not None else b""
        return Answer(exc.code, body, exc.headers.get("content-type", "") if exc.headers else "")
    except TimeoutError:
        raise RemoteError(f"no answer from {url} within {timeout_s:g}s") from None
    except urllib.error.URLError as exc:
        raise RemoteError(f"cannot connect to {url}: {_reason(exc.reason)}") from None
    except (OSError, ValueError) as exc:  # reset mid-answer, a bad port number ...
        raise RemoteError(f"request to {url} failed: {_reason(exc)}") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx reaches the caller as an HTTPError


def _reason(reason: object) -> str:
    return str(reason) or type(reason).__name__


def status_error(url: str, answer: Answer) -> RemoteError:
    if answer.status in (401, 403):
        return RemoteError(
            f"{url} answered {answer.status}: a token is required or was refused (--token)"
            + _error_text(answer, " ")
        )
    if answer.status == 404:
        return RemoteError(
            f"{url} answered 404: is it a dbsight service or the proxy's admin port?"
        )
    excerpt = _error_text(answer, "") or " ".join(
        answer.body[:200].decode("utf-8", "replace").split()
    )
    return RemoteError(f"{url} answered {answer.status}" + (f": {excerpt}" if excerpt else ""))


def _error_text(answer: Answer, lead: str) -> str:
    """The ``error`` of a dbsight JSON error answer (``{"error": "..."}``), if it is one."""
    try:
        error = json.loads(answer.body).get("error")
    except (ValueError, AttributeError):
        return ""
    return f"{lead}({error})" if lead and isinstance(error, str) else (
        error if isinstance(error, str) else ""
    )


# -- dbsight metrics ------------------------------------------------------------------------


def compile_match(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--match is not a regular expression: {exc}") from None


def filtered_metrics(
    base: str, *, match: re.Pattern[str] | None, token: str | None, timeout_s: float
) -> tuple[str, int]:
    """The instance's metrics as Prometheus text, only the families whose name (or one of
    whose sample names, e.g. ``..._total``) ``match`` finds; and how many families that is."""
    url = endpoint_url(base, METRICS_PATH)
    answer = fetch(url, token=token, timeout_s=timeout_s, accept="text/plain; version=0.0.4")
    if answer.status != 200:
        raise status_error(url, answer)
    try:
        families = list(text_string_to_metric_families(answer.body.decode("utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RemoteError(f"{url} did not answer Prometheus text: {exc}") from None
    chosen = [family for family in families if match is None or _matches(family, match)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(chosen))
    return generate_latest(registry).decode("utf-8"), len(chosen)


def _matches(family: Metric, match: re.Pattern[str]) -> bool:
    return bool(match.search(family.name)) or any(
        match.search(sample.name) for sample in family.samples
    )


class _Families(Collector):
    """Parsed families handed back to prometheus_client's writer, as they came."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


# -- dbsight health -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    lines: tuple[str, ...]  # one per check: "ok db (1.2 ms)", "fail db: connection refused"


def readiness(base: str, *, token: str | None, timeout_s: float) -> Readiness:
    """Ready exactly when ``/health/ready`` answers 200 with status ok; 503 is an answer
    too (not ready, with the checks that failed), anything else a `RemoteError`."""
    url = endpoint_url(base, READY_PATH)
    answer = fetch(url, token=token, timeout_s=timeout_s, accept="application/json")
    if answer.status not in (200, 503):
        raise status_error(url, answer)
    try:
        document = json.loads(answer.body)
        status = document["status"]
        checks = document.get("checks") or {}
        if not isinstance(checks, dict):
            raise TypeError("checks is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise RemoteError(f"{url} did not answer a dbsight health report: {exc}") from None
    lines = tuple(_check_line(name, result) for name, result in sorted(checks.items()))
    return Readiness(answer.status == 200 and status == "ok", lines)


def _check_line(name: str, result: Any) -> str:
    if not isinstance(result, dict):
        return f"?    {name}"
    status = str(result.get("status", "?"))
    latency = result.get("latency_ms")
    text = f"{status:<4} {name}"
    if isinstance(latency, (int, float)):
        text += f" ({latency:g} ms)"
    if result.get("error"):
        text += f": {result['error']}"
    return text
