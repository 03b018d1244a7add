"""`build_report`: the report as one self-contained HTML document. No script, no external
resource (styles inline, plots inline SVG), under a Content-Security-Policy that forbids
everything else; ``<details>`` for what expands (keyboard-usable as it is). Every text from
the inputs goes through `html.escape`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from .. import __version__
from . import _format, _svg
from ._document import assemble, findings_of
from ._inputs import ReportInputs
from ..stats._histogram import exact_quantiles
from ._latency import estimated_bins, measured_bins
from ._plan import plan_tree
from ._style import CSS
from ._timeline import Timeline

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
HISTOGRAMS = 8  # latency histograms: of the top statements by total time
HISTOGRAM_BINS = 24
SHOWN = {"total_time": 20, "calls": 10, "mean_time": 10, "errors": 10}
TITLES = {
    "total_time": "By total time",
    "calls": "By calls",
    "mean_time": "By mean time",
    "errors": "By errors",
}
_SEVERITY = {"critical": 0, "warning": 1, "info": 2}
LONG_STATEMENT = 320  # characters shown before a statement is shortened
CELL_FINDINGS = 2  # plan findings shown under a statement in the tables, most severe first


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _when(iso: str | None) -> str:
    """``2026-12-06T00:42:55Z`` as ``2026-12-06 00:42:55 UTC``."""
    return "–" if not iso else iso.replace("T", " ").replace("Z", " UTC")


def _tag(text: str, cls: str = "tag", title: str | None = None) -> str:
    attr = f' title="{_e(title)}"' if title else ""
    return f'<span class="{cls}"{attr}>{_e(text)}</span>'


def _sev(severity: Any) -> str:
    name = str(severity or "info")
    return _tag(name, f"sev sev-{escape(name)}")


# -- statements ----------------------------------------------------------------------------
def _statement_cell(entry: Mapping[str, Any]) -> str:
    tags = []
    if not entry.get("instrumented", True):
        tags.append(_tag("not instrumented: pg_stat_statements only", "tag tag-warn"))
    for source in entry.get("sources") or ():
        tags.append(_tag(source))
    if entry.get("estimated"):
        tags.append(_tag("≈ merged", "tag", "percentiles estimated from several instances' figures"))
    routes = entry.get("routes") or {}
    if routes:
        route = max(routes.items(), key=lambda item: item[1])[0]
        more = f" +{len(routes) - 1}" if len(routes) > 1 else ""
        tags.append(_tag(f"{route}{more}", "tag", "route that ran it most"))
    findings = sorted(findings_of(entry), key=lambda f: _SEVERITY.get(str(f.get("severity")), 3))
    notes = "".join(
        f'<div class="finding">{_sev(f.get("severity"))}{_e(f.get("message") or f.get("kind"))}</div>'
        for f in findings[:CELL_FINDINGS]
    )
    return f"{_sql(entry.get('normalized'))}{''.join(tags)}{notes}"


def _sql(text: Any, width: int = LONG_STATEMENT) -> str:
    """A statement; a long one shortened, the whole of it a keypress away."""
    full = " ".join(str(text or "").split())
    if len(full) <= width:
        return f'<code class="sql">{_e(full)}</code>'
    return (
        f'<details class="stmt"><summary><code class="sql">{_e(_short(full, width // 2))}'
        f'</code></summary><code class="sql">{_e(full)}</code></details>'
    )


def _percentile(entry: Mapping[str, Any], key: str) -> str:
    text = _format.duration(entry.get(key))
    return ("≈" + text) if entry.get("estimated") and entry.get(key) is not None else text


def _statement_table(entries: Sequence[Mapping[str, Any]], order: str) -> str:
    head = (
        '<tr><th class="num">#</th><th>statement</th><th class="num">calls</th>'
        '<th class="num">total</th><th class="num">mean</th><th class="num">p50</th>'
        '<th class="num">p95</th><th class="num">p99</th><th class="num">errors</th>'
        '<th class="num">rows</th></tr>'
    )
    rows = []
    for rank, e in enumerate(entries, 1):
        errors = e.get("errors") or 0
        calls = e.get("calls") or 0
        error_text = _format.count(errors)
        if order == "errors" and calls:
            error_text += f" ({100.0 * errors / calls:.1f} %)"
        rows.append(
            f'<tr data-fingerprint="{_e(e.get("fingerprint"))}"><td class="num">{rank}</td>'
            f"<td>{_statement_cell(e)}</td>"
            f'<td class="num">{_format.count(calls)}</td>'
            f'<td class="num">{_format.duration(e.get("total_time_s"))}</td>'
            f'<td class="num">{_format.duration(e.get("mean_time_s"))}</td>'
            f'<td class="num">{_percentile(e, "p50_s")}</td>'
            f'<td class="num">{_percentile(e, "p95_s")}</td>'
            f'<td class="num">{_percentile(e, "p99_s")}</td>'
            f'<td class="num">{error_text}</td>'
            f'<td class="num">{_format.count(e.get("rows"))}</td></tr>'
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _top_section(doc: Mapping[str, Any]) -> str:
    by_fingerprint = {e["fingerprint"]: e for e in doc["statements"]}
    parts = ['<section id="top"><h2>Top statements</h2>']
    missing = sum(1 for e in doc["statements"] if not e.get("instrumented", True))
    if missing:
        parts.append(
            f'<p class="note">{missing} statement(s) were seen only by pg_stat_statements: '
            "clients dbsight does not instrument ran them (marked <em>not instrumented</em>; "
            "no percentiles).</p>"
        )
    for order, title in TITLES.items():
        chosen = [by_fingerprint[fp] for fp in doc["top"].get(order, [])][: SHOWN[order]]
        parts.append(f'<h3 id="top-{order}">{title}</h3>')
        if not chosen:
            parts.append('<p class="note">none</p>' if order != "errors"
                         else '<p class="note">no statement failed</p>')  # fmt: skip
            continue
        parts.append(_statement_table(chosen, order))
    parts.append("</section>")
    return "".join(parts)


def _histograms(doc: Mapping[str, Any], durations: Mapping[str, list[float]]) -> str:
    chosen = [
        e
        for e in (
            next(x for x in doc["statements"] if x["fingerprint"] == fp)
            for fp in doc["top"].get("total_time", [])
        )
        if durations.get(e["fingerprint"]) or e.get("p50_s") is not None
    ][:HISTOGRAMS]
    if not chosen:
        return ""
    figures = []
    for e in chosen:
        real = durations.get(e["fingerprint"]) or []
        if real:
            bins = measured_bins(real, HISTOGRAM_BINS)
            # the lines mark the durations drawn (the capture may have seen part of the calls)
            marks = exact_quantiles(real, (0.5, 0.95, 0.99))
            calls = int(e.get("calls") or 0)
            seen = f"{len(real):,} of its {calls:,} calls" if calls > len(real) else "every call"
            note = f"bars and lines: {seen}, as captured by the proxy"
        else:
            bins = estimated_bins(e, HISTOGRAM_BINS)
            marks = (e.get("p50_s"), e.get("p95_s"), e.get("p99_s"))
            note = "bars estimated from min, p50, p95, p99 and max"
        markers = list(zip(("p50", "p95", "p99"), marks, strict=True))
        label = f"Latency histogram of {e.get('normalized')}"
        figures.append(
            f"<figure><figcaption><code class=\"sql\">{_e(_short(e.get('normalized'), 140))}"
            f"</code><br><span class=\"note\">{_format.count(e.get('calls'))} calls · "
            f"p50 {_percentile(e, 'p50_s')} · p95 {_percentile(e, 'p95_s')} · "
            f"p99 {_percentile(e, 'p99_s')} · {note}</span></figcaption>"
            f"{_svg.histogram(bins, markers, label)}</figure>"
        )
    return (
        '<section id="latency"><h2>Latency of the top statements</h2>'
        '<p class="note">Calls by duration (log scale), the dashed lines at p50, p95 and p99.'
        f'</p><div class="plots">{"".join(figures)}</div></section>'
    )


def _short(text: Any, width: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _timeline_section(timeline: Timeline | None) -> str:
    if timeline is None or not timeline.buckets:
        return ""
    what = "statements" if timeline.source == "capture" else "slow statements"
    note = (
        f"From the {timeline.source}: {what} per second and their p95, in buckets of "
        f"{_format.span(timeline.bucket_s)}, {_format.utc(timeline.start)} to "
        f"{_format.utc(timeline.end)}."
    )
    rate = _svg.series(timeline, lambda b: b.per_s, f"{what.capitalize()} per second", "per s")
    p95 = _svg.series(
        timeline, lambda b: b.p95_ms, f"p95 of {what} in ms", "p95 ms", kind="line"
    )
    return (
        f'<section id="timeline"><h2>Over time</h2><p class="note">{_e(note)}</p>'
        f"<figure><figcaption>{_e(what.capitalize())} per second</figcaption>{rate}</figure>"
        f'<figure style="margin-top:12px"><figcaption>p95 (ms)</figcaption>{p95}</figure>'
        "</section>"
    )


# -- slow queries --------------------------------------------------------------------------
def _findings(findings: Iterable[Mapping[str, Any]]) -> str:
    items = []
    for f in sorted(findings, key=lambda f: _SEVERITY.get(str(f.get("severity")), 3)):
        where = ", ".join(str(x) for x in (f.get("node"), f.get("relation")) if x)
        suggestion = f.get("suggestion")
        items.append(
            f"<li>{_sev(f.get('severity'))}{_e(f.get('message') or f.get('summary') or f.get('kind'))}"
            + (f' <span class="muted">({_e(where)})</span>' if where else "")
            + (f"<br><span class=\"muted\">→ {_e(suggestion)}</span>" if suggestion else "")
            + "</li>"
        )
    return f'<ul class="findings">{"".join(items)}</ul>' if items else ""


def _slow_section(slow: Sequence[Mapping[str, Any]]) -> str:
    if not slow:
        return ""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in slow:  # newest first
        groups[str(record.get("fingerprint"))].append(record)
    ordered = sorted(
        groups.values(), key=lambda rs: max(float(r.get("duration_ms") or 0.0) for r in rs),
        reverse=True,
    )
    cards = []
    for index, records in enumerate(ordered):
        shown = next((r for r in records if r.get("plan")), records[0])
        worst = max(float(r.get("duration_ms") or 0.0) for r in records)
        findings = findings_of(shown)
        kv = [
            ("slowest", _format.ms(worst)),
            ("seen", f"{len(records)}×"),
            ("last", shown.get("ts")),
            ("service", ", ".join(dict.fromkeys(str(r.get("service")) for r in records if r.get("service")))),
            ("route", shown.get("route")),
            ("database", shown.get("database")),
            ("SQLSTATE", shown.get("sqlstate")),
            ("plan", shown.get("plan_error")),
        ]
        meta = "".join(f"<span>{_e(k)} <b>{_e(v)}</b></span>" for k, v in kv if v)
        tree = plan_tree(shown.get("plan"), findings)
        badges = "".join(_sev(s) for s in dict.fromkeys(str(f.get("severity")) for f in findings))
        opened = " open" if index == 0 else ""
        cards.append(
            f'<details class="item slow"{opened}><summary><b>{_format.ms(worst)}</b> '
            f'{badges}<code class="sql">{_e(_short(shown.get("normalized"), 120))}</code>'
            f'</summary><pre class="sql">{_e(shown.get("normalized"))}</pre>'
            f'<div class="kv">{meta}</div>{_findings(findings)}'
            + (f"<h4>Plan</h4>{tree}" if tree else "")
            + "</details>"
        )
    return (
        f'<section id="slow"><h2>Slow queries</h2><p class="note">{len(slow)} slow statement(s) '
        f"of {len(groups)} kind(s), slowest first; the plan is EXPLAIN's, its constants masked."
        f"</p>{''.join(cards)}</section>"
    )


# -- advice, checks, N+1 -------------------------------------------------------------------
def _advice_section(advice: Mapping[str, Any] | None) -> str:
    if advice is None:
        return ""
    parts = ['<section id="advice"><h2>Index advice</h2>']
    indexes = list(advice.get("indexes") or ())
    if advice.get("error"):
        parts.append(f'<p class="note">No advice: {_e(advice["error"])}</p>')
    elif not indexes:
        parts.append('<p class="note">No index would make the workload faster enough.</p>')
    for index in indexes:
        columns = ", ".join(str(c) for c in index.get("columns") or ())
        kv = [("table", index.get("table")), ("columns", columns),
              ("include", ", ".join(str(c) for c in index.get("include") or ())),
              ("where", index.get("where"))]  # fmt: skip
        rows = []
        for s in index.get("statements") or ():
            before, after = s.get("measured_before_ms"), s.get("measured_after_ms")
            rows.append(
                f"<tr><td>{_sql(s.get('normalized'))}</td>"
                f'<td class="num">{_format.count(s.get("calls"))}</td>'
                f'<td class="num">{_format.count(s.get("cost_before"))} → '
                f'{_format.count(s.get("cost_after"))}</td>'
                f"<td>{_svg.before_after(before, after, 'Measured time before and after')}"
                + (f'<b class="speedup">{_e(_format.ratio(before, after))}</b>'
                   if _format.ratio(before, after) else '<span class="note">not verified</span>')
                + "</td></tr>"
            )
        overhead = index.get("write_overhead") or {}
        overhead_text = " · ".join(
            f"{_e(str(k).replace('_', ' '))} {_e(_format.count(v) if _number(v) else v)}"
            for k, v in overhead.items()
        )
        parts.append(
            f'<div class="card" style="margin-bottom:12px"><pre class="sql">{_e(index.get("create"))}</pre>'
            + '<div class="kv">'
            + "".join(f"<span>{_e(k)} <b>{_e(v)}</b></span>" for k, v in kv if v)
            + "</div>"
            + (f"<p>{_e(index.get('reason'))}</p>" if index.get("reason") else "")
            + (f'<p class="note">write overhead: {overhead_text}</p>' if overhead_text else "")
            + ('<p class="note">The predicate\'s values are masked: <code>dbsight advise</code> '
               "prints them.</p>" if index.get("values_masked") else "")  # fmt: skip
            + (
                '<table><thead><tr><th>statement</th><th class="num">calls</th>'
                '<th class="num">planner cost</th><th>measured</th></tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table>"
                if rows
                else ""
            )
            + "</div>"
        )
    rejected = list(advice.get("rejected") or ())
    if rejected:
        items = "".join(
            f"<li><b>{_e(r.get('table'))}</b> ({_e(', '.join(str(c) for c in r.get('columns') or ()))})"
            f": {_e(r.get('reason'))}</li>"
            for r in rejected
        )
        parts.append(
            f'<details class="item"><summary>Candidates not advised ({len(rejected)})</summary>'
            f"<ul>{items}</ul></details>"
        )
    findings = [f if isinstance(f, Mapping) else {"message": f} for f in advice.get("findings") or ()]
    if findings:
        parts.append(f"<h3>Advisor findings</h3>{_findings(findings)}")
    parts.append("</section>")
    return "".join(parts)


def _items_table(items: Sequence[Any]) -> str:
    dicts = [i for i in items if isinstance(i, Mapping)][:100]
    if not dicts:
        return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items[:100]) + "</ul>"
    keys = list(dict.fromkeys(k for item in dicts for k in item))
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(item.get(k))}</td>" for k in keys) + "</tr>" for item in dicts
    )
    more = f'<p class="note">and {len(items) - 100} more</p>' if len(items) > 100 else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _checks_section(checks: Mapping[str, Any] | None) -> str:
    if checks is None:
        return ""
    results = sorted(
        checks.get("checks") or (),
        key=lambda c: (c.get("status") == "ok", _SEVERITY.get(str(c.get("severity")), 3)),
    )
    failed = sum(1 for c in results if c.get("status") != "ok")
    if checks.get("error"):
        return (
            '<section id="checks"><h2>Database checks</h2>'
            f'<p class="note">Not run: {_e(checks["error"])}</p></section>'
        )
    parts = [
        '<section id="checks"><h2>Database checks</h2>'
        f'<p class="note">{_e(checks.get("database"))}, checked {_e(checks.get("checked_at"))}: '
        f"{failed} of {len(results)} need attention.</p>"
    ]
    for check in results:
        status = str(check.get("status") or "error")
        badges = _tag(status, f"sev status-{escape(status)}" + (
            f" sev-{escape(str(check.get('severity')))}" if status == "failed" else ""))  # fmt: skip
        head = (
            f"{badges}{_sev(check.get('severity')) if status != 'ok' else ''}"
            f"<b>{_e(check.get('title') or check.get('name'))}</b> "
            f'<span class="muted">{_e(check.get("summary"))}</span>'
        )
        items = list(check.get("items") or ())
        hint = f'<p class="note">→ {_e(check.get("hint"))}</p>' if check.get("hint") else ""
        if items or hint:
            parts.append(
                f'<details class="item check"><summary>{head}</summary>{hint}'
                f"{_items_table(items) if items else ''}</details>"
            )
        else:
            parts.append(f'<div class="item check card" style="margin-bottom:10px">{head}</div>')
    parts.append("</section>")
    return "".join(parts)


def _n_plus_one_section(findings: Sequence[Mapping[str, Any]]) -> str:
    if not findings:
        return ""
    rows = "".join(
        f"<tr><td>{_e(f.get('route') or '–')}</td>"
        f"<td>{_sql(f.get('normalized'))}</td>"
        f'<td class="num">{_format.count(f.get("count"))}</td>'
        f'<td class="num">{_format.ms(f.get("total_ms"))}</td>'
        f'<td class="num">{_format.count(f.get("requests"))}</td>'
        f'<td class="num">{_format.utc(f.get("last_seen"))}</td></tr>'
        for f in findings
    )
    return (
        '<section id="n-plus-one"><h2>N+1 queries</h2><p class="note">One request running the '
        "same statement again and again: a query per row of an earlier result. "
        "“Runs” is the worst request's count.</p><table><thead><tr><th>route</th>"
        '<th>statement</th><th class="num">runs</th><th class="num">their time</th>'
        '<th class="num">requests</th><th class="num">last seen</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
    )


# -- the page ------------------------------------------------------------------------------
def _header(doc: Mapping[str, Any]) -> str:
    totals = doc["totals"]
    services = ", ".join(doc["services"]) or "dbsight"
    time_range = doc["time_range"]
    advice, checks = doc.get("advice"), doc.get("checks")
    cards = [
        (_format.count(totals.get("calls")), "statements run"),
        (_format.count(totals.get("fingerprints")), "distinct statements"),
        (_format.duration(totals.get("total_time_s")), "database time"),
        (_format.count(totals.get("errors")), "errors"),
        (_format.count(len(doc["slow"])), "slow queries"),
        (_format.count(len(doc["n_plus_one"])), "N+1 patterns"),
    ]
    if doc.get("instances"):
        cards.append((f"{doc['instances']} / {doc['workers']}", "instances / workers"))
    if advice is not None:
        cards.append((_format.count(len(advice.get("indexes") or ())), "indexes advised"))
    if checks is not None:
        failing = sum(1 for c in checks.get("checks") or () if c.get("status") != "ok")
        cards.append((_format.count(failing), "checks failing"))
    sources = ", ".join(doc["sources"])
    return (
        f"<header><h1>dbsight report: {_e(services)}</h1>"
        f'<p class="meta">From <strong>{_e(_when(time_range["from"]))}</strong> to '
        f'<strong>{_e(_when(time_range["to"]))}</strong> · generated '
        f'<strong>{_e(_when(doc["generated_at"]))}</strong>'
        + (f"<br>Sources: {_e(sources)}" if sources else "")
        + '</p><div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{_e(v)}</div><div class="label">{_e(k)}</div></div>'
            for v, k in cards
        )
        + "</div></header>"
    )


def build_report(inputs: ReportInputs) -> str:
    """The report as one self-contained HTML document."""
    doc, timeline = assemble(inputs)
    durations: dict[str, list[float]] = defaultdict(list)
    for record in inputs.captured:
        durations[record.fingerprint].append(record.duration_s)
    sections = [
        ("timeline", "Over time", _timeline_section(timeline)),
        ("top", "Top statements", _top_section(doc) if doc["statements"] else ""),
        ("latency", "Latency", _histograms(doc, durations)),
        ("slow", "Slow queries", _slow_section(doc["slow"])),
        ("advice", "Index advice", _advice_section(doc.get("advice"))),
        ("checks", "Database checks", _checks_section(doc.get("checks"))),
        ("n-plus-one", "N+1 queries", _n_plus_one_section(doc["n_plus_one"])),
    ]
    present = [(anchor, title, html) for anchor, title, html in sections if html]
    nav = "".join(f'<li><a href="#{anchor}">{title}</a></li>' for anchor, title, _ in present)
    body = "".join(html for _, _, html in present) or '<p class="note">Nothing to report.</p>'
    title = f"dbsight report: {', '.join(doc['services']) or 'dbsight'}"
    privacy = (
        "Plans and advice keep their constants (include_query_bodies)."
        if inputs.include_query_bodies
        else "Statements are normalized and plans redacted: no literal or parameter value "
        "is in this file."
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"{_header(doc)}<nav aria-label=\"Sections\"><ul>{nav}</ul></nav><main>{body}</main>"
        f"<footer>Generated by dbsight {_e(__version__)}. {privacy}</footer></body></html>\n"
    )
