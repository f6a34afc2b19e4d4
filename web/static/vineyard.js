// Vineyard: each plot's hourly weather (temperature, dew point, humidity,
// leaf wetness, rain), its disease risk per disease with the rules that
// fired, and its soil maps — from the vineyard service's API and its
// retained topics vineyard/+/plot/+/{risk,weather,soil}. Never the devices'
// point topics.
//
// A tenant's MQTT connection lives in its tenant's namespace, where the
// vineyard service publishes copies of its plots' messages (tenant_topics):
// the same subscriptions bring a tenant its own plots only, as the API
// shows it only those. The API once a minute is the fallback (a service
// without tenant copies, a connection down).
import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { $, api, cell, connectMQTT, every, fillRows, firstData, header, intf, json, setText } from "/static/common.js";

const DISEASES = [
  { id: "downy_mildew", label: "Downy mildew", hint: "Downy mildew needs mature oospores (degree-days from 1 January) and an infection: the 3-10 rule (≥ 10 mm rain in 24 h at ≥ 10 °C with shoots ≥ 10 cm) or wet hours for a secondary infection." },
  { id: "powdery_mildew", label: "Powdery mildew", hint: "Powdery mildew's Gubler-Thomas index rises with days of 6 h or more at 21–30 °C." },
  { id: "botrytis", label: "Botrytis", hint: "Botrytis needs long wet periods at mild temperatures (Broome's model)." },
];
const LEVELS = ["none", "low", "moderate", "high"];
const NUTRIENTS = [
  { id: "p", label: "Phosphorus (P)", unit: "mg P/100 g" },
  { id: "k", label: "Potassium (K)", unit: "mg K/100 g" },
  { id: "ph", label: "pH", unit: "pH" },
];
const one = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
const two = new Intl.NumberFormat("en", { maximumFractionDigits: 2 });

const s = await header();
const tenant = s.tenant || "";
setText("plots-source", (tenant ? `Tenant ${tenant}: its own plots. ` : "") +
  "Live over MQTT (retained vineyard/+/plot/+/risk) and the vineyard API. " +
  "Levels: none, low, moderate, high — the latest day of weather, in the plot's local time.");

const plots = new Map(); // id → PlotSummary
let current = new URLSearchParams(location.search).get("plot") || "";
const wx = new Map(); // hour (Unix s) → weather record of the current plot
let risk = null; // the current plot's risk: {date, level, hours, gaps, diseases}
const soils = new Map(); // plot → its soil summary (retained over MQTT)
let tzOff = 0; // the plot's UTC offset in seconds, from its records' times

const levelOf = (l) => (LEVELS.includes(l) ? l : "none");
function levelCell(r, l) { return cell(r, levelOf(l), `lvl lvl-${levelOf(l)}`); }

function renderPlots() {
  const list = [...plots.values()].sort((a, b) => a.id.localeCompare(b.id));
  const body = $("plots").tBodies[0];
  const same = body.rows.length === list.length && list.every((p, i) => body.rows[i].dataset.plot === p.id);
  if (!same) {
    // New rows (keyboard focus stays where it is when only figures change).
    fillRows($("plots"), list.map((p) => (r) => {
      r.dataset.plot = p.id;
      const td = r.insertCell();
      const b = document.createElement("button");
      b.type = "button";
      b.className = "linkish";
      b.textContent = p.name ? `${p.id} · ${p.name}` : p.id;
      b.addEventListener("click", () => choose(p.id));
      td.append(b);
      for (let i = 0; i < 7; i++) r.insertCell();
    }), 8, tenant ? "Your tenant has no plots." : "No plots on this node.");
  }
  list.forEach((p, i) => {
    const r = body.isConnected ? body.rows[i] : $("plots").tBodies[0].rows[i];
    r.classList.toggle("current", p.id === current);
    r.cells[0].firstChild.setAttribute("aria-pressed", String(p.id === current));
    const vals = [[p.variety ?? "", ""], [p.station ?? "", ""], [`${intf.format(p.hours ?? 0)} h`, "num hours"],
      [p.date ?? "no weather yet", ""]];
    for (const d of DISEASES) {
      const l = p.diseases?.[d.id] ?? (p.date ? "none" : "–");
      vals.push([l, `lvl lvl-${l} d-${d.id}`]);
    }
    vals.forEach(([text, cls], j) => {
      const c = r.cells[j + 1];
      setText(c, text);
      if (c.className !== cls) c.className = cls;
    });
  });
  const sel = $("plot");
  const want = list.map((p) => p.id).join("|");
  if (sel.dataset.ids !== want) {
    sel.replaceChildren(...list.map((p) => new Option(p.name ? `${p.id} · ${p.name}` : p.id, p.id)));
    sel.dataset.ids = want;
  }
  sel.value = current;
}

