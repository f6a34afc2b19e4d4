// What every page of the dashboard shares: who is logged in (the session),
// the navigation, fetching the node's APIs with the session's CSRF token,
// MQTT over WebSocket to the node, and small helpers to put figures on the
// page. Each view is one page (static/{view}.html) with one module.
import mqtt from "/static/vendor/mqtt/mqtt.esm.js";

// VIEWS are the dashboard's pages, in the order of the navigation.
export const VIEWS = [
  { path: "/", label: "Overview" },
  { path: "/map", label: "Campus map" },
  { path: "/energy", label: "Energy" },
  { path: "/vineyard", label: "Vineyard" },
  { path: "/robot", label: "Robot" },
  { path: "/alarms", label: "Alarms" },
  { path: "/broker", label: "Broker & mesh", roles: ["admin", "operator"] },
];

export const $ = (id) => document.getElementById(id);
export const nf = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });
export const intf = new Intl.NumberFormat("en");

// setText sets an element's text if it changed (no layout work otherwise).
export function setText(id, v) {
  const el = typeof id === "string" ? $(id) : id;
  if (el && el.textContent !== v) el.textContent = v;
}

// utc formats a time as "YYYY-MM-DD hh:mm:ss" in UTC; "–" for none.
export function utc(t) {
  if (!t) return "–";
  const d = new Date(t);
  return isNaN(d) ? "–" : d.toISOString().slice(0, 19).replace("T", " ");
}

// cell appends a cell with text (and class) to a table row.
export function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

// fillRows replaces a table's body by rows, each a function that fills a
// fresh row; with no rows, one row of cols cells says empty.
export function fillRows(table, rows, cols, empty) {
  const body = table.tBodies[0];
  const fresh = document.createElement("tbody");
  if (rows.length === 0) {
    const td = cell(fresh.insertRow(), empty);
    td.colSpan = cols;
  }
  for (const fill of rows) fill(fresh.insertRow());
  body.replaceWith(fresh);
}

// keepFocus runs fill, which replaces table's rows, and puts the keyboard
// back on the button it was on (same row id, same class), if still there:
// a refresh must not throw a keyboard user out of the table.
export function keepFocus(table, fill) {
  const f = document.activeElement;
  const row = f && table.contains(f) ? f.closest("tr")?.dataset.id : undefined;
  const cls = f?.className;
  fill();
  if (row === undefined) return;
  const b = table.querySelector(`tr[data-id="${CSS.escape(row)}"] button.${CSS.escape(cls)}`);
  if (b && !b.disabled) b.focus();
}

// showProgress moves a robot's marker to its progress event p, keeps the
// last keep fixes of its trail, counts the fix (body[data-robot-fixes]) and
// writes the figures every robot panel has (robot-id, robot-route,
// robot-pos, robot-progress, robot-along, robot-dev, robot-time). r is the
// view's record of the robot's route: {info, marker, trail, fixes}. It
// reports false, doing nothing, for an event without a position.
export function showProgress(r, p, keep) {
  if (typeof p.lat !== "number") return false;
  const ll = [p.lat, p.lon];
  r.marker.setLatLng(ll);
  r.trail.addLatLng(ll);
  const pts = r.trail.getLatLngs();
  if (pts.length > keep) r.trail.setLatLngs(pts.slice(pts.length - keep));
  r.fixes++;
  document.body.dataset.robotFixes = String(r.fixes);
  setText("robot-id", p.robot);
  setText("robot-route", r.info.route.name || p.route);
  setText("robot-pos", `${p.lat.toFixed(6)}° N, ${p.lon.toFixed(6)}° E`);
  setText("robot-progress", nf.format((p.progress ?? 0) * 100));
  setText("robot-along", nf.format(p.along_m ?? 0));
  setText("robot-dev", nf.format(Math.abs(p.deviation_m ?? 0)));
  setText("robot-time", utc(p.time));
  return true;
}

// addTiles draws the tile server of the node's dashboard settings
// (/static/site.json: map_tiles, map_attribution) under a Leaflet map's
// shapes; without one the map keeps to the campus's own shapes. It
// reports whether tiles were added.
export async function addTiles(L, map) {
  let site = {};
  try {
    const r = await fetch("/static/site.json", { credentials: "same-origin" });
    if (r.ok) site = await r.json();
  } catch (e) {
    console.warn(`dashboard settings: ${e}`);
  }
  if (!site.map_tiles) return false;
  const layer = L.tileLayer(site.map_tiles, { maxZoom: map.getMaxZoom(), maxNativeZoom: 19, attribution: esc(site.map_attribution ?? "") });
  if (!map.attributionControl && site.map_attribution) L.control.attribution({ prefix: false }).addTo(map);
  layer.addTo(map);
  return true;
}

// esc makes text safe to put in HTML (Leaflet's attributions are HTML).
export const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// firstData marks, once, the moment the view's first figure of the node is
// on the page (performance mark citymesh:first-data, body[data-ready]).
let firstDone = false;
export function firstData() {
  if (firstDone) return;
  firstDone = true;
  performance.mark("citymesh:first-data");
  document.body.dataset.ready = "true";
}

