// SPDX-License-Identifier: MIT
// Delivery through the real path (docs/delivery.md, docs/outbox.md): a staff reply on email
// goes into outbox:email, the daemon's outbox lane hands it to a connector, the connector
// POSTs it to a receiver, and the receiver's answer comes back as an outcome on the
// message: `delivered` / `delivery_failed` events, "sent" / "failed: …" in the console, a
// Retry button, a lane paused by a refused credential (GET /v1/connectors, sbctl
// connectors, /metrics) and resumed by an admin.
//
// The connector is tests/connectors/testchan, built into SB_TESTING daemons only:
// `test_channel email <url>` makes it serve email by POSTing each outbox entry to <url>.
// The receiver here is a node HTTP server whose answers each test scripts by message text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { launchChromium } from './browser.mjs';
import { Daemon, api, sse } from './lib.mjs';

let plain; // no email connector: email replies are refused
let wired; // email served by the test connector, delivering to `receiver`
let browser;
const tok = {};

// The fake provider: answers per message text follow plan(text, steps); the last step
// repeats. A step is {status, error?, headers?, body?}; 2xx answers {"id":"prov-N"}.
const receiver = { got: [], plans: new Map(), waiters: [] };
receiver.server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => { raw += c; });
  req.on('end', () => {
    const body = JSON.parse(raw);
    receiver.got.push({ headers: req.headers, body, at: new Date().toISOString() });
    const plan = receiver.plans.get(body.m?.text) || [];
    const step = (plan.length > 1 ? plan.shift() : plan[0]) || { status: 200 };
    const out = step.body ?? (step.status < 300 ? { id: `prov-${receiver.got.length}` }
      : { error: step.error || 'refused' });
    res.writeHead(step.status, { 'content-type': 'application/json', ...(step.headers || {}) });
    res.end(JSON.stringify(out));
  });
});
const plan = (text, ...steps) => receiver.plans.set(text, steps);
const posts = (text) => receiver.got.filter((g) => g.body.m?.text === text);

