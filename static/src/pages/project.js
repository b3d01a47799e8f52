// A project and its sections: datasets, compute, runs (and their comparison), models, forecasts,
// retraining (and drift reports), webhooks (and their delivery logs), operations.
import { h } from '../lib/dom.js';
import { get } from '../lib/api.js';
import { enc } from '../lib/router.js';
import { badge, facts, link, section, table } from '../lib/widgets.js';
import { money, percent, shortId, when } from '../lib/format.js';
import { datasetsSection, datasetPage } from './datasets.js';
import { computeSection, computePage } from './compute.js';
import { runsSection, runPage, comparePage } from './runs.js';
import { modelsSection, modelPage } from './models.js';
import { forecastsSection } from './forecasts.js';
import { retrainingSection, driftReportPage } from './retraining.js';
import { webhooksSection, webhookPage } from './webhooks.js';

const SECTIONS = [
  ['', 'Overview'], ['datasets', 'Datasets'], ['compute', 'Compute'], ['runs', 'Runs'],
  ['models', 'Models'], ['forecasts', 'Forecasts'], ['retraining', 'Retraining'], ['webhooks', 'Webhooks'],
  ['operations', 'Operations'],
];

export async function projectPage({ params, query, session }) {
  const { project, section: sec = '', item } = params;
  const p = await get(`/api/v1/projects/${enc(project)}`);
  const base = `/projects/${enc(project)}`;
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Project sections' }, h('ul', {}, SECTIONS.map(([s, label]) => {
    const active = s === sec || (s === 'runs' && sec === 'compare') || (s === 'retraining' && sec === 'drift');
    return h('li', {}, h('a', { href: s ? `${base}/${s}` : base, 'aria-current': active ? 'page' : null }, label));
  })));
  const ctx = { project: p, base, query, session };
  let body;
  if (sec === '') body = await overview(ctx);
  else if (sec === 'datasets') body = item ? await datasetPage(ctx, item) : await datasetsSection(ctx);
  else if (sec === 'compute') body = item ? await computePage(ctx, item) : await computeSection(ctx);
  else if (sec === 'runs') body = item ? await runPage(ctx, item) : await runsSection(ctx);
  else if (sec === 'compare') body = await comparePage(ctx);
  else if (sec === 'models') body = item ? await modelPage(ctx, item) : await modelsSection(ctx);
  else if (sec === 'forecasts') body = await forecastsSection(ctx);
  else if (sec === 'retraining') body = await retrainingSection(ctx);
  else if (sec === 'drift' && item) body = await driftReportPage(ctx, item);
  else if (sec === 'webhooks') body = item ? await webhookPage(ctx, item) : await webhooksSection(ctx);
  else if (sec === 'operations') body = await operationsSection(ctx);
  else body = h('p', {}, 'There is no such section.');
  return h('div', {},
    h('p', { class: 'breadcrumb' }, link('/', 'Home'), ' / ', h('span', {}, p.display_name)),
    tabs, body);
}

async function overview({ project: p, base }) {
  const [members, quotas] = await Promise.all([
    get(`${base.replace('/projects', '/api/v1/projects')}/members`),
    get(`${base.replace('/projects', '/api/v1/projects')}/quotas`),
  ]);
  return h('div', {},
    h('h1', {}, p.display_name),
    p.description ? h('p', {}, p.description) : null,
    section('Budget and rules', facts([
      ['Monthly budget', money(p.monthly_budget_usd)],
      ['Promotion margin over seasonal-naive', percent(p.promotion_margin)],
      ['Champion tolerance', percent(p.champion_tolerance)],
      ['Your role', p.my_role || 'platform admin'],
      ['Created', when(p.created_at)],
    ])),
    section('Compute quotas', table('!Quotas', [
      { label: 'VM family', value: (q) => q.family },
      { label: 'Nodes allowed', value: (q) => q.max_nodes, class: 'num' },
      { label: 'In use', value: (q) => q.in_use, class: 'num' },
    ], quotas.items, { empty: 'No quota set: cloud compute needs an admin\'s approval. Local compute needs none.' })),
    section('Members', table('!Members', [
      { label: 'Name', value: (m) => m.name },
      { label: 'Role', value: (m) => m.role },
      { label: 'Added', value: (m) => when(m.added_at) },
    ], members.items)));
}

async function operationsSection({ project: p }) {
  const page = await get('/api/v1/operations', { limit: 200 });
  const mine = page.items.filter((o) => o.subject.startsWith(`projects/${p.id}/`) || o.subject === `projects/${p.id}`);
  return h('div', {},
    h('h1', {}, 'Operations'),
    h('p', {}, 'Every change that touches infrastructure or training is an operation with an ordered plan of actions (Azure ML REST calls, Terraform, or local steps).'),
    table('!Operations', [
      { label: 'Operation', value: (o) => link(`/operations/${o.id}`, `${o.kind} ${shortId(o.id)}`) },
      { label: 'State', value: (o) => badge(o.state) },
      { label: 'Subject', value: (o) => h('code', {}, o.subject) },
      { label: 'Attempts', value: (o) => `${o.attempts}/${o.max_attempts}`, class: 'num' },
      { label: 'Created', value: (o) => when(o.created_at) },
    ], mine, { empty: 'No operations yet.' }));
}
