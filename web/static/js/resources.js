// Organizations, factories, equipment, gateways and sensors: lists with
// filters and pages, create forms, and the detail pages of organizations,
// factories and equipment (gateways and sensors have pages of their own).

import {h, clear, link, fmtTime, fmtNum, toast, dl, badge, setBadge, isolate} from './dom.js';
import {api, listAll, ApiError} from './api.js';
import {buildForm, confirmButton} from './forms.js';
import {fleet, subscribe, again} from './live.js';

const PAGE = 20;

// cascades: what a delete of each kind removes with it (API.md §2).
const cascades = {organizations: ['factories', 'gateways', 'equipment', 'sensors'], factories: ['gateways', 'equipment', 'sensors'],
  gateways: ['sensors']};

// Names of parents, for the lists' columns and the forms' selects, read
// once per page: every navigation reads them again (fresh), since what
// another client made (a factory, equipment) was never offered until a
// reload when only this tab's own changes dropped them (found by an
// audit, helper 9); no event tells of it.
export const names = {
  cache: new Map(),
  async all(kind) {
    if (!this.cache.has(kind)) {
      const p = listAll('/' + kind).catch(e => {
        if (this.cache.get(kind) === p) this.cache.delete(kind);
        throw e;
      });
      this.cache.set(kind, p);
    }
    return this.cache.get(kind);
  },
  fresh() { this.cache.clear(); },
  // forget drops a kind's names, and those of the kinds deleted with it
  // (an organization's factories stayed in every factory list until a
  // reload: found by an audit, helper 7).
  forget(kind) {
    for (const k of [kind, ...(cascades[kind] || [])]) this.cache.delete(k);
  },
  async map(kind) { return new Map((await this.all(kind)).map(x => [x.id, x.name])); },
  async options(kind, none) {
    const items = await this.all(kind);
    const labels = await this.distinct(kind, items);
    const opts = items.map(x => [x.id, labels.get(x.id)]);
    return none === undefined ? opts : [['', none], ...opts];
  },
  // distinct labels items by name, and where names are shared, adds what
  // tells them apart: the parent's name (a factory's organization,
  // equipment's factory), and the start of the id where that is shared
  // too. Two factories named alike were offered as two identical
  // choices, one of them the wrong plant.
  async distinct(kind, items) {
    const labels = new Map(items.map(x => [x.id, x.name]));
    const parent = {factories: ['organizations', 'organization_id'], equipment: ['factories', 'factory_id']}[kind];
    let names = tally(items, x => labels.get(x.id));
    if (parent && [...names.values()].some(n => n > 1)) {
      let parents = new Map();
      try { parents = await this.map(parent[0]); } catch { /* ids below still tell them apart */ }
      for (const x of items) {
        if (names.get(x.name) > 1) labels.set(x.id, `${isolate(x.name)} (${isolate(parents.get(x[parent[1]]) || '?')})`);
      }
      names = tally(items, x => labels.get(x.id));
    }
    for (const x of items) {
      const label = labels.get(x.id);
      if (names.get(label) > 1) labels.set(x.id, `${label === x.name ? isolate(label) : label} · ${x.id.slice(0, 8)}`);
    }
    return labels;
  },
};

// tally counts the items of each key.
function tally(items, key) {
  const n = new Map();
  for (const x of items) n.set(key(x), (n.get(key(x)) || 0) + 1);
  return n;
}

let tzList = null;
function timezones() {
  if (!tzList) {
    let zones = [];
    try { zones = Intl.supportedValuesOf('timeZone'); } catch { zones = []; }
    tzList = h('datalist', {id: 'tz-list'}, ['UTC', ...zones].map(z => h('option', {value: z})));
    document.body.append(tzList);
  }
  return 'tz-list';
}

const F = {
  name: {name: 'name', label: 'Name', required: true, maxlength: 255},
  metadata: {name: 'metadata', label: 'Metadata (a JSON object)', type: 'json', hint: 'Optional, e.g. {"line": 4}', wide: true},
};

// A column is [heading, cell(item, names), class of its cells]. FREE
// marks the cells of text that others choose (names, kinds, locations,
// URLs; up to 255 or 500 characters, without a space if they like): only
// those break a word that does not fit, and only past a width (app.css
// td.free). Serials, states, times and numbers never break mid-word (every
// cell breaking anywhere squeezed the tables at 375 px and broke short
// names, serials and times: found by an audit, helper 10).
export const FREE = 'free';

