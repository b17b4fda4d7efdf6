// The audit log for admins, newest first, a page at a time (`before`).

import { getJson } from './api.js';
import { t } from './i18n.js';
import { el, fill, fmtTime, showError, showInfo } from './util.js';

const $ = (id) => document.getElementById(id);
const LIMIT = 50;

let ready = false;
let befores = [null]; // the `before` of each page seen
let pageIndex = 0;
let records = null;
let next = null;

export function init() {
  if (ready) return;
  ready = true;
  $('au-newest').addEventListener('click', () => { befores = [null]; load(0); });
  $('au-older').addEventListener('click', () => load(pageIndex + 1));
}

export function show() {
  befores = [null];
  load(0);
}

export function rerender() {
  if (records) render();
}

export function reset() {
  records = null;
  $('au-rows').replaceChildren();
}

async function load(index) {
  if (index >= befores.length) return;
  try {
    const body = await getJson('/api/v1/audit', { query: { limit: LIMIT, before: befores[index] } });
    records = body.records || [];
    next = body.next_before ?? null;
    pageIndex = index;
    if (next !== null && befores.length === index + 1) befores.push(next);
    showError($('au-error'), null);
    render();
  } catch (e) {
    showError($('au-error'), e);
  }
}

// "plate=123ABC02&mode=exact" as "plate: 123ABC02, mode: exact".
function readable(query) {
  if (!query) return '';
  // The reason has its own column.
  return [...new URLSearchParams(query)].filter(([k]) => k !== 'reason').map(([k, v]) => `${k}: ${v}`).join(', ');
}

function render() {
  $('au-older').disabled = next === null;
  $('au-page').textContent = t('page.n', { n: pageIndex + 1 });
  showInfo($('au-empty'), records.length ? '' : t('audit.none'));
  fill($('au-rows'), records.map((r) => el('tr', { dataset: { seq: r.seq } },
    el('td', { class: 'num' }, String(r.seq)),
    el('td', { class: 'nowrap', title: r.at }, fmtTime(r.at)),
    el('td', {}, r.who),
    el('td', {}, el('span', { class: 'role-tag', dataset: { role: r.role } }, t(`role.${r.role}`, {}, r.role))),
    el('td', { class: 'mono small' }, r.route),
    el('td', { class: 'wrap small' }, readable(r.query) || '—'),
    el('td', { class: 'wrap' }, r.reason || '—'),
    el('td', { class: 'num' }, r.results ?? '—'),
    el('td', { class: 'wrap small detail-col' }, r.detail || ''))));
}
