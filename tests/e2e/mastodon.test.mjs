// SPDX-License-Identifier: MIT
// The Mastodon connector end to end (docs/mastodon.md): the real daemon follows a fake
// Mastodon server (tests/peers/mastodon.mjs, written from the API documentation) through
// its streaming API and notifications catch-up, and answers through the outbox with
// POST /api/v1/statuses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, Daemon, api } from './lib.mjs';
import { FakeMastodon } from '../peers/mastodon.mjs';

let fake, d, tok, tmp, tokenFile;

async function until(cond, what, ms = 15000, daemon = d) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${daemon?.log.slice(-4000) ?? ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const control = async (what, body) => {
  const r = await fetch(`${fake.url}/_control/${what}`, body === undefined ? {} : {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return r.json();
};
const mention = (from, text, extra = {}) => control('mention', { from, text, ...extra });

const transcript = async (conv) =>
  (await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: tok })).json.items;

// Every stored mastodon message, with its conversation.
async function messages() {
  const r = await api(d, 'GET', '/v1/conversations?status=all&channel=mastodon&limit=200', { token: tok });
  assert.equal(r.status, 200, r.text);
  const out = [];
  for (const c of r.json.items) {
    for (const m of await transcript(c.id)) {
      if (m.kind === 'message' && m.dir === 'in') out.push({ ...m, conv: c.id });
    }
  }
  return out;
}
const stored = async (statusId) => (await messages()).filter((m) => m.ext?.status_id === statusId);
const arrived = (statusId, what = `status ${statusId}`) =>
  until(async () => (await stored(statusId))[0], what);

async function reply(conv, text) {
  const r = await api(d, 'POST', `/v1/conversations/${conv}/messages`, { token: tok, body: { text, force: true } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}
const outcomes = (conv, mid, cond, what) => until(async () => {
  const evs = (await transcript(conv)).filter((x) => x.ref === mid);
  return cond(evs) && evs;
}, what);
const delivered = (conv, mid) => outcomes(conv, mid, (e) => e.some((x) => x.type === 'delivered'), `${mid} delivered`);
const postedBy = async (mid) => (await control('statuses')).filter((s) => s.idempotency_key?.startsWith(mid));

const config = (extra = '') => `mastodon main ${fake.url} ${tokenFile}\nmastodon_stall 2s\n` +
  `mastodon_pause_retry 300ms\noutbox_retry_base 1s\noutbox_retry_max 1s\n${extra}`;

before(async () => {
  fake = await new FakeMastodon({ heartbeatMs: 300, maxCharacters: 120 }).start();
  const base = process.env.SB_TEST_TMP || os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  tmp = fs.mkdtempSync(path.join(base, 'sb-mastodon-'));
  tokenFile = path.join(tmp, 'token');
  fs.writeFileSync(tokenFile, 'tok-good\n');
  d = await Daemon.start(config(), { testClock: true });
  tok = d.token('admin', 'Ada Admin');
  await until(async () => (await control('state')).streams > 0, 'the stream');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log.slice(-12000)}`);
  }
  await fake?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('a mention becomes a conversation within a second, and the answer goes under it', async () => {
  const t0 = Date.now();
  const { status } = await mention({ username: 'alice', display_name: 'Alice A.' },
    'my order #1234 is late, see https://example.com/orders/1234\n\nplease help #support');
  const m = await arrived(status.id);
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  assert.equal(m.channel, 'mastodon');
  assert.equal(m.text, `@support@${fake.host} my order #1234 is late, see https://example.com/orders/1234\n\nplease help #support`);
  assert.deepEqual({ ...m.ext, url: undefined }, {
    account: 'main', status_id: status.id, url: undefined, visibility: 'public',
    acct: `alice@${fake.host}`, in_reply_to_id: null,
  });
  const conv = (await api(d, 'GET', `/v1/conversations/${m.conv}`, { token: tok })).json;
  assert.equal(conv.contact.name, 'Alice A.');

  const out = await reply(m.conv, 'We are on it.');
  await delivered(m.conv, out.id);
  const [post] = await postedBy(out.id);
  assert.equal(post.text, `@alice@${fake.host} We are on it.`);
  assert.equal(post.in_reply_to_id, status.id);
  assert.equal(post.visibility, 'public');
  assert.equal(post.idempotency_key, out.id);
  const evs = (await transcript(m.conv)).filter((x) => x.ref === out.id);
  assert.equal(evs.find((x) => x.type === 'delivered').provider_id, post.id);

  // The customer answers our reply: the same conversation.
  const again = await mention({ username: 'alice' }, 'thanks!', { in_reply_to_id: post.id });
  const m2 = await arrived(again.status.id);
  assert.equal(m2.conv, m.conv);
});

test('a direct message stays direct, to a remote account', async () => {
  const { status } = await mention({ username: 'bob', host: 'remote.example', display_name: '' },
    'psst, my account number is 42', { visibility: 'direct' });
  const m = await arrived(status.id);
  assert.equal(m.ext.visibility, 'direct');
  assert.equal(m.ext.acct, 'bob@remote.example');
  const conv = (await api(d, 'GET', `/v1/conversations/${m.conv}`, { token: tok })).json;
  assert.equal(conv.contact.name, 'bob', 'no display name: the username');
  const out = await reply(m.conv, 'Thanks, we will check privately.');
  await delivered(m.conv, out.id);
  const [post] = await postedBy(out.id);
  assert.equal(post.visibility, 'direct');
  assert.equal(post.text, '@bob@remote.example Thanks, we will check privately.');
  assert.equal(post.in_reply_to_id, status.id);
});

const streamConnects = async () => (await control('state')).stream_connects;

test('a dropped stream loses nothing and duplicates nothing (catch-up by since_id)', async () => {
  const before = await mention({ username: 'carol' }, 'first, on the stream');
  await arrived(before.status.id);
  const connects = await streamConnects();
  const reqs = (await control('state')).requests.length;
  await control('drop');
  // posted while no stream is open: only the catch-up can bring them
  const down = [];
  for (let i = 0; i < 3; i++) down.push((await mention({ username: 'carol' }, `while down ${i}`)).status.id);
  await until(async () => (await streamConnects()) > connects, 'a new stream');
  for (const id of down) await arrived(id);
  const after = await mention({ username: 'carol' }, 'after, on the new stream');
  await arrived(after.status.id);
  for (const id of [before.status.id, ...down, after.status.id]) {
    assert.equal((await stored(id)).length, 1, `status ${id} stored once`);
  }
  const catchup = (await control('state')).requests.slice(reqs)
    .filter((r) => r.startsWith('GET /api/v1/notifications'));
  assert.ok(catchup.some((r) => /types%5B%5D=mention|types\[\]=mention/.test(r) && /since_id=\d+/.test(r)),
    JSON.stringify(catchup));
});

test('more than a page missed: the catch-up walks up from the cursor with min_id and Link', async () => {
  const connects = await streamConnects();
  const reqs = (await control('state')).requests.length;
  await control('fail', { count: 2, code: 503, path: '/api/v1/streaming', error: 'streaming down' });
  await control('drop');
  const down = [];
  for (let i = 0; i < 45; i++) down.push((await mention({ username: 'paula' }, `missed ${i}`)).status.id);
  await until(async () => (await streamConnects()) > connects, 'the stream back', 10000);
  await until(async () => {
    const ids = new Set((await messages()).map((m) => m.ext.status_id));
    return down.every((id) => ids.has(id));
  }, 'all 45 mentions');
  const all = (await messages()).map((m) => m.ext.status_id).filter((id) => down.includes(id));
  assert.equal(all.length, 45, 'each once');
  // ingested oldest first: her conversation has them in the order she wrote them
  const conv = (await stored(down[0]))[0].conv;
  const r = await api(d, 'GET', `/v1/conversations/${conv}/messages?limit=200`, { token: tok });
  const order = r.json.items.filter((m) => m.kind === 'message').map((m) => m.ext.status_id);
  assert.deepEqual(order.filter((id) => down.includes(id)), down);
  const got = (await control('state')).requests.slice(reqs).filter((r) => r.startsWith('GET /api/v1/notifications'));
  assert.ok(got.some((r) => /since_id=/.test(r)), JSON.stringify(got));
  assert.ok(got.some((r) => /min_id=/.test(r)), JSON.stringify(got));
  const metrics = await (await fetch(`${d.url}/metrics`)).text();
  assert.match(metrics, /switchboard_mastodon_catchup_pages_total\{account="main"\} \d+/);
});

test('a silent stream is a stall: dropped and connected again, nothing lost', async () => {
  const connects = await streamConnects();
  await control('silent');
  const { status } = await mention({ username: 'dave' }, 'said while the stream is silent');
  await until(async () => (await streamConnects()) > connects, 'a reconnect after the stall', 10000);
  await arrived(status.id);
  const metrics = await (await fetch(`${d.url}/metrics`)).text();
  assert.match(metrics, /switchboard_mastodon_stream_stalls_total\{account="main"\} [1-9]/);
  assert.match(metrics, /switchboard_mastodon_up\{account="main"\} 1/);
});

test('the customer replies to an older status of the thread: found by its ancestors', async () => {
  const first = await mention({ username: 'erin' }, 'my parcel is lost');
  const m = await arrived(first.status.id);
  // erin answers herself (a status we never stored), then someone answers that one
  const mid = fake.status(fake.statuses.get(first.status.id).account, 'it was in a blue box',
    { in_reply_to_id: first.status.id });
  const next = await mention({ username: 'erin' }, 'any news?', { in_reply_to_id: mid.id });
  const m2 = await arrived(next.status.id);
  assert.equal(m2.conv, m.conv);
  // a new post that answers nothing joins her open conversation, as a chat message would
  const fresh = await mention({ username: 'erin' }, 'also, a second thing');
  assert.equal((await arrived(fresh.status.id)).conv, m.conv);
  // once it is resolved (and the reopen window is past) a new post starts a new one
  await api(d, 'POST', `/v1/conversations/${m.conv}/resolve`, { token: tok });
  d.setClockOffset(d.clockOffset + 8 * 24 * 3600 * 1000);
  const later = await mention({ username: 'erin' }, 'a new matter');
  assert.notEqual((await arrived(later.status.id)).conv, m.conv);
});

test('a long answer becomes a thread of replies, each within the limit', async () => {
  const { status } = await mention({ username: 'frank' }, 'tell me everything');
  const m = await arrived(status.id);
  const text = 'First we checked the warehouse and found nothing at all. ' +
    'Then we asked the carrier, who said the parcel left on Monday morning. ' +
    'It should reach you tomorrow; the tracking link is https://example.com/track/ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 and it works.';
  const out = await reply(m.conv, text);
  await delivered(m.conv, out.id);
  const posts = await postedBy(out.id);
  assert.ok(posts.length >= 2, `${posts.length} parts`);
  assert.deepEqual(posts.map((p) => p.idempotency_key),
    posts.map((_, i) => (i === 0 ? out.id : `${out.id}-${i + 1}`)));
  posts.forEach((p, i) => {
    assert.ok(p.weight <= 120, `part ${i + 1} weighs ${p.weight}`);
    assert.ok(p.text.startsWith(`@frank@${fake.host} `), p.text);
    assert.ok(p.text.endsWith(` (${i + 1}/${posts.length})`), p.text);
    assert.equal(p.in_reply_to_id, i === 0 ? status.id : posts[i - 1].id);
    assert.equal(p.visibility, 'public');
  });
  assert.match(posts.map((p) => p.text).join(' '), /https:\/\/example\.com\/track\/ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/);
  // the customer's answer to the last part threads back
  const back = await mention({ username: 'frank' }, 'great, thanks', { in_reply_to_id: posts.at(-1).id });
  assert.equal((await arrived(back.status.id)).conv, m.conv);
});

test('an answer that needs more than mastodon_max_parts posts fails with the reason', async () => {
  const { status } = await mention({ username: 'gina' }, 'long story?');
  const m = await arrived(status.id);
  const out = await reply(m.conv, 'word '.repeat(400).trim());
  const evs = await outcomes(m.conv, out.id, (e) => e.some((x) => x.final === true), 'a final failure');
  assert.equal(evs[0].type, 'delivery_failed');
  assert.match(evs[0].reason, /^the answer needs \d+ posts of at most 120 characters; the limit is 10: shorten it$/);
  assert.equal((await postedBy(out.id)).length, 0);
});

test('a 429 is retried at X-RateLimit-Reset (the clock moved, not waited for)', async () => {
  const { status } = await mention({ username: 'hank' }, 'quick question');
  const m = await arrived(status.id);
  const reset = new Date(d.now() + 5 * 60 * 1000);
  reset.setMilliseconds(0);
  await control('fail', {
    count: 1, code: 429, path: '/api/v1/statuses', error: 'Too many requests',
    headers: { 'x-ratelimit-limit': '300', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset.toISOString() },
  });
  const out = await reply(m.conv, 'Quick answer.');
  const evs = await outcomes(m.conv, out.id, (e) => e.some((x) => x.type === 'delivery_failed'), 'rate limited');
  assert.equal(evs[0].final, false);
  assert.equal(evs[0].retry_at, reset.getTime());
  assert.match(evs[0].reason, /HTTP 429: Too many requests/);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await postedBy(out.id)).length, 0, 'not before the reset');
  d.setClockOffset(d.clockOffset + 5 * 60 * 1000 + 1000);
  await delivered(m.conv, out.id);
  assert.equal((await postedBy(out.id)).length, 1);
});

