// SPDX-License-Identifier: MIT
// Later requests of a keep-alive connection get the same checks as the first (issue 8,
// item 12): a 1 MiB header, 2,000 headers, a 100 KB request line, `%00` in the URL or a
// garbage request line on the second request of a connection is answered with its JSON
// error and the connection is closed (lws alone closed it without a word). Keep-alive and
// pipelining still work, an idle keep-alive connection costs no CPU and is not counted
// against the per-address cap on connections in the header phase, while one in the middle
// of its next head is (docs/hardening-http.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { Daemon, sleep } from './lib.mjs';

let d;

before(async () => { d = await Daemon.start(); });

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

// A raw HTTP/1.1 client connection that reads responses one at a time.
class Conn {
  static open(port) {
    return new Promise((resolve, reject) => {
      const c = new Conn();
      c.buf = Buffer.alloc(0);
      c.ended = false;
      c.waiters = [];
      c.s = net.connect(port, '127.0.0.1', () => resolve(c));
      c.s.on('error', (e) => { c.error = e; c.wake(); reject(e); });
      c.s.on('data', (b) => { c.buf = Buffer.concat([c.buf, b]); c.wake(); });
      c.s.on('end', () => { c.ended = true; c.wake(); });
      c.s.on('close', () => { c.ended = true; c.wake(); });
    });
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  // Resolves once pred() is true; rejects after timeoutMs (with what arrived so far).
  until(pred, what, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${what}: timed out; got ${JSON.stringify(
        this.buf.toString('latin1').slice(0, 300))} ended=${this.ended}`)), timeoutMs);
      const check = () => {
        const v = pred();
        if (v !== undefined) { clearTimeout(t); resolve(v); } else this.waiters.push(check);
      };
      check();
    });
  }

  send(bytes) { this.s.write(bytes); }

  // The next whole response (every answer of the daemon has a Content-Length).
  response(timeoutMs) {
    return this.until(() => {
      const text = this.buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return this.ended ? null : undefined;
      const head = text.slice(0, end);
      const m = /^content-length:\s*(\d+)/im.exec(head);
      const len = m ? Number(m[1]) : 0;
      if (this.buf.length < end + 4 + len) return this.ended ? null : undefined;
      const body = this.buf.subarray(end + 4, end + 4 + len).toString('utf8');
      this.buf = this.buf.subarray(end + 4 + len);
      return { status: Number(head.split(' ')[1]), head, body };
    }, 'response', timeoutMs);
  }

  // Resolves once the daemon has closed (at least its side of) the connection.
  closed(timeoutMs) { return this.until(() => (this.ended ? true : undefined), 'close', timeoutMs); }

  destroy() { this.s.destroy(); }
}

// Waits (bounded) until pred() holds, looking every 10 ms.
async function waitFor(pred, what, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what()}`);
    await sleep(10);
  }
}

const GET = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

async function ok(c, path = '/healthz') {
  c.send(GET(path));
  const r = await c.response();
  assert.ok(r, 'an answer, not a close');
  assert.equal(r.status, 200, r.body);
  assert.doesNotMatch(r.head, /connection: close/i);
  return r;
}

const second = [
  ['a 1 MiB header', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1 << 20)}\r\n\r\n`,
    431, 'too_large'],
  ['2,000 headers', `GET /healthz HTTP/1.1\r\nHost: x\r\n${'X-A: b\r\n'.repeat(2000)}\r\n`,
    431, 'too_large'],
  ['a 100 KB request line', `GET /${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    414, 'too_large'],
  ['%00 in the URL', 'GET /heal%00thz HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'bad_request'],
  ['a garbage request line', 'HELLO WORLD\r\n\r\n', 400, 'bad_request'],
  // what lws itself would take (or answer with its own page): the gate's own checks
  ['obsolete line folding', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n', 400,
    'bad_request'],
  ['a control byte in a header field', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\x01c\r\n\r\n',
    400, 'bad_request'],
  ['a method lws does not know', 'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n', 501, 'not_implemented'],
];

for (const [name, bytes, status, code] of second) {
  test(`${name} on the second request of a keep-alive connection gets ${status} JSON`, async () => {
    const c = await Conn.open(d.port);
    try {
      await ok(c);
      c.send(bytes);
      const r = await c.response();
      assert.ok(r, `${name}: the connection was closed without an answer`);
      assert.equal(r.status, status, r.body);
      assert.match(r.head, /content-type: application\/json/i);
      assert.match(r.head, /connection: close/i);
      const j = JSON.parse(r.body);
      assert.equal(j.error.code, code);
      assert.equal(typeof j.error.message, 'string');
      await c.closed();
    } finally {
      c.destroy();
    }
  });
}

