// assay dashboard: a small single-page front end over the read-only JSON API (/api/...).
// Every piece of lab text goes into the page as a text node (h() below, never innerHTML), so a note
// or a log line holding markup is shown, not run.
"use strict";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f", "#7c3aed", "#0f766e"];
const POLL_RUN_MS = 1500;    // a running run's page
const POLL_TABLE_MS = 3000;  // a runs table with running rows
const PAGE = 50;
window.assayCharts = {};     // metric -> {run id -> {steps, values, count}}: what each chart drew (tests read it)
const selection = { exp: null, ids: new Set() };  // runs ticked in a table, kept across live refreshes
let timer = null;            // the pending live-update poll of the current page
let generation = 0;          // bumped on navigation; a stale poll's result is dropped

// ---------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const svg = ["svg", "polyline", "line", "text", "g", "circle", "title", "rect", "path"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "onclick" || k === "onchange" || k === "oninput") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(body.error + (body.hint ? ` (${body.hint})` : ""));
  return body;
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : String(+v.toPrecision(5));
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function tick(v) { return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(1) : String(+v.toPrecision(3)); }
function when(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
function dur(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
function mb(bytes) { return bytes ? `${(bytes / 2 ** 20).toFixed(0)} MB` : ""; }
function badge(text, cls) { return h("span", { class: `badge ${cls}` }, text); }
function runHref(id) { const [e, f] = id.split("/"); return `#/r/${encodeURIComponent(e)}/${encodeURIComponent(f)}`; }
function expHref(name, tab) { return `#/e/${encodeURIComponent(name)}${tab ? "/" + tab : ""}`; }
// Run ids hold a slash: each is one encoded path segment of #/diff/A/B.
function diffHref(a, b) { return `#/diff/${encodeURIComponent(a)}/${encodeURIComponent(b)}`; }
function fileUrl(path) { return `/api/file?path=${encodeURIComponent(path)}`; }
function kvTable(obj) {
  return h("table", { class: "kv" }, Object.entries(obj || {}).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, fmt(v)))));
}
function setLive(on) { document.getElementById("live").hidden = !on; }
function crumbs(...parts) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren(...parts.flatMap((p, i) => [i ? " / " : "", p]));
}
// g: the navigation the caller renders for; a page that finished after the reader moved on is dropped.
function show(g, ...nodes) {
  if (g !== generation) return;
  for (const u of plots) u.destroy();
  plots = [];
  window.assayPlots = {};
  document.getElementById("main").replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  flushCharts();
}
function schedule(fn, ms) {
  const g = generation;
  timer = setTimeout(() => { if (g === generation) fn(); }, ms);
}

// ---------------------------------------------------------------- charts

// Charts are drawn by uPlot (vendored under /static/vendor). One colour per run or configuration
// for the whole page: colorsFor() is called once per page and every chart of it reads the map.
const chartSettings = Object.assign({ x: "step", smooth: 0, logY: false },
  JSON.parse(localStorage.getItem("assay.charts") || "{}"));
let plots = [];              // uPlot instances of the current page (resized with the window)
const pendingDraws = [];     // charts drawn once their card is in the page (uPlot needs a width)
window.assayPlots = {};      // metric -> uPlot instance (tests read data and series from it)
const X_LABELS = { step: "step", epoch: "epoch", time: "wall time (s)" };
const SYS_UNITS = { "sys/cpu_percent": "%", "sys/rss_mb": "MB", "sys/gpu_util": "%", "sys/gpu_mem_mb": "MB" };

function colorsFor(ids) { return Object.fromEntries(ids.map((id, i) => [id, COLORS[i % COLORS.length]])); }
function saveSettings() { localStorage.setItem("assay.charts", JSON.stringify(chartSettings)); }
function axisTitle(metric, units) {
  const u = (units || {})[metric] || SYS_UNITS[metric];
  return u ? `${metric} (${u})` : metric;
}
function short(label, n = 32) { return label.length > n ? `${label.slice(0, n - 1)}…` : label; }

// TensorBoard's debiased exponential moving average; weight 0 leaves the values as they are.
function ema(values, weight) {
  if (!weight) return values;
  let last = 0, n = 0;
  return values.map((v) => {
    if (v === null || v === undefined) return v;
    last = last * weight + (1 - weight) * v; n++;
    return last / (1 - weight ** n);
  });
}

// Controls shared by a page's charts: x axis, smoothing, log y. `onX` re-fetches (the server maps x).
function chartControls(redraw, onX) {
  const smooth = h("input", { type: "range", id: "smooth", min: 0, max: 0.99, step: 0.01, value: chartSettings.smooth,
    oninput: (ev) => { chartSettings.smooth = +ev.target.value; label.textContent = chartSettings.smooth.toFixed(2); saveSettings(); redraw(); } });
  const label = h("span", { class: "muted" }, chartSettings.smooth.toFixed(2));
  return h("div", { class: "controls chart-controls" },
    onX ? h("label", {}, "x ", h("select", { id: "xaxis", onchange: (ev) => { chartSettings.x = ev.target.value; saveSettings(); onX(); } },
      Object.entries(X_LABELS).map(([v, t]) => h("option", { value: v, selected: chartSettings.x === v }, t)))) : "",
    h("label", {}, "smoothing ", smooth, " ", label),
    h("label", {}, h("input", { type: "checkbox", id: "logy", checked: chartSettings.logY,
      onchange: (ev) => { chartSettings.logY = ev.target.checked; saveSettings(); redraw(); } }), " log y"),
    h("span", { class: "muted" }, "drag to zoom, double-click to reset"));
}

function integerIncrs() {
  const out = [];
  for (let m = 1; m <= 1e12; m *= 10) out.push(m, 2 * m, 5 * m);
  return out;
}

// One chart: `lines` [{id, label, color, xs, ys, points?}] (each on its own x), or a shared `grid`
// with `bands` [{id, label, color, mean, lo, hi}] (mean curve and its 95% band).
function chartCard(metric, spec) {
  const card = h("div", { class: "card chart", "data-metric": metric });
  const head = h("div", { class: "chart-title" }, h("b", {}, spec.title || metric), spec.note ? h("span", { class: "muted" }, ` ${spec.note}`) : "");
  const box = h("div", { class: "plot-box" });
  card.append(head, box);
  const draw = () => {
    const old = window.assayPlots[metric];
    if (old && old.root.parentNode === box) { old.destroy(); box.replaceChildren(); plots = plots.filter((p) => p !== old); }
    const u = drawChart(box, metric, spec);
    if (u) { plots.push(u); window.assayPlots[metric] = u; }
  };
  card.redraw = draw;
  pendingDraws.push(card);
  return card;
}

