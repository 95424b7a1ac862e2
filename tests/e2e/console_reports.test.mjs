// SPDX-License-Identifier: MIT
// The console's Reports view (gateway/assets/console/reports.js) in headless Chromium
// against the real daemon: the nav entry, first-response and resolution tables by channel
// and policy with durations a person reads, breaches, who answered, who waits now (a link
// into the conversation), the channel filter and the from/to range; no script errors or
// CSP violations. Facts go into the daemon's embedded Redis in the docs/sla.md shape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { launchChromium } from './browser.mjs';
import { Daemon, api } from './lib.mjs';

let d;
let browser;
const tok = {};
let carla;
let t0;

const sb = (sel) => `[data-sb="${sel}"]`;
const fact = (shard, at, fields) => {
  const r = execFileSync('redis-cli', ['-s', `${d.dir}/var/redis.sock`, 'XADD',
    `sb:{${shard}}:facts`, `${at}-0`, ...fields.split(' ')], { encoding: 'utf8' }).trim();
  assert.match(r, /^\d+-0$/, r);
};

before(async () => {
  d = await Daemon.start();
  tok.carla = d.sbctl('staff', 'add', '--name', 'Carla Console', '--email', 'carla@example.com',
    '--role', 'agent');
  tok.bot = d.token('bot', 'FAQ bot');
  carla = (await api(d, 'GET', '/v1/me', { token: tok.carla })).json.id;
  t0 = Date.now() - 2 * 3600_000;
  fact(0, t0, `t first ms 252000 channel webchat policy quick staff ${carla} conv c_1`);
  fact(0, t0 + 1, `t answer ms 252000 channel webchat policy quick staff ${carla} conv c_1`);
  fact(1, t0 + 2, `t first ms 3900000 channel email policy slow staff ${carla} conv c_2`);
  fact(1, t0 + 3, `t answer ms 3900000 channel email policy slow staff ${carla} conv c_2`);
  fact(1, t0 + 4, `t resolved ms 183600000 channel email policy slow staff ${carla} conv c_2`);
  fact(2, t0 + 5, 't breach clock first_response channel email policy slow conv c_2');
  const w = await api(d, 'POST', '/v1/inbound', { token: tok.bot,
    body: { contact: { external_id: 'walt', name: 'Walt Waiting' }, text: 'hello?' } });
  assert.equal(w.status, 201, w.text);
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

test('the Reports view shows response times, breaches, people and who waits', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  await page.goto(`${d.url}/console/`);
  await page.fill(sb('token-input'), tok.carla);
  await page.click(sb('signin'));
  await page.locator(`${sb('live')}[data-state="live"]`).waitFor();

  await page.click(sb('nav-reports'));
  await page.locator(`${sb('reports')}[data-state="ready"]`).waitFor();
  assert.equal(await page.locator(sb('queue')).isVisible(), false, 'the queue makes room');
  assert.doesNotMatch(await page.locator(sb('report-body')).textContent(), /null|undefined|NaN/);
  const frt = (key) => page.locator(`${sb('report-frt')}[data-key="${key}"]`);
  assert.equal(await frt('webchat').locator(sb('p50')).textContent(), '4m 12s');
  assert.equal(await frt('email').locator(sb('p90')).textContent(), '1h 5m');
  assert.equal(await page.locator(`${sb('report-frt-pol')}[data-key="slow"] ${sb('n')}`).textContent(), '1');
  assert.equal(await page.locator(`${sb('report-res')}[data-key="email"] ${sb('p50')}`).textContent(), '2d 3h');
  const breach = page.locator(`${sb('report-breach')}[data-policy="slow"][data-clock="first_response"]`);
  assert.equal(await breach.locator(sb('n')).textContent(), '1');
  const person = page.locator(`${sb('report-person')}[data-id="${carla}"]`);
  assert.match(await person.textContent(), /Carla Console/);
  assert.equal(await person.locator(sb('answered')).textContent(), '2');
  assert.equal(await person.locator(sb('first')).textContent(), '2');
  assert.equal(await person.locator(sb('resolved')).textContent(), '1');
  const waiting = page.locator(sb('report-waiting'));
  assert.equal(await waiting.count(), 1);
  assert.match(await waiting.textContent(), /Walt Waiting/);
  assert.match(await waiting.locator(sb('waited')).textContent(), /^\d+s$|^\d+m \d+s$|^\d+m$/);

  // One channel: only its rows.
  await page.selectOption(sb('report-channel'), 'email');
  await page.click(sb('report-load'));
  await frt('webchat').waitFor({ state: 'detached' });
  assert.equal(await frt('email').count(), 1);
  // A range before the facts: empty tables say so.
  const old = new Date(t0 - 3 * 86400_000);
  const local = (dt) => new Date(dt - dt.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await page.fill(sb('report-from'), local(new Date(old - 86400_000)));
  await page.fill(sb('report-to'), local(old));
  await page.click(sb('report-load'));
  await page.locator(sb('report-frt-channel-empty')).waitFor();
  assert.equal(await page.locator(sb('report-person')).count(), 0);

  // The waiting customer's link opens the conversation; the nav goes back to the queue.
  await page.selectOption(sb('report-channel'), '');
  await page.fill(sb('report-to'), local(new Date()));
  await page.click(sb('report-load'));
  await page.locator(`${sb('report-waiting')} a`).click();
  await page.locator(sb('conv-view')).filter({ hasText: 'Walt Waiting' }).waitFor();
  assert.equal(await page.locator(sb('reports')).isVisible(), false);
  await page.click(sb('nav-queue'));
  await page.locator(sb('queue')).waitFor();
  assert.deepEqual(problems, [], 'no script errors or CSP violations');
  await context.close();
});
