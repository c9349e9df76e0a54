// Charts, with the vendored uPlot 1.6.32 (web/static/vendor/uplot), loaded
// the first time a chart is drawn: the overview never pays for it.

import {h} from './dom.js';

const BASE = '/ui/vendor/uplot/';
let loading = null;

export function loadUPlot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      document.head.append(h('link', {rel: 'stylesheet', href: BASE + 'uPlot.min.css'}));
      const s = h('script', {src: BASE + 'uPlot.iife.min.js'});
      s.addEventListener('load', () => resolve(window.uPlot));
      s.addEventListener('error', () => {
        loading = null;
        reject(new Error('the chart library did not load'));
      });
      document.head.append(s);
    });
  }
  return loading;
}

const css = name => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// chart draws one series y over x into box and returns it; it follows the
// box's width and is destroyed with scope.
// xMax, when given, is where the x axis ends at first (drag to zoom,
// double-click shows everything).
// controls, when given, gets the buttons that do from the keyboard what
// the mouse does: zoom in and out, move, the whole range, and presets
// ([label, min, max]: the range a chart opens on, say).
export async function chart(box, {x, y, xLabel, yLabel, scope, xFmt, xMax, controls, presets = []}) {
  const uPlot = await loadUPlot();
  if (!scope.alive) return null;
  const fg = css('--fg-muted') || '#666';
  const grid = css('--grid') || '#ddd';
  const axis = label => ({label, stroke: fg, grid: {stroke: grid, width: 1}, ticks: {stroke: grid, width: 1}});
  const size = () => ({width: Math.max(260, box.clientWidth), height: box.clientWidth < 500 ? 200 : 260});
  const xAxis = axis(xLabel);
  if (xFmt) xAxis.values = (u, ticks) => ticks.map(xFmt);
  let scaled = () => {};
  const u = new uPlot({
    ...size(),
    scales: {x: {time: false}},
    axes: [xAxis, axis(yLabel)],
    cursor: {drag: {x: true, y: false}},
    series: [{label: xLabel}, {label: yLabel, stroke: css('--plot') || '#0b6e4f', width: 1, points: {show: false}}],
    hooks: {setScale: [(u, key) => { if (key === 'x') scaled(); }]},
  }, [x, y], box);
  if (xMax) u.setScale('x', {min: x[0], max: xMax});
  if (controls) scaled = zoomButtons(u, x, controls, presets);
  const ro = new ResizeObserver(() => u.setSize(size()));
  ro.observe(box);
  scope.add(() => {
    ro.disconnect();
    u.destroy();
  });
  return u;
}

// zoomButtons fills controls with a chart's keyboard zoom: the plots'
// zoom was the mouse's alone (drag, double-click), and the spectrum opens
// on 0–1 kHz of up to 12.8 kHz (found by an audit, helper 7). Buttons are
// never disabled (a disabled button drops the keyboard's focus): at an
// end, moving or zooming out does nothing. It returns what marks the
// presets pressed, to be called when the range changes.
function zoomButtons(u, x, controls, presets) {
  const lo = x[0], hi = x[x.length - 1];
  const least = x.length > 8 ? 8 * (x[1] - x[0]) : 0; // zoomed in no closer than 8 samples
  const shown = () => [u.scales.x.min, u.scales.x.max];
  const set = (min, max) => {
    const w = Math.min(max - min, hi - lo);
    min = Math.min(Math.max(min, lo), hi - w);
    u.setScale('x', {min, max: min + w});
  };
  const zoom = k => {
    const [min, max] = shown();
    const c = (min + max) / 2, w = Math.max((max - min) * k, least);
    set(c - w / 2, c + w / 2);
  };
  const move = d => {
    const [min, max] = shown();
    set(min + d * (max - min) / 2, max + d * (max - min) / 2);
  };
  const btn = (text, label, fn) => h('button', {type: 'button', class: 'btn btn-small', text, 'aria-label': label, title: label, onclick: fn});
  const ranges = [...presets, ['Whole range', lo, hi]].map(([text, min, max]) => {
    const b = btn(text, null, () => set(min, max));
    b.range = [min, max];
    return b;
  });
  controls.replaceChildren(...ranges, btn('Zoom in', null, () => zoom(0.5)), btn('Zoom out', null, () => zoom(2)),
    btn('←', 'Move left', () => move(-1)), btn('→', 'Move right', () => move(1)));
  const mark = () => {
    const [min, max] = shown();
    const near = (a, b) => Math.abs(a - b) <= (hi - lo) * 1e-6;
    for (const b of ranges) b.setAttribute('aria-pressed', String(near(min, b.range[0]) && near(max, b.range[1])));
  };
  mark();
  return mark;
}

// figure is a chart's frame: a heading, its controls and a text
// alternative for the canvas (the controls are outside the role=img box,
// whose content assistive technology does not show).
export function figure(caption, description) {
  const box = h('div', {class: 'chart', role: 'img', 'aria-label': description});
  const controls = h('div', {class: 'chart-controls', role: 'group', 'aria-label': 'Zoom: ' + caption.split(' (')[0]});
  return {box, controls, el: h('figure', {class: 'figure'}, h('figcaption', {text: caption}), controls, box)};
}
