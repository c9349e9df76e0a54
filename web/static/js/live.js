// Live data: the event stream (/api/events through EventSource) and the
// fleet, an in-memory map of every gateway's status that the stream keeps
// current.
//
// The fleet is loaded once with GET /api/gateways/status; after that each
// gateway.state event changes one entry in place and moves the counts per
// state. Changes are not drawn as they arrive: they are collected (a set of
// changed ids) and handed to the views once per animation frame, so a
// storm of thousands of events a second costs one render per frame, and
// only of the rows on screen.

import {api, token, onToken, checkAuth, ApiError} from './api.js';
import {tabStream} from './tabs.js';

export const STATES = ['AUTHENTICATED', 'CONNECTING', 'CONNECTED', 'BACKOFF', 'AUTH_FAILED', 'DISCONNECTED', 'FAILED'];
const GATEWAY_TYPES = ['gateway.state', 'gateway.created', 'gateway.updated', 'gateway.deleted'];
const OTHER_TYPES = ['sensor.updated', 'reading.completed', 'reading.failed'];

// PERF (?perf in the page URL) records per-frame figures for the scale
// benchmark in window.gwdPerf and the Performance API; off, nothing is kept.
export const PERF = new URLSearchParams(location.search).has('perf');
export const perf = {events: 0, handlerMs: 0, frames: 0, frameMs: [], lagMs: [], resyncs: 0, streamOpens: 0, sortMs: []};
if (PERF) window.gwdPerf = perf;

// openStream follows /api/events?query. handlers[type](data) is called for
// each event of the types in `types` that has a handler (the others are
// not even parsed); handlers.reset() after `event: reset` (what the client knew
// is stale: it must reload); status('live'|'reconnecting'|'down').
//
// EventSource reconnects by itself after a dropped stream, sending
// Last-Event-ID, so nothing is lost; when the server refuses the stream
// (401, 503…) it gives up, and this reopens it after checking the token,
// resuming from the last id seen. A stream that comes back without an id
// to resume from (none was seen: a quiet fleet) is told nothing of what
// happened while it was away, so that reopening counts as a reset: a
// gateway disconnected during a network blip stayed AUTHENTICATED on the
// page for good (found by an audit, helper 6). The token goes as
// access_token: EventSource cannot send an Authorization header.
//
// A last_event_id in query is where the first open resumes from.
// onMessage(type, m), when given, sees each event of the types followed
// as it came, before (and without) parsing: tabs.js passes them on to the
// page's other tabs.
export function openStream(query, handlers, types, status = () => {}, onMessage = null) {
  let es = null;
  let closed = false;
  let opened = false; // a stream was open before: the next open is a reopen
  let lastId = new URLSearchParams(query).get('last_event_id') || ''; // where to resume from
  let retry = 1000;
  let timer = 0;
  let failures = 0; // errors since the stream was last open
  let lastOverflow = -Infinity;
  const listening = new Map(types.map(type => [type, m => {
    if (m.lastEventId) lastId = m.lastEventId;
    if (onMessage) onMessage(type, m);
    const f = handlers[type];
    if (f) f(JSON.parse(m.data), m);
  }])); // type → the listener on es
  const open = () => {
    if (es) es.close(); // one stream at a time, however the reopen came about
    const q = new URLSearchParams(query);
    const t = token();
    if (t) q.set('access_token', t);
    if (lastId) q.set('last_event_id', lastId);
    const qs = q.toString();
    es = new EventSource('/api/events' + (qs ? '?' + qs : ''));
    if (PERF) perf.streamOpens++;
    es.onopen = () => {
      retry = 1000;
      failures = 0;
      const blind = opened && !lastId;
      opened = true;
      status('live');
      if (blind && handlers.reset) handlers.reset();
    };
    for (const [type, l] of listening) es.addEventListener(type, l);
    es.addEventListener('reset', () => handlers.reset && handlers.reset());
    // After overflow (this page fell too far behind) the server closes the
    // stream. The browser would reconnect by itself, but only after its
    // retry delay (seconds), by when a storm has pushed the missed events
    // out of the server's ring and only a reset and a full reload remain:
    // resume at once instead, from the last event seen; the ring fills the
    // gap. A second overflow within a second waits a second.
    es.addEventListener('overflow', () => {
      status('reconnecting');
      const now = performance.now();
      const soon = now - lastOverflow < 1000;
      lastOverflow = now;
      clearTimeout(timer);
      timer = setTimeout(() => { if (!closed) open(); }, soon ? 1000 : 0);
    });
    es.onerror = () => {
      if (closed) return;
      if (es.readyState !== EventSource.CLOSED) {
        status('reconnecting');
        // The browser reconnects by itself, at a fixed pace (3 s), for as
        // long as gatewayd cannot be reached: every open page knocked
        // every 3 s through an outage (found by an audit, helper 4). Its
        // first reconnect is left to it (a blip); once one has failed,
        // this reopens it instead, backing off (1 s doubling to 15 s, as
        // the pages' tries do), from the last id seen.
        if (++failures < 2) return;
        es.close();
        clearTimeout(timer);
        timer = setTimeout(() => { if (!closed) open(); }, retry);
        retry = Math.min(retry * 2, 15000);
        return;
      }
      status('down');
      es.close();
      timer = setTimeout(async () => {
        try { await checkAuth(); } catch { /* the API is down: try the stream again anyway */ }
        if (!closed) open();
      }, retry);
      retry = Math.min(retry * 2, 30000);
    };
  };
  open();
  const offToken = onToken(() => {
    if (closed) return;
    clearTimeout(timer);
    es.close();
    open();
  });
  const close = () => {
    closed = true;
    clearTimeout(timer);
    offToken();
    if (es) es.close();
  };
  return close;
}