async function pollPlots() {
  const list = await api("/api/v1/vineyard/plots");
  for (const p of list) plots.set(p.id, { ...plots.get(p.id), ...p });
  if (!current || !plots.has(current)) current = list[0]?.id ?? "";
  if (current && loaded !== current) await loadPlot();
  renderPlots();
  firstData();
}

function choose(id) {
  if (id === current) return;
  current = id;
  const u = new URL(location.href);
  u.searchParams.set("plot", id);
  history.replaceState(null, "", u);
  renderPlots();
  loadPlot().catch((e) => console.warn(String(e)));
}
$("plot").addEventListener("change", (e) => choose(e.target.value));
$("days").addEventListener("change", () => loadPlot().catch((e) => console.warn(String(e))));
$("plot-form").addEventListener("submit", (e) => e.preventDefault());

// since returns the first day to show: days before the plot's latest day.
function since(days) {
  const d = plots.get(current)?.date;
  if (!d) return "";
  const t = new Date(`${d}T00:00:00Z`);
  t.setUTCDate(t.getUTCDate() - (days - 1));
  return t.toISOString().slice(0, 10);
}

// loadPlot fetches the current plot's weather and risk of the span chosen,
// and its soil maps.
let loaded = ""; // the plot whose weather and risk were fetched
async function loadPlot() {
  const id = current;
  loaded = id;
  for (const el of document.querySelectorAll(".plot-name")) el.textContent = id ? `plot ${id}` : "the plot";
  wx.clear();
  risk = null;
  if (!id) { renderAll(); return; }
  const from = since(Number($("days").value));
  const q = from ? `?from=${from}` : "";
  const [w, r] = await Promise.all([api(`/api/v1/vineyard/plots/${encodeURIComponent(id)}/weather${q}`),
    api(`/api/v1/vineyard/plots/${encodeURIComponent(id)}/risk${from ? `?from=${since(7)}` : ""}`)]);
  if (id !== current) return;
  addHours(w.hours ?? []);
  risk = r;
  renderAll();
  loadSoil().catch((e) => console.warn(String(e)));
}

function addHours(hours) {
  for (const h of hours) {
    const t = Date.parse(h.time) / 1000;
    if (Number.isNaN(t)) continue;
    wx.set(t, h);
    const m = /([+-])(\d\d):(\d\d)$/.exec(h.time);
    tzOff = m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 3600 + Number(m[3]) * 60) : 0;
  }
  // Keep the span chosen (the live topic brings 24 hours at a time).
  const keep = Number($("days").value) * 24 + 24;
  const ts = [...wx.keys()].sort((a, b) => a - b);
  for (const t of ts.slice(0, Math.max(0, ts.length - keep))) wx.delete(t);
}

function renderAll() {
  renderWeather();
  renderRisk();
  renderSoil();
}

// Charts.
const tzName = () => {
  const a = Math.abs(tzOff);
  return `UTC${tzOff < 0 ? "−" : "+"}${String(Math.floor(a / 3600)).padStart(2, "0")}:${String(Math.floor(a % 3600 / 60)).padStart(2, "0")}`;
};
// latestInLegend shows the newest hour's values in a chart's legend while
// the pointer is not over the chart (uPlot shows the hovered hour's).
function latestInLegend(u) {
  if (u.cursor.left >= 0) return;
  const n = u.data[0].length;
  if (n) u.setLegend({ idx: n - 1 }, false);
}

