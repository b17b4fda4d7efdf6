// The operations board: stored alerts, then new ones live from the
// server-sent event stream (read with fetch, so the token can be sent),
// with a flash and a beep for each; acknowledge and close; pillar alarms
// with place, time, snapshot and clip; and the cameras' health.

import { getJson, sendJson, readEventStream } from './api.js';
import { t } from './i18n.js';
import {
  el, fill, fmtTime, fmtClock, fmtAgo, fmtCoord, fmtDistance, showError, showInfo, errorText, sleep,
} from './util.js';
import { blobUrl, zoom } from './snapshots.js';

const $ = (id) => document.getElementById(id);
const SOUND_KEY = 'safecity.sound';
const STREAM = '/api/v1/alerts/stream';
const LIST_LIMIT = 100;
// Reconnect backoff, and how long a silent stream is trusted (the server
// sends a keep-alive comment every 15 s).
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
const SILENCE_MS = 45_000;
const CLIP_RETRY_MS = 5000;
const CLIP_TRIES = 60;
const REFRESH_MS = 60_000;
const HEALTH_MS = 15_000;

let ctx = null;
let ready = false;
let visible = false;
const alerts = new Map(); // id -> alert, as the API shows it
let lastId = null; // the highest alert id seen (Last-Event-ID)
let selected = null; // the alert id in the detail panel
let history = null; // {id, changes} of the selected alert
let fresh = new Set(); // ids that arrived live and nobody handled yet
let flashing = new Set(); // ids to flash on the next draw
let live = null; // {stop: AbortController} while the stream runs
let timers = [];
let detailGeneration = 0;
const media = new Map(); // `${kind}:${event id}` -> blob: URL
let cameras = [];
let healthError = null;

export function init(c) {
  ctx = c;
  if (ready) return;
  ready = true;
  $('op-hide-closed').addEventListener('change', renderTable);
  $('op-sound').addEventListener('click', () => {
    localStorage.setItem(SOUND_KEY, soundOn() ? 'off' : 'on');
    renderSound();
    if (soundOn()) beep('normal');
  });
  // Browsers let a page make sound only after the user interacted.
  for (const type of ['pointerdown', 'keydown']) {
    document.addEventListener(type, unlockAudio, { capture: true });
  }
  renderSound();
}

export function show() {
  visible = true;
  renderTable();
  renderDetail();
  renderHealth();
  refreshList();
  refreshHealth();
}

export function hide() {
  visible = false;
}

export function rerender() {
  renderSound();
  renderTable();
  renderDetail();
  renderHealth();
  if (live) ctx.setLive(live.state, live.seconds);
}

// Stops the stream and forgets everything (sign-out).
export function reset() {
  live?.stop.abort();
  live = null;
  for (const timer of timers) clearInterval(timer);
  timers = [];
  alerts.clear();
  lastId = null;
  selected = null;
  history = null;
  flashing = new Set();
  fresh = new Set();
  visible = false;
  for (const url of media.values()) URL.revokeObjectURL(url);
  media.clear();
  detailGeneration += 1;
  $('op-rows').replaceChildren();
  fill($('op-detail'), el('p', { class: 'muted', 'data-i18n': 'ops.pick' }, t('ops.pick')));
}

// Loads the stored alerts, then follows the live stream until sign-out.
export async function startLive(c) {
  init(c);
  if (live) return;
  live = { stop: new AbortController(), state: 'connecting', seconds: 0 };
  const stop = live.stop.signal;
  timers.push(setInterval(() => { if (visible) refreshList(); }, REFRESH_MS));
  timers.push(setInterval(() => { if (visible) refreshHealth(); }, HEALTH_MS));
  // Keeps the "2 min ago" texts current.
  timers.push(setInterval(() => { if (visible) renderTable(); }, 30_000));
  await refreshList();
  if (stop.aborted) return;
  runStream(stop);
}

// --- The live stream -------------------------------------------------

function setLive(state, seconds) {
  if (!live) return;
  live.state = state;
  live.seconds = seconds;
  ctx.setLive(state, seconds);
}