// The shared stream: one EventSource for the whole page, started once,
// and shared with the browser's other tabs of gatewayd (tabs.js). It
// always follows the gateways; sensor and reading events are parsed only
// while a view listens to them (the overview does not: in a reconnect
// storm that halves what the page parses).
const eventListeners = new Map(); // type → Set of fn(data)
const statusListeners = new Set();
let streamStatus = 'connecting';

// onEvent calls fn(data) for each event of type on the shared stream.
// 'reset' is the stream's own (emitted after the fleet reloads).
export function onEvent(type, fn) {
  if (!eventListeners.has(type)) eventListeners.set(type, new Set());
  eventListeners.get(type).add(fn);
  return () => eventListeners.get(type).delete(fn);
}

export function onStreamStatus(fn) {
  statusListeners.add(fn);
  fn(streamStatus);
  return () => statusListeners.delete(fn);
}

function emit(type, data) {
  const ls = eventListeners.get(type);
  if (ls) for (const f of ls) f(data);
}

// The fleet.
export const fleet = {
  byId: new Map(), // id → status (the API's fields) plus v, a change counter, and key, its sort key
  factoryOf: new Map(), // id → factory_id from per-factory loads and creations; state events set g.factory_id
  counts: Object.fromEntries(STATES.map(s => [s, 0])), // of every gateway
  ready: false,
  error: null,
  loadedFactories: new Set(),
};

// sortKey orders names naturally and without a collator (10,000 collator
// comparisons per sort were most of a sort's time): lower case, every run
// of digits left-padded, so "gw-2" < "gw-10"; ties by id.
export function sortKey(g) {
  return (g.name || g.gateway_id || '').toLowerCase().replace(/\d+/g, d => d.padStart(12, '0')) + '\u0000' + g.id;
}

function count(state, d) {
  if (state) fleet.counts[state] = (fleet.counts[state] || 0) + d;
}

const fleetListeners = new Set();
let pending = 0; // changes since the last frame
let structural = false; // a gateway came, went, or was renamed: lists must re-sort
let frame = 0;
let firstPending = 0;
let buffer = null; // events that arrive while a snapshot loads
let opened;
const streamOpened = new Promise(r => { opened = r; });

// subscribe calls fn(changes, structural) once per frame with changes.
export function subscribe(fn) {
  fleetListeners.add(fn);
  return () => fleetListeners.delete(fn);
}

function schedule() {
  pending++;
  if (!firstPending) firstPending = performance.now();
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  const t0 = performance.now();
  const changes = pending;
  const s = structural;
  pending = 0;
  structural = false;
  frame = 0;
  const lag = t0 - firstPending;
  firstPending = 0;
  for (const f of fleetListeners) {
    try { f(changes, s); } catch (e) { console.error(e); }
  }
  if (PERF) {
    const t1 = performance.now();
    perf.frames++;
    perf.frameMs.push(t1 - t0);
    perf.lagMs.push(t1 - t0 + lag);
    performance.measure('gwd:flush', {start: t0, end: t1});
  }
}

function upsert(s) {
  const g = fleet.byId.get(s.id);
  if (!g) {
    fleet.byId.set(s.id, Object.assign({v: 0}, s, {key: sortKey(s)}));
    count(s.state, 1);
    structural = true;
  } else {
    count(g.state, -1);
    count(s.state, 1);
    Object.assign(g, s);
    const key = sortKey(g);
    if (key !== g.key) {
      g.key = key;
      structural = true;
    }
    g.v++;
  }
  schedule();
}

