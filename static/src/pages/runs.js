// Training runs: start one, follow its log live, read its metrics, compare runs, register the
// result as a model version.
import { h, field, select, replace } from '../lib/dom.js';
import { api, download, get, post } from '../lib/api.js';
import { enc, every, navigate } from '../lib/router.js';
import { actionButton, badge, facts, form, jsonBlock, link, problemView, section, table } from '../lib/widgets.js';
import { lineChart } from '../lib/charts.js';
import { bytes, duration, number, percent, when } from '../lib/format.js';

const ACTIVE = ['queued', 'preparing', 'running'];
const METRICS = [['wape', 'WAPE', percent], ['mape', 'MAPE', percent], ['rmse', 'RMSE', number], ['bias', 'Bias', percent], ['coverage80', '80% interval coverage', percent], ['coverage95', '95% interval coverage', percent]];
const overall = (r) => (r.metrics && r.metrics.overall) || {};

export async function runsSection({ project: p, base }) {
  const pBase = `/api/v1/projects/${enc(p.id)}`;
  const [runs, datasets, compute] = await Promise.all([
    get(`${pBase}/runs`, { limit: 100 }), get(`${pBase}/datasets`), get(`${pBase}/compute`, { state: 'ready', limit: 200 }),
  ]);
  const compareButton = h('button', { type: 'button' }, 'Compare selected runs');
  const note = h('span', { class: 'hint', 'aria-live': 'polite' });
  const list = table('!Runs', [
    { label: 'Run', value: (r) => link(`${base}/runs/${r.id}`, `#${r.number}`) },
    { label: 'Compare', value: (r) => h('input', { type: 'checkbox', name: 'compare', value: r.id, 'aria-label': `Compare run ${r.number}` }) },
    { label: 'State', value: (r) => badge(r.state) },
    { label: 'Algorithm', value: (r) => r.algorithm },
    { label: 'Data', value: (r) => `${r.dataset} v${r.dataset_version}` },
    { label: 'WAPE', value: (r) => percent(overall(r).wape), class: 'num' },
    { label: 'Experiment', value: (r) => r.experiment },
    { label: 'Duration', value: (r) => duration(r.running_at || r.queued_at, r.finished_at) },
    { label: 'Queued', value: (r) => when(r.queued_at) },
  ], runs.items, { empty: 'No runs yet.', rowLabel: (r) => `run-${r.number}` });
  compareButton.addEventListener('click', () => {
    const ids = [...document.querySelectorAll('input[name=compare]:checked')].map((c) => c.value);
    if (ids.length < 2) { note.textContent = 'Choose at least two runs.'; return; }
    navigate(`${base}/compare?runs=${ids.join(',')}`);
  });
  return h('div', {},
    h('h1', {}, 'Runs'),
    list,
    runs.items.length > 1 ? h('div', { class: 'actions' }, compareButton, note) : null,
    startForm(p, base, datasets.items, compute.items.filter((c) => c.kind === 'local')));
}

function startForm(p, base, datasets, compute) {
  if (!datasets.length || !compute.length) {
    return section('Start a run', h('p', {}, 'A run needs a dataset with a ready version and a ready local compute target. ',
      link(`${base}/datasets`, 'Datasets'), ' · ', link(`${base}/compute`, 'Compute')));
  }
  const params = h('textarea', { name: 'params', rows: '3', placeholder: '{"max_depth": 8, "eta": 0.1}' });
  return section('Start a run', form({ 'aria-label': 'Start a run' }, [
    h('div', { class: 'grid2' },
      field('Dataset', select('dataset', datasets.map((d) => d.name))),
      field('Dataset version', h('input', { name: 'dataset_version', type: 'number', min: '1' }), 'empty: the latest ready version'),
      field('Compute', select('compute', compute.map((c) => c.name))),
      field('Algorithm', select('algorithm', [['xgboost', 'XGBoost (gradient-boosted trees)'], ['seasonal_naive', 'seasonal naive (baseline)'], ['moving_average', 'moving average (baseline)']], 'xgboost')),
      field('Horizon (days)', h('input', { name: 'horizon_days', type: 'number', min: '1', max: '90', value: '14' })),
      field('Backtest (days)', h('input', { name: 'backtest_days', type: 'number', min: '7', max: '365', value: '28' })),
      field('Experiment', h('input', { name: 'experiment', pattern: '[a-z][a-z0-9\\-]{1,62}', value: 'default' }))),
    field('Parameters (JSON, optional)', params, 'XGBoost: max_depth, eta, num_round, subsample, colsample_bytree, …'),
  ], async (d) => {
    const body = { dataset: d.get('dataset'), compute: d.get('compute'), algorithm: d.get('algorithm'), horizon_days: Number(d.get('horizon_days')), backtest_days: Number(d.get('backtest_days')), experiment: d.get('experiment') || 'default' };
    if (d.get('dataset_version')) body.dataset_version = Number(d.get('dataset_version'));
    const text = String(d.get('params') || '').trim();
    if (text) {
      try { body.params = JSON.parse(text); } catch { throw new Error('the parameters are not valid JSON'); }
    }
    const r = await post(`/api/v1/projects/${enc(p.id)}/runs`, body);
    navigate(`${base}/runs/${r.id}`);
  }, 'Start run'));
}

