// The API client: bearer token on every call, problem+json turned into ApiError, an
// Idempotency-Key on every POST (a retried click never creates twice), ETags for If-Match.
import { forgetToken, getToken } from './auth.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `request failed (${status})`);
    this.status = status;
    this.problem = problem || {};
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

function withQuery(path, query) {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v != null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

async function headers(extra) {
  const t = await getToken();
  const hd = { Accept: 'application/json', ...extra };
  if (t) hd.Authorization = `Bearer ${t}`;
  return hd;
}

async function fail(r) {
  let problem = null;
  try { problem = await r.json(); } catch { /* not JSON */ }
  if (r.status === 401) {
    forgetToken();
    onUnauthorized();
  }
  throw new ApiError(r.status, problem);
}

// api('GET', '/api/v1/me') -> parsed JSON (or null for 204). opts: {body, query, ifMatch, raw}.
export async function api(method, path, opts = {}) {
  const extra = {};
  let body;
  if (opts.body !== undefined) {
    extra['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  if (method === 'POST') extra['Idempotency-Key'] = crypto.randomUUID();
  if (opts.ifMatch) extra['If-Match'] = opts.ifMatch;
  if (opts.accept) extra.Accept = opts.accept;
  const r = await fetch(withQuery(path, opts.query), { method, headers: await headers(extra), body });
  if (!r.ok) await fail(r);
  if (opts.raw) return r;
  if (r.status === 204) return null;
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (data && typeof data === 'object' && r.headers.get('ETag')) {
    Object.defineProperty(data, '$etag', { value: r.headers.get('ETag'), enumerable: false });
  }
  return data;
}

export const get = (path, query) => api('GET', path, { query });
export const post = (path, body, opts = {}) => api('POST', path, { ...opts, body: body ?? {} });

// Every page of a cursor-paginated list, up to max items.
export async function all(path, query = {}, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(path, { ...query, limit: 200, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

// A CSV (or any file) fetched with the token and handed to the browser as a download, so the
// token never appears in a URL.
export async function download(path, filename, accept = 'text/csv') {
  const r = await api('GET', path, { raw: true, accept });
  const blob = await r.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Uploads a file as the request body with XMLHttpRequest (fetch has no upload progress).
// onProgress(loaded, total). Resolves {status, body, location}.
export async function upload(path, file, onProgress, query) {
  const token = await getToken();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', withQuery(path, query));
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    const gz = /\.gz$/i.test(file.name);
    xhr.setRequestHeader('Content-Type', 'text/csv');
    if (gz) xhr.setRequestHeader('Content-Encoding', 'gzip');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new ApiError(0, { detail: 'the upload was interrupted (network error)' }));
    xhr.onabort = () => reject(new ApiError(0, { detail: 'the upload was canceled' }));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* empty */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ status: xhr.status, body, location: xhr.getResponseHeader('Location') });
      } else {
        if (xhr.status === 401) { forgetToken(); onUnauthorized(); }
        reject(new ApiError(xhr.status, body));
      }
    };
    xhr.send(file);
  });
}
