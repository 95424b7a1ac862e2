// SPDX-License-Identifier: MIT
// Accountability reports through the real daemon: GET /v1/reports (docs/contract.md §5) over
// facts in the shards' `facts` streams (written here in the shape docs/sla.md gives them,
// into the daemon's embedded Redis), who may read them, the bounds and their errors, a
// channel-scoped token; the longest-waiting customers; `sbctl stats` and `sbctl report`
// printing durations a person reads; /metrics carrying the first-response histogram.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Daemon, api, SBCTL } from './lib.mjs';

let d;
const tok = {};
let t0;

const redis = (...args) => execFileSync('redis-cli', ['-s', `${d.dir}/var/redis.sock`, ...args],
  { encoding: 'utf8' }).trim();
// One facts entry on a shard at time at (ms).
const fact = (shard, at, fields) => {
  const r = redis('XADD', `sb:{${shard}}:facts`, `${at}-0`, ...fields.split(' '));
  assert.match(r, /^\d+-0$/, r);
};

before(async () => {
  d = await Daemon.start('', { testClock: true });
  tok.admin = d.token('admin', 'Ada Admin');
  tok.agent = d.token('agent', 'Alan Agent');
  tok.exec = d.token('exec', 'Erin Exec');
  tok.bot = d.token('bot', 'FAQ bot');
  tok.mail = d.sbctl('token', 'create', '--role', 'agent', '--name', 'Mail agent',
    '--channels', 'email');
  const me = await api(d, 'GET', '/v1/me', { token: tok.agent });
  tok.agentId = me.json.id;
  t0 = d.now() - 3600_000;
  // webchat first responses of 1..4 min by Alan; an email one of 2 h 5 m by nobody named
  for (let i = 1; i <= 4; i++) {
    fact(i % 2, t0 + i, `t first ms ${i * 60_000} channel webchat policy quick staff ${tok.agentId} conv c_${i}`);
  }
  for (let i = 1; i <= 4; i++) {
    fact(i % 2, t0 + 10 + i, `t answer ms 1 channel webchat policy quick staff ${tok.agentId} conv c_${i}`);
  }
  fact(2, t0 + 20, 't first ms 7500000 channel email policy slow staff st_ghost conv c_m');
  fact(2, t0 + 21, 't resolved ms 180000000 channel email policy slow staff st_ghost conv c_m');
  fact(3, t0 + 30, 't breach clock first_response channel email policy slow conv c_m');
  fact(4, t0 - 8 * 86400_000 + 1, 't first ms 1 channel webchat policy quick staff st_old conv c_o');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

const get = (path, token = tok.agent) => api(d, 'GET', path, { token });
// sbctl's HTTP commands as a person runs them (SWITCHBOARD_URL, SWITCHBOARD_TOKEN).
const cli = (token, ...args) => execFileSync(SBCTL, args, { encoding: 'utf8',
  env: { ...process.env, SWITCHBOARD_URL: d.url, SWITCHBOARD_TOKEN: token } });

test('GET /v1/reports: percentiles, breaches and people of the last 7 days by default', async () => {
  const r = await get('/v1/reports');
  assert.equal(r.status, 200, r.text);
  const rep = r.json;
  assert.equal(rep.truncated, false);
  assert.ok(rep.to - rep.from === 7 * 86400_000, `${rep.from}..${rep.to}`);
  assert.deepEqual(rep.first_response.by_channel.webchat, { p50: 120_000, p90: 240_000, n: 4 });
  assert.deepEqual(rep.first_response.by_policy.slow, { p50: 7_500_000, p90: 7_500_000, n: 1 });
  assert.equal(rep.resolution.by_channel.email.p50, 180_000_000);
  assert.equal(rep.breaches.total, 1);
  assert.equal(rep.breaches.by_policy.slow.first_response, 1);
  assert.equal(rep.people[0].id, tok.agentId);
  assert.equal(rep.people[0].name, 'Alan Agent');
  assert.equal(rep.people[0].answered, 4);
  assert.equal(rep.people[0].first_responses, 4);
  assert.ok(!rep.people.some((p) => p.id === 'st_old'), 'a fact older than 7 days is out');
  assert.deepEqual(rep.waiting, []);
});

test('GET /v1/reports: bounds, a channel, a scoped token', async () => {
  let r = await get(`/v1/reports?from=${t0 - 9 * 86400_000}&to=${t0 + 100}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.first_response.by_channel.webchat.n, 5);
  r = await get(`/v1/reports?from=${t0}&to=${t0 + 2}`);
  assert.equal(r.json.first_response.by_channel.webchat.n, 2);
  r = await get(`/v1/reports?channel=email`);
  assert.deepEqual(Object.keys(r.json.first_response.by_channel), ['email']);
  assert.equal(r.json.channel, 'email');
  // an email-only token sees email figures only, whatever it asks for
  r = await get('/v1/reports', tok.mail);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json.first_response.by_channel), ['email']);
  assert.ok(!r.json.people.some((p) => p.id === tok.agentId));
  r = await get('/v1/reports?channel=webchat', tok.mail);
  assert.deepEqual(r.json.first_response.by_channel, {});
});

test('GET /v1/reports: bad parameters are 400, bots and strangers are refused', async () => {
  for (const q of ['from=abc', 'to=-5', 'from=12x', `from=${t0}&to=${t0 - 1}`, 'channel=pigeon',
    'from=1&to=99999999999999', 'to=1234567890123456']) {
    const r = await get(`/v1/reports?${q}`);
    assert.equal(r.status, 400, `${q}: ${r.text}`);
    assert.equal(r.json.error.code, 'bad_request', q);
  }
  for (const role of ['admin', 'agent', 'exec']) {
    const r = await get('/v1/reports', tok[role]);
    assert.equal(r.status, 200, `${role}: ${r.text}`);
  }
  assert.equal((await get('/v1/reports', tok.bot)).status, 403);
  assert.equal((await get('/v1/reports', null)).status, 401);
});

test('waiting: the customers waiting longest now, oldest first', async () => {
  for (const [name, ago] of [['Wendy', 60_000], ['Walt', 600_000]]) {
    d.setClockOffset(-ago);
    const r = await api(d, 'POST', '/v1/inbound', { token: tok.bot,
      body: { contact: { external_id: `w-${name}`, name }, text: 'anyone?' } });
    assert.equal(r.status, 201, r.text);
  }
  d.setClockOffset(0);
  const r = await get('/v1/reports');
  assert.deepEqual(r.json.waiting.map((w) => w.contact_name), ['Walt', 'Wendy']);
  assert.equal(r.json.waiting[0].channel, 'api');
  assert.ok(r.json.waiting[0].awaiting_since < r.json.waiting[1].awaiting_since);
  const scoped = await get('/v1/reports', tok.mail);
  assert.deepEqual(scoped.json.waiting, []);
});

test('sbctl report prints the tables with human durations', () => {
  const out = cli(tok.agent, 'report', '--from', '7d', '--to', 'now');
  assert.match(out, /First response by channel/);
  assert.match(out, /webchat\s+2m\s+4m\s+4\b/);
  assert.match(out, /email\s+2h 5m\s+2h 5m\s+1\b/);
  assert.match(out, /Resolution by channel/);
  assert.match(out, /email\s+2d 2h/);
  assert.match(out, /Breaches/);
  assert.match(out, /slow\s+first_response\s+1/);
  assert.match(out, /Alan Agent\s+4\s+4\s+0/);
  assert.match(out, /Walt/);
  assert.doesNotMatch(out, /\b\d{5,} ?ms\b/, 'no raw milliseconds');
  const mail = cli(tok.agent, 'report', '--channel', 'email');
  assert.doesNotMatch(mail, /webchat/);
  assert.throws(() => cli(tok.agent, 'report', '--from', 'yesterday'), /--from must be/);
  const json = JSON.parse(cli(tok.agent, 'report', '--json'));
  assert.equal(json.first_response.by_channel.webchat.n, 4);
  assert.throws(() => cli(tok.bot, 'report'), /forbidden/);
});

test('sbctl stats prints durations a person reads', async () => {
  // a customer waits 4 min 12 s for the first answer
  d.setClockOffset(-252_000);
  const m = await api(d, 'POST', '/v1/inbound', { token: tok.bot,
    body: { contact: { external_id: 'stats-1', name: 'Stan' }, text: 'hello?' } });
  assert.equal(m.status, 201, m.text);
  d.setClockOffset(0);
  const r = await api(d, 'POST', `/v1/conversations/${m.json.conv}/messages`,
    { token: tok.agent, body: { text: 'here' } });
  assert.equal(r.status, 201, r.text);
  const out = cli(tok.agent, 'stats');
  assert.match(out, /first_response:\n\s+api:\n\s+p50: 4m 12s\n\s+p90: 4m 12s\n\s+n: 1\n/, out);
  assert.doesNotMatch(out, /_ms\b/, out);
  assert.doesNotMatch(out, /252000/, out);
  // the reply went into the facts: the report counts it (through the real functions)
  const rep = (await get('/v1/reports')).json;
  // (the test clock moves with real time: a few ms pass between the two requests)
  const api1 = rep.first_response.by_channel.api;
  assert.equal(api1.n, 1);
  assert.ok(api1.p50 >= 252_000 && api1.p50 < 260_000 && api1.p90 === api1.p50, JSON.stringify(api1));
  assert.equal(rep.people.find((p) => p.id === tok.agentId).answered, 5);
  assert.equal(rep.people.find((p) => p.id === tok.agentId).first_responses, 5);
  // resolving it adds a resolution by the agent
  const res = await api(d, 'POST', `/v1/conversations/${m.json.conv}/resolve`, { token: tok.agent });
  assert.equal(res.status, 200, res.text);
  const after = (await get('/v1/reports')).json;
  assert.equal(after.resolution.by_channel.api.n, 1);
  assert.equal(after.people.find((p) => p.id === tok.agentId).resolved, 1);
});

test('/metrics has the first-response histogram by channel', async () => {
  const r = await fetch(`${d.url}/metrics`);
  const text = await r.text();
  assert.match(text, /^# TYPE switchboard_first_response_seconds histogram$/m);
  for (const le of ['10', '60', '3600', '86400', '\\+Inf']) {
    assert.match(text, new RegExp(`^switchboard_first_response_seconds_bucket\\{channel="webchat",le="${le}"\\} \\d+$`, 'm'));
  }
  assert.match(text, /^switchboard_first_response_seconds_count\{channel="email"\} 0$/m);
  // the one first response of the test above: 4 min 12 s, in the api channel's (120, 300] bucket
  assert.match(text, /^switchboard_first_response_seconds_bucket\{channel="api",le="120"\} 0$/m);
  assert.match(text, /^switchboard_first_response_seconds_bucket\{channel="api",le="300"\} 1$/m);
  assert.match(text, /^switchboard_first_response_seconds_sum\{channel="api"\} 25\d\.\d{3}$/m);
  assert.match(text, /^switchboard_first_response_seconds_count\{channel="api"\} 1$/m);
});
