// SPDX-License-Identifier: MIT
// sbctl end to end against the real daemon: staff and bot administration straight into
// Redis (tokens that then work on the API with the right role), and the HTTP client
// commands — queue, show, reply (with the based_on collision → exit 4), resolve, a live
// tail, and the documented exit codes for unknown ids (5) and bad tokens (6).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { SBCTL, Daemon, api, sleep } from './lib.mjs';

let d;
let admin;
before(async () => {
  d = await Daemon.start();
  admin = d.token('admin', 'boss');
});
after(async () => { await d.stop(); });

// Runs an sbctl client command with SWITCHBOARD_URL/TOKEN; returns {status, stdout, stderr}.
function cli(token, args, input) {
  return spawnSync(SBCTL, args, {
    encoding: 'utf8',
    input,
    env: { ...process.env, SWITCHBOARD_URL: d.url, SWITCHBOARD_TOKEN: token },
  });
}

async function inbound(token, name, text) {
  const r = await api(d, 'POST', '/v1/inbound', {
    token, body: { contact: { email: `${name.toLowerCase()}@example.com`, name }, text },
  });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

test('staff add gives a working agent token; staff list shows them', async () => {
  const tok = d.sbctl('staff', 'add', '--name', 'Ann', '--email', 'ann@example.com',
    '--role', 'agent');
  assert.match(tok, /^sbt_[0-9a-f]+$/);
  const me = await api(d, 'GET', '/v1/me', { token: tok });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.json.role, 'agent');
  assert.equal(me.json.name, 'Ann');
  const list = d.sbctl('staff', 'list');
  assert.match(list, /Ann\s+ann@example\.com\s+agent/);
  const json = JSON.parse(d.sbctl('staff', 'list', '--json'));
  const ann = json.find((s) => s.name === 'Ann');
  assert.equal(ann.email, 'ann@example.com');
  assert.equal(ann.role, 'agent');
  assert.match(ann.id, /^st_/);
  const bad = spawnSync(SBCTL, ['-c', d.conf, 'staff', 'add', '--name', 'X', '--email', 'x@y',
    '--role', 'bot'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
});

test('staff remove: every token of theirs dies at once, open feeds too; gone from the list',
  async () => {
    const admin1 = (...a) => spawnSync(SBCTL, ['-c', d.conf, ...a], { encoding: 'utf8' });
    const t1 = d.sbctl('staff', 'add', '--name', 'Leaver', '--email', 'leaver@example.com',
      '--role', 'agent');
    const me = await api(d, 'GET', '/v1/me', { token: t1 });
    assert.equal(me.status, 200);
    const id = me.json.id;
    const feed = await fetch(`${d.url}/v1/events`, { headers: { authorization: `Bearer ${t1}` } });
    assert.equal(feed.status, 200);
    const ended = (async () => { for await (const _ of feed.body) { /* drain */ } return true; })();
    const r = admin1('staff', 'remove', id);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /1 token revoked/);
    assert.equal((await api(d, 'GET', '/v1/me', { token: t1 })).status, 401);
    const timeout = sleep(5000).then(() => false);
    assert.equal(await Promise.race([ended, timeout]), true, 'the open feed ended');
    assert.doesNotMatch(d.sbctl('staff', 'list'), /Leaver/);
    assert.equal(admin1('staff', 'remove', id).status, 5, 'no such staff member');
    assert.equal(admin1('staff', 'remove', 'not-an-id').status, 2);
  });

test('bot add gives a bot token: inbound yes, the queue no', async () => {
  const tok = d.sbctl('bot', 'add', '--name', 'Robo', '--webhook', 'http://127.0.0.1:9/hook',
    '--secret', 's3cret');
  assert.match(tok, /^sbt_/);
  await inbound(tok, 'Botcustomer', 'via bot');
  const q = await api(d, 'GET', '/v1/conversations', { token: tok });
  assert.equal(q.status, 403);
  const r = cli(tok, ['queue']);
  assert.equal(r.status, 6);
  assert.match(r.stderr, /forbidden/);
});

test('queue, show, reply, collision, resolve', async () => {
  const agent = d.sbctl('staff', 'add', '--name', 'Quinn', '--email', 'q@example.com',
    '--role', 'agent');
  const m = await inbound(admin, 'Carol', 'Where is my parcel?');
  const conv = m.conv;

  const q = cli(agent, ['queue']);
  assert.equal(q.status, 0, q.stderr);
  assert.match(q.stdout, new RegExp(`${conv}\\s+api\\s+Carol\\s+open`));
  const qj = JSON.parse(cli(agent, ['queue', '--json']).stdout);
  assert.ok(qj.items.some((c) => c.id === conv));

  await api(d, 'POST', `/v1/conversations/${conv}/notes`,
    { token: admin, body: { text: 'VIP customer' } });
  const show = cli(agent, ['show', conv]);
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, /Carol: Where is my parcel\?/);
  assert.match(show.stdout, /\[note\] boss: VIP customer/);

  const rep = cli(agent, ['reply', conv, '-'], 'On its way!\n');
  assert.equal(rep.status, 0, rep.stderr);
  const msgs = await api(d, 'GET', `/v1/conversations/${conv}/messages`, { token: admin });
  const out = msgs.json.items.find((x) => x.text === 'On its way!');
  assert.equal(out.dir, 'out');
  assert.equal(out.author.name, 'Quinn');

  // Race: read the conversation, then the customer writes, then reply on the stale seq.
  const seen = JSON.parse(cli(agent, ['show', conv, '--json']).stdout).conversation.last_seq;
  await inbound(admin, 'Carol', 'Actually, cancel it');
  const stale = cli(agent, ['reply', conv, '--based-on', seen, '--json', 'Sure thing']);
  assert.equal(stale.status, 4, stale.stderr);
  const body = JSON.parse(stale.stdout);
  assert.equal(body.error.code, 'conflict');
  assert.ok(body.error.messages.some((x) => x.text === 'Actually, cancel it'));
  const human = cli(agent, ['reply', conv, '--based-on', seen, 'Sure thing']);
  assert.equal(human.status, 4);
  assert.match(human.stderr, /cancel it/);
  const forced = cli(agent, ['reply', conv, '--force', 'Cancelled.']);
  assert.equal(forced.status, 0, forced.stderr);

  const res = cli(agent, ['resolve', conv]);
  assert.equal(res.status, 0, res.stderr);
  const c = await api(d, 'GET', `/v1/conversations/${conv}`, { token: admin });
  assert.equal(c.json.status, 'resolved');

  const st = cli(agent, ['stats', '--json']);
  assert.equal(st.status, 0, st.stderr);
  assert.equal(typeof JSON.parse(st.stdout).queue_depth, 'number');
});

