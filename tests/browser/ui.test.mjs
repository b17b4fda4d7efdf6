// Browser tests of the web UI: a real safecity-server on a loopback port
// with a temporary data directory, driven through Debian's Chromium
// (headless) with playwright-core.
//
//   node --test tests/browser/          (after cargo build --release)
//
// Environment: SAFECITY_SERVER_BIN (default target/release/safecity-server),
// CHROMIUM (default /usr/bin/chromium), SAFECITY_UPDATE_SCREENSHOTS=1 to
// rewrite docs/search.png and docs/operations.png. Screenshots of every
// step go to target/browser/.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { STRINGS } = await import(path.join(ROOT, 'server/ui/i18n.js'));
const BIN = process.env.SAFECITY_SERVER_BIN || path.join(ROOT, 'target/release/safecity-server');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTEFACTS = path.join(ROOT, 'target/browser');
const UPDATE_DOCS = process.env.SAFECITY_UPDATE_SCREENSHOTS === '1';
const VIEWPORT = { width: 1280, height: 800 };

const SEARCH_REASON = 'Case 2026-0142: hit-and-run on Abay Ave';
const SUSPECT = '123ABC02';
const HOTLISTED = '505KXM02';

// Cameras in Almaty; alm-cam-03 is ~33 km out, so reaching it from
// alm-cam-02 in 5 minutes is an impossible hop (~400 km/h).
const CAMERAS = [
  { id: 'alm-cam-01', name: 'Abay / Dostyk', kind: 'camera', lat: 43.2389, lon: 76.9456 },
  { id: 'alm-cam-02', name: 'Al-Farabi / Nauryzbay', kind: 'camera', lat: 43.2050, lon: 76.8900 },
  { id: 'alm-cam-03', name: 'Kapchagay highway km 28', kind: 'camera', lat: 43.4800, lon: 77.0500 },
  { id: 'alm-cam-04', name: 'Tole bi / Auezov', kind: 'camera', lat: 43.2545, lon: 76.9080 },
  { id: 'alm-pil-01', name: 'Pillar Abay Ave 52', kind: 'pillar', lat: 43.2420, lon: 76.9490 },
];

// --- Helpers -----------------------------------------------------------

// A ULID (48 bits of milliseconds, 80 random bits, Crockford base 32).
function ulid(ms) {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let v = (BigInt(ms) << 80n) | BigInt(`0x${randomBytes(10).toString('hex')}`);
  let s = '';
  for (let i = 0; i < 26; i++) {
    s = alphabet[Number(v & 31n)] + s;
    v >>= 5n;
  }
  return s;
}

function display(plate) {
  return `${plate.slice(0, 3)} ${plate.slice(3, 6)} ${plate.slice(6)}`;
}

function plateRead(plate, camera, ms, vehicleClass, colour, snapshot) {
  return {
    id: ulid(ms),
    kind: 'plate_read',
    edge_id: 'edge-alm-01',
    camera_id: camera,
    ts: new Date(ms).toISOString(),
    plate: {
      text: plate, display: display(plate), confidence: 0.9 + Math.random() * 0.09,
      format: 'kz_private', region: plate.slice(6),
      candidates: [{ text: plate, confidence: 0.93 }], bbox: [812, 540, 96, 24],
    },
    vehicle: {
      class: vehicleClass, colour, confidence: 0.9, bbox: [700, 380, 320, 210],
      track_id: Math.floor(Math.random() * 1e6),
    },
    snapshot,
  };
}

