// SPDX-License-Identifier: MIT
// The email benchmark's driver (tests/bench/email.sh runs it with a release build and an
// external Redis on REDIS_PORT). Prints figures; asserts nothing but that the runs finish.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { Daemon, api, sleep } from '../e2e/lib.mjs';
import { makeCA, Dovecot, Smtp } from '../e2e/mailservers.mjs';

const MAILS = Number(process.env.MAILS || 10000);
const OUT = Number(process.env.OUT || 2000);
const LAT = Number(process.env.LAT || 200);
const RPORT = process.env.REDIS_PORT;
const ADDR = 'support@example.test';

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
const rssKb = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const metric = async (d, name) => {
  const t = await (await fetch(`${d.url}/metrics`)).text();
  const m = t.match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : 0;
};
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

// A ~30 KB customer mail: text, a quoted history and a base64 attachment.
function bigMail(i) {
  const line = 'The quick brown fox jumps over the lazy dog; order 4711 is late again.\n';
  const attach = Buffer.alloc(16 * 1024, i % 251).toString('base64').replace(/.{76}/g, '$&\n');
  return `From: Customer ${i} <c${i % 500}@example.org>\nTo: ${ADDR}\nSubject: Order ${i}\n` +
    `Date: Sun, 29 Nov 2026 10:00:00 +0100\nMessage-ID: <bench.${i}.${Date.now()}@example.org>\n` +
    `MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n` +
    `Content-Type: text/plain; charset=utf-8\n\n${line.repeat(40)}\nOn Sat, Support wrote:\n` +
    `${('> ' + line).repeat(40)}\n--b\nContent-Type: application/pdf; name="o${i}.pdf"\n` +
    `Content-Transfer-Encoding: base64\n\n${attach}\n--b--\n`;
}

// Files n mails straight into a user's Maildir (new/), as the delivery agent would.
function fileMails(imap, user, n, make) {
  const dir = `${imap.dir}/mail/${user}`;
  for (const sub of ['new', 'cur', 'tmp']) fs.mkdirSync(`${dir}/${sub}`, { recursive: true });
  for (let i = 0; i < n; i++)
    fs.writeFileSync(`${dir}/new/${1700000000 + i}.M${i}P1.bench`, make(i).replace(/\n/g, '\r\n'));
  if (process.getuid() === 0) execFileSync('chown', ['-R', 'dovecot:dovecot', `${imap.dir}/mail`]);
}

const ca = makeCA();
const imap = await Dovecot.start(ca);
const smtp = await Smtp.start(ca);
const conf = (boxes) => `redis redis://127.0.0.1:${RPORT}\nmailbox_tls_ca ${ca.ca}\n` +
  boxes.map((u) => `mailbox ${u} ${imap.url(u)} ${smtp.url()} ${u}@example.test`).join('\n');
