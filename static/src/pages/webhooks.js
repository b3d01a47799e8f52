// Outbound webhooks: subscribe a URL to the project's events, see the signing secret once,
// switch a webhook on or off, ping it, and read each one's delivery log.
import { h, field } from '../lib/dom.js';
import { all, api, get, post } from '../lib/api.js';
import { enc, navigate } from '../lib/router.js';
import { actionButton, announce, facts, form, link, section, table } from '../lib/widgets.js';
import { count, shortId, when } from '../lib/format.js';
import { livePoll, marking, named, region, unchanged } from './live.js';

const EVENTS = [
  ['run.finished', 'A run finished (completed, failed or canceled)'],
  ['promotion.pending_approval', 'A promotion waits for a platform admin'],
  ['model.promoted', 'A model version was promoted'],
  ['forecast.ready', 'A forecast run is ready'],
  ['drift.detected', 'A new dataset version drifted'],
];
const DELIVERY_KIND = { delivered: 'ok', pending: 'info', retrying: 'warn', failed: 'bad', skipped: 'muted' };
const OPEN = ['pending', 'retrying'];

function deliveryBadge(state) {
  return h('span', { class: `badge badge-${DELIVERY_KIND[state] || 'muted'}` }, state || '—');
}

function activeBadge(w) {
  return w.active ? h('span', { class: 'badge badge-ok' }, 'active') : h('span', { class: 'badge badge-muted' }, 'off');
}

const etag = (w) => `"v${w.version}"`;

async function setActive(api1, w, active) {
  await api('PATCH', `${api1}/webhooks/${enc(w.id)}`, { body: { active }, ifMatch: etag(w) });
  announce(`Webhook to ${w.url} ${active ? 'switched on' : 'switched off'}.`, 'ok');
}

async function ping(api1, w) {
  const d = await post(`${api1}/webhooks/${enc(w.id)}/ping`);
  announce(`Ping queued for ${w.url} (delivery ${shortId(d.id)}).`, 'ok');
  return d;
}

// The secret, once: it signs every delivery and the API never answers it again.
function secretPanel(w, onDone) {
  const code = h('code', { id: 'webhook-secret', class: 'secret' }, w.secret);
  const copied = h('span', { class: 'hint', 'aria-live': 'polite' });
  const copy = h('button', { type: 'button', class: 'primary' }, 'Copy secret');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(w.secret);
      copied.textContent = 'Copied to the clipboard.';
    } catch {
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });
  const panel = h('div', { class: 'card secret-once', role: 'alert', 'data-webhook': w.id },
    h('h2', {}, 'Copy the signing secret now'),
    h('p', {}, `The webhook to ${w.url} signs every delivery with this secret (the X-Roastery-Signature header, HMAC-SHA256 of the timestamp, a dot and the body). `,
      h('strong', {}, 'It will not be shown again'), ': if you lose it, delete the webhook and create another.'),
    h('p', {}, code),
    h('div', { class: 'actions' }, copy, h('button', { type: 'button', onClick: () => { panel.remove(); onDone(); } }, 'I have saved it'), copied));
  return panel;
}

export async function webhooksSection({ project: p, base }) {
  const api1 = `/api/v1/projects/${enc(p.id)}`;
  const secretBox = h('div', {});
  const list = await region(async (reload) => {
    const items = await all(`${api1}/webhooks`);
    return table('!Webhooks', [
      { label: 'URL', value: (w) => link(`${base}/webhooks/${enc(w.id)}`, w.url, { class: 'url' }) },
      { label: 'Events', value: (w) => h('ul', { class: 'plain events' }, w.events.map((e) => h('li', {}, h('code', {}, e)))) },
      { label: 'State', value: (w) => h('span', {}, activeBadge(w), w.disabled_reason && !w.active ? h('span', { class: 'hint' }, ` ${w.disabled_reason}`) : null) },
      { label: 'Last delivery', value: (w) => (w.last_delivery
        ? h('span', {}, deliveryBadge(w.last_delivery.state), ` ${w.last_delivery.event}${w.last_delivery.last_status ? ` · HTTP ${w.last_delivery.last_status}` : ''} · ${when(w.last_delivery.at)}`)
        : '—') },
      { label: 'Description', value: (w) => w.description || '' },
      { label: 'Actions', value: (w) => h('div', { class: 'actions compact' },
        named(actionButton('Ping', async () => { await ping(api1, w); await reload(); }), `Ping ${w.url}`),
        named(actionButton(w.active ? 'Switch off' : 'Switch on', async () => { await setActive(api1, w, !w.active); await reload(); }), `${w.active ? 'Switch off' : 'Switch on'} ${w.url}`),
        link(`${base}/webhooks/${enc(w.id)}`, 'Delivery log', { 'aria-label': `Delivery log of ${w.url}` }),
        named(actionButton('Delete', async () => {
          await api('DELETE', `${api1}/webhooks/${enc(w.id)}`, { ifMatch: etag(w) });
          announce(`Webhook to ${w.url} deleted.`, 'ok');
          await reload();
        }, { kind: 'danger', confirmText: `Delete the webhook to ${w.url} and its delivery log?` }), `Delete ${w.url}`)) },
    ], items, { empty: 'No webhooks yet.', rowLabel: (w) => `webhook-${w.url}` });
  });
  const events = h('fieldset', {}, h('legend', {}, 'Events'),
    EVENTS.map(([e, label], i) => h('div', { class: 'check' },
      h('input', { type: 'checkbox', id: `wh-event-${i}`, name: 'events', value: e, checked: true }),
      h('label', { for: `wh-event-${i}` }, h('code', {}, e), ` — ${label}`))));
  const create = form({ 'aria-label': 'Add a webhook' }, [
    field('URL', h('input', { name: 'url', type: 'url', required: true, maxlength: '2048', placeholder: 'https://example.com/hooks/roastery', autocomplete: 'off' }),
      'https:// (http:// only to 127.0.0.1 or localhost on a dev server)'),
    events,
    field('Description', h('input', { name: 'description', maxlength: '2000' })),
  ], marking(async (d, el) => {
    const chosen = d.getAll('events').map(String);
    const w = await post(`${api1}/webhooks`, { url: String(d.get('url')).trim(), events: chosen, description: String(d.get('description') || '') });
    el.querySelector('[name=url]').value = '';
    el.querySelector('[name=description]').value = '';
    secretBox.replaceChildren(secretPanel(w, () => {}));
    await list.reload();
    secretBox.scrollIntoView({ block: 'nearest' });
    secretBox.querySelector('button').focus();
  }), 'Add webhook');
  return h('div', {},
    h('h1', {}, 'Webhooks'),
    h('p', {}, 'Roastery POSTs a signed JSON event to each URL subscribed to it, retrying with backoff until the receiver answers 2xx (410 Gone switches the webhook off). Delivery is at least once: deduplicate by the event id.'),
    secretBox,
    section('Webhooks', list),
    section('Add a webhook', create));
}

