"""`SummaryFetcher`: one GET of ``/metrics/summary`` per instance and poll, every failure turned
into one `SummaryUnavailable` whose message says what to check (the address, the token, the
path). Several instances are merged into one snapshot; one that does not answer is named in
the snapshot (``unavailable``) while the others are shown, and only when none answers is the
poll a failure."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

import httpx

from ._merge import merged_summary
from ._options import TopOptions
from ._snapshot import Snapshot, SummaryError, parse_summary

# Of a response that is not the summary, this much of the body goes into the message.
BODY_EXCERPT = 120


class SummaryUnavailable(Exception):
    """The summary could not be read this time; ``str()`` is the message for the user."""


class SummaryFetcher:
    """Polls ``options.summary_urls`` over keep-alive connections; the bearer token, when
    given, goes with every request (the proxy's admin port may require one). Redirects are
    not followed: the token is for the addresses the user gave."""

    def __init__(self, options: TopOptions) -> None:
        self.urls = options.summary_urls
        headers = {"Accept": "application/json", "User-Agent": "dbsight-top"}
        if options.token:
            headers["Authorization"] = f"Bearer {options.token}"
        self._timeout_s = options.timeout_s
        # The service picks and orders the statements, so that every one of them is a
        # candidate, not only its top 20 by total time.
        self._params = {"limit": str(min(options.limit, 500)), "order_by": options.sort}
        self._client = httpx.Client(headers=headers, timeout=options.timeout_s)

    def fetch(self) -> Snapshot:
        if len(self.urls) == 1:
            document, polled_at = self._document(self.urls[0])
            return parse_summary(document, polled_at)
        documents: list[Any] = []
        failures: list[str] = []
        for url in self.urls:
            try:
                documents.append(self._document(url)[0])
            except SummaryUnavailable as exc:
                failures.append(str(exc))
        if not documents:
            raise SummaryUnavailable("; ".join(failures))
        snapshot = parse_summary(merged_summary(documents), time.monotonic())
        return replace(snapshot, instances=len(documents), unavailable=tuple(failures))

    def _document(self, url: str) -> tuple[Any, float]:
        """One instance's summary, checked (`parse_summary`), and when it arrived."""
        try:
            response = self._client.get(url, params=self._params)
        except httpx.TimeoutException:
            raise SummaryUnavailable(f"no answer from {url} within {self._timeout_s:g}s") from None
        except httpx.ConnectError as exc:
            raise SummaryUnavailable(f"cannot connect to {url}: {_reason(exc)}") from None
        except httpx.HTTPError as exc:
            raise SummaryUnavailable(f"request to {url} failed: {_reason(exc)}") from None
        polled_at = time.monotonic()
        if response.status_code != 200:
            raise SummaryUnavailable(_status_message(url, response))
        try:
            document = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            kind = response.headers.get("content-type") or "no content type"
            raise SummaryUnavailable(
                f"{url} did not answer JSON ({kind}): {_excerpt(response)!r}"
            ) from None
        try:
            parse_summary(document, polled_at)
        except SummaryError as exc:
            raise SummaryUnavailable(f"{url} did not answer a dbsight summary: {exc}") from None
        return document, polled_at

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _status_message(url: str, response: httpx.Response) -> str:
    status = f"{response.status_code} {response.reason_phrase}".strip()
    if response.status_code in (401, 403):
        return f"{url} answered {status}: a token is required or was refused (--token)"
    if response.status_code == 404:
        return f"{url} answered {status}: is it a dbsight service or the proxy's admin port?"
    excerpt = _excerpt(response)
    return f"{url} answered {status}" + (f": {excerpt}" if excerpt else "")


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.content[: BODY_EXCERPT * 4].decode("utf-8", "replace").split())
    return text if len(text) <= BODY_EXCERPT else text[: BODY_EXCERPT - 1] + "…"


def _reason(exc: Exception) -> str:
    # httpx wraps the socket error; its text ("[Errno 111] Connection refused") is the reason
    return str(exc) or type(exc).__name__
