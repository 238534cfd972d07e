// The detail panel of one event (/events/{id}): everything the envelope
// holds, the content for roles that may read it, links to the same task,
// session and actor, and the integrity mark, set only after this browser
// checked the event itself (lib/verify.js).
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { Link } from '../lib/router.js';
import { can, session } from '../lib/session.js';
import { href } from '../lib/query.js';
import { formatTime, zoneLabel } from '../lib/time.js';
import { timeZone } from '../lib/prefs.js';
import { IntegrityError, cryptoAvailable, trustedKey, verifyEvent } from '../lib/verify.js';

let serverKey = null;

// logKey is the organization's verifier key as the server states it; the
// browser checks it against the key it pinned (trustedKey).
export async function logKey() {
  if (!serverKey) serverKey = (await api.get('/api/v1/log/key')).trim();
  return serverKey;
}

// IntegrityMark shows the outcome of checkEvent: data-verified is set
// only once the check finished. compact leaves out the list of checks (a
// list of events, each with its mark).
export function IntegrityMark({ state, compact = false }) {
  if (state.status === 'checking') {
    return html`<div class="integrity checking" role="status"><span class="mark" aria-hidden="true">…</span> Checking integrity in your browser…</div>`;
  }
  const ok = state.status === 'verified';
  return html`
    <div class=${`integrity ${ok ? 'ok' : 'failed'}`} data-verified=${ok ? 'true' : 'false'} role="status">
      <span class="mark" aria-hidden="true">${ok ? '✓' : '✗'}</span>
      <div>
        <strong>${ok ? 'Verified in your browser' : 'Not verified'}</strong>
        ${ok
          ? !compact && html`<ul class="checks">${state.checks.map((c) => html`<li>${c}</li>`)}</ul>`
          : html`<p>${state.reason}</p>`}
      </div>
    </div>`;
}

// checkEvent reads an event with its proof and checks it in this browser
// (lib/verify.js): answer is the server's JSON, integrity the outcome
// (checking, verified with the checks and the verified envelope, or failed
// with the reason); error is set when the event could not be read.
// onAnswer, if given, has the server's JSON before the check starts, to
// show it meanwhile.
export async function checkEvent(id, tz, onAnswer) {
  let raw;
  try {
    const res = await api.get(`/api/v1/events/${encodeURIComponent(id)}`, { params: { proof: 'true' }, raw: true });
    raw = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    return { error: e.message, integrity: { status: 'checking' } };
  }
  const answer = JSON.parse(new TextDecoder().decode(raw));
  if (onAnswer) onAnswer(answer);
  try {
    if (!cryptoAvailable()) throw new IntegrityError('this page is not in a secure context (HTTPS or localhost), so the browser cannot check it');
    const trusted = trustedKey(await logKey());
    const v = await verifyEvent(raw, trusted.key);
    const checks = [...v.checks, trusted.firstSeen ? 'key pinned in this browser now (first use)' : `key pinned in this browser on ${formatTime(trusted.pinnedAt, tz)}`];
    return { answer, integrity: { status: 'verified', checks, event: v.event } };
  } catch (e) {
    return { answer, integrity: { status: 'failed', reason: e instanceof IntegrityError ? e.message : `The check could not finish: ${e.message}` } };
  }
}

function Field({ label, children }) {
  if (children === undefined || children === null || children === '') return null;
  return html`<div class="field"><dt>${label}</dt><dd>${children}</dd></div>`;
}

// FilterLink goes to the events with one more value; the keyboard's way
// to filter by a value (the table's cells are for the mouse).
function ViewLink({ name, value, label }) {
  if (!value) return null;
  const p = new URLSearchParams();
  p.set(name, value);
  return html`<${Link} class="view-link" href=${href('/events', p)}>${label}<//>`;
}

function Json({ value, label }) {
  return html`<pre class="json" tabindex="0" aria-label=${label}>${JSON.stringify(value, null, 2)}</pre>`;
}

// ContentSection shows the content the way it is used: a tool call's
// arguments, response and underlying API requests, attachments, then the
// rest.
function ContentSection({ event, content, s }) {
  if (!event.content_digest) return html`<section><h3>Content</h3><p class="hint">This event was sent without content.</p></section>`;
  if (content === undefined) {
    const hidden = !can(s, 'content:read');
    return html`
      <section>
        <h3>Content</h3>
        <p class="content-hidden">${hidden ? `Content hidden for your role (${s.role}).` : 'Content removed by retention or erasure; the envelope still verifies.'}</p>
      </section>`;
  }
  const rest = { ...content };
  const parts = [];
  for (const [key, title] of [['arguments', 'Arguments'], ['response', 'Response'], ['api_requests', 'Underlying API requests'], ['prompt', 'Prompt']]) {
    if (rest[key] !== undefined) {
      parts.push(html`<h4>${title}</h4><${Json} value=${rest[key]} label=${title} />`);
      delete rest[key];
    }
  }
  const attachments = Array.isArray(rest.attachments) ? rest.attachments : null;
  if (attachments) delete rest.attachments;
  return html`
    <section>
      <h3>Content</h3>
      ${parts}
      ${attachments && html`
        <h4>Attachments</h4>
        <table class="attachments">
          <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Size</th><th scope="col">SHA-256</th></tr></thead>
          <tbody>${attachments.map((a) => html`
            <tr><td>${a.name || a.filename || ''}</td><td>${a.type || a.mime_type || a.content_type || ''}</td>
              <td>${a.size === undefined ? '' : `${Number(a.size).toLocaleString()} bytes`}</td>
              <td class="hash">${a.hash || a.sha256 || ''}</td></tr>`)}</tbody>
        </table>`}
      ${Object.keys(rest).length > 0 && html`<h4>${parts.length || attachments ? 'Other content' : 'Payload'}</h4><${Json} value=${rest} label="Content" />`}
    </section>`;
}

