// The one client of the API: every page reads and writes through it. It
// sends the session cookie (same origin), the CSRF token with every write,
// turns error bodies into ApiError, and sends the person to sign-in when
// the session has ended.

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let csrfToken = '';
let onSignedOut = () => {};

export function setCSRFToken(token) {
  csrfToken = token || '';
}

// onSessionEnded sets what happens when the API answers 401 to a request of
// a signed-in page.
export function onSessionEnded(fn) {
  onSignedOut = fn;
}

export async function request(method, path, { params, body, raw = false, signal } = {}) {
  const search = params === undefined ? '' : String(params instanceof URLSearchParams ? params : new URLSearchParams(params));
  const url = search ? `${path}?${search}` : path;
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(url, {
      method, headers, signal, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.');
  }
  if (!res.ok) {
    let code = `http_${res.status}`;
    let message = res.statusText || 'The request failed.';
    let field;
    try {
      const j = await res.json();
      ({ code, message, field } = j.error);
    } catch (e) { /* not our error body */ }
    const err = new ApiError(res.status, code, message, field);
    if (res.status === 401 && !path.startsWith('/api/v1/session')) onSignedOut(err);
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export const api = {
  get: (path, opts) => request('GET', path, opts),
  post: (path, body, opts) => request('POST', path, { ...opts, body }),
  put: (path, body, opts) => request('PUT', path, { ...opts, body }),
  patch: (path, body, opts) => request('PATCH', path, { ...opts, body }),
  del: (path, opts) => request('DELETE', path, opts),
};
