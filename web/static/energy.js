// Energy: consumption per building and per tenant (live from the twin's
// retained meter snapshots twin/+/meter/+, historic from the twin's
// history API), the tenants' running invoices to the cent (retained
// energy/+/tenant/+/invoice) and the sites' ESG figures (retained
// energy/+/site/+/esg). Never the meters' point topics.
//
// A tenant's session sees what the node's APIs give it: its own buildings,
// meters and invoices. Its MQTT connection lives in its tenant's namespace,
// where the twin publishes its own meters and the energy service its
// invoices (tenant_topics), but no ESG figures: for a tenant the page polls
// the ESG API, and the invoices' API once a minute in case the service
// publishes no tenants' copies.
import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { $, api, cell, connectMQTT, every, fillRows, firstData, header, json, nf, setText, utc } from "/static/common.js";

const UNITS = { KWH: "kWh", MWH: "MWh", MTQ: "m³", KWT: "kW", WTT: "W" };
const CARRIERS = { electricity: "Electricity", district_heating: "Heat (district heating)", heat: "Heat", water: "Water",
  gas: "Gas", natural_gas: "Gas", cooling: "Cooling", district_cooling: "Cooling (district)", hot_water: "Hot water" };
const PALETTE = ["#0b63b6", "#c2410c", "#1d7a3a", "#7c3aed", "#b3261e", "#0e7490", "#9a5b00", "#be185d", "#4a5868", "#15803d"];
const HOUR = 3600;

const unitOf = (u) => UNITS[u] ?? u ?? "";
const carrierName = (c) => CARRIERS[c] ?? c;
const kwh = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
const kg = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
const pct = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

const s = await header();
const tenant = s.tenant || "";
setText("scope", tenant
  ? `Signed in for tenant ${tenant}: its own buildings, meters and invoices only.`
  : "All buildings, meters, tenants and sites of this node.");
setText("cap-building-how", tenant ? "your meters in it" : "its main meters");
setText("inv-source", "Live over MQTT (retained energy/+/tenant/+/invoice" + (tenant ? ", in your tenant's namespace" : "") +
  "). Amounts as the energy service computes them, to the cent.");

// The campus as the session may see it.
const buildings = new Map(); // id → {id, name}
const meters = new Map(); // id → {id, building, tenant, carrier, parent, billed, top}
const live = new Map(); // meter id → {billed, power, observed}
let simNow = 0; // the newest meter reading's time, Unix seconds

async function loadModel() {
  const [b, m] = await Promise.all([api("/api/v1/twin/assets?kind=building"), api("/api/v1/twin/assets?kind=meter")]);
  for (const a of b.assets ?? []) buildings.set(a.id, { id: a.id, name: a.name ?? "" });
  for (const a of m.assets ?? []) {
    meters.set(a.id, { id: a.id, building: a.relations?.building ?? "", tenant: a.tenant ?? "",
      carrier: a.attributes?.carrier ?? "other", parent: a.relations?.parent ?? "", billed: (a.points ?? [])[0] ?? "" });
  }
  // A meter counts for its building when the session does not see its
  // parent: the main meters for an operator, a tenant's own sub-meters.
  for (const x of meters.values()) x.top = !x.parent || !meters.has(x.parent);
  const p = await api("/api/v1/twin/points?kind=meter");
  for (const pt of p.points ?? []) applyPoint(pt);
  const carriers = [...new Set([...meters.values()].map((x) => x.carrier))].sort();
  const sel = $("carrier");
  for (const c of carriers) sel.add(new Option(carrierName(c), c, c === "electricity", c === "electricity"));
}

function applyPoint(pt) {
  const x = meters.get(pt.asset);
  if (!x || typeof pt.value !== "number") return;
  const l = live.get(x.id) ?? {};
  if (pt.id === x.billed) l.billed = pt.value;
  if (pt.quantity === "activePower") l.power = pt.value;
  if (pt.observed) {
    l.observed = pt.observed;
    simNow = Math.max(simNow, Date.parse(pt.observed) / 1000);
  }
  live.set(x.id, l);
}

// History: the billed register of every meter the session sees, hourly.
const hist = { from: 0, to: 0, t: [], last: new Map(), units: new Map(), fetched: 0 };

