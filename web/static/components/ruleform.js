// The rule form of the Alerts page: create or edit a detection rule with
// every field POST and PUT /api/v1/rules take (docs/RULES.md), the API's
// refusals shown next to the field they name, and "What would have fired":
// the replay of POST /api/v1/rules/test (what `veritrail rules test` runs),
// which stores and sends nothing.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { Link } from '../lib/router.js';
import { formatTime, zoneLabel } from '../lib/time.js';

export const KINDS = ['match', 'threshold', 'distinct', 'new_value', 'sequence'];
export const SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'];
const ROUTE_TYPES = ['webhook', 'slack', 'teams', 'pagerduty', 'email', 'jira'];
const ROUTE_EVENTS = ['opened', 'acknowledged', 'snoozed', 'resolved', 'reopened'];

// The fields each kind takes besides condition (the API refuses the
// others, and the missing ones, naming them).
const KIND_FIELDS = {
  match: [],
  threshold: ['group_by', 'threshold', 'window'],
  distinct: ['group_by', 'field', 'threshold', 'window'],
  new_value: ['group_by', 'field', 'lookback'],
  sequence: ['steps', 'group_by', 'window'],
};

// The settings each route type takes, with their labels; secret ones come
// back from the API as "(set)" (or a URL's host), and written back so
// they keep what is stored.
const ROUTE_FIELDS = {
  webhook: [['url', 'URL'], ['secret', 'Signing secret (16 bytes or more)', true]],
  slack: [['url', 'Incoming webhook URL', true]],
  teams: [['url', 'Workflows webhook URL', true]],
  pagerduty: [['routing_key', 'Routing key (Events API v2)', true], ['url', 'Events API URL (optional)']],
  email: [['to', 'To (addresses, comma-separated)']],
  jira: [['url', 'Site URL'], ['project', 'Project key'], ['issue_type', 'Issue type (default Task)'], ['user', 'User (e-mail, for Jira Cloud)'], ['token', 'API token', true]],
};

const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

// formOf turns a rule as the API shows it (or nothing: a new rule) into
// the form's values: lists as comma-separated text.
export function formOf(r) {
  r = r || {};
  return {
    name: r.name || '', description: r.description || '', kind: r.kind || 'match', enabled: r.enabled !== false,
    condition: r.condition || '', steps: r.steps && r.steps.length ? [...r.steps] : ['', ''],
    group_by: (r.group_by || []).join(', '), threshold: r.threshold ? String(r.threshold) : '',
    field: r.field || '', window: r.window || '', lookback: r.lookback || '',
    severity: r.severity || 'medium', owner: r.owner || '', runbook: r.runbook || '', tags: (r.tags || []).join(', '),
    dedup_key: r.dedup_key || '', suppress: r.suppress || '',
    routes: routesOf(r.routes),
  };
}

// bodyOf is the JSON body the API takes: only the fields of the rule's
// kind, and nothing left empty.
export function bodyOf(f) {
  const b = { name: f.name.trim(), kind: f.kind, severity: f.severity, enabled: f.enabled };
  const kf = KIND_FIELDS[f.kind];
  const put = (k, v) => { if (v !== '' && v !== undefined && !(Array.isArray(v) && v.length === 0)) b[k] = v; };
  put('description', f.description.trim());
  put('condition', f.condition.trim());
  if (kf.includes('steps')) b.steps = f.steps.map((s) => s.trim());
  if (kf.includes('group_by')) put('group_by', list(f.group_by));
  if (kf.includes('threshold')) put('threshold', f.threshold.trim() === '' ? '' : Number(f.threshold));
  if (kf.includes('field')) put('field', f.field.trim());
  if (kf.includes('window')) put('window', f.window.trim());
  if (kf.includes('lookback')) put('lookback', f.lookback.trim());
  put('owner', f.owner.trim());
  put('runbook', f.runbook.trim());
  put('tags', list(f.tags));
  put('dedup_key', f.dedup_key.trim());
  put('suppress', f.suppress.trim());
  if (f.routes.length) b.routes = routesBody(f.routes);
  return b;
}

// routesOf turns routes as the API shows them into the form's values.
export function routesOf(routes) {
  return (routes || []).map((rt) => ({ ...rt, to: (rt.to || []).join(', '), events: rt.events || [] }));
}

