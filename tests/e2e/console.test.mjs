// SPDX-License-Identifier: MIT
// The staff web console (/console/) in headless Chromium against the real daemon: signing
// in with a token from sbctl (and refusing bad, revoked and bot tokens), a visitor's new
// widget conversation appearing live in the queue, replying to the visitor, notes, claim
// and resolve (checked through the API), a colleague's "replying…", the 409 collision
// UI, keyboard shortcuts, live SLA countdowns, presence, the phone layout, and how the
// files are served (CSP, content types, 404 for anything else).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { launchChromium, visitorSays } from './browser.mjs';
import { Daemon, api } from './lib.mjs';

let d;
let browser;
const tok = {};
const ids = {};

before(async () => {
  d = await Daemon.start();
  tok.carla = d.sbctl('staff', 'add', '--name', 'Carla Console', '--email', 'carla@example.com',
    '--role', 'agent');
  tok.alice = d.sbctl('staff', 'add', '--name', 'Alice Agent', '--email', 'alice@example.com',
    '--role', 'agent');
  tok.admin = d.token('admin', 'Ada Admin');
  tok.bot = d.token('bot', 'FAQ bot');
  tok.revoked = d.token('agent', 'Gone Agent');
  d.sbctl('token', 'revoke', tok.revoked);
  ids.carla = (await api(d, 'GET', '/v1/me', { token: tok.carla })).json.id;
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
const item = (conv) => `${sb('queue-item')}[data-conv="${conv}"]`;
const msg = (kind, dir) => `${sb('conv-message')}[data-kind="${kind}"]${dir ? `[data-dir="${dir}"]` : ''}`;

let customers = 0;
async function inbound(text, extra = {}) {
  const r = await api(d, 'POST', '/v1/inbound', {
    token: tok.admin,
    body: { contact: { email: `cust${++customers}@example.com`, name: `Customer ${customers}` }, text, ...extra },
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const getConv = async (conv) => (await api(d, 'GET', `/v1/conversations/${conv}`, { token: tok.admin })).json;

// A console page; collects script errors and CSP violations, which must never happen.
async function consolePage({ viewport = { width: 1280, height: 860 } } = {}) {
  const context = await browser.newContext({ viewport });
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

async function done(page) {
  assert.deepEqual(page.problems, [], 'no script errors or CSP violations');
  await page.context().close();
}

test('the console is served with a CSP; anything else under /console/ is a 404', async () => {
  for (const p of ['/console/', '/console']) {
    const r = await fetch(`${d.url}${p}`);
    assert.equal(r.status, 200, p);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    const csp = r.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /connect-src 'self'/);
    assert.match(csp, /default-src 'none'/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(r.headers.get('cache-control'));
    assert.match(await r.text(), /<script type="module" src="\/console\/app.js">/);
  }
  for (const [p, type] of [['app.js', /^text\/javascript/], ['api.js', /^text\/javascript/],
    ['queue.js', /^text\/javascript/], ['conv.js', /^text\/javascript/],
    ['util.js', /^text\/javascript/], ['console.css', /^text\/css/]]) {
    const r = await fetch(`${d.url}/console/${p}`);
    assert.equal(r.status, 200, p);
    assert.match(r.headers.get('content-type'), type, p);
    const etag = r.headers.get('etag');
    const again = await fetch(`${d.url}/console/${p}`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304, p);
  }
  const missing = await api(d, 'GET', '/console/x.js');
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, 'not_found');
  // Raw requests, so that nothing normalises the path first.
  for (const p of ['/console/../../../etc/passwd', '/console/%2e%2e/%2e%2e/etc/passwd',
    '/console/..%2f..%2fetc%2fpasswd', '/console/app.js/', '/console/sub/app.js',
    '/console/%2e%2e/api.js']) {
    const status = await rawGet(p);
    assert.ok(status === 404 || status === 400, `${p}: ${status}`);
  }
});

function rawGet(path) {
  return new Promise((resolve, reject) => {
    const s = net.connect(d.port, '127.0.0.1', () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    });
    let buf = '';
    s.on('data', (b) => { buf += b; });
    s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(buf)?.[1])));
    s.on('error', reject);
  });
}

test('sign in: bad, revoked and bot tokens are refused clearly; sign out', async () => {
  const page = await consolePage();
  for (const [token, re] of [['sbt_not-a-real-token', /unknown or has been revoked/],
    [tok.revoked, /unknown or has been revoked/], [tok.bot, /bot token/]]) {
    await page.fill(sb('token-input'), token);
    await page.click(sb('signin'));
    await page.locator(sb('signin-error'), { hasText: re }).waitFor();
    assert.equal(await page.locator('#app').isVisible(), false);
  }
  // A token revoked while signed in: the console notices (the live feed ends) and says so.
  const doomed = d.token('agent', 'Doomed Agent');
  await signIn(page, doomed);
  d.sbctl('token', 'revoke', doomed);
  await page.locator(sb('signin-error'), { hasText: /revoked/ }).waitFor({ timeout: 8000 });
  assert.equal(await page.evaluate(() => localStorage.length), 0);

  await signIn(page, tok.carla);
  assert.match(await page.locator(sb('me')).textContent(), /Carla Console \(agent\)/);
  // GET /v1/presence: Carla's own feed makes her online.
  await page.locator(sb('presence-item'), { hasText: 'Carla Console (you)' }).waitFor();
  // The token is remembered across reloads.
  await page.reload();
  await page.locator(`${sb('live')}[data-state="live"]`).waitFor();
  await page.click(sb('signout'));
  await page.locator(sb('token-input')).waitFor();
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  await page.reload();
  await page.locator(sb('token-input')).waitFor();
  assert.equal(await page.locator('#app').isVisible(), false);
  await done(page);
});

test('a widget conversation appears live; reply, note, claim and resolve from the console', async () => {
  const page = await consolePage();
  await signIn(page, tok.carla);

  // A visitor writes on the demo page.
  const { context: visitorCtx, page: visitor, conv } = await visitorSays(browser, d.url,
    'My teapot leaks');

  // It shows up in the console's queue without a reload; open it.
  await page.locator(item(conv)).waitFor({ timeout: 10000 });
  await page.click(item(conv));
  await page.locator(`${sb('conv-view')} ${msg('message', 'in')}`, { hasText: 'My teapot leaks' }).waitFor();
  assert.equal(await page.evaluate(() => location.hash), `#/c/${conv}`);

  // Typing in the reply box tells others (throttled POST /typing), then the reply goes out.
  const typing = page.waitForRequest((r) => r.url().endsWith(`/v1/conversations/${conv}/typing`) &&
    r.method() === 'POST' && r.postDataJSON().on === true);
  await page.locator(sb('reply-input')).pressSequentially('Sorry to hear');
  await typing;
  await page.fill(sb('reply-input'), 'Sorry to hear that! Which model is it?');
  await page.click(sb('reply-send'));
  await page.locator(msg('message', 'out'), { hasText: 'Which model' }).waitFor();
  await visitor.locator(`${sb('message')}[data-dir="out"]`, { hasText: 'Which model is it?' }).waitFor();
  assert.equal(await page.inputValue(sb('reply-input')), '');

  // The visitor answers: it appears live in the open conversation.
  await visitor.fill(sb('input'), 'The Earl Grey 3000');
  await visitor.press(sb('input'), 'Enter');
  await page.locator(msg('message', 'in'), { hasText: 'Earl Grey 3000' }).waitFor();

  // An internal note: marked as such, never shown to the visitor.
  await page.click(sb('mode-note'));
  await page.fill(sb('reply-input'), 'Known issue with batch 7');
  await page.keyboard.press('Control+Enter');
  const note = page.locator(msg('note', 'internal'), { hasText: 'batch 7' });
  await note.waitFor();
  assert.match(await note.textContent(), /Internal note/i);

  // Claim and resolve, checked through the API.
  await page.click(sb('claim'));
  await page.locator(`${sb('conv-status')}[data-assignee="${ids.carla}"]`).waitFor();
  assert.equal((await getConv(conv)).assignee, ids.carla);
  assert.equal(await page.locator(sb('claim')).textContent(), 'Release');
  await page.click(sb('resolve'));
  await page.locator(`${sb('conv-status')}[data-status="resolved"]`).waitFor();
  assert.equal((await getConv(conv)).status, 'resolved');
  assert.equal(await page.locator(sb('resolve')).textContent(), 'Reopen');
  await page.locator(msg('event'), { hasText: 'You resolved it' }).waitFor();

  const t = await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: tok.admin });
  assert.deepEqual(t.json.items.filter((m) => m.kind === 'note').map((m) => m.text), ['Known issue with batch 7']);
  assert.deepEqual(t.json.items.filter((m) => m.dir === 'out').map((m) => m.text), ['Sorry to hear that! Which model is it?']);
  const seen = await visitor.locator(sb('message')).allTextContents();
  assert.ok(!seen.some((s) => /batch 7/.test(s)), 'the visitor never sees notes');
  await visitorCtx.close();
  await done(page);
});

