// SPDX-License-Identifier: MIT
// Attachments (docs/attachments.md) through the real daemon: a customer message arrives
// with files the way the mail connector hands them over (tests/connectors/testchan's
// POST /test/ingest stores the bytes with sb_attach_put and ingests the listing), staff
// list the transcript and get a signed URL per stored file, anyone holding the URL
// downloads the exact bytes with safe headers, a tampered URL is 403, an expired one is
// 403 (the daemon's clock is moved, nothing sleeps) until the transcript is listed again,
// a file over attachment_max_bytes is listed as not stored, and the console shows the
// attachments (a link, a thumbnail), renews a link clicked after its expiry and folds the
// quoted part of an email.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from './browser.mjs';
import { Daemon, api } from './lib.mjs';

let d;
let browser;
const tok = {};
const TTL_S = 60;

// A 1x1 PNG, a would-be HTML page, and a file over the 64 KiB limit configured below.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const HTML = Buffer.from('<script>alert(document.cookie)</script>');
const BIG = crypto.randomBytes(70 * 1024);
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const stored = (h) => path.join(d.dir, 'var', 'attachments', h.slice(0, 2), h.slice(2, 4), h);

before(async () => {
  d = await Daemon.start('test_channel email http://127.0.0.1:9/deliver\n' +
    `attachment_max_bytes 64K\nattachment_url_ttl ${TTL_S}s`, { testClock: true });
  tok.admin = d.token('admin', 'Ada Admin');
  tok.carla = d.sbctl('staff', 'add', '--name', 'Carla Console', '--email', 'carla@example.com',
    '--role', 'agent');
  tok.chatOnly = d.sbctl('token', 'create', '--role', 'agent', '--name', 'Chat only',
    '--channels', 'webchat');
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

let customers = 0;
// An email conversation, then a message in it carrying files (as the mail connector would).
async function mailWithFiles(text, files, ext) {
  const first = await api(d, 'POST', '/v1/inbound', {
    token: tok.admin,
    body: { channel: 'email', contact: { email: `cust${++customers}@example.com`, name: `Customer ${customers}` }, text: 'Hello' },
  });
  assert.equal(first.status, 201, first.text);
  const { conv, author } = first.json;
  const r = await api(d, 'POST', '/test/ingest', {
    body: {
      conv, contact: author.id, text, ext,
      attachments: files.map(([name, type, bytes]) => ({ name, type, content: bytes.toString('base64') })),
    },
  });
  assert.equal(r.status, 201, r.text);
  return { conv, message: r.json };
}

async function listed(conv, token = tok.carla) {
  const r = await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json.items;
}

const download = (url) => fetch(`${d.url}${url}`);

async function forbidden(url, what) {
  const r = await download(url);
  assert.equal(r.status, 403, what);
  const j = await r.json();
  assert.equal(j.error.code, 'forbidden', what);
  return j.error.message;
}

test('stored attachments: listed with signed URLs, served byte for byte with safe headers', async () => {
  const { conv, message } = await mailWithFiles('Photo and page attached', [
    ['photo 1.png', 'image/png', PNG], ['page.html', 'text/html', HTML], ['huge.bin', 'application/zip', BIG]]);
  // Redis keeps the listing only: no URL (URLs expire), bytes on disk by content hash.
  assert.deepEqual(message.attachments, [
    { name: 'photo 1.png', type: 'image/png', size: PNG.length, sha256: sha(PNG), stored: true },
    { name: 'page.html', type: 'text/html', size: HTML.length, sha256: sha(HTML), stored: true },
    { name: 'huge.bin', type: 'application/zip', size: BIG.length, sha256: sha(BIG), stored: false },
  ]);
  assert.deepEqual(fs.readFileSync(stored(sha(PNG))), PNG);
  assert.ok(!fs.existsSync(stored(sha(BIG))), 'over attachment_max_bytes: not stored');

  // The same bytes again, in another conversation: still one file.
  await mailWithFiles('Same photo again', [['again.png', 'image/png', PNG]]);
  const dir = path.dirname(stored(sha(PNG)));
  assert.deepEqual(fs.readdirSync(dir), [sha(PNG)]);

  const items = await listed(conv);
  const m = items.find((x) => x.id === message.id);
  const [png, html, big] = m.attachments;
  assert.match(png.url, new RegExp(`^/v1/attachments/${sha(PNG)}\\?name=photo%201\\.png&type=image%2Fpng&exp=\\d+&sig=[0-9a-f]{64}$`));
  const exp = Number(new URL(png.url, d.url).searchParams.get('exp'));
  const nowS = d.now() / 1000;
  assert.ok(exp >= nowS + TTL_S - 5 && exp <= nowS + TTL_S + 5, `exp ${exp} is about now + ttl`);
  assert.ok(html.url);
  assert.equal(big.url, undefined, 'nothing to download for a file not stored');

  // No token needed: the signature is the credential.
  let r = await download(png.url);
  assert.equal(r.status, 200);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), PNG);
  assert.equal(r.headers.get('content-type'), 'image/png');
  assert.equal(r.headers.get('content-disposition'), "inline; filename*=UTF-8''photo%201.png");
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('content-security-policy'), 'sandbox');
  assert.equal(r.headers.get('cache-control'), 'private');
  assert.equal(r.headers.get('content-length'), String(PNG.length));

  // HTML is never served as HTML: saved, not shown.
  r = await download(html.url);
  assert.equal(r.status, 200);
  assert.deepEqual(Buffer.from(await r.arrayBuffer()), HTML);
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  assert.equal(r.headers.get('content-disposition'), "attachment; filename*=UTF-8''page.html");
  assert.equal(r.headers.get('content-security-policy'), 'sandbox');
});