export function DetailPanel({ id, onClose }) {
  const s = session.use();
  const tz = timeZone.use();
  const [answer, setAnswer] = useState(null);
  const [error, setError] = useState('');
  const [integrity, setIntegrity] = useState({ status: 'checking' });
  const heading = useRef(null);

  useEffect(() => {
    let live = true;
    setAnswer(null);
    setError('');
    setIntegrity({ status: 'checking' });
    checkEvent(id, tz, (a) => live && setAnswer(a)).then((r) => {
      if (!live) return;
      if (r.error) setError(r.error);
      else setIntegrity(r.integrity);
    });
    return () => { live = false; };
  }, [id]);

  useEffect(() => {
    if (heading.current) heading.current.focus();
  }, [id, !!answer]);

  const onKeyDown = (e) => {
    if (e.key === 'Escape') onClose();
  };

  // What is shown is the verified envelope once checked; until then, and
  // when the check fails, the server's answer (marked as not verified).
  const event = integrity.event || answer;
  return html`
    <aside class="detail" aria-labelledby="detail-title" onKeyDown=${onKeyDown}>
      <div class="detail-head">
        <h2 id="detail-title" tabindex="-1" ref=${heading}>${event ? event.type : 'Event'}</h2>
        <button type="button" class="ghost" onClick=${onClose} aria-label="Close the event detail">Close</button>
      </div>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      ${!event && !error && html`<p class="loading" role="status">Loading the event…</p>`}
      ${event && html`
        <${IntegrityMark} state=${integrity} />
        <section>
          <h3>Event</h3>
          <dl class="fields">
            <${Field} label="Id">${event.id}<//>
            <${Field} label="Seq">${event.seq}<//>
            <${Field} label=${`Time (${zoneLabel(tz)})`}>${formatTime(event.time, tz, { precise: true })}<//>
            <${Field} label="Received">${formatTime(event.received_at, tz, { precise: true })}<//>
            <${Field} label="Type">${event.type} <${ViewLink} name="type" value=${event.type} label="events of this type" /><//>
            <${Field} label="Outcome">${event.outcome}<//>
            <${Field} label="Status">${event.status}<//>
            <${Field} label="Duration">${event.duration_ms === undefined ? '' : `${event.duration_ms} ms`}<//>
          </dl>
        </section>
        <section>
          <h3>Actor</h3>
          <dl class="fields">
            <${Field} label="Type">${event.actor && event.actor.type}<//>
            <${Field} label="Name">${event.actor && event.actor.name}<//>
            <${Field} label="E-mail">${event.actor && event.actor.email}<//>
            <${Field} label="Id">${event.actor && event.actor.id}<//>
          </dl>
          <p class="links">
            <${ViewLink} name=${event.actor && event.actor.id ? 'actor_id' : 'actor_email'} value=${event.actor && (event.actor.id || event.actor.email)} label="All events of this actor" />
            <${ViewLink} name="task_id" value=${event.task_id} label=${`All events of task ${event.task_id}`} />
            <${ViewLink} name="session_id" value=${event.session_id} label=${`All events of session ${event.session_id}`} />
            <${ViewLink} name="agent_id" value=${event.agent_id} label=${`All events of agent ${event.agent_id}`} />
          </p>
          <dl class="fields">
            <${Field} label="Agent">${event.agent_id}<//>
            <${Field} label="Task">${event.task_id}<//>
            <${Field} label="Session">${event.session_id}<//>
            <${Field} label="Connector">${event.connector}<//>
            <${Field} label="Tool">${event.tool}<//>
          </dl>
        </section>
        ${event.target && html`
          <section>
            <h3>Target</h3>
            <dl class="fields">
              <${Field} label="Type">${event.target.type}<//>
              <${Field} label="Name">${event.target.name}<//>
              <${Field} label="Id">${event.target.id} <${ViewLink} name="target_id" value=${event.target.id} label="events on this target" /><//>
            </dl>
          </section>`}
        ${event.context && html`
          <section>
            <h3>Request</h3>
            <dl class="fields">
              <${Field} label="IP address">${event.context.ip} <${ViewLink} name="ip" value=${event.context.ip} label="events from this address" /><//>
              <${Field} label="Team">${event.context.team_id}<//>
              <${Field} label="User agent">${event.context.user_agent}<//>
              <${Field} label="Request id">${event.context.request_id} <${ViewLink} name="request_id" value=${event.context.request_id} label="events of this request" /><//>
            </dl>
          </section>`}
        ${event.decision && html`
          <section>
            <h3>Decision</h3>
            <dl class="fields">
              <${Field} label="Action">${event.decision.action}<//>
              <${Field} label="Policy">${event.decision.policy}<//>
              <${Field} label="Reason">${event.decision.reason}<//>
            </dl>
          </section>`}
        <${ContentSection} event=${event} content=${answer && answer.content} s=${s} />
        <details class="raw">
          <summary>Envelope as stored (canonical JSON)</summary>
          <${Json} value=${event} label="Envelope" />
        </details>`}
    </aside>`;
}
