// dbsight dashboard: DOM builders. Every value goes in through textContent or an
// attribute, never through innerHTML, so nothing a statement or a label holds is markup.

const SVG = "http://www.w3.org/2000/svg";

/** An element: h("td", {class: "num"}, "12", child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

// -- numbers ------------------------------------------------------------------------------
export function ms(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const v = seconds * 1000;
  if (v >= 10000) return `${(v / 1000).toFixed(1)} s`;
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 100) return `${v.toFixed(0)} ms`;
  if (v >= 1) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(3)} ms`;
}
export function count(n) {
  if (n === null || n === undefined) return "–";
  return Math.round(n).toLocaleString("en-US");
}
export function rate(n) {
  if (n === null || n === undefined) return "–";
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}
export function pct(ratio) {
  if (ratio === null || ratio === undefined) return "–";
  const v = ratio * 100;
  return `${v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(1)} %`;
}
export function when(epochSeconds) {
  if (!epochSeconds) return "–";
  return new Date(epochSeconds * 1000).toLocaleTimeString();
}

export function sev(severity, text) {
  return h("span", { class: `sev sev-${severity || "info"}` }, text || severity || "info");
}
export function tag(text, extra) {
  return h("span", { class: `tag${extra ? " " + extra : ""}` }, text);
}

// -- small plots --------------------------------------------------------------------------
/** A sparkline of numbers (nulls are gaps) with an accessible label. */
export function sparkline(values, label, width = 220, height = 40) {
  const svg = s("svg", {
    class: "spark", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": label,
  });
  const known = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  if (known.length < 2) return svg;
  const max = Math.max(...known) || 1;
  const step = width / (values.length - 1);
  let d = "";
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined || !Number.isFinite(v)) { pen = false; return; }
    const x = (i * step).toFixed(1);
    const y = (height - 3 - (v / max) * (height - 6)).toFixed(1);
    d += `${pen ? "L" : "M"}${x} ${y} `;
    pen = true;
  });
  svg.append(s("path", { class: "line", d }));
  return svg;
}

/** Latency histogram: bars per 1-2-5 bin ({le_s, count}). */
export function histogram(bins, label) {
  const width = 560, height = 180, left = 40, bottom = 34, top = 10;
  const svg = s("svg", {
    class: "plot", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": label,
  });
  if (!bins.length) return svg;
  const max = Math.max(...bins.map((b) => b.count)) || 1;
  const slot = (width - left - 10) / bins.length;
  svg.append(s("line", { class: "axis", x1: left, y1: height - bottom, x2: width - 10, y2: height - bottom }));
  svg.append(s("text", { x: 4, y: top + 8 }, count(max)));
  svg.append(s("text", { x: 4, y: height - bottom }, "0"));
  bins.forEach((bin, i) => {
    const barHeight = (bin.count / max) * (height - bottom - top);
    const x = left + i * slot + 2;
    const bar = s("rect", {
      class: "bar", x: x.toFixed(1), y: (height - bottom - barHeight).toFixed(1),
      width: Math.max(slot - 4, 1).toFixed(1), height: barHeight.toFixed(1),
    });
    bar.append(s("title", {}, `≤ ${bin.le_s === null ? "∞" : ms(bin.le_s)}: ${count(bin.count)} calls`));
    svg.append(bar);
    svg.append(s("text", {
      x: (left + i * slot + slot / 2).toFixed(1), y: height - bottom + 14, "text-anchor": "middle",
    }, bin.le_s === null ? "more" : ms(bin.le_s).replace(" ", "")));
  });
  svg.append(s("text", { class: "axis-label", x: width / 2, y: height - 4, "text-anchor": "middle" },
    "latency (upper edge of each bin)"));
  return svg;
}

// -- tables -------------------------------------------------------------------------------
/** columns: [{key, label, num, sortable}]; cells(row) -> array of cell contents. */
export function table(columns, rows, cells, sort) {
  const head = h("tr", {}, columns.map((col) => {
    const active = sort && sort.key === col.key;
    const th = h("th", {
      class: col.num ? "num" : null, scope: "col",
      "aria-sort": active ? (sort.desc ? "descending" : "ascending") : (col.sortable ? "none" : null),
    });
    if (col.sortable && sort) {
      th.append(h("button", {
        type: "button", class: "sort", "data-key": col.key,
        onclick: () => sort.onSort(col.key),
      }, col.label, active ? (sort.desc ? " ▼" : " ▲") : ""));
    } else th.append(col.label);
    return th;
  }));
  const body = h("tbody", {}, rows.map((row) => h("tr", {}, cells(row).map((cell, i) =>
    h("td", { class: columns[i].num ? "num" : null }, cell)))));
  return h("table", {}, h("thead", {}, head), body);
}

