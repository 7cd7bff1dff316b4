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

  // -- loading ---------------------------------------------------------------------------------

  async function boot() {
    try {
      const pre = window.AT_PRE || {};  // started by run.html before the scripts loaded
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
      // What the eye lands on first (the candles with their VA lines and profile, the footprint,
      // the tiles), then the rest. AT_FIRST_MS: when those are on screen (the charts draw in the
      // next animation frames).
      priceData();
      const first = pre.first ? await pre.first : null;
      await select(idx, true, first && first.ts === m.ts_min[S.idx] ? first : null);
      await frames(2);
      window.AT_FIRST_MS = performance.now();
      drawFlow(); drawEquity(); tradesTable();
      connect();
      await frames(2);
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

  // -- the charts ------------------------------------------------------------------------------------
  // TradingView's Lightweight Charts (lightweight-charts.js, 160 KB, from the lightweight-charts
  // wheel) draws the candles, the VA lines, the markers, the order-flow and equity panels; the
  // profile histogram and the footprint are drawn on canvases of their own (the profile on the
  // price chart's price scale). The whole run is handed to each chart once; the slider moves the
  // visible range, the cursor, the profile and the footprint.

  const LW = window.LightweightCharts;
  const sec = (ms) => ms / 1000;
  const CH = {};  // the charts: price, flow (4 panes), equity (2 panes)
  window.AT_CHARTS = CH;
  const DRAWN = { price: null, profile: null, footprint: null, flow: null, equity: null };  // what was drawn, for the tests
  window.AT_DRAWN = DRAWN;

  function lwChart(el, extra = {}) {
    const opts = {
      autoSize: true,
      layout: { background: { type: "solid", color: "#161b22" }, textColor: "#c9d1d9", fontSize: 11 },
      grid: { vertLines: { color: "#21262d" }, horzLines: { color: "#21262d" } },
      rightPriceScale: { borderColor: "#30363d", minimumWidth: 64 }, leftPriceScale: { borderColor: "#30363d" },
      timeScale: { borderColor: "#30363d", timeVisible: true, secondsVisible: false },
      crosshair: { mode: LW.CrosshairMode.Normal },
    };
    for (const [k, v] of Object.entries(extra)) opts[k] = typeof v === "object" && !Array.isArray(v) ? Object.assign({}, opts[k] || {}, v) : v;
    return LW.createChart(el, opts);
  }
  const lineOpts = (color, extra = {}) => Object.assign({ color, lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false }, extra);
  const points = (key, f = (v) => v) => S.m.ts_min.map((t, i) => (S.m[key][i] === null || S.m[key][i] === undefined ? { time: sec(t) } : { time: sec(t), value: f(S.m[key][i]) }));
  const frames = (n = 2) => new Promise((ok) => { const step = () => (--n <= 0 ? ok() : requestAnimationFrame(step)); requestAnimationFrame(step); });

  // The tooltip shared by the charts (fills' reasons, footprint cells, profile bins).
  function tip(html, x, y) {
    const el = $("tip");
    if (!html) { el.style.display = "none"; return; }
    el.innerHTML = html; el.style.display = "block";
    const w = el.offsetWidth, h = el.offsetHeight;
    el.style.left = `${Math.min(window.innerWidth - w - 8, x + 14)}px`;
    el.style.top = `${y + h + 20 > window.innerHeight ? y - h - 10 : y + 14}px`;
  }

  function fillText(f) {
    return `<b>${AT.esc(f.label)}</b> ${f.side} ${AT.num(f.qty, 3)} @ ${AT.num(f.price, 1)}<br>reason: <b>${AT.esc(f.reason)}</b><br>` +
      `${AT.esc(f.setup || "")} · ${f.order_type} · ${f.liquidity} · fee ${AT.num(f.commission, 4)}<br>bid ${AT.num(f.bid, 1)} / ask ${AT.num(f.ask, 1)} · ${AT.time(f.ts_ms)}`;
  }
  function signalText(s) {
    return `signal <b>${AT.esc(s.action)}</b> · ${AT.esc(s.reason)}<br>fired: ${AT.esc(s.fired.join(", ") || "-")}` +
      `${s.stop ? `<br>stop ${AT.num(s.stop, 1)} · TP1 ${AT.num(s.tp1, 1)} · TP2 ${AT.num(s.tp2, 1)}` : ""}<br>${AT.time(s.ts_min)}`;
  }
  const minuteOf = (ms) => Math.floor(ms / MIN) * MIN;

  // -- the price chart with the profile ----------------------------------------------------------

  function priceChart() {
    if (CH.price) return CH.price;
    const chart = lwChart($("price-chart"), { leftPriceScale: { visible: true }, rightPriceScale: { visible: false } });
    const candles = chart.addCandlestickSeries({
      priceScaleId: "left", priceLineVisible: false, lastValueVisible: false, upColor: COLORS.green, downColor: COLORS.red, wickUpColor: COLORS.green, wickDownColor: COLORS.red, borderVisible: false,
      priceFormat: { type: "price", precision: 1, minMove: 0.1 },
      // The price scale also holds the profile's bins (the histogram beside it shares the scale).
      autoscaleInfoProvider: (orig) => {
        const r = orig(), p = S.show.profile && S.profile;
        if (!r || !p || !p.bins.length) return r;
        return { priceRange: { minValue: Math.min(r.priceRange.minValue, p.bins[0]), maxValue: Math.max(r.priceRange.maxValue, p.bins[p.bins.length - 1] + p.width) }, margins: r.margins };
      },
    });
    const lines = {};
    for (const [k, c, name] of [["vah", COLORS.blue, "VAH"], ["val", COLORS.blue, "VAL"], ["poc", COLORS.poc, "POC"]])
      lines[name] = chart.addLineSeries(lineOpts(c, { priceScaleId: "left", lineType: LW.LineType.WithSteps, lineWidth: k === "poc" ? 2 : 1, lineStyle: k === "poc" ? LW.LineStyle.Dotted : LW.LineStyle.Solid }));
    chart.subscribeCrosshairMove((p) => {
      if (!p.point || p.time === undefined || !p.sourceEvent) { tip(null); return; }
      const t = p.time * 1000, i = indexOf(t), m = S.m;
      const head = `<b>${AT.time(t)}</b> O ${AT.num(m.open[i], 1)} H ${AT.num(m.high[i], 1)} L ${AT.num(m.low[i], 1)} C ${AT.num(m.close[i], 1)}` +
        (S.show.lines ? `<br><span class="dim">VAH ${AT.num(m.vah[i], 1)} · VAL ${AT.num(m.val[i], 1)} · POC ${AT.num(m.poc[i], 1)}</span>` : "");
      const marks = S.show.marks ? [...(S.fillsAt.get(t) || []).map(fillText), ...(S.signalsAt.get(t) || []).map(signalText)] : [];
      tip([head, ...marks].join("<hr>"), p.sourceEvent.clientX, p.sourceEvent.clientY);
    });
    $("price-chart").addEventListener("mouseleave", () => tip(null));
    chart.timeScale().subscribeVisibleLogicalRangeChange(() => overlays());
    new ResizeObserver(() => overlays()).observe($("price"));
    CH.price = { chart, candles, lines };
    return CH.price;
  }

  function priceData() {
    const c = priceChart(), m = S.m;
    c.candles.setData(m.ts_min.map((t, i) => (m.open[i] === null ? { time: sec(t) } : { time: sec(t), open: m.open[i], high: m.high[i], low: m.low[i], close: m.close[i] })));
    c.lines.VAH.setData(points("vah")); c.lines.VAL.setData(points("val")); c.lines.POC.setData(points("poc"));
    S.fillsAt = new Map(); S.signalsAt = new Map();
    for (const f of S.marks.fills) { const k = minuteOf(f.ts_ms); S.fillsAt.set(k, [...(S.fillsAt.get(k) || []), f]); }
    for (const s of S.marks.signals) S.signalsAt.set(s.ts_min, [...(S.signalsAt.get(s.ts_min) || []), s]);
    priceMarks();
    DRAWN.price = { candles: m.ts_min.length, last: m.ts_min[m.ts_min.length - 1], lines: Object.fromEntries(["vah", "val", "poc"].map((k) => [k.toUpperCase(), m[k].filter((v) => v !== null).length])),
      fills: S.marks.fills.map((f) => ({ ts_min: minuteOf(f.ts_ms), price: f.price, reason: f.reason })) };
  }

  function priceMarks() {
    const c = CH.price, out = [], first = S.m.ts_min[0], known = new Set(S.m.ts_min);
    if (S.show.marks) {
      for (const s of S.marks.signals) if (s.action !== "HOLD" && known.has(s.ts_min)) out.push({ time: sec(s.ts_min), position: "aboveBar", color: COLORS.violet, shape: "circle", size: 0.6 });
      // One marker per minute and side (an order filled in parts is several fills): its labels.
      const bySide = new Map();
      for (const f of S.marks.fills) {
        const t = minuteOf(f.ts_ms); if (t < first || !known.has(t)) continue;
        const k = `${t} ${f.side}`, labels = bySide.get(k) || new Map();
        labels.set(f.label, (labels.get(f.label) || 0) + 1); bySide.set(k, labels);
      }
      for (const [k, labels] of bySide) {
        const [t, side] = k.split(" "), buy = side === "BUY";
        out.push({ time: sec(Number(t)), position: buy ? "belowBar" : "aboveBar", color: buy ? COLORS.green : COLORS.red, shape: buy ? "arrowUp" : "arrowDown",
          text: [...labels].map(([l, n]) => (n > 1 ? `${l}×${n}` : l)).join(" ") });
      }
    }
    out.sort((a, b) => a.time - b.time);
    c.candles.setMarkers(out);
    for (const l of Object.values(c.lines)) l.applyOptions({ visible: S.show.lines });
  }

  // The visible range: the 240 minutes of the profile's window up to the selected minute and 30 after.

  function cursor() {
    // By bar index (every chart holds the same minutes): half a bar of room at each end.
    const n = S.m.ts_min.length, range = { from: Math.max(0, S.idx - 239) - 0.5, to: Math.min(n - 1, S.idx + 30) + 0.5 };
    for (const c of [CH.price, ...(CH.flow || []), ...(CH.equity || [])]) if (c) c.chart.timeScale().setVisibleLogicalRange(range);
    if (CH.price) CH.price.chart.priceScale("left").applyOptions({ autoScale: true });
    overlays();
  }

  // Drawn after the charts' own frame: the cursor lines and the profile need their coordinates.
  let overlaysQueued = false;
  function overlays() {
    if (overlaysQueued) return;
    overlaysQueued = true;
    requestAnimationFrame(() => { overlaysQueued = false; placeCursors(); drawProfile(); });
  }

  function placeCursors() {
    if (!S.m || !S.m.ts_min.length) return;
    const t = sec(S.m.ts_min[S.idx]);
    for (const c of [CH.price, ...(CH.flow || []), ...(CH.equity || [])]) {
      if (!c) continue;
      const el = c.cursor || (c.cursor = Object.assign(document.createElement("div"), { className: "cursor" }));
      if (!el.parentNode) (c === CH.price ? $("price-chart") : c.el).appendChild(el);
      const x = c.chart.timeScale().timeToCoordinate(t);
      const left = c === CH.price ? c.chart.priceScale("left").width() : 0;
      el.style.display = x === null ? "none" : "block";
      if (x !== null) el.style.left = `${left + x}px`;
    }
  }

  function drawProfile() {
    const cv = $("profile"), c = CH.price, p = S.profile;
    $("price").classList.toggle("noprofile", !S.show.profile);
    const ctx = sized(cv);
    if (!ctx || !c || !S.show.profile || !p || !p.bins.length) { DRAWN.profile = null; return; }
    const W = cv.clientWidth, H = cv.clientHeight - c.chart.timeScale().height(), y = (v) => c.candles.priceToCoordinate(v);
    if (y(p.bins[0]) === null) return;  // the chart has not laid out its scale yet: the next frame draws it
    ctx.save(); ctx.beginPath(); ctx.rect(0, 0, W, H); ctx.clip();
    const yh = y(p.va_high), yl = y(p.va_low);
    ctx.fillStyle = "rgba(88,166,255,0.10)"; ctx.fillRect(0, yh, W, yl - yh);
    ctx.strokeStyle = "rgba(88,166,255,0.6)"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(0, Math.round(yh) + 0.5); ctx.lineTo(W, Math.round(yh) + 0.5); ctx.moveTo(0, Math.round(yl) + 0.5); ctx.lineTo(W, Math.round(yl) + 0.5); ctx.stroke();
    const vmax = Math.max(...p.volume), w = p.width, inVa = (b) => b >= p.val_bin - 1e-9 && b <= p.vah_bin + 1e-9;
    let bars = 0;
    p.bins.forEach((b, j) => {
      const y0 = y(b + w), y1 = y(b), len = vmax > 0 ? (p.volume[j] / vmax) * (W - 8) : 0;
      if (len <= 0) return;
      ctx.fillStyle = Math.abs(b - p.poc_bin) < 1e-9 ? COLORS.poc : inVa(b) ? "rgba(88,166,255,0.85)" : "rgba(139,148,158,0.45)";
      ctx.fillRect(0, y0 + (y1 - y0) * 0.04, Math.max(1, len), Math.max(1, (y1 - y0) * 0.92));
      bars += 1;
    });
    ctx.restore();
    ctx.fillStyle = COLORS.dim; ctx.font = "10px sans-serif"; ctx.textAlign = "right";
    ctx.fillText(`volume (240m), max ${AT.num(vmax, 2)}`, W - 4, H + 14);
    DRAWN.profile = { ts_min: p.ts_min, bins: p.bins.length, bars, va: [p.va_low, p.va_high], va_px: [yh, yl] };
  }

  // A canvas sized to its box in device pixels, its context scaled to CSS pixels (cleared).
  function sized(cv) {
    const dpr = window.devicePixelRatio || 1, W = cv.clientWidth, H = cv.clientHeight;
    if (!W || !H) return null;
    if (cv.width !== Math.round(W * dpr) || cv.height !== Math.round(H * dpr)) { cv.width = Math.round(W * dpr); cv.height = Math.round(H * dpr); }
    const ctx = cv.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, W, H);
    return ctx;
  }

  function profileNote() {
    const p = S.profile; if (!p || !p.bins.length) return;
    $("profile-note").innerHTML = `Profile ${AT.time(p.window_start)} → ${AT.time(p.ts_min)}: ${p.trades.toLocaleString()} trades, ${AT.num(p.total_volume, 3)} BTC in ${p.bins.length} bins of ${AT.num(p.width, 1)}; ` +
      `value area ${AT.num(p.va_low, 1)} – ${AT.num(p.va_high, 1)} (bins ${AT.num(p.val_bin, 1)} … ${AT.num(p.vah_bin, 1)}, ${AT.pct(p.va_volume / p.total_volume, 1)} of volume), POC bin ${AT.num(p.poc_bin, 1)}.` +
      ` Lines: the run's per-minute POC / VAL / VAH.`;
  }

  // The price chart after a new profile (or a toggle): rescale to hold its bins, then draw it.
  function drawPrice() {
    if (!CH.price) return;
    profileNote();
    CH.price.chart.priceScale("left").applyOptions({ autoScale: true });
    CH.price.candles.applyOptions({});  // asks the scale to ask autoscaleInfoProvider again
    overlays();
  }

  $("profile").addEventListener("mousemove", (e) => {
    const p = S.profile, c = CH.price; if (!p || !c) return;
    const price = c.candles.coordinateToPrice(e.offsetY), j = p.bins.findIndex((b) => price >= b && price < b + p.width);
    tip(j < 0 ? null : `${AT.num(p.bins[j] + p.width / 2, 1)} ±${AT.num(p.width / 2, 2)}: <b>${AT.num(p.volume[j], 3)}</b> BTC${Math.abs(p.bins[j] - p.poc_bin) < 1e-9 ? " (POC)" : ""}`, e.clientX, e.clientY);
  });
  $("profile").addEventListener("mouseleave", () => tip(null));

  // -- stacked panes (order flow, equity): one chart each, their time scales moved together -------------

  function panes(host, labels) {
    const out = labels.map((label, i) => {
      const el = document.createElement("div"); el.className = "pane";
      el.innerHTML = `<span class="lbl">${AT.esc(label)}</span>`;
      host.appendChild(el);
      const chart = lwChart(el, { timeScale: { visible: i === labels.length - 1 }, handleScale: { axisPressedMouseMove: { time: true, price: false } } });
      return { el, chart, series: {} };
    });
    let syncing = false;
    for (const a of out) a.chart.timeScale().subscribeVisibleLogicalRangeChange((r) => {
      if (syncing || !r) return;
      syncing = true; for (const b of out) if (b !== a) b.chart.timeScale().setVisibleLogicalRange(r); syncing = false;
      overlays();
    });
    return out;
  }
  const threshold = (series, price, color, style = LW.LineStyle.Dotted) => series.createPriceLine({ price, color, lineWidth: 1, lineStyle: style, axisLabelVisible: false });

  function drawFlow() {
    const c = S.info.config, th = S.info.thresholds, m = S.m;
    if (!CH.flow) {
      const [of, norm, qimb, amb] = CH.flow = panes($("flow"), ["OF_1m (BTC)", "OF_norm", "qimb close / EMA", "ambiguous fraction"]);
      of.series.of = of.chart.addHistogramSeries({ priceLineVisible: false, lastValueVisible: false, priceFormat: { type: "price", precision: 3, minMove: 0.001 } });
      norm.series.norm = norm.chart.addLineSeries(lineOpts(COLORS.blue, { lineWidth: 1, crosshairMarkerVisible: true, priceFormat: { type: "price", precision: 3, minMove: 0.001 } }));
      for (const v of [c.of_entry_min_norm ?? 0.1, -(c.of_entry_min_norm ?? 0.1)]) threshold(norm.series.norm, v, COLORS.dim);
      qimb.series.close = qimb.chart.addLineSeries(lineOpts(COLORS.violet, { priceFormat: { type: "price", precision: 3, minMove: 0.001 }, autoscaleInfoProvider: () => ({ priceRange: { minValue: -1.05, maxValue: 1.05 } }) }));
      qimb.series.ema = qimb.chart.addLineSeries(lineOpts(COLORS.poc, { lineWidth: 2, priceFormat: { type: "price", precision: 3, minMove: 0.001 } }));
      for (const v of [c.qimb_entry_min ?? 0.1, -(c.qimb_entry_min ?? 0.1)]) threshold(qimb.series.close, v, COLORS.dim);
      amb.series.amb = amb.chart.addAreaSeries({ lineColor: COLORS.amber, lineWidth: 1, topColor: "rgba(210,153,34,0.30)", bottomColor: "rgba(210,153,34,0.05)", priceLineVisible: false, lastValueVisible: false,
        priceFormat: { type: "custom", formatter: (v) => `${(100 * v).toFixed(0)}%`, minMove: 0.001 },
        autoscaleInfoProvider: (orig) => { const r = orig(); return { priceRange: { minValue: 0, maxValue: Math.max(th.ambiguous.red * 1.1, r ? r.priceRange.maxValue : 0) } }; } });
      threshold(amb.series.amb, th.ambiguous.amber, COLORS.amber, LW.LineStyle.Dashed); threshold(amb.series.amb, th.ambiguous.red, COLORS.red, LW.LineStyle.Dashed);
    }
    const [of, norm, qimb, amb] = CH.flow;
    of.series.of.setData(m.ts_min.map((t, i) => (m.of_1m[i] === null ? { time: sec(t) } : { time: sec(t), value: m.of_1m[i], color: m.of_1m[i] >= 0 ? COLORS.green : COLORS.red })));
    norm.series.norm.setData(points("of_norm_1m"));
    qimb.series.close.setData(points("qimb_close")); qimb.series.ema.setData(points("qimb_ema_60s"));
    amb.series.amb.setData(points("ambiguous_trade_frac_1m"));
    DRAWN.flow = { minutes: m.ts_min.length };
    cursor();
  }

  // -- the footprint -------------------------------------------------------------------------------------

  const FP = { L: 64, R: 10, T: 6, B: 20, GAP: 8 };
  function drawFootprint() {
    const fp = S.fp; if (!fp) return;
    $("fp-exchange").disabled = !fp.exchange_side_available;
    $("fp-exchange").title = fp.exchange_side_available ? "the exchange's taker side, from the data" : "this data carries no taker side";
    const cv = $("fp-canvas"), ctx = sized(cv); if (!ctx) return;
    const W = cv.clientWidth, H = cv.clientHeight, nx = fp.minutes.length, ny = fp.bins.length;
    const deltaH = Math.round((H - FP.T - FP.B) * 0.16), gridH = H - FP.T - FP.B - deltaH - FP.GAP;
    const cw = (W - FP.L - FP.R) / Math.max(1, nx), ch = gridH / Math.max(1, ny);
    let zmax = 0;
    for (let r = 0; r < ny; r++) for (let j = 0; j < nx; j++) zmax = Math.max(zmax, Math.abs(fp.buy[r][j] - fp.sell[r][j]));
    const text = cw >= 46 && ch >= 11;
    ctx.font = "9px sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    let cells = 0;
    for (let r = 0; r < ny; r++) for (let j = 0; j < nx; j++) {
      const b = fp.buy[r][j], s = fp.sell[r][j];
      if (b + s + fp.unsigned[r][j] <= 0) continue;
      const x = FP.L + j * cw, y = FP.T + (ny - 1 - r) * ch;
      ctx.fillStyle = deltaColor(zmax ? (b - s) / zmax : 0);
      ctx.fillRect(x + 0.5, y + 0.5, Math.max(1, cw - 1), Math.max(1, ch - 1));
      if (text && b + s > 0) { ctx.fillStyle = "#e6edf3"; ctx.fillText(`${fmtV(s)}×${fmtV(b)}`, x + cw / 2, y + ch / 2); }
      cells += 1;
    }
    // Price labels (bin centres), as many as fit; time labels likewise; the delta bars underneath.
    ctx.fillStyle = COLORS.dim; ctx.font = "10px sans-serif"; ctx.textAlign = "right";
    const every = Math.max(1, Math.ceil(14 / ch));
    for (let r = 0; r < ny; r += every) ctx.fillText(AT.num(fp.bins[r] + fp.width / 2, 1), FP.L - 6, FP.T + (ny - 1 - r) * ch + ch / 2);
    const dTop = FP.T + gridH + FP.GAP, dMax = Math.max(1e-12, ...fp.delta.map(Math.abs)), mid = dTop + deltaH / 2;
    ctx.strokeStyle = "#30363d"; ctx.beginPath(); ctx.moveTo(FP.L, mid + 0.5); ctx.lineTo(W - FP.R, mid + 0.5); ctx.stroke();
    fp.delta.forEach((d, j) => { const h = (d / dMax) * (deltaH / 2); ctx.fillStyle = d >= 0 ? COLORS.green : COLORS.red; ctx.fillRect(FP.L + j * cw + cw * 0.15, d >= 0 ? mid - h : mid, cw * 0.7, Math.abs(h)); });
    ctx.fillStyle = COLORS.dim; ctx.textAlign = "right"; ctx.fillText("delta", FP.L - 6, mid);
    ctx.textAlign = "center";
    const tEvery = Math.max(1, Math.ceil(44 / cw));
    for (let j = 0; j < nx; j += tEvery) ctx.fillText(AT.hm(fp.minutes[j]), FP.L + j * cw + cw / 2, H - FP.B / 2);
    S.fpGeom = { cw, ch, nx, ny, gridH, dTop, deltaH };
    DRAWN.footprint = { cells, side: fp.side, minutes: nx, bins: ny, text };
    const agree = fp.of_1m ? fp.delta.every((d, j) => fp.of_1m[j] === null || Math.abs(d - fp.of_1m[j]) < 1e-6) : null;
    $("fp-note").textContent = `sell × buy per ${AT.num(fp.width, 1)} bin, ${fp.side === "inferred" ? "side inferred from the quotes" : "exchange taker side"}` +
      (agree === null ? "" : agree ? " · each minute's delta = its OF_1m" : " · delta differs from OF_1m!");
  }
  const fmtV = (v) => (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2));
  // Red (sellers) through the panel grey to green (buyers), by delta / the window's largest |delta|.
  function deltaColor(t) {
    const to = t < 0 ? [0xb6, 0x23, 0x24] : [0x1a, 0x7f, 0x37], from = [0x21, 0x26, 0x2d], a = Math.min(1, Math.abs(t));
    return `rgb(${from.map((v, k) => Math.round(v + (to[k] - v) * a)).join(",")})`;
  }
  $("fp-canvas").addEventListener("mousemove", (e) => {
    const fp = S.fp, g = S.fpGeom; if (!fp || !g) return;
    const j = Math.floor((e.offsetX - FP.L) / g.cw);
    if (j < 0 || j >= g.nx) { tip(null); return; }
    if (e.offsetY >= g.dTop) { tip(`${AT.hm(fp.minutes[j])} · delta <b>${AT.num(fp.delta[j], 3)}</b>`, e.clientX, e.clientY); return; }
    const r = g.ny - 1 - Math.floor((e.offsetY - FP.T) / g.ch);
    if (r < 0 || r >= g.ny) { tip(null); return; }
    const b = fp.buy[r][j], s = fp.sell[r][j], u = fp.unsigned[r][j];
    tip(`${AT.hm(fp.minutes[j])} · ${AT.num(fp.bins[r] + fp.width / 2, 1)}<br>sell × buy: <b>${fmtV(s)} × ${fmtV(b)}</b>${u ? ` · unsigned ${fmtV(u)}` : ""}<br>delta ${AT.num(b - s, 3)}`, e.clientX, e.clientY);
  });
  $("fp-canvas").addEventListener("mouseleave", () => tip(null));
  new ResizeObserver(() => drawFootprint()).observe($("footprint"));

  // -- equity ----------------------------------------------------------------------------------------------

  function drawEquity() {
    const m = S.m;
    if (!CH.equity) {
      const [eq, day] = CH.equity = panes($("equity"), ["equity · balance", "today's P&L · kill switch"]);
      const money = { type: "price", precision: 2, minMove: 0.01 };
      eq.series.equity = eq.chart.addLineSeries(lineOpts(COLORS.blue, { lineWidth: 2, crosshairMarkerVisible: true, priceFormat: money }));
      eq.series.balance = eq.chart.addLineSeries(lineOpts(COLORS.dim, { lineType: LW.LineType.WithSteps, priceFormat: money }));
      day.series.pnl = day.chart.addLineSeries(lineOpts(COLORS.green, { lineType: LW.LineType.WithSteps, crosshairMarkerVisible: true, priceFormat: money }));
      day.series.floor = day.chart.addLineSeries(lineOpts(COLORS.red, { lineType: LW.LineType.WithSteps, lineStyle: LW.LineStyle.Dashed, priceFormat: money }));
    }
    const [eq, day] = CH.equity;
    eq.series.equity.setData(points("equity")); eq.series.balance.setData(points("balance"));
    day.series.pnl.setData(points("day_pnl")); day.series.floor.setData(points("day_floor"));
    // Where the kill switch turned on: a marker on today's P&L.
    day.series.pnl.setMarkers(m.ts_min.filter((_, i) => m.kill[i] && !m.kill[i - 1]).map((t) => ({ time: sec(t), position: "belowBar", color: COLORS.red, shape: "square", text: "kill switch" })));
    DRAWN.equity = { minutes: m.ts_min.length };
    cursor();
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
    header(); priceData(); drawFlow(); drawEquity(); tradesTable();
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
    $(id).onclick = () => { S.show[k] = !S.show[k]; $(id).classList.toggle("on", S.show[k]); if (CH.price) priceMarks(); drawPrice(); };
  for (const side of ["inferred", "exchange"])
    $(`fp-${side}`).onclick = () => { S.fpSide = side; $("fp-inferred").classList.toggle("on", side === "inferred"); $("fp-exchange").classList.toggle("on", side === "exchange"); loadFootprint(); };
  $("fp-minutes").onchange = () => loadFootprint();
  $("fp-rows").onchange = () => loadFootprint();
  boot();
})();
