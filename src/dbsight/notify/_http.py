"""POST a JSON document with the standard library, classifying the failure: an HTTP 5xx or
429, a refused connection or a time-out may pass on a retry; another 4xx will not."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ._receiver import NotifyError

TIMEOUT_S = 10.0
_USER_AGENT = "dbsight-notifier"


def post_json(url: str, document: Any, *, timeout_s: float = TIMEOUT_S) -> bytes:
    """The response body of a 2xx answer; `NotifyError` otherwise."""
    body = json.dumps(document, separators=(",", ":")).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": _USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read(200).decode("utf-8", "replace").strip()
        retryable = exc.code >= 500 or exc.code == 429
        raise NotifyError(
            f"HTTP {exc.code} from {_where(url)}" + (f": {detail}" if detail else ""),
            retryable=retryable,
        ) from None
    except http.client.HTTPException as exc:  # a garbled or cut-off answer: try again
        raise NotifyError(f"{_where(url)} answered badly: {exc!r}", retryable=True) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NotifyError(f"{_where(url)} unreachable: {reason}", retryable=True) from None


def _where(url: str) -> str:
    """The URL without its path: webhook paths hold secrets (Slack's token)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
