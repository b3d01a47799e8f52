// A project's forecasts: the forecast runs (which one readers get, how fast it was written),
// "Forecast now", the weekly accuracy of what was served, and the known future inputs data
// scientists maintain: planned promotions and the weather outlook.
import { h, field, replace, select } from '../lib/dom.js';
import { all, api, get, post } from '../lib/api.js';
import { enc } from '../lib/router.js';
import { actionButton, announce, badge, form, link, problemView, section, table } from '../lib/widgets.js';
import { groupedBarChart } from '../lib/charts.js';
import { count, day, percent, shortId, when } from '../lib/format.js';
import { livePoll, marking, named, region, unchanged } from './live.js';

const GENERATING = ['queued', 'generating'];
const WEATHER = ['Sunny', 'Rainy', 'Snowy', 'Cloudy', 'Hot', 'Cold'];

export async function forecastsSection({ project: p, base }) {
  const api1 = `/api/v1/projects/${enc(p.id)}`;
  const [stores, runsFirst] = await Promise.all([
    all('/api/v1/stores').catch(() => []),
    get(`${api1}/forecast-runs`, { limit: 20 }),
  ]);
  const current = runsFirst.items.find((r) => r.current);
  const products = current && current.products ? current.products : [];
  return h('div', {},
    h('h1', {}, 'Forecasts'),
    h('p', {}, 'The production model forecasts every store and product of the project when it is promoted and then on a schedule; store managers read the current run. Planned promotions and the weather outlook are known future inputs of the next run.'),
    await runsSection(p, api1, runsFirst),
    await accuracySection(api1),
    await promotionsSection(api1, stores, products),
    await weatherSection(api1, stores));
}

// ---- forecast runs ---------------------------------------------------------------------------

async function runsSection(p, api1, first) {
  let items = first.items;
  let loaded = false;
  const note = h('p', { class: 'hint live-note', 'aria-live': 'polite', id: 'forecast-runs-live' });
  const same = unchanged();
  const list = await region(async () => {
    if (loaded) items = (await get(`${api1}/forecast-runs`, { limit: 20 })).items;
    loaded = true;
    if (same(items)) return undefined;
    const cur = items.find((r) => r.current);
    return [
      cur ? h('p', { class: 'current-run', 'data-current-run': cur.id },
        'Readers get run ', h('strong', {}, shortId(cur.id)), ` — ${cur.model} v${cur.model_version}, ${count(cur.rows)} rows, ${count(cur.stores)} store(s) × ${(cur.products || []).length} product(s), ${day(cur.start_date)} for ${cur.days} days (ready ${when(cur.ready_at)}).`)
        : h('p', { class: 'empty' }, 'No forecast run is current yet: one is made when a model version is promoted to production.'),
      table('!Forecast runs', [
        { label: 'Run', value: (r) => h('span', {}, h('code', {}, shortId(r.id)), r.current ? [' ', h('span', { class: 'badge badge-ok' }, 'current')] : null) },
        { label: 'State', value: (r) => badge(r.state) },
        { label: 'Trigger', value: (r) => r.trigger },
        { label: 'Model', value: (r) => `${r.model} v${r.model_version}` },
        { label: 'Data', value: (r) => `${r.dataset} v${r.dataset_version}` },
        { label: 'Start', value: (r) => day(r.start_date), class: 'nowrap' },
        { label: 'Days', value: (r) => count(r.days), class: 'num' },
        { label: 'Rows', value: (r) => count(r.rows), class: 'num' },
        { label: 'Stores', value: (r) => count(r.stores), class: 'num' },
        { label: 'Rows/s', value: (r) => count(r.stats && r.stats.rows_per_second), class: 'num' },
        { label: 'Operation', value: (r) => (r.operation_id ? link(`/operations/${r.operation_id}`, shortId(r.operation_id)) : '—') },
        { label: 'Created', value: (r) => when(r.created_at), class: 'nowrap' },
        { label: 'Error', value: (r) => (r.error ? h('span', { class: 'error' }, r.error.message || JSON.stringify(r.error)) : '') },
      ], items, { empty: 'No forecast runs yet.', rowLabel: (r) => `forecast-run-${r.state}${r.current ? '-current' : ''}` }),
    ];
  }, { class: 'forecast-runs' });
  const active = () => items.some((r) => GENERATING.includes(r.state));
  livePoll(note, 2000, active, list.reload, () => 'A forecast is being generated: this list updates every two seconds.');
  const now = actionButton('Forecast now', async () => {
    const r = await post(`${api1}/forecast-runs`, {});
    announce(`Forecast run ${shortId(r.id)} queued with ${r.model} v${r.model_version}.`, 'ok');
    await list.reload();
    note.textContent = 'A forecast is being generated: this list updates every two seconds.';
  }, { kind: 'primary' });
  return section('Forecast runs', list, h('div', { class: 'actions' }, now), note);
}

// ---- accuracy --------------------------------------------------------------------------------

