// The browser tests' harness: headless Chromium (Debian's, driven by
// playwright-core) with a fresh context per scenario, page checks with
// axe-core, and screenshots kept as artifacts. Driven by browsertest.Driver
// from Go tests, which set the environment: VERITRAIL_NPM_MODULES (the
// npm prefix the packages are installed in), VERITRAIL_CHROMIUM, VERITRAIL_TEST_ARTIFACTS and
// the scenarios' own values.
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';

const require = createRequire(path.join(process.env.VERITRAIL_NPM_MODULES, 'noop.js'));
const { chromium } = require('playwright-core');
const { AxeBuilder } = require('@axe-core/playwright');

export const env = (name) => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`the test did not set ${name}`);
  return v;
};

const started = Date.now();
const log = console.log;
console.log = (...args) => log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);

export function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

const flags = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

// launch starts Chromium as the tests must: headless, no sandbox (root in
// CI), no GPU, no background traffic, a fresh profile (a temporary
// user-data-dir, removed at close).
export async function launch() {
  const browser = await chromium.launch({ executablePath: env('VERITRAIL_CHROMIUM'), headless: true, args: flags });
  return browser;
}

// newPage opens a page in a fresh context of browser: nothing (cookies,
// storage) shared with another scenario.
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  // Generous: the machine may be loaded; nothing is timed, only waited for.
  page.setDefaultTimeout(120000);
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('401')) console.log(`console error: ${m.text()}`);
  });
  return { context, page };
}

// audit runs axe-core on the page (WCAG 2.1 A and AA rules and best
// practices) and fails on any serious or critical violation.
export async function audit(page, name) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = result.violations.filter((v) => !bad.includes(v));
  for (const v of minor) console.log(`axe (${name}, ${v.impact}): ${v.id}: ${v.help}`);
  if (bad.length) {
    const lines = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join('\n    ')}`);
    throw new Error(`axe-core found ${bad.length} serious or critical violations on ${name}:\n  ${lines.join('\n  ')}`);
  }
  console.log(`axe: ${name}: no serious or critical violation (${result.passes.length} rules passed)`);
}

// screenshot keeps an image of the page, named for the scenario and step.
export async function screenshot(page, name) {
  const file = path.join(env('VERITRAIL_TEST_ARTIFACTS'), `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

// signIn signs in through the sign-in page with an API token.
export async function signIn(page, base, token) {
  await page.goto(`${base}/login`);
  await page.getByLabel('API token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL(/\/events/);
  await page.locator('[data-event-id]').first().waitFor();
}

// apiFromPage calls the API from the page, with its session (a read the
// test compares the console's rows with).
export async function apiFromPage(page, pathAndQuery) {
  return page.evaluate(async (u) => {
    const r = await fetch(u, { headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`${u}: ${r.status} ${await r.text()}`);
    return r.json();
  }, pathAndQuery);
}

async function runOne(browser, scenarios, name) {
  const scenario = scenarios[name];
  if (!scenario) {
    console.log(`no scenario ${name}; there are: ${Object.keys(scenarios).join(', ')}`);
    return false;
  }
  const { context, page } = await newPage(browser);
  try {
    await scenario(page, context);
    console.log(`scenario ${name}: passed`);
    return true;
  } catch (e) {
    console.log(`scenario ${name}: ${e.stack || e}`);
    await screenshot(page, `FAILED-${name}`).catch(() => {});
    return false;
  } finally {
    await context.close();
  }
}

// run runs the scenario named on the command line in its own browser; with
// none, it serves the Go test (browsertest.Driver): one browser, and for
// each line {"scenario", "env"} read from standard input, the scenario in a
// fresh context with env added, answered by a line "@@result <name> ok" or
// "@@result <name> failed".
export async function run(scenarios) {
  const browser = await launch();
  try {
    if (process.argv[2]) {
      process.exitCode = (await runOne(browser, scenarios, process.argv[2])) ? 0 : 1;
      return;
    }
    const lines = createInterface({ input: process.stdin });
    for await (const line of lines) {
      if (!line.trim()) continue;
      const { scenario, env: vars } = JSON.parse(line);
      Object.assign(process.env, vars);
      const ok = await runOne(browser, scenarios, scenario);
      process.stdout.write(`@@result ${scenario} ${ok ? 'ok' : 'failed'}\n`);
    }
  } finally {
    await browser.close();
  }
}
