// The Broker & mesh view, for administrators and operators: the broker's
// counters and rates (GET /api/v1/broker/summary and the deltas of
// /metrics), its clients (list, details, disconnect), the mesh's links
// (GET /api/v1/mesh, else /api/mesh), the retained messages (browse by
// filter, delete) and a publish box (POST /api/v1/broker/publish). Every
// change goes through common.js api(), with the session's CSRF token.
import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { $, api, cell, every, fillRows, firstData, hasRole, header, intf, keepFocus, nf, setText, utc } from "/static/common.js";

const POLL_MS = 2000;
const WINDOW_S = 300;

// duration says how long s seconds are, in the largest units.
function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

// plural is n with its noun, singular for one.
const plural = (n, noun) => `${intf.format(n)} ${noun}${n === 1 ? "" : "s"}`;

// bytesText writes a number of bytes with a readable unit (kB = 1000 B).
function bytesText(n, per = "") {
  for (const [u, f] of [["GB", 1e9], ["MB", 1e6], ["kB", 1e3]]) if (n >= f) return `${nf.format(n / f)} ${u}${per}`;
  return `${nf.format(n)} bytes${per}`;
}

// problemText is a failed call's problem details, as people read them.
function problemText(e) {
  const p = e.problem;
  if (!p) return `${e.message}${e.status ? ` (HTTP ${e.status})` : ""}`;
  return [`${p.status ?? e.status} ${p.title ?? ""}`.trim(), p.detail].filter(Boolean).join(": ");
}

// --- Rates: the summary's counters, their deltas, and a chart ---------

const rate = { t: [], in: [], out: [], last: null };
const chart = new uPlot({
  width: Math.max(320, $("rate-chart").clientWidth || 600), height: 200,
  series: [{}, { label: "in (messages/s)", stroke: "#0b63b6", width: 2 }, { label: "out (messages/s)", stroke: "#1d7a3a", width: 2 }],
  axes: [{}, { label: "messages/s", size: 60 }],
  scales: { x: { time: true, range: () => { const now = Date.now() / 1000; return [now - WINDOW_S, now]; } },
    y: { range: (u, min, max) => [0, Math.max(10, max * 1.15)] } },
}, [rate.t, rate.in, rate.out], $("rate-chart"));
window.addEventListener("resize", () => chart.setSize({ width: Math.max(320, $("rate-chart").clientWidth), height: 200 }));

async function pollSummary() {
  const s = await api("/api/v1/broker/summary");
  const now = performance.now();
  setText("clients", intf.format(s.clients));
  setText("sessions", intf.format(s.sessions));
  setText("subscriptions", intf.format(s.subscriptions));
  setText("retained", intf.format(s.retained));
  setText("uptime", duration(s.uptime_seconds));
  setText("in-total", intf.format(s.messages_in));
  setText("out-total", intf.format(s.messages_out));
  if (rate.last) {
    const dt = (now - rate.last.at) / 1000;
    const i = Math.max(0, (s.messages_in - rate.last.in) / dt), o = Math.max(0, (s.messages_out - rate.last.out) / dt);
    setText("in-rate", nf.format(i));
    setText("out-rate", nf.format(o));
    rate.t.push(Date.now() / 1000); rate.in.push(i); rate.out.push(o);
    while (rate.t.length && rate.t[0] < rate.t[rate.t.length - 1] - WINDOW_S) { rate.t.shift(); rate.in.shift(); rate.out.shift(); }
    chart.setData([rate.t, rate.in, rate.out]);
    document.body.dataset.samples = String(rate.t.length);
  } else {
    // Until a second poll, the averages since the start.
    setText("in-rate", nf.format(s.messages_in_per_second));
    setText("out-rate", nf.format(s.messages_out_per_second));
  }
  rate.last = { in: s.messages_in, out: s.messages_out, at: now };
  firstData();
}