async function accuracySection(api1) {
  let acc;
  try {
    acc = await get(`${api1}/accuracy`, { weeks: 12 });
  } catch (err) {
    return section('Accuracy by week', problemView(err));
  }
  const items = [...acc.items].sort((a, b) => a.week.localeCompare(b.week));
  if (!items.length) {
    return section('Accuracy by week', h('p', { class: 'empty' }, 'No week to measure yet: accuracy appears once actual sales are recorded for days that were forecast (POST /api/v1/actuals, or a new dataset version).'));
  }
  const labels = items.map((i) => day(i.week));
  const summary = `Weekly accuracy over ${items.length} week(s): ${items.map((i) => `${i.week} WAPE ${percent(i.wape)}, bias ${percent(i.bias)}`).join('; ')}`;
  const pctOf = (v) => (v == null ? null : Math.round(v * 1000) / 10);
  return section('Accuracy by week',
    h('p', { class: 'hint' }, 'WAPE: absolute error as a share of units sold (lower is better). Bias: positive means the forecast was too high. Coverage: how often the actual fell inside the 80% and 95% intervals.'),
    h('figure', { class: 'accuracy-figure' }, h('figcaption', {}, 'WAPE, bias and interval coverage per week (%)'),
      groupedBarChart(summary, labels, [
        { label: 'WAPE', values: items.map((i) => pctOf(i.wape)) },
        { label: 'Bias', values: items.map((i) => pctOf(i.bias)) },
        { label: '80% coverage', values: items.map((i) => pctOf(i.coverage80)) },
        { label: '95% coverage', values: items.map((i) => pctOf(i.coverage95)) },
      ], { height: 240, yLabel: '%' })),
    table('!Accuracy by week', [
      { label: 'Week of', value: (i) => day(i.week), class: 'nowrap' },
      { label: 'WAPE', value: (i) => percent(i.wape), class: 'num' },
      { label: 'Bias', value: (i) => percent(i.bias), class: 'num' },
      { label: '80% coverage', value: (i) => percent(i.coverage80), class: 'num' },
      { label: '95% coverage', value: (i) => percent(i.coverage95), class: 'num' },
      { label: 'Forecasts measured', value: (i) => count(i.n), class: 'num' },
      { label: 'Computed', value: (i) => when(i.computed_at), class: 'nowrap' },
    ], items.slice().reverse(), { rowLabel: (i) => `week-${i.week}` }));
}

// ---- planned promotions ----------------------------------------------------------------------

async function promotionsSection(api1, stores, products) {
  const list = await region(async (reload) => {
    const { items } = await get(`${api1}/planned-promotions`);
    return table('!Planned promotions', [
      { label: 'Store', value: (x) => (x.store_id === '*' ? 'every store' : x.store_id) },
      { label: 'Product', value: (x) => (x.product === '*' ? 'every product' : x.product) },
      { label: 'From', value: (x) => day(x.start_date), class: 'nowrap' },
      { label: 'To', value: (x) => day(x.end_date), class: 'nowrap' },
      { label: 'Description', value: (x) => x.description || '' },
      { label: 'Added', value: (x) => when(x.created_at), class: 'nowrap' },
      { label: 'Remove', value: (x) => named(actionButton('Remove', async () => {
        await api('DELETE', `${api1}/planned-promotions/${enc(x.id)}`);
        announce('Planned promotion removed.', 'ok');
        await reload();
      }, { kind: 'link-button', confirmText: 'Remove this planned promotion?' }), `Remove the promotion of ${x.product === '*' ? 'every product' : x.product} at ${x.store_id === '*' ? 'every store' : x.store_id} from ${x.start_date}`) },
    ], items, { empty: 'No planned promotions.', rowLabel: (x) => `promotion-${x.store_id}-${x.product}-${x.start_date}` });
  });
  const storeIn = h('input', { name: 'store_id', required: true, value: '*', list: 'promo-stores', maxlength: '64', autocomplete: 'off' });
  const productIn = h('input', { name: 'product', required: true, value: '*', list: 'promo-products', maxlength: '100', autocomplete: 'off' });
  const add = form({ 'aria-label': 'Plan a promotion' }, [
    h('div', { class: 'grid2' },
      field('Store', storeIn, 'a store id, or * for every store'),
      field('Product', productIn, 'a product, or * for every product'),
      field('First day', h('input', { name: 'start_date', type: 'date', required: true })),
      field('Last day', h('input', { name: 'end_date', type: 'date', required: true }))),
    h('datalist', { id: 'promo-stores' }, h('option', { value: '*' }, 'every store'), stores.map((s) => h('option', { value: s.id }, s.name))),
    h('datalist', { id: 'promo-products' }, h('option', { value: '*' }, 'every product'), products.map((x) => h('option', { value: x }))),
    field('Description', h('input', { name: 'description', maxlength: '500' })),
  ], marking(async (d, el) => {
    const body = { store_id: String(d.get('store_id')).trim(), product: String(d.get('product')).trim(), start_date: d.get('start_date'), end_date: d.get('end_date') };
    if (d.get('description')) body.description = String(d.get('description'));
    await post(`${api1}/planned-promotions`, body);
    announce('Promotion planned: the next forecast run uses it.', 'ok');
    for (const k of ['start_date', 'end_date', 'description']) el.querySelector(`[name=${k}]`).value = '';
    await list.reload();
  }), 'Plan promotion');
  return section('Planned promotions', list, h('h3', {}, 'Plan a promotion'), add);
}

