"""``dbsight alerts silence add|list|expire``: the silences of a running instance (an
instrumented service or the proxy's admin port) through its ``/alerts/silences`` endpoint.

Exit status of each: 0 done; 1 the instance could not be read or refused the request
(unreachable, 401/403 without the right token, no such silence, another error status); 2 a
bad flag (the URL, a matcher, the duration) or a silence the instance refused as invalid.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated, Any, NoReturn

import typer

from ._cli_dashboards import TimeoutOption, TokenOption
from ._cli_help import Command, group, reflow

silence_app = group(
    "silence",
    "Silence dbsight's own alert notifications on a running instance, list and expire "
    "silences.",
)

UrlOption = Annotated[
    str,
    typer.Option(
        help="Base URL of the instance: an instrumented service (with the prefix its "
        "endpoints are under, if any) or the proxy's admin port."
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (Alertmanager's silence shape), not a table.")
]


def _fail(code: int, message: str) -> NoReturn:
    sys.stderr.write(f"dbsight alerts silence: {message}\n")
    raise typer.Exit(code)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a remote call, turning its errors into the documented exit codes."""
    from .ops._remote import RemoteError, UsageError
    from .ops._remote_silences import Refused

    try:
        return function(*args, **kwargs)
    except (UsageError, Refused) as exc:
        _fail(2, str(exc))
    except RemoteError as exc:
        _fail(1, str(exc))


def _print(silences: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(silences, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .ops._remote_silences import matcher_text

    table = Table(box=None, header_style="bold")
    table.add_column("id", no_wrap=True)  # whole: `expire` takes it
    for column in ("matchers", "state", "starts", "ends", "created by", "comment"):
        table.add_column(column, overflow="fold")
    for silence in silences:
        matchers = " ".join(matcher_text(m) for m in silence.get("matchers") or ())
        state = (silence.get("status") or {}).get("state", "")
        table.add_row(*(Text(str(cell)) for cell in (
            silence.get("id", ""), matchers, state, silence.get("startsAt", ""),
            silence.get("endsAt", ""), silence.get("createdBy", ""), silence.get("comment", ""),
        )))  # fmt: skip
    Console().print(table)


def add(
    matcher: Annotated[
        list[str],
        typer.Option(
            "--matcher", "-m", metavar="MATCHER",
            help="A label matcher, repeatable (all must match): alertname=DbsightSlowQuery, "
            "'severity=~warn.*', service!=api, 'route!~/admin/.*'.",
        ),
    ],
    duration: Annotated[
        str, typer.Option(help="How long from now: 2h, 30m, 1h30m, 1d.")
    ] = "2h",
    comment: Annotated[
        str | None, typer.Option(help="Why (shown with the silence).", show_default="none")
    ] = None,
    created_by: Annotated[
        str | None, typer.Option(help="Who.", show_default="your user name")
    ] = None,
    url: UrlOption = "http://127.0.0.1:9187",
    token: TokenOption = None,
    timeout: TimeoutOption = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Silence the notifications of the alerts every --matcher matches, for --duration.

    The instance keeps the silence in memory (shared by its workers through the
    multiprocess directory); it answers with the silence's id, which `expire` takes.
    Changing silences needs --token when the instance has an admin token, and otherwise a
    request from the same machine. Exit status: 0 added, 1 unreachable or refused
    (401/403), 2 a bad matcher, duration or URL.
    """
    from .notify._silence import Matcher, parse_duration
    from .ops._remote_silences import add_silence

    try:
        matchers = [Matcher.parse(text).to_api() for text in matcher]
        parse_duration(duration)
    except ValueError as exc:
        _fail(2, str(exc))
    document = {
        "matchers": matchers,
        "duration": duration,
        "comment": comment or "",
        "createdBy": created_by if created_by is not None else _user(),
    }
    silence = _call(add_silence, url, document, token=token, timeout_s=timeout)
    if as_json:
        sys.stdout.write(json.dumps(silence, indent=2) + "\n")
    else:
        typer.echo(f"silence {silence.get('id')} until {silence.get('endsAt')}")


def list_silences(
    url: UrlOption = "http://127.0.0.1:9187",
    token: TokenOption = None,
    timeout: TimeoutOption = 10.0,
    as_json: JsonOption = False,
) -> None:
    """List the instance's silences in force (and those starting later).

    Exit status: 0 listed (even none), 1 unreachable or refused (401/403), 2 a bad URL.
    """
    from .ops._remote_silences import list_silences as fetch_silences

    _print(_call(fetch_silences, url, token=token, timeout_s=timeout), as_json)


def expire(
    silence_id: Annotated[str, typer.Argument(metavar="ID", help="The silence's id.")],
    url: UrlOption = "http://127.0.0.1:9187",
    token: TokenOption = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """End a silence now: its alerts are notified again.

    Exit status: 0 expired, 1 no such silence in force, unreachable or refused (401/403),
    2 a bad URL.
    """
    from .ops._remote_silences import expire_silence

    _call(expire_silence, url, silence_id, token=token, timeout_s=timeout)
    typer.echo(f"silence {silence_id} expired")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


silence_app.command("add", cls=Command, help=reflow(add.__doc__))(add)
silence_app.command("list", cls=Command, help=reflow(list_silences.__doc__))(list_silences)
silence_app.command("expire", cls=Command, help=reflow(expire.__doc__))(expire)
