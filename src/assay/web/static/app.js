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
  document.getElementById("main").replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}
function schedule(fn, ms) {
  const g = generation;
  timer = setTimeout(() => { if (g === generation) fn(); }, ms);
}

// ---------------------------------------------------------------- charts

// A line chart of one metric for one or more runs (already downsampled by the server).
function lineChart(metric, byRun, opts = {}) {
  const W = 640, H = 260, L = 58, R = 12, T = 12, B = 28;
  window.assayCharts[metric] = byRun;
  const all = Object.values(byRun);
  const xs = all.flatMap((s) => s.steps), ys = all.flatMap((s) => s.values);
  const svg = h("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${metric} chart`, "data-metric": metric, "data-runs": Object.keys(byRun).length,
    "data-points": ys.length });
  if (!ys.length) return h("div", { class: "card" }, h("b", {}, metric), h("p", { class: "muted" }, "no finite values yet"));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.05 || 1; y1 += Math.abs(y1) * 0.05 || 1; }
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  svg.append(h("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    h("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4, x = x0 + ((x1 - x0) * i) / 4;
    svg.append(h("text", { x: L - 4, y: py(y) + 4, "text-anchor": "end" }, tick(y)),
      h("text", { x: px(x), y: H - 8, "text-anchor": "middle" }, tick(x)));
  }
  const legend = h("div", { class: "legend" });
  Object.entries(byRun).forEach(([run, s], i) => {
    const color = opts.colors?.[run] || COLORS[i % COLORS.length];
    const pts = s.steps.map((x, j) => `${px(x).toFixed(1)},${py(s.values[j]).toFixed(1)}`).join(" ");
    svg.append(h("polyline", { points: pts, stroke: color, "data-run": run, "data-count": s.count },
      h("title", {}, `${run}: ${s.count} points${s.downsampled ? ` (${s.values.length} drawn)` : ""}`)));
    if (s.values.length <= 60) s.steps.forEach((x, j) => svg.append(h("circle", { cx: px(x), cy: py(s.values[j]), r: 2, fill: color },
      h("title", {}, `step ${x}: ${fmt(s.values[j])}`))));
    const label = opts.labels?.[run] || run.split("/").pop();
    legend.append(h("span", {}, h("i", { class: "swatch", "data-color": color }), label,
      s.downsampled ? h("span", { class: "muted" }, ` (${s.count} pts, ${s.values.length} drawn)`) : "",
      s.nonfinite ? h("span", { class: "muted" }, ` ${s.nonfinite} non-finite`) : ""));
  });
  legend.querySelectorAll("i.swatch").forEach((el) => { el.style.background = el.dataset.color; });
  return h("div", { class: "card" }, h("b", {}, metric), svg, legend);
}

async function chartsFor(runIds, keys, labels) {
  const points = Math.min(2000, Math.max(200, Math.round(window.innerWidth)));
  const q = `/api/series?runs=${encodeURIComponent(runIds.join(","))}&points=${points}` +
    (keys ? `&keys=${encodeURIComponent(keys.join(","))}` : "");
  const data = await api(q);
  const metrics = {};
  for (const [run, series] of Object.entries(data.runs)) {
    for (const [k, s] of Object.entries(series)) (metrics[k] ||= {})[run] = s;
  }
  const names = keys || Object.keys(metrics).sort();
  return h("div", { class: "grid", id: "charts" }, names.filter((k) => metrics[k]).map((k) => lineChart(k, metrics[k], { labels })));
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
  const t = [["", "runs"], ["loop", "loop"], ["journal", "journal"], ["report", "report"]];
  return h("div", { class: "tabs" }, t.map(([tab, label]) => h("a", { href: expHref(name, tab), class: tab === on ? "on" : null }, label)));
}

