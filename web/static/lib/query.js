// The view of the audit log is the API's own list parameters, kept in the
// address: /events?actor_email=…&outcome=failure&since=… is both a link to
// share and the query sent to GET /api/v1/events (and to /stats, /export
// and /stream).

// FILTERS are the filters of the filter bar: every filter of the API.
export const FILTERS = [
  { name: 'actor_email', label: 'User (e-mail)', placeholder: 'dana@example.com' },
  { name: 'actor_id', label: 'Actor', placeholder: 'usr_…, agent or service id' },
  { name: 'type', label: 'Type', placeholder: 'auth.login or a category: auth.*' },
  { name: 'task_id', label: 'Task' },
  { name: 'agent_id', label: 'Agent' },
  { name: 'session_id', label: 'Session' },
  { name: 'outcome', label: 'Outcome', options: ['success', 'failure'] },
  { name: 'connector', label: 'Connector' },
  { name: 'tool', label: 'Tool' },
  { name: 'status', label: 'Status', placeholder: '403, or a class: 5xx' },
  { name: 'decision', label: 'Decision', options: ['allowed', 'blocked', 'redacted'] },
  { name: 'ip', label: 'IP or CIDR', placeholder: '10.0.0.0/8' },
  { name: 'team_id', label: 'Team' },
  { name: 'target_id', label: 'Target' },
  { name: 'target_type', label: 'Target type' },
  { name: 'actor_type', label: 'Actor type', options: ['user', 'agent', 'service', 'api_key', 'system'] },
  { name: 'request_id', label: 'Request id' },
  { name: 'user_agent', label: 'User agent', placeholder: 'curl/8.5.0, or a prefix: Mozilla/*' },
];

export const filterLabel = (name) => (FILTERS.find((f) => f.name === name) || { label: name }).label;

// The view's parameters that are not filters.
const VIEW = ['since', 'until', 'q', 'order'];

export function viewParams(search) {
  const p = new URLSearchParams(search);
  p.delete('cursor');
  p.delete('limit');
  return p;
}

// filtersOf lists the view's filters as [name, value] pairs, in order.
export function filtersOf(params) {
  return [...params].filter(([k]) => !VIEW.includes(k));
}

export function withParam(params, name, value) {
  const p = new URLSearchParams(params);
  if (value === '' || value === undefined || value === null) p.delete(name);
  else p.set(name, value);
  return p;
}

export function withFilter(params, name, value) {
  const p = new URLSearchParams(params);
  if (!p.getAll(name).includes(value)) p.append(name, value);
  return p;
}

export function withoutFilter(params, name, value) {
  const p = new URLSearchParams();
  for (const [k, v] of params) if (!(k === name && v === value)) p.append(k, v);
  return p;
}

export function href(path, params) {
  const s = String(params);
  return s ? `${path}?${s}` : path;
}

// Only the filters (no window, order or text): a live tail follows them.
export function filtersOnly(params) {
  const p = new URLSearchParams(params);
  for (const k of ['since', 'until', 'order']) p.delete(k);
  return p;
}
