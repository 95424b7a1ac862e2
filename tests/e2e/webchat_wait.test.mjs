// SPDX-License-Identifier: MIT
// The honest wait on the visitor WebSocket and in /v1/stats, against the real daemon
// (docs/sla.md "Honest wait"): with nobody online the welcome claims no number; a staff
// feed opening sends every welcomed visitor a status frame with the number worked out
// from the channel's first responses, and its closing takes the number back; outside
// the calendar's hours (the daemon's clock moved to a Saturday 03:00 in the calendar's
// zone) the frames say when the team is back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, api } from './lib.mjs';
import { StaffFeed, Visitor, nextLocal } from './wait_lib.mjs';

const ZONE = 'Europe/Berlin';
let d;
let agent;
let admin;

before(async () => {
  d = await Daemon.start();
  agent = d.token('agent', 'Wanda Wait');
  admin = d.token('admin', 'Ada Admin');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, d.log);
  }
});

const WAIT_FIELDS = ['expected_reply_ms', 'online', 'open', 'back_at'];
const wait = (f) => Object.fromEntries(WAIT_FIELDS.map((k) => [k, f[k]]));

test('nobody online: the welcome has no number, and /v1/stats agrees', async () => {
  const v = await Visitor.open(d);
  const w = await v.hello();
  assert.deepEqual(wait(w), { expected_reply_ms: null, online: 0, open: true, back_at: null });
  const s = await api(d, 'GET', '/v1/stats', { token: admin });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.staff_online, 0);
  assert.equal(s.json.by_channel.webchat.expected_reply_ms, null);
  assert.deepEqual(s.json.by_channel.webchat.wait,
    { expected_reply_ms: null, online: 0, open: true, back_at: null });
  await v.close();
});

test('a staff feed opening and closing: status frames with the number, then without', async () => {
  // A first response on the web chat: the sample the estimate is made of.
  const a = await Visitor.open(d);
  await a.hello();
  a.send({ type: 'message', client_id: 'w1', text: 'anyone there?' });
  const ack = await a.next('ack');
  const r = await api(d, 'POST', `/v1/conversations/${ack.conv}/messages`,
    { token: admin, body: { text: 'Yes, hello!' } });
  assert.equal(r.status, 201, r.text);

  const v = await Visitor.open(d);
  const w = await v.hello();
  assert.equal(w.online, 0);
  assert.equal(w.expected_reply_ms, null);

  const feed = await StaffFeed.online(d, agent);
  const up = await v.next('status', (f) => f.event === 'wait' && f.online === 1, 8000);
  assert.equal(up.open, true);
  assert.equal(up.back_at, null);
  assert.equal(typeof up.expected_reply_ms, 'number', JSON.stringify(up));
  assert.ok(up.expected_reply_ms >= 0 && up.expected_reply_ms < 60000, JSON.stringify(up));
  assert.ok(!('status' in up), 'a wait change is not a conversation status');

  // A new visitor is told the same in the welcome; /v1/stats shows it per channel.
  const v2 = await Visitor.open(d);
  assert.deepEqual(wait(await v2.hello()), wait(up));
  const s = await api(d, 'GET', '/v1/stats', { token: admin });
  assert.equal(s.json.staff_online, 1);
  assert.equal(s.json.by_channel.webchat.expected_reply_ms, up.expected_reply_ms);
  assert.deepEqual(s.json.by_channel.webchat.wait, wait(up));
  assert.equal(typeof s.json.by_channel.webchat.open, 'number', 'the count stays a count');

  await feed.close();
  const down = await v.next('status', (f) => f.event === 'wait' && f.online === 0, 8000);
  assert.deepEqual(wait(down), { expected_reply_ms: null, online: 0, open: true, back_at: null });
  await v2.next('status', (f) => f.event === 'wait' && f.online === 0, 8000);
  await Promise.all([a.close(), v.close(), v2.close()]);
});

test('outside the calendar: Saturday 03:00 in Berlin, back Monday 09:00', async () => {
  const c = await Daemon.start(
    `calendar office ${ZONE} mon-fri 09:00-17:00\n` +
    'sla quick channel=* priority=* first=2m next=5m resolve=1d calendar=office',
    { testClock: true });
  try {
    const sat = nextLocal(Date.now() + 7 * 864e5, ZONE, 'Sat', 3);
    const mon = nextLocal(sat, ZONE, 'Mon', 9);
    c.setClockOffset(sat - Date.now());
    const v = await Visitor.open(c);
    const w = await v.hello();
    assert.equal(w.open, false, JSON.stringify(w));
    assert.equal(w.back_at, mon);
    assert.equal(w.online, 0);
    assert.equal(w.expected_reply_ms, null, 'no first response yet: no number');
    const s = await api(c, 'GET', '/v1/stats', { token: c.token('agent', 'x') });
    assert.equal(s.json.by_channel.webchat.wait.back_at, mon);
    assert.equal(s.json.by_channel.webchat.wait.open, false);

    // Monday 10:00: open again; the visitors are told on the next refresh.
    c.setClockOffset(mon + 3600000 - Date.now());
    const open = await v.next('status', (f) => f.event === 'wait' && f.open === true, 15000);
    assert.equal(open.back_at, null);
    await v.close();
  } finally {
    await c.stop();
  }
});