// Starts the server on a free loopback port (or `port`); resolves with
// the process and its base URL once it listens.
function startServer(dataDir, adminToken, log, port = 0) {
  const child = spawn(BIN, ['--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
    env: { ...process.env, SAFECITY_ADMIN_TOKEN: adminToken, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.pipe(log, { end: false });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start in 20 s')), 20_000);
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1] });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening; see ${ARTEFACTS}/server.log`));
    });
  });
}

// Stops the server: SIGINT (a graceful stop), or SIGKILL (a crash).
function stopServer(child, signal = 'SIGINT') {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

function createToken(dataDir, role, name) {
  return execFileSync(BIN, ['token', 'create', '--role', role, '--name', name, '--data-dir', dataDir], {
    encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' },
  }).trim();
}

async function call(base, token, method, urlPath, body, contentType = 'application/json') {
  const res = await fetch(base + urlPath, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { 'Content-Type': contentType } : {}) },
    body: body === undefined ? undefined : contentType === 'application/json' ? JSON.stringify(body) : body,
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${urlPath}: ${res.status} ${text}`);
  return text && contentType === 'application/json' && text.startsWith('{') ? JSON.parse(text) : text;
}

// Small JPEG snapshots drawn on a canvas: a plate crop, or a pillar view.
async function makeSnapshots(browser, items) {
  const page = await browser.newPage();
  const out = await page.evaluate((list) => list.map((item) => {
    const c = document.createElement('canvas');
    c.width = 320;
    c.height = 180;
    const g = c.getContext('2d');
    const sky = g.createLinearGradient(0, 0, 0, 180);
    sky.addColorStop(0, '#2b3440');
    sky.addColorStop(1, '#101418');
    g.fillStyle = sky;
    g.fillRect(0, 0, 320, 180);
    if (item.plate) {
      // A car body, its plate, and a camera overlay.
      g.fillStyle = item.colour;
      g.fillRect(40, 50, 240, 100);
      g.fillStyle = '#111';
      g.fillRect(70, 60, 180, 38);
      g.fillStyle = '#f4f4f0';
      g.fillRect(95, 112, 130, 28);
      g.fillStyle = '#00a3dd';
      g.fillRect(95, 112, 18, 28);
      g.fillStyle = '#111';
      g.font = 'bold 16px monospace';
      g.fillText(item.plate, 117, 132);
    } else {
      g.fillStyle = '#445';
      g.fillRect(140, 40, 40, 130);
      g.fillStyle = '#e33';
      g.beginPath();
      g.arc(160, 70, 12, 0, 7);
      g.fill();
    }
    g.fillStyle = '#fff';
    g.font = '11px sans-serif';
    g.fillText(item.label, 8, 16);
    return c.toDataURL('image/jpeg', 0.7).split(',')[1];
  }), items);
  await page.close();
  return out;
}

// A 1.5 s clip of a canvas (MP4 where the browser records it, else WebM),
// as a pillar's edge would upload.
async function makeClip(browser) {
  const page = await browser.newPage();
  const b64 = await page.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 320;
    c.height = 180;
    const g = c.getContext('2d');
    const type = ['video/mp4;codecs=avc1', 'video/mp4', 'video/webm;codecs=vp8', 'video/webm']
      .find((t) => MediaRecorder.isTypeSupported(t));
    const recorder = new MediaRecorder(c.captureStream(15), { mimeType: type, videoBitsPerSecond: 200_000 });
    const chunks = [];
    recorder.ondataavailable = (e) => chunks.push(e.data);
    let frame = 0;
    const draw = () => {
      g.fillStyle = '#1c2430';
      g.fillRect(0, 0, 320, 180);
      g.fillStyle = '#445';
      g.fillRect(140, 40, 40, 130);
      g.fillStyle = frame % 8 < 4 ? '#e33' : '#622';
      g.beginPath();
      g.arc(160, 70, 12, 0, 7);
      g.fill();
      g.fillStyle = '#fff';
      g.font = '11px sans-serif';
      g.fillText(`alm-pil-01  SOS  frame ${frame}`, 8, 16);
      frame += 1;
    };
    draw();
    const timer = setInterval(draw, 66);
    recorder.start();
    await new Promise((r) => setTimeout(r, 1500));
    const stopped = new Promise((r) => { recorder.onstop = r; });
    recorder.stop();
    await stopped;
    clearInterval(timer);
    const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
    let text = '';
    for (const x of bytes) text += String.fromCharCode(x);
    return btoa(text);
  });
  await page.close();
  return Buffer.from(b64, 'base64');
}

