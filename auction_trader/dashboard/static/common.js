"use strict";
// Shared helpers of the three pages (no framework). The chart libraries are served by the app itself:
// Lightweight Charts on the trading view (run.js), Plotly on the grid view (grid.js, AT.layout / axis / config).
const AT = {
  key() { return decodeURI(location.pathname.replace(/^\/(run|grid)\//, "")); },
  async get(url) { return AT.read(fetch(url, { credentials: "same-origin" })); },
  async read(response) {  // a fetch (promise) as JSON, or an Error with the server's detail
    const r = await response;
    if (!r.ok) { let d = r.statusText; try { d = (await r.json()).detail || d; } catch (e) {} throw new Error(`${r.status} ${d}`); }
    return r.json();
  },
  async post(url) {
    const r = await fetch(url, { method: "POST", credentials: "same-origin" });
    let body = {}; try { body = await r.json(); } catch (e) {}
    return { status: r.status, body };
  },
  enc(key) { return key.split("/").map(encodeURIComponent).join("/"); },
  time(ms) { if (ms === null || ms === undefined) return "-"; return new Date(ms).toISOString().slice(0, 16).replace("T", " "); },
  hm(ms) { return new Date(ms).toISOString().slice(11, 16); },
  num(v, d = 2) { if (v === null || v === undefined || Number.isNaN(v)) return "-"; return Number(v).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }); },
  pct(v, d = 1) { return v === null || v === undefined ? "-" : (100 * v).toFixed(d) + "%"; },
  cls(v) { return v > 0 ? "pos" : v < 0 ? "neg" : ""; },
  esc(s) { return String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); },
  layout(extra) {
    return Object.assign({
      paper_bgcolor: "#161b22", plot_bgcolor: "#161b22", font: { color: "#c9d1d9", size: 11 },
      margin: { l: 56, r: 16, t: 10, b: 28 }, showlegend: false, hovermode: "closest",
      hoverlabel: { bgcolor: "#1c2330", bordercolor: "#30363d", font: { color: "#c9d1d9" } },
    }, extra || {});
  },
  axis(extra) { return Object.assign({ gridcolor: "#21262d", zerolinecolor: "#30363d", linecolor: "#30363d" }, extra || {}); },
  config: { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"] },
  fail(el, err) { el.innerHTML = `<p class="err">${AT.esc(err.message || err)}</p>`; window.AT_ERRORS = (window.AT_ERRORS || []).concat([String(err)]); },
};
