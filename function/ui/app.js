// Candado's operations page: watches /watch?prefix=P with fetch() (so the
// bearer token travels in the Authorization header: EventSource cannot
// send one), keeps the held locks in a table with a live TTL countdown,
// and revokes on request. Plain JavaScript, no dependencies.
'use strict';

const TOKEN_KEY = 'candado.token';
// BASE is where the service is mounted: '' at the root, or a gateway's
// path prefix such as OpenFaaS' /function/candado, so every URL is the
// page's own path with /ui replaced.
const BASE = location.pathname.replace(/\/ui\/?$/, '');
const state = { locks: new Map(), rows: new Map(), lastId: '', ctrl: null, prefix: '', admin: true };
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

function headers(extra) {
  const h = Object.assign({}, extra);
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

function setStatus(text) { $('status').textContent = text; }

function log(text) { $('log').textContent = new Date().toLocaleTimeString() + ': ' + text; }

async function errorText(resp) {
  try {
    const env = await resp.json();
    return resp.status + ' ' + (env.code || '') + (env.error ? ': ' + env.error : '');
  } catch (e) {
    return String(resp.status);
  }
}

// watch (re)starts the stream for state.prefix and keeps it open: the
// server ends each stream before its platform's deadline, and the next one
// resumes from the last event id.
async function watch() {
  if (state.ctrl) state.ctrl.abort();
  const ctrl = new AbortController();
  state.ctrl = ctrl;
  state.lastId = '';
  state.locks.clear();
  render();
  setStatus('Connecting…');
  while (!ctrl.signal.aborted) {
    try {
      const h = headers({ Accept: 'text/event-stream' });
      if (state.lastId) h['Last-Event-ID'] = state.lastId;
      const resp = await fetch(BASE + '/watch?prefix=' + encodeURIComponent(state.prefix), { headers: h, signal: ctrl.signal, cache: 'no-store' });
      if (!resp.ok) {
        const why = await errorText(resp);
        if (resp.status === 401 || resp.status === 400) {
          setStatus('Not connected: ' + why + (resp.status === 401 ? '. Type the bearer token and press Watch.' : ''));
          return;
        }
        setStatus('Not connected: ' + why + '. Retrying…');
        await sleep(2000);
        continue;
      }
      setStatus('Live' + (state.prefix ? ' under “' + state.prefix + '”' : ', every lock') + '.');
      await readStream(resp.body);
    } catch (e) {
      if (ctrl.signal.aborted) return;
      setStatus('Reconnecting: ' + e.message);
      await sleep(1000);
    }
    await sleep(300);
  }
}

// readStream parses Server-Sent Events from body until it ends.
async function readStream(body) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let ev = {};
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line === '') {
        if (ev.data !== undefined) dispatch(ev);
        ev = {};
        continue;
      }
      if (line.startsWith(':')) continue; // a keepalive comment
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (field === 'id') ev.id = v;
      else if (field === 'event') ev.event = v;
      else if (field === 'data') ev.data = ev.data === undefined ? v : ev.data + '\n' + v;
    }
  }
}

function dispatch(ev) {
  if (ev.id) state.lastId = ev.id;
  let d;
  try { d = JSON.parse(ev.data); } catch (e) { return; }
  const now = performance.now();
  switch (d.event) {
    case 'snapshot':
      state.locks.clear();
      for (const l of d.locks) state.locks.set(l.id, { fence: l.fence, endsAt: now + l.ttl_ms });
      break;
    case 'state':
    case 'acquired':
    case 'extended':
      if (d.state === 1) state.locks.set(d.id, { fence: d.fence, endsAt: now + d.ttl_ms });
      else state.locks.delete(d.id);
      break;
    case 'released':
    case 'revoked':
    case 'expired': {
      const cur = state.locks.get(d.id);
      if (cur && cur.fence <= d.fence) state.locks.delete(d.id);
      break;
    }
    default:
      return;
  }
  if (d.event !== 'snapshot' && d.event !== 'state') log(d.event + ' ' + d.id + ' (fence ' + d.fence + ')');
  render();
}

// render adds and removes rows to match state.locks; rows that stay are
// never moved, so keyboard focus on a button survives updates.
function render() {
  const tbody = document.querySelector('#locks tbody');
  for (const [id, tr] of state.rows) {
    if (!state.locks.has(id)) {
      tr.remove();
      state.rows.delete(id);
    }
  }
  for (const [id, l] of state.locks) {
    let tr = state.rows.get(id);
    if (!tr) {
      tr = newRow(id);
      state.rows.set(id, tr);
      let before = null;
      for (const row of tbody.children) {
        if (row.dataset.id > id) { before = row; break; }
      }
      tbody.insertBefore(tr, before);
    }
    tr.querySelector('.fence').textContent = String(l.fence);
  }
  const n = state.locks.size;
  $('count').textContent = n === 0 ? 'No locks held.' : n === 1 ? '1 lock held.' : n + ' locks held.';
  tick();
}

function newRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.id = id;
  const cells = ['id', 'fence', 'holder', 'ttl', 'actions'].map((cls) => {
    const td = document.createElement(cls === 'id' ? 'th' : 'td');
    td.className = cls;
    tr.appendChild(td);
    return td;
  });
  cells[0].scope = 'row';
  cells[0].textContent = id;
  cells[2].textContent = '—';
  cells[2].title = 'no holder label';
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'revoke';
  b.textContent = 'Revoke';
  b.setAttribute('aria-label', 'Revoke lock ' + id);
  b.hidden = !state.admin;
  b.addEventListener('click', () => revoke(id, b));
  cells[4].appendChild(b);
  return tr;
}

// tick refreshes the TTL countdowns.
function tick() {
  const now = performance.now();
  for (const [id, tr] of state.rows) {
    const l = state.locks.get(id);
    if (!l) continue;
    const left = Math.max(0, l.endsAt - now);
    tr.querySelector('.ttl').textContent = left > 0 ? (left / 1000).toFixed(1) + ' s' : 'ending…';
    tr.classList.toggle('ending', left < 5000);
  }
}

// revoke asks for a second press within 3 s, then ends the lease.
async function revoke(id, button) {
  if (button.dataset.armed !== '1') {
    button.dataset.armed = '1';
    button.textContent = 'Confirm revoke';
    setTimeout(() => { button.dataset.armed = ''; button.textContent = 'Revoke'; }, 3000);
    return;
  }
  button.disabled = true;
  try {
    const resp = await fetch(BASE + '/locks/' + id.split('/').map(encodeURIComponent).join('/') + '/revoke', { method: 'POST', headers: headers({}) });
    if (resp.ok) {
      log('revoke of ' + id + ' sent');
    } else {
      log('revoke of ' + id + ' refused: ' + await errorText(resp));
      if (resp.status === 403) {
        state.admin = false;
        for (const b of document.querySelectorAll('button.revoke')) b.hidden = true;
      }
    }
  } catch (e) {
    log('revoke of ' + id + ' failed: ' + e.message);
  } finally {
    button.disabled = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('controls').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = $('token').value;
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    $('token').placeholder = token() ? 'token kept for this tab' : '';
    state.prefix = $('prefix').value.trim();
    state.admin = true;
    watch();
  });
  if (token()) $('token').placeholder = 'token kept for this tab';
  setInterval(tick, 100);
  watch();
});