export const RES = {
  organizations: {
    title: 'Organizations', one: 'organization',
    fields: () => [F.name, F.metadata],
    columns: [['Name', o => link('/organizations/' + o.id, o.name), FREE], ['Created', o => fmtTime(o.created_at)]],
  },
  factories: {
    title: 'Factories', one: 'factory',
    parent: {param: 'organization_id', kind: 'organizations', label: 'Organization'},
    fields: () => [
      {name: 'organization_id', label: 'Organization', type: 'select', required: true, create: true,
        options: () => names.options('organizations', 'Choose…')},
      F.name,
      {name: 'location', label: 'Location', nullable: true, maxlength: 500, hint: 'Free text, e.g. Hall 3'},
      {name: 'timezone', label: 'Time zone', list: timezones(), placeholder: 'UTC', hint: 'An IANA name such as Europe/Berlin; UTC if left empty when created'},
      F.metadata],
    columns: [['Name', f => link('/factories/' + f.id, f.name), FREE], ['Organization', (f, n) => n.get(f.organization_id), FREE],
      ['Location', f => f.location, FREE], ['Time zone', f => f.timezone]],
  },
  equipment: {
    title: 'Equipment', one: 'equipment',
    parent: {param: 'factory_id', kind: 'factories', label: 'Factory'},
    fields: () => [
      {name: 'factory_id', label: 'Factory', type: 'select', required: true, create: true, options: () => names.options('factories', 'Choose…')},
      F.name,
      {name: 'kind', label: 'Kind', nullable: true, maxlength: 100, hint: 'Free text, e.g. pump'},
      F.metadata],
    columns: [['Name', e => link('/equipment/' + e.id, e.name), FREE], ['Factory', (e, n) => n.get(e.factory_id), FREE],
      ['Kind', e => e.kind, FREE]],
  },
  gateways: {
    title: 'Gateways', one: 'gateway',
    parent: {param: 'factory_id', kind: 'factories', label: 'Factory'},
    fields: () => [
      {name: 'factory_id', label: 'Factory', type: 'select', required: true, create: true, options: () => names.options('factories', 'Choose…')},
      {name: 'gateway_id', label: 'Gateway id', required: true, maxlength: 255, hint: 'Letters, digits and - _ . : such as GW-0042'},
      F.name,
      {name: 'url', label: 'URL', type: 'url', required: true, maxlength: 500, placeholder: 'ws://10.0.4.2:8080', wide: true},
      {name: 'email', label: 'Login email', type: 'email', required: true, maxlength: 255},
      {name: 'password', label: 'Password', type: 'password', required: true, maxlength: 1024,
        hint: 'Stored encrypted, never shown again'},
      {name: 'model', label: 'Model', nullable: true, maxlength: 100},
      {name: 'firmware_version', label: 'Firmware', nullable: true, maxlength: 50},
      {name: 'desired_state', label: 'Connection', type: 'select', default: 'CONNECTED', create: true,
        options: [['CONNECTED', 'Connect now'], ['DISCONNECTED', 'Keep disconnected']]},
      F.metadata],
    columns: [['Name', g => link('/gateways/' + g.id, g.name), FREE], ['Gateway id', g => h('code', {text: g.gateway_id}), FREE],
      ['State', g => stateBadge(g.id)], ['Factory', (g, n) => n.get(g.factory_id), FREE], ['URL', g => g.url, FREE]],
  },
  sensors: {
    title: 'Sensors', one: 'sensor', noCreate: true,
    parent: {param: 'factory_id', kind: 'factories', label: 'Factory'},
    // Also narrowed to one gateway's or one machine's, from their pages.
    narrow: [['gateway_id', 'gateways', 'gateway'], ['equipment_id', 'equipment', 'machine']],
    fields: () => [],
    columns: [['Serial', s => link('/sensors/' + s.id, String(s.serial))], ['Name', s => s.name, FREE],
      ['Gateway', s => gatewayName(s.gateway_id), FREE],
      ['Connected', s => s.connected ? 'yes' : 'no'],
      ['Temperature', s => s.last_temperature_c == null ? '—' : fmtNum(s.last_temperature_c, 1) + ' °C'],
      ['Schedule', s => s.reading_interval || 'off']],
  },
};

