// Settings: the AI interaction log switch (and the moment it was turned
// on), retention tiers per category with presets and a preview of the next
// run, DLP, and the MCP gateways' policy with errors at their line. Who
// changed what comes from the log itself.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { Alert, Changes, When, useLoad } from '../lib/admin.js';
import { lineOf, lineOfOffset } from '../lib/jsonpath.js';

export const PRESETS = [[30, '30 days'], [90, '90 days'], [180, '180 days'], [365, '1 year'], [730, '2 years'], [0, 'Forever']];

function DaysSelect({ id, label, value, onChange }) {
  const known = PRESETS.some(([d]) => d === value);
  return html`
    <label for=${id} class="visually-hidden">${label}</label>
    <select id=${id} value=${String(value)} onChange=${(e) => onChange(Number(e.currentTarget.value))}>
      ${!known && html`<option value=${String(value)}>${value} days</option>`}
      ${PRESETS.map(([d, name]) => html`<option value=${String(d)}>${name}</option>`)}
    </select>`;
}

function Preview({ preview }) {
  if (!preview) return null;
  const cats = Object.entries(preview.categories);
  return html`
    <div class="preview" role="status" aria-live="polite">
      <h3>What the next run would remove</h3>
      ${cats.length === 0 ? html`<p>Nothing: no event is past its rule.</p>` : html`
        <table class="admin-table">
          <caption class="visually-hidden">Removal preview per category</caption>
          <thead><tr><th scope="col">Category</th><th scope="col">Content removed</th><th scope="col">Events removed (metadata)</th></tr></thead>
          <tbody>${cats.map(([c, n]) => html`<tr data-category=${c}><th scope="row">${c}</th><td>${n.content_removed}</td><td>${n.envelopes_removed}</td></tr>`)}</tbody>
        </table>`}
      ${preview.kept_by_holds.length > 0 && html`
        <p class="warning">Legal holds keep ${preview.kept_by_holds.map((h) => `${h.events} events (${h.name})`).join(', ')} from this run.</p>`}
    </div>`;
}

