// SPDX-License-Identifier: MIT
// The staff and bot REST API (docs/contract.md §5) through the real daemon: who am I, the queue
// most urgent first with cursor paging and filters, a bot answering and handing off to
// humans, snoozed conversations waking by themselves, a customer's every conversation
// and contact merges, stats, and the authorization matrix (every role x every endpoint,
// revoked tokens, unknown and visitor tokens).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Daemon, FrameSocket, api, sleep } from './lib.mjs';

let d;
const tok = {};

before(async () => {
  // The test clock (core/sys.h) lets a test move the daemon's time instead of sleeping.
  d = await Daemon.start('site default e2e-site-secret http://allowed.example',
    { testClock: true });
  tok.admin = d.token('admin', 'Ada Admin');
  tok.agent = d.token('agent', 'Alan Agent');
  tok.exec = d.token('exec', 'Erin Exec');
  tok.bot = d.token('bot', 'FAQ bot');
  tok.revoked = d.token('agent', 'Gone Agent');
  d.sbctl('token', 'revoke', tok.revoked);
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

// Moves the daemon's clock forward by ms (so two events get distinct times).
const tick = (ms) => d.setClockOffset(d.clockOffset + ms);

const NO_CONTACT = `ct_01jd3k${'0'.repeat(20)}`; // well-formed, never created
let seq = 0;
// A customer message from a new (or the given) customer; returns the stored message.
async function inbound(text, contact = { external_id: `cust-${++seq}-${Date.now()}` }, extra = {}) {
  const r = await api(d, 'POST', '/v1/inbound', { token: tok.bot, body: { contact, text, ...extra } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const get = (path, token = tok.agent) => api(d, 'GET', path, { token });
const post = (path, body, token = tok.agent) => api(d, 'POST', path, { token, body });

async function listAll(query, limit) {
  const ids = [];
  let cursor = null;
  for (let pages = 0; pages < 100; pages++) {
    const q = new URLSearchParams({ ...query, limit: String(limit) });
    if (cursor) q.set('cursor', cursor);
    const r = await get(`/v1/conversations?${q}`);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.items.length <= limit);
    ids.push(...r.json.items.map((c) => c.id));
    cursor = r.json.next;
    if (!cursor) return ids;
  }
  throw new Error('paging does not end');
}

async function transcript(conv) {
  const r = await get(`/v1/conversations/${conv}/messages?limit=1000`);
  assert.equal(r.status, 200, r.text);
  return r.json.items;
}

test('GET /v1/me tells every token who it is', async () => {
  for (const [role, kind, name, prefix] of [['admin', 'staff', 'Ada Admin', 'st_'],
    ['agent', 'staff', 'Alan Agent', 'st_'], ['exec', 'staff', 'Erin Exec', 'st_'],
    ['bot', 'bot', 'FAQ bot', 'bot_']]) {
    const r = await get('/v1/me', tok[role]);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.kind, kind);
    assert.equal(r.json.role, role);
    assert.equal(r.json.name, name);
    assert.ok(r.json.id.startsWith(prefix), r.json.id);
    assert.equal(typeof r.json.created_at, 'number');
  }
});

test('the queue lists the most urgent first, then answered ones, across pages', async () => {
  const before = await listAll({ status: 'open' }, 200);
  const convs = [];
  for (let i = 0; i < 6; i++) {
    convs.push((await inbound(`queue test ${i}`)).conv);
    tick(5);
  }
  const me = (await get('/v1/me')).json;
  // 1 is answered, 2 resolved, 3 claimed by the agent, 5 made urgent.
  assert.equal((await post(`/v1/conversations/${convs[1]}/messages`, { text: 'on it' })).status, 201);
  assert.equal((await post(`/v1/conversations/${convs[2]}/resolve`, {})).status, 200);
  assert.equal((await post(`/v1/conversations/${convs[3]}/claim`, {})).status, 200);
  assert.equal((await post(`/v1/conversations/${convs[5]}/priority`,
    { priority: 'urgent' })).status, 200);

  const mine = new Set(convs);
  for (const limit of [1, 2, 50]) {
    const ids = (await listAll({ status: 'open' }, limit)).filter((id) => mine.has(id));
    assert.deepEqual(ids, [convs[5], convs[0], convs[3], convs[4], convs[1]], `limit ${limit}`);
  }
  const all = await listAll({ status: 'open' }, 3);
  assert.equal(all.length, before.length + 5, 'each open conversation exactly once');
  assert.equal(new Set(all).size, all.length);

  const claimed = await listAll({ status: 'open', assignee: 'me' }, 50);
  assert.deepEqual(claimed, [convs[3]]);
  assert.deepEqual(await listAll({ status: 'open', assignee: me.id }, 50), [convs[3]]);
  assert.ok(!(await listAll({ assignee: 'none' }, 50)).includes(convs[3]));
  assert.ok((await listAll({ status: 'resolved' }, 50)).includes(convs[2]));
  assert.ok((await listAll({ status: 'all' }, 7)).includes(convs[2]));
  assert.deepEqual((await listAll({ status: 'open', channel: 'email' }, 50)), []);

  const page = await get('/v1/conversations?limit=1');
  const c = page.json.items[0];
  assert.equal(c.id, convs[5], 'the urgent one is first');
  for (const k of ['channel', 'status', 'priority', 'assignee', 'contact', 'created_at',
    'updated_at', 'last_seq', 'awaiting_since', 'sla', 'tags']) assert.ok(k in c, k);

  for (const q of ['status=closed', 'limit=0', 'limit=201', 'limit=x', 'assignee=bob',
    'channel=fax', 'cursor=%21%21']) {
    const r = await get(`/v1/conversations?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(r.json.error.code, 'bad_request');
  }
  const other = await get(`/v1/conversations?status=resolved&cursor=${page.json.next}`);
  assert.equal(other.status, 400, 'a cursor belongs to its own list');
});

test('a bot answers and hands off to humans; its answer does not stop the clock',
  async () => {
    const m = await inbound('what are your opening hours?');
    const r = await post(`/v1/conversations/${m.conv}/messages`, { text: '9 to 5' }, tok.bot);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.author.type, 'bot');
    assert.equal(r.json.dir, 'out');
    const n = await post(`/v1/conversations/${m.conv}/notes`, { text: 'asked twice' }, tok.bot);
    assert.equal(n.status, 201, n.text);
    assert.equal(n.json.kind, 'note');
    let c = (await get(`/v1/conversations/${m.conv}`)).json;
    assert.equal(c.awaiting_since, m.ts, 'still awaiting a human');

    assert.equal((await post(`/v1/conversations/${m.conv}/messages`, { text: 'hi' })).status, 201);
    c = (await get(`/v1/conversations/${m.conv}`)).json;
    assert.equal(c.awaiting_since, null);
    assert.equal((await post(`/v1/conversations/${m.conv}/resolve`, {})).status, 200);

    const h = await post(`/v1/conversations/${m.conv}/handoff`, { reason: 'wants a human' },
      tok.bot);
    assert.equal(h.status, 200, h.text);
    assert.equal(h.json.event.type, 'handoff');
    assert.equal(h.json.event.author.type, 'bot');
    assert.equal(h.json.event.reason, 'wants a human');
    assert.equal(h.json.conversation.status, 'open');
    assert.equal(typeof h.json.conversation.awaiting_since, 'number');
    assert.ok((await listAll({ status: 'open' }, 200)).includes(m.conv), 'back in the queue');
    const events = (await transcript(m.conv)).filter((e) => e.type === 'handoff');
    assert.equal(events.length, 1);

    const bad = await post(`/v1/conversations/${m.conv}/handoff`, { reason: 42 }, tok.bot);
    assert.equal(bad.status, 400);
    const missing = await post('/v1/conversations/c_01jd3k0000000000000000000/handoff', {},
      tok.bot);
    assert.equal(missing.status, 404);
  });

test('a snoozed conversation wakes by itself and returns to the queue, once', async () => {
  const m = await inbound('call me back in a moment');
  assert.equal((await post(`/v1/conversations/${m.conv}/messages`, { text: 'sure' })).status, 201);
  const s = await post(`/v1/conversations/${m.conv}/snooze`, { until: Date.now() + 1500 });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.conversation.status, 'snoozed');
  assert.ok(!(await listAll({ status: 'open' }, 200)).includes(m.conv));
  assert.ok((await listAll({ status: 'snoozed' }, 200)).includes(m.conv));
  let c;
  for (let i = 0; i < 60; i++) {
    c = (await get(`/v1/conversations/${m.conv}`)).json;
    if (c.status === 'open') break;
    await sleep(100);
  }
  assert.equal(c.status, 'open', 'woke within a few seconds');
  assert.equal(c.snooze_until, null);
  assert.equal(typeof c.awaiting_since, 'number', 'due for a reply again');
  assert.ok((await listAll({ status: 'open' }, 200)).includes(m.conv));
  // Still exactly one wake-up in later rounds: e2e/clock shows it with a barrier.
  const woke = (await transcript(m.conv)).filter((e) => e.type === 'woke');
  assert.equal(woke.length, 1);
  assert.equal(woke[0].author.type, 'system');
});

test('a contact shows every conversation; merging moves them, with an event', async () => {
  const email = `dora.${Date.now()}@example.com`;
  const a1 = await inbound('my order is late', { email, name: 'Dora' }, { channel: 'email' });
  tick(5);
  const a2 = await inbound('hello again', { email }, { channel: 'api' });
  const handle = `dora-${Date.now()}`;
  const b1 = await inbound('@acme where is it?', { external_id: handle }, { channel: 'mastodon' });
  const dora = a1.author.id;
  const other = b1.author.id;
  assert.equal(a2.author.id, dora);

  let r = await get(`/v1/contacts/${dora}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.id, dora);
  assert.equal(r.json.name, 'Dora');
  assert.equal(r.json.email, email);
  assert.deepEqual(r.json.conversations.map((c) => c.id), [a2.conv, a1.conv], 'newest first');
  assert.deepEqual(r.json.conversations.map((c) => c.channel), ['api', 'email']);
  assert.ok(r.json.handles.includes(`email:${email}`));

  const denied = await post(`/v1/contacts/${dora}/merge`, { other }, tok.agent);
  assert.equal(denied.status, 403);
  r = await post(`/v1/contacts/${dora}/merge`, { other }, tok.admin);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.moved, [b1.conv]);

  r = await get(`/v1/contacts/${dora}`);
  assert.deepEqual(new Set(r.json.conversations.map((c) => c.id)),
    new Set([a1.conv, a2.conv, b1.conv]));
  assert.ok(r.json.handles.includes(`mastodon:${handle}`));
  const moved = (await get(`/v1/conversations/${b1.conv}`)).json;
  assert.equal(moved.contact.id, dora);
  assert.equal(moved.contact.name, 'Dora');
  const merged = (await transcript(b1.conv)).filter((e) => e.type === 'merged');
  assert.equal(merged.length, 1);
  assert.equal(merged[0].from, other);
  assert.equal(merged[0].into, dora);
  assert.equal(merged[0].author.type, 'staff');
  const msgs = (await transcript(b1.conv)).filter((e) => e.kind === 'message');
  assert.deepEqual(msgs.map((x) => x.text), ['@acme where is it?'], 'nothing lost');

  // The customer writes again from the merged handle: it is Dora now.
  const again = await inbound('any news?', { external_id: handle }, { channel: 'mastodon' });
  assert.equal(again.author.id, dora);
  // A bot that kept the old contact id posts to the contact it was merged into.
  const byOldId = await inbound('still me', { id: other }, { channel: 'mastodon' });
  assert.equal(byOldId.author.id, dora);
  assert.equal(byOldId.conv, again.conv);
  const gone = await get(`/v1/contacts/${other}`);
  assert.equal(gone.status, 200);
  assert.equal(gone.json.merged_into, dora);
  assert.deepEqual(gone.json.conversations, []);

  // Retrying is harmless; nonsense is refused.
  r = await post(`/v1/contacts/${dora}/merge`, { other }, tok.admin);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.moved, []);
  assert.equal((await transcript(b1.conv)).filter((e) => e.type === 'merged').length, 1);
  for (const [path, body, status] of [
    [`/v1/contacts/${dora}/merge`, { other: dora }, 400],
    [`/v1/contacts/${dora}/merge`, { other: 'bob' }, 400],
    [`/v1/contacts/${dora}/merge`, { other: NO_CONTACT }, 404],
    [`/v1/contacts/${NO_CONTACT}/merge`, { other: dora }, 404]]) {
    const x = await post(path, body, tok.admin);
    assert.equal(x.status, status, `${path} ${JSON.stringify(body)}: ${x.text}`);
  }
  assert.equal((await get(`/v1/contacts/${NO_CONTACT}`)).status, 404);
  assert.equal((await get('/v1/contacts/nope')).status, 404);
});

test('stats count the queue and first-response times per channel', async () => {
  const m = await inbound('stats please', { external_id: `stats-${Date.now()}` },
    { channel: 'webchat' });
  let s = (await get('/v1/stats')).json;
  const depth = s.queue_depth;
  assert.ok(depth >= 1);
  assert.ok(s.open >= depth);
  assert.ok(s.by_channel.webchat.queue >= 1);
  assert.equal(s.breaches, 0);
  const before = s.first_response_ms.webchat?.n ?? 0;
  tick(30);
  assert.equal((await post(`/v1/conversations/${m.conv}/messages`, { text: 'here' })).status, 201);
  s = (await get('/v1/stats')).json;
  assert.equal(s.queue_depth, depth - 1);
  const fr = s.first_response_ms.webchat;
  assert.equal(fr.n, before + 1);
  assert.ok(fr.p50 >= 0 && fr.p90 >= fr.p50);
  for (const k of ['open', 'pending', 'snoozed', 'resolved']) {
    assert.equal(typeof s.by_status[k], 'number', k);
  }
});

// A visitor's widget token (from the visitor WebSocket's welcome).
async function visitorToken() {
  const ws = new WebSocket(`${d.url.replace('http', 'ws')}/v1/visitor/ws?site=default`,
    'switchboard.visitor.v1', { headers: { origin: 'http://allowed.example' } });
  const welcome = await new Promise((resolve, reject) => {
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', site: 'default', token: null })));
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === 'welcome') resolve(f);
    });
    ws.on('error', reject);
    setTimeout(() => reject(new Error('no welcome')), 3000);
  });
  ws.close();
  return welcome.token;
}

