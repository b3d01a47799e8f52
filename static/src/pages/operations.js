// One operation and its ordered actions: what was (or would be) sent to Azure ML, the Terraform
// files and commands with their output, and the local steps, with timings.
import { h } from '../lib/dom.js';
import { get, post } from '../lib/api.js';
import { enc, every, navigate } from '../lib/router.js';
import { actionButton, badge, facts, jsonBlock, section } from '../lib/widgets.js';
import { when } from '../lib/format.js';

export async function operationPage({ params }) {
  const o = await get(`/api/v1/operations/${enc(params.id)}`);
  const root = h('div', { 'data-state': o.state },
    h('p', { class: 'breadcrumb' }, h('a', { href: subjectLink(o.subject) || '/' }, o.subject)),
    h('h1', {}, `Operation ${o.kind} `, badge(o.state)));
  if (['queued', 'running'].includes(o.state)) {
    root.append(h('p', { 'aria-live': 'polite' }, 'In progress… this page updates by itself.'));
    const t = every(1500, async () => {
      const now = await get(`/api/v1/operations/${enc(params.id)}`).catch(() => null);
      if (now && (now.state !== o.state || now.actions.length !== o.actions.length || now.actions.some((a, i) => a.state !== o.actions[i].state))) {
        clearInterval(t);
        navigate(window.location.pathname, { replace: true });
      }
    });
  }
  root.append(section('Summary', facts([
    ['Id', h('code', {}, o.id)], ['Subject', h('code', {}, o.subject)], ['Attempts', `${o.attempts} of ${o.max_attempts}`],
    ['Created', when(o.created_at)], ['Started', when(o.started_at)], ['Finished', when(o.finished_at)],
    o.error ? ['Error', `${o.error.code}: ${o.error.message}`] : null,
  ]), h('details', {}, h('summary', {}, 'Input and output'), jsonBlock({ input: o.input, output: o.output }, 'Input and output'))));
  root.append(section(`Plan: ${o.actions.length} action(s)`,
    o.actions.length ? h('ol', { class: 'actions-list' }, o.actions.map(actionView)) : h('p', {}, 'No actions planned yet.')));
  if (['queued', 'running'].includes(o.state)) {
    root.append(h('div', { class: 'actions' }, actionButton('Cancel operation', async () => { await post(`/api/v1/operations/${enc(o.id)}/cancel`); navigate(window.location.pathname, { replace: true }); }, { kind: 'danger', confirmText: 'Cancel this operation?' })));
  }
  return root;
}

function subjectLink(subject) {
  const m = /^projects\/([^/]+)\/(compute|runs|datasets|models)\/([^/]+)/.exec(subject || '');
  if (!m) return null;
  return `/projects/${m[1]}/${m[2]}/${m[3]}`;
}

function requestView(a) {
  const req = a.request;
  if (!req) return null;
  const parts = [];
  if (Array.isArray(req.requests)) {
    parts.push(h('p', { class: 'hint' }, req.rendered ? 'Rendered: the azure executor sends exactly these requests.' : 'Sent to Azure Resource Manager:'));
    for (const r of req.requests) {
      parts.push(h('div', { class: 'http-request' },
        h('code', { class: 'http-line' }, `${r.method} ${r.url}`),
        r.body !== undefined && r.body !== null ? jsonBlock(r.body, `Body of ${r.method} ${r.url}`) : null));
    }
    const rest = { ...req };
    delete rest.requests;
    parts.push(h('details', {}, h('summary', {}, 'Transport details'), jsonBlock(rest)));
    return parts;
  }
  if (req['main.tf.json'] || req.files) {
    const files = req.files || { 'main.tf.json': req['main.tf.json'] };
    for (const [name, body] of Object.entries(files)) parts.push(h('h4', {}, name), jsonBlock(body, name));
    return parts;
  }
  if (req.command) parts.push(h('code', { class: 'http-line' }, `$ ${req.command}`), req.dir ? h('p', { class: 'hint' }, `in ${req.dir}`) : null);
  parts.push(jsonBlock(req, `Request of ${a.name}`));
  return parts;
}

function responseView(a) {
  const res = a.response;
  if (res == null) return null;
  const parts = [];
  const files = res.files || (res['main.tf.json'] ? { 'main.tf.json': res['main.tf.json'] } : null);
  if (files) for (const [name, body] of Object.entries(files)) parts.push(h('h4', {}, name), jsonBlock(body, name));
  if (Array.isArray(res.log)) {
    for (const l of res.log) {
      parts.push(h('h4', {}, h('code', {}, `$ ${l.command}`), l.exit_status != null ? ` (exit ${l.exit_status})` : ''),
        h('pre', { class: 'log', tabindex: '0' }, l.log || l.output || ''));
    }
  }
  parts.push(h('details', { open: !files && !res.log }, h('summary', {}, 'Response'), jsonBlock(res, `Response of ${a.name}`)));
  return parts;
}

function actionView(a) {
  return h('li', { class: 'action-item', 'data-target': a.target },
    h('h3', {}, h('span', { class: `target target-${a.target}` }, a.target), ' ', a.name, ' ', badge(a.state)),
    h('p', { class: 'hint' }, `step ${a.step} · attempts ${a.attempts}${a.duration_ms != null ? ` · ${a.duration_ms} ms` : ''}${a.started_at ? ` · started ${when(a.started_at)}` : ''}`),
    a.error ? h('p', { class: 'error' }, `${a.error.code}: ${a.error.message}`) : null,
    requestView(a), responseView(a));
}
