// SPDX-License-Identifier: MIT
// The console's SLA notifications in headless Chromium (docs/sla.md, "Notifications"): an
// SLA breach injected into the events stream (as the functions publish it) shows on the
// bell's unread count and in its list; opening the list marks it read; an item opens the
// conversation; with the tab hidden and permission granted (the browser context's
// permission grant), a browser notification is shown. Permission is asked on the bell's
// click, never on load. Headless Chromium shows no notification anyone can observe, so a
// page-level spy wraps the real window.Notification constructor (it still constructs the
// real one) and records calls; and it never hides a tab, so the page's visibility is
// overridden to hidden (document.hidden, visibilityState, a visibilitychange event).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { launchChromium } from './browser.mjs';
import { Daemon, api } from './lib.mjs';
import { injectStep, until } from './sla_notify_lib.mjs';

let d, browser, carla, admin, bo;

// The daemon's embedded Redis, through its socket.
const redis = { cmd: (...args) => execFileSync('redis-cli', ['-s', `${d.dir}/var/redis.sock`, ...args], { encoding: 'utf8' }).trim() };

before(async () => {
  d = await Daemon.start();
  carla = d.sbctl('staff', 'add', '--name', 'Carla', '--email', 'carla@example.com', '--role', 'agent');
  bo = d.sbctl('staff', 'add', '--name', 'Bo', '--email', 'bo@example.com', '--role', 'agent', '--channels', 'email');
  admin = d.token('admin', 'Ada Admin');
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (d) await d.stop();
});

const sb = (s) => `[data-sb="${s}"]`;

async function conversation(text) {
  const r = await api(d, 'POST', '/v1/inbound', {
    token: admin, body: { contact: { email: `c${Date.now()}@example.com`, name: 'Dora Customer' }, text },
  });
  assert.equal(r.status, 201, r.text);
  return (await api(d, 'GET', `/v1/conversations/${r.json.conv}`, { token: admin })).json;
}

function spy() {
  const Real = window.Notification;
  window.__notes = [];
  window.__asked = 0;
  class Spy extends Real {
    constructor(title, opts) {
      super(title, opts);
      window.__notes.push({ title, body: opts && opts.body, tag: opts && opts.tag });
    }
  }
  Object.defineProperty(Spy, 'permission', { get: () => Real.permission });
  Spy.requestPermission = (...a) => { window.__asked++; return Real.requestPermission(...a); };
  window.Notification = Spy;
}

async function consolePage(context, token) {
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  await page.addInitScript(spy);
  await page.goto(`${d.url}/console/`);
  await page.fill(sb('token-input'), token);
  await page.click(sb('signin'));
  await page.locator(`${sb('live')}[data-state="live"]`).waitFor();
  return page;
}

test('the bell counts an SLA breach, lists it, marks it read and opens the conversation', async () => {
  const context = await browser.newContext();
  const page = await consolePage(context, carla);
  const conv = await conversation('Where is my parcel?');
  assert.equal(await page.locator(sb('notif-count')).isHidden(), true);
  const m = injectStep(redis, conv, { targets: ['everyone'] });
  await page.locator(`${sb('notif-count')}:not([hidden])`).waitFor();
  assert.equal(await page.textContent(sb('notif-count')), '1');
  assert.equal(await page.evaluate(() => window.__asked), 0, 'no permission asked on load');
  assert.equal(await page.evaluate(() => window.__notes.length), 0, 'the tab is visible: no pop-up');

  await page.click(sb('notif-bell'));
  const item = page.locator(`${sb('notif-item')}[data-id="${m.id}"]`);
  await item.waitFor();
  assert.equal(await item.getAttribute('data-conv'), conv.id);
  assert.match(await item.textContent(), /SLA breach.*first response overdue/);
  assert.equal(await page.locator(sb('notif-item')).count(), 1);
  await page.locator(`${sb('notif-count')}[hidden]`).waitFor({ state: 'attached' }); // read on open
  assert.equal((await api(d, 'GET', '/v1/notifications', { token: carla })).json.unread, 0);
  assert.equal(await page.evaluate(() => window.__asked), 1, 'asked on the bell click');

  await item.locator('a').click();
  await page.waitForFunction((id) => location.hash === `#/c/${id}`, conv.id);
  assert.equal(await page.locator(sb('notif-panel')).isHidden(), true);
  assert.equal((await api(d, 'GET', '/v1/notifications', { token: bo })).json.items.length, 0,
    'Bo (email only) is not "everyone" of an api conversation');
  assert.deepEqual(page.problems, []);
  await context.close();
});

test('a hidden tab with permission shows a browser notification', async () => {
  const context = await browser.newContext();
  await context.grantPermissions(['notifications'], { origin: d.url });
  const page = await consolePage(context, carla);
  assert.equal(await page.evaluate(() => Notification.permission), 'granted');
  const before = (await api(d, 'GET', '/v1/notifications', { token: carla })).json.items.length;
  // Headless Chromium keeps every tab visible (bringing another tab to the front does not
  // hide this one): the page is told it is hidden as a browser does when the tab goes
  // to the background.
  await page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  const conv = await conversation('My invoice is wrong');
  const m = injectStep(redis, conv, { type: 'sla_warning', percent: 50, targets: ['everyone'],
    due: Date.now() + 125000 }); // ("due in 2m …" even a few seconds later)
  await until(async () => (await api(d, 'GET', '/v1/notifications', { token: carla })).json.items.length > before,
    () => 'the notification stored');
  await page.waitForFunction(() => window.__notes.length > 0);
  const notes = await page.evaluate(() => window.__notes);
  assert.equal(notes.length, 1);
  assert.equal(notes[0].tag, m.id);
  assert.equal(notes[0].title, `SLA warning: ${conv.contact.name}`, 'names the customer');
  assert.match(notes[0].body, /^first response due in 2m/);
  assert.equal(await page.textContent(sb('notif-count')), '1');
  await context.close();
});