test('the gate follows a keep-alive connection through bodies to its third request', async () => {
  const tok = d.token('bot', 'keepalive');
  const c = await Conn.open(d.port);
  try {
    await ok(c);
    const body = JSON.stringify({ contact: { external_id: 'ka-1' }, text: 'over keep-alive' });
    c.send(`POST /v1/inbound HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const r = await c.response();
    assert.equal(r.status, 201, r.body);
    await ok(c, '/readyz');
    c.send('GET /a%00 HTTP/1.1\r\nHost: x\r\n\r\n');
    const bad = await c.response();
    assert.equal(bad.status, 400, bad.body);
    assert.equal(JSON.parse(bad.body).error.code, 'bad_request');
    await c.closed();
  } finally {
    c.destroy();
  }
});

test('keep-alive requests one after another are all answered, the connection stays open',
  async () => {
    const c = await Conn.open(d.port);
    try {
      for (let i = 0; i < 5; i++) await ok(c, i % 2 ? '/readyz' : '/healthz');
      c.send(GET('/nowhere'));
      const r = await c.response();
      assert.equal(r.status, 404, r.body);
      await ok(c);
      assert.equal(c.ended, false);
    } finally {
      c.destroy();
    }
  });

test('pipelined requests are answered in order, and the connection goes on', async () => {
  const c = await Conn.open(d.port);
  try {
    c.send(GET('/healthz') + GET('/nowhere') + GET('/readyz') + GET('/nowhere/2'));
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await c.response()).status);
    assert.deepEqual(got, [200, 404, 200, 404]);
    await ok(c);
    await ok(c, '/readyz');
  } finally {
    c.destroy();
  }
});

// The daemon's CPU time (user + system) in clock ticks (1/100 s).
function cpuTicks() {
  const stat = fs.readFileSync(`/proc/${d.proc.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

test('an idle keep-alive connection costs the daemon no CPU', async () => {
  const c = await Conn.open(d.port);
  try {
    await ok(c);
    await ok(c);
    // The window is the point here: lws 4.1 handles no event of a connection whose rx is
    // held, so a gate held over lws's wait for POLLOUT spun the loop (~100 ticks a second).
    const t0 = cpuTicks();
    await sleep(1000);
    const used = cpuTicks() - t0;
    assert.ok(used < 30, `the daemon used ${used} ticks of CPU in 1 s with one idle connection`);
    await ok(c);
  } finally {
    c.destroy();
  }
});

// The header phase is crowded from 128 connections in it (half the pool); then an address
// with 32 there gets no more. IDLE keep-alive connections must not count.
const MANY = 140;

// n connections, each through one request and idle (one at a time: a connection counts
// from its accept until its first head is complete, and 128 at once would be crowded).
async function openKeptAlive(n) {
  const conns = [];
  for (let i = 0; i < n; i++) {
    const c = await Conn.open(d.port);
    conns.push(c);
    await ok(c);
  }
  return conns;
}

test('idle keep-alive connections are not counted against the per-address cap', async () => {
  const idle = await openKeptAlive(MANY);
  try {
    // With every idle connection counted, the header phase would be crowded and this
    // address far over its cap: a new connection would get a 429.
    const c = await Conn.open(d.port);
    try { await ok(c); } finally { c.destroy(); }
    // And each idle connection still takes its next request.
    await Promise.all(idle.map((k) => ok(k, '/readyz')));
  } finally {
    for (const c of idle) c.destroy();
  }
});

test('keep-alive connections in the middle of their next head count against the cap',
  async () => {
    const slow = await openKeptAlive(MANY);
    try {
      for (const c of slow) c.send('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1');
      // Slowloris over keep-alive: as the daemon sees these heads begin, the first 128 make
      // the header phase crowded, with this address over its cap; the rest are refused.
      const is429 = (c) => c.buf.toString('latin1').startsWith('HTTP/1.1 429');
      await waitFor(() => slow.filter(is429).length >= MANY - 128,
        () => `${MANY - 128} refusals; got ${slow.filter(is429).length}`, 4000);
      assert.equal(slow.filter(is429).length, MANY - 128);
      // And so is a new connection from this address, with the slow ones still pending.
      const c = await Conn.open(d.port);
      try {
        c.send(GET('/healthz'));
        const r = await c.response();
        assert.ok(r, 'an answer, not a close');
        assert.equal(r.status, 429, r.body);
        assert.equal(JSON.parse(r.body).error.code, 'rate_limited');
      } finally {
        c.destroy();
      }
    } finally {
      for (const c of slow) c.destroy();
    }
  });