test("the customer's conversations on every channel are one click away", async () => {
  const contact = { email: 'multi@example.com', name: 'Mia Multi' };
  const chat = await api(d, 'POST', '/v1/inbound', { token: tok.admin,
    body: { channel: 'api', contact, text: 'first, through the API' } });
  const mail = await api(d, 'POST', '/v1/inbound', { token: tok.admin,
    body: { channel: 'email', contact, text: 'second, by email', subject: 'Broken lid' } });
  assert.equal(mail.status, 201, mail.text);
  const page = await consolePage();
  await signIn(page, tok.carla);
  await page.goto(`${d.url}/console/#/c/${chat.json.conv}`);
  await page.locator(msg('message', 'in'), { hasText: 'first, through the API' }).waitFor();
  const other = page.locator(`${sb('contact-conv')}[data-conv="${mail.json.conv}"]`);
  await other.waitFor();
  assert.equal(await page.locator(sb('contact-conv')).count(), 2);
  assert.match(await other.textContent(), /Email.*Broken lid/);
  await other.click();
  await page.locator(msg('message', 'in'), { hasText: 'second, by email' }).waitFor();
  assert.equal(await page.evaluate(() => location.hash), `#/c/${mail.json.conv}`);
  assert.equal(await page.locator(msg('message', 'in'), { hasText: 'first, through' }).count(), 0);
  await done(page);
});

