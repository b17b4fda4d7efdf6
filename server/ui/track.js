// A plate's trajectory: its sightings in time order on a schematic map of
// the camera registry (drawn from lat/lon, no tiles) and on a timeline,
// with hops faster than a car can go marked in red with their speed.

import { getJson } from './api.js';
import { t } from './i18n.js';
import {
  el, svg, fill, fmtTime, fmtClock, fmtDate, fmtNumber, fmtDistance, fmtDuration, fmtCoord,
  toLocalInput, localInputToRfc3339, showError, showInfo, pool,
} from './util.js';
import { loadSnapshot, releaseSnapshots } from './snapshots.js';

const $ = (id) => document.getElementById(id);
const REASON_KEY = 'safecity.reason';

// Map drawing size (the SVG scales to its box) and margin for labels.
const MAP_W = 760;
const MAP_H = 470;
const MAP_PAD = 56;
const M_PER_DEG_LAT = 111_320;

let ctx = null;
let ready = false;
let pending = false; // run once shown (opened from a search result)
let answer = null; // the last trajectory
let cameras = [];
let busy = false;

export function init(c) {
  ctx = c;
  if (ready) return;
  ready = true;
  $('tr-form').addEventListener('submit', (e) => {
    e.preventDefault();
    run();
  });
  defaults();
}

function defaults() {
  const now = new Date();
  $('tr-from').value = toLocalInput(new Date(now.getTime() - 24 * 3600 * 1000));
  $('tr-to').value = toLocalInput(new Date(now.getTime() + 60 * 1000));
}

// Fills the form; the trajectory loads when the view is shown.
export function prefill({ plate, from, to, reason }) {
  $('tr-plate').value = plate;
  $('tr-from').value = toLocalInput(from);
  $('tr-to').value = toLocalInput(to);
  if (reason) $('tr-reason').value = reason;
  pending = true;
}

export function show() {
  if (!$('tr-reason').value) $('tr-reason').value = sessionStorage.getItem(REASON_KEY) || '';
  if (pending) {
    pending = false;
    run();
  }
}

export function rerender() {
  if (answer) render();
}

export function reset() {
  answer = null;
  pending = false;
  releaseSnapshots('track');
  $('tr-form').reset();
  defaults();
  $('tr-result').hidden = true;
  showError($('tr-error'), null);
  showInfo($('tr-empty'), '');
}

async function run() {
  if (busy) return;
  const plate = $('tr-plate').value.trim();
  const from = localInputToRfc3339($('tr-from').value);
  const to = localInputToRfc3339($('tr-to').value);
  const reason = $('tr-reason').value.trim();
  showError($('tr-error'), null);
  if (!plate || !from || !to) {
    showError($('tr-error'), new Error(t('track.missing')));
    return;
  }
  if (!reason) {
    showError($('tr-error'), new Error(t('reason.missing')));
    $('tr-reason').focus();
    return;
  }
  sessionStorage.setItem(REASON_KEY, reason);
  busy = true;
  $('tr-submit').disabled = true;
  showInfo($('tr-empty'), t('loading'));
  try {
    const [track, registry] = await Promise.all([
      getJson(`/api/v1/plates/${encodeURIComponent(plate)}/track`, { query: { from, to, reason } }),
      ctx.cameras(),
    ]);
    answer = { ...track, reason };
    cameras = registry;
    render();
  } catch (e) {
    answer = null;
    $('tr-result').hidden = true;
    showInfo($('tr-empty'), '');
    showError($('tr-error'), e);
  } finally {
    busy = false;
    $('tr-submit').disabled = false;
  }
}

