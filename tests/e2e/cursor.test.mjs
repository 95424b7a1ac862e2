// SPDX-License-Identifier: MIT
// Found by tests/fuzz/fuzz_cursor: the feed's resume cursor took numbers with strtoull, so
// an overflowing number, a sign or a space was accepted as some other position instead
// of being refused. Now only decimal "<ms>[-<seq>]" ids that fit in 64 bits are accepted;
// anything else is a 400 on GET /v1/events (after= and Last-Event-ID alike).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon } from './lib.mjs';

let d;
let token;
const SHARDS = 4;

before(async () => {
  d = await Daemon.start(`shards ${SHARDS}`);
  token = d.token('agent', 'Cursor Agent');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

const cursor = (last) => ['0', '0', '0', last].join('.');

// Opens the feed and returns its status and, for an error, the error code; never waits for
// a stream (an accepted cursor streams until the client leaves).
async function open(path, headers = {}) {
  const ctrl = new AbortController();
  const r = await fetch(`${d.url}${path}`, {
    headers: { authorization: `Bearer ${token}`, ...headers }, signal: ctrl.signal,
  });
  const code = r.status === 200 ? null : (await r.json()).error.code;
  ctrl.abort();
  return { status: r.status, code };
}

for (const [what, bad] of [
  ['a number over 64 bits', cursor('18448446744073709551615')],
  ['a sequence over 64 bits', cursor('5-99999999999999999999999')],
  ['a sign', cursor('+5')],
  ['a minus sign', cursor('-1')],
  ['a space', cursor(' 5')],
]) {
  test(`a cursor with ${what} is refused with 400`, async () => {
    for (const how of ['query', 'header']) {
      const r = how === 'query'
        ? await open(`/v1/events?after=${encodeURIComponent(bad)}`)
        : await open('/v1/events', { 'last-event-id': bad });
      assert.equal(r.status, 400, `${how} ${bad}`);
      assert.equal(r.code, 'bad_request');
    }
  });
}

test('well-formed cursors, up to the largest id, are accepted', async () => {
  for (const good of ['0', cursor('18446744073709551615-18446744073709551615'), cursor('007-1')]) {
    assert.equal((await open(`/v1/events?after=${encodeURIComponent(good)}`)).status, 200, good);
  }
});