test('a tampered URL is 403, a missing file 404, a path outside the store refused', async () => {
  const { conv, message } = await mailWithFiles('Invoice', [['invoice.pdf', 'application/pdf', Buffer.from('%PDF-1.4 invoice 42')]]);
  const [att] = (await listed(conv)).find((x) => x.id === message.id).attachments;
  const u = new URL(att.url, d.url);
  const variant = (k, v) => {
    const x = new URL(u);
    if (v === null) x.searchParams.delete(k);
    else x.searchParams.set(k, v);
    return `${x.pathname}${x.search}`;
  };
  assert.equal((await download(att.url)).status, 200);
  await forbidden(variant('name', 'invoice.exe'), 'name changed');
  await forbidden(variant('type', 'text/html'), 'type changed');
  await forbidden(variant('type', null), 'type removed');
  await forbidden(variant('exp', String(Number(u.searchParams.get('exp')) + 3600)), 'expiry moved');
  const sig = u.searchParams.get('sig');
  await forbidden(variant('sig', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1)), 'signature changed');
  await forbidden(variant('sig', null), 'no signature');
  // Another file under the same signature.
  const other = `/v1/attachments/${sha(PNG)}${u.search}`;
  await forbidden(other, 'sha changed');
  // Not a sha: never a path.
  for (const p of ['/v1/attachments/..%2F..%2Fattachment.key', '/v1/attachments/attachment.key',
    `/v1/attachments/${sha(PNG).toUpperCase()}`]) {
    const r = await download(`${p}${u.search}`);
    assert.equal(r.status, 404, p);
  }
  // A good URL whose file is gone.
  fs.unlinkSync(stored(u.pathname.split('/').pop()));
  const gone = await download(att.url);
  assert.equal(gone.status, 404);
  assert.equal((await gone.json()).error.code, 'not_found');
});

test('a URL expires after attachment_url_ttl; listing again signs a fresh one', async () => {
  const { conv, message } = await mailWithFiles('Expiring', [['notes.txt', 'text/plain', Buffer.from('plain notes\n')]]);
  const [att] = (await listed(conv)).find((x) => x.id === message.id).attachments;
  assert.equal((await download(att.url)).status, 200);
  d.setClockOffset((TTL_S + 2) * 1000); // the daemon's clock, past the expiry
  try {
    const why = await forbidden(att.url, 'expired');
    assert.match(why, /expired/);
    const [fresh] = (await listed(conv)).find((x) => x.id === message.id).attachments;
    assert.notEqual(fresh.url, att.url);
    const r = await download(fresh.url);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'plain notes\n');
    assert.equal(r.headers.get('content-type'), 'text/plain');
  } finally {
    d.setClockOffset(0);
  }
});

test('a token that may not see the conversation gets no URL', async () => {
  const { conv } = await mailWithFiles('Scoped', [['photo.png', 'image/png', PNG]]);
  const r = await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: tok.chatOnly });
  assert.equal(r.status, 404);
  assert.doesNotMatch(r.text, /attachments\//);
  const unauth = await api(d, 'GET', `/v1/conversations/${conv}/messages`);
  assert.equal(unauth.status, 401);
});

