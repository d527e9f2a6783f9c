// Relay console: a single page over Relay's public HTTP API, nothing else. The key is kept
// for this tab only (sessionStorage) and sent as the bearer token, never in a URL. Every
// value from the API is put on the page as text (never as HTML), and the page's
// Content-Security-Policy allows no inline script: an event's payload can never run here.

const KEY = "relay.console.key";
const REFRESH_MS = 4000;
const PROVIDERS = ["stripe", "standard-webhooks", "svix", "github", "checkr", "linkedin", "mollie", "hmac"];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const alertBox = document.getElementById("alert");
const signOut = document.getElementById("sign-out");

/** Who is signed in: {kind: "organization"|"operator", id}. */
let session = null;
/** The current view's refresh, called every REFRESH_MS while the tab is visible. */
let refresher = null;
let timer = null;
/** Bumped by every render, so a slow view that finishes after the next one started is dropped. */
let generation = 0;
/** The last refresh failed: its error is on screen until one succeeds. */
let refreshFailed = false;

// ---------------------------------------------------------------- DOM and API helpers

/** An element: h("a", {href: "#/x"}, "text", child, ...). Strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

class ApiError extends Error {
  constructor(status, problem) {
    const text = problem && (problem.detail || problem.title);
    super(text ? `${problem.title || "Error"}: ${problem.detail || ""}` : `The API answered ${status}`);
    this.status = status;
  }
}

/** One API call with the tab's key; answers the JSON body, or throws an ApiError. */
async function api(method, path, body) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(KEY) || ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { title: "Relay is unreachable", detail: String(e.message || e) });
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

function showError(e) {
  alertBox.className = "alert";
  alertBox.textContent = e instanceof Error ? e.message : String(e);
  alertBox.hidden = false;
}

function showInfo(text) {
  alertBox.className = "alert info";
  alertBox.textContent = text;
  alertBox.hidden = false;
}

function clearAlert() { alertBox.hidden = true; alertBox.textContent = ""; }

/** Runs an action from a button, showing its error; the button is disabled meanwhile. */
function action(button, fn) {
  return async (ev) => {
    if (ev) ev.preventDefault();
    button.disabled = true;
    try { clearAlert(); await fn(); } catch (e) { showError(e); } finally { button.disabled = false; }
  };
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A datetime-local input's value as RFC 3339 (UTC), or "" when empty. */
function isoOf(local) { return local ? new Date(local).toISOString() : ""; }

/** RFC 3339 as a datetime-local input's value (local time), or "" when empty or invalid. */
function localOf(iso) {
  const d = new Date(iso || "");
  return isNaN(d) ? "" : new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

/**
 * Rebuilds `container` with `build()`'s nodes, keeping what the user had: the focused control
 * and the open <details>, matched by their data-key. A refresh never throws a keyboard user
 * back to the top of the page or closes a form they opened.
 */
async function redraw(container, build) {
  const focused = container.contains(document.activeElement) ? document.activeElement?.dataset.key : null;
  const open = [...container.querySelectorAll("details[open][data-key]")].map((d) => d.dataset.key);
  const nodes = await build();
  container.replaceChildren();
  append(container, nodes);
  for (const key of open) container.querySelector(`details[data-key="${CSS.escape(key)}"]`)?.setAttribute("open", "");
  if (focused) container.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

/** True while the user is typing, has text selected, or has a form open in the page: a refresh would undo it. */
function busy() {
  const a = document.activeElement;
  if (a && main.contains(a) && a.matches("textarea, input:not([type=checkbox]):not([type=radio])")) return true;
  const selection = window.getSelection();
  if (selection && !selection.isCollapsed && main.contains(selection.anchorNode)) return true;
  return !!main.querySelector("details[open]");
}

/**
 * Newer and Older over a stack of the API's cursors (the first page's is ""): each pops or
 * pushes one and redraws. `suffix` keeps their data-keys apart where a page has two lists.
 */
function pageButtons(cursors, nextCursor, redrawPage, suffix = "", olderAttrs = {}) {
  const prev = h("button", { type: "button", disabled: cursors.length === 1, "data-key": `newer${suffix}` }, "Newer");
  prev.addEventListener("click", action(prev, async () => { cursors.pop(); await redrawPage(); }));
  const next = h("button", { type: "button", disabled: !nextCursor, "data-key": `older${suffix}`, ...olderAttrs }, "Older");
  next.addEventListener("click", action(next, async () => { cursors.push(nextCursor); await redrawPage(); }));
  return [prev, next];
}

function badge(text, kind = text) { return h("span", { class: `badge ${kind}` }, text); }

/** A copy button for `text`: the clipboard API, or a selected field and execCommand where it is not allowed. */
function copyButton(text, label, id) {
  const b = h("button", { type: "button", id, "aria-label": label }, "Copy");
  b.addEventListener("click", async () => {
    let ok = false;
    try { await navigator.clipboard.writeText(text); ok = true; } catch { ok = false; }
    if (!ok) {
      const field = h("textarea", { readonly: true, "aria-hidden": "true" }, text);
      document.body.append(field);
      field.select();
      try { ok = document.execCommand("copy"); } catch { ok = false; }
      field.remove();
    }
    b.textContent = ok ? "Copied" : "Select and copy by hand";
  });
  return b;
}

/** The "shown once" box for a new signing secret. */
function secretBox(secret, what) {
  return h("div", { class: "secret", id: "secret-panel", role: "status" },
    h("strong", {}, `${what} (shown once: copy it now)`),
    h("code", { id: "secret-value" }, secret),
    copyButton(secret, "Copy the secret", "copy-secret"));
}

function table(headers, rows, attrs = {}) {
  return h("div", { class: "scroll" }, h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((t) => (Array.isArray(t) ? h("th", { scope: "col", class: t[1] }, t[0]) : h("th", { scope: "col" }, t))))),
    h("tbody", {}, rows)));
}

function field(label, input) { return h("label", {}, label, input); }

// ---------------------------------------------------------------- sign in

