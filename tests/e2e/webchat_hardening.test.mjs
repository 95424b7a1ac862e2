// SPDX-License-Identifier: MIT
// The visitor protocol under abuse, against the real daemon (issue 8): hellos store
// nothing until the visitor writes, every frame type has a limit, a long history is
// paged instead of locking the visitor out, odd client_ids and NULs get answers, query
// parameters are decoded once, and a daemon stopped mid-hello/mid-ingest exits cleanly.
// Each test starts its own daemon: the per-address limits would leak between tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Daemon, FrameSocket, api } from './lib.mjs';

class Visitor extends FrameSocket {
  static open(d, query = 'site=default') {
    return this.connect(`${d.url.replace('http', 'ws')}/v1/visitor/ws?${query}`,
      'switchboard.visitor.v1', { headers: { origin: d.url } });
  }

  async hello(extra = {}) {
    this.send({ type: 'hello', site: 'default', token: null, last_seq: null, ...extra });
    return this.next('welcome');
  }

  // The next frame of any of these types (next() waits for one type only).
  nextOf(types, pred = () => true, timeoutMs = 3000) {
    const ok = (fr) => types.includes(fr.type) && pred(fr);
    const i = this.frames.findIndex(ok);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${types} frame in ${timeoutMs} ms`)),
        timeoutMs);
      this.waiters.push((fr) => {
        if (!ok(fr)) return false;
        clearTimeout(t);
        this.frames.splice(this.frames.indexOf(fr), 1);
        resolve(fr);
        return true;
      });
    });
  }
}

// Every key in the daemon's embedded Redis.
function keys(d) {
  const out = execFileSync('redis-cli', ['-s', path.join(d.dir, 'var', 'redis.sock'),
    '--scan'], { encoding: 'utf8' });
  return new Set(out.split('\n').filter(Boolean));
}

async function withDaemon(fn) {
  const d = await Daemon.start();
  try {
    await fn(d);
  } finally {
    const r = await d.stop();
    assert.equal(r.code, 0, d.log);
  }
}

test('hellos without a message store nothing; the token still maps to one contact', () =>
  withDaemon(async (d) => {
    // Warm up (functions loaded, stats keys) so only the hellos could add keys.
    const warm = await Visitor.open(d);
    await warm.hello();
    await warm.close();
    const before = keys(d);
    const tokens = [];
    for (let i = 0; i < 20; i++) {
      const v = await Visitor.open(d);
      const w = await v.hello({ name: `Anon ${i}`, email: `a${i}@example.com` });
      assert.match(w.token, /^vt_[0-9a-f]{32}$/);
      tokens.push(w.token);
      await v.close();
    }
    const added = [...keys(d)].filter((k) => !before.has(k));
    assert.deepEqual(added, [], 'hellos alone add no keys');

    // The token comes back: kept (token null), no conversation yet; then the first message
    // creates the contact, and the same token later resumes that conversation.
    const v = await Visitor.open(d);
    const w = await v.hello({ token: tokens[3], name: 'Vera' });
    assert.equal(w.token, null, 'a token of ours is kept even before it wrote');
    assert.equal(w.conv, null);
    v.send({ type: 'message', client_id: 'first', text: 'first words' });
    const ack = await v.next('ack');
    await v.close();
    const conv = await api(d, 'GET', `/v1/conversations/${ack.conv}`,
      { token: d.token('admin', 'staff') });
    assert.equal(conv.json.contact.name, 'Vera', 'the name of the hello reaches the contact');
    const back = await Visitor.open(d);
    const wb = await back.hello({ token: tokens[3] });
    assert.equal(wb.token, null);
    assert.equal(wb.conv, ack.conv);
    assert.deepEqual(wb.history.map((m) => m.text), ['first words']);
    await back.close();
  }));

test('a hello flood from one address gets rate_limited; a later hello goes through', () =>
  withDaemon(async (d) => {
    const socks = await Promise.all(Array.from({ length: 60 }, () => Visitor.open(d)));
    socks.forEach((s) => s.send({ type: 'hello', site: 'default', token: null }));
    const got = await Promise.all(socks.map((s) => s.nextOf(['welcome', 'error'])));
    const limited = got.filter((f) => f.type === 'error');
    assert.ok(limited.length >= 20, `${limited.length} of 60 hellos limited`);
    assert.ok(limited.every((f) => f.retry_after_ms > 0));
    // The same socket says hello again after the time it was told.
    const i = got.findIndex((f) => f.type === 'error');
    await new Promise((r) => setTimeout(r, got[i].retry_after_ms));
    socks[i].send({ type: 'hello', site: 'default', token: null });
    assert.match((await socks[i].next('welcome')).token, /^vt_/);
    await Promise.all(socks.map((s) => s.close()));
  }));

test('email frames are limited to a few a minute', () => withDaemon(async (d) => {
  const admin = d.token('admin', 'staff');
  const v = await Visitor.open(d);
  await v.hello();
  v.send({ type: 'message', client_id: 'e0', text: 'hello' });
  const ack = await v.next('ack');
  for (let i = 0; i < 30; i++) v.send({ type: 'email', email: `me${i}@example.com` });
  const answers = [];
  for (let i = 0; i < 30; i++) {
    answers.push(await v.nextOf(['status', 'error']));
  }
  const saved = answers.filter((f) => f.type === 'status');
  const limited = answers.filter((f) => f.type === 'error');
  assert.ok(saved.length >= 1 && saved.length <= 3, `${saved.length} saved`);
  assert.ok(saved.every((f) => f.status === 'email_saved'));
  assert.equal(limited.length, 30 - saved.length);
  assert.ok(limited.every((f) => f.code === 'rate_limited' && f.retry_after_ms > 1000));
  const msgs = await api(d, 'GET', `/v1/conversations/${ack.conv}/messages`, { token: admin });
  assert.equal(msgs.json.items.filter((m) => m.kind === 'note').length, saved.length);
  await v.close();
}));

test('typing floods are coalesced silently; bad and unknown frames are capped', () =>
  withDaemon(async (d) => {
    const v = await Visitor.open(d);
    await v.hello();
    v.send({ type: 'message', client_id: 't0', text: 'hi' });
    await v.next('ack');
    for (let i = 0; i < 50; i++) v.send({ type: 'typing', on: true });
    for (let i = 0; i < 50; i++) v.send({ type: 'dance' });
    for (let i = 0; i < 50; i++) v.send('{"type":');
    for (let i = 0; i < 50; i++) v.send({ type: 'ping' });
    // Frames are handled in order: the ack of this message comes after all of them.
    v.send({ type: 'message', client_id: 't1', text: 'after the flood' });
    await v.next('ack', (f) => f.client_id === 't1');
    const errors = v.frames.filter((f) => f.type === 'error');
    const pongs = v.frames.filter((f) => f.type === 'pong');
    assert.ok(errors.length + pongs.length <= 15, `${errors.length} errors, ${pongs.length} pongs`);
    assert.ok(errors.length >= 1, 'the first bad frames are still answered');
    const m = await api(d, 'GET', '/metrics');
    const limited = +/^switchboard_webchat_rate_limited_total (\d+)$/m.exec(m.text)[1];
    assert.ok(limited >= 150, `${limited} frames counted as limited`);
    await v.close();
  }));

test('history requests are limited, and each one is answered', () => withDaemon(async (d) => {
  const v = await Visitor.open(d);
  await v.hello();
  v.send({ type: 'message', client_id: 'h0', text: 'hi' });
  const ack = await v.next('ack');
  for (let i = 0; i < 40; i++) v.send({ type: 'history', before: ack.seq, limit: 50 });
  const answers = [];
  for (let i = 0; i < 40; i++) answers.push(await v.nextOf(['history', 'error']));
  const pages = answers.filter((f) => f.type === 'history');
  const limited = answers.filter((f) => f.type === 'error');
  assert.ok(pages.length >= 1 && limited.length >= 20, `${pages.length} pages`);
  assert.ok(pages.every((f) => f.more === false && Array.isArray(f.messages)));
  assert.ok(limited.every((f) => f.code === 'rate_limited' && f.retry_after_ms > 0));
  v.send({ type: 'history', before: 'not-a-seq' });
  assert.equal((await v.nextOf(['history', 'error'])).code, 'bad_request');
  await v.close();
}));

test('client_ids are bounded; every stored message is acked, every refusal answered', () =>
  withDaemon(async (d) => {
    const v = await Visitor.open(d);
    await v.hello();
    const odd = ['"'.repeat(200), '\u0001'.repeat(90), 'x'.repeat(129), 'ok\u007f'];
    for (const cid of odd) {
      v.send({ type: 'message', client_id: cid, text: 'odd id' });
      const e = await v.next('error');
      assert.equal(e.code, 'bad_request');
      assert.equal(e.client_id, cid, 'the error carries the client_id');
    }
    const quotes = '"\\'.repeat(64); // 128 printable characters that JSON escapes
    v.send({ type: 'message', client_id: quotes, text: 'quoted id' });
    const ack = await v.next('ack');
    assert.equal(ack.client_id, quotes);
    v.send({ type: 'message', client_id: quotes, text: 'quoted id' });
    assert.equal((await v.next('ack')).id, ack.id, 'the resend is acked with the same id');
    await v.close();
  }));

test('a NUL in a frame is refused by name, with the client_id', () => withDaemon(async (d) => {
  const v = await Visitor.open(d);
  await v.hello();
  v.send('{"type":"message","client_id":"nul-1","text":"a\\u0000b"}');
  const e = await v.next('error');
  assert.equal(e.code, 'bad_request');
  assert.equal(e.client_id, 'nul-1');
  assert.match(e.message, /text contains a NUL character/);
  assert.doesNotMatch(e.message, /JSON_ALLOW_NUL/);
  v.send('{"type":"message","client_id":"nul-2","te\\u0000xt":"a"}');
  const k = await v.next('error');
  assert.equal(k.code, 'bad_request');
  assert.match(k.message, /NUL character/);
  assert.doesNotMatch(k.message, /JSON_ALLOW_NUL|not supported/);
  v.send({ type: 'message', client_id: 'nul-3', text: 'still fine' });
  assert.equal((await v.next('ack')).client_id, 'nul-3');
  await v.close();
}));

test('a hello name or email with a line break is refused, as the API refuses it', () =>
  withDaemon(async (d) => {
    const v = await Visitor.open(d);
    for (const extra of [{ name: 'Eve\r\nX-Injected: 1' }, { name: 'Eve\u001b]0;t\u0007' },
      { email: 'a@b.example\r\nBcc: x@y.example' }]) {
      v.send({ type: 'hello', site: 'default', token: null, last_seq: null, ...extra });
      const e = await v.next('error');
      assert.equal(e.code, 'bad_request', JSON.stringify(extra));
    }
    const w = await v.hello({ name: 'Eve Ok' });
    assert.match(w.token, /^vt_/);
    await v.close();
  }));

test('query parameters are decoded once: an encoded & is part of the value', () =>
  withDaemon(async (d) => {
    const ok = await Visitor.open(d, 'site=de%66ault');
    await ok.hello();
    await ok.close();
    await assert.rejects(Visitor.open(d, 'site=default%26x%3D1'), (e) => e.status === 404);
    await assert.rejects(Visitor.open(d, 'x=1%26site%3Ddefault&site=nope'),
      (e) => e.status === 404);
    await assert.rejects(Visitor.open(d, 'site=default%00')); // refused by lws before us
    assert.equal((await api(d, 'GET', '/healthz')).status, 200);
  }));

test('300 long replies: the welcome is one page, history pages bring the rest once', () =>
  withDaemon(async (d) => {
    const admin = d.token('admin', 'staff');
    const v = await Visitor.open(d);
    const w0 = await v.hello();
    v.send({ type: 'message', client_id: 'h0', text: 'tell me everything' });
    const ack = await v.next('ack');
    await v.close();
    const texts = [];
    for (let i = 0; i < 300; i++) {
      const t = `${String(i).padStart(3, '0')} ${'x'.repeat(8000)}`;
      texts.push(t);
      const r = await api(d, 'POST', `/v1/conversations/${ack.conv}/messages`,
        { token: admin, body: { text: t } });
      assert.equal(r.status, 201);
    }
    // Compared by their first words: a failure should not print 2.4 MB.
    const head = (list) => list.map((m) => m.text.slice(0, 18));
    const all = head([{ text: 'tell me everything' }, ...texts.map((text) => ({ text }))]);

    async function readAll(sock, first, after) {
      const got = [...first.history];
      let { more, before } = first;
      while (more) {
        sock.send({ type: 'history', before, after, limit: 50 });
        const f = await sock.nextOf(['history', 'error']);
        if (f.type === 'error') {
          assert.equal(f.code, 'rate_limited');
          await new Promise((r) => setTimeout(r, f.retry_after_ms));
          continue;
        }
        assert.ok(f.messages.length > 0 && f.messages.length <= 50);
        got.unshift(...f.messages);
        ({ more, before } = f);
      }
      return got;
    }

    let seen;
    for (const last of [null, '0']) {
      const s = await Visitor.open(d);
      const w = await s.hello({ token: w0.token, last_seq: last });
      assert.equal(w.conv, ack.conv);
      assert.equal(w.more, true);
      assert.ok(w.history.length > 0 && w.history.length <= 50);
      assert.equal(w.history.at(-1).text, texts[299], 'the welcome has the newest');
      seen = await readAll(s, w);
      assert.deepEqual(head(seen), all, 'everything, once, in order');
      assert.ok(!s.frames.some((f) => f.type === 'error'));
      await s.close();
    }
    // A reconnect that missed 200 replies pages back down to its last_seq, no further.
    const mid = seen[100];
    assert.equal(mid.text, texts[99]);
    const r = await Visitor.open(d);
    const wr = await r.hello({ token: w0.token, last_seq: mid.seq });
    const missed = await readAll(r, wr, mid.seq);
    assert.deepEqual(head(missed), all.slice(101));
    await r.close();
  }));

test('visitors leaving mid-hello and a stop mid-ingest end cleanly', async () => {
  const d = await Daemon.start();
  let stopped = false;
  try {
    await leaveAndStop(d);
    stopped = true;
  } finally {
    if (!stopped) await d.stop();
  }
});

async function leaveAndStop(d) {
  for (let round = 0; round < 2; round++) {
    const socks = await Promise.all(Array.from({ length: 8 }, () => Visitor.open(d)));
    socks.forEach((s, i) => {
      s.send({ type: 'hello', site: 'default', token: null });
      if (i % 2) s.send({ type: 'message', client_id: `m${i}`, text: 'x' });
      s.ws.terminate();
    });
  }
  const h = await api(d, 'GET', '/healthz');
  assert.equal(h.status, 200, d.log);
  const socks = await Promise.all(Array.from({ length: 10 }, () => Visitor.open(d)));
  await Promise.all(socks.map((s) => s.hello()));
  socks.forEach((s, i) => {
    for (let k = 0; k < 10; k++) s.send({ type: 'message', client_id: `s${i}-${k}`, text: 'y' });
  });
  d.proc.kill('SIGTERM');
  const r = await d.stop();
  assert.equal(r.code, 0, d.log);
  assert.doesNotMatch(d.log, /AddressSanitizer|LeakSanitizer|runtime error/);
}