// The counters of /metrics shown as rates, with their units.
const COUNTERS = [
  ["citymesh_payload_bytes_received_total", "Payload received", "bytes"],
  ["citymesh_payload_bytes_sent_total", "Payload sent", "bytes"],
  ["citymesh_connections_total", "Connections", "connections"],
  ["citymesh_connections_refused_total", "Connections refused", "connections"],
  ["citymesh_messages_dropped_total", "Messages dropped", "messages"],
  ["citymesh_publish_throttled_total", "Publishes throttled", "messages"],
  ["citymesh_acl_denied_total", "Denied by the ACL", "requests"],
  ["citymesh_protocol_errors_total", "Protocol errors", "errors"],
  ["citymesh_ws_upgrades_refused_total", "WebSocket upgrades refused", "upgrades"],
  ["citymesh_sessions_expired_total", "Sessions expired", "sessions"],
];
let lastMetrics = null;

// sumMetric adds up every series of a metric in Prometheus' text format.
function sumMetric(text, name) {
  let sum = 0, found = false;
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "gm");
  for (const m of text.matchAll(re)) { sum += Number(m[1]); found = true; }
  return found ? sum : null;
}

async function pollMetrics() {
  const r = await fetch("/metrics");
  if (!r.ok) throw new Error(`/metrics: HTTP ${r.status}`);
  const text = await r.text();
  const now = performance.now();
  const values = Object.fromEntries(COUNTERS.map(([n]) => [n, sumMetric(text, n)]));
  const prev = lastMetrics;
  fillRows($("rates"), COUNTERS.filter(([n]) => values[n] !== null).map(([n, label, unit]) => (row) => {
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = label;
    th.title = n;
    row.append(th);
    const per = prev && prev.values[n] !== null ? Math.max(0, (values[n] - prev.values[n]) / ((now - prev.at) / 1000)) : null;
    if (unit === "bytes") {
      cell(row, per === null ? "–" : bytesText(per, "/s"), "num");
      cell(row, bytesText(values[n]), "num");
      return;
    }
    cell(row, per === null ? "–" : `${nf.format(per)} ${unit}/s`, "num");
    cell(row, `${intf.format(values[n])} ${unit}`, "num");
  }), 3, "No counters.");
  lastMetrics = { values, at: now };
}

// --- Clients ---------------------------------------------------------


let clients = [];
function renderClients() { keepFocus($("client-list"), renderClientRows); }
function renderClientRows() {
  const q = $("client-find").value.trim().toLowerCase();
  const shown = clients.filter((c) => !q || [c.id, c.user, c.tenant, c.remote].some((v) => (v ?? "").toLowerCase().includes(q)));
  setText("clients-shown", shown.length === clients.length ? intf.format(clients.length) : `${intf.format(shown.length)} of ${intf.format(clients.length)}`);
  fillRows($("client-list"), shown.map((c) => (r) => {
    r.dataset.id = c.id;
    cell(r, c.id, "id");
    cell(r, c.user || "–");
    cell(r, c.tenant || "–");
    cell(r, c.remote);
    cell(r, c.listener);
    cell(r, c.protocol_version === 5 ? "5.0" : c.protocol_version === 4 ? "3.1.1" : String(c.protocol_version), "num");
    cell(r, utc(c.connected_since), "time");
    cell(r, intf.format(c.subscriptions), "num");
    const td = cell(r, "", "actions");
    const d = document.createElement("button");
    d.type = "button";
    d.className = "details";
    d.textContent = "Details";
    d.setAttribute("aria-label", `Details of client ${c.id}`);
    d.addEventListener("click", () => details(c.id));
    const x = document.createElement("button");
    x.type = "button";
    x.className = "disconnect";
    x.textContent = "Disconnect";
    x.setAttribute("aria-label", `Disconnect client ${c.id}`);
    x.addEventListener("click", () => disconnect(c.id, x));
    td.append(d, " ", x);
  }), 9, q ? "No client matches." : "No client is connected.");
}
$("client-find").addEventListener("input", renderClients);