/** Finds out what the key is. A refused key is forgotten; on an outage it is kept, to try again. */
async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  const refused = (e) => { if (e.status === 401 || e.status === 403) sessionStorage.removeItem(KEY); throw e; };
  try {
    const org = await api("GET", "/v1/organization");
    session = { kind: "organization", id: org.organizationId };
  } catch (e) {
    if (e.status !== 403) refused(e);
    try {
      await api("GET", "/v1/integrations");
      session = { kind: "operator", id: "operator" };
    } catch (e2) {
      if (e2.status === 403) {
        sessionStorage.removeItem(KEY);
        throw new Error("This is a product key: it can publish events but not use the console. Use an organisation key or an operator (admin) key.");
      }
      refused(e2);
    }
  }
}

/** Goes to `hash`, rendering once whether or not the hash changes. */
function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

/** The key stopped working (revoked, or a rotation): back to sign-in, saying why. */
function expired(e) {
  sessionStorage.removeItem(KEY);
  session = null;
  go("");
  showError(`Your key was refused (${e.message}). Sign in again.`);
}

function signInView() {
  // one-time-code: browsers do not offer to save it in the password manager, as they would a password.
  const input = h("input", { id: "key", type: "password", autocomplete: "one-time-code", required: true, spellcheck: "false", placeholder: "rk_org_… or rk_admin_…" });
  input.value = sessionStorage.getItem(KEY) || "";
  const button = h("button", { class: "primary", type: "submit", id: "sign-in" }, "Sign in");
  const form = h("form", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", { class: "muted" }, "Paste an organisation key to see your events, endpoints and sources, or an operator key to see the platform. The key stays in this tab only and is sent only to this Relay; do not let the browser save it."),
    field("API key", input), h("p", {}, button));
  form.addEventListener("submit", action(button, async () => {
    await signIn(input.value.trim());
    go(session.kind === "operator" ? "#/integrations" : "#/events");
  }));
  main.replaceChildren(form);
  input.focus();
}

// ---------------------------------------------------------------- routing

const ORG_NAV = [["#/events", "Events"], ["#/subscriptions", "Endpoints"], ["#/sources", "Sources"]];
const OPERATOR_NAV = [["#/integrations", "Integrations"], ["#/dead-letters", "Dead letters"], ["#/payroll", "Payroll"], ["#/tenants", "Tenants"]];

function route() {
  const [, first = "", second = ""] = location.hash.split("/");
  if (session.kind === "operator") {
    if (first === "dead-letters") return deadLettersView;
    if (first === "payroll" && second) {
      const [, , , run = ""] = location.hash.split("/");
      return () => payrollRunView(decodeURIComponent(second), decodeURIComponent(run));
    }
    if (first === "payroll") return payrollView;
    if (first === "tenants" && second) return () => tenantView(decodeURIComponent(second));
    if (first === "tenants") return tenantsView;
    return integrationsView;
  }
  if (first === "events" && second) return () => eventView(decodeURIComponent(second));
  if (first === "subscriptions") return subscriptionsView;
  if (first === "sources" && second) return () => sourceView(decodeURIComponent(second));
  if (first === "sources") return sourcesView;
  return eventsView;
}

async function render() {
  const mine = ++generation;
  clearInterval(timer);
  refresher = null;
  if (!session) {
    nav.hidden = true; signOut.hidden = true; who.textContent = "";
    return signInView();
  }
  const links = session.kind === "operator" ? OPERATOR_NAV : ORG_NAV;
  const current = `#/${(location.hash.split("/")[1] || "").split("?")[0]}`;
  nav.replaceChildren(...links.map(([href, text]) => h("a", { href, "aria-current": href === current ? "page" : null }, text)));
  nav.hidden = false; signOut.hidden = false;
  who.textContent = session.kind === "operator" ? "Operator" : `Organisation ${session.id}`;
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let view;
  try { view = await route()(); } catch (e) {
    if (mine !== generation) return;
    if (e.status === 401) return expired(e);
    showError(e); main.replaceChildren(); return;
  }
  if (mine !== generation) return;
  main.replaceChildren(...view.nodes);
  refresher = view.refresh || null;
  clearInterval(timer);
  timer = setInterval(tick, REFRESH_MS);
}

async function tick() {
  if (!refresher || document.visibilityState !== "visible" || busy()) return;
  const mine = generation;
  try {
    await refresher();
    if (refreshFailed && mine === generation) { clearAlert(); refreshFailed = false; }
  } catch (e) {
    if (mine !== generation) return;
    if (e.status === 401) return expired(e);
    refreshFailed = true;
    showError(e);
  }
}

// ---------------------------------------------------------------- organisation: events

/** Deliveries per hour, delivered against failing, for the last day, as stacked bars. */
async function chart() {
  const { hours } = await api("GET", "/v1/stats/deliveries");
  const max = Math.max(1, ...hours.map((x) => x.delivered + x.failed));
  const w = 24, gap = 4, height = 100;
  const svg = s("svg", { viewBox: `0 0 ${hours.length * (w + gap)} ${height}`, role: "img", preserveAspectRatio: "none" });
  let delivered = 0, failed = 0;
  hours.forEach((x, i) => {
    delivered += x.delivered; failed += x.failed;
    const okH = (x.delivered / max) * height, badH = (x.failed / max) * height;
    const g = s("g", {}, s("title", {}, `${when(x.hour)}: ${x.delivered} delivered, ${x.failed} failing or retrying`));
    g.append(s("rect", { x: i * (w + gap), y: height - okH, width: w, height: okH, fill: "#1a7f37" }));
    g.append(s("rect", { x: i * (w + gap), y: height - okH - badH, width: w, height: badH, fill: "#cf222e" }));
    svg.append(g);
  });
  svg.setAttribute("aria-label", `Deliveries in the last 24 hours: ${delivered} delivered, ${failed} failed`);
  return [
    h("div", { class: "row" }, h("strong", {}, "Deliveries per hour, last 24 hours"),
      h("span", { class: "legend" }, h("span", {}, h("span", { class: "swatch ok" }), `${delivered} delivered`),
        h("span", {}, h("span", { class: "swatch bad" }), `${failed} failing or retrying`))),
    svg,
    h("div", { class: "axis", "aria-hidden": "true" }, hours.filter((_, i) => i % 6 === 0).map((x) => h("span", {}, `${new Date(x.hour).getHours()}:00`)), h("span", {}, "now")),
    h("p", { class: "muted small" }, "Each event counts once per endpoint, in the hour of its latest attempt, as it stands now."),
  ];
}