test('a colleague typing shows "is replying…" in the conversation and the queue', async () => {
  const page = await consolePage();
  await signIn(page, tok.carla);
  const { conv } = await inbound('Where is my order?');
  await page.locator(item(conv)).waitFor();
  await page.click(item(conv));
  await page.locator(msg('message', 'in'), { hasText: 'Where is my order?' }).waitFor();

  const r = await api(d, 'POST', `/v1/conversations/${conv}/typing`, { token: tok.alice, body: { on: true } });
  assert.equal(r.status, 202, r.text);
  await page.locator(`.conv-head ${sb('replying')}`, { hasText: 'Alice Agent is replying…' }).waitFor();
  await page.locator(`${item(conv)} ${sb('replying')}`, { hasText: 'Alice Agent is replying' }).waitFor();
  await api(d, 'POST', `/v1/conversations/${conv}/typing`, { token: tok.alice, body: { on: false } });
  await page.locator(`.conv-head ${sb('replying')}`).waitFor({ state: 'hidden' });
  await page.locator(`${item(conv)} ${sb('replying')}`).waitFor({ state: 'hidden' });
  await done(page);
});

test('a reply that collides with a newer message shows it and offers "Send anyway"', async () => {
  const page = await consolePage();
  await signIn(page, tok.carla);
  const { conv, author } = await inbound('Can I return it?');
  await page.goto(`${d.url}/console/#/c/${conv}`);
  await page.locator(msg('message', 'in'), { hasText: 'Can I return it?' }).waitFor();

  // The customer writes again while the reply is on its way (before the server sees it).
  let raced = false;
  await page.route((url) => url.pathname === `/v1/conversations/${conv}/messages`, async (route) => {
    if (route.request().method() === 'POST' && !raced) {
      raced = true;
      await inbound('Actually, I want a refund', { conv, contact: { id: author.id } }); // the same customer
    }
    await route.continue();
  });
  await page.fill(sb('reply-input'), 'Yes, within 30 days.');
  await page.click(sb('reply-send'));
  const conflict = page.locator(sb('conflict'));
  await conflict.waitFor();
  assert.match(await conflict.textContent(), /Actually, I want a refund/);
  await page.locator(msg('message', 'in'), { hasText: 'I want a refund' }).waitFor();
  assert.equal(await page.inputValue(sb('reply-input')), 'Yes, within 30 days.', 'the draft is kept');
  const t1 = await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: tok.admin });
  assert.equal(t1.json.items.filter((m) => m.dir === 'out').length, 0, 'nothing sent yet');

  await page.click(sb('send-anyway'));
  await page.locator(msg('message', 'out'), { hasText: 'within 30 days' }).waitFor();
  await conflict.waitFor({ state: 'hidden' });
  const t2 = await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: tok.admin });
  assert.deepEqual(t2.json.items.filter((m) => m.dir === 'out').map((m) => m.text), ['Yes, within 30 days.']);
  await done(page);
});

