"""Route templates: which route of a Starlette or FastAPI app a request goes to, as its path
template (``/v1/users/{user_id}``), for metric labels, span names and the request context.

The template is resolved before the app runs, with the routes' own ``matches()`` (what the
router is about to do), so every query of the request already carries it. ``scope["route"]``
would not do: Starlette sets it only while routing, a mounted app overwrites it with its own
route (losing the mount's prefix), and FastAPI's included routers keep their prefix outside
the route object. Walking the routes gives the whole template in each of these cases.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

# The label of requests no route matched (404s, slash redirects): one value, not their paths.
UNMATCHED = "<unmatched>"

_MOUNT_TAIL = "/{path}"


def _expanded(routes: Iterable[Any]) -> Iterator[Any]:
    """``routes`` with FastAPI's included routers replaced by the routes they contribute,
    each carrying the full prefix in its ``path_format`` (FastAPI >= 0.13x keeps an
    included router as one route instead of copying its routes)."""
    iter_route_contexts = None
    for route in routes:
        if getattr(route, "path_format", None) is None and getattr(route, "routes", None) is None:
            if iter_route_contexts is None:
                fastapi_routing = sys.modules.get("fastapi.routing")
                iter_route_contexts = getattr(fastapi_routing, "iter_route_contexts", None)
            if iter_route_contexts is not None:
                yield from iter_route_contexts([route])
                continue
        yield route


def _template(route: Any, scope: dict[str, Any], child: dict[str, Any], prefix: str) -> str | None:
    path_format: str | None = getattr(route, "path_format", None)
    sub_routes = getattr(route, "routes", None)
    if sub_routes is None:  # an endpoint (or websocket) route
        return prefix + path_format if path_format is not None else None
    # A Mount (path_format "<path>/{path}") or a Host (no path_format): continue inside.
    if path_format is not None:
        prefix += path_format.removesuffix(_MOUNT_TAIL)
    if not sub_routes:  # a mounted ASGI app without routes (static files, another framework)
        return prefix + _MOUNT_TAIL
    return resolve_route(sub_routes, {**scope, **child}, prefix)


class _Starlette:
    """Starlette's routing names, imported on first use: dbsight itself never imports a
    web framework."""

    match: Any = None
    literal_prefixed: tuple[type, ...] = ()
    plain_matches: tuple[Any, ...] = ()
    websocket: type = type(None)

    @classmethod
    def load(cls) -> type[_Starlette]:
        if cls.match is None:
            from starlette.routing import Match, Mount, Route, WebSocketRoute

            kinds: list[type] = [Route, WebSocketRoute, Mount]
            route_context = getattr(sys.modules.get("fastapi.routing"), "RouteContext", None)
            if isinstance(route_context, type):
                kinds.append(route_context)
            cls.literal_prefixed = tuple(kinds)
            plain: list[Any] = [Route.matches]
            api_route = getattr(sys.modules.get("fastapi.routing"), "APIRoute", None)
            if isinstance(api_route, type):
                plain.append(getattr(api_route, "matches", None))
            cls.plain_matches = tuple(plain)
            cls.websocket = WebSocketRoute
            cls.match = Match
        return cls


def _route_path(scope: Mapping[str, Any]) -> str:
    """The path the routes match against: ``path`` without ``root_path`` (Starlette's rule)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        if path == root_path:
            return ""
        if path[len(root_path)] == "/":
            return path[len(root_path) :]
    return path


def resolve_route(routes: Iterable[Any], scope: dict[str, Any], prefix: str = "") -> str | None:
    """The template of the route among ``routes`` that will handle ``scope``; None when
    none matches. A partial match (right path, wrong method: a 405) counts, as in Starlette.

    A Starlette route's regex begins with the literal text of its path up to the first
    parameter, so a route whose literal start the path lacks is skipped without calling
    its ``matches()`` (a few microseconds each: the router is about to do the same work).
    """
    names = _Starlette.load()
    full, partial_match = names.match.FULL, names.match.PARTIAL
    literal_prefixed = names.literal_prefixed
    route_path = _route_path(scope)
    partial: tuple[Any, dict[str, Any]] | None = None
    for route in _expanded(routes):
        if isinstance(route, literal_prefixed):
            path_format = getattr(route, "path_format", None)
            if path_format is not None and not route_path.startswith(
                path_format.partition("{")[0]
            ):
                continue
        match, child = route.matches(scope)
        if match is full:
            return _template(route, scope, child, prefix)
        if match is partial_match and partial is None:
            partial = (route, child)
    if partial is not None:
        return _template(partial[0], scope, partial[1], prefix)
    return None


# A capturing group in a route's regex (a float convertor has one), but not an escaped '('.
_CAPTURING = re.compile(r"(?<!\\)\((?!\?)")


class RouteIndex:
    """All of an app's routes in one regular expression, when every route is a plain path
    route (no mounts, hosts or custom ``matches()``): one C-level match finds the first
    route whose path matches, as the router's loop over ``matches()`` would, at a fraction
    of its cost. A request whose first path match refuses its method (a 405, or a later
    route that takes the method) is left to `resolve_route`.

    Paths of routes without parameters (``/health``, ``/ping``) are also kept in a dict,
    when the route is the first match of its own path: one lookup instead of the match."""

    __slots__ = ("routes", "count", "regex", "groups", "static")

    def __init__(self, routes: list[Any]) -> None:
        self.routes = routes
        self.count = len(routes)
        self.regex: re.Pattern[str] | None = None
        # regex group name -> (template, methods) of its route
        self.groups: dict[str, tuple[str, Any]] = {}
        # the path of a route without parameters -> (template, methods)
        self.static: dict[str, tuple[str, Any]] = {}
        parts = []
        websocket = _Starlette.load().websocket
        for i, route in enumerate(_expanded(routes)):
            if isinstance(route, websocket):
                continue  # never matches an HTTP request
            if not _plain(route):
                return  # the slow path for this app
            if route.methods is not None and not route.methods:
                continue
            name = f"r{i}"
            body = route.path_regex.pattern.removeprefix("^").removesuffix("$")
            parts.append(f"(?P<{name}>{_CAPTURING.sub('(?:', re.sub(r'[(][?]P<[^>]+>', '(?:', body))})")
            self.groups[name] = (route.path_format, route.methods)
        try:
            self.regex = re.compile("(?:" + "|".join(parts) + ")\\Z") if parts else None
        except re.error:
            self.regex = None
        if self.regex is not None:
            for name, (template, methods) in self.groups.items():
                if "{" not in template and template not in self.static:
                    match = self.regex.match(template)
                    if match is not None and match.lastgroup == name:
                        self.static[template] = (template, methods)

    def lookup(self, scope: Mapping[str, Any]) -> str | None:
        """The template, `UNMATCHED`, or None when only `resolve_route` can tell."""
        regex = self.regex
        if regex is None:
            return None
        path = _route_path(scope) if scope.get("root_path") else scope["path"]
        found = self.static.get(path)
        if found is None:
            match = regex.match(path)
            if match is None:
                return UNMATCHED
            name = match.lastgroup
            assert name is not None
            found = self.groups[name]
        template, methods = found
        if methods is None or scope.get("method") in methods:
            return template
        return None


def _plain(route: Any) -> bool:
    """A route that matches by its ``path_regex`` and ``methods`` alone (Starlette's Route,
    FastAPI's APIRoute and the routes of its included routers)."""
    if getattr(route, "routes", None) is not None:
        return False
    names = _Starlette.load()
    if not isinstance(getattr(route, "path_regex", None), re.Pattern):
        return False
    if not isinstance(getattr(route, "path_format", None), str):
        return False
    kind = type(route)
    if kind.__name__ == "RouteContext":
        return True
    return getattr(kind, "matches", None) in names.plain_matches


_indexes: dict[int, RouteIndex] = {}
_indexes_lock = threading.Lock()


def _index(routes: list[Any]) -> RouteIndex:
    index = _indexes.get(id(routes))
    if index is None or index.routes is not routes or index.count != len(routes):
        index = RouteIndex(routes)  # built again when routes are added
        with _indexes_lock:
            if len(_indexes) >= 64:
                _indexes.clear()
            _indexes[id(routes)] = index
    return index


def route_of(app: Any, scope: Mapping[str, Any]) -> str:
    """The route template for ``scope`` in ``app`` (anything with ``routes``), or
    `UNMATCHED`. ``scope`` is not modified (FastAPI's routes write to the scope they match)."""
    routes = getattr(app, "routes", None)
    if not routes:
        return UNMATCHED
    if isinstance(routes, list):
        fast = _index(routes).lookup(scope)
        if fast is not None:
            return fast
    found = resolve_route(routes, dict(scope))
    return found if found is not None else UNMATCHED
