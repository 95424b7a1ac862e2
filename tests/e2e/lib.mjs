// SPDX-License-Identifier: MIT
// Shared helpers for end-to-end tests: start the real switchboard daemon (embedded
// Redis) on a free port in a temp dir, create tokens with the real sbctl, read SSE.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';

export const BIN = process.env.SWITCHBOARD_BIN || 'build/dev/switchboard';
export const SBCTL = process.env.SBCTL_BIN || 'build/dev/sbctl';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Daemon {
  // testClock: the daemon's wall clock becomes the real one plus an offset the test moves
  // with setClockOffset() (SWITCHBOARD_TEST_CLOCK, honoured by SB_TESTING builds only).
  // env: more environment variables for the daemon.
  static async start(extraConfig = '', { testClock = false, env: extraEnv = {} } = {}) {
    const d = new Daemon();
    const base = process.env.SB_TEST_TMP || os.tmpdir();
    fs.mkdirSync(base, { recursive: true });
    d.dir = fs.mkdtempSync(path.join(base, 'sb-e2e-'));
    d.port = await freePort();
    d.url = `http://127.0.0.1:${d.port}`;
    d.conf = path.join(d.dir, 'switchboard.conf');
    fs.writeFileSync(d.conf,
      `listen 127.0.0.1:${d.port}\ndata_dir ${d.dir}/var\nlog_level info\n${extraConfig}\n`);
    d.log = '';
    d.t0 = Date.now();
    const env = { ...process.env, ...extraEnv };
    if (testClock) {
      d.clockFile = path.join(d.dir, 'clock');
      d.setClockOffset(0);
      env.SWITCHBOARD_TEST_CLOCK = d.clockFile;
    }
    d.env = env;
    d.spawn();
    await d.waitReady();
    return d;
  }

  spawn() {
    this.proc = spawn(BIN, ['-c', this.conf], { stdio: ['ignore', 'pipe', 'pipe'], env: this.env });
    this.proc.stdout.on('data', (b) => { this.log += b; });
    this.proc.stderr.on('data', (b) => { this.log += b; });
    this.exited = new Promise((r) => this.proc.on('exit', (code, sig) => r({ code, sig })));
  }

  // Stops the daemon (SIGTERM, or SIGKILL when kill9) and starts it again on the same
  // configuration, data_dir and port; resolves once it is ready; (optional) runs while it is down.
  async restart({ kill9 = false, before } = {}) {
    this.proc.kill(kill9 ? 'SIGKILL' : 'SIGTERM');
    await this.exited;
    await before?.();
    this.spawn();
    await this.waitReady();
  }

  async waitReady(timeoutMs = 15000) {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      try {
        const r = await fetch(`${this.url}/readyz`);
        if (r.status === 200) return;
      } catch { /* not listening yet */ }
      await sleep(50);
    }
    throw new Error(`switchboard not ready in ${timeoutMs} ms:\n${this.log}`);
  }

  // Moves the daemon's wall clock to the real one plus ms (a test clock daemon only). The
  // file is replaced with a rename, so the daemon never reads half of it.
  setClockOffset(ms) {
    if (!this.clockFile) throw new Error('daemon started without testClock');
    fs.writeFileSync(`${this.clockFile}.tmp`, `${Math.trunc(ms)}\n`);
    fs.renameSync(`${this.clockFile}.tmp`, this.clockFile);
    this.clockOffset = Math.trunc(ms);
  }

  // The daemon's wall clock as the test sees it.
  now() { return Date.now() + (this.clockOffset || 0); }

  sbctl(...args) {
    return execFileSync(SBCTL, ['-c', this.conf, ...args], { encoding: 'utf8' }).trim();
  }

  token(role = 'admin', name = 'e2e') {
    return this.sbctl('token', 'create', '--role', role, '--name', name);
  }

  // SIGTERM, and SIGKILL if the daemon has not exited after killAfterMs (a wedged daemon
  // must fail its test, not hang the suite); resolves to {code, sig}.
  async stop(killAfterMs = 15000) {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), killAfterMs);
    const r = await this.exited;
    clearTimeout(t);
    // A killed daemon's children (embedded Redis) may still hold its output pipes open.
    this.proc.stdout.destroy();
    this.proc.stderr.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
    return r;
  }
}

