// SPDX-License-Identifier: MIT
// Signed inbound hooks through the real daemon (docs/hooks.md, connectors/hook/): a signed
// post becomes a conversation and its thread appends to it; forged, stale, future and
// unsigned posts are 401 and store nothing; a replayed webhook-id is 200 and nothing new;
// an unknown hook is 404, a bad body 400. Staff answers reach the reply-url signed (checked
// here with our own HMAC), a 500 is retried and then delivered once, a 400 fails for good
// with its reason on the message. The fifteen-line relay (tests/peers/relay.mjs) bridges a
// toy network both ways. Configuration errors are reported by --check as file:line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { Daemon, api, freePort, BIN } from './lib.mjs';

const SECRET = 'whsec_c3dpdGNoYm9hcmQtaG9vay1leGFtcGxlLWtleQ==';
const RAW_SECRET = 'a-raw-relay-secret';
const keyOf = (s) => (s.startsWith('whsec_') ? Buffer.from(s.slice(6), 'base64') : Buffer.from(s));
const sign = (secret, id, ts, body) => `v1,${createHmac('sha256', keyOf(secret))
  .update(Buffer.concat([Buffer.from(`${id}.${ts}.`), Buffer.from(body)])).digest('base64')}`;

let d; // the daemon, on the test clock
let tok;
let relay; // the relay process
const net = { got: [] }; // the toy network: takes answers at /replies

// The reply-url of hook `forum`: records each POST (headers, raw body) and answers by plan.
const receiver = { got: [], plans: new Map() };
receiver.server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => { raw += c; });
  req.on('end', () => {
    const body = JSON.parse(raw);
    receiver.got.push({ headers: req.headers, raw, body });
    const plan = receiver.plans.get(body.text) || [];
    const step = (plan.length > 1 ? plan.shift() : plan[0]) || { status: 200 };
    res.writeHead(step.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(step.status < 300 ? { id: `fr-${receiver.got.length}` } : { error: step.error }));
  });
});
const got = (text) => receiver.got.filter((g) => g.body.text === text);

net.server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => { raw += c; });
  req.on('end', () => {
    net.got.push(JSON.parse(raw));
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: `net-reply-${net.got.length}` }));
  });
});

async function until(cond, what, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${d?.log ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const listen = (s) => new Promise((r) => s.listen(0, '127.0.0.1', () => r(s.address().port)));

before(async () => {
  const rport = await listen(receiver.server);
  const nport = await listen(net.server);
  const relayPort = await freePort();
  d = await Daemon.start(
    `hook forum ${SECRET} http://127.0.0.1:${rport}/replies\n` +
      `hook relay ${RAW_SECRET} http://127.0.0.1:${relayPort}/out\n` +
      'outbox_retry_base 1s\noutbox_retry_max 1s\noutbox_attempts 3\n',
    { testClock: true });
  tok = d.token('admin', 'Carla Console');
  const script = new URL('../peers/relay.mjs', import.meta.url).pathname;
  relay = spawn(process.execPath, [script], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, PORT: String(relayPort), HOOK_URL: `${d.url}/v1/hooks/relay`,
      SECRET: RAW_SECRET, NET_URL: `http://127.0.0.1:${nport}/replies` },
  });
  relay.url = `http://127.0.0.1:${relayPort}`;
  await until(async () => {
    try { await fetch(`${relay.url}/ping`, { method: 'POST', body: '' }); return true; } catch { return false; }
  }, 'the relay to listen');
});

after(async () => {
  relay?.kill();
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
  receiver.server.close();
  net.server.close();
});

let posts = 0;
// POSTs body (object or raw string) to /v1/hooks/<name>, signed unless told otherwise.
async function hook(name, body, { secret = SECRET, id, ts, headers, sig } = {}) {
  const raw = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const wid = id ?? `wh_${++posts}_${Date.now()}`;
  const t = String(ts ?? Math.floor(d.now() / 1000));
  const h = headers ?? {
    'webhook-id': wid, 'webhook-timestamp': t, 'webhook-signature': sig ?? sign(secret, wid, t, raw),
  };
  return api(d, 'POST', `/v1/hooks/${name}`, { raw, headers: h });
}

const transcript = async (conv) =>
  (await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: tok })).json.items;
const messages = async (conv) => (await transcript(conv)).filter((x) => x.kind === 'message');