function drawChart(box, metric, spec) {
  const xLabel = spec.xLabel || X_LABELS[chartSettings.x] || "step";
  const integer = spec.integerX ?? chartSettings.x === "step";
  const w = chartSettings.smooth;
  let data, series = [{ label: xLabel, value: (u, v) => (v === null || v === undefined ? "–" : fmt(v)) }], bands = [], aux = [];
  const fill = (c) => `${c}33`;
  if (spec.grid) {
    data = [spec.grid];
    for (const b of spec.bands) {
      const i = data.length;
      data.push(ema(b.mean, w), ema(b.lo, w), ema(b.hi, w));
      series.push({ label: short(b.label), stroke: b.color, width: 2, spanGaps: true, value: (u, v) => fmt(v) },
        { label: "lo", stroke: fill(b.color), width: 0, spanGaps: true, points: { show: false } },
        { label: "hi", stroke: fill(b.color), width: 0, spanGaps: true, points: { show: false } });
      aux.push(i + 1, i + 2);
      bands.push({ series: [i + 2, i + 1], fill: fill(b.color) });
    }
  } else {
    const lines = spec.lines.filter((l) => l.xs.length);
    if (!lines.length) { box.append(h("p", { class: "muted" }, "no finite values yet")); return null; }
    const raw = w > 0;  // smoothing: the raw line stays, faded, under the smoothed one
    const tables = [];
    for (const l of lines) {
      if (raw) tables.push([l.xs, l.ys]);
      tables.push([l.xs, ema(l.ys, w)]);
    }
    data = uPlot.join(tables);
    for (const l of lines) {
      const few = l.xs.length <= 60;
      if (raw) { aux.push(series.length); series.push({ label: "raw", stroke: fill(l.color), width: 1, spanGaps: true, points: { show: false } }); }
      series.push({ label: short(l.label), stroke: l.color, width: 1.6, spanGaps: true, value: (u, v) => fmt(v),
        points: { show: few || l.points, size: l.points ? 7 : 5, fill: l.color, stroke: l.color }, paths: l.points ? () => null : undefined });
    }
  }
  const ys = data.slice(1).flat().filter((v) => v !== null && v !== undefined);
  const logOK = ys.length && ys.every((v) => v > 0);
  const width = Math.max(300, box.clientWidth || 600);
  // One x value (a metric logged once): uPlot would fall back to a 0-100 axis, so the range is
  // fixed around the value, one unit either side.
  const xv = data[0].filter((v) => v !== null && v !== undefined);
  const single = xv.length > 0 && xv.every((v) => v === xv[0]);
  const opts = {
    width, height: spec.height || 260, bands,
    scales: { x: single ? { time: false, auto: false, range: [xv[0] - 1, xv[0] + 1] } : { time: false, range: (u, lo, hi) => (lo === hi ? [lo - 1, hi + 1] : [lo, hi]) },
      y: chartSettings.logY && logOK ? { distr: 3 } : {} },
    axes: [
      { label: xLabel, incrs: integer ? integerIncrs() : undefined, values: (u, splits) => splits.map((v) => fmt(v)), stroke: "#475569", grid: { stroke: "#eef2f7" } },
      { label: spec.yLabel || metric, size: 64, values: (u, splits) => splits.map((v) => (v === null ? "" : tick(v))), stroke: "#475569", grid: { stroke: "#eef2f7" } },
    ],
    series, legend: { live: true }, cursor: { drag: { x: true, y: false } },
  };
  const u = new uPlot(opts, data, box);
  // Band edges and faded raw lines are drawn but not listed: the legend names runs, not helpers.
  const rows = u.root.querySelectorAll(".u-legend tr.u-series");
  for (const i of aux) if (rows[i]) rows[i].style.display = "none";
  return u;
}

function flushCharts() {
  while (pendingDraws.length) {
    const card = pendingDraws.shift();
    if (card.isConnected) card.redraw();
  }
}

window.addEventListener("resize", () => {
  for (const u of plots) {
    const box = u.root.parentNode;
    if (box && box.isConnected) u.setSize({ width: Math.max(300, box.clientWidth), height: u.height });
  }
});

// Series of `runIds` (metrics `keys`, or all), one chart per metric, one colour per run.
async function chartsFor(runIds, keys, { labels = {}, units = {}, colors = null } = {}) {
  const points = Math.min(2000, Math.max(200, Math.round(window.innerWidth)));
  const q = `/api/series?runs=${encodeURIComponent(runIds.join(","))}&points=${points}&x=${chartSettings.x}` +
    (keys ? `&keys=${encodeURIComponent(keys.join(","))}` : "");
  const data = await api(q);
  const metrics = {};
  for (const [run, series] of Object.entries(data.runs)) {
    for (const [k, s] of Object.entries(series)) (metrics[k] ||= {})[run] = s;
  }
  colors ||= colorsFor(runIds);
  const names = (keys || Object.keys(metrics).sort()).filter((k) => metrics[k] && !k.startsWith("sys/"));
  const card = (k) => {
    window.assayCharts[k] = metrics[k];
    const lines = Object.entries(metrics[k]).map(([run, s]) => ({ id: run, label: labels[run] || run.split("/").pop(),
      color: colors[run], xs: s.steps, ys: s.values }));
    const note = Object.values(metrics[k]).some((s) => s.downsampled) ? "(downsampled)" : "";
    const c = chartCard(k, { lines, yLabel: axisTitle(k, units), note });
    c.dataset.runs = String(lines.length);
    c.dataset.colors = JSON.stringify(Object.fromEntries(lines.map((l) => [l.id, l.color])));
    return c;
  };
  const sys = Object.keys(metrics).filter((k) => k.startsWith("sys/")).sort();
  const redraw = () => document.querySelectorAll(".card.chart").forEach((c) => c.redraw && c.redraw());
  const holder = h("div", { id: "chart-area" });
  const refetch = async () => {
    const fresh = await chartsFor(runIds, keys, { labels, units, colors });
    holder.replaceWith(fresh);
    flushCharts();
  };
  holder.append(chartControls(redraw, refetch), h("div", { class: "grid", id: "charts" }, names.map(card)),
    ...(sys.length ? [h("h2", {}, "System (sampled by the runner)"), h("div", { class: "grid", id: "sys-charts" }, sys.map(card))] : []));
  return holder;
}

// ---------------------------------------------------------------- pages

async function experimentsPage() {
  const g = generation;
  crumbs();
  const { experiments } = await api("/api/experiments");
  if (!experiments.length) return show(g, h("p", {}, "No experiments yet. Create one: ", h("code", {}, "assay new NAME --hypothesis \"...\"")));
  show(g, h("h1", {}, "Experiments"), h("table", { id: "experiments" },
    h("tr", {}, ["experiment", "hypothesis", "metric", "runs", "best configuration (mean of last values)", "verdict", ""].map((c) => h("th", {}, c))),
    experiments.map((e) => h("tr", { "data-name": e.name },
      h("td", {}, h("a", { href: expHref(e.name) }, e.name)),
      h("td", {}, e.error ? h("span", { class: "error" }, e.error) : e.hypothesis),
      h("td", {}, e.metric ? `${e.metric} (${e.goal})` : ""),
      h("td", { class: "num" }, e.runs, e.running ? [" ", badge(`${e.running} running`, "s-running")] : ""),
      h("td", { class: "num", title: e.best_config || "" }, e.best_run ? [h("a", { href: runHref(e.best_run) }, fmt(e.best)), ` (n=${e.best_n}) `, h("span", { class: "muted" }, e.best_config)] : ""),
      h("td", { class: "verdict", title: e.verdict_reason || "" }, e.verdict ? badge(e.verdict, `v-${e.verdict.replace(/\W+/g, "-")}`) : ""),
      h("td", {}, e.has_loop ? h("a", { href: expHref(e.name, "loop") }, "loop") : "", " ",
        e.has_journal ? h("a", { href: expHref(e.name, "journal") }, "journal") : "", " ",
        e.has_report ? h("a", { href: expHref(e.name, "report") }, "report") : "")))));
  if (g === generation && experiments.some((e) => e.running)) { setLive(true); schedule(route, POLL_TABLE_MS); }
}

function tabs(name, on) {
  const t = [["", "runs"], ["compare", "compare"], ["sweep", "sweeps"], ["loop", "loop"], ["journal", "journal"], ["report", "report"]];
  return h("div", { class: "tabs" }, t.map(([tab, label]) => h("a", { href: expHref(name, tab), class: tab === on ? "on" : null }, label)));
}

function expHeader(exp, configs = true) {
  crumbs(h("a", { href: expHref(exp.name) }, exp.name));
  return [h("h1", {}, exp.name), h("p", {}, exp.hypothesis),
    h("p", { class: "muted" }, `primary metric: ${exp.metric} (${exp.goal})`,
      exp.success ? ` · success: ${exp.success}` : "", exp.failure ? ` · failure: ${exp.failure}` : ""),
    h("p", { id: "verdict" }, "verdict: ", badge(exp.verdict, `v-${exp.verdict.replace(/\W+/g, "-")}`), " ",
      h("span", { class: "muted" }, exp.verdict_reason || "")),
    configs ? configTable(exp.configurations) : ""];
}