async function runStream(stop) {
  let attempt = 0;
  while (!stop.aborted) {
    const connection = new AbortController();
    const abort = () => connection.abort();
    stop.addEventListener('abort', abort, { once: true });
    // A stream that goes quiet past the keep-alives is dead: reconnect.
    let watchdog = setTimeout(abort, SILENCE_MS);
    const activity = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(abort, SILENCE_MS);
    };
    setLive('connecting');
    try {
      await readEventStream(STREAM, {
        lastEventId: lastId ?? 0,
        signal: connection.signal,
        onOpen: () => { attempt = 0; setLive('live'); },
        onActivity: activity,
        onEvent: (e) => {
          if (e.type === 'alert') received(e);
        },
      });
    } catch (e) {
      if (stop.aborted) break;
      if (e.status === 401 || e.status === 403) {
        setLive('denied');
        showError($('op-error'), e);
        break;
      }
    } finally {
      clearTimeout(watchdog);
      stop.removeEventListener('abort', abort);
    }
    if (stop.aborted) break;
    // Exponential backoff with jitter; the next connection sends
    // Last-Event-ID, so the server replays what was missed.
    attempt += 1;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (attempt - 1));
    const wait = Math.round(base * (0.75 + Math.random() * 0.5));
    setLive('reconnecting', Math.ceil(wait / 1000));
    await sleep(wait, stop);
  }
}

function received(e) {
  let alert;
  try {
    alert = JSON.parse(e.data);
  } catch {
    return;
  }
  const known = alerts.has(alert.id);
  alerts.set(alert.id, alert);
  lastId = Math.max(lastId ?? 0, alert.id);
  if (known) return;
  // A new alert: flash it, sound it, and open a pillar alarm at once.
  flashing.add(alert.id);
  fresh.add(alert.id);
  beep(alert.kind === 'panic_alarm' ? 'panic' : alert.priority);
  if (alert.kind === 'panic_alarm' && !noteInUse()) {
    selected = alert.id;
    history = null;
    loadHistory(alert.id);
  }
  renderTable();
  if (selected === alert.id) renderDetail();
  // The alert's camera just sent something: its health may have changed.
  if (visible) refreshHealth();
}

// Re-reads the newest alerts (their states change by other operators too).
async function refreshList() {
  try {
    const body = await getJson('/api/v1/alerts', { query: { limit: LIST_LIMIT } });
    for (const a of body.alerts || []) {
      alerts.set(a.id, a);
      lastId = Math.max(lastId ?? 0, a.id);
    }
    showError($('op-error'), null);
  } catch (e) {
    showError($('op-error'), e);
  }
  renderTable();
  if (selected !== null) renderDetail();
}

// --- Sound -----------------------------------------------------------

let audio = null;

function soundOn() {
  return localStorage.getItem(SOUND_KEY) !== 'off';
}

function renderSound() {
  const on = soundOn();
  const button = $('op-sound');
  button.textContent = on ? t('ops.sound_on') : t('ops.sound_off');
  button.setAttribute('aria-pressed', String(on));
  button.classList.toggle('muted-btn', !on);
}

function unlockAudio() {
  try {
    if (!audio) audio = new AudioContext();
    if (audio.state === 'suspended') audio.resume();
  } catch {
    audio = null;
  }
}

// A short generated tone sequence; pillar alarms get the most urgent one.
// A burst of alerts (a replay after a reconnect) sounds once.
let lastBeep = 0;
function beep(level) {
  if (!soundOn()) return;
  if (level !== 'panic' && Date.now() - lastBeep < 1500) return;
  lastBeep = Date.now();
  unlockAudio();
  if (!audio) return;
  const patterns = {
    panic: [[988, 0.16], [740, 0.16], [988, 0.16], [740, 0.16]],
    critical: [[988, 0.14], [988, 0.14], [988, 0.14]],
    high: [[880, 0.14], [880, 0.14]],
    normal: [[740, 0.18]],
    low: [[660, 0.12]],
  };
  const tones = patterns[level] || patterns.normal;
  let at = audio.currentTime + 0.02;
  for (const [freq, length] of tones) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = level === 'panic' ? 'square' : 'sine';
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + length);
    osc.connect(gain).connect(audio.destination);
    osc.start(at);
    osc.stop(at + length + 0.02);
    at += length + 0.06;
  }
}

