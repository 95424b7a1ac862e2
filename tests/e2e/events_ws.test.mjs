// SPDX-License-Identifier: MIT
// The staff/bot live feed over WebSocket (GET /v1/events/ws, switchboard.events.v1)
// against the real daemon: live events, resume after a dropped socket (nothing missed,
// nothing twice), one cursor shared with SSE, tokens (bad, visitor, in the subscribe
// frame, revoked while open), bad frames, what each token may see (channel scopes on
// the feeds and the REST API, bots without notes or staff typing), and presence.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Daemon, FrameSocket, api, sse, SBCTL } from './lib.mjs';

let d;
const tok = {};

before(async () => {
  d = await Daemon.start();
  tok.admin = d.token('admin', 'Ada Admin');
  tok.agent = d.token('agent', 'Alan Agent');
  tok.bot = d.token('bot', 'Feed bot');
  tok.email = d.sbctl('token', 'create', '--role', 'agent', '--name', 'Emma Email',
    '--channels', 'email');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

// An events socket (switchboard.events.v1); `closed` resolves to {code, reason, at}.
class Feed extends FrameSocket {
  static open(token, { inQuery = true, header = null } = {}) {
    const q = token && inQuery ? `?access_token=${encodeURIComponent(token)}` : '';
    return this.connect(`${d.url.replace('http', 'ws')}/v1/events/ws${q}`,
      'switchboard.events.v1', header ? { headers: { authorization: header } } : {});
  }

  closeValue(code, reason) { return { code, reason: reason.toString(), at: Date.now() }; }

  next(type, pred, timeoutMs = 4000) { return super.next(type, pred, timeoutMs); }

  // The next event frame whose event matches pred.
  event(pred, timeoutMs) { return this.next('event', (fr) => pred(fr.event), timeoutMs); }

  // Every event frame received so far (not consumed by next()).
  events() { return this.frames.filter((fr) => fr.type === 'event'); }

  async subscribe(after = null, extra = {}) {
    this.send({ type: 'subscribe', after, ...extra });
    return this.next('subscribed');
  }
}

let seq = 0;
async function inbound(text, { channel = 'api', contact } = {}) {
  const body = { channel, contact: contact || { external_id: `ws-${++seq}-${Date.now()}` }, text };
  const r = await api(d, 'POST', '/v1/inbound', { token: tok.bot, body });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

// The server closed the socket after its error frame, with a close frame saying 1008 (policy).
function assertPolicyClose(closed) {
  assert.equal(closed.code, 1008, `closed with ${closed.code}`);
}

test('subscribe gets live events with SSE-style cursors; ping gets pong', async () => {
  const f = await Feed.open(tok.admin);
  f.send({ type: 'subscribe', after: null }); // before the token is verified: held, not lost
  const sub = await f.next('subscribed');
  assert.match(sub.cursor, /^[0-9.-]+$/);
  const m = await inbound('live over ws');
  const fr = await f.event((e) => e.message?.id === m.id);
  assert.equal(fr.event.type, 'message');
  assert.equal(fr.event.conv, m.conv);
  assert.equal(fr.event.message.channel, 'api');
  assert.equal(fr.event.conversation.id, m.conv);
  assert.match(fr.id, /^[0-9.-]+$/);
  f.send({ type: 'ping' });
  await f.next('pong');
  await f.close();
});

test('resume with after = the last id: exactly the missed events, in order, once', async () => {
  const contact = { external_id: `resume-${Date.now()}` };
  const f = await Feed.open(tok.agent);
  await f.subscribe(null);
  const first = await inbound('resume 0', { contact });
  const seen = await f.event((e) => e.message?.id === first.id);
  await f.close();

  const missed = [];
  for (let i = 1; i <= 6; i++) missed.push((await inbound(`resume ${i}`, { contact })).id);

  const g = await Feed.open(tok.agent);
  const sub = await g.subscribe(seen.id);
  assert.equal(sub.cursor, seen.id, 'subscribed at the cursor it resumed from');
  const marker = await inbound('resume marker', { contact });
  await g.event((e) => e.message?.id === marker.id);
  // What came of this conversation before the marker: the six missed, in order, once.
  const ids = g.events().filter((fr) => fr.event.conv === first.conv)
    .map((fr) => fr.event.message.id);
  assert.deepEqual(ids, missed);
  const cursors = g.events().map((fr) => fr.id);
  assert.equal(new Set(cursors).size, cursors.length, 'no event twice');
  await g.close();
});

test('one cursor for SSE and WebSocket: switch either way and resume', async () => {
  const contact = { external_id: `switch-${Date.now()}` };
  const a = await inbound('via sse', { contact });
  const viaSse = await sse(d, tok.admin, {
    after: '0', until: (evs) => evs.some((e) => e.data.message?.id === a.id),
  });
  const last = viaSse.events.find((e) => e.data.message?.id === a.id);
  assert.ok(last && last.id, 'the SSE id');

  const b = await inbound('via ws 1', { contact });
  const c = await inbound('via ws 2', { contact });
  const f = await Feed.open(tok.admin);
  await f.subscribe(last.id);
  const atC = await f.event((e) => e.message?.id === c.id);
  const got = f.events().filter((fr) => fr.event.conv === a.conv).map((fr) => fr.event.message.id);
  assert.deepEqual(got, [b.id], 'b then c; a was not sent again');
  await f.close();

  // Back to SSE from the WebSocket's id of c: only what came after.
  const e = await inbound('via sse again', { contact });
  const back = await sse(d, tok.admin, {
    lastEventId: atC.id, until: (evs) => evs.some((x) => x.data.message?.id === e.id),
  });
  assert.deepEqual(back.events.filter((x) => x.data.conv === a.conv).map((x) => x.data.message.id),
    [e.id]);
});

test('tokens: unknown, visitor-like and missing are refused; a token in subscribe works',
  async () => {
    for (const token of ['sbt_0123', 'vt_0123456789abcdef0123456789abcdef']) {
      const f = await Feed.open(token);
      f.send({ type: 'subscribe', after: null });
      const err = await f.next('error');
      assert.equal(err.code, 'unauthorized');
      assertPolicyClose(await f.closed);
      assert.ok(!f.frames.some((fr) => fr.type === 'subscribed' || fr.type === 'event'));
    }
    const none = await Feed.open(null);
    none.send({ type: 'subscribe', after: null });
    assert.equal((await none.next('error')).code, 'unauthorized');
    assertPolicyClose(await none.closed);

    const inFrame = await Feed.open(tok.agent, { inQuery: false });
    await inFrame.subscribe(null, { token: tok.agent });
    const m = await inbound('token in the frame');
    await inFrame.event((e) => e.message?.id === m.id);
    await inFrame.close();

    // Clients that can set headers (not browsers) use Authorization on the upgrade.
    const inHeader = await Feed.open(null, { header: `Bearer ${tok.agent}` });
    await inHeader.subscribe(null);
    const m2 = await inbound('token in the header');
    await inHeader.event((e) => e.message?.id === m2.id);
    await inHeader.close();
    const badHeader = await Feed.open(null, { header: 'Bearer sbt_nope' });
    badHeader.send({ type: 'subscribe', after: null });
    assert.equal((await badHeader.next('error')).code, 'unauthorized');
    assertPolicyClose(await badHeader.closed);
  });

test('a visitor token is refused', async () => {
  // A visitor token never is a staff/bot token: the lookup finds nothing.
  const f = await Feed.open('vt_' + 'a'.repeat(32));
  assert.equal((await f.next('error')).code, 'unauthorized');
  assertPolicyClose(await f.closed);
});

test('revoking a token closes its open socket within seconds', async () => {
  const t = d.token('agent', 'Leaving Agent');
  const f = await Feed.open(t);
  await f.subscribe(null);
  const started = Date.now();
  d.sbctl('token', 'revoke', t);
  const err = await f.next('error', () => true, 3500);
  assert.equal(err.code, 'unauthorized');
  const closed = await f.closed;
  assertPolicyClose(closed);
  assert.ok(closed.at - started < 3000, `closed after ${closed.at - started} ms`);
});

test('bad frames get error frames and the socket stays open', async () => {
  const f = await Feed.open(tok.agent);
  for (const [frame, code] of [['not json', 'bad_request'], [{ after: null }, 'bad_request'],
    [{ type: 'dance' }, 'unknown_type'], [{ type: 'subscribe', after: 'garbage' }, 'bad_cursor'],
    [{ type: 'subscribe', after: 5 }, 'bad_cursor'], ['[1,2]', 'bad_request']]) {
    f.send(frame);
    const err = await f.next('error');
    assert.equal(err.code, code, JSON.stringify(frame));
    assert.equal(typeof err.message, 'string');
  }
  await f.subscribe(null);
  f.send({ type: 'subscribe', after: null });
  assert.equal((await f.next('error')).code, 'already_subscribed');
  f.send({ type: 'ping' });
  await f.next('pong');
  const m = await inbound('still subscribed');
  await f.event((e) => e.message?.id === m.id);
  await f.close();
});

// A reader that stops reading must not make the daemon buffer without bound.
test('a reader too slow for its queue is closed, and catches up by resuming from its last id',
  async () => {
    const contact = { external_id: `slow-${Date.now()}` };
    const f = await Feed.open(tok.admin);
    await f.subscribe(null);
    const first = await inbound('slow 0', { contact });
    const start = await f.event((e) => e.message?.id === first.id);
    f.ws._socket.pause(); // stop reading: the socket buffers fill, then the server's queue
    // ~160 kB events (attachment metadata within the API's bounds: 20 attachments, URLs up to
    // 8000 bytes): 16 MB, more than the queue and socket buffers.
    const attachments = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}.txt`,
      type: 'text/plain', size: 1, url: `https://files.example/${'a'.repeat(7900)}` }));
    const ids = [];
    for (let i = 0; i < 100; i++) {
      const r = await api(d, 'POST', '/v1/inbound', { token: tok.bot,
        body: { channel: 'api', contact, text: `slow ${i + 1}`, attachments } });
      assert.equal(r.status, 201, r.text);
      ids.push(r.json.id);
    }
    f.ws._socket.resume();
    let timer;
    const closed = await Promise.race([f.closed, new Promise((_, reject) => {
      timer = setTimeout(() => { f.ws.terminate(); reject(new Error('not closed')); }, 10000);
    })]);
    clearTimeout(timer);
    // 1008 when the close frame reaches the reader; one that has not read what was queued
    // and the close within 5 s is hung up on (1006): either way it resumes from its last id.
    assert.ok([1008, 1006].includes(closed.code), `closed with ${closed.code}`);
    assert.match(d.log, /events_ws\.slow/);
    // The conversation's messages (its `created` event comes too).
    const msgs = (feed) => feed.events().filter((fr) => fr.event.conv === first.conv &&
      fr.event.type === 'message');
    let seen = msgs(f);
    assert.ok(seen.length < ids.length, `closed before the end (${seen.length} of ${ids.length})`);
    // What a client does: resume from its last id until it has everything (each history page
    // that does not fit in the queue closes it again, after what did fit).
    let last = seen.length ? seen.at(-1).id : start.id;
    for (let round = 0; round < 20 && seen.length < ids.length; round++) {
      const g = await Feed.open(tok.admin);
      let gone = false;
      g.closed.then(() => { gone = true; });
      await g.subscribe(last);
      const until = Date.now() + 10000;
      while (!gone && !g.frames.some((fr) => fr.event?.message?.id === ids.at(-1)) &&
        Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const got = msgs(g);
      assert.ok(got.length > 0, `round ${round} makes progress`);
      seen = seen.concat(got);
      last = got.at(-1).id;
      if (!gone) await g.close();
    }
    assert.deepEqual(seen.map((fr) => fr.event.message.id), ids, 'every message once, in order');
  });

test('a channels-scoped token sees only its channels, on the feeds and the API', async () => {
  const f = await Feed.open(tok.email);
  await f.subscribe(null);
  const outside = await inbound('on the api channel', { channel: 'api' });
  const inside = await inbound('by email', { channel: 'email' });
  const after = await inbound('api again', { channel: 'api' });
  const inside2 = await inbound('email again', { channel: 'email' });
  await f.event((e) => e.message?.id === inside2.id);
  const seen = f.events().map((fr) => fr.event.conv);
  assert.ok(!seen.includes(outside.conv) && !seen.includes(after.conv), 'no api events');
  assert.ok(f.frames.some((fr) => fr.event?.message?.id === inside.id), 'the email event');
  await f.close();

  // SSE: the same rule.
  const s = await sse(d, tok.email, {
    after: '0', until: (evs) => evs.some((e) => e.data.message?.id === inside2.id),
  });
  assert.ok(s.events.length >= 2);
  assert.ok(s.events.every((e) => e.data.type === 'presence' || e.data.message.channel === 'email'),
    'only email (and presence) on SSE');

  // The REST API.
  const me = await api(d, 'GET', '/v1/me', { token: tok.email });
  assert.deepEqual(me.json.channels, ['email']);
  assert.equal((await api(d, 'GET', '/v1/me', { token: tok.agent })).json.channels, null);
  const list = await api(d, 'GET', '/v1/conversations?status=all&limit=200', { token: tok.email });
  assert.equal(list.status, 200, list.text);
  assert.ok(list.json.items.length >= 1);
  assert.ok(list.json.items.every((c) => c.channel === 'email'));
  assert.ok(list.json.items.some((c) => c.id === inside.conv));
  const other = await api(d, 'GET', '/v1/conversations?channel=api', { token: tok.email });
  assert.equal(other.status, 403);
  for (const p of [`/v1/conversations/${outside.conv}`, `/v1/conversations/${outside.conv}/messages`]) {
    const r = await api(d, 'GET', p, { token: tok.email });
    assert.equal(r.status, 404, `${p}: ${r.text}`);
  }
  const reply = await api(d, 'POST', `/v1/conversations/${outside.conv}/messages`,
    { token: tok.email, body: { text: 'not mine' } });
  assert.equal(reply.status, 404);
  assert.equal((await api(d, 'GET', `/v1/conversations/${inside.conv}`, { token: tok.email })).status,
    200);
  // In scope, the reply gets as far as the channel: no email connector runs, so 422
  // (docs/delivery.md), where a conversation outside the scope was 404.
  const mine = await api(d, 'POST', `/v1/conversations/${inside.conv}/messages`,
    { token: tok.email, body: { text: 'yes, mine' } });
  assert.equal(mine.status, 422, mine.text);
  assert.equal(mine.json.error.code, 'channel_unavailable');

  // Stats: only the scope's channels, and totals that add up to them.
  const all = (await api(d, 'GET', '/v1/stats', { token: tok.agent })).json;
  assert.ok(all.by_channel.api && all.by_channel.email, 'unscoped: every channel');
  const st = await api(d, 'GET', '/v1/stats', { token: tok.email });
  assert.equal(st.status, 200, st.text);
  assert.deepEqual(Object.keys(st.json.by_channel), ['email']);
  assert.equal(st.json.open, st.json.by_channel.email.open);
  assert.equal(st.json.queue_depth, st.json.by_channel.email.queue);
  assert.ok(st.json.open < all.open, 'the api conversations are not counted');
  assert.ok(Object.keys(st.json.first_response_ms).every((ch) => ch === 'email'));

  // sbctl refuses an unknown channel.
  assert.throws(() => execFileSync(SBCTL, ['-c', d.conf, 'token', 'create', '--role', 'agent',
    '--name', 'X', '--channels', 'fax'], { stdio: 'pipe' }), (e) => e.status === 2);
});

test('bots may subscribe: no internal notes, no staff typing; staff see both', async () => {
  const bot = await Feed.open(tok.bot);
  await bot.subscribe(null);
  const staff = await Feed.open(tok.admin);
  await staff.subscribe(null);
  const m = await inbound('for the bot');
  const typing = await api(d, 'POST', `/v1/conversations/${m.conv}/typing`,
    { token: tok.agent, body: { on: true } });
  assert.equal(typing.status, 202, typing.text);
  const note = await api(d, 'POST', `/v1/conversations/${m.conv}/notes`,
    { token: tok.agent, body: { text: 'internal only' } });
  assert.equal(note.status, 201);
  const reply = await api(d, 'POST', `/v1/conversations/${m.conv}/messages`,
    { token: tok.agent, body: { text: 'public answer' } });
  assert.equal(reply.status, 201);

  // Staff: "Alan Agent is replying" reaches WebSocket subscribers, with the channel.
  const t = await staff.event((e) => e.type === 'typing' && e.conv === m.conv);
  assert.equal(t.event.who.name, 'Alan Agent');
  assert.equal(t.event.channel, 'api');
  assert.equal(t.event.on, true);
  await staff.event((e) => e.type === 'note' && e.conv === m.conv);
  await staff.event((e) => e.message?.id === reply.json.id);

  await bot.event((e) => e.message?.id === m.id);
  await bot.event((e) => e.message?.id === reply.json.id);
  // Conversation events (state changes) it does get; nothing else of this conversation came.
  const kinds = bot.frames.filter((fr) => fr.event?.conv === m.conv).map((fr) => fr.event.type);
  assert.ok(kinds.every((k) => k === 'event'), `the bot got: ${kinds}`);
  assert.ok(!bot.frames.some((fr) => ['note', 'typing', 'presence'].includes(fr.event?.type)));
  await bot.close();
  await staff.close();

  // Typing on an unknown conversation is 404 now that it is looked up.
  const none = await api(d, 'POST', '/v1/conversations/c_01jd3k0000000000000000000/typing',
    { token: tok.agent, body: { on: true } });
  assert.equal(none.status, 404);
});

test('presence: staff with an open feed are listed and announced; gone when it closes',
  async () => {
    const watcher = await Feed.open(tok.admin);
    await watcher.subscribe(null);
    const bot = await Feed.open(tok.bot);
    await bot.subscribe(null);
    const pam = d.token('agent', 'Pam Presence');
    const pamId = (await api(d, 'GET', '/v1/me', { token: pam })).json.id;
    const listed = async () => (await api(d, 'GET', '/v1/presence', { token: tok.admin }))
      .json.items.find((p) => p.id === pamId);
    assert.equal(await listed(), undefined);

    const p1 = await Feed.open(pam);
    await p1.subscribe(null);
    const on = await watcher.event((e) => e.type === 'presence' && e.staff.id === pamId);
    assert.equal(on.event.online, true);
    assert.equal(on.event.staff.name, 'Pam Presence');
    let me = await listed();
    assert.equal(me.name, 'Pam Presence');
    assert.equal(me.role, 'agent');
    assert.equal(me.clients, 1);
    assert.equal(typeof me.since, 'number');

    // A second feed (SSE) counts, without a second announcement.
    const ctrl = new AbortController();
    const r = await fetch(`${d.url}/v1/events`, { headers: { authorization: `Bearer ${pam}` },
      signal: ctrl.signal });
    assert.equal(r.status, 200);
    const until = Date.now() + 3000;
    while ((me = await listed()).clients !== 2 && Date.now() < until);
    assert.equal(me.clients, 2);
    ctrl.abort();
    await p1.close();
    const off = await watcher.event((e) => e.type === 'presence' && e.staff.id === pamId &&
      e.online === false);
    assert.equal(off.event.staff.id, pamId);
    assert.equal(await listed(), undefined, 'gone from GET /v1/presence');
    assert.ok(!watcher.frames.some((fr) => fr.event?.type === 'presence' &&
      fr.event.staff.id === pamId), 'one announcement each way');
    assert.ok(!bot.frames.some((fr) => fr.event?.type === 'presence'), 'bots see no presence');

    const mine = await api(d, 'GET', '/v1/presence', { token: tok.admin });
    assert.ok(mine.json.items.some((p) => p.name === 'Ada Admin'), 'the watcher itself is online');
    assert.equal((await api(d, 'GET', '/v1/presence', { token: tok.bot })).status, 403);
    assert.equal((await api(d, 'GET', '/v1/presence')).status, 401);
    await watcher.close();
    await bot.close();
  });
