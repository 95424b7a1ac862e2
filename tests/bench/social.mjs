// SPDX-License-Identifier: MIT
// The social benchmark's driver (tests/bench/social.sh runs it with a release build and an
// external Redis on REDIS_PORT): the daemon follows the fake Mastodon server
// (tests/peers/mastodon.mjs, in this process) through its streaming API, and a staff member
// reads the live feed (GET /v1/events) and answers through the API.
//   (a) N mentions written to the stream at once: mentions/s until the last one is on the feed
//       (N above the connector's 1000 waiting notifications measures its catch-up instead)
//   (b) LAT mentions paced at RATE/s: latency from the fake writing the stream event to the
//       event arriving on the staff feed, p50/p99 (target p99 <= 100 ms)
//   (c) REPLIES staff answers (POST /v1/conversations/{id}/messages, CONC at a time): replies/s
//       until the fake has received the last POST /api/v1/statuses
// Each phase also prints Redis' own CPU (INFO) and the daemon's (/proc) per operation.
// Prints figures; asserts nothing but that the runs finish.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, api, sleep } from '../e2e/lib.mjs';
import { FakeMastodon } from '../peers/mastodon.mjs';

const N = Number(process.env.N || 900);
const LAT = Number(process.env.LAT || 500);
const RATE = Number(process.env.RATE || 50);
const REPLIES = Number(process.env.REPLIES || 1000);
const CONC = Number(process.env.CONC || 16);
const RPORT = process.env.REDIS_PORT;

const redisCpuUs = () => {
  const info = execFileSync('redis-cli', ['-p', RPORT, 'info', 'cpu'], { encoding: 'utf8' });
  let s = 0;
  for (const m of info.matchAll(/^used_cpu_(?:user|sys):([\d.]+)/gm)) s += Number(m[1]);
  return s * 1e6;
};
const procCpuUs = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(f[11]) + Number(f[12])) * 1e6 / 100; // CLK_TCK is 100 on Linux
};
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const until = async (cond, what, ms) => {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) {
      const w = typeof what === 'function' ? what() : what;
      throw new Error(`timed out waiting for ${w}\n${globalThis.daemonLog?.() ?? ''}`);
    }
    await sleep(2);
  }
};

const fake = await new FakeMastodon({ heartbeatMs: 15000, maxCharacters: 500 }).start();
// When the fake writes each mention's stream event (its status id → performance.now()).
const written = new Map();
const emit = fake.emit.bind(fake);
fake.emit = (event, payload) => {
  if (event === 'notification') written.set(payload.status.id, performance.now());
  emit(event, payload);
};
const tmp = fs.mkdtempSync(path.join(process.env.SB_TEST_TMP || '/tmp', 'sb-social-'));
const tokenFile = path.join(tmp, 'token');
fs.writeFileSync(tokenFile, `${fake.token}\n`);
const conf = `redis redis://127.0.0.1:${RPORT}\nmastodon main ${fake.url} ${tokenFile}\n`;
const d = await Daemon.start(conf, { env: { SWITCHBOARD_LOG_LEVEL: 'warn' } });
const ctl = new AbortController();
globalThis.daemonLog = () => `fake: ${fake.streams.size} streams, ${fake.streamConnects} connects\n${fake.requests.filter((r) => !r.includes("context")).slice(-12).join("\n")}\n` +
  d.log.slice(-3000);