// Polls cond() until it returns something truthy (the condition, not a guessed delay).
async function until(cond, what, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${wired?.log ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  await new Promise((r) => receiver.server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${receiver.server.address().port}/deliver`;
  plain = await Daemon.start();
  // Retries after 1 s (not doubled past it), so a retry is quick but visible.
  wired = await Daemon.start(`test_channel email ${url}\noutbox_retry_base 1s\noutbox_retry_max 1s`);
  tok.plain = plain.token('admin', 'Ada Admin');
  tok.admin = wired.token('admin', 'Ada Admin');
  tok.carla = wired.sbctl('staff', 'add', '--name', 'Carla Console', '--email',
    'carla@example.com', '--role', 'agent');
  tok.apiOnly = wired.sbctl('token', 'create', '--role', 'agent', '--name', 'Api agent',
    '--channels', 'api');
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  for (const d of [plain, wired]) {
    if (!d) continue;
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
  receiver.server.close();
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

// The delivery events of one message, once cond(events) holds.
const outcomes = (conv, mid, cond, what) => until(async () => {
  const evs = (await transcript(wired, tok.admin, conv)).filter((x) => x.ref === mid);
  return cond(evs) && evs;
}, what);

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
  // Without test_channel the test connector does not run and has no lane.
  const list = await api(plain, 'GET', '/v1/connectors', { token: tok.plain });
  assert.equal(list.status, 200, list.text);
  const tc = list.json.items.find((c) => c.name === 'testchan');
  assert.deepEqual([tc.running, tc.lanes], [false, []]);
});

test('a reply goes out through the connector and comes back delivered', async () => {
  const m = await inbound(wired, tok.admin, 'Invoice please');
  const out = await reply(wired, tok.admin, m.conv, 'Attached.');
  assert.equal(out.channel, 'email');
  const evs = await outcomes(m.conv, out.id, (e) => e.some((x) => x.type === 'delivered'), 'delivered');
  assert.deepEqual(evs.map((x) => x.type), ['delivered']);
  const [post] = posts('Attached.');
  assert.equal(post.headers['idempotency-key'], out.id);
  assert.equal(post.body.conv, m.conv);
  assert.equal(post.body.m.id, out.id);
  assert.match(post.body.stream, /\{\d+\}:outbox:email$/);
  assert.equal(evs[0].provider_id, `prov-${receiver.got.indexOf(post) + 1}`);
  // Delivered: nothing to retry, and it is not sent again.
  assert.equal((await retry(wired, tok.admin, m.conv, out.id)).status, 409);
  assert.equal(posts('Attached.').length, 1);
});

test('a 500 then a 200: failed and retrying, then sent', async () => {
  plan('Second try works.', { status: 500, error: 'try later' }, { status: 200 });
  const m = await inbound(wired, tok.admin, 'Hello?');
  const out = await reply(wired, tok.admin, m.conv, 'Second try works.');
  const evs = await outcomes(m.conv, out.id, (e) => e.some((x) => x.type === 'delivered'), 'retry then delivered');
  assert.deepEqual(evs.map((x) => [x.type, x.final ?? null]), [['delivery_failed', false], ['delivered', null]]);
  assert.equal(evs[0].reason, 'HTTP 500: try later');
  assert.ok(evs[0].retry_at > 0);
  assert.equal(posts('Second try works.').length, 2);
});

test('a 429 is retried at its Retry-After, without using up an attempt', async () => {
  plan('Slow down.', { status: 429, error: 'rate limited', headers: { 'retry-after': '2' } },
    { status: 200 });
  const m = await inbound(wired, tok.admin, 'Anyone?');
  const t0 = Date.now();
  const out = await reply(wired, tok.admin, m.conv, 'Slow down.');
  const evs = await outcomes(m.conv, out.id, (e) => e.some((x) => x.type === 'delivered'), 'delivered after the wait');
  assert.deepEqual(evs.map((x) => [x.type, x.final ?? null]), [['delivery_failed', false], ['delivered', null]]);
  assert.equal(evs[0].reason, 'HTTP 429: rate limited');
  assert.ok(evs[0].retry_at >= t0 + 2000, `retry_at ${evs[0].retry_at} is the provider's time`);
  const [first, second] = posts('Slow down.');
  assert.ok(Date.parse(second.at) - Date.parse(first.at) >= 1900, 'waited for Retry-After');
});

test('a 422 fails for good; retry (404, 409, scopes) sends it again', async () => {
  plan('Your refund.', { status: 422, error: 'mailbox full' }, { status: 200 });
  const m = await inbound(wired, tok.admin, 'Refund?');
  const out = await reply(wired, tok.admin, m.conv, 'Your refund.');
  let evs = await outcomes(m.conv, out.id, (e) => e.some((x) => x.final === true), 'a final failure');
  assert.deepEqual(evs.map((x) => [x.type, x.final]), [['delivery_failed', true]]);
  assert.equal(evs[0].reason, 'HTTP 422: mailbox full');

  // Unknown conversation, unknown message, malformed ids: 404; the customer's message: 409.
  assert.equal((await retry(wired, tok.admin, 'c_01jd3k00000000000000000000', out.id)).status, 404);
  assert.equal((await retry(wired, tok.admin, m.conv, 'm_01jd3k00000000000000000000')).status, 404);
  assert.equal((await retry(wired, tok.admin, m.conv, 'nope')).status, 404);
  const r409 = await retry(wired, tok.admin, m.conv, m.id);
  assert.equal(r409.status, 409, r409.text);
  assert.equal(r409.json.error.code, 'not_failed');
  // A token scoped to other channels does not see it; staff retry it.
  assert.equal((await retry(wired, tok.apiOnly, m.conv, out.id)).status, 404);
  const r = await retry(wired, tok.carla, m.conv, out.id);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.json.event.type, 'delivery_retry');
  assert.equal(r.json.event.author.name, 'Carla Console');
  evs = await outcomes(m.conv, out.id, (e) => e.some((x) => x.type === 'delivered'), 'delivered after retry');
  assert.deepEqual(evs.map((x) => x.type), ['delivery_failed', 'delivery_retry', 'delivered']);
  assert.equal(posts('Your refund.').length, 2);
  // Dead letters: the 422 was one.
  const list = await api(wired, 'GET', '/v1/connectors', { token: tok.admin });
  const lane = list.json.items.find((c) => c.name === 'testchan').lanes[0];
  assert.ok(lane.dead >= 1 && lane.dead_letters.length >= 1, JSON.stringify(lane));
});

