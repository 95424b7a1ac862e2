// SPDX-License-Identifier: MIT
// The live feeds under abuse, against the real daemon: tokens in URLs only where a
// browser needs them (the two feeds), the events WebSocket refusing other sites'
// pages (Origin), cursors that stay whole with many shards, and readers that stop
// reading being closed with their memory given back (docs/hardening-feeds.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, FrameSocket, api } from './lib.mjs';

let d;
let admin;

before(async () => {
  d = await Daemon.start();
  admin = d.token('admin', 'Ada Admin');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

// Waits (bounded) until the daemon's log matches re.
async function logged(daemon, re, timeoutMs = 3000) {
  const until = Date.now() + timeoutMs;
  while (!re.test(daemon.log)) {
    if (Date.now() > until) throw new Error(`no ${re} in the log:\n${daemon.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('?access_token= is refused on REST routes, even next to a header', async () => {
  const q = `access_token=${encodeURIComponent(admin)}`;
  for (const p of [`/v1/me?${q}`, `/v1/conversations?${q}`, `/v1/stats?${q}`]) {
    const r = await api(d, 'GET', p);
    assert.equal(r.status, 401, `${p}: ${r.text}`);
    assert.equal(r.json.error.code, 'unauthorized');
    assert.match(r.json.error.message, /Authorization/);
    const both = await api(d, 'GET', p, { token: admin });
    assert.equal(both.status, 401, `${p} with a header too: ${both.text}`);
  }
  const post = await api(d, 'POST', `/v1/inbound?${q}`,
    { body: { contact: { external_id: 'url-token' }, text: 'hi' } });
  assert.equal(post.status, 401, post.text);
  await logged(d, /api\.token_in_url.*path=\/v1\/inbound/);
  // The header alone still works.
  assert.equal((await api(d, 'GET', '/v1/me', { token: admin })).status, 200);
});

test('?access_token= still works on the two feeds (EventSource, browser WebSocket)', async () => {
  const ctrl = new AbortController();
  const r = await fetch(`${d.url}/v1/events?access_token=${encodeURIComponent(admin)}`,
    { signal: ctrl.signal });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  ctrl.abort();
  const ws = await FrameSocket.connect(
    `${d.url.replace('http', 'ws')}/v1/events/ws?access_token=${encodeURIComponent(admin)}`,
    'switchboard.events.v1');
  ws.send({ type: 'subscribe', after: null });
  assert.ok((await ws.next('subscribed')).cursor);
  await ws.close();
});

function openEvents(headers = {}, origin) {
  const opts = { headers };
  if (origin) opts.origin = origin;
  return FrameSocket.connect(`${d.url.replace('http', 'ws')}/v1/events/ws`,
    'switchboard.events.v1', opts);
}

test('the events WebSocket refuses pages of other sites (403) and accepts its own', async () => {
  const auth = { authorization: `Bearer ${admin}` };
  for (const origin of ['https://evil.example', 'http://127.0.0.1:1', 'null',
    `${d.url}.evil.example`]) {
    await assert.rejects(openEvents(auth, origin), (e) => e.status === 403,
      `origin ${origin} was accepted`);
  }
  await logged(d, /events_ws\.origin.*origin=https:\/\/evil\.example.*action=refuse/);
  // Same origin (what the console page sends) and no Origin (curl, bots) are fine.
  for (const origin of [d.url, d.url.replace('127.0.0.1', '127.0.0.1'), undefined]) {
    const ws = await openEvents(auth, origin);
    ws.send({ type: 'subscribe', after: null });
    assert.ok((await ws.next('subscribed')).cursor);
    await ws.close();
  }
});