export async function runPage({ project: p, base }, id) {
  const r = await get(`/api/v1/runs/${enc(id)}`);
  const logBox = h('pre', { class: 'log', tabindex: '0', 'aria-label': 'Run log', id: 'run-log' }, 'Loading the log…');
  const loadLog = async () => {
    const resp = await api('GET', `/api/v1/runs/${enc(id)}/logs`, { raw: true, accept: 'text/plain' });
    const text = await resp.text();
    const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 8;
    logBox.textContent = text || '(no log lines yet)';
    if (atBottom) logBox.scrollTop = logBox.scrollHeight;
  };
  loadLog().catch((err) => replace(logBox, String(err.message)));
  const root = h('div', { 'data-state': r.state },
    h('h1', {}, `Run #${r.number} `, badge(r.state)));
  if (ACTIVE.includes(r.state)) {
    root.append(h('p', { 'aria-live': 'polite' }, 'Live: the log and state update every two seconds.'));
    const t = every(2000, async () => {
      await loadLog().catch(() => {});
      const now = await get(`/api/v1/runs/${enc(id)}`).catch(() => null);
      if (now && now.state !== r.state) { clearInterval(t); navigate(window.location.pathname, { replace: true }); }
    });
  }
  const o = overall(r);
  // append() would write a skipped (null) section as the text "null"
  root.append(...[
    section('Run', facts([
      ['Algorithm', r.algorithm], ['Dataset', link(`${base}/datasets/${enc(r.dataset)}?version=${r.dataset_version}`, `${r.dataset} v${r.dataset_version}`)],
      ['Compute', r.compute || r.compute_id], ['Experiment', r.experiment], ['Horizon', `${r.horizon_days} days`],
      ['Backtest', `${r.backtest_days} days, ${r.rolling_origins} origin(s)`], ['Seed', r.seed],
      ['Queued', when(r.queued_at)], ['Running', when(r.running_at)], ['Finished', when(r.finished_at)],
      ['Duration', duration(r.running_at, r.finished_at)],
      r.operation_id ? ['Operation', link(`/operations/${r.operation_id}`, 'its actions')] : null,
      r.azure_job ? ['Azure ML job', r.azure_job.studio_url
        ? h('a', { href: r.azure_job.studio_url, rel: 'noopener' }, `${r.azure_job.name} (${r.azure_job.status || 'submitted'})`)
        : `${r.azure_job.name} (${r.azure_job.status || 'submitted'})`] : null,
    ]), Object.keys(r.params || {}).length ? h('details', {}, h('summary', {}, 'Parameters'), jsonBlock(r.params, 'Parameters')) : null),
    r.error ? section('Error', jsonBlock(r.error, 'Error')) : null,
    section('Log', logBox),
    r.metrics ? section('Backtest metrics', table('!Backtest metrics', [
      { label: 'Metric', value: (m) => m[1] },
      { label: r.algorithm, value: (m) => m[2](o[m[0]]), class: 'num' },
      ...Object.keys(r.metrics.baselines || {}).map((b) => ({ label: b.replace(/_/g, ' '), value: (m) => m[2](r.metrics.baselines[b][m[0]]), class: 'num' })),
    ], METRICS)) : null,
    await metricsChart(id),
    await artifactsSection(r)].filter(Boolean));
  if (r.state === 'completed') root.append(registerForm(p, base, r));
  if (ACTIVE.includes(r.state)) {
    root.append(h('div', { class: 'actions' }, actionButton('Cancel run', async () => { await post(`/api/v1/runs/${enc(id)}/cancel`); navigate(window.location.pathname, { replace: true }); }, { kind: 'danger', confirmText: 'Cancel this run?' })));
  }
  return root;
}

