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
export async function chart(box, {x, y, xLabel, yLabel, scope, xFmt, xMax}) {
  const uPlot = await loadUPlot();
  if (!scope.alive) return null;
  const fg = css('--fg-muted') || '#666';
  const grid = css('--grid') || '#ddd';
  const axis = label => ({label, stroke: fg, grid: {stroke: grid, width: 1}, ticks: {stroke: grid, width: 1}});
  const size = () => ({width: Math.max(260, box.clientWidth), height: box.clientWidth < 500 ? 200 : 260});
  const xAxis = axis(xLabel);
  if (xFmt) xAxis.values = (u, ticks) => ticks.map(xFmt);
  const u = new uPlot({
    ...size(),
    scales: {x: {time: false}},
    axes: [xAxis, axis(yLabel)],
    cursor: {drag: {x: true, y: false}},
    series: [{label: xLabel}, {label: yLabel, stroke: css('--plot') || '#0b6e4f', width: 1, points: {show: false}}],
  }, [x, y], box);
  if (xMax) u.setScale('x', {min: x[0], max: xMax});
  const ro = new ResizeObserver(() => u.setSize(size()));
  ro.observe(box);
  scope.add(() => {
    ro.disconnect();
    u.destroy();
  });
  return u;
}

// figure is a chart's frame: a heading and a text alternative for the canvas.
export function figure(caption, description) {
  const box = h('div', {class: 'chart', role: 'img', 'aria-label': description});
  return {box, el: h('figure', {class: 'figure'}, h('figcaption', {text: caption}), box)};
}
