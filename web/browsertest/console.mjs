// The console's browser scenarios, one per "must show" item of the
// console; console_test.go starts the real server (demo data,
// a real SMTP server) and runs each by name. Every page visited is checked
// with axe-core and photographed.
import { readFileSync } from 'node:fs';
import { apiFromPage, audit, check, env, run, screenshot, signIn } from './harness.mjs';

const base = () => env('BASE');

// rowIds lists the data-event-id of the rows drawn, top to bottom.
async function rowIds(page) {
  return page.$$eval('[role="row"][data-event-id]', (rows) => rows
    .map((r) => [Number(r.getAttribute('aria-rowindex')), r.getAttribute('data-event-id')])
    .sort((a, b) => a[0] - b[0]).map((x) => x[1]));
}

// settled waits for the results table to show the view of the address:
// not busy, and drawn — rows, or the plain "no events" or error status
// (between a page's arrival and its first drawing the table may be idle
// with nothing drawn yet).
async function settled(page) {
  await page.waitForFunction(() => {
    const grid = document.querySelector('[role="grid"]');
    return grid && grid.getAttribute('aria-busy') === 'false' &&
      (grid.querySelector('[role="row"][data-event-id]') || document.querySelector('.results .empty, .results .error'));
  });
}

// sameAsAPI checks that the rows drawn are the first events the API lists
// for the page's view.
async function sameAsAPI(page, what) {
  await settled(page);
  const shown = await rowIds(page);
  const view = new URL(page.url()).search;
  const listed = await apiFromPage(page, `/api/v1/events${view}${view ? '&' : '?'}limit=${Math.min(shown.length + 50, 1000)}`);
  // The console's own reads since the page loaded are in the log too (as
  // audit events, newest first): they come before what the page showed.
  let skip = 0;
  while (skip < listed.data.length && listed.data[skip].id !== shown[0] && listed.data[skip].type.startsWith('audit.')) skip++;
  const want = listed.data.slice(skip).map((e) => e.id);
  const status = await page.$eval('.results', (r) => (r.querySelector('.empty, .error') || {}).textContent || '').catch(() => '');
  check(shown.length > 0, `${what}: rows are shown${status ? ` (the table says: ${status})` : ''}`);
  check(JSON.stringify(shown) === JSON.stringify(want.slice(0, shown.length)),
    `${what}: the rows shown are the API's list for ${view}\n shown ${shown.slice(0, 5)}\n  want ${want.slice(0, 5)}`);
  return shown;
}