// --- Table -----------------------------------------------------------

function sorted() {
  return [...alerts.values()].sort((a, b) => b.id - a.id);
}

function renderTable() {
  if (!ctx) return;
  const all = sorted();
  const hideClosed = $('op-hide-closed').checked;
  const shown = all.filter((a) => !hideClosed || a.state !== 'closed');
  const count = (s) => all.filter((a) => a.state === s).length;
  const newCount = count('new');
  ctx.setAlertBadge(newCount);
  $('op-counts').textContent = t('ops.counts', { new: newCount, ack: count('acknowledged') });
  showInfo($('op-empty'), shown.length ? '' : t('ops.none'));
  for (const id of fresh) if (alerts.get(id)?.state !== 'new') fresh.delete(id);
  fill($('op-rows'), shown.map(alertRow));
  flashing = new Set();
}

function alertRow(a) {
  const panic = a.kind === 'panic_alarm';
  const name = a.camera?.name || a.camera_id;
  const row = el('tr', {
    class: [
      'alert-row', panic ? 'panic' : 'watch', `state-${a.state}`,
      flashing.has(a.id) ? 'flash' : null, fresh.has(a.id) ? 'fresh' : null,
      selected === a.id ? 'selected' : null,
    ].filter(Boolean).join(' '),
    dataset: { alert: a.id, state: a.state, kind: a.kind },
    onclick: () => select(a.id),
  },
  el('td', { class: 'nowrap', title: fmtTime(a.ts) }, shortTime(a.ts), el('div', { class: 'muted small' }, fmtAgo(a.ts))),
  el('td', {}, el('span', { class: `kind-tag kind-${a.kind}` }, t(`alert.${a.kind}`, {}, a.kind))),
  el('td', {}, el('span', { class: `prio prio-${a.priority}` }, t(`priority.${a.priority}`, {}, a.priority))),
  el('td', { title: a.watchlist?.reason || a.camera_id }, panic
    ? [el('strong', {}, name), el('div', { class: 'muted small mono' }, fmtCoord(a.camera?.lat, a.camera?.lon))]
    : [el('span', { class: 'plate-chip' }, a.plate || '—'), el('div', { class: 'muted small' }, name)]),
  el('td', {}, el('span', { class: `state state-${a.state}` }, t(`state.${a.state}`, {}, a.state))),
  el('td', { class: 'actions' }, actionButtons(a, 'btn-small')));
  return row;
}

// Time of day for today's alerts, date and time for older ones.
function shortTime(iso) {
  return Date.now() - new Date(iso).getTime() < 12 * 3600 * 1000 ? fmtClock(iso) : fmtTime(iso, false);
}

function actionButtons(a, size = '') {
  const stop = (f) => (e) => { e.stopPropagation(); f(); };
  return [
    a.state === 'new' ? el('button', {
      class: `btn btn-ack ${size}`, type: 'button', dataset: { action: 'ack' },
      onclick: stop(() => change(a.id, 'ack')),
    }, t('ops.ack')) : null,
    a.state !== 'closed' ? el('button', {
      class: `btn btn-ghost ${size}`, type: 'button', dataset: { action: 'close' },
      onclick: stop(() => change(a.id, 'close')),
    }, t('ops.close')) : null,
  ];
}

function noteInUse() {
  const note = document.getElementById('op-note');
  return Boolean(note && (note.value || document.activeElement === note));
}

