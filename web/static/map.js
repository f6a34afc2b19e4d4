// The Campus map: the campus's own vector layers on a plain background (no
// tile server): buildings coloured by their current electric load (the
// twin), vineyard plots by today's disease risk and their soil maps (the
// vineyard service), the robot's route and the robot moving along it (the
// robot service's route, its position live over MQTT on the retained
// progress topic), open incidents and active alarms as markers. Leaflet
// (vendored) draws it; it sets element styles from script (CSSOM), which
// the page's CSP allows, and the page has no inline styles or scripts.
import { $, addTiles, api, cell, connectMQTT, esc, every, fillRows, firstData, header, intf, json, nf, setText, showProgress, utc } from "/static/common.js";

const L = window.L;

// LOAD_BINS are the building load classes, in kW, with their colours
// (a sequential ramp, light to dark, readable with the building names).
const LOAD_BINS = [
  { max: 50, color: "#fef0d9", label: "< 50 kW" },
  { max: 100, color: "#fdcc8a", label: "50–100 kW" },
  { max: 200, color: "#fc8d59", label: "100–200 kW" },
  { max: 400, color: "#e34a33", label: "200–400 kW" },
  { max: Infinity, color: "#b30000", label: "≥ 400 kW" },
];
const NO_LOAD = "#c9d1db";
// RISK colours today's highest disease risk of a plot.
const RISK = { none: "#c7e9c0", low: "#74c476", moderate: "#f4a261", high: "#d62828" };
// SOIL colours the nutrient classes A (very low) to E (very high).
const SOIL = { A: "#d7191c", B: "#fdae61", C: "#a6d96a", D: "#5aa9d6", E: "#2c5fa8" };
const SOIL_LABEL = { A: "very low", B: "low", C: "optimal", D: "high", E: "very high" };
const NUTRIENTS = [["p", "phosphorus (P)"], ["k", "potassium (K)"], ["ph", "pH"]];

const loadColor = (kw) => (kw == null ? NO_LOAD : LOAD_BINS.find((b) => kw < b.max).color);

// The map: EPSG:3857, the campus's own shapes on a plain background, over
// the tile server of the dashboard's settings if the node has one.
const map = L.map("map", { zoomSnap: 0.25, keyboard: true, attributionControl: true, minZoom: 10, maxZoom: 21 });
map.attributionControl.setPrefix(false);
map.attributionControl.addAttribution("the campus model of citymesh");
map.setView([49.15, 9.22], 14);
addTiles(L, map);

// Panes keep the layers in order: soil above plots, markers above all.
map.createPane("soil").style.zIndex = 405;
map.createPane("route").style.zIndex = 420;
map.createPane("robot").style.zIndex = 660; // above the labels (tooltips, 650): never hidden
const canvas = L.canvas({ pane: "soil", padding: 0.2 });

// Shapes' labels only where they have room: none below zoom LABEL_ZOOM;
// above, a label that would overlap one already shown (buildings first,
// the highest load first) is hidden; its shape keeps its tooltip's text in
// the side tables.
const LABEL_ZOOM = 14;
function placeLabels() {
  const off = map.getZoom() < LABEL_ZOOM;
  map.getContainer().classList.toggle("labels-off", off);
  if (off) return;
  const order = [...[...buildings.values()].sort((a, b) => (b.kw ?? -1) - (a.kw ?? -1)), ...plots.values()];
  // Show all, measure all, then hide: one layout, not one per label.
  const els = order.map((x) => x.shape.getTooltip()?.getElement()).filter(Boolean);
  for (const el of els) el.classList.remove("crowded");
  const rects = els.map((el) => el.getBoundingClientRect());
  const shown = [];
  els.forEach((el, i) => {
    const r = rects[i];
    if (shown.some((o) => r.left < o.right + 2 && r.right > o.left - 2 && r.top < o.bottom + 1 && r.bottom > o.top - 1)) el.classList.add("crowded");
    else shown.push(r);
  });
}
map.on("zoomend overlayadd", () => placeLabels());

