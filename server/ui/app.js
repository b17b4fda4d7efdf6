// The page shell: sign-in, the views each role may open, hash navigation,
// the language selector and the camera registry the views share.

import { getJson, getToken, setToken, clearToken, onUnauthorized } from './api.js';
import { t, initLang, setLang, lang, applyStatic, onLangChange } from './i18n.js';
import { showError } from './util.js';
import * as search from './search.js';
import * as track from './track.js';
import * as board from './board.js';
import * as watchlist from './watchlist.js';
import * as audit from './audit.js';

// Which roles may open each view. This mirrors the server's checks: every
// route names its roles, and admin is listed on all of them.
const VIEWS = {
  search: { roles: ['investigator', 'admin'], module: search },
  track: { roles: ['investigator', 'admin'], module: track },
  operations: { roles: ['operator', 'admin'], module: board },
  watchlist: { roles: ['operator', 'admin'], module: watchlist },
  audit: { roles: ['admin'], module: audit },
};

const $ = (id) => document.getElementById(id);

let me = null; // {name, role} of the signed-in token
let current = null; // the view shown
let cameraCache = null; // {at, list}

// What the views get from the shell.
const ctx = {
  get me() { return me; },
  // Whether the signed-in user may open `view`.
  can(view) {
    return Boolean(me && VIEWS[view] && VIEWS[view].roles.includes(me.role));
  },
  // The camera registry, fetched at most once a minute unless `fresh`.
  async cameras(fresh = false) {
    if (!fresh && cameraCache && Date.now() - cameraCache.at < 60_000) return cameraCache.list;
    const body = await getJson('/api/v1/cameras');
    cameraCache = { at: Date.now(), list: body.cameras || [] };
    return cameraCache.list;
  },
  cameraById(id) {
    return cameraCache?.list.find((c) => c.id === id) || null;
  },
  go(view) {
    if (location.hash !== `#${view}`) location.hash = `#${view}`;
    else route();
  },
  // Opens the trajectory view for a plate (from a search result).
  openTrack(params) {
    track.prefill(params);
    ctx.go('track');
  },
  // The number of new alerts, shown on the Operations tab and the title.
  setAlertBadge(n) {
    const badge = $('nav-badge');
    badge.hidden = !n;
    badge.textContent = n ? String(n) : '';
    document.title = (n ? `(${n}) ` : '') + t('app.title');
  },
  // The live-stream indicator in the top bar: state is live, connecting,
  // reconnecting, denied or null (hidden).
  setLive(state, seconds) {
    const box = $('live');
    box.hidden = !state;
    box.dataset.state = state || '';
    $('live-text').textContent = state ? t(`live.${state}`, { s: seconds }) : '';
  },
};

function allowedViews() {
  return Object.keys(VIEWS).filter((v) => ctx.can(v));
}

// Shows the view the hash names, or the first one the role may open.
function route() {
  if (!me) return;
  const allowed = allowedViews();
  let view = location.hash.replace(/^#/, '');
  if (!allowed.includes(view)) view = allowed[0] || null;
  for (const section of document.querySelectorAll('main > .view')) section.hidden = true;
  for (const a of document.querySelectorAll('#nav a')) {
    a.hidden = !allowed.includes(a.dataset.view);
    a.classList.toggle('active', a.dataset.view === view);
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!view) {
    $('view-none').hidden = false;
    current = null;
    return;
  }
  if (current && current !== view) VIEWS[current].module.hide?.();
  current = view;
  $(`view-${view}`).hidden = false;
  VIEWS[view].module.show(ctx);
}

// Signs in with the token in sessionStorage; shows the login form if
// there is none or the server refuses it.
async function start() {
  const token = getToken();
  if (!token) return showLogin();
  try {
    me = await getJson('/api/v1/me');
  } catch (e) {
    me = null;
    if (e.status === 401) clearToken();
    return showLogin(e);
  }
  $('view-login').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
  $('logout').hidden = false;
  renderWho();
  for (const v of allowedViews()) VIEWS[v].module.init?.(ctx);
  // The board listens for alerts on every tab, so cues are never missed.
  if (ctx.can('operations')) board.startLive(ctx);
  route();
}

function renderWho() {
  if (!me) return;
  $('who-name').textContent = me.name;
  $('who-role').textContent = t(`role.${me.role}`);
  $('who-role').dataset.role = me.role;
}

function showLogin(err) {
  for (const section of document.querySelectorAll('main > .view')) section.hidden = true;
  $('view-login').hidden = false;
  $('nav').hidden = true;
  $('who').hidden = true;
  $('logout').hidden = true;
  ctx.setLive(null);
  ctx.setAlertBadge(0);
  showError($('login-error'), err || null);
  $('login-token').focus();
}

function logout(err) {
  for (const v of Object.values(VIEWS)) v.module.reset?.();
  clearToken();
  me = null;
  current = null;
  cameraCache = null;
  if (location.hash) history.replaceState(null, '', location.pathname);
  showLogin(err);
}

function setup() {
  initLang();
  applyStatic(document);
  $('lang-select').value = lang();
  document.title = t('app.title');

  $('lang-select').addEventListener('change', (e) => setLang(e.target.value));
  onLangChange(() => {
    $('lang-select').value = lang();
    renderWho();
    if (me) for (const v of allowedViews()) VIEWS[v].module.rerender?.();
  });

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('login-token').value.trim();
    if (!token) return;
    setToken(token);
    $('login-token').value = '';
    start();
  });
  $('logout').addEventListener('click', () => logout());
  // A token the server no longer accepts ends the session.
  onUnauthorized((message) => {
    if (me) logout({ status: 401, message });
  });
  window.addEventListener('hashchange', route);
  start();
}

setup();
