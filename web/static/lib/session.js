// Who is signed in: GET /api/v1/session, kept for every page. Roles and
// scopes decide what the console shows; the server enforces them anyway.
import { api, setCSRFToken } from './api.js';
import { shared } from './store.js';

// session is null when nobody is signed in, undefined while unknown.
export const session = shared(undefined);

export function setSession(s) {
  setCSRFToken(s ? s.csrf_token : '');
  session.set(s);
}

export async function loadSession() {
  try {
    setSession(await api.get('/api/v1/session'));
  } catch (e) {
    if (e.status === 401 || e.status === 404) setSession(null);
    else throw e;
  }
  return session.get();
}

export function can(s, scope) {
  return !!s && s.scopes.includes(scope);
}

export async function signOut() {
  try {
    await api.del('/api/v1/session');
  } finally {
    setSession(null);
  }
}

// who names the person (or token) signed in.
export function who(s) {
  if (!s) return '';
  if (s.user) return s.user.name || s.user.email;
  return s.token ? `token ${s.token.name || s.token.id}` : s.role;
}
