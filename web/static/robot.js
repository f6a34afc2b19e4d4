// The Robot view: the patrol robot's live track on a small map of its route
// (the route from the robot API, positions live over MQTT on the retained
// progress topic robot/+/robot/+/progress), the waypoints of the patrol,
// and the incidents the robot found with their pictures, their audit trail
// (who did what, when) and the actions people take: acknowledge, start,
// resolve, close (POST through common.js api(), with the CSRF token).
import { $, addTiles, api, cell, connectMQTT, every, fillRows, firstData, header, intf, json, nf, setText, showProgress, utc } from "/static/common.js";

const L = window.L;
// TODO are the states that still need someone: open, or resolved and
// waiting to be closed.
const TODO = ["new", "acknowledged", "in_progress", "resolved"];
// ACTIONS are the buttons of an incident, with the states each is allowed
// from (the robot package's transition table).
const ACTIONS = [
  { action: "acknowledge", label: "Acknowledge", from: ["new"] },
  { action: "start", label: "Start", from: ["new", "acknowledged", "resolved"] },
  { action: "resolve", label: "Resolve", from: ["new", "acknowledged", "in_progress"] },
  { action: "close", label: "Close", from: ["resolved"] },
];
const SEV_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
const human = (s) => String(s ?? "").replace(/_/g, " ");
// label is text for a Leaflet tooltip, as a node (a string would be HTML).
const label = (text) => { const s = document.createElement("span"); s.textContent = text; return s; };

// ---- The live track ----
const track = L.map("track", { zoomSnap: 0.25, keyboard: true, attributionControl: false, minZoom: 12, maxZoom: 22 });
addTiles(L, track);
track.setView([49.15, 9.21], 17);
L.control.scale({ metric: true, imperial: false }).addTo(track);
// TRAIL is how many of the robot's last fixes its trail shows.
const TRAIL = 200;
const routes = new Map(); // robot → {info, marker, trail, waypoints, fixes}
let fitted = false;

async function loadRoutes() {
  let r;
  try { r = await api("/api/v1/robot/routes"); } catch (e) { if (e.status === 404 || e.status === 503) return; throw e; }
  for (const info of r.routes ?? []) {
    if (routes.has(info.robot)) continue;
    const wps = info.route?.waypoints ?? [];
    const line = wps.map((w) => [w.lat, w.lon]);
    const path = L.polyline(line, { color: "#14324f", weight: 2, dashArray: "6 4" }).addTo(track);
    const waypoints = new Map();
    for (const w of wps) {
      waypoints.set(w.id, w);
      // Waypoints' ids as labels on a short route; on hover on a long one.
      L.circleMarker([w.lat, w.lon], { radius: 5, color: "#14324f", weight: 1, fillColor: "#fff", fillOpacity: 1 })
        .bindTooltip(label(w.id), { permanent: wps.length <= 8, direction: "top", offset: [0, -4], className: "wp-label" }).addTo(track);
    }
    const trail = L.polyline([], { color: "#0b63b6", weight: 3, opacity: 0.6 }).addTo(track);
    const marker = L.circleMarker(line[0] ?? [0, 0], { radius: 8, color: "#fff", weight: 2, fillColor: "#0b63b6", fillOpacity: 1, className: "robot-marker" }).addTo(track);
    routes.set(info.robot, { info, marker, trail, waypoints, fixes: 0 });
    setText("robot-corridor", nf.format(info.corridor_m));
    setText("robot-length", nf.format(info.length_m));
    if (!fitted && line.length) { track.fitBounds(path.getBounds(), { padding: [30, 30], maxZoom: 19 }); fitted = true; }
  }
}

function onProgress(p) {
  const r = routes.get(p.robot);
  if (!r || !showProgress(r, p, TRAIL)) return;
  setText("robot-fixes", intf.format(r.fixes));
  setText("robot-patrol", utc(p.patrol_started));
  const key = (p.waypoints ?? []).map((w) => w.id + w.state).join();
  if (key !== r.wpKey) {
    r.wpKey = key;
    fillRows($("waypoints"), (p.waypoints ?? []).map((w) => (row) => {
      const def = r.waypoints.get(w.id);
      const c = cell(row, w.id, "wp");
      if (def?.name) {
        const n = document.createElement("span");
        n.className = "wp-name";
        n.textContent = def.name;
        c.append(" ", n);
      }
      cell(row, human(w.state), `wp-${w.state}`);
      cell(row, w.reached_at ? utc(w.reached_at).slice(11) : "–", "time");
      cell(row, w.closest_m >= 0 ? nf.format(w.closest_m) : "–", "num");
    }), 4, "No waypoints.");
  }
}