function render() {
  const sightings = answer.sightings || [];
  if (!sightings.length) {
    $('tr-result').hidden = true;
    showInfo($('tr-empty'), t('track.none', { plate: answer.plate }));
    return;
  }
  showInfo($('tr-empty'), '');
  $('tr-result').hidden = false;
  $('tr-title').textContent = answer.plate;
  const bad = answer.impossible_hops || 0;
  fill($('tr-summary'),
    t('track.summary', { n: sightings.length }),
    bad ? el('span', { class: 'badge badge-danger' }, t('track.impossible_n', { n: bad })) : null,
    answer.truncated ? el('span', { class: 'badge' }, t('track.truncated')) : null);
  fill($('tr-map'), drawMap(sightings, answer.hops || []));
  fill($('tr-timeline'), drawTimeline(sightings, answer.hops || []));
  renderTable(sightings, answer.hops || []);
}

// --- Map -------------------------------------------------------------

// An equirectangular projection fitted to the points' bounding box:
// x grows with longitude scaled by cos(mean latitude), y with -latitude.
function projection(points) {
  let minLat = Infinity; let maxLat = -Infinity; let minLon = Infinity; let maxLon = -Infinity;
  for (const p of points) {
    minLat = Math.min(minLat, p.lat); maxLat = Math.max(maxLat, p.lat);
    minLon = Math.min(minLon, p.lon); maxLon = Math.max(maxLon, p.lon);
  }
  // At least ~300 m each way, so one camera still gets a sensible scale.
  const minSpan = 0.003;
  if (maxLat - minLat < minSpan) { const c = (maxLat + minLat) / 2; minLat = c - minSpan / 2; maxLat = c + minSpan / 2; }
  if (maxLon - minLon < minSpan) { const c = (maxLon + minLon) / 2; minLon = c - minSpan / 2; maxLon = c + minSpan / 2; }
  const k = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180);
  const spanX = (maxLon - minLon) * k;
  const spanY = maxLat - minLat;
  const scale = Math.min((MAP_W - 2 * MAP_PAD) / spanX, (MAP_H - 2 * MAP_PAD) / spanY);
  const offX = (MAP_W - spanX * scale) / 2;
  const offY = (MAP_H - spanY * scale) / 2;
  return {
    xy: (lat, lon) => [offX + (lon - minLon) * k * scale, offY + (maxLat - lat) * scale],
    pxPerMetre: scale / M_PER_DEG_LAT,
  };
}

