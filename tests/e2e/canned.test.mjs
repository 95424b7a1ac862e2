// SPDX-License-Identifier: MIT
// Canned replies (docs/canned.md) through the real daemon: the REST API (create, replace,
// list sorted by shortcut, delete; validation with clear errors; who may do what) and
// `sbctl canned add|list|remove` against it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Daemon, api, SBCTL } from './lib.mjs';

let d;
const tok = {};

before(async () => {
  d = await Daemon.start('', { testClock: true });
  tok.admin = d.token('admin', 'Ada Admin');
  tok.agent = d.token('agent', 'Alan Agent');
  tok.agent2 = d.token('agent', 'Bea Agent');
  tok.bot = d.token('bot', 'FAQ bot');
});

after(async () => {
  if (d) {
    const r = await d.stop();
    assert.equal(r.code, 0, `daemon exit: ${JSON.stringify(r)}\n${d.log}`);
  }
});

const put = (sc, body, token = tok.agent) => api(d, 'PUT', `/v1/canned/${sc}`, { token, body });
const del = (sc, token = tok.agent) => api(d, 'DELETE', `/v1/canned/${sc}`, { token });
const list = (token = tok.agent) => api(d, 'GET', '/v1/canned', { token });

test('create, replace, list sorted by shortcut, delete', async () => {
  const me = (await api(d, 'GET', '/v1/me', { token: tok.agent })).json;
  let r = await put('thanks', { title: 'Thanks', text: 'Thank you, {{contact.name}}! — {{agent.name}}' });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.shortcut, 'thanks');
  assert.equal(r.json.created_by, me.id);
  assert.equal(typeof r.json.updated_at, 'number');
  assert.ok(Math.abs(r.json.updated_at - d.now()) < 5000, 'updated_at is the daemon time in ms');
  r = await put('a-first_1', { title: 'Ünïcode ✓', text: 'Grüße\nzweite Zeile' });
  assert.equal(r.status, 201, r.text);

  // A replace by another agent answers 200 and keeps the first author.
  d.setClockOffset(60_000);
  r = await put('thanks', { title: 'Thanks!', text: 'Thanks, {{contact.name}}.' }, tok.agent2);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created_by, me.id);
  assert.notEqual(r.json.updated_by, me.id);
  assert.ok(r.json.updated_at >= d.now() - 5000, 'updated_at follows the daemon clock');

  for (const token of [tok.agent, tok.admin, tok.bot]) {
    r = await list(token);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.items.map((i) => i.shortcut), ['a-first_1', 'thanks']);
  }
  assert.equal(r.json.items[0].text, 'Grüße\nzweite Zeile');
  assert.equal(r.json.items[1].title, 'Thanks!');

  r = await del('a-first_1');
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '');
  r = await del('a-first_1');
  assert.equal(r.status, 404, r.text);
  assert.equal(r.json.error.code, 'not_found');
  assert.deepEqual((await list()).json.items.map((i) => i.shortcut), ['thanks']);
});

