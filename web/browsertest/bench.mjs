// The console's speed, measured in Chromium against a running server
// (docs/bench/console.sh starts one with the demo plus a million events):
//
//   first rows   navigation to /events → first result row in the DOM
//   filter       a click on a top value → the new view's rows in the DOM
//   stats        GET /api/v1/events/stats as the page asks it, p50 and p95
//   JavaScript   every script the page loads, gzip-compressed, in bytes
//
// Environment: BASE, TOKEN, ROUNDS (default 15), and the harness's.
import http from 'node:http';
import { env, launch, newPage } from './harness.mjs';

const base = env('BASE');
const token = env('TOKEN');
const rounds = Number(process.env.ROUNDS || 15);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const report = (name, xs, unit = 'ms') => console.log(`${name.padEnd(38)} p50 ${pct(xs, 50).toFixed(1)} ${unit}   p95 ${pct(xs, 95).toFixed(1)} ${unit}   (${xs.length} runs)`);

function gzipSize(path) {
  return new Promise((resolve, reject) => {
    http.get(`${base}${path}`, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
      let n = 0;
      res.on('data', (c) => { n += c.length; });
      res.on('end', () => resolve(n));
    }).on('error', reject);
  });
}

const browser = await launch();
const { page } = await newPage(browser);
try {
  // When the first row appears, relative to the navigation's start.
  await page.addInitScript(() => {
    new MutationObserver((_, obs) => {
      if (document.querySelector('[data-event-id]')) {
        window.firstRows = performance.now();
        obs.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto(`${base}/login`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(/\/events/);
  await page.locator('[data-event-id]').first().waitFor({ timeout: 60000 });

  const first = [];
  for (let i = 0; i < rounds; i++) {
    await page.goto(`${base}/events`);
    await page.waitForFunction(() => window.firstRows !== undefined, null, { timeout: 60000 });
    first.push(await page.evaluate(() => window.firstRows));
  }

  // A filter change: click a top value, wait for the grid to settle on
  // rows other than before; then back to the unfiltered view.
  const change = [];
  const fields = ['outcome', 'type', 'tool', 'connector', 'decision'];
  for (let i = 0; i < rounds; i++) {
    await page.goto(`${base}/events`);
    await page.locator('.top-value').first().waitFor({ timeout: 60000 });
    await page.waitForFunction(() => document.querySelector('[role="grid"]').getAttribute('aria-busy') === 'false');
    const field = fields[i % fields.length];
    const ms = await page.evaluate((f) => new Promise((resolve) => {
      const heading = [...document.querySelectorAll('.top-field h3')].find((h) => h.id === `top-${f}`);
      const button = heading && heading.parentElement.querySelector('.top-value');
      const before = document.querySelector('[data-event-id]').getAttribute('data-event-id');
      const t0 = performance.now();
      const obs = new MutationObserver(() => {
        const grid = document.querySelector('[role="grid"]');
        const row = document.querySelector('[data-event-id]');
        if (grid.getAttribute('aria-busy') === 'false' && row && row.getAttribute('data-event-id') !== before && location.search) {
          obs.disconnect();
          resolve(performance.now() - t0);
        }
      });
      obs.observe(document.body, { childList: true, subtree: true, attributes: true });
      (button || document.querySelector('.top-value')).click();
    }), field);
    change.push(ms);
  }

  const stats = [];
  const params = 'bars=60&top=actor_id,actor_email,type,outcome,connector,tool,decision';
  for (let i = 0; i < rounds * 4; i++) {
    const t0 = performance.now();
    const r = await fetch(`${base}/api/v1/events/stats?${params}`, { headers: { Authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    stats.push(performance.now() - t0);
  }
  const filtered = [];
  for (let i = 0; i < rounds * 4; i++) {
    const t0 = performance.now();
    const r = await fetch(`${base}/api/v1/events/stats?${params}&outcome=failure`, { headers: { Authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    filtered.push(performance.now() - t0);
  }

  const index = await (await fetch(`${base}/events`)).text();
  const scripts = [...index.matchAll(/(?:src|href)="(\/assets\/[^"]+\.m?js)"/g)].map((m) => m[1]);
  let js = 0;
  for (const s of new Set(scripts)) js += await gzipSize(s);

  const total = await (await fetch(`${base}/api/v1/events/stats?top=`, { headers: { Authorization: `Bearer ${token}` } })).json();
  console.log(`console benchmark on ${total.total.toLocaleString()} events (${base})`);
  report('first rows painted after navigation', first);
  report('filter change to new rows', change);
  report('stats, whole log (the default view)', stats);
  report('stats, outcome=failure', filtered);
  console.log(`${'JavaScript, gzip'.padEnd(38)} ${(js / 1024).toFixed(1)} KB in ${new Set(scripts).size} files`);
} finally {
  await browser.close();
}
