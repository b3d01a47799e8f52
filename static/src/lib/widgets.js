// Small pieces every page uses: tables, state badges, problems, JSON blocks, status messages.
import { h } from './dom.js';
import { ApiError } from './api.js';

// Status messages for screen readers (and sighted readers, at the top of the page). A message
// survives the navigation that usually follows it, and goes with the next one.
let flash = null;

function show(region, f) {
  region.className = `status status-${f ? f.kind : 'info'}`;
  region.textContent = f ? f.message : '';
  region.hidden = !f;
}

export function announce(message, kind = 'info') {
  flash = { message, kind, shown: 0 };
  const region = document.getElementById('status');
  if (region) show(region, flash);
}

// Called by the shell after each render.
export function showFlash() {
  const region = document.getElementById('status');
  if (!region) return;
  if (flash && flash.shown < 1) {
    flash.shown += 1;
    show(region, flash);
  } else {
    flash = null;
    show(region, null);
  }
}

const STATE_KIND = {
  ready: 'ok', completed: 'ok', succeeded: 'ok', approved: 'ok', pass: 'ok', planned: 'info',
  pending_approval: 'warn', queued: 'info', preparing: 'info', running: 'info', evaluating: 'info',
  ingesting: 'info', pending: 'info', provisioning: 'info', deploying: 'info', requested: 'info',
  deleting: 'info', failed: 'bad', rejected: 'bad', gates_failed: 'bad', fail: 'bad',
  canceled: 'muted', deleted: 'muted', archived: 'muted', skipped: 'muted',
};

export function badge(state) {
  const s = String(state ?? '—');
  return h('span', { class: `badge badge-${STATE_KIND[s] || 'muted'}` }, s.replace(/_/g, ' '));
}

// columns: [{label, value: (row) => node|string, class?}]
export function table(caption, columns, rows, { empty = 'Nothing yet.', rowLabel } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: '0' },
    h('table', {},
      h('caption', { class: caption.startsWith('!') ? 'visually-hidden' : '' }, caption.replace(/^!/, '')),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', {}, rows.map((r) => h('tr', { 'data-row': rowLabel ? rowLabel(r) : null },
        columns.map((c, i) => (i === 0
          ? h('th', { scope: 'row', class: c.class }, c.value(r))
          : h('td', { class: c.class }, c.value(r)))))))));
}

// Key/value pairs as a description list.
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

export function jsonBlock(value, label) {
  return h('pre', { class: 'json', tabindex: '0', 'aria-label': label || 'JSON' },
    typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

// A friendly explanation of a failed request, with the field errors of a validation problem.
export function problemView(err, context) {
  if (!(err instanceof ApiError)) {
    return h('div', { class: 'problem', role: 'alert' }, h('h2', {}, 'Something went wrong'), h('p', {}, String(err.message || err)));
  }
  const p = err.problem || {};
  let title = p.title || 'The request failed';
  let text = p.detail || err.message;
  if (err.status === 403) {
    title = 'Not allowed';
    text = context?.forbidden || `You do not have permission for this. ${p.detail || ''}`;
  } else if (err.status === 404) {
    title = 'Not found';
    text = context?.notFound || 'It does not exist, or you do not have access to it.';
  } else if (err.status === 0) {
    title = 'No connection';
  } else if (err.status >= 500) {
    title = 'The server could not answer';
    text = `${p.detail || 'Try again in a moment.'}`;
  }
  return h('div', { class: 'problem', role: 'alert' },
    h('h2', {}, title),
    h('p', {}, text),
    p.errors && p.errors.length ? h('ul', {}, p.errors.map((e) => h('li', {}, h('code', {}, e.field), `: ${e.reason}`))) : null,
    p.request_id ? h('p', { class: 'hint' }, `Request id ${p.request_id}`) : null);
}

// A form whose submit runs fn(formData) with the button disabled and errors shown in place.
export function form(props, children, fn, submitLabel) {
  const errors = h('div', { class: 'form-errors', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const el = h('form', { ...props, novalidate: false }, children, h('div', { class: 'actions' }, button), errors);
  el.addEventListener('submit', async (e) => {
    e.preventDefault();
    errors.replaceChildren();
    button.disabled = true;
    try {
      await fn(new FormData(el), el);
    } catch (err) {
      errors.replaceChildren(problemView(err));
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

// A button that runs an async action, shows failures next to itself.
export function actionButton(label, fn, { kind = '', confirmText } = {}) {
  const out = h('span', { class: 'action-result', 'aria-live': 'polite' });
  const b = h('button', { type: 'button', class: kind }, label);
  b.addEventListener('click', async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    b.disabled = true;
    out.replaceChildren();
    try {
      await fn();
    } catch (err) {
      out.replaceChildren(problemView(err));
    } finally {
      b.disabled = false;
    }
  });
  return h('span', { class: 'action' }, b, out);
}

export function link(href, text, props = {}) {
  return h('a', { href, ...props }, text);
}

export function section(title, ...children) {
  return h('section', { class: 'card', 'aria-label': title }, h('h2', {}, title), children);
}

export const isTerminal = (s) => ['completed', 'failed', 'canceled', 'succeeded', 'ready', 'rejected', 'deleted', 'gates_failed', 'pending_approval', 'planned'].includes(s);