// 1, 2 or 5 times a power of ten, near `target`.
function niceStep(target) {
  const p = 10 ** Math.floor(Math.log10(target));
  const f = target / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

function drawMap(sightings, hops) {
  const placed = cameras.filter((c) => Number.isFinite(c.lat) && Number.isFinite(c.lon));
  const points = [...placed, ...sightings.filter((s) => s.lat !== null && s.lat !== undefined)];
  const root = svg('svg', {
    viewBox: `0 0 ${MAP_W} ${MAP_H}`, class: 'map-svg', role: 'img',
    'aria-label': t('track.map_label', { plate: answer.plate }),
  });
  root.append(svg('defs', {},
    svg('pattern', { id: 'grid', width: 40, height: 40, patternUnits: 'userSpaceOnUse' },
      svg('path', { d: 'M 40 0 L 0 0 0 40', class: 'grid-line' })),
    arrow('arrow', 'arrow-head'),
    arrow('arrow-bad', 'arrow-head bad')));
  root.append(svg('rect', { x: 0, y: 0, width: MAP_W, height: MAP_H, fill: 'url(#grid)', class: 'map-bg' }));
  if (!points.length) {
    root.append(svg('text', { x: MAP_W / 2, y: MAP_H / 2, class: 'map-empty', 'text-anchor': 'middle' }, t('track.no_positions')));
    return root;
  }
  const proj = projection(points);
  const pos = new Map(); // camera id -> [x, y]
  for (const c of placed) pos.set(c.id, proj.xy(c.lat, c.lon));
  for (const s of sightings) {
    if (!pos.has(s.camera_id) && s.lat !== null && s.lat !== undefined) pos.set(s.camera_id, proj.xy(s.lat, s.lon));
  }

  // Which sightings (1-based) each camera had.
  const seenAt = new Map();
  sightings.forEach((s, i) => {
    if (!seenAt.has(s.camera_id)) seenAt.set(s.camera_id, []);
    seenAt.get(s.camera_id).push(i + 1);
  });

  const registryIds = new Set(placed.map((c) => c.id));
  const drawn = [...placed, ...sightings
    .filter((s) => !registryIds.has(s.camera_id) && pos.has(s.camera_id))
    .map((s) => ({ id: s.camera_id, name: s.camera_name || s.camera_id, kind: 'camera' }))];
  const unique = [...new Map(drawn.map((c) => [c.id, c])).values()];

  // Labels must not cover dots, the path or each other: everything drawn
  // is an obstacle, and each label takes the free place around its dot.
  const obstacles = [];
  for (const [x, y] of pos.values()) obstacles.push([x - 8, y - 8, x + 8, y + 8]);

  const pathLayer = svg('g', { class: 'path' });
  const labelLayer = svg('g', { class: 'hop-labels' });
  hops.forEach((h, i) => {
    const a = pos.get(sightings[i].camera_id);
    const b = pos.get(sightings[i + 1].camera_id);
    if (!a || !b || (a[0] === b[0] && a[1] === b[1])) return;
    // Stop short of the dot so the arrow head stays visible.
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const cut = Math.min(10, len / 3);
    const ex = b[0] - ((b[0] - a[0]) / len) * cut;
    const ey = b[1] - ((b[1] - a[1]) / len) * cut;
    const line = svg('line', {
      x1: a[0], y1: a[1], x2: ex, y2: ey,
      class: `hop${h.impossible ? ' impossible' : ''}`,
      'marker-end': `url(#${h.impossible ? 'arrow-bad' : 'arrow'})`,
      dataset: { from: h.from_camera, to: h.to_camera },
    });
    line.append(svg('title', {}, hopText(h)));
    pathLayer.append(line);
    if (hops.length <= 200) {
      for (let d = 0; d <= len; d += 8) {
        const px = a[0] + ((b[0] - a[0]) * d) / len;
        const py = a[1] + ((b[1] - a[1]) * d) / len;
        obstacles.push([px - 2, py - 2, px + 2, py + 2]);
      }
    }
    if (h.impossible) {
      const label = `⚠ ${speedText(h.speed_kmh)}`;
      const [x, y, anchor] = placeLabel((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, label.length * 7.6, obstacles, 4);
      labelLayer.append(svg('text', { x, y, class: 'hop-label impossible', 'text-anchor': anchor }, label));
    }
  });

  // Cameras that saw the plate are labelled first, with their order.
  const camLayer = svg('g', { class: 'cams' });
  const ordered = [...unique].sort((p, q) => Number(seenAt.has(q.id)) - Number(seenAt.has(p.id)));
  for (const c of ordered) {
    const [x, y] = pos.get(c.id);
    const seen = seenAt.has(c.id);
    const g = svg('g', { class: `cam${seen ? ' seen' : ''}${c.kind === 'pillar' ? ' pillar' : ''}`, dataset: { camera: c.id } });
    g.append(svg('title', {}, `${c.name} (${c.id})\n${fmtCoord(c.lat, c.lon)}`));
    if (c.kind === 'pillar') {
      g.append(svg('rect', { x: x - 5, y: y - 5, width: 10, height: 10, class: 'cam-dot' }));
    } else {
      g.append(svg('circle', { cx: x, cy: y, r: seen ? 7 : 5, class: 'cam-dot' }));
    }
    const order = seen ? `${seenAt.get(c.id).join(', ')} · ` : '';
    const [lx, ly, anchor] = placeLabel(x, y, (order.length + c.name.length) * 6.9 + 4, obstacles, 10);
    const label = svg('text', { x: lx, y: ly, class: 'cam-label', 'text-anchor': anchor });
    if (order) label.append(svg('tspan', { class: 'seen-order' }, order));
    label.append(svg('tspan', { class: 'cam-name' }, c.name));
    g.append(label);
    camLayer.append(g);
  }
  root.append(pathLayer, camLayer, labelLayer, scaleBar(proj), northArrow());
  return root;
}

// Picks where a label of width `w` goes around the point (x, y), `gap`
// away: the first place that overlaps no obstacle and stays on the map,
// else the least covered one. Records the label as an obstacle and
// returns [x, y, text-anchor].
function placeLabel(x, y, w, obstacles, gap) {
  const candidates = [
    [x + gap + 1, y + 4, 'start'], [x - gap - 1, y + 4, 'end'],
    [x, y - gap - 2, 'middle'], [x, y + gap + 12, 'middle'],
    [x + gap - 2, y - gap + 1, 'start'], [x + gap - 2, y + gap + 8, 'start'],
    [x - gap + 2, y - gap + 1, 'end'], [x - gap + 2, y + gap + 8, 'end'],
  ];
  let best = null;
  for (const [ax, ay, anchor] of candidates) {
    const x0 = anchor === 'start' ? ax : anchor === 'end' ? ax - w : ax - w / 2;
    const rect = [x0, ay - 11, x0 + w, ay + 3];
    let cost = 0;
    if (rect[0] < 2 || rect[2] > MAP_W - 2 || rect[1] < 2 || rect[3] > MAP_H - 30) cost += 1e6;
    for (const o of obstacles) {
      const ox = Math.min(rect[2], o[2]) - Math.max(rect[0], o[0]);
      const oy = Math.min(rect[3], o[3]) - Math.max(rect[1], o[1]);
      if (ox > 0 && oy > 0) cost += ox * oy;
    }
    if (!best || cost < best.cost) best = { cost, rect, at: [ax, ay, anchor] };
    if (cost === 0) break;
  }
  obstacles.push(best.rect);
  return best.at;
}

function arrow(id, cls) {
  return svg('marker', {
    id, viewBox: '0 0 10 10', refX: 8, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse',
  }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: cls }));
}