test('authorization: every role x every endpoint, revoked, unknown and visitor tokens',
  async () => {
    const conv = (await inbound('matrix')).conv;
    const fresh = async () => (await inbound('matrix')).conv;
    const contact = (await get(`/v1/conversations/${conv}`)).json.contact.id;
    // [name, method, path(), body(), who may]: bots only inbound, replies, notes, handoff and
    // who-am-I; agents and execs everything else but merges and steals; admins everything.
    const staff = ['agent', 'exec', 'admin'];
    const everyone = ['bot', ...staff];
    const endpoints = [
      ['me', 'GET', () => '/v1/me', null, everyone],
      ['inbound', 'POST', () => '/v1/inbound',
        () => ({ contact: { external_id: 'matrix-x' }, text: 'hi' }), everyone],
      ['list', 'GET', () => '/v1/conversations', null, staff],
      ['get', 'GET', () => `/v1/conversations/${conv}`, null, staff],
      ['messages', 'GET', () => `/v1/conversations/${conv}/messages`, null, staff],
      ['reply', 'POST', () => `/v1/conversations/${conv}/messages`, () => ({ text: 'x' }),
        everyone],
      ['note', 'POST', () => `/v1/conversations/${conv}/notes`, () => ({ text: 'x' }), everyone],
      ['handoff', 'POST', () => `/v1/conversations/${conv}/handoff`, () => ({}), everyone],
      ['claim', 'POST', async () => `/v1/conversations/${await fresh()}/claim`, () => ({}),
        staff],
      ['release', 'POST', () => `/v1/conversations/${conv}/release`, () => ({}), staff],
      ['resolve', 'POST', () => `/v1/conversations/${conv}/resolve`, () => ({}), staff],
      ['reopen', 'POST', () => `/v1/conversations/${conv}/reopen`, () => ({}), staff],
      ['snooze', 'POST', () => `/v1/conversations/${conv}/snooze`,
        () => ({ until: Date.now() + 3600000 }), staff],
      ['priority', 'POST', () => `/v1/conversations/${conv}/priority`,
        () => ({ priority: 'high' }), staff],
      ['tags', 'POST', () => `/v1/conversations/${conv}/tags`, () => ({ tags: ['x'] }), staff],
      ['stats', 'GET', () => '/v1/stats', null, staff],
      ['presence', 'GET', () => '/v1/presence', null, staff],
      ['contact', 'GET', () => `/v1/contacts/${contact}`, null, staff],
      ['merge', 'POST', async () => `/v1/contacts/${contact}/merge`,
        async () => ({ other: (await inbound('to merge')).author.id }), ['admin']],
    ];
    const roles = ['bot', 'agent', 'exec', 'admin'];
    const visitor = await visitorToken();
    for (const [name, method, pathFn, bodyFn, allowed] of endpoints) {
      for (const role of roles) {
        const path = await pathFn();
        const body = bodyFn ? await bodyFn() : undefined;
        const r = await api(d, method, path, { token: tok[role], body });
        if (allowed.includes(role)) {
          assert.ok(r.status >= 200 && r.status < 300, `${role} ${name}: ${r.status} ${r.text}`);
        } else {
          assert.equal(r.status, 403, `${role} ${name}: ${r.status} ${r.text}`);
          assert.equal(r.json.error.code, 'forbidden');
        }
      }
      for (const [who, token] of [['revoked', tok.revoked], ['unknown', 'sbt_0123'],
        ['visitor', visitor], ['none', undefined]]) {
        const r = await api(d, method, await pathFn(), { token, body: bodyFn ? await bodyFn() : undefined });
        assert.equal(r.status, 401, `${who} ${name}: ${r.status}`);
        assert.equal(r.json.error.code, 'unauthorized');
      }
    }

    // Stealing a claim is for admins only.
    const held = await fresh();
    assert.equal((await post(`/v1/conversations/${held}/claim`, {}, tok.exec)).status, 200);
    const steal = await post(`/v1/conversations/${held}/claim`, { steal: true }, tok.agent);
    assert.equal(steal.status, 403);
    assert.equal(steal.json.error.code, 'forbidden');
    const plain = await post(`/v1/conversations/${held}/claim`, {}, tok.agent);
    assert.equal(plain.status, 409);
    const stolen = await post(`/v1/conversations/${held}/claim`, { steal: true }, tok.admin);
    assert.equal(stolen.status, 200, stolen.text);
    assert.equal(stolen.json.event.previous, (await get('/v1/me', tok.exec)).json.id);
  });

