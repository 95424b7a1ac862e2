// SPDX-License-Identifier: MIT
// SLA clocks end to end (docs/sla.md): two daemons on one Redis share an injected wall
// clock (SWITCHBOARD_TEST_CLOCK) that the test moves forward, so minutes pass at once.
// Every escalation step of many conversations fires exactly once between the two nodes,
// to the targets the ladder names; human replies stop the first-response clock and bot
// replies and notes do not; pending pauses; a priority change re-plans and reorders the
// queue; a business-hours calendar puts Friday 16:30 + 1 h on Monday 09:30.
import http from 'node:http';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Daemon, api, sleep, freePort } from './lib.mjs';

const MIN = 60 * 1000;
const DAY = 24 * 60 * MIN;
// A Friday at least two weeks ahead (UTC midnight), and the Friday after it as a holiday.
const FRI = (() => {
  const t = new Date(Date.now() + 14 * DAY);
  const mid = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate());
  return mid + ((5 - new Date(mid).getUTCDay() + 7) % 7) * DAY;
})();
const HOLIDAY = new Date(FRI + 7 * DAY).toISOString().slice(0, 10);
const CONFIG = `
sla fast channel=* priority=urgent first=30s next=1m resolve=1h
sla office channel=api priority=low first=1h next=2h resolve=3d calendar=office
sla quick channel=* priority=* first=2m next=5m resolve=1d
calendar office UTC mon-fri 09:00-17:00
holiday office ${HOLIDAY}
escalate quick 50% assignee
escalate quick 100% everyone
escalate quick 200% role:exec
`;

let d1;
let d2;
let hook; // an outbound webhook receiver for the SLA events of both nodes
const hooked = [];
let agent;
let agentId;
let bot;

before(async () => {
  const port = await freePort();
  hook = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => { raw += c; });
    req.on('end', () => { hooked.push(JSON.parse(raw)); res.writeHead(200).end(); });
  });
  await new Promise((r) => hook.listen(port, '127.0.0.1', r));
  const wh = `webhook http://127.0.0.1:${port}/hook sla-secret sla_warning sla_breach escalated\n`;
  d1 = await Daemon.start(CONFIG + wh, { testClock: true });
  // the second node: same Redis (the first's embedded one), same clock file
  d2 = await Daemon.start(`${CONFIG}${wh}\nredis unix:${d1.dir}/var/redis.sock\n`,
    { env: { SWITCHBOARD_TEST_CLOCK: d1.clockFile } });
  agent = d1.token('agent', 'Sam Agent');
  bot = d1.token('bot', 'Helper Bot');
  agentId = (await api(d1, 'GET', '/v1/me', { token: agent })).json.id;
});

