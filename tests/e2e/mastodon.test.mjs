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
import { Daemon, api } from './lib.mjs';
import { FakeMastodon } from '../peers/mastodon.mjs';

let fake, d, tok, tmp, tokenFile;

async function until(cond, what, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${d?.log.slice(-4000) ?? ''}`);
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
    for (const m of await transcript(c.id)) if (m.kind === 'message') out.push({ ...m, conv: c.id });
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
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log.slice(-3000)}`);
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