test('a refused token pauses the account and alerts the admins; a new token resumes it', async () => {
  const { status } = await mention({ username: 'ivy' }, 'hello?');
  const m = await arrived(status.id);
  await control('token', { token: 'tok-rotated' });
  const out = await reply(m.conv, 'Sorry for the wait.');
  const evs = await outcomes(m.conv, out.id, (e) => e.some((x) => x.type === 'delivery_failed'), 'auth failure');
  assert.match(evs[0].reason, /account paused/);
  const alert = await until(async () => {
    const r = await api(d, 'GET', '/v1/notifications', { token: tok });
    return r.json?.items?.find((n) => n.type === 'connector' && n.state === 'paused');
  }, 'the paused alert');
  assert.equal(alert.channel, 'mastodon');
  assert.equal(alert.account, 'main');
  assert.match(alert.reason, /401/);
  await until(async () => (await control('state')).streams === 0, 'the stream closed while paused');
  const conns = (await api(d, 'GET', '/v1/connectors', { token: tok })).json.items;
  assert.ok(conns.find((c) => c.name === 'mastodon').lanes.some((l) => l.paused), JSON.stringify(conns));
  const metrics = await (await fetch(`${d.url}/metrics`)).text();
  assert.match(metrics, /switchboard_mastodon_paused\{account="main"\} 1/);
  // the admin puts the new token in the file: the account comes back by itself
  fs.writeFileSync(tokenFile, 'tok-rotated\n');
  await until(async () => {
    const r = await api(d, 'GET', '/v1/notifications', { token: tok });
    return r.json?.items?.find((n) => n.type === 'connector' && n.state === 'resumed');
  }, 'the resumed alert');
  // the waiting answer goes out without an admin resuming the lane
  await delivered(m.conv, out.id);
  assert.match(d.log, /connector\.resumed +name=mastodon lanes=1 by=connector/);
  const lanes = (await api(d, 'GET', '/v1/connectors', { token: tok })).json.items;
  assert.ok(!lanes.find((c) => c.name === 'mastodon').lanes.some((l) => l.paused), JSON.stringify(lanes));
  // and mentions flow again
  const later = await mention({ username: 'ivy' }, 'back?');
  await arrived(later.status.id);
});