// Polls `fn` until it returns a truthy value.
async function until(fn, what, timeout = 15_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

function pngSize(file) {
  return statSync(file).size;
}

// --- The test ------------------------------------------------------------

test('web UI: search, trajectory, live alerts, watchlist, audit, languages', { timeout: 240_000 }, async (t) => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run cargo build --release -p safecity-server first`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/browser-test.sh (it installs Debian's chromium)`);
  mkdirSync(ARTEFACTS, { recursive: true });
  const log = createWriteStream(path.join(ARTEFACTS, 'server.log'));
  const dataDir = mkdtempSync(path.join(tmpdir(), 'safecity-ui-'));
  const admin = randomBytes(24).toString('hex');
  const tokens = {
    investigator: createToken(dataDir, 'investigator', 'A. Nurlanova'),
    operator: createToken(dataDir, 'operator', 'D. Seitkali'),
    edge: createToken(dataDir, 'edge', 'edge-alm-01'),
  };
  let server = await startServer(dataDir, admin, log);
  const port = Number(new URL(server.base).port);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const pageErrors = [];

  t.after(async () => {
    await browser.close().catch(() => {});
    await stopServer(server.child);
    log.end();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // --- Data: cameras, plate reads with snapshots, one camera offline.
  const now = Date.now();
  const t0 = now - 40 * 60_000;
  for (const c of CAMERAS) {
    await call(server.base, admin, 'PUT', `/api/v1/cameras/${c.id}`, { name: c.name, kind: c.kind, lat: c.lat, lon: c.lon });
  }
  const others = [
    '777AAB02', '102KZA02', '341BEK02', '908ALM02', '222NUR02', '645TRK02', '515QAZ02',
    '330SKO02', '118ZHE02', '476ORK02', '289MAR02', '853TAU02', '061ALA02', '734DOS02',
  ];
  const colours = ['white', 'black', 'silver', 'grey', 'red', 'blue', 'white'];
  const classes = ['car', 'car', 'car', 'truck', 'bus', 'car'];
  const paint = { white: '#e8e8e8', black: '#1c1c1c', silver: '#b8bcc0', grey: '#7a7d80', red: '#b3261e', blue: '#1f4fa8' };
  const reads = [
    { plate: SUSPECT, cam: 'alm-cam-01', ms: t0, cls: 'car', colour: 'white' },
    { plate: SUSPECT, cam: 'alm-cam-02', ms: t0 + 15 * 60_000, cls: 'car', colour: 'white' },
    { plate: SUSPECT, cam: 'alm-cam-03', ms: t0 + 20 * 60_000, cls: 'car', colour: 'white' },
    ...others.map((plate, i) => ({
      plate, cam: CAMERAS[i % 4].id, ms: now - (90 - i * 6) * 60_000, cls: classes[i % classes.length], colour: colours[i % colours.length],
    })),
  ];
  const jpegs = await makeSnapshots(browser, [
    ...reads.map((r) => ({ plate: display(r.plate), colour: paint[r.colour], label: `${r.cam}  ${new Date(r.ms).toISOString().slice(0, 19)}Z` })),
    { label: 'alm-pil-01  SOS' },
  ]);
  await call(server.base, tokens.edge, 'POST', '/api/v1/events',
    reads.map((r, i) => plateRead(r.plate, r.cam, r.ms, r.cls, r.colour, jpegs[i])));
  await call(server.base, tokens.edge, 'POST', '/api/v1/events', [{
    id: ulid(now - 5 * 60_000), kind: 'camera_status', edge_id: 'edge-alm-01', camera_id: 'alm-cam-03',
    ts: new Date(now - 5 * 60_000).toISOString(), status: { state: 'offline', message: 'RTSP timeout' },
  }]);
  const pillarJpeg = jpegs[jpegs.length - 1];

  // --- The browser.
  const context = await browser.newContext({ viewport: VIEWPORT, locale: 'en-GB', timezoneId: 'Asia/Almaty' });
  // Count generated tones: the board's sound cue.
  await context.addInitScript(() => {
    window.__tones = 0;
    const original = AudioContext.prototype.createOscillator;
    AudioContext.prototype.createOscillator = function createOscillator() {
      window.__tones += 1;
      return original.call(this);
    };
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // Everything the page loads must come from the server itself.
  const foreign = [];
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(server.base) && !url.startsWith('data:') && !url.startsWith('blob:')) foreign.push(url);
  });
  const cspViolations = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  const shot = (name) => page.screenshot({ path: path.join(ARTEFACTS, `${name}.png`) });
  // innerText for HTML, textContent for SVG (which has no innerText).
  const text = (selector) => page.locator(selector).first().evaluate((e) => e.innerText ?? e.textContent);

  async function login(token) {
    await page.goto(server.base + '/');
    await page.locator('#login-token').fill(token);
    await page.locator('#login-submit').click();
    await page.locator('#who').waitFor({ state: 'visible' });
  }
  async function logout() {
    await page.locator('#logout').click();
    await page.locator('#login-form').waitFor({ state: 'visible' });
  }
  const navVisible = async (view) => page.locator(`#nav a[data-view="${view}"]`).isVisible();
  // English UI strings still visible on the page (text, placeholders, titles).
  const english = Object.values(STRINGS.en).filter((v) => !v.includes('{') && v.length > 2).map((v) => v.toLowerCase());
  const untranslated = () => page.evaluate((list) => {
    const known = new Set(list);
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const text = n.textContent.trim().toLowerCase();
      if (text && known.has(text) && n.parentElement.checkVisibility()) found.push(text);
    }
    for (const e of document.querySelectorAll('input, select, button, [title]')) {
      if (!e.checkVisibility()) continue;
      for (const v of [e.placeholder, e.title]) if (v && known.has(v.toLowerCase())) found.push(v);
    }
    return found;
  }, english);

  await t.test('the UI is served without a token and loads nothing from elsewhere', async () => {
    await page.goto(server.base + '/');
    await page.locator('#login-form').waitFor();
    assert.equal(await page.locator('h1').first().innerText(), 'Sign in');
    assert.deepEqual(foreign, []);
    // A wrong token is refused with the server's words.
    await page.locator('#login-token').fill('not-a-token');
    await page.locator('#login-submit').click();
    await page.locator('#login-error').waitFor({ state: 'visible' });
    assert.match(await text('#login-error'), /unknown or revoked token/);
    await shot('login');
  });

  await t.test('an investigator searches a plate with a reason', async () => {
    await login(tokens.investigator);
    assert.match(await text('#who'), /A\. Nurlanova/);
    assert.ok(await navVisible('search'));
    assert.ok(await navVisible('track'));
    assert.ok(!(await navVisible('operations')));
    assert.ok(!(await navVisible('watchlist')));
    assert.ok(!(await navVisible('audit')));
    await page.locator('#view-search').waitFor({ state: 'visible' });

    // The cameras come from the registry.
    await until(async () => (await page.locator('#s-cameras option').count()) === CAMERAS.length, 'the camera list');

    // No reason: refused before asking the server.
    await page.locator('#s-plate').fill('123 ABC 02');
    await page.locator('#s-reason').fill('');
    await page.locator('#s-submit').click();
    await page.locator('#s-error').waitFor({ state: 'visible' });
    assert.match(await text('#s-error'), /reason/i);

    // A wildcard search, 10 to a page: two pages.
    await page.locator('#s-reason').fill(SEARCH_REASON);
    await page.locator('#s-plate').fill('*02');
    await page.locator('#s-mode').selectOption('wildcard');
    await page.locator('#s-limit').selectOption('10');
    await page.locator('#s-submit').click();
    await until(async () => (await page.locator('#s-rows tr').count()) === 10, '10 results');
    assert.ok(await page.locator('#s-next').isEnabled(), 'a second page');
    await page.locator('#s-next').click();
    await until(async () => (await text('#s-page')) === 'Page 2', 'page 2');
    assert.equal(await page.locator('#s-rows tr').count(), reads.length - 10);
    assert.ok(!(await page.locator('#s-next').isEnabled()), 'no third page');
    await page.locator('#s-prev').click();
    await until(async () => (await text('#s-page')) === 'Page 1', 'back on page 1');

    // More to a page, with snapshots shown through blob: URLs.
    await page.locator('#s-limit').selectOption('25');
    await page.locator('#s-submit').click();
    await until(async () => (await page.locator('#s-rows tr').count()) === reads.length, 'all results');
    await until(() => page.evaluate(() => {
      const imgs = [...document.querySelectorAll('#s-rows img.thumb-img')];
      return imgs.length >= 8 && imgs.slice(0, 8).every((i) => i.src.startsWith('blob:') && i.complete && i.naturalWidth === 320);
    }), 'snapshot thumbnails');
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('search');
    if (UPDATE_DOCS) await page.screenshot({ path: path.join(ROOT, 'docs/search.png') });

    // The exact plate, typed with spaces: its three sightings.
    await page.locator('#s-plate').fill('123 ABC 02');
    await page.locator('#s-mode').selectOption('exact');
    await page.locator('#s-submit').click();
    await until(async () => (await page.locator('#s-rows tr').count()) === 3
      && (await page.locator(`#s-rows tr[data-plate="${SUSPECT}"]`).count()) === 3, 'three sightings');
    const first = page.locator('#s-rows tr').first();
    assert.match(await first.innerText(), /123 ABC 02/);
    assert.match(await first.innerText(), /Kapchagay highway km 28/);
    assert.match(await first.innerText(), /Car · White/);
  });

  await t.test('its trajectory shows the cameras and flags the impossible hop', async () => {
    await page.locator('#s-rows tr').first().locator('button', { hasText: 'Trajectory' }).click();
    await page.locator('#view-track').waitFor({ state: 'visible' });
    await page.locator('#tr-map svg').waitFor();
    assert.equal(await page.locator('#tr-plate').inputValue(), SUSPECT);
    assert.equal(await page.locator('#tr-map g.cam').count(), CAMERAS.length);
    const labels = await page.locator('#tr-map .cam-name').allTextContents();
    for (const c of CAMERAS) assert.ok(labels.includes(c.name), `map label ${c.name}: ${labels}`);
    assert.equal(await page.locator('#tr-map g.cam.seen').count(), 3);
    assert.equal(await page.locator('#tr-map line.hop').count(), 2);
    const bad = page.locator('#tr-map line.hop.impossible');
    assert.equal(await bad.count(), 1);
    assert.equal(await bad.getAttribute('data-from'), 'alm-cam-02');
    assert.equal(await bad.getAttribute('data-to'), 'alm-cam-03');
    assert.match(await text('#tr-map .hop-label.impossible'), /⚠ \d{3} km\/h/);
    assert.match(await text('#tr-summary'), /Sightings: 3/);
    assert.match(await text('#tr-summary'), /Impossible hops: 1/);
    assert.equal(await page.locator('#tr-rows tr').count(), 3);
    assert.equal(await page.locator('#tr-rows tr.row-danger').count(), 1);
    assert.match(await text('#tr-rows tr.row-danger'), /impossible/);
    assert.equal(await page.locator('#tr-timeline .tl-point').count(), 3);
    assert.equal(await page.locator('#tr-timeline .tl-hop.impossible').count(), 1);
    await shot('trajectory');
  });

  await t.test('the language switches to Kazakh and Russian and is remembered', async () => {
    // The check for English left-overs finds them while the page is English.
    assert.ok((await untranslated()).length > 10);
    await page.locator('#lang-select').selectOption('kk');
    assert.equal(await page.getAttribute('html', 'lang'), 'kk');
    assert.equal(await text('#nav a[data-view="search"]'), 'Іздеу');
    assert.equal(await text('#nav a[data-view="track"]'), 'Жүріс жолы');
    assert.match(await text('#tr-summary'), /Мүмкін емес өтулер: 1/);
    assert.match(await text('#tr-map .hop-label.impossible'), /км\/сағ/);
    assert.equal(await text('#tr-submit'), 'Жүріс жолын көрсету');
    assert.equal(await text('#logout'), 'Шығу');
    assert.deepEqual(await untranslated(), []);
    await shot('trajectory-kk');

    await page.locator('#lang-select').selectOption('ru');
    assert.equal(await text('#nav a[data-view="search"]'), 'Поиск');
    assert.match(await text('#tr-summary'), /Невозможных переездов: 1/);
    assert.match(await text('#tr-map .hop-label.impossible'), /км\/ч/);
    assert.deepEqual(await untranslated(), []);
    await page.locator('#nav a[data-view="search"]').click();
    await page.locator('#view-search').waitFor({ state: 'visible' });
    assert.deepEqual(await untranslated(), []);
    await page.locator('#nav a[data-view="track"]').click();

    // A reload keeps the language (localStorage) and the session (sessionStorage).
    await page.reload();
    await page.locator('#nav').waitFor({ state: 'visible' });
    assert.equal(await text('#nav a[data-view="search"]'), 'Поиск');
    assert.equal(await page.locator('#lang-select').inputValue(), 'ru');
    assert.equal(await page.title(), 'Безопасный город');
    await page.locator('#lang-select').selectOption('en');
    assert.equal(await text('#nav a[data-view="search"]'), 'Search');
  });

  await t.test('an operator manages the watchlist', async () => {
    await logout();
    await login(tokens.operator);
    assert.ok(await navVisible('operations'));
    assert.ok(await navVisible('watchlist'));
    assert.ok(!(await navVisible('search')));
    assert.ok(!(await navVisible('audit')));
    await page.locator('#nav a[data-view="watchlist"]').click();
    await page.locator('#view-watchlist').waitFor({ state: 'visible' });

    // The server's refusal is shown as it is.
    await page.locator('#wl-pattern').fill('1*');
    await page.locator('#wl-mode').selectOption('wildcard');
    await page.locator('#wl-reason').fill('test');
    await page.locator('#wl-submit').click();
    await page.locator('#wl-error').waitFor({ state: 'visible' });
    assert.match(await text('#wl-error'), /Invalid request: .*too many plates/);

    await page.locator('#wl-pattern').fill('505 KXM 02');
    await page.locator('#wl-mode').selectOption('exact');
    await page.locator('#wl-priority').selectOption('high');
    await page.locator('#wl-reason').fill('Stolen vehicle, case 2026-0777');
    await page.locator('#wl-submit').click();
    const row = page.locator(`#wl-rows tr[data-pattern="${HOTLISTED}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /Stolen vehicle, case 2026-0777/);
    assert.match(await row.innerText(), /High/);
    assert.match(await row.innerText(), /Active/);
    assert.match(await text('#wl-ok'), /Added 505KXM02/);
    await shot('watchlist');
  });

  await t.test('a hotlisted plate raises a live alert that is acknowledged', async () => {
    await page.locator('#nav a[data-view="operations"]').click();
    await page.locator('#view-operations').waitFor({ state: 'visible' });
    await page.locator('#live[data-state="live"]').waitFor();
    // Camera health from the registry: alm-cam-03 reported offline.
    await page.locator('#op-health li[data-camera="alm-cam-03"][data-status="offline"]').waitFor();
    await page.locator('#op-health li[data-camera="alm-cam-01"][data-status="online"]').waitFor();
    assert.equal(await page.locator('#op-rows tr').count(), 0);

    const tonesBefore = await page.evaluate(() => window.__tones);
    const [jpeg] = await makeSnapshots(browser, [{ plate: '505 KXM 02', colour: '#1f4fa8', label: 'alm-cam-04  live' }]);
    await call(server.base, tokens.edge, 'POST', '/api/v1/events',
      [plateRead(HOTLISTED, 'alm-cam-04', Date.now(), 'car', 'blue', jpeg)]);
    const row = page.locator('#op-rows tr[data-kind="watchlist"]');
    await row.waitFor();
    assert.match(await row.innerText(), /505KXM02/);
    assert.match(await row.innerText(), /Tole bi \/ Auezov/);
    assert.equal(await row.getAttribute('data-state'), 'new');
    assert.equal(await row.locator('.state').innerText(), 'New');
    assert.match(await row.getAttribute('class'), /\b(flash|fresh)\b/);
    assert.equal(await text('#nav-badge'), '1');
    assert.ok((await page.evaluate(() => window.__tones)) > tonesBefore, 'a tone was played');

    await row.locator('button[data-action="ack"]').click();
    await page.locator('#op-rows tr[data-kind="watchlist"][data-state="acknowledged"]').waitFor();
    assert.equal(await page.locator('#op-rows tr[data-kind="watchlist"] .state').innerText(), 'Acknowledged');
    assert.ok(!(await page.locator('#nav-badge').isVisible()), 'no new alerts left');
  });

  await t.test('a pillar alarm shows place, time, snapshot and its clip', async () => {
    const id = ulid(Date.now());
    await call(server.base, tokens.edge, 'POST', '/api/v1/events', [{
      id, kind: 'panic_alarm', edge_id: 'edge-alm-01', camera_id: 'alm-pil-01',
      ts: new Date().toISOString(), alarm: { source: 'button' }, snapshot: pillarJpeg,
    }]);
    const row = page.locator('#op-rows tr[data-kind="panic_alarm"]');
    await row.waitFor();
    assert.match(await row.innerText(), /Pillar Abay Ave 52/);
    assert.match(await row.innerText(), /43\.24200, 76\.94900/);
    assert.match(await row.innerText(), /Critical/);
    // It opens at once, with the clip still to come.
    const detail = page.locator('#op-detail');
    await until(async () => /Pillar Abay Ave 52/.test(await detail.innerText()), 'the pillar alarm detail');
    await detail.locator('img.detail-img').waitFor();
    await detail.locator('.pending', { hasText: 'Clip pending' }).waitFor();
    assert.match(await detail.innerText(), /Nearest cameras\s+Abay \/ Dostyk — \d+ m/i, 'nearest cameras');
    // The edge delivers the clip; the board picks it up on its next try.
    await call(server.base, tokens.edge, 'PUT', `/api/v1/events/${id}/clip`, await makeClip(browser), 'video/mp4');
    await detail.locator('video').waitFor({ timeout: 20_000 });
    assert.match(await detail.locator('video').getAttribute('src'), /^blob:/);
    // The player really reads it.
    await until(() => detail.locator('video').evaluate((v) => v.readyState >= 1 && v.videoWidth === 320), 'the clip metadata');
    await detail.locator('button[data-action="ack"]').click();
    await page.locator('#op-rows tr[data-kind="panic_alarm"][data-state="acknowledged"]').waitFor();
  });

  await t.test('the board speaks Kazakh and Russian too', async () => {
    // A fresh alert for the picture: new, next to the acknowledged ones.
    await call(server.base, tokens.edge, 'POST', '/api/v1/events',
      [plateRead(HOTLISTED, 'alm-cam-01', Date.now(), 'car', 'blue', jpegs[0])]);
    await until(async () => (await page.locator('#op-rows tr[data-state="new"]').count()) === 1, 'a second hotlist alert');
    await page.locator('#op-rows tr[data-kind="panic_alarm"]').click();
    await page.locator('#op-detail video').waitFor();
    await until(() => page.locator('#op-detail video').evaluate((v) => v.readyState >= 2), 'the clip\'s first frame');
    await page.waitForTimeout(600);
    await shot('operations');
    if (UPDATE_DOCS) await page.screenshot({ path: path.join(ROOT, 'docs/operations.png') });

    await page.locator('#lang-select').selectOption('kk');
    assert.equal(await text('#nav a[data-view="operations"] span'), 'Жедел орталық');
    assert.equal(await text('#op-rows tr[data-kind="panic_alarm"] .state'), 'Қабылданды');
    assert.equal(await text('#op-rows tr[data-kind="panic_alarm"] .kind-tag'), 'Бағаннан дабыл');
    assert.equal(await text('#op-rows tr[data-state="new"] button[data-action="ack"]'), 'Қабылдау');
    assert.match(await text('#op-detail'), /Орны/);
    assert.match(await text('#live'), /Дабылдар онлайн/);
    assert.deepEqual(await untranslated(), []);
    await shot('operations-kk');
    await page.locator('#lang-select').selectOption('ru');
    assert.equal(await text('#op-rows tr[data-kind="panic_alarm"] .state'), 'Принята');
    assert.equal(await text('#op-rows tr[data-state="new"] .state'), 'Новая');
    assert.match(await text('#op-health-summary'), /Не в сети 1/);
    assert.deepEqual(await untranslated(), []);
    await page.locator('#nav a[data-view="watchlist"]').click();
    await page.locator('#wl-rows tr').first().waitFor();
    assert.deepEqual(await untranslated(), []);
    await page.locator('#nav a[data-view="operations"]').click();
    await page.locator('#lang-select').selectOption('en');
  });

  await t.test('the live stream reconnects and replays what it missed', async () => {
    await stopServer(server.child, 'SIGKILL');
    await page.locator('#live[data-state="reconnecting"], #live[data-state="connecting"]').waitFor();
    server = await startServer(dataDir, admin, log, port);
    await call(server.base, tokens.edge, 'POST', '/api/v1/events',
      [plateRead(HOTLISTED, 'alm-cam-02', Date.now(), 'car', 'blue', jpegs[1])]);
    await until(async () => (await page.locator('#op-rows tr[data-kind="watchlist"]').count()) === 3,
      'the alert raised during the outage', 30_000);
    await page.locator('#live[data-state="live"]').waitFor({ timeout: 30_000 });
    assert.match(await page.locator('#op-rows tr[data-kind="watchlist"]').first().innerText(), /Al-Farabi/);
  });

  await t.test('an edge token has no views', async () => {
    await logout();
    await login(tokens.edge);
    await page.locator('#view-none').waitFor({ state: 'visible' });
    for (const v of ['search', 'track', 'operations', 'watchlist', 'audit']) assert.ok(!(await navVisible(v)), v);
    assert.match(await text('#who'), /Edge device/);
  });

  await t.test('an admin sees every view and the audit log', async () => {
    await logout();
    await login(admin);
    for (const v of ['search', 'track', 'operations', 'watchlist', 'audit']) assert.ok(await navVisible(v), v);
    await page.locator('#nav a[data-view="audit"]').click();
    await page.locator('#au-rows tr').first().waitFor();
    const rows = await page.locator('#au-rows').innerText();
    assert.ok(rows.includes(SEARCH_REASON), 'the search reason is in the audit log');
    assert.match(rows, /A\. Nurlanova/);
    assert.match(rows, /GET \/api\/v1\/search/);
    assert.match(rows, /watchlist \d+ added: exact 505KXM02/);
    await shot('audit');
  });

  await t.test('no script errors, policy violations or foreign requests', () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(foreign, []);
  });

  if (UPDATE_DOCS) {
    for (const name of ['search', 'operations']) {
      const size = pngSize(path.join(ROOT, `docs/${name}.png`));
      assert.ok(size < 300 * 1024, `docs/${name}.png is ${size} bytes; keep it under 300 KB`);
    }
  }
  writeFileSync(path.join(ARTEFACTS, 'README.txt'), 'Screenshots of the last browser test run (tests/browser/ui.test.mjs).\n');
});
