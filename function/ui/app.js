// Candado's operations page: watches /watch?prefix=P with fetch() (so the
// bearer token travels in the Authorization header: EventSource cannot
// send one), keeps the held locks in a table with each lease's holder and
// a live TTL countdown, and revokes on request. Waiter counts change
// without events, so the page reads them from the listing now and then.
// Text from the service (ids, holder labels) only ever goes in through
// textContent, never as markup. Plain JavaScript, no dependencies.
'use strict';

const TOKEN_KEY = 'candado.token';
// BASE is where the service is mounted: '' at the root, or a gateway's
// path prefix such as OpenFaaS' /function/candado, so every URL is the
// page's own path with /ui replaced.
const BASE = location.pathname.replace(/\/ui\/?$/, '');
// state.locks maps each held lock's id to its leases (by fence: endsAt,
// holder, mode) and what the listing said of it (limit, waiters).
const state = { locks: new Map(), rows: new Map(), lastId: '', ctrl: null, prefix: '', admin: true, counts: true, countsTimer: 0, countsDue: 0 };
// COUNTS_EVERY is how often the waiter counts are read again; COUNTS_PAGES
// bounds one reading (each page is at most 1000 locks), and COUNTS_ASKED
// the locks asked one by one when the listing does not count waiters.
const COUNTS_EVERY = 5000;
const COUNTS_PAGES = 5;
const COUNTS_ASKED = 50;
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
  state.counts = true;
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
      countsSoon(COUNTS_EVERY);
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

// leasesOf is the live leases of a lock as a state or snapshot gives it:
// its leases, or (from a service that lists none) the lock's own fields.
function leasesOf(l, now) {
  const leases = new Map();
  const list = l.leases && l.leases.length ? l.leases : l.state === 1 ? [l] : [];
  for (const x of list) leases.set(x.fence, { endsAt: now + x.ttl_ms, holder: x.holder || '', mode: x.mode || '' });
  return leases;
}

// lockOf is the lock as a state or snapshot gives it.
function lockOf(l, now) {
  return { leases: leasesOf(l, now), limit: l.limit || 0, waiters: l.waiters, known: true };
}

function dispatch(ev) {
  if (ev.id) state.lastId = ev.id;
  let d;
  try { d = JSON.parse(ev.data); } catch (e) { return; }
  const now = performance.now();
  switch (d.event) {
    case 'snapshot':
      state.locks.clear();
      for (const l of d.locks) {
        const lk = lockOf(l, now);
        if (lk.leases.size) state.locks.set(l.id, lk);
      }
      break;
    case 'state': {
      const lk = lockOf(d, now);
      if (lk.leases.size) state.locks.set(d.id, lk);
      else state.locks.delete(d.id);
      break;
    }
    case 'acquired':
    case 'extended': {
      // A change names one lease; other leases of a semaphore or of shared
      // leases stay.
      let lk = state.locks.get(d.id);
      if (!lk) {
        lk = { leases: new Map(), limit: 0, waiters: undefined, known: false };
        state.locks.set(d.id, lk);
        countsSoon(400); // its limit and waiters
      }
      if (d.state === 1) lk.leases.set(d.fence, { endsAt: now + d.ttl_ms, holder: d.holder || '', mode: d.mode || '' });
      break;
    }
    case 'released':
    case 'revoked':
    case 'expired': {
      const lk = state.locks.get(d.id);
      if (lk) {
        lk.leases.delete(d.fence);
        if (lk.leases.size === 0) state.locks.delete(d.id);
      }
      break;
    }
    default:
      return;
  }
  if (d.event !== 'snapshot' && d.event !== 'state') {
    log(d.event + ' ' + d.id + ' (fence ' + d.fence + (d.holder ? ', holder “' + d.holder + '”' : '') + ')');
  }
  render();
}

// countsSoon reads the listing's counts after ms, unless a reading is
// already due sooner.
function countsSoon(ms) {
  if (!state.counts) return;
  if (state.countsTimer && state.countsDue <= performance.now() + ms) return;
  clearTimeout(state.countsTimer);
  state.countsDue = performance.now() + ms;
  state.countsTimer = setTimeout(readCounts, ms);
}