/** The events view. Its filters live in the hash (#/events?type=…), so a reload or a shared link keeps them. */
async function eventsView() {
  const applied = new URLSearchParams(location.hash.split("?")[1] || "");
  const typeInput = h("input", { id: "filter-type", value: applied.get("type") || "", placeholder: "candidate.hired" });
  const stateSelect = h("select", { id: "filter-state" }, [["", "any"], ["failed", "failing"], ["delivered", "delivered"], ["none", "no attempt"]]
    .map(([v, t]) => h("option", { value: v, selected: (applied.get("deliveryState") || "") === v }, t)));
  const fromInput = h("input", { id: "filter-from", type: "datetime-local", value: localOf(applied.get("from")) });
  const toInput = h("input", { id: "filter-to", type: "datetime-local", value: localOf(applied.get("to")) });
  const live = h("input", { id: "live", type: "checkbox", checked: true });
  const apply = h("button", { type: "submit" }, "Apply");
  const body = h("div", { id: "events" });
  const pager = h("div", { class: "pager" });
  const chartBox = h("section", { class: "card chart", id: "chart", "aria-label": "Deliveries per hour" }, h("p", { class: "muted" }, "Loading the chart…"));
  let cursors = [""];
  let ticks = 0;

  const drawChart = async () => {
    try { await redraw(chartBox, chart); } catch (e) { chartBox.replaceChildren(h("p", { class: "muted" }, `The chart is unavailable: ${e.message}`)); }
  };
  const load = async () => {
    const p = new URLSearchParams(applied);
    p.set("limit", "25");
    const cursor = cursors[cursors.length - 1];
    if (cursor) p.set("cursor", cursor);
    const page = await api("GET", `/v1/events?${p}`);
    await redraw(body, () => {
      const rows = page.events.map((e) => h("tr", { "data-event-id": e.event.eventId },
        h("td", {}, when(e.receivedAt)),
        h("td", {}, h("a", { href: `#/events/${e.event.eventId}`, "data-key": `event-${e.event.eventId}` }, e.event.eventType)),
        h("td", { class: "wide" }, e.event.sourceProduct),
        h("td", {}, e.deliveries.failing ? badge(`${e.deliveries.failing} failing`, "failed") : null, " ",
          e.deliveries.delivered ? badge(`${e.deliveries.delivered} delivered`, "delivered") : null,
          !e.deliveries.failing && !e.deliveries.delivered ? h("span", { class: "muted" }, "no attempt") : null),
        h("td", { class: "wide" }, h("code", {}, e.event.eventId))));
      const empty = cursors.length > 1 ? "No more events." : applied.toString() ? "No event matches these filters." : "No event yet.";
      return [rows.length ? table(["Received", "Type", ["Source", "wide"], "Deliveries", ["Event id", "wide"]], rows, { id: "events-table" }) : h("p", { class: "muted" }, empty)];
    });
    await redraw(pager, () => {
      return [...pageButtons(cursors, page.nextCursor, load, "", { id: "older" }), h("span", { class: "muted" }, cursors.length === 1 ? "Newest first" : `Page ${cursors.length}`)];
    });
  };
  const form = h("form", { class: "card row", "aria-label": "Filter events" },
    field("Type", typeInput), field("Delivery", stateSelect), field("From", fromInput), field("To", toInput), apply,
    h("label", { class: "inline" }, live, "Refresh by itself"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (typeInput.value.trim()) p.set("type", typeInput.value.trim());
    if (stateSelect.value) p.set("deliveryState", stateSelect.value);
    if (fromInput.value) p.set("from", isoOf(fromInput.value));
    if (toInput.value) p.set("to", isoOf(toInput.value));
    go(p.toString() ? `#/events?${p}` : "#/events");
  });
  await Promise.all([drawChart(), load()]);
  return {
    nodes: [h("h1", {}, "Events"), chartBox, form, body, pager],
    // The list every tick on the first page; the chart (a query per endpoint over a day) once a minute.
    refresh: async () => {
      if (!live.checked || cursors.length > 1) return;
      if (++ticks % 15 === 0) await drawChart();
      await load();
    },
  };
}

async function eventView(id) {
  const path = `/v1/events/${encodeURIComponent(id)}`;
  const [{ subscriptions }, first] = await Promise.all([api("GET", "/v1/subscriptions"), api("GET", path)]);
  const urls = new Map(subscriptions.map((x) => [x.id, x.url]));
  const list = h("div", { id: "deliveries" });
  const draw = (detail) => redraw(list, () => {
    const sections = detail.deliveries.map((d) => {
      const replay = h("button", { type: "button", class: "replay-one", "data-key": `replay-${d.subscriptionId}` }, "Replay to this endpoint");
      replay.addEventListener("click", action(replay, async () => {
        await api("POST", `${path}/replay`, { subscriptionId: d.subscriptionId });
        showInfo("Queued again; the new attempt appears below.");
        await draw(await api("GET", path));
      }));
      const attempts = [...d.attempts].sort((a, b) => a.number - b.number).map((a) => {
        const ok = a.statusCode && a.statusCode >= 200 && a.statusCode < 300;
        return h("li", { class: ok ? "ok attempt" : "bad attempt" },
          h("strong", {}, `Attempt ${a.number}`), " · ", when(a.at), " · ",
          h("span", { class: "status" }, a.statusCode ? `HTTP ${a.statusCode}` : a.errorKind || "no answer"),
          a.errorKind && a.statusCode ? ` (${a.errorKind})` : null, ` · ${a.durationMs} ms`,
          a.responseExcerpt ? h("pre", {}, a.responseExcerpt) : null);
      });
      if (d.nextAttemptAt) attempts.push(h("li", { class: "next" }, h("strong", {}, "Next retry"), " · ", when(d.nextAttemptAt)));
      return h("section", { class: "card delivery", "data-subscription-id": d.subscriptionId, "data-state": d.state },
        h("div", { class: "row" }, h("h3", {}, urls.get(d.subscriptionId) || `${d.subscriptionId} (deleted)`), badge(d.state), replay),
        h("p", { class: "muted" }, `Endpoint ${d.subscriptionId}`),
        h("ol", { class: "timeline", "aria-label": "Attempts" }, attempts.length ? attempts : h("li", {}, "No attempt yet.")));
    });
    return sections.length ? sections : [h("p", { class: "muted" }, "No endpoint of yours has been sent this event.")];
  });
  const replayAll = h("button", { type: "button", class: "primary", id: "replay-all" }, "Replay to every endpoint");
  replayAll.addEventListener("click", action(replayAll, async () => {
    const r = await api("POST", `${path}/replay`, {});
    showInfo(r.replayedTo.length ? `Queued again for ${r.replayedTo.length} endpoint(s).` : "Nothing queued: every endpoint is being sent to right now.");
    await draw(await api("GET", path));
  }));
  await draw(first);
  return {
    nodes: [
      h("p", {}, h("a", { href: "#/events" }, "← All events")),
      h("div", { class: "row" }, h("h1", {}, first.event.eventType), replayAll),
      h("p", { class: "muted" }, `Event ${first.event.eventId} · from ${first.event.sourceProduct} · ${when(first.event.timestamp)}`),
      h("h2", {}, "Deliveries"), list,
      h("h2", {}, "Envelope"), h("pre", { id: "envelope" }, JSON.stringify(first.event, null, 2)),
    ],
    refresh: async () => draw(await api("GET", path)),
  };
}