async function change(id, verb) {
  const note = selected === id ? ($('op-note')?.value.trim() || '') : '';
  showError($('op-error'), null);
  try {
    const updated = await sendJson('POST', `/api/v1/alerts/${id}/${verb}`, note ? { note } : {});
    alerts.set(id, updated);
    if ($('op-note') && selected === id) $('op-note').value = '';
  } catch (e) {
    showError($('op-error'), e);
    // Another operator may have changed it: show its current state.
    if (e.status === 409) {
      try { alerts.set(id, await getJson(`/api/v1/alerts/${id}`)); } catch { /* shown above */ }
    }
  }
  renderTable();
  if (selected === id) {
    await loadHistory(id);
    renderDetail();
  }
}

function select(id) {
  if (selected === id) return;
  selected = id;
  history = null;
  fresh.delete(id);
  renderTable();
  renderDetail();
  loadHistory(id);
}

async function loadHistory(id) {
  try {
    const full = await getJson(`/api/v1/alerts/${id}`);
    if (selected !== id) return;
    history = { id, changes: full.history || [] };
    const { history: _, ...alert } = full;
    alerts.set(id, alert);
    renderDetail();
  } catch {
    // The detail shows what the list had.
  }
}

// --- Detail panel ----------------------------------------------------

const AUDIT_REASON = (a) => `operations board: alert ${a.id}`;

