// SPDX-License-Identifier: MIT
// `switchboard --check` compiles the SLA lines (calendar, holiday, sla, escalate; docs/sla.md)
// and reports each mistake as file:line, and the daemon refuses to start with them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN } from './lib.mjs';

function tmpFile(name, text) {
  const base = process.env.SB_TEST_TMP || os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  const dir = fs.mkdtempSync(path.join(base, 'sb-sla-'));
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

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
