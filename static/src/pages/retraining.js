// Retraining: the project's policy (a cron schedule, an accuracy threshold, a drift threshold),
// "Retrain now", the retrainings it started and the drift reports of new dataset versions.
import { h, field, select } from '../lib/dom.js';
import { all, api, get, post } from '../lib/api.js';
import { enc } from '../lib/router.js';
import { actionButton, announce, badge, facts, form, link, section, table } from '../lib/widgets.js';
import { barChart } from '../lib/charts.js';
import { day, number, percent, shortId, when } from '../lib/format.js';
import { livePoll, marking, region, unchanged } from './live.js';

const MOVING = ['queued', 'training', 'proposed'];
const REASONS = { schedule: 'schedule', drift: 'drift', accuracy: 'accuracy', manual: 'manual (Retrain now)' };

export async function retrainingSection({ project: p, base, session }) {
  const api1 = `/api/v1/projects/${enc(p.id)}`;
  const [models, compute] = await Promise.all([
    get(`${api1}/models`).then((m) => m.items),
    all(`${api1}/compute`).then((c) => c.filter((x) => !['deleted', 'deleting', 'rejected', 'failed'].includes(x.state))),
  ]);
  const retrainings = await retrainingsSection(api1, base);
  const policy = await policySection(api1, models, compute, session, retrainings);
  return h('div', {},
    h('h1', {}, 'Retraining'),
    h('p', {}, 'A retraining trains the production model again on the latest data with its parameters, registers the result and proposes it for production through the normal gates (a platform admin approves, unless an admin let the policy do it).'),
    policy, retrainings, await driftSection(api1, base));
}

// ---- the policy --------------------------------------------------------------------------------

const zones = (() => {
  try { return Intl.supportedValuesOf('timeZone'); } catch { return ['UTC', 'America/New_York', 'America/Chicago', 'America/Denver', 'America/Los_Angeles', 'America/Mexico_City', 'America/Toronto', 'Europe/London']; }
})();

