// Snapshots and clips, fetched with the token and shown through blob:
// URLs (an <img> or <video> cannot send the Authorization header). URLs
// are kept per group (a view) and released when the group is redrawn.

import { getBlob } from './api.js';
import { t } from './i18n.js';
import { el, fill, errorText } from './util.js';

const groups = new Map(); // group -> {generation, urls}

function group(name) {
  if (!groups.has(name)) groups.set(name, { generation: 0, urls: [] });
  return groups.get(name);
}

// Frees the group's URLs; downloads still running for it are dropped.
export function releaseSnapshots(name) {
  const g = group(name);
  g.generation += 1;
  for (const url of g.urls) URL.revokeObjectURL(url);
  g.urls = [];
}

// Downloads `path` (with the audited `reason`) and returns a blob: URL,
// or null if the group was released meanwhile.
export async function blobUrl(name, path, reason) {
  const g = group(name);
  const generation = g.generation;
  const blob = await getBlob(path, { query: { reason } });
  if (g.generation !== generation) return null;
  const url = URL.createObjectURL(blob);
  g.urls.push(url);
  return url;
}

// Shows the snapshot at `path` in `cell` as a thumbnail that enlarges
// on click; a failure shows a mark with the reason on hover.
export async function loadSnapshot(name, cell, path, reason) {
  try {
    const url = await blobUrl(name, path, reason);
    if (!url) return;
    fill(cell, el('img', {
      src: url, class: 'thumb-img', alt: t('col.snapshot'), title: t('snapshot.zoom'),
      onclick: () => zoom(url),
    }));
  } catch (e) {
    fill(cell, el('span', { class: 'thumb-fail', title: errorText(e) }, '✕'));
  }
}

// Shows an image URL enlarged in the page's dialog.
export function zoom(url) {
  const dialog = document.getElementById('zoom');
  document.getElementById('zoom-img').src = url;
  if (!dialog.open) dialog.showModal();
}
