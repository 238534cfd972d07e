// The Alerts page (/alerts, /alerts/{id}): the organization's alerts,
// newest first, filtered by state in the address; an alert's detail with
// the events that fired it, each checked in this browser as the event
// detail checks one, its deliveries to routes, and the buttons that change
// its state (each change is an alert.* event in the log); and the rules
// that raise alerts with their routes, written here by the roles that
// manage them (scope alerts).
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { Link, navigate } from '../lib/router.js';
import { announce } from '../lib/announce.js';
import { can, session } from '../lib/session.js';
import { href } from '../lib/query.js';
import { formatTime, zoneLabel } from '../lib/time.js';
import { timeZone } from '../lib/prefs.js';
import { Alert, Status, useLoad } from '../lib/admin.js';
import { IntegrityMark, checkEvent } from '../components/detail.js';
import { PackForm, RuleForm, bodyOf, formOf } from '../components/ruleform.js';

const STATES = ['open', 'acknowledged', 'snoozed', 'resolved'];

// The state changes offered from each state, with their button's words.
const CHANGES = {
  open: [['acknowledged', 'Acknowledge'], ['snoozed', 'Snooze for 1 hour'], ['resolved', 'Resolve']],
  acknowledged: [['resolved', 'Resolve'], ['snoozed', 'Snooze for 1 hour'], ['open', 'Reopen']],
  snoozed: [['acknowledged', 'Acknowledge'], ['resolved', 'Resolve'], ['open', 'Reopen']],
  resolved: [['open', 'Reopen']],
};

function Severity({ value }) {
  return html`<span class=${`severity severity-${value}`}>${value}</span>`;
}

function Field({ label, children }) {
  if (children === undefined || children === null || children === '') return null;
  return html`<div class="field"><dt>${label}</dt><dd>${children}</dd></div>`;
}

// AlertList is the alerts of the state the address names (all when none).
function AlertList({ state, openId, tz, reload }) {
  const [answer, error] = useLoad(() => api.get('/api/v1/alerts', { params: state ? { state } : {} }), [state, reload]);
  useEffect(() => {
    if (answer) announce(`${answer.data.length}${answer.next_cursor ? ' or more' : ''} alerts`);
  }, [answer]);

  // Another state keeps the alert open beside the list.
  const onState = (e) => {
    const v = e.currentTarget.value;
    navigate(href(openId ? `/alerts/${encodeURIComponent(openId)}` : '/alerts', new URLSearchParams(v ? { state: v } : {})));
  };
  return html`
    <section aria-labelledby="alerts-heading" class="card">
      <div class="section-head">
        <h2 id="alerts-heading">Alerts</h2>
        <label>State <select value=${state} onChange=${onState}>
          <option value="">All states</option>
          ${STATES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select></label>
      </div>
      <${Alert} error=${error} />
      ${!answer && !error && html`<p class="loading" role="status">Loading the alerts…</p>`}
      ${answer && answer.data.length === 0 && html`<p>No ${state ? `${state} ` : ''}alerts.</p>`}
      ${answer && answer.data.length > 0 && html`
        <table class="list">
          <thead><tr>
            <th scope="col">Rule</th><th scope="col">Severity</th><th scope="col">State</th>
            <th scope="col">Events</th><th scope="col">Last seen (${zoneLabel(tz)})</th>
          </tr></thead>
          <tbody>${answer.data.map((a) => html`
            <tr data-alert-id=${a.id} class=${a.id === openId ? 'selected' : ''}>
              <td><${Link} href=${href(`/alerts/${encodeURIComponent(a.id)}`, new URLSearchParams(state ? { state } : {}))}
                aria-current=${a.id === openId ? 'true' : undefined}>${a.rule}<//></td>
              <td><${Severity} value=${a.severity} /></td>
              <td>${a.state}</td>
              <td class="num">${a.count.toLocaleString()}</td>
              <td>${formatTime(a.last_seen, tz)}</td>
            </tr>`)}</tbody>
        </table>
        ${answer.next_cursor && html`<p class="hint">The newest ${answer.data.length} are shown; filter by state to see others.</p>`}`}
    </section>`;
}

