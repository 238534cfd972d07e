// The administration pages' browser scenarios (part 2), one per "must
// show" item; admin_test.go starts the real server, a real OpenID provider
// and SMTP server, and runs each by name. Every page is checked with
// axe-core and photographed.
import { apiFromPage, audit, check, env, run, screenshot } from './harness.mjs';

const base = () => env('BASE');

// signInAs signs in with a token and opens path.
async function signInAs(page, token, path) {
  await page.goto(`${base()}/login`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(/\/events/);
  await page.goto(`${base()}${path}`);
}

// verified waits for the detail's integrity mark of an event.
async function verified(page, id) {
  await page.goto(`${base()}/events/${id}`);
  const mark = page.locator('[data-verified]').first();
  await mark.waitFor();
  return mark.getAttribute('data-verified');
}

const scenarios = {
  // Turn AI interaction logs on and see the moment recorded.
  async 'ai-switch'(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/settings');
    await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
    await audit(page, 'settings page');
    await screenshot(page, 'settings');
    await page.getByLabel('Collect AI interaction logs').check();
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Saved.').waitFor();
    await page.getByText(/On since/).waitFor();
    const at = await page.locator('[data-ai-enabled-at]').getAttribute('data-ai-enabled-at');
    check(at && Math.abs(Date.parse(at) - Date.now()) < 10 * 60 * 1000, `the moment it was turned on is shown: ${at}`);
    const st = await apiFromPage(page, '/api/v1/settings');
    check(st.ai_interaction_logs_enabled_at === at, `the moment shown is the stored one (${st.ai_interaction_logs_enabled_at})`);
    // Who changed it, from the log.
    await page.locator('[data-change="settings.changed"]').first().waitFor();
    await audit(page, 'settings page after a change');
  },

  // An auditor gets no settings page, and the API behind it refuses.
  async 'auditor-no-settings'(page) {
    await signInAs(page, env('AUDITOR_TOKEN'), '/settings');
    await page.getByText(/Your role \(auditor\) cannot see this page/).waitFor();
    check(await page.getByRole('link', { name: 'Settings' }).count() === 0, 'no Settings link for an auditor');
    const status = await page.evaluate(async () => (await fetch('/api/v1/settings')).status);
    check(status === 403, `GET /api/v1/settings as auditor: ${status}`);
    await audit(page, 'settings refused to an auditor');
    await screenshot(page, 'settings-auditor');
  },

  // A policy error is shown at its line.
  async 'mcp-policy'(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/settings');
    await page.getByLabel('Policy (JSON; empty: none)').fill('{\n  "default": "allow",\n  "rules": [\n    {"tool": "fs.*", "action": "allow"},\n    {"tool": "rm", "action": "explode"}\n  ]\n}');
    await page.getByRole('button', { name: 'Save settings' }).click();
    const err = page.locator('#mcp-error');
    await err.waitFor();
    const line = await err.getAttribute('data-line');
    check(line === '5', `the error is at line 5 (got ${line}: ${await err.innerText()})`);
    await audit(page, 'settings with a policy error');
    await screenshot(page, 'settings-policy-error');
  },

  // Place a hold on a suspect.
  async 'hold-place'(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/holds');
    await page.getByRole('heading', { name: 'Legal holds', level: 1 }).waitFor();
    await page.getByLabel('Name').fill('Case 42');
    await page.getByLabel('Reason').fill('Investigation of the suspect');
    await page.getByLabel(/^Actors/).fill('suspect@acme.example');
    await page.getByRole('button', { name: 'Place hold' }).click();
    await page.getByText('Hold “Case 42” placed.').waitFor();
    const row = page.locator('[data-hold="Case 42"]');
    await row.waitFor();
    check((await row.innerText()).includes('Investigation of the suspect'), 'the hold is listed with why');
    await page.locator('[data-change="privacy.hold_placed"]').first().waitFor();
    await audit(page, 'legal holds page');
    await screenshot(page, 'holds');
  },

  // The hold stops the erasure of the suspect, and says so.
  async 'hold-erasure'(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/erasure');
    await page.getByLabel('E-mail address of the person').fill(env('WHO'));
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.getByText(/Legal holds keep the content of 2 events/).waitFor();
    await page.getByLabel('I understand that erased content cannot be restored').check();
    await page.getByRole('button', { name: "Erase this person's content" }).click();
    await page.locator('[data-record]').waitFor();
    check((await page.locator('[data-record]').innerText()).includes('0 events lost their content'), 'nothing of the held person was erased');
    await audit(page, 'erasure blocked by a hold');
    await screenshot(page, 'erasure-held');
  },

  // A 30-day content tier, a retention run: the old event has no content
  // and still verifies.
  async 'retention-30'(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/settings');
    await page.getByLabel('Content kept for *').selectOption('30');
    await page.getByRole('button', { name: 'Preview the next run' }).click();
    await page.locator('.preview tr[data-category="team"]').waitFor();
    check((await page.locator('.preview').innerText()).includes('Legal holds keep'), 'the preview says what the hold keeps');
    await audit(page, 'retention preview');
    await screenshot(page, 'retention-preview');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText(/Saved\. Legal holds keep/).waitFor();
    await page.getByRole('button', { name: 'Run retention now (saved rules)' }).click();
    await page.locator('[data-retention-ran]').waitFor();
    check((await page.locator('[data-retention-ran]').innerText()).includes('Legal holds kept'), 'the run says what the hold kept');
    const ev = await apiFromPage(page, `/api/v1/events/${env('OLD_ID')}`);
    check(ev.content === undefined, 'the old event lost its content');
    check(await verified(page, env('OLD_ID')) === 'true', 'the old event still verifies');
    await screenshot(page, 'retention-old-event');
  },

  // Erase a person: preview, confirm, the privacy.erasure record; the
  // envelope still verifies.
  async erase(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/erasure');
    await audit(page, 'erasure page');
    await page.getByLabel('E-mail address of the person').fill(env('WHO'));
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.getByText('2 events would lose their content.').waitFor();
    await page.getByLabel('I understand that erased content cannot be restored').check();
    await page.getByRole('button', { name: "Erase this person's content" }).click();
    await page.getByText('2 events lost their content.').waitFor();
    await audit(page, 'erasure done');
    await screenshot(page, 'erasure');
    const record = await page.locator('[data-record]').getAttribute('data-record');
    await page.getByRole('link', { name: /privacy\.erasure record/ }).click();
    await page.waitForURL(new RegExp(`/events/${record}`));
    const rec = await apiFromPage(page, `/api/v1/events/${record}`);
    check(rec.type === 'privacy.erasure', `the record is privacy.erasure: ${rec.type}`);
    check(await verified(page, env('ERASED_ID')) === 'true', 'the erased event still verifies');
  },

  // Create a token (its secret shown once) and revoke it; last used shown.
  async tokens(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/people');
    await page.getByRole('heading', { name: 'People and access', level: 1 }).waitFor();
    await audit(page, 'people page');
    await screenshot(page, 'people');
    await page.getByLabel('Token name').fill('ci-ingest');
    await page.getByLabel('Token role').selectOption('ingest');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = await page.getByLabel('New token').inputValue();
    check(secret.startsWith('vt_'), 'the new secret is shown');
    await audit(page, 'people page with a new token');
    await page.getByRole('button', { name: 'I have copied it' }).click();
    check(await page.getByLabel('New token').count() === 0, 'the secret is shown only once');
    check(!(await page.content()).includes(secret), 'the secret is gone from the page');
    const ok = await page.evaluate(async (t) => (await fetch('/api/v1/events', { method: 'POST', credentials: 'omit',
      headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' }, body: '{"type":"ci.run","actor":{"type":"system","id":"ci"}}' })).status, secret);
    check(ok === 200, `the token works (${ok})`);
    await page.getByRole('button', { name: 'Revoke ci-ingest' }).click();
    await page.locator('[data-token="ci-ingest"]', { hasText: 'Revoked' }).waitFor();
    const after = await page.evaluate(async (t) => (await fetch('/api/v1/events', { method: 'POST', credentials: 'omit',
      headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' }, body: '{"type":"ci.run","actor":{"type":"system","id":"ci"}}' })).status, secret);
    check(after === 401, `a revoked token is refused (${after})`);
  },

  // Invite a user: a sign-in link is e-mailed (the test reads it).
  async invite(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/people');
    await page.getByLabel('E-mail address').fill(env('EMAIL'));
    await page.getByLabel('Name', { exact: true }).fill('New Person');
    await page.getByLabel('Role', { exact: true }).selectOption('auditor');
    await page.getByRole('button', { name: 'Invite' }).click();
    await page.getByText(/a sign-in link is on its way to them/).waitFor();
    await page.locator(`[data-user="${env('EMAIL')}"]`).waitFor();
  },
  async 'open-invite-link'(page) {
    await page.goto(env('LINK'));
    await page.getByRole('button', { name: 'Continue to the console' }).click();
    await page.waitForURL(`${base()}/events`);
    const me = await apiFromPage(page, '/api/v1/session');
    check(me.user && me.user.email === env('EMAIL') && me.role === 'auditor', `signed in as the invited user: ${JSON.stringify(me.user)} ${me.role}`);
  },

  // Single sign-on through the real provider: lands with the mapped role.
  async sso(page) {
    await page.goto(`${base()}/login?next=%2Fevents`);
    await page.getByLabel('Organization').fill(env('ORG'));
    await audit(page, 'sign-in page with single sign-on');
    await page.getByRole('button', { name: 'Sign in with single sign-on' }).click();
    await page.getByLabel('Username:').fill('dana');
    await page.getByLabel('Password:').fill('pw-dana');
    await page.getByRole('button', { name: 'Login' }).click();
    await page.waitForURL(`${base()}/events`);
    await page.locator('[data-event-id]').first().waitFor();
    const me = await apiFromPage(page, '/api/v1/session');
    check(me.role === 'security' && me.session.method === 'oidc' && me.user.email === 'dana.sso@acme.example',
      `session after single sign-on: ${JSON.stringify(me)}`);
    check(await page.getByText('Dana Sso').first().isVisible(), 'the person is named');
    check(await page.getByRole('link', { name: 'Settings' }).count() === 0, 'a security user sees no admin pages');
    await screenshot(page, 'sso-landed');
  },

  // Pause a sink, send a test delivery (lag grows), resume: lag back to 0.
  async sink(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/forwarding');
    const row = page.locator('[data-sink="siem"]');
    await row.waitFor();
    await audit(page, 'forwarding page');
    await screenshot(page, 'forwarding');
    await page.getByRole('button', { name: 'Pause siem' }).click();
    await page.locator('[data-sink="siem"][data-state="paused"]').waitFor();
    await page.getByRole('button', { name: 'Test siem' }).click();
    await page.waitForFunction(() => Number(document.querySelector('[data-sink="siem"]').getAttribute('data-lag-events')) > 0);
    await page.getByRole('button', { name: 'Resume siem' }).click();
    await page.locator('[data-sink="siem"][data-lag-events="0"]:not([data-state="paused"])').waitFor();
    await audit(page, 'forwarding page after resume');
  },

  // A page of another site posts a form to the API (admin_test.go checks
  // that nothing was placed).
  async 'cross-site'(page) {
    await signInAs(page, env('OWNER_TOKEN'), '/holds');
    const answer = page.waitForResponse((r) => r.url().includes('/api/v1/holds') && r.request().method() === 'POST');
    await page.goto(env('EVIL'));
    const r = await answer;
    check(r.status() === 401 || r.status() === 403, `the cross-site post was refused (${r.status()})`);
  },
};

await run(scenarios);
