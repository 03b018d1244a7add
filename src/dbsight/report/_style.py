"""The report's stylesheet, inlined in its ``<style>``: light and dark themes from
``prefers-color-scheme`` (text contrast at least 7:1 on the page background in both, 4.5:1
for muted text), visible keyboard focus, plots coloured through these classes."""

CSS = """
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --card: #f6f8fa; --border: #d0d7de;
  --accent: #0550ae; --bar: #3b82c4; --after: #1a7f37; --before: #9a6700; --line: #cf222e;
  --grid: #d8dee4; --crit-bg: #ffebe9; --crit-fg: #a40e26; --warn-bg: #fff8c5;
  --warn-fg: #7d4e00; --info-bg: #ddf4ff; --info-fg: #0a3069; --ok-bg: #dafbe1;
  --ok-fg: #116329; --code: #eff1f3;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9da7b3; --card: #161b22; --border: #30363d;
    --accent: #79c0ff; --bar: #58a6ff; --after: #3fb950; --before: #d29922; --line: #ff7b72;
    --grid: #30363d; --crit-bg: #490202; --crit-fg: #ffa198; --warn-bg: #3b2300;
    --warn-fg: #f2cc60; --info-bg: #0c2d6b; --info-fg: #a5d6ff; --ok-bg: #033a16;
    --ok-fg: #7ee787; --code: #1f2630;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
header, main, footer, nav { max-width: 1240px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--border); }
h3 { font-size: 16px; margin: 22px 0 8px; }
a { color: var(--accent); }
a:focus-visible, summary:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; border-radius: 3px; }
.muted, .note { color: var(--muted); }
.meta { color: var(--muted); margin: 0 0 16px; }
.meta strong { color: var(--fg); font-weight: 600; }
nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 18px; padding: 0; margin: 8px 0 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.card { background: var(--card); border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; }
.card .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--border); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 13px; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: var(--card); }
code, .sql { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.sql { white-space: pre-wrap; word-break: break-word; }
td .sql { display: block; max-width: 560px; }
pre.sql { background: var(--code); padding: 8px 10px; border-radius: 6px; margin: 6px 0; }
.tag, .sev { display: inline-block; font-size: 12px; line-height: 18px; padding: 0 7px;
  border-radius: 9px; margin: 2px 4px 0 0; white-space: nowrap; border: 1px solid var(--border); }
.tag { color: var(--muted); }
.tag-warn, .sev-warning, .status-failed.sev-warning { background: var(--warn-bg); color: var(--warn-fg); border-color: transparent; }
.sev-critical, .status-failed { background: var(--crit-bg); color: var(--crit-fg); border-color: transparent; }
.sev-info { background: var(--info-bg); color: var(--info-fg); border-color: transparent; }
.status-ok { background: var(--ok-bg); color: var(--ok-fg); border-color: transparent; }
.status-error { background: var(--warn-bg); color: var(--warn-fg); border-color: transparent; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 14px; }
figure { margin: 0; background: var(--card); border: 1px solid var(--border); border-radius: 8px; padding: 10px 12px; }
figcaption { font-size: 13px; margin-bottom: 6px; }
svg.plot { display: block; max-width: 100%; height: auto; }
svg .bar { fill: var(--bar); }
svg .bar.before { fill: var(--before); }
svg .bar.after { fill: var(--after); }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .grid { stroke: var(--grid); stroke-width: 1; }
svg .line { fill: none; stroke: var(--line); stroke-width: 2; }
svg .dot { fill: var(--line); }
svg .marker { stroke: var(--fg); stroke-width: 1.2; stroke-dasharray: 4 3; }
svg text { fill: var(--muted); font: 11px system-ui, sans-serif; }
svg text.marker-label { fill: var(--fg); font-weight: 600; }
svg text.axis-label { fill: var(--muted); }
details.item { background: var(--card); border: 1px solid var(--border); border-radius: 8px;
  padding: 8px 12px; margin: 0 0 10px; }
details.item > summary { cursor: pointer; }
details.stmt > summary > code.sql { display: inline; }
details.stmt[open] > summary { color: var(--muted); }
details.item[open] > summary { margin-bottom: 8px; }
summary { cursor: pointer; }
details.stmt > summary > code.sql { display: inline; }
details.stmt[open] > summary { color: var(--muted); }
ul.findings { padding-left: 18px; margin: 6px 0; }
ul.findings li { margin: 3px 0; }
ul.plan { list-style: none; margin: 0; padding-left: 18px; border-left: 1px dashed var(--border); }
ul.plan-root { padding-left: 0; border-left: 0; }
ul.plan li { margin: 3px 0; }
ul.plan .node { font-weight: 600; }
ul.plan .figures { color: var(--muted); font-size: 13px; }
ul.plan .leaf { padding-left: 14px; }
dl.props { display: grid; grid-template-columns: max-content 1fr; gap: 1px 12px; margin: 4px 0 4px 16px;
  font-size: 13px; }
dl.props dt { color: var(--muted); }
dl.props dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-word; }
.kv { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; color: var(--muted); margin: 4px 0; }
.kv b { color: var(--fg); font-weight: 600; }
.finding { font-size: 13px; margin-top: 2px; }
.speedup { color: var(--after); }
footer { padding: 30px 24px 40px; color: var(--muted); font-size: 13px; }
@media print { details { break-inside: avoid; } }
"""