async function metricsChart(id) {
  let m;
  try { m = await get(`/api/v1/runs/${enc(id)}/metrics`); } catch (err) { return section('Training curves', problemView(err)); }
  const series = new Map();
  for (const it of m.items) {
    if (!it.name.startsWith('valid-')) continue;
    if (!series.has(it.name)) series.set(it.name, []);
    series.get(it.name).push({ x: it.step, y: it.value });
  }
  if (!series.size) return section('Training curves', h('p', {}, 'No per-round metrics (baselines have none, and a run reports them as it trains).'));
  const charts = [...series.entries()].map(([name, pts]) => h('figure', {}, h('figcaption', {}, `${name} by boosting round`),
    lineChart(`${name} over ${pts.length} boosting rounds, from ${number(pts[0].y)} to ${number(pts[pts.length - 1].y)}`, [{ label: name, points: pts }], { xLabel: 'round', height: 200 })));
  return section('Training curves', h('div', { class: 'grid2' }, charts));
}

async function artifactsSection(r) {
  if (!r.artifacts || !r.artifacts.length) return null;
  return section('Artifacts', table('!Artifacts', [
    { label: 'File', value: (a) => a.name },
    { label: 'Size', value: (a) => bytes(a.bytes), class: 'num' },
    { label: 'SHA-256', value: (a) => h('code', { class: 'hash' }, a.sha256.slice(0, 16)) },
    { label: 'Download', value: (a) => actionButton(`Download ${a.name}`, () => download(`/api/v1/runs/${enc(r.id)}/artifacts/${enc(a.name)}`, a.name, '*/*')) },
  ], r.artifacts));
}

function registerForm(p, base, r) {
  return section('Register as a model version', form({ 'aria-label': 'Register as a model version' }, [
    field('Model name', h('input', { name: 'model', required: true, pattern: '[a-z][a-z0-9\\-]{1,62}', value: 'demand' }), 'created if it does not exist'),
    field('Description', h('input', { name: 'description', maxlength: '2000' })),
  ], async (d) => {
    const mBase = `/api/v1/projects/${enc(p.id)}/models`;
    const name = String(d.get('model'));
    try {
      await get(`${mBase}/${enc(name)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      await post(mBase, { name });
    }
    await post(`${mBase}/${enc(name)}/versions`, { run_id: r.id, description: d.get('description') || '' });
    navigate(`${base}/models/${enc(name)}`);
  }, 'Register version'));
}

export async function comparePage({ query, base }) {
  const ids = (query.get('runs') || '').split(',').filter(Boolean).slice(0, 8);
  if (ids.length < 2) return h('div', {}, h('h1', {}, 'Compare runs'), h('p', {}, 'Choose two or more runs on the ', link(`${base}/runs`, 'runs page'), '.'));
  const runs = (await Promise.all(ids.map((id) => get(`/api/v1/runs/${enc(id)}`)))).sort((a, b) => a.number - b.number);
  const metrics = await Promise.all(runs.map((r) => r.id).map((id) => get(`/api/v1/runs/${enc(id)}/metrics`, { name: 'valid-wape' }).catch(() => ({ items: [] }))));
  const rows = [
    ['State', (r) => badge(r.state)], ['Algorithm', (r) => r.algorithm], ['Data', (r) => `${r.dataset} v${r.dataset_version}`],
    ['Horizon', (r) => `${r.horizon_days} days`], ['Backtest', (r) => `${r.backtest_days} days`],
    ...METRICS.map(([k, label, f]) => [label, (r) => f(overall(r)[k])]),
    ['Better than seasonal naive by', (r) => percent(r.metrics && r.metrics.improvement_vs_seasonal_naive)],
    ['Best iteration', (r) => (r.metrics && r.metrics.best_iteration) ?? '—'],
    ['Parameters', (r) => h('code', {}, JSON.stringify(r.params || {}))],
  ];
  const best = Math.min(...runs.map((r) => overall(r).wape ?? Infinity));
  const curves = metrics.map((m, i) => ({ label: `#${runs[i].number} ${runs[i].algorithm}`, points: m.items.map((it) => ({ x: it.step, y: it.value })) })).filter((s) => s.points.length);
  return h('div', {},
    h('h1', {}, `Compare runs ${runs.map((r) => `#${r.number}`).join(', ')}`),
    h('div', { class: 'table-wrap', role: 'region', 'aria-label': 'Comparison', tabindex: '0' }, h('table', { class: 'compare' },
      h('caption', { class: 'visually-hidden' }, 'Runs side by side; the lowest WAPE is marked best'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Metric'), runs.map((r) => h('th', { scope: 'col' }, link(`${base}/runs/${r.id}`, `Run #${r.number}`), overall(r).wape === best ? h('span', { class: 'badge badge-ok' }, 'best') : null)))),
      h('tbody', {}, rows.map(([label, f]) => h('tr', {}, h('th', { scope: 'row' }, label), runs.map((r) => h('td', {}, f(r)))))))),
    curves.length ? section('Validation WAPE by boosting round', lineChart(`Validation WAPE curves of ${curves.length} runs`, curves, { xLabel: 'round', yLabel: 'WAPE' })) : null);
}