try {
  const tok = d.token('admin', 'Bench Staff');
  await until(() => fake.streams.size > 0, 'the daemon to open the stream', 15000);

  // The staff feed: the first time each status id arrives, and its conversation.
  const seen = new Map(), convOf = new Map();
  let connected;
  const ready = new Promise((r) => { connected = r; });
  const feed = fetch(`${d.url}/v1/events`, {
    headers: { authorization: `Bearer ${tok}`, accept: 'text/event-stream' }, signal: ctl.signal,
  }).then(async (r) => {
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of r.body) {
      const now = performance.now();
      buf += dec.decode(chunk, { stream: true });
      if (buf.includes(': connected')) connected();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith('data: ') || !line.includes('"status_id"')) continue;
        const ev = JSON.parse(line.slice(6));
        const sid = ev.message?.ext?.status_id;
        if (ev.type === 'message' && sid && !seen.has(sid)) {
          seen.set(sid, now);
          convOf.set(sid, ev.conv);
        }
      }
    }
  }).catch((e) => { if (e.name !== 'AbortError') console.error(`feed: ${e}`); });
  await ready;
  const customer = (i) => ({ username: `cust${i % 1000}`, host: i % 2 ? 'remote.example' : undefined,
    display_name: `Customer ${i % 1000}` });
  const phase = () => ({ t: performance.now(), d: procCpuUs(d.proc.pid), r: redisCpuUs() });
  const cost = (p0, ops) => {
    const dcpu = (procCpuUs(d.proc.pid) - p0.d) / ops, rcpu = (redisCpuUs() - p0.r) / ops;
    return `cpu per op: daemon=${dcpu.toFixed(0)}us redis=${rcpu.toFixed(0)}us`;
  };

  // (a) a burst
  const a0 = phase();
  const burst = [];
  for (let i = 0; i < N; i++)
    burst.push(fake.mention({ from: customer(i), text: `order ${i} is late, please help` }).status.id);
  const missing = () => burst.map((id, i) => (seen.has(id) ? -1 : i)).filter((i) => i >= 0);
  await until(() => burst.every((id) => seen.has(id)),
    () => `${N} mentions on the feed (${missing().length} missing: ${missing().slice(0, 20)}…)`, 120000);
  const aLast = Math.max(...burst.map((id) => seen.get(id)));
  const aSecs = (aLast - a0.t) / 1000;
  const aLat = burst.map((id) => seen.get(id) - written.get(id));
  console.log(`== (a) ${N} mentions written to the stream at once, until the last is on the staff feed`);
  console.log(`ingest: ${(N / aSecs).toFixed(0)} mentions/s in ${aSecs.toFixed(2)} s ` +
    `(queueing latency p50=${pct(aLat, 0.5).toFixed(0)}ms max=${Math.max(...aLat).toFixed(0)}ms); ${cost(a0, N)}`);

  // (b) paced: the latency of one mention when the daemon is not behind
  const b0 = phase();
  const paced = [];
  for (let i = 0; i < LAT; i++) {
    const due = b0.t + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    paced.push(fake.mention({ from: customer(N + i), text: `paced ${i}: where is my parcel?` }).status.id);
  }
  await until(() => paced.every((id) => seen.has(id)), `${LAT} paced mentions on the feed`, 60000);
  const lat = paced.map((id) => seen.get(id) - written.get(id));
  console.log(`== (b) ${LAT} mentions at ${RATE}/s: stream event written -> event on the staff feed`);
  console.log(`latency: p50=${pct(lat, 0.5).toFixed(1)}ms p99=${pct(lat, 0.99).toFixed(1)}ms ` +
    `max=${Math.max(...lat).toFixed(1)}ms (target p99 <= 100ms); ${cost(b0, LAT)}`);

  // (c) staff answers
  const convs = [...new Set([...burst, ...paced].map((id) => convOf.get(id)))];
  const posted0 = fake.posted.length;
  const c0 = phase();
  let next = 0;
  await Promise.all(Array.from({ length: CONC }, async () => {
    for (let i; (i = next++) < REPLIES;) {
      const r = await api(d, 'POST', `/v1/conversations/${convs[i % convs.length]}/messages`,
        { token: tok, body: { text: `We are looking into it (${i}).`, force: true } });
      if (r.status !== 201) throw new Error(`reply ${r.status}: ${r.text}`);
    }
  }));
  const cApi = performance.now();
  await until(() => fake.posted.length - posted0 >= REPLIES, `${REPLIES} statuses posted`, 120000);
  const cSecs = (performance.now() - c0.t) / 1000;
  console.log(`== (c) ${REPLIES} staff replies through the API (${CONC} at a time, over ${convs.length} ` +
    'conversations) until the fake received the last POST /api/v1/statuses');
  console.log(`replies: ${(REPLIES / cSecs).toFixed(0)} replies/s in ${cSecs.toFixed(2)} s ` +
    `(API took ${((cApi - c0.t) / 1000).toFixed(2)} s); ${cost(c0, REPLIES)}`);
  const m = (await api(d, 'GET', '/metrics', {})).text;
  const show = (name) => (m.match(new RegExp(`^${name}(\\{[^}]*\\})? .*$`, 'gm')) || []).join('; ');
  console.log(`daemon: stream connects seen by the fake=${fake.streamConnects}; ` +
    `${show('switchboard_outbox_deliveries_total') || 'no outbox metrics'}`);
  const kinds = {};
  for (const r of fake.requests) {
    const k = r.replace(/\?.*$/, '').replace(/\d{6,}/g, ':id');
    kinds[k] = (kinds[k] || 0) + 1;
  }
  console.log(`requests the fake served: ${Object.entries(kinds).map(([k, n]) => `${k} ${n}`).join('; ')}`);
  const cmds = execFileSync('redis-cli', ['-p', RPORT, 'info', 'commandstats'], { encoding: 'utf8' })
    .split('\n').map((l) => /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(l)).filter(Boolean)
    .sort((x, y) => y[3] - x[3]).slice(0, 6);
  console.log(`redis, busiest commands over the run: ${cmds.map((m) => `${m[1]} ${m[2]} calls ${(m[3] / 1000).toFixed(0)} ms`).join('; ')}`);
  if (process.env.SHOWLOG) console.log(d.log);
  ctl.abort();
  await feed;
} finally {
  ctl.abort();
  await d.stop();
  await fake.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