function scaleBar(proj) {
  const metres = niceStep(120 / proj.pxPerMetre);
  const w = metres * proj.pxPerMetre;
  const x = 16;
  const y = MAP_H - 18;
  return svg('g', { class: 'scale' },
    svg('path', { d: `M ${x} ${y - 6} L ${x} ${y} L ${x + w} ${y} L ${x + w} ${y - 6}`, class: 'scale-line' }),
    svg('text', { x: x + w / 2, y: y - 9, 'text-anchor': 'middle', class: 'scale-text' }, fmtDistance(metres)));
}

function northArrow() {
  const x = MAP_W - 24;
  return svg('g', { class: 'north' },
    svg('path', { d: `M ${x} 14 L ${x + 7} 34 L ${x} 29 L ${x - 7} 34 z`, class: 'north-arrow' }),
    svg('text', { x, y: 48, 'text-anchor': 'middle', class: 'north-text' }, t('map.north')));
}

function speedText(kmh) {
  return kmh === null || kmh === undefined ? '∞' : `${fmtNumber(kmh)} ${t('unit.kmh')}`;
}

// "6.2 km in 15 min, 25 km/h".
function hopText(h) {
  return t('track.hop', {
    distance: fmtDistance(h.distance_m), time: fmtDuration(h.elapsed_s), speed: speedText(h.speed_kmh),
  });
}

// --- Timeline --------------------------------------------------------

