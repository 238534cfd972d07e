// Sign-in: an API token pasted here (the owner's first sign-in), or a
// one-time link e-mailed to a user of the organization. /login/link is the
// page such a link opens: the person confirms, so a mail scanner that
// fetches the link does not use it up.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../lib/html.js';
import { api } from '../lib/api.js';
import { navigate } from '../lib/router.js';
import { session, setSession } from '../lib/session.js';

// nextPage is where to go after signing in: the page that asked, if it is
// one of ours (never another site).
function nextPage() {
  const next = new URLSearchParams(location.search).get('next') || '';
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/events';
}

function ErrorMessage({ error, id }) {
  if (!error) return null;
  return html`<p class="error" role="alert" id=${id}>${error}</p>`;
}

export function LoginPage() {
  const s = session.use();
  const [token, setToken] = useState('');
  const [email, setEmail] = useState('');
  const [methods, setMethods] = useState(['token']);
  const [busy, setBusy] = useState('');
  const [tokenError, setTokenError] = useState('');
  const [emailError, setEmailError] = useState('');
  const [sent, setSent] = useState('');
  const [org, setOrg] = useState('');

  useEffect(() => {
    api.get('/api/v1/session/options').then((o) => setMethods(o.methods)).catch(() => {});
  }, []);
  useEffect(() => {
    if (s) navigate(nextPage(), { replace: true });
  }, [s]);

  const signInWithToken = async (e) => {
    e.preventDefault();
    setBusy('token');
    setTokenError('');
    try {
      setSession(await api.post('/api/v1/session', { token: token.trim() }));
      navigate(nextPage(), { replace: true });
    } catch (err) {
      setTokenError(err.message);
    } finally {
      setBusy('');
    }
  };
  const sendLink = async (e) => {
    e.preventDefault();
    setBusy('email');
    setEmailError('');
    setSent('');
    try {
      const r = await api.post('/api/v1/session/email', { email: email.trim() });
      setSent(r.message);
    } catch (err) {
      setEmailError(err.message);
    } finally {
      setBusy('');
    }
  };

  return html`
    <div class="login">
      <h1>Sign in to Veritrail</h1>
      <section aria-labelledby="token-heading" class="card">
        <h2 id="token-heading">With a token</h2>
        <form onSubmit=${signInWithToken}>
          <label for="token">API token</label>
          <input id="token" name="token" type="text" class="secret" autocomplete="off" spellcheck=${false} required
            aria-describedby=${tokenError ? 'token-hint token-error' : 'token-hint'} aria-invalid=${tokenError ? 'true' : undefined}
            value=${token} onInput=${(e) => setToken(e.currentTarget.value)} />
          <p class="hint" id="token-hint">A token starts with vt_. The owner's token was printed when the server first started.</p>
          <${ErrorMessage} error=${tokenError} id="token-error" />
          <button type="submit" disabled=${busy === 'token'}>${busy === 'token' ? 'Signing in…' : 'Sign in'}</button>
        </form>
      </section>
      ${methods.includes('oidc') && html`
        <section aria-labelledby="sso-heading" class="card">
          <h2 id="sso-heading">With single sign-on</h2>
          <form class="sso-form" onSubmit=${(e) => {
            e.preventDefault();
            // The server's page, not the API: the provider takes over the browser.
            location.assign(`/auth/oidc/${encodeURIComponent(org.trim())}/login?return_to=${encodeURIComponent(nextPage())}`);
          }}>
            <label for="sso-org">Organization</label>
            <input id="sso-org" name="organization" required autocomplete="organization" value=${org} onInput=${(e) => setOrg(e.currentTarget.value)} />
            <button type="submit" class="secondary">Sign in with single sign-on</button>
          </form>
        </section>`}
      ${methods.includes('email') && html`
        <section aria-labelledby="email-heading" class="card">
          <h2 id="email-heading">With a link sent by e-mail</h2>
          <form onSubmit=${sendLink}>
            <label for="email">E-mail address</label>
            <input id="email" name="email" type="email" autocomplete="email" required
              aria-invalid=${emailError ? 'true' : undefined} aria-describedby=${emailError ? 'email-error' : undefined}
              value=${email} onInput=${(e) => setEmail(e.currentTarget.value)} />
            <${ErrorMessage} error=${emailError} id="email-error" />
            <button type="submit" class="secondary" disabled=${busy === 'email'}>${busy === 'email' ? 'Sending…' : 'E-mail me a sign-in link'}</button>
          </form>
          ${sent && html`<p class="notice" role="status">${sent}</p>`}
        </section>`}
    </div>`;
}

export function LinkPage() {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const secret = location.hash.replace(/^#/, '');

  const finish = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const s = await api.post('/api/v1/session/link', { link: secret });
      // The secret is spent; keep it out of the history.
      history.replaceState(null, '', '/login/link');
      setSession(s);
      navigate('/events', { replace: true });
    } catch (err) {
      setError(err.message);
      setBusy(false);
    }
  };

  return html`
    <div class="login">
      <h1>Finish signing in</h1>
      <section class="card" aria-labelledby="link-heading">
        <h2 id="link-heading">Your sign-in link</h2>
        ${secret
          ? html`<form onSubmit=${finish}>
              <p>This link signs you in to the Veritrail console once. Continue on this device?</p>
              <${ErrorMessage} error=${error} id="link-error" />
              <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Continue to the console'}</button>
            </form>`
          : html`<p class="error" role="alert">This address holds no sign-in link. Open the link from the e-mail again, or ask for a new one on the <a href="/login">sign-in page</a>.</p>`}
      </section>
    </div>`;
}