async function policySection(api1, models, compute, session, retrainings) {
  const isAdmin = session.me.roles.includes('PlatformAdmin');
  const body = await region(async (reload) => {
    let pol = null;
    try {
      pol = await get(`${api1}/retraining-policy`);
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    const production = models.filter((m) => m.aliases && m.aliases.production);
    const modelName = pol ? pol.model : (production[0] || models[0] || {}).name;
    const local = compute.find((c) => c.kind === 'local' && c.state === 'ready');
    const computeName = pol ? pol.compute : (local || compute[0] || {}).name;
    const modelSel = models.length
      ? select('model', models.map((m) => [m.name, `${m.name}${m.aliases && m.aliases.production ? ` (production v${m.aliases.production})` : ' (no production version)'}`]), modelName)
      : h('input', { name: 'model', required: true, value: modelName || '' });
    const computeSel = compute.length
      ? select('compute', compute.map((c) => [c.name, `${c.name} (${c.kind === 'local' ? 'local' : `${c.kind}, ${c.vm_size}`}, ${c.state.replace(/_/g, ' ')})`]), computeName)
      : h('input', { name: 'compute', required: true, value: computeName || '' });
    const num = (name, value, hint, label) => field(label, h('input', { name, type: 'number', step: 'any', inputmode: 'decimal', value: value == null ? '' : String(value) }), hint);
    const state = pol ? facts([
      ['Status', pol.enabled ? h('span', { class: 'badge badge-ok' }, 'enabled') : h('span', { class: 'badge badge-muted' }, 'manual only')],
      ['Schedule', pol.cron ? h('span', {}, h('code', {}, pol.cron), ` (${pol.timezone})`) : 'none'],
      ['Next firing', h('span', { 'data-next-fire': pol.next_fire_at || '' }, pol.next_fire_at ? when(pol.next_fire_at) : (pol.enabled && pol.cron ? '—' : 'not scheduled'))],
      ['Last fired', when(pol.last_fired_at)],
      ['Last reason', pol.last_reason ? REASONS[pol.last_reason] || pol.last_reason : '—'],
      pol.auto_promote_to_production ? ['Auto-promotion', `allowed by ${pol.auto_promote_granted_by || 'a platform admin'} ${when(pol.auto_promote_granted_at)}`] : null,
      ['Changed', `${when(pol.updated_at)}${pol.updated_by ? ` by ${shortId(pol.updated_by)}` : ''} (version ${pol.version})`],
    ]) : h('p', { class: 'empty' }, 'No policy yet: retraining happens only when someone asks. Save one below.');
    const editor = form({ 'aria-label': 'Retraining policy' }, [
      h('div', { class: 'check' }, h('input', { type: 'checkbox', id: 'policy-enabled', name: 'enabled', checked: pol ? pol.enabled : true }),
        h('label', { for: 'policy-enabled' }, 'Enabled: the schedule, drift and accuracy retrain automatically')),
      h('div', { class: 'grid2' },
        field('Schedule (cron)', h('input', { name: 'cron', value: pol ? pol.cron || '' : '0 3 * * MON', autocomplete: 'off', spellcheck: 'false' }),
          'minute hour day-of-month month day-of-week, e.g. 0 3 * * MON, or @daily; empty: no schedule'),
        field('Time zone', h('input', { name: 'timezone', value: pol ? pol.timezone : 'UTC', list: 'policy-zones', autocomplete: 'off' }), 'the schedule is read in this IANA time zone'),
        num('accuracy_wape_threshold', pol ? pol.accuracy_wape_threshold : null, 'retrain when a week\'s WAPE passes it, e.g. 0.25 for 25%; empty: never', 'Accuracy threshold (WAPE)'),
        num('drift_psi_threshold', pol ? pol.drift_psi_threshold : 0.2, 'retrain when a new dataset version drifts past it (PSI); empty: never', 'Drift threshold (PSI)'),
        field('Model', modelSel, 'its production version is retrained'),
        field('Compute', computeSel, 'where the retraining runs')),
      h('datalist', { id: 'policy-zones' }, zones.map((z) => h('option', { value: z }))),
      h('div', { class: 'check' }, h('input', { type: 'checkbox', id: 'policy-auto', name: 'auto_promote_to_production', checked: pol ? pol.auto_promote_to_production : false, 'aria-describedby': 'policy-auto-hint' }),
        h('label', { for: 'policy-auto' }, 'Promote to production automatically when the gates pass')),
      h('p', { class: 'hint', id: 'policy-auto-hint' }, isAdmin
        ? 'As a platform admin you hand your approval of production promotions to the policy; it is audited with your name.'
        : 'Only a platform admin may switch this on.'),
    ], marking(async (d) => {
      const numOrNull = (k) => { const v = String(d.get(k) || '').trim(); return v === '' ? null : Number(v); };
      const cron = String(d.get('cron') || '').trim();
      const put = {
        enabled: d.get('enabled') === 'on', cron: cron || null, timezone: String(d.get('timezone') || '').trim() || 'UTC',
        accuracy_wape_threshold: numOrNull('accuracy_wape_threshold'), drift_psi_threshold: numOrNull('drift_psi_threshold'),
        model: String(d.get('model')), compute: String(d.get('compute')), auto_promote_to_production: d.get('auto_promote_to_production') === 'on',
      };
      const saved = await api('PUT', `${api1}/retraining-policy`, { body: put, ifMatch: pol && pol.$etag });
      announce(`Retraining policy saved${saved.next_fire_at ? `; it next fires ${when(saved.next_fire_at)}` : ''}.`, 'ok');
      await reload();
    }), pol ? 'Save policy' : 'Create policy');
    return [state, h('h3', {}, pol ? 'Change the policy' : 'Set a policy'), editor];
  }, { class: 'policy' });
  const now = actionButton('Retrain now', async () => {
    const r = await post(`${api1}/retraining-policy/trigger`);
    announce(`Retraining ${shortId(r.id)} queued: it trains ${r.model} again from v${r.base_version}.`, 'ok');
    await retrainings.reload();
    await body.reload();
  }, { kind: 'primary' });
  return section('Policy', body,
    h('h3', {}, 'Retrain now'),
    h('p', { class: 'hint' }, 'Retrains the policy\'s model at once, enabled or not; one retraining at a time.'),
    h('div', { class: 'actions' }, now));
}

// ---- retrainings ---------------------------------------------------------------------------------

async function retrainingsSection(api1, base) {
  let items = [];
  const note = h('p', { class: 'hint live-note', 'aria-live': 'polite', id: 'retrainings-live' });
  const same = unchanged();
  const list = await region(async () => {
    items = (await get(`${api1}/retrainings`, { limit: 20 })).items;
    if (same(items)) return undefined;
    return table('!Retrainings', [
      { label: 'Retraining', value: (r) => h('code', {}, shortId(r.id)) },
      { label: 'Why', value: (r) => REASONS[r.reason] || r.reason },
      { label: 'State', value: (r) => badge(r.state) },
      { label: 'Model', value: (r) => link(`${base}/models/${enc(r.model)}`, `${r.model}${r.base_version ? ` from v${r.base_version}` : ''}`) },
      { label: 'Run', value: (r) => (r.run_id ? link(`${base}/runs/${r.run_id}`, shortId(r.run_id)) : '—') },
      { label: 'New version', value: (r) => (r.model_version ? `v${r.model_version}` : '—') },
      { label: 'Promotion', value: (r) => (r.promotion_id ? link(`${base}/models/${enc(r.model)}`, shortId(r.promotion_id)) : '—') },
      { label: 'Operation', value: (r) => (r.operation_id ? link(`/operations/${r.operation_id}`, shortId(r.operation_id)) : '—') },
      { label: 'By', value: (r) => (String(r.triggered_by).startsWith('system:') ? r.triggered_by : shortId(r.triggered_by)) },
      { label: 'Started', value: (r) => when(r.created_at), class: 'nowrap' },
      { label: 'Error', value: (r) => (r.error ? h('span', { class: 'error' }, typeof r.error === 'string' ? r.error : (r.error.message || JSON.stringify(r.error))) : '') },
    ], items, { empty: 'No retrainings yet.', rowLabel: (r) => `retraining-${r.reason}-${r.state}` });
  }, { class: 'retrainings' });
  livePoll(note, 2000, () => items.some((r) => MOVING.includes(r.state)), list.reload,
    () => 'A retraining is in progress: this list updates every two seconds.');
  const sec = section('Retrainings', list, note);
  sec.reload = async () => { await list.reload(); if (items.some((r) => MOVING.includes(r.state))) note.textContent = 'A retraining is in progress: this list updates every two seconds.'; };
  return sec;
}

// ---- drift -----------------------------------------------------------------------------------------

async function driftSection(api1, base) {
  const { items } = await get(`${api1}/drift-reports`, { limit: 50 });
  return section('Drift reports',
    h('p', { class: 'hint' }, 'Each new dataset version is compared with the data the production model was trained on: the population stability index (PSI) per feature, and shifts in level per store and product.'),
    table('!Drift reports', [
      { label: 'Report', value: (d) => link(`${base}/drift/${enc(d.id)}`, `${d.dataset} v${d.dataset_version}`) },
      { label: 'Against', value: (d) => `v${d.reference_version} (${d.model} v${d.model_version})` },
      { label: 'Max PSI', value: (d) => `${number(d.max_psi)}${d.max_psi_feature ? ` (${d.max_psi_feature})` : ''}`, class: 'num' },
      { label: 'Threshold', value: (d) => number(d.threshold), class: 'num' },
      { label: 'Drifted', value: (d) => (d.drifted ? h('span', { class: 'badge badge-bad' }, 'drifted') : h('span', { class: 'badge badge-ok' }, 'stable')) },
      { label: 'Shifted series', value: (d) => (d.shifted_series == null ? '—' : d.shifted_series), class: 'num' },
      { label: 'Retraining', value: (d) => (d.retraining_id ? h('code', {}, shortId(d.retraining_id)) : '—') },
      { label: 'Created', value: (d) => when(d.created_at), class: 'nowrap' },
    ], items, { empty: 'No drift reports yet: one is made for each new version of the production model\'s dataset.', rowLabel: (d) => `drift-${d.dataset}-${d.dataset_version}` }));
}

export async function driftReportPage({ project: p, base }, id) {
  const d = await get(`/api/v1/projects/${enc(p.id)}/drift-reports/${enc(id)}`);
  const rep = d.report || {};
  const features = [...(rep.features || [])].sort((a, b) => b.psi - a.psi);
  const ls = rep.level_shift || {};
  const w = rep.window || {};
  const psiSummary = `PSI per feature, threshold ${number(d.threshold)}: ${features.map((f) => `${f.feature} ${number(f.psi)}`).join(', ')}`;
  return h('div', { 'data-drifted': String(d.drifted) },
    h('p', { class: 'breadcrumb' }, link(`${base}/retraining`, 'Retraining'), ' / drift report'),
    h('h1', {}, `Drift of ${d.dataset} v${d.dataset_version} `, d.drifted ? h('span', { class: 'badge badge-bad' }, 'drifted') : h('span', { class: 'badge badge-ok' }, 'stable')),
    section('Summary', facts([
      ['Max PSI', h('strong', {}, `${number(d.max_psi)}${d.max_psi_feature ? ` (${d.max_psi_feature})` : ''}`)],
      ['Threshold', number(d.threshold)],
      ['Compared', `v${d.dataset_version} against v${d.reference_version}, the data of ${d.model} v${d.model_version}`],
      ['Window', w.first_date ? `${day(w.first_date)} to ${day(w.last_date)} (${w.days} days)` : '—'],
      ['Retraining', d.retraining_id ? h('code', {}, shortId(d.retraining_id)) : 'none'],
      d.operation_id ? ['Operation', link(`/operations/${d.operation_id}`, shortId(d.operation_id))] : null,
      ['Created', when(d.created_at)],
    ])),
    section('PSI per feature',
      h('p', { class: 'hint' }, 'Below 0.1: stable; 0.1 to 0.2: moderate; above 0.2: a significant shift.'),
      features.length ? h('figure', {}, h('figcaption', {}, 'Population stability index by feature'),
        barChart(psiSummary, features.map((f) => f.feature), features.map((f) => f.psi), { label: 'PSI', horizontal: true, height: Math.max(160, 34 * features.length) })) : null,
      table('!PSI per feature', [
        { label: 'Feature', value: (f) => f.feature },
        { label: 'Kind', value: (f) => f.kind },
        { label: 'PSI', value: (f) => number(f.psi), class: 'num' },
        { label: 'Verdict', value: (f) => (f.psi > d.threshold ? h('span', { class: 'badge badge-bad' }, 'over threshold') : h('span', { class: 'badge badge-ok' }, 'within')) },
        { label: 'Bins', value: (f) => h('details', {}, h('summary', {}, `${(f.bins || []).length}${f.bins_total ? ` of ${f.bins_total}` : ''} bin(s)`),
          table(`Bins of ${f.feature}`, [
            { label: 'Bin', value: (b) => b.bin },
            { label: 'Reference', value: (b) => percent(b.reference), class: 'num' },
            { label: 'Current', value: (b) => percent(b.current), class: 'num' },
          ], f.bins || [])) },
      ], features, { empty: 'No features in this report.', rowLabel: (f) => `feature-${f.feature}` })),
    section('Level shifts per store and product',
      facts([
        ['Baseline', ls.baseline === 'same_window_last_year' ? 'the same days a year earlier' : ls.baseline === 'whole_reference' ? 'the whole reference' : ls.baseline],
        ['Threshold', ls.threshold == null ? '—' : percent(ls.threshold)],
        ['Series', ls.series], ['Shifted', ls.shifted], ['New series', ls.new_series], ['Missing series', ls.missing_series],
      ]),
      table(`Most shifted series${ls.truncated ? ' (the top ones)' : ''}`, [
        { label: 'Store', value: (s) => s.store_id },
        { label: 'Product', value: (s) => s.product },
        { label: 'Before (units a day)', value: (s) => number(s.reference_mean_daily), class: 'num' },
        { label: 'Now (units a day)', value: (s) => number(s.current_mean_daily), class: 'num' },
        { label: 'Change', value: (s) => (s.relative_change == null ? 'new' : `${s.relative_change > 0 ? '+' : ''}${percent(s.relative_change)}`), class: 'num' },
      ], ls.top || [], { empty: 'No series moved.' })));
}