// Configurations as `assay compare --json` has them: the same rows, means and intervals as the CLI.
function configTable(cmp) {
  if (!cmp || !cmp.rows.length) return "";
  const keys = cmp.by.filter((k) => k !== "code");
  const extra = ["entry", "code"].filter((k) => cmp.by.includes(k) || new Set(cmp.rows.map((r) => r[k])).size > 1);
  const label = cmp.value === "last" ? cmp.metric : `best_${cmp.metric}`;
  const gap = (r, i) => i === cmp.best ? "best" : !r.vs_best ? "" : r.vs_best.ci
    ? `${fmt(r.vs_best.delta)} [${fmt(r.vs_best.ci[0])}, ${fmt(r.vs_best.ci[1])}]${r.vs_best.within_noise ? " (within noise)" : ""}`
    : `${fmt(r.vs_best.delta)} (noise unknown)`;
  return h("details", { id: "configurations", open: true }, h("summary", {}, `configurations (${cmp.rows.length})`),
    h("table", {}, h("tr", {}, [...keys, ...extra, `${label} (mean ± std)`, "n", "vs best (95% CI)"].map((c) => h("th", {}, c))),
      cmp.rows.map((r, i) => h("tr", { class: i === cmp.best ? "best" : null },
        [...keys, ...extra].map((k) => h("td", {}, fmt(r[k]))),
        h("td", { class: "num" }, fmt(r.mean) + (r.std !== null ? ` ± ${fmt(r.std)}` : "")),
        h("td", { class: "num" }, String(r.n) + (r.failed ? ` (+${r.failed} failed)` : "")),
        h("td", { class: "num" }, gap(r, i))))));
}

async function runsPage(name, query) {
  const g = generation;
  const exp = await api(`/api/experiments/${encodeURIComponent(name)}`);
  let page, filterError = null;
  try {
    page = await api(`/api/experiments/${encodeURIComponent(name)}/runs?` + new URLSearchParams({
      where: query.get("where") || "", q: query.get("q") || "", sort: query.get("sort") || "", offset: query.get("offset") || "0",
      limit: String(PAGE), all: query.get("all") || "" }));
  } catch (err) {  // a filter typo is shown under the box; the page stays
    filterError = err.message;
    page = { rows: [], total: 0, offset: 0 };
  }
  // Columns: the chosen ones from the URL (cols=), else the first metrics and params.
  const allCols = [...exp.metrics.filter((m) => !m.startsWith("sys/")).map((m) => `m:${m}`), ...exp.params.map((p) => `p:${p}`)];
  const chosen = query.get("cols") !== null ? query.get("cols").split(",").filter((c) => allCols.includes(c))
    : [...exp.metrics.filter((m) => !m.startsWith("sys/")).slice(0, 6).map((m) => `m:${m}`), ...exp.params.slice(0, 8).map((p) => `p:${p}`)];
  const metrics = chosen.filter((c) => c.startsWith("m:")).map((c) => c.slice(2));
  const params = chosen.filter((c) => c.startsWith("p:")).map((c) => c.slice(2));
  const go = (changes) => {
    const q = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) { if (v === "" || v === null) q.delete(k); else q.set(k, v); }
    location.hash = `${expHref(name)}?${q}`;
  };
  const sort = query.get("sort") || "";
  const header = (label, field) => {
    const [cur, dir] = sort.split(":");
    const on = cur === field;
    return h("th", { class: `sortable${on ? " sorted" : ""}`, "data-field": field, title: `sort by ${field}`,
      onclick: () => go({ sort: on && dir !== "asc" ? `${field}:asc` : `${field}:desc`, offset: "" }) },
      label, on ? (dir === "asc" ? " ▲" : " ▼") : "");
  };
  const where = h("input", { type: "text", id: "where", value: query.get("where") || "",
    placeholder: "filter, e.g. lr<0.01 and status=ok and tags.kind=base" });
  const search = h("input", { type: "search", id: "search", value: query.get("q") || "", placeholder: "search descriptions and ids" });
  if (selection.exp !== name) { selection.exp = name; selection.ids.clear(); }
  const selected = selection.ids;
  const compare = h("button", { id: "compare", disabled: !selected.size, onclick: () =>
    (location.hash = `${expHref(name, "chart")}?runs=${encodeURIComponent([...selected].join(","))}`) }, "chart selected");
  const compareCfg = h("button", { id: "compare-configs", disabled: !selected.size, onclick: () =>
    (location.hash = `${expHref(name, "compare")}?runs=${encodeURIComponent([...selected].join(","))}`) }, "compare their configurations");
  const diff = h("button", { id: "diff", disabled: selected.size !== 2, title: "tick exactly two runs", onclick: () =>
    (location.hash = diffHref(...selected)) }, "diff the two");
  const chooser = h("details", { id: "columns", class: "chooser" }, h("summary", {}, `columns (${chosen.length} of ${allCols.length})`),
    h("div", {}, allCols.map((c) => h("label", { class: "chip" }, h("input", { type: "checkbox", "data-col": c, checked: chosen.includes(c),
      onchange: () => go({ cols: [...document.querySelectorAll("input[data-col]:checked")].map((e) => e.dataset.col).join(",") }) }),
    ` ${c.slice(2)}`, h("span", { class: "muted" }, c.startsWith("m:") ? " (metric)" : " (param)")))));
  const off = page.offset;
  const table = h("table", { id: "runs", "data-total": page.total },
    h("tr", {}, h("th", {}, ""), header("run", "started"), header("status", "status"), header("duration", "duration"),
      metrics.map((m) => header(m, m)), header(`best ${exp.metric}`, `best_${exp.metric}`), params.map((p) => header(p, `params.${p}`))),
    page.rows.map((r) => h("tr", { "data-id": r.id, class: r.ignored ? "muted" : null },
      h("td", {}, h("input", { type: "checkbox", checked: selected.has(r.id), onchange: (ev) => {
        ev.target.checked ? selected.add(r.id) : selected.delete(r.id);
        compare.disabled = compareCfg.disabled = !selected.size;
        diff.disabled = selected.size !== 2;
      } })),
      h("td", {}, h("a", { href: runHref(r.id) }, r.desc || r.id), h("div", { class: "muted" }, when(r.started))),
      h("td", {}, badge(r.status, `s-${r.status}`), r.ignored ? " ignored" : ""),
      h("td", { class: "num" }, dur(r.duration)),
      metrics.map((m) => h("td", { class: "num", "data-col": `m:${m}` }, fmt(r.metrics[m]?.last))),
      h("td", { class: "num" }, fmt(r.metrics[exp.metric]?.best)),
      params.map((p) => h("td", { "data-col": `p:${p}` }, fmt(r.params[p]))))));
  show(g, ...expHeader(exp), tabs(name, ""),
    h("div", { class: "controls" },
      h("form", { id: "filter" }, where, " ", search, " ", h("button", { type: "submit" }, "filter")),
      h("select", { id: "status", onchange: (ev) => go({ where: ev.target.value ? `status=${ev.target.value}` : "", offset: "" }) },
        ["", "ok", "running", "failed", "timeout", "oom", "nan", "interrupted", "lost"].map((st) =>
          h("option", { value: st, selected: (query.get("where") || "") === `status=${st}` && st !== "" }, st || "any status"))),
      h("label", {}, h("input", { type: "checkbox", id: "all", checked: query.get("all") === "1",
        onchange: (ev) => go({ all: ev.target.checked ? "1" : "", offset: "" }) }), " show ignored"),
      compare, compareCfg, diff),
    filterError ? h("p", { class: "error", id: "filter-error" }, filterError) : "",
    chooser,
    h("p", { class: "muted", id: "count" }, page.total ? `runs ${off + 1}–${off + page.rows.length} of ${page.total}` : "no runs match"),
    table,
    h("div", { class: "controls" },
      h("button", { id: "prev", disabled: off === 0, onclick: () => go({ offset: String(Math.max(0, off - PAGE)) }) }, "← newer"),
      h("button", { id: "next", disabled: off + PAGE >= page.total, onclick: () => go({ offset: String(off + PAGE) }) }, "older →")));
  if (g !== generation) return;
  document.getElementById("filter").addEventListener("submit", (ev) => { ev.preventDefault(); go({ where: where.value, q: search.value, offset: "" }); });
  if (page.rows.some((r) => r.status === "running")) { setLive(true); schedule(route, POLL_TABLE_MS); }
}

async function overlayPage(name, query) {
  const g = generation;
  const exp = await api(`/api/experiments/${encodeURIComponent(name)}`);
  const ids = (query.get("runs") || "").split(",").filter(Boolean);
  show(g, ...expHeader(exp), tabs(name, "chart"), h("p", {}, `${ids.length} runs overlaid: `,
    ids.map((id, i) => [i ? ", " : "", h("a", { href: runHref(id) }, id.split("/").pop())])),
  ids.length ? await chartsFor(ids, null, { units: exp.units }) : h("p", { class: "muted" }, "Select runs in the table first."));
}

