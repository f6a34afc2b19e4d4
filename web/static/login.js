// The sign-in page: POST /api/v1/session with the user's broker
// credentials, then back to the page that sent the browser here.
const form = document.getElementById("login");
const err = document.getElementById("login-error");

// next is where to go after signing in: a path of this node only.
function next() {
  const n = new URLSearchParams(location.search).get("next") || "/";
  return n.startsWith("/") && !n.startsWith("//") && !n.startsWith("/\\") ? n : "/";
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  err.textContent = "";
  const body = { username: form.username.value.trim(), password: form.password.value };
  if (!body.username || !body.password) { err.textContent = "Enter your user name and password."; return; }
  const r = await fetch("/api/v1/session", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  if (r.status === 201) { location.replace(next()); return; }
  const p = await r.json().catch(() => null);
  if (r.status === 409) { location.replace(next()); return; } // a node without users: no login needed
  err.textContent = p?.detail || `Sign-in failed (HTTP ${r.status}).`;
  form.password.select();
});

// Already signed in (or a node without users): go on.
fetch("/api/v1/session", { headers: { Accept: "application/json" } }).then((r) => {
  if (r.ok) location.replace(next());
}).catch(() => {});

// The form is live: browser tests wait on this before typing.
document.body.dataset.form = "ready";