test('killed right after the server took the post: it is not posted twice', async () => {
  const { status } = await mention({ username: 'jack' }, 'are you there?');
  const m = await arrived(status.id);
  await control('hang', { on: true });
  const out = await reply(m.conv, 'Yes, here.');
  await until(async () => (await postedBy(out.id)).length === 1, 'the post taken');
  await d.restart({ kill9: true, before: () => control('hang', { on: false }) });
  await delivered(m.conv, out.id);
  assert.equal((await postedBy(out.id)).length, 1, 'one status for the key');
});

test('a stream event stored during a catch-up does not move the cursor past a missed one', async () => {
  const connects = await streamConnects();
  await control('drop');
  const missed = (await mention({ username: 'quinn' }, 'said while no stream was open')).status.id;
  // the catch-up's answer is held back; meanwhile a mention comes on the new stream
  await control('slow', { ms: 60000, path: '/api/v1/notifications' });
  await until(async () => (await streamConnects()) > connects, 'the new stream');
  await until(async () => (await control('state')).requests.some((r) => r.includes('since_id')
    && r.startsWith('GET /api/v1/notifications')), 'the catch-up asked');
  const live = (await mention({ username: 'quinn' }, 'said on the new stream')).status.id;
  await arrived(live);
  assert.equal((await stored(missed)).length, 0, 'the missed one waits for the catch-up');
  // killed before the catch-up answered: the cursor must still be before the missed one
  await d.restart({ kill9: true, before: () => control('slow', { ms: 0 }) });
  await arrived(missed, 'the missed mention after the restart');
  assert.equal((await stored(live)).length, 1, 'the live one stored once');
});

