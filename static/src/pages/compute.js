// Compute: ask for it with the cost in front of you, see the decision (quota, budget, or an
// admin's approval), the rendered Terraform and the provisioning operation.
import { h, field, select, replace } from '../lib/dom.js';
import { api, get, post } from '../lib/api.js';
import { enc, every, navigate } from '../lib/router.js';
import { actionButton, badge, facts, form, jsonBlock, link, problemView, section, table } from '../lib/widgets.js';
import { money, shortId, when } from '../lib/format.js';

const HOURS_A_MONTH = 730;
const BUSY = ['requested', 'approved', 'provisioning', 'deleting'];

export async function computeSection({ project: p, base }) {
  const [list, prices] = await Promise.all([
    get(`/api/v1/projects/${enc(p.id)}/compute`, { limit: 200 }),
    get('/api/v1/prices'),
  ]);
  return h('div', {},
    h('h1', {}, 'Compute'),
    table('!Compute targets', [
      { label: 'Name', value: (c) => link(`${base}/compute/${c.id}`, c.name) },
      { label: 'State', value: (c) => badge(c.state) },
      { label: 'Kind', value: (c) => c.kind },
      { label: 'Size', value: (c) => (c.kind === 'local' ? 'this machine' : `${c.vm_size} × ${c.min_nodes}–${c.max_nodes}`) },
      { label: 'Monthly estimate', value: (c) => money(c.monthly_estimate_usd), class: 'num' },
      { label: 'Requested', value: (c) => when(c.created_at) },
    ], list.items, { empty: 'No compute yet. A local target trains on this server; cloud clusters are planned in Terraform.' }),
    requestForm(p, base, prices.items));
}

function requestForm(p, base, prices) {
  const regions = [...new Set(prices.map((x) => x.region))].sort();
  const kind = select('kind', [['local', 'local — this server'], ['cluster', 'cluster — Azure ML compute cluster'], ['instance', 'instance — Azure ML compute instance'], ['inference', 'inference — online endpoint nodes']], 'local');
  const region = select('region', regions, regions.includes('eastus') ? 'eastus' : regions[0]);
  const size = h('select', { name: 'vm_size' });
  const priority = select('priority', [['dedicated', 'dedicated'], ['low_priority', 'low priority (can be preempted)']], 'dedicated');
  const minNodes = h('input', { name: 'min_nodes', type: 'number', min: '0', max: '1000', value: '0' });
  const maxNodes = h('input', { name: 'max_nodes', type: 'number', min: '1', max: '1000', value: '1', required: true });
  const idle = h('input', { name: 'idle_minutes', type: 'number', min: '0', max: '10080', value: '30' });
  const estimate = h('p', { class: 'estimate', 'aria-live': 'polite' });
  const cloud = h('div', { class: 'cloud-fields' }, field('Region', region), field('VM size', size), field('Priority', priority), field('Minimum nodes', minNodes), field('Idle minutes before scale-down', idle));
  const fillSizes = () => {
    const keep = size.value;
    replace(size, prices.filter((x) => x.region === region.value).map((x) => h('option', { value: x.vm_size, selected: x.vm_size === keep }, `${x.vm_size} (${x.vcpus} vCPU, ${x.memory_gib} GiB)`)));
  };
  const update = () => {
    const local = kind.value === 'local';
    cloud.hidden = local;
    if (local) {
      estimate.textContent = `Estimated cost: ${money(0)} — local compute uses this server's CPU (${maxNodes.value || 1} training slot(s)).`;
      return;
    }
    const price = prices.find((x) => x.region === region.value && x.vm_size === size.value);
    if (!price) { estimate.textContent = 'No price for this size in this region.'; return; }
    const hourly = priority.value === 'low_priority' ? price.low_priority_hourly_usd : price.dedicated_hourly_usd;
    const n = Number(maxNodes.value) || 1;
    const monthly = hourly * n * HOURS_A_MONTH;
    estimate.textContent = `Estimated cost: up to ${money(monthly)} a month (${n} node(s) × ${money(hourly)}/h × ${HOURS_A_MONTH} h). Project budget: ${money(p.monthly_budget_usd)} a month.`;
  };
  fillSizes();
  region.addEventListener('change', () => { fillSizes(); update(); });
  for (const el of [kind, size, priority, maxNodes]) { el.addEventListener('change', update); el.addEventListener('input', update); }
  update();
  return section('Request compute', form({ 'aria-label': 'Request compute' }, [
    field('Name', h('input', { name: 'name', required: true, pattern: '[a-z][a-z0-9\\-]{1,15}' }), 'lower-case, up to 16 characters'),
    field('Kind', kind), field('Maximum nodes (slots for local)', maxNodes), cloud, estimate,
  ], async (d) => {
    const body = { name: d.get('name'), kind: d.get('kind'), max_nodes: Number(d.get('max_nodes')) };
    if (body.kind !== 'local') {
      Object.assign(body, { region: d.get('region'), vm_size: d.get('vm_size'), priority: d.get('priority'), min_nodes: Number(d.get('min_nodes')), idle_minutes: Number(d.get('idle_minutes')) });
    }
    const c = await post(`/api/v1/projects/${enc(p.id)}/compute`, body);
    navigate(`${base}/compute/${c.id}`);
  }, 'Request compute'));
}