// ---- issue 8: the API holds under bad input (docs/hardening-api.md) ----

// A 400 (or other status) whose error names the field.
function refused(r, status, code, field, what) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.json?.error?.code, code, `${what}: ${r.text}`);
  if (field) assert.ok(r.json.error.message.includes(field), `${what}: names ${field}: ${r.text}`);
}

test('inbound with conv: only in the token\'s scope, as its own customer, on its channel',
  async () => {
    const apiBot = d.sbctl('bot', 'add', '--name', 'Api-only bot', '--channels', 'api');
    const emailAgent = d.sbctl('token', 'create', '--role', 'agent', '--name', 'Mail agent',
      '--channels', 'email');
    const handle = `visitor-${Date.now()}`;
    const victim = await inbound('I need help with my card',
      { external_id: handle, name: 'Vera Victim' }, { channel: 'webchat' });
    const conv = victim.conv;
    const send = (token, body) => api(d, 'POST', '/v1/inbound',
      { token, body: { conv, text: 'transfer all my money to Mallory', ...body } });
    const mallory = { email: `mallory.${Date.now()}@example.com`, name: 'Mallory' };

    // Outside the token's channels the conversation does not exist for it.
    refused(await send(apiBot, { contact: mallory }), 404, 'not_found', conv, 'api-scoped bot');
    refused(await send(apiBot, { contact: mallory, channel: 'api' }), 404, 'not_found', conv,
      'api-scoped bot naming its channel');
    refused(await send(emailAgent, { contact: { id: victim.author.id }, channel: 'email' }), 404,
      'not_found', conv, 'email-scoped agent');
    // In scope, but another customer, or another channel: refused, and nothing created.
    refused(await send(tok.bot, { contact: mallory }), 422, 'contact_mismatch', conv,
      'another contact by email');
    refused(await send(tok.bot, { contact: { id: NO_CONTACT } }), 422, 'contact_mismatch', conv,
      'another contact by id');
    refused(await send(tok.bot, { contact: { external_id: 'someone-else' } }), 422,
      'contact_mismatch', conv, 'another handle');
    refused(await send(tok.bot, { contact: { id: victim.author.id }, channel: 'api' }), 422,
      'channel_mismatch', 'webchat', 'another channel');
    refused(await send(tok.bot, { contact: { id: victim.author.id, name: 'Mallory' },
      conv: `c_01jd3k${'0'.repeat(20)}` }), 404, 'not_found', null, 'an unknown conversation');

    let c = (await get(`/v1/conversations/${conv}`)).json;
    assert.equal(c.contact.name, 'Vera Victim', 'the contact name is untouched');
    assert.equal(c.contact.id, victim.author.id);
    assert.deepEqual((await transcript(conv)).filter((m) => m.kind === 'message').map((m) => m.text),
      ['I need help with my card'], 'nothing was appended');

    // Its own customer (by id or by handle) continues it, on the conversation's channel.
    const byId = await send(tok.bot, { contact: { id: victim.author.id }, text: 'by id' });
    assert.equal(byId.status, 201, byId.text);
    assert.equal(byId.json.conv, conv);
    assert.equal(byId.json.channel, 'webchat');
    assert.equal(byId.json.author.id, victim.author.id);
    const byHandle = await send(tok.bot, { contact: { external_id: handle, name: 'Vera V.' },
      text: 'by handle' });
    assert.equal(byHandle.status, 201, byHandle.text);
    assert.equal(byHandle.json.conv, conv);
    c = (await get(`/v1/conversations/${conv}`)).json;
    assert.equal(c.contact.name, 'Vera V.', 'the customer may rename themself');
  });

