"""What the deploy/ tests share: where the files are, YAML read the way the tools read it."""

from __future__ import annotations

import shutil
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="session")
def deploy_dir() -> Path:
    return DEPLOY


@pytest.fixture(scope="session")
def venv_tool():
    """The path of a console script installed beside this interpreter (check-jsonschema,
    kubernetes-validate), or a skip when the test extra was not installed."""
    import sys

    def find(name: str) -> str:
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            return str(candidate)
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: pip install -e '.[test]'", pytrace=False)
        return found

    return find


@pytest.fixture(scope="session")
def system_tool():
    """promtool / amtool (Debian's prometheus and prometheus-alertmanager, set up by ./dev)."""

    def find(name: str) -> str:
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"{name} is not installed (./dev setup installs it)")
        return found

    return find
