// One event stream for all of a browser's tabs.
//
// Why: gatewayd speaks HTTP/1.1 and a browser keeps at most six
// connections per host. An event stream never ends, so with one per tab
// six tabs held every connection and a seventh tab (or any API call from
// any tab) never loaded. So the tabs that hold the same token elect a
// leader (a Web Lock, held while the tab lives); the leader alone opens
// /api/events and passes every event on to the others through a
// BroadcastChannel. When the leader goes (closed, navigated away, crashed,
// or frozen: a frozen tab leaves and joins again on resume) the browser
// grants the lock to the next tab, which opens the stream from
// the last event id it saw: the server's ring fills the gap, or answers
// `reset` and every tab reloads what it shows.
//
// Tabs are grouped by token: the token lives in sessionStorage, one per
// tab, and a tab must not receive, through another tab, events its own
// token may not read. The lock's and channel's name is derived from the
// token's SHA-256, never the token itself.
//
// Without navigator.locks or BroadcastChannel (an insecure context: http
// to a host other than localhost) each tab keeps a stream of its own.

import {token, onToken, checkAuth} from './api.js';

const SHARED = typeof BroadcastChannel === 'function' && !!(navigator.locks && navigator.locks.request) &&
  !!(globalThis.crypto && crypto.subtle);

// groupName names the tabs that hold token t.
async function groupName(t) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('gatewayd events ' + t)));
  return 'gatewayd.events.' + [...d.slice(0, 16)].map(b => b.toString(16).padStart(2, '0')).join('');
}

