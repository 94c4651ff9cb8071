// The city screen: polls the public lot list every 2 s and draws districts, lots and a map.
"use strict";

const POLL_MS = 2000; // live enough for a wall screen, light on the API
const STALE_S = 600; // counts older than 10 minutes are flagged: the lot's sensors may be silent
const SVG_NS = "http://www.w3.org/2000/svg";
const STATUS = {
  open: { zh: "空闲", en: "Open" },
  almost_full: { zh: "紧张", en: "Almost full" },
  full: { zh: "已满", en: "Full" },
  closed: { zh: "关闭", en: "Closed" },
  unknown: { zh: "未知", en: "Unknown" },
};

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child);
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  return el;
}

function ageSeconds(updatedAt, now) {
  if (!updatedAt) return null;
  return Math.max(0, Math.round((now - Date.parse(updatedAt)) / 1000));
}

function formatAge(seconds) {
  if (seconds === null) return "无数据 · no data";
  if (seconds < 60) return `${seconds} 秒 s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} 分 min`;
  return `${Math.floor(seconds / 3600)} 时 h`;
}

function percent(part, whole) {
  return whole > 0 ? Math.round((100 * part) / whole) : null;
}

function statusPill(status) {
  const label = STATUS[status] || STATUS.unknown;
  return h("span", { class: `pill s-${status}` }, `${label.zh} ${label.en}`);
}

function renderTotals(lots) {
  const sum = (key) => lots.reduce((total, lot) => total + lot[key], 0);
  const capacity = sum("capacity");
  const occupancy = percent(sum("occupied"), capacity);
  document.getElementById("city-free").textContent = String(sum("free"));
  document.getElementById("city-capacity").textContent = String(capacity);
  document.getElementById("city-occupancy").textContent = occupancy === null ? "–" : `${occupancy}%`;
  document.getElementById("city-lots").textContent = String(lots.length);
  document.getElementById("city-unknown").textContent = String(
    lots.filter((lot) => lot.status === "unknown").length,
  );
}

function lotRow(lot, now) {
  const age = ageSeconds(lot.updated_at, now);
  const fill = lot.capacity > 0 ? (100 * lot.occupied) / lot.capacity : 0; // unknown is not "taken"
  return h(
    "li",
    { class: "lot", "data-lot-id": lot.lot_id, "data-status": lot.status },
    h("span", { class: "lot-name" }, h("strong", {}, lot.name), h("small", { class: "muted" }, lot.lot_id)),
    statusPill(lot.status),
    h(
      "span",
      { class: "counts" },
      h("span", { class: "free", "data-free": lot.free }, String(lot.free)),
      h("span", { class: "muted" }, ` / ${lot.capacity}`),
    ),
    h("span", { class: "bar", title: `${Math.round(fill)}%` }, h("i", { style: `width:${fill}%` })),
    h("span", { class: age !== null && age < STALE_S ? "age" : "age stale" }, formatAge(age)),
  );
}

function renderDistricts(lots, now) {
  const byDistrict = new Map();
  for (const lot of lots) {
    if (!byDistrict.has(lot.district_id)) byDistrict.set(lot.district_id, []);
    byDistrict.get(lot.district_id).push(lot);
  }
  const cards = [];
  for (const [districtId, members] of byDistrict) {
    const free = members.reduce((total, lot) => total + lot.free, 0);
    const capacity = members.reduce((total, lot) => total + lot.capacity, 0);
    const occupied = members.reduce((total, lot) => total + lot.occupied, 0);
    const occupancy = percent(occupied, capacity);
    cards.push(
      h(
        "article",
        { class: "district", "data-district-id": districtId },
        h(
          "header",
          {},
          h("h3", {}, districtId),
          h(
            "span",
            { class: "muted" },
            `${members.length} 场 lots · 空闲 free ${free} / ${capacity}` +
              (occupancy === null ? "" : ` · 占用 ${occupancy}%`),
          ),
        ),
        h("ul", { class: "lots" }, ...members.map((lot) => lotRow(lot, now))),
      ),
    );
  }
  const container = document.getElementById("districts");
  container.replaceChildren(...(cards.length ? cards : [h("p", { class: "muted" }, "暂无停车场 · No lots yet")]));
}

function renderMap(lots) {
  const map = document.getElementById("map");
  const width = 1000;
  const height = 640;
  const pad = 40;
  if (!lots.length) {
    map.replaceChildren();
    return;
  }
  const lats = lots.map((lot) => lot.lat);
  const lons = lots.map((lot) => lot.lon);
  const midLat = (Math.min(...lats) + Math.max(...lats)) / 2;
  const cosLat = Math.cos((midLat * Math.PI) / 180);
  const xs = lons.map((lon) => lon * cosLat);
  const span = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...lats) - Math.min(...lats), 0.005);
  const labelRoom = 220; // labels sit right of their dots: keep the eastmost ones inside the map
  const scale = Math.min(width - 2 * pad - labelRoom, height - 2 * pad) / span;
  const cx = (Math.min(...xs) + Math.max(...xs)) / 2;
  const cy = (Math.min(...lats) + Math.max(...lats)) / 2;
  const nodes = [svg("rect", { x: 0, y: 0, width, height, class: "map-bg" })];
  for (let step = 1; step < 8; step += 1) {
    nodes.push(svg("line", { x1: (width * step) / 8, y1: 0, x2: (width * step) / 8, y2: height, class: "grid" }));
    nodes.push(svg("line", { x1: 0, y1: (height * step) / 8, x2: width, y2: (height * step) / 8, class: "grid" }));
  }
  const ordered = [...lots].sort((a, b) => b.capacity - a.capacity); // small lots drawn on top
  for (const lot of ordered) {
    const x = (width - labelRoom) / 2 + (lot.lon * cosLat - cx) * scale;
    const y = height / 2 - (lot.lat - cy) * scale;
    const radius = 9 + Math.sqrt(lot.capacity) * 3; // the viewBox is drawn at about 0.6 scale
    const dot = svg("circle", {
      cx: x.toFixed(1),
      cy: y.toFixed(1),
      r: radius.toFixed(1),
      class: `dot s-${lot.status}`,
      "data-lot-id": lot.lot_id,
    });
    const title = svg("title", {});
    const label = STATUS[lot.status] || STATUS.unknown;
    title.textContent = `${lot.name} (${lot.lot_id}) · ${label.zh} ${label.en} · ${lot.free}/${lot.capacity}`;
    dot.append(title);
    const text = svg("text", { x: (x + radius + 4).toFixed(1), y: (y + 4).toFixed(1), class: "dot-label" });
    text.textContent = lot.status === "unknown" ? `${lot.name} ?` : `${lot.name} ${lot.free}/${lot.capacity}`;
    nodes.push(dot, text);
  }
  map.replaceChildren(...nodes);
}

function renderLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren(
    ...Object.entries(STATUS).map(([status, label]) =>
      h("li", {}, h("i", { class: `swatch s-${status}` }), `${label.zh} ${label.en}`),
    ),
  );
}

function setConnection(state, text) {
  const conn = document.getElementById("conn");
  conn.dataset.state = state;
  conn.textContent = text;
}

async function poll() {
  try {
    const response = await fetch("/v1/lots", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const { items } = await response.json();
    const now = Date.now();
    renderTotals(items);
    renderDistricts(items, now);
    renderMap(items);
    setConnection("live", "实时 · Live");
    document.getElementById("updated").textContent = `更新于 Updated ${new Date(now).toLocaleTimeString("zh-CN")}`;
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (error) {
    setConnection("down", `连接中断 · Offline (${error.message})`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

renderLegend();
poll();
