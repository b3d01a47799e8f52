// Store managers: their stores, and per store the production model's forecast per product with
// its 80% and 95% intervals and the actuals, the next days as a table, the accuracy of past weeks
// and a CSV download. Laid out for a phone first.
import { h, field, select } from '../lib/dom.js';
import { all, download, get } from '../lib/api.js';
import { enc, every, navigate } from '../lib/router.js';
import { actionButton, link, problemView, section, table } from '../lib/widgets.js';
import { forecastChart, lineChart } from '../lib/charts.js';
import { count, day, number, percent, weekday, when } from '../lib/format.js';

// Units sold are whole: a store manager plans in units, not decimals.
const units = (n) => (n == null ? '—' : count(Math.round(Number(n))));

export async function storesPage() {
  const list = await all('/api/v1/stores');
  return h('div', {},
    h('h1', {}, 'Stores'),
    list.length
      ? h('ul', { class: 'store-cards' }, list.map((s) => h('li', {}, link(`/stores/${enc(s.id)}`, s.name), h('span', { class: 'hint' }, `${s.city}, ${s.country} · ${s.id}`))))
      : h('p', { class: 'empty' }, 'No stores are assigned to you yet. A platform admin assigns them.'));
}

const NO_ACCESS = 'This store is not one of yours, or it does not exist. You can open the stores assigned to you from the Stores page.';

export async function storePage({ params, query }) {
  const id = params.store;
  let store;
  try {
    store = await get(`/api/v1/stores/${enc(id)}`);
  } catch (err) {
    if (err.status === 403 || err.status === 404) {
      return h('div', { class: 'problem', role: 'alert', 'data-problem': 'store-access' },
        h('h1', {}, 'You cannot open this store'), h('p', {}, NO_ACCESS), h('p', {}, link('/stores', 'Back to your stores')));
    }
    throw err;
  }
  const head = h('div', {}, h('p', { class: 'breadcrumb' }, link('/stores', 'Stores'), ' / ', store.id),
    h('h1', {}, store.name), h('p', { class: 'hint' }, `${store.city}, ${store.country} · ${store.timezone}`));
  let fc;
  try {
    fc = await get(`/api/v1/stores/${enc(id)}/forecasts`);
  } catch (err) {
    if (err.status === 403) return h('div', {}, head, problemView(err, { forbidden: NO_ACCESS }));
    if (err.status !== 404) throw err;
    every(5000, async () => {
      const ok = await get(`/api/v1/stores/${enc(id)}/forecasts`).then(() => true).catch(() => false);
      if (ok) navigate(window.location.pathname + window.location.search, { replace: true });
    });
    return h('div', {}, head, h('div', { class: 'card', role: 'status', 'data-problem': 'no-forecast' },
      h('h2', {}, 'No forecast yet'),
      h('p', {}, 'The production model has not forecast this store yet. Forecasts appear here after a model is promoted to production; this page checks again every few seconds.')));
  }
  const products = [...new Set(fc.items.map((i) => i.product))].sort();
  const product = products.includes(query.get('product')) ? query.get('product') : products[0];
  const productSel = select('product', products, product);
  productSel.addEventListener('change', () => navigate(`/stores/${enc(id)}?product=${enc(productSel.value)}`, { replace: true }));
  const rows = fc.items.filter((i) => i.product === product).sort((a, b) => a.date.localeCompare(b.date));
  const csvButton = actionButton('Download CSV', () => download(`/api/v1/stores/${enc(id)}/forecasts?from=${fc.from}&to=${fc.to}`, `forecast-${id}-${fc.from}-to-${fc.to}.csv`));
  const summary = `Forecast of ${product} at ${store.name} from ${fc.from} to ${fc.to}: ${rows.map((r) => `${r.date} ${number(r.forecast)}`).slice(0, 7).join(', ')}${rows.length > 7 ? ', …' : ''}`;
  return h('div', {},
    head,
    h('p', { class: 'hint' }, `Model ${fc.model} v${fc.model_version} (project ${fc.project}), made ${when(fc.generated_at)}; ${day(fc.from)} to ${day(fc.to)}.`),
    section('Forecast',
      h('div', { class: 'toolbar' }, field('Product', productSel), csvButton),
      h('figure', { class: 'forecast-figure' },
        h('figcaption', {}, `${product}: expected units per day, with the 80% and 95% intervals${rows.some((r) => r.actual != null) ? ' and what was sold' : ''}`),
        forecastChart(summary, rows))),
    section('Next days', table(`${product}, day by day`, [
      { label: 'Day', value: (r) => weekday(r.date), class: 'nowrap' },
      { label: 'Forecast', value: (r) => units(r.forecast), class: 'num' },
      { label: 'Likely (80%)', value: (r) => `${units(r.lo80)}–${units(r.hi80)}`, class: 'num' },
      { label: 'Wide (95%)', value: (r) => `${units(r.lo95)}–${units(r.hi95)}`, class: 'num' },
      { label: 'Actual', value: (r) => (r.actual == null ? '—' : units(r.actual)), class: 'num' },
    ], rows, { rowLabel: (r) => r.date })),
    section('All products, next 7 days', pivot(fc.items, products)),
    await accuracySection(id));
}

function pivot(items, products) {
  const days = [...new Set(items.map((i) => i.date))].sort().slice(0, 7);
  const at = new Map(items.map((i) => [`${i.product}|${i.date}`, i.forecast]));
  return table('!Forecast per product and day', [
    { label: 'Product', value: (p) => p },
    ...days.map((d) => ({ label: weekday(d), value: (p) => units(at.get(`${p}|${d}`)), class: 'num' })),
  ], products);
}

async function accuracySection(id) {
  let acc;
  try {
    acc = await get(`/api/v1/stores/${enc(id)}/accuracy`, { weeks: 8 });
  } catch (err) {
    return section('Accuracy of past weeks', problemView(err));
  }
  if (!acc.items.length) {
    return section('Accuracy of past weeks', h('p', { class: 'empty' }, 'No past weeks to measure yet: accuracy appears once actual sales are recorded for forecast days.'));
  }
  const weeks = [...new Set(acc.items.map((i) => i.week))].sort();
  const products = [...new Set(acc.items.map((i) => i.product))].sort();
  const wape = new Map(acc.items.map((i) => [`${i.product}|${i.week}`, i.wape]));
  const chart = lineChart(`WAPE per week for ${products.length} products over ${weeks.length} weeks`,
    products.map((p) => ({ label: p, points: weeks.map((w, k) => ({ x: k + 1, y: wape.get(`${p}|${w}`) ?? null })).filter((pt) => pt.y != null) })),
    { xLabel: 'week', yLabel: 'WAPE', height: 220 });
  return section('Accuracy of past weeks',
    h('p', { class: 'hint' }, 'WAPE: total absolute error as a share of units sold (lower is better). Coverage: how often the actual fell inside the interval (80% and 95% are right).'),
    h('figure', {}, h('figcaption', {}, 'WAPE by week'), chart),
    table('!Accuracy', [
      { label: 'Week', value: (i) => day(i.week) }, { label: 'Product', value: (i) => i.product },
      { label: 'WAPE', value: (i) => percent(i.wape), class: 'num' }, { label: 'Bias', value: (i) => percent(i.bias), class: 'num' },
      { label: '80% coverage', value: (i) => percent(i.coverage80), class: 'num' }, { label: '95% coverage', value: (i) => percent(i.coverage95), class: 'num' },
      { label: 'Days', value: (i) => count(i.n), class: 'num' },
    ], acc.items));
}