// tabStream follows /api/events for the page, alone or shared with the
// page's other tabs. open is live.js' openStream; types are the event types
// to follow. on.event(type, dataText) is called once per event, in order
// (a tab taking over may be sent again what it already saw: ids tell);
// on.reset() when what the page knew is stale; on.status('live' |
// 'reconnecting' | 'down') as the stream (the leader's, in another tab or
// this one) goes. It returns a function that closes it.
export function tabStream(open, types, on) {
  let lastId = 0; // the last event id this tab saw, from its stream or the leader's
  let group = null; // this tab's part in its token's group
  let closed = false;
  let joins = 0; // the latest join wins: a token can change while its name is hashed
  let followed = false; // some stream (this tab's or a leader's) was live for this tab

  // seen delivers an event unless it was delivered already.
  const seen = (type, data, id) => {
    const n = Number(id) || 0;
    if (n) {
      if (n <= lastId) return false;
      lastId = n;
    }
    on.event(type, data);
    return true;
  };
  // After a reset the server replays its ring, which may hold ids older
  // than the last seen (a stream from a process started earlier).
  const reset = () => {
    lastId = 0;
    on.reset();
  };

  const join = async (t, rejoin) => {
    const mine = ++joins;
    const name = SHARED ? await groupName(t) : '';
    if (closed || mine !== joins) return; // closed, or the token changed again meanwhile
    // (for tests and a curious operator: this tab's part, set again once it leads)
    document.documentElement.dataset.stream = SHARED ? 'follower' : 'own';
    group = member(name, rejoin);
  };

  // member joins the group `name` ('' = alone): it follows the leader's
  // messages and queues for the lock; once granted, it leads.
  function member(name, rejoin) {
    const ch = name ? new BroadcastChannel(name) : null;
    const abort = new AbortController();
    let stop = null; // the stream, while this tab leads
    let release = () => {};
    let left = false;
    // A term orders leaders: each new leader's is one past the highest
    // seen, and a follower ignores the status of an older one (a gone
    // leader's last words can arrive after its successor's first).
    let term = 0;
    let status = 'connecting';
    let wasLive = false;

    // The leader sends events in batches: one message per turn of the
    // event loop, not one per event (a storm is thousands a second). A
    // MessageChannel, not a timer: timers in a background tab are throttled
    // and the leader is often one.
    let queue = [];
    const tick = new MessageChannel();
    const flush = () => {
      if (queue.length && ch && !left) ch.postMessage({k: 'events', term, list: queue});
      queue = [];
    };
    tick.port1.onmessage = flush;
    const post = msg => {
      if (!ch || left) return;
      flush(); // events first: a status or reset must not overtake them
      ch.postMessage(Object.assign({term}, msg));
    };

    const setStatus = st => {
      status = st;
      on.status(st);
      if (st === 'live' && !wasLive) {
        wasLive = true;
        followed = true;
        // A tab that changed token joined a group whose stream it had not
        // followed: what happened in between is unknown.
        if (rejoin && !stop) reset();
      }
    };

    // lead opens the stream. A successor that saw no event id has nothing
    // to resume from: changes made while no tab led would be lost, so once
    // its stream is open every tab reloads.
    const lead = successor => {
      term++;
      document.documentElement.dataset.stream = ch ? 'leader' : 'own';
      const blind = (successor || rejoin) && !lastId;
      let opened = false;
      if (successor) {
        setStatus('reconnecting');
        post({k: 'status', st: 'reconnecting'});
      }
      const query = lastId ? new URLSearchParams({last_event_id: String(lastId)}) : '';
      stop = open(query, {
        reset: () => {
          post({k: 'reset'});
          reset();
        },
      }, types, st => {
        post({k: 'status', st});
        setStatus(st);
        if (st === 'live' && !opened) {
          opened = true;
          if (blind) {
            post({k: 'reset'});
            reset();
          }
        }
      }, (type, m) => {
        if (!seen(type, m.data, m.lastEventId) || !ch) return;
        queue.push([type, m.data, m.lastEventId]);
        if (queue.length === 1) tick.port2.postMessage(0);
      });
    };

    if (ch) {
      ch.onmessage = ({data: m}) => {
        if (left) return;
        if (m.k === 'events') {
          for (const [type, data, id] of m.list) seen(type, data, id);
          return;
        }
        if (m.k === 'hello') {
          if (stop) post({k: 'status', st: status});
          return;
        }
        if (m.k === 'reset') {
          if (!stop) reset();
          return;
        }
        if (m.term < term || stop) return; // an older leader's word, or ours
        term = m.term;
        if (m.k === 'status' && m.st !== status) {
          // The leader's stream was refused (a revoked token?): ask the
          // API here too, so this tab shows the sign-in dialog if that is it.
          if (m.st === 'down') checkAuth().catch(() => {});
          setStatus(m.st);
        }
      };
      ch.postMessage({k: 'hello', term: 0}); // the leader answers with its status
      // First ask for the lock only if it is free: a tab that had to wait
      // for it is a successor.
      navigator.locks.request(name, {ifAvailable: true}, lock => lock ? hold(false)
        : navigator.locks.request(name, {signal: abort.signal}, () => hold(true)))
        .catch(() => { /* aborted: this tab left the group */ });
    } else {
      lead(false);
    }

    // hold keeps the lock until the tab leaves the group (or the page goes).
    function hold(successor) {
      if (left) return null;
      return new Promise(r => {
        release = r;
        lead(successor);
      });
    }

    // A leader that goes says so; the next one says 'live' when it is.
    const bye = () => {
      if (stop) post({k: 'status', st: 'reconnecting'});
    };
    addEventListener('pagehide', bye);
    return () => {
      bye();
      left = true;
      removeEventListener('pagehide', bye);
      abort.abort();
      if (stop) stop();
      release();
      if (ch) ch.close();
      tick.port1.close();
    };
  }

  const rejoin = t => {
    if (closed) return;
    if (group) group();
    group = null;
    join(t, followed);
  };
  join(token(), false);
  const offToken = onToken(rejoin);
  // leave quits the group until the tab joins again: a leader says
  // 'reconnecting' to the others, closes its stream and lets the lock go
  // to the next tab; a follower leaves the lock's queue.
  const leave = () => {
    ++joins; // a join still hashing is void
    if (!group) return;
    group();
    group = null;
    document.documentElement.dataset.stream = 'away';
  };
  // A page kept in the back-forward cache, or frozen (Page Lifecycle: a
  // browser freezes background tabs, and the leader is often one), must
  // not keep the lock: the other tabs would wait for a leader that sleeps
  // and show "Live" and states no longer true (found by an audit, helper
  // 10); a frozen follower would be granted it next. It leaves, and joins
  // again when shown or resumed, as after a token change: a leader opens
  // the stream from the last event id it saw, a follower reloads what it
  // shows once its leader is live (it missed what came meanwhile).
  const hide = e => { if (e.persisted) leave(); };
  const show = e => { if (e.persisted && !group) rejoin(token()); };
  const resume = () => { if (!group) rejoin(token()); };
  addEventListener('pagehide', hide);
  addEventListener('pageshow', show);
  document.addEventListener('freeze', leave);
  document.addEventListener('resume', resume);
  return () => {
    closed = true;
    offToken();
    removeEventListener('pagehide', hide);
    removeEventListener('pageshow', show);
    document.removeEventListener('freeze', leave);
    document.removeEventListener('resume', resume);
    if (group) group();
  };
}
