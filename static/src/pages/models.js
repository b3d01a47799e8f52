// Models: versions with their metrics, promotions with each gate's figure and verdict, four-eyes
// approval for production, and rollback.
import { h, field } from '../lib/dom.js';
import { get, post } from '../lib/api.js';
import { enc, every, navigate } from '../lib/router.js';
import { actionButton, badge, form, link, section, table } from '../lib/widgets.js';
import { percent, shortId, when } from '../lib/format.js';

const MOVING = ['evaluating', 'approved', 'deploying'];

export async function modelsSection({ project: p, base }) {
  const list = await get(`/api/v1/projects/${enc(p.id)}/models`);
  return h('div', {},
    h('h1', {}, 'Models'),
    table('!Models', [
      { label: 'Model', value: (m) => link(`${base}/models/${enc(m.name)}`, m.name) },
      { label: 'Production', value: (m) => (m.aliases.production ? `v${m.aliases.production}` : '—') },
      { label: 'Staging', value: (m) => (m.aliases.staging ? `v${m.aliases.staging}` : '—') },
      { label: 'Latest version', value: (m) => (m.latest_version ? `v${m.latest_version}` : '—') },
      { label: 'Created', value: (m) => when(m.created_at) },
    ], list.items, { empty: 'No models yet: register a completed run as a model version from its page.' }),
    section('New model', form({ 'aria-label': 'New model' }, [
      field('Name', h('input', { name: 'name', required: true, pattern: '[a-z][a-z0-9\\-]{1,62}' })),
      field('Description', h('input', { name: 'description', maxlength: '2000' })),
    ], async (d) => {
      const m = await post(`/api/v1/projects/${enc(p.id)}/models`, { name: d.get('name'), description: d.get('description') || '' });
      navigate(`${base}/models/${enc(m.name)}`);
    }, 'Create model')));
}

function gatesList(gates) {
  if (!gates || !gates.length) return h('span', { class: 'hint' }, 'not evaluated yet');
  return h('ul', { class: 'gates' }, gates.map((g) => h('li', {}, badge(g.verdict), ' ', h('strong', {}, g.gate.replace(/_/g, ' ')), `: ${g.detail}`)));
}

export async function modelPage({ project: p, base, session }, name) {
  const mBase = `/api/v1/projects/${enc(p.id)}/models/${enc(name)}`;
  const [m, versions, promotions] = await Promise.all([get(mBase), get(`${mBase}/versions`), get(`${mBase}/promotions`)]);
  const isAdmin = session.me.roles.includes('PlatformAdmin');
  const root = h('div', {}, h('h1', {}, `Model ${m.name}`), m.description ? h('p', {}, m.description) : null,
    h('p', {}, 'Production: ', h('strong', { 'data-alias': 'production' }, m.aliases.production ? `v${m.aliases.production}` : 'none'),
      ' · Staging: ', h('strong', { 'data-alias': 'staging' }, m.aliases.staging ? `v${m.aliases.staging}` : 'none')));
  if (promotions.items.some((x) => MOVING.includes(x.state))) {
    root.append(h('p', { 'aria-live': 'polite' }, 'A promotion is being evaluated or deployed… this page updates by itself.'));
    const t = every(1500, async () => {
      const now = await get(`${mBase}/promotions`).catch(() => null);
      if (now && !now.items.some((x) => MOVING.includes(x.state))) { clearInterval(t); navigate(window.location.pathname, { replace: true }); }
    });
  }
  const refresh = () => navigate(window.location.pathname, { replace: true });
  root.append(section('Versions', table('!Versions', [
    { label: 'Version', value: (v) => `v${v.version}` },
    { label: 'Aliases', value: (v) => (v.aliases.length ? v.aliases.map((a) => h('span', { class: `badge badge-${a === 'production' ? 'ok' : 'info'}` }, a)) : (v.archived ? badge('archived') : '—')) },
    { label: 'Algorithm', value: (v) => v.algorithm },
    { label: 'WAPE', value: (v) => percent(v.metrics && v.metrics.overall && v.metrics.overall.wape), class: 'num' },
    { label: 'vs seasonal naive', value: (v) => percent(v.metrics && v.metrics.improvement_vs_seasonal_naive), class: 'num' },
    { label: 'Run', value: (v) => link(`${base}/runs/${v.run_id}`, shortId(v.run_id)) },
    { label: 'Registered', value: (v) => when(v.created_at) },
    { label: 'Actions', value: (v) => (v.archived ? '' : h('div', { class: 'actions compact' },
      actionButton(`Propose v${v.version} for staging`, async () => { await post(`${mBase}/versions/${v.version}/promotions`, { target: 'staging' }); refresh(); }),
      actionButton(`Propose v${v.version} for production`, async () => { await post(`${mBase}/versions/${v.version}/promotions`, { target: 'production' }); refresh(); }, { kind: 'primary' }),
      actionButton(`Archive v${v.version}`, async () => { await post(`${mBase}/versions/${v.version}/archive`); refresh(); }, { confirmText: `Archive version ${v.version}? It stays readable but cannot be promoted.` }))) },
  ], versions.items, { empty: 'No versions yet.', rowLabel: (v) => `version-${v.version}` })));
  root.append(section('Promotions', table('!Promotions', [
    { label: 'Promotion', value: (x) => `v${x.version} → ${x.target}` },
    { label: 'State', value: (x) => badge(x.state) },
    { label: 'Gates', value: (x) => gatesList(x.gates) },
    { label: 'Champion', value: (x) => (x.champion ? `v${x.champion}` : '—') },
    { label: 'Decided', value: (x) => (x.decided_at ? `${when(x.decided_at)}${x.reason ? ` — ${x.reason}` : ''}` : '—') },
    { label: 'Operation', value: (x) => (x.operation_id ? link(`/operations/${x.operation_id}`, shortId(x.operation_id)) : '—') },
    { label: 'Proposed', value: (x) => when(x.created_at) },
  ], promotions.items, { empty: 'No promotions yet.', rowLabel: (x) => `promotion-${x.version}-${x.target}` })));
  if (isAdmin && m.aliases.production) {
    root.append(section('Roll back production', h('p', {}, 'Returns production to the version it pointed at before.'),
      form({ 'aria-label': 'Roll back production' }, [field('Reason', h('input', { name: 'reason', required: true, maxlength: '1000' }))], async (d) => {
        await post(`${mBase}/rollback`, { reason: d.get('reason') });
        refresh();
      }, 'Roll back')));
  }
  return root;
}
