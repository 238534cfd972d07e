// Export of the current view: CSV, JSON or NDJSON streamed at once when
// small, or as a background job (with progress, a download link and, if
// asked, an e-mail) when large or an evidence bundle.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { session } from '../lib/session.js';
import { href } from '../lib/query.js';

// Past this many events a job does the work (the server streams any size,
// but a browser tab should not wait on a long download to start).
export const DIRECT_MAX = 10000;

const FORMATS = [
  { id: 'csv', label: 'CSV', hint: 'one row per event, for spreadsheets' },
  { id: 'json', label: 'JSON', hint: 'one array of events, as the API shows them' },
  { id: 'ndjson', label: 'NDJSON', hint: 'one event per line' },
  { id: 'bundle', label: 'Evidence bundle', hint: 'a zip anyone can verify offline with the log key' },
];

// filtersObject turns the view into the job's filters: a string per
// parameter, or a list when repeated.
function filtersObject(params) {
  const out = {};
  for (const k of new Set(params.keys())) {
    const vs = params.getAll(k);
    out[k] = vs.length === 1 ? vs[0] : vs;
  }
  return out;
}

export function ExportDialog({ params, total, onClose }) {
  const s = session.use();
  const dialog = useRef(null);
  const [format, setFormat] = useState('csv');
  const [notify, setNotify] = useState(false);
  const [email, setEmail] = useState((s && s.user && s.user.email) || '');
  const [job, setJob] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const asJob = format === 'bundle' || total > DIRECT_MAX;
  // The view's order: the file's rows are the rows on screen.
  const view = new URLSearchParams(params);
  if (!view.has('order')) view.set('order', 'desc');

  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
  }, []);

  useEffect(() => {
    if (!job || job.state === 'ready' || job.state === 'failed' || job.state === 'expired') return undefined;
    const t = setTimeout(async () => {
      try {
        setJob(await api.get(`/api/v1/exports/${encodeURIComponent(job.id)}`));
      } catch (e) {
        setError(e.message);
      }
    }, 1000);
    return () => clearTimeout(t);
  }, [job]);

  const start = async (e) => {
    e.preventDefault();
    setError('');
    if (!asJob) {
      const p = new URLSearchParams(view);
      p.set('format', format);
      const a = document.createElement('a');
      a.href = href('/api/v1/events/export', p);
      a.download = '';
      document.body.append(a);
      a.click();
      a.remove();
      onClose();
      return;
    }
    setBusy(true);
    try {
      const body = { format, filters: filtersObject(view) };
      if (notify && email.trim()) body.notify = email.trim();
      const created = await api.post('/api/v1/exports', body);
      setJob({ ...created, progress: 0 });
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };

  return html`
    <dialog ref=${dialog} class="export-dialog" aria-labelledby="export-title" onClose=${onClose} onCancel=${onClose}>
      <form method="dialog" onSubmit=${start}>
        <h2 id="export-title">Export this view</h2>
        <p>${total === undefined ? 'The events of the current view' : `${total.toLocaleString()} events`}, in the order shown.</p>
        ${!job && html`
          <fieldset>
            <legend>Format</legend>
            ${FORMATS.map((f) => html`
              <label class="radio"><input type="radio" name="format" value=${f.id} checked=${format === f.id}
                onChange=${() => setFormat(f.id)} /> ${f.label} <span class="hint">${f.hint}</span></label>`)}
          </fieldset>
          ${asJob && html`
            <p class="hint">${format === 'bundle' ? 'Evidence bundles' : `Exports of more than ${DIRECT_MAX.toLocaleString()} events`} are prepared in the background; this window shows the progress and the download link.</p>
            <label class="check"><input type="checkbox" checked=${notify} onChange=${(e) => setNotify(e.currentTarget.checked)} /> Also e-mail the link</label>
            ${notify && html`<label>E-mail address <input type="email" value=${email} onInput=${(e) => setEmail(e.currentTarget.value)} /></label>`}`}
        `}
        ${job && html`
          <div class="job" role="status">
            <p>Export ${job.id}: <strong>${job.state}</strong></p>
            ${(job.state === 'pending' || job.state === 'running') && html`
              <progress max=${total || undefined} value=${job.progress || 0} aria-label="Events written"></progress>
              <p>${(job.progress || 0).toLocaleString()} of ${total === undefined ? '?' : total.toLocaleString()} events written</p>`}
            ${job.state === 'ready' && job.download_url && html`
              <p><a class="button" href=${job.download_url} download>Download the ${format === 'bundle' ? 'bundle' : 'file'}</a> (${(job.size_bytes || 0).toLocaleString()} bytes; the link expires${job.expires_at ? ` at ${job.expires_at}` : ''})</p>`}
            ${job.state === 'failed' && html`<p class="error">${job.error}</p>`}
          </div>`}
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <div class="dialog-buttons">
          ${!job && html`<button type="submit" disabled=${busy}>${asJob ? 'Start the export' : 'Download'}</button>`}
          <button type="button" class="secondary" onClick=${() => { dialog.current.close(); }}>${job ? 'Close' : 'Cancel'}</button>
        </div>
      </form>
    </dialog>`;
}
