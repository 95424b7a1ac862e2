// SPDX-License-Identifier: MIT
// The HTTP front of the real daemon under hostile input: a forged Origin cannot add keys
// to the JSON log, and malformed requests get a JSON error before the connection closes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Daemon, sleep } from './lib.mjs';

let d;

before(async () => {
  d = await Daemon.start('log_format json\nsite default site-secret http://allowed.example');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, d.log);
  }
});

// Waits (bounded) until the daemon's log has a line matching re.
async function logLine(re, timeoutMs = 5000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const line = d.log.split('\n').find((l) => re.test(l));
    if (line) return line;
    if (Date.now() > until) throw new Error(`no log line ${re} in:\n${d.log}`);
    await sleep(20);
  }
}

test('a quoted Origin stays one JSON value in the log', async () => {
  const evil = '"x\\" admin=1 reason=ok';
  const ws = new WebSocket(`${d.url.replace('http', 'ws')}/v1/visitor/ws?site=default`,
    'switchboard.visitor.v1', { headers: { origin: evil } });
  const status = await new Promise((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve(101));
    ws.on('error', () => {});
  });
  ws.terminate();
  assert.equal(status, 403);
  const line = await logLine(/"event":"webchat.refused".*admin/);
  const o = JSON.parse(line);
  assert.equal(o.origin, evil);
  assert.equal(o.reason, 'origin');
  assert.equal(o.admin, undefined);
});
