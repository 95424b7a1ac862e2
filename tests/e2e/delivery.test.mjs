// SPDX-License-Identifier: MIT
// Delivery outcomes through the real daemon (docs/delivery.md): a reply on a channel that no
// running connector serves is 422 channel_unavailable with nothing stored; POST
// …/messages/{mid}/retry (202, 404, 409 not_failed, scopes); and the console showing
// "sent", "failed: …", "retrying at …" and a Retry button that works, live.
//
// No connector delivers email yet, so the second daemon runs with the SB_TESTING-only hook
// SWITCHBOARD_TEST_DELIVERY=email (gateway/api_testing.c): email counts as served, and
// POST /v1/testing/delivery records an outcome through sb_store_delivery_record, as the
// outbox engine will.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from './browser.mjs';
import { Daemon, api, sse } from './lib.mjs';

let plain; // no email connector: email replies are refused
let hooked; // email served through the test hook
let browser;
const tok = {};

before(async () => {
  plain = await Daemon.start();
  hooked = await Daemon.start('', { env: { SWITCHBOARD_TEST_DELIVERY: 'email' } });
  tok.plain = plain.token('admin', 'Ada Admin');
  tok.admin = hooked.token('admin', 'Ada Admin');
  tok.carla = hooked.sbctl('staff', 'add', '--name', 'Carla Console', '--email',
    'carla@example.com', '--role', 'agent');
  tok.apiOnly = hooked.sbctl('token', 'create', '--role', 'agent', '--name', 'Api agent',
    '--channels', 'api');
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  for (const d of [plain, hooked]) {
    if (!d) continue;
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

let customers = 0;
async function inbound(d, token, text, channel = 'email') {
  const r = await api(d, 'POST', '/v1/inbound', {
    token,
    body: { channel, contact: { email: `cust${++customers}@example.com`, name: `Customer ${customers}` }, text },
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const transcript = async (d, token, conv) =>
  (await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token })).json.items;

async function reply(d, token, conv, text) {
  const r = await api(d, 'POST', `/v1/conversations/${conv}/messages`, { token, body: { text } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function outcome(conv, mid, fields) {
  const r = await api(hooked, 'POST', '/v1/testing/delivery',
    { token: tok.admin, body: { conv, mid, channel: 'email', ...fields } });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const retry = (d, token, conv, mid) =>
  api(d, 'POST', `/v1/conversations/${conv}/messages/${mid}/retry`, { token });

test('a reply on a channel no connector serves is 422 and stores nothing', async () => {
  const m = await inbound(plain, tok.plain, 'Where is my parcel?');
  const before = await transcript(plain, tok.plain, m.conv);
  const feed = sse(plain, tok.plain, { until: (evs) => evs.some((e) => e.data.message?.kind === 'note') });
  await feed.connected;
  const r = await api(plain, 'POST', `/v1/conversations/${m.conv}/messages`,
    { token: tok.plain, body: { text: 'On its way', client_id: 'k1' } });
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'channel_unavailable');
  assert.match(r.json.error.message, /email/);
  assert.deepEqual(await transcript(plain, tok.plain, m.conv), before, 'no transcript entry');
  const conv = (await api(plain, 'GET', `/v1/conversations/${m.conv}`, { token: tok.plain })).json;
  assert.ok(conv.awaiting_since, 'still waiting for an answer');
  // A note is internal (never refused); the feed got it and nothing before it.
  const note = await api(plain, 'POST', `/v1/conversations/${m.conv}/notes`,
    { token: tok.plain, body: { text: 'call the carrier' } });
  assert.equal(note.status, 201, note.text);
  const evs = (await feed).events.filter((e) => e.data.conv === m.conv);
  assert.deepEqual(evs.map((e) => e.data.message.kind), ['note'], JSON.stringify(evs));
  // Channels with a running reader still take replies.
  const chat = await inbound(plain, tok.plain, 'hello from a form', 'api');
  await reply(plain, tok.plain, chat.conv, 'hello back');
});

test('retry: 404 unknown or out of scope, 409 unless failed for good, 202 with the state', async () => {
  const m = await inbound(hooked, tok.admin, 'Invoice please');
  const out = await reply(hooked, tok.admin, m.conv, 'Attached.');
  assert.equal(out.channel, 'email');

  // Unknown conversation, unknown message, malformed ids: 404.
  assert.equal((await retry(hooked, tok.admin, 'c_01jd3k00000000000000000000', out.id)).status, 404);
  assert.equal((await retry(hooked, tok.admin, m.conv, 'm_01jd3k00000000000000000000')).status, 404);
  assert.equal((await retry(hooked, tok.admin, m.conv, 'nope')).status, 404);
  // The customer's message, and a reply never attempted: nothing failed.
  let r = await retry(hooked, tok.admin, m.conv, m.id);
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json.error.code, 'not_failed');
  assert.equal((await retry(hooked, tok.admin, m.conv, out.id)).status, 409);

  // Failed, but the outbox retries it by itself: not for people to retry.
  const retryAt = Date.now() + 60000;
  await outcome(m.conv, out.id, { ok: false, final: false, reason: '421 busy', retry_at: retryAt });
  r = await retry(hooked, tok.admin, m.conv, out.id);
  assert.equal(r.status, 409, r.text);

  // Failed for good: a token scoped to other channels does not see it; staff retry it.
  await outcome(m.conv, out.id, { ok: false, final: true, reason: '550 no such mailbox' });
  r = await retry(hooked, tok.apiOnly, m.conv, out.id);
  assert.equal(r.status, 404, r.text);
  r = await retry(hooked, tok.carla, m.conv, out.id);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.state.state, 'pending');
  assert.equal(r.json.state.mid, out.id);
  assert.equal(r.json.event.type, 'delivery_retry');
  assert.equal(r.json.event.author.name, 'Carla Console');
  // Once is enough: it is pending again.
  assert.equal((await retry(hooked, tok.admin, m.conv, out.id)).status, 409);

  // The transcript tells the story, each event pointing at the reply.
  const evs = (await transcript(hooked, tok.admin, m.conv)).filter((x) => x.ref === out.id);
  assert.deepEqual(evs.map((x) => [x.type, x.final ?? null]),
    [['delivery_failed', false], ['delivery_failed', true], ['delivery_retry', null]]);
  assert.equal(evs[0].retry_at, retryAt);
  assert.equal(evs[1].reason, '550 no such mailbox');

  // Delivered at last; a repeated report records nothing.
  assert.equal((await outcome(m.conv, out.id, { ok: true, provider_id: '<x@mail>' })).recorded, true);
  assert.equal((await outcome(m.conv, out.id, { ok: true, provider_id: '<x@mail>' })).recorded, false);
  const after = (await transcript(hooked, tok.admin, m.conv)).filter((x) => x.type === 'delivered');
  assert.equal(after.length, 1);
  assert.equal(after[0].provider_id, '<x@mail>');
});

test('the console shows sent, failed and retrying, and its Retry button works', async () => {
  const m = await inbound(hooked, tok.admin, 'Can you resend my receipt?');
  const first = await reply(hooked, tok.admin, m.conv, 'Here it is.');
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(`${hooked.url}/console/`);
  await page.fill('[data-sb="token-input"]', tok.carla);
  await page.click('[data-sb="signin"]');
  await page.locator('[data-sb="live"][data-state="live"]').waitFor();
  await page.goto(`${hooked.url}/console/#/c/${m.conv}`);
  const line = (mid) => page.locator(`[data-sb="conv-message"][data-id="${mid}"] [data-sb="delivery"]`);
  await page.locator(`[data-sb="conv-message"][data-id="${first.id}"]`).waitFor();
  assert.equal(await line(first.id).count(), 0, 'no outcome yet: nothing shown');

  // Live: delivered -> "sent".
  await outcome(m.conv, first.id, { ok: true, provider_id: '<a@mail>' });
  await line(first.id).and(page.locator('[data-state="sent"]')).waitFor();
  assert.equal((await line(first.id).textContent()).trim(), 'sent');

  // Sent from the console, then a temporary failure: "failed: … · retrying at …", no button.
  await page.fill('[data-sb="reply-input"]', 'And the invoice.');
  await page.click('[data-sb="reply-send"]');
  const sent = page.locator('[data-sb="conv-message"][data-dir="out"]', { hasText: 'And the invoice.' });
  await sent.waitFor();
  const second = await sent.getAttribute('data-id');
  await outcome(m.conv, second, { ok: false, final: false, reason: '421 busy', retry_at: Date.now() + 120000 });
  await line(second).and(page.locator('[data-state="retrying"]')).waitFor();
  assert.match(await line(second).textContent(), /failed: 421 busy · retrying at /);
  assert.equal(await line(second).locator('[data-sb="delivery-retry"]').count(), 0);

  // Failed for good: a Retry button, which puts it back in the outbox.
  await outcome(m.conv, second, { ok: false, final: true, reason: '550 mailbox full' });
  const button = line(second).locator('[data-sb="delivery-retry"]');
  await button.waitFor();
  assert.match(await line(second).textContent(), /failed: 550 mailbox full/);
  await button.click();
  await line(second).and(page.locator('[data-state="pending"]')).waitFor();
  const evs = (await transcript(hooked, tok.admin, m.conv)).filter((x) => x.ref === second);
  assert.equal(evs.at(-1).type, 'delivery_retry');
  assert.equal(evs.at(-1).author.name, 'Carla Console');

  // A fresh page rebuilds every state from the transcript.
  await outcome(m.conv, second, { ok: false, final: true, reason: '550 mailbox full' });
  await page.reload();
  await line(second).and(page.locator('[data-state="failed"]')).waitFor();
  assert.equal((await line(first.id).textContent()).trim(), 'sent');
  assert.deepEqual(problems, []);
  await context.close();
});
