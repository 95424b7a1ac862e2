// SPDX-License-Identifier: MIT
// The visitor WebSocket protocol (switchboard.visitor.v1) against the real daemon:
// hello/welcome, acks only after Redis has the message, duplicate client_id, two tabs,
// resume after a dropped socket, staff replies, bad frames, origins, identity
// verification and rate limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Daemon, FrameSocket, api, sse } from './lib.mjs';

const SECRET = 'site-secret-for-tests';
let d;
let admin;

before(async () => {
  // The site's origins are set after the port is known: start, then read d.url.
  d = await Daemon.start(`site default ${SECRET} http://allowed.example`);
  admin = d.token('admin', 'staff');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, d.log);
  }
});

// A visitor socket (switchboard.visitor.v1); `closed` resolves to the close code.
class Visitor extends FrameSocket {
  static open(opts = {}) {
    const headers = opts.origin === null ? {} : { origin: opts.origin || 'http://allowed.example' };
    return this.connect(`${d.url.replace('http', 'ws')}/v1/visitor/ws?site=default`,
      'switchboard.visitor.v1', { headers });
  }

  async hello(extra = {}) {
    this.send({ type: 'hello', site: 'default', token: null, last_seq: null, ...extra });
    return this.next('welcome');
  }
}

test('wrong origin is refused at the upgrade', async () => {
  await assert.rejects(Visitor.open({ origin: 'http://evil.example' }), (e) => e.status === 403);
});

test('message before hello gets an error frame', async () => {
  const v = await Visitor.open();
  v.send({ type: 'message', client_id: 'x1', text: 'hi' });
  const e = await v.next('error');
  assert.equal(e.code, 'not_ready');
  await v.close();
});

test('hello, message, ack, duplicate client_id, staff reply, notes stay internal', async () => {
  const v = await Visitor.open();
  const w = await v.hello({ name: 'Vera' });
  assert.match(w.token, /^vt_[0-9a-f]{32}$/);
  assert.equal(w.conv, null);
  assert.deepEqual(w.history, []);
  assert.ok('expected_reply_ms' in w);

  v.send({ type: 'message', client_id: 'c-1', text: 'Where is my teapot?' });
  const ack = await v.next('ack');
  assert.equal(ack.client_id, 'c-1');
  assert.match(ack.id, /^m_/);
  assert.match(ack.conv, /^c_/);

  // The ack means Redis has it: the REST API sees it at once.
  const msgs = await api(d, 'GET', `/v1/conversations/${ack.conv}/messages`, { token: admin });
  assert.equal(msgs.status, 200);
  assert.deepEqual(msgs.json.items.filter((m) => m.kind === 'message').map((m) => m.text),
    ['Where is my teapot?']);
  const conv = await api(d, 'GET', `/v1/conversations/${ack.conv}`, { token: admin });
  assert.equal(conv.json.channel, 'webchat');
  assert.equal(conv.json.contact.name, 'Vera');

  v.send({ type: 'message', client_id: 'c-1', text: 'Where is my teapot?' });
  const ack2 = await v.next('ack');
  assert.equal(ack2.id, ack.id, 'same client_id, same message');
  const again = await api(d, 'GET', `/v1/conversations/${ack.conv}/messages`, { token: admin });
  assert.equal(again.json.items.filter((m) => m.kind === 'message').length, 1);

  const note = await api(d, 'POST', `/v1/conversations/${ack.conv}/notes`,
    { token: admin, body: { text: 'internal: VIP' } });
  assert.equal(note.status, 201);
  const reply = await api(d, 'POST', `/v1/conversations/${ack.conv}/messages`,
    { token: admin, body: { text: 'On its way!', client_id: 'r-1' } });
  assert.equal(reply.status, 201);
  const got = await v.next('message', (f) => f.dir === 'out');
  assert.equal(got.text, 'On its way!');
  assert.equal(got.author.type, 'staff');

  // State changes the customer should know about arrive as status frames.
  const claim = await api(d, 'POST', `/v1/conversations/${ack.conv}/claim`, { token: admin });
  assert.equal(claim.status, 200);
  const claimed = await v.next('status', (f) => f.event === 'claimed');
  // Frames arrive in order: the claim came after the note would have.
  assert.ok(!v.frames.some((f) => f.text === 'internal: VIP'), 'notes never reach the visitor');
  assert.equal(claimed.status, 'open');
  assert.ok('expected_reply_ms' in claimed);
  const resolve = await api(d, 'POST', `/v1/conversations/${ack.conv}/resolve`, { token: admin });
  assert.equal(resolve.status, 200);
  const resolved = await v.next('status', (f) => f.event === 'resolved');
  assert.equal(resolved.status, 'resolved');
  await v.close();
});

test('two tabs see each other and the reply; resume delivers what was missed', async () => {
  const a = await Visitor.open();
  const w = await a.hello();
  const b = await Visitor.open();
  const wb = await b.hello({ token: w.token });
  assert.equal(wb.token, null, 'a known token is kept');

  a.send({ type: 'message', client_id: 't-1', text: 'from tab A' });
  const ack = await a.next('ack');
  const echo = await b.next('message', (f) => f.text === 'from tab A');
  assert.equal(echo.id, ack.id);
  assert.equal(echo.dir, 'in');

  const r1 = await api(d, 'POST', `/v1/conversations/${ack.conv}/messages`,
    { token: admin, body: { text: 'reply 1' } });
  assert.equal(r1.status, 201);
  assert.equal((await a.next('message', (f) => f.text === 'reply 1')).dir, 'out');
  assert.equal((await b.next('message', (f) => f.text === 'reply 1')).dir, 'out');
  await a.close();
  await b.close();

  // Offline: two replies arrive. On reconnect with last_seq, exactly those come back.
  for (const t of ['while away 1', 'while away 2']) {
    const r = await api(d, 'POST', `/v1/conversations/${ack.conv}/messages`,
      { token: admin, body: { text: t } });
    assert.equal(r.status, 201);
  }
  const c = await Visitor.open();
  const wc = await c.hello({ token: w.token, last_seq: r1.json.seq });
  assert.equal(wc.conv, ack.conv);
  assert.deepEqual(wc.history.map((m) => m.text), ['while away 1', 'while away 2']);
  // Without last_seq, the whole public history.
  const e = await Visitor.open();
  const we = await e.hello({ token: w.token });
  assert.deepEqual(we.history.map((m) => m.text),
    ['from tab A', 'reply 1', 'while away 1', 'while away 2']);
  await c.close();
  await e.close();
});

