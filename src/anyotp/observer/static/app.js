// anyotp observer: a one-page app over the observer's JSON endpoints.
// Everything rendered from data goes through textContent (never innerHTML), and
// nothing the page sends is evaluated by the application.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token");
const state = {
  view: "system",
  arg: null,
  config: { allow_kill: false },
  system: null,
  sort: { key: "pid", dir: 1 },
  filter: "",
  expanded: new Set(),
  collapsed: new Set(),
  lastCrashSeen: 0,
  history: [],
  busy: false,
  killNote: null,
};

function url(path) {
  return TOKEN ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(TOKEN)}` : path;
}

async function api(path, options) {
  const response = await fetch(url(path), options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}

// ------------------------------------------------------------------ DOM helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function pidLink(ref) {
  if (!ref) return el("span", { class: "muted", text: "–" });
  return el("a", { href: `#/process/${ref.key}`, class: "pid", text: ref.pid });
}

function dash(value) {
  return value === null || value === undefined ? "–" : value;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function fmtDuration(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

function fmtRate(value) {
  return value === null || value === undefined ? "–" : value.toFixed(1);
}

function fmtTime(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString();
}

function statusClass(status) {
  return `status st-${String(status).replace(/\s+/g, "-")}`;
}

// --------------------------------------------------------------------- views

function card(label, value, id) {
  return el("div", { class: "card" }, el("div", { class: "label", text: label }),
    el("div", { class: "value", id, text: value }));
}

const HISTORY = 120; // ticks kept for the charts: two minutes

function chart(label, key, format) {
  const points = state.history.map((h) => h[key]).filter((v) => v !== null && v !== undefined);
  const canvas = el("canvas", { width: 280, height: 70, class: "chart", "data-chart": key });
  const ctx = canvas.getContext("2d");
  if (ctx && points.length > 1) {
    const max = Math.max(...points) || 1;
    const min = Math.min(0, ...points);
    const step = canvas.width / (Math.max(points.length, 20) - 1); // fills up, then scrolls
    const x0 = canvas.width - step * (points.length - 1);
    const y = (v) => canvas.height - 4 - ((v - min) / (max - min || 1)) * (canvas.height - 8);
    ctx.beginPath();
    points.forEach((v, i) => (i ? ctx.lineTo(x0 + i * step, y(v)) : ctx.moveTo(x0, y(v))));
    ctx.strokeStyle = "#7a3ea8";
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineTo(x0 + (points.length - 1) * step, canvas.height);
    ctx.lineTo(x0, canvas.height);
    ctx.closePath();
    ctx.fillStyle = "rgba(122, 62, 168, 0.12)";
    ctx.fill();
  }
  const last = points.length ? format(points[points.length - 1]) : "–";
  const peak = points.length ? format(Math.max(...points)) : "–";
  return el("figure", { class: "card chart-card" },
    el("figcaption", {}, el("span", { class: "label", text: label }), el("span", { class: "muted", text: ` now ${last} · peak ${peak}` })),
    canvas);
}

function renderSystem(s) {
  const cards = el("div", { class: "cards" },
    card("processes", s.processes, "sys-processes"),
    card("calls / s", fmtRate(s.calls_per_second), "sys-calls"),
    card("messages / s", fmtRate(s.messages_per_second), "sys-messages"),
    card("queued messages", s.queued_messages, "sys-queued"),
    card("restarts / min", s.restarts_per_minute, "sys-restarts"),
    card("crashes / min", s.crashes_per_minute, "sys-crashes"),
    card("event-loop lag", `${(s.loop_lag * 1000).toFixed(1)} ms`, "sys-lag"),
    card("memory (RSS)", fmtBytes(s.memory_rss), "sys-memory"),
    card("uptime", fmtDuration(s.uptime), "sys-uptime"),
    card("backend", s.backend, "sys-backend"),
  );
  const rows = Object.entries(s.by_behaviour).map(([name, n]) =>
    el("tr", {}, el("td", { text: name }), el("td", { class: "num", text: n })));
  const table = el("table", { class: "small" },
    el("thead", {}, el("tr", {}, el("th", { text: "behaviour" }), el("th", { text: "processes" }))),
    el("tbody", {}, rows));
  const charts = el("div", { class: "charts" },
    chart("processes", "processes", (v) => String(v)),
    chart("calls / s", "calls_per_second", (v) => v.toFixed(1)),
    chart("event-loop lag", "loop_lag", (v) => `${(v * 1000).toFixed(1)} ms`),
    chart("memory (RSS)", "memory_rss", fmtBytes));
  return el("section", { id: "system" }, el("h2", { text: "System" }), cards,
    el("h3", { text: "Last two minutes" }), charts,
    el("h3", { text: "Processes by behaviour" }), table,
    el("p", { class: "muted", text: `${s.python} · node ${s.node} · peak lag ${(s.loop_lag_max * 1000).toFixed(1)} ms` }));
}

function treeKey(path) {
  return path.join("/");
}

function renderTreeNode(node, path) {
  const key = treeKey(path);
  const hasKids = node.children.length > 0;
  const open = hasKids && (path.length === 1 ? !state.collapsed.has(key) : state.expanded.has(key));
  const toggle = hasKids
    ? el("button", {
      class: "toggle", "aria-expanded": open ? "true" : "false", title: open ? "collapse" : "expand",
      "data-tree-key": key, text: open ? "▾" : "▸",
      onclick: () => {
        // Roots start open (remembered when collapsed), deeper levels start closed.
        const set = path.length === 1 ? state.collapsed : state.expanded;
        if (set.has(key)) set.delete(key); else set.add(key);
        refresh(true);
      },
    })
    : el("span", { class: "toggle leaf", text: "•" });
  const label = el("span", { class: "tree-label" },
    el("span", { class: statusClass(node.status), title: node.status }),
    node.id !== null ? el("span", { class: "child-id", text: node.id }) : null,
    node.pid ? pidLink(node.pid) : el("span", { class: "muted", text: "(not running)" }),
    el("span", { class: "cls", text: node.class }),
    node.message_queue_len ? el("span", { class: "badge queue", title: "mailbox length", text: `✉ ${node.message_queue_len}` }) : null,
    node.restarts ? el("span", { class: "badge restarts", title: "restarts seen by the observer", text: `↻ ${node.restarts}` }) : null,
  );
  const item = el("li", { "data-tree-key": key, "data-child-id": node.id === null ? "" : node.id },
    el("div", { class: "tree-row" }, toggle, label));
  if (open) item.append(el("ul", {}, node.children.map((c, i) => renderTreeNode(c, [...path, c.id ?? i]))));
  return item;
}

function renderTree(roots) {
  const list = el("ul", { class: "tree", id: "tree" },
    roots.map((root) => renderTreeNode(root, [root.pid ? root.pid.key : root.class])));
  return el("section", {}, el("h2", { text: "Supervision trees" }),
    roots.length ? list : el("p", { class: "muted", text: "No running processes." }),
    el("p", { class: "muted legend" },
      el("span", { class: "status st-running" }), " running ",
      el("span", { class: "status st-starting" }), " starting ",
      el("span", { class: "status st-exiting" }), " exiting ",
      el("span", { class: "status st-not-running" }), " not running"));
}

const COLUMNS = [
  ["pid", "PID"], ["name", "name"], ["class", "class"], ["behaviour", "behaviour"],
  ["status", "status"], ["message_queue_len", "mailbox"], ["reductions", "messages handled"],
  ["current_callback", "current callback"], ["memory", "memory (est.)"],
];

function pidNumber(pid) {
  const m = /(\d+)>$/.exec(pid);
  return m ? Number(m[1]) : 0;
}

function sortValue(row, key) {
  if (key === "pid") return pidNumber(row.pid);
  const v = row[key];
  return v === null || v === undefined ? "" : v;
}

function renderProcesses(rows) {
  const needle = state.filter.toLowerCase();
  const shown = rows.filter((r) => !needle || [r.pid, r.name, r.class, r.behaviour, r.status, r.current_callback]
    .some((v) => v !== null && String(v).toLowerCase().includes(needle)));
  const { key, dir } = state.sort;
  shown.sort((a, b) => {
    const x = sortValue(a, key);
    const y = sortValue(b, key);
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
  const filter = el("input", {
    id: "filter", type: "search", placeholder: "filter: PID, name, class, status…", value: state.filter,
    oninput: (e) => { state.filter = e.target.value; refresh(true); },
  });
  const head = el("tr", {}, COLUMNS.map(([k, title]) => el("th", {
    "data-sort": k, class: k === key ? (dir > 0 ? "sorted asc" : "sorted desc") : null,
    text: title, title: "sort",
    onclick: () => {
      state.sort = { key: k, dir: k === key ? -dir : (k === "pid" || k === "name" || k === "class" ? 1 : -1) };
      refresh(true);
    },
  })));
  const body = shown.map((r) => el("tr", { "data-pid": r.key, class: "clickable", onclick: () => { location.hash = `#/process/${r.key}`; } },
    el("td", {}, pidLink(r)),
    el("td", { text: dash(r.name) }),
    el("td", { text: r.class }),
    el("td", { text: r.behaviour }),
    el("td", {}, el("span", { class: statusClass(r.status) }), ` ${r.status}`),
    el("td", { class: "num mailbox", text: r.message_queue_len }),
    el("td", { class: "num", text: dash(r.reductions) }),
    el("td", { text: dash(r.current_callback) }),
    el("td", { class: "num", text: fmtBytes(r.memory) })));
  return el("section", {}, el("h2", { text: `Processes (${shown.length} of ${rows.length})` }), filter,
    el("table", { id: "processes" }, el("thead", {}, head), el("tbody", {}, body)));
}

function kv(label, value) {
  return el("tr", {}, el("th", { text: label }), el("td", {}, value));
}

function renderKill(p) {
  if (!state.config.allow_kill) return null;
  const reason = el("select", { id: "kill-reason" },
    ["kill", "shutdown", "normal", "custom…"].map((r) => el("option", { value: r, text: r })));
  const custom = el("input", { id: "kill-custom", type: "text", placeholder: "reason", hidden: true, maxlength: 200 });
  reason.addEventListener("change", () => { custom.hidden = reason.value !== "custom…"; });
  const button = el("button", {
    id: "kill", class: "danger", text: "Kill process",
    onclick: async () => {
      const chosen = reason.value === "custom…" ? custom.value.trim() : reason.value;
      if (!chosen) return;
      try {
        const result = await api(`/api/processes/${p.key}/kill`, {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ reason: chosen }),
        });
        state.killNote = `exit signal ${result.reason} sent to ${result.killed}`;
      } catch (err) {
        state.killNote = `kill failed: ${err.message}`;
      }
      refresh(true);
    },
  });
  return el("div", { class: "kill" }, el("label", {}, "exit reason ", reason), custom, button);
}

function renderDetail(p) {
  const links = p.links.length ? p.links.map((l) => [pidLink(l), " "]) : "–";
  const children = p.children.length ? p.children.map((l) => [pidLink(l), " "]) : "–";
  const messages = p.messages.length
    ? el("ol", { id: "messages" }, p.messages.map((m) => el("li", {}, el("code", { text: m }))))
    : el("p", { class: "muted", text: "The mailbox is empty." });
  return el("section", { id: "detail", "data-pid": p.key },
    el("h2", {}, "Process ", el("span", { id: "detail-pid", text: p.pid }), " ", el("span", { class: "cls", text: p.class })),
    renderKill(p),
    state.killNote ? el("p", { class: "note", id: "kill-note", text: state.killNote }) : null,
    el("table", { class: "kv" }, el("tbody", {},
      kv("registered name", dash(p.name)),
      kv("behaviour", p.behaviour),
      kv("status", [el("span", { class: statusClass(p.status) }), ` ${p.status}`]),
      kv("mailbox length", el("span", { id: "detail-mailbox", text: p.message_queue_len })),
      kv("messages handled", dash(p.reductions)),
      kv("current callback", dash(p.current_callback)),
      kv("parent", pidLink(p.parent)),
      kv("owner", pidLink(p.owner)),
      kv("links", links),
      kv("monitors", p.monitors.length ? p.monitors.join(", ") : "–"),
      kv("monitored by", p.monitored_by),
      kv("owned processes", children),
      kv("traps exits", p.trap_exit ? "yes" : "no"),
      kv("memory (estimate)", fmtBytes(p.memory)),
    )),
    el("h3", { text: "First queued messages" }), messages,
    el("h3", { text: "State (format_status)" }), el("pre", { id: "state", text: p.state }));
}

function renderGone(key) {
  return el("section", { id: "detail", "data-pid": key },
    el("h2", { text: `Process 0.${key.split(".").pop()}` }),
    state.killNote ? el("p", { class: "note", id: "kill-note", text: state.killNote }) : null,
    el("p", { class: "muted", id: "gone", text: "This process is not alive. Its supervisor may have started a new one: see the supervision tree." }));
}

function renderCrashes(crashes) {
  const items = crashes.map((c) => el("li", { class: "crash", "data-pid": c.key },
    el("div", { class: "crash-head" },
      el("span", { class: "time", text: fmtTime(c.time) }), " ",
      el("a", { href: `#/process/${c.key}`, class: "pid", text: c.pid }), " ",
      el("span", { class: "cls", text: c.class }),
      c.name ? el("span", { class: "muted", text: ` ${c.name}` }) : null,
      " exited: ", el("code", { class: "reason", text: c.reason }),
      c.supervisor ? [" · supervisor ", el("a", { href: `#/process/${c.supervisor_key}`, class: "pid", text: c.supervisor })] : null),
    c.traceback ? el("details", {}, el("summary", { text: "traceback" }), el("pre", { text: c.traceback })) : null));
  return el("section", {}, el("h2", { text: "Crash log" }),
    crashes.length ? el("ol", { class: "crashes", id: "crashes" }, items)
      : el("p", { class: "muted", text: "No crashes so far." }));
}

// -------------------------------------------------------------------- router

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const view = parts[0] || "system";
  return { view, arg: parts[1] || null };
}

async function render() {
  const { view, arg } = state;
  if (view === "system") return renderSystem(state.system || await api("/api/system"));
  if (view === "tree") return renderTree(await api("/api/tree"));
  if (view === "processes") return renderProcesses(await api("/api/processes"));
  if (view === "crashes") {
    const crashes = await api("/api/crashes");
    state.lastCrashSeen = crashes.length ? crashes[0].id : state.lastCrashSeen;
    updateBadge();
    return renderCrashes(crashes);
  }
  if (view === "process") {
    try {
      return renderDetail(await api(`/api/processes/${arg}`));
    } catch (err) {
      return renderGone(arg);
    }
  }
  return el("p", { text: `unknown page ${view}` });
}

let pending = false;
async function refresh(force) {
  if (state.busy) { pending = true; return; }
  // Don't redraw under the user's hands (an open select, a text field being typed in).
  const active = document.activeElement;
  if (!force && active && (active.tagName === "SELECT" || (active.tagName === "INPUT" && active.id !== "filter"))) return;
  state.busy = true;
  try {
    const content = await render();
    const view = document.getElementById("view");
    const openDetails = new Set([...view.querySelectorAll("details[open]")].map((d) => d.parentElement?.dataset.pid));
    const focusFilter = active && active.id === "filter";
    const caret = focusFilter ? active.selectionStart : null;
    view.replaceChildren(content);
    for (const d of view.querySelectorAll("details")) if (openDetails.has(d.parentElement?.dataset.pid)) d.open = true;
    if (focusFilter) {
      const f = document.getElementById("filter");
      f.focus();
      f.setSelectionRange(caret, caret);
    }
    document.body.dataset.view = state.view;
    document.body.dataset.rendered = String(Date.now());
  } catch (err) {
    document.getElementById("footer").textContent = `error: ${err.message}`;
  } finally {
    state.busy = false;
    if (pending) { pending = false; refresh(); }
  }
}

function route() {
  const { view, arg } = parseHash();
  if (view !== state.view || arg !== state.arg) state.killNote = null;
  state.view = view;
  state.arg = arg;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.view === view);
  }
  refresh(true);
}

