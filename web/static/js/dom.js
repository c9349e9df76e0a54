// DOM helpers. Everything is built with createElement and textContent:
// no innerHTML anywhere, so nothing the API returns is ever parsed as
// markup, and no style attribute (the CSP forbids them): styles are
// classes, or el.style.x set from script.

// h builds an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child…).
// Attributes: class, text, dataset (object), on<event> (listener), hidden,
// disabled, checked, selected, value (properties); anything else is an
// attribute. null/undefined/false children and attributes are skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'selected' || k === 'value' || k === 'required' || k === 'open') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// clear empties an element.
export function clear(el) {
  el.replaceChildren();
  return el;
}

// setText changes an element's text only when it differs (cheap when
// nothing changed, which is most of the time in a live list).
export function setText(el, text) {
  text = text == null ? '' : String(text);
  if (el.textContent !== text) el.textContent = text;
}

// Times: the API's are UTC RFC 3339; people read local time.
const timeFmt = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'medium'});
const clockFmt = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3});
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return isNaN(d) ? iso : timeFmt.format(d);
}
export function fmtClock(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : clockFmt.format(d);
}

// ago says how long ago (or, negative, how soon) a time is: "12 s ago", "in 3 s".
export function ago(iso, now = Date.now()) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (isNaN(t)) return iso;
  let s = Math.round((now - t) / 1000);
  const future = s < 0;
  s = Math.abs(s);
  let text;
  if (s < 60) text = s + ' s';
  else if (s < 3600) text = Math.floor(s / 60) + ' min';
  else if (s < 86400) text = Math.floor(s / 3600) + ' h';
  else text = Math.floor(s / 86400) + ' d';
  return future ? 'in ' + text : text + ' ago';
}

// fmtNum formats a number for people; never "-0".
const numFmt = new Intl.NumberFormat(undefined, {signDisplay: 'negative'});
export function fmtNum(n, digits) {
  if (n === null || n === undefined) return '—';
  if (digits !== undefined) return Number(n).toLocaleString(undefined, {maximumFractionDigits: digits, signDisplay: 'negative'});
  return numFmt.format(n);
}

// badge is a state badge: its class gives the colour, its text the state.
export function badge(state) {
  return h('span', {class: 'badge st-' + (state || 'NONE'), text: state || '…'});
}
export function setBadge(el, state) {
  const cls = 'badge st-' + (state || 'NONE');
  if (el.className !== cls) el.className = cls;
  setText(el, state || '…');
}

// toast shows a short message in the live region at the bottom: the last
// three at most; a click dismisses one.
export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  if (!box) return;
  while (box.children.length >= 3) box.firstChild.remove();
  const t = h('p', {class: 'toast toast-' + kind, text: message, onclick: () => t.remove()});
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3000);
}

// dl builds a description list from [term, value] pairs; a value may be a node.
export function dl(pairs, cls = 'facts') {
  return h('dl', {class: cls}, pairs.filter(Boolean).map(([k, v]) => [h('dt', {text: k}), h('dd', null, v ?? '—')]));
}

// Scope collects what a view starts (listeners, timers, streams) so the
// router can end all of it when the user navigates away.
export class Scope {
  constructor() {
    this.alive = true;
    this.ends = [];
  }
  add(end) {
    if (this.alive) this.ends.push(end);
    else end();
    return end;
  }
  every(ms, fn) {
    const id = setInterval(fn, ms);
    this.add(() => clearInterval(id));
  }
  end() {
    this.alive = false;
    for (const f of this.ends.splice(0)) {
      try { f(); } catch (e) { console.error(e); }
    }
  }
}

// isolate keeps text that others chose (a name a gateway reported, an
// operator's name for a token) from reordering the text around it: a
// right-to-left override in "Pump \u202E" turned the "(12345)" after it
// into "(54321)" (found by an audit, helper 8). U+2068 FIRST STRONG
// ISOLATE … U+2069 POP DIRECTIONAL ISOLATE, for text that is one string
// (a title, a heading, a question); in the DOM, an element per name does
// the same.
export function isolate(text) {
  return '\u2068' + text + '\u2069';
}

// link is an anchor to a route.
export function link(route, text, cls) {
  return h('a', {href: '#' + route, class: cls, text});
}

// debounce runs fn once, wait ms after the last call.
export function debounce(fn, wait) {
  let t = 0;
  const d = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), wait);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}
