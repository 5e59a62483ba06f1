// dropq dashboard: reads the JSON API (docs/DASHBOARD.md) every 2 s and
// builds the page with DOM calls only. Every value from the database (prompts,
// group names, results, logs) goes in as text (append/textContent), never as
// markup, so nothing a job file says can run in this page.
'use strict';

const STATES = ['waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];
const REFRESH_MS = 2000;
let clockOffset = 0;  // server time - browser time, so relative times use the server's clock

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'testid') e.dataset.testid = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ''));
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function duration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function now() { return Date.now() + clockOffset; }

function relative(iso) {
  if (!iso) return '';
  const d = Date.parse(iso) - now();
  return d >= 0 ? `in ${duration(d)}` : `${duration(-d)} ago`;
}

function when(iso) {
  return iso ? el('time', { datetime: iso, title: iso }, relative(iso)) : '';
}

function stateBadge(s) { return el('span', { class: `state ${s}` }, s); }

function jobLink(id) { return el('a', { href: `#job=${id}` }, `#${id}`); }

function table(node, head, rows, empty) {
  node.replaceChildren();
  node.append(el('thead', {}, el('tr', {}, ...head.map(h => el('th', { class: h.num ? 'num' : null }, h.label || h)))));
  const body = el('tbody');
  if (rows.length === 0) body.append(el('tr', {}, el('td', { colspan: head.length, class: 'empty' }, empty)));
  for (const r of rows) body.append(r);
  node.append(body);
}

// A dashboard with dashboard.token_file answers the API only with
// `Authorization: Bearer <token>`. The token is asked for once and kept in
// sessionStorage (this tab only, gone when it closes); a 401 asks again.
const TOKEN_KEY = 'dropq.token';
class Unauthorized extends Error {}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function getJson(path) {
  const t = token();
  const res = await fetch(path, { cache: 'no-store', headers: t ? { Authorization: `Bearer ${t}` } : {} });
  if (res.status === 401) throw new Unauthorized(t ? 'that token was refused; enter it again' : '');
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `${path}: HTTP ${res.status}`);
  return body;
}

function askForToken(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  $('login-reason').textContent = reason;
  $('login').hidden = false;
  $('main').hidden = true;
  $('status').textContent = 'needs its token';
  $('status').className = 'error';
  $('token').focus();
}

function renderSummary(o) {
  const totals = Object.fromEntries(STATES.map(s => [s, 0]));
  for (const c of o.counts) totals[c.state] = (totals[c.state] || 0) + c.count;
  const card = (label, value, testid) =>
    el('div', { class: 'card', testid }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value));
  const lag = o.live.scheduler_lag_ms;
  $('summary').replaceChildren(
    ...STATES.map(s => card(s, totals[s], `total-${s}`)),
    card('containers running', o.live.containers_running, 'containers-running'),
    card('ingest rejects', o.live.ingest_rejected, 'ingest-rejected'),
    card('scheduler lag', lag === null ? '–' : duration(lag), 'scheduler-lag'));
}

// A group's rate limit (docs/CONFIG.md, "Rate limits"): the limit, the
// starts in its window, and while the window is full when the next may start.
function rateCell(r) {
  if (!r) return '–';
  const text = `${r.limit} · ${r.starts_in_window}/${r.max} in window`;
  if (!r.limited) return text;
  return el('span', { class: 'rate-limited' }, `${text} · next `, when(r.next_start_at));
}

function renderCounts(o, groupsSeen) {
  const by = {};
  for (const c of o.counts) (by[c.group] ||= {})[c.state] = c.count;
  const rates = o.rate_limits || {};
  const rows = [];
  for (const g of groupsSeen) {
    const counts = by[g] || {};
    const total = STATES.reduce((n, s) => n + (counts[s] || 0), 0);
    rows.push(el('tr', { testid: `counts-row-${g}` }, el('td', {}, g),
      ...STATES.map(s => el('td', { class: 'num', testid: `count-${g}-${s}` }, counts[s] || 0)),
      el('td', { class: 'num' }, total), el('td', { testid: `rate-${g}` }, rateCell(rates[g]))));
  }
  table($('counts'), ['group', ...STATES.map(s => ({ label: s, num: true })), { label: 'total', num: true }, 'rate'],
    rows, 'no groups');
}

function renderRunning(o) {
  const rows = o.running.map(r => el('tr', { testid: 'running-row' },
    el('td', {}, jobLink(r.id)), el('td', {}, r.group), el('td', { class: 'prompt', title: r.prompt }, r.prompt),
    el('td', { class: 'num' }, r.attempt), el('td', {}, r.container_name || ''),
    el('td', { class: 'num', testid: 'elapsed' }, duration(r.elapsed_ms))));
  table($('running'), ['job', 'group', 'prompt', { label: 'attempt', num: true }, 'container',
    { label: 'elapsed', num: true }], rows, 'nothing running');
}

