"""``{prefix}/alerts/silences``: the notifier's silences over HTTP.

    GET    {prefix}/alerts/silences        the silences in force or pending
    POST   {prefix}/alerts/silences        a new one (201, the silence with its id)
    GET    {prefix}/alerts/silences/{id}   one of them (404 when it is unknown or ended)
    DELETE {prefix}/alerts/silences/{id}   expire it now

A POST body is Alertmanager's silence shape: ``matchers`` (``name``, ``value``, ``isRegex``,
``isEqual``), ``startsAt`` (default now) and ``endsAt`` or ``duration`` (``"2h"``), and
``createdBy``, ``comment``. Bad input is a 400 naming the problem.

Who may change them: with an admin token set, the endpoints' bearer check already applies to
every request. With none, a POST or DELETE is accepted only from a loopback client and
refused 403 otherwise: an open, reachable endpoint must not let anyone mute the alerts.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from .._asgi_types import Receive, Scope

SILENCES_PATH = "/alerts/silences"
MAX_BODY = 64 * 1024
_FIELDS = {"matchers", "startsAt", "endsAt", "duration", "createdBy", "comment"}

Answer = tuple[int, dict[str, Any], bytes | None]  # status, JSON document, Allow header


def loopback_client(scope: Scope) -> bool:
    """Whether the request comes from this machine's loopback (IPv4, IPv6 or v4-mapped)."""
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(str(client[0]))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


async def handle(scope: Scope, receive: Receive, rest: str, token_set: bool) -> Answer:
    """Answer a request to ``{prefix}/alerts/silences`` + ``rest`` ("" or "/{id}")."""
    from ..notify import silences

    method = scope["method"]
    silence_id = rest.removeprefix("/")
    allow = b"GET, HEAD, DELETE" if silence_id else b"GET, HEAD, POST"
    if method not in allow.decode().split(", "):
        return 405, {"error": "method not allowed"}, allow
    if method in ("POST", "DELETE") and not token_set and not loopback_client(scope):
        return 403, {"error": "changing silences needs an admin token (admin_token) or a "
                              "request from loopback"}, None  # fmt: skip
    if not silence_id:
        if method == "POST":
            return await _create(receive)
        return 200, {"silences": [silence.to_dict() for silence in silences.list()]}, None
    if method == "DELETE":
        try:
            expired = silences.expire(silence_id)
        except OSError as exc:  # the shared file (multiprocess directory) cannot be written
            return 503, {"error": f"cannot store the silences: {exc}"}, None
        if not expired:
            return 404, {"error": f"no silence {silence_id} in force"}, None
        return 200, {"id": silence_id, "status": {"state": "expired"}}, None
    found = silences.get(silence_id)
    if found is None:
        return 404, {"error": f"no silence {silence_id} in force"}, None
    return 200, found.to_dict(), None


async def _create(receive: Receive) -> Answer:
    from ..notify import silences

    body = await _body(receive)
    if body is None:
        return 413, {"error": f"the body is larger than {MAX_BODY} bytes"}, None
    try:
        document = json.loads(body)
    except ValueError as exc:
        return 400, {"error": f"the body is not JSON: {exc}"}, None
    try:
        silence = silence_from_document(document)
    except ValueError as exc:
        return 400, {"error": str(exc)}, None
    try:
        silences.put(silence)
    except OSError as exc:  # the shared file (multiprocess directory) cannot be written
        return 503, {"error": f"cannot store the silence: {exc}"}, None
    return 201, silence.to_dict(), None


def silence_from_document(document: object) -> Any:
    """The `Silence` a POST body describes; a ValueError names what is wrong."""
    import time

    from ..notify._silence import Matcher, new_silence, parse_duration, parse_time

    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object with matchers and endsAt or duration")
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; "
                         f"expected {', '.join(sorted(_FIELDS))}")  # fmt: skip
    matchers = document.get("matchers")
    if not isinstance(matchers, list) or not matchers:
        raise ValueError("matchers must be a non-empty list of {name, value, isRegex, isEqual}")
    parsed = [Matcher.from_api(matcher) for matcher in matchers]
    starts_at = None
    if document.get("startsAt") is not None:
        starts_at = _time_field(document, "startsAt", parse_time)
    has_end, has_duration = document.get("endsAt") is not None, "duration" in document
    if has_end == has_duration:
        raise ValueError("give endsAt or duration (one of them)")
    if has_end:
        ends_at = _time_field(document, "endsAt", parse_time)
    else:
        start = time.time() if starts_at is None else starts_at
        ends_at = start + _time_field(document, "duration", parse_duration)
    texts = {}
    for name in ("comment", "createdBy"):
        value = document.get(name, "")
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string (got {value!r})")
        texts[name] = value
    return new_silence(
        parsed, ends_at=ends_at, starts_at=starts_at, comment=texts["comment"],
        created_by=texts["createdBy"],
    )  # fmt: skip


def _time_field(document: dict[str, Any], name: str, parse: Any) -> float:
    try:
        return float(parse(document[name]))
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


async def _body(receive: Receive) -> bytes | None:
    """The request body, or None once it exceeds `MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