test('keyboard: j/k and Enter open, r replies, c claims, ? helps; not while typing', async () => {
  const page = await consolePage();
  await signIn(page, tok.carla);
  await inbound('keyboard one');
  await page.locator(sb('queue-item')).first().waitFor();
  const first = await page.locator(sb('queue-item')).first().getAttribute('data-conv');
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press('j');
  await page.locator(`${item(first)}[data-selected="true"]`).waitFor();
  await page.keyboard.press('Enter');
  await page.waitForFunction((c) => location.hash === `#/c/${c}`, first);
  await page.locator(`${sb('conv-status')}`).waitFor();

  await page.keyboard.press('r');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.sb), 'reply-input');
  await page.keyboard.type('jkce?');
  assert.equal(await page.inputValue(sb('reply-input')), 'jkce?', 'no shortcut fired while typing');
  assert.equal(await page.locator(sb('help')).isVisible(), false);
  await page.keyboard.press('Escape');
  assert.notEqual(await page.evaluate(() => document.activeElement.dataset.sb), 'reply-input');

  await page.keyboard.press('c');
  await page.locator(`${sb('conv-status')}[data-assignee="${ids.carla}"]`).waitFor();
  assert.equal((await getConv(first)).assignee, ids.carla);

  await page.keyboard.press('n');
  assert.equal(await page.locator(sb('composer')).getAttribute('data-mode'), 'note');
  await page.keyboard.press('Escape');
  await page.keyboard.press('s');
  await page.locator(sb('snooze-menu')).waitFor();
  await page.keyboard.press('Escape');
  await page.locator(sb('snooze-menu')).waitFor({ state: 'hidden' });

  await page.keyboard.press('?');
  await page.locator(sb('help')).waitFor();
  await page.keyboard.press('Escape');
  await page.locator(sb('help')).waitFor({ state: 'hidden' });
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.sb), 'filter-text');
  await done(page);
});

test('SLA countdowns tick every second and overdue ones are red', async () => {
  const soon = (await inbound('sla soon')).conv;
  const late = (await inbound('sla late')).conv;
  const page = await consolePage();
  // No SLA policy is configured, so give two conversations due times on the way in.
  const t0 = Date.now();
  await page.route((url) => url.pathname === '/v1/conversations', async (route) => {
    const r = await route.fetch();
    const body = await r.json();
    for (const c of body.items) {
      if (c.id === soon) c.sla.first_response_due = t0 + 125000;
      if (c.id === late) c.sla.first_response_due = t0 - 65000;
    }
    await route.fulfill({ response: r, json: body });
  });
  await signIn(page, tok.carla);
  const soonSla = page.locator(`${item(soon)} ${sb('sla')}`);
  const lateSla = page.locator(`${item(late)} ${sb('sla')}`);
  await soonSla.filter({ hasText: /^due in 2m \d+s$/ }).waitFor();
  const before = await soonSla.textContent();
  await page.waitForFunction(([sel, text]) => document.querySelector(sel).textContent !== text,
    [`${item(soon)} ${sb('sla')}`, before], { timeout: 6000 });
  assert.match(await soonSla.textContent(), /^due in 2m \d+s$/);
  assert.match(await lateSla.textContent(), /^overdue 1m \d+s$/);
  assert.equal(await lateSla.getAttribute('data-overdue'), 'true');
  assert.equal(await soonSla.getAttribute('data-overdue'), 'false');
  assert.equal(await lateSla.evaluate((e) => getComputedStyle(e).color), 'rgb(179, 38, 30)');
  await done(page);
});

