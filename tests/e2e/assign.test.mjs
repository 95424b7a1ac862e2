// SPDX-License-Identifier: MIT
// POST /v1/conversations/{id}/assign (docs/contract.md §5, "Assignment") through the real
// daemon: assign, reassign, unassign, the no-op, 404/400/422, who is on duty for a channel,
// the `assigned` event in the transcript and on the live feed, the assignee's console
// notification and the queue's assignee filter; `sbctl assign`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { SBCTL, Daemon, api, sse } from './lib.mjs';
import { addStaff, until } from './sla_notify_lib.mjs';

let d;
const staff = {};
let bot;

before(async () => {
  d = await Daemon.start('site default e2e-site-secret http://allowed.example');
  staff.ann = addStaff(d, 'Ann', 'agent'); // every channel
  staff.bea = addStaff(d, 'Bea', 'agent', { channels: 'api' });
  staff.cid = addStaff(d, 'Cid', 'agent', { channels: 'email' }); // not on duty for api
  bot = d.token('bot', 'Assign bot');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

const assign = (conv, body, token = staff.ann.token) =>
  api(d, 'POST', `/v1/conversations/${conv}/assign`, { token, body });
const get = (path, token) => api(d, 'GET', path, { token });

async function inbound(text, name) {
  const r = await api(d, 'POST', '/v1/inbound', {
    token: bot,
    body: { contact: { external_id: `assign-${name}-${Date.now()}`, name }, text },
  });
  assert.equal(r.status, 201, r.text);
  return r.json.conv;
}

const queue = async (token, assignee) =>
  (await get(`/v1/conversations?assignee=${assignee}`, token)).json.items.map((c) => c.id);

test('assign, reassign and unassign: events, feed, notification, queue', async () => {
  const conv = await inbound('please help with INV-2291', 'Dora');
  const assignedOf = (ev) => ev.filter((e) => e.data.conv === conv && e.data.type === 'event' &&
    e.data.message?.type === 'assigned');
  const feed = sse(d, staff.ann.token, { until: (ev) => assignedOf(ev).length >= 3, timeoutMs: 10000 });
  await feed.connected;

  let r = await assign(conv, { to: staff.bea.id });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.changed, true);
  assert.equal(r.json.conversation.assignee, staff.bea.id);
  assert.equal(r.json.event.type, 'assigned');
  assert.equal(r.json.event.from, null);
  assert.equal(r.json.event.to, staff.bea.id);
  assert.equal(r.json.event.by, staff.ann.id);
  // still awaiting its answer, and in the assignee's queue
  assert.ok(r.json.conversation.awaiting_since > 0, r.text);
  assert.ok((await queue(staff.bea.token, 'me')).includes(conv));
  assert.ok(!(await queue(staff.ann.token, 'me')).includes(conv));
  assert.ok(!(await queue(staff.ann.token, 'none')).includes(conv));

  // Bea's bell: "Ann assigned you Dora"
  r = await get('/v1/notifications', staff.bea.token);
  assert.equal(r.status, 200, r.text);
  const n = r.json.items.find((i) => i.type === 'assigned' && i.conv === conv);
  assert.ok(n, r.text);
  assert.equal(n.by, 'Ann');
  assert.equal(n.customer, 'Dora');
  assert.equal(r.json.unread, 1);
  r = await get('/v1/notifications', staff.ann.token); // the one who assigned is not told
  assert.ok(!r.json.items.some((i) => i.type === 'assigned'), r.text);

  // the same again changes nothing and tells nobody twice
  r = await assign(conv, { to: staff.bea.id });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.changed, false);
  assert.equal(r.json.event, null);

  // reassign (a bot may too: its scope covers every channel), then unassign
  r = await assign(conv, { to: staff.ann.id }, bot);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.event.from, r.json.event.to], [staff.bea.id, staff.ann.id]);
  r = await get('/v1/notifications', staff.ann.token);
  assert.equal(r.json.items.find((i) => i.type === 'assigned').by, 'Assign bot');
  r = await assign(conv, { to: null }, staff.bea.token);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.conversation.assignee, null);
  assert.deepEqual([r.json.event.from, r.json.event.to, r.json.event.by],
    [staff.ann.id, null, staff.bea.id]);
  assert.ok((await queue(staff.ann.token, 'none')).includes(conv));

  const got = await feed;
  assert.deepEqual(assignedOf(got.events).map((e) => e.data.message.to),
    [staff.bea.id, staff.ann.id, null]);
  r = await get(`/v1/conversations/${conv}/messages?limit=100`, staff.ann.token);
  assert.deepEqual(r.json.items.filter((m) => m.type === 'assigned').map((m) => m.to),
    [staff.bea.id, staff.ann.id, null]);
});

