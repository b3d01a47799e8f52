// Charts with Chart.js (only the parts used are registered, so the bundle stays small). Every
// chart is a canvas with role="img" and a text summary; the numbers are also in a table nearby.
import {
  BarController, BarElement, CategoryScale, Chart, Filler, Legend, LinearScale, LineController,
  LineElement, PointElement, ScatterController, Tooltip,
} from 'chart.js';
import { h } from './dom.js';
import { onLeave } from './router.js';

Chart.register(BarController, BarElement, CategoryScale, Filler, Legend, LinearScale,
  LineController, LineElement, PointElement, ScatterController, Tooltip);
Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
Chart.defaults.color = '#2b2118';
Chart.defaults.animation = false; // readable at once, and screenshots are stable

export const COLORS = ['#7a3e12', '#1f5f8b', '#2e7d32', '#8e24aa', '#c62828', '#00796b', '#5d4037', '#37474f'];

function mount(summary, config, { height = 280 } = {}) {
  const canvas = h('canvas', { role: 'img', 'aria-label': summary });
  const box = h('div', { class: 'chart', style: { height: `${height}px` } }, canvas);
  // Chart.js needs the canvas in the document to measure it: wait until the page is in place.
  let tries = 0;
  const tryMount = () => {
    if (!canvas.isConnected) {
      tries += 1;
      if (tries < 300) requestAnimationFrame(tryMount);
      return;
    }
    const chart = new Chart(canvas, { ...config, options: { responsive: true, maintainAspectRatio: false, ...config.options } });
    onLeave(() => chart.destroy());
    box.chart = chart;
    box.dataset.ready = 'true';
  };
  requestAnimationFrame(tryMount);
  return box;
}

// series: [{label, points: [{x, y}]}] with numeric x (e.g. boosting round).
export function lineChart(summary, series, { xLabel, yLabel, height } = {}) {
  return mount(summary, {
    type: 'line',
    data: {
      datasets: series.map((s, i) => ({
        label: s.label, data: s.points, borderColor: COLORS[i % COLORS.length],
        backgroundColor: COLORS[i % COLORS.length], pointRadius: 0, borderWidth: 2, tension: 0.1,
      })),
    },
    options: {
      parsing: false,
      interaction: { mode: 'nearest', intersect: false },
      scales: {
        x: { type: 'linear', title: { display: Boolean(xLabel), text: xLabel } },
        y: { title: { display: Boolean(yLabel), text: yLabel } },
      },
    },
  }, { height });
}

export function barChart(summary, labels, values, { label = '', height, horizontal = false } = {}) {
  return mount(summary, {
    type: 'bar',
    data: { labels, datasets: [{ label, data: values, backgroundColor: COLORS[0] }] },
    options: { indexAxis: horizontal ? 'y' : 'x', plugins: { legend: { display: Boolean(label) } } },
  }, { height });
}

// Several series as grouped bars on a category axis: [{label, values}] aligned with labels
// (readable with a single category, where a line would be a lone point).
export function groupedBarChart(summary, labels, series, { height, horizontal = false, yLabel = '' } = {}) {
  return mount(summary, {
    type: 'bar',
    data: {
      labels,
      datasets: series.map((s, i) => ({ label: s.label, data: s.values, backgroundColor: s.color || COLORS[i % COLORS.length] })),
    },
    options: {
      indexAxis: horizontal ? 'y' : 'x',
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { display: series.length > 1 } },
      scales: { [horizontal ? 'x' : 'y']: { title: { display: Boolean(yLabel), text: yLabel } } },
    },
  }, { height });
}

// Daily series on a category axis of ISO dates: [{label, values}] aligned with labels.
export function dailyChart(summary, labels, series, { height } = {}) {
  return mount(summary, {
    type: 'line',
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.label, data: s.values, borderColor: COLORS[i % COLORS.length],
        backgroundColor: COLORS[i % COLORS.length], pointRadius: 0, borderWidth: 1.5,
      })),
    },
    options: { interaction: { mode: 'index', intersect: false }, scales: { x: { ticks: { maxTicksLimit: 12 } } } },
  }, { height });
}

// A forecast with its 95% and 80% intervals as bands, and the actuals as points.
export function forecastChart(summary, rows, { height = 320 } = {}) {
  const labels = rows.map((r) => r.date);
  const band = (key, color) => ({ data: rows.map((r) => r[key]), borderWidth: 0, pointRadius: 0, backgroundColor: color });
  return mount(summary, {
    type: 'line',
    data: {
      labels,
      datasets: [
        { ...band('hi95', 'rgba(122, 62, 18, 0.12)'), label: '95% interval', fill: '+1' },
        { ...band('lo95', 'rgba(122, 62, 18, 0.12)'), label: '95% lower', fill: false },
        { ...band('hi80', 'rgba(122, 62, 18, 0.25)'), label: '80% interval', fill: '+1' },
        { ...band('lo80', 'rgba(122, 62, 18, 0.25)'), label: '80% lower', fill: false },
        { label: 'Forecast', data: rows.map((r) => r.forecast), borderColor: '#7a3e12', backgroundColor: '#7a3e12', borderWidth: 2.5, pointRadius: 2, fill: false },
        { label: 'Actual', data: rows.map((r) => r.actual), borderColor: '#1f5f8b', backgroundColor: '#1f5f8b', showLine: false, pointRadius: 4, pointStyle: 'rectRot', fill: false },
      ],
    },
    options: {
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: { labels: { filter: (item) => !item.text.endsWith('lower') } },
        tooltip: { filter: (item) => !item.dataset.label.endsWith('lower') },
      },
      scales: { y: { beginAtZero: true, title: { display: true, text: 'units sold' } }, x: { ticks: { maxTicksLimit: 10 } } },
    },
  }, { height });
}