async function reply(conv, text) {
  const r = await api(d, 'POST', `/v1/conversations/${conv}/messages`, { token: tok, body: { text } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const outcomes = (conv, mid, cond, what) => until(async () => {
  const evs = (await transcript(conv)).filter((x) => x.ref === mid);
  return cond(evs) && evs;
}, what);

let uniq = 0;
const post = (over = {}) => ({
  thread: `t-${++uniq}`, author: { id: `u-${uniq}`, name: `Ann ${uniq}` }, text: `Hello ${uniq}`,
  id: `p-${uniq}`, ...over,
});

test('a signed post becomes a conversation; the same thread appends to it', async () => {
  const p = post();
  const r = await hook('forum', p);
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.duplicate, false);
  assert.match(r.json.id, /^m_/);
  assert.match(r.json.conv, /^c_/);
  const c = await api(d, 'GET', `/v1/conversations/${r.json.conv}`, { token: tok });
  assert.equal(c.json.channel, 'hook');
  assert.equal(c.json.contact.name, p.author.name);
  const [m] = await messages(r.json.conv);
  assert.equal(m.text, p.text);
  assert.deepEqual(m.ext, { hook: 'forum', thread: p.thread, id: p.id, author_id: p.author.id });
  // The same author in the same thread: the same conversation.
  const r2 = await hook('forum', { ...p, text: 'Any news?', id: `${p.id}-2` });
  assert.equal(r2.status, 201, r2.text);
  assert.equal(r2.json.conv, r.json.conv);
  assert.deepEqual((await messages(r.json.conv)).map((x) => x.text), [p.text, 'Any news?']);
  // Another thread: another conversation. No id: deduplicated on the webhook-id.
  const r3 = await hook('forum', { ...p, thread: `${p.thread}-b`, id: undefined, text: 'Other topic' });
  assert.equal(r3.status, 201, r3.text);
  assert.notEqual(r3.json.conv, r.json.conv);
});

test('forged, stale, future and unsigned posts are 401 and store nothing', async () => {
  const p = post();
  const raw = JSON.stringify(p);
  const refused = async (opts, why) => {
    const r = await hook('forum', raw, opts);
    assert.equal(r.status, 401, `${why}: ${r.text}`);
    assert.equal(r.json.error.code, 'unauthorized');
    assert.ok(r.json.error.message, why);
  };
  await refused({ secret: 'whsec_Zm9yZ2VkLWtleQ==' }, 'another key');
  await refused({ sig: sign(SECRET, 'other-id', Math.floor(d.now() / 1000), raw) }, 'another id');
  await refused({ sig: 'v1,' }, 'empty signature');
  await refused({ headers: {} }, 'no headers');
  await refused({ headers: { 'webhook-id': 'x', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) } },
    'no signature header');
  // The daemon's clock moves 6 minutes on: a post signed now is stale.
  d.setClockOffset(6 * 60 * 1000);
  await refused({ ts: Math.floor(Date.now() / 1000) }, 'stale');
  d.setClockOffset(-6 * 60 * 1000);
  await refused({ ts: Math.floor(Date.now() / 1000) }, 'from the future');
  d.setClockOffset(0);
  assert.match(d.log, /hook\.refused hook=forum .*reason="webhook-timestamp too old"/);
  // Nothing was stored: the same post, signed, is new.
  const ok = await hook('forum', raw);
  assert.equal(ok.status, 201, ok.text);
  assert.equal(ok.json.duplicate, false);
  assert.equal((await messages(ok.json.conv)).length, 1);
});

test('a replayed webhook-id is 200 with the same ids and nothing new', async () => {
  const raw = JSON.stringify(post());
  const opts = { id: 'wh_replayed', ts: Math.floor(d.now() / 1000) };
  const first = await hook('forum', raw, opts);
  assert.equal(first.status, 201, first.text);
  const again = await hook('forum', raw, opts);
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.json, { ...first.json, duplicate: true });
  // Without an id in the body, too.
  const noid = JSON.stringify(post({ id: undefined }));
  const a = await hook('forum', noid, { id: 'wh_noid', ts: opts.ts });
  const b = await hook('forum', noid, { id: 'wh_noid', ts: opts.ts });
  assert.deepEqual([a.status, b.status], [201, 200]);
  assert.equal(b.json.id, a.json.id);
  assert.equal((await messages(first.json.conv)).length, 1);
  assert.equal((await messages(a.json.conv)).length, 1);
});

