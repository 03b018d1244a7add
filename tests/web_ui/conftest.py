"""Chromium (Debian's, driven by Playwright for Python) and the services whose dashboards it
opens. Screenshots go to ``test-artifacts/web_ui/`` at the repository root (git ignores it),
or to ``$DBSIGHT_TEST_ARTIFACTS/web_ui/`` when that is set."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbsight.testing.pytest_plugin import _missing_binaries

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ENV_ARTIFACTS = "DBSIGHT_TEST_ARTIFACTS"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium, or a skip saying why (a failure with DBSIGHT_TEST_REQUIRE_SERVERS=1)."""
    if not CHROMIUM.exists():
        _missing_binaries(f"no Chromium at {CHROMIUM} to open the dashboard in (./dev installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing_binaries("the playwright package is not installed (the test extra brings it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the screenshots go (see the module docstring)."""
    base = os.environ.get(ENV_ARTIFACTS, "").strip()
    directory = (Path(base) if base else REPO / "test-artifacts") / "web_ui"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
