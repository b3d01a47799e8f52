// Sign-in. ROASTERY_AUTH=azuread: MSAL (authorization code flow with PKCE), its cache in
// sessionStorage. ROASTERY_AUTH=dev: a token from the dev issuer, kept in sessionStorage under
// 'roastery_token' (the key the issuer's own sign-in page writes), so it lives as long as the tab
// and is never in localStorage or a URL.
const DEV_KEY = 'roastery_token';
let config = null;
let msal = null; // { app, lib, scopes }
let account = null;
const listeners = new Set();

export function onSignOut(fn) { listeners.add(fn); }

function decodeJwt(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return null;
  }
}

function devToken() {
  const t = sessionStorage.getItem(DEV_KEY);
  if (!t) return null;
  const claims = decodeJwt(t);
  if (!claims || (claims.exp && claims.exp * 1000 < Date.now() + 30000)) {
    sessionStorage.removeItem(DEV_KEY);
    return null;
  }
  return t;
}

// Returns the path to go to after a redirect sign-in (azuread), or null.
export async function initAuth(cfg) {
  config = cfg;
  if (cfg.auth !== 'azuread') return null;
  const aad = cfg.azuread || {};
  if (!aad.client_id) throw new Error('the server has no Azure AD client id for the portal (ROASTERY_AAD_SPA_CLIENT_ID)');
  const lib = await import('@azure/msal-browser');
  const app = new lib.PublicClientApplication({
    auth: {
      clientId: aad.client_id,
      authority: aad.authority,
      redirectUri: `${window.location.origin}/`,
      postLogoutRedirectUri: `${window.location.origin}/`,
    },
    cache: { cacheLocation: 'sessionStorage' },
  });
  await app.initialize();
  msal = { app, lib, scopes: aad.scopes || [] };
  const result = await app.handleRedirectPromise();
  if (result && result.account) app.setActiveAccount(result.account);
  account = app.getActiveAccount() || app.getAllAccounts()[0] || null;
  if (account) app.setActiveAccount(account);
  return result && result.state && result.state.startsWith('/') ? result.state : null;
}

export function signedIn() {
  if (!config) return false;
  return config.auth === 'azuread' ? Boolean(account) : Boolean(devToken());
}

export async function getToken() {
  if (config.auth !== 'azuread') return devToken();
  if (!account) return null;
  try {
    const r = await msal.app.acquireTokenSilent({ scopes: msal.scopes, account });
    return r.accessToken;
  } catch (e) {
    if (e instanceof msal.lib.InteractionRequiredAuthError) {
      await msal.app.acquireTokenRedirect({ scopes: msal.scopes, state: currentPath() });
      return null;
    }
    throw e;
  }
}

function currentPath() {
  return window.location.pathname + window.location.search;
}

// azuread: leaves for Azure AD and comes back to the same page.
export async function signInAzure() {
  await msal.app.loginRedirect({ scopes: msal.scopes, state: currentPath() });
}

// dev: asks the dev issuer for a token for this user and these roles.
export async function signInDev(user, roles) {
  const r = await fetch(config.dev.token_url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user, roles, ttl_seconds: 8 * 3600 }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error(body.detail || `sign-in failed (${r.status})`);
    err.problem = body;
    throw err;
  }
  sessionStorage.setItem(DEV_KEY, body.access_token);
}

export async function signOut() {
  for (const fn of listeners) fn();
  if (config.auth === 'azuread' && msal) {
    const a = account;
    account = null;
    await msal.app.logoutRedirect({ account: a });
    return;
  }
  sessionStorage.removeItem(DEV_KEY);
}

// The token went bad (expired, revoked key): forget it so the sign-in page shows.
export function forgetToken() {
  if (config && config.auth !== 'azuread') sessionStorage.removeItem(DEV_KEY);
}