after(async () => {
  for (const d of [d2, d1]) {
    if (!d) continue;
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
  hook?.close();
});

// Waits for cond() (async) to hold, polling; fails with what() after ms.
async function until(cond, what, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what()}`);
    await sleep(25);
  }
}

const node = (i) => (i % 2 ? d2 : d1);

async function inbound(d, text, extra = {}) {
  const r = await api(d, 'POST', '/v1/inbound', { token: bot,
    body: { channel: 'api', contact: { external_id: `c-${Math.random()}`, name: 'Cust' }, text, ...extra } });
  assert.equal(r.status, 201, r.text);
  return r.json.conv;
}

async function conv(id, d = d1) {
  const r = await api(d, 'GET', `/v1/conversations/${id}`, { token: agent });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function events(id, type) {
  const r = await api(d1, 'GET', `/v1/conversations/${id}/messages?limit=500`, { token: agent });
  assert.equal(r.status, 200, r.text);
  return r.json.items.filter((m) => m.kind === 'event' && m.type === type);
}

async function metric(d, name) {
  const t = (await api(d, 'GET', '/metrics')).text;
  const m = t.match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
}

// Both nodes ticked at least twice more: anything either would still fire has fired.
async function settle() {
  const t = await Promise.all([d1, d2].map((d) => metric(d, 'switchboard_sla_ticks_total')));
  await until(async () => {
    const n = await Promise.all([d1, d2].map((d) => metric(d, 'switchboard_sla_ticks_total')));
    return n[0] >= t[0] + 2 && n[1] >= t[1] + 2;
  }, () => 'two more ticks on each node');
}

test('two nodes: each step of each conversation fires exactly once, to its targets', async () => {
  const N = 24;
  const t0 = d1.now();
  const ids = [];
  for (let i = 0; i < N; i++) ids.push(await inbound(node(i), `help ${i}`));
  // half are held by the agent: their warning goes to the agent, the others' to everyone
  for (let i = 0; i < N; i += 2) {
    const r = await api(node(i), 'POST', `/v1/conversations/${ids[i]}/claim`, { token: agent });
    assert.equal(r.status, 200, r.text);
  }
  for (const id of ids) {
    const c = await until(async () => {
      const c = await conv(id);
      return c.sla.first_response_due ? c : null;
    }, () => `a plan for ${id}`);
    assert.equal(c.sla.policy, 'quick');
    // 24/7: due 2 minutes after the customer wrote
    assert.ok(Math.abs(c.sla.first_response_due - (c.created_at + 2 * MIN)) === 0,
      `due ${c.sla.first_response_due} created ${c.created_at}`);
    assert.equal(c.sla.resolution_due, c.created_at + 24 * 60 * MIN);
  }
  const fired0 = (await metric(d1, 'switchboard_sla_steps_fired_total')) +
    (await metric(d2, 'switchboard_sla_steps_fired_total'));

  const steps = [[1, 'sla_warning'], [2, 'sla_breach'], [4, 'escalated']];
  for (const [mins, type] of steps) {
    d1.setClockOffset(t0 - Date.now() + mins * MIN + 1000);
    for (const id of ids) {
      await until(async () => (await events(id, type)).length > 0, () => `${type} of ${id}`);
    }
  }
  await settle();
  for (let i = 0; i < N; i++) {
    const w = await events(ids[i], 'sla_warning');
    const b = await events(ids[i], 'sla_breach');
    const e = await events(ids[i], 'escalated');
    assert.equal(w.length, 1, `one warning for ${ids[i]}`);
    assert.equal(b.length, 1, `one breach for ${ids[i]}`);
    assert.equal(e.length, 1, `one escalation for ${ids[i]}`);
    assert.deepEqual(w[0].targets, i % 2 === 0 ? [agentId] : ['everyone']);
    assert.equal(w[0].clock, 'first_response');
    assert.equal(w[0].percent, 50);
    assert.deepEqual(b[0].targets, ['everyone']);
    assert.deepEqual(e[0].targets, ['role:exec']);
    assert.equal(b[0].customer, 'Cust', 'whom it is about, for notifications');
    assert.equal(e[0].percent, 200);
    const c = await conv(ids[i], d2);
    assert.deepEqual(c.sla.breaches, ['first_response']);
  }
  const fired = (await metric(d1, 'switchboard_sla_steps_fired_total')) +
    (await metric(d2, 'switchboard_sla_steps_fired_total'));
  assert.equal(fired - fired0, 3 * N, 'the nodes together fired each step once');
  // the outbound webhook got each step once (one consumer group across the nodes)
  const mine = () => hooked.filter((h) => ids.includes(h.conv));
  await until(async () => mine().length >= 3 * N, () => `webhooks: ${mine().length} of ${3 * N}`);
  await settle();
  const byId = new Set(mine().map((h) => h.message.id));
  assert.equal(mine().length, 3 * N, 'no webhook twice');
  assert.equal(byId.size, 3 * N);
  const stats = (await api(d1, 'GET', '/v1/stats', { token: agent })).json;
  assert.ok(stats.breaches >= N, `stats count breaches: ${stats.breaches}`);
  for (const id of ids) {
    await api(d1, 'POST', `/v1/conversations/${id}/resolve`, { token: agent });
  }
});

test('first response stops only at a human public reply; pending pauses; next counts from the oldest message', async () => {
  const id = await inbound(d1, 'my order is late');
  const c0 = await until(async () => {
    const c = await conv(id);
    return c.sla.first_response_due ? c : null;
  }, () => 'a plan');
  // a bot reply and a note change nothing
  assert.equal((await api(d1, 'POST', `/v1/conversations/${id}/messages`, { token: bot,
    body: { text: 'A human will be with you shortly.' } })).status, 201);
  assert.equal((await api(d1, 'POST', `/v1/conversations/${id}/notes`, { token: agent,
    body: { text: 'checking the warehouse' } })).status, 201);
  await settle();
  assert.equal((await conv(id)).sla.first_response_due, c0.sla.first_response_due);
  // the human's answer stops it
  const r = await api(d1, 'POST', `/v1/conversations/${id}/messages`, { token: agent,
    body: { text: 'Looking now.' } });
  assert.equal(r.status, 201, r.text);
  await until(async () => (await conv(id)).sla.first_response_due === null, () => 'first stopped');
  // the customer writes twice: next_response counts from the first of the two
  const t1 = d1.now();
  await api(d1, 'POST', '/v1/inbound', { token: bot, body: { channel: 'api', conv: id,
    contact: { id: c0.contact.id }, text: 'any news?' } });
  const c1 = await until(async () => {
    const c = await conv(id);
    return c.sla.next_response_due ? c : null;
  }, () => 'next planned');
  assert.ok(c1.sla.next_response_due >= t1 + 5 * MIN && c1.sla.next_response_due < t1 + 5 * MIN + 5000);
  await api(d1, 'POST', '/v1/inbound', { token: bot, body: { channel: 'api', conv: id,
    contact: { id: c0.contact.id }, text: 'hello?' } });
  await settle();
  assert.equal((await conv(id)).sla.next_response_due, c1.sla.next_response_due);
  // pending pauses: no due time while waiting on the customer
  const p = await api(d1, 'POST', `/v1/conversations/${id}/pending`, { token: agent, body: {} });
  assert.equal(p.status, 200, p.text);
  const cp = await until(async () => {
    const c = await conv(id);
    return c.sla.paused ? c : null;
  }, () => 'paused');
  assert.equal(cp.status, 'pending');
  assert.equal(cp.sla.next_response_due, null);
  assert.equal(cp.sla.resolution_due, null);
  await api(d1, 'POST', `/v1/conversations/${id}/resolve`, { token: agent });
});

test('a priority change re-plans with the matching policy and the queue follows the due times', async () => {
  const a = await inbound(d1, 'first in line');
  const b = await inbound(d1, 'second, but urgent');
  for (const id of [a, b]) {
    await until(async () => (await conv(id)).sla.first_response_due, () => `plan of ${id}`);
  }
  const r = await api(d1, 'POST', `/v1/conversations/${b}/priority`, { token: agent,
    body: { priority: 'urgent' } });
  assert.equal(r.status, 200, r.text);
  const cb = await until(async () => {
    const c = await conv(b);
    return c.sla.policy === 'fast' ? c : null;
  }, () => 'the fast policy');
  assert.equal(cb.sla.first_response_due, cb.created_at + 30 * 1000);
  const q = await api(d1, 'GET', '/v1/conversations?status=open&limit=200', { token: agent });
  const order = q.json.items.map((c) => c.id);
  assert.ok(order.indexOf(b) < order.indexOf(a), 'the urgent one, due first, comes first');
  for (const id of [a, b]) await api(d1, 'POST', `/v1/conversations/${id}/resolve`, { token: agent });
});

test('business hours: Friday 16:30 + 1 h is Monday 09:30; a holiday does not count', async () => {
  // the low-priority policy counts in office hours (mon-fri 09:00-17:00 UTC, a Friday off)
  for (const [start, due] of [
    [FRI + 16.5 * 60 * MIN, FRI + 3 * DAY + 9.5 * 60 * MIN], // Friday -> Monday
    [FRI + 6 * DAY + 16.5 * 60 * MIN, FRI + 10 * DAY + 9.5 * 60 * MIN], // Thursday; Friday off
  ]) {
    d1.setClockOffset(start - Date.now());
    const id = await inbound(d1, 'weekend question');
    const r = await api(d1, 'POST', `/v1/conversations/${id}/priority`, { token: agent,
      body: { priority: 'low' } });
    assert.equal(r.status, 200, r.text);
    const c = await until(async () => {
      const c = await conv(id);
      return c.sla.policy === 'office' ? c : null;
    }, () => 'the office policy');
    // (the message lands a few ms after the clock was set: those count too)
    assert.equal(c.sla.first_response_due, due + (c.created_at - start),
      new Date(c.sla.first_response_due).toISOString());
    await api(d1, 'POST', `/v1/conversations/${id}/resolve`, { token: agent });
  }
});