const charts = {};
function chart(id, series, yLabel, range, bars) {
  const el = $(id);
  const ts = [...wx.keys()].sort((a, b) => a - b);
  const data = [ts, ...series.map((x) => ts.map((t) => { const v = x.get(wx.get(t)); return typeof v === "number" ? v : null; }))];
  let c = charts[id];
  const key = tzName();
  if (!c || c.key !== key) {
    c?.chart.destroy();
    el.replaceChildren();
    const off = tzOff;
    c = charts[id] = { key, chart: new uPlot({
      width: Math.max(280, el.clientWidth || 400), height: 220,
      tzDate: (t) => uPlot.tzDate(new Date((t + off) * 1000), "Etc/UTC"),
      hooks: { setLegend: [latestInLegend] },
      series: [{ label: `Hour (${key})` }, ...series.map((x) => ({
        label: `${x.label} (${x.unit})`, stroke: x.color, width: bars ? 1 : 2, fill: bars ? x.color : undefined,
        paths: bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined, points: bars ? { show: false } : undefined,
        value: (u, v) => (v === null || v === undefined ? "–" : `${one.format(v)} ${x.unit}`),
      }))],
      axes: [{ label: `local time (${key})` }, { label: yLabel, size: 60 }],
      scales: { y: { range } },
    }, data, el) };
    latestInLegend(c.chart);
  } else {
    c.chart.setData(data);
    latestInLegend(c.chart);
  }
}

function renderWeather() {
  const ts = [...wx.keys()].sort((a, b) => a - b);
  $("weather-empty").hidden = ts.length > 0;
  document.querySelector(".charts3").hidden = ts.length === 0;
  const latest = ts.length ? wx.get(ts[ts.length - 1]) : null;
  setText("plot-latest", latest ? latest.time.replace("T", " ").replace(/:00([+-]\d\d:\d\d|Z)$/, " $1") : "–");
  chart("chart-temp", [
    withGet({ label: "Temperature", unit: "°C", color: "#c2410c", get: (h) => h.temp_c }),
    withGet({ label: "Dew point", unit: "°C", color: "#0e7490", get: (h) => h.dew_point_c }),
  ], "°C", (u, min, max) => [Math.floor(Math.min(min ?? 0, 0)), Math.ceil(Math.max(max ?? 25, 25))]);
  chart("chart-hum", [
    withGet({ label: "Relative humidity", unit: "%", color: "#0b63b6", get: (h) => h.rh_pct }),
    withGet({ label: "Leaf wetness", unit: "%", color: "#1d7a3a", get: (h) => (typeof h.leaf_wet === "number" ? h.leaf_wet * 100 : null) }),
  ], "%", () => [0, 100]);
  chart("chart-rain", [
    withGet({ label: "Rain", unit: "mm", color: "#3b82f6", get: (h) => h.rain_mm }),
  ], "mm per hour", (u, min, max) => [0, Math.max(2, (max ?? 0) * 1.2)], true);
}

// withGet turns a series' getter into the get(record) the charts call.
function withGet(x) { return { ...x, get: (h) => (h ? x.get(h) : null) }; }

