// The operator pages: sign in with a token, then one's lots pushed live (server-sent events read
// with fetch, so the token travels in the Authorization header), device health, occupancy today,
// sessions, arrears and rejected messages. Chinese and English.
"use strict";

const TOKEN_KEY = "parking-operator-token"; // sessionStorage: gone when the tab closes
const CITY_ZONE = "Asia/Shanghai"; // the lots' default time zone: the chart's days
const RECONNECT_MS = [1000, 2000, 5000, 10000]; // back-off after a dropped stream
const STATUS = {
  open: "空闲 Open",
  almost_full: "紧张 Almost full",
  full: "已满 Full",
  closed: "关闭 Closed",
  unknown: "未知 Unknown",
};
const ISSUE = {
  silent: "静默 Silent",
  low_battery: "电量低 Low battery",
  stuck: "卡住 Stuck",
  flapping: "抖动 Flapping",
  gate_ack_missing: "道闸未确认 Gate ack missing",
};
const KIND = { bay_sensor: "地磁 Bay sensor", gate: "道闸 Gate", sign: "诱导屏 Sign" };
const DEVICE_STATUS = { online: "在线 online", offline: "离线 offline", unknown: "未上线 never heard" };
const state = { token: null, lots: new Map(), stream: null, attempts: 0, events: 0 };

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