// applyState takes a gateway.state event. Its fields are those of the
// status that matter in a list; the rest (attempts, next retry) are asked
// for by the gateway page. It runs for every event of a storm: one map
// look-up, a few stores, no allocation.
function applyState(ev) {
  if (buffer) {
    buffer.push(ev);
    return;
  }
  let g = fleet.byId.get(ev.id);
  if (!g) {
    g = {v: 0, id: ev.id, gateway_id: ev.gateway_id, name: ev.name, desired_state: null, connected_at: null,
      last_seen_at: null, reconnect_attempts: null, next_retry_at: null, restarts: null, factory_id: ev.factory_id};
    g.key = sortKey(g);
    fleet.byId.set(ev.id, g);
    structural = true;
  } else if (ev.name !== undefined && g.name !== ev.name) {
    g.name = ev.name;
    g.key = sortKey(g);
    structural = true;
  }
  count(g.state, -1);
  count(ev.to, 1);
  g.state = ev.to;
  g.since = ev.at;
  g.last_error = ev.last_error;
  g.factory_id = ev.factory_id;
  if (ev.to === 'DISCONNECTED') g.desired_state = 'DISCONNECTED';
  g.v++;
  schedule();
}

// An event that came while the snapshot loaded applies only if it follows
// from what the snapshot says: the snapshot may already include it. A
// gateway the snapshot does not know was created meanwhile.
function applyBuffered(ev) {
  if (ev.type === 'deleted') {
    remove(ev.id);
    return;
  }
  if (ev.type === 'changed') {
    refresh(ev.id);
    return;
  }
  const g = fleet.byId.get(ev.id);
  if (!g || (g.state === ev.from && ev.at >= g.since)) applyState(ev);
}

function remove(id) {
  const g = fleet.byId.get(id);
  if (g) {
    fleet.byId.delete(id);
    count(g.state, -1);
    structural = true;
    schedule();
  }
}

async function refresh(id) {
  try {
    const s = await api('GET', '/gateways/' + id + '/status');
    // An answer that set out before a state change the stream has shown
    // since must not put the older state back: a connect's or
    // disconnect's gateway.updated comes just before its state changes,
    // and a list badge stayed CONNECTING under AUTHENTICATED (CI).
    const g = fleet.byId.get(id);
    if (g && g.since && s.since < g.since) {
      s.state = g.state;
      s.since = g.since;
      s.last_error = g.last_error;
    }
    upsert(s);
  } catch (e) {
    if (e.status === 404) remove(id);
  }
}

// changed re-reads a gateway's status (created, renamed…), after the
// snapshot when one is loading.
function changed(id) {
  if (buffer) buffer.push({type: 'changed', id});
  else refresh(id);
}

// loadFleet (re)reads every status; events that arrive meanwhile wait. A
// snapshot that fails is tried again (again, below): one refused during
// a database outage (503: a token this process had not confirmed yet) or
// while gatewayd restarted was never asked for again, and the fleet said
// "could not be loaded" for good under a header that said "Live" (found
// by an audit, helper 12).
let loading = null;
let fleetTries = null; // the snapshot's tries, until one succeeds
export function loadFleet() {
  if (!fleetTries || !fleetTries.now()) fleetTries = again(snapshot);
}

function snapshot() {
  if (loading) return loading;
  loading = (async () => {
    buffer = buffer || [];
    try {
      // Subscribed first, then the snapshot: no change falls between them.
      await Promise.race([streamOpened, new Promise(r => setTimeout(r, 3000))]);
      performance.mark('gwd:snapshot-start');
      const res = await api('GET', '/gateways/status');
      performance.mark('gwd:snapshot-fetched');
      const m = new Map();
      for (const s of res.data) {
        // A version past the entry it replaces: a row is redrawn when its
        // version moves, and a reloaded fleet's rows all started at 0
        // again, so a reset's reload left rows drawn as they were.
        const old = fleet.byId.get(s.id);
        s.v = old ? old.v + 1 : 0;
        s.key = sortKey(s);
        m.set(s.id, s);
      }
      fleet.byId = m;
      fleet.counts = Object.fromEntries(STATES.map(s => [s, 0]));
      for (const [st, n] of Object.entries(res.counts || {})) fleet.counts[st] = n;
      fleet.ready = true;
      fleet.error = null;
      performance.mark('gwd:snapshot-applied');
    } catch (e) {
      fleet.error = e;
      throw e;
    } finally {
      const buf = buffer;
      buffer = null;
      for (const ev of buf) applyBuffered(ev);
      structural = true;
      schedule();
      loading = null;
    }
  })();
  return loading;
}