async function loadHistory() {
  if (!simNow || meters.size === 0) return;
  const hours = Number($("range").value);
  // Up to the start of the simulated hour: the current hour is incomplete.
  const to = Math.floor(simNow / HOUR) * HOUR;
  const from = to - (hours + 1) * HOUR; // one hour more: the first hour's consumption needs the reading before it
  const ids = [...meters.values()].map((x) => x.billed).filter(Boolean);
  let r;
  try {
    r = await api("/api/v1/twin/history/query", { method: "POST",
      body: { ids, from: new Date(from * 1000).toISOString(), to: new Date(to * 1000).toISOString(), step: "1h", agg: ["last"] } });
  } catch (e) {
    if (e.status !== 501) throw e;
    setText("history-note", "This node keeps no history (twin history off): live figures only.");
    return;
  }
  const t = [];
  for (let h = from; h < to; h += HOUR) t.push(h);
  const last = new Map();
  for (const se of r.series ?? []) {
    const v = new Array(t.length).fill(null);
    for (const b of se.buckets ?? []) {
      const i = Math.round((Date.parse(b.start) / 1000 - from) / HOUR);
      if (i >= 0 && i < t.length && typeof b.last === "number") v[i] = b.last;
    }
    last.set(se.point, v);
    const x = meters.get(se.asset);
    if (x) hist.units.set(x.carrier, unitOf(se.unit));
  }
  // Leave out the hours before the first readings (a demo that started
  // recently): the chart spans the hours that have some.
  let skip = 0;
  while (skip < t.length - 2 && [...last.values()].every((v) => v[skip] === null || v[skip + 1] === null)) skip++;
  if (skip) {
    t.splice(0, skip);
    for (const v of last.values()) v.splice(0, skip);
  }
  Object.assign(hist, { from, to, t, last, fetched: simNow });
  const n = Math.max(0, t.length - 1);
  document.body.dataset.hours = String(n);
  setText("history-note", n < hours
    ? `${n} hours with readings (of the ${hours} chosen), up to ${utc(to * 1000)} UTC (simulated)`
    : `${n} hours up to ${utc(to * 1000)} UTC (simulated)`);
  renderCharts();
  renderBuildings();
}

// hourly returns a meter's consumption per hour of the history (null where
// a reading is missing or the register went back: a reset or an exchange).
function hourly(x) {
  const v = hist.last.get(x.billed);
  const out = new Array(Math.max(0, hist.t.length - 1)).fill(null);
  if (!v) return out;
  for (let i = 1; i < v.length; i++) {
    if (v[i] !== null && v[i - 1] !== null && v[i] >= v[i - 1]) out[i - 1] = v[i] - v[i - 1];
  }
  return out;
}