export function kv(pairs) {
  return h("div", { class: "kv" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => h("span", {}, `${k} `, h("b", {}, v))));
}

// -- plans --------------------------------------------------------------------------------
const PROPERTIES = [
  "Join Type", "Strategy", "Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond",
  "Join Filter", "Filter", "Rows Removed by Filter", "Rows Removed by Join Filter",
  "Sort Key", "Sort Method", "Sort Space Used", "Group Key", "Hash Batches",
  "Peak Memory Usage", "Heap Fetches", "Shared Hit Blocks", "Shared Read Blocks",
  "Temp Read Blocks", "Temp Written Blocks", "Workers Launched", "Subplan Name",
];

export function planRoot(plan) {
  let p = plan;
  if (typeof p === "string") { try { p = JSON.parse(p); } catch { return null; } }
  if (Array.isArray(p)) p = p[0];
  if (p && typeof p === "object" && p.Plan) p = p.Plan;
  return p && typeof p === "object" && p["Node Type"] ? p : null;
}

function nodeLabel(node) {
  let text = node["Node Type"];
  if (node["Relation Name"]) {
    text += ` on ${node["Relation Name"]}`;
    if (node.Alias && node.Alias !== node["Relation Name"]) text += ` ${node.Alias}`;
  }
  if (node["Index Name"]) text += ` using ${node["Index Name"]}`;
  return text;
}

function nodeFigures(node) {
  const parts = [];
  if (node["Total Cost"] !== undefined) parts.push(`cost ${Number(node["Total Cost"]).toFixed(2)}`);
  if (node["Plan Rows"] !== undefined) parts.push(`~${count(node["Plan Rows"])} rows`);
  if (node["Actual Total Time"] !== undefined) {
    const loops = node["Actual Loops"] || 1;
    parts.push(`actual ${ms(node["Actual Total Time"] / 1000)}`);
    parts.push(`${count(node["Actual Rows"])} rows${loops > 1 ? ` × ${count(loops)} loops` : ""}`);
  }
  return parts.join(" · ");
}

function flagged(node, findings) {
  return findings.filter((f) => f.node === node["Node Type"] &&
    (!f.relation || f.relation === node["Relation Name"]));
}

function planNode(node, findings, depth) {
  const flags = flagged(node, findings);
  const summary = h("summary", {}, h("span", { class: "node" }, nodeLabel(node)), " ",
    h("span", { class: "figures" }, nodeFigures(node)),
    flags.map((f) => [" ", sev(f.severity, (f.kind || "finding").replaceAll("_", " "))]));
  const props = PROPERTIES.filter((k) => node[k] !== undefined && node[k] !== "" && node[k] !== null);
  const children = (node.Plans || []).filter((c) => c && typeof c === "object");
  const inner = [];
  if (props.length) {
    inner.push(h("dl", { class: "props" }, props.map((k) => [h("dt", {}, k),
      h("dd", {}, Array.isArray(node[k]) ? node[k].join(", ") : String(node[k]))])));
  }
  if (children.length) inner.push(h("ul", { class: "plan" }, children.map((c) => planNode(c, findings, depth + 1))));
  if (!inner.length) return h("li", {}, h("div", { class: "leaf" }, summary.childNodes.length ? [...summary.childNodes] : ""));
  return h("li", {}, h("details", { open: depth < 3 || flags.length > 0 }, summary, inner));
}

/** The plan as a nested list of <details>, the analyzer's findings as badges on nodes. */
export function planTree(plan, findings) {
  const root = planRoot(plan);
  if (!root) return null;
  return h("ul", { class: "plan plan-root" }, planNode(root, findings || [], 0));
}

export function findingsList(findings) {
  if (!findings || !findings.length) return null;
  return h("ul", { class: "findings" }, findings.map((f) => h("li", {},
    sev(f.severity, (f.kind || "finding").replaceAll("_", " ")), " ", f.message || "",
    f.suggestion ? h("div", { class: "note" }, f.suggestion) : null)));
}
