"""JSON encoding of the values the features keep in Redis: compact, UTF-8, and a clear
``TypeError`` naming the feature (never the value) for what JSON cannot hold."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable: {exc}") from exc


def loads(raw: bytes | str) -> Any:
    """Raises ``ValueError`` (json.JSONDecodeError or UnicodeDecodeError) for a corrupt value."""
    return json.loads(raw)
