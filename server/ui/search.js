// Investigator search: plate (exact, wildcard, fuzzy), time range,
// cameras, a place, vehicle type and colour, with a required reason that
// the server audits. Results come a page at a time with the server's cursor.

import { getJson } from './api.js';
import { t } from './i18n.js';
import {
  el, fill, fmtTime, fmtNumber, localInputToRfc3339, showError, showInfo, pool,
} from './util.js';
import { loadSnapshot, releaseSnapshots } from './snapshots.js';

const $ = (id) => document.getElementById(id);
const REASON_KEY = 'safecity.reason';

let ctx = null;
let ready = false;
let query = null; // the submitted parameters, as [name, value] pairs
let cursors = [null]; // the cursor of each page seen; page 1 has none
let pageIndex = 0;
let page = null; // the last answer
let next = null; // its next_cursor
let busy = false;

export function init(c) {
  ctx = c;
  if (ready) return;
  ready = true;
  $('s-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  $('s-clear').addEventListener('click', clearForm);
  $('s-mode').addEventListener('change', syncMode);
  $('s-prev').addEventListener('click', () => load(pageIndex - 1));
  $('s-next').addEventListener('click', () => load(pageIndex + 1));
  $('s-reason').value = sessionStorage.getItem(REASON_KEY) || '';
}

export async function show() {
  try {
    const cameras = await ctx.cameras();
    fillCameras(cameras);
  } catch (e) {
    showError($('s-error'), e);
  }
}

export function rerender() {
  if (page) render();
  renderPager();
}

export function reset() {
  query = null;
  page = null;
  next = null;
  cursors = [null];
  pageIndex = 0;
  releaseSnapshots('search');
  $('s-rows').replaceChildren();
  $('s-form').reset();
  $('s-reason').value = '';
  sessionStorage.removeItem(REASON_KEY);
  showError($('s-error'), null);
  showInfo($('s-empty'), '');
  renderPager();
}

function syncMode() {
  $('s-distance').disabled = $('s-mode').value !== 'fuzzy';
}

function clearForm() {
  const reason = $('s-reason').value;
  $('s-form').reset();
  $('s-reason').value = reason;
  syncMode();
}

// Keeps the user's camera selection while refreshing the list.
function fillCameras(cameras) {
  const select = $('s-cameras');
  const chosen = new Set([...select.selectedOptions].map((o) => o.value));
  fill(select, cameras.map((c) => el('option', {
    value: c.id, selected: chosen.has(c.id), title: `${c.name} (${c.id})`,
  }, c.name)));
}

// Reads the form into query parameters; throws a translated message
// for what the user must fix.
function readForm() {
  const pairs = [];
  const plate = $('s-plate').value.trim();
  if (plate) {
    pairs.push(['plate', plate]);
    const mode = $('s-mode').value;
    pairs.push(['mode', mode]);
    if (mode === 'fuzzy') pairs.push(['max_distance', $('s-distance').value || '1']);
  }
  const from = localInputToRfc3339($('s-from').value);
  const to = localInputToRfc3339($('s-to').value);
  if (from) pairs.push(['from', from]);
  if (to) pairs.push(['to', to]);
  for (const o of $('s-cameras').selectedOptions) pairs.push(['camera', o.value]);
  const near = [$('s-lat').value, $('s-lon').value, $('s-radius').value].map((v) => v.trim());
  if (near.some(Boolean)) {
    if (!near.every(Boolean)) throw new Error(t('search.near.incomplete'));
    pairs.push(['near', near.join(',')]);
  }
  if ($('s-class').value) pairs.push(['class', $('s-class').value]);
  if ($('s-colour').value) pairs.push(['colour', $('s-colour').value]);
  pairs.push(['limit', $('s-limit').value]);
  const reason = $('s-reason').value.trim();
  if (!reason) throw new Error(t('reason.missing'));
  pairs.push(['reason', reason]);
  return pairs;
}

function submit() {
  let pairs;
  try {
    pairs = readForm();
  } catch (e) {
    showError($('s-error'), e);
    if (!$('s-reason').value.trim()) $('s-reason').focus();
    return;
  }
  sessionStorage.setItem(REASON_KEY, $('s-reason').value.trim());
  query = pairs;
  cursors = [null];
  load(0);
}

// The submitted parameters as an object (first value of each name).
function param(name) {
  return query?.find(([k]) => k === name)?.[1] ?? null;
}

async function load(index) {
  if (!query || busy || index < 0 || index >= cursors.length) return;
  busy = true;
  $('s-submit').disabled = true;
  showError($('s-error'), null);
  showInfo($('s-status'), t('loading'));
  try {
    const pairs = cursors[index] ? [...query, ['cursor', cursors[index]]] : query;
    const answer = await getJson('/api/v1/search', { query: pairs });
    page = answer;
    pageIndex = index;
    next = answer.next_cursor || null;
    if (next && cursors.length === index + 1) cursors.push(next);
    render();
  } catch (e) {
    showError($('s-error'), e);
    showInfo($('s-status'), '');
  } finally {
    busy = false;
    $('s-submit').disabled = false;
    renderPager();
  }
}

function renderPager() {
  $('s-prev').disabled = busy || pageIndex === 0 || !page;
  $('s-next').disabled = busy || !next;
  $('s-page').textContent = page ? t('page.n', { n: pageIndex + 1 }) : '';
}

function render() {
  const results = page.results || [];
  const fuzzy = param('mode') === 'fuzzy';
  $('s-table').classList.toggle('no-distance', !fuzzy);
  showInfo($('s-status'), t('search.count', { n: results.length }));
  showInfo($('s-empty'), results.length ? '' : t('search.none'));
  releaseSnapshots('search');
  const jobs = [];
  fill($('s-rows'), results.map((r) => {
    const row = resultRow(r, fuzzy);
    if (r.snapshot_url) {
      const cell = row.querySelector('.thumb');
      jobs.push(() => loadSnapshot('search', cell, r.snapshot_url, param('reason')));
    }
    return row;
  }));
  // A few downloads at a time: each one is audited with the reason.
  pool(jobs, 4);
}

function resultRow(r, fuzzy) {
  const e = r.event || {};
  const plate = e.plate || {};
  const vehicle = e.vehicle || {};
  const camera = ctx.cameraById(e.camera_id);
  const vehicleText = [
    vehicle.class ? t(`class.${vehicle.class}`, {}, vehicle.class) : null,
    vehicle.colour ? t(`colour.${vehicle.colour}`, {}, vehicle.colour) : null,
  ].filter(Boolean).join(' · ') || '—';
  return el('tr', { dataset: { event: e.id, plate: plate.text || '' } },
    el('td', { class: 'thumb' }, r.snapshot_url ? el('span', { class: 'thumb-wait' }) : el('span', { class: 'muted' }, '—')),
    el('td', { class: 'nowrap', title: e.ts }, fmtTime(e.ts)),
    el('td', {}, plate.text
      ? el('span', { class: 'plate-chip', title: plate.text }, plate.display || plate.text)
      : el('span', { class: 'muted' }, t(`kind.${e.kind}`, {}, e.kind))),
    el('td', { class: 'num' }, plate.confidence !== undefined ? `${fmtNumber(plate.confidence * 100)} %` : '—'),
    el('td', { title: e.camera_id }, camera ? camera.name : e.camera_id),
    el('td', {}, vehicleText),
    el('td', { class: 'num col-distance' }, fuzzy && r.distance !== undefined ? fmtNumber(r.distance, 1) : '—'),
    el('td', { class: 'actions' }, plate.text
      ? el('button', {
        class: 'btn btn-small', type: 'button', onclick: () => openTrack(e),
      }, t('search.open_track'))
      : null));
}

// Opens the trajectory of a result's plate over the searched time range,
// or a day either side of the sighting.
function openTrack(e) {
  const at = new Date(e.ts).getTime();
  const day = 24 * 3600 * 1000;
  ctx.openTrack({
    plate: e.plate.text,
    from: param('from') ? new Date(param('from')) : new Date(at - day),
    to: param('to') ? new Date(param('to')) : new Date(at + day),
    reason: param('reason'),
  });
}
