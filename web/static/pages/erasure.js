// Erasure: find a person, preview whose content would be dropped (and
// what legal holds keep), confirm, and see the privacy.erasure record.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { Alert, Changes } from '../lib/admin.js';
import { Link } from '../lib/router.js';

function Held({ held }) {
  if (!held || held.length === 0) return null;
  return html`<p class="warning" data-held=${held.reduce((n, h) => n + h.events, 0)}>Legal holds keep the content of ${held.map((h) => `${h.events} events (hold “${h.name}”)`).join(', ')}: it is not erased while they stand.</p>`;
}

export function ErasurePage() {
  const [kind, setKind] = useState('actor_email');
  const [who, setWho] = useState('');
  const [preview, setPreview] = useState(null);
  const [confirmed, setConfirmed] = useState(false);
  const [result, setResult] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [n, setN] = useState(0);
  const body = () => ({ [kind]: who.trim() });

  const find = async (e) => {
    e.preventDefault();
    setError(''); setPreview(null); setResult(null); setConfirmed(false);
    try { setPreview(await api.post('/api/v1/erasure/preview', body())); } catch (e2) { setError(e2.message); }
  };
  const erase = async () => {
    setBusy(true); setError('');
    try {
      setResult(await api.post('/api/v1/erasure', body()));
      setPreview(null); setN((x) => x + 1);
    } catch (e2) { setError(e2.message); } finally { setBusy(false); }
  };
  const cats = preview ? Object.entries(preview.categories) : [];
  return html`
    <div class="admin-page">
      <h1>Erasure</h1>
      <p class="lead">Erasing a person removes the content of their events (prompts, messages, arguments). The events stay, and the log still verifies: each keeps the salted digest of what was removed.</p>
      <form class="card inline-form" onSubmit=${find} aria-labelledby="find-heading">
        <h2 id="find-heading">Find a person</h2>
        <label for="erase-kind">Identify by</label>
        <select id="erase-kind" value=${kind} onChange=${(e) => setKind(e.currentTarget.value)}>
          <option value="actor_email">E-mail address</option><option value="actor_id">Actor id</option>
        </select>
        <label for="erase-who">${kind === 'actor_email' ? 'E-mail address of the person' : 'Actor id of the person'}</label>
        <input id="erase-who" required value=${who} onInput=${(e) => { setWho(e.currentTarget.value); setPreview(null); }} />
        <button type="submit" class="secondary">Preview</button>
      </form>
      <${Alert} error=${error} />
      ${preview && html`
        <section class="card" aria-labelledby="preview-heading" data-preview-total=${preview.content_removed}>
          <h2 id="preview-heading">What would be erased</h2>
          <p role="status">${preview.content_removed} events would lose their content.</p>
          ${cats.length > 0 && html`<ul class="plain-list">${cats.map(([c, k]) => html`<li>${c}: ${k}</li>`)}</ul>`}
          <${Held} held=${preview.kept_by_holds} />
          <label class="check"><input type="checkbox" checked=${confirmed} onChange=${(e) => setConfirmed(e.currentTarget.checked)} />
            I understand that erased content cannot be restored</label>
          <button type="button" class="danger" disabled=${!confirmed || busy} onClick=${erase}>Erase this person's content</button>
        </section>`}
      ${result && html`
        <section class="card" aria-labelledby="result-heading" data-record=${result.record}>
          <h2 id="result-heading">Erased</h2>
          <p role="status">${result.content_removed} events lost their content.</p>
          <${Held} held=${result.kept_by_holds} />
          <p>The erasure is recorded: <${Link} href=${`/events/${result.record}`}>privacy.erasure record ${result.record}<//>.</p>
        </section>`}
      <${Changes} types="privacy.erasure" title="Past erasures" reloadKey=${n} />
    </div>`;
}
