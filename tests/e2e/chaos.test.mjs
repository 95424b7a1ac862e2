// SPDX-License-Identifier: MIT
// Faults under load, against the real daemon and its embedded Redis: while web chat
// visitors keep sending (each message with a client_id; unacked ones are resent with the
// same client_id after a reconnect or an `unavailable` error, as the widget does), the
// daemon is killed with SIGKILL, then its redis-server alone, then both, three rounds of
// each. After every fault sbctl and the daemon must agree at once (a token created by
// sbctl works, a token revoked by sbctl is refused), and at the end every acked message
// is in its transcript exactly once, with the id of its ack. Also: a kill -9'd daemon
// leaves no redis-server behind, SIGTERM stops the embedded Redis, and a second
// switchboard on the same data_dir refuses to start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, SBCTL, FrameSocket, api, freePort, sleep } from './lib.mjs';

const ORIGIN = 'http://chaos.example';

// Polls `cond` every 20 ms until it is truthy or `ms` pass; returns its last value.
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

function alive(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}

// One data_dir, one daemon at a time: killed and restarted on the same files.
class Node {
  constructor(extra = '') {
    const base = process.env.SB_TEST_TMP || os.tmpdir();
    fs.mkdirSync(base, { recursive: true });
    this.dir = fs.mkdtempSync(path.join(base, 'sb-chaos-'));
    this.data = path.join(this.dir, 'var');
    this.conf = path.join(this.dir, 'switchboard.conf');
    this.extra = extra;
    this.log = '';
  }

  async start() {
    this.port ||= await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    fs.writeFileSync(this.conf, `listen 127.0.0.1:${this.port}\ndata_dir ${this.data}\n` +
      `log_level info\n${this.extra}\n`);
    this.proc = spawn(BIN, ['-c', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (b) => { this.log += b; });
    this.proc.stderr.on('data', (b) => { this.log += b; });
    this.exited = new Promise((r) => this.proc.on('exit', (code, sig) => r({ code, sig })));
    await this.ready();
  }

  async ready(ms = 15000) {
    await until(async () => {
      try { return (await fetch(`${this.url}/readyz`)).status === 200; } catch { return false; }
    }, ms, `readyz:\n${this.log.slice(-3000)}`);
  }

  // The embedded Redis the daemon runs now (its redis-server child), 0 when none.
  redisPid() {
    const pid = this.proc.pid;
    try {
      for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
        const kids = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
        for (const kid of kids.split(' ').filter(Boolean).map(Number)) {
          const comm = fs.readFileSync(`/proc/${kid}/comm`, 'utf8').trim();
          if (comm === 'redis-server' && alive(kid)) return kid;
        }
      }
    } catch { /* the daemon or the child just exited */ }
    return 0;
  }

  async kill9() {
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  sbctl(...args) {
    return new Promise((resolve, reject) => execFile(SBCTL, ['-c', this.conf, ...args],
      { encoding: 'utf8' }, (err, out, errOut) => (err
        ? reject(new Error(`sbctl ${args.join(' ')}: ${err.message} ${errOut}`))
        : resolve(out.trim()))));
  }
}

// A visitor that behaves like the widget: keeps its token, resends what is not acked.
class Visitor {
  constructor(node, n) {
    this.node = node;
    this.n = n;
    this.token = null;
    this.seq = 0;
    this.pending = new Map(); // client_id -> text
    this.acked = new Map(); // client_id -> {id, conv}
    this.mismatch = [];
    this.sock = null;
    this.welcomed = false;
    this.running = true;
  }

  async connect() {
    while (this.running) {
      try {
        const s = await FrameSocket.connect(
          `${this.node.url.replace('http', 'ws')}/v1/visitor/ws?site=default`,
          'switchboard.visitor.v1', { headers: { origin: ORIGIN } });
        this.attach(s);
        return;
      } catch {
        await sleep(100 + Math.random() * 100);
      }
    }
  }

  attach(s) {
    this.sock = s;
    this.welcomed = false;
    s.ws.on('message', (data) => this.onFrame(JSON.parse(data.toString())));
    s.ws.on('error', () => {});
    s.closed.then(() => {
      this.sock = null;
      this.welcomed = false;
      if (this.running) setTimeout(() => this.connect(), 100 + Math.random() * 100);
    });
    s.send({ type: 'hello', site: 'default', token: this.token, last_seq: null });
  }

  onFrame(f) {
    if (f.type === 'welcome') {
      if (f.token) this.token = f.token;
      this.welcomed = true;
      for (const [cid, text] of this.pending) this.send(cid, text);
    } else if (f.type === 'ack') {
      const had = this.acked.get(f.client_id);
      if (had && had.id !== f.id) this.mismatch.push({ cid: f.client_id, had, got: f.id });
      if (!had) this.acked.set(f.client_id, { id: f.id, conv: f.conv });
      this.pending.delete(f.client_id);
    } else if (f.type === 'error' && f.client_id && this.pending.has(f.client_id)) {
      const s = this.sock;
      setTimeout(() => {
        if (this.sock === s && this.pending.has(f.client_id)) {
          this.send(f.client_id, this.pending.get(f.client_id));
        }
      }, Math.min(f.retry_after_ms || 200, 1000));
    }
  }

  send(cid, text) {
    if (this.sock && this.welcomed) {
      try { this.sock.send({ type: 'message', client_id: cid, text }); } catch { /* closing */ }
    }
  }

  tick() {
    const cid = `v${this.n}-${++this.seq}`;
    const text = `chaos visitor ${this.n} message ${this.seq}`;
    this.pending.set(cid, text);
    this.send(cid, text);
  }