function expHeader(exp) {
  crumbs(h("a", { href: expHref(exp.name) }, exp.name));
  return [h("h1", {}, exp.name), h("p", {}, exp.hypothesis),
    h("p", { class: "muted" }, `primary metric: ${exp.metric} (${exp.goal})`,
      exp.success ? ` · success: ${exp.success}` : "", exp.failure ? ` · failure: ${exp.failure}` : ""),
    h("p", { id: "verdict" }, "verdict: ", badge(exp.verdict, `v-${exp.verdict.replace(/\W+/g, "-")}`), " ",
      h("span", { class: "muted" }, exp.verdict_reason || "")),
    configTable(exp.configurations)];
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
  const [exp, page] = await Promise.all([
    api(`/api/experiments/${encodeURIComponent(name)}`),
    api(`/api/experiments/${encodeURIComponent(name)}/runs?` + new URLSearchParams({
      where: query.get("where") || "", sort: query.get("sort") || "", offset: query.get("offset") || "0",
      limit: String(PAGE), all: query.get("all") || "" })),
  ]);
  const params = exp.params.slice(0, 8), metrics = exp.metrics.slice(0, 6);
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
  if (selection.exp !== name) { selection.exp = name; selection.ids.clear(); }
  const selected = selection.ids;
  const compare = h("button", { id: "compare", disabled: !selected.size, onclick: () =>
    (location.hash = `${expHref(name, "chart")}?runs=${encodeURIComponent([...selected].join(","))}`) }, "chart selected");
  const off = page.offset;
  const table = h("table", { id: "runs", "data-total": page.total },
    h("tr", {}, h("th", {}, ""), header("run", "started"), header("status", "status"), header("duration", "duration"),
      metrics.map((m) => header(m, m)), header(`best ${exp.metric}`, `best_${exp.metric}`), params.map((p) => header(p, `params.${p}`))),
    page.rows.map((r) => h("tr", { "data-id": r.id, class: r.ignored ? "muted" : null },
      h("td", {}, h("input", { type: "checkbox", checked: selected.has(r.id), onchange: (ev) => {
        ev.target.checked ? selected.add(r.id) : selected.delete(r.id);
        compare.disabled = !selected.size;
      } })),
      h("td", {}, h("a", { href: runHref(r.id) }, r.desc || r.id), h("div", { class: "muted" }, when(r.started))),
      h("td", {}, badge(r.status, `s-${r.status}`), r.ignored ? " ignored" : ""),
      h("td", { class: "num" }, dur(r.duration)),
      metrics.map((m) => h("td", { class: "num" }, fmt(r.metrics[m]?.last))),
      h("td", { class: "num" }, fmt(r.metrics[exp.metric]?.best)),
      params.map((p) => h("td", {}, fmt(r.params[p]))))));
  show(g, ...expHeader(exp), tabs(name, ""),
    h("div", { class: "controls" },
      h("form", { id: "filter" }, where, " ", h("button", { type: "submit" }, "filter")),
      h("select", { id: "status", onchange: (ev) => go({ where: ev.target.value ? `status=${ev.target.value}` : "", offset: "" }) },
        ["", "ok", "running", "failed", "timeout", "oom", "nan", "interrupted", "lost"].map((s) =>
          h("option", { value: s, selected: (query.get("where") || "") === `status=${s}` && s !== "" }, s || "any status"))),
      h("label", {}, h("input", { type: "checkbox", id: "all", checked: query.get("all") === "1",
        onchange: (ev) => go({ all: ev.target.checked ? "1" : "", offset: "" }) }), " show ignored"),
      compare),
    h("p", { class: "muted", id: "count" }, page.total ? `runs ${off + 1}–${off + page.rows.length} of ${page.total}` : "no runs match"),
    table,
    h("div", { class: "controls" },
      h("button", { id: "prev", disabled: off === 0, onclick: () => go({ offset: String(Math.max(0, off - PAGE)) }) }, "← newer"),
      h("button", { id: "next", disabled: off + PAGE >= page.total, onclick: () => go({ offset: String(off + PAGE) }) }, "older →")));
  if (g !== generation) return;
  document.getElementById("filter").addEventListener("submit", (ev) => { ev.preventDefault(); go({ where: where.value, offset: "" }); });
  if (page.rows.some((r) => r.status === "running")) { setLive(true); schedule(route, POLL_TABLE_MS); }
}