// ---- weather outlook ---------------------------------------------------------------------------

async function weatherSection(api1, stores) {
  const { items } = await get(`${api1}/weather-outlook`);
  const cities = [...new Set(stores.map((s) => s.city))].sort();
  const body = h('tbody', {});
  const rowsLabel = h('p', { class: 'hint', 'aria-live': 'polite' });
  const count1 = () => { rowsLabel.textContent = `${body.children.length} row(s) in the table${body.children.length ? '' : ': without an outlook the forecasts use the season\'s usual weather per city'}.`; };
  let n = 0;
  const addRow = (r = {}) => {
    n += 1;
    const k = n;
    const tr = h('tr', {},
      h('td', {}, h('input', { name: 'city', value: r.city || '', 'aria-label': `City, row ${k}`, list: 'weather-cities', required: true })),
      h('td', {}, h('input', { name: 'date', type: 'date', value: r.date || '', 'aria-label': `Date, row ${k}`, required: true })),
      h('td', {}, (() => { const s = select('weather', WEATHER, r.weather || 'Sunny'); s.setAttribute('aria-label', `Weather, row ${k}`); return s; })()),
      h('td', {}, h('button', { type: 'button', class: 'link-button', onClick: () => { tr.remove(); count1(); } }, `Remove row ${k}`)));
    body.append(tr);
    count1();
    return tr;
  };
  for (const r of items) addRow(r);
  count1();
  const csv = h('textarea', { name: 'csv', rows: '4', placeholder: 'city,date,weather\nSeattle,2024-01-02,Rainy' });
  const csvOut = h('div', { 'aria-live': 'polite' });
  const loadCsv = () => {
    csvOut.replaceChildren();
    const lines = String(csv.value).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    if (lines.length && /^city\s*,/i.test(lines[0])) lines.shift();
    const bad = [];
    const rows = [];
    lines.forEach((l, i) => {
      const [city, date, weather] = l.split(',').map((x) => (x || '').trim());
      const w = WEATHER.find((x) => x.toLowerCase() === String(weather).toLowerCase());
      if (!city || !/^\d{4}-\d{2}-\d{2}$/.test(date || '') || !w) bad.push(`line ${i + 1}: "${l}" is not city,YYYY-MM-DD,${WEATHER.join('|')}`);
      else rows.push({ city, date, weather: w });
    });
    if (bad.length) {
      csvOut.append(h('div', { class: 'problem', role: 'alert' }, h('h2', {}, 'Some lines were not loaded'), h('ul', {}, bad.slice(0, 20).map((b) => h('li', {}, b)))));
    }
    for (const r of rows) addRow(r);
    if (!bad.length) csv.value = '';
    if (rows.length) csvOut.append(h('p', { class: 'hint' }, `${rows.length} row(s) added to the table; Save outlook to keep them.`));
  };
  const editor = form({ 'aria-label': 'Weather outlook', class: 'weather-editor' }, [
    h('div', { class: 'table-wrap' }, h('table', {},
      h('caption', { class: 'visually-hidden' }, 'Weather outlook per city and day'),
      h('thead', {}, h('tr', {}, ['City', 'Date', 'Weather', 'Remove'].map((t) => h('th', { scope: 'col' }, t)))),
      body)),
    h('datalist', { id: 'weather-cities' }, cities.map((c) => h('option', { value: c }))),
    rowsLabel,
    h('div', { class: 'actions' }, h('button', { type: 'button', onClick: () => { addRow().querySelector('input').focus(); } }, 'Add a row')),
    h('details', {}, h('summary', {}, 'Paste CSV (city,date,weather)'),
      field('CSV lines', csv, `one row a line; weather is one of ${WEATHER.join(', ')}`),
      h('div', { class: 'actions' }, h('button', { type: 'button', onClick: loadCsv }, 'Add the CSV rows to the table')), csvOut),
  ], marking(async () => {
    const rows = [...body.children].map((tr) => ({
      city: tr.querySelector('[name=city]').value.trim(), date: tr.querySelector('[name=date]').value, weather: tr.querySelector('[name=weather]').value,
    }));
    const r = await api('PUT', `${api1}/weather-outlook`, { body: { items: rows } });
    announce(`Weather outlook saved (${r ? r.items : rows.length} row(s)); the next forecast run uses it.`, 'ok');
    const status = document.getElementById('status');
    if (status) status.scrollIntoView({ block: 'nearest' });
  }), 'Save outlook');
  return section('Weather outlook',
    h('p', { class: 'hint' }, 'The weather per city and day for the forecast horizon. Saving replaces the whole outlook; an empty table removes it.'),
    editor);
}

