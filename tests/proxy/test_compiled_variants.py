"""Both variants of the hot modules: compiled (setup.py's Cython extensions, when built) and
pure Python (``DBSIGHT_PURE_PYTHON=1``, or an install without the extensions).

The rest of the suite runs whichever variant the install imports (the compiled one after
``./dev setup``); here the protocol-level test files run again in a process that imports the
Python sources, so both stay correct, and each variant is checked to be the one in use.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbsight import _compiled

TESTS = Path(__file__).resolve().parents[1]
SRC = Path(_compiled.__file__).resolve().parents[1]
# the exchange's answer matching, framing and unit assembly, real-server relays (session
# mode; transaction mode's usual units, `PlainRelay`), a socket's relay mode (`LinkRelay`), a
# pool's waiters, and the lookup of a statement's analysis by its shape (the observation
# fold's variants are compared in stats/test_fold_variants.py)
PROTOCOL_TESTS = (
    "proxy/test_exchange_rows.py",
    "proxy/test_plain_answer.py",
    "proxy/test_proxy_reader.py",
    "proxy/test_session_relay.py",
    "proxy/test_statement_effects.py",
    "proxy/test_server_statements.py",
    "proxy/test_lease.py",
    "proxy/test_link.py",
    "proxy/test_receiver.py",
    "proxy_pool/test_pool_park.py",
    "proxy_pool/test_pool_queue.py",
    "proxy_pool/test_pool_wait.py",
    "proxy_route/test_breaker.py",
    "proxy_auth/test_exchange.py",
    "proxy_server/test_proxy_rows.py",
    "proxy_server/test_proxy_plain_relay.py",
    "proxy_server/test_proxy_pooled.py",
    "proxy_server/test_proxy_session.py",
    "sql/test_sql_cache.py",
)
PROBE = (
    "import json, dbsight, dbsight.proxy, dbsight.proxy._exchange; "
    "from dbsight import _compiled; import sys; "
    "print(json.dumps({n: _compiled.is_compiled(sys.modules[n]) for n in _compiled.HOT_MODULES "
    "if n in sys.modules}))"
)


def _env(pure: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != _compiled.PURE_PYTHON_VARIABLE}
    if pure:
        env[_compiled.PURE_PYTHON_VARIABLE] = "1"
    return env


def _variants(pure: bool) -> dict[str, bool]:
    done = subprocess.run([sys.executable, "-c", PROBE], env=_env(pure), capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    result: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _built(name: str) -> bool:
    stem = SRC / name.replace(".", "/")
    return any(Path(f"{stem}{s}").exists() for s in importlib.machinery.EXTENSION_SUFFIXES)


def test_pure_python_variable_imports_every_hot_module_from_its_source() -> None:
    variants = _variants(pure=True)
    assert "dbsight.proxy._plain_answer" in variants
    assert not any(variants.values()), variants


def test_the_sources_run_where_cython_is_not_installed() -> None:
    """Cython builds the extensions only: the Python sources of every hot module import
    without it (its decorators then do nothing), and a lean event is made and read."""
    probe = (
        "import sys; sys.modules['cython'] = None; "
        "import dbsight, dbsight.proxy, dbsight.proxy._exchange, dbsight.stats._table; "
        "from dbsight import _compiled; from dbsight.core import _lean; "
        "[__import__(n) for n in _compiled.HOT_MODULES]; "
        "e = _lean.LeanEvent(); print(type(e).__module__, _lean.__file__.endswith('.py'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=_env(True), capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["dbsight.core._lean", "True"]


def test_built_extensions_are_what_an_ordinary_import_runs() -> None:
    built = [n for n in _compiled.HOT_MODULES if _built(n)]
    if not built:
        pytest.skip("no compiled extensions in this install (built without Cython)")
    variants = _variants(pure=False)
    edited = _compiled.edited_since_build()  # (then every one runs from its source)
    assert {n for n in built if n in variants and not edited} == {
        n for n, compiled in variants.items() if compiled
    }


def test_one_hot_module_edited_since_the_build_makes_all_of_them_run_from_source(
    tmp_path: Path,
) -> None:
    """A copy of the built package whose `LinkRelay` (whose C type the lease and the
    server connections use) was edited after the build: importing the proxy works, every
    hot module from its source."""
    if not _built("dbsight.proxy._link_relay"):
        pytest.skip("no compiled extensions in this install (built without Cython)")
    copy = tmp_path / "dbsight"
    shutil.copytree(SRC / "dbsight", copy, ignore=shutil.ignore_patterns("__pycache__"))
    edited = copy / "proxy" / "_link_relay.py"
    later = max(p.stat().st_mtime for p in copy.glob("proxy/_link_relay.*")) + 60
    os.utime(edited, (later, later))
    env = {**_env(pure=False), "PYTHONPATH": str(tmp_path)}
    probe = PROBE.replace("dbsight.proxy._exchange; ", "dbsight.proxy._exchange, "
                          "dbsight.proxy._server_fields, dbsight.proxy._lease; ")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=120, check=False, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    variants: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    assert "dbsight.proxy._lease" in variants and not any(variants.values()), variants


def test_protocol_tests_pass_on_the_pure_python_modules() -> None:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            *(str(TESTS / f) for f in PROTOCOL_TESTS)]  # fmt: skip
    done = subprocess.run(argv, env=_env(pure=True), cwd=TESTS.parent, capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