function drawTimeline(sightings, hops) {
  const W = 1200; const H = 116; const pad = 40; const axisY = 64;
  const times = sightings.map((s) => new Date(s.ts).getTime());
  let t0 = Math.min(...times); let t1 = Math.max(...times);
  if (t1 - t0 < 60_000) { t0 -= 30_000; t1 += 30_000; }
  const x = (ms) => pad + ((ms - t0) / (t1 - t0)) * (W - 2 * pad);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'timeline-svg', role: 'img', 'aria-label': t('track.timeline') });
  root.append(svg('line', { x1: pad, y1: axisY, x2: W - pad, y2: axisY, class: 'axis' }));
  // Ticks at a few even times.
  const multiDay = t1 - t0 > 20 * 3600 * 1000;
  for (let i = 0; i <= 5; i++) {
    const ms = t0 + ((t1 - t0) * i) / 5;
    const iso = new Date(ms).toISOString();
    root.append(svg('line', { x1: x(ms), y1: axisY - 4, x2: x(ms), y2: axisY + 4, class: 'tick' }));
    root.append(svg('text', { x: x(ms), y: H - 8, 'text-anchor': 'middle', class: 'tick-text' }, multiDay ? fmtTime(iso, false) : fmtClock(iso)));
  }
  hops.forEach((h, i) => {
    root.append(svg('line', {
      x1: x(times[i]), y1: axisY, x2: x(times[i + 1]), y2: axisY,
      class: `tl-hop${h.impossible ? ' impossible' : ''}`,
    }, svg('title', {}, hopText(h))));
  });
  sightings.forEach((s, i) => {
    const cx = x(times[i]);
    const up = i % 2 === 0;
    const g = svg('g', { class: 'tl-point' });
    g.append(svg('title', {}, `${fmtTime(s.ts)} — ${s.camera_name || s.camera_id}`));
    g.append(svg('circle', { cx, cy: axisY, r: 9, class: 'tl-dot' }));
    g.append(svg('text', { x: cx, y: axisY + 4, 'text-anchor': 'middle', class: 'tl-num' }, String(i + 1)));
    // Labels near the ends are anchored inwards so they are not cut off.
    const anchor = cx < pad + 80 ? 'start' : cx > W - pad - 80 ? 'end' : 'middle';
    const lx = anchor === 'start' ? cx - 9 : anchor === 'end' ? cx + 9 : cx;
    g.append(svg('text', { x: lx, y: up ? axisY - 18 : axisY + 28, 'text-anchor': anchor, class: 'tl-label' }, s.camera_name || s.camera_id));
    root.append(g);
  });
  return root;
}

// --- Table -----------------------------------------------------------

function renderTable(sightings, hops) {
  releaseSnapshots('track');
  const jobs = [];
  fill($('tr-rows'), sightings.map((s, i) => {
    const h = i > 0 ? hops[i - 1] : null;
    const thumb = el('td', { class: 'thumb' }, s.snapshot_url ? el('span', { class: 'thumb-wait' }) : '—');
    if (s.snapshot_url) jobs.push(() => loadSnapshot('track', thumb, s.snapshot_url, answer.reason));
    return el('tr', { class: h?.impossible ? 'row-danger' : null, dataset: { event: s.event_id } },
      el('td', { class: 'num' }, String(i + 1)),
      el('td', { class: 'nowrap', title: fmtTime(s.ts) }, fmtClock(s.ts), el('div', { class: 'muted small' }, fmtDate(s.ts))),
      el('td', { title: s.lat === null ? t('track.not_on_map') : fmtCoord(s.lat, s.lon) },
        s.camera_name || s.camera_id,
        s.lat === null ? el('div', { class: 'muted small' }, t('track.not_on_map')) : null),
      el('td', { class: 'hop-cell' }, h
        ? [
          el('div', {}, hopText(h)),
          h.impossible ? el('div', { class: 'impossible-text', title: t('track.impossible') }, `⚠ ${t('track.impossible_short')}`) : null,
        ]
        : el('span', { class: 'muted' }, t('track.first'))),
      thumb);
  }));
  const note = $('tr-note');
  note.hidden = !hops.some((h) => h.impossible);
  note.textContent = `⚠ ${t('track.impossible')}`;
  pool(jobs, 4);
}
