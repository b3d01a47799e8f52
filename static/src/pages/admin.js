// Platform admins: the approvals queue, quotas and budgets, VM prices, store assignments and the
// audit log.
import { h, field, select, replace } from '../lib/dom.js';
import { all, api, get, post } from '../lib/api.js';
import { enc, navigate } from '../lib/router.js';
import { actionButton, announce, badge, form, link, problemView, section, table } from '../lib/widgets.js';
import { money, percent, shortId, when } from '../lib/format.js';

const SECTIONS = [['approvals', 'Approvals'], ['budgets', 'Quotas & budgets'], ['prices', 'Prices'], ['stores', 'Store assignments'], ['audit', 'Audit log']];

export async function adminPage({ params, query, session }) {
  if (!session.me.roles.includes('PlatformAdmin')) {
    return h('div', { class: 'problem', role: 'alert' }, h('h1', {}, 'Not allowed'), h('p', {}, 'These pages are for platform admins.'));
  }
  const sec = params.section;
  const body = {
    approvals, budgets, prices, stores, audit,
  }[sec];
  if (!body) return h('p', {}, 'There is no such admin page.');
  return h('div', {},
    h('nav', { class: 'tabs', 'aria-label': 'Admin sections' }, h('ul', {}, SECTIONS.map(([s, label]) => h('li', {}, h('a', { href: `/admin/${s}`, 'aria-current': s === sec ? 'page' : null }, label))))),
    await body({ query, session }));
}

const refresh = () => navigate(window.location.pathname + window.location.search, { replace: true });

function decide(label, approve, reject) {
  const reason = h('input', { name: 'reason', maxlength: '1000', 'aria-label': `Reason for ${label}`, placeholder: 'reason (required to reject)' });
  return h('div', { class: 'decide' }, reason,
    actionButton('Approve', async () => { await approve(reason.value); announce(`Approved ${label}.`, 'ok'); refresh(); }, { kind: 'primary' }),
    actionButton('Reject', async () => {
      if (!reason.value.trim()) { reason.focus(); throw new Error('give a reason to reject'); }
      await reject(reason.value); announce(`Rejected ${label}.`, 'ok'); refresh();
    }, { kind: 'danger' }));
}

async function approvals() {
  const [compute, promotions] = await Promise.all([
    get('/api/v1/compute', { state: 'pending_approval', limit: 200 }),
    get('/api/v1/promotions', { state: 'pending_approval' }),
  ]);
  return h('div', {},
    h('h1', {}, 'Approvals'),
    h('p', {}, 'Requests over a project\'s quota or budget, and promotions to production, wait for a platform admin who did not ask for them.'),
    section('Promotions to production', table('!Promotions waiting', [
      { label: 'Model', value: (x) => link(`/projects/${enc(x.project)}/models/${enc(x.model)}`, `${x.project} / ${x.model} v${x.version}`) },
      { label: 'Target', value: (x) => x.target },
      { label: 'Gates', value: (x) => h('ul', { class: 'gates' }, x.gates.map((g) => h('li', {}, badge(g.verdict), ` ${g.gate.replace(/_/g, ' ')}: ${g.detail}`))) },
      { label: 'Champion', value: (x) => (x.champion ? `v${x.champion}` : 'none') },
      { label: 'Proposed', value: (x) => when(x.created_at) },
      { label: 'Decision', value: (x) => decide(`${x.model} v${x.version} for ${x.target}`, (reason) => post(`/api/v1/promotions/${x.id}/approve`, reason ? { reason } : {}), (reason) => post(`/api/v1/promotions/${x.id}/reject`, { reason })) },
    ], promotions.items, { empty: 'No promotion waits.', rowLabel: (x) => `promotion-${x.model}-${x.version}` })),
    section('Compute requests', table('!Compute waiting', [
      { label: 'Request', value: (c) => link(`/projects/${enc(c.project)}/compute/${c.id}`, `${c.project} / ${c.name}`) },
      { label: 'Size', value: (c) => `${c.vm_size} × ${c.max_nodes} (${c.priority})` },
      { label: 'Monthly estimate', value: (c) => money(c.monthly_estimate_usd), class: 'num' },
      { label: 'Why it waits', value: (c) => h('ul', {}, (c.decision.reasons || []).map((r) => h('li', {}, r))) },
      { label: 'Requested', value: (c) => when(c.created_at) },
      { label: 'Decision', value: (c) => decide(`compute ${c.name}`, (reason) => api('POST', `/api/v1/compute/${c.id}/approve`, { body: reason ? { reason } : {}, ifMatch: `"v${c.version}"` }), (reason) => api('POST', `/api/v1/compute/${c.id}/reject`, { body: { reason }, ifMatch: `"v${c.version}"` })) },
    ], compute.items, { empty: 'No compute request waits.', rowLabel: (c) => `compute-${c.name}` })));
}