// FiringEvent is one of the events behind an alert, checked in this
// browser: its integrity mark carries data-verified once checked.
function FiringEvent({ id, tz }) {
  const [state, setState] = useState({ integrity: { status: 'checking' } });
  useEffect(() => {
    let live = true;
    checkEvent(id, tz).then((s) => live && setState(s));
    return () => { live = false; };
  }, [id]);
  const ev = state.integrity.event || state.answer;
  return html`
    <li class="firing-event" data-event-id=${id}>
      <div class="firing-head">
        <${Link} href=${`/events/${encodeURIComponent(id)}`}>${ev ? ev.type : id}<//>
        ${ev && html`<span>${formatTime(ev.time, tz, { precise: true })}</span>`}
        ${ev && ev.actor && html`<span>${ev.actor.email || ev.actor.name || ev.actor.id}</span>`}
        ${ev && ev.outcome && html`<span>${ev.outcome}</span>`}
      </div>
      ${state.error
        ? html`<p class="error" role="alert">${state.error}</p>`
        : html`<${IntegrityMark} state=${state.integrity} compact=${true} />`}
    </li>`;
}

function Deliveries({ deliveries, tz }) {
  if (!deliveries || deliveries.length === 0) return html`<p>This alert's rule has no routes: nobody was notified.</p>`;
  return html`
    <table class="list">
      <thead><tr><th scope="col">Destination</th><th scope="col">Change</th><th scope="col">State</th><th scope="col">Attempts</th><th scope="col">When (${zoneLabel(tz)})</th></tr></thead>
      <tbody>${deliveries.map((d) => html`
        <tr>
          <td>${d.destination}${d.escalation ? ' (escalation)' : ''}</td>
          <td>${d.event}</td>
          <td>${d.state}${d.last_error ? html`: <span class="hint">${d.last_error}</span>` : ''}</td>
          <td class="num">${d.attempts}</td>
          <td>${formatTime(d.finished_at || d.due_at, tz)}</td>
        </tr>`)}</tbody>
    </table>`;
}