// ProblemError is an API's answer that is not a success: its RFC 9457
// problem details (or what the body said).
export class ProblemError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || problem?.error || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

let current = null; // the session, once known

// toLogin sends the browser to the sign-in page, to come back here.
export function toLogin() {
  const next = location.pathname + location.search;
  location.replace(`/login?next=${encodeURIComponent(next)}`);
}

// session returns who is logged in: {user, tenant, roles, method,
// csrf_token}. Without a session it goes to the sign-in page (and never
// resolves). On a node without users, method is "open".
export async function session() {
  if (current) return current;
  const r = await fetch("/api/v1/session", { headers: { Accept: "application/json" } });
  if (r.status === 401) { toLogin(); return new Promise(() => {}); }
  if (!r.ok) throw new ProblemError(r.status, await r.json().catch(() => null));
  current = await r.json();
  return current;
}

// hasRole reports whether the session has one of roles.
export function hasRole(s, ...roles) { return (s.roles ?? []).some((x) => roles.includes(x)); }

// api fetches path from the node and returns its JSON (null for 204). A
// request that changes state carries the session's CSRF token. 401 goes to
// the sign-in page; other failures throw a ProblemError. Options: method,
// body (sent as JSON), accept (statuses also taken as success, e.g. 503 of
// /api/v1/services while a service is degraded).
export async function api(path, { method = "GET", body, accept = [] } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    const s = await session();
    if (s.csrf_token) headers["X-CSRF-Token"] = s.csrf_token;
  }
  let payload;
  if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const r = await fetch(path, { method, headers, body: payload });
  if (r.status === 401) { toLogin(); return new Promise(() => {}); }
  if (r.status === 204) return null;
  const data = await r.json().catch(() => null);
  if (!r.ok && !accept.includes(r.status)) throw new ProblemError(r.status, data);
  return data;
}

// wsURL is where the page opens MQTT over WebSocket: the node's own HTTP
// listener at /mqtt (the session cookie logs it in), or where ?ws= says.
export function wsURL() {
  const q = new URLSearchParams(location.search).get("ws");
  if (q) return q;
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/mqtt`;
}

// connectMQTT opens MQTT 5 over WebSocket to the node, subscribes to
// filters (retained and aggregated topics only: never the 35,666 point
// topics) on every (re)connection, and calls onMessage(topic, payload,
// packet). The connection's state is shown in #mqtt-state.
export function connectMQTT(filters, onMessage) {
  const client = mqtt.connect(wsURL(), {
    protocolVersion: 5,
    clientId: `dashboard-${Math.random().toString(16).slice(2, 10)}`,
    clean: true,
    reconnectPeriod: 3000,
    // Native timers for the keepalive: MQTT.js's default ("auto") starts a
    // Web Worker from a blob: URL, which the CSP (worker-src falls back to
    // script-src 'self') refuses, with a violation in the console.
    timerVariant: "native",
  });
  client.on("connect", () => {
    setText("mqtt-state", "connected");
    if (filters.length) client.subscribe(filters, { qos: 0 });
  });
  client.on("reconnect", () => setText("mqtt-state", "reconnecting…"));
  client.on("close", () => setText("mqtt-state", "disconnected"));
  client.on("error", (e) => console.warn(`mqtt: ${e.message}`));
  client.on("message", (topic, payload, packet) => onMessage(topic, payload, packet));
  return client;
}

// json decodes an MQTT payload as JSON; null for an empty (cleared
// retained) payload.
export function json(payload) {
  if (!payload || payload.length === 0) return null;
  return JSON.parse(new TextDecoder().decode(payload));
}

// every runs fn every ms; an error is shown once in the console as a
// warning and retried, so a node restarting does not flood it.
export function every(ms, fn) {
  let warned = false;
  const run = async () => {
    try { await fn(); warned = false; } catch (e) { if (!warned) console.warn(String(e)); warned = true; }
    setText("updated", utc(new Date()) + " UTC");
    setTimeout(run, ms);
  };
  run();
}

// logout ends the session and goes to the sign-in page.
async function logout() {
  try { await api("/api/v1/session", { method: "DELETE" }); } catch (e) { console.warn(String(e)); }
  current = null;
  location.assign("/login");
}

// header fills the page's <nav> with the views the session may see, marks
// the current one, and shows who is logged in with a logout button. It
// returns the session.
export async function header() {
  const s = await session();
  const ul = document.querySelector("header.top nav ul");
  if (ul) {
    ul.replaceChildren();
    for (const v of VIEWS) {
      if (v.roles && s.method !== "open" && !hasRole(s, ...v.roles)) continue;
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = v.path;
      a.textContent = v.label;
      if (v.path === location.pathname) a.setAttribute("aria-current", "page");
      li.append(a);
      ul.append(li);
    }
  }
  const who = $("who");
  if (who) {
    who.replaceChildren();
    if (s.method !== "open") {
      const name = document.createElement("span");
      name.id = "user";
      name.textContent = s.tenant ? `${s.user} (${s.tenant})` : s.user;
      const b = document.createElement("button");
      b.type = "button";
      b.id = "logout";
      b.textContent = "Log out";
      b.addEventListener("click", logout);
      who.append(name, " ", b);
    }
  }
  return s;
}
