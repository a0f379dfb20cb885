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
  const svg = ["svg", "polyline", "line", "text", "g", "circle", "title", "rect"].includes(tag);
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
  const opts = {
    width, height: spec.height || 260, bands,
    scales: { x: { time: false, range: (u, lo, hi) => (lo === hi ? [lo - 1, hi + 1] : [lo, hi]) }, y: chartSettings.logY && logOK ? { distr: 3 } : {} },
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
  const t = [["", "runs"], ["compare", "compare"], ["loop", "loop"], ["journal", "journal"], ["report", "report"]];
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
      compare, compareCfg),
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
      const page = { loop: loopPage, journal: journalPage, report: reportPage, chart: overlayPage, compare: comparePage }[parts[2]] || runsPage;
      await page(parts[1], query);
    } else if (parts[0] === "r" && parts.length === 3) await runPage(parts[1], parts[2]);
    else await experimentsPage();
  } catch (err) {
    if (g === generation) show(g, h("p", { class: "error", id: "error" }, err.message));
  }
  if (refresh) window.scrollTo(0, y);
  document.body.dataset.ready = String(g);  // tests wait for this
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
