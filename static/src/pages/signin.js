// Sign-in: Microsoft (MSAL redirect) with ROASTERY_AUTH=azuread; the dev issuer otherwise.
import { h } from '../lib/dom.js';
import { signInAzure, signInDev } from '../lib/auth.js';
import { form } from '../lib/widgets.js';

const ROLES = [
  ['DataScientist', 'Data scientist', 'datasets, compute, runs, models'],
  ['PlatformAdmin', 'Platform admin', 'approvals, quotas, prices, stores, audit'],
  ['StoreManager', 'Store manager', 'forecasts of your stores'],
];

export function signInPage(config, done) {
  if (config.auth === 'azuread') {
    return h('div', { class: 'signin card' },
      h('h1', {}, 'Sign in to Roastery'),
      h('p', {}, 'Use your GloboJava work account. Your roles come from the Roastery app in Azure AD.'),
      h('button', { type: 'button', class: 'primary', onClick: () => signInAzure() }, 'Sign in with Microsoft'));
  }
  const user = h('input', { name: 'user', required: true, pattern: '[a-z][a-z0-9\\-]{1,62}', autocomplete: 'username', value: '' });
  const roles = h('fieldset', {},
    h('legend', {}, 'Roles'),
    ROLES.map(([value, label, hint], i) => {
      const id = `role-${value}`;
      return h('div', { class: 'check' },
        h('input', { type: 'checkbox', id, name: 'roles', value, checked: i === 0 }),
        h('label', { for: id }, label, h('span', { class: 'hint' }, ` — ${hint}`)));
    }));
  return h('div', { class: 'signin card' },
    h('h1', {}, 'Sign in to Roastery'),
    h('p', {}, 'This server runs the local dev issuer (', h('code', {}, 'ROASTERY_AUTH=dev'), '): choose who you are. ',
      'The token goes through the same checks as an Azure AD token and is kept only for this browser tab.'),
    form({ 'aria-label': 'Dev sign-in' }, [
      h('div', { class: 'field' }, h('label', { for: 'signin-user' }, 'User name'),
        Object.assign(user, { id: 'signin-user' }),
        h('span', { class: 'hint' }, 'lower-case letters, digits and dashes, e.g. dana-scientist')),
      roles,
    ], async (data) => {
      const chosen = data.getAll('roles');
      if (!chosen.length) throw new Error('choose at least one role');
      await signInDev(String(data.get('user')), chosen);
      await done();
    }, 'Sign in'),
    h('p', { class: 'hint' }, 'Or use the dev issuer\'s own ', h('a', { href: config.dev.sign_in_url }, 'sign-in page'),
      ', then come back here in the same tab.'));
}