async function budgets() {
  const [projects, prices] = await Promise.all([all('/api/v1/projects'), get('/api/v1/prices')]);
  const families = [...new Set(prices.items.map((p) => p.family))].sort();
  const quotas = await Promise.all(projects.map((p) => get(`/api/v1/projects/${enc(p.id)}/quotas`).then((q) => q.items).catch(() => [])));
  const ids = projects.map((p) => p.id);
  return h('div', {},
    h('h1', {}, 'Quotas and budgets'),
    table('!Projects', [
      { label: 'Project', value: (p) => link(`/projects/${enc(p.id)}`, p.display_name) },
      { label: 'Monthly budget', value: (p) => money(p.monthly_budget_usd), class: 'num' },
      { label: 'Promotion margin', value: (p) => percent(p.promotion_margin), class: 'num' },
      { label: 'Champion tolerance', value: (p) => percent(p.champion_tolerance), class: 'num' },
      { label: 'Quotas (nodes)', value: (p) => quotas[projects.indexOf(p)].map((q) => `${q.family}: ${q.max_nodes} (${q.in_use} in use)`).join('; ') || 'none' },
    ], projects),
    projects.length ? h('div', { class: 'grid2' },
      section('Set a monthly budget', form({ 'aria-label': 'Set a monthly budget' }, [
        field('Project', select('project', ids)),
        field('Monthly budget (USD)', h('input', { name: 'budget', type: 'number', min: '0', step: '0.01', required: true })),
        field('Promotion margin (0–1, optional)', h('input', { name: 'margin', type: 'number', min: '0', max: '1', step: '0.01' })),
      ], async (d) => {
        const id = String(d.get('project'));
        const cur = await get(`/api/v1/projects/${enc(id)}`);
        const body = { monthly_budget_usd: Number(d.get('budget')) };
        if (d.get('margin')) body.promotion_margin = Number(d.get('margin'));
        await api('PATCH', `/api/v1/projects/${enc(id)}`, { body, ifMatch: cur.$etag });
        announce(`Budget of ${id} set.`, 'ok');
        refresh();
      }, 'Save budget')),
      section('Set a quota', form({ 'aria-label': 'Set a quota' }, [
        field('Project', select('project', ids)),
        field('VM family', select('family', families)),
        field('Nodes allowed without approval', h('input', { name: 'max_nodes', type: 'number', min: '0', required: true })),
      ], async (d) => {
        await api('PUT', `/api/v1/projects/${enc(String(d.get('project')))}/quotas/${enc(String(d.get('family')))}`, { body: { max_nodes: Number(d.get('max_nodes')) } });
        announce('Quota set.', 'ok');
        refresh();
      }, 'Save quota'))) : null);
}

