// SPDX-License-Identifier: MIT
// The SLA benchmark's driver (tests/bench/sla.sh runs it with a release build and an
// external Redis on REDIS_PORT). Prints figures; asserts nothing but that the runs finish.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { Daemon, sleep } from '../e2e/lib.mjs';

const N = Number(process.env.N || 100000);
const FIRST_S = Number(process.env.FIRST_S || 240);
const RPORT = process.env.REDIS_PORT;
const CONC = 64;

const redis = (...args) => execFileSync('redis-cli', ['-p', RPORT, ...args], { encoding: 'utf8',
  maxBuffer: 1 << 30 });
const redisCpuUs = () => {
  let s = 0;
  for (const m of redis('info', 'cpu').matchAll(/^used_cpu_(?:user|sys):([\d.]+)/gm)) s += Number(m[1]);
  return s * 1e6;
};
const redisMem = () => Number(redis('info', 'memory').match(/^used_memory:(\d+)/m)[1]);
const procCpuUs = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(f[11]) + Number(f[12])) * 1e6 / 100; // CLK_TCK is 100 on Linux
};
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const shards = 16;
const zcard = (k) => {
  let n = 0;
  for (let s = 0; s < shards; s++) n += Number(redis('zcard', `sb:{${s}}:${k}`));
  return n;
};