// sumBy adds up the hourly consumption of the meters of carrier, grouped by
// key(meter) (skipped when it returns "").
function sumBy(carrier, key) {
  const groups = new Map();
  for (const x of meters.values()) {
    const k = x.carrier === carrier ? key(x) : "";
    if (!k) continue;
    const h = hourly(x);
    const g = groups.get(k) ?? new Array(h.length).fill(null);
    h.forEach((v, i) => { if (v !== null) g[i] = (g[i] ?? 0) + v; });
    groups.set(k, g);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}

// latestInLegend shows the newest hour's values in a chart's legend while
// the pointer is not over the chart (uPlot shows the hovered hour's).
function latestInLegend(u) {
  if (u.cursor.left >= 0) return;
  const n = u.data[0].length;
  if (n) u.setLegend({ idx: n - 1 }, false);
}

const charts = {};
function drawChart(id, groups, unit, empty) {
  const el = $(id);
  const labels = groups.map(([k]) => k).join("|") + "|" + unit;
  const data = [hist.t.slice(1), ...groups.map(([, v]) => v)];
  let c = charts[id];
  if (groups.length === 0) {
    c?.chart.destroy();
    delete charts[id];
    el.replaceChildren();
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = empty;
    el.append(p);
    return;
  }
  if (!c || c.labels !== labels) {
    c?.chart.destroy();
    el.replaceChildren();
    const chart = new uPlot({
      width: Math.max(300, el.clientWidth || 500), height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      hooks: { setLegend: [latestInLegend] },
      series: [{ label: "Hour (UTC)" }, ...groups.map(([k], i) => ({
        label: `${k} (${unit}/h)`, stroke: PALETTE[i % PALETTE.length], width: 2,
        value: (u, v) => v === null || v === undefined ? "–" : `${kwh.format(v)} ${unit}`,
      }))],
      axes: [{ label: "simulated time (UTC)" }, { label: `${unit} per hour`, size: 70 }],
      scales: {
        // The period's hours, an hour at least (uPlot's own range for a
        // single point spans years).
        x: { time: true, range: () => [hist.t[1] ?? hist.t[0], Math.max(hist.t[hist.t.length - 1], (hist.t[1] ?? hist.t[0]) + HOUR)] },
        y: { range: (u, min, max) => [0, Math.max(1, (max ?? 0) * 1.1)] },
      },
    }, data, el);
    latestInLegend(chart);
    c = charts[id] = { chart, labels };
  } else {
    c.chart.setData(data);
    latestInLegend(c.chart);
  }
}

// fewest keeps a chart readable: the seven groups of most consumption in
// the period, and the rest summed as one line.
function fewest(groups, what) {
  if (groups.length <= 8) return groups;
  const sum = (v) => v.reduce((a, x) => a + (x ?? 0), 0);
  const sorted = [...groups].sort(([, a], [, b]) => sum(b) - sum(a));
  const rest = sorted.slice(7);
  const other = rest[0][1].map((_, i) => rest.reduce((a, [, v]) => (v[i] === null ? a : (a ?? 0) + v[i]), null));
  return [...sorted.slice(0, 7), [`${rest.length} other ${what}`, other]];
}

function renderCharts() {
  const carrier = $("carrier").value;
  const unit = hist.units.get(carrier) ?? "kWh";
  for (const el of document.querySelectorAll(".unit-label")) el.textContent = unit;
  drawChart("chart-building", fewest(sumBy(carrier, (x) => (x.top ? x.building || "(no building)" : "")), "buildings"), unit,
    `No ${carrierName(carrier).toLowerCase()} meters of a building in view, or no readings in the period yet.`);
  drawChart("chart-tenant", fewest(sumBy(carrier, (x) => x.tenant), "tenants"), unit,
    `No tenant has its own ${carrierName(carrier).toLowerCase()} meter in view.`);
}

window.addEventListener("resize", () => {
  for (const [id, c] of Object.entries(charts)) c.chart.setSize({ width: Math.max(300, $(id).clientWidth), height: 240 });
});
$("carrier").addEventListener("change", renderCharts);
$("range").addEventListener("change", () => loadHistory().catch((e) => console.warn(String(e))));
$("history-form").addEventListener("submit", (e) => e.preventDefault());

// The buildings' table: power now and consumption per carrier since the
// period began, from the live register values less the period's first
// reading; a column per carrier the session has meters of.
function renderBuildings() {
  const ids = [...new Set([...meters.values()].filter((x) => x.top).map((x) => x.building || "(no building)"))].sort();
  const carriers = [...new Set([...meters.values()].filter((x) => x.top).map((x) => x.carrier))]
    .sort((a, b) => (a === "electricity" ? -1 : b === "electricity" ? 1 : a.localeCompare(b)));
  setText("buildings-note", hist.t.length
    ? `Consumption per carrier since ${utc(hist.t[0] * 1000).slice(0, 16)} UTC (simulated), the start of the period chosen above.`
    : "Consumption per carrier over the period chosen above, once its history has come.");
  const head = $("buildings").tHead.rows[0];
  const want = ["Building", "Name", "Electric power now (kW)", ...carriers.map((c) => `${carrierName(c)} (${hist.units.get(c) ?? "…"})`), "Latest reading (simulated, UTC)"];
  if ([...head.cells].map((c) => c.textContent).join("|") !== want.join("|")) {
    head.replaceChildren(...want.map((w, k) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = w;
      if (k >= 2 && k < want.length - 1) th.className = "num";
      return th;
    }));
  }
  let total = null;
  fillRows($("buildings"), ids.map((b) => (r) => {
    const ms = [...meters.values()].filter((x) => x.top && (x.building || "(no building)") === b);
    r.dataset.building = b;
    cell(r, b);
    cell(r, buildings.get(b)?.name ?? "");
    let power = null;
    let newest = "";
    const per = new Map();
    for (const x of ms) {
      const l = live.get(x.id) ?? {};
      if (typeof l.power === "number" && x.carrier === "electricity") power = (power ?? 0) + l.power;
      if (l.observed && l.observed > newest) newest = l.observed;
      const v = hist.last.get(x.billed);
      const first = v?.find((y) => y !== null);
      if (first !== undefined && typeof l.billed === "number" && l.billed >= first) per.set(x.carrier, (per.get(x.carrier) ?? 0) + l.billed - first);
    }
    if (power !== null) total = (total ?? 0) + power;
    cell(r, power === null ? "no power register" : `${nf.format(power)} kW`, "num power");
    for (const c of carriers) {
      const has = ms.some((x) => x.carrier === c);
      const td = cell(r, !has ? "" : per.has(c) ? `${kwh.format(per.get(c))} ${hist.units.get(c) ?? ""}` : "–", "num");
      td.dataset.carrier = c;
    }
    cell(r, utc(newest), "time");
  }), want.length, "No buildings with meters in view.");
  if (total === null) {
    // No power register in view (a tenant's sub-meters): the mean power of
    // the last full hour, from its electricity consumption.
    const last = sumBy("electricity", (x) => (x.top ? "all" : ""))[0]?.[1] ?? [];
    const v = last.length ? last[last.length - 1] : null;
    setText("power-now", v === null ? "–" : nf.format(v));
    setText("power-how", v === null ? "no power register in view" : "mean of the last full hour (no power register in view)");
  } else {
    setText("power-now", nf.format(total));
    setText("power-how", "from the main meters' power registers");
  }
  setText("sim-now", simNow ? utc(simNow * 1000) : "–");
}

