// SPDX-License-Identifier: MIT
// The widget in headless Chromium against the real daemon: open the demo page, chat,
// see a staff reply posted through the API, reload and find the history, lose the
// connection and get the reply sent meanwhile after the widget reconnects by itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { launchChromium, visitorSays } from './browser.mjs';
import { Daemon, api } from './lib.mjs';

let d;
let admin;
let browser;

before(async () => {
  d = await Daemon.start();
  admin = d.token('admin', 'staff');
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (d) await d.stop();
});

const sb = (sel) => `[data-sb="${sel}"]`;

async function bubbles(page, dir) {
  return page.locator(`${sb('message')}[data-dir="${dir}"]`).allTextContents();
}

test('the widget loader is small', async () => {
  const r = await fetch(`${d.url}/widget.js`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /javascript/);
  const body = Buffer.from(await r.arrayBuffer());
  const gz = zlib.gzipSync(body, { level: 9 }).length;
  assert.ok(gz <= 10 * 1024, `widget.js is ${gz} bytes gzipped`);
});

test('chat from the demo page, staff reply, reload, reconnect after a network cut', async () => {
  const { context, page, conv } = await visitorSays(browser, d.url, 'Hello from the browser');
  assert.deepEqual(await bubbles(page, 'in'), ['Hello from the browser']);

  const reply = await api(d, 'POST', `/v1/conversations/${conv}/messages`,
    { token: admin, body: { text: 'Hi! How can we help?' } });
  assert.equal(reply.status, 201);
  await page.locator(`${sb('message')}[data-dir="out"]`).first().waitFor();
  assert.deepEqual(await bubbles(page, 'out'), ['Hi! How can we help?']);

  // Reload: the conversation comes back from the server.
  await page.reload();
  await page.click(sb('launcher'));
  await page.locator(`${sb('message')}[data-dir="out"]`).first().waitFor();
  assert.deepEqual(await bubbles(page, 'in'), ['Hello from the browser']);
  assert.deepEqual(await bubbles(page, 'out'), ['Hi! How can we help?']);

  // Network cut: no new connections, the socket drops; a reply is sent meanwhile.
  await page.waitForFunction(() => window.Switchboard._state.ws &&
    window.Switchboard._state.ws.readyState === 1);
  await context.setOffline(true);
  await page.evaluate(() => window.Switchboard._state.ws.close());
  const missed = await api(d, 'POST', `/v1/conversations/${conv}/messages`,
    { token: admin, body: { text: 'Sent while you were offline' } });
  assert.equal(missed.status, 201);
  await context.setOffline(false);
  await page.locator(`${sb('message')}[data-dir="out"]`, { hasText: 'offline' })
    .waitFor({ timeout: 20000 });
  assert.deepEqual(await bubbles(page, 'out'), ['Hi! How can we help?',
    'Sent while you were offline']);

  // Messages typed while offline are queued and delivered once, after reconnecting.
  await context.setOffline(true);
  await page.evaluate(() => window.Switchboard._state.ws && window.Switchboard._state.ws.close());
  await page.fill(sb('input'), 'typed while offline');
  await page.press(sb('input'), 'Enter');
  await context.setOffline(false);
  await page.waitForFunction(() => window.Switchboard._state.pending.length === 0,
    null, { timeout: 20000 });
  const msgs = await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: admin });
  assert.deepEqual(msgs.json.items.filter((m) => m.dir === 'in').map((m) => m.text),
    ['Hello from the browser', 'typed while offline']);

  fs.mkdirSync(process.env.SB_TEST_TMP || '/tmp', { recursive: true });
  await page.screenshot({ path: `${process.env.SB_TEST_TMP || '/tmp'}/widget.png` });
  await context.close();
});

test('host page CSS cannot reach inside the widget, and the JS API works', async () => {
  const page = await browser.newPage();
  await page.goto(`${d.url}/`);
  await page.waitForFunction(() => window.Switchboard && window.Switchboard._loaded);
  const font = await page.locator(sb('input')).evaluate((el) => getComputedStyle(el).fontFamily);
  assert.ok(!/Comic/.test(font), `shadow root isolates styles (${font})`);
  await page.evaluate(() => window.Switchboard.open());
  assert.equal(await page.locator(sb('panel')).isVisible(), true);
  await page.evaluate(() => window.Switchboard.close());
  assert.equal(await page.locator(sb('panel')).isVisible(), false);
  await page.close();
});