// readCounts takes each held lock's limit and waiters from GET /locks
// (the queue has no events), then reads them again in COUNTS_EVERY while
// the stream is live. A listing without waiter counts leaves them to
// GET /locks/{id}, for the first COUNTS_ASKED locks. Leases still come
// from the stream only.
async function readCounts() {
  state.countsTimer = 0;
  const ctrl = state.ctrl;
  if (!ctrl || ctrl.signal.aborted || !state.counts) return;
  if (document.hidden) { countsSoon(COUNTS_EVERY); return; }
  const get = async (path) => {
    const resp = await fetch(BASE + path, { headers: headers({}), signal: ctrl.signal, cache: 'no-store' });
    if (resp.status === 401 || resp.status === 403) {
      state.counts = false; // the token may watch but not read: no counts
      return null;
    }
    return resp.ok ? (await resp.json()).data : null;
  };
  const take = (l) => {
    const lk = state.locks.get(l.id);
    if (!lk || l.state !== 1) return false;
    lk.limit = l.limit || 0;
    if (l.waiters !== undefined) lk.waiters = l.waiters;
    lk.known = true;
    return l.waiters !== undefined;
  };
  const counted = new Set();
  let cursor = '';
  try {
    for (let page = 0; page < COUNTS_PAGES && state.counts; page++) {
      const data = await get('/locks?limit=1000&prefix=' + encodeURIComponent(state.prefix) + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      if (!data) break;
      for (const l of data.locks || []) if (take(l)) counted.add(l.id);
      cursor = data.cursor;
      if (!cursor) break;
    }
    const ask = [...state.locks.keys()].filter((id) => !counted.has(id)).sort().slice(0, COUNTS_ASKED);
    for (const id of ask) {
      if (!state.counts) break;
      const data = await get('/locks/' + id.split('/').map(encodeURIComponent).join('/'));
      if (data) take(data);
    }
  } catch (e) {
    if (ctrl.signal.aborted) return;
  }
  render();
  countsSoon(COUNTS_EVERY);
}

// sortedLeases is a lock's leases by fence: the order they were granted.
function sortedLeases(lk) {
  return [...lk.leases.entries()].sort((a, b) => a[0] - b[0]).map(([fence, l]) => Object.assign({ fence }, l));
}

// modeOf names what kind of lock lk is.
function modeOf(lk, leases) {
  if (leases.some((l) => l.mode === 'shared')) return 'shared';
  if (lk.limit > 1) return 'semaphore';
  return 'exclusive';
}

// setLines shows one value per lease in cell td: plain text for one, a
// list for several, each line beside its lease's line in the other cells.
function setLines(td, values, title) {
  if (values.length <= 1) {
    if (td.textContent !== values[0]) td.textContent = values[0];
    td.title = title || '';
    return;
  }
  let ul = td.firstElementChild;
  if (!ul || ul.tagName !== 'UL' || ul.children.length !== values.length) {
    ul = document.createElement('ul');
    ul.className = 'per-lease';
    ul.setAttribute('role', 'list');
    for (let i = 0; i < values.length; i++) ul.appendChild(document.createElement('li'));
    td.replaceChildren(ul);
    td.title = '';
  }
  const titled = td.classList.contains('holder'); // a long label is cut short on screen
  values.forEach((v, i) => {
    const li = ul.children[i];
    if (li.textContent !== v) li.textContent = v;
    if (titled) li.title = v;
  });
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
  for (const [id, lk] of state.locks) {
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
    const leases = sortedLeases(lk);
    const mode = modeOf(lk, leases);
    tr.dataset.mode = mode;
    tr.querySelector('.mode').textContent = mode;
    tr.querySelector('.holders').textContent = mode === 'semaphore' ? leases.length + ' of ' + lk.limit : String(leases.length);
    const waiters = tr.querySelector('.waiters');
    waiters.textContent = lk.waiters === undefined || !state.counts ? '—' : String(lk.waiters);
    waiters.title = state.counts ? '' : 'the token may not list locks';
    setLines(tr.querySelector('.fence'), leases.map((l) => String(l.fence)));
    const labels = leases.map((l) => l.holder || '—');
    setLines(tr.querySelector('.holder'), labels, leases.length === 1 && !leases[0].holder ? 'no holder label' : '');
  }
  const n = state.locks.size;
  $('count').textContent = n === 0 ? 'No locks held.' : n === 1 ? '1 lock held.' : n + ' locks held.';
  tick();
}

function newRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.id = id;
  const cells = ['id', 'mode', 'holders', 'waiters', 'fence', 'holder', 'ttl', 'actions'].map((cls) => {
    const td = document.createElement(cls === 'id' ? 'th' : 'td');
    td.className = cls;
    tr.appendChild(td);
    return td;
  });
  cells[0].scope = 'row';
  cells[0].textContent = id;
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'revoke';
  b.textContent = 'Revoke';
  b.setAttribute('aria-label', 'Revoke lock ' + id);
  b.hidden = !state.admin;
  b.addEventListener('click', () => revoke(id, b));
  cells[7].appendChild(b);
  return tr;
}

// tick refreshes the TTL countdowns, one per lease.
function tick() {
  const now = performance.now();
  for (const [id, tr] of state.rows) {
    const lk = state.locks.get(id);
    if (!lk) continue;
    const lefts = sortedLeases(lk).map((l) => Math.max(0, l.endsAt - now));
    setLines(tr.querySelector('.ttl'), lefts.map((left) => left > 0 ? (left / 1000).toFixed(1) + ' s' : 'ending…'));
    tr.classList.toggle('ending', lefts.some((left) => left < 5000));
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