test('a restart duplicates nothing and catches up what came meanwhile', async () => {
  const { status } = await mention({ username: 'kate' }, 'before the restart');
  await arrived(status.id);
  const count = (await messages()).length;
  let during;
  await d.restart({ before: async () => { during = (await mention({ username: 'kate' }, 'while down')).status.id; } });
  await arrived(during);
  const all = await messages();
  assert.equal(all.length, count + 1);
  const ids = all.map((x) => x.ext.status_id);
  assert.equal(new Set(ids).size, ids.length, 'no status stored twice');
});

test('--check names the line of a bad URL, an unreadable token file and a repeated name', () => {
  const conf = path.join(tmp, 'check.conf');
  fs.writeFileSync(conf, [
    `mastodon ok ${fake.url} ${tokenFile}`,
    `mastodon bad ftp://mastodon.example ${tokenFile}`,
    `mastodon lost ${fake.url} ${path.join(tmp, 'no-such-token')}`,
    `mastodon ok https://other.example ${tokenFile}`,
    'mastodon_stall 1h',
  ].join('\n'));
  const r = spawnSync(BIN, ['--check', '-c', conf], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`${conf}:2: mastodon: the base URL must be http\\(s\\)://`));
  assert.match(r.stderr, new RegExp(`${conf}:3: mastodon: cannot read the token file`));
  assert.match(r.stderr, new RegExp(`${conf}:4: mastodon: the name 'ok' is used twice \\(first at ${conf}:1\\)`));
  assert.doesNotMatch(r.stderr, new RegExp(`${conf}:[15]:`));
  fs.writeFileSync(conf, `mastodon ok ${fake.url} ${tokenFile}\nmastodon_max_parts 3\n`);
  const ok = spawnSync(BIN, ['--check', '-c', conf], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
});

