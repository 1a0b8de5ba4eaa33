/**
 * The dashboard's page: one self-contained document (HTML, CSS, JS inline, no CDN, no fonts or
 * images from elsewhere), since the machines it runs on may have no internet. The script polls
 * `queues` (GET /queues) every second, derives in/out rates from the `total_items` and
 * `dequeued_items` counters, and draws the last five minutes on a canvas. It is plain ES2020 that
 * any current browser runs as is.
 */

export const DASHBOARD_STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f7f8fa; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
#status { color: #667; font-size: .9em; margin-bottom: 1em; }
#status.error { color: #b00020; }
#chart-box { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: .6em; max-width: 960px; }
#chart-title { font-weight: 600; margin-bottom: .3em; }
canvas { width: 100%; height: 160px; display: block; }
.legend span { margin-right: 1.2em; font-size: .9em; }
.in { color: #1f77b4; } .out { color: #d62728; }
table { border-collapse: collapse; margin-top: 1em; background: #fff; min-width: 720px; }
th, td { padding: .35em .8em; border-bottom: 1px solid #e4e6eb; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eef0f4; font-weight: 600; }
tbody tr { cursor: pointer; }
tbody tr:hover, tbody tr.selected { background: #eef4ff; }
#empty { color: #667; margin-top: 1em; }
`

export const DASHBOARD_SCRIPT = `
'use strict';
const HISTORY = 300; // samples, one a second: five minutes
const POLL_MS = 1000;
const state = { last: null, history: [], selected: null };
const $ = (id) => document.getElementById(id);

function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
}
function fmtAge(ms) {
  if (ms < 1000) return ms + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  if (ms < 3600000) return (ms / 60000).toFixed(1) + ' min';
  return (ms / 3600000).toFixed(1) + ' h';
}
function fmtRate(r) { return r === null ? '\\u2013' : r < 10 ? r.toFixed(1) : String(Math.round(r)); }

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function rates(rows, now) {
  const prev = state.last;
  const out = new Map();
  for (const q of rows) {
    const p = prev && prev.rows.get(q.name);
    const dt = prev ? (now - prev.at) / 1000 : 0;
    if (!p || dt <= 0) { out.set(q.name, { inRate: null, outRate: null }); continue; }
    out.set(q.name, {
      inRate: Math.max(0, q.total_items - p.total_items) / dt,
      outRate: Math.max(0, q.dequeued_items - p.dequeued_items) / dt,
    });
  }
  return out;
}

function render(rows, r) {
  const body = $('queues').tBodies[0];
  const frag = document.createDocumentFragment();
  for (const q of rows) {
    const tr = document.createElement('tr');
    tr.dataset.queue = q.name;
    if (q.name === state.selected) tr.className = 'selected';
    tr.addEventListener('click', () => { state.selected = state.selected === q.name ? null : q.name; drawChart(); renderSelected(); });
    const rr = r.get(q.name);
    cell(tr, q.name, 'name');
    cell(tr, String(q.items), 'items');
    cell(tr, fmtBytes(q.bytes), 'bytes');
    cell(tr, fmtAge(q.age_ms), 'age');
    cell(tr, String(q.open), 'open');
    cell(tr, String(q.waiters), 'waiters');
    cell(tr, fmtRate(rr.inRate), 'in-rate');
    cell(tr, fmtRate(rr.outRate), 'out-rate');
    cell(tr, String(q.total_items), 'total');
    frag.appendChild(tr);
  }
  body.replaceChildren(frag);
  $('empty').hidden = rows.length > 0;
}

function renderSelected() {
  for (const tr of $('queues').tBodies[0].rows) tr.className = tr.dataset.queue === state.selected ? 'selected' : '';
  $('chart-title').textContent = 'Items per second, last 5 minutes: ' + (state.selected === null ? 'all queues' : state.selected);
}

function drawChart() {
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const points = state.history.map((s) => {
    if (state.selected === null) return { inRate: s.totalIn, outRate: s.totalOut };
    const one = s.perQueue.get(state.selected);
    return one ? { inRate: one.inRate || 0, outRate: one.outRate || 0 } : { inRate: 0, outRate: 0 };
  });
  let max = 1;
  for (const p of points) max = Math.max(max, p.inRate, p.outRate);
  const left = 48, bottom = h - 18, top = 8, right = w - 8;
  ctx.strokeStyle = '#dde'; ctx.fillStyle = '#667'; ctx.font = '11px system-ui, sans-serif';
  for (let i = 0; i <= 4; i++) {
    const y = bottom - (bottom - top) * i / 4;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
    ctx.fillText(fmtRate(max * i / 4), 4, y + 4);
  }
  ctx.fillText('-5 min', left, h - 4);
  ctx.fillText('now', right - 22, h - 4);
  const x = (i) => right - (right - left) * (HISTORY - 1 - i - (HISTORY - points.length)) / (HISTORY - 1);
  for (const [key, color] of [['inRate', '#1f77b4'], ['outRate', '#d62728']]) {
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
    points.forEach((p, i) => {
      const y = bottom - (bottom - top) * p[key] / max;
      if (i === 0) ctx.moveTo(x(i), y); else ctx.lineTo(x(i), y);
    });
    ctx.stroke();
  }
}

async function poll() {
  try {
    const res = await fetch('queues', { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) throw new Error('GET /queues answered ' + res.status);
    const rows = await res.json();
    const now = performance.now();
    const r = rates(rows, now);
    let totalIn = 0, totalOut = 0;
    for (const v of r.values()) { totalIn += v.inRate || 0; totalOut += v.outRate || 0; }
    if (state.last) {
      state.history.push({ totalIn, totalOut, perQueue: r });
      if (state.history.length > HISTORY) state.history.shift();
    }
    state.last = { at: now, rows: new Map(rows.map((q) => [q.name, q])) };
    render(rows, r);
    renderSelected();
    drawChart();
    const status = $('status');
    status.className = '';
    status.textContent = rows.length + ' queue' + (rows.length === 1 ? '' : 's') + ', updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    const status = $('status');
    status.className = 'error';
    status.textContent = 'refresh failed: ' + err.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

window.addEventListener('resize', drawChart);
poll();
`

export function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Starling queues</title>
<link rel="icon" href="data:,">
<style>${DASHBOARD_STYLE}</style>
</head>
<body>
<h1>Starling queues</h1>
<div id="status">loading&hellip;</div>
<div id="chart-box">
  <div id="chart-title">Items per second, last 5 minutes: all queues</div>
  <canvas id="chart" aria-label="in and out rates"></canvas>
  <div class="legend"><span class="in">&#9632; in</span><span class="out">&#9632; out</span></div>
</div>
<table id="queues">
  <thead><tr><th>queue</th><th>items</th><th>bytes</th><th>age</th><th>open</th><th>waiters</th><th>in/s</th><th>out/s</th><th>total in</th></tr></thead>
  <tbody></tbody>
</table>
<div id="empty" hidden>No queues yet.</div>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`
}