test('inbound: addresses, names, ids, attachments and ext are checked and bounded', async () => {
  const ok = { contact: { email: `plus+tag.${Date.now()}@example.com`, name: 'Pat' }, text: 'hi' };
  const post1 = (body) => api(d, 'POST', '/v1/inbound', { token: tok.bot, body });
  const cases = [
    [{ ...ok, contact: { email: 'victim@example.com\r\nBcc: all@example.com' } }, 'contact.email'],
    [{ ...ok, contact: { email: '<img src=x onerror=alert(1)>@example.com' } }, 'contact.email'],
    [{ ...ok, contact: { email: '"quoted"@example.com' } }, 'contact.email'],
    [{ ...ok, contact: { email: 'no-at-sign' } }, 'contact.email'],
    [{ ...ok, contact: { email: `${'a'.repeat(250)}@example.com` } }, 'contact.email'],
    [{ ...ok, contact: { email: 'x@example.com', name: 'Eve\r\nBcc: x@example.com' } },
      'contact.name'],
    [{ ...ok, contact: { email: 'x@example.com', name: 'n'.repeat(201) } }, 'contact.name'],
    [{ ...ok, contact: { external_id: 'a\u0000b' } }, null],
    [{ ...ok, contact: { external_id: 'x'.repeat(201) } }, 'contact.external_id'],
    [{ ...ok, contact: { id: 'ct_nope' } }, 'contact.id'],
    [{ ...ok, subject: 'Hello\r\nBcc: all@example.com' }, 'subject'],
    [{ ...ok, subject: 's'.repeat(999) }, 'subject'],
    [{ ...ok, external_id: 'e'.repeat(201) }, 'external_id'],
    [{ ...ok, client_id: 'c\nd' }, 'client_id'],
    [{ ...ok, channel: 'fax' }, 'channel'],
    [{ ...ok, attachments: Array.from({ length: 10000 }, () => ({ name: 'a' })) }, 'attachments'],
    [{ ...ok, attachments: [{ name: 'a', url: 'javascript:alert(1)' }] }, 'attachments[0].url'],
    [{ ...ok, attachments: [{ name: 'n'.repeat(100000) }] }, 'attachments[0].name'],
    [{ ...ok, attachments: [{ name: 'a', size: -1 }] }, 'attachments[0].size'],
    [{ ...ok, attachments: [{ name: 'a', size: 1e300 }] }, 'attachments[0].size'],
    [{ ...ok, attachments: [{ name: 'a', type: 'text/html; x=<b>' }] }, 'attachments[0].type'],
    [{ ...ok, attachments: [{ name: 'a', onload: 'x' }] }, 'attachments[0]'],
    [{ ...ok, attachments: ['a.pdf'] }, 'attachments[0]'],
    [{ ...ok, ext: { deep: { er: 1 } } }, 'ext.deep'],
    [{ ...ok, ext: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) },
      'ext'],
    [{ ...ok, ext: { big: 'b'.repeat(1001) } }, 'ext.big'],
  ];
  for (const [body, field] of cases) {
    refused(await post1(body), 400, 'bad_request', field, JSON.stringify(body).slice(0, 100));
  }
  refused(await post1({ ...ok, text: 't'.repeat(8 * 1024 + 1) }), 413, 'too_large', 'text',
    'a text over 8 KiB');

  // A contact id that does not exist is refused, not created.
  refused(await post1({ contact: { id: NO_CONTACT }, text: 'phantom' }), 422, 'unknown_contact',
    NO_CONTACT, 'unknown contact.id');
  assert.equal((await get(`/v1/contacts/${NO_CONTACT}`)).status, 404, 'no phantom contact');

  // What is within bounds is stored as sent; the address is the lookup key, lower-cased.
  const att = [{ name: 'invoice.pdf', type: 'application/pdf', size: 1234,
    url: 'https://files.example.com/i.pdf' }];
  const good = await post1({ ...ok, subject: 'Invoice', attachments: att,
    ext: { ref: 'A-1', n: 2 } });
  assert.equal(good.status, 201, good.text);
  assert.deepEqual(good.json.attachments, att);
  assert.deepEqual(good.json.ext, { ref: 'A-1', n: 2 });
  const contact = (await get(`/v1/contacts/${good.json.author.id}`)).json;
  assert.equal(contact.email, ok.contact.email);
  assert.ok(contact.handles.includes(`email:${ok.contact.email.toLowerCase()}`));
  const byId = await post1({ contact: { id: good.json.author.id }, text: 'again, by id' });
  assert.equal(byId.status, 201, byId.text);
  assert.equal(byId.json.conv, good.json.conv);
});