// routesBody turns the form's routes into the API's: only the settings of
// each route's type.
export function routesBody(routes) {
  return routes.map((rt) => {
    const o = { type: rt.type };
    for (const [k] of ROUTE_FIELDS[rt.type] || []) {
      const v = k === 'to' ? list(rt.to || '') : (rt[k] || '').trim();
      if (v.length) o[k] = v;
    }
    if (rt.min_severity) o.min_severity = rt.min_severity;
    if ((rt.after || '').trim()) o.after = rt.after.trim();
    if (rt.events && rt.events.length) o.events = rt.events;
    return o;
  });
}

// routeFieldNames are the API's names of the routes' fields, for
// errorPlace.
function routeFieldNames(routes) {
  const names = ['routes'];
  routes.forEach((rt, i) => {
    names.push(`routes[${i}]`, `routes[${i}].type`, `routes[${i}].min_severity`, `routes[${i}].after`, `routes[${i}].events`);
    for (const [k] of ROUTE_FIELDS[rt.type] || []) names.push(`routes[${i}].${k}`);
  });
  return names;
}

// fieldErrors places an API error ({field, message}) at the field of
// names it belongs to: errorOf(name) is its message there, attrs(name)
// the control's id and ARIA attributes, idOf(name) its id (prefix keeps
// two forms' ids apart).
function fieldErrors(err, names, prefix) {
  const place = err ? errorPlace(err.field, names) : '';
  const errorOf = (n) => (err && place === n ? err.message : '');
  const idOf = (n) => `${prefix}-${n.replace(/[^a-z0-9]+/gi, '-')}`;
  const attrs = (n) => ({ id: idOf(n), 'aria-invalid': errorOf(n) ? 'true' : undefined, 'aria-describedby': errorOf(n) ? `${idOf(n)}-error` : undefined });
  return { place, errorOf, idOf, attrs, top: err && !place ? err.message : '' };
}

// errorPlace finds where an API error belongs: the most specific field of
// the form its field names (group_by[1] belongs to group_by, shown as
// one text field); '' when none (shown above the buttons).
function errorPlace(field, names) {
  if (!field) return '';
  let best = '';
  for (const n of names) {
    if ((field === n || field.startsWith(`${n}[`) || field.startsWith(`${n}.`)) && n.length > best.length) best = n;
  }
  return best;
}