// transient says an API error may pass: no answer (gatewayd restarting,
// the network), a 5xx (503 while its database is down) or a 429 (with
// Retry-After: a new token while someone at the same address guesses
// tokens, or the address's share of connections taken: README, Security;
// taken as final, it left the fleet "could not be loaded" and the role
// unknown for good: found by an audit, helper 4). A 404, a 403 or a bug
// in the page stays what it is however often it is asked.
export function transient(e) {
  return e instanceof ApiError && (e.status === 0 || e.status === 429 || e.status >= 500);
}

// again runs job() until it succeeds. A failure that may pass
// (transient) is tried again when the shared stream next goes live,
// after a reset, or after a wait of 1 s doubling up to 15 s, whichever
// comes first, one try at a time; failed(e, final) is told of each
// failure, final when no other try follows. A page whose first load
// failed during a database outage said "not available" for good, though
// everything answered again moments later (found by an audit, helper 12).
// It returns {now, stop}: now() tries at once if a try waits (true while
// tries go on, false once they ended), stop() ends the tries.
export function again(job, {failed = () => {}, final = e => !transient(e)} = {}) {
  let wait = 1000;
  let timer = 0;
  let state = 'running'; // 'running', 'waiting' (for the next try) or 'done'
  const offs = [];
  const stop = () => {
    state = 'done';
    clearTimeout(timer);
    for (const f of offs.splice(0)) f();
  };
  const run = async () => {
    clearTimeout(timer);
    state = 'running';
    try {
      await job();
    } catch (e) {
      if (state === 'done') return;
      const last = final(e);
      if (last) stop();
      else {
        state = 'waiting';
        timer = setTimeout(run, wait);
        wait = Math.min(wait * 2, 15000);
      }
      failed(e, last);
      return;
    }
    stop();
  };
  const retry = () => { if (state === 'waiting') run(); };
  let was = streamStatus;
  offs.push(onStreamStatus(st => {
    const rose = st === 'live' && was !== 'live';
    was = st;
    if (rose) retry();
  }));
  offs.push(onEvent('reset', retry));
  run();
  return {
    now() {
      retry();
      return state !== 'done';
    },
    stop,
  };
}

// loadFactory learns which gateways are in a factory (statuses do not say;
// events do, for gateways that change).
export async function loadFactory(factoryId) {
  if (fleet.loadedFactories.has(factoryId)) return;
  const res = await api('GET', '/gateways/status?factory_id=' + factoryId);
  for (const s of res.data) fleet.factoryOf.set(s.id, factoryId);
  fleet.loadedFactories.add(factoryId);
  structural = true;
  schedule();
}

// timed wraps an event handler to count its time (PERF only).
function timed(f) {
  if (!PERF) return f;
  return ev => {
    const t0 = performance.now();
    f(ev);
    perf.events++;
    perf.handlerMs += performance.now() - t0;
  };
}

// startLive opens the shared stream and loads the fleet; called once.
export function startLive() {
  const setStatus = st => {
    streamStatus = st;
    if (st === 'live') {
      if (!fleet.ready) performance.mark('gwd:stream-open');
      opened();
    }
    for (const f of statusListeners) f(st);
  };
  const handlers = {
    'gateway.state': timed(ev => {
      applyState(ev);
      emit('gateway.state', ev);
    }),
    'gateway.created': ev => {
      fleet.factoryOf.set(ev.id, ev.factory_id);
      changed(ev.id);
      emit('gateway.created', ev);
    },
    'gateway.updated': ev => {
      changed(ev.id);
      emit('gateway.updated', ev);
    },
    'gateway.deleted': ev => {
      if (buffer) buffer.push({type: 'deleted', id: ev.id});
      else remove(ev.id);
      emit('gateway.deleted', ev);
    },
    reset: () => {
      if (PERF) perf.resyncs++;
      fleet.loadedFactories.clear();
      loadFleet();
      emit('reset', {});
    },
  };
  for (const t of OTHER_TYPES) handlers[t] = ev => emit(t, ev);
  buffer = [];
  // Every type is followed (another tab may want what this one does not);
  // an event is parsed only if this page wants it.
  const wanted = type => GATEWAY_TYPES.includes(type) || eventListeners.get(type)?.size > 0;
  tabStream(openStream, [...GATEWAY_TYPES, ...OTHER_TYPES], {
    event: (type, data) => { if (wanted(type)) handlers[type](JSON.parse(data)); },
    reset: handlers.reset,
    status: setStatus,
  });
  loadFleet();
}