test('state changes: flags are booleans, tags and snooze times are bounded', async () => {
  const conv = (await inbound('bounds')).conv;
  const act = (what, body, token = tok.agent) => post(`/v1/conversations/${conv}/${what}`, body,
    token);
  // Only JSON booleans steal a claim; anything else is refused and the claim stays.
  assert.equal((await act('claim', {}, tok.exec)).status, 200);
  for (const steal of [null, 0, 1, 'no', 'false', 'true', [], {}]) {
    if (steal === null) {
      const r = await act('claim', { steal }, tok.admin);
      assert.equal(r.status, 409, `steal: null is "not given": ${r.text}`);
      continue;
    }
    refused(await act('claim', { steal }, tok.admin), 400, 'bad_request', 'steal',
      `steal: ${JSON.stringify(steal)}`);
  }
  const exec = (await get('/v1/me', tok.exec)).json.id;
  assert.equal((await get(`/v1/conversations/${conv}`)).json.assignee, exec, 'still held');
  for (const force of ['yes', 1, 'false']) {
    refused(await post(`/v1/conversations/${conv}/messages`, { text: 'x', force }), 400,
      'bad_request', 'force', `force: ${JSON.stringify(force)}`);
  }
  refused(await post(`/v1/conversations/${conv}/typing`, { on: 'no' }), 400, 'bad_request',
    'on', 'typing on: "no"');

  // Tags: at most 50, each 1..64 bytes of one line, no repeats.
  for (const [tags, field] of [[Array.from({ length: 10000 }, (_, i) => `t${i}`), 'tags'],
    [['x'.repeat(100 * 1024)], 'tags[0]'], [{ a: 1 }, 'tags'], [['ok', 'ok'], 'tags[1]'],
    [['a\nb'], 'tags[0]'], [[''], 'tags[0]'], [[42], 'tags[0]'], [undefined, 'tags']]) {
    refused(await act('tags', { tags }), 400, 'bad_request', field, `tags ${field}`);
  }
  const tagged = await act('tags', { tags: ['vip', 'billing'] });
  assert.equal(tagged.status, 200, tagged.text);
  assert.deepEqual(tagged.json.conversation.tags, ['vip', 'billing']);

  // Snooze: an integer time in ms, in the future, at most a year away.
  const now = Date.now();
  for (const until of [1e300, '99999999999999', now - 1000, now + 400 * 86400000, now + 0.5,
    null, undefined]) {
    refused(await act('snooze', { until }), 400, 'bad_request', 'until',
      `until ${JSON.stringify(until)}`);
  }
  assert.equal((await get(`/v1/conversations/${conv}`)).json.status, 'open');
  const s = await act('snooze', { until: now + 3600000 });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.conversation.snooze_until, now + 3600000);
  refused(await act('priority', { priority: 7 }), 400, 'bad_request', 'priority', 'priority');
});