// RoutesFieldset edits routes (the form's values; setRoutes changes
// them), the API's errors placed by fe (fieldErrors).
export function RoutesFieldset({ routes, setRoutes, fe, legend = 'Routes: where its alerts go' }) {
  const { errorOf, idOf, attrs } = fe;
  const setRoute = (i, k, v) => { const rs = [...routes]; rs[i] = { ...rs[i], [k]: v }; setRoutes(rs); };
  const toggleEvent = (i, ev) => (e) => {
    const cur = routes[i].events || [];
    setRoute(i, 'events', e.currentTarget.checked ? [...cur, ev].filter((x, j, a) => a.indexOf(x) === j) : cur.filter((x) => x !== ev));
  };
  return html`
      <fieldset class="rule-routes">
        <legend>${legend}</legend>
        ${routes.length === 0 && html`<p class="hint">No routes: alerts are listed here and in the log, and sent nowhere.</p>`}
        ${routes.map((rt, i) => html`
          <fieldset class="rule-route" data-route-index=${i}>
            <legend>Route ${i + 1}</legend>
            <label for=${idOf(`routes[${i}].type`)}>Type</label>
            <select ...${attrs(`routes[${i}].type`)} value=${rt.type} onChange=${(e) => setRoute(i, 'type', e.currentTarget.value)}>
              ${ROUTE_TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
            </select>
            <${FieldError} id=${`${idOf(`routes[${i}].type`)}-error`} error=${errorOf(`routes[${i}].type`)} />
            ${(ROUTE_FIELDS[rt.type] || []).map(([k, label, secret]) => html`
              <label for=${idOf(`routes[${i}].${k}`)}>${label}</label>
              <input ...${attrs(`routes[${i}].${k}`)} class=${secret ? 'secret' : ''} autocomplete="off" value=${rt[k] || ''}
                onInput=${(e) => setRoute(i, k, e.currentTarget.value)} />
              <${FieldError} id=${`${idOf(`routes[${i}].${k}`)}-error`} error=${errorOf(`routes[${i}].${k}`)} />`)}
            <label for=${idOf(`routes[${i}].min_severity`)}>Least severity sent</label>
            <select ...${attrs(`routes[${i}].min_severity`)} value=${rt.min_severity || ''} onChange=${(e) => setRoute(i, 'min_severity', e.currentTarget.value)}>
              <option value="">any</option>
              ${SEVERITIES.map((s) => html`<option value=${s}>${s}</option>`)}
            </select>
            <${FieldError} id=${`${idOf(`routes[${i}].min_severity`)}-error`} error=${errorOf(`routes[${i}].min_severity`)} />
            <label for=${idOf(`routes[${i}].after`)}>Escalation: send only if not acknowledged after (such as 15m; empty: at once)</label>
            <input ...${attrs(`routes[${i}].after`)} value=${rt.after || ''} onInput=${(e) => setRoute(i, 'after', e.currentTarget.value)} />
            <${FieldError} id=${`${idOf(`routes[${i}].after`)}-error`} error=${errorOf(`routes[${i}].after`)} />
            <fieldset class="route-events">
              <legend>Changes sent (none ticked: the type's default)</legend>
              ${ROUTE_EVENTS.map((ev) => html`
                <label class="check"><input type="checkbox" checked=${(rt.events || []).includes(ev)} onChange=${toggleEvent(i, ev)} /> ${ev}</label>`)}
              <${FieldError} id=${`${idOf(`routes[${i}].events`)}-error`} error=${errorOf(`routes[${i}].events`)} />
            </fieldset>
            <${FieldError} id=${`${idOf(`routes[${i}]`)}-error`} error=${errorOf(`routes[${i}]`)} />
            <button type="button" class="ghost" onClick=${() => setRoutes(routes.filter((_, j) => j !== i))}>Remove route ${i + 1}</button>
          </fieldset>`)}
        <button type="button" class="secondary" onClick=${() => setRoutes([...routes, { type: 'webhook', events: [] }])}>Add a route</button>
        <${FieldError} id=${`${idOf('routes')}-error`} error=${errorOf('routes')} />
      </fieldset>`;
}

function FieldError({ id, error }) {
  return error ? html`<p class="field-error" id=${id} role="alert">${error}</p>` : null;
}

// RuleForm edits one rule (rule: as the API shows it; null for a new
// one). onSaved(rule) after the API stored it; onCancel.
export function RuleForm({ rule, tz, onSaved, onCancel }) {
  const [f, setF] = useState(() => formOf(rule));
  const [err, setErr] = useState(null); // {field, message}
  const [busy, setBusy] = useState(false);
  const [since, setSince] = useState('30d');
  const [test, setTest] = useState(null);
  const [testing, setTesting] = useState(false);
  const kf = KIND_FIELDS[f.kind];

  // Every field the form shows, by the API's name for it.
  const names = ['name', 'description', 'kind', 'enabled', 'condition', 'severity', 'owner', 'runbook', 'tags', 'dedup_key', 'suppress', ...kf,
    ...f.steps.map((_, i) => `steps[${i}]`), ...routeFieldNames(f.routes)];
  const fe = fieldErrors(err, names, 'rule');
  const { errorOf, idOf, attrs } = fe;

  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
  const setStep = (i) => (e) => { const steps = [...f.steps]; steps[i] = e.currentTarget.value; setF({ ...f, steps }); };

  const text = (n, label, { area = false, hint = '', required = false, type = 'text' } = {}) => html`
    <label for=${idOf(n)}>${label}</label>
    ${hint && html`<span class="hint" id=${`${idOf(n)}-hint`}>${hint}</span>`}
    ${area
      ? html`<textarea ...${attrs(n)} rows="3" value=${f[n]} onInput=${set(n)} required=${required} spellcheck=${n === 'runbook' || n === 'description'} />`
      : html`<input ...${attrs(n)} type=${type} value=${f[n]} onInput=${set(n)} required=${required} />`}
    <${FieldError} id=${`${idOf(n)}-error`} error=${errorOf(n)} />`;

  const save = async (e) => {
    e.preventDefault();
    setBusy(true); setErr(null);
    try {
      const body = bodyOf(f);
      const saved = rule ? await api.put(`/api/v1/rules/${encodeURIComponent(rule.id)}`, body) : await api.post('/api/v1/rules', body);
      onSaved(saved, !rule ? 'created' : saved.changed === false ? 'unchanged' : 'saved');
    } catch (e2) {
      setErr({ field: e2.field || '', message: e2.message });
    } finally {
      setBusy(false);
    }
  };
  const replay = async () => {
    setTesting(true); setErr(null); setTest(null);
    try {
      const body = bodyOf(f);
      delete body.routes; // the replay contacts nobody
      setTest(await api.post('/api/v1/rules/test', { rules: [body], since }));
    } catch (e2) {
      // The replay names fields rules[0].…: the form's own.
      setErr({ field: (e2.field || '').replace(/^rules\[0\]\.?/, ''), message: e2.message.replace(/^rules\[0\]: /, '') });
    } finally {
      setTesting(false);
    }
  };

  const title = rule ? `Edit rule “${rule.name}”` : 'New rule';
  const topError = fe.top;
  return html`
    <form class="card rule-form rule-edit" onSubmit=${save} aria-labelledby="rule-form-heading" novalidate>
      <h2 id="rule-form-heading" tabindex="-1">${title}</h2>
      ${text('name', 'Name', { required: true })}
      ${text('description', 'Description', { area: true })}
      <label for=${idOf('kind')}>Kind</label>
      <select ...${attrs('kind')} value=${f.kind} onChange=${set('kind')}>
        ${KINDS.map((k) => html`<option value=${k}>${k}</option>`)}
      </select>
      <${FieldError} id=${`${idOf('kind')}-error`} error=${errorOf('kind')} />
      ${text('condition', f.kind === 'sequence' ? 'Condition every step shares (CEL, optional)' : 'Condition (CEL)',
        { area: true, hint: 'Over the event’s JSON fields: type, outcome, actor.id, decision.action, …' })}
      ${kf.includes('steps') && html`
        <fieldset class="rule-steps">
          <legend>Steps, in order (2 to 5 CEL conditions)</legend>
          ${f.steps.map((s, i) => html`
            <div class="rule-step">
              <label for=${idOf(`steps[${i}]`)}>Step ${i + 1}</label>
              <input ...${attrs(`steps[${i}]`)} value=${s} onInput=${setStep(i)} />
              ${f.steps.length > 2 && html`<button type="button" class="ghost" onClick=${() => setF({ ...f, steps: f.steps.filter((_, j) => j !== i) })}>Remove step ${i + 1}</button>`}
              <${FieldError} id=${`${idOf(`steps[${i}]`)}-error`} error=${errorOf(`steps[${i}]`)} />
            </div>`)}
          ${f.steps.length < 5 && html`<button type="button" class="secondary" onClick=${() => setF({ ...f, steps: [...f.steps, ''] })}>Add a step</button>`}
          <${FieldError} id=${`${idOf('steps')}-error`} error=${errorOf('steps')} />
        </fieldset>`}
      ${kf.includes('group_by') && text('group_by', 'Group by (fields, comma-separated)', { hint: 'Such as actor.id or context.ip' })}
      ${kf.includes('field') && text('field', f.kind === 'distinct' ? 'Field whose distinct values are counted' : 'Field whose new values are watched')}
      ${kf.includes('threshold') && text('threshold', f.kind === 'distinct' ? 'Distinct values (2 to 10,000)' : 'Events (2 to 10,000)', { type: 'number' })}
      ${kf.includes('window') && text('window', 'Window (such as 5m, 1h, 1d)')}
      ${kf.includes('lookback') && text('lookback', 'Lookback (default 30d)')}
      <label for=${idOf('severity')}>Severity</label>
      <select ...${attrs('severity')} value=${f.severity} onChange=${set('severity')}>
        ${SEVERITIES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <${FieldError} id=${`${idOf('severity')}-error`} error=${errorOf('severity')} />
      ${text('owner', 'Owner')}
      ${text('runbook', 'Runbook', { area: true })}
      ${text('tags', 'Tags (comma-separated)')}
      ${text('dedup_key', 'Dedup key (CEL, a string; default: the group’s values)')}
      ${text('suppress', 'Suppression window after an alert is resolved (such as 1h)')}
      <label class="check"><input type="checkbox" ...${attrs('enabled')} checked=${f.enabled} onChange=${set('enabled')} /> Enabled (the rule runs)</label>
      <${FieldError} id=${`${idOf('enabled')}-error`} error=${errorOf('enabled')} />

      <${RoutesFieldset} routes=${f.routes} setRoutes=${(routes) => setF({ ...f, routes })} fe=${fe} />

      ${topError && html`<p class="error" role="alert">${topError}</p>`}
      <div class="buttons">
        <button type="submit" disabled=${busy}>${rule ? 'Save rule' : 'Create rule'}</button>
        <button type="button" class="ghost" onClick=${onCancel}>Cancel</button>
      </div>

      <section class="rule-test" aria-labelledby="rule-test-heading">
        <h3 id="rule-test-heading">What would have fired</h3>
        <p class="hint">Replays the stored events of the period through this form’s rule, as <code>veritrail rules test</code> does: nothing is stored and nobody is notified.</p>
        <div class="inline-form">
          <label for="rule-test-since">Over the last</label>
          <select id="rule-test-since" value=${since} onChange=${(e) => setSince(e.currentTarget.value)}>
            <option value="1d">day</option><option value="7d">7 days</option><option value="30d">30 days</option><option value="90d">90 days</option>
          </select>
          <button type="button" class="secondary" disabled=${testing} onClick=${replay}>What would have fired</button>
        </div>
        ${testing && html`<p class="loading" role="status">Replaying the log…</p>`}
        ${test && html`<${TestResult} result=${test} tz=${tz} />`}
      </section>
    </form>`;
}

function TestResult({ result, tz }) {
  return html`
    <div class="rule-test-result" role="status">
      <p>${result.events_scanned.toLocaleString()} events replayed: ${result.alerts.length === 0 ? 'nothing would have fired.' : `${result.alerts.length}${result.truncated ? ' or more' : ''} alerts would have fired.`}</p>
      ${result.alerts.length > 0 && html`
        <table class="list">
          <thead><tr><th scope="col">Dedup key</th><th scope="col">Events</th><th scope="col">First seen (${zoneLabel(tz)})</th><th scope="col">Last seen</th><th scope="col">First events</th></tr></thead>
          <tbody>${result.alerts.map((a) => html`
            <tr data-test-alert=${a.dedup_key}>
              <td>${a.dedup_key || '(one alert)'}</td>
              <td class="num">${a.count.toLocaleString()}</td>
              <td>${formatTime(a.first_seen, tz)}</td>
              <td>${formatTime(a.last_seen, tz)}</td>
              <td>${a.event_ids.slice(0, 3).map((id) => html`<${Link} href=${`/events/${encodeURIComponent(id)}`}>${id}<//> `)}</td>
            </tr>`)}</tbody>
        </table>`}
    </div>`;
}

// PackForm is the built-in pack (GET and PUT /api/v1/rules/pack): on or
// off, its rules, and the routes all of them send to.
export function PackForm({ onChanged }) {
  const [pack, setPack] = useState(null);
  const [routes, setRoutes] = useState([]);
  const [err, setErr] = useState(null);
  const [msg, setMsg] = useState('');
  const [busy, setBusy] = useState(false);
  const load = () => api.get('/api/v1/rules/pack').then((p) => { setPack(p); setRoutes(routesOf(p.routes)); }, (e) => setErr({ field: '', message: e.message }));
  useEffect(() => { load(); }, []);
  const fe = fieldErrors(err, routeFieldNames(routes), 'pack');
  const put = async (enabled) => {
    setBusy(true); setErr(null); setMsg('');
    try {
      const p = await api.put('/api/v1/rules/pack', { enabled, routes: routesBody(routes) });
      setPack(p); setRoutes(routesOf(p.routes));
      setMsg(enabled ? (pack.enabled ? 'The pack’s routes are saved.' : 'The built-in pack is on.') : 'The built-in pack is off; its rules stay, disabled.');
      onChanged();
    } catch (e) {
      setErr({ field: e.field || '', message: e.message });
    } finally {
      setBusy(false);
    }
  };
  if (!pack) return html`<section class="card"><${FieldError} error=${fe.top} /></section>`;
  return html`
    <form class="card rule-form pack-form" aria-labelledby="pack-heading" data-pack-enabled=${String(pack.enabled)} onSubmit=${(e) => { e.preventDefault(); put(true); }} novalidate>
      <h2 id="pack-heading">Built-in rules</h2>
      <p>${pack.enabled ? 'On' : 'Off'}: ${pack.rules.length} rules for what the product documents name (failed sign-ins, bulk exports, admin role changes, AI logging switched off, …), with the routes below.</p>
      <details>
        <summary>The pack’s rules</summary>
        <ul>${pack.rules.map((r) => html`<li>${r.name} (${r.kind}, ${r.severity})</li>`)}</ul>
      </details>
      <${RoutesFieldset} routes=${routes} setRoutes=${setRoutes} fe=${fe} legend="Routes of every rule of the pack (least severity keeps the low ones quiet)" />
      ${fe.top && html`<p class="error" role="alert">${fe.top}</p>`}
      ${msg && html`<p class="notice" role="status">${msg}</p>`}
      <div class="buttons">
        <button type="submit" disabled=${busy}>${pack.enabled ? 'Save the pack’s routes' : 'Turn the pack on'}</button>
        ${pack.enabled && html`<button type="button" class="ghost" disabled=${busy} onClick=${() => put(false)}>Turn the pack off</button>`}
      </div>
    </form>`;
}