test('a 401 pauses the lane: staff see it, an admin resumes it, then it is delivered', async () => {
  plan('Are you there?', { status: 401, error: 'token revoked' }, { status: 200 });
  const m = await inbound(wired, tok.admin, 'Login broken');
  const out = await reply(wired, tok.admin, m.conv, 'Are you there?');
  const paused = await until(async () => {
    const r = await api(wired, 'GET', '/v1/connectors', { token: tok.admin });
    const tc = r.json.items.find((c) => c.name === 'testchan');
    return tc.lanes[0].paused && tc;
  }, 'the lane paused');
  assert.deepEqual([paused.channel, paused.running, paused.delivers], ['email', true, true]);
  assert.equal(paused.lanes[0].name, 'email');
  assert.equal(paused.lanes[0].reason, 'HTTP 401: token revoked');
  assert.match(wired.log, /warn +connector\.paused.*name=testchan.*reason="HTTP 401: token revoked"/);
  // Not for agents; visible to the CLI and to /metrics.
  assert.equal((await api(wired, 'GET', '/v1/connectors', { token: tok.carla })).status, 403);
  const cli = wired.sbctl('connectors', '--url', wired.url, '--token', tok.admin);
  assert.match(cli, /^testchan\s+email\s+running$/m);
  assert.match(cli, /lane email\s+paused .*reason=HTTP 401: token revoked/);
  const metrics = (await api(wired, 'GET', '/metrics')).text;
  assert.match(metrics, /switchboard_outbox_paused\{lane="email"\} 1/);
  // Paused: nothing more is sent, and the reply says why it waits (a failure, not final).
  assert.equal(posts('Are you there?').length, 1);
  const waiting = (await transcript(wired, tok.admin, m.conv)).filter((x) => x.ref === out.id);
  assert.deepEqual(waiting.map((x) => [x.type, x.final, x.reason, x.retry_at]),
    [['delivery_failed', false, 'account paused: HTTP 401: token revoked', null]]);

  assert.equal((await api(wired, 'POST', '/v1/connectors/nope/resume', { token: tok.admin })).status, 404);
  assert.throws(() => wired.sbctl('connectors', 'resume', 'nope', '--url', wired.url, '--token', tok.admin));
  const res = wired.sbctl('connectors', 'resume', 'testchan', '--url', wired.url, '--token', tok.admin);
  assert.match(res, /^testchan: 1 paused lane\(s\) resumed$/m);
  const evs = await outcomes(m.conv, out.id, (e) => e.some((x) => x.type === 'delivered'), 'delivered after resume');
  assert.deepEqual(evs.map((x) => x.type), ['delivery_failed', 'delivered']);
  const after = (await api(wired, 'GET', '/v1/connectors', { token: tok.admin })).json;
  assert.equal(after.items.find((c) => c.name === 'testchan').lanes[0].paused, false);
  assert.match((await api(wired, 'GET', '/metrics')).text, /switchboard_outbox_paused\{lane="email"\} 0/);
});

test('the console shows sent, retrying and failed, and its Retry button works', async () => {
  const m = await inbound(wired, tok.admin, 'Can you resend my receipt?');
  const first = await reply(wired, tok.admin, m.conv, 'Here it is.');
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(`${wired.url}/console/`);
  await page.fill('[data-sb="token-input"]', tok.carla);
  await page.click('[data-sb="signin"]');
  await page.locator('[data-sb="live"][data-state="live"]').waitFor();
  await page.goto(`${wired.url}/console/#/c/${m.conv}`);
  const line = (mid) => page.locator(`[data-sb="conv-message"][data-id="${mid}"] [data-sb="delivery"]`);
  await line(first.id).and(page.locator('[data-state="sent"]')).waitFor();
  assert.equal((await line(first.id).textContent()).trim(), 'sent');

  // Sent from the console: a 503 ("failed: … · retrying at …", no button), then a 422
  // ("failed: …" and a Retry button), then, retried from the button, a 200 ("sent").
  plan('And the invoice.', { status: 503, error: 'busy' }, { status: 422, error: 'mailbox full' },
    { status: 200 });
  await page.fill('[data-sb="reply-input"]', 'And the invoice.');
  await page.click('[data-sb="reply-send"]');
  const sent = page.locator('[data-sb="conv-message"][data-dir="out"]', { hasText: 'And the invoice.' });
  await sent.waitFor();
  const second = await sent.getAttribute('data-id');
  await line(second).and(page.locator('[data-state="retrying"]')).waitFor();
  assert.match(await line(second).textContent(), /failed: HTTP 503: busy · retrying at /);
  assert.equal(await line(second).locator('[data-sb="delivery-retry"]').count(), 0);
  const button = line(second).locator('[data-sb="delivery-retry"]');
  await button.waitFor();
  assert.match(await line(second).textContent(), /failed: HTTP 422: mailbox full/);
  await button.click();
  await line(second).and(page.locator('[data-state="sent"]')).waitFor();
  const evs = (await transcript(wired, tok.admin, m.conv)).filter((x) => x.ref === second);
  assert.deepEqual(evs.map((x) => x.type),
    ['delivery_failed', 'delivery_failed', 'delivery_retry', 'delivered']);
  assert.equal(evs[2].author.name, 'Carla Console');

  // A fresh page rebuilds every state from the transcript.
  await page.reload();
  await line(second).and(page.locator('[data-state="sent"]')).waitFor();
  assert.equal((await line(first.id).textContent()).trim(), 'sent');
  assert.deepEqual(problems, []);
  await context.close();
});