export function SettingsPage() {
  const [stored, loadError, reload] = useLoad(() => api.get('/api/v1/settings'));
  const [st, setSt] = useState(null);
  const [policy, setPolicy] = useState('');
  const [detectors, setDetectors] = useState('');
  const [error, setError] = useState('');
  const [policyError, setPolicyError] = useState(null);
  const [saved, setSaved] = useState('');
  const [preview, setPreview] = useState(null);
  const [busy, setBusy] = useState(false);
  const [changes, setChanges] = useState(0);
  const [newCat, setNewCat] = useState('');
  const [ran, setRan] = useState('');

  useEffect(() => {
    if (!stored) return;
    setSt(structuredClone(stored));
    setPolicy(stored.mcp_policy ? JSON.stringify(stored.mcp_policy, null, 2) : '');
    setDetectors((stored.dlp.detectors || []).join(', '));
  }, [stored]);

  if (loadError) return html`<h1>Settings</h1><${Alert} error=${loadError} />`;
  if (!st) return html`<h1>Settings</h1><p role="status">Loading…</p>`;

  const setRule = (i, field, v) => {
    const retention = st.retention.map((r, j) => (j === i ? { ...r, [field]: v } : r));
    setSt({ ...st, retention });
    setPreview(null);
  };
  const body = () => {
    let mcp = null;
    if (policy.trim()) {
      try {
        mcp = JSON.parse(policy);
      } catch (e) {
        const m = /position (\d+)/.exec(e.message);
        const line = m ? lineOfOffset(policy, Number(m[1])) : (/line (\d+)/.exec(e.message) || [])[1];
        throw Object.assign(new Error(`The MCP policy is not JSON: ${e.message}`), { line: Number(line) || 0 });
      }
    }
    const out = { ai_interaction_logs_enabled: st.ai_interaction_logs_enabled, retention: st.retention,
      dlp: { mode: st.dlp.mode, detectors: detectors.split(',').map((d) => d.trim()).filter(Boolean) },
      keep_attachment_bytes: st.keep_attachment_bytes };
    if (mcp !== null) out.mcp_policy = mcp;
    return out;
  };
  const fail = (e) => {
    const m = /^mcp_policy: (not a policy: )?([A-Za-z_]+(?:\[\d+\])*(?:\.[A-Za-z_]+(?:\[\d+\])*)*)/.exec(e.message || '');
    if (e.line !== undefined || m) {
      const line = e.line !== undefined ? e.line : lineOf(policy, m[2]);
      setPolicyError({ line, message: e.message });
    } else setError(e.message);
  };
  const save = async (ev) => {
    ev.preventDefault();
    setBusy(true); setError(''); setPolicyError(null); setSaved('');
    try {
      const r = await api.put('/api/v1/settings', body());
      const held = r.retention_kept_by_holds;
      setSaved(held && held.length ? `Saved. Legal holds keep ${held.map((h) => `${h.events} events (${h.name})`).join(', ')} from the new rules until released.` : 'Saved.');
      setChanges((n) => n + 1);
      reload();
    } catch (e) { fail(e); } finally { setBusy(false); }
  };
  const runPreview = async () => {
    setError(''); setPreview(null);
    try { setPreview(await api.post('/api/v1/retention/preview', body())); } catch (e) { fail(e); }
  };
  const runNow = async () => {
    setError(''); setRan('');
    try {
      const r = await api.post('/api/v1/retention/run');
      const held = r.kept_by_holds && r.kept_by_holds.length ? ` Legal holds kept ${r.kept_by_holds.map((h) => `${h.events} events (${h.name})`).join(', ')}.` : '';
      setRan(`Retention ran: ${r.content_removed} contents and ${r.envelopes_removed} events removed.${held}`);
      setChanges((n) => n + 1);
    } catch (e) { setError(e.message); }
  };
  const addCategory = () => {
    const c = newCat.trim();
    if (!c) return;
    setSt({ ...st, retention: [...st.retention, { category: c, content_days: 90, metadata_days: 730 }] });
    setNewCat('');
  };
  const policyLines = policy.split('\n').length;

  return html`
    <div class="admin-page">
      <h1>Settings</h1>
      <form onSubmit=${save} aria-describedby="settings-error">
        <section class="card" aria-labelledby="ai-heading">
          <h2 id="ai-heading">AI interaction logs</h2>
          <label class="switch">
            <input type="checkbox" checked=${st.ai_interaction_logs_enabled}
              onChange=${(e) => setSt({ ...st, ai_interaction_logs_enabled: e.currentTarget.checked })} />
            Collect AI interaction logs
          </label>
          <p class="hint">Only interactions that happen after this is turned on are recorded; earlier ones sent later are refused.</p>
          <p data-ai-enabled-at=${stored.ai_interaction_logs_enabled_at || ''}>
            ${stored.ai_interaction_logs_enabled && stored.ai_interaction_logs_enabled_at
              ? html`On since <${When} at=${stored.ai_interaction_logs_enabled_at} />.` : 'Off: AI interactions are not recorded.'}
          </p>
        </section>

        <section class="card" aria-labelledby="retention-heading">
          <h2 id="retention-heading">Retention</h2>
          <p class="hint">Per category: how long content is kept, and how long the event itself (its metadata). Removed events stay provable: their hashes are kept.</p>
          <table class="admin-table">
            <caption class="visually-hidden">Retention rules</caption>
            <thead><tr><th scope="col">Category</th><th scope="col">Content kept</th><th scope="col">Metadata kept</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
            <tbody>${st.retention.map((r, i) => html`
              <tr data-category=${r.category}>
                <th scope="row">${r.category === '*' ? 'Every other category (*)' : r.category}</th>
                <td><${DaysSelect} id=${`content-${i}`} label=${`Content kept for ${r.category}`} value=${r.content_days} onChange=${(v) => setRule(i, 'content_days', v)} /></td>
                <td><${DaysSelect} id=${`metadata-${i}`} label=${`Metadata kept for ${r.category}`} value=${r.metadata_days} onChange=${(v) => setRule(i, 'metadata_days', v)} /></td>
                <td>${r.category !== '*' && html`<button type="button" class="ghost" onClick=${() => setSt({ ...st, retention: st.retention.filter((_, j) => j !== i) })}>Remove rule for ${r.category}</button>`}</td>
              </tr>`)}
            </tbody>
          </table>
          <div class="inline-form">
            <label for="new-category">New category rule</label>
            <input id="new-category" value=${newCat} placeholder="ai" onInput=${(e) => setNewCat(e.currentTarget.value)} />
            <button type="button" class="secondary" onClick=${addCategory}>Add rule</button>
            <button type="button" class="secondary" onClick=${runPreview}>Preview the next run</button>
            <button type="button" class="ghost" onClick=${runNow}>Run retention now (saved rules)</button>
          </div>
          <${Preview} preview=${preview} />
          ${ran && html`<p class="notice" role="status" data-retention-ran="true">${ran}</p>`}
        </section>

        <section class="card" aria-labelledby="dlp-heading">
          <h2 id="dlp-heading">Data loss prevention</h2>
          <label for="dlp-mode">DLP mode</label>
          <select id="dlp-mode" value=${st.dlp.mode} onChange=${(e) => setSt({ ...st, dlp: { ...st.dlp, mode: e.currentTarget.value } })}>
            <option value="off">Off</option><option value="record">Record findings</option>
            <option value="redact">Redact findings</option><option value="block">Block content with findings</option>
          </select>
          <label for="dlp-detectors">Detectors (comma-separated; empty: all)</label>
          <input id="dlp-detectors" value=${detectors} onInput=${(e) => setDetectors(e.currentTarget.value)} />
          <label class="switch"><input type="checkbox" checked=${st.keep_attachment_bytes}
            onChange=${(e) => setSt({ ...st, keep_attachment_bytes: e.currentTarget.checked })} /> Keep attachment bytes</label>
        </section>

        <section class="card" aria-labelledby="mcp-heading">
          <h2 id="mcp-heading">MCP gateway policy</h2>
          <label for="mcp-policy">Policy (JSON; empty: none)</label>
          <div class="code-editor">
            <pre class="line-numbers" aria-hidden="true">${Array.from({ length: policyLines }, (_, i) => html`<span class=${policyError && policyError.line === i + 1 ? 'bad-line' : ''}>${i + 1}\n</span>`)}</pre>
            <textarea id="mcp-policy" rows=${Math.max(8, policyLines + 1)} spellcheck=${false}
              aria-invalid=${policyError ? 'true' : undefined} aria-describedby=${policyError ? 'mcp-error' : undefined}
              value=${policy} onInput=${(e) => { setPolicy(e.currentTarget.value); setPolicyError(null); }}></textarea>
          </div>
          ${policyError && html`<p class="error" role="alert" id="mcp-error" data-line=${policyError.line}>${policyError.line ? `Line ${policyError.line}: ` : ''}${policyError.message}</p>`}
        </section>

        <${Alert} error=${error} id="settings-error" />
        <button type="submit" disabled=${busy}>${busy ? 'Saving…' : 'Save settings'}</button>
        ${saved && html`<p class="notice" role="status">${saved}</p>`}
      </form>
      <${Changes} types="settings.*,retention.run" title="Who changed the settings" reloadKey=${changes} />
    </div>`;
}