// Invoices, keyed site/tenant.
const invoices = new Map();
let invUpdates = 0; // invoices that changed since the page loaded
let mqttInvoices = 0; // invoice messages received over MQTT
function setInvoice(ev) {
  const key = `${ev.site}/${ev.invoice?.tenant}`;
  const old = invoices.get(key);
  if (old && old.period > ev.period) return; // the newest month only
  if (old && (old.updated !== ev.updated || old.invoice?.gross !== ev.invoice?.gross)) invUpdates++;
  invoices.set(key, ev);
}

function money(v, cur) { return v === undefined || v === null || v === "" ? "–" : `${v} ${cur}`; }

function renderInvoices() {
  const rows = [...invoices.entries()].sort(([a], [b]) => a.localeCompare(b));
  setText("inv-count", String(rows.length));
  setText("inv-updates", String(invUpdates));
  document.body.dataset.mqttInvoices = String(mqttInvoices);
  fillRows($("invoices"), rows.map(([key, ev]) => (r) => {
    const inv = ev.invoice ?? {};
    const cur = inv.currency ?? "";
    r.dataset.key = key;
    cell(r, ev.site);
    const t = cell(r, inv.tenant);
    if (inv.name) t.title = inv.name; // the tenant's full name on hover
    cell(r, ev.period);
    cell(r, ev.status + (inv.estimated ? " (estimated)" : ""), `inv-${ev.status}`);
    cell(r, money(inv.net, cur), "num net");
    cell(r, money(inv.vat, cur) + (inv.vat_percent ? ` (${inv.vat_percent} %)` : ""), "num vat");
    cell(r, money(inv.gross, cur), "num gross");
    cell(r, utc(ev.updated), "time");
  }), 8, tenant ? "No invoice for your tenant yet." : "Waiting for the first invoice…");
  renderLines(rows);
}

// renderLines shows each invoice's lines in a disclosure that keeps its
// open state across updates.
function renderLines(rows) {
  const box = $("invoice-lines");
  const keep = new Set(rows.map(([k]) => k));
  for (const d of [...box.children]) if (!keep.has(d.dataset.key)) d.remove();
  for (const [key, ev] of rows) {
    const inv = ev.invoice ?? {};
    let d = [...box.children].find((x) => x.dataset.key === key);
    if (!d) {
      d = document.createElement("details");
      d.dataset.key = key;
      const sm = document.createElement("summary");
      const tbl = document.createElement("table");
      tbl.innerHTML = "<caption></caption><thead><tr><th scope=\"col\">Line</th><th scope=\"col\">Carrier</th>" +
        "<th scope=\"col\" class=\"num\">Quantity</th><th scope=\"col\" class=\"num\">Unit price</th><th scope=\"col\" class=\"num\">Amount</th></tr></thead><tbody></tbody>";
      const notes = document.createElement("ul");
      notes.className = "notes";
      d.append(sm, tbl, notes);
      box.append(d);
    }
    const cur = inv.currency ?? "";
    setText(d.querySelector("summary"), `Invoice lines of ${inv.name || inv.tenant} (${ev.site}, ${ev.period}): ${(inv.lines ?? []).length} lines, total ${money(inv.gross, cur)}`);
    setText(d.querySelector("caption"), `Lines of the ${ev.status} invoice of ${inv.tenant} for ${ev.period}, amounts in ${cur}`);
    fillRows(d.querySelector("table"), (inv.lines ?? []).map((l) => (r) => {
      cell(r, l.description ?? l.kind);
      cell(r, l.carrier ? carrierName(l.carrier) : "");
      cell(r, `${l.quantity} ${l.unit ?? ""}`, "num");
      cell(r, l.unit_price ? `${l.unit_price} ${cur}/${l.unit ?? "unit"}` : "", "num");
      cell(r, money(l.amount, cur), "num");
    }), 5, "No lines.");
    const ul = d.querySelector(".notes");
    ul.replaceChildren(...(inv.notes ?? []).concat(ev.warnings ?? []).map((n) => { const li = document.createElement("li"); li.textContent = n; return li; }));
  }
}

