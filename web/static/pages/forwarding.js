// Forwarding and exports: sinks with their state, lag in events and
// seconds, last error, pause and resume, a test delivery; export jobs with
// their progress and download links.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { Alert, When, useLoad } from '../lib/admin.js';
import { formatDuration } from '../lib/time.js';

function Sinks() {
  const [sinks, error, reload] = useLoad(() => api.get('/api/v1/sinks'));
  const [err, setErr] = useState('');
  const [msg, setMsg] = useState('');
  // Lag moves on its own: read it again every few seconds.
  useEffect(() => {
    const t = setInterval(reload, 2000);
    return () => clearInterval(t);
  }, []);
  const act = async (fn, done) => {
    setErr(''); setMsg('');
    try { await fn(); setMsg(done); reload(); } catch (e) { setErr(e.message); }
  };
  return html`
    <section class="card" aria-labelledby="sinks-heading">
      <h2 id="sinks-heading">Sinks</h2>
      <${Alert} error=${error || err} />
      ${msg && html`<p class="notice" role="status">${msg}</p>`}
      ${sinks && ((sinks.data || []).length === 0 ? html`<p>No sinks. Create them through the API (POST /api/v1/sinks).</p>` : html`
        <table class="admin-table">
          <caption class="visually-hidden">Sinks</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">State</th><th scope="col">Lag</th><th scope="col">Last delivered</th><th scope="col">Last error</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>${sinks.data.map((k) => html`
            <tr data-sink=${k.name} data-state=${k.state} data-lag-events=${k.lag_events}>
              <td>${k.name}</td><td>${k.type}</td>
              <td>${k.state}${k.paused_reason ? ` (${k.paused_reason})` : ''}</td>
              <td>${k.lag_events} events, ${formatDuration(k.lag_seconds)}</td>
              <td><${When} at=${k.last_delivered_at} /></td>
              <td>${k.last_error ? html`${k.last_error} (<${When} at=${k.last_error_at} />)` : 'none'}</td>
              <td class="actions">
                ${k.state === 'paused'
                  ? html`<button type="button" class="secondary" onClick=${() => act(() => api.patch(`/api/v1/sinks/${k.id}`, { paused: false }), `${k.name} resumed.`)}>Resume ${k.name}</button>`
                  : html`<button type="button" class="secondary" onClick=${() => act(() => api.patch(`/api/v1/sinks/${k.id}`, { paused: true }), `${k.name} paused.`)}>Pause ${k.name}</button>`}
                <button type="button" class="ghost" onClick=${() => act(() => api.post(`/api/v1/sinks/${k.id}/test`, {}), `A test event was sent to ${k.name}: the lag returns to zero once it is delivered.`)}>Test ${k.name}</button>
              </td>
            </tr>`)}
          </tbody>
        </table>`)}
    </section>`;
}

function Exports() {
  const [jobs, error, reload] = useLoad(() => api.get('/api/v1/exports'));
  useEffect(() => {
    const t = setInterval(reload, 3000);
    return () => clearInterval(t);
  }, []);
  return html`
    <section class="card" aria-labelledby="exports-heading">
      <h2 id="exports-heading">Exports</h2>
      <${Alert} error=${error} />
      ${jobs && ((jobs.data || []).length === 0 ? html`<p>No export jobs. Start one from the audit log's Export button.</p>` : html`
        <table class="admin-table">
          <caption class="visually-hidden">Export jobs</caption>
          <thead><tr><th scope="col">Started</th><th scope="col">Format</th><th scope="col">State</th><th scope="col">Progress</th><th scope="col">Download</th></tr></thead>
          <tbody>${jobs.data.map((j) => html`
            <tr data-export=${j.id} data-state=${j.state}>
              <td><${When} at=${j.created_at} /></td><td>${j.format}</td>
              <td>${j.state}${j.error ? `: ${j.error}` : ''}</td>
              <td><progress max="1" value=${j.state === 'ready' ? 1 : undefined} aria-label=${`Progress of export ${j.id}`}></progress> ${j.progress} events${j.size_bytes ? `, ${j.size_bytes} bytes` : ''}</td>
              <td>${j.download_url ? html`<a href=${j.download_url}>Download export ${j.id}</a> (until <${When} at=${j.expires_at} />)` : '—'}</td>
            </tr>`)}
          </tbody>
        </table>`)}
    </section>`;
}

export function ForwardingPage() {
  return html`
    <div class="admin-page">
      <h1>Forwarding and exports</h1>
      <${Sinks} />
      <${Exports} />
    </div>`;
}
