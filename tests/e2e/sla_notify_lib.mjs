// SPDX-License-Identifier: MIT
// Shared by the SLA notification tests: a Redis of the test's own (so two daemons can share
// it), the shard of an id, and an SLA step injected into a shard's events stream exactly as
// core/functions.lua's commit publishes one (docs/sla.md, "Events").
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { freePort, sleep } from './lib.mjs';

export class Redis {
  static async start() {
    const r = new Redis();
    r.dir = fs.mkdtempSync(path.join(process.env.SB_TEST_TMP || os.tmpdir(), 'sb-redis-'));
    r.port = await freePort();
    r.proc = spawn('redis-server', ['--port', String(r.port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--dir', r.dir], { stdio: 'ignore' });
    r.exited = new Promise((res) => r.proc.on('exit', res));
    const until = Date.now() + 10000;
    for (;;) {
      try { if (r.cmd('PING') === 'PONG') break; } catch { /* starting */ }
      if (Date.now() > until) throw new Error('redis-server did not start');
      await sleep(30);
    }
    return r;
  }

  url() { return `redis://127.0.0.1:${this.port}`; }

  cmd(...args) {
    return execFileSync('redis-cli', ['-p', String(this.port), ...args], { encoding: 'utf8' }).trim();
  }

  async stop() {
    this.proc.kill('SIGTERM');
    await this.exited;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// CRC16 (XMODEM), Redis Cluster's: a conversation's shard is crc16(id) % shards.
export function shardOf(id, shards = 16) {
  let crc = 0;
  for (const b of Buffer.from(id)) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % shards;
}

let n = 0;
// XADDs one SLA step of conversation conv ({id, channel, status, …} as the API gives it)
// to its shard's events stream; returns the event's message.
export function injectStep(redis, conv, { type = 'sla_breach', clock = 'first_response',
  percent = 100, policy = 'quick', targets = ['everyone'], ts = Date.now(), due = ts } = {}) {
  const seq = `${ts}-${900 + ++n}`;
  const message = {
    id: `m_01jd3k5x2p8q9r0s1t2v3w${String(n).padStart(4, '0')}`, conv: conv.id, seq, ts,
    kind: 'event', dir: 'internal', channel: conv.channel,
    author: { type: 'system', id: null, name: null },
    type, clock, percent, policy, due, targets,
    // whom it is about, as the functions add it
    ...(conv.subject ? { subject: conv.subject } : {}),
    ...(conv.contact?.name ? { customer: conv.contact.name } : {}),
  };
  const state = { id: conv.id, status: conv.status, priority: conv.priority,
    assignee: conv.assignee ?? null, awaiting_since: conv.awaiting_since ?? null,
    last_seq: conv.last_seq, message_count: conv.message_count, updated_at: ts };
  const e = JSON.stringify({ conv: conv.id, conversation: state, type: 'event', message });
  redis.cmd('XADD', `sb:{${shardOf(conv.id)}}:events`, '*', 'conv', conv.id, 'e', e);
  return message;
}

// Adds a staff member with sbctl; returns {id, token}.
export function addStaff(d, name, role, { channels, notify } = {}) {
  const token = d.sbctl('staff', 'add', '--name', name, '--email', `${name.toLowerCase()}@corp.test`,
    '--role', role, ...(channels ? ['--channels', channels] : []));
  const id = JSON.parse(d.sbctl('staff', 'list', '--json')).find((s) => s.name === name).id;
  if (notify) d.sbctl('staff', 'notify', id, notify);
  return { id, token, name, email: `${name.toLowerCase()}@corp.test` };
}

// Waits until cond() is truthy (polling) and returns its value, or throws with what().
export async function until(cond, what, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await cond();
    if (v) return v;
    await sleep(40);
  }
  throw new Error(`timed out waiting for ${what()}`);
}
