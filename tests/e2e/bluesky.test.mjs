// SPDX-License-Identifier: MIT
// The Bluesky connector end to end (connectors/bluesky, docs/bluesky.md): the real daemon
// polls a fake PDS (tests/peers/bluesky.mjs) that speaks the XRPC calls as atproto
// documents them. Mentions become conversations within a second, replies in the
// customer's thread continue them, sessions are refreshed or made again, downtime is
// backfilled by paging and nothing comes twice, answers are reply posts with the right
// root/parent refs and mention facet, long answers become threads, a post is created once
// even when the daemon is killed right after creating it, 429 waits for ratelimit-reset
// (the test moves the daemon's clock), and a refused password pauses the account, tells the
// admins, and resumes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, Daemon, api } from './lib.mjs';
import { FakePds } from '../peers/bluesky.mjs';

let pds, pdsB, d, tok, tmp, pwFile;
const seg = new Intl.Segmenter('en', { granularity: 'grapheme' });
const graphemes = (s) => [...seg.segment(s)].length;

async function until(cond, what, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${d?.log.slice(-4000) ?? ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const conf = (pw, url) => `bluesky main ${url} support.example.com ${pw}\nbluesky_poll_interval 200ms\n` +
  'outbox_retry_base 1s\noutbox_retry_max 1s\n';

before(async () => {
  const base = process.env.SB_TEST_TMP || os.tmpdir();
  fs.mkdirSync(base, { recursive: true }); // as lib.mjs does: the test may run first
  tmp = fs.mkdtempSync(path.join(base, 'sb-bsky-'));
  pwFile = path.join(tmp, 'app-password');
  fs.writeFileSync(pwFile, 'app-pass-1\n');
  pds = await new FakePds().start();
  // a second account, on another PDS
  pdsB = await new FakePds({ handle: 'sales.example.net', password: 'b-pass' }).start();
  fs.writeFileSync(path.join(tmp, 'pw-b'), 'b-pass');
  d = await Daemon.start(`${conf(pwFile, pds.url)}bluesky sales ${pdsB.url} sales.example.net ${path.join(tmp, 'pw-b')}\n`,
    { testClock: true });
  tok = d.sbctl('staff', 'add', '--name', 'Ada Admin', '--email', 'ada@example.com', '--role', 'admin');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
  await pds?.close();
  await pdsB?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// Every Bluesky message in the queue: [{conv, m}] (all statuses).
async function inbox(daemon = d, token = tok) {
  const out = [];
  let cursor = '';
  for (;;) {
    const r = await api(daemon, 'GET', `/v1/conversations?channel=bluesky&status=all&limit=100${cursor}`, { token });
    assert.equal(r.status, 200, r.text);
    for (const c of r.json.items) {
      const ms = (await api(daemon, 'GET', `/v1/conversations/${c.id}/messages?limit=500`, { token })).json.items;
      for (const m of ms) if (m.kind === 'message' && m.dir === 'in') out.push({ conv: c.id, m });
    }
    if (!r.json.next) return out;
    cursor = `&cursor=${encodeURIComponent(r.json.next)}`;
  }
}

const byUri = async (uri, daemon, token) => (await inbox(daemon, token)).filter((x) => x.m.ext?.uri === uri);
const arrived = (uri, daemon = d, token = tok) =>
  until(async () => (await byUri(uri, daemon, token))[0], `the post ${uri} in the queue`);

async function reply(conv, text, daemon = d, token = tok) {
  const r = await api(daemon, 'POST', `/v1/conversations/${conv}/messages`, { token, body: { text, force: true } });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const events = async (conv, mid, daemon = d, token = tok) =>
  (await api(daemon, 'GET', `/v1/conversations/${conv}/messages?limit=500`, { token })).json.items
    .filter((x) => x.ref === mid);
const outcome = (conv, mid, type, daemon = d, token = tok) => until(async () => {
  const evs = await events(conv, mid, daemon, token);
  return evs.some((x) => x.type === type) && evs;
}, `${type} for ${mid}`);

test('a mention becomes a conversation within a second', async () => {
  pds.user('alice.test', 'Alice Liddell');
  const t0 = Date.now();
  const post = pds.mention('alice.test', 'my order #42 never arrived 📦');
  const got = await arrived(post.uri);
  const took = Date.now() - t0;
  assert.ok(took < 1000, `took ${took} ms`);
  assert.equal(got.m.text, '@support.example.com my order #42 never arrived 📦');
  const alice = pds.user('alice.test');
  assert.deepEqual(got.m.ext, {
    account: 'main', uri: post.uri, cid: post.cid, root_uri: post.uri, root_cid: post.cid,
    did: alice.did, handle: 'alice.test', reason: 'mention',
    url: `https://bsky.app/profile/alice.test/post/${post.uri.split('/').pop()}`,
  });
  const c = (await api(d, 'GET', `/v1/conversations/${got.conv}`, { token: tok })).json;
  assert.equal(c.channel, 'bluesky');
  assert.equal(c.contact.name, 'Alice Liddell');
  // likes are not messages
  pds.like('alice.test', post.uri);
  const again = pds.mention('alice.test', 'hello?');
  await arrived(again.uri);
  assert.equal((await inbox()).length, 2);
});

test('the answer is a reply with root/parent refs and a mention facet; the customer continues the thread', async () => {
  pds.user('bob.test', 'Bob');
  const first = pds.mention('bob.test', 'the app crashes');
  const got = await arrived(first.uri);
  const out = await reply(got.conv, 'Sorry Bob — which version? ü');
  const evs = await outcome(got.conv, out.id, 'delivered');
  const rec = pds.created.find((c) => c.record.text.includes('which version'));
  assert.ok(rec, 'created');
  assert.equal(evs.find((x) => x.type === 'delivered').provider_id, rec.uri);
  assert.equal(rec.record.text, '@bob.test Sorry Bob — which version? ü');
  assert.deepEqual(rec.record.reply, { root: { uri: first.uri, cid: first.cid }, parent: { uri: first.uri, cid: first.cid } });
  assert.equal(rec.record.facets.length, 1);
  const f = rec.record.facets[0];
  assert.equal(FakePds.facetText(rec.record, f), '@bob.test');
  assert.deepEqual(f.features, [{ $type: 'app.bsky.richtext.facet#mention', did: pds.user('bob.test').did }]);
  assert.match(rec.rkey, /^[234567a-j][234567a-z]{12}$/);

  // Bob answers our post: the same conversation; then he answers his own first post.
  const r1 = pds.reply('bob.test', rec.uri, 'version 3.1');
  const g1 = await arrived(r1.uri);
  assert.equal(g1.conv, got.conv);
  assert.equal(g1.m.ext.root_uri, first.uri);
  const r2 = pds.reply('bob.test', first.uri, 'also on the web');
  assert.equal((await arrived(r2.uri)).conv, got.conv);
  // A second answer goes under his newest post, the root unchanged.
  const out2 = await reply(got.conv, 'Thanks, fixed in 3.2');
  await outcome(got.conv, out2.id, 'delivered');
  const rec2 = pds.created.find((c) => c.record.text.includes('fixed in 3.2'));
  assert.deepEqual(rec2.record.reply, { root: { uri: first.uri, cid: first.cid }, parent: { uri: r2.uri, cid: r2.cid } });
});

test('several accounts: each reads its own mentions and answers from itself', async () => {
  const q = pdsB.mention('gina.test', 'a question for sales');
  const got = await arrived(q.uri);
  assert.equal(got.m.ext.account, 'sales');
  const out = await reply(got.conv, 'Sales here');
  await outcome(got.conv, out.id, 'delivered');
  assert.equal(pdsB.created.filter((c) => c.record.text === '@gina.test Sales here').length, 1);
  assert.equal(pds.created.filter((c) => c.record.text.includes('Sales here')).length, 0);
  assert.ok(pdsB.created[0].uri.startsWith(`at://${pdsB.did}/`));
});

test('a 5xx is retried; a 400 InvalidRequest fails for good with the server\'s message', async () => {
  pds.user('hank.test', 'Hank');
  const q = pds.mention('hank.test', 'flaky?');
  const got = await arrived(q.uri);
  pds.failNext(1, 502, { nsid: 'com.atproto.repo.createRecord' });
  const out = await reply(got.conv, 'Answer after a 502');
  const evs = await outcome(got.conv, out.id, 'delivered');
  assert.deepEqual(evs.map((x) => [x.type, x.final ?? null]), [['delivery_failed', false], ['delivered', null]]);
  assert.match(evs[0].reason, /createRecord: HTTP 502/);
  assert.equal(pds.created.filter((c) => c.record.text.includes('Answer after a 502')).length, 1);

  pds.failNext(1, 400, { nsid: 'com.atproto.repo.createRecord',
    body: { error: 'InvalidRequest', message: 'Invalid app.bsky.feed.post record' } });
  const bad = await reply(got.conv, 'Refused answer');
  const evs2 = await outcome(got.conv, bad.id, 'delivery_failed');
  assert.equal(evs2[0].final, true);
  assert.match(evs2[0].reason, /HTTP 400 InvalidRequest: Invalid app.bsky.feed.post record/);
});

test('an expired access token is refreshed; an expired refresh token makes a new session', async () => {
  const c0 = { ...pds.counts };
  pds.expireAccess();
  const p1 = pds.mention('alice.test', 'after expiry');
  await arrived(p1.uri);
  assert.equal(pds.counts.refreshSession, c0.refreshSession + 1);
  assert.equal(pds.counts.createSession, c0.createSession);
  pds.expireRefresh();
  const p2 = pds.mention('alice.test', 'after both expired');
  await arrived(p2.uri);
  assert.equal(pds.counts.refreshSession, c0.refreshSession + 2);
  assert.equal(pds.counts.createSession, c0.createSession + 1);
  const metrics = (await api(d, 'GET', '/metrics')).text;
  assert.match(metrics, /switchboard_bluesky_session_refreshes_total\{account="main"\} 1/);
  assert.match(metrics, /switchboard_bluesky_account_up\{account="main"\} 1/);
});

test('downtime is backfilled by paging, nothing twice, also after a restart', async () => {
  const before = (await inbox()).length;
  const posts = [];
  await d.restart({
    before: () => {
      for (let i = 0; i < 120; i++) {
        posts.push(pds.mention(`fan${i % 7}.test`, `while you were away #${i}`));
        if (i % 10 === 0) pds.like('alice.test', posts[0].uri);
      }
    },
  });
  await until(async () => (await inbox()).length === before + 120, '120 backfilled');
  const all = await inbox();
  const uris = all.map((x) => x.m.ext.uri);
  assert.equal(new Set(uris).size, uris.length, 'no post twice');
  for (const p of posts) assert.ok(uris.includes(p.uri), `missing ${p.uri}`);
  // a restart with nothing new ingests nothing again
  await d.restart();
  const p = pds.mention('alice.test', 'after the restart');
  await arrived(p.uri);
  assert.equal((await inbox()).length, before + 121);
});

test('a long answer becomes a thread; one over bluesky_max_parts is refused', async () => {
  pds.user('carol.test', 'Carol');
  const q = pds.mention('carol.test', 'explain everything');
  const got = await arrived(q.uri);
  const para = 'This is a sentence about our refund policy that goes on for a while. ';
  const long = para.repeat(10).trim(); // ~700 characters: three posts
  const n0 = pds.created.length;
  const out = await reply(got.conv, long);
  await outcome(got.conv, out.id, 'delivered');
  const parts = pds.created.slice(n0);
  assert.equal(parts.length, 3);
  parts.forEach((p, i) => {
    assert.ok(graphemes(p.record.text) <= 300, `part ${i} is ${graphemes(p.record.text)}`);
    assert.ok(p.record.text.startsWith('@carol.test '), p.record.text);
    assert.ok(p.record.text.endsWith(` (${i + 1}/3)`), p.record.text);
    assert.equal(FakePds.facetText(p.record, p.record.facets[0]), '@carol.test');
    assert.deepEqual(p.record.reply.root, { uri: q.uri, cid: q.cid });
    const parent = i === 0 ? { uri: q.uri, cid: q.cid } : { uri: parts[i - 1].uri, cid: parts[i - 1].cid };
    assert.deepEqual(p.record.reply.parent, parent);
  });
  const words = (s) => s.replace(/^@carol\.test /, '').replace(/ \(\d\/3\)$/, '');
  assert.equal(parts.map((p) => words(p.record.text)).join(' '), long);
  // the customer answers the last part: still this conversation
  const r = pds.reply('carol.test', parts[2].uri, 'thanks!');
  assert.equal((await arrived(r.uri)).conv, got.conv);

  const tooLong = await reply(got.conv, para.repeat(60));
  const evs = await outcome(got.conv, tooLong.id, 'delivery_failed');
  const f = evs.find((x) => x.type === 'delivery_failed');
  assert.equal(f.final, true);
  assert.match(f.reason, /bluesky_max_parts allows 10/);
});

test('killed right after the PDS created the post: not created twice', async () => {
  pds.user('dave.test', 'Dave');
  const q = pds.mention('dave.test', 'are you there?');
  const got = await arrived(q.uri);
  let killed = false;
  pds.onCreate = async (rec) => {
    if (!killed && rec.record.text.includes('We are here')) {
      killed = true;
      d.proc.kill('SIGKILL');
      await d.exited;
    }
  };
  const out = await reply(got.conv, 'We are here, Dave.');
  await until(() => killed, 'the kill');
  pds.onCreate = null;
  d.spawn();
  await d.waitReady();
  const evs = await outcome(got.conv, out.id, 'delivered');
  const made = pds.created.filter((c) => c.record.text.includes('We are here'));
  assert.equal(made.length, 1, 'one post');
  assert.equal(evs.find((x) => x.type === 'delivered').provider_id, made[0].uri);
  assert.ok(pds.calls.some((c) => c.nsid.startsWith('com.atproto.repo.getRecord') && c.status === 200));
  // its uri threads back
  const r = pds.reply('dave.test', made[0].uri, 'great');
  assert.equal((await arrived(r.uri)).conv, got.conv);
});

test('429 waits for ratelimit-reset, for a post and for a poll (the test clock moves)', async () => {
  pds.user('erin.test', 'Erin');
  const q = pds.mention('erin.test', 'rate me');
  const got = await arrived(q.uri);
  const reset = Math.floor(d.now() / 1000) + 3600;
  pds.rateLimit(reset);
  const out = await reply(got.conv, 'Limited answer');
  const evs = await outcome(got.conv, out.id, 'delivery_failed');
  const f = evs.find((x) => x.type === 'delivery_failed');
  assert.equal(f.final, false);
  assert.equal(f.retry_at, reset * 1000);
  assert.match(f.reason, /429/);
  // an hour is not a second: a further poll cycle sends nothing
  const calls = pds.calls.filter((c) => c.nsid === 'com.atproto.repo.createRecord').length;
  const extra = pds.mention('erin.test', 'still there?');
  await arrived(extra.uri);
  assert.equal(pds.calls.filter((c) => c.nsid === 'com.atproto.repo.createRecord').length, calls);
  d.setClockOffset(3601 * 1000);
  await outcome(got.conv, out.id, 'delivered');
  assert.equal(pds.created.filter((c) => c.record.text.includes('Limited answer')).length, 1);

  // a 429 to a poll: no poll before its ratelimit-reset, then the mention comes in
  const lists = () => pds.calls.filter((c) => c.nsid.startsWith('app.bsky.notification.listNotifications'));
  const reset2 = Math.floor(d.now() / 1000) + 600;
  pds.rateLimit(reset2, 'app.bsky.notification.listNotifications');
  await until(() => lists().some((c) => c.status === 429), 'the limited poll');
  const n = lists().length;
  const later = pds.mention('erin.test', 'after the poll limit');
  await new Promise((r) => setTimeout(r, 600)); // three poll intervals
  assert.equal(lists().length, n, 'no poll before the reset');
  d.setClockOffset(d.clockOffset + 601 * 1000);
  await arrived(later.uri);
  d.setClockOffset(0);
});

test('a refused password pauses the account and alerts the admins; a fixed one resumes', async () => {
  // a daemon of its own: its outbox lane pauses
  const pds2 = await new FakePds({ handle: 'help.example.org', password: 'old-pass' }).start();
  const pw = path.join(tmp, 'pw2');
  fs.writeFileSync(pw, 'old-pass');
  const d2 = await Daemon.start(`bluesky help ${pds2.url} help.example.org ${pw}\n` +
    'bluesky_poll_interval 200ms\noutbox_retry_base 1s\noutbox_retry_max 1s\n', { testClock: true });
  const admin = d2.sbctl('staff', 'add', '--name', 'Root', '--email', 'root@example.com', '--role', 'admin');
  try {
    pds2.user('frank.test', 'Frank');
    const q = pds2.mention('frank.test', 'hi');
    const got = await arrived(q.uri, d2, admin);
    pds2.setPassword('new-pass'); // and every token is expired
    const alert = await until(async () => {
      const r = await api(d2, 'GET', '/v1/notifications', { token: admin });
      return r.json.items.find((n) => n.type === 'connector' && n.state === 'paused');
    }, 'the paused alert');
    assert.equal(alert.channel, 'bluesky');
    assert.equal(alert.account, 'help');
    assert.match(alert.reason, /AuthenticationRequired/);
    assert.match(d2.log, /warn +bluesky\.paused.*account=help/);
    const metrics = (await api(d2, 'GET', '/metrics')).text;
    assert.match(metrics, /switchboard_bluesky_account_paused\{account="help"\} 1/);
    // paused: the answer waits, the lane shows why
    const out = await reply(got.conv, 'Back soon', d2, admin);
    const evs = await outcome(got.conv, out.id, 'delivery_failed', d2, admin);
    assert.match(evs[0].reason, /^account paused: .*AuthenticationRequired/);
    const lanes = (await api(d2, 'GET', '/v1/connectors', { token: admin })).json.items
      .find((c) => c.name === 'bluesky').lanes;
    assert.equal(lanes[0].paused, true);
    // no polling while paused, no new session tried before a minute
    const n = pds2.counts.createSession;
    const p2 = pds2.mention('frank.test', 'during the pause');
    await new Promise((r) => setTimeout(r, 600)); // three poll intervals
    assert.equal(pds2.counts.createSession, n);
    assert.equal((await byUri(p2.uri, d2, admin)).length, 0);
    // the password file fixed, a minute later: resumed, the missed mention read
    fs.writeFileSync(pw, 'new-pass\n');
    d2.setClockOffset(61 * 1000);
    await arrived(p2.uri, d2, admin);
    const resumed = await until(async () => {
      const r = await api(d2, 'GET', '/v1/notifications', { token: admin });
      return r.json.items.find((x) => x.type === 'connector' && x.state === 'resumed');
    }, 'the resumed alert');
    assert.equal(resumed.account, 'help');
    // the waiting answer goes out without an admin resuming the lane
    await outcome(got.conv, out.id, 'delivered', d2, admin);
    assert.match(d2.log, /connector\.resumed +name=bluesky lanes=1 by=connector/);
    assert.equal(pds2.created.filter((c) => c.record.text.includes('Back soon')).length, 1);
  } finally {
    const r = await d2.stop();
    await pds2.close();
    assert.equal(r.code, 0, d2.log);
  }
});

test('the fake PDS refuses what a PDS refuses (so that what it took was right)', async () => {
  const x = await new FakePds({ handle: 'probe.example.com', password: 'pw' }).start();
  const call = async (nsid, { body, token, query = '' } = {}) => {
    const r = await fetch(`${x.url}/xrpc/${nsid}${query}`, {
      method: body ? 'POST' : 'GET',
      headers: { ...(body ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, json: await r.json() };
  };
  try {
    const bad = await call('com.atproto.server.createSession', { body: { identifier: 'probe.example.com', password: 'no' } });
    assert.deepEqual([bad.status, bad.json.error], [401, 'AuthenticationRequired']);
    const s = (await call('com.atproto.server.createSession', { body: { identifier: 'probe.example.com', password: 'pw' } })).json;
    const target = x.post('zed.test', 'hello');
    const rec = (text, extra = {}) => ({ $type: 'app.bsky.feed.post', text, createdAt: new Date().toISOString(),
      reply: { root: { uri: target.uri, cid: target.cid }, parent: { uri: target.uri, cid: target.cid } }, ...extra });
    const create = (record, rkey = x.tidNow()) => call('com.atproto.repo.createRecord',
      { token: s.accessJwt, body: { repo: s.did, collection: 'app.bsky.feed.post', rkey, record } });
    const refused = async (r, re) => {
      const a = await r;
      assert.equal(a.status, 400, JSON.stringify(a.json));
      assert.equal(a.json.error, 'InvalidRequest');
      assert.match(a.json.message, re);
    };
    await refused(create(rec('é'.repeat(301))), /300 graphemes/);
    assert.equal((await create(rec('👍🏽'.repeat(300)))).status, 200, '300 graphemes of several code points each');
    await refused(create(rec('@zed.test hi', { facets: [{ index: { byteStart: 0, byteEnd: 40 }, features: [] }] })), /byte range/);
    await refused(create(rec('hi', { reply: { root: { uri: target.uri, cid: 'bafywrong' }, parent: { uri: target.uri, cid: target.cid } } })), /reply\/root/);
    await refused(create(rec('hi'), 'not-a-tid'), /TID/);
    const key = x.tidNow();
    assert.equal((await create(rec('once'), key)).status, 200);
    await refused(create(rec('twice'), key), /already exists/);
    const got = await call('com.atproto.repo.getRecord', { query: `?repo=${s.did}&collection=app.bsky.feed.post&rkey=${key}` });
    assert.equal(got.json.value.text, 'once');
    const none = await call('com.atproto.repo.getRecord', { query: `?repo=${s.did}&collection=app.bsky.feed.post&rkey=${x.tidNow()}` });
    assert.deepEqual([none.status, none.json.error], [400, 'RecordNotFound']);
    x.expireAccess();
    const exp = await call('app.bsky.notification.listNotifications', { token: s.accessJwt });
    assert.deepEqual([exp.status, exp.json.error], [400, 'ExpiredToken']);
    // the control API over HTTP
    const ctl = await fetch(`${x.url}/_control/mention`, { method: 'POST', body: JSON.stringify(['zed.test', 'via http']) });
    assert.equal(ctl.status, 200);
    assert.equal(x.notifs[0].record.text, '@probe.example.com via http');
    const list = await (await fetch(`${x.url}/_control/records`, { method: 'POST' })).json();
    assert.equal(list.result.length, 2);
  } finally {
    await x.close();
  }
});

test('switchboard --check reports a bad URL, an unreadable password file and a name used twice', async () => {
  const { spawnSync } = await import('node:child_process');
  const f = path.join(tmp, 'bad.conf');
  fs.writeFileSync(f, [
    `bluesky a ftp://pds.example ok.example.com ${pwFile}`,
    `bluesky b https://pds.example ok.example.com ${path.join(tmp, 'missing')}`,
    `bluesky c https://pds.example ok.example.com ${pwFile}`,
    `bluesky c https://pds.example other.example.com ${pwFile}`,
  ].join('\n'));
  const r = spawnSync(BIN, ['--check', '-c', f], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`${f}:1: bluesky: 'ftp://pds.example' is not an http`));
  assert.match(r.stderr, new RegExp(`${f}:2: bluesky: the app password file .*missing cannot be read`));
  assert.ok(r.stderr.includes(`${f}:4: bluesky: the name 'c' is used twice (first at ${f}:3)`), r.stderr);
  assert.doesNotMatch(r.stderr, new RegExp(`${f}:3:`));
});

test('the daemon stops cleanly with a poll and a post hanging on the PDS', async () => {
  pds.user('ivy.test', 'Ivy');
  const q = pds.mention('ivy.test', 'last one');
  const got = await arrived(q.uri);
  pds.hold('com.atproto.repo.createRecord');
  await reply(got.conv, 'This one hangs');
  await until(() => pds.held.some((h) => h.nsid === 'com.atproto.repo.createRecord'), 'a held post');
  pds.hold('app.bsky.notification.listNotifications');
  await until(() => pds.held.some((h) => h.nsid === 'app.bsky.notification.listNotifications'), 'a held poll');
  const t0 = Date.now();
  const r = await d.stop();
  assert.equal(r.code, 0, d.log);
  assert.ok(Date.now() - t0 < 10000, 'stopped without waiting for the PDS');
  d = null;
});