// Configurations side by side: mean curves with 95% bands over seeds, and the tables of
// `assay compare --json` and `assay verdict --json` for the same --value (the same numbers as the CLI).
async function comparePage(name, query) {
  const g = generation;
  const value = query.get("value") === "best" ? "best" : "last";
  const qs = new URLSearchParams({ value, x: chartSettings.x });
  for (const k of ["by", "curve", "runs"]) if (query.get(k)) qs.set(k, query.get(k));
  const [exp, c] = await Promise.all([api(`/api/experiments/${encodeURIComponent(name)}`),
    api(`/api/experiments/${encodeURIComponent(name)}/compare?${qs}`)]);
  const cmp = c.compare;
  const go = (changes) => {
    const q = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) { if (v === "" || v === null) q.delete(k); else q.set(k, v); }
    location.hash = `${expHref(name, "compare")}?${q}`;
  };
  const keys = cmp.by.filter((k) => k !== "code");
  const extra = ["entry", "code"].filter((k) => cmp.by.includes(k) || new Set(cmp.rows.map((r) => r[k])).size > 1);
  const label = (r) => [...keys, ...extra].map((k) => `${k}=${fmt(r[k])}`).join(", ") || "all runs";
  const colors = Object.fromEntries(cmp.rows.map((r, i) => [i, COLORS[i % COLORS.length]]));
  // The verdict's configuration holding the same runs (seeds deduplicated alike).
  const judged = (r) => c.verdict.configurations.find((v) => v.runs.some((id) => r.runs.includes(id)));
  const byChoices = [...exp.params.filter((p) => p !== "seed"), "code"];
  const byNow = new Set(cmp.by);
  const controls = h("div", { class: "controls" },
    h("label", {}, "value ", h("select", { id: "value", onchange: (ev) => go({ value: ev.target.value }) },
      ["last", "best"].map((v) => h("option", { value: v, selected: v === value }, v)))),
    h("span", {}, "group by ", byChoices.map((p) => h("label", { class: "chip" }, h("input", { type: "checkbox", "data-by": p, checked: byNow.has(p),
      onchange: () => go({ by: [...document.querySelectorAll("input[data-by]:checked")].map((e) => e.dataset.by).join(",") || "" }) }), ` ${p}`))),
    h("label", {}, "curve ", h("select", { id: "curve", onchange: (ev) => go({ curve: ev.target.value }) },
      exp.metrics.filter((m) => !m.startsWith("sys/")).map((m) => h("option", { value: m, selected: m === c.curve }, m)))),
    query.get("runs") ? h("span", { class: "muted" }, `only configurations of ${query.get("runs").split(",").length} picked runs `,
      h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); go({ runs: "" }); } }, "show all")) : "");
  window.assayCharts.compare = c;
  const shown = c.curves.filter((cv) => cv.mean.some((v) => v !== null));
  const chart = shown.length ? chartCard(c.curve, { grid: c.grid, yLabel: axisTitle(c.curve, exp.units), note: "mean over seeds, 95% band",
    integerX: c.x === "step", bands: shown.map((cv) => ({ id: cv.row, label: label(cmp.rows[cv.row]), color: colors[cv.row],
      mean: cv.mean, lo: cv.lo, hi: cv.hi })) }) : h("p", { class: "muted" }, `No run logs ${c.curve} on this x axis.`);
  const metricLabel = `${value === "last" ? "" : "best "}${cmp.metric}${c.metric_units ? ` (${c.metric_units})` : ""}`;
  const gap = (r) => !r.vs_best ? "" : r.vs_best.ci
    ? `${fmt(r.vs_best.delta)} [${fmt(r.vs_best.ci[0])}, ${fmt(r.vs_best.ci[1])}]${r.vs_best.within_noise ? " (within noise)" : ""}`
    : `${fmt(r.vs_best.delta)} (noise unknown)`;
  const criteria = (v) => !v ? "" : v.criteria.map((j) => `${j.criterion}: ${j.outcome}` +
    (j.ci ? ` [${fmt(j.ci[0])}, ${fmt(j.ci[1])}]` : j.lo !== undefined ? ` [${fmt(j.lo)}, ${fmt(j.hi)}]` : "")).join("; ");
  const idx = c.shown;
  const table = h("table", { id: "compare-table" },
    h("tr", {}, ["", ...keys, ...extra, `${metricLabel} mean ± std`, "n", "vs best (95% CI)", "verdict", "criteria (CI per configuration)"].map((t) => h("th", {}, t))),
    idx.map((i) => {
      const r = cmp.rows[i], v = judged(r);
      const sw = h("i", { class: "swatch" });
      sw.style.background = colors[i];
      return h("tr", { "data-row": i, class: i === cmp.best ? "best" : null },
        h("td", {}, sw), [...keys, ...extra].map((k) => h("td", { "data-key": k }, fmt(r[k]))),
        h("td", { class: "num", "data-key": "mean", "data-value": r.mean }, fmt(r.mean) + (r.std !== null ? ` ± ${fmt(r.std)}` : "")),
        h("td", { class: "num", "data-key": "n" }, String(r.n) + (r.failed ? ` (+${r.failed} failed)` : "")),
        h("td", { class: "num", "data-key": "vs_best" }, i === cmp.best ? "best" : gap(r)),
        h("td", { "data-key": "verdict" }, v ? badge(v.verdict, `v-${v.verdict.replace(/\W+/g, "-")}`) : ""),
        h("td", { class: "muted", "data-key": "criteria" }, criteria(v)));
    }));
  const redraw = () => document.querySelectorAll(".card.chart").forEach((el) => el.redraw && el.redraw());
  show(g, ...expHeader(exp, false), tabs(name, "compare"), controls,
    h("p", { id: "compare-verdict" }, "verdict at --value ", value, ": ", badge(c.verdict.verdict, `v-${c.verdict.verdict.replace(/\W+/g, "-")}`),
      " ", h("span", { class: "muted" }, c.verdict.reason)),
    chartControls(redraw, route), chart, table,
    h("p", { class: "muted" }, "The table is ", h("code", {}, `assay compare ${name} --value ${value} --json`), " and ",
      h("code", {}, `assay verdict ${name} --value ${value} --json`), "; the band is the 95% t interval of the mean over seeds at each step."));
}

async function runPage(expName, folder) {
  const g = generation;
  const id = `${expName}/${folder}`;
  const base = `/api/run/${encodeURIComponent(expName)}/${encodeURIComponent(folder)}`;
  const r = await api(base);
  crumbs(h("a", { href: expHref(expName) }, expName), h("span", {}, folder));
  const git = r.git || {};
  const metricRows = Object.entries(r.metrics || {}).map(([k, m]) => h("tr", {}, h("td", {}, k),
    h("td", { class: "num" }, fmt(m.last)), h("td", { class: "num" }, fmt(m.best)), h("td", { class: "num" }, fmt(m.best_step)),
    h("td", { class: "num" }, fmt(m.count))));
  const charts = r.metric_keys.length ? await chartsFor([id], r.metric_keys, { units: r.units }) : h("p", { class: "muted" }, "No metrics logged yet.");
  show(g,
    h("h1", {}, id), h("p", {}, badge(r.status, `s-${r.status}`), " ", r.reason || "",
      r.ignored ? h("span", { class: "muted" }, ` · ignored: ${r.ignored}`) : ""),
    h("table", { class: "kv", id: "summary" },
      [["started", when(r.started)], ["duration", dur(r.duration)], ["exit code", r.exit_code], ["seed", r.seed],
        ["peak memory", mb(r.peak_rss)], ["command", (r.command || []).join(" ")], ["folder", r.folder],
        ["commit", git.commit ? `${git.commit.slice(0, 12)}${git.branch ? ` (${git.branch})` : ""}${(git.dirty || []).length ? " + uncommitted changes" : ""}` : ""]]
        .filter(([, v]) => v !== "" && v !== null && v !== undefined).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, String(v))))),
    (r.warnings || []).map((w) => h("p", { class: "error" }, w)),
    h("h2", {}, "Metrics"), h("table", { id: "metrics" }, h("tr", {}, ["metric", "last", "best", "best step", "points"].map((c) => h("th", {}, c))), metricRows),
    charts,
    h("h2", {}, "Params"), kvTable(r.params),
    Object.keys(r.tags || {}).length ? [h("h2", {}, "Tags"), kvTable(r.tags)] : [],
    h("h2", {}, "Log (tail)"), h("pre", { id: "log" }, r.log_tail || "(empty)"),
    r.patch ? [h("h2", {}, "Uncommitted diff"), h("pre", { id: "patch" }, r.patch)] : [],
    r.plots.length ? [h("h2", {}, "Plots"), r.plots.map((p) => h("img", { class: "plot", src: fileUrl(p), alt: p }))] : [],
    r.environment ? [h("h2", {}, "Environment"), kvTable(Object.fromEntries(Object.entries(r.environment).filter(([k]) => k !== "packages"))),
      r.environment.packages ? h("details", {}, h("summary", {}, "packages"), h("pre", {}, fmt(r.environment.packages))) : null] : []);
  if (g !== generation) return;
  setLive(r.status === "running");
  if (r.status === "running") schedule(route, POLL_RUN_MS);
}