// Risk cards, one per disease.
function renderRisk() {
  const box = $("risk");
  box.replaceChildren();
  if (!risk || !risk.diseases?.length) {
    setText("risk-summary", current ? "No risk yet: the models need hours of weather for the plot." : "No plot chosen.");
    return;
  }
  const gaps = (risk.gaps ?? []).length;
  setText("risk-summary", `Latest day ${risk.date ?? "–"}: highest level ${levelOf(risk.level)}, from ${intf.format(risk.hours ?? 0)} hours of weather this season` +
    (gaps ? `, with ${gaps} gaps in it.` : ".") +
    ((risk.hours ?? 0) < 72 ? " Risk builds over days of weather: a plot with a few hours of it shows little yet." : ""));
  for (const d of DISEASES) {
    const r = risk.diseases.find((x) => x.disease === d.id);
    const days = [...(r?.days ?? [])].sort((a, b) => b.date.localeCompare(a.date));
    const lvl = levelOf(r?.level ?? days[0]?.level);
    const art = document.createElement("article");
    art.className = `risk-card lvl-border-${lvl}`;
    art.dataset.disease = d.id;
    const h = document.createElement("h4");
    h.textContent = d.label;
    const big = document.createElement("p");
    big.className = "big";
    const o = document.createElement("output");
    o.className = `lvl lvl-${lvl} level`;
    o.textContent = lvl;
    big.append(o, " ");
    const u = document.createElement("span");
    u.className = "unit";
    u.textContent = `risk on ${r?.date ?? days[0]?.date ?? "–"}`;
    big.append(u);
    const meta = document.createElement("p");
    meta.className = "small";
    const parts = [`season peak: ${levelOf(r?.peak)}`];
    if (r?.alarm_level) parts.push(`alarm looks at: ${levelOf(r.alarm_level)} (${r.alarm_date ?? "–"})`);
    meta.textContent = parts.join(" · ");
    const head = document.createElement("div");
    head.className = "risk-head";
    head.append(h, big, meta);
    art.append(head);
    const tbl = document.createElement("table");
    tbl.innerHTML = "<caption></caption><thead><tr><th scope=\"col\">Day</th><th scope=\"col\">Level</th><th scope=\"col\" class=\"num\">Weather (hours)</th><th scope=\"col\">Reasons</th></tr></thead><tbody></tbody>";
    tbl.querySelector("caption").textContent = `${d.label}: level and reasons per day, newest first`;
    tbl.querySelector("caption").className = "visually-hidden";
    art.append(tbl);
    fillRows(tbl, days.map((day) => (row) => {
      cell(row, day.date);
      levelCell(row, day.level);
      cell(row, `${intf.format(day.hours ?? 0)} h`, "num");
      const td = row.insertCell();
      td.className = "reasons";
      if (!(day.reasons ?? []).length) td.textContent = "no rule fired";
      for (const rs of day.reasons ?? []) {
        const p = document.createElement("p");
        p.textContent = rs.text;
        p.title = `${rs.rule}, ${levelOf(rs.level)}`;
        td.append(p);
      }
    }), 4, "No days of weather yet.");
    if (lvl === "none") {
      const hint = document.createElement("p");
      hint.className = "small hint";
      hint.textContent = d.hint;
      head.append(hint);
    }
    box.append(art);
  }
}

// Soil maps: the service's PNGs, fetched first so that a map not made
// yet says so instead of showing a broken image, and shown as data: URLs
// (the dashboard's CSP allows images from the node and data: only).
const soilImgs = new Map(); // nutrient → data: URL, or why there is none
function dataURL(blob) {
  return new Promise((resolve, reject) => {
    const fr = new FileReader();
    fr.onload = () => resolve(fr.result);
    fr.onerror = () => reject(fr.error);
    fr.readAsDataURL(blob);
  });
}
async function loadSoil() {
  const id = current;
  const got = await Promise.all(NUTRIENTS.map(async (n) => {
    const r = await fetch(`/api/v1/vineyard/plots/${encodeURIComponent(id)}/soil/${n.id}.png`);
    if (!r.ok) return [n.id, r.status === 404 ? "No map yet: no soil sample of the plot for it (the soil probes report hourly)." : `Map unavailable: HTTP ${r.status}`];
    return [n.id, await dataURL(await r.blob())];
  }));
  if (id !== current) return;
  soilImgs.clear();
  for (const [n, v] of got) soilImgs.set(n, v);
  renderSoil();
}