const layers = {
  buildings: L.featureGroup().addTo(map),
  plots: L.featureGroup().addTo(map),
  route: L.featureGroup().addTo(map),
  incidents: L.featureGroup().addTo(map),
  alarms: L.featureGroup().addTo(map),
};
const soilLayers = {};
for (const [n] of NUTRIENTS) soilLayers[n] = L.featureGroup();

const overlays = {
  "Buildings (electric load, kW)": layers.buildings,
  "Vineyard plots (disease risk)": layers.plots,
};
for (const [n, label] of NUTRIENTS) overlays[`Soil map: ${label}`] = soilLayers[n];
overlays["Robot and its route"] = layers.route;
overlays["Open incidents (robot)"] = layers.incidents;
overlays["Active alarms"] = layers.alarms;
L.control.layers(null, overlays, { collapsed: false, position: "topright" }).addTo(map);
L.control.scale({ metric: true, imperial: false }).addTo(map);

// The legend (below the map, in the page): swatches from the same colours.
function legend() {
  const div = $("legend");
  const sec = (title, items) => {
    const box = document.createElement("div");
    const h = document.createElement("h4");
    h.textContent = title;
    const ul = document.createElement("ul");
    for (const [cls, label] of items) {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = `sw ${cls}`;
      sw.setAttribute("aria-hidden", "true");
      li.append(sw, label);
      ul.append(li);
    }
    box.append(h, ul);
    div.append(box);
  };
  sec("Building load (kW, main electricity meters)", [...LOAD_BINS.map((b, i) => [`load-${i}`, b.label]), ["load-none", "no reading"]]);
  sec("Plot disease risk today (level)", Object.keys(RISK).map((k) => [`risk-${k}`, k]));
  sec("Soil class (of the nutrient shown)", Object.keys(SOIL).map((k) => [`soil-${k}`, `${k} ${SOIL_LABEL[k]}`]));
  sec("Robot", [["robot", "robot (live position)"], ["route", "route (length in m)"], ["trail", "its recent track"]]);
  sec("Markers", [["inc", "open incident (robot), by severity"], ["alm", "active alarm, by severity"]]);
}
legend();

// Zoom to: the whole campus or one site (buttons in the map's corner).
const zoomTo = L.control({ position: "topleft" });
zoomTo.onAdd = () => {
  const div = L.DomUtil.create("div", "leaflet-bar zoomto");
  div.setAttribute("role", "group");
  div.setAttribute("aria-label", "Zoom to");
  L.DomEvent.disableClickPropagation(div);
  return div;
};
zoomTo.addTo(map);
function siteButtons() {
  const div = zoomTo.getContainer();
  const sites = new Set([...buildings.values(), ...plots.values()].map((x) => x.asset.site));
  if (div.dataset.sites === [...sites].join()) return;
  div.dataset.sites = [...sites].join();
  div.replaceChildren();
  const button = (label, fn) => {
    const b = L.DomUtil.create("button", "", div);
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", fn);
  };
  button("All", () => fit(true));
  for (const site of [...sites].sort()) {
    button(site, () => {
      const b = L.latLngBounds([]);
      for (const x of [...buildings.values(), ...plots.values()]) if (x.asset.site === site) b.extend(x.shape.getBounds());
      for (const r of routes.values()) if (r.info.site === site) b.extend(r.marker.getLatLng());
      const right = (document.querySelector("#map .leaflet-control-layers")?.offsetWidth ?? 0) + 30;
      if (b.isValid()) map.fitBounds(b, { paddingTopLeft: [60, 40], paddingBottomRight: [right, 40], maxZoom: 19 });
    });
  }
}