async function loopPage(name, query) {
  const g = generation;
  const [exp, loop] = await Promise.all([api(`/api/experiments/${encodeURIComponent(name)}`),
    api(`/api/experiments/${encodeURIComponent(name)}/loop`)]);
  const head = [...expHeader(exp), tabs(name, "loop")];
  if (!loop.rows.length) return show(g, ...head, h("p", { class: "muted" }, "No loop yet: ", h("code", {}, `assay loop start ${name} --tag TAG --edit FILE`)));
  // One loop per page: results.tsv holds every loop of the experiment, told apart by their tag.
  const tags = [...new Set(loop.rows.map((r) => r.tag || ""))];
  const tag = tags.includes(query.get("tag")) ? query.get("tag") : tags[tags.length - 1];
  const rows = loop.rows.filter((r) => (r.tag || "") === tag);
  // Progress: every try's metric, the running best of the kept ones, and crashes as points on the best line.
  const tried = { xs: [], ys: [] }, kept = { xs: [], ys: [] }, crashed = { xs: [], ys: [] };
  let best = null;
  rows.forEach((row, i) => {
    const v = "value" in row ? row.value : parseFloat(row.metric);  // value: the commit's one number, null for a crash
    if (row.status === "crash" || !Number.isFinite(v)) {
      const y = best ?? tried.ys[tried.ys.length - 1] ?? null;
      if (y !== null) { crashed.xs.push(i + 1); crashed.ys.push(y); }
    } else {
      tried.xs.push(i + 1); tried.ys.push(v);
      if (row.status === "keep" && (best === null || (loop.goal === "max" ? v > best : v < best))) best = v;
    }
    if (best !== null) { kept.xs.push(i + 1); kept.ys.push(best); }
  });
  const counts = {};
  rows.forEach((r) => { counts[r.status] = (counts[r.status] || 0) + 1; });
  window.assayCharts.loop = { tag, tried, kept, crashed, counts };
  const metric = `${loop.metric} per try`;
  const chart = chartCard(metric, { title: `${loop.metric} per try (loop ${tag || "untagged"})`, xLabel: "try", integerX: true,
    yLabel: axisTitle(loop.metric, exp.units), note: `${counts.crash || 0} crash(es), drawn as red points on the best line`,
    lines: [{ id: "tried", label: "tried", color: COLORS[0], xs: tried.xs, ys: tried.ys, points: true },
      { id: "best kept", label: "best kept", color: COLORS[2], xs: kept.xs, ys: kept.ys },
      { id: "crash", label: `crash (${counts.crash || 0})`, color: COLORS[1], xs: crashed.xs, ys: crashed.ys, points: true }] });
  const select = tags.length > 1 ? h("label", {}, "loop ", h("select", { id: "loop-tag", onchange: (ev) =>
    (location.hash = `${expHref(name, "loop")}?tag=${encodeURIComponent(ev.target.value)}`) },
  tags.map((t) => h("option", { value: t, selected: t === tag }, t || "(untagged)")))) : h("span", { class: "muted" }, `loop ${tag || "(untagged)"}`);
  show(g, ...head, h("div", { class: "controls" }, select, " ",
    h("span", { id: "loop-counts" }, `${rows.length} tries: `, Object.entries(counts).map(([k, n]) => [badge(`${n} ${k}`, `t-${k}`), " "]))), chart,
  h("table", { id: "loop" }, h("tr", {}, loop.columns.map((c) => h("th", {}, c))),
    rows.map((row) => h("tr", { "data-status": row.status }, loop.columns.map((c) => h("td", {},
      c === "status" ? badge(row[c], `t-${row[c]}`) :
        c === "metric" && row.status === "crash" ? h("span", { class: "muted", title: `results.tsv holds ${row[c]}: a crash has no value` }, "–") :
        c === "runs" ? (row[c] || "").split(" ").filter(Boolean).map((id) => [h("a", { href: runHref(id) }, id.split("/").pop()), " "]) : row[c]))))));
}

async function journalPage(name) {
  const g = generation;
  const [exp, j] = await Promise.all([api(`/api/experiments/${encodeURIComponent(name)}`),
    api(`/api/experiments/${encodeURIComponent(name)}/journal`)]);
  const head = [...expHeader(exp), tabs(name, "journal")];
  const entries = j.entries.length ? h("table", { id: "journal" }, j.entries.map((e) => h("tr", {},
    h("td", { class: "muted" }, e.when), h("td", {}, badge(e.tag, `j-${e.tag}`)), h("td", { class: "note" }, e.text),
    h("td", {}, e.run ? h("a", { href: runHref(e.run.includes("/") ? e.run : `${name}/${e.run}`) }, e.run) : ""))))
    : h("pre", { id: "journal-text" }, j.text || "(no journal yet)");
  const ignored = Object.entries(j.ignored);
  show(g, ...head, entries, ignored.length ? [h("h2", {}, "Ignored runs"), h("table", {}, ignored.map(([f, why]) =>
    h("tr", {}, h("td", {}, h("a", { href: runHref(`${name}/${f}`) }, f)), h("td", {}, why))))] : []);
}

// REPORT.md as the server rendered it with REPORT.html's renderer (markdown-it, raw HTML off:
// markup in the Markdown arrives escaped), so this is the one place HTML from the server is parsed.
function reportBody(html) {
  const div = h("div", { class: "report", id: "report" });
  const doc = new DOMParser().parseFromString(html, "text/html");
  div.append(...doc.body.childNodes);
  return div;
}

async function reportPage(name) {
  const g = generation;
  const [exp, r] = await Promise.all([api(`/api/experiments/${encodeURIComponent(name)}`),
    api(`/api/experiments/${encodeURIComponent(name)}/report`)]);
  show(g, ...expHeader(exp), tabs(name, "report"), r.markdown === null
    ? h("p", { class: "muted" }, "No report yet: ", h("code", {}, `assay report ${name}`))
    : reportBody(r.html));
}

// ---------------------------------------------------------------- sweeps

// Axis scales of the sweep figures. `axis` is the sweep's description of a param ({kind, values,
// low, high, log}); `values` the trials' values. Returns {pos(v) -> pixel, ticks: [{v, label}]}.
function niceTicks(lo, hi, n, integer) {
  if (!(hi > lo)) return [lo];
  let step = 10 ** Math.floor(Math.log10((hi - lo) / n));
  for (const m of [1, 2, 5, 10]) { if ((hi - lo) / (step * m) <= n) { step *= m; break; } }
  if (integer) step = Math.max(1, Math.round(step));
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function scaleFor(axis, values, p0, p1) {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (axis.kind === "categorical") {
    const cats = [...(axis.values || []).map(String)];
    for (const v of present) if (!cats.includes(String(v))) cats.push(String(v));
    const n = Math.max(1, cats.length);
    return { kind: "categorical", cats, pos: (v) => p0 + (p1 - p0) * (cats.indexOf(String(v)) + 0.5) / n,
      ticks: cats.map((c) => ({ v: c, label: c })) };
  }
  const known = [...present, ...(axis.values || [])].filter((v) => Number.isFinite(v));
  let lo = axis.low ?? Math.min(...known), hi = axis.high ?? Math.max(...known);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) { lo = 0; hi = 1; }
  if (axis.pad && hi > lo) { const m = (hi - lo) * axis.pad; lo -= m; hi += m; }  // no mark on the frame
  const log = axis.log && lo > 0;
  const f = log ? Math.log10 : (v) => v;
  const a = f(lo), b = f(hi);
  const pos = (v) => (b === a ? (p0 + p1) / 2 : p0 + (p1 - p0) * (f(v) - a) / (b - a));
  let ticks;
  if (log) {
    ticks = [];
    for (let e = Math.ceil(a - 1e-9); e <= b + 1e-9; e++) ticks.push(10 ** e);
    if (ticks.length < 2) ticks = [lo, hi];
  } else ticks = niceTicks(lo, hi, 4, axis.integer || known.every(Number.isInteger));
  return { kind: "numeric", log, pos, ticks: ticks.map((v) => ({ v, label: tick(v) })) };
}

