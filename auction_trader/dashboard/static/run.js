"use strict";
// The trading view: one page for a finished backtest run (time slider) and, through the same
// data-source API, a live node (new minutes pushed over the WebSocket).
(() => {
  const KEY = AT.key();
  const API = (what, q = "") => `/api/${what}/${AT.enc(KEY)}${q}`;
  const MIN = 60000;
  const S = { info: null, m: null, marks: null, idx: 0, profile: null, state: null, fp: null, fpSide: "inferred", show: { lines: true, profile: true, marks: true }, alerts: [], loaded: {} };
  const $ = (id) => document.getElementById(id);
  const COLORS = { green: "#3fb950", red: "#f85149", amber: "#d29922", blue: "#58a6ff", poc: "#f0883e", dim: "#8b949e", violet: "#bc8cff", grey: "#484f58" };
  const FILL_SYMBOL = { entry: "triangle-up", tp1: "star", tp2: "star-diamond", stop: "x", time: "hourglass", flip: "bowtie", inside: "circle-x", kill: "octagon-x", exit: "square" };

  // -- loading ---------------------------------------------------------------------------------

  async function boot() {
    try {
      const pre = window.AT_PRE || {};  // started by run.html before plotly.js loaded
      const [info, m, marks] = await Promise.all(["run", "minutes", "markers"].map((w) => (pre[w] ? AT.read(pre[w]) : AT.get(API(w)))));
      S.info = info; S.m = m; S.marks = marks;
      header();
      summary();
      const n = m.ts_min.length;
      $("slider").max = Math.max(0, n - 1);
      const wanted = Number(new URLSearchParams(location.search).get("t"));
      let idx = n - 1;
      if (wanted) idx = Math.max(0, m.ts_min.findIndex((t) => t >= wanted));
      else if (info.initial_minute !== null && info.initial_minute !== undefined) idx = indexOf(info.initial_minute);
      if (info.kind === "live") $("follow").checked = true;
      if (n === 0) {  // a node that has not closed a minute yet: wait for the first one
        $("tlabel").textContent = "waiting for the first closed minute";
        connect();
        window.AT_READY = true; window.AT_LOAD_MS = window.AT_FIRST_MS = performance.now();
        return;
      }
      S.idx = Math.max(0, idx);
      // What the eye lands on first (the price chart with its profile, the tiles), then the rest.
      const first = pre.first ? await pre.first : null;
      await select(idx, true, first && first.ts === m.ts_min[S.idx] ? first : null);
      window.AT_FIRST_MS = performance.now();
      drawFlow(); drawEquity(); tradesTable();
      connect();
      window.AT_READY = true;
      window.AT_LOAD_MS = performance.now();
    } catch (e) { AT.fail($("price"), e); }
  }

  function indexOf(ms) {
    const t = S.m.ts_min; let lo = 0, hi = t.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (t[mid] <= ms) lo = mid; else hi = mid - 1; }
    return lo;
  }

  function header() {
    const i = S.info, run = i.run || {};
    $("name").textContent = i.key;
    $("mode").textContent = i.kind === "live" ? (i.status || {}).mode || "live" : "backtest";
    $("badges").innerHTML = (run.synthetic_data ? '<span class="badge synthetic">synthetic data</span> ' : "") + `<span class="badge">${AT.esc(run.instrument || "")}</span>`;
    $("ident").textContent = `${i.kind === "live" ? "live node" : `run ${run.run_id || "?"}`} · ${AT.time(i.first_minute)} → ${AT.time(i.last_minute)} UTC · ${i.minutes} minutes`;
    status(i.status);
    if (!i.catalog_available) $("profile-note").innerHTML = `<span class="err">profile and footprint unavailable: ${AT.esc(i.catalog_error)}</span>`;
  }

  function status(st) {
    if (!st) return;
    S.info.status = st;  // header() redraws from it
    const bits = [];
    if (S.info.kind === "live") {
      $("mode").textContent = st.mode || "no node";
      bits.push(st.active ? '<span class="badge active">ACTIVE</span>' : '<span class="badge inactive">inactive</span>');
    }
    if (st.warmup) {
      const w = st.warmup, done = Math.min(w.done ?? 0, w.needed);
      bits.push(`<span id="warmup" title="minutes of history the engine needs before it may trade">warm-up ${w.done ?? "-"}/${w.needed} min` +
        `<span class="gauge inline"><span style="width:${w.needed ? (100 * done / w.needed).toFixed(0) : 100}%"></span></span></span>`);
    }
    if (S.info.kind === "live" && st.updated_ms) bits.push(`<span id="status-age" data-ms="${st.updated_ms}"></span>`);
    if (st.halted) bits.push(`<span class="badge halted" title="${AT.esc(st.halt_reason || "")}">HALTED</span> <span class="err">${AT.esc(st.halt_reason || "")}</span>`);
    if (S.info.kind === "backtest") bits.push("finished run: move the slider to replay it");
    $("status").innerHTML = bits.join(" · ");
    statusAge();
    // Control buttons exist only where a live node is attached. Each says (hover) why it would be
    // refused now; a click asks the node all the same, and its answer is shown beside them.
    const el = $("controls");
    if (S.info.kind !== "live") { el.innerHTML = ""; return; }
    for (const [cmd, c] of Object.entries(st.controls || {})) {
      let b = el.querySelector(`button[data-cmd="${cmd}"]`);
      if (!b) {
        b = document.createElement("button"); b.textContent = cmd; b.dataset.cmd = cmd; b.id = `ctl-${cmd}`;
        b.onclick = () => control(cmd);
        el.appendChild(b);
      }
      b.classList.toggle("refused", !c.allowed);
      b.title = c.allowed ? `${cmd}: allowed now` : `${cmd}: ${c.reason}`;
    }
    if (!$("control-answer")) { const a = document.createElement("span"); a.id = "control-answer"; a.className = "note"; el.appendChild(a); }
  }

  // How old the node's status is, ticking: a node that stopped writing shows it here.
  function statusAge() {
    const el = $("status-age"); if (!el) return;
    const age = Math.max(0, (Date.now() - Number(el.dataset.ms)) / 1000);
    el.textContent = `status ${age < 90 ? `${age.toFixed(0)} s` : `${(age / 60).toFixed(0)} min`} ago`;
    el.className = age > 150 ? "err" : "dim";
    el.title = age > 150 ? "the node writes its status every minute: it is not running, or not writing" : "the node writes its status every minute and on change";
  }
  setInterval(statusAge, 1000);

  async function control(cmd) {
    const out = $("control-answer");
    out.className = "note"; out.textContent = `${cmd}: asking the node…`;
    const r = await AT.post(API("control", `?command=${cmd}`));
    const b = r.body || {};
    out.className = b.accepted ? "note ok" : "note err";
    out.textContent = b.accepted ? `${cmd}: ${b.status}${b.answer ? ` — ${b.answer}` : ""}` : `${cmd} refused: ${b.reason || b.detail || r.status}`;
    window.AT_CONTROL_ANSWER = out.textContent;
  }

  function summary() {
    $("summary").innerHTML = S.info.summary.map(([k, v]) => `<div>${AT.esc(k)}</div><div>${AT.esc(v)}</div>`).join("") +
      `<div>catalog</div><div class="dim" title="${AT.esc((S.info.run || {}).catalog)}">${AT.esc(((S.info.run || {}).catalog || "").split("/").slice(-2).join("/"))}</div>`;
  }

  // -- selecting a minute ------------------------------------------------------------------------

  let pending = null;
  // ``pre``: the first minute's requests, already under way (run.html); the price chart is then
  // drawn once, with its profile, rather than before and after it.
  async function select(idx, now = false, pre = null) {
    const n = S.m.ts_min.length;
    S.idx = Math.max(0, Math.min(n - 1, idx));
    $("slider").value = S.idx;
    const ts = S.m.ts_min[S.idx];
    $("tlabel").textContent = AT.time(ts) + " UTC";
    if (!(pre && pre.profile)) drawPrice();
    cursor();
    clearTimeout(pending);
    const go = async () => {
      const jobs = [(pre ? AT.read(pre.state) : AT.get(API("state", `?ts=${ts}`))).then((s) => { S.state = s; tiles(); })];
      if (S.info.catalog_available) {
        jobs.push((pre && pre.profile ? AT.read(pre.profile) : AT.get(API("profile", `?ts=${ts}`)))
          .then((p) => { if (p.ts_min === S.m.ts_min[S.idx]) { S.profile = p; drawPrice(); } })
          .catch((e) => { if (pre) drawPrice(); throw e; }));
        jobs.push(loadFootprint(pre && pre.footprint));
      }
      feeds();
      await Promise.all(jobs);
    };
    if (now) return go();
    pending = setTimeout(go, 90);
  }

  function loadFootprint(pre = null) {
    const ts = S.m.ts_min[S.idx], n = Number($("fp-minutes").value);
    const start = Math.max(S.m.ts_min[0], ts - (n - 1) * MIN);
    const rows = Number($("fp-rows").value);
    const url = API("footprint", `?start=${start}&end=${ts}&side=${S.fpSide}&rows=${rows}`);
    const asked = pre && n === 15 && rows === 24 && S.fpSide === "inferred" ? AT.read(pre) : AT.get(url);  // pre: asked with these
    return asked.then((fp) => { S.fp = fp; drawFootprint(); })
      .catch((e) => AT.fail($("footprint"), e));
  }

  // -- tiles ---------------------------------------------------------------------------------------

  function tile(id, level, v, s) {
    const el = $(id);
    el.classList.remove("green", "amber", "red");
    if (level && level !== "none") el.classList.add(level);
    el.querySelector(".v").innerHTML = v; el.querySelector(".s").innerHTML = s || "";
  }

  function tiles() {
    const s = S.state, th = S.info.thresholds;
    tile("t-amb", s.ambiguous_level, s.ambiguous === null ? "–" : AT.pct(s.ambiguous, 1), `amber ≥ ${AT.pct(th.ambiguous.amber, 0)} · red > ${AT.pct(th.ambiguous.red, 0)} (dual confirmation)`);
    tile("t-heat", s.heat_level, AT.pct(s.heat, 2), `amber ≥ ${AT.pct(th.heat.amber, 1)} · red > ${AT.pct(th.heat.red, 1)} (one stop-out trips the kill switch)`);
    const p = s.position;
    if (p) {
      const tp = [p.tp1 !== null ? `TP1 ${AT.num(p.tp1, 1)}` : null, p.tp2 !== null ? `TP2 ${AT.num(p.tp2, 1)}` : null].filter(Boolean).join(" · ");
      tile("t-pos", null, `<span class="${p.side === "LONG" ? "pos" : "neg"}">${p.side} ${AT.num(p.qty, 3)}</span>`,
        `entry ${AT.num(p.entry, 1)} · stop ${AT.num(p.stop, 1)}${p.stop !== p.stop_planned ? " (moved to entry)" : ""}<br>${tp} · ${AT.esc(p.setup)}`);
    } else tile("t-pos", null, '<span class="dim">flat</span>', "");
    tile("t-upnl", null, `<span class="${AT.cls(s.unrealized)}">${AT.num(s.unrealized)}</span>`, `realised ${AT.num(s.realized)} (net of fees, funding)`);
    const used = s.day_floor < 0 ? Math.max(0, Math.min(1, s.day_pnl / s.day_floor)) : 0;
    tile("t-day", s.kill_switch ? "red" : used > 0.5 ? "amber" : null, `<span class="${AT.cls(s.day_pnl)}">${AT.num(s.day_pnl)}</span>`,
      `kill switch at ${AT.num(s.day_floor)}${s.kill_switch ? " · <b>ACTIVE: no new entries until 00:00 UTC</b>" : ""}`);
    const g = $("t-day").querySelector(".gauge > div");
    g.style.width = `${(used * 100).toFixed(1)}%`; g.style.background = s.kill_switch ? COLORS.red : used > 0.5 ? COLORS.amber : COLORS.green;
    tile("t-eq", null, AT.num(s.equity), `balance ${AT.num(s.balance)} · mid ${AT.num(s.mid, 1)}`);
    const i = S.idx, m = S.m;
    tile("t-va", m.va_valid[i] ? null : "amber", `${AT.num(m.val[i], 1)} – ${AT.num(m.vah[i], 1)}`,
      `POC ${AT.num(m.poc[i], 1)} · ${m.va_valid[i] ? "valid" : "not valid (too few bins)"} · coverage ${AT.pct(m.va_coverage[i], 1)}`);
  }

  // -- the price chart with the profile ----------------------------------------------------------

  function fillText(f) {
    return `<b>${AT.esc(f.label)}</b> ${f.side} ${AT.num(f.qty, 3)} @ ${AT.num(f.price, 1)}<br>reason: <b>${AT.esc(f.reason)}</b><br>` +
      `${AT.esc(f.setup || "")} · ${f.order_type} · ${f.liquidity} · fee ${AT.num(f.commission, 4)}<br>bid ${AT.num(f.bid, 1)} / ask ${AT.num(f.ask, 1)} · ${AT.time(f.ts_ms)}`;
  }

  // The price and order-flow charts hold the minutes around the selected one, not the whole run:
  // a 48-hour live store is 2,880 candles, and the view shows 270 of them. The window moves in
  // 60-minute steps (so most slider steps only move the cursor) and keeps 270 minutes before and
  // 90 after the selected minute, more than what is on screen.
  function win() {
    const n = S.m.ts_min.length, a = Math.max(0, Math.floor((S.idx - 270) / 60) * 60);
    return [a, Math.min(n, a + 420)];
  }
  function part(a, b) { const out = {}; for (const [k, v] of Object.entries(S.m)) out[k] = v.slice(a, b); return out; }

  function drawPrice() {
    const [a, b] = win(), m = part(a, b), x = m.ts_min, idx = S.idx - a, ts = x[idx];
    const t0 = x[0], t1 = x[x.length - 1] + MIN;
    const lo = Math.max(0, idx - 239), hi = Math.min(x.length - 1, idx + 30);
    const traces = [{
      type: "candlestick", x, open: m.open, high: m.high, low: m.low, close: m.close, name: "price", hoverinfo: "x+y",
      increasing: { line: { color: COLORS.green, width: 1 } }, decreasing: { line: { color: COLORS.red, width: 1 } },
    }];
    if (S.show.lines) {
      for (const [k, c, name] of [["vah", COLORS.blue, "VAH"], ["val", COLORS.blue, "VAL"], ["poc", COLORS.poc, "POC"]])
        traces.push({ type: "scatter", mode: "lines", x, y: m[k], name, line: { color: c, width: k === "poc" ? 1.5 : 1.2, shape: "hv", dash: k === "poc" ? "dot" : "solid" }, hovertemplate: `${name} %{y:.1f}<extra></extra>` });
    }
    if (S.show.marks) {
      const f = S.marks.fills.filter((q) => q.ts_ms >= t0 && q.ts_ms < t1);
      traces.push({
        type: "scatter", mode: "markers", name: "fills", x: f.map((q) => q.ts_ms), y: f.map((q) => q.price), hovertext: f.map(fillText), hoverinfo: "text",
        marker: { size: 11, symbol: f.map((q) => (FILL_SYMBOL[q.purpose] || "square") + (q.purpose === "entry" && q.side === "SELL" ? "" : "")).map((s, j) => (s === "triangle-up" && f[j].side === "SELL" ? "triangle-down" : s)),
          color: f.map((q) => (q.side === "BUY" ? COLORS.green : COLORS.red)), line: { color: "#e6edf3", width: 1 } },
      });
      const sg = S.marks.signals.filter((q) => q.ts_min >= t0 && q.ts_min < t1);
      traces.push({
        type: "scatter", mode: "markers", name: "signals", x: sg.map((s) => s.ts_min + MIN), y: sg.map((s) => s.close),
        hovertext: sg.map((s) => `<b>${AT.esc(s.action)}</b> · ${AT.esc(s.reason)}<br>fired: ${AT.esc(s.fired.join(", ") || "-")}${s.stop ? `<br>stop ${AT.num(s.stop, 1)} · TP1 ${AT.num(s.tp1, 1)} · TP2 ${AT.num(s.tp2, 1)}` : ""}<br>${AT.time(s.ts_min)}`),
        hoverinfo: "text", marker: { size: 9, symbol: "circle-open", color: sg.map((s) => (s.action === "HOLD" ? COLORS.dim : COLORS.violet)), line: { width: 2 } },
      });
    }
    const shapes = [{ type: "line", xref: "x", yref: "paper", x0: ts + MIN / 2, x1: ts + MIN / 2, y0: 0, y1: 1, line: { color: "#e6edf3", width: 1, dash: "dot" } }];
    let ymin = Infinity, ymax = -Infinity;
    for (let i = lo; i <= hi; i++) { if (m.low[i] !== null) ymin = Math.min(ymin, m.low[i]); if (m.high[i] !== null) ymax = Math.max(ymax, m.high[i]); }
    const p = S.profile;
    const layout = AT.layout({
      xaxis: AT.axis({ type: "date", domain: [0, S.show.profile ? 0.8 : 1], range: [x[lo], x[hi] + MIN], rangeslider: { visible: false } }),
      yaxis: AT.axis({ side: "left", tickformat: ",.1f" }),
      xaxis2: AT.axis({ domain: [0.81, 1], anchor: "y", showticklabels: true, tickformat: "~s", title: { text: "volume (240m)", font: { size: 10 } }, visible: S.show.profile }),
      shapes, uirevision: "price",
    });
    if (S.show.profile && p && p.bins.length) {
      const w = p.width, inVa = (b) => b >= p.val_bin - 1e-9 && b <= p.vah_bin + 1e-9;
      traces.push({
        type: "bar", orientation: "h", xaxis: "x2", yaxis: "y", name: "profile", y: p.bins.map((b) => b + w / 2), x: p.volume, width: p.bins.map(() => w * 0.92),
        marker: { color: p.bins.map((b) => (Math.abs(b - p.poc_bin) < 1e-9 ? COLORS.poc : inVa(b) ? "rgba(88,166,255,0.85)" : "rgba(139,148,158,0.45)")) },
        hovertemplate: `%{y:.1f} ±${(w / 2).toFixed(2)}: %{x:.3f}<extra></extra>`,
      });
      shapes.push({ type: "rect", xref: "x2 domain", yref: "y", x0: 0, x1: 1, y0: p.va_low, y1: p.va_high, fillcolor: "rgba(88,166,255,0.10)", line: { color: "rgba(88,166,255,0.6)", width: 1 } });
      shapes.push({ type: "rect", xref: "x domain", yref: "y", x0: 0, x1: 1, y0: p.va_low, y1: p.va_high, fillcolor: "rgba(88,166,255,0.05)", line: { width: 0 }, layer: "below" });
      ymin = Math.min(ymin, p.bins[0]); ymax = Math.max(ymax, p.bins[p.bins.length - 1] + w);
      $("profile-note").innerHTML = `Profile ${AT.time(p.window_start)} → ${AT.time(p.ts_min)}: ${p.trades.toLocaleString()} trades, ${AT.num(p.total_volume, 3)} BTC in ${p.bins.length} bins of ${AT.num(p.width, 1)}; ` +
        `value area ${AT.num(p.va_low, 1)} – ${AT.num(p.va_high, 1)} (bins ${AT.num(p.val_bin, 1)} … ${AT.num(p.vah_bin, 1)}, ${AT.pct(p.va_volume / p.total_volume, 1)} of volume), POC bin ${AT.num(p.poc_bin, 1)}.` +
        ` Lines: the run's per-minute POC / VAL / VAH.`;
    }
    if (Number.isFinite(ymin)) { const pad = (ymax - ymin) * 0.04 || 1; layout.yaxis.range = [ymin - pad, ymax + pad]; }
    Plotly.react("price", traces, layout, AT.config);
  }

  // The selected minute on the order-flow and equity charts: a dotted line and the 240 minutes before.
  const cursorShape = () => { const ts = S.m.ts_min[S.idx] + MIN / 2; return { name: "cursor", type: "line", xref: "x", yref: "paper", x0: ts, x1: ts, y0: 0, y1: 1, line: { color: "#e6edf3", width: 1, dash: "dot" } }; };
  const cursorRange = () => [S.m.ts_min[Math.max(0, S.idx - 239)], S.m.ts_min[Math.min(S.m.ts_min.length - 1, S.idx + 30)] + MIN];

  function cursor() {
    const c = cursorShape();
    for (const id of ["flow", "equity"]) {
      const el = $(id); if (!el.layout) continue;
      if (id === "flow" && el.dataset.win !== win().join(",")) { drawFlow(); continue; }  // the window moved
      if ((el.layout.shapes || []).some((s) => s.name === "cursor" && s.x0 === c.x0)) continue;  // drawn there already
      Plotly.relayout(el, { shapes: [...(el.layout.shapes || []).filter((s) => s.name !== "cursor"), c], "xaxis.range": cursorRange() });
    }
  }

  // -- order flow --------------------------------------------------------------------------------------

  function drawFlow() {
    const [a, b] = win(), m = part(a, b), x = m.ts_min, c = S.info.config, th = S.info.thresholds;
    $("flow").dataset.win = `${a},${b}`;
    const hl = (y, yref, color, dash = "dash") => ({ type: "line", xref: "paper", x0: 0, x1: 1, yref, y0: y, y1: y, line: { color, width: 1, dash } });
    const traces = [
      { type: "bar", x, y: m.of_1m, yaxis: "y", name: "OF_1m", marker: { color: m.of_1m.map((v) => (v >= 0 ? COLORS.green : COLORS.red)) }, hovertemplate: "OF_1m %{y:.3f}<extra></extra>" },
      { type: "scatter", mode: "lines", x, y: m.of_norm_1m, yaxis: "y2", name: "OF_norm", line: { color: COLORS.blue, width: 1.2 }, hovertemplate: "OF_norm %{y:.3f}<extra></extra>" },
      { type: "scatter", mode: "lines", x, y: m.qimb_close, yaxis: "y3", name: "qimb close", line: { color: COLORS.violet, width: 1 }, hovertemplate: "qimb close %{y:.3f}<extra></extra>" },
      { type: "scatter", mode: "lines", x, y: m.qimb_ema_60s, yaxis: "y3", name: "qimb EMA", line: { color: COLORS.poc, width: 1.5 }, hovertemplate: "qimb EMA %{y:.3f}<extra></extra>" },
      { type: "scatter", mode: "lines", x, y: m.ambiguous_trade_frac_1m, yaxis: "y4", name: "ambiguous", fill: "tozeroy", line: { color: COLORS.amber, width: 1 }, fillcolor: "rgba(210,153,34,0.18)", hovertemplate: "ambiguous %{y:.1%}<extra></extra>" },
    ];
    const shapes = [
      hl(c.of_entry_min_norm ?? 0.1, "y2", COLORS.dim, "dot"), hl(-(c.of_entry_min_norm ?? 0.1), "y2", COLORS.dim, "dot"),
      hl(c.qimb_entry_min ?? 0.1, "y3", COLORS.dim, "dot"), hl(-(c.qimb_entry_min ?? 0.1), "y3", COLORS.dim, "dot"),
      hl(th.ambiguous.amber, "y4", COLORS.amber), hl(th.ambiguous.red, "y4", COLORS.red), cursorShape(),
    ];
    const lbl = (t, y) => ({ text: t, xref: "paper", yref: "paper", x: 0.002, y, xanchor: "left", yanchor: "top", showarrow: false, font: { size: 10, color: COLORS.dim } });
    Plotly.react("flow", traces, AT.layout({
      xaxis: AT.axis({ type: "date", anchor: "y4", range: cursorRange() }), bargap: 0.1,
      yaxis: AT.axis({ domain: [0.77, 1] }), yaxis2: AT.axis({ domain: [0.52, 0.74] }), yaxis3: AT.axis({ domain: [0.27, 0.49], range: [-1.05, 1.05] }),
      yaxis4: AT.axis({ domain: [0, 0.23], tickformat: ".0%", rangemode: "tozero" }), shapes,
      annotations: [lbl("OF_1m (BTC)", 1), lbl("OF_norm", 0.74), lbl("qimb close / EMA", 0.49), lbl("ambiguous fraction", 0.23)],
    }), AT.config);
  }

  // -- the footprint -------------------------------------------------------------------------------------

  function drawFootprint() {
    const fp = S.fp; if (!fp) return;
    $("fp-exchange").disabled = !fp.exchange_side_available;
    $("fp-exchange").title = fp.exchange_side_available ? "the exchange's taker side, from the data" : "this data carries no taker side";
    const x = fp.minutes.map((t) => AT.hm(t)), y = fp.bins.map((b) => b + fp.width / 2);
    const z = fp.buy.map((row, r) => row.map((b, c) => (b + fp.sell[r][c] + fp.unsigned[r][c] > 0 ? b - fp.sell[r][c] : null)));
    const text = fp.buy.map((row, r) => row.map((b, c) => (b + fp.sell[r][c] > 0 ? `${fmtV(fp.sell[r][c])}×${fmtV(b)}` : "")));
    let zmax = 0; for (const row of z) for (const v of row) if (v !== null) zmax = Math.max(zmax, Math.abs(v));
    const cells = fp.bins.length * fp.minutes.length;
    const traces = [{
      type: "heatmap", x, y, z, text, texttemplate: fp.bins.length <= 34 && fp.minutes.length <= 20 ? "%{text}" : "", textfont: { size: 9, color: "#e6edf3" }, xgap: 1, ygap: 1,
      zmin: -zmax || -1, zmax: zmax || 1, colorscale: [[0, "#b62324"], [0.5, "#21262d"], [1, "#1a7f37"]], showscale: false,
      hovertemplate: "%{x} · %{y:.1f}<br>sell × buy: %{text}<br>delta %{z:.3f}<extra></extra>",
    }, {
      type: "bar", x, y: fp.delta, yaxis: "y2", marker: { color: fp.delta.map((v) => (v >= 0 ? COLORS.green : COLORS.red)) }, hovertemplate: "delta %{y:.3f}<extra></extra>",
    }];
    Plotly.react("footprint", traces, AT.layout({
      xaxis: AT.axis({ type: "category", tickangle: 0, nticks: 16, anchor: "y2" }), yaxis: AT.axis({ domain: [0.2, 1], tickformat: ",.1f" }), yaxis2: AT.axis({ domain: [0, 0.16] }),
    }), AT.config);
    const m0 = S.m.ts_min.indexOf(fp.minutes[0]);
    const agree = fp.of_1m ? fp.delta.every((d, j) => fp.of_1m[j] === null || Math.abs(d - fp.of_1m[j]) < 1e-6) : null;
    $("fp-note").textContent = `sell × buy per ${AT.num(fp.width, 1)} bin, ${fp.side === "inferred" ? "side inferred from the quotes" : "exchange taker side"}` +
      (agree === null ? "" : agree ? " · each minute's delta = its OF_1m" : " · delta differs from OF_1m!") + (m0 < 0 ? "" : "");
  }
  const fmtV = (v) => (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2));

  // -- equity ----------------------------------------------------------------------------------------------

  function drawEquity() {
    const m = S.m, x = m.ts_min;
    Plotly.react("equity", [
      { type: "scatter", mode: "lines", x, y: m.equity, name: "equity", line: { color: COLORS.blue, width: 1.5 }, hovertemplate: "equity %{y:,.2f}<extra></extra>" },
      { type: "scatter", mode: "lines", x, y: m.balance, name: "balance", line: { color: COLORS.dim, width: 1, shape: "hv" }, hovertemplate: "balance %{y:,.2f}<extra></extra>" },
      { type: "scatter", mode: "lines", x, y: m.day_pnl, yaxis: "y2", name: "today's P&L", line: { color: COLORS.green, width: 1.2, shape: "hv" }, hovertemplate: "today %{y:,.2f}<extra></extra>" },
      { type: "scatter", mode: "lines", x, y: m.day_floor, yaxis: "y2", name: "kill switch", line: { color: COLORS.red, width: 1, dash: "dash", shape: "hv" }, hovertemplate: "kill switch at %{y:,.2f}<extra></extra>" },
      { type: "scatter", mode: "markers", x: x.filter((_, i) => m.kill[i]), y: m.day_pnl.filter((_, i) => m.kill[i]), yaxis: "y2", name: "kill switch active", marker: { color: COLORS.red, size: 4 }, hovertemplate: "kill switch ACTIVE<extra></extra>" },
    ], AT.layout({ shapes: [cursorShape()], xaxis: AT.axis({ type: "date", anchor: "y2", range: cursorRange() }), yaxis: AT.axis({ domain: [0.42, 1], tickformat: ",.0f" }), yaxis2: AT.axis({ domain: [0, 0.36], tickformat: ",.0f" }) }), AT.config);
  }

  // -- feeds and tables -------------------------------------------------------------------------------------

  function feeds() {
    const ts = S.m.ts_min[S.idx], now = ts + MIN;
    const alerts = (S.alertsLoaded || []).slice().reverse();
    $("alerts").innerHTML = alerts.length ? alerts.map((a) => `<div class="item ${a.ts_ms > now ? "future" : ""}"><span class="when">${AT.time(a.ts_ms)}</span><b>${AT.esc(a.alert)}</b> <span class="dim">${AT.esc(Object.entries(a.detail || {}).map(([k, v]) => `${k} ${typeof v === "number" ? +v.toFixed(4) : v !== null && typeof v === "object" ? JSON.stringify(v) : v}`).join(" · "))}</span></div>`).join("") : '<p class="note">no alerts</p>';
    const sig = S.marks.signals.filter((s) => s.ts_min <= ts).slice(-40).reverse();
    $("signals").innerHTML = sig.length ? sig.map((s) => `<div class="item"><span class="when">${AT.time(s.ts_min)}</span><b>${AT.esc(s.action)}</b> ${AT.esc(s.reason)} <span class="dim">${AT.esc(s.fired.join(", "))}</span></div>`).join("") : '<p class="note">no signal up to this minute</p>';
  }

  function tradesTable() {
    const t = S.marks.trades;
    $("trades").innerHTML = t.length ? `<table><thead><tr><th>#</th><th class="l">side</th><th class="l">open</th><th>entry</th><th>exit</th><th>net</th><th class="l">setup / exit</th></tr></thead><tbody>` +
      t.map((r) => `<tr data-ts="${Math.floor(r.ts_open / 1e6)}" style="cursor:pointer"><td>${r.trade}</td><td class="l ${r.side === "LONG" ? "pos" : "neg"}">${r.side}</td><td class="l">${AT.hm(Math.floor(r.ts_open / 1e6))}</td><td>${AT.num(r.entry_price, 1)}</td><td>${AT.num(r.exit_price, 1)}</td><td class="${AT.cls(r.net_pnl)}">${AT.num(r.net_pnl)}</td><td class="l dim">${AT.esc(r.setup)} / ${AT.esc(r.exit_reason)}</td></tr>`).join("") + "</tbody></table>"
      : '<p class="note">no round trips</p>';
    for (const tr of $("trades").querySelectorAll("tr[data-ts]")) tr.onclick = () => select(indexOf(Number(tr.dataset.ts)) + 5, true);
  }

  // -- live push -------------------------------------------------------------------------------------------

  function connect() {
    const pre = window.AT_PRE || {};
    (pre.alerts ? AT.read(pre.alerts) : AT.get(API("alerts"))).then((a) => { S.alertsLoaded = a; feeds(); }).catch(() => {});
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/run/${AT.enc(KEY)}`);
    // Messages are handled one after the other (a handler awaits the server), never interleaved.
    let queue = Promise.resolve();
    ws.onmessage = (ev) => { const received = Date.now(); queue = queue.then(() => onPush(JSON.parse(ev.data), received)).catch((e) => AT.fail($("status"), e)); };
    window.AT_WS = ws;
  }

  async function onPush(msg, received) {
    if (msg.status) status(msg.status);
    if (msg.type === "status" && msg.alerts && msg.alerts.length) { S.alertsLoaded = (S.alertsLoaded || []).concat(msg.alerts); feeds(); }
    if (msg.type !== "minutes") return;
    const empty = S.m.ts_min.length === 0;
    const atHead = empty || S.idx === S.m.ts_min.length - 1 || $("follow").checked;
    const add = msg.minutes, last = empty ? -Infinity : S.m.ts_min[S.m.ts_min.length - 1];
    const keep = add.ts_min.map((t) => t > last);
    for (const k of Object.keys(S.m)) if (add[k]) S.m[k] = S.m[k].concat(add[k].filter((_, i) => keep[i]));
    S.alertsLoaded = (S.alertsLoaded || []).concat(msg.alerts || []);
    const idx = atHead ? S.m.ts_min.length - 1 : S.idx, ts = S.m.ts_min[idx];
    // Everything the redraw needs is asked for at once; each chart is then drawn once.
    const ask = (what, q) => fetch(API(what, q), { credentials: "same-origin" });
    const n = Number($("fp-minutes").value), start = Math.max(S.m.ts_min[0], ts - (n - 1) * MIN);
    const pre = { ts, state: ask("state", `?ts=${ts}`), profile: S.info.catalog_available ? ask("profile", `?ts=${ts}`) : null,
      footprint: S.info.catalog_available ? ask("footprint", `?start=${start}&end=${ts}&side=${S.fpSide}&rows=${$("fp-rows").value}`) : null };
    S.marks = await AT.get(API("markers"));
    S.info.last_minute = msg.head; S.info.minutes = S.m.ts_min.length;
    $("slider").max = S.m.ts_min.length - 1;
    S.idx = idx;
    header(); drawFlow(); drawEquity(); tradesTable();
    await select(idx, true, pre);
    window.AT_PUSHED = (window.AT_PUSHED || 0) + 1;
    // For the tests: wall-clock ms when the newest minute arrived and when it was drawn.
    window.AT_PUSH = { head: msg.head, received, drawn: Date.now() };
  }

  // -- controls ---------------------------------------------------------------------------------------------

  $("slider").addEventListener("input", (e) => select(Number(e.target.value)));
  $("prev").onclick = () => select(S.idx - 1);
  $("next").onclick = () => select(S.idx + 1);
  document.addEventListener("keydown", (e) => { if (e.target.tagName === "INPUT" && e.target.type !== "range") return; if (e.key === "ArrowLeft") select(S.idx - 1); if (e.key === "ArrowRight") select(S.idx + 1); });
  for (const [id, k] of [["tg-lines", "lines"], ["tg-profile", "profile"], ["tg-marks", "marks"]])
    $(id).onclick = () => { S.show[k] = !S.show[k]; $(id).classList.toggle("on", S.show[k]); drawPrice(); };
  for (const side of ["inferred", "exchange"])
    $(`fp-${side}`).onclick = () => { S.fpSide = side; $("fp-inferred").classList.toggle("on", side === "inferred"); $("fp-exchange").classList.toggle("on", side === "exchange"); loadFootprint(); };
  $("fp-minutes").onchange = () => loadFootprint();
  $("fp-rows").onchange = () => loadFootprint();
  boot();
})();