export async function api(d, method, p, { token, body, raw, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined) h['content-type'] = 'application/json';
  const r = await fetch(`${d.url}${p}`, { method, headers: h, body: payload });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, json, text, headers: r.headers };
}

// Opens an SSE stream and collects events ({id, data}) until `until(events)` is true or
// timeoutMs passes. The returned promise resolves to {status, events[, text]}; its
// `connected` promise resolves once the server's greeting (": connected") has arrived,
// i.e. the subscription exists and every later event will be seen (or when the request
// was refused: then the outcome says why). Wait for it instead of sleeping.
export function sse(d, token, { lastEventId, after, until, timeoutMs = 5000 } = {}) {
  let onConnected;
  const connected = new Promise((r) => { onConnected = r; });
  const done = readSse(d, token, { lastEventId, after, until, timeoutMs }, onConnected);
  // Whatever happens to the stream, `connected` settles (a failure rejects `done`).
  done.then(() => onConnected(), () => onConnected());
  done.connected = connected;
  return done;
}

async function readSse(d, token, { lastEventId, after, until, timeoutMs }, onConnected) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const headers = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
  if (lastEventId) headers['last-event-id'] = lastEventId;
  const q = after !== undefined ? `?after=${encodeURIComponent(after)}` : '';
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  let cur = { id: null, data: [] };
  let status = 0; // 0: no answer before timeoutMs
  try {
    const r = await fetch(`${d.url}/v1/events${q}`, { headers, signal: ctrl.signal });
    status = r.status;
    if (r.status !== 200) {
      const text = await r.text();
      return { status: r.status, events: [], text };
    }
    for await (const chunk of r.body) {
      buf += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === '') {
          if (cur.data.length) events.push({ id: cur.id, data: JSON.parse(cur.data.join('\n')) });
          cur = { id: null, data: [] };
        } else if (line === ': connected') onConnected();
        else if (line.startsWith('id: ')) cur.id = line.slice(4);
        else if (line.startsWith('data: ')) cur.data.push(line.slice(6));
      }
      if (until && until(events)) break;
    }
  } catch (e) {
    if (e.name !== 'AbortError') throw e;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
  return { status, events };
}

// A WebSocket client with a frame queue: next(type, pred) waits for the next matching JSON
// frame (and consumes it); frames nobody waited for stay in `frames`. Subclasses say what
// `closed` resolves to (closeValue).
export class FrameSocket {
  static connect(url, protocol, options = {}) {
    const s = new this();
    s.frames = [];
    s.waiters = [];
    s.ws = new WebSocket(url, protocol, options);
    s.closed = new Promise((r) => s.ws.on('close', (code, reason) => r(s.closeValue(code, reason))));
    s.ws.on('message', (data) => {
      const fr = JSON.parse(data.toString());
      s.frames.push(fr);
      s.waiters = s.waiters.filter((w) => !w(fr));
    });
    return new Promise((resolve, reject) => {
      s.ws.on('open', () => resolve(s));
      s.ws.on('unexpected-response', (req, res) => reject(Object.assign(new Error('refused'),
        { status: res.statusCode })));
      s.ws.on('error', reject);
    });
  }

  closeValue(code) { return code; }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }

  next(type, pred = () => true, timeoutMs = 3000) {
    const i = this.frames.findIndex((fr) => fr.type === type && pred(fr));
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${type} frame in ${timeoutMs} ms; ` +
        `got ${JSON.stringify(this.frames).slice(0, 2000)}`)), timeoutMs);
      this.waiters.push((fr) => {
        if (fr.type !== type || !pred(fr)) return false;
        clearTimeout(t);
        this.frames.splice(this.frames.indexOf(fr), 1);
        resolve(fr);
        return true;
      });
    });
  }

  close() { this.ws.close(); return this.closed; }
}
