// The API client: JSON in and out, the bearer token on every request, and
// sign-in when the API answers 401 with WWW-Authenticate: Bearer.
//
// The token lives in sessionStorage: it survives a reload, is gone when the
// tab closes, and is never in a URL except /api/events' access_token
// (EventSource cannot send headers).

const KEY = 'gatewayd.token';
const tokenListeners = new Set();

export function token() {
  try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  } catch { /* storage disabled: the token lasts as long as the page */ }
  memoryToken = t;
  for (const f of tokenListeners) f(t);
}
let memoryToken = '';
function currentToken() { return token() || memoryToken; }

// onToken calls f whenever the token changes (the event stream reopens).
export function onToken(f) {
  tokenListeners.add(f);
  return () => tokenListeners.delete(f);
}

// ApiError is an answer other than 2xx: status, code, message and the
// per-field details of a VALIDATION_ERROR.
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || 'HTTP ' + status);
    this.status = status;
    this.code = e.code || 'HTTP_' + status;
    this.details = Array.isArray(e.details) ? e.details : [];
  }
  // text is one line for a toast: the message and every detail.
  text() {
    const d = this.details.map(x => x.field + ' ' + x.message).join('; ');
    return d ? this.message + ': ' + d : this.message;
  }
}

// Metadata is the operator's JSON, and the API keeps it as sent: a number's
// digits (12345678901234567890, 1.50, 1e400) and a duplicate key, which it
// refuses. A JS number keeps neither, so metadata travels as text: RawJSON
// is sent as it is, and a number a JS number cannot hold comes back as a
// JSONNumber that keeps its text (where the browser gives a reviver the
// source text; elsewhere it is read as a plain number, as before).
export class RawJSON {
  constructor(text) { this.text = text; }
}

export class JSONNumber {
  constructor(source) { this.source = source; }
  toString() { return this.source; }
  valueOf() { return Number(this.source); }
}

// jsonText is JSON.stringify that writes RawJSON and JSONNumber as their
// text.
export function jsonText(value, indent) {
  const raws = [];
  const mark = 'raw-' + Math.random().toString(36).slice(2) + '-';
  const text = JSON.stringify(value, function (k, v) {
    const own = this[k]; // before toJSON/valueOf
    if (own instanceof RawJSON) return mark + (raws.push(own.text) - 1);
    if (own instanceof JSONNumber) return mark + (raws.push(own.source) - 1);
    return v;
  }, indent);
  if (!raws.length) return text;
  return text.replace(new RegExp('"' + mark + '(\\d+)"', 'g'), (_, i) => raws[Number(i)]);
}

// readJSON parses an answer; with metadata in it, numbers that a JS number
// would change keep their text.
function readJSON(text) {
  if (!text.includes('"metadata"')) return JSON.parse(text);
  return JSON.parse(text, (k, v, context) =>
    typeof v === 'number' && context && typeof context.source === 'string' && context.source !== String(v)
      ? new JSONNumber(context.source) : v);
}

// api calls /api + path. body, when given, is sent as JSON. A 401 that asks
// for a bearer token opens the sign-in dialog and retries with the token
// entered; 204 gives null.
export async function api(method, path, body) {
  for (;;) {
    const headers = {Accept: 'application/json'};
    const t = currentToken();
    if (t) headers.Authorization = 'Bearer ' + t;
    const init = {method, headers, cache: 'no-store'};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = jsonText(body);
    }
    let res;
    try {
      res = await fetch('/api' + path, init);
    } catch (e) {
      throw new ApiError(0, {error: {code: 'NETWORK', message: 'gatewayd cannot be reached'}});
    }
    if (res.status === 401 && /bearer/i.test(res.headers.get('WWW-Authenticate') || '')) {
      // A token given while this request was out is tried before asking
      // again: its 401 answers the request's token, not the one now held.
      if (currentToken() === t) await signIn(t ? 'That token was not accepted (unknown, expired or revoked).' : '');
      continue;
    }
    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = readJSON(text); } catch { data = null; }
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }
}

// listAll reads every page of a list (limit 100 each), up to max items.
export async function listAll(path, max = 5000) {
  const sep = path.includes('?') ? '&' : '?';
  const out = [];
  for (let offset = 0; offset < max; offset += 100) {
    const page = await api('GET', `${path}${sep}limit=100&offset=${offset}`);
    out.push(...page.data);
    if (!page.pagination.hasNext) break;
  }
  return out;
}

// whoami is what the token may do: {auth_enabled, role, token}.
export function whoami() {
  return api('GET', '/whoami');
}

// checkAuth asks something small that needs a token; a 401 opens the
// sign-in dialog. The event stream calls it when EventSource gives up.
export async function checkAuth() {
  await api('GET', '/organizations?limit=1');
}

// Sign-in: one dialog, however many requests are waiting for it.
let waiting = null;

function signIn(problem) {
  if (waiting) return waiting.promise;
  let resolve;
  const promise = new Promise(r => { resolve = r; });
  waiting = {promise, resolve};
  const dialog = document.getElementById('signin');
  const form = dialog.querySelector('form');
  const input = dialog.querySelector('input');
  const msg = dialog.querySelector('.form-error');
  msg.textContent = problem;
  msg.hidden = !problem;
  input.value = '';
  form.onsubmit = ev => {
    ev.preventDefault();
    const v = input.value.trim();
    if (!v) {
      msg.textContent = 'Enter a token.';
      msg.hidden = false;
      input.focus();
      return;
    }
    dialog.close();
    // Focus would stay on the closed dialog's button, then fall to the
    // page's top: a keyboard user goes on from the content instead.
    const a = document.activeElement;
    if (!a || a === document.body || dialog.contains(a)) document.getElementById('main')?.focus();
    const w = waiting;
    waiting = null;
    setToken(v);
    w.resolve();
  };
  // Escape must not leave requests hanging: the dialog stays until a token is given.
  // Chromium lets a page refuse only one Escape without a user gesture (a
  // key press is none), so a second one closed it and the page hung: a
  // dialog closed while requests still wait opens again.
  dialog.oncancel = ev => ev.preventDefault();
  dialog.onclose = () => {
    if (waiting && waiting.promise === promise) {
      dialog.showModal();
      input.focus();
    }
  };
  if (!dialog.open) dialog.showModal();
  input.focus();
  return promise;
}
