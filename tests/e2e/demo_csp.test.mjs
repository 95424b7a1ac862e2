// SPDX-License-Identifier: MIT
// The demo page's Content-Security-Policy in headless Chromium against the real daemon:
// the policy is strict for scripts, and the page and its widget still work under it
// (chat, an acknowledged message, a staff reply arriving over the WebSocket) without a
// single CSP violation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from './browser.mjs';
import { Daemon, api } from './lib.mjs';

let d;
let browser;

before(async () => {
  d = await Daemon.start();
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (d) await d.stop();
});

const sb = (sel) => `[data-sb="${sel}"]`;

test('the demo page has a strict CSP', async () => {
  const r = await fetch(`${d.url}/`);
  assert.equal(r.status, 200);
  const csp = r.headers.get('content-security-policy');
  assert.ok(csp, 'no Content-Security-Policy on /');
  const dirs = Object.fromEntries(csp.split(';').map((s) => s.trim().split(/\s+/))
    .map(([k, ...v]) => [k, v]));
  assert.deepEqual(dirs['default-src'], ["'none'"]);
  assert.deepEqual(dirs['script-src'], ["'self'"]);
  assert.deepEqual(dirs['connect-src'], ["'self'"]);
  assert.deepEqual(dirs['frame-ancestors'], ["'none'"]);
  assert.deepEqual(dirs['base-uri'], ["'none'"]);
});

test('the demo page and its widget work under the CSP, with no violation', async () => {
  const admin = d.token('admin', 'staff');
  const context = await browser.newContext({ viewport: { width: 390, height: 780 } });
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  const consoleCsp = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) consoleCsp.push(m.text());
  });
  await page.goto(`${d.url}/`);
  await page.click(sb('launcher'));
  await page.fill(sb('input'), 'Hello under a CSP');
  await page.click(sb('send'));
  await page.waitForFunction(() => {
    const s = window.Switchboard && window.Switchboard._state;
    return s && s.conv && s.pending.length === 0;
  });
  const conv = await page.evaluate(() => window.Switchboard._state.conv);
  const reply = await api(d, 'POST', `/v1/conversations/${conv}/messages`,
    { token: admin, body: { text: 'Answered' } });
  assert.equal(reply.status, 201);
  await page.locator(`${sb('message')}[data-dir="out"]`).first().waitFor();
  // The widget's shadow-root styles applied: its launcher is laid out, not unstyled.
  const box = await page.locator(sb('launcher')).boundingBox();
  assert.ok(box && box.width > 0 && box.height > 0);
  assert.deepEqual(await page.evaluate(() => window.__csp), []);
  assert.deepEqual(consoleCsp, []);
  await context.close();
});