// Fit the view to what is drawn, once, when the first shapes arrive.
let fitted = false;
const loaded = { buildings: false, plots: false, routes: false };
function fit(force) {
  if (!force && (fitted || !loaded.buildings || !loaded.plots || !loaded.routes)) return;
  const b = L.latLngBounds([]);
  for (const g of [layers.buildings, layers.plots, layers.route]) if (g.getLayers().length) b.extend(g.getBounds());
  // Keep the shapes clear of the layer control at the top right.
  const right = (document.querySelector("#map .leaflet-control-layers")?.offsetWidth ?? 0) + 30;
  if (b.isValid()) { map.fitBounds(b, { paddingTopLeft: [60, 40], paddingBottomRight: [right, 40], maxZoom: 18 }); fitted = true; }
}

const count = (n, one, many) => `${intf.format(n)} ${n === 1 ? one : many}`;
function summary() {
  setText("map-summary", `${count(buildings.size, "building", "buildings")}, ${count(plots.size, "plot", "plots")}, ` +
    `${count(routes.size, "robot route", "robot routes")}, ${count(incidents.size, "open incident", "open incidents")}, ` +
    `${count(alarmCount.placed, "alarm", "alarms")} on the map.`);
}

// ---- Buildings and their load ----
const buildings = new Map(); // id → {asset, shape, kw, observed}
const mainMeters = new Map(); // meter id → building id

async function loadBuildings() {
  const [r, m] = await Promise.all([api("/api/v1/twin/assets?kind=building"), api("/api/v1/twin/assets?kind=meter")]);
  for (const a of r.assets ?? []) {
    if (buildings.has(a.id) || !a.geometry) continue;
    const shape = L.geoJSON(a.geometry, { style: { color: "#14324f", weight: 1.5, fillColor: NO_LOAD, fillOpacity: 0.85 } });
    shape.bindTooltip(esc(a.name || a.id), { permanent: true, direction: "center", className: "label building-label" });
    shape.addTo(layers.buildings);
    buildings.set(a.id, { asset: a, shape, kw: null, observed: null });
  }
  // The map is there: the campus's shapes, coloured once the loads come.
  firstData();
  // The main electricity meters (a building's own, not the floors').
  for (const a of m.assets ?? []) {
    const b = a.relations?.building;
    if (b && a.attributes?.carrier === "electricity" && a.attributes?.type === "electricity-main") mainMeters.set(a.id, b);
  }
}

async function pollLoads() {
  if (buildings.size === 0) await loadBuildings();
  const r = await api("/api/v1/twin/points?quantity=activePower");
  const sum = new Map();
  for (const p of r.points ?? []) {
    const b = mainMeters.get(p.asset);
    if (!b || p.value == null) continue;
    const kw = p.unit === "WTT" ? p.value / 1000 : p.value; // UN/CEFACT KWT or WTT
    const s = sum.get(b) ?? { kw: 0, observed: null };
    s.kw += kw;
    if (!s.observed || p.observed > s.observed) s.observed = p.observed;
    sum.set(b, s);
  }
  for (const [id, b] of buildings) {
    const s = sum.get(id);
    b.kw = s ? s.kw : null;
    b.observed = s ? s.observed : null;
    b.shape.setStyle({ fillColor: loadColor(b.kw) });
    const label = `${b.asset.name || id}: ${b.kw == null ? "no reading" : `${nf.format(b.kw)} kW`}`;
    b.shape.setTooltipContent(esc(label));
  }
  fillRows($("buildings"), [...buildings.values()].sort((x, y) => (y.kw ?? -1) - (x.kw ?? -1)).map((b) => (row) => {
    cell(row, b.asset.name || b.asset.id).title = b.asset.id;
    cell(row, b.kw == null ? "–" : nf.format(b.kw), "num");
    cell(row, utc(b.observed), "time");
  }), 3, "No buildings visible.");
  loaded.buildings = true;
  fit();
  siteButtons();
  placeLabels();
  summary();
  firstData();
}

// ---- Plots, their risk and soil maps ----
const plots = new Map(); // id → {asset, shape, risk}

