"""The JSON endpoints the dashboard adds to `Endpoints` (same token, same GET/HEAD rule):
``/metrics/statement?fingerprint=``, ``/metrics/timeline`` and ``/metrics/insights``.
Each returns ``(status, body, content type)`` as `Endpoints`' own handlers do."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import parse_qs

from .._asgi_types import Scope
from .._runtime import get_runtime
from ._insights import insights_document
from ._statement import statement_document
from ._timeline import timeline

JSON = "application/json"
# A fingerprint is a short hexadecimal id; anything else is a mistake of the caller.
_FINGERPRINT = re.compile(r"[0-9a-zA-Z_-]{1,64}")


def _dumps(document: Any) -> bytes:
    return json.dumps(document, default=str, separators=(",", ":")).encode()


async def statement_endpoint(scope: Scope) -> tuple[int, bytes, str]:
    """400 without a well-formed ``fingerprint``, 404 when no statistics hold it."""
    query = parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"))
    fingerprint = query.get("fingerprint", [""])[-1]
    if not _FINGERPRINT.fullmatch(fingerprint):
        return 400, _dumps({"error": "fingerprint must be a statement's fingerprint"}), JSON
    document = await asyncio.to_thread(statement_document, get_runtime(), fingerprint)
    if document is None:
        return 404, _dumps({"error": f"no statement with fingerprint {fingerprint}"}), JSON
    return 200, _dumps(document), JSON


async def timeline_endpoint(scope: Scope) -> tuple[int, bytes, str]:
    runtime = get_runtime()
    document = await asyncio.to_thread(timeline().document, runtime)
    return 200, _dumps(document), JSON


async def insights_endpoint(scope: Scope) -> tuple[int, bytes, str]:
    return 200, _dumps(insights_document()), JSON