async function pollClients() {
  const l = await api("/api/v1/broker/clients");
  clients = (l.clients ?? []).sort((a, b) => a.id.localeCompare(b.id));
  renderClients();
}

async function details(id) {
  try {
    const c = await api(`/api/v1/broker/clients/${encodeURIComponent(id)}`);
    setText("cd-id", c.id);
    const dl = $("cd");
    dl.replaceChildren();
    for (const [k, v] of [["User", c.user || "–"], ["Tenant", c.tenant || "–"], ["Address", c.remote], ["Listener", c.listener],
      ["MQTT version", c.protocol_version === 5 ? "5.0" : "3.1.1"], ["Connected since", `${utc(c.connected_since)} UTC`],
      ["Subscriptions", plural(c.subscriptions, "filter")]]) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      dl.append(dt, dd);
    }
    $("client-detail").hidden = false;
    $("h-client-detail").focus();
  } catch (e) {
    setText("client-status", `Client ${id}: ${problemText(e)}`);
  }
}

async function disconnect(id, button) {
  button.disabled = true;
  try {
    await api(`/api/v1/broker/clients/${encodeURIComponent(id)}`, { method: "DELETE" });
    setText("client-status", `Disconnected client ${id}.`);
  } catch (e) {
    setText("client-status", `Disconnecting ${id} failed: ${problemText(e)}`);
  }
  await pollClients().catch((e) => console.warn(String(e)));
  $("client-status").focus();
}

// --- Mesh --------------------------------------------------------------

// meshPath is where the node answers its mesh status: /api/v1/mesh when
// it has it, else /api/mesh; null once neither exists.
let meshPath = "/api/v1/mesh";
async function pollMesh() {
  if (!meshPath) return;
  let r = await fetch(meshPath, { headers: { Accept: "application/json" } });
  if (r.status === 404 && meshPath === "/api/v1/mesh") {
    meshPath = "/api/mesh";
    r = await fetch(meshPath, { headers: { Accept: "application/json" } });
  }
  if (r.status === 404) {
    meshPath = null;
    setText("mesh-note", "This node is not part of a mesh: it has no links.");
    setText("links", "0"); setText("links-up", "0"); setText("mesh-node", "no mesh");
    fillRows($("mesh"), [], 11, "No links.");
    return;
  }
  if (!r.ok) throw new Error(`${meshPath}: HTTP ${r.status}`);
  const m = await r.json();
  const links = m.links ?? [];
  setText("links", intf.format(links.length));
  setText("links-up", intf.format(links.filter((l) => l.up).length));
  setText("mesh-node", m.node ? `node ${m.node}${m.role ? ` (${m.role})` : ""}` : "–");
  setText("mesh-note", `${intf.format((m.nodes ?? []).length)} nodes known; from ${meshPath}.`);
  fillRows($("mesh"), links.map((l) => (r) => {
    r.dataset.peer = l.peer;
    cell(r, l.peer);
    cell(r, l.role ?? "–");
    cell(r, l.up ? `up since ${utc(l.since)}` : "down", l.up ? "status-running" : "status-failed");
    cell(r, l.remote || l.url || "–");
    cell(r, intf.format(l.queued ?? 0), "num");
    cell(r, intf.format(l.inflight ?? 0), "num");
    cell(r, nf.format((l.lag_ns ?? 0) / 1e9), "num");
    cell(r, intf.format(l.forwarded ?? 0), "num");
    cell(r, intf.format(l.received ?? 0), "num");
    const dropped = Object.entries(l.dropped ?? {}).filter(([, n]) => n > 0);
    const td = cell(r, intf.format(dropped.reduce((s, [, n]) => s + n, 0)), "num");
    td.title = dropped.map(([k, n]) => `${k}: ${n}`).join(", ");
    cell(r, l.last_error || "–");
  }), 11, "This node has no links.");
}

// --- Retained messages ---------------------------------------------------