function renderSoil() {
  const box = $("soil");
  for (const n of NUTRIENTS) {
    let fig = box.querySelector(`figure[data-nutrient="${n.id}"]`);
    if (!fig) {
      fig = document.createElement("figure");
      fig.dataset.nutrient = n.id;
      const img = document.createElement("img");
      const empty = document.createElement("p");
      empty.className = "empty";
      const cap = document.createElement("figcaption");
      cap.append(document.createElement("strong"), document.createElement("span"));
      cap.lastChild.className = "small";
      fig.append(img, empty, cap);
      box.append(fig);
    }
    const [img, empty, cap] = fig.children;
    const info = (soils.get(current)?.nutrients ?? []).find((x) => x.nutrient === n.id);
    const u = info?.unit ?? n.unit;
    setText(cap.firstChild, `${n.label}, ${u}`);
    let more = "";
    if (info) {
      const cls = (info.classes ?? []).filter((c) => c.fraction > 0).map((c) => `${c.class} ${Math.round(c.fraction * 100)} %`).join(", ");
      more = `${intf.format(info.samples)} ${info.samples === 1 ? "sample" : "samples"}, ${info.method}; ${two.format(info.min)}–${two.format(info.max)} ${u}` + (cls ? `; area by class: ${cls}` : "");
    }
    setText(cap.lastChild, more);
    const src = soilImgs.get(n.id);
    const ok = !!src && src.startsWith("data:image/png");
    img.hidden = !ok;
    empty.hidden = ok;
    if (ok && img.getAttribute("src") !== src) {
      img.src = src;
      img.alt = `Soil map of ${current}: ${n.label} in ${u}, with its value legend and classes`;
    }
    if (!ok) { img.removeAttribute("src"); setText(empty, src || "Loading…"); }
  }
}

window.addEventListener("resize", () => {
  for (const [id, c] of Object.entries(charts)) c.chart.setSize({ width: Math.max(280, $(id).clientWidth), height: 220 });
});

await pollPlots().catch((e) => { console.warn(String(e)); setText("plots-source", `Plots unavailable: ${e.message}`); });
renderAll();

// Live: the retained topics (a tenant's copies in its namespace); the API
// once a minute besides.
async function refreshCurrent() {
  if (!current) return;
  const last = Math.max(0, ...wx.keys());
  const q = last ? `?from=${new Date((last - 86400) * 1000).toISOString()}` : "";
  const w = await api(`/api/v1/vineyard/plots/${encodeURIComponent(current)}/weather${q}`);
  addHours(w.hours ?? []);
  const from = since(7);
  risk = await api(`/api/v1/vineyard/plots/${encodeURIComponent(current)}/risk${from ? `?from=${from}` : ""}`);
  renderWeather();
  renderRisk();
}
every(15000, pollPlots);
every(60000, refreshCurrent);
{
  let soilTimer = null;
  let viaMQTT = 0;
  connectMQTT(["vineyard/+/plot/+/risk", "vineyard/+/plot/+/weather", "vineyard/+/plot/+/soil"], (topic, payload) => {
    const [, , , plot, what] = topic.split("/");
    let m;
    try { m = json(payload); } catch (e) { console.warn(`${topic}: ${e.message}`); return; }
    if (!m) return;
    document.body.dataset.mqttVineyard = String(++viaMQTT);
    if (what === "risk") {
      const p = plots.get(plot) ?? { id: plot, site: m.site };
      p.date = m.date;
      p.level = m.level;
      p.hours = m.hours;
      p.diseases = Object.fromEntries((m.diseases ?? []).map((d) => [d.disease, d.level]));
      plots.set(plot, p);
      renderPlots();
      if (plot === current) { risk = m; renderRisk(); }
    } else if (what === "weather" && plot === current) {
      addHours(m.hours ?? []);
      renderWeather();
    } else if (what === "soil") {
      soils.set(plot, m);
      if (plot !== current) return;
      clearTimeout(soilTimer);
      soilTimer = setTimeout(() => loadSoil().catch((e) => console.warn(String(e))), 300);
    }
  });
}