test('an unknown hook is 404; a bad body is 400 saying what is wrong', async () => {
  const r = await hook('nope', post());
  assert.equal(r.status, 404, r.text);
  const bad = async (body, re) => {
    const x = await hook('forum', body);
    assert.equal(x.status, 400, x.text);
    assert.equal(x.json.error.code, 'bad_request');
    assert.match(x.json.error.message, re);
  };
  await bad('not json', /JSON object/);
  await bad('[1,2]', /JSON object/);
  await bad(post({ thread: undefined }), /thread is required/);
  await bad(post({ thread: '' }), /thread/);
  await bad(post({ author: 'ann' }), /author must be an object/);
  await bad(post({ author: { name: 'Ann' } }), /author\.id is required/);
  await bad(post({ author: { id: 'u', name: 7 } }), /author\.name must be/);
  await bad(post({ text: 42 }), /text is required/);
  await bad(post({ thread: 'x'.repeat(257) }), /thread .*256 bytes/);
  await bad(post({ text: 'a\u0000b' }), /u0000 is not allowed/);
  await bad(Buffer.concat([Buffer.from('{"thread":"t","author":{"id":"u"},"text":"'),
    Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), /JSON object/); // invalid UTF-8
});

// The signature of an answer the daemon sent, checked as a relay would.
function verified(g, secret) {
  const { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': sig } = g.headers;
  assert.ok(Math.abs(Number(ts) - Math.floor(d.now() / 1000)) <= 300, 'timestamp is now');
  assert.ok(sig.split(' ').includes(sign(secret, id, ts, g.raw)), `signature ${sig} verifies`);
  return id;
}

test('a staff answer reaches the reply-url, signed, and comes back delivered', async () => {
  const p = post();
  const r = await hook('forum', p);
  const out = await reply(r.json.conv, 'Hi Ann, it ships today.');
  const evs = await outcomes(r.json.conv, out.id, (e) => e.some((x) => x.type === 'delivered'), 'delivered');
  assert.deepEqual(evs.map((x) => x.type), ['delivered']);
  const [g] = got('Hi Ann, it ships today.');
  assert.equal(verified(g, SECRET), out.id, 'webhook-id is our message id');
  assert.deepEqual(g.body, {
    type: 'message', id: out.id, conv: r.json.conv, thread: p.thread, in_reply_to: p.id,
    text: 'Hi Ann, it ships today.', author: { name: 'Carla Console' },
  });
  assert.equal(evs[0].provider_id, `fr-${receiver.got.indexOf(g) + 1}`);
});

test('a 500 from the receiver is retried, then delivered once', async () => {
  receiver.plans.set('Second try.', [{ status: 500, error: 'busy' }, { status: 200 }]);
  const r = await hook('forum', post());
  const out = await reply(r.json.conv, 'Second try.');
  const evs = await outcomes(r.json.conv, out.id, (e) => e.some((x) => x.type === 'delivered'), 'retried');
  assert.deepEqual(evs.map((x) => [x.type, x.final ?? null]), [['delivery_failed', false], ['delivered', null]]);
  assert.equal(evs[0].reason, 'HTTP 500: busy');
  const tries = got('Second try.');
  assert.equal(tries.length, 2);
  assert.deepEqual(tries.map((g) => verified(g, SECRET)), [out.id, out.id], 'the same webhook-id');
});

test('a 400 from the receiver fails for good, with its reason on the message', async () => {
  receiver.plans.set('Refused.', [{ status: 400, error: 'thread is locked' }]);
  const r = await hook('forum', post());
  const out = await reply(r.json.conv, 'Refused.');
  const evs = await outcomes(r.json.conv, out.id, (e) => e.some((x) => x.type === 'delivery_failed'), 'failed');
  assert.deepEqual(evs.map((x) => [x.type, x.final]), [['delivery_failed', true]]);
  assert.equal(evs[0].reason, 'HTTP 400: thread is locked');
  assert.equal(got('Refused.').length, 1);
});

test('the relay bridges a toy network both ways', async () => {
  const p = post();
  const r = await fetch(`${relay.url}/in`, { method: 'POST', body: JSON.stringify(p) });
  assert.equal(r.status, 201, await r.clone().text());
  const { conv } = await r.json();
  assert.equal((await messages(conv))[0].text, p.text);
  const out = await reply(conv, 'Answered through the relay.');
  const evs = await outcomes(conv, out.id, (e) => e.some((x) => x.type === 'delivered'), 'relayed');
  const n = await until(() => net.got.find((x) => x.id === out.id), 'the answer on the network');
  assert.equal(n.thread, p.thread);
  assert.equal(n.in_reply_to, p.id);
  assert.equal(n.text, 'Answered through the relay.');
  assert.equal(evs.find((x) => x.type === 'delivered').provider_id, `net-reply-${net.got.indexOf(n) + 1}`);
  // A forged answer to the relay is refused there.
  const forged = await fetch(`${relay.url}/out`, { method: 'POST', body: '{}',
    headers: { 'webhook-id': 'x', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' } });
  assert.equal(forged.status, 401);
});

test('--check reports bad hook lines as file:line', () => {
  const dir = fs.mkdtempSync(path.join(process.env.SB_TEST_TMP || os.tmpdir(), 'hook-check-'));
  const conf = path.join(dir, 'bad.conf');
  fs.writeFileSync(conf, [
    'hook good whsec_c2VjcmV0 https://relay.example.com/a', // 1: fine
    'hook Bad! s https://relay.example.com/a', // 2: name
    'hook empty whsec_ https://relay.example.com/a', // 3: secret
    'hook noturl s ftp://relay.example.com/a', // 4: url
    'hook good other https://relay.example.com/b', // 5: duplicate
    'hook short s', // 6: words
    'hook blank "" https://relay.example.com/c', // 7: empty secret
  ].join('\n') + '\n');
  const r = spawnSync(BIN, ['--check', '-c', conf], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 2, r.stderr);
  assert.ok(!r.stderr.includes(`${conf}:1:`), r.stderr);
  assert.match(r.stderr, new RegExp(`${conf}:2: hook: the name 'Bad!'`));
  assert.match(r.stderr, new RegExp(`${conf}:3: hook: the secret`));
  assert.match(r.stderr, new RegExp(`${conf}:4: hook: the reply-url`));
  assert.match(r.stderr, new RegExp(`${conf}:5: hook: duplicate 'good' \\(first at ${conf}:1\\)`));
  assert.match(r.stderr, new RegExp(`${conf}:6: hook:`));
  assert.match(r.stderr, new RegExp(`${conf}:7: hook: the secret`));
});
