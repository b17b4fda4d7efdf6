// Small DOM and time helpers shared by the views.

import { t, locale } from './i18n.js';

// Creates an element: el('td', {class: 'x', onclick: f}, 'text', child, ...).
// Attributes starting with "on" become listeners; `dataset` is an object;
// null, undefined and false attributes and children are skipped.
export function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      node.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(node.dataset, v);
    } else if (k === 'text') {
      node.textContent = v;
    } else {
      node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(node, children);
  return node;
}

// SVG element shorthand.
export function svg(tag, attrs = {}, ...children) {
  return el('svg:' + tag, attrs, ...children);
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
}

// Replaces the children of `node`.
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

// "2026-11-22T10:15:30Z" -> local date and time in the UI language.
export function fmtTime(iso, withSeconds = true) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(locale(), {
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: withSeconds ? '2-digit' : undefined,
    hour12: false,
  }).format(d);
}

// Time of day only, for timelines.
export function fmtClock(iso) {
  const d = new Date(iso);
  return new Intl.DateTimeFormat(locale(), {
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).format(d);
}

// Date only.
export function fmtDate(iso) {
  return new Intl.DateTimeFormat(locale(), { year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(iso));
}

// "3 min ago" in the UI language (own strings: not every browser has
// relative-time data for Kazakh).
export function fmtAgo(iso) {
  if (!iso) return '—';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 5) return t('ago.now');
  if (s < 60) return t('ago.s', { n: s });
  if (s < 3600) return t('ago.min', { n: Math.round(s / 60) });
  if (s < 86400) return t('ago.h', { n: Math.round(s / 3600) });
  return t('ago.d', { n: Math.round(s / 86400) });
}

export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return new Intl.NumberFormat(locale(), {
    maximumFractionDigits: digits, minimumFractionDigits: digits,
  }).format(n);
}

// Metres as "850 m" or "12.4 km".
export function fmtDistance(m) {
  if (m === null || m === undefined) return '—';
  return m < 1000
    ? `${fmtNumber(m)} ${t('unit.m')}`
    : `${fmtNumber(m / 1000, 1)} ${t('unit.km')}`;
}

// Seconds as "45 s", "12 min" or "3 h 05 min".
export function fmtDuration(s) {
  if (s === null || s === undefined) return '—';
  const abs = Math.abs(s);
  if (abs < 90) return `${fmtNumber(s)} ${t('unit.s')}`;
  if (abs < 3600) return `${fmtNumber(s / 60)} ${t('unit.min')}`;
  const h = Math.floor(abs / 3600);
  const m = Math.round((abs % 3600) / 60);
  return `${s < 0 ? '-' : ''}${h} ${t('unit.h')} ${String(m).padStart(2, '0')} ${t('unit.min')}`;
}

export function fmtCoord(lat, lon) {
  if (lat === null || lat === undefined) return '—';
  return `${Number(lat).toFixed(5)}, ${Number(lon).toFixed(5)}`;
}

// The value of an <input type="datetime-local"> (local time) as RFC 3339 UTC.
export function localInputToRfc3339(value) {
  if (!value) return null;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString().replace(/\.000Z$/, 'Z');
}

// A Date as the value of an <input type="datetime-local">.
export function toLocalInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// Shows an error (an ApiError or any Error) in `box`, or hides it.
export function showError(box, err) {
  if (!box) return;
  if (!err) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.hidden = false;
  fill(box, errorText(err));
}

// A one-line, translated description of an error and the server's words.
export function errorText(err) {
  if (err && err.status !== undefined) {
    if (err.status === 0) return t('error.network');
    const head = t(`error.http.${err.status}`, {}, null) || t('error.http', { status: err.status });
    return err.message ? `${head}: ${err.message}` : head;
  }
  return String((err && err.message) || err);
}

// Shows a plain status text in `box` (e.g. "no results"), or hides it.
export function showInfo(box, text) {
  if (!box) return;
  box.hidden = !text;
  box.textContent = text || '';
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// Runs async `jobs` with at most `limit` at a time.
export async function pool(jobs, limit) {
  const queue = [...jobs];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) {
      try { await queue.shift()(); } catch { /* each job reports its own errors */ }
    }
  });
  await Promise.all(workers);
}
