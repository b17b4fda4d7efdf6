// Every string of the web UI exists in Kazakh, Russian and English, and
// every key the page and scripts use is defined. (No browser needed.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const UI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../server/ui');
const { STRINGS, LANGS } = await import(path.join(UI, 'i18n.js'));

const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test('all three languages have the same keys and placeholders', () => {
  assert.deepEqual([...LANGS].sort(), ['en', 'kk', 'ru']);
  const keys = Object.keys(STRINGS.en).sort();
  for (const lang of ['kk', 'ru']) {
    assert.deepEqual(Object.keys(STRINGS[lang]).sort(), keys, `${lang} has other keys than en`);
    for (const k of keys) {
      assert.deepEqual(placeholders(STRINGS[lang][k]), placeholders(STRINGS.en[k]), `${lang} ${k}: placeholders`);
    }
  }
});

test('Kazakh and Russian strings are translations, in Cyrillic', () => {
  for (const lang of ['kk', 'ru']) {
    for (const [k, v] of Object.entries(STRINGS[lang])) {
      assert.notEqual(v, STRINGS.en[k], `${lang} ${k} is the English text`);
      if (/[A-Za-z]{3,}/.test(v.replace(/\{\w+\}|Ctrl|[0-9A-Z?*]{4,}/g, ''))) {
        assert.fail(`${lang} ${k}: ${JSON.stringify(v)} has Latin words`);
      }
    }
  }
  // Kazakh is not Russian: its own letters appear.
  const kazakh = Object.values(STRINGS.kk).join(' ');
  assert.match(kazakh, /[ӘәҒғҚқҢңӨөҰұҮүҺһІі]/);
});

test('every key used by the page and the scripts is defined', () => {
  const html = readFileSync(path.join(UI, 'index.html'), 'utf8');
  const used = [...html.matchAll(/data-i18n(?:-placeholder|-title)?="([^"]+)"/g)].map((m) => m[1]);
  for (const file of readdirSync(UI).filter((f) => f.endsWith('.js'))) {
    const js = readFileSync(path.join(UI, file), 'utf8');
    // t('key') and t('key', ...); keys built at run time (t(`state.${s}`)) are
    // covered by the enumerations below.
    used.push(...[...js.matchAll(/\bt\('([\w.]+)'/g)].map((m) => m[1]));
  }
  const enums = {
    state: ['new', 'acknowledged', 'closed'],
    priority: ['low', 'normal', 'high', 'critical'],
    mode: ['exact', 'wildcard', 'fuzzy'],
    role: ['edge', 'operator', 'investigator', 'admin'],
    alert: ['watchlist', 'panic_alarm'],
    kind: ['plate_read', 'vehicle', 'panic_alarm', 'camera_status'],
    health: ['online', 'offline', 'unknown'],
    live: ['live', 'connecting', 'reconnecting', 'denied'],
    camkind: ['camera', 'pillar'],
    'wl.state': ['active', 'expired', 'removed'],
  };
  for (const [prefix, values] of Object.entries(enums)) used.push(...values.map((v) => `${prefix}.${v}`));
  assert.ok(used.length > 150, `only ${used.length} keys found`);
  const missing = [...new Set(used)].filter((k) => !(k in STRINGS.en));
  assert.deepEqual(missing, []);
});