test('presence shows who is online when the server has /v1/presence', async () => {
  const page = await consolePage();
  await page.route((url) => url.pathname === '/v1/presence', (route) => route.fulfill({
    json: { items: [{ id: ids.carla, name: 'Carla Console', role: 'agent' },
      { id: 'st_x', name: 'Alice Agent', role: 'agent' }] },
  }));
  await signIn(page, tok.carla);
  await page.locator(sb('presence')).waitFor();
  assert.deepEqual(await page.locator(sb('presence-item')).allTextContents(),
    ['Carla Console (you)', 'Alice Agent']);
  await done(page);
});

test('presence follows the live feed: a colleague coming online appears at once', async () => {
  const page = await consolePage();
  await signIn(page, tok.carla);
  await page.locator(sb('presence-item'), { hasText: 'Carla Console (you)' }).waitFor();
  assert.equal(await page.locator(sb('presence-item'), { hasText: 'Alice Agent' }).count(), 0);
  // Alice opens the feed (SSE): the `presence` event makes the console re-read the list,
  // long before its 30 s poll.
  const ctrl = new AbortController();
  const r = await fetch(`${d.url}/v1/events`, { headers: { authorization: `Bearer ${tok.alice}` },
    signal: ctrl.signal });
  assert.equal(r.status, 200);
  await page.locator(sb('presence-item'), { hasText: 'Alice Agent' }).waitFor({ timeout: 10000 });
  ctrl.abort();
  await page.locator(sb('presence-item'), { hasText: 'Alice Agent' }).waitFor({ state: 'detached',
    timeout: 10000 });
  await done(page);
});

test('on a phone the queue and the conversation take turns', async () => {
  const { conv } = await inbound('from a phone');
  const page = await consolePage({ viewport: { width: 390, height: 800 } });
  await signIn(page, tok.carla);
  await page.locator(item(conv)).waitFor();
  assert.equal(await page.locator(sb('conv-view')).isVisible(), false);
  await page.click(item(conv));
  await page.locator(msg('message', 'in'), { hasText: 'from a phone' }).waitFor();
  assert.equal(await page.locator('.queue-pane').isVisible(), false);
  await page.click(sb('back'));
  await page.locator(item(conv)).waitFor();
  assert.equal(await page.locator(sb('conv-view')).isVisible(), false);
  await done(page);
});

test('"Load more" rows stay loaded when a live update refreshes the queue', async () => {
  const open = async () => {
    const r = await api(d, 'GET', '/v1/conversations?limit=200', { token: tok.admin });
    assert.equal(r.status, 200, r.text);
    return r.json.items.length;
  };
  const more = [];
  for (let i = Math.max(0, 105 - await open()); i > 0; i--) more.push(inbound(`bulk ${i}`));
  await Promise.all(more);
  const total = await open();
  assert.ok(total > 100);
  const page = await consolePage();
  await signIn(page, tok.carla);
  await page.locator(sb('queue-more')).waitFor();
  assert.equal(await page.locator(sb('queue-item')).count(), 100);
  await page.click(sb('queue-more'));
  await page.waitForFunction((n) => document.querySelectorAll('[data-sb="queue-item"]').length >= n,
    total);
  // A new customer message: the live refresh keeps every loaded row, plus the new one.
  const m = await inbound('one more, live');
  await page.locator(item(m.conv)).waitFor({ timeout: 10000 });
  assert.ok(await page.locator(sb('queue-item')).count() >= total + 1);
  await done(page);
});
