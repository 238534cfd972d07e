// People and access: users (invite, role, disable), teams, API tokens
// (created with a role and scopes, the secret shown once; revoked; last
// used), and what each role can see.
import { useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { Alert, Changes, When, useLoad } from '../lib/admin.js';
import { session } from '../lib/session.js';

export const ROLES = [
  ['owner', 'Everything, including granting any role and reading content.'],
  ['admin', 'Settings, people, tokens, forwarding, erasure and legal holds; reads the log\'s metadata, never content.'],
  ['security', 'Reads the log with content (prompts, tool arguments), exports it.'],
  ['auditor', 'Reads the log\'s metadata and exports it; content is hidden.'],
  ['ingest', 'Writes events only (applications, gateways); cannot sign in to the console.'],
];
const SCOPES = ['events:write', 'auditlogs:read', 'aiinteractionlogs:read', 'content:read', 'exports', 'admin'];

// grantable lists the roles someone of role may give (the server decides
// anyway): owners any, admins admin, auditor and ingest.
function grantable(role) {
  if (role === 'owner') return ROLES.map(([r]) => r);
  if (role === 'admin') return ['admin', 'auditor', 'ingest'];
  return [];
}

function RoleSelect({ id, value, onChange, label }) {
  const s = session.use();
  return html`
    <label for=${id}>${label}</label>
    <select id=${id} value=${value} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${grantable(s && s.role).map((r) => html`<option value=${r}>${r}</option>`)}
    </select>`;
}

function Users({ onChange }) {
  const [users, error, reload] = useLoad(() => api.get('/api/v1/users'));
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState('auditor');
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState('');
  const invite = async (e) => {
    e.preventDefault();
    setErr(''); setMsg('');
    try {
      await api.post('/api/v1/users', { email: email.trim(), name: name.trim(), role });
      // The invitation is a sign-in link, e-mailed as any sign-in link is.
      await api.post('/api/v1/session/email', { email: email.trim() }).catch(() => {});
      setMsg(`Invited ${email.trim()}: a sign-in link is on its way to them.`);
      setEmail(''); setName('');
      reload(); onChange();
    } catch (e2) { setErr(e2.message); }
  };
  const act = async (fn, done) => {
    setErr(''); setMsg('');
    try { await fn(); setMsg(done); reload(); onChange(); } catch (e2) { setErr(e2.message); }
  };
  return html`
    <section class="card" aria-labelledby="users-heading">
      <h2 id="users-heading">Users</h2>
      <${Alert} error=${error || err} />
      ${msg && html`<p class="notice" role="status">${msg}</p>`}
      ${users && html`
        <table class="admin-table">
          <caption class="visually-hidden">Users of the organization</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">E-mail</th><th scope="col">Role</th><th scope="col">Signs in with</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>${(users.data || []).map((u) => html`
            <tr data-user=${u.email}>
              <td>${u.name || '—'}</td><td>${u.email}</td>
              <td>
                ${u.disabled_at ? u.role : html`
                  <label class="visually-hidden" for=${`role-${u.id}`}>Role of ${u.email}</label>
                  <select id=${`role-${u.id}`} value=${u.role} onChange=${(e) => act(() => api.patch(`/api/v1/users/${u.id}`, { role: e.currentTarget.value }), `${u.email} is now ${e.currentTarget.value}.`)}>
                    ${[...new Set([u.role, ...grantable(session.get() && session.get().role)])].map((r) => html`<option value=${r}>${r}</option>`)}
                  </select>`}
              </td>
              <td>${u.oidc_issuer ? `single sign-on (${u.oidc_issuer})` : 'e-mailed link'}</td>
              <td>${u.disabled_at ? html`Disabled <${When} at=${u.disabled_at} />` : 'Active'}</td>
              <td>${!u.disabled_at && html`<button type="button" class="danger" onClick=${() => act(() => api.del(`/api/v1/users/${u.id}`), `${u.email} is disabled and signed out.`)}>Disable ${u.email}</button>`}</td>
            </tr>`)}
          </tbody>
        </table>`}
      <form class="inline-form" onSubmit=${invite} aria-labelledby="invite-heading">
        <h3 id="invite-heading">Invite a user</h3>
        <label for="invite-email">E-mail address</label>
        <input id="invite-email" type="email" required value=${email} onInput=${(e) => setEmail(e.currentTarget.value)} />
        <label for="invite-name">Name</label>
        <input id="invite-name" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
        <${RoleSelect} id="invite-role" label="Role" value=${role} onChange=${setRole} />
        <button type="submit">Invite</button>
      </form>
    </section>`;
}

function Teams({ onChange }) {
  const [teams, error, reload] = useLoad(() => api.get('/api/v1/teams'));
  const [name, setName] = useState('');
  const [err, setErr] = useState('');
  const create = async (e) => {
    e.preventDefault();
    setErr('');
    try { await api.post('/api/v1/teams', { name: name.trim() }); setName(''); reload(); onChange(); } catch (e2) { setErr(e2.message); }
  };
  return html`
    <section class="card" aria-labelledby="teams-heading">
      <h2 id="teams-heading">Teams</h2>
      <${Alert} error=${error || err} />
      ${teams && html`<ul class="plain-list">${(teams.data || []).map((t) => html`
        <li data-team=${t.name}>${t.name} <span class="hint">${t.id}</span>
          <button type="button" class="ghost" onClick=${() => api.del(`/api/v1/teams/${t.id}`).then(() => { reload(); onChange(); }, (e2) => setErr(e2.message))}>Delete team ${t.name}</button></li>`)}</ul>`}
      <form class="inline-form" onSubmit=${create}>
        <label for="team-name">Team name</label>
        <input id="team-name" required value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
        <button type="submit" class="secondary">Create team</button>
      </form>
    </section>`;
}

function Tokens({ onChange }) {
  const [tokens, error, reload] = useLoad(() => api.get('/api/v1/tokens'));
  const [name, setName] = useState('');
  const [role, setRole] = useState('ingest');
  const [scopes, setScopes] = useState([]);
  const [created, setCreated] = useState(null);
  const [err, setErr] = useState('');
  const create = async (e) => {
    e.preventDefault();
    setErr(''); setCreated(null);
    try {
      const t = await api.post('/api/v1/tokens', { name: name.trim(), role, scopes });
      setCreated(t); setName(''); setScopes([]);
      reload(); onChange();
    } catch (e2) { setErr(e2.message); }
  };
  const revoke = async (t) => {
    setErr('');
    try { await api.del(`/api/v1/tokens/${t.id}`); reload(); onChange(); } catch (e2) { setErr(e2.message); }
  };
  return html`
    <section class="card" aria-labelledby="tokens-heading">
      <h2 id="tokens-heading">API tokens</h2>
      <${Alert} error=${error || err} />
      ${created && html`
        <div class="secret-once" role="status">
          <p><strong>Token ${created.name} created.</strong> Copy it now: it is shown only this once.</p>
          <label for="new-token-secret">New token</label>
          <input id="new-token-secret" readonly class="secret" value=${created.token} />
          <button type="button" class="secondary" onClick=${() => setCreated(null)}>I have copied it</button>
        </div>`}
      ${tokens && html`
        <table class="admin-table">
          <caption class="visually-hidden">API tokens</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Scopes</th><th scope="col">Last used</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody>${(tokens.data || []).map((t) => html`
            <tr data-token=${t.name}>
              <td>${t.name || t.id}</td><td>${t.role}</td><td>${t.scopes.join(', ')}</td>
              <td><${When} at=${t.last_used_at} /></td>
              <td>${t.revoked_at ? html`Revoked <${When} at=${t.revoked_at} />` : 'Active'}</td>
              <td>${!t.revoked_at && html`<button type="button" class="danger" onClick=${() => revoke(t)}>Revoke ${t.name || t.id}</button>`}</td>
            </tr>`)}
          </tbody>
        </table>`}
      <form class="inline-form" onSubmit=${create} aria-labelledby="new-token-heading">
        <h3 id="new-token-heading">Create a token</h3>
        <label for="token-name">Token name</label>
        <input id="token-name" required value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
        <${RoleSelect} id="token-role" label="Token role" value=${role} onChange=${setRole} />
        <fieldset>
          <legend>Narrow to scopes (none: all of the role's)</legend>
          ${SCOPES.map((sc) => html`<label class="check"><input type="checkbox" checked=${scopes.includes(sc)}
            onChange=${(e) => setScopes(e.currentTarget.checked ? [...scopes, sc] : scopes.filter((x) => x !== sc))} /> ${sc}</label>`)}
        </fieldset>
        <button type="submit">Create token</button>
      </form>
    </section>`;
}

export function PeoplePage() {
  const [n, setN] = useState(0);
  const changed = () => setN((x) => x + 1);
  return html`
    <div class="admin-page">
      <h1>People and access</h1>
      <${Users} onChange=${changed} />
      <${Tokens} onChange=${changed} />
      <${Teams} onChange=${changed} />
      <section class="card" aria-labelledby="roles-heading">
        <h2 id="roles-heading">What each role can see and do</h2>
        <dl class="roles">${ROLES.map(([r, what]) => html`<dt>${r}</dt><dd>${what}</dd>`)}</dl>
      </section>
      <${Changes} types="audit.user_created,audit.user_disabled,audit.user_role_changed,audit.token_created,audit.token_revoked,audit.team_created,audit.team_deleted" title="Who changed access" reloadKey=${n} />
    </div>`;
}
