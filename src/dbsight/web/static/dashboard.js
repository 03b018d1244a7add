// dbsight dashboard: hash routing (#/statements/<fingerprint> ...), polling of the JSON
// endpoints every few seconds, the bearer token kept in sessionStorage. No framework, no
// build step: this file and render.js are what the browser runs.
import {
  count, findingsList, h, histogram, kv, ms, pct, planTree, rate, sev, sparkline, table, tag, when,
} from "./render.js";

const API = document.querySelector('meta[name="dbsight-api"]').content;
const MODE = document.querySelector('meta[name="dbsight-mode"]').content;
const POLL_MS = 3000;
const TOKEN_KEY = "dbsight-token";
const TOP_LIMIT = 200;
const SLOW_SHOWN = 8; // slow runs on a statement's page (the newest)

const state = {
  sort: { key: "total_time_s", desc: true },
  text: "",
  route: "",
  paused: false,
  view: null,
  busy: false,
  asked: false,
};

class Unauthorized extends Error {}

async function api(path) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(API + path, { headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized();
  if (response.status === 404) return null; // an endpoint turned off, or a statement gone
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// -- a section re-rendered only when its data changed (focus and open details survive) ----
function section(parent, title, id) {
  const body = h("div", { class: "section-body" });
  const el = h("section", { id, "aria-labelledby": `${id}-h` }, h("h2", { id: `${id}-h` }, title), body);
  el.hidden = true;
  parent.append(el);
  let last = null;
  return {
    el,
    show(data, build) {
      const key = JSON.stringify(data);
      if (data === null || data === undefined || (Array.isArray(data) && !data.length)) {
        el.hidden = true; last = null; return;
      }
      el.hidden = false;
      if (key === last) return;
      last = key;
      const built = build(data);
      body.replaceChildren(...[built].flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
    },
  };
}

// The whole statement is in the page (search, copy); CSS shows its first lines.
function sqlLink(fingerprint, normalized) {
  return h("a", { href: `#/statements/${encodeURIComponent(fingerprint)}`, class: "sql clamp" }, normalized);
}

// -- overview: rates with sparklines, the statements --------------------------------------
const COLUMNS = [
  { key: "normalized", label: "Statement" },
  { key: "calls", label: "Calls", num: true, sortable: true },
  { key: "total_time_s", label: "Total", num: true, sortable: true },
  { key: "mean_time_s", label: "Mean", num: true, sortable: true },
  { key: "p95_s", label: "p95", num: true, sortable: true },
  { key: "p99_s", label: "p99", num: true, sortable: true },
  { key: "rows", label: "Rows", num: true, sortable: true },
  { key: "errors", label: "Errors", num: true, sortable: true },
  { key: "routes", label: "Routes", sortable: true },
];

function sortValue(row, key) {
  if (key === "routes") return Object.keys(row.routes || {}).length;
  const v = row[key];
  return v === null || v === undefined ? -1 : v;
}

function cards(timeline) {
  const points = timeline.points;
  const last = points[points.length - 1] || {};
  const series = (k) => points.map((p) => (p[k] === undefined ? null : p[k]));
  const items = [
    ["statements/s", rate(last.statements_per_s), series("statements_per_s")],
    ["p95 latency", ms(last.p95_s), series("p95_s")],
    ["error rate", pct(last.error_rate), series("error_rate")],
  ];
  if (timeline.http) {
    items.push(["share of request time in the database", pct(last.db_share), series("db_share")]);
    items.push(["requests/s", rate(last.requests_per_s), series("requests_per_s")]);
  }
  const minutes = Math.max(1, Math.round((Date.now() / 1000 - timeline.since) / 60));
  return h("div", {},
    h("div", { class: "cards" }, items.map(([label, value, values]) => h("div", { class: "card" },
      h("div", { class: "value" }, value), h("div", { class: "label" }, label),
      sparkline(values, `${label} over the last ${minutes} minute(s)`)))),
    h("p", { class: "note" }, `Sparklines: the last ${minutes} minute(s), one point per ${timeline.interval_s} s; the values are the latest interval's.`));
}

function overview(main) {
  const rates = section(main, "Now", "rates");
  const nplus = section(main, "N+1 findings", "overview-n-plus-one");
  const statements = h("section", { id: "statements", "aria-labelledby": "statements-h" });
  const text = h("input", { type: "search", id: "filter-text", placeholder: "text in the statement", value: state.text });
  const route = h("select", { id: "filter-route" }, h("option", { value: "" }, "every route"));
  const routeFilter = h("span", {}, h("label", { for: "filter-route" }, " Route "), route);
  const holder = h("div", { class: "table-holder" });
  const shown = h("p", { class: "note", id: "statements-count" });
  statements.append(
    h("h2", { id: "statements-h" }, "Top statements"),
    h("div", { class: "filters" },
      h("label", { for: "filter-text" }, "Filter "), text,
      routeFilter),
    shown, holder);
  main.append(statements);
  let summary = null;
  const draw = () => {
    if (!summary) return;
    const needle = state.text.toLowerCase();
    let rows = summary.top.filter((r) => (!needle || r.normalized.toLowerCase().includes(needle)) &&
      (!state.route || (r.routes && state.route in r.routes)));
    const { key, desc } = state.sort;
    rows = rows.slice().sort((a, b) => (sortValue(a, key) - sortValue(b, key)) * (desc ? -1 : 1));
    shown.textContent = `${rows.length} of ${summary.top.length} listed statements (${count(summary.totals.fingerprints)} distinct seen, ${count(summary.totals.calls)} calls)`;
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
    holder.replaceChildren(table(COLUMNS, rows, (r) => [
      sqlLink(r.fingerprint, r.normalized), count(r.calls), ms(r.total_time_s), ms(r.mean_time_s),
      ms(r.p95_s), ms(r.p99_s), count(r.rows), count(r.errors),
      Object.keys(r.routes || {}).length ? Object.keys(r.routes).join(", ") : "–",
    ], {
      ...state.sort,
      onSort: (k) => {
        state.sort = { key: k, desc: state.sort.key === k ? !state.sort.desc : true };
        draw();
      },
    }));
    if (focused) { const b = holder.querySelector(`button[data-key="${focused}"]`); if (b) b.focus(); }
  };
  text.addEventListener("input", () => { state.text = text.value; draw(); });
  route.addEventListener("change", () => { state.route = route.value; draw(); });
  return {
    needs: { summary: `/metrics/summary?limit=${TOP_LIMIT}`, timeline: "/metrics/timeline" },
    update(data) {
      if (data.timeline) rates.show(data.timeline, cards);
      if (!data.summary) { statements.hidden = true; return; }
      summary = data.summary;
      nplus.show(summary.n_plus_one.slice(0, 5), nPlusOneTable);
      const routes = [...new Set(summary.top.flatMap((r) => Object.keys(r.routes || {})))].sort();
      routeFilter.hidden = routes.length === 0;
      const have = [...route.options].slice(1).map((o) => o.value);
      if (JSON.stringify(have) !== JSON.stringify(routes)) {
        route.replaceChildren(h("option", { value: "" }, "every route"),
          routes.map((r) => h("option", { value: r, selected: r === state.route }, r)));
      }
      draw();
    },
  };
}

// -- one statement -------------------------------------------------------------------------
function statementView(main, fingerprint) {
  main.append(h("p", {}, h("a", { href: "#/" }, "← all statements")));
  const head = section(main, "Statement", "statement");
  const latency = section(main, "Latency", "latency");
  const routes = section(main, "Routes", "routes");
  const nplus = section(main, "N+1 findings", "statement-n-plus-one");
  const advice = section(main, "Index advice", "index-advice");
  const findings = section(main, "Plan findings", "plan-findings");
  const slow = section(main, "Recent slow runs", "slow-runs");
  const gone = h("p", { class: "note", hidden: true }, "No statistics hold this statement (any more).");
  main.append(gone);
  return {
    needs: { statement: `/metrics/statement?fingerprint=${encodeURIComponent(fingerprint)}` },
    update(data) {
      const doc = data.statement;
      gone.hidden = Boolean(doc);
      if (!doc) return;
      const st = doc.statement;
      head.show(st, () => [
        h("pre", { class: "sql", id: "statement-sql" }, st.normalized),
        kv([["operation", st.operation], ["system", st.system], ["tables", (st.tables || []).join(", ")],
          ["databases", (st.databases || []).join(", ")], ["fingerprint", st.fingerprint]]),
        kv([["calls", count(st.calls)], ["total", ms(st.total_time_s)], ["mean", ms(st.mean_time_s)],
          ["p50", ms(st.p50_s)], ["p95", ms(st.p95_s)], ["p99", ms(st.p99_s)], ["max", ms(st.max_time_s)],
          ["rows", count(st.rows)], ["errors", count(st.errors)], ["last seen", when(st.last_seen)]]),
      ]);
      latency.show(doc.latency, (bins) => h("figure", {},
        h("figcaption", {}, `${count(st.calls)} calls`), histogram(bins, "latency histogram")));
      routes.show(Object.entries(st.routes || {}), (rows) => table(
        [{ label: "Route" }, { label: "Calls", num: true }], rows.sort((a, b) => b[1] - a[1]),
        ([r, n]) => [r, count(n)]));
      nplus.show(doc.n_plus_one, nPlusOneTable);
      const index = (doc.insights || []).filter((i) => i.kind === "index");
      advice.show(index, (items) => items.map((i) => indexAdvice(i, fingerprint)));
      const plan = st.plan_summary && st.plan_summary.findings;
      findings.show(plan && plan.length ? plan : null, findingsList);
      // the newest runs, and the newest with a plan when none of those has one; the first
      // with a plan is open (the newest when none has)
      const shown = doc.slow.slice(0, SLOW_SHOWN);
      const planned = doc.slow.find((r) => r.plan);
      if (planned && !shown.includes(planned)) shown.push(planned);
      const open = shown.includes(planned) ? planned : shown[0];
      const older = doc.slow.length - shown.length;
      slow.show(shown, (records) => [
        records.map((r) => slowRun(r, r === open)),
        older > 0
          ? h("p", { class: "note" }, `${older} other slow runs of it are kept; `, h("a", { href: "#/slow" }, "all slow queries"))
          : null,
      ]);
    },
  };
}

function indexAdvice(item, fingerprint) {
  const d = item.details || {};
  const rows = (d.statements || []).filter((s) => !fingerprint || s.fingerprint === fingerprint);
  return h("div", { class: "item" },
    h("p", {}, item.resolved ? tag("resolved") : sev(item.severity), " ", item.summary),
    kv([["index", d.index || `${d.table} (${(d.columns || []).join(", ")})`],
      ["verified", d.verified ? "yes (measured on the database)" : "no (planner estimate)"],
      ["speed-up", d.speedup ? `${d.speedup.toFixed(1)}×` : null]]),
    rows.length ? table(
      [{ label: "Statement" }, { label: "Cost before", num: true }, { label: "Cost after", num: true },
        { label: "Measured before", num: true }, { label: "Measured after", num: true }],
      rows, (s) => [h("a", { href: `#/statements/${encodeURIComponent(s.fingerprint)}` }, h("code", {}, s.fingerprint)),
        count(s.cost_before), count(s.cost_after),
        s.measured_before_ms === null ? "–" : ms(s.measured_before_ms / 1000),
        s.measured_after_ms === null ? "–" : ms(s.measured_after_ms / 1000)]) : null);
}

function slowRun(record, open) {
  const tree = planTree(record.plan, record.findings);
  return h("details", { class: "item", open },
    h("summary", {}, h("b", {}, `${ms(record.duration_ms / 1000)}`), " at ", record.ts,
      record.route ? [" on ", h("code", {}, record.route)] : null,
      (record.findings || []).map((f) => [" ", sev(f.severity, (f.kind || "").replaceAll("_", " "))])),
    kv([["rows", count(record.rows)], ["outcome", record.outcome], ["source", record.source],
      ["request", record.request_id], ["trace", record.trace_id]]),
    // the text as run and its parameters: only in the JSON with include_query_bodies
    record.sql ? [h("h3", {}, "As run"), h("pre", { class: "sql" }, record.sql,
      record.params ? `\n-- parameters: ${JSON.stringify(record.params)}` : "")] : null,
    findingsList(record.findings),
    tree ? h("div", { class: "plan-holder" }, h("h3", {}, "Plan"), tree)
      : h("p", { class: "note" }, record.plan_error ? `no plan: ${record.plan_error}` : "no plan"));
}

function nPlusOneTable(items) {
  return table(
    [{ label: "Route" }, { label: "Statement" }, { label: "Per request", num: true },
      { label: "Time per request", num: true }, { label: "Requests", num: true }, { label: "Last seen" }],
    items, (i) => [h("code", {}, i.route || "–"), sqlLink(i.fingerprint, i.normalized), count(i.count),
      ms(i.total_ms / 1000), count(i.requests), when(i.last_seen)]);
}

// -- lists ----------------------------------------------------------------------------------
function slowView(main) {
  const list = section(main, "Slow queries", "slow");
  const none = h("p", { class: "note", hidden: true }, "No slow statement recorded (slow_query_threshold_ms).");
  main.append(none);
  return {
    needs: { summary: "/metrics/summary?limit=1" },
    update(data) {
      none.hidden = !data.summary || data.summary.slow.length > 0;
      list.show(data.summary && data.summary.slow, (records) => table(
        [{ label: "When" }, { label: "Duration", num: true }, { label: "Route" }, { label: "Statement" },
          { label: "Findings" }],
        records, (r) => [r.ts, ms(r.duration_ms / 1000), r.route || "–", sqlLink(r.fingerprint, r.normalized),
          (r.findings || []).map((f) => sev(f.severity, (f.kind || "").replaceAll("_", " ")))]));
    },
  };
}

function nPlusOneView(main) {
  const list = section(main, "N+1 findings", "n-plus-one");
  const none = h("p", { class: "note", hidden: true }, "No N+1 finding: no request ran one statement once per row.");
  main.append(none);
  return {
    needs: { summary: "/metrics/summary?limit=1" },
    update(data) {
      none.hidden = !data.summary || data.summary.n_plus_one.length > 0;
      list.show(data.summary && data.summary.n_plus_one, nPlusOneTable);
    },
  };
}

const INSIGHT_KINDS = [
  ["index", "Index advice"], ["plan", "Plan findings"], ["check", "Database checks"],
  ["regression", "Regressions"],
];

function adviceView(main) {
  const parts = INSIGHT_KINDS.map(([kind, title]) => [kind, section(main, title, `insights-${kind}`)]);
  return {
    needs: {},
    update(data) {
      const items = (data.insights && data.insights.insights) || [];
      for (const [kind, part] of parts) {
        part.show(items.filter((i) => i.kind === kind), (list) => kind === "index"
          ? list.map((i) => indexAdvice(i, null))
          : h("ul", { class: "findings" }, list.map((i) => h("li", {},
            i.resolved ? tag("resolved") : sev(i.severity), " ",
            i.details && i.details.fingerprint ? h("a", { href: `#/statements/${i.details.fingerprint}` }, i.summary) : i.summary,
            h("span", { class: "note" }, ` · ${when(i.at)}`)))));
      }
    },
  };
}

// A silence as /metrics/alerts gives it: Alertmanager's shape (matchers with name, value,
// isRegex, isEqual; status.state pending, active or expired).
function matches(m, labels) {
  const v = labels[m.name] || "";
  const hit = m.isRegex ? new RegExp(`^(?:${m.value})$`).test(v) : v === m.value;
  return m.isEqual === false ? !hit : hit;
}

function matcherText(m) {
  return `${m.name}${m.isEqual === false ? "!" : "="}${m.isRegex ? "~" : ""}"${m.value}"`;
}

function silenced(alert, silences) {
  return silences.some((s) => (s.status || {}).state === "active" &&
    s.matchers.every((m) => matches(m, alert.labels || {})));
}

function alertsView(main) {
  const list = section(main, "Alerts", "alerts");
  const quiet = section(main, "Silences", "silences");
  return {
    needs: {},
    update(data) {
      const doc = data.alerts;
      if (!doc) return;
      list.show(doc.alerts, (alerts) => table(
        [{ label: "State" }, { label: "Alert" }, { label: "Severity" }, { label: "Summary" }, { label: "Since" }],
        alerts, (a) => [
          silenced(a, doc.silences || []) ? tag("silenced") : h("span", { class: `tag state-${a.status}` }, a.status),
          a.labels.alertname, sev(a.labels.severity), (a.annotations || {}).summary || "", a.startsAt]));
      quiet.show(doc.silences, (silences) => table(
        [{ label: "Matchers" }, { label: "Until" }, { label: "Comment" }],
        silences, (s) => [h("code", {}, s.matchers.map(matcherText).join(", ")),
          when(Date.parse(s.endsAt) / 1000), s.comment || ""]));
    },
  };
}

// -- the proxy --------------------------------------------------------------------------------
function proxyView(main) {
  const now = section(main, "Now", "proxy-now");
  const pools = section(main, "Pools", "pools");
  const servers = section(main, "Servers", "servers");
  const routing = section(main, "Routing decisions", "routing");
  const cache = section(main, "Result cache", "cache");
  const clients = section(main, "Clients", "clients");
  const rejected = section(main, "Rejections", "rejections");
  const errors = section(main, "Errors the proxy answered", "proxy-errors");
  return {
    needs: { pools: "/stats/pools", proxy: "/stats/proxy", clients: "/stats/clients", timeline: "/metrics/timeline" },
    update(data) {
      const p = data.proxy;
      if (data.timeline) now.show(data.timeline, cards);
      pools.show(data.pools && data.pools.pools, (rows) => table(
        [{ label: "Pool" }, { label: "Mode" }, { label: "Server connections", num: true }, { label: "Idle", num: true },
          { label: "Used", num: true }, { label: "Waiting", num: true }, { label: "Max", num: true },
          { label: "Acquired", num: true }, { label: "Time-outs", num: true }],
        rows, (r) => [h("code", {}, r.name), r.mode, count(r.size ?? r.server_connections), count(r.idle),
          count(r.used), count(r.waiting ?? 0), count(r.max_size ?? null), count(r.total_acquired ?? null),
          count(r.total_timeouts ?? null)]));
      servers.show(data.pools && data.pools.servers, (rows) => table(
        [{ label: "Server" }, { label: "Role" }, { label: "Address" }, { label: "Up" }, { label: "Lag", num: true },
          { label: "In rotation" }, { label: "Breaker" }],
        rows, (r) => [r.name, r.role, h("code", {}, r.address), r.up === undefined ? "–" : r.up ? "yes" : "no",
          r.lag_s === null || r.lag_s === undefined ? "–" : ms(r.lag_s),
          r.in_rotation === undefined ? "–" : r.in_rotation ? "yes" : "no",
          h("span", { class: `tag breaker-${r.breaker && r.breaker.state}` }, (r.breaker && r.breaker.state) || "–")]));
      if (!p) return;
      routing.show(p.routing, (rows) => table(
        [{ label: "Role" }, { label: "Reason" }, { label: "Units of work", num: true }],
        rows, (r) => [r.role, r.reason, count(r.count)]));
      cache.show(p.cache, (c) => kv([["hit ratio", pct(c.hit_ratio)], ["hits", count(c.hits)],
        ["misses", count(c.misses)], ["stores", count(c.stores)], ["evictions", count(c.evictions)],
        ["invalidations", count(c.invalidations)], ["entries", count(c.entries)], ["bytes", count(c.size_bytes)]]));
      clients.show({ states: p.clients, total: p.clients_total, list: data.clients && data.clients.clients },
        (c) => [kv([...Object.entries(c.states).map(([k, v]) => [k, count(v)]), ["accepted in all", count(c.total)]]),
          c.list && c.list.length ? table(
            [{ label: "Client" }, { label: "User" }, { label: "Database" }, { label: "Application" },
              { label: "State" }, { label: "Statements", num: true }, { label: "Connected" }],
            c.list, (r) => [r.client, r.user, r.database, r.application_name || "–", r.state,
              count(r.statements), when(r.connected_at)]) : null]);
      rejected.show(p.rejected && Object.keys(p.rejected).length ? Object.entries(p.rejected) : null,
        (rows) => table([{ label: "Reason" }, { label: "Rejected", num: true }], rows, ([k, v]) => [k, count(v)]));
      errors.show(Object.keys(p.errors || {}).length ? Object.entries(p.errors) : null,
        (rows) => table([{ label: "SQLSTATE" }, { label: "Count", num: true }], rows, ([k, v]) => [h("code", {}, k), count(v)]));
    },
  };
}

// -- navigation, polling, the token ----------------------------------------------------------
const VIEWS = {
  "": overview, statements: overview, slow: slowView, "n-plus-one": nPlusOneView,
  advice: adviceView, alerts: alertsView, proxy: proxyView,
};

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "statements" && parts[1]) return { name: "statement", arg: parts[1] };
  let name = parts[0] in VIEWS ? parts[0] : "";
  if (name === "" && MODE === "proxy" && !location.hash) name = "proxy";
  if (name === "proxy" && MODE !== "proxy") name = "";
  return { name, arg: null };
}

function mount() {
  const main = document.getElementById("main");
  main.replaceChildren();
  const where = route();
  state.view = where.name === "statement" ? statementView(main, where.arg) : VIEWS[where.name](main);
  state.where = where;
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.dataset.view === (where.name === "statement" ? "" : where.name);
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  refresh();
}

function nav(summary, insights, alerts) {
  const items = [];
  if (MODE === "proxy") items.push(["proxy", "Proxy", null]);
  items.push(["", "Statements", null]);
  const current = state.where && (state.where.name === "statement" ? "" : state.where.name);
  // a list with nothing in it is left out of the navigation (unless it is open)
  if (summary && (summary.slow.length || current === "slow")) items.push(["slow", "Slow queries", summary.slow.length]);
  if (summary && (summary.n_plus_one.length || current === "n-plus-one")) items.push(["n-plus-one", "N+1", summary.n_plus_one.length]);
  if (insights && insights.insights.length) items.push(["advice", "Advice & checks", insights.insights.filter((i) => !i.resolved).length]);
  if (alerts && (alerts.configured || alerts.alerts.length || alerts.silences.length)) {
    items.push(["alerts", "Alerts", alerts.alerts.filter((a) => a.status === "firing").length]);
  }
  const key = JSON.stringify(items);
  const ul = document.getElementById("nav");
  if (ul.dataset.key === key) return;
  ul.dataset.key = key;
  ul.replaceChildren(...items.map(([view, label, n]) => h("li", {}, h("a", {
    href: `#/${view}`, "data-view": view, "aria-current": view === current ? "page" : null,
  }, label, n ? [" ", h("span", { class: "count" }, String(n))] : null))));
}

function askToken(message) {
  const main = document.getElementById("main");
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true });
  const form = h("form", { class: "token", id: "token-form" },
    h("h2", {}, "Token"),
    h("p", {}, message),
    h("label", { for: "token" }, "Bearer token "), input, " ", h("button", { type: "submit" }, "Use it"),
    h("p", { class: "note" }, "Kept in this tab's session storage only, and sent as Authorization: Bearer with each request."));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    state.asked = false;
    mount();
  });
  main.replaceChildren(form);
  input.focus();
}

