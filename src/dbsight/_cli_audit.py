"""``dbsight audit``: read the audit log of a database (``recent``, ``user``, ``entity``,
``failed``, ``report``), create its table (``init``) and apply the retention (``purge``).
Tables on a terminal, ``--json`` for scripts. SQLAlchemy and the database's driver are
imported only when a command runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ._cli_help import Command, group, reflow

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .audit import AuditRecord, ComplianceReport

audit_app = group(
    "audit",
    "The audit log (dbsight.audit): who changed what, when, with what result.",
)

DsnOption = Annotated[
    str,
    typer.Option(
        "--dsn", metavar="URL", envvar="DBSIGHT_AUDIT_DSN",
        help="The database, as a SQLAlchemy URL: postgresql://user@host/db (psycopg), "
        "mysql://user@host/db (PyMySQL), or with a driver (postgresql+psycopg://, "
        "mysql+pymysql://; asyncpg and aiomysql URLs use their sync twin). The variable keeps "
        "a password off the command line.",
    ),
]  # fmt: skip
TableOption = Annotated[
    str, typer.Option("--table", metavar="NAME", help="The audit table's name.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
LimitOption = Annotated[
    int, typer.Option(min=1, max=100_000, help="At most this many records, newest first.")
]

# a URL without a driver gets the one dbsight installs; an async driver its sync twin
_DEFAULT_DRIVERS = {"postgresql": "psycopg", "postgres": "psycopg", "mysql": "pymysql",
                    "mariadb": "pymysql"}  # fmt: skip
_SYNC_TWINS = {"asyncpg": "psycopg", "psycopg_async": "psycopg", "aiomysql": "pymysql",
               "asyncmy": "pymysql", "aiosqlite": "pysqlite"}  # fmt: skip
CONNECT_TIMEOUT_S = 10


def _say(message: str) -> None:
    sys.stderr.write(f"dbsight audit: {message}\n")


def _usage(message: str) -> NoReturn:
    _say(message)
    raise typer.Exit(2)


def _fail(message: str) -> NoReturn:
    _say(message)
    raise typer.Exit(1)


def _first_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    args = inner.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1]  # MySQL drivers: (error code, message)
    else:
        text = str(inner).strip().partition("\n")[0]
    return text or type(inner).__name__


def _engine(dsn: str) -> tuple[sa.Engine, str]:
    """A sync engine for ``dsn`` and the URL to show (without its password)."""
    try:
        import sqlalchemy as sa
    except ModuleNotFoundError:
        _fail("needs SQLAlchemy: pip install 'dbsight[audit]'")
    try:
        url = sa.engine.make_url(dsn)
    except (sa.exc.ArgumentError, ValueError):
        _usage(f"--dsn: {dsn!r} is not a database URL (e.g. postgresql://user@host:5432/db)")
    backend, _, driver = url.drivername.partition("+")
    backend = "postgresql" if backend == "postgres" else backend
    driver = _SYNC_TWINS.get(driver, driver) or _DEFAULT_DRIVERS.get(backend, "")
    url = url.set(drivername=f"{backend}+{driver}" if driver else backend)
    shown = url.render_as_string(hide_password=True)
    connect_args: dict[str, Any] = {}
    if backend in ("postgresql", "mysql", "mariadb"):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        engine = sa.create_engine(url, connect_args=connect_args, poolclass=sa.pool.NullPool)
    except ModuleNotFoundError as exc:
        _fail(f"{shown}: the driver {exc.name!r} is not installed (pip install {exc.name})")
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        _usage(f"--dsn: {_first_line(exc)}")
    return engine, shown


def _table(name: str) -> sa.Table:
    import sqlalchemy as sa

    from .audit import DEFAULT_TABLE_NAME, add_audit_table, audit_log

    return audit_log if name == DEFAULT_TABLE_NAME else add_audit_table(sa.MetaData(), name)


@contextmanager
def _database(dsn: str, table_name: str, *, must_exist: bool = True) -> Iterator[Any]:
    """(engine, table, shown URL) with the database reachable and, unless ``must_exist`` is
    False, the table there; database errors become one line and exit 1."""
    import sqlalchemy as sa

    engine, shown = _engine(dsn)
    table = _table(table_name)
    try:
        try:
            with engine.connect() as connection:
                exists = sa.inspect(connection).has_table(table.name)
        except sa.exc.DBAPIError as exc:
            _fail(f"cannot connect to {shown}: {_first_line(exc)}")
        if must_exist and not exists:
            _fail(
                f"no audit table {table.name!r} in {shown}; create it with "
                f"`dbsight audit init --dsn URL` (or from your migrations: docs/audit.md)"
            )
        try:
            yield engine, table, shown
        except sa.exc.DBAPIError as exc:
            from .audit import sanitize_error

            _fail(f"{shown}: {sanitize_error(exc, engine.dialect.name)}")
    finally:
        engine.dispose()


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_records(records: list[AuditRecord], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps([r.to_dict() for r in records], indent=2,
                                    ensure_ascii=False) + "\n")  # fmt: skip
        return
    if not records:
        typer.echo("no audit records")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold")
    for column in ("time (UTC)", "actor", "operation", "entity", "result", "error", "trace id"):
        table.add_column(column, overflow="fold")
    for r in records:
        entity = r.entity_type + (f":{r.entity_id}" if r.entity_id is not None else "")
        result = Text(r.result, style="red" if r.result == "failure" else "green")
        cells = (_time(r.occurred_at), r.actor, r.operation, entity)
        table.add_row(*(Text(c) for c in cells), result, Text(r.error or ""),
                      Text(r.trace_id or ""))  # fmt: skip
    Console().print(table)


def init(dsn: DsnOption, table: TableOption = "dbsight_audit_log") -> None:
    """Create the audit table and its indexes in the database (nothing if it exists).

    Applications that manage their schema with migrations add it there instead:
    dbsight.audit.add_audit_table(metadata) for autogenerate, or
    dbsight.audit.migration_upgrade(op) in a migration (docs/audit.md).
    """
    from .audit import create_audit_table

    with _database(dsn, table, must_exist=False) as (engine, audit_table, shown):
        import sqlalchemy as sa

        with engine.connect() as connection:
            existed = sa.inspect(connection).has_table(audit_table.name)
        create_audit_table(engine, audit_table)
    typer.echo(f"{audit_table.name} {'exists already' if existed else 'created'} in {shown}")


def recent(
    dsn: DsnOption, limit: LimitOption = 50, table: TableOption = "dbsight_audit_log",
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """The newest audit records."""
    from .audit import AuditLogQueryBuilder

    with _database(dsn, table) as (engine, audit_table, _):
        records = AuditLogQueryBuilder(engine, audit_table).recent_operations(limit)
    _print_records(records, as_json)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def user(
    actor: Annotated[str, typer.Argument(metavar="USER", help="The actor, as recorded.")],
    dsn: DsnOption,
    since: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
                     help="Only records from this UTC date (or date and time) on."),
    ] = None,
    limit: LimitOption = 100,
    table: TableOption = "dbsight_audit_log",
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """What one user (actor) did, newest first."""
    from .audit import AuditLogQueryBuilder

    with _database(dsn, table) as (engine, audit_table, _):
        records = AuditLogQueryBuilder(engine, audit_table).by_user(
            actor, since=_utc(since), limit=limit
        )
    _print_records(records, as_json)


def entity(
    entity_type: Annotated[str, typer.Argument(metavar="TYPE", help="The entity type.")],
    dsn: DsnOption,
    entity_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="The entity's id (all of the type "
                                   "without it).")
    ] = None,
    limit: LimitOption = 1000,
    table: TableOption = "dbsight_audit_log",
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """The history of one entity, newest first."""
    from .audit import AuditLogQueryBuilder

    with _database(dsn, table) as (engine, audit_table, _):
        records = AuditLogQueryBuilder(engine, audit_table).by_entity(
            entity_type, entity_id, limit=limit
        )
    _print_records(records, as_json)


def failed(
    dsn: DsnOption,
    hours: Annotated[
        float, typer.Option(min=0.01, max=87_840, help="How far back, in hours.")
    ] = 24.0,
    limit: LimitOption = 1000,
    table: TableOption = "dbsight_audit_log",
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """The failed operations of the last hours, newest first."""
    from .audit import AuditLogQueryBuilder

    with _database(dsn, table) as (engine, audit_table, _):
        records = AuditLogQueryBuilder(engine, audit_table).failed_operations(hours, limit=limit)
    _print_records(records, as_json)


def _print_report(report: ComplianceReport) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    console.print(Text(
        f"Audit log {report.start} to {report.end} (UTC): {report.total} operations, "
        f"{report.failures} failed ({report.failure_rate:.1%}), {report.actors} actors"
    ))  # fmt: skip
    sections = (("operation", report.by_operation), ("entity type", report.by_entity_type),
                ("actor (top)", report.top_actors))  # fmt: skip
    for title, counts in sections:
        if not counts:
            continue
        table = Table(box=None, header_style="bold")
        for column in (title, "total", "failures", "failure rate"):
            table.add_column(column, justify="left" if column == title else "right")
        for c in counts:
            table.add_row(Text(c.key), str(c.total), str(c.failures), f"{c.failure_rate:.1%}")
        console.print()
        console.print(table)
    days = Table(box=None, header_style="bold")
    for column in ("day", "total", "failures"):
        days.add_column(column, justify="left" if column == "day" else "right")
    active = [c for c in report.per_day if c.total]
    for c in active:
        days.add_row(c.key, str(c.total), str(c.failures))
    quiet = len(report.per_day) - len(active)
    if active:
        console.print()
        console.print(days)
    if quiet:  # listed in --json; on a terminal, a count is enough
        console.print(Text(f"{_days(quiet)} without records"))
    if report.top_errors:
        errors = Table(box=None, header_style="bold")
        errors.add_column("error (top)", overflow="fold")
        errors.add_column("count", justify="right")
        for e in report.top_errors:
            errors.add_row(Text(e.error or "(none given)"), str(e.count))
        console.print()
        console.print(errors)


def report(
    dsn: DsnOption,
    start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], metavar="DATE",
                     help="First UTC day (YYYY-MM-DD).", show_default="29 days before --end"),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], metavar="DATE",
                     help="Last UTC day, included.", show_default="today"),
    ] = None,
    top: Annotated[
        int, typer.Option(min=1, max=1000, help="Actors and errors listed.")
    ] = 10,
    table: TableOption = "dbsight_audit_log",
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """A compliance report over whole UTC days: operations, failures and failure rate, by
    operation, entity type and day, the most active actors and the most frequent errors."""
    from .audit import AuditLogQueryBuilder

    last: date = end.date() if end is not None else datetime.now(UTC).date()
    first: date = start.date() if start is not None else last - timedelta(days=29)
    if last < first:
        _usage(f"--end {last} is before --start {first}")
    with _database(dsn, table) as (engine, audit_table, _):
        try:
            result = AuditLogQueryBuilder(engine, audit_table).compliance_report(
                first, last, top=top
            )
        except ValueError as exc:
            _usage(str(exc))
    if as_json:
        sys.stdout.write(result.to_json() + "\n")
    else:
        _print_report(result)


def purge(
    dsn: DsnOption,
    older_than_days: Annotated[
        int | None,
        typer.Option(min=1, max=36_500, help="Delete records older than this many days.",
                     show_default="audit_retention_days, 90"),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Records deleted per transaction.")
    ] = 1000,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    table: TableOption = "dbsight_audit_log",
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Delete the audit records older than the retention (audit_retention_days), in
    batches. Without --yes, it counts them first and asks."""
    from .audit import count_purgeable, purge_cutoff, retention_days
    from .audit import purge as purge_records

    days = older_than_days if older_than_days is not None else retention_days()
    cutoff = purge_cutoff(days)
    with _database(dsn, table) as (engine, audit_table, shown):
        count = count_purgeable(engine, days, table=audit_table)
        deleted = None
        if not dry_run and count:
            prompt = f"Delete {count} audit records older than {_days(days)} from {shown}?"
            if not yes and not typer.confirm(prompt, default=False, err=True):
                _fail("nothing deleted")
            deleted = purge_records(engine, days, batch_size=batch_size, table=audit_table)
    if as_json:
        document = {"older_than_days": days, "cutoff": cutoff.isoformat(), "purgeable": count,
                    "deleted": deleted if deleted is not None else 0, "dry_run": dry_run}
        sys.stdout.write(json.dumps(document) + "\n")  # fmt: skip
    elif deleted is not None:
        typer.echo(f"deleted {deleted} audit records older than {_days(days)}")
    else:
        verb = "would be deleted" if dry_run and count else "to delete"
        typer.echo(f"{count} audit records older than {_days(days)} {verb}")


for _name, _function in (("init", init), ("recent", recent), ("user", user),
                         ("entity", entity), ("failed", failed), ("report", report),
                         ("purge", purge)):  # fmt: skip
    audit_app.command(_name, cls=Command, help=reflow(_function.__doc__))(_function)
