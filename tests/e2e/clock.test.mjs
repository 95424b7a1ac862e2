// SPDX-License-Identifier: MIT
// Time-driven behaviour without sleeping: the daemon runs on an injected wall clock
// (SWITCHBOARD_TEST_CLOCK, core/sys.h) that the test moves forward. A conversation snoozed
// for an hour is back in the queue once the clock passes its time, woken exactly once,
// which also shows the Redis Functions take their time from the daemon, not Redis TIME.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, api, sse } from './lib.mjs';

let d;
let agent;
let bot;
const HOUR = 3600 * 1000;

before(async () => {
  d = await Daemon.start('', { testClock: true });
  agent = d.token('agent', 'Clock Agent');
  bot = d.token('bot', 'Clock Bot');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

const post = (p, body, token = agent) => api(d, 'POST', p, { token, body });

async function queue() {
  const r = await api(d, 'GET', '/v1/conversations?status=open&limit=200', { token: agent });
  assert.equal(r.status, 200, r.text);
  return r.json.items.map((c) => c.id);
}

// A customer conversation, answered (so not awaiting), then snoozed for an hour of the
// daemon's time.
async function snoozedForAnHour(name) {
  const m = await post('/v1/inbound', { contact: { external_id: `${name}-${Date.now()}` },
    text: `${name}: call me back in an hour` }, bot);
  assert.equal(m.status, 201, m.text);
  const conv = m.json.conv;
  assert.equal((await post(`/v1/conversations/${conv}/messages`, { text: 'sure' })).status, 201);
  const until = d.now() + HOUR;
  const s = await post(`/v1/conversations/${conv}/snooze`, { until });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.conversation.status, 'snoozed');
  assert.equal(s.json.conversation.snooze_until, until);
  assert.ok(!(await queue()).includes(conv), 'a snoozed conversation leaves the queue');
  return { conv, until };
}

const wokeOf = (conv) => (ev) => ev.some((e) => e.data.conv === conv && e.data.type === 'event' &&
  e.data.message?.type === 'woke');

test('snoozed for an hour: the clock passes its time and it is back in the queue, once',
  async () => {
    const a = await snoozedForAnHour('ann');
    const feed = sse(d, agent, { until: wokeOf(a.conv), timeoutMs: 10000 });
    await feed.connected;
    d.setClockOffset(d.clockOffset + HOUR + 1000);
    const got = await feed;
    assert.ok(wokeOf(a.conv)(got.events), `a woke event for ${a.conv}: ${JSON.stringify(got)}`);

    const c = (await api(d, 'GET', `/v1/conversations/${a.conv}`, { token: agent })).json;
    assert.equal(c.status, 'open');
    assert.equal(c.snooze_until, null);
    assert.equal(typeof c.awaiting_since, 'number', 'due for a reply again');
    assert.ok(c.awaiting_since >= a.until, 'awaiting since the (moved) wake time');
    assert.ok((await queue()).includes(a.conv), 'back in the queue');

    // A later wake round (it wakes another conversation) leaves the first woken once.
    const b = await snoozedForAnHour('ben');
    const feed2 = sse(d, agent, { until: wokeOf(b.conv), timeoutMs: 10000 });
    await feed2.connected;
    d.setClockOffset(d.clockOffset + HOUR + 1000);
    assert.ok(wokeOf(b.conv)((await feed2).events), 'the second conversation woke');
    const log = await api(d, 'GET', `/v1/conversations/${a.conv}/messages?limit=200`,
      { token: agent });
    const woke = log.json.items.filter((e) => e.kind === 'event' && e.type === 'woke');
    assert.equal(woke.length, 1, JSON.stringify(log.json.items));
  });

test('a snooze time in the past of the moved clock is refused', async () => {
  const m = await post('/v1/inbound', { contact: { external_id: `past-${Date.now()}` },
    text: 'hello' }, bot);
  assert.equal(m.status, 201, m.text);
  // Real time plus a minute is already the past for a daemon an hour or more ahead.
  assert.ok(d.clockOffset > 2 * 60 * 1000);
  const r = await post(`/v1/conversations/${m.json.conv}/snooze`, { until: Date.now() + 60000 });
  assert.equal(r.status, 400, r.text);
  assert.equal(r.json.error.code, 'bad_request');
});
