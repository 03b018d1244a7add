#!/usr/bin/env python3
"""Generate the reference tables of ``docs/`` from the code, so the pages cannot drift from it.

Tables come from the pydantic models and the command line themselves: names, defaults and
accepted ranges are read from the fields; the meaning from `MEANINGS` below or, for a field
not listed there, from the field's ``description``. Each table sits in a page between two
markers::

    <!-- generated: settings (scripts/gen_docs.py) -->
    ...
    <!-- end generated -->

Blocks (a page may hold any of them, and several pages the same one):

    settings          dbsight.Settings (DBSIGHT_* variables)
    proxy             every key of the proxy's [proxy] table, with its command-line flag
    proxy-server      the keys about listening, TLS, pooling and client authentication
    proxy-routing     the keys about replicas, read-your-writes, health checks, breakers
    proxy-pipeline    the request pipeline's key
    proxy-cache       the result cache's keys
    proxy-capture     the workload capture's keys
    proxy-alerts      the alert keys (the proxy's notifier)
    pipeline-steps    the [[proxy.pipeline]] handlers and their keys
    cache-rule        the keys of a [[proxy.cache]] table
    cli               every dbsight command and its options

Usage, from the repository's root, after changing a setting or an option::

    .venv/bin/python scripts/gen_docs.py           # rewrite the blocks in docs/*.md
    .venv/bin/python scripts/gen_docs.py --check   # exit 1 when a page is out of date

``tests/docs`` runs the check; a field without a description fails it.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
import typer.main
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from dbsight import cli
from dbsight.core._settings import ENV_PREFIX, Settings
from dbsight.proxy._alert_settings import ALERT_SETTINGS
from dbsight.proxy._config import ProxyConfig
from dbsight.proxy._pipeline import AllowStep, FirewallStep, LogStep, RateLimitStep, SampleStep
from dbsight.proxy._result_cache import CacheRule

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[a-z-]+) \(scripts/gen_docs\.py\) -->\n)"
    r"(?P<body>.*?)"
    r"(<!-- end generated -->)",
    re.S,
)

# The meaning of fields whose model has no description (a model's own description wins).
MEANINGS: dict[str, dict[str, str]] = {
    "Settings": {
        "service_name": "Names the service: `service.name` of spans, `app` of events and logs, "
        "`service` of `/metrics/summary`.",
        "environment": "Picks the trace and log sampling rates when they are unset: dev 100 %, "
        "staging 10 %, prod 1 % (metrics are never sampled).",
        "metrics_enabled": "Prometheus metrics (`db_client_*`, `http_server_*`, `cache_*`, "
        "`external_api_*`, `db_client_function_*`).",
        "log_sample_rate": "Share of `dbsight.query` DEBUG lines and `dbsight.access` lines "
        "written; unset: by `environment`. Failed statements and 5xx answers are always logged.",
        "stats_enabled": "The per-fingerprint statistics table (`dbsight.stats`, "
        "`/metrics/summary`).",
        "stats_max_fingerprints": "Fingerprints kept; past it the least significant tenth "
        "(lowest total time) is evicted.",
        "slow_query_threshold_ms": "A statement this slow or slower is logged to the slow-query "
        "log and counted in `db_client_slow_operations_total`.",
        "slow_query_log_max_bytes": "Size at which the slow-query log file is rotated.",
        "slow_query_log_backups": "Rotated slow-query log files kept (`file.1` the newest).",
        "explain_slow_queries": "Add an `EXPLAIN (FORMAT JSON)` plan to slow PostgreSQL "
        "SELECTs, run on a connection of its own.",
        "explain_timeout_ms": "`statement_timeout` of that EXPLAIN.",
        "sqlcommenter": "Append a sqlcommenter comment to each statement sent: `route` (the "
        "route template) or `full` (route, request id, `traceparent`). See [sqlcommenter.md](sqlcommenter.md).",
    },
    "ProxyConfig": {
        "listen": "Address clients connect to (`host:port`, `[v6]:port`).",
        "upstream": "The PostgreSQL server (the primary), as a `postgresql://` URL; the host "
        "may be a Unix-socket directory (`?host=/var/run/postgresql`). Its user and password "
        "are the proxy's own login when it authenticates clients itself.",
        "admin": "Admin HTTP address (`/metrics`, `/metrics/summary`, `/health*`, `/stats/*`); "
        "off when unset.",
        "admin_token": "Bearer token the admin port requires (also `DBSIGHT_ADMIN_TOKEN`).",
        "max_message_size": "Largest protocol message accepted from a client; a bigger one "
        "gets `08P01` and closes that client.",
        "connect_timeout_s": "Time allowed to open a server connection.",
        "shutdown_grace_s": "After SIGTERM or SIGINT, how long running sessions may finish "
        "before they are closed.",
        "tls_cert": "Certificate offered to clients (PEM); TLS is offered when `tls_cert` and "
        "`tls_key` are both set.",
        "tls_key": "Private key of `tls_cert` (PEM).",
        "upstream_tls": "TLS towards the server, as libpq's `sslmode`: `prefer` when the "
        "server offers it, `require` encrypted but not verified, `verify-full` against "
        "`upstream_tls_ca`.",
        "upstream_tls_ca": "CA bundle for `upstream_tls = \"verify-full\"` (required then).",
        "pool_mode": "`session`: one server connection per client session. `transaction`: a "
        "pooled server connection lent per transaction; the proxy authenticates clients.",
        "pool_size": "Server connections per pool: one pool per database and user (per "
        "server, with replicas), whatever startup parameters clients send.",
        "pool_min_size": "Server connections kept open per pool even when idle (at most "
        "`pool_size`).",
        "pool_timeout_s": "How long a client waits for a free server connection; then FATAL "
        "`53300`.",
        "idle_timeout_s": "An idle server connection is closed after this long.",
        "max_lifetime_s": "A server connection is closed once this old (when it is idle).",
        "max_prepared_statements": "Prepared statements a pooled server connection keeps "
        "(clients' statements are prepared on whichever connection runs them); beyond it, "
        "those prepared there longest ago are deallocated while the connection is idle, and "
        "prepared again where a client runs them. Unset: no limit.",
        "auth_type": "How the proxy authenticates clients when it does so itself; anything "
        "but `trust` needs `auth_file` or `auth_query`.",
        "auth_file": "PgBouncer-style users file (`\"user\" \"secret\"` per line: plaintext, "
        "`md5…` or `SCRAM-SHA-256$…`).",
        "auth_query": "Query returning a user's secret, run as the upstream URL's user; takes "
        "the user name as `$1`.",
        "replicas": "Streaming replicas (`postgresql://` URLs) that take provably read-only "
        "work; `--replica` repeatable, or `[[replicas]]` / `[[proxy.replicas]]` tables with "
        "`url = ...`, or a list of URLs.",
        "read_your_writes_s": "After a session writes, its reads stay on the primary this "
        "long, then go only to a replica that had caught up; 0 turns the window off.",
        "read_your_writes_lsn": "Instead of the window: after a writing transaction, reads go "
        "only to a replica that has replayed its WAL position (one more round trip per write).",
        "max_replica_lag_s": "A replica whose replay lags more than this leaves the rotation.",
        "max_replica_lag_bytes": "... or whose replay is this many WAL bytes behind.",
        "health_interval_s": "How often each server is checked (up, lag).",
        "health_timeout_s": "Time allowed for one health check.",
        "breaker_window_s": "Window over which a server's backend failures are counted.",
        "breaker_min_requests": "Requests in the window before the breaker may open.",
        "breaker_error_rate": "Share of failed requests in the window that opens the breaker.",
        "breaker_cooldown_s": "An open breaker lets a trial request through (half-open) after "
        "this long.",
        "pipeline": "The request pipeline: `[[proxy.pipeline]]` tables, in order "
        "([pipeline.md](pipeline.md)).",
        "cache": "Result cache rules: `[[proxy.cache]]` tables ([result-cache.md](result-cache.md)).",
        "cache_max_bytes": "Memory the result cache may hold (least recently used answers go).",
        "capture": "Write the workload (sessions, transactions, statements) to this file as "
        "JSON lines.",
        "capture_max_bytes": "Size at which the capture file is rotated.",
        "capture_backups": "Rotated capture files kept (`file.1` the newest).",
        "capture_params": "Also capture each statement's own text and its parameter values as text "
        "(what `dbsight replay` and the index advisor's real parameters need; literals then reach "
        "the file).",
    },
    "AllowStep": {
        "users": "User names admitted; empty: any.",
        "databases": "Database names admitted; empty: any.",
        "cidrs": "Client networks admitted (`10.0.0.0/8`, `::1`), `\"unix\"` for Unix-socket "
        "clients; empty: any.",
    },
    "RateLimitStep": {
        "per": "Key of the token bucket.",
        "mode": "`reject` over the limit, or `queue`: hold the statement until its token is "
        "due (at most `max_wait_s`).",
    },
    "FirewallStep": {
        "deny_ddl_users": "Users who may not run DDL (`42501`).",
        "deny_unbounded_writes": "Reject UPDATE and DELETE without a WHERE clause that bounds "
        "rows, anywhere in the text (`21000`).",
        "deny_fingerprints": "Statement fingerprints (16 hex digits) to reject (`42501`).",
        "max_rows": "Most rows a statement may return; past it the client gets `54000` and "
        "the statement is cancelled.",
    },
    "SampleStep": {
        "environment": "Rate of this profile: dev 1, staging 0.1, prod 0.01.",
        "rate": "Share of statements kept (give `environment` or `rate`, not both).",
    },
    "LogStep": {
        "logger": "Logger the records go to (JSON lines on stderr when nothing else handles "
        "it).",
        "level": "Level of the records.",
    },
    "CacheRule": {
        "fingerprint": "A statement fingerprint (16 hex digits) whose answers are cached.",
        "table": "A table (`orders`, `shop.orders`; `public.orders` is `orders`) whose reads "
        "are cached.",
        "ttl_s": "How long an answer may be served after it was received.",
    },
}

# What a field accepts where its validators say more than its type and bounds.
ACCEPTS: dict[str, dict[str, str]] = {
    "Settings": {
        "otlp_endpoint": "`http://` or `https://` URL",
        "external_api_services": "JSON object: host (or `host:port`) → name of 1 to 100 "
        "characters",
        "multiprocess_dir": "path of a directory",
    },
    "ProxyConfig": {
        "listen": "`host:port`",
        "admin": "`host:port`",
        "upstream": "`postgresql://` URL",
        "replicas": "list of `postgresql://` URLs",
        "auth_query": "SQL text with `$1`",
    },
    "AllowStep": {"cidrs": "list of networks or `\"unix\"`"},
    "FirewallStep": {"deny_fingerprints": "list of fingerprints (16 hex digits)"},
    "CacheRule": {
        "fingerprint": "16 hex digits",
        "table": "`name` or `schema.name`, unquoted",
    },
}

# Which proxy keys each topic block lists (every key is in exactly one).
PROXY_GROUPS: dict[str, tuple[str, ...]] = {
    "proxy-server": (
        "listen", "upstream", "admin", "admin_token", "max_message_size", "connect_timeout_s",
        "shutdown_grace_s", "tls_cert", "tls_key", "upstream_tls", "upstream_tls_ca",
        "pool_mode", "pool_size", "pool_min_size", "pool_timeout_s", "idle_timeout_s",
        "max_lifetime_s", "max_prepared_statements", "auth_type", "auth_file", "auth_query",
    ),
    "proxy-routing": (
        "replicas", "read_your_writes_s", "read_your_writes_lsn", "max_replica_lag_s",
        "max_replica_lag_bytes", "health_interval_s", "health_timeout_s", "breaker_window_s",
        "breaker_min_requests", "breaker_error_rate", "breaker_cooldown_s",
    ),
    "proxy-pipeline": ("pipeline",),
    "proxy-cache": ("cache", "cache_max_bytes"),
    "proxy-capture": ("capture", "capture_max_bytes", "capture_backups", "capture_params"),
    "proxy-alerts": ALERT_SETTINGS,
}

PIPELINE_STEPS: tuple[type[BaseModel], ...] = (
    AllowStep, RateLimitStep, FirewallStep, SampleStep, LogStep,
)


class MissingMeaning(Exception):
    """A field has neither a description in its model nor an entry in `MEANINGS`."""


# -- cells ----------------------------------------------------------------------------------------


def _code(value: str) -> str:
    return f"`{value}`"


def _plain(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``| None``, and whether None is allowed."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(get_args(annotation))
    return annotation, False


def _bounds(metadata: Iterable[Any]) -> list[str]:
    parts = []
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            parts.append(f"≥ {_number(item.ge)}")
        elif isinstance(item, annotated_types.Gt):
            parts.append(f"> {_number(item.gt)}")
        elif isinstance(item, annotated_types.Le):
            parts.append(f"≤ {_number(item.le)}")
        elif isinstance(item, annotated_types.Lt):
            parts.append(f"< {_number(item.lt)}")
    return parts


def _lengths(metadata: Iterable[Any]) -> str:
    low = next((m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)), 0)
    high = next((m.max_length for m in metadata if isinstance(m, annotated_types.MaxLen)), None)
    if high is not None:
        return f"text of {low} to {high} characters"
    if low:
        return "non-empty text" if low == 1 else f"text of at least {low} characters"
    return "text"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:_}".replace("_", " ") if isinstance(value, int) else f"{value:g}"


def _bytes(value: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


def accepts(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    """What a field accepts: its type, choices and bounds, in words."""
    annotation, optional = _plain(field.annotation)
    special = ACCEPTS.get(model.__name__, {}).get(name)
    if special is not None:
        return special + (", or unset" if optional and field.default is not None else "")
    origin = get_origin(annotation)
    if origin is Literal:
        text = " \\| ".join(_code(str(v)) for v in get_args(annotation))
    elif annotation is bool:
        text = "`true` \\| `false`"
    elif annotation in (int, float):
        kind = "integer" if annotation is int else "number"
        text = " ".join([kind, ", ".join(_bounds(field.metadata))]).strip()
    elif annotation is str:
        text = _lengths(field.metadata)
    elif annotation is SecretStr:
        text = "text (secret: never shown)"
    elif annotation is Path:
        text = "path"
    elif origin is dict:
        text = "JSON object of text → text"
    elif origin is list:
        (item,) = get_args(annotation)
        if get_origin(item) is Annotated:
            item = get_args(item)[0]
        text = "list of texts" if item is str else "list of tables"
    else:
        text = str(annotation)
    return text + (", or unset" if optional and field.default is not None else "")


def default(field: FieldInfo, name: str) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return _code(str(value).lower())
    if isinstance(value, int) and name.endswith("_bytes"):
        return _bytes(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, dict | list):
        return _code("{}" if isinstance(value, dict) else "[]")
    return _code(f'"{value}"')


def meaning(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    text = MEANINGS.get(model.__name__, {}).get(name) or field.description
    if not text:
        raise MissingMeaning(
            f"{model.__name__}.{name} has no description: give the field description=... "
            f"or add it to MEANINGS in scripts/gen_docs.py"
        )
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", ")", "`")) else text + "."


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(c.replace("\n", " ") for c in cells) + " |"


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]
    return "\n".join(lines) + "\n"


# -- blocks ---------------------------------------------------------------------------------------


def settings_table() -> str:
    rows = [
        [_code(name), _code(ENV_PREFIX + name.upper()), default(field, name),
         accepts(Settings, name, field), meaning(Settings, name, field)]
        for name, field in Settings.model_fields.items()
    ]
    return _table(["setting", "variable", "default", "accepts", "meaning"], rows)


def _proxy_flags() -> dict[str, str]:
    """The config key each ``dbsight proxy`` option sets -> the option."""
    command = typer.main.get_command(cli.app).commands["proxy"]  # type: ignore[attr-defined]
    flags = {}
    for param in command.params:
        key = "replicas" if param.name == "replica" else param.name
        if key in ProxyConfig.model_fields:
            flags[key] = param.opts[0]
    return flags


def proxy_table(names: Iterable[str] | None = None) -> str:
    fields = ProxyConfig.model_fields
    flags = _proxy_flags()
    rows = [
        [_code(name), _code(flags[name]) if name in flags else "", default(fields[name], name),
         accepts(ProxyConfig, name, fields[name]), meaning(ProxyConfig, name, fields[name])]
        for name in (names if names is not None else fields)
    ]
    return _table(["key", "flag", "default", "accepts", "meaning"], rows)


def _model_table(model: type[BaseModel], skip: tuple[str, ...] = ()) -> str:
    rows = [
        [_code(name), default(field, name), accepts(model, name, field),
         meaning(model, name, field)]
        for name, field in model.model_fields.items()
        if name not in skip
    ]
    return _table(["key", "default", "accepts", "meaning"], rows)


def _docstring(model: type) -> str:
    return " ".join((model.__doc__ or "").split()).replace("``", "`")


def pipeline_steps() -> str:
    parts = []
    for step in PIPELINE_STEPS:
        handler = step.model_fields["handler"].default
        parts.append(f"**`handler = \"{handler}\"`**: {_docstring(step)}\n\n")
        parts.append(_model_table(step, skip=("handler",)))
        parts.append("\n")
    return "".join(parts).rstrip("\n") + "\n"


def cache_rule() -> str:
    return _model_table(CacheRule)


def _option_default(command: str, param: Any) -> str:
    if getattr(param, "is_flag", False):
        return "on" if param.default is True else "off"
    if param.required:
        return "required"
    if param.default is None:
        # what --help shows when the option names it ("off", "none: the admin port is open")
        shown = param.show_default if isinstance(param.show_default, str) else "unset"
        key = "replicas" if param.name == "replica" else param.name
        if command == "proxy" and key in ProxyConfig.model_fields:  # else the [proxy] value
            field = ProxyConfig.model_fields[key]
            value = "none" if param.multiple else default(field, key)
            return shown if value == "unset" else value
        return shown
    return _code(_number(param.default) if isinstance(param.default, int | float) else
                 str(param.default))


def _option_range(param: Any) -> str:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    parts = []
    if low is not None:
        parts.append(f"≥ {_number(low)}")
    if high is not None:
        parts.append(f"≤ {_number(high)}")
    return ", ".join(parts)


def _commands(group: Any) -> Iterator[tuple[str, Any]]:
    """Each command by its name; a command group (`alerts`) as its subcommands
    (`alerts export`, `alerts list`), at any depth (`alerts silence add`)."""
    for name, command in group.commands.items():
        if getattr(command, "commands", None):
            for sub_name, subcommand in _commands(command):
                yield f"{name} {sub_name}", subcommand
        else:
            yield name, command


def cli_reference() -> str:
    group = typer.main.get_command(cli.app)
    parts = []
    for name, command in _commands(group):
        help_text = (command.help or "").strip().split("\n\n")
        summary = " ".join(help_text[0].split())
        details = " ".join(" ".join(p.split()) for p in help_text[1:])
        usage = " ".join(
            [f"dbsight {name}", "[OPTIONS]" if any(p.param_type_name == "option"
                                                   for p in command.params) else ""]
            + [p.name.upper() if p.required else f"[{p.name.upper()}]"
               for p in command.params if p.param_type_name == "argument"]
        ).strip()
        parts.append(f"### dbsight {name}\n\n`{usage}`: {summary}")
        parts.append(f" {details}\n\n" if details else "\n\n")
        rows = []
        for param in command.params:
            help_ = " ".join((getattr(param, "help", None) or "").split()).replace("\\[", "[")
            if param.param_type_name == "argument":
                rows.append([param.name.upper(), "required" if param.required else "optional",
                             "", help_])
                continue
            flag = ", ".join(_code(o) for o in param.opts)
            if param.multiple and "repeatable" not in help_.lower():
                help_ += " Repeatable."
            if param.envvar:
                help_ += f" Also `{param.envvar}`."
            rows.append([flag, _option_default(name, param), _option_range(param), help_])
        if rows:
            parts.append(_table(["option", "default", "range", "meaning"], rows))
            parts.append("\n")
    return "".join(parts).rstrip("\n") + "\n"


BLOCKS: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "proxy": proxy_table,
    **{name: (lambda keys=keys: proxy_table(keys)) for name, keys in PROXY_GROUPS.items()},
    "pipeline-steps": pipeline_steps,
    "cache-rule": cache_rule,
    "cli": cli_reference,
}


# -- pages ----------------------------------------------------------------------------------------


def render(text: str, source: str = "<page>") -> str:
    """``text`` with every generated block rendered afresh."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise KeyError(f"{source}: unknown generated block {name!r}; known: {sorted(BLOCKS)}")
        return f"{match[1]}\n{BLOCKS[name]()}\n{match[4]}"

    return BLOCK.sub(replace, text)


def blocks_in(text: str) -> list[str]:
    return [match["name"] for match in BLOCK.finditer(text)]


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when a page is stale")
    args = parser.parse_args()
    stale = []
    for page in pages():
        text = page.read_text()
        fresh = render(text, str(page))
        if fresh != text:
            stale.append(page)
            if not args.check:
                page.write_text(fresh)
    for page in stale:
        print(f"{'stale' if args.check else 'updated'}: {page.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
