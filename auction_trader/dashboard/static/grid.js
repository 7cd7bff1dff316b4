"use strict";
// The grid view: every combination, sortable and filterable by any parameter or metric, with the
// ranking metric's neighbour spread (as the CLI prints it), two side by side, heatmaps.
(() => {
  const KEY = AT.key();
  const API = (what, q = "") => `/api/${what}/${AT.enc(KEY)}${q}`;
  const $ = (id) => document.getElementById(id);
  const DEFAULT_METRICS = ["trades", "win_rate", "profit_factor", "max_drawdown", "fees_paid", "sharpe_annualised_1m", "return_pct"];
  const S = { data: null, metric: new URLSearchParams(location.search).get("metric") || "net_pnl", sort: { col: "rank", dir: 1 }, filters: {}, extra: [], ticked: [] };

  async function load() {
    try {
      S.data = await AT.get(API("grid", `?metric=${encodeURIComponent(S.metric)}`));
      const d = S.data;
      $("name").textContent = d.key;
      $("ident").textContent = `${d.rows.length} combinations · axes: ${d.axes.map((a) => `${a.name} (${a.values.length})`).join(" × ")}`;
      $("metric").innerHTML = d.metrics.map((m) => `<option ${m === d.metric ? "selected" : ""}>${AT.esc(m)}</option>`).join("");
      $("addcol").innerHTML = '<option value="">…</option>' + d.metrics.filter((m) => !columns().some((c) => c.id === `m:${m}`)).map((m) => `<option>${AT.esc(m)}</option>`).join("");
      $("axesnote").innerHTML = `Axes ${AT.esc(d.axes_from)}. nbr = the combinations one step away along one axis (a zip group is one axis): a spread close to the value is a plateau, one far below it a lucky spike.` +
        (d.can_rerun ? "" : ` <span class="err">Single reruns unavailable: ${AT.esc(d.rerun_blocker)}</span>`) +
        ` Fixed: ${AT.esc(Object.entries(d.fixed).filter(([k]) => ["catalog", "warmup_minutes", "rolling_window_minutes", "va_fraction", "risk_pct", "stop_buffer_ticks", "starting_balance"].includes(k)).map(([k, v]) => `${k}=${v}`).join(", "))}`;
      axisSelects();
      table();
      await heatmap();
      window.AT_READY = true;
    } catch (e) { AT.fail($("table"), e); }
  }

  // -- the table --------------------------------------------------------------------------------

  function columns() {
    const d = S.data, nbr = (k, label) => ({ id: `n:${k}`, label, get: (r) => (r.nbr ? r.nbr[k] : null), num: true });
    return [
      { id: "tick", label: "", get: () => null },
      { id: "rank", label: "#", get: (r) => r.rank, num: true },
      ...d.params.map((p) => ({ id: `p:${p}`, label: p, get: (r) => r.params[p], num: typeof d.rows[0]?.params[p] === "number", param: true })),
      { id: `m:${d.metric}`, label: d.metric, get: (r) => r.metrics[d.metric], num: true, key: true },
      nbr("count", "nbrs"), nbr("min", "nbr min"), nbr("median", "nbr median"), nbr("max", "nbr max"),
      ...[...DEFAULT_METRICS, ...S.extra].filter((m) => m !== d.metric && d.metrics.includes(m)).map((m) => ({ id: `m:${m}`, label: m, get: (r) => r.metrics[m], num: true })),
      { id: "status", label: "status", get: (r) => r.status },
      { id: "run", label: "single run", get: (r) => r.run || "" },
    ];
  }

  // A filter: "> 0", "<=0.7", "0.6", "!= failed", "a..b" (inclusive), or text to find.
  function passes(v, f) {
    f = f.trim(); if (!f) return true;
    const m = f.match(/^(>=|<=|!=|>|<|=)?\s*(.+)$/), range = f.match(/^(-?[\d.e]+)\s*\.\.\s*(-?[\d.e]+)$/);
    if (range) return v !== null && v >= Number(range[1]) && v <= Number(range[2]);
    const op = m[1] || "=", t = m[2], num = Number(t);
    if (v === null || v === undefined) return op === "!=";
    if (!Number.isNaN(num) && typeof v === "number") return { ">": v > num, "<": v < num, ">=": v >= num, "<=": v <= num, "=": Math.abs(v - num) < 1e-12, "!=": Math.abs(v - num) >= 1e-12 }[op];
    const s = String(v).toLowerCase(), q = t.toLowerCase();
    return op === "!=" ? !s.includes(q) : s.includes(q);
  }

  function fmt(c, v) {
    if (v === null || v === undefined) return '<span class="dim">-</span>';
    if (typeof v !== "number") return AT.esc(v);
    if (c.param || Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1 ? AT.num(v, 2) : Number(v.toPrecision(4)).toString();
  }

  function table() {
    const cols = columns(), d = S.data;
    let rows = d.rows.filter((r) => cols.every((c) => passes(c.get(r), S.filters[c.id] || "")));
    const sc = cols.find((c) => c.id === S.sort.col) || cols[1];
    rows = rows.slice().sort((a, b) => {
      const x = sc.get(a), y = sc.get(b);
      if (x === null || x === undefined) return 1; if (y === null || y === undefined) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * S.sort.dir;
    });
    $("count").textContent = `${rows.length} of ${d.rows.length} shown · ranked by ${d.metric} (${d.lower_is_better ? "lower" : "higher"} is better)`;
    const head = cols.map((c) => `<th class="${c.id === "tick" ? "" : "sort"} ${c.num ? "" : "l"} ${S.sort.col === c.id ? (S.sort.dir > 0 ? "asc" : "desc") : ""}" data-col="${AT.esc(c.id)}">${AT.esc(c.label)}</th>`).join("");
    const filt = cols.map((c) => (c.id === "tick" || c.id === "run" ? "<th></th>" : `<th><input data-col="${AT.esc(c.id)}" value="${AT.esc(S.filters[c.id] || "")}" placeholder="${c.num ? "> 0" : "find"}"></th>`)).join("");
    const body = rows.map((r) => `<tr class="${S.ticked.includes(r.run_id) ? "selected" : ""}" data-run="${AT.esc(r.run_id)}">` + cols.map((c) => {
      if (c.id === "tick") return `<td><input type="checkbox" class="tick" ${S.ticked.includes(r.run_id) ? "checked" : ""} ${r.run_id ? "" : "disabled"}></td>`;
      if (c.id === "run") return `<td class="l">${r.run ? `<a href="/run/${AT.enc(r.run)}">open run</a>` : r.status === "ok" ? `<button class="rerun" ${d.can_rerun ? "" : "disabled"} title="${AT.esc(d.rerun_blocker || "run this combination alone: full outputs, same run id")}">run it</button>` : ""}</td>`;
      const v = c.get(r);
      return `<td class="${c.num ? "" : "l"} ${c.key ? AT.cls(v) : ""}" ${c.id === "status" && r.error ? `title="${AT.esc(r.error)}"` : ""}>${fmt(c, v)}</td>`;
    }).join("") + "</tr>").join("");
    $("table").innerHTML = `<table id="grid-table"><thead><tr>${head}</tr><tr class="filters">${filt}</tr></thead><tbody>${body}</tbody></table>`;
    for (const th of $("table").querySelectorAll("th.sort")) th.onclick = () => { S.sort = { col: th.dataset.col, dir: S.sort.col === th.dataset.col ? -S.sort.dir : 1 }; table(); };
    for (const inp of $("table").querySelectorAll("tr.filters input")) inp.onchange = () => { S.filters[inp.dataset.col] = inp.value; table(); };
    for (const cb of $("table").querySelectorAll("input.tick")) cb.onchange = () => {
      const id = cb.closest("tr").dataset.run;
      S.ticked = cb.checked ? [...S.ticked.filter((x) => x !== id), id].slice(-2) : S.ticked.filter((x) => x !== id);
      $("compare").disabled = S.ticked.length !== 2; table();
    };
    for (const b of $("table").querySelectorAll("button.rerun")) b.onclick = () => rerun(b, b.closest("tr").dataset.run);
  }

  async function rerun(button, runId) {
    button.disabled = true; button.textContent = "queued…";
    let r = await AT.post(API("rerun", `?run_id=${encodeURIComponent(runId)}`));
    if (r.status === 409) { button.textContent = "refused"; button.title = r.body.reason; return; }
    let job = r.body;
    for (let i = 0; i < 3600 && job.state !== "done" && job.state !== "failed"; i++) {
      await new Promise((ok) => setTimeout(ok, 1000));
      job = await AT.get(`/api/job/${job.id}`);
      button.textContent = `${job.state}… ${job.seconds ?? 0}s`;
    }
    if (job.state === "done" && job.run) button.outerHTML = `<a href="/run/${AT.enc(job.run)}">open run</a>`;
    else { button.textContent = "failed"; button.title = job.output || ""; }
  }

  // -- side by side ------------------------------------------------------------------------------------

  async function compare() {
    const [a, b] = S.ticked;
    const c = await AT.get(API("compare", `?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`));
    $("cmp-panel").style.display = "";
    const names = [...new Set([...Object.keys(c.a.metrics), ...Object.keys(c.b.metrics)])].filter((k) => typeof (c.a.metrics[k] ?? c.b.metrics[k]) === "number");
    const params = Object.keys(c.a.params);
    const row = (k, x, y, isParam) => {
      const diff = typeof x === "number" && typeof y === "number" ? y - x : null;
      return `<tr${isParam && x !== y ? ' class="selected"' : ""}><td class="l">${AT.esc(k)}</td><td>${fmtAny(x)}</td><td>${fmtAny(y)}</td><td class="${AT.cls(diff)}">${diff === null ? "" : fmtAny(diff)}</td></tr>`;
    };
    const link = (e) => (e.run ? `<a href="/run/${AT.enc(e.run)}">${AT.esc(e.run_id)}</a>` : `${AT.esc(e.run_id)} <span class="dim">(not run alone yet)</span>`);
    $("cmp").innerHTML = `<div class="two"><div><table id="cmp-table"><thead><tr><th class="l"></th><th>A ${link(c.a)}</th><th>B ${link(c.b)}</th><th>B − A</th></tr></thead><tbody>` +
      params.map((k) => row(k, c.a.params[k], c.b.params[k], true)).join("") + names.map((k) => row(k, c.a.metrics[k], c.b.metrics[k], false)).join("") +
      `</tbody></table></div><div><div id="cmp-equity" class="chart" style="height:300px"></div><div id="cmp-trades"></div></div></div>`;
    const eq = [c.a, c.b].filter((e) => e.equity).map((e, i) => ({ type: "scatter", mode: "lines", x: e.equity.ts_min, y: e.equity.equity, name: `${i ? "B" : "A"} ${e.run_id}`, line: { width: 1.5 } }));
    if (eq.length) Plotly.react("cmp-equity", eq, AT.layout({ showlegend: true, legend: { orientation: "h" }, xaxis: AT.axis({ type: "date" }), yaxis: AT.axis({ tickformat: ",.0f" }) }), AT.config);
    else $("cmp-equity").innerHTML = '<p class="note">Equity curves and trades need the single runs: use "run it" on the rows.</p>';
    $("cmp-trades").innerHTML = [c.a, c.b].map((e, i) => (e.trades ? `<h2>${i ? "B" : "A"}: ${e.trades.length} round trips</h2><table><tbody>` + e.trades.map((t) => `<tr><td>${t.trade}</td><td class="l">${t.side}</td><td class="l">${AT.hm(Math.floor(t.ts_open / 1e6))}</td><td>${AT.num(t.entry_price, 1)}</td><td>${AT.num(t.exit_price, 1)}</td><td class="${AT.cls(t.net_pnl)}">${AT.num(t.net_pnl)}</td><td class="l dim">${AT.esc(t.setup)}/${AT.esc(t.exit_reason)}</td></tr>`).join("") + "</tbody></table>" : "")).join("");
    $("cmp-panel").scrollIntoView();
  }
  const fmtAny = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : Math.abs(v) >= 1 ? AT.num(v, 2) : Number(v.toPrecision(4)).toString()) : AT.esc(v ?? "-"));

  // -- heatmap --------------------------------------------------------------------------------------------

  function axisSelects() {
    const d = S.data, names = d.axes.map((a) => a.name);
    const keep = (id, dflt) => ($(id).value && names.includes($(id).value) ? $(id).value : dflt);
    const hx = keep("hx", names[0]), hy = keep("hy", names[1] || names[0]);
    $("hx").innerHTML = names.map((n) => `<option ${n === hx ? "selected" : ""}>${AT.esc(n)}</option>`).join("");
    $("hy").innerHTML = names.map((n) => `<option ${n === hy ? "selected" : ""}>${AT.esc(n)}</option>`).join("");
    const hm = $("hm").value || d.metric;
    $("hm").innerHTML = d.metrics.map((m) => `<option ${m === hm ? "selected" : ""}>${AT.esc(m)}</option>`).join("");
  }

  async function heatmap() {
    const x = $("hx").value, y = $("hy").value, metric = $("hm").value;
    if (!x || !y || x === y) { $("heatmap").innerHTML = '<p class="note">Pick two different axes.</p>'; return; }
    try {
      const h = await AT.get(API("heatmap", `?x=${encodeURIComponent(x)}&y=${encodeURIComponent(y)}&metric=${encodeURIComponent(metric)}`));
      const scale = h.lower_is_better ? "RdYlGn" : [[0, "#b62324"], [0.5, "#9e6a03"], [1, "#1a7f37"]];
      Plotly.react("heatmap", [{ type: "heatmap", x: h.x_labels, y: h.y_labels, z: h.z, colorscale: scale, reversescale: false, texttemplate: "%{z:.2f}", textfont: { color: "#e6edf3" },
        hovertemplate: `${AT.esc(h.x)}=%{x}<br>${AT.esc(h.y)}=%{y}<br>${AT.esc(h.metric)}=%{z:.4f}<extra></extra>`, colorbar: { title: { text: h.metric, side: "right" } } }],
        AT.layout({ margin: { l: 80, r: 20, t: 10, b: 50 }, xaxis: AT.axis({ type: "category", title: { text: h.x } }), yaxis: AT.axis({ type: "category", title: { text: h.y } }) }), AT.config);
      $("hnote").textContent = `${h.metric} by ${h.x} and ${h.y} (${h.aggregated}).`;
    } catch (e) { AT.fail($("heatmap"), e); }
  }

  $("metric").onchange = () => { S.metric = $("metric").value; $("hm").value = S.metric; load(); };
  $("addcol").onchange = () => { const m = $("addcol").value; if (m) { S.extra.push(m); load(); } };
  $("clear").onclick = () => { S.filters = {}; table(); };
  $("compare").onclick = () => compare().catch((e) => AT.fail($("cmp"), e));
  $("cmp-close").onclick = () => { $("cmp-panel").style.display = "none"; };
  for (const id of ["hx", "hy", "hm"]) $(id).onchange = () => heatmap();
  load();
})();
