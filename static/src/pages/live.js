// Pieces the forecast, retraining and webhook pages share: a part of a page that reloads in
// place (so a form being filled in elsewhere on the page keeps its input), polling that says
// what it does in a live region, and field errors tied to the controls they name.
import { h, replace } from '../lib/dom.js';
import { ApiError } from '../lib/api.js';
import { every } from '../lib/router.js';
import { problemView } from '../lib/widgets.js';

// A box whose content is render() (a node or an array of nodes); reload() renders it again and
// keeps the old content when the reload fails (the failure is shown above it) or when render()
// answers undefined (nothing changed: open <details> and focus stay as they are).
export async function region(render, props = {}) {
  const el = h('div', props);
  let busy = false;
  const reload = async () => {
    if (busy) return;
    busy = true;
    try {
      const out = await render(reload);
      if (out !== undefined) replace(el, out);
    } catch (err) {
      if (!el.childNodes.length) replace(el, problemView(err));
      else el.prepend(problemView(err));
    } finally {
      busy = false;
    }
  };
  el.reload = reload;
  await reload();
  return el;
}

// Polls every ms while active() says so; the note (an aria-live region) says describe() while
// the page is being kept current and "Up to date." once nothing moves any more.
export function livePoll(note, ms, active, reload, describe) {
  const say = (text) => { if (note.textContent !== text) note.textContent = text; };
  const idle = () => say('');
  if (active()) say(describe());
  every(ms, async () => {
    if (!active()) { idle(); return; }
    await reload();
    say(active() ? describe() : 'Up to date.');
  });
}

// After a validation problem, marks each control it names aria-invalid (the problem itself is
// shown by form() as an alert listing the fields); the next submit clears the marks.
export function markFields(formEl, err) {
  for (const c of formEl.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  if (!(err instanceof ApiError) || !err.problem || !Array.isArray(err.problem.errors)) return;
  for (const e of err.problem.errors) {
    // "end_date", or "items[3].weather": the weather control of the fourth row
    const m = /^(?:[a-z_]+\[(\d+)\]\.)?([a-z_]+)$/i.exec(String(e.field || ''));
    if (!m) continue;
    const c = formEl.querySelectorAll(`[name="${CSS.escape(m[2])}"]`)[m[1] ? Number(m[1]) : 0];
    if (c) c.setAttribute('aria-invalid', 'true');
  }
}

// fn wrapped so a failure marks the form's fields before form() shows the problem.
export function marking(fn) {
  return async (d, formEl) => {
    markFields(formEl, null);
    try {
      await fn(d, formEl);
    } catch (err) {
      markFields(formEl, err);
      throw err;
    }
  };
}

export const isoDay = (d) => d.toISOString().slice(0, 10);

// Remembers the last answer: same(x) is true when x is what it saw last time.
export function unchanged() {
  let last = null;
  return (x) => {
    const s = JSON.stringify(x);
    if (s === last) return true;
    last = s;
    return false;
  };
}

// An actionButton whose visible text is short and whose accessible name says what it acts on.
export function named(action, accessibleName) {
  const b = action.querySelector('button');
  if (b) b.setAttribute('aria-label', accessibleName);
  return action;
}
