"""The typed rules against the rest of the repository: the metric families the code exports,
the runbooks page, the alerts page, and the thresholds' validation."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from _alert_scenarios import BUILDERS

from dbsight.alerting import (
    SEVERITIES,
    AlertConfigError,
    RecordingRule,
    Thresholds,
    all_alerts,
    build_rules,
    load_thresholds,
)

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
ALERTS_PAGE = ROOT / "docs" / "alerts.md"

# A family as the source declares it (as tests/docs reads them): CounterMetricFamily("x", ...),
# Histogram("x", ...), and the proxy's {"stat": ("family", "help")} pool tables.
_FAMILY = re.compile(
    r"\b(?P<kind>Counter|Gauge|Histogram)(?:MetricFamily)?\(\s*\"(?P<name>[a-z_]+)\""
    r"|_collector\(\s*(?P<kind2>Counter|Gauge|Histogram),\s*\"(?P<name2>[a-z_]+)\""
)
_POOL_TABLE = re.compile(r"_POOL_(?P<kind>COUNTERS|GAUGES) = \{(?P<body>.*?)\n\}", re.S)
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
_KEYWORDS = {"by", "without", "and", "or", "unless", "offset", "on", "ignoring", "bool", "le"}


@cache
def exposed_series() -> frozenset[str]:
    """Every series name the code exposes (a histogram's ``_bucket``/``_sum``/``_count``)."""
    names = set()
    for path in (ROOT / "src" / "dbsight").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = [((m["kind"] or m["kind2"]).lower(), m["name"] or m["name2"])
                 for m in _FAMILY.finditer(source)]  # fmt: skip
        for table in _POOL_TABLE.finditer(source):
            kind = "counter" if table["kind"] == "COUNTERS" else "gauge"
            bases = re.findall(r"\(\s*\"(proxy_[a-z_]+)\"", table["body"])
            found += [(kind, base) for base in bases]
        for kind, name in found:
            base = name.removesuffix("_total")
            names.update(base + suffix for suffix in _SUFFIXES[kind])
    return frozenset(names)


def series_read(expr: str) -> set[str]:
    """The series names a PromQL expression of ours selects: identifiers that are not a
    function call, a keyword, inside a label matcher, grouping list or range."""
    text = re.sub(r'"[^"]*"', '""', expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping lists
    text = re.sub(r"\boffset\s+\w+", "", text)
    names = re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text)
    return {name for name in names if name not in _KEYWORDS}


def test_the_scan_finds_the_families_we_read() -> None:
    exposed = exposed_series()
    assert {"http_server_requests_total", "http_server_request_duration_seconds_bucket",
            "proxy_pool_max_size", "db_client_function_errors_total"} <= exposed  # fmt: skip
    assert series_read('sum by (job) (rate(x_total{a="b"}[5m] offset 1d)) > 0 and up') == {
        "x_total", "up"
    }  # fmt: skip


@pytest.mark.parametrize("thresholds", [Thresholds(), Thresholds(service_label="svc")])
def test_every_expression_reads_only_families_dbsight_exposes(thresholds: Thresholds) -> None:
    groups = build_rules(thresholds)
    recorded = {r.record for g in groups for r in g.rules if isinstance(r, RecordingRule)}
    allowed = exposed_series() | recorded | {"up"}
    for group in groups:
        for rule in group.rules:
            unknown = series_read(rule.expr) - allowed
            assert not unknown, f"{getattr(rule, 'name', None) or rule.record} reads {unknown}"


def github_anchors(page: Path) -> dict[str, str]:
    """Each ``## heading``'s GitHub anchor -> the section's text."""
    sections: dict[str, str] = {}
    current = None
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = re.sub(r"[^\w\- ]", "", line[3:].strip().lower()).replace(" ", "-")
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def test_every_runbook_url_has_a_section_that_says_what_to_look_at_and_do() -> None:
    sections = github_anchors(RUNBOOKS)
    for alert in all_alerts(build_rules()):
        assert alert.runbook in sections, f"docs/runbooks.md has no section #{alert.runbook}"
        body = sections[alert.runbook]
        for part in ("**Means.**", "**Look at.**", "**Do.**"):
            after = body.split(part, 1)
            assert len(after) == 2 and len(after[1].split("**")[0].split()) >= 10, (
                f"#{alert.runbook} lacks a real {part} paragraph"
            )
    names = {alert.runbook for alert in all_alerts(build_rules())}
    assert set(sections) == names, f"sections without an alert: {set(sections) - names}"


def test_every_alert_is_complete_and_listed() -> None:
    page = ALERTS_PAGE.read_text(encoding="utf-8")
    seen = set()
    for alert in all_alerts(build_rules()):
        key = (alert.name, alert.severity, tuple(sorted(alert.labels.items())))
        assert key not in seen, f"two rules {key}"
        seen.add(key)
        assert alert.severity in SEVERITIES
        assert alert.summary and alert.description and alert.for_s > 0
        assert alert.runbook == alert.name.lower()
        assert f"[{alert.name}](runbooks.md#{alert.runbook})" in page
        assert alert.name in BUILDERS, f"{alert.name} has no promtool scenario"


def _grouping_labels(expr: str) -> set[str]:
    found = set()
    for group in re.findall(r"\bby \(([^)]*)\)", expr):
        found |= {label.strip() for label in group.split(",")}
    return found


def test_annotations_name_only_the_labels_the_alert_has() -> None:
    """An annotation reads ``$labels`` the expression keeps and ``$value``: never a statement's
    text or parameters (privacy), never a label that would print empty."""
    for alert in all_alerts(build_rules()):
        labels = _grouping_labels(alert.expr) - {"le"}
        if alert.name == "DbsightTargetDown":
            labels = {"job", "instance"}
        if "dbsight:" in alert.expr:  # the SLO ratios, recorded by the service label
            labels = {"job"}
        for text in (alert.summary, alert.description):
            used = set(re.findall(r"\$labels\.(\w+)", text))
            assert used <= labels, f"{alert.name}: {used - labels} is not a label of the alert"
            assert not re.findall(r"\{\{(?![^}]*(\$labels\.\w+|\$value))", text), text


def test_seed_alerts_are_all_mapped() -> None:
    """Seed 002's eighteen alerts, each with dbsight's alert and severity."""
    seed = {
        "CriticalAPILatency": ("DbsightHTTPLatencyHigh", "critical"),
        "HighAPILatency": ("DbsightHTTPLatencyHigh", "warning"),
        "CriticalAPIErrorRate": ("DbsightHTTPErrorRateHigh", "critical"),
        "HighAPIErrorRate": ("DbsightHTTPErrorRateHigh", "warning"),
        "StripeAPIErrors": ("DbsightExternalAPIFailing", "critical"),
        "CriticalExternalAPILatency": ("DbsightExternalAPILatencyHigh", "critical"),
        "SlowExternalAPI": ("DbsightExternalAPILatencyHigh", "warning"),
        "HighExternalAPIErrorRate": ("DbsightExternalAPIErrors", "warning"),
        "MetricsNotReported": ("DbsightTargetDown", "critical"),
        "CriticalCacheHitRatio": ("DbsightCacheHitRatioLow", "critical"),
        "LowCacheHitRatio": ("DbsightCacheHitRatioLow", "warning"),
        "SlowZeroDBQueries": ("DbsightDatabaseLatencyHigh", "warning"),
        "HighSlowQueryRate": ("DbsightSlowQueriesFrequent", "warning"),
        "HighZeroDBErrorRate": ("DbsightDatabaseErrors", "info"),
        "BackgroundJobFailures": ("DbsightBackgroundWorkFailing", "warning"),
        "LongRunningBackgroundJob": ("DbsightBackgroundWorkSlow", "warning"),
        "APIThroughputDrop": ("DbsightHTTPThroughputDrop", "info"),
        "HighActiveRequests": ("DbsightHTTPActiveRequestsHigh", "info"),
    }
    ours = {(a.name, a.severity): a for a in all_alerts(build_rules())}
    for seed_name, key in seed.items():
        assert key in ours, f"seed alert {seed_name} has no {key}"
    assert ours[("DbsightHTTPLatencyHigh", "critical")].threshold == 5
    assert ours[("DbsightDatabaseLatencyHigh", "warning")].threshold == 0.1
    assert ours[("DbsightCacheHitRatioLow", "warning")].threshold == 0.7


def test_every_threshold_is_documented() -> None:
    page = ALERTS_PAGE.read_text(encoding="utf-8")
    for name in Thresholds.model_fields:
        assert f"`{name}`" in page, f"docs/alerts.md does not document {name}"


def test_slo_rules_cover_every_window_and_the_latency_bucket() -> None:
    groups = {g.name: g for g in build_rules(Thresholds(slo_latency_ms=250))}
    latency = groups["dbsight-slo-latency"]
    records = [r for r in latency.rules if isinstance(r, RecordingRule)]
    assert [r.record.rsplit("rate", 1)[1] for r in records] == [
        "5m", "30m", "1h", "2h", "6h", "1d", "3d"
    ]  # fmt: skip
    assert all('le="0.25"' in r.expr for r in records)
    burns = [(a.severity, a.labels["window"], round(a.threshold, 6)) for a in latency.alerts]
    assert burns == [("critical", "1h", 0.144), ("critical", "6h", 0.06),
                     ("warning", "1d", 0.03), ("warning", "3d", 0.01)]  # fmt: skip


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"slo_latency_ms": 300}, "slo_latency_ms: 300 is not a bucket bound of "
         "http_server_request_duration_seconds; pick one of 5, 10, 25, 50, 75, 100, 250, 500, "
         "750, 1000, 2500, 5000, 7500, 10000, 30000 (ms)"),
        ({"slo_availability": 0.9}, "slo_availability: 0.9 leaves a budget"),
        ({"slo_availability": 1.5}, "slo_availability: Input should be less than 1"),
        ({"function_duration_p95_s": 300}, "function_duration_p95_s: 300 s is not below the "
         "histogram's last bucket (30 s)"),
        ({"http_latency_p95_warning_s": 6}, "http_latency_p95_warning_s must be below "
         "http_latency_p95_critical_s"),
        ({"cache_hit_ratio_critical": 0.8}, "cache_hit_ratio_critical must be below"),
        ({"service_label": "service"}, "service_label: 'service' is a label of dbsight's own"),
        ({"throughput_offset": "10m"}, "throughput_offset: compare with at least an hour ago"),
        ({"throughput_offset": "yesterday"}, "is not a duration"),
        ({"pool_saturation": "lots"}, "pool_saturation: Input should be a valid number"),
        ({"nonsense": 1}, "nonsense: not a threshold dbsight knows"),
    ],
)  # fmt: skip
def test_bad_thresholds_are_one_line_errors(values: dict[str, object], message: str) -> None:
    with pytest.raises(AlertConfigError) as caught:
        load_thresholds(None, **values)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_thresholds_from_toml_and_yaml_files(tmp_path: Path) -> None:
    toml = tmp_path / "alerts.toml"
    toml.write_text('[alerts]\nslo_latency_ms = 250\ntarget_jobs = ["api"]\n')
    assert load_thresholds(toml).slo_latency_ms == 250
    assert load_thresholds(toml, slo_latency_ms=1000).slo_latency_ms == 1000  # flags win
    yml = tmp_path / "alerts.yml"
    yml.write_text("db_latency_p95_s: 0.25\nservice_label: service_name\n")
    loaded = load_thresholds(yml)
    assert (loaded.db_latency_p95_s, loaded.service_label) == (0.25, "service_name")
    broken = tmp_path / "broken.toml"
    broken.write_text("slo_latency_ms = \n")
    with pytest.raises(AlertConfigError, match=r"broken.toml: not valid TOML"):
        load_thresholds(broken)
    with pytest.raises(AlertConfigError, match=r"missing.toml: No such file"):
        load_thresholds(tmp_path / "missing.toml")
    listed = tmp_path / "list.yml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(AlertConfigError, match="expected a table of thresholds"):
        load_thresholds(listed)