// Sequential colour of a trial's value: dark blue for the best end, pale yellow for the worst.
const SEQ = [[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104], [244, 136, 73], [254, 188, 43], [240, 249, 33]];
function seqColor(t) {
  const x = Math.min(1, Math.max(0, t)) * (SEQ.length - 1), i = Math.min(SEQ.length - 2, Math.floor(x)), f = x - i;
  const c = SEQ[i].map((v, k) => Math.round(v + (SEQ[i + 1][k] - v) * f));
  return `rgb(${c.join(",")})`;
}
// A param's colour (viridis), distinct from the value's palette so "dark = better" is not read into it.
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function paramColor(t) {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  return `rgb(${VIRIDIS[i].map((v, k) => Math.round(v + (VIRIDIS[i + 1][k] - v) * f)).join(",")})`;
}
// t in [0, 1] of a value, 0 at the best end (goal min: the lowest value).
function goodness(values, goal) {
  const fin = values.filter(Number.isFinite);
  const lo = Math.min(...fin), hi = Math.max(...fin);
  return (v) => (hi === lo ? 0 : goal === "max" ? (hi - v) / (hi - lo) : (v - lo) / (hi - lo));
}

function svgAxisTicks(g, scale, at, vertical) {
  for (const t of scale.ticks) {
    const p = scale.pos(t.v);
    if (vertical) {
      g.append(h("line", { x1: at - 4, x2: at, y1: p, y2: p, class: "axis" }),
        h("text", { x: at - 6, y: p + 4, "text-anchor": "end" }, t.label));
    } else {
      g.append(h("line", { x1: p, x2: p, y1: at, y2: at + 4, class: "axis" }),
        h("text", { x: p, y: at + 16, "text-anchor": "middle" }, t.label));
    }
  }
}

// Parallel coordinates: one axis per param, then the metric; a line per trial coloured by its
// value; failed trials dashed and grey, ending at "failed" under the metric axis.
function parallelCoords(sw, keys, width) {
  const H = 330, top = 28, bottom = H - 52, fail = H - 22, left = 70, right = width - 70;
  const metric = sw.metric;
  const axes = [...keys.map((k) => ({ key: k, axis: sw.space[k] || { kind: "numeric" }, values: sw.trials.map((t) => t.params[k]) })),
    { key: metric, axis: { kind: "numeric" }, values: sw.trials.map((t) => t.value), metric: true }];
  const xs = axes.map((_, i) => left + (right - left) * i / Math.max(1, axes.length - 1));
  const scales = axes.map((a) => scaleFor(a.axis, a.values, bottom, top));
  const good = goodness(sw.trials.map((t) => t.value).filter((v) => v !== null), sw.goal);
  const svg = h("svg", { id: "parcoords", class: "chart sweepfig", viewBox: `0 0 ${width} ${H}`, width, height: H });
  const lines = h("g", {});
  // Worst first, so the best trials are drawn on top.
  const order = [...sw.trials].sort((a, b) => (a.value === null) - (b.value === null) || (b.value === null ? 0 : good(b.value) - good(a.value)));
  for (const t of order) {
    const ok = t.value !== null;
    const pts = axes.map((a, i) => `${xs[i]},${a.metric ? (ok ? scales[i].pos(t.value) : fail) : scales[i].pos(t.params[a.key])}`);
    const best = sw.best && t.trial === sw.best.trial;
    lines.append(h("polyline", { points: pts.join(" "), "data-trial": t.trial, "data-value": ok ? t.value : "",
      stroke: ok ? seqColor(good(t.value)) : "#9ca3af", "stroke-width": best ? 3.5 : 1.5, "stroke-dasharray": ok ? null : "4 3",
      opacity: ok ? 0.85 : 0.7 }, h("title", {}, `trial ${t.trial} (${t.status}): ` +
      keys.map((k) => `${k}=${fmt(t.params[k])}`).join(", ") + `, ${metric}=${ok ? fmt(t.value) : "no value"}`)));
  }
  svg.append(lines);
  axes.forEach((a, i) => {
    const g = h("g", {});
    g.append(h("line", { x1: xs[i], x2: xs[i], y1: top, y2: bottom, class: "axis" }),
      h("text", { x: xs[i], y: top - 12, "text-anchor": "middle", class: "axis-title" },
        a.metric ? `${metric}${sw.units ? ` (${sw.units})` : ""}` : `${a.key}${a.axis.log ? " (log)" : ""}`));
    svgAxisTicks(g, scales[i], xs[i], true);
    if (a.metric && sw.trials.some((t) => t.value === null)) g.append(h("text", { x: xs[i] + 6, y: fail + 4 }, "failed"));
    svg.append(g);
  });
  return svg;
}

// One small scatter per param: x the param, y the metric, colour by another param.
function scatter(sw, key, colorBy, width) {
  const H = 250, top = 14, bottom = H - 44, left = 62, right = width - 12;
  const failed = sw.trials.filter((t) => t.value === null);
  // Failed trials have no value: they get their own strip above the x axis, apart from the values.
  const valueBottom = failed.length ? bottom - 26 : bottom, fail = bottom - 10;
  const xs = scaleFor(sw.space[key] || { kind: "numeric" }, sw.trials.map((t) => t.params[key]), left, right);
  const ys = scaleFor({ kind: "numeric", pad: 0.05 }, sw.trials.map((t) => t.value), valueBottom - 4, top);
  const cAxis = colorBy ? sw.space[colorBy] || { kind: "numeric" } : null;
  const cScale = cAxis ? scaleFor(cAxis, sw.trials.map((t) => t.params[colorBy]), 0, 1) : null;
  const color = (t) => !cScale ? COLORS[0] : cScale.kind === "categorical"
    ? COLORS[cScale.cats.indexOf(String(t.params[colorBy])) % COLORS.length] : paramColor(cScale.pos(t.params[colorBy]));
  const svg = h("svg", { class: "chart sweepfig scatter", "data-param": key, viewBox: `0 0 ${width} ${H}`, width, height: H });
  const g = h("g", {});
  g.append(h("line", { x1: left, x2: right, y1: bottom, y2: bottom, class: "axis" }), h("line", { x1: left, x2: left, y1: top, y2: bottom, class: "axis" }));
  svgAxisTicks(g, xs, bottom, false);
  svgAxisTicks(g, ys, left, true);
  g.append(h("text", { x: (left + right) / 2, y: H - 4, "text-anchor": "middle", class: "axis-title" }, `${key}${xs.log ? " (log)" : ""}`),
    h("text", { x: 12, y: (top + bottom) / 2, transform: `rotate(-90 12 ${(top + bottom) / 2})`, "text-anchor": "middle", class: "axis-title" },
      `${sw.metric}${sw.units ? ` (${sw.units})` : ""}`));
  if (failed.length) g.append(h("line", { x1: left, x2: right, y1: valueBottom, y2: valueBottom, class: "axis", "stroke-dasharray": "3 3" }),
    h("text", { x: left - 6, y: fail + 4, "text-anchor": "end" }, "failed"));
  svg.append(g);
  for (const t of sw.trials) {
    const x = xs.pos(t.params[key]);
    const label = h("title", {}, `trial ${t.trial}: ${key}=${fmt(t.params[key])}` + (colorBy ? `, ${colorBy}=${fmt(t.params[colorBy])}` : "") +
      `, ${sw.metric}=${t.value === null ? `no value (${t.status})` : fmt(t.value)}`);
    if (t.value === null) {
      svg.append(h("path", { d: `M${x - 4},${fail - 4}L${x + 4},${fail + 4}M${x - 4},${fail + 4}L${x + 4},${fail - 4}`, stroke: "#b91c1c",
        "stroke-width": 1.6, "data-trial": t.trial }, label));
    } else {
      svg.append(h("circle", { cx: x, cy: ys.pos(t.value), r: sw.best && t.trial === sw.best.trial ? 6 : 4.5, fill: color(t),
        stroke: sw.best && t.trial === sw.best.trial ? "#111827" : "white", "stroke-width": 1, "data-trial": t.trial }, label));
    }
  }
  return svg;
}

