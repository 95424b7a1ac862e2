// SPDX-License-Identifier: MIT
// End to end through the real daemon with its embedded Redis: a message posted to
// /v1/inbound is read back over REST and live over SSE; an SSE client that reconnects
// with Last-Event-ID gets exactly what it missed; bad input gets docs/contract.md §5 errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Daemon, api, sse, sleep } from './lib.mjs';

let d;
let token;

before(async () => {
  d = await Daemon.start();
  token = d.token('admin', 'e2e-admin');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

test('healthz, readyz and metrics answer', async () => {
  const h = await api(d, 'GET', '/healthz');
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
  const r = await api(d, 'GET', '/readyz');
  assert.equal(r.status, 200);
  const m = await api(d, 'GET', '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.text, /^switchboard_rss_bytes \d+$/m);
  assert.match(m.text, /^switchboard_redis_up 1$/m);
  assert.match(m.text, /^switchboard_queue_depth \d+$/m);
  assert.match(m.text, /switchboard_redis_command_seconds_bucket\{le="\+Inf"\} \d+/);
});

test('inbound message is stored, deduplicated and read back over REST', async () => {
  const body = {
    channel: 'api', contact: { email: 'Alice@Example.com', name: 'Alice' },
    text: 'My invoice is wrong', external_id: 'form-1',
  };
  const r1 = await api(d, 'POST', '/v1/inbound', { token, body });
  assert.equal(r1.status, 201, r1.text);
  const m = r1.json;
  assert.match(m.id, /^m_[0-9a-z]{26}$/);
  assert.match(m.conv, /^c_[0-9a-z]{26}$/);
  assert.match(m.seq, /^\d+-\d+$/);
  assert.equal(m.kind, 'message');
  assert.equal(m.dir, 'in');
  assert.equal(m.text, body.text);
  assert.equal(m.author.type, 'contact');
  assert.match(m.author.id, /^ct_/);

  const r2 = await api(d, 'POST', '/v1/inbound', { token, body });
  assert.equal(r2.status, 200, 'same external_id is not stored twice');
  assert.equal(r2.json.id, m.id);
  assert.equal(r2.json.seq, m.seq);

  const c = await api(d, 'GET', `/v1/conversations/${m.conv}`, { token });
  assert.equal(c.status, 200);
  assert.equal(c.json.id, m.conv);
  assert.equal(c.json.status, 'open');
  assert.equal(c.json.channel, 'api');
  assert.equal(c.json.contact.name, 'Alice');
  assert.equal(c.json.message_count, 1);
  assert.equal(typeof c.json.awaiting_since, 'number');

  const msgs = await api(d, 'GET', `/v1/conversations/${m.conv}/messages`, { token });
  assert.equal(msgs.status, 200);
  const texts = msgs.json.items.filter((x) => x.kind === 'message').map((x) => x.text);
  assert.deepEqual(texts, [body.text], 'exactly one copy of the message');
  assert.equal(msgs.json.items[0].kind, 'event');
  assert.equal(msgs.json.items[0].type, 'created');

  // The same customer (email is case-insensitive) writing again lands in the same conversation.
  const r3 = await api(d, 'POST', '/v1/inbound', {
    token, body: { contact: { email: 'alice@example.com' }, text: 'Any news?' },
  });
  assert.equal(r3.status, 201);
  assert.equal(r3.json.conv, m.conv);

  const page = await api(d, 'GET', `/v1/conversations/${m.conv}/messages?after=${m.seq}&limit=1`,
    { token });
  assert.equal(page.status, 200);
  assert.equal(page.json.items.length, 1);
  assert.equal(page.json.items[0].text, 'Any news?');
  assert.equal(page.json.next, null);
});

test('SSE delivers live events and resumes with Last-Event-ID without gaps or duplicates',
  async () => {
    // Start a live stream, then post one message and wait for its event.
    const live = sse(d, token, { until: (ev) => ev.some((e) => e.data.message?.text === 'live-1') });
    await live.connected;
    const p1 = await api(d, 'POST', '/v1/inbound', {
      token, body: { contact: { external_id: 'u-42', name: 'Bob' }, text: 'live-1' },
    });
    assert.equal(p1.status, 201);
    const got = await live;
    assert.equal(got.status, 200);
    const ev1 = got.events.find((e) => e.data.message?.text === 'live-1');
    assert.ok(ev1, 'the live stream saw the message');
    assert.equal(ev1.data.conv, p1.json.conv);
    assert.equal(ev1.data.type, 'message');
    assert.equal(ev1.data.conversation.id, p1.json.conv);
    assert.ok(ev1.id, 'events carry an id');

    // While disconnected, two more messages arrive.
    for (const t of ['missed-1', 'missed-2']) {
      const r = await api(d, 'POST', '/v1/inbound', {
        token, body: { contact: { external_id: 'u-42' }, text: t },
      });
      assert.equal(r.status, 201);
    }
    const lastId = got.events[got.events.length - 1].id;
    const resumed = await sse(d, token, {
      lastEventId: lastId, until: (ev) => ev.some((e) => e.data.message?.text === 'missed-2'),
    });
    const texts = resumed.events.filter((e) => e.data.type === 'message')
      .map((e) => e.data.message.text);
    assert.deepEqual(texts, ['missed-1', 'missed-2'], 'exactly the missed messages');
    assert.ok(!resumed.events.some((e) => e.id === lastId), 'nothing delivered twice');

    // after= works the same way (for clients that cannot set headers).
    const viaQuery = await sse(d, token, {
      after: lastId, until: (ev) => ev.some((e) => e.data.message?.text === 'missed-2'),
    });
    assert.deepEqual(viaQuery.events.filter((e) => e.data.type === 'message')
      .map((e) => e.data.message.text), ['missed-1', 'missed-2']);
  });

test('bad input gets docs/contract.md §5 errors', async () => {
  const noTok = await api(d, 'POST', '/v1/inbound', { body: { text: 'x' } });
  assert.equal(noTok.status, 401);
  assert.equal(noTok.json.error.code, 'unauthorized');
  const badTok = await api(d, 'GET', '/v1/conversations/c_01jd3k0000000000000000000', {
    token: 'sbt_nope',
  });
  assert.equal(badTok.status, 401);
  assert.equal(badTok.json.error.code, 'unauthorized');

  const bad = await api(d, 'POST', '/v1/inbound', { token, raw: '{"text": "hi",\n  "contact": }' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'bad_request');
  assert.equal(bad.json.error.line, 2);
  assert.ok(bad.json.error.column > 0);
  assert.match(bad.json.error.message, /line 2/);

  // The server answers 413 from the Content-Length, reads and drops the body, then closes:
  // a client still uploading gets the answer, every time (no reset before it).
  for (let i = 0; i < 8; i++) {
    const big = await api(d, 'POST', '/v1/inbound', {
      token, raw: JSON.stringify({ text: 'x'.repeat(2 * 1024 * 1024) }),
    });
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, 'too_large');
  }

  const longText = await api(d, 'POST', '/v1/inbound', {
    token, body: { contact: { external_id: 'u-1' }, text: 'y'.repeat(9000) },
  });
  assert.equal(longText.status, 413);

  const noContact = await api(d, 'POST', '/v1/inbound', { token, body: { text: 'hello' } });
  assert.equal(noContact.status, 400);
  assert.match(noContact.json.error.message, /contact/);

  const missing = await api(d, 'GET', '/v1/conversations/c_01jd3k0000000000000000000', { token });
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, 'not_found');
  const missingMsgs = await api(d, 'GET',
    '/v1/conversations/c_01jd3k0000000000000000000/messages', { token });
  assert.equal(missingMsgs.status, 404);

  const badCursor = await sse(d, token, { after: 'garbage' });
  assert.equal(badCursor.status, 400);

  const unknown = await api(d, 'GET', '/v1/nope', { token });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'not_found');
});

test('a revoked token stops working at once', async () => {
  const t = d.token('agent', 'temp');
  const ok = await api(d, 'GET', '/v1/conversations/c_01jd3k0000000000000000000', { token: t });
  assert.equal(ok.status, 404);
  d.sbctl('token', 'revoke', t);
  const gone = await api(d, 'GET', '/v1/conversations/c_01jd3k0000000000000000000', { token: t });
  assert.equal(gone.status, 401);
});

test('an idle event stream stays open (lws would close it after 5 s)', async () => {
  const started = Date.now();
  const r = await sse(d, token, { timeoutMs: 6500 });
  assert.equal(r.status, 200);
  assert.ok(Date.now() - started >= 6400, 'the stream lasted until the client left');
  assert.doesNotMatch(d.log, /level=err/, 'lws reported no error');
});

test('revoking a token ends its open event stream', async () => {
  const t = d.token('agent', 'leaver');
  const started = Date.now();
  const pending = sse(d, t, { timeoutMs: 10000 });
  await pending.connected;
  d.sbctl('token', 'revoke', t);
  const r = await pending;
  assert.equal(r.status, 200);
  assert.ok(Date.now() - started < 6000, 'the server ended the stream within seconds');
});

test('embedded Redis keeps data in AOF under data_dir', async () => {
  assert.ok(fs.existsSync(`${d.dir}/var/redis.sock`), 'unix socket under data_dir');
  const files = fs.readdirSync(`${d.dir}/var`, { recursive: true }).map(String);
  assert.ok(files.some((f) => f.includes('appendonly')), `AOF files present: ${files}`);
});