async function pollPlots() {
  if (plots.size === 0) {
    const r = await api("/api/v1/twin/assets?kind=plot");
    for (const a of r.assets ?? []) {
      if (!a.geometry) continue;
      const shape = L.geoJSON(a.geometry, { style: { color: "#2d5016", weight: 1.5, fillColor: RISK.none, fillOpacity: 0.6 } });
      shape.bindTooltip(esc(a.name || a.id), { permanent: true, direction: "center", className: "label plot-label" });
      shape.addTo(layers.plots);
      plots.set(a.id, { asset: a, shape, risk: null });
    }
    loaded.plots = true;
    fit();
    siteButtons();
  }
  let list = [];
  try { list = await api("/api/v1/vineyard/plots"); } catch (e) { if (e.status !== 404) throw e; }
  for (const p of list ?? []) {
    const pl = plots.get(p.id);
    if (!pl) continue;
    pl.risk = p;
    pl.shape.setStyle({ fillColor: RISK[p.level] ?? RISK.none });
    pl.shape.setTooltipContent(esc(`${pl.asset.name || p.id}: risk ${p.level}`));
  }
  placeLabels();
  fillRows($("plots"), [...plots.values()].map((pl) => (row) => {
    cell(row, pl.asset.name || pl.asset.id).title = pl.asset.id;
    const lvl = pl.risk?.level ?? "–";
    cell(row, lvl, `risk risk-${lvl}`);
    const d = Object.entries(pl.risk?.diseases ?? {}).filter(([, v]) => v === lvl && lvl !== "none").map(([k]) => k.replace(/_/g, " "));
    cell(row, d.length ? d.join(", ") : "–");
  }), 3, "No plots visible.");
  summary();
}

// A soil map is loaded when its layer is switched on (each is some
// hundreds of kB of GeoJSON cells), drawn on a canvas.
const soilLoaded = new Set();
map.on("overlayadd", async (e) => {
  const n = Object.keys(soilLayers).find((k) => soilLayers[k] === e.layer);
  if (!n || soilLoaded.has(n)) return;
  soilLoaded.add(n);
  // Four plots at a time: a campus has tens of plots, each map some
  // hundreds of kB.
  const queue = [...plots.keys()];
  const one = async (id) => {
    const r = await fetch(`/api/v1/vineyard/plots/${encodeURIComponent(id)}/soil/${n}.geojson`, { headers: { Accept: "application/geo+json" } });
    if (!r.ok) { console.warn(`soil map ${n} of ${id}: HTTP ${r.status}`); return; }
    const fc = await r.json();
    L.geoJSON(fc, {
      renderer: canvas, pane: "soil", interactive: false,
      filter: (f) => f.properties?.kind === "cell",
      style: (f) => ({ stroke: false, fillColor: SOIL[f.properties.class] ?? "#999", fillOpacity: 0.75 }),
    }).addTo(soilLayers[n]);
  };
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      try { await one(id); } catch (err) { console.warn(`soil map ${n} of ${id}: ${err.message}`); soilLoaded.delete(n); }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  document.body.dataset[`soil${n}`] = "loaded"; // data-soilph: tests wait on it
});

// ---- The robot: route, position, track ----
const routes = new Map(); // robot id → {info, waypoints: Map, marker, trail}
const TRAIL = 120;

