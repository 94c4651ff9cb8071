// The city screen: polls the public lot list every 2 s and draws districts, lots and a map.
"use strict";

const POLL_MS = 2000; // live enough for a wall screen, light on the API
const STALE_S = 600; // counts older than 10 minutes are flagged: the lot's sensors may be silent
const DISTRICTS_EVERY = 15; // polls: district names and kinds change rarely (every 30 s is plenty)
const COVERAGE_EVERY = 150; // polls: coverage grows by month (every 5 minutes is plenty)
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

function districtName(districtId) {
  const district = state.districts.get(districtId);
  if (!district) return districtId;
  return `${district.name} · ${KIND[district.kind] || district.kind}`;
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
          h("h3", {}, districtName(districtId)),
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

const URBAN_SPAN = 0.06; // degrees: the urban view shows at least ~6 km around the lots
const KIND = { district: "区 District", county: "县 County", county_city: "县级市 County-level city" };
const state = { outlines: [], districts: new Map(), view: "city", lots: [] };

function statusText(status) {
  const label = STATUS[status] || STATUS.unknown;
  return `${label.zh} ${label.en}`;
}

function renderMap() {
  const byOutline = new Map();
  for (const district of state.districts.values()) {
    if (district.outline_name) byOutline.set(district.outline_name, district);
  }
  const frame = state.view === "core" ? window.cityMap.lotsBounds(state.lots, URBAN_SPAN) : null;
  window.cityMap.drawCityMap(document.getElementById("map"), state.outlines, state.lots, byOutline, frame, statusText);
  for (const button of document.querySelectorAll("[data-view]")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === state.view));
  }
}

async function loadOutlines() {
  try {
    const response = await fetch("zhengzhou.geojson");
    if (response.ok) state.outlines = (await response.json()).features;
  } catch (error) {
    state.outlines = []; // the lots are still drawn, on an empty map
  }
}

async function loadDistricts() {
  const response = await fetch("/v1/districts", { cache: "no-store" });
  if (!response.ok) return;
  const { items } = await response.json();
  state.districts = new Map(items.map((d) => [d.district_id, d]));
}

function renderCoverage(months) {
  const chart = document.getElementById("coverage-chart");
  const width = 1000;
  const height = 160;
  const pad = 30;
  if (!months.length) {
    chart.replaceChildren();
    return;
  }
  const top = Math.max(...months.map((m) => m.spaces), 1);
  const step = (width - 2 * pad) / months.length;
  const nodes = [];
  months.forEach((month, index) => {
    const h = ((height - 2 * pad) * month.spaces) / top;
    const bar = svg("rect", {
      x: (pad + index * step + 2).toFixed(1),
      y: (height - pad - h).toFixed(1),
      width: Math.max(step - 4, 1).toFixed(1),
      height: h.toFixed(1),
      class: "cov-bar",
      "data-month": month.month,
    });
    const title = svg("title", {});
    const share = month.covered_share === null ? "–" : `${(100 * month.covered_share).toFixed(1)}%`;
    title.textContent = `${month.month}: ${month.lots} 场 lots · ${month.spaces} 位 spaces · ${month.sensors_online}/${month.sensors} 在线 online · 覆盖 ${share}`;
    bar.append(title);
    nodes.push(bar);
    if (index % 6 === 0 || index === months.length - 1) {
      const label = svg("text", { x: (pad + index * step).toFixed(1), y: height - 8, class: "cov-label" });
      label.textContent = month.month;
      nodes.push(label);
    }
  });
  chart.replaceChildren(...nodes);
  const last = months[months.length - 1];
  const share = last.covered_share === null ? "–" : `${(100 * last.covered_share).toFixed(1)}%`;
  document.getElementById("coverage-now").textContent =
    `${last.month}: ${last.districts_onboarded} 区县 districts · ${last.lots} 场 lots · ${last.spaces} 位 spaces · ` +
    `${last.sensors_online}/${last.sensors} 传感器在线 sensors online · 公共车位覆盖 public spaces covered ${share}`;
}

async function loadCoverage() {
  const response = await fetch("/v1/coverage", { cache: "no-store" });
  if (response.ok) renderCoverage((await response.json()).months);
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

let polls = 0;

async function poll() {
  try {
    const response = await fetch("/v1/lots", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const { items } = await response.json();
    const now = Date.now();
    renderTotals(items);
    state.lots = items;
    if (polls % DISTRICTS_EVERY === 0) await loadDistricts();
    if (polls % COVERAGE_EVERY === 0) await loadCoverage();
    renderDistricts(items, now);
    renderMap();
    setConnection("live", "实时 · Live");
    document.getElementById("updated").textContent = `更新于 Updated ${new Date(now).toLocaleTimeString("zh-CN")}`;
    polls += 1;
    document.body.dataset.polls = String(polls);
  } catch (error) {
    setConnection("down", `连接中断 · Offline (${error.message})`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

renderLegend();
for (const button of document.querySelectorAll("[data-view]")) {
  button.addEventListener("click", () => {
    state.view = button.dataset.view;
    renderMap();
  });
}
loadOutlines().then(poll);