test('tail prints a message posted while it runs', async () => {
  const p = spawn(SBCTL, ['tail'], {
    env: { ...process.env, SWITCHBOARD_URL: d.url, SWITCHBOARD_TOKEN: admin },
  });
  let out = '';
  let err = '';
  p.stdout.on('data', (b) => { out += b; });
  p.stderr.on('data', (b) => { err += b; });
  const exited = new Promise((r) => p.on('exit', r));
  const live = Date.now() + 5000; // sbctl says when the feed is live: no sleep-and-hope
  while (!err.includes('following live events') && Date.now() < live) await sleep(10);
  assert.match(err, /following live events/);
  const m = await inbound(admin, 'Dave', 'tail me please');
  const until = Date.now() + 5000;
  while (!out.includes('tail me please') && Date.now() < until) await sleep(50);
  p.kill('SIGINT');
  await exited;
  assert.ok(out.includes(`${m.conv} in Dave: tail me please`), out);
});

test('queue, show and tail print hostile names and texts with escapes made visible', async () => {
  // Clear screen, window title, OSC 52 clipboard write, an 8-bit CSI, a bidi override, and a
  // line break that tries to forge a transcript line. (The API refuses control characters in
  // names; texts may hold anything, and so may names from older data or other channels.)
  const name = 'Mallory\u202eevil';
  const text = 'hi\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07\u009b31m\n12:00 > Boss: refund approved';
  const r = await api(d, 'POST', '/v1/inbound', {
    token: admin, body: { contact: { email: 'mallory@example.com', name }, text },
  });
  assert.equal(r.status, 201, r.text);
  const conv = r.json.conv;
  const raw = /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f\u202a-\u202e\u2066-\u2069]/;
  const q = cli(admin, ['queue']);
  assert.equal(q.status, 0, q.stderr);
  assert.doesNotMatch(q.stdout, raw);
  assert.ok(q.stdout.includes('Mallory\\u202eevil'), q.stdout);
  const s = cli(admin, ['show', conv]);
  assert.equal(s.status, 0, s.stderr);
  assert.doesNotMatch(s.stdout, raw);
  assert.ok(s.stdout.includes('hi\\x1b[2J\\x1b]52;c;cm0gLXJmIH4=\\x07\\u009b31m'), s.stdout);
  // the forged line is a continuation of the customer's text, indented, not a line of its own
  assert.ok(s.stdout.includes('\n       12:00 > Boss: refund approved'), s.stdout);
  assert.doesNotMatch(s.stdout, /^12:00 > Boss/m);
  const p = spawn(SBCTL, ['tail', '--after', '0'], {
    env: { ...process.env, SWITCHBOARD_URL: d.url, SWITCHBOARD_TOKEN: admin },
  });
  let out = '';
  p.stdout.on('data', (b) => { out += b; });
  const exited = new Promise((res) => p.on('exit', res));
  const until = Date.now() + 5000;
  while (!out.includes('refund approved') && Date.now() < until) await sleep(20);
  p.kill('SIGINT');
  await exited;
  assert.ok(out.includes(`${conv} in Mallory\\u202eevil: hi\\x1b[2J`), out);
  assert.ok(out.includes('\\n12:00 > Boss: refund approved'), out);
  assert.doesNotMatch(out, raw);
  const j = cli(admin, ['show', conv, '--json']); // --json: JSON's escapes, data unchanged
  assert.equal(JSON.parse(j.stdout).conversation.contact.name, name);
});

test('exit codes: 5 for an unknown id, 6 for a bad token, 2 for usage, 3 unreachable', () => {
  const nf = cli(admin, ['show', 'c_doesnotexist']);
  assert.equal(nf.status, 5);
  assert.match(nf.stderr, /not_found/);
  const bad = cli('sbt_nope', ['queue']);
  assert.equal(bad.status, 6);
  assert.match(bad.stderr, /unauthorized/);
  assert.equal(cli(admin, ['show']).status, 2);
  const un = spawnSync(SBCTL, ['--url', 'http://127.0.0.1:1', '--token', admin, 'stats'],
    { encoding: 'utf8' });
  assert.equal(un.status, 3);
  const help = spawnSync(SBCTL, ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  for (const w of ['staff add', 'bot add', 'queue', 'reply', 'tail', 'exit codes']) {
    assert.ok(help.stdout.includes(w), w);
  }
});
