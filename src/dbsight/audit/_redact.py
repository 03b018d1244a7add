"""What of an audit record's details and error may be stored: secrets are redacted by key
name, values are made JSON-safe and bounded, and database errors keep only what cannot be a
statement's literal.

Redaction is by key because a secret's value has no recognisable shape: any key whose name
contains one of `SECRET_KEY_PARTS` (case, ``-`` and ``_`` ignored: ``X-Api-Key``,
``client_secret``, ``refreshToken``) has its value replaced by ``"[redacted]"``, at any depth.
Two value shapes are recognisable and masked wherever they appear: a credential in a URL
(``postgresql://user:pw@host``) and an ``Authorization``-style ``Bearer``/``Basic`` value.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from ..core._errors import error_info, error_summary, public_message

REDACTED = "[redacted]"
SECRET_KEY_PARTS: tuple[str, ...] = (
    "password", "passwd", "pwd", "passphrase", "secret", "token", "authorization", "apikey",
    "accesskey", "privatekey", "credential", "cookie", "sessionid", "signature", "jwt", "otp",
    "pin", "ssn", "cvv", "cardnumber",
)  # fmt: skip
# "pin" and "otp" are short: matched as the whole name (or its last word), not inside "shipping"
_WHOLE_WORD_PARTS = frozenset({"pin", "otp", "pwd", "jwt", "ssn", "cvv"})
MAX_DEPTH = 8
MAX_ITEMS = 200
MAX_STRING = 2000
MAX_DETAILS_BYTES = 16_384

_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@"
)
_AUTH_VALUE = re.compile(r"\b(?P<kind>Bearer|Basic|Token|Digest)\s+[A-Za-z0-9._~+/=-]{8,}", re.I)


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


def is_secret_key(key: str) -> bool:
    """Whether a details key names a secret (``password``, ``X-Api-Key``, ``refreshToken``)."""
    words = _words(key)
    joined = "".join(words)
    for part in SECRET_KEY_PARTS:
        if part in _WHOLE_WORD_PARTS:
            if part in words:
                return True
        elif part in joined:
            return True
    return False


def mask_string(value: str) -> str:
    """A string with URL credentials and Authorization-style values masked, cut to
    `MAX_STRING` characters."""
    value = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", value)
    value = _AUTH_VALUE.sub(lambda m: f"{m['kind']} {REDACTED}", value)
    if len(value) > MAX_STRING:
        value = value[:MAX_STRING] + "…"
    return value


def _safe(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN or Infinity
    if isinstance(value, str):
        return mask_string(value)
    if isinstance(value, enum.Enum):
        return _safe(value.value, depth)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"  # binary content is never copied
    if depth >= MAX_DEPTH:
        return "…"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif hasattr(value, "model_dump") and callable(value.model_dump):  # a pydantic model
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index == MAX_ITEMS:
                out["…"] = f"{len(value) - MAX_ITEMS} more"
                break
            name = str(key)
            out[name] = REDACTED if is_secret_key(name) else _safe(item, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        safe = [_safe(item, depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            safe.append(f"… {len(items) - MAX_ITEMS} more")
        return safe
    return mask_string(f"<{type(value).__name__}>")  # an object's repr may hold anything


def redact(details: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``details`` as stored: secrets redacted, values JSON-safe, at most
    `MAX_DETAILS_BYTES` of JSON (past it, only the key names are kept)."""
    if details is None:
        return None
    if not isinstance(details, Mapping):
        raise TypeError(f"audit details must be a mapping, got {type(details).__name__}")
    safe = _safe(details, 0)
    if len(json.dumps(safe, ensure_ascii=False, separators=(",", ":"))) > MAX_DETAILS_BYTES:
        return {"truncated": True, "keys": sorted(safe)[:MAX_ITEMS]}
    return safe


def sanitize_error(error: BaseException | str | None, system: str = "postgresql") -> str | None:
    """An error as stored. An exception becomes its class, SQLSTATE and the part of its
    message that cannot quote a statement's values (as dbsight logs failed statements); a
    text is masked like a details string. Cut to the column's 1000 characters."""
    if error is None:
        return None
    if isinstance(error, BaseException):
        info = error_info(error)
        text = error_summary(info, public_message(info, system))
    else:
        text = str(error)
    text = mask_string(text)
    return text if len(text) <= 1000 else text[:999] + "…"
