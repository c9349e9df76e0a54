// A sensor's page: what the gateway reports of it, its equipment and
// reading schedule, taking a reading, its readings, and for one reading
// the summary per axis with the waveform and spectrum plotted.

import {h, clear, link, fmtTime, fmtNum, ago, dl, badge, toast, debounce, Scope, isolate} from './dom.js';
import {api, listAll, ApiError} from './api.js';
import {onEvent, fleet, again} from './live.js';
import {buildForm, act, retire} from './forms.js';
import {chart, figure} from './plot.js';

const PAGE = 20;
const METRICS = [
  ['samples', 'Samples', ''], ['min', 'Min', 'g'], ['max', 'Max', 'g'], ['mean', 'Mean', 'g'],
  ['rms', 'RMS', 'g'], ['peak', 'Peak', 'g'], ['peak_to_peak', 'Peak to peak', 'g'], ['crest_factor', 'Crest factor', ''],
  ['velocity_rms_mm_s', 'Velocity RMS (10–1000 Hz)', 'mm/s'], ['dominant_frequency_hz', 'Dominant frequency', 'Hz'],
];
const AXES = ['x', 'y', 'z'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function sensorPage(main, id, q, scope) {
  const title = h('h1', {text: 'Sensor'});
  const facts = h('div');
  const settings = h('div', {class: 'needs-admin'});
  const take = h('button', {type: 'button', id: 'take-reading', class: 'btn btn-primary', text: 'Take a reading'});
  const readingsBox = h('div', null, h('p', {class: 'muted', text: 'Loading…'}));
  const more = h('button', {type: 'button', class: 'btn', text: 'Older readings', hidden: true});
  const detail = h('section', {class: 'panel reading', id: 'reading', 'aria-labelledby': 'rd-h', hidden: true});
  const crumbs = h('p', {class: 'crumbs'}, link('/sensors', 'Sensors'));
  const section = (t, hid, ...c) => h('section', {class: 'panel', 'aria-labelledby': hid}, h('h2', {id: hid, text: t}), c);
  const head = h('div', {class: 'page-head'}, title);
  main.append(crumbs, head, h('div', {class: 'btn-row needs-operator'}, take),
    h('div', {class: 'two-col'}, section('Sensor', 'sn-h', facts), settings),
    section('Readings', 'rl-h', readingsBox, more), detail);

  let sensor = null;
  let readings = [];
  let total = 0;
  // The link's ?reading= is anyone's to write: an id only, never a path
  // (?reading=../tokens had the page GET /api/tokens with the reader's
  // token), and shown only if it is this sensor's (showReading). Found
  // by an audit, helper 3.
  let selected = UUID.test(q.get('reading') || '') ? q.get('reading') : '';
  let axis = AXES.includes(q.get('axis')) ? q.get('axis') : 'x';
  let waiting = ''; // the reading this page asked for: shown when it completes
  // While a reading's POST is in flight, the readings that finished
  // meanwhile (id → status): the event stream, another connection, can
  // tell of the reading's end before its POST's answer arrives.
  let posting = null;
  let plots = null; // the Scope of the charts on screen
  let form = null; // the Settings form

  const drawSensor = async () => {
    document.title = `${isolate(sensor.name || sensor.serial)} · sensor · gatewayd`;
    title.textContent = `${isolate(sensor.name || 'Sensor')} (${sensor.serial})`;
    const gwName = fleet.byId.get(sensor.gateway_id)?.name;
    const gw = await api('GET', '/gateways/' + sensor.gateway_id).catch(() => null);
    // The machines of the gateway's factory, and always the sensor's own:
    // all machines of the fleet were read, up to 5,000, and past that the
    // sensor's own could be missing from the choices, and saving any
    // setting unassigned it (found by an audit, helper 14). Unreadable,
    // the field is left out of the form, so a save never touches it.
    let mine = gw ? await listAll(`/equipment?factory_id=${gw.factory_id}`).then(l => l.map(e => [e.id, e.name])).catch(() => null) : null;
    if (mine && sensor.equipment_id && !mine.some(([eid]) => eid === sensor.equipment_id)) {
      const own = await api('GET', '/equipment/' + sensor.equipment_id).catch(() => null);
      if (own) mine.push([own.id, own.name]);
      else mine = null;
    }
    if (!scope.alive) return;
    const eqName = new Map(mine || []);
    crumbs.replaceChildren(link('/sensors', 'Sensors'), ' / ', link('/gateways/' + sensor.gateway_id, gw?.name || gwName || 'gateway'));
    clear(facts).append(dl([
      ['Serial', String(sensor.serial)],
      ['Gateway', link('/gateways/' + sensor.gateway_id, gw?.name || gwName || sensor.gateway_id)],
      ['Connected', sensor.connected ? 'yes' : 'no (missing from the gateway’s last list)'],
      ['Part number', sensor.part_number],
      ['Read rate', sensor.read_rate_hz == null ? null : fmtNum(sensor.read_rate_hz) + ' Hz'],
      ['Samples per axis', sensor.samples == null ? null : fmtNum(sensor.samples)],
      ['Temperature', sensor.last_temperature_c == null ? null
        : `${fmtNum(sensor.last_temperature_c, 1)} °C (${ago(sensor.last_temperature_at)})`],
      ['Equipment', sensor.equipment_id ? link('/equipment/' + sensor.equipment_id, eqName.get(sensor.equipment_id) || 'equipment') : 'none'],
      ['Schedule', sensor.reading_interval ? 'every ' + sensor.reading_interval : 'off'],
      ['First seen', fmtTime(sensor.first_seen_at)],
      ['Last seen', fmtTime(sensor.last_seen_at)],
    ]));
    const fields = [
      {name: 'name', label: 'Name', maxlength: 255},
      mine && {name: 'equipment_id', label: 'Equipment', type: 'select', nullable: true, options: [['', 'None'], ...mine],
        hint: mine.length ? 'Equipment of this gateway’s factory' : 'The factory has no equipment yet'},
      {name: 'reading_interval', label: 'Reading interval', nullable: true, maxlength: 32, placeholder: 'off',
        hint: 'How often to take a reading: 15m, 1h, 2d… (at least 1m); empty turns it off'},
      {name: 'metadata', label: 'Metadata (a JSON object)', type: 'json'},
    ];
    // A live event (each temperature is one) updates the form in place,
    // keeping what is being typed; it is built anew only when its fields
    // differ: the equipment field comes and goes with whether the
    // machines could be read.
    const same = form && fields.filter(Boolean).map(f => f.name).join() === [...form.inputs.keys()].join();
    if (same) {
      form.update(sensor, {fields});
      return;
    }
    const built = buildForm({
      mode: 'edit', values: sensor, fields,
      onSubmit: async b => {
        sensor = await api('PUT', '/sensors/' + id, b);
        built.update(sensor, {saved: true});
        toast('Saved');
        drawSensor();
      }});
    form = built;
    clear(settings).append(section('Settings', 'set-h', form));
  };

  const loadSensor = async () => {
    sensor = await api('GET', '/sensors/' + id);
    if (scope.alive) await drawSensor();
  };

  const statusBadge = s => h('span', {class: 'badge rd-' + s, text: s});
  const drawReadings = () => {
    if (!readings.length) {
      clear(readingsBox).append(h('p', {class: 'empty', text: 'No readings yet.'}));
      more.hidden = true;
      return;
    }
    const rows = readings.map(r => {
      const view = h('button', {type: 'button', class: 'btn btn-small', text: r.id === selected ? 'Shown' : 'Show',
        'aria-pressed': String(r.id === selected), disabled: r.status !== 'COMPLETE',
        onclick: () => select(r.id, true)});
      // The button first: on a phone the table scrolls sideways, and the
      // only way to plot an older reading must not be past the edge.
      return h('tr', {class: r.id === selected ? 'selected' : null, dataset: {reading: r.id, status: r.status}},
        h('td', null, view),
        h('td', null, h('time', {datetime: r.requested_at, text: fmtTime(r.requested_at)})),
        h('td', {text: r.trigger}), h('td', null, statusBadge(r.status)),
        r.summary ? h('td', {text: `${fmtNum(r.summary.x?.rms, 4)} / ${fmtNum(r.summary.y?.rms, 4)} / ${fmtNum(r.summary.z?.rms, 4)}`})
          : h('td', {class: 'free', text: r.error || ''})); // a gateway's words (app.css td.free)
    });
    clear(readingsBox).append(h('div', {class: 'table-wrap'}, h('table', {class: 'readings'},
      h('caption', {class: 'sr-only', text: 'Readings, newest first'}),
      h('thead', null, h('tr', null, ['Plot', 'Requested', 'Trigger', 'Status', 'RMS x / y / z (g), or error'].map(t => h('th', {scope: 'col', text: t})))),
      h('tbody', null, rows))));
    more.hidden = readings.length >= total;
  };

  const fetchReadings = (append = false) =>
    api('GET', `/sensors/${id}/readings?limit=${PAGE}&offset=${append ? readings.length : 0}`);
  const applyReadings = (page, append = false) => {
    if (!scope.alive) return;
    readings = append ? readings.concat(page.data) : page.data;
    total = page.pagination.total;
    drawReadings();
  };
  const loadReadings = async (append = false) => applyReadings(await fetchReadings(append), append);
  const refreshReadings = debounce(() => loadReadings().catch(() => {}), 200);
  scope.add(refreshReadings.cancel);
  more.addEventListener('click', () => act(more, () => loadReadings(true)));

  const setQuery = () => {
    const p = new URLSearchParams();
    if (selected) p.set('reading', selected);
    if (axis !== 'x') p.set('axis', axis);
    history.replaceState(null, '', `#/sensors/${id}${p.toString() ? '?' + p : ''}`);
  };

  // select shows a reading; focus moves to it when the user asked.
  function select(rid, focus) {
    selected = rid;
    setQuery();
    drawReadings();
    showReading().then(() => {
      if (focus && scope.alive) detail.querySelector('h2')?.focus();
    }).catch(e => {
      if (scope.alive) clear(detail).append(h('p', {class: 'form-error', text: e instanceof ApiError ? e.text() : String(e)}));
    });
  }

  async function showReading() {
    if (plots) plots.end();
    plots = new Scope();
    scope.add(() => plots.end());
    const mine = plots;
    detail.hidden = false;
    clear(detail).append(h('h2', {id: 'rd-h', text: 'Reading'}), h('p', {class: 'muted', text: 'Loading…'}));
    const r = await api('GET', '/readings/' + encodeURIComponent(selected));
    if (!mine.alive) return;
    if (String(r.sensor_id).toLowerCase() !== id.toLowerCase()) {
      // Another sensor's reading (a link naming, say, one a hostile
      // gateway pushed) was drawn under this sensor's name and serial
      // as if it were this sensor's: it is offered on its own page.
      clear(detail).append(h('h2', {id: 'rd-h', text: 'Reading'}),
        h('p', {class: 'form-error', role: 'alert'}, 'This reading is of another sensor: ',
          link(`/sensors/${r.sensor_id}?reading=${r.id}`, 'show it on its own sensor’s page'), '.'));
      return;
    }
    const head = [h('h2', {id: 'rd-h', tabindex: '-1', text: `Reading of ${fmtTime(r.requested_at)}`}), dl([
      ['Status', statusBadge(r.status)], ['Trigger', r.trigger], ['Error', r.error],
      ['Started', fmtTime(r.started_at)], ['Completed', fmtTime(r.completed_at)],
      ['Sample rate', r.sample_rate_hz == null ? null : fmtNum(r.sample_rate_hz) + ' Hz'],
      ['Samples per axis', r.samples == null ? null : fmtNum(r.samples)]])];
    if (!r.summary) {
      clear(detail).append(...head);
      return;
    }
    const summary = h('div', {class: 'table-wrap'}, h('table', {class: 'summary'},
      h('caption', {text: 'Summary per axis'}),
      h('thead', null, h('tr', null, h('th', {scope: 'col', text: 'Figure'}), AXES.map(a => h('th', {scope: 'col', text: a.toUpperCase()})))),
      h('tbody', null, METRICS.map(([k, label, unit]) => h('tr', null, h('th', {scope: 'row', text: label + (unit ? ` (${unit})` : '')}),
        AXES.map(a => h('td', {class: 'num', text: fmtNum(r.summary[a]?.[k], k === 'samples' ? 0 : 4)})))))));
    const axisName = `axis-${id}`;
    const axes = h('fieldset', {class: 'axes'}, h('legend', {text: 'Axis'}), AXES.map(a => h('label', {class: 'radio'},
      h('input', {type: 'radio', name: axisName, value: a, checked: a === axis, onchange: () => {
        axis = a;
        setQuery();
        plot();
      }}), ' ' + a.toUpperCase())));
    const plotsBox = h('div', {class: 'plots'});
    clear(detail).append(...head, summary, axes, plotsBox);

    let wave = null;
    let axisScope = null;
    // plot draws the chosen axis; what keeps it from doing so is said in
    // the plots' place. A COMPLETE reading whose samples retention
    // deleted (404 WAVEFORM_NOT_FOUND) keeps its summary (API.md §8): the
    // 404 replaced the whole panel, summary and all (found by an audit,
    // helper 7).
    async function plot() {
      if (axisScope) axisScope.end();
      axisScope = new Scope();
      mine.add(() => axisScope.end());
      const s = axisScope;
      clear(plotsBox).append(h('p', {class: 'muted', text: 'Loading the samples…'}));
      try {
        await draw(s);
      } catch (e) {
        if (!s.alive) return;
        axes.hidden = e.status === 404; // no samples: no axis to choose
        clear(plotsBox).append(h('p', {class: 'form-error', text: e instanceof ApiError ? e.text() : String(e)}));
      }
    }
    async function draw(s) {
      wave = wave || await api('GET', `/readings/${r.id}/waveform`);
      const spec = await api('GET', `/readings/${r.id}/spectrum?axis=${axis}`);
      if (!s.alive) return;
      const ys = wave[axis];
      const rate = wave.sample_rate_hz || 1;
      const t = new Float64Array(ys.length);
      for (let i = 0; i < ys.length; i++) t[i] = i * 1000 / rate;
      const sum = r.summary[axis] || {};
      const w = figure(`Waveform, ${axis.toUpperCase()} axis (g over ms; drag to zoom, double-click for all)`,
        `Waveform of the ${axis} axis: ${ys.length} samples at ${fmtNum(rate)} Hz, peak ${fmtNum(sum.peak, 3)} g, RMS ${fmtNum(sum.rms, 4)} g`);
      // The spectrum goes up to half the sample rate; what matters is
      // usually far below. It opens on 0–1 kHz (the ISO 20816 band), or
      // four times the highest dominant frequency; drag to zoom,
      // double-click for all of it, or the buttons above it.
      const fs = spec.frequency_hz;
      const top = Math.max(...AXES.map(a => r.summary[a]?.dominant_frequency_hz || 0));
      const xMax = Math.min(fs[fs.length - 1] || 0, Math.max(1000, 4 * top)) || undefined;
      const f = figure(`Spectrum, ${axis.toUpperCase()} axis (amplitude in g over Hz; drag to zoom, double-click for all)`,
        `Amplitude spectrum of the ${axis} axis up to ${fmtNum(spec.frequency_hz[spec.frequency_hz.length - 1] || 0)} Hz; strongest above 2 Hz at ${fmtNum(sum.dominant_frequency_hz, 1)} Hz`);
      clear(plotsBox).append(w.el, f.el);
      await chart(w.box, {x: t, y: ys, xLabel: 'ms', yLabel: 'g', scope: s, controls: w.controls});
      const opens = xMax && xMax < fs[fs.length - 1] ? [[`0–${fmtNum(xMax / 1000, 1)} kHz`, fs[0], xMax]] : [];
      await chart(f.box, {x: fs, y: spec.amplitude, xLabel: 'Hz', yLabel: 'g', scope: s, xMax, controls: f.controls, presets: opens});
      plotsBox.dataset.drawn = axis;
    }
    await plot();
  }

  const finished = (rid, status) => {
    if (status === 'COMPLETE') select(rid);
    else toast('The reading failed', 'error');
  };
  take.addEventListener('click', () => act(take, async () => {
    posting = new Map();
    let r, ended;
    try {
      r = await api('POST', `/sensors/${id}/readings`);
      ended = posting.get(r.id);
    } finally {
      posting = null;
    }
    if (ended) { // already done: the answer's QUEUED is old news
      refreshReadings();
      finished(r.id, ended);
      return r;
    }
    waiting = r.id;
    readings = [r, ...readings.filter(x => x.id !== r.id)];
    total++;
    drawReadings();
    return r;
  }, 'Reading queued; it shows when the gateway has sent it'));

  const done = ev => {
    if (ev.sensor_id !== id) return;
    refreshReadings();
    if (ev.id === waiting) {
      waiting = '';
      finished(ev.id, ev.status);
    } else if (posting) {
      posting.set(ev.id, ev.status);
    }
  };
  scope.add(onEvent('reading.completed', done));
  scope.add(onEvent('reading.failed', done));
  // gone says the sensor no longer exists, once: a toast, a DELETED badge
  // by its name, and no "Take a reading".
  const gone = what => {
    retire(take);
    if (head.querySelector('.st-DELETED')) return;
    head.append(badge('DELETED'));
    toast(what, 'error');
  };
  const refreshSensor = debounce(() => {
    if (scope.alive) loadSensor().catch(e => {
      if (scope.alive && e.status === 404) gone('This sensor was deleted');
    });
  }, 300);
  scope.add(refreshSensor.cancel);
  scope.add(onEvent('sensor.updated', ev => {
    if (ev.id === id) refreshSensor();
  }));
  // The sensor's gateway: renamed, its name is shown anew; deleted, the
  // sensor was deleted with it (API.md §4), and the page says so as the
  // gateway's own page does and offers no reading. It listened to sensor
  // and reading events only, and went on showing a deleted sensor with
  // "Take a reading" for good (found by an audit, helper 2).
  scope.add(onEvent('gateway.updated', ev => {
    if (sensor && ev.id === sensor.gateway_id) refreshSensor();
  }));
  scope.add(onEvent('gateway.deleted', ev => {
    if (sensor && ev.id === sensor.gateway_id) gone('This sensor’s gateway was deleted, and the sensor with it');
  }));
  // A reset (the shared stream missed events) may have swallowed the end
  // of a reading this page waits for: read the list, the sensor and that
  // reading again.
  scope.add(onEvent('reset', () => {
    refreshReadings();
    refreshSensor();
    const rid = waiting;
    if (!rid) return;
    api('GET', '/readings/' + rid).then(r => {
      if (scope.alive && waiting === rid && (r.status === 'COMPLETE' || r.status === 'FAILED')) {
        waiting = '';
        finished(rid, r.status);
      }
    }).catch(() => {});
  }));

  // The first list is drawn once the sensor's panels above it are: drawn
  // first, it moved down under the pointer when they came, and a click on
  // a reading's Show landed elsewhere (seen in CI as a lost click). A
  // first load that failed in a way that may pass (a database outage,
  // gatewayd restarting) is tried again, and the page drawn when it comes
  // (live.js' again): it said "not available" for good (found by an
  // audit, helper 12).
  const page = [...main.childNodes];
  let failedOnce = false;
  scope.add(again(async () => {
    const [, list] = await Promise.all([loadSensor(), fetchReadings()]);
    if (!scope.alive) return;
    if (failedOnce) main.replaceChildren(...page);
    applyReadings(list);
    if (selected) select(selected);
  }, {failed: (e, final) => {
    if (!scope.alive) return;
    failedOnce = true;
    clear(main).append(h('h1', {text: 'Sensor not available'}),
      h('p', {class: 'form-error', role: 'alert', text: e instanceof ApiError ? e.text() : String(e)}),
      final ? null : h('p', {class: 'muted', text: 'Trying again…'}),
      h('p', null, link('/sensors', 'All sensors')));
  }}).stop);
}
