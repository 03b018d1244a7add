"""``python -m dbsight_platform``: serve, migrate, downgrade, check the configuration.

    python -m dbsight_platform migrate [REVISION]      # default: head
    python -m dbsight_platform downgrade [REVISION]    # default: -1 (one step); base: all
    python -m dbsight_platform current                 # the database's revision
    python -m dbsight_platform serve [--host H] [--port P]
    python -m dbsight_platform check-config            # validate the settings, print them
    python -m dbsight_platform create-user NAME [--role admin]   # password asked, or
                                                       # $PLATFORM_NEW_USER_PASSWORD

Invalid settings exit with status 2 and one line per problem.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from .core.config import Settings, SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dbsight_platform", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("revision", nargs="?", default="head")
    downgrade = commands.add_parser("downgrade", help="undo migrations")
    downgrade.add_argument("revision", nargs="?", default="-1")
    commands.add_parser("current", help="print the database's schema revision")
    serve = commands.add_parser("serve", help="run the platform under uvicorn")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    commands.add_parser("check-config", help="validate the settings and print them")
    user = commands.add_parser(
        "create-user",
        help=f"add a user who can log in (password asked, or ${PASSWORD_VARIABLE})",
    )
    user.add_argument("username")
    user.add_argument("--role", action="append", default=[], help="a role (repeatable)")
    return parser


PASSWORD_VARIABLE = "PLATFORM_NEW_USER_PASSWORD"


def _new_password() -> str:
    password = os.environ.get(PASSWORD_VARIABLE)
    if password:
        return password
    password = getpass.getpass("password: ")
    if password != getpass.getpass("again: "):
        raise ValueError("the two passwords differ")
    return password


async def _create_user(settings: Settings, username: str, roles: list[str]) -> int:
    from .apps.app_a.users import UserService
    from .core.database import Database
    from .core.exceptions import AlreadyExistsException
    from .security import PasswordHashing

    database = Database(settings)
    try:
        async with database.session() as session:
            user = await UserService(session, PasswordHashing()).create(
                username, _new_password(), roles
            )
    except (AlreadyExistsException, ValueError) as exc:
        print(getattr(exc, "message", None) or exc, file=sys.stderr)
        return 1
    finally:
        await database.close()
    print(f"user {user.username} created (roles: {', '.join(user.role_list) or 'none'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command in ("migrate", "downgrade", "current"):
        from .migrations import runner

        if args.command == "migrate":
            runner.upgrade(settings, args.revision)
        elif args.command == "downgrade":
            runner.downgrade(settings, args.revision)
        print(f"database at revision {runner.current_revision(settings) or 'base'}")
        return 0
    if args.command == "create-user":
        return asyncio.run(_create_user(settings, args.username, args.role))
    if args.command == "check-config":
        shown = settings.model_dump(
            mode="json", exclude={"database_url", "redis_url", "jwt_secret"}
        )
        for key, value in sorted(shown.items()):
            print(f"{key} = {value}")
        print(f"database = {settings.database_backend}")
        return 0
    from .server import serve

    serve(settings, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