export async function webhookPage({ project: p, base }, id) {
  const api1 = `/api/v1/projects/${enc(p.id)}`;
  let w = await get(`${api1}/webhooks/${enc(id)}`);
  let items = [];
  const note = h('p', { class: 'hint live-note', 'aria-live': 'polite', id: 'deliveries-live' });
  const info = await region(async (reload) => {
    w = await get(`${api1}/webhooks/${enc(id)}`);
    return [
      h('h1', {}, 'Webhook ', activeBadge(w)),
      h('p', { class: 'url-line' }, h('code', {}, w.url)),
      section('Webhook', facts([
        ['Events', w.events.join(', ')],
        ['Description', w.description || '—'],
        w.disabled_reason ? ['Switched off because', w.disabled_reason] : null,
        ['Created', `${when(w.created_at)}`],
        ['Changed', `${when(w.updated_at)} (version ${w.version})`],
      ]), h('div', { class: 'actions' },
        actionButton('Ping', async () => { await ping(api1, w); await log.reload(); note.textContent = 'Deliveries in progress: this log updates every two seconds.'; }, { kind: 'primary' }),
        actionButton(w.active ? 'Switch off' : 'Switch on', async () => { await setActive(api1, w, !w.active); await reload(); }),
        actionButton('Delete', async () => {
          await api('DELETE', `${api1}/webhooks/${enc(w.id)}`, { ifMatch: etag(w) });
          announce(`Webhook to ${w.url} deleted.`, 'ok');
          navigate(`${base}/webhooks`);
        }, { kind: 'danger', confirmText: `Delete the webhook to ${w.url} and its delivery log?` }))),
    ];
  });
  const same = unchanged();
  const log = await region(async () => {
    items = (await get(`${api1}/webhooks/${enc(id)}/deliveries`, { limit: 50 })).items;
    if (same(items)) return undefined;
    return table('!Deliveries', [
      { label: 'Delivery', value: (d) => h('code', {}, shortId(d.id)) },
      { label: 'Event', value: (d) => d.event },
      { label: 'State', value: (d) => deliveryBadge(d.state) },
      { label: 'Attempts', value: (d) => count(d.attempts), class: 'num' },
      { label: 'Last status', value: (d) => (d.last_status == null ? '—' : `HTTP ${d.last_status}`), class: 'num' },
      { label: 'Last error', value: (d) => (d.last_error ? h('span', { class: 'error' }, d.last_error) : '—'), class: 'wide' },
      { label: 'Queued', value: (d) => when(d.created_at), class: 'nowrap' },
      { label: 'Last attempt', value: (d) => when(d.last_attempt_at), class: 'nowrap' },
      { label: 'Next attempt', value: (d) => (OPEN.includes(d.state) ? when(d.next_attempt_at) : '—'), class: 'nowrap' },
      { label: 'Delivered', value: (d) => when(d.delivered_at), class: 'nowrap' },
      { label: 'Attempts in detail', value: (d) => (d.history && d.history.length ? h('details', {}, h('summary', {}, `${d.history.length} attempt(s)`),
        h('ol', { class: 'history' }, d.history.map((a) => h('li', {}, `${when(a.at)}: ${a.status ? `HTTP ${a.status}` : 'no answer'}${a.error ? ` — ${a.error}` : ''}${a.duration_ms != null ? ` (${a.duration_ms} ms)` : ''}`)))) : '—') },
    ], items, { empty: 'Nothing delivered yet: Ping sends a test event.', rowLabel: (d) => `delivery-${d.event}-${d.state}` });
  }, { class: 'deliveries' });
  livePoll(note, 2000, () => items.some((d) => OPEN.includes(d.state)), log.reload,
    () => 'Deliveries in progress: this log updates every two seconds.');
  return h('div', {},
    h('p', { class: 'breadcrumb' }, link(`${base}/webhooks`, 'Webhooks'), ' / ', shortId(w.id)),
    info,
    section('Delivery log', h('p', { class: 'hint' }, 'Newest first. A failed attempt is retried with a growing delay; the error says why it failed.'), log, note));
}
