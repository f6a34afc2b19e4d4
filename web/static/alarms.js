// The Alarms view: the open alarms of every service (GET /api/v1/alarms,
// filtered as the API filters), their acknowledgement and clearing (POST
// /api/v1/alarms/{id}/ack and …/clear, with the session's CSRF token), each
// alarm's history (its audit trail), and the alarms that close while the
// page is open. Live over MQTT: the retained alarm topics
// alarm/{site}/{kind}/{asset}/{type} (five levels: the alarms, not their
// command topics).
import { $, api, cell, connectMQTT, every, fillRows, firstData, header, intf, json, keepFocus, setText, utc } from "/static/common.js";

const POLL_MS = 10000;
const SEVERITIES = ["critical", "major", "minor", "warning", "indeterminate"];
const form = $("filter");

// The filter is the page's query string, so that a filtered view can be
// shared and survives a reload.
const SELECTS = { status: "f-status", site: "f-site", kind: "f-kind", type: "f-type", originator: "f-originator", acknowledged: "f-ack" };

function readFilter() {
  const q = new URLSearchParams();
  for (const [name, id] of Object.entries(SELECTS)) if ($(id).value) q.set(name, $(id).value);
  const sev = [...form.querySelectorAll('input[name="severity"]:checked')].map((x) => x.value);
  if (sev.length) q.set("severity", sev.join(","));
  return q;
}

// ensureOption adds value to a select unless it has it.
function ensureOption(sel, value) {
  if (!value || [...sel.options].some((o) => o.value === value)) return;
  const o = document.createElement("option");
  o.value = o.textContent = value;
  // Keep "any" first, the rest sorted.
  const after = [...sel.options].slice(1).find((x) => x.value.localeCompare(value) > 0);
  sel.add(o, after ?? null);
}

function applyQuery(q) {
  for (const [name, id] of Object.entries(SELECTS)) {
    const v = q.get(name) ?? "";
    ensureOption($(id), v);
    $(id).value = v;
  }
  const sev = (q.get("severity") ?? "").split(",");
  for (const c of form.querySelectorAll('input[name="severity"]')) c.checked = sev.includes(c.value);
}
applyQuery(new URLSearchParams(location.search));

const known = new Map(); // topic → the latest state of its open alarm
const closed = []; // alarms seen closing, newest first
let shown = []; // the alarms in the table

const topicOf = (a) => `alarm/${a.site}/${a.sourceKind}/${a.alertSource}/${a.alarmType}`;

async function refresh() {
  const q = readFilter();
  const qs = q.toString();
  history.replaceState(null, "", qs ? `?${qs}` : location.pathname);
  // Every open alarm (for the figures and the filter's choices), and the
  // ones the filter selects, as the API selects them.
  let all, sel;
  try {
    [all, sel] = await Promise.all([api("/api/v1/alarms"), qs ? api(`/api/v1/alarms?${qs}`) : null]);
  } catch (e) {
    if (e.status !== 404 && e.status !== 403) throw e;
    // A node without services has no alarms, nor their API; a user the
    // API refuses is told why.
    fillRows($("alarms"), [], 10, e.status === 404 ? "This node has no alarm API: it runs no services." : `The alarm API refuses you: ${e.message}`);
    firstData();
    return;
  }
  const every = all.alarms ?? [];
  for (const a of every) known.set(topicOf(a), a);
  for (const [name, key] of [["f-site", "site"], ["f-kind", "sourceKind"], ["f-type", "alarmType"], ["f-originator", "originator"]]) {
    for (const v of new Set(every.map((a) => a[key]))) ensureOption($(name), v);
  }
  setText("count-open", intf.format(every.length));
  setText("count-unacked", intf.format(every.filter((a) => !a.acknowledged).length));
  setText("count-cleared", intf.format(every.filter((a) => a.status === "cleared").length));
  for (const s of SEVERITIES) setText(`count-${s}`, intf.format(every.filter((a) => a.severity === s).length));
  shown = sel ? (sel.alarms ?? []) : every;
  render();
  firstData();
}

// act acknowledges or clears an alarm, as the session's user.
async function act(a, verb, button) {
  const what = verb === "ack" ? "Acknowledging" : "Clearing";
  setText("action-error", "");
  setText("action-status", `${what} ${a.alarmType} of ${a.alertSource}…`);
  button.disabled = true;
  const comment = $("comment").value.trim();
  try {
    const r = await api(`/api/v1/alarms/${encodeURIComponent(a.id)}/${verb}`, { method: "POST", body: comment ? { comment } : {} });
    setText("action-status", `${a.alarmType} of ${a.alertSource}: ${r.result} (${r.alarm.status}, ${r.alarm.acknowledged ? "acknowledged" : "not acknowledged"}).`);
    $("comment").value = "";
    if (r.alarm.dateClosed) noteClosed(r.alarm);
    else known.set(topicOf(r.alarm), r.alarm);
  } catch (e) {
    setText("action-status", "");
    setText("action-error", `${what} ${a.alarmType} of ${a.alertSource} failed: ${e.message}${e.status ? ` (HTTP ${e.status})` : ""}`);
  }
  await refresh().catch((e) => console.warn(String(e)));
  // Keep the keyboard where it was: on the row's next action, or the status.
  const row = document.querySelector(`#alarms tr[data-id="${CSS.escape(a.id)}"]`);
  const next = row && [...row.querySelectorAll("button")].find((b) => !b.disabled);
  (next ?? $("action-status")).focus?.();
}