function colorLegend(sw, colorBy) {
  if (!colorBy) return "";
  const axis = sw.space[colorBy] || { kind: "numeric" };
  const sc = scaleFor(axis, sw.trials.map((t) => t.params[colorBy]), 0, 1);
  if (sc.kind === "categorical") {
    return h("div", { class: "legend", id: "color-legend" }, `colour: ${colorBy} `, sc.cats.map((c, i) => {
      const sw_ = h("i", { class: "swatch" }); sw_.style.background = COLORS[i % COLORS.length];
      return h("span", { class: "chip" }, sw_, ` ${c}`);
    }));
  }
  const bar = h("span", { class: "ramp" });
  bar.style.background = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(paramColor).join(",")})`;
  return h("div", { class: "legend", id: "color-legend" }, `colour: ${colorBy}${sc.log ? " (log)" : ""} `,
    sc.ticks[0].label, " ", bar, " ", sc.ticks[sc.ticks.length - 1].label);
}

async function sweepsPage(name, query, id) {
  if (id) return sweepPage(name, id, query);
  const g = generation;
  const [exp, list] = await Promise.all([api(`/api/experiments/${encodeURIComponent(name)}`),
    api(`/api/experiments/${encodeURIComponent(name)}/sweeps`)]);
  const head = [...expHeader(exp, false), tabs(name, "sweep")];
  if (!list.sweeps.length) return show(g, ...head, h("p", { class: "muted" }, "No sweep yet: ", h("code", {}, `assay sweep ${name} lr=1e-4,3e-4 -j 2`)));
  show(g, ...head, h("table", { id: "sweeps" },
    h("tr", {}, ["sweep", "status", "sampler", "params", "trials", "best value", ""].map((c) => h("th", {}, c))),
    list.sweeps.map((s) => h("tr", { "data-id": s.id },
      h("td", {}, h("a", { href: `${expHref(name, "sweep")}/${encodeURIComponent(s.id)}` }, s.id), h("div", { class: "muted" }, when(s.created))),
      s.error ? h("td", { colspan: 6, class: "error" }, s.error) : [
        h("td", {}, badge(s.status || "?", `s-${s.status === "done" ? "ok" : s.status}`)),
        h("td", {}, s.sampler),
        h("td", {}, (s.params || []).join(", ")),
        h("td", { class: "num" }, `${s.trials} of ${s.budget ?? "?"} `, h("span", { class: "muted" },
          Object.entries(s.counts).map(([k, n]) => `${n} ${k}`).join(", "))),
        h("td", { class: "num", "data-key": "best" }, s.best === null ? "" : `${s.value === "last" ? "" : "best "}${s.metric}=${fmt(s.best)} (trial ${s.best_trial})`),
        h("td", {}, "")]))));
}

async function sweepPage(name, id, query) {
  const g = generation;
  const [exp, sw] = await Promise.all([api(`/api/experiments/${encodeURIComponent(name)}`),
    api(`/api/experiments/${encodeURIComponent(name)}/sweeps/${encodeURIComponent(id)}`)]);
  crumbs(h("a", { href: expHref(name) }, name), h("a", { href: expHref(name, "sweep") }, "sweeps"), h("span", {}, id));
  window.assayCharts.sweep = sw;
  const keys = Object.keys(sw.space).length ? Object.keys(sw.space) : [...new Set(sw.trials.flatMap((t) => Object.keys(t.params)))];
  const label = `${sw.value === "last" ? "last" : "best"} ${sw.metric}`;
  const counts = {};
  sw.trials.forEach((t) => { counts[t.status] = (counts[t.status] || 0) + 1; });
  const valued = sw.trials.filter((t) => t.value !== null);
  // Best so far over trials: every trial's value as a point, the running best as a line.
  const chart = chartCard("best so far", { title: `${label}: best so far over trials`, xLabel: "trial", integerX: true,
    yLabel: axisTitle(sw.metric, { [sw.metric]: sw.units }),
    note: sw.trials.length > valued.length ? `${sw.trials.length - valued.length} trial(s) without a value are not drawn` : "",
    lines: [{ id: "trial", label: `trial's ${label}`, color: COLORS[0], xs: valued.map((t) => t.trial), ys: valued.map((t) => t.value), points: true },
      { id: "best", label: "best so far", color: COLORS[2], xs: sw.best_so_far.filter((b) => b.value !== null).map((b) => b.trial),
        ys: sw.best_so_far.filter((b) => b.value !== null).map((b) => b.value) }] });
  const width = Math.max(700, Math.min(1360, (document.getElementById("main").clientWidth || 1200) - 30));
  const colorChoices = keys.filter((k) => new Set(sw.trials.map((t) => String(t.params[k]))).size > 1);
  const colorBy = colorChoices.includes(query.get("color")) ? query.get("color") : null;
  const scatters = h("div", { class: "scatters", id: "scatters" });
  const drawScatters = (by) => {
    const w = Math.max(300, Math.floor((width - 20) / Math.min(3, keys.length)) - 12);
    scatters.replaceChildren(...keys.map((k) => {
      const other = by && by !== k ? by : colorChoices.find((c) => c !== k) || null;
      return h("div", { class: "card" }, scatter(sw, k, other, w), colorLegend(sw, other));
    }));
  };
  drawScatters(colorBy);
  const colorSelect = h("label", {}, "colour by ", h("select", { id: "color-by", onchange: (ev) => {
    const q = new URLSearchParams(query); q.set("color", ev.target.value); history.replaceState(null, "", `#${location.hash.slice(1).split("?")[0]}?${q}`);
    drawScatters(ev.target.value);
  } }, h("option", { value: "" }, "(another param)"), colorChoices.map((k) => h("option", { value: k, selected: k === colorBy }, k))));
  const imp = sw.importance;
  const importance = imp.method ? h("table", { id: "importance" }, h("tr", {}, h("th", {}, "param"), h("th", {}, "importance (fANOVA)"), h("th", {}, "")),
    Object.entries(imp.values).map(([k, v]) => {
      const bar = h("span", { class: "bar" }); bar.style.width = `${Math.round(v * 100)}%`;
      return h("tr", { "data-param": k }, h("td", {}, k), h("td", { class: "num", "data-value": v }, `${(v * 100).toFixed(1)}%`), h("td", { class: "barcell" }, bar));
    })) : h("p", { class: "muted", id: "importance" }, imp.note);
  const best = sw.best;
  show(g, ...expHeader(exp, false), tabs(name, "sweep"),
    h("h2", {}, `sweep ${sw.id} `, badge(sw.status || "?", `s-${sw.status === "done" ? "ok" : sw.status}`)),
    h("p", { class: "muted", id: "sweep-settings" }, `${sw.sampler} sampler, ${sw.trials.length} of ${sw.budget} trials (`,
      Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", "), `); each trial is scored by the ${sw.value} value of ${sw.metric} (${sw.goal})`,
      Object.keys(sw.fixed).length ? `; fixed: ${Object.entries(sw.fixed).map(([k, v]) => `${k}=${fmt(v)}`).join(" ")}` : ""),
    best ? h("p", { id: "sweep-best" }, "best: ", h("b", {}, `${label} = ${fmt(best.value)}`), ` at trial ${best.trial} (`,
      keys.map((k) => `${k}=${fmt(best.params[k])}`).join(", "), ") ", h("a", { href: runHref(best.run) }, "run")) : h("p", { id: "sweep-best" }, "no trial has a value yet"),
    h("div", { class: "grid sweep-top" }, chart, h("div", { class: "card" }, h("div", { class: "chart-title" }, h("b", {}, "param importance"),
      h("span", { class: "muted" }, imp.method ? ` fANOVA over ${imp.trials} trials with a value (Optuna)` : "")), importance)),
    h("h2", {}, "Parallel coordinates"),
    h("div", { class: "card" }, parallelCoords(sw, keys, width),
      h("p", { class: "muted legend" }, `one line per trial, coloured by ${label} (`, h("span", { class: "ramp" }), ` dark = better); the thickest is the best; dashed grey: no value`)),
    h("h2", {}, `${label} against each param`), h("div", { class: "controls" }, colorSelect), scatters,
    h("h2", {}, "Trials"), h("table", { id: "trials" },
      h("tr", {}, ["trial", ...keys, "status", label, "duration", "run"].map((c) => h("th", {}, c))),
      sw.trials.map((t) => h("tr", { "data-trial": t.trial, class: best && t.trial === best.trial ? "best" : null },
        h("td", { class: "num" }, t.trial), keys.map((k) => h("td", { "data-key": k }, fmt(t.params[k]))),
        h("td", {}, badge(t.status, `s-${t.status}`)),
        h("td", { class: "num", "data-key": "value", "data-value": t.value === null ? "" : t.value }, fmt(t.value)),
        h("td", { class: "num" }, dur(t.duration)),
        h("td", {}, t.run ? h("a", { href: runHref(t.run) }, t.run.split("/").pop()) : "")))));
  const ramp = document.querySelector("#main .legend .ramp");
  if (ramp) ramp.style.background = `linear-gradient(to right, ${[0, 0.5, 1].map(seqColor).join(",")})`;
  if (g === generation && sw.status === "running") { setLive(true); schedule(route, POLL_TABLE_MS); }
}

