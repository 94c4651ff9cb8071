// The city map without tiles: district and county outlines (GeoJSON), lots as dots, labels that
// never overlap (each label takes the first free place around its anchor, or is left out and kept
// in the dot's tooltip).
"use strict";

const MAP_NS = "http://www.w3.org/2000/svg";
const LABEL_GAP = 3; // px between a label and whatever it must not touch
const CHAR_W = { latin: 0.62, cjk: 1.0 }; // label width per character, in font sizes (no layout pass)

function mapEl(tag, attrs) {
  const el = document.createElementNS(MAP_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  return el;
}

// An equirectangular projection fitted to a [west, south, east, north] box inside width × height.
function projection(bounds, width, height, pad) {
  const [west, south, east, north] = bounds;
  const cosLat = Math.cos((((south + north) / 2) * Math.PI) / 180);
  const scale = Math.min((width - 2 * pad) / ((east - west) * cosLat), (height - 2 * pad) / (north - south));
  const x0 = width / 2 - (((west + east) / 2) * cosLat * scale);
  const y0 = height / 2 + ((south + north) / 2) * scale;
  return ([lon, lat]) => [x0 + lon * cosLat * scale, y0 - lat * scale];
}

function ringsOf(feature) {
  const geometry = feature.geometry;
  return geometry.type === "Polygon" ? geometry.coordinates : geometry.coordinates.flat();
}

function boundsOf(features) {
  let west = Infinity;
  let south = Infinity;
  let east = -Infinity;
  let north = -Infinity;
  for (const feature of features) {
    for (const ring of ringsOf(feature)) {
      for (const [lon, lat] of ring) {
        west = Math.min(west, lon);
        east = Math.max(east, lon);
        south = Math.min(south, lat);
        north = Math.max(north, lat);
      }
    }
  }
  return [west, south, east, north];
}

function spanOf(feature) {
  const [west, south, east, north] = boundsOf([feature]);
  return (east - west) * (north - south);
}

function pathOf(feature, project) {
  return ringsOf(feature)
    .map((ring) => "M" + ring.map((point) => project(point).map((v) => v.toFixed(1)).join(",")).join("L") + "Z")
    .join("");
}

// The rendered width of `text` in class `cls`, measured in `svg` (estimated where SVG cannot measure).
function textWidth(svg, text, cls, size) {
  const probe = mapEl("text", { x: 0, y: 0, class: cls, visibility: "hidden" });
  probe.textContent = text;
  svg.append(probe);
  let width = 0;
  try {
    width = probe.getComputedTextLength();
  } catch (error) {
    width = 0;
  }
  probe.remove();
  if (width > 0) return width;
  for (const ch of text) width += (ch.charCodeAt(0) > 0x2e7f ? CHAR_W.cjk : CHAR_W.latin) * size;
  return width;
}

function overlaps(a, b, gap = LABEL_GAP) {
  return a.x < b.x + b.w + gap && b.x < a.x + a.w + gap && a.y < b.y + b.h + gap && b.y < a.y + a.h + gap;
}

// Place a label of `text` near (x, y), away from `radius` around it, in the first free spot.
function placeLabel(placed, w, x, y, radius, size, width, height) {
  const h = Math.ceil(size * 1.3); // a line of text: ascent and descent of CJK fonts
  const candidates = [
    [x + radius + LABEL_GAP, y - h / 2],
    [x - radius - LABEL_GAP - w, y - h / 2],
    [x - w / 2, y - radius - LABEL_GAP - h],
    [x - w / 2, y + radius + LABEL_GAP],
    [x + radius, y - radius - h],
    [x - radius - w, y + radius],
  ];
  for (const [lx, ly] of candidates) {
    const box = { x: lx, y: ly, w, h };
    if (lx < 0 || ly < 0 || lx + w > width || ly + h > height) continue;
    if (placed.some((other) => overlaps(box, other))) continue;
    placed.push(box);
    return box;
  }
  return null;
}

// The box around `lots`, widened by a third and to at least `minSpan` degrees: the urban view.
function lotsBounds(lots, minSpan) {
  if (!lots.length) return null;
  const lons = lots.map((lot) => lot.lon);
  const lats = lots.map((lot) => lot.lat);
  const [cx, cy] = [(Math.min(...lons) + Math.max(...lons)) / 2, (Math.min(...lats) + Math.max(...lats)) / 2];
  const half = Math.max((Math.max(...lons) - Math.min(...lons)) * 0.67, (Math.max(...lats) - Math.min(...lats)) * 0.67, minSpan / 2);
  return [cx - half, cy - half, cx + half, cy + half];
}

// Draw `outlines` (GeoJSON features), `lots` and labels into `svg` (viewBox width × height),
// fitted to `frame` ([west, south, east, north]; every outline when null).
function drawCityMap(svg, outlines, lots, districtsByOutline, frame, statusLabel) {
  const width = 1000;
  const height = 640;
  const fallback = lotsBounds(lots, 0.05) || [113.5, 34.6, 113.8, 34.9];
  const project = projection(frame || (outlines.length ? boundsOf(outlines) : fallback), width, height, 24);
  const nodes = [mapEl("rect", { x: 0, y: 0, width, height, class: "map-bg" })];
  const placed = [];
  for (const feature of outlines) {
    const name = feature.properties.name;
    const district = districtsByOutline.get(name);
    const state = district ? (district.lots > 0 ? "served" : "planned") : "outside";
    const path = mapEl("path", { d: pathOf(feature, project), class: `area area-${state}`, "data-outline": name });
    const title = mapEl("title", {});
    title.textContent = district ? `${name} · ${district.lots} 场 lots · ${district.capacity} 位 spaces` : name;
    path.append(title);
    nodes.push(path);
  }
  const lotDots = [];
  const ordered = [...lots].sort((a, b) => b.capacity - a.capacity); // small lots drawn on top
  for (const lot of ordered) {
    const [x, y] = project([lot.lon, lot.lat]);
    if (x < 0 || y < 0 || x > width || y > height) continue;
    const radius = 6 + Math.sqrt(lot.capacity) * 1.2;
    placed.push({ x: x - radius, y: y - radius, w: 2 * radius, h: 2 * radius }); // labels avoid dots
    lotDots.push({ lot, x, y, radius });
  }
  const labels = [];
  const bySize = [...outlines].sort((a, b) => spanOf(b) - spanOf(a)); // big areas name themselves first
  for (const feature of bySize) {
    const [x, y] = project(feature.properties.cp);
    const name = feature.properties.name;
    const box = placeLabel(placed, textWidth(svg, name, "area-label", 20), x, y, 0, 20, width, height);
    if (!box) continue;
    const label = mapEl("text", { x: box.x.toFixed(1), y: (box.y + 20).toFixed(1), class: "area-label" });
    label.textContent = name;
    labels.push(label);
  }
  for (const { lot, x, y, radius } of lotDots) {
    const dot = mapEl("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: radius.toFixed(1), class: `dot s-${lot.status}`, "data-lot-id": lot.lot_id });
    const title = mapEl("title", {});
    title.textContent = `${lot.name} (${lot.lot_id}) · ${statusLabel(lot.status)} · ${lot.free}/${lot.capacity}`;
    dot.append(title);
    nodes.push(dot);
  }
  for (const { lot, x, y, radius } of lotDots) {
    const text = lot.status === "unknown" ? `${lot.name} ?` : `${lot.name} ${lot.free}/${lot.capacity}`;
    const box = placeLabel(placed, textWidth(svg, text, "dot-label", 15), x, y, radius, 15, width, height);
    if (!box) continue;
    const label = mapEl("text", { x: box.x.toFixed(1), y: (box.y + 15).toFixed(1), class: "dot-label", "data-lot-id": lot.lot_id });
    label.textContent = text;
    labels.push(label);
  }
  svg.replaceChildren(...nodes, ...labels);
  dropOverlaps(svg, labels, lotDots);
}

// Estimates can be off by a few pixels of a font's ascent: measure what was drawn and remove any
// label that touches a dot or an earlier label, so that no two labels ever overlap on screen.
function dropOverlaps(svg, labels, lotDots) {
  const kept = lotDots.map(({ x, y, radius }) => ({ x: x - radius, y: y - radius, w: 2 * radius, h: 2 * radius }));
  for (const label of labels) {
    const b = label.getBBox();
    const box = { x: b.x, y: b.y, w: b.width, h: b.height };
    if (kept.some((other) => overlaps(box, other, 0))) {
      label.remove();
      continue;
    }
    kept.push(box);
  }
}

window.cityMap = { drawCityMap, lotsBounds };