// ---------------------------------------------------------------- organisation: endpoints

function headersText(headers) { return Object.entries(headers || {}).map(([k, v]) => `${k}: ${v}`).join("\n"); }
function parseHeaders(text) {
  const out = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf(":");
    if (i < 1) throw new Error(`A header line must read "Name: value": ${line}`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}
function parseTypes(text) { return text.split(/[\s,]+/).filter(Boolean); }

/** A button that asks once more ("Really …?") before it does something that cannot be undone. */
function confirmButton(label, key, act, cls = "danger") {
  const b = h("button", { type: "button", class: cls, "data-key": key }, label);
  b.addEventListener("click", action(b, async () => {
    if (b.dataset.armed !== "yes") { b.dataset.armed = "yes"; b.textContent = `Really ${label.toLowerCase()}?`; return; }
    await act();
  }));
  return b;
}

function deleteButton(key, remove) { return confirmButton("Delete", key, remove); }

async function subscriptionsView() {
  const secretSlot = h("div", {});
  const list = h("div", {});
  const draw = () => redraw(list, async () => {
    const { subscriptions } = await api("GET", "/v1/subscriptions");
    const rows = subscriptions.map((sub) => {
      const key = (what) => `${what}-${sub.id}`;
      const toggle = h("button", { type: "button", class: "toggle", "data-key": key("toggle") }, sub.enabled ? "Disable" : "Enable");
      toggle.addEventListener("click", action(toggle, async () => { await api("PATCH", `/v1/subscriptions/${sub.id}`, { enabled: !sub.enabled }); await draw(); }));
      const rotate = h("button", { type: "button", class: "rotate", "data-key": key("rotate") }, "Rotate secret");
      rotate.addEventListener("click", action(rotate, async () => {
        const r = await api("POST", `/v1/subscriptions/${sub.id}/secret/rotate`);
        secretSlot.replaceChildren(secretBox(r.secret, `New signing secret for ${sub.url}; the old one keeps signing until ${when(r.previousSecretsValidUntil)}`));
      }));
      const test = h("button", { type: "button", class: "send-test", "data-key": key("test") }, "Send test");
      test.addEventListener("click", action(test, async () => {
        const r = await api("POST", `/v1/subscriptions/${sub.id}/test`);
        secretSlot.replaceChildren(h("p", { class: "card", role: "status" }, "Test event queued: ", h("a", { href: `#/events/${r.eventId}` }, r.eventId)));
      }));
      const del = deleteButton(key("delete"), async () => { await api("DELETE", `/v1/subscriptions/${sub.id}`); await draw(); });
      const since = h("input", { type: "datetime-local", class: "recover-since", "data-key": key("since") });
      const recover = h("button", { type: "button", class: "recover", "data-key": key("recover") }, "Resend failures since");
      recover.addEventListener("click", action(recover, async () => {
        if (!since.value) throw new Error("Choose the time to resend failed deliveries from.");
        const r = await api("POST", `/v1/subscriptions/${sub.id}/recover`, { since: isoOf(since.value) });
        showInfo(`${r.recovered.length} failed deliver${r.recovered.length === 1 ? "y" : "ies"} queued again.`);
      }));
      return h("tr", { "data-subscription-id": sub.id },
        h("td", {}, h("code", {}, sub.url), sub.description ? h("div", { class: "muted" }, sub.description) : null, editForm(sub, draw)),
        h("td", {}, sub.eventTypes.join(", ")),
        h("td", {}, sub.enabled ? badge("enabled", "on") : badge("disabled", "off"), sub.disabledReason ? h("div", { class: "muted disabled-reason" }, sub.disabledReason) : null),
        h("td", {}, h("div", { class: "row" }, test, toggle, rotate, del), h("div", { class: "row" }, field("Since", since), recover)));
    });
    return [rows.length ? table(["Endpoint", "Event types", "State", "Actions"], rows, { id: "subscriptions-table" }) : h("p", { class: "muted" }, "No endpoint yet: add one above.")];
  });
  const url = h("input", { id: "new-url", type: "url", required: true, placeholder: "https://example.com/webhooks" });
  const types = h("input", { id: "new-types", required: true, value: "*", placeholder: "candidate.*, payroll.completed" });
  const description = h("input", { id: "new-description" });
  const headers = h("textarea", { id: "new-headers", placeholder: "X-Team: payroll" });
  const create = h("button", { class: "primary", type: "submit", id: "create-subscription" }, "Add endpoint");
  const form = h("form", { class: "card", "aria-labelledby": "new-sub" }, h("h2", { id: "new-sub" }, "Add an endpoint"),
    h("div", { class: "row" }, field("URL", url), field("Event types (comma separated; * for all)", types), field("Description", description), field("Extra headers (one per line)", headers), create));
  form.addEventListener("submit", action(create, async () => {
    const body = { url: url.value.trim(), eventTypes: parseTypes(types.value) };
    if (description.value.trim()) body.description = description.value.trim();
    if (headers.value.trim()) body.headers = parseHeaders(headers.value);
    const sub = await api("POST", "/v1/subscriptions", body);
    secretSlot.replaceChildren(secretBox(sub.secret, `Signing secret for ${sub.url}`));
    form.reset();
    await draw();
  }));
  await draw();
  return { nodes: [h("h1", {}, "Endpoints"), secretSlot, form, list] };
}

function editForm(sub, redrawList) {
  const url = h("input", { type: "url", value: sub.url, class: "edit-url" });
  const types = h("input", { value: sub.eventTypes.join(", "), class: "edit-types" });
  const description = h("input", { value: sub.description || "" });
  const headers = h("textarea", { class: "edit-headers" }, headersText(sub.headers));
  const rate = h("input", { type: "number", min: 1, max: 1000, value: sub.rateLimit || "" });
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const form = h("form", { class: "row" }, field("URL", url), field("Event types", types), field("Description", description),
    field("Extra headers", headers), field("Deliveries per second (empty: no limit)", rate), save);
  const details = h("details", { "data-key": `edit-${sub.id}` }, h("summary", {}, "Edit"), form);
  form.addEventListener("submit", action(save, async () => {
    await api("PATCH", `/v1/subscriptions/${sub.id}`, {
      url: url.value.trim(), eventTypes: parseTypes(types.value), description: description.value.trim() || null,
      headers: parseHeaders(headers.value), rateLimit: rate.value ? Number(rate.value) : null,
    });
    showInfo("Saved.");
    details.removeAttribute("open");
    await redrawList();
  }));
  return details;
}

// ---------------------------------------------------------------- organisation: sources

async function sourcesView() {
  const list = h("div", {});
  const draw = () => redraw(list, async () => {
    const { sources } = await api("GET", "/v1/sources");
    const rows = sources.map((src) => h("tr", { "data-source-id": src.id },
      h("td", {}, h("a", { href: `#/sources/${src.id}` }, src.provider), src.description ? h("div", { class: "muted" }, src.description) : null),
      h("td", {}, h("code", { class: "source-url" }, src.url), " ", copyButton(src.url, "Copy the URL to give the provider")),
      h("td", { class: "wide" }, when(src.createdAt)),
      h("td", {}, h("a", { href: `#/sources/${src.id}` }, "Requests"), " ",
        deleteButton(`delete-${src.id}`, async () => { await api("DELETE", `/v1/sources/${src.id}`); await draw(); }))));
    return [rows.length ? table(["Provider", "URL to give the provider", ["Created", "wide"], ""], rows, { id: "sources-table" }) : h("p", { class: "muted" }, "No source yet.")];
  });
  const provider = h("select", { id: "new-provider" }, PROVIDERS.map((p) => h("option", { value: p }, p)));
  const secret = h("input", { id: "new-secret", type: "password", required: true, autocomplete: "one-time-code" });
  const description = h("input", { id: "new-source-description" });
  const create = h("button", { class: "primary", type: "submit", id: "create-source" }, "Add source");
  const form = h("form", { class: "card", "aria-labelledby": "new-src" }, h("h2", { id: "new-src" }, "Add a source"),
    h("p", { class: "muted" }, "A provider's webhooks (Stripe, GitHub, any Standard Webhooks sender, …) checked with its signing secret, then put on the bus as events."),
    h("div", { class: "row" }, field("Provider", provider), field("Signing secret (never shown again)", secret), field("Description", description), create));
  form.addEventListener("submit", action(create, async () => {
    const body = { provider: provider.value, secret: secret.value };
    if (description.value.trim()) body.description = description.value.trim();
    const src = await api("POST", "/v1/sources", body);
    form.reset();
    go(`#/sources/${src.id}`);
  }));
  await draw();
  return { nodes: [h("h1", {}, "Sources"), form, list] };
}

async function sourceView(id) {
  const src = await api("GET", `/v1/sources/${encodeURIComponent(id)}`);
  const outcome = h("select", { id: "filter-outcome" }, ["", "accepted", "refused", "duplicate", "handshake", "ignored", "failed"].map((o) => h("option", { value: o }, o || "any")));
  const log = h("div", { id: "requests" });
  const draw = () => redraw(log, async () => {
    const p = new URLSearchParams({ limit: "50" });
    if (outcome.value) p.set("outcome", outcome.value);
    const page = await api("GET", `/v1/sources/${encodeURIComponent(id)}/requests?${p}`);
    const rows = page.requests.map((r) => h("tr", { "data-outcome": r.outcome },
      h("td", {}, when(r.receivedAt)), h("td", { class: "wide" }, r.method), h("td", {}, badge(r.outcome)), h("td", {}, r.status),
      h("td", { class: "reason" }, r.reason || ""),
      h("td", {}, r.eventId ? h("a", { href: `#/events/${r.eventId}` }, r.eventType || r.eventId) : "")));
    return [rows.length ? table(["Received", ["Method", "wide"], "Outcome", "Answered", "Reason", "Event"], rows, { id: "requests-table" })
      : h("p", { class: "muted" }, outcome.value ? "No request with this outcome (the newest 50 are shown)." : "No request yet: give the provider the URL above.")];
  });
  outcome.addEventListener("change", () => draw().catch(showError));
  await draw();
  return {
    nodes: [
      h("p", {}, h("a", { href: "#/sources" }, "← All sources")),
      h("h1", {}, `${src.provider} source`),
      h("div", { class: "card" }, h("p", {}, "URL to give the provider:"), h("p", { class: "row" }, h("code", { id: "source-url" }, src.url), copyButton(src.url, "Copy the URL to give the provider", "copy-url")),
        src.description ? h("p", { class: "muted" }, src.description) : null),
      h("h2", {}, "Requests received"), h("div", { class: "row" }, field("Outcome", outcome)), log,
    ],
    refresh: draw,
  };
}

// ---------------------------------------------------------------- operator

async function integrationsView() {
  const slot = h("div", {});
  const list = h("div", {});
  const draw = () => redraw(list, async () => {
    const { integrations } = await api("GET", "/v1/integrations");
    const rows = integrations.map((i) => {
      const path = `/v1/integrations/${i.source}/${i.target}`;
      const name = `${i.source} → ${i.target}`;
      const sw = h("button", { type: "button", role: "switch", "aria-checked": String(i.enabled), "aria-label": `${name} on`, class: "switch", disabled: !i.configured, "data-key": `switch-${i.source}-${i.target}` }, i.enabled ? "On" : "Off");
      sw.addEventListener("click", action(sw, async () => { await api("PUT", path, { enabled: !i.enabled }); await draw(); }));
      const url = h("input", { type: "url", value: i.url || "", "aria-label": `${name} endpoint`, placeholder: "https://nexus.example/relay", "data-key": `url-${i.source}-${i.target}` });
      const save = h("button", { type: "submit" }, i.configured ? "Repoint" : "Configure");
      const form = h("form", { class: "row" }, url, save);
      form.addEventListener("submit", action(save, async () => {
        const r = await api("PUT", path, { url: url.value.trim() });
        if (r.secret) slot.replaceChildren(secretBox(r.secret, `Signing secret for ${name}`));
        url.blur();
        await draw();
      }));
      return h("tr", { "data-integration": `${i.source}-${i.target}` },
        h("td", {}, h("strong", {}, name), h("div", { class: "muted" }, i.eventTypes.join(", "))),
        h("td", {}, badge(i.state, i.state === "on" ? "on" : i.state === "failing" ? "failing" : "off"), i.disabledReason ? h("div", { class: "muted" }, i.disabledReason) : null),
        h("td", {}, `${i.lastDay.delivered} delivered, ${i.lastDay.failed} failed`, i.lastEvent ? h("div", { class: "muted" }, `last: ${i.lastEvent.eventType} ${when(i.lastEvent.at)}`) : null),
        h("td", {}, sw), h("td", {}, form));
    });
    return [table(["Integration", "State", "Last day", "Switch", "Endpoint"], rows, { id: "integrations-table" })];
  });
  await draw();
  return { nodes: [h("h1", {}, "Integrations"), slot, list], refresh: draw };
}

async function deadLettersView() {
  const list = h("div", {});
  const pager = h("div", { class: "pager" });
  let cursors = [""];
  const draw = async () => {
    const p = new URLSearchParams({ limit: "50" });
    const cursor = cursors[cursors.length - 1];
    if (cursor) p.set("cursor", cursor);
    const page = await api("GET", `/v1/dead-letters?${p}`);
    const letterPath = (d) => `/v1/dead-letters/${d.eventId}/${encodeURIComponent(d.subscriptionId)}`;
    await redraw(list, () => {
      const rows = page.deadLetters.map((d) => {
        const replay = h("button", { type: "button", class: "replay-dead-letter", "data-key": `replay-${d.eventId}-${d.subscriptionId}` }, "Replay");
        replay.addEventListener("click", action(replay, async () => {
          await api("POST", `${letterPath(d)}/replay`);
          showInfo(`Queued again: ${d.eventType || d.eventId} to ${d.subscriptionId}.`);
          await draw();
        }));
        const dismiss = confirmButton("Dismiss", `dismiss-${d.eventId}-${d.subscriptionId}`, async () => {
          await api("DELETE", letterPath(d));
          showInfo(`Dismissed: ${d.eventType || d.eventId} to ${d.subscriptionId} stays failed in its organisation's log.`);
          await draw();
        }, "dismiss-dead-letter");
        const last = d.lastStatusCode ? ` (last HTTP ${d.lastStatusCode})` : d.lastErrorKind ? ` (last: ${d.lastErrorKind})` : "";
        return h("tr", { "data-event-id": d.eventId },
          h("td", {}, when(d.exhaustedAt)), h("td", {}, d.organizationId), h("td", {}, d.eventType, h("div", { class: "muted" }, h("code", {}, d.eventId))),
          h("td", {}, d.subscriptionId), h("td", {}, `${d.attempts}${last}`),
          h("td", {}, h("div", { class: "row" }, replay, dismiss)));
      });
      const empty = cursors.length > 1 ? "No more dead letters." : "No exhausted delivery: nothing is waiting for a person.";
      return [rows.length ? table(["Given up", "Organisation", "Event", "Endpoint", "Attempts", ""], rows, { id: "dead-letters-table" }) : h("p", { class: "muted" }, empty)];
    });
    await redraw(pager, () => {
      return pageButtons(cursors, page.nextCursor, draw, "");
    });
  };
  await draw();
  return {
    nodes: [h("h1", {}, "Dead letters"),
      h("p", { class: "muted" }, "Deliveries that failed every attempt of the schedule, from every organisation. Replay sends the event again as the pair's next attempt (its endpoint must still exist and be enabled); dismiss takes it off this list and leaves it failed in its organisation's log."),
      list, pager],
    refresh: async () => { if (cursors.length === 1) await draw(); },
  };
}

/** A progress bar with its figures as text beside it (the bar alone says nothing to a screen reader). */
function progress(done, total, label) {
  return h("div", { class: "progress" },
    h("progress", { max: String(Math.max(total, 1)), value: String(Math.min(done, total)), "aria-label": label }),
    h("span", {}, `${done} of ${total}`));
}

function runStatus(run) {
  return badge(run.status, run.status === "completed" ? "delivered" : run.status === "failed" ? "failed" : "retrying");
}

async function payrollView() {
  const list = h("div", {});
  const pager = h("div", { class: "pager" });
  const plans = h("div", {});
  let cursors = [""];
  const draw = async () => {
    const p = new URLSearchParams({ limit: "25" });
    const cursor = cursors[cursors.length - 1];
    if (cursor) p.set("cursor", cursor);
    const [page, { payrollSchedules }] = await Promise.all([api("GET", `/v1/payroll-runs?${p}`), api("GET", "/v1/payroll-schedules")]);
    await redraw(list, () => {
      const rows = page.payrollRuns.map((r) => {
        const path = `#/payroll/${encodeURIComponent(r.organizationId)}/${encodeURIComponent(r.payrollRunId)}`;
        return h("tr", { "data-run": `${r.organizationId}/${r.payrollRunId}`, "data-status": r.status },
          h("td", {}, h("a", { href: path }, r.period), h("div", { class: "muted" }, h("code", {}, r.payrollRunId))),
          h("td", {}, r.organizationId),
          h("td", {}, runStatus(r), r.reason ? h("div", { class: "muted reason" }, r.reason) : null),
          h("td", {}, progress(r.progress.chunksDone, r.progress.chunksTotal, `chunks of ${r.payrollRunId}`),
            h("div", { class: "muted" }, `${r.progress.employeesDone} of ${r.progress.employeesTotal} employees`)),
          h("td", { class: "num" }, r.totals ? `€ ${r.totals.net}` : ""),
          h("td", { class: "wide" }, when(r.createdAt)));
      });
      const empty = cursors.length > 1 ? "No more runs." : "No payroll run yet: Paylinq asks for them, or a schedule below does.";
      return [rows.length ? table(["Period", "Organisation", "Status", "Chunks", ["Net paid", "num"], ["Asked for", "wide"]], rows, { id: "payroll-runs-table" }) : h("p", { class: "muted" }, empty)];
    });
    await redraw(pager, () => {
      return pageButtons(cursors, page.nextCursor, draw, "-runs");
    });
    await redraw(plans, () => {
      const rows = payrollSchedules.map((x) => h("tr", { "data-schedule": x.organizationId },
        h("td", {}, x.organizationId),
        h("td", {}, `asked on day ${x.requestDay}, paid on day ${x.payDay}`, h("div", { class: "muted" }, `from ${x.firstPeriod}`)),
        h("td", {}, x.nextRequest ? `${x.nextRequest.on} (${x.nextRequest.period})` : "", x.nextRequest ? h("div", { class: "muted" }, h("code", {}, x.nextRequest.input)) : null),
        h("td", {}, x.lastTick ? [badge(x.lastTick.outcome, x.lastTick.outcome === "requested" ? "delivered" : "retrying"), h("div", { class: "muted" }, `${when(x.lastTick.at)}: ${x.lastTick.detail}`)] : h("span", { class: "muted" }, "not due yet"))));
      return [rows.length ? table(["Organisation", "Schedule", "Next asks for", "Last tick"], rows, { id: "payroll-schedules-table" }) : h("p", { class: "muted" }, "No organisation has a monthly schedule.")];
    });
  };
  await draw();
  return {
    nodes: [h("h1", {}, "Payroll runs"),
      h("p", { class: "muted" }, "Every organisation's runs, newest first, with their progress while their chunks are computed. A run's page has its totals, the employees it did not pay and why, and links to its bank file, journal and report."),
      list, pager, h("h2", {}, "Monthly schedules"), plans],
    refresh: async () => { if (cursors.length === 1) await draw(); },
  };
}

async function payrollRunView(organizationId, runId) {
  const body = h("div", {});
  let shown = "running";
  const draw = async () => { await redraw(body, async () => {
    const r = await api("GET", `/v1/payroll-runs/${encodeURIComponent(runId)}?organizationId=${encodeURIComponent(organizationId)}`);
    shown = r.status;
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Organisation"), h("dd", {}, r.organizationId),
      h("dt", {}, "Status"), h("dd", { id: "run-status" }, runStatus(r), r.reason ? ` ${r.reason}` : ""),
      h("dt", {}, "Pay date"), h("dd", {}, r.payDate),
      h("dt", {}, "Rule table"), h("dd", {}, r.ruleTable),
      h("dt", {}, "Chunks"), h("dd", {}, progress(r.progress.chunksDone, r.progress.chunksTotal, "chunks done")),
      h("dt", {}, "Employees"), h("dd", {}, `${r.progress.employeesDone} of ${r.progress.employeesTotal} lines computed`));
    const t = r.totals;
    const totals = t ? table(["Employees paid", ["Gross", "num"], ["Pension", "num"], ["Wage tax", "num"], ["Deductions", "num"], ["Net", "num"], ["Employer cost", "num"]],
      [h("tr", { id: "run-totals" }, h("td", {}, String(t.employees)), ...[t.gross, t.pension, t.wageTax, t.deductions, t.net, t.employerCost].map((v) => h("td", { class: "num" }, `€ ${v}`)))]) : null;
    const files = [["sepa", "SEPA bank file (pain.001)"], ["journal", "Journal"], ["report", "Run report"]].filter(([name]) => r.links?.[name]);
    const links = files.length ? h("ul", { id: "run-files" }, files.map(([name, text]) => h("li", {}, h("a", { href: r.links[name], rel: "noreferrer", "data-file": name, "data-key": `file-${name}` }, text)))) : null;
    const rejected = (r.rejected || []).map((x) => h("tr", {}, h("td", {}, String(x.line)), h("td", {}, x.employeeId || ""), h("td", { class: "reason" }, x.reason)));
    return [facts,
      totals ? [h("h2", {}, "Totals"), totals] : null,
      links ? [h("h2", {}, "Files"), h("p", { class: "muted small" }, "Each link works for 15 minutes: reload the page for new ones."), links] : null,
      r.status === "completed" ? [h("h2", {}, "Not paid"), rejected.length ? table(["Line", "Employee", "Why"], rejected, { id: "run-rejected" }) : h("p", { class: "muted" }, "Every line was paid.")] : null];
  }); return shown; };
  // Refreshes while the run is computed; a finished run does not change (its links last 15 minutes).
  let status = "running";
  const drawing = async () => { if (status === "running") status = await draw(); };
  await drawing();
  return { nodes: [h("p", {}, h("a", { href: "#/payroll" }, "← Payroll runs")), h("h1", {}, `Payroll run ${runId}`), body], refresh: drawing };
}

