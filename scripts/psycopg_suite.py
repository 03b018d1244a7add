"""Run psycopg's own test suite directly and through `dbsight proxy`, and count what fails.

    python scripts/psycopg_suite.py /path/to/psycopg-checkout [--mode direct,session,transaction]
        [-- more pytest arguments, e.g. tests/test_prepared.py to run that file alone]

The checkout is the user's step (``git clone https://github.com/psycopg/psycopg``; check out
the tag of the installed psycopg, or the nearest one). Its test requirements go into the same
environment as dbsight: ``pip install "anyio>=4" "pproxy>=2.7" pytest-timeout`` (``--timeout``).

For each mode the script starts a private PostgreSQL (the embedded cluster, or ``--dsn``: a
superuser DSN of a server of yours, where a database ``dbsight_psycopg_suite`` is created and
dropped), then, for ``session`` and ``transaction``, a ``dbsight proxy`` subprocess in that
pool mode in front of it, and runs

    python -m pytest tests -m "not slow" --ignore tests/pool -p no:randomly -p no:asyncio

in the checkout with ``PSYCOPG_TEST_DSN`` at the proxy (``direct``: at the server), a JUnit
XML report per mode in ``--out``. It prints failures and errors per mode, and the tests that
fail through the proxy but pass directly: those are the proxy's to explain (a bug, or one of
transaction pooling's limits in docs/proxy.md). Nothing leaves the machine: every server
listens on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

MODES = ("direct", "session", "transaction")
DATABASE = "dbsight_psycopg_suite"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dbsight proxy exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise SystemExit(f"dbsight proxy did not listen on 127.0.0.1:{port} within {timeout}s")


@contextlib.contextmanager
def _postgres(dsn: str | None) -> Iterator[str]:
    """A DSN of a fresh database (the suite's), on the embedded cluster or on ``dsn``."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    embedded = None
    if dsn is None:
        from dbsight.embedded.postgres import EmbeddedPostgres

        # Two-phase commit tests run only when the server allows prepared transactions.
        embedded = EmbeddedPostgres(
            name="dbsight-psycopg-suite", settings={"max_prepared_transactions": 10}
        )
        embedded.start()
        dsn = embedded.dsn()
    try:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {DATABASE}")
        try:
            yield make_conninfo(dsn, dbname=DATABASE)
        finally:
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        if embedded is not None:
            embedded.stop()


@contextlib.contextmanager
def _proxy(upstream: str, mode: str, log: Path) -> Iterator[str]:
    """A `dbsight proxy` in ``mode`` in front of ``upstream``: the DSN clients use."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    port = _free_port()
    params = conninfo_to_dict(upstream)
    url = (
        f"postgresql://{params.get('user', 'postgres')}@{params['host']}:{params['port']}"
        f"/{params['dbname']}"
    )
    command = [
        _dbsight(), "proxy", "--listen", f"127.0.0.1:{port}",
        "--upstream", url, "--pool-mode", mode,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc)
        yield make_conninfo(upstream, host="127.0.0.1", port=str(port))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _dbsight() -> str:
    """The ``dbsight`` command of this environment."""
    beside = Path(sys.executable).parent / "dbsight"
    found = str(beside) if beside.exists() else shutil.which("dbsight")
    if found is None:
        raise SystemExit("no dbsight command: install dbsight in this environment")
    return found


def _outcomes(report: Path) -> dict[str, str]:
    """test id -> failed / error / skipped / passed, from a JUnit XML report."""
    seen: dict[str, str] = {}
    if not report.exists():
        return seen
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                break
        seen[name] = outcome
    return seen


def _run_suite(checkout: Path, dsn: str, report: Path, extra: list[str], timeout: int) -> None:
    # test paths after --: those alone, else the whole suite
    paths = [] if any(a.startswith("tests/") for a in extra) else ["tests"]
    command = [
        sys.executable, "-m", "pytest", *paths, "-m", "not slow", "--ignore", "tests/pool",
        "-o", f"cache_dir={report.parent / '.pytest_cache'}",
        "-p", "no:randomly", "-p", "no:asyncio", "-q",
        "--junitxml", str(report), *extra,
    ]
    if timeout:
        command.append(f"--timeout={timeout}")
    env = {**os.environ, "PSYCOPG_TEST_DSN": dsn}
    subprocess.run(command, cwd=checkout, env=env, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a psycopg source checkout")
    parser.add_argument(
        "--mode", default=",".join(MODES), help="comma-separated: " + ",".join(MODES)
    )
    parser.add_argument("--dsn", help="superuser DSN of a PostgreSQL to use (default: embedded)")
    parser.add_argument("--out", type=Path, default=Path("psycopg-suite-results"))
    parser.add_argument("--timeout", type=int, default=0, help="per-test timeout (pytest-timeout)")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.pytest_args = extra

    checkout = args.checkout.resolve()
    if not (checkout / "tests" / "fix_db.py").exists():
        parser.error(f"{checkout} is not a psycopg checkout (no tests/fix_db.py)")
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict[str, str]] = {}
    for mode in modes:
        report = (args.out / f"{mode}.xml").resolve()
        report.unlink(missing_ok=True)
        with _postgres(args.dsn) as server:
            if mode == "direct":
                _run_suite(checkout, server, report, args.pytest_args, args.timeout)
            else:
                with _proxy(server, mode, args.out / f"proxy-{mode}.log") as at_proxy:
                    _run_suite(checkout, at_proxy, report, args.pytest_args, args.timeout)
        results[mode] = _outcomes(report)

    summary: dict[str, object] = {}
    direct = results.get("direct", {})
    for mode, seen in results.items():
        bad = sorted(t for t, o in seen.items() if o in ("failed", "error"))
        counts = {
            o: sum(1 for v in seen.values() if v == o)
            for o in ("passed", "failed", "error", "skipped")
        }
        only_here = [t for t in bad if direct and direct.get(t) not in ("failed", "error")]
        summary[mode] = {**counts, "failing": bad, "failing_only_through_proxy": only_here}
        print(f"{mode:12} passed {counts['passed']:5}  failed {counts['failed']:4}  "
              f"errors {counts['error']:4}  skipped {counts['skipped']:4}")
        if mode != "direct" and direct:
            for test in only_here:
                print(f"    {seen[test]:7} {test}")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