  stop() {
    this.running = false;
    if (this.sock) this.sock.ws.terminate();
  }
}

// Reads a conversation's whole transcript through the API.
async function transcript(node, token, conv) {
  const items = [];
  let after = '';
  for (;;) {
    const q = after ? `?after=${encodeURIComponent(after)}&limit=1000` : '?limit=1000';
    const r = await api(node, 'GET', `/v1/conversations/${conv}/messages${q}`, { token });
    assert.equal(r.status, 200, r.text);
    items.push(...r.json.items);
    if (!r.json.next || r.json.items.length === 0) return items;
    after = r.json.next;
  }
}

// sbctl and the daemon see the same data: sbctl's new token works at once on the
// daemon, and once sbctl revoked it the daemon refuses it at once.
async function agree(node, round) {
  const t = await node.sbctl('token', 'create', '--role', 'agent', '--name', `chaos-${round}`);
  const ok = await api(node, 'GET', '/v1/conversations', { token: t });
  assert.equal(ok.status, 200, `${round}: a token sbctl created must work: ${ok.text}`);
  await node.sbctl('token', 'revoke', t);
  const no = await api(node, 'GET', '/v1/conversations', { token: t });
  assert.equal(no.status, 401, `${round}: a token sbctl revoked must be refused at once`);
}

test('kill -9 of the daemon, its Redis and both, under load: no acked message lost or doubled',
  { timeout: 110000 }, async (t) => {
    const node = new Node(`site default chaos-secret ${ORIGIN}\nvisitor_rate 100000\n` +
      'visitor_ip_rate 10000000');
    await node.start();
    const admin = await node.sbctl('token', 'create', '--role', 'admin', '--name', 'chaos');
    const visitors = Array.from({ length: 6 }, (_, i) => new Visitor(node, i));
    await Promise.all(visitors.map((v) => v.connect()));
    const load = setInterval(() => visitors.forEach((v) => v.tick()), 40);
    const ackCount = () => visitors.reduce((n, v) => n + v.acked.size, 0);
    // Some fresh acks before each fault, so every fault lands mid-load.
    const progress = async (what) => {
      const from = ackCount();
      await until(() => ackCount() >= from + 60, 15000, `acks after ${what}:\n` +
        node.log.slice(-3000));
    };
    try {
      for (let round = 1; round <= 3; round++) {
        for (const kind of ['daemon', 'redis', 'both']) {
          const what = `${kind} #${round}`;
          await progress(`before ${what}`);
          const redis = node.redisPid();
          assert.ok(redis > 0 && alive(redis), `${what}: the embedded Redis runs`);
          if (kind === 'redis' || kind === 'both') process.kill(redis, 'SIGKILL');
          if (kind === 'daemon' || kind === 'both') {
            await node.kill9();
            // Its Redis dies with it: no orphan left to split the data.
            await until(() => !alive(redis), 5000, `${what}: the orphaned redis-server exits`);
            await node.start();
          } else {
            await until(() => node.redisPid() !== redis && alive(node.redisPid()), 10000,
              `${what}: the daemon restarts its Redis:\n${node.log.slice(-3000)}`);
            await node.ready();
          }
          await agree(node, what);
          await progress(`after ${what}`);
        }
      }
    } finally {
      clearInterval(load);
    }
    // Everything sent gets acked in the end (the visitors resend until it is).
    await until(() => visitors.every((v) => v.pending.size === 0), 20000,
      `all acks:\n${node.log.slice(-3000)}`);
    visitors.forEach((v) => v.stop());

    let total = 0;
    for (const v of visitors) {
      assert.deepEqual(v.mismatch, [], 'a resent client_id is acked with the first id');
      const convs = new Set([...v.acked.values()].map((a) => a.conv));
      const seen = new Map(); // client_id -> ids in the transcript
      for (const conv of convs) {
        for (const m of await transcript(node, admin, conv)) {
          if (m.kind !== 'message' || m.dir !== 'in' || !m.client_id) continue;
          seen.set(m.client_id, [...(seen.get(m.client_id) || []), m.id]);
        }
      }
      for (const [cid, a] of v.acked) {
        assert.deepEqual(seen.get(cid), [a.id], `visitor ${v.n}: ${cid} exactly once, as acked`);
      }
      total += v.acked.size;
    }
    t.diagnostic(`${total} messages acked over 9 faults, each in its transcript once`);

    const redis = node.redisPid();
    node.proc.kill('SIGTERM');
    const r = await node.exited;
    assert.equal(r.code, 0, node.log.slice(-3000));
    assert.ok(!alive(redis), 'SIGTERM of the daemon stops its Redis');
    fs.rmSync(node.dir, { recursive: true, force: true });
  });

test('a second switchboard on the same data_dir refuses to start', async () => {
  const node = new Node();
  await node.start();
  const redis = node.redisPid();
  const second = spawn(BIN, ['-c', node.conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SWITCHBOARD_LISTEN: `127.0.0.1:${await freePort()}` },
  });
  let log = '';
  second.stderr.on('data', (b) => { log += b; });
  second.stdout.on('data', (b) => { log += b; });
  const code = await new Promise((r) => second.on('exit', (c) => r(c)));
  assert.notEqual(code, 0);
  assert.match(log, /data_dir is in use by another switchboard \(pid \d+\)/);
  assert.equal(node.redisPid(), redis, 'the running one keeps its Redis');
  assert.ok(alive(redis));
  await node.ready(1000);
  await node.kill9();
  await until(() => !alive(redis), 5000, 'the orphaned redis-server exits');
  fs.rmSync(node.dir, { recursive: true, force: true });
});