function renderDetail() {
  const box = $('op-detail');
  detailGeneration += 1;
  const a = selected !== null ? alerts.get(selected) : null;
  if (!a) {
    fill(box, el('p', { class: 'muted' }, t('ops.pick')));
    return;
  }
  const panic = a.kind === 'panic_alarm';
  const place = a.camera
    ? [el('strong', {}, a.camera.name), ' ', el('span', { class: 'muted mono' }, fmtCoord(a.camera.lat, a.camera.lon))]
    : el('span', { class: 'mono' }, a.camera_id);
  const facts = [
    [t('detail.place'), place],
    [t('detail.time'), [fmtTime(a.ts), ' ', el('span', { class: 'muted' }, `(${fmtAgo(a.ts)})`)]],
    [t('col.priority'), el('span', { class: `prio prio-${a.priority}` }, t(`priority.${a.priority}`, {}, a.priority))],
    [t('col.state'), el('span', { class: `state state-${a.state}` }, t(`state.${a.state}`, {}, a.state))],
  ];
  if (!panic) {
    facts.splice(1, 0, [t('col.plate'), el('span', { class: 'plate-chip' }, a.plate || '—')]);
    if (a.watchlist) {
      facts.push([t('detail.watch'), `${a.watchlist.pattern} (${t(`mode.${a.watchlist.mode}`, {}, a.watchlist.mode)}) — ${a.watchlist.reason}`]);
    }
    if (a.distance !== null && a.distance !== undefined) facts.push([t('col.distance'), String(a.distance)]);
  }
  const snapshot = el('div', { class: 'media-box snapshot-box' }, a.snapshot_url ? t('loading') : t('detail.no_snapshot'));
  const clip = panic ? el('div', { class: 'media-box clip-box' }, t('detail.clip_pending')) : null;
  fill(box,
    el('div', { class: 'detail-head' },
      el('h2', {}, el('span', { class: `kind-tag kind-${a.kind}` }, t(`alert.${a.kind}`, {}, a.kind)), ` #${a.id}`)),
    el('dl', { class: 'facts' }, facts.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
    el('div', { class: 'media' },
      el('figure', {}, el('figcaption', {}, t('col.snapshot')), snapshot),
      panic ? el('figure', {}, el('figcaption', {}, t('detail.clip')), clip) : null),
    panic && a.nearby_cameras?.length
      ? el('div', { class: 'nearby' }, el('h3', {}, t('detail.nearby')),
        el('ul', {}, a.nearby_cameras.map((c) => el('li', {}, `${c.name} — ${fmtDistance(c.distance_m)}`))))
      : null,
    a.state !== 'closed'
      ? el('div', { class: 'detail-actions' },
        el('input', { id: 'op-note', type: 'text', maxlength: 2000, placeholder: t('detail.note') }),
        actionButtons(a))
      : null,
    history && history.id === a.id && history.changes.length
      ? el('div', { class: 'history' }, el('h3', {}, t('detail.history')),
        el('ul', {}, history.changes.map((c) => el('li', {},
          `${fmtTime(c.at)} — ${c.who}: ${t(`state.${c.from}`, {}, c.from)} → ${t(`state.${c.to}`, {}, c.to)}`,
          c.note ? el('div', { class: 'muted small' }, c.note) : null))))
      : null);
  const generation = detailGeneration;
  if (a.snapshot_url) showMedia(generation, snapshot, 'snapshot', a, a.snapshot_url);
  if (panic) showClip(generation, clip, a);
}

// Downloads a snapshot or clip once per event and shows it in `box`.
async function showMedia(generation, box, kind, a, path) {
  const key = `${kind}:${a.event_id}`;
  let url = media.get(key);
  if (!url) {
    url = await blobUrl('board', path, AUDIT_REASON(a));
    if (url) media.set(key, url);
  }
  if (!url || generation !== detailGeneration) return;
  if (kind === 'snapshot') {
    fill(box, el('img', { src: url, alt: t('col.snapshot'), class: 'detail-img', onclick: () => zoom(url) }));
  } else {
    fill(box, el('video', { src: url, controls: true, preload: 'auto', class: 'clip' }));
  }
}

// The pillar's clip may arrive after the alarm: retry until it is there.
async function showClip(generation, box, a) {
  const path = `/api/v1/events/${a.event_id}/clip`;
  for (let i = 0; i < CLIP_TRIES && generation === detailGeneration; i++) {
    try {
      await showMedia(generation, box, 'clip', a, path);
      return;
    } catch (e) {
      if (e.status !== 404) {
        if (generation === detailGeneration) fill(box, el('span', { class: 'error-text' }, errorText(e)));
        return;
      }
      if (generation === detailGeneration) {
        fill(box, el('span', { class: 'pending' }, t('detail.clip_pending')),
          el('div', { class: 'muted small' }, t('detail.clip_retry', { s: CLIP_RETRY_MS / 1000 })));
      }
    }
    await sleep(CLIP_RETRY_MS);
  }
}

// --- Camera health ---------------------------------------------------

async function refreshHealth() {
  try {
    cameras = await ctx.cameras(true);
    healthError = null;
  } catch (e) {
    healthError = e;
  }
  renderHealth();
}

function renderHealth() {
  if (healthError) {
    fill($('op-health'), el('li', { class: 'error-text' }, errorText(healthError)));
    return;
  }
  const status = (c) => c.health?.status || 'unknown';
  const order = { offline: 0, unknown: 1, online: 2 };
  const list = [...cameras].sort((a, b) => order[status(a)] - order[status(b)] || a.name.localeCompare(b.name));
  const n = (s) => list.filter((c) => status(c) === s).length;
  $('op-health-summary').textContent = t('health.summary', { online: n('online'), offline: n('offline'), unknown: n('unknown') });
  if (!list.length) {
    fill($('op-health'), el('li', { class: 'muted' }, t('health.none')));
    return;
  }
  fill($('op-health'), list.map((c) => {
    const s = status(c);
    const h = c.health || {};
    // Offline: when it went down; otherwise: when it last sent something.
    let when = '';
    if (s === 'offline' && h.since) when = t('health.since', { ago: fmtAgo(h.since) });
    else if (h.last_seen) when = t('health.last_seen', { ago: fmtAgo(h.last_seen) });
    return el('li', { class: `health health-${s}`, dataset: { camera: c.id, status: s }, title: `${c.name} (${c.id}) — ${fmtCoord(c.lat, c.lon)}` },
      el('span', { class: 'dot' }),
      el('div', { class: 'health-body' },
        el('div', { class: 'health-name' }, c.name),
        el('div', { class: 'health-state' },
          el('strong', {}, t(`health.${s}`)), ' · ', t(`camkind.${c.kind}`, {}, c.kind), when ? ` · ${when}` : '')));
  }));
}