test('the console shows attachments with links and folds the quoted text', async () => {
  const quoted = 'On Monday, Carla wrote:\n> <b>not bold</b> & <script>alert(1)</script>';
  const { conv, message } = await mailWithFiles('See the photo', [
    ['photo.png', 'image/png', PNG], ['huge.bin', 'application/zip', BIG]], { quoted });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('dialog', (dlg) => { problems.push(`dialog: ${dlg.message()}`); dlg.dismiss(); });
  await page.goto(`${d.url}/console/`);
  await page.fill('[data-sb="token-input"]', tok.carla);
  await page.click('[data-sb="signin"]');
  await page.locator('[data-sb="live"][data-state="live"]').waitFor();
  await page.goto(`${d.url}/console/#/c/${conv}`);
  const li = page.locator(`[data-sb="conv-message"][data-id="${message.id}"]`);
  await li.waitFor();

  const link = li.locator('[data-sb="attachment-link"]');
  assert.equal(await link.count(), 1);
  assert.match(await link.getAttribute('href'), new RegExp(`^/v1/attachments/${sha(PNG)}\\?`));
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  const row = li.locator('[data-sb="attachment"][data-stored="true"]');
  assert.match(await row.textContent(), /photo\.png \(image\/png, 70 B\)/);
  // The thumbnail loads through the console's CSP (img-src 'self').
  await page.waitForFunction((id) => {
    const img = document.querySelector(`[data-id="${id}"] [data-sb="attachment-thumb"]`);
    return img && img.complete && img.naturalWidth === 1;
  }, message.id);
  const missing = li.locator('[data-sb="attachment"][data-stored="false"]');
  assert.match(await missing.textContent(), /huge\.bin \(application\/zip, 70 KB\) · not stored \(too large\)/);
  assert.equal(await missing.locator('a').count(), 0);

  // The link downloads the same bytes the browser would get.
  const href = await link.getAttribute('href');
  const bytes = await page.evaluate(async (u) => Array.from(new Uint8Array(await (await fetch(u)).arrayBuffer())), href);
  assert.deepEqual(Buffer.from(bytes), PNG);

  // Quoted text: folded, then shown as text (no element made from it).
  const toggle = li.locator('[data-sb="quoted-toggle"]');
  const text = li.locator('[data-sb="quoted-text"]');
  assert.equal(await toggle.textContent(), 'Show quoted text');
  assert.equal(await text.isVisible(), false);
  await toggle.click();
  await text.waitFor({ state: 'visible' });
  assert.equal(await text.textContent(), quoted);
  assert.equal(await text.locator('b, script').count(), 0);
  assert.equal(await toggle.textContent(), 'Hide quoted text');
  await toggle.click();
  await text.waitFor({ state: 'hidden' });

  // A message arriving live with a file gets its link too (fetched through REST).
  const live = await api(d, 'POST', '/test/ingest', {
    body: { conv, contact: message.author.id, text: 'One more', attachments: [{ name: 'more.png', type: 'image/png', content: PNG.toString('base64') }] },
  });
  assert.equal(live.status, 201, live.text);
  await page.locator(`[data-sb="conv-message"][data-id="${live.json.id}"] [data-sb="attachment-link"]`).waitFor();
  // A message without quoted text has no toggle.
  assert.equal(await page.locator(`[data-id="${live.json.id}"] [data-sb="quoted"]`).count(), 0);

  // A link clicked after its expiry is renewed first: both clocks move past it.
  const before = await link.getAttribute('href');
  d.setClockOffset((TTL_S + 10) * 1000);
  try {
    await page.clock.setSystemTime(Date.now() + (TTL_S + 10) * 1000);
    const opened = context.waitForEvent('page');
    await li.locator('[data-sb="attachment-link"]').click();
    const tab = await opened;
    const renewed = new URL(tab.url());
    assert.equal(renewed.pathname, `/v1/attachments/${sha(PNG)}`);
    assert.notEqual(`${renewed.pathname}${renewed.search}`, before);
    assert.equal((await download(before)).status, 403, 'the old link has expired');
    const r = await download(`${renewed.pathname}${renewed.search}`);
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), PNG);
    const href = await li.locator('[data-sb="attachment-link"]').getAttribute('href');
    assert.equal(href, `${renewed.pathname}${renewed.search}`, 'the transcript shows the new link');
  } finally {
    d.setClockOffset(0);
  }

  assert.deepEqual(problems, [], 'no script errors, CSP violations or dialogs');
  await context.close();
});