// gatewayName links a gateway by its name from the fleet, which may
// arrive after the list: resourceList names it then (opened directly,
// #/sensors said "gateway" in every row for good).
function gatewayName(id) {
  const a = link('/gateways/' + id, fleet.byId.get(id)?.name || 'gateway');
  a.dataset.gatewayName = id;
  return a;
}

// stateBadge is a gateway's live state in a list: liveBadges keeps it
// current as the event stream changes the fleet.
function stateBadge(id) {
  const b = badge(fleet.byId.get(id)?.state);
  b.dataset.gateway = id;
  return b;
}

// table renders items with columns; n maps parent ids to names.
export function table(columns, items, n = new Map(), caption) {
  return h('div', {class: 'table-wrap'}, h('table', null,
    caption ? h('caption', {class: 'sr-only', text: caption}) : null,
    h('thead', null, h('tr', null, columns.map(([label]) => h('th', {scope: 'col', text: label})))),
    h('tbody', null, items.map(it => h('tr', null, columns.map(([, cell, cls]) => h('td', {class: cls}, cell(it, n) ?? '—')))))));
}

function pager(p, go) {
  if (!p.hasNext && !p.hasPrev) return null;
  const from = p.total === 0 ? 0 : p.offset + 1;
  const to = Math.min(p.offset + p.limit, p.total);
  return h('nav', {class: 'pager', 'aria-label': 'Pages'},
    h('button', {type: 'button', class: 'btn', disabled: !p.hasPrev, text: '← Previous', onclick: () => go(Math.max(0, p.offset - p.limit))}),
    h('span', {text: `${fmtNum(from)}–${fmtNum(to)} of ${fmtNum(p.total)}`}),
    h('button', {type: 'button', class: 'btn', disabled: !p.hasNext, text: 'Next →', onclick: () => go(p.offset + p.limit)}));
}

// liveBadges repaints box's gateway state badges as the fleet changes, as
// the fleet page does (a factory's page drew them once: found by an audit,
// helper 9).
function liveBadges(box, scope) {
  scope.add(subscribe(() => {
    for (const el of box.querySelectorAll('.badge[data-gateway]')) setBadge(el, fleet.byId.get(el.dataset.gateway)?.state);
  }));
}

function errorBox(e) {
  return h('p', {class: 'form-error', role: 'alert', text: e instanceof ApiError ? e.text() : String(e)});
}

