// swarmhub admin console: confirmations, uploads, live charts and the live
// swarm view. No framework; served by the hub itself.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

function human(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i];
}

function confirmations() {
  for (const f of document.querySelectorAll("form[data-confirm]")) {
    f.addEventListener("submit", (e) => { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
  }
}

function upload() {
  const f = document.getElementById("upload");
  if (!f) return;
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = f.querySelector('input[type="file"]').files[0];
    const image = f.querySelector('input[name="image"]').value.trim();
    const status = document.getElementById("upload-status");
    if (!file || !image) return;
    status.textContent = "Uploading " + file.name + " (" + human(file.size) + ")...";
    const q = new URLSearchParams({ image, file: file.name });
    const r = await fetch("/admin/images/upload?" + q, {
      method: "POST", headers: { "x-csrf-token": csrf() }, body: file, credentials: "same-origin",
    });
    const text = await r.text();
    status.textContent = text;
    if (r.ok) setTimeout(() => window.location.reload(), 800);
  });
}

// ---- live charts ----
const series = { upload: [], capacity: [], announces: [], connections: [], refusals: [] };
let last = null;
const KEEP = 30; // samples shown: the last minute

function push(name, v) { const s = series[name]; s.push(v); if (s.length > KEEP) s.shift(); }

function draw(canvas, lines, fmt) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const max = Math.max(1e-9, ...lines.flatMap((l) => l.data));
  g.strokeStyle = "#dde1e8"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) { const y = 8 + (h - 24) * i / 4; g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke(); }
  g.fillStyle = "#5d6677"; g.font = "11px sans-serif"; g.fillText("max " + fmt(max), 4, h - 4);
  for (const l of lines) {
    if (l.data.length < 2) continue;
    g.strokeStyle = l.color; g.lineWidth = 2; g.setLineDash(l.dash || []);
    g.beginPath();
    const skip = KEEP - l.data.length; // newest sample at the right edge
    l.data.forEach((v, i) => {
      const x = w * (skip + i) / (KEEP - 1), y = 8 + (h - 24) * (1 - v / max);
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  }
  g.setLineDash([]);
}

async function live() {
  const charts = document.querySelectorAll("canvas[data-chart]");
  if (!charts.length) return;
  const tick = async () => {
    try {
      const r = await fetch("/admin/live.json", { credentials: "same-origin" });
      if (!r.ok) return;
      const d = await r.json();
      if (last) {
        const dt = Math.max(0.001, (d.t_ms - last.t_ms) / 1000);
        push("upload", (d.sent_bytes_total - last.sent_bytes_total) / dt);
        push("capacity", d.capacity_bps);
        push("announces", (d.announces_total - last.announces_total) / dt);
        push("connections", d.api_connections_open + d.seeder_connections);
        const ref = (x) => x.announce_refusals_total + x.api_refusals_total + x.tls_refusals_total;
        push("refusals", (ref(d) - ref(last)) / dt);
      }
      last = d;
      const rate = (v) => human(v) + "/s", num = (v) => (v < 10 ? v.toFixed(1) : Math.round(v)).toString();
      const now = (id, text) => { const e = document.querySelector('[data-now="' + id + '"]'); if (e) e.textContent = text; };
      const at = (s) => s.length ? s[s.length - 1] : 0;
      for (const c of charts) {
        const id = c.dataset.chart;
        if (id === "upload") {
          const lines = [{ data: series.upload, color: "#2456c9" }];
          if (at(series.capacity) > 0) lines.push({ data: series.capacity, color: "#b3261e", dash: [4, 4] });
          draw(c, lines, rate);
          now(id, rate(at(series.upload)) + (at(series.capacity) > 0 ? " of " + rate(at(series.capacity)) : ""));
        } else {
          draw(c, [{ data: series[id], color: "#2456c9" }], num);
          now(id, num(at(series[id])) + (id === "connections" ? "" : "/s"));
        }
      }
    } catch (e) { /* the next tick tries again */ }
  };
  await tick();
  setInterval(tick, 2000);
}

// ---- swarm view ----
function swarm() {
  const table = document.querySelector("table[data-swarm]");
  if (!table) return;
  const image = table.dataset.swarm;
  const age = (s) => s >= 3600 ? Math.floor(s / 3600) + "h" : s >= 60 ? Math.floor(s / 60) + "m " + (s % 60) + "s" : s + "s";
  const cell = (tr, text) => { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; };
  setInterval(async () => {
    try {
      const r = await fetch("/admin/swarm.json?" + new URLSearchParams({ image }), { credentials: "same-origin" });
      if (!r.ok) return;
      const rows = await r.json();
      const body = document.createElement("tbody");
      for (const p of rows) {
        const tr = document.createElement("tr");
        tr.dataset.peer = p.identity;
        cell(tr, p.identity); cell(tr, p.site || "-"); cell(tr, p.addr);
        const td = cell(tr, "");
        const bar = document.createElement("progress"); bar.max = 100; bar.value = Math.round(p.progress * 100);
        td.append(bar, " " + Math.round(p.progress * 100) + "%");
        cell(tr, human(p.down_bps) + "/s"); cell(tr, human(p.up_bps) + "/s");
        cell(tr, human(p.from_webseed_bytes)); cell(tr, human(p.from_seeder_bytes)); cell(tr, human(p.from_peers_bytes));
        cell(tr, age(p.last_announce_s) + " ago");
        body.appendChild(tr);
      }
      if (!rows.length) { const tr = document.createElement("tr"); tr.className = "empty"; const td = cell(tr, "No peers in this swarm right now."); td.colSpan = 10; body.appendChild(tr); }
      table.replaceChild(body, table.tBodies[0]);
    } catch (e) { /* retry at the next tick */ }
  }, 2000);
}

document.addEventListener("DOMContentLoaded", () => { confirmations(); upload(); live(); swarm(); });