function updateBadge() {
  const badge = document.getElementById("crash-badge");
  const s = state.system;
  const unseen = s && s.last_crash_id > state.lastCrashSeen;
  badge.hidden = !unseen;
  badge.textContent = unseen ? "new" : "";
}

function live() {
  const indicator = document.getElementById("live");
  const source = new EventSource(url("/api/events"));
  source.addEventListener("open", () => { indicator.textContent = "live"; indicator.className = "live on"; });
  source.addEventListener("error", () => { indicator.textContent = "reconnecting"; indicator.className = "live off"; });
  source.addEventListener("tick", (e) => {
    state.system = JSON.parse(e.data);
    state.history.push(state.system);
    if (state.history.length > HISTORY) state.history.shift();
    document.body.dataset.ticks = String(state.history.length);
    document.getElementById("footer").textContent =
      `${state.system.processes} processes · ${state.system.backend} · up ${fmtDuration(state.system.uptime)}`;
    updateBadge();
    refresh(false);
  });
}

async function start() {
  try {
    state.config = await api("/api/config");
    const nodes = await api("/api/nodes");
    const picker = document.getElementById("node-picker");
    picker.replaceChildren(...nodes.map((n) => el("option", { value: n.node, text: n.local ? `${n.node} (local)` : n.node })));
  } catch (err) {
    document.getElementById("footer").textContent = `error: ${err.message}`;
  }
  window.addEventListener("hashchange", route);
  route();
  live();
}

start();
