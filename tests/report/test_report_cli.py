"""``dbsight report``: two running instances and a capture into an HTML file and as JSON;
its usage errors (exit 2) and unreadable inputs (exit 1), each one line without a
traceback."""

from __future__ import annotations

import json
from pathlib import Path

from report_helpers import Shops
from typer.testing import CliRunner

from dbsight.cli import app as cli


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["report", *args], env={"COLUMNS": "200"})


def test_report_to_a_file(shops: Shops, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = _run("--from", shops.urls[0], "--from", shops.urls[1],
                  "--workload", str(shops.capture), "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == f"dbsight report: wrote {out}"
    html = out.read_text()
    assert "dbsight report: shop-a, shop-b" in html and "Content-Security-Policy" in html
    assert "From the capture: statements per second" in html
    assert html.count('<svg class="plot"') >= 10


def test_report_as_json(shops: Shops, tmp_path: Path) -> None:
    result = _run("--from", shops.urls[0], "--from", shops.urls[1] + "/metrics/summary",
                  "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["services"] == ["shop-a", "shop-b"]
    assert doc["sources"] == [shops.urls[0], shops.urls[1] + "/metrics/summary"]
    assert doc["timeline"]["source"] == "slow log"
    assert {"total_time", "calls", "mean_time", "errors"} <= doc["top"].keys()
    out = tmp_path / "report.json"
    result = _run("--workload", str(shops.capture), "--json", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["timeline"]["source"] == "capture"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args, message in [
        ((), "nothing to report: give --from URL, --workload FILE or --dsn DSN"),
        (("--from", "http://127.0.0.1:1"), "give -o FILE for the HTML report (or --json)"),
        (("--from", "ftp://example", "--json"), "is not an http:// or https:// URL"),
        (("--dsn", "mysql://x", "--json"), "expected a postgresql:// URL"),
        (("--workload", str(tmp_path / "none.jsonl"), "--json"), "does not exist"),
    ]:
        result = _run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.stderr.replace("│", " ").split()), result.stderr
        assert "Traceback" not in result.output


def test_unreadable_inputs_exit_1(shops: Shops, tmp_path: Path) -> None:
    result = _run("--from", "http://127.0.0.1:1", "--timeout", "2", "--json")
    assert result.exit_code == 1
    refused = "dbsight report: cannot connect to http://127.0.0.1:1/metrics/summary"
    assert result.stderr.startswith(refused)
    assert len(result.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"type":"statement"}\n{"type":"session_end"}\n')
    result = _run("--workload", str(broken), "--json")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"dbsight report: {broken}:1 is not a capture record of dbsight proxy --capture"
    result = _run("--from", shops.urls[0], "-o", str(tmp_path / "missing" / "report.html"))
    assert result.exit_code == 1
    assert "cannot write" in result.stderr and "No such file or directory" in result.stderr
