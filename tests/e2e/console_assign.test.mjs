// SPDX-License-Identifier: MIT
// The console's assignee picker in headless Chromium against the real daemon: Ann opens a
// conversation, the picker lists the colleagues on duty for its channel with who is online
// first, she hands it to Bea, whose bell shows "Ann assigned you Dora" and opens it; then
// "Assign to me" and "Unassign" (checked through the API).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from './browser.mjs';
import { Daemon, api } from './lib.mjs';
import { addStaff } from './sla_notify_lib.mjs';

let d;
let browser;
const staff = {};

before(async () => {
  d = await Daemon.start();
  staff.ann = addStaff(d, 'Ann', 'agent');
  staff.bea = addStaff(d, 'Bea', 'agent', { channels: 'api' });
  staff.cid = addStaff(d, 'Cid', 'agent'); // on duty, never signed in
  staff.eli = addStaff(d, 'Eli', 'agent', { channels: 'email' }); // not on duty for api
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

const sb = (sel) => `[data-sb="${sel}"]`;

async function consolePage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) page.problems.push(m.text());
  });
  await page.goto(`${d.url}/console/`);
  return page;
}

async function signIn(page, token) {
  await page.fill(sb('token-input'), token);
  await page.click(sb('signin'));
  await page.locator(`${sb('live')}[data-state="live"]`).waitFor();
}

const assignee = async (conv) =>
  (await api(d, 'GET', `/v1/conversations/${conv}`, { token: staff.ann.token })).json.assignee;

test('Ann assigns a conversation to Bea from the picker; Bea\'s bell shows it', async () => {
  const r = await api(d, 'POST', '/v1/inbound', {
    token: staff.ann.token,
    body: { contact: { email: 'dora@example.com', name: 'Dora' }, text: 'where is INV-2291?' },
  });
  assert.equal(r.status, 201, r.text);
  const conv = r.json.conv;

  const bea = await consolePage();
  await signIn(bea, staff.bea.token);
  await bea.locator(`${sb('notif-count')}[hidden]`).waitFor({ state: 'attached' });

  const ann = await consolePage();
  await signIn(ann, staff.ann.token);
  await ann.evaluate((id) => { location.hash = `#/c/${id}`; }, conv);
  await ann.locator(sb('conv-status')).waitFor();
  await ann.click(sb('assign'));
  const options = ann.locator(sb('assign-option'));
  await options.first().waitFor();
  // on duty for api: Bea (online, first) and Cid; not Eli (email only), not Ann herself
  assert.deepEqual(await options.evaluateAll((els) => els.map((e) => [e.dataset.id, e.dataset.online])),
    [[staff.bea.id, 'true'], [staff.cid.id, 'false']]);
  await ann.click(`${sb('assign-option')}[data-id="${staff.bea.id}"]`);
  await ann.locator(`${sb('conv-status')}[data-assignee="${staff.bea.id}"]`).waitFor();
  assert.match(await ann.locator(sb('conv-status')).textContent(), /assigned to Bea/);
  await ann.locator(`${sb('conv-message')}[data-kind="event"]`, { hasText: 'You assigned it to Bea' }).waitFor();
  assert.equal(await assignee(conv), staff.bea.id);

  // Bea's bell: one unread, "Ann assigned you Dora", which opens the conversation
  await bea.locator(`${sb('notif-count')}:not([hidden])`, { hasText: '1' }).waitFor();
  await bea.click(sb('notif-bell'));
  const n = bea.locator(`${sb('notif-item')}[data-type="assigned"][data-conv="${conv}"]`);
  assert.equal((await n.locator(sb('notif-text')).textContent()).trim(), 'Ann assigned you Dora');
  await n.locator('a').click();
  await bea.locator(`${sb('conv-status')}[data-assignee="${staff.bea.id}"]`).waitFor();
  assert.match(await bea.locator(sb('conv-status')).textContent(), /assigned to you/);

  // Ann takes it herself, then lets it go
  await ann.click(sb('assign'));
  await ann.click(sb('assign-me'));
  await ann.locator(`${sb('conv-status')}[data-assignee="${staff.ann.id}"]`).waitFor();
  assert.equal(await assignee(conv), staff.ann.id);
  await ann.click(sb('assign'));
  await ann.click(sb('unassign'));
  await ann.locator(`${sb('conv-status')}[data-assignee=""]`).waitFor();
  assert.equal(await assignee(conv), null);
  await ann.locator(`${sb('conv-message')}[data-kind="event"]`, { hasText: 'You unassigned it' }).waitFor();

  for (const page of [ann, bea]) {
    assert.deepEqual(page.problems, [], 'no script errors or CSP violations');
    await page.context().close();
  }
});
