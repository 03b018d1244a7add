import shutil
from pathlib import Path

import pytest

from dbsight.testing.pytest_plugin import _missing_binaries


def _binary(name: str, package: str) -> Path:
    found = shutil.which(name)
    if found is None:
        _missing_binaries(f"{name} is not installed (Debian package {package}; ./dev installs it)")
    return Path(found)


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _binary("promtool", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> Path:
    return _binary("amtool", "prometheus-alertmanager")
