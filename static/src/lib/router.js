// History-API routing. The server answers index.html for every client route (server/http/portal.c),
// so deep links and reloads work. Each page may register cleanups (timers) that run when the
// reader leaves it.
const routes = [];
let cleanups = [];
let renderToken = 0;
let renderer = null;

export function route(pattern, handler) {
  const keys = [];
  const rx = new RegExp(`^${pattern.replace(/\/:([a-z]+)/g, (_, k) => { keys.push(k); return '/([^/]+)'; })}/?$`);
  routes.push({ rx, keys, handler });
}

export function onLeave(fn) { cleanups.push(fn); }

// setInterval that stops when the page is left (and while the tab is hidden it still runs:
// a run's log should be current when the reader comes back).
export function every(ms, fn) {
  const id = setInterval(fn, ms);
  onLeave(() => clearInterval(id));
  return id;
}

export function match(path) {
  for (const r of routes) {
    const m = r.rx.exec(path);
    if (m) {
      const params = {};
      r.keys.forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
      return { handler: r.handler, params };
    }
  }
  return null;
}

export function setRenderer(fn) { renderer = fn; }

export function current() {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search) };
}

export async function render() {
  for (const fn of cleanups) { try { fn(); } catch { /* ignore */ } }
  cleanups = [];
  renderToken += 1;
  const token = renderToken;
  await renderer(current(), () => token === renderToken);
}

export function navigate(path, { replace = false } = {}) {
  if (replace) window.history.replaceState(null, '', path);
  else window.history.pushState(null, '', path);
  render();
}

export function startRouter() {
  window.addEventListener('popstate', render);
  // Same-origin links navigate inside the app (modifier clicks open tabs as usual).
  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download') || e.defaultPrevented) return;
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const url = new URL(a.href, window.location.href);
    if (url.origin !== window.location.origin) return;
    if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/auth/')) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  return render();
}

export const enc = encodeURIComponent;