// ---------------------------------------------------------------- run diff

function diffLines(text) {
  return h("pre", { class: "diff" }, text.split("\n").map((line) => h("span", { class:
    line.startsWith("+++") || line.startsWith("---") ? "d-file" : line.startsWith("+") ? "d-add" : line.startsWith("-") ? "d-del" : line.startsWith("@@") ? "d-hunk" : null }, `${line}\n`)));
}

async function diffPage(a, b) {
  const g = generation;
  const d = await api(`/api/diff?${new URLSearchParams({ a, b })}`);
  crumbs(h("a", { href: expHref(a.split("/")[0]) }, a.split("/")[0]), h("span", {}, "run diff"));
  window.assayCharts.diff = d;
  const A = d.a, B = d.b;
  const commit = (r) => r.commit ? `${r.commit.slice(0, 12)}${r.dirty ? " + uncommitted changes" : ""}` : "(not in git)";
  const summary = h("table", { id: "diff-runs", class: "side" },
    h("tr", {}, h("th", {}, ""), h("th", {}, "run A"), h("th", {}, "run B")),
    [["run", (r) => h("a", { href: runHref(r.id) }, r.id)], ["description", (r) => r.desc], ["status", (r) => badge(r.status, `s-${r.status}`)],
      ["started", (r) => when(r.started)], ["duration", (r) => dur(r.duration)], ["seed", (r) => fmt(r.seed)],
      ["commit", commit], ["code version", (r) => r.code || ""], ["command", (r) => (r.command || []).join(" ")]]
      .map(([k, f]) => h("tr", { class: ["seed", "commit", "code version"].includes(k) && fmt(k === "commit" ? commit(A) : f(A)) !== fmt(k === "commit" ? commit(B) : f(B)) ? "differs" : null },
        h("td", { class: "muted" }, k), h("td", {}, f(A)), h("td", {}, f(B)))));
  const differ = d.params.filter((p) => !p.same);
  const params = h("table", { id: "diff-params", class: "side" }, h("tr", {}, ["param", "run A", "run B"].map((c) => h("th", {}, c))),
    d.params.map((p) => h("tr", { "data-key": p.key, class: p.same ? null : "differs" }, h("td", {}, p.key),
      h("td", { "data-side": "a" }, p.only === "b" ? h("span", { class: "muted" }, "(not set)") : fmt(p.a)),
      h("td", { "data-side": "b" }, p.only === "a" ? h("span", { class: "muted" }, "(not set)") : fmt(p.b)))));
  const delta = (x, y) => (Number.isFinite(x) && Number.isFinite(y) ? fmt(y - x) : "");
  const metrics = h("table", { id: "diff-metrics", class: "side" },
    h("tr", {}, ["metric", "last A", "last B", "B − A", "best A", "best B"].map((c) => h("th", {}, c))),
    [...d.metrics].sort((x, y) => (x.key !== d.primary_metric) - (y.key !== d.primary_metric)).map((m) =>
      h("tr", { "data-key": m.key, class: m.key === d.primary_metric ? "best" : null }, h("td", {}, m.key),
        h("td", { class: "num", "data-side": "a_last" }, fmt(m.a_last)), h("td", { class: "num", "data-side": "b_last" }, fmt(m.b_last)),
        h("td", { class: "num" }, delta(m.a_last, m.b_last)),
        h("td", { class: "num", "data-side": "a_best" }, fmt(m.a_best)), h("td", { class: "num", "data-side": "b_best" }, fmt(m.b_best)))));
  const c = d.code;
  const code = h("div", { id: "diff-code" },
    !c.available ? [h("p", { class: "muted" }, c.note), A.code && B.code ? h("p", { id: "code-versions" }, A.code === B.code
      ? `Same code version (fingerprint ${A.code}): the files of the experiment folder were identical.`
      : `Different code versions (fingerprints ${A.code} and ${B.code}): the code changed between the runs.`) : ""]
      : c.same_commit ? h("p", {}, `Both runs ran commit ${c.a.slice(0, 12)}.`)
        : [h("p", {}, h("code", {}, `git diff ${c.a.slice(0, 12)} ${c.b.slice(0, 12)} -- ${c.path}`)),
          c.diff ? diffLines(c.diff) : h("p", { class: "muted" }, "The commits differ, but not inside the experiment folder.")],
    // Without a commit there is no "uncommitted" either: the patches are shown only for runs in git.
    ["a", "b"].filter((s) => d.patches[s] || d[s].commit).map((s) => [h("h3", {}, `uncommitted changes of run ${s.toUpperCase()} (git.patch)`),
      d.patches[s] ? diffLines(d.patches[s]) : h("p", { class: "muted", "data-patch": s }, "none")]));
  const e = d.environment;
  const env = h("div", { id: "diff-env" }, !e.available ? h("p", { class: "muted" }, e.note) : [
    e.fields.length ? h("table", { class: "side" }, h("tr", {}, ["", "run A", "run B"].map((t) => h("th", {}, t))),
      e.fields.map((f) => h("tr", { class: "differs" }, h("td", {}, f.key), h("td", {}, fmt(f.a)), h("td", {}, fmt(f.b))))) : h("p", {}, "Same Python, platform and host."),
    e.packages.length ? h("table", { class: "side", id: "diff-packages" }, h("tr", {}, ["package", "run A", "run B"].map((t) => h("th", {}, t))),
      e.packages.map((p) => h("tr", { class: "differs", "data-key": p.name }, h("td", {}, p.name),
        h("td", {}, p.a ?? h("span", { class: "muted" }, "(absent)")), h("td", {}, p.b ?? h("span", { class: "muted" }, "(absent)"))))) : "",
    h("p", { class: "muted" }, `${e.packages.length} package(s) differ; ${e.packages_same} identical.`)]);
  show(g, h("h1", {}, "Run diff"), summary,
    h("h2", {}, `Params `, h("span", { class: "muted", id: "params-count" }, `${differ.length} of ${d.params.length} differ`)), params,
    h("h2", {}, "Metrics"), metrics,
    h("h2", {}, "Code"), code,
    h("h2", {}, "Environment"), env);
}

// ---------------------------------------------------------------- router

let lastHash = null;

async function route() {
  clearTimeout(timer);
  const g = ++generation;
  const refresh = lastHash === location.hash, y = window.scrollY;  // a live poll keeps the reader's place
  lastHash = location.hash;
  const [path, qs] = location.hash.replace(/^#/, "").split("?");
  const query = new URLSearchParams(qs || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  setLive(false);
  try {
    if (parts[0] === "e" && parts[1]) {
      const page = { sweep: sweepsPage, loop: loopPage, journal: journalPage, report: reportPage, chart: overlayPage, compare: comparePage }[parts[2]] || runsPage;
      await page(parts[1], query, parts[3]);
    } else if (parts[0] === "r" && parts.length === 3) await runPage(parts[1], parts[2]);
    else if (parts[0] === "diff" && parts.length === 3) await diffPage(parts[1], parts[2]);
    else await experimentsPage();
  } catch (err) {
    if (g === generation) show(g, h("p", { class: "error", id: "error" }, err.message));
  }
  if (refresh) window.scrollTo(0, y);
  document.body.dataset.ready = String(g);  // tests wait for this
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
