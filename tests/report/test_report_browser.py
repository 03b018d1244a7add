"""The report opened in Chromium (Debian's, through Playwright): it renders under its own
Content-Security-Policy with no console error and no request but the file itself, the top
statement leads its table, the plots have a size, a plan node opens from the keyboard, and
the text keeps its contrast in the light and the dark theme. Screenshots are written to
the test's directory and, when $DBSIGHT_TEST_ARTIFACTS names a directory, copied there."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium_browser import launched_chromium
from report_helpers import Shops
from contract import CHECKS, advice_for

from dbsight.report import ReportInputs, build_report, fetch_summary, read_capture, report_json

ENV_ARTIFACTS = "DBSIGHT_TEST_ARTIFACTS"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, or a skip saying why (a failure with DBSIGHT_TEST_REQUIRE_SERVERS=1)."""
    with launched_chromium("to open the report in") as chromium:
        yield chromium


@pytest.fixture(scope="module")
def report(shops: Shops, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    summaries = [fetch_summary(url) for url in shops.urls]
    inputs = ReportInputs(summaries=summaries, captured=read_capture(shops.capture),
                          sources=[*shops.urls, shops.capture.name])  # fmt: skip
    sales = next(
        e for e in report_json(inputs)["statements"]
        if e["normalized"].startswith("SELECT count(*) AS lines")
    )  # fmt: skip
    inputs.advice = advice_for(sales)
    inputs.checks = copy.deepcopy(CHECKS)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(build_report(inputs), encoding="utf-8")
    return path, report_json(inputs)


def _artifact(path: Path) -> None:
    target = os.environ.get(ENV_ARTIFACTS, "").strip()
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def _luminance(rgb: str) -> float:
    channels = [int(x) / 255 for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(fg: str, bg: str) -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_report_in_chromium(
    browser: Any, report: tuple[Path, dict[str, Any]], scheme: str
) -> None:
    path, doc = report
    url = path.as_uri()
    context = browser.new_context(color_scheme=scheme, viewport={"width": 1300, "height": 900})
    requests: list[str] = []
    problems: list[str] = []

    def route(request_route: Any) -> None:
        requests.append(request_route.request.url)
        if request_route.request.url == url:
            request_route.continue_()
        else:
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        page.goto(url)
        page.wait_for_load_state("load")

        # the statement with the most total time leads its table
        top = next(e for e in doc["statements"] if e["fingerprint"] == doc["top"]["total_time"][0])
        first_row = page.locator("#top table").first.locator("tbody tr").first
        assert first_row.get_attribute("data-fingerprint") == top["fingerprint"]
        assert top["normalized"][:40] in " ".join(first_row.inner_text().split())

        # every plot is drawn with a size
        plots = page.locator("svg.plot")
        assert plots.count() >= 11  # two over time, eight histograms, the advice's
        for k in range(plots.count()):
            box = plots.nth(k).bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 30
        assert page.locator("svg.plot rect.bar").count() > 50

        # from the keyboard: a slow query's card opens with Enter, then a plan node that
        # starts closed opens with Enter and closes with Space
        # (element handles: a locator of "not [open]" would move on to the next one)
        card = page.locator("details.slow:has(ul.plan details:not([open]))").first.element_handle()
        if not card.evaluate("d => d.open"):
            card.query_selector(":scope > summary").focus()
            page.keyboard.press("Enter")
            assert card.evaluate("d => d.open") is True
        closed = card.query_selector("ul.plan details:not([open])")
        closed.query_selector(":scope > summary").focus()
        assert page.evaluate("document.activeElement.tagName") == "SUMMARY"
        page.keyboard.press("Enter")
        assert closed.evaluate("d => d.open") is True
        assert closed.query_selector(":scope > ul.plan, :scope > dl.props").is_visible()
        page.keyboard.press(" ")
        assert closed.evaluate("d => d.open") is False

        # readable in both themes
        colors = page.evaluate(
            "() => { const s = getComputedStyle(document.body);"
            " const m = getComputedStyle(document.querySelector('.note'));"
            " return [s.color, s.backgroundColor, m.color]; }"
        )
        text, background, muted = colors
        assert _contrast(text, background) >= 7.0
        assert _contrast(muted, background) >= 4.5
        assert (_luminance(background) < 0.05) is (scheme == "dark")

        shot = path.with_name(f"report-{scheme}.png")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 50_000
        _artifact(shot)
    finally:
        context.close()
    assert requests == [url]  # the file, nothing else
    assert problems == []
