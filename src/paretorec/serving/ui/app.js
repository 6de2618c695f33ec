// The operator page: the front as a scatter, the operating point, one user's list, live
// feedback counts. Plain DOM and SVG, no library, no network access beyond this app.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const state = {
  objectives: [],
  directions: [],
  points: [], // [{id, describe, explain, validation: {...}, test: {...}}]
  mode: "point",
  pointId: null,
  weights: {},
  chosenId: null, // the point the last /recommend answered with
  counts: {}, // point id -> number of feedback events
  requestId: null,
  userId: null,
  busy: 0,
};

// ------------------------------------------------------------------ API
async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!response.ok) {
    const detail = data && data.detail !== undefined ? data.detail : data;
    throw new Error(`${path}: HTTP ${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return data;
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `k-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

// ------------------------------------------------------------------ helpers
function fmt(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  return Math.abs(value) >= 1000 ? value.toFixed(0) : value.toPrecision(digits);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function setStatus(text) { $("status").textContent = text; }
function setError(text) { $("error").textContent = text || ""; }

// better(a, b) in objective j: true when a is at least as good as b
function atLeast(a, b, direction) { return direction === "minimize" ? a <= b : a >= b; }
function strictly(a, b, direction) { return direction === "minimize" ? a < b : a > b; }

// indices of the points non-dominated in the two objectives shown
function nonDominated2d(xs, ys, dx, dy) {
  const keep = [];
  for (let i = 0; i < xs.length; i++) {
    let dominated = false;
    for (let j = 0; j < xs.length && !dominated; j++) {
      if (j === i) continue;
      dominated = atLeast(xs[j], xs[i], dx) && atLeast(ys[j], ys[i], dy)
        && (strictly(xs[j], xs[i], dx) || strictly(ys[j], ys[i], dy));
    }
    if (!dominated) keep.push(i);
  }
  return keep;
}

// ------------------------------------------------------------------ scatter
function ticks(low, high, n) {
  if (!(high > low)) return [low];
  const out = [];
  for (let i = 0; i <= n; i++) out.push(low + (high - low) * i / n);
  return out;
}

function drawScatter() {
  const plot = $("scatter");
  plot.replaceChildren();
  const x = $("x-objective").value, y = $("y-objective").value, set = $("value-set").value;
  const points = state.points.filter((p) => p[set] && p[set][x] !== undefined && p[set][y] !== undefined);
  if (!points.length) return;
  const W = +plot.getAttribute("width"), H = +plot.getAttribute("height");
  const m = { left: 62, right: 14, top: 12, bottom: 44 };
  const xs = points.map((p) => p[set][x]), ys = points.map((p) => p[set][y]);
  const pad = (lo, hi) => { const d = hi > lo ? (hi - lo) * 0.06 : Math.abs(lo) * 0.05 || 1; return [lo - d, hi + d]; };
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const sx = (v) => m.left + (v - x0) / (x1 - x0) * (W - m.left - m.right);
  const sy = (v) => H - m.bottom - (v - y0) / (y1 - y0) * (H - m.top - m.bottom);
  const axis = svg("g", { "font-size": "10", fill: "#444" });
  axis.append(svg("line", { x1: m.left, y1: H - m.bottom, x2: W - m.right, y2: H - m.bottom, stroke: "#888" }));
  axis.append(svg("line", { x1: m.left, y1: m.top, x2: m.left, y2: H - m.bottom, stroke: "#888" }));
  for (const t of ticks(x0, x1, 5)) {
    axis.append(svg("line", { x1: sx(t), y1: H - m.bottom, x2: sx(t), y2: H - m.bottom + 4, stroke: "#888" }));
    const label = svg("text", { x: sx(t), y: H - m.bottom + 15, "text-anchor": "middle" });
    label.textContent = fmt(t, 3);
    axis.append(label);
  }
  for (const t of ticks(y0, y1, 5)) {
    axis.append(svg("line", { x1: m.left - 4, y1: sy(t), x2: m.left, y2: sy(t), stroke: "#888" }));
    const label = svg("text", { x: m.left - 6, y: sy(t) + 3, "text-anchor": "end" });
    label.textContent = fmt(t, 3);
    axis.append(label);
  }
  const arrow = (name) => (state.directions[state.objectives.indexOf(name)] === "minimize" ? "↓" : "↑");
  const xl = svg("text", { x: (W + m.left) / 2, y: H - 8, "text-anchor": "middle", "font-size": "12" });
  xl.textContent = `${x} (${set}, ${arrow(x)} better)`;
  const yl = svg("text", { x: 14, y: (H - m.bottom) / 2, "text-anchor": "middle", "font-size": "12",
    transform: `rotate(-90 14 ${(H - m.bottom) / 2})` });
  yl.textContent = `${y} (${set}, ${arrow(y)} better)`;
  axis.append(xl, yl);
  plot.append(axis);

  const dx = state.directions[state.objectives.indexOf(x)], dy = state.directions[state.objectives.indexOf(y)];
  const front = nonDominated2d(xs, ys, dx, dy).sort((a, b) => xs[a] - xs[b]);
  if (front.length > 1) {
    const d = front.map((i, n) => `${n ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(ys[i]).toFixed(1)}`).join(" ");
    plot.append(svg("path", { d, fill: "none", stroke: "#1f77b4", "stroke-width": 1.2, "stroke-opacity": 0.6 }));
  }
  const onFront = new Set(front);
  const maxCount = Math.max(1, ...Object.values(state.counts));
  points.forEach((p, i) => {
    const count = state.counts[p.id] || 0;
    const r = 4 + 6 * Math.sqrt(count / maxCount);
    const dot = svg("circle", {
      cx: sx(xs[i]), cy: sy(ys[i]), r,
      fill: onFront.has(i) ? "#1f77b4" : "#9ecae1",
      "fill-opacity": 0.85,
      "data-point-id": p.id,
      class: p.id === state.chosenId ? "chosen" : "",
    });
    if (p.id === state.chosenId) dot.setAttribute("fill", "#d62728");
    const title = svg("title");
    const values = state.objectives.map((o) => `${o}=${fmt(p[set][o])}`).join(", ");
    title.textContent = `point ${p.id}: ${p.describe}\n${values}\nfeedback events: ${count}`;
    dot.append(title);
    dot.addEventListener("click", () => choosePoint(p.id));
    plot.append(dot);
  });
}

// ------------------------------------------------------------------ controls
function fillControls() {
  const objectiveSelects = ["x-objective", "y-objective", "constraint-target", "constraint-objective"];
  for (const id of objectiveSelects) {
    $(id).replaceChildren(...state.objectives.map((o) => el("option", { value: o }, o)));
  }
  $("x-objective").value = state.objectives[0];
  $("y-objective").value = state.objectives[Math.min(1, state.objectives.length - 1)];
  const accuracy = state.objectives.find((o) => ["ndcg", "recall", "precision"].includes(o)) || state.objectives[0];
  const other = state.objectives.find((o) => o !== accuracy) || accuracy;
  $("constraint-objective").value = accuracy;
  $("constraint-target").value = other;
  $("point-select").replaceChildren(...state.points.map((p) =>
    el("option", { value: String(p.id) }, `${p.id}: ${p.describe}`)));
  const weights = $("weights");
  weights.replaceChildren();
  for (const o of state.objectives) {
    state.weights[o] = 1;
    const value = el("span", { id: `weight-value-${o}` }, "1");
    const slider = el("input", { type: "range", min: "0", max: "5", step: "0.5", value: "1", id: `weight-${o}` });
    slider.addEventListener("input", () => { value.textContent = slider.value; });
    slider.addEventListener("change", () => {
      state.weights[o] = +slider.value;
      setMode("preference");
    });
    weights.append(el("label", { htmlFor: `weight-${o}` }, o), slider, value);
  }
}

function setMode(mode) {
  state.mode = mode;
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.checked = radio.value === mode;
  refreshList();
}

function choosePoint(id) {
  state.pointId = id;
  $("point-select").value = String(id);
  setMode("point");
}

function operatingPoint() {
  if (state.mode === "preference") return { preference: { ...state.weights } };
  if (state.mode === "constraint") {
    const objective = $("constraint-objective").value;
    const minimize = state.directions[state.objectives.indexOf(objective)] === "minimize";
    return {
      constraints: [{ objective, op: minimize ? "<=" : ">=", value: +$("constraint-share").value, relative: true }],
      optimize: $("constraint-target").value,
    };
  }
  return { point: state.pointId === null ? state.points[0].id : state.pointId };
}

// ------------------------------------------------------------------ the list
function explanationText(explanation) {
  if (!explanation) return "";
  const parts = [];
  const history = explanation.history || [];
  if (history.length) {
    parts.push("because of " + history.slice(0, 3).map((h) =>
      `${h.title || h.item_id}${h.contribution !== undefined ? ` (${fmt(h.contribution, 2)})` : ""}`).join(", "));
  }
  const ranker = explanation.ranker || {};
  if (Object.keys(ranker).length) {
    // binary tasks are probabilities; a regression task (e.g. rating) is shown as its value
    parts.push(Object.entries(ranker).map(([task, v]) =>
      (v >= 0 && v <= 1 ? `p(${task})=${fmt(v, 2)}` : `${task}≈${fmt(v, 2)}`)).join(" "));
  }
  if (explanation.policy) parts.push(explanation.policy);
  return parts.join("; ");
}

function renderList(result) {
  const body = $("list").querySelector("tbody");
  body.replaceChildren();
  const point = result.point || {};
  state.chosenId = point.id;
  state.requestId = result.request_id;
  state.userId = result.user_id;
  $("list-point").textContent = `at point ${point.id} (${point.describe || ""}), request ${result.request_id}`;
  $("list").setAttribute("data-point-id", String(point.id));
  const expected = point.expected || point.test || {};
  $("point-summary").replaceChildren(
    el("span", {}, `served point ${point.id}: `), el("code", {}, point.describe || ""),
    el("br"), el("span", {}, "expected (test): " +
      Object.entries(expected).map(([k, v]) => `${k}=${fmt(v)}`).join(", ")));
  (result.items || []).forEach((item, rank) => {
    const button = el("button", { "data-item-id": item.item_id }, "click");
    button.addEventListener("click", () => sendFeedback(item, "click", button));
    body.append(el("tr", { "data-item-id": item.item_id },
      el("td", { class: "num" }, rank + 1),
      el("td", {}, item.title ? `${item.title} ` : "", el("span", { class: "muted" }, item.item_id)),
      el("td", { class: "num" }, fmt(item.score)),
      el("td", { class: "num" }, fmt(item.propensity !== undefined ? item.propensity : item.probability, 3)),
      el("td", { class: "explain" }, explanationText(item.explanation)),
      el("td", {}, button)));
  });
  drawScatter();
}

async function refreshList() {
  const user = $("user").value.trim();
  if (!user || !state.points.length) return;
  const body = { user_id: user, k: +$("k").value || 10, explain: $("explain").checked, ...operatingPoint() };
  state.busy++;
  try {
    setError("");
    renderList(await api("/recommend", body));
  } catch (error) {
    setError(error.message);
  } finally {
    state.busy--;
  }
}

async function sendFeedback(item, kind, button) {
  const event = {
    kind, item_id: item.item_id, idempotency_key: newKey(), request_id: state.requestId,
    user_id: state.userId, point_id: state.chosenId, position: item.rank,
    propensity: item.propensity, timestamp: Date.now() / 1000,
  };
  try {
    await api("/feedback", { events: [event] });
    if (button) { button.disabled = true; button.textContent = "sent"; }
    await refreshCounts();
  } catch (error) {
    setError(error.message);
  }
}

// ------------------------------------------------------------------ feedback counts
async function refreshCounts() {
  let front;
  try { front = await api("/front"); } catch (error) { return; }
  const counts = {};
  for (const [id, kinds] of Object.entries(front.feedback || {})) {
    counts[id] = Object.values(kinds).reduce((a, b) => a + b, 0);
  }
  const changed = JSON.stringify(counts) !== JSON.stringify(state.counts);
  state.counts = counts;
  const traffic = front.traffic || {};
  const shown = state.points.filter((p) => counts[p.id] || traffic[p.id]);
  $("counts").querySelector("tbody").replaceChildren(...shown.map((p) => {
    const kinds = Object.entries((front.feedback || {})[p.id] || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    return el("tr", { "data-point-id": p.id }, el("td", {}, p.id), el("td", {}, p.describe),
      el("td", { class: "num" }, traffic[p.id] || 0),
      el("td", { class: "num", "data-count": counts[p.id] || 0 }, counts[p.id] || 0),
      el("td", { class: "muted" }, kinds));
  }));
  if (changed) drawScatter();
}

// ------------------------------------------------------------------ start
async function start() {
  try {
    const front = await api("/front");
    state.objectives = front.objectives;
    state.directions = front.directions;
    state.points = front.points;
    fillControls();
    state.pointId = front.default_point !== undefined ? front.default_point
      : (state.points.length ? state.points[0].id : null);
    if (state.pointId !== null) $("point-select").value = String(state.pointId);
    drawScatter();
    let users = [];
    try { users = (await api("/ui/users")).users || []; } catch (error) { users = []; }
    $("user-list").replaceChildren(...users.map((u) => el("option", { value: u })));
    if (users.length && !$("user").value) $("user").value = users[0];
    for (const id of ["x-objective", "y-objective", "value-set"]) $(id).addEventListener("change", drawScatter);
    $("point-select").addEventListener("change", () => choosePoint(+$("point-select").value));
    for (const radio of document.querySelectorAll('input[name="mode"]')) {
      radio.addEventListener("change", () => setMode(radio.value));
    }
    for (const id of ["constraint-target", "constraint-objective", "constraint-share"]) {
      $(id).addEventListener("change", () => setMode("constraint"));
    }
    $("refresh").addEventListener("click", refreshList);
    $("user").addEventListener("change", refreshList);
    setStatus(`${state.points.length} operating points; objectives: ${state.objectives.join(", ")}`);
    $("status").setAttribute("data-ready", "1");
    await refreshCounts();
    await refreshList();
    setInterval(refreshCounts, 2000);
  } catch (error) {
    setStatus("failed to load the front");
    setError(error.message);
  }
}

start();
