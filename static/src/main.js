// Roastery's portal: one page per thing a data scientist, an admin or a store manager does, all
// through the same /api/v1 the notebooks use.
import { h, replace } from './lib/dom.js';
import { get, setUnauthorizedHandler } from './lib/api.js';
import { initAuth, signedIn, signOut } from './lib/auth.js';
import { navigate, route, setRenderer, startRouter, match } from './lib/router.js';
import { announce, problemView, showFlash } from './lib/widgets.js';
import { signInPage } from './pages/signin.js';
import { homePage } from './pages/home.js';
import { projectPage } from './pages/project.js';
import { operationPage } from './pages/operations.js';
import { adminPage } from './pages/admin.js';
import { storesPage, storePage } from './pages/stores.js';

export const session = { config: null, me: null };

const app = document.getElementById('app');

route('/', homePage);
route('/projects/:project', projectPage);
route('/projects/:project/:section', projectPage);
route('/projects/:project/:section/:item', projectPage);
route('/operations/:id', operationPage);
route('/admin/:section', adminPage);
route('/stores', storesPage);
route('/stores/:store', storePage);

const has = (role) => Boolean(session.me && session.me.roles.includes(role));

function navLinks() {
  const links = [['/', 'Home']];
  if (has('PlatformAdmin')) links.push(['/admin/approvals', 'Admin']);
  if (has('StoreManager') || has('PlatformAdmin')) links.push(['/stores', 'Stores']);
  return links;
}

function shell(path) {
  const active = (href) => {
    if (href === '/') return path === '/' || path.startsWith('/projects') || path.startsWith('/operations');
    if (href.startsWith('/admin')) return path.startsWith('/admin');
    return path === href || path.startsWith(`${href}/`);
  };
  const nav = h('nav', { class: 'mainnav', 'aria-label': 'Main' },
    h('ul', {}, navLinks().map(([href, text]) => h('li', {}, h('a', { href, 'aria-current': active(href) ? 'page' : null }, text)))));
  const who = session.me
    ? h('div', { class: 'who' },
      h('span', {}, session.me.name, ' ', h('span', { class: 'roles' }, `(${session.me.roles.join(', ') || 'no roles'})`)),
      h('button', { type: 'button', class: 'link-button', onClick: async () => { await signOut(); session.me = null; navigate('/'); } }, 'Sign out'))
    : null;
  return h('div', { class: 'layout' },
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '/' }, h('span', { 'aria-hidden': 'true' }, '☕'), ' Roastery'),
      who),
    session.me ? nav : null,
    h('div', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite', hidden: true }),
    h('main', { id: 'main', tabindex: '-1' }, h('p', { class: 'loading' }, 'Loading…')));
}

async function renderPage(loc, fresh) {
  if (!signedIn()) {
    replace(app, shell(loc.path));
    const main = document.getElementById('main');
    replace(main, signInPage(session.config, async () => { session.me = null; await renderPage(loc, fresh); }));
    document.title = 'Sign in · Roastery';
    return;
  }
  if (!session.me) {
    try {
      session.me = await get('/api/v1/me');
    } catch (err) {
      replace(app, shell(loc.path));
      replace(document.getElementById('main'), problemView(err));
      return;
    }
  }
  replace(app, shell(loc.path));
  showFlash();
  const main = document.getElementById('main');
  const m = match(loc.path);
  if (!m) {
    replace(main, h('h1', {}, 'Page not found'), h('p', {}, 'There is nothing at this address. ', h('a', { href: '/' }, 'Go home')));
    return;
  }
  try {
    const node = await m.handler({ params: m.params, query: loc.query, session });
    if (!fresh()) return;
    replace(main, node);
  } catch (err) {
    if (!fresh()) return;
    replace(main, problemView(err));
  }
  const h1 = main.querySelector('h1');
  document.title = `${h1 ? h1.textContent : 'Roastery'} · Roastery`;
  // Move focus to the new page for keyboard and screen-reader users (not on first load).
  if (renderPage.count++ > 0) main.focus({ preventScroll: false });
}
renderPage.count = 0;

async function boot() {
  try {
    const r = await fetch('/config.json', { headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`the server's /config.json answered ${r.status}`);
    session.config = await r.json();
    const back = await initAuth(session.config);
    if (back) window.history.replaceState(null, '', back);
  } catch (err) {
    replace(app, h('main', { id: 'main' }, h('h1', {}, 'Roastery cannot start'), h('p', { role: 'alert' }, String(err.message || err))));
    return;
  }
  setUnauthorizedHandler(() => {
    session.me = null;
    announce('Your session ended; sign in again.', 'warn');
  });
  setRenderer(renderPage);
  await startRouter();
}

boot();