const scenarios = {
  // / leads to /events, which sends a visitor to sign in; a token signs in.
  async 'sign-in-token'(page) {
    await page.goto(`${base()}/`);
    await page.waitForURL(/\/login\?next=%2Fevents/);
    await page.getByLabel('API token', { exact: true }).waitFor();
    await audit(page, 'sign-in page');
    await screenshot(page, 'sign-in');
    await page.getByLabel('API token', { exact: true }).fill('vt_not-a-real-token');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').waitFor();
    check((await page.getByRole('alert').innerText()).includes('unknown token'), 'a wrong token is refused plainly');
    await page.getByLabel('API token', { exact: true }).fill(env('OWNER_TOKEN'));
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${base()}/events`);
    await page.locator('[data-event-id]').first().waitFor();
    await settled(page);
    await audit(page, 'audit logs page');
    await screenshot(page, 'events');
    // Dark theme, local time: the page must stay accessible.
    await page.getByLabel('Theme').selectOption('dark');
    await page.getByLabel('Time zone').selectOption('local');
    await page.getByText(/Time \(local time/).waitFor();
    await audit(page, 'audit logs page, dark theme');
    await screenshot(page, 'events-dark');
    // Sign-out ends the session: the API no longer answers it.
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(/\/login/);
    const status = await page.evaluate(async () => (await fetch('/api/v1/events?limit=1')).status);
    check(status === 401, `after sign-out the session is dead (got ${status})`);
  },

  // A user asks for a link by e-mail (the test reads it from a real SMTP
  // server) ...
  async 'request-link'(page) {
    await page.goto(`${base()}/login`);
    await page.getByLabel('E-mail address', { exact: true }).fill(env('EMAIL'));
    await page.getByRole('button', { name: 'E-mail me a sign-in link', exact: true }).click();
    await page.getByText(/a sign-in link is on its way/).waitFor();
    await screenshot(page, 'sign-in-link-requested');
  },

  // ... and opens it: one click signs them in, as themselves.
  async 'open-link'(page) {
    await page.goto(env('LINK'));
    await page.getByRole('button', { name: 'Continue to the console', exact: true }).waitFor();
    await audit(page, 'sign-in link page');
    await screenshot(page, 'sign-in-link');
    await page.getByRole('button', { name: 'Continue to the console', exact: true }).click();
    await page.waitForURL(`${base()}/events`);
    await page.locator('[data-event-id]').first().waitFor();
    check(await page.getByText(env('USER_NAME')).first().isVisible(), 'the signed-in user is named');
    const me = await apiFromPage(page, '/api/v1/session');
    check(me.user && me.user.email === env('EMAIL') && me.session.method === 'email', `session of the user: ${JSON.stringify(me)}`);
    // The link worked once.
    await page.goto(env('LINK'));
    await page.getByRole('button', { name: 'Continue to the console', exact: true }).click();
    await page.getByRole('alert').waitFor();
    check((await page.getByRole('alert').innerText()).includes('used already'), 'a used link is refused');
  },

  // Filter by user and outcome with the filter bar, then by full text.
  async filters(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.getByLabel('Filter by', { exact: true }).selectOption('actor_email');
    await page.getByLabel('User (e-mail) value', { exact: true }).fill(env('FILTER_EMAIL'));
    await page.getByRole('button', { name: 'Add filter', exact: true }).click();
    await page.waitForURL(/actor_email=/);
    await page.getByLabel('Filter by', { exact: true }).selectOption('outcome');
    await page.getByLabel('Outcome value', { exact: true }).selectOption('failure');
    await page.getByRole('button', { name: 'Add filter', exact: true }).click();
    await page.waitForURL(/outcome=failure/);
    const url = new URL(page.url());
    check(url.pathname === '/events' && url.searchParams.get('actor_email') === env('FILTER_EMAIL') && url.searchParams.get('outcome') === 'failure',
      `the address holds the view: ${url}`);
    const ids = await sameAsAPI(page, 'user and outcome');
    const listed = await apiFromPage(page, `/api/v1/events${url.search}`);
    for (const e of listed.data) check(e.outcome === 'failure' && e.actor.email === env('FILTER_EMAIL'), `event ${e.id} matches`);
    check(await page.getByRole('button', { name: /Remove filter Outcome: failure/ }).isVisible(), 'the filter is shown and removable');
    await screenshot(page, 'filtered-user-outcome');
    console.log(`user and outcome: ${ids.length} rows`);
    // A reload (a shared link) shows the same view.
    await page.reload();
    await sameAsAPI(page, 'reloaded view');

    await page.goto(`${base()}/events`);
    await settled(page);
    await page.getByLabel('Search', { exact: true }).fill(env('SEARCH_WORDS'));
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForURL(/q=/);
    await sameAsAPI(page, 'full text');
    await screenshot(page, 'full-text');
  },

  // A security person sees the content of a tool call ...
  async 'content-security'(page) {
    await signIn(page, base(), env('SECURITY_TOKEN'));
    await page.goto(`${base()}/events/${env('EVENT_ID')}`);
    await page.locator('[data-verified]').waitFor();
    await page.getByRole('heading', { name: 'Arguments' }).waitFor();
    check(await page.getByRole('heading', { name: 'Underlying API requests' }).isVisible(), 'the API requests behind the tool call are shown');
    check(!(await page.getByText(/Content hidden/).isVisible()), 'content is not hidden for security');
    check(await page.locator('[data-verified]').getAttribute('data-verified') === 'true', 'the event verifies');
    await audit(page, 'event detail (security)');
    await screenshot(page, 'detail-security');
  },

  // ... an auditor sees that it is hidden.
  async 'content-auditor'(page) {
    await signIn(page, base(), env('AUDITOR_TOKEN'));
    await page.goto(`${base()}/events/${env('EVENT_ID')}`);
    await page.locator('[data-verified]').waitFor();
    await page.getByText('Content hidden for your role (auditor).').waitFor();
    check(!(await page.getByRole('heading', { name: 'Arguments' }).isVisible()), 'no arguments for the auditor');
    check(await page.locator('[data-verified]').getAttribute('data-verified') === 'true', 'the envelope still verifies without content');
    await audit(page, 'event detail (auditor)');
    await screenshot(page, 'detail-auditor');
  },

  // The mark is true on an honest log ...
  async 'verified-true'(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.locator('[data-event-id]').first().click();
    await page.waitForURL(/\/events\/[^/?]+/);
    await page.locator('[data-verified]').waitFor();
    const v = await page.locator('[data-verified]').getAttribute('data-verified');
    check(v === 'true', `an honest event verifies (data-verified=${v}): ${await page.locator('.integrity').innerText()}`);
    await page.goto(`${base()}/events/${env('EVENT_ID')}`);
    await page.locator('[data-verified="true"]').waitFor();
  },

  // ... and false once one byte of its envelope changed in the store.
  async 'verified-false'(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.goto(`${base()}/events/${env('TAMPERED_ID')}`);
    await page.locator('[data-verified]').waitFor();
    const v = await page.locator('[data-verified]').getAttribute('data-verified');
    const why = await page.locator('.integrity').innerText();
    check(v === 'false', `a changed envelope does not verify (data-verified=${v})`);
    check(why.includes('changed'), `the failure is said plainly: ${why}`);
    await screenshot(page, 'detail-tampered');
  },

  // Live tail shows an event sent during the test.
  async 'live-tail'(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.getByRole('button', { name: 'Live tail', exact: true }).click();
    await page.locator('.rate', { hasText: /events\/s/ }).waitFor();
    const id = `live-${Date.now()}`;
    // Sent with an ingest token, as an application would.
    const res = await fetch(`${base()}/api/v1/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${env('INGEST_TOKEN')}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id, type: 'agent.tool_call', actor: { type: 'agent', id: 'agt_live' }, tool: 'live_tail_probe', outcome: 'success' }),
    });
    check(res.ok, `the event was accepted (${res.status})`);
    await page.locator(`[data-event-id="${id}"]`).waitFor();
    await screenshot(page, 'live-tail');
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await page.locator('.rate', { hasText: /^paused$/ }).waitFor();
  },

  // Zooming the histogram changes the address and the rows.
  async zoom(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await settled(page);
    const before = await rowIds(page);
    const plot = page.locator('.histogram svg');
    const box = await plot.boundingBox();
    // Drag across the middle of the histogram: days ago, not now.
    const y = box.y + box.height - 5;
    await page.mouse.move(box.x + box.width * 0.3, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.45, y, { steps: 5 });
    await page.mouse.up();
    await page.waitForURL(/since=.*until=|until=.*since=/);
    const url = new URL(page.url());
    const since = Date.parse(url.searchParams.get('since'));
    const until = Date.parse(url.searchParams.get('until'));
    check(since < until, `a window: ${url.search}`);
    const after = await sameAsAPI(page, 'zoomed');
    check(JSON.stringify(after) !== JSON.stringify(before.slice(0, after.length)), 'the rows changed');
    const first = await apiFromPage(page, `/api/v1/events${url.search}&limit=1`);
    const t = Date.parse(first.data[0].time);
    check(t >= since && t < until, 'the rows are in the window');
    // The keyboard zooms too: a bar, Enter.
    await page.locator('.histogram-plot').focus();
    await page.keyboard.press('End');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.searchParams.get('since') !== url.searchParams.get('since'));
    await screenshot(page, 'zoomed');
  },

  // Scrolling to the end loads every page (keyset, 500 a page) into a
  // windowed table: each row once, at one place, while the page holds only
  // a screenful of row elements however many are loaded.
  async scroll(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await settled(page);
    const r = await page.evaluate(async () => {
      const grid = document.querySelector('[role="grid"]');
      const frame = () => new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res)));
      const byIndex = new Map();
      const byId = new Map();
      const problems = [];
      let maxDom = 0;
      const collect = () => {
        const rows = grid.querySelectorAll('[role="row"][data-event-id]');
        maxDom = Math.max(maxDom, rows.length);
        for (const row of rows) {
          const i = Number(row.getAttribute('aria-rowindex'));
          const id = row.getAttribute('data-event-id');
          if (byIndex.has(i) && byIndex.get(i) !== id) problems.push(`row ${i} was ${byIndex.get(i)}, then ${id}`);
          if (byId.has(id) && byId.get(id) !== i) problems.push(`${id} at rows ${byId.get(id)} and ${i}`);
          byIndex.set(i, id);
          byId.set(id, i);
        }
      };
      // Waited for, not timed: up to 10 minutes without progress.
      for (let stalled = 0; stalled < 6000;) {
        collect();
        const end = grid.scrollTop + grid.clientHeight >= grid.scrollHeight - 1;
        if (end && grid.getAttribute('aria-rowcount') !== '-1') break;
        const before = grid.scrollTop;
        grid.scrollTop = before + grid.clientHeight;
        await frame();
        if (grid.scrollTop > before) stalled = 0;
        else {
          stalled++;
          await new Promise((res) => setTimeout(res, 100));
        }
      }
      collect();
      const rowcount = Number(grid.getAttribute('aria-rowcount'));
      return { rowcount, seen: byId.size, last: byIndex.get(rowcount), maxDom, problems: problems.slice(0, 5) };
    });
    console.log(`scrolled to the end: ${r.seen} rows loaded, at most ${r.maxDom} row elements at once`);
    check(r.problems.length === 0, `each row once, at one place: ${r.problems.join('; ')}`);
    check(r.rowcount !== -1, 'every page was loaded');
    check(r.seen === r.rowcount - 1, `every row was shown (${r.seen} of ${r.rowcount - 1})`);
    check(r.seen > 1500, `more than three pages were loaded (${r.seen} rows)`);
    // The last row is the view's last event (the oldest: newer ones, such
    // as the audit records of these reads, come at the top).
    const view = new URL(page.url()).search;
    let last;
    for (let cursor = ''; ;) {
      const p = await apiFromPage(page, `/api/v1/events${view}${view ? '&' : '?'}limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      if (p.data.length) last = p.data[p.data.length - 1].id;
      if (!p.has_more) break;
      cursor = p.next_cursor;
    }
    check(r.last === last, `the last row is the view's last event (${r.last}, want ${last})`);
    check(r.maxDom < 200, `the table is windowed (${r.maxDom} row elements at most)`);
    await screenshot(page, 'scrolled-to-end');
  },

  // An export downloads a file whose rows are the view's.
  async export(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.goto(`${base()}/events?${env('EXPORT_VIEW')}`);
    await settled(page);
    const shown = await rowIds(page);
    await page.getByRole('button', { name: 'Export', exact: true }).click();
    await page.getByRole('dialog', { name: 'Export this view' }).waitFor();
    await audit(page, 'export dialog');
    await screenshot(page, 'export-dialog');
    await page.getByLabel('CSV').check();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download', exact: true }).click()]);
    const file = await download.path();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const header = lines[0].split(',');
    const idCol = header.indexOf('id');
    const exported = lines.slice(1).map((l) => l.split(',')[idCol]);
    const all = [];
    let cursor = '';
    for (;;) {
      const page1 = await apiFromPage(page, `/api/v1/events?${env('EXPORT_VIEW')}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      all.push(...page1.data.map((e) => e.id));
      if (!page1.has_more) break;
      cursor = page1.next_cursor;
    }
    check(exported.length === all.length && exported.length > 0, `the file holds the view's ${all.length} events (got ${exported.length})`);
    check(JSON.stringify(exported) === JSON.stringify(all), 'in the view\'s order');
    check(JSON.stringify(shown) === JSON.stringify(exported.slice(0, shown.length)), 'starting with the rows on screen');
    console.log(`export: ${exported.length} rows, as the view`);
  },

  // The log page checks the checkpoint, and on the next visit that the log
  // only grew; a checkpoint seen before that the log contradicts is shown
  // as a failure.
  async 'log-page'(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.goto(`${base()}/log`);
    await page.getByText("Signed by the organization's key").waitFor();
    await page.getByText("first visit").waitFor();
    await audit(page, 'log integrity page');
    await screenshot(page, 'log');
    const size = Number((await page.locator('dt:text-is("Size") + dd').innerText()).replace(/[^0-9]/g, ''));
    // More events, a newer checkpoint (signed every second while the log grows).
    // Waited for, not timed: the checkpoint is polled until it covers the
    // read's audit event, however slow the machine.
    await page.evaluate(async () => { await fetch('/api/v1/events?limit=1'); });
    for (let i = 0; ; i++) {
      const n = await page.evaluate(async () => Number((await (await fetch('/api/v1/log/checkpoint')).text()).split('\n')[1]));
      if (n > size) break;
      check(i < 600, `the checkpoint never grew past ${size}`);
      await page.waitForTimeout(500);
    }
    await page.reload();
    await page.getByText('This log has not been rewritten since your last visit').waitFor();
    const after = Number((await page.locator('dt:text-is("Size") + dd').innerText()).replace(/[^0-9]/g, ''));
    check(after > size, `the log grew (${size} → ${after})`);
    await screenshot(page, 'log-consistent');
    // A remembered checkpoint this log contradicts: the same size, another root.
    await page.evaluate((n) => {
      for (const k of Object.keys(localStorage)) {
        if (k.startsWith('veritrail.checkpoint.')) localStorage.setItem(k, JSON.stringify({ size: n, root: btoa('x'.repeat(32)), seenAt: new Date().toISOString() }));
      }
    }, after);
    await page.reload();
    await page.getByText('This log is not the one you saw last time.').waitFor();
    await screenshot(page, 'log-rewritten');
  },

  // The Alerts page: the alert a rule raised is listed with the rules; its
  // detail shows the events that fired it, each verified in this browser;
  // acknowledging and resolving it there change it (console_test.go then
  // checks the log and the route).
  async alerts(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts', exact: true }).click();
    await page.waitForURL(`${base()}/alerts`);
    const row = page.locator(`[data-alert-id="${env('ALERT_ID')}"]`);
    await row.waitFor();
    check((await row.innerText()).includes('high'), 'the alert\'s severity is shown');
    await page.locator(`[data-rule-id="${env('RULE_ID')}"]`).waitFor();
    check((await page.locator(`[data-rule-id="${env('RULE_ID')}"]`).innerText()).includes('running'), 'the rule is listed as running');
    await audit(page, 'alerts page');
    await screenshot(page, 'alerts');

    await row.getByRole('link', { name: env('ALERT_RULE') }).click();
    await page.waitForURL(`${base()}/alerts/${env('ALERT_ID')}`);
    await page.getByRole('heading', { name: env('ALERT_RULE'), level: 2 }).waitFor();
    const want = env('ALERT_EVENTS').split(',').sort();
    const events = page.locator('.firing-event');
    await page.waitForFunction((n) => document.querySelectorAll('.firing-event [data-verified]').length === n, want.length);
    const shown = (await events.evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id')))).sort();
    check(JSON.stringify(shown) === JSON.stringify(want), `the events that fired it: ${shown}, want ${want}`);
    const marks = await page.locator('.firing-event [data-verified]').evaluateAll((els) => els.map((e) => e.getAttribute('data-verified')));
    check(marks.every((v) => v === 'true'), `each event verifies in the browser: ${marks}`);
    check((await page.locator('.alert-detail').innerText()).includes('delivered'), 'the webhook delivery is shown');
    await audit(page, 'alert detail');
    await screenshot(page, 'alert-detail');

    await page.getByRole('button', { name: 'Acknowledge', exact: true }).click();
    await page.getByText('Alert acknowledged.').waitFor();
    check((await apiFromPage(page, `/api/v1/alerts/${env('ALERT_ID')}`)).state === 'acknowledged', 'acknowledged through the API');
    await row.getByText('acknowledged').waitFor();
    await page.getByLabel(/^Note/).fill('rotated the password');
    await page.getByRole('button', { name: 'Resolve', exact: true }).click();
    await page.getByText('Alert resolved.').waitFor();
    const resolved = await apiFromPage(page, `/api/v1/alerts/${env('ALERT_ID')}`);
    check(resolved.state === 'resolved' && resolved.note === 'rotated the password', `resolved with the note: ${resolved.state} ${resolved.note}`);
    check(await page.getByRole('button', { name: 'Reopen', exact: true }).isVisible(), 'a resolved alert can be reopened');
    await page.getByLabel('Theme').selectOption('dark');
    await audit(page, 'alert detail, dark theme');
    await screenshot(page, 'alert-resolved-dark');

    // The state filter is in the address.
    await page.getByLabel('State').selectOption('open');
    await page.waitForURL(/state=open/);
    await page.getByText('No open alerts.').waitFor();
    await page.getByLabel('State').selectOption('resolved');
    await page.waitForURL(/state=resolved/);
    await row.waitFor();

    // The events are one click away.
    await page.locator('.firing-event a').first().click();
    await page.waitForURL(/\/events\/[^/?]+/);
    await page.locator('.detail [data-verified="true"]').waitFor();
  },

  // Rules written in the console: a refusal shown at the field it names,
  // the replay of what would have fired, then created with a route and an
  // escalation step, edited (the route's secret kept without retyping),
  // disabled, enabled; console_test.go checks each against the API and
  // deletes it here last (rules-delete).
  async 'rules-write'(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.goto(`${base()}/alerts`);
    await page.getByRole('button', { name: 'New rule', exact: true }).click();
    const form = page.locator('form.rule-edit');
    await form.getByRole('heading', { name: 'New rule' }).waitFor();
    await form.getByLabel('Name', { exact: true }).fill(env('RULE_NAME'));
    await form.getByLabel('Kind', { exact: true }).selectOption('threshold');
    await form.getByLabel('Condition (CEL)').fill('outcome == "failure" && actor.type == "user"');
    await form.getByLabel(/^Group by/).fill('actor.idd');
    await form.getByLabel(/^Events \(2 to/).fill('3');
    await form.getByLabel(/^Window/).fill('1h');
    await form.getByLabel('Severity', { exact: true }).selectOption('high');
    await form.getByLabel('Owner', { exact: true }).fill('secops@acme.example');
    await form.getByLabel('Runbook', { exact: true }).fill('Call the person; reset their password if it was not them.');
    await form.getByLabel(/^Tags/).fill('identity, console');
    await form.getByLabel(/^Suppression window/).fill('30m');
    await form.getByRole('button', { name: 'Add a route' }).click();
    const first = form.locator('[data-route-index="0"]');
    await first.getByLabel('URL', { exact: true }).fill(env('HOOK_URL'));
    await first.getByLabel(/^Signing secret/).fill(env('HOOK_SECRET'));
    await form.getByRole('button', { name: 'Add a route' }).click();
    const second = form.locator('[data-route-index="1"]');
    await second.getByLabel('URL', { exact: true }).fill(env('HOOK_URL'));
    await second.getByLabel(/^Signing secret/).fill(env('HOOK_SECRET'));
    await second.getByLabel(/^Escalation/).fill('15m');

    // The API's refusal, next to the field it names.
    await form.getByRole('button', { name: 'Create rule' }).click();
    const groupErr = form.locator('#rule-group-by-error');
    await groupErr.waitFor();
    check((await groupErr.innerText()).includes('undefined field'), `the error at group_by: ${await groupErr.innerText()}`);
    check(await form.getByLabel(/^Group by/).getAttribute('aria-invalid') === 'true', 'the field is marked invalid');
    await audit(page, 'rule form with an error');
    await screenshot(page, 'rule-form-error');
    await form.getByLabel(/^Group by/).fill('actor.id');

    // What would have fired, from the stored log: nothing stored or sent.
    await form.getByLabel('Over the last').selectOption('30d');
    await form.getByRole('button', { name: 'What would have fired' }).click();
    await form.locator('.rule-test-result').waitFor();
    const summary = await form.locator('.rule-test-result p').first().innerText();
    check(/events replayed: \d+ alerts would have fired/.test(summary.replaceAll(',', '')), `the replay's summary: ${summary}`);
    const keys = await form.locator('[data-test-alert]').evaluateAll((els) => els.map((e) => e.getAttribute('data-test-alert')));
    check(keys.length > 0, 'the replay lists what would have fired');
    console.log(`replay: ${summary}`);
    await audit(page, 'rule form with a replay');
    await screenshot(page, 'rule-form-replay');

    await form.getByRole('button', { name: 'Create rule' }).click();
    await page.getByText(`Rule “${env('RULE_NAME')}” created.`).waitFor();
    const row = page.locator('tr[data-rule-status]', { hasText: env('RULE_NAME') });
    await row.waitFor();
    check((await row.innerText()).includes('running'), 'the new rule runs');
    check((await row.innerText()).includes('escalation after 15m'), `the escalation step is shown: ${await row.innerText()}`);

    // Edit: the form holds the rule; a change keeps the routes' secrets.
    await row.getByRole('button', { name: `Edit ${env('RULE_NAME')}` }).click();
    await form.getByRole('heading', { name: `Edit rule “${env('RULE_NAME')}”` }).waitFor();
    check(await form.getByLabel(/^Group by/).inputValue() === 'actor.id', 'the form holds the rule');
    check(await form.getByLabel(/^Signing secret/).first().inputValue() === '(set)', 'the secret is not shown');
    await form.getByLabel('Severity', { exact: true }).selectOption('critical');
    await form.getByLabel(/^Events \(2 to/).fill('2');
    await audit(page, 'rule form, editing');
    await screenshot(page, 'rule-form-edit');
    await form.getByRole('button', { name: 'Save rule' }).click();
    await page.getByText(`Rule “${env('RULE_NAME')}” saved.`).waitFor();
    await row.getByText('critical').waitFor();

    // Disabled, then enabled again.
    await row.getByRole('button', { name: `Disable ${env('RULE_NAME')}` }).click();
    await page.locator(`tr[data-rule-status="disabled"]`, { hasText: env('RULE_NAME') }).waitFor();
    await row.getByRole('button', { name: `Enable ${env('RULE_NAME')}` }).click();
    await page.locator(`tr[data-rule-status="running"]`, { hasText: env('RULE_NAME') }).waitFor();
    await page.getByLabel('Theme').selectOption('dark');
    await audit(page, 'rules, dark theme');
    await screenshot(page, 'rules-dark');
  },

  // The built-in pack turned on with a route, its route changed without
  // retyping the secret, and turned off (console_test.go checks the API).
  async 'rules-pack'(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.goto(`${base()}/alerts`);
    const form = page.locator('form.pack-form');
    await form.getByRole('heading', { name: 'Built-in rules' }).waitFor();
    check(await form.getAttribute('data-pack-enabled') === 'false', 'the pack is off at first');
    await form.getByRole('button', { name: 'Add a route' }).click();
    await form.getByLabel('URL', { exact: true }).fill(env('HOOK_URL'));
    await form.getByLabel(/^Signing secret/).fill('short');
    await form.getByRole('button', { name: 'Turn the pack on' }).click();
    const secretErr = form.locator('#pack-routes-0-secret-error');
    await secretErr.waitFor();
    check((await secretErr.innerText()).includes('16'), `the error at the secret: ${await secretErr.innerText()}`);
    await form.getByLabel(/^Signing secret/).fill(env('HOOK_SECRET'));
    await form.getByLabel('Least severity sent').selectOption('high');
    await form.getByRole('button', { name: 'Turn the pack on' }).click();
    await form.getByText('The built-in pack is on.').waitFor();
    await page.locator('tr[data-rule-status="running"]', { hasText: 'builtin:' }).first().waitFor();
    check(await form.getByLabel(/^Signing secret/).inputValue() === '(set)', 'the secret is not shown again');
    await audit(page, 'rules with the pack on');
    await screenshot(page, 'rules-pack');
    await form.getByLabel('Least severity sent').selectOption('critical');
    await form.getByRole('button', { name: 'Save the pack’s routes' }).click();
    await form.getByText('The pack’s routes are saved.').waitFor();
    await form.getByRole('button', { name: 'Turn the pack off' }).click();
    await form.getByText('The built-in pack is off', { exact: false }).waitFor();
    check(await form.getAttribute('data-pack-enabled') === 'false', 'the pack is off');
  },

  async 'rules-delete'(page) {
    await signIn(page, base(), env('OWNER_TOKEN'));
    await page.goto(`${base()}/alerts`);
    const row = page.locator('tr[data-rule-status]', { hasText: env('RULE_NAME') });
    await row.getByRole('button', { name: `Delete ${env('RULE_NAME')}` }).click();
    await page.getByRole('button', { name: 'Delete the rule' }).click();
    await page.getByText(`Rule “${env('RULE_NAME')}” deleted.`, { exact: false }).waitFor();
    await row.waitFor({ state: 'detached' }); // the list, read again, has it no more
  },

  // An auditor reads alerts but neither changes them nor sees the rules.
  async 'alerts-auditor'(page) {
    await signIn(page, base(), env('AUDITOR_TOKEN'));
    await page.goto(`${base()}/alerts/${env('ALERT_ID')}`);
    await page.getByRole('heading', { name: env('ALERT_RULE'), level: 2 }).waitFor();
    await page.locator('.firing-event [data-verified]').first().waitFor();
    check(!(await page.getByRole('button', { name: 'Reopen', exact: true }).isVisible()), 'no state changes for the auditor');
    check(!(await page.getByRole('heading', { name: 'Rules' }).isVisible()), 'no rules for the auditor');
    await audit(page, 'alert detail (auditor)');
    await screenshot(page, 'alert-auditor');
  },
};

await run(scenarios);