// pollRobots shows the robot's battery and status from the twin (the
// robot's own status events: online, docked, …); a tenant that may not see
// the robot's asset sees "–".
async function pollRobots() {
  for (const id of routes.keys()) {
    let a, b;
    try {
      [a, b] = await Promise.all([api(`/api/v1/twin/assets/${encodeURIComponent(id)}`),
        api(`/api/v1/twin/points?asset=${encodeURIComponent(id)}&quantity=batteryLevel`)]);
    } catch (e) {
      if (e.status === 404 || e.status === 403) continue;
      throw e;
    }
    const v = b.points?.[0]?.value;
    setText("robot-battery", v == null ? "–" : nf.format(v));
    const l = a.liveness ?? {};
    setText("robot-status", [l.status, l.reason].filter(Boolean).join(", ") || "–");
    return; // one robot's figures: the first route's
  }
}

// ---- Incidents ----
let me = null; // the session
const incidents = new Map(); // id → incident
const cards = new Map(); // id → {el, note, fill}
let filter = "todo";

function wanted(inc) {
  if (filter === "all") return true;
  if (filter === "todo") return TODO.includes(inc.state);
  return inc.state === filter;
}

// card builds an incident's card once; fill refreshes it in place, so a
// note being typed survives a live update.
function card(id) {
  const el = document.createElement("article");
  el.className = "incident";
  el.id = `incident-${id}`;
  el.tabIndex = -1;
  el.setAttribute("aria-labelledby", `${el.id}-h`);
  const h = document.createElement("h4");
  h.id = `${el.id}-h`;
  const badge = document.createElement("span");
  badge.className = "state";
  const reason = document.createElement("p");
  reason.className = "reason";
  const facts = document.createElement("dl");
  facts.className = "facts";
  const pics = document.createElement("div");
  pics.className = "pictures";
  const actions = document.createElement("div");
  actions.className = "actions";
  actions.setAttribute("role", "group");
  actions.setAttribute("aria-label", `Actions on incident ${id}`);
  const noteLabel = document.createElement("label");
  noteLabel.htmlFor = `${el.id}-note`;
  noteLabel.textContent = "Note";
  const note = document.createElement("input");
  note.id = `${el.id}-note`;
  note.maxLength = 500;
  note.placeholder = "optional, goes into the audit trail";
  actions.append(noteLabel, note);
  const buttons = {};
  for (const a of ACTIONS) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = a.label;
    b.dataset.action = a.action;
    b.className = `act act-${a.action}`;
    b.addEventListener("click", () => act(id, a.action, b));
    buttons[a.action] = b;
    actions.append(b);
  }
  const audit = document.createElement("table");
  audit.className = "audit";
  audit.createCaption().textContent = "Audit trail";
  audit.createTHead().innerHTML = "<tr><th scope=\"col\">When (UTC)</th><th scope=\"col\">Who</th><th scope=\"col\">Action</th><th scope=\"col\">State</th><th scope=\"col\">Note</th></tr>";
  audit.createTBody();
  el.append(h, badge, reason, facts, pics, actions, audit);

  const fill = (inc) => {
    el.dataset.state = inc.state;
    el.dataset.severity = inc.severity;
    const kind = human(inc.kind);
    h.textContent = `${kind.charAt(0).toUpperCase()}${kind.slice(1)} · ${inc.asset}`;
    badge.textContent = `${inc.severity} · ${human(inc.state)}`;
    badge.className = `state sev-${inc.severity} st-${inc.state}`;
    reason.textContent = inc.reason;
    facts.replaceChildren();
    const fact = (k, v) => { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v; facts.append(dt, dd); };
    fact("Incident", inc.id);
    fact("Observed / expected", `${inc.observed || "–"} / ${inc.expected || "–"}`);
    fact("Where", `${inc.site}, waypoint ${inc.waypoint || "–"}${inc.check ? `, check ${inc.check}` : ""}, robot ${inc.robot}`);
    fact("Seen", `${intf.format(inc.count)} ${inc.count === 1 ? "time" : "times"}, ${utc(inc.opened_at)} to ${utc(inc.last_seen_at)} (UTC)`);
    if (inc.tenant) fact("Tenant", inc.tenant);
    const have = new Set([...pics.querySelectorAll("img")].map((i) => i.dataset.hash));
    for (const p of inc.pictures ?? []) {
      if (have.has(p.hash)) continue;
      const fig = document.createElement("figure");
      const a = document.createElement("a");
      a.href = p.url;
      a.target = "_blank";
      a.rel = "noopener";
      const img = document.createElement("img");
      img.src = p.url;
      img.dataset.hash = p.hash;
      img.alt = `Picture the robot took of ${inc.asset}${p.check ? ` at check ${p.check}` : ""}, ${utc(p.time)} UTC`;
      img.loading = "lazy";
      img.width = 240;
      a.append(img);
      const cap = document.createElement("figcaption");
      cap.textContent = `${p.check || "picture"} · ${utc(p.time)} UTC`;
      fig.append(a, cap);
      pics.append(fig);
    }
    if (!(inc.pictures ?? []).length && !pics.firstChild) {
      const none = document.createElement("p");
      none.className = "small";
      none.textContent = "No pictures.";
      pics.append(none);
    } else if ((inc.pictures ?? []).length) pics.querySelector("p.small")?.remove();
    for (const a of ACTIONS) {
      const ok = a.from.includes(inc.state);
      buttons[a.action].disabled = !ok;
      buttons[a.action].title = ok ? `${a.label} incident ${inc.id}` : `not from ${human(inc.state)}`;
    }
    note.disabled = inc.state === "closed" || inc.state === "cancelled";
    const auditKey = (inc.audit ?? []).length;
    if (audit.dataset.n === String(auditKey)) return; // unchanged: keep the nodes
    audit.dataset.n = String(auditKey);
    const body = document.createElement("tbody");
    for (const e of [...(inc.audit ?? [])].reverse()) {
      const row = body.insertRow();
      cell(row, utc(e.time), "time");
      cell(row, e.actor, "actor");
      cell(row, e.action, "action");
      cell(row, e.from ? `${human(e.from)} → ${human(e.to)}` : human(e.to));
      cell(row, e.note || "");
    }
    audit.tBodies[0].replaceWith(body);
  };
  const c = { el, note, fill };
  cards.set(id, c);
  return c;
}

