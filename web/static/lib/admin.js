// Shared pieces of the administration pages (settings, people, erasure,
// holds, forwarding, alerts): loading a resource, errors in role="alert", times,
// and the list of who changed what, read from the log itself.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { api } from './api.js';
import { timeZone } from './prefs.js';
import { formatTime } from './time.js';
import { Link } from './router.js';

// useLoad calls load() now and whenever reload() is called; it answers
// [value, error, reload].
export function useLoad(load, deps = []) {
  const [value, setValue] = useState(undefined);
  const [error, setError] = useState('');
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    load().then((v) => { if (live) { setValue(v); setError(''); } }, (e) => { if (live) setError(e.message); });
    return () => { live = false; };
  }, [...deps, n]);
  return [value, error, useCallback(() => setN((x) => x + 1), [])];
}

export function Alert({ error, id }) {
  return error ? html`<p class="error" role="alert" id=${id}>${error}</p>` : null;
}

// Status says what a change did; nothing until there is something.
export function Status({ text }) {
  return text ? html`<p class="notice" role="status">${text}</p>` : null;
}

export function When({ at }) {
  const tz = timeZone.use();
  if (!at) return html`<span>never</span>`;
  return html`<time datetime=${at}>${formatTime(at, tz)}</time>`;
}

// actorName names who did something, from an event's actor.
export function actorName(a) {
  if (!a) return 'unknown';
  return a.name || a.email || a.id || a.type;
}

// Changes lists the latest records of the given types (who changed what,
// when) from the audit log, each a link to its event.
export function Changes({ types, title = 'Changes', reloadKey }) {
  const [page, error] = useLoad(() => api.get('/api/v1/events', { params: { type: types, limit: '10' } }), [types, reloadKey]);
  return html`
    <section class="card" aria-labelledby="changes-heading">
      <h2 id="changes-heading">${title}</h2>
      <${Alert} error=${error} />
      ${page && (page.data.length === 0 ? html`<p>No changes recorded yet.</p>` : html`
        <table class="admin-table">
          <caption class="visually-hidden">${title}, newest first</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th></tr></thead>
          <tbody>${page.data.map((e) => html`
            <tr data-change=${e.type}>
              <td><${When} at=${e.time} /></td>
              <td>${actorName(e.actor)}</td>
              <td><${Link} href=${`/events/${e.id}`}>${e.type}${e.target && e.target.name ? ` ${e.target.name}` : ''}<//></td>
            </tr>`)}
          </tbody>
        </table>`)}
    </section>`;
}