// resourceList is #/<kind>: filter, list, page, create.
export function resourceList(main, kind, q, scope) {
  const res = RES[kind];
  document.title = res.title + ' · gatewayd';
  const offset = Math.max(0, parseInt(q.get('offset') || '0', 10) || 0);
  const parentId = res.parent ? q.get(res.parent.param) || '' : '';
  const body = h('div', {class: 'list-body'}, h('p', {class: 'muted', text: 'Loading…'}));
  const nav = (params) => {
    const p = new URLSearchParams(q);
    for (const [k, v] of Object.entries(params)) {
      if (v) p.set(k, v);
      else p.delete(k);
    }
    p.delete('new');
    location.hash = '#/' + kind + (p.toString() ? '?' + p : '');
  };
  const headRow = h('div', {class: 'page-head'}, h('h1', {text: res.title}));
  main.append(headRow);

  if (res.parent) {
    const sel = h('select', {id: 'list-parent'}, h('option', {value: '', text: 'All'}));
    names.options(res.parent.kind).then(opts => {
      for (const [v, l] of opts) sel.append(h('option', {value: v, text: l}));
      sel.value = parentId;
    }).catch(() => {});
    sel.addEventListener('change', () => nav({[res.parent.param]: sel.value, offset: ''}));
    main.append(h('form', {class: 'filters', onsubmit: ev => ev.preventDefault()},
      h('div', {class: 'field'}, h('label', {for: 'list-parent', text: res.parent.label}), sel)));
  }
  // Narrowed to one gateway's or one machine's (their pages link here,
  // past the 100 rows they show), said with a way back to all.
  const narrowed = (res.narrow || []).filter(([param]) => q.get(param));
  for (const [param, of, what] of narrowed) {
    const id = q.get(param);
    const name = link(`/${of}/${id}`, 'this ' + what);
    api('GET', `/${of}/${encodeURIComponent(id)}`).then(x => { name.textContent = x.name; }).catch(() => {});
    main.append(h('p', {class: 'narrowed muted'}, `Only the ${res.title.toLowerCase()} of ${what} `, name, ' · ',
      link('/' + kind, 'all ' + res.title.toLowerCase())));
  }

  // The create button comes before the list: the list arrives later and
  // would push it down under the pointer, so a click meant for "New …"
  // could open whatever row had moved there.
  if (!res.noCreate) {
    const values = {};
    if (res.parent && parentId) values[res.parent.param] = parentId;
    const form = buildForm({fields: res.fields(), values, mode: 'create', submit: 'Create ' + res.one, onSubmit: async b => {
      const made = await api('POST', '/' + kind, b);
      names.forget(kind);
      toast(`Created ${res.one} ${isolate(made.name)}`);
      location.hash = `#/${kind}/${made.id}`;
    }});
    const details = h('details', {class: 'create needs-admin', open: q.has('new')},
      h('summary', null, h('span', {class: 'btn btn-primary', text: 'New ' + res.one})), form);
    main.append(details);
    if (q.has('new')) setTimeout(() => form.querySelector('input, select')?.focus(), 0);
  }
  main.append(body);

  // A list that could not be read in a way that may pass (a database
  // outage, gatewayd restarting) is read again until it comes (live.js'
  // again): it said why for good (found by an audit, helper 12).
  scope.add(again(async () => {
    let filter = parentId ? `&${res.parent.param}=${parentId}` : '';
    for (const [param] of narrowed) filter += `&${param}=${encodeURIComponent(q.get(param))}`;
    const [page, n] = await Promise.all([
      api('GET', `/${kind}?limit=${PAGE}&offset=${offset}${filter}`),
      res.parent ? names.map(res.parent.kind).catch(() => new Map()) : new Map()]);
    if (!scope.alive) return;
    clear(body);
    if (page.data.length === 0) {
      body.append(h('p', {class: 'empty', text: offset ? 'No more.' : `No ${res.title.toLowerCase()} yet.`}));
      const d = main.querySelector('details.create');
      if (d && !offset) d.open = true;
    } else body.append(table(res.columns, page.data, n, res.title));
    if (kind === 'gateways') liveBadges(body, scope);
    if (kind === 'sensors') {
      scope.add(subscribe(() => {
        for (const el of body.querySelectorAll('a[data-gateway-name]')) {
          const name = fleet.byId.get(el.dataset.gatewayName)?.name;
          if (name && el.textContent !== name) el.textContent = name;
        }
      }));
    }
    const pg = pager(page.pagination, o => nav({offset: o ? String(o) : ''}));
    if (pg) body.append(pg);
  }, {failed: (e, final) => {
    if (scope.alive) clear(body).append(errorBox(e), final ? null : h('p', {class: 'muted', text: 'Trying again…'}));
  }}).stop);
}

// resourceDetail is #/<kind>/<id> for organizations, factories, equipment.
export function resourceDetail(main, kind, id, scope) {
  const res = RES[kind];
  main.append(h('p', {class: 'muted', text: 'Loading…'}));
  // Read again until it comes, as a list is (resourceList).
  scope.add(again(async () => {
    const item = await api('GET', `/${kind}/${id}`);
    if (!scope.alive) return;
    document.title = `${isolate(item.name)} · ${res.title} · gatewayd`;
    clear(main);
    const parents = res.parent ? await names.map(res.parent.kind).catch(() => new Map()) : new Map();
    const facts = [['Id', h('code', {text: item.id})]];
    if (res.parent) {
      const pid = item[res.parent.param];
      facts.push([res.parent.label, link(`/${res.parent.kind}/${pid}`, parents.get(pid) || pid)]);
    }
    if (kind === 'factories') facts.push(['Location', item.location], ['Time zone', item.timezone]);
    if (kind === 'equipment') facts.push(['Kind', item.kind]);
    facts.push(['Created', fmtTime(item.created_at)], ['Updated', fmtTime(item.updated_at)]);
    const crumbs = h('p', {class: 'crumbs'}, link('/' + kind, res.title));
    main.append(crumbs, h('div', {class: 'page-head'}, h('h1', {text: item.name})), dl(facts));

    // What lives in it comes first and is in place before the forms
    // below it are shown, so nothing moves under a pointer on its way to
    // Save or Delete.
    const children = h('div', {class: 'children'});
    main.append(children);
    await detailChildren(kind, item, children, scope);
    if (!scope.alive) return;
    const form = buildForm({fields: res.fields(), values: item, mode: 'edit', onSubmit: async b => {
      await api('PUT', `/${kind}/${id}`, b);
      names.forget(kind);
      toast(`Saved ${res.one} ${isolate(b.name || item.name)}`);
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    }});
    const question = {organizations: 'This also deletes its factories, their gateways and equipment.',
      factories: 'This also deletes its gateways and equipment.',
      equipment: 'Its sensors are unassigned, not deleted.'}[kind];
    main.append(
      h('section', {class: 'panel needs-admin', 'aria-labelledby': 'edit-h'}, h('h2', {id: 'edit-h', text: 'Edit'}), form),
      h('section', {class: 'panel panel-danger needs-admin', 'aria-labelledby': 'del-h'}, h('h2', {id: 'del-h', text: 'Delete'}),
        confirmButton('Delete', `Delete ${isolate(item.name)}? ${question}`, async () => {
          await api('DELETE', `/${kind}/${id}`);
          names.forget(kind);
          toast(`Deleted ${res.one} ${isolate(item.name)}`);
          location.hash = '#/' + kind;
        })));
  }, {failed: (e, final) => {
    if (!scope.alive) return;
    clear(main).append(h('h1', {text: 'Not available'}), errorBox(e), final ? null : h('p', {class: 'muted', text: 'Trying again…'}),
      h('p', null, link('/' + kind, 'All ' + res.title.toLowerCase())));
  }}).stop);
}