test('bad input gets a clear 400', async () => {
  const cases = [
    ['Thanks', { text: 'x' }, /shortcut/],
    ['a'.repeat(33), { text: 'x' }, /shortcut/],
    ['sp%20ace', { text: 'x' }, /shortcut/],
    ['ok', { title: 'x' }, /text/],
    ['ok', { text: 42 }, /text/],
    ['ok', { text: '   ' }, /empty/],
    ['ok', { title: 'two\nlines', text: 'x' }, /title/],
    ['ok', { title: 'x'.repeat(201), text: 'x' }, /title/],
    ['ok', { title: 5, text: 'x' }, /title/],
    ['ok', { text: 'nul\u0000inside' }, /NUL/],
  ];
  for (const [sc, body, re] of cases) {
    const r = await put(sc, body);
    assert.equal(r.status, 400, `${sc} ${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.error.code, 'bad_request');
    assert.match(r.json.error.message, re);
  }
  let r = await put('big', { text: 'x'.repeat(8 * 1024 + 1) });
  assert.equal(r.status, 413, r.text);
  assert.match(r.json.error.message, /8 KiB/);
  r = await put('big', { text: 'é'.repeat(4096) }); // exactly 8 KiB of UTF-8
  assert.equal(r.status, 201, r.text);
  r = await api(d, 'PUT', '/v1/canned/ok', { token: tok.agent, raw: '{"text":' });
  assert.equal(r.status, 400, r.text);
  assert.equal((await list()).json.items.some((i) => i.shortcut === 'ok'), false);
  assert.equal((await del('big')).status, 204);
});

test('who may do what', async () => {
  assert.equal((await list(null)).status, 401);
  assert.equal((await list('sbt_nonsense')).status, 401);
  let r = await put('bot-try', { text: 'x' }, tok.bot);
  assert.equal(r.status, 403, r.text);
  assert.equal((await put('mine', { text: 'by Alan' })).status, 201);
  assert.equal((await del('mine', tok.bot)).status, 403);
  // Another agent may edit it but not delete it; its author and admins may.
  r = await del('mine', tok.agent2);
  assert.equal(r.status, 403, r.text);
  assert.match(r.json.error.message, /author or an admin/);
  assert.equal((await del('mine', tok.agent)).status, 204);
  assert.equal((await put('mine2', { text: 'by Alan' })).status, 201);
  assert.equal((await del('mine2', tok.admin)).status, 204);
});

test('at most 1000 entries', async () => {
  const before = (await list()).json.items.length;
  const n = 1000 - before;
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++) batch.push(put(`bulk-${j}`, { text: `t${j}` }));
    for (const r of await Promise.all(batch)) assert.equal(r.status, 201, r.text);
  }
  let r = await put('one-too-many', { text: 'x' });
  assert.equal(r.status, 409, r.text);
  assert.match(r.json.error.message, /1000/);
  r = await put('bulk-0', { text: 'replacing is fine when full' });
  assert.equal(r.status, 200, r.text);
  assert.equal((await list()).json.items.length, 1000);
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++) batch.push(del(`bulk-${j}`, tok.admin));
    for (const r2 of await Promise.all(batch)) assert.equal(r2.status, 204, r2.text);
  }
});

test('sbctl canned add, list, remove', () => {
  const sbctl = (args, { token = tok.agent, input } = {}) => spawnSync(SBCTL, args, {
    encoding: 'utf8',
    input,
    env: { ...process.env, SWITCHBOARD_URL: d.url, SWITCHBOARD_TOKEN: token },
  });
  let r = sbctl(['canned', 'add', 'refund', 'Refund policy', 'Refunds take 5 days, {{contact.name}}.']);
  assert.equal(r.status, 0, r.stderr);
  r = sbctl(['canned', 'add', 'hours', 'Opening hours'], { input: 'Mon–Fri\n9 to 5\n' });
  assert.equal(r.status, 0, r.stderr);
  r = sbctl(['canned', 'list']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\/hours +Opening hours +Mon–Fri…/);
  assert.match(r.stdout, /\/refund +Refund policy +Refunds take 5 days/);
  assert.ok(r.stdout.indexOf('/hours') < r.stdout.indexOf('/refund'));
  r = sbctl(['--json', 'canned', 'list']);
  assert.equal(r.status, 0, r.stderr);
  const items = JSON.parse(r.stdout).items;
  assert.equal(items.find((i) => i.shortcut === 'hours').text, 'Mon–Fri\n9 to 5');
  r = sbctl(['canned', 'add', 'Bad!', 'x', 'y']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad shortcut/);
  r = sbctl(['canned', 'add', 'x', 'x', 'y'], { token: tok.bot });
  assert.equal(r.status, 6, r.stderr);
  r = sbctl(['canned', 'remove', 'refund'], { token: tok.agent2 });
  assert.equal(r.status, 6, r.stderr);
  r = sbctl(['canned', 'remove', 'refund']);
  assert.equal(r.status, 0, r.stderr);
  r = sbctl(['canned', 'remove', 'refund']);
  assert.equal(r.status, 5, r.stderr);
  r = sbctl(['canned', 'frobnicate']);
  assert.equal(r.status, 2);
  r = spawnSync(SBCTL, ['--help'], { encoding: 'utf8' });
  assert.match(r.stdout, /canned add SHORTCUT TITLE/);
  assert.equal(sbctl(['canned', 'remove', 'hours']).status, 0);
});