function renderChart(t) {
  const W = 720, H = 140, top = 12, bottom = 18, left = 28;
  const n = t.minutes.length, bw = (W - left) / n;
  const max = Math.max(1, ...t.minutes.map(m => m.succeeded + m.failed + m.cancelled));
  const scale = (H - top - bottom) / max;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img',
    'aria-label': 'jobs finished per minute over the last hour' });
  chart.append(svg('line', { x1: left, x2: W, y1: H - bottom, y2: H - bottom, stroke: '#ccc' }));
  chart.append(svg('text', { x: 0, y: top + 4 }, String(max)), svg('text', { x: 0, y: H - bottom }, '0'));
  chart.append(svg('text', { x: left, y: H - 4 }, '60 min ago'),
    svg('text', { x: W - 24, y: H - 4 }, 'now'));
  let total = 0;
  t.minutes.forEach((m, i) => {
    const count = m.succeeded + m.failed + m.cancelled;
    total += count;
    const g = svg('g', { 'data-testid': 'bar', 'data-minute': m.minute, 'data-count': count });
    g.append(svg('title', {}, `${m.minute.slice(11, 16)} UTC: ${m.succeeded} succeeded, ${m.failed} failed, ` +
      `${m.cancelled} cancelled`));
    let y = H - bottom;
    for (const s of ['succeeded', 'failed', 'cancelled']) {
      if (!m[s]) continue;
      const h = m[s] * scale;
      y -= h;
      g.append(svg('rect', { class: s, x: left + i * bw + 1, y, width: Math.max(1, bw - 2), height: h }));
    }
    chart.append(g);
  });
  const legend = el('div', { class: 'legend' },
    ...['succeeded', 'failed', 'cancelled'].map(s => el('span', {}, el('i', { class: `state ${s}` }), s)),
    el('span', { testid: 'chart-total' }, `${total} in the last hour`));
  $('chart').replaceChildren(chart, legend);
}

function renderJobs(list) {
  const rows = list.jobs.map(j => el('tr', { testid: 'job-row', 'data-job': j.id, 'data-state': j.state },
    el('td', {}, jobLink(j.id)), el('td', {}, j.group), el('td', {}, stateBadge(j.state)),
    el('td', { class: 'prompt', title: j.prompt }, j.prompt), el('td', { class: 'num' }, `${j.attempts}/${j.max_attempts}`),
    el('td', {}, when(j.created_at)), el('td', { class: 'num' }, duration(j.duration_ms)),
    el('td', {}, j.error || '')));
  table($('jobs'), ['job', 'group', 'state', 'prompt', { label: 'attempts', num: true }, 'created',
    { label: 'duration', num: true }, 'error'], rows, 'no jobs match');
}

function renderTasks(t) {
  const rows = t.tasks.map(k => el('tr', { testid: 'task-row', 'data-task': k.id },
    el('td', {}, k.id), el('td', {}, k.group), el('td', {}, `${k.schedule_type} ${k.schedule_value}`),
    el('td', {}, k.tz), el('td', {}, k.status),
    // In the task's own zone, as `dropq tasks` shows it (docs/CRON.md).
    el('td', { testid: 'next-run' }, k.next_run ? el('span', {}, when(k.next_run), ` (${k.next_run_local})`) : '–'),
    el('td', {}, when(k.last_run)), el('td', { class: 'prompt', title: k.prompt }, k.prompt)));
  table($('tasks'), ['task', 'group', 'schedule', 'tz', 'status', 'next run', 'last run', 'prompt'], rows,
    'no scheduled tasks');
}

function pretty(v) { return typeof v === 'string' ? v : JSON.stringify(v, null, 2); }

