// SPDX-License-Identifier: MIT
// The console and the social channels, in headless Chromium against the real daemon: a
// connector alert (core/alert.h: an account paused because the provider refused its
// credentials) shows in an admin's bell with the channel, account and reason; a message
// from a social network links to the original post (opened apart) and says when it was a
// direct message. The test connector serves the mastodon channel (test_channel) so a
// message with a post's ext reaches the store the way the Mastodon connector stores it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { launchChromium } from './browser.mjs';
import { Daemon, api } from './lib.mjs';

let d;
let browser;
let admin;
let adminId;
const sb = (sel) => `[data-sb="${sel}"]`;

before(async () => {
  d = await Daemon.start('test_channel mastodon http://127.0.0.1:9/unused\n');
  admin = d.sbctl('staff', 'add', '--name', 'Ada Admin', '--email', 'ada@example.com', '--role', 'admin');
  adminId = (await api(d, 'GET', '/v1/me', { token: admin })).json.id;
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

test('a paused account reaches the admin bell; a post links to its original', async () => {
  // The customer's conversation on mastodon, then a mention stored with its post's ext.
  const first = await api(d, 'POST', '/v1/inbound', { token: admin,
    body: { channel: 'mastodon', contact: { external_id: '@bob@social.example', name: 'Bob' },
      text: 'first words' } });
  assert.equal(first.status, 201, first.text);
  const conv = first.json.conv;
  const contact = first.json.author.id;
  const url = 'https://social.example/@bob/109';
  const post = await api(d, 'POST', '/test/ingest', { body: { conv, contact,
    text: '@support where is my order?', ext: { url, visibility: 'direct', status_id: '109' } } });
  assert.equal(post.status, 201, post.text);

  // The alert exactly as sb_alert_admins stores it (tests/unit/test_alert.c pins the bytes).
  const ts = Date.now();
  const alert = JSON.stringify({ id: `mastodon:support:paused:${ts}`, type: 'connector',
    channel: 'mastodon', account: 'support', state: 'paused',
    reason: 'HTTP 401: The access token is invalid', ts });
  execFileSync('redis-cli', ['-s', `${d.dir}/var/redis.sock`, 'ZADD', `sb:notif:${adminId}`,
    String(ts), alert]);

  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  await page.goto(`${d.url}/console/#/c/${conv}`);
  await page.fill(sb('token-input'), admin);
  await page.click(sb('signin'));
  await page.locator(`${sb('live')}[data-state="live"]`).waitFor();

  await page.locator(`${sb('notif-count')}:not([hidden])`).waitFor();
  assert.equal(await page.locator(sb('notif-count')).textContent(), '1');
  await page.click(sb('notif-bell'));
  const item = page.locator(`${sb('notif-item')}[data-type="connector"]`);
  await item.waitFor();
  assert.match(await item.textContent(),
    /Channel account Mastodon account support paused: HTTP 401: The access token is invalid/);
  assert.doesNotMatch(await item.textContent(), /undefined|null/);
  await page.click(sb('notif-bell'));

  const msg = page.locator(`${sb('conv-message')}[data-dir="in"]`, { hasText: 'where is my order' });
  await msg.waitFor();
  const link = msg.locator(sb('post-link'));
  assert.equal(await link.getAttribute('href'), url);
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(await link.textContent(), 'on Mastodon');
  assert.equal(await msg.locator(sb('direct')).count(), 1);
  // The first message had no post: no link, no badge.
  const plain = page.locator(`${sb('conv-message')}[data-dir="in"]`, { hasText: 'first words' });
  assert.equal(await plain.locator(sb('post-link')).count(), 0);
  assert.equal(await plain.locator(sb('direct')).count(), 0);
  assert.deepEqual(problems, [], 'no script errors or CSP violations');
  await context.close();
});