test('a token refused at start: paused before any stream, resumed once the file is fixed', async () => {
  const f2 = await new FakeMastodon({ heartbeatMs: 300 }).start();
  const tf = path.join(tmp, 'token2');
  fs.writeFileSync(tf, 'tok-good\n');
  const d2 = await Daemon.start(`mastodon second ${f2.url} ${tf}\nmastodon_pause_retry 300ms\n`);
  try {
    const t2 = d2.token('admin', 'Ada Admin');
    await until(async () => f2.streams.size > 0, 'the first stream', 15000, d2);
    // the token is revoked while the daemon is down: at start it pauses at once
    await d2.restart({ before: () => { fs.writeFileSync(tf, 'tok-revoked\n'); } });
    const connects = f2.streamConnects, polls = f2.requests.length;
    const alerts = async () => (await api(d2, 'GET', '/v1/notifications', { token: t2 })).json?.items ?? [];
    const paused = await until(async () => (await alerts()).find((n) => n.state === 'paused'),
      'paused at start', 15000, d2);
    assert.equal(paused.account, 'second');
    assert.match(paused.reason, /HTTP 401: The access token is invalid/);
    assert.match(d2.log, /mastodon\.paused account=second/);
    assert.equal(f2.streamConnects, connects, 'no stream while paused');
    assert.ok(f2.requests.slice(polls).every((r) => !r.includes('/notifications')), 'no polling while paused');
    fs.writeFileSync(tf, 'tok-good\n');
    await until(async () => (await alerts()).find((n) => n.state === 'resumed'), 'resumed', 15000, d2);
    await until(async () => f2.streams.size > 0, 'the stream after the resume', 15000, d2);
    const { status } = f2.mention({ from: { username: 'zoe' }, text: 'hi' });
    await until(async () => {
      const r = await api(d2, 'GET', '/v1/conversations?status=all&channel=mastodon', { token: t2 });
      return r.json?.items?.length > 0;
    }, `status ${status.id} after the resume`, 15000, d2);
  } finally {
    const r = await d2.stop();
    assert.equal(r.code, 0, d2.log.slice(-4000));
    await f2.close();
  }
});
