// SPDX-License-Identifier: MIT
// The command lines a new user meets first: switchboard --version / --check, sbctl's
// usage errors and exit codes, and a clean shutdown on SIGTERM and SIGINT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, SBCTL, Daemon } from './lib.mjs';

function tmpFile(name, text) {
  const base = process.env.SB_TEST_TMP || os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  const dir = fs.mkdtempSync(path.join(base, 'sb-cli-'));
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

test('switchboard --version prints the version', () => {
  const r = spawnSync(BIN, ['--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^switchboard \d+\.\d+\.\d+/);
});

test('--check accepts the example configuration', () => {
  const example = new URL('../../deploy/switchboard.conf.example', import.meta.url).pathname;
  const r = spawnSync(BIN, ['--check', '-c', example], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('--check reports file:line errors and exits 2', () => {
  const conf = tmpFile('bad.conf', 'listen 127.0.0.1:8080\nshards many\nno_such_key 1\n');
  const r = spawnSync(BIN, ['--check', '-c', conf], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.ok(r.stderr.includes(`${conf}:2:`), r.stderr);
  assert.ok(r.stderr.includes(`${conf}:3:`), r.stderr);
});

test('the daemon refuses to start with a bad configuration', () => {
  const conf = tmpFile('bad.conf', 'log_level loud\n');
  const r = spawnSync(BIN, ['-c', conf], { encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /:1:/);
});

// SLA lines (docs/sla.md) are compiled by --check and at start.
test('--check accepts valid SLA lines', () => {
  const conf = tmpFile('ok.conf',
    'sla quick channel=webchat priority=* first=5m next=10m resolve=1d\n' +
    'sla rest channel=* priority=* first=4h next=8h resolve=3d\n' +
    'escalate quick 50% assignee\n' +
    'escalate * 200% role:exec,everyone\n');
  const r = spawnSync(BIN, ['--check', '-c', conf], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('--check reports each SLA mistake as file:line and exits 2', () => {
  const conf = tmpFile('bad.conf',
    'sla quick channel=webchat priority=* first=5m next=10m resolve=1d\n' +
    'sla slow channel=* priority=* first=4x next=8h resolve=3d\n' +
    'sla cal channel=* priority=* first=1h next=1h resolve=1h calendar=nowhere\n' +
    'escalate quick 0% assignee\n' +
    'escalate ghost 50% assignee\n' +
    'escalate quick 50% boss\n' +
    'holiday nowhere 2026-12-24\n');
  const r = spawnSync(BIN, ['--check', '-c', conf], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr,
    `${conf}:2: sla: first=4x: not a duration from 1ms to 365d (45s, 5m, 2h, 1d)\n` +
    `${conf}:3: sla: unknown calendar 'nowhere'\n` +
    `${conf}:4: escalate: '0%' is not a percentage from 1% to 1000%\n` +
    `${conf}:5: escalate: unknown sla 'ghost'\n` +
    `${conf}:6: escalate: 'boss' is not a target (assignee, everyone, ` +
    `role:<agent|admin|exec|bot>, st_<id>)\n` +
    `${conf}:7: holiday: unknown calendar 'nowhere'\n`);
  assert.equal(r.stdout, '');
});

test('the daemon refuses to start with a bad SLA line', () => {
  const conf = tmpFile('bad.conf', 'escalate nobody 50% assignee\n');
  const r = spawnSync(BIN, ['-c', conf], { encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, `${conf}:1: escalate: unknown sla 'nobody'\n`);
});

test('sbctl rejects bad usage with exit 2 and an unreachable Redis with exit 3', () => {
  const u = spawnSync(SBCTL, ['token', 'create', '--role', 'king', '--name', 'x'],
    { encoding: 'utf8' });
  assert.equal(u.status, 2);
  assert.match(u.stderr, /role/);
  const conf = tmpFile('sb.conf', 'redis redis://127.0.0.1:1\n');
  const r = spawnSync(SBCTL, ['-c', conf, 'token', 'create', '--role', 'admin', '--name', 'x'],
    { encoding: 'utf8' });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /cannot reach Redis/);
});

test('SIGINT shuts the daemon and its embedded Redis down cleanly', async () => {
  const d = await Daemon.start();
  const pidFile = fs.readdirSync(`${d.dir}/var`);
  assert.ok(pidFile.includes('redis.sock'));
  d.proc.kill('SIGINT');
  const r = await d.exited;
  assert.equal(r.code, 0, d.log);
  assert.ok(!fs.existsSync(`${d.dir}/var/redis.sock`), 'embedded Redis removed its socket');
  await d.stop();
});