test('when nobody answers, the widget asks for an email and staff see it', async () => {
  const page = await browser.newPage();
  // A page of the allowed origin embedding the widget with a short no-reply delay.
  await page.route(`${d.url}/shop.html`, (route) => route.fulfill({
    contentType: 'text/html',
    body: `<!doctype html><p>shop</p><script src="/widget.js" data-site="default"
      data-email-after="400" async></script>`,
  }));
  await page.goto(`${d.url}/shop.html`);
  await page.click(sb('launcher'));
  await page.fill(sb('input'), 'Is anyone there?');
  await page.press(sb('input'), 'Enter');
  await page.locator(sb('email')).waitFor({ timeout: 15000 });
  await page.fill(sb('email'), 'nora@example.com');
  await page.press(sb('email'), 'Enter');
  await page.locator(sb('status'), { hasText: 'nora@example.com' }).waitFor();
  const conv = await page.evaluate(() => window.Switchboard._state.conv);
  // the note is written after the ack: wait for it (a loaded machine takes seconds)
  let notes = [];
  let last;
  for (const end = Date.now() + 20000; notes.length === 0 && Date.now() < end;) {
    last = await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: admin });
    notes = (last.json?.items || []).filter((m) => m.kind === 'note');
    if (!notes.length) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(notes.length, `no note: ${last?.status} ${last?.text}`);
  assert.match(notes[0].text, /nora@example\.com/);
  await page.close();
});

test('a long history: the newest page shows, earlier pages load on scroll and on the button',
  async () => {
    const { context, page, conv } = await visitorSays(browser, d.url, 'Tell me a long story');
    const texts = [];
    for (let i = 0; i < 300; i++) {
      const t = `${String(i).padStart(3, '0')} ${'x'.repeat(8000)}`;
      texts.push(t);
      const r = await api(d, 'POST', `/v1/conversations/${conv}/messages`,
        { token: admin, body: { text: t } });
      assert.equal(r.status, 201);
    }
    // A fresh page: the welcome brings the newest page only (before paging: closed 1008).
    await page.reload();
    await page.click(sb('launcher'));
    const out = page.locator(`${sb('message')}[data-dir="out"]`);
    await out.filter({ hasText: /^299 / }).waitFor({ timeout: 10000 });
    const first = await out.count();
    assert.ok(first < 300, `${first} bubbles in the first page`);
    assert.equal(await page.locator(sb('earlier')).isVisible(), true);
    const geo = await page.locator(sb('messages')).evaluate((el) =>
      [el.scrollHeight, el.scrollTop, el.clientHeight]);
    assert.ok(geo[0] - geo[1] - geo[2] < 5, `opened on the newest (height, top, view: ${geo})`);
    // Scrolling to the top loads the next older page, kept in transcript order.
    await page.locator(sb('messages')).evaluate((el) => { el.scrollTop = 0; });
    await page.waitForFunction((n) => window.Switchboard._state.loading === false &&
      document.querySelector('[data-switchboard]').shadowRoot
        .querySelectorAll('[data-sb="message"][data-dir="out"]').length > n, first);
    // The button brings the rest.
    // (A click event, not a pointer click: a page arriving by scrolling may hide the
    // button between the check and the click, and the layout moves while pages arrive.)
    while (await page.locator(sb('earlier')).isVisible()) {
      const n = await out.count();
      await page.locator(sb('earlier')).dispatchEvent('click');
      await page.waitForFunction((k) => document.querySelector('[data-switchboard]').shadowRoot
        .querySelectorAll('[data-sb="message"][data-dir="out"]').length > k ||
        !window.Switchboard._state.before, n);
    }
    const shown = (await out.allTextContents()).map((t) => t.slice(0, 3));
    assert.deepEqual(shown, texts.map((t) => t.slice(0, 3)), 'all 300, once, in order');
    assert.deepEqual(await bubbles(page, 'in'), ['Tell me a long story']);
    await context.close();
  });

test('a reconnect that missed several pages fills the whole gap by itself', async () => {
  const { context, page, conv } = await visitorSays(browser, d.url, 'I will be right back');
  await page.waitForFunction(() => window.Switchboard._state.ws &&
    window.Switchboard._state.ws.readyState === 1 && window.Switchboard._state.welcomed);
  await context.setOffline(true);
  await page.evaluate(() => window.Switchboard._state.ws.close());
  const texts = [];
  for (let i = 0; i < 130; i++) {
    texts.push(`gap ${String(i).padStart(3, '0')}`);
    const r = await api(d, 'POST', `/v1/conversations/${conv}/messages`,
      { token: admin, body: { text: texts[i] } });
    assert.equal(r.status, 201);
  }
  await context.setOffline(false);
  await page.waitForFunction((n) => document.querySelector('[data-switchboard]').shadowRoot
    .querySelectorAll('[data-sb="message"][data-dir="out"]').length >= n, texts.length,
  { timeout: 30000 });
  assert.deepEqual(await bubbles(page, 'out'), texts);
  assert.equal(await page.locator(sb('earlier')).isVisible(), false);
  await context.close();
});
