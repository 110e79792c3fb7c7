// The status page rendered by a real headless Chromium (Debian's `chromium`, driven by
// playwright-core, which downloads no browser) against a running gateway: the DOM shows the
// real state (a killed upstream's breaker open, the agents, the rate limit, the cache, the
// reload history), hostile route ids stay text, the CSP lets the page run (no violations), and
// the page refreshes itself: a reload and the upstream's return appear without navigating.
// Screenshots go to test/.artifacts/ (gitignored).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { request } from '../../helpers/http.ts';
import { HANG_MS, until } from '../../helpers/until.ts';
import { startStatusWorld, driveUntil, flakyTarget, XSS_ROUTE, type StatusWorld } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const INSTALL = 'apt-get install -y --no-install-recommends chromium (scripts/setup.sh does)';
const ARTIFACTS = resolve(import.meta.dirname, '..', '..', '.artifacts');
const missing = !existsSync(CHROMIUM);
if (missing && process.env.CI) throw new Error(`${CHROMIUM} is missing; install it with: ${INSTALL}`);
if (missing) process.stderr.write(`\n*** SKIPPING the status page browser test: ${CHROMIUM} is missing; install it with: ${INSTALL} ***\n\n`);

let w: StatusWorld;
let browser: Browser;
let page: Page;
const cspViolations: string[] = [];
const pageErrors: string[] = [];

before(async () => {
  if (missing) return;
  w = await startStatusWorld();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  await browser?.close();
  await w?.close();
});

const cell = (key: string, col: string) => `tr[data-key=${JSON.stringify(key)}] td[data-col="${col}"]`;

/** Waits (bounded by HANG_MS) until the page's own refresh shows `want` in the element. */
async function untilText(selector: string, want: string): Promise<void> {
  let seen: string | null = null;
  await until(() => `${selector} to show "${want}" (still "${seen}")`, async () => (seen = await page.textContent(selector)) === want, HANG_MS, 200);
}

async function screenshot(name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  process.stdout.write(`# screenshot: ${path}\n`);
}

test('the page shows the live state and refreshes itself', { skip: missing && `chromium missing (${INSTALL})` }, async () => {
  // Real state first: the flaky upstream is killed until its breaker opens; some rate-limited
  // and cached requests.
  await w.killFlaky();
  await driveUntil(w, (r) => flakyTarget(w, r)?.circuit_breaker === 'open', 'flaky breaker open');
  for (let i = 0; i < 4; i++) await request(`${w.url}/limited/x`);
  for (let i = 0; i < 3; i++) await request(`${w.url}/cached/a`);
  const report = await w.report();
  const flakyKey = `pool/127.0.0.1:${w.flaky.port}`;
  const goodKey = `pool/${w.good.address}`;

  // ?refresh=1: the page polls its JSON every second
  await page.goto(`${w.admin}/_/status?refresh=1`);
  await page.waitForSelector(cell(flakyKey, 'circuit_breaker'));
  assert.equal(await page.title(), 'Sentinel status');
  // a breaker may have gone half-open by the time the browser asked: both are "not closed"
  assert.match(await page.textContent(cell(flakyKey, 'circuit_breaker')) ?? '', /^(open|half-open)$/);
  assert.equal(await page.textContent(cell(flakyKey, 'status')), 'unhealthy');
  assert.equal(await page.getAttribute(cell(flakyKey, 'status'), 'class'), 'bad');
  assert.notEqual(await page.textContent(cell(flakyKey, 'last_error')), '');
  assert.equal(await page.textContent(cell(goodKey, 'circuit_breaker')), 'closed');
  assert.equal(await page.textContent(cell(goodKey, 'status')), 'healthy');
  assert.match(await page.textContent(cell(goodKey, 'p50')) ?? '', /^\d+(\.\d+)? ms$/);
  assert.equal(await page.textContent(cell('guard', 'state')), 'connected');
  assert.equal(await page.textContent(cell('gone', 'state')), 'disconnected');
  assert.match(await page.textContent(cell('guard', 'ewma')) ?? '', /^\d+(\.\d+)? ms$/);
  const tight = report.rate_limits.find((l) => l.filter === 'tight')!;
  assert.ok((tight.exceeded as number) > 0);
  assert.equal(Number(await page.textContent(cell('tight', 'exceeded'))) >= (tight.exceeded as number), true);
  assert.ok(Number(await page.textContent(cell('cache', 'hits'))) >= 2);
  assert.equal(await page.textContent(cell('1', 'result')), 'success');
  assert.equal(await page.textContent(cell('http', 'address')), new URL(w.url).host);
  assert.match(await page.textContent('[data-summary="breakers_open"]') ?? '', /^[1-9]\d* breakers not closed$/);
  // the hostile route id is text in a cell, not an element
  assert.equal(await page.textContent(cell(XSS_ROUTE, 'id')), XSS_ROUTE);
  assert.equal(await page.$('#xss'), null);
  assert.notEqual(await page.title(), '1');
  await screenshot('status-page.png');

  // Refresh without navigation: a reload (generation 2) and the upstream's return.
  await w.restartFlaky();
  await w.gw.reload(w.config('route "extra" { listeners "http"; matches { path "/extra" }; upstream "solo" }'));
  await page.waitForSelector('body[data-generation="2"]', { timeout: 20_000 });
  assert.equal(await page.textContent(cell('2', 'result')), 'success');
  assert.equal(await page.textContent(cell('extra', 'matches')), 'path /extra');
  await driveUntil(w, (r) => flakyTarget(w, r)?.circuit_breaker === 'closed', 'flaky breaker closed again');
  // (a polled read, not waitForFunction: a string predicate needs eval, which the page's CSP forbids)
  await untilText(cell(flakyKey, 'circuit_breaker'), 'closed');
  assert.equal(await page.getAttribute(cell(flakyKey, 'circuit_breaker'), 'class'), 'ok');
  assert.match(await page.textContent('#live') ?? '', /^live, refreshed every 1 s/);
  await screenshot('status-page-recovered.png');

  // The gateway going away shows on the page instead of silently freezing it.
  await w.gw.close();
  await page.waitForSelector('#live.down', { timeout: 20_000 });
  assert.match(await page.textContent('#live') ?? '', /cannot reach the gateway/);

  assert.deepEqual(cspViolations, [], 'the CSP allows the page its own style and script');
  assert.deepEqual(pageErrors, []);
});