async function refresh() {
  if (state.busy || state.asked) return;
  state.busy = true;
  const status = document.getElementById("status");
  const view = state.view;
  try {
    const needs = { summary: "/metrics/summary?limit=1", insights: "/metrics/insights", alerts: "/metrics/alerts", ...view.needs };
    const keys = Object.keys(needs);
    const values = await Promise.all(keys.map((k) => api(needs[k])));
    const data = Object.fromEntries(keys.map((k, i) => [k, values[i]]));
    if (data.summary) document.getElementById("service").textContent =
      `${data.summary.service}${data.summary.workers > 1 ? ` · ${data.summary.workers} workers` : ""}${MODE === "proxy" ? " · proxy" : ""}`;
    nav(data.summary, data.insights, data.alerts);
    if (view === state.view) view.update(data);
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    status.classList.remove("error");
    status.removeAttribute("role"); // the time of each poll is not worth announcing
  } catch (error) {
    if (error instanceof Unauthorized) {
      state.asked = true;
      const had = sessionStorage.getItem(TOKEN_KEY);
      sessionStorage.removeItem(TOKEN_KEY);
      askToken(had ? "That token was refused. Enter the admin token (admin_token) again." : "This service's endpoints want its admin token (admin_token).");
    } else {
      status.textContent = `cannot update: ${error.message}`;
      status.classList.add("error");
      status.setAttribute("role", "alert");
    }
  } finally {
    state.busy = false;
  }
}

document.getElementById("pause").addEventListener("click", (event) => {
  state.paused = !state.paused;
  event.target.textContent = state.paused ? "Resume" : "Pause";
  event.target.setAttribute("aria-pressed", String(state.paused));
});
window.addEventListener("hashchange", mount);
setInterval(() => { if (!state.paused && !document.hidden) refresh(); }, POLL_MS);
mount();