test('bad frames get error frames and never crash the server', async () => {
  const v = await Visitor.open();
  await v.hello();
  v.send('{"type": "message", ');
  assert.equal((await v.next('error')).code, 'bad_request');
  v.send({ type: 'dance' });
  assert.equal((await v.next('error')).code, 'bad_request');
  v.send({ type: 'message', client_id: 'big', text: 'x'.repeat(9000) });
  assert.equal((await v.next('error')).code, 'too_large');
  v.send({ type: 'message', text: 'no client id' });
  assert.equal((await v.next('error')).code, 'bad_request');
  v.ws.send(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), { binary: false });
  const r = await Promise.race([v.next('error').then((f) => f.code), v.closed.then((c) => c)]);
  assert.ok(r === 'bad_request' || r === 1007, `invalid UTF-8 refused (${r})`);
  // Over the 64 KiB frame limit: the socket is closed with 1009.
  const big = await Visitor.open();
  await big.hello();
  big.send({ type: 'message', client_id: 'huge', text: 'y'.repeat(70 * 1024) });
  assert.equal(await big.closed, 1009);
  const h = await api(d, 'GET', '/healthz');
  assert.equal(h.status, 200);
});

test('user_hash verifies the user; a bad one stays anonymous', async () => {
  const hash = crypto.createHmac('sha256', SECRET).update('user-77').digest('hex');
  const v1 = await Visitor.open();
  const w1 = await v1.hello({ user_id: 'user-77', user_hash: hash, name: 'Ursula' });
  assert.equal(w1.verified, true);
  v1.send({ type: 'message', client_id: 'u-1', text: 'verified hello' });
  const ack = await v1.next('ack');
  await v1.close();
  // The same user from another browser (new token) continues the same conversation.
  const v2 = await Visitor.open();
  const w2 = await v2.hello({ user_id: 'user-77', user_hash: hash });
  assert.equal(w2.conv, ack.conv);
  assert.deepEqual(w2.history.map((m) => m.text), ['verified hello']);
  await v2.close();
  // A forged hash: an error frame, and no access to that user's conversation.
  const v3 = await Visitor.open();
  v3.send({ type: 'hello', site: 'default', user_id: 'user-77', user_hash: 'ab'.repeat(32) });
  assert.equal((await v3.next('error')).code, 'forbidden');
  const w3 = await v3.next('welcome');
  assert.equal(w3.verified, false);
  assert.equal(w3.conv, null);
  assert.deepEqual(w3.history, []);
  await v3.close();
});

test('a visitor sending too fast is rate limited with a retry time', async () => {
  const v = await Visitor.open();
  await v.hello();
  for (let i = 0; i < 25; i++) v.send({ type: 'message', client_id: `rl-${i}`, text: `m${i}` });
  const e = await v.next('error', (f) => f.code === 'rate_limited');
  assert.ok(e.retry_after_ms > 0);
  assert.match(e.client_id, /^rl-/);
  await v.close();
});

test('typing goes both ways: staff to the visitor, the visitor to the staff feed', async () => {
  const v = await Visitor.open();
  await v.hello({ name: 'Tia' });
  v.send({ type: 'message', client_id: 'ty-1', text: 'hello?' });
  const ack = await v.next('ack');
  const feed = sse(d, admin, {
    until: (ev) => ev.some((e) => e.data.type === 'typing' && e.data.who.type === 'contact'),
  });
  await feed.connected;
  const r = await api(d, 'POST', `/v1/conversations/${ack.conv}/typing`,
    { token: admin, body: { on: true } });
  assert.equal(r.status, 202);
  const t = await v.next('typing');
  assert.equal(t.name, 'staff');
  assert.equal(t.on, true);
  // The visitor's typing is throttled to one event per 1.5 s: keep typing until it shows.
  let shown = false;
  const typed = feed.then((x) => { shown = true; return x; });
  while (!shown) {
    v.send({ type: 'typing', on: true });
    await Promise.race([typed, new Promise((r) => setTimeout(r, 250))]);
  }
  const got = await typed;
  const e = got.events.find((x) => x.data.type === 'typing' && x.data.who.type === 'contact');
  assert.equal(e.data.conv, ack.conv);
  assert.equal(e.data.who.name, 'Tia');
  await v.close();
});

test('many sockets from one IP share a per-IP limit', async () => {
  // Each socket stays under its own burst (20); together they pass the IP's (100).
  const socks = [];
  for (let i = 0; i < 8; i++) {
    const v = await Visitor.open();
    await v.hello();
    socks.push(v);
  }
  socks.forEach((v, i) => {
    for (let k = 0; k < 15; k++) v.send({ type: 'message', client_id: `ip-${i}-${k}`, text: 'x' });
  });
  const limited = await Promise.any(socks.map((v) => v.next('error',
    (f) => f.code === 'rate_limited', 5000)));
  assert.ok(limited.retry_after_ms > 0);
  await Promise.all(socks.map((v) => v.close()));
});