function renderDetail(j) {
  $('detail-title').textContent = `Job #${j.id}`;
  const dl = el('dl', {});
  const field = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
  field('state', stateBadge(j.state));
  field('group', j.group);
  field('attempts', `${j.attempts} of ${j.max_attempts}`);
  field('priority', j.priority);
  field('file', j.source_name ? `${j.source_group}/${j.source_name}` : '–');
  field('created', el('span', {}, when(j.created_at), ` (${j.created_at})`));
  if (j.started_at) field('started', el('span', {}, when(j.started_at), ` (${j.started_at})`));
  if (j.finished_at) field('finished', el('span', {}, when(j.finished_at), ` (${j.finished_at})`));
  if (j.duration_ms !== null) field('duration', duration(j.duration_ms));
  // Dependencies (docs/FILES.md): each job at the other end, a link to it.
  const links = ls => el('span', {}, ...ls.flatMap((l, i) => [i ? ', ' : '',
    el('a', { href: `#job=${l.id}` }, `#${l.id}`), ' ', stateBadge(l.state)]));
  if (j.after && j.after.length) {
    field('after', el('span', { testid: 'detail-after' }, links(j.after),
      ` (must ${j.after_policy === 'finished' ? 'finish' : 'succeed'})`));
  }
  if (j.waited_by && j.waited_by.length) field('waited by', el('span', { testid: 'detail-waited-by' }, links(j.waited_by)));
  if (j.unique_key) field('unique key', j.unique_key);
  if (j.error) field('error', j.error);
  const runs = el('table', { testid: 'detail-runs' });
  table(runs, [{ label: 'attempt', num: true }, 'status', 'runtime', 'container', 'started',
    { label: 'duration', num: true }, { label: 'exit', num: true }, 'error'],
  j.runs.map(r => el('tr', {}, el('td', { class: 'num' }, r.attempt), el('td', {}, r.status), el('td', {}, r.runtime),
    el('td', {}, r.container_name || ''), el('td', {}, when(r.started_at)), el('td', { class: 'num' }, duration(r.duration_ms)),
    el('td', { class: 'num' }, r.exit_code ?? (r.signal ? `signal ${r.signal}` : '')), el('td', {}, r.error || ''))),
  'no attempts yet');
  const events = el('table', { testid: 'detail-events' });
  table(events, ['at', 'event', 'detail'], j.events.map(e => el('tr', { testid: 'event-row' },
    el('td', {}, el('time', { datetime: e.at, title: relative(e.at) }, e.at)), el('td', {}, e.event),
    el('td', {}, el('code', {}, e.detail === null ? '' : JSON.stringify(e.detail))))), 'no events');
  const log = j.log !== null ? (j.log_truncated ? `… (only the last part is shown)\n${j.log}` : j.log)
    : (j.log_error || 'no run log yet');
  $('detail-body').replaceChildren(dl,
    el('h3', {}, 'Prompt'), el('pre', { testid: 'detail-prompt' }, j.prompt),
    el('h3', {}, 'Output'), el('pre', { testid: 'detail-output' }, j.result === null ? '(none yet)' : pretty(j.result)),
    el('h3', {}, 'Attempts'), runs,
    el('h3', {}, 'Events'), events,
    el('h3', {}, 'Run log'), el('pre', { testid: 'detail-log' }, log));
  $('detail').hidden = false;
}

function openJobId() {
  const m = location.hash.match(/^#job=(\d+)$/);
  return m ? m[1] : null;
}

function filterQuery() {
  const f = new FormData($('filters'));
  const q = new URLSearchParams();
  for (const [k, v] of f.entries()) if (v) q.set(k, v);
  return q.toString();
}

function syncGroupFilter(groups) {
  const sel = $('filters').elements.group;
  const have = new Set([...sel.options].map(o => o.value));
  for (const g of groups) if (!have.has(g)) sel.append(el('option', { value: g }, g));
}

let inFlight = false;
async function refresh() {
  if (inFlight || !$('login').hidden) return;
  inFlight = true;
  try {
    const id = openJobId();
    const [o, jobs, tasks, tp, detail] = await Promise.all([
      getJson('/api/overview'), getJson(`/api/jobs?${filterQuery()}`), getJson('/api/tasks'),
      getJson('/api/throughput'), id ? getJson(`/api/jobs/${id}`) : Promise.resolve(null)]);
    clockOffset = Date.parse(o.now) - Date.now();
    const groups = [...new Set([...o.groups.map(g => g.folder), ...o.counts.map(c => c.group)])];
    syncGroupFilter(groups);
    renderSummary(o);
    renderCounts(o, groups);
    renderRunning(o);
    renderChart(tp);
    renderJobs(jobs);
    renderTasks(tasks);
    if (detail) renderDetail(detail); else $('detail').hidden = true;
    $('status').textContent = `updated ${new Date(now()).toISOString().slice(11, 19)} UTC`;
    $('status').className = '';
  } catch (e) {
    if (e instanceof Unauthorized) return askForToken(e.message);
    $('status').textContent = `cannot reach the daemon's dashboard: ${e.message}`;
    $('status').className = 'error';
  } finally {
    inFlight = false;
  }
}

function $(id) { return document.getElementById(id); }

document.addEventListener('DOMContentLoaded', () => {
  $('filters').addEventListener('change', refresh);
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    $('login').hidden = true;
    $('main').hidden = false;
    refresh();
  });
  $('detail-close').addEventListener('click', (ev) => { ev.preventDefault(); history.replaceState(null, '', location.pathname); refresh(); });
  window.addEventListener('hashchange', refresh);
  refresh();
  setInterval(refresh, REFRESH_MS);
});
