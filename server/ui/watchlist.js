// Watchlist management for operators: list entries, add a plate or
// pattern with match mode, reason, priority and expiry, remove one.

import { getJson, sendJson } from './api.js';
import { t } from './i18n.js';
import { el, fill, fmtTime, localInputToRfc3339, showError, showInfo } from './util.js';

const $ = (id) => document.getElementById(id);

let ready = false;
let entries = null;
let confirming = null; // the id whose Remove button asks for confirmation
let confirmTimer = null;

export function init() {
  if (ready) return;
  ready = true;
  $('wl-form').addEventListener('submit', (e) => {
    e.preventDefault();
    add();
  });
  $('wl-mode').addEventListener('change', () => {
    $('wl-distance').disabled = $('wl-mode').value !== 'fuzzy';
  });
  $('wl-removed').addEventListener('change', load);
  $('wl-refresh').addEventListener('click', load);
}

export function show() {
  load();
}

export function rerender() {
  if (entries) render();
}

export function reset() {
  entries = null;
  $('wl-rows').replaceChildren();
  $('wl-form').reset();
  showError($('wl-error'), null);
  showInfo($('wl-ok'), '');
}

async function load() {
  try {
    const body = await getJson('/api/v1/watchlist', {
      query: { include_removed: $('wl-removed').checked ? 'true' : null },
    });
    entries = body.entries || [];
    showError($('wl-error'), null);
    render();
  } catch (e) {
    showError($('wl-error'), e);
  }
}

async function add() {
  const pattern = $('wl-pattern').value.trim();
  const reason = $('wl-reason').value.trim();
  showInfo($('wl-ok'), '');
  if (!pattern) {
    showError($('wl-error'), new Error(t('wl.pattern.missing')));
    return;
  }
  if (!reason) {
    showError($('wl-error'), new Error(t('reason.missing')));
    $('wl-reason').focus();
    return;
  }
  const mode = $('wl-mode').value;
  const body = { pattern, mode, reason, priority: $('wl-priority').value };
  if (mode === 'fuzzy') body.max_distance = Number($('wl-distance').value || 1);
  const expires = localInputToRfc3339($('wl-expires').value);
  if (expires) body.expires = expires;
  $('wl-submit').disabled = true;
  try {
    const entry = await sendJson('POST', '/api/v1/watchlist', body);
    showError($('wl-error'), null);
    showInfo($('wl-ok'), t('wl.added', { pattern: entry.pattern }));
    $('wl-pattern').value = '';
    $('wl-reason').value = '';
    $('wl-expires').value = '';
    await load();
  } catch (e) {
    showError($('wl-error'), e);
  } finally {
    $('wl-submit').disabled = false;
  }
}

// Removing takes two clicks: the first asks, the second (within a few
// seconds) removes.
async function remove(entry) {
  if (confirming !== entry.id) {
    confirming = entry.id;
    clearTimeout(confirmTimer);
    confirmTimer = setTimeout(() => { confirming = null; render(); }, 5000);
    render();
    return;
  }
  confirming = null;
  clearTimeout(confirmTimer);
  try {
    await sendJson('DELETE', `/api/v1/watchlist/${entry.id}`, undefined, {
      query: { reason: t('wl.removed_reason') },
    });
    showInfo($('wl-ok'), t('wl.removed', { pattern: entry.pattern }));
    await load();
  } catch (e) {
    showError($('wl-error'), e);
    render();
  }
}

function render() {
  const active = entries.filter((e) => e.active).length;
  $('wl-count').textContent = t('wl.count', { n: active });
  showInfo($('wl-empty'), entries.length ? '' : t('wl.none'));
  fill($('wl-rows'), entries.map((e) => {
    const state = e.removed ? 'removed' : e.active ? 'active' : 'expired';
    return el('tr', { class: `wl-${state}`, dataset: { watch: e.id, pattern: e.pattern } },
      el('td', {}, el('span', { class: 'plate-chip' }, e.pattern)),
      el('td', {}, t(`mode.${e.mode}`, {}, e.mode), e.max_distance ? ` ≤ ${e.max_distance}` : ''),
      el('td', {}, el('span', { class: `prio prio-${e.priority}` }, t(`priority.${e.priority}`, {}, e.priority))),
      el('td', { class: 'wrap' }, e.reason),
      el('td', { class: 'nowrap' }, e.expires ? fmtTime(e.expires, false) : t('wl.never')),
      el('td', { class: 'nowrap' }, fmtTime(e.created, false), el('div', { class: 'muted small' }, e.created_by)),
      el('td', {}, el('span', { class: `state wl-state-${state}` }, t(`wl.state.${state}`)),
        e.removed ? el('div', { class: 'muted small' }, `${fmtTime(e.removed, false)} — ${e.removed_by || ''}`) : null),
      el('td', { class: 'actions' }, e.removed ? null : el('button', {
        class: `btn btn-small ${confirming === e.id ? 'btn-danger' : 'btn-ghost'}`,
        type: 'button', dataset: { action: 'remove' },
        onclick: () => remove(e),
      }, confirming === e.id ? t('wl.confirm_remove') : t('wl.remove'))));
  }));
}