// more says how many a detail page's table (at most 100 rows) leaves out,
// with a link to the list that pages through all of them, if there is one.
export function more(page, what, route) {
  const {total} = page.pagination;
  if (total <= page.data.length) return null;
  const text = `Showing ${fmtNum(page.data.length)} of ${fmtNum(total)} ${what}`;
  return h('p', {class: 'more muted'}, route ? link(route, text + ': all of them') : text);
}

async function detailChildren(kind, item, box, scope) {
  const section = (title, id, ...content) => h('section', {class: 'panel', 'aria-labelledby': id}, h('h2', {id, text: title}), content);
  if (kind === 'organizations') {
    const page = await api('GET', `/factories?organization_id=${item.id}&limit=100`);
    if (!scope.alive) return;
    box.append(section('Factories', 'kids-h',
      page.data.length ? table(RES.factories.columns.filter(c => c[0] !== 'Organization'), page.data) : h('p', {class: 'empty', text: 'No factories yet.'}),
      more(page, 'factories', `/factories?organization_id=${item.id}`),
      h('p', {class: 'needs-admin'}, link(`/factories?organization_id=${item.id}&new=1`, 'New factory in ' + item.name, 'btn'))));
  } else if (kind === 'factories') {
    const [gws, eq] = await Promise.all([api('GET', `/gateways?factory_id=${item.id}&limit=100`),
      api('GET', `/equipment?factory_id=${item.id}&limit=100`)]);
    if (!scope.alive) return;
    box.append(
      section(`Gateways (${fmtNum(gws.pagination.total)})`, 'gw-h',
        gws.data.length ? table(RES.gateways.columns.filter(c => c[0] !== 'Factory'), gws.data) : h('p', {class: 'empty', text: 'No gateways yet.'}),
        more(gws, 'gateways', `/gateways?factory_id=${item.id}`),
        h('p', {class: 'btn-row'}, link(`/?factory=${item.id}`, 'Live states of this factory', 'btn'),
          link(`/gateways?factory_id=${item.id}&new=1`, 'Register a gateway here', 'btn needs-admin'))),
      section('Equipment', 'eq-h',
        eq.data.length ? table(RES.equipment.columns.filter(c => c[0] !== 'Factory'), eq.data) : h('p', {class: 'empty', text: 'No equipment yet.'}),
        more(eq, 'machines', `/equipment?factory_id=${item.id}`),
        h('p', {class: 'needs-admin'}, link(`/equipment?factory_id=${item.id}&new=1`, 'Add equipment here', 'btn'))));
    liveBadges(box, scope);
  } else if (kind === 'equipment') {
    const s = await api('GET', `/sensors?equipment_id=${item.id}&limit=100`);
    if (!scope.alive) return;
    box.append(section('Sensors on it', 'sn-h',
      s.data.length ? table(RES.sensors.columns, s.data) : h('p', {class: 'empty'}, 'No sensor is assigned to it.',
        h('span', {class: 'needs-admin', text: ' Assign one on its sensor page.'})),
      more(s, 'sensors', `/sensors?equipment_id=${item.id}`)));
  }
}
