"""Chromium for the browser tests (Debian's, driven by Playwright for Python): the one launch
the dashboard tests (tests/web_ui) and the report test share, so both run the same binary
with the same flags and skip for the same reasons. Imported by basename (tests/ is on the
path, as for ``asgi_server``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dbsight.testing.pytest_plugin import _missing_binaries

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@contextmanager
def launched_chromium(purpose: str) -> Iterator[Any]:
    """A headless Chromium, closed on exit; or a skip saying why (a failure with
    DBSIGHT_TEST_REQUIRE_SERVERS=1). ``purpose`` ends the skip message ("to open the report
    in")."""
    if not CHROMIUM.exists():
        _missing_binaries(f"no Chromium at {CHROMIUM} {purpose} (./dev installs it)")
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