// keep stores an incident's state unless what is stored is newer: an
// action's reply, the poll and MQTT may arrive in any order.
function keep(inc) {
  const old = incidents.get(inc.id);
  if (old) {
    const n0 = old.audit?.length ?? 0, n1 = inc.audit?.length ?? 0;
    if (n1 < n0 || (n1 === n0 && Date.parse(inc.updated_at) < Date.parse(old.updated_at))) return;
  }
  incidents.set(inc.id, inc);
}

function render() {
  const list = [...incidents.values()].filter(wanted)
    .sort((a, b) => (SEV_RANK[a.severity] ?? 9) - (SEV_RANK[b.severity] ?? 9) || String(b.opened_at).localeCompare(String(a.opened_at)));
  const box = $("incident-list");
  const els = [];
  for (const inc of list) {
    const c = cards.get(inc.id) ?? card(inc.id);
    c.fill(inc);
    els.push(c.el);
  }
  // Keep the focused element where it is: move cards only if the order changed.
  const now = [...box.children];
  if (now.length !== els.length || now.some((e, i) => e !== els[i])) {
    if (els.length === 0) {
      const p = document.createElement("p");
      p.textContent = filter === "todo" ? "Nothing to do: no open or resolved incidents." : "No incidents.";
      box.replaceChildren(p);
    } else box.replaceChildren(...els);
  }
  setText("n-incidents", intf.format(list.length));
}

async function pollIncidents() {
  const r = await api("/api/v1/robot/incidents?state=all");
  for (const inc of r.incidents ?? []) keep(inc);
  render();
  firstData();
}

async function act(id, action, button) {
  const c = cards.get(id);
  const note = c.note.value.trim();
  button.disabled = true;
  setText("action-status", `${action}: ${id}…`);
  try {
    const body = { by: me?.user || "dashboard" };
    if (note) body.note = note;
    const r = await api(`/api/v1/robot/incidents/${encodeURIComponent(id)}/${action}`, { method: "POST", body });
    if (r?.incident) keep(r.incident);
    c.note.value = "";
    setText("action-status", `Incident ${id}: ${human(r?.result ?? action)}${r?.incident ? ` by ${r.incident.audit?.at(-1)?.actor ?? "you"}` : ""}.`);
    render();
  } catch (e) {
    setText("action-status", `Incident ${id}: ${action} refused: ${e.message}`);
    const inc = incidents.get(id);
    if (inc) c.fill(inc);
  }
}

$("state").addEventListener("change", (e) => {
  filter = e.target.value;
  pollIncidents().catch((err) => console.warn(String(err)));
});
$("filter").addEventListener("submit", (e) => e.preventDefault());

// ---- Start ----
me = await header();
await loadRoutes().catch((e) => console.warn(String(e)));
every(10000, pollIncidents);
every(30000, async () => { if (routes.size === 0) await loadRoutes(); });
every(10000, pollRobots);

connectMQTT(["robot/+/robot/+/progress", "robot/+/incident/+/state"], (topic, payload) => {
  const p = topic.split("/");
  try {
    if (p[2] === "robot" && p[4] === "progress") {
      const m = json(payload);
      if (m) onProgress(m);
    } else if (p[2] === "incident") {
      const m = json(payload);
      if (!m) return; // a final incident's retained message removed: its last state came before
      keep(m);
      render();
    }
  } catch (e) {
    console.warn(`${topic}: ${e.message}`);
  }
});

// /robot#inc-… (from the map) shows that incident.
function focusHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  const el = id && document.getElementById(`incident-${id}`);
  if (el) { el.scrollIntoView({ block: "start" }); el.focus(); }
}
window.addEventListener("hashchange", focusHash);
setTimeout(focusHash, 1500);
