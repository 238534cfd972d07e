// Legal holds: events of actors, a time range or a filter kept from
// retention and erasure until released; who placed each and why.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { Alert, Changes, When, actorName, useLoad } from '../lib/admin.js';
import { fromInput } from '../lib/time.js';
import { timeZone } from '../lib/prefs.js';

function scopeOf(h) {
  const parts = [];
  if (h.actor_ids) parts.push(`actors ${h.actor_ids.join(', ')}`);
  if (h.actor_emails) parts.push(`people ${h.actor_emails.join(', ')}`);
  if (h.since || h.until) parts.push(`from ${h.since || 'the start'} to ${h.until || 'now on'}`);
  if (h.filter) parts.push(`filter ${h.filter}`);
  return parts.join('; ');
}

export function HoldsPage() {
  const tz = timeZone.use();
  const [holds, error, reload] = useLoad(() => api.get('/api/v1/holds'));
  const [f, setF] = useState({ name: '', reason: '', actors: '', since: '', until: '', filter: '' });
  const [err, setErr] = useState('');
  const [msg, setMsg] = useState('');
  const [releasing, setReleasing] = useState(null);
  const [why, setWhy] = useState('');
  const [n, setN] = useState(0);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });

  const place = async (e) => {
    e.preventDefault();
    setErr(''); setMsg('');
    const actors = f.actors.split(',').map((a) => a.trim()).filter(Boolean);
    const body = { name: f.name, reason: f.reason, filter: f.filter.trim() || undefined,
      actor_emails: actors.filter((a) => a.includes('@')), actor_ids: actors.filter((a) => !a.includes('@')) };
    if (f.since) body.since = fromInput(f.since, tz);
    if (f.until) body.until = fromInput(f.until, tz);
    try {
      const h = await api.post('/api/v1/holds', body);
      setMsg(`Hold “${h.name}” placed.`);
      setF({ name: '', reason: '', actors: '', since: '', until: '', filter: '' });
      reload(); setN((x) => x + 1);
    } catch (e2) { setErr(e2.message); }
  };
  const release = async (e) => {
    e.preventDefault();
    setErr(''); setMsg('');
    try {
      await api.post(`/api/v1/holds/${releasing.id}/release`, { reason: why });
      setMsg(`Hold “${releasing.name}” released.`);
      setReleasing(null); setWhy('');
      reload(); setN((x) => x + 1);
    } catch (e2) { setErr(e2.message); }
  };
  return html`
    <div class="admin-page">
      <h1>Legal holds</h1>
      <p class="lead">While a hold stands, the events it covers keep their content and metadata whatever retention and erasure say.</p>
      <${Alert} error=${error || err} />
      ${msg && html`<p class="notice" role="status">${msg}</p>`}
      <section class="card" aria-labelledby="holds-heading">
        <h2 id="holds-heading">Holds</h2>
        ${holds && (holds.data.length === 0 ? html`<p>No holds.</p>` : html`
          <table class="admin-table">
            <caption class="visually-hidden">Legal holds, newest first</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Covers</th><th scope="col">Why</th><th scope="col">Placed by</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>${holds.data.map((h) => html`
              <tr data-hold=${h.name}>
                <td>${h.name}</td><td>${scopeOf(h)}</td><td>${h.reason}</td>
                <td>${actorName(h.placed_by)}, <${When} at=${h.placed_at} /></td>
                <td>${h.released_at ? html`Released by ${actorName(h.released_by)}, <${When} at=${h.released_at} />: ${h.release_reason}` : 'In force'}</td>
                <td>${!h.released_at && html`<button type="button" class="secondary" onClick=${() => { setReleasing(h); setWhy(''); }}>Release ${h.name}</button>`}</td>
              </tr>`)}
            </tbody>
          </table>`)}
        ${releasing && html`
          <form class="inline-form" onSubmit=${release}>
            <label for="release-reason">Why is “${releasing.name}” released?</label>
            <input id="release-reason" required value=${why} onInput=${(e) => setWhy(e.currentTarget.value)} />
            <button type="submit" class="danger">Release the hold</button>
            <button type="button" class="ghost" onClick=${() => setReleasing(null)}>Cancel</button>
          </form>`}
      </section>
      <form class="card" onSubmit=${place} aria-labelledby="place-heading">
        <h2 id="place-heading">Place a hold</h2>
        <label for="hold-name">Name</label><input id="hold-name" required value=${f.name} onInput=${set('name')} />
        <label for="hold-reason">Reason</label><input id="hold-reason" required value=${f.reason} onInput=${set('reason')} />
        <label for="hold-actors">Actors (e-mail addresses or actor ids, comma-separated)</label>
        <input id="hold-actors" value=${f.actors} onInput=${set('actors')} />
        <label for="hold-since">From (${tz === 'utc' ? 'UTC' : 'local time'})</label>
        <input id="hold-since" type="datetime-local" value=${f.since} onInput=${set('since')} />
        <label for="hold-until">Until</label>
        <input id="hold-until" type="datetime-local" value=${f.until} onInput=${set('until')} />
        <label for="hold-filter">Filter (as in the audit log's address, such as type=auth.*)</label>
        <input id="hold-filter" value=${f.filter} onInput=${set('filter')} />
        <button type="submit">Place hold</button>
      </form>
      <${Changes} types="privacy.hold_placed,privacy.hold_released" title="Hold records" reloadKey=${n} />
    </div>`;
}
