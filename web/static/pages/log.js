// Log integrity (/log): the latest signed checkpoint, checked by this
// browser with the organization's key; its size and witnesses; and whether
// the log is consistent with the checkpoint this browser saw last, kept in
// its storage: "this log has not been rewritten since your last visit".
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { formatTime, zoneLabel } from '../lib/time.js';
import { timeZone } from '../lib/prefs.js';
import { logKey } from '../components/detail.js';
import {
  IntegrityError, fromBase64, lastCheckpoint, openCheckpoint, pinKey, rememberCheckpoint,
  toBase64, trustedKey, verifyConsistency,
} from '../lib/verify.js';

function Result({ ok, verified, children }) {
  return html`<div class=${`integrity ${ok ? 'ok' : 'failed'}`} data-verified=${verified === undefined ? undefined : String(verified)} role="status">
    <span class="mark" aria-hidden="true">${ok ? '✓' : '✗'}</span><div>${children}</div></div>`;
}

async function check() {
  const serverKey = await logKey();
  const note = await api.get('/api/v1/log/checkpoint');
  const out = { serverKey, note };
  let trusted;
  try {
    trusted = trustedKey(serverKey);
    out.trusted = trusted;
    out.checkpoint = await openCheckpoint(note, trusted.key);
  } catch (e) {
    out.signatureError = e.message;
    return out;
  }
  const cp = out.checkpoint;
  const seen = lastCheckpoint(cp.origin);
  out.previous = seen;
  if (seen) {
    try {
      if (seen.size > cp.size) throw new IntegrityError(`the log has ${cp.size} entries now but this browser saw ${seen.size} on ${seen.seenAt}: it shrank`);
      let proof = [];
      if (seen.size > 0 && seen.size < cp.size) {
        const p = await api.get('/api/v1/log/proof/consistency', { params: { from: seen.size, to: cp.size } });
        proof = p.proof.map(fromBase64);
      }
      await verifyConsistency(seen.size, cp.size, fromBase64(seen.root), cp.root, proof);
      out.consistent = true;
    } catch (e) {
      out.consistencyError = e instanceof IntegrityError ? e.message : `the check could not finish: ${e.message}`;
    }
  }
  // Only a checkpoint that checked out becomes the one to compare with.
  if (!out.consistencyError) rememberCheckpoint(cp.origin, cp);
  const [history, witnesses] = await Promise.all([
    api.get('/api/v1/log/checkpoints', { params: { from_size: cp.size } }).catch(() => ({ data: [] })),
    api.get('/api/v1/log/witnesses').catch(() => ({ data: [] })),
  ]);
  const latest = history.data.find((h) => h.size === cp.size);
  out.signedAt = latest && latest.signed_at;
  // The latest attempt per witness.
  const byWitness = new Map();
  for (const w of witnesses.data) if (!byWitness.has(w.witness)) byWitness.set(w.witness, w);
  out.witnesses = [...byWitness.values()];
  return out;
}

