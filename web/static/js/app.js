// gatewayd's web UI: boot and the router. Routes live in the URL's hash
// (#/gateways/<id>), so the server serves one page and every view is a
// real link that can be bookmarked, opened in a new tab and reached with
// the keyboard.

import {h, clear, Scope, link, isolate} from './dom.js';
import {startLive, onStreamStatus, again} from './live.js';
import {token, setToken, onToken, whoami} from './api.js';
import {overview} from './overview.js';
import {resourceList, resourceDetail, names} from './resources.js';
import {gatewayPage} from './gateway.js';
import {sensorPage} from './sensor.js';

performance.mark('gwd:boot');
const main = document.getElementById('main');
const UUID = '([0-9a-fA-F-]{36})';
const routes = [
  [/^\/$/, (m, q, s) => overview(main, q, s)],
  [/^\/(organizations|factories|equipment|gateways|sensors)$/, (m, q, s) => resourceList(main, m[1], q, s)],
  [new RegExp('^/gateways/' + UUID + '$'), (m, q, s) => gatewayPage(main, m[1], s)],
  [new RegExp('^/sensors/' + UUID + '$'), (m, q, s) => sensorPage(main, m[1], q, s)],
  [new RegExp('^/(organizations|factories|equipment)/' + UUID + '$'), (m, q, s) => resourceDetail(main, m[1], m[2], s)],
];

let scope = null;
let first = true;

// roleKnown settles once GET /api/whoami has first answered (the role
// set, or unknown because it failed). A page is drawn only then: drawn
// before, its .needs-operator and .needs-admin parts showed and were
// hidden when the role came, and a viewer's list jumped up under the
// pointer (found by an audit, helper 2). Only the first page waits; the
// pages after it draw at once.
let roleLearnt;
const roleKnown = new Promise(r => { roleLearnt = r; });

function route() {
  const raw = location.hash.startsWith('#/') ? location.hash.slice(1) : '/';
  const [path, qs] = raw.split('?');
  const q = new URLSearchParams(qs || '');
  if (scope) scope.end();
  scope = new Scope();
  const mine = scope;
  markNav(path);
  roleKnown.then(() => {
    if (scope === mine) draw(raw, path, q, mine); // not if navigated on meanwhile
  });
}

function draw(raw, path, q, s) {
  names.fresh();
  clear(main);
  let found = false;
  for (const [re, view] of routes) {
    const m = path.match(re);
    if (m) {
      view(m, q, s);
      found = true;
      break;
    }
  }
  if (!found) {
    document.title = 'Not found · gatewayd';
    main.append(h('h1', {text: 'Not found'}), h('p', null, 'Nothing lives at ', h('code', {text: raw}), '. ',
      link('/', 'Back to the fleet'), '.'));
  }
  // Focus follows navigation (not the first load), so keyboard and
  // screen-reader users start at the new page's content.
  if (!first) main.focus({preventScroll: true});
  first = false;
  window.scrollTo(0, 0);
}

function markNav(path) {
  const section = '/' + (path.split('/')[1] || '');
  for (const a of document.querySelectorAll('.nav a')) {
    const here = a.getAttribute('href').slice(1) === section;
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function header() {
  const live = document.getElementById('live');
  const texts = {live: 'Live', reconnecting: 'Reconnecting…', down: 'Offline', connecting: 'Connecting…'};
  onStreamStatus(st => {
    live.textContent = texts[st] || st;
    live.className = 'live live-' + st;
    live.title = st === 'live' ? 'Following /api/events' : 'The event stream is not connected; what you see may be stale';
  });
  const out = document.getElementById('signout');
  const show = () => { out.hidden = !token(); };
  show();
  onToken(show);
  // What the token's role may not do is not offered (the API would answer
  // 403): <html data-role> hides .needs-operator and .needs-admin. No
  // page is drawn until the role is known (roleKnown); if it cannot be
  // known everything shows, and the API still decides.
  // A whoami that failed (503 during a database outage, no answer while
  // gatewayd restarts) is asked again (live.js' again) until it answers:
  // it was asked once per token, and a viewer signed in during an outage
  // was offered every admin control for good (found by an audit, helper
  // 12).
  let asked = 0;
  let tries = null;
  const learnRole = () => {
    const mine = ++asked;
    if (tries) tries.stop();
    tries = again(async () => {
      const me = await whoami();
      if (mine !== asked) return; // a newer token's answer wins
      document.documentElement.dataset.role = me.role;
      out.title = me.token ? `Signed in as ${isolate(me.token.name)} (${me.role})` : '';
      roleLearnt();
    }, {failed: () => {
      if (mine !== asked) return;
      delete document.documentElement.dataset.role;
      roleLearnt(); // the API still decides
    }});
  };
  learnRole();
  onToken(learnRole);
  out.addEventListener('click', () => {
    setToken('');
    location.reload();
  });
  document.querySelector('.skip').addEventListener('click', ev => {
    ev.preventDefault();
    main.focus();
  });
}

header();
window.addEventListener('hashchange', route);
route();
startLive();
