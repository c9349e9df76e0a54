// The fleet overview: counts per state, filters, and every gateway with a
// state badge, live.
//
// Built for 10,000 gateways and more: the list is virtual (only the rows
// on screen exist, a few dozen elements reused as the page scrolls), it is
// re-sorted only when gateways come, go or are renamed, and it redraws
// once per animation frame with whatever changed in that frame (live.js
// collects the changes), touching only the text that differs.

import {h, setText, setBadge, ago, fmtTime, fmtNum, debounce, isolate} from './dom.js';
import {fleet, subscribe, loadFactory, again, transient, STATES, PERF, perf} from './live.js';
import {listAll} from './api.js';

// Names in natural order (live.js's sortKey): plain string comparisons.
const byName = (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const OVERSCAN = 8;
let firstPaint = true; // the page load's first render with data, for the budget

export function overview(main, q, scope) {
  document.title = 'Fleet · gatewayd';
  const filter = {factory: q.get('factory') || '', state: q.get('state') || '', text: (q.get('q') || '').trim()};

  // Counts: one toggle button per state; pressing one filters by it.
  const countEls = {};
  const total = h('span', {class: 'count-n', text: '…'});
  const allBtn = h('button', {type: 'button', class: 'count count-all', 'aria-pressed': String(!filter.state),
    onclick: () => setState('')}, total, h('span', {class: 'count-label', text: 'All'}));
  const countButtons = STATES.map(st => {
    const n = h('span', {class: 'count-n', text: '…'});
    countEls[st] = n;
    return h('button', {type: 'button', class: 'count', dataset: {state: st}, 'aria-pressed': String(filter.state === st),
      onclick: () => setState(filter.state === st ? '' : st)},
    n, h('span', {class: 'count-label'}, h('span', {class: 'dot st-' + st}), st));
  });

  const factorySel = h('select', {id: 'f-factory', name: 'factory'}, h('option', {value: '', text: 'All factories'}));
  const stateSel = h('select', {id: 'f-state', name: 'state'}, h('option', {value: '', text: 'All states'}),
    STATES.map(st => h('option', {value: st, text: st})));
  stateSel.value = filter.state;
  const search = h('input', {id: 'f-q', name: 'q', type: 'search', placeholder: 'Name or gateway id', autocomplete: 'off',
    value: filter.text});
  const shown = h('p', {class: 'shown muted'});
  const rowsBox = h('div', {class: 'vlist-inner'});
  const list = h('div', {class: 'vlist', role: 'list', 'aria-label': 'Gateways', 'aria-describedby': 'shown'}, rowsBox);
  shown.id = 'shown';
  const empty = h('p', {class: 'empty', hidden: true});

  main.append(
    h('div', {class: 'page-head'}, h('h1', {text: 'Fleet'}),
      h('a', {class: 'btn needs-admin', href: '#/gateways?new=1', text: 'Register a gateway'})),
    h('div', {class: 'counts', role: 'group', 'aria-label': 'Gateways per state; press one to show only those'}, allBtn, countButtons),
    h('form', {class: 'filters', role: 'search', onsubmit: ev => ev.preventDefault()},
      h('div', {class: 'field'}, h('label', {for: 'f-factory', text: 'Factory'}), factorySel),
      h('div', {class: 'field'}, h('label', {for: 'f-state', text: 'State'}), stateSel),
      h('div', {class: 'field field-grow'}, h('label', {for: 'f-q', text: 'Search'}), search)),
    shown, empty, list);

  // Factories for the filter (names; the organization when two share one).
  // (Tried again until they come: live.js' again.)
  scope.add(again(() => listAll('/factories').then(async fs => {
    if (!scope.alive) return;
    const names = new Map();
    for (const f of fs) names.set(f.name, (names.get(f.name) || 0) + 1);
    let orgs = new Map();
    if ([...names.values()].some(n => n > 1)) orgs = new Map((await listAll('/organizations')).map(o => [o.id, o.name]));
    for (const f of fs) {
      const label = names.get(f.name) > 1 ? `${isolate(f.name)} (${isolate(orgs.get(f.organization_id) || '?')})` : f.name;
      factorySel.append(h('option', {value: f.id, text: label}));
    }
    factorySel.value = filter.factory;
  })).stop);

  let sorted = [];
  let view = [];
  let rowH = 44;
  const rows = []; // the pool of row elements
  let first = 0;
  // Where the list is, cached: reading it every frame would force a
  // layout every frame (it was the biggest cost of a storm's frames).
  let listTop = null; // the list's document y; null: measure at the next render
  let sy = window.scrollY;
  let emptyWas = true;

  const sync = () => {
    const p = new URLSearchParams();
    if (filter.factory) p.set('factory', filter.factory);
    if (filter.state) p.set('state', filter.state);
    if (filter.text) p.set('q', filter.text);
    const hash = '#/' + (p.toString() ? '?' + p : '');
    if (location.hash !== hash) history.replaceState(null, '', hash);
  };

  function setState(st) {
    listTop = null;
    filter.state = st;
    stateSel.value = st;
    allBtn.setAttribute('aria-pressed', String(!st));
    for (const b of countButtons) b.setAttribute('aria-pressed', String(b.dataset.state === st));
    sync();
    recompute();
  }
  stateSel.addEventListener('change', () => setState(stateSel.value));
  factorySel.addEventListener('change', () => {
    listTop = null;
    filter.factory = factorySel.value;
    sync();
    if (filter.factory) loadFactory(filter.factory).catch(() => {});
    recompute();
  });
  search.addEventListener('input', debounce(() => {
    filter.text = search.value.trim();
    listTop = null;
    sync();
    recompute();
  }, 120));
  if (filter.factory) loadFactory(filter.factory).catch(() => {});

  // recompute filters and counts: one pass over the sorted fleet. Without
  // filters nothing needs a pass: the list is the sorted fleet and the
  // counts are the fleet's, kept as events arrive.
  function recompute(resort) {
    if (resort) listTop = null;
    if (resort) {
      const t0 = performance.now();
      sorted = Array.from(fleet.byId.values()).sort(byName);
      if (PERF) perf.sortMs.push(performance.now() - t0);
    }
    if (!filter.factory && !filter.state && !filter.text) {
      view = sorted;
      show(fleet.counts, sorted.length);
      return;
    }
    const text = filter.text.toLowerCase();
    const fac = filter.factory;
    const counts = Object.fromEntries(STATES.map(s => [s, 0]));
    const out = [];
    let inScope = 0;
    for (const g of sorted) {
      if (fac && (g.factory_id || fleet.factoryOf.get(g.id)) !== fac) continue;
      if (text && !(g.name || '').toLowerCase().includes(text) && !(g.gateway_id || '').toLowerCase().includes(text)) continue;
      inScope++;
      counts[g.state] = (counts[g.state] || 0) + 1;
      if (!filter.state || g.state === filter.state) out.push(g);
    }
    view = out;
    show(counts, inScope);
  }

  // show draws the counts, the summary line and the rows on screen.
  function show(counts, inScope) {
    for (const st of STATES) setText(countEls[st], fleet.ready ? fmtNum(counts[st]) : '…');
    setText(total, fleet.ready ? fmtNum(inScope) : '…');
    const scoped = filter.factory || filter.text;
    setText(shown, !fleet.ready ? (fleet.error ? '' : 'Loading the fleet…')
      : `Showing ${fmtNum(view.length)} of ${fmtNum(scoped ? inScope : sorted.length)} gateways`);
    if (fleet.error) {
      empty.hidden = false;
      setText(empty, 'The fleet could not be loaded: ' + fleet.error.message + (transient(fleet.error) ? '. Trying again…' : ''));
    } else if (fleet.ready && view.length === 0) {
      empty.hidden = false;
      setText(empty, sorted.length === 0 ? 'No gateways yet.' : 'No gateway matches these filters.');
    } else empty.hidden = true;
    if (empty.hidden !== emptyWas) {
      emptyWas = empty.hidden;
      listTop = null;
    }
    const height = view.length * rowH + 'px';
    if (height !== list.style.height) list.style.height = height;
    render(false);
  }

  function makeRow() {
    const b = h('span', {class: 'badge'});
    const a = h('a', {class: 'row-name'});
    const gid = h('span', {class: 'row-gwid'});
    const since = h('span', {class: 'row-since'});
    const err = h('span', {class: 'row-err'});
    const row = h('div', {class: 'row', role: 'listitem'}, b, a, gid, since, err);
    row.parts = {b, a, gid, since, err};
    row.gid = null;
    row.gv = -1;
    return row;
  }

  // render draws the rows on screen; force redraws their times too.
  function render(force) {
    const n = view.length;
    if (listTop === null) listTop = list.getBoundingClientRect().top + window.scrollY;
    const top = listTop - sy;
    const from = Math.max(0, Math.floor(-top / rowH) - OVERSCAN);
    const to = Math.min(n, Math.ceil((window.innerHeight - top) / rowH) + OVERSCAN);
    const count = Math.max(0, to - from);
    while (rows.length < count) rowsBox.append(rows[rows.push(makeRow()) - 1]);
    while (rows.length > count) rows.pop().remove();
    if (from !== first) {
      first = from;
      rowsBox.style.transform = `translateY(${from * rowH}px)`;
    }
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      const g = view[from + i];
      const row = rows[i];
      const p = row.parts;
      if (row.gid !== g.id || row.gv !== g.v) {
        row.gid = g.id;
        row.gv = g.v;
        setBadge(p.b, g.state);
        setText(p.a, g.name || g.gateway_id || g.id);
        const href = '#/gateways/' + g.id;
        if (p.a.getAttribute('href') !== href) p.a.setAttribute('href', href);
        setText(p.gid, g.gateway_id);
        setText(p.err, g.last_error || '');
        p.since.title = 'since ' + fmtTime(g.since);
        row.setAttribute('aria-posinset', from + i + 1);
        force = true;
      }
      if (force) setText(p.since, ago(g.since, now));
    }
    for (const row of rows) row.setAttribute('aria-setsize', n);
  }

  const measure = () => {
    const v = parseFloat(getComputedStyle(list).getPropertyValue('--row-h'));
    if (v > 0 && v !== rowH) {
      rowH = v;
      list.style.height = view.length * rowH + 'px';
      first = -1;
    }
  };
  measure();

  // Tab through the list goes gateway by gateway: the rows are reused as
  // the page scrolls to a focused link, so the browser's own Tab order
  // skipped gateways, more and more, and left the list long before its
  // end (found by an audit, helper 7). Tab and Shift+Tab on a row's link
  // move to the next or previous gateway, scrolled into view; past the
  // ends, the browser's order takes over.
  rowsBox.addEventListener('keydown', ev => {
    if (ev.key !== 'Tab' || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const k = rows.findIndex(r => r.parts.a === ev.target);
    if (k < 0) return;
    const next = first + k + (ev.shiftKey ? -1 : 1);
    if (next < 0 || next >= view.length) return;
    ev.preventDefault();
    if (listTop === null) listTop = list.getBoundingClientRect().top + window.scrollY;
    const y = listTop + next * rowH; // the row's document y
    if (y < window.scrollY) window.scrollTo(0, y);
    else if (y + rowH > window.scrollY + window.innerHeight) window.scrollTo(0, y + rowH - window.innerHeight);
    sy = window.scrollY;
    render(false);
    const row = rows.find(r => r.gid === view[next].id);
    row?.parts.a.focus({preventScroll: true});
  });

  let scrollFrame = 0;
  const onScroll = () => {
    sy = window.scrollY;
    if (!scrollFrame) scrollFrame = requestAnimationFrame(() => {
      scrollFrame = 0;
      render(false);
    });
  };
  const onResize = () => {
    listTop = null;
    measure();
    onScroll();
  };
  window.addEventListener('scroll', onScroll, {passive: true});
  window.addEventListener('resize', onResize);
  scope.add(() => {
    window.removeEventListener('scroll', onScroll);
    window.removeEventListener('resize', onResize);
    cancelAnimationFrame(scrollFrame);
  });

  // Live: once per frame, when something changed in it.
  scope.add(subscribe((changes, structural) => {
    recompute(structural);
    if (firstPaint && fleet.ready) {
      firstPaint = false;
      performance.mark('gwd:overview-rendered');
      requestAnimationFrame(() => {
        performance.mark('gwd:overview-painted');
        performance.measure('gwd:overview', {start: 0, end: 'gwd:overview-painted'});
      });
    }
  }));
  // Times ("12 s ago") age; redraw them now and then.
  // (and re-measure where the list starts, in case what is above it moved).
  scope.every(5000, () => {
    listTop = null;
    render(true);
  });
  recompute(true);
  if (PERF) window.gwdOverview = () => ({view: view.length, sorted: sorted.length, rows: rows.length});
}
