// Datasets: register, upload versions (with a progress bar), read what validation found and the
// profile of the data.
import { h, field, select, replace } from '../lib/dom.js';
import { download, get, post, upload } from '../lib/api.js';
import { enc, every, navigate } from '../lib/router.js';
import { actionButton, announce, badge, facts, form, link, problemView, section, table } from '../lib/widgets.js';
import { barChart, dailyChart } from '../lib/charts.js';
import { bytes, count, number, when } from '../lib/format.js';

const apiBase = (p) => `/api/v1/projects/${enc(p.id)}/datasets`;

export async function datasetsSection({ project: p, base }) {
  const list = await get(apiBase(p));
  return h('div', {},
    h('h1', {}, 'Datasets'),
    table('!Datasets', [
      { label: 'Dataset', value: (d) => link(`${base}/datasets/${enc(d.name)}`, d.name) },
      { label: 'Latest version', value: (d) => d.latest_version ?? '—', class: 'num' },
      { label: 'Description', value: (d) => d.description || '' },
      { label: 'Created', value: (d) => when(d.created_at) },
    ], list.items, { empty: 'No datasets yet: create one, then upload a CSV of sales.' }),
    section('New dataset', form({ 'aria-label': 'New dataset' }, [
      field('Name', h('input', { name: 'name', required: true, pattern: '[a-z][a-z0-9\\-]{1,62}' }), 'lower-case, e.g. sales'),
      field('Description', h('input', { name: 'description', maxlength: '2000' })),
    ], async (d) => {
      const ds = await post(apiBase(p), { name: d.get('name'), description: d.get('description') || '' });
      navigate(`${base}/datasets/${enc(ds.name)}`);
    }, 'Create dataset')));
}

export async function datasetPage({ project: p, base, query }, name) {
  const dsBase = `${apiBase(p)}/${enc(name)}`;
  const [ds, versions] = await Promise.all([get(dsBase), get(`${dsBase}/versions`)]);
  const chosen = Number(query.get('version')) || (versions.items[0] && versions.items[0].number);
  const versionBox = h('div', {});
  if (chosen) replace(versionBox, await versionView(p, ds, chosen));
  return h('div', {},
    h('h1', {}, `Dataset ${ds.name}`),
    ds.description ? h('p', {}, ds.description) : null,
    uploadCard(p, ds, base),
    section('Versions', table('!Versions', [
      { label: 'Version', value: (v) => link(`${base}/datasets/${enc(name)}?version=${v.number}`, `v${v.number}`, { 'aria-current': v.number === chosen ? 'true' : null }) },
      { label: 'State', value: (v) => badge(v.state) },
      { label: 'Rows accepted', value: (v) => count(v.rows_accepted), class: 'num' },
      { label: 'Rows rejected', value: (v) => count(v.rows_rejected), class: 'num' },
      { label: 'Size', value: (v) => bytes(v.raw_bytes), class: 'num' },
      { label: 'On error', value: (v) => v.on_error },
      { label: 'Uploaded', value: (v) => when(v.created_at) },
    ], versions.items, { empty: 'No versions yet: upload a CSV above.' })),
    versionBox);
}

function uploadCard(p, ds, base) {
  const file = h('input', { type: 'file', name: 'file', accept: '.csv,.csv.gz,text/csv', required: true });
  const onError = select('on_error', [['reject', 'reject the version on any bad row'], ['quarantine', 'quarantine bad rows, keep the good ones']], 'quarantine');
  const bar = h('progress', { max: '100', value: '0', id: 'upload-progress' });
  const barLabel = h('label', { for: 'upload-progress' }, 'Upload progress');
  const pctText = h('span', { class: 'hint', 'aria-live': 'polite' }, '');
  const progress = h('div', { class: 'progress', hidden: true }, barLabel, bar, pctText);
  return section('Upload a new version',
    h('p', {}, 'A CSV with GloboJava\'s sales columns (Store ID, Date, Country, City, Product Category, Product, Quantity Sold, Price, Total Sale, Weather, Promotion, Holiday). The same bytes uploaded twice are recognised as the same version.'),
    form({ 'aria-label': 'Upload a new version' }, [field('CSV file', file, 'plain or gzip-compressed (.csv.gz)'), field('Bad rows', onError), progress],
      async (d) => {
        const f = file.files[0];
        if (!f) throw new Error('choose a file first');
        progress.hidden = false;
        bar.value = 0;
        const r = await upload(`${apiBase(p)}/${enc(ds.name)}/versions`, f, (loaded, total) => {
          const pct = total ? Math.round((loaded / total) * 100) : 0;
          bar.value = pct;
          pctText.textContent = `${pct}% of ${bytes(total)}`;
        }, { on_error: d.get('on_error') });
        bar.value = 100;
        announce(r.status === 200 ? `These bytes are already version ${r.body.number}.` : `Uploaded: version ${r.body.number} is being validated.`, 'ok');
        navigate(`${base}/datasets/${enc(ds.name)}?version=${r.body.number}`);
      }, 'Upload'));
}