async function loadRoutes() {
  let r;
  try { r = await api("/api/v1/robot/routes"); } catch (e) { if (e.status === 404 || e.status === 503) { loaded.routes = true; fit(); return; } throw e; }
  for (const info of r.routes ?? []) {
    if (routes.has(info.robot)) continue;
    const wps = info.route?.waypoints ?? [];
    const line = wps.map((w) => [w.lat, w.lon]);
    L.polyline(line, { pane: "route", color: "#14324f", weight: 2, dashArray: "6 4", className: "route-line" }).addTo(layers.route)
      .bindTooltip(`${esc(info.route.name || info.route.id)} (${nf.format(info.length_m)} m, corridor ± ${nf.format(info.corridor_m)} m)`);
    const waypoints = new Map();
    for (const w of wps) {
      waypoints.set(w.id, w);
      L.circleMarker([w.lat, w.lon], { pane: "route", radius: 4, color: "#14324f", weight: 1, fillColor: "#fff", fillOpacity: 1 })
        .bindTooltip(esc(`${w.id}: ${w.name || ""}`)).addTo(layers.route);
    }
    const trail = L.polyline([], { pane: "route", color: "#0b63b6", weight: 3, opacity: 0.6, className: "robot-trail" }).addTo(layers.route);
    const marker = L.circleMarker(line[0] ?? [0, 0], { pane: "robot", radius: 8, color: "#fff", weight: 2, fillColor: "#0b63b6", fillOpacity: 1, className: "robot-marker" });
    marker.bindTooltip(esc(info.robot), { permanent: true, direction: "right", offset: [8, 0], className: "label robot-label" });
    marker.addTo(layers.route);
    routes.set(info.robot, { info, waypoints, marker, trail, fixes: 0 });
    setText("robot-corridor", nf.format(info.corridor_m));
  }
  loaded.routes = true;
  fit();
  summary();
}

function onProgress(p) {
  const r = routes.get(p.robot);
  if (!r || !showProgress(r, p, TRAIL)) return;
  const next = p.next ? r.waypoints.get(p.next) : null;
  setText("robot-next", next ? `${next.id} (${next.name || ""})` : (p.next || "–"));
}

// ---- Incidents and alarms ----
const incidents = new Map(); // id → {inc, marker}
const alarmCount = { placed: 0 };

// place returns where an incident or alarm is on the map: its waypoint on
// a robot's route, else its asset's location (from the twin), else none.
function waypointLatLng(robotID, wp) {
  for (const [id, r] of routes) {
    if (robotID && id !== robotID) continue;
    const w = r.waypoints.get(wp);
    if (w) return [w.lat, w.lon];
  }
  return null;
}

// badge is an incident's or alarm's marker: a 22 px badge up and to the
// right of its place (an incident's, left: an alarm's), so the robot and
// the shapes under it stay visible.
function badge(kind, severity, text) {
  return L.divIcon({ className: `badge badge-${kind} sev-${severity}`, html: text, iconSize: [22, 22], iconAnchor: kind === "inc" ? [-4, 26] : [26, 26] });
}

function showIncident(inc) {
  const old = incidents.get(inc.id);
  if (old) { layers.incidents.removeLayer(old.marker); incidents.delete(inc.id); }
  if (!inc || !["new", "acknowledged", "in_progress"].includes(inc.state)) { summary(); setText("n-incidents", intf.format(incidents.size)); return; }
  let ll = waypointLatLng(inc.robot, inc.waypoint);
  if (!ll) { summary(); return; }
  // Several incidents at one waypoint: spread them a little.
  const n = [...incidents.values()].filter((x) => x.inc.waypoint === inc.waypoint).length;
  ll = [ll[0] + 0.00004 * n, ll[1] + 0.00006 * n];
  const m = L.marker(ll, { icon: badge("inc", inc.severity, "!"), keyboard: true, title: `Incident: ${inc.reason}`, alt: `Incident ${inc.kind}`, riseOnHover: true });
  m.bindPopup(`<strong>${esc(inc.kind.replace(/_/g, " "))}</strong> (${esc(inc.severity)}, ${esc(inc.state.replace(/_/g, " "))})<br>${esc(inc.reason)}<br>` +
    `at ${esc(inc.waypoint)} · seen ${intf.format(inc.count)} times · since ${esc(utc(inc.opened_at))} UTC<br><a href="/robot#${encodeURIComponent(inc.id)}">Act on it in the Robot view</a>`);
  m.addTo(layers.incidents);
  incidents.set(inc.id, { inc, marker: m });
  setText("n-incidents", intf.format(incidents.size));
  summary();
}

