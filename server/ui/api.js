// The HTTP API under /api/v1: JSON calls with the bearer token, binary
// downloads, and a reader for server-sent events over fetch().

const TOKEN_KEY = 'safecity.token';

// An answer other than 2xx; `message` is the server's `error` text.
// `status` 0 means the server could not be reached.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

// Called when the server says the token is not (or no longer) valid.
let unauthorizedHandler = () => {};
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// "?a=1&b=2" from an object or a list of [name, value] pairs (for
// repeated names); empty values are left out.
export function queryString(query) {
  if (!query) return '';
  const pairs = Array.isArray(query) ? query : Object.entries(query);
  const params = new URLSearchParams();
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === '') continue;
    params.append(k, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}`, ...extra } : extra;
}

// Turns a non-2xx answer into an ApiError with the server's message.
async function failure(res) {
  let message = '';
  try {
    const body = await res.json();
    message = body && typeof body.error === 'string' ? body.error : '';
  } catch {
    message = res.statusText;
  }
  if (res.status === 401) unauthorizedHandler(message);
  return new ApiError(res.status, message);
}

async function request(path, { method = 'GET', query, body, signal, headers = {} } = {}) {
  const init = { method, headers: authHeaders(headers), signal, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path + queryString(query), init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, e.message);
  }
  if (!res.ok) throw await failure(res);
  return res;
}

// GET a JSON document.
export async function getJson(path, options = {}) {
  const res = await request(path, options);
  return res.json();
}

// POST/PUT/DELETE with an optional JSON body; the JSON answer.
export async function sendJson(method, path, body, options = {}) {
  const res = await request(path, { ...options, method, body });
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// GET binary content (snapshots, clips) as a Blob, for URL.createObjectURL:
// <img> and <video> cannot send the Authorization header themselves.
export async function getBlob(path, options = {}) {
  const res = await request(path, options);
  return res.blob();
}

// Reads a server-sent event stream with fetch(), which (unlike EventSource)
// can send the Authorization header. Calls `onOpen()` once connected,
// `onEvent({type, data, id})` per event and `onActivity()` on any bytes
// (keep-alive comments included). Resolves when the server ends the stream;
// rejects on an error answer, a network failure or `signal` aborting.
export async function readEventStream(path, { lastEventId, signal, onOpen, onEvent, onActivity }) {
  const headers = authHeaders({ Accept: 'text/event-stream' });
  if (lastEventId !== null && lastEventId !== undefined) {
    headers['Last-Event-ID'] = String(lastEventId);
  }
  let res;
  try {
    res = await fetch(path, { headers, signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, e.message);
  }
  if (!res.ok) throw await failure(res);
  onOpen?.();

  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  let type = '';
  let id = null;
  let retry = null;

  // One line of the stream, as the EventSource specification reads it.
  const line = (text) => {
    if (text === '') {
      if (data.length) onEvent?.({ type: type || 'message', data: data.join('\n'), id, retry });
      data = [];
      type = '';
      return;
    }
    if (text.startsWith(':')) return; // a comment (keep-alive)
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') type = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value);
  };

  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    onActivity?.();
    buffer += value;
    // Lines end in \n, \r\n or \r; a trailing \r may be half of \r\n.
    let m;
    while ((m = /\r\n|\n|\r(?=[^\n])/.exec(buffer))) {
      line(buffer.slice(0, m.index));
      buffer = buffer.slice(m.index + m[0].length);
    }
  }
}