async function prices({ query }) {
  const region = query.get('region') || '';
  const list = await get('/api/v1/prices', region ? { region } : undefined);
  const regions = [...new Set(list.items.map((p) => p.region))].sort();
  return h('div', {},
    h('h1', {}, 'VM prices'),
    h('p', {}, 'Compute requests are priced from this table (hourly list prices per node).'),
    table('!Prices', [
      { label: 'Region', value: (p) => p.region }, { label: 'VM size', value: (p) => p.vm_size }, { label: 'Family', value: (p) => p.family },
      { label: 'vCPU', value: (p) => p.vcpus, class: 'num' }, { label: 'Memory (GiB)', value: (p) => p.memory_gib, class: 'num' },
      { label: 'Dedicated /h', value: (p) => money(p.dedicated_hourly_usd), class: 'num' }, { label: 'Low priority /h', value: (p) => money(p.low_priority_hourly_usd), class: 'num' },
      { label: 'Updated', value: (p) => when(p.updated_at) },
    ], list.items),
    section('Set a price', form({ 'aria-label': 'Set a price' }, [
      h('div', { class: 'grid2' },
        field('Region', h('input', { name: 'region', required: true, list: 'regions' })), h('datalist', { id: 'regions' }, regions.map((r) => h('option', { value: r }))),
        field('VM size', h('input', { name: 'vm_size', required: true, placeholder: 'Standard_DS3_v2' })),
        field('Family', h('input', { name: 'family', required: true, placeholder: 'standardDSv2Family' })),
        field('vCPU', h('input', { name: 'vcpus', type: 'number', min: '1', required: true })),
        field('Memory (GiB)', h('input', { name: 'memory_gib', type: 'number', min: '0.5', step: '0.5', required: true })),
        field('Dedicated USD/h', h('input', { name: 'dedicated', type: 'number', min: '0', step: '0.0001', required: true })),
        field('Low priority USD/h', h('input', { name: 'low', type: 'number', min: '0', step: '0.0001', required: true }))),
    ], async (d) => {
      const r = String(d.get('region')); const s = String(d.get('vm_size'));
      const existing = list.items.find((p) => p.region === r && p.vm_size === s);
      await api('PUT', `/api/v1/prices/${enc(r)}/${enc(s)}`, {
        body: { family: d.get('family'), vcpus: Number(d.get('vcpus')), memory_gib: Number(d.get('memory_gib')), dedicated_hourly_usd: Number(d.get('dedicated')), low_priority_hourly_usd: Number(d.get('low')) },
        ifMatch: existing ? `"v${existing.version}"` : undefined,
      });
      announce(`Price of ${s} in ${r} saved.`, 'ok');
      refresh();
    }, 'Save price')));
}