async function pollIncidents() {
  let r;
  try { r = await api("/api/v1/robot/incidents?state=open"); } catch (e) { if (e.status === 404 || e.status === 503) return; throw e; }
  const seen = new Set();
  for (const inc of r.incidents ?? []) { seen.add(inc.id); showIncident(inc); }
  for (const [id, x] of incidents) if (!seen.has(id)) { layers.incidents.removeLayer(x.marker); incidents.delete(id); }
  setText("n-incidents", intf.format(incidents.size));
  summary();
}

const assetPlace = new Map(); // asset id → [lat, lon] or null
async function pollAlarms() {
  const a = await api("/api/v1/alarms?status=active");
  // Robot incidents' alarms are shown as incidents.
  const list = (a.alarms ?? []).filter((x) => !x.data?.incident);
  const unknown = [...new Set(list.map((x) => x.alertSource))].filter((s) => !assetPlace.has(s));
  for (let i = 0; i < unknown.length; i += 50) {
    const q = unknown.slice(i, i + 50).map((s) => `id=${encodeURIComponent(s)}`).join("&");
    const r = await api(`/api/v1/twin/assets?${q}`);
    for (const s of unknown.slice(i, i + 50)) assetPlace.set(s, null);
    for (const x of r.assets ?? []) if (x.location?.length === 2 && (x.location[0] || x.location[1])) assetPlace.set(x.id, [x.location[1], x.location[0]]);
  }
  layers.alarms.clearLayers();
  const at = new Map();
  let placed = 0;
  for (const x of list) {
    let ll = assetPlace.get(x.alertSource) ?? (x.data?.waypoint ? waypointLatLng(null, x.data.waypoint) : null);
    if (!ll) continue;
    const key = ll.join(",");
    const n = at.get(key) ?? 0;
    at.set(key, n + 1);
    ll = [ll[0] - 0.00004 * n, ll[1] + 0.00006 * n];
    L.marker(ll, { icon: badge("alm", x.severity, "◆"), keyboard: true, title: `Alarm: ${x.alarmType} on ${x.alertSource}`, alt: `Alarm ${x.alarmType}` })
      .bindPopup(`<strong>${esc(x.alarmType)}</strong> (${esc(x.severity)}) on ${esc(x.alertSource)}<br>${esc(x.description || "")}<br>since ${esc(utc(x.dateIssued))} UTC` +
        `${x.acknowledged ? " · acknowledged" : ""}<br><a href="/alarms">Alarms view</a>`)
      .addTo(layers.alarms);
    placed++;
  }
  alarmCount.placed = placed;
  setText("n-alarms", intf.format(list.length));
  setText("n-alarms-placed", intf.format(placed));
  summary();
}

// ---- Start ----
await header();
loadRoutes().catch((e) => console.warn(String(e))).finally(() => { loaded.routes = true; fit(); });
every(10000, pollLoads);
every(15000, pollPlots);
every(10000, pollIncidents);
every(10000, pollAlarms);
every(30000, async () => { if (routes.size === 0) await loadRoutes(); });

let alarmTimer = null;
connectMQTT(["robot/+/robot/+/progress", "robot/+/incident/+/state", "alarm/#"], (topic, payload) => {
  const p = topic.split("/");
  if (p[0] === "robot" && p[2] === "robot" && p[4] === "progress") {
    try { const m = json(payload); if (m) onProgress(m); } catch (e) { console.warn(`progress on ${topic}: ${e.message}`); }
    return;
  }
  if (p[0] === "robot" && p[2] === "incident") {
    if (payload.length === 0) { const x = incidents.get(p[3]); if (x) { layers.incidents.removeLayer(x.marker); incidents.delete(p[3]); summary(); } return; }
    try { const m = json(payload); if (m) showIncident(m); } catch (e) { console.warn(`incident on ${topic}: ${e.message}`); }
    return;
  }
  if (p[0] === "alarm") {
    clearTimeout(alarmTimer);
    alarmTimer = setTimeout(() => pollAlarms().catch((e) => console.warn(String(e))), 500);
  }
});
