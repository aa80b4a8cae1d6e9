// The Praxis cluster page.  No framework: the state arrives as JSON (inlined
// for the first paint, then over server-sent events) and is rendered as HTML
// strings.  Every value from the agent goes through esc().
"use strict";

const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const shortId = (id) => (id && id.length > 16 ? id.slice(0, 8) + "…" + id.slice(-6) : id || "");
const JOINED = {bootstrap: "B", mdns: "M", inbound: "I"};

let state = JSON.parse($("#initial-state").textContent);

function ago(t) {
  let s = Math.max(0, Math.round(Date.now() / 1000 - t));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
}
const ms = (v) => (v == null ? "–" : v < 10 ? v.toFixed(2) : v.toFixed(1));
const pct = (v) => (v == null ? "–" : (v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 0) + "%");

// ------------------------------------------------------------------ picture
function layout(n) {
  // Concentric ellipses around this agent, each holding what fits at the node size.
  const pos = [], size = n > 40 ? 7 : n > 16 ? 11 : 16;
  let ring = 0, placed = 0;
  while (placed < n) {
    const rx = 230 + ring * 95, ry = 190 + ring * 70;
    const cap = Math.max(6, Math.floor((2 * Math.PI * Math.min(rx, ry)) / (size * 3.2)));
    const k = Math.min(cap, n - placed);
    for (let i = 0; i < k; i++) {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / k + ring * 0.3;
      pos.push([rx * Math.cos(a), ry * Math.sin(a)]);
    }
    placed += k; ring++;
  }
  return {pos, size};
}

function renderGraph() {
  const nodes = state.peers.concat(state.gone);
  const {pos, size} = layout(nodes.length);
  const labels = nodes.length <= 40;
  let edges = "", dots = "";
  nodes.forEach((p, i) => {
    const [x, y] = pos[i];
    edges += `<line class="${esc(p.state)}" x1="0" y1="0" x2="${x.toFixed(1)}" y2="${y.toFixed(1)}"></line>`;
    if (labels) {
      const via = JOINED[p.joined_via] || "";
      const rtt = p.rtt_ms == null || p.state === "gone" ? "" : ms(p.rtt_ms) + " ms";
      edges += `<text class="rtt" x="${(x * 0.55).toFixed(1)}" y="${(y * 0.55 - 3).toFixed(1)}">${esc([rtt, via].filter(Boolean).join(" · "))}</text>`;
    }
    const title = `${p.name} (${p.role}, ${p.state}${p.joined_via ? ", via " + p.joined_via : ""})`;
    dots += `<g class="node ${esc(p.role)} ${esc(p.state)}" data-peer-id="${esc(p.peer_id)}"><title>${esc(title)}</title>` +
      `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${size}"></circle>` +
      (labels ? `<text x="${x.toFixed(1)}" y="${(y + size + 13).toFixed(1)}">${esc(p.name)}</text>` : "") + "</g>";
  });
  const me = state.me;
  dots += `<g class="node self ${esc(me.role)}"><title>${esc(me.name)} (this agent)</title><circle cx="0" cy="0" r="22"></circle>` +
    `<text x="0" y="40">${esc(me.name)}</text></g>`;
  $("#graph").innerHTML = edges + dots;
}

// ------------------------------------------------------------------- tables
function statsCells(s) {
  if (!s) return "<td>–</td><td>–</td><td>–</td>";
  return `<td>${s.calls_per_s.toFixed(2)}</td><td class="${s.error_rate > 0 ? "bad" : ""}">${pct(s.error_rate)}</td>` +
    `<td>${ms(s.p50_ms)} / ${ms(s.p99_ms)} ms</td>`;
}