async function pollInvoices() {
  const r = await api("/api/v1/energy/invoices");
  for (const ev of r.invoices ?? []) setInvoice(ev);
  renderInvoices();
  firstData();
}

// ESG, keyed site/period.
const esg = new Map();
function renderESG() {
  const rows = [...esg.values()].sort((a, b) => a.site.localeCompare(b.site) || b.period.localeCompare(a.period));
  fillRows($("esg"), rows.map((e) => (r) => {
    r.dataset.key = `${e.site}/${e.period}`;
    cell(r, e.site);
    cell(r, e.period);
    cell(r, e.status ?? "");
    cell(r, (e.consumption_kwh ?? []).map((c) => `${carrierName(c.carrier)} ${kwh.format(c.kwh)} kWh`).join(" · ") || "–");
    cell(r, `${nf.format(e.total_energy_mwh ?? 0)} MWh`, "num");
    cell(r, `${pct.format((e.renewable_share ?? 0) * 100)} %`, "num");
    cell(r, `${kg.format((e.scope1_t ?? 0) * 1000)} kg CO2e`, "num");
    cell(r, `${kg.format((e.scope2_location_based_t ?? 0) * 1000)} kg CO2e`, "num co2-location");
    cell(r, `${kg.format((e.scope2_market_based_t ?? 0) * 1000)} kg CO2e`, "num");
  }), 9, tenant ? "No ESG figures of your sites yet." : "No ESG figures yet: they come with the first meter readings.");
  const notes = [...new Set(rows.flatMap((e) => (e.notes ?? []).map((n) => `${e.site} ${e.period}: ${n}`)))];
  $("esg-notes").replaceChildren(...notes.map((n) => { const li = document.createElement("li"); li.textContent = n; return li; }));
  // Tiles: the newest month of every site.
  const newest = new Map();
  for (const e of rows) if (!newest.has(e.site) || newest.get(e.site).period < e.period) newest.set(e.site, e);
  if (newest.size) {
    let el = 0;
    let co2 = 0;
    for (const e of newest.values()) {
      el += (e.consumption_kwh ?? []).filter((c) => c.carrier === "electricity").reduce((a, c) => a + c.kwh, 0);
      co2 += (e.scope2_location_based_t ?? 0) * 1000;
    }
    setText("elec-month", kwh.format(el));
    setText("co2-month", kg.format(co2));
    setText("esg-period", [...new Set([...newest.values()].map((e) => e.period))].join(", "));
  }
}

async function pollESG() {
  const r = await api("/api/v1/energy/esg");
  for (const e of r.esg ?? []) esg.set(`${e.site}/${e.period}`, e);
  renderESG();
}

// Start: the model and the figures, then keep them live.
await Promise.all([
  loadModel().then(() => { renderBuildings(); firstData(); }).catch((e) => { console.warn(String(e)); setText("history-note", `Meters unavailable: ${e.message}`); }),
  pollInvoices().catch((e) => console.warn(String(e))),
  pollESG().catch((e) => console.warn(String(e))),
]);
every(10000, loadHistory);
if (tenant) {
  every(60000, pollInvoices);
  every(10000, pollESG);
}

let renderTimer = null;
function soon(fn) {
  if (renderTimer) return;
  renderTimer = setTimeout(() => { renderTimer = null; fn(); }, 250);
}

const filters = ["twin/+/meter/+", "energy/+/tenant/+/invoice"];
if (!tenant) filters.push("energy/+/site/+/esg");
connectMQTT(filters, (topic, payload) => {
  const p = topic.split("/");
  let m;
  try { m = json(payload); } catch (e) { console.warn(`${topic}: ${e.message}`); return; }
  if (!m) return;
  if (p[0] === "twin" && p[2] === "meter") {
    for (const pt of m.points ?? []) applyPoint(pt);
    soon(() => {
      renderBuildings();
      // A new simulated hour: fetch the history again (at most every 2 s).
      if (simNow - hist.fetched >= HOUR && Date.now() - (hist.at ?? 0) > 2000) {
        hist.at = Date.now();
        loadHistory().catch((e) => console.warn(String(e)));
      }
    });
  } else if (p[0] === "energy" && p[4] === "invoice") {
    mqttInvoices++;
    setInvoice(m);
    renderInvoices();
  } else if (p[0] === "energy" && p[4] === "esg") {
    esg.set(`${m.site}/${m.period}`, m);
    renderESG();
  }
});
