// The live page: follows each seat's events (the same events.jsonl the report draws) and redraws.
// No library and nothing from the network: the page is served by the lab and works offline.
"use strict";

const params = new URLSearchParams(location.search);
const LANG = params.get("lang") || "en";
const VIEW = params.get("view") || "trainer";        // trainee: the exam's fault stays hidden
const EVERY_MS = 500;
let S = {};                                           // the page's words
const seats = {};
// When the page first showed each change (leader, read-write VIP): what the browser test reads.
window.labSeen = [];

async function getJSON(url) {
  const r = await fetch(url, {cache: "no-store"});
  return r.json();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElementNS(tag === "svg" || attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) if (k !== "svg" && v !== undefined && v !== null) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function fresh(key, title) {
  return {key, title, id: "", offset: 0, meta: {}, samples: [], writes: {}, marks: [], checks: [], verdict: null,
          haproxy: null, exam: null, leader: null, rwHolder: null, lastAt: 0, wall0: null};
}

function take(seat, ev) {
  if (seat.wall0 === null && ev.wall) seat.wall0 = Date.parse(ev.wall) - ev.t * 1000;
  if (ev.type === "sample") seat.samples.push(ev);
  else if (ev.type === "write") {
    const w = seat.writes[ev.path] || (seat.writes[ev.path] = {ok: 0, failed: 0, ticks: []});
    ev.ok ? w.ok++ : w.failed++;
    w.ticks.push([ev.t, ev.ok]);
  } else if (ev.type === "mark") seat.marks.push(ev);
  else if (ev.type === "check") seat.checks.push(ev);
  else if (ev.type === "verdict") seat.verdict = ev;
  else if (ev.type === "haproxy") seat.haproxy = ev;
}

function phase(seat) {
  if (seat.verdict) return seat.verdict.verdict;
  const last = seat.marks.filter(m => ["fault", "undo", "restore", "end"].includes(m.name)).pop();
  return last ? last.name : (seat.meta.kind === "idle" ? "" : "setup");
}

function seen(seat, what, value) {
  const entry = {seat: seat.key, what, value, at: Date.now()};
  window.labSeen.push(entry);
  fetch("/api/seen", {method: "POST", body: JSON.stringify(entry)}).catch(() => {});
  document.getElementById("seen").textContent = JSON.stringify(window.labSeen);
}

function membersTable(seat, sample) {
  const t = el("table", {}, el("tr", {}, ...["member", "outcome", "timeline", "lag"].map(k => el("th", {}, S[k] || k))));
  const members = (sample && sample.members) || {};
  for (const [name, m] of Object.entries(members)) {
    t.append(el("tr", {"data-member": name},
      el("td", {}, name),
      el("td", {class: "outcome", "data-outcome": m.outcome}, S[m.outcome] || m.outcome),
      el("td", {}, m.timeline ?? "–"),
      el("td", {}, m.lag_bytes ?? "–")));
  }
  const primaries = Object.entries(members).filter(([, m]) => m.outcome === "primary").map(([n]) => n).join(",");
  if (sample && primaries !== seat.leader) { seat.leader = primaries; seen(seat, "leader", primaries); }
  return t;
}

function vipTable(seat) {
  const withVips = seat.samples.filter(s => s.vips).pop();
  const t = el("table", {}, el("tr", {}, el("th", {}, "VIP"), el("th", {}, "")));
  for (const [role, nodes] of Object.entries((withVips && withVips.vips) || {})) {
    t.append(el("tr", {}, el("td", {}, role), el("td", {"data-vip": role}, (nodes || []).join(", ") || "–")));
  }
  const rw = withVips && withVips.vips ? (withVips.vips.read_write || []).join(",") : null;
  if (rw !== null && rw !== seat.rwHolder) { seat.rwHolder = rw; seen(seat, "read_write", rw); }
  return t;
}

function haproxyTable(seat) {
  const t = el("table", {}, el("tr", {}, el("th", {}, S.haproxy || "haproxy"), el("th", {}, ":5000"), el("th", {}, ":6000")));
  const h = seat.haproxy;
  const names = h ? [...new Set([...Object.keys(h.primary || {}), ...Object.keys(h.replicas || {})])] : [];
  for (const n of names) {
    const cell = v => el("td", {class: v === "UP" ? "up" : "down"}, v || "–");
    t.append(el("tr", {"data-backend": n}, el("td", {}, n), cell((h.primary || {})[n]), cell((h.replicas || {})[n])));
  }
  if (!names.length) t.append(el("tr", {}, el("td", {class: "muted", colspan: 3}, "–")));
  return t;
}

function writesTable(seat) {
  const t = el("table", {}, el("tr", {}, ...["path", "ok", "failed"].map(k => el("th", {}, S[k] || k))));
  for (const [path, w] of Object.entries(seat.writes)) {
    t.append(el("tr", {"data-path": path}, el("td", {}, path), el("td", {class: "up"}, w.ok), el("td", {class: w.failed ? "down" : ""}, w.failed)));
  }
  return t;
}

const COLOURS = {primary: "#1a7f37", replica: "#0969da", stopped: "#6e7781", fenced: "#8250df", unreachable: "#cf222e"};

function timeline(seat) {
  const W = 1000, H = 170, left = 70;
  const svg = el("svg", {svg: true, class: "timeline", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none"});
  const samples = seat.samples;
  const tEnd = Math.max(10, ...samples.map(s => s.t), ...seat.marks.map(m => m.t));
  const tStart = seat.meta.kind === "idle" ? Math.max(0, tEnd - 120) : 0;    // idle: the last two minutes
  const x = t => left + (W - left - 10) * (t - tStart) / Math.max(1, tEnd - tStart);
  const members = samples.length ? Object.keys(samples[samples.length - 1].members || {}) : [];
  const lanes = [...members, ...Object.keys(seat.writes)];
  const laneH = Math.min(24, (H - 20) / Math.max(1, lanes.length));
  lanes.forEach((name, i) => svg.append(el("text", {svg: true, x: 4, y: 14 + i * laneH + laneH / 2}, name)));
  members.forEach((m, i) => {
    for (let k = 0; k < samples.length; k++) {
      const s = samples[k], next = samples[k + 1];
      if (s.t < tStart) continue;
      const o = (s.members[m] || {}).outcome;
      svg.append(el("rect", {svg: true, x: x(s.t), y: 6 + i * laneH, height: laneH - 4,
                             width: Math.max(1, x(next ? next.t : s.t + 0.5) - x(s.t)), fill: COLOURS[o] || "#ccc"}));
    }
  });
  Object.entries(seat.writes).forEach(([path, w], j) => {
    const y = 6 + (members.length + j) * laneH;
    for (const [t, ok] of w.ticks) if (t >= tStart)
      svg.append(el("rect", {svg: true, x: x(t), y, width: 1.5, height: laneH - 4, fill: ok ? "#1a7f37" : "#cf222e"}));
  });
  for (const m of seat.marks) {
    if (m.t < tStart || m.name === "start") continue;
    svg.append(el("line", {svg: true, x1: x(m.t), x2: x(m.t), y1: 0, y2: H, stroke: "#24292f", "stroke-dasharray": "3,3"}));
    svg.append(el("text", {svg: true, x: x(m.t) + 3, y: H - 4}, m.name));
  }
  return svg;
}

function examBox(seat) {
  const e = seat.exam;
  if (!e) return "";
  const parts = [`${S.exam || "exam"}: ${e.open ? S.exam_open : S.exam_done}`,
                 `${S.exam_answers}: ${e.answers}${e.right ? " (" + S.exam_right + ")" : ""}`,
                 `${S.exam_hints}: ${e.hints}`, e.repaired ? S.exam_repaired : ""];
  if (e.score && e.score.points !== undefined) parts.push(`${S.exam_score}: ${e.score.points}`);
  if (e.fault && e.fault.drill) parts.push(`${S.exam_fault}: ${e.fault.drill} (${e.fault.node || ""})`);
  return el("div", {class: "exam", "data-exam": e.open ? "open" : "done"}, parts.filter(Boolean).join(" · "));
}

function render(seat) {
  const sample = seat.samples[seat.samples.length - 1];
  const card = document.getElementById("seat-" + seat.key) || document.getElementById("seats").appendChild(
    el("section", {class: "seat", id: "seat-" + seat.key}));
  const name = seat.meta.kind === "idle" ? (S.idle || "idle") : seat.meta.drill || (S.none || "");
  const p = phase(seat);
  const head = el("h2", {}, seat.title, el("span", {class: "badge", "data-drill": seat.meta.drill || ""}, name),
                  p ? el("span", {class: "badge " + p, "data-phase": p}, p) : "");
  const age = sample && seat.wall0 !== null ? (Date.now() - (seat.wall0 + sample.t * 1000)) / 1000 : null;
  const stale = age !== null && age > 5 ? el("div", {class: "muted"}, (S.stale || "").replace("{seconds}", Math.round(age))) : "";
  const checks = el("ul", {class: "checks"}, ...seat.checks.map(c => el("li", {class: c.ok ? "ok" : "bad"}, c.description)));
  card.replaceChildren(head, stale,
    el("div", {class: "row"}, membersTable(seat, sample), vipTable(seat), haproxyTable(seat), writesTable(seat)),
    seat.checks.length ? checks : "", timeline(seat), examBox(seat));
}

async function follow(seat) {
  try {
    const got = await getJSON(`/api/events?seat=${seat.key}&id=${encodeURIComponent(seat.id)}&offset=${seat.offset}`);
    if (got.moved) {
      const meta = await getJSON(`/api/stream?seat=${seat.key}`);
      Object.assign(seat, fresh(seat.key, seat.title), {id: got.id, meta, leader: seat.leader, rwHolder: seat.rwHolder});
    } else {
      got.events.forEach(ev => take(seat, ev));
      seat.offset = got.offset;
    }
    if (Date.now() - seat.lastAt > 2000) {
      seat.lastAt = Date.now();
      seat.meta = await getJSON(`/api/stream?seat=${seat.key}`);
      seat.exam = await getJSON(`/api/exam?seat=${seat.key}&view=${VIEW}`);
    }
    render(seat);
  } finally {
    setTimeout(() => follow(seat), EVERY_MS);
  }
}

async function main() {
  S = await getJSON(`/api/strings?lang=${LANG}`);
  document.getElementById("title").textContent = S.title || "patroni-lab";
  document.documentElement.lang = LANG;
  document.body.append(el("pre", {id: "seen", hidden: "hidden"}, "[]"));
  setInterval(() => { document.getElementById("clock").textContent = new Date().toLocaleTimeString(); }, 1000);
  for (const s of await getJSON("/api/seats")) follow(seats[s.key] = fresh(s.key, s.title));
}

main();