function peerRow(p) {
  const since = p.state === "gone" ? `gone ${ago(p.gone_at)} ago` + (p.reason ? ` <small>(${esc(p.reason)})</small>` : "") : `<span class="since" data-t="${p.connected_since}">${ago(p.connected_since)}</span>`;
  return `<tr class="${esc(p.state)}" data-peer-id="${esc(p.peer_id)}" data-name="${esc(p.name)}" data-state="${esc(p.state)}">` +
    `<td>${esc(p.name)}<br><small>${esc(p.role)}</small></td><td class="state ${esc(p.state)}">${esc(p.state)}</td>` +
    `<td><span class="pid" title="click to copy ${esc(p.peer_id)}" data-copy="${esc(p.peer_id)}">${esc(shortId(p.peer_id))}</span></td>` +
    `<td>${esc(p.joined_via || "–")}</td><td>${p.rtt_ms == null ? "–" : ms(p.rtt_ms) + " ms"}</td>` +
    statsCells(p.stats) + `<td>${since}</td>` +
    `<td class="tools">${esc((p.tools || []).join(", "))}</td><td class="addrs">${(p.addrs || []).map(esc).join("<br>")}</td></tr>`;
}

function renderTables() {
  const me = state.me;
  const self = {...me, state: "self", joined_via: null, rtt_ms: null, connected_since: me.started_at};
  $("#me").innerHTML = `this agent: <b>${esc(me.name)}</b> (${esc(me.role)}) <span class="pid" data-copy="${esc(me.peer_id)}" title="click to copy">${esc(shortId(me.peer_id))}</span>`;
  $("#peer-count").textContent = `${state.peers.length} connected` + (state.gone.length ? `, ${state.gone.length} gone` : "");
  $("#peers tbody").innerHTML = [self].concat(state.peers, state.gone).map(peerRow).join("");
  const names = {[me.peer_id]: me.name};
  state.peers.concat(state.gone).forEach((p) => (names[p.peer_id] = p.name));
  $("#calls tbody").innerHTML = state.calls.map((c) =>
    `<tr data-tool="${esc(c.tool)}" data-outcome="${esc(c.outcome)}"><td>${new Date(c.at * 1000).toLocaleTimeString()}</td><td>${esc(c.tool)}</td>` +
    `<td>${esc(names[c.peer_id] || shortId(c.peer_id) || "–")}</td><td class="${c.outcome === "ok" ? "" : "bad"}">${esc(c.outcome)}</td><td>${ms(c.duration_ms)}</td></tr>`).join("")
    || `<tr><td colspan="5">no calls yet</td></tr>`;
  $("#tasks tbody").innerHTML = state.tasks.map((t) =>
    `<tr><td>${esc(t.at)}</td><td class="pid" data-copy="${esc(t.id)}">${esc(shortId(t.id))}</td><td>${esc(t.tool || "–")}</td>` +
    `<td class="${t.state === "completed" ? "" : "bad"}">${esc(t.state)}</td><td>${t.duration_ms == null ? "–" : ms(t.duration_ms)}</td></tr>`).join("")
    || `<tr><td colspan="5">no tasks yet</td></tr>`;
}

// -------------------------------------------------------------- invoke form
let toolKey = "", targetKey = "";

function renderForm() {
  const ro = !state.token_required;
  $("#readonly").hidden = !ro;
  $("#token-row").hidden = ro;
  const names = state.tools.map((t) => t.name);
  if (names.join() !== toolKey) {  // rebuild only when the set changes: keep what the user typed
    const cur = $("#tool").value;
    toolKey = names.join();
    $("#tool").innerHTML = names.map((n) => `<option>${esc(n)}</option>`).join("");
    if (names.includes(cur)) $("#tool").value = cur;
    renderFields();
  }
  const name = $("#tool").value;
  const providers = [];
  if (state.me.tools.includes(name)) providers.push(state.me);
  state.peers.forEach((p) => p.tools.includes(name) && providers.push(p));
  const key = name + "|" + providers.map((p) => p.peer_id).join();
  if (key !== targetKey) {
    const cur = $("#target").value;
    targetKey = key;
    $("#target").innerHTML = `<option value="">any provider</option>` +
      providers.map((p) => `<option value="${esc(p.peer_id)}">${esc(p.name)}</option>`).join("");
    if (providers.some((p) => p.peer_id === cur)) $("#target").value = cur;
  }
  $("#invoke").querySelectorAll("select, input, textarea, button").forEach((el) => (el.disabled = ro));
}