test('malformed seqs, counts and ids are 400 or 404, never 503', async () => {
  const m = await inbound('seqs');
  const msgs = (q) => get(`/v1/conversations/${m.conv}/messages?${q}`);
  for (const after of ['-1', '1-1-1', '99999999999999999999-0', '-', 'zzz', '1-',
    '18446744073709551616-0', '+1']) {
    refused(await msgs(`after=${encodeURIComponent(after)}`), 400, 'bad_request', 'after',
      `after=${after}`);
  }
  for (const limit of ['0', '1001', '+5', ' 5', '5x', '1e2', '-1']) {
    refused(await msgs(`limit=${encodeURIComponent(limit)}`), 400, 'bad_request', 'limit',
      `limit=${limit}`);
  }
  for (const after of ['0', m.seq, m.seq.split('-')[0], '18446744073709551615-0']) {
    const r = await msgs(`after=${after}`);
    assert.equal(r.status, 200, `after=${after}: ${r.text}`);
  }
  for (const basedOn of ['zzz', '-1', '1-1-1', '99999999999999999999-0']) {
    refused(await post(`/v1/conversations/${m.conv}/messages`, { text: 'x', based_on: basedOn }),
      400, 'bad_request', 'based_on', `based_on ${basedOn}`);
  }
  const r = await post(`/v1/conversations/${m.conv}/messages`, { text: 'ok', based_on: m.seq });
  assert.equal(r.status, 201, r.text);
  for (const q of ['limit=%2B5', 'limit=1e2', 'cursor=' + Buffer.from('queue:1:c_x\n').toString('base64url')]) {
    refused(await get(`/v1/conversations?${q}`), 400, 'bad_request', null, q);
  }
  for (const p of ['/v1/conversations/c_%41%42', '/v1/conversations/c_x/messages',
    '/v1/conversations/%2e%2e/claim', '/v1/contacts/ct_%41', `/v1/contacts/${'ct_'.padEnd(300, 'z')}`]) {
    const x = p.endsWith('/claim') ? await post(p, {}) : await get(p);
    assert.equal(x.status, 404, `${p}: ${x.text}`);
  }
});