function setConn(stateName, text) {
  const conn = document.getElementById("conn");
  conn.dataset.state = stateName;
  conn.textContent = text;
}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` }, cache: "no-store" });
  if (response.status === 401 || response.status === 403) throw new Error("unauthorized");
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

// The city's calendar day `offset` days from today, as YYYY-MM-DD (the KPIs take local days).
function localDay(offset) {
  const day = new Date(Date.now() + offset * 86400000);
  return new Intl.DateTimeFormat("en-CA", { timeZone: CITY_ZONE }).format(day);
}

function yuan(fen) {
  return `¥${(fen / 100).toFixed(2)}`;
}

function lotRow(lot) {
  const updated = lot.updated_at ? new Date(lot.updated_at).toLocaleTimeString("zh-CN") : "–";
  return h(
    "tr",
    { "data-lot-id": lot.lot_id, "data-status": lot.status },
    h("td", {}, h("strong", {}, lot.name), " ", h("small", { class: "muted" }, lot.lot_id)),
    h("td", {}, h("span", { class: `pill s-${lot.status}` }, STATUS[lot.status] || lot.status)),
    h("td", { class: "num free" }, String(lot.free)),
    h("td", { class: "num" }, String(lot.capacity)),
    h("td", { class: "num" }, String(lot.unknown)),
    h("td", { class: "muted" }, updated),
  );
}

function renderLots(changedIds) {
  const body = document.querySelector("#lots tbody");
  const rows = [...state.lots.values()].sort((a, b) => a.lot_id.localeCompare(b.lot_id)).map((lot) => {
    const row = lotRow(lot);
    if (changedIds.has(lot.lot_id)) row.classList.add("changed");
    return row;
  });
  body.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 6 }, "没有停车场 · No lots in scope"))]));
}

// Parse a text/event-stream and call onEvent(name, data) for each complete event.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

async function follow() {
  const controller = new AbortController();
  state.stream = controller;
  try {
    const response = await fetch("/v1/operator/live", {
      headers: { Authorization: `Bearer ${state.token}` },
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    setConn("live", "实时推送 · Live (pushed)");
    state.attempts = 0;
    await readEvents(response, (name, data) => {
      state.events += 1;
      document.body.dataset.events = String(state.events);
      if (name === "snapshot") state.lots = new Map(data.map((lot) => [lot.lot_id, lot]));
      if (name === "snapshot" || name === "lots") {
        for (const lot of name === "lots" ? data : []) state.lots.set(lot.lot_id, lot);
        renderLots(new Set(name === "lots" ? data.map((lot) => lot.lot_id) : []));
      }
    });
    throw new Error("stream ended");
  } catch (error) {
    if (controller.signal.aborted) return;
    setConn("down", `连接中断，重连中 · Reconnecting (${error.message})`);
    const wait = RECONNECT_MS[Math.min(state.attempts, RECONNECT_MS.length - 1)];
    state.attempts += 1;
    setTimeout(() => state.token && follow(), wait);
  }
}

// Devices by kind: how many sensors and gates are online (gates too: their own messages keep them so).
function renderDevices(devices) {
  document.getElementById("health-devices").replaceChildren(
    ...Object.entries(devices)
      .filter(([, counts]) => Object.values(counts).some((n) => n > 0))
      .map(([kind, counts]) =>
        h(
          "span",
          { class: "chip", "data-kind": kind, "data-online": counts.online },
          `${KIND[kind] || kind} `,
          ...Object.entries(DEVICE_STATUS).map(([status, label]) =>
            h("span", { "data-status": status }, `${label} `, h("b", {}, String(counts[status] || 0)), " "),
          ),
        ),
      ),
  );
}

function renderHealth(health) {
  renderDevices(health.devices || {});
  document.getElementById("health-counts").replaceChildren(
    ...Object.entries(health.counts).map(([issue, count]) =>
      h("span", { class: "chip", "data-issue": issue }, `${ISSUE[issue] || issue} `, h("b", {}, String(count))),
    ),
  );
  document.querySelector("#health tbody").replaceChildren(
    ...health.items.map((item) =>
      h(
        "tr",
        { "data-device-id": item.device_id, "data-issue": item.issue, "data-kind": item.kind },
        h("td", {}, item.device_id),
        h("td", {}, KIND[item.kind] || item.kind),
        h("td", {}, ISSUE[item.issue] || item.issue),
        h("td", {}, item.lot_id),
        h("td", { class: "muted" }, item.detail),
      ),
    ),
  );
}

function renderOccupancy(kpis) {
  const svgNs = "http://www.w3.org/2000/svg";
  const chart = document.getElementById("occupancy");
  const width = 1000;
  const height = 260;
  const pad = 36;
  const items = kpis.items;
  const step = (width - 2 * pad) / Math.max(items.length, 1);
  const node = (tag, attrs) => {
    const el = document.createElementNS(svgNs, tag);
    for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
    return el;
  };
  const nodes = [node("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "occ-axis" })];
  const topSessions = Math.max(1, ...items.map((item) => item.sessions));
  const points = [];
  items.forEach((item, index) => {
    const x = pad + index * step + step / 2;
    const barH = ((height - 2 * pad) * item.sessions) / topSessions;
    nodes.push(node("rect", { x: x - step / 3, y: height - pad - barH, width: (2 * step) / 3, height: barH, class: "occ-bar" }));
    if (item.occupancy_percent >= 0) points.push(`${x.toFixed(1)},${(height - pad - ((height - 2 * pad) * item.occupancy_percent) / 100).toFixed(1)}`);
    if (index % 6 === 0) {
      const label = node("text", { x: x - 24, y: height - 10, class: "occ-label" });
      const start = new Date(item.start);
      label.textContent = `${start.getMonth() + 1}/${start.getDate()} ${String(start.getHours()).padStart(2, "0")}:00`;
      nodes.push(label);
    }
  });
  if (points.length) nodes.push(node("polyline", { points: points.join(" "), class: "occ-line" }));
  chart.replaceChildren(...nodes);
  const s = kpis.summary;
  document.getElementById("occ-note").textContent =
    `占用率 Occupancy ${s.occupancy_percent < 0 ? "–" : s.occupancy_percent + "%"} · ` +
    `线 line = 占用率 occupancy %, 柱 bars = 会话 sessions`;
  document.getElementById("sessions").textContent =
    `${s.sessions} 次会话 sessions · 周转 turnover ${s.turnover ?? "–"} · ` +
    `平均停留 mean dwell ${s.dwell_mean_min ?? "–"} 分 min · 收款 collected ${yuan(s.collected_fen)} · ` +
    `欠费 arrears ${yuan(s.arrears_fen)} (${s.plates_in_arrears} 车牌 plates)`;
}

function renderArrears(arrears) {
  document.querySelector("#arrears tbody").replaceChildren(
    ...(arrears.items.length
      ? arrears.items.map((item) =>
          h("tr", {}, h("td", {}, item.plate), h("td", {}, item.lot_id), h("td", { class: "num" }, yuan(item.due_fen)), h("td", { class: "num" }, String(item.days_overdue))),
        )
      : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "无欠费 · No arrears"))]),
  );
}

function renderRejected(rejected) {
  document.querySelector("#rejected tbody").replaceChildren(
    ...rejected.items.map((item) =>
      h(
        "tr",
        {},
        h("td", { class: "muted" }, new Date(item.received_at).toLocaleString("zh-CN")),
        h("td", {}, item.device_id || "–"),
        h("td", {}, item.reason),
        h("td", { class: "muted" }, item.detail),
      ),
    ),
  );
}

function renderSessions(sessions) {
  const time = (at) => (at ? new Date(at).toLocaleTimeString("zh-CN") : "–");
  document.querySelector("#session-list tbody").replaceChildren(
    ...(sessions.items.length
      ? sessions.items.map((item) =>
          h(
            "tr",
            { "data-session-id": item.session_id },
            h("td", {}, item.plate || "–"),
            h("td", {}, item.lot_id),
            h("td", {}, item.state),
            h("td", { class: "muted" }, time(item.started_at)),
            h("td", { class: "muted" }, time(item.ended_at)),
            h("td", { class: "num" }, item.amount_fen === null ? "–" : yuan(item.amount_fen)),
          ),
        )
      : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "暂无会话 · No sessions"))]),
  );
}

async function loadDesk() {
  const [health, kpis, arrears, rejected, sessions] = await Promise.all([
    api("/v1/operator/device-health"),
    api(`/v1/operator/kpis?period=hour&from=${localDay(-1)}&to=${localDay(1)}`),
    api("/v1/operator/arrears?limit=20"),
    api("/v1/operator/rejected-messages?limit=20"),
    api("/v1/operator/sessions?limit=10"),
  ]);
  renderSessions(sessions);
  renderHealth(health);
  renderOccupancy(kpis);
  renderArrears(arrears);
  renderRejected(rejected);
}

async function signIn(token) {
  state.token = token;
  const error = document.getElementById("signin-error");
  try {
    await loadDesk();
  } catch (problem) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    error.textContent = problem.message === "unauthorized" ? "令牌无效或无权限 · Unknown token or not an operator" : `${problem.message}`;
    error.hidden = false;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  error.hidden = true;
  document.getElementById("desk").hidden = false;
  document.getElementById("signout").hidden = false;
  document.getElementById("who").textContent = "已登录 · Signed in";
  document.body.dataset.signedIn = "true";
  follow();
}

function signOut() {
  state.token = null;
  if (state.stream) state.stream.abort();
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById("desk").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  document.body.dataset.signedIn = "false";
  setConn("connecting", "未登录 · Signed out");
}

document.getElementById("signin").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  signIn(document.getElementById("token").value.trim());
});
document.getElementById("signout").addEventListener("click", signOut);
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