export async function computePage({ base }, id) {
  const c = await get(`/api/v1/compute/${enc(id)}`);
  const root = h('div', { 'data-state': c.state },
    h('h1', {}, `Compute ${c.name} `, badge(c.state)));
  if (BUSY.includes(c.state)) {
    root.append(h('p', { 'aria-live': 'polite' }, 'Being carried out… this page updates by itself.'));
    const t = every(1500, async () => {
      const now = await get(`/api/v1/compute/${enc(id)}`).catch(() => null);
      if (now && now.state !== c.state) { clearInterval(t); navigate(window.location.pathname, { replace: true }); }
    });
  }
  const d = c.decision || {};
  // append() would write a skipped (null) section as the text "null"
  root.append(...[
    section('Request', facts([
      ['Kind', c.kind], ['Region', c.region], ['VM size', c.kind === 'local' ? 'this machine' : `${c.vm_size} (${c.family})`],
      ['Nodes', `${c.min_nodes}–${c.max_nodes}`], ['Priority', c.priority], ['Idle minutes', c.idle_minutes],
      ['Price of a node', `${money(c.hourly_usd)}/h`], ['Monthly estimate', money(c.monthly_estimate_usd)],
      ['Executor', c.executor || '—'], ['Expires', when(c.expires_at)], ['Requested', when(c.created_at)],
    ])),
    section('Decision', facts([
      ['Verdict', badge(d.verdict)], ['Decided', d.automatic ? 'automatically, by policy' : (c.decided_by ? `by an admin ${when(c.decided_at)}` : 'waiting for a platform admin')],
      d.quota ? ['Quota', `${d.quota.in_use} in use + ${d.quota.asked} asked of ${d.quota.limit} ${d.quota.family} nodes ${d.quota.within ? '(within)' : '(over)'}`] : null,
      d.budget ? ['Budget', `${money(d.budget.committed_usd)} committed + ${money(d.budget.estimate_usd)} of ${money(d.budget.monthly_usd)} a month ${d.budget.within ? '(within)' : '(over)'}`] : null,
      c.decision_reason ? ['Reason', c.decision_reason] : null,
    ]), d.reasons && d.reasons.length ? h('ul', {}, d.reasons.map((r) => h('li', {}, r))) : null),
    c.failure ? section('Failure', facts([['Step', c.failure.step], ['Message', h('pre', { class: 'log' }, c.failure.message)]])) : null,
    c.plan_summary ? section('Terraform plan summary', jsonBlock(c.plan_summary, 'Plan summary')) : null,
    c.outputs ? section('Outputs', jsonBlock(c.outputs, 'Terraform outputs')) : null,
    await planSection(c),
    section('Operation', c.operation_id ? h('p', {}, link(`/operations/${c.operation_id}`, `Operation ${shortId(c.operation_id)}`), ' — its actions, with the Terraform it ran.') : h('p', {}, 'No operation yet.')),
    section('Actions', h('div', { class: 'actions' },
      c.state === 'failed' ? actionButton('Retry', async () => { await api('POST', `/api/v1/compute/${enc(id)}/retry`, { ifMatch: `"v${c.version}"` }); navigate(window.location.pathname, { replace: true }); }) : null,
      !['deleted', 'deleting'].includes(c.state) ? actionButton('Delete', async () => { await api('DELETE', `/api/v1/compute/${enc(id)}`, { ifMatch: `"v${c.version}"` }); navigate(`${base}/compute`); }, { kind: 'danger', confirmText: `Delete compute ${c.name}?` }) : null))].filter(Boolean));
  return root;
}

async function planSection(c) {
  if (c.kind === 'local') return section('Terraform', h('p', {}, 'Local compute is granted on this server: there is no Terraform module to render.'));
  try {
    const plan = await get(`/api/v1/compute/${enc(c.id)}/plan`);
    return section('Terraform root module (main.tf.json)', jsonBlock(plan, 'main.tf.json'));
  } catch (err) {
    if (err.status === 404) return section('Terraform', h('p', {}, 'The plan is rendered once the request is approved.'));
    return section('Terraform', problemView(err));
  }
}