function render() {
  keepFocus($("alarms"), renderRows);
}

function renderRows() {
  setText("count-shown", intf.format(shown.length));
  fillRows($("alarms"), shown.map((a) => (r) => {
    r.dataset.id = a.id;
    r.dataset.topic = topicOf(a);
    cell(r, a.severity, `sev-${a.severity}`);
    cell(r, a.status, `st-${a.status}`);
    cell(r, a.acknowledged ? `yes, by ${a.acknowledgedBy || "–"}` : "no", a.acknowledged ? "" : "unacked");
    cell(r, `${a.site} · ${a.sourceKind} ${a.alertSource}`);
    cell(r, a.alarmType);
    cell(r, a.description ?? "", "desc");
    cell(r, utc(a.validFrom || a.dateIssued), "time");
    cell(r, utc(a.dateModified), "time");
    cell(r, intf.format(a.count ?? 0), "num");
    const td = cell(r, "", "actions");
    const label = `${a.alarmType} of ${a.alertSource}`;
    for (const [verb, text, done] of [["ack", "Acknowledge", a.acknowledged], ["clear", "Clear", a.status === "cleared"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = verb;
      b.textContent = text;
      b.disabled = done; // the API decides who may act; a refusal is shown
      b.setAttribute("aria-label", `${text} ${label}`);
      b.addEventListener("click", () => act(a, verb, b));
      td.append(b, " ");
    }
    const h = document.createElement("button");
    h.type = "button";
    h.className = "history";
    h.textContent = "History";
    h.setAttribute("aria-label", `History of ${label}`);
    h.addEventListener("click", () => showAudit(a));
    td.append(h);
  }), 10, "No open alarm matches the filter.");
}

let auditOf = null;
// showAudit shows an alarm's audit trail: who raised, acknowledged and
// cleared it, when.
function showAudit(a, focus = true) {
  auditOf = a.id;
  $("audit-panel").hidden = false;
  setText("audit-id", `${a.alarmType} of ${a.sourceKind} ${a.alertSource} (${a.id})`);
  setText("audit-desc", [a.description, a.dateClosed ? `closed ${utc(a.dateClosed)} UTC` : `${a.status}, ${a.acknowledged ? "acknowledged" : "not acknowledged"}`].filter(Boolean).join(" · "));
  fillRows($("audit"), (a.audit ?? []).map((e) => (r) => {
    cell(r, utc(e.time), "time");
    cell(r, e.action);
    cell(r, e.by);
    cell(r, e.comment ?? "");
  }), 4, "No entries.");
  if (focus) $("h-audit").focus();
}
$("audit-close").addEventListener("click", () => { $("audit-panel").hidden = true; auditOf = null; $("h-list").scrollIntoView(); });

function noteClosed(a) {
  if (closed.some((x) => x.id === a.id)) return;
  closed.unshift({ ...a, seenClosed: a.dateClosed || new Date().toISOString() });
  closed.length = Math.min(closed.length, 200);
  known.delete(topicOf(a));
  fillRows($("closed"), closed.map((x) => (r) => {
    r.dataset.id = x.id;
    cell(r, x.severity, `sev-${x.severity}`);
    cell(r, x.site);
    cell(r, `${x.sourceKind} ${x.alertSource}`);
    cell(r, x.alarmType);
    cell(r, utc(x.validFrom || x.dateIssued), "time");
    cell(r, utc(x.seenClosed), "time");
    cell(r, x.acknowledgedBy || "–");
    cell(r, x.clearedBy || "–");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = "History";
    b.setAttribute("aria-label", `History of ${x.alarmType} of ${x.alertSource}`);
    b.addEventListener("click", () => showAudit(x));
    cell(r, "").append(b);
  }), 9, "None yet.");
}

form.addEventListener("change", () => refresh().catch((e) => console.warn(String(e))));
form.addEventListener("submit", (e) => { e.preventDefault(); refresh().catch((x) => console.warn(String(x))); });
form.addEventListener("reset", () => setTimeout(() => refresh().catch((e) => console.warn(String(e)))));

await header();
every(POLL_MS, refresh);

// Live: each retained alarm topic holds its open alarm; an empty message
// means the alarm closed and left its topic.
let timer = null;
connectMQTT(["alarm/+/+/+/+"], (topic, payload) => {
  const el = $("alarm-updates");
  el.textContent = intf.format(Number(el.textContent.replace(/,/g, "")) + 1);
  try {
    const a = json(payload);
    if (a === null || a.dateClosed) {
      const last = a ?? known.get(topic);
      if (last) noteClosed(last);
    } else {
      known.set(topic, a);
      if (auditOf === a.id) showAudit(a, false);
    }
  } catch (e) {
    console.warn(`alarm on ${topic}: ${e.message}`);
  }
  clearTimeout(timer);
  timer = setTimeout(() => refresh().catch((e) => console.warn(String(e))), 300);
});