function renderFields() {
  const tool = state.tools.find((t) => t.name === $("#tool").value);
  const schema = (tool && tool.inputSchema) || {};
  const props = schema.properties || {}, req = new Set(schema.required || []);
  $("#fields").innerHTML = (tool && tool.description ? `<p class="note">${esc(tool.description)}</p>` : "") +
    Object.entries(props).map(([k, s]) => {
      const label = `${esc(k)}${req.has(k) ? " *" : ""} <small>${esc(s.description || s.type || "")}</small>`;
      const attrs = `name="${esc(k)}" data-type="${esc(s.type || "json")}"`;
      let input;
      if (Array.isArray(s.enum)) input = `<select ${attrs}>${req.has(k) ? "" : "<option></option>"}${s.enum.map((v) => `<option ${v === s.default ? "selected" : ""}>${esc(v)}</option>`).join("")}</select>`;
      else if (s.type === "boolean") input = `<input type="checkbox" ${attrs} ${s.default ? "checked" : ""}>`;
      else if (s.type === "integer" || s.type === "number") input = `<input type="number" step="${s.type === "integer" ? 1 : "any"}" ${attrs} placeholder="${esc(s.default ?? "")}">`;
      else if (s.type === "string") input = `<input type="text" ${attrs} placeholder="${esc(s.default ?? "")}">`;
      else input = `<textarea rows="3" ${attrs} placeholder="JSON or text"></textarea>`;
      return `<label>${label}${input}</label>`;
    }).join("");
  targetKey = "";
}

function collectArgs() {
  const args = {};
  $("#fields").querySelectorAll("[name]").forEach((el) => {
    const t = el.dataset.type;
    if (t === "boolean") { args[el.name] = el.checked; return; }
    if (el.value === "") return;  // optional and empty: the tool's default applies
    if (t === "integer" || t === "number") args[el.name] = Number(el.value);
    else if (t === "string") args[el.name] = el.value;
    else {  // untyped or mixed: JSON when it parses, else the text itself
      try { args[el.name] = JSON.parse(el.value); } catch (e) { args[el.name] = el.value; }
    }
  });
  return args;
}

async function invoke(ev) {
  ev.preventDefault();
  const out = $("#answer");
  const args = collectArgs();
  const body = {arguments: args};
  if ($("#target").value) body.peer_id = $("#target").value;
  const token = $("#token").value;
  sessionStorage.setItem("praxis-token", token);
  out.dataset.status = "running";
  out.textContent = "…";
  try {
    const r = await fetch(`/tools/${encodeURIComponent($("#tool").value)}/invoke`, {
      method: "POST",
      headers: {"Content-Type": "application/json", ...(token ? {Authorization: "Bearer " + token} : {})},
      body: JSON.stringify(body),
    });
    const text = await r.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON: show as is */ }
    out.dataset.status = r.ok ? "ok" : "error";
    out.textContent = `HTTP ${r.status}\n${shown}`;
  } catch (e) {
    out.dataset.status = "error";
    out.textContent = "request failed: " + e.message;
  }
}

// ----------------------------------------------------------------- plumbing
function render() {
  renderGraph();
  renderTables();
  renderForm();
}

function connect() {
  const es = new EventSource("/ui/events");
  es.addEventListener("state", (ev) => {
    state = JSON.parse(ev.data);
    render();
  });
  es.onopen = () => { $("#banner").hidden = true; $("#live").classList.remove("off"); };
  // EventSource retries by itself (the stream sets retry:), the banner says so.
  es.onerror = () => { $("#banner").hidden = false; $("#live").classList.add("off"); };
}

document.addEventListener("click", (ev) => {
  const el = ev.target.closest("[data-copy]");
  if (!el) return;
  const text = el.dataset.copy;
  const done = () => { el.classList.add("copied"); setTimeout(() => el.classList.remove("copied"), 800); };
  if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => window.prompt("PeerID", text));
  else window.prompt("PeerID", text);
});
$("#tool").addEventListener("change", () => { renderFields(); renderForm(); });
$("#invoke").addEventListener("submit", invoke);
$("#token").value = sessionStorage.getItem("praxis-token") || "";
setInterval(() => document.querySelectorAll(".since").forEach((el) => (el.textContent = ago(+el.dataset.t))), 1000);
render();
connect();
