// The Overview: the node's key figures from its HTTP APIs and /metrics,
// kept live by polling and by the retained topics alarm/# and
// energy/+/tenant/+/invoice over MQTT over WebSocket. Never the point topics.
import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { $, api, cell, connectMQTT, every, fillRows, firstData, header, intf, json, nf, setText, utc } from "/static/common.js";

const POLL_MS = 2000;
const WINDOW_S = 300;

// Events per second: deltas of citymesh_messages_received_total.
const rate = { t: [], v: [], last: null };
const chart = new uPlot({
  width: Math.max(320, $("rate-chart").clientWidth || 600), height: 200,
  series: [{}, { label: "events/s", stroke: "#0b63b6", width: 2, fill: "rgba(11,99,182,0.08)" }],
  axes: [{}, { label: "events/s", size: 60 }],
  // The x axis always spans the last five minutes, even with one point.
  scales: { x: { time: true, range: () => { const now = Date.now() / 1000; return [now - WINDOW_S, now]; } },
    y: { range: (u, min, max) => [0, Math.max(10, max * 1.15)] } },
  legend: { show: true },
}, [rate.t, rate.v], $("rate-chart"));
window.addEventListener("resize", () => chart.setSize({ width: Math.max(320, $("rate-chart").clientWidth), height: 200 }));

async function pollMetrics() {
  const r = await fetch("/metrics");
  if (!r.ok) throw new Error(`/metrics: HTTP ${r.status}`);
  const text = await r.text();
  const m = text.match(/^citymesh_messages_received_total(?:\{[^}]*\})? ([0-9.e+]+)$/m);
  if (!m) return;
  const total = Number(m[1]);
  const now = performance.now();
  setText("events-total", intf.format(total));
  if (rate.last) {
    const dt = (now - rate.last.at) / 1000;
    const eps = Math.max(0, (total - rate.last.total) / dt);
    setText("eps", nf.format(eps));
    rate.t.push(Date.now() / 1000);
    rate.v.push(eps);
    while (rate.t.length && rate.t[0] < rate.t[rate.t.length - 1] - WINDOW_S) { rate.t.shift(); rate.v.shift(); }
    chart.setData([rate.t, rate.v]);
    document.body.dataset.samples = String(rate.t.length);
    firstData();
  }
  rate.last = { total, at: now };
}

async function pollTwin() {
  let s;
  try { s = await api("/api/v1/twin/"); } catch { setText("points-live", "n/a"); return; }
  setText("points-live", intf.format(s.points_with_value ?? 0));
  setText("points-silent", intf.format((s.points ?? 0) - (s.points_with_value ?? 0)));
  setText("points-total", intf.format(s.points ?? 0));
  firstData();
}

async function pollServices() {
  const s = await api("/api/v1/services", { accept: [503] });
  const list = s.services ?? [];
  setText("services-total", intf.format(list.length));
  setText("services-running", intf.format(list.filter((x) => x.status === "running").length));
  fillRows($("services"), list.map((x) => (r) => {
    cell(r, x.name);
    const st = cell(r, x.reason ? `${x.status} (${x.reason})` : x.status, `status-${x.status}`);
    st.title = x.lastError ?? "";
    cell(r, intf.format(x.eventsIn ?? 0), "num");
    cell(r, intf.format(x.published ?? 0), "num");
    cell(r, intf.format(x.errors ?? 0), "num");
    cell(r, utc(x.lastEvent), "time");
  }), 6, "No services on this node.");
  firstData();
}

const sevRank = { critical: 0, major: 1, minor: 2, warning: 3, indeterminate: 4 };
async function pollAlarms() {
  const a = await api("/api/v1/alarms?status=active");
  const list = (a.alarms ?? []).sort((x, y) => (sevRank[x.severity] ?? 9) - (sevRank[y.severity] ?? 9));
  setText("alarms-active", intf.format(list.length));
  fillRows($("alarms"), list.slice(0, 50).map((x) => (r) => {
    cell(r, x.severity, `sev-${x.severity}`);
    cell(r, x.alertSource);
    const d = cell(r, x.alarmType);
    if (x.description) d.title = x.description;
    cell(r, utc(x.dateIssued), "time");
  }), 4, "No active alarms.");
}

async function pollMesh() {
  const r = await fetch("/api/mesh");
  if (r.status === 404) { setText("mesh", "This node is not part of a mesh."); setText("mesh-links", "0"); return; }
  if (!r.ok) throw new Error(`/api/mesh: HTTP ${r.status}`);
  const m = await r.json();
  const links = m.links ?? m.peers ?? [];
  const up = links.filter((l) => l.connected || l.state === "up" || l.status === "up").length;
  setText("mesh-links", intf.format(up));
  setText("mesh", `${intf.format(up)} of ${intf.format(links.length)} links up` + (m.node ? ` at node ${m.node}` : "") + ".");
}

const me = await header();
every(POLL_MS, pollMetrics);
every(5000, pollTwin);
every(5000, pollServices);
every(5000, pollAlarms);
every(10000, pollMesh);

// Live over MQTT: the retained alarm and invoice topics.
const invoices = new Map();
function renderInvoices() {
  const rows = [...invoices.entries()].sort(([a], [b]) => a.localeCompare(b));
  fillRows($("invoices"), rows.map(([, v]) => (r) => {
    cell(r, v.site);
    cell(r, v.name || v.tenant);
    cell(r, v.gross === null ? "–" : `${v.gross} ${v.currency}${v.estimated ? " (estimated)" : ""}`, "num");
    cell(r, utc(v.updated), "time");
  }), 4, "Waiting for the first invoice…");
}
// putInvoice shows one running invoice message ({site, period, status,
// updated, invoice: {tenant, name, currency, gross, …}}, from MQTT or the
// energy API); amounts are decimal strings, to the cent, shown as they are.
function putInvoice(site, tenant, m) {
  const inv = m.invoice ?? {};
  invoices.set(`${site}/${tenant}`, { site, tenant, name: inv.name, gross: inv.gross ?? null,
    currency: inv.currency ?? "", estimated: !!inv.estimated, updated: m.updated });
}
// A tenant's user reads its own invoice from the energy API too: its MQTT
// connection is in its tenant's namespace.
if (me.tenant) {
  every(10000, async () => {
    const r = await api("/api/v1/energy/invoices");
    for (const m of r.invoices ?? []) putInvoice(m.site, m.invoice?.tenant ?? me.tenant, m);
    renderInvoices();
  });
}
let alarmTimer = null;
connectMQTT(["alarm/#", "energy/+/tenant/+/invoice"], (topic, payload) => {
  const p = topic.split("/");
  if (p[0] === "alarm") {
    const el = $("alarm-updates");
    el.textContent = intf.format(Number(el.textContent.replace(/,/g, "")) + 1);
    clearTimeout(alarmTimer);
    alarmTimer = setTimeout(() => pollAlarms().catch((e) => console.warn(String(e))), 300);
    return;
  }
  if (p[0] === "energy" && p[2] === "tenant" && p[4] === "invoice") {
    const key = `${p[1]}/${p[3]}`;
    if (payload.length === 0) { invoices.delete(key); renderInvoices(); return; }
    try {
      // {site, period, status, updated, invoice: {tenant, name, currency, gross, …}};
      // amounts are decimal strings, to the cent, shown as they are.
      putInvoice(p[1], p[3], json(payload));
      renderInvoices();
    } catch (e) {
      console.warn(`invoice on ${topic}: ${e.message}`);
    }
  }
});
