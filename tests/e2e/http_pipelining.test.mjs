// SPDX-License-Identifier: MIT
// Found by tests/fuzz/fuzz_http: a request with a body pipelined behind another on one
// connection made lws 4.1 repeat a callback forever (the whole daemon stopped answering
// anyone) or hand the body from freed memory (ASan: heap-use-after-free). Now that
// connection is closed before its body is read (the client retries, RFC 9112 §9.3.2) and
// everyone else is served.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Daemon } from './lib.mjs';

let d;

before(async () => { d = await Daemon.start(); });

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

// Sends raw bytes on one connection (then half-closes it); resolves with everything the server sent
// once it closes the connection, or rejects after timeoutMs.
function raw(bytes, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(d.port, '127.0.0.1');
    let got = '';
    const t = setTimeout(() => { s.destroy(); reject(new Error(`not closed; got ${got}`)); },
      timeoutMs);
    s.on('data', (b) => { got += b; });
    s.on('close', () => { clearTimeout(t); resolve(got); });
    s.on('error', () => {});
    s.end(bytes); // and half-close, as a client that has sent everything may
  });
}

async function healthy() {
  const r = await fetch(`${d.url}/healthz`, { signal: AbortSignal.timeout(3000) });
  return r.status;
}

for (const [name, second] of [
  ['a POST with its body', 'POST /v1/inbound HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    'Content-Length: 13\r\n\r\n{"text":"hi"}'],
  ['a POST whose body is still coming', 'POST /v1/inbound HTTP/1.1\r\nHost: x\r\n' +
    'Content-Type: application/json\r\nContent-Length: 89\r\n\r\n{"text":"hi"}'],
  ['a GET with a body that never comes', 'GET /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n'],
]) {
  test(`${name}, pipelined behind a GET, closes that connection and stalls nobody`, async () => {
    const conn = raw(`GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n${second}`);
    assert.equal(await healthy(), 200, 'another client is served meanwhile');
    const got = await conn;
    assert.match(got, /^HTTP\/1\.1 200/, 'the first request was answered');
    assert.equal(await healthy(), 200);
    assert.match(d.log, /http\.pipelined_body/);
  });
}

test('keep-alive requests one after another, bodies included, still work', async () => {
  const tok = d.token('bot', 'pipe');
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${d.url}/v1/inbound`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
      body: JSON.stringify({ contact: { external_id: 'pipe-1' }, text: `keep-alive ${i}` }),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(r.status, 201, await r.text());
  }
});
