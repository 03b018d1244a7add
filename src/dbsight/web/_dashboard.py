"""The live web dashboard's files: a page, a stylesheet and two script modules, served from
the package (no CDN, nothing fetched from elsewhere) under a strict Content-Security-Policy.

    {path}                  index.html (``{path}`` without its slash redirects to it)
    {path}dashboard.css     the report's stylesheet (`dbsight.report._style.CSS`) + the page's
    {path}dashboard.js      the page: routing (``#/statements/<fingerprint>``), polling
    {path}render.js         DOM builders: tables, sparklines, histograms, plan trees

The files hold no data: everything the page shows it fetches from the JSON endpoints
(``{prefix}/metrics/summary`` ...), which want the bearer token when ``admin_token`` is set;
the page asks for the token once and keeps it in ``sessionStorage`` (see
docs/web-dashboard.md). So the files themselves are served without the token: a browser
cannot send a header with a navigation.

The page learns where the endpoints are and what it runs on (``service``, or ``proxy``: the
proxy's admin port, which adds its pools, servers and routing) from two ``<meta>`` tags
filled in when the page is served, not from an inline script (the policy forbids those).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .._asgi_types import Scope, Send

# script-src/style-src 'self': no inline script or style; connect-src 'self': the endpoints.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DEFAULT_PATH = "/dbsight/"
_FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "render.js": ("render.js", "text/javascript; charset=utf-8"),
}


@cache
def _static(name: str) -> bytes:
    data = resources.files("dbsight.web").joinpath("static", name).read_bytes()
    if name == "dashboard.css":  # one stylesheet for the report and the page
        from ..report._style import CSS

        data = CSS.encode() + b"\n" + data
    return data


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: bytes


def _asset(body: bytes, content_type: str) -> Asset:
    return Asset(body, content_type, b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"')


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def dashboard_path(option: bool | str | None) -> str | None:
    """Where ``dashboard=`` puts the page: True/None the default path, a string that path
    (a directory: it ends with ``/``), False nowhere."""
    if option is False:
        return None
    if option is None or option is True:
        return DEFAULT_PATH
    if not isinstance(option, str) or not option.startswith("/"):
        raise ValueError(f"dashboard must be a path starting with '/' or a bool (got {option!r})")
    return option.rstrip("/") + "/"


class Dashboard:
    """The page's files under ``path`` (ending with ``/``), its JSON under ``api_prefix``.

    ``mode`` is ``service`` or ``proxy``. ``enabled`` None: served unless the runtime's
    ``environment`` is ``prod`` (read at each request, so ``configure()`` is followed)."""

    def __init__(
        self, path: str, api_prefix: str, *, mode: str = "service", enabled: bool | None = True
    ) -> None:
        if not path.endswith("/") or not path.startswith("/"):
            raise ValueError(f"the dashboard path must start and end with '/' (got {path!r})")
        self.path = path
        self.api_prefix = api_prefix
        self.mode = mode
        self.enabled = enabled
        self.paths = frozenset(
            [path + name for name in _FILES] + ([path.rstrip("/")] if path != "/" else [])
        )

    def serving(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        from .._runtime import get_runtime

        return get_runtime().settings.environment != "prod"

    def matches(self, path: str) -> bool:
        return path in self.paths and self.serving()

    def asset(self, name: str, root_path: str = "") -> Asset:
        file, content_type = _FILES[name]
        body = _static(file)
        if file == "index.html":
            body = (
                body.replace(b"{{api}}", _attribute(root_path + self.api_prefix).encode())
                .replace(b"{{mode}}", self.mode.encode())
            )
        return _asset(body, content_type)

    async def serve(self, scope: Scope, send: Send, path: str) -> None:
        """Answer ``path`` (one of `paths`, without the root path)."""
        root = scope.get("root_path") or ""
        if path != self.path and not path.startswith(self.path):  # the path without its slash
            await _send(send, 308, b"", [(b"location", (root + self.path).encode())], scope)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await _send(send, 405, b"", [(b"allow", b"GET, HEAD")], scope)
            return
        asset = self.asset(path[len(self.path):], root)
        headers = [
            (b"content-type", asset.content_type.encode()),
            (b"etag", asset.etag),
            # revalidated each time (a 304 when unchanged): a new dbsight never meets old files
            (b"cache-control", b"no-cache"),
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if asset.etag in _header_values(scope, b"if-none-match"):
            await _send(send, 304, b"", headers, scope)
            return
        await _send(send, 200, asset.body, headers, scope)


def _header_values(scope: Scope, name: bytes) -> list[bytes]:
    found: list[bytes] = []
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            found.extend(part.strip() for part in bytes(value).split(b","))
    return found


async def _send(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]], scope: Scope
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    head = scope.get("method") == "HEAD"
    await send({"type": "http.response.body", "body": b"" if head else body})