// AlertDetail is one alert: what fired it, its state and the changes the
// person's role may make.
function AlertDetail({ id, tz, onChanged }) {
  const s = session.use();
  const [loaded, loadError] = useLoad(() => api.get(`/api/v1/alerts/${encodeURIComponent(id)}`), [id]);
  const [changed, setChanged] = useState(null); // the alert as a change answered
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState('');
  const heading = useRef(null);
  // Another alert's, loaded or changed before, is not this one's.
  const alert = changed && changed.id === id ? changed : loaded && loaded.id === id ? loaded : null;

  useEffect(() => {
    setError('');
    setMessage('');
  }, [id]);
  useEffect(() => {
    if (heading.current) heading.current.focus();
  }, [id, !!alert]);

  const change = async (state) => {
    setBusy(true);
    setError('');
    const body = { state };
    if (state === 'snoozed') body.snooze_for = '1h';
    if (note.trim()) body.note = note.trim();
    try {
      const a = await api.patch(`/api/v1/alerts/${encodeURIComponent(id)}`, body);
      setChanged(a);
      setNote('');
      setMessage(`Alert ${a.state}. The change is recorded in the log.`);
      onChanged();
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  };

  if ((error || loadError) && !alert) return html`<section class="card"><${Alert} error=${error || loadError} /></section>`;
  if (!alert) return html`<section class="card"><p class="loading" role="status">Loading the alert…</p></section>`;
  const records = new URLSearchParams({ type: 'alert.*', target_id: alert.id, order: 'asc' });
  return html`
    <section aria-labelledby="alert-title" class="card alert-detail" data-alert-state=${alert.state}>
      <h2 id="alert-title" tabindex="-1" ref=${heading}>${alert.rule}</h2>
      <dl class="fields">
        <${Field} label="Severity"><${Severity} value=${alert.severity} /><//>
        <${Field} label="State">${alert.state}${alert.snoozed_until ? ` until ${formatTime(alert.snoozed_until, tz)}` : ''}<//>
        <${Field} label="Changed by">${alert.state_by}<//>
        <${Field} label="Note">${alert.note}<//>
        <${Field} label="Matching events">${alert.count.toLocaleString()}${alert.suppressed ? ` (${alert.suppressed.toLocaleString()} more while suppressed)` : ''}<//>
        <${Field} label=${`First seen (${zoneLabel(tz)})`}>${formatTime(alert.first_seen, tz, { precise: true })}<//>
        <${Field} label=${`Last seen (${zoneLabel(tz)})`}>${formatTime(alert.last_seen, tz, { precise: true })}<//>
        <${Field} label="Group">${alert.group ? JSON.stringify(alert.group) : ''}<//>
        <${Field} label="Dedup key">${alert.dedup_key}<//>
        <${Field} label="Id">${alert.id}<//>
      </dl>
      <p class="links"><${Link} href=${href('/events', records)}>This alert's records in the log<//></p>
      ${can(s, 'alerts') && html`
        <form class="alert-actions" onSubmit=${(e) => e.preventDefault()}>
          <label for="alert-note">Note (optional, recorded with the change)</label>
          <input id="alert-note" type="text" value=${note} onInput=${(e) => setNote(e.currentTarget.value)} maxlength="1000" />
          <div class="buttons">
            ${CHANGES[alert.state].map(([to, label]) => html`
              <button type="button" class=${to === 'open' ? 'secondary' : ''} disabled=${busy} onClick=${() => change(to)}>${label}</button>`)}
          </div>
        </form>`}
      <${Alert} error=${error} />
      <${Status} text=${message} />
      <h3>The events that fired it</h3>
      ${alert.event_ids.length === 0
        ? html`<p>No event ids are kept for this alert.</p>`
        : html`<ol class="firing-events">${alert.event_ids.map((eid) => html`<${FiringEvent} key=${eid} id=${eid} tz=${tz} />`)}</ol>`}
      ${alert.count > alert.event_ids.length && html`<p class="hint">The first ${alert.event_ids.length} of ${alert.count.toLocaleString()} events are kept with the alert.</p>`}
      <h3>Notifications</h3>
      <${Deliveries} deliveries=${alert.deliveries} tz=${tz} />
    </section>`;
}

// routeSummary says where a route sends, and when if it escalates.
function routeSummary(rt) {
  const where = rt.type === 'email' ? (rt.to || []).join(', ') : rt.type === 'jira' ? `${rt.url || ''} ${rt.project || ''}` : (rt.url || '');
  const parts = [rt.type, where.trim()];
  if (rt.after) parts.push(`escalation after ${rt.after}`);
  if (rt.min_severity) parts.push(`${rt.min_severity} and above`);
  return parts.filter(Boolean).join(' · ');
}

// RuleList is the organization's rules (scope alerts: the roles that may
// write them), with their routes; each is edited, enabled or disabled,
// and deleted here, and new ones written (RuleForm).
function RuleList({ tz }) {
  const s = session.use();
  const [answer, loadError, reload] = useLoad(() => api.get('/api/v1/rules'));
  const [changeError, setError] = useState('');
  const error = changeError || loadError;
  const [message, setMessage] = useState('');
  const [editing, setEditing] = useState(undefined); // undefined: none; null: a new rule; else the rule
  const [deleting, setDeleting] = useState(null);
  const done = (text) => { setMessage(text); reload(); };
  const toggle = async (r) => {
    setError(''); setMessage('');
    try {
      await api.put(`/api/v1/rules/${encodeURIComponent(r.id)}`, { ...bodyOf(formOf(r)), enabled: r.enabled === false });
      done(`Rule “${r.name}” ${r.enabled === false ? 'enabled' : 'disabled'}.`);
    } catch (e) { setError(e.message); }
  };
  const remove = async () => {
    setError(''); setMessage('');
    try {
      await api.del(`/api/v1/rules/${encodeURIComponent(deleting.id)}`);
      done(`Rule “${deleting.name}” deleted. Its alerts stay.`);
      setDeleting(null);
    } catch (e) { setError(e.message); }
  };
  const edit = (r) => {
    setMessage(''); setEditing(r);
    requestAnimationFrame(() => { const h = document.getElementById('rule-form-heading'); if (h) h.focus(); });
  };
  return html`
    <section aria-labelledby="rules-heading" class="card rules">
      <div class="section-head">
        <h2 id="rules-heading">Rules</h2>
        <button type="button" onClick=${() => edit(null)}>New rule</button>
      </div>
      <p class="hint">Rules are written here, through the API, or by <code>veritrail rules apply</code> from files kept in version control.
        ${!can(s, 'content:read') && ' Your role does not read content: conditions may not use it.'}</p>
      <${Alert} error=${error} />
      <${Status} text=${message} />
      ${!answer && !error && html`<p class="loading" role="status">Loading the rules…</p>`}
      ${answer && answer.data.length === 0 && html`<p>No rules yet: nothing is watched.</p>`}
      ${answer && answer.data.length > 0 && html`
        <table class="list">
          <thead><tr><th scope="col">Rule</th><th scope="col">Kind</th><th scope="col">Severity</th><th scope="col">Status</th><th scope="col">Owner</th><th scope="col">Routes</th><th scope="col">Changed (${zoneLabel(tz)})</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>${answer.data.map((r) => html`
            <tr data-rule-id=${r.id} data-rule-status=${r.status}>
              <td>${r.name}</td>
              <td>${r.kind}</td>
              <td><${Severity} value=${r.severity} /></td>
              <td>${r.status}${r.error ? html`: <span class="hint">${r.error}</span>` : ''}</td>
              <td>${r.owner || ''}</td>
              <td>${(r.routes || []).length === 0 ? 'none' : html`<ul class="route-list">${r.routes.map((rt) => html`<li>${routeSummary(rt)}</li>`)}</ul>`}</td>
              <td>${formatTime(r.updated_at, tz)}</td>
              <td class="row-actions">
                ${!r.pack && html`
                  <button type="button" class="secondary" aria-label=${`Edit ${r.name}`} onClick=${() => edit(r)}>Edit</button>
                  <button type="button" class="secondary" aria-label=${`${r.enabled === false ? 'Enable' : 'Disable'} ${r.name}`} onClick=${() => toggle(r)}>${r.enabled === false ? 'Enable' : 'Disable'}</button>
                  <button type="button" class="ghost" aria-label=${`Delete ${r.name}`} onClick=${() => { setMessage(''); setDeleting(r); }}>Delete</button>`}
                ${r.pack && html`<span class="hint">built-in pack</span>`}
              </td>
            </tr>`)}</tbody>
        </table>`}
      ${deleting && html`
        <div class="inline-form" role="group" aria-labelledby="rule-delete-q">
          <p id="rule-delete-q">Delete “${deleting.name}”? It stops watching at once; its alerts and their records stay.</p>
          <button type="button" class="danger" onClick=${remove}>Delete the rule</button>
          <button type="button" class="ghost" onClick=${() => setDeleting(null)}>Cancel</button>
        </div>`}
    </section>
    ${editing !== undefined && html`
      <${RuleForm} key=${editing ? editing.id : 'new'} rule=${editing} tz=${tz}
        onSaved=${(r, how) => { setEditing(undefined); done(how === 'unchanged' ? `Rule “${r.name}” unchanged.` : `Rule “${r.name}” ${how}. The change is recorded in the log.`); }}
        onCancel=${() => setEditing(undefined)} />`}
    <${PackForm} onChanged=${reload} />`;
}

export function AlertsPage({ params: route, loc }) {
  const s = session.use();
  const tz = timeZone.use();
  const state = new URLSearchParams(loc.search).get('state') || '';
  const [reload, setReload] = useState(0);
  return html`
    <div class="alerts-page">
      <h1>Alerts</h1>
      <div class=${`alerts-columns${route.id ? ' with-detail' : ''}`}>
        <${AlertList} state=${state} openId=${route.id} tz=${tz} reload=${reload} />
        ${route.id && html`<${AlertDetail} id=${route.id} tz=${tz} onChanged=${() => setReload(reload + 1)} />`}
      </div>
      ${can(s, 'alerts') && html`<${RuleList} tz=${tz} />`}
    </div>`;
}