// ---------------------------------------------------------------- tenants (operators)

function tenantStatus(t) {
  const kind = { active: "delivered", failed: "failed", deprovisioned: "off" }[t.status] || "retrying";
  return badge(t.status, kind);
}

/** Where a tenant stands: its failure, or the step it is on with that step's note or error. */
function tenantWhere(t) {
  if (t.failure) return h("div", { class: "muted reason" }, `${t.failure.step}: ${t.failure.reason}`);
  const step = t.steps.find((s) => s.status !== "done");
  if (!step || t.status !== "provisioning") return null;
  return h("div", { class: "muted" }, `${step.step}${step.lastError ? `: ${step.lastError}` : step.note ? `: ${step.note}` : ""}`);
}

async function tenantsView() {
  const list = h("div", {});
  const pager = h("div", { class: "pager" });
  const fleetBox = h("div", {});
  let cursors = [""];
  const draw = async () => {
    const p = new URLSearchParams({ limit: "25" });
    const cursor = cursors[cursors.length - 1];
    if (cursor) p.set("cursor", cursor);
    const [page, fleet] = await Promise.all([api("GET", `/v1/tenants?${p}`), api("GET", "/v1/vps")]);
    await redraw(list, () => {
      const rows = page.tenants.map((t) => {
        const done = t.steps.filter((s) => s.status === "done").length;
        return h("tr", { "data-tenant": t.organizationId, "data-status": t.status },
          h("td", {}, h("a", { href: `#/tenants/${encodeURIComponent(t.organizationId)}` }, t.name), h("div", { class: "muted" }, h("code", {}, t.organizationId))),
          h("td", {}, `${t.tier}, ${t.deploymentType}`, h("div", { class: "muted" }, t.placement ? t.placement.vpsName : "not placed")),
          h("td", {}, tenantStatus(t), tenantWhere(t)),
          h("td", {}, progress(done, t.steps.length, `steps of ${t.organizationId}`)),
          h("td", { class: "wide" }, when(t.createdAt)));
      });
      const empty = cursors.length > 1 ? "No more tenants." : "No tenant yet: the Portal's organization.created, or POST /v1/tenants, makes one.";
      return [rows.length ? table(["Tenant", "Plan and place", "Status", "Steps", ["Asked for", "wide"]], rows, { id: "tenants-table" }) : h("p", { class: "muted" }, empty)];
    });
    await redraw(pager, () => {
      return pageButtons(cursors, page.nextCursor, draw, "-tenants");
    });
    await redraw(fleetBox, () => {
      const st = fleet.statistics;
      const pct = (v) => (v === null || v === undefined ? "" : `${Math.round(v)}%`);
      const rows = fleet.vps.map((v) => h("tr", { "data-vps": v.name },
        h("td", {}, v.name, h("div", { class: "muted" }, v.ip)),
        h("td", {}, v.deploymentType === "dedicated" ? `dedicated to ${v.organizationId || "?"}` : "shared"),
        h("td", {}, v.deploymentType === "shared" ? progress(v.tenants.length, v.maxTenants, `slots of ${v.name}`) : String(v.tenants.length)),
        h("td", {}, badge(v.status, v.status === "active" ? "on" : "off")),
        h("td", {}, v.usage ? `cpu ${pct(v.usage.cpu)}, memory ${pct(v.usage.memory)}, disk ${pct(v.usage.disk)}` : h("span", { class: "muted" }, "not reported"))));
      const summary = h("p", { id: "fleet-statistics" },
        `${st.totalVps} VPS (${st.sharedVps} shared, ${st.dedicatedVps} dedicated, ${st.drainingVps} draining); ${st.totalTenants} tenants; ${st.freeSharedSlots} of ${st.sharedSlots} shared slots free`);
      return [summary, rows.length ? table(["VPS", "Kind", "Tenants", "Status", "Usage"], rows, { id: "fleet-table" }) : h("p", { class: "muted" }, "No VPS yet: POST /v1/vps registers a shared one.")];
    });
  };
  await draw();
  return {
    nodes: [h("h1", {}, "Tenants"),
      h("p", { class: "muted" }, "Every customer organisation's tenant, newest first, with the step it is on. A tenant's page shows each step's time, attempts and last error, and resumes a failed one."),
      list, pager, h("h2", {}, "VPS fleet"), fleetBox],
    refresh: async () => { if (cursors.length === 1) await draw(); },
  };
}