test('a visitor\'s web chat: nobody else\'s words appear in it as the visitor\'s', async () => {
  const v = await FrameSocket.connect(`${d.url.replace('http', 'ws')}/v1/visitor/ws?site=default`,
    'switchboard.visitor.v1', { headers: { origin: 'http://allowed.example' } });
  try {
    v.send({ type: 'hello', site: 'default', token: null, last_seq: null, name: 'Wendy' });
    await v.next('welcome');
    v.send({ type: 'message', client_id: 'w-1', text: 'hello from the widget' });
    const { conv } = await v.next('ack');
    const apiBot = d.sbctl('bot', 'add', '--name', 'Form relay', '--channels', 'api');
    const injected = 'please send my password to mallory@example.com';
    for (const [token, contact, status] of [[apiBot, { email: 'mallory@example.com' }, 404],
      [tok.bot, { email: 'mallory@example.com', name: 'Wendy' }, 422],
      [tok.admin, { external_id: 'mallory' }, 422]]) {
      const r = await api(d, 'POST', '/v1/inbound', { token, body: { conv, contact, text: injected } });
      assert.equal(r.status, status, r.text);
    }
    // A staff reply after the refused posts: the visitor gets it, and nothing before it.
    assert.equal((await post(`/v1/conversations/${conv}/messages`, { text: 'How can I help?' }))
      .status, 201);
    await v.next('message', (f) => f.text === 'How can I help?');
    assert.ok(!v.frames.some((f) => f.text === injected), 'the widget never shows it');
    const c = (await get(`/v1/conversations/${conv}`)).json;
    assert.equal(c.contact.name, 'Wendy');
    assert.ok(!(await transcript(conv)).some((m) => m.text === injected));
  } finally {
    await v.close();
  }
});
