// SPDX-License-Identifier: MIT
// Canned replies in the staff console (headless Chromium, real daemon; docs/canned.md):
// typing `/` in the reply box lists the matching replies, Escape closes the list, arrow
// keys and Enter insert one with the customer's and the agent's names filled in, and the
// reply sent carries them; the "Canned replies" view adds, edits and deletes replies
// (delete offered only for one's own), checked through the API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from './browser.mjs';
import { Daemon, api } from './lib.mjs';

let d;
let browser;
const tok = {};

before(async () => {
  d = await Daemon.start();
  tok.carla = d.sbctl('staff', 'add', '--name', 'Carla Console', '--email', 'carla@example.com',
    '--role', 'agent');
  tok.admin = d.token('admin', 'Ada Admin');
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
  await page.fill(sb('token-input'), tok.carla);
  await page.click(sb('signin'));
  await page.locator(`${sb('live')}[data-state="live"]`).waitFor();
  return page;
}

async function putCanned(shortcut, title, text, token = tok.admin) {
  const r = await api(d, 'PUT', `/v1/canned/${shortcut}`, { token, body: { title, text } });
  assert.equal(r.status, 201, r.text);
}

const listCanned = async () => (await api(d, 'GET', '/v1/canned', { token: tok.admin })).json.items;

test('typing /thanks inserts the reply with the names filled in, and it is sent', async () => {
  await putCanned('thanks', 'Thank you', 'Thanks, {{contact.name}}! Best, {{agent.name}} <{{contact.email}}> {{contact.phone}}');
  await putCanned('thanks-bye', 'Thanks and goodbye', 'Bye {{contact.name}}');
  await putCanned('hours', 'Opening hours', 'Mon–Fri 9–5');
  const r = await api(d, 'POST', '/v1/inbound', {
    token: tok.admin,
    body: { contact: { email: 'dana@example.com', name: 'Dana Díaz' }, text: 'Got it, works now' },
  });
  assert.equal(r.status, 201, r.text);
  const conv = r.json.conv;

  const page = await consolePage();
  await page.goto(`${d.url}/console/#/c/${conv}`);
  await page.locator(`${sb('conv-message')}[data-dir="in"]`, { hasText: 'works now' }).waitFor();
  await page.getByText('dana@example.com', { exact: true }).waitFor(); // the contact card
  const input = page.locator(sb('reply-input'));
  await input.click();

  // `/` lists the replies; Escape closes the list and keeps the text.
  await input.pressSequentially('/th');
  await page.locator(sb('canned-pick')).waitFor();
  assert.deepEqual(await page.locator(sb('canned-option')).evaluateAll((els) => els.map((e) => e.dataset.shortcut)),
    ['thanks', 'thanks-bye']);
  await page.keyboard.press('Escape');
  await page.locator(sb('canned-pick')).waitFor({ state: 'hidden' });
  assert.equal(await input.inputValue(), '/th');
  assert.ok(await input.evaluate((e) => e === document.activeElement), 'Escape closed the list only');

  // No list in the middle of a word; arrow keys move, Enter inserts.
  await input.fill('');
  await input.pressSequentially('and/th');
  assert.equal(await page.locator(sb('canned-pick')).isHidden(), true);
  await input.fill('');
  await input.pressSequentially('Hello! /thanks');
  await page.locator(`${sb('canned-option')}[aria-selected="true"]`, { hasText: '/thanks' }).waitFor();
  await page.keyboard.press('ArrowDown');
  await page.locator(`${sb('canned-option')}[aria-selected="true"][data-shortcut="thanks-bye"]`).waitFor();
  await page.keyboard.press('ArrowUp');
  await page.locator(`${sb('canned-option')}[aria-selected="true"][data-shortcut="thanks"]`).waitFor();
  await page.keyboard.press('Enter');
  await page.locator(sb('canned-pick')).waitFor({ state: 'hidden' });
  const expected = 'Hello! Thanks, Dana Díaz! Best, Carla Console <dana@example.com> {{contact.phone}}';
  assert.equal(await input.inputValue(), expected);

  // The agent edits the final text, then sends it.
  await input.pressSequentially(' :)');
  await page.keyboard.press('Control+Enter');
  await page.locator(`${sb('conv-message')}[data-dir="out"]`, { hasText: 'Dana Díaz' }).waitFor();
  const t = await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: tok.admin });
  assert.deepEqual(t.json.items.filter((m) => m.dir === 'out').map((m) => m.text), [`${expected} :)`]);

  // A click picks too; a reply without a customer name leaves no braces.
  await input.pressSequentially('/hou');
  await page.locator(`${sb('canned-option')}[data-shortcut="hours"]`).click();
  assert.equal(await input.inputValue(), 'Mon–Fri 9–5');
  assert.deepEqual(page.problems, [], 'no script errors or CSP violations');
  await page.context().close();
});

test('the Canned replies view adds, edits and deletes', async () => {
  await putCanned('admins-own', 'By the admin', 'Only an admin or its author deletes this');
  const page = await consolePage();
  page.on('dialog', (dlg) => dlg.accept());
  await page.click(sb('nav-canned'));
  await page.locator(`${sb('canned-item')}[data-shortcut="admins-own"]`).waitFor();
  // Another author's reply: editable, not deletable by an agent.
  assert.equal(await page.locator(`${sb('canned-item')}[data-shortcut="admins-own"] ${sb('canned-delete')}`).count(), 0);

  // A bad shortcut is refused with a message, nothing is sent.
  await page.fill(sb('canned-shortcut'), 'Bad Shortcut');
  await page.fill(sb('canned-text'), 'x');
  await page.click(sb('canned-save'));
  await page.locator(sb('canned-error'), { hasText: 'shortcut' }).waitFor();

  await page.fill(sb('canned-shortcut'), 'refund');
  await page.fill(sb('canned-title'), 'Refund policy');
  await page.fill(sb('canned-text'), 'Refunds take 5 days, {{contact.name}}.');
  await page.click(sb('canned-save'));
  const row = page.locator(`${sb('canned-item')}[data-shortcut="refund"]`);
  await row.waitFor();
  let item = (await listCanned()).find((i) => i.shortcut === 'refund');
  assert.equal(item.title, 'Refund policy');
  assert.equal(item.text, 'Refunds take 5 days, {{contact.name}}.');

  await row.locator(sb('canned-edit')).click();
  assert.equal(await page.inputValue(sb('canned-text')), 'Refunds take 5 days, {{contact.name}}.');
  await page.fill(sb('canned-text'), 'Refunds take 3 days.');
  await page.click(sb('canned-save'));
  await row.locator('.canned-text', { hasText: 'Refunds take 3 days.' }).waitFor();
  item = (await listCanned()).find((i) => i.shortcut === 'refund');
  assert.equal(item.text, 'Refunds take 3 days.');

  await row.locator(sb('canned-delete')).click();
  await row.waitFor({ state: 'detached' });
  assert.equal((await listCanned()).some((i) => i.shortcut === 'refund'), false);
  assert.deepEqual(page.problems, [], 'no script errors or CSP violations');
  await page.context().close();
});