let d;
try {
  // (a) a backlog read at start
  fileMails(imap, 'support', MAILS, bigMail);
  const r0 = redisCpuUs();
  const t0 = performance.now();
  // a second mailbox, empty, for (b): a folder of 10,000 mails never moved out of new/ (the
  // daemon only reads) makes Dovecot itself slow to notice the next one
  d = await Daemon.start(conf(['support', 'live']));
  const c0 = procCpuUs(d.proc.pid);
  while ((await metric(d, 'switchboard_email_stored_total')) +
    (await metric(d, 'switchboard_email_duplicates_total')) < MAILS) await sleep(100);
  const secs = (performance.now() - t0) / 1000;
  const cpu = procCpuUs(d.proc.pid) - c0, rcpu = redisCpuUs() - r0;
  console.log(`== (a) ingest of ${MAILS} mails of ~30 KB from Dovecot at start`);
  console.log(`ingest: ${(MAILS / secs).toFixed(0)} msgs/s in ${secs.toFixed(1)} s (target >= 300); ` +
    `cpu per mail: daemon=${(cpu / MAILS).toFixed(0)}us redis=${(rcpu / MAILS).toFixed(0)}us`);

  // (b) APPEND → live event: one mail at a time (the APPEND runs beside the feed reader)
  const tok = d.token('admin', 'bench');
  const ctl = new AbortController();
  const seen = new Map();
  let connected;
  const ready = new Promise((r) => { connected = r; });
  const feed = fetch(`${d.url}/v1/events`, { headers: { authorization: `Bearer ${tok}` }, signal: ctl.signal })
    .then(async (r) => {
      const dec = new TextDecoder();
      let buf = '';
      for await (const chunk of r.body) {
        buf += dec.decode(chunk, { stream: true });
        if (buf.includes(': connected')) connected();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          for (const m of line.matchAll(/"message_id":"(lat\.\d+@example\.org)"/g))
            if (!seen.has(m[1])) seen.set(m[1], performance.now());
        }
      }
    }).catch(() => {});
  await ready;
  const appendAsync = (raw) => new Promise((resolve, reject) => {
    const f = `${imap.dir}/lat-${process.hrtime.bigint()}.eml`;
    fs.writeFileSync(f, raw.replace(/\n/g, '\r\n'));
    execFile('curl', ['-sS', '--cacert', ca.ca, '-u', `live:${imap.password}`, '-T', f,
      `imaps://localhost:${imap.port}/INBOX`], (err) => { fs.rmSync(f); err ? reject(err) : resolve(); });
  });
  const sentAt = new Map();
  for (let i = 0; i < LAT; i++) {
    const id = `lat.${i}@example.org`;
    sentAt.set(id, performance.now());
    await appendAsync(`From: L <lat${i}@example.org>\nTo: ${ADDR}\nSubject: Latency ${i}\n` +
      `Message-ID: <${id}>\n\nHow long does this take?\n`);
    const until = performance.now() + 5000;
    while (!seen.has(id) && performance.now() < until) await sleep(5);
  }
  ctl.abort();
  await feed;
  const lat = [...sentAt].filter(([id]) => seen.has(id)).map(([id, t]) => seen.get(id) - t);
  console.log(`== (b) IMAP APPEND (curl, a new TLS connection each) to the live event, ${LAT} mails one at a time, second mailbox`);
  console.log(`latency: seen=${lat.length}/${LAT} p50=${pct(lat, 0.5).toFixed(0)}ms ` +
    `p99=${pct(lat, 0.99).toFixed(0)}ms max=${Math.max(...lat).toFixed(0)}ms (target p99 <= 2000ms)`);

  // (c) SMTP out: OUT answers over the ingested conversations
  const items = [];
  for (let cursor = null; items.length < OUT;) {
    const q = `/v1/conversations?channel=email&status=all&limit=200${cursor ? `&cursor=${cursor}` : ''}`;
    const r = (await api(d, 'GET', q, { token: tok })).json;
    items.push(...r.items);
    if (!r.next) break;
    cursor = r.next;
  }
  const n0 = smtp.messages().length;
  const o0 = performance.now(), oc0 = procCpuUs(d.proc.pid), or0 = redisCpuUs();
  await Promise.all(Array.from({ length: 8 }, async (_, w) => {
    for (let i = w; i < OUT; i += 8) {
      const c = items[i % items.length];
      await api(d, 'POST', `/v1/conversations/${c.id}/messages`, { token: tok, body: { text: `Answer ${i}` } });
    }
  }));
  while (smtp.messages().length - n0 < OUT) await sleep(100);
  const osecs = (performance.now() - o0) / 1000;
  console.log(`== (c) ${OUT} answers out through SMTP (aiosmtpd, STARTTLS)`);
  console.log(`smtp out: ${(OUT / osecs).toFixed(0)} msgs/s (target >= 200); cpu per mail: ` +
    `daemon=${((procCpuUs(d.proc.pid) - oc0) / OUT).toFixed(0)}us redis=${((redisCpuUs() - or0) / OUT).toFixed(0)}us`);
  await d.stop();
  d = null;

  // (d) RSS: no mailbox, then 20 idle mailboxes
  const base = await Daemon.start(`redis redis://127.0.0.1:${RPORT}`);
  await sleep(1000);
  const rss0 = rssKb(base.proc.pid);
  await base.stop();
  const boxes = Array.from({ length: 20 }, (_, i) => `m${i + 1}`);
  d = await Daemon.start(conf(boxes));
  while ((await metric(d, 'switchboard_email_mailboxes_idle')) < 20) await sleep(100);
  await sleep(1000);
  const rss20 = rssKb(d.proc.pid);
  console.log('== (d) the daemon idle, without mailboxes and with 20 mailboxes in IDLE');
  console.log(`rss: none=${(rss0 / 1024).toFixed(1)}MB twenty=${(rss20 / 1024).toFixed(1)}MB ` +
    `per_mailbox=${((rss20 - rss0) / 20).toFixed(0)}KB`);
} finally {
  await d?.stop();
  await smtp.stop();
  await imap.stop();
  ca.remove();
}