async function overlayPage(name, query) {
  const g = generation;
  const exp = await api(`/api/experiments/${encodeURIComponent(name)}`);
  const ids = (query.get("runs") || "").split(",").filter(Boolean);
  show(g, ...expHeader(exp), tabs(name, "chart"), h("p", {}, `${ids.length} runs overlaid: `,
    ids.map((id, i) => [i ? ", " : "", h("a", { href: runHref(id) }, id.split("/").pop())])),
  ids.length ? await chartsFor(ids, null) : h("p", { class: "muted" }, "Select runs in the table first."));
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
  const charts = r.metric_keys.length ? await chartsFor([id], r.metric_keys) : h("p", { class: "muted" }, "No metrics logged yet.");
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

async function loopPage(name) {
  const g = generation;
  const [exp, loop] = await Promise.all([api(`/api/experiments/${encodeURIComponent(name)}`),
    api(`/api/experiments/${encodeURIComponent(name)}/loop`)]);
  const head = [...expHeader(exp), tabs(name, "loop")];
  if (!loop.rows.length) return show(g, ...head, h("p", { class: "muted" }, "No loop yet: ", h("code", {}, `assay loop start ${name} --tag TAG --edit FILE`)));
  // Progress: every decision's metric, and the running best of the kept ones (autoresearch's plot).
  const steps = [], values = [], bestSteps = [], bestValues = [];
  let best = null;
  loop.rows.forEach((row, i) => {
    const v = "value" in row ? row.value : parseFloat(row.metric);  // value: the commit's one number, null for a crash
    if (!Number.isFinite(v)) return;
    steps.push(i); values.push(v);
    if (row.status === "keep" && (best === null || (loop.goal === "max" ? v > best : v < best))) best = v;
    if (best !== null) { bestSteps.push(i); bestValues.push(best); }
  });
  const chart = lineChart(`${loop.metric} per decision`, { tried: { steps, values, count: values.length },
    "best kept": { steps: bestSteps, values: bestValues, count: bestValues.length } }, { labels: { tried: "tried", "best kept": "best kept" } });
  const counts = {};
  loop.rows.forEach((r) => { counts[r.status] = (counts[r.status] || 0) + 1; });
  show(g, ...head, h("p", {}, Object.entries(counts).map(([k, n]) => [badge(`${n} ${k}`, `t-${k}`), " "])), chart,
    h("table", { id: "loop" }, h("tr", {}, loop.columns.map((c) => h("th", {}, c))),
      loop.rows.map((row) => h("tr", {}, loop.columns.map((c) => h("td", {},
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

// Markdown to DOM for REPORT.md: headings, lists, code blocks, tables, images, paragraphs.
// Only text nodes and a fixed set of elements are made; image sources stay inside the lab.
function markdown(text, base) {
  const out = h("div", { class: "report", id: "report" });
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("```")) {
      const code = [];
      while (++i < lines.length && !lines[i].startsWith("```")) code.push(lines[i]);
      out.append(h("pre", {}, code.join("\n")));
    } else if (/^#{1,4} /.test(line)) {
      const level = line.indexOf(" ");
      out.append(h(`h${Math.min(level + 1, 4)}`, {}, line.slice(level + 1)));
    } else if (/^\s*\|/.test(line)) {
      const rows = [];
      for (; i < lines.length && /^\s*\|/.test(lines[i]); i++) rows.push(lines[i]);
      i--;
      const cells = (r) => r.trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
      out.append(h("table", {}, rows.filter((r) => !/^\s*\|[\s:|-]+\|\s*$/.test(r)).map((r, j) =>
        h("tr", {}, cells(r).map((c) => h(j ? "td" : "th", {}, c))))));
    } else if (/^\s*[-*] /.test(line)) {
      out.append(h("li", {}, line.replace(/^\s*[-*] /, "")));
    } else {
      const img = line.match(/^!\[([^\]]*)\]\(([^)\s]+)\)/);
      if (img && !/^[a-z]+:|^\/\//i.test(img[2])) out.append(h("img", { class: "plot", alt: img[1], src: fileUrl(`${base}/${img[2]}`) }));
      else if (line.trim()) out.append(h("p", {}, line));
    }
  }
  return out;
}

async function reportPage(name) {
  const g = generation;
  const [exp, r] = await Promise.all([api(`/api/experiments/${encodeURIComponent(name)}`),
    api(`/api/experiments/${encodeURIComponent(name)}/report`)]);
  show(g, ...expHeader(exp), tabs(name, "report"), r.markdown === null
    ? h("p", { class: "muted" }, "No report yet: ", h("code", {}, `assay report ${name}`))
    : markdown(r.markdown, r.base));
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
      const page = { loop: loopPage, journal: journalPage, report: reportPage, chart: overlayPage }[parts[2]] || runsPage;
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