async function stores() {
  const list = await all('/api/v1/stores');
  const managers = await Promise.all(list.map((s) => get(`/api/v1/stores/${enc(s.id)}/managers`).then((m) => m.items).catch(() => [])));
  const users = await all('/api/v1/users').catch(() => []);
  const managerOptions = users.filter((u) => u.roles.includes('StoreManager'));
  const projects = await all('/api/v1/projects').catch(() => []);
  return h('div', {},
    h('h1', {}, 'Store assignments'),
    h('p', {}, 'A store manager sees the forecasts of the stores assigned here, and no other. Each store is served by one project, chosen here: only that project\'s production forecasts reach the store, and only its members read or report the store\'s numbers.'),
    table('!Stores', [
      { label: 'Store', value: (s) => link(`/stores/${enc(s.id)}`, `${s.name} (${s.id})`) },
      { label: 'Where', value: (s) => `${s.city}, ${s.country}` },
      { label: 'Served by', value: (s) => s.serving_project || 'no project yet' },
      { label: 'Managers', value: (s) => {
        const ms = managers[list.indexOf(s)];
        return ms.length ? h('ul', { class: 'plain' }, ms.map((m) => h('li', {}, `${m.name} `, h('code', {}, shortId(m.user_oid)), ' ',
          actionButton(`Remove ${m.name} from ${s.id}`, async () => { await api('DELETE', `/api/v1/stores/${enc(s.id)}/managers/${enc(m.user_oid)}`); refresh(); }, { kind: 'link-button' })))) : 'none';
      } },
    ], list, { empty: 'No stores yet.', rowLabel: (s) => `store-${s.id}` }),
    h('div', { class: 'grid2' },
      section('Assign a store manager', form({ 'aria-label': 'Assign a store manager' }, [
        field('Store', select('store', list.map((s) => [s.id, `${s.name} (${s.id})`]))),
        field('Manager\'s user id (oid)', h('input', { name: 'oid', required: true, maxlength: '63', list: 'managers' }), 'they see it on their home page after signing in'),
        h('datalist', { id: 'managers' }, managerOptions.map((u) => h('option', { value: u.oid }, u.name))),
        field('Name (until they sign in)', h('input', { name: 'name', maxlength: '200' })),
      ], async (d) => {
        const body = d.get('name') ? { name: d.get('name') } : {};
        await api('PUT', `/api/v1/stores/${enc(String(d.get('store')))}/managers/${enc(String(d.get('oid')).trim())}`, { body });
        announce('Store manager assigned.', 'ok');
        refresh();
      }, 'Assign')),
      section('Serving project', form({ 'aria-label': 'Choose the serving project' }, [
        field('Store', select('store', list.map((s) => [s.id, `${s.name} (${s.id})`]))),
        field('Project', select('project', projects.map((p) => [p.id, p.display_name ? `${p.display_name} (${p.id})` : p.id])), 'its production model forecasts this store'),
      ], async (d) => {
        await api('PUT', `/api/v1/stores/${enc(String(d.get('store')))}/serving-project`, { body: { project: String(d.get('project')) } });
        announce('Serving project set.', 'ok');
        refresh();
      }, 'Set serving project')),
      section('Add a store', form({ 'aria-label': 'Add a store' }, [
        field('Store id', h('input', { name: 'id', required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}', placeholder: 'US-SEA-001' })),
        field('Name', h('input', { name: 'name', required: true })),
        field('Country', select('country', ['USA', 'Canada', 'Mexico'])),
        field('City', h('input', { name: 'city', required: true })),
        field('Time zone', h('input', { name: 'timezone', required: true, placeholder: 'America/Los_Angeles' })),
      ], async (d) => {
        await post('/api/v1/stores', Object.fromEntries(['id', 'name', 'country', 'city', 'timezone'].map((k) => [k, String(d.get(k))])));
        announce('Store added.', 'ok');
        refresh();
      }, 'Add store'))));
}

async function audit({ query }) {
  const filters = Object.fromEntries(['actor', 'action', 'subject', 'outcome'].map((k) => [k, query.get(k) || '']));
  const out = h('div', {});
  const rows = [];
  let cursor = query.get('cursor') || null;
  const more = h('button', { type: 'button' }, 'Load older entries');
  const load = async () => {
    try {
      const page = await get('/api/v1/audit', { ...filters, limit: 100, cursor });
      rows.push(...page.items);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      replace(out, table(`Audit log (${rows.length} entries shown)`, [
        { label: 'When', value: (e) => when(e.at) },
        { label: 'Who', value: (e) => e.actor_name || (e.actor_oid ? shortId(e.actor_oid) : 'anonymous') },
        { label: 'Action', value: (e) => h('code', {}, e.action) },
        { label: 'Subject', value: (e) => h('code', {}, e.subject) },
        { label: 'Outcome', value: (e) => badge(e.outcome === 'succeeded' ? 'succeeded' : e.outcome === 'denied' ? 'rejected' : e.outcome) },
        { label: 'Status', value: (e) => e.status ?? '—', class: 'num' },
        { label: 'Reason', value: (e) => e.reason || '' },
      ], rows, { empty: 'No entries match.' }));
    } catch (err) {
      replace(out, problemView(err));
    }
  };
  more.addEventListener('click', load);
  await load();
  const filterForm = h('form', { class: 'filters', 'aria-label': 'Filter the audit log' },
    field('Action', h('input', { name: 'action', value: filters.action, placeholder: 'POST /api/v1/projects' })),
    field('Subject', h('input', { name: 'subject', value: filters.subject })),
    field('Actor oid', h('input', { name: 'actor', value: filters.actor })),
    field('Outcome', select('outcome', [['', 'any'], 'allowed', 'denied', 'failed', 'succeeded'], filters.outcome)),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Filter')));
  filterForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams([...new FormData(filterForm)].filter(([, v]) => v));
    navigate(`/admin/audit${q.toString() ? `?${q}` : ''}`);
  });
  return h('div', {}, h('h1', {}, 'Audit log'), h('p', {}, 'Every change, every denial and every refused token, append-only.'), filterForm, out, h('div', { class: 'actions' }, more));
}
