// A gateway's page: its live status (state, attempts, next retry, last
// error), the recent state changes from the event stream, its sensors, and
// connect, disconnect, discover, edit and delete.
//
// Live changes come through the shared stream (live.js). The recent ones
// from before the page opened are replayed by a stream of its own,
// filtered to the gateway and starting from last_event_id=1 (the server
// answers `reset` and replays what its ring still holds of the gateway),
// which the page closes once the replay has gone quiet. It once kept
// that stream open beside the shared one: two event streams per gateway
// tab, and with three such tabs the browser's six connections to
// gatewayd (HTTP/1.1) were all streams, and no tab could load a page or
// ask the API anything (found by an audit, helper 6).

import {h, clear, link, fmtTime, fmtClock, ago, dl, badge, setBadge, setText, toast, debounce, isolate} from './dom.js';
import {api, ApiError} from './api.js';
import {openStream, onEvent, again} from './live.js';
import {buildForm, confirmButton, act, retire} from './forms.js';
import {RES, names, table, more} from './resources.js';

const HISTORY = 50;
const SENSOR_ROWS = 100; // a page of the gateway's sensors; more() says what is left out

export function gatewayPage(main, id, scope) {
  const title = h('h1', {text: 'Gateway'});
  const stateBadge = badge(null);
  const facts = h('div');
  const status = h('div', {class: 'status-facts'});
  const history = h('ol', {class: 'history', reversed: true});
  const historyEmpty = h('p', {class: 'empty', text: 'No state change since gatewayd started (or the server no longer holds them).'});
  const sensorsBox = h('div', null, h('p', {class: 'muted', text: 'Loading…'}));
  const settings = h('div', {class: 'needs-admin'});
  const connect = h('button', {type: 'button', id: 'gw-connect', class: 'btn btn-primary', text: 'Connect'});
  const disconnect = h('button', {type: 'button', id: 'gw-disconnect', class: 'btn', text: 'Disconnect'});
  const discover = h('button', {type: 'button', id: 'gw-discover', class: 'btn', text: 'Discover sensors'});
  const crumbs = h('p', {class: 'crumbs'}, link('/', 'Fleet'), ' / ', link('/gateways', 'Gateways'));
  const section = (t, hid, ...c) => h('section', {class: 'panel', 'aria-labelledby': hid}, h('h2', {id: hid, text: t}), c);

  main.append(crumbs,
    h('div', {class: 'page-head'}, title, stateBadge),
    h('div', {class: 'btn-row needs-operator', role: 'group', 'aria-label': 'Connection'}, connect, disconnect, discover),
    h('div', {class: 'two-col'},
      section('Status', 'st-h', status),
      section('Recent state changes', 'hist-h', h('div', {class: 'history-box'}, historyEmpty, history))),
    section('Sensors', 'sens-h', sensorsBox),
    section('Gateway', 'gw-h', facts),
    settings);

  let gw = null;
  let st = null;
  let form = null; // the edit form

  const drawStatus = () => {
    if (!st) return;
    setBadge(stateBadge, st.state);
    const now = Date.now();
    clear(status).append(dl([
      ['State', badge(st.state)],
      ['Since', h('span', {title: fmtTime(st.since), text: `${fmtTime(st.since)} (${ago(st.since, now)})`})],
      ['Wanted', st.desired_state],
      ['Reconnect attempts', String(st.reconnect_attempts)],
      ['Next retry', st.next_retry_at ? `${fmtTime(st.next_retry_at)} (${ago(st.next_retry_at, now)})` : '—'],
      ['Last error', st.last_error ? h('span', {class: 'err-text', text: st.last_error}) : '—'],
      ['Connected at', fmtTime(st.connected_at)],
      ['Last seen', st.last_seen_at ? `${fmtTime(st.last_seen_at)} (${ago(st.last_seen_at, now)})` : '—'],
      ['Restarts', String(st.restarts)],
    ]));
    status.querySelector('dl').dataset.state = st.state;
    if ('retired' in connect.dataset) return; // deleted: a late status offers nothing
    connect.disabled = st.state === 'AUTHENTICATED' && st.desired_state === 'CONNECTED';
    disconnect.disabled = st.state === 'DISCONNECTED';
    discover.disabled = st.state !== 'AUTHENTICATED';
  };

  const drawGateway = async () => {
    document.title = `${isolate(gw.name)} · gatewayd`;
    setText(title, gw.name);
    const factories = await names.map('factories').catch(() => new Map());
    clear(facts).append(dl([
      ['Gateway id', h('code', {text: gw.gateway_id})],
      ['Factory', link('/factories/' + gw.factory_id, factories.get(gw.factory_id) || gw.factory_id)],
      ['URL', h('code', {text: gw.url})],
      ['Login', gw.email],
      ['Model', gw.model],
      ['Firmware', gw.firmware_version],
      ['Created', fmtTime(gw.created_at)],
      ['Updated', fmtTime(gw.updated_at)],
    ]));
    // A gateway.updated (any client's connect or disconnect is one)
    // updates the edit form in place, keeping what is being typed.
    if (form) {
      form.update(gw);
      return;
    }
    const fields = RES.gateways.fields().map(f => f.name === 'password'
      ? {...f, hint: 'Leave empty to keep the stored one. Needed when the URL or login changes.'} : f);
    const built = buildForm({fields, values: gw, mode: 'edit', onSubmit: async b => {
      gw = await api('PUT', '/gateways/' + id, b);
      built.update(gw, {saved: true});
      names.forget('gateways');
      toast('Saved ' + gw.name);
      drawGateway();
    }});
    form = built;
    clear(settings).append(
      section('Edit', 'edit-h', form),
      h('section', {class: 'panel panel-danger', 'aria-labelledby': 'del-h'}, h('h2', {id: 'del-h', text: 'Delete'}),
        confirmButton('Delete', () => `Delete ${isolate(gw.name)}? Its connection is closed and its sensors are deleted with it (their readings stay readable by id).`, async () => {
          await api('DELETE', '/gateways/' + id);
          toast('Deleted ' + gw.name);
          location.hash = '#/gateways';
        })));
  };

  // An answer that set out before the latest state change can arrive after
  // the event stream showed it (another connection): its state is older and
  // must not put the old one back. The wanted state, which events do not
  // carry, is taken from a connect's or disconnect's answer either way.
  // Times have millisecond resolution, and a connect's CONNECTING,
  // CONNECTED and AUTHENTICATED often share one: a connect's or
  // disconnect's answer that ties with the state shown is treated as
  // older. That is safe both ways: the stream delivers every change and
  // takes ties, so if the answer was the newer one its event still comes.
  const takeStatus = (s, wanted = false) => {
    if (st && (s.since < st.since || (wanted && s.since === st.since))) {
      if (wanted) st.desired_state = s.desired_state;
      return;
    }
    st = s;
  };
  const loadStatus = async () => {
    try {
      takeStatus(await api('GET', `/gateways/${id}/status`));
      if (scope.alive) drawStatus();
    } catch (e) {
      if (e.status !== 404) toast(e.text(), 'error');
    }
  };
  const refreshStatus = debounce(loadStatus, 100);
  scope.add(refreshStatus.cancel);

  // Each login refreshes the sensors (connected, temperature). The same
  // sensors are updated cell by cell, so a link that has the keyboard's
  // focus, or is being clicked, keeps its element; a different set is
  // drawn anew.
  const sensorCols = RES.sensors.columns.filter(c => c[0] !== 'Gateway');
  let drawnSensors = null;
  // drawSensors draws a page of the gateway's sensors (at most 100) and
  // says what it leaves out (found by an audit, helper 9).
  const drawSensors = page => {
    const list = page.data;
    const note = more(page, 'sensors', `/sensors?gateway_id=${id}`);
    sensorsBox.querySelector('.more')?.remove();
    const ids = list.map(s => s.id).join();
    const rows = sensorsBox.querySelector('tbody')?.rows;
    if (rows && ids === drawnSensors) {
      list.forEach((s, i) => sensorCols.forEach(([, cell, cls], j) => {
        const td = rows[i].cells[j], fresh = h('td', {class: cls}, cell(s, new Map()) ?? '—');
        if (td.innerHTML !== fresh.innerHTML) td.replaceWith(fresh);
      }));
      if (note) sensorsBox.append(note);
      return;
    }
    drawnSensors = ids;
    clear(sensorsBox).append(list.length ? table(sensorCols, list, new Map(), 'Sensors')
      : h('p', {class: 'empty'}, 'No sensors known. They are discovered after each login',
        h('span', {class: 'needs-operator', text: '; “Discover sensors” asks now'}), '.'));
    // The DOM's append writes null as the text "null": a complete list
    // has no note (found by an audit, helper 10).
    if (note) sensorsBox.append(note);
  };
  const fetchSensors = () => api('GET', `/gateways/${id}/sensors?limit=${SENSOR_ROWS}`);
  // A refresh (a sensor.updated, say, while the page loads) draws only
  // after the first sensors are drawn (below), not before the status.
  let firstDrawn;
  const drawnOnce = new Promise(r => { firstDrawn = r; });
  const loadSensors = async () => {
    const page = await fetchSensors();
    await drawnOnce;
    if (scope.alive) drawSensors(page);
  };
  const refreshSensors = debounce(() => loadSensors().catch(() => {}), 300);
  scope.add(refreshSensors.cancel);

  // The history, newest first. A change can come twice (replayed, and
  // live through the shared stream while the replay runs) and out of
  // order between the two: each is kept once, in order of its time.
  const seen = new Set();
  const addHistory = ev => {
    const key = `${ev.at} ${ev.from} ${ev.to}`;
    if (seen.has(key)) return;
    seen.add(key);
    historyEmpty.hidden = true;
    const item = h('li', {class: 'hist'},
      h('time', {datetime: ev.at, title: fmtTime(ev.at), text: fmtClock(ev.at)}), ' ',
      ev.from ? badge(ev.from) : null, ev.from ? h('span', {class: 'arrow', 'aria-label': 'to', text: ' → '}) : null, badge(ev.to),
      ev.last_error ? h('span', {class: 'hist-err', text: ev.last_error}) : null);
    item.dataset.at = ev.at;
    let before = history.firstChild;
    while (before && before.dataset.at > ev.at) before = before.nextSibling;
    history.insertBefore(item, before);
    while (history.children.length > HISTORY) history.lastChild.remove();
  };
  const clearHistory = () => {
    history.replaceChildren();
    seen.clear();
    historyEmpty.hidden = false;
  };
  // replay reads the ring's changes of this gateway, and closes its
  // stream once nothing has come for a while (the server writes a replay
  // at once, in batches 10 ms apart), or after 10 s whatever comes.
  let endReplay = () => {};
  const replay = () => {
    endReplay();
    let quiet = 0;
    const stop = openStream(new URLSearchParams({gateway_id: id, last_event_id: '1'}), {
      reset: clearHistory, // the ring no longer holds id 1: what follows is all it has
      'gateway.state': ev => {
        addHistory(ev);
        clearTimeout(quiet);
        quiet = setTimeout(end, 500);
      },
    }, ['gateway.state'], st => {
      if (st === 'live') {
        clearTimeout(quiet);
        quiet = setTimeout(end, 500);
      }
    });
    const cap = setTimeout(() => end(), 10000);
    const end = () => {
      clearTimeout(quiet);
      clearTimeout(cap);
      stop();
    };
    endReplay = end;
  };
  scope.add(() => endReplay());

  connect.addEventListener('click', () => act(connect, async () => {
    takeStatus(await api('POST', `/gateways/${id}/connect`), true);
    drawStatus();
  }, 'Connecting'));
  disconnect.addEventListener('click', () => act(disconnect, async () => {
    takeStatus(await api('POST', `/gateways/${id}/disconnect`), true);
    drawStatus();
  }, 'Disconnected'));
  discover.addEventListener('click', () => act(discover, async () => {
    const res = await api('POST', `/gateways/${id}/sensors/discover`);
    // All of them, as the list's first page and its total.
    drawSensors({data: res.data.slice(0, SENSOR_ROWS), pagination: {total: res.data.length}});
    return res.data.length;
  }, n => `${n} sensor${n === 1 ? '' : 's'} found`));

  // The first sensors are drawn once the Status panel above them is, and
  // the gateway's name in the title: drawn first, they moved ~160 px down
  // under the pointer when the status came, and a click on a sensor
  // landed elsewhere (found by an audit, helper 2). Later refreshes draw
  // in place.
  //
  // A first load that fails says why in the page's place. A 404 (or
  // another answer that asking again cannot change) is final; one that
  // may pass (503 while the database is down, no answer while gatewayd
  // restarts) is tried again (live.js' again) while the page follows
  // the stream, and the page is drawn when it comes: it ended its scope
  // at the first failure and said "not available" for good (found by an
  // audit, helper 12).
  const page = [...main.childNodes];
  let failedOnce = false;
  scope.add(again(async () => {
    const [g, , sensors] = await Promise.all([api('GET', '/gateways/' + id), loadStatus(), fetchSensors()]);
    if (!scope.alive) return;
    if (failedOnce) {
      main.replaceChildren(...page);
      replay(); // the history the outage kept from it
    }
    gw = g;
    const drawn = drawGateway(); // sets the title at once; the facts below wait for the factories' names
    drawSensors(sensors);
    firstDrawn();
    await drawn;
  }, {failed: (e, final) => {
    if (!scope.alive) return;
    failedOnce = true;
    clear(main).append(h('h1', {text: 'Gateway not available'}),
      h('p', {class: 'form-error', role: 'alert', text: e instanceof ApiError ? e.text() : String(e)}),
      final ? null : h('p', {class: 'muted', text: 'Trying again…'}),
      h('p', null, link('/gateways', 'All gateways')));
    if (final) scope.end();
  }}).stop);

  // Live, from the shared stream.
  scope.add(onEvent('gateway.state', ev => {
    if (ev.id !== id) return;
    addHistory(ev);
    // Replayed changes are older than the status already shown.
    if (st && ev.at >= st.since) {
      st.state = ev.to;
      st.since = ev.at;
      st.last_error = ev.last_error;
      drawStatus();
    }
    refreshStatus();
  }));
  scope.add(onEvent('gateway.updated', async ev => {
    if (ev.id !== id) return;
    try {
      gw = await api('GET', '/gateways/' + id);
      if (scope.alive) drawGateway();
    } catch { /* deleted: the next event says so */ }
  }));
  scope.add(onEvent('gateway.deleted', ev => {
    if (ev.id !== id) return;
    toast('This gateway was deleted', 'error');
    retire(connect, disconnect, discover);
    setBadge(stateBadge, 'DELETED');
  }));
  scope.add(onEvent('sensor.updated', ev => {
    if (ev.gateway_id === id) refreshSensors();
  }));
  // The shared stream missed events (the ring no longer held them, or it
  // came back with nothing to resume from): what the page knew is stale.
  // The status, the gateway and its sensors are read again, and the
  // history replayed anew. (Only the history was cleared, and the status
  // stayed at a state the gateway had left: found by an audit, helper 6.)
  scope.add(onEvent('reset', () => {
    clearHistory();
    replay();
    refreshStatus();
    refreshSensors();
    api('GET', '/gateways/' + id).then(g => {
      if (!scope.alive) return;
      gw = g;
      drawGateway();
    }).catch(() => { /* deleted, or the API is down: the next event or reset says so */ });
  }));
  replay();
  // "in 3 s", "12 s ago" age.
  scope.every(1000, drawStatus);
}
