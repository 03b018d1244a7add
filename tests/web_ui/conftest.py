"""Chromium (Debian's, driven by Playwright for Python) and the services whose dashboards it
opens. Screenshots go to ``test-artifacts/web_ui/`` at the repository root (git ignores it),
or to ``$DBSIGHT_TEST_ARTIFACTS/web_ui/`` when that is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium_browser import launched_chromium

ENV_ARTIFACTS = "DBSIGHT_TEST_ARTIFACTS"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium, or a skip saying why (a failure with DBSIGHT_TEST_REQUIRE_SERVERS=1)."""
    with launched_chromium("to open the dashboard in") as browser:
        yield browser


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the screenshots go (see the module docstring)."""
    base = os.environ.get(ENV_ARTIFACTS, "").strip()
    directory = (Path(base) if base else REPO / "test-artifacts") / "web_ui"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