// NOSLA=1: the same conversations without any policy, for what the clocks cost
const NOSLA = process.env.NOSLA === '1';
const conf = `redis redis://127.0.0.1:${RPORT}
` + (NOSLA ? '' : `sla quick channel=* priority=* first=${FIRST_S}s next=5m resolve=1d
escalate quick 50% assignee
escalate quick 100% everyone
`);
const d1 = await Daemon.start(conf);
const d2 = await Daemon.start(conf);
try {
  const bot = d1.token('bot', 'Bench Bot');
  const mem0 = redisMem();
  redis('config', 'resetstat');
  const t0 = Date.now();
  const k0 = [procCpuUs(d1.proc.pid), procCpuUs(d2.proc.pid), redisCpuUs()];
  let next = 0;
  const nodes = [d1, d2];
  async function worker(w) {
    for (;;) {
      const i = next++;
      if (i >= N) return;
      const d = nodes[i % 2];
      const r = await fetch(`${d.url}/v1/inbound`, { method: 'POST',
        headers: { authorization: `Bearer ${bot}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'api', contact: { external_id: `b${w}-${i}`, name: 'C' },
          text: `help ${i}` }) });
      if (r.status !== 201) throw new Error(`inbound ${r.status}: ${await r.text()}`);
      await r.arrayBuffer();
    }
  }
  await Promise.all(Array.from({ length: CONC }, (_, w) => worker(w)));
  const made = Date.now() - t0;
  const k1 = [procCpuUs(d1.proc.pid), procCpuUs(d2.proc.pid), redisCpuUs()];
  const perConv = (i) => ((k1[i] - k0[i]) / N).toFixed(1);
  console.log(`creating ${N} conversations (${NOSLA ? 'no SLA policy' : 'with SLA'}): ` +
    `${Math.round(N / made * 1000)}/s; CPU per conversation: Redis ${perConv(2)} us, ` +
    `nodes ${perConv(0)} + ${perConv(1)} us (HTTP, contact, ingest, planning)`);
  if (NOSLA) { // nothing more to measure; process.exit skips the finally below
    await d2.stop();
    await d1.stop();
    process.exit(0);
  }
  // every conversation planned: nothing in `sla` is due before its first step
  while (Number(redis('eval', `local n = 0 for s = 0, 15 do n = n + redis.call('zcount',
      'sb:{' .. s .. '}:sla', '-inf', ARGV[1]) end return n`, '0', String(Date.now() - 1000))) > 0) {
    await sleep(100);
  }
  const planned = Date.now() - t0;
  const pending = zcard('sla');
  const memPer = (redisMem() - mem0) / N;
  let kBytes = 0, oBytes = 0;
  const sample = redis('zrange', 'sb:{0}:sla', '0', '99').trim().split('\n');
  for (const c of sample) {
    kBytes += Number(redis('hstrlen', `sb:{0}:conv:${c}`, 'k'));
    oBytes += Number(redis('hstrlen', `sb:{0}:conv:${c}`, 'o'));
  }
  // the scan while nothing is due: up to 20 s, ending 1 s before the earliest step
  let earliest = Infinity;
  for (let s = 0; s < shards; s++) {
    const r = redis('zrange', `sb:{${s}}:sla`, '0', '0', 'withscores').trim().split('\n');
    if (r.length === 2) earliest = Math.min(earliest, Number(r[1]));
  }
  const win = Math.min(20000, earliest - 1000 - Date.now());
  if (win < 1000) throw new Error('no quiet window before the first step: raise FIRST_S');
  const c1 = [procCpuUs(d1.proc.pid), procCpuUs(d2.proc.pid), redisCpuUs()];
  await sleep(win); // a measuring window, not a wait for a condition
  const c2 = [procCpuUs(d1.proc.pid), procCpuUs(d2.proc.pid), redisCpuUs()];
  // the warnings (50 %) and breaches (100 %) fire; wait for all breaches
  // (the nodes' own counters: reading the events here would cost Redis more than the firing)
  const firedTotal = async () => {
    let n = 0;
    for (const d of nodes) {
      const t = await (await fetch(`${d.url}/metrics`)).text();
      n += Number((t.match(/^switchboard_sla_steps_fired_total (\d+)/m) || [0, 0])[1]);
    }
    return n;
  };
  const waitUntil = t0 + made + FIRST_S * 1000 + 30000;
  while (Date.now() < waitUntil && await firedTotal() < 2 * N) await sleep(2000);
  const late = { sla_warning: [], sla_breach: [] };
  for (let s = 0; s < shards; s++) {
    const out = redis('eval', `local o = {} for _, e in ipairs(redis.call('xrange', KEYS[1], ARGV[1], '+')) do
      local j = e[2][4] if string.find(j, '"type":"sla_', 1, true) then o[#o + 1] = j end end return o`,
    '1', `sb:{${s}}:events`, String(t0));
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      const m = JSON.parse(line).message;
      if (!late[m.type] || !m.due) continue;
      const at = m.type === 'sla_breach' ? m.due : m.due - FIRST_S * 500; // 50 % of first
      late[m.type].push(m.ts - at);
    }
  }
  for (const k of Object.keys(late)) late[k].sort((a, b) => a - b);
  const sec = win / 1000;
  const scans = (redis('info', 'commandstats').match(/^cmdstat_scan:calls=(\d+)/m) || [0, 0])[1];
  console.log(`sla bench: ${N} conversations, 2 nodes, first=${FIRST_S}s, escalate 50% assignee, 100% everyone`);
  console.log(`  made in ${(made / 1000).toFixed(1)} s (${Math.round(N / made * 1000)}/s), all planned after ${(planned / 1000).toFixed(1)} s`);
  console.log(`  pending timers (conversations in sla sets): ${pending}`);
  console.log(`  idle scan over ${sec.toFixed(1)} s: node1 ${((c2[0] - c1[0]) / sec / 1000).toFixed(2)} ms CPU/s, ` +
    `node2 ${((c2[1] - c1[1]) / sec / 1000).toFixed(2)} ms CPU/s, Redis ${((c2[2] - c1[2]) / sec / 1000).toFixed(2)} ms CPU/s`);
  console.log(`  Redis memory per conversation: ${Math.round(memPer)} B (of which SLA facts k ${Math.round(kBytes / sample.length)} B, sla object o ${Math.round(oBytes / sample.length)} B)`);
  console.log(`  SCAN calls during the run (staff lists): ${scans}`);
  for (const [k, xs] of Object.entries(late)) {
    console.log(`  ${k}: ${xs.length} fired, late p50 ${pct(xs, 0.5)} ms, p99 ${pct(xs, 0.99)} ms, max ${xs[xs.length - 1]} ms`);
  }
} finally {
  await d2.stop();
  await d1.stop();
}