async function versionView(p, ds, number) {
  const vBase = `${apiBase(p)}/${enc(ds.name)}/versions/${number}`;
  const v = await get(vBase);
  const box = h('section', { class: 'card', 'aria-label': `Version ${number}`, 'data-version-state': v.state },
    h('h2', {}, `Version ${number} `, badge(v.state)));
  if (['pending', 'ingesting'].includes(v.state)) {
    box.append(h('p', { 'aria-live': 'polite' }, 'Validating and profiling… this page updates by itself.'));
    const id = every(1500, async () => {
      const now = await get(vBase).catch(() => null);
      if (now && !['pending', 'ingesting'].includes(now.state)) { clearInterval(id); navigate(window.location.pathname + window.location.search, { replace: true }); }
    });
  }
  const result = v.result || {};
  box.append(facts([
    ['Rows read', count(v.rows_read)], ['Rows accepted', count(v.rows_accepted)], ['Rows rejected', count(v.rows_rejected)],
    ['Policy for bad rows', v.on_error], ['SHA-256 of the upload', h('code', {}, v.raw_sha256)],
    ['Canonical file', v.canonical_bytes != null ? bytes(v.canonical_bytes) : '—'], ['Uploaded', when(v.created_at)], ['Finished', when(v.finished_at)],
    result.reason ? ['Why', result.reason] : null,
  ]));
  const dl = h('div', { class: 'actions' });
  if (v.state === 'ready') dl.append(actionButton('Download canonical CSV', () => download(`${vBase}/canonical.csv`, `${ds.name}-v${number}.csv`)));
  if (v.quarantine_uri) dl.append(actionButton('Download quarantined rows', () => download(`${vBase}/quarantine.csv`, `${ds.name}-v${number}-quarantine.csv`)));
  box.append(dl);
  const header = result.header || {};
  const notes = [...(header.warnings || []), ...(header.missing_columns || []).map((c) => `missing column: ${c}`), ...(header.ignored_columns || []).map((c) => `ignored column: ${c}`)];
  if (notes.length) box.append(h('h3', {}, 'Header'), h('ul', {}, notes.map((n) => h('li', {}, typeof n === 'string' ? n : JSON.stringify(n)))));
  const errors = result.errors || [];
  box.append(h('h3', {}, 'Validation errors'),
    table(`First ${errors.length} row errors`, [
      { label: 'Line', value: (e) => e.line ?? '—', class: 'num' },
      { label: 'Column', value: (e) => e.column || e.field || '—' },
      { label: 'Value', value: (e) => h('code', {}, e.value ?? '') },
      { label: 'Reason', value: (e) => e.reason || '' },
    ], errors, { empty: 'No row errors.' }));
  if (v.state === 'ready') box.append(await profileView(vBase));
  return box;
}

async function profileView(vBase) {
  let prof;
  try {
    prof = await get(`${vBase}/profile`);
  } catch (err) {
    return problemView(err);
  }
  const distinct = prof.distinct || {};
  const freq = (key) => (distinct[key] ? distinct[key].values : []);
  const products = freq('product');
  const stores = freq('store_id');
  const numeric = prof.numeric || {};
  const wrap = h('div', { class: 'profile' },
    h('h3', {}, 'Profile'),
    facts([
      ['Rows', count(prof.rows)],
      ['Dates', prof.date_range ? `${prof.date_range.min} to ${prof.date_range.max} (${count(prof.date_range.days)} days)` : '—'],
      ['Stores', count(distinct.store_id && distinct.store_id.count)], ['Products', count(distinct.product && distinct.product.count)],
      ['Countries', freq('country').map((c) => c.value).join(', ')],
    ]),
    h('div', { class: 'grid2' },
      h('figure', {}, h('figcaption', {}, 'Rows per product'), barChart(`Rows per product: ${products.map((x) => `${x.value} ${x.count}`).join(', ')}`, products.map((x) => x.value), products.map((x) => x.count), { height: 220, horizontal: true })),
      h('figure', {}, h('figcaption', {}, 'Rows per store'), barChart(`Rows per store: ${stores.map((x) => `${x.value} ${x.count}`).join(', ')}`, stores.map((x) => x.value), stores.map((x) => x.count), { height: 220, horizontal: true }))),
    table('Numeric columns', [
      { label: 'Column', value: (r) => r[0] },
      ...['min', 'p05', 'p50', 'mean', 'p95', 'max'].map((k) => ({ label: k, value: (r) => number(r[1][k]), class: 'num' })),
    ], Object.entries(numeric)),
    table('Missing values', [
      { label: 'Column', value: (r) => r[0] }, { label: 'Missing', value: (r) => count(r[1]), class: 'num' },
    ], Object.entries(prof.missing || {}).filter(([, n]) => n > 0), { empty: 'No missing values.' }));
  if (stores.length) wrap.append(await dailyTotals(vBase, stores.map((s) => s.value)));
  return wrap;
}

async function dailyTotals(vBase, stores) {
  const storeSel = select('store', stores, stores[0]);
  const chartBox = h('div', {});
  const show = async () => {
    try {
      const t = await get(`${vBase}/daily-totals`, { store: storeSel.value });
      const byProduct = new Map();
      for (const it of t.items) {
        if (!byProduct.has(it.product)) byProduct.set(it.product, new Map());
        byProduct.get(it.product).set(it.day, it.quantity);
      }
      const days = [...new Set(t.items.map((i) => i.day))].sort();
      const series = [...byProduct.entries()].map(([label, m]) => ({ label, values: days.map((d) => m.get(d) ?? 0) }));
      replace(chartBox, dailyChart(`Daily units sold per product at ${storeSel.value}, ${days[0]} to ${days[days.length - 1]}`, days, series, { height: 300 }));
    } catch (err) {
      replace(chartBox, problemView(err));
    }
  };
  storeSel.addEventListener('change', show);
  await show();
  return h('figure', {}, h('figcaption', {}, 'Daily units sold per product'), field('Store', storeSel), chartBox);
}