async function tenantView(id) {
  const body = h("div", {});
  const draw = async () => redraw(body, async () => {
    const t = await api("GET", `/v1/tenants/${encodeURIComponent(id)}`);
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Organisation"), h("dd", {}, `${t.name} (${t.organizationId})`),
      h("dt", {}, "Status"), h("dd", { id: "tenant-status" }, tenantStatus(t), t.failure ? ` ${t.failure.step}: ${t.failure.reason}` : ""),
      h("dt", {}, "URL"), h("dd", {}, h("code", {}, t.url)),
      h("dt", {}, "Plan"), h("dd", {}, `${t.tier}, ${t.deploymentType}; ${t.products.join(", ")}`),
      h("dt", {}, "Runs on"), h("dd", {}, t.placement ? t.placement.vpsName : "not placed"),
      h("dt", {}, "Contact"), h("dd", {}, t.contactEmail));
    const rows = t.steps.map((s) => h("tr", { "data-step": s.step, "data-status": s.status },
      h("td", {}, s.step),
      h("td", {}, badge(s.status, { done: "delivered", failed: "failed", running: "retrying" }[s.status] || "off")),
      h("td", {}, String(s.attempts)),
      h("td", {}, when(s.startedAt), s.finishedAt ? h("div", { class: "muted" }, `done ${when(s.finishedAt)}`) : null),
      h("td", { class: "reason" }, s.note || "", s.lastError ? h("div", { class: "muted" }, `last error: ${s.lastError}`) : null)));
    const buttons = [];
    if (t.status === "failed") {
      const retry = h("button", { type: "button", id: "retry-tenant", "data-key": "retry-tenant" }, "Resume from placement");
      retry.addEventListener("click", action(retry, async () => { await api("POST", `/v1/tenants/${encodeURIComponent(id)}/retry`); showInfo(`Resumed: ${id} goes on from placement.`); await draw(); }));
      buttons.push(retry);
    }
    if (!["deprovisioning", "deprovisioned"].includes(t.status)) {
      buttons.push(confirmButton("Take down", "deprovision-tenant", async () => {
        await api("DELETE", `/v1/tenants/${encodeURIComponent(id)}`);
        showInfo(`Taking ${id} down: ${t.deploymentType === "dedicated" ? "its VPS is snapshotted, then cancelled" : "its slot is freed"}.`);
        await draw();
      }, "danger deprovision-tenant"));
    }
    return [facts, buttons.length ? h("div", { class: "row" }, buttons) : null, h("h2", {}, "Steps"),
      table(["Step", "Status", "Attempts", "Started", "What it did"], rows, { id: "tenant-steps" })];
  });
  await draw();
  return { nodes: [h("p", {}, h("a", { href: "#/tenants" }, "← Tenants")), h("h1", {}, `Tenant ${id}`), body], refresh: draw };
}

// ---------------------------------------------------------------- start

signOut.addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  session = null;
  clearAlert();
  go("");
});
window.addEventListener("hashchange", () => { clearAlert(); render(); main.focus(); });

(async () => {
  if (sessionStorage.getItem(KEY)) {
    try { await signIn(sessionStorage.getItem(KEY)); } catch (e) { showError(e); }
  }
  render();
})();
