// SPDX-License-Identifier: MIT
// The live feeds under abuse, against the real daemon: tokens in URLs only where a
// browser needs them (the two feeds), the events WebSocket refusing other sites'
// pages (Origin), cursors that stay whole with many shards, and readers that stop
// reading being closed with their memory given back (docs/hardening-feeds.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, Daemon, FrameSocket, api } from './lib.mjs';

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

test('--check refuses a prefix too long for the key buffers, and braces in it', () => {
  const dir = fs.mkdtempSync(path.join(process.env.SB_TEST_TMP || os.tmpdir(), 'sb-check-'));
  try {
    const conf = path.join(dir, 'sb.conf');
    const check = (text) => {
      fs.writeFileSync(conf, text);
      return spawnSync(BIN, ['--check', '-c', conf], { encoding: 'utf8' });
    };
    const long = 'p'.repeat(65);
    let r = check(`prefix ${long}\nmax_outbound_buffer 12X\n`);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`sb\\.conf:1: prefix: '${long}' is longer than 64 bytes`));
    assert.match(r.stderr, /sb\.conf:2: max_outbound_buffer: '12X' is not a size/);
    r = check('prefix "acme{1}:"\n');
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /may not contain braces/);
    r = check(`prefix ${'p'.repeat(64)}\nmax_outbound_buffer 64M\n`);
    assert.equal(r.status, 0, r.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// POSTs n customer messages, each from a new contact (so a new conversation), `width` at once.
async function inboundMany(daemon, token, n, tag, width = 8) {
  const ids = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const r = await api(daemon, 'POST', '/v1/inbound', { token,
        body: { contact: { external_id: `${tag}-${i}` }, text: `hello ${i}` } });
      assert.equal(r.status, 201, r.text);
      ids[i] = r.json.id;
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return ids;
}

test('with shards 512 every event carries its whole cursor, on SSE and WebSocket', async () => {
  const big = await Daemon.start('shards 512');
  try {
    const tok = big.token('admin', 'Big');
    const ws = await FrameSocket.connect(`${big.url.replace('http', 'ws')}/v1/events/ws`,
      'switchboard.events.v1', { headers: { authorization: `Bearer ${tok}` } });
    ws.send({ type: 'subscribe', after: null });
    await ws.next('subscribed');
    const N = 500; // conversations over ~320 shards: cursors of ~5 KB
    const ctrl = new AbortController();
    const r = await fetch(`${big.url}/v1/events`,
      { headers: { authorization: `Bearer ${tok}` }, signal: ctrl.signal });
    assert.equal(r.status, 200);
    const sseEvents = [];
    let hellos = 0;
    const reading = (async () => {
      const dec = new TextDecoder();
      let buf = '';
      let id = null;
      try {
        for await (const chunk of r.body) {
          buf += dec.decode(chunk, { stream: true });
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            id = null;
            let data = null;
            for (const line of block.split('\n')) {
              if (line.startsWith('id:')) id = line.slice(3).trimStart();
              else if (line.startsWith('data: ')) data = JSON.parse(line.slice(6));
            }
            if (data) sseEvents.push({ id, data });
            if (data?.type === 'message' && data.message?.text?.startsWith('hello ')) hellos++;
          }
          if (hellos >= N) break;
        }
      } catch (e) { if (e.name !== 'AbortError') throw e; }
    })();
    const ids = await inboundMany(big, tok, N, 'wide');
    const deadline = setTimeout(() => ctrl.abort(), 20000);
    await reading;
    clearTimeout(deadline);
    ctrl.abort();
    const mine = new Set(ids);
    const got = sseEvents.filter((e) => mine.has(e.data.message?.id));
    assert.equal(got.length, N, `SSE delivered ${got.length} of ${N}`);
    const cursor = /^[0-9-]+(\.[0-9-]+){511}$/;
    for (const e of got) assert.match(e.id ?? '', cursor, 'an SSE event without its whole cursor');
    assert.ok(got[N - 1].id.length > 4096, `cursor only ${got[N - 1].id.length} bytes`);

    // The WebSocket's frames carry the same cursors, and one resumes a new socket exactly.
    const frames = [];
    while (frames.length < N) frames.push(await ws.next('event', (fr) => mine.has(fr.event.message?.id), 10000));
    for (const fr of frames) assert.match(fr.id, cursor, 'a WebSocket event without its cursor');
    const half = frames[N / 2 - 1];
    const again = await FrameSocket.connect(`${big.url.replace('http', 'ws')}/v1/events/ws`,
      'switchboard.events.v1', { headers: { authorization: `Bearer ${tok}` } });
    again.send({ type: 'subscribe', after: half.id });
    assert.match((await again.next('subscribed')).cursor, cursor);
    const rest = [];
    while (rest.length < N / 2) rest.push(await again.next('event', (fr) => mine.has(fr.event.message?.id), 10000));
    assert.deepEqual(rest.map((fr) => fr.event.message.id).sort(),
      frames.slice(N / 2).map((fr) => fr.event.message.id).sort());
    await again.close();
    await ws.close();
  } finally {
    const r = await big.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}`);
  }
});

// ---- Readers that stop reading ----

async function metrics(daemon) {
  const text = await (await fetch(`${daemon.url}/metrics`)).text();
  const get = (name) => {
    const m = text.match(new RegExp(`^${name.replace(/[{}"=]/g, '\\$&')} (\\S+)$`, 'm'));
    return m ? Number(m[1]) : undefined;
  };
  return {
    text,
    buffered: get('switchboard_outbound_buffered_bytes'),
    limit: get('switchboard_outbound_buffer_limit_bytes'),
    conns: get('switchboard_http_open_connections'),
    feeds: get('switchboard_sse_streams'),
    queueFull: get('switchboard_slow_readers_closed_total{reason="queue_full"}'),
    overLimit: get('switchboard_slow_readers_closed_total{reason="over_limit"}'),
  };
}

// Polls /metrics until pred(m) holds; returns m. Fails after timeoutMs with the last figures.
async function metricsUntil(daemon, pred, what, timeoutMs = 20000) {
  const until = Date.now() + timeoutMs;
  let m;
  for (;;) {
    m = await metrics(daemon);
    if (pred(m)) return m;
    if (Date.now() > until) {
      throw new Error(`${what}: not within ${timeoutMs} ms; last: ${JSON.stringify(
        { ...m, text: undefined })}\n${daemon.log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// An SSE reader on a raw socket: resolves once the stream started; `ended` when it closes.
function rawSse(daemon, token) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(daemon.port, '127.0.0.1');
    let head = '';
    sock.ended = new Promise((r) => sock.on('close', r));
    const onData = (b) => {
      head += b.toString('latin1');
      if (head.includes(': connected')) {
        sock.off('data', onData);
        sock.on('data', () => {}); // once resumed: read and drop
        sock.pause(); // and now stop reading
        resolve(sock);
      }
    };
    sock.on('data', onData);
    sock.on('error', () => {});
    sock.on('connect', () => sock.write(`GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Authorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`));
    setTimeout(() => reject(new Error(`no SSE stream: ${head}`)), 5000);
  });
}

// An events WebSocket reader that stops reading once subscribed.
async function pausedWs(daemon, token) {
  const ws = await FrameSocket.connect(`${daemon.url.replace('http', 'ws')}/v1/events/ws`,
    'switchboard.events.v1', { headers: { authorization: `Bearer ${token}` } });
  ws.send({ type: 'subscribe', after: null });
  await ws.next('subscribed');
  ws.ws._socket.pause();
  return ws;
}

// ~160 kB events (attachment metadata within the API's bounds: 20 attachments, URLs up to
// 8000 bytes): n of them to every reader.
async function bigEvents(daemon, token, n, tag) {
  const attachments = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}.txt`,
    type: 'text/plain', size: 1, url: `https://files.example/${'a'.repeat(7900)}` }));
  const contact = { external_id: `${tag}-${Date.now()}` };
  for (let i = 0; i < n; i++) {
    const r = await api(daemon, 'POST', '/v1/inbound', { token,
      body: { channel: 'api', contact, text: `${tag} ${i}`, attachments } });
    assert.equal(r.status, 201, r.text);
  }
}

test('readers that stop reading are closed for real and their buffers freed', async () => {
  const before = await metrics(d);
  assert.equal(before.limit, 256 * 1024 * 1024, 'the default max_outbound_buffer');
  const sses = await Promise.all([1, 2, 3].map(() => rawSse(d, admin)));
  const wss = await Promise.all([1, 2, 3].map(() => pausedWs(d, admin)));
  await metricsUntil(d, (m) => m.feeds === before.feeds + 6, 'six feeds open');
  await bigEvents(d, admin, 100, 'paused'); // 16 MB to each reader: more than queue + kernel
  // Each reader's queue overflowed: it is closed, its connection gone, its bytes freed.
  const m = await metricsUntil(d, (x) => x.feeds === before.feeds &&
    x.conns <= before.conns + 1 && x.buffered === 0, 'paused readers closed and freed', 20000);
  assert.ok(m.queueFull >= before.queueFull + 6, `queue_full closes: ${m.queueFull}`);
  assert.match(d.log, /sse\.slow/);
  assert.match(d.log, /events_ws\.slow/);
  // The clients, reading again, find their connections closed by the server.
  for (const s of sses) s.resume();
  for (const w of wss) w.ws._socket.resume();
  const closedIn = (p, what) => Promise.race([p, new Promise((_, rej) =>
    setTimeout(() => rej(new Error(`${what} not closed`)), 10000))]);
  await Promise.all(sses.map((s) => closedIn(s.ended, 'SSE socket')));
  await Promise.all(wss.map((w) => closedIn(w.closed, 'WebSocket')));
});

test('past max_outbound_buffer the largest queues are closed first; a fast reader is kept',
  async () => {
    const small = await Daemon.start('max_outbound_buffer 6M');
    try {
      const tok = small.token('admin', 'Small');
      const before = await metrics(small);
      assert.equal(before.limit, 6 * 1024 * 1024);
      const fast = await FrameSocket.connect(`${small.url.replace('http', 'ws')}/v1/events/ws`,
        'switchboard.events.v1', { headers: { authorization: `Bearer ${tok}` } });
      fast.send({ type: 'subscribe', after: null });
      await fast.next('subscribed');
      const slow = await Promise.all([1, 2, 3, 4].map(() => pausedWs(small, tok)));
      const sses = await Promise.all([1, 2].map(() => rawSse(small, tok)));
      // Watch the figure while events flow: it never goes far past the cap.
      let peak = 0;
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          peak = Math.max(peak, (await metrics(small)).buffered ?? Infinity);
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
      await bigEvents(small, tok, 75, 'capped');
      const m = await metricsUntil(small, (x) => x.buffered === 0 && x.feeds === 1,
        'slow readers closed, the fast one left');
      watching = false;
      await watcher;
      assert.ok(m.overLimit >= 1, `over_limit closes: ${m.overLimit}`);
      assert.match(small.log, /http\.shed .*limit=6291456/);
      // One loop turn of events may land before the cap is enforced: 4 MiB of slack.
      assert.ok(peak <= 6 * 1024 * 1024 + 4 * 1024 * 1024, `peak ${peak} bytes buffered`);
      // The reader that kept reading got every event and is still open.
      const got = fast.frames.filter((fr) => fr.type === 'event' &&
        fr.event.message?.text?.startsWith('capped ')).length;
      assert.equal(got, 75);
      fast.send({ type: 'ping' });
      await fast.next('pong');
      await fast.close();
      for (const s of sses) s.destroy();
      for (const w of slow) w.ws.terminate();
    } finally {
      const r = await small.stop();
      assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}`);
    }
  });