export function LogPage() {
  const tz = timeZone.use();
  const [state, setState] = useState(null);
  const [error, setError] = useState('');
  const [pasted, setPasted] = useState('');
  const [pinMessage, setPinMessage] = useState('');
  const [round, setRound] = useState(0);

  useEffect(() => {
    setState(null);
    check().then(setState).catch((e) => setError(e.message));
  }, [round]);

  const pin = (e) => {
    e.preventDefault();
    try {
      const origin = pinKey(pasted);
      setPinMessage(`Key for ${origin} pinned in this browser.`);
      setPasted('');
      setRound(round + 1);
    } catch (err) {
      setPinMessage(err.message);
    }
  };

  return html`
    <div class="log-page">
      <h1>Log integrity</h1>
      <p class="lead">These checks run in your browser with WebCrypto: they do not take the server's word for anything but the bytes it sends.</p>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${!state && !error && html`<p class="loading" role="status">Checking the log…</p>`}
      ${state && html`
        <section aria-labelledby="cp-heading" class="card">
          <h2 id="cp-heading">Latest checkpoint</h2>
          ${state.signatureError
            ? html`<${Result} ok=${false} verified=${false}><strong>The checkpoint's signature did not check out.</strong><p>${state.signatureError}</p><//>`
            : html`<${Result} ok=${true} verified=${true}><strong>Signed by the organization's key</strong> (${state.checkpoint.origin})<//>`}
          ${state.checkpoint && html`
            <dl class="fields">
              <div class="field"><dt>Log</dt><dd>${state.checkpoint.origin}</dd></div>
              <div class="field"><dt>Size</dt><dd>${state.checkpoint.size.toLocaleString()} events</dd></div>
              <div class="field"><dt>Root hash</dt><dd class="hash">${toBase64(state.checkpoint.root)}</dd></div>
              ${state.signedAt && html`<div class="field"><dt>Signed (${zoneLabel(tz)})</dt><dd>${formatTime(state.signedAt, tz)}</dd></div>`}
            </dl>`}
          <details>
            <summary>The signed checkpoint</summary>
            <pre class="json" tabindex="0" aria-label="Signed checkpoint">${state.note}</pre>
          </details>
        </section>
        <section aria-labelledby="consistency-heading" class="card">
          <h2 id="consistency-heading">Since your last visit</h2>
          ${!state.checkpoint && html`<p>Not checked: the checkpoint itself did not check out.</p>`}
          ${state.checkpoint && !state.previous && html`<p>This is this browser's first visit to the log: its checkpoint is kept here, and the next visit checks that the log only grew from it.</p>`}
          ${state.consistent && html`
            <${Result} ok=${true}><strong>This log has not been rewritten since your last visit</strong>
              <p>On ${formatTime(state.previous.seenAt, tz)} (${zoneLabel(tz)}) it had ${state.previous.size.toLocaleString()} events; every one of them is still in the log, unchanged and in place (consistency proof to ${state.checkpoint.size.toLocaleString()}).</p><//>`}
          ${state.consistencyError && html`
            <${Result} ok=${false}><strong>This log is not the one you saw last time.</strong><p>${state.consistencyError}</p>
              <p>Keep this page's information and tell your security team: a log that was rewritten cannot be trusted.</p><//>`}
        </section>
        <section aria-labelledby="witness-heading" class="card">
          <h2 id="witness-heading">Witnesses</h2>
          ${state.witnesses && state.witnesses.length
            ? html`<table>
                <thead><tr><th scope="col">Witness</th><th scope="col">Last size handed</th><th scope="col">State</th><th scope="col">When (${zoneLabel(tz)})</th></tr></thead>
                <tbody>${state.witnesses.map((w) => html`<tr><td>${w.witness}</td><td>${w.size.toLocaleString()}</td><td>${w.ok ? 'accepted' : `failed: ${w.detail}`}</td><td>${formatTime(w.at, tz)}</td></tr>`)}</tbody>
              </table>`
            : html`<p>No witness is configured: no copy of the log's state lives outside this server. An operator adds witnesses with VERITRAIL_WITNESS_URLS.</p>`}
        </section>
        <section aria-labelledby="key-heading" class="card">
          <h2 id="key-heading">The organization's key</h2>
          ${state.trusted && html`<p>Pinned in this browser ${state.trusted.how === 'pasted' ? 'from a key you pasted' : 'the first time it was seen'} on ${formatTime(state.trusted.pinnedAt, tz)}.</p>`}
          <p>The key the server states:</p>
          <pre class="json" tabindex="0" aria-label="Verifier key">${state.serverKey}</pre>
          <p class="hint">Compare it with the key your operator gave you. To trust another key (after the operator changed it), paste it here.</p>
          <form onSubmit=${pin} class="pin">
            <label for="pin-key">Verifier key from your operator</label>
            <input id="pin-key" type="text" value=${pasted} onInput=${(e) => setPasted(e.currentTarget.value)} spellcheck=${false} autocomplete="off" />
            <button type="submit" class="secondary">Pin this key</button>
          </form>
          ${pinMessage && html`<p role="status">${pinMessage}</p>`}
        </section>`}
    </div>`;
}
