// Home: what each role came for — projects, the approvals waiting, the reader's stores.
import { h } from '../lib/dom.js';
import { get, post } from '../lib/api.js';
import { navigate, enc } from '../lib/router.js';
import { field, } from '../lib/dom.js';
import { form, link, table, section } from '../lib/widgets.js';
import { money, when } from '../lib/format.js';

export async function homePage({ session }) {
  const me = session.me;
  const is = (r) => me.roles.includes(r);
  const parts = [h('h1', {}, `Welcome, ${me.name}`)];
  if (is('DataScientist') || is('PlatformAdmin')) parts.push(await projectsSection(is('DataScientist') || is('PlatformAdmin')));
  if (is('PlatformAdmin')) parts.push(await approvalsSummary());
  if (is('StoreManager')) parts.push(myStores(me));
  if (!me.roles.length) parts.push(h('p', {}, 'Your account has no Roastery role yet. Ask a platform admin to give you one.'));
  return h('div', {}, parts);
}

async function projectsSection(canCreate) {
  const page = await get('/api/v1/projects', { limit: 200 });
  const list = table('Your projects', [
    { label: 'Project', value: (p) => link(`/projects/${enc(p.id)}`, p.display_name) },
    { label: 'Id', value: (p) => h('code', {}, p.id) },
    { label: 'Your role', value: (p) => p.my_role || 'admin' },
    { label: 'Monthly budget', value: (p) => money(p.monthly_budget_usd), class: 'num' },
    { label: 'Created', value: (p) => when(p.created_at) },
  ], page.items, { empty: 'You are not a member of any project yet.' });
  const create = canCreate ? h('details', { class: 'create' },
    h('summary', {}, 'Create a project'),
    form({ 'aria-label': 'Create a project' }, [
      field('Project id', h('input', { name: 'id', required: true, pattern: '[a-z][a-z0-9\\-]{1,62}' }), 'lower-case, used in URLs, e.g. demand-forecast'),
      field('Display name', h('input', { name: 'display_name', required: true, maxlength: '200' })),
      field('Description', h('textarea', { name: 'description', rows: '2', maxlength: '2000' })),
    ], async (d) => {
      const p = await post('/api/v1/projects', { id: d.get('id'), display_name: d.get('display_name'), description: d.get('description') || '' });
      navigate(`/projects/${enc(p.id)}`);
    }, 'Create project')) : null;
  return section('Projects', list, create);
}

async function approvalsSummary() {
  const [compute, promotions] = await Promise.all([
    get('/api/v1/compute', { state: 'pending_approval', limit: 200 }),
    get('/api/v1/promotions', { state: 'pending_approval' }),
  ]);
  const n = compute.items.length + promotions.items.length;
  return section('Waiting for an admin',
    h('p', {}, n ? `${compute.items.length} compute request(s) and ${promotions.items.length} promotion(s) wait for approval. ` : 'Nothing waits for approval. ',
      link('/admin/approvals', 'Open the approvals queue')));
}

function myStores(me) {
  if (!me.stores.length) {
    return section('Your stores',
      h('p', {}, 'No stores are assigned to you yet. Ask a platform admin to assign you; they need your user id:'),
      h('p', {}, h('code', { class: 'oid', 'data-oid': me.oid }, me.oid)));
  }
  return section('Your stores', h('ul', { class: 'store-list' }, me.stores.map((s) => h('li', {},
    link(`/stores/${enc(s.id)}`, `${s.name}`), h('span', { class: 'hint' }, ` ${s.city}, ${s.country} · ${s.id}`)))));
}