let browsing = 0; // the latest browse: an earlier one's answer is not shown
async function browse() {
  const seq = ++browsing;
  const filter = $("retained-filter").value.trim() || "#";
  const limit = $("retained-limit").value || "100";
  setText("retained-error", "");
  try {
    const l = await api(`/api/v1/broker/retained?filter=${encodeURIComponent(filter)}&limit=${encodeURIComponent(limit)}`);
    if (seq !== browsing) return;
    const list = l.retained ?? [];
    setText("retained-status", `${plural(list.length, "retained message")} match${list.length === 1 ? "es" : ""} ${filter}${list.length >= Number(limit) ? ` (the first ${limit})` : ""}.`);
    fillRows($("retained-list"), list.map((m) => (r) => {
      r.dataset.topic = m.topic;
      cell(r, m.topic, "topic");
      cell(r, intf.format(m.payload_size), "num");
      cell(r, String(m.qos), "num");
      // A line of the preview; all of it in the cell's tooltip.
      const full = m.payload_binary ? `(binary, base64) ${m.payload_preview}` : m.payload_preview;
      const pv = cell(r, full.length > 120 ? `${full.slice(0, 120)}…` : full, "payload");
      pv.title = full;
      const td = cell(r, "", "actions");
      const p = document.createElement("button");
      p.type = "button";
      p.className = "use";
      p.textContent = "Publish to";
      p.setAttribute("aria-label", `Publish to ${m.topic}`);
      p.addEventListener("click", () => { $("pub-topic").value = m.topic; $("pub-retain").checked = true; $("pub-topic").focus(); });
      const x = document.createElement("button");
      x.type = "button";
      x.className = "delete";
      x.textContent = "Delete";
      x.setAttribute("aria-label", `Delete the retained message of ${m.topic}`);
      x.addEventListener("click", () => removeRetained(m.topic, x));
      td.append(p, " ", x);
    }), 5, `No retained message matches ${filter}.`);
  } catch (e) {
    if (seq !== browsing) return;
    setText("retained-status", "");
    setText("retained-error", problemText(e));
  }
}

async function removeRetained(topic, button) {
  button.disabled = true;
  try {
    // Each level of the topic escaped; the route takes the rest of the path.
    await api(`/api/v1/broker/retained/${topic.split("/").map(encodeURIComponent).join("/")}`, { method: "DELETE" });
    await browse();
    setText("retained-status", `Deleted the retained message of ${topic}. ${$("retained-status").textContent}`);
  } catch (e) {
    setText("retained-error", `Deleting ${topic}: ${problemText(e)}`);
    button.disabled = false;
  }
  $("retained-status").focus();
}

$("retained-form").addEventListener("submit", (e) => { e.preventDefault(); browse(); });

// --- Publish -------------------------------------------------------------

$("publish").addEventListener("submit", async (e) => {
  e.preventDefault();
  setText("pub-result", "");
  setText("pub-problem", "");
  const body = { topic: $("pub-topic").value, payload: $("pub-payload").value, qos: Number($("pub-qos").value), retain: $("pub-retain").checked };
  $("pub-send").disabled = true;
  try {
    const r = await api("/api/v1/broker/publish", { method: "POST", body });
    setText("pub-result", `Published to ${body.topic} (QoS ${body.qos}${body.retain ? ", retained" : ""}): queued for ${plural(r.queued, "session")}.`);
    if (body.retain) browse();
  } catch (x) {
    setText("pub-problem", `Not published: ${problemText(x)}`);
  } finally {
    $("pub-send").disabled = false;
  }
});

// --- Start -----------------------------------------------------------------

const s = await header();
if (s.method !== "open" && !hasRole(s, "admin", "operator")) {
  const f = $("forbidden");
  f.hidden = false;
  f.textContent = "The broker's view is for administrators and operators; you are signed in as " + s.user + ".";
  firstData();
} else {
  every(POLL_MS, pollSummary);
  every(POLL_MS, pollMetrics);
  every(5000, pollClients);
  every(5000, pollMesh);
  browse();
}