test('assign refuses what it cannot do', async () => {
  const conv = await inbound('hello', 'Eve');
  const unknownConv = `c_01jd3k${'0'.repeat(20)}`;
  let r = await assign(unknownConv, { to: staff.bea.id });
  assert.equal(r.status, 404, r.text);
  r = await assign('nonsense', { to: staff.bea.id });
  assert.equal(r.status, 404, r.text);
  for (const body of [{}, { to: 'bea' }, { to: 7 }, { to: ['st_x'] }]) {
    r = await assign(conv, body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
  }
  r = await api(d, 'POST', `/v1/conversations/${conv}/assign`, { token: staff.ann.token, raw: '{"to":' });
  assert.equal(r.status, 400, r.text);
  r = await assign(conv, { to: `st_01jd3k${'0'.repeat(20)}` }); // well-formed, nobody
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'unknown_staff');
  r = await assign(conv, { to: staff.cid.id }); // Cid serves email only
  assert.equal(r.status, 422, r.text);
  assert.equal(r.json.error.code, 'unknown_staff');
  r = await api(d, 'POST', `/v1/conversations/${conv}/assign`, { body: { to: staff.bea.id } });
  assert.equal(r.status, 401, r.text);
  // a bot whose scope leaves out the conversation's channel does not see it
  const mailBot = d.sbctl('token', 'create', '--role', 'bot', '--name', 'Mail bot', '--channels', 'email');
  r = await assign(conv, { to: staff.bea.id }, mailBot);
  assert.equal(r.status, 404, r.text);
  r = await get(`/v1/conversations/${conv}`, staff.ann.token);
  assert.equal(r.json.assignee, null, 'nothing changed');
});

// sbctl assign CONV ST_ID|--none (the client over the API): its exit codes and help.
const sbctl = (token, ...args) => spawnSync(SBCTL, args, {
  encoding: 'utf8', env: { ...process.env, SWITCHBOARD_URL: d.url, SWITCHBOARD_TOKEN: token },
});

test('sbctl assign and assign --none', async () => {
  const conv = await inbound('sbctl me', 'Fred');
  let r = sbctl(staff.ann.token, 'assign', conv, staff.bea.id);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`assignee ${staff.bea.id}`));
  assert.equal((await get(`/v1/conversations/${conv}`, staff.ann.token)).json.assignee, staff.bea.id);
  r = sbctl(staff.ann.token, 'assign', conv, staff.bea.id);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /no change/);
  r = sbctl(staff.ann.token, 'assign', conv, staff.cid.id); // not on duty for api: 422
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /unknown_staff/);
  r = sbctl(staff.ann.token, 'assign', `c_01jd3k${'0'.repeat(20)}`, staff.bea.id);
  assert.equal(r.status, 5, r.stderr);
  r = sbctl(staff.ann.token, 'assign', conv, '--none');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /assignee -/);
  assert.equal((await get(`/v1/conversations/${conv}`, staff.ann.token)).json.assignee, null);
  for (const bad of [[conv], [conv, staff.bea.id, '--none']]) {
    r = sbctl(staff.ann.token, 'assign', ...bad);
    assert.equal(r.status, 2, `${bad}: ${r.stderr}`);
  }
  r = spawnSync(SBCTL, ['--help'], { encoding: 'utf8' });
  assert.match(r.stdout, /assign ID ST_ID\|--none/);
});

test('GET /v1/staff: who may take a conversation, online first', async () => {
  let r = await get('/v1/staff', staff.ann.token);
  assert.equal(r.status, 200, r.text);
  const byId = Object.fromEntries(r.json.items.map((m) => [m.id, m]));
  assert.deepEqual(byId[staff.bea.id], { id: staff.bea.id, name: 'Bea', role: 'agent', channels: ['api'], online: false });
  assert.equal(byId[staff.ann.id].channels, null);
  assert.deepEqual(byId[staff.cid.id].channels, ['email']);
  assert.ok(r.json.items.every((m) => !('email' in m)), 'no addresses');
  // Cid opens the live feed: he is online, and listed first
  const feed = sse(d, staff.cid.token, { until: () => false, timeoutMs: 10000 });
  await feed.connected;
  const items = await until(async () => {
    const x = (await get('/v1/staff', staff.bea.token)).json.items;
    return x[0]?.id === staff.cid.id && x[0].online ? x : null;
  }, 'Cid online first');
  assert.ok(items.slice(1).every((m) => !m.online), JSON.stringify(items));
  r = await get('/v1/staff', bot);
  assert.equal(r.status, 403, r.text);
});
